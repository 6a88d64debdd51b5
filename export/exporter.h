/* exporter.h - the background thread that drains the queue into sinks.
 *
 * Started lazily by the first finished span (never in the constructor),
 * restarted lazily in fork children, flushed at exit and before exec
 * within a time limit. Its thread blocks every signal and sets the I/O
 * guard for its whole life.
 */
#ifndef CRD_EXPORTER_H
#define CRD_EXPORTER_H

#include <stddef.h>

/* Start the thread if it is not running. Cheap when it is (one load). */
void crd_exporter_ensure(void);

/* Export everything queued now; wait at most timeout_ms. Returns 0 when
 * done, -ETIMEDOUT otherwise. Must not be called from the exporter. */
int crd_exporter_flush(int timeout_ms);

/* fork child: forget the parent's thread; the next span starts ours. */
void crd_exporter_after_fork_child(void);

/* Process exit: finish in-flight spans, flush within
 * OTEL_BSP_EXPORT_TIMEOUT, and stop. Idempotent. */
void crd_exporter_exit(void);

/* Crash handler: the span records the exporter has taken from the queue
 * and not given back (their export may be under way); *recs gets the
 * array. Async-signal-safe. */
struct crd_rec;
size_t crd_exporter_held(struct crd_rec *const **recs);

#endif
