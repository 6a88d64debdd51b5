/* rollbar.c - the Rollbar sink: 5xx answers and spooled crashes as items.
 *
 * Every finished SERVER span with a 5xx status becomes one Rollbar item
 * (level "error", see crd_rb_encode_5xx()), subject to the local per-minute
 * cap (CRUDDUR_ROLLBAR_MAX_PER_MIN) and the server's 429 pause
 * (X-Rate-Limit-Remaining-Seconds). Sending: POST ROLLBAR_ENDPOINT with the
 * X-Rollbar-Access-Token header through export/http_post.c, retrying only
 * connection failures and 5xx answers (each item has its own uuid, so a
 * retried item is never counted twice); other 4xx drop the item; 413 is
 * retried once with a trimmed encoding.
 *
 * On its first batch the sink also ships crash reports left in the spool
 * directory by earlier processes (preload/crash.c), unsymbolized: frames
 * are module path + offset, with the build-ids in data.custom
 * (scripts/cruddur-run ships them symbolized when it is the entrypoint).
 * A file is claimed by renaming it (*.sending-<pid>) so that concurrent
 * processes never send it twice; its uuid derives from its name, so a
 * resend after a crash of the sender is discarded by Rollbar.
 *
 * Exporter thread only.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../preload/config.h"
#include "../preload/crash.h"
#include "../preload/ids.h"
#include "../preload/log.h"
#include "../preload/real.h"
#include "../preload/rollbar.h"
#include "http_post.h"
#include "rollbar_enc.h"
#include "sink.h"

/* Room for one encoded item: Rollbar's maximum plus slack; a larger
 * encoding is an error of ours, never sent. */
#define RB_BUF_SIZE (CRD_RB_MAX_ITEM_BYTES + 4096)
/* Drops are reported at most this often (seconds). */
#define RB_DROP_REPORT_S 60
/* A spool file larger than this is not ours (the writer's buffer is
 * smaller): it is removed unread. */
#define RB_SPOOL_FILE_MAX (256 * 1024)
/* Per-attempt HTTP timeout (ms): Rollbar answers in well under a second. */
#define RB_HTTP_TIMEOUT_MS 10000L

struct rollbar_sink {
	struct crd_sink base;
	struct crd_http_client http;
	struct curl_slist *headers;
	char *buf;
	struct crd_rb_limiter lim;
	struct crd_rb_meta meta;
	char host[256];
	uint64_t last_drop_report_ns;
	int spool_done; /* the spool was looked at (first batch) */
	struct crd_crash_report *report;
};

static int rb_retryable(long status)
{
	/* Rollbar: 5xx are transient; 429 pauses (handled by the caller);
	 * every other 4xx is final. */
	return status >= 500 && status <= 599;
}

enum { SENT = 0, DROPPED = -EIO, RATE_LIMITED = -EAGAIN, TOO_LARGE = -E2BIG };

/* POST one encoded item. */
static int post(struct rollbar_sink *s, size_t len, uint64_t deadline)
{
	if (!crd_http_post(&s->http, crd_rb_cfg.endpoint, s->headers, s->buf, len, deadline,
			   rb_retryable))
		return SENT;
	if (s->http.status == 429) {
		crd_rb_limiter_pause(&s->lim, crd_mono_ns(), s->http.rate_limit_remaining_s);
		crd_debug("Rollbar: rate limited by the server; pausing %ld s",
			  s->http.rate_limit_remaining_s >= 0 ? s->http.rate_limit_remaining_s
							      : (long)CRD_RB_DEF_PAUSE_S);
		return RATE_LIMITED;
	}
	if (s->http.status == 413)
		return TOO_LARGE;
	return DROPPED;
}

static int send_5xx(struct rollbar_sink *s, const struct crd_span *sp,
		    const struct crd_span_view *v, uint64_t deadline)
{
	char uuid[CRD_RB_UUID_LEN + 1];
	ssize_t n;
	int rc;

	crd_rb_uuid4(crd_rand64(), crd_rand64(), uuid);
	n = crd_rb_encode_5xx(s->buf, RB_BUF_SIZE, &s->meta, sp, v, uuid, 0);
	if (n < 0)
		n = crd_rb_encode_5xx(s->buf, RB_BUF_SIZE, &s->meta, sp, v, uuid, 1);
	if (n < 0)
		return DROPPED;
	rc = post(s, (size_t)n, deadline);
	if (rc == TOO_LARGE) {
		/* 413: the same item (same uuid), trimmed, once. */
		n = crd_rb_encode_5xx(s->buf, RB_BUF_SIZE, &s->meta, sp, v, uuid, 1);
		rc = n < 0 ? DROPPED : post(s, (size_t)n, deadline);
		if (rc == TOO_LARGE)
			rc = DROPPED;
	}
	return rc;
}

static void report_drops(struct rollbar_sink *s)
{
	uint64_t now = crd_mono_ns();

	if (!s->lim.dropped || (s->last_drop_report_ns &&
				now - s->last_drop_report_ns < RB_DROP_REPORT_S * 1000000000ull))
		return;
	crd_warn("Rollbar: %llu 5xx items not sent (over CRUDDUR_ROLLBAR_MAX_PER_MIN=%d, or "
		 "paused by the server's rate limit)",
		 (unsigned long long)s->lim.dropped, crd_rb_cfg.max_per_min);
	s->lim.dropped = 0;
	s->last_drop_report_ns = now;
}

/* ---- spool shipping ---- */

/* FNV-1a 64 of a string, with a seed: the uuid of a spool file is
 * derived from its name (scripts/cruddur-run derives the same). */
static uint64_t fnv(uint64_t h, const char *p)
{
	for (; *p; p++) {
		h ^= (unsigned char)*p;
		h *= 0x100000001b3ull;
	}
	return h;
}

static void spool_uuid(const char *name, char out[CRD_RB_UUID_LEN + 1])
{
	uint64_t a = fnv(0xcbf29ce484222325ull, name);
	uint64_t b = fnv(a, "/uuid");

	crd_rb_uuid4(a, b, out);
}

/* The spool name a directory entry stands for, when it is one we may
 * claim: "crash-*.crd", or a claim "crash-*.crd.sending-<pid>" whose
 * process is gone. Writes the base name into base. */
static int claimable(const char *name, char *base, size_t cap)
{
	size_t n = strlen(name), sl = sizeof(CRD_SPOOL_SUFFIX) - 1;
	const char *claim;

	if (strncmp(name, CRD_SPOOL_PREFIX, sizeof(CRD_SPOOL_PREFIX) - 1) || n >= cap)
		return 0;
	claim = strstr(name, CRD_SPOOL_SUFFIX CRD_SPOOL_CLAIM);
	if (claim) {
		long pid = strtol(claim + sl + sizeof(CRD_SPOOL_CLAIM) - 1, NULL, 10);
		if (pid <= 0 || !kill((pid_t)pid, 0) || errno != ESRCH)
			return 0;
		n = (size_t)(claim - name) + sl;
	} else if (n <= sl || strcmp(name + n - sl, CRD_SPOOL_SUFFIX)) {
		return 0;
	}
	memcpy(base, name, n);
	base[n] = 0;
	return 1;
}

static ssize_t read_file(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	size_t got = 0;
	ssize_t r;

	if (fd < 0)
		return -errno;
	while (got < cap && (r = CRD_REAL(read)(fd, buf + got, cap - got)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			got = (size_t)-1;
			break;
		}
		got += (size_t)r;
	}
	CRD_REAL(close)(fd);
	return got == (size_t)-1 ? -EIO : (ssize_t)got;
}

/* Send one claimed file. SENT/DROPPED: remove it; other: put it back. */
static int ship_one(struct rollbar_sink *s, const char *base, const char *claimed,
		    uint64_t deadline)
{
	char uuid[CRD_RB_UUID_LEN + 1];
	char *text = malloc(RB_SPOOL_FILE_MAX);
	ssize_t n;
	int rc;

	if (!text)
		return -ENOMEM;
	n = read_file(claimed, text, RB_SPOOL_FILE_MAX);
	if (n < 0 || n == RB_SPOOL_FILE_MAX || crd_crash_parse(text, (size_t)n, s->report)) {
		free(text);
		crd_warn("Rollbar: %s is not a crash report of ours; removed", base);
		return DROPPED;
	}
	free(text);
	spool_uuid(base, uuid);
	n = crd_rb_encode_crash(s->buf, RB_BUF_SIZE, s->report, &s->meta, uuid, 0);
	if (n < 0)
		n = crd_rb_encode_crash(s->buf, RB_BUF_SIZE, s->report, &s->meta, uuid, 1);
	if (n < 0)
		return DROPPED;
	rc = post(s, (size_t)n, deadline);
	if (rc == TOO_LARGE) {
		n = crd_rb_encode_crash(s->buf, RB_BUF_SIZE, s->report, &s->meta, uuid, 1);
		rc = n < 0 ? DROPPED : post(s, (size_t)n, deadline);
		if (rc == TOO_LARGE)
			rc = DROPPED;
	}
	if (rc == SENT)
		crd_info("Rollbar: sent the crash report %s (%s in pid %ld)", base,
			 s->report->signame, s->report->pid);
	/* Only an answer saying the item itself is bad is final; a token or
	 * transport problem may be fixed before the next start. */
	if (rc == DROPPED &&
	    (s->http.status == 400 || s->http.status == 413 || s->http.status == 422))
		return DROPPED;
	return rc == SENT ? SENT : -EAGAIN;
}

static void ship_spool(struct rollbar_sink *s, uint64_t deadline)
{
	char dir[CRD_SPOOL_DIR_MAX + 32], base[256], from[sizeof(dir) + 256],
	    claimed[sizeof(dir) + 300];
	struct dirent *e;
	DIR *d;

	if (crd_spool_dir(dir, sizeof(dir)) < 0 || !(d = opendir(dir)))
		return;
	while ((e = readdir(d))) {
		int rc;

		if (!claimable(e->d_name, base, sizeof(base)))
			continue;
		if (crd_rb_limiter_paused(&s->lim, crd_mono_ns()) || crd_mono_ns() >= deadline)
			break;
		snprintf(from, sizeof(from), "%s/%s", dir, e->d_name);
		snprintf(claimed, sizeof(claimed), "%s/%s" CRD_SPOOL_CLAIM "%ld", dir, base,
			 (long)getpid());
		if (rename(from, claimed))
			continue; /* another process took it */
		rc = ship_one(s, base, claimed, deadline);
		if (rc == SENT || rc == DROPPED) {
			unlink(claimed);
		} else {
			snprintf(from, sizeof(from), "%s/%s", dir, base);
			rename(claimed, from);
			if (rc == -EAGAIN)
				break; /* the back end said no: try at the next start */
		}
	}
	closedir(d);
}

static int rollbar_export(struct crd_sink *base, const struct crd_batch *b, uint64_t deadline)
{
	struct rollbar_sink *s = (struct rollbar_sink *)base;
	int rc = 0;

	for (size_t i = 0; i < b->n; i++) {
		const struct crd_span *sp = b->spans[i];
		if (sp->kind != CRD_KIND_SERVER || sp->status < 500 || sp->status > 599 ||
		    !crd_rb_cfg.max_per_min)
			continue;
		if (!crd_rb_limiter_allow(&s->lim, crd_mono_ns(), (uint32_t)crd_rb_cfg.max_per_min))
			continue;
		if (send_5xx(s, sp, b->views[i], deadline) == DROPPED)
			rc = -EIO;
	}
	report_drops(s);
	crd_crash_modules_refresh();
	if (!s->spool_done) {
		s->spool_done = 1;
		ship_spool(s, deadline);
	}
	return rc;
}

static void rollbar_destroy(struct crd_sink *base)
{
	struct rollbar_sink *s = (struct rollbar_sink *)base;

	crd_http_client_destroy(&s->http);
	if (s->headers)
		crd_curl.slist_free_all(s->headers);
	free(s->buf);
	free(s->report);
	free(s);
}

static const struct crd_sink_ops rollbar_ops = {
    .name = "rollbar",
    .export_spans = rollbar_export,
    .destroy = rollbar_destroy,
    .all_spans = 1, /* every 5xx, sampled or not (pyrollbar reports them all) */
};

static int add_header(struct rollbar_sink *s, const char *line)
{
	struct curl_slist *l = crd_curl.slist_append(s->headers, line);

	if (!l)
		return -ENOMEM;
	s->headers = l;
	return 0;
}

struct crd_sink *crd_rollbar_sink_new(void)
{
	struct rollbar_sink *s = calloc(1, sizeof(*s));
	char tok[300];
	int rc;

	if (!s)
		return NULL;
	s->base.ops = &rollbar_ops;
	s->buf = malloc(RB_BUF_SIZE);
	s->report = malloc(sizeof(*s->report));
	if (!s->buf || !s->report ||
	    crd_http_client_init(&s->http, "Rollbar", crd_rb_cfg.endpoint, RB_HTTP_TIMEOUT_MS,
				 NULL)) {
		free(s->buf);
		free(s->report);
		free(s);
		return NULL;
	}
	snprintf(tok, sizeof(tok), "X-Rollbar-Access-Token: %s", crd_rb_cfg.token);
	rc = add_header(s, tok);
	explicit_bzero(tok, sizeof(tok));
	if (!rc)
		rc = add_header(s, "Content-Type: application/json");
	if (!rc)
		rc = add_header(s, "Expect:");
	if (rc) {
		rollbar_destroy(&s->base);
		return NULL;
	}
	if (gethostname(s->host, sizeof(s->host) - 1))
		s->host[0] = 0;
	s->meta = (struct crd_rb_meta){.environment = crd_rb_cfg.environment,
				       .code_version = crd_rb_cfg.code_version,
				       .host = s->host,
				       .pid = (long)getpid(),
				       .service = crd_cfg.service_name};
	crd_debug("Rollbar: sending 5xx items%s to %s (environment %s, at most %d per minute)",
		  crd_crash_active() ? " and crash reports" : "", s->http.url_safe,
		  crd_rb_cfg.environment, crd_rb_cfg.max_per_min);
	return &s->base;
}
