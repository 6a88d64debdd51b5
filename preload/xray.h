/* xray.h - AWS X-Ray: settings, sampling rules, the sampler, naming.
 *
 * The X-Ray SDKs' behaviour without their code (aws-xray-sdk-python
 * core/sampling, core/daemon_config.py; X-Ray developer guide: "Sampling
 * rules", "Segment documents"):
 *
 *   - AWS_XRAY_DAEMON_ADDRESS (`host:port`, or `tcp:host:port udp:host:port`
 *     in either order) enables X-Ray: export/xray.c sends every sampled
 *     server span to the daemon's UDP port as a segment document.
 *   - Segment name: the request's Host when it matches the wildcard pattern
 *     CRUDDUR_XRAY_NAMING (the SDKs' dynamic naming), else
 *     AWS_XRAY_TRACING_NAME, else the OTel service name; reduced to the
 *     characters X-Ray accepts, at most 200 of them.
 *   - Sampling (when OTEL_TRACES_SAMPLER is not set): an incoming decision
 *     (traceparent, X-Amzn-Trace-Id Sampled=0/1) wins; otherwise the first
 *     matching rule decides: its reservoir (fixed_target requests per
 *     second) first, then its rate. Rules come from the file
 *     CRUDDUR_XRAY_SAMPLING_RULES, in the SDK local format (version 1 or 2)
 *     or the AWS CLI format ({"SamplingRule": {...}}, a list of those, or
 *     {"SamplingRuleRecords": [...]} as `aws xray get-sampling-rules`
 *     prints). Without a file: the SDK default, 1 per second then 5%.
 *
 * Thread safety: crd_xray_cfg is written by crd_xray_config_load() (from
 * the constructor) and read-only afterwards, except each rule's reservoir
 * word, which is updated with atomics. crd_xray_sample() and everything
 * it calls run on the hook path: no allocation, no lock, no system call
 * (the clock is the vDSO), async-signal-safe.
 */
#ifndef CRD_XRAY_H
#define CRD_XRAY_H

#include <stddef.h>
#include <stdint.h>

#include "span.h"

/* X-Ray segment names: at most 200 characters (X-Ray developer guide,
 * "Segment documents", name). */
#define CRD_XRAY_NAME_MAX 200
/* The SDK default rule: 1 request per second, then 5% (sampling_rule.json
 * of the SDKs; X-Ray developer guide "Sampling rules"). */
#define CRD_XRAY_DEFAULT_FIXED_TARGET 1
#define CRD_XRAY_DEFAULT_RATE	      0.05
/* Rules files larger than this are refused (a rules file is a few KB). */
#define CRD_XRAY_RULES_FILE_MAX (1 << 20)
/* The daemon's default address (X-Ray developer guide, "X-Ray daemon"). */
#define CRD_XRAY_DEFAULT_PORT 2000

enum crd_xray_rules_format {
	CRD_XRAY_RULES_BUILTIN = 0, /* no file: the SDK default rule */
	CRD_XRAY_RULES_V1 = 1,	    /* SDK local rules, version 1 (service_name) */
	CRD_XRAY_RULES_V2 = 2,	    /* SDK local rules, version 2 (host) */
	CRD_XRAY_RULES_CLI = 3,	    /* AWS API/CLI SamplingRule objects */
};

struct crd_xray_rule {
	char *name;    /* RuleName (CLI format), or NULL */
	long priority; /* CLI format: lower wins; local rules keep file order */
	/* Wildcard patterns (`*`, `?`, case-insensitive); NULL matches all. */
	char *service;	    /* ServiceName: the segment name */
	char *service_type; /* ServiceType: the segment origin */
	char *host;	    /* Host header (v1: service_name, as the SDKs do) */
	char *method;
	char *path;	       /* URL path, without the query */
	uint32_t fixed_target; /* reservoir: requests per second */
	double rate;	       /* then this fraction of the rest */
	uint64_t reservoir;    /* atomic: (epoch second << 32) | taken this second */
};

struct crd_xray_rules {
	struct crd_xray_rule *rules; /* in match order */
	size_t n;
	struct crd_xray_rule def; /* used when no rule matches */
	int format;		  /* enum crd_xray_rules_format */
};

/* What a rule is matched against; NULL or "" fields match any pattern
 * (the SDKs' "implicit match" of a missing value). */
struct crd_xray_request {
	const char *service;
	const char *service_type;
	const char *host;
	const char *method;
	const char *path;
	size_t path_len;
};

struct crd_xray_config {
	int enabled;	  /* AWS_XRAY_DAEMON_ADDRESS set and usable */
	int root_sampler; /* the rules decide new traces (OTEL_TRACES_SAMPLER unset) */
	char *udp_host;	  /* the daemon's UDP endpoint (resolved by the sink) */
	uint16_t udp_port;
	char *tcp_host; /* its TCP endpoint (sampling API proxy) */
	uint16_t tcp_port;
	char *name;	    /* segment name: AWS_XRAY_TRACING_NAME or the service name */
	char *naming;	    /* CRUDDUR_XRAY_NAMING host pattern, or NULL */
	const char *origin; /* "AWS::ECS::Container"...: detected, or NULL */
	struct crd_xray_rules rules;
};

extern struct crd_xray_config crd_xray_cfg;

/* Read the X-Ray settings (called once by crd_config_load(), after the
 * service name is known). Bad values: one `cruddur:` line each, that
 * feature off (a bad rules file: the default rule). */
void crd_xray_config_load(void);

/* AWS_XRAY_DAEMON_ADDRESS: 0, or -EINVAL with *why set. Heap copies of
 * the hosts. */
int crd_xray_parse_daemon(const char *s, char **udp_host, uint16_t *udp_port, char **tcp_host,
			  uint16_t *tcp_port, const char **why);

/* Rules: parse a file's text (0, or -EINVAL with a reason in why), the
 * built-in default, free. */
int crd_xray_rules_parse(const char *text, size_t len, struct crd_xray_rules *out, char *why,
			 size_t whylen);
void crd_xray_rules_default(struct crd_xray_rules *out);
void crd_xray_rules_free(struct crd_xray_rules *r);
/* Read and parse path; on any problem one `cruddur:` message names the
 * file and the reason, and *out is the default rule. 0 or -errno. */
int crd_xray_rules_load(const char *path, struct crd_xray_rules *out);

/* Case-insensitive wildcard match of text[0..len) against pattern:
 * `*` any run of characters, `?` exactly one (SDK search_pattern.py). */
int crd_xray_wildcard(const char *pattern, const char *text, size_t len);

/* The rule for rq (the first that applies, else the default); rq NULL:
 * the default rule (the SDKs' should_trace() without a request). */
struct crd_xray_rule *crd_xray_match(struct crd_xray_rules *rs, const struct crd_xray_request *rq);

/* One decision of rule r at epoch second now_s with the random word rnd:
 * a reservoir slot if one is left this second, else rnd < rate. */
int crd_xray_rule_sample(struct crd_xray_rule *r, uint64_t now_s, uint64_t rnd);

/* Hook path: the sampling decision of a new span. parent_sampled >= 0 (an
 * incoming decision) wins; otherwise the rules decide for req (the server
 * request whose head was just parsed; NULL: the default rule). */
int crd_xray_sample(int parent_sampled, const struct crd_http_req *req);

/* The segment name for a request with this Host header value (not
 * sanitized: dynamic naming may return host itself). */
const char *crd_xray_segment_name(const char *host);

/* Copy s (len bytes) into out[cap] keeping only what X-Ray accepts in a
 * name (Unicode letters and digits, whitespace, _ . : / % & # = + \ - @),
 * at most CRD_XRAY_NAME_MAX characters. Returns the length written. */
size_t crd_xray_sanitize_name(char *out, size_t cap, const char *s, size_t len);

/* "1-<8 hex>-<24 hex>" (35 chars + NUL) from an OTel trace id, whose first
 * 4 bytes are the epoch seconds. */
void crd_xray_trace_id(char out[36], const uint8_t trace_id[16]);

#endif
