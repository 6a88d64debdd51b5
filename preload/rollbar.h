/* rollbar.h - Rollbar settings, read once at load.
 *
 * ROLLBAR_ACCESS_TOKEN turns the Rollbar integration on: every HTTP 5xx a
 * server answers becomes a Rollbar item (export/rollbar.c) and native
 * crashes are caught and spooled (preload/crash.c) for scripts/cruddur-run
 * or the next instrumented process to send. Everything here is read by
 * crd_rollbar_config_load(), called once from crd_config_load(), and is
 * read-only afterwards. The token is never logged and never written to a
 * spool file.
 *
 * Thread safety: written before any hook does work, read-only afterwards
 * (the crash handler reads it from signal context: plain loads only).
 */
#ifndef CRD_ROLLBAR_H
#define CRD_ROLLBAR_H

#include <stddef.h>

/* The public API endpoint (Rollbar API reference, "Create an item"). */
#define CRD_RB_DEF_ENDPOINT "https://api.rollbar.com/api/1/item/"
/* data.environment when ROLLBAR_ENVIRONMENT is unset (as pyrollbar's
 * examples and Rollbar's docs recommend for production). */
#define CRD_RB_DEF_ENVIRONMENT "production"
/* Local cap on items per minute (rollbar.js itemsPerMinute default is 60). */
#define CRD_RB_DEF_MAX_PER_MIN 60
#define CRD_RB_MAX_PER_MIN_CAP 100000
/* The spool directory when CRUDDUR_SPOOL_DIR is unset: this prefix plus
 * the writer's effective uid, so a server that drops privileges after
 * start (nginx workers) still has a directory of its own to write into. */
#define CRD_SPOOL_DEF_PREFIX "/tmp/cruddur-spool-"
/* Longest spool directory path we accept (the file name is appended). */
#define CRD_SPOOL_DIR_MAX 512
/* Rollbar limits: environment up to 255 characters; a token is 32 hex
 * characters today, but we only refuse what cannot go into a header. */
#define CRD_RB_ENV_MAX		255
#define CRD_RB_CODE_VERSION_MAX 40

struct crd_rollbar_config {
	int enabled;			   /* ROLLBAR_ACCESS_TOKEN set and usable */
	char *token;			   /* never logged */
	char *endpoint;			   /* ROLLBAR_ENDPOINT */
	char *environment;		   /* ROLLBAR_ENVIRONMENT */
	char *code_version;		   /* ROLLBAR_CODE_VERSION, NULL when unset */
	int max_per_min;		   /* CRUDDUR_ROLLBAR_MAX_PER_MIN (0: no 5xx items) */
	int crash_enabled;		   /* CRUDDUR_ROLLBAR_CRASH (default on with a token) */
	int spool_default;		   /* spool_dir is the prefix: append the euid */
	char spool_dir[CRD_SPOOL_DIR_MAX]; /* CRUDDUR_SPOOL_DIR or the prefix */
};

extern struct crd_rollbar_config crd_rb_cfg;

/* Read the Rollbar settings (reporting bad values once): from
 * crd_config_load(), once. Calling it again re-reads them (tests). */
void crd_rollbar_config_load(void);

/* The spool directory this process writes to and ships from: the
 * configured one, or the default prefix plus the effective uid. Writes a
 * NUL-terminated path into out; returns its length or -ENAMETOOLONG.
 * Async-signal-safe (geteuid and integer formatting only). */
int crd_spool_dir(char *out, size_t cap);

#endif
