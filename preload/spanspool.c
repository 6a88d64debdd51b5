/* spanspool.c - spans queued at a crash, into the spool (see spanspool.h).
 *
 * The writer runs in the crash handler: static buffers only, system calls
 * from the async-signal-safe list, string functions POSIX lists as
 * async-signal-safe (memcpy, strlen, strstr, strchr...), and reads of the
 * queue and the record pool, which are never unmapped. The reader helpers
 * run on the exporter thread.
 */
#include "spanspool.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../export/exporter.h"
#include "../export/queue.h"
#include "config.h"
#include "real.h"
#include "rec.h"

/* Records are gathered in this buffer and written when it fills: a few
 * write(2) calls for a full queue instead of one per span. */
#define CRD_SPANS_BUF (64 * 1024)

static struct {
	int fd;
	int failed;
	size_t used;
	size_t count;
	char buf[CRD_SPANS_BUF];
	struct crd_span clean;	     /* the record being sanitized */
	char target[CRD_TARGET_MAX]; /* its redacted target */
	char name[96];
} w;

static void put_all(const void *p, size_t n)
{
	const char *c = p;

	while (n && !w.failed) {
		ssize_t r = CRD_REAL(write)(w.fd, c, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			w.failed = 1;
			return;
		}
		c += r;
		n -= (size_t)r;
	}
}

static void flush_buf(void)
{
	put_all(w.buf, w.used);
	w.used = 0;
}

/* Copy, force every string NUL-terminated (the reader trusts them), and
 * redact the target: the record may hold user:password@ (a curl URL, a
 * proxy request) and secret query values. */
static void add(struct crd_rec *r, void *arg)
{
	struct crd_span *s = &w.clean;

	(void)arg;
	if (__atomic_load_n(&r->type, __ATOMIC_RELAXED) != CRD_REC_SPAN)
		return;
	memcpy(s, &r->span, sizeof(*s));
	s->req.method[CRD_METHOD_MAX - 1] = 0;
	s->req.target[CRD_TARGET_MAX - 1] = 0;
	s->req.host[CRD_HOST_MAX - 1] = 0;
	s->req.user_agent[CRD_UA_MAX - 1] = 0;
	s->req.xff[CRD_XFF_MAX - 1] = 0;
	s->req.traceparent[CRD_TRACEPARENT_MAX - 1] = 0;
	s->req.tracestate[CRD_TRACESTATE_MAX - 1] = 0;
	s->req.xamzn[CRD_XAMZN_MAX - 1] = 0;
	s->error_type[sizeof(s->error_type) - 1] = 0;
	s->proto_version[sizeof(s->proto_version) - 1] = 0;
	crd_redact_target(w.target, sizeof(w.target), s->req.target);
	memcpy(s->req.target, w.target, sizeof(s->req.target));
	if (w.used + sizeof(*s) > sizeof(w.buf))
		flush_buf();
	memcpy(w.buf + w.used, s, sizeof(*s));
	w.used += sizeof(*s);
	w.count++;
}

static void o_dec(char *o, size_t *n, size_t cap, unsigned long long v)
{
	char b[24];
	int i = sizeof(b);

	do
		b[--i] = (char)('0' + v % 10);
	while ((v /= 10) && i > 0);
	while (i < (int)sizeof(b) && *n + 1 < cap)
		o[(*n)++] = b[i++];
	o[*n] = 0;
}

static void o_str(char *o, size_t *n, size_t cap, const char *s)
{
	while (*s && *n + 1 < cap)
		o[(*n)++] = *s++;
	o[*n] = 0;
}

static void copy_cut(char *d, size_t cap, const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n > cap - 1)
		n = cap - 1;
	if (n)
		memcpy(d, s, n);
	d[n] = 0;
}

int crd_spanspool_write(int dfd, long long now_ns, int tid)
{
	extern char *program_invocation_short_name;
	static struct crd_spans_hdr h;
	static char tmp[sizeof(w.name) + 8];
	struct crd_rec *const *held;
	size_t nheld, n = 0;

	w.name[0] = 0;
	o_str(w.name, &n, sizeof(w.name), CRD_SPANS_PREFIX);
	o_dec(w.name, &n, sizeof(w.name), (unsigned long long)now_ns);
	o_str(w.name, &n, sizeof(w.name), "-");
	o_dec(w.name, &n, sizeof(w.name), (unsigned long long)getpid());
	o_str(w.name, &n, sizeof(w.name), "-");
	o_dec(w.name, &n, sizeof(w.name), (unsigned long long)tid);
	o_str(w.name, &n, sizeof(w.name), CRD_SPANS_SUFFIX);
	n = 0;
	o_str(tmp, &n, sizeof(tmp), ".tmp-");
	o_str(tmp, &n, sizeof(tmp), w.name);

	w.fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (w.fd < 0)
		return -errno;
	/* 0600 whatever the umask: the creation mode is only an upper bound. */
	fchmod(w.fd, 0600);
	w.failed = 0;
	w.used = 0;
	w.count = 0;

	memset(&h, 0, sizeof(h));
	memcpy(h.magic, CRD_SPANS_MAGIC, sizeof(h.magic));
	h.hdr_size = sizeof(h);
	h.span_size = sizeof(struct crd_span);
	h.layout = CRD_SPAN_LAYOUT;
	h.byte_order = CRD_SPANS_BYTE_ORDER;
	h.pid = (int32_t)getpid();
	h.time_ns = (uint64_t)now_ns;
	copy_cut(h.service, sizeof(h.service), crd_cfg.service_name);
	copy_cut(h.exe, sizeof(h.exe), program_invocation_short_name);
	memcpy(w.buf, &h, sizeof(h));
	w.used = sizeof(h);

	/* Oldest first: the batch the exporter holds, then the queue. */
	nheld = crd_exporter_held(&held);
	for (size_t i = 0; i < nheld; i++)
		if (held[i])
			add(held[i], NULL);
	crd_queue_snapshot(add, NULL);
	flush_buf();
	CRD_REAL(close)(w.fd);
	if (w.failed || !w.count || renameat(dfd, tmp, dfd, w.name)) {
		unlinkat(dfd, tmp, 0);
		w.name[0] = 0;
		return w.failed ? -EIO : 0;
	}
	return (int)w.count;
}

const char *crd_spanspool_last_name(void)
{
	return w.name;
}

int crd_spanspool_claimable(const char *name, char *base, size_t cap)
{
	static const char claim_sep[] = CRD_SPANS_SUFFIX ".sending-";
	size_t n = strlen(name), sl = sizeof(CRD_SPANS_SUFFIX) - 1;
	const char *claim;

	if (strncmp(name, CRD_SPANS_PREFIX, sizeof(CRD_SPANS_PREFIX) - 1) || n >= cap)
		return 0;
	claim = strstr(name, claim_sep);
	if (claim) {
		long pid = strtol(claim + sizeof(claim_sep) - 1, NULL, 10);
		/* A claim is taken over only when its process is gone. */
		if (pid <= 0 || !kill((pid_t)pid, 0) || errno != ESRCH)
			return 0;
		n = (size_t)(claim - name) + sl;
	} else if (n <= sl || strcmp(name + n - sl, CRD_SPANS_SUFFIX)) {
		return 0;
	}
	memcpy(base, name, n);
	base[n] = 0;
	return 1;
}

int crd_spanspool_check(const struct crd_spans_hdr *h, size_t file_size)
{
	if (file_size < sizeof(*h) || memcmp(h->magic, CRD_SPANS_MAGIC, sizeof(h->magic)) ||
	    h->hdr_size != sizeof(*h) || h->span_size != sizeof(struct crd_span) ||
	    h->layout != CRD_SPAN_LAYOUT || h->byte_order != CRD_SPANS_BYTE_ORDER)
		return -EPROTO;
	if ((file_size - sizeof(*h)) % sizeof(struct crd_span))
		return -EINVAL;
	return 0;
}
