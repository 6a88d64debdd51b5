/* Unit tests: redaction rules, log scrubbing, the crash spans spool. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../export/queue.h"
#include "../../preload/config.h"
#include "../../preload/log.h"
#include "../../preload/rec.h"
#include "../../preload/span.h"
#include "../../preload/spanspool.h"

/* The constructor (init.c, linked in) loaded the settings already: add
 * what CRUDDUR_REDACT=ticket,sig would (config.c lowercases them). */
static void load(void)
{
	crd_config_load();
	crd_cfg.redact[crd_cfg.nredact++] = "ticket";
	crd_cfg.redact[crd_cfg.nredact++] = "sig";
	free(crd_cfg.service_name); /* the loader's copy (ASan counts leaks) */
	crd_cfg.service_name = "unit-secrets";
}

static const char *redact(const char *t)
{
	static char out[CRD_TARGET_MAX];
	crd_redact_target(out, sizeof(out), t);
	return out;
}

Test(secrets, query_names, .init = load)
{
	const char *yes[] = {"token", "access_token", "api_key", "APIKEY", "client_secret",
			     "password", "passwd", "signature", "X-Amz-Signature",
			     "x-amz-credential", "X-Amz-Security-Token", "X-Amz-Date", "session",
			     "TICKET", "sig"};
	const char *no[] = {"page", "q", "sort", "id", "lang"};
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		cr_assert(crd_secret_name(yes[i], strlen(yes[i])), "%s", yes[i]);
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		cr_assert(!crd_secret_name(no[i], strlen(no[i])), "%s", no[i]);
}

Test(secrets, headers, .init = load)
{
	cr_assert(crd_secret_header("Authorization"));
	cr_assert(crd_secret_header("proxy-authorization"));
	cr_assert(crd_secret_header("Cookie"));
	cr_assert(crd_secret_header("SET-COOKIE"));
	cr_assert(crd_secret_header("X-Api-Key"));
	cr_assert(crd_secret_header("X-Auth-Token"));
	cr_assert(!crd_secret_header("User-Agent"));
	cr_assert(!crd_secret_header("Host"));
	cr_assert(!crd_secret_header("traceparent"));
}

Test(secrets, targets, .init = load)
{
	cr_assert_str_eq(redact("/p?token=abc&page=2"), "/p?token=REDACTED&page=2");
	cr_assert_str_eq(redact("/p?X-Amz-Signature=s&X-Amz-Credential=c&ok=1"),
			 "/p?X-Amz-Signature=REDACTED&X-Amz-Credential=REDACTED&ok=1");
	cr_assert_str_eq(redact("/p?ticket=t1&flag&sig=x"), "/p?ticket=REDACTED&flag&sig=REDACTED");
	cr_assert_str_eq(redact("http://u:pw@h:8/a?password=x#frag"),
			 "http://REDACTED:REDACTED@h:8/a?password=REDACTED#frag");
	cr_assert_str_eq(redact("https://tok@h/"), "https://REDACTED:REDACTED@h/");
	cr_assert_str_eq(redact("/plain/path"), "/plain/path");
	/* an @ in the path is not userinfo */
	cr_assert_str_eq(redact("http://h/users/a@b"), "http://h/users/a@b");
	/* idempotent: shipping re-applies it */
	cr_assert_str_eq(redact(redact("http://u:pw@h/?api_key=1")),
			 "http://REDACTED:REDACTED@h/?api_key=REDACTED");
	/* no room: cut before a value that might be secret, never keep it */
	char small[12];
	crd_redact_target(small, sizeof(small), "/p?token=abcdef");
	cr_assert(!strstr(small, "abc"), "%s", small);
}

Test(secrets, span_view_url_full_and_query, .init = load)
{
	static struct crd_span s;
	static struct crd_span_view v;
	int full = 0;

	memset(&s, 0, sizeof(s));
	s.kind = CRD_KIND_CLIENT;
	strcpy(s.req.method, "GET");
	strcpy(s.req.target, "http://bob:pw@api.local:81/x?api_key=k1&a=b");
	strcpy(s.req.host, "api.local:81");
	crd_span_view(&s, &v);
	for (size_t i = 0; i < v.nattrs; i++)
		if (!strcmp(v.attrs[i].key, "url.full")) {
			full = 1;
			cr_assert_eq(strncmp(v.attrs[i].s,
					     "http://REDACTED:REDACTED@api.local:81/x?api_key=REDACTED&a=b",
					     v.attrs[i].len),
				     0, "%.*s", (int)v.attrs[i].len, v.attrs[i].s);
		}
	cr_assert(full);
}

Test(secrets, log_scrub)
{
	char line[256];
	size_t n;

	crd_log_secret("hunter2-secret-value");
	crd_log_secret("abc"); /* too short: not registered */
	strcpy(line, "cruddur: HTTP 400: x-api-key: hunter2-secret-value, again "
		     "hunter2-secret-value; abc stays");
	n = crd_log_scrub(line, strlen(line), sizeof(line) - 1);
	cr_assert_eq(n, strlen(line));
	cr_assert_str_eq(line, "cruddur: HTTP 400: x-api-key: REDACTED, again REDACTED; abc stays");
	strcpy(line, "cruddur: X=ftp://user:pa55@host/x: bad; http://h/a@b ok");
	crd_log_scrub(line, strlen(line), sizeof(line) - 1);
	cr_assert_str_eq(line, "cruddur: X=ftp://REDACTED:REDACTED@host/x: bad; http://h/a@b ok");
	/* at the end of a full buffer: cut, never overflow */
	char tight[40];
	strcpy(tight, "cruddur: k=hunter2-secret-value!!");
	n = crd_log_scrub(tight, strlen(tight), sizeof(tight) - 1);
	cr_assert_eq(n, strlen(tight));
	cr_assert(!strstr(tight, "hunter2"));
}

static struct crd_rec *queued(const char *target, uint8_t first_byte)
{
	struct crd_rec *r = crd_pool_get(&crd_rec_pool);

	cr_assert(r);
	memset(&r->span, 0, sizeof(r->span));
	r->type = CRD_REC_SPAN;
	r->span.kind = CRD_KIND_SERVER;
	r->span.span_id[0] = first_byte;
	r->span.status = 200;
	strcpy(r->span.req.method, "GET");
	strcpy(r->span.req.target, target);
	cr_assert_eq(crd_queue_push(r), 0);
	return r;
}

Test(spanspool, write_and_check, .init = load)
{
	char dir[] = "/tmp/crd-spool-XXXXXX", path[256];
	static char buf[16 * sizeof(struct crd_span) + sizeof(struct crd_spans_hdr)];
	const struct crd_spans_hdr *h = (const void *)buf;
	const struct crd_span *s;
	struct stat st;
	int dfd, fd, n;
	ssize_t got;

	cr_assert_eq(crd_pool_init(&crd_rec_pool, sizeof(struct crd_rec), 64), 0);
	cr_assert_eq(crd_queue_init(16, 8), 0);
	cr_assert_not_null(mkdtemp(dir));
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	/* nothing queued: no file */
	cr_assert_eq(crd_spanspool_write(dfd, 1, 2), 0);
	cr_assert_str_eq(crd_spanspool_last_name(), "");
	queued("/a?token=s3cret1&x=1", 1);
	queued("http://u:pw9@h/b?password=s3cret2", 2);
	struct crd_rec *logrec = queued("/not-a-span", 3);
	logrec->type = 2; /* another record type (captured output): not spooled */
	umask(0277);
	n = crd_spanspool_write(dfd, 1234567, 42);
	umask(022);
	cr_assert_eq(n, 2);
	/* the queue is untouched: the exporter may still send them */
	cr_assert_eq(crd_queue_len(), 3);
	cr_assert_eq(strncmp(crd_spanspool_last_name(), "spans-1234567-", 14), 0);
	snprintf(path, sizeof(path), "%s/%s", dir, crd_spanspool_last_name());
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600, "mode %o under umask 277", st.st_mode & 0777);
	fd = open(path, O_RDONLY);
	got = read(fd, buf, sizeof(buf));
	close(fd);
	cr_assert_eq(crd_spanspool_check(h, (size_t)got), 0);
	cr_assert_eq((size_t)got, sizeof(*h) + 2 * sizeof(struct crd_span));
	cr_assert_str_eq(h->service, "unit-secrets");
	cr_assert_eq(h->pid, getpid());
	cr_assert(!memmem(buf, (size_t)got, "s3cret", 6), "a secret is in the spool file");
	cr_assert(!memmem(buf, (size_t)got, "pw9", 3), "userinfo is in the spool file");
	s = (const void *)(buf + sizeof(*h));
	cr_assert_str_eq(s[0].req.target, "/a?token=REDACTED&x=1");
	cr_assert_str_eq(s[1].req.target, "http://REDACTED:REDACTED@h/b?password=REDACTED");
	cr_assert_eq(s[0].span_id[0], 1);
	cr_assert_eq(s[1].span_id[0], 2);
	/* a reader of another layout, or a torn file, refuses it */
	cr_assert_eq(crd_spanspool_check(h, (size_t)got - 1), -EINVAL);
	((struct crd_spans_hdr *)h)->layout ^= 1;
	cr_assert_eq(crd_spanspool_check(h, (size_t)got), -EPROTO);
	unlink(path);
	close(dfd);
	rmdir(dir);
}

Test(spanspool, claimable)
{
	char base[64];

	cr_assert(crd_spanspool_claimable("spans-1-2-3.crs", base, sizeof(base)));
	cr_assert_str_eq(base, "spans-1-2-3.crs");
	cr_assert(!crd_spanspool_claimable(".tmp-spans-1-2-3.crs", base, sizeof(base)));
	cr_assert(!crd_spanspool_claimable("crash-1-2-3.crd", base, sizeof(base)));
	/* a live claimer keeps its claim; a dead one's is taken over */
	char live[64];
	snprintf(live, sizeof(live), "spans-1-2-3.crs.sending-%d", (int)getpid());
	cr_assert(!crd_spanspool_claimable(live, base, sizeof(base)));
	cr_assert(crd_spanspool_claimable("spans-1-2-3.crs.sending-999999999", base, sizeof(base)));
	cr_assert_str_eq(base, "spans-1-2-3.crs");
}
