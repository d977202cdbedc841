/** @file transport.c  UDP, TCP, TLS, WS and WSS transports on one libuv
 * loop: listeners, connections with framing and timeouts, connection
 * reuse, bounded send queues, TLS over memory BIOs, the WebSocket server
 * side, statistics. */
#include "transport/transport.h"

#include "ws/ws.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/** Datagrams one recvmmsg batch may hold (64 KiB each): 20 is the most
 * libuv reads with one recvmmsg. */
#define UDP_BATCH 20
#define UDP_CHUNK ((size_t)64 * 1024)
/** UDP sends of one receive batch, queued and sent with one sendmmsg:
 * at most UDP_OUT_MAX datagrams of up to UDP_OUT_SLOT bytes each. */
#define UDP_OUT_MAX 64
#define UDP_OUT_SLOT ((size_t)2048)
/** Receive buffer asked for each UDP socket (bytes). */
#define UDP_RCVBUF (4 * 1024 * 1024)
/** Stream read buffer, shared by every connection of a transport. */
#define READ_BUF ((size_t)64 * 1024)
/** TLS plaintext scratch, shared. */
#define PLAIN_BUF ((size_t)16 * 1024)
/** A TLS memory BIO whose buffer grew past this is replaced when empty. */
#define BIO_KEEP 256
#define IP_BUCKETS 256
/** Room for a WebSocket handshake response (101 or an error). */
#define WS_RESPONSE_MAX 1024

union tp_sa {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
};

/* The datagrams sent on a UDP socket while it delivers one recvmmsg batch,
 * ready for sendmmsg: msg[i] points at to[i] and iov[i], iov[i] at
 * data[i]. */
struct udp_out {
	unsigned n;
	struct mmsghdr msg[UDP_OUT_MAX];
	struct iovec iov[UDP_OUT_MAX];
	union tp_sa to[UDP_OUT_MAX];
	char data[UDP_OUT_MAX][UDP_OUT_SLOT];
};

struct sip_tp_listener {
	struct sip_tp *tp;
	struct sip_tp_listener *next;
	unsigned transport;
	union {
		uv_handle_t h;
		uv_udp_t udp;
		uv_tcp_t tcp;
	} u;
	union tp_sa addr;
	unsigned drop_every;
	uint64_t rx_count;
	char *rbuf;	     /* UDP batch buffer */
	struct udp_out *out; /* UDP sends queued during a batch */
	bool in_batch;	     /* UDP: delivering a recvmmsg batch */
};

enum conn_state {
	CS_CONNECTING = 0,
	CS_HANDSHAKE,	 /* TLS */
	CS_WS_HANDSHAKE, /* WebSocket opening handshake (server) */
	CS_OPEN,
	CS_DRAINING, /* last bytes written, then closed (WebSocket) */
	CS_CLOSING,
};

/* Bytes waiting for the connection to come up. */
struct chunk {
	struct chunk *next;
	size_t len;
	char data[];
};

struct conn {
	uv_tcp_t h; /* h.data = this */
	struct sip_tp *tp;
	struct conn *hnext;	     /* address hash chain */
	struct conn *next, *prev;    /* all connections */
	struct sip_tp_listener *lsn; /* accepted on, or NULL */
	sip_tp_conn_id id;
	unsigned transport;
	enum conn_state state;
	bool outbound;
	bool line_ok; /* start line of the current message checked */
	union tp_sa peer;
	union tp_sa local;
	uint64_t started; /* connect or handshake start */
	uint64_t last_active;
	uint64_t partial_since; /* first byte of an incomplete message */
	size_t queued;
	struct chunk *pend_head, *pend_tail;
	char *rb;
	size_t rlen, rcap;
	struct sip_framer fr;
	SSL *ssl;
	/* WebSocket: the handshake while it runs, then the decoder (its
	 * reassembly buffer exists only during a fragmented message) */
	struct ws_handshake *wsh;
	struct ws_decoder wsd;
	/* CS_DRAINING: why it closes; the write side is shut, the peer
	 * closed its side */
	enum sip_tp_close_reason drain_reason;
	int drain_err;
	bool shut_done, peer_eof;
};

struct wreq {
	uv_write_t req;
	struct conn *c;
	size_t len;
	char data[];
};

struct udp_sreq {
	uv_udp_send_t req;
	char data[];
};

struct ipcnt {
	struct ipcnt *next;
	int family;
	uint8_t ip[16];
	unsigned n;
};

struct sip_tp {
	uv_loop_t *loop;
	struct sip_tp_config cfg;
	struct sip_limits limits;
	bool destroying;
	unsigned send_batch; /* sip_tp_send_batch_begin() depth */
	unsigned nhandles;   /* open uv handles; freed at 0 when destroying */
	uv_timer_t sweep;
	struct sip_tp_listener *listeners;
	struct conn *conns; /* list head */
	unsigned nconns;
	/* slot table: id = gen << 32 | (slot + 1) */
	struct conn **slots;
	uint32_t *gens;
	uint32_t nslots;
	uint32_t *freel;
	uint32_t nfree;
	/* address hash */
	struct conn **buckets;
	size_t nbuckets;
	struct ipcnt *ipb[IP_BUCKETS];
	SSL_CTX *ssl_server, *ssl_client;
	char *rbuf;
	char *pbuf;
	struct sip_tp_stats st;
};

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */
/* ------------------------------------------------------------------------ */

static socklen_t sa_len(const struct sockaddr *sa)
{
	return sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
					 : sizeof(struct sockaddr_in);
}

static void sa_copy(union tp_sa *dst, const struct sockaddr *src)
{
	memset(dst, 0, sizeof(*dst));
	memcpy(dst, src, sa_len(src));
}

static const uint8_t *sa_ip(const struct sockaddr *sa, size_t *len)
{
	if (sa->sa_family == AF_INET6) {
		*len = 16;
		return (const uint8_t *)&((const struct sockaddr_in6 *)sa)
			->sin6_addr;
	}
	*len = 4;
	return (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
}

static uint16_t sa_port(const struct sockaddr *sa)
{
	return sa->sa_family == AF_INET6
		       ? ((const struct sockaddr_in6 *)sa)->sin6_port
		       : ((const struct sockaddr_in *)sa)->sin_port;
}

static bool sa_equal(const struct sockaddr *a, const struct sockaddr *b)
{
	size_t la, lb;
	const uint8_t *ia = sa_ip(a, &la), *ib = sa_ip(b, &lb);

	return a->sa_family == b->sa_family && sa_port(a) == sa_port(b) &&
	       la == lb && !memcmp(ia, ib, la);
}

static uint32_t hash_bytes(uint32_t h, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

static uint32_t addr_hash(unsigned transport, const struct sockaddr *sa)
{
	size_t n;
	const uint8_t *ip = sa_ip(sa, &n);
	uint16_t port = sa_port(sa);
	uint32_t h = 2166136261u ^ transport;

	h = hash_bytes(h, ip, n);
	return hash_bytes(h, (const uint8_t *)&port, sizeof(port));
}

static bool is_ws(unsigned transport)
{
	return transport == SIP_TP_WS || transport == SIP_TP_WSS;
}

static bool is_tls(unsigned transport)
{
	return transport == SIP_TP_TLS || transport == SIP_TP_WSS;
}

static bool is_reliable(unsigned transport)
{
	return transport == SIP_TP_TCP || is_tls(transport) || is_ws(transport);
}

/* The connection takes bytes from the peer. */
static bool conn_reading(const struct conn *c)
{
	return c->state == CS_OPEN || c->state == CS_WS_HANDSHAKE;
}

static void tp_handle_gone(struct sip_tp *tp);

/* ------------------------------------------------------------------------ */
/* Connection table, hash, per-IP counts                                    */
/* ------------------------------------------------------------------------ */

static int slot_alloc(struct sip_tp *tp, struct conn *c)
{
	if (tp->nfree == 0) {
		uint32_t n = tp->nslots ? tp->nslots * 2 : 64;
		struct conn **s = realloc(tp->slots, n * sizeof(struct conn *));
		if (!s)
			return -ENOMEM;
		tp->slots = s;
		uint32_t *g = realloc(tp->gens, n * sizeof(*g));
		if (!g)
			return -ENOMEM;
		tp->gens = g;
		uint32_t *f = realloc(tp->freel, n * sizeof(*f));
		if (!f)
			return -ENOMEM;
		tp->freel = f;
		for (uint32_t i = tp->nslots; i < n; i++) {
			s[i] = NULL;
			g[i] = 1;
		}
		/* hand out low slots first */
		for (uint32_t i = n; i > tp->nslots; i--)
			f[tp->nfree++] = i - 1;
		tp->nslots = n;
	}
	uint32_t slot = tp->freel[--tp->nfree];
	tp->slots[slot] = c;
	c->id = ((uint64_t)tp->gens[slot] << 32) | (uint64_t)(slot + 1);
	return 0;
}

static void slot_release(struct sip_tp *tp, struct conn *c)
{
	uint32_t slot = (uint32_t)(c->id & 0xffffffffu) - 1;

	tp->slots[slot] = NULL;
	tp->gens[slot]++;
	if (tp->gens[slot] == 0)
		tp->gens[slot] = 1;
	tp->freel[tp->nfree++] = slot;
}

static struct conn *conn_get(struct sip_tp *tp, sip_tp_conn_id id)
{
	uint32_t slot = (uint32_t)(id & 0xffffffffu);
	uint32_t gen = (uint32_t)(id >> 32);

	if (slot == 0 || slot > tp->nslots)
		return NULL;
	struct conn *c = tp->slots[slot - 1];
	if (!c || tp->gens[slot - 1] != gen || c->state == CS_CLOSING ||
	    c->state == CS_DRAINING)
		return NULL;
	return c;
}

static int hash_grow(struct sip_tp *tp)
{
	size_t n = tp->nbuckets ? tp->nbuckets * 2 : 256;
	struct conn **b = calloc(n, sizeof(struct conn *));

	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < tp->nbuckets; i++) {
		struct conn *c = tp->buckets[i], *nx;
		for (; c; c = nx) {
			nx = c->hnext;
			size_t k =
				addr_hash(c->transport, &c->peer.sa) & (n - 1);
			c->hnext = b[k];
			b[k] = c;
		}
	}
	free(tp->buckets);
	tp->buckets = b;
	tp->nbuckets = n;
	return 0;
}

static void hash_insert(struct sip_tp *tp, struct conn *c)
{
	size_t k = addr_hash(c->transport, &c->peer.sa) & (tp->nbuckets - 1);

	c->hnext = tp->buckets[k];
	tp->buckets[k] = c;
}

static void hash_remove(struct sip_tp *tp, struct conn *c)
{
	size_t k = addr_hash(c->transport, &c->peer.sa) & (tp->nbuckets - 1);

	for (struct conn **pp = &tp->buckets[k]; *pp; pp = &(*pp)->hnext) {
		if (*pp == c) {
			*pp = c->hnext;
			return;
		}
	}
}

static struct conn *conn_find(struct sip_tp *tp, unsigned transport,
			      const struct sockaddr *addr)
{
	if (!tp->nbuckets)
		return NULL;
	size_t k = addr_hash(transport, addr) & (tp->nbuckets - 1);
	for (struct conn *c = tp->buckets[k]; c; c = c->hnext)
		if (c->transport == transport && c->state != CS_DRAINING &&
		    sa_equal(&c->peer.sa, addr))
			return c;
	return NULL;
}

static struct ipcnt **ip_slot(struct sip_tp *tp, const struct sockaddr *sa)
{
	size_t n;
	const uint8_t *ip = sa_ip(sa, &n);
	uint32_t k = hash_bytes(2166136261u, ip, n) % IP_BUCKETS;
	struct ipcnt **pp = &tp->ipb[k];

	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->family == sa->sa_family && !memcmp((*pp)->ip, ip, n))
			break;
	return pp;
}

static unsigned ip_count(struct sip_tp *tp, const struct sockaddr *sa)
{
	struct ipcnt **pp = ip_slot(tp, sa);
	return *pp ? (*pp)->n : 0;
}

static int ip_add(struct sip_tp *tp, const struct sockaddr *sa, int delta)
{
	struct ipcnt **pp = ip_slot(tp, sa);

	if (!*pp) {
		if (delta < 0)
			return 0;
		size_t n;
		const uint8_t *ip = sa_ip(sa, &n);
		struct ipcnt *e = calloc(1, sizeof(*e));
		if (!e)
			return -ENOMEM;
		e->family = sa->sa_family;
		memcpy(e->ip, ip, n);
		*pp = e;
	}
	if (delta < 0 && (*pp)->n <= 1) {
		struct ipcnt *e = *pp;
		*pp = e->next;
		free(e);
		return 0;
	}
	(*pp)->n = (unsigned)((int)(*pp)->n + delta);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Connection lifecycle                                                     */
/* ------------------------------------------------------------------------ */

static void conn_closed_cb(uv_handle_t *h)
{
	struct conn *c = h->data;
	struct sip_tp *tp = c->tp;

	free(c->rb);
	SSL_free(c->ssl);
	free(c->wsh);
	free(c->wsd.msg_buf);
	free(c);
	tp_handle_gone(tp);
}

static void conn_close(struct conn *c, enum sip_tp_close_reason reason, int err)
{
	struct sip_tp *tp = c->tp;

	if (c->state == CS_CLOSING)
		return;
	c->state = CS_CLOSING;
	hash_remove(tp, c);
	if (!c->outbound)
		ip_add(tp, &c->peer.sa, -1);
	if (c->prev)
		c->prev->next = c->next;
	else
		tp->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	tp->nconns--;
	tp->st.conns_open--;
	tp->st.closes[reason]++;
	for (struct chunk *k = c->pend_head, *nx; k; k = nx) {
		nx = k->next;
		free(k);
	}
	c->pend_head = c->pend_tail = NULL;
	c->queued = 0;
	sip_tp_conn_id id = c->id;
	slot_release(tp, c);
	if (tp->cfg.on_conn && !tp->destroying)
		tp->cfg.on_conn(tp, id, SIP_TP_CONN_DOWN, reason, err,
				tp->cfg.arg);
	uv_close((uv_handle_t *)&c->h, conn_closed_cb);
}

/* Register a new connection whose handle is initialised. */
static int conn_register(struct sip_tp *tp, struct conn *c)
{
	int rc;

	if (tp->nconns + 1 > tp->nbuckets && (rc = hash_grow(tp)) < 0)
		return rc;
	if ((rc = slot_alloc(tp, c)) < 0)
		return rc;
	if (!c->outbound && (rc = ip_add(tp, &c->peer.sa, 1)) < 0) {
		slot_release(tp, c);
		return rc;
	}
	hash_insert(tp, c);
	c->next = tp->conns;
	if (tp->conns)
		tp->conns->prev = c;
	tp->conns = c;
	tp->nconns++;
	tp->st.conns_open++;
	c->last_active = c->started = uv_now(tp->loop);
	sip_framer_init(&c->fr, &tp->limits);
	return 0;
}

static void write_cb(uv_write_t *req, int status)
{
	struct wreq *w = (struct wreq *)req;
	struct conn *c = w->c;

	c->queued = c->queued >= w->len ? c->queued - w->len : 0;
	free(w);
	if (status < 0 && status != UV_ECANCELED)
		conn_close(c, SIP_TP_CLOSE_IO, status);
}

/* Write raw (already encrypted, for TLS) bytes to the socket: @p a, then
 * @p b (which may be empty). */
static int conn_write_raw(struct conn *c, const char *a, size_t alen,
			  const char *b, size_t blen)
{
	uv_buf_t bufs[2] = {uv_buf_init((char *)a, (unsigned)alen),
			    uv_buf_init((char *)b, (unsigned)blen)};
	size_t done = 0, len = alen + blen;
	int rc;

	if (c->h.write_queue_size == 0) {
		rc = uv_try_write((uv_stream_t *)&c->h, bufs, blen ? 2 : 1);
		if (rc >= 0 && (size_t)rc == len)
			return 0;
		if (rc >= 0) {
			done = (size_t)rc;
		} else if (rc != UV_EAGAIN) {
			conn_close(c, SIP_TP_CLOSE_IO, rc);
			return rc;
		}
	}
	len -= done;
	struct wreq *w = malloc(sizeof(*w) + len);
	if (!w)
		return -ENOMEM;
	w->c = c;
	w->len = len;
	if (done < alen) {
		memcpy(w->data, a + done, alen - done);
		if (blen)
			memcpy(w->data + alen - done, b, blen);
	} else if (blen) {
		memcpy(w->data, b + (done - alen), len);
	}
	uv_buf_t wb = uv_buf_init(w->data, (unsigned)len);
	rc = uv_write(&w->req, (uv_stream_t *)&c->h, &wb, 1, write_cb);
	if (rc < 0) {
		free(w);
		conn_close(c, SIP_TP_CLOSE_IO, rc);
		return rc;
	}
	c->queued += len;
	return 0;
}

static void tls_fail(struct conn *c)
{
	long v = SSL_get_verify_result(c->ssl);
	unsigned long e = ERR_peek_error();
	int err =
		v != X509_V_OK ||
				(ERR_GET_LIB(e) == ERR_LIB_SSL &&
				 ERR_GET_REASON(e) ==
					 SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE)
			? -EKEYREJECTED
			: -EPROTO;

	ERR_clear_error();
	conn_close(c, SIP_TP_CLOSE_TLS, err);
}

/* Send what OpenSSL wrote into the write BIO. */
static int tls_flush(struct conn *c)
{
	BIO *wb = SSL_get_wbio(c->ssl);
	size_t n;

	while (c->state != CS_CLOSING && (n = BIO_ctrl_pending(wb)) > 0) {
		struct wreq *w = malloc(sizeof(*w) + n);
		if (!w) {
			conn_close(c, SIP_TP_CLOSE_IO, -ENOMEM);
			return -ENOMEM;
		}
		int got = BIO_read(wb, w->data, (int)n);
		if (got <= 0) {
			free(w);
			break;
		}
		w->c = c;
		w->len = (size_t)got;
		uv_buf_t b = uv_buf_init(w->data, (unsigned)got);
		int rc = uv_write(&w->req, (uv_stream_t *)&c->h, &b, 1,
				  write_cb);
		if (rc < 0) {
			free(w);
			conn_close(c, SIP_TP_CLOSE_IO, rc);
			return rc;
		}
		c->queued += (size_t)got;
	}
	return c->state == CS_CLOSING ? -ENOTCONN : 0;
}

/* Replace an empty memory BIO whose buffer grew, so that an idle
 * connection keeps little memory. */
static void tls_trim(struct conn *c)
{
	BIO *bios[2] = {SSL_get_rbio(c->ssl), SSL_get_wbio(c->ssl)};

	for (int i = 0; i < 2; i++) {
		BUF_MEM *bm = NULL;
		if (BIO_ctrl_pending(bios[i]) != 0)
			continue;
		BIO_get_mem_ptr(bios[i], &bm);
		if (!bm || bm->max <= BIO_KEEP)
			continue;
		BIO *nb = BIO_new(BIO_s_mem());
		if (!nb)
			return;
		BIO_set_mem_eof_return(nb, -1);
		if (i == 0)
			SSL_set0_rbio(c->ssl, nb);
		else
			SSL_set0_wbio(c->ssl, nb);
	}
}

/* Send @p a then @p b (may be empty) on an open connection (TLS:
 * encrypt). */
static int conn_write2(struct conn *c, const char *a, size_t alen,
		       const char *b, size_t blen)
{
	c->last_active = uv_now(c->tp->loop);
	if (!c->ssl)
		return conn_write_raw(c, a, alen, b, blen);
	if ((alen && SSL_write(c->ssl, a, (int)alen) <= 0) ||
	    (blen && SSL_write(c->ssl, b, (int)blen) <= 0)) {
		tls_fail(c);
		return -EPROTO;
	}
	int rc = tls_flush(c);
	if (rc == 0)
		tls_trim(c);
	return rc;
}

static int conn_write(struct conn *c, const char *buf, size_t len)
{
	return conn_write2(c, buf, len, NULL, 0);
}

/* Send one SIP message: as it is on TCP and TLS, in one unmasked frame on
 * WS and WSS (text, or binary when it is not UTF-8, RFC 7118 §5). */
static int conn_write_msg(struct conn *c, const char *buf, size_t len)
{
	uint8_t hdr[WS_MAX_HEADER];
	int h;

	if (!is_ws(c->transport))
		return conn_write(c, buf, len);
	h = ws_encode_header(hdr, sizeof(hdr),
			     ws_utf8_valid(buf, len) ? WS_OP_TEXT
						     : WS_OP_BINARY,
			     true, len, NULL);
	if (h < 0)
		return h;
	return conn_write2(c, (const char *)hdr, (size_t)h, buf, len);
}

static void conn_up(struct conn *c)
{
	struct sip_tp *tp = c->tp;

	c->state = CS_OPEN;
	c->last_active = uv_now(tp->loop);
	/* what waited goes first, before anything the UP callback sends */
	while (c->state == CS_OPEN && c->pend_head) {
		struct chunk *k = c->pend_head;
		c->pend_head = k->next;
		if (!c->pend_head)
			c->pend_tail = NULL;
		c->queued -= k->len;
		conn_write_msg(c, k->data, k->len);
		free(k);
	}
	if (c->state == CS_OPEN && tp->cfg.on_conn && !tp->destroying)
		tp->cfg.on_conn(tp, c->id, SIP_TP_CONN_UP, SIP_TP_CLOSE_LOCAL,
				0, tp->cfg.arg);
}

static int conn_send(struct conn *c, const char *buf, size_t len)
{
	if (c->queued + len > c->tp->cfg.max_send_queue)
		return -ENOBUFS;
	if (c->state == CS_OPEN)
		return conn_write_msg(c, buf, len);
	struct chunk *k = malloc(sizeof(*k) + len);
	if (!k)
		return -ENOMEM;
	k->next = NULL;
	k->len = len;
	memcpy(k->data, buf, len);
	if (c->pend_tail)
		c->pend_tail->next = k;
	else
		c->pend_head = k;
	c->pend_tail = k;
	c->queued += len;
	return 0;
}

static void shutdown_cb(uv_shutdown_t *req, int status)
{
	struct conn *c = req->handle->data;

	free(req);
	if (c->state != CS_DRAINING)
		return;
	c->shut_done = true;
	if (c->peer_eof || status < 0)
		conn_close(c, c->drain_reason, c->drain_err);
}

/* Close @p c once what was written to it has gone out (the answer to a
 * rejected handshake, a close frame): shut the write side after the queued
 * bytes, then close when the peer has closed its side too, so that unread
 * bytes of the peer do not turn the close into a reset. Bounded by
 * handshake_timeout_ms. The id is stale from now on. */
static void conn_drain(struct conn *c, enum sip_tp_close_reason reason, int err)
{
	if (c->state == CS_CLOSING || c->state == CS_DRAINING)
		return;
	c->state = CS_DRAINING;
	c->drain_reason = reason;
	c->drain_err = err;
	c->started = uv_now(c->tp->loop);
	if (c->ssl) {
		SSL_shutdown(c->ssl); /* close_notify */
		ERR_clear_error();
		if (tls_flush(c) < 0)
			return;
	}
	uv_shutdown_t *req = malloc(sizeof(*req));
	if (!req || uv_shutdown(req, (uv_stream_t *)&c->h, shutdown_cb) < 0) {
		free(req);
		conn_close(c, reason, err);
	}
}

/* ------------------------------------------------------------------------ */
/* Receiving on streams                                                     */
/* ------------------------------------------------------------------------ */

/* Does @p b start like a SIP start line? 1 yes, 0 need more, -1 no. */
static int start_line_check(const char *b, size_t n)
{
	if (!sip_is_token_char(b[0]))
		return -1;
	const char *nl = memchr(b, '\n', n);
	size_t end = nl ? (size_t)(nl - b) : n;
	if (end >= 4 && !strncasecmp(b, "SIP/", 4))
		return 1;
	size_t i = 0;
	while (i < end && sip_is_token_char(b[i]))
		i++;
	if (i == end)
		return nl ? -1 : 0;
	if (b[i] != ' ')
		return -1;
	if (!nl)
		return 0;
	if (end > 0 && b[end - 1] == '\r')
		end--;
	size_t v = end;
	while (v > i + 1 && b[v - 1] != ' ')
		v--;
	if (v <= i + 1 || end - v < 4 || strncasecmp(b + v, "SIP/", 4) != 0)
		return -1;
	return 1;
}

static void conn_deliver(struct conn *c, const char *buf, size_t len)
{
	struct sip_tp *tp = c->tp;
	struct sip_tp_rx rx = {
		.transport = c->transport,
		.src = &c->peer.sa,
		.local = &c->local.sa,
		.lsn = c->lsn,
		.conn = c->id,
		.buf = buf,
		.len = len,
	};

	tp->st.msgs_in++;
	tp->st.bytes_in += len;
	if (!tp->destroying)
		tp->cfg.recv(tp, &rx, tp->cfg.arg);
}

/* Cut and deliver the complete frames in the receive buffer. */
static void conn_frame(struct conn *c)
{
	struct sip_tp *tp = c->tp;
	size_t off = 0;

	while (c->state != CS_CLOSING && off < c->rlen) {
		const char *b = c->rb + off;
		size_t avail = c->rlen - off, len = 0;
		struct sip_error err;

		if (!c->line_ok && b[0] != '\r') {
			int ok = start_line_check(b, avail);
			if (ok < 0) {
				conn_close(c, SIP_TP_CLOSE_GARBAGE, -EBADMSG);
				return;
			}
			c->line_ok = ok > 0;
		}
		int rc = sip_framer_next(&c->fr, b, avail, &len, &err);
		if (rc < 0) {
			conn_close(c,
				   rc == -EMSGSIZE ? SIP_TP_CLOSE_OVERSIZE
						   : SIP_TP_CLOSE_FRAMING,
				   rc);
			return;
		}
		if (rc == SIP_FRAME_NEED_MORE)
			break;
		off += len;
		if (rc == SIP_FRAME_KEEPALIVE) {
			if (len == 4) {
				tp->st.keepalives_in++;
				conn_write(c, "\r\n", 2);
			}
			continue;
		}
		c->line_ok = false;
		conn_deliver(c, b, len);
	}
	if (c->state == CS_CLOSING || off == 0)
		return;
	memmove(c->rb, c->rb + off, c->rlen - off);
	c->rlen -= off;
	c->partial_since = c->rlen ? uv_now(tp->loop) : 0;
}

/* ------------------------------------------------------------------------ */
/* WebSocket (RFC 6455, RFC 7118), server side                              */
/* ------------------------------------------------------------------------ */

/* Send a control frame (pong, close) built into @p frame. */
static void ws_send_control(struct conn *c, const uint8_t *frame, int n)
{
	if (n > 0)
		conn_write(c, (const char *)frame, (size_t)n);
}

/* Answer the opening handshake once its header block is in the buffer.
 * @return the bytes it took (the 101 was sent, the connection is OPEN and
 *         reported UP), 0 when more is needed, -1 when the connection is
 *         draining or closed. */
static int ws_upgrade(struct conn *c)
{
	char out[WS_RESPONSE_MAX];
	int rc = ws_server_handshake(c->wsh, c->rb, c->rlen);
	int n;
	size_t used;

	if (rc == WS_HS_NEED_MORE)
		return 0;
	n = ws_server_response(c->wsh, out, sizeof(out));
	if (rc != WS_HS_ACCEPT || n < 0) {
		if (n > 0)
			conn_write(c, out, (size_t)n);
		conn_drain(c, SIP_TP_CLOSE_WS_HANDSHAKE, -EPROTO);
		return -1;
	}
	used = c->wsh->len;
	free(c->wsh);
	c->wsh = NULL;
	if (conn_write(c, out, (size_t)n) < 0)
		return -1;
	ws_decoder_init(&c->wsd, WS_ROLE_SERVER, NULL, c->tp->cfg.max_msg_size);
	conn_up(c);
	return c->state == CS_OPEN ? (int)used : -1;
}

/* Only CR and LF in @p p? */
static bool crlf_only(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != '\r' && p[i] != '\n')
			return false;
	return true;
}

/* One decoded event. */
static void ws_on_event(struct conn *c, const struct ws_event *ev)
{
	struct sip_tp *tp = c->tp;
	uint8_t frame[WS_MAX_HEADER + WS_MAX_CONTROL];
	int n;

	switch (ev->kind) {
	case WS_EV_MESSAGE:
		/* CRLFCRLF keepalive as some clients send it over WebSocket:
		 * answered with CRLF (RFC 5626 §3.5.1); other CR/LF-only
		 * messages are ignored */
		if (ev->data.len <= 4 && crlf_only(ev->data.p, ev->data.len)) {
			if (ev->data.len == 4 &&
			    !memcmp(ev->data.p, "\r\n\r\n", 4)) {
				tp->st.keepalives_in++;
				conn_write_msg(c, "\r\n", 2);
			}
		} else {
			conn_deliver(c, ev->data.p, ev->data.len);
		}
		if (c->wsd.msg_buf && !c->wsd.in_message) {
			free(c->wsd.msg_buf);
			c->wsd.msg_buf = NULL;
		}
		break;
	case WS_EV_PING:
		tp->st.keepalives_in++;
		n = ws_encode(frame, sizeof(frame), WS_OP_PONG, true,
			      ev->data.p, ev->data.len, NULL);
		ws_send_control(c, frame, n);
		break;
	case WS_EV_CLOSE:
		/* echo the code (none when it had none), then end */
		n = ws_encode_close(frame, sizeof(frame), ev->code,
				    SIP_STR_NULL, NULL);
		ws_send_control(c, frame, n);
		conn_drain(c, SIP_TP_CLOSE_EOF, 0);
		break;
	case WS_EV_ERROR:
		n = ws_encode_close(frame, sizeof(frame), ev->code,
				    sip_str_c(ev->reason), NULL);
		ws_send_control(c, frame, n);
		if (ev->code == WS_CLOSE_TOO_BIG)
			conn_drain(c, SIP_TP_CLOSE_OVERSIZE, -EMSGSIZE);
		else
			conn_drain(c, SIP_TP_CLOSE_WS_PROTOCOL, -EPROTO);
		break;
	default: /* a pong */
		break;
	}
}

/* Does the frame starting with @p b0 begin a fragmented data message? */
static bool ws_fragment_start(uint8_t b0)
{
	unsigned op = b0 & 0x0fu;

	return !(b0 & 0x80u) && (op == WS_OP_TEXT || op == WS_OP_BINARY);
}

/* Handshake, then decode the frames in the receive buffer. */
static void ws_process(struct conn *c)
{
	size_t off = 0;

	if (c->state == CS_WS_HANDSHAKE) {
		int used = ws_upgrade(c);
		off = used > 0 ? (size_t)used : 0;
	}
	while (c->state == CS_OPEN && off < c->rlen) {
		uint8_t *b = (uint8_t *)c->rb + off;
		struct ws_event ev;
		size_t used = 0;

		if (!c->wsd.msg_buf && ws_fragment_start(b[0])) {
			c->wsd.msg_buf = malloc(c->wsd.max_message);
			if (!c->wsd.msg_buf) {
				conn_close(c, SIP_TP_CLOSE_IO, -ENOMEM);
				return;
			}
		}
		int rc = ws_decode(&c->wsd, b, c->rlen - off, &used, &ev);
		off += used;
		if (rc < 0) {
			conn_close(c, SIP_TP_CLOSE_IO, rc);
			return;
		}
		if (rc == WS_EV_NEED_MORE)
			break;
		ws_on_event(c, &ev);
	}
	if (c->state == CS_DRAINING) {
		/* nothing more is read */
		free(c->rb);
		c->rb = NULL;
		c->rlen = c->rcap = 0;
		return;
	}
	if (c->state != CS_OPEN || off == 0)
		return;
	memmove(c->rb, c->rb + off, c->rlen - off);
	c->rlen -= off;
	c->partial_since =
		c->rlen || c->wsd.in_message ? uv_now(c->tp->loop) : 0;
}

/* Bound on the receive buffer: a SIP message (and one byte to see that it
 * is too long), the WebSocket handshake, or a frame of a WS message. */
static size_t rb_limit(const struct conn *c)
{
	if (!is_ws(c->transport))
		return c->tp->cfg.max_msg_size + 1;
	if (c->state == CS_WS_HANDSHAKE)
		return c->wsh->max_size;
	return c->tp->cfg.max_msg_size + WS_MAX_HEADER;
}

/* Append stream bytes (plaintext) and frame them. */
static void conn_feed(struct conn *c, const char *data, size_t n)
{
	struct sip_tp *tp = c->tp;

	while (n > 0 && conn_reading(c)) {
		size_t limit = rb_limit(c);
		if (c->rlen == limit) {
			conn_close(c, SIP_TP_CLOSE_OVERSIZE, -EMSGSIZE);
			return;
		}
		size_t take = limit - c->rlen < n ? limit - c->rlen : n;
		if (c->rlen + take > c->rcap) {
			size_t cap = c->rcap ? c->rcap : 512;
			while (cap < c->rlen + take)
				cap *= 2;
			if (cap > limit)
				cap = limit;
			char *nb = realloc(c->rb, cap);
			if (!nb) {
				conn_close(c, SIP_TP_CLOSE_IO, -ENOMEM);
				return;
			}
			c->rb = nb;
			c->rcap = cap;
		}
		if (c->rlen == 0)
			c->partial_since = uv_now(tp->loop);
		memcpy(c->rb + c->rlen, data, take);
		c->rlen += take;
		data += take;
		n -= take;
		if (is_ws(c->transport))
			ws_process(c);
		else
			conn_frame(c);
	}
	if (c->state != CS_CLOSING && c->rlen == 0 && c->rb) {
		free(c->rb);
		c->rb = NULL;
		c->rcap = 0;
		/* a fragmented WS message in progress still counts */
		if (!c->wsd.in_message)
			c->partial_since = 0;
	}
}

static void conn_ready(struct conn *c);

static void tls_input(struct conn *c, const char *data, size_t n)
{
	struct sip_tp *tp = c->tp;

	if (BIO_write(SSL_get_rbio(c->ssl), data, (int)n) != (int)n) {
		conn_close(c, SIP_TP_CLOSE_IO, -ENOMEM);
		return;
	}
	if (c->state == CS_HANDSHAKE) {
		int r = SSL_do_handshake(c->ssl);
		if (r != 1) {
			int e = SSL_get_error(c->ssl, r);
			if (e == SSL_ERROR_WANT_READ ||
			    e == SSL_ERROR_WANT_WRITE) {
				tls_flush(c);
				return;
			}
			tls_flush(c); /* the alert */
			if (c->state != CS_CLOSING)
				tls_fail(c);
			return;
		}
		if (tls_flush(c) < 0)
			return;
		conn_ready(c);
	}
	while (conn_reading(c)) {
		int r = SSL_read(c->ssl, tp->pbuf, (int)PLAIN_BUF);
		if (r > 0) {
			conn_feed(c, tp->pbuf, (size_t)r);
			continue;
		}
		int e = SSL_get_error(c->ssl, r);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
			break;
		if (e == SSL_ERROR_ZERO_RETURN) {
			ERR_clear_error();
			conn_close(c, SIP_TP_CLOSE_EOF, 0);
		} else {
			tls_fail(c);
		}
		return;
	}
	if (c->state == CS_OPEN && tls_flush(c) == 0)
		tls_trim(c);
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct conn *c = h->data;

	(void)hint;
	*buf = uv_buf_init(c->tp->rbuf, (unsigned)READ_BUF);
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = s->data;

	if (c->state == CS_CLOSING || nread == 0)
		return;
	if (c->state == CS_DRAINING) {
		/* bytes are dropped; the peer's end of stream ends it */
		if (nread == UV_EOF && !c->shut_done)
			c->peer_eof = true;
		else if (nread < 0)
			conn_close(c, c->drain_reason, c->drain_err);
		return;
	}
	if (nread < 0) {
		if (nread == UV_EOF)
			conn_close(c, SIP_TP_CLOSE_EOF, 0);
		else
			conn_close(c, SIP_TP_CLOSE_IO, (int)nread);
		return;
	}
	c->last_active = uv_now(c->tp->loop);
	if (c->ssl)
		tls_input(c, buf->base, (size_t)nread);
	else if (conn_reading(c))
		conn_feed(c, buf->base, (size_t)nread);
}

static int tls_new(struct conn *c, SSL_CTX *ctx)
{
	BIO *rb = NULL, *wb = NULL;

	c->ssl = SSL_new(ctx);
	rb = BIO_new(BIO_s_mem());
	wb = BIO_new(BIO_s_mem());
	if (!c->ssl || !rb || !wb) {
		BIO_free(rb);
		BIO_free(wb);
		ERR_clear_error();
		return -ENOMEM;
	}
	BIO_set_mem_eof_return(rb, -1);
	BIO_set_mem_eof_return(wb, -1);
	SSL_set_bio(c->ssl, rb, wb);
	return 0;
}

/* The stream is up (TLS: handshake done): a WebSocket listener's
 * connection starts its opening handshake, any other one is UP. */
static void conn_ready(struct conn *c)
{
	if (!is_ws(c->transport) || c->outbound) {
		conn_up(c);
		return;
	}
	c->wsh = malloc(sizeof(*c->wsh));
	if (!c->wsh) {
		conn_close(c, SIP_TP_CLOSE_IO, -ENOMEM);
		return;
	}
	ws_handshake_init(c->wsh, 0);
	c->state = CS_WS_HANDSHAKE;
}

static void conn_start_stream(struct conn *c)
{
	uv_tcp_nodelay(&c->h, 1);
	int len = sizeof(c->local);
	uv_tcp_getsockname(&c->h, &c->local.sa, &len);
	int rc = uv_read_start((uv_stream_t *)&c->h, alloc_cb, read_cb);
	if (rc < 0) {
		conn_close(c, SIP_TP_CLOSE_IO, rc);
		return;
	}
	c->started = uv_now(c->tp->loop);
	if (!c->ssl) {
		conn_ready(c);
		return;
	}
	c->state = CS_HANDSHAKE;
	if (c->outbound) {
		int r = SSL_do_handshake(c->ssl);
		int e = SSL_get_error(c->ssl, r);
		if (e != SSL_ERROR_WANT_READ) {
			tls_fail(c);
			return;
		}
		tls_flush(c);
	}
}

static void on_connection(uv_stream_t *server, int status)
{
	struct sip_tp_listener *lsn = server->data;
	struct sip_tp *tp = lsn->tp;

	if (status < 0 || tp->destroying)
		return;
	struct conn *c = calloc(1, sizeof(*c));
	if (!c)
		return;
	c->tp = tp;
	c->transport = lsn->transport;
	c->lsn = lsn;
	c->state = CS_CONNECTING;
	c->h.data = c;
	uv_tcp_init(tp->loop, &c->h);
	tp->nhandles++;
	int len = sizeof(c->peer);
	if (uv_accept(server, (uv_stream_t *)&c->h) < 0 ||
	    uv_tcp_getpeername(&c->h, &c->peer.sa, &len) < 0) {
		c->state = CS_CLOSING;
		uv_close((uv_handle_t *)&c->h, conn_closed_cb);
		return;
	}
	if (tp->nconns >= tp->cfg.max_conns ||
	    (tp->cfg.max_conns_per_ip &&
	     ip_count(tp, &c->peer.sa) >= tp->cfg.max_conns_per_ip) ||
	    (is_tls(c->transport) && tls_new(c, tp->ssl_server) < 0) ||
	    conn_register(tp, c) < 0) {
		tp->st.closes[SIP_TP_CLOSE_LIMIT]++;
		c->state = CS_CLOSING;
		uv_close((uv_handle_t *)&c->h, conn_closed_cb);
		return;
	}
	tp->st.conns_accepted++;
	if (c->ssl)
		SSL_set_accept_state(c->ssl);
	conn_start_stream(c);
}

static void connect_cb(uv_connect_t *req, int status)
{
	struct conn *c = req->data;

	free(req);
	if (status == UV_ECANCELED || c->state == CS_CLOSING)
		return;
	if (status < 0) {
		conn_close(c, SIP_TP_CLOSE_CONNECT, status);
		return;
	}
	c->tp->st.conns_connected++;
	conn_start_stream(c);
}

static int tls_client_setup(struct conn *c, const char *name)
{
	int rc = tls_new(c, c->tp->ssl_client);

	if (rc < 0)
		return rc;
	SSL_set_connect_state(c->ssl);
	if (name && *name) {
		if (!SSL_set_tlsext_host_name(c->ssl, name) ||
		    !SSL_set1_host(c->ssl, name))
			rc = -EINVAL;
	} else {
		size_t n;
		const uint8_t *ip = sa_ip(&c->peer.sa, &n);
		if (!X509_VERIFY_PARAM_set1_ip(SSL_get0_param(c->ssl), ip, n))
			rc = -EINVAL;
	}
	ERR_clear_error();
	return rc;
}

static int conn_open_out(struct sip_tp *tp, const struct sip_tp_dest *dst,
			 struct conn **out)
{
	int rc;

	if (dst->addr->sa_family != AF_INET && dst->addr->sa_family != AF_INET6)
		return -EAFNOSUPPORT;
	if (tp->nconns >= tp->cfg.max_conns)
		return -EMFILE;
	struct conn *c = calloc(1, sizeof(*c));
	uv_connect_t *req = malloc(sizeof(*req));
	if (!c || !req) {
		free(c);
		free(req);
		return -ENOMEM;
	}
	c->tp = tp;
	c->transport = dst->transport;
	c->outbound = true;
	c->state = CS_CONNECTING;
	sa_copy(&c->peer, dst->addr);
	if (dst->transport == SIP_TP_TLS &&
	    (rc = tls_client_setup(c, dst->server_name)) < 0) {
		SSL_free(c->ssl);
		free(c);
		free(req);
		return rc;
	}
	c->h.data = c;
	uv_tcp_init(tp->loop, &c->h);
	tp->nhandles++;
	if ((rc = conn_register(tp, c)) < 0) {
		free(req);
		c->state = CS_CLOSING;
		uv_close((uv_handle_t *)&c->h, conn_closed_cb);
		return rc;
	}
	req->data = c;
	rc = uv_tcp_connect(req, &c->h, &c->peer.sa, connect_cb);
	if (rc < 0) {
		free(req);
		conn_close(c, SIP_TP_CLOSE_CONNECT, rc);
		return rc;
	}
	*out = c;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Timeouts                                                                 */
/* ------------------------------------------------------------------------ */

static void sweep_cb(uv_timer_t *t)
{
	struct sip_tp *tp = t->data;
	uint64_t now = uv_now(tp->loop);
	const struct sip_tp_config *cfg = &tp->cfg;

	for (struct conn *c = tp->conns, *nx; c; c = nx) {
		nx = c->next;
		switch (c->state) {
		case CS_CONNECTING:
			if (now - c->started >= cfg->connect_timeout_ms)
				conn_close(c, SIP_TP_CLOSE_CONNECT, -ETIMEDOUT);
			break;
		case CS_HANDSHAKE:
		case CS_WS_HANDSHAKE:
			if (now - c->started >= cfg->handshake_timeout_ms)
				conn_close(c, SIP_TP_CLOSE_HANDSHAKE_TIMEOUT,
					   -ETIMEDOUT);
			break;
		case CS_DRAINING:
			if (now - c->started >= cfg->handshake_timeout_ms)
				conn_close(c, c->drain_reason, c->drain_err);
			break;
		case CS_OPEN:
			if (c->partial_since &&
			    now - c->partial_since >= cfg->stall_timeout_ms)
				conn_close(c, SIP_TP_CLOSE_STALLED, -ETIMEDOUT);
			else if (now - c->last_active >= cfg->idle_timeout_ms)
				conn_close(c, SIP_TP_CLOSE_IDLE, -ETIMEDOUT);
			break;
		case CS_CLOSING:
			break;
		}
	}
}

/* ------------------------------------------------------------------------ */
/* UDP                                                                      */
/* ------------------------------------------------------------------------ */

static void udp_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct sip_tp_listener *lsn = h->data;

	(void)hint;
	*buf = uv_buf_init(lsn->rbuf, (unsigned)(UDP_BATCH * UDP_CHUNK));
}

static int udp_send_now(struct sip_tp_listener *lsn, const struct sockaddr *to,
			const char *buf, size_t len);

/* Count a datagram that sip_tp_send() had accepted as failed. */
static void udp_out_failed(struct sip_tp *tp, size_t len)
{
	tp->st.msgs_out--;
	tp->st.bytes_out -= len;
	tp->st.send_errors++;
}

/*
 * Send what @p lsn queued during the batch, in order: one sendmmsg while
 * libuv has nothing of its own queued on the socket, then, from the first
 * datagram the socket would not take, the ordinary path (which queues a
 * copy behind it). A datagram the kernel refuses is dropped and counted.
 */
static void udp_flush(struct sip_tp_listener *lsn)
{
	struct udp_out *q = lsn->out;
	struct sip_tp *tp = lsn->tp;
	unsigned i = 0;
	uv_os_fd_t fd;

	if (!q || q->n == 0)
		return;
	if (uv_udp_get_send_queue_count(&lsn->u.udp) == 0 &&
	    uv_fileno(&lsn->u.h, &fd) == 0) {
		while (i < q->n) {
			int r = sendmmsg(fd, q->msg + i, q->n - i, 0);

			if (r > 0) {
				tp->st.udp_flushes++;
				tp->st.udp_batched += (unsigned)r;
				i += (unsigned)r;
			} else if (r < 0 && errno == EINTR) {
				continue;
			} else if (r == 0 || errno == EAGAIN ||
				   errno == EWOULDBLOCK) {
				break;
			} else {
				udp_out_failed(tp, q->iov[i].iov_len);
				i++;
			}
		}
	}
	for (; i < q->n; i++) {
		if (udp_send_now(lsn, &q->to[i].sa, q->data[i],
				 q->iov[i].iov_len) < 0)
			udp_out_failed(tp, q->iov[i].iov_len);
	}
	q->n = 0;
}

static void udp_queue(struct sip_tp_listener *lsn, const struct sockaddr *to,
		      const char *buf, size_t len)
{
	struct udp_out *q = lsn->out;
	unsigned i;

	if (q->n == UDP_OUT_MAX)
		udp_flush(lsn);
	i = q->n++;
	sa_copy(&q->to[i], to);
	memcpy(q->data[i], buf, len);
	q->iov[i] = (struct iovec){q->data[i], len};
	q->msg[i] = (struct mmsghdr){
		.msg_hdr =
			{
				.msg_name = &q->to[i],
				.msg_namelen = sa_len(to),
				.msg_iov = &q->iov[i],
				.msg_iovlen = 1,
			},
	};
}

/*
 * libuv delivers a recvmmsg batch as one callback per datagram with
 * UV_UDP_MMSG_CHUNK, then one with UV_UDP_MMSG_FREE. Any callback without
 * UV_UDP_MMSG_CHUNK (that one, nothing to read, an error, a datagram read
 * alone) ends a batch: what was sent during it goes out then.
 */
static void udp_recv_cb(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
			const struct sockaddr *addr, unsigned flags)
{
	struct sip_tp_listener *lsn = h->data;
	struct sip_tp *tp = lsn->tp;

	if (flags & UV_UDP_MMSG_CHUNK) {
		lsn->in_batch = true;
	} else {
		lsn->in_batch = false;
		udp_flush(lsn);
	}
	if ((flags & UV_UDP_MMSG_FREE) || nread <= 0 || !addr || tp->destroying)
		return;
	if (lsn->drop_every && ++lsn->rx_count % lsn->drop_every == 0) {
		tp->st.dgrams_dropped++;
		return;
	}
	struct sip_tp_rx rx = {
		.transport = SIP_TP_UDP,
		.src = addr,
		.local = &lsn->addr.sa,
		.lsn = lsn,
		.buf = buf->base,
		.len = (size_t)nread,
	};
	tp->st.msgs_in++;
	tp->st.bytes_in += (uint64_t)nread;
	tp->cfg.recv(tp, &rx, tp->cfg.arg);
}

static void udp_send_cb(uv_udp_send_t *req, int status)
{
	(void)status;
	free(req);
}

/* Send now, or queue a copy behind what libuv already queued. */
static int udp_send_now(struct sip_tp_listener *lsn, const struct sockaddr *to,
			const char *buf, size_t len)
{
	uv_buf_t b = uv_buf_init((char *)buf, (unsigned)len);
	int rc = uv_udp_try_send(&lsn->u.udp, &b, 1, to);

	if (rc >= 0)
		return 0;
	if (rc != UV_EAGAIN && rc != UV_ENOSYS)
		return rc;
	struct udp_sreq *r = malloc(sizeof(*r) + len);
	if (!r)
		return -ENOMEM;
	memcpy(r->data, buf, len);
	b = uv_buf_init(r->data, (unsigned)len);
	rc = uv_udp_send(&r->req, &lsn->u.udp, &b, 1, to, udp_send_cb);
	if (rc < 0)
		free(r);
	return rc;
}

/*
 * During a receive batch of the socket, a datagram that fits a slot is
 * queued and sent with the others when the batch ends (or the queue is
 * full). Anything else first sends what is queued, so that the order of
 * sip_tp_send() calls is kept.
 */
static int udp_send(struct sip_tp *tp, const struct sip_tp_dest *dst,
		    const char *buf, size_t len)
{
	struct sip_tp_listener *lsn = dst->lsn;

	if (!dst->addr)
		return -EINVAL;
	if (!lsn) {
		for (lsn = tp->listeners; lsn; lsn = lsn->next)
			if (lsn->transport == SIP_TP_UDP &&
			    lsn->addr.sa.sa_family == dst->addr->sa_family)
				break;
		if (!lsn)
			return -EAFNOSUPPORT;
	}
	if (lsn->transport != SIP_TP_UDP)
		return -EINVAL;
	if ((lsn->in_batch || tp->send_batch) && len <= UDP_OUT_SLOT &&
	    dst->addr->sa_family == lsn->addr.sa.sa_family) {
		udp_queue(lsn, dst->addr, buf, len);
		return 0;
	}
	udp_flush(lsn);
	return udp_send_now(lsn, dst->addr, buf, len);
}

void sip_tp_send_batch_begin(struct sip_tp *tp)
{
	tp->send_batch++;
}

void sip_tp_send_batch_end(struct sip_tp *tp)
{
	if (!tp->send_batch || --tp->send_batch)
		return;
	for (struct sip_tp_listener *l = tp->listeners; l; l = l->next)
		if (l->transport == SIP_TP_UDP && !l->in_batch)
			udp_flush(l);
}

/* ------------------------------------------------------------------------ */
/* Listeners                                                                */
/* ------------------------------------------------------------------------ */

static int make_socket(const struct sockaddr *addr, int type, bool reuseport)
{
	int one = 1;
	int fd =
		socket(addr->sa_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (type == SOCK_DGRAM) {
		/* The default (about 200 KiB) holds some 150 datagrams: a
		 * burst of requests while the worker is busy or descheduled
		 * would be dropped and cost the clients a retransmission.
		 * Best effort: the kernel caps it at net.core.rmem_max. */
		int sz = UDP_RCVBUF;

		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	}
	if ((type == SOCK_STREAM &&
	     setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one))) ||
	    (reuseport &&
	     setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one))) ||
	    (addr->sa_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one))) ||
	    bind(fd, addr, sa_len(addr))) {
		int e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

int sip_tp_listen_reserve(const char *uri, char *out, size_t cap)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	unsigned transport;
	int rc, fd;

	if (!uri || !out)
		return -EINVAL;
	if ((rc = sip_tp_uri_parse(uri, &transport, &ss)) < 0)
		return rc;
	fd = make_socket((struct sockaddr *)&ss,
			 transport == SIP_TP_UDP ? SOCK_DGRAM : SOCK_STREAM,
			 false);
	if (fd < 0)
		return fd;
	rc = getsockname(fd, (struct sockaddr *)&ss, &len) ? -errno : 0;
	close(fd);
	if (rc < 0)
		return rc;
	rc = sip_tp_uri_format(transport, (struct sockaddr *)&ss, out, cap);
	return rc < 0 ? rc : 0;
}

static void lsn_closed_cb(uv_handle_t *h)
{
	struct sip_tp_listener *lsn = h->data;
	struct sip_tp *tp = lsn->tp;

	free(lsn->rbuf);
	free(lsn->out);
	free(lsn);
	tp_handle_gone(tp);
}

int sip_tp_listen(struct sip_tp *tp, const struct sip_tp_listen_config *lc,
		  struct sip_tp_listener **out)
{
	struct sockaddr_storage ss;
	unsigned transport;
	int rc, fd;

	if (!tp || !lc || tp->destroying)
		return -EINVAL;
	if ((rc = sip_tp_uri_parse(lc->uri, &transport, &ss)) < 0)
		return rc;
	if (is_tls(transport) && !tp->ssl_server)
		return -ENOENT;
	struct sip_tp_listener *lsn = calloc(1, sizeof(*lsn));
	if (!lsn)
		return -ENOMEM;
	lsn->tp = tp;
	lsn->transport = transport;
	lsn->drop_every = lc->drop_every;
	lsn->u.h.data = lsn;
	if (transport == SIP_TP_UDP) {
		lsn->rbuf = malloc(UDP_BATCH * UDP_CHUNK);
		lsn->out = calloc(1, sizeof(*lsn->out));
		if (!lsn->rbuf || !lsn->out) {
			free(lsn->rbuf);
			free(lsn->out);
			free(lsn);
			return -ENOMEM;
		}
	}
	fd = make_socket((struct sockaddr *)&ss,
			 transport == SIP_TP_UDP ? SOCK_DGRAM : SOCK_STREAM,
			 lc->reuseport);
	if (fd < 0) {
		free(lsn->rbuf);
		free(lsn->out);
		free(lsn);
		return fd;
	}
	int len = sizeof(lsn->addr);
	if (transport == SIP_TP_UDP) {
		uv_udp_init_ex(tp->loop, &lsn->u.udp,
			       AF_UNSPEC | UV_UDP_RECVMMSG);
		rc = uv_udp_open(&lsn->u.udp, fd);
		if (rc == 0)
			rc = uv_udp_getsockname(&lsn->u.udp, &lsn->addr.sa,
						&len);
		if (rc == 0)
			rc = uv_udp_recv_start(&lsn->u.udp, udp_alloc_cb,
					       udp_recv_cb);
	} else {
		uv_tcp_init(tp->loop, &lsn->u.tcp);
		rc = uv_tcp_open(&lsn->u.tcp, fd);
		if (rc == 0)
			rc = uv_tcp_getsockname(&lsn->u.tcp, &lsn->addr.sa,
						&len);
		if (rc == 0)
			rc = uv_listen((uv_stream_t *)&lsn->u.tcp, 511,
				       on_connection);
	}
	tp->nhandles++;
	if (rc < 0) {
		if (uv_fileno(&lsn->u.h, &(uv_os_fd_t){0}) != 0)
			close(fd);
		uv_close(&lsn->u.h, lsn_closed_cb);
		return rc;
	}
	lsn->next = tp->listeners;
	tp->listeners = lsn;
	if (out)
		*out = lsn;
	return 0;
}

int sip_tp_listener_addr(const struct sip_tp_listener *lsn,
			 struct sockaddr_storage *out)
{
	if (!lsn || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	memcpy(out, &lsn->addr, sizeof(lsn->addr));
	return 0;
}

unsigned sip_tp_listener_transport(const struct sip_tp_listener *lsn)
{
	return lsn ? lsn->transport : 0;
}

/* ------------------------------------------------------------------------ */
/* TLS contexts                                                             */
/* ------------------------------------------------------------------------ */

static SSL_CTX *ctx_new(const SSL_METHOD *m)
{
	SSL_CTX *ctx = SSL_CTX_new(m);

	if (!ctx)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS |
				      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	return ctx;
}

static int ctx_load_cert(SSL_CTX *ctx, const struct sip_tp_tls_config *t)
{
	if (SSL_CTX_use_certificate_chain_file(ctx, t->cert_file) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, t->key_file, SSL_FILETYPE_PEM) !=
		    1 ||
	    SSL_CTX_check_private_key(ctx) != 1)
		return -EIO;
	return 0;
}

static int tls_setup(struct sip_tp *tp)
{
	const struct sip_tp_tls_config *t = &tp->cfg.tls;
	bool have_cert = t->cert_file && t->key_file;

	tp->ssl_client = ctx_new(TLS_client_method());
	if (!tp->ssl_client)
		return -ENOMEM;
	if (t->ca_file && SSL_CTX_load_verify_locations(tp->ssl_client,
							t->ca_file, NULL) != 1)
		return -EIO;
	if (t->verify_server)
		SSL_CTX_set_verify(tp->ssl_client, SSL_VERIFY_PEER, NULL);
	if (have_cert && ctx_load_cert(tp->ssl_client, t) < 0)
		return -EIO;
	if (!have_cert)
		return 0;
	tp->ssl_server = ctx_new(TLS_server_method());
	if (!tp->ssl_server)
		return -ENOMEM;
	if (ctx_load_cert(tp->ssl_server, t) < 0)
		return -EIO;
	/* No server-side session cache or tickets: less memory per peer. */
	SSL_CTX_set_session_cache_mode(tp->ssl_server, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(tp->ssl_server, 0);
	if (t->verify_client) {
		if (!t->ca_file ||
		    SSL_CTX_load_verify_locations(tp->ssl_server, t->ca_file,
						  NULL) != 1)
			return -EIO;
		SSL_CTX_set_verify(tp->ssl_server,
				   SSL_VERIFY_PEER |
					   SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
				   NULL);
	}
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Lifecycle                                                                */
/* ------------------------------------------------------------------------ */

void sip_tp_config_default(struct sip_tp_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->max_msg_size = 65536;
	cfg->max_header_line = 8192;
	cfg->max_send_queue = (size_t)256 * 1024;
	cfg->max_conns = 4096;
	cfg->connect_timeout_ms = 5000;
	cfg->handshake_timeout_ms = 5000;
	cfg->stall_timeout_ms = 10000;
	cfg->idle_timeout_ms = 300000;
}

static void tp_free(struct sip_tp *tp)
{
	for (size_t i = 0; i < IP_BUCKETS; i++) {
		for (struct ipcnt *e = tp->ipb[i], *nx; e; e = nx) {
			nx = e->next;
			free(e);
		}
	}
	SSL_CTX_free(tp->ssl_server);
	SSL_CTX_free(tp->ssl_client);
	free(tp->slots);
	free(tp->gens);
	free(tp->freel);
	free(tp->buckets);
	free(tp->rbuf);
	free(tp->pbuf);
	free(tp);
}

static void tp_handle_gone(struct sip_tp *tp)
{
	if (--tp->nhandles == 0 && tp->destroying)
		tp_free(tp);
}

static void timer_closed_cb(uv_handle_t *h)
{
	tp_handle_gone(h->data);
}

static uint32_t min_u32(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

int sip_tp_create(uv_loop_t *loop, const struct sip_tp_config *cfg,
		  struct sip_tp **out)
{
	int rc;

	if (!loop || !cfg || !cfg->recv || !out)
		return -EINVAL;
	struct sip_tp *tp = calloc(1, sizeof(*tp));
	if (!tp)
		return -ENOMEM;
	tp->loop = loop;
	tp->cfg = *cfg;
	struct sip_tp_config d;
	sip_tp_config_default(&d);
	if (!tp->cfg.max_msg_size)
		tp->cfg.max_msg_size = d.max_msg_size;
	if (!tp->cfg.max_header_line)
		tp->cfg.max_header_line = d.max_header_line;
	if (!tp->cfg.max_send_queue)
		tp->cfg.max_send_queue = d.max_send_queue;
	if (!tp->cfg.max_conns)
		tp->cfg.max_conns = d.max_conns;
	if (!tp->cfg.connect_timeout_ms)
		tp->cfg.connect_timeout_ms = d.connect_timeout_ms;
	if (!tp->cfg.handshake_timeout_ms)
		tp->cfg.handshake_timeout_ms = d.handshake_timeout_ms;
	if (!tp->cfg.stall_timeout_ms)
		tp->cfg.stall_timeout_ms = d.stall_timeout_ms;
	if (!tp->cfg.idle_timeout_ms)
		tp->cfg.idle_timeout_ms = d.idle_timeout_ms;
	sip_limits_default(&tp->limits);
	tp->limits.max_msg_size = tp->cfg.max_msg_size;
	tp->limits.max_header_line = tp->cfg.max_header_line;
	tp->rbuf = malloc(READ_BUF);
	tp->pbuf = malloc(PLAIN_BUF);
	if (!tp->rbuf || !tp->pbuf || hash_grow(tp) < 0) {
		tp_free(tp);
		return -ENOMEM;
	}
	if ((rc = tls_setup(tp)) < 0) {
		ERR_clear_error();
		tp_free(tp);
		return rc;
	}
	uint32_t iv = min_u32(min_u32(tp->cfg.connect_timeout_ms,
				      tp->cfg.handshake_timeout_ms),
			      min_u32(tp->cfg.stall_timeout_ms,
				      tp->cfg.idle_timeout_ms)) /
		      4;
	iv = iv < 10 ? 10 : iv > 1000 ? 1000 : iv;
	uv_timer_init(loop, &tp->sweep);
	tp->sweep.data = tp;
	tp->nhandles = 1;
	uv_timer_start(&tp->sweep, sweep_cb, iv, iv);
	*out = tp;
	return 0;
}

void sip_tp_destroy(struct sip_tp *tp)
{
	if (!tp || tp->destroying)
		return;
	tp->destroying = true;
	while (tp->conns)
		conn_close(tp->conns, SIP_TP_CLOSE_SHUTDOWN, 0);
	for (struct sip_tp_listener *l = tp->listeners, *nx; l; l = nx) {
		nx = l->next;
		if (l->transport == SIP_TP_UDP) {
			udp_flush(l);
			l->in_batch = false;
		}
		uv_close(&l->u.h, lsn_closed_cb);
	}
	tp->listeners = NULL;
	uv_close((uv_handle_t *)&tp->sweep, timer_closed_cb);
}

/* ------------------------------------------------------------------------ */
/* Sending and connections                                                  */
/* ------------------------------------------------------------------------ */

static int stream_conn(struct sip_tp *tp, const struct sip_tp_dest *dst,
		       struct conn **out)
{
	struct conn *c = dst->conn ? conn_get(tp, dst->conn) : NULL;

	if (!c && dst->addr)
		c = conn_find(tp, dst->transport, dst->addr);
	if (c) {
		*out = c;
		return 0;
	}
	if (!dst->addr || is_ws(dst->transport))
		return -ENOTCONN; /* no outbound WebSocket connections */
	if (dst->transport == SIP_TP_TLS && !tp->ssl_client)
		return -ENOENT;
	return conn_open_out(tp, dst, out);
}

int sip_tp_send(struct sip_tp *tp, const struct sip_tp_dest *dst,
		const char *buf, size_t len, sip_tp_conn_id *conn_out)
{
	struct conn *c = NULL;
	int rc;

	if (conn_out)
		*conn_out = 0;
	if (!tp || !dst || !buf || !len || tp->destroying)
		return -EINVAL;
	if (dst->transport == SIP_TP_UDP) {
		rc = udp_send(tp, dst, buf, len);
	} else if (is_reliable(dst->transport)) {
		rc = stream_conn(tp, dst, &c);
		if (rc == 0)
			rc = conn_send(c, buf, len);
		if (rc == 0 && conn_out)
			*conn_out = c->state == CS_CLOSING ? 0 : c->id;
	} else {
		rc = -EINVAL;
	}
	if (rc < 0) {
		tp->st.send_errors++;
		return rc;
	}
	tp->st.msgs_out++;
	tp->st.bytes_out += len;
	return 0;
}

int sip_tp_connect(struct sip_tp *tp, const struct sip_tp_dest *dst,
		   sip_tp_conn_id *out)
{
	struct conn *c;
	int rc;

	if (!tp || !dst || !out || tp->destroying ||
	    !is_reliable(dst->transport))
		return -EINVAL;
	*out = 0;
	if ((rc = stream_conn(tp, dst, &c)) < 0)
		return rc;
	*out = c->id;
	return 0;
}

int sip_tp_conn_info(struct sip_tp *tp, sip_tp_conn_id conn,
		     struct sip_tp_conn_info *info)
{
	struct conn *c = tp ? conn_get(tp, conn) : NULL;

	if (!c)
		return -ENOTCONN;
	memset(info, 0, sizeof(*info));
	info->transport = c->transport;
	info->outbound = c->outbound;
	info->up = c->state == CS_OPEN;
	memcpy(&info->peer, &c->peer, sizeof(c->peer));
	memcpy(&info->local, &c->local, sizeof(c->local));
	info->queued = c->queued;
	return 0;
}

int sip_tp_conn_close(struct sip_tp *tp, sip_tp_conn_id conn)
{
	struct conn *c = tp ? conn_get(tp, conn) : NULL;

	if (!c)
		return -ENOTCONN;
	conn_close(c, SIP_TP_CLOSE_LOCAL, 0);
	return 0;
}

void sip_tp_stats_get(const struct sip_tp *tp, struct sip_tp_stats *out)
{
	*out = tp->st;
}
