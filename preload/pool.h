/* pool.h - fixed-size object pools for the hook path.
 *
 * The hook path must not malloc, so connection states and span records come
 * from pools: one virtual reservation (mmap MAP_NORESERVE) per pool, pages
 * touched only when an object is first used, a lock-free LIFO free list
 * (tagged index: no ABA) so the hot set stays small and cache-warm. Memory
 * is never unmapped, so a stale pointer is at worst a logic error, never a
 * fault.
 *
 * Every object starts with a uint32_t the pool uses as its free-list link
 * while the object is free.
 *
 * Thread safety: get/put from any thread. Signal safety: async-signal-safe
 * (atomics only) once initialised.
 */
#ifndef CRD_POOL_H
#define CRD_POOL_H

#include <stddef.h>
#include <stdint.h>

struct crd_pool {
	char *base;
	size_t objsize;
	uint32_t max;
	uint32_t bump;	 /* objects handed out at least once */
	uint64_t head;	 /* tag << 32 | (index + 1); 0 index = empty */
	uint64_t in_use; /* objects currently out (for tests and stats) */
};

/* Reserve room for max objects of objsize bytes. 0 or -errno. */
int crd_pool_init(struct crd_pool *p, size_t objsize, uint32_t max);

/* An object (contents unspecified except the link word), or NULL. */
void *crd_pool_get(struct crd_pool *p);
void crd_pool_put(struct crd_pool *p, void *obj);

static inline uint32_t crd_pool_index(const struct crd_pool *p, const void *obj)
{
	return (uint32_t)(((const char *)obj - p->base) / p->objsize);
}

static inline void *crd_pool_at(const struct crd_pool *p, uint32_t index)
{
	return p->base + (size_t)index * p->objsize;
}

/* Objects below this index have been used at least once (for walks). */
static inline uint32_t crd_pool_high(const struct crd_pool *p)
{
	return __atomic_load_n(&p->bump, __ATOMIC_ACQUIRE);
}

#endif
