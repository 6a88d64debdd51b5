/* prehandler.c - a preload library that installs a SIGSEGV handler in its
 * constructor, before cruddur's (list it after libcruddur.so in
 * LD_PRELOAD): cruddur must chain to it. The handler says so on stderr
 * and returns; with PREHANDLER_HANG=1 it never returns (cruddur's
 * watchdog must end the process). */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int hang;

static void pre_segv(int sig, siginfo_t *si, void *uc)
{
	static const char msg[] = "prehandler: SIGSEGV seen\n";
	(void)sig;
	(void)si;
	(void)uc;
	(void)!write(2, msg, sizeof(msg) - 1);
	while (hang)
		pause();
}

__attribute__((constructor)) static void pre_init(void)
{
	struct sigaction sa;

	hang = getenv("PREHANDLER_HANG") != NULL;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = pre_segv;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGSEGV, &sa, NULL);
}
