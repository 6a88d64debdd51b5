/* stdcap.c - stdout/stderr capture into log records (see stdcap.h). */
#include "stdcap.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "../export/exporter.h"
#include "../export/queue.h"
#include "conn.h"
#include "ctx.h"
#include "ids.h"
#include "rec.h"

/* Per-thread writer number (0: not assigned yet), so that the exporter
 * keeps each thread's partial line apart. */
static __thread uint32_t my_writer __attribute__((tls_model("initial-exec")));
static uint32_t next_writer;

/* The trace context of the request this thread serves, if exactly one. */
static void tag(struct crd_logrec *l)
{
	struct crd_rec *p = crd_ctx_current();

	l->has_trace = 0;
	if (!p || !(p->done & CRD_DONE_HEAD))
		return;
	memcpy(l->trace_id, p->span.trace_id, 16);
	memcpy(l->span_id, p->span.span_id, 8);
	/* p may have ended on another thread meanwhile (see
	 * crd_client_context): keep the tag only if it is still current. */
	if (crd_ctx_current() == p && !memcmp(l->trace_id, p->span.trace_id, 16))
		l->has_trace = 1;
}

void crd_stdcap_iov(int fd, const struct iovec *iov, size_t iovcnt, size_t n, size_t lost)
{
	int e = errno;
	size_t vi = 0, off = 0, recs = 0;
	struct crd_logrec proto;

	if (!n)
		goto out;
	if (!my_writer)
		my_writer = __atomic_add_fetch(&next_writer, 1, __ATOMIC_RELAXED);
	proto.ts_ns = crd_now_ns();
	proto.writer = my_writer;
	proto.fd = (uint8_t)fd;
	proto.cut = 0;
	tag(&proto);
	while (n) {
		struct crd_rec *r = recs < CRD_STDCAP_MAX_RECS ? crd_pool_get(&crd_rec_pool) : NULL;
		struct crd_logrec *l;
		size_t len = 0;

		if (!r) {
			crd_stat_add(&crd_stats.log_bytes_dropped, n + lost);
			break;
		}
		r->type = CRD_REC_LOG;
		r->done = 0;
		r->ctx.slot = 0;
		l = &r->log;
		memcpy(l, &proto, offsetof(struct crd_logrec, data));
		while (n && len < CRD_LOG_CHUNK) {
			size_t k = iov[vi].iov_len - off;
			if (k > n)
				k = n;
			if (k > CRD_LOG_CHUNK - len)
				k = CRD_LOG_CHUNK - len;
			memcpy(l->data + len, (const char *)iov[vi].iov_base + off, k);
			len += k;
			n -= k;
			off += k;
			if (off == iov[vi].iov_len) {
				vi++;
				off = 0;
			}
		}
		l->len = (uint16_t)len;
		recs++;
		/* Out of records for this write: the line is cut here. (r is
		 * the exporter's once pushed: decide before.) */
		int cut = (n && recs == CRD_STDCAP_MAX_RECS) || (!n && lost);
		l->cut = (uint8_t)cut;
		if (crd_queue_push(r)) {
			crd_pool_put(&crd_rec_pool, r);
			crd_stat_add(&crd_stats.log_bytes_dropped, len + n + lost);
			break;
		}
		if (cut) {
			crd_stat_add(&crd_stats.log_bytes_dropped, n + lost);
			break;
		}
	}
	if (recs)
		crd_exporter_ensure();
out:
	errno = e;
}
