/* test_conn.c - the connection state machine (conn.c) driven directly, as
 * the hooks drive it: bytes the app read (crd_conn_rx) and wrote
 * (crd_conn_tx) on an accepted socket, then its close. Spans are taken off
 * the export queue.
 *
 * The library's constructor (init.c, linked in with the core objects) reads
 * the settings when the binary loads; the constructor below runs before it
 * (priority constructors come first) and makes the exporter leave the queue
 * to us: no exporter, a schedule delay of 10 minutes, and never a full
 * batch (fewer than OTEL_BSP_MAX_EXPORT_BATCH_SIZE spans per test).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "pool.h"
#include "queue.h"
#include "rec.h"
#include "span.h"

__attribute__((constructor(101))) static void test_env(void)
{
	setenv("OTEL_TRACES_EXPORTER", "none", 1);
	setenv("OTEL_BSP_SCHEDULE_DELAY", "600000", 1);
	setenv("OTEL_TRACES_SAMPLER", "always_on", 1);
	unsetenv("OTEL_SDK_DISABLED");
	unsetenv("CRUDDUR_DISABLED");
	unsetenv("LD_PRELOAD");
	unsetenv("AWS_XRAY_DAEMON_ADDRESS");
	unsetenv("ROLLBAR_ACCESS_TOKEN");
	unsetenv("CRUDDUR_CLOUDWATCH_LOG_GROUP");
}

#define MAX_SPANS 16

struct got {
	int n;
	uint16_t status[MAX_SPANS];
	char target[MAX_SPANS][CRD_TARGET_MAX];
};

/* A tracked server connection on one end of a socketpair. */
static struct crd_conn *server_conn(int sv[2])
{
	struct crd_conn *c;

	cr_assert_gt(crd_fdtab_size, 0, "the library did not initialise");
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	crd_conn_accepted(-1, sv[0], NULL, 0);
	c = crd_conn_get(sv[0]);
	cr_assert_not_null(c);
	return c;
}

static void rx(struct crd_conn *c, const char *s)
{
	crd_conn_rx(c, s, strlen(s));
}

static void tx(struct crd_conn *c, const char *s)
{
	crd_conn_tx(c, s, strlen(s));
}

/* Take the spans queued so far. */
static void collect(struct got *g)
{
	struct crd_rec *r;

	memset(g, 0, sizeof(*g));
	while ((r = crd_queue_pop())) {
		cr_assert_lt(g->n, MAX_SPANS);
		g->status[g->n] = r->span.status;
		memcpy(g->target[g->n], r->span.req.target, CRD_TARGET_MAX);
		g->n++;
		crd_pool_put(&crd_rec_pool, r);
	}
}

/* Close the connection (as the close() hook does) and collect. */
static void close_and_collect(int sv[2], struct got *g)
{
	crd_conn_fd_closing(sv[0]);
	close(sv[0]);
	close(sv[1]);
	collect(g);
}

/* CL.TE smuggling attempt: we frame the body as chunked (Transfer-Encoding
 * wins), so "GET /smuggled" looks like a pipelined request; nginx answers
 * 400 with Connection: close and never serves it. One span, not two (the
 * second used to appear at close with no status). */
Test(conn, no_span_for_requests_after_a_closing_response)
{
	int sv[2];
	struct got g;
	struct crd_conn *c = server_conn(sv);

	rx(c, "POST /post HTTP/1.1\r\nHost: x\r\nContent-Length: 44\r\n"
	      "Transfer-Encoding: chunked\r\n\r\n"
	      "0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n");
	tx(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
	close_and_collect(sv, &g);
	cr_assert_eq(g.n, 1, "%d spans", g.n);
	cr_assert_eq(g.status[0], 400);
	cr_assert_str_eq(g.target[0], "/post");
}

/* The same with an HTTP/1.0 answer (closes unless keep-alive), and a
 * request still arriving after the answer. */
Test(conn, http10_answer_closes_too)
{
	int sv[2];
	struct got g;
	struct crd_conn *c = server_conn(sv);

	rx(c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\n");
	tx(c, "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok");
	rx(c, "Host: x\r\n\r\n");
	close_and_collect(sv, &g);
	cr_assert_eq(g.n, 1, "%d spans", g.n);
	cr_assert_str_eq(g.target[0], "/a");
}

/* Answered before its body arrived (413 and close): the span ends with the
 * response, it does not wait for a body the server will not read. */
Test(conn, early_closing_answer_ends_the_span)
{
	int sv[2];
	struct got g;
	struct crd_conn *c = server_conn(sv);

	rx(c, "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nxxxx");
	tx(c, "HTTP/1.1 413 Request Entity Too Large\r\nContent-Length: 0\r\n"
	      "Connection: close\r\n\r\n");
	collect(&g);
	cr_assert_eq(g.n, 1, "%d spans before the close", g.n);
	cr_assert_eq(g.status[0], 413);
	rx(c, "yyyy");
	close_and_collect(sv, &g);
	cr_assert_eq(g.n, 0, "%d more spans at close", g.n);
}

/* Keep-alive answers leave pipelined requests alone. */
Test(conn, keepalive_pipeline_keeps_every_request)
{
	int sv[2];
	struct got g;
	struct crd_conn *c = server_conn(sv);

	rx(c, "GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n"
	      "GET /3 HTTP/1.1\r\nHost: x\r\n\r\n");
	tx(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
	tx(c, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
	close_and_collect(sv, &g);
	cr_assert_eq(g.n, 3, "%d spans", g.n);
	cr_assert_eq(g.status[0], 200);
	cr_assert_eq(g.status[1], 404);
	cr_assert_eq(g.status[2], 0, "never answered: ended at close");
	cr_assert_str_eq(g.target[2], "/3");
}
