/* http1.c - incremental HTTP/1.x parser; the contract is in http1.h.
 *
 * One switch over the state, entered once per run of bytes rather than once
 * per byte: each state consumes as much as it can (a target, a value, a
 * body by count) before re-dispatching. A field line that is complete in
 * the buffer takes a fast path: one memchr finds its LF, which bounds the
 * name scan, and an unknown field is skipped right there. Nothing is
 * buffered but a short lowercased prefix of a header name split across
 * calls (or of a token in a header value), which is all it takes to
 * recognise the few names and tokens we care about; so every split of the
 * input gives the same results. "§" references are to RFC 9112 (HTTP/1.1
 * message syntax) unless they name RFC 9110 (semantics).
 */
#include <stddef.h>
#include <string.h>

#include "http1.h"

/* Parser states. The head states come first: crd_http1_feed() bounds them
 * by CRD_HTTP1_MAX_HEAD as a block (S_HEAD_LAST). */
enum {
	S_START,	 /* before a start line: skipping empty lines (§2.2) */
	S_METHOD,	 /* request: method token (§3.1) */
	S_TARGET,	 /* request: request-target up to SP (§3.2) */
	S_VERSION,	 /* "HTTP/1." matched so far: count chars (§2.3) */
	S_AFTER_VERSION, /* request: CRLF; response: SP */
	S_STATUS,	 /* response: 3 digits (§4) */
	S_AFTER_STATUS,	 /* response: SP reason, or an empty reason's CRLF */
	S_REASON,	 /* response: reason-phrase up to CRLF */
	S_LINE_LF,	 /* start line: CR seen, LF due */
	S_HDR_START,	 /* first byte of a field line, or of the empty line */
	S_NAME,		 /* field-name up to ':' (§5.1) */
	S_VALUE_START,	 /* OWS before a field value we store */
	S_VSTR,		 /* string value copied into *req */
	S_VTOK,		 /* token-list value (Connection, Transfer-Encoding, Expect) */
	S_VNUM,		 /* Content-Length value */
	S_SKIP_LINE,	 /* rest of a line we do not store */
	S_END_LF,	 /* empty line: CR seen, LF due */
	S_HEAD_LAST = S_END_LF,
	S_BODY_NONE,	 /* head done, no body: next feed returns MSG_DONE */
	S_BODY_LEN,	 /* Content-Length body: remaining bytes left */
	S_BODY_CLOSE,	 /* close-delimited body: everything until eof */
	S_CHUNK_SIZE,	 /* chunk-size hex digits (§7.1) */
	S_CHUNK_SIZE_WS, /* after the digits: BWS, ';' ext, or CRLF */
	S_CHUNK_EXT,	 /* chunk extensions, ignored up to LF (§7.1.1) */
	S_CHUNK_SIZE_LF, /* chunk-size line: CR seen, LF due */
	S_CHUNK_DATA,	 /* chunk data: remaining bytes left */
	S_CHUNK_DATA_CR, /* CRLF after chunk data */
	S_CHUNK_DATA_LF,
	S_TRAILER_START, /* after last-chunk: a trailer line or the empty line (§7.1.2) */
	S_TRAILER_LINE,	 /* trailer field line, ignored up to LF */
	S_TRAILER_LF,	 /* final empty line: CR seen, LF due */
	S_DONE,		 /* no message begun: after init or MSG_DONE */
	S_ERROR,	 /* sticky */
};

/* Known headers. The string ones (H_HOST..H_XAMZN) are copied into *req;
 * only H_CL, H_TE and H_CONN matter on the response side. The string ones
 * double as bit numbers in mflags ("already seen"). */
enum {
	H_NONE,
	H_HOST,
	H_UA,
	H_XFF,
	H_TRACEPARENT,
	H_TRACESTATE,
	H_XAMZN,
	H_CL,
	H_TE,
	H_CONN,
	H_EXPECT,
};

/* mflags: facts about the current message, turned into req->flags / resp
 * fields when the head completes. Bits 1..6 are "H_* seen". */
enum {
	M_CL_SEEN = 1 << 7,	/* a Content-Length value was stored */
	M_TE_SEEN = 1 << 8,	/* Transfer-Encoding had a coding */
	M_TE_CHUNKED = 1 << 9,	/* ... and the last one was chunked */
	M_CLOSE = 1 << 10,	/* Connection: close */
	M_KEEPALIVE = 1 << 11,	/* Connection: keep-alive */
	M_EXPECT_100 = 1 << 12, /* Expect: 100-continue */
};

/* vflags: state inside the current value or chunk-size line. */
enum {
	V_PARAM = 1 << 0,  /* token list: inside ";param", skip to ',' */
	V_TOKEND = 1 << 1, /* token list: whitespace after the token */
	V_DIGIT = 1 << 2,  /* number: at least one digit */
	V_NUMWS = 1 << 3,  /* number: whitespace after the digits */
};

/* p->count of a value token that cannot be one we compare (longer than
 * p->name, which fits the longest, "100-continue", or not a plain token). */
#define TOK_BAD 0xff

/* The only major version we accept: HTTP/1.<digit> (RFC 9112 §2.3). */
static const char http1[] = "HTTP/1.";

/* Content-Length must fit struct crd_http_req.content_length, chunk sizes
 * the same: both are checked for overflow (RFC 9110 §8.6, RFC 9112 §7.1). */
#define NUM_MAX ((uint64_t)INT64_MAX)

/* tchar (RFC 9110 §5.6.2) lowercased, 0 for anything else. It validates
 * methods, field names and value tokens, and folds case where case does not
 * matter (field names, the tokens we compare); methods are case-sensitive
 * and copied as sent. */
#define IS_TCHAR(c)                                                                                \
	(((c) >= '0' && (c) <= '9') || ((c) >= 'a' && (c) <= 'z') || ((c) >= 'A' && (c) <= 'Z') || \
	 (c) == '!' || (c) == '#' || (c) == '$' || (c) == '%' || (c) == '&' || (c) == '\'' ||      \
	 (c) == '*' || (c) == '+' || (c) == '-' || (c) == '.' || (c) == '^' || (c) == '_' ||       \
	 (c) == '`' || (c) == '|' || (c) == '~')
#define TLC(c) (IS_TCHAR(c) ? ((c) >= 'A' && (c) <= 'Z' ? (c) | 0x20 : (c)) : 0)
#define T4(c)  TLC(c), TLC((c) + 1), TLC((c) + 2), TLC((c) + 3)
#define T16(c) T4(c), T4((c) + 4), T4((c) + 8), T4((c) + 12)
#define T64(c) T16(c), T16((c) + 16), T16((c) + 32), T16((c) + 48)
static const uint8_t tchar_lc[256] = {T64(0), T64(64), T64(128), T64(192)};

/* A byte that ends a field name's token but is neither ':' nor
 * whitespace or a CTL: visible ASCII outside tchar ("X.Foo", "{x}") or
 * obs-text. nginx (ignore_invalid_headers, its default) serves such
 * requests and ignores the field, so we ignore the line too rather than
 * stop tracking: the request gets its span. Whitespace before the colon
 * stays an error (RFC 9112 §5.1 has servers answer 400). */
#define IS_NAME_JUNK(c) ((c) > 0x20 && (c) != 0x7f && (c) != ':')

/* Where each string header goes, and its cap (span.h). */
static const struct {
	uint16_t off, cap;
} str_field[] = {
    [H_HOST] = {offsetof(struct crd_http_req, host), CRD_HOST_MAX},
    [H_UA] = {offsetof(struct crd_http_req, user_agent), CRD_UA_MAX},
    [H_XFF] = {offsetof(struct crd_http_req, xff), CRD_XFF_MAX},
    [H_TRACEPARENT] = {offsetof(struct crd_http_req, traceparent), CRD_TRACEPARENT_MAX},
    [H_TRACESTATE] = {offsetof(struct crd_http_req, tracestate), CRD_TRACESTATE_MAX},
    [H_XAMZN] = {offsetof(struct crd_http_req, xamzn), CRD_XAMZN_MAX},
};

static int is_ws(unsigned c)
{
	/* OWS (RFC 9110 §5.6.3), plus CR: a CR before LF, or a bare CR, which
	 * RFC 9112 §2.2 lets a recipient treat as SP. */
	return c == ' ' || c == '\t' || c == '\r';
}

static int hexval(unsigned c)
{
	if (c - '0' < 10u)
		return (int)(c - '0');
	c |= 0x20;
	if (c - 'a' < 6u)
		return (int)(c - 'a' + 10);
	return -1;
}

static char *str_dest(struct crd_http1_parser *p)
{
	return (char *)p->req + str_field[p->hdr].off;
}

/* Append n bytes of the current field to d (cap bytes, NUL included).
 * Bytes past the cap are dropped; the field counts as truncated only when
 * a dropped byte is not whitespace (trailing OWS is trimmed anyway), so the
 * result does not depend on how the input was split. */
static void store(struct crd_http1_parser *p, char *d, size_t cap, const uint8_t *s, size_t n)
{
	size_t have = p->field_len, room = cap - 1 - have;

	if (n > room) {
		for (size_t i = room; i < n; i++) {
			if (!is_ws(s[i])) {
				p->req->flags |= CRD_REQ_TRUNCATED;
				break;
			}
		}
		n = room;
	}
	memcpy(d + have, s, n);
	d[have + n] = 0;
	p->field_len = (uint16_t)(have + n);
}

/* End of a string value: trim trailing OWS (and CR) back to NULs. */
static void finish_str(struct crd_http1_parser *p)
{
	char *d = str_dest(p);
	size_t n = p->field_len;

	while (n && is_ws((uint8_t)d[n - 1]))
		d[--n] = 0;
}

static uint64_t load64(const void *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static uint32_t load32(const void *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/* Case-insensitive compare of a field name (tchars only) with a lowercase
 * literal of the same length, 4..24 bytes, a word at a time (overlapping
 * loads cover the tail). OR 0x20 lowercases letters and maps every other
 * tchar to a byte outside the literals' alphabet [a-z-] ('-' to itself), so
 * it never makes a different name match. */
static int name_is(const uint8_t *n, const char *lit, size_t len)
{
	const uint64_t lc64 = 0x2020202020202020ull;
	const uint32_t lc32 = 0x20202020u;

	if (len < 8)
		return !(((load32(n) | lc32) ^ load32(lit)) |
			 ((load32(n + len - 4) | lc32) ^ load32(lit + len - 4)));
	if (len > 16 && (load64(n + 8) | lc64) != load64(lit + 8))
		return 0;
	return !(((load64(n) | lc64) ^ load64(lit)) |
		 ((load64(n + len - 8) | lc64) ^ load64(lit + len - 8)));
}

/* Which known header is the field name n[0..len)? n is either the input
 * itself (all tchars) or p->name (lowercased tchars). */
static unsigned lookup(const uint8_t *n, size_t len)
{
	switch (len) {
	case 4:
		return name_is(n, "host", 4) ? H_HOST : H_NONE;
	case 6:
		return name_is(n, "expect", 6) ? H_EXPECT : H_NONE;
	case 10:
		if (name_is(n, "connection", 10))
			return H_CONN;
		if (name_is(n, "user-agent", 10))
			return H_UA;
		return name_is(n, "tracestate", 10) ? H_TRACESTATE : H_NONE;
	case 11:
		return name_is(n, "traceparent", 11) ? H_TRACEPARENT : H_NONE;
	case 14:
		return name_is(n, "content-length", 14) ? H_CL : H_NONE;
	case 15:
		if (name_is(n, "x-forwarded-for", 15))
			return H_XFF;
		return name_is(n, "x-amzn-trace-id", 15) ? H_XAMZN : H_NONE;
	case 17:
		return name_is(n, "transfer-encoding", 17) ? H_TE : H_NONE;
	}
	return H_NONE;
}

/* Lengths of the names lookup() knows, per direction: one test rejects
 * most other names (Date, Server, Content-Type, ...). */
static const uint32_t known_len[2] = {
    [CRD_HTTP1_REQUEST] = 1u << 4 | 1u << 6 | 1u << 10 | 1u << 11 | 1u << 14 | 1u << 15 | 1u << 17,
    [CRD_HTTP1_RESPONSE] = 1u << 10 | 1u << 14 | 1u << 17,
};

/* Which header's value follows, per direction and the one-value rules: the
 * first Host/User-Agent/X-Forwarded-For/X-Amzn-Trace-Id line wins, a second
 * traceparent is flagged (W3C Trace Context: then invalid). */
static unsigned classify(struct crd_http1_parser *p, unsigned h)
{
	if (p->dir == CRD_HTTP1_RESPONSE)
		return h == H_CL || h == H_TE || h == H_CONN ? h : H_NONE;
	if (h >= H_HOST && h <= H_XAMZN && h != H_TRACESTATE) {
		if (p->mflags & (1u << h)) {
			if (h == H_TRACEPARENT)
				p->req->flags |= CRD_REQ_DUP_TRACEPARENT;
			return H_NONE;
		}
		p->mflags |= (uint16_t)(1u << h);
	}
	return h;
}

/* The first non-OWS byte of a stored value is next: set up its state. */
static unsigned begin_value(struct crd_http1_parser *p)
{
	p->count = 0;
	p->vflags = 0;
	p->remaining = 0;
	if (p->hdr == H_CL)
		return S_VNUM;
	if (p->hdr >= H_TE)
		return S_VTOK;
	p->field_len = 0;
	if (p->hdr == H_TRACESTATE) {
		/* Several tracestate lines are one list (RFC 9110 §5.3):
		 * join them with ','. The value is non-empty here, so no
		 * stray comma is ever added. */
		char *d = str_dest(p);
		const char *z = memchr(d, 0, CRD_TRACESTATE_MAX);

		p->field_len = (uint16_t)(z - d);
		if (p->field_len)
			store(p, d, CRD_TRACESTATE_MAX, (const uint8_t *)",", 1);
	}
	return S_VSTR;
}

/* Append a run of tchars to the current token of a token-list value. A
 * token with whitespace inside, or too long to be one we compare, becomes
 * TOK_BAD: it counts as a token but matches nothing. */
static void tok_add(struct crd_http1_parser *p, const uint8_t *s, size_t n)
{
	size_t k = p->count;

	if ((p->vflags & V_TOKEND) || k > CRD_HTTP1_NAME_BUF || n > CRD_HTTP1_NAME_BUF - k) {
		p->count = TOK_BAD;
		return;
	}
	for (size_t i = 0; i < n; i++)
		p->name[k + i] = (char)tchar_lc[s[i]];
	p->count = (uint8_t)(k + n);
}

/* A token of a token-list value ended (at ',', ';' or end of line). */
static void tok_end(struct crd_http1_parser *p)
{
	unsigned n = p->count;
	const char *t = p->name;

	if (!n)
		return; /* empty list elements are ignored (RFC 9110 §5.6.1) */
	p->count = 0;
	switch (p->hdr) {
	case H_TE:
		/* Only the last coding decides (RFC 9112 §6.3 item 4). */
		p->mflags |= M_TE_SEEN;
		if (n == 7 && !memcmp(t, "chunked", 7))
			p->mflags |= M_TE_CHUNKED;
		else
			p->mflags &= (uint16_t)~M_TE_CHUNKED;
		break;
	case H_CONN:
		if (n == 5 && !memcmp(t, "close", 5))
			p->mflags |= M_CLOSE;
		else if (n == 10 && !memcmp(t, "keep-alive", 10))
			p->mflags |= M_KEEPALIVE;
		break;
	case H_EXPECT:
		if (n == 12 && !memcmp(t, "100-continue", 12))
			p->mflags |= M_EXPECT_100;
		break;
	}
}

/* A Content-Length list element ended: store it, or fail (-1) if it differs
 * from an earlier one (RFC 9112 §6.3 item 5; identical repeats are fine). */
static int cl_end(struct crd_http1_parser *p)
{
	int64_t *cl =
	    p->dir == CRD_HTTP1_REQUEST ? &p->req->content_length : &p->resp.content_length;

	if (!(p->vflags & V_DIGIT))
		return -1;
	if ((p->mflags & M_CL_SEEN) && *cl != (int64_t)p->remaining)
		return -1;
	*cl = (int64_t)p->remaining;
	p->mflags |= M_CL_SEEN;
	p->remaining = 0;
	p->vflags = 0;
	return 0;
}

/* The head is complete: publish what the headers said and pick the body
 * framing (RFC 9112 §6.3). Returns the body state. */
static unsigned head_done(struct crd_http1_parser *p)
{
	unsigned f = p->mflags;
	int chunked = (f & M_TE_CHUNKED) != 0;
	int64_t cl;

	p->remaining = 0;
	p->head_bytes = 0; /* from now on: bytes of a chunk line / trailers */
	p->vflags = 0;
	if (p->dir == CRD_HTTP1_REQUEST) {
		struct crd_http_req *r = p->req;

		r->flags |= (uint8_t)((chunked ? CRD_REQ_CHUNKED : 0) |
				      (f & M_CLOSE ? CRD_REQ_CONN_CLOSE : 0) |
				      (f & M_KEEPALIVE ? CRD_REQ_KEEPALIVE : 0) |
				      (f & M_EXPECT_100 ? CRD_REQ_EXPECT_100 : 0));
		if (chunked) /* items 3-4: chunked wins over Content-Length */
			return S_CHUNK_SIZE;
		cl = r->content_length; /* items 6-7: else length, else none */
	} else {
		struct crd_http1_resp *r = &p->resp;

		r->chunked = (uint8_t)chunked;
		r->conn_close = (f & M_CLOSE) || (r->version_minor == 0 && !(f & M_KEEPALIVE));
		/* item 1: never a body after HEAD, 1xx, 204, 304 */
		if (p->head_request || r->status < 200 || r->status == 204 || r->status == 304)
			return S_BODY_NONE;
		if (f & M_TE_SEEN) {
			if (chunked)
				return S_CHUNK_SIZE;
			r->close_delimited = 1; /* item 4: not chunked last */
			return S_BODY_CLOSE;
		}
		cl = r->content_length;
		if (cl < 0) {
			r->close_delimited = 1; /* item 8 */
			return S_BODY_CLOSE;
		}
	}
	if (cl <= 0)
		return S_BODY_NONE;
	p->remaining = (uint64_t)cl;
	return S_BODY_LEN;
}

/* Bytes of a chunk-size line or trailer section: at most MAX_HEAD, so a
 * stream that is not chunked after all cannot keep us skipping forever. */
static int count_line(struct crd_http1_parser *p, size_t n)
{
	if (n > CRD_HTTP1_MAX_HEAD - p->head_bytes)
		return -1;
	p->head_bytes += (uint32_t)n;
	return 0;
}

static uint64_t *body_size(struct crd_http1_parser *p)
{
	return p->dir == CRD_HTTP1_REQUEST ? &p->req->body_size : &p->resp.body_size;
}

/* The state machine proper: consume buf[0..len) up to the next event. */
static int run(struct crd_http1_parser *p, const uint8_t *const buf, size_t len, size_t *used)
{
	const uint8_t *s = buf, *const end = buf + len, *q;
	unsigned st = p->state, c;
	size_t n;
	int ev = CRD_HTTP1_NEED_MORE;

	while (s < end) {
		switch (st) {
		case S_START:
			while (s < end && (*s == '\r' || *s == '\n'))
				s++;
			if (s == end)
				break;
			p->count = 0;
			if (p->dir == CRD_HTTP1_RESPONSE) {
				st = S_VERSION;
				break;
			}
			/* Not a token: TLS (0x16), HTTP/2 frames, binary. */
			if (!tchar_lc[*s])
				goto fail;
			p->field_len = 0;
			st = S_METHOD;
			break;

		case S_METHOD: {
			char *m = p->req->method;
			unsigned k = p->field_len;

			while (s < end && tchar_lc[*s]) {
				if (k >= CRD_METHOD_MAX - 1) {
					m[k] = 0;
					goto fail; /* no such method: not HTTP */
				}
				m[k++] = (char)*s++;
			}
			m[k] = 0;
			p->field_len = (uint16_t)k;
			if (s == end)
				break;
			if (*s++ != ' ')
				goto fail;
			p->field_len = 0;
			st = S_TARGET;
			break;
		}

		case S_TARGET:
			/* Any VCHAR or obs-text; CTLs (NUL, CR, LF) are errors,
			 * SP ends the target. Too long: truncate, keep going
			 * (servers answer 414 and we still want the span). */
			q = s;
			while (q < end && ' ' < *q && *q != 0x7f)
				q++;
			store(p, p->req->target, CRD_TARGET_MAX, s, (size_t)(q - s));
			s = q;
			if (s == end)
				break;
			if (*s++ != ' ' || !p->field_len)
				goto fail;
			p->count = 0;
			st = S_VERSION;
			break;

		case S_VERSION:
			/* Case-sensitive (§2.3); only 1.x, so HTTP/2's
			 * "PRI * HTTP/2.0" preface fails here. */
			if (!p->count && end - s > 7 && !memcmp(s, http1, 7)) {
				s += 7;
				p->count = 7;
			}
			while (s < end && p->count < 7) {
				if (*s != (uint8_t)http1[p->count])
					goto fail;
				s++;
				p->count++;
			}
			if (s == end)
				break;
			/* A higher minor version is processed as the highest
			 * we know, 1.1 (RFC 9110 §2.5), as nginx and CPython
			 * do: "HTTP/1.2" gets answered, so it gets a span. */
			c = (unsigned)*s++ - '0';
			if (c > 9)
				goto fail;
			if (c > 1)
				c = 1;
			if (p->dir == CRD_HTTP1_REQUEST)
				p->req->version_minor = (uint8_t)c;
			else
				p->resp.version_minor = (uint8_t)c;
			st = S_AFTER_VERSION;
			break;

		case S_AFTER_VERSION:
			c = *s++;
			if (p->dir == CRD_HTTP1_RESPONSE) {
				if (c != ' ')
					goto fail;
				p->count = 0;
				st = S_STATUS;
			} else if (c == '\r') {
				st = S_LINE_LF;
			} else if (c == '\n') {
				st = S_HDR_START;
			} else {
				goto fail;
			}
			break;

		case S_STATUS:
			c = (unsigned)*s++ - '0';
			if (c > 9)
				goto fail;
			p->resp.status = (uint16_t)(p->resp.status * 10 + c);
			if (++p->count == 3) {
				if (p->resp.status < 100 || p->resp.status > 599)
					goto fail;
				st = S_AFTER_STATUS;
			}
			break;

		case S_AFTER_STATUS:
			c = *s++;
			if (c == ' ')
				st = S_REASON;
			else if (c == '\r')
				st = S_LINE_LF;
			else if (c == '\n')
				st = S_HDR_START;
			else
				goto fail;
			break;

		case S_REASON:
			/* reason-phrase = *( HTAB / SP / VCHAR / obs-text ) */
			while (s < end && (*s >= ' ' || *s == '\t') && *s != 0x7f)
				s++;
			if (s == end)
				break;
			c = *s++;
			if (c == '\r')
				st = S_LINE_LF;
			else if (c == '\n')
				st = S_HDR_START;
			else
				goto fail;
			break;

		case S_LINE_LF:
			if (*s++ != '\n')
				goto fail;
			st = S_HDR_START;
			break;

		case S_HDR_START:
		hdr_start:
			c = *s;
			if (tchar_lc[c]) {
				/* The hot path: a field line complete in buf. Its
				 * LF bounds the name scan; an unknown field is then
				 * skipped without a second search or a trip
				 * through the switch. */
				const uint8_t *nl = memchr(s, '\n', (size_t)(end - s));

				if (!nl) {
					p->count = 0;
					st = S_NAME;
					break;
				}
				q = s + 1;
				for (;; q += 4) { /* unrolled; nl stops it */
					if (!tchar_lc[q[0]])
						break;
					if (!tchar_lc[q[1]]) {
						q += 1;
						break;
					}
					if (!tchar_lc[q[2]]) {
						q += 2;
						break;
					}
					if (!tchar_lc[q[3]]) {
						q += 3;
						break;
					}
				}
				n = (size_t)(q - s);
				c = H_NONE;
				if (n < 32 && (known_len[p->dir] >> n & 1))
					c = lookup(s, n);
				s = q + 1;
				if (*q != ':') {
					if (!IS_NAME_JUNK(*q))
						goto fail; /* §5.1: not even whitespace */
					/* an invalid name: ignored */
					c = H_NONE;
				}
				if (c != H_NONE) {
					p->hdr = (uint8_t)classify(p, c);
					if (p->hdr != H_NONE) {
						st = S_VALUE_START;
						break;
					}
				}
				s = nl + 1;
				st = S_HDR_START;
				if (s < end)
					goto hdr_start;
				break;
			}
			s++;
			if (c == '\r') {
				st = S_END_LF;
			} else if (c == '\n') {
				goto head_done;
			} else if (c == ' ' || c == '\t') {
				st = S_SKIP_LINE; /* obs-fold (§5.2): ignored */
			} else if (IS_NAME_JUNK(c)) {
				st = S_SKIP_LINE; /* an invalid name: ignored */
			} else {
				goto fail; /* empty name, CTL */
			}
			break;

		case S_NAME: {
			/* A name split across calls: keep a lowercased prefix;
			 * past the buffer the count saturates and no name
			 * matches. */
			unsigned k = p->count;

			while (s < end && (c = tchar_lc[*s]) != 0) {
				if (k < CRD_HTTP1_NAME_BUF)
					p->name[k] = (char)c;
				k += k <= CRD_HTTP1_NAME_BUF;
				s++;
			}
			p->count = (uint8_t)k;
			if (s == end)
				break;
			c = *s++;
			if (c == ':')
				p->hdr = (uint8_t)classify(p, lookup((const uint8_t *)p->name, k));
			else if (IS_NAME_JUNK(c))
				p->hdr = H_NONE; /* an invalid name: ignored */
			else
				goto fail;
			if (p->hdr != H_NONE) {
				st = S_VALUE_START;
				break;
			}
			st = S_SKIP_LINE;
			if (s == end)
				break;
		}
			/* fall through */
		case S_SKIP_LINE:
			q = memchr(s, '\n', (size_t)(end - s));
			if (!q) {
				s = end;
				break;
			}
			s = q + 1;
			st = S_HDR_START;
			if (s < end)
				goto hdr_start;
			break;

		case S_VALUE_START:
			while (s < end && is_ws(*s))
				s++;
			if (s == end)
				break;
			if (*s == '\n') {
				s++;
				if (p->hdr == H_CL)
					goto fail; /* empty Content-Length */
				st = S_HDR_START;
				break;
			}
			st = begin_value(p);
			break;

		case S_VSTR: {
			const uint8_t *comma = NULL;
			char *d = str_dest(p);

			n = (size_t)(end - s);
			q = memchr(s, '\n', n);
			if (q)
				n = (size_t)(q - s);
			/* X-Forwarded-For: the first hop is the client. */
			if (p->hdr == H_XFF && n && (comma = memchr(s, ',', n)) != NULL)
				n = (size_t)(comma - s);
			store(p, d, str_field[p->hdr].cap, s, n);
			s += n;
			if (comma) {
				finish_str(p);
				st = S_SKIP_LINE;
			} else if (q) {
				finish_str(p);
				s++;
				st = S_HDR_START;
				if (s < end)
					goto hdr_start;
			}
			break;
		}

		case S_VTOK:
			/* 1#token with optional ";params" (Connection,
			 * Transfer-Encoding, Expect), case-insensitive. */
			do {
				c = *s;
				if (p->vflags & V_PARAM) {
					while (s < end && *s != ',' && *s != '\n')
						s++;
					if (s == end)
						break;
					c = *s;
				} else if (tchar_lc[c]) {
					q = s + 1;
					while (q < end && tchar_lc[*q])
						q++;
					tok_add(p, s, (size_t)(q - s));
					s = q;
					continue;
				}
				s++;
				if (c == '\n') {
					tok_end(p);
					st = S_HDR_START;
					if (s < end)
						goto hdr_start;
					break;
				}
				if (c == ',') {
					tok_end(p);
					p->vflags = 0;
				} else if (c == ';') {
					tok_end(p);
					p->vflags = V_PARAM;
				} else if (is_ws(c)) {
					if (p->count)
						p->vflags |= V_TOKEND;
				} else {
					p->count = TOK_BAD; /* quoted string, '/', ... */
				}
			} while (s < end);
			break;

		case S_VNUM:
			/* Content-Length = 1*DIGIT (RFC 9110 §8.6), or a list of
			 * identical ones. */
			do {
				c = *s++;
				if (c - '0' < 10u) {
					c -= '0';
					if ((p->vflags & V_NUMWS) ||
					    (p->remaining >= NUM_MAX / 10 &&
					     p->remaining > (NUM_MAX - c) / 10))
						goto fail;
					p->remaining = p->remaining * 10 + c;
					p->vflags |= V_DIGIT;
				} else if (is_ws(c)) {
					if (p->vflags & V_DIGIT)
						p->vflags |= V_NUMWS;
				} else if (c == ',' || c == '\n') {
					if (cl_end(p) < 0)
						goto fail;
					if (c == '\n') {
						st = S_HDR_START;
						if (s < end)
							goto hdr_start;
						break;
					}
				} else {
					goto fail;
				}
			} while (s < end);
			break;

		case S_END_LF:
			if (*s++ != '\n')
				goto fail;
			goto head_done;

		case S_BODY_LEN:
			n = (size_t)(end - s);
			if (n > p->remaining)
				n = (size_t)p->remaining;
			*body_size(p) += n;
			p->remaining -= n;
			s += n;
			if (!p->remaining)
				goto msg_done;
			break;

		case S_BODY_CLOSE:
			*body_size(p) += (size_t)(end - s);
			s = end;
			break;

		case S_CHUNK_SIZE: {
			int d;

			while (s < end && (d = hexval(*s)) >= 0) {
				if (p->remaining > NUM_MAX >> 4 || count_line(p, 1) < 0)
					goto fail;
				p->remaining = p->remaining << 4 | (unsigned)d;
				p->vflags = V_DIGIT;
				s++;
			}
			if (s == end)
				break;
			if (!(p->vflags & V_DIGIT))
				goto fail;
			st = S_CHUNK_SIZE_WS;
			break;
		}

		case S_CHUNK_SIZE_WS:
			c = *s++;
			if (count_line(p, 1) < 0)
				goto fail;
			if (c == ' ' || c == '\t')
				break; /* BWS before ';' (§7.1.1) */
			if (c == ';')
				st = S_CHUNK_EXT;
			else if (c == '\r')
				st = S_CHUNK_SIZE_LF;
			else if (c == '\n')
				goto chunk_size_done;
			else
				goto fail;
			break;

		case S_CHUNK_EXT:
			q = memchr(s, '\n', (size_t)(end - s));
			n = q ? (size_t)(q + 1 - s) : (size_t)(end - s);
			if (count_line(p, n) < 0)
				goto fail;
			s += n;
			if (q)
				goto chunk_size_done;
			break;

		case S_CHUNK_SIZE_LF:
			if (*s++ != '\n')
				goto fail;
		chunk_size_done:
			p->head_bytes = 0;
			st = p->remaining ? S_CHUNK_DATA : S_TRAILER_START;
			break;

		case S_CHUNK_DATA:
			n = (size_t)(end - s);
			if (n > p->remaining)
				n = (size_t)p->remaining;
			*body_size(p) += n;
			p->remaining -= n;
			s += n;
			if (!p->remaining)
				st = S_CHUNK_DATA_CR;
			break;

		case S_CHUNK_DATA_CR:
			c = *s++;
			if (c == '\r') {
				st = S_CHUNK_DATA_LF;
				break;
			}
			if (c != '\n')
				goto fail;
			p->vflags = 0;
			st = S_CHUNK_SIZE;
			break;

		case S_CHUNK_DATA_LF:
			if (*s++ != '\n')
				goto fail;
			p->vflags = 0;
			st = S_CHUNK_SIZE;
			break;

		case S_TRAILER_START:
			c = *s;
			if (c == '\n') {
				s++;
				goto msg_done;
			}
			if (c == '\r') {
				s++;
				st = S_TRAILER_LF;
			} else {
				st = S_TRAILER_LINE;
			}
			if (count_line(p, 1) < 0)
				goto fail;
			break;

		case S_TRAILER_LINE:
			q = memchr(s, '\n', (size_t)(end - s));
			n = q ? (size_t)(q + 1 - s) : (size_t)(end - s);
			if (count_line(p, n) < 0)
				goto fail;
			s += n;
			if (q)
				st = S_TRAILER_START;
			break;

		case S_TRAILER_LF:
			if (*s++ != '\n')
				goto fail;
			goto msg_done;

		default: /* S_BODY_NONE, S_DONE, S_ERROR: handled by the caller */
			goto fail;
		}
	}
	goto out;

head_done:
	st = head_done(p);
	ev = CRD_HTTP1_HEAD_DONE;
	goto out;
msg_done:
	st = S_DONE;
	ev = CRD_HTTP1_MSG_DONE;
	goto out;
fail:
	st = S_ERROR;
	ev = CRD_HTTP1_ERROR;
out:
	p->state = (uint8_t)st;
	*used = (size_t)(s - buf);
	return ev;
}

/* Start a message on a parser of direction dir. An error stays sticky
 * (the stream is not HTTP/1.x; only crd_http1_init() starts over), and so
 * does beginning the wrong kind of message (a request parser has no *req
 * to fill after begin_response). */
static void reset_message(struct crd_http1_parser *p, unsigned dir)
{
	p->remaining = 0;
	p->head_bytes = 0;
	p->field_len = 0;
	p->mflags = 0;
	p->state = p->state == S_ERROR || p->dir != dir ? S_ERROR : S_START;
	p->hdr = H_NONE;
	p->count = 0;
	p->vflags = 0;
}

void crd_http1_init(struct crd_http1_parser *p, enum crd_http1_dir dir)
{
	memset(p, 0, sizeof(*p));
	p->dir = (uint8_t)dir;
	p->state = S_DONE;
	p->resp.content_length = -1;
}

void crd_http1_begin_request(struct crd_http1_parser *p, struct crd_http_req *req)
{
	/* Empty strings, not a 2.4 KB memset (a third of the time of a whole
	 * small request): the parser NUL-terminates whatever it stores. */
	req->method[0] = 0;
	req->target[0] = 0;
	req->host[0] = 0;
	req->user_agent[0] = 0;
	req->xff[0] = 0;
	req->traceparent[0] = 0;
	req->tracestate[0] = 0;
	req->xamzn[0] = 0;
	req->version_minor = 0;
	req->flags = 0;
	req->body_size = 0;
	req->content_length = -1;
	p->req = req;
	reset_message(p, CRD_HTTP1_REQUEST);
}

void crd_http1_begin_response(struct crd_http1_parser *p, int head_request)
{
	memset(&p->resp, 0, sizeof(p->resp));
	p->resp.content_length = -1;
	p->head_request = head_request != 0;
	reset_message(p, CRD_HTTP1_RESPONSE);
}

int crd_http1_feed(struct crd_http1_parser *p, const char *buf, size_t len, size_t *used)
{
	size_t n, room;
	int ev;

	*used = 0;
	switch (p->state) {
	case S_ERROR:
		return CRD_HTTP1_ERROR;
	case S_DONE:
		if (!len)
			return CRD_HTTP1_NEED_MORE;
		p->state = S_ERROR; /* bytes but no message begun */
		return CRD_HTTP1_ERROR;
	case S_BODY_NONE:
		p->state = S_DONE;
		return CRD_HTTP1_MSG_DONE;
	}
	if (!len)
		return CRD_HTTP1_NEED_MORE;
	if (p->state > S_HEAD_LAST)
		return run(p, (const uint8_t *)buf, len, used);
	/* Head: parse at most what is left of CRD_HTTP1_MAX_HEAD; bytes
	 * beyond it while the head is still open are an error. */
	room = CRD_HTTP1_MAX_HEAD - p->head_bytes;
	n = len < room ? len : room;
	ev = run(p, (const uint8_t *)buf, n, used);
	if (ev == CRD_HTTP1_HEAD_DONE)
		return ev; /* head_done() reset head_bytes for the body */
	p->head_bytes += (uint32_t)*used;
	if (ev == CRD_HTTP1_NEED_MORE && n < len) {
		p->state = S_ERROR;
		return CRD_HTTP1_ERROR;
	}
	return ev;
}

int crd_http1_skip_body(struct crd_http1_parser *p, size_t n)
{
	size_t used;

	switch (p->state) {
	case S_BODY_LEN:
	case S_CHUNK_DATA:
		if (n > p->remaining)
			break; /* past the body or the chunk: framing unseen */
		*body_size(p) += n;
		p->remaining -= n;
		if (p->remaining)
			return CRD_HTTP1_NEED_MORE;
		if (p->state == S_CHUNK_DATA) {
			p->state = S_CHUNK_DATA_CR;
			return CRD_HTTP1_NEED_MORE;
		}
		p->state = S_DONE;
		return CRD_HTTP1_MSG_DONE;
	case S_BODY_CLOSE:
		*body_size(p) += n;
		return CRD_HTTP1_NEED_MORE;
	default:
		if (!n)
			return crd_http1_feed(p, NULL, 0, &used);
		break;
	}
	p->state = S_ERROR;
	return CRD_HTTP1_ERROR;
}

int crd_http1_eof(struct crd_http1_parser *p)
{
	switch (p->state) {
	case S_BODY_CLOSE:
	case S_BODY_NONE:
		p->state = S_DONE;
		return CRD_HTTP1_MSG_DONE;
	case S_DONE:
	case S_START: /* nothing, or only empty lines: between messages */
		return CRD_HTTP1_NEED_MORE;
	}
	p->state = S_ERROR;
	return CRD_HTTP1_ERROR;
}

int crd_http1_idle(const struct crd_http1_parser *p)
{
	return p->state == S_DONE || p->state == S_START;
}
