/* xray.h - X-Ray segment documents from span batches (the sink's encoder).
 *
 * Exposed for the unit tests; the sink itself is crd_xray_sink_new()
 * (sink.h). Each sampled SERVER span becomes a segment document; CLIENT
 * spans whose parent server span is in the same batch become its
 * subsegments (namespace "remote"); other client spans with a parent are
 * sent alone as independent subsegment documents (type "subsegment",
 * trace_id, parent_id). A client span without a parent (a call made
 * outside any request) has no place in X-Ray and is not sent, as the SDKs
 * do without a segment.
 *
 * Every datagram is the daemon header, a newline and one document, at most
 * e->max bytes (CRD_XRAY_UDP_MAX). Subsegments go inside their segment
 * while it fits; the others are sent as independent subsegment documents.
 *
 * Thread safety: an encoder is used by one thread (the exporter's).
 */
#ifndef CRD_XRAY_ENC_H
#define CRD_XRAY_ENC_H

#include <stddef.h>
#include <stdint.h>

#include "sink.h"

/* The header line of every datagram (X-Ray developer guide, "Sending
 * segment documents to the X-Ray daemon"). */
#define CRD_XRAY_HEADER "{\"format\": \"json\", \"version\": 1}\n"
/* Largest datagram: the maximum UDP payload over IPv4 (65535 - 20 - 8),
 * under the daemon's 64 KB document limit; the Java SDK's UDPEmitter uses
 * the same bound. */
#define CRD_XRAY_UDP_MAX 65507
/* One subsegment is bounded by the span's field caps (span.h): url.full
 * (at most CRD_VIEW_SCRATCH bytes) and the name, every byte escaped to 6,
 * plus the fixed fields: under 16 KB; this leaves a margin. */
#define CRD_XRAY_SUB_MAX 32768
/* The fixed part of every segment (aws, service, annotations, metadata). */
#define CRD_XRAY_TAIL_MAX 8192

struct crd_xray_enc {
	size_t max; /* datagram limit, header included; tests may lower it */
	char *buf;  /* max + 1 bytes */
	char *sub;  /* CRD_XRAY_SUB_MAX bytes */
	char tail[CRD_XRAY_TAIL_MAX];
	size_t tail_len; /* 0: not built yet (built from the first batch's resource) */
	/* Deliver one datagram; 0 or -errno (the encoder goes on either way). */
	int (*emit)(void *arg, const char *dgram, size_t len);
	void *arg;
	/* Counters, for the tests and debug output. */
	size_t segments, inline_subsegments, independent, datagrams, skipped;
};

/* 0 or -ENOMEM. */
int crd_xray_enc_init(struct crd_xray_enc *e, int (*emit)(void *, const char *, size_t), void *arg);
void crd_xray_enc_destroy(struct crd_xray_enc *e);

/* Encode and emit every document of b. 0, or the first emit error. */
int crd_xray_encode(struct crd_xray_enc *e, const struct crd_batch *b);

#endif
