/* inject.c - trace header injection helpers (see inject.h). */
#include "inject.h"

#include <string.h>

#include "tracectx.h"

/* Byte cursor over an iovec array. */
struct cur {
	const struct iovec *iov;
	size_t cnt, i, off, pos;
};

static int next(struct cur *c)
{
	while (c->i < c->cnt && c->off >= c->iov[c->i].iov_len) {
		c->i++;
		c->off = 0;
	}
	if (c->i >= c->cnt || c->pos >= CRD_INJECT_SCAN_MAX)
		return -1;
	c->pos++;
	return ((const unsigned char *)c->iov[c->i].iov_base)[c->off++];
}

static int tchar(int ch)
{
	/* RFC 9110 token characters. */
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static int lower(int ch)
{
	return (ch >= 'A' && ch <= 'Z') ? ch + 32 : ch;
}

int crd_inject_scan(const struct iovec *iov, size_t iovcnt, struct crd_inject_scan *out)
{
	struct cur c = {iov, iovcnt, 0, 0, 0};
	char tail[10];
	size_t n = 0, tl = 0;
	int ch;

	memset(out, 0, sizeof(*out));
	/* Request line: token SP target SP HTTP/1.x CRLF */
	while ((ch = next(&c)) >= 0 && tchar(ch))
		n++;
	if (ch != ' ' || !n)
		return 0;
	n = 0;
	while ((ch = next(&c)) > ' ' && ch != 0x7f)
		n++;
	if (ch != ' ' || !n)
		return 0;
	while ((ch = next(&c)) >= 0 && ch != '\n') {
		if (tl >= sizeof(tail) - 1)
			return 0;
		tail[tl++] = (char)ch;
	}
	if (ch < 0)
		return 0;
	if (tl && tail[tl - 1] == '\r')
		tl--;
	/* By length, not strcmp: "HTTP/1.0\0" is no version (fuzz_inject). */
	if (tl != 8 || (memcmp(tail, "HTTP/1.1", 8) && memcmp(tail, "HTTP/1.0", 8)))
		return 0;
	out->line_end = c.pos;

	/* Header lines until an empty one; note the names we care about. */
	for (;;) {
		char name[20];
		size_t nl = 0;

		ch = next(&c);
		if (ch == '\r') {
			/* Only the empty line may start with CR (a bare CR
			 * before a name hid "\rX-Amzn-Trace-Id:" from a server
			 * but not from us; fuzz_inject). */
			if (next(&c) != '\n')
				return 0;
			ch = '\n';
		}
		if (ch == '\n') {
			out->head_end = c.pos;
			return 1;
		}
		if (ch == ' ' || ch == '\t') {
			/* obs-fold (RFC 9112 §5.2): more of the previous value. */
			while ((ch = next(&c)) >= 0 && ch != '\n')
				;
			if (ch < 0)
				return 0;
			continue;
		}
		/* field-name = token (RFC 9110 §5.1): anything else (a NUL, a
		 * space before ':') is not well-formed, and a name cut at a NUL
		 * must not pass for "traceparent" (fuzz_inject found
		 * "traceparent\0x:"). */
		while (ch >= 0 && tchar(ch)) {
			if (nl < sizeof(name) - 1)
				name[nl++] = (char)lower(ch);
			ch = next(&c);
		}
		if (ch != ':' || !nl)
			return 0;
		name[nl] = 0;
		if (!strcmp(name, "traceparent"))
			out->has_traceparent = 1;
		else if (!strcmp(name, "tracestate"))
			out->has_tracestate = 1;
		else if (!strcmp(name, "x-amzn-trace-id"))
			out->has_xamzn = 1;
		while ((ch = next(&c)) >= 0 && ch != '\n')
			;
		if (ch < 0)
			return 0;
	}
}

static size_t put(char *out, size_t at, const char *s, size_t n)
{
	if (at + n <= CRD_INJECT_MAX)
		memcpy(out + at, s, n);
	return at + n <= CRD_INJECT_MAX ? at + n : at;
}

/* May s go out as a header value? Visible ASCII, SP and HTAB only (W3C
 * tracestate allows no other bytes). The parser keeps a bare CR inside an
 * incoming value, and a CR or LF here would end our header line early: the
 * rest would become a header the app never sent, or a bare CR that strict
 * servers reject with 400 (fuzz_tracectx found it). */
static int header_safe(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c < 0x20 && c != '\t') || c >= 0x7f)
			return 0;
	}
	return 1;
}

size_t crd_inject_format(char *out, const uint8_t trace_id[16], const uint8_t span_id[8],
			 int sampled, const char *tracestate, int want_tracestate, int want_xamzn)
{
	char tp[CRD_TRACEPARENT_LEN + 1], hex[33];
	size_t n = 0;

	crd_traceparent_format(tp, trace_id, span_id, sampled);
	n = put(out, n, "traceparent: ", 13);
	n = put(out, n, tp, CRD_TRACEPARENT_LEN);
	n = put(out, n, "\r\n", 2);
	if (want_tracestate && tracestate && *tracestate) {
		size_t tl = strnlen(tracestate, 512);
		if (n + 14 + tl + 2 <= CRD_INJECT_MAX && header_safe(tracestate, tl)) {
			n = put(out, n, "tracestate: ", 12);
			n = put(out, n, tracestate, tl);
			n = put(out, n, "\r\n", 2);
		}
	}
	if (want_xamzn) {
		/* Root=1-<8 hex epoch>-<24 hex>;Parent=<16 hex>;Sampled=0|1 */
		crd_hex(hex, trace_id, 16);
		n = put(out, n, "X-Amzn-Trace-Id: Root=1-", 24);
		n = put(out, n, hex, 8);
		n = put(out, n, "-", 1);
		n = put(out, n, hex + 8, 24);
		n = put(out, n, ";Parent=", 8);
		crd_hex(hex, span_id, 8);
		n = put(out, n, hex, 16);
		n = put(out, n, sampled ? ";Sampled=1\r\n" : ";Sampled=0\r\n", 12);
	}
	return n;
}

int crd_iov_splice(const struct iovec *in, size_t cnt, size_t at, const void *ins, size_t inslen,
		   struct iovec *out, size_t outcap)
{
	size_t o = 0, off = 0;
	int done = 0;

	for (size_t i = 0; i < cnt; i++) {
		const char *b = in[i].iov_base;
		size_t len = in[i].iov_len;
		if (!done && at <= off + len) {
			size_t k = at - off;
			if (o + 3 > outcap)
				return -1;
			if (k)
				out[o++] = (struct iovec){(void *)b, k};
			out[o++] = (struct iovec){(void *)ins, inslen};
			if (len - k)
				out[o++] = (struct iovec){(void *)(b + k), len - k};
			done = 1;
		} else {
			if (o + 1 > outcap)
				return -1;
			out[o++] = in[i];
		}
		off += len;
	}
	if (!done) {
		if (o + 1 > outcap)
			return -1;
		out[o++] = (struct iovec){(void *)ins, inslen};
	}
	return (int)o;
}
