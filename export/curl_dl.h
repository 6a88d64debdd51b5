/* curl_dl.h - libcurl and zlib, loaded at run time with RTLD_LOCAL.
 *
 * Linking them would put their symbols (and OpenSSL's) in every
 * instrumented process's global scope, where they could interpose on the
 * app's own copies; loading them privately on the exporter thread keeps
 * the app's symbol table exactly as it was. Our hooks still see libcurl's
 * socket calls, but the exporter thread's I/O guard makes them pass
 * through.
 *
 * Thread safety: crd_curl_load() once, from the exporter thread.
 */
#ifndef CRD_CURL_DL_H
#define CRD_CURL_DL_H

#include <curl/curl.h>
#include <stddef.h>
#include <stdint.h>

struct crd_curl_api {
	CURLcode (*global_init)(long);
	CURL *(*easy_init)(void);
	CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
	CURLcode (*easy_perform)(CURL *);
	CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
	void (*easy_cleanup)(CURL *);
	const char *(*easy_strerror)(CURLcode);
	struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
	void (*slist_free_all)(struct curl_slist *);
	time_t (*getdate)(const char *, const time_t *);
};

extern struct crd_curl_api crd_curl;

/* 0 when libcurl is usable, -ENOENT (after one message) otherwise. */
int crd_curl_load(void);

/* gzip (RFC 1952) in into out; returns the size or -errno. -ENOSPC when
 * out is too small. Loads zlib on first use. */
long crd_gzip(const void *in, size_t n, void *out, size_t cap);

/* An upper bound of crd_gzip's output for n input bytes. */
size_t crd_gzip_bound(size_t n);

#endif
