/**
 * @file test_proxy.c  The sans-I/O proxy core: request checks, location
 * lookup, forwarding, forking, response selection, CANCEL, timers,
 * loop detection, redirect and proxy authentication.
 *
 * Each test runs a proxy on an in-memory location store with a fake clock;
 * every message the proxy sends is captured (bytes and destination) and
 * parsed back. Responses of the callees are written from the captured
 * requests with sip_wr_response_to().
 */
#include "auth/auth.h"
#include "location/location.h"
#include "proxy/proxy.h"
#include "resolv/resolv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#define PROXY_PORT 5070
#define MAXSENT 64

struct sent {
	struct proxy_peer to;
	char buf[8192];
	size_t len;
	struct sip_msg msg;
};

struct fx {
	struct loc_store *store;
	struct sip_digest *digest;
	struct proxy *p;
	struct proxy_config cfg;
	uint64_t now;
	int user_known;
	bool auth;
	struct sent sent[MAXSENT];
	unsigned nsent;
	struct proxy_peer caller;
	char req[8192];
	struct sip_msg msg;
};

static int cb_send(void *arg, const struct proxy_peer *to, const char *buf,
		   size_t len)
{
	struct fx *f = arg;
	struct sent *s;

	assert_true(f->nsent < MAXSENT);
	assert_true(len < sizeof(s->buf));
	s = &f->sent[f->nsent++];
	s->to = *to;
	memcpy(s->buf, buf, len);
	s->len = len;
	assert_int_equal(sip_msg_parse(&s->msg, s->buf, len,
				       SIP_FRAMING_DATAGRAM, NULL, NULL),
			 0);
	return 0;
}

static bool cb_serves(void *arg, sip_str host)
{
	(void)arg;
	return sip_str_ieq_c(host, "example.com");
}

static int cb_user(void *arg, sip_str user, sip_str domain)
{
	(void)user;
	(void)domain;
	return ((struct fx *)arg)->user_known;
}

static bool cb_auth(void *arg)
{
	return ((struct fx *)arg)->auth;
}

static int64_t cb_wall(void *arg)
{
	(void)arg;
	return 1700000000;
}

static int ha1_fn(void *arg, sip_str user, sip_str realm,
		  enum sip_digest_alg alg, char *out, size_t cap)
{
	(void)arg;
	(void)user;
	(void)realm;
	(void)alg;
	snprintf(out, cap, "%032x", 7);
	return 32;
}

static void set_v4(struct sockaddr_storage *ss, const char *ip, uint16_t port)
{
	struct sockaddr_in *a = (struct sockaddr_in *)ss;

	memset(ss, 0, sizeof(*ss));
	a->sin_family = AF_INET;
	a->sin_port = htons(port);
	inet_pton(AF_INET, ip, &a->sin_addr);
}

static int setup_mode(void **state, enum proxy_mode mode)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct loc_config lc = {0};
	struct proxy_callbacks cb = {.send = cb_send,
				     .serves = cb_serves,
				     .user_exists = cb_user,
				     .auth_on = cb_auth};
	struct sip_digest_config dc;
	static const uint8_t secret[32] = {1, 2, 3};

	assert_non_null(f);
	lc.now = 1700000000;
	assert_int_equal(loc_store_open(&lc, &f->store, NULL, 0), 0);
	sip_digest_config_default(&dc);
	dc.secret = secret;
	dc.secret_len = sizeof(secret);
	dc.ha1 = ha1_fn;
	assert_int_equal(sip_digest_create(&dc, &f->digest), 0);
	proxy_config_default(&f->cfg);
	f->cfg.mode = mode;
	f->cfg.worker = 3;
	f->cfg.seed = 42;
	f->cfg.store = f->store;
	f->cfg.digest = f->digest;
	f->cfg.fork_timeout_ms = 10000;
	f->cfg.wall_now = cb_wall;
	f->cfg.local[0].transport = SIP_TP_UDP;
	set_v4(&f->cfg.local[0].addr, "192.0.2.10", PROXY_PORT);
	f->cfg.nlocal = 1;
	assert_int_equal(proxy_create(&f->cfg, &cb, f, &f->p), 0);
	f->caller.transport = SIP_TP_UDP;
	set_v4(&f->caller.addr, "192.0.2.1", 5060);
	f->now = 1000;
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_mode(state, PROXY_MODE_PROXY);
}

static int setup_redirect(void **state)
{
	return setup_mode(state, PROXY_MODE_REDIRECT);
}

static int teardown(void **state)
{
	struct fx *f = *state;

	proxy_destroy(f->p);
	sip_digest_destroy(f->digest);
	loc_store_destroy(f->store);
	free(f);
	return 0;
}

static void bind_contact(struct fx *f, const char *aor, const char *contact,
			 uint16_t q, const char *path)
{
	struct loc_binding b = {
		.aor = sip_str_c(aor),
		.contact = sip_str_c(contact),
		.q = q,
		.expires = 1700000000 + 3600,
		.path = path ? sip_str_c(path) : SIP_STR_NULL,
	};

	assert_true(loc_store_save(f->store, &b) >= 0);
}

/* Feed a request ("\n" becomes CRLF) from the caller. */
static struct proxy_outcome request(struct fx *f, const char *text)
{
	struct proxy_outcome o;
	size_t n = 0;

	for (const char *c = text; *c && n + 2 < sizeof(f->req); c++) {
		if (*c == '\n')
			f->req[n++] = '\r';
		f->req[n++] = *c;
	}
	assert_int_equal(sip_msg_parse(&f->msg, f->req, n, SIP_FRAMING_DATAGRAM,
				       NULL, NULL),
			 0);
	assert_int_equal(
		proxy_request(f->p, &f->msg, &f->caller, NULL, f->now, &o), 0);
	return o;
}

#define INVITE_TO(user, extra)                                                 \
	"INVITE sip:" user "@example.com SIP/2.0\n"                            \
	"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-c1\n"                  \
	"Max-Forwards: 70\n"                                                   \
	"From: <sip:alice@example.com>;tag=a1\n"                               \
	"To: <sip:" user "@example.com>\n"                                     \
	"Call-ID: call-1@test\n"                                               \
	"CSeq: 1 INVITE\n"                                                     \
	"Contact: <sip:alice@192.0.2.1>\n" extra "Content-Length: 0\n\n"

/* Answer the captured request @p s with @p status from its callee, with
 * the header @p name: @p value. */
static void answer_hdr(struct fx *f, const struct sent *s, unsigned status,
		       const char *totag, const char *name, const char *value)
{
	char buf[8192];
	struct sip_writer w;
	struct sip_msg m;
	struct proxy_peer from = s->to;
	int n;

	sip_wr_init(&w, buf, sizeof(buf));
	sip_wr_response_to(&w, &s->msg, status, NULL, sip_str_c(totag));
	sip_wr_header(&w, name, sip_str_c(value));
	n = sip_wr_finish(&w, NULL, SIP_STR_NULL);
	assert_true(n > 0);
	assert_int_equal(sip_msg_parse(&m, buf, (size_t)n, SIP_FRAMING_DATAGRAM,
				       NULL, NULL),
			 0);
	assert_int_equal(proxy_response(f->p, &m, &from, f->now), 1);
}

/* Answer the captured request @p s with @p status from its callee. */
static void answer(struct fx *f, const struct sent *s, unsigned status,
		   const char *totag)
{
	answer_hdr(f, s, status, totag, "Contact", "<sip:bob@198.51.100.7>");
}

/* The sent message @p i's start line begins with @p prefix. */
static bool starts(const struct fx *f, unsigned i, const char *prefix)
{
	return i < f->nsent &&
	       strncmp(f->sent[i].buf, prefix, strlen(prefix)) == 0;
}

static bool has(const struct sent *s, const char *text)
{
	return memmem(s->buf, s->len, text, strlen(text)) != NULL;
}

/* Index of the first sent message starting with @p prefix from @p from. */
static int find(const struct fx *f, unsigned from, const char *prefix)
{
	for (unsigned i = from; i < f->nsent; i++)
		if (starts(f, i, prefix))
			return (int)i;
	return -1;
}

static unsigned count(const struct fx *f, const char *prefix)
{
	unsigned n = 0;

	for (unsigned i = 0; i < f->nsent; i++)
		n += starts(f, i, prefix);
	return n;
}

/* ------------------------------------------------------------------------ */

static void test_forward_to_binding(void **state)
{
	struct fx *f = *state;
	struct proxy_outcome o;
	int i;

	bind_contact(f, "sip:bob@example.com", "sip:bob@198.51.100.7:5062",
		     1000, NULL);
	o = request(f, INVITE_TO("bob", ""));
	assert_int_equal(o.branches, 1);
	assert_true(starts(f, 0, "SIP/2.0 100 "));
	i = find(f, 0, "INVITE sip:bob@198.51.100.7:5062 SIP/2.0\r\n");
	assert_true(i >= 0);
	const struct sent *s = &f->sent[i];
	/* our Via first, with a branch for worker 3; the caller's after */
	assert_true(
		has(s, "Via: SIP/2.0/UDP 192.0.2.10:5070;branch=z9hG4bK3."));
	assert_true(
		has(s, "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-c1"));
	assert_true(has(s, "Record-Route: <sip:192.0.2.10:5070;lr>\r\n"));
	assert_true(has(s, "Max-Forwards: 69\r\n"));
	assert_int_equal(sip_msg_hdr_count(&s->msg, SIP_HDR_MAX_FORWARDS), 1);
	/* to the contact's address */
	struct sockaddr_in *a = (struct sockaddr_in *)&s->to.addr;
	assert_int_equal(ntohs(a->sin_port), 5062);
	assert_int_equal(s->to.transport, SIP_TP_UDP);

	/* 180 and 200 go up without our Via */
	answer(f, s, 180, "b1");
	answer(f, s, 200, "b1");
	i = find(f, 0, "SIP/2.0 180 ");
	assert_true(i >= 0);
	assert_false(has(&f->sent[i], "192.0.2.10:5070"));
	i = find(f, 0, "SIP/2.0 200 ");
	assert_true(i >= 0);
	assert_false(has(&f->sent[i], "192.0.2.10:5070"));
	assert_int_equal(
		ntohs(((struct sockaddr_in *)&f->sent[i].to.addr)->sin_port),
		5060);
}

static void test_path_pushed_as_route(void **state)
{
	struct fx *f = *state;
	int i;

	bind_contact(f, "sip:bob@example.com", "sip:bob@10.0.0.7:5062", 1000,
		     "<sip:198.51.100.1:5080;lr>,<sip:198.51.100.2;lr>");
	request(f, INVITE_TO("bob", ""));
	i = find(f, 0, "INVITE sip:bob@10.0.0.7:5062 ");
	assert_true(i >= 0);
	assert_true(has(&f->sent[i], "Route: <sip:198.51.100.1:5080;lr>\r\n"
				     "Route: <sip:198.51.100.2;lr>\r\n"));
	/* sent to the first Path hop */
	assert_int_equal(
		ntohs(((struct sockaddr_in *)&f->sent[i].to.addr)->sin_port),
		5080);
}

static void test_unknown_and_unavailable(void **state)
{
	struct fx *f = *state;

	f->user_known = 0;
	request(f, INVITE_TO("nobody", ""));
	assert_true(find(f, 0, "SIP/2.0 404 ") >= 0);
	f->nsent = 0;
	f->user_known = 1;
	request(f, "INVITE sip:carol@example.com SIP/2.0\n"
		   "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-c2\n"
		   "Max-Forwards: 70\nFrom: <sip:a@example.com>;tag=x\n"
		   "To: <sip:carol@example.com>\nCall-ID: c2@test\n"
		   "CSeq: 1 INVITE\nContent-Length: 0\n\n");
	assert_true(find(f, 0, "SIP/2.0 480 ") >= 0);
}

static void test_checks(void **state)
{
	struct fx *f = *state;
	int i;

	bind_contact(f, "sip:bob@example.com", "sip:bob@198.51.100.7", 1000,
		     NULL);
	request(f, "OPTIONS sip:bob@example.com SIP/2.0\n"
		   "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-m0\n"
		   "Max-Forwards: 0\nFrom: <sip:a@example.com>;tag=x\n"
		   "To: <sip:bob@example.com>\nCall-ID: m0@test\n"
		   "CSeq: 1 OPTIONS\nContent-Length: 0\n\n");
	assert_true(starts(f, 0, "SIP/2.0 483 "));
	assert_int_equal(f->nsent, 1);
	f->nsent = 0;
	request(f, "OPTIONS sip:bob@example.com SIP/2.0\n"
		   "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-m1\n"
		   "Max-Forwards: 10\nProxy-Require: x-foo\n"
		   "From: <sip:a@example.com>;tag=x\n"
		   "To: <sip:bob@example.com>\nCall-ID: m1@test\n"
		   "CSeq: 1 OPTIONS\nContent-Length: 0\n\n");
	i = find(f, 0, "SIP/2.0 420 ");
	assert_true(i >= 0);
	assert_true(has(&f->sent[i], "Unsupported: x-foo\r\n"));
}

static void test_parallel_fork_2xx_cancels(void **state)
{
	struct fx *f = *state;
	int a, b, c;

	bind_contact(f, "sip:bob@example.com", "sip:bob@198.51.100.7", 1000,
		     NULL);
	bind_contact(f, "sip:bob@example.com", "sip:bob@198.51.100.8", 1000,
		     NULL);
	request(f, INVITE_TO("bob", ""));
	assert_int_equal(count(f, "INVITE "), 2);
	a = find(f, 0, "INVITE sip:bob@198.51.100.7 ");
	b = find(f, 0, "INVITE sip:bob@198.51.100.8 ");
	assert_true(a >= 0 && b >= 0);
	answer(f, &f->sent[a], 180, "ta");
	answer(f, &f->sent[b], 200, "tb");
	c = find(f, 0, "CANCEL sip:bob@198.51.100.7 ");
	assert_true(c >= 0);
	assert_true(has(&f->sent[c],
			"Reason: SIP;cause=200;text=\"Call completed "
			"elsewhere\""));
	/* the CANCEL has the branch of the INVITE it cancels */
	assert_memory_equal(
		sip_msg_hdr(&f->sent[c].msg, SIP_HDR_VIA)->value.p,
		sip_msg_hdr(&f->sent[a].msg, SIP_HDR_VIA)->value.p,
		sip_msg_hdr(&f->sent[c].msg, SIP_HDR_VIA)->value.len);
	assert_int_equal(count(f, "SIP/2.0 200 "), 1);
	/* the cancelled branch ends with 487: nothing more to the caller */
	answer(f, &f->sent[a], 487, "ta");
	assert_int_equal(count(f, "SIP/2.0 487 "), 0);
}

static void test_6xx_cancels_and_wins(void **state)
{
	struct fx *f = *state;
	int a, b, c;

	bind_contact(f, "sip:bob@example.com", "sip:bob@198.51.100.7", 1000,
		     NULL);
	bind_contact(f, "sip:bob@example.com", "sip:bob@198.51.100.8", 1000,
		     NULL);
	request(f, INVITE_TO("bob", ""));
	a = find(f, 0, "INVITE sip:bob@198.51.100.7 ");
	b = find(f, 0, "INVITE sip:bob@198.51.100.8 ");
	answer(f, &f->sent[a], 180, "ta");
	answer(f, &f->sent[b], 603, "tb");
	c = find(f, 0, "CANCEL sip:bob@198.51.100.7 ");
	assert_true(c >= 0);
	assert_true(has(&f->sent[c], "Reason: SIP;cause=603;text=\"Decline\""));
	assert_true(find(f, 0, "SIP/2.0 603 ") >= 0);
	/* the ACK of the 603 is the proxy's own, to the callee */
	assert_true(find(f, 0, "ACK sip:bob@198.51.100.8 ") >= 0);
}

static void test_best_response(void **state)
{
	struct fx *f = *state;
	int a, b;

	bind_contact(f, "sip:bob@example.com", "sip:bob@198.51.100.7", 1000,
		     NULL);
	bind_contact(f, "sip:bob@example.com", "sip:bob@198.51.100.8", 1000,
		     NULL);
	request(f, INVITE_TO("bob", ""));
	a = find(f, 0, "INVITE sip:bob@198.51.100.7 ");
	b = find(f, 0, "INVITE sip:bob@198.51.100.8 ");
	answer(f, &f->sent[a], 503, "ta");
	assert_int_equal(find(f, 0, "SIP/2.0 5"), -1); /* waits for b */
	answer(f, &f->sent[b], 486, "tb");
	assert_true(find(f, 0, "SIP/2.0 486 ") >= 0);
	assert_int_equal(find(f, 0, "SIP/2.0 503 "), -1);
}

static void test_503_becomes_500(void **state)
{
	struct fx *f = *state;
	int a;

	bind_contact(f, "sip:bob@example.com", "sip:bob@198.51.100.7", 1000,
		     NULL);
	request(f, INVITE_TO("bob", ""));
	a = find(f, 0, "INVITE ");
	answer(f, &f->sent[a], 503, "ta");
	assert_true(find(f, 0, "SIP/2.0 500 ") >= 0);
}

/* A 401 or 407 from the callee of @p s, challenging for @p realm. */
static void answer_challenge(struct fx *f, const struct sent *s,
			     unsigned status, const char *totag,
			     const char *realm)
{
	char value[128];

	snprintf(value, sizeof(value),
		 "Digest realm=\"%s\", nonce=\"n-%s\", qop=\"auth\"", realm,
		 realm);
	answer_hdr(f, s, status, totag,
		   status == 401 ? "WWW-Authenticate" : "Proxy-Authenticate",
		   value);
}

/* §16.7 step 6: a 401/407 upstream carries the challenges of every
 * branch that answered 401 or 407. */
static void test_challenges_combined(void **state)
{
	struct fx *f = *state;
	int a, b, i;

	bind_contact(f, "sip:bob@example.com", "sip:bob@198.51.100.7", 1000,
		     NULL);
	bind_contact(f, "sip:bob@example.com", "sip:bob@198.51.100.8", 1000,
		     NULL);
	request(f, INVITE_TO("bob", ""));
	a = find(f, 0, "INVITE ");
	b = find(f, (unsigned)a + 1, "INVITE ");
	assert_true(a >= 0 && b >= 0);
	answer_challenge(f, &f->sent[a], 407, "ta", "one.example");
	answer_challenge(f, &f->sent[b], 401, "tb", "two.example");
	i = find(f, 0, "SIP/2.0 40");
	assert_true(i >= 0);
	assert_true(has(&f->sent[i], "Proxy-Authenticate: Digest "
				     "realm=\"one.example\", nonce=\"n-one."
				     "example\", qop=\"auth\"\r\n"));
	assert_true(has(&f->sent[i], "WWW-Authenticate: Digest "
				     "realm=\"two.example\", nonce=\"n-two."
				     "example\", qop=\"auth\"\r\n"));
	/* each once */
	assert_int_equal(find(f, (unsigned)i + 1, "SIP/2.0 40"), -1);
}

static void test_sequential_by_q(void **state)
{
	struct fx *f = *state;
	int a, b;

	bind_contact(f, "sip:bob@example.com", "sip:bob@198.51.100.7", 500,
		     NULL);
	bind_contact(f, "sip:bob@example.com", "sip:bob@198.51.100.8", 1000,
		     NULL);
	bind_contact(f, "sip:bob@example.com", "sip:bob@198.51.100.9", 100,
		     NULL);
	request(f, INVITE_TO("bob", ""));
	/* the highest q alone */
	assert_int_equal(count(f, "INVITE "), 1);
	b = find(f, 0, "INVITE sip:bob@198.51.100.8 ");
	assert_true(b >= 0);
	answer(f, &f->sent[b], 486, "tb");
	/* then q 0.5 */
	assert_int_equal(count(f, "INVITE "), 2);
	a = find(f, 0, "INVITE sip:bob@198.51.100.7 ");
	assert_true(a >= 0);
	answer(f, &f->sent[a], 180, "ta");
	/* q 0.5 rings past the fork timeout: cancelled, q 0.1 tried */
	f->now += 10001;
	proxy_expire(f->p, f->now);
	assert_true(find(f, 0, "CANCEL sip:bob@198.51.100.7 ") >= 0);
	assert_true(find(f, 0, "INVITE sip:bob@198.51.100.9 ") >= 0);
	assert_int_equal(count(f, "INVITE "), 3);
}

static void test_caller_cancel(void **state)
{
	struct fx *f = *state;
	int a, b, i;

	bind_contact(f, "sip:bob@example.com", "sip:bob@198.51.100.7", 1000,
		     NULL);
	bind_contact(f, "sip:bob@example.com", "sip:bob@198.51.100.8", 1000,
		     NULL);
	request(f, INVITE_TO("bob", ""));
	a = find(f, 0, "INVITE sip:bob@198.51.100.7 ");
	b = find(f, 0, "INVITE sip:bob@198.51.100.8 ");
	answer(f, &f->sent[a], 180, "ta");
	answer(f, &f->sent[b], 180, "tb");
	i = (int)f->nsent;
	request(f, "CANCEL sip:bob@example.com SIP/2.0\n"
		   "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-c1\n"
		   "Max-Forwards: 70\nFrom: <sip:alice@example.com>;tag=a1\n"
		   "To: <sip:bob@example.com>\nCall-ID: call-1@test\n"
		   "CSeq: 1 CANCEL\nContent-Length: 0\n\n");
	assert_true(starts(f, (unsigned)i, "SIP/2.0 200 "));
	assert_true(find(f, 0, "CANCEL sip:bob@198.51.100.7 ") >= 0);
	assert_true(find(f, 0, "CANCEL sip:bob@198.51.100.8 ") >= 0);
	answer(f, &f->sent[a], 487, "ta");
	assert_int_equal(count(f, "SIP/2.0 487 "), 0);
	answer(f, &f->sent[b], 487, "tb");
	assert_int_equal(count(f, "SIP/2.0 487 "), 1);
}

/* Answer @p s with @p status, but with its top Via only (the response a
 * callee builds from the Via of a CANCEL, which the proxy sent alone). */
static void answer_our_via_only(struct fx *f, const struct sent *s,
				unsigned status, const char *totag)
{
	char buf[2048];
	sip_str via;
	struct sip_msg m;
	const struct sip_msg *q = &s->msg;
	int n;

	assert_int_equal(sip_msg_top_via(q, &via, NULL), 0);
	n = snprintf(buf, sizeof(buf),
		     "SIP/2.0 %u %s\r\nVia: %.*s\r\nFrom: %.*s\r\n"
		     "To: %.*s;tag=%s\r\nCall-ID: %.*s\r\nCSeq: %.*s\r\n"
		     "Content-Length: 0\r\n\r\n",
		     status, sip_reason_phrase(status), SIP_STR_FMT(via),
		     SIP_STR_FMT(sip_msg_hdr(q, SIP_HDR_FROM)->value),
		     SIP_STR_FMT(sip_msg_hdr(q, SIP_HDR_TO)->value), totag,
		     SIP_STR_FMT(sip_msg_hdr(q, SIP_HDR_CALL_ID)->value),
		     SIP_STR_FMT(sip_msg_hdr(q, SIP_HDR_CSEQ)->value));
	assert_true(n > 0 && (size_t)n < sizeof(buf));
	assert_int_equal(sip_msg_parse(&m, buf, (size_t)n, SIP_FRAMING_DATAGRAM,
				       NULL, NULL),
			 0);
	assert_int_equal(proxy_response(f->p, &m, &s->to, f->now), 1);
}

/* §16.7 step 3: a response left without Via once ours is removed is not
 * forwarded; the caller gets the proxy's own answer with its Via. */
static void test_response_without_caller_via(void **state)
{
	struct fx *f = *state;
	int a, r;

	bind_contact(f, "sip:bob@example.com", "sip:bob@198.51.100.7", 1000,
		     NULL);
	request(f, INVITE_TO("bob", ""));
	a = find(f, 0, "INVITE sip:bob@198.51.100.7 ");
	assert_true(a >= 0);
	answer_our_via_only(f, &f->sent[a], 180, "ta");
	assert_int_equal(count(f, "SIP/2.0 180 "), 0);
	answer_our_via_only(f, &f->sent[a], 486, "ta");
	r = find(f, 0, "SIP/2.0 486 ");
	assert_true(r >= 0);
	assert_true(has(&f->sent[r], "Via: SIP/2.0/UDP 192.0.2.1:5060;"
				     "branch=z9hG4bK-c1"));
	for (unsigned i = 0; i < f->nsent; i++)
		if (starts(f, i, "SIP/2.0 "))
			assert_non_null(
				sip_msg_hdr(&f->sent[i].msg, SIP_HDR_VIA));
}

/* Credentials for our realm stay here; another realm's go on. */
static void test_own_credentials_consumed(void **state)
{
	struct fx *f = *state;
	int i;

	bind_contact(f, "sip:bob@example.com", "sip:bob@198.51.100.7", 1000,
		     NULL);
	request(f, INVITE_TO("bob",
			     "Proxy-Authorization: Digest username=\"alice\", "
			     "realm=\"example.com\", nonce=\"n1\", "
			     "uri=\"sip:bob@example.com\", response=\"r1\"\n"
			     "Proxy-Authorization: Digest username=\"alice\", "
			     "realm=\"other.net\", nonce=\"n2\", "
			     "uri=\"sip:bob@example.com\", response=\"r2\"\n"));
	i = find(f, 0, "INVITE sip:bob@198.51.100.7 ");
	assert_true(i >= 0);
	assert_int_equal(
		sip_msg_hdr_count(&f->sent[i].msg, SIP_HDR_PROXY_AUTHORIZATION),
		1);
	assert_false(has(&f->sent[i], "realm=\"example.com\""));
	assert_true(has(&f->sent[i], "realm=\"other.net\""));
}

static void test_cancel_unknown_481(void **state)
{
	struct fx *f = *state;

	request(f, "CANCEL sip:bob@example.com SIP/2.0\n"
		   "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-none\n"
		   "Max-Forwards: 70\nFrom: <sip:alice@example.com>;tag=a1\n"
		   "To: <sip:bob@example.com>\nCall-ID: none@test\n"
		   "CSeq: 1 CANCEL\nContent-Length: 0\n\n");
	assert_true(starts(f, 0, "SIP/2.0 481 "));
}

static void test_no_answer_408(void **state)
{
	struct fx *f = *state;

	bind_contact(f, "sip:bob@example.com", "sip:bob@198.51.100.7", 1000,
		     NULL);
	request(f, INVITE_TO("bob", ""));
	for (int s = 0; s < 40; s++) {
		f->now += 1000;
		proxy_expire(f->p, f->now);
	}
	assert_true(find(f, 0, "SIP/2.0 408 ") >= 0);
}

static void test_loop_482(void **state)
{
	struct fx *f = *state;
	int a;
	struct sip_msg m;

	struct sip_resolver *res;
	struct sip_resolv_config rc = {0};
	struct proxy_callbacks cb = {.send = cb_send,
				     .serves = cb_serves,
				     .user_exists = cb_user,
				     .auth_on = cb_auth};

	/* bob's binding points back at the proxy itself (example.com is
	 * routed to it) */
	assert_int_equal(sip_resolver_create(&rc, &res), 0);
	assert_int_equal(
		sip_resolver_route_set(res, "example.com", "192.0.2.10:5070"),
		0);
	proxy_destroy(f->p);
	f->cfg.resolver = res;
	assert_int_equal(proxy_create(&f->cfg, &cb, f, &f->p), 0);
	bind_contact(f, "sip:bob@example.com", "sip:bob@example.com:5070", 1000,
		     NULL);
	request(f, INVITE_TO("bob", ""));
	a = find(f, 0, "INVITE sip:bob@example.com:5070 ");
	assert_true(a >= 0);
	/* it comes back (a spiral: another Request-URI), goes out again */
	memcpy(f->req, f->sent[a].buf, f->sent[a].len);
	assert_int_equal(sip_msg_parse(&m, f->req, f->sent[a].len,
				       SIP_FRAMING_DATAGRAM, NULL, NULL),
			 0);
	f->nsent = 0;
	assert_int_equal(
		proxy_request(f->p, &m, &f->caller, NULL, f->now, NULL), 0);
	a = find(f, 0, "INVITE sip:bob@example.com:5070 ");
	assert_true(a >= 0);
	/* the same request again: a loop */
	static char again[8192];
	memcpy(again, f->sent[a].buf, f->sent[a].len);
	assert_int_equal(sip_msg_parse(&m, again, f->sent[a].len,
				       SIP_FRAMING_DATAGRAM, NULL, NULL),
			 0);
	f->nsent = 0;
	assert_int_equal(
		proxy_request(f->p, &m, &f->caller, NULL, f->now, NULL), 0);
	assert_true(find(f, 0, "SIP/2.0 482 ") >= 0);
	proxy_destroy(f->p);
	f->p = NULL;
	sip_resolver_destroy(res);
}

static void test_route_and_ack(void **state)
{
	struct fx *f = *state;
	int i;

	/* in-dialog BYE: our Route popped, the next loose one followed */
	request(f,
		"BYE sip:bob@198.51.100.7:5062 SIP/2.0\n"
		"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-b1\n"
		"Route: <sip:192.0.2.10:5070;lr>, <sip:203.0.113.5:5099;lr>\n"
		"Max-Forwards: 70\nFrom: <sip:alice@example.com>;tag=a1\n"
		"To: <sip:bob@example.com>;tag=b1\nCall-ID: d1@test\n"
		"CSeq: 2 BYE\nContent-Length: 0\n\n");
	i = find(f, 0, "BYE sip:bob@198.51.100.7:5062 ");
	assert_true(i >= 0);
	assert_false(has(&f->sent[i], "Route: <sip:192.0.2.10:5070;lr>"));
	assert_true(has(&f->sent[i], "Route: <sip:203.0.113.5:5099;lr>\r\n"));
	assert_false(has(&f->sent[i], "Record-Route"));
	assert_int_equal(
		ntohs(((struct sockaddr_in *)&f->sent[i].to.addr)->sin_port),
		5099);
	/* the ACK of a 2xx: stateless, no 100, no transaction */
	f->nsent = 0;
	request(f, "ACK sip:bob@198.51.100.7:5062 SIP/2.0\n"
		   "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-k1\n"
		   "Route: <sip:192.0.2.10:5070;lr>\n"
		   "Max-Forwards: 70\nFrom: <sip:alice@example.com>;tag=a1\n"
		   "To: <sip:bob@example.com>;tag=b1\nCall-ID: d1@test\n"
		   "CSeq: 1 ACK\nContent-Length: 0\n\n");
	assert_int_equal(f->nsent, 1);
	assert_true(starts(f, 0, "ACK sip:bob@198.51.100.7:5062 "));
	assert_int_equal(
		ntohs(((struct sockaddr_in *)&f->sent[0].to.addr)->sin_port),
		5062);
}

static void test_strict_next_hop(void **state)
{
	struct fx *f = *state;
	int i;

	/* a strict router next: it becomes the Request-URI, ours goes last */
	request(f, "BYE sip:bob@198.51.100.7:5062 SIP/2.0\n"
		   "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-s1\n"
		   "Route: <sip:192.0.2.10:5070;lr>, <sip:203.0.113.5:5099>\n"
		   "Max-Forwards: 70\nFrom: <sip:alice@example.com>;tag=a1\n"
		   "To: <sip:bob@example.com>;tag=b1\nCall-ID: d2@test\n"
		   "CSeq: 2 BYE\nContent-Length: 0\n\n");
	i = find(f, 0, "BYE sip:203.0.113.5:5099 SIP/2.0\r\n");
	assert_true(i >= 0);
	assert_true(has(&f->sent[i], "Route: <sip:bob@198.51.100.7:5062>\r\n"));
}

static void test_redirect_302(void **state)
{
	struct fx *f = *state;
	int i;

	bind_contact(f, "sip:bob@example.com", "sip:bob@198.51.100.7", 700,
		     NULL);
	request(f, INVITE_TO("bob", ""));
	i = find(f, 0, "SIP/2.0 302 ");
	assert_true(i >= 0);
	assert_true(has(&f->sent[i], "Contact: <sip:bob@198.51.100.7>;q=0.700;"
				     "expires=3600\r\n"));
	assert_int_equal(count(f, "INVITE "), 0);
}

static void test_auth_407_and_trusted(void **state)
{
	struct fx *f = *state;
	int i;

	bind_contact(f, "sip:bob@example.com", "sip:bob@198.51.100.7", 1000,
		     NULL);
	f->auth = true;
	request(f, INVITE_TO("bob", ""));
	i = find(f, 0, "SIP/2.0 407 ");
	assert_true(i >= 0);
	assert_true(has(&f->sent[i], "Proxy-Authenticate: Digest realm=\""
				     "example.com\""));
	assert_int_equal(count(f, "INVITE "), 0);
	teardown(state);

	/* the same caller, trusted: no challenge */
	setup(state);
	f = *state;
	bind_contact(f, "sip:bob@example.com", "sip:bob@198.51.100.7", 1000,
		     NULL);
	f->auth = true;
	proxy_destroy(f->p);
	set_v4(&f->cfg.trusted[0], "192.0.2.1", 0);
	f->cfg.ntrusted = 1;
	struct proxy_callbacks cb = {.send = cb_send,
				     .serves = cb_serves,
				     .user_exists = cb_user,
				     .auth_on = cb_auth};
	assert_int_equal(proxy_create(&f->cfg, &cb, f, &f->p), 0);
	request(f, INVITE_TO("bob", ""));
	assert_int_equal(count(f, "SIP/2.0 407 "), 0);
	assert_int_equal(count(f, "INVITE "), 1);
}

static void test_overload_503(void **state)
{
	struct fx *f = *state;
	struct proxy_callbacks cb = {.send = cb_send,
				     .serves = cb_serves,
				     .user_exists = cb_user,
				     .auth_on = cb_auth};
	int i;

	proxy_destroy(f->p);
	f->cfg.max_calls = 1;
	f->cfg.retry_after = 7;
	assert_int_equal(proxy_create(&f->cfg, &cb, f, &f->p), 0);
	bind_contact(f, "sip:bob@example.com", "sip:bob@198.51.100.7", 1000,
		     NULL);
	request(f, INVITE_TO("bob", ""));
	assert_int_equal(count(f, "INVITE "), 1);
	request(f, "INVITE sip:bob@example.com SIP/2.0\n"
		   "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-o2\n"
		   "Max-Forwards: 70\nFrom: <sip:a@example.com>;tag=x\n"
		   "To: <sip:bob@example.com>\nCall-ID: o2@test\n"
		   "CSeq: 1 INVITE\nContent-Length: 0\n\n");
	i = find(f, 0, "SIP/2.0 503 ");
	assert_true(i >= 0);
	assert_true(has(&f->sent[i], "Retry-After: 7\r\n"));

	/* once answered, a call waits only for its transactions to end
	 * (up to 64*T1): it no longer counts, the next call goes through */
	answer(f, &f->sent[find(f, 0, "INVITE ")], 200, "b1");
	assert_true(proxy_calls(f->p) >= 1);
	request(f, "INVITE sip:bob@example.com SIP/2.0\n"
		   "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-o3\n"
		   "Max-Forwards: 70\nFrom: <sip:a@example.com>;tag=y\n"
		   "To: <sip:bob@example.com>\nCall-ID: o3@test\n"
		   "CSeq: 1 INVITE\nContent-Length: 0\n\n");
	assert_int_equal(count(f, "INVITE "), 2);
	assert_int_equal(find(f, (unsigned)i + 1, "SIP/2.0 503 "), -1);
}

static void test_response_owner(void **state)
{
	struct sip_msg m;
	unsigned w = 0;
	static const char r[] =
		"SIP/2.0 200 OK\r\n"
		"Via: SIP/2.0/UDP "
		"192.0.2.10;branch=z9hG4bK12.0123456789abcdef\r\n"
		"From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\n"
		"Call-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
	static const char n[] =
		"SIP/2.0 200 OK\r\n"
		"Via: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK-foreign\r\n"
		"From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\n"
		"Call-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";

	(void)state;
	assert_int_equal(sip_msg_parse(&m, r, sizeof(r) - 1,
				       SIP_FRAMING_DATAGRAM, NULL, NULL),
			 0);
	assert_int_equal(proxy_response_owner(&m, &w), 0);
	assert_int_equal(w, 12);
	assert_int_equal(sip_msg_parse(&m, n, sizeof(n) - 1,
				       SIP_FRAMING_DATAGRAM, NULL, NULL),
			 0);
	assert_int_equal(proxy_response_owner(&m, &w), -ENOENT);
}

static void test_calls_freed(void **state)
{
	struct fx *f = *state;
	int a;

	bind_contact(f, "sip:bob@example.com", "sip:bob@198.51.100.7", 1000,
		     NULL);
	request(f, INVITE_TO("bob", ""));
	assert_int_equal(proxy_calls(f->p), 1);
	a = find(f, 0, "INVITE ");
	answer(f, &f->sent[a], 486, "ta");
	/* Timer D/H/I and friends pass: everything ends */
	for (int s = 0; s < 70; s++) {
		f->now += 1000;
		proxy_expire(f->p, f->now);
	}
	assert_int_equal(proxy_calls(f->p), 0);
	assert_int_equal(proxy_txns(f->p), 0);
}

/* ------------------------------------------------------------------------ */
/* Transports: RFC 5658 double Record-Route                                 */
/* ------------------------------------------------------------------------ */

/* The proxy again, listening on UDP and TCP at the same address. */
static void udp_and_tcp(struct fx *f)
{
	struct proxy_callbacks cb = {.send = cb_send,
				     .serves = cb_serves,
				     .user_exists = cb_user,
				     .auth_on = cb_auth};

	proxy_destroy(f->p);
	f->cfg.local[1].transport = SIP_TP_TCP;
	set_v4(&f->cfg.local[1].addr, "192.0.2.10", PROXY_PORT);
	f->cfg.nlocal = 2;
	assert_int_equal(proxy_create(&f->cfg, &cb, f, &f->p), 0);
}

static void test_double_record_route(void **state)
{
	struct fx *f = *state;
	const char *rr2 = "Record-Route: <sip:192.0.2.10:5070;transport=tcp;lr>"
			  "\r\nRecord-Route: <sip:192.0.2.10:5070;lr>\r\n";
	int i;

	udp_and_tcp(f);
	/* in over UDP, out over TCP: two values, the outbound one on top */
	bind_contact(f, "sip:bob@example.com",
		     "sip:bob@198.51.100.7:5062;transport=tcp", 1000, NULL);
	request(f, INVITE_TO("bob", ""));
	i = find(f, 0, "INVITE sip:bob@198.51.100.7:5062;transport=tcp ");
	assert_true(i >= 0);
	assert_int_equal(f->sent[i].to.transport, SIP_TP_TCP);
	assert_true(has(&f->sent[i], "Via: SIP/2.0/TCP 192.0.2.10:5070;"));
	assert_true(has(&f->sent[i], rr2));
	assert_int_equal(
		sip_msg_hdr_count(&f->sent[i].msg, SIP_HDR_RECORD_ROUTE), 2);

	/* in and out over UDP: one value */
	f->nsent = 0;
	request(f, "INVITE sip:carol@198.51.100.8 SIP/2.0\n"
		   "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-c2\n"
		   "Max-Forwards: 70\n"
		   "From: <sip:alice@example.com>;tag=a2\n"
		   "To: <sip:carol@198.51.100.8>\n"
		   "Call-ID: call-2@test\n"
		   "CSeq: 1 INVITE\n"
		   "Content-Length: 0\n\n");
	i = find(f, 0, "INVITE sip:carol@198.51.100.8 ");
	assert_true(i >= 0);
	assert_int_equal(f->sent[i].to.transport, SIP_TP_UDP);
	assert_int_equal(
		sip_msg_hdr_count(&f->sent[i].msg, SIP_HDR_RECORD_ROUTE), 1);
	assert_true(has(&f->sent[i], "Record-Route: <sip:192.0.2.10:5070;lr>"));

	/* the callee's BYE carries both as Route (its route set in
	 * order): both are ours and removed, and it goes on over UDP */
	f->nsent = 0;
	f->caller.transport = SIP_TP_TCP;
	set_v4(&f->caller.addr, "198.51.100.7", 5062);
	request(f, "BYE sip:alice@192.0.2.1:5060 SIP/2.0\n"
		   "Via: SIP/2.0/TCP 198.51.100.7:5062;branch=z9hG4bK-b1\n"
		   "Route: <sip:192.0.2.10:5070;transport=tcp;lr>,\n"
		   " <sip:192.0.2.10:5070;lr>\n"
		   "Max-Forwards: 70\n"
		   "From: <sip:bob@example.com>;tag=b1\n"
		   "To: <sip:alice@example.com>;tag=a1\n"
		   "Call-ID: call-1@test\n"
		   "CSeq: 1 BYE\n"
		   "Content-Length: 0\n\n");
	i = find(f, 0, "BYE sip:alice@192.0.2.1:5060 ");
	assert_true(i >= 0);
	assert_int_equal(f->sent[i].to.transport, SIP_TP_UDP);
	assert_int_equal(sip_msg_hdr_count(&f->sent[i].msg, SIP_HDR_ROUTE), 0);
	assert_true(has(&f->sent[i], "Via: SIP/2.0/UDP 192.0.2.10:5070;"));
}

/* RFC 3261 §18.1.1: a request too large for UDP goes over TCP. */
static void test_large_request_over_tcp(void **state)
{
	struct fx *f = *state;
	char big[8192], pad[1401];
	int i;

	udp_and_tcp(f);
	memset(pad, 'x', sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = '\0';
	bind_contact(f, "sip:bob@example.com", "sip:bob@198.51.100.7:5062",
		     1000, NULL);
	snprintf(big, sizeof(big), INVITE_TO("bob", "X-Pad: %s\n"), pad);
	request(f, big);
	i = find(f, 0, "INVITE sip:bob@198.51.100.7:5062 ");
	assert_true(i >= 0);
	assert_true(f->sent[i].len > 1300);
	assert_int_equal(f->sent[i].to.transport, SIP_TP_TCP);
	assert_true(has(&f->sent[i], "Via: SIP/2.0/TCP 192.0.2.10:5070;"));
	/* in over UDP, out over TCP: RFC 5658 applies too */
	assert_int_equal(
		sip_msg_hdr_count(&f->sent[i].msg, SIP_HDR_RECORD_ROUTE), 2);
	/* to the same address and port */
	struct sockaddr_in *a = (struct sockaddr_in *)&f->sent[i].to.addr;
	assert_int_equal(ntohs(a->sin_port), 5062);

	/* the target says transport=udp: it stays UDP, however large */
	f->nsent = 0;
	snprintf(big, sizeof(big),
		 "INVITE sip:carol@198.51.100.8;transport=udp SIP/2.0\n"
		 "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-c3\n"
		 "Max-Forwards: 70\n"
		 "From: <sip:alice@example.com>;tag=a3\n"
		 "To: <sip:carol@198.51.100.8>\n"
		 "Call-ID: call-3@test\n"
		 "CSeq: 1 INVITE\n"
		 "X-Pad: %s\n"
		 "Content-Length: 0\n\n",
		 pad);
	request(f, big);
	i = find(f, 0, "INVITE sip:carol@198.51.100.8;transport=udp ");
	assert_true(i >= 0);
	assert_true(f->sent[i].len > 1300);
	assert_int_equal(f->sent[i].to.transport, SIP_TP_UDP);
	assert_true(has(&f->sent[i], "Via: SIP/2.0/UDP 192.0.2.10:5070;"));

	/* a small one stays UDP */
	f->nsent = 0;
	request(f, "INVITE sip:dave@198.51.100.9 SIP/2.0\n"
		   "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-c4\n"
		   "Max-Forwards: 70\n"
		   "From: <sip:alice@example.com>;tag=a4\n"
		   "To: <sip:dave@198.51.100.9>\n"
		   "Call-ID: call-4@test\n"
		   "CSeq: 1 INVITE\n"
		   "Content-Length: 0\n\n");
	i = find(f, 0, "INVITE sip:dave@198.51.100.9 ");
	assert_true(i >= 0);
	assert_int_equal(f->sent[i].to.transport, SIP_TP_UDP);
}

/* ------------------------------------------------------------------------ */
/* Next hops through DNS: the resolve callback and proxy_resolved()         */
/* ------------------------------------------------------------------------ */

struct dns_fx {
	void *token;
	int calls, cancels;
};

static struct dns_fx dnsfx;

static int cb_resolve(void *arg, const struct sip_uri *uri, void *token,
		      void **handle)
{
	(void)arg;
	assert_true(sip_str_ieq_c(uri->host, "lp2.test"));
	dnsfx.token = token;
	dnsfx.calls++;
	*handle = &dnsfx;
	return 0;
}

static void cb_resolve_cancel(void *arg, void *handle)
{
	(void)arg;
	assert_ptr_equal(handle, &dnsfx);
	dnsfx.cancels++;
}

/* The proxy with a resolver (no routes: lp2.test needs DNS). */
static struct sip_resolver *with_dns(struct fx *f)
{
	struct proxy_callbacks cb = {.send = cb_send,
				     .serves = cb_serves,
				     .user_exists = cb_user,
				     .auth_on = cb_auth,
				     .resolve = cb_resolve,
				     .resolve_cancel = cb_resolve_cancel};
	struct sip_resolv_config rc = {0};
	struct sip_resolver *r;

	memset(&dnsfx, 0, sizeof(dnsfx));
	assert_int_equal(sip_resolver_create(&rc, &r), 0);
	proxy_destroy(f->p);
	f->cfg.resolver = r;
	assert_int_equal(proxy_create(&f->cfg, &cb, f, &f->p), 0);
	return r;
}

/* A finished lookup with two targets, as DNS would give them. */
static struct sip_lookup *two_targets(void)
{
	struct sip_resolv_config rc = {0};
	struct sip_resolver *r;
	struct sip_lookup *lk;
	struct sip_uri u;
	struct sip_dns_query q;
	static struct sip_resolver *keep;

	if (!keep) {
		assert_int_equal(sip_resolver_create(&rc, &r), 0);
		assert_int_equal(
			sip_resolver_route_set(
				r, "lp2.test",
				"198.51.100.20:5060,198.51.100.21:5060"),
			0);
		keep = r;
	}
	assert_int_equal(sip_uri_parse(SIP_STR_LIT("sip:bob@lp2.test"), &u), 0);
	assert_int_equal(sip_lookup_create(keep, &u, &lk), 0);
	assert_int_equal(sip_lookup_next_query(lk, &q), 0);
	assert_true(sip_lookup_done(lk));
	assert_int_equal(sip_lookup_count(lk), 2);
	return lk;
}

#define INVITE_LP2(n)                                                          \
	"INVITE sip:bob@lp2.test SIP/2.0\n"                                    \
	"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-d" n "\n"              \
	"Max-Forwards: 70\n"                                                   \
	"From: <sip:alice@example.com>;tag=d" n "\n"                           \
	"To: <sip:bob@lp2.test>\n"                                             \
	"Call-ID: dns-" n "@test\n"                                            \
	"CSeq: 1 INVITE\n"                                                     \
	"Content-Length: 0\n\n"

static void test_dns_wait_and_failover(void **state)
{
	struct fx *f = *state;
	struct sip_resolver *r = with_dns(f);
	struct proxy_outcome o;
	struct sip_via v1, v2;
	int i, j;

	o = request(f, INVITE_LP2("1"));
	/* 100 at once, nothing forwarded until the lookup is done */
	assert_int_equal(dnsfx.calls, 1);
	assert_int_equal(o.branches, 1);
	assert_true(starts(f, 0, "SIP/2.0 100 "));
	assert_int_equal(find(f, 0, "INVITE "), -1);
	f->now += 50;
	proxy_resolved(f->p, dnsfx.token, 0, two_targets(), f->now);
	i = find(f, 0, "INVITE sip:bob@lp2.test ");
	assert_true(i >= 0);
	assert_int_equal(ntohl(((struct sockaddr_in *)&f->sent[i].to.addr)
				       ->sin_addr.s_addr),
			 0xc6336414); /* 198.51.100.20 */
	/* its 503: the next target, in a new transaction */
	answer(f, &f->sent[i], 503, "t1");
	j = find(f, (unsigned)i + 1, "INVITE sip:bob@lp2.test ");
	assert_true(j >= 0);
	assert_int_equal(ntohl(((struct sockaddr_in *)&f->sent[j].to.addr)
				       ->sin_addr.s_addr),
			 0xc6336415); /* 198.51.100.21 */
	assert_int_equal(sip_msg_top_via(&f->sent[i].msg, NULL, &v1), 0);
	assert_int_equal(sip_msg_top_via(&f->sent[j].msg, NULL, &v2), 0);
	assert_false(sip_str_eq(v1.branch, v2.branch));
	assert_int_equal(find(f, 0, "SIP/2.0 5"), -1);
	/* its 200 goes up */
	answer(f, &f->sent[j], 200, "t2");
	assert_true(find(f, (unsigned)j + 1, "SIP/2.0 200 ") >= 0);

	/* a lookup out of time: 408 to the caller */
	f->nsent = 0;
	request(f, INVITE_LP2("2"));
	assert_int_equal(dnsfx.calls, 2);
	f->now += 4000;
	proxy_resolved(f->p, dnsfx.token, -ETIMEDOUT, NULL, f->now);
	assert_true(find(f, 0, "SIP/2.0 408 ") >= 0);

	/* no such name: 503 of the branch, 500 to the caller */
	f->nsent = 0;
	request(f, INVITE_LP2("3"));
	proxy_resolved(f->p, dnsfx.token, -ENOENT, NULL, f->now);
	assert_true(find(f, 0, "SIP/2.0 500 ") >= 0);

	/* still waiting when the proxy goes: the lookup is cancelled */
	request(f, INVITE_LP2("4"));
	assert_int_equal(dnsfx.calls, 4);
	assert_int_equal(dnsfx.cancels, 0);
	proxy_destroy(f->p);
	f->p = NULL;
	assert_int_equal(dnsfx.cancels, 1);
	sip_resolver_destroy(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_forward_to_binding, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_path_pushed_as_route,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_and_unavailable,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_checks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parallel_fork_2xx_cancels,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_6xx_cancels_and_wins,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_best_response, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_challenges_combined, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_503_becomes_500, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_sequential_by_q, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_caller_cancel, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_response_without_caller_via, setup, teardown),
		cmocka_unit_test_setup_teardown(test_own_credentials_consumed,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_unknown_481, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_no_answer_408, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_loop_482, setup, teardown),
		cmocka_unit_test_setup_teardown(test_route_and_ack, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_strict_next_hop, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_redirect_302,
						setup_redirect, teardown),
		cmocka_unit_test_setup_teardown(test_auth_407_and_trusted,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_overload_503, setup,
						teardown),
		cmocka_unit_test(test_response_owner),
		cmocka_unit_test_setup_teardown(test_calls_freed, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_double_record_route, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_large_request_over_tcp,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_dns_wait_and_failover,
						setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
