/* Unit tests: config parsing, trace context, ids, pools, queue, span view. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../export/queue.h"
#include "../../preload/config.h"
#include "../../preload/ids.h"
#include "../../preload/pool.h"
#include "../../preload/rec.h"
#include "../../preload/span.h"
#include "../../preload/tracectx.h"

/* ---- config ---- */

Test(config, bool_is_true_only_for_true)
{
	cr_assert(crd_parse_bool("true"));
	cr_assert(crd_parse_bool("TRUE"));
	cr_assert(crd_parse_bool("True"));
	cr_assert(!crd_parse_bool("1"));
	cr_assert(!crd_parse_bool("yes"));
	cr_assert(!crd_parse_bool(""));
	cr_assert(!crd_parse_bool(NULL));
}

Test(config, uint_parsing)
{
	long v = -1;
	cr_assert_eq(crd_parse_uint("5000", 100000, &v), 0);
	cr_assert_eq(v, 5000);
	cr_assert_eq(crd_parse_uint("0", 10, &v), 0);
	cr_assert_eq(v, 0);
	cr_assert_eq(crd_parse_uint("-1", 10, &v), -EINVAL);
	cr_assert_eq(crd_parse_uint("12ms", 100, &v), -EINVAL);
	cr_assert_eq(crd_parse_uint("", 100, &v), -EINVAL);
	cr_assert_eq(crd_parse_uint("101", 100, &v), -ERANGE);
	cr_assert_eq(crd_parse_uint("99999999999999999999999", 100, &v), -ERANGE);
}

Test(config, percent_decode)
{
	char a[] = "abc%20d%2Ce", b[] = "bad%2", c[] = "bad%zz", d[] = "plain";
	cr_assert_eq(crd_percent_decode(a), 0);
	cr_assert_str_eq(a, "abc d,e");
	cr_assert_eq(crd_percent_decode(b), -EINVAL);
	cr_assert_eq(crd_percent_decode(c), -EINVAL);
	cr_assert_eq(crd_percent_decode(d), 0);
	cr_assert_str_eq(d, "plain");
}

/* The parsed keys and values are the caller's (make test-asan checks leaks). */
static void free_kv(struct crd_kv *kv, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(kv[i].key);
		free(kv[i].value);
	}
}

Test(config, kv_list)
{
	struct crd_kv kv[4];
	size_t n = 0;
	int rc = crd_parse_kv_list(" x-honeycomb-team = abc%20d ,x-b=2,empty=", kv, 4, &n);
	cr_assert_eq(rc, 3);
	cr_assert_eq(n, 3);
	cr_assert_str_eq(kv[0].key, "x-honeycomb-team");
	cr_assert_str_eq(kv[0].value, "abc d");
	cr_assert_str_eq(kv[1].key, "x-b");
	cr_assert_str_eq(kv[1].value, "2");
	cr_assert_str_eq(kv[2].value, "");
	free_kv(kv, n);
	/* Bad entries are skipped and reported, good ones kept. */
	rc = crd_parse_kv_list("novalue,a=1,=x,b=%zz,c=3", kv, 4, &n);
	cr_assert_eq(rc, -EINVAL);
	cr_assert_eq(n, 2);
	cr_assert_str_eq(kv[0].key, "a");
	cr_assert_str_eq(kv[1].key, "c");
	free_kv(kv, n);
	/* Capacity is respected. */
	rc = crd_parse_kv_list("a=1,b=2,c=3", kv, 2, &n);
	cr_assert_eq(n, 2);
	cr_assert_eq(rc, -EINVAL);
	free_kv(kv, n);
}

/* ---- trace context ---- */

Test(tracectx, traceparent_valid)
{
	struct crd_tracectx tc;
	char out[56];
	const char *tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

	cr_assert_eq(crd_traceparent_parse(tp, &tc), 0);
	cr_assert_eq(tc.trace_id[0], 0x4b);
	cr_assert_eq(tc.trace_id[15], 0x36);
	cr_assert_eq(tc.span_id[0], 0x00);
	cr_assert_eq(tc.span_id[7], 0xb7);
	cr_assert_eq(tc.sampled, 1);
	crd_traceparent_format(out, tc.trace_id, tc.span_id, 1);
	cr_assert_str_eq(out, tp);
	cr_assert_eq(crd_traceparent_parse(
			     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", &tc),
		     0);
	cr_assert_eq(tc.sampled, 0);
	/* A future version may carry more fields after a '-'. */
	cr_assert_eq(crd_traceparent_parse(
			     "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", &tc),
		     0);
}

Test(tracectx, traceparent_invalid)
{
	struct crd_tracectx tc;
	static const char *const bad[] = {
		"",
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01", /* uppercase */
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01", /* zero trace */
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", /* zero span */
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", /* version ff */
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", /* 00 too long */
		"00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",  /* short id */
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",
		"00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
		"00-4bf92f3577b34da6a3ce929d0e0e47zz-00f067aa0ba902b7-01",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(crd_traceparent_parse(bad[i], &tc), -EINVAL, "accepted: %s", bad[i]);
}

Test(tracectx, xamzn)
{
	struct crd_tracectx tc;

	cr_assert_eq(crd_xamzn_parse("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;"
				     "Sampled=1;Lineage=a87bd80c:1",
				     &tc),
		     0);
	cr_assert_eq(tc.trace_id[0], 0x57);
	cr_assert_eq(tc.trace_id[3], 0x88);
	cr_assert_eq(tc.trace_id[4], 0xbd);
	cr_assert_eq(tc.trace_id[15], 0x93);
	cr_assert_eq(tc.span_id[0], 0x53);
	cr_assert_eq(tc.sampled, 1);
	cr_assert_eq(crd_xamzn_parse("Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=?", &tc), 0);
	cr_assert_eq(tc.sampled, -1);
	cr_assert(crd_all_zero_bytes(tc.span_id, 8));
	cr_assert_eq(crd_xamzn_parse("Parent=53995c3f42cd8ad8;Sampled=1", &tc), -EINVAL);
	cr_assert_eq(crd_xamzn_parse("Root=1-5759e988-bd862e3fe1be46a99427279", &tc), -EINVAL);
	cr_assert_eq(crd_xamzn_parse("Root=1-5759e988-bd862e3fe1be46a99427279x", &tc), -EINVAL);
}

Test(tracectx, ratio)
{
	uint8_t lo[16] = {0}, hi[16];
	memset(hi, 0xff, 16);
	cr_assert(crd_ratio_sampled(lo, 0.5));
	cr_assert(!crd_ratio_sampled(hi, 0.5));
	cr_assert(!crd_ratio_sampled(lo, 0.0));
	cr_assert(crd_ratio_sampled(hi, 1.0));
	/* Over many random ids the rate is close to the ratio. */
	int yes = 0;
	for (int i = 0; i < 20000; i++) {
		uint8_t id[16];
		crd_new_trace_id(id);
		yes += crd_ratio_sampled(id, 0.25);
	}
	cr_assert(yes > 4500 && yes < 5500, "sampled %d of 20000 at 0.25", yes);
}

/* ---- ids ---- */

Test(ids, trace_id_starts_with_epoch_seconds)
{
	uint8_t id[16];
	uint32_t now = (uint32_t)time(NULL), secs;

	crd_new_trace_id(id);
	secs = (uint32_t)id[0] << 24 | (uint32_t)id[1] << 16 | (uint32_t)id[2] << 8 | id[3];
	cr_assert(secs >= now - 2 && secs <= now + 2, "secs %u now %u", secs, now);
	cr_assert(!crd_all_zero_bytes(id + 4, 12));
}

Test(ids, span_ids_unique_and_nonzero)
{
	enum { N = 4096 };
	static uint64_t seen[N];
	for (int i = 0; i < N; i++) {
		uint8_t id[8];
		crd_new_span_id(id);
		cr_assert(!crd_all_zero_bytes(id, 8));
		memcpy(&seen[i], id, 8);
		for (int j = 0; j < i; j++)
			cr_assert_neq(seen[j], seen[i]);
	}
}

Test(ids, fork_child_does_not_repeat_parent)
{
	int pfd[2];
	uint64_t parent_next, child_next = 0;
	pid_t pid;

	cr_assert_eq(pipe(pfd), 0);
	(void)crd_rand64(); /* seeded in the parent */
	pid = fork();
	if (pid == 0) {
		crd_ids_after_fork();
		uint64_t v = crd_rand64();
		_exit(write(pfd[1], &v, sizeof(v)) == sizeof(v) ? 0 : 1);
	}
	parent_next = crd_rand64();
	cr_assert_eq(read(pfd[0], &child_next, sizeof(child_next)), (ssize_t)sizeof(child_next));
	waitpid(pid, NULL, 0);
	cr_assert_neq(parent_next, child_next);
}

/* ---- pool and queue ---- */

struct obj {
	uint32_t link;
	uint32_t payload;
};

Test(pool, get_put_and_exhaustion)
{
	struct crd_pool p;
	struct obj *o[8];

	cr_assert_eq(crd_pool_init(&p, sizeof(struct obj), 8), 0);
	for (int i = 0; i < 8; i++) {
		o[i] = crd_pool_get(&p);
		cr_assert_not_null(o[i]);
		o[i]->payload = (uint32_t)i;
	}
	cr_assert_null(crd_pool_get(&p));
	cr_assert_eq(p.in_use, 8);
	crd_pool_put(&p, o[3]);
	crd_pool_put(&p, o[5]);
	/* LIFO reuse keeps the hot set small. */
	cr_assert_eq(crd_pool_get(&p), o[5]);
	cr_assert_eq(crd_pool_get(&p), o[3]);
	cr_assert_null(crd_pool_get(&p));
	cr_assert_eq(crd_pool_index(&p, o[6]), 6);
	cr_assert_eq(crd_pool_at(&p, 6), o[6]);
}

Test(queue, fifo_full_and_len)
{
	/* The constructor set the record pool and queue up from defaults
	 * (OTEL_BSP_MAX_QUEUE_SIZE=2048). */
	struct crd_rec *r[3];
	for (int i = 0; i < 3; i++) {
		r[i] = crd_pool_get(&crd_rec_pool);
		cr_assert_not_null(r[i]);
		r[i]->span.status = (uint16_t)(200 + i);
		cr_assert_eq(crd_queue_push(r[i]), 0);
	}
	cr_assert_eq(crd_queue_len(), 3);
	for (int i = 0; i < 3; i++) {
		struct crd_rec *x = crd_queue_pop();
		cr_assert_eq(x, r[i]);
		cr_assert_eq(x->span.status, 200 + i);
		crd_pool_put(&crd_rec_pool, x);
	}
	cr_assert_null(crd_queue_pop());
	cr_assert_eq(crd_queue_len(), 0);

	/* Fill to capacity: the next push fails and the caller keeps it. */
	int pushed = 0;
	struct crd_rec *one = crd_pool_get(&crd_rec_pool);
	while (crd_queue_push(one) == 0)
		pushed++;
	cr_assert_eq(pushed, 2048);
	cr_assert_eq(crd_queue_push(one), -ENOSPC);
	while (crd_queue_pop())
		;
	crd_pool_put(&crd_rec_pool, one);
}

/* ---- span view ---- */

static const struct crd_attr *attr(const struct crd_span_view *v, const char *key)
{
	for (size_t i = 0; i < v->nattrs; i++)
		if (!strcmp(v->attrs[i].key, key))
			return &v->attrs[i];
	return NULL;
}

static void assert_str(const struct crd_span_view *v, const char *key, const char *want)
{
	const struct crd_attr *a = attr(v, key);
	cr_assert_not_null(a, "missing %s", key);
	cr_assert_eq(a->type, CRD_ATTR_STR);
	cr_assert_eq(a->len, strlen(want), "%s: len %zu want '%s'", key, a->len, want);
	cr_assert(!memcmp(a->s, want, a->len), "%s: got '%.*s' want '%s'", key, (int)a->len,
		  a->s, want);
}

static void assert_int(const struct crd_span_view *v, const char *key, int64_t want)
{
	const struct crd_attr *a = attr(v, key);
	cr_assert_not_null(a, "missing %s", key);
	cr_assert_eq(a->type, CRD_ATTR_INT);
	cr_assert_eq(a->i, want, "%s: %lld want %lld", key, (long long)a->i, (long long)want);
}

static void base_span(struct crd_span *s)
{
	memset(s, 0, sizeof(*s));
	s->kind = CRD_KIND_SERVER;
	s->sampled = 1;
	s->start_ns = 1000;
	s->end_ns = 2000;
	s->peer.family = AF_INET;
	s->peer.port = 51000;
	inet_pton(AF_INET, "10.1.2.3", s->peer.addr);
	s->local.family = AF_INET;
	s->local.port = 8080;
	inet_pton(AF_INET, "127.0.0.1", s->local.addr);
	strcpy(s->req.method, "GET");
	strcpy(s->req.target, "/a/b?x=1&y=2");
	strcpy(s->req.host, "example.com:8443");
	strcpy(s->req.user_agent, "curl/8");
	s->req.version_minor = 1;
	s->req.content_length = -1;
	s->status = 200;
	s->resp_body_size = 6;
}

Test(span, server_attributes)
{
	struct crd_span s;
	struct crd_span_view v;

	base_span(&s);
	crd_span_view(&s, &v);
	cr_assert_str_eq(v.name, "GET");
	cr_assert_eq(v.kind, CRD_KIND_SERVER);
	cr_assert_null(v.parent_span_id);
	cr_assert_eq(v.flags, 0x101);
	cr_assert_eq(v.status_code, CRD_STATUS_UNSET);
	assert_str(&v, "http.request.method", "GET");
	assert_str(&v, "url.path", "/a/b");
	assert_str(&v, "url.query", "x=1&y=2");
	assert_str(&v, "url.scheme", "http");
	assert_str(&v, "server.address", "example.com");
	assert_int(&v, "server.port", 8443);
	assert_str(&v, "client.address", "10.1.2.3");
	assert_str(&v, "network.peer.address", "10.1.2.3");
	assert_int(&v, "network.peer.port", 51000);
	assert_str(&v, "network.protocol.version", "1.1");
	assert_str(&v, "user_agent.original", "curl/8");
	assert_int(&v, "http.response.status_code", 200);
	assert_int(&v, "http.response.body.size", 6);
	cr_assert_null(attr(&v, "error.type"));
	cr_assert_null(attr(&v, "http.request.body.size"));
}

Test(span, error_other_method_xff_and_no_host)
{
	struct crd_span s;
	struct crd_span_view v;

	base_span(&s);
	strcpy(s.req.method, "FOO");
	strcpy(s.req.target, "http://proxy.example/p?");
	s.req.host[0] = 0;
	strcpy(s.req.xff, "203.0.113.9");
	s.req.version_minor = 0;
	s.status = 503;
	s.parent_remote = 1;
	s.parent_span_id[7] = 1;
	crd_span_view(&s, &v);
	cr_assert_str_eq(v.name, "HTTP");
	assert_str(&v, "http.request.method", "_OTHER");
	assert_str(&v, "http.request.method_original", "FOO");
	assert_str(&v, "url.path", "/p");
	cr_assert_null(attr(&v, "url.query"));
	assert_str(&v, "server.address", "127.0.0.1");
	assert_int(&v, "server.port", 8080);
	assert_str(&v, "client.address", "203.0.113.9");
	assert_str(&v, "network.peer.address", "10.1.2.3");
	assert_str(&v, "network.protocol.version", "1.0");
	assert_str(&v, "error.type", "503");
	cr_assert_eq(v.status_code, CRD_STATUS_ERROR);
	cr_assert_not_null(v.parent_span_id);
	cr_assert_eq(v.flags, 0x301);
}

Test(span, ipv6_host_and_mapped_peer)
{
	struct crd_span s;
	struct crd_span_view v;

	base_span(&s);
	strcpy(s.req.host, "[::1]:9000");
	s.peer.family = AF_INET6;
	memset(s.peer.addr, 0, 16);
	s.peer.addr[10] = s.peer.addr[11] = 0xff;
	s.peer.addr[12] = 192;
	s.peer.addr[13] = 0;
	s.peer.addr[14] = 2;
	s.peer.addr[15] = 1;
	crd_span_view(&s, &v);
	assert_str(&v, "server.address", "::1");
	assert_int(&v, "server.port", 9000);
	assert_str(&v, "network.peer.address", "192.0.2.1");
}
