/* stdcap.h - capture of the app's stdout/stderr lines (CRUDDUR_CAPTURE_STDIO).
 *
 * With CloudWatch Logs on and CRUDDUR_CAPTURE_STDIO=1, every byte the app
 * writes to fd 1 or 2 (write/writev, and the C stdio calls that never
 * reach our write hook, hooks/stdio.c) is copied into log records after
 * the real call moved it: the app's output itself is never touched. Each
 * record carries the wall-clock time, the writing thread and the trace
 * context of the one server request that thread is serving, if any.
 * Lines are assembled on the exporter thread (export/lines.c).
 *
 * Hot path: pooled records, the lock-free queue, no malloc, no lock, no
 * syscall. A write longer than CRD_STDCAP_MAX_RECS records is cut (the
 * line is marked truncated); when the pool or the queue is full the bytes
 * are dropped and counted (crd_stats.log_bytes_dropped).
 *
 * Thread safety: any thread. Signal safety: as the other hooks (the
 * pool and the queue are lock-free); our own `cruddur:` lines never come
 * here (they use the real write, and the I/O guard is checked).
 */
#ifndef CRD_STDCAP_H
#define CRD_STDCAP_H

#include <stddef.h>
#include <sys/uio.h>

#include "cloudwatch.h"
#include "guard.h"
#include "init.h"

/* 64 records = 128 KiB of one write: far beyond a log line, and a bound
 * on what one call can take from the record pool shared with spans. */
#define CRD_STDCAP_MAX_RECS 64

/* Should bytes written to fd be captured? One branch when capture is off. */
static inline int crd_stdcap_wants(int fd)
{
	return __builtin_expect(crd_cw_cfg.capture_stdio, 0) && (fd == 1 || fd == 2) &&
	       crd_active && !crd_guard;
}

/* The app wrote the first n bytes of iov[0..iovcnt) to fd (1 or 2),
 * followed by lost more bytes we could not see (the line is marked cut). */
void crd_stdcap_iov(int fd, const struct iovec *iov, size_t iovcnt, size_t n, size_t lost);

static inline void crd_stdcap(int fd, const void *buf, size_t n)
{
	struct iovec v = {(void *)buf, n};
	crd_stdcap_iov(fd, &v, 1, n, 0);
}

#endif
