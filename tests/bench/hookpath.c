/* hookpath.c - micro-benchmark of cruddur's hot path and of its encoders.
 *
 * Links the library's core objects (like the unit tests) and drives the
 * connection state machine directly, with no socket I/O per request:
 *
 *   keep-alive request  crd_conn_rx(wrk-like request) + crd_conn_tx(nginx-like
 *                       response head) + crd_conn_tx_opaque(body, as nginx's
 *                       sendfile) on one tracked connection; the span is
 *                       finished and pushed on the export queue.
 *   keep-alive, node    same, head + body in one crd_conn_tx (node's writev).
 *   keep-alive, rich    a browser-like request (14 headers, traceparent).
 *   connection          crd_conn_accepted (getsockname: one syscall) + one
 *                       request + crd_conn_fd_closing.
 *   span view           crd_span_view per span (exporter thread work).
 *   OTLP protobuf       crd_otlp_pb_size + crd_otlp_pb_encode, 512-span batch.
 *   OTLP JSON           crd_otlp_json_encode, 512-span batch.
 *   X-Ray               crd_xray_encode (segment documents, datagrams
 *                       handed to a no-op emitter), 512-span batch.
 *   CloudWatch          access lines + PutLogEvents body, 512-span batch
 *                       (libcurl signs it when sent: not measured here).
 *
 * The exporter thread must not consume what we enqueue: the process re-execs
 * itself with OTEL_TRACES_EXPORTER=none and a schedule delay of 10 minutes,
 * and drains the queue itself every 64 requests (crd_queue_pop +
 * crd_pool_put, untimed), so the queue never reaches a batch and the
 * exporter never wakes.
 *
 * Output: one JSON object on stdout. Times: per round, the median of
 * 64-request blocks (robust to preemption), then the median over --rounds.
 * Usage: hookpath [--requests N] [--rounds R] [--profile | --profile-export]
 * --profile runs only N wrk-like keep-alive requests, for
 * `valgrind --tool=callgrind` or `perf record` (instructions per request:
 * callgrind's totals for crd_conn_rx + crd_conn_tx + crd_conn_tx_opaque / N).
 * --profile-export runs N/512 batches of every encoder once (view, OTLP
 * protobuf, X-Ray, CloudWatch), for callgrind's instructions per span of
 * each (under valgrind SHA-256 takes the portable path: valgrind hides the
 * CPU's SHA extensions).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../../export/cw_enc.h"
#include "../../export/otlp_enc.h"
#include "../../export/sink.h"
#include "../../export/xray.h"
#include "../../export/queue.h"
#include "../../export/resource.h"
#include "../../preload/conn.h"
#include "../../preload/pool.h"
#include "../../preload/rec.h"
#include "../../preload/span.h"

#define BLOCK 64    /* requests per timed block (then the queue is drained) */
#define BATCH 512   /* spans per encoded batch: OTEL_BSP_MAX_EXPORT_BATCH_SIZE */
#define MAX_ROUNDS 32

/* What `wrk -c32 http://127.0.0.1:PORT/` sends. */
static const char REQ_WRK[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";

/* A browser behind a proxy, with trace context. */
static const char REQ_RICH[] =
	"GET /api/v1/users/12345/orders?limit=20&offset=40 HTTP/1.1\r\n"
	"Host: shop.example.com\r\n"
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
	"Chrome/124.0.0.0 Safari/537.36\r\n"
	"Accept: application/json, text/plain, */*\r\n"
	"Accept-Language: en-US,en;q=0.9\r\n"
	"Accept-Encoding: gzip, deflate, br\r\n"
	"Referer: https://shop.example.com/account\r\n"
	"Cookie: session=0123456789abcdef0123456789abcdef; theme=dark\r\n"
	"X-Forwarded-For: 203.0.113.7, 10.0.0.1\r\n"
	"X-Forwarded-Proto: https\r\n"
	"traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n"
	"tracestate: congo=t61rcWkgMzE\r\n"
	"Sec-Fetch-Mode: cors\r\n"
	"Connection: keep-alive\r\n"
	"\r\n";

/* nginx 1.22's head for a 615-byte static file (the body goes by sendfile). */
static const char RESP_NGINX_HEAD[] = "HTTP/1.1 200 OK\r\n"
				      "Server: nginx/1.22.1\r\n"
				      "Date: Sat, 22 Nov 2025 02:40:00 GMT\r\n"
				      "Content-Type: text/html\r\n"
				      "Content-Length: 615\r\n"
				      "Last-Modified: Sat, 22 Nov 2025 02:00:00 GMT\r\n"
				      "Connection: keep-alive\r\n"
				      "ETag: \"6921184c-267\"\r\n"
				      "Accept-Ranges: bytes\r\n"
				      "\r\n";
#define NGINX_BODY 615

/* node:http's response to res.end('{"ok":true}\n'), head and body in one
 * write. */
static const char RESP_NODE[] = "HTTP/1.1 200 OK\r\n"
				"Content-Type: application/json\r\n"
				"Date: Sat, 22 Nov 2025 02:40:00 GMT\r\n"
				"Connection: keep-alive\r\n"
				"Keep-Alive: timeout=5\r\n"
				"Content-Length: 12\r\n"
				"\r\n"
				"{\"ok\":true}\n";

static struct crd_rec *kept[BATCH];
static size_t nkept;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Give queued records back to the pool (the exporter's job), keeping the
 * first BATCH ones for the encoder benchmarks. Returns how many. */
static size_t drain(void)
{
	struct crd_rec *r;
	size_t n = 0;

	while ((r = crd_queue_pop())) {
		n++;
		if (nkept < BATCH)
			kept[nkept++] = r;
		else
			crd_pool_put(&crd_rec_pool, r);
	}
	return n;
}

/* Per-block times of the current measurement: the median block is robust to
 * preemption and interrupts (a block is ~64 x 0.5 us), the mean is not. */
static double *blocks, last_mean_ns;
static size_t nblocks, blocks_cap;

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void add_block(uint64_t ns)
{
	if (nblocks == blocks_cap) {
		size_t ncap = blocks_cap ? blocks_cap * 2 : 4096;
		double *nb = realloc(blocks, ncap * sizeof(*nb));
		if (!nb)
			abort();
		blocks = nb;
		blocks_cap = ncap;
	}
	blocks[nblocks++] = (double)ns;
}

static double block_median_ns(void)
{
	return nblocks ? median(blocks, (int)nblocks) / BLOCK : -1;
}

/* A real loopback TCP connection, so that getsockname/getpeername give
 * AF_INET addresses as on a server. Returns the "server" end. */
static int tcp_pair(int *client)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM, 0), s;

	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 4) ||
	    getsockname(l, (struct sockaddr *)&a, &len))
		return -1;
	*client = socket(AF_INET, SOCK_STREAM, 0);
	if (*client < 0 || connect(*client, (struct sockaddr *)&a, sizeof(a)))
		return -1;
	s = accept(l, NULL, NULL);
	close(l);
	return s;
}

static struct sockaddr_in peer_of(int fd)
{
	struct sockaddr_in p;
	socklen_t len = sizeof(p);
	getpeername(fd, (struct sockaddr *)&p, &len);
	return p;
}

enum resp_kind { RESP_NGINX, RESP_NODE_ONE };

static void one_request(struct crd_conn *c, const char *req, size_t reqlen, enum resp_kind k)
{
	crd_conn_rx(c, req, reqlen);
	if (k == RESP_NGINX) {
		crd_conn_tx(c, RESP_NGINX_HEAD, sizeof(RESP_NGINX_HEAD) - 1);
		crd_conn_tx_opaque(c, NGINX_BODY);
	} else {
		crd_conn_tx(c, RESP_NODE, sizeof(RESP_NODE) - 1);
	}
}

static double block_median_ns(void);

/* ns per keep-alive request (median block); -1 when no connection. */
static double bench_keepalive(int fd, const char *req, enum resp_kind k, long requests,
			      long *spans_out)
{
	struct sockaddr_in peer = peer_of(fd);
	struct crd_conn *c;
	uint64_t t = 0;
	long spans = 0;

	size_t reqlen = strlen(req);

	crd_conn_accepted(-1, fd, (struct sockaddr *)&peer, sizeof(peer));
	c = crd_conn_get(fd);
	if (!c)
		return -1;
	nblocks = 0;
	for (long done = 0; done < requests; done += BLOCK) {
		uint64_t t0 = now_ns(), dt;
		for (int i = 0; i < BLOCK; i++)
			one_request(c, req, reqlen, k);
		dt = now_ns() - t0;
		t += dt;
		add_block(dt);
		spans += (long)drain();
	}
	crd_conn_fd_closing(fd);
	spans += (long)drain();
	*spans_out = spans;
	last_mean_ns = (double)t / (double)(nblocks * BLOCK);
	return block_median_ns();
}

/* ns per connection: accept (with the peer address, as nginx passes it) +
 * one request + close. */
static double bench_conn(int fd, long conns, long *spans_out)
{
	struct sockaddr_in peer = peer_of(fd);
	uint64_t t = 0;
	long spans = 0;

	nblocks = 0;
	for (long done = 0; done < conns; done += BLOCK) {
		uint64_t t0 = now_ns(), dt;
		for (int i = 0; i < BLOCK; i++) {
			crd_conn_accepted(-1, fd, (struct sockaddr *)&peer, sizeof(peer));
			one_request(crd_conn_get(fd), REQ_WRK, sizeof(REQ_WRK) - 1, RESP_NGINX);
			crd_conn_fd_closing(fd);
		}
		dt = now_ns() - t0;
		t += dt;
		add_block(dt);
		spans += (long)drain();
	}
	*spans_out = spans;
	last_mean_ns = (double)t / (double)(nblocks * BLOCK);
	return block_median_ns();
}

static int xray_emit(void *arg, const char *d, size_t n)
{
	(void)d;
	*(size_t *)arg += n;
	return 0;
}

/* The X-Ray and CloudWatch sinks' work for one batch, minus the I/O. */
static struct crd_xray_enc xenc;
static size_t xray_bytes, cw_bytes;

static int encode_aws(const struct crd_batch *b)
{
	static struct crd_cw_event ev[BATCH];
	static char lines[BATCH * 512], *body;
	static size_t body_cap;
	size_t at = 0, need;
	ssize_t n;

	if (crd_xray_encode(&xenc, b))
		return -1;
	for (size_t i = 0; i < b->n; i++) {
		n = crd_cw_access_line(lines + at, sizeof(lines) - at, b->spans[i], b->views[i], 0);
		if (n < 0)
			return -1;
		ev[i] = (struct crd_cw_event){.ts_ms = (int64_t)(b->spans[i]->end_ns / 1000000u),
					      .msg = lines + at, .len = (size_t)n};
		crd_cw_fit(&ev[i]);
		at += (size_t)n;
	}
	crd_cw_sort(ev, b->n);
	need = crd_cw_body_bound("bench-group", "bench/stream/1", ev, b->n);
	if (need > body_cap && !(body = realloc(body, body_cap = need)))
		return -1;
	n = crd_cw_put_body(body, body_cap, "bench-group", "bench/stream/1", ev, b->n);
	if (n < 0)
		return -1;
	cw_bytes = (size_t)n;
	return 0;
}

int main(int argc, char **argv)
{
	long requests = 1000000;
	int rounds = 7, fd, client, profile = 0;
	double ka_mean[MAX_ROUNDS], ka[MAX_ROUNDS], ka_node[MAX_ROUNDS], ka_rich[MAX_ROUNDS], conn[MAX_ROUNDS];
	double view[MAX_ROUNDS], pb[MAX_ROUNDS], js[MAX_ROUNDS], aws[MAX_ROUNDS];
	int profile_export = 0;
	static const struct crd_span *sp[BATCH];
	struct crd_batch cb;
	long spans_expected = 0, spans_seen = 0, s;
	static struct crd_span_view views[BATCH];
	const struct crd_span_view *vp[BATCH];
	static struct crd_resource res;
	struct crd_otlp_batch b;
	size_t pb_bytes = 0, json_bytes = 0, json_cap = 4096 + BATCH * 2048;
	uint8_t *pbuf;
	char *jbuf;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--requests") && i + 1 < argc)
			requests = atol(argv[++i]);
		else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
			rounds = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--profile"))
			profile = 1;
		else if (!strcmp(argv[i], "--profile-export"))
			profile_export = 1;
		else {
			fprintf(stderr,
				"usage: %s [--requests N] [--rounds R] [--profile | --profile-export]\n",
				argv[0]);
			return 2;
		}
	}
	if (rounds < 1 || rounds > MAX_ROUNDS || requests < BLOCK)
		return 2;
	/* The configuration is read by the library's constructor: set it up
	 * and start again. */
	if (!getenv("HOOKPATH_REEXEC")) {
		setenv("HOOKPATH_REEXEC", "1", 1);
		setenv("OTEL_TRACES_EXPORTER", "none", 1);
		setenv("OTEL_BSP_SCHEDULE_DELAY", "600000", 1);
		setenv("OTEL_TRACES_SAMPLER", "always_on", 1);
		setenv("OTEL_SERVICE_NAME", "hookpath", 1);
		unsetenv("OTEL_SDK_DISABLED");
		unsetenv("CRUDDUR_DISABLED");
		execv("/proc/self/exe", argv);
		perror("hookpath: re-exec");
		return 1;
	}
	fd = tcp_pair(&client);
	if (fd < 0) {
		perror("hookpath: loopback connection");
		return 1;
	}
	if (!crd_fdtab_size) {
		fprintf(stderr, "hookpath: the library did not initialise\n");
		return 1;
	}

	if (profile) {
		double ns = bench_keepalive(fd, REQ_WRK, RESP_NGINX, requests, &s);
		printf("{\"ns_per_request_keepalive_nginx\": %.1f, \"spans\": %ld}\n", ns, s);
		return 0;
	}
	/* Warm-up (pool pages, caches, branch predictors). */
	bench_keepalive(fd, REQ_WRK, RESP_NGINX, profile_export ? 2 * BATCH : 100000, &s);
	for (int r = 0; r < rounds && !profile_export; r++) {
		ka[r] = bench_keepalive(fd, REQ_WRK, RESP_NGINX, requests, &s);
		ka_mean[r] = last_mean_ns;
		spans_seen += s, spans_expected += (requests + BLOCK - 1) / BLOCK * BLOCK;
		ka_node[r] = bench_keepalive(fd, REQ_WRK, RESP_NODE_ONE, requests, &s);
		spans_seen += s, spans_expected += (requests + BLOCK - 1) / BLOCK * BLOCK;
		ka_rich[r] = bench_keepalive(fd, REQ_RICH, RESP_NGINX, requests / 2, &s);
		spans_seen += s, spans_expected += (requests / 2 + BLOCK - 1) / BLOCK * BLOCK;
		conn[r] = bench_conn(fd, requests / 10, &s);
		spans_seen += s, spans_expected += (requests / 10 + BLOCK - 1) / BLOCK * BLOCK;
	}

	/* Encoders, on real spans from the runs above (wrk-like requests:
	 * the kept records are the warm-up's). */
	if (nkept < BATCH) {
		fprintf(stderr, "hookpath: only %zu spans kept\n", nkept);
		return 1;
	}
	crd_resource_build(&res);
	pbuf = malloc(BATCH * 4096);
	jbuf = malloc(json_cap);
	if (!pbuf || !jbuf)
		return 1;
	for (int i = 0; i < BATCH; i++) {
		vp[i] = &views[i];
		sp[i] = &kept[i]->span;
	}
	b = (struct crd_otlp_batch){.resource = res.list, .scope_name = "cruddur",
				    .scope_version = "bench", .spans = vp, .n = BATCH};
	cb = (struct crd_batch){.resource = &res.list, .spans = sp, .views = vp, .n = BATCH};
	if (crd_xray_enc_init(&xenc, xray_emit, &xray_bytes))
		return 1;
	if (profile_export) {
		/* Each encoder once per batch, as the exporter runs them. */
		for (long k = 0; k < requests / BATCH; k++) {
			for (int i = 0; i < BATCH; i++)
				crd_span_view(&kept[i]->span, &views[i]);
			size_t need = crd_otlp_pb_size(&b);
			if (crd_otlp_pb_encode(&b, pbuf, need) < 0 || encode_aws(&cb))
				return 1;
		}
		printf("{\"batches\": %ld, \"batch\": %d}\n", requests / BATCH, BATCH);
		return 0;
	}
	for (int r = 0; r < rounds; r++) {
		int reps = 20;
		uint64_t t0 = now_ns();
		for (int k = 0; k < reps; k++)
			for (int i = 0; i < BATCH; i++)
				crd_span_view(&kept[i]->span, &views[i]);
		view[r] = (double)(now_ns() - t0) / (reps * BATCH);

		t0 = now_ns();
		for (int k = 0; k < reps; k++) {
			size_t need = crd_otlp_pb_size(&b);
			ssize_t n = crd_otlp_pb_encode(&b, pbuf, need);
			if (n < 0) {
				fprintf(stderr, "hookpath: pb encode failed (%zd)\n", n);
				return 1;
			}
			pb_bytes = (size_t)n;
		}
		pb[r] = (double)(now_ns() - t0) / (reps * BATCH);

		t0 = now_ns();
		for (int k = 0; k < reps; k++) {
			ssize_t n = crd_otlp_json_encode(&b, jbuf, json_cap);
			if (n < 0) {
				fprintf(stderr, "hookpath: json encode failed (%zd)\n", n);
				return 1;
			}
			json_bytes = (size_t)n;
		}
		js[r] = (double)(now_ns() - t0) / (reps * BATCH);

		t0 = now_ns();
		xray_bytes = 0;
		for (int k = 0; k < reps; k++)
			if (encode_aws(&cb)) {
				fprintf(stderr, "hookpath: X-Ray/CloudWatch encode failed\n");
				return 1;
			}
		aws[r] = (double)(now_ns() - t0) / (reps * BATCH);
	}

	printf("{\"rounds\": %d, \"requests_per_round\": %ld,\n"
	       " \"ns_per_request_keepalive_nginx\": %.1f,\n"
	       " \"ns_per_request_keepalive_nginx_mean\": %.1f,\n"
	       " \"ns_per_request_keepalive_node\": %.1f,\n"
	       " \"ns_per_request_keepalive_rich\": %.1f,\n"
	       " \"ns_per_connection\": %.1f,\n"
	       " \"spans_expected\": %ld, \"spans_enqueued\": %ld,\n"
	       " \"us_per_span_view\": %.4f,\n"
	       " \"us_per_span_otlp_protobuf\": %.4f, \"bytes_per_span_otlp_protobuf\": %.1f,\n"
	       " \"us_per_span_otlp_json\": %.4f, \"bytes_per_span_otlp_json\": %.1f,\n"
	       " \"us_per_span_xray_cloudwatch\": %.4f, \"bytes_per_span_xray\": %.1f,"
	       " \"bytes_per_span_cloudwatch\": %.1f,\n"
	       " \"batch\": %d}\n",
	       rounds, requests, median(ka, rounds), median(ka_mean, rounds), median(ka_node, rounds),
	       median(ka_rich, rounds), median(conn, rounds), spans_expected, spans_seen,
	       median(view, rounds) / 1000, median(pb, rounds) / 1000,
	       (double)pb_bytes / BATCH, median(js, rounds) / 1000, (double)json_bytes / BATCH,
	       median(aws, rounds) / 1000, (double)xray_bytes / (20.0 * BATCH),
	       (double)cw_bytes / BATCH, BATCH);
	for (size_t i = 0; i < nkept; i++)
		crd_pool_put(&crd_rec_pool, kept[i]);
	close(client);
	close(fd);
	return 0;
}
