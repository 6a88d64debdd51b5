/* exec.c - flush (bounded) before the process image is replaced.
 *
 * glibc's exec* functions call the execve syscall internally, not through
 * the PLT, so each public variant is hooked. The l-variants build their
 * argv on the stack and go through the v-variants' real functions.
 */
#include <stdarg.h>
#include <unistd.h>

#include "../preload/init.h"
#include "hook.h"

CRD_HOOK int execve(const char *path, char *const argv[], char *const envp[])
{
	crd_before_exec();
	return CRD_REAL(execve)(path, argv, envp);
}

CRD_HOOK int execv(const char *path, char *const argv[])
{
	crd_before_exec();
	return CRD_REAL(execv)(path, argv);
}

CRD_HOOK int execvp(const char *file, char *const argv[])
{
	crd_before_exec();
	return CRD_REAL(execvp)(file, argv);
}

CRD_HOOK int execvpe(const char *file, char *const argv[], char *const envp[])
{
	crd_before_exec();
	return CRD_REAL(execvpe)(file, argv, envp);
}

CRD_HOOK int fexecve(int fd, char *const argv[], char *const envp[])
{
	crd_before_exec();
	return CRD_REAL(fexecve)(fd, argv, envp);
}

CRD_HOOK int execveat(int dirfd, const char *path, char *const argv[], char *const envp[],
		      int flags)
{
	if (!CRD_REAL(execveat)) {
		errno = ENOSYS;
		return -1;
	}
	crd_before_exec();
	return CRD_REAL(execveat)(dirfd, path, argv, envp, flags);
}

/* The execl family: the NULL-terminated variadic list after arg0 becomes
 * an argv on the caller's stack (exec must not allocate: it may run in a
 * vfork child). ARGV_FROM_VA declares `argv` and leaves `ap` just past
 * the NULL (execle's envp follows it). */
#define ARGV_FROM_VA(arg0)                                                                         \
	size_t n_ = 1;                                                                             \
	va_list ap;                                                                                \
	va_start(ap, arg0);                                                                        \
	while (va_arg(ap, char *))                                                                 \
		n_++;                                                                              \
	va_end(ap);                                                                                \
	char *argv[n_ + 1];                                                                        \
	argv[0] = (char *)arg0;                                                                    \
	va_start(ap, arg0);                                                                        \
	for (size_t i_ = 1; i_ <= n_; i_++)                                                        \
	argv[i_] = va_arg(ap, char *)

CRD_HOOK int execl(const char *path, const char *arg0, ...)
{
	ARGV_FROM_VA(arg0);
	va_end(ap);
	crd_before_exec();
	return CRD_REAL(execv)(path, argv);
}

CRD_HOOK int execlp(const char *file, const char *arg0, ...)
{
	ARGV_FROM_VA(arg0);
	va_end(ap);
	crd_before_exec();
	return CRD_REAL(execvp)(file, argv);
}

CRD_HOOK int execle(const char *path, const char *arg0, ...)
{
	ARGV_FROM_VA(arg0);
	char *const *envp = va_arg(ap, char *const *);
	va_end(ap);
	crd_before_exec();
	return CRD_REAL(execve)(path, argv, envp);
}

/* _exit/_Exit skip atexit handlers and destructors, so a process ending
 * this way (socketserver.ForkingMixIn and multiprocessing children end
 * with os._exit) would lose what it queued: flush first, with the exec
 * budget. crd_before_exit_now() does nothing in a vfork child (its _exit
 * after a failed exec), on our own paths, or with nothing queued. glibc's
 * internal exits (posix_spawn's child, exit() itself) do not come here. */
CRD_HOOK void _exit(int status)
{
	crd_before_exit_now();
	CRD_REAL(_exit)(status);
	__builtin_unreachable();
}

CRD_HOOK void _Exit(int status)
{
	crd_before_exit_now();
	CRD_REAL(_exit)(status); /* _Exit is _exit (C99 spelling) */
	__builtin_unreachable();
}
