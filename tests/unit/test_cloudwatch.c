/* test_cloudwatch.c - CloudWatch Logs: batching within the PutLogEvents
 * limits (bytes with 26 per event, event count, 24 h span), sorting,
 * truncation with the marker, the PutLogEvents body read back with cJSON,
 * the access-log line (text and JSON), and the settings.
 *
 * Each Criterion test runs in its own process.
 */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../preload/cloudwatch.h"
#include "../preload/config.h"
#include "cw_enc.h"

#define SEC 1000000000ull

static struct crd_cw_event ev_of(int64_t ts, const char *msg, size_t len)
{
	return (struct crd_cw_event){.ts_ms = ts, .msg = msg, .len = len};
}

/* ---- batching ---- */

Test(cw_batch, limit_constants)
{
	cr_assert_eq(CRD_CW_MAX_BATCH_BYTES, 1048576);
	cr_assert_eq(CRD_CW_EVENT_OVERHEAD, 26);
	cr_assert_eq(CRD_CW_MAX_BATCH_EVENTS, 10000);
	cr_assert_eq(CRD_CW_MAX_SPAN_MS, 86400000LL);
}

Test(cw_batch, bytes_count_26_per_event)
{
	/* 4 events of exactly a quarter of the batch (message + 26) fit; a
	 * fifth of 1 byte does not. */
	size_t q = CRD_CW_MAX_BATCH_BYTES / 4 - CRD_CW_EVENT_OVERHEAD;
	char *m = malloc(q);
	struct crd_cw_event ev[5];

	memset(m, 'a', q);
	for (int i = 0; i < 4; i++)
		ev[i] = ev_of(1000 + i, m, q);
	ev[4] = ev_of(2000, "x", 1);
	cr_assert_eq(crd_cw_event_size(&ev[0]), CRD_CW_MAX_BATCH_BYTES / 4);
	cr_assert_eq(crd_cw_batch_len(ev, 5), 4);
	cr_assert_eq(crd_cw_batch_len(ev + 4, 1), 1);
	/* One byte less in the first: still 4 (the 1-byte event needs 27). */
	ev[0].len--;
	cr_assert_eq(crd_cw_batch_len(ev, 5), 4);
	free(m);
}

Test(cw_batch, at_most_10000_events)
{
	size_t n = 25000;
	struct crd_cw_event *ev = calloc(n, sizeof(*ev));
	size_t at = 0, batches = 0;

	for (size_t i = 0; i < n; i++)
		ev[i] = ev_of((int64_t)i, "m", 1);
	while (at < n) {
		size_t k = crd_cw_batch_len(ev + at, n - at);
		cr_assert(k >= 1 && k <= CRD_CW_MAX_BATCH_EVENTS);
		at += k;
		batches++;
	}
	cr_assert_eq(batches, 3);
	cr_assert_eq(crd_cw_batch_len(ev, n), 10000);
	free(ev);
}

Test(cw_batch, span_at_most_24h)
{
	struct crd_cw_event ev[4] = {ev_of(0, "a", 1), ev_of(CRD_CW_MAX_SPAN_MS, "b", 1),
				     ev_of(CRD_CW_MAX_SPAN_MS + 1, "c", 1),
				     ev_of(3 * CRD_CW_MAX_SPAN_MS, "d", 1)};

	cr_assert_eq(crd_cw_batch_len(ev, 4), 2); /* exactly 24 h is allowed */
	cr_assert_eq(crd_cw_batch_len(ev + 2, 2), 1);
	cr_assert_eq(crd_cw_batch_len(ev + 3, 1), 1);
	cr_assert_eq(crd_cw_batch_len(ev, 0), 0);
}

Test(cw_batch, sort_is_stable_by_timestamp)
{
	struct crd_cw_event ev[6] = {ev_of(5, "a", 1), ev_of(3, "b", 1), ev_of(5, "c", 1),
				     ev_of(1, "d", 1), ev_of(3, "e", 1), ev_of(9, "f", 1)};
	const char *want = "dbeacf";

	crd_cw_sort(ev, 6);
	for (int i = 0; i < 6; i++) {
		cr_assert_eq(ev[i].msg[0], want[i], "position %d", i);
		if (i)
			cr_assert(ev[i - 1].ts_ms <= ev[i].ts_ms);
	}
}

Test(cw_batch, oversized_event_truncated_with_marker)
{
	size_t big = 300000, max = CRD_CW_MAX_EVENT_BYTES - CRD_CW_EVENT_OVERHEAD;
	char *m = malloc(big);
	struct crd_cw_event e;

	memset(m, 'z', big);
	/* A 3-byte UTF-8 character straddling the cut is not split. */
	size_t keep = max - (sizeof(CRD_CW_TRUNC_MARKER) - 1);
	memcpy(m + keep - 1, "\xe2\x82\xac", 3);
	e = ev_of(1, m, big);
	cr_assert_eq(crd_cw_fit(&e), 1);
	cr_assert(e.truncated);
	cr_assert_eq(e.len, keep - 1);
	cr_assert(crd_cw_event_size(&e) <= CRD_CW_MAX_EVENT_BYTES);

	/* The body carries message + marker in one string. */
	size_t cap = crd_cw_body_bound("g", "s", &e, 1);
	char *body = malloc(cap);
	ssize_t n = crd_cw_put_body(body, cap, "g", "s", &e, 1);
	cr_assert_gt(n, 0);
	cJSON *j = cJSON_ParseWithLength(body, (size_t)n);
	cr_assert_not_null(j);
	const char *msg = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "logEvents"), 0)
				  ->child->next->valuestring;
	size_t ml = strlen(msg);
	cr_assert_eq(ml + CRD_CW_EVENT_OVERHEAD, crd_cw_event_size(&e));
	cr_assert_str_eq(msg + ml - (sizeof(CRD_CW_TRUNC_MARKER) - 1), CRD_CW_TRUNC_MARKER);
	cJSON_Delete(j);

	/* A message that fits is left alone. */
	e = ev_of(1, m, max);
	cr_assert_eq(crd_cw_fit(&e), 0);
	cr_assert_not(e.truncated);
	free(body);
	free(m);
}

Test(cw_batch, put_body_reads_back)
{
	struct crd_cw_event ev[3] = {ev_of(1700000000000LL, "plain", 5),
				     ev_of(1700000000001LL, "q\"u\\o\nte\t\x01", 10),
				     ev_of(1700000000002LL, "\xc3\xa9t\xc3\xa9", 5)};
	size_t cap = crd_cw_body_bound("/grp/a#b", "host/svc/42", ev, 3);
	char *body = malloc(cap);
	ssize_t n = crd_cw_put_body(body, cap, "/grp/a#b", "host/svc/42", ev, 3);

	cr_assert_gt(n, 0);
	cr_assert_eq((size_t)n, strlen(body));
	cJSON *j = cJSON_Parse(body);
	cr_assert_not_null(j, "%s", body);
	cr_assert_str_eq(cJSON_GetObjectItem(j, "logGroupName")->valuestring, "/grp/a#b");
	cr_assert_str_eq(cJSON_GetObjectItem(j, "logStreamName")->valuestring, "host/svc/42");
	cJSON *evs = cJSON_GetObjectItem(j, "logEvents");
	cr_assert_eq(cJSON_GetArraySize(evs), 3);
	for (int i = 0; i < 3; i++) {
		cJSON *e = cJSON_GetArrayItem(evs, i);
		cr_assert_eq((int64_t)cJSON_GetObjectItem(e, "timestamp")->valuedouble, ev[i].ts_ms);
		cr_assert_eq(strlen(cJSON_GetObjectItem(e, "message")->valuestring), ev[i].len);
		cr_assert_eq(memcmp(cJSON_GetObjectItem(e, "message")->valuestring, ev[i].msg,
				    ev[i].len),
			     0);
	}
	cJSON_Delete(j);
	/* Too small a buffer is refused, never overrun. */
	for (size_t c = 0; c < (size_t)n; c += 7)
		cr_assert_lt(crd_cw_put_body(body, c, "/grp/a#b", "host/svc/42", ev, 3), 0);
	free(body);
}

/* ---- access lines ---- */

static void server_span(struct crd_span *s)
{
	memset(s, 0, sizeof(*s));
	s->kind = CRD_KIND_SERVER;
	s->sampled = 1;
	s->start_ns = 1700000000ull * SEC + 5000000;
	s->end_ns = s->start_ns + 12345678;
	s->peer.family = AF_INET;
	s->peer.port = 51000;
	inet_pton(AF_INET, "10.1.2.3", s->peer.addr);
	s->local.family = AF_INET;
	s->local.port = 8080;
	inet_pton(AF_INET, "127.0.0.1", s->local.addr);
	strcpy(s->req.method, "GET");
	strcpy(s->req.target, "/api/x?page=3&token=hunter2");
	strcpy(s->req.host, "h:8080");
	s->req.version_minor = 1;
	s->req.content_length = -1;
	for (int i = 0; i < 16; i++)
		s->trace_id[i] = (uint8_t)(0x10 + i);
	for (int i = 0; i < 8; i++)
		s->span_id[i] = (uint8_t)(0xa0 + i);
	s->status = 404;
}

Test(cw_line, text)
{
	struct crd_span s;
	struct crd_span_view v;
	char buf[4096];

	setenv("CRUDDUR_REDACT", "", 1);
	crd_config_load();
	server_span(&s);
	crd_span_view(&s, &v);
	ssize_t n = crd_cw_access_line(buf, sizeof(buf), &s, &v, 0);
	cr_assert_gt(n, 0);
	cr_assert_str_eq(buf, "2023-11-14T22:13:20.017Z 10.1.2.3 GET http "
			      "/api/x?page=3&token=REDACTED 404 12.346ms "
			      "trace_id=101112131415161718191a1b1c1d1e1f span_id=a0a1a2a3a4a5a6a7",
			 "%s", buf);
	cr_assert_eq((size_t)n, strlen(buf));
	cr_assert_lt(crd_cw_access_line(buf, 40, &s, &v, 0), 0);
}

Test(cw_line, json)
{
	struct crd_span s;
	struct crd_span_view v;
	char buf[4096];

	setenv("CRUDDUR_REDACT", "", 1);
	crd_config_load();
	server_span(&s);
	strcpy(s.req.xff, "203.0.113.7");
	s.status = 0; /* no response */
	crd_span_view(&s, &v);
	ssize_t n = crd_cw_access_line(buf, sizeof(buf), &s, &v, 1);
	cr_assert_gt(n, 0);
	cJSON *j = cJSON_Parse(buf);
	cr_assert_not_null(j, "%s", buf);
	cr_assert_str_eq(cJSON_GetObjectItem(j, "timestamp")->valuestring,
			 "2023-11-14T22:13:20.017Z");
	cr_assert_str_eq(cJSON_GetObjectItem(j, "client")->valuestring, "203.0.113.7");
	cr_assert_str_eq(cJSON_GetObjectItem(j, "method")->valuestring, "GET");
	cr_assert_str_eq(cJSON_GetObjectItem(j, "scheme")->valuestring, "http");
	cr_assert_str_eq(cJSON_GetObjectItem(j, "path")->valuestring,
			 "/api/x?page=3&token=REDACTED");
	cr_assert(cJSON_IsNull(cJSON_GetObjectItem(j, "status")));
	cr_assert_float_eq(cJSON_GetObjectItem(j, "duration_ms")->valuedouble, 12.346, 1e-9);
	cr_assert_str_eq(cJSON_GetObjectItem(j, "trace_id")->valuestring,
			 "101112131415161718191a1b1c1d1e1f");
	cr_assert_str_eq(cJSON_GetObjectItem(j, "span_id")->valuestring, "a0a1a2a3a4a5a6a7");
	cJSON_Delete(j);
}

/* ---- settings ---- */

static void clear_env(void)
{
	static const char *const names[] = {
	    "CRUDDUR_CLOUDWATCH_LOG_GROUP", "CRUDDUR_CLOUDWATCH_LOG_STREAM", "AWS_REGION",
	    "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
	    "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", "CRUDDUR_LOG_FORMAT",
	    "CRUDDUR_LOG"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		unsetenv(names[i]);
	setenv("CRUDDUR_LOG", "off", 1);
	crd_config_load();
}

static void full_env(void)
{
	setenv("CRUDDUR_CLOUDWATCH_LOG_GROUP", "/app/access", 1);
	setenv("AWS_DEFAULT_REGION", "us-west-2", 1);
	setenv("AWS_ACCESS_KEY_ID", "AKID", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "secret", 1);
}

Test(cw_config, off_without_group)
{
	clear_env();
	crd_cloudwatch_config_load();
	cr_assert_not(crd_cw_cfg.enabled);
}

Test(cw_config, defaults_and_precedence)
{
	clear_env();
	full_env();
	crd_cfg.file_enabled = crd_cfg.file_default = 1;
	crd_cloudwatch_config_load();
	cr_assert(crd_cw_cfg.enabled);
	cr_assert_str_eq(crd_cw_cfg.region, "us-west-2");
	cr_assert_str_eq(crd_cw_cfg.endpoint, "https://logs.us-west-2.amazonaws.com/");
	cr_assert_null(crd_cw_cfg.log_stream);
	cr_assert_null(crd_cw_cfg.session_token);
	cr_assert_not(crd_cw_cfg.json);
	cr_assert_not(crd_cfg.file_enabled); /* counts as an exporter */

	setenv("AWS_REGION", "eu-central-1", 1);
	setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1", 1);
	setenv("AWS_SESSION_TOKEN", "tok", 1);
	setenv("CRUDDUR_LOG_FORMAT", "JSON", 1);
	setenv("CRUDDUR_CLOUDWATCH_LOG_STREAM", "my stream/1", 1);
	crd_cloudwatch_config_load();
	cr_assert_str_eq(crd_cw_cfg.region, "eu-central-1");
	cr_assert_str_eq(crd_cw_cfg.endpoint, "http://127.0.0.1:1");
	cr_assert_str_eq(crd_cw_cfg.session_token, "tok");
	cr_assert_str_eq(crd_cw_cfg.log_stream, "my stream/1");
	cr_assert(crd_cw_cfg.json);
	setenv("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", "https://logs.local:4566", 1);
	crd_cloudwatch_config_load();
	cr_assert_str_eq(crd_cw_cfg.endpoint, "https://logs.local:4566");
}

Test(cw_config, disabled_when_incomplete_or_invalid)
{
	static const struct {
		const char *name, *value;
	} bad[] = {{"AWS_DEFAULT_REGION", NULL},
		   {"AWS_ACCESS_KEY_ID", NULL},
		   {"AWS_SECRET_ACCESS_KEY", NULL},
		   {"AWS_DEFAULT_REGION", "US West"},
		   {"CRUDDUR_CLOUDWATCH_LOG_GROUP", "bad group"},
		   {"CRUDDUR_CLOUDWATCH_LOG_STREAM", "a:b"},
		   {"CRUDDUR_CLOUDWATCH_LOG_STREAM", "a*b"},
		   {"AWS_ENDPOINT_URL", "ftp://x"},
		   {"AWS_SECRET_ACCESS_KEY", "has space"}};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		clear_env();
		full_env();
		if (bad[i].value)
			setenv(bad[i].name, bad[i].value, 1);
		else
			unsetenv(bad[i].name);
		crd_cloudwatch_config_load();
		cr_assert_not(crd_cw_cfg.enabled, "case %zu (%s)", i, bad[i].name);
	}
}

Test(cw_config, names)
{
	char long_name[CRD_CW_NAME_MAX + 2];

	cr_assert(crd_cw_valid_name("/aws/lambda/x_y-z.1#2", 1));
	cr_assert_not(crd_cw_valid_name("", 1));
	cr_assert_not(crd_cw_valid_name("a b", 1));
	cr_assert(crd_cw_valid_name("a b/c", 0));
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = 0;
	cr_assert_not(crd_cw_valid_name(long_name, 1));
	long_name[CRD_CW_NAME_MAX] = 0;
	cr_assert(crd_cw_valid_name(long_name, 1));
}

/* ---- captured stdout/stderr: lines (export/lines.c) and events ---- */

#include "lines.h"

static void feed(uint32_t writer, int fd, uint64_t ts_ns, const char *s, int traced, int cut)
{
	struct crd_logrec l = {.ts_ns = ts_ns, .writer = writer, .fd = (uint8_t)fd,
			       .has_trace = (uint8_t)traced, .cut = (uint8_t)cut};
	l.len = (uint16_t)strlen(s);
	memcpy(l.data, s, l.len);
	memset(l.trace_id, traced ? 0xab : 0, 16);
	memset(l.span_id, traced ? 0xcd : 0, 8);
	crd_lines_feed(&l);
}

static void expect_lines(uint64_t now, int all, const char *const *want, size_t nwant)
{
	const struct crd_log_line *out;
	size_t n = crd_lines_take(now, all, &out);

	cr_assert_eq(n, nwant, "%zu lines, want %zu", n, nwant);
	for (size_t i = 0; i < n; i++)
		cr_assert(out[i].len == strlen(want[i]) && !memcmp(out[i].text, want[i], out[i].len),
			  "line %zu: %.*s, want %s", i, (int)out[i].len, out[i].text, want[i]);
	crd_lines_clear();
}

Test(cw_lines, split_partial_per_writer_and_timeout)
{
	crd_lines_reset();
	feed(1, 1, 5 * SEC, "a1\na2\r\n\npart", 1, 0);
	feed(2, 1, 5 * SEC, "other-writer ", 0, 0);
	feed(1, 2, 5 * SEC, "stderr is apart ", 0, 0);
	const char *w1[] = {"a1", "a2"}; /* \r dropped, empty line skipped */
	expect_lines(5 * SEC + 10, 0, w1, 2);
	feed(1, 1, 5 * SEC + SEC / 2, "ial\n", 0, 0);
	feed(2, 1, 5 * SEC + SEC / 2, "done\n", 0, 0);
	const char *w2[] = {"partial", "other-writer done"};
	expect_lines(5 * SEC + SEC / 2, 0, w2, 2);
	/* The stderr piece waits for CRD_LINES_PARTIAL_MS, then goes alone. */
	expect_lines(5 * SEC + (CRD_LINES_PARTIAL_MS - 1) * 1000000ull, 0, NULL, 0);
	const char *w3[] = {"stderr is apart "};
	expect_lines(5 * SEC + CRD_LINES_PARTIAL_MS * 1000000ull, 0, w3, 1);
}

Test(cw_lines, context_time_cut_and_flush)
{
	const struct crd_log_line *out;

	crd_lines_reset();
	feed(3, 1, 7 * SEC + 5000000, "x", 0, 0);
	feed(3, 1, 8 * SEC, "y\n", 1, 0); /* the line gets the trace seen later */
	feed(3, 2, 9 * SEC, "cut here", 0, 1);
	feed(4, 1, 9 * SEC, "flushed at exit", 0, 0);
	cr_assert_eq(crd_lines_take(9 * SEC, 1, &out), 3);
	cr_assert_eq(out[0].ts_ms, 7005); /* time of the first piece */
	cr_assert(out[0].has_trace && out[0].trace_id[0] == 0xab && out[0].span_id[7] == 0xcd);
	cr_assert_eq(out[0].fd, 1);
	cr_assert(out[1].truncated && out[1].fd == 2 && !out[1].has_trace);
	cr_assert(!out[2].truncated && out[2].len == 15);
	crd_lines_clear();
}

Test(cw_lines, long_line_in_pieces_and_many_writers)
{
	static char big[CRD_LOG_CHUNK + 1];
	const struct crd_log_line *out;
	size_t total = 0, n;

	crd_lines_reset();
	memset(big, 'z', CRD_LOG_CHUNK);
	for (int i = 0; i < 9; i++) /* 9 x 2048 = 18432 > CRD_LINES_MAX */
		feed(5, 1, SEC, big, 0, 0);
	feed(5, 1, SEC, "\n", 0, 0);
	n = crd_lines_take(SEC, 0, &out);
	cr_assert_eq(n, 2);
	cr_assert_eq(out[0].len, CRD_LINES_MAX);
	for (size_t i = 0; i < n; i++)
		total += out[i].len;
	cr_assert_eq(total, 9 * CRD_LOG_CHUNK);
	crd_lines_clear();
	/* More writers with partial lines than slots: the least recently
	 * used partial line is shipped, none is lost. */
	for (uint32_t w = 10; w < 10 + CRD_LINES_SLOTS + 3; w++)
		feed(w, 1, SEC, "p", 0, 0);
	n = crd_lines_take(SEC, 1, &out);
	cr_assert_eq(n, CRD_LINES_SLOTS + 3);
	crd_lines_clear();
}

Test(cw_lines, cut_at_a_piece_boundary_still_marked)
{
	static char big[CRD_LOG_CHUNK + 1];
	const struct crd_log_line *out;
	size_t n;

	/* CRD_STDCAP_MAX_RECS full records of one write fill whole pieces:
	 * the cut comes right after a piece went out. */
	crd_lines_reset();
	memset(big, 'q', CRD_LOG_CHUNK);
	for (int i = 0; i < CRD_LINES_MAX / CRD_LOG_CHUNK; i++)
		feed(6, 1, SEC, big, 0, i == CRD_LINES_MAX / CRD_LOG_CHUNK - 1);
	feed(6, 1, SEC, "next\n", 0, 0);
	n = crd_lines_take(SEC, 0, &out);
	cr_assert_eq(n, 2);
	cr_assert(out[0].len == CRD_LINES_MAX && out[0].truncated);
	cr_assert(out[1].len == 4 && !out[1].truncated);
	crd_lines_clear();
}

Test(cw_line, stdio_text_and_json)
{
	char out[512];
	struct crd_log_line l = {.ts_ms = 1700000000123LL, .text = "hello \"w\"", .len = 9,
				 .fd = 2, .has_trace = 1};
	ssize_t n;
	cJSON *j;

	memset(l.trace_id, 0x11, 16);
	memset(l.span_id, 0x22, 8);
	n = crd_cw_stdio_line(out, sizeof(out), &l, 0);
	cr_assert_str_eq(out, "hello \"w\" trace_id=11111111111111111111111111111111 "
			      "span_id=2222222222222222");
	cr_assert_eq(n, (ssize_t)strlen(out));
	l.has_trace = 0;
	l.truncated = 1;
	n = crd_cw_stdio_line(out, sizeof(out), &l, 0);
	out[n] = 0;
	cr_assert_str_eq(out, "hello \"w\"" CRD_CW_TRUNC_MARKER);
	n = crd_cw_stdio_line(out, sizeof(out), &l, 1);
	cr_assert_gt(n, 0);
	out[n] = 0;
	j = cJSON_Parse(out);
	cr_assert_not_null(j, "%s", out);
	cr_assert_str_eq(cJSON_GetObjectItem(j, "timestamp")->valuestring, "2023-11-14T22:13:20.123Z");
	cr_assert_str_eq(cJSON_GetObjectItem(j, "stream")->valuestring, "stderr");
	cr_assert_str_eq(cJSON_GetObjectItem(j, "message")->valuestring,
			 "hello \"w\"" CRD_CW_TRUNC_MARKER);
	cr_assert(cJSON_IsNull(cJSON_GetObjectItem(j, "trace_id")));
	cJSON_Delete(j);
	/* The bound holds for the worst case: every byte escaped. */
	static char ctl[300], big[CRD_CW_STDIO_BOUND(300)];
	memset(ctl, 1, sizeof(ctl));
	l = (struct crd_log_line){.text = ctl, .len = sizeof(ctl), .has_trace = 1, .truncated = 1};
	cr_assert_gt(crd_cw_stdio_line(big, sizeof(big), &l, 1), 0);
}

Test(cw_config, capture_stdio)
{
	clear_env();
	full_env();
	crd_cloudwatch_config_load();
	cr_assert_not(crd_cw_cfg.capture_stdio);
	setenv("CRUDDUR_CAPTURE_STDIO", "1", 1);
	crd_cloudwatch_config_load();
	cr_assert(crd_cw_cfg.capture_stdio);
	setenv("CRUDDUR_CAPTURE_STDIO", "TRUE", 1);
	crd_cloudwatch_config_load();
	cr_assert(crd_cw_cfg.capture_stdio);
	setenv("CRUDDUR_CAPTURE_STDIO", "yes please", 1);
	crd_cloudwatch_config_load();
	cr_assert_not(crd_cw_cfg.capture_stdio);
	setenv("CRUDDUR_CAPTURE_STDIO", "1", 1);
	unsetenv("CRUDDUR_CLOUDWATCH_LOG_GROUP");
	crd_cloudwatch_config_load();
	cr_assert_not(crd_cw_cfg.capture_stdio);
}
