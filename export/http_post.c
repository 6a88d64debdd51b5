/* http_post.c - POST with retries (see http_post.h). */
#include "http_post.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "../preload/ids.h"
#include "../preload/log.h"
#include "../preload/span.h"
#include "../preload/version.h"
#include "http_plain.h"

/* Failures are reported at most this often per client (seconds). */
#define CRD_POST_WARN_EVERY_S 30
/* Connecting must not eat the whole attempt budget. */
#define CRD_POST_CONNECT_TIMEOUT_MS 5000L
/* A Retry-After beyond this is treated as this (seconds). */
#define CRD_POST_RETRY_AFTER_MAX_S 300

/* An HTTP-date (RFC 9110 section 5.6.7): libcurl's parser when it is
 * loaded, else the preferred IMF-fixdate form; -1 when unreadable. */
static time_t http_date(const char *v)
{
	struct tm tm = {0};
	const char *e;

	if (crd_curl.getdate)
		return crd_curl.getdate(v, NULL);
	e = strptime(v, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	return e && !*e ? timegm(&tm) : (time_t)-1;
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct crd_http_client *c = arg;
	size_t len = size * n, room = CRD_POST_BODY_KEEP - c->body_len;

	memcpy(c->body + c->body_len, p, len < room ? len : room);
	c->body_len += len < room ? len : room;
	c->body[c->body_len] = 0;
	return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
	struct crd_http_client *c = arg;
	size_t len = size * n;
	char v[64];

	if (len > 12 && !strncasecmp(p, "Retry-After:", 12)) {
		size_t k = len - 12;
		const char *s = p + 12;
		while (k && (*s == ' ' || *s == '\t'))
			s++, k--;
		while (k && (s[k - 1] == '\r' || s[k - 1] == '\n' || s[k - 1] == ' '))
			k--;
		if (k && k < sizeof(v)) {
			char *end;
			memcpy(v, s, k);
			v[k] = 0;
			long secs = strtol(v, &end, 10);
			if (*end || end == v) { /* HTTP-date */
				time_t t = http_date(v), now = time(NULL);
				secs = t > now ? (long)(t - now) : (t >= 0 ? 0 : -1);
			}
			if (secs >= 0)
				c->retry_after_ms =
				    (secs > CRD_POST_RETRY_AFTER_MAX_S ? CRD_POST_RETRY_AFTER_MAX_S
								       : secs) *
				    1000L;
		}
	}
	/* Rollbar's 429 says how long to pause (api/1/item rate limits). */
	if (len > 31 && !strncasecmp(p, "X-Rate-Limit-Remaining-Seconds:", 31)) {
		char *end;
		size_t k = len - 31 < sizeof(v) - 1 ? len - 31 : sizeof(v) - 1;
		memcpy(v, p + 31, k);
		v[k] = 0;
		long secs = strtol(v, &end, 10);
		if (end != v && secs >= 0)
			c->rate_limit_remaining_s = secs;
	}
	return len;
}

int crd_otlp_retryable(long status)
{
	/* OTLP/HTTP spec "Retryable Response Codes". */
	return status == 429 || status == 502 || status == 503 || status == 504;
}

/* libcurl, loaded on first need. */
static CURL *curl_handle(void)
{
	return crd_curl_load() ? NULL : crd_curl.easy_init();
}

int crd_http_client_init(struct crd_http_client *c, const char *what, const char *url,
			 long timeout_ms, const char *ca_file)
{
	const char *at, *scheme_end;

	memset(c, 0, sizeof(*c));
	/* Plain http:// needs no libcurl (nor its TLS stacks: issue #7). */
	c->plain = crd_plain_new(url);
	if (!c->plain && (c->h = curl_handle()) == NULL)
		return crd_curl_load() ? -ENOENT : -ENOMEM;
	c->what = what;
	c->timeout_ms = timeout_ms;
	c->ca_file = ca_file;
	/* Messages name the URL without any user:password@, and with secret
	 * query values (?api_key=...) redacted. */
	scheme_end = strstr(url, "://");
	at = scheme_end ? strchr(scheme_end + 3, '@') : NULL;
	if (at && (!strchr(scheme_end + 3, '/') || at < strchr(scheme_end + 3, '/'))) {
		char plain[sizeof(c->url_safe)];
		snprintf(plain, sizeof(plain), "%.*s%s", (int)(scheme_end + 3 - url), url, at + 1);
		crd_redact_target(c->url_safe, sizeof(c->url_safe), plain);
	} else {
		crd_redact_target(c->url_safe, sizeof(c->url_safe), url);
	}
	return 0;
}

void crd_http_client_destroy(struct crd_http_client *c)
{
	if (c->h)
		crd_curl.easy_cleanup(c->h);
	c->h = NULL;
	crd_plain_free(c->plain);
	c->plain = NULL;
}

static void warn_limited(struct crd_http_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void warn_limited(struct crd_http_client *c, const char *fmt, ...)
{
	uint64_t now = crd_mono_ns();
	char msg[384];
	va_list ap;

	if (c->last_warn_ns && now - c->last_warn_ns < CRD_POST_WARN_EVERY_S * 1000000000ull) {
		c->warn_suppressed++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (c->warn_suppressed)
		crd_warn("%s (and %lu similar failures)", msg, c->warn_suppressed);
	else
		crd_warn("%s", msg);
	c->last_warn_ns = now;
	c->warn_suppressed = 0;
}

static long backoff_ms(int attempt)
{
	long ms = CRD_POST_BACKOFF_FIRST_MS;

	for (int i = 0; i < attempt && ms < CRD_POST_BACKOFF_MAX_MS; i++)
		ms = ms * 3 / 2;
	if (ms > CRD_POST_BACKOFF_MAX_MS)
		ms = CRD_POST_BACKOFF_MAX_MS;
	/* +-20% jitter so a fleet does not retry in lockstep. */
	return ms * 8 / 10 + (long)(crd_rand64() % (uint64_t)(ms * 4 / 10 + 1));
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

int crd_http_post(struct crd_http_client *c, const char *url, struct curl_slist *headers,
		  const void *body, size_t len, uint64_t deadline_ns, crd_retryable_fn retryable)
{
	CURL *h = c->h;
	int plain = crd_plain_serves(c->plain, url);

	if (!plain && !h && !(h = c->h = curl_handle())) {
		warn_limited(c, "%s export to %s: libcurl unavailable; data dropped", c->what,
			     c->url_safe);
		return -EIO;
	}
	for (int attempt = 0;; attempt++) {
		uint64_t now = crd_mono_ns();
		long left_ms = deadline_ns > now ? (long)((deadline_ns - now) / 1000000u) : 0;
		long t = c->timeout_ms < left_ms ? c->timeout_ms : left_ms;
		CURLcode rc;
		const char *why = NULL; /* a transport failure, plain HTTP */

		if (t <= 0) {
			warn_limited(
			    c, "%s export to %s: no time left to send (deadline); data dropped",
			    c->what, c->url_safe);
			return -EIO;
		}
		c->status = 0;
		c->retry_after_ms = -1;
		c->rate_limit_remaining_s = -1;
		c->body_len = 0;
		c->body[0] = 0;
		if (plain) {
			long ct = t < CRD_POST_CONNECT_TIMEOUT_MS ? t : CRD_POST_CONNECT_TIMEOUT_MS;
			if (crd_plain_post(c->plain, headers, body, len, t, ct, &c->status,
					   on_header, on_body, c, &why)) {
				rc = CURLE_COULDNT_CONNECT; /* any transport failure: why says which
							     */
			} else {
				rc = CURLE_OK;
				why = NULL;
				if (c->status >= 200 && c->status < 300)
					return 0;
			}
			goto answered;
		}
		crd_curl.easy_setopt(h, CURLOPT_URL, url);
		crd_curl.easy_setopt(h, CURLOPT_POST, 1L);
		crd_curl.easy_setopt(h, CURLOPT_POSTFIELDS, body);
		crd_curl.easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
		crd_curl.easy_setopt(h, CURLOPT_HTTPHEADER, headers);
		crd_curl.easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
		crd_curl.easy_setopt(h, CURLOPT_TIMEOUT_MS, t);
		crd_curl.easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
				     t < CRD_POST_CONNECT_TIMEOUT_MS ? t
								     : CRD_POST_CONNECT_TIMEOUT_MS);
		crd_curl.easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
		crd_curl.easy_setopt(h, CURLOPT_WRITEDATA, c);
		crd_curl.easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
		crd_curl.easy_setopt(h, CURLOPT_HEADERDATA, c);
		crd_curl.easy_setopt(h, CURLOPT_USERAGENT, CRD_NAME "/" CRD_VERSION);
		crd_curl.easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
		/* Certificates are always verified (issue #8): libcurl's
		 * default, stated so that no later change can drop it. */
		crd_curl.easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
		crd_curl.easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
		if (c->ca_file)
			crd_curl.easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
		rc = crd_curl.easy_perform(h);
		if (rc == CURLE_OK) {
			crd_curl.easy_getinfo(h, CURLINFO_RESPONSE_CODE, &c->status);
			if (c->status >= 200 && c->status < 300)
				return 0;
		}
	answered:;
		int again = rc != CURLE_OK || (retryable && retryable(c->status));
		long wait = c->retry_after_ms >= 0 ? c->retry_after_ms : backoff_ms(attempt);
		now = crd_mono_ns();
		if (!again || attempt + 1 >= CRD_POST_MAX_ATTEMPTS ||
		    now + (uint64_t)wait * 1000000u >= deadline_ns) {
			if (rc != CURLE_OK)
				warn_limited(c, "%s export to %s failed: %s; data dropped", c->what,
					     c->url_safe, why ? why : crd_curl.easy_strerror(rc));
			else
				warn_limited(c, "%s export to %s: HTTP %ld%s%.200s; data dropped",
					     c->what, c->url_safe, c->status,
					     c->body_len ? ": " : "", c->body);
			return -EIO;
		}
		crd_debug("%s export to %s: %s %ld; retrying in %ld ms", c->what, c->url_safe,
			  rc == CURLE_OK ? "HTTP"
			  : why		 ? why
					 : crd_curl.easy_strerror(rc),
			  c->status, wait);
		sleep_ms(wait);
	}
}
