/* otlp_count.c - a fast OTLP/HTTP stand-in that counts the spans it gets.
 *
 * For `make bench`: the measured servers export to it at full rate, so it
 * must cost about as little as an nginx answering `{}` would, yet report
 * exact span counts. One thread, epoll, keep-alive.
 *
 *   POST <any path>   body (Content-Length or chunked; Content-Encoding
 *                     identity only) is an ExportTraceServiceRequest:
 *                     application/x-protobuf -> spans counted by walking
 *                     resource_spans(1) > scope_spans(2) > spans(2);
 *                     application/json -> occurrences of "spanId":
 *                     Answer: 200, empty body (an empty
 *                     ExportTraceServiceResponse) or `{}` for JSON.
 *   GET /stats        {"requests":N,"spans":N,"bytes":N,"bad":N,
 *                      "udp_datagrams":N,"udp_bytes":N,
 *                      "paths":{"TAG":{"requests":N,"spans":N},...}}
 *                     where TAG is the first segment of the POST's path when
 *                     it has more than one ("/nginx-shim/v1/traces": one
 *                     OTEL_EXPORTER_OTLP_ENDPOINT per measured server).
 *   anything else     404
 * UDP (the X-Ray daemon's port, with --udp): every datagram is counted (the
 * X-Ray SDKs send one segment document per datagram); an 8 MiB receive
 * buffer and recvmmsg keep up with the exporters' bursts.
 *
 * Usage: otlp_count [--port P] [--udp] [--portfile F]   (port 0: ephemeral)
 * The port file gets "TCP_PORT UDP_PORT\n" (UDP_PORT 0 without --udp).
 * Prints nothing; exits on SIGTERM/SIGINT.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

struct conn {
	int fd;
	char *buf;
	size_t len, cap;
};

static uint64_t n_requests, n_spans, n_bytes, n_bad, n_udp, n_udp_bytes;

#define MAX_TAGS 64
static struct tag {
	char name[64];
	uint64_t requests, spans;
} tags[MAX_TAGS];
static int ntags;

/* Count a POST to path under its first segment (when the path has more). */
static void count_tag(const char *req_line, uint64_t spans)
{
	const char *p = strchr(req_line, ' '), *end, *slash;
	size_t n;

	if (!p || p[1] != '/')
		return;
	p += 2;
	end = strpbrk(p, " ?\r");
	slash = strchr(p, '/');
	if (!end || !slash || slash > end)
		return;
	n = (size_t)(slash - p);
	if (!n || n >= sizeof(tags[0].name))
		return;
	for (int i = 0; i < ntags; i++)
		if (strlen(tags[i].name) == n && !memcmp(tags[i].name, p, n)) {
			tags[i].requests++;
			tags[i].spans += spans;
			return;
		}
	if (ntags == MAX_TAGS)
		return;
	memcpy(tags[ntags].name, p, n);
	tags[ntags].name[n] = 0;
	tags[ntags].requests = 1;
	tags[ntags].spans = spans;
	ntags++;
}
static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* Protobuf varint at *p (< end); 0 on success. */
static int varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	uint64_t r = 0;
	for (int shift = 0; shift < 64 && *p < end; shift += 7) {
		uint8_t b = *(*p)++;
		r |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = r;
			return 0;
		}
	}
	return -1;
}

/* Walk one message; for each length-delimited field `want`, call down (or
 * count it at the last level). Returns the count or -1 on malformed input. */
static long walk(const uint8_t *p, const uint8_t *end, const int *path, int depth)
{
	long count = 0;

	while (p < end) {
		uint64_t key, len;
		if (varint(&p, end, &key))
			return -1;
		switch (key & 7) {
		case 0:
			if (varint(&p, end, &len))
				return -1;
			break;
		case 1:
			p += 8;
			break;
		case 5:
			p += 4;
			break;
		case 2:
			if (varint(&p, end, &len) || len > (uint64_t)(end - p))
				return -1;
			if ((int)(key >> 3) == path[0]) {
				if (depth == 1) {
					count++;
				} else {
					long c = walk(p, p + len, path + 1, depth - 1);
					if (c < 0)
						return -1;
					count += c;
				}
			}
			p += len;
			break;
		default:
			return -1;
		}
		if (p > end)
			return -1;
	}
	return count;
}

static long count_pb(const char *body, size_t n)
{
	static const int path[] = {1, 2, 2}; /* resource_spans, scope_spans, spans */
	return walk((const uint8_t *)body, (const uint8_t *)body + n, path, 3);
}

static long count_json(const char *body, size_t n)
{
	static const char key[] = "\"spanId\":";
	long c = 0;
	const char *p = body, *end = body + n;

	while ((p = memmem(p, (size_t)(end - p), key, sizeof(key) - 1))) {
		c++;
		p += sizeof(key) - 1;
	}
	return c;
}

static void send_all(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t w = write(fd, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return; /* the peer will notice */
		s += w;
		n -= (size_t)w;
	}
}

static void answer(int fd, int code, const char *ctype, const char *body)
{
	char head[256];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n\r\n", code,
			 code == 200 ? "OK" : code == 404 ? "Not Found" : "Bad Request", ctype,
			 strlen(body));
	send_all(fd, head, (size_t)n);
	send_all(fd, body, strlen(body));
}

/* Header value (trimmed) into out, or "" when absent. */
static void header(const char *head, size_t hlen, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name);
	const char *p = head, *end = head + hlen;

	out[0] = 0;
	while (p < end) {
		const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
		if (!eol)
			eol = end;
		if ((size_t)(eol - p) > nl && p[nl] == ':' && !strncasecmp(p, name, nl)) {
			const char *v = p + nl + 1;
			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			size_t k = (size_t)(eol - v);
			while (k && (v[k - 1] == ' ' || v[k - 1] == '\t'))
				k--;
			if (k >= cap)
				k = cap - 1;
			memcpy(out, v, k);
			out[k] = 0;
			return;
		}
		p = eol + 2;
	}
}

/* Decode a chunked body in place. Returns: >0 bytes consumed from b (body
 * complete, decoded length in *dlen), 0 need more, -1 malformed. */
static long dechunk(char *b, size_t n, size_t *dlen)
{
	size_t in = 0, out = 0;

	for (;;) {
		char *eol = memmem(b + in, n - in, "\r\n", 2);
		if (!eol)
			return 0;
		char *e;
		unsigned long sz = strtoul(b + in, &e, 16);
		if (e == b + in)
			return -1;
		in = (size_t)(eol - b) + 2;
		if (sz == 0) {
			/* trailers until an empty line */
			for (;;) {
				char *t = memmem(b + in, n - in, "\r\n", 2);
				if (!t)
					return 0;
				if (t == b + in) {
					*dlen = out;
					return (long)(in + 2);
				}
				in = (size_t)(t - b) + 2;
			}
		}
		if (n - in < sz + 2)
			return 0;
		memmove(b + out, b + in, sz);
		out += sz;
		in += sz + 2;
	}
}

/* Handle every complete request in c->buf. 0, or -1 to close. */
static int process(struct conn *c)
{
	for (;;) {
		char *hend = memmem(c->buf, c->len, "\r\n\r\n", 4);
		char cl[32], te[32], ce[32], ct[64];
		size_t hlen, body_len, total;
		char *body;

		if (!hend)
			return c->len > 65536 ? -1 : 0;
		hlen = (size_t)(hend - c->buf) + 4;
		header(c->buf, hlen - 2, "Content-Length", cl, sizeof(cl));
		header(c->buf, hlen - 2, "Transfer-Encoding", te, sizeof(te));
		header(c->buf, hlen - 2, "Content-Encoding", ce, sizeof(ce));
		header(c->buf, hlen - 2, "Content-Type", ct, sizeof(ct));
		body = c->buf + hlen;
		if (!strcasecmp(te, "chunked")) {
			/* Decoding in place shifts the rest: copy to keep the
			 * next pipelined request intact. */
			size_t avail = c->len - hlen, dlen = 0;
			char *tmp = malloc(avail ? avail : 1);
			if (!tmp)
				return -1;
			memcpy(tmp, body, avail);
			long used = dechunk(tmp, avail, &dlen);
			if (used <= 0) {
				free(tmp);
				if (used < 0)
					return -1;
				return 0;
			}
			memcpy(body, tmp, dlen);
			free(tmp);
			body_len = dlen;
			total = hlen + (size_t)used;
		} else {
			body_len = cl[0] ? strtoul(cl, NULL, 10) : 0;
			total = hlen + body_len;
			if (c->len < total)
				return 0;
		}

		if (!strncmp(c->buf, "POST ", 5)) {
			long n = -1;
			int json = !strncasecmp(ct, "application/json", 16);
			n_requests++;
			n_bytes += body_len;
			if (ce[0] && strcasecmp(ce, "identity"))
				n = -1; /* compressed: set OTEL_EXPORTER_OTLP_COMPRESSION=none */
			else if (json)
				n = count_json(body, body_len);
			else
				n = count_pb(body, body_len);
			if (n < 0) {
				n_bad++;
				answer(c->fd, 400, "text/plain", "cannot count spans\n");
			} else {
				n_spans += (uint64_t)n;
				count_tag(c->buf, (uint64_t)n);
				if (json)
					answer(c->fd, 200, "application/json", "{}");
				else
					answer(c->fd, 200, "application/x-protobuf", "");
			}
		} else if (!strncmp(c->buf, "GET /stats ", 11)) {
			char s[256 + MAX_TAGS * 128];
			int k = snprintf(s, sizeof(s),
					 "{\"requests\":%llu,\"spans\":%llu,\"bytes\":%llu,\"bad\":%llu,"
					 "\"udp_datagrams\":%llu,\"udp_bytes\":%llu,\"paths\":{",
					 (unsigned long long)n_requests, (unsigned long long)n_spans,
					 (unsigned long long)n_bytes, (unsigned long long)n_bad,
					 (unsigned long long)n_udp, (unsigned long long)n_udp_bytes);
			for (int i = 0; i < ntags; i++)
				k += snprintf(s + k, sizeof(s) - (size_t)k,
					      "%s\"%s\":{\"requests\":%llu,\"spans\":%llu}", i ? "," : "",
					      tags[i].name, (unsigned long long)tags[i].requests,
					      (unsigned long long)tags[i].spans);
			snprintf(s + k, sizeof(s) - (size_t)k, "}}\n");
			answer(c->fd, 200, "application/json", s);
		} else {
			answer(c->fd, 404, "text/plain", "not found\n");
		}
		memmove(c->buf, c->buf + total, c->len - total);
		c->len -= total;
	}
}

/* Count every datagram waiting on u. */
static void drain_udp(int u)
{
	enum { N = 64 };
	static char bufs[N][65536];
	struct mmsghdr msgs[N];
	struct iovec iov[N];

	for (;;) {
		for (int i = 0; i < N; i++) {
			iov[i] = (struct iovec){bufs[i], sizeof(bufs[i])};
			msgs[i] = (struct mmsghdr){.msg_hdr = {.msg_iov = &iov[i], .msg_iovlen = 1}};
		}
		int n = recvmmsg(u, msgs, N, MSG_DONTWAIT, NULL);
		if (n <= 0)
			return;
		for (int i = 0; i < n; i++) {
			n_udp++;
			n_udp_bytes += msgs[i].msg_len;
		}
	}
}

static int udp_socket(int *port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	int big = 8 << 20;
	int u = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (u < 0)
		return -1;
	/* FORCE works as root, past net.core.rmem_max; else the plain one. */
	if (setsockopt(u, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big)))
		setsockopt(u, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	if (bind(u, (struct sockaddr *)&a, sizeof(a)) ||
	    getsockname(u, (struct sockaddr *)&a, &alen))
		return -1;
	*port = ntohs(a.sin_port);
	return u;
}

int main(int argc, char **argv)
{
	int port = 0, l, ep, one = 1, want_udp = 0, u = -1, uport = 0;
	const char *portfile = NULL;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	struct epoll_event ev, evs[64];

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--port") && i + 1 < argc)
			port = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--portfile") && i + 1 < argc)
			portfile = argv[++i];
		else if (!strcmp(argv[i], "--udp"))
			want_udp = 1;
		else {
			fprintf(stderr, "usage: %s [--port P] [--udp] [--portfile F]\n", argv[0]);
			return 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	a.sin_port = htons((uint16_t)port);
	l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 128) ||
	    getsockname(l, (struct sockaddr *)&a, &alen)) {
		perror("otlp_count: listen");
		return 1;
	}
	if (want_udp && (u = udp_socket(&uport)) < 0) {
		perror("otlp_count: udp");
		return 1;
	}
	if (portfile) {
		char tmp[4096];
		snprintf(tmp, sizeof(tmp), "%s.tmp", portfile);
		FILE *f = fopen(tmp, "w");
		if (!f || fprintf(f, "%d %d\n", ntohs(a.sin_port), uport) < 0 || fclose(f) ||
		    rename(tmp, portfile)) {
			perror("otlp_count: portfile");
			return 1;
		}
	}
	ep = epoll_create1(EPOLL_CLOEXEC);
	ev = (struct epoll_event){.events = EPOLLIN, .data.ptr = NULL};
	epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev);
	static struct conn udp_mark; /* data.ptr of the UDP socket */
	if (u >= 0) {
		ev = (struct epoll_event){.events = EPOLLIN, .data.ptr = &udp_mark};
		epoll_ctl(ep, EPOLL_CTL_ADD, u, &ev);
	}
	while (!stop) {
		int n = epoll_wait(ep, evs, 64, 500);
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			if (c == &udp_mark) {
				drain_udp(u);
				continue;
			}
			if (!c) {
				int fd;
				while ((fd = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
					setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
					c = calloc(1, sizeof(*c));
					c->fd = fd;
					ev = (struct epoll_event){.events = EPOLLIN, .data.ptr = c};
					epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
				}
				continue;
			}
			int closeit = 0;
			for (;;) {
				if (c->cap - c->len < 65536) {
					size_t ncap = c->cap ? c->cap * 2 : 262144;
					char *nb = realloc(c->buf, ncap);
					if (!nb) {
						closeit = 1;
						break;
					}
					c->buf = nb;
					c->cap = ncap;
				}
				ssize_t r = read(c->fd, c->buf + c->len, c->cap - c->len);
				if (r > 0) {
					c->len += (size_t)r;
					continue;
				}
				if (r < 0 && errno == EINTR)
					continue;
				if (r == 0 || errno != EAGAIN)
					closeit = 1;
				break;
			}
			/* A blocking answer is fine: answers are tiny. */
			if (!closeit && process(c))
				closeit = 1;
			if (closeit) {
				close(c->fd);
				free(c->buf);
				free(c);
			}
		}
	}
	return 0;
}
