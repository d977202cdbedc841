/**
 * @file test_auth.c  Unit tests for src/auth: the RFC 7616 and RFC 2617
 * digest examples, challenges, nonce lifetime and tampering, nonce-count
 * replay and eviction, unknown user versus wrong password, the SQLite user
 * store (no plaintext in the file), the failure limiter and the
 * address-of-record check.
 */
#include "auth/auth.h"
#include "sipmsg/sipmsg.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#define S(lit) SIP_STR_LIT(lit)
#define REALM "example.com"
#define RURI "sip:example.com"

/* ------------------------------------------------------------------------ */
/* The RFC examples                                                         */
/* ------------------------------------------------------------------------ */

/* RFC 7616 §3.9.1: Mufasa / "Circle of Life", GET /dir/index.html. */
#define R7616_REALM "http-auth@example.org"
#define R7616_NONCE "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
#define R7616_CNONCE "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"

static void test_rfc7616_md5(void **state)
{
	char ha1[SIP_DIGEST_HEX_MAX], resp[SIP_DIGEST_HEX_MAX];

	(void)state;
	assert_int_equal(sip_digest_ha1(SIP_DIGEST_MD5, S("Mufasa"),
					S(R7616_REALM), S("Circle of Life"),
					ha1),
			 32);
	assert_int_equal(sip_digest_response(
				 SIP_DIGEST_MD5, sip_str_c(ha1), S(R7616_NONCE),
				 S("00000001"), S(R7616_CNONCE), S("auth"),
				 S("GET"), S("/dir/index.html"), resp),
			 32);
	assert_string_equal(resp, "8ca523f5e9506fed4657c9700eebdbec");
}

static void test_rfc7616_sha256(void **state)
{
	char ha1[SIP_DIGEST_HEX_MAX], resp[SIP_DIGEST_HEX_MAX];

	(void)state;
	assert_int_equal(sip_digest_ha1(SIP_DIGEST_SHA256, S("Mufasa"),
					S(R7616_REALM), S("Circle of Life"),
					ha1),
			 64);
	assert_int_equal(sip_digest_response(SIP_DIGEST_SHA256, sip_str_c(ha1),
					     S(R7616_NONCE), S("00000001"),
					     S(R7616_CNONCE), S("auth"),
					     S("GET"), S("/dir/index.html"),
					     resp),
			 64);
	assert_string_equal(resp, "753927fa0e85d155564e2e272a28d180"
				  "2ca10daf4496794697cf8db5856cb6c1");
}

/* RFC 2617 §3.5: Mufasa / "Circle Of Life" in testrealm@host.com. */
static void test_rfc2617(void **state)
{
	char ha1[SIP_DIGEST_HEX_MAX], resp[SIP_DIGEST_HEX_MAX];

	(void)state;
	sip_digest_ha1(SIP_DIGEST_MD5, S("Mufasa"), S("testrealm@host.com"),
		       S("Circle Of Life"), ha1);
	assert_string_equal(ha1, "939e7578ed9e3c518a452acee763bce9");
	sip_digest_response(SIP_DIGEST_MD5, sip_str_c(ha1),
			    S("dcd98b7102dd2f0e8b11d0f600bfb0c093"),
			    S("00000001"), S("0a4f113b"), S("auth"), S("GET"),
			    S("/dir/index.html"), resp);
	assert_string_equal(resp, "6629fae49393a05397450978507c4ef1");
}

/* ------------------------------------------------------------------------ */
/* A verifier with a fake clock, fixed randomness and one user in memory    */
/* ------------------------------------------------------------------------ */

static const uint8_t secret[32] = "0123456789abcdef0123456789abcdef";

struct fx {
	struct sip_digest *d;
	uint64_t now;
	uint32_t rand_ctr;
	int store_rc; /* when non-zero, the lookup fails with it */
};

static uint64_t fake_clock(void *arg)
{
	return ((struct fx *)arg)->now;
}

static int fake_rand(void *arg, uint8_t *out, size_t len)
{
	struct fx *f = arg;

	for (size_t i = 0; i < len; i++)
		out[i] = (uint8_t)(f->rand_ctr >> (8 * (i % 4)));
	f->rand_ctr++;
	return 0;
}

/* alice / "wonderland" in example.com, HA1 computed on demand. */
static int mem_ha1(void *arg, sip_str user, sip_str realm,
		   enum sip_digest_alg alg, char *out, size_t cap)
{
	struct fx *f = arg;

	if (f->store_rc)
		return f->store_rc;
	if (!sip_str_eq(user, S("alice")) || !sip_str_eq(realm, S(REALM)))
		return -ENOENT;
	assert_true(cap >= SIP_DIGEST_HEX_MAX);
	return sip_digest_ha1(alg, user, realm, S("wonderland"), out);
}

static struct fx *fx_new(size_t nc_slots, unsigned algs)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct sip_digest_config cfg;

	assert_non_null(f);
	f->now = 1700000000;
	sip_digest_config_default(&cfg);
	cfg.secret = secret;
	cfg.secret_len = sizeof(secret);
	cfg.ha1 = mem_ha1;
	cfg.ha1_arg = f;
	cfg.clock = fake_clock;
	cfg.clock_arg = f;
	cfg.rand = fake_rand;
	cfg.rand_arg = f;
	cfg.nc_slots = nc_slots;
	cfg.algs = algs;
	assert_int_equal(sip_digest_create(&cfg, &f->d), 0);
	return f;
}

static void fx_free(struct fx *f)
{
	sip_digest_destroy(f->d);
	free(f);
}

/* The nonce in a challenge value, copied into @p out. */
static void nonce_of(const char *challenge, char *out, size_t cap)
{
	struct sip_auth a;
	sip_str v;

	assert_int_equal(sip_auth_parse(sip_str_c(challenge), &a), 0);
	assert_true(sip_auth_param(&a, "nonce", &v));
	assert_true(v.len < cap);
	memcpy(out, v.p, v.len);
	out[v.len] = '\0';
}

static void fresh_nonce(struct fx *f, char *nonce)
{
	assert_int_equal(sip_digest_nonce(f->d, S(REALM), nonce, 64), 43);
}

/* Credentials as a client computes them. */
static void creds(char *out, size_t cap, enum sip_digest_alg alg,
		  const char *user, const char *realm, const char *password,
		  const char *nonce, unsigned nc, const char *uri)
{
	char ha1[SIP_DIGEST_HEX_MAX], resp[SIP_DIGEST_HEX_MAX], ncs[9];

	snprintf(ncs, sizeof(ncs), "%08x", nc);
	sip_digest_ha1(alg, sip_str_c(user), sip_str_c(realm),
		       sip_str_c(password), ha1);
	sip_digest_response(alg, sip_str_c(ha1), sip_str_c(nonce),
			    sip_str_c(ncs), S("0a4f113b"), S("auth"),
			    S("REGISTER"), sip_str_c(uri), resp);
	snprintf(out, cap,
		 "Digest username=\"%s\", realm=\"%s\", nonce=\"%s\", "
		 "uri=\"%s\", response=\"%s\", algorithm=%s, "
		 "cnonce=\"0a4f113b\", "
		 "qop=auth, nc=%s",
		 user, realm, nonce, uri, resp, sip_digest_alg_name(alg), ncs);
}

static const struct sip_digest_request req = {S("REGISTER"), S(RURI), S(REALM)};

static enum sip_digest_result check(struct fx *f, const char *value,
				    struct sip_digest_info *info)
{
	struct sip_digest_info local;

	return sip_digest_verify(f->d, sip_str_c(value), &req,
				 info ? info : &local);
}

/* ------------------------------------------------------------------------ */
/* Challenges and verification                                              */
/* ------------------------------------------------------------------------ */

static void test_challenge_headers(void **state)
{
	struct fx *f = fx_new(0, 0);
	char buf[2048], n1[64], n2[64];
	struct sip_writer w;
	struct sip_msg msg;
	const struct sip_hdr *h;
	int len;

	(void)state;
	memset(buf, 0, sizeof(buf));
	sip_wr_init(&w, buf, sizeof(buf));
	sip_wr_status_line(&w, 401, "Unauthorized");
	assert_int_equal(
		sip_digest_challenge_write(f->d, &w, false, S(REALM), false),
		0);
	len = sip_wr_finish(&w, NULL, SIP_STR_NULL);
	assert_true(len > 0);
	assert_int_equal(sip_msg_parse(&msg, buf, (size_t)len,
				       SIP_FRAMING_DATAGRAM, NULL, NULL),
			 0);
	assert_int_equal(sip_msg_hdr_count(&msg, SIP_HDR_WWW_AUTHENTICATE), 2);
	h = sip_msg_hdr(&msg, SIP_HDR_WWW_AUTHENTICATE);
	/* SHA-256 first (RFC 8760 §2.4), then MD5, one nonce for both. */
	assert_non_null(strstr(h->value.p, "algorithm=SHA-256"));
	assert_true(strstr(h->value.p, "algorithm=SHA-256") <
		    strstr(h->value.p, "algorithm=MD5"));
	assert_memory_equal(
		h->value.p, "Digest realm=\"example.com\", nonce=\"",
		sizeof("Digest realm=\"example.com\", nonce=\"") - 1);
	assert_non_null(strstr(h->value.p, "qop=\"auth\""));
	assert_non_null(strstr(h->value.p, "opaque=\""));
	assert_null(strstr(buf, "stale"));
	{
		char one[SIP_DIGEST_CHALLENGE_MAX];

		memcpy(one, h->value.p, h->value.len);
		one[h->value.len] = '\0';
		nonce_of(one, n1, sizeof(n1));
		h = sip_msg_hdr_next(&msg, h);
		memcpy(one, h->value.p, h->value.len);
		one[h->value.len] = '\0';
		nonce_of(one, n2, sizeof(n2));
		assert_string_equal(n1, n2);
	}

	/* stale=true, the proxy header, MD5 only. */
	memset(buf, 0, sizeof(buf));
	sip_wr_init(&w, buf, sizeof(buf));
	sip_wr_status_line(&w, 407, "Proxy Authentication Required");
	assert_int_equal(
		sip_digest_challenge_write(f->d, &w, true, S(REALM), true), 0);
	len = sip_wr_finish(&w, NULL, SIP_STR_NULL);
	assert_true(len > 0);
	assert_non_null(strstr(buf, "Proxy-Authenticate: Digest"));
	assert_non_null(strstr(buf, ", stale=true\r\n"));
	assert_int_equal(sip_digest_challenge_write(f->d, &w, true,
						    S("bad\"realm"), false),
			 -EINVAL);
	fx_free(f);

	f = fx_new(0, SIP_DIGEST_ALG_BIT(SIP_DIGEST_MD5));
	memset(buf, 0, sizeof(buf));
	sip_wr_init(&w, buf, sizeof(buf));
	sip_wr_status_line(&w, 401, "Unauthorized");
	sip_digest_challenge_write(f->d, &w, false, S(REALM), false);
	assert_true(sip_wr_finish(&w, NULL, SIP_STR_NULL) > 0);
	assert_null(strstr(buf, "SHA-256"));
	assert_non_null(strstr(buf, "algorithm=MD5"));
	/* A client answering with SHA-256 anyway gets a new challenge. */
	{
		char nonce[64], c[1024];

		fresh_nonce(f, nonce);
		creds(c, sizeof(c), SIP_DIGEST_SHA256, "alice", REALM,
		      "wonderland", nonce, 1, RURI);
		assert_int_equal(check(f, c, NULL), SIP_DIGEST_BAD_CREDENTIALS);
	}
	fx_free(f);
}

static void test_verify_ok(void **state)
{
	struct fx *f = fx_new(0, 0);
	struct sip_digest_info info;
	char nonce[64], c[1024];

	(void)state;
	for (int alg = SIP_DIGEST_MD5; alg <= SIP_DIGEST_SHA256; alg++) {
		fresh_nonce(f, nonce);
		creds(c, sizeof(c), (enum sip_digest_alg)alg, "alice", REALM,
		      "wonderland", nonce, 1, RURI);
		assert_int_equal(check(f, c, &info), SIP_DIGEST_OK);
		assert_string_equal(info.username, "alice");
		assert_int_equal(info.alg, alg);
		assert_int_equal(info.nc, 1);
	}
	/* No algorithm parameter means MD5; the Request-URI compared as a
	 * URI (§19.1.4), not as bytes. */
	fresh_nonce(f, nonce);
	creds(c, sizeof(c), SIP_DIGEST_MD5, "alice", REALM, "wonderland", nonce,
	      1, "sip:EXAMPLE.com");
	char *alg = strstr(c, ", algorithm=MD5");
	memmove(alg, alg + 15, strlen(alg + 15) + 1);
	assert_int_equal(check(f, c, &info), SIP_DIGEST_OK);
	fx_free(f);
}

static void test_nonce_lifetime(void **state)
{
	struct fx *f = fx_new(0, 0);
	struct sip_digest_info info;
	char nonce[64], c[1024];
	uint64_t t0 = f->now;

	(void)state;
	fresh_nonce(f, nonce);
	f->now = t0 + 299;
	creds(c, sizeof(c), SIP_DIGEST_MD5, "alice", REALM, "wonderland", nonce,
	      1, RURI);
	assert_int_equal(check(f, c, NULL), SIP_DIGEST_OK);
	f->now = t0 + 300;
	creds(c, sizeof(c), SIP_DIGEST_MD5, "alice", REALM, "wonderland", nonce,
	      2, RURI);
	assert_int_equal(check(f, c, NULL), SIP_DIGEST_OK);
	/* Expired but authentic and correct: stale. */
	f->now = t0 + 301;
	creds(c, sizeof(c), SIP_DIGEST_MD5, "alice", REALM, "wonderland", nonce,
	      3, RURI);
	assert_int_equal(check(f, c, &info), SIP_DIGEST_STALE);
	assert_string_equal(info.reason, "nonce expired");
	/* Expired with a wrong password: not stale, just wrong. */
	creds(c, sizeof(c), SIP_DIGEST_MD5, "alice", REALM, "guess", nonce, 4,
	      RURI);
	assert_int_equal(check(f, c, NULL), SIP_DIGEST_BAD_CREDENTIALS);
	/* Issued in the future (clock stepped back): not fresh. */
	f->now = t0 + 1000;
	fresh_nonce(f, nonce);
	f->now = t0;
	creds(c, sizeof(c), SIP_DIGEST_MD5, "alice", REALM, "wonderland", nonce,
	      1, RURI);
	assert_int_equal(check(f, c, NULL), SIP_DIGEST_STALE);
	fx_free(f);

	/* A configured lifetime. */
	struct sip_digest_config cfg;
	struct fx *g = calloc(1, sizeof(*g));
	assert_non_null(g);
	g->now = 5000;
	sip_digest_config_default(&cfg);
	cfg.secret = secret;
	cfg.secret_len = sizeof(secret);
	cfg.ha1 = mem_ha1;
	cfg.ha1_arg = g;
	cfg.clock = fake_clock;
	cfg.clock_arg = g;
	cfg.nonce_lifetime = 10;
	assert_int_equal(sip_digest_create(&cfg, &g->d), 0);
	fresh_nonce(g, nonce);
	g->now += 11;
	creds(c, sizeof(c), SIP_DIGEST_SHA256, "alice", REALM, "wonderland",
	      nonce, 1, RURI);
	assert_int_equal(check(g, c, NULL), SIP_DIGEST_STALE);
	fx_free(g);
}

static void test_tampered_nonce(void **state)
{
	struct fx *f = fx_new(0, 0);
	struct sip_digest_info info;
	char nonce[64], other[64], c[1024];

	(void)state;
	fresh_nonce(f, nonce);
	/* Each character changed in turn (the response is recomputed, as an
	 * attacker who knows the password of some account would). */
	for (size_t i = 0; i < strlen(nonce); i++) {
		char t[64];

		strcpy(t, nonce);
		t[i] = t[i] == 'A' ? 'B' : 'A';
		creds(c, sizeof(c), SIP_DIGEST_MD5, "alice", REALM,
		      "wonderland", t, 1, RURI);
		assert_int_equal(check(f, c, &info),
				 SIP_DIGEST_BAD_CREDENTIALS);
		assert_string_equal(info.reason, "nonce not issued here");
	}
	/* A foreign nonce, a nonce for another realm. */
	creds(c, sizeof(c), SIP_DIGEST_MD5, "alice", REALM, "wonderland",
	      R7616_NONCE, 1, RURI);
	assert_int_equal(check(f, c, NULL), SIP_DIGEST_BAD_CREDENTIALS);
	assert_int_equal(sip_digest_nonce(f->d, S("other.org"), other, 64), 43);
	creds(c, sizeof(c), SIP_DIGEST_MD5, "alice", REALM, "wonderland", other,
	      1, RURI);
	assert_int_equal(check(f, c, NULL), SIP_DIGEST_BAD_CREDENTIALS);
	/* The same nonce from a verifier with another secret. */
	{
		struct sip_digest_config cfg;
		struct sip_digest *d2;
		static const uint8_t s2[16] = "another secret!";

		sip_digest_config_default(&cfg);
		cfg.secret = s2;
		cfg.secret_len = sizeof(s2);
		cfg.ha1 = mem_ha1;
		cfg.ha1_arg = f;
		assert_int_equal(sip_digest_create(&cfg, &d2), 0);
		creds(c, sizeof(c), SIP_DIGEST_MD5, "alice", REALM,
		      "wonderland", nonce, 1, RURI);
		assert_int_equal(
			sip_digest_verify(d2, sip_str_c(c), &req, &info),
			SIP_DIGEST_BAD_CREDENTIALS);
		sip_digest_destroy(d2);
	}
	/* And a wrong opaque. */
	creds(c, sizeof(c), SIP_DIGEST_MD5, "alice", REALM, "wonderland", nonce,
	      1, RURI);
	strcat(c, ", opaque=\"AAAAAAAAAAAAAAAA\"");
	assert_int_equal(check(f, c, &info), SIP_DIGEST_BAD_CREDENTIALS);
	assert_string_equal(info.reason, "opaque not issued here");
	fx_free(f);
}

static void test_opaque_round_trip(void **state)
{
	struct fx *f = fx_new(0, 0);
	char nonce[64], ch[SIP_DIGEST_CHALLENGE_MAX], c[1024];
	struct sip_auth a;
	sip_str opaque;

	(void)state;
	fresh_nonce(f, nonce);
	assert_true(sip_digest_challenge(f->d, S(REALM), SIP_DIGEST_SHA256,
					 sip_str_c(nonce), false, ch,
					 sizeof(ch)) > 0);
	assert_int_equal(sip_auth_parse(sip_str_c(ch), &a), 0);
	assert_true(sip_auth_param(&a, "opaque", &opaque));
	creds(c, sizeof(c), SIP_DIGEST_SHA256, "alice", REALM, "wonderland",
	      nonce, 1, RURI);
	size_t n = strlen(c);
	snprintf(c + n, sizeof(c) - n, ", opaque=\"%.*s\"",
		 SIP_STR_FMT(opaque));
	assert_int_equal(check(f, c, NULL), SIP_DIGEST_OK);
	assert_int_equal(sip_digest_challenge(f->d, S(REALM), SIP_DIGEST_MD5,
					      sip_str_c(nonce), true, ch, 20),
			 -ENOSPC);
	assert_int_equal(sip_digest_challenge(f->d, S(REALM), SIP_DIGEST_MD5,
					      S("a\"b"), false, ch, sizeof(ch)),
			 -EINVAL);
	fx_free(f);
}

static void test_nc_replay(void **state)
{
	struct fx *f = fx_new(0, 0);
	struct sip_digest_info info;
	char nonce[64], c[1024];

	(void)state;
	fresh_nonce(f, nonce);
	creds(c, sizeof(c), SIP_DIGEST_SHA256, "alice", REALM, "wonderland",
	      nonce, 1, RURI);
	assert_int_equal(check(f, c, NULL), SIP_DIGEST_OK);
	/* The same credentials again: a replay. */
	assert_int_equal(check(f, c, &info), SIP_DIGEST_STALE);
	assert_string_equal(info.reason, "nonce-count not increasing");
	creds(c, sizeof(c), SIP_DIGEST_SHA256, "alice", REALM, "wonderland",
	      nonce, 5, RURI);
	assert_int_equal(check(f, c, NULL), SIP_DIGEST_OK);
	creds(c, sizeof(c), SIP_DIGEST_SHA256, "alice", REALM, "wonderland",
	      nonce, 3, RURI);
	assert_int_equal(check(f, c, NULL), SIP_DIGEST_STALE);
	creds(c, sizeof(c), SIP_DIGEST_SHA256, "alice", REALM, "wonderland",
	      nonce, 6, RURI);
	assert_int_equal(check(f, c, NULL), SIP_DIGEST_OK);
	/* A wrong password does not move the count. */
	creds(c, sizeof(c), SIP_DIGEST_SHA256, "alice", REALM, "guess", nonce,
	      100, RURI);
	assert_int_equal(check(f, c, NULL), SIP_DIGEST_BAD_CREDENTIALS);
	creds(c, sizeof(c), SIP_DIGEST_SHA256, "alice", REALM, "wonderland",
	      nonce, 7, RURI);
	assert_int_equal(check(f, c, NULL), SIP_DIGEST_OK);
	fx_free(f);
}

static void test_nc_eviction(void **state)
{
	/* 16 slots: the 16 latest challenges are tracked. */
	struct fx *f = fx_new(16, 0);
	struct sip_digest_stats st;
	char nonces[200][64], c[1024];

	(void)state;
	for (int i = 0; i < 200; i++) {
		fresh_nonce(f, nonces[i]);
		f->now++;
	}
	/* the older ones were pushed out by newer challenges: stale */
	for (int i = 0; i < 200 - 16; i++) {
		creds(c, sizeof(c), SIP_DIGEST_MD5, "alice", REALM,
		      "wonderland", nonces[i], 1, RURI);
		assert_int_equal(check(f, c, NULL), SIP_DIGEST_STALE);
	}
	sip_digest_stats_get(f->d, &st);
	assert_int_equal(st.nc_evictions, 200 - 16);
	/* the latest 16 are tracked: nc=1 once, then only higher */
	for (int i = 200 - 16; i < 200; i++) {
		creds(c, sizeof(c), SIP_DIGEST_MD5, "alice", REALM,
		      "wonderland", nonces[i], 1, RURI);
		assert_int_equal(check(f, c, NULL), SIP_DIGEST_OK);
		assert_int_equal(check(f, c, NULL), SIP_DIGEST_STALE);
		creds(c, sizeof(c), SIP_DIGEST_MD5, "alice", REALM,
		      "wonderland", nonces[i], 2, RURI);
		assert_int_equal(check(f, c, NULL), SIP_DIGEST_OK);
	}
	/* a new challenge takes the slot of the oldest tracked one */
	fresh_nonce(f, nonces[0]);
	creds(c, sizeof(c), SIP_DIGEST_MD5, "alice", REALM, "wonderland",
	      nonces[0], 1, RURI);
	assert_int_equal(check(f, c, NULL), SIP_DIGEST_OK);
	creds(c, sizeof(c), SIP_DIGEST_MD5, "alice", REALM, "wonderland",
	      nonces[200 - 16], 3, RURI);
	assert_int_equal(check(f, c, NULL), SIP_DIGEST_STALE);
	fx_free(f);
}

struct race {
	struct fx *f;
	const char *creds;
	pthread_barrier_t *start;
	int ok, stale;
};

static void *race_thread(void *arg)
{
	struct race *r = arg;

	pthread_barrier_wait(r->start);
	for (int i = 0; i < 200; i++) {
		switch (check(r->f, r->creds, NULL)) {
		case SIP_DIGEST_OK:
			r->ok++;
			break;
		case SIP_DIGEST_STALE:
			r->stale++;
			break;
		default:
			break;
		}
	}
	return NULL;
}

/* The same credentials replayed from several threads at once are taken
 * exactly once. */
static void test_nc_threads(void **state)
{
	enum { NTHREADS = 4 };
	struct fx *f = fx_new(0, 0);
	pthread_barrier_t start;
	pthread_t t[NTHREADS];
	struct race r[NTHREADS];
	char nonce[64], c[1024];
	int ok = 0, stale = 0;

	(void)state;
	fresh_nonce(f, nonce);
	creds(c, sizeof(c), SIP_DIGEST_MD5, "alice", REALM, "wonderland", nonce,
	      1, RURI);
	assert_int_equal(pthread_barrier_init(&start, NULL, NTHREADS), 0);
	for (int i = 0; i < NTHREADS; i++) {
		r[i] = (struct race){f, c, &start, 0, 0};
		assert_int_equal(
			pthread_create(&t[i], NULL, race_thread, &r[i]), 0);
	}
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(t[i], NULL);
		ok += r[i].ok;
		stale += r[i].stale;
	}
	pthread_barrier_destroy(&start);
	assert_int_equal(ok, 1);
	assert_int_equal(stale, NTHREADS * 200 - 1);
	fx_free(f);
}

static void test_wrong_realm_uri_user(void **state)
{
	struct fx *f = fx_new(0, 0);
	struct sip_digest_info info;
	char nonce[64], c[1024];

	(void)state;
	fresh_nonce(f, nonce);
	creds(c, sizeof(c), SIP_DIGEST_MD5, "alice", "other.org", "wonderland",
	      nonce, 1, RURI);
	assert_int_equal(check(f, c, &info), SIP_DIGEST_BAD_CREDENTIALS);
	assert_string_equal(info.reason, "wrong realm");
	creds(c, sizeof(c), SIP_DIGEST_MD5, "alice", REALM, "wonderland", nonce,
	      1, "sip:other.org");
	assert_int_equal(check(f, c, &info), SIP_DIGEST_BAD_CREDENTIALS);
	assert_string_equal(info.reason, "uri is not the Request-URI");
	creds(c, sizeof(c), SIP_DIGEST_MD5, "bob", REALM, "wonderland", nonce,
	      1, RURI);
	assert_int_equal(check(f, c, &info), SIP_DIGEST_BAD_CREDENTIALS);
	assert_string_equal(info.username, "bob");
	/* Without a Request-URI to compare, any uri is taken. */
	{
		struct sip_digest_request r = {S("REGISTER"), SIP_STR_NULL,
					       S(REALM)};

		creds(c, sizeof(c), SIP_DIGEST_MD5, "alice", REALM,
		      "wonderland", nonce, 2, "sip:other.org");
		assert_int_equal(
			sip_digest_verify(f->d, sip_str_c(c), &r, &info),
			SIP_DIGEST_OK);
	}
	/* The method is part of the response. */
	{
		struct sip_digest_request r = {S("INVITE"), S(RURI), S(REALM)};

		creds(c, sizeof(c), SIP_DIGEST_MD5, "alice", REALM,
		      "wonderland", nonce, 3, RURI);
		assert_int_equal(
			sip_digest_verify(f->d, sip_str_c(c), &r, &info),
			SIP_DIGEST_BAD_CREDENTIALS);
	}
	fx_free(f);
}

static void test_unknown_user_same_as_wrong_password(void **state)
{
	struct fx *f = fx_new(0, 0);
	struct sip_digest_stats a0, a1, b1;
	struct sip_digest_info ia, ib;
	char nonce[64], c[1024];
	enum sip_digest_result ra, rb;

	(void)state;
	fresh_nonce(f, nonce);
	sip_digest_stats_get(f->d, &a0);
	creds(c, sizeof(c), SIP_DIGEST_SHA256, "alice", REALM, "guess", nonce,
	      1, RURI);
	ra = check(f, c, &ia);
	sip_digest_stats_get(f->d, &a1);
	creds(c, sizeof(c), SIP_DIGEST_SHA256, "mallory", REALM, "guess", nonce,
	      1, RURI);
	rb = check(f, c, &ib);
	sip_digest_stats_get(f->d, &b1);

	assert_int_equal(ra, SIP_DIGEST_BAD_CREDENTIALS);
	assert_int_equal(rb, ra);
	assert_string_equal(ia.reason, ib.reason);
	/* The same work: one substitute HA1, one lookup, one response. */
	assert_int_equal(a1.ha1_derived - a0.ha1_derived, 1);
	assert_int_equal(a1.ha1_lookups - a0.ha1_lookups, 1);
	assert_int_equal(a1.responses - a0.responses, 1);
	assert_int_equal(b1.ha1_derived - a1.ha1_derived, 1);
	assert_int_equal(b1.ha1_lookups - a1.ha1_lookups, 1);
	assert_int_equal(b1.responses - a1.responses, 1);

	/* The substitute HA1 never lets an unknown user in, even with the
	 * password of a known one. */
	creds(c, sizeof(c), SIP_DIGEST_SHA256, "mallory", REALM, "wonderland",
	      nonce, 2, RURI);
	assert_int_equal(check(f, c, NULL), SIP_DIGEST_BAD_CREDENTIALS);

	/* A failing store is an error, not a verdict on the password. */
	f->store_rc = -EIO;
	creds(c, sizeof(c), SIP_DIGEST_SHA256, "alice", REALM, "wonderland",
	      nonce, 3, RURI);
	assert_int_equal(check(f, c, NULL), SIP_DIGEST_ERROR);
	f->store_rc = 0;
	assert_int_equal(check(f, c, NULL), SIP_DIGEST_OK);
	fx_free(f);
}

static void test_malformed(void **state)
{
	struct fx *f = fx_new(0, 0);
	char nonce[64], c[1024], t[1200];
	struct sip_digest_stats st;

	(void)state;
	assert_int_equal(check(f, "", NULL), SIP_DIGEST_MISSING);
	assert_int_equal(check(f, "   ", NULL), SIP_DIGEST_MISSING);
	assert_int_equal(check(f, "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==", NULL),
			 SIP_DIGEST_MALFORMED);
	assert_int_equal(check(f, "Digest", NULL), SIP_DIGEST_MALFORMED);
	assert_int_equal(check(f, "Digest username=\"alice", NULL),
			 SIP_DIGEST_MALFORMED);
	assert_int_equal(check(f, "Digest ,,,", NULL), SIP_DIGEST_MALFORMED);

	fresh_nonce(f, nonce);
	creds(c, sizeof(c), SIP_DIGEST_MD5, "alice", REALM, "wonderland", nonce,
	      1, RURI);
	static const struct {
		const char *from, *to;
	} edits[] = {
		{"username=\"alice\", ", ""},
		{"realm=\"example.com\", ", ""},
		{"uri=\"sip:example.com\", ", ""},
		{", qop=auth", ""},
		{", qop=auth", ", qop=auth-int"},
		{", nc=00000001", ""},
		{", nc=00000001", ", nc=1"},
		{", nc=00000001", ", nc=0000000g"},
		{", nc=00000001", ", nc=00000000"},
		{"cnonce=\"0a4f113b\"", "cnonce=\"\""},
		{"algorithm=MD5", "algorithm=MD5-sess"},
		{"algorithm=MD5", "algorithm=SHA-512-256"},
		{"algorithm=MD5", "algorithm=SHA-256"}, /* length mismatch */
		{"username=\"alice\"", "username=\"alice\", username=\"bob\""},
		{"username=\"alice\"", "username*=UTF-8''alice"},
		{"username=\"alice\"", "username=\"alice\", userhash=true"},
		{"username=\"alice\"", "username=\"\""},
		{"username=\"alice\"",
		 "username="
		 "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		 "aaaaaaaaaaaaaaaaaa\""},
	};
	for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
		const char *at = strstr(c, edits[i].from);

		assert_non_null(at);
		snprintf(t, sizeof(t), "%.*s%s%s", (int)(at - c), c,
			 edits[i].to, at + strlen(edits[i].from));
		if (check(f, t, NULL) != SIP_DIGEST_MALFORMED)
			fail_msg("edit %zu not malformed: %s", i, t);
	}
	/* The response: not hex, too short. */
	char *r = strstr(c, "response=\"") + 10;
	char save = r[3];
	r[3] = 'x';
	assert_int_equal(check(f, c, NULL), SIP_DIGEST_MALFORMED);
	r[3] = save;
	/* Upper-case hex in the response is fine, and the unchanged
	 * credentials still pass after all of the above. */
	for (char *p = r; *p != '"'; p++)
		if (*p >= 'a' && *p <= 'f')
			*p = (char)(*p - 'a' + 'A');
	assert_int_equal(check(f, c, NULL), SIP_DIGEST_OK);
	sip_digest_stats_get(f->d, &st);
	assert_true(st.result[SIP_DIGEST_MALFORMED] >= 20);
	assert_int_equal(st.result[SIP_DIGEST_MISSING], 2);
	fx_free(f);
}

static void test_verify_msg(void **state)
{
	struct fx *f = fx_new(0, 0);
	struct sip_digest_info info;
	char nonce[64], ours[1024], theirs[1024], buf[4096];
	struct sip_msg msg;
	int n;

	(void)state;
	fresh_nonce(f, nonce);
	creds(ours, sizeof(ours), SIP_DIGEST_SHA256, "alice", REALM,
	      "wonderland", nonce, 1, RURI);
	creds(theirs, sizeof(theirs), SIP_DIGEST_MD5, "alice", "other.org", "x",
	      nonce, 1, RURI);
	n = snprintf(buf, sizeof(buf),
		     "REGISTER sip:example.com SIP/2.0\r\n"
		     "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n"
		     "Max-Forwards: 70\r\n"
		     "From: <sip:alice@example.com>;tag=1\r\n"
		     "To: <sip:alice@example.com>\r\n"
		     "Call-ID: c1\r\n"
		     "CSeq: 2 REGISTER\r\n"
		     "Authorization: %s\r\n"
		     "Authorization: %s\r\n"
		     "Content-Length: 0\r\n\r\n",
		     theirs, ours);
	assert_int_equal(sip_msg_parse(&msg, buf, (size_t)n,
				       SIP_FRAMING_DATAGRAM, NULL, NULL),
			 0);
	assert_int_equal(
		sip_digest_verify_msg(f->d, &msg, false, S(REALM), &info),
		SIP_DIGEST_OK);
	assert_string_equal(info.username, "alice");
	assert_int_equal(info.alg, SIP_DIGEST_SHA256);
	assert_int_equal(
		sip_digest_aor_check(&msg, sip_str_c(info.username), S(REALM)),
		0);
	/* A proxy looks at Proxy-Authorization only. */
	assert_int_equal(
		sip_digest_verify_msg(f->d, &msg, true, S(REALM), &info),
		SIP_DIGEST_MISSING);
	/* No credentials for our realm. */
	assert_int_equal(sip_digest_verify_msg(f->d, &msg, false,
					       S("example.net"), &info),
			 SIP_DIGEST_MISSING);
	fx_free(f);
}

/* ------------------------------------------------------------------------ */
/* Address of record                                                        */
/* ------------------------------------------------------------------------ */

static int aor(const char *method, const char *from, const char *to,
	       const char *user)
{
	char buf[2048];
	struct sip_msg msg;
	int n = snprintf(buf, sizeof(buf),
			 "%s sip:example.com SIP/2.0\r\n"
			 "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n"
			 "From: %s;tag=1\r\n"
			 "To: %s\r\n"
			 "Call-ID: c1\r\n"
			 "CSeq: 1 %s\r\n"
			 "Content-Length: 0\r\n\r\n",
			 method, from, to, method);

	assert_int_equal(sip_msg_parse(&msg, buf, (size_t)n,
				       SIP_FRAMING_DATAGRAM, NULL, NULL),
			 0);
	return sip_digest_aor_check(&msg, sip_str_c(user), S(REALM));
}

static void test_aor_check(void **state)
{
	(void)state;
	/* REGISTER: To is the address of record being bound. */
	assert_int_equal(aor("REGISTER", "<sip:bob@example.com>",
			     "<sip:alice@example.com>", "alice"),
			 0);
	assert_int_equal(aor("REGISTER", "<sip:alice@example.com>",
			     "<sip:bob@example.com>", "alice"),
			 -EPERM);
	/* Others: From. */
	assert_int_equal(aor("INVITE", "\"Alice\" <sip:alice@EXAMPLE.COM>",
			     "<sip:bob@example.com>", "alice"),
			 0);
	assert_int_equal(aor("MESSAGE", "<sips:alice@example.com>",
			     "<sip:bob@example.com>", "alice"),
			 0);
	assert_int_equal(aor("INVITE", "<sip:%61lice@example.com>",
			     "<sip:bob@example.com>", "alice"),
			 0);
	assert_int_equal(aor("INVITE", "<sip:bob@example.com>",
			     "<sip:alice@example.com>", "alice"),
			 -EPERM);
	assert_int_equal(aor("INVITE", "<sip:Alice@example.com>",
			     "<sip:bob@example.com>", "alice"),
			 -EPERM);
	assert_int_equal(aor("INVITE", "<sip:alice@example.org>",
			     "<sip:bob@example.com>", "alice"),
			 -EPERM);
	assert_int_equal(aor("INVITE", "<sip:example.com>",
			     "<sip:bob@example.com>", "alice"),
			 -EPERM);
	assert_int_equal(aor("INVITE", "<tel:+15551234>",
			     "<sip:bob@example.com>", "alice"),
			 -EPERM);
	assert_int_equal(aor("INVITE", "<sip:alicex@example.com>",
			     "<sip:bob@example.com>", "alice"),
			 -EPERM);
}

/* ------------------------------------------------------------------------ */
/* User store                                                               */
/* ------------------------------------------------------------------------ */

static void temp_db(char *path, size_t cap)
{
	snprintf(path, cap, "/tmp/test_auth_%ld_XXXXXX", (long)getpid());
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	unlink(path); /* the store creates it */
}

static void remove_db(const char *path)
{
	char p[512];

	unlink(path);
	snprintf(p, sizeof(p), "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", path);
	unlink(p);
}

static int count_user(void *arg, const struct sip_userdb_user *u)
{
	char *out = arg;

	strcat(out, u->username);
	strcat(out, "@");
	strcat(out, u->domain);
	strcat(out, " ");
	assert_true(u->created > 0);
	return 0;
}

static int count_domain(void *arg, const char *d)
{
	strcat(arg, d);
	strcat(arg, " ");
	return 0;
}

static int stop_at_first(void *arg, const struct sip_userdb_user *u)
{
	(void)u;
	++*(int *)arg;
	return 42;
}

/* True when @p needle occurs in the bytes of the file at @p path. */
static bool file_contains(const char *path, const char *needle)
{
	FILE *fp = fopen(path, "rb");
	static char buf[1 << 20];
	size_t n, k = strlen(needle);
	bool found = false;

	if (!fp)
		return false;
	n = fread(buf, 1, sizeof(buf), fp);
	fclose(fp);
	for (size_t i = 0; i + k <= n && !found; i++)
		found = memcmp(buf + i, needle, k) == 0;
	return found;
}

static void test_userdb(void **state)
{
	char path[256], list[512], ha1[SIP_DIGEST_HEX_MAX];
	char want[SIP_DIGEST_HEX_MAX];
	uint8_t s1[SIP_USERDB_SECRET_LEN], s2[SIP_USERDB_SECRET_LEN];
	static const uint8_t zero[SIP_USERDB_SECRET_LEN];
	struct sip_userdb *db;
	struct stat st;
	int stops = 0;

	(void)state;
	temp_db(path, sizeof(path));
	assert_int_equal(sip_userdb_open(path, &db), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	sip_userdb_secret(db, s1);
	assert_memory_not_equal(s1, zero, sizeof(s1));

	assert_int_equal(sip_userdb_domain_add(db, "Example.COM"), 0);
	assert_int_equal(sip_userdb_domain_add(db, "example.com"), -EEXIST);
	assert_int_equal(sip_userdb_domain_add(db, "example.org"), 0);
	assert_int_equal(sip_userdb_domain_add(db, "bad domain"), -EINVAL);
	assert_int_equal(sip_userdb_domain_add(db, ""), -EINVAL);
	assert_int_equal(sip_userdb_domain_add(db, "a..b"), -EINVAL);
	assert_int_equal(sip_userdb_domain_exists(db, S("EXAMPLE.com")), 1);
	assert_int_equal(sip_userdb_domain_exists(db, S("example.net")), 0);
	list[0] = '\0';
	assert_int_equal(sip_userdb_domain_list(db, count_domain, list), 0);
	assert_string_equal(list, "example.com example.org ");

	assert_int_equal(sip_userdb_user_add(db, "alice", "example.com",
					     "Tr0ub4dor&3-horse"),
			 0);
	assert_int_equal(sip_userdb_user_add(db, "alice", "EXAMPLE.com", "x"),
			 -EEXIST);
	assert_int_equal(sip_userdb_user_add(db, "bob", "example.com", "pw"),
			 0);
	assert_int_equal(sip_userdb_user_add(db, "carol", "example.org", "pw"),
			 0);
	assert_int_equal(sip_userdb_user_add(db, "dave", "example.net", "pw"),
			 -ENOENT);
	assert_int_equal(sip_userdb_user_add(db, "a b", "example.com", "pw"),
			 -EINVAL);
	assert_int_equal(sip_userdb_user_add(db, "a%41", "example.com", "pw"),
			 -EINVAL);
	assert_int_equal(sip_userdb_user_add(db, "a:b", "example.com", "pw"),
			 -EINVAL);
	assert_int_equal(sip_userdb_user_add(db, "eve", "example.com", ""),
			 -EINVAL);
	assert_int_equal(sip_userdb_user_add(db, "eve", "example.com", "a\nb"),
			 -EINVAL);

	list[0] = '\0';
	assert_int_equal(sip_userdb_user_list(db, NULL, count_user, list), 0);
	assert_string_equal(list, "alice@example.com bob@example.com "
				  "carol@example.org ");
	list[0] = '\0';
	assert_int_equal(
		sip_userdb_user_list(db, "example.org", count_user, list), 0);
	assert_string_equal(list, "carol@example.org ");
	assert_int_equal(sip_userdb_user_list(db, NULL, stop_at_first, &stops),
			 42);
	assert_int_equal(stops, 1);

	/* The stored HA1 is the digest of user:realm:password. */
	for (int alg = SIP_DIGEST_MD5; alg <= SIP_DIGEST_SHA256; alg++) {
		int len = (int)sip_digest_hex_len((enum sip_digest_alg)alg);

		assert_int_equal(sip_userdb_ha1(db, S("alice"),
						S("Example.com"),
						(enum sip_digest_alg)alg, ha1,
						sizeof(ha1)),
				 len);
		sip_digest_ha1((enum sip_digest_alg)alg, S("alice"), S(REALM),
			       S("Tr0ub4dor&3-horse"), want);
		assert_string_equal(ha1, want);
	}
	assert_int_equal(sip_userdb_ha1(db, S("alice"), S("example.org"),
					SIP_DIGEST_MD5, ha1, sizeof(ha1)),
			 -ENOENT);
	assert_int_equal(sip_userdb_ha1(db, S("nobody"), S(REALM),
					SIP_DIGEST_MD5, ha1, sizeof(ha1)),
			 -ENOENT);
	assert_int_equal(sip_userdb_ha1(db, S("alice"), S(REALM),
					SIP_DIGEST_SHA256, ha1, 64),
			 -ENOSPC);

	/* Password change. */
	assert_int_equal(sip_userdb_user_passwd(db, "alice", "example.com",
						"n3w-Passw0rd!"),
			 0);
	sip_userdb_ha1(db, S("alice"), S(REALM), SIP_DIGEST_MD5, ha1,
		       sizeof(ha1));
	sip_digest_ha1(SIP_DIGEST_MD5, S("alice"), S(REALM), S("n3w-Passw0rd!"),
		       want);
	assert_string_equal(ha1, want);
	assert_int_equal(sip_userdb_user_passwd(db, "zed", "example.com", "x"),
			 -ENOENT);

	/* Domains with users stay. */
	assert_int_equal(sip_userdb_domain_del(db, "example.org"), -ENOTEMPTY);
	assert_int_equal(sip_userdb_user_del(db, "carol", "example.org"), 0);
	assert_int_equal(sip_userdb_user_del(db, "carol", "example.org"),
			 -ENOENT);
	assert_int_equal(sip_userdb_domain_del(db, "example.org"), 0);
	assert_int_equal(sip_userdb_domain_del(db, "example.org"), -ENOENT);
	sip_userdb_close(db);

	/* No password in the file, in either form. */
	assert_false(file_contains(path, "Tr0ub4dor&3-horse"));
	assert_false(file_contains(path, "n3w-Passw0rd!"));
	assert_true(file_contains(path, want)); /* the check itself works */

	/* Reopening keeps the users and the secret. */
	assert_int_equal(sip_userdb_open(path, &db), 0);
	sip_userdb_secret(db, s2);
	assert_memory_equal(s1, s2, sizeof(s1));
	assert_int_equal(sip_userdb_ha1(db, S("bob"), S(REALM), SIP_DIGEST_MD5,
					ha1, sizeof(ha1)),
			 32);
	sip_userdb_close(db);
	remove_db(path);
}

static void test_userdb_with_verifier(void **state)
{
	char path[256], nonce[64], c[1024];
	uint8_t key[SIP_USERDB_SECRET_LEN];
	struct sip_digest_config cfg;
	struct sip_digest_info info;
	struct sip_userdb *db;
	struct sip_digest *d;

	(void)state;
	temp_db(path, sizeof(path));
	assert_int_equal(sip_userdb_open(path, &db), 0);
	assert_int_equal(sip_userdb_domain_add(db, REALM), 0);
	assert_int_equal(sip_userdb_user_add(db, "alice", REALM, "wonderland"),
			 0);
	sip_userdb_secret(db, key);
	sip_digest_config_default(&cfg);
	cfg.secret = key;
	cfg.secret_len = sizeof(key);
	cfg.ha1 = sip_userdb_ha1_cb;
	cfg.ha1_arg = db;
	assert_int_equal(sip_digest_create(&cfg, &d), 0);
	assert_int_equal(sip_digest_nonce(d, S(REALM), nonce, sizeof(nonce)),
			 43);
	creds(c, sizeof(c), SIP_DIGEST_SHA256, "alice", REALM, "wonderland",
	      nonce, 1, RURI);
	assert_int_equal(sip_digest_verify(d, sip_str_c(c), &req, &info),
			 SIP_DIGEST_OK);
	creds(c, sizeof(c), SIP_DIGEST_SHA256, "alice", REALM, "wrong", nonce,
	      2, RURI);
	assert_int_equal(sip_digest_verify(d, sip_str_c(c), &req, &info),
			 SIP_DIGEST_BAD_CREDENTIALS);
	creds(c, sizeof(c), SIP_DIGEST_SHA256, "nobody", REALM, "wrong", nonce,
	      2, RURI);
	assert_int_equal(sip_digest_verify(d, sip_str_c(c), &req, &info),
			 SIP_DIGEST_BAD_CREDENTIALS);
	sip_digest_destroy(d);
	sip_userdb_close(db);
	remove_db(path);
}

static void test_userdb_errors(void **state)
{
	char path[256];
	struct sip_userdb *db;
	FILE *fp;

	(void)state;
	assert_int_equal(sip_userdb_open("/nonexistent-dir/x.db", &db),
			 -ENOENT);
	assert_null(db);
	assert_int_equal(sip_userdb_open("", &db), -EINVAL);

	/* Not a database. */
	temp_db(path, sizeof(path));
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("this is not an SQLite database, just some text that is long "
	      "enough to have a header\n",
	      fp);
	fclose(fp);
	assert_int_equal(sip_userdb_open(path, &db), -EIO);
	remove_db(path);

	/* A schema newer than this code. */
	assert_int_equal(sip_userdb_open(path, &db), 0);
	sip_userdb_close(db);
	{
		char cmd[512];

		snprintf(cmd, sizeof(cmd),
			 "sqlite3 '%s' 'UPDATE auth_schema SET version = 99' "
			 "2>/dev/null",
			 path);
		if (system(cmd) == 0)
			assert_int_equal(sip_userdb_open(path, &db), -EPROTO);
	}
	remove_db(path);

	/* A read-only file (permissions do not bind root). */
	if (geteuid() != 0) {
		assert_int_equal(sip_userdb_open(path, &db), 0);
		assert_int_equal(sip_userdb_domain_add(db, REALM), 0);
		sip_userdb_close(db);
		assert_int_equal(chmod(path, 0400), 0);
		assert_int_equal(sip_userdb_open(path, &db), 0);
		assert_int_equal(sip_userdb_domain_add(db, "example.org"),
				 -EROFS);
		assert_int_equal(sip_userdb_domain_exists(db, S(REALM)), 1);
		sip_userdb_close(db);
		remove_db(path);
		/* Not created yet, in a directory we cannot write. */
		assert_int_equal(sip_userdb_open("/proc/x.db", &db) < 0, 1);
	}
}

/* ------------------------------------------------------------------------ */
/* Failure limiter                                                          */
/* ------------------------------------------------------------------------ */

struct limit_log {
	int calls;
	char addr[64];
	unsigned failures;
};

static void on_limit(void *arg, const char *addr, unsigned failures)
{
	struct limit_log *log = arg;

	log->calls++;
	snprintf(log->addr, sizeof(log->addr), "%s", addr);
	log->failures = failures;
}

static struct sockaddr_in v4(const char *a, uint16_t port)
{
	struct sockaddr_in in;

	memset(&in, 0, sizeof(in));
	in.sin_family = AF_INET;
	in.sin_port = htons(port);
	assert_int_equal(inet_pton(AF_INET, a, &in.sin_addr), 1);
	return in;
}

static struct sockaddr_in6 v6(const char *a)
{
	struct sockaddr_in6 in;

	memset(&in, 0, sizeof(in));
	in.sin6_family = AF_INET6;
	assert_int_equal(inet_pton(AF_INET6, a, &in.sin6_addr), 1);
	return in;
}

#define SA(x) ((const struct sockaddr *)&(x))

static void test_limit_window(void **state)
{
	struct limit_log log = {0};
	struct sip_authlimit_config cfg = {.window_ms = 1000,
					   .max_failures = 3,
					   .on_limit = on_limit,
					   .arg = &log};
	struct sip_authlimit *l;
	struct sockaddr_in a = v4("192.0.2.1", 5060), a2 = v4("192.0.2.1", 7),
			   b = v4("192.0.2.2", 5060);

	(void)state;
	assert_int_equal(sip_authlimit_create(&cfg, &l), 0);
	assert_int_equal(sip_authlimit_check(l, SA(a), 0), SIP_AUTHLIMIT_ALLOW);
	assert_int_equal(sip_authlimit_size(l), 0); /* checks add nothing */
	assert_int_equal(sip_authlimit_fail(l, SA(a), 0), 1);
	assert_int_equal(sip_authlimit_fail(l, SA(a2), 100), 2); /* port */
	assert_int_equal(sip_authlimit_check(l, SA(a), 200),
			 SIP_AUTHLIMIT_ALLOW);
	assert_int_equal(log.calls, 0);
	assert_int_equal(sip_authlimit_fail(l, SA(a), 300), 3);
	assert_int_equal(log.calls, 1);
	assert_string_equal(log.addr, "192.0.2.1");
	assert_int_equal(log.failures, 3);
	assert_int_equal(sip_authlimit_check(l, SA(a), 300),
			 SIP_AUTHLIMIT_REJECT);
	assert_int_equal(sip_authlimit_check(l, SA(b), 300),
			 SIP_AUTHLIMIT_ALLOW);
	/* More failures while limited: reported once. */
	sip_authlimit_fail(l, SA(a), 400);
	assert_int_equal(log.calls, 1);
	/* The window slides: at 1000 the previous window (4) still counts
	 * fully, at 1500 half of it (2 < 3). */
	assert_int_equal(sip_authlimit_check(l, SA(a), 1000),
			 SIP_AUTHLIMIT_REJECT);
	assert_int_equal(sip_authlimit_check(l, SA(a), 1500),
			 SIP_AUTHLIMIT_ALLOW);
	assert_int_equal(sip_authlimit_check(l, SA(a), 5000),
			 SIP_AUTHLIMIT_ALLOW);
	/* Reached again: reported again. */
	for (int i = 0; i < 3; i++)
		sip_authlimit_fail(l, SA(a), 5000);
	assert_int_equal(log.calls, 2);
	/* Unknown families are let through and not counted. */
	{
		struct sockaddr un = {.sa_family = AF_UNIX};

		assert_int_equal(sip_authlimit_fail(l, &un, 0), 0);
		assert_int_equal(sip_authlimit_check(l, &un, 0),
				 SIP_AUTHLIMIT_ALLOW);
	}
	sip_authlimit_destroy(l);

	/* Silent mode, IPv6 per /64, IPv4-mapped as IPv4. */
	cfg.silent = true;
	assert_int_equal(sip_authlimit_create(&cfg, &l), 0);
	struct sockaddr_in6 x1 = v6("2001:db8:1:2::1"),
			    x2 = v6("2001:db8:1:2:ffff::9"),
			    y = v6("2001:db8:1:3::1"),
			    m = v6("::ffff:192.0.2.7");
	struct sockaddr_in m4 = v4("192.0.2.7", 1);
	sip_authlimit_fail(l, SA(x1), 0);
	sip_authlimit_fail(l, SA(x2), 0);
	sip_authlimit_fail(l, SA(x1), 0);
	assert_int_equal(sip_authlimit_check(l, SA(x2), 1), SIP_AUTHLIMIT_DROP);
	assert_string_equal(log.addr, "2001:db8:1:2::/64");
	assert_int_equal(sip_authlimit_check(l, SA(y), 1), SIP_AUTHLIMIT_ALLOW);
	for (int i = 0; i < 3; i++)
		sip_authlimit_fail(l, SA(m), 0);
	assert_int_equal(sip_authlimit_check(l, SA(m4), 1), SIP_AUTHLIMIT_DROP);
	sip_authlimit_destroy(l);
}

static void test_limit_eviction(void **state)
{
	struct sip_authlimit_config cfg = {
		.capacity = 4, .window_ms = 10000, .max_failures = 2};
	struct sip_authlimit *l;
	struct sockaddr_in a[6];
	char ip[32];

	(void)state;
	for (int i = 0; i < 6; i++) {
		snprintf(ip, sizeof(ip), "198.51.100.%d", i + 1);
		a[i] = v4(ip, 5060);
	}
	assert_int_equal(sip_authlimit_create(&cfg, &l), 0);
	for (int i = 0; i < 4; i++) {
		sip_authlimit_fail(l, SA(a[i]), 0);
		sip_authlimit_fail(l, SA(a[i]), 0);
	}
	assert_int_equal(sip_authlimit_size(l), 4);
	/* Seeing a[0] again makes a[1] the least recent. */
	assert_int_equal(sip_authlimit_check(l, SA(a[0]), 1),
			 SIP_AUTHLIMIT_REJECT);
	sip_authlimit_fail(l, SA(a[4]), 2);
	assert_int_equal(sip_authlimit_size(l), 4);
	assert_int_equal(sip_authlimit_check(l, SA(a[1]), 3),
			 SIP_AUTHLIMIT_ALLOW); /* forgotten */
	assert_int_equal(sip_authlimit_check(l, SA(a[0]), 3),
			 SIP_AUTHLIMIT_REJECT);
	assert_int_equal(sip_authlimit_check(l, SA(a[2]), 3),
			 SIP_AUTHLIMIT_REJECT);
	assert_int_equal(sip_authlimit_check(l, SA(a[3]), 3),
			 SIP_AUTHLIMIT_REJECT);
	/* Churn through many sources: the table stays at its capacity. */
	for (int i = 0; i < 1000; i++) {
		struct sockaddr_in x;

		snprintf(ip, sizeof(ip), "10.0.%d.%d", i / 250, i % 250);
		x = v4(ip, 1);
		sip_authlimit_fail(l, SA(x), 10);
	}
	assert_int_equal(sip_authlimit_size(l), 4);
	sip_authlimit_destroy(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc7616_md5),
		cmocka_unit_test(test_rfc7616_sha256),
		cmocka_unit_test(test_rfc2617),
		cmocka_unit_test(test_challenge_headers),
		cmocka_unit_test(test_verify_ok),
		cmocka_unit_test(test_nonce_lifetime),
		cmocka_unit_test(test_tampered_nonce),
		cmocka_unit_test(test_opaque_round_trip),
		cmocka_unit_test(test_nc_replay),
		cmocka_unit_test(test_nc_eviction),
		cmocka_unit_test(test_nc_threads),
		cmocka_unit_test(test_wrong_realm_uri_user),
		cmocka_unit_test(test_unknown_user_same_as_wrong_password),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_verify_msg),
		cmocka_unit_test(test_aor_check),
		cmocka_unit_test(test_userdb),
		cmocka_unit_test(test_userdb_with_verifier),
		cmocka_unit_test(test_userdb_errors),
		cmocka_unit_test(test_limit_window),
		cmocka_unit_test(test_limit_eviction),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
