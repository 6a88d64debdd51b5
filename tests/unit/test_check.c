/* Unit tests: the CRUDDUR_CHECK=1 report (preload/check.c) and the
 * problem count it ends with (preload/log.c). */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../preload/check.h"
#include "../../preload/cloudwatch.h"
#include "../../preload/config.h"
#include "../../preload/log.h"
#include "../../preload/rollbar.h"

#define TOKEN "0123456789abcdef0123456789abcdef"

/* Run crd_check_report() with fd 2 sent to a file; return what it wrote. */
static char *report(void)
{
	static char buf[16384];
	char path[] = "/tmp/crd-unit-check-XXXXXX";
	int fd = mkstemp(path), saved = dup(2);
	ssize_t n;

	cr_assert(fd >= 0 && saved >= 0);
	unlink(path);
	fflush(stderr);
	dup2(fd, 2);
	crd_check_report();
	dup2(saved, 2);
	close(saved);
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	return buf;
}

Test(check, requested)
{
	setenv("CRUDDUR_CHECK", "1", 1);
	cr_assert(crd_check_requested());
	setenv("CRUDDUR_CHECK", "TRUE", 1);
	cr_assert(crd_check_requested());
	setenv("CRUDDUR_CHECK", "0", 1);
	cr_assert(!crd_check_requested());
	unsetenv("CRUDDUR_CHECK");
	cr_assert(!crd_check_requested());
}

Test(check, problems_counted_whatever_the_level)
{
	int level = crd_log_level;
	unsigned before = crd_log_problems;

	crd_log_level = CRD_LOG_OFF; /* counted even when not printed */
	crd_warn("unit: a warning");
	crd_error("unit: an error");
	crd_info("unit: information is not a problem");
	crd_debug("unit: nor is debug output");
	crd_log_level = level;
	cr_assert_eq(crd_log_problems - before, 2);
}

Test(check, report_shows_settings_never_secrets)
{
	char *out;
	unsigned before;

	crd_config_load();
	crd_cfg.otlp_enabled = 1;
	crd_cfg.otlp_traces_url = "https://user:pw@collector.example:4318/v1/traces?sig=1";
	crd_cfg.otlp_protocol = CRD_OTLP_JSON;
	crd_cfg.otlp_headers[0].key = "x-honeycomb-team";
	crd_cfg.otlp_headers[0].value = TOKEN;
	crd_cfg.otlp_headers[1].key = "x-short";
	crd_cfg.otlp_headers[1].value = "abcd1234";
	crd_cfg.otlp_nheaders = 2;
	crd_cfg.otlp_ca_file = "/nonexistent/ca.pem";
	crd_cfg.sampler = CRD_SAMPLER_RATIO;
	crd_cfg.sampler_ratio = 0.25;
	crd_rb_cfg.enabled = 1;
	crd_rb_cfg.token = TOKEN;
	crd_rb_cfg.endpoint = "https://api.rollbar.com/api/1/item/";
	crd_rb_cfg.environment = "staging";
	before = crd_log_problems;
	out = report();
	cr_assert(strstr(out,
			 "cruddur: check: otlp: http/json to "
			 "https://REDACTED:REDACTED@collector.example:4318/v1/traces?REDACTED"),
		  "%s", out);
	cr_assert(strstr(out, "headers: x-honeycomb-team set (...cdef), x-short set\n"), "%s", out);
	cr_assert(strstr(out, "rollbar: items to https://api.rollbar.com/api/1/item/, token set "
			      "(...cdef), environment staging"),
		  "%s", out);
	cr_assert(strstr(out, "sampling: traceidratio, ratio 0.25"), "%s", out);
	cr_assert(!strstr(out, TOKEN) && !strstr(out, "abcd1234") && !strstr(out, "user:pw"), "%s",
		  out);
	/* the unreadable CA file is a problem, counted in the last line */
	cr_assert(strstr(out, "cruddur: OTEL_EXPORTER_OTLP_CERTIFICATE=/nonexistent/ca.pem"), "%s",
		  out);
	cr_assert_geq(crd_log_problems - before, 1);
	char last[64];
	snprintf(last, sizeof(last), "cruddur: check: problems %u\n", crd_log_problems);
	cr_assert(strlen(out) >= strlen(last) && !strcmp(out + strlen(out) - strlen(last), last),
		  "%s", out);
	crd_rb_cfg.enabled = 0;
	crd_cfg.otlp_enabled = 0;
}
