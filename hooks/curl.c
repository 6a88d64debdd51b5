/* curl.c - interposers for the app's libcurl easy interface.
 *
 * curl_easy_setopt is variadic: its one argument is a long, a pointer, a
 * function pointer or a curl_off_t depending on the option's type range
 * (curl.h CURLOPTTYPE_*), and is forwarded as that type. Our exporter's own
 * libcurl is a private copy whose calls never come here.
 */
#include <stdarg.h>

#include "../preload/curl_span.h"
#include "../preload/init.h"
#include "hook.h"

typedef void (*crd_fnptr)(void);

CRD_HOOK CURLcode curl_easy_setopt(CURL *h, CURLoption opt, ...)
{
	va_list ap;
	CURLcode rc;

	va_start(ap, opt);
	if (!CRD_REAL(curl_easy_setopt)) {
		va_end(ap);
		return CURLE_FAILED_INIT;
	}
	if (opt < CURLOPTTYPE_OBJECTPOINT) {
		long v = va_arg(ap, long);
		rc = CRD_REAL(curl_easy_setopt)(h, opt, v);
	} else if (opt < CURLOPTTYPE_FUNCTIONPOINT) {
		void *p = va_arg(ap, void *);
		rc = CRD_REAL(curl_easy_setopt)(h, opt, p);
		if (rc == CURLE_OK && opt == CURLOPT_HTTPHEADER && crd_active && !crd_guard)
			crd_curl_set_headers(h, p);
	} else if (opt < CURLOPTTYPE_OFF_T) {
		crd_fnptr f = va_arg(ap, crd_fnptr);
		rc = CRD_REAL(curl_easy_setopt)(h, opt, f);
	} else if (opt < CURLOPTTYPE_BLOB) {
		curl_off_t v = va_arg(ap, curl_off_t);
		rc = CRD_REAL(curl_easy_setopt)(h, opt, v);
	} else {
		void *p = va_arg(ap, void *);
		rc = CRD_REAL(curl_easy_setopt)(h, opt, p);
	}
	va_end(ap);
	return rc;
}

CRD_HOOK CURLcode curl_easy_perform(CURL *h)
{
	if (!CRD_REAL(curl_easy_perform))
		return CURLE_FAILED_INIT;
	if (!crd_active || crd_guard || crd_in_curl)
		return CRD_REAL(curl_easy_perform)(h);
	return crd_curl_perform(h);
}

CRD_HOOK void curl_easy_reset(CURL *h)
{
	if (crd_active)
		crd_curl_forget(h);
	if (CRD_REAL(curl_easy_reset))
		CRD_REAL(curl_easy_reset)(h);
}

CRD_HOOK void curl_easy_cleanup(CURL *h)
{
	if (crd_active)
		crd_curl_forget(h);
	if (CRD_REAL(curl_easy_cleanup))
		CRD_REAL(curl_easy_cleanup)(h);
}

CRD_HOOK CURL *curl_easy_duphandle(CURL *h)
{
	CURL *d = CRD_REAL(curl_easy_duphandle) ? CRD_REAL(curl_easy_duphandle)(h) : NULL;
	if (d && crd_active)
		crd_curl_dup(h, d);
	return d;
}
