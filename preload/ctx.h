/* ctx.h - which server request is this thread serving right now?
 *
 * The parent of a client span is the server span the same thread is
 * serving. That is exact for thread-per-request servers; an event loop
 * serves many requests on one thread, so a client call is linked only when
 * exactly one server request on that thread is in progress, otherwise it
 * starts a new trace (no giant glued traces).
 *
 * A server request enters the context of the thread that read its head
 * and leaves when its span ends, on whichever thread that happens. Per
 * thread state lives in pooled slots (never unmapped) with a generation
 * number, so a request outliving its thread never writes freed memory.
 *
 * Thread safety: any thread; counters are atomics. Signal safety: yes
 * after the thread's first use (which takes a pool slot and may allocate
 * a pthread key slot).
 */
#ifndef CRD_CTX_H
#define CRD_CTX_H

#include <stdint.h>

struct crd_rec;

struct crd_ctx_ref {
	uint32_t slot; /* ctx slot index + 1; 0 = none */
	uint32_t gen;
};

int crd_ctx_init(void);

/* r's head was read on this thread: it is now in progress here. */
void crd_ctx_enter(struct crd_rec *r, struct crd_ctx_ref *ref);

/* The request behind ref ended (any thread). Idempotent: clears ref. */
void crd_ctx_leave(const struct crd_rec *r, struct crd_ctx_ref *ref);

/* The one server request in progress on this thread, or NULL when there
 * are none or several. */
struct crd_rec *crd_ctx_current(void);

#endif
