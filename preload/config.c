/* config.c - the settings table and its parsing (see config.h).
 *
 * Names, defaults and meanings follow the OpenTelemetry SDK environment
 * variable specification (sdk-environment-variables.md, OTLP exporter
 * spec); cruddur's own settings start with CRUDDUR_. README.md lists them
 * all; keep the two in step.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cmdsel.h"
#include "log.h"
#include "cloudwatch.h"
#include "rollbar.h"
#include "xray.h"

struct crd_config crd_cfg;

/* Defaults from the OTel SDK environment variable specification. */
#define CRD_DEF_SCHEDULE_DELAY_MS 5000
#define CRD_DEF_EXPORT_TIMEOUT_MS 30000
#define CRD_DEF_MAX_QUEUE	  2048
#define CRD_DEF_MAX_BATCH	  512
#define CRD_DEF_OTLP_TIMEOUT_MS	  10000
#define CRD_DEF_OTLP_ENDPOINT	  "http://localhost:4318"
#define CRD_HONEYCOMB_ENDPOINT	  "https://api.honeycomb.io"
/* cruddur's own defaults. */
#define CRD_DEF_FILE	      "/tmp/cruddur-traces.jsonl"
#define CRD_DEF_MAX_CONNS     65536
#define CRD_DEF_EXEC_FLUSH_MS 1000
/* Sanity caps: beyond these a value is a typo, not a wish. */
#define CRD_MAX_MS	  (24L * 3600 * 1000)
#define CRD_MAX_QUEUE_CAP (1L << 20)

const char *crd_env(const char *name)
{
	const char *v = getenv(name);
	return (v && *v) ? v : NULL;
}

char *crd_xstrdup(const char *s)
{
	char *d = strdup(s ? s : "");
	if (!d)
		abort(); /* at load, with the app not started: nothing to save */
	return d;
}

int crd_parse_bool(const char *s)
{
	return s && strcasecmp(s, "true") == 0;
}

int crd_parse_uint(const char *s, long max, long *out)
{
	char *end;
	long v;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtol(s, &end, 10);
	if (*end)
		return -EINVAL;
	if (errno == ERANGE || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}

int crd_percent_decode(char *s)
{
	char *w = s;

	for (; *s; s++) {
		if (*s != '%') {
			*w++ = *s;
			continue;
		}
		int hi = hexval((unsigned char)s[1]),
		    lo = hi < 0 ? -1 : hexval((unsigned char)s[2]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		*w++ = (char)(hi << 4 | lo);
		s += 2;
	}
	*w = 0;
	return 0;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
		*--e = 0;
	return s;
}

int crd_parse_kv_list(const char *s, struct crd_kv *kv, size_t max, size_t *n)
{
	char *copy = crd_xstrdup(s), *save = NULL, *item;
	int rc = 0;

	*n = 0;
	for (item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(item, '='), *k, *v;
		if (!eq) {
			rc = -EINVAL;
			continue;
		}
		*eq = 0;
		k = trim(item);
		v = trim(eq + 1);
		if (!*k || crd_percent_decode(k) || crd_percent_decode(v) || *n == max) {
			rc = -EINVAL;
			continue;
		}
		kv[*n].key = crd_xstrdup(k);
		kv[*n].value = crd_xstrdup(v);
		(*n)++;
	}
	free(copy);
	return rc ? rc : (int)*n;
}

/* A number setting: default on absence, default plus one warning on junk. */
static int num_setting(const char *name, long def, long max)
{
	const char *v = crd_env(name);
	long out;

	if (!v)
		return (int)def;
	if (crd_parse_uint(v, max, &out)) {
		crd_warn("%s=%s: not a whole number in 0..%ld; using %ld", name, v, max, def);
		return (int)def;
	}
	return (int)out;
}

/* The signal-specific variable wins over the generic one (OTLP spec). */
static const char *otlp_env(const char *traces_name, const char *name)
{
	const char *v = crd_env(traces_name);
	return v ? v : crd_env(name);
}

static int has_header(const char *name)
{
	for (size_t i = 0; i < crd_cfg.otlp_nheaders; i++)
		if (!strcasecmp(crd_cfg.otlp_headers[i].key, name))
			return 1;
	return 0;
}

static void add_header(const char *k, const char *v)
{
	/* Header values are credentials more often than not (x-honeycomb-team,
	 * api-key, Authorization): never in a log line (issue #8). */
	crd_log_secret(v);
	if (crd_cfg.otlp_nheaders < CRD_MAX_HEADERS && !has_header(k)) {
		crd_cfg.otlp_headers[crd_cfg.otlp_nheaders].key = crd_xstrdup(k);
		crd_cfg.otlp_headers[crd_cfg.otlp_nheaders].value = crd_xstrdup(v);
		crd_cfg.otlp_nheaders++;
	}
}

static void load_headers(void)
{
	/* Traces-specific headers first, so they win on a duplicate name. */
	static const char *const names[] = {"OTEL_EXPORTER_OTLP_TRACES_HEADERS",
					    "OTEL_EXPORTER_OTLP_HEADERS"};
	for (size_t i = 0; i < 2; i++) {
		struct crd_kv kv[CRD_MAX_HEADERS];
		size_t n = 0;
		const char *v = crd_env(names[i]);
		if (!v)
			continue;
		if (crd_parse_kv_list(v, kv, CRD_MAX_HEADERS, &n) < 0)
			crd_warn("%s: entries not of the form key=value (percent-encoded) were "
				 "ignored",
				 names[i]);
		for (size_t j = 0; j < n; j++) {
			add_header(kv[j].key, kv[j].value);
			free(kv[j].key);
			free(kv[j].value);
		}
	}
	if (crd_env("HONEYCOMB_API_KEY"))
		add_header("x-honeycomb-team", crd_env("HONEYCOMB_API_KEY"));
	if (crd_env("HONEYCOMB_DATASET"))
		add_header("x-honeycomb-dataset", crd_env("HONEYCOMB_DATASET"));
}

static int valid_url(const char *u)
{
	return (!strncmp(u, "http://", 7) && u[7]) || (!strncmp(u, "https://", 8) && u[8]);
}

static void load_otlp(void)
{
	const char *traces = crd_env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
	const char *base = crd_env("OTEL_EXPORTER_OTLP_ENDPOINT");
	const char *v;

	if (traces) {
		crd_cfg.otlp_traces_url = crd_xstrdup(traces);
	} else {
		/* The base URL gets "v1/traces" appended with exactly one '/'. */
		if (!base)
			base = crd_env("HONEYCOMB_API_KEY") ? CRD_HONEYCOMB_ENDPOINT
							    : CRD_DEF_OTLP_ENDPOINT;
		size_t n = strlen(base);
		char *u = malloc(n + sizeof("/v1/traces"));
		if (!u)
			abort();
		memcpy(u, base, n);
		if (n && base[n - 1] == '/')
			n--;
		memcpy(u + n, "/v1/traces", sizeof("/v1/traces"));
		crd_cfg.otlp_traces_url = u;
	}
	if (!valid_url(crd_cfg.otlp_traces_url)) {
		crd_error("%s=%s: not an http:// or https:// URL; OTLP export disabled",
			  traces ? "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
				 : "OTEL_EXPORTER_OTLP_ENDPOINT",
			  traces ? traces : base);
		crd_cfg.otlp_enabled = 0;
	}

	crd_cfg.otlp_protocol = CRD_OTLP_PROTOBUF;
	v = otlp_env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL");
	if (v && !strcmp(v, "http/json"))
		crd_cfg.otlp_protocol = CRD_OTLP_JSON;
	else if (v && strcmp(v, "http/protobuf"))
		crd_warn("OTEL_EXPORTER_OTLP_PROTOCOL=%s: only http/protobuf and http/json are "
			 "supported; using http/protobuf",
			 v);

	v = otlp_env("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "OTEL_EXPORTER_OTLP_COMPRESSION");
	crd_cfg.otlp_gzip = v && !strcmp(v, "gzip");
	if (v && !crd_cfg.otlp_gzip && strcmp(v, "none"))
		crd_warn("OTEL_EXPORTER_OTLP_COMPRESSION=%s: only gzip and none are supported; "
			 "sending uncompressed",
			 v);

	crd_cfg.otlp_timeout_ms = num_setting(crd_env("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT")
						  ? "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"
						  : "OTEL_EXPORTER_OTLP_TIMEOUT",
					      CRD_DEF_OTLP_TIMEOUT_MS, CRD_MAX_MS);
	v = otlp_env("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", "OTEL_EXPORTER_OTLP_CERTIFICATE");
	crd_cfg.otlp_ca_file = v ? crd_xstrdup(v) : NULL;
	load_headers();
}

static void load_exporters(void)
{
	const char *v = crd_env("OTEL_TRACES_EXPORTER");

	if (!v) {
		/* Nothing said: OTLP when an endpoint is configured, else the
		 * embedded default, a local JSONL file. */
		crd_cfg.otlp_enabled = crd_env("OTEL_EXPORTER_OTLP_ENDPOINT") ||
				       crd_env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") ||
				       crd_env("HONEYCOMB_API_KEY");
		crd_cfg.file_enabled = crd_cfg.file_default = !crd_cfg.otlp_enabled;
	} else {
		char *copy = crd_xstrdup(v), *save = NULL, *item;
		for (item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
			item = trim(item);
			if (!strcmp(item, "otlp"))
				crd_cfg.otlp_enabled = 1;
			else if (!strcmp(item, "console"))
				crd_cfg.console_enabled = 1;
			else if (!strcmp(item, "file"))
				crd_cfg.file_enabled = 1;
			else if (strcmp(item, "none"))
				crd_warn("OTEL_TRACES_EXPORTER: unknown exporter '%s' ignored "
					 "(otlp, console, file, none)",
					 item);
		}
		free(copy);
	}
	if (crd_env("CRUDDUR_FILE")) {
		crd_cfg.file_enabled = 1;
		crd_cfg.file_default = 0;
	}
	crd_cfg.file_path =
	    crd_xstrdup(crd_env("CRUDDUR_FILE") ? crd_env("CRUDDUR_FILE") : CRD_DEF_FILE);
	if (crd_cfg.otlp_enabled)
		load_otlp();
}

static void load_sampler(void)
{
	static const struct {
		const char *name;
		int sampler;
	} samplers[] = {
	    {"always_on", CRD_SAMPLER_ALWAYS_ON},
	    {"always_off", CRD_SAMPLER_ALWAYS_OFF},
	    {"traceidratio", CRD_SAMPLER_RATIO},
	    {"parentbased_always_on", CRD_SAMPLER_PB_ALWAYS_ON},
	    {"parentbased_always_off", CRD_SAMPLER_PB_ALWAYS_OFF},
	    {"parentbased_traceidratio", CRD_SAMPLER_PB_RATIO},
	};
	const char *v = crd_env("OTEL_TRACES_SAMPLER"), *arg = crd_env("OTEL_TRACES_SAMPLER_ARG");
	size_t i;

	crd_cfg.sampler = CRD_SAMPLER_PB_ALWAYS_ON;
	crd_cfg.sampler_ratio = 1.0;
	if (v) {
		for (i = 0; i < sizeof(samplers) / sizeof(samplers[0]); i++)
			if (!strcmp(v, samplers[i].name))
				break;
		if (i < sizeof(samplers) / sizeof(samplers[0]))
			crd_cfg.sampler = samplers[i].sampler;
		else
			crd_warn("OTEL_TRACES_SAMPLER=%s: unsupported; using parentbased_always_on",
				 v);
	}
	if (arg &&
	    (crd_cfg.sampler == CRD_SAMPLER_RATIO || crd_cfg.sampler == CRD_SAMPLER_PB_RATIO)) {
		char *end;
		double r = strtod(arg, &end);
		if (*end || !(r >= 0.0 && r <= 1.0))
			crd_warn("OTEL_TRACES_SAMPLER_ARG=%s: not a ratio in [0, 1]; using 1.0",
				 arg);
		else
			crd_cfg.sampler_ratio = r;
	}
}

static void load_resource(void)
{
	const char *v = crd_env("OTEL_RESOURCE_ATTRIBUTES");

	if (v &&
	    crd_parse_kv_list(v, crd_cfg.resource, CRD_MAX_RESOURCE_ATTRS, &crd_cfg.nresource) < 0)
		crd_warn("OTEL_RESOURCE_ATTRIBUTES: entries not of the form key=value "
			 "(percent-encoded) were ignored");
	if (crd_env("OTEL_SERVICE_NAME")) {
		crd_cfg.service_name = crd_xstrdup(crd_env("OTEL_SERVICE_NAME"));
		return;
	}
	for (size_t i = 0; i < crd_cfg.nresource; i++)
		if (!strcmp(crd_cfg.resource[i].key, "service.name")) {
			crd_cfg.service_name = crd_xstrdup(crd_cfg.resource[i].value);
			return;
		}
	/* The SDK default: unknown_service:<executable name>. */
	extern char *program_invocation_short_name;
	size_t n = strlen(program_invocation_short_name);
	crd_cfg.service_name = malloc(sizeof("unknown_service:") + n);
	if (!crd_cfg.service_name)
		abort();
	memcpy(crd_cfg.service_name, "unknown_service:", sizeof("unknown_service:") - 1);
	memcpy(crd_cfg.service_name + sizeof("unknown_service:") - 1, program_invocation_short_name,
	       n + 1);
}

/* Query parameter names whose values never leave the process (issue:
 * secrets): matched as lowercase substrings of the name, plus X-Amz-*. */
static const char *const default_redact[] = {"token",  "key",	    "secret",	  "password",
					     "passwd", "signature", "credential", "session"};

static void load_redact(void)
{
	const char *v = crd_env("CRUDDUR_REDACT");
	char *copy, *save = NULL, *item;

	for (size_t i = 0; i < sizeof(default_redact) / sizeof(default_redact[0]); i++)
		crd_cfg.redact[crd_cfg.nredact++] = crd_xstrdup(default_redact[i]);
	if (!v)
		return;
	copy = crd_xstrdup(v);
	for (item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		item = trim(item);
		if (!*item)
			continue;
		if (crd_cfg.nredact == sizeof(crd_cfg.redact) / sizeof(crd_cfg.redact[0])) {
			crd_warn("CRUDDUR_REDACT: more than %zu names; the rest are ignored",
				 crd_cfg.nredact);
			break;
		}
		for (char *p = item; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		crd_cfg.redact[crd_cfg.nredact++] = crd_xstrdup(item);
	}
	free(copy);
}

static void load_log_level(void)
{
	static const char *const levels[] = {"off", "error", "warn", "info", "debug"};
	const char *v = crd_env("CRUDDUR_LOG");

	if (!v)
		return;
	for (int i = 0; i < 5; i++)
		if (!strcasecmp(v, levels[i])) {
			crd_log_level = i;
			return;
		}
	crd_warn("CRUDDUR_LOG=%s: use off, error, warn, info or debug; using warn", v);
}

/* Our own credentials, registered before any message can echo them
 * (issue #8: never in a log line, whatever goes wrong). */
static void register_secrets(void)
{
	static const char *const names[] = {"HONEYCOMB_API_KEY", "ROLLBAR_ACCESS_TOKEN",
					    "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"};

	static const char *const header_vars[] = {"OTEL_EXPORTER_OTLP_TRACES_HEADERS",
						  "OTEL_EXPORTER_OTLP_HEADERS"};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		crd_log_secret(crd_env(names[i]));
	/* Header values, decoded as they will be sent (a message about an
	 * earlier setting may echo one). */
	for (size_t i = 0; i < sizeof(header_vars) / sizeof(header_vars[0]); i++) {
		struct crd_kv kv[CRD_MAX_HEADERS];
		size_t n = 0;
		if (!crd_env(header_vars[i]))
			continue;
		crd_parse_kv_list(crd_env(header_vars[i]), kv, CRD_MAX_HEADERS, &n);
		for (size_t j = 0; j < n; j++) {
			crd_log_secret(kv[j].value);
			free(kv[j].key);
			free(kv[j].value);
		}
	}
}

void crd_config_load(void)
{
	static int loaded;
	const char *v;

	if (loaded)
		return;
	loaded = 1;
	register_secrets();
	load_log_level();
	v = crd_env("CRUDDUR_DISABLED");
	crd_cfg.disabled = crd_parse_bool(crd_env("OTEL_SDK_DISABLED")) ||
			   (v && (!strcmp(v, "1") || crd_parse_bool(v)));
	if (crd_cfg.disabled)
		return;
	/* A skipped command stays passive: nothing else is read (or reported). */
	crd_cfg.skipped = crd_cmds_skip_this_process(); /* cmdsel.c */
	if (crd_cfg.skipped)
		return;

	crd_cfg.schedule_delay_ms =
	    num_setting("OTEL_BSP_SCHEDULE_DELAY", CRD_DEF_SCHEDULE_DELAY_MS, CRD_MAX_MS);
	crd_cfg.export_timeout_ms =
	    num_setting("OTEL_BSP_EXPORT_TIMEOUT", CRD_DEF_EXPORT_TIMEOUT_MS, CRD_MAX_MS);
	crd_cfg.max_queue =
	    num_setting("OTEL_BSP_MAX_QUEUE_SIZE", CRD_DEF_MAX_QUEUE, CRD_MAX_QUEUE_CAP);
	crd_cfg.max_batch =
	    num_setting("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", CRD_DEF_MAX_BATCH, CRD_MAX_QUEUE_CAP);
	if (crd_cfg.max_queue < 1)
		crd_cfg.max_queue = 1;
	/* The spec: the batch size must be <= the queue size. */
	if (crd_cfg.max_batch < 1 || crd_cfg.max_batch > crd_cfg.max_queue)
		crd_cfg.max_batch = crd_cfg.max_queue;
	crd_cfg.max_conns = num_setting("CRUDDUR_MAX_CONNS", CRD_DEF_MAX_CONNS, 1L << 22);
	crd_cfg.exec_flush_ms =
	    num_setting("CRUDDUR_EXEC_FLUSH_MS", CRD_DEF_EXEC_FLUSH_MS, CRD_MAX_MS);

	/* Spans queued at a crash are saved in the spool (spanspool.h)
	 * unless CRUDDUR_CRASH_SPANS=0. */
	v = crd_env("CRUDDUR_CRASH_SPANS");
	crd_cfg.crash_spans = !(v && (!strcmp(v, "0") || !strcasecmp(v, "false")));
	crd_cfg.ship_spool =
	    crd_env("CRUDDUR_SHIP_SPOOL") && !strcmp(crd_env("CRUDDUR_SHIP_SPOOL"), "1");
	v = crd_env("CRUDDUR_PROPAGATE");
	crd_cfg.propagate = !(v && (!strcmp(v, "0") || !strcasecmp(v, "false")));
	crd_cfg.xray_propagate = crd_env("AWS_XRAY_DAEMON_ADDRESS") != NULL;
	load_redact();
	load_sampler();
	load_resource();
	load_exporters();
	crd_xray_config_load();	      /* X-Ray settings and sampling rules (xray.c) */
	crd_rollbar_config_load();    /* Rollbar settings (rollbar.c) */
	crd_cloudwatch_config_load(); /* CloudWatch Logs settings (cloudwatch.c) */
}
