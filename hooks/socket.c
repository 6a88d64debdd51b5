/* socket.c - interposers for socket I/O and descriptor life.
 *
 * Thin by design: pass through, then hand the moved bytes to conn.c.
 * MSG_PEEK reads are not consumption and are not reported; MSG_TRUNC reads
 * on a stream discard bytes we cannot see, so tracking stops.
 */
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "hook.h"
#include "../preload/init.h"
#include "../preload/stdcap.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* Report n bytes the app consumed from c. */
static inline void rx(struct crd_conn *c, const void *buf, ssize_t n)
{
	int e = errno;
	crd_conn_rx(c, buf, (size_t)n);
	errno = e;
}

static inline void tx(struct crd_conn *c, const void *buf, ssize_t n)
{
	int e = errno;
	crd_conn_tx(c, buf, (size_t)n);
	errno = e;
}

static inline void rx_flags(struct crd_conn *c, const void *buf, ssize_t n, int flags)
{
	int e = errno;
	if (flags & MSG_PEEK)
		; /* not consumed: the app will read these bytes again */
	else if (flags & MSG_TRUNC)
		crd_conn_rx_lost(c);
	else
		crd_conn_rx(c, buf, (size_t)n);
	errno = e;
}

/* A vfork child (or any clone sharing our memory) runs in its parent's
 * memory: the connection table there is the parent's, live, and must not
 * change when the child closes what it inherited (Python's subprocess
 * closes every inherited descriptor with close_range in a vfork child,
 * which ended the parent's requests in progress). getpid() is a system
 * call (no pid cache in glibc >= 2.25); it is made only when a followed
 * descriptor is closed or replaced, never for other descriptors. */
static inline int shared_memory_child(void)
{
	return getpid() != crd_pid;
}

static void accepted(int lfd, int fd, struct sockaddr *addr, socklen_t *len, socklen_t cap)
{
	int e = errno;
	socklen_t l = 0;

	if (crd_guard || !crd_fdtab_size)
		return;
	if (addr && len)
		l = *len < cap ? *len : cap; /* *len may exceed what fit */
	crd_conn_accepted(lfd, fd, addr, l);
	errno = e;
}

CRD_HOOK int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
	socklen_t cap = (addr && len) ? *len : 0;
	int r = CRD_REAL(accept)(fd, addr, len);
	if (r >= 0)
		accepted(fd, r, addr, len, cap);
	return r;
}

CRD_HOOK int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
	socklen_t cap = (addr && len) ? *len : 0;
	int r = CRD_REAL(accept4)(fd, addr, len, flags);
	if (r >= 0)
		accepted(fd, r, addr, len, cap);
	return r;
}

CRD_HOOK int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	int r = CRD_REAL(connect)(fd, addr, len);
	/* A new outgoing connection: a client connection to follow, unless
	 * it is ours or libcurl's inside curl_easy_perform (that one has its
	 * own span). Non-blocking connects count from EINPROGRESS. */
	if ((r == 0 || errno == EINPROGRESS) && crd_fdtab_size) {
		int e = errno;
		if (crd_guard || crd_in_curl)
			crd_conn_fd_reset(fd);
		else
			crd_conn_connected(fd, addr, len);
		errno = e;
	}
	return r;
}

CRD_HOOK int close(int fd)
{
	if (crd_conn_get(fd) && !shared_memory_child()) {
		int e = errno;
		crd_conn_fd_closing(fd);
		errno = e;
	}
	return CRD_REAL(close)(fd);
}

CRD_HOOK int close_range(unsigned int first, unsigned int last, int flags)
{
	if (!CRD_REAL(close_range)) {
		errno = ENOSYS;
		return -1;
	}
	if (!(flags & CLOSE_RANGE_CLOEXEC)) {
		int e = errno, checked = 0;
		for (unsigned fd = first; fd <= last && fd < crd_fdtab_size; fd++) {
			if (!crd_conn_get((int)fd))
				continue;
			if (!checked++ && shared_memory_child())
				break; /* one getpid() per call */
			crd_conn_fd_closing((int)fd);
		}
		errno = e;
	}
	return CRD_REAL(close_range)(first, last, flags);
}

static int duped(int oldfd, int r)
{
	if (r >= 0 && (crd_conn_get(oldfd) || crd_conn_get(r)) && !shared_memory_child()) {
		int e = errno;
		crd_conn_fd_dup(oldfd, r);
		errno = e;
	}
	return r;
}

CRD_HOOK int dup(int oldfd)
{
	return duped(oldfd, CRD_REAL(dup)(oldfd));
}

CRD_HOOK int dup2(int oldfd, int newfd)
{
	return duped(oldfd, CRD_REAL(dup2)(oldfd, newfd));
}

CRD_HOOK int dup3(int oldfd, int newfd, int flags)
{
	return duped(oldfd, CRD_REAL(dup3)(oldfd, newfd, flags));
}

/* ---- reads ---- */

CRD_HOOK ssize_t read(int fd, void *buf, size_t n)
{
	ssize_t r = CRD_REAL(read)(fd, buf, n);
	struct crd_conn *c;
	if (r > 0 && (c = crd_hook_conn(fd)))
		rx(c, buf, r);
	return r;
}

CRD_HOOK ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
	ssize_t r = CRD_REAL(__read_chk)(fd, buf, n, buflen);
	struct crd_conn *c;
	if (r > 0 && (c = crd_hook_conn(fd)))
		rx(c, buf, r);
	return r;
}

CRD_HOOK ssize_t readv(int fd, const struct iovec *iov, int iovcnt)
{
	ssize_t r = CRD_REAL(readv)(fd, iov, iovcnt);
	struct crd_conn *c;
	if (r > 0 && (c = crd_hook_conn(fd))) {
		int e = errno;
		crd_conn_rx_iov(c, iov, (size_t)iovcnt, (size_t)r);
		errno = e;
	}
	return r;
}

CRD_HOOK ssize_t recv(int fd, void *buf, size_t n, int flags)
{
	ssize_t r = CRD_REAL(recv)(fd, buf, n, flags);
	struct crd_conn *c;
	if (r > 0 && (c = crd_hook_conn(fd)))
		rx_flags(c, buf, r, flags);
	return r;
}

CRD_HOOK ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags)
{
	ssize_t r = CRD_REAL(__recv_chk)(fd, buf, n, buflen, flags);
	struct crd_conn *c;
	if (r > 0 && (c = crd_hook_conn(fd)))
		rx_flags(c, buf, r, flags);
	return r;
}

CRD_HOOK ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *addr,
			  socklen_t *len)
{
	ssize_t r = CRD_REAL(recvfrom)(fd, buf, n, flags, addr, len);
	struct crd_conn *c;
	if (r > 0 && (c = crd_hook_conn(fd)))
		rx_flags(c, buf, r, flags);
	return r;
}

CRD_HOOK ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags,
				struct sockaddr *addr, socklen_t *len)
{
	ssize_t r = CRD_REAL(__recvfrom_chk)(fd, buf, n, buflen, flags, addr, len);
	struct crd_conn *c;
	if (r > 0 && (c = crd_hook_conn(fd)))
		rx_flags(c, buf, r, flags);
	return r;
}

CRD_HOOK ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	ssize_t r = CRD_REAL(recvmsg)(fd, msg, flags);
	struct crd_conn *c;
	if (r > 0 && (c = crd_hook_conn(fd)) && !(flags & MSG_PEEK)) {
		int e = errno;
		if (flags & MSG_TRUNC)
			crd_conn_rx_lost(c);
		else
			crd_conn_rx_iov(c, msg->msg_iov, msg->msg_iovlen, (size_t)r);
		errno = e;
	}
	return r;
}

/* ---- writes ---- */

/* Client connections about to start a request go through crd_conn_send,
 * which may add trace headers; everything else is a plain pass-through. */
static inline struct crd_conn *injecting(int fd)
{
	struct crd_conn *c = crd_hook_conn(fd);
	return (c && crd_conn_wants_inject(c)) ? c : NULL;
}

CRD_HOOK ssize_t write(int fd, const void *buf, size_t n)
{
	struct crd_conn *c = injecting(fd);
	if (c) {
		struct iovec v = {(void *)buf, n};
		return crd_conn_send(c, fd, &v, 1, NULL, 0);
	}
	ssize_t r = CRD_REAL(write)(fd, buf, n);
	if (r > 0 && (c = crd_hook_conn(fd)))
		tx(c, buf, r);
	else if (r > 0 && crd_stdcap_wants(fd))
		crd_stdcap(fd, buf, (size_t)r);
	return r;
}

CRD_HOOK ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
	struct crd_conn *c = iovcnt > 0 ? injecting(fd) : NULL;
	if (c)
		return crd_conn_send(c, fd, iov, (size_t)iovcnt, NULL, 0);
	ssize_t r = CRD_REAL(writev)(fd, iov, iovcnt);
	if (r > 0 && (c = crd_hook_conn(fd))) {
		int e = errno;
		crd_conn_tx_iov(c, iov, (size_t)iovcnt, (size_t)r);
		errno = e;
	} else if (r > 0 && crd_stdcap_wants(fd)) {
		crd_stdcap_iov(fd, iov, (size_t)iovcnt, (size_t)r, 0);
	}
	return r;
}

CRD_HOOK ssize_t send(int fd, const void *buf, size_t n, int flags)
{
	struct crd_conn *c = injecting(fd);
	if (c) {
		struct iovec v = {(void *)buf, n};
		struct msghdr m = {.msg_iov = &v, .msg_iovlen = 1};
		return crd_conn_send(c, fd, &v, 1, &m, flags);
	}
	ssize_t r = CRD_REAL(send)(fd, buf, n, flags);
	if (r > 0 && (c = crd_hook_conn(fd)))
		tx(c, buf, r);
	return r;
}

CRD_HOOK ssize_t sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *addr,
			socklen_t len)
{
	/* A destination on a connected stream socket is ignored (or
	 * EISCONN): only the no-address form may carry our headers. */
	struct crd_conn *c = addr ? NULL : injecting(fd);
	if (c) {
		struct iovec v = {(void *)buf, n};
		struct msghdr m = {.msg_iov = &v, .msg_iovlen = 1};
		return crd_conn_send(c, fd, &v, 1, &m, flags);
	}
	ssize_t r = CRD_REAL(sendto)(fd, buf, n, flags, addr, len);
	if (r > 0 && (c = crd_hook_conn(fd)))
		tx(c, buf, r);
	return r;
}

CRD_HOOK ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	struct crd_conn *c = (msg && !msg->msg_name && msg->msg_iovlen > 0) ? injecting(fd) : NULL;
	if (c)
		return crd_conn_send(c, fd, msg->msg_iov, msg->msg_iovlen, msg, flags);
	ssize_t r = CRD_REAL(sendmsg)(fd, msg, flags);
	if (r > 0 && (c = crd_hook_conn(fd))) {
		int e = errno;
		crd_conn_tx_iov(c, msg->msg_iov, msg->msg_iovlen, (size_t)r);
		errno = e;
	}
	return r;
}

static void sent_opaque(int fd, ssize_t r)
{
	struct crd_conn *c;
	if (r > 0 && (c = crd_hook_conn(fd))) {
		int e = errno;
		crd_conn_tx_opaque(c, (size_t)r);
		errno = e;
	}
}

CRD_HOOK ssize_t sendfile(int out_fd, int in_fd, off_t *offset, size_t count)
{
	ssize_t r = CRD_REAL(sendfile)(out_fd, in_fd, offset, count);
	sent_opaque(out_fd, r);
	return r;
}

CRD_HOOK ssize_t sendfile64(int out_fd, int in_fd, off_t *offset, size_t count)
{
	ssize_t r = CRD_REAL(sendfile64)(out_fd, in_fd, offset, count);
	sent_opaque(out_fd, r);
	return r;
}
