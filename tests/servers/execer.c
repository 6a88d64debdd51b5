/* execer - calls one exec* variant (argv[1]: l, lp, le, v, vp, ve, vpe) to
 * run /usr/bin/env with a known argument and environment, so a test can
 * check that the shim's exec hooks pass arguments and environment through. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char *args[] = {"env", "-u", "NOTHING", NULL};
	char *envp[] = {"EXECER=ok", NULL};
	const char *m = argc > 1 ? argv[1] : "";

	if (!strcmp(m, "l"))
		execl("/usr/bin/env", "env", "-u", "NOTHING", (char *)NULL);
	else if (!strcmp(m, "lp"))
		execlp("env", "env", "-u", "NOTHING", (char *)NULL);
	else if (!strcmp(m, "le"))
		execle("/usr/bin/env", "env", "-u", "NOTHING", (char *)NULL, envp);
	else if (!strcmp(m, "v"))
		execv("/usr/bin/env", args);
	else if (!strcmp(m, "vp"))
		execvp("env", args);
	else if (!strcmp(m, "ve"))
		execve("/usr/bin/env", args, envp);
	else if (!strcmp(m, "vpe"))
		execvpe("env", args, envp);
	perror("execer");
	return 127;
}
