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
	for (size_t i = 0; i < v->nattrs; i++)
		if (!strcmp(v->attrs[i].key, key) && v->attrs[i].type == CRD_ATTR_STR)
			return &v->attrs[i];
	return NULL;
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
	char tid[33], sid[17], ts[96], target[CRD_TARGET_MAX + 8], status[8];
	uint64_t end = sp->end_ns ? sp->end_ns : sp->start_ns;
	double dur_ms = end > sp->start_ns ? (double)(end - sp->start_ns) / 1e6 : 0.0;
	time_t secs = (time_t)(end / 1000000000u);
	struct tm tm;
	size_t at = 0;
	int w;

	hex(tid, sp->trace_id, 16);
	hex(sid, sp->span_id, 8);
	gmtime_r(&secs, &tm);
	snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 (unsigned)(end / 1000000u % 1000u));
	/* Path and query as the span view has them: secrets in the query
	 * are redacted there. */
	snprintf(target, sizeof(target), "%.*s%s%.*s", path ? (int)path->len : 1,
		 path ? path->s : "/", query ? "?" : "", query ? (int)query->len : 0,
		 query ? query->s : "");
	if (sp->status)
		snprintf(status, sizeof(status), "%u", sp->status);
	else
		strcpy(status, "-");
	if (!json) {
		/* Like the Flask after_request logger: time, client, method,
		 * scheme, path, status; then duration and the trace link. */
		w = snprintf(out, cap, "%s %.*s %s %.*s %s %s %.3fms trace_id=%s span_id=%s", ts,
			     client ? (int)client->len : 1, client ? client->s : "-",
			     sp->req.method[0] ? sp->req.method : "-",
			     scheme ? (int)scheme->len : 4, scheme ? scheme->s : "http", target,
			     status, dur_ms, tid, sid);
		return w < 0 || (size_t)w >= cap ? -ENOSPC : w;
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
