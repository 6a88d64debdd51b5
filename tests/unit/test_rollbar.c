/* test_rollbar.c - the Rollbar item of a 5xx, field by field (read back
 * with cJSON), route templates and fingerprint stability, uuids, the rate
 * limiter's arithmetic on a fake clock, the settings, and the crash spool
 * parser and crash item.
 *
 * Each Criterion test runs in its own process, so settings loaded from the
 * environment in one test never leak into another.
 */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../preload/config.h"
#include "../preload/crash.h"
#include "../preload/rollbar.h"
#include "rollbar_enc.h"

#define SEC 1000000000ull

/* ---- helpers ---- */

static void span_500(struct crd_span *s)
{
	memset(s, 0, sizeof(*s));
	s->kind = CRD_KIND_SERVER;
	s->sampled = 1;
	s->start_ns = 1700000000ull * SEC + 5000000;
	s->end_ns = s->start_ns + 12345678; /* 12.345678 ms */
	s->peer.family = AF_INET;
	s->peer.port = 51000;
	inet_pton(AF_INET, "10.1.2.3", s->peer.addr);
	s->local.family = AF_INET;
	s->local.port = 8080;
	inet_pton(AF_INET, "127.0.0.1", s->local.addr);
	strcpy(s->req.method, "POST");
	strcpy(s->req.target, "/users/42/orders/9f86d081884c7d65?token=hunter2&page=3");
	strcpy(s->req.host, "shop.example:8443");
	strcpy(s->req.user_agent, "curl/8.0");
	strcpy(s->req.xff, "203.0.113.7");
	strcpy(s->req.traceparent, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
	strcpy(s->req.tracestate, "vendor=x");
	s->req.version_minor = 1;
	s->req.content_length = -1;
	for (int i = 0; i < 16; i++)
		s->trace_id[i] = (uint8_t)(0x10 + i);
	for (int i = 0; i < 8; i++) {
		s->span_id[i] = (uint8_t)(0xa0 + i);
		s->parent_span_id[i] = (uint8_t)(0xb0 + i);
	}
	s->status = 500;
	s->resp_body_size = 21;
}

static const struct crd_rb_meta META = {.environment = "staging",
					.code_version = "v1.2.3",
					.host = "web-1",
					.pid = 4242,
					.service = "shop"};

static cJSON *encode(const struct crd_span *s, int trim, const char *uuid)
{
	static char buf[32768];
	struct crd_span_view v;
	ssize_t n;
	cJSON *j;

	crd_span_view(s, &v);
	n = crd_rb_encode_5xx(buf, sizeof(buf), &META, s, &v, uuid, trim);
	cr_assert_gt(n, 0, "encode: %zd", n);
	cr_assert_eq(strlen(buf), (size_t)n);
	j = cJSON_Parse(buf);
	cr_assert_not_null(j, "not JSON: %s", buf);
	return j;
}

static cJSON *at(cJSON *j, const char *path)
{
	char copy[256], *save = NULL, *k;

	snprintf(copy, sizeof(copy), "%s", path);
	for (k = strtok_r(copy, ".", &save); k && j; k = strtok_r(NULL, ".", &save))
		j = cJSON_GetObjectItemCaseSensitive(j, k);
	return j;
}

static void want_str(cJSON *root, const char *path, const char *want)
{
	cJSON *j = at(root, path);
	cr_assert(cJSON_IsString(j), "%s: not a string", path);
	cr_assert_str_eq(j->valuestring, want, "%s", path);
}

static void want_num(cJSON *root, const char *path, double want)
{
	cJSON *j = at(root, path);
	cr_assert(cJSON_IsNumber(j), "%s: not a number", path);
	cr_assert_eq(j->valuedouble, want, "%s: %f want %f", path, j->valuedouble, want);
}

/* ---- route template ---- */

static void route_is(const char *path, const char *want)
{
	char out[CRD_RB_ROUTE_MAX];
	size_t n = crd_rb_route_template(path, strlen(path), out, sizeof(out));
	cr_assert_str_eq(out, want, "template of %s", path);
	cr_assert_eq(n, strlen(want));
}

Test(rollbar_route, ids_become_placeholders)
{
	route_is("/", "/");
	route_is("/users/42", "/users/{id}");
	route_is("/users/42/orders/7", "/users/{id}/orders/{id}");
	route_is("/u/123e4567-e89b-12d3-a456-426614174000", "/u/{id}");
	route_is("/blob/deadbeefcafebabe", "/blob/{id}"); /* 16 hex, no digit */
	route_is("/commit/9f86d081884c7d659a2f", "/commit/{id}");
	route_is("/x/a1b2c3/y", "/x/{id}/y");
	route_is("/day/2024-01-15", "/day/{id}");
	/* words, versions and short mixed names stay */
	route_is("/api/v1/users", "/api/v1/users");
	route_is("/page2/index.html", "/page2/index.html");
	route_is("/deadbeef", "/deadbeef"); /* 8 hex letters: a word */
	route_is("//a//", "//a//");
	route_is("", "");
}

Test(rollbar_route, bounded_output)
{
	char out[8];
	size_t n = crd_rb_route_template("/abcdefghijkl", 13, out, sizeof(out));
	cr_assert_eq(n, 7);
	cr_assert_str_eq(out, "/abcdef");
	n = crd_rb_route_template("/1/2/3", 6, out, 5); /* "/{id}" cut */
	cr_assert_eq(n, 4);
	cr_assert_str_eq(out, "/{id");
}

/* ---- fingerprint ---- */

Test(rollbar_fingerprint, stable_and_distinct)
{
	char a[17], b[17], c[17], d[17];

	crd_rb_fingerprint("GET", "/users/{id}", 500, a);
	crd_rb_fingerprint("GET", "/users/{id}", 500, b);
	cr_assert_eq(strlen(a), 16);
	cr_assert_str_eq(a, b);
	/* FNV-1a 64 of "GET /users/{id} 500", computed independently */
	{
		uint64_t h = 0xcbf29ce484222325ull;
		for (const char *p = "GET /users/{id} 500"; *p; p++)
			h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
		char want[17];
		snprintf(want, sizeof(want), "%016llx", (unsigned long long)h);
		cr_assert_str_eq(a, want);
	}
	crd_rb_fingerprint("GET", "/users/{id}", 503, c);
	crd_rb_fingerprint("POST", "/users/{id}", 500, d);
	cr_assert_str_neq(a, c);
	cr_assert_str_neq(a, d);
}

Test(rollbar_fingerprint, same_route_different_ids_group)
{
	struct crd_span s1, s2;
	char fp1[64], fp2[64];
	cJSON *j1, *j2;

	span_500(&s1);
	span_500(&s2);
	strcpy(s2.req.target, "/users/77/orders/0123456789abcdef0");
	s2.trace_id[0] = 0x99;
	j1 = encode(&s1, 0, "u1");
	j2 = encode(&s2, 0, "u2");
	snprintf(fp1, sizeof(fp1), "%s", at(j1, "data.fingerprint")->valuestring);
	snprintf(fp2, sizeof(fp2), "%s", at(j2, "data.fingerprint")->valuestring);
	cr_assert_str_eq(fp1, fp2);
	s2.status = 502;
	cJSON_Delete(j2);
	j2 = encode(&s2, 0, "u3");
	cr_assert_str_neq(fp1, at(j2, "data.fingerprint")->valuestring);
	cJSON_Delete(j1);
	cJSON_Delete(j2);
}

/* ---- uuid ---- */

Test(rollbar_uuid, version4_format)
{
	char u[CRD_RB_UUID_LEN + 1];

	crd_rb_uuid4(0x0123456789abcdefull, 0xfedcba9876543210ull, u);
	cr_assert_str_eq(u, "01234567-89ab-4def-bedc-ba9876543210");
	crd_rb_uuid4(0, 0, u);
	cr_assert_str_eq(u, "00000000-0000-4000-8000-000000000000");
	crd_rb_uuid4(~0ull, ~0ull, u);
	cr_assert_str_eq(u, "ffffffff-ffff-4fff-bfff-ffffffffffff");
}

/* ---- rate limiter on a fake clock ---- */

Test(rollbar_limiter, per_minute_window)
{
	struct crd_rb_limiter l = {0};
	uint64_t t0 = 1000 * SEC;

	for (int i = 0; i < 60; i++)
		cr_assert(crd_rb_limiter_allow(&l, t0 + (uint64_t)i * SEC / 2, 60), "item %d", i);
	cr_assert_not(crd_rb_limiter_allow(&l, t0 + 30 * SEC, 60));
	cr_assert_not(crd_rb_limiter_allow(&l, t0 + 60 * SEC - 1, 60));
	cr_assert_eq(l.dropped, 2);
	/* the window restarts 60 s after its first item */
	cr_assert(crd_rb_limiter_allow(&l, t0 + 60 * SEC, 60));
	cr_assert_eq(l.count, 1);
	cr_assert_eq(l.window_start_ns, t0 + 60 * SEC);
	for (int i = 1; i < 60; i++)
		cr_assert(crd_rb_limiter_allow(&l, t0 + 61 * SEC, 60));
	cr_assert_not(crd_rb_limiter_allow(&l, t0 + 61 * SEC, 60));
	cr_assert_eq(l.dropped, 3);
}

Test(rollbar_limiter, zero_and_one)
{
	struct crd_rb_limiter l = {0};

	cr_assert_not(crd_rb_limiter_allow(&l, 5 * SEC, 0));
	cr_assert_eq(l.dropped, 1);
	memset(&l, 0, sizeof(l));
	cr_assert(crd_rb_limiter_allow(&l, 5 * SEC, 1));
	cr_assert_not(crd_rb_limiter_allow(&l, 6 * SEC, 1));
	cr_assert(crd_rb_limiter_allow(&l, 65 * SEC, 1));
}

Test(rollbar_limiter, pause_on_429)
{
	struct crd_rb_limiter l = {0};
	uint64_t t0 = 2000 * SEC;

	cr_assert(crd_rb_limiter_allow(&l, t0, 60));
	crd_rb_limiter_pause(&l, t0, 7);
	cr_assert(crd_rb_limiter_paused(&l, t0));
	cr_assert_not(crd_rb_limiter_allow(&l, t0 + 7 * SEC - 1, 60));
	cr_assert_eq(l.dropped, 1);
	cr_assert_not(crd_rb_limiter_paused(&l, t0 + 7 * SEC));
	cr_assert(crd_rb_limiter_allow(&l, t0 + 7 * SEC, 60));
	/* a paused item does not count against the minute */
	cr_assert_eq(l.count, 2);
	/* no header: the default pause; absurd values are capped */
	crd_rb_limiter_pause(&l, t0, -1);
	cr_assert_eq(l.paused_until_ns, t0 + CRD_RB_DEF_PAUSE_S * SEC);
	crd_rb_limiter_pause(&l, t0, 1L << 40);
	cr_assert_eq(l.paused_until_ns, t0 + CRD_RB_MAX_PAUSE_S * SEC);
	crd_rb_limiter_pause(&l, t0, 0);
	cr_assert_not(crd_rb_limiter_paused(&l, t0));
}

/* ---- the 5xx item, field by field ---- */

Test(rollbar_item, every_field)
{
	struct crd_span s;
	cJSON *j, *h;

	setenv("CRUDDUR_REDACT", "", 1);
	crd_config_load(); /* the default redaction list (token, key, ...) */
	span_500(&s);
	j = encode(&s, 0, "01234567-89ab-4def-bedc-ba9876543210");
	cr_assert_eq(cJSON_GetArraySize(j), 1, "only \"data\" at the top");
	want_str(j, "data.environment", "staging");
	want_str(j, "data.level", "error");
	want_num(j, "data.timestamp", 1700000000);
	want_str(j, "data.platform", "linux");
	want_str(j, "data.framework", "cruddur");
	want_str(j, "data.code_version", "v1.2.3");
	want_str(j, "data.uuid", "01234567-89ab-4def-bedc-ba9876543210");
	want_str(j, "data.title", "500 POST /users/{id}/orders/{id}");
	{
		char fp[17];
		crd_rb_fingerprint("POST", "/users/{id}/orders/{id}", 500, fp);
		want_str(j, "data.fingerprint", fp);
	}
	want_str(j, "data.body.message.body",
		 "POST /users/42/orders/9f86d081884c7d65 answered HTTP 500 Internal Server Error");
	want_str(j, "data.body.message.route", "/users/{id}/orders/{id}");
	want_num(j, "data.body.message.status_code", 500);
	cr_assert_null(at(j, "data.body.trace"));

	want_str(j, "data.request.url",
		 "http://shop.example:8443/users/42/orders/9f86d081884c7d65?token=REDACTED&page=3");
	want_str(j, "data.request.method", "POST");
	want_str(j, "data.request.query_string", "token=REDACTED&page=3");
	want_str(j, "data.request.user_ip", "203.0.113.7");
	h = at(j, "data.request.headers");
	cr_assert_eq(cJSON_GetArraySize(h), 5);
	want_str(j, "data.request.headers.Host", "shop.example:8443");
	want_str(j, "data.request.headers.User-Agent", "curl/8.0");
	want_str(j, "data.request.headers.X-Forwarded-For", "203.0.113.7");
	want_str(j, "data.request.headers.traceparent",
		 "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
	want_str(j, "data.request.headers.tracestate", "vendor=x");
	cr_assert_null(at(j, "data.request.headers.Authorization"));
	cr_assert_null(at(j, "data.request.headers.Cookie"));

	want_str(j, "data.server.host", "web-1");
	want_num(j, "data.server.pid", 4242);
	want_str(j, "data.server.code_version", "v1.2.3");

	want_str(j, "data.custom.trace_id", "101112131415161718191a1b1c1d1e1f");
	want_str(j, "data.custom.span_id", "a0a1a2a3a4a5a6a7");
	want_str(j, "data.custom.parent_span_id", "b0b1b2b3b4b5b6b7");
	{
		cJSON *c = at(j, "data.custom");
		cJSON *sn = cJSON_GetObjectItemCaseSensitive(c, "service.name");
		cr_assert(cJSON_IsString(sn));
		cr_assert_str_eq(sn->valuestring, "shop");
	}
	want_str(j, "data.custom.route", "/users/{id}/orders/{id}");
	want_num(j, "data.custom.status_code", 500);
	want_num(j, "data.custom.duration_ms", 12.345);
	want_num(j, "data.custom.response_body_size", 21);
	want_str(j, "data.notifier.name", "cruddur");
	cr_assert(cJSON_IsString(at(j, "data.notifier.version")));
	cJSON_Delete(j);
}

Test(rollbar_item, minimal_span_and_socket_address)
{
	struct crd_span s;
	struct crd_rb_meta m = {.environment = "production", .pid = 1};
	struct crd_span_view v;
	char buf[8192];
	cJSON *j;

	span_500(&s);
	s.req.host[0] = s.req.user_agent[0] = s.req.xff[0] = 0;
	s.req.traceparent[0] = s.req.tracestate[0] = 0;
	strcpy(s.req.target, "/");
	memset(s.parent_span_id, 0, 8);
	s.status = 503;
	s.end_reason = CRD_END_CLOSED;
	crd_span_view(&s, &v);
	cr_assert_gt(crd_rb_encode_5xx(buf, sizeof(buf), &m, &s, &v, "u", 0), 0);
	j = cJSON_Parse(buf);
	cr_assert_not_null(j);
	want_str(j, "data.request.url", "http://127.0.0.1:8080/");
	want_str(j, "data.request.user_ip", "10.1.2.3");
	cr_assert_eq(cJSON_GetArraySize(at(j, "data.request.headers")), 0);
	cr_assert_null(at(j, "data.request.query_string"));
	cr_assert_null(at(j, "data.code_version"));
	cr_assert_null(at(j, "data.server.code_version"));
	cr_assert_null(at(j, "data.server.host"));
	cr_assert_null(at(j, "data.custom.parent_span_id"));
	cr_assert_null(at(j, "data.custom.response_body_size"));
	want_str(j, "data.custom.end_reason", "connection_closed");
	want_str(j, "data.title", "503 POST /");
	want_str(j, "data.body.message.body",
		 "POST / answered HTTP 503 Service Unavailable (connection_closed)");
	cJSON_Delete(j);
}

Test(rollbar_item, ipv6_socket_address_is_bracketed)
{
	struct crd_span s;
	struct crd_span_view v;
	char buf[8192];
	cJSON *j;

	span_500(&s);
	s.req.host[0] = 0;
	s.local.family = AF_INET6;
	memset(s.local.addr, 0, 16);
	s.local.addr[15] = 1;
	crd_span_view(&s, &v);
	cr_assert_gt(crd_rb_encode_5xx(buf, sizeof(buf), &META, &s, &v, "u", 0), 0);
	j = cJSON_Parse(buf);
	cr_assert_not_null(j);
	cr_assert_str_eq(
	    at(j, "data.request.url")->valuestring,
	    "http://[::1]:8080/users/42/orders/9f86d081884c7d65?token=REDACTED&page=3");
	cJSON_Delete(j);
}

Test(rollbar_item, hostile_strings_stay_valid_json)
{
	struct crd_span s;
	cJSON *j;

	span_500(&s);
	strcpy(s.req.target, "/a\"b\\c/\x01\xff\xfe");
	strcpy(s.req.user_agent, "ua\"\n\r\t");
	strcpy(s.req.host, "h\"x");
	j = encode(&s, 0, "u");
	want_str(j, "data.request.headers.User-Agent", "ua\"\n\r\t");
	want_str(j, "data.request.headers.Host", "h\"x");
	cJSON_Delete(j);
}

Test(rollbar_item, trimmed_after_413)
{
	struct crd_span s;
	cJSON *j;

	span_500(&s);
	memset(s.req.target, 'a', CRD_TARGET_MAX - 1);
	s.req.target[0] = '/';
	s.req.target[CRD_TARGET_MAX - 1] = 0;
	j = encode(&s, 1, "u");
	cr_assert_null(at(j, "data.request.headers.User-Agent"));
	cr_assert_null(at(j, "data.request.headers.tracestate"));
	want_str(j, "data.request.headers.Host", "shop.example:8443");
	cr_assert_leq(strlen(at(j, "data.request.url")->valuestring), CRD_RB_TRIM_STR);
	cr_assert_leq(strlen(at(j, "data.body.message.body")->valuestring), CRD_RB_TRIM_STR);
	cJSON_Delete(j);
}

Test(rollbar_item, enospc_never_overflows)
{
	struct crd_span s;
	struct crd_span_view v;
	char buf[4096];
	ssize_t full;

	span_500(&s);
	crd_span_view(&s, &v);
	full = crd_rb_encode_5xx(buf, sizeof(buf), &META, &s, &v, "u", 0);
	cr_assert_gt(full, 0);
	for (size_t cap = 0; cap <= (size_t)full; cap += 7) {
		memset(buf, '#', sizeof(buf));
		cr_assert_eq(crd_rb_encode_5xx(buf, cap, &META, &s, &v, "u", 0), -ENOSPC, "cap %zu",
			     cap);
		for (size_t i = cap; i < sizeof(buf); i++)
			cr_assert_eq(buf[i], '#', "cap %zu: byte %zu written", cap, i);
	}
	cr_assert_eq(crd_rb_encode_5xx(buf, (size_t)full + 1, &META, &s, &v, "u", 0), full);
}

/* ---- settings ---- */

static void clear_env(void)
{
	static const char *const names[] = {"ROLLBAR_ACCESS_TOKEN",	   "ROLLBAR_ENDPOINT",
					    "ROLLBAR_ENVIRONMENT",	   "ROLLBAR_CODE_VERSION",
					    "CRUDDUR_ROLLBAR_MAX_PER_MIN", "CRUDDUR_ROLLBAR_CRASH",
					    "CRUDDUR_SPOOL_DIR",	   "CRUDDUR_LOG"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		unsetenv(names[i]);
}

Test(rollbar_config, off_without_token)
{
	clear_env();
	crd_rollbar_config_load();
	cr_assert_not(crd_rb_cfg.enabled);
}

Test(rollbar_config, defaults)
{
	char dir[256];

	clear_env();
	setenv("ROLLBAR_ACCESS_TOKEN", "abcdef0123456789abcdef0123456789", 1);
	crd_cfg.file_enabled = crd_cfg.file_default = 1; /* nothing else configured */
	crd_rollbar_config_load();
	cr_assert(crd_rb_cfg.enabled);
	/* Rollbar counts as an exporter: no embedded default file */
	cr_assert_not(crd_cfg.file_enabled);
	cr_assert_not(crd_cfg.file_default);
	cr_assert_str_eq(crd_rb_cfg.endpoint, "https://api.rollbar.com/api/1/item/");
	cr_assert_str_eq(crd_rb_cfg.environment, "production");
	cr_assert_null(crd_rb_cfg.code_version);
	cr_assert_eq(crd_rb_cfg.max_per_min, 60);
	cr_assert(crd_rb_cfg.crash_enabled);
	cr_assert(crd_rb_cfg.spool_default);
	cr_assert_gt(crd_spool_dir(dir, sizeof(dir)), 0);
	{
		char want[64];
		snprintf(want, sizeof(want), "/tmp/cruddur-spool-%u", (unsigned)geteuid());
		cr_assert_str_eq(dir, want);
	}
	cr_assert_eq(crd_spool_dir(dir, 5), -ENAMETOOLONG);
}

Test(rollbar_config, everything_set)
{
	char dir[256];

	clear_env();
	setenv("ROLLBAR_ACCESS_TOKEN", "t", 1);
	setenv("ROLLBAR_ENDPOINT", "http://127.0.0.1:9/api/1/item/", 1);
	setenv("ROLLBAR_ENVIRONMENT", "staging eu", 1);
	setenv("ROLLBAR_CODE_VERSION", "0123456789abcdef0123456789abcdef01234567", 1);
	setenv("CRUDDUR_ROLLBAR_MAX_PER_MIN", "0", 1);
	setenv("CRUDDUR_ROLLBAR_CRASH", "false", 1);
	setenv("CRUDDUR_SPOOL_DIR", "/var/spool/x", 1);
	crd_cfg.file_enabled = 1; /* asked for (CRUDDUR_FILE): stays */
	crd_cfg.file_default = 0;
	crd_rollbar_config_load();
	cr_assert(crd_cfg.file_enabled);
	cr_assert(crd_rb_cfg.enabled);
	cr_assert_str_eq(crd_rb_cfg.endpoint, "http://127.0.0.1:9/api/1/item/");
	cr_assert_str_eq(crd_rb_cfg.environment, "staging eu");
	cr_assert_str_eq(crd_rb_cfg.code_version, "0123456789abcdef0123456789abcdef01234567");
	cr_assert_eq(crd_rb_cfg.max_per_min, 0);
	cr_assert_not(crd_rb_cfg.crash_enabled);
	crd_spool_dir(dir, sizeof(dir));
	cr_assert_str_eq(dir, "/var/spool/x");
}

Test(rollbar_config, bad_values_fall_back, .init = cr_redirect_stderr)
{
	clear_env();
	setenv("ROLLBAR_ACCESS_TOKEN", "t", 1);
	setenv("ROLLBAR_CODE_VERSION", "much-too-long-for-rollbar-0123456789abcdef0123", 1);
	setenv("CRUDDUR_ROLLBAR_MAX_PER_MIN", "lots", 1);
	setenv("CRUDDUR_SPOOL_DIR", "relative/dir", 1);
	setenv("ROLLBAR_ENVIRONMENT", "bad\nenv", 1);
	crd_rollbar_config_load();
	cr_assert(crd_rb_cfg.enabled);
	cr_assert_null(crd_rb_cfg.code_version);
	cr_assert_eq(crd_rb_cfg.max_per_min, 60);
	cr_assert(crd_rb_cfg.spool_default);
	cr_assert_str_eq(crd_rb_cfg.environment, "production");
	fflush(stderr);
	cr_assert_stderr_neq_str("");
}

Test(rollbar_config, bad_endpoint_disables, .init = cr_redirect_stderr)
{
	clear_env();
	setenv("ROLLBAR_ACCESS_TOKEN", "secret-token-value", 1);
	setenv("ROLLBAR_ENDPOINT", "ftp://example/", 1);
	crd_rollbar_config_load();
	cr_assert_not(crd_rb_cfg.enabled);
	cr_assert_stderr_eq_str("cruddur: ROLLBAR_ENDPOINT=ftp://example/: not an http:// or "
				"https:// URL; Rollbar disabled\n");
}

Test(rollbar_config, bad_token_is_never_echoed, .init = cr_redirect_stderr)
{
	clear_env();
	setenv("ROLLBAR_ACCESS_TOKEN", "sec ret\r\nX-Evil: 1", 1);
	crd_rollbar_config_load();
	cr_assert_not(crd_rb_cfg.enabled);
	cr_assert_stderr_eq_str("cruddur: ROLLBAR_ACCESS_TOKEN: not a token (only visible ASCII, "
				"at most 256 characters); Rollbar disabled\n");
}
