/* curl_span.h - CLIENT spans for the app's curl_easy_perform transfers.
 *
 * libcurl gives no way to read an option back, so the hooks remember each
 * easy handle's CURLOPT_HTTPHEADER list here. For a transfer we add our
 * trace headers to a copy of that list (never to the app's list, never a
 * header the app set itself), set it for the transfer, and put the app's
 * list back afterwards, so the app's reuse of the handle is unchanged.
 *
 * Thread safety: any thread (the handle map has its own mutex; it is
 * touched by curl calls only, never by socket hooks).
 */
#ifndef CRD_CURL_SPAN_H
#define CRD_CURL_SPAN_H

#include <curl/curl.h>

/* The app set CURLOPT_HTTPHEADER (successfully) on h. */
void crd_curl_set_headers(CURL *h, struct curl_slist *list);
/* curl_easy_reset / curl_easy_cleanup: h's list is gone. */
void crd_curl_forget(CURL *h);
/* curl_easy_duphandle: dup shares h's options. */
void crd_curl_dup(CURL *h, CURL *dup);

/* Run the real perform around a CLIENT span. */
CURLcode crd_curl_perform(CURL *h);

#endif
