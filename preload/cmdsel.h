/* cmdsel.h - CRUDDUR_ONLY_CMDS / CRUDDUR_SKIP_CMDS: which processes are
 * traced at all.
 *
 * Load time only (the constructor, single-threaded, before main). */
#ifndef CRD_CMDSEL_H
#define CRD_CMDSEL_H

#include <stddef.h>

/* 1 when name matches an entry of the comma list (entries trimmed of
 * blanks; `*` matches any run of characters, everything else literally).
 * name may be NULL (never matches). */
int crd_cmd_list_match(const char *list, const char *name);

/* 0 when every entry of the list is a command name (no '/', not longer
 * than NAME_MAX), else -EINVAL. Empty entries are ignored. */
int crd_cmd_list_check(const char *list);

/* Read CRUDDUR_ONLY_CMDS and CRUDDUR_SKIP_CMDS and decide for this
 * process, matching the basename of /proc/self/exe and of argv[0]:
 * 1 = skip (the library stays passive), 0 = trace. A bad list is reported
 * once on stderr and ignored. */
int crd_cmds_skip_this_process(void);

#endif
