/* init.h - library life cycle: constructor, fork, exec, exit. */
#ifndef CRD_INIT_H
#define CRD_INIT_H

#include <sys/types.h>

/* True once the constructor set everything up and the library is enabled. */
extern int crd_active;

/* Before an exec* replaces the image: flush within CRUDDUR_EXEC_FLUSH_MS.
 * Skipped in a vfork child (it shares our memory with a suspended parent). */
void crd_before_exec(void);

/* Before _exit/_Exit (a fork child's usual end: socketserver.ForkingMixIn,
 * multiprocessing): flush what this process queued, within
 * CRUDDUR_EXEC_FLUSH_MS. No atexit handlers or destructors run there. */
void crd_before_exit_now(void);

/* The pid the library state belongs to (updated in fork children). */
extern pid_t crd_pid;

#endif
