/* crash.h - native crash capture for Rollbar: handlers, stacks, spool.
 *
 * With ROLLBAR_ACCESS_TOKEN set (and CRUDDUR_ROLLBAR_CRASH not 0), the
 * constructor installs one handler for SIGSEGV, SIGBUS, SIGFPE, SIGILL and
 * SIGABRT (SA_SIGINFO | SA_ONSTACK), keeping the handler each replaced.
 * On a crash the handler, in async-signal-safe code only:
 *
 *   1. lets one crashing thread win (others wait for the process to die),
 *      arms an alarm() watchdog so nothing ever hangs;
 *   2. unwinds the crashed context with libunwind (loaded privately at
 *      init: dlopen RTLD_LOCAL, so its _Unwind_* never reach the app's C++
 *      exception handling), at most CRD_CRASH_MAX_FRAMES frames, each as
 *      module + offset from a module table built before the crash with
 *      dl_iterate_phdr (with build-ids; rebuilt by the exporter thread
 *      after a dlopen; /proc/self/maps as the fallback for a module loaded
 *      since);
 *   3. writes signal, si_code, fault address, thread, the request in
 *      progress on the thread (method, path without query, trace and span
 *      id) and the frames into a preallocated buffer, and that into the
 *      spool directory atomically (a 0600 temporary file renamed into
 *      place, in a 0700 directory we own);
 *   3b. writes the spans still queued to the spool (spanspool.h; also
 *      when Rollbar is off: handlers are installed whenever
 *      CRUDDUR_CRASH_SPANS is on, the default);
 *   4. calls the handler it replaced (if any), then restores the default
 *      action and re-raises, so the process dies by the same signal with
 *      the same exit status and core dump as without the shim. PID 1
 *      (which the kernel protects from its own signals) ends with
 *      _exit(128 + signal).
 *
 * A handler the app installs later replaces ours (the app then decides;
 * we report nothing). Alternate stacks: the main thread gets one at init;
 * other threads get one from a pool reserved at init (mmap) when they
 * first serve a request (crd_crash_thread_start(), from the hook path: one
 * sigaltstack call, no allocation); a thread's own alternate stack is never
 * replaced. A thread without one runs the handler on its own stack (only a
 * stack overflow then goes unreported).
 *
 * Spool format (text, one record per line; see crd_crash_parse()):
 *   cruddur-crash 1 / time_ns / pid / tid / signal N NAME / code N NAME /
 *   addr 0xHEX / thread NAME / exe PATH / service / environment /
 *   code_version / host / request TRACE SPAN METHOD PATH /
 *   frame 0xPC MODIDX 0xOFFSET s|c / module IDX BUILDID|- v|f PATH / end
 * Offsets are ELF addresses ('v', what addr2line -e PATH takes) already
 * moved to the call instruction for return addresses ('c' frames), or
 * file offsets ('f': a module seen only in /proc/self/maps).
 */
#ifndef CRD_CRASH_H
#define CRD_CRASH_H

#include <stddef.h>
#include <stdint.h>

/* Frames unwound at most (deep recursion is cut, the crash site kept). */
#define CRD_CRASH_MAX_FRAMES 128
/* The watchdog: a crash handler still running after this many seconds
 * ends the process (default action, then _exit). */
#define CRD_CRASH_WATCHDOG_S 10

/* Spool file names: crash-<time ns>-<pid>-<tid>.crd; a file being written
 * is .tmp-<name>; a file claimed by a sender is <name>.sending-<pid>. */
#define CRD_SPOOL_PREFIX "crash-"
#define CRD_SPOOL_SUFFIX ".crd"
#define CRD_SPOOL_TMP	 ".tmp-"
#define CRD_SPOOL_CLAIM	 ".sending-"
#define CRD_SPOOL_MAGIC	 "cruddur-crash 1"

/* Install the handlers (constructor; no-op unless Rollbar crash capture
 * is configured). */
void crd_crash_init(void);

/* The calling thread serves its first request: give it an alternate
 * signal stack from the pool unless it has one. Hook path: no
 * allocation, a few system calls once per thread. */
void crd_crash_thread_start(void);

/* Exporter thread: rebuild the module table if libraries were loaded or
 * unloaded since the last build (dl_iterate_phdr's adds/subs counters). */
void crd_crash_modules_refresh(void);

/* Were handlers installed (tests, debug)? */
int crd_crash_active(void);

/* "SIGSEGV" etc., or NULL. Async-signal-safe. */
const char *crd_signal_name(int signo);
/* "SEGV_MAPERR", "SI_TKILL" etc., or NULL. Async-signal-safe. */
const char *crd_sigcode_name(int signo, int code);

#endif
