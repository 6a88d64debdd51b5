/* otlp_pb.c - OTLP ExportTraceServiceRequest, protobuf wire format.
 *
 * No allocation. Every nested message is length-prefixed, and a prefix is a
 * varint, so its own size depends on the size of what it encloses. Two ways
 * to get the lengths without storing them:
 *
 *   crd_otlp_pb_size()    a size pass, bottom-up: attribute (AnyValue,
 *                         KeyValue) -> span -> ScopeSpans -> ResourceSpans.
 *                         Each *_size() returns the size of a message body;
 *                         field_size() adds the tag and the length prefix.
 *   crd_otlp_pb_encode()  writes back to front, from out + cap down: the
 *                         body of a message is written before its prefix, so
 *                         every length is simply "end of body - cursor", and
 *                         no size is ever computed twice. Each string is
 *                         scanned once (UTF-8 check) and copied once. The
 *                         finished encoding is then moved to out[0] (one
 *                         memmove, skipped when cap is the exact size).
 *
 * Both walk the fields in the same order with the same presence rules (see
 * otlp_enc.h); the unit tests check that they agree on random batches and
 * against protoc. Every write is bounds-checked: the cursor never goes below
 * out, so nothing outside [out, out + cap) is touched, and a batch that does
 * not fit yields -ENOSPC.
 *
 * Field order is ascending field number, as protobuf's own serializer does
 * (e.g. Span.flags = 16 goes last, after status = 15); writing back to front
 * therefore visits fields in descending order.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "otlp_enc.h"

/* Wire types. */
enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

#define TAG(field, wt) ((uint32_t)(((field) << 3) | (wt)))

/* Field numbers (opentelemetry-proto, see otlp_enc.h). */
enum {
	F_REQ_RESOURCE_SPANS = 1,
	F_RS_RESOURCE = 1,
	F_RS_SCOPE_SPANS = 2,
	F_RES_ATTRIBUTES = 1,
	F_SS_SCOPE = 1,
	F_SS_SPANS = 2,
	F_SCOPE_NAME = 1,
	F_SCOPE_VERSION = 2,
	F_SPAN_TRACE_ID = 1,
	F_SPAN_SPAN_ID = 2,
	F_SPAN_TRACE_STATE = 3,
	F_SPAN_PARENT = 4,
	F_SPAN_NAME = 5,
	F_SPAN_KIND = 6,
	F_SPAN_START = 7,
	F_SPAN_END = 8,
	F_SPAN_ATTRIBUTES = 9,
	F_SPAN_STATUS = 15,
	F_SPAN_FLAGS = 16,
	F_STATUS_MESSAGE = 2,
	F_STATUS_CODE = 3,
	F_KV_KEY = 1,
	F_KV_VALUE = 2,
	F_ANY_STRING = 1,
	F_ANY_BOOL = 2,
	F_ANY_INT = 3,
	F_ANY_DOUBLE = 4,
};

/* ---- shared by both passes ---- */

/* Minimal varint length: 7 payload bits per byte; v | 1 makes 0 one byte. */
static inline size_t varint_size(uint64_t v)
{
	unsigned bits = 64 - (unsigned)__builtin_clzll(v | 1);

	return (bits + 6) / 7;
}

static inline size_t cstrlen(const char *s)
{
	return s ? strlen(s) : 0;
}

static inline uint64_t load64(const unsigned char *p)
{
	uint64_t w;

	memcpy(&w, p, sizeof(w));
	return w;
}

#define HIGH_BITS 0x8080808080808080ull

/* Extra bytes that replacing each invalid byte of p[0..n) by U+FFFD adds.
 * Out of line: only non-ASCII input gets here. */
static __attribute__((noinline)) size_t utf8_extra(const unsigned char *p, size_t n)
{
	const unsigned char *e = p + n;
	size_t extra = 0, k;

	while (p < e) {
		if (*p < 0x80) {
			p++;
			continue;
		}
		k = crd_utf8_seq(p, (size_t)(e - p));
		if (k == 0) {
			extra += 2;
			k = 1;
		}
		p += k;
	}
	return extra;
}

/* Length of s once each byte that does not start a valid UTF-8 sequence is
 * replaced by U+FFFD (3 bytes). It equals len exactly when s is valid UTF-8
 * (every replacement adds 2), which lets the writer pick memcpy. The common
 * all-ASCII case is checked a word at a time, the tail with one overlapping
 * load. */
static inline size_t utf8_len(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	uint32_t w4, t4;

	if (len >= 8) {
		for (; i + 8 <= len; i += 8) {
			if (load64(p + i) & HIGH_BITS)
				return len + utf8_extra(p + i, len - i);
		}
		if (i == len || !(load64(p + len - 8) & HIGH_BITS))
			return len;
	} else if (len >= 4) {
		memcpy(&w4, p, 4);
		memcpy(&t4, p + len - 4, 4);
		if (!((w4 | t4) & 0x80808080u))
			return len;
	} else {
		for (; i < len; i++) {
			if (p[i] & 0x80)
				break;
		}
		if (i == len)
			return len;
	}
	/* p[0..i) is ASCII, so i is at a character boundary */
	return len + utf8_extra(p + i, len - i);
}

static inline bool nonempty(const char *s)
{
	return s && *s;
}

static inline size_t view_nattrs(const struct crd_span_view *v)
{
	return v->nattrs < CRD_VIEW_MAX_ATTRS ? v->nattrs : CRD_VIEW_MAX_ATTRS;
}

static inline bool has_parent(const struct crd_span_view *v)
{
	static const uint8_t zero[8];

	return v->parent_span_id && memcmp(v->parent_span_id, zero, 8) != 0;
}

static inline bool has_status(const struct crd_span_view *v)
{
	return v->status_code != 0 || nonempty(v->status_message);
}

/* ---- size pass ---- */

/* Size of a length-delimited field whose body is n bytes. Every such field
 * number used here is below 16, so each tag is one byte. */
static inline size_t field_size(size_t n)
{
	return 1 + varint_size(n) + n;
}

/* An optional string field: omitted when empty. */
static inline size_t str_size(const char *s, size_t len)
{
	return len ? field_size(utf8_len(s, len)) : 0;
}

static inline size_t cstr_size(const char *s)
{
	return str_size(s, cstrlen(s));
}

/* Enums are int32 on the wire: a negative value is sign-extended to 64 bits
 * (10 bytes), as protobuf does. */
static inline size_t enum_size(int e)
{
	return e ? 1 + varint_size((uint64_t)(int64_t)e) : 0;
}

/* Size of a repeated KeyValue field: the sum of its field sizes. */
static size_t attrs_size(const struct crd_attr *a, size_t n)
{
	size_t sum = 0, any;

	for (size_t i = 0; i < n; i++) {
		switch (a[i].type) {
		case CRD_ATTR_STR:
			/* oneof member: written even when "" */
			any = field_size(utf8_len(a[i].s, a[i].len));
			break;
		case CRD_ATTR_INT:
			any = 1 + varint_size((uint64_t)a[i].i);
			break;
		case CRD_ATTR_BOOL:
			any = 2;
			break;
		case CRD_ATTR_DOUBLE:
			any = 1 + 8;
			break;
		default:
			continue; /* unknown type: skipped */
		}
		sum += field_size(cstr_size(a[i].key) + field_size(any));
	}
	return sum;
}

static size_t span_size(const struct crd_span_view *v)
{
	size_t n = field_size(16) + field_size(8); /* trace_id, span_id */

	n += cstr_size(v->trace_state);
	if (has_parent(v))
		n += field_size(8);
	n += cstr_size(v->name);
	n += enum_size(v->kind);
	if (v->start_ns)
		n += 1 + 8;
	if (v->end_ns)
		n += 1 + 8;
	n += attrs_size(v->attrs, view_nattrs(v));
	if (has_status(v))
		n += field_size(cstr_size(v->status_message) + enum_size(v->status_code));
	if (v->flags)
		n += 2 + 4; /* tag 16 takes two bytes */
	return n;
}

size_t crd_otlp_pb_size(const struct crd_otlp_batch *b)
{
	size_t resource = attrs_size(b->resource.attrs, b->resource.n);
	size_t scope = cstr_size(b->scope_name) + cstr_size(b->scope_version);
	size_t ss = field_size(scope);

	for (size_t i = 0; i < b->n; i++)
		ss += field_size(span_size(b->spans[i]));
	/* Resource: always present, even without attributes */
	return field_size(field_size(resource) + field_size(ss));
}

/* ---- write pass, back to front ---- */

/* The cursor p moves down from out + cap towards lo (= out). A reservation
 * that does not fit sets err and raises lo to p, so every later one fails
 * too and nothing below out is ever written. */
struct rw {
	uint8_t *lo, *p;
	bool err;
};

static inline uint8_t *reserve(struct rw *w, size_t n)
{
	if ((size_t)(w->p - w->lo) < n) {
		w->lo = w->p;
		w->err = true;
		return NULL;
	}
	w->p -= n;
	return w->p;
}

static inline void put_varint(struct rw *w, uint64_t v)
{
	size_t n;
	uint8_t *d;

	if (v < 0x80) { /* tags, most lengths */
		if ((d = reserve(w, 1)) != NULL)
			*d = (uint8_t)v;
		return;
	}
	n = varint_size(v);
	d = reserve(w, n);
	if (!d)
		return;
	for (size_t i = 0; i + 1 < n; i++) {
		d[i] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	d[n - 1] = (uint8_t)v;
}

/* Tag and length prefix of a length-delimited field whose body has just
 * been written, ending at end. */
static inline void put_len(struct rw *w, unsigned field, const uint8_t *end)
{
	put_varint(w, (size_t)(end - w->p));
	put_varint(w, TAG(field, WT_LEN));
}

static inline void put_bytes(struct rw *w, unsigned field, const void *s, size_t n)
{
	uint8_t *end = w->p, *d = reserve(w, n);

	if (d)
		memcpy(d, s, n);
	put_len(w, field, end);
}

static inline void put_fixed(struct rw *w, uint32_t tag, uint64_t v, size_t n)
{
	uint8_t *d = reserve(w, n);

	if (d) {
		for (size_t i = 0; i < n; i++)
			d[i] = (uint8_t)(v >> (8 * i)); /* little-endian */
	}
	put_varint(w, tag);
}

/* A string field, written even when empty: copied as is when valid UTF-8,
 * else with each bad byte replaced by U+FFFD. */
static void put_str(struct rw *w, unsigned field, const char *s, size_t len)
{
	static const uint8_t fffd[3] = {0xef, 0xbf, 0xbd};
	size_t slen = utf8_len(s, len);
	uint8_t *end = w->p, *d = reserve(w, slen);
	const unsigned char *p = (const unsigned char *)s, *e;

	if (d && slen == len && len) {
		memcpy(d, s, len);
	} else if (d && len) {
		for (e = p + len; p < e;) {
			size_t k = *p < 0x80 ? 1 : crd_utf8_seq(p, (size_t)(e - p));
			if (k == 0) {
				memcpy(d, fffd, 3);
				d += 3;
				p++;
			} else {
				memcpy(d, p, k);
				d += k;
				p += k;
			}
		}
	}
	put_len(w, field, end);
}

/* An optional string field: omitted when empty. */
static inline void put_cstr(struct rw *w, unsigned field, const char *s)
{
	if (nonempty(s))
		put_str(w, field, s, strlen(s));
}

static inline void put_enum(struct rw *w, unsigned field, int e)
{
	if (e) {
		put_varint(w, (uint64_t)(int64_t)e);
		put_varint(w, TAG(field, WT_VARINT));
	}
}

static void put_attr(struct rw *w, unsigned field, const struct crd_attr *a)
{
	uint8_t *end = w->p;
	uint64_t bits;

	switch (a->type) {
	case CRD_ATTR_STR:
		put_str(w, F_ANY_STRING, a->s, a->len);
		break;
	case CRD_ATTR_INT:
		/* int64: two's complement varint (not zigzag) */
		put_varint(w, (uint64_t)a->i);
		put_varint(w, TAG(F_ANY_INT, WT_VARINT));
		break;
	case CRD_ATTR_BOOL:
		put_varint(w, a->i != 0);
		put_varint(w, TAG(F_ANY_BOOL, WT_VARINT));
		break;
	case CRD_ATTR_DOUBLE:
		memcpy(&bits, &a->d, sizeof(bits));
		put_fixed(w, TAG(F_ANY_DOUBLE, WT_I64), bits, 8);
		break;
	default:
		return; /* unknown type: skipped */
	}
	/* AnyValue and KeyValue both end where the value ends */
	put_len(w, F_KV_VALUE, end);
	put_cstr(w, F_KV_KEY, a->key);
	put_len(w, field, end);
}

static void put_attrs(struct rw *w, unsigned field, const struct crd_attr *a, size_t n)
{
	while (n--)
		put_attr(w, field, &a[n]);
}

static void put_span(struct rw *w, const struct crd_span_view *v)
{
	uint8_t *end = w->p, *st;

	if (v->flags)
		put_fixed(w, TAG(F_SPAN_FLAGS, WT_I32), v->flags, 4);
	if (has_status(v)) {
		st = w->p;
		put_enum(w, F_STATUS_CODE, v->status_code);
		put_cstr(w, F_STATUS_MESSAGE, v->status_message);
		put_len(w, F_SPAN_STATUS, st);
	}
	put_attrs(w, F_SPAN_ATTRIBUTES, v->attrs, view_nattrs(v));
	if (v->end_ns)
		put_fixed(w, TAG(F_SPAN_END, WT_I64), v->end_ns, 8);
	if (v->start_ns)
		put_fixed(w, TAG(F_SPAN_START, WT_I64), v->start_ns, 8);
	put_enum(w, F_SPAN_KIND, v->kind);
	put_cstr(w, F_SPAN_NAME, v->name);
	if (has_parent(v))
		put_bytes(w, F_SPAN_PARENT, v->parent_span_id, 8);
	put_cstr(w, F_SPAN_TRACE_STATE, v->trace_state);
	put_bytes(w, F_SPAN_SPAN_ID, v->span_id, 8);
	put_bytes(w, F_SPAN_TRACE_ID, v->trace_id, 16);
	put_len(w, F_SS_SPANS, end);
}

ssize_t crd_otlp_pb_encode(const struct crd_otlp_batch *b, uint8_t *out, size_t cap)
{
	uint8_t *end = out + cap, *mark;
	struct rw w = {out, end, false};
	size_t n;

	/* ScopeSpans */
	for (size_t i = b->n; i--;)
		put_span(&w, b->spans[i]);
	mark = w.p;
	put_cstr(&w, F_SCOPE_VERSION, b->scope_version);
	put_cstr(&w, F_SCOPE_NAME, b->scope_name);
	put_len(&w, F_SS_SCOPE, mark);
	put_len(&w, F_RS_SCOPE_SPANS, end);
	/* Resource: always present, even without attributes */
	mark = w.p;
	put_attrs(&w, F_RES_ATTRIBUTES, b->resource.attrs, b->resource.n);
	put_len(&w, F_RS_RESOURCE, mark);
	put_len(&w, F_REQ_RESOURCE_SPANS, end);
	if (w.err)
		return -ENOSPC;
	n = (size_t)(end - w.p);
	if (w.p != out)
		memmove(out, w.p, n);
	return (ssize_t)n;
}
