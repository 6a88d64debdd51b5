/* hook.h - what every interposer needs, and nothing more.
 *
 * Contract for a hook: call the real function first with the caller's
 * arguments unchanged, return its result unchanged, and leave errno as the
 * real call left it. Only bytes the real call actually moved (its return
 * value) are reported, and only on tracked fds, never while the calling
 * thread is doing our own I/O (crd_guard).
 */
#ifndef CRD_HOOK_H
#define CRD_HOOK_H

#include <errno.h>

#include "../preload/conn.h"
#include "../preload/guard.h"
#include "../preload/real.h"

#define CRD_HOOK __attribute__((visibility("default")))

/* The connection to report to, or NULL: the fast path for untracked fds
 * is one compare and one load. */
static inline struct crd_conn *crd_hook_conn(int fd)
{
	struct crd_conn *c = crd_conn_get(fd);
	return (c && !crd_guard) ? c : NULL;
}

#endif
