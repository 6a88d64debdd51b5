/* otlp.c - the OTLP/HTTP trace sink: encode, compress, POST. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../preload/config.h"
#include "../preload/log.h"
#include "../preload/version.h"
#include "http_post.h"
#include "otlp_enc.h"
#include "sink.h"

struct otlp_sink {
	struct crd_sink base;
	struct crd_http_client http;
	struct curl_slist *headers;
	char *buf; /* encoding, grown as needed, kept for the next batch */
	size_t cap;
	char *zbuf; /* gzip output */
	size_t zcap;
};

static int grow(char **p, size_t *cap, size_t need)
{
	char *n;

	if (need <= *cap)
		return 0;
	n = realloc(*p, need);
	if (!n)
		return -ENOMEM;
	*p = n;
	*cap = need;
	return 0;
}

/* Encode b per the configured protocol into s->buf; returns the length. */
static long encode(struct otlp_sink *s, const struct crd_batch *b)
{
	struct crd_otlp_batch ob = {.resource = *b->resource,
				    .scope_name = CRD_NAME,
				    .scope_version = CRD_VERSION,
				    .spans = b->views,
				    .n = b->n};
	ssize_t n;

	if (crd_cfg.otlp_protocol == CRD_OTLP_PROTOBUF) {
		size_t need = crd_otlp_pb_size(&ob);
		if (grow(&s->buf, &s->cap, need ? need : 1))
			return -ENOMEM;
		/* cap == the exact size: the encoder writes in place. */
		return crd_otlp_pb_encode(&ob, (uint8_t *)s->buf, need);
	}
	if (grow(&s->buf, &s->cap, 4096 + b->n * 2048))
		return -ENOMEM;
	while ((n = crd_otlp_json_encode(&ob, s->buf, s->cap)) == -ENOSPC)
		if (grow(&s->buf, &s->cap, s->cap * 2))
			return -ENOMEM;
	return n;
}

static int otlp_export(struct crd_sink *base, const struct crd_batch *b, uint64_t deadline)
{
	struct otlp_sink *s = (struct otlp_sink *)base;
	const char *body;
	long n = encode(s, b);

	if (n < 0) {
		crd_error("OTLP: cannot encode %zu spans (%s); dropped", b->n, strerror((int)-n));
		return (int)n;
	}
	body = s->buf;
	if (crd_cfg.otlp_gzip) {
		long z;
		if (grow(&s->zbuf, &s->zcap, crd_gzip_bound((size_t)n)))
			return -ENOMEM;
		z = crd_gzip(s->buf, (size_t)n, s->zbuf, s->zcap);
		if (z < 0)
			return (int)z;
		body = s->zbuf;
		n = z;
	}
	return crd_http_post(&s->http, crd_cfg.otlp_traces_url, s->headers, body, (size_t)n,
			     deadline, crd_otlp_retryable);
}

static void otlp_destroy(struct crd_sink *base)
{
	struct otlp_sink *s = (struct otlp_sink *)base;

	crd_http_client_destroy(&s->http);
	crd_curl.slist_free_all(s->headers);
	free(s->buf);
	free(s->zbuf);
	free(s);
}

static const struct crd_sink_ops otlp_ops = {
    .name = "otlp",
    .export_spans = otlp_export,
    .destroy = otlp_destroy,
};

static int add_header(struct otlp_sink *s, const char *k, const char *v)
{
	char line[1024];
	struct curl_slist *l;

	/* A CR or LF would split the request: refuse such a header. */
	if (strpbrk(k, "\r\n:") || strpbrk(v, "\r\n")) {
		crd_warn("OTEL_EXPORTER_OTLP_HEADERS: header '%s' has a line break or colon; "
			 "ignored",
			 k);
		return 0;
	}
	/* An empty value makes libcurl drop the header; "k;" sends it empty. */
	if (*v)
		snprintf(line, sizeof(line), "%s: %s", k, v);
	else
		snprintf(line, sizeof(line), "%s;", k);
	l = crd_curl.slist_append(s->headers, line);
	if (!l)
		return -ENOMEM;
	s->headers = l;
	return 0;
}

struct crd_sink *crd_otlp_sink_new(void)
{
	struct otlp_sink *s = calloc(1, sizeof(*s));
	int rc;

	if (!s)
		return NULL;
	s->base.ops = &otlp_ops;
	if (crd_http_client_init(&s->http, "OTLP", crd_cfg.otlp_traces_url, crd_cfg.otlp_timeout_ms,
				 crd_cfg.otlp_ca_file)) {
		free(s);
		return NULL;
	}
	/* Exactly these content types: Honeycomb answers 415 to parameters. */
	rc = add_header(s, "Content-Type",
			crd_cfg.otlp_protocol == CRD_OTLP_PROTOBUF ? "application/x-protobuf"
								   : "application/json");
	if (!rc && crd_cfg.otlp_gzip)
		rc = add_header(s, "Content-Encoding", "gzip");
	/* No "Expect: 100-continue" round trip for large batches. */
	if (!rc) {
		struct curl_slist *l = crd_curl.slist_append(s->headers, "Expect:");
		rc = l ? (s->headers = l, 0) : -ENOMEM;
	}
	for (size_t i = 0; !rc && i < crd_cfg.otlp_nheaders; i++)
		rc = add_header(s, crd_cfg.otlp_headers[i].key, crd_cfg.otlp_headers[i].value);
	if (rc) {
		otlp_destroy(&s->base);
		return NULL;
	}
	crd_debug("OTLP: exporting traces to %s (%s%s)", s->http.url_safe,
		  crd_cfg.otlp_protocol == CRD_OTLP_PROTOBUF ? "protobuf" : "json",
		  crd_cfg.otlp_gzip ? ", gzip" : "");
	return &s->base;
}
