/* span.h - the span record and its semantic-convention view.
 *
 * A struct crd_span is a fixed-size record: the hook path fills it in place
 * (it lives in a preallocated slot, see pool.h), so it holds bounded copies of
 * what the HTTP parser saw, never pointers into app memory. The exporter
 * thread turns it into a struct crd_span_view (name, attributes, flags) with
 * crd_span_view(); every encoder (OTLP protobuf, OTLP JSON, console, later
 * X-Ray) reads only the view, so the semantic conventions live in one place.
 */
#ifndef CRD_SPAN_H
#define CRD_SPAN_H

#include <stddef.h>
#include <stdint.h>

/* Field caps. Values longer than these are truncated (the parser sets
 * CRD_REQ_TRUNCATED), never buffered without limit. */
#define CRD_METHOD_MAX	    24	 /* longest registered method is 17 chars */
#define CRD_TARGET_MAX	    1024 /* path + query; longer URLs truncated */
#define CRD_HOST_MAX	    256	 /* RFC 1035 name (253) + ":port" fits mostly */
#define CRD_UA_MAX	    256
#define CRD_XFF_MAX	    64	/* first hop of X-Forwarded-For only */
#define CRD_TRACEPARENT_MAX 64	/* version 00 is exactly 55 chars */
#define CRD_TRACESTATE_MAX  512 /* W3C: 32 members; vendors cap at 512 */
#define CRD_XAMZN_MAX	    256 /* X-Amzn-Trace-Id value */

/* struct crd_http_req: the head of one HTTP/1.x request, as the parser
 * extracted it. Strings are NUL-terminated; an absent header is "". */
enum {
	CRD_REQ_TRUNCATED = 1 << 0,	  /* some field was cut at its cap */
	CRD_REQ_CHUNKED = 1 << 1,	  /* Transfer-Encoding: chunked */
	CRD_REQ_CONN_CLOSE = 1 << 2,	  /* Connection: close */
	CRD_REQ_KEEPALIVE = 1 << 3,	  /* Connection: keep-alive */
	CRD_REQ_EXPECT_100 = 1 << 4,	  /* Expect: 100-continue */
	CRD_REQ_DUP_TRACEPARENT = 1 << 5, /* more than one traceparent: invalid */
};

struct crd_http_req {
	char method[CRD_METHOD_MAX];
	char target[CRD_TARGET_MAX];
	char host[CRD_HOST_MAX];
	char user_agent[CRD_UA_MAX];
	char xff[CRD_XFF_MAX];
	char traceparent[CRD_TRACEPARENT_MAX];
	char tracestate[CRD_TRACESTATE_MAX];
	char xamzn[CRD_XAMZN_MAX];
	uint8_t version_minor;	/* HTTP/1.<minor>: 0 or 1 */
	uint8_t flags;		/* CRD_REQ_* */
	int64_t content_length; /* -1 when absent */
	uint64_t body_size;	/* body bytes seen (decoded size for chunked) */
};

/* A socket address in binary form (formatted only by the exporter). */
struct crd_addr {
	uint8_t family; /* 0 (unknown), AF_INET, AF_INET6, AF_UNIX */
	uint16_t port;	/* host order */
	uint8_t addr[16];
};

/* OTLP SpanKind / StatusCode values, used as is on the wire. */
enum { CRD_KIND_SERVER = 2, CRD_KIND_CLIENT = 3 };
enum { CRD_STATUS_UNSET = 0, CRD_STATUS_OK = 1, CRD_STATUS_ERROR = 2 };

/* How a span ended when it did not end with a complete response. */
enum {
	CRD_END_OK = 0,	    /* response complete */
	CRD_END_CLOSED = 1, /* connection closed mid-message */
	CRD_END_EXIT = 2,   /* process exit with the request in flight */
	CRD_END_PARSE = 3,  /* response bytes were not HTTP/1.x */
};

struct crd_span {
	uint8_t trace_id[16];
	uint8_t span_id[8];
	uint8_t parent_span_id[8];   /* all zero: root span */
	uint8_t kind;		     /* CRD_KIND_* */
	uint8_t sampled;	     /* W3C sampled flag we propagate/exported */
	uint8_t parent_remote;	     /* parent came from an incoming header */
	uint8_t end_reason;	     /* CRD_END_* */
	uint16_t status;	     /* HTTP status code; 0 = no response */
	uint64_t start_ns;	     /* unix epoch ns, first request byte */
	uint64_t end_ns;	     /* unix epoch ns, last response byte */
	int64_t resp_content_length; /* -1 when absent */
	uint64_t resp_body_size;     /* response body bytes seen */
	struct crd_addr peer;	     /* remote end of the socket */
	struct crd_addr local;	     /* local end of the socket */
	char error_type[32];	     /* client: why it failed (curl error name), or "" */
	char proto_version[4];	     /* client via curl: "1.1", "2", ...; "" = from req */
	struct crd_http_req req;     /* client spans: target may be an absolute URL */
};

/* ---- the view: what encoders read ---- */

enum crd_attr_type { CRD_ATTR_STR, CRD_ATTR_INT, CRD_ATTR_BOOL, CRD_ATTR_DOUBLE };

/* One attribute. For strings, s points at len bytes (not necessarily
 * NUL-terminated) owned by the span, the view, or static storage. */
struct crd_attr {
	const char *key;
	uint8_t type;
	const char *s;
	size_t len;
	int64_t i; /* CRD_ATTR_INT, CRD_ATTR_BOOL (0/1) */
	double d;
};

#define CRD_VIEW_MAX_ATTRS 32
#define CRD_VIEW_SCRATCH   2048

/* Everything an encoder needs for one span. Pointers are valid as long as
 * the span and the view are. */
struct crd_span_view {
	const uint8_t *trace_id;       /* 16 bytes */
	const uint8_t *span_id;	       /* 8 bytes */
	const uint8_t *parent_span_id; /* 8 bytes, or NULL for a root span */
	const char *trace_state;       /* "" when none */
	const char *name;
	int kind; /* CRD_KIND_* */
	uint64_t start_ns, end_ns;
	uint32_t flags;		    /* OTLP Span.flags (W3C flags + remote bits) */
	int status_code;	    /* CRD_STATUS_* */
	const char *status_message; /* "" when none */
	size_t nattrs;		    /* before attrs: see crd_span_view_pack() */
	size_t scratch_used;
	struct crd_attr attrs[CRD_VIEW_MAX_ATTRS];
	char scratch[CRD_VIEW_SCRATCH]; /* formatted addresses, status text */
};

/* A list of attributes with a name/version: used for the Resource and the
 * InstrumentationScope of an export request. */
struct crd_attr_list {
	const struct crd_attr *attrs;
	size_t n;
};

/* Build the view of a finished span per the stable HTTP semantic
 * conventions. Exporter thread only (formats into v->scratch). */
void crd_span_view(const struct crd_span *s, struct crd_span_view *v);

/* Move what v's scratch holds right after attrs[nattrs] (pointers follow)
 * and return the bytes v now needs (a multiple of 8): the next view can
 * start there. A packed view reads the same through every field but
 * scratch, which must no longer be used (nor anything past the size).
 * Why: 512 full views are 1.8 MiB, all of it resident; packed they are
 * ~0.4 MiB (issue #7). Exporter thread only, like crd_span_view(). */
size_t crd_span_view_pack(struct crd_span_view *v);

int crd_all_zero_bytes(const uint8_t *p, size_t n);

/* Secrets (issue #8). All three are async-signal-safe (the crash handler
 * spools span records through crd_redact_target()).
 * crd_secret_name: 1 when a query parameter name (n bytes) looks secret:
 *   case-insensitive substrings of the CRUDDUR_REDACT list (token, key,
 *   secret, password, passwd, signature, credential, session and the
 *   user's), and X-Amz-*.
 * crd_secret_header: 1 for Authorization, Proxy-Authorization, Cookie,
 *   Set-Cookie and any header name crd_secret_name() flags: such a value
 *   is never exported (REDACTED where the header is kept at all).
 * crd_redact_target: a request target or URL with user:password@ replaced
 *   by REDACTED:REDACTED@ and secret query values by REDACTED, into out
 *   (NUL-terminated, cut to cap - 1); returns its length. */
int crd_secret_name(const char *k, size_t n);
int crd_secret_header(const char *name);
size_t crd_redact_target(char *out, size_t cap, const char *target);

#endif
