/* rollbar_enc.c - Rollbar item encoding, grouping, limits, spool parsing
 * (see rollbar_enc.h). */
#include "rollbar_enc.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../preload/tracectx.h"
#include "../preload/version.h"
#include "otlp_enc.h"

/* FNV-1a 64 (the constants of the FNV reference). */
#define FNV64_OFFSET 0xcbf29ce484222325ull
#define FNV64_PRIME  0x100000001b3ull
/* A segment with at least this many digits is an id ("a1b2c3", dates). */
#define ID_MIN_DIGITS 3
/* An all-hex segment at least this long is an id (hashes, object ids). */
#define ID_MIN_HEX 16

/* ---- route template, fingerprint, uuid ---- */

static int is_uuid(const char *s, size_t n)
{
	if (n != 36)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return 0;
		} else if (!isxdigit((unsigned char)s[i])) {
			return 0;
		}
	}
	return 1;
}

static int is_id_segment(const char *s, size_t n)
{
	size_t digits = 0, hex = 0;

	if (!n)
		return 0;
	for (size_t i = 0; i < n; i++) {
		digits += isdigit((unsigned char)s[i]) != 0;
		hex += isxdigit((unsigned char)s[i]) != 0;
	}
	return digits == n || digits >= ID_MIN_DIGITS || (hex == n && n >= ID_MIN_HEX) ||
	       is_uuid(s, n);
}

size_t crd_rb_route_template(const char *path, size_t len, char *out, size_t cap)
{
	size_t o = 0, i = 0;

	if (!cap)
		return 0;
	while (i < len && o + 1 < cap) {
		size_t j = i;
		const char *seg;
		size_t n;

		if (path[i] == '/') {
			out[o++] = '/';
			i++;
			continue;
		}
		while (j < len && path[j] != '/')
			j++;
		seg = path + i;
		n = j - i;
		if (is_id_segment(seg, n)) {
			seg = CRD_RB_ID_PLACEHOLDER;
			n = sizeof(CRD_RB_ID_PLACEHOLDER) - 1;
		}
		if (n > cap - 1 - o)
			n = cap - 1 - o;
		memcpy(out + o, seg, n);
		o += n;
		i = j;
	}
	out[o] = 0;
	return o;
}

static uint64_t fnv1a(uint64_t h, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= FNV64_PRIME;
	}
	return h;
}

void crd_rb_fingerprint(const char *method, const char *route, unsigned status,
			char out[CRD_RB_FINGERPRINT_LEN + 1])
{
	char code[12];
	int n = snprintf(code, sizeof(code), "%u", status);
	uint64_t h = FNV64_OFFSET;

	h = fnv1a(h, method, strlen(method));
	h = fnv1a(h, " ", 1);
	h = fnv1a(h, route, strlen(route));
	h = fnv1a(h, " ", 1);
	h = fnv1a(h, code, (size_t)n);
	snprintf(out, CRD_RB_FINGERPRINT_LEN + 1, "%016llx", (unsigned long long)h);
}

void crd_rb_uuid4(uint64_t a, uint64_t b, char out[CRD_RB_UUID_LEN + 1])
{
	uint8_t u[16];
	char hex[33];

	for (int i = 0; i < 8; i++) {
		u[i] = (uint8_t)(a >> (56 - 8 * i));
		u[8 + i] = (uint8_t)(b >> (56 - 8 * i));
	}
	u[6] = (uint8_t)((u[6] & 0x0f) | 0x40); /* version 4 */
	u[8] = (uint8_t)((u[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	crd_hex(hex, u, 16);
	snprintf(out, CRD_RB_UUID_LEN + 1, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12,
		 hex + 16, hex + 20);
}

/* ---- rate limiting ---- */

int crd_rb_limiter_paused(const struct crd_rb_limiter *l, uint64_t now_ns)
{
	return now_ns < l->paused_until_ns;
}

int crd_rb_limiter_allow(struct crd_rb_limiter *l, uint64_t now_ns, uint32_t max_per_min)
{
	if (crd_rb_limiter_paused(l, now_ns)) {
		l->dropped++;
		return 0;
	}
	if (!l->window_start_ns || now_ns - l->window_start_ns >= CRD_RB_WINDOW_NS) {
		l->window_start_ns = now_ns;
		l->count = 0;
	}
	if (l->count >= max_per_min) {
		l->dropped++;
		return 0;
	}
	l->count++;
	return 1;
}

void crd_rb_limiter_pause(struct crd_rb_limiter *l, uint64_t now_ns, long seconds)
{
	if (seconds < 0)
		seconds = CRD_RB_DEF_PAUSE_S;
	if (seconds > CRD_RB_MAX_PAUSE_S)
		seconds = CRD_RB_MAX_PAUSE_S;
	l->paused_until_ns = now_ns + (uint64_t)seconds * 1000000000ull;
}

/* ---- a bounded JSON writer ---- */

struct jw {
	char *p;
	size_t cap, n;
	int full;	/* out of room: everything after is dropped */
	size_t str_max; /* cut string values to this (trimmed encoding) */
};

static void put(struct jw *w, const char *s, size_t len)
{
	if (w->full || len >= w->cap - w->n) {
		w->full = 1;
		return;
	}
	memcpy(w->p + w->n, s, len);
	w->n += len;
	w->p[w->n] = 0;
}

static void lit(struct jw *w, const char *s)
{
	put(w, s, strlen(s));
}

static void str(struct jw *w, const char *s, size_t len)
{
	ssize_t r;

	if (w->full)
		return;
	if (len > w->str_max) {
		len = w->str_max;
		/* Do not cut a UTF-8 sequence in two. */
		while (len && ((unsigned char)s[len] & 0xc0) == 0x80)
			len--;
	}
	r = crd_json_string(w->p + w->n, w->cap - w->n, s, len);
	if (r < 0)
		w->full = 1;
	else
		w->n += (size_t)r;
}

static void cstr(struct jw *w, const char *s)
{
	str(w, s, strlen(s));
}

/* ,"key":"value" (or without the comma for the first member). */
static void kv(struct jw *w, const char *key, const char *s, size_t len)
{
	put(w, ",", w->n && w->p[w->n - 1] != '{');
	cstr(w, key);
	put(w, ":", 1);
	str(w, s, len);
}

static void kvc(struct jw *w, const char *key, const char *s)
{
	kv(w, key, s, strlen(s));
}

static void knum(struct jw *w, const char *key, long long v)
{
	char b[24];
	int n = snprintf(b, sizeof(b), "%lld", v);

	put(w, ",", w->n && w->p[w->n - 1] != '{');
	cstr(w, key);
	put(w, ":", 1);
	put(w, b, (size_t)n);
}

/* ,"key": then a value the caller writes. */
static void key(struct jw *w, const char *k)
{
	put(w, ",", w->n && w->p[w->n - 1] != '{');
	cstr(w, k);
	put(w, ":", 1);
}

static ssize_t finish(struct jw *w)
{
	return w->full ? -ENOSPC : (ssize_t)w->n;
}

static void notifier(struct jw *w)
{
	key(w, "notifier");
	lit(w, "{\"name\":\"" CRD_NAME "\",\"version\":\"" CRD_VERSION "\"}");
}

static void server(struct jw *w, const struct crd_rb_meta *m, const char *host, long pid,
		   const char *code_version)
{
	key(w, "server");
	put(w, "{", 1);
	if (host && *host)
		kvc(w, "host", host);
	knum(w, "pid", pid);
	if (code_version && *code_version)
		kvc(w, "code_version", code_version);
	(void)m;
	put(w, "}", 1);
}

/* ---- the 5xx item ---- */

static const struct crd_attr *attr(const struct crd_span_view *v, const char *k)
{
	for (size_t i = 0; i < v->nattrs && i < CRD_VIEW_MAX_ATTRS; i++)
		if (!strcmp(v->attrs[i].key, k))
			return &v->attrs[i];
	return NULL;
}

static const char *reason(unsigned status)
{
	switch (status) {
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	case 505:
		return "HTTP Version Not Supported";
	case 507:
		return "Insufficient Storage";
	case 508:
		return "Loop Detected";
	case 511:
		return "Network Authentication Required";
	default:
		return "Server Error";
	}
}

static const char *end_reason(int r)
{
	switch (r) {
	case CRD_END_CLOSED:
		return "connection_closed";
	case CRD_END_EXIT:
		return "process_exit";
	case CRD_END_PARSE:
		return "response_not_http";
	default:
		return NULL;
	}
}

static void header(struct jw *w, const char *name, const char *value)
{
	if (*value)
		kvc(w, name, value);
}

ssize_t crd_rb_encode_5xx(char *out, size_t cap, const struct crd_rb_meta *m,
			  const struct crd_span *s, const struct crd_span_view *v, const char *uuid,
			  int trim)
{
	struct jw w = {.p = out, .cap = cap, .str_max = trim ? CRD_RB_TRIM_STR : (size_t)-1};
	const struct crd_attr *path = attr(v, "url.path"), *query = attr(v, "url.query");
	const struct crd_attr *addr = attr(v, "server.address"), *port = attr(v, "server.port");
	const struct crd_attr *client = attr(v, "client.address");
	char route[CRD_RB_ROUTE_MAX], fp[CRD_RB_FINGERPRINT_LEN + 1], hex[33], text[64];
	const char *p = path ? path->s : "/";
	size_t plen = path ? path->len : 1;
	uint64_t dur = v->end_ns - v->start_ns;
	int n;

	if (!cap)
		return -ENOSPC;
	crd_rb_route_template(p, plen, route, sizeof(route));
	crd_rb_fingerprint(s->req.method, route, s->status, fp);

	lit(&w, "{\"data\":{");
	kvc(&w, "environment", m->environment);
	kvc(&w, "level", "error");
	knum(&w, "timestamp", (long long)(v->end_ns / 1000000000u));
	kvc(&w, "platform", "linux");
	kvc(&w, "framework", CRD_NAME);
	if (m->code_version && *m->code_version)
		kvc(&w, "code_version", m->code_version);
	kvc(&w, "uuid", uuid);
	n = snprintf(text, sizeof(text), "%u %s ", s->status, s->req.method);
	key(&w, "title");
	{
		/* "500 GET /route": title and route in one string. */
		char title[sizeof(text) + CRD_RB_ROUTE_MAX];
		size_t rl = strlen(route);
		memcpy(title, text, (size_t)n);
		memcpy(title + n, route, rl);
		str(&w, title, (size_t)n + rl);
	}
	kvc(&w, "fingerprint", fp);

	/* body.message: what failed, readable; the raw path (no query). */
	key(&w, "body");
	lit(&w, "{\"message\":{");
	key(&w, "body");
	{
		char msg[CRD_METHOD_MAX + CRD_TARGET_MAX + 96];
		int k = snprintf(msg, sizeof(msg), "%s %.*s answered HTTP %u %s", s->req.method,
				 (int)plen, p, s->status, reason(s->status));
		if (k >= (int)sizeof(msg))
			k = (int)sizeof(msg) - 1;
		if (s->end_reason != CRD_END_OK && end_reason(s->end_reason))
			k += snprintf(msg + k, sizeof(msg) - (size_t)k, " (%s)",
				      end_reason(s->end_reason));
		if (k >= (int)sizeof(msg))
			k = (int)sizeof(msg) - 1;
		str(&w, msg, (size_t)k);
	}
	kvc(&w, "route", route);
	knum(&w, "status_code", s->status);
	lit(&w, "}}");

	/* request: what pyrollbar's Flask integration reports, from the
	 * headers the span keeps (no Authorization or Cookie is ever kept). */
	key(&w, "request");
	put(&w, "{", 1);
	key(&w, "url");
	{
		char url[CRD_HOST_MAX + CRD_TARGET_MAX + 64];
		size_t k = (size_t)snprintf(url, sizeof(url), "http://");
		if (s->req.host[0])
			k += (size_t)snprintf(url + k, sizeof(url) - k, "%s", s->req.host);
		else if (addr)
			k += (size_t)snprintf(
			    url + k, sizeof(url) - k,
			    memchr(addr->s, ':', addr->len) ? "[%.*s]:%lld" : "%.*s:%lld",
			    (int)addr->len, addr->s, port ? (long long)port->i : 80);
		if (k < sizeof(url))
			k += (size_t)snprintf(url + k, sizeof(url) - k, "%.*s%s%.*s", (int)plen, p,
					      query ? "?" : "", query ? (int)query->len : 0,
					      query ? query->s : "");
		if (k >= sizeof(url))
			k = sizeof(url) - 1;
		str(&w, url, k);
	}
	kvc(&w, "method", s->req.method);
	key(&w, "headers");
	put(&w, "{", 1);
	header(&w, "Host", s->req.host);
	if (!trim)
		header(&w, "User-Agent", s->req.user_agent);
	header(&w, "X-Forwarded-For", s->req.xff);
	header(&w, "traceparent", s->req.traceparent);
	if (!trim)
		header(&w, "tracestate", s->req.tracestate);
	header(&w, "X-Amzn-Trace-Id", s->req.xamzn);
	put(&w, "}", 1);
	if (query)
		kv(&w, "query_string", query->s, query->len);
	if (client)
		kv(&w, "user_ip", client->s, client->len);
	put(&w, "}", 1);

	server(&w, m, m->host, m->pid, m->code_version);

	/* custom: the link to the trace. */
	key(&w, "custom");
	put(&w, "{", 1);
	crd_hex(hex, s->trace_id, 16);
	kvc(&w, "trace_id", hex);
	crd_hex(hex, s->span_id, 8);
	kvc(&w, "span_id", hex);
	if (v->parent_span_id) {
		crd_hex(hex, v->parent_span_id, 8);
		kvc(&w, "parent_span_id", hex);
	}
	if (m->service)
		kvc(&w, "service.name", m->service);
	kvc(&w, "route", route);
	knum(&w, "status_code", s->status);
	/* Milliseconds with 3 decimals, by integer arithmetic: a double
	 * printed with %f would follow the app's LC_NUMERIC. */
	key(&w, "duration_ms");
	n = snprintf(text, sizeof(text), "%llu.%03llu", (unsigned long long)(dur / 1000000u),
		     (unsigned long long)(dur / 1000u % 1000u));
	put(&w, text, (size_t)n);
	if (s->end_reason == CRD_END_OK)
		knum(&w, "response_body_size", (long long)s->resp_body_size);
	else if (end_reason(s->end_reason))
		kvc(&w, "end_reason", end_reason(s->end_reason));
	put(&w, "}", 1);

	notifier(&w);
	lit(&w, "}}");
	return finish(&w);
}

/* ---- crash spool files ---- */

/* Numbers are parsed within [s, e): the spool text is a (pointer, length)
 * buffer, not a C string, so strtol() could read past its end. */
static uint64_t hexnum(const char *s, const char *e)
{
	uint64_t v = 0;

	if (e - s >= 2 && s[0] == '0' && s[1] == 'x')
		s += 2;
	while (s < e && isxdigit((unsigned char)*s)) {
		v = v << 4 | (uint64_t)(isdigit((unsigned char)*s)
					    ? *s - '0'
					    : (tolower((unsigned char)*s) - 'a' + 10));
		s++;
	}
	return v;
}

/* Optional '-', then decimal digits, within [s, e); wraps like strtoull. */
static int64_t decnum(const char *s, const char *e)
{
	int neg = s < e && *s == '-';
	uint64_t v = 0;

	for (s += neg; s < e && isdigit((unsigned char)*s); s++)
		v = v * 10 + (uint64_t)(*s - '0');
	return (int64_t)(neg ? 0 - v : v);
}

/* Copy the rest of the line (at most cap - 1 bytes). */
static void rest(char *dst, size_t cap, const char *s, size_t n)
{
	if (n > cap - 1)
		n = cap - 1;
	memcpy(dst, s, n);
	dst[n] = 0;
}

/* Next space-separated word of [*s, e): its start, length in *n. */
static const char *word(const char **s, const char *e, size_t *n)
{
	const char *b = *s, *p;

	while (b < e && *b == ' ')
		b++;
	p = b;
	while (p < e && *p != ' ')
		p++;
	*n = (size_t)(p - b);
	*s = p < e ? p + 1 : p;
	return b;
}

static int parse_line(struct crd_crash_report *r, const char *k, size_t kn, const char *s,
		      const char *e)
{
	size_t n;
	const char *w;

#define IS(name) (kn == sizeof(name) - 1 && !memcmp(k, name, kn))
	if (IS("time_ns"))
		r->time_ns = (uint64_t)decnum(s, e);
	else if (IS("pid"))
		r->pid = (long)decnum(s, e);
	else if (IS("tid"))
		r->tid = (long)decnum(s, e);
	else if (IS("signal")) {
		w = word(&s, e, &n);
		r->signo = (int)decnum(w, w + n);
		w = word(&s, e, &n);
		rest(r->signame, sizeof(r->signame), w, n);
	} else if (IS("code")) {
		w = word(&s, e, &n);
		r->code = (int)decnum(w, w + n);
		w = word(&s, e, &n);
		rest(r->codename, sizeof(r->codename), w, n);
	} else if (IS("addr"))
		r->addr = hexnum(s, e);
	else if (IS("thread"))
		rest(r->thread, sizeof(r->thread), s, (size_t)(e - s));
	else if (IS("exe"))
		rest(r->exe, sizeof(r->exe), s, (size_t)(e - s));
	else if (IS("service"))
		rest(r->service, sizeof(r->service), s, (size_t)(e - s));
	else if (IS("environment"))
		rest(r->environment, sizeof(r->environment), s, (size_t)(e - s));
	else if (IS("code_version"))
		rest(r->code_version, sizeof(r->code_version), s, (size_t)(e - s));
	else if (IS("host"))
		rest(r->host, sizeof(r->host), s, (size_t)(e - s));
	else if (IS("request")) {
		w = word(&s, e, &n);
		rest(r->trace_id, sizeof(r->trace_id), w, n);
		w = word(&s, e, &n);
		rest(r->span_id, sizeof(r->span_id), w, n);
		w = word(&s, e, &n);
		rest(r->req_method, sizeof(r->req_method), w, n);
		rest(r->req_target, sizeof(r->req_target), s, (size_t)(e - s));
		r->has_request = 1;
	} else if (IS("frame")) {
		struct crd_crash_frame *f;
		if (r->nframes == CRD_CRASH_MAX_FRAMES)
			return 0;
		f = &r->frames[r->nframes];
		w = word(&s, e, &n);
		f->pc = hexnum(w, w + n);
		w = word(&s, e, &n);
		f->module = (int)decnum(w, w + n);
		w = word(&s, e, &n);
		f->offset = hexnum(w, w + n);
		w = word(&s, e, &n);
		f->kind = n ? *w : 'c';
		r->nframes++;
	} else if (IS("module")) {
		struct crd_crash_module *m;
		if (r->nmodules == CRD_CRASH_MAX_MODULES_USED)
			return 0;
		m = &r->modules[r->nmodules];
		w = word(&s, e, &n);
		m->idx = (int)decnum(w, w + n);
		w = word(&s, e, &n);
		rest(m->build_id, sizeof(m->build_id), w, (n == 1 && *w == '-') ? 0 : n);
		w = word(&s, e, &n);
		m->offsets = n ? *w : 'v';
		rest(m->path, sizeof(m->path), s, (size_t)(e - s));
		r->nmodules++;
	}
#undef IS
	return 0;
}

int crd_crash_parse(const char *text, size_t len, struct crd_crash_report *r)
{
	const char *p = text, *end = text + len;
	size_t ml = sizeof(CRD_SPOOL_MAGIC) - 1;

	memset(r, 0, sizeof(*r));
	if (len < ml || memcmp(text, CRD_SPOOL_MAGIC, ml) || (len > ml && text[ml] != '\n'))
		return -EINVAL;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p)), *e = nl ? nl : end, *sp;
		sp = memchr(p, ' ', (size_t)(e - p));
		if (sp)
			parse_line(r, p, (size_t)(sp - p), sp + 1, e);
		p = e + 1;
	}
	return r->signo > 0 ? 0 : -EINVAL;
}

static const struct crd_crash_module *module_of(const struct crd_crash_report *r, int idx)
{
	for (size_t i = 0; i < r->nmodules; i++)
		if (r->modules[i].idx == idx)
			return &r->modules[i];
	return NULL;
}

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

ssize_t crd_rb_encode_crash(char *out, size_t cap, const struct crd_crash_report *r,
			    const struct crd_rb_meta *m, const char *uuid, int trim)
{
	struct jw w = {.p = out, .cap = cap, .str_max = trim ? CRD_RB_TRIM_STR : (size_t)-1};
	const char *environment = r->environment[0] ? r->environment : m->environment;
	const char *cv = r->code_version[0] ? r->code_version : m->code_version;
	const char *host = r->host[0] ? r->host : m->host;
	char text[160];
	int n;

	if (!cap)
		return -ENOSPC;
	lit(&w, "{\"data\":{");
	kvc(&w, "environment", environment);
	kvc(&w, "level", "critical");
	knum(&w, "timestamp", (long long)(r->time_ns / 1000000000u));
	kvc(&w, "platform", "linux");
	kvc(&w, "framework", CRD_NAME);
	if (cv && *cv)
		kvc(&w, "code_version", cv);
	kvc(&w, "uuid", uuid);

	/* body.trace: frames most recent LAST (Rollbar), exception class is
	 * the signal. Raw frames: module path + "name+0xoffset". */
	key(&w, "body");
	lit(&w, "{\"trace\":{\"frames\":[");
	for (size_t i = r->nframes; i-- > 0;) {
		const struct crd_crash_frame *f = &r->frames[i];
		const struct crd_crash_module *mod = module_of(r, f->module);
		if (trim && i >= CRD_RB_TRIM_FRAMES)
			continue; /* trimmed: keep the crash end of the stack */
		put(&w, "{", 1);
		if (mod) {
			kvc(&w, "filename", mod->path);
			n = snprintf(text, sizeof(text), "%s+0x%llx%s", base_name(mod->path),
				     (unsigned long long)f->offset,
				     mod->offsets == 'f' ? " (file offset)" : "");
		} else {
			kvc(&w, "filename", "[unknown]");
			n = snprintf(text, sizeof(text), "0x%llx", (unsigned long long)f->pc);
		}
		kv(&w, "method", text, (size_t)n < sizeof(text) ? (size_t)n : sizeof(text) - 1);
		put(&w, i ? "}," : "}", 1 + (i != 0));
	}
	lit(&w, "],\"exception\":{");
	kvc(&w, "class", r->signame[0] ? r->signame : "SIGNAL");
	n = snprintf(text, sizeof(text), "%s at address 0x%llx (signal %d, si_code %d)",
		     r->codename[0] ? r->codename : "fault", (unsigned long long)r->addr, r->signo,
		     r->code);
	kv(&w, "message", text, (size_t)n);
	lit(&w, "}}}");

	if (r->has_request) {
		key(&w, "request");
		put(&w, "{", 1);
		kvc(&w, "method", r->req_method);
		kvc(&w, "url", r->req_target);
		put(&w, "}", 1);
	}
	server(&w, m, host, r->pid, cv);

	key(&w, "custom");
	put(&w, "{", 1);
	if (r->has_request) {
		kvc(&w, "trace_id", r->trace_id);
		kvc(&w, "span_id", r->span_id);
	}
	knum(&w, "signal", r->signo);
	knum(&w, "si_code", r->code);
	n = snprintf(text, sizeof(text), "0x%llx", (unsigned long long)r->addr);
	kv(&w, "fault_address", text, (size_t)n);
	knum(&w, "tid", r->tid);
	if (r->thread[0])
		kvc(&w, "thread", r->thread);
	if (r->exe[0])
		kvc(&w, "exe", r->exe);
	if (r->service[0])
		kvc(&w, "service.name", r->service);
	put(&w, ",\"symbolized\":false", 19);
	key(&w, "build_ids");
	put(&w, "{", 1);
	for (size_t i = 0; i < r->nmodules; i++)
		if (r->modules[i].build_id[0])
			kvc(&w, r->modules[i].path, r->modules[i].build_id);
	put(&w, "}}", 2);

	notifier(&w);
	lit(&w, "}}");
	return finish(&w);
}
