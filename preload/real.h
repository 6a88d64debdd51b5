/* real.h - the one table of real (next-in-chain) libc symbols.
 *
 * Every hook calls the real function through this table, and so does every
 * piece of the library that needs I/O: nothing inside libcruddur calls a
 * hooked name directly (tests/integration/test_symbols.py checks the
 * relocations). Resolved with dlsym(RTLD_NEXT) in the constructor, and
 * lazily on first use, because hooks run before our constructor when other
 * libraries' constructors do I/O.
 *
 * The curl_* entries are the app's libcurl (NULL when it has none: their
 * hooks are then never called); our exporter's private libcurl is a
 * separate, RTLD_LOCAL copy (export/curl_dl.c) these never reach.
 *
 * Thread safety: resolution is idempotent; pointers are written with
 * relaxed atomics and every resolution yields the same value, so a race
 * only costs a second dlsym.
 */
#ifndef CRD_REAL_H
#define CRD_REAL_H

#include <curl/curl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#define CRD_REAL_FUNCS(X)                                                                          \
	X(int, accept, (int, struct sockaddr *, socklen_t *))                                      \
	X(int, accept4, (int, struct sockaddr *, socklen_t *, int))                                \
	X(int, connect, (int, const struct sockaddr *, socklen_t))                                 \
	X(int, close, (int))                                                                       \
	X(int, close_range, (unsigned int, unsigned int, int))                                     \
	X(int, dup, (int))                                                                         \
	X(int, dup2, (int, int))                                                                   \
	X(int, dup3, (int, int, int))                                                              \
	X(ssize_t, read, (int, void *, size_t))                                                    \
	X(ssize_t, __read_chk, (int, void *, size_t, size_t))                                      \
	X(ssize_t, readv, (int, const struct iovec *, int))                                        \
	X(ssize_t, recv, (int, void *, size_t, int))                                               \
	X(ssize_t, __recv_chk, (int, void *, size_t, size_t, int))                                 \
	X(ssize_t, recvfrom, (int, void *, size_t, int, struct sockaddr *, socklen_t *))           \
	X(ssize_t, __recvfrom_chk,                                                                 \
	  (int, void *, size_t, size_t, int, struct sockaddr *, socklen_t *))                      \
	X(ssize_t, recvmsg, (int, struct msghdr *, int))                                           \
	X(ssize_t, write, (int, const void *, size_t))                                             \
	X(ssize_t, writev, (int, const struct iovec *, int))                                       \
	X(ssize_t, send, (int, const void *, size_t, int))                                         \
	X(ssize_t, sendto, (int, const void *, size_t, int, const struct sockaddr *, socklen_t))   \
	X(ssize_t, sendmsg, (int, const struct msghdr *, int))                                     \
	X(ssize_t, sendfile, (int, int, off_t *, size_t))                                          \
	X(ssize_t, sendfile64, (int, int, off_t *, size_t))                                        \
	X(int, execve, (const char *, char *const[], char *const[]))                               \
	X(int, execv, (const char *, char *const[]))                                               \
	X(int, execvp, (const char *, char *const[]))                                              \
	X(int, execvpe, (const char *, char *const[], char *const[]))                              \
	X(int, fexecve, (int, char *const[], char *const[]))                                       \
	X(int, execveat, (int, const char *, char *const[], char *const[], int))                   \
	X(void, _exit, (int))                                                                      \
	X(CURLcode, curl_easy_setopt, (CURL *, CURLoption, ...))                                   \
	X(CURLcode, curl_easy_perform, (CURL *))                                                   \
	X(CURLcode, curl_easy_getinfo, (CURL *, CURLINFO, ...))                                    \
	X(void, curl_easy_reset, (CURL *))                                                         \
	X(void, curl_easy_cleanup, (CURL *))                                                       \
	X(CURL *, curl_easy_duphandle, (CURL *))                                                   \
	X(struct curl_slist *, curl_slist_append, (struct curl_slist *, const char *))             \
	X(void, curl_slist_free_all, (struct curl_slist *))                                        \
	X(size_t, fwrite, (const void *, size_t, size_t, FILE *))                                  \
	X(int, fputs, (const char *, FILE *))                                                      \
	X(int, puts, (const char *))                                                               \
	X(int, fputc, (int, FILE *))                                                               \
	X(int, putc, (int, FILE *))                                                                \
	X(int, putchar, (int))                                                                     \
	X(int, vprintf, (const char *, va_list))                                                   \
	X(int, vfprintf, (FILE *, const char *, va_list))                                          \
	X(int, __vprintf_chk, (int, const char *, va_list))                                        \
	X(int, __vfprintf_chk, (FILE *, int, const char *, va_list))

#define CRD_REAL_FIELD(ret, name, args) ret(*name) args;
struct crd_real_table {
	CRD_REAL_FUNCS(CRD_REAL_FIELD)
};
#undef CRD_REAL_FIELD

extern struct crd_real_table crd_real_tab;

/* Resolve every symbol (idempotent). Safe before main and in any thread. */
void crd_real_resolve(void);

/* CRD_REAL(read)(fd, buf, n): the real read, resolving the table first if
 * this is the very first call (before our constructor). */
#define CRD_REAL(name)                                                                             \
	(__builtin_expect(crd_real_tab.name != NULL, 1) ? crd_real_tab.name                        \
							: (crd_real_resolve(), crd_real_tab.name))

#endif
