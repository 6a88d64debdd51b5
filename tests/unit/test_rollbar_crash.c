/* test_rollbar_crash.c - the crash spool format: parsing (including
 * damaged files), the crash item field by field (read back with cJSON),
 * frame order (most recent last), trimming, and signal/si_code names.
 */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../preload/crash.h"
#include "rollbar_enc.h"

static const char SAMPLE[] =
    "cruddur-crash 1\n"
    "time_ns 1700000000123456789\n"
    "pid 4242\n"
    "tid 4243\n"
    "signal 11 SIGSEGV\n"
    "code 1 SEGV_MAPERR\n"
    "addr 0x10\n"
    "thread worker 1\n"
    "exe /srv/app/bin/server\n"
    "service shop\n"
    "environment staging\n"
    "code_version v9\n"
    "host web-7\n"
    "request 0af7651916cd43dd8448eb211c80319c b7ad6b7169203331 POST /orders/42\n"
    "frame 0x55550000126a 0 0x126a s\n"
    "frame 0x555500001400 0 0x13ff c\n"
    "frame 0x7f0000027249 3 0x27249 c\n"
    "frame 0x7f00deadbeef -1 0x0 c\n"
    "frame 0x7f1000001234 10000 0x3234 s\n"
    "module 0 b2cdfa61f9b18554a11b91046b1d26a8d375ec27 v /srv/app/bin/server\n"
    "module 3 93ac61ec5a8eb1396f9fbd350e3169a558528a40 v /lib/x86_64-linux-gnu/libc.so.6\n"
    "module 10000 - f /opt/plugins/late.so\n"
    "end\n";

static struct crd_crash_report rep;

static cJSON *at(cJSON *j, const char *path)
{
	char copy[256], *save = NULL, *k;

	snprintf(copy, sizeof(copy), "%s", path);
	for (k = strtok_r(copy, ".", &save); k && j; k = strtok_r(NULL, ".", &save))
		j = cJSON_GetObjectItemCaseSensitive(j, k);
	return j;
}

static const char *s_at(cJSON *j, const char *path)
{
	cJSON *v = at(j, path);
	cr_assert(cJSON_IsString(v), "%s: not a string", path);
	return v->valuestring;
}

Test(crash_spool, parse_every_line)
{
	cr_assert_eq(crd_crash_parse(SAMPLE, sizeof(SAMPLE) - 1, &rep), 0);
	cr_assert_eq(rep.time_ns, 1700000000123456789ull);
	cr_assert_eq(rep.pid, 4242);
	cr_assert_eq(rep.tid, 4243);
	cr_assert_eq(rep.signo, 11);
	cr_assert_str_eq(rep.signame, "SIGSEGV");
	cr_assert_eq(rep.code, 1);
	cr_assert_str_eq(rep.codename, "SEGV_MAPERR");
	cr_assert_eq(rep.addr, 0x10);
	cr_assert_str_eq(rep.thread, "worker 1");
	cr_assert_str_eq(rep.exe, "/srv/app/bin/server");
	cr_assert_str_eq(rep.service, "shop");
	cr_assert_str_eq(rep.environment, "staging");
	cr_assert_str_eq(rep.code_version, "v9");
	cr_assert_str_eq(rep.host, "web-7");
	cr_assert(rep.has_request);
	cr_assert_str_eq(rep.req_method, "POST");
	cr_assert_str_eq(rep.req_target, "/orders/42");
	cr_assert_str_eq(rep.trace_id, "0af7651916cd43dd8448eb211c80319c");
	cr_assert_str_eq(rep.span_id, "b7ad6b7169203331");
	cr_assert_eq(rep.nframes, 5);
	cr_assert_eq(rep.frames[0].pc, 0x55550000126aull);
	cr_assert_eq(rep.frames[0].module, 0);
	cr_assert_eq(rep.frames[0].offset, 0x126a);
	cr_assert_eq(rep.frames[0].kind, 's');
	cr_assert_eq(rep.frames[1].kind, 'c');
	cr_assert_eq(rep.frames[3].module, -1);
	cr_assert_eq(rep.nmodules, 3);
	cr_assert_eq(rep.modules[0].idx, 0);
	cr_assert_str_eq(rep.modules[0].build_id, "b2cdfa61f9b18554a11b91046b1d26a8d375ec27");
	cr_assert_eq(rep.modules[0].offsets, 'v');
	cr_assert_str_eq(rep.modules[2].build_id, "");
	cr_assert_eq(rep.modules[2].offsets, 'f');
	cr_assert_str_eq(rep.modules[2].path, "/opt/plugins/late.so");
}

Test(crash_spool, damaged_files)
{
	static const char no_signal[] = "cruddur-crash 1\npid 1\n";
	static const char other[] = "cruddur-crash 2\nsignal 11 SIGSEGV\n";
	static const char prefix[] = "cruddur-crash 10\nsignal 11 SIGSEGV\n";

	cr_assert_eq(crd_crash_parse("", 0, &rep), -EINVAL);
	cr_assert_eq(crd_crash_parse("hello", 5, &rep), -EINVAL);
	cr_assert_eq(crd_crash_parse(no_signal, sizeof(no_signal) - 1, &rep), -EINVAL);
	cr_assert_eq(crd_crash_parse(other, sizeof(other) - 1, &rep), -EINVAL);
	cr_assert_eq(crd_crash_parse(prefix, sizeof(prefix) - 1, &rep), -EINVAL);
	/* cut anywhere after the signal line: still a (partial) report, no
	 * read past the end */
	for (size_t n = 90; n < sizeof(SAMPLE) - 1; n += 13) {
		char *copy = malloc(n);
		memcpy(copy, SAMPLE, n);
		cr_assert_eq(crd_crash_parse(copy, n, &rep), 0, "cut at %zu", n);
		free(copy);
	}
}

Test(crash_spool, too_many_frames_are_capped)
{
	size_t cap = 64 * 1024, n;
	char *t = malloc(cap);

	n = (size_t)snprintf(t, cap, "cruddur-crash 1\nsignal 6 SIGABRT\n");
	for (int i = 0; i < CRD_CRASH_MAX_FRAMES + 50; i++)
		n += (size_t)snprintf(t + n, cap - n, "frame 0x%x 0 0x%x c\n", 0x1000 + i, i);
	cr_assert_eq(crd_crash_parse(t, n, &rep), 0);
	cr_assert_eq(rep.nframes, CRD_CRASH_MAX_FRAMES);
	free(t);
}

Test(crash_item, every_field)
{
	static char buf[65536];
	struct crd_rb_meta m = {.environment = "production", .host = "other", .pid = 1};
	ssize_t n;
	cJSON *j, *frames, *custom;

	cr_assert_eq(crd_crash_parse(SAMPLE, sizeof(SAMPLE) - 1, &rep), 0);
	n = crd_rb_encode_crash(buf, sizeof(buf), &rep, &m, "01234567-89ab-4def-bedc-ba9876543210",
				0);
	cr_assert_gt(n, 0);
	j = cJSON_Parse(buf);
	cr_assert_not_null(j, "not JSON: %s", buf);
	/* the report's own environment, code version, host and pid win */
	cr_assert_str_eq(s_at(j, "data.environment"), "staging");
	cr_assert_str_eq(s_at(j, "data.level"), "critical");
	cr_assert_eq(at(j, "data.timestamp")->valuedouble, 1700000000);
	cr_assert_str_eq(s_at(j, "data.code_version"), "v9");
	cr_assert_str_eq(s_at(j, "data.uuid"), "01234567-89ab-4def-bedc-ba9876543210");
	cr_assert_str_eq(s_at(j, "data.server.host"), "web-7");
	cr_assert_eq(at(j, "data.server.pid")->valuedouble, 4242);
	cr_assert_str_eq(s_at(j, "data.server.code_version"), "v9");
	cr_assert_str_eq(s_at(j, "data.body.trace.exception.class"), "SIGSEGV");
	cr_assert_str_eq(s_at(j, "data.body.trace.exception.message"),
			 "SEGV_MAPERR at address 0x10 (signal 11, si_code 1)");
	cr_assert_null(at(j, "data.body.message"));
	/* frames: most recent LAST */
	frames = at(j, "data.body.trace.frames");
	cr_assert_eq(cJSON_GetArraySize(frames), 5);
	cr_assert_str_eq(s_at(cJSON_GetArrayItem(frames, 4), "filename"), "/srv/app/bin/server");
	cr_assert_str_eq(s_at(cJSON_GetArrayItem(frames, 4), "method"), "server+0x126a");
	cr_assert_str_eq(s_at(cJSON_GetArrayItem(frames, 3), "method"), "server+0x13ff");
	cr_assert_str_eq(s_at(cJSON_GetArrayItem(frames, 2), "filename"),
			 "/lib/x86_64-linux-gnu/libc.so.6");
	cr_assert_str_eq(s_at(cJSON_GetArrayItem(frames, 2), "method"), "libc.so.6+0x27249");
	cr_assert_str_eq(s_at(cJSON_GetArrayItem(frames, 1), "filename"), "[unknown]");
	cr_assert_str_eq(s_at(cJSON_GetArrayItem(frames, 1), "method"), "0x7f00deadbeef");
	cr_assert_str_eq(s_at(cJSON_GetArrayItem(frames, 0), "method"),
			 "late.so+0x3234 (file offset)");
	cr_assert_str_eq(s_at(j, "data.request.method"), "POST");
	cr_assert_str_eq(s_at(j, "data.request.url"), "/orders/42");
	custom = at(j, "data.custom");
	cr_assert_str_eq(s_at(custom, "trace_id"), "0af7651916cd43dd8448eb211c80319c");
	cr_assert_str_eq(s_at(custom, "span_id"), "b7ad6b7169203331");
	cr_assert_eq(at(custom, "signal")->valuedouble, 11);
	cr_assert_eq(at(custom, "si_code")->valuedouble, 1);
	cr_assert_str_eq(s_at(custom, "fault_address"), "0x10");
	cr_assert_eq(at(custom, "tid")->valuedouble, 4243);
	cr_assert_str_eq(s_at(custom, "thread"), "worker 1");
	cr_assert_str_eq(s_at(custom, "exe"), "/srv/app/bin/server");
	cr_assert(cJSON_IsFalse(at(custom, "symbolized")));
	cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(custom, "service.name")->valuestring,
			 "shop");
	{
		cJSON *ids = at(custom, "build_ids");
		cr_assert_eq(cJSON_GetArraySize(ids), 2);
		cr_assert_str_eq(
		    cJSON_GetObjectItemCaseSensitive(ids, "/srv/app/bin/server")->valuestring,
		    "b2cdfa61f9b18554a11b91046b1d26a8d375ec27");
	}
	cr_assert_str_eq(s_at(j, "data.notifier.name"), "cruddur");
	cJSON_Delete(j);
}

Test(crash_item, defaults_from_meta_and_no_request)
{
	static const char t[] = "cruddur-crash 1\nsignal 6 SIGABRT\ncode -6 SI_TKILL\naddr 0x0\n"
				"frame 0x1000 -1 0x0 s\n";
	struct crd_rb_meta m = {
	    .environment = "production", .code_version = "m1", .host = "h", .pid = 1};
	char buf[8192];
	cJSON *j;

	cr_assert_eq(crd_crash_parse(t, sizeof(t) - 1, &rep), 0);
	cr_assert_gt(crd_rb_encode_crash(buf, sizeof(buf), &rep, &m, "u", 0), 0);
	j = cJSON_Parse(buf);
	cr_assert_not_null(j);
	cr_assert_str_eq(s_at(j, "data.environment"), "production");
	cr_assert_str_eq(s_at(j, "data.code_version"), "m1");
	cr_assert_str_eq(s_at(j, "data.server.host"), "h");
	cr_assert_str_eq(s_at(j, "data.body.trace.exception.class"), "SIGABRT");
	cr_assert_str_eq(s_at(j, "data.body.trace.exception.message"),
			 "SI_TKILL at address 0x0 (signal 6, si_code -6)");
	cr_assert_null(at(j, "data.request"));
	cr_assert_null(at(j, "data.custom.trace_id"));
	cJSON_Delete(j);
}

Test(crash_item, trimmed_keeps_the_crash_end)
{
	static char t[64 * 1024], buf[64 * 1024];
	struct crd_rb_meta m = {.environment = "production", .pid = 1};
	size_t n = (size_t)snprintf(t, sizeof(t), "cruddur-crash 1\nsignal 11 SIGSEGV\n");
	cJSON *j, *frames;

	for (int i = 0; i < 100; i++)
		n += (size_t)snprintf(t + n, sizeof(t) - n, "frame 0x%x 0 0x%x %c\n", 0x1000 + i, i,
				      i ? 'c' : 's');
	n += (size_t)snprintf(t + n, sizeof(t) - n, "module 0 - v /bin/x\n");
	cr_assert_eq(crd_crash_parse(t, n, &rep), 0);
	cr_assert_gt(crd_rb_encode_crash(buf, sizeof(buf), &rep, &m, "u", 1), 0);
	j = cJSON_Parse(buf);
	cr_assert_not_null(j);
	frames = at(j, "data.body.trace.frames");
	cr_assert_eq(cJSON_GetArraySize(frames), CRD_RB_TRIM_FRAMES);
	cr_assert_str_eq(s_at(cJSON_GetArrayItem(frames, CRD_RB_TRIM_FRAMES - 1), "method"),
			 "x+0x0");
	cJSON_Delete(j);
	/* untrimmed: all 100, still most recent last */
	cr_assert_gt(crd_rb_encode_crash(buf, sizeof(buf), &rep, &m, "u", 0), 0);
	j = cJSON_Parse(buf);
	frames = at(j, "data.body.trace.frames");
	cr_assert_eq(cJSON_GetArraySize(frames), 100);
	cr_assert_str_eq(s_at(cJSON_GetArrayItem(frames, 99), "method"), "x+0x0");
	cr_assert_str_eq(s_at(cJSON_GetArrayItem(frames, 0), "method"), "x+0x63");
	cJSON_Delete(j);
	/* too small a buffer: -ENOSPC, never past cap */
	memset(buf, '#', sizeof(buf));
	cr_assert_eq(crd_rb_encode_crash(buf, 100, &rep, &m, "u", 0), -ENOSPC);
	cr_assert_eq(buf[100], '#');
}

Test(crash_names, signals_and_codes)
{
	cr_assert_str_eq(crd_signal_name(SIGSEGV), "SIGSEGV");
	cr_assert_str_eq(crd_signal_name(SIGBUS), "SIGBUS");
	cr_assert_str_eq(crd_signal_name(SIGFPE), "SIGFPE");
	cr_assert_str_eq(crd_signal_name(SIGILL), "SIGILL");
	cr_assert_str_eq(crd_signal_name(SIGABRT), "SIGABRT");
	cr_assert_null(crd_signal_name(SIGTERM));
	cr_assert_str_eq(crd_sigcode_name(SIGSEGV, SEGV_ACCERR), "SEGV_ACCERR");
	cr_assert_str_eq(crd_sigcode_name(SIGFPE, FPE_INTDIV), "FPE_INTDIV");
	cr_assert_str_eq(crd_sigcode_name(SIGBUS, BUS_ADRERR), "BUS_ADRERR");
	cr_assert_str_eq(crd_sigcode_name(SIGILL, ILL_ILLOPN), "ILL_ILLOPN");
	cr_assert_str_eq(crd_sigcode_name(SIGABRT, SI_TKILL), "SI_TKILL");
	cr_assert_str_eq(crd_sigcode_name(SIGSEGV, SI_KERNEL), "SI_KERNEL");
	cr_assert_null(crd_sigcode_name(SIGSEGV, 77));
}
