/* http_post.h - one HTTP POST with the OTLP retry policy, over libcurl.
 *
 * Shared by every HTTP sink (OTLP now; Rollbar and CloudWatch later) so the
 * retry rules live in one place: retry only on connection failures and on
 * the statuses the caller marks retryable (OTLP: 429, 502, 503, 504),
 * honouring Retry-After (seconds or HTTP date), else exponential backoff
 * with jitter (1 s x 1.5 per attempt, capped at 5 s, 5 attempts), and never
 * past the deadline. Exporter thread only.
 */
#ifndef CRD_HTTP_POST_H
#define CRD_HTTP_POST_H

#include <stddef.h>
#include <stdint.h>

#include "curl_dl.h"

#define CRD_POST_MAX_ATTEMPTS	  5
#define CRD_POST_BACKOFF_FIRST_MS 1000
#define CRD_POST_BACKOFF_MAX_MS	  5000
#define CRD_POST_BODY_KEEP	  256 /* bytes of an error answer kept for the log */

struct crd_http_client {
	CURL *h;		 /* libcurl; NULL until needed when plain serves the URL */
	struct crd_plain *plain; /* http_plain.h: plain http:// without libcurl, or NULL */
	const char *what;	 /* "OTLP", for messages */
	char url_safe[256];	 /* the URL without credentials, for messages */
	long timeout_ms;	 /* per attempt */
	const char *ca_file;	 /* NULL: the system store */
	/* Results of the last attempt. */
	long status;
	long retry_after_ms;	     /* -1 when absent */
	long rate_limit_remaining_s; /* X-Rate-Limit-Remaining-Seconds (Rollbar 429), -1 when absent
				      */
	char body[CRD_POST_BODY_KEEP + 1];
	size_t body_len;
	uint64_t last_warn_ns;
	unsigned long warn_suppressed;
};

int crd_http_client_init(struct crd_http_client *c, const char *what, const char *url,
			 long timeout_ms, const char *ca_file);

/* Is this HTTP status worth a retry? */
typedef int (*crd_retryable_fn)(long status);
int crd_otlp_retryable(long status);

/* POST body with headers until it succeeds (2xx), fails for good, or the
 * deadline (CLOCK_MONOTONIC ns) comes. 0 on 2xx; -EIO otherwise (one
 * rate-limited message says why). */
int crd_http_post(struct crd_http_client *c, const char *url, struct curl_slist *headers,
		  const void *body, size_t len, uint64_t deadline_ns, crd_retryable_fn retryable);

void crd_http_client_destroy(struct crd_http_client *c);

#endif
