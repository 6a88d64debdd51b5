/* cmdsel.c - CRUDDUR_ONLY_CMDS / CRUDDUR_SKIP_CMDS (see cmdsel.h).
 *
 * A container often runs a wrapper shell, health-check curls and helper
 * tools next to the server, all with the same LD_PRELOAD in their
 * environment. Matching is on command names (the executable's basename
 * and argv[0]'s), so `sh` skips /bin/sh whether it was started as sh,
 * /bin/sh or dash. A skipped process keeps LD_PRELOAD: what it execs
 * decides for itself.
 */
#include "cmdsel.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

/* readlink target buffer: PATH_MAX, the longest path the kernel returns. */
#define CRD_EXE_PATH_MAX PATH_MAX

/* Glob with `*` only, on [p, pe) against [s, se): iterative, with the
 * classic single backtrack point (enough for `*`-only patterns). */
static int glob_match(const char *p, const char *pe, const char *s, const char *se)
{
	const char *star = NULL, *resume = NULL;

	while (s < se) {
		if (p < pe && *p == '*') {
			star = ++p;
			resume = s;
		} else if (p < pe && *p == *s) {
			p++;
			s++;
		} else if (star) {
			p = star;
			s = ++resume;
		} else {
			return 0;
		}
	}
	while (p < pe && *p == '*')
		p++;
	return p == pe;
}

/* Calls fn(entry, end, arg) for every non-empty, blank-trimmed entry;
 * stops at the first non-zero return and returns it. */
static int each_entry(const char *list, int (*fn)(const char *, const char *, const void *),
		      const void *arg)
{
	const char *s = list;

	while (s && *s) {
		const char *e = strchr(s, ',');
		const char *end = e ? e : s + strlen(s);
		const char *b = s;
		while (b < end && (*b == ' ' || *b == '\t'))
			b++;
		while (end > b && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		if (end > b) {
			int r = fn(b, end, arg);
			if (r)
				return r;
		}
		s = e ? e + 1 : NULL;
	}
	return 0;
}

static int match_one(const char *b, const char *e, const void *name)
{
	const char *n = name;
	return glob_match(b, e, n, n + strlen(n));
}

int crd_cmd_list_match(const char *list, const char *name)
{
	if (!list || !name || !*name)
		return 0;
	return each_entry(list, match_one, name);
}

static int check_one(const char *b, const char *e, const void *unused)
{
	(void)unused;
	if (e - b > NAME_MAX || memchr(b, '/', (size_t)(e - b)))
		return -EINVAL;
	return 0;
}

int crd_cmd_list_check(const char *list)
{
	return list ? each_entry(list, check_one, NULL) : 0;
}

static const char *base(const char *p)
{
	const char *s = p ? strrchr(p, '/') : NULL;
	return s ? s + 1 : p;
}

/* The list of name, or NULL (with one message) when it is unusable. */
static const char *usable(const char *name)
{
	const char *v = crd_env(name);

	if (v && crd_cmd_list_check(v)) {
		crd_warn("%s=%s: not a comma list of command names (no '/', `*` wildcards); "
			 "setting ignored",
			 name, v);
		return NULL;
	}
	return v;
}

int crd_cmds_skip_this_process(void)
{
	extern char *program_invocation_name;
	const char *only = usable("CRUDDUR_ONLY_CMDS");
	const char *skip = usable("CRUDDUR_SKIP_CMDS");
	char exe[CRD_EXE_PATH_MAX];
	const char *names[2];
	ssize_t n;
	int in_only = 0;

	if (!only && !skip)
		return 0;
	/* One readlink at load (not a hooked call). " (deleted)" is kept: an
	 * unlinked binary is an odd thing to name in a list anyway. */
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	exe[n > 0 ? n : 0] = 0;
	names[0] = n > 0 ? base(exe) : NULL;
	/* argv[0] as given: a login shell's "-sh" is matched as "-sh". */
	names[1] = base(program_invocation_name);
	for (int i = 0; i < 2; i++) {
		if (crd_cmd_list_match(skip, names[i]))
			return 1;
		in_only |= crd_cmd_list_match(only, names[i]);
	}
	return only && !in_only;
}
