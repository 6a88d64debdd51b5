/* malloc_count.c - LD_PRELOAD shim counting heap allocations, for `make bench`.
 *
 * Preloaded ahead of libcruddur.so (LD_PRELOAD=malloc_count.so:libcruddur.so)
 * it counts calls to malloc, calloc, realloc, posix_memalign, memalign,
 * aligned_alloc, valloc and pvalloc, split by thread role:
 *   exporter  threads named "cruddur-export" (pthread_setname_np; checked
 *             with prctl(PR_GET_NAME), remembered in a TLS flag once seen)
 *   app       every other thread: with cruddur loaded, what these threads
 *             allocate on top of the bare server is cruddur's hook path.
 * The allocations are served by glibc's own __libc_* entry points.
 *
 * Counters live in the file named by MALLOC_COUNT_FILE (at least 4096
 * bytes, mapped MAP_SHARED when the library loads, so a forked nginx
 * worker keeps counting into it): four little-endian uint64 at offset 0:
 * app calls, app bytes, exporter calls, exporter bytes. Readers take two
 * snapshots around the load they measure.
 */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void *__libc_valloc(size_t);
extern void *__libc_pvalloc(size_t);

struct counters {
	uint64_t app_calls, app_bytes, exp_calls, exp_bytes;
};

static struct counters fallback;
static struct counters *cnt = &fallback;
static __thread int is_exporter __attribute__((tls_model("initial-exec")));

#define EXPORTED __attribute__((visibility("default")))

__attribute__((constructor)) static void mc_init(void)
{
	const char *path = getenv("MALLOC_COUNT_FILE");
	void *m;
	int fd;

	if (!path)
		return;
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return;
	m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (m != MAP_FAILED)
		cnt = m;
}

static void count(size_t bytes)
{
	if (!is_exporter) {
		char name[16] = {0};
		if (!prctl(PR_GET_NAME, name, 0, 0, 0) && !strcmp(name, "cruddur-export"))
			is_exporter = 1;
	}
	if (is_exporter) {
		__atomic_add_fetch(&cnt->exp_calls, 1, __ATOMIC_RELAXED);
		__atomic_add_fetch(&cnt->exp_bytes, bytes, __ATOMIC_RELAXED);
	} else {
		__atomic_add_fetch(&cnt->app_calls, 1, __ATOMIC_RELAXED);
		__atomic_add_fetch(&cnt->app_bytes, bytes, __ATOMIC_RELAXED);
	}
}

EXPORTED void *malloc(size_t n)
{
	count(n);
	return __libc_malloc(n);
}

EXPORTED void *calloc(size_t a, size_t b)
{
	count(a * b);
	return __libc_calloc(a, b);
}

EXPORTED void *realloc(void *p, size_t n)
{
	count(n);
	return __libc_realloc(p, n);
}

EXPORTED void *memalign(size_t al, size_t n)
{
	count(n);
	return __libc_memalign(al, n);
}

EXPORTED void *aligned_alloc(size_t al, size_t n)
{
	count(n);
	return __libc_memalign(al, n);
}

EXPORTED int posix_memalign(void **out, size_t al, size_t n)
{
	void *p;

	if (al < sizeof(void *) || (al & (al - 1)))
		return EINVAL;
	count(n);
	p = __libc_memalign(al, n);
	if (!p)
		return ENOMEM;
	*out = p;
	return 0;
}

EXPORTED void *valloc(size_t n)
{
	count(n);
	return __libc_valloc(n);
}

EXPORTED void *pvalloc(size_t n)
{
	count(n);
	return __libc_pvalloc(n);
}
