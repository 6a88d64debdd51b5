/* conn.h - the per-fd connection table and the HTTP exchange state machine.
 *
 * Hooks report socket events here; this module turns the bytes into span
 * records. One table slot per fd number (sized from RLIMIT_NOFILE, a
 * virtual reservation touched only where fds are used) holds a pointer to a
 * pooled struct crd_conn, or 0. A connection is created at accept() (server
 * side) and destroyed at close() of its last fd (dup'ed fds share it), so
 * a reused fd number never sees a previous connection's state.
 *
 * Per connection: a request parser fed by what the app reads, a response
 * parser fed by what it writes, and a FIFO of requests awaiting their
 * response (pipelining). A span starts at the first byte of a request and
 * ends at the last byte of its response, or at close.
 *
 * Thread safety: each connection has its own small spin lock (a reader and
 * a writer thread may share a socket); no global lock. If the lock cannot
 * be had quickly (e.g. a hook inside a signal handler that interrupted the
 * lock holder) the connection is given up rather than risking a deadlock.
 * Signal safety: no allocation, no stdio; atomics and the pools only.
 */
#ifndef CRD_CONN_H
#define CRD_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

struct crd_conn;

extern uintptr_t *crd_fdtab;
extern unsigned crd_fdtab_size;

/* The connection tracked on fd, or NULL (fast: one bounds check and load). */
static inline struct crd_conn *crd_conn_get(int fd)
{
	uintptr_t e;

	if ((unsigned)fd >= crd_fdtab_size)
		return NULL;
	e = __atomic_load_n(&crd_fdtab[fd], __ATOMIC_ACQUIRE);
	return (e & 1) ? NULL : (struct crd_conn *)e;
}

/* Table and pools; called once from the constructor. 0 or -errno. */
int crd_conn_init(void);

/* accept()/accept4() returned fd from listen_fd. peer may be NULL. */
void crd_conn_accepted(int listen_fd, int fd, const struct sockaddr *peer, socklen_t peerlen);

/* connect() (or its EINPROGRESS start) on fd: a client connection when it
 * is a stream socket. */
void crd_conn_connected(int fd, const struct sockaddr *addr, socklen_t len);

/* Client connections: would the next write start a request that should get
 * our trace headers (or finish sending ones already begun)? */
int crd_conn_wants_inject(struct crd_conn *c);

/* Send for the app, inserting trace headers after the request line when
 * due (see inject.h). iov/cnt are the app's bytes; msg NULL means writev,
 * else sendmsg with msg's name/control and flags. Returns what the app's
 * call must return, counting only the app's bytes, errno as the real call
 * left it; reports the app's bytes to the state machine. */
ssize_t crd_conn_send(struct crd_conn *c, int fd, const struct iovec *iov, size_t cnt,
		      const struct msghdr *msg, int flags);

/* Bytes the app consumed from / handed to a tracked connection. */
void crd_conn_rx(struct crd_conn *c, const void *buf, size_t n);
void crd_conn_rx_iov(struct crd_conn *c, const struct iovec *iov, size_t iovcnt, size_t n);
void crd_conn_tx(struct crd_conn *c, const void *buf, size_t n);
void crd_conn_tx_iov(struct crd_conn *c, const struct iovec *iov, size_t iovcnt, size_t n);
/* n bytes sent that we cannot see (sendfile): counted as body bytes. */
void crd_conn_tx_opaque(struct crd_conn *c, size_t n);

/* Bytes were consumed that we could not see (MSG_TRUNC): stop tracking. */
void crd_conn_rx_lost(struct crd_conn *c);

/* fd is about to be closed (or replaced by dup2/dup3): detach it. */
void crd_conn_fd_closing(int fd);
/* newfd now refers to the same socket as oldfd (dup family). */
void crd_conn_fd_dup(int oldfd, int newfd);
/* connect() on fd: whatever fd held before is gone. */
void crd_conn_fd_reset(int fd);

/* Process exit: finish every span whose request head was seen. */
void crd_conn_finish_all(void);

/* Fork child (the pthread_atfork handler; one thread): requests in
 * progress at the fork are the parent's to report. Their records are
 * freed without a span and their connections ignored in the child until
 * closed, so a child that closes inherited descriptors before exec
 * (subprocess) or exits reports nothing twice. Idle connections stay
 * followed: a prefork server's child serves them. */
void crd_conn_after_fork_child(void);

/* Records outside connections (curl transfers). */
struct crd_rec;
/* A new span record of kind CRD_KIND_*, started now; NULL when the pool is
 * empty (counted as a drop). The caller initialises span.req. */
struct crd_rec *crd_rec_new(int kind);
/* Client span: parent = the one server request this thread serves, else a
 * new trace; new span id; sampling decided. */
void crd_client_context(struct crd_rec *r);
/* End the span (now, unless end_ns is set) and queue it if sampled. */
void crd_rec_finish(struct crd_rec *r);

#endif
