/* curlsrv - a thread-per-connection HTTP/1.1 test server that calls a
 * downstream with libcurl's easy interface on the request thread.
 *
 *   curlsrv --port P --downstream URL [--portfile F]
 *
 * GET /call[?anything] -> curl_easy_perform(GET URL) with the app's own
 * header list ("X-App: 1", plus "traceparent: <fixed>" when the request
 * path is /call-own) on a handle the thread reuses; answers 200 with the
 * downstream's body, or 502 with the curl error.
 * GET /twice -> two transfers on the handle; the second relies on the
 * header list the handle kept from the first (the shim must have put the
 * app's list back); answers with the second downstream body.
 * GET /fail -> a transfer to a closed port (a transport failure span).
 * Anything else -> 200 "ok\n". Keep-alive. SIGTERM -> exit(0).
 */
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *downstream;

struct buf {
	char data[65536];
	size_t len;
};

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct buf *b = arg;
	size_t len = size * n, room = sizeof(b->data) - b->len;
	memcpy(b->data + b->len, p, len < room ? len : room);
	b->len += len < room ? len : room;
	return len;
}

static void reply(int fd, int status, const char *body, size_t len)
{
	char head[256];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nContent-Type: text/plain\r\n\r\n",
			 status, len);
	if (write(fd, head, (size_t)n) != n || write(fd, body, len) != (ssize_t)len)
		return;
}

static void call(int fd, CURL *h, const char *url, int own_traceparent, int twice)
{
	struct curl_slist *hdrs = curl_slist_append(NULL, "X-App: 1");
	struct buf *b = calloc(1, sizeof(*b));
	CURLcode rc;

	if (own_traceparent)
		hdrs = curl_slist_append(
			hdrs, "traceparent: 00-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-bbbbbbbbbbbbbbbb-01");
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
	rc = curl_easy_perform(h);
	if (twice && rc == CURLE_OK) {
		/* No setopt in between: the handle must still hold our list. */
		b->len = 0;
		rc = curl_easy_perform(h);
	}
	if (rc == CURLE_OK)
		reply(fd, 200, b->data, b->len);
	else
		reply(fd, 502, curl_easy_strerror(rc), strlen(curl_easy_strerror(rc)));
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(hdrs);
	free(b);
}

static void *serve(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char req[8192];
	size_t have = 0;
	CURL *h = curl_easy_init();

	for (;;) {
		char *end;
		ssize_t n;
		while (!(end = memmem(req, have, "\r\n\r\n", 4))) {
			if (have == sizeof(req) || (n = read(fd, req + have, sizeof(req) - have)) <= 0)
				goto out;
			have += (size_t)n;
		}
		size_t headlen = (size_t)(end + 4 - req);
		if (!strncmp(req, "GET /call-own", 13))
			call(fd, h, downstream, 1, 0);
		else if (!strncmp(req, "GET /call", 9))
			call(fd, h, downstream, 0, 0);
		else if (!strncmp(req, "GET /twice", 10))
			call(fd, h, downstream, 0, 1);
		else if (!strncmp(req, "GET /fail", 9))
			call(fd, h, "http://127.0.0.1:1/unreachable", 0, 0);
		else
			reply(fd, 200, "ok\n", 3);
		memmove(req, req + headlen, have - headlen);
		have -= headlen;
	}
out:
	curl_easy_cleanup(h);
	close(fd);
	return NULL;
}

static void on_term(int sig)
{
	(void)sig;
	exit(0);
}

int main(int argc, char **argv)
{
	int port = 0, one = 1, lfd;
	const char *portfile = NULL;
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t al = sizeof(a);

	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--port"))
			port = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--downstream"))
			downstream = argv[i + 1];
		else if (!strcmp(argv[i], "--portfile"))
			portfile = argv[i + 1];
	}
	if (!downstream) {
		fprintf(stderr, "usage: curlsrv --port P --downstream URL [--portfile F]\n");
		return 2;
	}
	signal(SIGTERM, on_term);
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)port);
	if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) || listen(lfd, 128)) {
		perror("curlsrv: bind/listen");
		return 1;
	}
	getsockname(lfd, (struct sockaddr *)&a, &al);
	if (portfile) {
		FILE *f = fopen(portfile, "w");
		if (f) {
			fprintf(f, "%d\n", ntohs(a.sin_port));
			fclose(f);
		}
	}
	for (;;) {
		int fd = accept(lfd, NULL, NULL);
		pthread_t t;
		if (fd < 0) {
			if (errno == EINTR)
				continue;
			return 1;
		}
		if (pthread_create(&t, NULL, serve, (void *)(intptr_t)fd) == 0)
			pthread_detach(t);
		else
			close(fd);
	}
}
