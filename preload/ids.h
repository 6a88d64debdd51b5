/* ids.h - trace and span ids, and the clock.
 *
 * Ids come from a per-thread xoshiro256** generator seeded by getrandom(2)
 * once per thread (and again after fork: the child must not repeat its
 * parent's ids), never from rand(). A new trace id carries the current
 * epoch seconds in its first 4 bytes, big-endian, so the same id is a valid
 * X-Ray trace id (1-<8 hex epoch>-<24 hex>).
 *
 * Thread safety: any thread; the generator state is thread-local.
 * Signal safety: async-signal-safe except the first call on a thread (it
 * may call getrandom, which is itself async-signal-safe).
 */
#ifndef CRD_IDS_H
#define CRD_IDS_H

#include <stdint.h>
#include <time.h>

void crd_new_trace_id(uint8_t id[16]);
void crd_new_span_id(uint8_t id[8]);
uint64_t crd_rand64(void);

/* Bump after fork in the child: every thread reseeds on next use. */
void crd_ids_after_fork(void);

/* Wall-clock time in unix-epoch nanoseconds (vDSO, no syscall). */
static inline uint64_t crd_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t crd_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#endif
