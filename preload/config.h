/* config.h - every setting, read once at load.
 *
 * The environment is read in the constructor and copied: nginx clears its
 * workers' environment after fork, and the exporter starts later. A bad
 * value is reported once (`cruddur: NAME=...: why; what happens instead`)
 * and never stops the app: numbers fall back to their default, an unusable
 * exporter setting disables that exporter.
 *
 * Thread safety: written only by crd_config_load() before any hook does
 * work; read-only afterwards.
 */
#ifndef CRD_CONFIG_H
#define CRD_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "span.h"

enum crd_sampler {
	CRD_SAMPLER_ALWAYS_ON,
	CRD_SAMPLER_ALWAYS_OFF,
	CRD_SAMPLER_RATIO,
	CRD_SAMPLER_PB_ALWAYS_ON,
	CRD_SAMPLER_PB_ALWAYS_OFF,
	CRD_SAMPLER_PB_RATIO,
};

enum crd_otlp_protocol { CRD_OTLP_PROTOBUF, CRD_OTLP_JSON };

#define CRD_MAX_HEADERS	       16 /* OTEL_EXPORTER_OTLP_HEADERS entries */
#define CRD_MAX_RESOURCE_ATTRS 24 /* OTEL_RESOURCE_ATTRIBUTES entries */

struct crd_kv {
	char *key;
	char *value;
};

struct crd_config {
	int disabled; /* OTEL_SDK_DISABLED=true / CRUDDUR_DISABLED=1 */
	int skipped;  /* CRUDDUR_ONLY_CMDS/CRUDDUR_SKIP_CMDS: not this command */

	/* exporters */
	int otlp_enabled;      /* OTLP/HTTP traces */
	int console_enabled;   /* one line per span on stderr */
	int file_enabled;      /* JSONL file (the embedded default) */
	char *otlp_traces_url; /* full URL, /v1/traces included */
	int otlp_protocol;     /* enum crd_otlp_protocol */
	int otlp_gzip;
	int otlp_timeout_ms;
	char *otlp_ca_file; /* OTEL_EXPORTER_OTLP_CERTIFICATE */
	struct crd_kv otlp_headers[CRD_MAX_HEADERS];
	size_t otlp_nheaders;
	char *file_path;  /* CRUDDUR_FILE */
	int file_default; /* the file is the embedded default, not asked for */

	/* batch span processor */
	int schedule_delay_ms;
	int export_timeout_ms;
	int max_queue;
	int max_batch;

	/* sampling */
	int sampler; /* enum crd_sampler */
	double sampler_ratio;

	/* resource */
	char *service_name;
	struct crd_kv resource[CRD_MAX_RESOURCE_ATTRS];
	size_t nresource;

	/* propagation */
	int propagate;	    /* CRUDDUR_PROPAGATE: inject headers into client requests */
	int xray_propagate; /* X-Ray configured: X-Amzn-Trace-Id too */

	/* redaction: query parameter names (substrings, lowercase) whose
	 * values are exported as REDACTED; CRUDDUR_REDACT adds to them */
	char *redact[32];
	size_t nredact;

	/* cruddur's own */
	int max_conns;	   /* tracked connections at once */
	int exec_flush_ms; /* flush budget before execve */
	int crash_spans;   /* CRUDDUR_CRASH_SPANS: spool queued spans at a crash */
	int ship_spool;	   /* CRUDDUR_SHIP_SPOOL=1: export spooled spans at exit
			    * even if idle (scripts/cruddur-run's shipper) */
};

extern struct crd_config crd_cfg;

/* Read the environment into crd_cfg (reporting bad values). Idempotent. */
void crd_config_load(void);

/* Shared by every module's settings loader (load time only): the value
 * of an environment variable, NULL when unset or empty; a strdup that
 * cannot fail (it aborts at load, before the app started, on ENOMEM). */
const char *crd_env(const char *name);
char *crd_xstrdup(const char *s);

/* Helpers shared with the tests. */
int crd_parse_bool(const char *s);			/* 1 only for "true" (any case) */
int crd_parse_uint(const char *s, long max, long *out); /* 0 or -EINVAL/-ERANGE */
/* Parse "k=v,k2=v2" with percent-decoded values into kv (heap copies).
 * Returns entries parsed or -EINVAL (kv left with the good ones, *n set). */
int crd_parse_kv_list(const char *s, struct crd_kv *kv, size_t max, size_t *n);
/* Percent-decode in place; returns 0 or -EINVAL on a bad escape. */
int crd_percent_decode(char *s);

#endif
