/* Unit tests: curl_easy_perform spans and header-list handling, against a
 * fake libcurl installed in the real-symbol table. */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "../../export/queue.h"
#include "../../preload/curl_span.h"
#include "../../preload/init.h"
#include "../../preload/real.h"
#include "../../preload/rec.h"
#include "../../preload/tracectx.h"

/* ---- the fake libcurl ---- */

struct fake_handle {
	struct curl_slist *list; /* CURLOPT_HTTPHEADER as the fake holds it */
	char seen[8][160];       /* the list at perform time */
	int nseen, performs;
	CURLcode rc;
	long status;
};

static int slist_frees, setopt_calls;

static struct curl_slist *fake_append(struct curl_slist *l, const char *s)
{
	struct curl_slist *n = calloc(1, sizeof(*n)), *t = l;
	n->data = strdup(s);
	if (!l)
		return n;
	while (t->next)
		t = t->next;
	t->next = n;
	return l;
}

static void fake_free_all(struct curl_slist *l)
{
	while (l) {
		struct curl_slist *n = l->next;
		free(l->data);
		free(l);
		l = n;
		slist_frees++;
	}
}

static CURLcode fake_setopt(CURL *h, CURLoption opt, ...)
{
	struct fake_handle *f = (struct fake_handle *)h;
	va_list ap;
	va_start(ap, opt);
	if (opt == CURLOPT_HTTPHEADER)
		f->list = va_arg(ap, struct curl_slist *);
	va_end(ap);
	setopt_calls++;
	return CURLE_OK;
}

static CURLcode fake_perform(CURL *h)
{
	struct fake_handle *f = (struct fake_handle *)h;
	f->nseen = 0;
	for (struct curl_slist *l = f->list; l && f->nseen < 8; l = l->next)
		snprintf(f->seen[f->nseen++], sizeof(f->seen[0]), "%s", l->data);
	f->performs++;
	return f->rc;
}

static CURLcode fake_getinfo(CURL *h, CURLINFO info, ...)
{
	struct fake_handle *f = (struct fake_handle *)h;
	va_list ap;
	va_start(ap, info);
	switch (info) {
	case CURLINFO_EFFECTIVE_URL:
		*va_arg(ap, char **) = "https://u:p@api.example:8443/v1/x?api_key=k&n=1";
		break;
	case CURLINFO_EFFECTIVE_METHOD:
		*va_arg(ap, char **) = "POST";
		break;
	case CURLINFO_RESPONSE_CODE:
		*va_arg(ap, long *) = f->status;
		break;
	case CURLINFO_PRIMARY_IP:
		*va_arg(ap, char **) = "192.0.2.7";
		break;
	case CURLINFO_PRIMARY_PORT:
		*va_arg(ap, long *) = 8443;
		break;
	case CURLINFO_HTTP_VERSION:
		*va_arg(ap, long *) = CURL_HTTP_VERSION_2_0;
		break;
	default:
		va_end(ap);
		return CURLE_UNKNOWN_OPTION;
	}
	va_end(ap);
	return CURLE_OK;
}

static void install_fakes(void)
{
	/* Keep the exporter thread from starting: the tests read the queue. */
	crd_active = 0;
	crd_real_tab.curl_easy_setopt = fake_setopt;
	crd_real_tab.curl_easy_perform = fake_perform;
	crd_real_tab.curl_easy_getinfo = fake_getinfo;
	crd_real_tab.curl_slist_append = fake_append;
	crd_real_tab.curl_slist_free_all = fake_free_all;
	slist_frees = setopt_calls = 0;
	while (crd_queue_pop())
		;
}

static struct crd_span *exported(void)
{
	struct crd_rec *r = crd_queue_pop();
	cr_assert_not_null(r, "no span queued");
	cr_assert_null(crd_queue_pop(), "more than one span");
	return &r->span;
}

TestSuite(curl, .init = install_fakes);

Test(curl, adds_traceparent_to_a_copy_and_restores_the_app_list)
{
	struct fake_handle f = {.status = 201};
	struct curl_slist *app = fake_append(fake_append(NULL, "X-App: 1"), "Accept: */*");

	crd_curl_set_headers((CURL *)&f, app);
	f.list = app;
	cr_assert_eq(crd_curl_perform((CURL *)&f), CURLE_OK);

	cr_assert_eq(f.performs, 1);
	cr_assert_eq(f.nseen, 3, "list at perform: %d entries", f.nseen);
	cr_assert_str_eq(f.seen[0], "X-App: 1");
	cr_assert_str_eq(f.seen[1], "Accept: */*");
	cr_assert(!strncmp(f.seen[2], "traceparent: 00-", 16), "%s", f.seen[2]);
	/* Back to the app's own list, ours freed (3 entries). */
	cr_assert_eq(f.list, app);
	cr_assert_eq(slist_frees, 3);
	cr_assert_str_eq(app->data, "X-App: 1");
	cr_assert_null(app->next->next, "the app's list was modified");

	struct crd_span *s = exported();
	char tp[56];
	crd_traceparent_format(tp, s->trace_id, s->span_id, s->sampled);
	cr_assert_str_eq(f.seen[2] + 13, tp, "header names the span");
	cr_assert_eq(s->kind, CRD_KIND_CLIENT);
	cr_assert_str_eq(s->req.method, "POST");
	cr_assert_eq(s->status, 201);
	cr_assert_str_eq(s->req.host, "api.example:8443");
	cr_assert_str_eq(s->proto_version, "2");
	cr_assert_eq(s->peer.port, 8443);
	cr_assert_str_eq(s->error_type, "");
	fake_free_all(app);
}

Test(curl, never_touches_an_app_traceparent)
{
	struct fake_handle f = {.status = 200};
	struct curl_slist *app =
		fake_append(NULL, "TraceParent: 00-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-bbbbbbbbbbbbbbbb-01");

	crd_curl_set_headers((CURL *)&f, app);
	f.list = app;
	cr_assert_eq(crd_curl_perform((CURL *)&f), CURLE_OK);
	cr_assert_eq(f.nseen, 1);
	cr_assert_eq(setopt_calls, 0, "the handle was modified");
	cr_assert_eq(f.list, app);
	struct crd_span *s = exported();
	cr_assert_eq(s->trace_id[0], 0xaa, "our span joins the app's trace");
	cr_assert_eq(s->parent_span_id[0], 0xbb);
	fake_free_all(app);
}

Test(curl, no_app_list_and_failure)
{
	struct fake_handle f = {.rc = CURLE_COULDNT_CONNECT};

	crd_curl_forget((CURL *)&f);
	cr_assert_eq(crd_curl_perform((CURL *)&f), CURLE_COULDNT_CONNECT);
	cr_assert_eq(f.nseen, 1);
	cr_assert(!strncmp(f.seen[0], "traceparent: ", 13));
	cr_assert_null(f.list, "restored to no list");
	cr_assert_eq(slist_frees, 1);
	struct crd_span *s = exported();
	cr_assert_str_eq(s->error_type, "CURLE_COULDNT_CONNECT");
	cr_assert_eq(s->status, 0);
}

Test(curl, duphandle_and_reset)
{
	struct fake_handle a = {.status = 200}, b = {.status = 200};
	struct curl_slist *app = fake_append(NULL, "X-App: 2");

	crd_curl_set_headers((CURL *)&a, app);
	crd_curl_dup((CURL *)&a, (CURL *)&b);
	b.list = app;
	crd_curl_perform((CURL *)&b);
	cr_assert_eq(b.nseen, 2);
	cr_assert_str_eq(b.seen[0], "X-App: 2");
	cr_assert_eq(b.list, app);
	(void)exported();
	/* After reset the handle has no list: ours alone, then none again. */
	crd_curl_forget((CURL *)&a);
	a.list = NULL;
	crd_curl_perform((CURL *)&a);
	cr_assert_eq(a.nseen, 1);
	cr_assert_null(a.list);
	(void)exported();
	fake_free_all(app);
}
