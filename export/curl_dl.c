/* curl_dl.c - private loading of libcurl and zlib (see curl_dl.h). */
#include "curl_dl.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "../preload/log.h"

/* Header lists are built before (and often without) libcurl: plain
 * http:// endpoints never load it (http_plain.h). Same layout and
 * allocator (malloc/free, libcurl's defaults), so libcurl takes them too. */
static struct curl_slist *slist_append(struct curl_slist *list, const char *s)
{
	struct curl_slist *n = malloc(sizeof(*n)), *t;

	if (!n || !(n->data = strdup(s))) {
		free(n);
		return NULL;
	}
	n->next = NULL;
	if (!list)
		return n;
	for (t = list; t->next; t = t->next)
		;
	t->next = n;
	return list;
}

static void slist_free_all(struct curl_slist *list)
{
	while (list) {
		struct curl_slist *next = list->next;
		free(list->data);
		free(list);
		list = next;
	}
}

struct crd_curl_api crd_curl = {.slist_append = slist_append, .slist_free_all = slist_free_all};

/* The SONAMEs Debian's libcurl4-openssl-dev and zlib1g provide. */
#define CRD_LIBCURL "libcurl.so.4"
#define CRD_LIBZ    "libz.so.1"
/* openssl/crypto.h OPENSSL_INIT_NO_ATEXIT (OpenSSL >= 1.1.1b). */
#define CRD_OPENSSL_INIT_NO_ATEXIT 0x00080000ull

int crd_curl_load(void)
{
	static int state; /* 0 untried, 1 ok, -1 failed */
	void *h;

	if (state)
		return state > 0 ? 0 : -ENOENT;
	/* state stays 0 while loading: a fork child copied from the middle
	 * of it (the app forks while our exporter thread starts) loads
	 * again instead of finding "failed" and silently dropping its spans. */
	h = dlopen(CRD_LIBCURL, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		state = -1;
		crd_error("cannot load %s (%s): HTTP exporters disabled; install libcurl4",
			  CRD_LIBCURL, dlerror());
		return -ENOENT;
	}
#define SYM(field, name)                                                                           \
	if (!(*(void **)&crd_curl.field = dlsym(h, name)))                                         \
		goto missing;
	SYM(global_init, "curl_global_init")
	SYM(easy_init, "curl_easy_init")
	SYM(easy_setopt, "curl_easy_setopt")
	SYM(easy_perform, "curl_easy_perform")
	SYM(easy_getinfo, "curl_easy_getinfo")
	SYM(easy_cleanup, "curl_easy_cleanup")
	SYM(easy_strerror, "curl_easy_strerror")
	SYM(getdate, "curl_getdate")
#undef SYM
	/* OpenSSL (libcurl's TLS) registers an atexit cleanup when it
	 * initialises. Ours happens on the exporter thread, possibly while
	 * the app is already exiting: that cleanup then frees OpenSSL's locks
	 * under our feet (a crash at exit, seen in tests). Initialise it
	 * first without the atexit handler: its memory goes with the process. */
	int (*ossl_init)(uint64_t, const void *);
	*(void **)&ossl_init = dlsym(h, "OPENSSL_init_crypto");
	if (ossl_init)
		ossl_init(CRD_OPENSSL_INIT_NO_ATEXIT, NULL);
	if (crd_curl.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		state = -1;
		crd_error("curl_global_init failed: HTTP exporters disabled");
		return -ENOENT;
	}
	state = 1;
	return 0;
missing:
	state = -1;
	crd_error("%s lacks a needed function: HTTP exporters disabled", CRD_LIBCURL);
	return -ENOENT;
}

static struct {
	int state;
	int (*init2)(z_streamp, int, int, int, int, int, const char *, int);
	int (*deflate)(z_streamp, int);
	int (*end)(z_streamp);
} z;

static int zlib_load(void)
{
	void *h;

	if (z.state)
		return z.state > 0 ? 0 : -ENOENT;
	h = dlopen(CRD_LIBZ, RTLD_NOW | RTLD_LOCAL); /* z.state stays 0 meanwhile: see above */
	if (!h || !(*(void **)&z.init2 = dlsym(h, "deflateInit2_")) ||
	    !(*(void **)&z.deflate = dlsym(h, "deflate")) ||
	    !(*(void **)&z.end = dlsym(h, "deflateEnd"))) {
		z.state = -1;
		crd_error("cannot load %s: gzip compression disabled", CRD_LIBZ);
		return -ENOENT;
	}
	z.state = 1;
	return 0;
}

size_t crd_gzip_bound(size_t n)
{
	/* zlib's deflateBound for default settings, plus the gzip wrapper
	 * (18 bytes), with margin. */
	return n + (n >> 12) + (n >> 14) + (n >> 25) + 13 + 18 + 64;
}

long crd_gzip(const void *in, size_t n, void *out, size_t cap)
{
	z_stream s;
	int rc;

	if (zlib_load())
		return -ENOENT;
	memset(&s, 0, sizeof(s));
	/* windowBits 15 + 16: a gzip wrapper rather than zlib's. */
	if (z.init2(&s, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY,
		    ZLIB_VERSION, (int)sizeof(s)) != Z_OK)
		return -ENOMEM;
	s.next_in = (Bytef *)in;
	s.avail_in = (uInt)n;
	s.next_out = out;
	s.avail_out = (uInt)cap;
	rc = z.deflate(&s, Z_FINISH);
	z.end(&s);
	return rc == Z_STREAM_END ? (long)s.total_out : -ENOSPC;
}
