/* tracectx.c - trace header parsing and formatting (see tracectx.h). */
#include "span.h"
#include "tracectx.h"

#include <errno.h>
#include <string.h>

#include "ids.h"

static int lhex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* n bytes from 2n lowercase hex chars; -EINVAL on any other char. */
static int unhex(const char *s, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int hi = lhex(s[2 * i]), lo = lhex(s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

/* Same, accepting uppercase too (X-Ray ids are not specified as lowercase). */
static int unhex_any(const char *s, uint8_t *out, size_t n)
{
	char tmp[48];

	if (2 * n > sizeof(tmp))
		return -EINVAL;
	for (size_t i = 0; i < 2 * n; i++)
		tmp[i] = (s[i] >= 'A' && s[i] <= 'F') ? (char)(s[i] + 32) : s[i];
	return unhex(tmp, out, n);
}

void crd_hex(char *out, const uint8_t *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = 0;
}

int crd_traceparent_parse(const char *s, struct crd_tracectx *out)
{
	size_t len = strlen(s);
	uint8_t version, flags;

	/* version(2) '-' trace-id(32) '-' parent-id(16) '-' flags(2) */
	if (len < CRD_TRACEPARENT_LEN || s[2] != '-' || s[35] != '-' || s[52] != '-')
		return -EINVAL;
	if (unhex(s, &version, 1) || version == 0xff)
		return -EINVAL;
	if (version == 0 && len != CRD_TRACEPARENT_LEN)
		return -EINVAL;
	if (len > CRD_TRACEPARENT_LEN && s[CRD_TRACEPARENT_LEN] != '-')
		return -EINVAL;
	if (unhex(s + 3, out->trace_id, 16) || unhex(s + 36, out->span_id, 8) ||
	    unhex(s + 53, &flags, 1))
		return -EINVAL;
	if (crd_all_zero_bytes(out->trace_id, 16) || crd_all_zero_bytes(out->span_id, 8))
		return -EINVAL;
	out->sampled = flags & 1;
	return 0;
}

void crd_traceparent_format(char out[CRD_TRACEPARENT_LEN + 1], const uint8_t trace_id[16],
			    const uint8_t span_id[8], int sampled)
{
	memcpy(out, "00-", 3);
	crd_hex(out + 3, trace_id, 16);
	out[35] = '-';
	crd_hex(out + 36, span_id, 8);
	out[52] = '-';
	out[53] = '0';
	out[54] = sampled ? '1' : '0';
	out[55] = 0;
}

int crd_xamzn_parse(const char *s, struct crd_tracectx *out)
{
	int have_root = 0;

	memset(out, 0, sizeof(*out));
	out->sampled = -1;
	while (*s) {
		const char *end = strchr(s, ';');
		size_t n = end ? (size_t)(end - s) : strlen(s);
		while (n && (*s == ' ' || *s == '\t'))
			s++, n--;
		/* Root=1-XXXXXXXX-YYYYYYYYYYYYYYYYYYYYYYYY: 5 + 35 chars */
		if (n == 40 && !strncmp(s, "Root=1-", 7) && s[15] == '-') {
			if (unhex_any(s + 7, out->trace_id, 4) ||
			    unhex_any(s + 16, out->trace_id + 4, 12))
				return -EINVAL;
			have_root = !crd_all_zero_bytes(out->trace_id, 16);
		} else if (n == 23 && !strncmp(s, "Parent=", 7)) {
			if (unhex_any(s + 7, out->span_id, 8))
				memset(out->span_id, 0, 8);
		} else if (n == 9 && !strncmp(s, "Sampled=", 8)) {
			out->sampled = s[8] == '1' ? 1 : s[8] == '0' ? 0 : -1;
		}
		s += n;
		if (*s == ';')
			s++;
	}
	return have_root ? 0 : -EINVAL;
}

int crd_ratio_sampled(const uint8_t trace_id[16], double ratio)
{
	uint64_t x = 0;

	if (ratio >= 1.0)
		return 1;
	if (ratio <= 0.0)
		return 0;
	for (int i = 8; i < 16; i++)
		x = x << 8 | trace_id[i];
	/* Compare in 63 bits so ratio * 2^63 is exact enough in a double. */
	return (double)(x >> 1) < ratio * 9223372036854775808.0;
}
