/* http1.h - incremental, allocation-free HTTP/1.x message parser.
 *
 * One parser follows one direction of one connection (requests or
 * responses). Bytes may arrive split at any position, down to one byte per
 * call, and every split gives the same results. The parser never buffers a
 * whole line: it copies the fields it cares about straight into bounded
 * destinations (truncating at their caps) and skips everything else (header
 * values with memchr, bodies by count), so its memory is fixed and small
 * (sizeof(struct crd_http1_parser) is well under 256 bytes).
 *
 * Events. Every message produces exactly CRD_HTTP1_HEAD_DONE and then
 * CRD_HTTP1_MSG_DONE, bodiless ones included. crd_http1_feed() stops right
 * after each event: after HEAD_DONE before any body byte, after MSG_DONE
 * before the next (pipelined) message's first byte. At HEAD_DONE every
 * head field (*req, p->resp) is final; only body_size grows after it. For
 * a message without a body, MSG_DONE comes from the NEXT call, which
 * consumes nothing and may have len == 0. So call feed until it returns
 * NEED_MORE (which it only does once all of buf is consumed) or ERROR:
 *
 *   for (;;) {
 *       size_t used;
 *       int ev = crd_http1_feed(p, buf, len, &used);
 *       buf += used; len -= used;
 *       if (ev == CRD_HTTP1_NEED_MORE) break;   // len is 0 now
 *       if (ev == CRD_HTTP1_ERROR) ...;         // not HTTP/1.x: stop tracking
 *       if (ev == CRD_HTTP1_HEAD_DONE) ...;     // head parsed; body may follow
 *       if (ev == CRD_HTTP1_MSG_DONE) ...;      // complete: begin the next
 *   }                                           // message before more bytes
 *
 * (A `while (len)` loop is wrong: a GET ending exactly at the end of buf
 * would get its MSG_DONE only with the next read.)
 *
 * Request parser: before the first byte of each request the caller calls
 * crd_http1_begin_request(p, req) (req normally lives in the span slot); the
 * parser fills *req. Response parser: before the first byte of each response
 * the caller calls crd_http1_begin_response(p, req_method_is_head). Feeding
 * bytes while no message is begun (after init, or after MSG_DONE) is a
 * caller bug and returns CRD_HTTP1_ERROR; feeding len == 0 then returns
 * CRD_HTTP1_NEED_MORE. Empty lines (CRLF or LF) before a start line are
 * skipped on both sides (RFC 9112 section 2.2) and leave the parser idle.
 *
 * Responses: 1xx interim responses (100 Continue) produce HEAD_DONE and
 * MSG_DONE with status 1xx; the caller keeps the same request pending and
 * begins another response. 101 Switching Protocols ends the same way; the
 * caller stops tracking the connection afterwards. A response with neither
 * Content-Length nor Transfer-Encoding (and a body allowed) is
 * close-delimited: every later byte counts as body, and only
 * crd_http1_eof() (connection closed) produces its MSG_DONE. A 2xx answer
 * to CONNECT opens a tunnel (RFC 9112 section 6.3 item 2) that this parser
 * cannot know about: the caller treats it like 101 (p->resp.status is
 * known at HEAD_DONE).
 *
 * Framing (RFC 9112 section 6.3): no body for a response to HEAD, 1xx, 204,
 * 304. Transfer-Encoding whose last coding is chunked wins over
 * Content-Length. A request with neither has no body; a request whose
 * Transfer-Encoding does not end in chunked falls back to Content-Length (a
 * server answers it with 400 anyway); a response whose Transfer-Encoding
 * does not end in chunked is close-delimited. Content-Length must be digits;
 * a list or repeated lines of identical values are accepted, different
 * values are an error.
 *
 * Leniency: bare LF ends any line; obs-fold continuation lines are ignored;
 * a bare CR inside a header value counts as whitespace; header values are
 * not checked for control bytes (only start lines and header names are); a
 * field line whose name has a visible non-token byte ("X.Foo: 1", even
 * without a colon) is ignored, as nginx ignores it (whitespace or a CTL in
 * a name is an error).
 *
 * Thread safety: none; one parser is used by one thread at a time (the
 * caller's per-fd state). Signal safety: async-signal-safe, no allocation
 * (no libc calls beyond memchr/memcmp/memcpy/memset).
 */
#ifndef CRD_HTTP1_H
#define CRD_HTTP1_H

#include <stddef.h>
#include <stdint.h>

#include "span.h"

enum crd_http1_event {
	CRD_HTTP1_NEED_MORE = 0, /* all input consumed, message not complete */
	CRD_HTTP1_HEAD_DONE = 1, /* start line + headers complete */
	CRD_HTTP1_MSG_DONE = 2,	 /* message (head + body) complete */
	CRD_HTTP1_ERROR = -1,	 /* not HTTP/1.x, or over a limit: give up */
};

enum crd_http1_dir { CRD_HTTP1_REQUEST = 0, CRD_HTTP1_RESPONSE = 1 };

/* Limits that make the parser give up (CRD_HTTP1_ERROR) rather than guess.
 * CRD_HTTP1_MAX_HEAD bounds the head counted from its first byte (leading
 * empty lines included) through the LF of its empty line; the same bound
 * applies to each chunk-size line and to a chunked trailer section. HTTP
 * sets no limit and leaves it to the recipient (RFC 9110 section 5.4; RFC
 * 9112 section 3 only asks for request lines of 8000 octets or more); real
 * servers stop well below 64 KB: nginx at 1 KB + 4 x 8 KB by default,
 * Apache at 100 lines of 8 KB. */
#define CRD_HTTP1_MAX_HEAD 65536
/* Header names longer than CRD_HTTP1_MAX_NAME are skipped, not an error
 * (ours, not the RFC's: field names have no limit). In fact every name we
 * look for is much shorter, so a name split across calls keeps only its
 * first CRD_HTTP1_NAME_BUF bytes: the longest we compare, "transfer-encoding",
 * has 17 (the longest value token, "100-continue", 12). */
#define CRD_HTTP1_MAX_NAME 64
#define CRD_HTTP1_NAME_BUF 18

/* Response-side results (the request side writes into *req). */
struct crd_http1_resp {
	uint16_t status;	 /* 100..599 */
	uint8_t version_minor;	 /* HTTP/1.<minor>: 0 or 1 */
	uint8_t conn_close;	 /* Connection: close, or HTTP/1.0 without keep-alive */
	uint8_t chunked;	 /* last Transfer-Encoding coding is chunked (even if no body) */
	uint8_t close_delimited; /* body ends at connection close */
	int64_t content_length;	 /* -1 when absent (reported even when no body) */
	uint64_t body_size;	 /* body bytes seen (decoded size for chunked) */
};

/* Parser state. Embed it in per-connection state; the fields below resp are
 * private to http1.c. */
struct crd_http1_parser {
	struct crd_http_req *req;   /* request side: destination */
	struct crd_http1_resp resp; /* response side: results */
	uint64_t remaining;	    /* body/chunk bytes left; number being read */
	uint32_t head_bytes;	    /* bytes of the head (chunk line, trailers) */
	uint16_t field_len;	    /* bytes stored in the current string field */
	uint16_t mflags;	    /* per-message facts (http1.c M_*) */
	uint8_t dir;		    /* enum crd_http1_dir */
	uint8_t state;
	uint8_t head_request;	       /* response to a HEAD request: no body */
	uint8_t hdr;		       /* which known header's value is being read */
	uint8_t count;		       /* chars of the current lexeme */
	uint8_t vflags;		       /* per-value facts (http1.c V_*) */
	char name[CRD_HTTP1_NAME_BUF]; /* lowercased name prefix, or value token */
};

void crd_http1_init(struct crd_http1_parser *p, enum crd_http1_dir dir);

/* Request side: start a new request whose head goes to *req. The callee
 * resets it: every string "", content_length -1, the other fields 0. Only
 * each string's first byte is cleared (a full memset costs as much as a
 * small request): bytes after a string's NUL are unspecified. req must stay
 * valid until MSG_DONE. */
void crd_http1_begin_request(struct crd_http1_parser *p, struct crd_http_req *req);

/* Response side: start a new response; head_request says the request it
 * answers was HEAD (so the response has no body whatever it says). Resets
 * p->resp (content_length -1). */
void crd_http1_begin_response(struct crd_http1_parser *p, int head_request);

/* Feed bytes. Sets *used to the bytes consumed (<= len) and returns an
 * event (see the loop above). After CRD_HTTP1_ERROR the parser stays in
 * error until crd_http1_init(), begin_* included (every later feed returns
 * it with *used == 0). Beginning the wrong kind of message (begin_response
 * on a request parser) also puts it in error. buf may be NULL when len is
 * 0. */
int crd_http1_feed(struct crd_http1_parser *p, const char *buf, size_t len, size_t *used);

/* n body bytes of the current message went by unseen (sendfile(), which
 * servers use for static files after writing the head). They count as
 * body: CRD_HTTP1_MSG_DONE when they end a Content-Length body,
 * CRD_HTTP1_NEED_MORE when more is due (or the body is close-delimited),
 * CRD_HTTP1_ERROR (sticky) when they do not fit in the body or the current
 * chunk's data, or no body is being read: the framing went by unseen.
 * n == 0 is the same as crd_http1_feed() with no bytes. */
int crd_http1_skip_body(struct crd_http1_parser *p, size_t n);

/* The connection closed (or the write side shut down). Returns
 * CRD_HTTP1_MSG_DONE when that completes a message (a close-delimited body,
 * or a bodiless message whose MSG_DONE feed has not yet returned),
 * CRD_HTTP1_NEED_MORE when between messages (nothing in progress, or only
 * empty lines seen), else CRD_HTTP1_ERROR (message cut short; sticky). */
int crd_http1_eof(struct crd_http1_parser *p);

/* True when no message is in progress (between messages: after init, after
 * MSG_DONE, or begun with at most empty lines seen). False after ERROR. */
int crd_http1_idle(const struct crd_http1_parser *p);

#endif
