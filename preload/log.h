/* log.h - the library's only voice: one-line `cruddur:` messages on stderr.
 *
 * Quiet by default (CRUDDUR_LOG=warn): only problems the user must act on.
 * CRUDDUR_LOG=debug adds what the library is doing. Lines are formatted on
 * the stack and written with one real write(2), under the I/O guard, so the
 * app's stderr capture (and our own hooks) never see half a line.
 *
 * Thread safety: any thread. Not async-signal-safe (vsnprintf).
 */
#ifndef CRD_LOG_H
#define CRD_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum crd_log_level { CRD_LOG_OFF = 0, CRD_LOG_ERROR, CRD_LOG_WARN, CRD_LOG_INFO, CRD_LOG_DEBUG };

extern int crd_log_level;
/* Warnings and errors logged so far, printed or not (atomic adds): the
 * problem count of the CRUDDUR_CHECK=1 report (check.c). */
extern unsigned crd_log_problems;
/* Set by the constructor under CRUDDUR_CHECK=1: warnings and errors are
 * printed whatever CRUDDUR_LOG says. */
extern int crd_log_show_problems;

void crd_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Write prefix + the formatted message to stderr as one line, through
 * line[cap] (cut to fit), scrubbed of our credentials (crd_log_scrub),
 * newlines folded; regardless of the level. crd_log()'s writer, shared
 * with the CRUDDUR_CHECK report (check.c). */
void crd_log_vline(char *line, size_t cap, const char *prefix, const char *fmt, va_list ap);

/* Secrets (issue #8): register one of our own credentials (load time,
 * before the exporter starts); every later line has it replaced by
 * REDACTED, and any URL's user:password@ by REDACTED:REDACTED@. Values
 * shorter than 6 bytes are not registered. */
void crd_log_secret(const char *value);
/* The scrub crd_log() applies: line holds n bytes (NUL-terminated) in a
 * buffer of cap + 1; returns the new length. Exposed for the tests. */
size_t crd_log_scrub(char *line, size_t n, size_t cap);

#define crd_error(...) crd_log(CRD_LOG_ERROR, __VA_ARGS__)
#define crd_warn(...)  crd_log(CRD_LOG_WARN, __VA_ARGS__)
#define crd_info(...)  crd_log(CRD_LOG_INFO, __VA_ARGS__)
#define crd_debug(...)                                                                             \
	do {                                                                                       \
		if (crd_log_level >= CRD_LOG_DEBUG)                                                \
			crd_log(CRD_LOG_DEBUG, __VA_ARGS__);                                       \
	} while (0)

#endif
