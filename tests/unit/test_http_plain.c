/* test_http_plain.c - the libcurl-free http:// client (export/http_plain.c)
 * against scripted servers on loopback threads: the request it sends
 * (framing, Host, libcurl header-list conventions), keep-alive reuse,
 * every response framing (Content-Length, chunked with extensions and
 * trailers, close-delimited, 204, interim 100), a kept-alive connection
 * the server closed (one retry on a fresh one), timeouts and refusals
 * with libcurl's words; and which URLs it takes at all.
 *
 * Also crd_span_view_pack() (preload/span.c): a packed view reads the same
 * as the full one.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../preload/span.h"
#include "http_plain.h"

static int lfd;
static int port;
static pthread_t thr;
static char seen[8][4096]; /* requests the server read, in order */
static int nseen, nconns;

static void listen_any(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t l = sizeof(a);

	lfd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert(lfd >= 0);
	cr_assert_eq(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(lfd, 8), 0);
	getsockname(lfd, (struct sockaddr *)&a, &l);
	port = ntohs(a.sin_port);
}

static int accept_one(void)
{
	int fd = accept(lfd, NULL, NULL);
	nconns++;
	return fd;
}

/* Read one request (head + Content-Length body) into seen[]. */
static int read_req(int fd)
{
	char *b = seen[nseen];
	size_t have = 0;
	char *end;

	while (!(end = memmem(b, have, "\r\n\r\n", 4))) {
		ssize_t r = read(fd, b + have, sizeof(seen[0]) - 1 - have);
		if (r <= 0)
			return -1;
		have += (size_t)r;
	}
	const char *cl = strcasestr(b, "Content-Length: ");
	size_t want = (size_t)(end + 4 - b) + (cl ? strtoul(cl + 16, NULL, 10) : 0);
	while (have < want) {
		ssize_t r = read(fd, b + have, sizeof(seen[0]) - 1 - have);
		if (r <= 0)
			return -1;
		have += (size_t)r;
	}
	b[have] = 0;
	nseen++;
	return 0;
}

static void say(int fd, const char *s)
{
	cr_assert_eq(write(fd, s, strlen(s)), (ssize_t)strlen(s));
}

static void start(void *(*fn)(void *))
{
	listen_any();
	pthread_create(&thr, NULL, fn, NULL);
}

struct got {
	long status;
	char body[512];
	size_t blen;
	char hdrs[1024];
};

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct got *g = arg;
	size_t k = size * n;
	if (k > sizeof(g->body) - 1 - g->blen)
		k = sizeof(g->body) - 1 - g->blen;
	memcpy(g->body + g->blen, p, k);
	g->blen += k;
	g->body[g->blen] = 0;
	return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
	struct got *g = arg;
	strncat(g->hdrs, p, size * n < sizeof(g->hdrs) - 1 - strlen(g->hdrs)
				? size * n
				: sizeof(g->hdrs) - 1 - strlen(g->hdrs));
	return size * n;
}

static struct crd_plain *client(const char *path)
{
	char url[128];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
	struct crd_plain *p = crd_plain_new(url);
	cr_assert_not_null(p);
	cr_assert(crd_plain_serves(p, url));
	return p;
}

static int post(struct crd_plain *p, struct curl_slist *h, const char *body, struct got *g,
		long timeout_ms, const char **why)
{
	memset(g, 0, sizeof(*g));
	return crd_plain_post(p, h, body, strlen(body), timeout_ms, timeout_ms, &g->status,
			      on_header, on_body, g, why);
}

/* ---- keep-alive, the request as sent ---- */

static void *srv_keepalive(void *arg)
{
	int fd = accept_one();
	read_req(fd);
	say(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Test: one\r\n\r\n{}");
	read_req(fd);
	say(fd, "HTTP/1.1 429 Too Many\r\nRetry-After: 3\r\nContent-Length: 4\r\n\r\nslow");
	close(fd);
	return arg;
}

Test(http_plain, request_and_keepalive)
{
	struct curl_slist h3 = {"Empty;", NULL}, h2 = {"Expect:", &h3}, h1 = {"X-A: b", &h2};
	const char *why;
	struct got g;
	char hosthdr[64];

	start(srv_keepalive);
	struct crd_plain *p = client("/v1/traces");
	cr_assert_eq(post(p, &h1, "hello", &g, 5000, &why), 0, "%s", why);
	cr_assert_eq(g.status, 200);
	cr_assert_str_eq(g.body, "{}");
	cr_assert_not_null(strstr(g.hdrs, "X-Test: one\r\n"));
	cr_assert_eq(post(p, &h1, "second body", &g, 5000, &why), 0, "%s", why);
	cr_assert_eq(g.status, 429);
	cr_assert_str_eq(g.body, "slow");
	cr_assert_not_null(strstr(g.hdrs, "Retry-After: 3\r\n"));
	pthread_join(thr, NULL);
	cr_assert_eq(nconns, 1, "the connection is kept alive");
	cr_assert_eq(nseen, 2);
	cr_assert_eq(strncmp(seen[0], "POST /v1/traces HTTP/1.1\r\n", 26), 0, "%s", seen[0]);
	snprintf(hosthdr, sizeof(hosthdr), "\r\nHost: 127.0.0.1:%d\r\n", port);
	cr_assert_not_null(strstr(seen[0], hosthdr));
	cr_assert_not_null(strstr(seen[0], "\r\nContent-Length: 5\r\n"));
	cr_assert_not_null(strstr(seen[0], "\r\nX-A: b\r\n"));
	cr_assert_not_null(strstr(seen[0], "\r\nEmpty:\r\n"), "K; sends an empty header");
	cr_assert_null(strcasestr(seen[0], "Expect"), "K: drops the header");
	cr_assert_str_eq(strstr(seen[0], "\r\n\r\n") + 4, "hello");
	cr_assert_str_eq(strstr(seen[1], "\r\n\r\n") + 4, "second body");
	crd_plain_free(p);
}

/* ---- response framings ---- */

static void *srv_framings(void *arg)
{
	int fd = accept_one();
	read_req(fd);
	say(fd, "HTTP/1.1 100 Continue\r\n\r\n");
	say(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n");
	usleep(20000); /* the rest in a later read */
	say(fd, "6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n");
	read_req(fd);
	say(fd, "HTTP/1.1 204 No Content\r\n\r\n");
	read_req(fd);
	say(fd, "HTTP/1.0 200 OK\r\n\r\nuntil eof");
	close(fd);
	return arg;
}

Test(http_plain, framings)
{
	const char *why;
	struct got g;

	start(srv_framings);
	struct crd_plain *p = client("/");
	cr_assert_eq(post(p, NULL, "a", &g, 5000, &why), 0, "%s", why);
	cr_assert_eq(g.status, 200);
	cr_assert_str_eq(g.body, "hello world");
	cr_assert_null(strstr(g.hdrs, "Continue"), "interim answers are skipped");
	cr_assert_eq(post(p, NULL, "b", &g, 5000, &why), 0, "%s", why);
	cr_assert_eq(g.status, 204);
	cr_assert_eq(post(p, NULL, "c", &g, 5000, &why), 0, "%s", why);
	cr_assert_eq(g.status, 200);
	cr_assert_str_eq(g.body, "until eof");
	pthread_join(thr, NULL);
	cr_assert_eq(nconns, 1);
	crd_plain_free(p);
}

/* ---- a kept-alive connection closed by the server ---- */

static void *srv_closes(void *arg)
{
	int fd = accept_one();
	read_req(fd);
	say(fd, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
	close(fd); /* no Connection: close: the client finds out on reuse */
	fd = accept_one();
	read_req(fd);
	say(fd, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nnew");
	close(fd);
	return arg;
}

Test(http_plain, stale_connection_retried_once)
{
	const char *why;
	struct got g;

	start(srv_closes);
	struct crd_plain *p = client("/");
	cr_assert_eq(post(p, NULL, "a", &g, 5000, &why), 0, "%s", why);
	usleep(50000);
	cr_assert_eq(post(p, NULL, "b", &g, 5000, &why), 0, "%s", why);
	cr_assert_str_eq(g.body, "new");
	pthread_join(thr, NULL);
	cr_assert_eq(nconns, 2);
	cr_assert_str_eq(strstr(seen[1], "\r\n\r\n") + 4, "b");
	crd_plain_free(p);
}

/* ---- failures ---- */

static void *srv_silent(void *arg)
{
	int fd = accept_one();
	read_req(fd);
	usleep(600000); /* never answers in time */
	close(fd);
	return arg;
}

Test(http_plain, timeout_and_refused)
{
	const char *why;
	struct got g;

	start(srv_silent);
	struct crd_plain *p = client("/");
	cr_assert_eq(post(p, NULL, "a", &g, 200, &why), -ETIMEDOUT);
	cr_assert_str_eq(why, "Timeout was reached");
	pthread_join(thr, NULL);
	close(lfd); /* nobody listens any more */
	cr_assert_lt(post(p, NULL, "a", &g, 2000, &why), 0);
	cr_assert_str_eq(why, "Couldn't connect to server");
	crd_plain_free(p);
}

static void *srv_garbage(void *arg)
{
	int fd = accept_one();
	read_req(fd);
	say(fd, "SSH-2.0-OpenSSH\r\n\r\n");
	close(fd);
	return arg;
}

Test(http_plain, not_http)
{
	const char *why;
	struct got g;

	start(srv_garbage);
	struct crd_plain *p = client("/");
	cr_assert_lt(post(p, NULL, "a", &g, 2000, &why), 0);
	cr_assert_str_eq(why, "Weird server reply");
	pthread_join(thr, NULL);
	crd_plain_free(p);
}

/* ---- which URLs ---- */

Test(http_plain, urls_it_takes)
{
	struct crd_plain *p;

	unsetenv("http_proxy");
	unsetenv("all_proxy");
	unsetenv("ALL_PROXY");
	cr_assert_null(crd_plain_new("https://example.com/v1/traces"));
	cr_assert_null(crd_plain_new("http://user:pw@example.com/"), "Basic auth: libcurl");
	cr_assert_null(crd_plain_new("http://example.com:80x/"));
	cr_assert_null(crd_plain_new("http:///path"));
	p = crd_plain_new("HTTP://[::1]:4318/v1/traces");
	cr_assert_not_null(p);
	cr_assert_str_eq(crd_plain_host(p), "[::1]:4318");
	cr_assert_str_eq(crd_plain_path(p), "/v1/traces");
	crd_plain_free(p);
	p = crd_plain_new("http://collector");
	cr_assert_not_null(p);
	cr_assert_str_eq(crd_plain_host(p), "collector");
	cr_assert_str_eq(crd_plain_path(p), "");
	crd_plain_free(p);
	setenv("http_proxy", "http://proxy:3128", 1);
	cr_assert_null(crd_plain_new("http://collector:4318/"), "proxies stay libcurl's job");
}

/* ---- crd_span_view_pack ---- */

Test(span_view, pack_reads_the_same)
{
	static struct crd_span s;
	static struct crd_span_view full, packed[2];
	size_t n;

	s.kind = CRD_KIND_CLIENT;
	s.status = 503;
	s.start_ns = 1, s.end_ns = 2;
	s.peer = (struct crd_addr){.family = AF_INET, .port = 8080, .addr = {10, 1, 2, 3}};
	strcpy(s.req.method, "GET");
	strcpy(s.req.target, "http://api.example.com:8080/x?token=secret&a=1");
	crd_span_view(&s, &full);
	crd_span_view(&s, &packed[0]);
	cr_assert_gt(full.scratch_used, 0, "the test needs scratch strings");
	n = crd_span_view_pack(&packed[0]);
	cr_assert_eq(n % 8, 0);
	cr_assert_lt(n, sizeof(full) / 2);
	memset((char *)&packed[0] + n, 0x5a, sizeof(packed) - n); /* the next view's bytes */
	cr_assert_eq(packed[0].nattrs, full.nattrs);
	cr_assert_str_eq(packed[0].name, full.name);
	cr_assert_eq(packed[0].status_code, full.status_code);
	for (size_t i = 0; i < full.nattrs; i++) {
		const struct crd_attr *a = &packed[0].attrs[i], *b = &full.attrs[i];
		cr_assert_str_eq(a->key, b->key);
		cr_assert_eq(a->type, b->type);
		cr_assert_eq(a->i, b->i);
		if (a->type == CRD_ATTR_STR) {
			cr_assert_eq(a->len, b->len);
			cr_assert_eq(memcmp(a->s, b->s, a->len), 0, "%s", a->key);
			cr_assert((const char *)a->s < (const char *)&packed[0] + n ||
				      (const char *)a->s >= (const char *)&packed[1],
				  "%s points past the packed view", a->key);
		}
	}
}
