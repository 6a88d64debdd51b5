/* test_otlp_json.c - OTLP/JSON encoder and crd_json_string(): the shared
 * sample (byte for byte and semantically), every field of a rich batch read
 * back with cJSON, escaping and UTF-8 repair, doubles (also under a
 * decimal-comma locale), -ENOSPC without overflow.
 *
 * Runs from the repository root (reads tests/proto/...); links -lcjson.
 */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "otlp_enc.h"

#define SAMPLE_JSON "tests/proto/sample-export-trace-request.json"

/* ---- helpers ---- */

static char *slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long len;

	cr_assert_not_null(f, "open %s (tests run from the repo root)", path);
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)len + 1);
	cr_assert_not_null(buf);
	cr_assert_eq(fread(buf, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	buf[len] = 0;
	*n = (size_t)len;
	return buf;
}

/* Encode into a malloc'd string; checks that the length is stable with an
 * exact cap (len + 1) and that nothing past cap is written. */
static char *encode(const struct crd_otlp_batch *b, size_t *n)
{
	size_t cap = 1 << 20;
	char *buf = malloc(cap);
	ssize_t r = crd_otlp_json_encode(b, buf, cap);

	cr_assert_gt(r, 0, "encode: %zd", r);
	cr_assert_eq(strlen(buf), (size_t)r);
	char *exact = malloc((size_t)r + 1 + 16);
	memset(exact, 0x5a, (size_t)r + 1 + 16);
	cr_assert_eq(crd_otlp_json_encode(b, exact, (size_t)r + 1), r);
	cr_assert_str_eq(exact, buf);
	for (size_t i = (size_t)r + 1; i < (size_t)r + 1 + 16; i++)
		cr_assert_eq(exact[i], 0x5a, "wrote past cap at %zu", i);
	free(exact);
	*n = (size_t)r;
	return buf;
}

/* Every cap up to the length (no room for the NUL) fails with -ENOSPC and
 * leaves [cap, ...) as is. */
static void check_enospc(const struct crd_otlp_batch *b)
{
	size_t n, guard = 64;
	char *ref = encode(b, &n);
	char *buf = malloc(n + 1 + guard);

	for (size_t cap = 0; cap <= n; cap++) {
		memset(buf, 0x5a, n + 1 + guard);
		cr_assert_eq(crd_otlp_json_encode(b, buf, cap), -ENOSPC, "cap %zu of %zu", cap,
			     n + 1);
		for (size_t i = cap; i < n + 1 + guard; i++)
			cr_assert_eq(buf[i], 0x5a, "cap %zu: byte %zu written", cap, i);
	}
	free(buf);
	free(ref);
}

static cJSON *parse(const char *s)
{
	cJSON *j = cJSON_Parse(s);

	cr_assert_not_null(j, "not JSON: %s", s);
	return j;
}

static cJSON *get(const cJSON *o, const char *key)
{
	cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	cr_assert_not_null(v, "missing \"%s\"", key);
	return v;
}

static const char *get_str(const cJSON *o, const char *key)
{
	cJSON *v = get(o, key);

	cr_assert(cJSON_IsString(v), "\"%s\" is not a string", key);
	return v->valuestring;
}

static double get_num(const cJSON *o, const char *key)
{
	cJSON *v = get(o, key);

	cr_assert(cJSON_IsNumber(v), "\"%s\" is not a number", key);
	return v->valuedouble;
}

/* The AnyValue of attribute key in an attributes array. */
static cJSON *attr_value(const cJSON *attrs, const char *key)
{
	const cJSON *kv;

	cr_assert(cJSON_IsArray(attrs));
	cJSON_ArrayForEach(kv, attrs)
	{
		if (strcmp(get_str(kv, "key"), key) == 0) {
			cJSON *v = get(kv, "value");
			cr_assert_eq(cJSON_GetArraySize(v), 1, "AnyValue of %s has one member", key);
			return v;
		}
	}
	cr_assert_fail("no attribute %s", key);
	return NULL;
}

static struct crd_attr sattr(const char *k, const char *v)
{
	return (struct crd_attr){.key = k, .type = CRD_ATTR_STR, .s = v, .len = strlen(v)};
}

static struct crd_attr iattr(const char *k, int64_t i)
{
	return (struct crd_attr){.key = k, .type = CRD_ATTR_INT, .i = i};
}

static struct crd_attr battr(const char *k, int b)
{
	return (struct crd_attr){.key = k, .type = CRD_ATTR_BOOL, .i = b};
}

static struct crd_attr dattr(const char *k, double d)
{
	return (struct crd_attr){.key = k, .type = CRD_ATTR_DOUBLE, .d = d};
}

/* ---- fixtures (as in test_otlp_pb.c) ---- */

static const uint8_t s_tid[16] = {0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03,
				  0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c};
static const uint8_t s_sid[8] = {0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74};
static const uint8_t s_pid[8] = {0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x73};

struct fix {
	struct crd_attr res[8];
	struct crd_span_view v[4];
	const struct crd_span_view *sp[4];
	struct crd_otlp_batch b;
};

static void sample(struct fix *f)
{
	memset(f, 0, sizeof(*f));
	f->res[0] = sattr("service.name", "svc");
	struct crd_span_view *v = &f->v[0];
	v->trace_id = s_tid;
	v->span_id = s_sid;
	v->parent_span_id = s_pid;
	v->trace_state = "";
	v->name = "GET";
	v->kind = CRD_KIND_SERVER;
	v->start_ns = 1544712660000000000ull;
	v->end_ns = 1544712661000000000ull;
	v->flags = 257;
	v->status_code = CRD_STATUS_ERROR;
	v->status_message = "";
	v->attrs[0] = sattr("http.request.method", "GET");
	v->attrs[1] = iattr("http.response.status_code", 500);
	v->nattrs = 2;
	f->sp[0] = v;
	f->b = (struct crd_otlp_batch){
		.resource = {f->res, 1},
		.scope_name = "httpshim",
		.scope_version = "0.1.0",
		.spans = f->sp,
		.n = 1,
	};
}

static const uint8_t r_tid[16] = {0x0a, 0xf7, 0x65, 0x19, 0x16, 0xcd, 0x43, 0xdd,
				  0x84, 0x48, 0xeb, 0x21, 0x1c, 0x80, 0x31, 0x9c};
static const uint8_t r_sid1[8] = {0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31};
static const uint8_t r_sid2[8] = {0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7};

static void rich(struct fix *f)
{
	memset(f, 0, sizeof(*f));
	f->res[0] = sattr("service.name", "caf\xc3\xa9-\xf0\x9f\x98\x80");
	f->res[1] = iattr("process.pid", 4242);
	f->res[2] = battr("debug", 1);

	struct crd_span_view *v = &f->v[0];
	v->trace_id = r_tid;
	v->span_id = r_sid1;
	v->parent_span_id = NULL;
	v->trace_state = "";
	v->name = "GET /api/\xe2\x82\xac";
	v->kind = CRD_KIND_SERVER;
	v->start_ns = 1700000000123456789ull;
	v->end_ns = 1700000000223456789ull;
	v->flags = 0x301;
	v->status_code = CRD_STATUS_UNSET;
	v->status_message = "";
	v->attrs[0] = sattr("http.request.method", "GET");
	v->attrs[1] = iattr("http.response.status_code", 200);
	v->attrs[2] = iattr("neg", -1);
	v->attrs[3] = iattr("min", INT64_MIN);
	v->attrs[4] = iattr("max", INT64_MAX);
	v->attrs[5] = iattr("zero", 0);
	v->attrs[6] = battr("t", 1);
	v->attrs[7] = battr("f", 0);
	v->attrs[8] = dattr("pi", 3.14159);
	v->attrs[9] = dattr("dzero", 0.0);
	v->attrs[10] = sattr("empty", "");
	v->attrs[11] = sattr("utf8", "\xd0\x9f\xd1\x80\xd0\xb8 \xf0\x9f\x8c\x8d");
	v->attrs[12] = dattr("negd", -2.5e-300);
	v->attrs[13] = sattr("esc", "a\"b\\c\nd\x01");
	v->nattrs = 14;

	v = &f->v[1];
	v->trace_id = r_tid;
	v->span_id = r_sid2;
	v->parent_span_id = r_sid1;
	v->trace_state = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7";
	v->name = "POST";
	v->kind = CRD_KIND_CLIENT;
	v->start_ns = 1700000000130000000ull;
	v->end_ns = 1700000000140000000ull;
	v->flags = 1;
	v->status_code = CRD_STATUS_ERROR;
	v->status_message = "connection reset \"mid-response\"";
	v->attrs[0] = sattr("server.address", "example.com");
	v->attrs[1] = iattr("server.port", 8080);
	v->nattrs = 2;

	f->sp[0] = &f->v[0];
	f->sp[1] = &f->v[1];
	f->b = (struct crd_otlp_batch){
		.resource = {f->res, 3},
		.scope_name = "cruddur",
		.scope_version = "1.2.3",
		.spans = f->sp,
		.n = 2,
	};
}

/* ---- the shared sample ---- */

Test(otlp_json, sample_byte_exact_and_semantic)
{
	struct fix f;
	size_t nwant, ngot;
	char *want = slurp(SAMPLE_JSON, &nwant);

	while (nwant && (want[nwant - 1] == '\n' || want[nwant - 1] == '\r'))
		want[--nwant] = 0;
	sample(&f);
	char *got = encode(&f.b, &ngot);
	cr_expect_str_eq(got, want);

	cJSON *a = parse(got), *b = parse(want);
	cr_assert(cJSON_Compare(a, b, true), "semantic mismatch:\n got %s\nwant %s", got, want);
	cJSON_Delete(a);
	cJSON_Delete(b);
	free(got);
	free(want);
}

Test(otlp_json, sample_enospc_every_cap)
{
	struct fix f;

	sample(&f);
	check_enospc(&f.b);
}

/* ---- every field ---- */

Test(otlp_json, rich_every_field)
{
	struct fix f;
	size_t n;

	rich(&f);
	char *got = encode(&f.b, &n);
	cJSON *root = parse(got);

	cJSON *rss = get(root, "resourceSpans");
	cr_assert_eq(cJSON_GetArraySize(rss), 1);
	cJSON *rs = cJSON_GetArrayItem(rss, 0);
	cJSON *rattrs = get(get(rs, "resource"), "attributes");
	cr_assert_eq(cJSON_GetArraySize(rattrs), 3);
	cr_expect_str_eq(get_str(attr_value(rattrs, "service.name"), "stringValue"),
			 "caf\xc3\xa9-\xf0\x9f\x98\x80");
	cr_expect_str_eq(get_str(attr_value(rattrs, "process.pid"), "intValue"), "4242");
	cr_expect(cJSON_IsTrue(get(attr_value(rattrs, "debug"), "boolValue")));

	cJSON *sss = get(rs, "scopeSpans");
	cr_assert_eq(cJSON_GetArraySize(sss), 1);
	cJSON *ss = cJSON_GetArrayItem(sss, 0);
	cJSON *scope = get(ss, "scope");
	cr_expect_str_eq(get_str(scope, "name"), "cruddur");
	cr_expect_str_eq(get_str(scope, "version"), "1.2.3");
	cJSON *spans = get(ss, "spans");
	cr_assert_eq(cJSON_GetArraySize(spans), 2);

	/* root SERVER span */
	cJSON *s = cJSON_GetArrayItem(spans, 0);
	cr_expect_str_eq(get_str(s, "traceId"), "0af7651916cd43dd8448eb211c80319c");
	cr_expect_str_eq(get_str(s, "spanId"), "b7ad6b7169203331");
	cr_expect_null(cJSON_GetObjectItemCaseSensitive(s, "parentSpanId"));
	cr_expect_null(cJSON_GetObjectItemCaseSensitive(s, "traceState"));
	cr_expect_null(cJSON_GetObjectItemCaseSensitive(s, "status"));
	cr_expect_eq(get_num(s, "flags"), 769);
	cr_expect_str_eq(get_str(s, "name"), "GET /api/\xe2\x82\xac");
	cr_expect_eq(get_num(s, "kind"), 2);
	cr_expect_str_eq(get_str(s, "startTimeUnixNano"), "1700000000123456789");
	cr_expect_str_eq(get_str(s, "endTimeUnixNano"), "1700000000223456789");
	cJSON *at = get(s, "attributes");
	cr_assert_eq(cJSON_GetArraySize(at), 14);
	cr_expect_str_eq(get_str(attr_value(at, "http.request.method"), "stringValue"), "GET");
	cr_expect_str_eq(get_str(attr_value(at, "http.response.status_code"), "intValue"), "200");
	cr_expect_str_eq(get_str(attr_value(at, "neg"), "intValue"), "-1");
	cr_expect_str_eq(get_str(attr_value(at, "min"), "intValue"), "-9223372036854775808");
	cr_expect_str_eq(get_str(attr_value(at, "max"), "intValue"), "9223372036854775807");
	cr_expect_str_eq(get_str(attr_value(at, "zero"), "intValue"), "0");
	cr_expect(cJSON_IsTrue(get(attr_value(at, "t"), "boolValue")));
	cr_expect(cJSON_IsFalse(get(attr_value(at, "f"), "boolValue")));
	cr_expect_eq(get_num(attr_value(at, "pi"), "doubleValue"), 3.14159);
	cr_expect_eq(get_num(attr_value(at, "dzero"), "doubleValue"), 0.0);
	cr_expect_eq(get_num(attr_value(at, "negd"), "doubleValue"), -2.5e-300);
	cr_expect_str_eq(get_str(attr_value(at, "empty"), "stringValue"), "");
	cr_expect_str_eq(get_str(attr_value(at, "utf8"), "stringValue"),
			 "\xd0\x9f\xd1\x80\xd0\xb8 \xf0\x9f\x8c\x8d");
	cr_expect_str_eq(get_str(attr_value(at, "esc"), "stringValue"), "a\"b\\c\nd\x01");

	/* CLIENT child with trace_state and a status message */
	s = cJSON_GetArrayItem(spans, 1);
	cr_expect_str_eq(get_str(s, "traceId"), "0af7651916cd43dd8448eb211c80319c");
	cr_expect_str_eq(get_str(s, "spanId"), "00f067aa0ba902b7");
	cr_expect_str_eq(get_str(s, "parentSpanId"), "b7ad6b7169203331");
	cr_expect_str_eq(get_str(s, "traceState"), "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7");
	cr_expect_eq(get_num(s, "flags"), 1);
	cr_expect_eq(get_num(s, "kind"), 3);
	cr_expect_str_eq(get_str(s, "startTimeUnixNano"), "1700000000130000000");
	cJSON *st = get(s, "status");
	cr_expect_eq(get_num(st, "code"), 2);
	cr_expect_str_eq(get_str(st, "message"), "connection reset \"mid-response\"");
	at = get(s, "attributes");
	cr_expect_str_eq(get_str(attr_value(at, "server.address"), "stringValue"), "example.com");
	cr_expect_str_eq(get_str(attr_value(at, "server.port"), "intValue"), "8080");

	/* ids and 64-bit values also checked on the text */
	cr_expect_not_null(strstr(got, "\"intValue\":\"-9223372036854775808\""));
	cr_expect_not_null(strstr(got, "\"flags\":769,"));
	cr_expect_not_null(strstr(got, "\"kind\":3,"));
	cr_expect_not_null(strstr(got, "\"doubleValue\":3.14159}"));
	cJSON_Delete(root);
	free(got);
}

Test(otlp_json, rich_enospc_every_cap)
{
	struct fix f;

	rich(&f);
	check_enospc(&f.b);
}

/* ---- presence ---- */

Test(otlp_json, defaults_omitted)
{
	static const uint8_t zero8[8];
	struct fix f;
	size_t n;

	memset(&f, 0, sizeof(f));
	struct crd_span_view *v = &f.v[0];
	v->trace_id = r_tid;
	v->span_id = r_sid1;
	v->parent_span_id = zero8; /* all zero: root */
	v->trace_state = NULL;
	v->name = "";
	v->attrs[0] = (struct crd_attr){.key = "x", .type = 77}; /* unknown: skipped */
	v->nattrs = 1;
	f.sp[0] = v;
	f.b = (struct crd_otlp_batch){.spans = f.sp, .n = 1};
	char *got = encode(&f.b, &n);
	cr_expect_str_eq(got, "{\"resourceSpans\":[{\"resource\":{},\"scopeSpans\":[{\"scope\":{},"
			      "\"spans\":[{\"traceId\":\"0af7651916cd43dd8448eb211c80319c\","
			      "\"spanId\":\"b7ad6b7169203331\"}]}]}]}");
	free(got);

	/* status with a message only; scope version only */
	v->status_message = "m";
	f.b.scope_version = "9";
	got = encode(&f.b, &n);
	cr_expect_not_null(strstr(got, "\"scope\":{\"version\":\"9\"}"), "%s", got);
	cr_expect_not_null(strstr(got, ",\"status\":{\"message\":\"m\"}}"), "%s", got);
	free(got);

	struct crd_otlp_batch empty = {0};
	got = encode(&empty, &n);
	cr_expect_str_eq(got, "{\"resourceSpans\":[{\"resource\":{},\"scopeSpans\":[{\"scope\":{},"
			      "\"spans\":[]}]}]}");
	cJSON_Delete(parse(got));
	free(got);
}

/* ---- crd_json_string ---- */

struct str_case {
	const char *in;
	size_t len;
	const char *out;
};

#define S(lit) lit, sizeof(lit) - 1

static const struct str_case str_cases[] = {
	{S(""), "\"\""},
	{S("plain ascii / ~"), "\"plain ascii / ~\""},
	{S("q\"b\\s"), "\"q\\\"b\\\\s\""},
	{S("\n\r\t\b\f"), "\"\\n\\r\\t\\b\\f\""},
	{S("\x01\x1f\x0b\x7f"), "\"\\u0001\\u001f\\u000b\x7f\""},
	{S("nul\0in"), "\"nul\\u0000in\""},
	{S("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"), "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\""},
	{S("\xf4\x8f\xbf\xbf\xef\xbf\xbf\xc2\x80"), "\"\xf4\x8f\xbf\xbf\xef\xbf\xbf\xc2\x80\""},
	/* lone continuation, Latin-1, overlong (C0 80, E0 80 80, F0 80 80 80) */
	{S("\x80"), "\"\\ufffd\""},
	{S("caf\xe9!"), "\"caf\\ufffd!\""},
	{S("\xc0\x80"), "\"\\ufffd\\ufffd\""},
	{S("\xe0\x80\x80"), "\"\\ufffd\\ufffd\\ufffd\""},
	{S("\xf0\x80\x80\x80"), "\"\\ufffd\\ufffd\\ufffd\\ufffd\""},
	/* surrogate U+D800, above U+10FFFF, F5..FF */
	{S("\xed\xa0\x80"), "\"\\ufffd\\ufffd\\ufffd\""},
	{S("\xf4\x90\x80\x80"), "\"\\ufffd\\ufffd\\ufffd\\ufffd\""},
	{S("\xf5\xff"), "\"\\ufffd\\ufffd\""},
	/* truncated sequences, at the end and before ASCII */
	{S("a\xe2\x82"), "\"a\\ufffd\\ufffd\""},
	{S("\xf0\x9f\x98z"), "\"\\ufffd\\ufffd\\ufffdz\""},
	{S("\xc3"), "\"\\ufffd\""},
	/* long runs cross the 8-byte fast path boundaries */
	{S("0123456789abcdef\"0123456789abcdef\\"),
	 "\"0123456789abcdef\\\"0123456789abcdef\\\\\""},
	{S("abcdefg\x01hijklmnop\xffqrstuvw\xc3\xa9xyz"),
	 "\"abcdefg\\u0001hijklmnop\\ufffdqrstuvw\xc3\xa9xyz\""},
};

Test(json_string, cases)
{
	char buf[256];

	for (size_t i = 0; i < sizeof(str_cases) / sizeof(str_cases[0]); i++) {
		const struct str_case *c = &str_cases[i];
		ssize_t r = crd_json_string(buf, sizeof(buf), c->in, c->len);
		cr_expect_eq(r, (ssize_t)strlen(c->out), "case %zu: %zd", i, r);
		cr_expect_str_eq(buf, c->out, "case %zu", i);
	}
	cr_expect_eq(crd_json_string(buf, sizeof(buf), NULL, 0), 2);
	cr_expect_str_eq(buf, "\"\"");
}

Test(json_string, enospc_every_cap)
{
	char buf[256 + 64];

	for (size_t i = 0; i < sizeof(str_cases) / sizeof(str_cases[0]); i++) {
		const struct str_case *c = &str_cases[i];
		size_t need = strlen(c->out) + 1;
		for (size_t cap = 0; cap < need; cap++) {
			memset(buf, 0x5a, sizeof(buf));
			cr_assert_eq(crd_json_string(buf, cap, c->in, c->len), -ENOSPC,
				     "case %zu cap %zu", i, cap);
			for (size_t k = cap; k < sizeof(buf); k++)
				cr_assert_eq(buf[k], 0x5a, "case %zu cap %zu: byte %zu", i, cap, k);
		}
		memset(buf, 0x5a, sizeof(buf));
		cr_assert_eq(crd_json_string(buf, need, c->in, c->len), (ssize_t)need - 1);
		cr_assert_eq(buf[need - 1], 0);
		cr_assert_eq(buf[need], 0x5a);
	}
}

/* Reference repair, written differently from the encoder: decode a code
 * point by its lead byte, then check continuation bytes, shortest form,
 * surrogates and range. */
static size_t ref_repair(const unsigned char *s, size_t n, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n;) {
		unsigned c = s[i], need, cp, min;
		if (c < 0x80) {
			out[o++] = (char)c;
			i++;
			continue;
		}
		if ((c & 0xe0) == 0xc0)
			need = 1, cp = c & 0x1f, min = 0x80;
		else if ((c & 0xf0) == 0xe0)
			need = 2, cp = c & 0x0f, min = 0x800;
		else if ((c & 0xf8) == 0xf0)
			need = 3, cp = c & 0x07, min = 0x10000;
		else
			goto bad;
		if (i + need >= n) /* truncated */
			goto bad;
		for (unsigned k = 1; k <= need; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				goto bad;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			goto bad;
		memcpy(out + o, s + i, need + 1);
		o += need + 1;
		i += need + 1;
		continue;
	bad:
		memcpy(out + o, "\xef\xbf\xbd", 3);
		o += 3;
		i++;
	}
	out[o] = 0;
	return o;
}

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* Random bytes (no NUL: cJSON strings are C strings) through
 * crd_json_string and back through cJSON equal the reference repair. */
Test(json_string, random_roundtrip_cjson)
{
	static const unsigned char pool[] = {'a', '"', '\\', '\n', 0x01, 0x1f, 0x7f, 0x80, 0xbf,
					     0xc0, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4,
					     0xf5, 0xff, 0xa0, 0x9f, 0x90, 0x8f};
	unsigned char in[64];
	char out[64 * 6 + 8], want[64 * 3 + 1], doc[sizeof(out) + 8];

	for (int iter = 0; iter < 20000; iter++) {
		size_t n = rnd() % sizeof(in);
		for (size_t i = 0; i < n; i++) {
			uint64_t r = rnd();
			in[i] = r % 3 ? pool[(r >> 8) % sizeof(pool)] : (unsigned char)(1 + (r >> 8) % 255);
		}
		ssize_t r = crd_json_string(out, sizeof(out), (const char *)in, n);
		cr_assert_gt(r, 0);
		ref_repair(in, n, want);
		snprintf(doc, sizeof(doc), "[%s]", out);
		cJSON *j = cJSON_Parse(doc);
		cr_assert_not_null(j, "not JSON: %s", doc);
		cJSON *s = cJSON_GetArrayItem(j, 0);
		cr_assert(cJSON_IsString(s));
		cr_assert_str_eq(s->valuestring, want, "iter %d", iter);
		/* output is pure JSON: no raw control bytes */
		for (ssize_t k = 0; k < r; k++)
			cr_assert_geq((unsigned char)out[k], 0x20);
		cJSON_Delete(j);
	}
}

/* ---- doubles ---- */

static void dbl_text(double d, char *buf, size_t cap)
{
	struct crd_attr a = dattr("d", d);
	struct crd_span_view v = {0};
	const struct crd_span_view *sp[1] = {&v};
	struct crd_otlp_batch b = {.spans = sp, .n = 1};
	char out[1024];

	v.trace_id = r_tid;
	v.span_id = r_sid1;
	v.attrs[0] = a;
	v.nattrs = 1;
	cr_assert_gt(crd_otlp_json_encode(&b, out, sizeof(out)), 0);
	char *p = strstr(out, "\"doubleValue\":");
	cr_assert_not_null(p);
	p += strlen("\"doubleValue\":");
	char *e = strchr(p, '}');
	cr_assert_not_null(e);
	snprintf(buf, cap, "%.*s", (int)(e - p), p);
}

static const struct {
	double d;
	const char *text;
} dbl_cases[] = {
	{0.1, "0.1"},
	{1.5, "1.5"},
	{100, "100"},
	{-3, "-3"},
	{1e21, "1e+21"},
	{1.0 / 3, "0.3333333333333333"},
	{0.1 + 0.2, "0.30000000000000004"},
	{5e-324, "4.94065645841247e-324"}, /* %.15g already reads back */
	{1.7976931348623157e308, "1.7976931348623157e+308"},
	{-0.0, "-0"},
	{0.0, "0"},
};

Test(otlp_json, doubles)
{
	char t[64];

	for (size_t i = 0; i < sizeof(dbl_cases) / sizeof(dbl_cases[0]); i++) {
		dbl_text(dbl_cases[i].d, t, sizeof(t));
		cr_expect_str_eq(t, dbl_cases[i].text, "case %zu", i);
	}
	dbl_text(NAN, t, sizeof(t));
	cr_expect_str_eq(t, "\"NaN\"");
	dbl_text(INFINITY, t, sizeof(t));
	cr_expect_str_eq(t, "\"Infinity\"");
	dbl_text(-INFINITY, t, sizeof(t));
	cr_expect_str_eq(t, "\"-Infinity\"");

	/* random finite doubles read back bit for bit */
	for (int i = 0; i < 3000; i++) {
		uint64_t bits = rnd();
		double d;
		memcpy(&d, &bits, 8);
		if (!isfinite(d))
			continue;
		dbl_text(d, t, sizeof(t));
		double back = strtod(t, NULL);
		cr_assert_eq(memcmp(&back, &d, 8), 0, "%s != %.17g", t, d);
	}
}

/* The host application may run under a decimal-comma locale. Builds a
 * de_DE locale in a temporary directory; skipped if that is impossible. */
Test(otlp_json, doubles_decimal_comma_locale, .timeout = 60)
{
	char dir[] = "/tmp/crd_loc_XXXXXX", cmd[256], t[64], probe[16];

	cr_assert_not_null(mkdtemp(dir));
	snprintf(cmd, sizeof(cmd), "localedef -i de_DE -f UTF-8 %s/de_DE.UTF-8 >/dev/null 2>&1",
		 dir);
	int rc = system(cmd);
	setenv("LOCPATH", dir, 1);
	locale_t loc = newlocale(LC_NUMERIC_MASK, "de_DE.UTF-8", (locale_t)0);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (!loc) {
		(void)system(cmd);
		cr_skip_test("no de_DE locale (localedef rc %d)", rc);
	}
	locale_t old = uselocale(loc);
	snprintf(probe, sizeof(probe), "%.1f", 1.5);
	cr_assert_str_eq(probe, "1,5", "locale not in effect");
	dbl_text(1.5, t, sizeof(t));
	cr_expect_str_eq(t, "1.5");
	dbl_text(-2.5e-300, t, sizeof(t));
	cr_expect_str_eq(t, "-2.5e-300");
	dbl_text(0.1 + 0.2, t, sizeof(t));
	cr_expect_str_eq(t, "0.30000000000000004");
	uselocale(old);
	freelocale(loc);
	(void)system(cmd);
}

/* ---- strings inside spans ---- */

Test(otlp_json, invalid_utf8_in_fields)
{
	struct fix f;
	size_t n;

	sample(&f);
	f.v[0].name = "G\xe9T";
	f.v[0].trace_state = "k=\x01v";
	f.v[0].status_message = "bad \xff";
	f.v[0].attrs[0] = (struct crd_attr){
		.key = "k\"\xc0", .type = CRD_ATTR_STR, .s = "v\xed\xa0\x80", .len = 4};
	f.b.scope_name = "s\n";
	char *got = encode(&f.b, &n);
	cr_expect_not_null(strstr(got, "\"name\":\"G\\ufffdT\""), "%s", got);
	cr_expect_not_null(strstr(got, "\"traceState\":\"k=\\u0001v\""), "%s", got);
	cr_expect_not_null(strstr(got, "\"message\":\"bad \\ufffd\""), "%s", got);
	cr_expect_not_null(strstr(got, "{\"key\":\"k\\\"\\ufffd\",\"value\":{\"stringValue\":"
				       "\"v\\ufffd\\ufffd\\ufffd\"}}"),
			   "%s", got);
	cr_expect_not_null(strstr(got, "\"scope\":{\"name\":\"s\\n\""), "%s", got);
	cJSON_Delete(parse(got));
	check_enospc(&f.b);
	free(got);
}

/* nattrs beyond the array is clamped. */
Test(otlp_json, nattrs_clamped)
{
	struct fix f;
	size_t n;

	sample(&f);
	for (size_t i = 0; i < CRD_VIEW_MAX_ATTRS; i++)
		f.v[0].attrs[i] = iattr("k", (int64_t)i);
	f.v[0].nattrs = 1000;
	char *got = encode(&f.b, &n);
	cJSON *j = parse(got);
	cJSON *at = get(cJSON_GetArrayItem(
				get(cJSON_GetArrayItem(get(cJSON_GetArrayItem(get(j, "resourceSpans"), 0),
							   "scopeSpans"),
						       0),
				    "spans"),
				0),
			"attributes");
	cr_expect_eq(cJSON_GetArraySize(at), CRD_VIEW_MAX_ATTRS);
	cJSON_Delete(j);
	free(got);
}

/* A typical HTTP server span: 15 attributes, strings and ints. */
static void typical(struct crd_span_view *v)
{
	int k = 0;

	memset(v, 0, sizeof(*v));
	v->trace_id = r_tid;
	v->span_id = r_sid2;
	v->parent_span_id = r_sid1;
	v->trace_state = "";
	v->name = "GET /api/users/{id}";
	v->kind = CRD_KIND_SERVER;
	v->start_ns = 1700000000123456789ull;
	v->end_ns = 1700000000124691356ull;
	v->flags = 0x301;
	v->status_message = "";
	v->attrs[k++] = sattr("http.request.method", "GET");
	v->attrs[k++] = sattr("url.path", "/api/users/12345");
	v->attrs[k++] = sattr("url.query", "expand=profile&fields=name,email");
	v->attrs[k++] = sattr("url.scheme", "http");
	v->attrs[k++] = iattr("http.response.status_code", 200);
	v->attrs[k++] = sattr("network.protocol.version", "1.1");
	v->attrs[k++] = sattr("server.address", "api.example.com");
	v->attrs[k++] = iattr("server.port", 8080);
	v->attrs[k++] = sattr("client.address", "10.0.0.17");
	v->attrs[k++] = iattr("client.port", 53422);
	v->attrs[k++] = sattr("network.peer.address", "10.0.0.17");
	v->attrs[k++] = iattr("network.peer.port", 53422);
	v->attrs[k++] = sattr("user_agent.original",
			      "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like "
			      "Gecko) Chrome/120.0 Safari/537.36");
	v->attrs[k++] = iattr("http.request.body.size", 0);
	v->attrs[k++] = iattr("http.response.body.size", 5123);
	v->nattrs = (size_t)k;
}

/* Reports ns/span in the log; fails only if grossly slow. */
Test(otlp_json, speed_smoke)
{
	enum { N = 64, ROUNDS = 100 };
	static struct crd_span_view v[N];
	static const struct crd_span_view *sp[N];
	static char buf[N * 4096];
	struct fix f;
	struct timespec t0, t1;

	rich(&f);
	for (int i = 0; i < N; i++) {
		typical(&v[i]);
		sp[i] = &v[i];
	}
	f.b.spans = sp;
	f.b.n = N;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int r = 0; r < ROUNDS; r++)
		cr_assert_gt(crd_otlp_json_encode(&f.b, buf, sizeof(buf)), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double ns = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) /
		    (N * ROUNDS);
	cr_log_info("otlp json: %.0f ns/span (15 attributes)", ns);
	cr_expect_lt(ns, 100000.0);
}
