/* real.c - resolve the real symbols once (see real.h). */
#include "real.h"

#include <dlfcn.h>

struct crd_real_table crd_real_tab;

void crd_real_resolve(void)
{
	/* dlsym(RTLD_NEXT) finds the next definition after libcruddur in the
	 * lookup order: libc's, or another preload's. A name libc lacks
	 * (close_range on old glibc) stays NULL and its hook reports ENOSYS. */
#define CRD_REAL_LOAD(ret, name, args)                                                             \
	if (!crd_real_tab.name)                                                                    \
		__atomic_store_n(&crd_real_tab.name, (ret(*) args)dlsym(RTLD_NEXT, #name),         \
				 __ATOMIC_RELAXED);
	CRD_REAL_FUNCS(CRD_REAL_LOAD)
#undef CRD_REAL_LOAD
}
