/* init.c - the constructor, fork handling, exec and exit flushes.
 *
 * The constructor does only what is safe before main: resolve the real
 * symbols, read the configuration (once: nginx clears its workers'
 * environment), reserve the tables. No threads, no sockets: the exporter
 * thread starts with the first finished span.
 */
#include "init.h"

#include <errno.h>
#include <pthread.h>
#include <unistd.h>

#include "../export/exporter.h"
#include "../export/queue.h"
#include "check.h"
#include "config.h"
#include "conn.h"
#include "crash.h"
#include "guard.h"
#include "ids.h"
#include "log.h"
#include "real.h"
#include "rec.h"
#include "version.h"

__thread int crd_guard __attribute__((tls_model("initial-exec")));
__thread int crd_in_curl __attribute__((tls_model("initial-exec")));
struct crd_pool crd_rec_pool;
int crd_active;
pid_t crd_pid;

/* Records in flight (requests awaiting responses) on top of the queue. */
#define CRD_INFLIGHT_RECS 8192

static void atfork_child(void)
{
	crd_ids_after_fork();
	crd_queue_after_fork_child();
	crd_conn_after_fork_child();
	crd_exporter_after_fork_child();
	crd_pid = getpid();
}

__attribute__((constructor)) static void crd_init(void)
{
	int rc;

	crd_real_resolve();
	crd_log_show_problems = crd_check_requested();
	crd_config_load();
	if (crd_log_show_problems) {
		/* cruddur-run --check: report what was parsed, then stay
		 * inactive in this (trivial) process. */
		crd_check_report();
		return;
	}
	if (crd_cfg.disabled) {
		crd_debug("disabled by OTEL_SDK_DISABLED/CRUDDUR_DISABLED");
		return;
	}
	if (crd_cfg.skipped) {
		/* Fully passive: no tables, so every hook passes straight
		 * through; no exporter, no crash handlers, no fork handler.
		 * LD_PRELOAD stays: what this process execs decides anew. */
		crd_debug("%s: not traced (CRUDDUR_ONLY_CMDS/CRUDDUR_SKIP_CMDS)",
			  program_invocation_short_name);
		return;
	}
	rc = crd_pool_init(&crd_rec_pool, sizeof(struct crd_rec),
			   (uint32_t)crd_cfg.max_queue + CRD_INFLIGHT_RECS);
	if (!rc)
		rc = crd_queue_init((uint32_t)crd_cfg.max_queue, (uint32_t)crd_cfg.max_batch);
	if (!rc)
		rc = crd_conn_init();
	if (rc) {
		crd_error("cannot reserve memory for tracing (%d); tracing disabled", rc);
		return;
	}
	pthread_atfork(NULL, NULL, atfork_child);
	crd_crash_init(); /* Rollbar crash reports: signal handlers (crash.c) */
	crd_pid = getpid();
	crd_active = 1;
	crd_debug("%s %s loaded in %s (pid %d)", CRD_NAME, CRD_VERSION,
		  program_invocation_short_name, (int)crd_pid);
}

__attribute__((destructor)) static void crd_fini(void)
{
	if (crd_active)
		crd_exporter_exit();
}

void crd_before_exec(void)
{
	/* getpid() is a system call (glibc caches no pid since 2.25): in a
	 * vfork child it is the child's, never crd_pid, so the child takes
	 * no lock and waits for no thread in its parent's memory. */
	if (!crd_active || crd_guard || getpid() != crd_pid)
		return;
	crd_guard++;
	if (crd_exporter_flush(crd_cfg.exec_flush_ms))
		crd_debug("exec: flush did not finish within CRUDDUR_EXEC_FLUSH_MS=%d",
			  crd_cfg.exec_flush_ms);
	crd_guard--;
}

void crd_before_exit_now(void)
{
	/* Same conditions as exec: not in a vfork child (its _exit after a
	 * failed exec must stay a bare system call), not on our own paths.
	 * crd_guard is also set by a flush in progress on this thread, so a
	 * signal handler calling _exit during one does not deadlock on the
	 * exporter's mutex. */
	crd_before_exec();
}
