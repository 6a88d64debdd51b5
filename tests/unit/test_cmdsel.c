/* Unit tests: CRUDDUR_ONLY_CMDS / CRUDDUR_SKIP_CMDS (preload/cmdsel.c). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../../preload/cmdsel.h"

Test(cmdsel, exact_names_and_blanks)
{
	cr_assert(crd_cmd_list_match("sh,curl", "curl"));
	cr_assert(crd_cmd_list_match(" sh , curl ", "sh"));
	cr_assert(!crd_cmd_list_match("sh,curl", "bash"));
	cr_assert(!crd_cmd_list_match("sh,curl", "cur"));
	cr_assert(!crd_cmd_list_match("sh,curl", "curls"));
	cr_assert(!crd_cmd_list_match("sh", NULL));
	cr_assert(!crd_cmd_list_match("sh", ""));
	cr_assert(!crd_cmd_list_match(",,", "sh"));
	cr_assert(crd_cmd_list_match(",,nginx,", "nginx"));
}

Test(cmdsel, star_globs)
{
	cr_assert(crd_cmd_list_match("python3*", "python3"));
	cr_assert(crd_cmd_list_match("python3*", "python3.11"));
	cr_assert(!crd_cmd_list_match("python3*", "python"));
	cr_assert(crd_cmd_list_match("*sh", "bash"));
	cr_assert(crd_cmd_list_match("*sh", "sh"));
	cr_assert(!crd_cmd_list_match("*sh", "shell"));
	cr_assert(crd_cmd_list_match("g*n*x", "gunicorn-nginx"));
	cr_assert(!crd_cmd_list_match("g*n*x", "gunicorn-nginxd"));
	cr_assert(crd_cmd_list_match("*", "anything"));
	cr_assert(crd_cmd_list_match("a**b", "ab"));
	/* only `*` is special */
	cr_assert(!crd_cmd_list_match("n?inx", "nginx"));
	cr_assert(crd_cmd_list_match("n?inx", "n?inx"));
}

Test(cmdsel, bad_lists)
{
	cr_assert_eq(crd_cmd_list_check("sh,curl,python3*"), 0);
	cr_assert_eq(crd_cmd_list_check(" , "), 0);
	cr_assert_eq(crd_cmd_list_check("/bin/sh"), -EINVAL);
	cr_assert_eq(crd_cmd_list_check("sh,bin/curl"), -EINVAL);
	char longname[300];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	cr_assert_eq(crd_cmd_list_check(longname), -EINVAL);
}

/* This process is test_cmdsel (argv[0] and /proc/self/exe). */
static void envs(const char *only, const char *skip)
{
	if (only)
		setenv("CRUDDUR_ONLY_CMDS", only, 1);
	else
		unsetenv("CRUDDUR_ONLY_CMDS");
	if (skip)
		setenv("CRUDDUR_SKIP_CMDS", skip, 1);
	else
		unsetenv("CRUDDUR_SKIP_CMDS");
}

Test(cmdsel, decides_for_this_process)
{
	envs(NULL, NULL);
	cr_assert_eq(crd_cmds_skip_this_process(), 0, "default: trace everything");
	envs(NULL, "sh,test_cmd*");
	cr_assert_eq(crd_cmds_skip_this_process(), 1);
	envs(NULL, "sh,curl");
	cr_assert_eq(crd_cmds_skip_this_process(), 0);
	envs("nginx,node", NULL);
	cr_assert_eq(crd_cmds_skip_this_process(), 1, "not in the only list");
	envs("nginx,test_cmdsel", NULL);
	cr_assert_eq(crd_cmds_skip_this_process(), 0);
	envs("*", "test_cmdsel");
	cr_assert_eq(crd_cmds_skip_this_process(), 1, "skip wins over only");
	envs("/usr/sbin/nginx", NULL);
	cr_assert_eq(crd_cmds_skip_this_process(), 0, "a bad list is ignored");
	envs(NULL, "/bin/test_cmdsel");
	cr_assert_eq(crd_cmds_skip_this_process(), 0, "a bad list is ignored");
	envs(NULL, NULL);
}
