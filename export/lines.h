/* lines.h - stdout/stderr chunks to log lines (exporter thread only).
 *
 * preload/stdcap.c queues what the app wrote as CRD_REC_LOG records, one
 * or more per write. Here they become lines: split at '\n' (a trailing
 * '\r' dropped, empty lines skipped: a log event cannot be empty), with a
 * partial line kept per writing thread and fd until its newline comes,
 * until it is CRD_LINES_PARTIAL_MS old, or until the exporter flushes
 * (exit, exec). A line longer than CRD_LINES_MAX is shipped in pieces.
 * Each line has the time and trace context of its first chunk.
 *
 * Not thread safe: the exporter thread owns all of it.
 */
#ifndef CRD_LINES_H
#define CRD_LINES_H

#include <stddef.h>
#include <stdint.h>

#include "../preload/rec.h"

#define CRD_LINES_PARTIAL_MS 1000  /* a line without its newline waits this long */
#define CRD_LINES_MAX	     16384 /* longer lines are shipped in pieces */
#define CRD_LINES_SLOTS	     32	   /* writers with a partial line at once (LRU) */

struct crd_log_line {
	int64_t ts_ms; /* unix epoch milliseconds of the first chunk */
	const char *text;
	size_t len;
	uint8_t fd;	   /* 1 stdout, 2 stderr */
	uint8_t has_trace; /* trace_id/span_id valid */
	uint8_t truncated; /* bytes of this line were not captured */
	uint8_t trace_id[16];
	uint8_t span_id[8];
};

/* Take one record's bytes (the caller frees the record). */
void crd_lines_feed(const struct crd_logrec *l);

/* The lines completed so far, plus partial lines older than
 * CRD_LINES_PARTIAL_MS at now_ns (wall clock), or all partial lines when
 * all. *out stays valid until crd_lines_clear(). */
size_t crd_lines_take(uint64_t now_ns, int all, const struct crd_log_line **out);

/* The sinks are done with the taken lines. */
void crd_lines_clear(void);

/* Forget everything (fork child: the parent ships its own lines). */
void crd_lines_reset(void);

#endif
