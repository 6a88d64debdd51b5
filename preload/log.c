/* log.c - one-line diagnostics on stderr (see log.h). */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "guard.h"
#include "real.h"

int crd_log_level = CRD_LOG_WARN;
unsigned crd_log_problems;
int crd_log_show_problems;

/* A diagnostic longer than this is cut; one line is what we promise. */
#define CRD_LOG_LINE_MAX 512
/* Our own credentials registered at load (OTLP header values, Honeycomb,
 * Rollbar and AWS keys): a handful; room to spare. */
#define CRD_LOG_SECRETS_MAX 32
/* Shorter values are not scrubbed: "1" or "on" would shred every line,
 * and no credential we know of is this short. */
#define CRD_LOG_SECRET_MIN 6

static char *secrets[CRD_LOG_SECRETS_MAX];
static size_t nsecrets;

void crd_log_secret(const char *value)
{
	size_t n = __atomic_load_n(&nsecrets, __ATOMIC_ACQUIRE);

	if (!value || strlen(value) < CRD_LOG_SECRET_MIN || n == CRD_LOG_SECRETS_MAX)
		return;
	for (size_t i = 0; i < n; i++)
		if (!strcmp(secrets[i], value))
			return;
	/* Load time only (before any thread of ours); never freed. */
	if ((secrets[n] = strdup(value)))
		__atomic_store_n(&nsecrets, n + 1, __ATOMIC_RELEASE);
}

/* Replace len bytes at `at` of line (n bytes, room for cap) by repl;
 * what no longer fits is cut. Returns the new length. */
static size_t splice(char *line, size_t n, size_t cap, size_t at, size_t len, const char *repl)
{
	size_t rl = strlen(repl), tail = n - at - len;

	if (at + rl > cap)
		rl = cap - at;
	if (at + rl + tail > cap)
		tail = cap - at - rl;
	memmove(line + at + rl, line + at + len, tail);
	memcpy(line + at, repl, rl);
	n = at + rl + tail;
	line[n] = 0;
	return n;
}

size_t crd_log_scrub(char *line, size_t n, size_t cap)
{
	size_t ns = __atomic_load_n(&nsecrets, __ATOMIC_ACQUIRE), from;
	char *p;

	/* Every registered credential, wherever a message or an echoed
	 * answer put it. */
	for (size_t i = 0; i < ns; i++) {
		size_t l = strlen(secrets[i]);
		for (from = 0; (p = strstr(line + from, secrets[i]));) {
			n = splice(line, n, cap, (size_t)(p - line), l, "REDACTED");
			from = (size_t)(p - line) + 8 <= n ? (size_t)(p - line) + 8 : n;
		}
	}
	/* user:password@ in any URL a message names (a bad setting echoed). */
	for (from = 0; (p = strstr(line + from, "://"));) {
		size_t a = (size_t)(p - line) + 3, end = a + strcspn(line + a, "/?# \t\"'<>"),
		       at = 0;
		for (size_t c = a; c < end; c++)
			if (line[c] == '@')
				at = c;
		if (at && !(at - a == 17 && !memcmp(line + a, "REDACTED:REDACTED", 17))) {
			n = splice(line, n, cap, a, at - a, "REDACTED:REDACTED");
			end = a + 18 <= n ? a + 18 : n;
		}
		from = end;
	}
	return n;
}

void crd_log_vline(char *line, size_t cap, const char *prefix, const char *fmt, va_list ap)
{
	size_t p = strlen(prefix), n;

	memcpy(line, prefix, p);
	vsnprintf(line + p, cap - p - 1, fmt, ap);
	n = crd_log_scrub(line, strlen(line), cap - 2);
	/* One line, always: fold any newline a value smuggled in. */
	for (size_t i = p; i < n; i++)
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	line[n++] = '\n';
	crd_guard++;
	(void)!CRD_REAL(write)(2, line, n);
	crd_guard--;
}

void crd_log(int level, const char *fmt, ...)
{
	char line[CRD_LOG_LINE_MAX];
	int saved_errno = errno;
	va_list ap;

	if (level >= CRD_LOG_ERROR && level <= CRD_LOG_WARN)
		__atomic_add_fetch(&crd_log_problems, 1, __ATOMIC_RELAXED);
	if (level > crd_log_level && !(crd_log_show_problems && level <= CRD_LOG_WARN))
		return;
	va_start(ap, fmt);
	crd_log_vline(line, sizeof(line), "cruddur: ", fmt, ap);
	va_end(ap);
	errno = saved_errno;
}
