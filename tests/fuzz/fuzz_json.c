/* fuzz_json.c - libFuzzer target: the JSON parser (preload/json.c) and the
 * X-Ray sampling rules reader built on it (crd_xray_rules_parse).
 *
 * Input: the text, in an exact-size heap copy (the parser takes a length,
 * not a NUL), so ASan reports any read past it; LeakSanitizer reports a
 * tree or string not freed on an error path. Checked:
 * - an error has an offset within the text, line/col >= 1 and a message;
 * - an accepted tree is consistent (child counts, keys only in objects,
 *   strings NUL-terminated at their length and valid UTF-8, depth within
 *   CRD_JSON_MAX_DEPTH), crd_json_get() finds the last member of each name
 *   and crd_json_at() every child;
 * - round trip: the tree written back as JSON parses to an equal tree
 *   (numbers bit for bit: %.17g round-trips a double);
 * - the rules reader returns 0 or -EINVAL with a reason, and its rules
 *   match a request without crashing.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../export/otlp_enc.h" /* crd_utf8_seq */
#include "json.h"
#include "xray.h"

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_json: %s:%d: %s: ", __FILE__, __LINE__, #cond);      \
			fprintf(stderr, __VA_ARGS__);                                              \
			fputc('\n', stderr);                                                       \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

struct buf {
	char *p;
	size_t n, cap;
};

static void put(struct buf *b, const void *s, size_t n)
{
	if (b->n + n > b->cap) {
		b->cap = (b->n + n) * 2 + 64;
		b->p = realloc(b->p, b->cap);
		CHECK(b->p, "out of memory");
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
}

static void check_str(const char *s, size_t len, const char *what)
{
	CHECK(s && s[len] == 0, "%s not NUL-terminated at its length", what);
	for (size_t i = 0; i < len;) {
		if ((uint8_t)s[i] < 0x80) {
			i++;
			continue;
		}
		size_t k = crd_utf8_seq((const unsigned char *)s + i, len - i);
		CHECK(k, "%s: invalid UTF-8 at %zu", what, i);
		i += k;
	}
}

static void put_str(struct buf *b, const char *s, size_t len)
{
	put(b, "\"", 1);
	for (size_t i = 0; i < len; i++) {
		uint8_t c = (uint8_t)s[i];
		char esc[8];
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			put(b, esc, 2);
		} else if (c < 0x20) {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			put(b, esc, 6);
		} else {
			put(b, &s[i], 1);
		}
	}
	put(b, "\"", 1);
}

static void check_and_write(const struct crd_json *v, int depth, struct buf *b)
{
	char num[64];
	int n;
	size_t count = 0;

	CHECK(depth <= CRD_JSON_MAX_DEPTH + 1, "depth %d", depth);
	switch (v->type) {
	case CRD_JSON_NULL:
		put(b, "null", 4);
		break;
	case CRD_JSON_BOOL:
		CHECK(v->boolean == 0 || v->boolean == 1, "boolean %d", v->boolean);
		put(b, v->boolean ? "true" : "false", v->boolean ? 4 : 5);
		break;
	case CRD_JSON_NUMBER:
		CHECK(!isnan(v->number), "NaN");
		if (isinf(v->number))
			n = snprintf(num, sizeof(num), "%s1e999", v->number < 0 ? "-" : "");
		else
			n = snprintf(num, sizeof(num), "%.17g", v->number);
		put(b, num, (size_t)n);
		break;
	case CRD_JSON_STRING:
		check_str(v->str, v->len, "string");
		put_str(b, v->str, v->len);
		break;
	case CRD_JSON_ARRAY:
	case CRD_JSON_OBJECT:
		put(b, v->type == CRD_JSON_ARRAY ? "[" : "{", 1);
		for (const struct crd_json *c = v->child; c; c = c->next) {
			CHECK(crd_json_at(v, count) == c, "crd_json_at(%zu)", count);
			if (count++)
				put(b, ",", 1);
			if (v->type == CRD_JSON_OBJECT) {
				CHECK(c->key, "object member without a key");
				check_str(c->key, c->key_len, "key");
				put_str(b, c->key, c->key_len);
				put(b, ":", 1);
				/* The last member of that name is what get()
				 * returns (keys with a NUL cannot be asked for). */
				if (strlen(c->key) == c->key_len) {
					const struct crd_json *last = c;
					for (const struct crd_json *d = c->next; d; d = d->next)
						if (d->key_len == c->key_len &&
						    !memcmp(d->key, c->key, c->key_len))
							last = d;
					CHECK(crd_json_get(v, c->key) == last,
					      "crd_json_get(\"%s\")", c->key);
				}
			} else {
				CHECK(!c->key, "array element with a key");
			}
			check_and_write(c, depth + 1, b);
		}
		CHECK(count == v->n, "%zu children, n = %zu", count, v->n);
		CHECK(!crd_json_at(v, count), "crd_json_at past the end");
		put(b, v->type == CRD_JSON_ARRAY ? "]" : "}", 1);
		break;
	default:
		CHECK(0, "type %d", (int)v->type);
	}
}

static void same(const struct crd_json *a, const struct crd_json *b)
{
	CHECK(a->type == b->type, "type %d vs %d", (int)a->type, (int)b->type);
	CHECK((a->key == NULL) == (b->key == NULL) &&
		  (!a->key || (a->key_len == b->key_len && !memcmp(a->key, b->key, a->key_len))),
	      "keys differ");
	switch (a->type) {
	case CRD_JSON_BOOL:
		CHECK(a->boolean == b->boolean, "boolean");
		break;
	case CRD_JSON_NUMBER:
		CHECK(!memcmp(&a->number, &b->number, sizeof(double)), "number %.17g vs %.17g",
		      a->number, b->number);
		break;
	case CRD_JSON_STRING:
		CHECK(a->len == b->len && !memcmp(a->str, b->str, a->len), "string");
		break;
	case CRD_JSON_ARRAY:
	case CRD_JSON_OBJECT:
		CHECK(a->n == b->n, "%zu vs %zu children", a->n, b->n);
		for (const struct crd_json *x = a->child, *y = b->child; x;
		     x = x->next, y = y->next)
			same(x, y);
		break;
	default:
		break;
	}
}

static void check_rules(const char *text, size_t len)
{
	struct crd_xray_rules rs;
	char why[200];
	int rc;

	memset(why, 0x5a, sizeof(why));
	rc = crd_xray_rules_parse(text, len, &rs, why, sizeof(why));
	CHECK(rc == 0 || rc == -EINVAL || rc == -ENOMEM, "rules: rc %d", rc);
	if (rc) {
		CHECK(memchr(why, 0, sizeof(why)) && why[0], "rules: no reason");
		return;
	}
	struct crd_xray_request rq = {.service = "svc",
				      .service_type = "AWS::EC2::Instance",
				      .host = "example.com",
				      .method = "GET",
				      .path = "/api/x",
				      .path_len = 6};
	struct crd_xray_rule *r = crd_xray_match(&rs, &rq);
	CHECK(r, "no rule matched (not even the default)");
	CHECK(r->rate >= 0 && r->rate <= 1, "rate %g", r->rate);
	CHECK(crd_xray_match(&rs, NULL), "no default rule");
	crd_xray_rules_free(&rs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size ? size : 1);
	struct crd_json *v = NULL, *w = NULL;
	struct crd_json_error err;
	struct buf b = {0};
	int rc;

	CHECK(text, "out of memory");
	memcpy(text, data, size);
	rc = crd_json_parse(text, size, &v, &err);
	if (rc) {
		CHECK(rc == -EINVAL || rc == -ENOMEM, "rc %d", rc);
		CHECK(!v, "tree returned with an error");
		CHECK(err.offset <= size && err.line >= 1 && err.col >= 1, "error at %zu, %d:%d",
		      err.offset, err.line, err.col);
		CHECK(memchr(err.msg, 0, sizeof(err.msg)) && err.msg[0], "no message");
	} else {
		CHECK(v && !v->key && !v->next, "bad root");
		check_and_write(v, 1, &b);
		rc = crd_json_parse(b.p, b.n, &w, &err);
		CHECK(rc == 0, "own output rejected at %zu (%s): %.*s", err.offset, err.msg,
		      (int)b.n, b.p);
		same(v, w);
		crd_json_free(w);
		crd_json_free(v);
	}
	free(b.p);
	check_rules(text, size);
	free(text);
	return 0;
}
