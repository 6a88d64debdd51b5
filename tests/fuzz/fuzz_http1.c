/* fuzz_http1.c - libFuzzer target: the HTTP/1.x parser (preload/http1.c).
 *
 * Input: byte 0 picks the direction (even: requests, odd: responses, so a
 * seed starting "R" is a request stream, "S" a response stream) and, in its
 * other bits, the split seed; byte 1 XOR '-' is the HEAD mask (responses:
 * final response i answers a HEAD request when bit i % 8 is set; '-' means
 * none); the rest is the byte stream of one connection direction.
 *
 * The stream is parsed three ways, driven as http1.h says a caller must
 * (begin before each message, feed until NEED_MORE, stop at ERROR and after
 * a 101): in one call, one byte per call, and in chunks of seeded random
 * sizes where some body bytes go by crd_http1_skip_body() (sendfile). Each
 * chunk is its own exact-size heap copy, so ASan reports any read past it.
 * Checked: consumed <= given, NEED_MORE only with everything consumed,
 * every stored string NUL-terminated inside its cap, field invariants at
 * each event, Content-Length bodies of exactly their length, and the same
 * events at the same stream offsets with the same fields for every split.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http1.h"

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_http1: %s:%d: %s: ", __FILE__, __LINE__, #cond);     \
			fprintf(stderr, __VA_ARGS__);                                              \
			fputc('\n', stderr);                                                       \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

enum { WHOLE, BYTES, SPLIT };
static const char *const mode_name[] = {"whole", "bytes", "split"};

struct ev {
	char ev;      /* H, M, E */
	size_t pos;   /* stream offset right after the event */
	uint64_t sum; /* digest of the fields the event publishes */
};

struct res {
	struct ev *evs;
	size_t nev, cap;
	int idle, eof; /* at the end of the stream; 99: stopped before */
};

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

/* A stored string: NUL inside its cap, no LF (the parser ends values
 * there); digest its bytes. */
static uint64_t str_sum(uint64_t h, const char *s, size_t cap, const char *what)
{
	size_t n = strnlen(s, cap);

	CHECK(n < cap, "%s not NUL-terminated inside its %zu-byte cap", what, cap);
	CHECK(!memchr(s, '\n', n), "%s contains LF", what);
	return fnv(h, s, n + 1);
}

static int tchar(unsigned c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c && strchr("!#$%&'*+-.^_`|~", (int)c));
}

static uint64_t req_sum(const struct crd_http_req *r, int head)
{
	uint64_t h = 0xcbf29ce484222325ull;

	h = str_sum(h, r->method, CRD_METHOD_MAX, "method");
	h = str_sum(h, r->target, CRD_TARGET_MAX, "target");
	h = str_sum(h, r->host, CRD_HOST_MAX, "host");
	h = str_sum(h, r->user_agent, CRD_UA_MAX, "user_agent");
	h = str_sum(h, r->xff, CRD_XFF_MAX, "xff");
	h = str_sum(h, r->traceparent, CRD_TRACEPARENT_MAX, "traceparent");
	h = str_sum(h, r->tracestate, CRD_TRACESTATE_MAX, "tracestate");
	h = str_sum(h, r->xamzn, CRD_XAMZN_MAX, "xamzn");
	CHECK(r->method[0] && r->target[0], "head done without method or target");
	for (const char *c = r->method; *c; c++)
		CHECK(tchar((uint8_t)*c), "method byte %#x", (uint8_t)*c);
	for (const char *c = r->target; *c; c++)
		CHECK((uint8_t)*c > ' ' && *c != 0x7f, "target byte %#x", (uint8_t)*c);
	CHECK(r->version_minor <= 1, "version 1.%u", r->version_minor);
	CHECK(r->content_length >= -1, "content_length %lld", (long long)r->content_length);
	if (head)
		CHECK(r->body_size == 0, "body before the head ended");
	h = fnv(h, &r->version_minor, 1);
	h = fnv(h, &r->flags, 1);
	h = fnv(h, &r->content_length, sizeof(r->content_length));
	return fnv(h, &r->body_size, sizeof(r->body_size));
}

static uint64_t resp_sum(const struct crd_http1_resp *r)
{
	uint64_t h = 0xcbf29ce484222325ull;

	CHECK(r->status >= 100 && r->status <= 599, "status %u", r->status);
	CHECK(r->version_minor <= 1, "version 1.%u", r->version_minor);
	CHECK(r->content_length >= -1, "content_length %lld", (long long)r->content_length);
	h = fnv(h, &r->status, sizeof(r->status));
	h = fnv(h, &r->version_minor, 1);
	h = fnv(h, &r->conn_close, 1);
	h = fnv(h, &r->chunked, 1);
	h = fnv(h, &r->close_delimited, 1);
	h = fnv(h, &r->content_length, sizeof(r->content_length));
	return fnv(h, &r->body_size, sizeof(r->body_size));
}

static void record(struct res *r, char ev, size_t pos, uint64_t sum)
{
	if (r->nev == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 16;
		r->evs = realloc(r->evs, r->cap * sizeof(*r->evs));
		CHECK(r->evs, "out of memory");
	}
	r->evs[r->nev++] = (struct ev){ev, pos, sum};
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Body bytes of the current message whose framing is a plain count (or
 * the connection's end), which a caller may pass to skip_body() unseen:
 * -1 for "until close", 0 for none. */
static int64_t skippable(const struct crd_http1_parser *p, const struct crd_http_req *req, int dir,
			 int head_req)
{
	if (dir == CRD_HTTP1_REQUEST) {
		if (req->flags & CRD_REQ_CHUNKED || req->content_length <= 0)
			return 0;
		return req->content_length - (int64_t)req->body_size;
	}
	const struct crd_http1_resp *r = &p->resp;
	if (head_req || r->status < 200 || r->status == 204 || r->status == 304 || r->chunked)
		return 0;
	if (r->close_delimited)
		return -1;
	return r->content_length > 0 ? r->content_length - (int64_t)r->body_size : 0;
}

static void parse(const uint8_t *data, size_t len, int dir, unsigned heads, int mode, uint64_t seed,
		  struct res *r)
{
	struct crd_http1_parser p;
	struct crd_http_req *req = malloc(sizeof(*req));
	size_t a = 0;
	unsigned fin = 0; /* final responses seen: index into the HEAD mask */
	int need_begin = 1, stopped = 0, in_body = 0, head_req = 0;
	uint64_t rs = seed | 1;

	CHECK(req, "out of memory");
	r->nev = 0;
	r->idle = r->eof = 99;
	crd_http1_init(&p, (enum crd_http1_dir)dir);
	while (!stopped && a < len) {
		size_t clen = len - a;

		if (mode == BYTES)
			clen = 1;
		else if (mode == SPLIT)
			clen = 1 + rnd(&rs) % (rnd(&rs) & 1 ? 8 : 300);
		if (clen > len - a)
			clen = len - a;
		char *chunk = malloc(clen);
		CHECK(chunk, "out of memory");
		memcpy(chunk, data + a, clen);
		const char *buf = chunk;
		size_t left = clen;

		while (!stopped) {
			size_t used = 12345;
			int64_t sk;
			int ev;

			if (need_begin && left) {
				if (dir == CRD_HTTP1_REQUEST) {
					/* A dirty slot, as a reused span slot is. */
					memset(req, 0x5a, sizeof(*req));
					crd_http1_begin_request(&p, req);
				} else {
					head_req = (heads >> (fin % 8)) & 1;
					crd_http1_begin_response(&p, head_req);
				}
				need_begin = 0;
			}
			if (mode == SPLIT && in_body && left &&
			    (sk = skippable(&p, req, dir, head_req)) != 0 && rnd(&rs) % 3 == 0) {
				size_t k = 1 + rnd(&rs) % left;
				if (sk > 0 && (uint64_t)sk < k)
					k = (size_t)sk;
				ev = crd_http1_skip_body(&p, k);
				CHECK(ev != CRD_HTTP1_ERROR && ev != CRD_HTTP1_HEAD_DONE,
				      "skip_body(%zu) of %lld skippable: %d", k, (long long)sk, ev);
				used = k;
			} else {
				ev = crd_http1_feed(&p, buf, left, &used);
			}
			CHECK(used <= left, "used %zu > len %zu", used, left);
			buf += used;
			left -= used;
			if (ev == CRD_HTTP1_NEED_MORE) {
				if (!left)
					break;
				CHECK(used != 12345 && mode == SPLIT && in_body,
				      "NEED_MORE with %zu bytes left", left);
				continue; /* a partial skip_body() */
			}
			size_t pos = a + (size_t)(buf - chunk);
			uint64_t sum = 0;
			if (ev == CRD_HTTP1_ERROR) {
				record(r, 'E', pos, 0);
				CHECK(!crd_http1_idle(&p), "idle after ERROR");
				stopped = 1;
			} else if (ev == CRD_HTTP1_HEAD_DONE) {
				CHECK(!crd_http1_idle(&p), "idle after HEAD_DONE");
				sum =
				    dir == CRD_HTTP1_REQUEST ? req_sum(req, 1) : resp_sum(&p.resp);
				record(r, 'H', pos, sum);
				in_body = 1;
			} else if (ev == CRD_HTTP1_MSG_DONE) {
				CHECK(crd_http1_idle(&p), "not idle after MSG_DONE");
				if (dir == CRD_HTTP1_REQUEST) {
					sum = req_sum(req, 0);
					if (!(req->flags & CRD_REQ_CHUNKED))
						CHECK(req->body_size ==
							  (uint64_t)(req->content_length < 0
									 ? 0
									 : req->content_length),
						      "request body %llu, Content-Length %lld",
						      (unsigned long long)req->body_size,
						      (long long)req->content_length);
				} else {
					sum = resp_sum(&p.resp);
					if (skippable(&p, req, dir, head_req) == 0 &&
					    !p.resp.chunked)
						CHECK(p.resp.body_size ==
							  (uint64_t)(p.resp.content_length < 0 ||
									     head_req ||
									     p.resp.status < 200 ||
									     p.resp.status == 204 ||
									     p.resp.status == 304
									 ? 0
									 : p.resp.content_length),
						      "response body %llu, Content-Length %lld",
						      (unsigned long long)p.resp.body_size,
						      (long long)p.resp.content_length);
					if (p.resp.status >= 200)
						fin++;
					if (p.resp.status == 101)
						stopped = 1; /* not HTTP any more */
				}
				record(r, 'M', pos, sum);
				need_begin = 1;
				in_body = 0;
			} else {
				CHECK(0, "unknown event %d", ev);
			}
		}
		free(chunk);
		a += clen;
	}
	if (!stopped) {
		/* A bodiless message's MSG_DONE comes from a call with no bytes. */
		size_t used = 12345;
		int ev = crd_http1_feed(&p, NULL, 0, &used);

		CHECK(used == 0, "used %zu of no bytes", used);
		if (ev == CRD_HTTP1_MSG_DONE) {
			record(r, 'M', len,
			       dir == CRD_HTTP1_REQUEST ? req_sum(req, 0) : resp_sum(&p.resp));
		}
		r->idle = crd_http1_idle(&p);
		r->eof = crd_http1_eof(&p);
		if (r->eof == CRD_HTTP1_MSG_DONE)
			record(r, 'M', len,
			       dir == CRD_HTTP1_REQUEST ? req_sum(req, 0) : resp_sum(&p.resp));
	}
	free(req);
}

static void same(const struct res *x, const struct res *y, int mode)
{
	size_t n = x->nev < y->nev ? x->nev : y->nev;

	for (size_t i = 0; i < n; i++) {
		CHECK(x->evs[i].ev == y->evs[i].ev && x->evs[i].pos == y->evs[i].pos &&
			  x->evs[i].sum == y->evs[i].sum,
		      "%s vs whole: event %zu is %c@%zu (%016llx), not %c@%zu (%016llx)",
		      mode_name[mode], i, y->evs[i].ev, y->evs[i].pos,
		      (unsigned long long)y->evs[i].sum, x->evs[i].ev, x->evs[i].pos,
		      (unsigned long long)x->evs[i].sum);
	}
	CHECK(x->nev == y->nev, "%s vs whole: %zu events, not %zu", mode_name[mode], y->nev,
	      x->nev);
	CHECK(x->idle == y->idle && x->eof == y->eof, "%s vs whole: idle %d eof %d, not %d %d",
	      mode_name[mode], y->idle, y->eof, x->idle, x->eof);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct res whole, other;

	if (size < 2)
		return 0;
	int dir = data[0] & 1 ? CRD_HTTP1_RESPONSE : CRD_HTTP1_REQUEST;
	unsigned heads = (unsigned)(data[1] ^ '-');
	uint64_t seed = (uint64_t)data[0] * 0x9e3779b97f4a7c15ull ^ size;

	data += 2;
	size -= 2;
	parse(data, size, dir, heads, WHOLE, 0, &whole);
	parse(data, size, dir, heads, BYTES, 0, &other);
	same(&whole, &other, BYTES);
	parse(data, size, dir, heads, SPLIT, seed, &other);
	same(&whole, &other, SPLIT);
	return 0;
}
