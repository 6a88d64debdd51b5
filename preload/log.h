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

enum crd_log_level { CRD_LOG_OFF = 0, CRD_LOG_ERROR, CRD_LOG_WARN, CRD_LOG_INFO, CRD_LOG_DEBUG };

extern int crd_log_level;

void crd_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define crd_error(...) crd_log(CRD_LOG_ERROR, __VA_ARGS__)
#define crd_warn(...) crd_log(CRD_LOG_WARN, __VA_ARGS__)
#define crd_info(...) crd_log(CRD_LOG_INFO, __VA_ARGS__)
#define crd_debug(...)                                                                             \
	do {                                                                                       \
		if (crd_log_level >= CRD_LOG_DEBUG)                                                \
			crd_log(CRD_LOG_DEBUG, __VA_ARGS__);                                       \
	} while (0)

#endif
