/* pool.c - lock-free fixed-size object pools (see pool.h). */
#include "pool.h"

#include <errno.h>
#include <sys/mman.h>

int crd_pool_init(struct crd_pool *p, size_t objsize, uint32_t max)
{
	void *m;

	objsize = (objsize + 63) & ~(size_t)63; /* own cache lines: no false sharing */
	m = mmap(NULL, objsize * max, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED)
		return -errno;
	p->base = m;
	p->objsize = objsize;
	p->max = max;
	p->bump = 0;
	p->head = 0;
	p->in_use = 0;
	return 0;
}

void *crd_pool_get(struct crd_pool *p)
{
	uint64_t head = __atomic_load_n(&p->head, __ATOMIC_ACQUIRE), next;
	uint32_t idx;

	while ((uint32_t)head) {
		idx = (uint32_t)head - 1;
		/* Reading the link of an object another thread may have
		 * taken meanwhile is fine: the tag makes our CAS fail. */
		uint32_t link = __atomic_load_n((uint32_t *)crd_pool_at(p, idx), __ATOMIC_RELAXED);
		next = ((head >> 32) + 1) << 32 | link;
		if (__atomic_compare_exchange_n(&p->head, &head, next, 1, __ATOMIC_ACQ_REL,
						__ATOMIC_ACQUIRE))
			goto out;
	}
	/* Free list empty: take a never-used object. */
	idx = __atomic_load_n(&p->bump, __ATOMIC_RELAXED);
	do {
		if (idx >= p->max || !p->base)
			return NULL;
	} while (!__atomic_compare_exchange_n(&p->bump, &idx, idx + 1, 1, __ATOMIC_ACQ_REL,
					      __ATOMIC_RELAXED));
out:
	__atomic_add_fetch(&p->in_use, 1, __ATOMIC_RELAXED);
	return crd_pool_at(p, idx);
}

void crd_pool_put(struct crd_pool *p, void *obj)
{
	uint32_t idx = crd_pool_index(p, obj);
	uint64_t head = __atomic_load_n(&p->head, __ATOMIC_RELAXED), next;

	do {
		__atomic_store_n((uint32_t *)obj, (uint32_t)head, __ATOMIC_RELAXED);
		next = ((head >> 32) + 1) << 32 | (idx + 1);
	} while (!__atomic_compare_exchange_n(&p->head, &head, next, 1, __ATOMIC_RELEASE,
					      __ATOMIC_RELAXED));
	__atomic_sub_fetch(&p->in_use, 1, __ATOMIC_RELAXED);
}
