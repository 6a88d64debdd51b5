/* otlp_json.c - OTLP/JSON ExportTraceServiceRequest, and the shared JSON
 * string writer.
 *
 * One pass, no allocation: a cursor writes forward and every write is
 * bounds-checked against cap - 1 (one byte stays reserved for the NUL). The
 * first write that does not fit makes the whole call fail with -ENOSPC, so
 * the caller never sees truncated JSON.
 *
 * Field presence mirrors the protobuf encoder (see otlp_enc.h), and the key
 * order follows tests/proto/sample-export-trace-request.json so the sample
 * can be compared byte for byte.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otlp_enc.h"

size_t crd_utf8_seq(const unsigned char *p, size_t avail)
{
	unsigned c = p[0], lo = 0x80, hi = 0xbf;

	if (c < 0x80)
		return 1;
	if (c < 0xc2) /* continuation byte, or C0/C1: overlong 2-byte form */
		return 0;
	if (c < 0xe0)
		return avail >= 2 && (p[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c < 0xf0) {
		if (c == 0xe0)
			lo = 0xa0; /* overlong below U+0800 */
		else if (c == 0xed)
			hi = 0x9f; /* UTF-16 surrogates U+D800..U+DFFF */
		return avail >= 3 && p[1] >= lo && p[1] <= hi && (p[2] & 0xc0) == 0x80 ? 3 : 0;
	}
	if (c < 0xf5) {
		if (c == 0xf0)
			lo = 0x90; /* overlong below U+10000 */
		else if (c == 0xf4)
			hi = 0x8f; /* above U+10FFFF */
		if (avail < 4 || p[1] < lo || p[1] > hi)
			return 0;
		return (p[2] & 0xc0) == 0x80 && (p[3] & 0xc0) == 0x80 ? 4 : 0;
	}
	return 0; /* F5..FF never appear in UTF-8 */
}

/* ---- output cursor ---- */

/* end is out + cap - 1: the NUL always fits. A failed write sets err and
 * shrinks end to p, so nothing after it is written either. */
struct jw {
	char *p, *end;
	bool err;
};

static bool jw_init(struct jw *w, char *out, size_t cap)
{
	if (cap == 0)
		return false;
	w->p = out;
	w->end = out + cap - 1;
	w->err = false;
	return true;
}

static ssize_t jw_finish(struct jw *w, char *out)
{
	if (w->err)
		return -ENOSPC;
	*w->p = '\0';
	return w->p - out;
}

static inline void jw_put(struct jw *w, const void *s, size_t n)
{
	if (n == 0) /* s may be NULL */
		return;
	if ((size_t)(w->end - w->p) < n) {
		w->err = true;
		w->end = w->p;
		return;
	}
	memcpy(w->p, s, n);
	w->p += n;
}

/* s must be a string literal (sizeof gives its length). */
#define jw_lit(w, s) jw_put((w), "" s, sizeof(s) - 1)

static inline void jw_ch(struct jw *w, char c)
{
	jw_put(w, &c, 1);
}

static const char hexdig[] = "0123456789abcdef";

/* ---- strings ---- */

static inline bool json_plain(unsigned c)
{
	return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

#define ONES  0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

/* True when none of the 8 bytes of x needs attention: each is >= 0x20,
 * below 0x80, and neither '"' nor '\\'. The classic SWAR tests ("has a zero
 * byte", "has a byte < n") are exact as to whether any byte matches. */
static inline bool plain8(uint64_t x)
{
	uint64_t q = x ^ (ONES * '"'), b = x ^ (ONES * '\\');
	uint64_t hit = ((x - ONES * 0x20) & ~x) | ((q - ONES) & ~q) | ((b - ONES) & ~b) | x;

	return !(hit & HIGHS);
}

static void json_str(struct jw *w, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *e, *run;

	jw_ch(w, '"');
	if (len == 0) {
		jw_ch(w, '"');
		return;
	}
	for (e = p + len, run = p; p < e;) {
		unsigned c = *p;
		size_t k;
		uint64_t x;

		if (e - p >= 8) {
			memcpy(&x, p, 8);
			if (plain8(x)) {
				p += 8;
				continue;
			}
		}
		if (json_plain(c)) {
			p++;
			continue;
		}
		if (c >= 0x80 && (k = crd_utf8_seq(p, (size_t)(e - p))) != 0) {
			p += k; /* valid multibyte UTF-8: copied as is */
			continue;
		}
		jw_put(w, run, (size_t)(p - run));
		switch (c) {
		case '"':
			jw_lit(w, "\\\"");
			break;
		case '\\':
			jw_lit(w, "\\\\");
			break;
		case '\b':
			jw_lit(w, "\\b");
			break;
		case '\f':
			jw_lit(w, "\\f");
			break;
		case '\n':
			jw_lit(w, "\\n");
			break;
		case '\r':
			jw_lit(w, "\\r");
			break;
		case '\t':
			jw_lit(w, "\\t");
			break;
		default:
			if (c < 0x20) {
				char u[6] = {'\\', 'u', '0', '0', hexdig[c >> 4], hexdig[c & 15]};
				jw_put(w, u, sizeof(u));
			} else {
				jw_lit(w, "\\ufffd"); /* byte that is not valid UTF-8 */
			}
		}
		run = ++p;
	}
	jw_put(w, run, (size_t)(p - run));
	jw_ch(w, '"');
}

static inline void json_cstr(struct jw *w, const char *s)
{
	json_str(w, s, s ? strlen(s) : 0);
}

ssize_t crd_json_string(char *out, size_t cap, const char *s, size_t len)
{
	struct jw w;

	if (!jw_init(&w, out, cap))
		return -ENOSPC;
	json_str(&w, s, len);
	return jw_finish(&w, out);
}

/* ---- numbers ---- */

static const char digits2[] = "00010203040506070809"
			      "10111213141516171819"
			      "20212223242526272829"
			      "30313233343536373839"
			      "40414243444546474849"
			      "50515253545556575859"
			      "60616263646566676869"
			      "70717273747576777879"
			      "80818283848586878889"
			      "90919293949596979899";

/* Decimal, two digits per step (timestamps have 19). */
static void json_u64(struct jw *w, uint64_t v)
{
	char buf[20], *p = buf + sizeof(buf);

	while (v >= 100) {
		p -= 2;
		memcpy(p, digits2 + 2 * (v % 100), 2);
		v /= 100;
	}
	if (v >= 10) {
		p -= 2;
		memcpy(p, digits2 + 2 * v, 2);
	} else {
		*--p = (char)('0' + v);
	}
	jw_put(w, p, (size_t)(buf + sizeof(buf) - p));
}

static void json_i64(struct jw *w, int64_t v)
{
	if (v < 0) {
		jw_ch(w, '-');
		json_u64(w, -(uint64_t)v); /* also right for INT64_MIN */
	} else {
		json_u64(w, (uint64_t)v);
	}
}

/* 64-bit integers are strings in proto3 JSON (JavaScript numbers lose them). */
static void json_u64_str(struct jw *w, uint64_t v)
{
	jw_ch(w, '"');
	json_u64(w, v);
	jw_ch(w, '"');
}

static void json_i64_str(struct jw *w, int64_t v)
{
	jw_ch(w, '"');
	json_i64(w, v);
	jw_ch(w, '"');
}

/* A double as a JSON number: the shortest of %.15g..%.17g that reads back
 * equal (%.17g always does). snprintf/strtod only format and parse memory
 * (no stream I/O, no allocation for doubles at these precisions). Both honour
 * LC_NUMERIC, which the host application may have set to a locale with a
 * decimal comma: the round trip runs in that locale on both sides, and the
 * output then keeps only digits, signs and 'e', mapping whatever else (the
 * locale's decimal point, possibly multibyte) to '.'. NaN and infinities are
 * not JSON numbers: proto3 JSON writes them as strings. */
static void json_double(struct jw *w, double d)
{
	char buf[64], out[64];
	size_t n, o = 0;

	if (isnan(d)) {
		jw_lit(w, "\"NaN\"");
		return;
	}
	if (isinf(d)) {
		if (d > 0)
			jw_lit(w, "\"Infinity\"");
		else
			jw_lit(w, "\"-Infinity\"");
		return;
	}
	/* integral values (counts, sizes): exact, and the same text %.15g gives */
	if (d > -1e15 && d < 1e15 && d == (double)(int64_t)d) {
		if (d == 0 && signbit(d))
			jw_lit(w, "-0");
		else
			json_i64(w, (int64_t)d);
		return;
	}
	for (int prec = 15;; prec++) {
		int r = snprintf(buf, sizeof(buf), "%.*g", prec, d);

		if (r < 0) {
			buf[0] = '0';
			buf[1] = '\0';
		}
		if (prec == 17 || strtod(buf, NULL) == d)
			break;
	}
	n = strnlen(buf, sizeof(buf));
	for (size_t i = 0; i < n; i++) {
		char c = buf[i];

		if ((c >= '0' && c <= '9') || c == '-' || c == '+' || c == 'e' || c == 'E')
			out[o++] = c;
		else if (o == 0 || out[o - 1] != '.')
			out[o++] = '.';
	}
	jw_put(w, out, o);
}

static void json_hex(struct jw *w, const uint8_t *id, size_t n)
{
	char buf[32];

	for (size_t i = 0; i < n; i++) {
		buf[2 * i] = hexdig[id[i] >> 4];
		buf[2 * i + 1] = hexdig[id[i] & 15];
	}
	jw_ch(w, '"');
	jw_put(w, buf, 2 * n);
	jw_ch(w, '"');
}

/* ---- OTLP ---- */

static bool known_type(uint8_t t)
{
	return t == CRD_ATTR_STR || t == CRD_ATTR_INT || t == CRD_ATTR_BOOL || t == CRD_ATTR_DOUBLE;
}

/* Writes open (e.g. `,"attributes":[`), the KeyValues, and `]`; nothing at
 * all when no attribute has a known type (empty repeated fields are omitted,
 * as in the protobuf encoding). */
static void json_attrs(struct jw *w, const char *open, size_t open_len, const struct crd_attr *a,
		       size_t n)
{
	bool first = true;

	for (size_t i = 0; i < n; i++) {
		if (!known_type(a[i].type))
			continue;
		if (first)
			jw_put(w, open, open_len);
		else
			jw_ch(w, ',');
		first = false;
		jw_lit(w, "{\"key\":");
		json_cstr(w, a[i].key);
		switch (a[i].type) {
		case CRD_ATTR_STR:
			jw_lit(w, ",\"value\":{\"stringValue\":");
			json_str(w, a[i].s, a[i].len);
			break;
		case CRD_ATTR_INT:
			jw_lit(w, ",\"value\":{\"intValue\":");
			json_i64_str(w, a[i].i);
			break;
		case CRD_ATTR_BOOL:
			if (a[i].i)
				jw_lit(w, ",\"value\":{\"boolValue\":true");
			else
				jw_lit(w, ",\"value\":{\"boolValue\":false");
			break;
		case CRD_ATTR_DOUBLE:
			jw_lit(w, ",\"value\":{\"doubleValue\":");
			json_double(w, a[i].d);
			break;
		}
		jw_lit(w, "}}");
	}
	if (!first)
		jw_ch(w, ']');
}

static bool has_parent(const struct crd_span_view *v)
{
	static const uint8_t zero[8];

	return v->parent_span_id && memcmp(v->parent_span_id, zero, 8) != 0;
}

static inline bool nonempty(const char *s)
{
	return s && *s;
}

static void json_span(struct jw *w, const struct crd_span_view *v)
{
	size_t nattrs = v->nattrs < CRD_VIEW_MAX_ATTRS ? v->nattrs : CRD_VIEW_MAX_ATTRS;

	jw_lit(w, "{\"traceId\":");
	json_hex(w, v->trace_id, 16);
	jw_lit(w, ",\"spanId\":");
	json_hex(w, v->span_id, 8);
	if (nonempty(v->trace_state)) {
		jw_lit(w, ",\"traceState\":");
		json_cstr(w, v->trace_state);
	}
	if (has_parent(v)) {
		jw_lit(w, ",\"parentSpanId\":");
		json_hex(w, v->parent_span_id, 8);
	}
	if (v->flags) {
		jw_lit(w, ",\"flags\":");
		json_u64(w, v->flags);
	}
	if (nonempty(v->name)) {
		jw_lit(w, ",\"name\":");
		json_cstr(w, v->name);
	}
	if (v->kind) {
		jw_lit(w, ",\"kind\":");
		json_i64(w, v->kind);
	}
	if (v->start_ns) {
		jw_lit(w, ",\"startTimeUnixNano\":");
		json_u64_str(w, v->start_ns);
	}
	if (v->end_ns) {
		jw_lit(w, ",\"endTimeUnixNano\":");
		json_u64_str(w, v->end_ns);
	}
	json_attrs(w, ",\"attributes\":[", sizeof(",\"attributes\":[") - 1, v->attrs, nattrs);
	if (v->status_code || nonempty(v->status_message)) {
		jw_lit(w, ",\"status\":{");
		if (nonempty(v->status_message)) {
			jw_lit(w, "\"message\":");
			json_cstr(w, v->status_message);
			if (v->status_code)
				jw_ch(w, ',');
		}
		if (v->status_code) {
			jw_lit(w, "\"code\":");
			json_i64(w, v->status_code);
		}
		jw_ch(w, '}');
	}
	jw_ch(w, '}');
}

ssize_t crd_otlp_json_encode(const struct crd_otlp_batch *b, char *out, size_t cap)
{
	struct jw w;

	if (!jw_init(&w, out, cap))
		return -ENOSPC;
	jw_lit(&w, "{\"resourceSpans\":[{\"resource\":{");
	json_attrs(&w, "\"attributes\":[", sizeof("\"attributes\":[") - 1, b->resource.attrs,
		   b->resource.n);
	jw_lit(&w, "},\"scopeSpans\":[{\"scope\":{");
	if (nonempty(b->scope_name)) {
		jw_lit(&w, "\"name\":");
		json_cstr(&w, b->scope_name);
		if (nonempty(b->scope_version))
			jw_ch(&w, ',');
	}
	if (nonempty(b->scope_version)) {
		jw_lit(&w, "\"version\":");
		json_cstr(&w, b->scope_version);
	}
	jw_lit(&w, "},\"spans\":[");
	for (size_t i = 0; i < b->n; i++) {
		if (i)
			jw_ch(&w, ',');
		json_span(&w, b->spans[i]);
	}
	jw_lit(&w, "]}]}]}");
	return jw_finish(&w, out);
}
