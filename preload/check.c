/* check.c - CRUDDUR_CHECK=1: the library reports the settings it parsed.
 *
 * `cruddur-run --check` preloads the library into a trivial program
 * (/bin/true) with CRUDDUR_CHECK=1 set. The constructor reads the
 * settings exactly as it does in any app (crd_config_load()), so the
 * report cannot disagree with what the library decides; then
 * crd_check_report() prints, on stderr, one `cruddur: check: ...` line per
 * exporter (where it sends), the sampling and batch settings, and last
 * `cruddur: check: problems N`: the warnings and errors the settings
 * loaders printed (each as its usual one `cruddur:` line, shown whatever
 * CRUDDUR_LOG says) plus what this check adds (libcurl or libunwind not
 * loadable, an unreadable CA file). The library then stays inactive in
 * that process: no hooks, no exporter, no crash handlers.
 *
 * Secrets are never printed: tokens, keys and OTLP header values appear as
 * `set` (with their last 4 characters when they are long enough for that
 * to reveal nothing useful) or `unset`; URLs lose any user:password and
 * query string.
 *
 * Thread safety: runs once, in the constructor, before main.
 */
#include "check.h"

#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cloudwatch.h"
#include "config.h"
#include "log.h"
#include "rollbar.h"
#include "version.h"
#include "xray.h"

/* One report line: a URL (at most 2048 characters, the validity cap of
 * the URL settings) and a few short fields. Longer lines are cut. */
#define CRD_CHECK_LINE_MAX 3072
/* A secret shows its last 4 characters only when it has at least this
 * many: 4 of 16 leave 12 unknown characters (Rollbar tokens are 32, AWS
 * access key ids 20). */
#define CRD_CHECK_SECRET_TAIL_MIN 16
/* What the HTTP exporters and the crash unwinder dlopen (export/curl_dl.c,
 * preload/crash.c). */
#define CRD_CHECK_LIBCURL   "libcurl.so.4"
#define CRD_CHECK_LIBUNWIND "libunwind.so.8"

int crd_check_requested(void)
{
	const char *v = getenv("CRUDDUR_CHECK");

	return v && (!strcmp(v, "1") || !strcasecmp(v, "true"));
}

static void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void out(const char *fmt, ...)
{
	char line[CRD_CHECK_LINE_MAX];
	va_list ap;

	va_start(ap, fmt);
	crd_log_vline(line, sizeof(line), "cruddur: check: ", fmt, ap);
	va_end(ap);
}

/* "unset", "set", or "set (...abcd)". */
static const char *secret(char *buf, size_t cap, const char *v)
{
	size_t n = v ? strlen(v) : 0;

	if (!n)
		return "unset";
	if (n < CRD_CHECK_SECRET_TAIL_MIN)
		return "set";
	snprintf(buf, cap, "set (...%s)", v + n - 4);
	return buf;
}

/* A URL without user:password@ (REDACTED:REDACTED@, as log.c writes it) and without its query
 * string, either of which may carry a credential. */
static const char *safe_url(char *buf, size_t cap, const char *u)
{
	const char *host, *at, *end;

	if (!u)
		return "-";
	host = strstr(u, "://");
	host = host ? host + 3 : u;
	end = host + strcspn(host, "/?#");
	at = memchr(host, '@', (size_t)(end - host));
	if (at)
		snprintf(buf, cap, "%.*sREDACTED:REDACTED@%s", (int)(host - u), u, at + 1);
	else
		snprintf(buf, cap, "%s", u);
	buf[strcspn(buf, "?#")] = 0;
	if (strchr(u, '?'))
		strncat(buf, "?REDACTED", cap - strlen(buf) - 1);
	return buf;
}

/* Can the dynamic loader find lib? Only in the check process: dlopen may
 * run the library's constructors. */
static int loadable(const char *lib)
{
	void *h = dlopen(lib, RTLD_LAZY | RTLD_LOCAL);

	if (!h)
		return 0;
	dlclose(h);
	return 1;
}

static void report_otlp(void)
{
	char u[CRD_CHECK_LINE_MAX / 2], hs[CRD_CHECK_LINE_MAX / 2], b[32];
	size_t n = 0;

	if (!crd_cfg.otlp_enabled) {
		out("otlp: off");
		return;
	}
	hs[0] = 0;
	for (size_t i = 0; i < crd_cfg.otlp_nheaders && n < sizeof(hs); i++)
		n += (size_t)snprintf(hs + n, sizeof(hs) - n, "%s%s %s", i ? ", " : "",
				      crd_cfg.otlp_headers[i].key,
				      secret(b, sizeof(b), crd_cfg.otlp_headers[i].value));
	out("otlp: %s to %s, %s, timeout %d ms, CA %s, headers: %s",
	    crd_cfg.otlp_protocol == CRD_OTLP_JSON ? "http/json" : "http/protobuf",
	    safe_url(u, sizeof(u), crd_cfg.otlp_traces_url),
	    crd_cfg.otlp_gzip ? "gzip" : "uncompressed", crd_cfg.otlp_timeout_ms,
	    crd_cfg.otlp_ca_file ? crd_cfg.otlp_ca_file : "system store", n ? hs : "none");
	if (crd_cfg.otlp_ca_file && access(crd_cfg.otlp_ca_file, R_OK))
		crd_error("OTEL_EXPORTER_OTLP_CERTIFICATE=%s: cannot be read; https export will "
			  "fail",
			  crd_cfg.otlp_ca_file);
}

static void report_xray(void)
{
	const struct crd_xray_config *x = &crd_xray_cfg;

	if (!x->enabled) {
		out("xray: off%s", crd_env("AWS_XRAY_DAEMON_ADDRESS") &&
					   crd_parse_bool(crd_env("AWS_XRAY_SDK_DISABLED"))
				       ? " (AWS_XRAY_SDK_DISABLED=true)"
				       : "");
		return;
	}
	out("xray: segments to udp %s:%u (sampling API tcp %s:%u), segment name \"%s\"%s%s%s%s",
	    x->udp_host, x->udp_port, x->tcp_host, x->tcp_port, x->name,
	    x->naming ? ", dynamic naming " : "", x->naming ? x->naming : "",
	    x->origin ? ", origin " : "", x->origin ? x->origin : "");
}

static void report_rollbar(void)
{
	const struct crd_rollbar_config *r = &crd_rb_cfg;
	char u[CRD_CHECK_LINE_MAX / 2], b[32], spool[CRD_SPOOL_DIR_MAX];

	if (!r->enabled) {
		out("rollbar: off");
		return;
	}
	if (crd_spool_dir(spool, sizeof(spool)) < 0)
		snprintf(spool, sizeof(spool), "-");
	out("rollbar: items to %s, token %s, environment %s, code_version %s, 5xx items at "
	    "most %d/min, crash reports %s, spool %s",
	    safe_url(u, sizeof(u), r->endpoint), secret(b, sizeof(b), r->token), r->environment,
	    r->code_version ? r->code_version : "unset", r->max_per_min,
	    r->crash_enabled ? "on" : "off", spool);
}

static void report_cloudwatch(void)
{
	const struct crd_cloudwatch_config *c = &crd_cw_cfg;
	char u[CRD_CHECK_LINE_MAX / 2], b[32];

	if (!c->enabled) {
		out("cloudwatch: off");
		return;
	}
	out("cloudwatch: group %s, stream %s, region %s, endpoint %s, access key %s, secret key "
	    "%s, session token %s, format %s",
	    c->log_group, c->log_stream ? c->log_stream : "<host>/<service>/<pid>", c->region,
	    safe_url(u, sizeof(u), c->endpoint), secret(b, sizeof(b), c->access_key),
	    c->secret_key ? "set" : "unset", c->session_token ? "set" : "unset",
	    c->json ? "json" : "text");
}

static void report_sampling(void)
{
	static const char *const names[] = {
	    [CRD_SAMPLER_ALWAYS_ON] = "always_on",
	    [CRD_SAMPLER_ALWAYS_OFF] = "always_off",
	    [CRD_SAMPLER_RATIO] = "traceidratio",
	    [CRD_SAMPLER_PB_ALWAYS_ON] = "parentbased_always_on",
	    [CRD_SAMPLER_PB_ALWAYS_OFF] = "parentbased_always_off",
	    [CRD_SAMPLER_PB_RATIO] = "parentbased_traceidratio",
	};
	const struct crd_xray_rules *rs = &crd_xray_cfg.rules;

	if (crd_xray_cfg.enabled && crd_xray_cfg.root_sampler) {
		if (rs->format == CRD_XRAY_RULES_BUILTIN)
			out("sampling: X-Ray default rule, %u/s then %g%% (incoming decisions win)",
			    rs->def.fixed_target, rs->def.rate * 100);
		else
			out("sampling: X-Ray rules from %s, %zu rules, default %u/s then %g%% "
			    "(incoming decisions win)",
			    crd_env("CRUDDUR_XRAY_SAMPLING_RULES"), rs->n, rs->def.fixed_target,
			    rs->def.rate * 100);
		return;
	}
	if (crd_cfg.sampler == CRD_SAMPLER_RATIO || crd_cfg.sampler == CRD_SAMPLER_PB_RATIO)
		out("sampling: %s, ratio %g", names[crd_cfg.sampler], crd_cfg.sampler_ratio);
	else
		out("sampling: %s", names[crd_cfg.sampler]);
}

void crd_check_report(void)
{
	extern char *program_invocation_short_name;
	int http = crd_cfg.otlp_enabled || crd_rb_cfg.enabled || crd_cw_cfg.enabled;

	if (crd_cfg.disabled) {
		out("%s %s: disabled by OTEL_SDK_DISABLED or CRUDDUR_DISABLED; nothing is traced",
		    CRD_NAME, CRD_VERSION);
		out("problems %u", crd_log_problems);
		return;
	}
	if (crd_cfg.skipped) {
		/* config.c reads nothing else for such a command. */
		out("%s %s: %s is not traced (CRUDDUR_ONLY_CMDS / CRUDDUR_SKIP_CMDS)", CRD_NAME,
		    CRD_VERSION, program_invocation_short_name);
		out("problems %u", crd_log_problems);
		return;
	}
	out("%s %s in %s: service.name %s", CRD_NAME, CRD_VERSION, program_invocation_short_name,
	    crd_cfg.service_name);
	out("exporters:%s%s%s%s%s%s%s", crd_cfg.otlp_enabled ? " otlp" : "",
	    crd_xray_cfg.enabled ? " xray" : "", crd_rb_cfg.enabled ? " rollbar" : "",
	    crd_cw_cfg.enabled ? " cloudwatch" : "", crd_cfg.file_enabled ? " file" : "",
	    crd_cfg.console_enabled ? " console" : "",
	    crd_cfg.otlp_enabled || crd_xray_cfg.enabled || crd_rb_cfg.enabled ||
		    crd_cw_cfg.enabled || crd_cfg.file_enabled || crd_cfg.console_enabled
		? ""
		: " none (spans are made and dropped)");
	report_otlp();
	report_xray();
	report_rollbar();
	report_cloudwatch();
	if (crd_cfg.file_enabled)
		out("file: OTLP/JSON lines to %s%s", crd_cfg.file_path,
		    crd_cfg.file_default ? " (the embedded default: no exporter configured)" : "");
	else
		out("file: off");
	out("console: %s", crd_cfg.console_enabled ? "one line per span on stderr" : "off");
	report_sampling();
	out("batch: every %d ms or %d spans, queue %d, export timeout %d ms, exec flush %d ms",
	    crd_cfg.schedule_delay_ms, crd_cfg.max_batch, crd_cfg.max_queue,
	    crd_cfg.export_timeout_ms, crd_cfg.exec_flush_ms);
	out("propagation: %s", !crd_cfg.propagate	? "off"
			       : crd_cfg.xray_propagate ? "traceparent, X-Amzn-Trace-Id"
							: "traceparent");
	if (http && !loadable(CRD_CHECK_LIBCURL))
		crd_error("cannot load %s: the HTTP exporters (OTLP, Rollbar, CloudWatch) will "
			  "not send; install libcurl4",
			  CRD_CHECK_LIBCURL);
	if (crd_rb_cfg.enabled && crd_rb_cfg.crash_enabled && !loadable(CRD_CHECK_LIBUNWIND))
		crd_warn("cannot load %s: crash reports will have no stack trace; install "
			 "libunwind8",
			 CRD_CHECK_LIBUNWIND);
	out("problems %u", crd_log_problems);
}
