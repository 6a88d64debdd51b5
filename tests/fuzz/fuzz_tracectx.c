/* fuzz_tracectx.c - libFuzzer target: the trace header parsers
 * (preload/tracectx.c: traceparent, X-Amzn-Trace-Id) and the header block
 * we add to outgoing requests (crd_inject_format, preload/inject.c).
 *
 * Input: one header value (up to its first NUL), in an exact-size heap copy
 * so ASan reports any read past its end. Checked:
 * - traceparent: accepted exactly when an independent reading of W3C Trace
 *   Context level 1 (§3.2) accepts it; accepted values round-trip
 *   parse -> format -> parse to the same ids and sampled flag, and a
 *   version-00 value with flags 00 or 01 formats back to itself.
 * - X-Amzn-Trace-Id: an accepted value has a non-zero root; it round-trips
 *   through the X-Amzn-Trace-Id line crd_inject_format() writes (same
 *   root, parent, and sampled when decided).
 * - crd_inject_format() with the input as tracestate: at most
 *   CRD_INJECT_MAX bytes, only our "name: value CRLF" lines, values with
 *   no control byte but HTAB (a CR or LF there would make a header we did
 *   not mean to send, or a bare CR a downstream server rejects).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inject.h"
#include "tracectx.h"

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_tracectx: %s:%d: %s: ", __FILE__, __LINE__, #cond);  \
			fprintf(stderr, __VA_ARGS__);                                              \
			fputc('\n', stderr);                                                       \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static int lhex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static int hexval(char c)
{
	return c <= '9' ? c - '0' : c - 'a' + 10;
}

static int nonzero(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != '0')
			return 1;
	return 0;
}

/* W3C Trace Context §3.2.2, written from the spec, not from tracectx.c:
 * version "-" trace-id "-" parent-id "-" trace-flags, all lowercase hex;
 * version ff forbidden; version 00 exactly 55 chars; a higher version may
 * carry more after a "-"; all-zero ids invalid. */
static int tp_valid(const char *s)
{
	size_t len = strlen(s);

	if (len < 55)
		return 0;
	for (size_t i = 0; i < 55; i++) {
		int dash = i == 2 || i == 35 || i == 52;
		if (dash ? s[i] != '-' : !lhex(s[i]))
			return 0;
	}
	if (!memcmp(s, "ff", 2))
		return 0;
	if (!memcmp(s, "00", 2) && len != 55)
		return 0;
	if (len > 55 && s[55] != '-')
		return 0;
	return nonzero(s + 3, 32) && nonzero(s + 36, 16);
}

static void check_traceparent(const char *s)
{
	struct crd_tracectx a, b;
	char out[CRD_TRACEPARENT_LEN + 1];
	int ok = crd_traceparent_parse(s, &a) == 0;

	CHECK(ok == tp_valid(s), "traceparent \"%s\": parser says %d", s, ok);
	if (!ok)
		return;
	CHECK(a.sampled == ((hexval(s[54]) & 1)), "sampled %d for flags %.2s", a.sampled, s + 53);
	crd_traceparent_format(out, a.trace_id, a.span_id, a.sampled);
	CHECK(strlen(out) == CRD_TRACEPARENT_LEN, "formatted length %zu", strlen(out));
	CHECK(crd_traceparent_parse(out, &b) == 0, "own output \"%s\" rejected", out);
	CHECK(!memcmp(a.trace_id, b.trace_id, 16) && !memcmp(a.span_id, b.span_id, 8) &&
		  a.sampled == b.sampled,
	      "\"%s\" -> \"%s\" changed", s, out);
	if (!memcmp(s, "00", 2) && (!memcmp(s + 53, "00", 2) || !memcmp(s + 53, "01", 2)))
		CHECK(!strcmp(out, s), "\"%s\" formats as \"%s\"", s, out);
	else
		CHECK(!memcmp(out + 3, s + 3, 50), "ids of \"%s\" became \"%s\"", s, out);
}

/* A header block: "name: value\r\n" lines, no CTL in a value, and only the
 * names we add, in order: traceparent, then tracestate and X-Amzn-Trace-Id
 * when present. */
static void check_block(const char *blk, size_t n, const char *in)
{
	static const char *const names[] = {"traceparent", "tracestate", "X-Amzn-Trace-Id"};
	size_t i = 0, k = 0;

	CHECK(n <= CRD_INJECT_MAX, "block of %zu bytes", n);
	CHECK(n >= 70 && !memcmp(blk, "traceparent: ", 13), "no traceparent first");
	while (i < n) {
		const char *line = blk + i, *colon = memchr(line, ':', n - i);
		const char *end = memchr(line, '\n', n - i);

		CHECK(colon && end && colon < end && end > line && end[-1] == '\r',
		      "malformed line at %zu (tracestate input \"%s\")", i, in);
		CHECK(colon[1] == ' ', "no space after the colon");
		while (k < 3 && ((size_t)(colon - line) != strlen(names[k]) ||
				 memcmp(line, names[k], strlen(names[k]))))
			k++;
		CHECK(k < 3, "unexpected header line \"%.*s\" (tracestate input \"%s\")",
		      (int)(end - line - 1), line, in);
		k++;
		for (const char *c = colon + 2; c < end - 1; c++)
			CHECK(
			    ((uint8_t)*c >= 0x20 || *c == '\t') && *c != 0x7f,
			    "control byte %#x in a header value we send (tracestate input \"%s\")",
			    (uint8_t)*c, in);
		i = (size_t)(end + 1 - blk);
	}
}

static void check_xamzn(const char *s)
{
	struct crd_tracectx a, b;
	char blk[CRD_INJECT_MAX], line[CRD_INJECT_MAX + 1];

	if (crd_xamzn_parse(s, &a))
		return;
	static const uint8_t zero[16];
	CHECK(memcmp(a.trace_id, zero, 16), "accepted an all-zero root: \"%s\"", s);
	CHECK(a.sampled >= -1 && a.sampled <= 1, "sampled %d", a.sampled);
	size_t n = crd_inject_format(blk, a.trace_id, a.span_id, a.sampled == 1, "", 0, 1);
	check_block(blk, n, "");
	memcpy(line, blk, n);
	line[n] = 0;
	char *v = strstr(line, "X-Amzn-Trace-Id: ");
	CHECK(v, "no X-Amzn-Trace-Id line");
	v += 17;
	*strchr(v, '\r') = 0;
	CHECK(crd_xamzn_parse(v, &b) == 0, "own X-Amzn-Trace-Id \"%s\" rejected", v);
	CHECK(!memcmp(a.trace_id, b.trace_id, 16) && !memcmp(a.span_id, b.span_id, 8),
	      "\"%s\" -> \"%s\" changed ids", s, v);
	if (a.sampled >= 0)
		CHECK(a.sampled == b.sampled, "\"%s\" -> \"%s\" changed sampled", s, v);

	/* The traceparent line of the same block round-trips too (when the
	 * X-Ray parent is set: otherwise its span id is zero, an invalid
	 * traceparent the caller never sends). */
	v = line + 13;
	v[CRD_TRACEPARENT_LEN] = 0;
	if (memcmp(a.span_id, zero, 8)) {
		CHECK(crd_traceparent_parse(v, &b) == 0, "own traceparent \"%s\" rejected", v);
		CHECK(!memcmp(a.trace_id, b.trace_id, 16) && !memcmp(a.span_id, b.span_id, 8),
		      "traceparent ids changed");
	}
}

static void check_tracestate(const char *s)
{
	static const uint8_t tid[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
	static const uint8_t sid[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	char blk[CRD_INJECT_MAX];

	for (int want = 0; want < 4; want++) {
		size_t n = crd_inject_format(blk, tid, sid, want & 1, s, want & 1, want >> 1);
		check_block(blk, n, s);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t n = strnlen((const char *)data, size);
	char *s = malloc(n + 1);

	if (!s)
		return 0;
	memcpy(s, data, n);
	s[n] = 0;
	check_traceparent(s);
	check_xamzn(s);
	check_tracestate(s);
	free(s);
	return 0;
}
