/** @file test_values.c  Unit tests for list, parameter and quoted-string
 * helpers of the message layer. */
#include "sipmsg/sipmsg.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#define S(lit) SIP_STR_LIT(lit)

static void assert_str(sip_str s, const char *expect)
{
	size_t n = strlen(expect);
	if (s.len != n || (n && memcmp(s.p, expect, n) != 0))
		fail_msg("got \"%.*s\" (%zu), expected \"%s\"", SIP_STR_FMT(s),
			 s.len, expect);
}

/** Split @p value and compare with the NULL-terminated @p expect list;
 * return the final return code (0 or negative). */
static int split(const char *value, const char *const *expect)
{
	sip_str cur = sip_str_c(value), item;
	int rc;
	size_t i = 0;

	while ((rc = sip_list_next(&cur, &item)) == 1) {
		assert_non_null(expect[i]);
		assert_str(item, expect[i]);
		i++;
	}
	assert_null(expect[i]);
	return rc;
}

static void test_list_simple(void **state)
{
	(void)state;
	const char *const e1[] = {"a", "b", "c", NULL};
	assert_int_equal(split("a,b,c", e1), 0);
	assert_int_equal(split("  a ,\tb , c  ", e1), 0);
	const char *const e2[] = {"single", NULL};
	assert_int_equal(split("single", e2), 0);
	const char *const e3[] = {NULL};
	assert_int_equal(split("", e3), 0);
	assert_int_equal(split("   ", e3), 0);
}

static void test_list_quotes_brackets(void **state)
{
	(void)state;
	const char *const e1[] = {"\"Doe, John\" <sip:a@b>;tag=1",
				  "<sip:c,d@e>", NULL};
	assert_int_equal(
		split("\"Doe, John\" <sip:a@b>;tag=1, <sip:c,d@e>", e1), 0);
	const char *const e2[] = {"\"a \\\", b\" <sip:x>", "y", NULL};
	assert_int_equal(split("\"a \\\", b\" <sip:x>,y", e2), 0);
	/* a quote inside <...> does not start a quoted string */
	const char *const e3[] = {"<sip:a\"b>", "c", NULL};
	assert_int_equal(split("<sip:a\"b>, c", e3), 0);
	/* escaped backslash before the closing quote */
	const char *const e4[] = {"\"x\\\\\"", "z", NULL};
	assert_int_equal(split("\"x\\\\\",z", e4), 0);
}

static void test_list_folding(void **state)
{
	(void)state;
	const char *const e[] = {"SIP/2.0/TCP h1;\r\n  branch=z9hG4bK1",
				 "SIP/2.0/UDP h2", NULL};
	assert_int_equal(split("SIP/2.0/TCP h1;\r\n  branch=z9hG4bK1 ,\r\n "
			       "SIP/2.0/UDP h2",
			       e),
			 0);
}

static void test_list_errors(void **state)
{
	(void)state;
	const char *const ab[] = {"a", NULL};
	const char *const none[] = {NULL};
	assert_int_equal(split("a,,b", ab), -EBADMSG);
	assert_int_equal(split("a,", ab), -EBADMSG);
	assert_int_equal(split("a , \r\n ", ab), -EBADMSG);
	assert_int_equal(split(",a", none), -EBADMSG);
	assert_int_equal(split(" , ", none), -EBADMSG);
	/* RFC 4475 badinv01 Via */
	const char *const via[] = {"SIP/2.0/UDP 192.0.2.15;;", ";", NULL};
	assert_int_equal(split("SIP/2.0/UDP 192.0.2.15;;,;,,", via), -EBADMSG);
	assert_int_equal(split("\"unterminated, x", none), -EBADMSG);
	assert_int_equal(split("\"ends in backslash\\", none), -EBADMSG);
	assert_int_equal(split("<sip:a@b, c", none), -EBADMSG);
	assert_int_equal(split("x, <sip:a@b", (const char *const[]){"x", NULL}),
			 -EBADMSG);
}

static void test_list_cursor_end(void **state)
{
	(void)state;
	sip_str cur = S("a, b"), item;
	assert_int_equal(sip_list_next(&cur, &item), 1);
	assert_str(item, "a");
	assert_str(cur, " b");
	assert_int_equal(sip_list_next(&cur, &item), 1);
	assert_str(item, "b");
	assert_int_equal(cur.len, 0);
	assert_int_equal(sip_list_next(&cur, &item), 0);
	assert_int_equal(sip_list_next(&cur, &item), 0);
}

struct pv {
	const char *name;
	const char *value;
};

static int params(const char *text, const struct pv *expect)
{
	sip_str cur = sip_str_c(text), n, v;
	int rc;
	size_t i = 0;

	while ((rc = sip_param_next(&cur, &n, &v)) == 1) {
		assert_non_null(expect[i].name);
		assert_str(n, expect[i].name);
		assert_str(v, expect[i].value);
		i++;
	}
	assert_null(expect[i].name);
	return rc;
}

static void test_param_basic(void **state)
{
	(void)state;
	const struct pv e1[] = {
		{"tag", "1928301774"}, {"lr", ""}, {"q", "0.7"}, {NULL, NULL}};
	assert_int_equal(params(";tag=1928301774;lr;q=0.7", e1), 0);
	assert_int_equal(params("tag=1928301774;lr;q=0.7", e1), 0);
	const struct pv e2[] = {{NULL, NULL}};
	assert_int_equal(params("", e2), 0);
	assert_int_equal(params("  ", e2), 0);
	const struct pv e3[] = {{"maddr", "239.255.255.1"},
				{"transport", "udp"},
				{"user", "phone"},
				{NULL, NULL}};
	assert_int_equal(
		params(";maddr=239.255.255.1;transport=udp;user=phone", e3), 0);
}

static void test_param_values(void **state)
{
	(void)state;
	const struct pv e1[] = {{"received", "[2001:db8::9:255]"},
				{"branch", "z9hG4bK.x"},
				{NULL, NULL}};
	assert_int_equal(
		params(";received=[2001:db8::9:255];branch=z9hG4bK.x", e1), 0);
	const struct pv e2[] = {{"+sip.instance", "\"<urn:uuid:1;a,b>\""},
				{"reg-id", "1"},
				{NULL, NULL}};
	assert_int_equal(
		params(";+sip.instance=\"<urn:uuid:1;a,b>\";reg-id=1", e2), 0);
	const struct pv e3[] = {{"x", "\"q \\\" ; \""}, {NULL, NULL}};
	assert_int_equal(params(";x=\"q \\\" ; \"", e3), 0);
	/* RFC 4475 esc01 Contact URI params with escapes */
	const struct pv e4[] = {
		{"%6C%72", ""}, {"n%61me", "v%61lue%25%34%31"}, {NULL, NULL}};
	assert_int_equal(params(";%6C%72;n%61me=v%61lue%25%34%31", e4), 0);
	/* URI parameter characters */
	const struct pv e5[] = {{"p", "a/b:c&d$e+f"}, {NULL, NULL}};
	assert_int_equal(params(";p=a/b:c&d$e+f", e5), 0);
}

static void test_param_lws(void **state)
{
	(void)state;
	/* RFC 4475 wsinv.dat From and To tags and Contact params */
	const struct pv e1[] = {{"tag", "98asjd8"}, {NULL, NULL}};
	assert_int_equal(params("\r\n  ;\r\n  tag = 98asjd8", e1), 0);
	const struct pv e2[] = {{"tag", "1918181833n"}, {NULL, NULL}};
	assert_int_equal(params(" ;   tag    = 1918181833n", e2), 0);
	const struct pv e3[] = {{"newparam", "newvalue"},
				{"secondparam", ""},
				{"q", "0.33"},
				{NULL, NULL}};
	assert_int_equal(params(" ; newparam =\r\n      newvalue ;\r\n  "
				"secondparam ; q = 0.33",
				e3),
			 0);
	const struct pv e4[] = {{"branch", "z9hG4bK30239"}, {NULL, NULL}};
	assert_int_equal(params("; branch=\r\n z9hG4bK30239", e4), 0);
}

static void test_param_errors(void **state)
{
	(void)state;
	const struct pv a[] = {{"a", "1"}, {NULL, NULL}};
	const struct pv none[] = {{NULL, NULL}};
	assert_int_equal(params(";a=1;;b", a), -EBADMSG);
	assert_int_equal(params(";a=1;", a), -EBADMSG);
	assert_int_equal(params(";a=1 ; ", a), -EBADMSG);
	assert_int_equal(params(";;", none), -EBADMSG);
	assert_int_equal(params(";", none), -EBADMSG);
	assert_int_equal(params(";=x", none), -EBADMSG);
	assert_int_equal(params(";a=", none), -EBADMSG);
	assert_int_equal(params(";a= ;b", none), -EBADMSG);
	assert_int_equal(params(";a=1 2", none), -EBADMSG);
	assert_int_equal(params(";a b", none), -EBADMSG);
	assert_int_equal(params(";a=\"open", none), -EBADMSG);
	assert_int_equal(params(";a=\"x\"y", none), -EBADMSG);
	assert_int_equal(params(";a=[::1", none), -EBADMSG);
	assert_int_equal(params(";a=[::1 ]", none), -EBADMSG);
	assert_int_equal(params(";a=1,b=2", none), -EBADMSG);
	assert_int_equal(params(";a=<x>", none), -EBADMSG);
	/* RFC 4475 badinv01 Contact */
	assert_int_equal(params(";;;;", none), -EBADMSG);
}

static void test_param_find(void **state)
{
	(void)state;
	sip_str v;
	sip_str p = S(";Transport=TCP;lr;TTL=15;maddr=[::1]");

	assert_int_equal(sip_param_find(p, "transport", &v), 1);
	assert_str(v, "TCP");
	assert_int_equal(sip_param_find(p, "LR", &v), 1);
	assert_int_equal(v.len, 0);
	assert_int_equal(sip_param_find(p, "ttl", &v), 1);
	assert_str(v, "15");
	assert_int_equal(sip_param_find(p, "maddr", &v), 1);
	assert_str(v, "[::1]");
	assert_int_equal(sip_param_find(p, "method", &v), 0);
	assert_int_equal(sip_param_find(p, "lr", NULL), 1);
	assert_int_equal(sip_param_find(S(";a=1;;b=2"), "b", &v), -EBADMSG);
	/* the first match wins */
	assert_int_equal(sip_param_find(S("a=1;A=2"), "a", &v), 1);
	assert_str(v, "1");
	assert_int_equal(sip_param_find(SIP_STR_NULL, "a", &v), 0);
}

/* The table bits the helpers rely on, against their definitions. */
static void test_char_classes(void **state)
{
	(void)state;
	for (int c = 0; c < 256; c++) {
		bool pname = sip_is_token_char((char)c) ||
			     (c && strchr("[]/:&$", c) != NULL);
		bool special = c == ',' || c == '"' || c == '<';

		if (sip_cc((char)c, SIP_CC_PNAME) != pname ||
		    sip_cc((char)c, SIP_CC_LIST_SPECIAL) != special)
			fail_msg("character class of byte %d", c);
	}
}

static void test_unquote(void **state)
{
	(void)state;
	char buf[64];

	assert_int_equal(
		sip_unquote(S("\"J Rosenberg \\\\\\\"\""), buf, sizeof(buf)),
		14);
	assert_memory_equal(buf, "J Rosenberg \\\"", 14);
	assert_int_equal(buf[14], '\0');
	assert_int_equal(sip_unquote(S("\"\""), buf, sizeof(buf)), 0);
	assert_int_equal(sip_unquote(S("  \"a b\"  "), buf, sizeof(buf)), 3);
	assert_memory_equal(buf, "a b", 3);
	/* escaped NUL as in RFC 4475 intmeth */
	assert_int_equal(
		sip_unquote((sip_str){"\"a\\\0b\"", 6}, buf, sizeof(buf)), 3);
	assert_memory_equal(buf, "a\0b", 3);
	/* exact fit: no terminator written, still succeeds */
	buf[3] = 'X';
	assert_int_equal(sip_unquote(S("\"abc\""), buf, 3), 3);
	assert_memory_equal(buf, "abcX", 4);
	assert_int_equal(sip_unquote(S("\"abcd\""), buf, 3), -ENOSPC);

	assert_int_equal(sip_unquote(S("abc"), buf, sizeof(buf)), -EINVAL);
	assert_int_equal(sip_unquote(S("\""), buf, sizeof(buf)), -EINVAL);
	assert_int_equal(sip_unquote(S("\"abc"), buf, sizeof(buf)), -EINVAL);
	assert_int_equal(sip_unquote(S("\"a\"b\""), buf, sizeof(buf)), -EINVAL);
	assert_int_equal(sip_unquote(S("\"ab\\\""), buf, sizeof(buf)), -EINVAL);
	assert_int_equal(sip_unquote(SIP_STR_NULL, buf, sizeof(buf)), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_list_simple),
		cmocka_unit_test(test_list_quotes_brackets),
		cmocka_unit_test(test_list_folding),
		cmocka_unit_test(test_list_errors),
		cmocka_unit_test(test_list_cursor_end),
		cmocka_unit_test(test_param_basic),
		cmocka_unit_test(test_param_values),
		cmocka_unit_test(test_param_lws),
		cmocka_unit_test(test_param_errors),
		cmocka_unit_test(test_param_find),
		cmocka_unit_test(test_unquote),
		cmocka_unit_test(test_char_classes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
