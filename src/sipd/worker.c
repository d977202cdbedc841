/**
 * @file worker.c  One sipd worker: a thread running its own libuv loop with
 * its own transport, transaction table and handler.
 *
 * Every worker binds every listen address with SO_REUSEPORT, so the kernel
 * spreads sources over workers and keeps one source on one worker: the
 * retransmissions, ACK and CANCEL of a request reach the worker that owns
 * its transaction. Nothing on the message path is shared between workers.
 *
 * Path of a message: transport → sipd_handle() (parse; stateless answers to
 * what cannot be parsed) → the transaction table (retransmissions, ACK,
 * CANCEL matching) → sipd_handle_request() (checks, verdicts, OPTIONS) →
 * for INVITE/BYE/CANCEL in UAS mode, a server transaction and the UAS core
 * below; for REGISTER, a non-INVITE server transaction (retransmissions
 * are absorbed by it) and registrar_handle(), which writes the answer —
 * held until the change is committed when it changed bindings (regq.c).
 * In proxy and redirect mode the other requests and every response go to
 * the proxy (proxy_glue.c), which hands a response over to the worker
 * that owns its transaction.
 */
#include "sipd/worker.h"

#include "registrar/registrar.h"
#include "sipd/handler.h"
#include "sipd/log.h"
#include "sipd/proxy_glue.h"
#include "sipd/regq.h"
#include "transport/transport.h"
#include "txn/txn.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

/* Where the responses of a server transaction go; listed on the worker so
 * that what the table still holds at shutdown is freed too. */
struct peer {
	struct peer *prev, *next;
	unsigned transport;
	struct sockaddr_storage addr;
	sip_tp_conn_id conn;
	struct sip_tp_listener *lsn;
};

struct sipd_worker {
	const struct sipd_config *cfg;
	unsigned index;
	char (*bound)[64];

	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t ready_cond;
	bool ready;
	int start_err;

	uv_loop_t loop;
	uv_async_t stop;
	uv_timer_t txn_timer;
	struct sip_tp *tp;
	struct sip_txn_table *txns;
	struct regq *regq; /* REGISTER answers held until committed */
	struct sipd_handler handler;
	struct peer peers;	 /* list head of live peers */
	struct sipd_glue *proxy; /* proxy and redirect modes */
	bool joined;

	/* the message being handled (valid during on_recv) */
	const struct sip_tp_rx *rx;
	const struct sip_via_rcvd *rcvd;
	struct sockaddr_storage reply_addr; /* §18.2.2 response address */
	unsigned reg_status; /* the registrar's answer, for the log */
	const char *reg_note;
	char out[SIPD_MAX_RESPONSE];
};

/* Debug: one line per message handled. */
static void log_line(const struct sipd_worker *w, const struct sip_tp_rx *rx,
		     const struct sipd_outcome *o)
{
	char from[SIP_TP_URI_MAX];
	int ml = (int)(o->method.len > 32 ? 32 : o->method.len);
	int rl = (int)(o->ruri.len > 80 ? 80 : o->ruri.len);

	if (!sipd_log_enabled(w->cfg->log, SIPD_LOG_DEBUG))
		return;
	if (sip_tp_uri_format(rx->transport, rx->src, from, sizeof(from)) < 0)
		snprintf(from, sizeof(from), "?");
	const struct sipd_log_field f[] = {
		SIPD_LF_STR("peer", from),
		SIPD_LF_SLICE("method", o->method.p ? o->method.p : "",
			      (size_t)ml),
		SIPD_LF_SLICE("ruri", o->ruri.p ? o->ruri.p : "", (size_t)rl),
		SIPD_LF_NUM("status", o->status),
		SIPD_LF_STR("note", o->note),
	};
	sipd_log_event(w->cfg->log, SIPD_LOG_DEBUG, (int)w->index, "request", f,
		       5, "%s %.*s %.*s -> %u %s%s%s", from, ml,
		       o->method.p ? o->method.p : "", rl,
		       o->ruri.p ? o->ruri.p : "", o->status,
		       o->reason ? o->reason : "", o->note ? " " : "",
		       o->note ? o->note : "");
}

/* Trace: a SIP message sent or received, whole. */
static void log_sip(const struct sipd_worker *w, const char *dir,
		    unsigned transport, const struct sockaddr *peer,
		    const char *buf, size_t len)
{
	char uri[SIP_TP_URI_MAX];
	const char *tname, *hostport;

	if (!sipd_log_enabled(w->cfg->log, SIPD_LOG_TRACE))
		return;
	if (sip_tp_uri_format(transport, peer, uri, sizeof(uri)) < 0)
		snprintf(uri, sizeof(uri), "?");
	hostport = strchr(uri, ':');
	tname = transport == SIP_TP_UDP	  ? "udp"
		: transport == SIP_TP_TCP ? "tcp"
		: transport == SIP_TP_TLS ? "tls"
		: transport == SIP_TP_WS  ? "ws"
		: transport == SIP_TP_WSS ? "wss"
					  : "?";
	const struct sipd_log_field f[] = {
		SIPD_LF_STR("dir", dir),
		SIPD_LF_STR("transport", tname),
		SIPD_LF_STR("peer", hostport ? hostport + 1 : uri),
		SIPD_LF_BODY("message", buf, len),
	};
	sipd_log_event(w->cfg->log, SIPD_LOG_TRACE, (int)w->index, "sip", f, 4,
		       "%s %s %s %zu bytes", dir, tname,
		       hostport ? hostport + 1 : uri, len);
}

static int send_reply(struct sipd_worker *w, const struct sip_tp_rx *rx,
		      const char *buf, size_t len)
{
	struct sip_tp_dest dst = {
		.transport = rx->transport,
		.addr = (const struct sockaddr *)&w->reply_addr,
		.conn = rx->conn,
		.lsn = rx->transport == SIP_TP_UDP ? rx->lsn : NULL,
	};
	int r;

	log_sip(w, "send", rx->transport, dst.addr, buf, len);
	r = sip_tp_send(w->tp, &dst, buf, len, NULL);
	if (r < 0)
		sipd_logf(w->cfg->log, SIPD_LOG_WARN, (int)w->index, "send",
			  "send: %s", strerror(-r));
	return r;
}

/* ------------------------------------------------------------------------ */
/* Transaction callbacks and the UAS core                                   */
/* ------------------------------------------------------------------------ */

static int txn_send(struct sip_txn *txn, const char *buf, size_t len, void *arg)
{
	struct sipd_worker *w = arg;
	struct peer *p = sip_txn_user(txn);
	struct sip_tp_dest dst = {
		.transport = p->transport,
		.addr = (const struct sockaddr *)&p->addr,
		.conn = p->conn,
		.lsn = p->lsn,
	};

	log_sip(w, "send", p->transport, dst.addr, buf, len);
	return sip_tp_send(w->tp, &dst, buf, len, NULL);
}

static void peer_free(struct peer *p)
{
	p->prev->next = p->next;
	p->next->prev = p->prev;
	free(p);
}

static void txn_terminated(struct sip_txn *txn, void *arg)
{
	struct peer *p = sip_txn_user(txn);

	(void)arg;
	if (p)
		peer_free(p);
	sip_txn_set_user(txn, NULL);
}

static void txn_error(struct sip_txn *txn, int err, void *arg)
{
	struct sipd_worker *w = arg;

	(void)txn;
	sipd_logf(w->cfg->log, SIPD_LOG_WARN, (int)w->index, "txn",
		  "transaction transport error: %s", strerror(-err));
}

/* The answer to an offer: one audio stream, PCMU. */
static int write_sdp(const struct sip_tp_rx *rx, char *buf, size_t cap)
{
	char host[INET6_ADDRSTRLEN] = "127.0.0.1";
	const char *ip = "IP4";

	if (rx->local->sa_family == AF_INET6) {
		uv_ip6_name((const struct sockaddr_in6 *)rx->local, host,
			    sizeof(host));
		ip = "IP6";
	} else {
		uv_ip4_name((const struct sockaddr_in *)rx->local, host,
			    sizeof(host));
	}
	int n = snprintf(buf, cap,
			 "v=0\r\n"
			 "o=sipd 1 1 IN %s %s\r\n"
			 "s=sipd\r\n"
			 "c=IN %s %s\r\n"
			 "t=0 0\r\n"
			 "m=audio 40000 RTP/AVP 0\r\n"
			 "a=rtpmap:0 PCMU/8000\r\n"
			 "a=sendrecv\r\n",
			 ip, host, ip, host);
	return (n < 0 || (size_t)n >= cap) ? -ENOSPC : n;
}

/* Contact for our answers: the address the request came to, with its
 * transport (RFC 7118 §5.2: transport=ws for WS and WSS alike). */
static void write_contact(struct sip_writer *wr, const struct sip_tp_rx *rx)
{
	char uri[SIP_TP_URI_MAX];
	const char *t =
		rx->transport == SIP_TP_TLS   ? "tls"
		: rx->transport == SIP_TP_TCP ? "tcp"
		: rx->transport == SIP_TP_WS || rx->transport == SIP_TP_WSS
			? "ws"
			: "udp";
	bool secure =
		rx->transport == SIP_TP_TLS || rx->transport == SIP_TP_WSS;
	char *hostport;

	if (sip_tp_uri_format(rx->transport, rx->local, uri, sizeof(uri)) < 0)
		return;
	hostport = strchr(uri, ':');
	if (!hostport)
		return;
	sip_wr_headerf(wr, "Contact", "<%s:sipd@%s;transport=%s>",
		       secure ? "sips" : "sip", hostport + 1, t);
}

/* Write a response to @p req into w->out and send it through @p txn. */
static void uas_respond(struct sipd_worker *w, struct sip_txn *txn,
			const struct sip_msg *req, unsigned status,
			bool contact, const char *ctype, sip_str body)
{
	struct sip_writer wr;
	char tag[32];
	int n;

	sip_wr_init(&wr, w->out, sizeof(w->out));
	sip_wr_response_to_rcvd(&wr, req, status, NULL,
				sipd_to_tag(req, tag, sizeof(tag)), w->rcvd);
	if (contact)
		write_contact(&wr, w->rx);
	if (status >= 200 && status < 300 &&
	    req->method_id == SIP_METHOD_INVITE)
		sip_wr_header(&wr, "Allow", sip_str_c(sipd_allow(&w->handler)));
	sip_wr_header(&wr, "Server", SIP_STR_LIT("sipd"));
	n = sip_wr_finish(&wr, ctype, body);
	if (n < 0 ||
	    sip_txn_respond(txn, w->out, (size_t)n, uv_now(&w->loop)) < 0)
		sipd_logf(w->cfg->log, SIPD_LOG_ERROR, (int)w->index, "answer",
			  "cannot answer %u", status);
}

/* A REGISTER on its server transaction: the registrar writes the answer. */
static void registrar_respond(struct sipd_worker *w, struct sip_txn *txn,
			      const struct sip_msg *req)
{
	const struct sip_tp_rx *rx = w->rx;
	char src[SIP_TP_URI_MAX], tag[32];
	const char *hostport;
	struct registrar_ctx ctx = {
		.now = (int64_t)time(NULL),
		.now_ms = uv_now(&w->loop),
		.transport = rx->transport,
		.addr = rx->src,
		.conn_id = rx->conn,
		.auth = atomic_load(&w->cfg->live->auth),
		.to_tag = sipd_to_tag(req, tag, sizeof(tag)),
		.rcvd = w->rcvd,
	};
	struct registrar_result res;
	struct sip_writer wr;
	int r;

	/* "udp:192.0.2.1:5060" → "192.0.2.1:5060" */
	if (sip_tp_uri_format(rx->transport, rx->src, src, sizeof(src)) < 0)
		src[0] = '\0';
	hostport = strchr(src, ':');
	ctx.source = hostport ? hostport + 1 : src;
	sip_wr_init(&wr, w->out, sizeof(w->out));
	r = registrar_handle(w->cfg->registrar, req, &ctx, &wr, &res);
	w->reg_status = res.status;
	w->reg_note = res.note;
	if (r < 0) {
		sipd_logf(w->cfg->log, SIPD_LOG_ERROR, (int)w->index,
			  "registrar", "registrar: %s", strerror(-r));
		return;
	}
	if (res.status == 0)
		return;
	if (res.pending && w->regq) {
		char *fail;
		int n;

		if (regq_hold(w->regq, res.seq_first, res.seq_last, txn, w->out,
			      res.len) == 0) {
			w->reg_note = "held until committed";
			return;
		}
		/* cannot hold it (out of memory): 500, see ARCHITECTURE.md */
		fail = malloc(res.len + 256);
		n = fail ? registrar_failed_answer(w->out, res.len, fail,
						   res.len + 256)
			 : -ENOMEM;
		if (n > 0)
			sip_txn_respond(txn, fail, (size_t)n, uv_now(&w->loop));
		free(fail);
		return;
	}
	if (sip_txn_respond(txn, w->out, res.len, uv_now(&w->loop)) < 0)
		sipd_logf(w->cfg->log, SIPD_LOG_ERROR, (int)w->index, "answer",
			  "cannot answer %u", res.status);
}

static void arm_timer(struct sipd_worker *w);

/* A held REGISTER answer whose change has been committed (or failed). */
static void registrar_send(void *arg, void *user, const char *buf, size_t len,
			   unsigned status)
{
	struct sipd_worker *w = arg;

	if (sip_txn_respond(user, buf, len, uv_now(&w->loop)) < 0)
		sipd_logf(w->cfg->log, SIPD_LOG_ERROR, (int)w->index, "answer",
			  "cannot answer %u", status);
}

/* The answers of one commit report go out together (one sendmmsg). */
static void registrar_batch(void *arg, bool begin)
{
	struct sipd_worker *w = arg;

	if (begin) {
		sip_tp_send_batch_begin(w->tp);
	} else {
		sip_tp_send_batch_end(w->tp);
		arm_timer(w);
	}
}

/* The request callback: the minimal UAS answers INVITE at once (180, then
 * 200 with an SDP answer), BYE with 200, CANCEL with 200 (481 without an
 * INVITE to cancel). The 2xx is not retransmitted: no dialog state is
 * kept, so a lost 2xx costs the call. */
static void txn_request(struct sip_txn *txn, const struct sip_msg *msg,
			void *arg)
{
	struct sipd_worker *w = arg;
	char sdp[512];
	int n;

	switch (msg->method_id) {
	case SIP_METHOD_INVITE:
		uas_respond(w, txn, msg, 180, true, NULL, SIP_STR_NULL);
		n = write_sdp(w->rx, sdp, sizeof(sdp));
		if (n > 0)
			uas_respond(w, txn, msg, 200, true, "application/sdp",
				    (sip_str){sdp, (size_t)n});
		break;
	case SIP_METHOD_CANCEL:
		uas_respond(w, txn, msg,
			    sip_txn_table_find_invite(w->txns, msg) ? 200 : 481,
			    false, NULL, SIP_STR_NULL);
		break;
	case SIP_METHOD_BYE:
		uas_respond(w, txn, msg, 200, false, NULL, SIP_STR_NULL);
		break;
	case SIP_METHOD_REGISTER:
		registrar_respond(w, txn, msg);
		break;
	default:
		/* ACK for a 2xx in Accepted, and anything else: nothing */
		break;
	}
}

static void on_txn_timer(uv_timer_t *t)
{
	struct sipd_worker *w = t->data;

	sip_txn_table_expire(w->txns, uv_now(&w->loop));
	arm_timer(w);
}

static void arm_timer(struct sipd_worker *w)
{
	uint64_t d = sip_txn_table_next_deadline(w->txns);
	uint64_t now = uv_now(&w->loop);

	if (d == UINT64_MAX) {
		uv_timer_stop(&w->txn_timer);
		return;
	}
	uv_timer_start(&w->txn_timer, on_txn_timer, d > now ? d - now : 0, 0);
}

/* ------------------------------------------------------------------------ */
/* Receive path                                                             */
/* ------------------------------------------------------------------------ */

static void start_uas(struct sipd_worker *w, const struct sip_tp_rx *rx,
		      struct sipd_outcome *o)
{
	struct peer *p = calloc(1, sizeof(*p));
	unsigned flags = rx->transport == SIP_TP_UDP ? 0 : SIP_TXN_RELIABLE;
	struct sip_txn *txn = NULL;
	int r;

	if (!p) {
		o->note = "out of memory";
		return;
	}
	p->transport = rx->transport;
	p->addr = w->reply_addr;
	p->conn = rx->conn;
	p->lsn = rx->transport == SIP_TP_UDP ? rx->lsn : NULL;
	p->next = w->peers.next;
	p->prev = &w->peers;
	p->next->prev = p;
	w->peers.next = p;
	r = sip_txn_server_create(w->txns, &w->handler.msg, flags, p,
				  uv_now(&w->loop), &txn);
	if (r < 0) {
		/* refused before any callback ran: the peer is still ours */
		peer_free(p);
		o->note = "no transaction";
		return;
	}
	o->note = "transaction";
}

static void copy_addr(struct sockaddr_storage *dst, const struct sockaddr *src)
{
	memset(dst, 0, sizeof(*dst));
	memcpy(dst, src,
	       src->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
					  : sizeof(struct sockaddr_in));
}

/* RFC 3261 §18.2.2 with RFC 3581: where responses to this request go. A
 * sent-by name would need a lookup (RFC 3263 §5); until responses can wait
 * for one, they go to the source address, as with rport. */
static void set_reply_addr(struct sipd_worker *w, const struct sip_tp_rx *rx,
			   const struct sip_via *via)
{
	struct sip_tp_resp_dest d;

	copy_addr(&w->reply_addr, rx->src);
	if (sip_tp_response_dest(via, rx->transport, rx->src, rx->conn != 0,
				 &d) == 0 &&
	    d.kind == SIP_TP_RESP_ADDR)
		w->reply_addr = d.addr;
}

/* A request for the proxy: it passed the element checks (else the
 * handler answers it) and is not for sipd itself. */
static bool proxy_takes(struct sipd_worker *w, const struct sip_msg *msg)
{
	struct sip_error err = {0};

	if (msg->method_id != SIP_METHOD_ACK && sip_msg_check(msg, &err) < 0)
		return false;
	return sipd_glue_wants(w->proxy, msg);
}

static void on_recv(struct sip_tp *tp, const struct sip_tp_rx *rx, void *arg)
{
	struct sipd_worker *w = arg;
	struct sipd_handler *h = &w->handler;
	/* a datagram and a WebSocket message are whole messages */
	enum sip_transport_kind framing =
		rx->transport == SIP_TP_TCP || rx->transport == SIP_TP_TLS
			? SIP_FRAMING_STREAM
			: SIP_FRAMING_DATAGRAM;
	struct sipd_outcome o;
	struct sip_via_rcvd rcvd = {SIP_STR_NULL, -1};
	struct sip_tp_via_fix fix;
	int action;

	(void)tp;
	log_sip(w, "recv", rx->transport, rx->src, rx->buf, rx->len);
	w->rx = rx;
	w->rcvd = NULL;
	copy_addr(&w->reply_addr, rx->src);
	action = sipd_handle(h, rx->buf, rx->len, framing, NULL, w->out,
			     sizeof(w->out), &o);
	if (action == SIPD_TXN) {
		/* sipd_handle() parsed the top Via of a request */
		if (h->msg.is_request && h->via_ok &&
		    sip_tp_via_received(&h->via, rx->src, &fix) == 0) {
			set_reply_addr(w, rx, &h->via);
			if (fix.add_received)
				rcvd.received = sip_str_c(fix.received);
			if (fix.set_rport)
				rcvd.rport = fix.rport;
			w->rcvd = &rcvd;
		}
		if (w->proxy && !h->msg.is_request) {
			sipd_glue_response(w->proxy, &h->msg, rx, &o);
			action = SIPD_DROP;
		} else if (sip_txn_table_recv(w->txns, &h->msg,
					      uv_now(&w->loop), NULL) == 1) {
			o.note = "matched a transaction";
			action = SIPD_DROP;
		} else if (!h->msg.is_request) {
			action = SIPD_DROP;
		} else if (w->proxy && proxy_takes(w, &h->msg)) {
			sipd_glue_request(w->proxy, &h->msg, rx, &w->reply_addr,
					  w->rcvd, &o);
			action = SIPD_DROP;
		} else {
			action = sipd_handle_request(h, w->rcvd, w->out,
						     sizeof(w->out), &o);
		}
	}
	if (action == SIPD_SEND) {
		send_reply(w, rx, w->out, o.len);
	} else if (action == SIPD_UAS) {
		start_uas(w, rx, &o);
	} else if (action == SIPD_REGISTER) {
		w->reg_status = 0;
		w->reg_note = NULL;
		start_uas(w, rx, &o);
		o.status = w->reg_status;
		o.reason = sip_reason_phrase(w->reg_status);
		if (w->reg_note)
			o.note = w->reg_note;
	}
	log_line(w, rx, &o);
	arm_timer(w);
	w->rx = NULL;
	w->rcvd = NULL;
}

/* ------------------------------------------------------------------------ */
/* Thread and lifetime                                                      */
/* ------------------------------------------------------------------------ */

static void close_cb(uv_handle_t *h)
{
	(void)h;
}

static void on_stop(uv_async_t *a)
{
	struct sipd_worker *w = a->data;

	regq_close(w->regq); /* sends what is held, once committed */
	w->regq = NULL;
	if (w->tp) {
		sip_tp_destroy(w->tp);
		w->tp = NULL;
	}
	sipd_glue_close(w->proxy);
	uv_close((uv_handle_t *)&w->txn_timer, close_cb);
	uv_close((uv_handle_t *)&w->stop, close_cb);
}

static void signal_ready(struct sipd_worker *w, int err)
{
	pthread_mutex_lock(&w->lock);
	w->start_err = err;
	w->ready = true;
	pthread_cond_signal(&w->ready_cond);
	pthread_mutex_unlock(&w->lock);
}

static int setup(struct sipd_worker *w)
{
	const struct sipd_config *cfg = w->cfg;
	struct sip_tp_config tc;
	struct sip_txn_config xc;
	struct sip_txn_callbacks cb = {
		.send = txn_send,
		.request = txn_request,
		.transport_error = txn_error,
		.terminated = txn_terminated,
	};
	int r;

	sip_tp_config_default(&tc);
	tc.recv = on_recv;
	tc.arg = w;
	tc.tls.cert_file = cfg->tls_cert;
	tc.tls.key_file = cfg->tls_key;
	tc.tls.ca_file = cfg->tls_ca;
	r = sip_tp_create(&w->loop, &tc, &w->tp);
	if (r < 0) {
		sipd_logf(cfg->log, SIPD_LOG_ERROR, (int)w->index, "start",
			  "transport: %s", strerror(-r));
		return r;
	}
	sip_txn_config_default(&xc);
	xc.worker = w->index;
	xc.seed = uv_hrtime() ^ ((uint64_t)w->index << 48);
	r = sip_txn_table_create(&xc, &cb, w, &w->txns);
	if (r < 0)
		return r;
	if (cfg->regq &&
	    (r = regq_open(cfg->regq, w->index, &w->loop, registrar_send,
			   registrar_batch, w, &w->regq)) < 0)
		return r;

	struct sip_tp_listener *lsns[SIPD_MAX_LISTEN];
	unsigned nlsn = 0;

	for (unsigned i = 0; i < cfg->nlisten; i++) {
		struct sip_tp_listen_config lc = {
			.uri = cfg->listen[i],
			.reuseport = true,
			.drop_every = cfg->drop_every,
		};
		struct sip_tp_listener *lsn;
		struct sockaddr_storage ss;

		r = sip_tp_listen(w->tp, &lc, &lsn);
		if (r < 0) {
			sipd_logf(cfg->log, SIPD_LOG_ERROR, (int)w->index,
				  "start", "listen %s: %s", cfg->listen[i],
				  strerror(-r));
			return r;
		}
		if (w->bound && sip_tp_listener_addr(lsn, &ss) == 0)
			sip_tp_uri_format(sip_tp_listener_transport(lsn),
					  (struct sockaddr *)&ss, w->bound[i],
					  64);
		lsns[nlsn++] = lsn;
	}
	if (cfg->mode != 0 && !cfg->uas && cfg->store) {
		r = sipd_glue_create(&w->loop, w->tp, cfg, w->index, lsns, nlsn,
				     &w->proxy);
		if (r < 0) {
			sipd_logf(cfg->log, SIPD_LOG_ERROR, (int)w->index,
				  "start", "proxy: %s", strerror(-r));
			return r;
		}
	}
	return 0;
}

static void *thread_main(void *arg)
{
	struct sipd_worker *w = arg;
	int r;

	w->stop.data = w;
	w->txn_timer.data = w;
	uv_async_init(&w->loop, &w->stop, on_stop);
	uv_timer_init(&w->loop, &w->txn_timer);
	r = setup(w);
	if (r < 0) {
		on_stop(&w->stop);
		uv_run(&w->loop, UV_RUN_DEFAULT);
		signal_ready(w, r);
		return NULL;
	}
	signal_ready(w, 0);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	return NULL;
}

int sipd_worker_start(const struct sipd_config *cfg, unsigned index,
		      char bound[][64], struct sipd_worker **out)
{
	struct sipd_worker *w = calloc(1, sizeof(*w));
	int r;

	if (!w)
		return -ENOMEM;
	w->cfg = cfg;
	w->index = index;
	w->bound = bound;
	w->peers.next = w->peers.prev = &w->peers;
	sipd_handler_init(&w->handler, cfg->uas, cfg->registrar != NULL);
	r = uv_loop_init(&w->loop);
	if (r < 0) {
		free(w);
		return r;
	}
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->ready_cond, NULL);
	r = pthread_create(&w->thread, NULL, thread_main, w);
	if (r != 0) {
		uv_loop_close(&w->loop);
		free(w);
		return -r;
	}
	pthread_mutex_lock(&w->lock);
	while (!w->ready)
		pthread_cond_wait(&w->ready_cond, &w->lock);
	r = w->start_err;
	pthread_mutex_unlock(&w->lock);
	if (r < 0) {
		sipd_worker_join(w);
		return r;
	}
	*out = w;
	return 0;
}

void sipd_worker_stop(struct sipd_worker *w)
{
	uv_async_send(&w->stop);
}

void sipd_worker_wait(struct sipd_worker *w)
{
	if (!w->joined)
		pthread_join(w->thread, NULL);
	w->joined = true;
}

void sipd_worker_join(struct sipd_worker *w)
{
	sipd_worker_wait(w);
	sipd_glue_free(w->proxy);
	if (w->txns)
		sip_txn_table_destroy(w->txns);
	for (struct peer *p = w->peers.next, *next; p != &w->peers; p = next) {
		next = p->next;
		free(p);
	}
	uv_loop_close(&w->loop);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->ready_cond);
	free(w);
}
