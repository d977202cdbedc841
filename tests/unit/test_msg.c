/**
 * @file test_msg.c  Message parser, header index, limits, stream framing,
 * header views, verdicts and the writer.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "sipmsg/sipmsg.h"

#define assert_str(s, lit)                                                     \
	do {                                                                   \
		sip_str s_ = (s);                                              \
		assert_int_equal(s_.len, strlen(lit));                         \
		assert_memory_equal(s_.p, (lit), s_.len);                      \
	} while (0)

static const char INVITE[] =
	"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
	"Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds"
	";rport\r\n"
	"v: SIP/2.0/TCP [2001:db8::9]:5061;branch=z9hG4bKx;received=192.0.2.1"
	", SIP/2.0/UDP h3;branch=z9hG4bKy;ttl=16;maddr=224.2.0.1\r\n"
	"Max-Forwards: 70\r\n"
	"To: Bob <sip:bob@biloxi.example.com>\r\n"
	"f: \"Alice \\\"A\\\" Liddell\" <sip:alice@atlanta.example.com>"
	";tag=1928301774\r\n"
	"i: a84b4c76e66710@pc33.atlanta.example.com\r\n"
	"CSeq: 314159 INVITE\r\n"
	"m: <sip:alice@pc33.atlanta.example.com>;q=0.7;expires=60, "
	"sip:a2@h;q=1\r\n"
	"X-Custom: keep me\r\n"
	"  folded too\r\n"
	"c: application/sdp\r\n"
	"l: 4\r\n"
	"\r\n"
	"v=0\r";

static void parse_ok(struct sip_msg *m, const char *buf, size_t len)
{
	struct sip_error err = {0};
	int rc = sip_msg_parse(m, buf, len, SIP_FRAMING_DATAGRAM, NULL, &err);
	if (rc)
		fail_msg("parse: %s at %u:%u", err.reason, err.line,
			 err.column);
}

static void test_request_index(void **state)
{
	(void)state;
	struct sip_msg m;
	struct sip_error err;

	parse_ok(&m, INVITE, sizeof(INVITE) - 1);
	assert_true(m.is_request);
	assert_int_equal(m.method_id, SIP_METHOD_INVITE);
	assert_str(m.ruri, "sip:bob@biloxi.example.com");
	assert_str(m.version, "SIP/2.0");
	assert_int_equal(m.nhdrs, 11);
	assert_int_equal(m.nvia, 3);
	assert_int_equal(sip_msg_hdr_count(&m, SIP_HDR_VIA), 2);
	assert_str(sip_msg_hdr(&m, SIP_HDR_CALL_ID)->value,
		   "a84b4c76e66710@pc33.atlanta.example.com");
	assert_str(sip_msg_hdr(&m, SIP_HDR_FROM)->name, "f");
	const struct sip_hdr *x =
		sip_msg_hdr_by_name(&m, SIP_STR_LIT("x-custom"));
	assert_non_null(x);
	assert_int_equal(x->id, SIP_HDR_OTHER);
	assert_str(x->value, "keep me\r\n  folded too");
	assert_true(m.has_content_length);
	assert_int_equal(m.content_length, 4);
	assert_str(m.body, "v=0\r");
	assert_int_equal(m.len, sizeof(INVITE) - 1);
	assert_int_equal(sip_msg_check(&m, &err), 0);
	/* Values point into the buffer: nothing was copied. */
	assert_true(m.ruri.p > INVITE && m.ruri.p < INVITE + sizeof(INVITE));
}

static void test_hdr_lookup(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		enum sip_hdr_id id;
	} cases[] = {
		{"i", SIP_HDR_CALL_ID},
		{"m", SIP_HDR_CONTACT},
		{"F", SIP_HDR_FROM},
		{"t", SIP_HDR_TO},
		{"V", SIP_HDR_VIA},
		{"l", SIP_HDR_CONTENT_LENGTH},
		{"c", SIP_HDR_CONTENT_TYPE},
		{"k", SIP_HDR_SUPPORTED},
		{"s", SIP_HDR_SUBJECT},
		{"e", SIP_HDR_CONTENT_ENCODING},
		{"o", SIP_HDR_EVENT},
		{"u", SIP_HDR_ALLOW_EVENTS},
		{"r", SIP_HDR_REFER_TO},
		{"b", SIP_HDR_REFERRED_BY},
		{"x", SIP_HDR_SESSION_EXPIRES},
		{"y", SIP_HDR_IDENTITY},
		{"a", SIP_HDR_ACCEPT_CONTACT},
		{"ViA", SIP_HDR_VIA},
		{"call-id", SIP_HDR_CALL_ID},
		{"CSEQ", SIP_HDR_CSEQ},
		{"WWW-Authenticate", SIP_HDR_WWW_AUTHENTICATE},
		{"sip-etag", SIP_HDR_SIP_ETAG},
		{"SIP-If-Match", SIP_HDR_SIP_IF_MATCH},
		{"Subscription-State", SIP_HDR_SUBSCRIPTION_STATE},
		{"Max-Forwards", SIP_HDR_MAX_FORWARDS},
		{"Record-Route", SIP_HDR_RECORD_ROUTE},
		{"Viaa", SIP_HDR_OTHER},
		{"q", SIP_HDR_OTHER},
		{"X-Via", SIP_HDR_OTHER},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum sip_hdr_id id = sip_hdr_lookup(sip_str_c(cases[i].name));
		if (id != cases[i].id)
			fail_msg("%s -> %d, want %d", cases[i].name, id,
				 cases[i].id);
	}
	assert_string_equal(sip_hdr_name(SIP_HDR_CALL_ID), "Call-ID");
	assert_null(sip_hdr_name(SIP_HDR_OTHER));
	assert_true(sip_hdr_is_list(SIP_HDR_VIA));
	assert_false(sip_hdr_is_list(SIP_HDR_FROM));
}

static void test_response(void **state)
{
	(void)state;
	static const char r[] =
		"SIP/2.0 180 Ringing\r\n"
		"Via: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
		"To: <sip:b@h>;tag=x\r\nFrom: <sip:a@h>;tag=y\r\n"
		"Call-ID: c\r\nCSeq: 1 INVITE\r\n"
		"Content-Length: 0\r\n\r\n";
	struct sip_msg m;
	struct sip_error err;

	parse_ok(&m, r, sizeof(r) - 1);
	assert_false(m.is_request);
	assert_int_equal(m.status, 180);
	assert_str(m.reason, "Ringing");
	assert_int_equal(sip_msg_check(&m, &err), 0);

	static const char *const bad[] = {
		"SIP/2.0 99 Low\r\n\r\n", "SIP/2.0 700 High\r\n\r\n",
		"SIP/2.0 2000 X\r\n\r\n", "SIP/2.0 20a X\r\n\r\n",
		"SIP/2.x 200 OK\r\n\r\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(sip_msg_parse(&m, bad[i], strlen(bad[i]),
					       SIP_FRAMING_DATAGRAM, NULL,
					       &err),
				 -EBADMSG);
}

static void test_start_line_errors(void **state)
{
	(void)state;
	static const struct {
		const char *msg;
		unsigned line, col;
		const char *reason;
	} cases[] = {
		{"INVITE  sip:a@b SIP/2.0\r\n\r\n", 1, 8,
		 "Extra space in request line"},
		{"INVITE sip:a@b SIP/2.0 \r\n\r\n", 1, 23,
		 "Malformed request line"},
		{"INVITE sip:a@b\r\n\r\n", 1, 15,
		 "Missing SIP version in request line"},
		{"INVITE sip:a@b SIP/2.0\r\nVia x\r\n\r\n", 2, 1,
		 "Malformed header line"},
		{"INVITE sip:a@b SIP/2.0\r\n folded\r\n\r\n", 2, 1,
		 "Continuation line without a header"},
		{"INVITE sip:a@b SIP/2.0", 1, 23, "Missing end of start line"},
		{"\r\n\r\n", 3, 1, "Empty message"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sip_msg m;
		struct sip_error err = {0};
		int rc = sip_msg_parse(&m, cases[i].msg, strlen(cases[i].msg),
				       SIP_FRAMING_DATAGRAM, NULL, &err);
		assert_int_equal(rc, -EBADMSG);
		assert_int_equal(err.status, 400);
		assert_string_equal(err.reason, cases[i].reason);
		if (err.line != cases[i].line || err.column != cases[i].col)
			fail_msg("case %zu: at %u:%u, want %u:%u", i, err.line,
				 err.column, cases[i].line, cases[i].col);
	}
}

static void test_limits(void **state)
{
	(void)state;
	char buf[4096];
	struct sip_msg m;
	struct sip_error err;
	struct sip_limits lim;
	int n = snprintf(buf, sizeof(buf), "OPTIONS sip:a@b SIP/2.0\r\n");
	for (int i = 0; i < 10; i++)
		n += snprintf(buf + n, sizeof(buf) - (size_t)n,
			      "Via: SIP/2.0/UDP h%d;branch=z9hG4bK%d\r\n", i,
			      i);
	n += snprintf(buf + n, sizeof(buf) - (size_t)n, "\r\n");

	sip_limits_default(&lim);
	lim.max_via = 9;
	assert_int_equal(sip_msg_parse(&m, buf, (size_t)n, SIP_FRAMING_DATAGRAM,
				       &lim, &err),
			 -E2BIG);
	assert_string_equal(err.reason, "Too many Via values");
	lim.max_via = 10;
	lim.max_headers = 9;
	assert_int_equal(sip_msg_parse(&m, buf, (size_t)n, SIP_FRAMING_DATAGRAM,
				       &lim, &err),
			 -E2BIG);
	assert_string_equal(err.reason, "Too many headers");
	assert_int_equal(err.line, 11);
	lim.max_headers = 10;
	lim.max_header_line = 30;
	assert_int_equal(sip_msg_parse(&m, buf, (size_t)n, SIP_FRAMING_DATAGRAM,
				       &lim, &err),
			 -EMSGSIZE);
	assert_string_equal(err.reason, "Header line too long");
	lim.max_header_line = 100;
	lim.max_msg_size = (size_t)n - 1;
	assert_int_equal(sip_msg_parse(&m, buf, (size_t)n, SIP_FRAMING_DATAGRAM,
				       &lim, &err),
			 -EMSGSIZE);
	assert_int_equal(err.status, 513);
	lim.max_msg_size = (size_t)n;
	assert_int_equal(sip_msg_parse(&m, buf, (size_t)n, SIP_FRAMING_DATAGRAM,
				       &lim, &err),
			 0);
	assert_int_equal(m.nvia, 10);
}

static void test_stream_framing(void **state)
{
	(void)state;
	static const char two[] = "\r\n\r\n"
				  "MESSAGE sip:a@b SIP/2.0\r\nl: 5\r\n\r\nhello"
				  "\r\n"
				  "OPTIONS sip:a@b SIP/2.0\r\n"
				  "Content-Length:\r\n 0\r\n\r\n";
	struct sip_framer f;
	struct sip_error err;
	size_t len = 0, off = 0;

	sip_framer_init(&f, NULL);
	assert_int_equal(sip_framer_next(&f, two, 3, &len, &err),
			 SIP_FRAME_NEED_MORE);
	assert_int_equal(sip_framer_next(&f, two, sizeof(two) - 1, &len, &err),
			 SIP_FRAME_KEEPALIVE);
	assert_int_equal(len, 4); /* ping */
	off += len;
	/* byte by byte: NEED_MORE until the body is complete */
	size_t end = 0;
	for (size_t n = 1; n <= sizeof(two) - 1 - off; n++) {
		int k = sip_framer_next(&f, two + off, n, &len, &err);
		if (k == SIP_FRAME_MESSAGE) {
			end = n;
			break;
		}
		assert_int_equal(k, SIP_FRAME_NEED_MORE);
	}
	assert_int_equal(end, len);
	assert_int_equal(len, strlen("MESSAGE sip:a@b SIP/2.0\r\nl: 5\r\n\r\n"
				     "hello"));
	off += len;
	assert_int_equal(sip_framer_next(&f, two + off, sizeof(two) - 1 - off,
					 &len, &err),
			 SIP_FRAME_KEEPALIVE);
	assert_int_equal(len, 2); /* pong */
	off += len;
	assert_int_equal(sip_framer_next(&f, two + off, sizeof(two) - 1 - off,
					 &len, &err),
			 SIP_FRAME_MESSAGE);
	assert_int_equal(off + len, sizeof(two) - 1);

	/* Every frame parses in stream mode. */
	struct sip_msg m;
	assert_int_equal(sip_msg_parse(&m, two + off, len, SIP_FRAMING_STREAM,
				       NULL, &err),
			 0);
	assert_int_equal(m.content_length, 0);

	static const char nocl[] = "OPTIONS sip:a@b SIP/2.0\r\nTo: x\r\n\r\n";
	sip_framer_init(&f, NULL);
	assert_int_equal(
		sip_framer_next(&f, nocl, sizeof(nocl) - 1, &len, &err),
		-EBADMSG);
	assert_string_equal(err.reason, "Missing Content-Length");
	assert_int_equal(sip_msg_parse(&m, nocl, sizeof(nocl) - 1,
				       SIP_FRAMING_STREAM, NULL, &err),
			 -EBADMSG);

	/* A stream that never ends its headers is cut at the size limit. */
	struct sip_limits lim;
	char junk[300];
	memset(junk, 'a', sizeof(junk));
	sip_limits_default(&lim);
	lim.max_msg_size = 256;
	lim.max_header_line = 200;
	sip_framer_init(&f, &lim);
	assert_int_equal(sip_framer_next(&f, junk, 150, &len, &err),
			 SIP_FRAME_NEED_MORE);
	assert_int_equal(sip_framer_next(&f, junk, sizeof(junk), &len, &err),
			 -EMSGSIZE);
	/* and a body bigger than the limit is refused before it arrives */
	static const char big[] = "MESSAGE sip:a@b SIP/2.0\r\nl: 999\r\n\r\n";
	sip_framer_init(&f, &lim);
	assert_int_equal(sip_framer_next(&f, big, sizeof(big) - 1, &len, &err),
			 -EMSGSIZE);
	assert_int_equal(err.status, 513);
}

static void test_via_view(void **state)
{
	(void)state;
	struct sip_via v;

	assert_int_equal(sip_via_parse(SIP_STR_LIT("SIP  /   2.0\r\n /UDP\r\n"
						   "    192.0.2.2:5070;branch="
						   "390skdjuw;rport=5071;ttl=3"
						   ";maddr=224.0.0.1;received="
						   "[2001:db8::9:255];x"),
				       &v),
			 0);
	assert_str(v.transport, "UDP");
	assert_str(v.host, "192.0.2.2");
	assert_int_equal(v.host_kind, SIP_HOST_IPV4);
	assert_true(v.has_port);
	assert_int_equal(v.port, 5070);
	assert_str(v.branch, "390skdjuw");
	assert_true(v.has_rport && v.rport_value);
	assert_int_equal(v.rport, 5071);
	assert_int_equal(v.ttl, 3);
	assert_str(v.maddr, "224.0.0.1");
	assert_str(v.received, "[2001:db8::9:255]");

	assert_int_equal(
		sip_via_parse(SIP_STR_LIT("SIP/2.0/TLS [::1]:5061"), &v), 0);
	assert_int_equal(v.host_kind, SIP_HOST_IPV6);
	assert_str(v.host, "[::1]");
	assert_int_equal(v.port, 5061);
	assert_false(v.has_rport);

	static const char *const bad[] = {
		"SIP/2.0/UDP",
		"SIP/2.0 host",
		"SIP/2.0/UDP host:99999",
		"SIP/2.0/UDP host;;branch=x",
		"SIP/2.0/UDP host;branch=",
		"SIP/2.0/UDP host;ttl=256",
		"SIP/2.0/UDP host junk",
		"SIP/2.0/UDP [::1",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (sip_via_parse(sip_str_c(bad[i]), &v) != -EBADMSG)
			fail_msg("accepted '%s'", bad[i]);
	}
}

static void test_addr_view(void **state)
{
	(void)state;
	struct sip_addr a;
	char out[64];

	assert_int_equal(sip_addr_parse(SIP_STR_LIT("\"J Rosenberg \\\\\\\"\"  "
						    "     <sip:jdrosen@example."
						    "com>\r\n  ;\r\n  tag = "
						    "98asjd8"),
					&a),
			 0);
	assert_true(a.bracketed);
	assert_str(a.display, "\"J Rosenberg \\\\\\\"\"");
	assert_int_equal(sip_unquote(a.display, out, sizeof(out)), 14);
	assert_memory_equal(out, "J Rosenberg \\\"", 14);
	assert_str(a.uri.user, "jdrosen");
	assert_str(a.tag, "98asjd8");

	/* addr-spec: ';' starts header params, not URI params */
	assert_int_equal(sip_addr_parse(SIP_STR_LIT("sip:u@h;tag=1;lr"), &a),
			 0);
	assert_false(a.bracketed);
	assert_str(a.uri_text, "sip:u@h");
	assert_str(a.tag, "1");
	assert_int_equal(a.uri.params.len, 0);

	/* token display names, no space before '<' */
	assert_int_equal(
		sip_addr_parse(SIP_STR_LIT("Bob   Smith<sip:b@h;lr>"), &a), 0);
	assert_str(a.display, "Bob   Smith");
	assert_str(a.uri.params, ";lr");

	static const char *const bad[] = {
		"\"unterminated <sip:a@h>",
		"Bell, Alexander <sip:a@h>",
		"< sip:a@h >",
		"<sip:a@h",
		"sip:a@h?Route=x",
		"<sip:a@h> junk",
		"<sip:a@h>;tag=",
		"",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (sip_addr_parse(sip_str_c(bad[i]), &a) != -EBADMSG)
			fail_msg("accepted '%s'", bad[i]);
	}
}

static void test_contact_cseq_numbers(void **state)
{
	(void)state;
	struct sip_contact c;
	struct sip_cseq cs;
	uint32_t n;

	assert_int_equal(sip_contact_parse(SIP_STR_LIT("*"), &c), 0);
	assert_true(c.star);
	assert_int_equal(sip_contact_parse(SIP_STR_LIT("<sip:a@h>;q=0.5;"
						       "expires=3600"),
					   &c),
			 0);
	assert_false(c.star);
	assert_int_equal(c.q, 500);
	assert_true(c.has_expires);
	assert_int_equal(c.expires, 3600);
	assert_int_equal(
		sip_contact_parse(SIP_STR_LIT("<sip:a@h>;q=1.000"), &c), 0);
	assert_int_equal(c.q, 1000);
	assert_int_equal(sip_contact_parse(SIP_STR_LIT("<sip:a@h>;q=1.5"), &c),
			 -EBADMSG);
	/* an overlarge expires is treated as absent (§20.19) */
	assert_int_equal(sip_contact_parse(SIP_STR_LIT("<sip:a@h>;expires="
						       "280297596632815"),
					   &c),
			 0);
	assert_false(c.has_expires);

	assert_int_equal(sip_cseq_parse(SIP_STR_LIT("0009\r\n  INVITE"), &cs),
			 0);
	assert_int_equal(cs.num, 9);
	assert_int_equal(cs.method_id, SIP_METHOD_INVITE);
	assert_int_equal(sip_cseq_parse(SIP_STR_LIT("4294967295 ACK"), &cs), 0);
	assert_int_equal(cs.num, 4294967295u);
	assert_int_equal(sip_cseq_parse(SIP_STR_LIT("4294967296 ACK"), &cs),
			 -ERANGE);
	assert_int_equal(sip_cseq_parse(SIP_STR_LIT("1INVITE"), &cs), -EBADMSG);
	assert_int_equal(sip_cseq_parse(SIP_STR_LIT("1 INVITE x"), &cs),
			 -EBADMSG);

	assert_int_equal(sip_uint_parse(SIP_STR_LIT(" 0068 "), 255, &n), 0);
	assert_int_equal(n, 68);
	assert_int_equal(sip_uint_parse(SIP_STR_LIT("256"), 255, &n), -ERANGE);
	assert_int_equal(sip_uint_parse(SIP_STR_LIT("-1"), 255, &n), -EBADMSG);
}

static void test_auth_ctype(void **state)
{
	(void)state;
	struct sip_auth a;
	struct sip_ctype ct;
	sip_str v;

	assert_int_equal(
		sip_auth_parse(SIP_STR_LIT("Digest username=\"bob\", "
					   "realm=\"a, b\",nonce=\"n\", "
					   "uri=\"sip:x\", qop=auth, "
					   "nc=00000001, algorithm=SHA-256"),
			       &a),
		0);
	assert_str(a.scheme, "Digest");
	assert_int_equal(a.nparams, 7);
	assert_true(sip_auth_param(&a, "REALM", &v));
	assert_str(v, "a, b");
	assert_true(sip_auth_param(&a, "qop", &v));
	assert_str(v, "auth");
	assert_false(sip_auth_param(&a, "cnonce", &v));
	assert_int_equal(
		sip_auth_parse(SIP_STR_LIT("Basic dXNlcjpwYXNz=="), &a), 0);
	assert_int_equal(a.nparams, 1);
	assert_int_equal(sip_auth_parse(SIP_STR_LIT("Digest realm=\"x"), &a),
			 -EBADMSG);
	assert_int_equal(sip_auth_parse(SIP_STR_LIT("Digest a=1,,b=2"), &a),
			 -EBADMSG);

	assert_int_equal(sip_ctype_parse(SIP_STR_LIT("multipart/mixed ; "
						     "boundary=\"xx\""),
					 &ct),
			 0);
	assert_str(ct.type, "multipart");
	assert_str(ct.subtype, "mixed");
	assert_int_equal(sip_param_find(ct.params, "boundary", &v), 1);
	assert_str(v, "\"xx\"");
	assert_int_equal(sip_ctype_parse(SIP_STR_LIT("text"), &ct), -EBADMSG);
}

static unsigned verdict_of(const char *msg, enum sip_role role,
			   const struct sip_caps *caps)
{
	struct sip_msg m;
	struct sip_error err;

	parse_ok(&m, msg, strlen(msg));
	assert_int_equal(sip_msg_check(&m, &err), 0);
	int v = sip_request_verdict(&m, role, caps, &err);
	return v > 0 ? (unsigned)v : 0;
}

static void test_verdicts(void **state)
{
	(void)state;
	static const char *const tags[] = {"100rel", "timer", NULL};
	static const struct sip_caps caps = {NULL, tags, NULL};
	static const char req[] = "OPTIONS sip:a@h SIP/2.0\r\n"
				  "Via: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
				  "To: <sip:a@h>\r\nFrom: <sip:b@h>;tag=1\r\n"
				  "Call-ID: c\r\nCSeq: 1 OPTIONS\r\n"
				  "Require: timer, foo\r\nRequire: bar\r\n"
				  "Proxy-Require: 100rel\r\n"
				  "Max-Forwards: 0\r\n\r\n";
	struct sip_msg m;
	char out[64];

	assert_int_equal(verdict_of(req, SIP_ROLE_UAS, &caps), 420);
	parse_ok(&m, req, sizeof(req) - 1);
	assert_int_equal(
		sip_unsupported_tags(&m, SIP_ROLE_UAS, &caps, out, sizeof(out)),
		8);
	assert_memory_equal(out, "foo, bar", 8);
	assert_int_equal(sip_unsupported_tags(&m, SIP_ROLE_UAS, &caps, out, 4),
			 -ENOSPC);
	/* a proxy looks at Proxy-Require only, and at Max-Forwards */
	assert_int_equal(verdict_of(req, SIP_ROLE_PROXY, &caps), 483);
}

/* The top Via parsed once by sip_msg_parse(), and after a failed parse. */
static void test_top_via(void **state)
{
	static struct sip_msg m;
	struct sip_error err;
	struct sip_via via;
	sip_str value;
	(void)state;

	static const char good[] =
		"OPTIONS sip:a@h SIP/2.0\r\n"
		"Via: SIP/2.0/TCP h1:5070;branch=z9hG4bKa, SIP/2.0/UDP h2\r\n"
		"Via: SIP/2.0/UDP h3;branch=z9hG4bKc\r\n"
		"To: <sip:a@h>\r\nFrom: <sip:b@h>;tag=1\r\nCall-ID: c\r\n"
		"CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n\r\n";
	parse_ok(&m, good, sizeof(good) - 1);
	assert_int_equal(sip_msg_top_via(&m, &value, &via), 0);
	assert_str(value, "SIP/2.0/TCP h1:5070;branch=z9hG4bKa");
	assert_str(via.branch, "z9hG4bKa");
	assert_int_equal(via.port, 5070);
	assert_int_equal(sip_msg_check(&m, &err), 0);

	/* a bad top Via: the message parses, the check answers 400 */
	static const char bad_top[] =
		"OPTIONS sip:a@h SIP/2.0\r\n"
		"Via: SIP/2.0/UDP ;branch=z9hG4bKa\r\n"
		"To: <sip:a@h>\r\nFrom: <sip:b@h>;tag=1\r\nCall-ID: c\r\n"
		"CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n\r\n";
	parse_ok(&m, bad_top, sizeof(bad_top) - 1);
	assert_int_equal(sip_msg_top_via(&m, NULL, &via), -EBADMSG);
	assert_int_equal(sip_msg_check(&m, &err), -EBADMSG);
	assert_int_equal(err.status, 400);
	assert_string_equal(err.reason, "Malformed Via header");

	/* a bad second Via is still found */
	static const char bad_second[] =
		"OPTIONS sip:a@h SIP/2.0\r\n"
		"Via: SIP/2.0/UDP h1;branch=z9hG4bKa, SIP/2.0/UDP\r\n"
		"To: <sip:a@h>\r\nFrom: <sip:b@h>;tag=1\r\nCall-ID: c\r\n"
		"CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n\r\n";
	parse_ok(&m, bad_second, sizeof(bad_second) - 1);
	assert_int_equal(sip_msg_top_via(&m, NULL, NULL), 0);
	assert_int_equal(sip_msg_check(&m, &err), -EBADMSG);
	assert_string_equal(err.reason, "Malformed Via header");

	/* no Via */
	static const char none[] =
		"OPTIONS sip:a@h SIP/2.0\r\n"
		"To: <sip:a@h>\r\nFrom: <sip:b@h>;tag=1\r\nCall-ID: c\r\n"
		"CSeq: 1 OPTIONS\r\n\r\n";
	parse_ok(&m, none, sizeof(none) - 1);
	assert_int_equal(sip_msg_top_via(&m, &value, NULL), -ENOENT);

	/* a message that does not parse: the Via indexed before the defect
	 * is parsed on demand */
	static const char broken[] = "OPTIONS sip:a@h SIP/2.0\r\n"
				     "Via: SIP/2.0/UDP h9;branch=z9hG4bKz\r\n"
				     "Content-Length: x\r\n\r\n";
	assert_true(sip_msg_parse(&m, broken, sizeof(broken) - 1,
				  SIP_FRAMING_DATAGRAM, NULL, &err) < 0);
	assert_int_equal(sip_msg_top_via(&m, &value, &via), 0);
	assert_str(via.host, "h9");
}

static void test_writer(void **state)
{
	(void)state;
	struct sip_msg req, resp;
	struct sip_writer w;
	struct sip_error err;
	char buf[2048];

	parse_ok(&req, INVITE, sizeof(INVITE) - 1);
	sip_wr_init(&w, buf, sizeof(buf));
	sip_wr_response_to(&w, &req, 486, NULL, SIP_STR_LIT("xyz"));
	sip_wr_headerf(&w, "Retry-After", "%d", 30);
	int n = sip_wr_finish(&w, NULL, SIP_STR_NULL);
	assert_true(n > 0);
	parse_ok(&resp, buf, (size_t)n);
	assert_int_equal(resp.status, 486);
	assert_str(resp.reason, "Busy Here");
	assert_int_equal(sip_msg_hdr_count(&resp, SIP_HDR_VIA), 2);
	assert_int_equal(resp.nvia, 3);
	assert_str(sip_msg_hdr(&resp, SIP_HDR_TO)->value,
		   "Bob <sip:bob@biloxi.example.com>;tag=xyz");
	assert_str(sip_msg_hdr(&resp, SIP_HDR_CSEQ)->value, "314159 INVITE");
	assert_str(sip_msg_hdr(&resp, SIP_HDR_CALL_ID)->value,
		   "a84b4c76e66710@pc33.atlanta.example.com");
	assert_int_equal(sip_msg_check(&resp, &err), 0);
	assert_int_equal(resp.content_length, 0);

	/* RFC 3581: received added, the empty rport filled in, the other
	 * values of the first Via line and the other lines untouched */
	struct sip_via_rcvd rcvd = {SIP_STR_LIT("192.0.2.7"), 5099};
	sip_wr_init(&w, buf, sizeof(buf));
	sip_wr_response_to_rcvd(&w, &req, 200, NULL, SIP_STR_NULL, &rcvd);
	n = sip_wr_finish(&w, NULL, SIP_STR_NULL);
	assert_true(n > 0);
	parse_ok(&resp, buf, (size_t)n);
	assert_str(
		sip_msg_hdr(&resp, SIP_HDR_VIA)->value,
		"SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds"
		";rport=5099;received=192.0.2.7");
	assert_int_equal(resp.nvia, 3);
	struct sip_msg req2;
	static const char two_in_one[] =
		"OPTIONS sip:a@h SIP/2.0\r\n"
		"Via: SIP/2.0/UDP h1;received=1.1.1.1;branch=z9hG4bK1, "
		"SIP/2.0/UDP h2;branch=z9hG4bK2\r\n"
		"To: <sip:a@h>\r\nFrom: <sip:b@h>;tag=1\r\nCall-ID: c\r\n"
		"CSeq: 1 OPTIONS\r\n\r\n";
	parse_ok(&req2, two_in_one, sizeof(two_in_one) - 1);
	sip_wr_init(&w, buf, sizeof(buf));
	sip_wr_response_to_rcvd(&w, &req2, 200, NULL, SIP_STR_NULL, &rcvd);
	n = sip_wr_finish(&w, NULL, SIP_STR_NULL);
	assert_true(n > 0);
	parse_ok(&resp, buf, (size_t)n);
	assert_str(sip_msg_hdr(&resp, SIP_HDR_VIA)->value,
		   "SIP/2.0/UDP h1;branch=z9hG4bK1;received=192.0.2.7, "
		   "SIP/2.0/UDP h2;branch=z9hG4bK2");

	/* a malformed parameter: what follows it is kept as received */
	static const char bad_param[] =
		"OPTIONS sip:a@h SIP/2.0\r\n"
		"Via: SIP/2.0/UDP h1;branch=z9hG4bK1;rport;=x;y\r\n"
		"To: <sip:a@h>\r\nFrom: <sip:b@h>;tag=1\r\nCall-ID: c\r\n"
		"CSeq: 1 OPTIONS\r\n\r\n";
	parse_ok(&req2, bad_param, sizeof(bad_param) - 1);
	sip_wr_init(&w, buf, sizeof(buf));
	sip_wr_response_to_rcvd(&w, &req2, 400, NULL, SIP_STR_NULL, &rcvd);
	n = sip_wr_finish(&w, NULL, SIP_STR_NULL);
	assert_true(n > 0 && (size_t)n < sizeof(buf));
	buf[n] = '\0';
	assert_non_null(strstr(buf, "Via: SIP/2.0/UDP h1;branch=z9hG4bK1;"
				    "rport=5099;=x;y;received=192.0.2.7\r\n"));

	/* a request with a body */
	sip_wr_init(&w, buf, sizeof(buf));
	sip_wr_request_line(&w, SIP_STR_LIT("MESSAGE"), SIP_STR_LIT("sip:b@h"));
	sip_wr_header(&w, "Via", SIP_STR_LIT("SIP/2.0/UDP h;branch=z9hG4bK2"));
	n = sip_wr_finish(&w, "text/plain", SIP_STR_LIT("hi"));
	assert_true(n > 0);
	parse_ok(&resp, buf, (size_t)n);
	assert_str(resp.body, "hi");
	assert_str(sip_msg_hdr(&resp, SIP_HDR_CONTENT_TYPE)->value,
		   "text/plain");

	/* overflow never writes past the buffer */
	char small[40];
	memset(small, 'Z', sizeof(small));
	sip_wr_init(&w, small, 32);
	sip_wr_response_to(&w, &req, 200, NULL, SIP_STR_NULL);
	assert_int_equal(sip_wr_finish(&w, NULL, SIP_STR_NULL), -ENOSPC);
	assert_true(w.len <= 32);
	for (size_t i = 32; i < sizeof(small); i++)
		assert_int_equal(small[i], 'Z');
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request_index),
		cmocka_unit_test(test_hdr_lookup),
		cmocka_unit_test(test_response),
		cmocka_unit_test(test_start_line_errors),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_stream_framing),
		cmocka_unit_test(test_via_view),
		cmocka_unit_test(test_addr_view),
		cmocka_unit_test(test_contact_cseq_numbers),
		cmocka_unit_test(test_auth_ctype),
		cmocka_unit_test(test_verdicts),
		cmocka_unit_test(test_writer),
		cmocka_unit_test(test_top_via),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
