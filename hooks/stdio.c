/* stdio.c - C stdio calls on stdout/stderr, for CRUDDUR_CAPTURE_STDIO.
 *
 * glibc's stdio flushes its buffers with an internal write that never
 * reaches our write hook, so a C program's printf output is only visible
 * here, at the call: each hook calls the real function first, returns its
 * result unchanged, and only then copies the bytes it was given (for the
 * printf family: formats them a second time into a bounded stack buffer;
 * a longer result is captured cut, marked as truncated). Nothing happens
 * unless capture is on and the stream is stdout or stderr.
 *
 * Not seen: functions glibc implements on its internals (perror, err(3),
 * dprintf, putc_unlocked and the other inline _unlocked macros, wide
 * output). Python, node, nginx and most runtimes write with write(2) and
 * are captured by hooks/socket.c.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../preload/stdcap.h"
#include "hook.h"

#undef putc
#undef putchar

/* Captured bytes of one printf-family call; the rest is marked lost.
 * On the app thread's stack, so kept modest. */
#define STDIO_FMT_MAX 4096

/* The fd to capture a write to fp as, or -1. */
static inline int std_fd(FILE *fp)
{
	int fd, e;

	if (__builtin_expect(!crd_cw_cfg.capture_stdio, 1) || !fp || (fp != stdout && fp != stderr))
		return -1;
	e = errno;
	fd = fileno(fp);
	errno = e;
	return crd_stdcap_wants(fd) && !crd_conn_get(fd) ? fd : -1;
}

static void formatted(FILE *fp, int r, const char *fmt, va_list ap)
{
	char buf[STDIO_FMT_MAX];
	int fd, e, n;
	size_t have;
	struct iovec v;

	if (r <= 0 || (fd = std_fd(fp)) < 0)
		return;
	e = errno;
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	errno = e;
	if (n <= 0)
		return;
	have = (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1;
	v = (struct iovec){buf, have};
	crd_stdcap_iov(fd, &v, 1, have, (size_t)n - have);
}

static inline void plain(FILE *fp, const void *p, size_t n)
{
	int fd = n ? std_fd(fp) : -1;
	if (fd >= 0)
		crd_stdcap(fd, p, n);
}

CRD_HOOK size_t fwrite(const void *p, size_t size, size_t nmemb, FILE *fp)
{
	size_t r = CRD_REAL(fwrite)(p, size, nmemb, fp);
	plain(fp, p, r * size);
	return r;
}

CRD_HOOK int fputs(const char *s, FILE *fp)
{
	int r = CRD_REAL(fputs)(s, fp);
	if (r >= 0)
		plain(fp, s, strlen(s));
	return r;
}

CRD_HOOK int puts(const char *s)
{
	int r = CRD_REAL(puts)(s);
	int fd;
	if (r >= 0 && (fd = std_fd(stdout)) >= 0) {
		struct iovec v[2] = {{(void *)s, strlen(s)}, {"\n", 1}};
		crd_stdcap_iov(fd, v, 2, v[0].iov_len + 1, 0);
	}
	return r;
}

static inline int one_char(FILE *fp, int r)
{
	if (r != EOF) {
		unsigned char ch = (unsigned char)r;
		plain(fp, &ch, 1);
	}
	return r;
}

CRD_HOOK int fputc(int c, FILE *fp)
{
	return one_char(fp, CRD_REAL(fputc)(c, fp));
}

CRD_HOOK int putc(int c, FILE *fp)
{
	return one_char(fp, CRD_REAL(putc)(c, fp));
}

CRD_HOOK int putchar(int c)
{
	return one_char(stdout, CRD_REAL(putchar)(c));
}

/* The printf family: va_copy before the real call consumes the list. */
#define FORMATTED(fp, call)                                                                        \
	do {                                                                                       \
		va_list cp;                                                                        \
		va_copy(cp, ap);                                                                   \
		r = call;                                                                          \
		formatted(fp, r, fmt, cp);                                                         \
		va_end(cp);                                                                        \
	} while (0)

CRD_HOOK int vprintf(const char *fmt, va_list ap)
{
	int r;
	FORMATTED(stdout, CRD_REAL(vprintf)(fmt, ap));
	return r;
}

CRD_HOOK int vfprintf(FILE *fp, const char *fmt, va_list ap)
{
	int r;
	FORMATTED(fp, CRD_REAL(vfprintf)(fp, fmt, ap));
	return r;
}

CRD_HOOK int __vprintf_chk(int flag, const char *fmt, va_list ap)
{
	int r;
	FORMATTED(stdout, CRD_REAL(__vprintf_chk)(flag, fmt, ap));
	return r;
}

CRD_HOOK int __vfprintf_chk(FILE *fp, int flag, const char *fmt, va_list ap)
{
	int r;
	FORMATTED(fp, CRD_REAL(__vfprintf_chk)(fp, flag, fmt, ap));
	return r;
}

CRD_HOOK int printf(const char *fmt, ...)
{
	va_list ap;
	int r;
	va_start(ap, fmt);
	FORMATTED(stdout, CRD_REAL(vprintf)(fmt, ap));
	va_end(ap);
	return r;
}

CRD_HOOK int fprintf(FILE *fp, const char *fmt, ...)
{
	va_list ap;
	int r;
	va_start(ap, fmt);
	FORMATTED(fp, CRD_REAL(vfprintf)(fp, fmt, ap));
	va_end(ap);
	return r;
}

CRD_HOOK int __printf_chk(int flag, const char *fmt, ...)
{
	va_list ap;
	int r;
	va_start(ap, fmt);
	FORMATTED(stdout, CRD_REAL(__vprintf_chk)(flag, fmt, ap));
	va_end(ap);
	return r;
}

CRD_HOOK int __fprintf_chk(FILE *fp, int flag, const char *fmt, ...)
{
	va_list ap;
	int r;
	va_start(ap, fmt);
	FORMATTED(fp, CRD_REAL(__vfprintf_chk)(fp, flag, fmt, ap));
	va_end(ap);
	return r;
}
