/* Unit tests: trace header injection (scan, format, splice) and the
 * client span view (url.full redaction). */
#include <criterion/criterion.h>
#include <sys/socket.h>
#include <string.h>

#include "../../preload/config.h"
#include "../../preload/inject.h"
#include "../../preload/span.h"

static const uint8_t TID[16] = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
				0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36};
static const uint8_t SID[8] = {0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7};

static const char REQ[] = "GET /x?y=1 HTTP/1.1\r\nHost: a.example\r\nAccept: */*\r\n\r\nBODY";

/* Flatten an iovec array. */
static size_t flatten(const struct iovec *v, int n, char *out)
{
	size_t len = 0;
	for (int i = 0; i < n; i++) {
		memcpy(out + len, v[i].iov_base, v[i].iov_len);
		len += v[i].iov_len;
	}
	return len;
}

Test(inject, format_headers)
{
	char out[CRD_INJECT_MAX + 1];
	size_t n = crd_inject_format(out, TID, SID, 1, "k=v", 1, 1);
	out[n] = 0;
	cr_assert_str_eq(out, "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n"
			      "tracestate: k=v\r\n"
			      "X-Amzn-Trace-Id: Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;"
			      "Parent=00f067aa0ba902b7;Sampled=1\r\n");
	n = crd_inject_format(out, TID, SID, 0, "", 1, 0);
	out[n] = 0;
	cr_assert_str_eq(out,
			 "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00\r\n");
}

Test(inject, scan_accepts_complete_heads_split_anywhere)
{
	size_t len = strlen(REQ);
	/* Every split of the buffer into two iovecs gives the same scan. */
	for (size_t cut = 0; cut <= len; cut++) {
		struct iovec v[2] = {{(void *)REQ, cut}, {(void *)(REQ + cut), len - cut}};
		struct crd_inject_scan sc;
		cr_assert_eq(crd_inject_scan(v, 2, &sc), 1, "cut %zu", cut);
		cr_assert_eq(sc.line_end, strlen("GET /x?y=1 HTTP/1.1\r\n"));
		cr_assert_eq(sc.head_end, len - 4);
		cr_assert(!sc.has_traceparent && !sc.has_tracestate && !sc.has_xamzn);
	}
}

Test(inject, scan_rejects_incomplete_or_not_http)
{
	static const char *const bad[] = {
		"GET /x HTTP/1.1\r\nHost: a\r\n",          /* head not complete */
		"GET /x HTTP/1.1\r\n",                     /* headers to come */
		"GET /x HTTP/2.0\r\nHost: a\r\n\r\n",      /* not HTTP/1.x */
		"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03", /* TLS ClientHello */
		"GET  HTTP/1.1\r\n\r\n",                   /* empty target */
		"G(T / HTTP/1.1\r\n\r\n",                  /* not a token */
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",        /* h2 preface */
		"",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct iovec v = {(void *)bad[i], strlen(bad[i])};
		struct crd_inject_scan sc;
		cr_assert_eq(crd_inject_scan(&v, 1, &sc), 0, "accepted #%zu", i);
	}
}

Test(inject, scan_sees_existing_headers)
{
	const char *r = "POST / HTTP/1.0\nTraceParent: 00-x\nTRACESTATE: a=b\n"
			"x-amzn-trace-id: Root=1\n\n";
	struct iovec v = {(void *)r, strlen(r)};
	struct crd_inject_scan sc;
	cr_assert_eq(crd_inject_scan(&v, 1, &sc), 1);
	cr_assert(sc.has_traceparent && sc.has_tracestate && sc.has_xamzn);
	cr_assert_eq(sc.line_end, strlen("POST / HTTP/1.0\n"));
}

Test(inject, splice_every_position_and_split)
{
	const char *ins = "traceparent: X\r\n";
	size_t len = strlen(REQ), il = strlen(ins);
	char flat[256], want[256];

	for (size_t cut = 0; cut <= len; cut++) {
		for (size_t at = 0; at <= len; at++) {
			struct iovec in[2] = {{(void *)REQ, cut}, {(void *)(REQ + cut), len - cut}};
			struct iovec out[5];
			int n = crd_iov_splice(in, 2, at, ins, il, out, 5);
			cr_assert(n > 0);
			size_t fl = flatten(out, n, flat);
			memcpy(want, REQ, at);
			memcpy(want + at, ins, il);
			memcpy(want + at + il, REQ + at, len - at);
			cr_assert_eq(fl, len + il);
			cr_assert(!memcmp(flat, want, fl), "cut %zu at %zu", cut, at);
		}
	}
	/* Too little room is refused, never overrun. */
	struct iovec in[2] = {{(void *)REQ, 3}, {(void *)(REQ + 3), len - 3}};
	struct iovec out[2];
	cr_assert_eq(crd_iov_splice(in, 2, 5, ins, il, out, 2), -1);
}

/* ---- client span view ---- */

static const struct crd_attr *attr(const struct crd_span_view *v, const char *key)
{
	for (size_t i = 0; i < v->nattrs; i++)
		if (!strcmp(v->attrs[i].key, key))
			return &v->attrs[i];
	return NULL;
}

static void assert_attr(const struct crd_span_view *v, const char *key, const char *want)
{
	const struct crd_attr *a = attr(v, key);
	cr_assert_not_null(a, "missing %s", key);
	cr_assert(a->len == strlen(want) && !memcmp(a->s, want, a->len), "%s: '%.*s' want '%s'",
		  key, (int)a->len, a->s, want);
}

static void client_span(struct crd_span *s, const char *target, const char *host)
{
	memset(s, 0, sizeof(*s));
	s->kind = CRD_KIND_CLIENT;
	s->sampled = 1;
	strcpy(s->req.method, "GET");
	strcpy(s->req.target, target);
	strcpy(s->req.host, host);
	s->req.version_minor = 1;
	s->peer.family = AF_INET;
	s->peer.port = 8080;
	s->peer.addr[0] = 127;
	s->peer.addr[3] = 1;
	s->status = 200;
}

Test(client_view, url_full_redaction)
{
	static const struct {
		const char *target, *host, *want;
	} cases[] = {
		{"/a?token=t0k&x=1", "svc:8080", "http://svc:8080/a?token=REDACTED&x=1"},
		{"/a", "svc", "http://svc/a"},
		{"https://user:pw@api.example/p?AWSAccessKeyId=AK&Signature=s&X-Amz-Date=1&q=ok#frag",
		 "api.example",
		 "https://REDACTED:REDACTED@api.example/p?AWSAccessKeyId=REDACTED&Signature=REDACTED"
		 "&X-Amz-Date=REDACTED&q=ok"},
		{"/p?password=&flag", "h", "http://h/p?password=REDACTED&flag"},
		{"http://h/p?api_key=1&session_id=2&page=3", "h",
		 "http://h/p?api_key=REDACTED&session_id=REDACTED&page=3"},
	};
	crd_config_load();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct crd_span s;
		struct crd_span_view v;
		client_span(&s, cases[i].target, cases[i].host);
		crd_span_view(&s, &v);
		assert_attr(&v, "url.full", cases[i].want);
	}
}

Test(client_view, attributes_and_errors)
{
	struct crd_span s;
	struct crd_span_view v;

	crd_config_load();
	client_span(&s, "/a", "svc.internal:9000");
	crd_span_view(&s, &v);
	cr_assert_eq(v.kind, CRD_KIND_CLIENT);
	cr_assert_str_eq(v.name, "GET");
	assert_attr(&v, "server.address", "svc.internal");
	cr_assert_eq(attr(&v, "server.port")->i, 9000);
	assert_attr(&v, "network.peer.address", "127.0.0.1");
	cr_assert_eq(v.status_code, CRD_STATUS_UNSET);
	cr_assert_null(attr(&v, "error.type"));
	cr_assert_null(attr(&v, "url.path"), "server-only attribute on a client span");

	s.status = 404; /* client: 4xx is an error */
	crd_span_view(&s, &v);
	assert_attr(&v, "error.type", "404");
	cr_assert_eq(v.status_code, CRD_STATUS_ERROR);

	s.status = 0; /* closed before any answer */
	crd_span_view(&s, &v);
	assert_attr(&v, "error.type", "connection_closed");
	cr_assert_eq(v.status_code, CRD_STATUS_ERROR);

	strcpy(s.error_type, "CURLE_COULDNT_CONNECT");
	crd_span_view(&s, &v);
	assert_attr(&v, "error.type", "CURLE_COULDNT_CONNECT");

	/* Server spans redact url.query the same way. */
	client_span(&s, "/a?secret=1&b=2", "h");
	s.kind = CRD_KIND_SERVER;
	crd_span_view(&s, &v);
	assert_attr(&v, "url.query", "secret=REDACTED&b=2");
}

/* Regressions found by tests/fuzz/fuzz_tracectx.c and fuzz_inject.c. */
Test(inject, fuzz_tracestate_with_cr_or_lf_is_not_sent)
{
	char out[CRD_INJECT_MAX + 1];
	/* The parser keeps a bare CR inside an incoming value. */
	static const char *const bad[] = {"a=b\rX-Injected: 1", "a=b\r\nX-Injected: 1", "a=\x7f",
					  "a=\xc3\xa9"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t n = crd_inject_format(out, TID, SID, 1, bad[i], 1, 0);
		out[n] = 0;
		cr_assert_str_eq(out,
				 "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n",
				 "tracestate #%zu sent", i);
	}
	size_t n = crd_inject_format(out, TID, SID, 1, "a=b ,\tc=d", 1, 0);
	out[n] = 0;
	cr_assert(strstr(out, "\r\ntracestate: a=b ,\tc=d\r\n"), "a valid one with OWS is kept");
}

Test(inject, fuzz_scan_rejects_what_a_server_would)
{
	static const struct {
		const char *s;
		size_t len;
	} bad[] = {
#define B(lit) {lit, sizeof(lit) - 1}
		B("GET / HTTP/1.0\nhost:\nX-AMZN-TRACE-ID\0\0\v: Root=1\n\n"), /* name with NUL */
		B("GET / HTTP/1.1\r\ntraceparent\0x: 1\r\n\r\n"),
		B("GET / HTTP/1.1\r\nA: 1\r\n\rX-Amzn-Trace-Id:\n\r\n"), /* bare CR before a name */
		B("GET / HTTP/1.0\0\n\n"),				   /* NUL in the version */
		B("GET / HTTP/1.1\r\nX Y: 1\r\n\r\n"),			   /* space in a name */
		B("GET / HTTP/1.1\r\n: empty\r\n\r\n"),			   /* empty name */
#undef B
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct iovec v = {(void *)bad[i].s, bad[i].len};
		struct crd_inject_scan sc;
		cr_assert_eq(crd_inject_scan(&v, 1, &sc), 0, "accepted #%zu", i);
	}
	/* A folded line stays part of the previous value, as before. */
	const char *fold = "GET / HTTP/1.1\r\nX-A: 1\r\n traceparent: 2\r\n\r\n";
	struct iovec v = {(void *)fold, strlen(fold)};
	struct crd_inject_scan sc;
	cr_assert_eq(crd_inject_scan(&v, 1, &sc), 1);
	cr_assert_eq(sc.has_traceparent, 0);
	cr_assert_eq(sc.head_end, strlen(fold));
}
