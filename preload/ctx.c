/* ctx.c - per-thread server request context (see ctx.h). */
#include "ctx.h"

#include <pthread.h>

#include "crash.h"
#include "pool.h"
#include "rec.h"

/* Threads that ever served a request at once; more run without context
 * (their client spans start new traces). */
#define CRD_CTX_SLOTS 16384

struct ctx_slot {
	uint32_t pool_link;  /* pool.h */
	uint32_t gen;	     /* bumped when the slot changes owner */
	uint32_t active;     /* server requests in progress on the thread */
	struct crd_rec *cur; /* the latest one to enter */
};

static struct crd_pool ctx_pool;
static pthread_key_t ctx_key;
static int ctx_ready;
static __thread struct ctx_slot *my_slot __attribute__((tls_model("initial-exec")));

static void thread_gone(void *p)
{
	struct ctx_slot *s = p;

	/* Requests still in flight hold the old generation: their leave
	 * becomes a no-op. */
	__atomic_add_fetch(&s->gen, 1, __ATOMIC_ACQ_REL);
	s->active = 0;
	s->cur = NULL;
	crd_pool_put(&ctx_pool, s);
}

int crd_ctx_init(void)
{
	int rc = crd_pool_init(&ctx_pool, sizeof(struct ctx_slot), CRD_CTX_SLOTS);

	if (!rc && pthread_key_create(&ctx_key, thread_gone))
		rc = -1;
	ctx_ready = !rc;
	return rc;
}

static struct ctx_slot *slot_of_thread(void)
{
	struct ctx_slot *s = my_slot;

	if (s || !ctx_ready)
		return s;
	s = crd_pool_get(&ctx_pool);
	if (!s)
		return NULL;
	s->active = 0;
	s->cur = NULL;
	if (pthread_setspecific(ctx_key, s)) {
		crd_pool_put(&ctx_pool, s);
		return NULL;
	}
	my_slot = s;
	crd_crash_thread_start(); /* first request of the thread: alternate signal stack */
	return s;
}

void crd_ctx_enter(struct crd_rec *r, struct crd_ctx_ref *ref)
{
	struct ctx_slot *s = slot_of_thread();

	if (!s)
		return;
	ref->slot = crd_pool_index(&ctx_pool, s) + 1;
	ref->gen = __atomic_load_n(&s->gen, __ATOMIC_ACQUIRE);
	__atomic_add_fetch(&s->active, 1, __ATOMIC_ACQ_REL);
	__atomic_store_n(&s->cur, r, __ATOMIC_RELEASE);
}

void crd_ctx_leave(const struct crd_rec *r, struct crd_ctx_ref *ref)
{
	struct ctx_slot *s;
	struct crd_rec *expect = (struct crd_rec *)r;

	if (!ref->slot)
		return;
	s = crd_pool_at(&ctx_pool, ref->slot - 1);
	ref->slot = 0;
	if (__atomic_load_n(&s->gen, __ATOMIC_ACQUIRE) != ref->gen)
		return;
	__atomic_sub_fetch(&s->active, 1, __ATOMIC_ACQ_REL);
	__atomic_compare_exchange_n(&s->cur, &expect, NULL, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
}

struct crd_rec *crd_ctx_current(void)
{
	struct ctx_slot *s = my_slot;

	if (!s || __atomic_load_n(&s->active, __ATOMIC_ACQUIRE) != 1)
		return NULL;
	return __atomic_load_n(&s->cur, __ATOMIC_ACQUIRE);
}
