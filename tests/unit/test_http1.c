/* test_http1.c - HTTP/1.x parser: fixtures, every split, pipelining, errors.
 *
 * Every fixture is parsed whole, then split in two at every position, then
 * one byte at a time; all of them must give the same events (at the same
 * stream offsets) and the same extracted fields. The harness drives the
 * parser the way http1.h says a caller must: begin before each message's
 * first byte, call feed until NEED_MORE, stop at ERROR and after a 101.
 */
#include <criterion/criterion.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http1.h"

#define MAX_MSGS 64
#define MAX_EVS	 160

struct fx {
	const char *name;
	int dir;
	const char *data;
	size_t len;
	const char *heads; /* responses: 'H' for each final response to a HEAD */
};

#define FX(nm, dir, lit, heads)                                                                    \
	{                                                                                          \
		nm, dir, lit, sizeof(lit) - 1, heads                                               \
	}
#define REQ(nm, lit)	     FX(nm, CRD_HTTP1_REQUEST, lit, NULL)
#define RESP(nm, lit, heads) FX(nm, CRD_HTTP1_RESPONSE, lit, heads)

struct result {
	char evs[MAX_EVS + 1]; /* H = HEAD_DONE, M = MSG_DONE, E = ERROR */
	size_t evpos[MAX_EVS]; /* stream offset right after each event */
	int nev;
	int nreq, nresp; /* messages completed (MSG_DONE) */
	int nbegun;	 /* requests begun (nreq, or one more) */
	int eof;	 /* crd_http1_eof() at the end; 99: not called */
	int idle;	 /* crd_http1_idle() before that */
	struct crd_http1_resp resp[MAX_MSGS];
	struct crd_http1_resp resp_head[MAX_MSGS]; /* p->resp at HEAD_DONE */
	struct crd_http_req req[MAX_MSGS + 1];
};

static struct result *new_result(void)
{
	struct result *r = malloc(sizeof(*r));

	cr_assert_not_null(r);
	return r;
}

static void record(struct result *r, int ev, size_t pos)
{
	cr_assert_lt(r->nev, MAX_EVS);
	r->evs[r->nev] = ev == CRD_HTTP1_HEAD_DONE ? 'H' : ev == CRD_HTTP1_MSG_DONE ? 'M' : 'E';
	r->evpos[r->nev++] = pos;
	r->evs[r->nev] = 0;
}

/* Parse f->data fed as pieces: [0, first), then chunk bytes at a time. */
static void run_fx(const struct fx *f, size_t first, size_t chunk, struct result *r)
{
	struct crd_http1_parser p;
	size_t a = 0, b = first, fin = 0;
	int need_begin = 1, stopped = 0;

	/* The slots are filled as messages complete; only the counters need
	 * clearing (cheap enough to run thousands of times). */
	memset(r, 0, offsetof(struct result, resp));
	r->eof = 99;
	crd_http1_init(&p, f->dir);
	for (;;) {
		const char *buf;
		size_t len;

		if (b > f->len)
			b = f->len;
		buf = f->data + a;
		len = b - a;
		while (!stopped) {
			size_t used = 12345;
			int ev;

			if (need_begin && len) {
				if (f->dir == CRD_HTTP1_REQUEST) {
					cr_assert_lt(r->nreq, MAX_MSGS);
					/* A dirty slot, as a reused span slot
					 * would be: every string must be
					 * terminated by the parser. */
					memset(&r->req[r->nreq], 0x5a, sizeof(r->req[0]));
					crd_http1_begin_request(&p, &r->req[r->nreq]);
					r->nbegun = r->nreq + 1;
				} else {
					crd_http1_begin_response(&p, f->heads &&
									 fin < strlen(f->heads) &&
									 f->heads[fin] == 'H');
				}
				need_begin = 0;
			}
			ev = crd_http1_feed(&p, buf, len, &used);
			cr_assert_leq(used, len, "%s: used %zu > len %zu", f->name, used, len);
			buf += used;
			len -= used;
			if (ev == CRD_HTTP1_NEED_MORE) {
				cr_assert_eq(len, 0, "%s: NEED_MORE with %zu bytes left", f->name,
					     len);
				break;
			}
			record(r, ev, (size_t)(buf - f->data));
			if (ev == CRD_HTTP1_ERROR) {
				stopped = 1;
			} else if (ev == CRD_HTTP1_HEAD_DONE) {
				cr_assert_eq(crd_http1_idle(&p), 0);
				cr_assert_lt(r->nresp, MAX_MSGS);
				if (f->dir == CRD_HTTP1_RESPONSE)
					r->resp_head[r->nresp] = p.resp;
			} else if (ev == CRD_HTTP1_MSG_DONE) {
				cr_assert_lt(r->nresp, MAX_MSGS);
				need_begin = 1;
				if (f->dir == CRD_HTTP1_REQUEST) {
					r->nreq++;
				} else {
					r->resp[r->nresp++] = p.resp;
					if (p.resp.status >= 200)
						fin++;
					if (p.resp.status == 101)
						stopped = 1; /* not HTTP any more */
				}
			} else {
				cr_assert_fail("%s: unknown event %d", f->name, ev);
			}
		}
		if (stopped || b == f->len)
			break;
		a = b;
		b = a + chunk;
	}
	if (stopped)
		return;
	r->idle = crd_http1_idle(&p);
	r->eof = crd_http1_eof(&p);
	if (r->eof == CRD_HTTP1_MSG_DONE) {
		record(r, r->eof, f->len);
		if (f->dir == CRD_HTTP1_RESPONSE)
			r->resp[r->nresp++] = p.resp;
		else
			r->nreq++;
	}
}

static void same_resp(const struct crd_http1_resp *x, const struct crd_http1_resp *y,
		      const char *what)
{
	cr_assert_eq(x->status, y->status, "%s: status %u vs %u", what, x->status, y->status);
	cr_assert_eq(x->version_minor, y->version_minor, "%s: version", what);
	cr_assert_eq(x->conn_close, y->conn_close, "%s: conn_close", what);
	cr_assert_eq(x->chunked, y->chunked, "%s: chunked", what);
	cr_assert_eq(x->close_delimited, y->close_delimited, "%s: close_delimited", what);
	cr_assert_eq(x->content_length, y->content_length, "%s: content_length", what);
	cr_assert_eq(x->body_size, y->body_size, "%s: body_size %llu vs %llu", what,
		     (unsigned long long)x->body_size, (unsigned long long)y->body_size);
}

/* Compare a split parse (y) with the whole parse (x). */
static void same(const struct result *x, const struct result *y, const char *fx, const char *how,
		 size_t at)
{
	char what[160];

	snprintf(what, sizeof(what), "%s, %s %zu", fx, how, at);
	cr_assert_str_eq(y->evs, x->evs, "%s: events", what);
	for (int i = 0; i < x->nev; i++)
		cr_assert_eq(y->evpos[i], x->evpos[i], "%s: event %d at %zu, not %zu", what, i,
			     y->evpos[i], x->evpos[i]);
	cr_assert_eq(y->nreq, x->nreq, "%s: requests", what);
	cr_assert_eq(y->nresp, x->nresp, "%s: responses", what);
	cr_assert_eq(y->eof, x->eof, "%s: eof", what);
	cr_assert_eq(y->idle, x->idle, "%s: idle", what);
	for (int i = 0; i < x->nresp; i++) {
		same_resp(&x->resp[i], &y->resp[i], what);
		same_resp(&x->resp_head[i], &y->resp_head[i], what);
	}
	cr_assert_eq(y->nbegun, x->nbegun, "%s: requests begun", what);
	for (int i = 0; i < x->nbegun; i++) {
		const struct crd_http_req *a = &x->req[i], *b = &y->req[i];

		cr_assert_str_eq(b->method, a->method, "%s: method", what);
		cr_assert_str_eq(b->target, a->target, "%s: target", what);
		cr_assert_str_eq(b->host, a->host, "%s: host", what);
		cr_assert_str_eq(b->user_agent, a->user_agent, "%s: user_agent", what);
		cr_assert_str_eq(b->xff, a->xff, "%s: xff", what);
		cr_assert_str_eq(b->traceparent, a->traceparent, "%s: traceparent", what);
		cr_assert_str_eq(b->tracestate, a->tracestate, "%s: tracestate", what);
		cr_assert_str_eq(b->xamzn, a->xamzn, "%s: xamzn", what);
		cr_assert_eq(b->version_minor, a->version_minor, "%s: version", what);
		cr_assert_eq(b->flags, a->flags, "%s: flags %#x vs %#x", what, b->flags, a->flags);
		cr_assert_eq(b->content_length, a->content_length, "%s: content_length", what);
		cr_assert_eq(b->body_size, a->body_size, "%s: body_size", what);
	}
}

/* Parse whole, then split in two at every stride-th position, then one
 * byte at a time; all must match. Returns the whole parse (free it). */
static struct result *check_fixture_stride(const struct fx *f, size_t stride)
{
	struct result *whole = new_result(), *part = new_result();

	run_fx(f, f->len, f->len, whole);
	for (size_t i = 0; i <= f->len; i += stride) {
		run_fx(f, i, f->len, part);
		same(whole, part, f->name, "split at", i);
	}
	run_fx(f, 0, 1, part);
	same(whole, part, f->name, "byte by byte", 1);
	run_fx(f, 0, 7, part);
	same(whole, part, f->name, "7-byte pieces", 7);
	free(part);
	return whole;
}

static struct result *check_fixture(const struct fx *f)
{
	return check_fixture_stride(f, 1);
}

/* ---- request fixtures ---- */

static const struct fx get_query = REQ("get_query", "GET /search?q=caf%C3%A9&page=2 HTTP/1.1\r\n"
						    "Host: example.com:8080\r\n"
						    "User-Agent: curl/8.4.0\r\n"
						    "Accept: */*\r\n"
						    "\r\n");

Test(http1_req, get_query)
{
	struct result *r = check_fixture(&get_query);
	const struct crd_http_req *q = &r->req[0];

	cr_assert_str_eq(r->evs, "HM");
	cr_assert_eq(r->evpos[0], get_query.len);
	cr_assert_eq(r->evpos[1], get_query.len);
	cr_assert_eq(r->nreq, 1);
	cr_assert_str_eq(q->method, "GET");
	cr_assert_str_eq(q->target, "/search?q=caf%C3%A9&page=2");
	cr_assert_str_eq(q->host, "example.com:8080");
	cr_assert_str_eq(q->user_agent, "curl/8.4.0");
	cr_assert_str_eq(q->xff, "");
	cr_assert_str_eq(q->traceparent, "");
	cr_assert_eq(q->version_minor, 1);
	cr_assert_eq(q->flags, 0);
	cr_assert_eq(q->content_length, -1);
	cr_assert_eq(q->body_size, 0);
	cr_assert_eq(r->idle, 1);
	cr_assert_eq(r->eof, CRD_HTTP1_NEED_MORE);
	free(r);
}

#define POST_HEAD                                                                                  \
	"POST /api/items HTTP/1.1\r\n"                                                             \
	"Host: api.internal\r\n"                                                                   \
	"Content-Type: application/json\r\n"                                                       \
	"content-length: 13\r\n"                                                                   \
	"\r\n"
static const struct fx post_cl = REQ("post_cl", POST_HEAD "{\"a\":\"hello\"}");

Test(http1_req, post_content_length)
{
	struct result *r = check_fixture(&post_cl);
	const struct crd_http_req *q = &r->req[0];

	cr_assert_str_eq(r->evs, "HM");
	cr_assert_eq(r->evpos[0], sizeof(POST_HEAD) - 1, "HEAD_DONE before the first body byte");
	cr_assert_eq(r->evpos[1], post_cl.len);
	cr_assert_str_eq(q->method, "POST");
	cr_assert_str_eq(q->target, "/api/items");
	cr_assert_str_eq(q->host, "api.internal");
	cr_assert_eq(q->content_length, 13);
	cr_assert_eq(q->body_size, 13);
	cr_assert_eq(q->flags, 0);
	cr_assert_eq(r->eof, CRD_HTTP1_NEED_MORE);
	free(r);
}

static const struct fx chunked_req = REQ("chunked_req", "POST /upload HTTP/1.1\r\n"
							"Host: up\r\n"
							"Transfer-Encoding: gzip, Chunked\r\n"
							"Content-Length: 3\r\n"
							"\r\n"
							"5;name=val\r\nhello\r\n"
							"A ; foo=\"bar\"\r\n0123456789\r\n"
							"00000000000000001\r\n!\r\n"
							"0\r\n"
							"X-Checksum: abc\r\n"
							"X-Other: 1\r\n"
							"\r\n");

Test(http1_req, chunked_extensions_trailers)
{
	struct result *r = check_fixture(&chunked_req);
	const struct crd_http_req *q = &r->req[0];

	cr_assert_str_eq(r->evs, "HM");
	cr_assert_eq(r->evpos[1], chunked_req.len, "trailers consumed through the empty line");
	cr_assert_eq(q->flags, CRD_REQ_CHUNKED);
	cr_assert_eq(q->content_length, 3, "reported, but chunked framing wins");
	cr_assert_eq(q->body_size, 16, "decoded data bytes");
	cr_assert_eq(r->eof, CRD_HTTP1_NEED_MORE);
	free(r);
}

static const struct fx keepalive = REQ("keepalive", "GET /a HTTP/1.1\r\n"
						    "Host: h\r\n"
						    "Connection: keep-alive\r\n"
						    "\r\n"
						    "GET /b HTTP/1.1\r\n"
						    "Host: h\r\n"
						    "Connection: Upgrade, CLOSE\r\n"
						    "\r\n");

Test(http1_req, keepalive_then_close)
{
	struct result *r = check_fixture(&keepalive);

	cr_assert_str_eq(r->evs, "HMHM");
	cr_assert_eq(r->nreq, 2);
	cr_assert_str_eq(r->req[0].target, "/a");
	cr_assert_eq(r->req[0].flags, CRD_REQ_KEEPALIVE);
	cr_assert_str_eq(r->req[1].target, "/b");
	cr_assert_eq(r->req[1].flags, CRD_REQ_CONN_CLOSE);
	free(r);
}

static const struct fx http10 = REQ("http10", "GET /old HTTP/1.0\r\n"
					      "User-Agent: ApacheBench/2.3\r\n"
					      "Connection: Keep-Alive\r\n"
					      "\r\n");

Test(http1_req, http10)
{
	struct result *r = check_fixture(&http10);

	cr_assert_str_eq(r->evs, "HM");
	cr_assert_eq(r->req[0].version_minor, 0);
	cr_assert_str_eq(r->req[0].user_agent, "ApacheBench/2.3");
	cr_assert_str_eq(r->req[0].host, "");
	cr_assert_eq(r->req[0].flags, CRD_REQ_KEEPALIVE);
	free(r);
}

/* nginx and CPython answer HTTP/1.2 as 1.1 (RFC 9110 section 2.5): so do
 * we, on both sides, and the span says 1.1. */
static const struct fx http12 = REQ("http12", "GET /v12 HTTP/1.2\r\nHost: x\r\n\r\n"
					      "GET /v19 HTTP/1.9\r\n\r\n");
static const struct fx http12_resp = RESP("http12_resp", "HTTP/1.2 200 OK\r\n"
							 "Content-Length: 2\r\n\r\nok",
					  NULL);

Test(http1_req, higher_minor_version_is_1_1)
{
	struct result *r = check_fixture(&http12);

	cr_assert_str_eq(r->evs, "HMHM");
	cr_assert_str_eq(r->req[0].target, "/v12");
	cr_assert_eq(r->req[0].version_minor, 1);
	cr_assert_eq(r->req[1].version_minor, 1);
	free(r);
	r = check_fixture(&http12_resp);
	cr_assert_str_eq(r->evs, "HM");
	cr_assert_eq(r->resp[0].version_minor, 1);
	cr_assert_eq(r->resp[0].conn_close, 0);
	cr_assert_eq(r->resp[0].body_size, 2);
	free(r);
}

static const struct fx bare_lf = REQ("bare_lf", "POST /lf HTTP/1.1\n"
						"Host: lf.example\n"
						"Content-Length: 3\n"
						"\n"
						"abc"
						"PUT /lf2 HTTP/1.1\n"
						"Transfer-Encoding: chunked\n"
						"\n"
						"2\nhi\n0\ntrailer: x\n\n");

Test(http1_req, bare_lf)
{
	struct result *r = check_fixture(&bare_lf);

	cr_assert_str_eq(r->evs, "HMHM");
	cr_assert_str_eq(r->req[0].target, "/lf");
	cr_assert_str_eq(r->req[0].host, "lf.example");
	cr_assert_eq(r->req[0].body_size, 3);
	cr_assert_str_eq(r->req[1].method, "PUT");
	cr_assert_eq(r->req[1].flags, CRD_REQ_CHUNKED);
	cr_assert_eq(r->req[1].body_size, 2);
	cr_assert_eq(r->evpos[3], bare_lf.len);
	free(r);
}

static const struct fx leading_empty = REQ("leading_empty", "\r\n\n\r\n"
							    "GET /x HTTP/1.1\r\n"
							    "Host: x\r\n"
							    "\r\n"
							    "\r\n"
							    "GET /y HTTP/1.1\r\n\r\n"
							    "\r\n");

Test(http1_req, leading_empty_lines)
{
	struct result *r = check_fixture(&leading_empty);

	cr_assert_str_eq(r->evs, "HMHM");
	cr_assert_str_eq(r->req[0].target, "/x");
	cr_assert_str_eq(r->req[1].target, "/y");
	cr_assert_eq(r->idle, 1, "a trailing empty line leaves the parser idle");
	cr_assert_eq(r->eof, CRD_HTTP1_NEED_MORE);
	free(r);
}

Test(http1_req, long_target_truncated)
{
	static char buf[4096];
	struct fx f = {"long_target", CRD_HTTP1_REQUEST, buf, 0, NULL};
	struct result *r;
	size_t n = 0;

	n += (size_t)sprintf(buf, "GET /");
	memset(buf + n, 'a', 2000);
	n += 2000;
	n += (size_t)sprintf(buf + n, "?q=1 HTTP/1.1\r\nHost: x\r\nUser-Agent: u\r\n\r\n");
	f.len = n;
	r = check_fixture(&f);
	cr_assert_str_eq(r->evs, "HM");
	cr_assert_eq(strlen(r->req[0].target), CRD_TARGET_MAX - 1);
	cr_assert_eq(r->req[0].target[0], '/');
	cr_assert_eq(r->req[0].target[CRD_TARGET_MAX - 2], 'a');
	cr_assert_eq(r->req[0].flags, CRD_REQ_TRUNCATED);
	cr_assert_str_eq(r->req[0].host, "x", "headers after a long target still parsed");
	cr_assert_str_eq(r->req[0].user_agent, "u");
	free(r);
}

Test(http1_req, target_exactly_at_cap_not_truncated)
{
	static char buf[2048];
	struct fx f = {"target_at_cap", CRD_HTTP1_REQUEST, buf, 0, NULL};
	struct result *r;
	size_t n = 0;

	buf[n++] = '/';
	memset(buf + n, 'b', CRD_TARGET_MAX - 2);
	n += CRD_TARGET_MAX - 2;
	memmove(buf + 4, buf, n);
	memcpy(buf, "GET ", 4);
	n += 4;
	n += (size_t)sprintf(buf + n, " HTTP/1.1\r\n\r\n");
	f.len = n;
	r = check_fixture(&f);
	cr_assert_str_eq(r->evs, "HM");
	cr_assert_eq(strlen(r->req[0].target), CRD_TARGET_MAX - 1);
	cr_assert_eq(r->req[0].flags, 0);
	free(r);
}

static const struct fx tracestate = REQ("tracestate", "GET / HTTP/1.1\r\n"
						      "tracestate: rojo=00f067aa0ba902b7 \r\n"
						      "Host: h\r\n"
						      "TraceState:\t congo=t61rcWkgMzE\t\r\n"
						      "tracestate:\r\n"
						      "TRACESTATE: a=1, b=2\r\n"
						      "\r\n");

Test(http1_req, tracestate_joined)
{
	struct result *r = check_fixture(&tracestate);

	cr_assert_str_eq(r->evs, "HM");
	cr_assert_str_eq(r->req[0].tracestate, "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE,a=1, b=2");
	cr_assert_str_eq(r->req[0].host, "h");
	cr_assert_eq(r->req[0].flags, 0);
	free(r);
}

static const struct fx xff = REQ("xff", "GET / HTTP/1.1\r\n"
					"X-Forwarded-For: \t203.0.113.7 , 10.0.0.1, 10.0.0.2\r\n"
					"x-forwarded-for: 198.51.100.1\r\n"
					"Host: after\r\n"
					"\r\n"
					"GET / HTTP/1.1\r\n"
					"X-Forwarded-For: 2001:db8::1\r\n"
					"\r\n");

Test(http1_req, xff_first_hop)
{
	struct result *r = check_fixture(&xff);

	cr_assert_str_eq(r->evs, "HMHM");
	cr_assert_str_eq(r->req[0].xff, "203.0.113.7");
	cr_assert_str_eq(r->req[0].host, "after");
	cr_assert_str_eq(r->req[1].xff, "2001:db8::1");
	free(r);
}

#define TP1 "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
static const struct fx dup_tp = REQ(
    "dup_traceparent", "GET / HTTP/1.1\r\n"
		       "traceparent: " TP1 "\r\n"
		       "Traceparent: 00-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-bbbbbbbbbbbbbbbb-01\r\n"
		       "\r\n"
		       "GET / HTTP/1.1\r\n"
		       "traceparent: " TP1 "\r\n"
		       "\r\n");

Test(http1_req, duplicate_traceparent)
{
	struct result *r = check_fixture(&dup_tp);

	cr_assert_str_eq(r->evs, "HMHM");
	cr_assert_str_eq(r->req[0].traceparent, TP1);
	cr_assert_eq(r->req[0].flags, CRD_REQ_DUP_TRACEPARENT);
	cr_assert_str_eq(r->req[1].traceparent, TP1);
	cr_assert_eq(r->req[1].flags, 0, "flags are per request");
	free(r);
}

static const struct fx misc =
    REQ("misc_headers",
	"PUT /r HTTP/1.1\r\n"
	"HOST:   padded.example   \r\n"
	"X-Amzn-Trace-Id: Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1\r\n"
	"Expect: 100-Continue\r\n"
	"User-Agent: ua1\r\n"
	" folded continuation, not part of the UA\r\n"
	"\tanother\r\n"
	"Host: second.example\r\n"
	"X-A-Very-Long-Header-Name-That-Is-Longer-Than-Sixty-Four-Characters-Host: v\r\n"
	"Transfer-Encoding-X: chunked\r\n"
	"Transfer_Encoding: chunked\r\n"
	"Content-Length: 5, 5\r\n"
	"content-length:5\r\n"
	"X-Empty:\r\n"
	"Connection: keep-alive;x=1 , close\r\n"
	"\r\n"
	"abcde");

Test(http1_req, misc_headers)
{
	struct result *r = check_fixture(&misc);
	const struct crd_http_req *q = &r->req[0];

	cr_assert_str_eq(r->evs, "HM");
	cr_assert_str_eq(q->method, "PUT");
	cr_assert_str_eq(q->host, "padded.example", "trimmed; first Host wins");
	cr_assert_str_eq(q->xamzn, "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1");
	cr_assert_str_eq(q->user_agent, "ua1", "obs-fold lines ignored");
	cr_assert_eq(q->flags, CRD_REQ_EXPECT_100 | CRD_REQ_KEEPALIVE | CRD_REQ_CONN_CLOSE);
	cr_assert_eq(q->content_length, 5, "identical repeats accepted");
	cr_assert_eq(q->body_size, 5);
	free(r);
}

/* A value exactly at its cap followed by whitespace is not truncated; one
 * more visible byte is. */
Test(http1_req, value_truncation)
{
	static char buf[2048];
	struct fx f = {"ua_trunc", CRD_HTTP1_REQUEST, buf, 0, NULL};
	char ua[CRD_UA_MAX + 8];
	struct result *r;

	memset(ua, 'u', CRD_UA_MAX - 1);
	ua[CRD_UA_MAX - 1] = 0;
	f.len = (size_t)snprintf(
	    buf, sizeof(buf),
	    "GET / HTTP/1.1\r\nUser-Agent: %s  \t\r\n\r\n"
	    "GET / HTTP/1.1\r\nUser-Agent: %s x\r\nHost: h\r\n\r\n"
	    "GET / HTTP/1.1\r\nX-Forwarded-For: %s\r\n\r\n",
	    ua, ua, "1234567890123456789012345678901234567890123456789012345678901234");
	r = check_fixture(&f);
	cr_assert_str_eq(r->evs, "HMHMHM");
	cr_assert_str_eq(r->req[0].user_agent, ua);
	cr_assert_eq(r->req[0].flags, 0, "only whitespace was dropped");
	cr_assert_eq(strlen(r->req[1].user_agent), CRD_UA_MAX - 1);
	cr_assert_eq(r->req[1].flags, CRD_REQ_TRUNCATED);
	cr_assert_str_eq(r->req[1].host, "h");
	cr_assert_eq(strlen(r->req[2].xff), CRD_XFF_MAX - 1);
	cr_assert_eq(r->req[2].flags, CRD_REQ_TRUNCATED);
	free(r);
}

/* ---- response fixtures ---- */

#define NGINX_HEAD                                                                                 \
	"HTTP/1.1 200 OK\r\n"                                                                      \
	"Server: nginx/1.22.1\r\n"                                                                 \
	"Date: Sat, 22 Nov 2025 01:57:00 GMT\r\n"                                                  \
	"Content-Type: text/html\r\n"                                                              \
	"Content-Length: 615\r\n"                                                                  \
	"Last-Modified: Tue, 01 Nov 2022 12:00:00 GMT\r\n"                                         \
	"Connection: keep-alive\r\n"                                                               \
	"ETag: \"63610c40-267\"\r\n"                                                               \
	"Accept-Ranges: bytes\r\n"                                                                 \
	"\r\n"

static const struct fx head_resp = RESP("head_resp", NGINX_HEAD, "H");

Test(http1_resp, head_response_has_no_body)
{
	struct result *r = check_fixture(&head_resp);

	cr_assert_str_eq(r->evs, "HM");
	cr_assert_eq(r->evpos[1], head_resp.len);
	cr_assert_eq(r->resp[0].status, 200);
	cr_assert_eq(r->resp[0].content_length, 615);
	cr_assert_eq(r->resp[0].body_size, 0);
	cr_assert_eq(r->resp[0].close_delimited, 0);
	cr_assert_eq(r->resp[0].conn_close, 0);
	cr_assert_eq(r->eof, CRD_HTTP1_NEED_MORE);
	free(r);
}

Test(http1_resp, nginx_get)
{
	/* The same head with a body for a GET: 615 bytes are awaited. */
	static char buf[2048];
	struct fx f = {"nginx_get", CRD_HTTP1_RESPONSE, buf, 0, NULL};
	struct result *r;

	f.len = sizeof(NGINX_HEAD) - 1;
	memcpy(buf, NGINX_HEAD, f.len);
	memset(buf + f.len, 'x', 615);
	f.len += 615;
	r = check_fixture(&f);
	cr_assert_str_eq(r->evs, "HM");
	cr_assert_eq(r->evpos[0], sizeof(NGINX_HEAD) - 1);
	cr_assert_eq(r->resp[0].status, 200);
	cr_assert_eq(r->resp[0].version_minor, 1);
	cr_assert_eq(r->resp_head[0].content_length, 615, "known at HEAD_DONE");
	cr_assert_eq(r->resp[0].body_size, 615);
	cr_assert_eq(r->resp[0].chunked, 0);
	free(r);
}

static const struct fx resp204 = RESP("204",
				      "HTTP/1.1 204 No Content\r\n"
				      "Server: nginx\r\n"
				      "Connection: keep-alive\r\n"
				      "\r\n",
				      NULL);

Test(http1_resp, no_content_204)
{
	struct result *r = check_fixture(&resp204);

	cr_assert_str_eq(r->evs, "HM");
	cr_assert_eq(r->resp[0].status, 204);
	cr_assert_eq(r->resp[0].content_length, -1);
	cr_assert_eq(r->resp[0].close_delimited, 0, "204 never has a body");
	cr_assert_eq(r->eof, CRD_HTTP1_NEED_MORE);
	free(r);
}

static const struct fx resp304 = RESP("304",
				      "HTTP/1.1 304 Not Modified\r\n"
				      "ETag: \"5e1c\"\r\n"
				      "Content-Length: 615\r\n"
				      "\r\n"
				      "HTTP/1.1 200 OK\r\n"
				      "Content-Length: 1\r\n"
				      "\r\n"
				      "z",
				      NULL);

Test(http1_resp, not_modified_304)
{
	struct result *r = check_fixture(&resp304);

	cr_assert_str_eq(r->evs, "HMHM");
	cr_assert_eq(r->resp[0].status, 304);
	cr_assert_eq(r->resp[0].content_length, 615);
	cr_assert_eq(r->resp[0].body_size, 0);
	cr_assert_eq(r->resp[1].status, 200);
	cr_assert_eq(r->resp[1].body_size, 1);
	free(r);
}

static const struct fx cont = RESP("continue",
				   "HTTP/1.1 100 Continue\r\n"
				   "\r\n"
				   "HTTP/1.1 200 OK\r\n"
				   "Content-Length: 2\r\n"
				   "\r\n"
				   "ok",
				   "G");

Test(http1_resp, continue_then_200)
{
	struct result *r = check_fixture(&cont);

	cr_assert_str_eq(r->evs, "HMHM");
	cr_assert_eq(r->nresp, 2);
	cr_assert_eq(r->resp[0].status, 100);
	cr_assert_eq(r->resp[0].body_size, 0);
	cr_assert_eq(r->resp[1].status, 200);
	cr_assert_eq(r->resp[1].body_size, 2);
	cr_assert_eq(r->evpos[1], strlen("HTTP/1.1 100 Continue\r\n\r\n"));
	free(r);
}

static const struct fx chunked_resp = RESP("chunked_resp",
					   "HTTP/1.1 200 OK\r\n"
					   "Server: nginx/1.22.1\r\n"
					   "Host: request-only.example\r\n"
					   "Traceparent: " TP1 "\r\n"
					   "Expect: 100-continue\r\n"
					   "Transfer-Encoding: chunked\r\n"
					   "Connection: keep-alive\r\n"
					   "\r\n"
					   "7\r\nMozilla\r\n"
					   "11\r\nDeveloper Network\r\n"
					   "a\r\n0123456789\r\n"
					   "0\r\n"
					   "\r\n",
					   NULL);

Test(http1_resp, chunked_response)
{
	struct result *r = check_fixture(&chunked_resp);

	cr_assert_str_eq(r->evs, "HM");
	cr_assert_eq(r->evpos[1], chunked_resp.len);
	cr_assert_eq(r->resp[0].chunked, 1);
	cr_assert_eq(r->resp[0].content_length, -1);
	cr_assert_eq(r->resp[0].body_size, 7 + 17 + 10);
	cr_assert_eq(r->resp[0].close_delimited, 0);
	free(r);
}

static const struct fx close_delim = RESP("close_delimited",
					  "HTTP/1.0 200 OK\r\n"
					  "Content-Type: text/plain\r\n"
					  "\r\n"
					  "hello, world\r\n\r\nHTTP/1.1 200 OK\r\n",
					  NULL);

Test(http1_resp, close_delimited)
{
	struct result *r = check_fixture(&close_delim);

	cr_assert_str_eq(r->evs, "HM", "MSG_DONE only from eof");
	cr_assert_eq(r->eof, CRD_HTTP1_MSG_DONE);
	cr_assert_eq(r->idle, 0);
	cr_assert_eq(r->resp[0].close_delimited, 1);
	cr_assert_eq(r->resp[0].conn_close, 1, "HTTP/1.0 without keep-alive");
	cr_assert_eq(r->resp[0].version_minor, 0);
	cr_assert_eq(r->resp[0].body_size, close_delim.len - strlen("HTTP/1.0 200 OK\r\n"
								    "Content-Type: text/plain\r\n"
								    "\r\n"));
	free(r);
}

static const struct fx te_gzip = RESP("te_not_chunked",
				      "HTTP/1.1 200 OK\r\n"
				      "Transfer-Encoding: chunked, gzip\r\n"
				      "Content-Length: 3\r\n"
				      "\r\n"
				      "abcdefg",
				      NULL);

Test(http1_resp, transfer_encoding_not_chunked_is_close_delimited)
{
	struct result *r = check_fixture(&te_gzip);

	cr_assert_str_eq(r->evs, "HM");
	cr_assert_eq(r->resp[0].chunked, 0);
	cr_assert_eq(r->resp[0].close_delimited, 1);
	cr_assert_eq(r->resp[0].body_size, 7);
	free(r);
}

/* A Transfer-Encoding element that is not one token ("chunked x") is some
 * other coding: the response is close-delimited, Content-Length or not. */
static const struct fx te_bad_token = RESP("te_bad_token",
					   "HTTP/1.1 200 OK\r\n"
					   "Transfer-Encoding: chunked x\r\n"
					   "Transfer-Encoding: chun ked\r\n"
					   "Connection: x/close, \"keep-alive\"\r\n"
					   "Content-Length: 2\r\n"
					   "\r\n"
					   "abcd",
					   NULL);

Test(http1_resp, transfer_encoding_bad_token)
{
	struct result *r = check_fixture(&te_bad_token);

	cr_assert_str_eq(r->evs, "HM");
	cr_assert_eq(r->eof, CRD_HTTP1_MSG_DONE);
	cr_assert_eq(r->resp[0].chunked, 0);
	cr_assert_eq(r->resp[0].close_delimited, 1);
	cr_assert_eq(r->resp[0].body_size, 4);
	cr_assert_eq(r->resp[0].conn_close, 0, "neither x/close nor a quoted string is close");
	free(r);
}

static const struct fx switching = RESP("101",
					"HTTP/1.1 101 Switching Protocols\r\n"
					"Upgrade: websocket\r\n"
					"Connection: Upgrade\r\n"
					"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
					"\r\n"
					"\x81\x05hello",
					NULL);

Test(http1_resp, switching_protocols)
{
	struct result *r = check_fixture(&switching);

	cr_assert_str_eq(r->evs, "HM");
	cr_assert_eq(r->resp[0].status, 101);
	cr_assert_eq(r->evpos[1], switching.len - 7, "frame bytes left unconsumed");
	free(r);
}

static const struct fx lenient_resp = RESP("lenient_resp",
					   "\r\n"
					   "HTTP/1.0 200\n"
					   "Connection: Keep-Alive\n"
					   "Content-Length: 2\n"
					   "\n"
					   "hi"
					   "HTTP/1.1 503 \n"
					   "connection: close\n"
					   "transfer-encoding: CHUNKED\n"
					   "\n"
					   "3\nabc\n0\nExpires: never\n\n",
					   NULL);

Test(http1_resp, bare_lf_empty_reason)
{
	struct result *r = check_fixture(&lenient_resp);

	cr_assert_str_eq(r->evs, "HMHM");
	cr_assert_eq(r->resp[0].status, 200);
	cr_assert_eq(r->resp[0].version_minor, 0);
	cr_assert_eq(r->resp[0].conn_close, 0, "HTTP/1.0 with keep-alive");
	cr_assert_eq(r->resp[0].body_size, 2);
	cr_assert_eq(r->resp[1].status, 503);
	cr_assert_eq(r->resp[1].conn_close, 1);
	cr_assert_eq(r->resp[1].chunked, 1);
	cr_assert_eq(r->resp[1].body_size, 3);
	free(r);
}

/* ---- pipelining ---- */

static const struct fx pipe3 =
    REQ("pipeline3", "GET /one HTTP/1.1\r\nHost: a\r\n\r\n"
		     "POST /two HTTP/1.1\r\nHost: b\r\nContent-Length: 4\r\n\r\n"
		     "GET "
		     "PUT /three HTTP/1.1\r\nHost: c\r\nTransfer-Encoding: chunked\r\n\r\n"
		     "3\r\nxyz\r\n0\r\n\r\n");

Test(http1_pipeline, three_requests)
{
	struct result *r = check_fixture(&pipe3);

	cr_assert_str_eq(r->evs, "HMHMHM");
	cr_assert_eq(r->nreq, 3);
	cr_assert_str_eq(r->req[0].target, "/one");
	cr_assert_str_eq(r->req[0].host, "a");
	cr_assert_str_eq(r->req[1].method, "POST");
	cr_assert_eq(r->req[1].body_size, 4, "\"GET \" is the body");
	cr_assert_str_eq(r->req[2].method, "PUT");
	cr_assert_str_eq(r->req[2].target, "/three");
	cr_assert_str_eq(r->req[2].host, "c");
	cr_assert_eq(r->req[2].body_size, 3);
	free(r);
}

Test(http1_pipeline, fifty_requests)
{
	static char buf[8192];
	struct fx f = {"pipeline50", CRD_HTTP1_REQUEST, buf, 0, NULL};
	struct result *r;
	size_t n = 0;

	for (int i = 0; i < 50; i++) {
		if (i % 5 == 4)
			n += (size_t)snprintf(buf + n, sizeof(buf) - n,
					      "POST /item/%d HTTP/1.1\r\nHost: h%d\r\n"
					      "Content-Length: %d\r\n\r\n%0*d",
					      i, i, i, i, 0);
		else
			n += (size_t)snprintf(buf + n, sizeof(buf) - n,
					      "GET /item/%d HTTP/1.1\r\nHost: h%d\r\n\r\n", i, i);
		cr_assert_lt(n, sizeof(buf));
	}
	f.len = n;
	r = check_fixture(&f);
	cr_assert_eq(r->nreq, 50);
	cr_assert_eq(strlen(r->evs), 100);
	for (int i = 0; i < 50; i++) {
		char want[32];

		cr_assert_eq(r->evs[2 * i], 'H');
		cr_assert_eq(r->evs[2 * i + 1], 'M');
		snprintf(want, sizeof(want), "/item/%d", i);
		cr_assert_str_eq(r->req[i].target, want);
		snprintf(want, sizeof(want), "h%d", i);
		cr_assert_str_eq(r->req[i].host, want);
		cr_assert_str_eq(r->req[i].method, i % 5 == 4 ? "POST" : "GET");
		cr_assert_eq(r->req[i].body_size, i % 5 == 4 ? (uint64_t)i : 0);
	}
	cr_assert_eq(r->evpos[99], f.len);
	free(r);
}

static const struct fx mixed = RESP("mixed_head_get",
				    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
				    "hello"
				    /* HEAD: CL but no body */
				    "HTTP/1.1 200 OK\r\nContent-Length: 615\r\n\r\n"
				    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
				    "4\r\nwiki\r\n0\r\n\r\n"
				    /* HEAD: chunked but no body */
				    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
				    "HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\n"
				    "nop",
				    "GHGHG");

Test(http1_pipeline, responses_mixed_head_get)
{
	struct result *r = check_fixture(&mixed);

	cr_assert_str_eq(r->evs, "HMHMHMHMHM");
	cr_assert_eq(r->nresp, 5);
	cr_assert_eq(r->resp[0].body_size, 5);
	cr_assert_eq(r->resp[1].content_length, 615);
	cr_assert_eq(r->resp[1].body_size, 0);
	cr_assert_eq(r->resp[2].chunked, 1);
	cr_assert_eq(r->resp[2].body_size, 4);
	cr_assert_eq(r->resp[3].chunked, 1, "reported even without a body");
	cr_assert_eq(r->resp[3].body_size, 0);
	cr_assert_eq(r->resp[4].status, 404);
	cr_assert_eq(r->resp[4].body_size, 3);
	cr_assert_eq(r->evpos[9], mixed.len);
	free(r);
}

/* ---- malformed input ---- */

/* Parse whole and split; the last event must be ERROR. */
static void expect_error(const char *name, int dir, const char *data, size_t len)
{
	struct fx f = {name, dir, data, len, NULL};
	struct result *r = check_fixture_stride(&f, len > 4096 ? 997 : 1);

	cr_assert_gt(r->nev, 0, "%s: no event", name);
	cr_assert_eq(r->evs[r->nev - 1], 'E', "%s: events %s", name, r->evs);
	free(r);
}

#define EXPECT_ERROR(dir, lit) expect_error(#lit, dir, lit, sizeof(lit) - 1)
#define REQ_ERROR(lit)	       EXPECT_ERROR(CRD_HTTP1_REQUEST, lit)
#define RESP_ERROR(lit)	       EXPECT_ERROR(CRD_HTTP1_RESPONSE, lit)

Test(http1_error, tls_client_hello)
{
	static const char hello[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"
				    "\x8b\x6f\x10\x2e\x4a\x7c\x00\x00\x02\x13\x01";
	struct fx f = {"tls", CRD_HTTP1_REQUEST, hello, sizeof(hello) - 1, NULL};
	struct result *r = check_fixture(&f);

	cr_assert_str_eq(r->evs, "E");
	cr_assert_eq(r->evpos[0], 0, "rejected at the first byte");
	free(r);
	f.dir = CRD_HTTP1_RESPONSE;
	r = check_fixture(&f);
	cr_assert_str_eq(r->evs, "E");
	free(r);
}

Test(http1_error, http2_preface)
{
	REQ_ERROR("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
	RESP_ERROR("HTTP/2 200\r\n\r\n");
	RESP_ERROR("HTTP/2.0 200 OK\r\n\r\n");
}

Test(http1_error, garbage)
{
	REQ_ERROR("\x00\x01\x02\xff");
	REQ_ERROR("hello world this is not http\r\n\r\n");
	REQ_ERROR("{\"json\": true}\n");
	REQ_ERROR("GET / HTTP/2.0\r\n\r\n");
	REQ_ERROR("GET / HTTP/1.a\r\n\r\n");
	REQ_ERROR("GET / HTTP/1.12\r\n\r\n"); /* HTTP-version has one DIGIT each side */
	REQ_ERROR("GET / http/1.1\r\n\r\n");
	REQ_ERROR("GET /\r\n\r\n");	      /* HTTP/0.9 */
	REQ_ERROR("GET  / HTTP/1.1\r\n\r\n"); /* empty target */
	REQ_ERROR("GET  HTTP/1.1\r\n\r\n");
	REQ_ERROR("GET / HTTP/1.1 \r\n\r\n");  /* junk after the version */
	REQ_ERROR("GET / HTTP/1.1\r\r\n\r\n"); /* bare CR */
	REQ_ERROR("GET / HTTP/1.1\r\n: x\r\n\r\n");
	REQ_ERROR("GET / HTTP/1.1\r\nNoColon\r\n\r\n");
	RESP_ERROR("HTTP/1.1 600 Weird\r\n\r\n");
	RESP_ERROR("HTTP/1.1 099 Low\r\n\r\n");
	RESP_ERROR("HTTP/1.1 20x OK\r\n\r\n");
	RESP_ERROR("HTTP/1.1 2000 OK\r\n\r\n");
	RESP_ERROR("HTTP/1.1 200 O\x01K\r\n\r\n");
	RESP_ERROR("SSH-2.0-OpenSSH_9.2\r\n");
}

Test(http1_error, control_bytes)
{
	REQ_ERROR("GET /a\0b HTTP/1.1\r\n\r\n");
	REQ_ERROR("GE\0T / HTTP/1.1\r\n\r\n");
	REQ_ERROR("GET /a\tb HTTP/1.1\r\n\r\n");
	REQ_ERROR("GET / HTTP/1.1\0\r\n\r\n");
	REQ_ERROR("GET / HTTP/1.1\r\nHo\0st: x\r\n\r\n");
	REQ_ERROR("GET / HTTP/1.1\r\nHost : x\r\n\r\n");
	REQ_ERROR("GET / HTTP/1.1\r\nHost\t: x\r\n\r\n");
}

Test(http1_error, method_length)
{
	/* CRD_METHOD_MAX - 1 chars fit; one more is not HTTP. */
	struct result *r;
	struct fx ok = REQ("method23", "ABCDEFGHIJKLMNOPQRSTUVW / HTTP/1.1\r\n\r\n");

	r = check_fixture(&ok);
	cr_assert_str_eq(r->evs, "HM");
	cr_assert_str_eq(r->req[0].method, "ABCDEFGHIJKLMNOPQRSTUVW");
	free(r);
	REQ_ERROR("ABCDEFGHIJKLMNOPQRSTUVWX / HTTP/1.1\r\n\r\n");
}

Test(http1_error, bad_content_length)
{
	REQ_ERROR("POST / HTTP/1.1\r\nContent-Length: 12a\r\n\r\n");
	REQ_ERROR("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n");
	REQ_ERROR("POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\n");
	REQ_ERROR("POST / HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n");
	REQ_ERROR("POST / HTTP/1.1\r\nContent-Length: \r\n\r\n");
	REQ_ERROR("POST / HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n");
	REQ_ERROR("POST / HTTP/1.1\r\nContent-Length: 0,\r\n\r\n");
	REQ_ERROR("POST / HTTP/1.1\r\nContent-Length: ,0\r\n\r\n");
	REQ_ERROR("POST / HTTP/1.1\r\nContent-Length: 9223372036854775808\r\n\r\n");
	RESP_ERROR("HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n");
}

Test(http1_error, conflicting_content_length)
{
	REQ_ERROR("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!");
	REQ_ERROR("POST / HTTP/1.1\r\nContent-Length: 5, 6\r\n\r\nhello!");
	RESP_ERROR("HTTP/1.1 200 OK\r\nContent-Length: 5\r\ncontent-length: 50\r\n\r\n");
}

Test(http1_error, largest_content_length_ok)
{
	struct fx f =
	    REQ("cl_max", "POST / HTTP/1.1\r\nContent-Length: 9223372036854775807\r\n\r\nab");
	struct result *r = check_fixture(&f);

	cr_assert_str_eq(r->evs, "H");
	cr_assert_eq(r->req[0].content_length, INT64_MAX);
	cr_assert_eq(r->req[0].body_size, 2);
	cr_assert_eq(r->eof, CRD_HTTP1_ERROR, "cut mid-body");
	free(r);
}

Test(http1_error, bad_chunk_size)
{
#define CH "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
	REQ_ERROR(CH "zz\r\n");
	REQ_ERROR(CH "5x\r\nhello\r\n");
	REQ_ERROR(CH "\r\n");
	REQ_ERROR(CH " 5\r\nhello\r\n");
	REQ_ERROR(CH "-1\r\n");
	REQ_ERROR(CH "10000000000000000\r\n"); /* 2^64 */
	REQ_ERROR(CH "8000000000000000\r\n");  /* 2^63 */
	REQ_ERROR(CH "5\r\nhelloXX\r\n");      /* no CRLF after data */
	REQ_ERROR(CH "5\r\nhello\rX");
	REQ_ERROR(CH "5\r\nhelloX5\r\nhello\r\n0\r\n\r\n"); /* X is not CRLF */
	REQ_ERROR(CH "5 5\r\nhello\r\n");
	RESP_ERROR("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nq\r\n");
#undef CH
}

/* A request head of exactly head_len bytes: the request line, "X-P: ppp"
 * lines of at most 1000 bytes, "Host: end", the empty line; then 8 bytes
 * that must not be consumed as part of it. */
static void expect_head_size(size_t head_len, int ok)
{
	static const char first[] = "GET / HTTP/1.1\r\n", last[] = "Host: end\r\n\r\n";
	const size_t min_line = strlen("X-P: \r\n");
	char *buf = malloc(head_len + 8);
	size_t n, pad = head_len - (sizeof(first) - 1) - (sizeof(last) - 1);
	struct fx f = {ok ? "head_ok" : "head_too_big", CRD_HTTP1_REQUEST, buf, 0, NULL};
	struct result *r;

	cr_assert_not_null(buf);
	memcpy(buf, first, sizeof(first) - 1);
	n = sizeof(first) - 1;
	while (pad) {
		size_t line = pad > 1000 ? 1000 : pad;

		if (pad - line && pad - line < min_line)
			line -= min_line; /* leave room for one more line */
		memcpy(buf + n, "X-P: ", 5);
		memset(buf + n + 5, 'p', line - min_line);
		memcpy(buf + n + line - 2, "\r\n", 2);
		n += line;
		pad -= line;
	}
	memcpy(buf + n, last, sizeof(last) - 1);
	n += sizeof(last) - 1;
	cr_assert_eq(n, head_len);
	memcpy(buf + n, "trailing", 8);
	f.len = n + 8;
	r = check_fixture_stride(&f, 1499);
	if (ok) {
		cr_assert_str_eq(r->evs, "HM");
		cr_assert_str_eq(r->req[0].host, "end");
		cr_assert_eq(r->evpos[1], head_len);
	} else {
		cr_assert_str_eq(r->evs, "E");
		cr_assert_eq(r->evpos[0], CRD_HTTP1_MAX_HEAD, "error right at the limit");
	}
	free(r);
	free(buf);
}

Test(http1_error, head_size_limit)
{
	expect_head_size(30 * 1024, 1);
	expect_head_size(CRD_HTTP1_MAX_HEAD, 1);
	expect_head_size(CRD_HTTP1_MAX_HEAD + 1, 0);
	expect_head_size(70 * 1024, 0);
}

Test(http1_error, oversize_head_no_newline)
{
	/* A stream that never ends its head (binary, no spaces) fails once it
	 * exceeds the limit, even as one big write. */
	size_t len = CRD_HTTP1_MAX_HEAD + 100;
	char *buf = malloc(len);
	struct crd_http1_parser p;
	struct crd_http_req req;
	size_t used;

	cr_assert_not_null(buf);
	memcpy(buf, "GET /", 5);
	memset(buf + 5, 'a', len - 5);
	crd_http1_init(&p, CRD_HTTP1_REQUEST);
	crd_http1_begin_request(&p, &req);
	cr_assert_eq(crd_http1_feed(&p, buf, len, &used), CRD_HTTP1_ERROR);
	cr_assert_eq(req.flags, CRD_REQ_TRUNCATED);
	free(buf);
}

Test(http1_error, chunk_line_limit)
{
	size_t len = 2 * CRD_HTTP1_MAX_HEAD;
	char *buf = malloc(len);
	struct crd_http1_parser p;
	struct crd_http_req req;
	size_t used;
	int n;

	cr_assert_not_null(buf);
	n = sprintf(buf, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;");
	memset(buf + n, 'x', len - (size_t)n);
	crd_http1_init(&p, CRD_HTTP1_REQUEST);
	crd_http1_begin_request(&p, &req);
	cr_assert_eq(crd_http1_feed(&p, buf, len, &used), CRD_HTTP1_HEAD_DONE);
	cr_assert_eq(crd_http1_feed(&p, buf + used, len - used, &used), CRD_HTTP1_ERROR);
	free(buf);
}

Test(http1_error, trailer_section_limit)
{
	size_t len = 2 * CRD_HTTP1_MAX_HEAD;
	char *buf = malloc(len);
	struct crd_http1_parser p;
	struct crd_http_req req;
	size_t used;
	int n;

	cr_assert_not_null(buf);
	n = sprintf(buf, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n");
	memset(buf + n, 'x', len - (size_t)n);
	crd_http1_init(&p, CRD_HTTP1_REQUEST);
	crd_http1_begin_request(&p, &req);
	cr_assert_eq(crd_http1_feed(&p, buf, len, &used), CRD_HTTP1_HEAD_DONE);
	cr_assert_eq(crd_http1_feed(&p, buf + used, len - used, &used), CRD_HTTP1_ERROR);
	free(buf);
}

/* The head limit and the chunk-line/trailer limit are separate budgets. */
Test(http1_error, big_head_then_big_trailers)
{
	size_t cap = 2 * CRD_HTTP1_MAX_HEAD, n = 0;
	char *buf = malloc(cap);
	struct fx f = {"big_head_big_trailers", CRD_HTTP1_REQUEST, buf, 0, NULL};
	struct result *r;

	cr_assert_not_null(buf);
	n += (size_t)sprintf(buf, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n");
	while (n < 60000)
		n += (size_t)sprintf(buf + n, "X-Pad: %0990d\r\n", 0);
	n += (size_t)sprintf(buf + n, "\r\n1;ext=%05000d\r\nx\r\n0\r\n", 0);
	while (n < 120000)
		n += (size_t)sprintf(buf + n, "X-Trailer: %0990d\r\n", 0);
	n += (size_t)sprintf(buf + n, "\r\n");
	f.len = n;
	r = check_fixture_stride(&f, 4999);
	cr_assert_str_eq(r->evs, "HM");
	cr_assert_eq(r->req[0].body_size, 1);
	cr_assert_eq(r->evpos[1], n);
	free(r);
	free(buf);
}

Test(http1_error, sticky_and_misuse)
{
	struct crd_http1_parser p;
	struct crd_http_req req;
	size_t used = 99;

	/* No message begun: bytes are a caller bug, len 0 is fine. */
	crd_http1_init(&p, CRD_HTTP1_REQUEST);
	cr_assert_eq(crd_http1_idle(&p), 1);
	cr_assert_eq(crd_http1_feed(&p, NULL, 0, &used), CRD_HTTP1_NEED_MORE);
	cr_assert_eq(used, 0);
	cr_assert_eq(crd_http1_feed(&p, "GET", 3, &used), CRD_HTTP1_ERROR);

	crd_http1_init(&p, CRD_HTTP1_REQUEST);
	crd_http1_begin_request(&p, &req);
	cr_assert_eq(crd_http1_feed(&p, "\x16\x03", 2, &used), CRD_HTTP1_ERROR);
	cr_assert_eq(crd_http1_idle(&p), 0);
	cr_assert_eq(crd_http1_feed(&p, "GET / HTTP/1.1\r\n\r\n", 18, &used), CRD_HTTP1_ERROR);
	cr_assert_eq(used, 0);
	cr_assert_eq(crd_http1_eof(&p), CRD_HTTP1_ERROR);
	/* Sticky across begin: the stream is not HTTP. */
	crd_http1_begin_request(&p, &req);
	cr_assert_eq(crd_http1_feed(&p, "GET / HTTP/1.1\r\n\r\n", 18, &used), CRD_HTTP1_ERROR);
	crd_http1_init(&p, CRD_HTTP1_REQUEST);
	crd_http1_begin_request(&p, &req);
	cr_assert_eq(crd_http1_feed(&p, "GET / HTTP/1.1\r\n\r\n", 18, &used), CRD_HTTP1_HEAD_DONE);

	/* The wrong begin for the direction (no *req to fill). */
	crd_http1_init(&p, CRD_HTTP1_REQUEST);
	crd_http1_begin_response(&p, 0);
	cr_assert_eq(crd_http1_feed(&p, "GET / HTTP/1.1\r\n\r\n", 18, &used), CRD_HTTP1_ERROR);
	crd_http1_init(&p, CRD_HTTP1_RESPONSE);
	crd_http1_begin_request(&p, &req);
	cr_assert_eq(crd_http1_feed(&p, "HTTP/1.1 200 OK\r\n\r\n", 19, &used), CRD_HTTP1_ERROR);
}

/* ---- API contract ---- */

Test(http1_api, bodiless_msg_done_on_next_call)
{
	static const char get[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";
	struct crd_http1_parser p;
	struct crd_http_req req;
	size_t used;

	crd_http1_init(&p, CRD_HTTP1_REQUEST);
	crd_http1_begin_request(&p, &req);
	cr_assert_eq(crd_http1_feed(&p, get, sizeof(get) - 1, &used), CRD_HTTP1_HEAD_DONE);
	cr_assert_eq(used, sizeof(get) - 1);
	cr_assert_str_eq(req.host, "127.0.0.1:8080", "head fields final at HEAD_DONE");
	cr_assert_eq(crd_http1_idle(&p), 0);
	cr_assert_eq(crd_http1_feed(&p, NULL, 0, &used), CRD_HTTP1_MSG_DONE);
	cr_assert_eq(used, 0);
	cr_assert_eq(crd_http1_idle(&p), 1);
	cr_assert_eq(crd_http1_feed(&p, NULL, 0, &used), CRD_HTTP1_NEED_MORE);
}

Test(http1_api, stops_before_body_and_next_message)
{
	static const char two[] =
	    "POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\n\r\n";
	const size_t head = strlen("POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\n");
	struct crd_http1_parser p;
	struct crd_http_req req;
	size_t used;

	crd_http1_init(&p, CRD_HTTP1_REQUEST);
	crd_http1_begin_request(&p, &req);
	cr_assert_eq(crd_http1_feed(&p, two, sizeof(two) - 1, &used), CRD_HTTP1_HEAD_DONE);
	cr_assert_eq(used, head);
	cr_assert_eq(req.body_size, 0);
	cr_assert_eq(crd_http1_feed(&p, two + head, sizeof(two) - 1 - head, &used),
		     CRD_HTTP1_MSG_DONE);
	cr_assert_eq(used, 3);
	cr_assert_eq(req.body_size, 3);
	cr_assert_eq(crd_http1_feed(&p, two + head + 3, 3, &used), CRD_HTTP1_ERROR,
		     "not begun: caller bug");
}

Test(http1_api, eof_cases)
{
	struct crd_http1_parser p;
	struct crd_http_req req;
	size_t used;

	/* Cut mid-head. */
	crd_http1_init(&p, CRD_HTTP1_REQUEST);
	crd_http1_begin_request(&p, &req);
	cr_assert_eq(crd_http1_feed(&p, "GET / HT", 8, &used), CRD_HTTP1_NEED_MORE);
	cr_assert_eq(crd_http1_idle(&p), 0);
	cr_assert_eq(crd_http1_eof(&p), CRD_HTTP1_ERROR);

	/* Only empty lines: idle. (The error above is sticky until init.) */
	crd_http1_init(&p, CRD_HTTP1_REQUEST);
	crd_http1_begin_request(&p, &req);
	cr_assert_eq(crd_http1_feed(&p, "\r\n", 2, &used), CRD_HTTP1_NEED_MORE);
	cr_assert_eq(crd_http1_idle(&p), 1);
	cr_assert_eq(crd_http1_eof(&p), CRD_HTTP1_NEED_MORE);

	/* Head done, bodiless, caller closes before the MSG_DONE call. */
	crd_http1_init(&p, CRD_HTTP1_RESPONSE);
	crd_http1_begin_response(&p, 0);
	cr_assert_eq(crd_http1_feed(&p, "HTTP/1.1 204 \r\n\r\n", 17, &used), CRD_HTTP1_HEAD_DONE);
	cr_assert_eq(crd_http1_eof(&p), CRD_HTTP1_MSG_DONE);
	cr_assert_eq(crd_http1_eof(&p), CRD_HTTP1_NEED_MORE);

	/* Cut mid-body. */
	crd_http1_begin_response(&p, 0);
	cr_assert_eq(crd_http1_feed(&p, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", 38, &used),
		     CRD_HTTP1_HEAD_DONE);
	cr_assert_eq(crd_http1_feed(&p, "abc", 3, &used), CRD_HTTP1_NEED_MORE);
	cr_assert_eq(p.resp.body_size, 3);
	cr_assert_eq(crd_http1_eof(&p), CRD_HTTP1_ERROR);

	/* Close-delimited, empty body. */
	crd_http1_init(&p, CRD_HTTP1_RESPONSE);
	crd_http1_begin_response(&p, 0);
	cr_assert_eq(crd_http1_feed(&p, "HTTP/1.1 200 OK\r\n\r\n", 19, &used), CRD_HTTP1_HEAD_DONE);
	cr_assert_eq(crd_http1_feed(&p, NULL, 0, &used), CRD_HTTP1_NEED_MORE);
	cr_assert_eq(p.resp.close_delimited, 1);
	cr_assert_eq(crd_http1_eof(&p), CRD_HTTP1_MSG_DONE);
	cr_assert_eq(p.resp.body_size, 0);
}

/* Bodies sent with sendfile(): counted without being seen. */
Test(http1_api, skip_body)
{
	static const char head[] = "HTTP/1.1 200 OK\r\nContent-Length: 615\r\n\r\n";
	static const char chead[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n267\r\n";
	struct crd_http1_parser p;
	size_t used;

	crd_http1_init(&p, CRD_HTTP1_RESPONSE);
	crd_http1_begin_response(&p, 0);
	cr_assert_eq(crd_http1_skip_body(&p, 0), CRD_HTTP1_NEED_MORE, "nothing: no-op");
	cr_assert_eq(crd_http1_feed(&p, head, sizeof(head) - 1, &used), CRD_HTTP1_HEAD_DONE);
	cr_assert_eq(crd_http1_skip_body(&p, 600), CRD_HTTP1_NEED_MORE);
	cr_assert_eq(crd_http1_skip_body(&p, 15), CRD_HTTP1_MSG_DONE);
	cr_assert_eq(p.resp.body_size, 615);
	cr_assert_eq(crd_http1_idle(&p), 1);

	/* More than the body: the next head went by unseen. */
	crd_http1_begin_response(&p, 0);
	cr_assert_eq(crd_http1_feed(&p, head, sizeof(head) - 1, &used), CRD_HTTP1_HEAD_DONE);
	cr_assert_eq(crd_http1_skip_body(&p, 616), CRD_HTTP1_ERROR);
	cr_assert_eq(crd_http1_feed(&p, "x", 1, &used), CRD_HTTP1_ERROR, "sticky");

	/* Chunk data unseen, framing seen. */
	crd_http1_init(&p, CRD_HTTP1_RESPONSE);
	crd_http1_begin_response(&p, 0);
	cr_assert_eq(crd_http1_feed(&p, chead, sizeof(chead) - 1, &used), CRD_HTTP1_HEAD_DONE);
	cr_assert_eq(crd_http1_feed(&p, chead + used, sizeof(chead) - 1 - used, &used),
		     CRD_HTTP1_NEED_MORE);
	cr_assert_eq(crd_http1_skip_body(&p, 0x267), CRD_HTTP1_NEED_MORE);
	cr_assert_eq(crd_http1_feed(&p, "\r\n0\r\n\r\n", 7, &used), CRD_HTTP1_MSG_DONE);
	cr_assert_eq(p.resp.body_size, 0x267);
	crd_http1_begin_response(&p, 0);
	cr_assert_eq(crd_http1_feed(&p, chead, sizeof(chead) - 1, &used), CRD_HTTP1_HEAD_DONE);
	cr_assert_eq(crd_http1_skip_body(&p, 10), CRD_HTTP1_ERROR, "chunk-size line unseen");

	/* Close-delimited: counted, eof ends it. */
	crd_http1_init(&p, CRD_HTTP1_RESPONSE);
	crd_http1_begin_response(&p, 0);
	cr_assert_eq(crd_http1_feed(&p, "HTTP/1.0 200 OK\r\n\r\n", 19, &used), CRD_HTTP1_HEAD_DONE);
	cr_assert_eq(crd_http1_skip_body(&p, 1000), CRD_HTTP1_NEED_MORE);
	cr_assert_eq(crd_http1_eof(&p), CRD_HTTP1_MSG_DONE);
	cr_assert_eq(p.resp.body_size, 1000);

	/* In the head: lost track. */
	crd_http1_init(&p, CRD_HTTP1_RESPONSE);
	crd_http1_begin_response(&p, 0);
	cr_assert_eq(crd_http1_feed(&p, "HTTP/1.1 200", 12, &used), CRD_HTTP1_NEED_MORE);
	cr_assert_eq(crd_http1_skip_body(&p, 5), CRD_HTTP1_ERROR);
}

Test(http1_api, begin_resets)
{
	struct crd_http1_parser p;
	struct crd_http_req req;
	size_t used;

	memset(&req, 0x5a, sizeof(req));
	crd_http1_init(&p, CRD_HTTP1_REQUEST);
	crd_http1_begin_request(&p, &req);
	cr_assert_eq(req.content_length, -1);
	cr_assert_str_eq(req.method, "");
	cr_assert_str_eq(req.tracestate, "");
	cr_assert_eq(req.flags, 0);

	crd_http1_init(&p, CRD_HTTP1_RESPONSE);
	crd_http1_begin_response(&p, 1);
	cr_assert_eq(crd_http1_feed(&p, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n", 38, &used),
		     CRD_HTTP1_HEAD_DONE);
	cr_assert_eq(crd_http1_feed(&p, NULL, 0, &used), CRD_HTTP1_MSG_DONE);
	crd_http1_begin_response(&p, 0);
	cr_assert_eq(p.resp.status, 0);
	cr_assert_eq(p.resp.content_length, -1);
	cr_assert_eq(p.resp.body_size, 0);
}

Test(http1_api, struct_size)
{
	cr_assert_leq(sizeof(struct crd_http1_parser), 256);
}

/* ---- robustness ---- */

static const struct fx *const fixtures[] = {
    &get_query,	    &post_cl,	 &chunked_req,	&keepalive,    &http10,	     &bare_lf,
    &leading_empty, &tracestate, &xff,		&dup_tp,       &misc,	     &head_resp,
    &resp204,	    &resp304,	 &cont,		&chunked_resp, &close_delim, &te_gzip,
    &te_bad_token,  &switching,	 &lenient_resp, &pipe3,	       &mixed,
};

static uint32_t xorshift(uint32_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

/* Every fixture with a few bytes replaced by syntax-relevant ones (the
 * error and lenient paths): whatever the outcome, it must not depend on
 * the split, and ASan/UBSan builds must stay quiet. Deterministic seed. */
Test(http1_fuzz, mutated_fixtures_split_invariant)
{
	static const char sub[] = "\r\n :;,\t0aF9\x00\x7f\x80-\"Hh/1.";
	struct result *whole = new_result(), *part = new_result();
	uint32_t seed = 0x9e3779b9u;
	char buf[1024];

	for (size_t i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++) {
		const struct fx *f = fixtures[i];
		struct fx g = *f;

		cr_assert_leq(f->len, sizeof(buf));
		g.data = buf;
		for (int m = 0; m < 150; m++) {
			size_t cut;

			memcpy(buf, f->data, f->len);
			for (uint32_t k = 0, nm = 1 + xorshift(&seed) % 3; k < nm; k++)
				buf[xorshift(&seed) % f->len] =
				    sub[xorshift(&seed) % (sizeof(sub) - 1)];
			run_fx(&g, g.len, g.len, whole);
			run_fx(&g, 0, 1, part);
			same(whole, part, f->name, "mutant, byte by byte", (size_t)m);
			cut = xorshift(&seed) % (g.len + 1);
			run_fx(&g, cut, 1 + xorshift(&seed) % 13, part);
			same(whole, part, f->name, "mutant, pieces from", cut);
		}
	}
	free(part);
	free(whole);
}

/* nginx ignores a field whose name is not a token but has no whitespace or
 * CTL ("X.Foo", "{x}", obs-text, even without a colon) and serves the
 * request: so the field is skipped, and the request is still parsed (its
 * Host, its body, the next request). */
static const struct fx junk_names = REQ("junk_names", "POST /j HTTP/1.1\r\n"
						      "X.Foo: 1\r\n"
						      "{x}: 2\r\n"
						      "Content-Length@: 99\r\n"
						      "X\xe9t\xe9: 3\r\n"
						      "@NoColon\r\n"
						      "Host: h\r\n"
						      "Content-Length: 2\r\n"
						      "\r\n"
						      "ok"
						      "GET /next HTTP/1.1\r\n\r\n");

Test(http1_req, invalid_field_names_ignored)
{
	struct result *r = check_fixture(&junk_names);

	cr_assert_str_eq(r->evs, "HMHM");
	cr_assert_str_eq(r->req[0].host, "h");
	cr_assert_eq(r->req[0].content_length, 2);
	cr_assert_eq(r->req[0].body_size, 2);
	cr_assert_str_eq(r->req[1].target, "/next");
	free(r);
	/* still errors: whitespace or a CTL in the name, an empty name */
	REQ_ERROR("GET / HTTP/1.1\r\nX Y: 1\r\n\r\n");
	REQ_ERROR("GET / HTTP/1.1\r\nX\x01Y: 1\r\n\r\n");
	REQ_ERROR("GET / HTTP/1.1\r\nX\x7fY: 1\r\n\r\n");
}
