/** @file test_multipart.c  Unit tests of the multipart body iterator. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "sipmsg/sipmsg.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#ifndef SIPD_TEST_DATA
#define SIPD_TEST_DATA "tests/data"
#endif

static char file_buf[4096];
static struct sip_msg msg;

static void assert_str(sip_str s, const char *expect)
{
	assert_non_null(s.p);
	assert_int_equal(s.len, strlen(expect));
	assert_memory_equal(s.p, expect, s.len);
}

static size_t load(const char *rel)
{
	char path[512];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/corpus/%s", SIPD_TEST_DATA, rel);
	f = fopen(path, "rb");
	assert_non_null(f);
	n = fread(file_buf, 1, sizeof(file_buf), f);
	fclose(f);
	assert_true(n < sizeof(file_buf));
	return n;
}

/** Start an iterator over @p body with Content-Type @p ctype_value. */
static int start(struct sip_mpart_iter *it, const char *ctype_value,
		 const char *body, size_t len)
{
	static struct sip_ctype ct;

	assert_int_equal(sip_ctype_parse(sip_str_c(ctype_value), &ct), 0);
	return sip_mpart_init(it, &ct, (sip_str){body, len});
}

#define START(it, ct, lit) start((it), (ct), (lit), sizeof(lit) - 1)

/* RFC 4475 §3.1.1.11: a text part and a binary part with NUL octets. */
static void test_mpart01(void **state)
{
	(void)state;
	size_t n = load("rfc4475/mpart01.dat");
	const struct sip_hdr *h;
	struct sip_ctype ct;
	struct sip_mpart_iter it;
	struct sip_mpart part;
	static const unsigned char head[] = {0x30, 0x82, 0x01, 0x52};
	static const unsigned char tail[] = {0xbc, 0x99, 0xd0, 0x05};

	assert_int_equal(sip_msg_parse(&msg, file_buf, n, SIP_FRAMING_DATAGRAM,
				       NULL, NULL),
			 0);
	assert_int_equal(msg.body.len, 553);
	h = sip_msg_hdr(&msg, SIP_HDR_CONTENT_TYPE);
	assert_non_null(h);
	assert_int_equal(sip_ctype_parse(h->value, &ct), 0);
	assert_str(ct.subtype, "mixed");
	assert_int_equal(sip_mpart_init(&it, &ct, msg.body), 0);
	assert_str(it.boundary, "7a9cbec02ceef655");

	assert_int_equal(sip_mpart_next(&it, &part), 1);
	assert_str(part.ctype, "text/plain");
	assert_str(part.headers, "Content-Type: text/plain\r\n"
				 "Content-Transfer-Encoding: binary");
	assert_str(part.body, "Hello");

	assert_int_equal(sip_mpart_next(&it, &part), 1);
	assert_str(part.ctype, "application/octet-stream");
	assert_str(part.headers, "Content-Type: application/octet-stream\r\n"
				 "Content-Transfer-Encoding: binary");
	assert_int_equal(part.body.len, 342);
	assert_memory_equal(part.body.p, head, sizeof(head));
	assert_memory_equal(part.body.p + part.body.len - sizeof(tail), tail,
			    sizeof(tail));
	/* two NUL octets, the first at offset 181 */
	const char *nul = memchr(part.body.p, '\0', part.body.len);
	assert_non_null(nul);
	assert_int_equal(nul - part.body.p, 181);
	size_t nuls = 0;
	for (size_t i = 0; i < part.body.len; i++)
		nuls += part.body.p[i] == '\0';
	assert_int_equal(nuls, 2);
	/* the body ends right before the CRLF of the close delimiter */
	assert_ptr_equal(part.body.p + part.body.len + 2,
			 msg.body.p + msg.body.len - 22);

	assert_int_equal(sip_mpart_next(&it, &part), 0);
	assert_int_equal(sip_mpart_next(&it, &part), 0);
}

/* RFC 2046 §5.1.1 example: quoted boundary, preamble, epilogue, a part
 * without headers. */
static void test_quoted_preamble(void **state)
{
	(void)state;
	static const char body[] =
		"This is the preamble.  It is to be ignored, though it\r\n"
		"is a handy place for composition agents to include an\r\n"
		"explanatory note to non-MIME conformant readers.\r\n"
		"\r\n"
		"--simple boundary\r\n"
		"\r\n"
		"This is implicitly typed plain US-ASCII text.\r\n"
		"It does NOT end with a linebreak.\r\n"
		"--simple boundary\r\n"
		"Content-type: text/plain; charset=us-ascii\r\n"
		"\r\n"
		"This is explicitly typed plain US-ASCII text.\r\n"
		"It DOES end with a linebreak.\r\n"
		"\r\n"
		"--simple boundary--\r\n"
		"\r\n"
		"This is the epilogue.  It is also to be ignored.\r\n";
	struct sip_mpart_iter it;
	struct sip_mpart part;

	assert_int_equal(START(&it,
			       "multipart/mixed; boundary=\"simple "
			       "boundary\"",
			       body),
			 0);
	assert_str(it.boundary, "simple boundary");

	assert_int_equal(sip_mpart_next(&it, &part), 1);
	assert_int_equal(part.headers.len, 0);
	assert_null(part.ctype.p);
	assert_str(part.body,
		   "This is implicitly typed plain US-ASCII text.\r\n"
		   "It does NOT end with a linebreak.");

	assert_int_equal(sip_mpart_next(&it, &part), 1);
	assert_str(part.headers, "Content-type: text/plain; charset=us-ascii");
	assert_str(part.ctype, "text/plain; charset=us-ascii");
	assert_str(part.body,
		   "This is explicitly typed plain US-ASCII text.\r\n"
		   "It DOES end with a linebreak.\r\n");

	assert_int_equal(sip_mpart_next(&it, &part), 0);
}

static void test_missing_close(void **state)
{
	(void)state;
	static const char body[] = "--b\r\n"
				   "Content-Type: text/plain\r\n"
				   "\r\n"
				   "one\r\n"
				   "--b\r\n"
				   "Content-Type: text/plain\r\n"
				   "\r\n"
				   "two\r\n";
	struct sip_mpart_iter it;
	struct sip_mpart part;

	assert_int_equal(START(&it, "multipart/mixed;boundary=b", body), 0);
	assert_int_equal(sip_mpart_next(&it, &part), 1);
	assert_str(part.body, "one");
	assert_int_equal(sip_mpart_next(&it, &part), -EBADMSG);

	/* a delimiter as the very last line, without a close */
	static const char body2[] = "--b\r\n\r\none\r\n--b\r\n";
	assert_int_equal(START(&it, "multipart/mixed;boundary=b", body2), 0);
	assert_int_equal(sip_mpart_next(&it, &part), 1);
	assert_int_equal(sip_mpart_next(&it, &part), -EBADMSG);
}

static void test_no_first_delimiter(void **state)
{
	(void)state;
	struct sip_mpart_iter it;
	struct sip_mpart part;
	static const char body[] = "just text\r\n-- b\r\n--bb--\r\n";

	assert_int_equal(START(&it, "multipart/mixed;boundary=b", body), 0);
	assert_int_equal(sip_mpart_next(&it, &part), -EBADMSG);

	/* the delimiter must start a line: "x--b" is preamble, so the close
	 * delimiter is the first one and there are no parts */
	static const char body2[] = "x--b\r\n\r\none\r\n--b--\r\n";
	assert_int_equal(START(&it, "multipart/mixed;boundary=b", body2), 0);
	assert_int_equal(sip_mpart_next(&it, &part), 0);

	assert_int_equal(START(&it, "multipart/mixed;boundary=b", ""), 0);
	assert_int_equal(sip_mpart_next(&it, &part), -EBADMSG);
}

static void test_bad_boundary(void **state)
{
	(void)state;
	struct sip_mpart_iter it;

	assert_int_equal(START(&it, "multipart/mixed", "--b--"), -EINVAL);
	assert_int_equal(START(&it, "multipart/mixed;charset=x", "--b--"),
			 -EINVAL);
	assert_int_equal(START(&it, "multipart/mixed;boundary=\"\"", "--b--"),
			 -EINVAL);
	assert_int_equal(sip_mpart_init(&it, NULL, SIP_STR_LIT("--b--")),
			 -EINVAL);
}

/* Compact and lower-case header names, folding, LF line ends, padding,
 * look-alike boundaries inside a body, NUL in a body. */
static void test_headers_and_binary(void **state)
{
	(void)state;
	static const char body[] = "--xyz  \n"
				   "c: application/sdp\n"
				   "\n"
				   "v=0\n"
				   "--xyzw is not a delimiter\n"
				   " --xyz neither\n"
				   "--xyz\r\n"
				   "X-Other: 1\r\n"
				   "content-type : text/plain;\r\n"
				   " charset=utf-8\r\n"
				   "\r\n"
				   "a\0b\r\n"
				   "\r\n"
				   "--xyz--";
	struct sip_mpart_iter it;
	struct sip_mpart part;

	assert_int_equal(
		START(&it, "multipart/related;type=x;boundary=xyz", body), 0);
	assert_int_equal(sip_mpart_next(&it, &part), 1);
	assert_str(part.ctype, "application/sdp");
	assert_str(part.headers, "c: application/sdp");
	assert_str(part.body, "v=0\n"
			      "--xyzw is not a delimiter\n"
			      " --xyz neither");

	assert_int_equal(sip_mpart_next(&it, &part), 1);
	assert_str(part.ctype, "text/plain;\r\n charset=utf-8");
	assert_int_equal(part.body.len, 5);
	assert_memory_equal(part.body.p, "a\0b\r\n", 5);
	assert_int_equal(sip_mpart_next(&it, &part), 0);
}

static void test_empty_parts(void **state)
{
	(void)state;
	struct sip_mpart_iter it;
	struct sip_mpart part;
	static const char body[] = "--b\r\n--b\r\n\r\n--b--";

	assert_int_equal(START(&it, "multipart/mixed;boundary=b", body), 0);
	assert_int_equal(sip_mpart_next(&it, &part), 1);
	assert_int_equal(part.headers.len, 0);
	assert_int_equal(part.body.len, 0);
	assert_int_equal(sip_mpart_next(&it, &part), 1);
	assert_int_equal(part.headers.len, 0);
	assert_int_equal(part.body.len, 0);
	assert_int_equal(sip_mpart_next(&it, &part), 0);

	/* close right away: no parts */
	assert_int_equal(START(&it, "multipart/mixed;boundary=b", "--b--"), 0);
	assert_int_equal(sip_mpart_next(&it, &part), 0);

	/* a header line without a colon is malformed */
	static const char bad[] = "--b\r\nnot a header\r\n\r\nx\r\n--b--";
	assert_int_equal(START(&it, "multipart/mixed;boundary=b", bad), 0);
	assert_int_equal(sip_mpart_next(&it, &part), -EBADMSG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mpart01),
		cmocka_unit_test(test_quoted_preamble),
		cmocka_unit_test(test_missing_close),
		cmocka_unit_test(test_no_first_delimiter),
		cmocka_unit_test(test_bad_boundary),
		cmocka_unit_test(test_headers_and_binary),
		cmocka_unit_test(test_empty_parts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
