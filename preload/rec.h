/* rec.h - the records that flow from the hooks to the exporter.
 *
 * A record is born in the hook path (from the record pool), filled in place
 * by the connection state machine, pushed on the export queue when
 * finished, and returned to the pool by the exporter thread after every
 * sink has seen it. Ownership is always single: the connection that fills
 * it, then the queue, then the exporter.
 */
#ifndef CRD_REC_H
#define CRD_REC_H

#include <stdint.h>

#include "ctx.h"
#include "pool.h"
#include "span.h"

enum crd_rec_type { CRD_REC_SPAN = 1 };

/* Progress bits of a server/client exchange (struct crd_rec.done). */
enum {
	CRD_DONE_HEAD = 1, /* request head parsed: trace context decided */
	CRD_DONE_REQ = 2,  /* request message complete */
	CRD_DONE_RESP = 4, /* response message complete (or given up) */
	CRD_DONE_CTX = 8,  /* trace context decided (client: at injection) */
};

struct crd_rec {
	uint32_t pool_link; /* pool.h: free-list link, must stay first */
	uint8_t type;       /* enum crd_rec_type */
	uint8_t done;       /* CRD_DONE_* */
	struct crd_ctx_ref ctx; /* server: the thread context it is in */
	struct crd_span span;
};

/* The record pool, shared by the hooks and the exporter. */
extern struct crd_pool crd_rec_pool;

/* Counters, reported by the exporter (relaxed atomics). */
struct crd_stats {
	uint64_t spans_dropped;  /* queue full, pool empty, fifo overflow */
	uint64_t spans_exported; /* accepted by at least the first sink */
	uint64_t conns_untracked; /* connections given up (not HTTP, limits) */
};
extern struct crd_stats crd_stats;

static inline void crd_stat_add(uint64_t *c, uint64_t n)
{
	__atomic_add_fetch(c, n, __ATOMIC_RELAXED);
}

#endif
