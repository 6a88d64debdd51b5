/* curl_span.c - CLIENT spans around curl_easy_perform (see curl_span.h). */
#include "curl_span.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "conn.h"
#include "guard.h"
#include "http1.h"
#include "inject.h"
#include "real.h"
#include "rec.h"
#include "tracectx.h"

/* Easy handles with a header list we remember at once; past this, handles
 * we do not know are sent without our headers (their own list would
 * otherwise be lost). */
#define CRD_CURL_HANDLES 4096
#define TOMBSTONE	 ((CURL *)1)

static struct {
	CURL *h;
	struct curl_slist *list;
} map[CRD_CURL_HANDLES];
static pthread_mutex_t map_mu = PTHREAD_MUTEX_INITIALIZER;
static int map_overflow;

static size_t slot_of(CURL *h)
{
	uintptr_t x = (uintptr_t)h;
	x ^= x >> 17;
	x *= 0x9e3779b97f4a7c15ull;
	return (size_t)(x >> 52) & (CRD_CURL_HANDLES - 1);
}

/* Index of h, or -1; under map_mu. */
static long find(CURL *h)
{
	size_t i = slot_of(h);

	for (size_t n = 0; n < CRD_CURL_HANDLES && map[i].h; n++, i = (i + 1) % CRD_CURL_HANDLES)
		if (map[i].h == h)
			return (long)i;
	return -1;
}

static void put(CURL *h, struct curl_slist *list)
{
	long at = find(h);
	size_t i = slot_of(h);

	if (at < 0) {
		for (size_t n = 0; n < CRD_CURL_HANDLES; n++, i = (i + 1) % CRD_CURL_HANDLES)
			if (!map[i].h || map[i].h == TOMBSTONE) {
				at = (long)i;
				break;
			}
	}
	if (at < 0) {
		map_overflow = 1;
		return;
	}
	map[at].h = h;
	map[at].list = list;
}

void crd_curl_set_headers(CURL *h, struct curl_slist *list)
{
	pthread_mutex_lock(&map_mu);
	put(h, list);
	pthread_mutex_unlock(&map_mu);
}

void crd_curl_forget(CURL *h)
{
	long at;

	pthread_mutex_lock(&map_mu);
	if ((at = find(h)) >= 0)
		map[at].h = TOMBSTONE;
	pthread_mutex_unlock(&map_mu);
}

void crd_curl_dup(CURL *h, CURL *dup)
{
	long at;

	pthread_mutex_lock(&map_mu);
	if ((at = find(h)) >= 0)
		put(dup, map[at].list);
	pthread_mutex_unlock(&map_mu);
}

/* The app's list for h: 1 and *list when known (NULL: never set). */
static int app_list(CURL *h, struct curl_slist **list)
{
	long at;
	int known;

	pthread_mutex_lock(&map_mu);
	at = find(h);
	*list = at >= 0 ? map[at].list : NULL;
	known = at >= 0 || !map_overflow;
	pthread_mutex_unlock(&map_mu);
	return known;
}

/* The app's header line for name ("Name: value" or "Name;"), or NULL. */
static const char *find_header(const struct curl_slist *l, const char *name)
{
	size_t n = strlen(name);

	for (; l; l = l->next)
		if (l->data && !strncasecmp(l->data, name, n) &&
		    (l->data[n] == ':' || l->data[n] == ';'))
			return l->data;
	return NULL;
}

/* The app propagates its own context: our span becomes its child, like
 * a raw-socket client span (conn.c). 1 when adopted. */
static int adopt_app_context(struct crd_rec *r, const char *line)
{
	struct crd_tracectx tc;
	char v[CRD_TRACEPARENT_MAX];
	const char *p = strchr(line, ':');

	if (!p)
		return 0;
	p += 1 + strspn(p + 1, " \t");
	snprintf(v, sizeof(v), "%.*s", (int)strcspn(p, " \t\r\n"), p);
	if (crd_traceparent_parse(v, &tc))
		return 0;
	memcpy(r->span.trace_id, tc.trace_id, 16);
	memcpy(r->span.parent_span_id, tc.span_id, 8);
	r->span.sampled = (uint8_t)tc.sampled;
	return 1;
}

/* A copy of the app's list plus our headers; NULL on allocation failure. */
static struct curl_slist *with_trace_headers(const struct curl_slist *app, const struct crd_rec *r)
{
	struct curl_slist *out = NULL, *t;
	char hdr[CRD_INJECT_MAX + 1];
	size_t n;

	for (; app; app = app->next) {
		if (!(t = CRD_REAL(curl_slist_append)(out, app->data)))
			goto fail;
		out = t;
	}
	n = crd_inject_format(hdr, r->span.trace_id, r->span.span_id, r->span.sampled,
			      r->span.req.tracestate, 1, crd_cfg.xray_propagate);
	hdr[n] = 0;
	/* One list entry per header line, without its CRLF. */
	for (char *line = hdr, *end; *line; line = end + 2) {
		end = strstr(line, "\r\n");
		*end = 0;
		if (!(t = CRD_REAL(curl_slist_append)(out, line)))
			goto fail;
		out = t;
	}
	return out;
fail:
	CRD_REAL(curl_slist_free_all)(out);
	return NULL;
}

static const char *curle_name(CURLcode rc)
{
	static const struct {
		CURLcode code;
		const char *name;
	} names[] = {
	    {CURLE_UNSUPPORTED_PROTOCOL, "CURLE_UNSUPPORTED_PROTOCOL"},
	    {CURLE_URL_MALFORMAT, "CURLE_URL_MALFORMAT"},
	    {CURLE_COULDNT_RESOLVE_PROXY, "CURLE_COULDNT_RESOLVE_PROXY"},
	    {CURLE_COULDNT_RESOLVE_HOST, "CURLE_COULDNT_RESOLVE_HOST"},
	    {CURLE_COULDNT_CONNECT, "CURLE_COULDNT_CONNECT"},
	    {CURLE_HTTP2, "CURLE_HTTP2"},
	    {CURLE_PARTIAL_FILE, "CURLE_PARTIAL_FILE"},
	    {CURLE_HTTP_RETURNED_ERROR, "CURLE_HTTP_RETURNED_ERROR"},
	    {CURLE_WRITE_ERROR, "CURLE_WRITE_ERROR"},
	    {CURLE_READ_ERROR, "CURLE_READ_ERROR"},
	    {CURLE_OUT_OF_MEMORY, "CURLE_OUT_OF_MEMORY"},
	    {CURLE_OPERATION_TIMEDOUT, "CURLE_OPERATION_TIMEDOUT"},
	    {CURLE_SSL_CONNECT_ERROR, "CURLE_SSL_CONNECT_ERROR"},
	    {CURLE_ABORTED_BY_CALLBACK, "CURLE_ABORTED_BY_CALLBACK"},
	    {CURLE_TOO_MANY_REDIRECTS, "CURLE_TOO_MANY_REDIRECTS"},
	    {CURLE_GOT_NOTHING, "CURLE_GOT_NOTHING"},
	    {CURLE_SEND_ERROR, "CURLE_SEND_ERROR"},
	    {CURLE_RECV_ERROR, "CURLE_RECV_ERROR"},
	    {CURLE_PEER_FAILED_VERIFICATION, "CURLE_PEER_FAILED_VERIFICATION"},
	    {CURLE_BAD_CONTENT_ENCODING, "CURLE_BAD_CONTENT_ENCODING"},
	    {CURLE_HTTP2_STREAM, "CURLE_HTTP2_STREAM"},
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].code == rc)
			return names[i].name;
	return NULL;
}

/* Fill the span from what libcurl reports after the transfer. */
static void fill_span(CURL *h, struct crd_span *s, CURLcode rc)
{
	char *url = NULL, *method = NULL, *ip = NULL;
	long status = 0, port = 0, version = 0;
	const char *name;

	if (CRD_REAL(curl_easy_getinfo)(h, CURLINFO_EFFECTIVE_URL, &url) || !url)
		url = "";
	if (CRD_REAL(curl_easy_getinfo)(h, CURLINFO_EFFECTIVE_METHOD, &method) || !method)
		method = "GET";
	CRD_REAL(curl_easy_getinfo)(h, CURLINFO_RESPONSE_CODE, &status);
	CRD_REAL(curl_easy_getinfo)(h, CURLINFO_HTTP_VERSION, &version);
	if (!CRD_REAL(curl_easy_getinfo)(h, CURLINFO_PRIMARY_IP, &ip) && ip && *ip &&
	    !CRD_REAL(curl_easy_getinfo)(h, CURLINFO_PRIMARY_PORT, &port)) {
		if (inet_pton(AF_INET, ip, s->peer.addr) == 1)
			s->peer.family = AF_INET;
		else if (inet_pton(AF_INET6, ip, s->peer.addr) == 1)
			s->peer.family = AF_INET6;
		s->peer.port = (uint16_t)port;
	}
	snprintf(s->req.method, sizeof(s->req.method), "%s", method);
	if (snprintf(s->req.target, sizeof(s->req.target), "%s", url) >= (int)sizeof(s->req.target))
		s->req.flags |= CRD_REQ_TRUNCATED;
	/* server.address/port come from the URL's authority. */
	const char *auth = strstr(url, "://");
	if (auth) {
		auth += 3;
		const char *end = auth + strcspn(auth, "/?#"),
			   *at = memchr(auth, '@', (size_t)(end - auth));
		if (at)
			auth = at + 1;
		snprintf(s->req.host, sizeof(s->req.host), "%.*s", (int)(end - auth), auth);
	}
	s->status = status > 0 && status < 1000 ? (uint16_t)status : 0;
	switch (version) {
	case CURL_HTTP_VERSION_1_0:
		memcpy(s->proto_version, "1.0", 4);
		break;
	case CURL_HTTP_VERSION_1_1:
		memcpy(s->proto_version, "1.1", 4);
		break;
	case CURL_HTTP_VERSION_2_0:
		memcpy(s->proto_version, "2", 2);
		break;
	case CURL_HTTP_VERSION_3:
		memcpy(s->proto_version, "3", 2);
		break;
	}
	if (rc != CURLE_OK) {
		if ((name = curle_name(rc)))
			snprintf(s->error_type, sizeof(s->error_type), "%s", name);
		else
			snprintf(s->error_type, sizeof(s->error_type), "CURLE_%d", (int)rc);
	}
}

CURLcode crd_curl_perform(CURL *h)
{
	struct curl_slist *app = NULL, *ours = NULL;
	struct crd_rec *r;
	CURLcode rc;

	r = crd_rec_new(CRD_KIND_CLIENT);
	if (!r) {
		crd_in_curl++;
		rc = CRD_REAL(curl_easy_perform)(h);
		crd_in_curl--;
		return rc;
	}
	/* Strings of req the parser would have initialised. */
	memset(&r->span.req, 0, offsetof(struct crd_http_req, content_length));
	r->span.req.content_length = -1;
	crd_client_context(r);
	int known = app_list(h, &app);
	const char *own = known ? find_header(app, "traceparent") : NULL;
	if (own)
		adopt_app_context(r, own);
	else if (crd_cfg.propagate && known) {
		if (find_header(app, "tracestate"))
			r->span.req.tracestate[0] = 0; /* the app's own wins */
		ours = with_trace_headers(app, r);
		if (ours && CRD_REAL(curl_easy_setopt)(h, CURLOPT_HTTPHEADER, ours) != CURLE_OK) {
			CRD_REAL(curl_slist_free_all)(ours);
			ours = NULL;
		}
	}
	crd_in_curl++;
	rc = CRD_REAL(curl_easy_perform)(h);
	crd_in_curl--;
	if (ours) {
		/* Put the app's list back before anyone sees the handle. */
		CRD_REAL(curl_easy_setopt)(h, CURLOPT_HTTPHEADER, app);
		CRD_REAL(curl_slist_free_all)(ours);
	}
	fill_span(h, &r->span, rc);
	crd_rec_finish(r);
	return rc;
}
