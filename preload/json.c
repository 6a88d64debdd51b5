/* json.c - the strict JSON DOM parser (see json.h).
 *
 * Recursive descent over the text, one malloc'ed node per value, bounded
 * recursion (CRD_JSON_MAX_DEPTH). The first error stops the parse; its
 * offset is turned into a line and column for the message.
 */
#include "json.h"

#include <errno.h>
#include <locale.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../export/otlp_enc.h" /* crd_utf8_seq */

struct parser {
	const char *s, *p, *end;
	int depth;
	int nomem;
	const char *err_at;
	const char *err_msg;
};

static int fail(struct parser *ps, const char *at, const char *msg)
{
	if (!ps->err_msg) {
		ps->err_at = at;
		ps->err_msg = msg;
	}
	return -1;
}

static void skip_ws(struct parser *ps)
{
	while (ps->p < ps->end &&
	       (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
		ps->p++;
}

static struct crd_json *node(struct parser *ps, enum crd_json_type t)
{
	struct crd_json *v = calloc(1, sizeof(*v));

	if (!v) {
		ps->nomem = 1;
		fail(ps, ps->p, "out of memory");
		return NULL;
	}
	v->type = t;
	return v;
}

static int hex4(const char *p, unsigned *out)
{
	unsigned v = 0;

	for (int i = 0; i < 4; i++) {
		char c = p[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

static size_t put_utf8(char *o, unsigned cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | cp >> 12);
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | cp >> 18);
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* A string literal at ps->p (on its opening quote): a malloc'ed decoded
 * copy in *out / *outlen. The decoded form is never longer than the
 * literal (an escape of 6 bytes yields at most 3, a pair of 12 at most 4). */
static int string(struct parser *ps, char **out, size_t *outlen)
{
	const char *q = ps->p + 1, *start = ps->p;
	size_t span;
	char *buf, *o;

	/* First pass: find the closing quote, validating as we go. */
	while (q < ps->end && *q != '"') {
		unsigned char c = (unsigned char)*q;
		if (c == '\\') {
			if (q + 1 >= ps->end)
				return fail(ps, q, "unterminated string");
			q += 2;
			continue;
		}
		if (c < 0x20)
			return fail(ps, q, "control character in a string (escape it)");
		if (c >= 0x80) {
			size_t k = crd_utf8_seq((const unsigned char *)q, (size_t)(ps->end - q));
			if (!k)
				return fail(ps, q, "invalid UTF-8 in a string");
			q += k;
			continue;
		}
		q++;
	}
	if (q >= ps->end)
		return fail(ps, start, "unterminated string");
	span = (size_t)(q - start - 1);
	buf = malloc(span + 1);
	if (!buf) {
		ps->nomem = 1;
		return fail(ps, start, "out of memory");
	}
	o = buf;
	for (const char *r = start + 1; r < q;) {
		if (*r != '\\') {
			*o++ = *r++;
			continue;
		}
		char e = r[1];
		unsigned cp, lo;
		switch (e) {
		case '"':
		case '\\':
		case '/':
			*o++ = e;
			break;
		case 'b':
			*o++ = '\b';
			break;
		case 'f':
			*o++ = '\f';
			break;
		case 'n':
			*o++ = '\n';
			break;
		case 'r':
			*o++ = '\r';
			break;
		case 't':
			*o++ = '\t';
			break;
		case 'u':
			if (q - r < 6 || hex4(r + 2, &cp)) {
				free(buf);
				return fail(ps, r, "bad \\u escape (want 4 hex digits)");
			}
			r += 6;
			if (cp >= 0xd800 && cp <= 0xdbff && q - r >= 6 && r[0] == '\\' &&
			    r[1] == 'u' && !hex4(r + 2, &lo) && lo >= 0xdc00 && lo <= 0xdfff) {
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				r += 6;
			} else if (cp >= 0xd800 && cp <= 0xdfff) {
				cp = 0xfffd; /* lone surrogate */
			}
			o += put_utf8(o, cp);
			continue;
		default:
			free(buf);
			return fail(ps, r, "bad escape in a string");
		}
		r += 2;
	}
	*o = 0;
	*out = buf;
	*outlen = (size_t)(o - buf);
	ps->p = q + 1;
	return 0;
}

static locale_t c_locale(void)
{
	static locale_t loc;
	locale_t l = __atomic_load_n(&loc, __ATOMIC_ACQUIRE), fresh, expected = (locale_t)0;

	if (l)
		return l;
	fresh = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
	if (!fresh)
		return (locale_t)0;
	if (!__atomic_compare_exchange_n(&loc, &expected, fresh, 0, __ATOMIC_ACQ_REL,
					 __ATOMIC_ACQUIRE)) {
		freelocale(fresh);
		return expected;
	}
	return fresh;
}

static int is_digit(const char *p, const char *end)
{
	return p < end && *p >= '0' && *p <= '9';
}

/* number = [ minus ] int [ frac ] [ exp ] (RFC 8259 §6). */
static int number(struct parser *ps, struct crd_json *v)
{
	const char *p = ps->p, *start = p;
	char tmp[64], *copy = tmp, *endp;
	size_t n;
	int is_int = 1;
	locale_t loc;

	if (p < ps->end && *p == '-')
		p++;
	if (!is_digit(p, ps->end))
		return fail(ps, start, "bad number");
	if (*p == '0')
		p++;
	else
		while (is_digit(p, ps->end))
			p++;
	if (p < ps->end && *p == '.') {
		is_int = 0;
		p++;
		if (!is_digit(p, ps->end))
			return fail(ps, p, "bad number (digits must follow '.')");
		while (is_digit(p, ps->end))
			p++;
	}
	if (p < ps->end && (*p == 'e' || *p == 'E')) {
		is_int = 0;
		p++;
		if (p < ps->end && (*p == '+' || *p == '-'))
			p++;
		if (!is_digit(p, ps->end))
			return fail(ps, p, "bad number (digits must follow the exponent)");
		while (is_digit(p, ps->end))
			p++;
	}
	n = (size_t)(p - start);
	if (n >= sizeof(tmp)) {
		copy = malloc(n + 1);
		if (!copy) {
			ps->nomem = 1;
			return fail(ps, start, "out of memory");
		}
	}
	memcpy(copy, start, n);
	copy[n] = 0;
	loc = c_locale();
	v->number = loc ? strtod_l(copy, &endp, loc) : strtod(copy, &endp);
	if (copy != tmp)
		free(copy);
	v->is_int = is_int;
	ps->p = p;
	return 0;
}

static int literal(struct parser *ps, const char *word, size_t n)
{
	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n))
		return fail(ps, ps->p, "unexpected character (not a JSON value)");
	ps->p += n;
	return 0;
}

static struct crd_json *value(struct parser *ps);

static void append(struct crd_json *parent, struct crd_json **tail, struct crd_json *c)
{
	if (*tail)
		(*tail)->next = c;
	else
		parent->child = c;
	*tail = c;
	parent->n++;
}

static struct crd_json *array(struct parser *ps, struct crd_json *v)
{
	struct crd_json *tail = NULL;

	ps->p++; /* [ */
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == ']') {
		ps->p++;
		return v;
	}
	for (;;) {
		struct crd_json *c = value(ps);
		if (!c)
			return NULL;
		append(v, &tail, c);
		skip_ws(ps);
		if (ps->p < ps->end && *ps->p == ',') {
			ps->p++;
			continue;
		}
		if (ps->p < ps->end && *ps->p == ']') {
			ps->p++;
			return v;
		}
		fail(ps, ps->p, ps->p < ps->end ? "expected ',' or ']'" : "unterminated array");
		return NULL;
	}
}

static struct crd_json *object(struct parser *ps, struct crd_json *v)
{
	struct crd_json *tail = NULL;

	ps->p++; /* { */
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == '}') {
		ps->p++;
		return v;
	}
	for (;;) {
		char *key;
		size_t klen;
		struct crd_json *c;

		skip_ws(ps);
		if (ps->p >= ps->end || *ps->p != '"') {
			fail(ps, ps->p,
			     ps->p < ps->end ? "expected a member name in double quotes"
					     : "unterminated object");
			return NULL;
		}
		if (string(ps, &key, &klen))
			return NULL;
		skip_ws(ps);
		if (ps->p >= ps->end || *ps->p != ':') {
			free(key);
			fail(ps, ps->p, "expected ':' after a member name");
			return NULL;
		}
		ps->p++;
		c = value(ps);
		if (!c) {
			free(key);
			return NULL;
		}
		c->key = key;
		c->key_len = klen;
		append(v, &tail, c);
		skip_ws(ps);
		if (ps->p < ps->end && *ps->p == ',') {
			ps->p++;
			continue;
		}
		if (ps->p < ps->end && *ps->p == '}') {
			ps->p++;
			return v;
		}
		fail(ps, ps->p, ps->p < ps->end ? "expected ',' or '}'" : "unterminated object");
		return NULL;
	}
}

static struct crd_json *value(struct parser *ps)
{
	struct crd_json *v, *r;

	skip_ws(ps);
	if (ps->p >= ps->end) {
		fail(ps, ps->p, "unexpected end of text (a value is missing)");
		return NULL;
	}
	switch (*ps->p) {
	case '{':
	case '[':
		if (ps->depth >= CRD_JSON_MAX_DEPTH) {
			fail(ps, ps->p, "nested too deeply");
			return NULL;
		}
		if (!(v = node(ps, *ps->p == '{' ? CRD_JSON_OBJECT : CRD_JSON_ARRAY)))
			return NULL;
		ps->depth++;
		r = v->type == CRD_JSON_OBJECT ? object(ps, v) : array(ps, v);
		ps->depth--;
		if (!r)
			crd_json_free(v);
		return r;
	case '"':
		if (!(v = node(ps, CRD_JSON_STRING)))
			return NULL;
		if (string(ps, &v->str, &v->len)) {
			crd_json_free(v);
			return NULL;
		}
		return v;
	case 't':
	case 'f':
		if (!(v = node(ps, CRD_JSON_BOOL)))
			return NULL;
		v->boolean = *ps->p == 't';
		if (literal(ps, v->boolean ? "true" : "false", v->boolean ? 4 : 5)) {
			crd_json_free(v);
			return NULL;
		}
		return v;
	case 'n':
		if (!(v = node(ps, CRD_JSON_NULL)))
			return NULL;
		if (literal(ps, "null", 4)) {
			crd_json_free(v);
			return NULL;
		}
		return v;
	default:
		if (*ps->p != '-' && (*ps->p < '0' || *ps->p > '9')) {
			fail(ps, ps->p, "unexpected character (not a JSON value)");
			return NULL;
		}
		if (!(v = node(ps, CRD_JSON_NUMBER)))
			return NULL;
		if (number(ps, v)) {
			crd_json_free(v);
			return NULL;
		}
		return v;
	}
}

int crd_json_parse(const char *text, size_t len, struct crd_json **out, struct crd_json_error *err)
{
	struct parser ps = {.s = text, .p = text, .end = text + len};
	struct crd_json *v;

	*out = NULL;
	if (len >= 3 && !memcmp(text, "\xef\xbb\xbf", 3))
		ps.p += 3; /* a UTF-8 byte-order mark (RFC 8259 §8.1 allows ignoring it) */
	v = value(&ps);
	if (v) {
		skip_ws(&ps);
		if (ps.p < ps.end) {
			fail(&ps, ps.p, "unexpected text after the JSON value");
			crd_json_free(v);
			v = NULL;
		}
	}
	if (v) {
		*out = v;
		return 0;
	}
	if (err) {
		const char *at = ps.err_at ? ps.err_at : ps.p;
		memset(err, 0, sizeof(*err));
		err->offset = (size_t)(at - text);
		err->line = 1;
		err->col = 1;
		for (const char *c = text; c < at; c++) {
			if (*c == '\n') {
				err->line++;
				err->col = 1;
			} else {
				err->col++;
			}
		}
		snprintf(err->msg, sizeof(err->msg), "%s",
			 ps.err_msg ? ps.err_msg : "invalid JSON");
	}
	return ps.nomem ? -ENOMEM : -EINVAL;
}

void crd_json_free(struct crd_json *v)
{
	while (v) {
		struct crd_json *next = v->next;
		crd_json_free(v->child); /* depth is bounded by CRD_JSON_MAX_DEPTH */
		free(v->str);
		free(v->key);
		free(v);
		v = next;
	}
}

const struct crd_json *crd_json_get(const struct crd_json *v, const char *key)
{
	const struct crd_json *found = NULL;
	size_t n;

	if (!v || v->type != CRD_JSON_OBJECT || !key)
		return NULL;
	n = strlen(key);
	for (const struct crd_json *c = v->child; c; c = c->next)
		if (c->key_len == n && !memcmp(c->key, key, n))
			found = c;
	return found;
}

const struct crd_json *crd_json_at(const struct crd_json *v, size_t i)
{
	const struct crd_json *c;

	if (!v || (v->type != CRD_JSON_ARRAY && v->type != CRD_JSON_OBJECT))
		return NULL;
	for (c = v->child; c && i; c = c->next)
		i--;
	return c;
}

const char *crd_json_get_str(const struct crd_json *obj, const char *key)
{
	const struct crd_json *v = crd_json_get(obj, key);

	return v && v->type == CRD_JSON_STRING ? v->str : NULL;
}

double crd_json_get_num(const struct crd_json *obj, const char *key, double def)
{
	const struct crd_json *v = crd_json_get(obj, key);

	return v && v->type == CRD_JSON_NUMBER ? v->number : def;
}

const char *crd_json_type_name(enum crd_json_type t)
{
	switch (t) {
	case CRD_JSON_NULL:
		return "null";
	case CRD_JSON_BOOL:
		return "boolean";
	case CRD_JSON_NUMBER:
		return "number";
	case CRD_JSON_STRING:
		return "string";
	case CRD_JSON_ARRAY:
		return "array";
	case CRD_JSON_OBJECT:
		return "object";
	}
	return "?";
}
