/* test_otlp_pb.c - protobuf OTLP encoder: byte-exact against the shared
 * test vector and against protoc (the reference serializer), size pass
 * exactness, -ENOSPC without overflow, UTF-8 sanitizing.
 *
 * Runs from the repository root (reads tests/proto/...) and needs protoc.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "otlp_enc.h"

#define PROTO_DIR "tests/proto"
#define SAMPLE_BIN PROTO_DIR "/sample-export-trace-request.bin"
#define PROTOC                                                                                     \
	"protoc -I " PROTO_DIR " %s opentelemetry/proto/collector/trace/v1/trace_service.proto"
#define REQ_TYPE "opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest"

/* ---- helpers ---- */

static uint8_t *slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
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

static char *tmp_write(const void *data, size_t n)
{
	static char path[64];
	int fd;

	snprintf(path, sizeof(path), "/tmp/crd_pb_XXXXXX");
	fd = mkstemp(path);
	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, data, n), (ssize_t)n);
	close(fd);
	return path;
}

/* Runs protoc with args and data on stdin; returns its stdout (malloc'd),
 * its size in *outn and its exit status in *status. */
static uint8_t *protoc_run(const char *args, const void *data, size_t n, size_t *outn, int *status)
{
	char cmd[512], inpath[64];
	size_t cap = 1 << 16, len = 0, r;
	uint8_t *out = malloc(cap);
	FILE *p;

	snprintf(inpath, sizeof(inpath), "%s", tmp_write(data, n));
	snprintf(cmd, sizeof(cmd), PROTOC " < %s 2>&1", args, inpath);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	while ((r = fread(out + len, 1, cap - len - 1, p)) > 0) {
		len += r;
		if (cap - len - 1 == 0) {
			cap *= 2;
			out = realloc(out, cap);
		}
	}
	*status = pclose(p);
	unlink(inpath);
	out[len] = 0;
	*outn = len;
	return out;
}

/* protoc --decode of our bytes: must succeed; returns the text. */
static char *protoc_decode(const uint8_t *buf, size_t n)
{
	size_t outn;
	int st;
	char *txt = (char *)protoc_run("--decode " REQ_TYPE, buf, n, &outn, &st);

	cr_assert_eq(st, 0, "protoc --decode failed:\n%s", txt);
	cr_assert_null(strstr(txt, "libprotobuf"), "protoc complained:\n%s", txt);
	return txt;
}

/* protoc --encode of a text-format message. */
static uint8_t *protoc_encode(const char *txt, size_t *n)
{
	int st;
	uint8_t *bin = protoc_run("--encode " REQ_TYPE, txt, strlen(txt), n, &st);

	cr_assert_eq(st, 0, "protoc --encode failed:\n%s", (char *)bin);
	return bin;
}

static void hexdump_diff(const uint8_t *a, size_t na, const uint8_t *b, size_t nb)
{
	size_t i;

	for (i = 0; i < na && i < nb && a[i] == b[i]; i++)
		;
	cr_log_error("first difference at byte %zu (got %zu bytes, want %zu)", i, na, nb);
}

static void assert_bytes(const uint8_t *got, size_t ngot, const uint8_t *want, size_t nwant)
{
	if (ngot != nwant || memcmp(got, want, ngot) != 0)
		hexdump_diff(got, ngot, want, nwant);
	cr_assert_eq(ngot, nwant);
	cr_assert_arr_eq(got, want, ngot);
}

/* Encode b into a malloc'd buffer, checking that the size pass equals what
 * encode writes, with a roomy cap and with the exact cap (the encoder writes
 * back to front, so these take different paths), and that nothing past cap
 * is touched. */
static uint8_t *encode(const struct crd_otlp_batch *b, size_t *n)
{
	size_t sz = crd_otlp_pb_size(b), extra = 100, guard = 32;
	uint8_t *buf = malloc(sz + extra + guard), *buf2 = malloc(guard + sz + guard);
	ssize_t r;

	memset(buf, 0xa5, sz + extra + guard);
	r = crd_otlp_pb_encode(b, buf, sz + extra);
	cr_assert_eq(r, (ssize_t)sz, "encode returned %zd, size pass said %zu", r, sz);
	for (size_t i = sz + extra; i < sz + extra + guard; i++)
		cr_assert_eq(buf[i], 0xa5, "wrote past cap at %zu", i);

	memset(buf2, 0xa5, guard + sz + guard);
	cr_assert_eq(crd_otlp_pb_encode(b, buf2 + guard, sz), (ssize_t)sz);
	for (size_t i = 0; i < guard; i++)
		cr_assert_eq(buf2[i], 0xa5, "wrote before out at -%zu", guard - i);
	for (size_t i = guard + sz; i < guard + sz + guard; i++)
		cr_assert_eq(buf2[i], 0xa5, "wrote past cap at %zu", i - guard);
	cr_assert_arr_eq(buf, buf2 + guard, sz, "exact-cap encoding differs");
	free(buf2);
	*n = sz;
	return buf;
}

/* Every cap below the size fails with -ENOSPC and writes nothing outside
 * [out, out + cap): guard regions on both sides (the encoder writes back to
 * front, so an off-by-one would land before out). */
static void check_enospc(const struct crd_otlp_batch *b)
{
	size_t sz = crd_otlp_pb_size(b), guard = 64;
	uint8_t *base = malloc(guard + sz + guard), *buf = base + guard;

	for (size_t cap = 0; cap < sz; cap++) {
		memset(base, 0x5a, guard + sz + guard);
		cr_assert_eq(crd_otlp_pb_encode(b, buf, cap), -ENOSPC, "cap %zu of %zu", cap, sz);
		for (size_t i = 0; i < guard; i++)
			cr_assert_eq(base[i], 0x5a, "cap %zu: byte %zu before out written", cap,
				     guard - i);
		for (size_t i = cap; i < sz + guard; i++)
			cr_assert_eq(buf[i], 0x5a, "cap %zu: byte %zu written", cap, i);
	}
	free(base);
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

/* ---- fixtures ---- */

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

/* The message of tests/proto/sample-export-trace-request.{json,txtpb}. */
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

/* Every attribute type and edge: a root SERVER span and a CLIENT child with
 * trace_state and a status message. */
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
	v->attrs[13] = iattr("i128", 128);
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
	v->attrs[2] = sattr("error.type", "");
	v->nattrs = 3;

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

/* The rich() message in protobuf text format, written independently. */
static const char rich_txt[] =
	"resource_spans {\n"
	" resource {\n"
	"  attributes { key: \"service.name\" value { string_value: "
	"\"caf\\303\\251-\\360\\237\\230\\200\" } }\n"
	"  attributes { key: \"process.pid\" value { int_value: 4242 } }\n"
	"  attributes { key: \"debug\" value { bool_value: true } }\n"
	" }\n"
	" scope_spans {\n"
	"  scope { name: \"cruddur\" version: \"1.2.3\" }\n"
	"  spans {\n"
	"   trace_id: \"\\x0a\\xf7\\x65\\x19\\x16\\xcd\\x43\\xdd\\x84\\x48\\xeb\\x21\\x1c\\x80\\x31\\x9c\"\n"
	"   span_id: \"\\xb7\\xad\\x6b\\x71\\x69\\x20\\x33\\x31\"\n"
	"   name: \"GET /api/\\342\\202\\254\"\n"
	"   kind: SPAN_KIND_SERVER\n"
	"   start_time_unix_nano: 1700000000123456789\n"
	"   end_time_unix_nano: 1700000000223456789\n"
	"   attributes { key: \"http.request.method\" value { string_value: \"GET\" } }\n"
	"   attributes { key: \"http.response.status_code\" value { int_value: 200 } }\n"
	"   attributes { key: \"neg\" value { int_value: -1 } }\n"
	"   attributes { key: \"min\" value { int_value: -9223372036854775808 } }\n"
	"   attributes { key: \"max\" value { int_value: 9223372036854775807 } }\n"
	"   attributes { key: \"zero\" value { int_value: 0 } }\n"
	"   attributes { key: \"t\" value { bool_value: true } }\n"
	"   attributes { key: \"f\" value { bool_value: false } }\n"
	"   attributes { key: \"pi\" value { double_value: 3.14159 } }\n"
	"   attributes { key: \"dzero\" value { double_value: 0 } }\n"
	"   attributes { key: \"empty\" value { string_value: \"\" } }\n"
	"   attributes { key: \"utf8\" value { string_value: "
	"\"\\320\\237\\321\\200\\320\\270 \\360\\237\\214\\215\" } }\n"
	"   attributes { key: \"negd\" value { double_value: -2.5e-300 } }\n"
	"   attributes { key: \"i128\" value { int_value: 128 } }\n"
	"   flags: 769\n"
	"  }\n"
	"  spans {\n"
	"   trace_id: \"\\x0a\\xf7\\x65\\x19\\x16\\xcd\\x43\\xdd\\x84\\x48\\xeb\\x21\\x1c\\x80\\x31\\x9c\"\n"
	"   span_id: \"\\x00\\xf0\\x67\\xaa\\x0b\\xa9\\x02\\xb7\"\n"
	"   trace_state: \"congo=t61rcWkgMzE,rojo=00f067aa0ba902b7\"\n"
	"   parent_span_id: \"\\xb7\\xad\\x6b\\x71\\x69\\x20\\x33\\x31\"\n"
	"   name: \"POST\"\n"
	"   kind: SPAN_KIND_CLIENT\n"
	"   start_time_unix_nano: 1700000000130000000\n"
	"   end_time_unix_nano: 1700000000140000000\n"
	"   attributes { key: \"server.address\" value { string_value: \"example.com\" } }\n"
	"   attributes { key: \"server.port\" value { int_value: 8080 } }\n"
	"   attributes { key: \"error.type\" value { string_value: \"\" } }\n"
	"   status { message: \"connection reset \\\"mid-response\\\"\" code: STATUS_CODE_ERROR }\n"
	"   flags: 1\n"
	"  }\n"
	" }\n"
	"}\n";

/* ---- the shared test vector ---- */

Test(otlp_pb, sample_vector_byte_exact)
{
	struct fix f;
	size_t nwant, ngot;
	uint8_t *want = slurp(SAMPLE_BIN, &nwant);

	sample(&f);
	cr_assert_eq(crd_otlp_pb_size(&f.b), nwant);
	uint8_t *got = encode(&f.b, &ngot);
	assert_bytes(got, ngot, want, nwant);
	free(got);
	free(want);
}

Test(otlp_pb, sample_vector_enospc_every_cap)
{
	struct fix f;

	sample(&f);
	check_enospc(&f.b);
}

/* ---- protoc cross-checks ---- */

Test(otlp_pb, rich_equals_protoc_encode)
{
	struct fix f;
	size_t ngot, nwant;

	rich(&f);
	uint8_t *got = encode(&f.b, &ngot);
	uint8_t *want = protoc_encode(rich_txt, &nwant);
	assert_bytes(got, ngot, want, nwant);
	free(got);
	free(want);
}

Test(otlp_pb, rich_protoc_decode)
{
	struct fix f;
	size_t n;

	rich(&f);
	uint8_t *got = encode(&f.b, &n);
	char *txt = protoc_decode(got, n);
	static const char *const want[] = {
		"key: \"service.name\"",
		"string_value: \"caf\\303\\251-\\360\\237\\230\\200\"",
		"int_value: 4242",
		"bool_value: true",
		"name: \"cruddur\"",
		"version: \"1.2.3\"",
		"trace_id: \"\\n\\367e\\031\\026\\315C\\335\\204H\\353!\\034\\2001\\234\"",
		"span_id: \"\\267\\255kqi 31\"",
		"name: \"GET /api/\\342\\202\\254\"",
		"kind: SPAN_KIND_SERVER",
		"start_time_unix_nano: 1700000000123456789",
		"end_time_unix_nano: 1700000000223456789",
		"int_value: -1\n",
		"int_value: -9223372036854775808",
		"int_value: 9223372036854775807",
		"int_value: 0\n",
		"bool_value: false",
		"double_value: 3.14159",
		"double_value: 0\n",
		"double_value: -2.5e-300",
		"string_value: \"\"\n",
		"string_value: \"\\320\\237\\321\\200\\320\\270 \\360\\237\\214\\215\"",
		"flags: 769",
		"trace_state: \"congo=t61rcWkgMzE,rojo=00f067aa0ba902b7\"",
		"parent_span_id: \"\\267\\255kqi 31\"",
		"kind: SPAN_KIND_CLIENT",
		"int_value: 8080",
		"message: \"connection reset \\\"mid-response\\\"\"",
		"code: STATUS_CODE_ERROR",
		"flags: 1\n",
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		cr_expect_not_null(strstr(txt, want[i]), "missing %s in:\n%s", want[i], txt);
	/* the root span has no parent, no trace_state, no status */
	char *second = strstr(txt, "kind: SPAN_KIND_CLIENT");
	cr_assert_not_null(second);
	char *first_end = strstr(txt, "flags: 769");
	cr_assert_not_null(first_end);
	*first_end = 0;
	cr_expect_null(strstr(txt, "parent_span_id"));
	cr_expect_null(strstr(txt, "trace_state"));
	cr_expect_null(strstr(txt, "status {"));
	free(txt);
	free(got);
}

Test(otlp_pb, rich_enospc_every_cap)
{
	struct fix f;

	rich(&f);
	check_enospc(&f.b);
}

/* ---- defaults ---- */

/* Everything at its default: only ids, an empty resource and scope. */
Test(otlp_pb, defaults_omitted)
{
	static const uint8_t zero8[8];
	struct fix f;
	size_t n, nwant;

	memset(&f, 0, sizeof(f));
	struct crd_span_view *v = &f.v[0];
	v->trace_id = r_tid;
	v->span_id = r_sid1;
	v->parent_span_id = zero8; /* all zero: treated as root */
	v->trace_state = NULL;     /* NULL strings count as "" */
	v->name = "";
	v->status_message = NULL;
	f.sp[0] = v;
	f.b = (struct crd_otlp_batch){.spans = f.sp, .n = 1};

	uint8_t *got = encode(&f.b, &n);
	static const uint8_t want[] = {
		0x0a, 0x24,       /* resource_spans, 36 bytes */
		0x0a, 0x00,       /* resource {} */
		0x12, 0x20,       /* scope_spans, 32 bytes */
		0x0a, 0x00,       /* scope {} */
		0x12, 0x1c,       /* spans, 28 bytes */
		0x0a, 0x10,       /* trace_id */
		0x0a, 0xf7, 0x65, 0x19, 0x16, 0xcd, 0x43, 0xdd,
		0x84, 0x48, 0xeb, 0x21, 0x1c, 0x80, 0x31, 0x9c,
		0x12, 0x08,       /* span_id */
		0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31,
	};
	assert_bytes(got, n, want, sizeof(want));
	uint8_t *ref = protoc_encode("resource_spans { resource {} scope_spans { scope {} spans {"
				     " trace_id: \"\\x0a\\xf7\\x65\\x19\\x16\\xcd\\x43\\xdd\\x84\\x48"
				     "\\xeb\\x21\\x1c\\x80\\x31\\x9c\""
				     " span_id: \"\\xb7\\xad\\x6b\\x71\\x69\\x20\\x33\\x31\" } } }",
				     &nwant);
	assert_bytes(got, n, ref, nwant);
	free(ref);
	free(got);
}

/* No spans at all still gives a well-formed request. */
Test(otlp_pb, empty_batch)
{
	struct crd_otlp_batch b = {0};
	size_t n;
	uint8_t *got = encode(&b, &n);
	static const uint8_t want[] = {0x0a, 0x06, 0x0a, 0x00, 0x12, 0x02, 0x0a, 0x00};

	assert_bytes(got, n, want, sizeof(want));
	check_enospc(&b);
	free(got);
}

/* A status with only a message is kept; one with only a code too. */
Test(otlp_pb, status_presence)
{
	struct fix f;
	size_t n, nwant;

	sample(&f);
	f.v[0].status_code = 0;
	f.v[0].status_message = "boom";
	f.v[0].nattrs = 0;
	f.v[0].flags = 0;
	uint8_t *got = encode(&f.b, &n);
	uint8_t *ref = protoc_encode(
		"resource_spans { resource { attributes { key: \"service.name\" value {"
		" string_value: \"svc\" } } } scope_spans { scope { name: \"httpshim\" version:"
		" \"0.1.0\" } spans {"
		" trace_id: \"\\x5b\\x8e\\xff\\xf7\\x98\\x03\\x81\\x03\\xd2\\x69\\xb6\\x33\\x81\\x3f"
		"\\xc6\\x0c\" span_id: \"\\xee\\xe1\\x9b\\x7e\\xc3\\xc1\\xb1\\x74\" parent_span_id:"
		" \"\\xee\\xe1\\x9b\\x7e\\xc3\\xc1\\xb1\\x73\" name: \"GET\" kind: SPAN_KIND_SERVER"
		" start_time_unix_nano: 1544712660000000000 end_time_unix_nano: 1544712661000000000"
		" status { message: \"boom\" } } } }",
		&nwant);
	assert_bytes(got, n, ref, nwant);
	free(ref);
	free(got);
}

/* Varint and fixed64 edges, negative enums, NaN / inf / -0.0 doubles, long
 * values whose length prefixes need 2 and 3 bytes. */
Test(otlp_pb, value_edges_equal_protoc)
{
	static char big[20000], txt[65536];
	struct fix f;
	size_t n, nwant;

	memset(big, 'x', sizeof(big) - 1);
	memset(&f, 0, sizeof(f));
	struct crd_span_view *v = &f.v[0];
	v->trace_id = r_tid;
	v->span_id = r_sid1;
	v->kind = -1;        /* not a valid kind, but must encode like protoc */
	v->status_code = 42; /* unknown enum value */
	v->start_ns = 1;
	v->end_ns = UINT64_MAX;
	v->flags = UINT32_MAX;
	v->name = big + sizeof(big) - 1 - 200; /* 200 bytes: 2-byte length */
	v->attrs[0] = iattr("a", 127);
	v->attrs[1] = iattr("b", 16384);
	v->attrs[2] = iattr("c", INT64_MIN + 1);
	v->attrs[3] = dattr("nan", NAN);
	v->attrs[4] = dattr("inf", INFINITY);
	v->attrs[5] = dattr("ninf", -INFINITY);
	v->attrs[6] = dattr("nzero", -0.0);
	v->attrs[7] = sattr("big", big); /* 19999 bytes: 3-byte length */
	v->nattrs = 8;
	f.sp[0] = v;
	f.b = (struct crd_otlp_batch){.scope_name = "s", .spans = f.sp, .n = 1};

	uint8_t *got = encode(&f.b, &n);
	snprintf(txt, sizeof(txt),
		 "resource_spans { resource {} scope_spans { scope { name: \"s\" } spans {"
		 " trace_id: \"\\x0a\\xf7\\x65\\x19\\x16\\xcd\\x43\\xdd\\x84\\x48\\xeb\\x21\\x1c"
		 "\\x80\\x31\\x9c\" span_id: \"\\xb7\\xad\\x6b\\x71\\x69\\x20\\x33\\x31\""
		 " name: \"%s\" kind: -1 start_time_unix_nano: 1"
		 " end_time_unix_nano: 18446744073709551615"
		 " attributes { key: \"a\" value { int_value: 127 } }"
		 " attributes { key: \"b\" value { int_value: 16384 } }"
		 " attributes { key: \"c\" value { int_value: -9223372036854775807 } }"
		 " attributes { key: \"nan\" value { double_value: nan } }"
		 " attributes { key: \"inf\" value { double_value: inf } }"
		 " attributes { key: \"ninf\" value { double_value: -inf } }"
		 " attributes { key: \"nzero\" value { double_value: -0 } }"
		 " attributes { key: \"big\" value { string_value: \"%s\" } }"
		 " status { code: 42 } flags: 4294967295 } } }",
		 v->name, big);
	uint8_t *ref = protoc_encode(txt, &nwant);
	assert_bytes(got, n, ref, nwant);
	free(ref);
	free(got);
}

/* Unknown attribute types are skipped; nattrs is clamped to the array. */
Test(otlp_pb, unknown_type_and_clamp)
{
	struct fix f, g;
	size_t n1, n2;

	sample(&f);
	g = f;
	g.sp[0] = &g.v[0];
	g.b.spans = g.sp;
	g.b.resource.attrs = g.res;
	g.v[0].attrs[2] = g.v[0].attrs[1];
	g.v[0].attrs[1] = (struct crd_attr){.key = "weird", .type = 99, .s = "x", .len = 1};
	g.v[0].nattrs = 3;
	uint8_t *a = encode(&f.b, &n1);
	uint8_t *b = encode(&g.b, &n2);
	assert_bytes(b, n2, a, n1);
	free(b);

	for (size_t i = 0; i < CRD_VIEW_MAX_ATTRS; i++)
		g.v[0].attrs[i] = iattr("k", (int64_t)i);
	g.v[0].nattrs = CRD_VIEW_MAX_ATTRS;
	b = encode(&g.b, &n1);
	g.v[0].nattrs = 1000; /* must not read past attrs[] */
	uint8_t *c = encode(&g.b, &n2);
	assert_bytes(c, n2, b, n1);
	free(a);
	free(b);
	free(c);
}

/* ---- UTF-8 ---- */

/* Strict parsers (protoc here; Go, Python) reject a request with invalid
 * UTF-8 in a string field: each bad byte must become U+FFFD. */
Test(otlp_pb, invalid_utf8_replaced)
{
	struct fix f;
	size_t n, nwant;

	sample(&f);
	/* bad: lone continuation, overlong C0 80, surrogate ED A0 80, > U+10FFFF,
	 * F5, truncated E2 82 at the end; good: 2/3/4-byte and U+10FFFF */
	static const char val[] = "\x80|\xc0\x80|\xed\xa0\x80|\xf4\x90\x80\x80|\xf5|"
				  "\xc2\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf|\xe2\x82";
	f.v[0].attrs[0] = (struct crd_attr){
		.key = "k\xff", .type = CRD_ATTR_STR, .s = val, .len = sizeof(val) - 1};
	f.v[0].name = "G\xe9T"; /* Latin-1 */
	f.v[0].nattrs = 1;
	uint8_t *got = encode(&f.b, &n);
	char *txt = protoc_decode(got, n);
	cr_expect_not_null(strstr(txt, "name: \"G\\357\\277\\275T\""), "%s", txt);
	cr_expect_not_null(strstr(txt, "key: \"k\\357\\277\\275\""), "%s", txt);
#define R "\\357\\277\\275"
	const char *want = "string_value: \"" R "|" R R "|" R R R "|" R R R R "|" R "|"
			   "\\302\\251\\342\\202\\254\\360\\237\\230\\200\\364\\217\\277\\277|" R
			   R "\"";
#undef R
	cr_expect_not_null(strstr(txt, want), "want %s in:\n%s", want, txt);
	/* and protoc encodes the decoded text back to the same bytes */
	uint8_t *ref = protoc_encode(txt, &nwant);
	assert_bytes(got, n, ref, nwant);
	check_enospc(&f.b);
	free(ref);
	free(txt);
	free(got);
}

/* ---- randomized ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static char *rnd_str(char *buf, size_t max, size_t *len)
{
	size_t n = rnd() % max;

	for (size_t i = 0; i < n; i++) {
		uint64_t r = rnd() % 10;
		/* mostly ASCII, some high bytes (often invalid), some UTF-8 */
		buf[i] = r < 7 ? (char)(' ' + rnd() % 95) : (char)(rnd() % 256);
		if (r == 9 && i + 3 < n) {
			memcpy(buf + i, "\xf0\x9f\x98\x80", 4);
			i += 3;
		}
	}
	buf[n] = 0;
	*len = n;
	return buf;
}

/* Random batches: size pass == write pass, -ENOSPC below it, and protoc
 * parses the result (well-formed lengths, valid UTF-8). */
Test(otlp_pb, random_batches, .timeout = 60)
{
	static char strs[4][48][300];
	static uint8_t ids[4][32];
	struct fix f;

	for (int iter = 0; iter < 300; iter++) {
		memset(&f, 0, sizeof(f));
		int si = 0;
		size_t len;
		f.b.n = rnd() % 4;
		for (size_t k = 0; k < f.b.n; k++) {
			struct crd_span_view *v = &f.v[k];
			for (int j = 0; j < 32; j++)
				ids[k][j] = (uint8_t)rnd();
			v->trace_id = ids[k];
			v->span_id = ids[k] + 16;
			v->parent_span_id = rnd() % 2 ? ids[k] + 24 : NULL;
			si = 0;
			v->trace_state = rnd_str(strs[k][si++], 60, &len);
			v->name = rnd_str(strs[k][si++], 60, &len);
			v->status_message = rnd_str(strs[k][si++], 30, &len);
			v->kind = (int)(rnd() % 6);
			v->status_code = (int)(rnd() % 3);
			v->start_ns = rnd() % 3 ? rnd() : 0;
			v->end_ns = rnd() % 3 ? rnd() : 0;
			v->flags = rnd() % 2 ? (uint32_t)rnd() : 0;
			v->nattrs = rnd() % 20;
			for (size_t a = 0; a < v->nattrs; a++) {
				struct crd_attr *at = &v->attrs[a];
				at->key = rnd_str(strs[k][si++], 20, &len);
				at->type = (uint8_t)(rnd() % 4);
				at->s = rnd_str(strs[k][si++], 250, &at->len);
				at->i = (int64_t)rnd() >> (rnd() % 64);
				at->d = (double)(int64_t)rnd() / 1e3;
			}
			f.sp[k] = v;
		}
		f.res[0] = sattr("service.name", rnd_str(strs[3][0], 30, &len));
		f.b.resource = (struct crd_attr_list){f.res, rnd() % 2};
		f.b.scope_name = rnd() % 2 ? "s" : NULL;
		f.b.scope_version = rnd() % 2 ? "" : "v";
		f.b.spans = f.sp;

		size_t n;
		uint8_t *got = encode(&f.b, &n);
		if (iter % 10 == 0)
			free(protoc_decode(got, n));
		/* clobbers got: the encoder writes back to front */
		cr_assert_eq(crd_otlp_pb_encode(&f.b, got, n - 1), -ENOSPC);
		free(got);
	}
}

/* A large batch: every length prefix is multi-byte; protoc sees every span. */
Test(otlp_pb, large_batch)
{
	enum { N = 600 };
	static struct crd_span_view v[N];
	static const struct crd_span_view *sp[N];
	struct fix f;
	size_t n;

	sample(&f);
	for (int i = 0; i < N; i++) {
		v[i] = f.v[0];
		sp[i] = &v[i];
	}
	f.b.spans = sp;
	f.b.n = N;
	uint8_t *got = encode(&f.b, &n);
	char *txt = protoc_decode(got, n);
	size_t count = 0;
	for (char *p = txt; (p = strstr(p, "spans {")) != NULL; p++)
		count++;
	cr_assert_eq(count, N + 2); /* N spans, resource_spans, scope_spans */
	free(txt);
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

/* Not a pass/fail timing test (machines vary): reports ns/span for a
 * typical 15-attribute span in the log, and fails only if grossly slow. */
Test(otlp_pb, speed_smoke)
{
	enum { N = 64, ROUNDS = 200 };
	static struct crd_span_view v[N];
	static const struct crd_span_view *sp[N];
	static uint8_t buf[N * 1024];
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
		cr_assert_gt(crd_otlp_pb_encode(&f.b, buf, sizeof(buf)), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double ns = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) /
		    (N * ROUNDS);
	cr_log_info("otlp pb: %.0f ns/span (15 attributes)", ns);
	cr_expect_lt(ns, 50000.0);
}
