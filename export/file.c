/* file.c - the embedded default: OTLP/JSON lines in a local file.
 *
 * One line per export batch, each a complete ExportTraceServiceRequest in
 * OTLP/JSON (the collector's file exporter format), appended with a single
 * write(2) on an O_APPEND descriptor so processes sharing the file (nginx
 * workers, prefork children) never interleave within a line. The process
 * that creates the file says so once on stderr.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../preload/config.h"
#include "../preload/log.h"
#include "../preload/real.h"
#include "../preload/version.h"
#include "otlp_enc.h"
#include "sink.h"

struct file_sink {
	struct crd_sink base;
	int fd;
	int broken; /* a write failed: stop, the message was given */
	char *buf;
	size_t cap;
};

static int file_export(struct crd_sink *base, const struct crd_batch *b, uint64_t deadline)
{
	struct file_sink *s = (struct file_sink *)base;
	struct crd_otlp_batch ob = {.resource = *b->resource,
				    .scope_name = CRD_NAME,
				    .scope_version = CRD_VERSION,
				    .spans = b->views,
				    .n = b->n};
	ssize_t n, w;

	(void)deadline;
	if (s->broken)
		return -EIO;
	while ((n = crd_otlp_json_encode(&ob, s->buf, s->cap - 1)) == -ENOSPC) {
		char *g = realloc(s->buf, s->cap * 2);
		if (!g)
			return -ENOMEM;
		s->buf = g;
		s->cap *= 2;
	}
	if (n < 0)
		return (int)n;
	s->buf[n++] = '\n';
	w = CRD_REAL(write)(s->fd, s->buf, (size_t)n);
	if (w != n) {
		crd_error("writing %s: %s; file export stopped", crd_cfg.file_path,
			  w < 0 ? strerror(errno) : "short write (disk full?)");
		s->broken = 1;
		return -EIO;
	}
	return 0;
}

static void file_destroy(struct crd_sink *base)
{
	struct file_sink *s = (struct file_sink *)base;

	CRD_REAL(close)(s->fd);
	free(s->buf);
	free(s);
}

static const struct crd_sink_ops file_ops = {
    .name = "file",
    .export_spans = file_export,
    .destroy = file_destroy,
};

struct crd_sink *crd_file_sink_new(void)
{
	struct file_sink *s = calloc(1, sizeof(*s));
	int created = 1;

	if (!s)
		return NULL;
	s->cap = 65536;
	s->buf = malloc(s->cap);
	/* O_EXCL first: only the process that creates the file announces it. */
	s->fd = open(crd_cfg.file_path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (s->fd < 0 && errno == EEXIST) {
		created = 0;
		s->fd = open(crd_cfg.file_path, O_WRONLY | O_APPEND | O_CLOEXEC);
	}
	if (s->fd < 0 || !s->buf) {
		crd_error("cannot open %s for spans: %s; set CRUDDUR_FILE to a writable path",
			  crd_cfg.file_path, strerror(errno));
		free(s->buf);
		free(s);
		return NULL;
	}
	if (created && crd_cfg.file_default)
		crd_warn("no exporter configured: writing spans to %s (OTLP/JSON lines); set "
			 "OTEL_EXPORTER_OTLP_ENDPOINT to send them elsewhere",
			 crd_cfg.file_path);
	else if (created)
		crd_info("writing spans to %s (OTLP/JSON lines)", crd_cfg.file_path);
	s->base.ops = &file_ops;
	return &s->base;
}
