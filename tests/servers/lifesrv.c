/* lifesrv - HTTP/1.1 servers with unusual process lives, for
 * tests/integration/test_lifecycle.py. Each request (no body) is answered
 * "200 <pid of the answering process>" and the connection closed.
 *
 *   lifesrv prefork N PORTFILE   serves one request itself, then forks N
 *                                children that accept and serve until
 *                                SIGTERM (exit(0)); the parent forwards
 *                                SIGTERM, reaps them and exits.
 *   lifesrv daemon PORTFILE      daemon(3), then serves until SIGTERM;
 *                                PORTFILE gets "port pid".
 *   lifesrv spawn PORTFILE       for each request, between reading it and
 *                                answering: vfork+exec, vfork+failed exec
 *                                (_exit in the child), posix_spawn,
 *                                fork+exec; the children's statuses go in
 *                                the body after the pid.
 *   lifesrv ctor                 a constructor starts the serving thread
 *                                before main (portfile: $LIFESRV_PORTFILE);
 *                                main only waits for SIGTERM.
 */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;
static volatile sig_atomic_t stop;
static int spawn_mode;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static void catch_term(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term; /* no SA_RESTART: accept() returns EINTR */
	sigaction(SIGTERM, &sa, NULL);
}

static int listen_any(int *port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t l = sizeof(a);
	int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 64) ||
	    getsockname(fd, (struct sockaddr *)&a, &l)) {
		perror("lifesrv: listen");
		exit(1);
	}
	*port = ntohs(a.sin_port);
	return fd;
}

static void write_portfile(const char *path, const char *text)
{
	char tmp[4096];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f || fputs(text, f) < 0 || fclose(f) || rename(tmp, path)) {
		perror("lifesrv: portfile");
		exit(1);
	}
}

static int run_child(int how)
{
	char *argv[] = {"true", NULL};
	pid_t pid;
	int st = -1;

	if (how == 2) {
		if (posix_spawn(&pid, "/bin/true", NULL, NULL, argv, environ))
			return -1;
	} else {
		pid = how == 3 ? fork() : vfork();
		if (pid == 0) {
			execl(how == 1 ? "/nonexistent/lifesrv" : "/bin/true", "true", (char *)NULL);
			_exit(127);
		}
	}
	if (pid < 0 || waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 200 + WTERMSIG(st);
}

static void serve_one(int fd)
{
	char buf[8192], body[128];
	size_t have = 0;
	ssize_t n;
	int bl;

	while (have < sizeof(buf) - 1 && (n = read(fd, buf + have, sizeof(buf) - 1 - have)) > 0) {
		have += (size_t)n;
		buf[have] = 0;
		if (strstr(buf, "\r\n\r\n"))
			break;
	}
	bl = snprintf(body, sizeof(body), "%d", (int)getpid());
	if (spawn_mode)
		for (int how = 0; how < 4; how++)
			bl += snprintf(body + bl, sizeof(body) - (size_t)bl, " %d", run_child(how));
	bl += snprintf(body + bl, sizeof(body) - (size_t)bl, "\n");
	snprintf(buf, sizeof(buf),
		 "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
		 "Connection: close\r\n\r\n%s",
		 bl, body);
	if (write(fd, buf, strlen(buf)) < 0)
		perror("lifesrv: write");
	close(fd);
}

static void serve_until_stop(int lfd)
{
	while (!stop) {
		int fd = accept(lfd, NULL, NULL);
		if (fd >= 0)
			serve_one(fd);
		else if (errno != EINTR)
			break;
	}
}

static int prefork(int n, const char *pf)
{
	char text[64];
	int port, lfd = listen_any(&port), st;
	pid_t kids[64];

	if (n < 1 || n > 64)
		return 2;
	catch_term();
	snprintf(text, sizeof(text), "%d", port);
	write_portfile(pf, text);
	serve_one(accept(lfd, NULL, NULL)); /* queued in the parent before the forks */
	for (int i = 0; i < n; i++) {
		kids[i] = fork();
		if (kids[i] == 0) {
			serve_until_stop(lfd);
			exit(0);
		}
	}
	while (!stop)
		pause();
	for (int i = 0; i < n; i++)
		if (kids[i] > 0)
			kill(kids[i], SIGTERM);
	for (int i = 0; i < n; i++)
		if (kids[i] > 0)
			waitpid(kids[i], &st, 0);
	return 0;
}

static int daemonized(const char *pf)
{
	char text[64];
	int port;

	if (daemon(1, 1)) { /* keep cwd and the test's log files */
		perror("lifesrv: daemon");
		return 1;
	}
	int lfd = listen_any(&port);
	catch_term();
	snprintf(text, sizeof(text), "%d %d", port, (int)getpid());
	write_portfile(pf, text);
	serve_until_stop(lfd);
	return 0;
}

static void *ctor_thread(void *arg)
{
	serve_until_stop((int)(long)arg);
	return NULL;
}

/* Runs before main (and before libraries preloaded after libcruddur). */
__attribute__((constructor)) static void early_server(void)
{
	const char *pf = getenv("LIFESRV_PORTFILE");
	char text[64];
	pthread_t th;
	int port, lfd;

	if (!pf)
		return;
	lfd = listen_any(&port);
	if (pthread_create(&th, NULL, ctor_thread, (void *)(long)lfd)) {
		perror("lifesrv: pthread_create");
		exit(1);
	}
	snprintf(text, sizeof(text), "%d", port);
	write_portfile(pf, text);
}

int main(int argc, char **argv)
{
	const char *m = argc > 1 ? argv[1] : "";

	if (!strcmp(m, "prefork") && argc == 4)
		return prefork(atoi(argv[2]), argv[3]);
	if (!strcmp(m, "daemon") && argc == 3)
		return daemonized(argv[2]);
	if (!strcmp(m, "spawn") && argc == 3) {
		char text[64];
		int port, lfd = listen_any(&port);
		spawn_mode = 1;
		catch_term();
		snprintf(text, sizeof(text), "%d", port);
		write_portfile(argv[2], text);
		serve_until_stop(lfd);
		return 0;
	}
	if (!strcmp(m, "ctor")) {
		catch_term();
		while (!stop)
			pause();
		return 0;
	}
	fprintf(stderr, "usage: lifesrv prefork N PORTFILE | daemon PORTFILE | spawn PORTFILE | ctor\n");
	return 2;
}
