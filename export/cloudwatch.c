/* cloudwatch.c - the CloudWatch Logs sink: access-log events.
 *
 * Every finished SERVER span the exporter hands us becomes one log event
 * (crd_cw_access_line(): time, client, method, scheme, path with query,
 * status, duration, trace and span id), sampled or not: with CloudWatch
 * on, preload/conn.c queues every server span (wanted_unsampled()) and
 * this sink asks for all_spans; trace sinks still see only sampled ones.
 *
 * Sending: PutLogEvents over the JSON 1.1 protocol (POST /, X-Amz-Target
 * Logs_20140328.PutLogEvents, application/x-amz-json-1.1), signed by
 * libcurl (CURLOPT_AWS_SIGV4 "aws:amz:<region>:logs", the access key and
 * secret as CURLOPT_USERNAME/PASSWORD, the body as CURLOPT_POSTFIELDS so
 * that its hash is signed); AWS_SESSION_TOKEN travels as
 * X-Amz-Security-Token, a CURLOPT_HTTPHEADER header, hence signed. Before
 * the first put the group and the stream are created
 * (ResourceAlreadyExistsException is success); a put answered
 * ResourceNotFoundException recreates them and is retried once.
 * ThrottlingException, ServiceUnavailableException, other 5xx and
 * transport failures are retried with exponential backoff and jitter
 * until CW_MAX_ATTEMPTS or the deadline; other errors drop the batch.
 *
 * Exporter thread only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../preload/cloudwatch.h"
#include "../preload/config.h"
#include "../preload/ids.h"
#include "../preload/log.h"
#include "../preload/version.h"
#include "curl_dl.h"
#include "cw_enc.h"
#include "otlp_enc.h"
#include "sink.h"

#define CW_TARGET_PREFIX      "X-Amz-Target: Logs_20140328."
#define CW_CONTENT_TYPE	      "Content-Type: application/x-amz-json-1.1"
#define CW_HTTP_TIMEOUT_MS    10000L
#define CW_CONNECT_TIMEOUT_MS 5000L
#define CW_MAX_ATTEMPTS	      5
#define CW_BACKOFF_FIRST_MS   200
#define CW_BACKOFF_MAX_MS     5000
#define CW_BODY_KEEP	      1024
#define CW_LINE_MAX	      4096 /* an access line: the target is at most 1 KB */
#define CW_WARN_EVERY_S	      30

struct cw_sink {
	struct crd_sink base;
	CURL *h;
	char url[2100];
	char url_safe[256];
	char stream[CRD_CW_NAME_MAX + 1];
	char sigv4[128];
	char *token_hdr; /* "X-Amz-Security-Token: ..." or NULL; never logged */
	int stream_ready;
	/* Per batch. */
	struct crd_cw_event *ev;
	char *lines; /* CW_LINE_MAX per access line */
	size_t cap_ev, cap_acc;
	char *stdio; /* formatted stdout/stderr lines */
	size_t stdio_cap;
	char *body;
	size_t body_cap;
	/* Last answer. */
	long status;
	char answer[CW_BODY_KEEP + 1];
	size_t answer_len;
	uint64_t last_warn_ns;
	unsigned long suppressed;
};

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct cw_sink *s = arg;
	size_t len = size * n, room = CW_BODY_KEEP - s->answer_len;

	memcpy(s->answer + s->answer_len, p, len < room ? len : room);
	s->answer_len += len < room ? len : room;
	s->answer[s->answer_len] = 0;
	return len;
}

static void warn_limited(struct cw_sink *s, const char *what, const char *why)
{
	uint64_t now = crd_mono_ns();

	if (s->last_warn_ns && now - s->last_warn_ns < CW_WARN_EVERY_S * 1000000000ull) {
		s->suppressed++;
		return;
	}
	if (s->suppressed)
		crd_warn("CloudWatch %s to %s failed: %s (and %lu similar failures)", what,
			 s->url_safe, why, s->suppressed);
	else
		crd_warn("CloudWatch %s to %s failed: %s", what, s->url_safe, why);
	s->last_warn_ns = now;
	s->suppressed = 0;
}

/* The exception name of the last answer ({"__type": "...#Name"} or
 * "Name"), or "". */
static void answer_type(const struct cw_sink *s, char *out, size_t cap)
{
	const char *p = strstr(s->answer, "\"__type\"");
	const char *q, *e, *hash;

	out[0] = 0;
	if (!p || !(q = strchr(p + 8, '"')) || !(e = strchr(q + 1, '"')))
		return;
	q++;
	hash = memchr(q, '#', (size_t)(e - q));
	if (hash)
		q = hash + 1;
	snprintf(out, cap, "%.*s", (int)(e - q), q);
}

static long backoff_ms(int attempt)
{
	long ms = CW_BACKOFF_FIRST_MS;

	for (int i = 0; i < attempt && ms < CW_BACKOFF_MAX_MS; i++)
		ms *= 2;
	if (ms > CW_BACKOFF_MAX_MS)
		ms = CW_BACKOFF_MAX_MS;
	return ms * 8 / 10 + (long)(crd_rand64() % (uint64_t)(ms * 4 / 10 + 1));
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

enum { CW_OK = 0, CW_FAIL = -EIO, CW_NOT_FOUND = -ENOENT, CW_EXISTS = -EEXIST };

/* One action (PutLogEvents, CreateLogGroup, ...) with retries. */
static int call(struct cw_sink *s, const char *action, const char *body, size_t len,
		uint64_t deadline)
{
	char target[96], type[96], why[256];
	struct curl_slist *hdrs = NULL, *l;
	int rc = CW_FAIL;

	snprintf(target, sizeof(target), CW_TARGET_PREFIX "%s", action);
	if (!(l = crd_curl.slist_append(hdrs, CW_CONTENT_TYPE)) || !(hdrs = l) ||
	    !(l = crd_curl.slist_append(hdrs, target)) || !(hdrs = l) ||
	    (s->token_hdr && (!(l = crd_curl.slist_append(hdrs, s->token_hdr)) || !(hdrs = l)))) {
		if (hdrs)
			crd_curl.slist_free_all(hdrs);
		return CW_FAIL;
	}
	for (int attempt = 0;; attempt++) {
		uint64_t now = crd_mono_ns();
		long left = deadline > now ? (long)((deadline - now) / 1000000u) : 0;
		long t = CW_HTTP_TIMEOUT_MS < left ? CW_HTTP_TIMEOUT_MS : left;
		CURLcode cr;
		int again;

		if (t <= 0) {
			warn_limited(s, action, "no time left (deadline); events dropped");
			break;
		}
		s->status = 0;
		s->answer_len = 0;
		s->answer[0] = 0;
		crd_curl.easy_setopt(s->h, CURLOPT_URL, s->url);
		crd_curl.easy_setopt(s->h, CURLOPT_POST, 1L);
		crd_curl.easy_setopt(s->h, CURLOPT_POSTFIELDS, body);
		crd_curl.easy_setopt(s->h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
		crd_curl.easy_setopt(s->h, CURLOPT_HTTPHEADER, hdrs);
		crd_curl.easy_setopt(s->h, CURLOPT_TIMEOUT_MS, t);
		crd_curl.easy_setopt(s->h, CURLOPT_CONNECTTIMEOUT_MS,
				     t < CW_CONNECT_TIMEOUT_MS ? t : CW_CONNECT_TIMEOUT_MS);
		cr = crd_curl.easy_perform(s->h);
		if (cr == CURLE_OK)
			crd_curl.easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &s->status);
		if (cr == CURLE_OK && s->status >= 200 && s->status < 300) {
			rc = CW_OK;
			break;
		}
		answer_type(s, type, sizeof(type));
		if (!strcmp(type, "ResourceAlreadyExistsException")) {
			rc = CW_EXISTS;
			break;
		}
		if (!strcmp(type, "ResourceNotFoundException")) {
			rc = CW_NOT_FOUND;
			break;
		}
		again = cr != CURLE_OK || s->status >= 500 ||
			!strcmp(type, "ThrottlingException") ||
			!strcmp(type, "ServiceUnavailableException");
		long wait = backoff_ms(attempt);
		now = crd_mono_ns();
		if (!again || attempt + 1 >= CW_MAX_ATTEMPTS ||
		    now + (uint64_t)wait * 1000000u >= deadline) {
			if (cr != CURLE_OK)
				snprintf(why, sizeof(why), "%s", crd_curl.easy_strerror(cr));
			else
				snprintf(why, sizeof(why), "HTTP %ld %s", s->status,
					 type[0] ? type : "");
			warn_limited(s, action, why);
			break;
		}
		crd_debug("CloudWatch %s: %s %ld %s; retrying in %ld ms", action,
			  cr == CURLE_OK ? "HTTP" : crd_curl.easy_strerror(cr), s->status, type,
			  wait);
		sleep_ms(wait);
	}
	crd_curl.slist_free_all(hdrs);
	return rc;
}

/* {"logGroupName":G} or {"logGroupName":G,"logStreamName":S} into b. */
static ssize_t names_body(char *b, size_t cap, const char *stream)
{
	size_t at;
	ssize_t r;

	if (cap < 64)
		return -ENOSPC;
	strcpy(b, "{\"logGroupName\":");
	at = strlen(b);
	if ((r = crd_json_string(b + at, cap - at, crd_cw_cfg.log_group,
				 strlen(crd_cw_cfg.log_group))) < 0)
		return -ENOSPC;
	at += (size_t)r;
	if (stream) {
		if (at + 20 > cap)
			return -ENOSPC;
		strcpy(b + at, ",\"logStreamName\":");
		at += strlen(b + at);
		if ((r = crd_json_string(b + at, cap - at, stream, strlen(stream))) < 0)
			return -ENOSPC;
		at += (size_t)r;
	}
	if (at + 2 > cap)
		return -ENOSPC;
	b[at++] = '}';
	b[at] = 0;
	return (ssize_t)at;
}

/* CreateLogGroup then CreateLogStream; existing ones are fine. */
static int ensure_stream(struct cw_sink *s, uint64_t deadline)
{
	char b[16 + 12 * (CRD_CW_NAME_MAX + 8)];
	ssize_t n;
	int rc;

	if ((n = names_body(b, sizeof(b), NULL)) < 0)
		return CW_FAIL;
	rc = call(s, "CreateLogGroup", b, (size_t)n, deadline);
	if (rc != CW_OK && rc != CW_EXISTS)
		return CW_FAIL;
	if ((n = names_body(b, sizeof(b), s->stream)) < 0)
		return CW_FAIL;
	rc = call(s, "CreateLogStream", b, (size_t)n, deadline);
	if (rc != CW_OK && rc != CW_EXISTS)
		return CW_FAIL;
	s->stream_ready = 1;
	return CW_OK;
}

/* Room for n events, the first nacc of them access lines, and for the
 * formatted stdout/stderr lines of b. */
static int grow(struct cw_sink *s, size_t n, size_t nacc, const struct crd_batch *b)
{
	size_t need = 0;

	if (n > s->cap_ev) {
		struct crd_cw_event *ev = realloc(s->ev, n * sizeof(*ev));
		if (!ev)
			return -ENOMEM;
		s->ev = ev;
		s->cap_ev = n;
	}
	if (nacc > s->cap_acc) {
		char *lines = realloc(s->lines, nacc * CW_LINE_MAX);
		if (!lines)
			return -ENOMEM;
		s->lines = lines;
		s->cap_acc = nacc;
	}
	for (size_t i = 0; i < b->nlines; i++)
		need += CRD_CW_STDIO_BOUND(b->lines[i].len);
	if (need > s->stdio_cap) {
		char *p = realloc(s->stdio, need);
		if (!p)
			return -ENOMEM;
		s->stdio = p;
		s->stdio_cap = need;
	}
	return 0;
}

/* Put ev[0..n) (sorted, within the limits). */
static int put(struct cw_sink *s, const struct crd_cw_event *ev, size_t n, uint64_t deadline)
{
	size_t need = crd_cw_body_bound(crd_cw_cfg.log_group, s->stream, ev, n);
	ssize_t len;
	int rc;

	if (need > s->body_cap) {
		char *b = realloc(s->body, need);
		if (!b)
			return CW_FAIL;
		s->body = b;
		s->body_cap = need;
	}
	len = crd_cw_put_body(s->body, s->body_cap, crd_cw_cfg.log_group, s->stream, ev, n);
	if (len < 0)
		return CW_FAIL;
	if (!s->stream_ready && ensure_stream(s, deadline))
		return CW_FAIL;
	rc = call(s, "PutLogEvents", s->body, (size_t)len, deadline);
	if (rc == CW_NOT_FOUND) {
		/* Group or stream deleted under us: recreate, retry once. */
		s->stream_ready = 0;
		if (ensure_stream(s, deadline))
			return CW_FAIL;
		rc = call(s, "PutLogEvents", s->body, (size_t)len, deadline);
		if (rc == CW_NOT_FOUND)
			warn_limited(s, "PutLogEvents",
				     "ResourceNotFoundException after recreating "
				     "the log group and stream");
	}
	return rc == CW_OK ? CW_OK : CW_FAIL;
}

static int cw_export(struct crd_sink *base, const struct crd_batch *b, uint64_t deadline)
{
	struct cw_sink *s = (struct cw_sink *)base;
	size_t n = 0, acc_at = 0;
	int rc = 0;

	if (grow(s, b->n + b->nlines, b->n, b))
		return -ENOMEM;
	for (size_t i = 0; i < b->n; i++) {
		const struct crd_span *sp = b->spans[i];
		/* Lines packed end to end (~150 bytes each), not one
		 * CW_LINE_MAX slot each: a slot per line touched a page per
		 * line, 2 MiB resident for a 512-span batch (issue #7). The
		 * room for the worst case is reserved, never touched. */
		char *line = s->lines + acc_at;
		ssize_t len;

		if (sp->kind != CRD_KIND_SERVER)
			continue;
		len = crd_cw_access_line(line, CW_LINE_MAX, sp, b->views[i], crd_cw_cfg.json);
		if (len < 0)
			continue;
		uint64_t t = sp->end_ns ? sp->end_ns : sp->start_ns;
		s->ev[n] = (struct crd_cw_event){
		    .ts_ms = (int64_t)(t / 1000000u), .msg = line, .len = (size_t)len};
		crd_cw_fit(&s->ev[n]);
		acc_at += (size_t)len;
		n++;
	}
	for (size_t i = 0, at = 0; i < b->nlines; i++) {
		const struct crd_log_line *l = &b->lines[i];
		ssize_t len = crd_cw_stdio_line(s->stdio + at, CRD_CW_STDIO_BOUND(l->len), l,
						crd_cw_cfg.json);
		if (len < 0)
			continue;
		s->ev[n] = (struct crd_cw_event){
		    .ts_ms = l->ts_ms, .msg = s->stdio + at, .len = (size_t)len};
		crd_cw_fit(&s->ev[n]);
		at += (size_t)len;
		n++;
	}
	crd_cw_sort(s->ev, n);
	for (size_t at = 0; at < n;) {
		size_t k = crd_cw_batch_len(s->ev + at, n - at);
		if (put(s, s->ev + at, k, deadline))
			rc = -EIO;
		at += k;
	}
	return rc;
}

static void cw_destroy(struct crd_sink *base)
{
	struct cw_sink *s = (struct cw_sink *)base;

	if (s->h)
		crd_curl.easy_cleanup(s->h);
	if (s->token_hdr) {
		explicit_bzero(s->token_hdr, strlen(s->token_hdr));
		free(s->token_hdr);
	}
	free(s->ev);
	free(s->lines);
	free(s->stdio);
	free(s->body);
	free(s);
}

static const struct crd_sink_ops cw_ops = {
    .name = "cloudwatch",
    .export_spans = cw_export,
    .destroy = cw_destroy,
    .all_spans = 1, /* an access log has every request, sampled or not */
    .logs = 1,	    /* and the app's stdout/stderr lines (CRUDDUR_CAPTURE_STDIO) */
};

struct crd_sink *crd_cloudwatch_sink_new(void)
{
	struct cw_sink *s = calloc(1, sizeof(*s));
	const char *u = crd_cw_cfg.endpoint;
	const char *path;
	char host[256];

	if (!s)
		return NULL;
	s->base.ops = &cw_ops;
	/* The endpoint with "/" as the path when it has none. */
	path = strchr(strstr(u, "://") + 3, '/');
	snprintf(s->url, sizeof(s->url), "%.2090s%s", u, path ? "" : "/");
	{
		/* Messages name the URL without any user:password@. */
		const char *h = strstr(s->url, "://") + 3, *at = strchr(h, '@');
		if (at && at < strchr(h, '/'))
			snprintf(s->url_safe, sizeof(s->url_safe), "%.*s%s", (int)(h - s->url),
				 s->url, at + 1);
		else
			snprintf(s->url_safe, sizeof(s->url_safe), "%.255s", s->url);
	}
	if (crd_cw_cfg.log_stream) {
		snprintf(s->stream, sizeof(s->stream), "%s", crd_cw_cfg.log_stream);
	} else {
		if (gethostname(host, sizeof(host) - 1))
			strcpy(host, "unknown-host");
		host[sizeof(host) - 1] = 0;
		snprintf(s->stream, sizeof(s->stream), "%s/%s/%ld", host, crd_cfg.service_name,
			 (long)getpid());
		/* ':' and '*' are not allowed in a stream name. */
		for (char *p = s->stream; *p; p++)
			if (*p == ':' || *p == '*' || (unsigned char)*p < 0x20)
				*p = '_';
	}
	if (crd_cw_cfg.session_token) {
		size_t n = strlen(crd_cw_cfg.session_token) + 32;
		s->token_hdr = malloc(n);
		if (!s->token_hdr) {
			cw_destroy(&s->base);
			return NULL;
		}
		snprintf(s->token_hdr, n, "X-Amz-Security-Token: %s", crd_cw_cfg.session_token);
	}
	if (crd_curl_load() || !(s->h = crd_curl.easy_init())) {
		cw_destroy(&s->base);
		return NULL;
	}
	snprintf(s->sigv4, sizeof(s->sigv4), "aws:amz:%s:logs", crd_cw_cfg.region);
	crd_curl.easy_setopt(s->h, CURLOPT_AWS_SIGV4, s->sigv4);
	crd_curl.easy_setopt(s->h, CURLOPT_USERNAME, crd_cw_cfg.access_key);
	crd_curl.easy_setopt(s->h, CURLOPT_PASSWORD, crd_cw_cfg.secret_key);
	crd_curl.easy_setopt(s->h, CURLOPT_NOSIGNAL, 1L);
	/* Certificates are always verified (issue #8): libcurl's default,
	 * stated so that no later change can drop it. */
	crd_curl.easy_setopt(s->h, CURLOPT_SSL_VERIFYPEER, 1L);
	crd_curl.easy_setopt(s->h, CURLOPT_SSL_VERIFYHOST, 2L);
	crd_curl.easy_setopt(s->h, CURLOPT_WRITEFUNCTION, on_body);
	crd_curl.easy_setopt(s->h, CURLOPT_WRITEDATA, s);
	crd_curl.easy_setopt(s->h, CURLOPT_USERAGENT, CRD_NAME "/" CRD_VERSION);
	crd_curl.easy_setopt(s->h, CURLOPT_PROTOCOLS_STR, "http,https");
	/* Do not wait for 100-continue before sending the body. */
	crd_curl.easy_setopt(s->h, CURLOPT_EXPECT_100_TIMEOUT_MS, 0L);
	crd_debug("CloudWatch: access logs to group %s stream %s at %s (region %s)",
		  crd_cw_cfg.log_group, s->stream, s->url_safe, crd_cw_cfg.region);
	return &s->base;
}
