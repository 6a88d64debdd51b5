/* cloudwatch.h - CloudWatch Logs settings, read once at load.
 *
 * CRUDDUR_CLOUDWATCH_LOG_GROUP turns the CloudWatch Logs sink on
 * (export/cloudwatch.c): one access-log event per finished, sampled SERVER
 * span, sent with PutLogEvents signed with SigV4 by libcurl. Region and
 * credentials come from the standard AWS variables; when either is missing
 * one `cruddur:` message says so and CloudWatch stays off. The secret key
 * and the session token are never logged.
 *
 * Thread safety: written by crd_cloudwatch_config_load() before any hook
 * does work, read-only afterwards.
 */
#ifndef CRD_CLOUDWATCH_H
#define CRD_CLOUDWATCH_H

/* CloudWatch Logs API reference, CreateLogGroup / CreateLogStream:
 * names are 1..512 characters; a group name uses [.-_/#A-Za-z0-9], a
 * stream name anything but ':' and '*'. */
#define CRD_CW_NAME_MAX	  512
#define CRD_CW_REGION_MAX 64

struct crd_cloudwatch_config {
	int enabled;	     /* group set, region and credentials present */
	int json;	     /* CRUDDUR_LOG_FORMAT=json */
	char *log_group;     /* CRUDDUR_CLOUDWATCH_LOG_GROUP */
	char *log_stream;    /* CRUDDUR_CLOUDWATCH_LOG_STREAM, NULL: <host>/<service>/<pid> */
	char *region;	     /* AWS_REGION, then AWS_DEFAULT_REGION */
	char *endpoint;	     /* AWS_ENDPOINT_URL_CLOUDWATCH_LOGS, AWS_ENDPOINT_URL, or AWS */
	char *access_key;    /* AWS_ACCESS_KEY_ID */
	char *secret_key;    /* AWS_SECRET_ACCESS_KEY: never logged */
	char *session_token; /* AWS_SESSION_TOKEN or NULL: never logged */
	int capture_stdio;   /* CRUDDUR_CAPTURE_STDIO=1: app stdout/stderr lines too */
};

extern struct crd_cloudwatch_config crd_cw_cfg;

/* Read the settings (reporting bad values once): from crd_config_load(),
 * once. Calling it again re-reads them (tests). */
void crd_cloudwatch_config_load(void);

/* Is s a valid log group (group != 0) or log stream name? */
int crd_cw_valid_name(const char *s, int group);

#endif
