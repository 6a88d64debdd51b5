/* init.h - library life cycle: constructor, fork, exec, exit. */
#ifndef CRD_INIT_H
#define CRD_INIT_H

/* True once the constructor set everything up and the library is enabled. */
extern int crd_active;

/* Before an exec* replaces the image: flush within CRUDDUR_EXEC_FLUSH_MS.
 * Skipped in a vfork child (it shares our memory with a suspended parent). */
void crd_before_exec(void);

#endif
