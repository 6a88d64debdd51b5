/* cw_enc.h - CloudWatch Logs events and PutLogEvents batches (pure code).
 *
 * Access-log lines from server spans, the PutLogEvents JSON body, and the
 * batch limits of the service. No I/O: unit-tested in
 * tests/unit/test_cloudwatch.c; the sink (export/cloudwatch.c) sends.
 */
#ifndef CRD_CW_ENC_H
#define CRD_CW_ENC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../preload/span.h"
#include "lines.h"

/* PutLogEvents limits (CloudWatch Logs API reference, PutLogEvents;
 * docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutLogEvents.html):
 * a batch is at most 1,048,576 bytes, counted as the sum of the UTF-8
 * message sizes plus 26 bytes per event; at most 10,000 events; events in
 * chronological order; a batch may not span more than 24 hours. One event
 * is at most 256 KB including its 26 bytes (CloudWatch Logs quotas). */
#define CRD_CW_MAX_BATCH_BYTES	1048576
#define CRD_CW_EVENT_OVERHEAD	26
#define CRD_CW_MAX_BATCH_EVENTS 10000
#define CRD_CW_MAX_SPAN_MS	(24LL * 3600 * 1000)
#define CRD_CW_MAX_EVENT_BYTES	262144
/* Appended to a message cut to fit CRD_CW_MAX_EVENT_BYTES. */
#define CRD_CW_TRUNC_MARKER "...[truncated by cruddur]"

struct crd_cw_event {
	int64_t ts_ms;	 /* unix epoch milliseconds */
	const char *msg; /* UTF-8, not NUL-terminated necessarily */
	size_t len;	 /* at most CRD_CW_MAX_EVENT_BYTES - 26 after crd_cw_fit() */
	int truncated;	 /* msg must be followed by the marker (crd_cw_fit) */
};

/* Bytes the service counts for e (message + marker + 26). */
size_t crd_cw_event_size(const struct crd_cw_event *e);

/* Cut e->len so that the message plus the marker fits one event (at a
 * UTF-8 character boundary); sets truncated. 1 when it was cut. */
int crd_cw_fit(struct crd_cw_event *e);

/* Sort events by timestamp, stable (insertion order kept for ties). */
void crd_cw_sort(struct crd_cw_event *ev, size_t n);

/* How many events from ev[0..n) (sorted) go into the next batch: at least
 * one when n > 0, within the bytes, count and 24 h limits. */
size_t crd_cw_batch_len(const struct crd_cw_event *ev, size_t n);

/* The PutLogEvents body for ev[0..n) into out. Returns its length or
 * -ENOSPC. crd_cw_body_bound() is enough room. */
ssize_t crd_cw_put_body(char *out, size_t cap, const char *group, const char *stream,
			const struct crd_cw_event *ev, size_t n);
size_t crd_cw_body_bound(const char *group, const char *stream, const struct crd_cw_event *ev,
			 size_t n);

/* One access-log line for a finished SERVER span (text, or a JSON object
 * when json). Returns its length or -ENOSPC. */
ssize_t crd_cw_access_line(char *out, size_t cap, const struct crd_span *sp,
			   const struct crd_span_view *v, int json);

/* One event for a captured stdout/stderr line. Text: the line as written
 * (plus CRD_CW_TRUNC_MARKER when bytes of it were not captured), then
 * " trace_id=<32 hex> span_id=<16 hex>" when the writing thread was
 * serving a request. JSON: {"timestamp", "stream" ("stdout"/"stderr"),
 * "message", "trace_id", "span_id" (null without a request)}. Returns the
 * length or -ENOSPC; CRD_CW_STDIO_BOUND(len) bytes are always enough. */
#define CRD_CW_STDIO_BOUND(len) ((len)*6 + 224)
ssize_t crd_cw_stdio_line(char *out, size_t cap, const struct crd_log_line *l, int json);

#endif
