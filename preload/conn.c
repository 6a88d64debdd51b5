/* conn.c - per-fd connection state and the HTTP exchange state machine
 * (see conn.h for the model and the thread/signal-safety contract).
 *
 * A connection is a server connection (accepted: the app reads requests
 * and writes responses) or a client connection (connected: the app writes
 * requests and reads responses). Both run the same machine: a request
 * parser, a response parser and a FIFO of requests awaiting responses;
 * only which hook feeds which parser, and where the trace context comes
 * from, differ.
 */
#include "conn.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/un.h>

#include "../export/exporter.h"
#include "../export/queue.h"
#include "config.h"
#include "ctx.h"
#include "guard.h"
#include "http1.h"
#include "ids.h"
#include "inject.h"
#include "real.h"
#include "rec.h"
#include "cloudwatch.h"
#include "rollbar.h"
#include "span.h"
#include "tracectx.h"
#include "xray.h"

/* Requests awaiting a response on one connection. 50 pipelined requests in
 * one write must all get spans; beyond this the connection is given up. */
#define CRD_PIPELINE_MAX 64
/* fd table cap: 1 Mi entries = 8 MiB of address space, touched sparsely. */
#define CRD_FDTAB_MAX (1u << 20)
/* Spins before giving a connection up rather than risking a deadlock with
 * the lock holder (e.g. a signal handler that interrupted it). */
#define CRD_LOCK_SPINS 4096
/* writev/sendmsg with more segments than this are sent without injection. */
#define CRD_INJECT_IOV_MAX 64

enum { ROLE_SERVER = 0, ROLE_CLIENT = 1 };
enum { FIFO_HEAD = 1, FIFO_CONNECT = 2 };

struct crd_conn {
	uint32_t pool_link; /* pool.h: must stay first */
	uint32_t refs;	    /* fds referring to this connection (dup) */
	uint8_t lock;
	uint8_t role;	   /* ROLE_* */
	uint8_t dead;	   /* given up: ignored until its last close */
	uint8_t req_dead;  /* request bytes stopped being HTTP */
	uint8_t resp_busy; /* a response to the FIFO front has begun */
	uint8_t fifo_head;
	uint8_t fifo_len;
	uint32_t owed_rec; /* client: rec index + 1 whose headers are partly sent */
	uint16_t owed_off; /* bytes of that header block already sent */
	struct crd_addr peer, local;
	struct crd_rec *req_rec; /* request being parsed, NULL between requests */
	struct crd_http1_parser reqp, respp;
	uint32_t fifo[CRD_PIPELINE_MAX]; /* record indices, oldest at fifo_head */
	uint8_t fifo_flags[CRD_PIPELINE_MAX];
};

uintptr_t *crd_fdtab;
unsigned crd_fdtab_size;
struct crd_stats crd_stats;
static struct crd_pool conn_pool;

int crd_conn_init(void)
{
	struct rlimit rl;
	rlim_t n = 65536;
	void *m;
	int rc;

	/* Size for the hard limit: servers raise their soft limit later
	 * (nginx worker_rlimit_nofile). */
	if (!getrlimit(RLIMIT_NOFILE, &rl))
		n = rl.rlim_max == RLIM_INFINITY ? CRD_FDTAB_MAX : rl.rlim_max;
	if (n > CRD_FDTAB_MAX)
		n = CRD_FDTAB_MAX;
	m = mmap(NULL, n * sizeof(uintptr_t), PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED)
		return -errno;
	rc = crd_pool_init(&conn_pool, sizeof(struct crd_conn), (uint32_t)crd_cfg.max_conns);
	if (!rc)
		rc = crd_ctx_init();
	if (rc) {
		munmap(m, n * sizeof(uintptr_t));
		return rc;
	}
	crd_fdtab = m;
	__atomic_store_n(&crd_fdtab_size, (unsigned)n, __ATOMIC_RELEASE);
	return 0;
}

static int lock(struct crd_conn *c)
{
	for (int i = 0; i < CRD_LOCK_SPINS; i++) {
		if (!__atomic_test_and_set(&c->lock, __ATOMIC_ACQUIRE))
			return 1;
#if defined(__x86_64__) || defined(__i386__)
		__builtin_ia32_pause();
#endif
	}
	return 0;
}

static void unlock(struct crd_conn *c)
{
	__atomic_clear(&c->lock, __ATOMIC_RELEASE);
}

static void addr_from(struct crd_addr *a, const struct sockaddr *sa, socklen_t len)
{
	memset(a, 0, sizeof(*a));
	if (!sa || len < sizeof(sa_family_t))
		return;
	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = (const void *)sa;
		a->family = AF_INET;
		a->port = ntohs(in->sin_port);
		memcpy(a->addr, &in->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		a->family = AF_INET6;
		a->port = ntohs(in6->sin6_port);
		memcpy(a->addr, &in6->sin6_addr, 16);
	} else if (sa->sa_family == AF_UNIX) {
		a->family = AF_UNIX;
	}
}

/* ---- sampling and trace context ---- */

static int sample(int parent_sampled, const uint8_t trace_id[16])
{
	switch (crd_cfg.sampler) {
	case CRD_SAMPLER_ALWAYS_ON:
		return 1;
	case CRD_SAMPLER_ALWAYS_OFF:
		return 0;
	case CRD_SAMPLER_RATIO:
		return crd_ratio_sampled(trace_id, crd_cfg.sampler_ratio);
	}
	if (parent_sampled >= 0) /* parentbased_*: a decided parent wins */
		return parent_sampled;
	if (crd_xray_cfg.root_sampler) /* X-Ray rules decide; no request: the default rule */
		return crd_xray_sample(-1, NULL);
	if (crd_cfg.sampler == CRD_SAMPLER_PB_ALWAYS_OFF)
		return 0;
	if (crd_cfg.sampler == CRD_SAMPLER_PB_RATIO)
		return crd_ratio_sampled(trace_id, crd_cfg.sampler_ratio);
	return 1;
}

/* Parse the trace headers a request carries: traceparent, else
 * X-Amzn-Trace-Id. *have_parent tells whether a parent span id came too.
 * Clears tracestate when traceparent is absent or invalid (W3C §3.3.1). */
static int incoming_context(struct crd_http_req *req, struct crd_tracectx *tc, int *have_parent)
{
	*have_parent = 0;
	if (req->traceparent[0] && !(req->flags & CRD_REQ_DUP_TRACEPARENT) &&
	    !crd_traceparent_parse(req->traceparent, tc)) {
		*have_parent = 1;
		return 1;
	}
	req->tracestate[0] = 0;
	if (req->xamzn[0] && !crd_xamzn_parse(req->xamzn, tc)) {
		*have_parent = !crd_all_zero_bytes(tc->span_id, 8);
		return 1;
	}
	return 0;
}

/* Server span: continue the caller's trace or start one. */
static void server_context(struct crd_span *s)
{
	struct crd_tracectx tc;
	int have_parent, have_trace = incoming_context(&s->req, &tc, &have_parent);

	if (have_trace)
		memcpy(s->trace_id, tc.trace_id, 16);
	else
		crd_new_trace_id(s->trace_id);
	if (have_parent) {
		memcpy(s->parent_span_id, tc.span_id, 8);
		s->parent_remote = 1;
	}
	crd_new_span_id(s->span_id);
	if (crd_xray_cfg.root_sampler) /* X-Ray rules; X-Amzn-Trace-Id Sampled wins */
		s->sampled = (uint8_t)crd_xray_sample(have_trace ? tc.sampled : -1, &s->req);
	else
		s->sampled = (uint8_t)sample(have_parent ? tc.sampled : -1, s->trace_id);
}

void crd_client_context(struct crd_rec *r)
{
	struct crd_span *s = &r->span;
	struct crd_rec *p = crd_ctx_current();

	if (p && p != r && (p->done & CRD_DONE_HEAD)) {
		/* Copy before trusting: p may end on another thread meanwhile;
		 * a changed trace id means we raced, so start fresh. */
		memcpy(s->trace_id, p->span.trace_id, 16);
		memcpy(s->parent_span_id, p->span.span_id, 8);
		s->sampled = p->span.sampled;
		memcpy(s->req.tracestate, p->span.req.tracestate, sizeof(s->req.tracestate));
		s->req.tracestate[sizeof(s->req.tracestate) - 1] = 0;
		if (crd_ctx_current() == p && !memcmp(s->trace_id, p->span.trace_id, 16)) {
			crd_new_span_id(s->span_id);
			r->done |= CRD_DONE_CTX;
			return;
		}
	}
	memset(s->parent_span_id, 0, 8);
	s->req.tracestate[0] = 0;
	crd_new_trace_id(s->trace_id);
	crd_new_span_id(s->span_id);
	s->sampled = (uint8_t)sample(-1, s->trace_id);
	r->done |= CRD_DONE_CTX;
}

/* Client span without our injection: the app may carry its own context. */
static void client_head_context(struct crd_rec *r)
{
	struct crd_span *s = &r->span;
	struct crd_tracectx tc;
	int have_parent;

	if (r->done & CRD_DONE_CTX)
		return;
	if (incoming_context(&s->req, &tc, &have_parent) && have_parent) {
		/* The app propagates its own span: ours is its child. */
		memcpy(s->trace_id, tc.trace_id, 16);
		memcpy(s->parent_span_id, tc.span_id, 8);
		crd_new_span_id(s->span_id);
		s->sampled = (uint8_t)sample(tc.sampled, s->trace_id);
		r->done |= CRD_DONE_CTX;
		return;
	}
	crd_client_context(r);
}

/* ---- record life ---- */

static void rec_free(struct crd_rec *r)
{
	crd_ctx_leave(r, &r->ctx);
	crd_pool_put(&crd_rec_pool, r);
}

/* A span the sampler dropped still goes to the exporter when a sink that
 * must see every request wants it: Rollbar reports every server 5xx, the
 * CloudWatch access log has a line for every server request. */
static int wanted_unsampled(const struct crd_span *s)
{
	if (s->kind != CRD_KIND_SERVER)
		return 0;
	return crd_cw_cfg.enabled || (crd_rb_cfg.enabled && s->status >= 500 && s->status <= 599);
}

void crd_rec_finish(struct crd_rec *r)
{
	crd_ctx_leave(r, &r->ctx);
	if (!r->span.end_ns)
		r->span.end_ns = crd_now_ns();
	if (!r->span.sampled && !wanted_unsampled(&r->span)) {
		crd_pool_put(&crd_rec_pool, r);
		return;
	}
	if (crd_queue_push(r)) {
		crd_pool_put(&crd_rec_pool, r);
		crd_stat_add(&crd_stats.spans_dropped, 1);
		return;
	}
	crd_exporter_ensure();
}

struct crd_rec *crd_rec_new(int kind)
{
	struct crd_rec *r = crd_pool_get(&crd_rec_pool);
	struct crd_span *s;

	if (!r) {
		crd_stat_add(&crd_stats.spans_dropped, 1);
		return NULL;
	}
	r->type = CRD_REC_SPAN;
	r->done = 0;
	r->ctx.slot = 0;
	s = &r->span;
	/* Everything before the request head; the parser (or the caller)
	 * initialises s->req. */
	memset(s, 0, offsetof(struct crd_span, req));
	s->kind = (uint8_t)kind;
	s->start_ns = crd_now_ns();
	s->resp_content_length = -1;
	return r;
}

static struct crd_rec *fifo_front(struct crd_conn *c)
{
	return crd_pool_at(&crd_rec_pool, c->fifo[c->fifo_head]);
}

static struct crd_rec *fifo_pop(struct crd_conn *c)
{
	struct crd_rec *r = fifo_front(c);
	c->fifo_head = (uint8_t)((c->fifo_head + 1) % CRD_PIPELINE_MAX);
	c->fifo_len--;
	return r;
}

/* Free the requests still waiting for an answer; counted as dropped when
 * spans were due (tracking lost), not when none was (served_last()). A
 * request already answered, its body still arriving (413, 400 before the
 * body was read), ends with its response. */
static void free_pending(struct crd_conn *c, int count)
{
	while (c->fifo_len) {
		struct crd_rec *r = fifo_pop(c);
		if (r == c->req_rec)
			c->req_rec = NULL;
		rec_free(r);
		if (count)
			crd_stat_add(&crd_stats.spans_dropped, 1);
	}
	if (c->req_rec) {
		if (c->req_rec->done & CRD_DONE_RESP)
			crd_rec_finish(c->req_rec);
		else
			rec_free(c->req_rec);
		c->req_rec = NULL;
	}
}

/* Drop what is pending (counted): used when tracking is lost. */
static void drop_pending(struct crd_conn *c)
{
	free_pending(c, 1);
	c->owed_rec = 0;
}

/* Stop tracking: pending requests cannot get a faithful span any more. */
static void give_up(struct crd_conn *c)
{
	if (c->dead)
		return;
	c->dead = 1;
	crd_stat_add(&crd_stats.conns_untracked, 1);
	drop_pending(c);
}

/* ---- request side (server: reads; client: writes) ---- */

static struct crd_rec *begin_request(struct crd_conn *c)
{
	struct crd_rec *r = crd_rec_new(c->role == ROLE_SERVER ? CRD_KIND_SERVER : CRD_KIND_CLIENT);

	if (!r) {
		give_up(c);
		return NULL;
	}
	r->span.peer = c->peer;
	r->span.local = c->local;
	crd_http1_begin_request(&c->reqp, &r->span.req);
	c->req_rec = r;
	return r;
}

static void request_head(struct crd_conn *c)
{
	struct crd_rec *r = c->req_rec;
	unsigned slot;
	uint8_t flags = 0;

	if (c->role == ROLE_SERVER) {
		server_context(&r->span);
		crd_ctx_enter(r, &r->ctx);
	} else {
		client_head_context(r);
	}
	r->done |= CRD_DONE_HEAD;
	if (c->fifo_len == CRD_PIPELINE_MAX) {
		give_up(c);
		return;
	}
	if (!strcmp(r->span.req.method, "HEAD"))
		flags |= FIFO_HEAD;
	else if (!strcmp(r->span.req.method, "CONNECT"))
		flags |= FIFO_CONNECT;
	slot = (c->fifo_head + c->fifo_len) % CRD_PIPELINE_MAX;
	c->fifo[slot] = crd_pool_index(&crd_rec_pool, r);
	c->fifo_flags[slot] = flags;
	c->fifo_len++;
}

static void request_done(struct crd_conn *c)
{
	struct crd_rec *r = c->req_rec;

	c->req_rec = NULL;
	r->done |= CRD_DONE_REQ;
	if (r->done & CRD_DONE_RESP)
		crd_rec_finish(r); /* answered before its body was read */
}

static void request_error(struct crd_conn *c)
{
	struct crd_rec *r = c->req_rec;

	c->req_dead = 1;
	c->req_rec = NULL;
	/* A head never completed is no request: no span. One in the FIFO
	 * (bad body) still gets its response tracked. */
	if (r && !(r->done & CRD_DONE_HEAD))
		rec_free(r);
	if (!c->fifo_len && !c->resp_busy)
		give_up(c);
}

static void req_bytes(struct crd_conn *c, const char *buf, size_t n)
{
	/* Begun on empty lines only (CRLF after a body): the request really
	 * starts with these bytes. */
	if (c->req_rec && n && crd_http1_idle(&c->reqp))
		c->req_rec->span.start_ns = crd_now_ns();
	while (!c->dead && !c->req_dead) {
		size_t used = 0;
		int ev;

		if (!c->req_rec) {
			if (!n || !begin_request(c))
				return;
		}
		ev = crd_http1_feed(&c->reqp, buf, n, &used);
		buf += used;
		n -= used;
		if (ev == CRD_HTTP1_NEED_MORE)
			return;
		if (ev == CRD_HTTP1_HEAD_DONE)
			request_head(c);
		else if (ev == CRD_HTTP1_MSG_DONE)
			request_done(c);
		else
			request_error(c);
	}
}

/* ---- response side (server: writes; client: reads) ---- */

static void response_head(struct crd_conn *c)
{
	struct crd_span *s = &fifo_front(c)->span;

	s->status = c->respp.resp.status;
	s->resp_content_length = c->respp.resp.content_length;
}

/* The server sent a final response that closes the connection
 * (Connection: close, or HTTP/1.0 without keep-alive): it processes no
 * further request on it (RFC 9112 section 9.6). Requests we parsed after
 * that one were never served and get no span. They are often not even
 * requests to the server: nginx answers 400 and closes on a smuggling
 * attempt (Content-Length with Transfer-Encoding) whose body we framed as
 * chunked, which leaves the "smuggled" request in our FIFO. Not counted as
 * drops: no span was due. */
static void served_last(struct crd_conn *c)
{
	free_pending(c, 0);
	c->dead = 1;
}

static void response_done(struct crd_conn *c, int end_reason)
{
	uint16_t st = c->respp.resp.status;
	uint8_t flags = c->fifo_flags[c->fifo_head];
	struct crd_rec *r;

	c->resp_busy = 0;
	/* Interim 1xx (100 Continue): the final response follows. */
	if (st >= 100 && st < 200 && st != 101 && end_reason == CRD_END_OK)
		return;
	r = fifo_pop(c);
	r->span.end_ns = crd_now_ns();
	r->span.end_reason = (uint8_t)end_reason;
	r->span.resp_body_size = c->respp.resp.body_size;
	r->done |= CRD_DONE_RESP;
	if (r->done & CRD_DONE_REQ || r != c->req_rec)
		crd_rec_finish(r);
	/* After a protocol switch or a tunnel the bytes are not HTTP. */
	if (st == 101 || ((flags & FIFO_CONNECT) && st / 100 == 2))
		give_up(c);
	else if (c->role == ROLE_SERVER && end_reason == CRD_END_OK && c->respp.resp.conn_close)
		served_last(c);
	else if (c->req_dead && !c->fifo_len)
		give_up(c);
}

static void resp_bytes(struct crd_conn *c, const char *buf, size_t n)
{
	while (!c->dead) {
		size_t used = 0;
		int ev;

		if (!c->resp_busy) {
			if (!n)
				return;
			if (!c->fifo_len) {
				give_up(c); /* a response nobody asked for: not HTTP/1 */
				return;
			}
			crd_http1_begin_response(&c->respp,
						 c->fifo_flags[c->fifo_head] & FIFO_HEAD);
			c->resp_busy = 1;
		}
		ev = crd_http1_feed(&c->respp, buf, n, &used);
		buf += used;
		n -= used;
		if (ev == CRD_HTTP1_NEED_MORE)
			return;
		if (ev == CRD_HTTP1_HEAD_DONE) {
			response_head(c);
		} else if (ev == CRD_HTTP1_MSG_DONE) {
			response_done(c, CRD_END_OK);
		} else {
			response_done(c, CRD_END_PARSE);
			give_up(c);
		}
	}
}

/* ---- entry points ---- */

#define WITH_LOCK(c, body)                                                                         \
	do {                                                                                       \
		if ((c)->dead)                                                                     \
			break;                                                                     \
		if (!lock(c)) {                                                                    \
			(c)->dead = 1; /* see CRD_LOCK_SPINS */                                    \
			break;                                                                     \
		}                                                                                  \
		body;                                                                              \
		unlock(c);                                                                         \
	} while (0)

typedef void (*bytes_fn)(struct crd_conn *, const char *, size_t);

static void feed_iov(struct crd_conn *c, bytes_fn fn, const struct iovec *iov, size_t iovcnt,
		     size_t n)
{
	for (size_t i = 0; i < iovcnt && n; i++) {
		size_t k = iov[i].iov_len < n ? iov[i].iov_len : n;
		fn(c, iov[i].iov_base, k);
		n -= k;
	}
}

/* What the app reads is requests on a server, responses on a client. */
static bytes_fn rx_fn(const struct crd_conn *c)
{
	return c->role == ROLE_SERVER ? req_bytes : resp_bytes;
}

static bytes_fn tx_fn(const struct crd_conn *c)
{
	return c->role == ROLE_SERVER ? resp_bytes : req_bytes;
}

void crd_conn_rx(struct crd_conn *c, const void *buf, size_t n)
{
	WITH_LOCK(c, rx_fn(c)(c, buf, n));
}

void crd_conn_tx(struct crd_conn *c, const void *buf, size_t n)
{
	WITH_LOCK(c, tx_fn(c)(c, buf, n));
}

void crd_conn_rx_iov(struct crd_conn *c, const struct iovec *iov, size_t iovcnt, size_t n)
{
	WITH_LOCK(c, feed_iov(c, rx_fn(c), iov, iovcnt, n));
}

void crd_conn_tx_iov(struct crd_conn *c, const struct iovec *iov, size_t iovcnt, size_t n)
{
	WITH_LOCK(c, feed_iov(c, tx_fn(c), iov, iovcnt, n));
}

void crd_conn_tx_opaque(struct crd_conn *c, size_t n)
{
	/* sendfile carries bodies (nginx static files after a head written
	 * with writev; a client's upload): counted, not parsed. Unseen bytes
	 * anywhere else mean we lost track. */
	WITH_LOCK(c, {
		int server = c->role == ROLE_SERVER;
		struct crd_http1_parser *p = server ? &c->respp : &c->reqp;
		int ev = (server ? c->resp_busy : c->req_rec != NULL) ? crd_http1_skip_body(p, n)
								      : CRD_HTTP1_ERROR;
		if (ev == CRD_HTTP1_MSG_DONE && server)
			response_done(c, CRD_END_OK);
		else if (ev == CRD_HTTP1_MSG_DONE)
			request_done(c);
		else if (ev == CRD_HTTP1_ERROR)
			give_up(c);
	});
}

void crd_conn_rx_lost(struct crd_conn *c)
{
	WITH_LOCK(c, give_up(c));
}

static struct crd_conn *conn_new(int fd, int role)
{
	struct crd_conn *c;

	/* A stale entry means the previous socket was closed behind our back
	 * (close_range, a libc-internal close): end it now. */
	crd_conn_fd_closing(fd);
	c = crd_pool_get(&conn_pool);
	if (!c) {
		crd_stat_add(&crd_stats.conns_untracked, 1);
		return NULL;
	}
	memset((char *)c + sizeof(uint32_t), 0, offsetof(struct crd_conn, reqp) - sizeof(uint32_t));
	c->refs = 1;
	c->role = (uint8_t)role;
	crd_http1_init(&c->reqp, CRD_HTTP1_REQUEST);
	crd_http1_init(&c->respp, CRD_HTTP1_RESPONSE);
	return c;
}

void crd_conn_accepted(int listen_fd, int fd, const struct sockaddr *peer, socklen_t peerlen)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	struct crd_conn *c;

	(void)listen_fd;
	if ((unsigned)fd >= crd_fdtab_size || !(c = conn_new(fd, ROLE_SERVER)))
		return;
	/* One getpeername/getsockname per connection, not per request; the
	 * app's own accept() result is used when it asked for it. */
	if (peer && peerlen >= sizeof(sa_family_t) && peer->sa_family != AF_UNSPEC) {
		addr_from(&c->peer, peer, peerlen);
	} else if (!getpeername(fd, (struct sockaddr *)&ss, &len)) {
		addr_from(&c->peer, (struct sockaddr *)&ss, len);
	}
	len = sizeof(ss);
	if (!getsockname(fd, (struct sockaddr *)&ss, &len))
		addr_from(&c->local, (struct sockaddr *)&ss, len);
	__atomic_store_n(&crd_fdtab[fd], (uintptr_t)c, __ATOMIC_RELEASE);
}

void crd_conn_connected(int fd, const struct sockaddr *addr, socklen_t len)
{
	struct crd_conn *c;
	int type = 0;
	socklen_t tl = sizeof(type);

	if ((unsigned)fd >= crd_fdtab_size || !addr || len < sizeof(sa_family_t))
		return;
	if (addr->sa_family != AF_INET && addr->sa_family != AF_INET6 &&
	    addr->sa_family != AF_UNIX) {
		crd_conn_fd_closing(fd);
		return;
	}
	/* Only byte streams carry HTTP/1 (and only they may get headers
	 * inserted): one getsockopt per connect. */
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) || type != SOCK_STREAM) {
		crd_conn_fd_closing(fd);
		return;
	}
	if (!(c = conn_new(fd, ROLE_CLIENT)))
		return;
	addr_from(&c->peer, addr, len);
	__atomic_store_n(&crd_fdtab[fd], (uintptr_t)c, __ATOMIC_RELEASE);
}

/* ---- header injection on client connections ---- */

int crd_conn_wants_inject(struct crd_conn *c)
{
	return c->role == ROLE_CLIENT && crd_cfg.propagate && !c->dead && !c->req_dead &&
	       (c->owed_rec || !c->req_rec || crd_http1_idle(&c->reqp));
}

static size_t format_headers(const struct crd_rec *r, char *out, int tracestate, int xamzn)
{
	return crd_inject_format(out, r->span.trace_id, r->span.span_id, r->span.sampled,
				 r->span.req.tracestate, tracestate, xamzn);
}

/* Which of our headers a request gets is fixed when it is scanned and
 * must not change if the block is sent in pieces: remember it in the rec. */
#define OWED_TRACESTATE 0x40
#define OWED_XAMZN	0x80

ssize_t crd_conn_send(struct crd_conn *c, int fd, const struct iovec *iov, size_t cnt,
		      const struct msghdr *msg, int flags)
{
	struct iovec out[CRD_INJECT_IOV_MAX + 3];
	char hdr[CRD_INJECT_MAX];
	struct crd_inject_scan sc;
	struct crd_rec *r = NULL;
	size_t hlen = 0, at = 0, skip = 0, app = 0;
	ssize_t sent;
	int fresh = 0, n, e;

	if (cnt > CRD_INJECT_IOV_MAX || !lock(c))
		goto plain;
	if (c->owed_rec) {
		r = crd_pool_at(&crd_rec_pool, c->owed_rec - 1);
		hlen = format_headers(r, hdr, r->span.req.flags & OWED_TRACESTATE,
				      r->span.req.flags & OWED_XAMZN);
		skip = c->owed_off;
	} else if (!c->dead && crd_inject_scan(iov, cnt, &sc) && !sc.has_traceparent &&
		   (c->req_rec || begin_request(c))) {
		r = c->req_rec;
		crd_client_context(r);
		int ts = !sc.has_tracestate, xa = crd_cfg.xray_propagate && !sc.has_xamzn;
		hlen = format_headers(r, hdr, ts, xa);
		at = sc.line_end;
		fresh = 1;
		/* The parser fills req.flags later; our bits are above its. */
		r->span.req.flags |= (uint8_t)((ts ? OWED_TRACESTATE : 0) | (xa ? OWED_XAMZN : 0));
	}
	unlock(c);
	if (!r)
		goto plain;

	n = crd_iov_splice(iov, cnt, at, hdr + skip, hlen - skip, out, CRD_INJECT_IOV_MAX + 3);
	if (msg) {
		struct msghdr m = *msg;
		m.msg_iov = out;
		m.msg_iovlen = (size_t)n;
		sent = CRD_REAL(sendmsg)(fd, &m, flags);
	} else {
		sent = CRD_REAL(writev)(fd, out, n);
	}
	e = errno;
	if (sent < 0)
		return sent; /* nothing went out: the app will send the same bytes again */

	if (!lock(c)) {
		c->dead = 1;
		errno = e;
		return sent; /* cannot account: give up; the count is best effort */
	}
	if (!fresh) {
		size_t rem = hlen - skip;
		if ((size_t)sent < rem) {
			/* Still only our bytes: the app's call moved none of its own. */
			c->owed_off = (uint16_t)(c->owed_off + sent);
			unlock(c);
			int nonblock = (flags & MSG_DONTWAIT) || (fcntl(fd, F_GETFL) & O_NONBLOCK);
			errno = nonblock ? EAGAIN : EINTR;
			return -1;
		}
		c->owed_rec = 0;
		app = (size_t)sent - rem;
	} else if ((size_t)sent <= at) {
		app = (size_t)sent; /* our headers did not go: this request goes without */
	} else if ((size_t)sent < at + hlen) {
		app = at;
		c->owed_rec = crd_pool_index(&crd_rec_pool, r) + 1;
		c->owed_off = (uint16_t)((size_t)sent - at);
	} else {
		app = (size_t)sent - hlen;
	}
	feed_iov(c, req_bytes, iov, cnt, app);
	unlock(c);
	errno = e;
	return (ssize_t)app;

plain:
	if (msg) {
		struct msghdr m = *msg;
		m.msg_iov = (struct iovec *)iov;
		m.msg_iovlen = cnt;
		sent = CRD_REAL(sendmsg)(fd, &m, flags);
	} else {
		sent = CRD_REAL(writev)(fd, iov, (int)cnt);
	}
	if (sent > 0) {
		e = errno;
		crd_conn_tx_iov(c, iov, cnt, (size_t)sent);
		errno = e;
	}
	return sent;
}

/* ---- descriptor life ---- */

/* The last fd of c is gone: end what can be ended, free the rest. */
static void conn_closed(struct crd_conn *c, int end_reason)
{
	if (!c->dead) {
		if (c->resp_busy)
			response_done(c, crd_http1_eof(&c->respp) == CRD_HTTP1_MSG_DONE
					     ? CRD_END_OK
					     : end_reason);
		/* Requests never answered still happened: one span each. */
		while (c->fifo_len && !c->dead) {
			c->respp.resp.status = 0;
			c->respp.resp.body_size = 0;
			c->resp_busy = 1;
			response_done(c, end_reason);
		}
	}
	/* Abandoned without give_up() (lock timeout): what is left is lost. */
	drop_pending(c);
	c->dead = 1;
}

void crd_conn_fd_closing(int fd)
{
	uintptr_t e;
	struct crd_conn *c;

	if ((unsigned)fd >= crd_fdtab_size)
		return;
	e = __atomic_exchange_n(&crd_fdtab[fd], 0, __ATOMIC_ACQ_REL);
	if (!e || (e & 1))
		return;
	c = (struct crd_conn *)e;
	if (__atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL))
		return;
	/* Last reference: nobody else can reach c through the table. Take
	 * the lock anyway, a hook that loaded c before our exchange may
	 * still be inside. */
	if (lock(c)) {
		conn_closed(c, CRD_END_CLOSED);
		unlock(c);
	}
	crd_pool_put(&conn_pool, c);
}

void crd_conn_fd_dup(int oldfd, int newfd)
{
	struct crd_conn *c = crd_conn_get(oldfd);

	if ((unsigned)newfd >= crd_fdtab_size || oldfd == newfd)
		return;
	crd_conn_fd_closing(newfd);
	if (!c)
		return;
	__atomic_add_fetch(&c->refs, 1, __ATOMIC_ACQ_REL);
	__atomic_store_n(&crd_fdtab[newfd], (uintptr_t)c, __ATOMIC_RELEASE);
}

void crd_conn_fd_reset(int fd)
{
	crd_conn_fd_closing(fd);
}

void crd_conn_finish_all(void)
{
	uint32_t high = crd_pool_high(&conn_pool);

	for (uint32_t i = 0; i < high; i++) {
		struct crd_conn *c = crd_pool_at(&conn_pool, i);
		if (!__atomic_load_n(&c->refs, __ATOMIC_ACQUIRE) || !lock(c))
			continue;
		if (__atomic_load_n(&c->refs, __ATOMIC_ACQUIRE))
			conn_closed(c, CRD_END_EXIT);
		unlock(c);
	}
}

void crd_conn_after_fork_child(void)
{
	uint32_t high = crd_pool_high(&conn_pool);

	for (uint32_t i = 0; i < high; i++) {
		struct crd_conn *c = crd_pool_at(&conn_pool, i);
		if (!__atomic_load_n(&c->refs, __ATOMIC_ACQUIRE))
			continue;
		if (__atomic_test_and_set(&c->lock, __ATOMIC_ACQUIRE)) {
			/* Held by a parent thread at fork: that thread does
			 * not exist here and left c half-updated. Ignore c
			 * until its close (its records stay unreachable). */
			c->dead = 1;
			c->fifo_len = 0;
			c->req_rec = NULL;
			c->owed_rec = 0;
			__atomic_clear(&c->lock, __ATOMIC_RELEASE);
			continue;
		}
		if (c->fifo_len || c->req_rec || c->resp_busy) {
			/* The parent's request in progress: freed uncounted,
			 * and the connection ignored here until its close
			 * (the child would join its bytes mid-message). */
			while (c->fifo_len) {
				struct crd_rec *r = fifo_pop(c);
				if (r == c->req_rec)
					c->req_rec = NULL;
				rec_free(r);
			}
			if (c->req_rec)
				rec_free(c->req_rec);
			c->req_rec = NULL;
			c->owed_rec = 0;
			c->dead = 1;
		}
		unlock(c);
	}
}
