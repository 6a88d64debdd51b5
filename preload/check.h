/* check.h - CRUDDUR_CHECK=1: a one-shot report of the parsed settings
 * (for `cruddur-run --check`; see check.c). */
#ifndef CRD_CHECK_H
#define CRD_CHECK_H

/* Is CRUDDUR_CHECK set to 1 or true? */
int crd_check_requested(void);

/* Print the report (`cruddur: check: ...` lines on stderr, the last one
 * `cruddur: check: problems N`). Constructor only, after
 * crd_config_load(). */
void crd_check_report(void);

#endif
