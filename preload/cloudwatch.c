/* cloudwatch.c - CloudWatch Logs settings (see cloudwatch.h). README.md
 * lists them. */
#include "cloudwatch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "log.h"

struct crd_cloudwatch_config crd_cw_cfg;

/* Only visible ASCII, at most max bytes: what can go into a header. */
static int visible_ascii(const char *s, size_t max)
{
	size_t n = 0;

	for (; *s; s++, n++)
		if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e || n >= max)
			return 0;
	return 1;
}

int crd_cw_valid_name(const char *s, int group)
{
	size_t n = strlen(s);

	if (!n || n > CRD_CW_NAME_MAX)
		return 0;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (group) {
			if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			      (c >= '0' && c <= '9') || strchr(".-_/#", c)))
				return 0;
		} else if (c == ':' || c == '*' || c < 0x20 || c == 0x7f) {
			return 0;
		}
	}
	return 1;
}

static int valid_region(const char *r)
{
	if (strlen(r) > CRD_CW_REGION_MAX)
		return 0;
	for (; *r; r++)
		if (!((*r >= 'a' && *r <= 'z') || (*r >= '0' && *r <= '9') || *r == '-'))
			return 0;
	return 1;
}

static int valid_url(const char *u)
{
	return ((!strncmp(u, "http://", 7) && u[7]) || (!strncmp(u, "https://", 8) && u[8])) &&
	       visible_ascii(u, 2048);
}

static void clear(void)
{
	free(crd_cw_cfg.log_group);
	free(crd_cw_cfg.log_stream);
	free(crd_cw_cfg.region);
	free(crd_cw_cfg.endpoint);
	free(crd_cw_cfg.access_key);
	if (crd_cw_cfg.secret_key) {
		explicit_bzero(crd_cw_cfg.secret_key, strlen(crd_cw_cfg.secret_key));
		free(crd_cw_cfg.secret_key);
	}
	if (crd_cw_cfg.session_token) {
		explicit_bzero(crd_cw_cfg.session_token, strlen(crd_cw_cfg.session_token));
		free(crd_cw_cfg.session_token);
	}
	memset(&crd_cw_cfg, 0, sizeof(crd_cw_cfg));
}

void crd_cloudwatch_config_load(void)
{
	const char *group = crd_env("CRUDDUR_CLOUDWATCH_LOG_GROUP"), *v;
	const char *region, *endpoint, *ak, *sk, *tok;
	char def[128];

	clear();
	if (!group) {
		v = crd_env("CRUDDUR_CAPTURE_STDIO");
		if (v && (!strcmp(v, "1") || crd_parse_bool(v)))
			crd_warn("CRUDDUR_CAPTURE_STDIO ships stdout/stderr to CloudWatch Logs, "
				 "but CRUDDUR_CLOUDWATCH_LOG_GROUP is not set; ignored");
		return;
	}
	if (!crd_cw_valid_name(group, 1)) {
		crd_error("CRUDDUR_CLOUDWATCH_LOG_GROUP=%.80s: not a log group name (1..%d of "
			  "A-Za-z0-9 . - _ / #); CloudWatch disabled",
			  group, CRD_CW_NAME_MAX);
		return;
	}
	v = crd_env("CRUDDUR_CLOUDWATCH_LOG_STREAM");
	if (v && !crd_cw_valid_name(v, 0)) {
		crd_error("CRUDDUR_CLOUDWATCH_LOG_STREAM=%.80s: not a log stream name (1..%d "
			  "characters, no ':' or '*'); CloudWatch disabled",
			  v, CRD_CW_NAME_MAX);
		return;
	}
	region = crd_env("AWS_REGION");
	if (!region)
		region = crd_env("AWS_DEFAULT_REGION");
	ak = crd_env("AWS_ACCESS_KEY_ID");
	sk = crd_env("AWS_SECRET_ACCESS_KEY");
	tok = crd_env("AWS_SESSION_TOKEN");
	if (!region) {
		crd_error("CRUDDUR_CLOUDWATCH_LOG_GROUP is set but neither AWS_REGION nor "
			  "AWS_DEFAULT_REGION is; CloudWatch disabled");
		return;
	}
	if (!valid_region(region)) {
		crd_error("AWS region %.70s: not a region name; CloudWatch disabled", region);
		return;
	}
	if (!ak || !sk) {
		crd_error("CRUDDUR_CLOUDWATCH_LOG_GROUP is set but AWS_ACCESS_KEY_ID and "
			  "AWS_SECRET_ACCESS_KEY are not both set; CloudWatch disabled");
		return;
	}
	/* Never echo a credential, not even a bad one. */
	if (!visible_ascii(ak, 128) || !visible_ascii(sk, 256) ||
	    (tok && !visible_ascii(tok, 8192))) {
		crd_error("AWS credentials: not visible ASCII of a sane length; CloudWatch "
			  "disabled");
		return;
	}
	endpoint = crd_env("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS");
	v = "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS";
	if (!endpoint) {
		endpoint = crd_env("AWS_ENDPOINT_URL");
		v = "AWS_ENDPOINT_URL";
	}
	if (endpoint && !valid_url(endpoint)) {
		crd_error("%s=%.100s: not an http:// or https:// URL; CloudWatch disabled", v,
			  endpoint);
		return;
	}
	snprintf(def, sizeof(def), "https://logs.%s.amazonaws.com/", region);
	crd_cw_cfg.log_group = crd_xstrdup(group);
	v = crd_env("CRUDDUR_CLOUDWATCH_LOG_STREAM");
	crd_cw_cfg.log_stream = v ? crd_xstrdup(v) : NULL;
	crd_cw_cfg.region = crd_xstrdup(region);
	crd_cw_cfg.endpoint = crd_xstrdup(endpoint ? endpoint : def);
	crd_cw_cfg.access_key = crd_xstrdup(ak);
	crd_cw_cfg.secret_key = crd_xstrdup(sk);
	crd_cw_cfg.session_token = tok ? crd_xstrdup(tok) : NULL;
	v = crd_env("CRUDDUR_LOG_FORMAT");
	if (v && !strcasecmp(v, "json"))
		crd_cw_cfg.json = 1;
	else if (v && strcasecmp(v, "text"))
		crd_warn("CRUDDUR_LOG_FORMAT=%.40s: not text or json; using text", v);
	v = crd_env("CRUDDUR_CAPTURE_STDIO");
	if (v && (!strcmp(v, "1") || crd_parse_bool(v)))
		crd_cw_cfg.capture_stdio = 1;
	else if (v && strcmp(v, "0") && strcasecmp(v, "false"))
		crd_warn("CRUDDUR_CAPTURE_STDIO=%.40s: not 1/true or 0/false; stdout and stderr "
			 "are not captured",
			 v);
	crd_cw_cfg.enabled = 1;
	/* CloudWatch counts as an exporter (as Rollbar does): the embedded
	 * default traces file is not written. */
	if (crd_cfg.file_default) {
		crd_cfg.file_enabled = 0;
		crd_cfg.file_default = 0;
	}
}
