/* crashme.c - a program that crashes on purpose, in a known function, for
 * the Rollbar crash tests (tests/integration/test_rollbar.py).
 *
 *   crashme null      NULL write in crd_test_null_write()
 *   crashme abort     abort() in crd_test_abort()
 *   crashme fpe       integer division by zero in crd_test_divide()
 *   crashme trap      __builtin_trap() (SIGILL) in crd_test_trap()
 *   crashme bus       touch a truncated file mapping in crd_test_bus()
 *   crashme thread    NULL write in crd_test_thread_crash() on a new thread
 *   crashme handler   NULL write inside crd_test_usr1_handler(), a SIGUSR1
 *                     handler the program installs itself
 *   crashme own       the program installs its own SIGSEGV handler
 *                     (crd_test_own_segv: prints, _exit(3)), then faults
 *   crashme overflow  unbounded recursion in crd_test_recurse() (stack
 *                     overflow: the handler needs the alternate stack)
 *   crashme two       two threads fault at once (crd_test_thread_crash):
 *                     one report, one death
 *   crashme ok        exits 0
 *
 * Functions are noinline and do work after their calls so that every one
 * keeps its own frame.
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))

volatile int crd_test_sink;
/* Bad addresses the compiler cannot see through (a store to a constant
 * NULL is undefined behaviour GCC may delete, with the call to it). */
int *volatile crd_test_null = 0;
long *volatile crd_test_eight = (long *)8;
int *volatile crd_test_sixteen = (int *)16;

NOINLINE void crd_test_null_write(void)
{
	*crd_test_null = 42;
	crd_test_sink++;
}

NOINLINE void crd_test_abort(void)
{
	abort();
}

NOINLINE int crd_test_divide(int a, int b)
{
	return a / b;
}

NOINLINE void crd_test_trap(void)
{
	__builtin_trap();
}

NOINLINE void crd_test_bus(void)
{
	char path[] = "/tmp/crashme-bus-XXXXXX";
	int fd = mkstemp(path);
	volatile char *p;

	unlink(path);
	if (fd < 0 || ftruncate(fd, 4096))
		exit(90);
	p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED || ftruncate(fd, 0))
		exit(91);
	p[0] = 1; /* beyond the end of the file now: SIGBUS */
	crd_test_sink++;
}

NOINLINE void crd_test_thread_crash(void)
{
	*crd_test_eight = 1;
	crd_test_sink++;
}

static pthread_barrier_t together;

static void *thread_main(void *arg)
{
	if (arg)
		pthread_barrier_wait(&together);
	crd_test_thread_crash();
	return NULL;
}

NOINLINE void crd_test_usr1_handler(int sig)
{
	(void)sig;
	*crd_test_sixteen = 7;
	crd_test_sink++;
}

NOINLINE void crd_test_raise_usr1(void)
{
	raise(SIGUSR1);
	crd_test_sink++;
}

NOINLINE void crd_test_own_segv(int sig)
{
	static const char msg[] = "crashme: own SIGSEGV handler\n";
	(void)sig;
	(void)!write(2, msg, sizeof(msg) - 1);
	_exit(3);
}

NOINLINE int crd_test_recurse(int n)
{
	volatile char pad[256];
	pad[0] = (char)n;
	if (n < 0) /* never: it only keeps -Winfinite-recursion quiet */
		return 0;
	return crd_test_recurse(n + 1) + pad[0];
}

NOINLINE void crd_test_level_two(const char *mode)
{
	if (!strcmp(mode, "null")) {
		crd_test_null_write();
	} else if (!strcmp(mode, "abort")) {
		crd_test_abort();
	} else if (!strcmp(mode, "fpe")) {
		volatile int zero = 0;
		crd_test_sink = crd_test_divide(7, zero);
	} else if (!strcmp(mode, "trap")) {
		crd_test_trap();
	} else if (!strcmp(mode, "bus")) {
		crd_test_bus();
	} else if (!strcmp(mode, "thread")) {
		pthread_t t;
		pthread_create(&t, NULL, thread_main, NULL);
		pthread_join(t, NULL);
	} else if (!strcmp(mode, "two")) {
		pthread_t t1, t2;
		pthread_barrier_init(&together, NULL, 2);
		pthread_create(&t1, NULL, thread_main, &together);
		pthread_create(&t2, NULL, thread_main, &together);
		pthread_join(t1, NULL);
		pthread_join(t2, NULL);
	} else if (!strcmp(mode, "handler")) {
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = crd_test_usr1_handler;
		sigaction(SIGUSR1, &sa, NULL);
		crd_test_raise_usr1();
	} else if (!strcmp(mode, "own")) {
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = crd_test_own_segv;
		sigaction(SIGSEGV, &sa, NULL);
		crd_test_null_write();
	} else if (!strcmp(mode, "overflow")) {
		crd_test_sink = crd_test_recurse(0);
	} else if (strcmp(mode, "ok")) {
		fprintf(stderr, "crashme: unknown mode %s\n", mode);
		exit(2);
	}
	crd_test_sink++;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: crashme MODE\n");
		return 2;
	}
	crd_test_level_two(argv[1]);
	return 0;
}
