/* ids.c - per-thread id generator (see ids.h). */
#include "ids.h"

#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static unsigned crd_fork_gen = 1;

static __thread uint64_t rng_s[4] __attribute__((tls_model("initial-exec")));
static __thread unsigned rng_gen __attribute__((tls_model("initial-exec")));

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static void seed(void)
{
	uint64_t s[4] = {0};
	long n = syscall(SYS_getrandom, s, sizeof(s), 0);

	/* No getrandom (ancient kernel, seccomp): mix what differs per
	 * thread and per call. Ids must be unique, not secret. */
	if (n != (long)sizeof(s)) {
		s[0] ^= crd_now_ns();
		s[1] ^= (uint64_t)(uintptr_t)&n;
		s[2] ^= (uint64_t)getpid() << 32 | (uint64_t)syscall(SYS_gettid);
		s[3] ^= crd_mono_ns();
	}
	if (!(s[0] | s[1] | s[2] | s[3]))
		s[0] = 0x9e3779b97f4a7c15ull;
	memcpy(rng_s, s, sizeof(s));
	rng_gen = __atomic_load_n(&crd_fork_gen, __ATOMIC_RELAXED);
}

uint64_t crd_rand64(void)
{
	uint64_t r, t;

	if (__builtin_expect(rng_gen != __atomic_load_n(&crd_fork_gen, __ATOMIC_RELAXED), 0))
		seed();
	/* xoshiro256** 1.0 (Blackman & Vigna, public domain). */
	r = rotl(rng_s[1] * 5, 7) * 9;
	t = rng_s[1] << 17;
	rng_s[2] ^= rng_s[0];
	rng_s[3] ^= rng_s[1];
	rng_s[1] ^= rng_s[2];
	rng_s[0] ^= rng_s[3];
	rng_s[2] ^= t;
	rng_s[3] = rotl(rng_s[3], 45);
	return r;
}

void crd_ids_after_fork(void)
{
	__atomic_add_fetch(&crd_fork_gen, 1, __ATOMIC_RELAXED);
}

void crd_new_span_id(uint8_t id[8])
{
	uint64_t r;

	do
		r = crd_rand64();
	while (!r);
	memcpy(id, &r, 8);
}

void crd_new_trace_id(uint8_t id[16])
{
	uint32_t secs = (uint32_t)(crd_now_ns() / 1000000000u);
	uint64_t r1 = crd_rand64(), r2 = crd_rand64();

	id[0] = (uint8_t)(secs >> 24);
	id[1] = (uint8_t)(secs >> 16);
	id[2] = (uint8_t)(secs >> 8);
	id[3] = (uint8_t)secs;
	memcpy(id + 4, &r1, 8);
	memcpy(id + 12, &r2, 4);
}
