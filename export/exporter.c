/* exporter.c - the exporter thread (see exporter.h). */
#include "exporter.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../preload/cloudwatch.h"
#include "../preload/config.h"
#include "../preload/conn.h"
#include "../preload/guard.h"
#include "../preload/ids.h"
#include "../preload/init.h"
#include "../preload/log.h"
#include "../preload/rec.h"
#include "../preload/rollbar.h"
#include "../preload/stdcap.h"
#include "../preload/xray.h"
#include "lines.h"
#include "queue.h"
#include "resource.h"
#include "sink.h"
#include "spanship.h"

/* How often a growing drop count is reported, at most (seconds). */
#define CRD_DROP_REPORT_S 10
#define CRD_MAX_SINKS	  8 /* otlp, file, console, xray, rollbar: room to spare */

/* A drop count reported on stderr, at most every CRD_DROP_REPORT_S. */
struct drop_report {
	uint64_t reported; /* the count at the last report */
	uint64_t last_ns;  /* when (monotonic) */
};

static struct {
	int started; /* atomic: a thread runs (or is starting) in this process */
	int exited;  /* atomic: crd_exporter_exit() ran */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t flush_req;	 /* under mu: flush requests made */
	uint64_t flush_done;	 /* under mu: flush requests completed */
	uint64_t flush_deadline; /* atomic: monotonic ns of the newest request */
	int busy;		 /* atomic: a batch is out of the queue */
	size_t held;		 /* atomic: span records in ex.recs not yet given back */
	int ship_pending;	 /* atomic: the spool was not looked at yet */

	/* Exporter-thread-only state. */
	struct crd_sink *sinks[CRD_MAX_SINKS];
	size_t nsinks;
	struct crd_resource res;
	struct crd_rec **recs;
	const struct crd_span **spans;
	struct crd_span_view *views;
	const struct crd_span_view **view_ptrs;
	const struct crd_span **sampled_spans; /* the sampled subset, same order */
	const struct crd_span_view **sampled_views;
	struct drop_report spans_report, log_report;
	uint64_t export_dropped; /* of crd_stats.spans_dropped: failed exports */
} ex = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void cond_init(void)
{
	pthread_condattr_t a;

	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(&ex.cv, &a);
	pthread_condattr_destroy(&a);
}

static int setup(void)
{
	size_t n = (size_t)crd_cfg.max_batch;
	struct crd_sink *s;

	crd_resource_build(&ex.res);
	ex.recs = calloc(n, sizeof(*ex.recs));
	ex.spans = calloc(n, sizeof(*ex.spans));
	ex.views = calloc(n, sizeof(*ex.views));
	ex.view_ptrs = calloc(n, sizeof(*ex.view_ptrs));
	ex.sampled_spans = calloc(n, sizeof(*ex.sampled_spans));
	ex.sampled_views = calloc(n, sizeof(*ex.sampled_views));
	if (!ex.recs || !ex.spans || !ex.views || !ex.view_ptrs || !ex.sampled_spans ||
	    !ex.sampled_views)
		return -ENOMEM;
	ex.nsinks = 0;
	if (crd_cfg.otlp_enabled && (s = crd_otlp_sink_new()))
		ex.sinks[ex.nsinks++] = s;
	if (crd_cfg.file_enabled && (s = crd_file_sink_new()))
		ex.sinks[ex.nsinks++] = s;
	if (crd_cfg.console_enabled && (s = crd_console_sink_new()))
		ex.sinks[ex.nsinks++] = s;
	if (crd_xray_cfg.enabled && ex.nsinks < CRD_MAX_SINKS && (s = crd_xray_sink_new()))
		ex.sinks[ex.nsinks++] = s;
	if (crd_rb_cfg.enabled && ex.nsinks < CRD_MAX_SINKS && (s = crd_rollbar_sink_new()))
		ex.sinks[ex.nsinks++] = s;
	if (crd_cw_cfg.enabled && ex.nsinks < CRD_MAX_SINKS && (s = crd_cloudwatch_sink_new()))
		ex.sinks[ex.nsinks++] = s;
	return 0;
}

/* Spans lost before export (queue full, pool empty). A failed export is
 * not counted here: its sink said so already, in its own rate-limited
 * message, and a 400 must give exactly one line, not two. */
/* How much of a growing drop count to report now: the growth since the
 * last report, at most every CRD_DROP_REPORT_S; 0 when nothing is due. */
static uint64_t due(struct drop_report *r, uint64_t total)
{
	uint64_t now = crd_mono_ns(), d = total - r->reported;

	if (!d || now - r->last_ns < CRD_DROP_REPORT_S * 1000000000ull)
		return 0;
	r->reported = total;
	r->last_ns = now;
	return d;
}

static void report_drops(void)
{
	uint64_t d =
	    due(&ex.spans_report,
		__atomic_load_n(&crd_stats.spans_dropped, __ATOMIC_RELAXED) - ex.export_dropped);

	if (d)
		crd_warn("%llu spans dropped (queue full, back end unavailable, or limits); "
			 "see OTEL_BSP_MAX_QUEUE_SIZE",
			 (unsigned long long)d);
	/* Captured stdout/stderr bytes that found no record or queue slot. */
	d = due(&ex.log_report, __atomic_load_n(&crd_stats.log_bytes_dropped, __ATOMIC_RELAXED));
	if (d)
		crd_warn("%llu bytes of stdout/stderr not shipped to CloudWatch (queue full or "
			 "a write over %d KiB); the app's output itself is intact",
			 (unsigned long long)d, CRD_STDCAP_MAX_RECS * CRD_LOG_CHUNK / 1024);
}

/* Export up to one batch; returns how many records it took. Captured
 * stdout/stderr records become lines (export/lines.c); partial lines all
 * go out when flushing. */
static size_t export_batch(uint64_t deadline, int flushing)
{
	size_t n = 0, ns = 0, taken = 0, nlines;
	const struct crd_log_line *lines;
	struct crd_batch b, bs;
	struct crd_rec *r;

	__atomic_store_n(&ex.busy, 1, __ATOMIC_SEQ_CST);
	while (taken < (size_t)crd_cfg.max_batch && (r = crd_queue_pop())) {
		taken++;
		if (r->type == CRD_REC_LOG) {
			crd_lines_feed(&r->log);
			crd_pool_put(&crd_rec_pool, r);
			continue;
		}
		ex.recs[n++] = r;
		/* Published per record: a crash now spools what we hold
		 * (preload/spanspool.c). */
		__atomic_store_n(&ex.held, n, __ATOMIC_RELEASE);
	}
	nlines = crd_lines_take(crd_now_ns(), flushing, &lines);
	if (!n && !nlines) {
		__atomic_store_n(&ex.busy, 0, __ATOMIC_SEQ_CST);
		return taken;
	}
	/* Views packed end to end (crd_span_view_pack): ex.views has room
	 * for n full ones, but only what they use is ever touched. */
	char *vat = (char *)ex.views;
	for (size_t i = 0; i < n; i++) {
		struct crd_span_view *v = (struct crd_span_view *)(void *)vat;
		ex.spans[i] = &ex.recs[i]->span;
		crd_span_view(ex.spans[i], v);
		vat += crd_span_view_pack(v);
		ex.view_ptrs[i] = v;
		if (ex.spans[i]->sampled) {
			ex.sampled_spans[ns] = ex.spans[i];
			ex.sampled_views[ns++] = ex.view_ptrs[i];
		}
	}
	b = (struct crd_batch){.resource = &ex.res.list,
			       .spans = ex.spans,
			       .views = ex.view_ptrs,
			       .n = n,
			       .lines = lines,
			       .nlines = nlines};
	bs = (struct crd_batch){.resource = &ex.res.list,
				.spans = ex.sampled_spans,
				.views = ex.sampled_views,
				.n = ns,
				.lines = lines,
				.nlines = nlines};
	int rc = 0;
	for (size_t i = 0; i < ex.nsinks; i++) {
		const struct crd_sink_ops *ops = ex.sinks[i]->ops;
		const struct crd_batch *mine = ops->all_spans ? &b : &bs;
		int rs = mine->n || (ops->logs && nlines)
			     ? ops->export_spans(ex.sinks[i], mine, deadline)
			     : 0;
		if (i == 0)
			rc = rs;
	}
	crd_lines_clear();
	if (rc == 0) {
		crd_stat_add(&crd_stats.spans_exported, ns);
	} else {
		crd_stat_add(&crd_stats.spans_dropped, ns);
		ex.export_dropped += ns;
	}
	__atomic_store_n(&ex.held, 0, __ATOMIC_RELEASE);
	for (size_t i = 0; i < n; i++)
		crd_pool_put(&crd_rec_pool, ex.recs[i]);
	__atomic_store_n(&ex.busy, 0, __ATOMIC_SEQ_CST);
	return taken;
}

size_t crd_exporter_held(struct crd_rec *const **recs)
{
	*recs = ex.recs;
	return ex.recs ? __atomic_load_n(&ex.held, __ATOMIC_ACQUIRE) : 0;
}

/* Spooled spans fill the queue faster than a schedule: export as we go. */
static void drain_for_spool(uint64_t deadline)
{
	while (crd_queue_len())
		export_batch(deadline, 1);
}

/* atexit_flush is registered once per process (a fork child inherits it). */
static int atexit_registered;

static void atexit_flush(void)
{
	crd_exporter_exit();
}

static void *run(void *arg)
{
	(void)arg;
	crd_guard = 1; /* our I/O is never instrumented */
	if (setup()) {
		crd_error("out of memory starting the exporter; spans will be dropped");
		return NULL;
	}
	/* Spans crashed processes of our service spooled (spanspool.h). */
	crd_spanship_run(crd_mono_ns() + (uint64_t)crd_cfg.export_timeout_ms * 1000000u,
			 drain_for_spool);
	__atomic_store_n(&ex.ship_pending, 0, __ATOMIC_RELEASE);
	for (;;) {
		uint64_t want, deadline;
		/* Before reading flush_req: a flush asked after this point
		 * moves the futex, so the wait below cannot miss its kick. */
		uint32_t token = crd_queue_wait_token();

		pthread_mutex_lock(&ex.mu);
		want = ex.flush_req;
		pthread_mutex_unlock(&ex.mu);
		if (want == ex.flush_done && crd_queue_len() < (uint32_t)crd_cfg.max_batch)
			crd_queue_wait(crd_cfg.schedule_delay_ms, token);

		pthread_mutex_lock(&ex.mu);
		want = ex.flush_req;
		pthread_mutex_unlock(&ex.mu);
		/* A pending flush bounds every export; otherwise the BSP
		 * export timeout does. */
		deadline = want != ex.flush_done
			       ? __atomic_load_n(&ex.flush_deadline, __ATOMIC_ACQUIRE)
			       : crd_mono_ns() + (uint64_t)crd_cfg.export_timeout_ms * 1000000u;
		/* Full batches while the queue holds them; a remainder goes
		 * now only when a flush asks or the schedule delay ran out
		 * (woken by the timeout, not by a full batch). Draining every
		 * trickle sent small POSTs under load. */
		do
			export_batch(deadline, want != ex.flush_done);
		while (crd_queue_len() >= (uint32_t)crd_cfg.max_batch ||
		       (want != ex.flush_done && crd_queue_len()));
		report_drops();
		if (want != ex.flush_done) {
			pthread_mutex_lock(&ex.mu);
			ex.flush_done = want;
			pthread_cond_broadcast(&ex.cv);
			pthread_mutex_unlock(&ex.mu);
		}
	}
	return NULL;
}

void crd_exporter_ensure(void)
{
	pthread_t th;
	pthread_attr_t attr;
	sigset_t all, old;
	int expected = 0;

	if (__builtin_expect(__atomic_load_n(&ex.started, __ATOMIC_ACQUIRE), 1) || !crd_active)
		return;
	if (!__atomic_compare_exchange_n(&ex.started, &expected, 1, 0, __ATOMIC_ACQ_REL,
					 __ATOMIC_ACQUIRE))
		return;
	cond_init();
	/* A flush waits until the spool was looked at (cruddur-run's shipper
	 * has nothing else to send). */
	__atomic_store_n(&ex.ship_pending, 1, __ATOMIC_RELEASE);
	/* The thread must never take the app's signals. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&th, &attr, run, NULL)) {
		__atomic_store_n(&ex.started, 0, __ATOMIC_RELEASE);
		__atomic_store_n(&ex.ship_pending, 0, __ATOMIC_RELEASE);
		crd_error("cannot start the exporter thread; spans stay queued");
	} else {
		pthread_setname_np(th, "cruddur-export");
		/* Registered here, by the thread that queued the first span,
		 * not by the exporter once its sinks are set up: an app that
		 * exits while the exporter still starts (seen in tests) got
		 * only the destructor's flush, after the app's OpenSSL
		 * cleanup, and crashed in libcurl. The app's OpenSSL (shared
		 * with ours when the app links libcurl) registered its
		 * cleanup when it initialised, before serving; handlers run
		 * last-in first-out, so our flush runs while TLS still
		 * works. Ours (curl_dl.c) registers none. Once per process. */
		if (!__atomic_exchange_n(&atexit_registered, 1, __ATOMIC_ACQ_REL))
			atexit(atexit_flush);
	}
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

int crd_exporter_flush(int timeout_ms)
{
	uint64_t target, deadline = crd_mono_ns() + (uint64_t)timeout_ms * 1000000u;
	struct timespec ts = {(time_t)(deadline / 1000000000u), (long)(deadline % 1000000000u)};
	int rc = 0;

	if (!crd_queue_len() && !__atomic_load_n(&ex.busy, __ATOMIC_SEQ_CST) &&
	    !__atomic_load_n(&ex.ship_pending, __ATOMIC_ACQUIRE))
		return 0;
	crd_exporter_ensure();
	if (!__atomic_load_n(&ex.started, __ATOMIC_ACQUIRE))
		return -ESRCH;
	crd_guard++;
	pthread_mutex_lock(&ex.mu);
	target = ++ex.flush_req;
	__atomic_store_n(&ex.flush_deadline, deadline, __ATOMIC_RELEASE);
	crd_queue_kick();
	while (ex.flush_done < target && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&ex.cv, &ex.mu, &ts);
	pthread_mutex_unlock(&ex.mu);
	crd_guard--;
	return ex.flush_done >= target ? 0 : -ETIMEDOUT;
}

void crd_exporter_after_fork_child(void)
{
	/* The parent's thread does not exist here; its mutex may have been
	 * held at fork time. The parent's sinks are abandoned (their
	 * connections belong to the parent). */
	pthread_mutex_init(&ex.mu, NULL);
	ex.started = 0;
	ex.exited = 0;
	ex.flush_req = ex.flush_done = 0;
	ex.busy = 0;
	ex.held = 0;
	ex.ship_pending = 0;
	ex.nsinks = 0;
	crd_lines_reset();
}

void crd_exporter_exit(void)
{
	if (__atomic_exchange_n(&ex.exited, 1, __ATOMIC_ACQ_REL))
		return;
	crd_conn_finish_all();
	/* cruddur-run's shipper (CRUDDUR_SHIP_SPOOL=1): the exporter starts
	 * only to send what crashed processes spooled. */
	if (crd_cfg.ship_spool)
		crd_exporter_ensure();
	if (crd_exporter_flush(crd_cfg.export_timeout_ms) == -ETIMEDOUT)
		crd_warn(
		    "exit: spans not exported within OTEL_BSP_EXPORT_TIMEOUT=%d ms were dropped",
		    crd_cfg.export_timeout_ms);
}
