/* crashsrv.c - a thread-per-connection HTTP/1.1 server that crashes while
 * serving GET /crash (NULL write in crd_test_request_crash(), after the
 * request head was read and before any answer), so the crash report
 * carries the request in progress; GET /overflow overflows the serving
 * thread's stack in crd_test_request_recurse() (the report needs the
 * thread's alternate signal stack); GET /abort calls abort(). Other paths
 * answer 200 "ok\n".
 *
 *   crashsrv PORTFILE     listen on 127.0.0.1:0, write the port to PORTFILE
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

volatile int crd_test_sink;
char *volatile crd_test_null = 0; /* not provably NULL: the store stays */

__attribute__((noinline)) void crd_test_request_crash(const char *path)
{
	*crd_test_null = path[0];
	crd_test_sink++;
}

__attribute__((noinline)) int crd_test_request_recurse(int n)
{
	volatile char pad[512];
	pad[0] = (char)n;
	if (n < 0) /* never: it only keeps -Winfinite-recursion quiet */
		return 0;
	return crd_test_request_recurse(n + 1) + pad[0];
}

static void *serve(void *arg)
{
	int fd = (int)(long)arg;
	char buf[8192];
	size_t have = 0;
	ssize_t n;

	for (;;) {
		char *end;
		n = read(fd, buf + have, sizeof(buf) - 1 - have);
		if (n <= 0)
			break;
		have += (size_t)n;
		buf[have] = 0;
		end = strstr(buf, "\r\n\r\n");
		if (!end)
			continue;
		char method[16], path[1024];
		if (sscanf(buf, "%15s %1023s", method, path) != 2)
			break;
		if (!strncmp(path, "/crash", 6))
			crd_test_request_crash(path);
		if (!strncmp(path, "/abort", 6))
			abort(); /* SIGABRT while serving (spooled spans test) */
		if (!strncmp(path, "/overflow", 9))
			crd_test_sink = crd_test_request_recurse(0);
		static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n";
		if (write(fd, ok, sizeof(ok) - 1) < 0)
			break;
		have -= (size_t)(end + 4 - buf);
		memmove(buf, end + 4, have);
	}
	close(fd);
	return NULL;
}

int main(int argc, char **argv)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof(a);
	int one = 1, ls = socket(AF_INET, SOCK_STREAM, 0);
	FILE *f;
	char tmp[4096];

	if (argc != 2)
		return 2;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(ls, (struct sockaddr *)&a, sizeof(a)) || listen(ls, 64) ||
	    getsockname(ls, (struct sockaddr *)&a, &len))
		return 1;
	snprintf(tmp, sizeof(tmp), "%s.tmp", argv[1]);
	f = fopen(tmp, "w");
	if (!f)
		return 1;
	fprintf(f, "%d", ntohs(a.sin_port));
	fclose(f);
	rename(tmp, argv[1]);
	for (;;) {
		pthread_t t;
		int c = accept(ls, NULL, NULL);
		if (c < 0)
			continue;
		pthread_create(&t, NULL, serve, (void *)(long)c);
		pthread_detach(t);
	}
}
