/* cserver.c - a small HTTP/1.1 test server for cruddur's integration tests.
 *
 * Usage: cserver --port P [--mode rw|recvsend|vec|epoll] [--portfile F]
 *                [--host ADDR]
 *
 * Each mode drives the socket with a different family of libc calls, so the
 * shim's interposers are all exercised:
 *   rw        blocking accept(), one thread per connection, read()/write()
 *   recvsend  accept4(SOCK_CLOEXEC), thread per connection, recv() (after a
 *             recv(MSG_PEEK) each time) and send(MSG_NOSIGNAL)
 *   vec       accept(), thread per connection, readv()/writev(); /file
 *             bodies go out with sendfile() from a temp file
 *   epoll     one thread, accept4(SOCK_NONBLOCK), edge-triggered epoll,
 *             non-blocking read()/write() with EAGAIN and partial writes
 *
 * All modes: keep-alive, pipelining (requests parsed from a buffer and
 * answered in order), Content-Length and chunked request bodies,
 * Expect: 100-continue, Connection: close, HTTP/1.0 (close unless
 * keep-alive).
 *
 * Routes (any method; HEAD gets the head only):
 *   /status/NNN      status NNN (200..999) with body "status NNN\n"
 *                    (no body for 204 and 304)
 *   /chunked         Transfer-Encoding: chunked, 4 chunks + last chunk, each
 *                    written with its own write call
 *   /file?size=N     N bytes of a..z pattern (sendfile in vec mode)
 *   /big             102400 bytes of pattern
 *   /sleep?ms=N      sleeps N ms, then "slept\n"
 *   /eof             close-delimited body: no Content-Length, no chunking,
 *                    "Connection: close", body "until eof\n", then close
 *   /fetch?url=U     GETs U with libcurl, answers its status and body (for
 *                    later client-span tests); 502 on failure
 *   anything else    200 "hello\n"
 * Bad requests get 400 and the connection is closed.
 *
 * SIGTERM/SIGINT: exit(0) (atexit handlers and destructors run).
 * Nothing is printed on stdout; errors go to stderr.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

enum mode { M_RW, M_RECVSEND, M_VEC, M_EPOLL };

static enum mode g_mode = M_RW;
static int g_sigpipe[2] = {-1, -1};

#define MAX_HEAD (64 * 1024)
#define READ_CHUNK 16384
#define PAT_LEN 65536
#define MAX_FILE_SIZE ((uint64_t)1 << 32) /* 4 GiB */
#define BIG_SIZE 102400

/* a..z pattern; byte at absolute offset o is 'a' + o % 26 */
static char g_pat[PAT_LEN + 26];

static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "cserver: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(2);
}

/* ------------------------------------------------------------------ buffers */

struct buf {
	char *p;
	size_t len, cap;
};

static void buf_reserve(struct buf *b, size_t extra)
{
	if (b->len + extra <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap < b->len + extra)
		cap *= 2;
	char *p = realloc(b->p, cap);
	if (!p)
		die("out of memory");
	b->p = p;
	b->cap = cap;
}

static void buf_append(struct buf *b, const void *data, size_t n)
{
	buf_reserve(b, n);
	memcpy(b->p + b->len, data, n);
	b->len += n;
}

static void buf_consume(struct buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
		return;
	}
	memmove(b->p, b->p + n, b->len - n);
	b->len -= n;
}

static void buf_free(struct buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

/* ------------------------------------------------------------------ parsing */

struct req {
	char method[32];
	char target[8192];
	int minor;       /* HTTP/1.<minor> */
	int conn_close;  /* Connection: close */
	int keep_alive;  /* Connection: keep-alive */
	int chunked;
	int expect100;
	long long clen; /* -1 when absent */
	size_t head_len;
	size_t total_len; /* head + raw body */
	uint64_t body_size; /* decoded body bytes */
};

enum { P_NEED = 0, P_DONE = 1, P_BAD = -1 };

static int token_in(const char *v, size_t n, const char *tok)
{
	size_t tl = strlen(tok);
	size_t i = 0;
	while (i < n) {
		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		size_t s = i;
		while (i < n && v[i] != ',')
			i++;
		size_t e = i;
		while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		if (e - s == tl && strncasecmp(v + s, tok, tl) == 0)
			return 1;
	}
	return 0;
}

/* Parse the chunked body starting at p (n bytes available). Returns P_DONE
 * with *used (raw bytes) and *size (decoded bytes), P_NEED, or P_BAD. */
static int parse_chunked(const char *p, size_t n, size_t *used, uint64_t *size)
{
	size_t pos = 0;
	uint64_t total = 0;
	for (;;) {
		const char *nl = memchr(p + pos, '\n', n - pos);
		if (!nl)
			return n - pos > 1024 ? P_BAD : P_NEED;
		size_t line_end = (size_t)(nl - p);
		uint64_t sz = 0;
		size_t i = pos;
		int digits = 0;
		while (i < line_end && isxdigit((unsigned char)p[i])) {
			int c = p[i];
			int d = c <= '9' ? c - '0' : (tolower(c) - 'a' + 10);
			if (sz > (UINT64_MAX >> 4))
				return P_BAD;
			sz = sz * 16 + (uint64_t)d;
			i++;
			digits++;
		}
		if (!digits)
			return P_BAD;
		pos = line_end + 1;
		if (sz == 0) {
			/* trailers until an empty line */
			for (;;) {
				const char *tl = memchr(p + pos, '\n', n - pos);
				if (!tl)
					return n - pos > MAX_HEAD ? P_BAD : P_NEED;
				size_t tlen = (size_t)(tl - (p + pos));
				int empty = tlen == 0 || (tlen == 1 && p[pos] == '\r');
				pos = (size_t)(tl - p) + 1;
				if (empty) {
					*used = pos;
					*size = total;
					return P_DONE;
				}
			}
		}
		if (n - pos < sz + 2)
			return P_NEED;
		pos += sz;
		if (p[pos] == '\r' && p[pos + 1] == '\n')
			pos += 2;
		else if (p[pos] == '\n')
			pos += 1;
		else
			return P_BAD;
		total += sz;
	}
}

/* Parse one request at the start of p. P_NEED leaves r->head_len set (0 when
 * the head is incomplete) so the caller can answer Expect: 100-continue. */
static int parse_request(const char *p, size_t n, struct req *r)
{
	memset(r, 0, sizeof(*r));
	r->clen = -1;
	/* an empty buffer may be NULL, which memmem must not get (UBSan) */
	const char *end = n ? memmem(p, n, "\r\n\r\n", 4) : NULL;
	if (!end)
		return n > MAX_HEAD ? P_BAD : P_NEED;
	size_t head_len = (size_t)(end - p) + 4;
	if (head_len > MAX_HEAD)
		return P_BAD;

	/* request line */
	const char *le = memmem(p, head_len, "\r\n", 2);
	const char *sp1 = memchr(p, ' ', (size_t)(le - p));
	if (!sp1 || sp1 == p || (size_t)(sp1 - p) >= sizeof(r->method))
		return P_BAD;
	const char *sp2 = memchr(sp1 + 1, ' ', (size_t)(le - sp1 - 1));
	if (!sp2 || sp2 == sp1 + 1 || (size_t)(sp2 - sp1 - 1) >= sizeof(r->target))
		return P_BAD;
	memcpy(r->method, p, (size_t)(sp1 - p));
	for (const char *c = p; c < sp1; c++)
		if (!isgraph((unsigned char)*c))
			return P_BAD;
	memcpy(r->target, sp1 + 1, (size_t)(sp2 - sp1 - 1));
	size_t vl = (size_t)(le - sp2 - 1);
	if (vl != 8 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0 || (sp2[8] != '0' && sp2[8] != '1'))
		return P_BAD;
	r->minor = sp2[8] - '0';

	/* headers */
	const char *h = le + 2;
	const char *hend = p + head_len - 2;
	while (h < hend) {
		const char *e = memmem(h, (size_t)(hend - h + 2), "\r\n", 2);
		if (!e)
			return P_BAD;
		const char *colon = memchr(h, ':', (size_t)(e - h));
		if (!colon || colon == h)
			return P_BAD;
		size_t nl = (size_t)(colon - h);
		const char *v = colon + 1;
		while (v < e && (*v == ' ' || *v == '\t'))
			v++;
		const char *ve = e;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		size_t vlen = (size_t)(ve - v);
		if (nl == 14 && strncasecmp(h, "content-length", 14) == 0) {
			char tmp[32];
			if (vlen == 0 || vlen >= sizeof(tmp))
				return P_BAD;
			memcpy(tmp, v, vlen);
			tmp[vlen] = 0;
			char *ep;
			errno = 0;
			long long cl = strtoll(tmp, &ep, 10);
			if (*ep || errno || cl < 0 || (r->clen >= 0 && r->clen != cl))
				return P_BAD;
			r->clen = cl;
		} else if (nl == 17 && strncasecmp(h, "transfer-encoding", 17) == 0) {
			if (token_in(v, vlen, "chunked"))
				r->chunked = 1;
			else
				return P_BAD;
		} else if (nl == 10 && strncasecmp(h, "connection", 10) == 0) {
			if (token_in(v, vlen, "close"))
				r->conn_close = 1;
			if (token_in(v, vlen, "keep-alive"))
				r->keep_alive = 1;
		} else if (nl == 6 && strncasecmp(h, "expect", 6) == 0) {
			if (vlen == 12 && strncasecmp(v, "100-continue", 12) == 0)
				r->expect100 = 1;
		}
		h = e + 2;
	}
	r->head_len = head_len;

	/* body */
	if (r->chunked) {
		size_t used;
		uint64_t size;
		int rc = parse_chunked(p + head_len, n - head_len, &used, &size);
		if (rc != P_DONE)
			return rc;
		r->total_len = head_len + used;
		r->body_size = size;
		return P_DONE;
	}
	if (r->clen > 0) {
		if ((uint64_t)(n - head_len) < (uint64_t)r->clen)
			return P_NEED;
		r->total_len = head_len + (size_t)r->clen;
		r->body_size = (uint64_t)r->clen;
		return P_DONE;
	}
	r->total_len = head_len;
	return P_DONE;
}

/* Value of query parameter name in target, as an unsigned number. */
static int query_num(const char *target, const char *name, uint64_t *out)
{
	const char *q = strchr(target, '?');
	size_t nl = strlen(name);
	while (q) {
		q++;
		if (strncmp(q, name, nl) == 0 && q[nl] == '=') {
			char *ep;
			errno = 0;
			unsigned long long v = strtoull(q + nl + 1, &ep, 10);
			if (errno || ep == q + nl + 1 || (*ep && *ep != '&'))
				return -1;
			*out = v;
			return 0;
		}
		q = strchr(q, '&');
	}
	return 1; /* absent */
}

static const char *reason(int code)
{
	switch (code) {
	case 100: return "Continue";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 206: return "Partial Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 413: return "Content Too Large";
	case 418: return "I'm a teapot";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return "Status";
	}
}

/* ------------------------------------------------------------ connections */

struct conn {
	int fd;
	struct buf in;
	/* epoll mode output queue */
	struct buf out;
	size_t out_off;      /* bytes of out already written */
	uint64_t gen_left;   /* pattern body bytes still to generate */
	uint64_t gen_off;    /* absolute pattern offset of the next byte */
	int close_after;     /* close once the output is flushed */
	int peer_eof;
	int dead;            /* write error: drop */
	int sent_continue;   /* 100 Continue sent for the pending request */
};

/* ---- blocking I/O (threaded modes) ---- */

static int write_all_fd(struct conn *c, const char *p, size_t n)
{
	while (n) {
		ssize_t w;
		if (g_mode == M_RECVSEND)
			w = send(c->fd, p, n, MSG_NOSIGNAL);
		else
			w = write(c->fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int writev_all_fd(struct conn *c, struct iovec *iov, int cnt)
{
	while (cnt > 0) {
		ssize_t w = writev(c->fd, iov, cnt);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		size_t left = (size_t)w;
		while (cnt > 0 && left >= iov->iov_len) {
			left -= iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt > 0) {
			iov->iov_base = (char *)iov->iov_base + left;
			iov->iov_len -= left;
		}
	}
	return 0;
}

/* ---- epoll output ---- */

static void ep_queue(struct conn *c, const char *p, size_t n)
{
	/* Write directly when nothing is queued (so separate emits are separate
	 * write() calls); queue what does not fit. */
	if (c->dead)
		return;
	if (c->out.len == c->out_off && c->gen_left == 0) {
		c->out.len = c->out_off = 0;
		while (n) {
			ssize_t w = write(c->fd, p, n);
			if (w < 0) {
				if (errno == EINTR)
					continue;
				if (errno == EAGAIN || errno == EWOULDBLOCK)
					break;
				c->dead = 1;
				return;
			}
			p += w;
			n -= (size_t)w;
		}
	}
	if (n)
		buf_append(&c->out, p, n);
}

/* Emit a group of pieces as one unit (one write/writev call when possible). */
static int emit(struct conn *c, struct iovec *iov, int cnt)
{
	if (g_mode == M_EPOLL) {
		if (cnt == 1) {
			ep_queue(c, iov[0].iov_base, iov[0].iov_len);
		} else {
			struct buf tmp = {0};
			for (int i = 0; i < cnt; i++)
				buf_append(&tmp, iov[i].iov_base, iov[i].iov_len);
			ep_queue(c, tmp.p, tmp.len);
			buf_free(&tmp);
		}
		return c->dead ? -1 : 0;
	}
	if (g_mode == M_VEC)
		return writev_all_fd(c, iov, cnt);
	if (g_mode == M_RW && cnt > 1) {
		/* rw: coalesce into one write() */
		struct buf tmp = {0};
		for (int i = 0; i < cnt; i++)
			buf_append(&tmp, iov[i].iov_base, iov[i].iov_len);
		int rc = write_all_fd(c, tmp.p, tmp.len);
		buf_free(&tmp);
		return rc;
	}
	/* recvsend: one send() per piece */
	for (int i = 0; i < cnt; i++)
		if (write_all_fd(c, iov[i].iov_base, iov[i].iov_len) < 0)
			return -1;
	return 0;
}

static int emit1(struct conn *c, const char *p, size_t n)
{
	struct iovec iov = {.iov_base = (void *)p, .iov_len = n};
	return emit(c, &iov, 1);
}

/* ---- the sendfile source (vec mode) ---- */

static pthread_mutex_t g_file_mu = PTHREAD_MUTEX_INITIALIZER;
static int g_file_fd = -1;
static uint64_t g_file_size;

static int file_ensure(uint64_t size)
{
	pthread_mutex_lock(&g_file_mu);
	if (g_file_fd < 0) {
		const char *dir = getenv("TMPDIR");
		char path[4096];
		snprintf(path, sizeof(path), "%s/cserver-XXXXXX", dir && *dir ? dir : "/tmp");
		g_file_fd = mkstemp(path);
		if (g_file_fd < 0) {
			pthread_mutex_unlock(&g_file_mu);
			fprintf(stderr, "cserver: mkstemp: %s\n", strerror(errno));
			return -1;
		}
		unlink(path);
	}
	while (g_file_size < size) {
		uint64_t off = g_file_size;
		size_t n = PAT_LEN;
		if (size - off < n)
			n = (size_t)(size - off);
		ssize_t w = pwrite(g_file_fd, g_pat + off % 26, n, (off_t)off);
		if (w <= 0) {
			pthread_mutex_unlock(&g_file_mu);
			fprintf(stderr, "cserver: pwrite: %s\n", strerror(errno));
			return -1;
		}
		g_file_size += (uint64_t)w;
	}
	pthread_mutex_unlock(&g_file_mu);
	return 0;
}

/* Send `size` pattern bytes starting at pattern offset 0. */
static int emit_pattern(struct conn *c, uint64_t size)
{
	if (g_mode == M_EPOLL) {
		c->gen_left = size;
		c->gen_off = 0;
		return 0;
	}
	if (g_mode == M_VEC) {
		if (file_ensure(size) < 0)
			return -1;
		off_t off = 0;
		while ((uint64_t)off < size) {
			size_t want = (size - (uint64_t)off) > (1u << 30) ? (1u << 30)
									  : (size_t)(size - (uint64_t)off);
			ssize_t w = sendfile(c->fd, g_file_fd, &off, want);
			if (w < 0) {
				if (errno == EINTR)
					continue;
				return -1;
			}
			if (w == 0)
				return -1;
		}
		return 0;
	}
	uint64_t off = 0;
	while (off < size) {
		size_t n = PAT_LEN;
		if (size - off < n)
			n = (size_t)(size - off);
		if (write_all_fd(c, g_pat + off % 26, n) < 0)
			return -1;
		off += n;
	}
	return 0;
}

/* ---- libcurl /fetch ---- */

static size_t curl_sink(char *ptr, size_t size, size_t nmemb, void *ud)
{
	buf_append((struct buf *)ud, ptr, size * nmemb);
	return size * nmemb;
}

static int do_fetch(const char *url, struct buf *body)
{
	CURL *h = curl_easy_init();
	if (!h)
		return 502;
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, curl_sink);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, body);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	CURLcode rc = curl_easy_perform(h);
	long code = 502;
	if (rc == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	else
		body->len = 0;
	curl_easy_cleanup(h);
	return (int)code;
}

/* ---- the application ---- */

static int send_head(struct conn *c, int code, const char *extra, int has_len, uint64_t len,
		     int conn_close, int v10_keepalive, const char *body, size_t body_len)
{
	char head[512];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %d %s\r\nServer: cserver\r\nContent-Type: text/plain\r\n%s", code,
			 reason(code), extra ? extra : "");
	if (has_len)
		n += snprintf(head + n, sizeof(head) - (size_t)n, "Content-Length: %llu\r\n",
			      (unsigned long long)len);
	if (conn_close)
		n += snprintf(head + n, sizeof(head) - (size_t)n, "Connection: close\r\n");
	else if (v10_keepalive)
		n += snprintf(head + n, sizeof(head) - (size_t)n, "Connection: keep-alive\r\n");
	n += snprintf(head + n, sizeof(head) - (size_t)n, "\r\n");
	struct iovec iov[2] = {{head, (size_t)n}, {(void *)body, body_len}};
	return emit(c, iov, body_len ? 2 : 1);
}

/* Answer one complete request (raw bytes at p). Returns 1 to close the
 * connection after the response, 0 to keep it, -1 on write error. */
static int handle(struct conn *c, const struct req *r, const char *p)
{
	(void)p;
	int head_only = strcmp(r->method, "HEAD") == 0;
	int cl = r->conn_close || (r->minor == 0 && !r->keep_alive);
	int ka10 = r->minor == 0 && !cl;
	char path[8192];
	size_t pl = strcspn(r->target, "?");
	memcpy(path, r->target, pl);
	path[pl] = 0;
	char body[256];
	int rc = 0;

	if (strncmp(path, "/status/", 8) == 0) {
		char *ep;
		long code = strtol(path + 8, &ep, 10);
		if (*ep || code < 200 || code > 999) {
			int bl = snprintf(body, sizeof(body), "bad status\n");
			rc = send_head(c, 400, NULL, 1, (uint64_t)bl, 1, 0, head_only ? NULL : body,
				       head_only ? 0 : (size_t)bl);
			return rc < 0 ? -1 : 1;
		}
		if (code == 204 || code == 304) {
			rc = send_head(c, (int)code, NULL, 0, 0, cl, ka10, NULL, 0);
		} else {
			int bl = snprintf(body, sizeof(body), "status %ld\n", code);
			rc = send_head(c, (int)code, NULL, 1, (uint64_t)bl, cl, ka10,
				       head_only ? NULL : body, head_only ? 0 : (size_t)bl);
		}
	} else if (strcmp(path, "/chunked") == 0) {
		rc = send_head(c, 200, "Transfer-Encoding: chunked\r\n", 0, 0, cl, ka10, NULL, 0);
		if (rc == 0 && !head_only) {
			static const char *parts[] = {"first chunk\n", "second\n",
						      "the third chunk, a little longer\n", "4\n"};
			for (size_t i = 0; rc == 0 && i < sizeof(parts) / sizeof(parts[0]); i++) {
				char sz[32];
				int sl = snprintf(sz, sizeof(sz), "%zx\r\n", strlen(parts[i]));
				struct iovec iov[3] = {{sz, (size_t)sl},
						       {(void *)parts[i], strlen(parts[i])},
						       {(void *)"\r\n", 2}};
				rc = emit(c, iov, 3);
			}
			if (rc == 0)
				rc = emit1(c, "0\r\n\r\n", 5);
		}
	} else if (strcmp(path, "/file") == 0 || strcmp(path, "/big") == 0) {
		uint64_t size = BIG_SIZE;
		if (path[1] == 'f') {
			int q = query_num(r->target, "size", &size);
			if (q == 1)
				size = 1024;
			if (q < 0 || size > MAX_FILE_SIZE) {
				int bl = snprintf(body, sizeof(body), "bad size\n");
				rc = send_head(c, 400, NULL, 1, (uint64_t)bl, cl, ka10,
					       head_only ? NULL : body, head_only ? 0 : (size_t)bl);
				return rc < 0 ? -1 : cl;
			}
		}
		rc = send_head(c, 200, NULL, 1, size, cl, ka10, NULL, 0);
		if (rc == 0 && !head_only && size)
			rc = emit_pattern(c, size);
	} else if (strcmp(path, "/sleep") == 0) {
		uint64_t ms = 0;
		if (query_num(r->target, "ms", &ms) == 0 && ms <= 60000) {
			struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
			while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
				;
		}
		int bl = snprintf(body, sizeof(body), "slept\n");
		rc = send_head(c, 200, NULL, 1, (uint64_t)bl, cl, ka10, head_only ? NULL : body,
			       head_only ? 0 : (size_t)bl);
	} else if (strcmp(path, "/log") == 0) {
		/* App output while serving (CRUDDUR_CAPTURE_STDIO tests): one
		 * line per stdio function, a line built from pieces, and raw
		 * write/writev, to stdout and stderr. */
		uint64_t id = 0;
		query_num(r->target, "id", &id);
		unsigned long long k = (unsigned long long)id;
		printf("req %llu printf %d\n", k, 1);
		fprintf(stdout, "req %llu fprintf-out\n", k);
		fprintf(stderr, "req %llu fprintf-err\n", k);
		char line[64];
		snprintf(line, sizeof(line), "req %llu puts", k);
		puts(line);
		snprintf(line, sizeof(line), "req %llu fputs\n", k);
		fputs(line, stdout);
		snprintf(line, sizeof(line), "req %llu fwrite\n", k);
		fwrite(line, 1, strlen(line), stdout);
		printf("req %llu part-a ", k);
		fputs("part-b", stdout);
		putchar(' ');
		putc('c', stdout);
		fputc('\n', stdout);
		snprintf(line, sizeof(line), "req %llu write\nreq %llu write2\n", k, k);
		if (write(2, line, strlen(line)) < 0)
			perror("write");
		fflush(stdout);
		int bl = snprintf(body, sizeof(body), "logged %llu\n", k);
		rc = send_head(c, 200, NULL, 1, (uint64_t)bl, cl, ka10, head_only ? NULL : body,
			       head_only ? 0 : (size_t)bl);
	} else if (strcmp(path, "/eof") == 0) {
		static const char eb[] = "until eof\n";
		rc = send_head(c, 200, NULL, 0, 0, 1, 0, NULL, 0);
		if (rc == 0 && !head_only)
			rc = emit1(c, eb, sizeof(eb) - 1);
		return rc < 0 ? -1 : 1;
	} else if (strcmp(path, "/fetch") == 0) {
		const char *u = strstr(r->target, "url=");
		struct buf fb = {0};
		int code = u ? do_fetch(u + 4, &fb) : 400;
		if (code < 200 || code > 999)
			code = 502;
		rc = send_head(c, code, NULL, 1, fb.len, cl, ka10, head_only ? NULL : fb.p,
			       head_only ? 0 : fb.len);
		buf_free(&fb);
	} else {
		rc = send_head(c, 200, NULL, 1, 6, cl, ka10, head_only ? NULL : "hello\n",
			       head_only ? 0 : 6);
	}
	if (rc < 0)
		return -1;
	return cl;
}

static int send_bad_request(struct conn *c)
{
	static const char msg[] = "bad request\n";
	return send_head(c, 400, NULL, 1, sizeof(msg) - 1, 1, 0, msg, sizeof(msg) - 1);
}

/* Process every complete request in c->in. Returns 1 when the connection
 * must be closed (after the output is flushed), 0 to keep reading. In epoll
 * mode it stops early while a pattern body is still being generated. */
static int process_input(struct conn *c)
{
	for (;;) {
		if (g_mode == M_EPOLL && (c->gen_left || c->out.len > c->out_off))
			return 0; /* resume once flushed */
		struct req r;
		int pr = parse_request(c->in.p, c->in.len, &r);
		if (pr == P_NEED) {
			if (r.head_len && r.expect100 && !c->sent_continue && r.minor == 1) {
				static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
				if (emit1(c, cont, sizeof(cont) - 1) < 0)
					return 1;
				c->sent_continue = 1;
			}
			return 0;
		}
		if (pr == P_BAD) {
			send_bad_request(c);
			return 1;
		}
		int h = handle(c, &r, c->in.p);
		buf_consume(&c->in, r.total_len);
		c->sent_continue = 0;
		if (h != 0)
			return 1;
	}
}

/* ------------------------------------------------------- threaded modes */

/* Responses go out in several writes (head, body, chunks): without
 * TCP_NODELAY, Nagle + delayed ACK would stall each by ~40 ms. */
static void set_nodelay(int fd)
{
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static ssize_t conn_read(struct conn *c, char *p, size_t cap)
{
	for (;;) {
		ssize_t n;
		if (g_mode == M_RECVSEND) {
			char peek[16];
			n = recv(c->fd, peek, sizeof(peek), MSG_PEEK);
			if (n <= 0) {
				if (n < 0 && errno == EINTR)
					continue;
				return n;
			}
			n = recv(c->fd, p, cap, 0);
		} else if (g_mode == M_VEC) {
			/* two iovecs over the free space, split unevenly */
			size_t first = cap > 64 ? 37 : cap / 2;
			struct iovec iov[2] = {{p, first}, {p + first, cap - first}};
			n = readv(c->fd, iov, cap - first ? 2 : 1);
		} else {
			n = read(c->fd, p, cap);
		}
		if (n < 0 && errno == EINTR)
			continue;
		return n;
	}
}

static void *conn_thread(void *arg)
{
	struct conn *c = arg;
	for (;;) {
		if (process_input(c))
			break;
		buf_reserve(&c->in, READ_CHUNK);
		ssize_t n = conn_read(c, c->in.p + c->in.len, c->in.cap - c->in.len);
		if (n <= 0)
			break;
		c->in.len += (size_t)n;
	}
	close(c->fd);
	buf_free(&c->in);
	free(c);
	return NULL;
}

static void *signal_watcher(void *arg)
{
	(void)arg;
	char b;
	while (read(g_sigpipe[0], &b, 1) < 0 && errno == EINTR)
		;
	exit(0);
	return NULL;
}

static void run_threaded(int lfd)
{
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_t t;
	if (pthread_create(&t, &attr, signal_watcher, NULL) != 0)
		die("pthread_create failed");
	for (;;) {
		int fd;
		if (g_mode == M_RECVSEND)
			fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		else
			fd = accept(lfd, NULL, NULL);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE ||
			    errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				if (errno == EMFILE || errno == ENFILE)
					usleep(10000);
				continue;
			}
			die("accept: %s", strerror(errno));
		}
		set_nodelay(fd);
		struct conn *c = calloc(1, sizeof(*c));
		if (!c)
			die("out of memory");
		c->fd = fd;
		if (pthread_create(&t, &attr, conn_thread, c) != 0) {
			fprintf(stderr, "cserver: pthread_create failed\n");
			close(fd);
			free(c);
		}
	}
}

/* ------------------------------------------------------------ epoll mode */

static void ep_close(int ep, struct conn *c)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	buf_free(&c->in);
	buf_free(&c->out);
	free(c);
}

/* Flush queued output and generated body. Returns 1 when all flushed, 0 on
 * EAGAIN, -1 on error. */
static int ep_flush(struct conn *c)
{
	for (;;) {
		if (c->out.len == c->out_off) {
			c->out.len = c->out_off = 0;
			if (!c->gen_left)
				return 1;
			size_t n = PAT_LEN;
			if (c->gen_left < n)
				n = (size_t)c->gen_left;
			buf_append(&c->out, g_pat + c->gen_off % 26, n);
			c->gen_off += n;
			c->gen_left -= n;
		}
		ssize_t w = write(c->fd, c->out.p + c->out_off, c->out.len - c->out_off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -1;
		}
		c->out_off += (size_t)w;
	}
}

/* Make as much progress as possible on c. Returns -1 when c was closed. */
static int ep_progress(int ep, struct conn *c)
{
	for (;;) {
		if (c->dead) {
			ep_close(ep, c);
			return -1;
		}
		int f = ep_flush(c);
		if (f < 0) {
			ep_close(ep, c);
			return -1;
		}
		if (f == 0)
			return 0; /* wait for EPOLLOUT */
		if (c->close_after) {
			ep_close(ep, c);
			return -1;
		}
		int cl = process_input(c);
		if (cl)
			c->close_after = 1;
		if (c->dead) {
			ep_close(ep, c);
			return -1;
		}
		if (cl || c->gen_left || c->out.len > c->out_off)
			continue; /* flush, then maybe more requests */
		/* process_input needs more input */
		if (c->peer_eof) {
			ep_close(ep, c);
			return -1;
		}
		return 0;
	}
}

static void run_epoll(int lfd)
{
	int fl = fcntl(lfd, F_GETFL);
	fcntl(lfd, F_SETFL, fl | O_NONBLOCK);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		die("epoll_create1: %s", strerror(errno));
	struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.ptr = NULL};
	if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0)
		die("epoll_ctl: %s", strerror(errno));
	static int sig_tag;
	ev.events = EPOLLIN;
	ev.data.ptr = &sig_tag;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, g_sigpipe[0], &ev) < 0)
		die("epoll_ctl: %s", strerror(errno));

	struct epoll_event evs[64];
	for (;;) {
		int n = epoll_wait(ep, evs, 64, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("epoll_wait: %s", strerror(errno));
		}
		for (int i = 0; i < n; i++) {
			if (evs[i].data.ptr == &sig_tag)
				exit(0);
			if (evs[i].data.ptr == NULL) {
				for (;;) {
					int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
					if (fd < 0) {
						if (errno == EINTR || errno == ECONNABORTED)
							continue;
						if (errno != EAGAIN && errno != EWOULDBLOCK)
							fprintf(stderr, "cserver: accept4: %s\n",
								strerror(errno));
						break;
					}
					set_nodelay(fd);
					struct conn *c = calloc(1, sizeof(*c));
					if (!c)
						die("out of memory");
					c->fd = fd;
					struct epoll_event cev = {
						.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
						.data.ptr = c};
					if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev) < 0) {
						close(fd);
						free(c);
					}
				}
				continue;
			}
			struct conn *c = evs[i].data.ptr;
			uint32_t e = evs[i].events;
			if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
				for (;;) {
					buf_reserve(&c->in, READ_CHUNK);
					ssize_t r = read(c->fd, c->in.p + c->in.len,
							 c->in.cap - c->in.len);
					if (r > 0) {
						c->in.len += (size_t)r;
						continue;
					}
					if (r == 0) {
						c->peer_eof = 1;
						break;
					}
					if (errno == EINTR)
						continue;
					if (errno != EAGAIN && errno != EWOULDBLOCK) {
						c->peer_eof = 1;
						c->dead = 1;
					}
					break;
				}
			}
			if (c->dead) {
				ep_close(ep, c);
				continue;
			}
			/* the same c may appear once per epoll_wait batch only */
			ep_progress(ep, c);
		}
	}
}

/* ------------------------------------------------------------------ main */

static void on_signal(int sig)
{
	(void)sig;
	int saved = errno;
	char b = 1;
	if (write(g_sigpipe[1], &b, 1) < 0) {
		/* nothing to do */
	}
	errno = saved;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: cserver --port P [--mode rw|recvsend|vec|epoll] [--portfile F] "
		"[--host ADDR]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	int port = -1;
	const char *portfile = NULL;
	const char *host = "127.0.0.1";
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
			port = atoi(argv[++i]);
		else if (strcmp(argv[i], "--portfile") == 0 && i + 1 < argc)
			portfile = argv[++i];
		else if (strcmp(argv[i], "--host") == 0 && i + 1 < argc)
			host = argv[++i];
		else if (strcmp(argv[i], "--mode") == 0 && i + 1 < argc) {
			const char *m = argv[++i];
			if (strcmp(m, "rw") == 0)
				g_mode = M_RW;
			else if (strcmp(m, "recvsend") == 0)
				g_mode = M_RECVSEND;
			else if (strcmp(m, "vec") == 0)
				g_mode = M_VEC;
			else if (strcmp(m, "epoll") == 0)
				g_mode = M_EPOLL;
			else
				usage();
		} else
			usage();
	}
	if (port < 0 || port > 65535)
		usage();

	for (size_t i = 0; i < sizeof(g_pat); i++)
		g_pat[i] = (char)('a' + i % 26);

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
		die("curl_global_init failed");

	if (pipe2(g_sigpipe, O_CLOEXEC) < 0)
		die("pipe2: %s", strerror(errno));
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		die("socket: %s", strerror(errno));
	int one = 1;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in sin;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &sin.sin_addr) != 1)
		die("bad --host %s", host);
	if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) < 0)
		die("bind %s:%d: %s", host, port, strerror(errno));
	if (listen(lfd, 512) < 0)
		die("listen: %s", strerror(errno));
	socklen_t sl = sizeof(sin);
	if (getsockname(lfd, (struct sockaddr *)&sin, &sl) < 0)
		die("getsockname: %s", strerror(errno));

	if (portfile) {
		char tmp[4096];
		snprintf(tmp, sizeof(tmp), "%s.tmp", portfile);
		FILE *f = fopen(tmp, "w");
		if (!f)
			die("portfile %s: %s", tmp, strerror(errno));
		fprintf(f, "%d\n", ntohs(sin.sin_port));
		if (fclose(f) != 0 || rename(tmp, portfile) != 0)
			die("portfile %s: %s", portfile, strerror(errno));
	}

	if (g_mode == M_EPOLL)
		run_epoll(lfd);
	else
		run_threaded(lfd);
	return 0;
}
