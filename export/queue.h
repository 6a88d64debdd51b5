/* queue.h - the bounded export queue between the hooks and the exporter.
 *
 * A bounded MPMC ring of record indices (D. Vyukov's sequence-numbered
 * cells): producers are app threads finishing spans, the consumer is the
 * exporter thread. Push never blocks and never allocates: when the ring is
 * full the caller drops the record and counts it. The capacity is
 * OTEL_BSP_MAX_QUEUE_SIZE rounded up to a power of two.
 *
 * Wake-ups: the exporter sleeps on a futex with its schedule delay as the
 * timeout; a producer issues one FUTEX_WAKE only when its push makes the
 * queue reach a full batch while the exporter sleeps, so there is at most
 * one syscall per batch on the hook path, none per span.
 *
 * Thread safety: any thread. Signal safety: push is async-signal-safe.
 */
#ifndef CRD_QUEUE_H
#define CRD_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "rec.h"

int crd_queue_init(uint32_t capacity, uint32_t wake_at);

/* 0, or -ENOSPC when full (the record stays the caller's). */
int crd_queue_push(struct crd_rec *r);

/* Pop one record, or NULL when empty. */
struct crd_rec *crd_queue_pop(void);

uint32_t crd_queue_len(void);

/* Exporter side: sleep until woken, timeout_ms passes, or the queue holds a
 * batch. Returns at once if the queue already holds a batch, or if a wake
 * came after crd_queue_wait_token() returned token: take the token before
 * checking whatever a wake signals (flush requests), so none is missed. */
uint32_t crd_queue_wait_token(void);
void crd_queue_wait(int timeout_ms, uint32_t token);

/* Crash handler: call fn on every record queued now (published, not yet
 * popped), oldest first, without taking them; returns how many. Reads
 * only: the exporter may pop concurrently (a record can then be seen and
 * exported too). Async-signal-safe, bounded by the queue capacity. */
size_t crd_queue_snapshot(void (*fn)(struct crd_rec *r, void *arg), void *arg);

/* Wake the exporter now (flush requests). */
void crd_queue_kick(void);

/* fork child: the parent owns what was queued; give it back to the pool. */
void crd_queue_after_fork_child(void);

#endif
