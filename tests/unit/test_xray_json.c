/* Unit tests: the strict JSON DOM parser (preload/json.c). */
#include <criterion/criterion.h>
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../preload/json.h"

static struct crd_json *parse_ok(const char *s)
{
	struct crd_json *v = NULL;
	struct crd_json_error e;
	int rc = crd_json_parse(s, strlen(s), &v, &e);

	cr_assert_eq(rc, 0, "parse of %s failed: line %d col %d: %s", s, e.line, e.col, e.msg);
	cr_assert_not_null(v);
	return v;
}

/* Parse must fail; returns the error for further checks. */
static struct crd_json_error parse_bad(const char *s, size_t len)
{
	struct crd_json *v = (struct crd_json *)1;
	struct crd_json_error e;
	int rc = crd_json_parse(s, len, &v, &e);

	cr_assert_eq(rc, -EINVAL, "parse of [%.*s] should fail, rc=%d", (int)len, s, rc);
	cr_assert_null(v);
	cr_assert(e.msg[0], "no error message for [%.*s]", (int)len, s);
	return e;
}

#define BAD(s) parse_bad((s), strlen(s))

Test(json, scalars)
{
	struct crd_json *v;

	v = parse_ok("null");
	cr_assert_eq(v->type, CRD_JSON_NULL);
	crd_json_free(v);
	v = parse_ok(" true ");
	cr_assert_eq(v->type, CRD_JSON_BOOL);
	cr_assert_eq(v->boolean, 1);
	crd_json_free(v);
	v = parse_ok("false");
	cr_assert_eq(v->boolean, 0);
	crd_json_free(v);
	v = parse_ok("\"hi\"");
	cr_assert_eq(v->type, CRD_JSON_STRING);
	cr_assert_str_eq(v->str, "hi");
	cr_assert_eq(v->len, 2);
	crd_json_free(v);
	v = parse_ok("\t\r\n 42 \n");
	cr_assert_eq(v->type, CRD_JSON_NUMBER);
	cr_assert_eq(v->number, 42.0);
	cr_assert(v->is_int);
	crd_json_free(v);
}

Test(json, numbers)
{
	static const struct {
		const char *text;
		double want;
		int is_int;
	} cases[] = {
		{"0", 0, 1},           {"-0", -0.0, 1},         {"7", 7, 1},
		{"-12", -12, 1},       {"0.5", 0.5, 0},         {"-0.25", -0.25, 0},
		{"1e3", 1000, 0},      {"1E+3", 1000, 0},       {"25e-2", 0.25, 0},
		{"1.5E-2", 0.015, 0},  {"9007199254740993", 9007199254740992.0, 1},
		{"0.1", 0.1, 0},       {"123456789012345678901234567890", 1.2345678901234568e29, 1},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct crd_json *v = parse_ok(cases[i].text);
		cr_assert_eq(v->type, CRD_JSON_NUMBER);
		cr_assert_eq(v->number, cases[i].want, "%s -> %.17g", cases[i].text, v->number);
		cr_assert_eq(v->is_int, cases[i].is_int, "%s is_int", cases[i].text);
		crd_json_free(v);
	}
	struct crd_json *v = parse_ok("1e999");
	cr_assert(isinf(v->number));
	crd_json_free(v);
}

Test(json, bad_numbers)
{
	static const char *const bad[] = {"01", "-", "+1", "1.", ".5", "1e", "1e+", "-a", "0x10",
					  "NaN", "Infinity", "-Infinity", "1.2.3", "00", "--1",
					  "1 2"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		BAD(bad[i]);
}

Test(json, numbers_ignore_the_locale)
{
	/* An app that set a locale with a decimal comma must not change
	 * what "0.5" means. */
	if (!setlocale(LC_NUMERIC, "de_DE.UTF-8") && !setlocale(LC_NUMERIC, "fr_FR.UTF-8"))
		cr_skip_test("no locale with a decimal comma installed");
	struct crd_json *v = parse_ok("0.5");
	cr_assert_eq(v->number, 0.5);
	crd_json_free(v);
	setlocale(LC_NUMERIC, "C");
}

Test(json, objects_and_arrays)
{
	struct crd_json *v = parse_ok("{\"a\": [1, {\"b\": null}, \"x\"], \"c\": {}, \"d\": [],"
				      " \"e\": 2.5, \"s\": \"str\"}");
	const struct crd_json *a, *c;

	cr_assert_eq(v->type, CRD_JSON_OBJECT);
	cr_assert_eq(v->n, 5);
	a = crd_json_get(v, "a");
	cr_assert_not_null(a);
	cr_assert_eq(a->type, CRD_JSON_ARRAY);
	cr_assert_eq(a->n, 3);
	cr_assert_eq(crd_json_at(a, 0)->number, 1.0);
	cr_assert_eq(crd_json_get(crd_json_at(a, 1), "b")->type, CRD_JSON_NULL);
	cr_assert_str_eq(crd_json_at(a, 2)->str, "x");
	cr_assert_null(crd_json_at(a, 3));
	c = crd_json_get(v, "c");
	cr_assert_eq(c->type, CRD_JSON_OBJECT);
	cr_assert_eq(c->n, 0);
	cr_assert_null(c->child);
	cr_assert_eq(crd_json_get(v, "d")->n, 0);
	cr_assert_eq(crd_json_get_num(v, "e", -1), 2.5);
	cr_assert_eq(crd_json_get_num(v, "s", -1), -1, "wrong type gives the default");
	cr_assert_eq(crd_json_get_num(v, "zz", -3), -3);
	cr_assert_str_eq(crd_json_get_str(v, "s"), "str");
	cr_assert_null(crd_json_get_str(v, "e"));
	cr_assert_null(crd_json_get(v, "A"), "names are case-sensitive");
	cr_assert_null(crd_json_get(a, "x"), "get on an array");
	cr_assert_null(crd_json_get(NULL, "x"));
	cr_assert_str_eq(crd_json_at(v, 4)->key, "s", "members in document order");
	crd_json_free(v);
}

Test(json, duplicate_names_last_wins)
{
	struct crd_json *v = parse_ok("{\"k\": 1, \"k\": 2}");

	cr_assert_eq(v->n, 2);
	cr_assert_eq(crd_json_get_num(v, "k", 0), 2.0);
	crd_json_free(v);
}

Test(json, string_escapes)
{
	struct crd_json *v = parse_ok("\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\u00e9\\u20AC\\ud83d\\ude00\"");

	cr_assert_str_eq(v->str, "a\"b\\c/d\b\f\n\r\t\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
	crd_json_free(v);
	/* \u0000 is kept: len tells the real length. */
	v = parse_ok("\"x\\u0000y\"");
	cr_assert_eq(v->len, 3);
	cr_assert_eq(memcmp(v->str, "x\0y", 3), 0);
	crd_json_free(v);
	/* A lone surrogate (either half) becomes U+FFFD. */
	v = parse_ok("\"\\ud800x\\udc00\"");
	cr_assert_str_eq(v->str, "\xef\xbf\xbdx\xef\xbf\xbd");
	crd_json_free(v);
	/* Raw UTF-8 passes through. */
	v = parse_ok("\"h\xc3\xa9llo \xe6\x97\xa5\"");
	cr_assert_str_eq(v->str, "h\xc3\xa9llo \xe6\x97\xa5");
	crd_json_free(v);
}

Test(json, bad_strings)
{
	BAD("\"abc");
	BAD("\"a\\\"");
	BAD("\"\\x\"");
	BAD("\"\\u12\"");
	BAD("\"\\u12g4\"");
	BAD("\"tab\there\"");
	BAD("\"nl\nhere\"");
	BAD("\"\xff\"");
	BAD("\"\xc3\"");
	BAD("\"\xed\xa0\x80\""); /* a UTF-8 encoded surrogate */
	BAD("\"\xc0\xaf\"");     /* overlong */
	BAD("'single'");
	parse_bad("\"a\0b\"", 5); /* raw NUL is a control character */
}

Test(json, structure_errors_have_positions)
{
	struct crd_json_error e;

	e = BAD("{\"a\": 1,}");
	cr_assert_eq(e.line, 1);
	cr_assert_eq(e.col, 9, "col %d", e.col);
	cr_assert(strstr(e.msg, "member name"), "%s", e.msg);
	e = BAD("{\n  \"a\" 1\n}");
	cr_assert_eq(e.line, 2);
	cr_assert_eq(e.col, 7, "col %d", e.col);
	cr_assert(strstr(e.msg, "':'"), "%s", e.msg);
	e = BAD("[1, 2");
	cr_assert(strstr(e.msg, "unterminated"), "%s", e.msg);
	e = BAD("[1 2]");
	cr_assert(strstr(e.msg, "','"), "%s", e.msg);
	e = BAD("{} x");
	cr_assert(strstr(e.msg, "after"), "%s", e.msg);
	cr_assert_eq(e.col, 4);
	BAD("");
	BAD("   ");
	BAD("[1,]");
	BAD("{\"a\"}");
	BAD("{a: 1}");
	BAD("// comment\n{}");
	BAD("{} /* c */");
	BAD("tru");
	BAD("nul");
	BAD("True");
	BAD("[");
	BAD("]");
	BAD("{\"a\":}");
}

Test(json, depth_limit)
{
	char buf[2 * (CRD_JSON_MAX_DEPTH + 1) + 1];
	struct crd_json *v;
	size_t n = CRD_JSON_MAX_DEPTH;

	memset(buf, '[', n);
	memset(buf + n, ']', n);
	buf[2 * n] = 0;
	v = parse_ok(buf);
	crd_json_free(v);
	n = CRD_JSON_MAX_DEPTH + 1;
	memset(buf, '[', n);
	memset(buf + n, ']', n);
	buf[2 * n] = 0;
	struct crd_json_error e = BAD(buf);
	cr_assert(strstr(e.msg, "deep"), "%s", e.msg);
}

Test(json, bom_is_skipped)
{
	struct crd_json *v = parse_ok("\xef\xbb\xbf{\"a\":1}");

	cr_assert_eq(crd_json_get_num(v, "a", 0), 1.0);
	crd_json_free(v);
}

Test(json, text_need_not_be_nul_terminated)
{
	const char text[] = "[1,2]garbage";
	struct crd_json *v = NULL;

	cr_assert_eq(crd_json_parse(text, 5, &v, NULL), 0);
	cr_assert_eq(v->n, 2);
	crd_json_free(v);
	cr_assert_eq(crd_json_parse(text, 4, &v, NULL), -EINVAL, "NULL err is allowed");
}

Test(json, every_prefix_and_mutation_is_handled)
{
	/* Robustness: every truncation of a valid document fails cleanly,
	 * every single-byte change either parses or fails cleanly. */
	const char *doc = "{\"version\": 2, \"rules\": [{\"host\": \"*\", \"rate\": 0.5, "
			  "\"x\": [true, false, null, -1.5e3, \"\\u00e9\\n\"]}], \"d\": {}}";
	size_t len = strlen(doc);
	char *m = malloc(len);
	struct crd_json *v;

	for (size_t i = 0; i < len; i++) {
		cr_assert_eq(crd_json_parse(doc, i, &v, NULL), -EINVAL, "prefix of %zu bytes", i);
		cr_assert_null(v);
	}
	static const char repl[] = "\"\\{}[],:0-eE.a \x01\xff";
	for (size_t i = 0; i < len; i++)
		for (size_t k = 0; k < sizeof(repl) - 1; k++) {
			memcpy(m, doc, len);
			m[i] = repl[k];
			int rc = crd_json_parse(m, len, &v, NULL);
			cr_assert(rc == 0 || rc == -EINVAL);
			cr_assert(rc == 0 ? v != NULL : v == NULL);
			crd_json_free(v);
		}
	free(m);
}

Test(json, type_names)
{
	cr_assert_str_eq(crd_json_type_name(CRD_JSON_STRING), "string");
	cr_assert_str_eq(crd_json_type_name(CRD_JSON_OBJECT), "object");
	cr_assert_str_eq(crd_json_type_name(CRD_JSON_NUMBER), "number");
}
