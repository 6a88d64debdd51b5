/* cw_enc.c - CloudWatch Logs events and batches (see cw_enc.h). */
#include "cw_enc.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "otlp_enc.h"

size_t crd_cw_event_size(const struct crd_cw_event *e)
{
	return e->len + (e->truncated ? sizeof(CRD_CW_TRUNC_MARKER) - 1 : 0) +
	       CRD_CW_EVENT_OVERHEAD;
}

int crd_cw_fit(struct crd_cw_event *e)
{
	size_t max = CRD_CW_MAX_EVENT_BYTES - CRD_CW_EVENT_OVERHEAD;
	size_t keep;

	if (e->len + (e->truncated ? sizeof(CRD_CW_TRUNC_MARKER) - 1 : 0) <= max)
		return 0;
	keep = max - (sizeof(CRD_CW_TRUNC_MARKER) - 1);
	/* Do not cut a UTF-8 sequence: back up over continuation bytes. */
	while (keep && ((unsigned char)e->msg[keep] & 0xc0) == 0x80)
		keep--;
	e->len = keep;
	e->truncated = 1;
	return 1;
}

void crd_cw_sort(struct crd_cw_event *ev, size_t n)
{
	/* Insertion sort: batches arrive nearly sorted (spans end in order). */
	for (size_t i = 1; i < n; i++) {
		struct crd_cw_event t = ev[i];
		size_t j = i;
		while (j && ev[j - 1].ts_ms > t.ts_ms) {
			ev[j] = ev[j - 1];
			j--;
		}
		ev[j] = t;
	}
}

size_t crd_cw_batch_len(const struct crd_cw_event *ev, size_t n)
{
	size_t bytes = 0, k;

	for (k = 0; k < n && k < CRD_CW_MAX_BATCH_EVENTS; k++) {
		size_t sz = crd_cw_event_size(&ev[k]);
		if (k && (bytes + sz > CRD_CW_MAX_BATCH_BYTES ||
			  ev[k].ts_ms - ev[0].ts_ms > CRD_CW_MAX_SPAN_MS))
			break;
		bytes += sz;
	}
	return k;
}

size_t crd_cw_body_bound(const char *group, const char *stream, const struct crd_cw_event *ev,
			 size_t n)
{
	size_t b = 128 + 6 * (strlen(group) + strlen(stream));

	for (size_t i = 0; i < n; i++)
		b += 64 + 6 * (ev[i].len + sizeof(CRD_CW_TRUNC_MARKER));
	return b;
}

ssize_t crd_cw_put_body(char *out, size_t cap, const char *group, const char *stream,
			const struct crd_cw_event *ev, size_t n)
{
	size_t at = 0;
	ssize_t r;

#define LIT(s)                                                                                     \
	do {                                                                                       \
		if (at + sizeof(s) > cap)                                                          \
			return -ENOSPC;                                                            \
		memcpy(out + at, s, sizeof(s));                                                    \
		at += sizeof(s) - 1;                                                               \
	} while (0)
#define STR(p, l)                                                                                  \
	do {                                                                                       \
		if ((r = crd_json_string(out + at, cap - at, p, l)) < 0)                           \
			return -ENOSPC;                                                            \
		at += (size_t)r;                                                                   \
	} while (0)

	LIT("{\"logGroupName\":");
	STR(group, strlen(group));
	LIT(",\"logStreamName\":");
	STR(stream, strlen(stream));
	LIT(",\"logEvents\":[");
	for (size_t i = 0; i < n; i++) {
		int w = snprintf(out + at, cap - at,
				 "%s{\"timestamp\":%" PRId64 ",\"message\":", i ? "," : "",
				 ev[i].ts_ms);
		if (w < 0 || (size_t)w >= cap - at)
			return -ENOSPC;
		at += (size_t)w;
		if (!ev[i].truncated) {
			STR(ev[i].msg, ev[i].len);
		} else {
			/* Message and marker as one string: drop the closing quote. */
			STR(ev[i].msg, ev[i].len);
			at--;
			STR(CRD_CW_TRUNC_MARKER, sizeof(CRD_CW_TRUNC_MARKER) - 1);
			memmove(out + at - (size_t)r, out + at - (size_t)r + 1, (size_t)r - 1);
			at--;
		}
		LIT("}");
	}
	LIT("]}");
#undef LIT
#undef STR
	return (ssize_t)at;
}

static const struct crd_attr *attr(const struct crd_span_view *v, const char *key)
{
	for (size_t i = 0; i < v->nattrs; i++) {
		const char *k = v->attrs[i].key; /* literals: the pointer test hits first */
		if ((k == key || (k[0] == key[0] && !strcmp(k, key))) &&
		    v->attrs[i].type == CRD_ATTR_STR)
			return &v->attrs[i];
	}
	return NULL;
}

/* Digits of v, at least min of them (zero-padded), at o; returns the end. */
static char *digits(char *o, uint64_t v, int min)
{
	char b[24], *p = b + sizeof(b);

	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (p > b && b + sizeof(b) - p < min)
		*--p = '0';
	memcpy(o, p, (size_t)(b + sizeof(b) - p));
	return o + (b + sizeof(b) - p);
}

/* "2023-11-14T22:13:20.123Z" (24 bytes) for end_ns. The date and time part
 * is kept for the last second seen: gmtime_r and snprintf per line were a
 * third of the CloudWatch sink's time (issue #7). Exporter thread only. */
static void iso_ms(char ts[25], uint64_t ns)
{
	static time_t last = -1;
	static char sec[20];
	time_t secs = (time_t)(ns / 1000000000u);

	if (secs != last) {
		struct tm tm;
		char *o = sec;
		gmtime_r(&secs, &tm);
		o = digits(o, (uint64_t)tm.tm_year + 1900, 4);
		*o++ = '-';
		o = digits(o, (uint64_t)tm.tm_mon + 1, 2);
		*o++ = '-';
		o = digits(o, (uint64_t)tm.tm_mday, 2);
		*o++ = 'T';
		o = digits(o, (uint64_t)tm.tm_hour, 2);
		*o++ = ':';
		o = digits(o, (uint64_t)tm.tm_min, 2);
		*o++ = ':';
		digits(o, (uint64_t)tm.tm_sec, 2);
		last = secs;
	}
	memcpy(ts, sec, 19);
	ts[19] = '.';
	digits(ts + 20, ns / 1000000u % 1000u, 3);
	ts[23] = 'Z';
	ts[24] = 0;
}

/* A bounded appender for the text line. */
struct cww {
	char *p, *end; /* end: one byte kept for the NUL */
	int err;
};

static void cww_put(struct cww *w, const char *s, size_t n)
{
	if ((size_t)(w->end - w->p) < n) {
		w->err = 1;
		return;
	}
	memcpy(w->p, s, n);
	w->p += n;
}

static void hex(char *o, const uint8_t *p, size_t n)
{
	static const char d[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		o[2 * i] = d[p[i] >> 4];
		o[2 * i + 1] = d[p[i] & 15];
	}
	o[2 * n] = 0;
}

ssize_t crd_cw_access_line(char *out, size_t cap, const struct crd_span *sp,
			   const struct crd_span_view *v, int json)
{
	const struct crd_attr *client = attr(v, "client.address"), *scheme = attr(v, "url.scheme"),
			      *path = attr(v, "url.path"), *query = attr(v, "url.query");
	char tid[33], sid[17], ts[25], target[CRD_TARGET_MAX + 8], status[8];
	uint64_t end = sp->end_ns ? sp->end_ns : sp->start_ns;
	double dur_ms = end > sp->start_ns ? (double)(end - sp->start_ns) / 1e6 : 0.0;
	size_t at = 0;
	int w;

	hex(tid, sp->trace_id, 16);
	hex(sid, sp->span_id, 8);
	iso_ms(ts, end);
	/* Path and query as the span view has them: secrets in the query
	 * are redacted there. */
	{
		/* By hand, not snprintf: see the text line below. The view's
		 * path and query are capped well below target's size. */
		size_t pl = path ? path->len : 1, ql = query ? query->len : 0;
		if (pl > CRD_TARGET_MAX)
			pl = CRD_TARGET_MAX;
		if (ql > sizeof(target) - 2 - pl)
			ql = sizeof(target) - 2 - pl;
		memcpy(target, path ? path->s : "/", pl);
		if (query) {
			target[pl++] = '?';
			memcpy(target + pl, query->s, ql);
		}
		target[pl + ql] = 0;
	}
	if (sp->status)
		*digits(status, sp->status, 1) = 0;
	else
		strcpy(status, "-");
	if (!json) {
		/* Like the Flask after_request logger: time, client, method,
		 * scheme, path, status; then duration and the trace link.
		 * Appended by hand: one snprintf here was 4k instructions a
		 * line. The duration is rounded to whole microseconds. */
		uint64_t us = end > sp->start_ns ? (end - sp->start_ns + 500) / 1000 : 0;
		const char *m = sp->req.method[0] ? sp->req.method : "-";
		char num[32], *e;
		struct cww c = {out, out + (cap ? cap - 1 : 0), !cap};

		cww_put(&c, ts, 24);
		cww_put(&c, " ", 1);
		cww_put(&c, client ? client->s : "-", client ? client->len : 1);
		cww_put(&c, " ", 1);
		cww_put(&c, m, strlen(m));
		cww_put(&c, " ", 1);
		cww_put(&c, scheme ? scheme->s : "http", scheme ? scheme->len : 4);
		cww_put(&c, " ", 1);
		cww_put(&c, target, strlen(target));
		cww_put(&c, " ", 1);
		cww_put(&c, status, strlen(status));
		cww_put(&c, " ", 1);
		e = digits(num, us / 1000, 1);
		*e++ = '.';
		e = digits(e, us % 1000, 3);
		cww_put(&c, num, (size_t)(e - num));
		cww_put(&c, "ms trace_id=", 12);
		cww_put(&c, tid, 32);
		cww_put(&c, " span_id=", 9);
		cww_put(&c, sid, 16);
		if (c.err)
			return -ENOSPC;
		*c.p = 0;
		return c.p - out;
	}
	ssize_t r;
#define PUT(...)                                                                                   \
	do {                                                                                       \
		w = snprintf(out + at, cap - at, __VA_ARGS__);                                     \
		if (w < 0 || (size_t)w >= cap - at)                                                \
			return -ENOSPC;                                                            \
		at += (size_t)w;                                                                   \
	} while (0)
#define JS(p, l)                                                                                   \
	do {                                                                                       \
		if ((r = crd_json_string(out + at, cap - at, p, l)) < 0)                           \
			return -ENOSPC;                                                            \
		at += (size_t)r;                                                                   \
	} while (0)
	PUT("{\"timestamp\":\"%s\",\"client\":", ts);
	if (client)
		JS(client->s, client->len);
	else
		PUT("null");
	PUT(",\"method\":");
	JS(sp->req.method, strlen(sp->req.method));
	PUT(",\"scheme\":");
	JS(scheme ? scheme->s : "http", scheme ? scheme->len : 4);
	PUT(",\"path\":");
	JS(target, strlen(target));
	if (sp->status)
		PUT(",\"status\":%u", sp->status);
	else
		PUT(",\"status\":null");
	PUT(",\"duration_ms\":%.3f,\"trace_id\":\"%s\",\"span_id\":\"%s\"}", dur_ms, tid, sid);
#undef PUT
#undef JS
	return (ssize_t)at;
}

ssize_t crd_cw_stdio_line(char *out, size_t cap, const struct crd_log_line *l, int json)
{
	static const char mark[] = CRD_CW_TRUNC_MARKER;
	char tid[33], sid[17], ts[96];
	size_t at = 0;
	ssize_t r;
	int w;

	hex(tid, l->trace_id, 16);
	hex(sid, l->span_id, 8);
	if (!json) {
		if (l->len + sizeof(mark) + 64 > cap)
			return -ENOSPC;
		memcpy(out, l->text, l->len);
		at = l->len;
		if (l->truncated) {
			memcpy(out + at, mark, sizeof(mark) - 1);
			at += sizeof(mark) - 1;
		}
		if (l->has_trace)
			at += (size_t)sprintf(out + at, " trace_id=%s span_id=%s", tid, sid);
		return (ssize_t)at;
	}
	{
		time_t secs = (time_t)(l->ts_ms / 1000);
		struct tm tm;
		gmtime_r(&secs, &tm);
		snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
			 (int)(l->ts_ms % 1000));
	}
	w = snprintf(out, cap, "{\"timestamp\":\"%s\",\"stream\":\"%s\",\"message\":", ts,
		     l->fd == 2 ? "stderr" : "stdout");
	if (w < 0 || (size_t)w >= cap)
		return -ENOSPC;
	at = (size_t)w;
	if ((r = crd_json_string(out + at, cap - at, l->text, l->len)) < 0)
		return -ENOSPC;
	at += (size_t)r;
	if (l->truncated) {
		/* The marker goes inside the string. */
		if (at + sizeof(mark) > cap)
			return -ENOSPC;
		memmove(out + at - 1 + sizeof(mark) - 1, out + at - 1, 1);
		memcpy(out + at - 1, mark, sizeof(mark) - 1);
		at += sizeof(mark) - 1;
	}
	if (l->has_trace)
		w = snprintf(out + at, cap - at, ",\"trace_id\":\"%s\",\"span_id\":\"%s\"}", tid,
			     sid);
	else
		w = snprintf(out + at, cap - at, ",\"trace_id\":null,\"span_id\":null}");
	if (w < 0 || (size_t)w >= cap - at)
		return -ENOSPC;
	return (ssize_t)(at + (size_t)w);
}
