/** @file test_txn.c  Unit tests for the transaction layer: the four state
 * machines of RFC 3261 §17 / RFC 6026 on a fake clock, their timers,
 * retransmission schedules, ACK generation, matching and cleanup. */
#include "txn/txn.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* ------------------------------------------------------------------------ */
/* Recording callbacks and a fake clock                                     */
/* ------------------------------------------------------------------------ */

enum ev_kind {
	EV_SEND,
	EV_REQUEST,
	EV_RESPONSE,
	EV_TIMEOUT,
	EV_ERROR,
	EV_TERM
};

#define MAX_EVENTS 4096
#define EV_DATA 2048

struct event {
	enum ev_kind kind;
	struct sip_txn *txn;
	uint64_t at;
	unsigned status;	  /* EV_RESPONSE */
	enum sip_method method;	  /* EV_REQUEST */
	enum sip_txn_timer timer; /* EV_TIMEOUT */
	int err;		  /* EV_ERROR */
	size_t len;		  /* EV_SEND */
	char data[EV_DATA];
};

struct fixture {
	struct sip_txn_table *tab;
	struct sip_txn_config cfg;
	uint64_t now;
	int send_rc; /* returned by the send callback */
	size_t n;
	struct event ev[MAX_EVENTS];
	/* Optional reactions, run inside the callbacks. */
	const char *answer; /* request callback responds with this */
	bool destroy_on_response;
	bool destroy_on_request;
	struct sip_msg *msgs; /* NMSGS parsed messages, reused in turn */
	unsigned next_msg;
};

#define NMSGS 8

static struct fixture *fx;

static struct event *record(enum ev_kind kind, struct sip_txn *txn)
{
	struct event *e;

	assert_true(fx->n < MAX_EVENTS);
	e = &fx->ev[fx->n++];
	memset(e, 0, sizeof(*e) - EV_DATA);
	e->kind = kind;
	e->txn = txn;
	e->at = fx->now;
	return e;
}

static int cb_send(struct sip_txn *txn, const char *buf, size_t len, void *arg)
{
	struct event *e = record(EV_SEND, txn);

	assert_ptr_equal(arg, fx);
	assert_true(len < EV_DATA);
	memcpy(e->data, buf, len);
	e->data[len] = '\0';
	e->len = len;
	return fx->send_rc;
}

static void cb_request(struct sip_txn *txn, const struct sip_msg *msg,
		       void *arg)
{
	(void)arg;
	record(EV_REQUEST, txn)->method = msg->method_id;
	if (fx->answer)
		assert_int_equal(sip_txn_respond(txn, fx->answer,
						 strlen(fx->answer), fx->now),
				 0);
	if (fx->destroy_on_request)
		sip_txn_destroy(txn);
}

static void cb_response(struct sip_txn *txn, const struct sip_msg *msg,
			void *arg)
{
	(void)arg;
	record(EV_RESPONSE, txn)->status = msg->status;
	if (fx->destroy_on_response)
		sip_txn_destroy(txn);
}

static void cb_timeout(struct sip_txn *txn, enum sip_txn_timer timer, void *arg)
{
	(void)arg;
	record(EV_TIMEOUT, txn)->timer = timer;
}

static void cb_error(struct sip_txn *txn, int err, void *arg)
{
	(void)arg;
	record(EV_ERROR, txn)->err = err;
}

static void cb_term(struct sip_txn *txn, void *arg)
{
	(void)arg;
	record(EV_TERM, txn);
}

static const struct sip_txn_callbacks callbacks = {
	.send = cb_send,
	.request = cb_request,
	.response = cb_response,
	.timeout = cb_timeout,
	.transport_error = cb_error,
	.terminated = cb_term,
};

static int setup(void **state)
{
	fx = calloc(1, sizeof(*fx));
	if (!fx)
		return -1;
	fx->msgs = calloc(NMSGS, sizeof(*fx->msgs));
	if (!fx->msgs)
		return -1;
	sip_txn_config_default(&fx->cfg);
	fx->cfg.worker = 7;
	fx->cfg.seed = 42;
	if (sip_txn_table_create(&fx->cfg, &callbacks, fx, &fx->tab) != 0)
		return -1;
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	sip_txn_table_destroy(fx->tab);
	free(fx->msgs);
	free(fx);
	fx = NULL;
	return 0;
}

/* Advance the fake clock to @p t and fire what is due. */
static void advance(uint64_t t)
{
	fx->now = t;
	sip_txn_table_expire(fx->tab, t);
}

/* Run the clock deadline by deadline up to @p until. */
static void run_until(uint64_t until)
{
	uint64_t d;

	while ((d = sip_txn_table_next_deadline(fx->tab)) <= until)
		advance(d);
	fx->now = until;
}

static size_t count(enum ev_kind kind)
{
	size_t c = 0;

	for (size_t i = 0; i < fx->n; i++)
		c += fx->ev[i].kind == kind;
	return c;
}

static const struct event *last(enum ev_kind kind)
{
	for (size_t i = fx->n; i > 0; i--)
		if (fx->ev[i - 1].kind == kind)
			return &fx->ev[i - 1];
	fail_msg("no event of kind %d", kind);
	return NULL;
}

static void clear(void)
{
	fx->n = 0;
}

/* ------------------------------------------------------------------------ */
/* Messages                                                                 */
/* ------------------------------------------------------------------------ */

#define BRANCH "z9hG4bK7.0123456789abcdef"
#define CALL_ID "a84b4c76e66710@pc33.atlanta.example.com"

struct req_opts {
	const char *method;
	const char *branch; /* NULL: no branch parameter */
	const char *sent_by;
	const char *ruri;
	const char *from_tag;
	const char *to_tag; /* NULL: none */
	unsigned cseq;
	const char *cseq_method; /* NULL: method */
	const char *extra;	 /* more header lines */
};

static struct req_opts opts(const char *method)
{
	return (struct req_opts){
		.method = method,
		.branch = BRANCH,
		.sent_by = "pc33.atlanta.example.com",
		.ruri = "sip:bob@biloxi.example.com",
		.from_tag = "1928301774",
		.cseq = 314159,
		.extra = "",
	};
}

static char *request(char *out, size_t cap, struct req_opts o)
{
	char via_params[128] = "", to_tag[64] = "";

	if (o.branch)
		snprintf(via_params, sizeof(via_params), ";branch=%s",
			 o.branch);
	if (o.to_tag)
		snprintf(to_tag, sizeof(to_tag), ";tag=%s", o.to_tag);
	snprintf(out, cap,
		 "%s %s SIP/2.0\r\n"
		 "Via: SIP/2.0/UDP %s%s\r\n"
		 "%s"
		 "Max-Forwards: 70\r\n"
		 "To: Bob <sip:bob@biloxi.example.com>%s\r\n"
		 "From: Alice <sip:alice@atlanta.example.com>;tag=%s\r\n"
		 "Call-ID: " CALL_ID "\r\n"
		 "CSeq: %u %s\r\n"
		 "Contact: <sip:alice@pc33.atlanta.example.com>\r\n"
		 "Content-Length: 0\r\n\r\n",
		 o.method, o.ruri, o.sent_by, via_params, o.extra, to_tag,
		 o.from_tag, o.cseq, o.cseq_method ? o.cseq_method : o.method);
	return out;
}

/* Parsed messages live in a small pool (a sip_msg is ~10 KiB). */
static struct sip_msg *parse(const char *text)
{
	struct sip_msg *m = &fx->msgs[fx->next_msg++ % NMSGS];
	struct sip_error err;

	if (sip_msg_parse(m, text, strlen(text), SIP_FRAMING_DATAGRAM, NULL,
			  &err) != 0)
		fail_msg("parse failed: %s at %u:%u", err.reason, err.line,
			 err.column);
	return m;
}

/* A response to request text @p req; @p to_tag may be NULL. */
static char *response(char *out, size_t cap, const char *req, unsigned status,
		      const char *to_tag)
{
	const struct sip_msg *m = parse(req);
	struct sip_writer w;

	sip_wr_init(&w, out, cap);
	sip_wr_response_to(&w, m, status, NULL, sip_str_c(to_tag));
	assert_true(sip_wr_finish(&w, NULL, SIP_STR_NULL) > 0);
	out[w.len] = '\0';
	return out;
}

static void assert_hdr(const struct sip_msg *m, enum sip_hdr_id id,
		       const char *expect)
{
	const struct sip_hdr *h = sip_msg_hdr(m, id);

	assert_non_null(h);
	if (!sip_str_eq(h->value, sip_str_c(expect)))
		fail_msg("%s: got \"%.*s\", expected \"%s\"", sip_hdr_name(id),
			 SIP_STR_FMT(h->value), expect);
}

/* Receive @p text; returns sip_txn_table_recv()'s result. */
static int recv_text(const char *text, struct sip_txn **out)
{
	return sip_txn_table_recv(fx->tab, parse(text), fx->now, out);
}

static struct sip_txn *client(const char *text, unsigned flags)
{
	struct sip_txn *t;

	assert_int_equal(sip_txn_client_create(fx->tab, text, strlen(text),
					       flags, NULL, fx->now, &t),
			 0);
	assert_non_null(t);
	return t;
}

static struct sip_txn *server(const char *text, unsigned flags)
{
	struct sip_txn *t;

	assert_int_equal(sip_txn_server_create(fx->tab, parse(text), flags,
					       NULL, fx->now, &t),
			 0);
	assert_non_null(t);
	return t;
}

static int respond(struct sip_txn *t, const char *req, unsigned status,
		   const char *tag)
{
	char buf[2048];

	response(buf, sizeof(buf), req, status, tag);
	return sip_txn_respond(t, buf, strlen(buf), fx->now);
}

/* Deliver a response with @p status to the client transaction of @p req. */
static int reply(const char *req, unsigned status, const char *tag)
{
	char buf[2048];

	return recv_text(response(buf, sizeof(buf), req, status, tag), NULL);
}

/* ------------------------------------------------------------------------ */
/* Configuration and branches                                               */
/* ------------------------------------------------------------------------ */

static void test_config(void **state)
{
	struct sip_txn_config c;
	struct sip_txn_table *t;
	struct sip_txn_callbacks nosend = callbacks;

	(void)state;
	sip_txn_config_default(&c);
	assert_int_equal(c.t1, 500);
	assert_int_equal(c.t2, 4000);
	assert_int_equal(c.t4, 5000);
	assert_true(c.timer_c > 180000);
	assert_int_equal(c.timer_d, 32000);
	assert_int_equal(c.trying_delay, 200);

	assert_int_equal(sip_txn_table_create(NULL, &callbacks, NULL, &t), 0);
	assert_int_equal(sip_txn_table_count(t), 0);
	assert_int_equal(sip_txn_table_next_deadline(t), UINT64_MAX);
	sip_txn_table_destroy(t);

	c.timer_c = 180000; /* must be more than three minutes */
	assert_int_equal(sip_txn_table_create(&c, &callbacks, NULL, &t),
			 -EINVAL);
	assert_null(t);
	sip_txn_config_default(&c);
	c.t2 = 100;
	assert_int_equal(sip_txn_table_create(&c, &callbacks, NULL, &t),
			 -EINVAL);
	sip_txn_config_default(&c);
	c.timer_d = 31999;
	assert_int_equal(sip_txn_table_create(&c, &callbacks, NULL, &t),
			 -EINVAL);
	nosend.send = NULL;
	assert_int_equal(sip_txn_table_create(NULL, &nosend, NULL, &t),
			 -EINVAL);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void test_branch(void **state)
{
	static char seen[2000][SIP_BRANCH_SIZE];
	char b[SIP_BRANCH_SIZE];
	unsigned w = 99;

	(void)state;
	assert_int_equal(sip_branch_make(b, sizeof(b), 12, 0xabcull), 26);
	assert_string_equal(b, "z9hG4bK12.0000000000000abc");
	assert_int_equal(sip_branch_worker(sip_str_c(b), &w), 0);
	assert_int_equal(w, 12);
	assert_int_equal(sip_branch_make(b, sizeof(b), 65535, UINT64_MAX), 29);
	assert_int_equal(sip_branch_worker(sip_str_c(b), &w), 0);
	assert_int_equal(w, 65535);
	assert_int_equal(sip_branch_make(b, sizeof(b), 65536, 1), -EINVAL);
	assert_int_equal(sip_branch_make(b, 10, 1, 1), -ENOSPC);

	/* Branches of other stacks are not ours. */
	assert_int_equal(sip_branch_worker(SIP_STR_LIT("z9hG4bK776asdhds"), &w),
			 -EINVAL);
	assert_int_equal(sip_branch_worker(SIP_STR_LIT("z9hG4bK1.abc"), &w),
			 -EINVAL);
	assert_int_equal(
		sip_branch_worker(SIP_STR_LIT("z9hG4bK.0123456789abcdef"), &w),
		-EINVAL);
	assert_int_equal(
		sip_branch_worker(SIP_STR_LIT("z9hG4bK99999.0123456789abcdeF"),
				  &w),
		-EINVAL);
	assert_int_equal(
		sip_branch_worker(SIP_STR_LIT("z9hG4bK123456.0123456789abcdef"),
				  &w),
		-EINVAL);
	assert_int_equal(
		sip_branch_worker(SIP_STR_LIT("1.0123456789abcdef"), &w),
		-EINVAL);
	assert_true(sip_branch_is_rfc3261(SIP_STR_LIT("z9hG4bKx")));
	assert_false(sip_branch_is_rfc3261(SIP_STR_LIT("z9hg4bKx")));
	assert_false(sip_branch_is_rfc3261(SIP_STR_LIT("z9hG4b")));

	/* The table's branches carry its worker and never repeat. */
	for (int i = 0; i < 2000; i++) {
		int n = sip_txn_table_branch(fx->tab, seen[i], SIP_BRANCH_SIZE);

		assert_int_equal(n, (int)strlen(seen[i]));
		assert_int_equal(sip_branch_worker(sip_str_c(seen[i]), &w), 0);
		assert_int_equal(w, 7);
	}
	qsort(seen, 2000, SIP_BRANCH_SIZE, cmp_str);
	for (int i = 1; i < 2000; i++)
		assert_string_not_equal(seen[i - 1], seen[i]);
}

/* ------------------------------------------------------------------------ */
/* INVITE client (Figure 5, RFC 6026 Figure 3)                              */
/* ------------------------------------------------------------------------ */

static void test_ict_timer_a_b(void **state)
{
	char req[2048];
	struct sip_txn *t;
	const uint64_t sends[] = {0, 500, 1500, 3500, 7500, 15500, 31500};

	(void)state;
	request(req, sizeof(req), opts("INVITE"));
	t = client(req, 0);
	assert_int_equal(sip_txn_kind(t), SIP_TXN_INVITE_CLIENT);
	assert_int_equal(sip_txn_state(t), SIP_TXN_CALLING);
	assert_int_equal(sip_txn_deadline(t, SIP_TXN_TIMER_A), 500);
	assert_int_equal(sip_txn_deadline(t, SIP_TXN_TIMER_B), 32000);
	assert_int_equal(sip_txn_deadline(t, SIP_TXN_TIMER_C), UINT64_MAX);
	assert_int_equal(sip_txn_table_next_deadline(fx->tab), 500);
	assert_true(sip_str_eq(sip_txn_branch(t), SIP_STR_LIT(BRANCH)));
	assert_true(sip_str_eq(sip_txn_method(t), SIP_STR_LIT("INVITE")));

	/* Timer A doubles without a cap: T1, 2T1, 4T1, ... */
	advance(500);
	assert_int_equal(sip_txn_deadline(t, SIP_TXN_TIMER_A), 1500);
	advance(1500);
	assert_int_equal(sip_txn_deadline(t, SIP_TXN_TIMER_A), 3500);
	run_until(31999);
	assert_int_equal(sip_txn_deadline(t, SIP_TXN_TIMER_A), 63500);
	assert_int_equal(count(EV_SEND), 7);
	for (size_t i = 0; i < 7; i++) {
		assert_int_equal(fx->ev[i].at, sends[i]);
		assert_string_equal(fx->ev[i].data, req);
	}
	assert_int_equal(sip_txn_state(t), SIP_TXN_CALLING);

	/* Timer B: timeout (the TU's 408) and Terminated. */
	advance(32000);
	assert_int_equal(fx->n, 9);
	assert_int_equal(fx->ev[7].kind, EV_TIMEOUT);
	assert_int_equal(fx->ev[7].timer, SIP_TXN_TIMER_B);
	assert_int_equal(fx->ev[8].kind, EV_TERM);
	assert_int_equal(sip_txn_table_count(fx->tab), 0);
	assert_int_equal(sip_txn_table_next_deadline(fx->tab), UINT64_MAX);
}

static void test_ict_reliable_timeout(void **state)
{
	char req[2048];
	struct sip_txn *t;

	(void)state;
	fx->now = 1000;
	t = client(request(req, sizeof(req), opts("INVITE")), SIP_TXN_RELIABLE);
	assert_int_equal(sip_txn_deadline(t, SIP_TXN_TIMER_A), UINT64_MAX);
	assert_int_equal(sip_txn_deadline(t, SIP_TXN_TIMER_B), 33000);
	run_until(32999);
	assert_int_equal(count(EV_SEND), 1);
	advance(33000);
	assert_int_equal(last(EV_TIMEOUT)->timer, SIP_TXN_TIMER_B);
	assert_int_equal(count(EV_TERM), 1);
}

static void test_ict_non2xx_ack(void **state)
{
	char req[2048], resp[2048];
	struct req_opts o = opts("INVITE");
	struct sip_txn *t, *m;
	const struct sip_msg *ack;
	const struct sip_hdr *h;

	(void)state;
	/* A forwarded INVITE: two Via values, two Route headers. */
	o.extra = "Via: SIP/2.0/UDP upstream.example.com;branch=z9hG4bKup\r\n"
		  "Route: <sip:p1.example.com;lr>\r\n"
		  "Route: <sip:p2.example.com;lr>\r\n";
	request(req, sizeof(req), o);
	t = client(req, 0);
	fx->now = 100;
	assert_int_equal(reply(req, 180, "as7"), 1);
	assert_int_equal(sip_txn_state(t), SIP_TXN_PROCEEDING);
	assert_int_equal(last(EV_RESPONSE)->status, 180);
	/* Proceeding: no more retransmissions, no Timer B. */
	assert_int_equal(sip_txn_deadline(t, SIP_TXN_TIMER_A), UINT64_MAX);
	assert_int_equal(sip_txn_deadline(t, SIP_TXN_TIMER_B), UINT64_MAX);
	assert_int_equal(sip_txn_table_next_deadline(fx->tab), UINT64_MAX);
	assert_int_equal(reply(req, 183, "as7"), 1);
	assert_int_equal(last(EV_RESPONSE)->status, 183);

	fx->now = 2000;
	clear();
	response(resp, sizeof(resp), req, 486, "as7");
	assert_int_equal(recv_text(resp, &m), 1);
	assert_ptr_equal(m, t);
	assert_int_equal(sip_txn_state(t), SIP_TXN_COMPLETED);
	assert_int_equal(sip_txn_deadline(t, SIP_TXN_TIMER_D), 34000);
	/* Response up first, then the ACK. */
	assert_int_equal(fx->n, 2);
	assert_int_equal(fx->ev[0].kind, EV_RESPONSE);
	assert_int_equal(fx->ev[0].status, 486);
	assert_int_equal(fx->ev[1].kind, EV_SEND);

	/* §17.1.1.3 ACK contents. */
	ack = parse(fx->ev[1].data);
	assert_true(ack->is_request);
	assert_int_equal(ack->method_id, SIP_METHOD_ACK);
	assert_true(sip_str_eq(ack->ruri,
			       SIP_STR_LIT("sip:bob@biloxi.example.com")));
	assert_int_equal(ack->nvia, 1);
	assert_hdr(ack, SIP_HDR_VIA,
		   "SIP/2.0/UDP pc33.atlanta.example.com;branch=" BRANCH);
	assert_hdr(ack, SIP_HDR_CSEQ, "314159 ACK");
	assert_hdr(ack, SIP_HDR_CALL_ID, CALL_ID);
	assert_hdr(ack, SIP_HDR_FROM,
		   "Alice <sip:alice@atlanta.example.com>;tag=1928301774");
	assert_hdr(ack, SIP_HDR_TO, "Bob <sip:bob@biloxi.example.com>;tag=as7");
	assert_hdr(ack, SIP_HDR_MAX_FORWARDS, "70");
	assert_int_equal(sip_msg_hdr_count(ack, SIP_HDR_ROUTE), 2);
	h = sip_msg_hdr(ack, SIP_HDR_ROUTE);
	assert_true(
		sip_str_eq(h->value, SIP_STR_LIT("<sip:p1.example.com;lr>")));
	h = sip_msg_hdr_next(ack, h);
	assert_true(
		sip_str_eq(h->value, SIP_STR_LIT("<sip:p2.example.com;lr>")));
	assert_null(sip_msg_hdr(ack, SIP_HDR_CONTACT));
	assert_int_equal(ack->body.len, 0);
	assert_true(ack->has_content_length);
	assert_int_equal(sip_msg_check(ack, NULL), 0);

	/* A retransmitted 486 is absorbed and ACKed again. */
	clear();
	fx->now = 3000;
	assert_int_equal(recv_text(resp, NULL), 1);
	assert_int_equal(fx->n, 1);
	assert_int_equal(fx->ev[0].kind, EV_SEND);
	assert_int_equal(parse(fx->ev[0].data)->method_id, SIP_METHOD_ACK);
	/* So is a late provisional. */
	assert_int_equal(reply(req, 180, "as7"), 1);
	assert_int_equal(fx->n, 1);

	run_until(33999);
	assert_int_equal(sip_txn_state(t), SIP_TXN_COMPLETED);
	advance(34000);
	assert_int_equal(last(EV_TERM)->txn, t);
	assert_int_equal(count(EV_TIMEOUT), 0);
	assert_int_equal(sip_txn_table_count(fx->tab), 0);
	/* Once terminated, the response matches nothing. */
	assert_int_equal(recv_text(resp, NULL), 0);
}

static void test_ict_calling_to_completed_reliable(void **state)
{
	char req[2048];
	struct sip_txn *t;

	(void)state;
	request(req, sizeof(req), opts("INVITE"));
	t = client(req, SIP_TXN_RELIABLE);
	clear();
	/* Calling -> Completed directly; D is zero on a reliable transport. */
	assert_int_equal(reply(req, 603, "x1"), 1);
	assert_int_equal(fx->n, 3);
	assert_int_equal(fx->ev[0].kind, EV_RESPONSE);
	assert_int_equal(fx->ev[0].status, 603);
	assert_int_equal(fx->ev[1].kind, EV_SEND);
	assert_int_equal(parse(fx->ev[1].data)->method_id, SIP_METHOD_ACK);
	assert_int_equal(fx->ev[2].kind, EV_TERM);
	assert_ptr_equal(fx->ev[2].txn, t);
	assert_int_equal(sip_txn_table_count(fx->tab), 0);
	assert_int_equal(sip_txn_table_next_deadline(fx->tab), UINT64_MAX);
}

static void test_ict_accepted(void **state)
{
	char req[2048];
	struct sip_txn *t;

	(void)state;
	request(req, sizeof(req), opts("INVITE"));
	t = client(req, 0);
	fx->now = 700;
	assert_int_equal(count(EV_SEND), 1); /* A not run yet */
	clear();
	/* RFC 6026: 2xx -> Accepted, passed up, no ACK from the txn. */
	assert_int_equal(reply(req, 200, "b1"), 1);
	assert_int_equal(sip_txn_state(t), SIP_TXN_ACCEPTED);
	assert_int_equal(fx->n, 1);
	assert_int_equal(fx->ev[0].status, 200);
	assert_int_equal(sip_txn_deadline(t, SIP_TXN_TIMER_M), 700 + 32000);
	assert_int_equal(sip_txn_deadline(t, SIP_TXN_TIMER_A), UINT64_MAX);
	assert_int_equal(sip_txn_deadline(t, SIP_TXN_TIMER_B), UINT64_MAX);
	/* 2xx retransmissions and forked 2xx go up; others are absorbed. */
	assert_int_equal(reply(req, 200, "b1"), 1);
	assert_int_equal(reply(req, 202, "b2"), 1);
	assert_int_equal(reply(req, 180, "b1"), 1);
	assert_int_equal(reply(req, 486, "b3"), 1);
	assert_int_equal(count(EV_RESPONSE), 3);
	assert_int_equal(count(EV_SEND), 0);
	run_until(32699);
	assert_int_equal(sip_txn_state(t), SIP_TXN_ACCEPTED);
	advance(32700);
	assert_int_equal(count(EV_TERM), 1);
	assert_int_equal(count(EV_TIMEOUT), 0);
}

static void test_ict_proceeding_to_accepted(void **state)
{
	char req[2048];
	struct sip_txn *t;

	(void)state;
	request(req, sizeof(req), opts("INVITE"));
	t = client(req, SIP_TXN_RELIABLE);
	assert_int_equal(reply(req, 100, NULL), 1);
	assert_int_equal(sip_txn_state(t), SIP_TXN_PROCEEDING);
	fx->now = 10;
	assert_int_equal(reply(req, 200, "z"), 1);
	assert_int_equal(sip_txn_state(t), SIP_TXN_ACCEPTED);
	/* Timer M is 64*T1 on every transport. */
	assert_int_equal(sip_txn_deadline(t, SIP_TXN_TIMER_M), 32010);
}

/* ------------------------------------------------------------------------ */
/* Non-INVITE client (Figure 6)                                             */
/* ------------------------------------------------------------------------ */

static void test_nict_timer_e_f(void **state)
{
	char req[2048];
	struct sip_txn *t;
	const uint64_t sends[] = {0,	 500,	1500,  3500,  7500, 11500,
				  15500, 19500, 23500, 27500, 31500};

	(void)state;
	request(req, sizeof(req), opts("OPTIONS"));
	t = client(req, 0);
	assert_int_equal(sip_txn_kind(t), SIP_TXN_NON_INVITE_CLIENT);
	assert_int_equal(sip_txn_state(t), SIP_TXN_TRYING);
	assert_int_equal(sip_txn_deadline(t, SIP_TXN_TIMER_E), 500);
	assert_int_equal(sip_txn_deadline(t, SIP_TXN_TIMER_F), 32000);
	run_until(31999);
	/* E doubles up to T2 = 4 s. */
	assert_int_equal(count(EV_SEND), 11);
	for (size_t i = 0; i < 11; i++)
		assert_int_equal(fx->ev[i].at, sends[i]);
	assert_int_equal(sip_txn_deadline(t, SIP_TXN_TIMER_E), 35500);
	advance(32000);
	assert_int_equal(last(EV_TIMEOUT)->timer, SIP_TXN_TIMER_F);
	assert_int_equal(fx->ev[fx->n - 1].kind, EV_TERM);
}

static void test_nict_proceeding_completed(void **state)
{
	char req[2048], resp[2048];
	struct sip_txn *t;

	(void)state;
	request(req, sizeof(req), opts("REGISTER"));
	t = client(req, 0);
	fx->now = 100;
	assert_int_equal(reply(req, 100, NULL), 1);
	assert_int_equal(sip_txn_state(t), SIP_TXN_PROCEEDING);
	assert_int_equal(last(EV_RESPONSE)->status, 100);
	/* E keeps running; in Proceeding it resets to T2. */
	advance(500);
	assert_int_equal(count(EV_SEND), 2);
	assert_int_equal(sip_txn_deadline(t, SIP_TXN_TIMER_E), 4500);
	advance(4500);
	assert_int_equal(sip_txn_deadline(t, SIP_TXN_TIMER_E), 8500);
	assert_int_equal(reply(req, 101, NULL), 1);
	assert_int_equal(last(EV_RESPONSE)->status, 101);

	fx->now = 5000;
	response(resp, sizeof(resp), req, 200, "r1");
	assert_int_equal(recv_text(resp, NULL), 1);
	assert_int_equal(sip_txn_state(t), SIP_TXN_COMPLETED);
	assert_int_equal(last(EV_RESPONSE)->status, 200);
	assert_int_equal(sip_txn_deadline(t, SIP_TXN_TIMER_E), UINT64_MAX);
	assert_int_equal(sip_txn_deadline(t, SIP_TXN_TIMER_F), UINT64_MAX);
	assert_int_equal(sip_txn_deadline(t, SIP_TXN_TIMER_K), 10000);
	/* Retransmissions of the final response are absorbed. */
	clear();
	assert_int_equal(recv_text(resp, NULL), 1);
	assert_int_equal(reply(req, 404, "r1"), 1);
	assert_int_equal(fx->n, 0);
	advance(9999);
	assert_int_equal(fx->n, 0);
	advance(10000);
	assert_int_equal(fx->n, 1);
	assert_int_equal(fx->ev[0].kind, EV_TERM);
}

static void test_nict_reliable(void **state)
{
	char req[2048];
	struct sip_txn *t;

	(void)state;
	request(req, sizeof(req), opts("BYE"));
	t = client(req, SIP_TXN_RELIABLE);
	assert_int_equal(sip_txn_deadline(t, SIP_TXN_TIMER_E), UINT64_MAX);
	assert_int_equal(sip_txn_deadline(t, SIP_TXN_TIMER_F), 32000);
	clear();
	/* Trying -> Completed -> Terminated at once (K = 0). */
	assert_int_equal(reply(req, 481, "q"), 1);
	assert_int_equal(fx->n, 2);
	assert_int_equal(fx->ev[0].status, 481);
	assert_int_equal(fx->ev[1].kind, EV_TERM);
	assert_int_equal(sip_txn_table_count(fx->tab), 0);
}

/* ------------------------------------------------------------------------ */
/* INVITE server (Figure 7, RFC 6026 Figure 5)                              */
/* ------------------------------------------------------------------------ */

static void test_ist_uas_trying_delay(void **state)
{
	char req[2048];
	struct sip_txn *t;
	const struct sip_msg *m;

	(void)state;
	fx->now = 1000;
	request(req, sizeof(req), opts("INVITE"));
	t = server(req, 0);
	assert_int_equal(sip_txn_kind(t), SIP_TXN_INVITE_SERVER);
	assert_int_equal(sip_txn_state(t), SIP_TXN_PROCEEDING);
	assert_int_equal(fx->n, 1);
	assert_int_equal(fx->ev[0].kind, EV_REQUEST);
	assert_int_equal(fx->ev[0].method, SIP_METHOD_INVITE);
	assert_int_equal(sip_txn_deadline(t, SIP_TXN_TIMER_TRYING), 1200);
	advance(1199);
	assert_int_equal(count(EV_SEND), 0);
	advance(1200);
	assert_int_equal(count(EV_SEND), 1);
	m = parse(last(EV_SEND)->data);
	assert_false(m->is_request);
	assert_int_equal(m->status, 100);
	assert_hdr(m, SIP_HDR_VIA,
		   "SIP/2.0/UDP pc33.atlanta.example.com;branch=" BRANCH);
	assert_hdr(m, SIP_HDR_TO, "Bob <sip:bob@biloxi.example.com>");
	assert_hdr(m, SIP_HDR_CSEQ, "314159 INVITE");
	/* An INVITE retransmission gets the 100 again. */
	assert_int_equal(recv_text(req, NULL), 1);
	assert_int_equal(count(EV_SEND), 2);
	assert_int_equal(parse(last(EV_SEND)->data)->status, 100);
	assert_int_equal(count(EV_REQUEST), 1);
}

static void test_ist_uas_answers_first(void **state)
{
	char req[2048];
	struct sip_txn *t;

	(void)state;
	request(req, sizeof(req), opts("INVITE"));
	t = server(req, 0);
	fx->now = 150;
	assert_int_equal(respond(t, req, 180, "u1"), 0);
	assert_int_equal(sip_txn_deadline(t, SIP_TXN_TIMER_TRYING), UINT64_MAX);
	run_until(100000);
	/* Only the 180: no 100 Trying after the TU answered. */
	assert_int_equal(count(EV_SEND), 1);
	assert_int_equal(parse(last(EV_SEND)->data)->status, 180);
}

static void test_ist_retransmit_before_trying(void **state)
{
	char req[2048];
	struct sip_txn *t;

	(void)state;
	request(req, sizeof(req), opts("INVITE"));
	t = server(req, 0);
	fx->now = 50;
	/* A retransmission before 200 ms: the 100 goes out now, once. */
	assert_int_equal(recv_text(req, NULL), 1);
	assert_int_equal(count(EV_SEND), 1);
	assert_int_equal(parse(last(EV_SEND)->data)->status, 100);
	assert_int_equal(sip_txn_deadline(t, SIP_TXN_TIMER_TRYING), UINT64_MAX);
	run_until(1000);
	assert_int_equal(count(EV_SEND), 1);
}

static void test_ist_proxy_trying(void **state)
{
	char req[2048];

	(void)state;
	request(req, sizeof(req), opts("INVITE"));
	(void)server(req, SIP_TXN_PROXY);
	/* A proxy sends 100 at once, before passing the request up. */
	assert_int_equal(fx->n, 2);
	assert_int_equal(fx->ev[0].kind, EV_SEND);
	assert_int_equal(parse(fx->ev[0].data)->status, 100);
	assert_int_equal(fx->ev[0].at, 0);
	assert_int_equal(fx->ev[1].kind, EV_REQUEST);
	run_until(1000);
	assert_int_equal(count(EV_SEND), 1);
}

static void test_ist_completed_confirmed(void **state)
{
	char req[2048], ack[2048];
	struct req_opts o = opts("ACK");
	struct sip_txn *t, *m;
	const uint64_t g[] = {1500, 2500, 4500, 8500, 12500, 16500};

	(void)state;
	request(req, sizeof(req), opts("INVITE"));
	t = server(req, 0);
	assert_int_equal(respond(t, req, 180, "s1"), 0);
	/* 180 retransmitted on an INVITE retransmission. */
	assert_int_equal(recv_text(req, NULL), 1);
	assert_int_equal(count(EV_SEND), 2);
	assert_int_equal(parse(last(EV_SEND)->data)->status, 180);

	fx->now = 1000;
	clear();
	assert_int_equal(respond(t, req, 486, "s1"), 0);
	assert_int_equal(sip_txn_state(t), SIP_TXN_COMPLETED);
	assert_int_equal(parse(last(EV_SEND)->data)->status, 486);
	assert_int_equal(sip_txn_deadline(t, SIP_TXN_TIMER_G), 1500);
	assert_int_equal(sip_txn_deadline(t, SIP_TXN_TIMER_H), 33000);
	/* Another final response from the TU is refused. */
	assert_int_equal(respond(t, req, 500, "s1"), -EPROTO);
	/* G: T1, 2T1, 4T1, then capped at T2. */
	run_until(16500);
	assert_int_equal(count(EV_SEND), 7);
	for (size_t i = 1; i < 7; i++) {
		assert_int_equal(fx->ev[i].at, g[i - 1]);
		assert_int_equal(parse(fx->ev[i].data)->status, 486);
	}
	assert_int_equal(sip_txn_deadline(t, SIP_TXN_TIMER_G), 20500);
	/* INVITE retransmission: the 486 again. */
	assert_int_equal(recv_text(req, NULL), 1);
	assert_int_equal(count(EV_SEND), 8);

	/* ACK (same branch) -> Confirmed, absorbed, G and H stop. */
	o.to_tag = "s1";
	request(ack, sizeof(ack), o);
	fx->now = 17000;
	clear();
	assert_int_equal(recv_text(ack, &m), 1);
	assert_ptr_equal(m, t);
	assert_int_equal(sip_txn_state(t), SIP_TXN_CONFIRMED);
	assert_int_equal(fx->n, 0);
	assert_int_equal(sip_txn_deadline(t, SIP_TXN_TIMER_G), UINT64_MAX);
	assert_int_equal(sip_txn_deadline(t, SIP_TXN_TIMER_H), UINT64_MAX);
	assert_int_equal(sip_txn_deadline(t, SIP_TXN_TIMER_I), 22000);
	/* Confirmed absorbs ACKs and INVITEs. */
	assert_int_equal(recv_text(ack, NULL), 1);
	assert_int_equal(recv_text(req, NULL), 1);
	assert_int_equal(fx->n, 0);
	advance(21999);
	assert_int_equal(fx->n, 0);
	advance(22000);
	assert_int_equal(fx->n, 1);
	assert_int_equal(fx->ev[0].kind, EV_TERM);
}

static void test_ist_timer_h(void **state)
{
	char req[2048];
	struct sip_txn *t;

	(void)state;
	request(req, sizeof(req), opts("INVITE"));
	t = server(req, 0);
	assert_int_equal(respond(t, req, 404, "h"), 0);
	run_until(31999);
	assert_int_equal(count(EV_TIMEOUT), 0);
	advance(32000);
	assert_int_equal(last(EV_TIMEOUT)->timer, SIP_TXN_TIMER_H);
	assert_int_equal(fx->ev[fx->n - 1].kind, EV_TERM);
	assert_int_equal(sip_txn_table_count(fx->tab), 0);
}

static void test_ist_reliable(void **state)
{
	char req[2048], ack[2048];
	struct req_opts o = opts("ACK");
	struct sip_txn *t;

	(void)state;
	request(req, sizeof(req), opts("INVITE"));
	t = server(req, SIP_TXN_RELIABLE);
	assert_int_equal(respond(t, req, 486, "r"), 0);
	/* No G on a reliable transport; H still runs. */
	assert_int_equal(sip_txn_deadline(t, SIP_TXN_TIMER_G), UINT64_MAX);
	assert_int_equal(sip_txn_deadline(t, SIP_TXN_TIMER_H), 32000);
	o.to_tag = "r";
	clear();
	/* ACK: Confirmed and, with I = 0, Terminated at once. */
	assert_int_equal(recv_text(request(ack, sizeof(ack), o), NULL), 1);
	assert_int_equal(fx->n, 1);
	assert_int_equal(fx->ev[0].kind, EV_TERM);
	assert_int_equal(sip_txn_table_count(fx->tab), 0);
}

static void test_ist_accepted(void **state)
{
	char req[2048], ack[2048];
	struct req_opts o = opts("ACK");
	struct sip_txn *t;

	(void)state;
	request(req, sizeof(req), opts("INVITE"));
	t = server(req, 0);
	fx->now = 100;
	assert_int_equal(respond(t, req, 200, "ok"), 0);
	assert_int_equal(sip_txn_state(t), SIP_TXN_ACCEPTED);
	assert_int_equal(sip_txn_deadline(t, SIP_TXN_TIMER_L), 32100);
	assert_int_equal(sip_txn_deadline(t, SIP_TXN_TIMER_G), UINT64_MAX);
	clear();
	/* INVITE retransmissions are absorbed, no 2xx from the txn. */
	assert_int_equal(recv_text(req, NULL), 1);
	assert_int_equal(fx->n, 0);
	run_until(20000);
	assert_int_equal(fx->n, 0);
	/* The TU's own 2xx retransmissions pass through. */
	assert_int_equal(respond(t, req, 200, "ok"), 0);
	assert_int_equal(fx->n, 1);
	assert_int_equal(parse(fx->ev[0].data)->status, 200);
	assert_int_equal(respond(t, req, 486, "ok"), -EPROTO);
	assert_int_equal(respond(t, req, 180, "ok"), -EPROTO);
	/* An ACK matching it is passed up (RFC 6026). */
	o.to_tag = "ok";
	assert_int_equal(recv_text(request(ack, sizeof(ack), o), NULL), 1);
	assert_int_equal(last(EV_REQUEST)->method, SIP_METHOD_ACK);
	assert_int_equal(sip_txn_state(t), SIP_TXN_ACCEPTED);
	advance(32099);
	assert_int_equal(count(EV_TERM), 0);
	advance(32100);
	assert_int_equal(count(EV_TERM), 1);
	assert_int_equal(count(EV_TIMEOUT), 0);
}

/* ------------------------------------------------------------------------ */
/* Non-INVITE server (Figure 8)                                             */
/* ------------------------------------------------------------------------ */

static void test_nist_unreliable(void **state)
{
	char req[2048];
	struct sip_txn *t;

	(void)state;
	request(req, sizeof(req), opts("BYE"));
	t = server(req, 0);
	assert_int_equal(sip_txn_kind(t), SIP_TXN_NON_INVITE_SERVER);
	assert_int_equal(sip_txn_state(t), SIP_TXN_TRYING);
	assert_int_equal(last(EV_REQUEST)->method, SIP_METHOD_BYE);
	assert_int_equal(sip_txn_table_next_deadline(fx->tab), UINT64_MAX);
	/* Trying: retransmissions are absorbed silently. */
	assert_int_equal(recv_text(req, NULL), 1);
	assert_int_equal(fx->n, 1);
	assert_int_equal(respond(t, req, 100, NULL), 0);
	assert_int_equal(sip_txn_state(t), SIP_TXN_PROCEEDING);
	assert_int_equal(recv_text(req, NULL), 1);
	assert_int_equal(count(EV_SEND), 2);
	assert_int_equal(parse(last(EV_SEND)->data)->status, 100);

	fx->now = 300;
	assert_int_equal(respond(t, req, 200, "n"), 0);
	assert_int_equal(sip_txn_state(t), SIP_TXN_COMPLETED);
	assert_int_equal(sip_txn_deadline(t, SIP_TXN_TIMER_J), 32300);
	assert_int_equal(recv_text(req, NULL), 1);
	assert_int_equal(count(EV_SEND), 4);
	assert_int_equal(parse(last(EV_SEND)->data)->status, 200);
	/* Later final responses from the TU are discarded. */
	assert_int_equal(respond(t, req, 500, "n"), -EPROTO);
	assert_int_equal(count(EV_SEND), 4);
	assert_int_equal(count(EV_REQUEST), 1);
	run_until(32299);
	assert_int_equal(count(EV_TERM), 0);
	advance(32300);
	assert_int_equal(count(EV_TERM), 1);
	assert_int_equal(count(EV_SEND), 4); /* no retransmission timer */
}

static void test_nist_reliable(void **state)
{
	char req[2048];
	struct sip_txn *t;

	(void)state;
	request(req, sizeof(req), opts("MESSAGE"));
	t = server(req, SIP_TXN_RELIABLE);
	clear();
	/* Trying -> Completed -> Terminated at once (J = 0). */
	assert_int_equal(respond(t, req, 202, "m"), 0);
	assert_int_equal(fx->n, 2);
	assert_int_equal(fx->ev[0].kind, EV_SEND);
	assert_int_equal(fx->ev[1].kind, EV_TERM);
	assert_int_equal(sip_txn_table_count(fx->tab), 0);
	assert_int_equal(recv_text(req, NULL), 0);
}

static void test_respond_errors(void **state)
{
	char req[2048], bye[2048];
	struct sip_txn *t, *c;

	(void)state;
	request(req, sizeof(req), opts("INVITE"));
	t = server(req, 0);
	/* Not a response; CSeq method of another transaction. */
	assert_int_equal(sip_txn_respond(t, req, strlen(req), 0), -EINVAL);
	assert_int_equal(sip_txn_respond(t, "junk", 4, 0), -EINVAL);
	request(bye, sizeof(bye), opts("BYE"));
	assert_int_equal(respond(t, bye, 200, "x"), -EINVAL);
	/* Clients take no responses from the TU. */
	request(bye, sizeof(bye), opts("OPTIONS"));
	c = client(bye, 0);
	assert_int_equal(respond(c, bye, 200, "x"), -EPROTO);
}

/* ------------------------------------------------------------------------ */
/* Matching                                                                 */
/* ------------------------------------------------------------------------ */

static void test_match_responses(void **state)
{
	char inv[2048], can[2048], resp[2048], other[2048];
	struct req_opts o = opts("INVITE");
	struct sip_txn *ti, *tc, *m;

	(void)state;
	request(inv, sizeof(inv), o);
	ti = client(inv, 0);
	/* CANCEL has the INVITE's branch (§9.1) but its own transaction. */
	o.method = "CANCEL";
	request(can, sizeof(can), o);
	tc = client(can, 0);
	assert_ptr_not_equal(ti, tc);
	assert_int_equal(sip_txn_table_count(fx->tab), 2);

	response(resp, sizeof(resp), can, 200, "c");
	assert_ptr_equal(sip_txn_table_match(fx->tab, parse(resp)), tc);
	assert_int_equal(recv_text(resp, &m), 1);
	assert_ptr_equal(m, tc);
	assert_int_equal(sip_txn_state(tc), SIP_TXN_COMPLETED);
	assert_int_equal(sip_txn_state(ti), SIP_TXN_CALLING);
	response(resp, sizeof(resp), inv, 487, "c");
	assert_ptr_equal(sip_txn_table_match(fx->tab, parse(resp)), ti);

	/* Another branch, or another CSeq method: no match. */
	o = opts("INVITE");
	o.branch = "z9hG4bK7.00000000000000ff";
	request(other, sizeof(other), o);
	response(resp, sizeof(resp), other, 200, "c");
	assert_null(sip_txn_table_match(fx->tab, parse(resp)));
	assert_int_equal(recv_text(resp, NULL), 0);
	o = opts("INVITE");
	o.cseq_method = "BYE";
	o.method = "BYE";
	request(other, sizeof(other), o);
	response(resp, sizeof(resp), other, 200, "c");
	assert_int_equal(recv_text(resp, NULL), 0);

	/* Creation refusals. */
	assert_int_equal(sip_txn_client_create(fx->tab, inv, strlen(inv), 0,
					       NULL, 0, &m),
			 -EEXIST);
	o = opts("ACK");
	request(other, sizeof(other), o);
	assert_int_equal(sip_txn_client_create(fx->tab, other, strlen(other), 0,
					       NULL, 0, &m),
			 -EINVAL);
	o = opts("OPTIONS");
	o.branch = "776asdhds"; /* no cookie: not ours */
	request(other, sizeof(other), o);
	assert_int_equal(sip_txn_client_create(fx->tab, other, strlen(other), 0,
					       NULL, 0, &m),
			 -EINVAL);
	o = opts("OPTIONS");
	o.cseq_method = "INFO";
	request(other, sizeof(other), o);
	assert_int_equal(sip_txn_client_create(fx->tab, other, strlen(other), 0,
					       NULL, 0, &m),
			 -EINVAL);
	assert_null(m);
	assert_int_equal(sip_txn_table_count(fx->tab), 2);
	/* A response without a usable Via is an error. */
	assert_int_equal(recv_text("SIP/2.0 200 OK\r\nCSeq: 1 INVITE\r\n"
				   "Content-Length: 0\r\n\r\n",
				   NULL),
			 -EBADMSG);
}

static void test_match_requests_cookie(void **state)
{
	char inv[2048], other[2048];
	struct req_opts o = opts("INVITE");
	struct sip_txn *ti, *tc, *m;

	(void)state;
	request(inv, sizeof(inv), o);
	ti = server(inv, 0);
	assert_ptr_equal(sip_txn_table_match(fx->tab, parse(inv)), ti);
	assert_int_equal(
		sip_txn_server_create(fx->tab, parse(inv), 0, NULL, 0, &m),
		-EEXIST);

	/* Same branch, other sent-by (host or port): another request. */
	o.sent_by = "pc34.atlanta.example.com";
	assert_null(sip_txn_table_match(
		fx->tab, parse(request(other, sizeof(other), o))));
	o.sent_by = "PC33.atlanta.example.COM"; /* host case is ignored */
	assert_ptr_equal(
		sip_txn_table_match(fx->tab,
				    parse(request(other, sizeof(other), o))),
		ti);
	o.sent_by = "pc33.atlanta.example.com:5070";
	assert_null(sip_txn_table_match(
		fx->tab, parse(request(other, sizeof(other), o))));
	/* Same branch, other method. */
	o = opts("BYE");
	assert_null(sip_txn_table_match(
		fx->tab, parse(request(other, sizeof(other), o))));
	/* The ACK of a non-2xx carries the INVITE's branch and matches it. */
	o = opts("ACK");
	o.to_tag = "t";
	assert_ptr_equal(
		sip_txn_table_match(fx->tab,
				    parse(request(other, sizeof(other), o))),
		ti);
	/* The ACK of a 2xx has a new branch: for the TU, not the txn. */
	o.branch = "z9hG4bKack2xx";
	assert_null(sip_txn_table_match(
		fx->tab, parse(request(other, sizeof(other), o))));
	assert_int_equal(recv_text(other, NULL), 0);

	/* CANCEL: no match with the INVITE; its own transaction; the table
	 * finds the INVITE it cancels. */
	o = opts("CANCEL");
	request(other, sizeof(other), o);
	assert_null(sip_txn_table_match(fx->tab, parse(other)));
	assert_ptr_equal(sip_txn_table_find_invite(fx->tab, parse(other)), ti);
	tc = server(other, 0);
	assert_int_equal(sip_txn_kind(tc), SIP_TXN_NON_INVITE_SERVER);
	assert_ptr_equal(sip_txn_table_match(fx->tab, parse(other)), tc);
	assert_ptr_equal(sip_txn_table_find_invite(fx->tab, parse(other)), ti);
	/* A CANCEL for another branch cancels nothing; an INVITE is no
	 * CANCEL. */
	o.branch = "z9hG4bKnothing";
	assert_null(sip_txn_table_find_invite(
		fx->tab, parse(request(other, sizeof(other), o))));
	assert_null(sip_txn_table_find_invite(fx->tab, parse(inv)));
	/* ACK creates no transaction. */
	o = opts("ACK");
	o.branch = "z9hG4bKlonely";
	assert_int_equal(
		sip_txn_server_create(fx->tab,
				      parse(request(other, sizeof(other), o)),
				      0, NULL, 0, &m),
		-EINVAL);
}

static void test_match_rfc2543(void **state)
{
	char inv[2048], other[2048], ack[2048];
	struct req_opts o = opts("INVITE");
	struct sip_txn *ti, *ti2, *tc;

	(void)state;
	o.branch = NULL; /* an RFC 2543 client: no branch */
	request(inv, sizeof(inv), o);
	ti = server(inv, 0);
	assert_ptr_equal(sip_txn_table_match(fx->tab, parse(inv)), ti);
	/* An equivalent Request-URI (§19.1.4: host case) still matches. */
	o.ruri = "sip:bob@BILOXI.example.com";
	assert_ptr_equal(
		sip_txn_table_match(fx->tab,
				    parse(request(other, sizeof(other), o))),
		ti);
	/* Each of From tag, Call-ID... Request-URI, CSeq, top Via, To tag. */
	o = opts("INVITE");
	o.branch = NULL;
	o.from_tag = "other";
	assert_null(sip_txn_table_match(
		fx->tab, parse(request(other, sizeof(other), o))));
	o.from_tag = "1928301774";
	o.ruri = "sip:carol@biloxi.example.com";
	assert_null(sip_txn_table_match(
		fx->tab, parse(request(other, sizeof(other), o))));
	o.ruri = "sip:bob@biloxi.example.com";
	o.cseq = 314160;
	assert_null(sip_txn_table_match(
		fx->tab, parse(request(other, sizeof(other), o))));
	o.cseq = 314159;
	o.sent_by = "elsewhere.example.com";
	assert_null(sip_txn_table_match(
		fx->tab, parse(request(other, sizeof(other), o))));
	o.sent_by = "pc33.atlanta.example.com";
	o.to_tag = "z";
	assert_null(sip_txn_table_match(
		fx->tab, parse(request(other, sizeof(other), o))));
	/* A branch without the cookie also uses the fallback. */
	o = opts("INVITE");
	o.branch = "oldbranch1";
	o.cseq = 5;
	request(other, sizeof(other), o);
	ti2 = server(other, 0);
	assert_ptr_equal(sip_txn_table_match(fx->tab, parse(other)), ti2);

	/* CANCEL: its own transaction; it refers to the INVITE by
	 * Request-URI, Call-ID, To, From, CSeq number and top Via (§9.2). */
	o = opts("CANCEL");
	o.branch = NULL;
	request(other, sizeof(other), o);
	assert_null(sip_txn_table_match(fx->tab, parse(other)));
	assert_ptr_equal(sip_txn_table_find_invite(fx->tab, parse(other)), ti);
	tc = server(other, 0);
	assert_ptr_equal(sip_txn_table_match(fx->tab, parse(other)), tc);

	/* ACK: matches only once a response with that To tag went out. */
	o = opts("ACK");
	o.branch = NULL;
	o.to_tag = "f1";
	request(ack, sizeof(ack), o);
	assert_null(sip_txn_table_match(fx->tab, parse(ack)));
	assert_int_equal(respond(ti, inv, 480, "f1"), 0);
	assert_ptr_equal(sip_txn_table_match(fx->tab, parse(ack)), ti);
	o.to_tag = "f2";
	assert_null(sip_txn_table_match(
		fx->tab, parse(request(other, sizeof(other), o))));
	assert_int_equal(recv_text(ack, NULL), 1);
	assert_int_equal(sip_txn_state(ti), SIP_TXN_CONFIRMED);
	assert_int_equal(sip_txn_state(ti2), SIP_TXN_PROCEEDING);

	/* A final response without a To tag: the ACK has none either. */
	o = opts("INVITE");
	o.branch = "oldbranch1";
	o.cseq = 5;
	request(other, sizeof(other), o);
	assert_int_equal(respond(ti2, other, 404, NULL), 0);
	o.method = "ACK";
	assert_ptr_equal(sip_txn_table_match(
				 fx->tab, parse(request(ack, sizeof(ack), o))),
			 ti2);
	o.to_tag = "f1";
	assert_null(sip_txn_table_match(fx->tab,
					parse(request(ack, sizeof(ack), o))));
}

static void test_match_many(void **state)
{
	enum { N = 300 };
	static char reqs[N][1024];
	struct sip_txn *t[N];
	char br[SIP_BRANCH_SIZE];

	(void)state;
	/* Enough to grow the hash table and the heap a few times. */
	for (int i = 0; i < N; i++) {
		struct req_opts o = opts(i % 2 ? "INVITE" : "OPTIONS");

		assert_true(sip_txn_table_branch(fx->tab, br, sizeof(br)) > 0);
		o.branch = br;
		fx->now = (uint64_t)i;
		request(reqs[i], sizeof(reqs[i]), o);
		t[i] = client(reqs[i], 0);
	}
	assert_int_equal(sip_txn_table_count(fx->tab), N);
	for (int i = 0; i < N; i++) {
		char resp[1024];

		response(resp, sizeof(resp), reqs[i], 100, NULL);
		assert_ptr_equal(sip_txn_table_match(fx->tab, parse(resp)),
				 t[i]);
	}
	/* Deadlines come out in order: every retransmission at its time. */
	clear();
	run_until(2000);
	for (size_t i = 1; i < fx->n; i++)
		assert_true(fx->ev[i - 1].at <= fx->ev[i].at);
	for (int i = 0; i < N; i += 7)
		sip_txn_destroy(t[i]);
	assert_int_equal(sip_txn_table_count(fx->tab), N - (N + 6) / 7);
	clear();
	run_until(100000);
	assert_int_equal(count(EV_TERM), N - (N + 6) / 7);
	assert_int_equal(sip_txn_table_count(fx->tab), 0);
	assert_int_equal(sip_txn_table_next_deadline(fx->tab), UINT64_MAX);
}

/* ------------------------------------------------------------------------ */
/* Transport errors, Timer C, cleanup                                       */
/* ------------------------------------------------------------------------ */

static void test_transport_errors(void **state)
{
	char req[2048], s[2048];
	struct req_opts o = opts("INVITE");
	struct sip_txn *t;

	(void)state;
	request(req, sizeof(req), o);
	/* The first send fails: reported, terminated, error returned. */
	fx->send_rc = -ECONNREFUSED;
	assert_int_equal(sip_txn_client_create(fx->tab, req, strlen(req), 0,
					       NULL, 0, &t),
			 -ECONNREFUSED);
	assert_null(t);
	assert_int_equal(fx->n, 3);
	assert_int_equal(fx->ev[1].kind, EV_ERROR);
	assert_int_equal(fx->ev[1].err, -ECONNREFUSED);
	assert_int_equal(fx->ev[2].kind, EV_TERM);
	assert_int_equal(sip_txn_table_count(fx->tab), 0);

	/* A retransmission fails. */
	fx->send_rc = 0;
	clear();
	t = client(req, 0);
	fx->send_rc = -ENETUNREACH;
	advance(500);
	assert_int_equal(last(EV_ERROR)->err, -ENETUNREACH);
	assert_int_equal(fx->ev[fx->n - 1].kind, EV_TERM);
	assert_int_equal(sip_txn_table_next_deadline(fx->tab), UINT64_MAX);

	/* The response of a server fails. */
	fx->send_rc = 0;
	o.method = "OPTIONS";
	request(s, sizeof(s), o);
	t = server(s, 0);
	fx->send_rc = -EPIPE;
	assert_int_equal(respond(t, s, 200, "e"), -EPIPE);
	assert_int_equal(last(EV_ERROR)->err, -EPIPE);
	assert_int_equal(sip_txn_table_count(fx->tab), 0);

	/* An asynchronous error (connection lost) on a server INVITE. */
	fx->send_rc = 0;
	clear();
	t = server(req, 0);
	sip_txn_transport_error(t, -ECONNRESET, 10);
	assert_int_equal(fx->n, 3);
	assert_int_equal(fx->ev[1].kind, EV_ERROR);
	assert_int_equal(fx->ev[1].err, -ECONNRESET);
	assert_int_equal(fx->ev[2].kind, EV_TERM);
	assert_int_equal(sip_txn_table_count(fx->tab), 0);
	assert_int_equal(recv_text(req, NULL), 0);
}

static void test_timer_c(void **state)
{
	char req[2048];
	struct sip_txn *t;

	(void)state;
	request(req, sizeof(req), opts("INVITE"));
	t = client(req, SIP_TXN_PROXY);
	assert_int_equal(sip_txn_deadline(t, SIP_TXN_TIMER_C), 181000);
	fx->now = 1000;
	assert_int_equal(reply(req, 100, NULL), 1);
	/* 100 does not reset Timer C; 101-199 do (§16.7 step 2). */
	assert_int_equal(sip_txn_deadline(t, SIP_TXN_TIMER_C), 181000);
	fx->now = 2000;
	assert_int_equal(reply(req, 180, "c"), 1);
	assert_int_equal(sip_txn_deadline(t, SIP_TXN_TIMER_C), 183000);
	fx->now = 5000;
	assert_int_equal(reply(req, 183, "c"), 1);
	assert_int_equal(sip_txn_deadline(t, SIP_TXN_TIMER_C), 186000);
	run_until(185999);
	assert_int_equal(count(EV_TIMEOUT), 0);
	advance(186000);
	/* Proceeding: the TU cancels; the txn waits 64*T1 more. */
	assert_int_equal(last(EV_TIMEOUT)->timer, SIP_TXN_TIMER_C);
	assert_int_equal(sip_txn_state(t), SIP_TXN_PROCEEDING);
	assert_int_equal(sip_txn_deadline(t, SIP_TXN_TIMER_B), 218000);
	fx->now = 187000;
	assert_int_equal(reply(req, 487, "c"), 1);
	assert_int_equal(sip_txn_state(t), SIP_TXN_COMPLETED);
	assert_int_equal(sip_txn_deadline(t, SIP_TXN_TIMER_C), UINT64_MAX);
	assert_int_equal(sip_txn_deadline(t, SIP_TXN_TIMER_B), UINT64_MAX);
	assert_int_equal(parse(last(EV_SEND)->data)->method_id, SIP_METHOD_ACK);
}

static void test_timer_c_no_final(void **state)
{
	char req[2048];
	struct sip_txn *t;

	(void)state;
	request(req, sizeof(req), opts("INVITE"));
	t = client(req, SIP_TXN_PROXY | SIP_TXN_RELIABLE);
	assert_int_equal(reply(req, 180, "c"), 1);
	run_until(181000);
	assert_int_equal(last(EV_TIMEOUT)->timer, SIP_TXN_TIMER_C);
	/* No final response after the CANCEL: B (64*T1) ends it. */
	run_until(212999);
	assert_int_equal(count(EV_TERM), 0);
	advance(213000);
	assert_int_equal(last(EV_TIMEOUT)->timer, SIP_TXN_TIMER_B);
	assert_int_equal(count(EV_TERM), 1);
	(void)t;
}

static void test_timer_c_calling(void **state)
{
	struct sip_txn_config c = fx->cfg;
	struct sip_txn_table *tab = fx->tab;
	char req[2048];
	struct sip_txn *t;

	(void)state;
	/* A T1 long enough that Timer C fires before Timer B. */
	c.t1 = 10000;
	c.t2 = 40000;
	assert_int_equal(sip_txn_table_create(&c, &callbacks, fx, &fx->tab), 0);
	request(req, sizeof(req), opts("INVITE"));
	t = client(req, SIP_TXN_PROXY | SIP_TXN_RELIABLE);
	assert_int_equal(sip_txn_deadline(t, SIP_TXN_TIMER_B), 640000);
	advance(181000);
	/* No provisional: as if a 408 arrived. */
	assert_int_equal(last(EV_TIMEOUT)->timer, SIP_TXN_TIMER_C);
	assert_int_equal(fx->ev[fx->n - 1].kind, EV_TERM);
	assert_int_equal(sip_txn_table_count(fx->tab), 0);
	sip_txn_table_destroy(fx->tab);
	fx->tab = tab;
}

static void test_cleanup(void **state)
{
	char req[2048], resp[2048];
	struct req_opts o = opts("INVITE");
	struct sip_txn *t;

	(void)state;
	/* Transactions in every state, left to sip_txn_table_destroy(). */
	request(req, sizeof(req), o);
	(void)client(req, 0);
	o.branch = "z9hG4bKs1";
	request(req, sizeof(req), o);
	t = server(req, 0);
	assert_int_equal(respond(t, req, 486, "x"), 0);
	o.branch = "z9hG4bKs2";
	o.method = "SUBSCRIBE";
	request(req, sizeof(req), o);
	t = server(req, 0);
	assert_int_equal(respond(t, req, 202, "x"), 0);
	o = opts("INVITE");
	o.branch = "z9hG4bKc2";
	request(req, sizeof(req), o);
	(void)client(req, 0);
	assert_int_equal(reply(req, 404, "y"), 1); /* with its ACK buffer */
	assert_int_equal(sip_txn_table_count(fx->tab), 4);

	/* The TU destroys a transaction inside its own callback. */
	o.branch = "z9hG4bKc3";
	request(req, sizeof(req), o);
	t = client(req, 0);
	fx->destroy_on_response = true;
	clear();
	assert_int_equal(
		recv_text(response(resp, sizeof(resp), req, 500, "z"), NULL),
		1);
	assert_int_equal(fx->n, 1); /* no ACK and no callbacks after */
	fx->destroy_on_response = false;
	assert_int_equal(sip_txn_table_count(fx->tab), 4);

	/* ... or inside the request callback of a new server transaction. */
	fx->destroy_on_request = true;
	o.branch = "z9hG4bKs3";
	request(req, sizeof(req), o);
	assert_int_equal(
		sip_txn_server_create(fx->tab, parse(req), 0, NULL, 0, &t), 0);
	assert_null(t);
	fx->destroy_on_request = false;
	assert_int_equal(sip_txn_table_count(fx->tab), 4);
	sip_txn_destroy(NULL);
}

static void test_answer_in_callback(void **state)
{
	char req[2048], ok[2048];
	struct req_opts o = opts("OPTIONS");
	struct sip_txn *t;

	(void)state;
	request(req, sizeof(req), o);
	fx->answer = response(ok, sizeof(ok), req, 200, "cb");
	assert_int_equal(sip_txn_server_create(fx->tab, parse(req),
					       SIP_TXN_RELIABLE, NULL, 0, &t),
			 0);
	fx->answer = NULL;
	/* Answered and terminated (reliable, J = 0) inside the create. */
	assert_null(t);
	assert_int_equal(fx->n, 3);
	assert_int_equal(fx->ev[0].kind, EV_REQUEST);
	assert_int_equal(fx->ev[1].kind, EV_SEND);
	assert_int_equal(parse(fx->ev[1].data)->status, 200);
	assert_int_equal(fx->ev[2].kind, EV_TERM);
}

static void test_user_and_names(void **state)
{
	char req[2048];
	struct sip_txn *t;
	int x;

	(void)state;
	request(req, sizeof(req), opts("OPTIONS"));
	assert_int_equal(
		sip_txn_client_create(fx->tab, req, strlen(req), 0, &x, 0, &t),
		0);
	assert_ptr_equal(sip_txn_user(t), &x);
	sip_txn_set_user(t, NULL);
	assert_null(sip_txn_user(t));
	assert_string_equal(sip_txn_state_name(SIP_TXN_ACCEPTED), "Accepted");
	assert_string_equal(sip_txn_state_name(SIP_TXN_CALLING), "Calling");
	assert_string_equal(sip_txn_timer_name(SIP_TXN_TIMER_M), "M");
	assert_string_equal(sip_txn_timer_name(SIP_TXN_TIMER_TRYING), "Trying");
	assert_int_equal(sip_txn_deadline(t, SIP_TXN_TIMER__COUNT), UINT64_MAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_config),
		T(test_branch),
		T(test_ict_timer_a_b),
		T(test_ict_reliable_timeout),
		T(test_ict_non2xx_ack),
		T(test_ict_calling_to_completed_reliable),
		T(test_ict_accepted),
		T(test_ict_proceeding_to_accepted),
		T(test_nict_timer_e_f),
		T(test_nict_proceeding_completed),
		T(test_nict_reliable),
		T(test_ist_uas_trying_delay),
		T(test_ist_uas_answers_first),
		T(test_ist_retransmit_before_trying),
		T(test_ist_proxy_trying),
		T(test_ist_completed_confirmed),
		T(test_ist_timer_h),
		T(test_ist_reliable),
		T(test_ist_accepted),
		T(test_nist_unreliable),
		T(test_nist_reliable),
		T(test_respond_errors),
		T(test_match_responses),
		T(test_match_requests_cookie),
		T(test_match_rfc2543),
		T(test_match_many),
		T(test_transport_errors),
		T(test_timer_c),
		T(test_timer_c_no_final),
		T(test_timer_c_calling),
		T(test_cleanup),
		T(test_answer_in_callback),
		T(test_user_and_names),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
