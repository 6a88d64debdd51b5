/* sink.h - the one interface every back end implements.
 *
 * The exporter thread hands each sink the same batch of finished spans
 * (records and their semantic-convention views, built once) and frees the
 * records after every sink has returned. A sink owns its transport and
 * retry policy and must return by the deadline it is given. Sinks never
 * touch app state; they run on the exporter thread only, with the I/O
 * guard set, so their sockets are never instrumented.
 */
#ifndef CRD_SINK_H
#define CRD_SINK_H

#include <stddef.h>
#include <stdint.h>

#include "../preload/span.h"
#include "lines.h"

struct crd_batch {
	const struct crd_attr_list *resource;
	const struct crd_span *const *spans;	  /* records, n of them */
	const struct crd_span_view *const *views; /* their views, same order */
	size_t n;
	/* The app's stdout/stderr lines (export/lines.h), for sinks with
	 * ops->logs; sorted as written. */
	const struct crd_log_line *lines;
	size_t nlines;
};

struct crd_sink;

struct crd_sink_ops {
	const char *name;
	/* Deliver or give up on b. deadline_ns (CLOCK_MONOTONIC) is when the
	 * sink must have returned: retries stop there. 0 on success, -errno
	 * when the batch was dropped. */
	int (*export_spans)(struct crd_sink *s, const struct crd_batch *b, uint64_t deadline_ns);
	void (*destroy)(struct crd_sink *s);
	/* 1: also sees spans the sampler dropped (error reporting must not
	 * depend on trace sampling); 0: sampled spans only. */
	int all_spans;
	/* 1: also wants the captured stdout/stderr lines (called even when
	 * the batch has lines but no spans). */
	int logs;
};

struct crd_sink {
	const struct crd_sink_ops *ops;
};

/* Constructors: NULL (after one `cruddur:` message) when unusable. */
struct crd_sink *crd_otlp_sink_new(void);
struct crd_sink *crd_file_sink_new(void);
struct crd_sink *crd_console_sink_new(void);
struct crd_sink *crd_xray_sink_new(void); /* AWS X-Ray daemon (UDP), export/xray.c */
struct crd_sink *
crd_rollbar_sink_new(void); /* Rollbar items: 5xx, spooled crashes (export/rollbar.c) */
struct crd_sink *
crd_cloudwatch_sink_new(void); /* CloudWatch Logs access log (export/cloudwatch.c) */

#endif
