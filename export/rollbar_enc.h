/* rollbar_enc.h - Rollbar items: encoding, grouping, rate limiting, spool files.
 *
 * Pure functions used by the Rollbar sink (export/rollbar.c) and tested on
 * their own (tests/unit/test_rollbar*.c). Payload shape per the Rollbar API
 * ("Create an item", api/1/item) and pyrollbar's Flask integration:
 *
 *   {"data": {"environment", "level", "timestamp", "platform", "framework",
 *             "code_version", "uuid", "title", "fingerprint",
 *             "body": {"message": {"body", ...}} | {"trace": {...}},
 *             "request": {"url", "method", "headers", "query_string",
 *                         "user_ip"},
 *             "server": {"host", "pid", "code_version"},
 *             "custom": {"trace_id", "span_id", ...},
 *             "notifier": {"name", "version"}}}
 *
 * The token goes in the X-Rollbar-Access-Token header, never the body.
 *
 * Thread safety: all pure functions of their arguments, except that the
 * limiter and spool parser state belong to their caller.
 */
#ifndef CRD_ROLLBAR_ENC_H
#define CRD_ROLLBAR_ENC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../preload/crash.h"
#include "../preload/span.h"

/* A route template is at most this long (longer paths are cut). */
#define CRD_RB_ROUTE_MAX 256
/* Placeholder for a path segment that looks like an id. */
#define CRD_RB_ID_PLACEHOLDER "{id}"
/* A fingerprint: 16 lowercase hex digits (FNV-1a 64) plus NUL. */
#define CRD_RB_FINGERPRINT_LEN 16
/* A uuid: 8-4-4-4-12 hex digits plus NUL. Rollbar: at most 36 chars. */
#define CRD_RB_UUID_LEN 36
/* Rollbar's documented maximum item size (api/1/item answers 413 above). */
#define CRD_RB_MAX_ITEM_BYTES (128 * 1024)
/* Length of the fixed rate-limit window (rollbar.js RateLimiter: items are
 * counted per minute from the window's first item). */
#define CRD_RB_WINDOW_NS (60ull * 1000000000ull)
/* Trimmed encodings (after a 413): string values and frames are cut to
 * these. */
#define CRD_RB_TRIM_STR	   256
#define CRD_RB_TRIM_FRAMES 32

/* What every item of this process carries. Strings may be NULL (omitted),
 * except environment. */
struct crd_rb_meta {
	const char *environment;
	const char *code_version;
	const char *host;
	long pid;
	const char *service;
};

/* Route template of a URL path (no query): segments that look like ids
 * (all digits; a UUID; 16+ hex digits; 24+ characters with a digit; or
 * mixed letters and digits with at least 3 digits, like "a1b2c3") become
 * "{id}". So /users/42/orders/9f8e... -> /users/{id}/orders/{id}. Writes a
 * NUL-terminated template into out (cap >= 2); returns its length. */
size_t crd_rb_route_template(const char *path, size_t len, char *out, size_t cap);

/* Stable grouping key of a 5xx: FNV-1a 64 of "method route status" in
 * 16 hex digits. */
void crd_rb_fingerprint(const char *method, const char *route, unsigned status,
			char out[CRD_RB_FINGERPRINT_LEN + 1]);

/* A random (version 4, RFC 4122 variant) uuid from two random words. */
void crd_rb_uuid4(uint64_t a, uint64_t b, char out[CRD_RB_UUID_LEN + 1]);

/* The local rate limit plus the server's 429 pause. */
struct crd_rb_limiter {
	uint64_t window_start_ns; /* 0: no window yet */
	uint32_t count;		  /* items allowed in the current window */
	uint64_t paused_until_ns; /* 429: nothing until then */
	uint64_t dropped;	  /* items refused, since the last report */
};

/* May one more item go at now_ns? Counts it when yes; counts a drop when
 * no (over max_per_min in this window, or paused). */
int crd_rb_limiter_allow(struct crd_rb_limiter *l, uint64_t now_ns, uint32_t max_per_min);
/* Only the 429 pause (crash items are exempt from the local cap). */
int crd_rb_limiter_paused(const struct crd_rb_limiter *l, uint64_t now_ns);
/* The server answered 429: send nothing for seconds (a missing or bad
 * header means CRD_RB_DEF_PAUSE_S). */
#define CRD_RB_DEF_PAUSE_S 60
#define CRD_RB_MAX_PAUSE_S 3600
void crd_rb_limiter_pause(struct crd_rb_limiter *l, uint64_t now_ns, long seconds);

/* Encode the Rollbar item (level "error") of a finished server span with
 * status >= 500, its view v, and uuid. trim != 0 cuts strings to
 * CRD_RB_TRIM_STR and leaves out tracestate and User-Agent (the retry
 * after a 413). Returns the length (NUL-terminated) or -ENOSPC. */
ssize_t crd_rb_encode_5xx(char *out, size_t cap, const struct crd_rb_meta *m,
			  const struct crd_span *s, const struct crd_span_view *v, const char *uuid,
			  int trim);

/* ---- crash spool files (written by preload/crash.c) ---- */

#define CRD_CRASH_MAX_MODULES_USED 64
#define CRD_CRASH_STR_MAX	   512

struct crd_crash_frame {
	uint64_t pc;
	int module;	 /* index into modules[], -1 when unknown */
	uint64_t offset; /* in the module: ELF address, or file offset ('f') */
	char kind;	 /* 's' exact pc (signal frame), 'c' call site (pc - 1) */
};

struct crd_crash_module {
	int idx;
	char offsets; /* 'v' ELF virtual addresses, 'f' file offsets */
	char build_id[65];
	char path[CRD_CRASH_STR_MAX];
};

/* A parsed spool file. Frames are in unwind order: the crashing frame
 * first. */
struct crd_crash_report {
	uint64_t time_ns;
	long pid, tid;
	int signo;
	char signame[16];
	int code;
	char codename[24];
	uint64_t addr;
	char thread[32];
	char exe[CRD_CRASH_STR_MAX];
	char service[256];
	char environment[256];
	char code_version[64];
	char host[256];
	int has_request;
	char req_method[CRD_METHOD_MAX];
	char req_target[CRD_TARGET_MAX];
	char trace_id[33];
	char span_id[17];
	size_t nframes;
	struct crd_crash_frame frames[CRD_CRASH_MAX_FRAMES];
	size_t nmodules;
	struct crd_crash_module modules[CRD_CRASH_MAX_MODULES_USED];
};

/* Parse a spool file's text. 0, or -EINVAL when it is not a complete
 * spool file of a version we read. */
int crd_crash_parse(const char *text, size_t len, struct crd_crash_report *r);

/* Encode the Rollbar item (level "critical", body.trace with exception
 * class SIGSEGV etc. and raw module+offset frames, most recent last) of a
 * parsed crash report. m supplies what the report lacks (host, a newer
 * environment is NOT preferred: the report's own values win). Returns the
 * length or -ENOSPC. */
ssize_t crd_rb_encode_crash(char *out, size_t cap, const struct crd_crash_report *r,
			    const struct crd_rb_meta *m, const char *uuid, int trim);

#endif
