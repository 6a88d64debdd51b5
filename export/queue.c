/* queue.c - bounded MPMC ring of record indices (see queue.h). */
#include "queue.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

struct cell {
	uint64_t seq;
	uint32_t idx;
};

static struct {
	struct cell *cells;
	uint64_t mask;
	uint32_t wake_at;
	char pad0[64];
	uint64_t enq; /* producers' position */
	char pad1[64];
	uint64_t deq; /* consumer's position */
	char pad2[64];
	uint32_t futex;	  /* bumped on every wake */
	uint32_t waiting; /* the exporter is (about to be) asleep */
} q;

int crd_queue_init(uint32_t capacity, uint32_t wake_at)
{
	uint64_t cap = 2;
	void *m;

	while (cap < capacity)
		cap <<= 1;
	m = mmap(NULL, cap * sizeof(struct cell), PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED)
		return -errno;
	q.cells = m;
	q.mask = cap - 1;
	for (uint64_t i = 0; i < cap; i++)
		q.cells[i].seq = i;
	q.wake_at = wake_at ? wake_at : 1;
	q.enq = q.deq = 0;
	return 0;
}

static void futex_wake(void)
{
	__atomic_add_fetch(&q.futex, 1, __ATOMIC_RELEASE);
	syscall(SYS_futex, &q.futex, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

int crd_queue_push(struct crd_rec *r)
{
	uint64_t pos = __atomic_load_n(&q.enq, __ATOMIC_RELAXED);
	struct cell *c;

	if (!q.cells)
		return -ENOSPC;
	for (;;) {
		c = &q.cells[pos & q.mask];
		uint64_t seq = __atomic_load_n(&c->seq, __ATOMIC_ACQUIRE);
		int64_t dif = (int64_t)(seq - pos);
		if (dif == 0) {
			if (__atomic_compare_exchange_n(&q.enq, &pos, pos + 1, 1, __ATOMIC_RELAXED,
							__ATOMIC_RELAXED))
				break;
		} else if (dif < 0) {
			return -ENOSPC; /* full */
		} else {
			pos = __atomic_load_n(&q.enq, __ATOMIC_RELAXED);
		}
	}
	c->idx = crd_pool_index(&crd_rec_pool, r);
	__atomic_store_n(&c->seq, pos + 1, __ATOMIC_RELEASE);

	/* Exactly the push that completes a batch wakes a sleeping exporter. */
	if (pos + 1 - __atomic_load_n(&q.deq, __ATOMIC_RELAXED) >= q.wake_at &&
	    __atomic_load_n(&q.waiting, __ATOMIC_SEQ_CST) &&
	    __atomic_exchange_n(&q.waiting, 0, __ATOMIC_SEQ_CST))
		futex_wake();
	return 0;
}

struct crd_rec *crd_queue_pop(void)
{
	uint64_t pos = __atomic_load_n(&q.deq, __ATOMIC_RELAXED);
	struct cell *c;

	if (!q.cells)
		return NULL;
	for (;;) {
		c = &q.cells[pos & q.mask];
		uint64_t seq = __atomic_load_n(&c->seq, __ATOMIC_ACQUIRE);
		int64_t dif = (int64_t)(seq - (pos + 1));
		if (dif == 0) {
			if (__atomic_compare_exchange_n(&q.deq, &pos, pos + 1, 1, __ATOMIC_RELAXED,
							__ATOMIC_RELAXED))
				break;
		} else if (dif < 0) {
			return NULL; /* empty */
		} else {
			pos = __atomic_load_n(&q.deq, __ATOMIC_RELAXED);
		}
	}
	uint32_t idx = c->idx;
	__atomic_store_n(&c->seq, pos + q.mask + 1, __ATOMIC_RELEASE);
	return crd_pool_at(&crd_rec_pool, idx);
}

uint32_t crd_queue_len(void)
{
	uint64_t e = __atomic_load_n(&q.enq, __ATOMIC_ACQUIRE);
	uint64_t d = __atomic_load_n(&q.deq, __ATOMIC_ACQUIRE);
	return e > d ? (uint32_t)(e - d) : 0;
}

uint32_t crd_queue_wait_token(void)
{
	return __atomic_load_n(&q.futex, __ATOMIC_ACQUIRE);
}

void crd_queue_wait(int timeout_ms, uint32_t seen)
{
	struct timespec ts = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L};

	__atomic_store_n(&q.waiting, 1, __ATOMIC_SEQ_CST);
	/* Re-check after announcing we sleep: a producer that pushed before
	 * seeing `waiting` did not wake us. */
	if (crd_queue_len() < q.wake_at)
		syscall(SYS_futex, &q.futex, FUTEX_WAIT_PRIVATE, seen, &ts, NULL, 0);
	__atomic_store_n(&q.waiting, 0, __ATOMIC_SEQ_CST);
}

size_t crd_queue_snapshot(void (*fn)(struct crd_rec *r, void *arg), void *arg)
{
	uint64_t d, e;
	size_t n = 0;

	if (!q.cells)
		return 0;
	d = __atomic_load_n(&q.deq, __ATOMIC_ACQUIRE);
	e = __atomic_load_n(&q.enq, __ATOMIC_ACQUIRE);
	/* At most one lap: positions are read once, so a queue that keeps
	 * moving cannot keep us here. */
	if (e - d > q.mask + 1)
		e = d + q.mask + 1;
	for (uint64_t pos = d; pos < e; pos++) {
		const struct cell *c = &q.cells[pos & q.mask];
		/* seq == pos + 1: published by its producer, not yet popped. */
		if (__atomic_load_n(&c->seq, __ATOMIC_ACQUIRE) != pos + 1)
			continue;
		uint32_t idx = __atomic_load_n(&c->idx, __ATOMIC_RELAXED);
		if (idx >= crd_pool_high(&crd_rec_pool))
			continue;
		fn(crd_pool_at(&crd_rec_pool, idx), arg);
		n++;
	}
	return n;
}

void crd_queue_kick(void)
{
	futex_wake();
}

void crd_queue_after_fork_child(void)
{
	struct crd_rec *r;

	while ((r = crd_queue_pop()))
		crd_pool_put(&crd_rec_pool, r);
	q.waiting = 0;
	/* A parent thread that was between claiming a cell and publishing it
	 * at fork never finishes here: the ring would stay stuck at that cell
	 * and every span of the child would wait behind it. Start the ring
	 * afresh (the claimed record is lost, one parent's span). */
	if (q.cells && q.enq != q.deq) {
		for (uint64_t i = 0; i <= q.mask; i++)
			q.cells[i].seq = i;
		q.enq = q.deq = 0;
	}
}
