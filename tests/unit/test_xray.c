/* Unit tests: AWS X-Ray settings, sampling rules (v1, v2, CLI), matching,
 * the reservoir/rate sampler with a fake clock and random source, segment
 * documents field by field, and the 64 KB split. Documents are checked
 * with cJSON (an independent parser; the library itself never links it). */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../export/sink.h"
#include "../../export/xray.h"
#include "../../preload/config.h"
#include "../../preload/span.h"
#include "../../preload/tracectx.h"
#include "../../preload/xray.h"

/* ---- helpers ---- */

static char *write_tmp(const char *text)
{
	static char path[64];
	int fd;

	snprintf(path, sizeof(path), "/tmp/crd-xray-rules-XXXXXX");
	fd = mkstemp(path);
	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

/* Run fn with fd 2 sent to a temp file; return what was written. */
static char stderr_buf[4096];
static const char *capture_stderr(void (*fn)(void *), void *arg)
{
	char path[] = "/tmp/crd-xray-err-XXXXXX";
	int fd = mkstemp(path), saved = dup(2);
	ssize_t n;

	cr_assert(fd >= 0 && saved >= 0);
	fflush(stderr);
	dup2(fd, 2);
	fn(arg);
	dup2(saved, 2);
	close(saved);
	lseek(fd, 0, SEEK_SET);
	n = read(fd, stderr_buf, sizeof(stderr_buf) - 1);
	stderr_buf[n > 0 ? n : 0] = 0;
	close(fd);
	unlink(path);
	return stderr_buf;
}

static int count_lines(const char *s)
{
	int n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static struct crd_xray_rules parse_rules_ok(const char *text)
{
	struct crd_xray_rules rs;
	char why[256];
	int rc = crd_xray_rules_parse(text, strlen(text), &rs, why, sizeof(why));

	cr_assert_eq(rc, 0, "rules should parse: %s", why);
	return rs;
}

static const char *parse_rules_bad(const char *text)
{
	static char why[256];
	struct crd_xray_rules rs;
	int rc = crd_xray_rules_parse(text, strlen(text), &rs, why, sizeof(why));

	cr_assert_eq(rc, -EINVAL, "rules should be refused: %s", text);
	cr_assert(why[0], "a reason is given");
	/* Refused: the default rule, nothing else. */
	cr_assert_eq(rs.n, 0);
	cr_assert_eq(rs.format, CRD_XRAY_RULES_BUILTIN);
	cr_assert_eq(rs.def.fixed_target, 1);
	cr_assert_eq(rs.def.rate, 0.05);
	return why;
}

static struct crd_xray_request req(const char *service, const char *host, const char *method,
				   const char *path)
{
	return (struct crd_xray_request){.service = service, .host = host, .method = method,
					 .path = path, .path_len = path ? strlen(path) : 0};
}

/* ---- wildcard ---- */

Test(xray_wildcard, sdk_semantics)
{
	static const struct {
		const char *pattern, *text;
		int want;
	} cases[] = {
		{"*", "", 1},
		{"*", "anything at all", 1},
		{"", "", 1},
		{"", "a", 0},
		{"a", "", 0},
		{"foo", "foo", 1},
		{"foo", "FOO", 1}, /* case-insensitive */
		{"FoO", "fOo", 1},
		{"foo", "foobar", 0},
		{"foo*", "foobar", 1},
		{"*bar", "foobar", 1},
		{"f*r", "foobar", 1},
		{"f*r", "foobaz", 0},
		{"?", "a", 1},
		{"?", "", 0},
		{"?", "ab", 0},
		{"??", "ab", 1},
		{"a?c", "abc", 1},
		{"a?c", "ac", 0},
		{"*a*b*c*", "xxaxxbxxcxx", 1},
		{"*a*b*c*", "xxaxxcxxbxx", 0},
		{"/api/*", "/api/users/1", 1},
		{"/api/*", "/apix", 0},
		{"/api/*/edit", "/api/users/1/edit", 1},
		{"*.example.com", "www.example.com", 1},
		{"*.example.com", "example.com", 0},
		{"*.example.com", "www.example.com:8080", 0},
		{"*.example.com*", "www.example.com:8080", 1},
		{"a*", "a", 1},
		{"a**b", "ab", 1},
		{"*?", "", 0},
		{"*?", "x", 1},
		{"ab*ab", "abab", 1},
		{"ab*ab", "abcab", 1},
		{"ab*ab", "aba", 0},
		{"a*b*", "a*b", 1},
		{"a*c", "a*xc", 1},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		cr_assert_eq(crd_xray_wildcard(cases[i].pattern, cases[i].text,
					       strlen(cases[i].text)),
			     cases[i].want, "'%s' vs '%s'", cases[i].pattern, cases[i].text);
	/* Only len bytes of text count (a path before its query). */
	cr_assert(crd_xray_wildcard("/x", "/x?q=1", 2));
	cr_assert(!crd_xray_wildcard("/x", "/x?q=1", 6));
}

Test(xray_wildcard, pathological_is_fast)
{
	char text[4001], pat[64];

	memset(text, 'a', 4000);
	text[4000] = 0;
	snprintf(pat, sizeof(pat), "*a*a*a*a*a*a*a*a*a*a*b");
	for (int i = 0; i < 50; i++)
		cr_assert(!crd_xray_wildcard(pat, text, 4000));
}

/* ---- daemon address ---- */

Test(xray_config, daemon_address_forms)
{
	char *u, *t;
	uint16_t up, tp;
	const char *why;

	cr_assert_eq(crd_xray_parse_daemon("127.0.0.1:2000", &u, &up, &t, &tp, &why), 0);
	cr_assert_str_eq(u, "127.0.0.1");
	cr_assert_eq(up, 2000);
	cr_assert_str_eq(t, "127.0.0.1");
	cr_assert_eq(tp, 2000);
	free(u), free(t);
	/* docker-compose: a service name. */
	cr_assert_eq(crd_xray_parse_daemon("xray-daemon:2000", &u, &up, &t, &tp, &why), 0);
	cr_assert_str_eq(u, "xray-daemon");
	free(u), free(t);
	cr_assert_eq(crd_xray_parse_daemon("tcp:10.0.0.1:2001 udp:10.0.0.2:2002", &u, &up, &t, &tp,
					   &why),
		     0);
	cr_assert_str_eq(u, "10.0.0.2");
	cr_assert_eq(up, 2002);
	cr_assert_str_eq(t, "10.0.0.1");
	cr_assert_eq(tp, 2001);
	free(u), free(t);
	cr_assert_eq(crd_xray_parse_daemon("udp:a:1  tcp:b:2", &u, &up, &t, &tp, &why), 0);
	cr_assert_str_eq(u, "a");
	cr_assert_eq(up, 1);
	cr_assert_str_eq(t, "b");
	cr_assert_eq(tp, 2);
	free(u), free(t);
	cr_assert_eq(crd_xray_parse_daemon("[::1]:2000", &u, &up, &t, &tp, &why), 0);
	cr_assert_str_eq(u, "::1");
	free(u), free(t);

	static const char *const bad[] = {"2000", ":2000", "host:", "host:0", "host:65536",
					  "host:20x0", "ho st:1", "h/x:1", "udp:a:1 udp:b:2",
					  "tcp:a:1 tcp:b:2", "foo:a:1 udp:b:2", "udp:a:1",
					  "a:1 b:2", "udp:a:1 tcp:b:2 x:3", "[::1:2000", "[zz]:1",
					  "   "};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		cr_assert_eq(crd_xray_parse_daemon(bad[i], &u, &up, &t, &tp, &why), -EINVAL,
			     "'%s' should be refused", bad[i]);
		cr_assert_not_null(why);
		cr_assert_null(u);
	}
}

/* ---- rules: SDK local format ---- */

Test(xray_rules, v2)
{
	struct crd_xray_rules rs = parse_rules_ok(
		"{\"version\": 2, \"rules\": [{\"description\": \"Player moves.\", \"host\": "
		"\"*\", \"http_method\": \"*\", \"url_path\": \"/api/move/*\", \"fixed_target\": 0, "
		"\"rate\": 0.05}, {\"host\": \"a.example.com\", \"http_method\": \"POST\", "
		"\"url_path\": \"*\", \"fixed_target\": 3, \"rate\": 1}], \"default\": "
		"{\"fixed_target\": 1, \"rate\": 0.1}}");

	cr_assert_eq(rs.format, CRD_XRAY_RULES_V2);
	cr_assert_eq(rs.n, 2);
	cr_assert_str_eq(rs.rules[0].path, "/api/move/*");
	cr_assert_str_eq(rs.rules[0].host, "*");
	cr_assert_str_eq(rs.rules[0].method, "*");
	cr_assert_null(rs.rules[0].service);
	cr_assert_eq(rs.rules[0].fixed_target, 0);
	cr_assert_eq(rs.rules[0].rate, 0.05);
	cr_assert_str_eq(rs.rules[1].host, "a.example.com");
	cr_assert_eq(rs.rules[1].fixed_target, 3);
	cr_assert_eq(rs.rules[1].rate, 1.0);
	cr_assert_eq(rs.def.fixed_target, 1);
	cr_assert_eq(rs.def.rate, 0.1);
	crd_xray_rules_free(&rs);
	/* Rules are optional; the default is not. */
	rs = parse_rules_ok("{\"version\": 2, \"default\": {\"fixed_target\": 0, \"rate\": 1}}");
	cr_assert_eq(rs.n, 0);
	cr_assert_eq(rs.def.rate, 1.0);
	crd_xray_rules_free(&rs);
}

Test(xray_rules, v1_service_name_matches_the_host)
{
	struct crd_xray_rules rs = parse_rules_ok(
		"{\"version\": 1, \"rules\": [{\"service_name\": \"api.example.com\", "
		"\"http_method\": \"GET\", \"url_path\": \"/health\", \"fixed_target\": 0, "
		"\"rate\": 0}], \"default\": {\"fixed_target\": 2, \"rate\": 0.5}}");
	struct crd_xray_request r;

	cr_assert_eq(rs.format, CRD_XRAY_RULES_V1);
	cr_assert_eq(rs.n, 1);
	/* As in the SDKs, v1's service_name is matched against the Host. */
	cr_assert_str_eq(rs.rules[0].host, "api.example.com");
	cr_assert_null(rs.rules[0].service);
	r = req("svc", "api.example.com", "GET", "/health");
	cr_assert_eq(crd_xray_match(&rs, &r), &rs.rules[0]);
	r = req("svc", "other.example.com", "GET", "/health");
	cr_assert_eq(crd_xray_match(&rs, &r), &rs.def);
	crd_xray_rules_free(&rs);
}

Test(xray_rules, local_format_errors)
{
	const char *why;

	why = parse_rules_bad("{\"version\": 3, \"default\": {\"fixed_target\": 1, \"rate\": 0.1}}");
	cr_assert(strstr(why, "version"), "%s", why);
	parse_rules_bad("{\"version\": \"2\", \"default\": {\"fixed_target\": 1, \"rate\": 0.1}}");
	parse_rules_bad("{\"version\": 2.5, \"default\": {\"fixed_target\": 1, \"rate\": 0.1}}");
	why = parse_rules_bad("{\"version\": 2, \"rules\": []}");
	cr_assert(strstr(why, "default"), "%s", why);
	why = parse_rules_bad("{\"version\": 2, \"default\": {\"fixed_target\": 1, \"rate\": 0.1, "
			      "\"host\": \"*\"}}");
	cr_assert(strstr(why, "default rule must not"), "%s", why);
	why = parse_rules_bad("{\"version\": 2, \"default\": {\"fixed_target\": 1, \"rate\": 1.5}}");
	cr_assert(strstr(why, "\"rate\" must be a number from 0 to 1"), "%s", why);
	parse_rules_bad("{\"version\": 2, \"default\": {\"fixed_target\": -1, \"rate\": 0.1}}");
	parse_rules_bad("{\"version\": 2, \"default\": {\"fixed_target\": 1.5, \"rate\": 0.1}}");
	parse_rules_bad("{\"version\": 2, \"default\": {\"rate\": 0.1}}");
	parse_rules_bad("{\"version\": 2, \"default\": {\"fixed_target\": 1}}");
	parse_rules_bad("{\"version\": 2, \"default\": {\"fixed_target\": 1, \"rate\": \"0.1\"}}");
	why = parse_rules_bad("{\"version\": 2, \"default\": {\"fixed_target\": 1, \"rate\": 0.1}, "
			      "\"rules\": [{\"host\": \"*\", \"http_method\": \"*\", "
			      "\"fixed_target\": 1, \"rate\": 0.1}]}");
	cr_assert(strstr(why, "rules[0]") && strstr(why, "url_path"), "%s", why);
	why = parse_rules_bad("{\"version\": 2, \"default\": {\"fixed_target\": 1, \"rate\": 0.1}, "
			      "\"rules\": [{\"service_name\": \"*\", \"http_method\": \"*\", "
			      "\"url_path\": \"*\", \"fixed_target\": 1, \"rate\": 0.1}]}");
	cr_assert(strstr(why, "version 1"), "%s", why);
	why = parse_rules_bad("{\"version\": 2, \"default\": {\"fixed_target\": 1, \"rate\": 0.1}, "
			      "\"rules\": [{\"host\": 5, \"http_method\": \"*\", "
			      "\"url_path\": \"*\", \"fixed_target\": 1, \"rate\": 0.1}]}");
	cr_assert(strstr(why, "must be a string"), "%s", why);
	parse_rules_bad("{\"version\": 2, \"default\": {\"fixed_target\": 1, \"rate\": 0.1}, "
			"\"rules\": {}}");
	why = parse_rules_bad("{\"version\": 2,\n \"default\": {\"fixed_target\": 1 \"rate\": 0.1}}");
	cr_assert(strstr(why, "line 2"), "%s", why);
	why = parse_rules_bad("{\"rules\": []}");
	cr_assert(strstr(why, "not a sampling rules document"), "%s", why);
	parse_rules_bad("[]");
	parse_rules_bad("42");
	parse_rules_bad("");
}

/* ---- rules: the AWS CLI format ---- */

/* The docker-compose set-up's aws/json/xray.json, as given to
 * `aws xray create-sampling-rule --cli-input-json file://...`. */
static const char cli_cruddur[] = "{\n"
				  "  \"SamplingRule\": {\n"
				  "      \"RuleName\": \"Cruddur\",\n"
				  "      \"ResourceARN\": \"*\",\n"
				  "      \"Priority\": 9000,\n"
				  "      \"FixedRate\": 0.1,\n"
				  "      \"ReservoirSize\": 5,\n"
				  "      \"ServiceName\": \"backend-flask\",\n"
				  "      \"ServiceType\": \"*\",\n"
				  "      \"Host\": \"*\",\n"
				  "      \"HTTPMethod\": \"*\",\n"
				  "      \"URLPath\": \"*\",\n"
				  "      \"Version\": 1\n"
				  "  }\n"
				  "}\n";

Test(xray_rules, cli_single_rule)
{
	struct crd_xray_rules rs = parse_rules_ok(cli_cruddur);
	struct crd_xray_request r;

	cr_assert_eq(rs.format, CRD_XRAY_RULES_CLI);
	cr_assert_eq(rs.n, 1);
	cr_assert_str_eq(rs.rules[0].name, "Cruddur");
	cr_assert_eq(rs.rules[0].priority, 9000);
	cr_assert_eq(rs.rules[0].rate, 0.1);
	cr_assert_eq(rs.rules[0].fixed_target, 5);
	cr_assert_str_eq(rs.rules[0].service, "backend-flask");
	cr_assert_str_eq(rs.rules[0].service_type, "*");
	cr_assert_str_eq(rs.rules[0].host, "*");
	cr_assert_str_eq(rs.rules[0].method, "*");
	cr_assert_str_eq(rs.rules[0].path, "*");
	/* No "Default" rule in the file: the SDK default. */
	cr_assert_eq(rs.def.fixed_target, 1);
	cr_assert_eq(rs.def.rate, 0.05);
	/* ServiceName matches the segment name. */
	r = req("backend-flask", "localhost:4567", "GET", "/api/activities/home");
	cr_assert_eq(crd_xray_match(&rs, &r), &rs.rules[0]);
	r = req("frontend-react-js", "localhost:4567", "GET", "/api/activities/home");
	cr_assert_eq(crd_xray_match(&rs, &r), &rs.def);
	crd_xray_rules_free(&rs);
}

Test(xray_rules, cli_lists_priorities_and_default)
{
	/* `aws xray get-sampling-rules` output: unordered, with the service's
	 * Default rule and rules we cannot evaluate. */
	struct crd_xray_rules rs = parse_rules_ok(
		"{\"SamplingRuleRecords\": ["
		"{\"SamplingRule\": {\"RuleName\": \"Default\", \"ResourceARN\": \"*\", "
		"\"Priority\": 10000, \"FixedRate\": 0.2, \"ReservoirSize\": 3, \"ServiceName\": "
		"\"*\", \"ServiceType\": \"*\", \"Host\": \"*\", \"HTTPMethod\": \"*\", \"URLPath\": "
		"\"*\", \"Version\": 1}, \"CreatedAt\": 0.0},"
		"{\"SamplingRule\": {\"RuleName\": \"b-low\", \"ResourceARN\": \"*\", \"Priority\": "
		"50, \"FixedRate\": 0.5, \"ReservoirSize\": 0, \"ServiceName\": \"*\", "
		"\"ServiceType\": \"*\", \"Host\": \"*\", \"HTTPMethod\": \"*\", \"URLPath\": \"*\", "
		"\"Version\": 1}},"
		"{\"SamplingRule\": {\"RuleName\": \"a-health\", \"ResourceARN\": \"*\", "
		"\"Priority\": 10, \"FixedRate\": 0, \"ReservoirSize\": 0, \"ServiceName\": \"*\", "
		"\"ServiceType\": \"*\", \"Host\": \"*\", \"HTTPMethod\": \"GET\", \"URLPath\": "
		"\"/health*\", \"Version\": 1}},"
		"{\"SamplingRule\": {\"RuleName\": \"a-same-priority\", \"ResourceARN\": \"*\", "
		"\"Priority\": 50, \"FixedRate\": 0.7, \"ReservoirSize\": 0, \"ServiceName\": \"*\", "
		"\"ServiceType\": \"AWS::ECS::Container\", \"Host\": \"*\", \"HTTPMethod\": \"*\", "
		"\"URLPath\": \"*\", \"Version\": 1}},"
		"{\"SamplingRule\": {\"RuleName\": \"arn-bound\", \"ResourceARN\": "
		"\"arn:aws:ecs:x\", \"Priority\": 1, \"FixedRate\": 1, \"ReservoirSize\": 0, "
		"\"ServiceName\": \"*\", \"ServiceType\": \"*\", \"Host\": \"*\", \"HTTPMethod\": "
		"\"*\", \"URLPath\": \"*\", \"Version\": 1}},"
		"{\"SamplingRule\": {\"RuleName\": \"attr-bound\", \"ResourceARN\": \"*\", "
		"\"Priority\": 2, \"FixedRate\": 1, \"ReservoirSize\": 0, \"ServiceName\": \"*\", "
		"\"ServiceType\": \"*\", \"Host\": \"*\", \"HTTPMethod\": \"*\", \"URLPath\": \"*\", "
		"\"Version\": 1, \"Attributes\": {\"k\": \"v\"}}}"
		"]}");
	struct crd_xray_request r;

	cr_assert_eq(rs.format, CRD_XRAY_RULES_CLI);
	cr_assert_eq(rs.n, 3, "Default becomes the default; ARN/attribute rules skipped");
	cr_assert_str_eq(rs.rules[0].name, "a-health");
	/* Same priority: ordered by name. */
	cr_assert_str_eq(rs.rules[1].name, "a-same-priority");
	cr_assert_str_eq(rs.rules[2].name, "b-low");
	cr_assert_eq(rs.def.fixed_target, 3);
	cr_assert_eq(rs.def.rate, 0.2);

	r = req("svc", "h", "GET", "/healthz");
	cr_assert_str_eq(crd_xray_match(&rs, &r)->name, "a-health");
	r = req("svc", "h", "POST", "/healthz");
	r.service_type = "AWS::EC2::Instance";
	cr_assert_str_eq(crd_xray_match(&rs, &r)->name, "b-low", "service type differs");
	r.service_type = "aws::ecs::container";
	cr_assert_str_eq(crd_xray_match(&rs, &r)->name, "a-same-priority");
	r.service_type = NULL; /* unknown origin: an implicit match, as in the SDKs */
	cr_assert_str_eq(crd_xray_match(&rs, &r)->name, "a-same-priority");
	crd_xray_rules_free(&rs);

	/* A bare list, and the inner object alone (--sampling-rule file://). */
	rs = parse_rules_ok("[{\"SamplingRule\": {\"RuleName\": \"x\", \"Priority\": 5, "
			    "\"FixedRate\": 1, \"ReservoirSize\": 2}}, {\"RuleName\": \"y\", "
			    "\"Priority\": 1, \"FixedRate\": 0, \"ReservoirSize\": 0}]");
	cr_assert_eq(rs.n, 2);
	cr_assert_str_eq(rs.rules[0].name, "y");
	cr_assert_null(rs.rules[0].path, "absent patterns match everything");
	crd_xray_rules_free(&rs);
	rs = parse_rules_ok("{\"RuleName\": \"only\", \"FixedRate\": 0.25, \"ReservoirSize\": 7, "
			    "\"URLPath\": \"/api/*\"}");
	cr_assert_eq(rs.n, 1);
	cr_assert_eq(rs.rules[0].fixed_target, 7);
	cr_assert_str_eq(rs.rules[0].path, "/api/*");
	crd_xray_rules_free(&rs);
}

Test(xray_rules, cli_format_errors)
{
	const char *why;

	why = parse_rules_bad("{\"SamplingRule\": {\"RuleName\": \"Cruddur\", \"FixedRate\": 1.1, "
			      "\"ReservoirSize\": 5}}");
	cr_assert(strstr(why, "Cruddur") && strstr(why, "FixedRate"), "%s", why);
	why = parse_rules_bad("{\"SamplingRule\": {\"RuleName\": \"Cruddur\", \"FixedRate\": 0.1}}");
	cr_assert(strstr(why, "ReservoirSize") && strstr(why, "missing"), "%s", why);
	parse_rules_bad("{\"SamplingRule\": {\"FixedRate\": 0.1, \"ReservoirSize\": -1}}");
	parse_rules_bad("{\"SamplingRule\": {\"FixedRate\": 0.1, \"ReservoirSize\": 2.5}}");
	why = parse_rules_bad("{\"SamplingRule\": {\"FixedRate\": 0.1, \"ReservoirSize\": 1, "
			      "\"Version\": 2}}");
	cr_assert(strstr(why, "Version"), "%s", why);
	parse_rules_bad("{\"SamplingRule\": {\"FixedRate\": 0.1, \"ReservoirSize\": 1, "
			"\"Priority\": 10001}}");
	parse_rules_bad("{\"SamplingRule\": {\"FixedRate\": 0.1, \"ReservoirSize\": 1, "
			"\"URLPath\": [\"/a\"]}}");
	parse_rules_bad("{\"SamplingRule\": \"x\"}");
	parse_rules_bad("{\"SamplingRuleRecords\": {}}");
	why = parse_rules_bad("{\"SamplingRuleRecords\": []}");
	cr_assert(strstr(why, "no sampling rule"), "%s", why);
	/* Truncated copy-paste of the CLI file. */
	why = parse_rules_bad("{\n  \"SamplingRule\": {\n      \"RuleName\": \"Cruddur\",\n");
	cr_assert(strstr(why, "not valid JSON") && strstr(why, "line 4"), "%s", why);
}

/* ---- loading a file: one message, then the default ---- */

static void load_cb(void *arg)
{
	struct crd_xray_rules *rs = arg;
	crd_xray_rules_load(write_tmp("{\"version\": 2, \"default\": {\"fixed_target\": 1}}"), rs);
}

Test(xray_rules, bad_file_gives_one_message_and_the_default)
{
	struct crd_xray_rules rs;
	const char *err = capture_stderr(load_cb, &rs);

	cr_assert_eq(count_lines(err), 1, "one line: [%s]", err);
	cr_assert(!strncmp(err, "cruddur: CRUDDUR_XRAY_SAMPLING_RULES=/tmp/crd-xray-rules-", 57),
		  "%s", err);
	cr_assert(strstr(err, "\"rate\" is missing"), "%s", err);
	cr_assert(strstr(err, "using the default rule"), "%s", err);
	cr_assert_eq(rs.n, 0);
	cr_assert_eq(rs.def.fixed_target, 1);
	cr_assert_eq(rs.def.rate, 0.05);
}

static void load_missing_cb(void *arg)
{
	cr_assert_eq(crd_xray_rules_load("/nonexistent/rules.json", arg), -ENOENT);
}

Test(xray_rules, missing_file_gives_one_message)
{
	struct crd_xray_rules rs;
	const char *err = capture_stderr(load_missing_cb, &rs);

	cr_assert_eq(count_lines(err), 1, "[%s]", err);
	cr_assert(strstr(err, "cannot open"), "%s", err);
	cr_assert_eq(rs.def.rate, 0.05);
}

static void load_good_cb(void *arg)
{
	cr_assert_eq(crd_xray_rules_load(write_tmp(cli_cruddur), arg), 0);
}

Test(xray_rules, good_file_is_silent)
{
	struct crd_xray_rules rs;
	const char *err = capture_stderr(load_good_cb, &rs);

	cr_assert_str_eq(err, "");
	cr_assert_eq(rs.n, 1);
	cr_assert_eq(rs.rules[0].fixed_target, 5);
	crd_xray_rules_free(&rs);
}

/* ---- matching ---- */

Test(xray_match, first_matching_rule_wins_and_fields_are_wildcards)
{
	struct crd_xray_rules rs = parse_rules_ok(
		"{\"version\": 2, \"default\": {\"fixed_target\": 1, \"rate\": 0.05}, \"rules\": ["
		"{\"host\": \"*\", \"http_method\": \"GET\", \"url_path\": \"/api/users/?\", "
		"\"fixed_target\": 1, \"rate\": 0},"
		"{\"host\": \"*.example.com*\", \"http_method\": \"*\", \"url_path\": \"/api/*\", "
		"\"fixed_target\": 2, \"rate\": 0},"
		"{\"host\": \"*\", \"http_method\": \"P*\", \"url_path\": \"*\", "
		"\"fixed_target\": 3, \"rate\": 0}]}");
	struct crd_xray_request r;

	r = req(NULL, "api.example.com:8080", "GET", "/api/users/7");
	cr_assert_eq(crd_xray_match(&rs, &r), &rs.rules[0]);
	r = req(NULL, "api.example.com:8080", "get", "/api/users/7");
	cr_assert_eq(crd_xray_match(&rs, &r), &rs.rules[0], "method case-insensitive");
	r = req(NULL, "api.example.com:8080", "GET", "/api/users/77");
	cr_assert_eq(crd_xray_match(&rs, &r), &rs.rules[1]);
	r = req(NULL, "localhost", "GET", "/api/users/77");
	cr_assert_eq(crd_xray_match(&rs, &r), &rs.def);
	r = req(NULL, "localhost", "PUT", "/x");
	cr_assert_eq(crd_xray_match(&rs, &r), &rs.rules[2]);
	r = req(NULL, "localhost", "DELETE", "/x");
	cr_assert_eq(crd_xray_match(&rs, &r), &rs.def);
	/* Missing request values match anything (SDK implicit match). */
	r = req(NULL, NULL, "DELETE", "/api/users/1");
	cr_assert_eq(crd_xray_match(&rs, &r), &rs.rules[1]);
	r = req(NULL, "", "DELETE", "/api/users/1");
	cr_assert_eq(crd_xray_match(&rs, &r), &rs.rules[1]);
	/* No request at all: the default rule. */
	cr_assert_eq(crd_xray_match(&rs, NULL), &rs.def);
	crd_xray_rules_free(&rs);
}

/* ---- the sampler: reservoir then rate, fake clock and random ---- */

/* The random word that makes the rate draw land exactly at fraction f. */
static uint64_t rnd_at(double f)
{
	return (uint64_t)ceil(f * 0x1p53) << 11;
}

Test(xray_sampler, reservoir_then_rate)
{
	/* RuleName Cruddur: ReservoirSize 5, FixedRate 0.1. */
	struct crd_xray_rule r = {.fixed_target = 5, .rate = 0.1};
	uint64_t never = rnd_at(0.9999), always = rnd_at(0.0);

	/* Second 1000: five from the reservoir whatever the draw... */
	for (int i = 0; i < 5; i++)
		cr_assert(crd_xray_rule_sample(&r, 1000, never), "reservoir slot %d", i);
	/* ...then the rate alone. */
	cr_assert(!crd_xray_rule_sample(&r, 1000, never));
	cr_assert(!crd_xray_rule_sample(&r, 1000, rnd_at(0.1)), "boundary: draw == rate is out");
	cr_assert(crd_xray_rule_sample(&r, 1000, rnd_at(0.0999)));
	cr_assert(crd_xray_rule_sample(&r, 1000, always));
	/* The next second refills the reservoir. */
	for (int i = 0; i < 5; i++)
		cr_assert(crd_xray_rule_sample(&r, 1001, never));
	cr_assert(!crd_xray_rule_sample(&r, 1001, never));
	/* Going back in time (clock step) is just another second. */
	cr_assert(crd_xray_rule_sample(&r, 999, never));
}

Test(xray_sampler, default_rule_is_one_per_second_then_five_percent)
{
	struct crd_xray_rules rs;
	uint64_t x = 88172645463325252ull;
	int taken = 0, n = 200000;

	crd_xray_rules_default(&rs);
	cr_assert(crd_xray_rule_sample(&rs.def, 5, ~0ull), "first of the second");
	cr_assert(!crd_xray_rule_sample(&rs.def, 5, ~0ull));
	cr_assert(!crd_xray_rule_sample(&rs.def, 5, rnd_at(0.05)));
	cr_assert(crd_xray_rule_sample(&rs.def, 5, rnd_at(0.0499)));
	/* Many requests in one second: 5% of the rest, from a known
	 * generator (xorshift64). */
	for (int i = 0; i < n; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		taken += crd_xray_rule_sample(&rs.def, 5, x);
	}
	cr_assert(taken > n * 0.045 && taken < n * 0.055, "%d of %d", taken, n);
}

Test(xray_sampler, zero_rule_samples_nothing)
{
	struct crd_xray_rule r = {.fixed_target = 0, .rate = 0};

	for (uint64_t t = 0; t < 3; t++)
		for (int i = 0; i < 10; i++)
			cr_assert(!crd_xray_rule_sample(&r, t, 0));
	struct crd_xray_rule all = {.fixed_target = 0, .rate = 1.0};
	cr_assert(crd_xray_rule_sample(&all, 1, ~0ull), "rate 1 takes even the largest draw");
}

struct race {
	struct crd_xray_rule *r;
	int taken;
};

static void *race_thread(void *arg)
{
	struct race *rc = arg;
	for (int i = 0; i < 10000; i++)
		rc->taken += crd_xray_rule_sample(rc->r, 42, ~0ull);
	return NULL;
}

Test(xray_sampler, reservoir_is_exact_under_contention)
{
	struct crd_xray_rule r = {.fixed_target = 100, .rate = 0};
	struct race rc[8];
	pthread_t th[8];
	int total = 0;

	for (int i = 0; i < 8; i++) {
		rc[i] = (struct race){&r, 0};
		pthread_create(&th[i], NULL, race_thread, &rc[i]);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		total += rc[i].taken;
	}
	cr_assert_eq(total, 100);
}

Test(xray_sampler, hook_entry_point)
{
	struct crd_http_req hr = {0};

	crd_xray_cfg.name = "svc";
	crd_xray_cfg.rules = parse_rules_ok(
		"{\"version\": 2, \"default\": {\"fixed_target\": 0, \"rate\": 0}, \"rules\": ["
		"{\"host\": \"*\", \"http_method\": \"GET\", \"url_path\": \"/api/*\", "
		"\"fixed_target\": 0, \"rate\": 1}]}");
	/* An incoming decision wins over the rules either way. */
	cr_assert_eq(crd_xray_sample(1, NULL), 1);
	cr_assert_eq(crd_xray_sample(0, &hr), 0);
	strcpy(hr.method, "GET");
	strcpy(hr.host, "h:1");
	strcpy(hr.target, "/api/x?debug=1");
	cr_assert_eq(crd_xray_sample(-1, &hr), 1);
	cr_assert_eq(crd_xray_sample(0, &hr), 0, "Sampled=0 wins over a 100% rule");
	strcpy(hr.target, "/other?/api/");
	cr_assert_eq(crd_xray_sample(-1, &hr), 0, "the query is not the path");
	cr_assert_eq(crd_xray_sample(1, &hr), 1, "Sampled=1 wins over a 0% rule");
	strcpy(hr.target, "http://proxy.example/api/y");
	cr_assert_eq(crd_xray_sample(-1, &hr), 1, "absolute-form target: the path");
	strcpy(hr.method, "POST");
	cr_assert_eq(crd_xray_sample(-1, &hr), 0);
	cr_assert_eq(crd_xray_sample(-1, NULL), 0, "no request: the default rule");
}

/* ---- naming and ids ---- */

Test(xray_naming, dynamic_naming_and_fallback)
{
	crd_xray_cfg.name = "backend-flask";
	crd_xray_cfg.naming = NULL;
	cr_assert_str_eq(crd_xray_segment_name("api.example.com"), "backend-flask");
	crd_xray_cfg.naming = "*.example.com";
	cr_assert_str_eq(crd_xray_segment_name("api.example.com"), "api.example.com");
	cr_assert_str_eq(crd_xray_segment_name("API.Example.com"), "API.Example.com");
	cr_assert_str_eq(crd_xray_segment_name("example.org"), "backend-flask");
	cr_assert_str_eq(crd_xray_segment_name(""), "backend-flask");
	cr_assert_str_eq(crd_xray_segment_name(NULL), "backend-flask");
}

Test(xray_naming, sanitize)
{
	char out[CRD_XRAY_NAME_MAX * 4 + 1], in[400];
	size_t n;

	n = crd_xray_sanitize_name(out, sizeof(out), "my svc_1.a:b/c%d&e#f=g+h\\i-j@k", 30);
	cr_assert_str_eq(out, "my svc_1.a:b/c%d&e#f=g+h\\i-j@k");
	cr_assert_eq(n, 30);
	crd_xray_sanitize_name(out, sizeof(out), "a<b>c\"d'e*f?g!h(i)j;k,l\n\tm$\0z", 30);
	cr_assert_str_eq(out, "abcdefghijklmz");
	/* Unicode letters stay, broken UTF-8 goes. */
	crd_xray_sanitize_name(out, sizeof(out), "caf\xc3\xa9-\xe6\x97\xa5\xff", 11);
	cr_assert_str_eq(out, "caf\xc3\xa9-\xe6\x97\xa5");
	/* At most 200 characters (not bytes). */
	memset(in, 'x', sizeof(in));
	n = crd_xray_sanitize_name(out, sizeof(out), in, sizeof(in));
	cr_assert_eq(n, CRD_XRAY_NAME_MAX);
	for (int i = 0; i < 150; i++)
		memcpy(in + 2 * i, "\xc3\xa9", 2);
	n = crd_xray_sanitize_name(out, sizeof(out), in, 300);
	cr_assert_eq(n, 300, "150 two-byte characters");
	n = crd_xray_sanitize_name(out, 10, in, 300);
	cr_assert_eq(n, 8, "whole characters within the buffer");
	cr_assert_eq(crd_xray_sanitize_name(out, sizeof(out), "<>", 2), 0);
}

Test(xray_naming, trace_id_conversion)
{
	uint8_t id[16] = {0x65, 0x53, 0xf1, 0x00, 0x01, 0x23, 0x45, 0x67,
			  0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98};
	char out[36];

	crd_xray_trace_id(out, id);
	cr_assert_str_eq(out, "1-6553f100-0123456789abcdeffedcba98");
}

/* ---- configuration (each test is its own process) ---- */

static void clear_env(void)
{
	static const char *const names[] = {
		"AWS_XRAY_DAEMON_ADDRESS",     "AWS_XRAY_SDK_DISABLED", "AWS_XRAY_TRACING_NAME",
		"CRUDDUR_XRAY_NAMING",         "CRUDDUR_XRAY_SAMPLING_RULES", "OTEL_TRACES_SAMPLER",
		"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_TRACES_EXPORTER",  "CRUDDUR_FILE",
		"OTEL_SERVICE_NAME",           "OTEL_SDK_DISABLED",     "CRUDDUR_DISABLED"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		unsetenv(names[i]);
}

/* The library's constructor already ran crd_config_load() (once per
 * process) when the test binary started; the X-Ray part is re-run here
 * with the test's environment, as crd_config_load() would call it. */
static void config_load_cb(void *arg)
{
	(void)arg;
	memset(&crd_xray_cfg, 0, sizeof(crd_xray_cfg));
	crd_cfg.xray_propagate = 1; /* what config.c sets from the address alone */
	crd_cfg.file_enabled = crd_cfg.file_default = 1;
	/* the constructor's copy, replaced below (make test-asan checks leaks) */
	static int own_name = 1;
	if (own_name)
		free(crd_cfg.service_name);
	own_name = 0;
	crd_cfg.service_name = getenv("OTEL_SERVICE_NAME") ? getenv("OTEL_SERVICE_NAME") : "unknown_service:test";
	crd_xray_config_load();
}

Test(xray_config, enabled_by_the_daemon_address)
{
	clear_env();
	setenv("AWS_XRAY_DAEMON_ADDRESS", "xray-daemon:2000", 1);
	setenv("OTEL_SERVICE_NAME", "backend-flask", 1);
	const char *err = capture_stderr(config_load_cb, NULL);
	cr_assert_str_eq(err, "");
	cr_assert(crd_xray_cfg.enabled);
	cr_assert(crd_cfg.xray_propagate);
	cr_assert(crd_xray_cfg.root_sampler, "no OTEL_TRACES_SAMPLER: the rules decide");
	cr_assert_str_eq(crd_xray_cfg.udp_host, "xray-daemon");
	cr_assert_eq(crd_xray_cfg.udp_port, 2000);
	cr_assert_str_eq(crd_xray_cfg.name, "backend-flask");
	cr_assert_eq(crd_xray_cfg.rules.format, CRD_XRAY_RULES_BUILTIN);
	cr_assert_eq(crd_xray_cfg.rules.def.rate, 0.05);
	cr_assert(!crd_cfg.file_enabled, "X-Ray replaces the embedded default file");
}

Test(xray_config, tracing_name_and_rules_file)
{
	clear_env();
	setenv("AWS_XRAY_DAEMON_ADDRESS", "tcp:127.0.0.1:2000 udp:127.0.0.1:2001", 1);
	setenv("OTEL_SERVICE_NAME", "ignored-for-the-name", 1);
	setenv("AWS_XRAY_TRACING_NAME", "Cruddur <Backend>", 1);
	setenv("CRUDDUR_XRAY_NAMING", "*.cruddur.com", 1);
	setenv("CRUDDUR_XRAY_SAMPLING_RULES", write_tmp(cli_cruddur), 1);
	const char *err = capture_stderr(config_load_cb, NULL);
	cr_assert_str_eq(err, "");
	cr_assert_str_eq(crd_xray_cfg.name, "Cruddur Backend");
	cr_assert_str_eq(crd_xray_cfg.naming, "*.cruddur.com");
	cr_assert_eq(crd_xray_cfg.udp_port, 2001);
	cr_assert_eq(crd_xray_cfg.tcp_port, 2000);
	cr_assert_eq(crd_xray_cfg.rules.format, CRD_XRAY_RULES_CLI);
	cr_assert_eq(crd_xray_cfg.rules.rules[0].fixed_target, 5);
}

Test(xray_config, sdk_disabled)
{
	clear_env();
	setenv("AWS_XRAY_DAEMON_ADDRESS", "127.0.0.1:2000", 1);
	setenv("AWS_XRAY_SDK_DISABLED", "TRUE", 1);
	const char *err = capture_stderr(config_load_cb, NULL);
	cr_assert_str_eq(err, "");
	cr_assert(!crd_xray_cfg.enabled);
	cr_assert(!crd_cfg.xray_propagate);
	cr_assert(!crd_xray_cfg.root_sampler);
}

Test(xray_config, bad_address_disables_with_one_message)
{
	clear_env();
	setenv("AWS_XRAY_DAEMON_ADDRESS", "localhost", 1);
	const char *err = capture_stderr(config_load_cb, NULL);
	cr_assert_eq(count_lines(err), 1, "[%s]", err);
	cr_assert(strstr(err, "cruddur: AWS_XRAY_DAEMON_ADDRESS=localhost:"), "%s", err);
	cr_assert(strstr(err, "X-Ray export disabled"), "%s", err);
	cr_assert(!crd_xray_cfg.enabled);
	cr_assert(!crd_cfg.xray_propagate);
	cr_assert(!crd_xray_cfg.root_sampler);
}

Test(xray_config, otel_sampler_governs)
{
	clear_env();
	setenv("AWS_XRAY_DAEMON_ADDRESS", "127.0.0.1:2000", 1);
	setenv("OTEL_TRACES_SAMPLER", "always_on", 1);
	setenv("CRUDDUR_XRAY_SAMPLING_RULES", "/nonexistent.json", 1);
	const char *err = capture_stderr(config_load_cb, NULL);
	cr_assert_eq(count_lines(err), 1, "[%s]", err);
	cr_assert(strstr(err, "CRUDDUR_XRAY_SAMPLING_RULES=/nonexistent.json ignored: "
			      "OTEL_TRACES_SAMPLER=always_on"),
		  "%s", err);
	cr_assert(crd_xray_cfg.enabled);
	cr_assert(!crd_xray_cfg.root_sampler);
}

Test(xray_config, bad_rules_file_through_the_config)
{
	clear_env();
	setenv("AWS_XRAY_DAEMON_ADDRESS", "127.0.0.1:2000", 1);
	setenv("CRUDDUR_XRAY_SAMPLING_RULES", write_tmp("{\"SamplingRule\": {\"RuleName\": 1}}"), 1);
	const char *err = capture_stderr(config_load_cb, NULL);
	cr_assert_eq(count_lines(err), 1, "[%s]", err);
	cr_assert(strstr(err, "cruddur: CRUDDUR_XRAY_SAMPLING_RULES="), "%s", err);
	cr_assert(crd_xray_cfg.enabled, "a bad rules file does not disable X-Ray");
	cr_assert(crd_xray_cfg.root_sampler);
	cr_assert_eq(crd_xray_cfg.rules.n, 0);
	cr_assert_eq(crd_xray_cfg.rules.def.fixed_target, 1);
}

Test(xray_config, off_without_the_address)
{
	clear_env();
	setenv("CRUDDUR_XRAY_SAMPLING_RULES", "/nonexistent.json", 1);
	const char *err = capture_stderr(config_load_cb, NULL);
	cr_assert_str_eq(err, "", "the rules file is not even read");
	cr_assert(!crd_xray_cfg.enabled);
	cr_assert(!crd_cfg.xray_propagate);
	cr_assert(!crd_xray_cfg.root_sampler);
}

/* ---- documents ---- */

#define MAX_DGRAMS 1024

static struct {
	char *d[MAX_DGRAMS];
	size_t len[MAX_DGRAMS];
	size_t n;
} got;

static int collect(void *arg, const char *d, size_t n)
{
	(void)arg;
	cr_assert(got.n < MAX_DGRAMS);
	got.d[got.n] = malloc(n + 1);
	memcpy(got.d[got.n], d, n);
	got.d[got.n][n] = 0;
	got.len[got.n++] = n;
	return 0;
}

static const char header[] = "{\"format\": \"json\", \"version\": 1}\n";

/* The document of datagram i, parsed (after checking the header). */
static cJSON *doc(size_t i)
{
	cr_assert(i < got.n);
	cr_assert_eq(strncmp(got.d[i], header, sizeof(header) - 1), 0, "header of datagram %zu",
		     i);
	cr_assert(got.len[i] <= CRD_XRAY_UDP_MAX, "datagram %zu: %zu bytes", i, got.len[i]);
	cJSON *j = cJSON_Parse(got.d[i] + sizeof(header) - 1);
	cr_assert_not_null(j, "datagram %zu is not JSON: %.300s", i, got.d[i]);
	return j;
}

static const char *jstr(const cJSON *o, const char *path)
{
	char buf[128], *save = NULL, *k;
	const cJSON *v = o;

	snprintf(buf, sizeof(buf), "%s", path);
	for (k = strtok_r(buf, ".", &save); k && v; k = strtok_r(NULL, ".", &save))
		v = cJSON_GetObjectItemCaseSensitive(v, k);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const cJSON *jget(const cJSON *o, const char *path)
{
	char buf[128], *save = NULL, *k;
	const cJSON *v = o;

	snprintf(buf, sizeof(buf), "%s", path);
	for (k = strtok_r(buf, ".", &save); k && v; k = strtok_r(NULL, ".", &save))
		v = cJSON_GetObjectItemCaseSensitive(v, k);
	return v;
}

static double jnum(const cJSON *o, const char *path)
{
	const cJSON *v = jget(o, path);
	cr_assert(cJSON_IsNumber(v), "%s is not a number", path);
	return v->valuedouble;
}

static int jtrue(const cJSON *o, const char *path)
{
	return cJSON_IsTrue(jget(o, path));
}

/* The raw text of a member's value (to check number formatting). */
static const char *raw_after(const char *d, const char *key, char *out, size_t cap)
{
	const char *p = strstr(d, key);
	size_t n;

	cr_assert_not_null(p, "%s not in %.200s", key, d);
	p += strlen(key);
	n = strcspn(p, ",}");
	snprintf(out, cap, "%.*s", (int)n, p);
	return out;
}

#define T0 1700000000123456789ull

static void mk_span(struct crd_span *s, int kind, uint8_t idbyte, const uint8_t *parent)
{
	static const uint8_t tid[16] = {0x65, 0x53, 0xf1, 0x00, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};

	memset(s, 0, sizeof(*s));
	memcpy(s->trace_id, tid, 16);
	memset(s->span_id, idbyte, 8);
	if (parent)
		memcpy(s->parent_span_id, parent, 8);
	s->kind = (uint8_t)kind;
	s->sampled = 1;
	s->start_ns = T0;
	s->end_ns = T0 + 2500000; /* 2.5 ms */
	s->resp_content_length = -1;
	s->req.content_length = -1;
	s->req.version_minor = 1;
	s->peer.family = AF_INET;
	s->peer.port = 50000;
	inet_pton(AF_INET, "10.1.2.3", s->peer.addr);
	s->local.family = AF_INET;
	s->local.port = 8080;
	inet_pton(AF_INET, "10.9.9.9", s->local.addr);
	strcpy(s->req.method, "GET");
}

struct tbatch {
	struct crd_span spans[512];
	struct crd_span_view views[512];
	const struct crd_span *sp[512];
	const struct crd_span_view *vp[512];
	struct crd_attr res[4];
	struct crd_attr_list rl;
	struct crd_batch b;
};

static void finish(struct tbatch *t, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		crd_span_view(&t->spans[i], &t->views[i]);
		t->sp[i] = &t->spans[i];
		t->vp[i] = &t->views[i];
	}
	t->res[0] = (struct crd_attr){.key = "service.name", .type = CRD_ATTR_STR, .s = "backend-flask",
				      .len = 13};
	t->res[1] = (struct crd_attr){.key = "process.pid", .type = CRD_ATTR_INT, .i = 4242};
	t->res[2] = (struct crd_attr){.key = "service.version", .type = CRD_ATTR_STR, .s = "1.2.3",
				      .len = 5};
	t->res[3] = (struct crd_attr){.key = "host.name", .type = CRD_ATTR_STR, .s = "box", .len = 3};
	t->rl = (struct crd_attr_list){t->res, 4};
	t->b = (struct crd_batch){.resource = &t->rl, .spans = t->sp, .views = t->vp, .n = n};
}

static void reset_got(void)
{
	for (size_t i = 0; i < got.n; i++)
		free(got.d[i]);
	got.n = 0;
}

static struct tbatch tb;

Test(xray_doc, segment_fields)
{
	struct crd_xray_enc e;
	uint8_t remote_parent[8] = {0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x00, 0x11};
	char raw[64];

	crd_xray_cfg.name = "backend-flask";
	crd_xray_cfg.naming = NULL;
	crd_xray_cfg.origin = "AWS::ECS::Container";
	/* 0: a continued server span with every field. */
	mk_span(&tb.spans[0], CRD_KIND_SERVER, 0x11, remote_parent);
	tb.spans[0].parent_remote = 1;
	strcpy(tb.spans[0].req.target, "/api/activities/home?token=secret&x=1");
	strcpy(tb.spans[0].req.host, "localhost:4567");
	strcpy(tb.spans[0].req.user_agent, "curl/7.88.1");
	strcpy(tb.spans[0].req.xff, "203.0.113.7");
	tb.spans[0].status = 200;
	tb.spans[0].resp_content_length = 6;
	/* 1: its client call, 200. */
	mk_span(&tb.spans[1], CRD_KIND_CLIENT, 0x21, tb.spans[0].span_id);
	strcpy(tb.spans[1].req.target, "http://user:pw@downstream:9000/v1/x?api_key=k&y=2");
	strcpy(tb.spans[1].req.host, "downstream:9000");
	tb.spans[1].status = 200;
	tb.spans[1].resp_content_length = 12;
	tb.spans[1].start_ns = T0 + 1000;
	tb.spans[1].end_ns = T0 + 2000000;
	/* 2: its failed client call (transport failure). */
	mk_span(&tb.spans[2], CRD_KIND_CLIENT, 0x22, tb.spans[0].span_id);
	strcpy(tb.spans[2].req.target, "http://127.0.0.1:1/unreachable");
	strcpy(tb.spans[2].req.host, "127.0.0.1:1");
	strcpy(tb.spans[2].error_type, "CURLE_COULDNT_CONNECT");
	/* 3: a 404 root server span, no Host header, no user agent. */
	mk_span(&tb.spans[3], CRD_KIND_SERVER, 0x33, NULL);
	strcpy(tb.spans[3].req.target, "/missing");
	tb.spans[3].status = 404;
	tb.spans[3].resp_body_size = 9; /* chunked: no Content-Length */
	/* 4: 429, 5: 503. */
	mk_span(&tb.spans[4], CRD_KIND_SERVER, 0x44, NULL);
	strcpy(tb.spans[4].req.target, "/limited");
	tb.spans[4].status = 429;
	mk_span(&tb.spans[5], CRD_KIND_SERVER, 0x55, NULL);
	strcpy(tb.spans[5].req.target, "/boom");
	tb.spans[5].status = 503;
	/* 6: a client span whose segment went in an earlier batch. */
	uint8_t earlier[8] = {9, 9, 9, 9, 9, 9, 9, 9};
	mk_span(&tb.spans[6], CRD_KIND_CLIENT, 0x66, earlier);
	strcpy(tb.spans[6].req.target, "http://db:5432/q");
	strcpy(tb.spans[6].req.host, "db:5432");
	tb.spans[6].status = 500;
	/* 7: a client call outside any request: not sent. */
	mk_span(&tb.spans[7], CRD_KIND_CLIENT, 0x77, NULL);
	strcpy(tb.spans[7].req.target, "http://x/");
	finish(&tb, 8);

	cr_assert_eq(crd_xray_enc_init(&e, collect, NULL), 0);
	reset_got();
	cr_assert_eq(crd_xray_encode(&e, &tb.b), 0);
	cr_assert_eq(got.n, 5, "4 segments + 1 independent subsegment, got %zu", got.n);
	cr_assert_eq(e.segments, 4);
	cr_assert_eq(e.inline_subsegments, 2);
	cr_assert_eq(e.independent, 1);
	cr_assert_eq(e.skipped, 1);

	/* Segment 0. */
	cJSON *j = doc(0);
	cr_assert_str_eq(jstr(j, "name"), "backend-flask");
	cr_assert_str_eq(jstr(j, "id"), "1111111111111111");
	cr_assert_str_eq(jstr(j, "trace_id"), "1-6553f100-0102030405060708090a0b0c");
	cr_assert_str_eq(jstr(j, "parent_id"), "aabbccddeeff0011");
	cr_assert_str_eq(raw_after(got.d[0], "\"start_time\":", raw, sizeof(raw)),
			 "1700000000.123456");
	cr_assert_str_eq(raw_after(got.d[0], "\"end_time\":", raw, sizeof(raw)), "1700000000.125956");
	cr_assert_null(jget(j, "type"), "a segment has no type");
	cr_assert_null(jget(j, "in_progress"));
	cr_assert_str_eq(jstr(j, "origin"), "AWS::ECS::Container");
	cr_assert_str_eq(jstr(j, "http.request.method"), "GET");
	cr_assert_str_eq(jstr(j, "http.request.url"),
			 "http://localhost:4567/api/activities/home?token=REDACTED&x=1");
	cr_assert_str_eq(jstr(j, "http.request.user_agent"), "curl/7.88.1");
	cr_assert_str_eq(jstr(j, "http.request.client_ip"), "203.0.113.7");
	cr_assert(jtrue(j, "http.request.x_forwarded_for"));
	cr_assert_eq(jnum(j, "http.response.status"), 200);
	cr_assert_eq(jnum(j, "http.response.content_length"), 6);
	cr_assert_null(jget(j, "error"));
	cr_assert_null(jget(j, "throttle"));
	cr_assert_null(jget(j, "fault"));
	cr_assert_str_eq(jstr(j, "aws.xray.sdk"), "cruddur");
	cr_assert_not_null(jstr(j, "aws.xray.sdk_version"));
	cr_assert_str_eq(jstr(j, "service.version"), "1.2.3");
	cr_assert_str_eq(jstr(j, "annotations.service"), "backend-flask");
	cr_assert_eq(jnum(j, "annotations.pid"), 4242);
	const cJSON *res = jget(j, "metadata.otel.resource");
	cr_assert_str_eq(cJSON_GetObjectItem(res, "host.name")->valuestring, "box");
	cr_assert_eq(cJSON_GetObjectItem(res, "process.pid")->valuedouble, 4242);
	/* Its two subsegments. */
	const cJSON *subs = jget(j, "subsegments");
	cr_assert(cJSON_IsArray(subs));
	cr_assert_eq(cJSON_GetArraySize(subs), 2);
	const cJSON *s1 = cJSON_GetArrayItem(subs, 0), *s2 = cJSON_GetArrayItem(subs, 1);
	cr_assert_str_eq(jstr(s1, "name"), "downstream");
	cr_assert_str_eq(jstr(s1, "id"), "2121212121212121");
	cr_assert_str_eq(jstr(s1, "namespace"), "remote");
	cr_assert_null(jget(s1, "trace_id"), "inline subsegments carry no trace id");
	cr_assert_null(jget(s1, "type"));
	cr_assert_null(jget(s1, "parent_id"));
	cr_assert_str_eq(jstr(s1, "http.request.method"), "GET");
	cr_assert_str_eq(jstr(s1, "http.request.url"),
			 "http://REDACTED:REDACTED@downstream:9000/v1/x?api_key=REDACTED&y=2");
	cr_assert_eq(jnum(s1, "http.response.status"), 200);
	cr_assert_eq(jnum(s1, "http.response.content_length"), 12);
	cr_assert_eq(jnum(s1, "start_time"), 1700000000.123457);
	cr_assert_null(jget(s1, "fault"));
	cr_assert_null(jget(s1, "error"));
	cr_assert_str_eq(jstr(s2, "name"), "127.0.0.1");
	cr_assert(jtrue(s2, "fault"), "transport failure is a fault");
	cr_assert_null(jget(s2, "http.response"));
	const cJSON *ex = cJSON_GetArrayItem(jget(s2, "cause.exceptions"), 0);
	cr_assert_not_null(ex);
	cr_assert_str_eq(jstr(ex, "type"), "CURLE_COULDNT_CONNECT");
	cr_assert_str_eq(jstr(ex, "message"), "CURLE_COULDNT_CONNECT");
	cr_assert_eq(strlen(jstr(ex, "id")), 16);
	cr_assert(jtrue(ex, "remote"));
	cJSON_Delete(j);

	/* Segment of the 404: root, no Host (the socket address), no UA. */
	j = doc(1);
	cr_assert_str_eq(jstr(j, "id"), "3333333333333333");
	cr_assert_null(jget(j, "parent_id"));
	cr_assert_str_eq(jstr(j, "http.request.url"), "http://10.9.9.9:8080/missing");
	cr_assert_null(jget(j, "http.request.user_agent"));
	cr_assert_str_eq(jstr(j, "http.request.client_ip"), "10.1.2.3");
	cr_assert_null(jget(j, "http.request.x_forwarded_for"));
	cr_assert_eq(jnum(j, "http.response.status"), 404);
	cr_assert_eq(jnum(j, "http.response.content_length"), 9);
	cr_assert(jtrue(j, "error"));
	cr_assert_null(jget(j, "throttle"));
	cr_assert_null(jget(j, "fault"));
	cr_assert_null(jget(j, "subsegments"));
	cJSON_Delete(j);
	j = doc(2);
	cr_assert_eq(jnum(j, "http.response.status"), 429);
	cr_assert(jtrue(j, "error"));
	cr_assert(jtrue(j, "throttle"));
	cr_assert_null(jget(j, "fault"));
	cJSON_Delete(j);
	j = doc(3);
	cr_assert_eq(jnum(j, "http.response.status"), 503);
	cr_assert(jtrue(j, "fault"));
	cr_assert_null(jget(j, "error"));
	cr_assert_null(jget(j, "throttle"));
	cJSON_Delete(j);

	/* The independent subsegment. */
	j = doc(4);
	cr_assert_str_eq(jstr(j, "type"), "subsegment");
	cr_assert_str_eq(jstr(j, "id"), "6666666666666666");
	cr_assert_str_eq(jstr(j, "trace_id"), "1-6553f100-0102030405060708090a0b0c");
	cr_assert_str_eq(jstr(j, "parent_id"), "0909090909090909");
	cr_assert_str_eq(jstr(j, "name"), "db");
	cr_assert_str_eq(jstr(j, "namespace"), "remote");
	cr_assert(jtrue(j, "fault"));
	cr_assert_null(jget(j, "cause"), "an answered 500 has no exception");
	cJSON_Delete(j);
	reset_got();
	crd_xray_enc_destroy(&e);
}

Test(xray_doc, dynamic_name_and_sanitizing)
{
	struct crd_xray_enc e;

	crd_xray_cfg.name = "fallback";
	crd_xray_cfg.naming = "*.cruddur.com*";
	crd_xray_cfg.origin = NULL;
	mk_span(&tb.spans[0], CRD_KIND_SERVER, 1, NULL);
	strcpy(tb.spans[0].req.host, "api.cruddur.com:443");
	tb.spans[0].status = 200;
	mk_span(&tb.spans[1], CRD_KIND_SERVER, 2, NULL);
	strcpy(tb.spans[1].req.host, "evil<script>.cruddur.com");
	tb.spans[1].status = 200;
	mk_span(&tb.spans[2], CRD_KIND_SERVER, 3, NULL);
	strcpy(tb.spans[2].req.host, "other.org");
	tb.spans[2].status = 200;
	finish(&tb, 3);
	cr_assert_eq(crd_xray_enc_init(&e, collect, NULL), 0);
	reset_got();
	crd_xray_encode(&e, &tb.b);
	cr_assert_eq(got.n, 3);
	cJSON *j = doc(0);
	cr_assert_str_eq(jstr(j, "name"), "api.cruddur.com:443");
	cr_assert_null(jget(j, "origin"), "no origin detected: none sent");
	cJSON_Delete(j);
	j = doc(1);
	cr_assert_str_eq(jstr(j, "name"), "evilscript.cruddur.com");
	cJSON_Delete(j);
	j = doc(2);
	cr_assert_str_eq(jstr(j, "name"), "fallback");
	cJSON_Delete(j);
	reset_got();
	crd_xray_enc_destroy(&e);
}

Test(xray_doc, split_at_64k)
{
	struct crd_xray_enc e;
	size_t nclients = 400, inline_total = 0, indep = 0;
	int *seen = calloc(nclients, sizeof(int));

	crd_xray_cfg.name = "svc";
	crd_xray_cfg.naming = NULL;
	mk_span(&tb.spans[0], CRD_KIND_SERVER, 0xab, NULL);
	strcpy(tb.spans[0].req.target, "/fanout");
	tb.spans[0].status = 200;
	for (size_t i = 1; i <= nclients; i++) {
		struct crd_span *c = &tb.spans[i];
		mk_span(c, CRD_KIND_CLIENT, 0, tb.spans[0].span_id);
		memcpy(c->span_id, &i, sizeof(i) < 8 ? sizeof(i) : 8);
		c->span_id[7] = 0xcc;
		int n = snprintf(c->req.target, sizeof(c->req.target), "http://backend-%zu:80/item/%zu?",
				 i, i);
		memset(c->req.target + n, 'q', 400);
		c->req.target[n + 400] = 0;
		snprintf(c->req.host, sizeof(c->req.host), "backend-%zu:80", i);
		c->status = 200;
	}
	finish(&tb, nclients + 1);
	cr_assert_eq(crd_xray_enc_init(&e, collect, NULL), 0);
	reset_got();
	cr_assert_eq(crd_xray_encode(&e, &tb.b), 0);
	cr_assert(got.n > 1, "~200 KB of subsegments must be split");
	cr_assert_eq(e.segments, 1);
	cr_assert_eq(e.inline_subsegments + e.independent, nclients);
	for (size_t k = 0; k < got.n; k++) {
		cJSON *j = doc(k); /* checks the header and the size limit */
		const cJSON *subs = jget(j, "subsegments");
		if (jstr(j, "type")) {
			/* An independent subsegment of the segment. */
			cr_assert_str_eq(jstr(j, "type"), "subsegment");
			cr_assert_str_eq(jstr(j, "parent_id"), "abababababababab");
			cr_assert_str_eq(jstr(j, "trace_id"), "1-6553f100-0102030405060708090a0b0c");
			cr_assert_str_eq(jstr(j, "namespace"), "remote");
			size_t idx = 0;
			cr_assert_eq(sscanf(jstr(j, "name"), "backend-%zu", &idx), 1);
			seen[idx - 1]++;
			indep++;
		} else {
			cr_assert_str_eq(jstr(j, "id"), "abababababababab");
			cr_assert(cJSON_IsArray(subs));
			for (int s = 0; s < cJSON_GetArraySize(subs); s++) {
				size_t idx = 0;
				cr_assert_eq(sscanf(jstr(cJSON_GetArrayItem(subs, s), "name"),
						    "backend-%zu", &idx),
					     1);
				seen[idx - 1]++;
				inline_total++;
			}
			/* Filled: the next subsegment would not have fit. */
			cr_assert(got.len[k] > CRD_XRAY_UDP_MAX - 700, "segment of %zu bytes",
				  got.len[k]);
		}
		cJSON_Delete(j);
	}
	for (size_t i = 0; i < nclients; i++)
		cr_assert_eq(seen[i], 1, "client %zu seen %d times", i + 1, seen[i]);
	cr_assert_eq(inline_total, e.inline_subsegments);
	cr_assert_eq(indep, e.independent);
	cr_assert(inline_total > 50 && indep > 50, "%zu inline, %zu alone", inline_total, indep);
	reset_got();
	free(seen);
	crd_xray_enc_destroy(&e);
}

Test(xray_doc, small_limit_still_sends_everything)
{
	/* With a tiny limit every subsegment goes alone; nothing is lost. */
	struct crd_xray_enc e;

	crd_xray_cfg.name = "svc";
	mk_span(&tb.spans[0], CRD_KIND_SERVER, 1, NULL);
	tb.spans[0].status = 200;
	for (int i = 1; i <= 3; i++) {
		mk_span(&tb.spans[i], CRD_KIND_CLIENT, (uint8_t)(0x10 + i), tb.spans[0].span_id);
		strcpy(tb.spans[i].req.target, "http://d/x");
		strcpy(tb.spans[i].req.host, "d");
	}
	finish(&tb, 4);
	cr_assert_eq(crd_xray_enc_init(&e, collect, NULL), 0);
	e.max = 1200;
	reset_got();
	crd_xray_encode(&e, &tb.b);
	cr_assert_eq(e.independent + e.inline_subsegments, 3);
	cr_assert(e.independent >= 1);
	for (size_t k = 0; k < got.n; k++) {
		cr_assert(got.len[k] <= 1200);
		cJSON_Delete(doc(k));
	}
	reset_got();
	crd_xray_enc_destroy(&e);
}

Test(xray_doc, limit_is_exact_at_every_size)
{
	/* Sweep the limit byte by byte across every boundary: no datagram is
	 * ever a byte over it, and each subsegment is sent exactly once. */
	struct crd_xray_enc e;
	size_t base;

	crd_xray_cfg.name = "svc";
	crd_xray_cfg.naming = NULL;
	mk_span(&tb.spans[0], CRD_KIND_SERVER, 1, NULL);
	tb.spans[0].status = 200;
	for (int i = 1; i <= 3; i++) {
		mk_span(&tb.spans[i], CRD_KIND_CLIENT, (uint8_t)(0x10 + i), tb.spans[0].span_id);
		snprintf(tb.spans[i].req.target, 64, "http://d%d/%.*s", i, i * 7, "xxxxxxxxxxxxxxxxxxxxx");
		snprintf(tb.spans[i].req.host, 8, "d%d", i);
	}
	finish(&tb, 1);
	cr_assert_eq(crd_xray_enc_init(&e, collect, NULL), 0);
	reset_got();
	crd_xray_encode(&e, &tb.b);
	base = got.len[0]; /* the segment alone */
	finish(&tb, 4);
	for (size_t max = base; max < base + 1200; max++) {
		int seen[3] = {0, 0, 0};
		e.max = max;
		e.independent = e.inline_subsegments = 0;
		reset_got();
		crd_xray_encode(&e, &tb.b);
		cr_assert_eq(e.independent + e.inline_subsegments, 3, "max %zu", max);
		for (size_t k = 0; k < got.n; k++) {
			cr_assert(got.len[k] <= max, "max %zu: datagram of %zu bytes", max, got.len[k]);
			cJSON *j = doc(k);
			const cJSON *subs = jget(j, "subsegments");
			for (int s = 0; s < cJSON_GetArraySize(subs); s++)
				seen[jstr(cJSON_GetArrayItem(subs, s), "name")[1] - '1']++;
			if (jstr(j, "type"))
				seen[jstr(j, "name")[1] - '1']++;
			cJSON_Delete(j);
		}
		cr_assert(seen[0] == 1 && seen[1] == 1 && seen[2] == 1, "max %zu", max);
	}
	cr_assert_eq(e.independent, 0, "at the top of the sweep all fit inline");
	reset_got();
	crd_xray_enc_destroy(&e);
}

Test(xray_doc, worst_case_fields_still_fit)
{
	/* Every capped field full of bytes that each need a 6-byte escape:
	 * the segment and its subsegment are still valid JSON within the
	 * limits (nothing skipped). */
	struct crd_xray_enc e;
	struct crd_span *s = &tb.spans[0], *c = &tb.spans[1];

	crd_xray_cfg.name = "svc";
	crd_xray_cfg.naming = "*";
	mk_span(s, CRD_KIND_SERVER, 1, NULL);
	s->req.target[0] = '/';
	memset(s->req.target + 1, 0xff, CRD_TARGET_MAX - 2);
	memcpy(s->req.target + 500, "?a=", 3);
	s->req.target[CRD_TARGET_MAX - 1] = 0;
	memset(s->req.host, 0x01, CRD_HOST_MAX - 1);
	s->req.host[CRD_HOST_MAX - 1] = 0;
	memset(s->req.user_agent, 0xfe, CRD_UA_MAX - 1);
	s->req.user_agent[CRD_UA_MAX - 1] = 0;
	memset(s->req.xff, 0x02, CRD_XFF_MAX - 1);
	s->req.xff[CRD_XFF_MAX - 1] = 0;
	s->status = 500;
	mk_span(c, CRD_KIND_CLIENT, 2, s->span_id);
	memcpy(c->req.target, "http://", 7);
	memset(c->req.target + 7, 0xff, CRD_TARGET_MAX - 8);
	c->req.target[CRD_TARGET_MAX - 1] = 0;
	memset(c->req.host, 0xff, CRD_HOST_MAX - 1);
	c->req.host[CRD_HOST_MAX - 1] = 0;
	strcpy(c->error_type, "CURLE_RECV_ERROR");
	finish(&tb, 2);
	cr_assert_eq(crd_xray_enc_init(&e, collect, NULL), 0);
	reset_got();
	cr_assert_eq(crd_xray_encode(&e, &tb.b), 0);
	cr_assert_eq(e.skipped, 0);
	cr_assert_eq(e.segments, 1);
	cr_assert_eq(e.inline_subsegments + e.independent, 1);
	for (size_t k = 0; k < got.n; k++)
		cJSON_Delete(doc(k));
	/* Alone (independent), the subsegment fits in its buffer too. */
	tb.spans[0] = *c;
	finish(&tb, 1);
	reset_got();
	crd_xray_encode(&e, &tb.b);
	cr_assert_eq(e.skipped, 0);
	cr_assert_eq(got.n, 1);
	cJSON *j = doc(0);
	cr_assert_str_eq(jstr(j, "type"), "subsegment");
	cJSON_Delete(j);
	reset_got();
	crd_xray_enc_destroy(&e);
}

/* The sink end to end over a real UDP socket on loopback. */
Test(xray_doc, sink_sends_datagrams)
{
	int rx = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	char buf[70000];
	struct timeval tv = {2, 0};

	cr_assert(rx >= 0);
	cr_assert_eq(bind(rx, (struct sockaddr *)&a, sizeof(a)), 0);
	getsockname(rx, (struct sockaddr *)&a, &al);
	setsockopt(rx, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	crd_xray_cfg.udp_host = "127.0.0.1";
	crd_xray_cfg.udp_port = ntohs(a.sin_port);
	crd_xray_cfg.name = "svc";
	struct crd_sink *s = crd_xray_sink_new();
	cr_assert_not_null(s);
	mk_span(&tb.spans[0], CRD_KIND_SERVER, 7, NULL);
	tb.spans[0].status = 201;
	finish(&tb, 1);
	cr_assert_eq(s->ops->export_spans(s, &tb.b, ~0ull), 0);
	ssize_t n = recv(rx, buf, sizeof(buf) - 1, 0);
	cr_assert(n > 0);
	buf[n] = 0;
	cr_assert_eq(strncmp(buf, header, sizeof(header) - 1), 0);
	cJSON *j = cJSON_Parse(buf + sizeof(header) - 1);
	cr_assert_str_eq(jstr(j, "id"), "0707070707070707");
	cr_assert_eq(jnum(j, "http.response.status"), 201);
	cJSON_Delete(j);
	s->ops->destroy(s);
	close(rx);
}
