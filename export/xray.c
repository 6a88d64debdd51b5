/* xray.c - the AWS X-Ray sink: segment documents over UDP to the daemon.
 *
 * Document fields (X-Ray developer guide, "AWS X-Ray segment documents"):
 * name, id, trace_id, parent_id, start_time/end_time (epoch seconds with
 * microseconds), origin, http.request {method, url, user_agent, client_ip,
 * x_forwarded_for}, http.response {status, content_length}, error (4xx),
 * throttle (429), fault (5xx), aws.xray {sdk, sdk_version}, service
 * {version}, annotations {service, pid}, metadata {otel: {resource}},
 * subsegments (namespace "remote" for outgoing HTTP calls).
 *
 * Transport: one datagram per document, staged and sent CRD_XRAY_MMSG at a
 * time with sendmmsg(MSG_DONTWAIT) on a socket connect()ed (through the
 * real-symbol table) to the daemon; a full socket buffer is
 * waited for briefly (CRD_XRAY_SEND_WAIT_MS) and never past the deadline.
 * A daemon host name is resolved on the exporter thread, again every
 * CRD_XRAY_RESOLVE_S (containers move). Exporter thread only, with the I/O
 * guard set: our socket is never instrumented.
 */
#include "xray.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "../preload/config.h"
#include "../preload/ids.h"
#include "../preload/log.h"
#include "../preload/real.h"
#include "../preload/tracectx.h"
#include "../preload/version.h"
#include "../preload/xray.h"
#include "otlp_enc.h"

/* Longest wait for room in the socket buffer, per datagram (ms). */
#define CRD_XRAY_SEND_WAIT_MS 50
/* Datagrams per sendmmsg, and the staging room for them (a document is
 * at most 64 KB; most are about 1 KB). */
#define CRD_XRAY_MMSG  64
#define CRD_XRAY_STAGE (256 * 1024)
/* Re-resolve a daemon host name this often (s); retry a failed
 * resolution at most this often (s). */
#define CRD_XRAY_RESOLVE_S	 60
#define CRD_XRAY_RESOLVE_RETRY_S 10
/* Send failures are reported at most this often (s). */
#define CRD_XRAY_WARN_EVERY_S 30

/* ---- the JSON writer: a bounded cursor (like otlp_json.c's) ---- */

struct xw {
	char *p, *end;
	int err;
};

static void xw_put(struct xw *w, const char *s, size_t n)
{
	if (w->err || (size_t)(w->end - w->p) < n) {
		w->err = 1;
		return;
	}
	memcpy(w->p, s, n);
	w->p += n;
}

#define xw_lit(w, s) xw_put((w), "" s, sizeof(s) - 1)

static void xw_str(struct xw *w, const char *s, size_t n)
{
	ssize_t k;

	if (w->err)
		return;
	/* crd_json_string wants room for its NUL: the cursor's end is always
	 * at least one byte before the buffer's end. */
	k = crd_json_string(w->p, (size_t)(w->end - w->p) + 1, s, n);
	if (k < 0 || w->p + k > w->end) {
		w->err = 1;
		return;
	}
	w->p += k;
}

static void xw_cstr(struct xw *w, const char *s)
{
	xw_str(w, s, strlen(s));
}

/* Decimal digits of v into the end of b[24]; returns the first digit.
 * (snprintf was a measurable share of the exporter's time per span.) */
static char *u64_digits(char b[24], uint64_t v)
{
	char *p = b + 24;

	do
		*--p = (char)('0' + v % 10);
	while (v /= 10);
	return p;
}

static void xw_u64(struct xw *w, uint64_t v)
{
	char b[24], *p = u64_digits(b, v);
	xw_put(w, p, (size_t)(b + 24 - p));
}

static void xw_i64(struct xw *w, int64_t v)
{
	if (v < 0) {
		xw_lit(w, "-");
		xw_u64(w, (uint64_t)0 - (uint64_t)v);
	} else {
		xw_u64(w, (uint64_t)v);
	}
}

static void xw_hex(struct xw *w, const uint8_t *id, size_t n)
{
	char h[33];

	crd_hex(h, id, n);
	xw_lit(w, "\"");
	xw_put(w, h, 2 * n);
	xw_lit(w, "\"");
}

/* Epoch seconds with microseconds, exactly: 1700000000.123456. */
static void xw_time(struct xw *w, uint64_t ns)
{
	char b[24], *p = u64_digits(b, ns % 1000000000u / 1000u + 1000000u);

	xw_u64(w, ns / 1000000000u);
	xw_lit(w, ".");
	xw_put(w, p + 1, 6); /* the microseconds, zero-padded by the leading 1 */
}

/* ---- what the view says ---- */

static const struct crd_attr *vattr(const struct crd_span_view *v, const char *key)
{
	/* Keys are string literals, usually merged by the linker: the
	 * pointer test hits first; the first byte spares most strcmp calls. */
	for (size_t i = 0; i < v->nattrs; i++) {
		const char *k = v->attrs[i].key;
		if (k == key || (k[0] == key[0] && !strcmp(k, key)))
			return &v->attrs[i];
	}
	return NULL;
}

static void xw_attr_str(struct xw *w, const struct crd_attr *a)
{
	xw_str(w, a->s, a->len);
}

/* error / throttle / fault from the status (X-Ray: error for 4xx,
 * throttle for 429, fault for 5xx); a client call that got no answer is a
 * fault with its reason as the cause. */
static void write_flags(struct xw *w, const struct crd_span *s, const struct crd_span_view *v)
{
	const struct crd_attr *et = vattr(v, "error.type");

	if (s->status >= 400 && s->status < 500)
		xw_lit(w, ",\"error\":true");
	if (s->status == 429)
		xw_lit(w, ",\"throttle\":true");
	if (s->status >= 500)
		xw_lit(w, ",\"fault\":true");
	if (s->kind == CRD_KIND_CLIENT && (s->error_type[0] || !s->status) && et) {
		uint8_t xid[8];
		/* An exception id unique in the trace: the span id, flipped. */
		for (int i = 0; i < 8; i++)
			xid[i] = (uint8_t)~s->span_id[7 - i];
		if (s->status < 500)
			xw_lit(w, ",\"fault\":true");
		xw_lit(w, ",\"cause\":{\"exceptions\":[{\"id\":");
		xw_hex(w, xid, 8);
		xw_lit(w, ",\"type\":");
		xw_attr_str(w, et);
		xw_lit(w, ",\"message\":");
		xw_attr_str(w, et);
		xw_lit(w, ",\"remote\":true}]}");
	}
}

static void write_response(struct xw *w, const struct crd_span *s)
{
	int64_t cl = -1;

	if (!s->status)
		return;
	if (s->resp_content_length >= 0)
		cl = s->resp_content_length;
	else if (s->kind == CRD_KIND_SERVER && s->end_reason == CRD_END_OK)
		cl = (int64_t)s->resp_body_size; /* chunked or close-delimited: what was sent */
	xw_lit(w, ",\"response\":{\"status\":");
	xw_u64(w, s->status);
	if (cl >= 0) {
		xw_lit(w, ",\"content_length\":");
		xw_i64(w, cl);
	}
	xw_lit(w, "}");
}

/* http.request.url of a server span: scheme://Host/path?query (the query
 * as the view redacted it). */
static void write_server_url(struct xw *w, const struct crd_span *s, const struct crd_span_view *v)
{
	const struct crd_attr *path = vattr(v, "url.path"), *query = vattr(v, "url.query");
	const struct crd_attr *addr = vattr(v, "server.address"), *port = vattr(v, "server.port");
	/* Host + path + the redacted query (at most the view's scratch). */
	char buf[CRD_HOST_MAX + CRD_TARGET_MAX + CRD_VIEW_SCRATCH + 64];
	size_t n = 0;

#define PUT(p, len)                                                                                \
	do {                                                                                       \
		size_t l_ = (len);                                                                 \
		if (n + l_ < sizeof(buf)) {                                                        \
			memcpy(buf + n, (p), l_);                                                  \
			n += l_;                                                                   \
		}                                                                                  \
	} while (0)
	PUT("http://", 7);
	if (s->req.host[0]) {
		PUT(s->req.host, strlen(s->req.host));
	} else if (addr) {
		int v6 = memchr(addr->s, ':', addr->len) != NULL;
		char p[8];
		if (v6)
			PUT("[", 1);
		PUT(addr->s, addr->len);
		if (v6)
			PUT("]", 1);
		if (port && port->i != 80) {
			int k = snprintf(p, sizeof(p), ":%lld", (long long)port->i);
			PUT(p, (size_t)k);
		}
	}
	if (path)
		PUT(path->s, path->len);
	if (query) {
		PUT("?", 1);
		PUT(query->s, query->len);
	}
#undef PUT
	xw_str(w, buf, n);
}

/* The fields of a segment, up to (not including) its subsegments and
 * closing brace. */
static void write_segment(struct xw *w, struct crd_xray_enc *e, const struct crd_span *s,
			  const struct crd_span_view *v)
{
	char tid[36], name[CRD_XRAY_NAME_MAX * 4 + 1];
	const char *raw = crd_xray_segment_name(s->req.host);
	const struct crd_attr *a;
	size_t nl = crd_xray_sanitize_name(name, sizeof(name), raw, strlen(raw));

	if (!nl)
		nl = (size_t)snprintf(name, sizeof(name), "%s",
				      crd_xray_cfg.name ? crd_xray_cfg.name : "unknown_service");
	crd_xray_trace_id(tid, v->trace_id);
	xw_lit(w, "{\"name\":");
	xw_str(w, name, nl);
	xw_lit(w, ",\"id\":");
	xw_hex(w, v->span_id, 8);
	xw_lit(w, ",\"trace_id\":\"");
	xw_put(w, tid, 35);
	xw_lit(w, "\"");
	if (v->parent_span_id) {
		xw_lit(w, ",\"parent_id\":");
		xw_hex(w, v->parent_span_id, 8);
	}
	xw_lit(w, ",\"start_time\":");
	xw_time(w, v->start_ns);
	xw_lit(w, ",\"end_time\":");
	xw_time(w, v->end_ns);
	if (crd_xray_cfg.origin) {
		xw_lit(w, ",\"origin\":");
		xw_cstr(w, crd_xray_cfg.origin);
	}
	xw_lit(w, ",\"http\":{\"request\":{\"method\":");
	xw_cstr(w, s->req.method);
	xw_lit(w, ",\"url\":");
	write_server_url(w, s, v);
	if (s->req.user_agent[0]) {
		xw_lit(w, ",\"user_agent\":");
		xw_cstr(w, s->req.user_agent);
	}
	if ((a = vattr(v, "client.address"))) {
		xw_lit(w, ",\"client_ip\":");
		xw_attr_str(w, a);
		if (s->req.xff[0])
			xw_lit(w, ",\"x_forwarded_for\":true");
	}
	xw_lit(w, "}");
	write_response(w, s);
	xw_lit(w, "}");
	write_flags(w, s, v);
	xw_put(w, e->tail, e->tail_len);
}

/* A client span as a subsegment; independent: a document of its own. */
static void write_subsegment(struct xw *w, const struct crd_span *s, const struct crd_span_view *v,
			     int independent)
{
	const struct crd_attr *host = vattr(v, "server.address"), *url = vattr(v, "url.full");
	char name[CRD_XRAY_NAME_MAX * 4 + 1];
	size_t nl = host ? crd_xray_sanitize_name(name, sizeof(name), host->s, host->len) : 0;

	if (!nl)
		nl = (size_t)snprintf(name, sizeof(name), "remote");
	xw_lit(w, "{\"name\":");
	xw_str(w, name, nl);
	xw_lit(w, ",\"id\":");
	xw_hex(w, v->span_id, 8);
	if (independent) {
		char tid[36];
		crd_xray_trace_id(tid, v->trace_id);
		xw_lit(w, ",\"type\":\"subsegment\",\"trace_id\":\"");
		xw_put(w, tid, 35);
		xw_lit(w, "\",\"parent_id\":");
		xw_hex(w, s->parent_span_id, 8);
	}
	xw_lit(w, ",\"start_time\":");
	xw_time(w, v->start_ns);
	xw_lit(w, ",\"end_time\":");
	xw_time(w, v->end_ns);
	xw_lit(w, ",\"namespace\":\"remote\",\"http\":{\"request\":{\"method\":");
	xw_cstr(w, s->req.method);
	if (url) {
		xw_lit(w, ",\"url\":");
		xw_attr_str(w, url);
	}
	xw_lit(w, "}");
	write_response(w, s);
	xw_lit(w, "}");
	write_flags(w, s, v);
	xw_lit(w, "}");
}

/* ---- the fixed tail ---- */

static const struct crd_attr *res_attr(const struct crd_attr_list *r, const char *key)
{
	for (size_t i = 0; r && i < r->n; i++)
		if (!strcmp(r->attrs[i].key, key))
			return &r->attrs[i];
	return NULL;
}

static void write_value(struct xw *w, const struct crd_attr *a)
{
	char b[32];
	int n;

	switch (a->type) {
	case CRD_ATTR_STR:
		xw_attr_str(w, a);
		break;
	case CRD_ATTR_INT:
		xw_i64(w, a->i);
		break;
	case CRD_ATTR_BOOL:
		if (a->i)
			xw_lit(w, "true");
		else
			xw_lit(w, "false");
		break;
	default:
		n = snprintf(b, sizeof(b), "%.17g", a->d);
		if (strpbrk(b, "ni")) /* nan, inf: not JSON */
			xw_lit(w, "null");
		else
			xw_put(w, b, (size_t)n);
	}
}

static void build_tail(struct crd_xray_enc *e, const struct crd_attr_list *res)
{
	const struct crd_attr *svc = res_attr(res, "service.name"),
			      *ver = res_attr(res, "service.version");
	const struct crd_attr *pid = res_attr(res, "process.pid");
	struct xw w = {e->tail, e->tail + sizeof(e->tail) - 1, 0};
	char *no_metadata;

	xw_lit(&w, ",\"aws\":{\"xray\":{\"sdk\":\"" CRD_NAME "\",\"sdk_version\":\"" CRD_VERSION
		   "\",\"auto_instrumentation\":true}}");
	if (ver && ver->type == CRD_ATTR_STR) {
		xw_lit(&w, ",\"service\":{\"version\":");
		xw_str(&w, ver->s, ver->len < 250 ? ver->len : 250);
		xw_lit(&w, "}");
	}
	/* Annotations are indexed: what one filters traces by. */
	xw_lit(&w, ",\"annotations\":{");
	if (svc && svc->type == CRD_ATTR_STR) {
		xw_lit(&w, "\"service\":");
		xw_str(&w, svc->s, svc->len < 250 ? svc->len : 250);
	}
	if (pid && pid->type == CRD_ATTR_INT) {
		if (svc)
			xw_lit(&w, ",");
		xw_lit(&w, "\"pid\":");
		xw_i64(&w, pid->i);
	}
	xw_lit(&w, "}");
	no_metadata = w.p;
	/* Metadata: the whole OTel Resource, if it fits. */
	xw_lit(&w, ",\"metadata\":{\"otel\":{\"resource\":{");
	for (size_t i = 0; res && i < res->n; i++) {
		if (i)
			xw_lit(&w, ",");
		xw_cstr(&w, res->attrs[i].key);
		xw_lit(&w, ":");
		write_value(&w, &res->attrs[i]);
	}
	xw_lit(&w, "}}}");
	if (w.err) {
		w.p = no_metadata;
		w.err = 0;
	}
	e->tail_len = (size_t)(w.p - e->tail);
}

/* ---- the encoder ---- */

int crd_xray_enc_init(struct crd_xray_enc *e, int (*emit)(void *, const char *, size_t), void *arg)
{
	memset(e, 0, sizeof(*e));
	e->max = CRD_XRAY_UDP_MAX;
	e->buf = malloc(e->max + 1);
	e->sub = malloc(CRD_XRAY_SUB_MAX);
	e->emit = emit;
	e->arg = arg;
	if (!e->buf || !e->sub) {
		crd_xray_enc_destroy(e);
		return -ENOMEM;
	}
	return 0;
}

void crd_xray_enc_destroy(struct crd_xray_enc *e)
{
	free(e->buf);
	free(e->sub);
	e->buf = e->sub = NULL;
}

static int emit(struct crd_xray_enc *e, const char *d, size_t n, int *rc)
{
	int r = e->emit ? e->emit(e->arg, d, n) : 0;

	e->datagrams++;
	if (r && !*rc)
		*rc = r;
	return r;
}

/* A client span as an independent subsegment datagram. */
static void send_independent(struct crd_xray_enc *e, const struct crd_span *s,
			     const struct crd_span_view *v, int *rc)
{
	struct xw w = {e->sub, e->sub + CRD_XRAY_SUB_MAX - 1, 0};

	xw_lit(&w, CRD_XRAY_HEADER);
	write_subsegment(&w, s, v, 1);
	if (w.err || (size_t)(w.p - e->sub) > e->max) {
		e->skipped++; /* cannot happen with the span field caps */
		return;
	}
	e->independent++;
	emit(e, e->sub, (size_t)(w.p - e->sub), rc);
}

static int child_of(const struct crd_span *c, const struct crd_span *p)
{
	return c->kind == CRD_KIND_CLIENT && !memcmp(c->parent_span_id, p->span_id, 8) &&
	       !memcmp(c->trace_id, p->trace_id, 16);
}

/* Room to append n bytes and still close the document ("]}"). */
static int fits(const struct crd_xray_enc *e, const struct xw *w, size_t n)
{
	return (size_t)(w->p - e->buf) + n + 2 <= e->max;
}

/* The bucket of a parent span id in the child index below. */
static size_t id_bucket(const uint8_t *id, size_t mask)
{
	uint64_t k;

	memcpy(&k, id, 8);
	return (size_t)((k * 0x9e3779b97f4a7c15ull) >> 32) & mask;
}

int crd_xray_encode(struct crd_xray_enc *e, const struct crd_batch *b)
{
	/* Client spans by parent span id, each chain in batch order: finding
	 * a segment's subsegments costs its children, not the whole batch
	 * (scanning the batch per segment was 9k instructions per span at 512
	 * spans, half the exporter's time). One allocation per batch. */
	size_t nb = 1;
	while (nb < 2 * b->n)
		nb <<= 1;
	size_t off = (b->n + 3) & ~(size_t)3; /* next[] aligned after used[] */
	uint8_t *used = calloc(1, off + (b->n + nb) * sizeof(uint32_t));
	uint32_t *next, *head; /* index + 1; 0 ends a chain */
	int rc = 0;

	if (!used)
		return -ENOMEM;
	next = (uint32_t *)(void *)(used + off);
	head = next + b->n;
	for (size_t j = b->n; j-- > 0;) {
		const struct crd_span *c = b->spans[j];
		if (c->kind != CRD_KIND_CLIENT)
			continue;
		size_t k = id_bucket(c->parent_span_id, nb - 1);
		next[j] = head[k];
		head[k] = (uint32_t)j + 1;
	}
	if (!e->tail_len)
		build_tail(e, b->resource);
	for (size_t i = 0; i < b->n; i++) {
		const struct crd_span *s = b->spans[i];
		struct xw w = {e->buf, e->buf + e->max, 0};
		size_t nsub = 0;

		if (s->kind != CRD_KIND_SERVER)
			continue;
		used[i] = 1;
		xw_lit(&w, CRD_XRAY_HEADER);
		write_segment(&w, e, s, b->views[i]);
		if (w.err || !fits(e, &w, 1)) {
			e->skipped++; /* cannot happen: a segment is bounded well below */
			continue;
		}
		for (uint32_t j1 = head[id_bucket(s->span_id, nb - 1)]; j1; j1 = next[j1 - 1]) {
			size_t j = j1 - 1;
			struct xw sw = {e->sub, e->sub + CRD_XRAY_SUB_MAX - 1, 0};
			size_t len, lead = nsub ? 1 : sizeof(",\"subsegments\":[") - 1;

			if (used[j] || !child_of(b->spans[j], s))
				continue;
			used[j] = 1;
			write_subsegment(&sw, b->spans[j], b->views[j], 0);
			len = (size_t)(sw.p - e->sub);
			if (!sw.err && fits(e, &w, lead + len)) {
				if (nsub++)
					xw_lit(&w, ",");
				else
					xw_lit(&w, ",\"subsegments\":[");
				xw_put(&w, e->sub, len);
				e->inline_subsegments++;
			} else {
				/* The segment would pass the datagram limit: this
				 * one goes as a document of its own. */
				send_independent(e, b->spans[j], b->views[j], &rc);
			}
		}
		if (nsub)
			xw_lit(&w, "]");
		xw_lit(&w, "}");
		e->segments++;
		emit(e, e->buf, (size_t)(w.p - e->buf), &rc);
	}
	/* Client spans whose segment is not in this batch (sent earlier, or
	 * still in progress): independent subsegments of their parent. */
	for (size_t j = 0; j < b->n; j++) {
		const struct crd_span *s = b->spans[j];
		if (used[j] || s->kind != CRD_KIND_CLIENT)
			continue;
		if (crd_all_zero_bytes(s->parent_span_id, 8)) {
			e->skipped++;
			continue;
		}
		send_independent(e, s, b->views[j], &rc);
	}
	free(used);
	return rc;
}

/* ---- the sink ---- */

struct xray_sink {
	struct crd_sink base;
	struct crd_xray_enc enc;
	int fd; /* UDP socket, -1 until the address is known */
	int family;
	struct sockaddr_storage addr;
	socklen_t addrlen; /* 0: not resolved yet */
	int numeric;	   /* the host is an IP literal: resolved once */
	uint64_t resolved_ns, tried_ns;
	int resolve_warned;
	uint64_t deadline; /* of the batch being sent */
	int stalled;	   /* the socket stayed full: drop the rest */
	uint64_t last_warn_ns;
	unsigned long failures; /* since the last message */
	int last_errno;
	/* Datagrams staged for one sendmmsg(2): one system call per
	 * CRD_XRAY_MMSG documents instead of one each. */
	char *stage;
	size_t staged;
	unsigned nmsg;
	struct mmsghdr msgs[CRD_XRAY_MMSG];
	struct iovec iovs[CRD_XRAY_MMSG];
};

static int resolve(struct xray_sink *s)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM}, *res = NULL,
			*pick;
	uint64_t now = crd_mono_ns();
	char port[8];
	int rc, fd;

	if (s->addrlen && (s->numeric || now - s->resolved_ns < CRD_XRAY_RESOLVE_S * 1000000000ull))
		return 0;
	if (!s->addrlen && s->tried_ns &&
	    now - s->tried_ns < CRD_XRAY_RESOLVE_RETRY_S * 1000000000ull)
		return -EAGAIN;
	s->tried_ns = now;
	snprintf(port, sizeof(port), "%u", crd_xray_cfg.udp_port);
	hints.ai_flags = AI_NUMERICSERV;
	rc = getaddrinfo(crd_xray_cfg.udp_host, port, &hints, &res);
	if (rc || !res) {
		if (!s->resolve_warned) {
			s->resolve_warned = 1;
			crd_warn(
			    "X-Ray: cannot resolve the daemon host %s (%s); segments are dropped "
			    "until it resolves",
			    crd_xray_cfg.udp_host, gai_strerror(rc));
		}
		if (res)
			freeaddrinfo(res);
		return s->addrlen ? 0 : -EHOSTUNREACH; /* keep a known address */
	}
	pick = res;
	/* Prefer IPv4, as the SDKs' emitters (AF_INET sockets) do: the daemon
	 * listens on 127.0.0.1:2000 by default and "localhost" may list ::1
	 * first. */
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
		if (ai->ai_family == AF_INET) {
			pick = ai;
			break;
		}
	if (pick->ai_family != s->family || s->fd < 0) {
		/* socket() is not hooked; close() is. */
		fd = socket(pick->ai_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0) {
			rc = -errno;
			freeaddrinfo(res);
			return rc;
		}
		if (s->fd >= 0)
			CRD_REAL(close)(s->fd);
		s->fd = fd;
		s->family = pick->ai_family;
	}
	memcpy(&s->addr, pick->ai_addr, pick->ai_addrlen);
	s->addrlen = pick->ai_addrlen;
	/* Connected UDP: sendmmsg without addresses, one route lookup. */
	if (CRD_REAL(connect)(s->fd, pick->ai_addr, pick->ai_addrlen)) {
		rc = -errno;
		freeaddrinfo(res);
		s->addrlen = 0;
		return rc;
	}
	s->resolved_ns = now;
	freeaddrinfo(res);
	return 0;
}

/* Send what is staged. The socket is connect()ed to the daemon: no
 * address and no route lookup per datagram. */
static int flush_stage(struct xray_sink *s)
{
	unsigned off = 0, refused = 0;
	int rc = 0;

	while (off < s->nmsg && !s->stalled) {
		int r = sendmmsg(s->fd, s->msgs + off, s->nmsg - off, MSG_DONTWAIT | MSG_NOSIGNAL);
		uint64_t now;
		if (r > 0) {
			off += (unsigned)r;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno == ECONNREFUSED && refused++ < 2)
			continue; /* an earlier datagram found no daemon; not this one */
		if (errno == ECONNREFUSED) {
			/* No daemon listening: lost, as with any UDP sender. */
			crd_debug("X-Ray: no daemon at %s:%u; segments dropped",
				  crd_xray_cfg.udp_host, crd_xray_cfg.udp_port);
			break;
		}
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS) {
			rc = -errno;
			break;
		}
		/* The socket buffer is full: wait a little for room, never
		 * past the deadline, then give up on the rest of the batch. */
		now = crd_mono_ns();
		struct pollfd p = {.fd = s->fd, .events = POLLOUT};
		long ms = now >= s->deadline ? 0 : (long)((s->deadline - now) / 1000000u);
		if (ms > CRD_XRAY_SEND_WAIT_MS)
			ms = CRD_XRAY_SEND_WAIT_MS;
		if (ms <= 0 || poll(&p, 1, (int)ms) <= 0) {
			s->stalled = 1;
			rc = -EAGAIN;
		}
	}
	s->nmsg = 0;
	s->staged = 0;
	return rc;
}

static int sink_emit(void *arg, const char *d, size_t n)
{
	struct xray_sink *s = arg;
	int rc = 0;

	if (s->stalled)
		return -EAGAIN;
	if (s->staged + n > CRD_XRAY_STAGE || s->nmsg == CRD_XRAY_MMSG)
		rc = flush_stage(s);
	if (rc)
		return rc;
	memcpy(s->stage + s->staged, d, n);
	s->iovs[s->nmsg] = (struct iovec){s->stage + s->staged, n};
	s->msgs[s->nmsg] =
	    (struct mmsghdr){.msg_hdr = {.msg_iov = &s->iovs[s->nmsg], .msg_iovlen = 1}};
	s->nmsg++;
	s->staged += n;
	return 0;
}

static void report(struct xray_sink *s, int rc)
{
	uint64_t now = crd_mono_ns();

	s->failures++;
	s->last_errno = -rc;
	if (s->last_warn_ns && now - s->last_warn_ns < CRD_XRAY_WARN_EVERY_S * 1000000000ull)
		return;
	crd_warn("X-Ray: sending segments to the daemon at %s:%u failed (%s, %lu time%s); "
		 "they were dropped",
		 crd_xray_cfg.udp_host, crd_xray_cfg.udp_port, strerror(s->last_errno), s->failures,
		 s->failures == 1 ? "" : "s");
	s->failures = 0;
	s->last_warn_ns = now;
}

static int xray_export(struct crd_sink *base, const struct crd_batch *b, uint64_t deadline)
{
	struct xray_sink *s = (struct xray_sink *)base;
	int rc = resolve(s);

	if (rc)
		return rc;
	s->deadline = deadline;
	s->stalled = 0;
	rc = crd_xray_encode(&s->enc, b);
	int frc = flush_stage(s);
	if (!rc)
		rc = frc;
	if (rc)
		report(s, rc);
	return rc;
}

static void xray_destroy(struct crd_sink *base)
{
	struct xray_sink *s = (struct xray_sink *)base;

	if (s->fd >= 0)
		CRD_REAL(close)(s->fd);
	crd_xray_enc_destroy(&s->enc);
	free(s->stage);
	free(s);
}

static const struct crd_sink_ops xray_ops = {
    .name = "xray",
    .export_spans = xray_export,
    .destroy = xray_destroy,
};

struct crd_sink *crd_xray_sink_new(void)
{
	struct xray_sink *s = calloc(1, sizeof(*s));
	struct in6_addr a6;
	struct in_addr a4;

	if (!s || !(s->stage = malloc(CRD_XRAY_STAGE)) ||
	    crd_xray_enc_init(&s->enc, sink_emit, s)) {
		if (s)
			free(s->stage);
		free(s);
		crd_error("X-Ray: out of memory; X-Ray export disabled");
		return NULL;
	}
	s->base.ops = &xray_ops;
	s->fd = -1;
	s->numeric = inet_pton(AF_INET, crd_xray_cfg.udp_host, &a4) == 1 ||
		     inet_pton(AF_INET6, crd_xray_cfg.udp_host, &a6) == 1;
	resolve(s);
	crd_debug("X-Ray: sending segments to udp %s:%u", crd_xray_cfg.udp_host,
		  crd_xray_cfg.udp_port);
	return &s->base;
}
