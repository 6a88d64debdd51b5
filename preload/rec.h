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

enum crd_rec_type { CRD_REC_SPAN = 1, CRD_REC_LOG = 2 };

/* Bytes of app output one log record carries (preload/stdio.c); a longer
 * write takes several records. */
#define CRD_LOG_CHUNK 2048

/* A piece of what the app wrote to stdout or stderr, with the trace
 * context of the server request the writing thread was serving. Lines
 * are assembled on the exporter thread (export/lines.c). */
struct crd_logrec {
	uint64_t ts_ns;	   /* wall clock of the write */
	uint32_t writer;   /* per-thread number: partial lines are per writer */
	uint16_t len;	   /* bytes in data */
	uint8_t fd;	   /* 1 or 2 */
	uint8_t has_trace; /* trace_id/span_id are set */
	uint8_t cut;	   /* the rest of this write was not captured */
	uint8_t trace_id[16];
	uint8_t span_id[8];
	char data[CRD_LOG_CHUNK];
};

/* Progress bits of a server/client exchange (struct crd_rec.done). */
enum {
	CRD_DONE_HEAD = 1, /* request head parsed: trace context decided */
	CRD_DONE_REQ = 2,  /* request message complete */
	CRD_DONE_RESP = 4, /* response message complete (or given up) */
	CRD_DONE_CTX = 8,  /* trace context decided (client: at injection) */
};

struct crd_rec {
	uint32_t pool_link;	/* pool.h: free-list link, must stay first */
	uint8_t type;		/* enum crd_rec_type */
	uint8_t done;		/* CRD_DONE_* */
	struct crd_ctx_ref ctx; /* server: the thread context it is in */
	union {
		struct crd_span span;  /* CRD_REC_SPAN */
		struct crd_logrec log; /* CRD_REC_LOG */
	};
};
_Static_assert(sizeof(struct crd_logrec) <= sizeof(struct crd_span),
	       "a log record must not grow the record pool");

/* The record pool, shared by the hooks and the exporter. */
extern struct crd_pool crd_rec_pool;

/* Counters, reported by the exporter (relaxed atomics). */
struct crd_stats {
	uint64_t spans_dropped;	    /* queue full, pool empty, fifo overflow */
	uint64_t spans_exported;    /* accepted by at least the first sink */
	uint64_t conns_untracked;   /* connections given up (not HTTP, limits) */
	uint64_t log_bytes_dropped; /* captured stdout/stderr bytes not shipped */
};
extern struct crd_stats crd_stats;

static inline void crd_stat_add(uint64_t *c, uint64_t n)
{
	__atomic_add_fetch(c, n, __ATOMIC_RELAXED);
}

#endif
