/**
 * @file fuzz_txn.c  libFuzzer target for the transaction layer.
 *
 * The input is a program: each byte picks an event for one table —
 * client or server transactions from templates (INVITE, non-INVITE,
 * CANCEL, RFC 2543 branches, reliable or not, proxy or not), responses and
 * retransmissions, ACK and CANCEL for them, TU responses, clock jumps with
 * expiry, transport errors, destruction — or takes the next bytes as a raw
 * message to receive, to send as a request or to answer with. Callbacks
 * react too (answer inside the request callback, destroy inside the
 * response callback, failing sends). Every byte sent must parse, deadlines
 * must lie in the future after expiry, and destroying the table at the end
 * must leave nothing behind.
 */
#include "txn/txn.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NSLOTS 16
#define REQ_CAP 4096
#define MAX_INPUT ((size_t)64 * 1024)

struct slot {
	struct sip_txn *txn;
	bool server;
	size_t len;
	char req[REQ_CAP];
};

static struct {
	const uint8_t *p;
	size_t left;
	uint64_t now;
	int send_rc;
	bool answer_in_cb;
	bool destroy_in_cb;
	unsigned counter;
	struct sip_txn_table *tab;
	struct slot slots[NSLOTS];
	struct sip_msg msg;	/* received messages */
	struct sip_msg check;	/* parsing what was sent */
	struct sip_msg builder; /* requests responses are built from */
	char out[REQ_CAP + 1024];
} g;

static unsigned byte(void)
{
	if (!g.left)
		return 0;
	g.left--;
	return *g.p++;
}

static struct slot *slot_of(struct sip_txn *t)
{
	return sip_txn_user(t);
}

static int parse_lenient(struct sip_msg *m, const char *buf, size_t len)
{
	struct sip_limits lim;

	sip_limits_default(&lim);
	if (len > lim.max_msg_size)
		lim.max_msg_size = len;
	lim.max_headers = SIP_MSG_MAX_HEADERS;
	return sip_msg_parse(m, buf, len, SIP_FRAMING_DATAGRAM, &lim, NULL);
}

static int cb_send(struct sip_txn *txn, const char *buf, size_t len, void *arg)
{
	(void)arg;
	if (!txn || !len || parse_lenient(&g.check, buf, len) != 0)
		abort();
	return g.send_rc;
}

/* Write a response with @p status to the request in @p req. */
static int build_response(const char *req, size_t len, unsigned status,
			  char *out, size_t cap)
{
	struct sip_writer w;
	char tag[16];

	if (!len || parse_lenient(&g.builder, req, len) != 0 ||
	    !g.builder.is_request)
		return -EINVAL;
	snprintf(tag, sizeof(tag), "t%u", status % 3);
	sip_wr_init(&w, out, cap);
	sip_wr_response_to(&w, &g.builder, status, NULL, sip_str_c(tag));
	return sip_wr_finish(&w, NULL, SIP_STR_NULL);
}

static void cb_request(struct sip_txn *txn, const struct sip_msg *msg,
		       void *arg)
{
	static char buf[REQ_CAP + 1024];
	struct sip_writer w;
	int n;

	(void)arg;
	if (!msg->is_request || !g.answer_in_cb ||
	    msg->method_id == SIP_METHOD_ACK)
		return;
	sip_wr_init(&w, buf, sizeof(buf));
	sip_wr_response_to(&w, msg, 200, NULL, SIP_STR_LIT("cb"));
	n = sip_wr_finish(&w, NULL, SIP_STR_NULL);
	if (n > 0)
		(void)sip_txn_respond(txn, buf, (size_t)n, g.now);
}

static void cb_response(struct sip_txn *txn, const struct sip_msg *msg,
			void *arg)
{
	(void)arg;
	if (msg->is_request || msg->status < 100 || msg->status > 699)
		abort();
	if (g.destroy_in_cb && msg->status >= 200) {
		struct slot *s = slot_of(txn);

		sip_txn_destroy(txn);
		if (s)
			s->txn = NULL;
	}
}

static void cb_timeout(struct sip_txn *txn, enum sip_txn_timer timer, void *arg)
{
	(void)arg;
	(void)txn;
	if (timer != SIP_TXN_TIMER_B && timer != SIP_TXN_TIMER_C &&
	    timer != SIP_TXN_TIMER_F && timer != SIP_TXN_TIMER_H)
		abort();
}

static void cb_error(struct sip_txn *txn, int err, void *arg)
{
	(void)arg;
	(void)txn;
	if (err >= 0)
		abort();
}

static void cb_term(struct sip_txn *txn, void *arg)
{
	struct slot *s = slot_of(txn);

	(void)arg;
	if (sip_txn_state(txn) != SIP_TXN_TERMINATED)
		abort();
	if (s)
		s->txn = NULL;
}

static const struct sip_txn_callbacks callbacks = {
	.send = cb_send,
	.request = cb_request,
	.response = cb_response,
	.timeout = cb_timeout,
	.transport_error = cb_error,
	.terminated = cb_term,
};

/* After expiry no live transaction has a timer due. */
static void future_deadlines(void)
{
	for (int i = 0; i < NSLOTS; i++) {
		const struct sip_txn *t = g.slots[i].txn;

		if (!t)
			continue;
		if (sip_txn_state(t) == SIP_TXN_TERMINATED)
			abort();
		for (int w = 0; w < SIP_TXN_TIMER__COUNT; w++) {
			uint64_t d = sip_txn_deadline(t, (enum sip_txn_timer)w);

			if (d <= g.now ||
			    (d != UINT64_MAX &&
			     d < sip_txn_table_next_deadline(g.tab)))
				abort();
		}
	}
}

static struct slot *pick(bool want_live)
{
	struct slot *s = &g.slots[byte() % NSLOTS];

	return (!want_live || s->txn) ? s : NULL;
}

static struct slot *free_slot(void)
{
	struct slot *s = &g.slots[byte() % NSLOTS];

	if (s->txn) {
		sip_txn_destroy(s->txn);
		s->txn = NULL;
	}
	return s;
}

static const char *const methods[] = {"INVITE", "OPTIONS",  "BYE",
				      "CANCEL", "REGISTER", "ACK"};
static const unsigned statuses[] = {100, 180, 183, 200, 202, 300,
				    404, 408, 486, 487, 500, 603};

/* A request from the template; the branch form comes from the input. */
static size_t template(char *out, size_t cap, const char *method, unsigned form,
		       unsigned cseq, const char *to_tag)
{
	char branch[SIP_BRANCH_SIZE + 16] = "";
	char fresh[SIP_BRANCH_SIZE];
	char tag[24] = "";
	int n;

	switch (form % 4) {
	case 0:
		if (sip_txn_table_branch(g.tab, fresh, sizeof(fresh)) < 0)
			abort();
		snprintf(branch, sizeof(branch), ";branch=%s", fresh);
		break;
	case 1: /* a fixed cookie branch: shared by many requests */
		snprintf(branch, sizeof(branch), ";branch=z9hG4bK%u", form % 3);
		break;
	case 2: /* RFC 2543: no cookie */
		snprintf(branch, sizeof(branch), ";branch=old%u", form % 3);
		break;
	default: /* RFC 2543: no branch */
		break;
	}
	if (to_tag)
		snprintf(tag, sizeof(tag), ";tag=%s", to_tag);
	n = snprintf(out, cap,
		     "%s sip:bob@b.example SIP/2.0\r\n"
		     "Via: SIP/2.0/UDP h%u.example%s\r\n"
		     "Max-Forwards: 70\r\n"
		     "Route: <sip:p.example;lr>\r\n"
		     "To: <sip:bob@b.example>%s\r\n"
		     "From: <sip:a@a.example>;tag=f%u\r\n"
		     "Call-ID: c%u@a.example\r\n"
		     "CSeq: %u %s\r\n"
		     "Content-Length: 0\r\n\r\n",
		     method, (form >> 2) % 2, branch, tag, (form >> 3) % 2,
		     (form >> 4) % 2, cseq, method);
	return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

static void recv_bytes(const char *buf, size_t len, bool create)
{
	struct sip_txn *t = NULL;
	int rc;

	sip_str value;
	struct sip_via via;
	const struct sip_hdr *h;
	unsigned worker;

	if (parse_lenient(&g.msg, buf, len) != 0)
		return;
	/* Branches we generate carry our worker; foreign ones are refused. */
	h = sip_msg_hdr(&g.msg, SIP_HDR_VIA);
	value = h ? h->value : SIP_STR_NULL;
	if (h && sip_list_next(&value, &value) == 1 &&
	    sip_via_parse(value, &via) == 0 &&
	    sip_branch_worker(via.branch, &worker) == 0 && worker > 65535)
		abort();
	rc = sip_txn_table_recv(g.tab, &g.msg, g.now, &t);
	if ((rc < 0 && rc != -EBADMSG) || rc > 1 || (rc != 1 && t))
		abort();
	if (g.msg.is_request && g.msg.method_id == SIP_METHOD_CANCEL)
		(void)sip_txn_table_find_invite(g.tab, &g.msg);
	if (rc < 0)
		return;
	if (rc == 0 && create && g.msg.is_request &&
	    g.msg.method_id != SIP_METHOD_ACK) {
		struct slot *s = free_slot();
		unsigned flags = byte() & 3;

		s->server = true;
		s->len = len <= REQ_CAP ? len : 0;
		if (s->len)
			memcpy(s->req, buf, len);
		if (sip_txn_server_create(g.tab, &g.msg, flags, s, g.now,
					  &s->txn) != 0)
			s->txn = NULL;
	}
}

static void new_client(const char *buf, size_t len, unsigned flags)
{
	struct slot *s = free_slot();

	s->server = false;
	s->len = len <= REQ_CAP ? len : 0;
	if (s->len)
		memcpy(s->req, buf, len);
	if (sip_txn_client_create(g.tab, buf, len, flags, s, g.now, &s->txn) !=
	    0)
		s->txn = NULL;
}

static void step(unsigned op)
{
	static char buf[REQ_CAP];
	const char *raw;
	struct slot *s;
	size_t n;
	int r;

	switch (op % 14) {
	case 0: /* client transaction */
		n = template(buf, sizeof(buf), methods[byte() % 5], byte(),
			     1 + byte() % 3, NULL);
		if (n)
			new_client(buf, n, byte() & 3);
		break;
	case 1: /* server transaction from a received request */
		n = template(buf, sizeof(buf), methods[byte() % 5], byte(),
			     1 + byte() % 3, NULL);
		if (n)
			recv_bytes(buf, n, true);
		break;
	case 2: /* a response for a slot's request arrives */
		if ((s = pick(false)) &&
		    (r = build_response(s->req, s->len, statuses[byte() % 12],
					g.out, sizeof(g.out))) > 0)
			recv_bytes(g.out, (size_t)r, false);
		break;
	case 3: /* a slot's request arrives (again) */
		if ((s = pick(false)) && s->len)
			recv_bytes(s->req, s->len, byte() & 1);
		break;
	case 4: /* ACK or CANCEL built from the template */
		n = template(buf, sizeof(buf), byte() & 1 ? "ACK" : "CANCEL",
			     byte(), 1 + byte() % 3, byte() & 1 ? "t0" : NULL);
		if (n)
			recv_bytes(buf, n, true);
		break;
	case 5: /* the TU responds */
		if ((s = pick(true)) &&
		    (r = build_response(s->req, s->len, statuses[byte() % 12],
					g.out, sizeof(g.out))) > 0)
			(void)sip_txn_respond(s->txn, g.out, (size_t)r, g.now);
		break;
	case 6: /* time passes */
		g.now += (uint64_t)byte() * byte() * 7;
		sip_txn_table_expire(g.tab, g.now);
		if (sip_txn_table_next_deadline(g.tab) <= g.now)
			abort();
		future_deadlines();
		break;
	case 7: /* to the next deadline exactly */
		if (sip_txn_table_next_deadline(g.tab) != UINT64_MAX) {
			g.now = sip_txn_table_next_deadline(g.tab);
			sip_txn_table_expire(g.tab, g.now);
		}
		break;
	case 8:
		if ((s = pick(true)))
			sip_txn_transport_error(s->txn, -ECONNRESET, g.now);
		break;
	case 9:
		if ((s = pick(true))) {
			sip_txn_destroy(s->txn);
			s->txn = NULL;
		}
		break;
	case 10: /* raw bytes received */
	case 11: /* raw bytes as a request to send or a TU response */
		n = byte() | (byte() << 8);
		if (n > g.left)
			n = g.left;
		raw = (const char *)g.p;
		g.p += n;
		g.left -= n;
		if (op % 14 == 10)
			recv_bytes(raw, n, true);
		else if ((s = pick(true)) && s->server)
			(void)sip_txn_respond(s->txn, raw, n, g.now);
		else
			new_client(raw, n, byte() & 3);
		break;
	case 12:
		g.send_rc = (byte() & 7) == 0 ? -EPIPE : 0;
		break;
	default:
		g.answer_in_cb = byte() & 1;
		g.destroy_in_cb = byte() & 1;
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sip_txn_config cfg;

	if (size > MAX_INPUT)
		return 0;
	memset(g.slots, 0, sizeof(g.slots));
	g.p = data;
	g.left = size;
	g.now = 1;
	g.send_rc = 0;
	g.answer_in_cb = g.destroy_in_cb = false;
	sip_txn_config_default(&cfg);
	cfg.worker = 3;
	if (sip_txn_table_create(&cfg, &callbacks, NULL, &g.tab) != 0)
		abort();
	/* The whole input as one received message first (message seeds). */
	recv_bytes((const char *)data, size, true);
	while (g.left)
		step(byte());
	/* Run the clock on: every timer chain ends (retransmissions stop at
	 * B, F or H; C leads to B), so no deadline is left behind. */
	for (int i = 0; sip_txn_table_next_deadline(g.tab) != UINT64_MAX; i++) {
		if (i > 100000)
			abort();
		g.now = sip_txn_table_next_deadline(g.tab);
		sip_txn_table_expire(g.tab, g.now);
	}
	sip_txn_table_destroy(g.tab);
	g.tab = NULL;
	return 0;
}
