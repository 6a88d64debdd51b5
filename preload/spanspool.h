/* spanspool.h - finished spans saved at a crash, shipped at the next start.
 *
 * Spans wait in the export queue for up to OTEL_BSP_SCHEDULE_DELAY; a
 * crash (SIGSEGV, SIGABRT, ...) would lose them. The crash handler
 * (preload/crash.c) calls crd_spanspool_write(), which copies every span
 * record still queued, and the batch the exporter holds but has not
 * finished sending, into the spool directory (CRUDDUR_SPOOL_DIR, the one
 * crash reports use) as one file:
 *
 *   spans-<time ns>-<pid>-<tid>.crs
 *
 * written as .tmp-<name> (mode 0600 whatever the umask) and renamed into
 * place, so a reader never sees half of it. The format is raw and
 * self-describing: a struct crd_spans_hdr (magic, its own size, the size
 * and a layout fingerprint of struct crd_span, byte order, pid, time,
 * service name and executable of the crashed process), then the span
 * records as they are in memory. A reader with another layout drops the
 * file with one message rather than misread it. Each record's target has
 * user:password@ and secret query values redacted before it is written
 * (issue #8: no secret in any spool file).
 *
 * The next start of the library ships them: its exporter thread, when it
 * starts, claims each file (rename to <name>.sending-<pid>) of the same
 * service, exports its spans to the configured sinks with the crashed
 * process's service.name, process.pid and process.executable.name, and
 * removes it (export/spanship.c). scripts/cruddur-run, when its command
 * died by a signal, runs a short process under the library with
 * CRUDDUR_SHIP_SPOOL=1, which ships every file regardless of service.
 * Spans the exporter was sending when the crash came may reach a back end
 * twice; none is lost.
 */
#ifndef CRD_SPANSPOOL_H
#define CRD_SPANSPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "span.h"

#define CRD_SPANS_PREFIX     "spans-"
#define CRD_SPANS_SUFFIX     ".crs"
#define CRD_SPANS_MAGIC	     "cruddur-spans 1\n" /* 16 bytes, no NUL */
#define CRD_SPANS_BYTE_ORDER 0x01020304u
/* Service name and executable bytes kept in the header. */
#define CRD_SPANS_SERVICE_MAX 256
#define CRD_SPANS_EXE_MAX     64

/* Changes whenever struct crd_span or struct crd_http_req is reshaped:
 * field offsets and sizes, folded. Together with the record size it tells
 * a reader whether the records are the ones it knows. */
#define CRD_SPAN_LAYOUT                                                                            \
	((uint32_t)(offsetof(struct crd_span, kind) * 3u +                                         \
		    offsetof(struct crd_span, status) * 5u +                                       \
		    offsetof(struct crd_span, start_ns) * 7u +                                     \
		    offsetof(struct crd_span, resp_content_length) * 11u +                         \
		    offsetof(struct crd_span, peer) * 13u +                                        \
		    offsetof(struct crd_span, local) * 17u +                                       \
		    offsetof(struct crd_span, error_type) * 19u +                                  \
		    offsetof(struct crd_span, proto_version) * 23u +                               \
		    offsetof(struct crd_span, req) * 29u +                                         \
		    offsetof(struct crd_http_req, target) * 31u +                                  \
		    offsetof(struct crd_http_req, host) * 37u +                                    \
		    offsetof(struct crd_http_req, user_agent) * 41u +                              \
		    offsetof(struct crd_http_req, xff) * 43u +                                     \
		    offsetof(struct crd_http_req, traceparent) * 47u +                             \
		    offsetof(struct crd_http_req, tracestate) * 53u +                              \
		    offsetof(struct crd_http_req, xamzn) * 59u +                                   \
		    offsetof(struct crd_http_req, content_length) * 61u +                          \
		    sizeof(struct crd_http_req) * 67u + sizeof(struct crd_addr) * 71u))

struct crd_spans_hdr {
	char magic[16];	     /* CRD_SPANS_MAGIC */
	uint32_t hdr_size;   /* sizeof(struct crd_spans_hdr): records start here */
	uint32_t span_size;  /* sizeof(struct crd_span) */
	uint32_t layout;     /* CRD_SPAN_LAYOUT */
	uint32_t byte_order; /* CRD_SPANS_BYTE_ORDER as the writer stored it */
	int32_t pid;
	uint32_t reserved;
	uint64_t time_ns;		     /* CLOCK_REALTIME of the crash */
	char service[CRD_SPANS_SERVICE_MAX]; /* NUL-terminated */
	char exe[CRD_SPANS_EXE_MAX];	     /* NUL-terminated */
};

/* Crash handler only (async-signal-safe: openat, write, fchmod, renameat,
 * unlinkat, close; no malloc, no locks, no stdio). dfd: the spool
 * directory, already checked. Writes the file unless no span is queued.
 * Returns the number of spans written, or -errno. Bounded: at most the
 * queue capacity plus one batch, in 64 KiB writes. */
int crd_spanspool_write(int dfd, long long now_ns, int tid);

/* The name of the file written by the last crd_spanspool_write() (tests,
 * the handler's message). */
const char *crd_spanspool_last_name(void);

/* Is this directory entry a spans file we may claim ("spans-*.crs", or a
 * claim "spans-*.crs.sending-<pid>" whose process is gone)? Writes the
 * base name into base. Exporter thread. */
int crd_spanspool_claimable(const char *name, char *base, size_t cap);

/* Check a file's header against this build: 0, or -EPROTO (not ours,
 * another layout) / -EINVAL (size not header + whole records). */
int crd_spanspool_check(const struct crd_spans_hdr *h, size_t file_size);

#endif
