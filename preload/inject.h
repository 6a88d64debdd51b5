/* inject.h - adding trace headers to outgoing HTTP/1.x requests.
 *
 * Pure, allocation-free helpers for the write hooks of client
 * connections. A request gets our headers only when its whole head is in
 * one write (write, send, writev, sendmsg) and it is a well-formed HTTP/1.x
 * request line: then we know the app sets no traceparent of its own, so a
 * header is never duplicated or overwritten. The headers go right after
 * the request line. A head split across writes is sent untouched (safe,
 * just not propagated) — every client we know writes the head at once.
 *
 * Thread/signal safety: pure functions.
 */
#ifndef CRD_INJECT_H
#define CRD_INJECT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* Heads longer than this are not scanned (and not injected into). */
#define CRD_INJECT_SCAN_MAX 16384
/* Our header block: traceparent (70) + tracestate (14 + 512) + X-Amzn-Trace-Id (~90). */
#define CRD_INJECT_MAX 720

struct crd_inject_scan {
	size_t line_end; /* offset just after the request line's LF */
	size_t head_end; /* offset just after the head's empty line */
	uint8_t has_traceparent, has_tracestate, has_xamzn;
};

/* 1 when the bytes start with a complete, well-formed HTTP/1.x request
 * head (request line + headers + empty line); 0 otherwise. */
int crd_inject_scan(const struct iovec *iov, size_t iovcnt, struct crd_inject_scan *out);

/* Format our header lines (each ending CRLF) into out[CRD_INJECT_MAX]:
 * traceparent always; tracestate when non-empty, want_tracestate, and
 * nothing but visible ASCII, SP and HTAB (else it is dropped: it could
 * split our header line);
 * X-Amzn-Trace-Id when want_xamzn. Returns the length. */
size_t crd_inject_format(char *out, const uint8_t trace_id[16], const uint8_t span_id[8],
			 int sampled, const char *tracestate, int want_tracestate, int want_xamzn);

/* Copy in[0..cnt) into out with ins inserted at byte offset at (at <= the
 * total). Returns the number of out entries, or -1 if outcap is too small. */
int crd_iov_splice(const struct iovec *in, size_t cnt, size_t at, const void *ins, size_t inslen,
		   struct iovec *out, size_t outcap);

#endif
