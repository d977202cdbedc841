/** @file test_uri.c  Unit tests for URI parsing, comparison and unescaping
 * (RFC 3261 §19.1, RFC 3966, RFC 4475, RFC 5118). */
#include "sipmsg/sipmsg.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

static void assert_str(sip_str s, const char *expect)
{
	size_t n = strlen(expect);
	if (s.len != n || (n && memcmp(s.p, expect, n) != 0))
		fail_msg("got \"%.*s\" (%zu), expected \"%s\"", SIP_STR_FMT(s),
			 s.len, expect);
}

static struct sip_uri parse_ok(const char *text)
{
	struct sip_uri u;
	int rc = sip_uri_parse(sip_str_c(text), &u);
	if (rc != 0)
		fail_msg("sip_uri_parse(\"%s\") = %d", text, rc);
	return u;
}

static void parse_bad(const char *text)
{
	struct sip_uri u;
	int rc = sip_uri_parse(sip_str_c(text), &u);
	if (rc != -EINVAL)
		fail_msg("sip_uri_parse(\"%s\") = %d, expected -EINVAL", text,
			 rc);
	assert_int_equal(u.scheme, SIP_URI_OTHER);
	assert_null(u.host.p);
}

/** Compare two URI texts; also checks symmetry and reflexivity. */
static bool eq(const char *a, const char *b)
{
	struct sip_uri ua = parse_ok(a), ub = parse_ok(b);
	bool r = sip_uri_equal(&ua, &ub);

	if (sip_uri_equal(&ub, &ua) != r)
		fail_msg("comparison of \"%s\" and \"%s\" is not symmetric", a,
			 b);
	assert_true(sip_uri_equal(&ua, &ua));
	assert_true(sip_uri_equal(&ub, &ub));
	return r;
}

/* ------------------------------------------------------------------------ */
/* sip / sips                                                               */
/* ------------------------------------------------------------------------ */

static void test_sip_full(void **state)
{
	(void)state;
	struct sip_uri u = parse_ok(
		"sip:alice:secretword@atlanta.com:5061;transport=tcp;lr"
		"?subject=project%20x&priority=urgent");

	assert_int_equal(u.scheme, SIP_URI_SIP);
	assert_str(u.scheme_str, "sip");
	assert_str(u.user, "alice");
	assert_str(u.password, "secretword");
	assert_str(u.host, "atlanta.com");
	assert_int_equal(u.host_kind, SIP_HOST_NAME);
	assert_true(u.has_port);
	assert_int_equal(u.port, 5061);
	assert_str(u.params, ";transport=tcp;lr");
	assert_str(u.headers, "subject=project%20x&priority=urgent");
	assert_null(u.opaque.p);
}

static void test_sip_minimal(void **state)
{
	(void)state;
	struct sip_uri u = parse_ok("sip:atlanta.com");

	assert_int_equal(u.scheme, SIP_URI_SIP);
	assert_int_equal(u.user.len, 0);
	assert_int_equal(u.password.len, 0);
	assert_str(u.host, "atlanta.com");
	assert_false(u.has_port);
	assert_int_equal(u.port, 0);
	assert_int_equal(u.params.len, 0);
	assert_int_equal(u.headers.len, 0);

	u = parse_ok("SIPS:Bob@Biloxi.COM.");
	assert_int_equal(u.scheme, SIP_URI_SIPS);
	assert_str(u.scheme_str, "SIPS");
	assert_str(u.user, "Bob");
	assert_str(u.host, "Biloxi.COM.");

	u = parse_ok("sip:user:@host");
	assert_str(u.user, "user");
	assert_int_equal(u.password.len, 0);
	assert_non_null(u.password.p);

	u = parse_ok("sip:h:0");
	assert_true(u.has_port);
	assert_int_equal(u.port, 0);
	u = parse_ok("sip:h:00065535");
	assert_int_equal(u.port, 65535);
	u = parse_ok("sip:a-b.c-d9.e");
	assert_str(u.host, "a-b.c-d9.e");
	u = parse_ok("sip:x@h;lr");
	assert_str(u.params, ";lr");
	u = parse_ok("sip:h?a=");
	assert_str(u.headers, "a=");
}

static void test_sip_user_forms(void **state)
{
	(void)state;
	/* RFC 4475 semiuri: ';' and escapes in the user part */
	struct sip_uri u = parse_ok("sip:user;par=u%40example.net@example.com");
	assert_str(u.user, "user;par=u%40example.net");
	assert_str(u.host, "example.com");
	assert_int_equal(u.params.len, 0);

	/* RFC 4475 intmeth: every unusual legal character */
	u = parse_ok("sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:"
		     "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com");
	assert_str(u.user, "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*");
	assert_str(u.password, "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)");
	assert_str(u.host, "example.com");

	/* RFC 4475 esc01 and escnull */
	u = parse_ok("sip:sips%3Auser%40example.com@example.net");
	assert_str(u.user, "sips%3Auser%40example.com");
	assert_str(u.host, "example.net");
	u = parse_ok("sip:null-%00-null@example.com");
	assert_str(u.user, "null-%00-null");
	u = parse_ok("sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%"
		     "34%31");
	assert_str(u.params, ";%6C%72;n%61me=v%61lue%25%34%31");

	/* telephone-subscriber in the user part */
	u = parse_ok("sip:+1-212-555-1212:1234@gateway.com;user=phone");
	assert_str(u.user, "+1-212-555-1212");
	assert_str(u.password, "1234");
	assert_str(u.params, ";user=phone");
}

static void test_sip_hosts(void **state)
{
	(void)state;
	struct sip_uri u = parse_ok("sip:alice@192.0.2.4");
	assert_int_equal(u.host_kind, SIP_HOST_IPV4);
	assert_str(u.host, "192.0.2.4");
	u = parse_ok("sip:255.255.255.255:5060");
	assert_int_equal(u.host_kind, SIP_HOST_IPV4);
	assert_int_equal(u.port, 5060);
	/* not an IPv4 address but a valid hostname */
	u = parse_ok("sip:1.2.3.com");
	assert_int_equal(u.host_kind, SIP_HOST_NAME);

	parse_bad("sip:256.1.1.1");
	parse_bad("sip:1.2.3");
	parse_bad("sip:1.2.3.4.5");
	parse_bad("sip:-host.com");
	parse_bad("sip:host-.com");
	parse_bad("sip:a..b");
	parse_bad("sip:.a");
	parse_bad("sip:a.1com");
	parse_bad("sip:ho_st");
	parse_bad("sip:user@");
	parse_bad("sip:");
	parse_bad("sip:user@.");
}

static void test_sip_ipv6(void **state)
{
	(void)state;
	/* RFC 5118 §4.1 ipv6-good, §4.4 port-unambiguous */
	struct sip_uri u = parse_ok("sip:[2001:db8::10]");
	assert_int_equal(u.host_kind, SIP_HOST_IPV6);
	assert_str(u.host, "[2001:db8::10]");
	assert_false(u.has_port);
	u = parse_ok("sip:[2001:db8::10]:5070");
	assert_str(u.host, "[2001:db8::10]");
	assert_true(u.has_port);
	assert_int_equal(u.port, 5070);
	/* §4.3 port-ambiguous: valid, the port is part of the address */
	u = parse_ok("sip:[2001:db8::10:5070]");
	assert_str(u.host, "[2001:db8::10:5070]");
	assert_false(u.has_port);
	/* §4.7 IPv4-mapped, §4.10 both ABNF forms */
	u = parse_ok("sip:ted@[::ffff:192.0.2.2]");
	assert_str(u.host, "[::ffff:192.0.2.2]");
	u = parse_ok("sip:user@[2001:db8::192.0.2.1]");
	assert_str(u.host, "[2001:db8::192.0.2.1]");
	u = parse_ok("sip:user@[2001:db8:::192.0.2.1]");
	assert_str(u.host, "[2001:db8:::192.0.2.1]");
	assert_int_equal(u.host_kind, SIP_HOST_IPV6);
	parse_ok("sip:[:::192.0.2.1]");
	parse_ok("sip:[::]");
	parse_ok("sip:[::1]");
	parse_ok("sip:[1::]");
	parse_ok("sip:[1:2:3:4:5:6:7:8]");
	parse_ok("sip:[1:2:3:4:5:6:1.2.3.4]");
	parse_ok("sip:[FFFF::abcd]:1");
	parse_ok("sip:u@[2001:db8::9:1];transport=tcp");

	/* §4.2 ipv6-bad: no brackets */
	parse_bad("sip:2001:db8::10");
	parse_bad("sip:[2001:db8::10");
	parse_bad("sip:2001:db8::10]");
	parse_bad("sip:[]");
	parse_bad("sip:[1:2:3:4:5:6:7]");
	parse_bad("sip:[1:2:3:4:5:6:7:8:9]");
	parse_bad("sip:[1:2:3:4:5:6:7::8]");
	parse_bad("sip:[1::2::3]");
	parse_bad("sip:[12345::]");
	parse_bad("sip:[:1]");
	parse_bad("sip:[1:]");
	parse_bad("sip:[:::1]");
	parse_bad("sip:[1:::2]");
	parse_bad("sip:[1::2:::1.2.3.4]");
	parse_bad("sip:[::1.2.3.4:5]");
	parse_bad("sip:[::256.1.1.1]");
	parse_bad("sip:[192.0.2.1]");
	parse_bad("sip:[1:2:3:4:5:6:7:1.2.3.4]");
	parse_bad("sip:[::g]");
	parse_bad("sip:[::1]x");
	parse_bad("sip:[::1]:");
	parse_bad("sip:[fe80::1%25eth0]");
}

static void test_sip_ports(void **state)
{
	(void)state;
	parse_bad("sip:host:");
	parse_bad("sip:host:65536");
	parse_bad("sip:host:99999999999999999999999");
	parse_bad("sip:host:-1");
	parse_bad("sip:host:5060x");
	parse_bad("sip:host:50:60");
	parse_bad("sip:host/path");
}

static void test_sip_params_headers(void **state)
{
	(void)state;
	struct sip_uri u = parse_ok("sip:services.example.com;lr;unknownwith="
				    "value;unknown-no-value");
	assert_str(u.params, ";lr;unknownwith=value;unknown-no-value");

	u = parse_ok("sip:h;maddr=[2001:db8::1];x=a/b:c&d+e$f(g)");
	assert_str(u.params, ";maddr=[2001:db8::1];x=a/b:c&d+e$f(g)");
	assert_int_equal(u.headers.len, 0);

	/* RFC 4475 escruri */
	u = parse_ok("sip:user@example.com?Route=%3Csip:example.com%3E");
	assert_str(u.user, "user");
	assert_str(u.host, "example.com");
	assert_int_equal(u.params.len, 0);
	assert_str(u.headers, "Route=%3Csip:example.com%3E");

	u = parse_ok("sip:h;a=1?x=[?]/:+$&y=");
	assert_str(u.params, ";a=1");
	assert_str(u.headers, "x=[?]/:+$&y=");

	parse_bad("sip:h;");
	parse_bad("sip:h;;lr");
	parse_bad("sip:h;lr;");
	parse_bad("sip:h;=x");
	parse_bad("sip:h;a=");
	parse_bad("sip:h;a=b=c");
	parse_bad("sip:h;a=\"q\"");
	parse_bad("sip:h?");
	parse_bad("sip:h?a");
	parse_bad("sip:h?=b");
	parse_bad("sip:h?a=b&");
	parse_bad("sip:h?a=b&&c=d");
	parse_bad("sip:h?a=b=c");
	parse_bad("sip:h?a=<x>");
}

static void test_sip_bad_chars(void **state)
{
	(void)state;
	parse_bad("sip:user name@host");
	parse_bad("sip:user@host name");
	parse_bad("sip:user@host;a=b c");
	parse_bad("sip:user@host?a=b c");
	parse_bad(" sip:user@host");
	parse_bad("sip:user@host ");
	parse_bad("sip:us\ter@host");
	parse_bad("sip:user@host\r\n");
	parse_bad("sip:us\x7f"
		  "er@host");
	parse_bad("sip:us\xc3\xa9r@host");
	parse_bad("sip:<user>@host");
	parse_bad("sip:us\"er@host");
	parse_bad("sip:@host");
	parse_bad("sip::pw@host");
	parse_bad("sip:us%4@host");
	parse_bad("sip:us%4g@host");
	parse_bad("sip:us%@host");
	parse_bad("sip:user:p%zz@host");
	parse_bad("sip:user:p@ss@host");
	parse_bad("sip:user@host;a=%2");
	parse_bad("sip:user@host?a=%");
	parse_bad("sip:a@b@host");
	parse_bad("<sip:user@host>");
	/* embedded NUL */
	struct sip_uri u;
	assert_int_equal(sip_uri_parse((sip_str){"sip:a\0b@h", 9}, &u),
			 -EINVAL);
}

/* ------------------------------------------------------------------------ */
/* tel                                                                      */
/* ------------------------------------------------------------------------ */

static void test_tel(void **state)
{
	(void)state;
	struct sip_uri u = parse_ok(
		"tel:+1-201-555-0123;ext=1234;phone-context=example.com");
	assert_int_equal(u.scheme, SIP_URI_TEL);
	assert_str(u.scheme_str, "tel");
	assert_str(u.user, "+1-201-555-0123");
	assert_str(u.params, ";ext=1234;phone-context=example.com");
	assert_int_equal(u.host.len, 0);
	assert_int_equal(u.host_kind, SIP_HOST_NONE);
	assert_false(u.has_port);

	u = parse_ok("TEL:+358-555-1234567");
	assert_str(u.user, "+358-555-1234567");
	assert_int_equal(u.params.len, 0);
	u = parse_ok("tel:+1(201)555.0123");
	assert_str(u.user, "+1(201)555.0123");
	u = parse_ok("tel:7042;phone-context=example.com");
	assert_str(u.user, "7042");
	assert_str(u.params, ";phone-context=example.com");
	u = parse_ok("tel:863-1234;phone-context=+1-914-555");
	assert_str(u.user, "863-1234");
	u = parse_ok("tel:*69#;phone-context=+1");
	assert_str(u.user, "*69#");
	u = parse_ok("tel:AbC;phone-context=x.example.");
	assert_str(u.user, "AbC");
	u = parse_ok("tel:+1234;isub=a?b@c;foo");
	assert_str(u.params, ";isub=a?b@c;foo");

	parse_bad("tel:");
	parse_bad("tel:+");
	parse_bad("tel:+-");
	parse_bad("tel:+1 201");
	parse_bad("tel:+12a4");
	parse_bad("tel:1234");
	parse_bad("tel:1234;ext=1");
	parse_bad("tel:1234;phone-context=");
	parse_bad("tel:1234;phone-context=+");
	parse_bad("tel:1234;phone-context=-bad.com");
	parse_bad("tel:12g4;phone-context=+1");
	parse_bad("tel:--;phone-context=+1");
	parse_bad("tel:+1;");
	parse_bad("tel:+1;;a");
	parse_bad("tel:+1;a_b=1");
	parse_bad("tel:+1;a=");
	parse_bad("tel:+1;a=%zz");
	parse_bad("tel:+1@host");
}

/* ------------------------------------------------------------------------ */
/* Other schemes                                                            */
/* ------------------------------------------------------------------------ */

static void test_other_schemes(void **state)
{
	(void)state;
	/* RFC 4475 novelsc, unkscm, unksm2 */
	struct sip_uri u = parse_ok("soap.beep://192.0.2.103:3002");
	assert_int_equal(u.scheme, SIP_URI_OTHER);
	assert_str(u.scheme_str, "soap.beep");
	assert_str(u.opaque, "//192.0.2.103:3002");
	assert_int_equal(u.host.len, 0);
	assert_int_equal(u.user.len, 0);

	u = parse_ok("nobodyKnowsThisScheme:totallyopaquecontent");
	assert_str(u.scheme_str, "nobodyKnowsThisScheme");
	assert_str(u.opaque, "totallyopaquecontent");
	u = parse_ok("isbn:2983792873");
	assert_str(u.opaque, "2983792873");
	u = parse_ok("http://www.example.com");
	assert_str(u.scheme_str, "http");
	assert_str(u.opaque, "//www.example.com");
	u = parse_ok("name:John_Smith");
	assert_str(u.opaque, "John_Smith");
	u = parse_ok("mailto:a@b.c?subject=x%20y");
	assert_str(u.opaque, "a@b.c?subject=x%20y");
	u = parse_ok("x+1-.y:[::1]");
	assert_str(u.scheme_str, "x+1-.y");

	parse_bad("");
	parse_bad(":");
	parse_bad("noscheme");
	parse_bad("1abc:foo");
	parse_bad("+abc:foo");
	parse_bad("a_b:foo");
	parse_bad("isbn:");
	parse_bad("isbn:1 2");
	parse_bad("isbn:<x>");
	parse_bad("isbn:%g1");
	parse_bad("http://a\"b");
	struct sip_uri v;
	assert_int_equal(sip_uri_parse(SIP_STR_NULL, &v), -EINVAL);
}

/* ------------------------------------------------------------------------ */
/* Comparison                                                               */
/* ------------------------------------------------------------------------ */

static void test_equal_rfc3261(void **state)
{
	(void)state;
	/* RFC 3261 §19.1.4: equivalent URIs */
	assert_true(eq("sip:%61lice@atlanta.com;transport=TCP",
		       "sip:alice@AtLanTa.CoM;Transport=tcp"));
	assert_true(eq("sip:carol@chicago.com",
		       "sip:carol@chicago.com;newparam=5"));
	assert_true(eq("sip:carol@chicago.com",
		       "sip:carol@chicago.com;security=on"));
	assert_true(eq("sip:carol@chicago.com;newparam=5",
		       "sip:carol@chicago.com;security=on"));
	assert_true(eq("sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:"
		       "bob%40biloxi.com",
		       "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:"
		       "bob%40biloxi.com"));
	assert_true(eq("sip:alice@atlanta.com?subject=project%20x&priority="
		       "urgent",
		       "sip:alice@atlanta.com?priority=urgent&subject=project%"
		       "20x"));
}

static void test_not_equal_rfc3261(void **state)
{
	(void)state;
	/* RFC 3261 §19.1.4: non-equivalent URIs */
	assert_false(eq("SIP:ALICE@AtLanTa.CoM;Transport=udp",
			"sip:alice@AtLanTa.CoM;Transport=UDP"));
	assert_false(eq("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"));
	assert_false(
		eq("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"));
	assert_false(eq("sip:bob@biloxi.com",
			"sip:bob@biloxi.com:6000;transport=tcp"));
	assert_false(eq("sip:carol@chicago.com",
			"sip:carol@chicago.com?Subject=next%20meeting"));
	assert_false(eq("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"));
	/* equality is not transitive */
	assert_false(eq("sip:carol@chicago.com;security=on",
			"sip:carol@chicago.com;security=off"));
}

static void test_equal_details(void **state)
{
	(void)state;
	/* scheme */
	assert_true(eq("SIP:a@h", "sip:a@h"));
	assert_false(eq("sip:a@h", "sips:a@h"));
	assert_false(eq("sip:a@h", "tel:+1"));
	assert_false(eq("sip:a@h", "http://h"));
	/* userinfo: case-sensitive, escapes decoded, password counts */
	assert_false(eq("sip:Alice@h", "sip:alice@h"));
	assert_true(eq("sip:%41lice@h", "sip:Alice@h"));
	assert_true(eq("sip:%6c%6C@h", "sip:ll@h"));
	assert_false(eq("sip:%61@h", "sip:%41@h"));
	assert_false(eq("sip:a@h", "sip:h"));
	assert_false(eq("sip:a:pw@h", "sip:a@h"));
	assert_false(eq("sip:a:pw@h", "sip:a:PW@h"));
	assert_true(eq("sip:a:p%77@h", "sip:a:pw@h"));
	assert_true(eq("sip:a:@h", "sip:a@h"));
	/* RFC 4475 escnull: %00 must not truncate */
	assert_false(eq("sip:%00@host5.example.com",
			"sip:%00%00@host5.example.com"));
	assert_false(eq("sip:null-%00-null@example.com",
			"sip:null-%00-nulx@example.com"));
	assert_true(eq("sip:user;par=u%40example.net@example.com",
		       "sip:user;p%61r=u%40example.net@example.com"));
	assert_false(eq("sip:user;par=u%40example.net@example.com",
			"sip:user;par=u%40EXAMPLE.net@example.com"));
	/* host */
	assert_true(eq("sip:a@EXAMPLE.com", "sip:a@example.COM"));
	assert_false(eq("sip:a@example.com", "sip:a@example.org"));
	/* port */
	assert_true(eq("sip:a@h:5060", "sip:a@h:05060"));
	assert_false(eq("sip:a@h:5060", "sip:a@h:5061"));
	assert_false(eq("sips:a@h", "sips:a@h:5061"));
}

static void test_equal_ipv6(void **state)
{
	(void)state;
	/* RFC 5118: IPv6 references compare by address */
	assert_true(eq("sip:[2001:db8::10]", "sip:[2001:DB8:0:0:0:0:0:10]"));
	assert_true(eq("sip:u@[2001:db8::192.0.2.1]",
		       "sip:u@[2001:db8:::192.0.2.1]"));
	assert_true(eq("sip:u@[2001:db8::c000:201]",
		       "sip:u@[2001:db8::192.0.2.1]"));
	assert_true(eq("sip:[::ffff:192.0.2.2]", "sip:[::FFFF:C000:202]"));
	assert_true(eq("sip:[::]", "sip:[0:0:0:0:0:0:0:0]"));
	assert_true(eq("sip:[1::]", "sip:[1:0::0]"));
	assert_false(eq("sip:[2001:db8::10]", "sip:[2001:db8::10:5070]"));
	assert_false(eq("sip:[2001:db8::10]:5070", "sip:[2001:db8::10:5070]"));
	assert_false(eq("sip:[::1]", "sip:[::2]"));
	assert_false(eq("sip:[::ffff:192.0.2.2]", "sip:192.0.2.2"));
}

static void test_equal_params(void **state)
{
	(void)state;
	/* user, ttl, method, maddr, transport must match when in either */
	assert_false(eq("sip:a@h;user=phone", "sip:a@h"));
	assert_false(eq("sip:a@h;ttl=1", "sip:a@h"));
	assert_false(eq("sip:a@h;method=INVITE", "sip:a@h"));
	assert_false(eq("sip:a@h;maddr=239.1.1.1", "sip:a@h"));
	assert_false(eq("sip:a@h;ttl=1", "sip:a@h;ttl=2"));
	assert_true(eq("sip:a@h;MADDR=Example.COM;TTL=1",
		       "sip:a@h;ttl=1;maddr=example.com"));
	assert_true(eq("sip:a@h;method=invite", "sip:a@h;METHOD=INVITE"));
	assert_true(eq("sip:a@h;tr%61nsport=t%63p", "sip:a@h;transport=TCP"));
	/* flag vs valued parameter */
	assert_false(eq("sip:a@h;lr", "sip:a@h;lr=on"));
	assert_true(eq("sip:a@h;lr", "sip:a@h;LR"));
	/* other parameters: compared only when in both */
	assert_true(eq("sip:a@h;foo=1", "sip:a@h;bar=2"));
	assert_false(eq("sip:a@h;foo=1;bar=2", "sip:a@h;bar=3"));
	assert_true(eq("sip:a@h;foo=%41", "sip:a@h;FOO=a"));
	assert_true(eq("sip:a@h;foo=1;foo=2", "sip:a@h;foo=1;foo=2"));
}

static void test_equal_headers(void **state)
{
	(void)state;
	assert_true(eq("sip:h?a=1&b=2", "sip:h?b=2&a=1"));
	assert_true(eq("sip:h?Subject=x", "sip:h?subject=x"));
	assert_false(eq("sip:h?subject=X", "sip:h?subject=x"));
	assert_true(eq("sip:h?subject=%41", "sip:h?subject=A"));
	assert_false(eq("sip:h?a=1", "sip:h?a=1&b=2"));
	assert_false(eq("sip:h?a=1", "sip:h?a=2"));
	assert_false(eq("sip:h?a=1", "sip:h"));
	assert_true(eq("sip:h?a=", "sip:h?a="));
	assert_false(eq("sip:h?a=", "sip:h?a=1"));
}

static void test_equal_tel(void **state)
{
	(void)state;
	/* RFC 3966 §4 and its examples */
	assert_true(eq("tel:+1-201-555-0123", "tel:+1(201)555.0123"));
	assert_true(eq("tel:+12015550123", "TEL:+1-201-555-0123"));
	assert_false(eq("tel:+12015550123", "tel:+12015550124"));
	assert_false(eq("tel:+1201", "tel:+12015"));
	assert_true(eq("tel:7042;phone-context=example.com",
		       "tel:7042;phone-context=EXAMPLE.COM"));
	assert_true(eq("tel:863-1234;phone-context=+1-914-555",
		       "tel:8631234;phone-context=+1914555"));
	assert_false(eq("tel:863-1234;phone-context=+1-914-555",
			"tel:863-1234;phone-context=+1-914-556"));
	assert_false(eq("tel:1234;phone-context=+1", "tel:+1234"));
	assert_true(eq("tel:abc;phone-context=+1", "tel:ABC;phone-context=+1"));
	/* params order-insensitive, all must be in both */
	assert_true(
		eq("tel:+1234;ext=5-6;foo=bar", "tel:+1234;FOO=BAR;ext=56"));
	assert_false(eq("tel:+1234;ext=56", "tel:+1234"));
	assert_false(eq("tel:+1234;foo", "tel:+1234"));
	assert_false(eq("tel:+1234;foo=1", "tel:+1234;foo=2"));
	assert_false(eq("tel:+1234;foo", "tel:+1234;foo=1"));
	assert_true(eq("tel:+1234;a=%41", "tel:+1234;a=a"));
}

static void test_equal_other(void **state)
{
	(void)state;
	assert_true(eq("isbn:2983792873", "ISBN:2983792873"));
	assert_false(eq("isbn:2983792873", "isbn:2983792874"));
	assert_false(eq("http://www.example.com", "http://WWW.example.com"));
	assert_false(eq("http://www.example.com", "https://www.example.com"));
	assert_true(eq("soap.beep://192.0.2.103:3002",
		       "soap.beep://192.0.2.103:3002"));
}

/* ------------------------------------------------------------------------ */
/* Unescaping                                                               */
/* ------------------------------------------------------------------------ */

static void test_unescape(void **state)
{
	(void)state;
	char buf[32];

	assert_int_equal(sip_unescape(SIP_STR_LIT("I%20have%20spaces"), buf,
				      sizeof(buf)),
			 13);
	assert_string_equal(buf, "I have spaces");
	assert_int_equal(
		sip_unescape(SIP_STR_LIT("%6c%6C%4A"), buf, sizeof(buf)), 3);
	assert_string_equal(buf, "llJ");
	assert_int_equal(
		sip_unescape(SIP_STR_LIT("null-%00-null"), buf, sizeof(buf)),
		11);
	assert_memory_equal(buf, "null-\0-null", 11);
	assert_int_equal(sip_unescape(SIP_STR_LIT("%ff"), buf, sizeof(buf)), 1);
	assert_int_equal((unsigned char)buf[0], 0xff);
	assert_int_equal(sip_unescape(SIP_STR_NULL, buf, sizeof(buf)), 0);
	assert_int_equal(buf[0], '\0');
	assert_int_equal(sip_unescape(SIP_STR_LIT("plain"), buf, sizeof(buf)),
			 5);
	assert_string_equal(buf, "plain");

	/* exact fit, then too small */
	buf[3] = 'X';
	assert_int_equal(sip_unescape(SIP_STR_LIT("a%62c"), buf, 3), 3);
	assert_memory_equal(buf, "abcX", 4);
	assert_int_equal(sip_unescape(SIP_STR_LIT("a%62cd"), buf, 3), -ENOSPC);
	assert_int_equal(sip_unescape(SIP_STR_LIT("a"), buf, 0), -ENOSPC);

	/* malformed escapes */
	assert_int_equal(sip_unescape(SIP_STR_LIT("%"), buf, sizeof(buf)),
			 -EINVAL);
	assert_int_equal(sip_unescape(SIP_STR_LIT("a%4"), buf, sizeof(buf)),
			 -EINVAL);
	assert_int_equal(sip_unescape(SIP_STR_LIT("%4g"), buf, sizeof(buf)),
			 -EINVAL);
	assert_int_equal(sip_unescape(SIP_STR_LIT("%g4"), buf, sizeof(buf)),
			 -EINVAL);
	assert_int_equal(sip_unescape(SIP_STR_LIT("%%41"), buf, sizeof(buf)),
			 -EINVAL);
}

static void test_corpus_uris(void **state)
{
	(void)state;
	/* Request-URIs and header URIs of the RFC 4475 / RFC 5118 messages */
	static const char *const good[] = {
		"sip:vivekg@chair-dnrc.example.com;unknownparam",
		"sip:jdrosen@example.com",
		"sip:services.example.com;lr;unknownwith=value;unknown-no-"
		"value",
		"sip:user@example.com:6000;unknownparam1=verylonglong;"
		"unknownparam2=verylong;unknownparam3;unknownparam4=x",
		"sip:I%20have%20spaces@example.net",
		"sip:%75se%72@example.com",
		"sip:caller@[2001:db8::20]",
		"sip:user@[2001:db8::10]",
		"sip:[2001:db8::10]",
	};
	static const char *const bad[] = {
		"sip:2001:db8::10",
		"sip:user@example.com SIP/2.0",
		"<sip:user@example.com>",
		"sip:user@example.com;lr;",
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		parse_ok(good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		parse_bad(bad[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sip_full),
		cmocka_unit_test(test_sip_minimal),
		cmocka_unit_test(test_sip_user_forms),
		cmocka_unit_test(test_sip_hosts),
		cmocka_unit_test(test_sip_ipv6),
		cmocka_unit_test(test_sip_ports),
		cmocka_unit_test(test_sip_params_headers),
		cmocka_unit_test(test_sip_bad_chars),
		cmocka_unit_test(test_tel),
		cmocka_unit_test(test_other_schemes),
		cmocka_unit_test(test_equal_rfc3261),
		cmocka_unit_test(test_not_equal_rfc3261),
		cmocka_unit_test(test_equal_details),
		cmocka_unit_test(test_equal_ipv6),
		cmocka_unit_test(test_equal_params),
		cmocka_unit_test(test_equal_headers),
		cmocka_unit_test(test_equal_tel),
		cmocka_unit_test(test_equal_other),
		cmocka_unit_test(test_unescape),
		cmocka_unit_test(test_corpus_uris),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
