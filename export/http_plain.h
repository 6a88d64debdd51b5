/* http_plain.h - a minimal HTTP/1.1 POST client for plain http:// URLs.
 *
 * Why: libcurl pulls in OpenSSL, GnuTLS, Kerberos, LDAP, libssh2 and more
 * (about 4.5 MiB of resident memory in every instrumented process, issue
 * #7), and a curl_easy_perform costs far more than the few system calls a
 * POST needs. An http:// endpoint (a local collector, the X-Ray daemon's
 * neighbours, a sidecar) needs none of that: this client sends the POST
 * over a kept-alive socket and reads the answer. https://, URLs with
 * user:password@, and proxies (http_proxy/all_proxy in the environment)
 * stay with libcurl, loaded only then.
 *
 * Exporter thread only (not thread-safe, not signal-safe). Our own I/O:
 * the exporter thread's guard makes the hooks pass it through; reads,
 * writes and close go through CRD_REAL.
 */
#ifndef CRD_HTTP_PLAIN_H
#define CRD_HTTP_PLAIN_H

#include <stddef.h>
#include <stdint.h>

struct curl_slist;

/* A new client for url, or NULL when url is not one this client serves
 * (https, user:password@, a proxy is configured, malformed): libcurl then. */
struct crd_plain *crd_plain_new(const char *url);

/* Is url the one p was made for? */
int crd_plain_serves(const struct crd_plain *p, const char *url);

/* The Host header value it sends, and the request path ("" for "/"):
 * what a signature (sigv4.h) covers. */
const char *crd_plain_host(const struct crd_plain *p);
const char *crd_plain_path(const struct crd_plain *p);

/* libcurl's CURLOPT_HEADERFUNCTION / CURLOPT_WRITEFUNCTION shape: one
 * header line (with its CRLF) or a piece of the body, arg as given. */
typedef size_t (*crd_plain_cb)(char *p, size_t size, size_t n, void *arg);

/* One attempt: POST body with headers (libcurl's list conventions: "K:"
 * drops a header, "K;" sends it empty), at most timeout_ms, connecting for
 * at most connect_ms. Sets *status and feeds the final response's header
 * lines and (decoded) body to on_header/on_body. 0 when a response came
 * (any status), -errno on a transport failure (*why: libcurl's words). */
int crd_plain_post(struct crd_plain *p, const struct curl_slist *headers, const void *body,
		   size_t len, long timeout_ms, long connect_ms, long *status,
		   crd_plain_cb on_header, crd_plain_cb on_body, void *arg, const char **why);

void crd_plain_free(struct crd_plain *p);

#endif
