/* console.c - OTEL_TRACES_EXPORTER=console: one readable line per span.
 *
 *   cruddur: span GET /path?q 200 1.234ms trace=<32 hex> span=<16 hex> parent=<16 hex|->
 *
 * Written to stderr with the `cruddur:` prefix like every line of ours.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../preload/log.h"
#include "../preload/tracectx.h"
#include "sink.h"

static const struct crd_attr *vattr(const struct crd_span_view *v, const char *key)
{
	for (size_t i = 0; i < v->nattrs; i++)
		if (!strcmp(v->attrs[i].key, key))
			return &v->attrs[i];
	return NULL;
}

/* What the line shows of the request: the view's url.full (client) or
 * url.path?url.query (server), never the raw target: the view has
 * credentials and secret query values redacted (issue #8). */
static void target_text(const struct crd_span_view *v, char *out, size_t cap)
{
	const struct crd_attr *full = vattr(v, "url.full"), *path = vattr(v, "url.path"),
			      *query = vattr(v, "url.query");

	if (full)
		snprintf(out, cap, "%.*s", (int)full->len, full->s);
	else
		snprintf(out, cap, "%.*s%s%.*s", path ? (int)path->len : 1, path ? path->s : "/",
			 query ? "?" : "", query ? (int)query->len : 0, query ? query->s : "");
}

static int console_export(struct crd_sink *base, const struct crd_batch *b, uint64_t deadline)
{
	(void)base;
	(void)deadline;
	for (size_t i = 0; i < b->n; i++) {
		const struct crd_span *s = b->spans[i];
		const struct crd_span_view *v = b->views[i];
		char trace[33], span[17], parent[17] = "-";
		char status[8] = "-", target[201];

		crd_hex(trace, v->trace_id, 16);
		crd_hex(span, v->span_id, 8);
		if (v->parent_span_id)
			crd_hex(parent, v->parent_span_id, 8);
		if (s->status)
			snprintf(status, sizeof(status), "%u", s->status);
		target_text(v, target, sizeof(target));
		crd_log(CRD_LOG_ERROR, "span %s %s %s %.3fms trace=%s span=%s parent=%s",
			s->req.method, target, status, (double)(v->end_ns - v->start_ns) / 1e6,
			trace, span, parent);
	}
	return 0;
}

static void console_destroy(struct crd_sink *base)
{
	free(base);
}

static const struct crd_sink_ops console_ops = {
    .name = "console",
    .export_spans = console_export,
    .destroy = console_destroy,
};

struct crd_sink *crd_console_sink_new(void)
{
	struct crd_sink *s = malloc(sizeof(*s));

	if (s)
		s->ops = &console_ops;
	return s;
}
