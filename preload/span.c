/* span.c - the stable HTTP semantic conventions, in one place.
 *
 * Turns a finished struct crd_span into the name, attributes, status and
 * flags every encoder writes (semantic-conventions http-spans.md, v1.26+
 * stable attributes). Runs on the exporter thread only.
 */
#include "span.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "config.h"

/* OTLP Span.flags bits (trace.proto SpanFlags). */
#define CRD_FLAG_SAMPLED       0x01u
#define CRD_FLAG_HAS_IS_REMOTE 0x100u
#define CRD_FLAG_IS_REMOTE     0x200u

/* The methods semantic conventions know; others are reported as _OTHER. */
static const char *const known_methods[] = {"GET",     "HEAD",	  "POST",  "PUT",  "DELETE",
					    "CONNECT", "OPTIONS", "TRACE", "PATCH"};

static int known_method(const char *m)
{
	for (size_t i = 0; i < sizeof(known_methods) / sizeof(known_methods[0]); i++)
		if (!strcmp(m, known_methods[i]))
			return 1;
	return 0;
}

static void add_str(struct crd_span_view *v, const char *key, const char *s, size_t len)
{
	if (v->nattrs < CRD_VIEW_MAX_ATTRS)
		v->attrs[v->nattrs++] =
		    (struct crd_attr){.key = key, .type = CRD_ATTR_STR, .s = s, .len = len};
}

static void add_cstr(struct crd_span_view *v, const char *key, const char *s)
{
	if (s && *s)
		add_str(v, key, s, strlen(s));
}

static void add_int(struct crd_span_view *v, const char *key, int64_t i)
{
	if (v->nattrs < CRD_VIEW_MAX_ATTRS)
		v->attrs[v->nattrs++] = (struct crd_attr){.key = key, .type = CRD_ATTR_INT, .i = i};
}

/* Copy into the view's scratch space; returns the copy (NUL-terminated) or
 * NULL when full. */
static const char *scratch(struct crd_span_view *v, const char *s, size_t len)
{
	char *d;

	if (v->scratch_used + len + 1 > sizeof(v->scratch))
		return NULL;
	d = v->scratch + v->scratch_used;
	memcpy(d, s, len);
	d[len] = 0;
	v->scratch_used += len + 1;
	return d;
}

/* Dotted quad of 4 bytes into out (16 bytes); returns the length. Not
 * inet_ntop: glibc formats IPv4 with sprintf, 900 instructions an address,
 * and every span has two (issue #7). */
static size_t ipv4_text(const uint8_t *p, char *out)
{
	char *o = out;

	for (int i = 0; i < 4; i++) {
		unsigned b = p[i];
		if (b >= 100)
			*o++ = (char)('0' + b / 100);
		if (b >= 10)
			*o++ = (char)('0' + b / 10 % 10);
		*o++ = (char)('0' + b % 10);
		*o++ = '.';
	}
	*--o = 0;
	return (size_t)(o - out);
}

static const char *addr_text(struct crd_span_view *v, const struct crd_addr *a)
{
	char buf[INET6_ADDRSTRLEN];
	const uint8_t *p = a->addr;

	if (a->family == AF_INET)
		return scratch(v, buf, ipv4_text(p, buf));
	if (a->family != AF_INET6)
		return NULL;
	/* IPv4-mapped IPv6 (dual-stack listeners): report the IPv4 form. */
	if (crd_all_zero_bytes(p, 10) && p[10] == 0xff && p[11] == 0xff)
		return scratch(v, buf, ipv4_text(p + 12, buf));
	if (!inet_ntop(AF_INET6, p, buf, sizeof(buf)))
		return NULL;
	return scratch(v, buf, strlen(buf));
}

/* Split "host[:port]" / "[v6]:port" (Host header). */
static void split_host(const char *h, const char **host, size_t *hlen, long *port)
{
	const char *colon;

	*port = -1;
	if (*h == '[') {
		const char *close = strchr(h, ']');
		if (!close) {
			*host = h;
			*hlen = strlen(h);
			return;
		}
		*host = h + 1;
		*hlen = (size_t)(close - h - 1);
		colon = close[1] == ':' ? close + 1 : NULL;
	} else {
		colon = strrchr(h, ':');
		*host = h;
		*hlen = colon ? (size_t)(colon - h) : strlen(h);
	}
	if (colon && colon[1]) {
		long p = 0;
		for (const char *c = colon + 1; *c; c++) {
			if (*c < '0' || *c > '9' || p > 65535) {
				p = -1;
				break;
			}
			p = p * 10 + (*c - '0');
		}
		if (p >= 0 && p <= 65535)
			*port = p;
	}
}

int crd_all_zero_bytes(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

/* ASCII lowercase without the locale (tolower() reads it: not
 * async-signal-safe, and a Turkish locale would break "I"). */
static char low_ascii(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c + ('a' - 'A')) : c;
}

/* Does a query parameter name look secret? Names are compared lowercase,
 * as substrings, with the CRUDDUR_REDACT list (which holds the defaults);
 * X-Amz-* (SigV4 presigned URLs) always. Async-signal-safe: crd_cfg is
 * read-only after load, strstr is on the POSIX list. */
int crd_secret_name(const char *k, size_t n)
{
	char low[64];

	if (n >= sizeof(low))
		n = sizeof(low) - 1;
	for (size_t i = 0; i < n; i++)
		low[i] = low_ascii(k[i]);
	low[n] = 0;
	if (!strncmp(low, "x-amz-", 6))
		return 1;
	for (size_t i = 0; i < crd_cfg.nredact; i++)
		if (strstr(low, crd_cfg.redact[i]))
			return 1;
	return 0;
}

/* Header names whose values are credentials (RFC 9110 Authorization and
 * Proxy-Authorization, RFC 6265 Cookie and Set-Cookie), plus any name the
 * query rules call secret (X-Api-Key, X-Auth-Token, X-Amz-Security-Token).
 * No header is captured today beyond Host, User-Agent, X-Forwarded-For and
 * the trace headers; whoever adds one exports it through this test. */
int crd_secret_header(const char *name)
{
	static const char *const always[] = {"authorization", "proxy-authorization", "cookie",
					     "set-cookie"};
	char low[64];
	size_t n = strlen(name);

	if (n >= sizeof(low))
		n = sizeof(low) - 1;
	for (size_t i = 0; i < n; i++)
		low[i] = low_ascii(name[i]);
	low[n] = 0;
	for (size_t i = 0; i < sizeof(always) / sizeof(always[0]); i++)
		if (!strcmp(low, always[i]))
			return 1;
	return crd_secret_name(name, n);
}

/* Append q (a query string, n bytes) to out with secret-looking values
 * replaced by REDACTED (semantic conventions: url.query / url.full must not
 * carry credentials). Returns the new length, or (size_t)-1 if full. */
static size_t redact_query(char *out, size_t at, size_t cap, const char *q, size_t n)
{
	const char *end = q + n;

	while (q < end) {
		const char *amp = memchr(q, '&', (size_t)(end - q)), *eq;
		const char *stop = amp ? amp : end;
		size_t klen;
		eq = memchr(q, '=', (size_t)(stop - q));
		klen = (size_t)((eq ? eq : stop) - q);
		if (eq && crd_secret_name(q, klen)) {
			if (at + klen + 9 >= cap)
				return (size_t)-1;
			memcpy(out + at, q, klen + 1);
			memcpy(out + at + klen + 1, "REDACTED", 8);
			at += klen + 9;
		} else {
			if (at + (size_t)(stop - q) >= cap)
				return (size_t)-1;
			memcpy(out + at, q, (size_t)(stop - q));
			at += (size_t)(stop - q);
		}
		if (amp) {
			if (at + 1 >= cap)
				return (size_t)-1;
			out[at++] = '&';
		}
		q = amp ? amp + 1 : end;
	}
	return at;
}

size_t crd_redact_target(char *out, size_t cap, const char *t)
{
	const char *auth = strstr(t, "://"), *q, *frag;
	size_t n = 0, k, r;

	if (!cap)
		return 0;
#define PUT(p, len)                                                                                \
	do {                                                                                       \
		k = (len);                                                                         \
		if (n + k >= cap)                                                                  \
			k = cap - 1 - n;                                                           \
		memcpy(out + n, (p), k);                                                           \
		n += k;                                                                            \
	} while (0)
	/* Absolute form (a proxy request, curl's URL): user:password@ goes. */
	if (auth && t[0] != '/' && auth < t + strcspn(t, "/?#")) {
		const char *a = auth + 3, *path = a + strcspn(a, "/?#");
		const char *at_sign = memchr(a, '@', (size_t)(path - a));
		PUT(t, (size_t)(a - t));
		if (at_sign) {
			PUT("REDACTED:REDACTED@", 18);
			a = at_sign + 1;
		}
		t = a;
	}
	q = strchr(t, '?');
	PUT(t, q ? (size_t)(q + 1 - t) : strlen(t));
	if (q) {
		frag = strchr(q + 1, '#');
		r = redact_query(out, n, cap, q + 1, frag ? (size_t)(frag - q - 1) : strlen(q + 1));
		if (r == (size_t)-1) {
			/* No room for the rest: cut it rather than keep a value
			 * that might be secret. */
			out[n] = 0;
			return n;
		}
		n = r;
		if (frag)
			PUT(frag, strlen(frag));
	}
#undef PUT
	out[n] = 0;
	return n;
}

/* Reserve room in the scratch space for a string built in place. */
static char *scratch_room(struct crd_span_view *v, size_t *cap)
{
	*cap = sizeof(v->scratch) - v->scratch_used;
	return v->scratch + v->scratch_used;
}

static const char *scratch_commit(struct crd_span_view *v, size_t len)
{
	char *s = v->scratch + v->scratch_used;
	s[len] = 0;
	v->scratch_used += len + 1;
	return s;
}

/* url.full of a client request: the absolute target as sent (a proxy
 * request, or curl's effective URL), else http://Host + target; user:pass@
 * and secret query values redacted. */
static void add_url_full(struct crd_span_view *v, const struct crd_http_req *req)
{
	const char *t = req->target, *q, *at_sign, *auth;
	size_t cap, n = 0;
	char *o = scratch_room(v, &cap);

#define PUT(p, len)                                                                                \
	do {                                                                                       \
		if (n + (len) >= cap)                                                              \
			return;                                                                    \
		memcpy(o + n, (p), (len));                                                         \
		n += (len);                                                                        \
	} while (0)
	if (strstr(t, "://") && t[0] != '/') {
		auth = strstr(t, "://") + 3;
		const char *path = auth + strcspn(auth, "/?#");
		at_sign = memchr(auth, '@', (size_t)(path - auth));
		PUT(t, (size_t)(auth - t));
		if (at_sign) {
			PUT("REDACTED:REDACTED@", 18);
			auth = at_sign + 1;
		}
		t = auth;
	} else {
		PUT("http://", 7);
		PUT(req->host, strlen(req->host));
	}
	q = strchr(t, '?');
	PUT(t, q ? (size_t)(q + 1 - t) : strlen(t));
	if (q) {
		const char *frag = strchr(q + 1, '#');
		size_t r =
		    redact_query(o, n, cap, q + 1, frag ? (size_t)(frag - q - 1) : strlen(q + 1));
		if (r == (size_t)-1)
			return;
		n = r;
	}
#undef PUT
	add_str(v, "url.full", scratch_commit(v, n), n);
}

static void add_query(struct crd_span_view *v, const char *q)
{
	size_t cap, n;
	char *o = scratch_room(v, &cap);

	n = redact_query(o, 0, cap, q, strlen(q));
	if (n != (size_t)-1 && n)
		add_str(v, "url.query", scratch_commit(v, n), n);
}

static void add_server_address(struct crd_span_view *v, const struct crd_span *s,
			       const struct crd_addr *sock)
{
	const char *host, *a;
	size_t hlen;
	long port;

	if (s->req.host[0]) {
		split_host(s->req.host, &host, &hlen, &port);
		if (hlen)
			add_str(v, "server.address", host, hlen);
		add_int(v, "server.port", port >= 0 ? port : sock->port);
	} else if ((a = addr_text(v, sock))) {
		add_cstr(v, "server.address", a);
		add_int(v, "server.port", sock->port);
	}
}

static void add_status(struct crd_span_view *v, const struct crd_span *s, int error_from)
{
	char code[8];
	int n;

	if (s->status) {
		add_int(v, "http.response.status_code", s->status);
		if (s->end_reason == CRD_END_OK && s->kind == CRD_KIND_SERVER)
			add_int(v, "http.response.body.size", (int64_t)s->resp_body_size);
	}
	if (s->error_type[0]) {
		add_cstr(v, "error.type", s->error_type);
		v->status_code = CRD_STATUS_ERROR;
	} else if (s->status >= error_from) {
		n = snprintf(code, sizeof(code), "%u", s->status);
		add_cstr(v, "error.type", scratch(v, code, (size_t)n));
		v->status_code = CRD_STATUS_ERROR;
	} else if (!s->status && s->kind == CRD_KIND_CLIENT) {
		/* The connection ended before any answer: a transport failure. */
		add_cstr(v, "error.type", "connection_closed");
		v->status_code = CRD_STATUS_ERROR;
	}
}

size_t crd_span_view_pack(struct crd_span_view *v)
{
	size_t n = v->nattrs < CRD_VIEW_MAX_ATTRS ? v->nattrs : CRD_VIEW_MAX_ATTRS;
	const char *from = v->scratch, *end = v->scratch + v->scratch_used;
	char *to = (char *)&v->attrs[n];
	size_t d = (size_t)(from - to); /* the scratch moves down by d */

#define CRD_MOVE(p)                                                                                \
	do {                                                                                       \
		if ((p) && (const char *)(p) >= from && (const char *)(p) < end)                   \
			(p) -= d;                                                                  \
	} while (0)
	CRD_MOVE(v->name);
	CRD_MOVE(v->trace_state);
	CRD_MOVE(v->status_message);
	for (size_t i = 0; i < n; i++) {
		CRD_MOVE(v->attrs[i].key);
		CRD_MOVE(v->attrs[i].s);
	}
#undef CRD_MOVE
	memmove(to, from, v->scratch_used);
	return (offsetof(struct crd_span_view, attrs) + n * sizeof(struct crd_attr) +
		v->scratch_used + 7) &
	       ~(size_t)7;
}

void crd_span_view(const struct crd_span *s, struct crd_span_view *v)
{
	const struct crd_http_req *req = &s->req;
	const char *target = req->target, *q, *a;
	int known = known_method(req->method);

	v->nattrs = 0;
	v->scratch_used = 0;
	v->trace_id = s->trace_id;
	v->span_id = s->span_id;
	v->parent_span_id = crd_all_zero_bytes(s->parent_span_id, 8) ? NULL : s->parent_span_id;
	v->trace_state = req->tracestate;
	v->kind = s->kind;
	v->start_ns = s->start_ns;
	v->end_ns = s->end_ns > s->start_ns ? s->end_ns : s->start_ns;
	v->flags = CRD_FLAG_HAS_IS_REMOTE | (s->parent_remote ? CRD_FLAG_IS_REMOTE : 0) |
		   (s->sampled ? CRD_FLAG_SAMPLED : 0);
	v->status_message = "";
	v->status_code = CRD_STATUS_UNSET;
	/* Name: "{method}"; no http.route is known from bytes alone. */
	v->name = known ? req->method : "HTTP";

	add_cstr(v, "http.request.method", known ? req->method : "_OTHER");
	if (!known)
		add_cstr(v, "http.request.method_original", req->method);

	if (s->kind == CRD_KIND_CLIENT) {
		/* HTTP client conventions: status ERROR from 400 on. */
		add_url_full(v, req);
		add_server_address(v, s, &s->peer);
		if ((a = addr_text(v, &s->peer))) {
			add_cstr(v, "network.peer.address", a);
			add_int(v, "network.peer.port", s->peer.port);
		}
		if (s->proto_version[0])
			add_cstr(v, "network.protocol.version", s->proto_version);
		else if (s->status)
			add_cstr(v, "network.protocol.version", req->version_minor ? "1.1" : "1.0");
		add_status(v, s, 400);
		return;
	}

	/* Absolute-form targets (proxies): the path starts after the
	 * authority. */
	if (!strncmp(target, "http://", 7) || !strncmp(target, "https://", 8)) {
		const char *slash = strchr(strstr(target, "//") + 2, '/');
		target = slash ? slash : "/";
	}
	q = strchr(target, '?');
	add_str(v, "url.path", target, q ? (size_t)(q - target) : strlen(target));
	if (q && q[1])
		add_query(v, q + 1);
	add_cstr(v, "url.scheme", "http");
	add_server_address(v, s, &s->local);

	a = addr_text(v, &s->peer);
	if (req->xff[0])
		add_cstr(v, "client.address", req->xff);
	else if (a)
		add_cstr(v, "client.address", a);
	if (a) {
		add_cstr(v, "network.peer.address", a);
		add_int(v, "network.peer.port", s->peer.port);
	}
	add_cstr(v, "network.protocol.version", req->version_minor ? "1.1" : "1.0");
	add_cstr(v, "user_agent.original", req->user_agent);
	if (req->content_length >= 0 || (req->flags & CRD_REQ_CHUNKED))
		add_int(v, "http.request.body.size", (int64_t)req->body_size);
	/* HTTP server conventions: status ERROR for 5xx only. */
	add_status(v, s, 500);
}
