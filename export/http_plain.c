/* http_plain.c - POST over plain HTTP/1.1 without libcurl (see http_plain.h). */
#include "http_plain.h"

#include <curl/curl.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "../preload/ids.h"
#include "../preload/real.h"
#include "../preload/version.h"

/* A response head larger than this is refused (curl allows 100 KB; our
 * back ends answer a few hundred bytes). Also the request head's limit. */
#define CRD_PLAIN_HEAD_MAX 8192
/* Host names: RFC 1035 (253) with room; ports: 5 digits. */
#define CRD_PLAIN_HOST_MAX 256
#define CRD_PLAIN_PORT_MAX 8
/* Failure texts (*why) are libcurl's curl_easy_strerror() words for the
 * same failure, so messages read the same whichever client sent. */

struct crd_plain {
	int fd; /* -1: no connection */
	char *url;
	char host[CRD_PLAIN_HOST_MAX]; /* for getaddrinfo: no brackets */
	char port[CRD_PLAIN_PORT_MAX];
	char hosthdr[CRD_PLAIN_HOST_MAX + CRD_PLAIN_PORT_MAX + 4]; /* the Host header value */
	const char *path;					   /* into url */
	char buf[CRD_PLAIN_HEAD_MAX];				   /* request head, then response */
};

struct crd_plain *crd_plain_new(const char *url)
{
	const char *h, *e, *port = "80", *pe;
	struct crd_plain *p;
	size_t hn;
	const char *env[] = {"http_proxy", "all_proxy", "ALL_PROXY"};

	if (strncasecmp(url, "http://", 7))
		return NULL;
	/* libcurl honours these (HTTP_PROXY only in lower case, httpoxy):
	 * proxying, no_proxy and the rest stay its job. */
	for (size_t i = 0; i < sizeof(env) / sizeof(env[0]); i++)
		if (getenv(env[i]) && *getenv(env[i]))
			return NULL;
	h = url + 7;
	e = h + strcspn(h, "/?#");
	if (memchr(h, '@', (size_t)(e - h)) || e == h)
		return NULL; /* credentials: libcurl's Basic auth */
	if (*h == '[') {
		const char *rb = memchr(h, ']', (size_t)(e - h));
		if (!rb)
			return NULL;
		pe = rb + 1;
		hn = (size_t)(rb - h - 1);
		h++;
	} else {
		pe = memchr(h, ':', (size_t)(e - h));
		if (!pe)
			pe = e;
		hn = (size_t)(pe - h);
	}
	if (pe < e) {
		if (*pe != ':' || e - pe - 1 < 1 || e - pe - 1 >= CRD_PLAIN_PORT_MAX ||
		    strspn(pe + 1, "0123456789") != (size_t)(e - pe - 1))
			return NULL;
		port = pe + 1;
	}
	if (!hn || hn >= CRD_PLAIN_HOST_MAX || *e == '#')
		return NULL;
	p = calloc(1, sizeof(*p));
	if (!p || !(p->url = strdup(url))) {
		free(p);
		return NULL;
	}
	p->fd = -1;
	memcpy(p->host, h, hn);
	memcpy(p->port, port, pe < e ? (size_t)(e - pe - 1) : strlen(port));
	/* Host: as written in the URL (brackets and port included). */
	snprintf(p->hosthdr, sizeof(p->hosthdr), "%.*s", (int)(e - (url + 7)), url + 7);
	p->path = p->url + (e - url);
	return p;
}

const char *crd_plain_host(const struct crd_plain *p)
{
	return p->hosthdr;
}

const char *crd_plain_path(const struct crd_plain *p)
{
	return p->path;
}

int crd_plain_serves(const struct crd_plain *p, const char *url)
{
	return p && !strcmp(p->url, url);
}

static void disconnect(struct crd_plain *p)
{
	if (p->fd >= 0)
		CRD_REAL(close)(p->fd);
	p->fd = -1;
}

void crd_plain_free(struct crd_plain *p)
{
	if (!p)
		return;
	disconnect(p);
	free(p->url);
	free(p);
}

static long ms_left(uint64_t deadline)
{
	uint64_t now = crd_mono_ns();
	return deadline > now ? (long)((deadline - now + 999999) / 1000000u) : 0;
}

/* Wait for events on fd until deadline: 0 ready, -ETIMEDOUT. */
static int wait_fd(int fd, short events, uint64_t deadline)
{
	struct pollfd pf = {.fd = fd, .events = events};
	long ms;
	int r;

	for (;;) {
		ms = ms_left(deadline);
		if (ms <= 0)
			return -ETIMEDOUT;
		r = poll(&pf, 1, (int)(ms > 60000 ? 60000 : ms));
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

static int do_connect(struct crd_plain *p, uint64_t deadline, const char **why)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG};
	struct addrinfo *res = NULL, *ai;
	int rc = -ECONNREFUSED;

	if (getaddrinfo(p->host, p->port, &hints, &res)) {
		*why = "Couldn't resolve host name";
		return -EHOSTUNREACH;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		/* socket() is not hooked; close() and connect() are. */
		int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		int err = 0, one = 1;
		socklen_t el = sizeof(err);

		if (fd < 0) {
			rc = -errno;
			continue;
		}
		if (CRD_REAL(connect)(fd, ai->ai_addr, ai->ai_addrlen) && errno != EINPROGRESS) {
			rc = -errno;
		} else if ((rc = wait_fd(fd, POLLOUT, deadline)) == 0 &&
			   !getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) && !err) {
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			p->fd = fd;
			freeaddrinfo(res);
			return 0;
		} else if (!rc) {
			rc = -(err ? err : EIO);
		}
		CRD_REAL(close)(fd);
	}
	freeaddrinfo(res);
	*why = rc == -ETIMEDOUT ? "Timeout was reached" : "Couldn't connect to server";
	return rc;
}

/* The request head: libcurl's defaults (Host, User-Agent, Accept,
 * Content-Length) with the caller's list applied over them. */
static int build_head(struct crd_plain *p, const struct curl_slist *headers, size_t len)
{
	size_t n = 0, cap = sizeof(p->buf);
	int k;

	k = snprintf(p->buf, cap,
		     "POST %s%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: " CRD_NAME "/" CRD_VERSION
		     "\r\nAccept: */*\r\nContent-Length: %zu\r\n",
		     *p->path == '/' ? "" : "/", p->path, p->hosthdr, len);
	if (k < 0 || (size_t)k >= cap)
		return -ENOSPC;
	n = (size_t)k;
	for (const struct curl_slist *l = headers; l; l = l->next) {
		const char *d = l->data, *c = strchr(d, ':'), *s = strchr(d, ';');
		size_t dl = strlen(d);

		if (c && (!s || c < s)) {
			const char *v = c + 1;
			while (*v == ' ' || *v == '\t')
				v++;
			if (!*v)
				continue; /* "K:" removes an internal header: we add none of those
					   */
		} else if (s && !s[1]) {
			dl--; /* "K;": the header with an empty value */
			if (n + dl + 3 >= cap)
				return -ENOSPC;
			memcpy(p->buf + n, d, dl);
			memcpy(p->buf + n + dl, ":\r\n", 3);
			n += dl + 3;
			continue;
		} else {
			continue;
		}
		if (n + dl + 2 >= cap)
			return -ENOSPC;
		memcpy(p->buf + n, d, dl);
		memcpy(p->buf + n + dl, "\r\n", 2);
		n += dl + 2;
	}
	if (n + 2 >= cap)
		return -ENOSPC;
	memcpy(p->buf + n, "\r\n", 2);
	return (int)(n + 2);
}

static int send_all(int fd, struct iovec *iov, int cnt, uint64_t deadline)
{
	while (cnt) {
		struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)cnt};
		ssize_t w = CRD_REAL(sendmsg)(fd, &m, MSG_NOSIGNAL);
		int rc;

		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				return -errno;
			if ((rc = wait_fd(fd, POLLOUT, deadline)))
				return rc;
			continue;
		}
		while (cnt && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

/* Read more bytes: >0 count, 0 EOF, -errno. */
static ssize_t recv_some(int fd, char *b, size_t n, uint64_t deadline)
{
	for (;;) {
		ssize_t r = CRD_REAL(recv)(fd, b, n, 0);
		int rc;

		if (r >= 0)
			return r;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return -errno;
		if ((rc = wait_fd(fd, POLLIN, deadline)))
			return rc;
	}
}

/* Body framing (RFC 9112 section 6.3 and 7.1). */
enum { B_LEN, B_CLOSE, B_CSIZE, B_CEXT, B_CDATA, B_CCRLF, B_TRAILER, B_DONE };

struct body {
	int st;
	uint64_t left; /* B_LEN, B_CDATA: bytes to go; B_CSIZE: the size read */
	size_t line;   /* B_TRAILER: length of the current line */
	int bad;
};

/* Feed n body bytes; returns how many belong to this message. */
static size_t feed(struct body *b, char *d, size_t n, void *c, crd_plain_cb on_body)
{
	size_t i = 0;

	while (i < n && b->st != B_DONE) {
		char ch = d[i];
		size_t k;
		int x;

		switch (b->st) {
		case B_CLOSE:
			on_body(d + i, 1, n - i, c);
			return n;
		case B_LEN:
		case B_CDATA:
			k = n - i < b->left ? n - i : (size_t)b->left;
			on_body(d + i, 1, k, c);
			i += k;
			b->left -= k;
			if (!b->left)
				b->st = b->st == B_LEN ? B_DONE : B_CCRLF;
			continue;
		case B_CSIZE:
			x = ch >= '0' && ch <= '9'		   ? ch - '0'
			    : (ch | 32) >= 'a' && (ch | 32) <= 'f' ? (ch | 32) - 'a' + 10
								   : -1;
			if (x >= 0) {
				if (b->left >> 59) {
					b->bad = 1;
					return n;
				}
				b->left = b->left * 16 + (uint64_t)x;
			} else if (ch == '\n') {
				b->st = b->left ? B_CDATA : B_TRAILER;
				b->line = 0;
			} else if (ch != '\r') {
				b->st = B_CEXT;
			}
			break;
		case B_CEXT:
			if (ch == '\n') {
				b->st = b->left ? B_CDATA : B_TRAILER;
				b->line = 0;
			}
			break;
		case B_CCRLF:
			if (ch == '\n') {
				b->st = B_CSIZE;
				b->left = 0;
			}
			break;
		case B_TRAILER:
			if (ch == '\n') {
				if (!b->line)
					b->st = B_DONE;
				b->line = 0;
			} else if (ch != '\r') {
				b->line++;
			}
			break;
		}
		i++;
	}
	return i;
}

/* The decimal number leading v[0..n) after spaces/tabs (bounded: the
 * buffer is not NUL-terminated, so no strtol); -1 when there is none. */
static int64_t leading_num(const char *v, size_t n)
{
	size_t i = 0;
	int64_t x = 0;

	while (i < n && (v[i] == ' ' || v[i] == '\t'))
		i++;
	if (i == n || v[i] < '0' || v[i] > '9')
		return -1;
	for (; i < n && v[i] >= '0' && v[i] <= '9'; i++) {
		if (x > (INT64_MAX - 9) / 10)
			return -1;
		x = x * 10 + (v[i] - '0');
	}
	return x;
}

static int has_token(const char *v, size_t n, const char *tok)
{
	size_t t = strlen(tok);

	for (size_t i = 0; i + t <= n; i++)
		if (!strncasecmp(v + i, tok, t))
			return 1;
	return 0;
}

/* Read one final response; *keep says whether the connection can carry
 * the next request. */
static int read_response(struct crd_plain *p, void *c, long *pstatus, uint64_t deadline, int *keep,
			 int *got_any, crd_plain_cb on_header, crd_plain_cb on_body,
			 const char **why)
{
	size_t have = 0;
	ssize_t r;

	*keep = 0;
	*got_any = 0;
	for (;;) {
		char *end = NULL;
		long status;
		int chunked = 0, close_it = 0, minor;
		int64_t clen = -1;
		struct body b = {0};

		while (!(end = memmem(p->buf, have, "\r\n\r\n", 4))) {
			if (have == sizeof(p->buf)) {
				*why = "Weird server reply (response head too large)";
				return -EPROTO;
			}
			r = recv_some(p->fd, p->buf + have, sizeof(p->buf) - have, deadline);
			if (r <= 0) {
				*why = r == -ETIMEDOUT ? "Timeout was reached"
				       : have	       ? "Failure when receiving data from the peer"
					      : "Server returned nothing (no headers, no data)";
				return r ? (int)r : -ECONNRESET;
			}
			have += (size_t)r;
			*got_any = 1;
		}
		end += 4;
		if (have < 12 || memcmp(p->buf, "HTTP/1.", 7) || p->buf[8] != ' ') {
			*why = "Weird server reply";
			return -EPROTO;
		}
		minor = p->buf[7] - '0';
		status = (long)leading_num(p->buf + 9, 3);
		if (status < 100 || status > 999) {
			*why = "Weird server reply";
			return -EPROTO;
		}
		close_it = minor == 0; /* HTTP/1.0: no keep-alive unless asked */
		for (char *l = memchr(p->buf, '\n', (size_t)(end - p->buf)) + 1; l < end - 2;) {
			char *nl = memchr(l, '\n', (size_t)(end - l));
			size_t ln = (size_t)(nl - l + 1);

			if (status >= 200 && on_header)
				on_header(l, 1, ln, c);
			if (ln > 15 && !strncasecmp(l, "Content-Length:", 15))
				clen = leading_num(l + 15, ln - 15);
			else if (ln > 18 && !strncasecmp(l, "Transfer-Encoding:", 18))
				chunked = has_token(l + 18, ln - 18, "chunked");
			else if (ln > 11 && !strncasecmp(l, "Connection:", 11)) {
				if (has_token(l + 11, ln - 11, "close"))
					close_it = 1;
				else if (has_token(l + 11, ln - 11, "keep-alive"))
					close_it = 0;
			}
			l = nl + 1;
		}
		have -= (size_t)(end - p->buf);
		memmove(p->buf, end, have);
		if (status < 200) {
			if (status == 101) {
				*why = "Weird server reply (101 Switching Protocols)";
				return -EPROTO;
			}
			continue; /* 100 Continue and other interim answers */
		}
		*pstatus = status;
		if (status == 204 || status == 304 || (!chunked && clen == 0))
			b.st = B_DONE;
		else if (chunked)
			b.st = B_CSIZE;
		else if (clen > 0)
			b.st = B_LEN, b.left = (uint64_t)clen;
		else
			b.st = B_CLOSE, close_it = 1;
		/* Bytes past the message: the server is out of step; no reuse. */
		if (have && (b.st == B_DONE || feed(&b, p->buf, have, c, on_body) < have))
			close_it = 1;
		while (b.st != B_DONE && !b.bad) {
			r = recv_some(p->fd, p->buf, sizeof(p->buf), deadline);
			if (r == 0 && b.st == B_CLOSE)
				break;
			if (r <= 0) {
				*why = r == -ETIMEDOUT ? "Timeout was reached"
						       : "Transferred a partial file";
				return r ? (int)r : -ECONNRESET;
			}
			if (feed(&b, p->buf, (size_t)r, c, on_body) < (size_t)r)
				close_it = 1;
		}
		if (b.bad) {
			*why = "Failure when receiving data from the peer (bad chunked body)";
			return -EPROTO;
		}
		*keep = !close_it;
		return 0;
	}
}

int crd_plain_post(struct crd_plain *p, const struct curl_slist *headers, const void *body,
		   size_t len, long timeout_ms, long connect_ms, long *status,
		   crd_plain_cb on_header, crd_plain_cb on_body, void *arg, const char **why)
{
	uint64_t deadline = crd_mono_ns() + (uint64_t)timeout_ms * 1000000u;
	uint64_t cdeadline = crd_mono_ns() + (uint64_t)connect_ms * 1000000u;
	int hn, rc, keep, got;

	*why = "";
	hn = build_head(p, headers, len);
	if (hn < 0) {
		*why = "request headers too large";
		return hn;
	}
	/* A kept-alive connection the server closed meanwhile fails on the
	 * first send or read with nothing received: then once more on a
	 * fresh connection, as libcurl does. */
	for (int fresh = p->fd < 0;; fresh = 1) {
		struct iovec iov[2] = {{p->buf, (size_t)hn}, {(void *)body, len}};

		if (p->fd < 0 &&
		    (rc = do_connect(p, cdeadline < deadline ? cdeadline : deadline, why)))
			return rc;
		rc = send_all(p->fd, iov, len ? 2 : 1, deadline);
		if (!rc)
			rc = read_response(p, arg, status, deadline, &keep, &got, on_header,
					   on_body, why);
		else
			got = 0, *why = rc == -ETIMEDOUT ? "Timeout was reached"
							 : "Failure when sending data to the peer";
		if (!rc) {
			if (!keep)
				disconnect(p);
			return 0;
		}
		disconnect(p);
		if (fresh || got || rc == -ETIMEDOUT)
			return rc;
		hn = build_head(p, headers, len); /* the buffer held the answer */
	}
}
