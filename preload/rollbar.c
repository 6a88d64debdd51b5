/* rollbar.c - Rollbar settings (see rollbar.h). README.md lists them. */
#include "rollbar.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

struct crd_rollbar_config crd_rb_cfg;

/* Only visible ASCII: what can go into an HTTP header or a spool line as
 * is. */
static int visible_ascii(const char *s, size_t max)
{
	size_t n = 0;

	for (; *s; s++, n++)
		if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e || n >= max)
			return 0;
	return 1;
}

/* Printable (spaces allowed, no control characters), at most max bytes. */
static int printable(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n > max)
		return 0;
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 0;
	return 1;
}

static int valid_url(const char *u)
{
	return ((!strncmp(u, "http://", 7) && u[7]) || (!strncmp(u, "https://", 8) && u[8])) &&
	       visible_ascii(u, 2048);
}

int crd_spool_dir(char *out, size_t cap)
{
	size_t n = strlen(crd_rb_cfg.spool_dir);
	char digits[16];
	size_t nd = 0;
	unsigned long uid;

	if (n + 1 > cap)
		return -ENAMETOOLONG;
	memcpy(out, crd_rb_cfg.spool_dir, n + 1);
	if (!crd_rb_cfg.spool_default)
		return (int)n;
	uid = (unsigned long)geteuid();
	do
		digits[nd++] = (char)('0' + uid % 10);
	while ((uid /= 10) && nd < sizeof(digits));
	if (n + nd + 1 > cap)
		return -ENAMETOOLONG;
	while (nd)
		out[n++] = digits[--nd];
	out[n] = 0;
	return (int)n;
}

static void load_spool_dir(void)
{
	const char *v = crd_env("CRUDDUR_SPOOL_DIR");

	/* Room for "/crash-<time>-<pid>-<tid>.crd" and the euid suffix. */
	if (v && (v[0] != '/' || strlen(v) > CRD_SPOOL_DIR_MAX - 96 || !printable(v, 4096))) {
		crd_warn("CRUDDUR_SPOOL_DIR=%s: not an absolute path of at most %d characters; "
			 "using %s<uid>",
			 v, CRD_SPOOL_DIR_MAX - 96, CRD_SPOOL_DEF_PREFIX);
		v = NULL;
	}
	crd_rb_cfg.spool_default = !v;
	strcpy(crd_rb_cfg.spool_dir, v ? v : CRD_SPOOL_DEF_PREFIX);
}

void crd_rollbar_config_load(void)
{
	const char *token = crd_env("ROLLBAR_ACCESS_TOKEN"), *v;
	long n;

	/* Called once by crd_config_load(); the tests call it again. */
	free(crd_rb_cfg.token);
	free(crd_rb_cfg.endpoint);
	free(crd_rb_cfg.environment);
	free(crd_rb_cfg.code_version);
	memset(&crd_rb_cfg, 0, sizeof(crd_rb_cfg));
	/* The spool holds spans saved at a crash too (spanspool.h): its
	 * directory is known with or without Rollbar. */
	load_spool_dir();
	if (!token)
		return;
	if (!visible_ascii(token, 256)) {
		/* Never echo the token, not even a bad one. */
		crd_error("ROLLBAR_ACCESS_TOKEN: not a token (only visible ASCII, at most 256 "
			  "characters); Rollbar disabled");
		return;
	}
	v = crd_env("ROLLBAR_ENDPOINT");
	if (v && !valid_url(v)) {
		crd_error("ROLLBAR_ENDPOINT=%s: not an http:// or https:// URL; Rollbar disabled",
			  v);
		return;
	}
	crd_rb_cfg.token = crd_xstrdup(token);
	crd_rb_cfg.endpoint = crd_xstrdup(v ? v : CRD_RB_DEF_ENDPOINT);

	v = crd_env("ROLLBAR_ENVIRONMENT");
	if (v && !printable(v, CRD_RB_ENV_MAX)) {
		crd_warn("ROLLBAR_ENVIRONMENT: more than %d characters or control characters; "
			 "using %s",
			 CRD_RB_ENV_MAX, CRD_RB_DEF_ENVIRONMENT);
		v = NULL;
	}
	crd_rb_cfg.environment = crd_xstrdup(v ? v : CRD_RB_DEF_ENVIRONMENT);

	v = crd_env("ROLLBAR_CODE_VERSION");
	if (v && !printable(v, CRD_RB_CODE_VERSION_MAX)) {
		crd_warn("ROLLBAR_CODE_VERSION=%.60s: more than %d characters or control "
			 "characters; not sent",
			 v, CRD_RB_CODE_VERSION_MAX);
		v = NULL;
	}
	crd_rb_cfg.code_version = v ? crd_xstrdup(v) : NULL;

	crd_rb_cfg.max_per_min = CRD_RB_DEF_MAX_PER_MIN;
	v = crd_env("CRUDDUR_ROLLBAR_MAX_PER_MIN");
	if (v && crd_parse_uint(v, CRD_RB_MAX_PER_MIN_CAP, &n))
		crd_warn("CRUDDUR_ROLLBAR_MAX_PER_MIN=%s: not a whole number in 0..%d; using %d", v,
			 CRD_RB_MAX_PER_MIN_CAP, CRD_RB_DEF_MAX_PER_MIN);
	else if (v)
		crd_rb_cfg.max_per_min = (int)n;

	v = crd_env("CRUDDUR_ROLLBAR_CRASH");
	crd_rb_cfg.crash_enabled = !(v && (!strcmp(v, "0") || !strcasecmp(v, "false")));
	crd_rb_cfg.enabled = 1;
	/* Rollbar counts as an exporter (as X-Ray does): the embedded
	 * default, a traces file nobody asked for, is not written. */
	if (crd_cfg.file_default) {
		crd_cfg.file_enabled = 0;
		crd_cfg.file_default = 0;
	}
}
