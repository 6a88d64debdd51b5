/* otlp_enc.h - OTLP trace encoders: protobuf and JSON, no allocation.
 *
 * Both encode one ExportTraceServiceRequest holding one ResourceSpans with one
 * ScopeSpans, from span views (see preload/span.h). They write into a buffer
 * the caller owns and never allocate, so the exporter can keep one buffer for
 * its lifetime.
 *
 * Wire facts (opentelemetry-proto, checked against tests/proto and the
 * shared test vector):
 *   ExportTraceServiceRequest.resource_spans = 1
 *   ResourceSpans: resource = 1, scope_spans = 2
 *   ScopeSpans: scope = 1, spans = 2; InstrumentationScope name = 1, version = 2
 *   Span: trace_id 1, span_id 2, trace_state 3, parent_span_id 4, name 5,
 *         kind 6 (varint), start 7 / end 8 (fixed64), attributes 9,
 *         status 15 (message 2, code 3), flags 16 (fixed32)
 *   KeyValue key 1, value 2; AnyValue string 1, bool 2, int 3 (varint,
 *   two's complement, not zigzag), double 4 (fixed64)
 * JSON (OTLP/JSON): lowerCamelCase keys, ids as lowercase hex, enums as
 * integers, 64-bit integers as decimal strings.
 *
 * Field presence (both encoders; the protobuf bytes equal what protobuf's own
 * serializer, e.g. `protoc --encode`, writes for the same message):
 *   - proto3 scalars equal to their default are omitted: empty trace_state,
 *     name, status message, scope name/version, attribute key; kind 0;
 *     start/end time 0; flags 0. NULL strings count as "".
 *   - parent_span_id is omitted when NULL or all zero (an all-zero id is
 *     invalid in OTLP and means "root" in W3C trace context).
 *   - Span.status is omitted when code is 0 and the message is empty.
 *   - The Resource and the InstrumentationScope are always emitted, even with
 *     no attributes / empty name (protobuf: `0a 00`; JSON: "resource":{}),
 *     as the OpenTelemetry SDKs do; empty attribute lists are omitted in JSON.
 *   - AnyValue is a oneof, so its member is always written, even "" / 0 /
 *     false / 0.0 (oneof members have explicit presence).
 *   - An attribute with an unknown type is skipped (by both encoders).
 *   - At most CRD_VIEW_MAX_ATTRS attributes of a span view are read.
 * Strings: proto3 `string` must be UTF-8; strict parsers (protoc/C++, Go, upb)
 * reject a whole request over one bad byte, and request targets / headers are
 * attacker-controlled; so both encoders replace every byte that does not
 * start a valid RFC 3629 sequence with U+FFFD (see crd_utf8_seq()). Valid
 * input is copied unchanged.
 * Preconditions: b, b->spans[0..n-1], trace_id and span_id are non-NULL.
 *
 * Thread safety: pure functions of their arguments (no allocation, no global
 * state; the JSON encoder formats doubles with snprintf, which honours
 * LC_NUMERIC, and maps the locale's decimal point back to '.').
 */
#ifndef CRD_OTLP_ENC_H
#define CRD_OTLP_ENC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../preload/span.h"

struct crd_otlp_batch {
	struct crd_attr_list resource; /* Resource.attributes */
	const char *scope_name;	       /* InstrumentationScope */
	const char *scope_version;
	const struct crd_span_view *const *spans;
	size_t n;
};

/* Exact size in bytes of the protobuf encoding of b: what
 * crd_otlp_pb_encode() returns when cap is large enough. */
size_t crd_otlp_pb_size(const struct crd_otlp_batch *b);

/* Protobuf: write the encoding of b into out. Returns the number of bytes
 * written, or -ENOSPC when cap is too small (out is then unspecified, but
 * nothing at or past out + cap is ever written). Fields equal to their
 * proto3 default (empty string, 0, no parent) are omitted, as the reference
 * encoders do, and varints are minimal, so the bytes are canonical.
 * The encoder works back to front (lengths come free, no size pass) and then
 * moves the result to out[0]: cap must be the real size of out, and bytes
 * between the returned length and cap may be overwritten. No size pass is
 * needed before calling it; a cap of exactly crd_otlp_pb_size() saves the
 * final move. */
ssize_t crd_otlp_pb_encode(const struct crd_otlp_batch *b, uint8_t *out, size_t cap);

/* JSON: write the OTLP/JSON encoding of b into out, NUL-terminated. Returns
 * the length without the NUL, or -ENOSPC when cap is too small (nothing at
 * or past out + cap is written). Compact (no whitespace); key order follows
 * tests/proto/sample-export-trace-request.json. Doubles: shortest of %.15g,
 * %.16g, %.17g that reads back equal; NaN and +-Inf as the strings "NaN",
 * "Infinity", "-Infinity" (proto3 JSON). */
ssize_t crd_otlp_json_encode(const struct crd_otlp_batch *b, char *out, size_t cap);

/* Write s (len bytes) as a JSON string literal with quotes into out. Returns
 * the bytes written or -ENOSPC. Shared with the other JSON writers (file,
 * X-Ray, Rollbar, CloudWatch). Invalid UTF-8 bytes become U+FFFD.
 * Escapes (RFC 8259): \" \\ \b \f \n \r \t, other controls below 0x20 as
 * \u00xx; an invalid UTF-8 byte is written as \ufffd (one per byte); valid
 * multibyte UTF-8 and DEL are copied as is. The output is NUL-terminated (the
 * NUL is not counted, so it needs cap >= return value + 1, like snprintf);
 * appending writers can simply write over it. s may be NULL when len is 0. */
ssize_t crd_json_string(char *out, size_t cap, const char *s, size_t len);

/* Length of the well-formed UTF-8 sequence (RFC 3629: shortest form, no
 * surrogates, at most U+10FFFF) that starts at p, of which avail >= 1 bytes
 * are readable: 1 to 4, or 0 when p[0] does not start one. Both encoders
 * replace such a byte by U+FFFD and resume at the next byte. */
size_t crd_utf8_seq(const unsigned char *p, size_t avail);

#endif
