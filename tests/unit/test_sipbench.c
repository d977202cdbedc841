/** @file test_sipbench.c  Unit tests for sipbench's histogram, message
 * templates, digest responses (RFC 2617, RFC 7616 vectors) and deadline
 * heap. */
#include "sipbench/sipbench.h"
#include "sipmsg/sipmsg.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define S(lit) SIP_STR_LIT(lit)

static void assert_slice(sip_str s, const char *expect)
{
	size_t n = strlen(expect);

	if (s.len != n || (n && memcmp(s.p, expect, n) != 0))
		fail_msg("got \"%.*s\", expected \"%s\"", SIP_STR_FMT(s),
			 expect);
}

/* Within 1/128 of the true value, as the bucket layout promises. */
static void assert_near(uint64_t got, uint64_t want)
{
	uint64_t diff = got > want ? got - want : want - got;

	if (diff * 128 > want)
		fail_msg("got %llu, expected %llu", (unsigned long long)got,
			 (unsigned long long)want);
}

static void test_hist_uniform(void **state)
{
	struct sb_hist *h = malloc(sizeof(*h));

	(void)state;
	assert_non_null(h);
	sb_hist_init(h);
	assert_int_equal(sb_hist_percentile(h, 50), 0);
	for (uint64_t v = 1; v <= 100000; v++)
		sb_hist_record(h, v);
	assert_int_equal(h->count, 100000);
	assert_int_equal(h->min, 1);
	assert_int_equal(h->max, 100000);
	assert_near(sb_hist_percentile(h, 50), 50000);
	assert_near(sb_hist_percentile(h, 90), 90000);
	assert_near(sb_hist_percentile(h, 99), 99000);
	assert_near(sb_hist_percentile(h, 99.9), 99900);
	assert_int_equal(sb_hist_percentile(h, 100), 100000);
	assert_int_equal(sb_hist_percentile(h, 0), 1);
	free(h);
}

static void test_hist_exact_low_and_merge(void **state)
{
	struct sb_hist *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));

	(void)state;
	assert_non_null(a);
	assert_non_null(b);
	sb_hist_init(a);
	sb_hist_init(b);
	/* 90 values of 10 us and 10 of 200 us: exact below 256. */
	for (int i = 0; i < 90; i++)
		sb_hist_record(a, 10);
	for (int i = 0; i < 10; i++)
		sb_hist_record(b, 200);
	sb_hist_merge(a, b);
	assert_int_equal(a->count, 100);
	assert_int_equal(sb_hist_percentile(a, 50), 10);
	assert_int_equal(sb_hist_percentile(a, 90), 10);
	assert_int_equal(sb_hist_percentile(a, 91), 200);
	assert_int_equal(sb_hist_percentile(a, 99.9), 200);
	/* A huge value lands in the last bucket, reported as the max. */
	sb_hist_record(a, UINT64_C(1) << 50);
	assert_int_equal(sb_hist_index(UINT64_C(1) << 50), SB_HIST_BUCKETS - 1);
	assert_int_equal(sb_hist_percentile(a, 100), UINT64_C(1) << 50);
	free(a);
	free(b);
}

static void test_hist_index_contiguous(void **state)
{
	unsigned prev = 0;

	(void)state;
	/* Indexes never skip and never go back. */
	for (uint64_t v = 1; v < (UINT64_C(1) << 20); v += 1 + v / 512) {
		unsigned i = sb_hist_index(v);

		assert_true(i == prev || i == prev + 1);
		prev = i;
	}
	assert_true(sb_hist_index((UINT64_C(1) << SB_HIST_MAX_BITS) - 1) <
		    SB_HIST_BUCKETS);
}

static void test_tmpl_render(void **state)
{
	static struct sb_tmpl t;
	sip_str v[SB_F__COUNT] = {0};
	struct sip_msg *m = malloc(sizeof(*m));
	struct sip_error err;
	char out[1024];
	const struct sip_hdr *h;
	struct sip_via via;
	sip_str cur, item;
	int len;

	(void)state;
	assert_non_null(m);
	assert_int_equal(
		sb_tmpl_compile(
			&t,
			"OPTIONS {ruri} SIP/2.0\r\n"
			"Via: SIP/2.0/UDP {lhost}:{lport};branch={branch}\r\n"
			"From: <sip:{user}@example.com>;tag={ftag}\r\n"
			"To: <sip:{to}@example.com>{totag}\r\n"
			"Call-ID: {callid}\r\n"
			"CSeq: {cseq} OPTIONS\r\n"
			"{auth}Max-Forwards: 70\r\n"
			"Content-Length: 0\r\n\r\n"),
		0);
	v[SB_F_RURI] = S("sip:service@example.com");
	v[SB_F_LHOST] = S("127.0.0.1");
	v[SB_F_LPORT] = S("5062");
	v[SB_F_BRANCH] = S("z9hG4bK-1");
	v[SB_F_USER] = S("user7");
	v[SB_F_FTAG] = S("f1");
	v[SB_F_TO] = S("service");
	v[SB_F_CALLID] = S("abc@x");
	v[SB_F_CSEQ] = S("42");
	len = sb_tmpl_render(&t, v, out, sizeof(out));
	assert_true(len > 0);
	assert_int_equal(sip_msg_parse(m, out, (size_t)len,
				       SIP_FRAMING_DATAGRAM, NULL, &err),
			 0);
	assert_slice(m->ruri, "sip:service@example.com");
	assert_slice(sip_msg_hdr(m, SIP_HDR_CALL_ID)->value, "abc@x");
	assert_slice(sip_msg_hdr(m, SIP_HDR_CSEQ)->value, "42 OPTIONS");
	assert_slice(sip_msg_hdr(m, SIP_HDR_TO)->value,
		     "<sip:service@example.com>");
	assert_null(sip_msg_hdr(m, SIP_HDR_AUTHORIZATION));
	h = sip_msg_hdr(m, SIP_HDR_VIA);
	cur = h->value;
	assert_int_equal(sip_list_next(&cur, &item), 1);
	assert_int_equal(sip_via_parse(item, &via), 0);
	assert_slice(via.branch, "z9hG4bK-1");
	assert_int_equal(via.port, 5062);

	/* Same template, other values: a header line and a To tag appear. */
	v[SB_F_CSEQ] = S("43");
	v[SB_F_TOTAG] = S(";tag=t9");
	v[SB_F_AUTH] = S("Authorization: Digest username=\"user7\"\r\n");
	len = sb_tmpl_render(&t, v, out, sizeof(out));
	assert_true(len > 0);
	assert_int_equal(sip_msg_parse(m, out, (size_t)len,
				       SIP_FRAMING_DATAGRAM, NULL, &err),
			 0);
	assert_slice(sip_msg_hdr(m, SIP_HDR_CSEQ)->value, "43 OPTIONS");
	assert_slice(sip_msg_hdr(m, SIP_HDR_TO)->value,
		     "<sip:service@example.com>;tag=t9");
	assert_non_null(sip_msg_hdr(m, SIP_HDR_AUTHORIZATION));

	/* Too small a buffer is reported, not overrun. */
	assert_int_equal(sb_tmpl_render(&t, v, out, 10), -ENOSPC);
	free(m);
}

static void test_tmpl_errors(void **state)
{
	static struct sb_tmpl t;

	(void)state;
	assert_int_equal(sb_tmpl_compile(&t, "X {nosuch} Y"), -EINVAL);
	assert_int_equal(sb_tmpl_compile(&t, "X {branch"), -EINVAL);
	assert_int_equal(sb_tmpl_compile(&t, "{user}{user}"), 0);
	assert_int_equal(t.nsegs, 2);
}

static void test_hex_dec(void **state)
{
	char b[24];

	(void)state;
	assert_int_equal(sb_hex(b, 0xabc, 8), 8);
	assert_memory_equal(b, "00000abc", 8);
	assert_int_equal(sb_dec(b, 0), 1);
	assert_memory_equal(b, "0", 1);
	assert_int_equal(sb_dec(b, 18446744073709551615ull), 20);
	assert_memory_equal(b, "18446744073709551615", 20);
}

/* RFC 7616 §3.9.1: the same credentials with MD5 and with SHA-256. */
static void test_digest_rfc7616(void **state)
{
	struct sb_hasher h;
	char out[130];
	struct sb_digest_in in = {
		.alg = SB_ALG_MD5,
		.user = S("Mufasa"),
		.realm = S("http-auth@example.org"),
		.password = S("Circle of Life"),
		.method = S("GET"),
		.uri = S("/dir/index.html"),
		.nonce = S("7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"),
		.cnonce = S("f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"),
		.nc = S("00000001"),
		.qop = S("auth"),
	};

	(void)state;
	assert_int_equal(sb_hasher_init(&h), 0);
	assert_int_equal(sb_digest_response(&h, &in, out, sizeof(out)), 32);
	assert_string_equal(out, "8ca523f5e9506fed4657c9700eebdbec");
	in.alg = SB_ALG_SHA256;
	assert_int_equal(sb_digest_response(&h, &in, out, sizeof(out)), 64);
	assert_string_equal(out, "753927fa0e85d155564e2e272a28d1802ca10daf4496"
				 "794697cf8db5856cb6c1");
	assert_int_equal(sb_digest_response(&h, &in, out, 10), -ENOSPC);
	sb_hasher_free(&h);
}

/* RFC 2617 §3.5. */
static void test_digest_rfc2617(void **state)
{
	struct sb_hasher h;
	char out[130];
	struct sb_digest_in in = {
		.alg = SB_ALG_MD5,
		.user = S("Mufasa"),
		.realm = S("testrealm@host.com"),
		.password = S("Circle Of Life"),
		.method = S("GET"),
		.uri = S("/dir/index.html"),
		.nonce = S("dcd98b7102dd2f0e8b11d0f600bfb0c093"),
		.cnonce = S("0a4f113b"),
		.nc = S("00000001"),
		.qop = S("auth"),
	};

	(void)state;
	assert_int_equal(sb_hasher_init(&h), 0);
	assert_int_equal(sb_digest_response(&h, &in, out, sizeof(out)), 32);
	assert_string_equal(out, "6629fae49393a05397450978507c4ef1");
	sb_hasher_free(&h);
}

/* A challenge read from a header and answered: the header carries the
 * RFC 7616 response for those inputs. */
static void test_digest_header(void **state)
{
	struct sb_hasher h;
	struct sb_challenge ch;
	char out[600];
	int n;

	(void)state;
	assert_int_equal(sb_hasher_init(&h), 0);
	assert_int_equal(sb_challenge_parse(
				 S("Digest realm=\"http-auth@example.org\", "
				   "qop=\"auth, auth-int\", algorithm=SHA-256, "
				   "nonce=\"7ypf/xlj9XXwfDPEoM4URrv/"
				   "xwf94BcCAzFZH4GiTo0v\", "
				   "opaque=\"FQhe/"
				   "qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""),
				 false, &ch),
			 0);
	assert_true(ch.valid);
	assert_true(ch.qop_auth);
	assert_int_equal(ch.alg, SB_ALG_SHA256);
	n = sb_digest_header(&h, &ch, S("Mufasa"), S("Circle of Life"),
			     S("GET"), S("/dir/index.html"), 1,
			     S("f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"),
			     out, sizeof(out));
	assert_true(n > 0);
	out[n] = '\0';
	assert_non_null(
		strstr(out, "Authorization: Digest username=\"Mufasa\""));
	assert_non_null(strstr(out, "response=\"753927fa0e85d155564e2e272a28d18"
				    "02ca10daf4496794697cf8db5856cb6c1\""));
	assert_non_null(strstr(out, "qop=auth, nc=00000001"));
	assert_non_null(strstr(
		out,
		"opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""));
	assert_memory_equal(out + n - 2, "\r\n", 2);

	/* Without qop: RFC 2069 form, and Proxy-Authorization for 407. */
	assert_int_equal(
		sb_challenge_parse(S("Digest realm=\"r\", nonce=\"n\""), true,
				   &ch),
		0);
	assert_false(ch.qop_auth);
	assert_int_equal(ch.alg, SB_ALG_MD5);
	n = sb_digest_header(&h, &ch, S("u"), S("p"), S("REGISTER"), S("sip:d"),
			     1, S("c"), out, sizeof(out));
	assert_true(n > 0);
	out[n] = '\0';
	assert_non_null(strstr(out, "Proxy-Authorization: Digest "));
	assert_null(strstr(out, "cnonce"));
	assert_int_equal(sb_digest_header(&h, &ch, S("u"), S("p"),
					  S("REGISTER"), S("sip:d"), 1, S("c"),
					  out, 20),
			 -ENOSPC);

	/* What we cannot answer. */
	assert_int_equal(sb_challenge_parse(S("Basic realm=\"r\""), false, &ch),
			 -ENOTSUP);
	assert_int_equal(
		sb_challenge_parse(S("Digest realm=\"r\", nonce=\"n\", "
				     "algorithm=MD5-sess"),
				   false, &ch),
		-ENOTSUP);
	assert_int_equal(
		sb_challenge_parse(S("Digest realm=\"r\", nonce=\"n\", "
				     "qop=\"auth-int\""),
				   false, &ch),
		-ENOTSUP);
	assert_int_equal(
		sb_challenge_parse(S("Digest realm=\"r\""), false, &ch),
		-EBADMSG);
	sb_hasher_free(&h);
}

static void test_heap(void **state)
{
	struct sb_heap h;
	uint32_t id;
	uint64_t at, last = 0;
	unsigned n = 0;

	(void)state;
	assert_int_equal(sb_heap_init(&h, 100), 0);
	assert_false(sb_heap_top(&h, &id, &at));
	for (uint32_t i = 0; i < 100; i++)
		sb_heap_set(&h, i, (i * 37u) % 101u);
	sb_heap_set(&h, 5, 1000); /* move later */
	sb_heap_set(&h, 6, 0);	  /* move earlier */
	sb_heap_del(&h, 7);
	sb_heap_del(&h, 7); /* absent: no-op */
	assert_true(sb_heap_top(&h, &id, &at));
	assert_int_equal(id, 0); /* 0 * 37 = 0, and 6 is also 0 */
	while (sb_heap_top(&h, &id, &at)) {
		assert_true(at >= last);
		assert_int_not_equal(id, 7);
		last = at;
		sb_heap_del(&h, id);
		n++;
	}
	assert_int_equal(n, 99);
	assert_int_equal(last, 1000);
	sb_heap_free(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hist_uniform),
		cmocka_unit_test(test_hist_exact_low_and_merge),
		cmocka_unit_test(test_hist_index_contiguous),
		cmocka_unit_test(test_tmpl_render),
		cmocka_unit_test(test_tmpl_errors),
		cmocka_unit_test(test_hex_dec),
		cmocka_unit_test(test_digest_rfc7616),
		cmocka_unit_test(test_digest_rfc2617),
		cmocka_unit_test(test_digest_header),
		cmocka_unit_test(test_heap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
