/* test_export_perf.c - the exporter's performance shortcuts (issue #7)
 * give exactly what the plain ways gave:
 *   - X-Ray: subsegments found through the parent-id index land under the
 *     same segments, in the same order, as a scan of the whole batch;
 *   - CloudWatch: the access-line time stamp cached per second is right
 *     across seconds, days and years, milliseconds zero-padded;
 *   - IPv4 addresses formatted by hand read as inet_ntop writes them.
 */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../preload/span.h"
#include "cw_enc.h"
#include "otlp_enc.h"
#include "../export/sink.h"
#include "../export/xray.h"

#define NSPANS 400

static struct crd_span spans[NSPANS];
static struct crd_span_view views[NSPANS];
static const struct crd_span *sp[NSPANS];
static const struct crd_span_view *vp[NSPANS];
static cJSON *docs[NSPANS];
static size_t ndocs;

static int collect(void *arg, const char *d, size_t n)
{
	const char *body = memchr(d, '\n', n);
	(void)arg;
	cr_assert_not_null(body);
	cr_assert(ndocs < NSPANS);
	docs[ndocs] = cJSON_ParseWithLength(body + 1, n - (size_t)(body + 1 - d));
	cr_assert_not_null(docs[ndocs]);
	ndocs++;
	return 0;
}

static void set_id(uint8_t *id, uint64_t v)
{
	memcpy(id, &v, 8);
}

static void id_hex(char out[17], const uint8_t *id)
{
	for (int i = 0; i < 8; i++)
		sprintf(out + 2 * i, "%02x", id[i]);
}

Test(xray_index, same_subsegments_as_a_full_scan)
{
	struct crd_attr res = {.key = "service.name", .type = CRD_ATTR_STR, .s = "svc", .len = 3};
	struct crd_attr_list rl = {&res, 1};
	struct crd_xray_enc e;
	uint64_t seed = 12345;
	size_t nserv = 0, expect_indep = 0;

	/* 100 servers; 300 clients whose parents are random servers, servers
	 * outside the batch, or a server's span id in another trace. */
	for (size_t i = 0; i < NSPANS; i++) {
		struct crd_span *s = &spans[i];
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		memset(s, 0, sizeof(*s));
		s->trace_id[0] = 0x65;
		s->trace_id[15] = 1;
		s->start_ns = 1700000000000000000ull;
		s->end_ns = s->start_ns + 1000;
		s->sampled = 1;
		s->resp_content_length = s->req.content_length = -1;
		strcpy(s->req.method, "GET");
		strcpy(s->req.target, i % 4 ? "http://backend:8080/x" : "/");
		set_id(s->span_id, 1000 + i);
		if (i % 4 == 0) {
			s->kind = CRD_KIND_SERVER;
			nserv++;
			continue;
		}
		s->kind = CRD_KIND_CLIENT;
		s->status = 200;
		uint64_t pick = seed >> 33;
		if (pick % 10 == 0) {
			set_id(s->parent_span_id, 99999); /* parent not in the batch */
			expect_indep++;
		} else {
			set_id(s->parent_span_id, 1000 + (pick % NSPANS) / 4 * 4);
			if (pick % 10 == 1) {
				s->trace_id[15] = 2; /* same parent id, other trace */
				expect_indep++;
			}
		}
	}
	for (size_t i = 0; i < NSPANS; i++) {
		crd_span_view(&spans[i], &views[i]);
		sp[i] = &spans[i];
		vp[i] = &views[i];
	}
	struct crd_batch b = {.resource = &rl, .spans = sp, .views = vp, .n = NSPANS};
	cr_assert_eq(crd_xray_enc_init(&e, collect, NULL), 0);
	cr_assert_eq(crd_xray_encode(&e, &b), 0);
	cr_assert_eq(e.segments, nserv);
	cr_assert_eq(e.independent, expect_indep);
	cr_assert_eq(e.inline_subsegments, NSPANS - nserv - expect_indep);
	/* Each segment: its children by a full scan, in batch order. */
	size_t seg = 0;
	for (size_t i = 0; i < NSPANS; i++) {
		if (spans[i].kind != CRD_KIND_SERVER)
			continue;
		char want[17], got[17];
		const cJSON *d = docs[seg++];
		id_hex(want, spans[i].span_id);
		cr_assert_str_eq(cJSON_GetObjectItem(d, "id")->valuestring, want);
		const cJSON *subs = cJSON_GetObjectItem(d, "subsegments");
		int k = 0;
		for (size_t j = 0; j < NSPANS; j++) {
			const struct crd_span *c = &spans[j];
			if (c->kind != CRD_KIND_CLIENT || memcmp(c->parent_span_id, spans[i].span_id, 8) ||
			    memcmp(c->trace_id, spans[i].trace_id, 16))
				continue;
			cr_assert_not_null(subs, "segment %s lacks subsegments", want);
			const cJSON *sub = cJSON_GetArrayItem(subs, k++);
			cr_assert_not_null(sub);
			id_hex(got, c->span_id);
			cr_assert_str_eq(cJSON_GetObjectItem(sub, "id")->valuestring, got);
		}
		cr_assert_eq(subs ? cJSON_GetArraySize(subs) : 0, k, "segment %s", want);
	}
	crd_xray_enc_destroy(&e);
}

Test(cw_line, time_stamp_cache_across_seconds)
{
	static const struct {
		uint64_t ns;
		const char *ts;
	} v[] = {
	    {1700000000005000000ull, "2023-11-14T22:13:20.005Z"},
	    {1700000000999999999ull, "2023-11-14T22:13:20.999Z"}, /* same second */
	    {1700000001000000000ull, "2023-11-14T22:13:21.000Z"},
	    {1704067199999000000ull, "2023-12-31T23:59:59.999Z"},
	    {1704067200010000000ull, "2024-01-01T00:00:00.010Z"},
	    {1700000000005000000ull, "2023-11-14T22:13:20.005Z"}, /* back again */
	};
	struct crd_span s;
	struct crd_span_view view;
	char buf[4096];

	memset(&s, 0, sizeof(s));
	s.kind = CRD_KIND_SERVER;
	s.status = 200;
	s.resp_content_length = s.req.content_length = -1;
	strcpy(s.req.method, "GET");
	strcpy(s.req.target, "/");
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		s.start_ns = v[i].ns - 1500; /* 1.5 us: rounds to 0.002 ms */
		s.end_ns = v[i].ns;
		crd_span_view(&s, &view);
		cr_assert_gt(crd_cw_access_line(buf, sizeof(buf), &s, &view, 0), 0);
		cr_assert_eq(strncmp(buf, v[i].ts, 24), 0, "%s vs %s", buf, v[i].ts);
		cr_assert_not_null(strstr(buf, " 200 0.002ms trace_id="), "%s", buf);
	}
}

Test(span_view, ipv4_text_like_inet_ntop)
{
	static const uint8_t a[][4] = {{0, 0, 0, 0},	   {127, 0, 0, 1},   {10, 20, 30, 40},
				       {255, 255, 255, 255}, {1, 99, 100, 109}, {192, 168, 0, 250}};
	struct crd_span s;
	struct crd_span_view view;

	for (size_t i = 0; i < sizeof(a) / sizeof(a[0]); i++) {
		char want[INET_ADDRSTRLEN];
		int found = 0;
		for (int mapped = 0; mapped < 2; mapped++) {
			memset(&s, 0, sizeof(s));
			s.kind = CRD_KIND_SERVER;
			s.resp_content_length = s.req.content_length = -1;
			strcpy(s.req.method, "GET");
			strcpy(s.req.target, "/");
			if (mapped) { /* ::ffff:a.b.c.d from a dual-stack listener */
				s.peer.family = AF_INET6;
				s.peer.addr[10] = s.peer.addr[11] = 0xff;
				memcpy(s.peer.addr + 12, a[i], 4);
			} else {
				s.peer.family = AF_INET;
				memcpy(s.peer.addr, a[i], 4);
			}
			inet_ntop(AF_INET, a[i], want, sizeof(want));
			crd_span_view(&s, &view);
			for (size_t k = 0; k < view.nattrs; k++)
				if (!strcmp(view.attrs[k].key, "network.peer.address")) {
					cr_assert_eq(view.attrs[k].len, strlen(want));
					cr_assert_eq(memcmp(view.attrs[k].s, want, strlen(want)), 0,
						     "%s", want);
					found++;
				}
		}
		cr_assert_eq(found, 2);
	}
}
