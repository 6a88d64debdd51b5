/* conn.c - per-fd connection state and the HTTP exchange state machine
 * (see conn.h for the model and the thread/signal-safety contract). */
#include "conn.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/un.h>

#include "../export/exporter.h"
#include "../export/queue.h"
#include "config.h"
#include "http1.h"
#include "ids.h"
#include "rec.h"
#include "span.h"
#include "tracectx.h"

/* Requests awaiting a response on one connection. 50 pipelined requests in
 * one write must all get spans; beyond this the connection is given up. */
#define CRD_PIPELINE_MAX 64
/* fd table cap: 1 Mi entries = 8 MiB of address space, touched sparsely. */
#define CRD_FDTAB_MAX (1u << 20)
/* Spins before giving a connection up rather than risking a deadlock with
 * the lock holder (e.g. a signal handler that interrupted it). */
#define CRD_LOCK_SPINS 4096

enum { FIFO_HEAD = 1, FIFO_CONNECT = 2 };

struct crd_conn {
	uint32_t pool_link; /* pool.h: must stay first */
	uint32_t refs;      /* fds referring to this connection (dup) */
	uint8_t lock;
	uint8_t dead;     /* given up: ignored until its last close */
	uint8_t rx_dead;  /* request bytes stopped being HTTP */
	uint8_t tx_busy;  /* a response to the FIFO front has begun */
	uint8_t fifo_head;
	uint8_t fifo_len;
	struct crd_addr peer, local;
	struct crd_rec *rx_rec; /* request being parsed, NULL between requests */
	struct crd_http1_parser rx, tx;
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
	if (crd_cfg.sampler == CRD_SAMPLER_PB_ALWAYS_OFF)
		return 0;
	if (crd_cfg.sampler == CRD_SAMPLER_PB_RATIO)
		return crd_ratio_sampled(trace_id, crd_cfg.sampler_ratio);
	return 1;
}

/* Continue the caller's trace (traceparent, else X-Amzn-Trace-Id) or start
 * one, then decide sampling. */
static void decide_trace(struct crd_span *s)
{
	struct crd_http_req *req = &s->req;
	struct crd_tracectx tc;
	int have_trace = 0, have_parent = 0;

	if (req->traceparent[0] && !(req->flags & CRD_REQ_DUP_TRACEPARENT) &&
	    !crd_traceparent_parse(req->traceparent, &tc)) {
		have_trace = have_parent = 1;
	} else {
		/* W3C §3.3.1: without a valid traceparent, tracestate is void. */
		req->tracestate[0] = 0;
		if (req->xamzn[0] && !crd_xamzn_parse(req->xamzn, &tc)) {
			have_trace = 1;
			have_parent = !crd_all_zero_bytes(tc.span_id, 8);
		}
	}
	if (have_trace)
		memcpy(s->trace_id, tc.trace_id, 16);
	else
		crd_new_trace_id(s->trace_id);
	if (have_parent) {
		memcpy(s->parent_span_id, tc.span_id, 8);
		s->parent_remote = 1;
	}
	crd_new_span_id(s->span_id);
	s->sampled = (uint8_t)sample(have_parent ? tc.sampled : -1, s->trace_id);
}

/* ---- record life ---- */

static void finish(struct crd_rec *r)
{
	if (!r->span.end_ns)
		r->span.end_ns = crd_now_ns();
	if (!r->span.sampled) {
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

/* Stop tracking: pending requests cannot get a faithful span any more. */
static void give_up(struct crd_conn *c)
{
	if (c->dead)
		return;
	c->dead = 1;
	crd_stat_add(&crd_stats.conns_untracked, 1);
	while (c->fifo_len) {
		struct crd_rec *r = fifo_pop(c);
		if (r == c->rx_rec)
			c->rx_rec = NULL;
		crd_pool_put(&crd_rec_pool, r);
		crd_stat_add(&crd_stats.spans_dropped, 1);
	}
	if (c->rx_rec) {
		/* Answered already, its request body still arriving: keep it. */
		if (c->rx_rec->done & CRD_DONE_RESP)
			finish(c->rx_rec);
		else
			crd_pool_put(&crd_rec_pool, c->rx_rec);
		c->rx_rec = NULL;
	}
}

/* ---- request side ---- */

static int begin_request(struct crd_conn *c)
{
	struct crd_rec *r = crd_pool_get(&crd_rec_pool);
	struct crd_span *s;

	if (!r) {
		crd_stat_add(&crd_stats.spans_dropped, 1);
		give_up(c);
		return 0;
	}
	r->type = CRD_REC_SPAN;
	r->done = 0;
	s = &r->span;
	/* Everything before the request head; crd_http1_begin_request
	 * initialises s->req. */
	memset(s, 0, offsetof(struct crd_span, req));
	s->kind = CRD_KIND_SERVER;
	s->start_ns = crd_now_ns();
	s->resp_content_length = -1;
	s->peer = c->peer;
	s->local = c->local;
	crd_http1_begin_request(&c->rx, &s->req);
	c->rx_rec = r;
	return 1;
}

static void request_head(struct crd_conn *c)
{
	struct crd_rec *r = c->rx_rec;
	unsigned slot;
	uint8_t flags = 0;

	decide_trace(&r->span);
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
	struct crd_rec *r = c->rx_rec;

	c->rx_rec = NULL;
	r->done |= CRD_DONE_REQ;
	if (r->done & CRD_DONE_RESP)
		finish(r); /* answered before its body was read */
}

static void request_error(struct crd_conn *c)
{
	struct crd_rec *r = c->rx_rec;

	c->rx_dead = 1;
	c->rx_rec = NULL;
	/* A head never completed is no request: no span. One in the FIFO
	 * (bad body) still gets its response tracked. */
	if (r && !(r->done & CRD_DONE_HEAD))
		crd_pool_put(&crd_rec_pool, r);
	if (!c->fifo_len && !c->tx_busy)
		give_up(c);
}

static void rx_bytes(struct crd_conn *c, const char *buf, size_t n)
{
	/* Begun on empty lines only (CRLF after a body): the request really
	 * starts with these bytes. */
	if (c->rx_rec && n && crd_http1_idle(&c->rx))
		c->rx_rec->span.start_ns = crd_now_ns();
	while (!c->dead && !c->rx_dead) {
		size_t used = 0;
		int ev;

		if (!c->rx_rec) {
			if (!n || !begin_request(c))
				return;
		}
		ev = crd_http1_feed(&c->rx, buf, n, &used);
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

/* ---- response side ---- */

static void response_head(struct crd_conn *c)
{
	struct crd_span *s = &fifo_front(c)->span;

	s->status = c->tx.resp.status;
	s->resp_content_length = c->tx.resp.content_length;
}

static void response_done(struct crd_conn *c, int end_reason)
{
	uint16_t st = c->tx.resp.status;
	uint8_t flags = c->fifo_flags[c->fifo_head];
	struct crd_rec *r;

	c->tx_busy = 0;
	/* Interim 1xx (100 Continue): the final response follows. */
	if (st >= 100 && st < 200 && st != 101 && end_reason == CRD_END_OK)
		return;
	r = fifo_pop(c);
	r->span.end_ns = crd_now_ns();
	r->span.end_reason = (uint8_t)end_reason;
	r->span.resp_body_size = c->tx.resp.body_size;
	r->done |= CRD_DONE_RESP;
	if (r->done & CRD_DONE_REQ || r != c->rx_rec)
		finish(r);
	/* After a protocol switch or a tunnel the bytes are not HTTP. */
	if (st == 101 || ((flags & FIFO_CONNECT) && st / 100 == 2))
		give_up(c);
	else if (c->rx_dead && !c->fifo_len)
		give_up(c);
}

static void tx_bytes(struct crd_conn *c, const char *buf, size_t n)
{
	while (!c->dead) {
		size_t used = 0;
		int ev;

		if (!c->tx_busy) {
			if (!n)
				return;
			if (!c->fifo_len) {
				give_up(c); /* the server spoke unasked: not HTTP/1 */
				return;
			}
			crd_http1_begin_response(&c->tx, c->fifo_flags[c->fifo_head] & FIFO_HEAD);
			c->tx_busy = 1;
		}
		ev = crd_http1_feed(&c->tx, buf, n, &used);
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

void crd_conn_rx(struct crd_conn *c, const void *buf, size_t n)
{
	WITH_LOCK(c, rx_bytes(c, buf, n));
}

void crd_conn_tx(struct crd_conn *c, const void *buf, size_t n)
{
	WITH_LOCK(c, tx_bytes(c, buf, n));
}

void crd_conn_rx_iov(struct crd_conn *c, const struct iovec *iov, size_t iovcnt, size_t n)
{
	WITH_LOCK(c, {
		for (size_t i = 0; i < iovcnt && n; i++) {
			size_t k = iov[i].iov_len < n ? iov[i].iov_len : n;
			rx_bytes(c, iov[i].iov_base, k);
			n -= k;
		}
	});
}

void crd_conn_tx_iov(struct crd_conn *c, const struct iovec *iov, size_t iovcnt, size_t n)
{
	WITH_LOCK(c, {
		for (size_t i = 0; i < iovcnt && n; i++) {
			size_t k = iov[i].iov_len < n ? iov[i].iov_len : n;
			tx_bytes(c, iov[i].iov_base, k);
			n -= k;
		}
	});
}

void crd_conn_tx_opaque(struct crd_conn *c, size_t n)
{
	/* sendfile carries bodies (nginx static files, after a head written
	 * with write/writev): counted, not parsed. Unseen bytes anywhere
	 * else mean we lost track. */
	WITH_LOCK(c, {
		int ev = c->tx_busy ? crd_http1_skip_body(&c->tx, n) : CRD_HTTP1_ERROR;
		if (ev == CRD_HTTP1_MSG_DONE)
			response_done(c, CRD_END_OK);
		else if (ev == CRD_HTTP1_ERROR)
			give_up(c);
	});
}

void crd_conn_rx_lost(struct crd_conn *c)
{
	WITH_LOCK(c, give_up(c));
}

void crd_conn_accepted(int listen_fd, int fd, const struct sockaddr *peer, socklen_t peerlen)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	struct crd_conn *c;

	(void)listen_fd;
	if ((unsigned)fd >= crd_fdtab_size)
		return;
	/* A stale entry means the previous socket was closed behind our back
	 * (close_range, a libc-internal close): end it now. */
	crd_conn_fd_closing(fd);
	c = crd_pool_get(&conn_pool);
	if (!c) {
		crd_stat_add(&crd_stats.conns_untracked, 1);
		return;
	}
	memset((char *)c + sizeof(uint32_t), 0, offsetof(struct crd_conn, rx) - sizeof(uint32_t));
	c->refs = 1;
	crd_http1_init(&c->rx, CRD_HTTP1_REQUEST);
	crd_http1_init(&c->tx, CRD_HTTP1_RESPONSE);
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

/* The last fd of c is gone: end what can be ended, free the rest. */
static void conn_closed(struct crd_conn *c, int end_reason)
{
	if (!c->dead) {
		if (c->tx_busy)
			response_done(c, crd_http1_eof(&c->tx) == CRD_HTTP1_MSG_DONE ? CRD_END_OK
										    : end_reason);
		/* Requests never answered still happened: one span each. */
		while (c->fifo_len && !c->dead) {
			c->tx.resp.status = 0;
			c->tx.resp.body_size = 0;
			c->tx_busy = 1;
			response_done(c, end_reason);
		}
	}
	/* A connection abandoned without give_up() (lock timeout) still
	 * holds records: they are lost, and counted. */
	while (c->fifo_len) {
		struct crd_rec *r = fifo_pop(c);
		if (r == c->rx_rec)
			c->rx_rec = NULL;
		crd_pool_put(&crd_rec_pool, r);
		crd_stat_add(&crd_stats.spans_dropped, 1);
	}
	c->dead = 1;
	if (c->rx_rec) {
		if (c->rx_rec->done & CRD_DONE_RESP)
			finish(c->rx_rec);
		else
			crd_pool_put(&crd_rec_pool, c->rx_rec);
		c->rx_rec = NULL;
	}
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
