/* xray.c - AWS X-Ray settings, sampling rules and sampler (see xray.h).
 *
 * Loading (constructor, malloc allowed) parses the settings and the rules
 * file; the hook path only matches and counts, with atomics.
 */
#include "xray.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../export/otlp_enc.h" /* crd_utf8_seq */
#include "config.h"
#include "ids.h"
#include "json.h"
#include "log.h"
#include "real.h"
#include "tracectx.h"

struct crd_xray_config crd_xray_cfg;

/* Sampling rule limits: AWS API SamplingRule (Priority 1-9999, the
 * "Default" rule has 10000; FixedRate 0-1; ReservoirSize >= 0). */
#define CRD_XRAY_PRIORITY_MAX	  10000
#define CRD_XRAY_FIXED_TARGET_MAX 1000000000L

/* ---- names ---- */

static int name_char_ok(unsigned char c)
{
	return isalnum(c) || c == ' ' || strchr("_.:/%&#=+\\-@", c);
}

size_t crd_xray_sanitize_name(char *out, size_t cap, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *e = p + len;
	size_t n = 0, chars = 0;

	if (!cap)
		return 0;
	while (p < e && chars < CRD_XRAY_NAME_MAX) {
		size_t k = 1;
		if (*p >= 0x80) {
			/* Non-ASCII: keep whole valid UTF-8 sequences (letters of
			 * other scripts), drop invalid bytes. */
			k = crd_utf8_seq(p, (size_t)(e - p));
			if (!k) {
				p++;
				continue;
			}
		} else if (!*p || !name_char_ok(*p)) {
			p++;
			continue;
		}
		if (n + k >= cap)
			break;
		memcpy(out + n, p, k);
		n += k;
		p += k;
		chars++;
	}
	out[n] = 0;
	return n;
}

const char *crd_xray_segment_name(const char *host)
{
	if (crd_xray_cfg.naming && host && *host &&
	    crd_xray_wildcard(crd_xray_cfg.naming, host, strlen(host)))
		return host;
	return crd_xray_cfg.name ? crd_xray_cfg.name : "";
}

void crd_xray_trace_id(char out[36], const uint8_t trace_id[16])
{
	char hex[33];

	crd_hex(hex, trace_id, 16);
	out[0] = '1';
	out[1] = '-';
	memcpy(out + 2, hex, 8);
	out[10] = '-';
	memcpy(out + 11, hex + 8, 24);
	out[35] = 0;
}

/* ---- wildcard matching ---- */

static inline unsigned char lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

int crd_xray_wildcard(const char *pattern, const char *text, size_t len)
{
	/* Iterative glob with one backtrack point (the SDKs' algorithm):
	 * O(len * pattern length) at worst, no recursion, no allocation. */
	size_t plen = strlen(pattern), i = 0, p = 0, istar = (size_t)-1, pstar = 0;

	if (plen == 1 && pattern[0] == '*')
		return 1;
	while (i < len) {
		if (p < plen && pattern[p] == '*') {
			istar = i;
			pstar = p++;
		} else if (p < plen && (pattern[p] == '?' || lower((unsigned char)pattern[p]) ==
								 lower((unsigned char)text[i]))) {
			i++;
			p++;
		} else if (istar != (size_t)-1) {
			i = ++istar;
			p = pstar + 1;
		} else {
			return 0;
		}
	}
	while (p < plen && pattern[p] == '*')
		p++;
	return p == plen;
}

/* ---- rules ---- */

static void rule_free(struct crd_xray_rule *r)
{
	free(r->name);
	free(r->service);
	free(r->service_type);
	free(r->host);
	free(r->method);
	free(r->path);
	memset(r, 0, sizeof(*r));
}

void crd_xray_rules_free(struct crd_xray_rules *rs)
{
	for (size_t i = 0; i < rs->n; i++)
		rule_free(&rs->rules[i]);
	free(rs->rules);
	rule_free(&rs->def);
	memset(rs, 0, sizeof(*rs));
}

void crd_xray_rules_default(struct crd_xray_rules *out)
{
	memset(out, 0, sizeof(*out));
	out->def.fixed_target = CRD_XRAY_DEFAULT_FIXED_TARGET;
	out->def.rate = CRD_XRAY_DEFAULT_RATE;
	out->def.priority = CRD_XRAY_PRIORITY_MAX;
	out->format = CRD_XRAY_RULES_BUILTIN;
}

/* Parsing context: the first error wins and is kept in why. */
struct rctx {
	char *why;
	size_t whylen;
	int failed;
};

static int rfail(struct rctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int rfail(struct rctx *c, const char *fmt, ...)
{
	va_list ap;

	if (!c->failed && c->whylen) {
		va_start(ap, fmt);
		vsnprintf(c->why, c->whylen, fmt, ap);
		va_end(ap);
	}
	c->failed = 1;
	return -EINVAL;
}

/* An optional string member into *out (heap copy); absent leaves NULL. */
static int get_pattern(struct rctx *c, const char *where, const struct crd_json *o, const char *key,
		       int required, char **out)
{
	const struct crd_json *v = crd_json_get(o, key);

	if (!v) {
		if (required)
			return rfail(c, "%s: \"%s\" is missing", where, key);
		return 0;
	}
	if (v->type != CRD_JSON_STRING)
		return rfail(c, "%s: \"%s\" must be a string, not %s", where, key,
			     crd_json_type_name(v->type));
	if (strlen(v->str) != v->len)
		return rfail(c, "%s: \"%s\" contains a NUL character", where, key);
	*out = crd_xstrdup(v->str);
	return 0;
}

static int get_rate(struct rctx *c, const char *where, const struct crd_json *o, const char *key,
		    double *out)
{
	const struct crd_json *v = crd_json_get(o, key);

	if (!v)
		return rfail(c, "%s: \"%s\" is missing", where, key);
	if (v->type != CRD_JSON_NUMBER || !(v->number >= 0.0 && v->number <= 1.0))
		return rfail(c, "%s: \"%s\" must be a number from 0 to 1", where, key);
	*out = v->number;
	return 0;
}

static int get_count(struct rctx *c, const char *where, const struct crd_json *o, const char *key,
		     long max, long *out)
{
	const struct crd_json *v = crd_json_get(o, key);

	if (!v)
		return rfail(c, "%s: \"%s\" is missing", where, key);
	if (v->type != CRD_JSON_NUMBER || v->number < 0 || v->number > (double)max ||
	    v->number != (double)(long)v->number)
		return rfail(c, "%s: \"%s\" must be a whole number from 0 to %ld", where, key, max);
	*out = (long)v->number;
	return 0;
}

/* One rule of the SDK local format (version 1 or 2). */
static int local_rule(struct rctx *c, const char *where, const struct crd_json *o, int version,
		      int is_default, struct crd_xray_rule *r)
{
	const char *host_key = version == 1 ? "service_name" : "host";
	long ft;

	if (o->type != CRD_JSON_OBJECT)
		return rfail(c, "%s: must be an object", where);
	if (get_count(c, where, o, "fixed_target", CRD_XRAY_FIXED_TARGET_MAX, &ft) ||
	    get_rate(c, where, o, "rate", &r->rate))
		return -EINVAL;
	r->fixed_target = (uint32_t)ft;
	if (is_default) {
		/* The SDKs refuse a default rule with match fields. */
		if (crd_json_get(o, host_key) || crd_json_get(o, "http_method") ||
		    crd_json_get(o, "url_path"))
			return rfail(c,
				     "%s: the default rule must not have %s, http_method or "
				     "url_path",
				     where, host_key);
		return 0;
	}
	if (version == 2 && crd_json_get(o, "service_name") && !crd_json_get(o, "host"))
		return rfail(c,
			     "%s: version 2 rules match \"host\", not \"service_name\" (that is "
			     "version 1)",
			     where);
	/* Version 1's service_name is matched against the Host header, as
	 * the SDKs do (aws-xray-sdk-python local/sampling_rule.py). */
	return get_pattern(c, where, o, host_key, 1, &r->host) ||
	       get_pattern(c, where, o, "http_method", 1, &r->method) ||
	       get_pattern(c, where, o, "url_path", 1, &r->path);
}

static int parse_local(struct rctx *c, const struct crd_json *doc, struct crd_xray_rules *out)
{
	const struct crd_json *ver = crd_json_get(doc, "version");
	const struct crd_json *def = crd_json_get(doc, "default");
	const struct crd_json *rules = crd_json_get(doc, "rules");
	int version;

	if (!ver || ver->type != CRD_JSON_NUMBER || !ver->is_int ||
	    (ver->number != 1 && ver->number != 2))
		return rfail(c, "\"version\" must be 1 or 2");
	version = (int)ver->number;
	out->format = version == 1 ? CRD_XRAY_RULES_V1 : CRD_XRAY_RULES_V2;
	if (!def)
		return rfail(c, "a \"default\" rule is required");
	if (local_rule(c, "default", def, version, 1, &out->def))
		return -EINVAL;
	out->def.priority = CRD_XRAY_PRIORITY_MAX;
	if (!rules)
		return 0;
	if (rules->type != CRD_JSON_ARRAY)
		return rfail(c, "\"rules\" must be an array");
	out->rules = calloc(rules->n ? rules->n : 1, sizeof(*out->rules));
	if (!out->rules)
		return rfail(c, "out of memory");
	for (const struct crd_json *r = rules->child; r; r = r->next) {
		char where[32];
		snprintf(where, sizeof(where), "rules[%zu]", out->n);
		/* Counted before filling, so a half-parsed rule is freed too. */
		if (local_rule(c, where, r, version, 0, &out->rules[out->n++]))
			return -EINVAL;
		out->rules[out->n - 1].priority = (long)out->n; /* file order */
	}
	return 0;
}

/* One AWS API SamplingRule object. 1 when it is usable, 0 when it must be
 * skipped (it matches on what we cannot see), -EINVAL when bad. */
static int cli_rule(struct rctx *c, const char *where0, const struct crd_json *o,
		    struct crd_xray_rule *r)
{
	const struct crd_json *v;
	char where[160];
	long ft, prio = CRD_XRAY_PRIORITY_MAX - 1;
	const char *name;

	if (!o || o->type != CRD_JSON_OBJECT)
		return rfail(c, "%s: \"SamplingRule\" must be an object", where0);
	name = crd_json_get_str(o, "RuleName");
	if (name)
		snprintf(where, sizeof(where), "%s (rule \"%.100s\")", where0, name);
	else
		snprintf(where, sizeof(where), "%s", where0);
	if (get_rate(c, where, o, "FixedRate", &r->rate) ||
	    get_count(c, where, o, "ReservoirSize", CRD_XRAY_FIXED_TARGET_MAX, &ft))
		return -EINVAL;
	r->fixed_target = (uint32_t)ft;
	if (crd_json_get(o, "Priority") &&
	    get_count(c, where, o, "Priority", CRD_XRAY_PRIORITY_MAX, &prio))
		return -EINVAL;
	r->priority = prio;
	if ((v = crd_json_get(o, "Version")) && (v->type != CRD_JSON_NUMBER || v->number != 1))
		return rfail(c, "%s: \"Version\" must be 1", where);
	if (get_pattern(c, where, o, "RuleName", 0, &r->name) ||
	    get_pattern(c, where, o, "ServiceName", 0, &r->service) ||
	    get_pattern(c, where, o, "ServiceType", 0, &r->service_type) ||
	    get_pattern(c, where, o, "Host", 0, &r->host) ||
	    get_pattern(c, where, o, "HTTPMethod", 0, &r->method) ||
	    get_pattern(c, where, o, "URLPath", 0, &r->path))
		return -EINVAL;
	/* Like the SDKs' centralized sampler: rules bound to a resource ARN or
	 * to request attributes cannot be evaluated here; skip them. */
	if ((v = crd_json_get(o, "ResourceARN")) &&
	    (v->type != CRD_JSON_STRING || strcmp(v->str, "*")))
		return 0;
	if ((v = crd_json_get(o, "Attributes")) && v->type == CRD_JSON_OBJECT && v->n)
		return 0;
	return 1;
}

static int cmp_priority(const void *a, const void *b)
{
	const struct crd_xray_rule *x = a, *y = b;

	if (x->priority != y->priority)
		return x->priority < y->priority ? -1 : 1;
	return strcmp(x->name ? x->name : "", y->name ? y->name : "");
}

/* The rule objects of a CLI-format document, collected into an array of
 * pointers (max n). */
static size_t cli_collect(const struct crd_json *doc, const struct crd_json **objs, size_t max)
{
	const struct crd_json *list = doc, *v;
	size_t n = 0;

	if (doc->type == CRD_JSON_OBJECT) {
		if ((v = crd_json_get(doc, "SamplingRule"))) {
			objs[0] = v;
			return 1;
		}
		if ((v = crd_json_get(doc, "SamplingRuleRecords")))
			list = v;
		else {
			objs[0] = doc; /* the inner object alone (--sampling-rule file://) */
			return 1;
		}
	}
	for (v = list->type == CRD_JSON_ARRAY ? list->child : NULL; v && n < max; v = v->next) {
		const struct crd_json *inner = crd_json_get(v, "SamplingRule");
		objs[n++] = inner ? inner : v;
	}
	return n;
}

static int parse_cli(struct rctx *c, const struct crd_json *doc, struct crd_xray_rules *out)
{
	const struct crd_json *list = crd_json_get(doc, "SamplingRuleRecords");
	size_t max = doc->type == CRD_JSON_ARRAY ? doc->n : list ? list->n : 1;
	const struct crd_json **objs;
	size_t n;
	int have_default = 0;

	if (list && list->type != CRD_JSON_ARRAY)
		return rfail(c, "\"SamplingRuleRecords\" must be an array");
	out->format = CRD_XRAY_RULES_CLI;
	objs = calloc(max ? max : 1, sizeof(*objs));
	out->rules = calloc(max ? max : 1, sizeof(*out->rules));
	if (!objs || !out->rules) {
		free(objs);
		return rfail(c, "out of memory");
	}
	n = cli_collect(doc, objs, max);
	for (size_t i = 0; i < n; i++) {
		struct crd_xray_rule r = {0};
		char where[32];
		int rc;

		if (doc->type == CRD_JSON_OBJECT && !list)
			snprintf(where, sizeof(where), "SamplingRule");
		else
			snprintf(where, sizeof(where), "rule %zu", i + 1);
		rc = cli_rule(c, where, objs[i], &r);
		if (rc <= 0) {
			rule_free(&r);
			if (rc < 0) {
				free(objs);
				return rc;
			}
			continue;
		}
		if (r.name && !strcmp(r.name, "Default")) {
			/* The service's catch-all rule: our default. */
			rule_free(&out->def);
			out->def = r;
			have_default = 1;
		} else {
			out->rules[out->n++] = r;
		}
	}
	free(objs);
	if (!n)
		return rfail(c, "no sampling rule in the file");
	if (!have_default) {
		out->def.fixed_target = CRD_XRAY_DEFAULT_FIXED_TARGET;
		out->def.rate = CRD_XRAY_DEFAULT_RATE;
	}
	out->def.priority = CRD_XRAY_PRIORITY_MAX;
	qsort(out->rules, out->n, sizeof(*out->rules), cmp_priority);
	return 0;
}

int crd_xray_rules_parse(const char *text, size_t len, struct crd_xray_rules *out, char *why,
			 size_t whylen)
{
	struct rctx c = {.why = why, .whylen = whylen};
	struct crd_json *doc;
	struct crd_json_error je;
	int rc;

	crd_xray_rules_default(out);
	if (whylen)
		why[0] = 0;
	rc = crd_json_parse(text, len, &doc, &je);
	if (rc) {
		if (rc == -EINVAL)
			rfail(&c, "not valid JSON: line %d column %d: %s", je.line, je.col, je.msg);
		else
			rfail(&c, "out of memory");
		return rc;
	}
	/* Reset what crd_xray_rules_default set: the parsers fill def. */
	memset(&out->def, 0, sizeof(out->def));
	if (doc->type == CRD_JSON_OBJECT && crd_json_get(doc, "version"))
		rc = parse_local(&c, doc, out);
	else if ((doc->type == CRD_JSON_OBJECT &&
		  (crd_json_get(doc, "SamplingRule") || crd_json_get(doc, "SamplingRuleRecords") ||
		   crd_json_get(doc, "FixedRate") || crd_json_get(doc, "ReservoirSize"))) ||
		 doc->type == CRD_JSON_ARRAY)
		rc = parse_cli(&c, doc, out);
	else
		rc = rfail(&c,
			   "not a sampling rules document: expected \"version\" (X-Ray SDK local "
			   "rules) or \"SamplingRule\" (AWS CLI format)");
	crd_json_free(doc);
	if (rc) {
		crd_xray_rules_free(out);
		crd_xray_rules_default(out);
		return -EINVAL;
	}
	return 0;
}

int crd_xray_rules_load(const char *path, struct crd_xray_rules *out)
{
	char why[256] = "";
	char *buf = NULL;
	struct stat st;
	size_t got = 0;
	int fd, rc = 0;

	crd_xray_rules_default(out);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		snprintf(why, sizeof(why), "cannot open: %s", strerror(errno));
		goto bad;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size > CRD_XRAY_RULES_FILE_MAX) {
		rc = -EINVAL;
		snprintf(why, sizeof(why), "not a regular file of at most %d bytes",
			 CRD_XRAY_RULES_FILE_MAX);
		goto bad;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		rc = -ENOMEM;
		snprintf(why, sizeof(why), "out of memory");
		goto bad;
	}
	/* read is hooked: reach the real one (real.h). */
	while (got < (size_t)st.st_size) {
		ssize_t n = CRD_REAL(read)(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : -EIO;
			snprintf(why, sizeof(why), "read error: %s",
				 n < 0 ? strerror(errno) : "short read");
			goto bad;
		}
		got += (size_t)n;
	}
	CRD_REAL(close)(fd);
	fd = -1;
	rc = crd_xray_rules_parse(buf, got, out, why, sizeof(why));
	free(buf);
	buf = NULL;
	if (rc)
		goto bad;
	crd_debug("X-Ray: %zu sampling rule(s) from %s (%s format)", out->n, path,
		  out->format == CRD_XRAY_RULES_CLI  ? "AWS CLI"
		  : out->format == CRD_XRAY_RULES_V1 ? "local v1"
						     : "local v2");
	return 0;
bad:
	if (fd >= 0)
		CRD_REAL(close)(fd);
	free(buf);
	crd_warn("CRUDDUR_XRAY_SAMPLING_RULES=%s: %s; using the default rule (1 request per "
		 "second, then 5%%)",
		 path, why);
	return rc;
}

/* ---- the sampler (hook path) ---- */

static int field_applies(const char *pattern, const char *text, size_t len)
{
	/* A missing value matches (SDK: "None parameters ... implicit match"). */
	return !pattern || !text || !len || crd_xray_wildcard(pattern, text, len);
}

struct crd_xray_rule *crd_xray_match(struct crd_xray_rules *rs, const struct crd_xray_request *rq)
{
	if (!rq)
		return &rs->def;
	for (size_t i = 0; i < rs->n; i++) {
		struct crd_xray_rule *r = &rs->rules[i];
		if (field_applies(r->service, rq->service, rq->service ? strlen(rq->service) : 0) &&
		    field_applies(r->service_type, rq->service_type,
				  rq->service_type ? strlen(rq->service_type) : 0) &&
		    field_applies(r->host, rq->host, rq->host ? strlen(rq->host) : 0) &&
		    field_applies(r->method, rq->method, rq->method ? strlen(rq->method) : 0) &&
		    field_applies(r->path, rq->path, rq->path_len))
			return r;
	}
	return &rs->def;
}

int crd_xray_rule_sample(struct crd_xray_rule *r, uint64_t now_s, uint64_t rnd)
{
	uint32_t sec = (uint32_t)now_s;
	uint64_t old = __atomic_load_n(&r->reservoir, __ATOMIC_RELAXED), nw;

	/* Reservoir: fixed_target per second, one atomic word per rule. */
	while (r->fixed_target) {
		if ((uint32_t)(old >> 32) != sec)
			nw = (uint64_t)sec << 32 | 1; /* a new second: the first slot */
		else if ((uint32_t)old >= r->fixed_target)
			break;
		else
			nw = old + 1;
		if (__atomic_compare_exchange_n(&r->reservoir, &old, nw, 1, __ATOMIC_RELAXED,
						__ATOMIC_RELAXED))
			return 1;
	}
	/* Then the rate: a uniform double in [0, 1) from 53 random bits. */
	return (double)(rnd >> 11) * 0x1p-53 < r->rate;
}

int crd_xray_sample(int parent_sampled, const struct crd_http_req *req)
{
	struct crd_xray_request rq;
	const char *path, *q;

	if (parent_sampled >= 0)
		return parent_sampled;
	if (!req)
		return crd_xray_rule_sample(crd_xray_match(&crd_xray_cfg.rules, NULL),
					    crd_now_ns() / 1000000000u, crd_rand64());
	path = req->target;
	/* Absolute-form targets (proxies): the path follows the authority. */
	if (!strncmp(path, "http://", 7) || !strncmp(path, "https://", 8)) {
		const char *slash = strchr(strstr(path, "//") + 2, '/');
		path = slash ? slash : "/";
	}
	q = strchr(path, '?');
	rq = (struct crd_xray_request){
	    .service = crd_xray_segment_name(req->host),
	    .service_type = crd_xray_cfg.origin,
	    .host = req->host,
	    .method = req->method,
	    .path = path,
	    .path_len = q ? (size_t)(q - path) : strlen(path),
	};
	return crd_xray_rule_sample(crd_xray_match(&crd_xray_cfg.rules, &rq),
				    crd_now_ns() / 1000000000u, crd_rand64());
}

/* ---- settings ---- */

static int host_char_ok(char c)
{
	return isalnum((unsigned char)c) || c == '.' || c == '-' || c == '_';
}

/* "host:port" or "[v6]:port" (n bytes). */
static int parse_hostport(const char *s, size_t n, char **host, uint16_t *port, const char **why)
{
	const char *colon = NULL, *h = s, *he;
	long p = 0;

	for (size_t i = n; i > 0; i--)
		if (s[i - 1] == ':') {
			colon = s + i - 1;
			break;
		}
	if (!colon) {
		*why = "expected host:port";
		return -EINVAL;
	}
	he = colon;
	if (*s == '[') {
		if (colon == s || colon[-1] != ']') {
			*why = "expected [IPv6]:port";
			return -EINVAL;
		}
		h = s + 1;
		he = colon - 1;
		for (const char *c = h; c < he; c++)
			if (!isxdigit((unsigned char)*c) && *c != ':' && *c != '.') {
				*why = "bad IPv6 address";
				return -EINVAL;
			}
	} else {
		for (const char *c = h; c < he; c++)
			if (!host_char_ok(*c)) {
				*why = "bad host name";
				return -EINVAL;
			}
	}
	if (he == h) {
		*why = "the host is empty";
		return -EINVAL;
	}
	if (colon + 1 == s + n) {
		*why = "the port is missing";
		return -EINVAL;
	}
	for (const char *c = colon + 1; c < s + n; c++) {
		if (!isdigit((unsigned char)*c) || (p = p * 10 + (*c - '0')) > 65535) {
			*why = "the port must be a number from 1 to 65535";
			return -EINVAL;
		}
	}
	if (p < 1) {
		*why = "the port must be a number from 1 to 65535";
		return -EINVAL;
	}
	*host = strndup(h, (size_t)(he - h));
	if (!*host)
		abort();
	*port = (uint16_t)p;
	return 0;
}

int crd_xray_parse_daemon(const char *s, char **udp_host, uint16_t *udp_port, char **tcp_host,
			  uint16_t *tcp_port, const char **why)
{
	const char *tok[3];
	size_t len[3], n = 0;
	int have_udp = 0, have_tcp = 0;

	*udp_host = *tcp_host = NULL;
	for (const char *p = s; *p;) {
		while (*p == ' ')
			p++;
		if (!*p)
			break;
		if (n == 2) {
			*why = "expected host:port or \"tcp:host:port udp:host:port\"";
			return -EINVAL;
		}
		tok[n] = p;
		len[n] = strcspn(p, " ");
		p += len[n++];
	}
	if (n == 0) {
		*why = "empty";
		return -EINVAL;
	}
	if (n == 1) {
		/* One address for both (SDK daemon_config.py, single form). */
		if (parse_hostport(tok[0], len[0], udp_host, udp_port, why))
			return -EINVAL;
		*tcp_host = crd_xstrdup(*udp_host);
		*tcp_port = *udp_port;
		return 0;
	}
	for (size_t i = 0; i < 2; i++) {
		int udp = len[i] > 4 && !strncmp(tok[i], "udp:", 4);
		int tcp = len[i] > 4 && !strncmp(tok[i], "tcp:", 4);
		if ((!udp && !tcp) || (udp && have_udp) || (tcp && have_tcp)) {
			*why = "the two-address form is \"tcp:host:port udp:host:port\"";
			goto bad;
		}
		if (parse_hostport(tok[i] + 4, len[i] - 4, udp ? udp_host : tcp_host,
				   udp ? udp_port : tcp_port, why))
			goto bad;
		have_udp |= udp;
		have_tcp |= tcp;
	}
	return 0;
bad:
	free(*udp_host);
	free(*tcp_host);
	*udp_host = *tcp_host = NULL;
	return -EINVAL;
}

/* A small file's first line, or "" (origin detection). */
static void read_line(const char *path, char *out, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	out[0] = 0;
	if (fd < 0)
		return;
	n = CRD_REAL(read)(fd, out, cap - 1);
	CRD_REAL(close)(fd);
	out[n > 0 ? n : 0] = 0;
	out[strcspn(out, "\n")] = 0;
}

/* The segment origin the SDK plugins would report (ECSPlugin,
 * ElasticBeanstalkPlugin, EC2Plugin), from what is visible without a
 * network call. */
static const char *detect_origin(void)
{
	char buf[64];

	if (crd_env("ECS_CONTAINER_METADATA_URI_V4") || crd_env("ECS_CONTAINER_METADATA_URI"))
		return "AWS::ECS::Container";
	if (!access("/var/elasticbeanstalk/xray/environment.conf", F_OK))
		return "AWS::ElasticBeanstalk::Environment";
	read_line("/sys/devices/virtual/dmi/id/sys_vendor", buf, sizeof(buf));
	if (!strcmp(buf, "Amazon EC2"))
		return "AWS::EC2::Instance";
	read_line("/sys/hypervisor/uuid", buf, sizeof(buf));
	if (!strncmp(buf, "ec2", 3))
		return "AWS::EC2::Instance";
	return NULL;
}

static char *segment_name(void)
{
	const char *tn = crd_env("AWS_XRAY_TRACING_NAME");
	char buf[CRD_XRAY_NAME_MAX * 4 + 1];

	if (tn) {
		if (crd_xray_sanitize_name(buf, sizeof(buf), tn, strlen(tn)))
			return crd_xstrdup(buf);
		crd_warn("AWS_XRAY_TRACING_NAME=%s: no character X-Ray accepts in a name; using "
			 "the service name",
			 tn);
	}
	if (crd_xray_sanitize_name(buf, sizeof(buf), crd_cfg.service_name,
				   crd_cfg.service_name ? strlen(crd_cfg.service_name) : 0))
		return crd_xstrdup(buf);
	return crd_xstrdup("unknown_service");
}

void crd_xray_config_load(void)
{
	struct crd_xray_config *x = &crd_xray_cfg;
	const char *addr = crd_env("AWS_XRAY_DAEMON_ADDRESS"), *why = "", *sampler, *rules;

	crd_xray_rules_default(&x->rules);
	crd_cfg.xray_propagate = 0;
	if (!addr)
		return;
	if (crd_parse_bool(crd_env("AWS_XRAY_SDK_DISABLED"))) {
		crd_debug("X-Ray disabled by AWS_XRAY_SDK_DISABLED");
		return;
	}
	if (crd_xray_parse_daemon(addr, &x->udp_host, &x->udp_port, &x->tcp_host, &x->tcp_port,
				  &why)) {
		crd_warn("AWS_XRAY_DAEMON_ADDRESS=%s: %s; X-Ray export disabled", addr, why);
		return;
	}
	x->enabled = 1;
	/* Outgoing requests carry X-Amzn-Trace-Id too (conn.c, curl_span.c). */
	crd_cfg.xray_propagate = 1;
	x->name = segment_name();
	if (crd_env("CRUDDUR_XRAY_NAMING"))
		x->naming = crd_xstrdup(crd_env("CRUDDUR_XRAY_NAMING"));
	x->origin = detect_origin();

	sampler = crd_env("OTEL_TRACES_SAMPLER");
	rules = crd_env("CRUDDUR_XRAY_SAMPLING_RULES");
	if (sampler) {
		/* An explicit OTel sampler governs every sink. */
		if (rules)
			crd_warn("CRUDDUR_XRAY_SAMPLING_RULES=%s ignored: OTEL_TRACES_SAMPLER=%s "
				 "decides sampling",
				 rules, sampler);
	} else {
		x->root_sampler = 1;
		if (rules)
			crd_xray_rules_load(rules, &x->rules);
	}
	/* X-Ray is the exporter asked for: no embedded-default file. */
	if (crd_cfg.file_default) {
		crd_cfg.file_enabled = 0;
		crd_cfg.file_default = 0;
	}
	crd_debug("X-Ray: segments to udp %s:%u as \"%s\"%s%s", x->udp_host, x->udp_port, x->name,
		  x->naming ? ", dynamic naming " : "", x->naming ? x->naming : "");
}
