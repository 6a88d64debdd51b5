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
#include "../preload/xray.h"
#include "queue.h"
#include "resource.h"
#include "sink.h"

/* How often a growing drop count is reported, at most (seconds). */
#define CRD_DROP_REPORT_S 10
#define CRD_MAX_SINKS 8 /* otlp, file, console, xray, rollbar: room to spare */

static struct {
	int started; /* atomic: a thread runs (or is starting) in this process */
	int exited;  /* atomic: crd_exporter_exit() ran */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t flush_req;      /* under mu: flush requests made */
	uint64_t flush_done;     /* under mu: flush requests completed */
	uint64_t flush_deadline; /* atomic: monotonic ns of the newest request */
	int busy;                /* atomic: a batch is out of the queue */

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
	uint64_t dropped_reported;
	uint64_t last_report_ns;
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

static void report_drops(void)
{
	uint64_t d = __atomic_load_n(&crd_stats.spans_dropped, __ATOMIC_RELAXED);
	uint64_t now = crd_mono_ns();

	if (d == ex.dropped_reported || now - ex.last_report_ns < CRD_DROP_REPORT_S * 1000000000ull)
		return;
	crd_warn("%llu spans dropped (queue full, back end unavailable, or limits); "
		 "see OTEL_BSP_MAX_QUEUE_SIZE",
		 (unsigned long long)(d - ex.dropped_reported));
	ex.dropped_reported = d;
	ex.last_report_ns = now;
}

/* Export up to one batch; returns how many records it took. */
static size_t export_batch(uint64_t deadline)
{
	size_t n = 0;
	size_t ns = 0;
	struct crd_batch b, bs;

	__atomic_store_n(&ex.busy, 1, __ATOMIC_SEQ_CST);
	while (n < (size_t)crd_cfg.max_batch && (ex.recs[n] = crd_queue_pop()))
		n++;
	if (!n) {
		__atomic_store_n(&ex.busy, 0, __ATOMIC_SEQ_CST);
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		ex.spans[i] = &ex.recs[i]->span;
		crd_span_view(ex.spans[i], &ex.views[i]);
		ex.view_ptrs[i] = &ex.views[i];
		if (ex.spans[i]->sampled) {
			ex.sampled_spans[ns] = ex.spans[i];
			ex.sampled_views[ns++] = ex.view_ptrs[i];
		}
	}
	b = (struct crd_batch){.resource = &ex.res.list, .spans = ex.spans, .views = ex.view_ptrs,
			       .n = n};
	bs = (struct crd_batch){.resource = &ex.res.list, .spans = ex.sampled_spans,
				.views = ex.sampled_views, .n = ns};
	int rc = 0;
	for (size_t i = 0; i < ex.nsinks; i++) {
		const struct crd_batch *mine = ex.sinks[i]->ops->all_spans ? &b : &bs;
		int r = mine->n ? ex.sinks[i]->ops->export_spans(ex.sinks[i], mine, deadline) : 0;
		if (i == 0)
			rc = r;
	}
	if (rc == 0)
		crd_stat_add(&crd_stats.spans_exported, ns);
	else
		crd_stat_add(&crd_stats.spans_dropped, ns);
	for (size_t i = 0; i < n; i++)
		crd_pool_put(&crd_rec_pool, ex.recs[i]);
	__atomic_store_n(&ex.busy, 0, __ATOMIC_SEQ_CST);
	return n;
}

static void atexit_flush(void)
{
	crd_exporter_exit();
}

static void *run(void *arg)
{
	static int atexit_registered;

	(void)arg;
	crd_guard = 1; /* our I/O is never instrumented */
	if (setup()) {
		crd_error("out of memory starting the exporter; spans will be dropped");
		return NULL;
	}
	/* Registered after the sinks initialised libcurl (and OpenSSL, which
	 * cleans up in its own atexit handler): handlers run last-in
	 * first-out, so our flush runs while TLS still works. */
	if (!atexit_registered) {
		atexit_registered = 1;
		atexit(atexit_flush);
	}
	for (;;) {
		uint64_t want, deadline;

		pthread_mutex_lock(&ex.mu);
		want = ex.flush_req;
		pthread_mutex_unlock(&ex.mu);
		if (want == ex.flush_done && crd_queue_len() < (uint32_t)crd_cfg.max_batch)
			crd_queue_wait(crd_cfg.schedule_delay_ms);

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
			export_batch(deadline);
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
	/* The thread must never take the app's signals. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&th, &attr, run, NULL)) {
		__atomic_store_n(&ex.started, 0, __ATOMIC_RELEASE);
		crd_error("cannot start the exporter thread; spans stay queued");
	} else {
		pthread_setname_np(th, "cruddur-export");
	}
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

int crd_exporter_flush(int timeout_ms)
{
	uint64_t target, deadline = crd_mono_ns() + (uint64_t)timeout_ms * 1000000u;
	struct timespec ts = {(time_t)(deadline / 1000000000u), (long)(deadline % 1000000000u)};
	int rc = 0;

	if (!crd_queue_len() && !__atomic_load_n(&ex.busy, __ATOMIC_SEQ_CST))
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
	ex.nsinks = 0;
}

void crd_exporter_exit(void)
{
	if (__atomic_exchange_n(&ex.exited, 1, __ATOMIC_ACQ_REL))
		return;
	crd_conn_finish_all();
	if (crd_exporter_flush(crd_cfg.export_timeout_ms) == -ETIMEDOUT)
		crd_warn("exit: spans not exported within OTEL_BSP_EXPORT_TIMEOUT=%d ms were dropped",
			 crd_cfg.export_timeout_ms);
}
