/* fuzz_inject.c - libFuzzer target: the header injection scanner and
 * splicer (preload/inject.c), cross-checked with the HTTP/1 parser.
 *
 * Input: byte 0 seeds how the rest, the bytes of one write, is cut into an
 * iovec array of 1..MAX_IOV entries, empty ones included;
 * every entry is its own exact-size heap copy, so ASan reports any read
 * past one. Checked:
 * - crd_inject_scan() gives the same answer for one iovec and for the cut
 *   array; line_end and head_end are just after an LF, in order, within the
 *   bytes and CRD_INJECT_SCAN_MAX; the request line is token SP target SP
 *   HTTP/1.0|1.1 [CR] LF; has_* match a plain reading of the field names.
 * - crd_iov_splice() of our header block at line_end gives exactly
 *   bytes[0, line_end) + block + the rest, or -1 when out has too few
 *   entries (never writes past them).
 * - When the request parser accepts the original head, it accepts the
 *   spliced one too, with our traceparent (never a duplicate) and the same
 *   method, target and host: injection never breaks a request.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http1.h"
#include "inject.h"
#include "tracectx.h"

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_inject: %s:%d: %s: ", __FILE__, __LINE__, #cond);    \
			fprintf(stderr, __VA_ARGS__);                                              \
			fputc('\n', stderr);                                                       \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* Entries per write tried here. The hooks splice up to 64 (conn.c's
 * CRD_INJECT_IOV_MAX); splits matter, not counts, and 16 keeps runs fast. */
#define MAX_IOV 16

static const uint8_t TID[16] = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
				0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36};
static const uint8_t SID[8] = {0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7};

static int tchar(int c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Does the head d[0, end) have a field line named name (any case)? */
static int has_field(const uint8_t *d, size_t line_end, size_t end, const char *name)
{
	size_t nl = strlen(name);

	for (size_t i = line_end; i < end;) {
		const uint8_t *lf = memchr(d + i, '\n', end - i);
		if (!lf)
			break;
		if ((size_t)(lf - (d + i)) > nl && d[i + nl] == ':' &&
		    !strncasecmp((const char *)d + i, name, nl))
			return 1;
		i = (size_t)(lf - d) + 1;
	}
	return 0;
}

static void check_line(const uint8_t *d, size_t line_end)
{
	size_t i = 0, t;

	while (tchar(d[i]))
		i++;
	CHECK(i > 0 && d[i] == ' ', "request line: no method");
	t = ++i;
	while (d[i] > ' ' && d[i] != 0x7f)
		i++;
	CHECK(i > t && d[i] == ' ', "request line: no target");
	i++;
	CHECK(!memcmp(d + i, "HTTP/1.", 7) && (d[i + 7] == '0' || d[i + 7] == '1'),
	      "request line: no HTTP/1.x");
	i += 8;
	if (d[i] == '\r')
		i++;
	CHECK(d[i] == '\n' && i + 1 == line_end, "request line ends at %zu, not %zu", i + 1,
	      line_end);
}

struct parsed {
	int ok;
	struct crd_http_req req;
};

/* Parse the head of a flat request; ok when it reaches HEAD_DONE. */
static void parse_head(const uint8_t *d, size_t len, struct parsed *out)
{
	struct crd_http1_parser p;
	size_t used;

	crd_http1_init(&p, CRD_HTTP1_REQUEST);
	crd_http1_begin_request(&p, &out->req);
	out->ok = crd_http1_feed(&p, (const char *)d, len, &used) == CRD_HTTP1_HEAD_DONE;
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct iovec one, iov[MAX_IOV], out[MAX_IOV + 3];
	struct crd_inject_scan a, b;
	char blk[CRD_INJECT_MAX];
	uint64_t rs;
	size_t cnt = 0, off = 0;

	if (size < 1)
		return 0;
	rs = (uint64_t)data[0] * 0x9e3779b97f4a7c15ull ^ size ^ 1;
	data++;
	size--;

	/* One entry, then a cut into up to MAX_IOV entries. */
	one.iov_base = malloc(size ? size : 1);
	one.iov_len = size;
	memcpy(one.iov_base, data, size);
	size_t want = 1 + rnd(&rs) % MAX_IOV;
	while (cnt < want) {
		size_t n = cnt + 1 == want ? size - off : rnd(&rs) % (size - off + 1);
		if (rnd(&rs) % 4 == 0)
			n = 0;
		if (cnt + 1 == want)
			n = size - off;
		iov[cnt].iov_base = malloc(n ? n : 1);
		iov[cnt].iov_len = n;
		memcpy(iov[cnt].iov_base, data + off, n);
		off += n;
		cnt++;
	}

	int ra = crd_inject_scan(&one, 1, &a), rb = crd_inject_scan(iov, cnt, &b);
	CHECK(ra == rb, "whole %d, cut into %zu: %d", ra, cnt, rb);
	if (ra) {
		CHECK(a.line_end == b.line_end && a.head_end == b.head_end &&
			  a.has_traceparent == b.has_traceparent &&
			  a.has_tracestate == b.has_tracestate && a.has_xamzn == b.has_xamzn,
		      "scan differs when cut into %zu", cnt);
		CHECK(a.line_end > 0 && a.line_end < a.head_end && a.head_end <= size &&
			  a.head_end <= CRD_INJECT_SCAN_MAX,
		      "line_end %zu head_end %zu size %zu", a.line_end, a.head_end, size);
		CHECK(data[a.line_end - 1] == '\n' && data[a.head_end - 1] == '\n',
		      "offsets not after an LF");
		check_line(data, a.line_end);
		CHECK(a.has_traceparent == has_field(data, a.line_end, a.head_end, "traceparent"),
		      "has_traceparent %d", a.has_traceparent);
		CHECK(a.has_tracestate == has_field(data, a.line_end, a.head_end, "tracestate"),
		      "has_tracestate %d", a.has_tracestate);
		CHECK(a.has_xamzn == has_field(data, a.line_end, a.head_end, "x-amzn-trace-id"),
		      "has_xamzn %d", a.has_xamzn);
	}

	/* Splice our block at line_end (or anywhere, for a rejected head). */
	size_t at = ra ? a.line_end : (size_t)(rnd(&rs) % (size + 1));
	size_t blen = crd_inject_format(blk, TID, SID, 1, "k=v", 1, 1);
	size_t cap = 1 + rnd(&rs) % (MAX_IOV + 3);
	struct iovec *o = malloc(cap * sizeof(*o)); /* exact size: ASan sees overruns */
	int n = crd_iov_splice(iov, cnt, at, blk, blen, o, cap);
	CHECK(n == -1 || (n > 0 && (size_t)n <= cap), "splice gave %d entries of %zu", n, cap);
	if (n < 0)
		n = crd_iov_splice(iov, cnt, at, blk, blen, out, MAX_IOV + 3);
	else
		memcpy(out, o, (size_t)n * sizeof(*o));
	free(o);
	CHECK(n > 0 && n <= MAX_IOV + 3, "splice into cnt + 3 entries gave %d", n);
	uint8_t *flat = malloc(size + blen), *exp = malloc(size + blen);
	size_t fl = 0;
	for (int i = 0; i < n; i++) {
		CHECK(fl + out[i].iov_len <= size + blen, "spliced output too long");
		memcpy(flat + fl, out[i].iov_base, out[i].iov_len);
		fl += out[i].iov_len;
	}
	memcpy(exp, data, at);
	memcpy(exp + at, blk, blen);
	memcpy(exp + at + blen, data + at, size - at);
	CHECK(fl == size + blen && !memcmp(flat, exp, fl), "spliced bytes differ");

	/* The server's view: a head it parsed still parses, with our headers. */
	if (ra && !a.has_traceparent) {
		struct parsed *orig = malloc(sizeof(*orig)), *inj = malloc(sizeof(*inj));
		char tp[CRD_TRACEPARENT_LEN + 1];

		parse_head(data, size, orig);
		parse_head(flat, fl, inj);
		crd_traceparent_format(tp, TID, SID, 1);
		if (orig->ok) {
			CHECK(inj->ok, "injection broke a request the parser accepted");
			CHECK(!(inj->req.flags & CRD_REQ_DUP_TRACEPARENT), "duplicate traceparent");
			CHECK(!strcmp(inj->req.traceparent, tp), "traceparent \"%s\"",
			      inj->req.traceparent);
			CHECK(!strcmp(inj->req.method, orig->req.method) &&
				  !strcmp(inj->req.target, orig->req.target) &&
				  !strcmp(inj->req.host, orig->req.host),
			      "request fields changed");
		}
		free(orig);
		free(inj);
	}
	free(flat);
	free(exp);
	for (size_t i = 0; i < cnt; i++)
		free(iov[i].iov_base);
	free(one.iov_base);
	return 0;
}
