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

/* OTLP Span.flags bits (trace.proto SpanFlags). */
#define CRD_FLAG_SAMPLED 0x01u
#define CRD_FLAG_HAS_IS_REMOTE 0x100u
#define CRD_FLAG_IS_REMOTE 0x200u

/* The methods semantic conventions know; others are reported as _OTHER. */
static const char *const known_methods[] = {"GET",     "HEAD",    "POST",  "PUT",  "DELETE",
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
		v->attrs[v->nattrs++] = (struct crd_attr){.key = key, .type = CRD_ATTR_STR, .s = s, .len = len};
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

static const char *addr_text(struct crd_span_view *v, const struct crd_addr *a)
{
	char buf[INET6_ADDRSTRLEN];
	const uint8_t *p = a->addr;

	if (a->family != AF_INET && a->family != AF_INET6)
		return NULL;
	/* IPv4-mapped IPv6 (dual-stack listeners): report the IPv4 form. */
	if (a->family == AF_INET6 && crd_all_zero_bytes(p, 10) && p[10] == 0xff && p[11] == 0xff) {
		if (!inet_ntop(AF_INET, p + 12, buf, sizeof(buf)))
			return NULL;
	} else if (!inet_ntop(a->family, p, buf, sizeof(buf))) {
		return NULL;
	}
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

void crd_span_view(const struct crd_span *s, struct crd_span_view *v)
{
	const struct crd_http_req *req = &s->req;
	const char *target = req->target, *q, *host, *a;
	size_t hlen;
	long port;
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
	v->status_code = s->status >= 500 ? CRD_STATUS_ERROR : CRD_STATUS_UNSET;
	/* Name: "{method}"; no http.route is known from bytes alone. */
	v->name = known ? req->method : "HTTP";

	add_cstr(v, "http.request.method", known ? req->method : "_OTHER");
	if (!known)
		add_cstr(v, "http.request.method_original", req->method);

	/* Absolute-form targets (proxies): the path starts after the
	 * authority. */
	if (!strncmp(target, "http://", 7) || !strncmp(target, "https://", 8)) {
		const char *slash = strchr(strstr(target, "//") + 2, '/');
		target = slash ? slash : "/";
	}
	q = strchr(target, '?');
	add_str(v, "url.path", target, q ? (size_t)(q - target) : strlen(target));
	if (q && q[1])
		add_cstr(v, "url.query", q + 1);
	add_cstr(v, "url.scheme", "http");

	if (req->host[0]) {
		split_host(req->host, &host, &hlen, &port);
		if (hlen)
			add_str(v, "server.address", host, hlen);
		add_int(v, "server.port", port >= 0 ? port : s->local.port);
	} else if ((a = addr_text(v, &s->local))) {
		add_cstr(v, "server.address", a);
		add_int(v, "server.port", s->local.port);
	}

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

	if (s->status) {
		add_int(v, "http.response.status_code", s->status);
		if (s->end_reason == CRD_END_OK)
			add_int(v, "http.response.body.size", (int64_t)s->resp_body_size);
		if (s->status >= 500) {
			char code[8];
			int n = snprintf(code, sizeof(code), "%u", s->status);
			add_cstr(v, "error.type", scratch(v, code, (size_t)n));
		}
	}
}
