/* guard.h - the per-thread "this is our own I/O" flag.
 *
 * Set on the exporter thread for its whole life and around every piece of
 * library code that may do I/O on an app thread (logging, exec flush), so
 * that our hooks pass such calls straight through: our own traffic is never
 * instrumented. initial-exec TLS: one %fs-relative load, no
 * __tls_get_addr call, safe because the library is loaded at start-up
 * (LD_PRELOAD) and never dlopen'ed.
 */
#ifndef CRD_GUARD_H
#define CRD_GUARD_H

extern __thread int crd_guard __attribute__((tls_model("initial-exec")));

/* Set while the app's curl_easy_perform runs on this thread: the transfer
 * gets its span from the curl hook, so its sockets are not followed as
 * raw client connections too. */
extern __thread int crd_in_curl __attribute__((tls_model("initial-exec")));

#endif
