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

/* Count the NULL-terminated variadic list after arg0 (execl family). */
#define COUNT_ARGS(arg0, n)                                                                        \
	do {                                                                                       \
		va_list ap_;                                                                       \
		va_start(ap_, arg0);                                                               \
		for (n = 1; va_arg(ap_, char *); n++)                                              \
			;                                                                          \
		va_end(ap_);                                                                       \
	} while (0)

CRD_HOOK int execl(const char *path, const char *arg0, ...)
{
	size_t n;
	COUNT_ARGS(arg0, n);
	char *argv[n + 1];
	va_list ap;
	argv[0] = (char *)arg0;
	va_start(ap, arg0);
	for (size_t i = 1; i <= n; i++)
		argv[i] = va_arg(ap, char *);
	va_end(ap);
	crd_before_exec();
	return CRD_REAL(execv)(path, argv);
}

CRD_HOOK int execlp(const char *file, const char *arg0, ...)
{
	size_t n;
	COUNT_ARGS(arg0, n);
	char *argv[n + 1];
	va_list ap;
	argv[0] = (char *)arg0;
	va_start(ap, arg0);
	for (size_t i = 1; i <= n; i++)
		argv[i] = va_arg(ap, char *);
	va_end(ap);
	crd_before_exec();
	return CRD_REAL(execvp)(file, argv);
}

CRD_HOOK int execle(const char *path, const char *arg0, ...)
{
	size_t n;
	COUNT_ARGS(arg0, n);
	char *argv[n + 1];
	char *const *envp;
	va_list ap;
	argv[0] = (char *)arg0;
	va_start(ap, arg0);
	for (size_t i = 1; i <= n; i++)
		argv[i] = va_arg(ap, char *);
	envp = va_arg(ap, char *const *);
	va_end(ap);
	crd_before_exec();
	return CRD_REAL(execve)(path, argv, envp);
}
