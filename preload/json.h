/* json.h - a small, strict JSON (RFC 8259) DOM parser.
 *
 * For configuration files read at load (X-Ray sampling rules) and, later,
 * for answers the sinks receive: parse a whole text into a tree, look
 * values up, free the tree. No JSON library is linked: the preload library
 * must stay self-contained.
 *
 * Strictness: exactly one value, optionally surrounded by whitespace; a
 * UTF-8 byte-order mark at the start is skipped; no comments, no trailing
 * commas, no single quotes, no NaN/Infinity; strings must be valid UTF-8
 * without raw control characters; numbers follow the RFC grammar. \u
 * escapes are decoded to UTF-8 (surrogate pairs combined; a lone surrogate
 * becomes U+FFFD). Nesting is limited to CRD_JSON_MAX_DEPTH. Duplicate
 * member names are kept; crd_json_get() returns the last one (as
 * ECMAScript's JSON.parse does).
 *
 * Thread safety: parsing and lookups are pure functions of their inputs
 * (they allocate with malloc, so not async-signal-safe); a tree may be read
 * from several threads at once. Numbers are converted in the C locale
 * whatever the app's LC_NUMERIC is.
 */
#ifndef CRD_JSON_H
#define CRD_JSON_H

#include <stddef.h>

#define CRD_JSON_MAX_DEPTH 64

enum crd_json_type {
	CRD_JSON_NULL,
	CRD_JSON_BOOL,
	CRD_JSON_NUMBER,
	CRD_JSON_STRING,
	CRD_JSON_ARRAY,
	CRD_JSON_OBJECT,
};

struct crd_json {
	enum crd_json_type type;
	int boolean;   /* CRD_JSON_BOOL: 0 or 1 */
	double number; /* CRD_JSON_NUMBER */
	int is_int;    /* number written without fraction or exponent */
	char *str;     /* CRD_JSON_STRING: decoded, NUL-terminated */
	size_t len;    /* its length (it may contain NUL from \u0000) */
	char *key;     /* member name when inside an object, else NULL */
	size_t key_len;
	size_t n;		/* CRD_JSON_ARRAY/OBJECT: number of children */
	struct crd_json *child; /* first element / member */
	struct crd_json *next;	/* next sibling */
};

/* Where and why a parse failed. line and col count from 1 (col in bytes). */
struct crd_json_error {
	size_t offset;
	int line, col;
	char msg[80];
};

/* Parse len bytes of text. 0 and *out = the tree, or -EINVAL (err filled
 * when not NULL) / -ENOMEM, with *out = NULL. */
int crd_json_parse(const char *text, size_t len, struct crd_json **out, struct crd_json_error *err);

/* Free a tree from crd_json_parse (NULL is fine). */
void crd_json_free(struct crd_json *v);

/* The member named key of an object (the last one if repeated), or NULL
 * when v is not an object or has no such member. */
const struct crd_json *crd_json_get(const struct crd_json *v, const char *key);

/* Element i of an array (or member i of an object), or NULL. */
const struct crd_json *crd_json_at(const struct crd_json *v, size_t i);

/* Typed lookups: the member's value, or NULL / def when absent or of
 * another type. */
const char *crd_json_get_str(const struct crd_json *obj, const char *key);
double crd_json_get_num(const struct crd_json *obj, const char *key, double def);

/* A readable name of a type ("string", "object", ...), for messages. */
const char *crd_json_type_name(enum crd_json_type t);

#endif
