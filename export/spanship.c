/* spanship.c - spooled spans back onto the export queue (see spanship.h).
 *
 * Runs on the exporter thread when it starts, before the first export:
 * a restarted server sends what its crashed predecessor had queued, with
 * the same service (a file is matched on service.name, so another
 * program sharing the spool directory never sends spans that are not its
 * own). scripts/cruddur-run runs a short process per service for the same
 * purpose right after a crash (CRUDDUR_SHIP_SPOOL=1).
 */
#include "spanship.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../preload/config.h"
#include "../preload/log.h"
#include "../preload/real.h"
#include "../preload/rec.h"
#include "../preload/rollbar.h"
#include "../preload/spanspool.h"
#include "queue.h"

/* A spans file holds at most the queue plus one batch; beyond this it is
 * not one of ours (2^20 records is the largest OTEL_BSP_MAX_QUEUE_SIZE). */
#define CRD_SPANSHIP_FILE_MAX ((size_t)((1u << 21) + 64) * sizeof(struct crd_span))

static int read_all(int fd, void *buf, size_t n)
{
	char *p = buf;

	while (n) {
		ssize_t r = CRD_REAL(read)(fd, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -EIO;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* Queue one spooled span; drains the queue when it (or the pool) is
 * full. 0, or -ENOSPC when it could not be queued even then. */
static int requeue(const struct crd_span *s, uint64_t deadline, void (*drain)(uint64_t))
{
	for (int attempt = 0; attempt < 2; attempt++) {
		struct crd_rec *r = crd_pool_get(&crd_rec_pool);
		if (r) {
			r->type = CRD_REC_SPAN;
			r->done = CRD_DONE_HEAD | CRD_DONE_REQ | CRD_DONE_RESP | CRD_DONE_CTX;
			r->ctx.slot = 0;
			r->ctx.gen = 0;
			memcpy(&r->span, s, sizeof(*s));
			if (!crd_queue_push(r))
				return 0;
			crd_pool_put(&crd_rec_pool, r);
		}
		if (drain)
			drain(deadline);
	}
	return -ENOSPC;
}

/* Ship one claimed file. Returns spans queued, or -errno (file bad). */
static long ship_file(int fd, const char *base, uint64_t deadline, void (*drain)(uint64_t))
{
	static struct crd_span s;
	struct crd_spans_hdr h;
	struct stat st;
	long n = 0, lost = 0;

	if (fstat(fd, &st) || (size_t)st.st_size > CRD_SPANSHIP_FILE_MAX ||
	    read_all(fd, &h, sizeof(h)) || crd_spanspool_check(&h, (size_t)st.st_size)) {
		crd_warn("%s: not a spans file of this cruddur build; removed", base);
		return -EPROTO;
	}
	for (size_t k = ((size_t)st.st_size - sizeof(h)) / sizeof(s); k; k--) {
		if (read_all(fd, &s, sizeof(s)))
			return n;
		/* The writer terminated every string; a file is still input:
		 * terminate again rather than trust it. */
		s.req.method[CRD_METHOD_MAX - 1] = s.req.target[CRD_TARGET_MAX - 1] = 0;
		s.req.host[CRD_HOST_MAX - 1] = s.req.user_agent[CRD_UA_MAX - 1] = 0;
		s.req.xff[CRD_XFF_MAX - 1] = s.req.traceparent[CRD_TRACEPARENT_MAX - 1] = 0;
		s.req.tracestate[CRD_TRACESTATE_MAX - 1] = s.req.xamzn[CRD_XAMZN_MAX - 1] = 0;
		s.error_type[sizeof(s.error_type) - 1] = 0;
		s.proto_version[sizeof(s.proto_version) - 1] = 0;
		if (s.kind != CRD_KIND_SERVER && s.kind != CRD_KIND_CLIENT)
			continue;
		if (requeue(&s, deadline, drain))
			lost++;
		else
			n++;
	}
	if (lost) {
		crd_stat_add(&crd_stats.spans_dropped, (uint64_t)lost);
		crd_warn("%s: %ld spooled spans dropped (queue full)", base, lost);
	}
	crd_info("sent %ld spans a crashed process (pid %d) had queued (%s)", n, (int)h.pid, base);
	return n;
}

/* Does the file's header name our service? Read before claiming it. */
static int ours(int dfd, const char *name)
{
	struct crd_spans_hdr h;
	int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), rc;

	if (fd < 0)
		return 0;
	rc = read_all(fd, &h, sizeof(h));
	CRD_REAL(close)(fd);
	if (rc)
		return 0;
	h.service[sizeof(h.service) - 1] = 0;
	/* A file this build cannot read is claimed, so that it is removed. */
	if (memcmp(h.magic, CRD_SPANS_MAGIC, sizeof(h.magic)) || h.hdr_size != sizeof(h))
		return 1;
	return crd_cfg.service_name && !strcmp(h.service, crd_cfg.service_name);
}

long crd_spanship_run(uint64_t deadline, void (*drain)(uint64_t deadline))
{
	char dir[CRD_SPOOL_DIR_MAX + 32], base[256], claimed[300];
	struct dirent *e;
	struct stat st;
	long total = 0;
	int dfd;
	DIR *d;

	if (crd_spool_dir(dir, sizeof(dir)) < 0)
		return 0;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return 0;
	/* Only a directory of ours that nobody else can write: spans in it
	 * were written by us. */
	if (fstat(dfd, &st) || st.st_uid != geteuid() || (st.st_mode & 022) ||
	    !(d = fdopendir(dfd))) {
		CRD_REAL(close)(dfd);
		return 0;
	}
	while ((e = readdir(d))) {
		long n;
		int fd;

		if (!crd_spanspool_claimable(e->d_name, base, sizeof(base)) ||
		    !ours(dfd, e->d_name))
			continue;
		snprintf(claimed, sizeof(claimed), "%s.sending-%ld", base, (long)getpid());
		if (renameat(dfd, e->d_name, dfd, claimed))
			continue; /* another process took it */
		fd = openat(dfd, claimed, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		n = fd < 0 ? -errno : ship_file(fd, base, deadline, drain);
		if (fd >= 0)
			CRD_REAL(close)(fd);
		if (n > 0)
			total += n;
		unlinkat(dfd, claimed, 0);
	}
	closedir(d);
	return total;
}
