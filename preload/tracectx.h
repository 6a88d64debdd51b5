/* tracectx.h - W3C trace context and X-Amzn-Trace-Id, parse and format.
 *
 * Strict parsing per W3C Trace Context level 1 §3.2: lowercase hex only,
 * version ff invalid, all-zero trace or span id invalid, version 00 exactly
 * 55 chars, a future version may be longer only after a '-'. Anything
 * invalid is ignored by the caller (a new trace starts).
 *
 * Thread/signal safety: pure functions, async-signal-safe.
 */
#ifndef CRD_TRACECTX_H
#define CRD_TRACECTX_H

#include <stddef.h>
#include <stdint.h>

#define CRD_TRACEPARENT_LEN 55

struct crd_tracectx {
	uint8_t trace_id[16];
	uint8_t span_id[8]; /* the caller's span: our parent */
	int8_t sampled;	    /* 1, 0, or -1 (undecided: X-Ray Sampled=? or absent) */
};

/* 0 on a valid traceparent value, -EINVAL otherwise. */
int crd_traceparent_parse(const char *s, struct crd_tracectx *out);

/* Write the 55-char version-00 value plus NUL into out[56]. */
void crd_traceparent_format(char out[CRD_TRACEPARENT_LEN + 1], const uint8_t trace_id[16],
			    const uint8_t span_id[8], int sampled);

/* X-Amzn-Trace-Id: Root=1-<8 hex>-<24 hex>[;Parent=<16 hex>][;Sampled=0|1|?]
 * (fields in any order, unknown ones ignored). 0 when Root is valid; a
 * missing or bad Parent leaves span_id zero. -EINVAL otherwise. */
int crd_xamzn_parse(const char *s, struct crd_tracectx *out);

/* Lowercase hex of n bytes into out (2n chars + NUL). */
void crd_hex(char *out, const uint8_t *p, size_t n);

/* Sampling decision of a TraceIdRatioBased sampler (OTel spec: compare the
 * trace id's low 8 bytes, as an integer, against ratio * 2^64). */
int crd_ratio_sampled(const uint8_t trace_id[16], double ratio);

#endif
