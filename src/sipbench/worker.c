/**
 * @file worker.c  One sipbench worker thread: its sockets, an epoll loop,
 * preallocated client transaction / call slots (UAC) and answered-call
 * slots (UAS), the deadline heap for retransmissions and timeouts, and
 * batched UDP I/O with recvmmsg/sendmmsg.
 *
 * A client slot is found from a response by its Via branch, which carries
 * the worker, the slot index and a generation; a server slot by a hash of
 * the Call-ID. Nothing is allocated once the loop runs, except the buffers
 * of a TCP connection when it is accepted.
 */
#include "sipbench/bench.h"
#include "sipmsg/sipmsg.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define RXBUF 8192
#define TXBUF 4096
#define TCP_IN ((size_t)256 * 1024)
#define TCP_OUT ((size_t)1024 * 1024)
#define UAS_RESP 1536
#define UAS_CID 128
#define UAS_MAX_CONNS 256
#define NONE UINT32_MAX

enum ev_kind { EV_UDP = 1, EV_LISTEN, EV_CONN };

enum msg_kind { K_OPTIONS = 0, K_REGISTER, K_MESSAGE, K_INVITE, K_ACK, K_BYE };

enum uac_state { U_FREE = 0, U_NI, U_INV, U_INV_PROC, U_HOLD, U_BYE };

enum uas_state { S_FREE = 0, S_WAIT_ACK, S_CONFIRMED };

struct sock {
	int fd;
	bool connected;
	uint8_t lport_len;
	char lport[6];
};

struct conn {
	int fd;
	bool up;
	bool dirty;
	bool want_out;
	uint32_t gen;
	char *in;
	size_t in_len;
	struct sip_framer fr;
	char *out;
	size_t out_off, out_len;
	uint8_t lport_len;
	char lport[6];
};

struct uac {
	uint8_t state;
	uint8_t kind;
	uint8_t auth_tries;
	uint8_t totag_len;
	uint8_t rtarget_len;
	uint16_t auth_len;
	uint16_t route_len;
	uint16_t via;
	uint32_t user;
	uint32_t gen;
	uint32_t invite_gen;
	uint32_t call_gen;
	uint32_t cseq;
	uint32_t inv_cseq;
	uint32_t rtx_ms;
	uint32_t next_free;
	uint64_t start_us, lat_us, rtx_at, end_at;
	char totag[64];
	char rtarget[128];
	char auth[416];
	char route[256]; /* "Route: ...\r\n" from the 2xx's Record-Route */
};

struct uas {
	uint8_t state;
	bool tcp;
	uint16_t via;
	uint32_t conn_gen;
	uint32_t hnext;
	uint32_t rtx_ms;
	uint16_t resp_len;
	uint8_t cid_len;
	socklen_t peer_len;
	uint64_t hash;
	uint64_t start_us, lat_us, rtx_at, end_at;
	struct sockaddr_storage peer;
	char cid[UAS_CID];
	char resp[UAS_RESP];
};

/* Where a message goes: a UDP socket (to @p addr, or its connected peer)
 * or a TCP connection of that generation. */
struct dest {
	bool tcp;
	uint16_t idx;
	uint32_t gen;
	const struct sockaddr *addr;
	socklen_t alen;
};

struct sb_worker {
	/* large and 8-byte aligned members first, then 4, then 1 */
	struct sb_stats stats;
	struct sb_stats reg_stats;
	struct sb_config cfg_copy;
	struct sb_tmpl tmpl[K_BYE + 1];
	struct mmsghdr rmsg[BATCH];
	struct iovec riov[BATCH];
	struct sockaddr_storage raddr[BATCH];
	struct mmsghdr tmsg[BATCH];
	struct iovec tiov[BATCH];
	struct sockaddr_storage taddr[BATCH];
	struct sb_heap heap;
	struct sb_hasher hasher;
	struct sip_limits limits;
	const struct sb_config *cfg;
	struct sb_shared *sh;
	struct sb_stats *ust; /* where client outcomes are counted */
	struct sip_msg *msg;
	char (*rbuf)[RXBUF];
	char (*tbuf)[TXBUF];

	/* sockets and connections */
	struct sock *socks;
	struct conn *conns;
	uint32_t *dirty;
	size_t lhost_len;
	size_t sdp_len;

	/* client side */
	struct uac *uac;
	uint32_t *user_cseq;
	uint8_t *user_busy;
	struct sb_challenge *chal;
	double rate;	     /* open loop starts/s for this worker, 0: closed */
	uint64_t max_starts; /* 0: no limit */
	uint64_t started;
	uint64_t drain_end;

	/* server side */
	struct uas *uas;
	uint32_t *htab;

	unsigned idx;
	int ep;
	unsigned nsocks;
	int listen_fd;
	unsigned nconns; /* client: connections made; uas: table size */
	unsigned ndirty;
	unsigned ntx;
	int tfd[BATCH];
	enum msg_kind first_kind;
	uint32_t nuac, free_uac, inflight;
	uint32_t window; /* closed loop: attempts kept in flight */
	uint32_t bound;	 /* open loop: most in flight           */
	uint32_t user_lo, nusers, user_rr;
	uint32_t seq;
	uint32_t nuas, free_uas, uas_inflight;
	uint32_t hmask;
	uint32_t tag_seq;

	_Atomic bool done;
	bool client;  /* starts attempts (not uas, or uas registering) */
	bool no_more; /* stopped starting */
	bool fatal;   /* every connection is gone */
	bool user_num, pass_num;
	char lhost[64];
	char contact[160];
	char sdp[256];
	char user_pre[64], user_suf[64];
	char pass_pre[64], pass_suf[64];
	char ruri_first[200];
	char scratch[TXBUF];
};

/* ------------------------------------------------------------------------ */
/* small helpers                                                            */
/* ------------------------------------------------------------------------ */

uint64_t sb_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void inc(_Atomic uint64_t *c)
{
	atomic_store_explicit(c,
			      atomic_load_explicit(c, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

static void set_ctr(_Atomic uint64_t *c, uint64_t v)
{
	atomic_store_explicit(c, v, memory_order_relaxed);
}

static uint32_t share(uint64_t total, unsigned idx, unsigned n)
{
	return (uint32_t)(total / n + (idx < total % n ? 1 : 0));
}

static uint64_t fnv1a(const char *p, size_t n)
{
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)p[i];
		h *= 1099511628211ull;
	}
	return h;
}

static void big_buffers(int fd)
{
	int sz = 8 * 1024 * 1024;

	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
}

static void port_str(const struct sockaddr_storage *ss, char *out, uint8_t *len)
{
	struct sockaddr_in6 in6;
	struct sockaddr_in in;
	uint16_t port;

	if (ss->ss_family == AF_INET6) {
		memcpy(&in6, ss, sizeof(in6));
		port = ntohs(in6.sin6_port);
	} else {
		memcpy(&in, ss, sizeof(in));
		port = ntohs(in.sin_port);
	}
	*len = (uint8_t)sb_dec(out, port);
}

static int ep_add(struct sb_worker *w, int fd, uint32_t events,
		  enum ev_kind kind, uint32_t idx)
{
	struct epoll_event ev = {.events = events};

	ev.data.u64 = ((uint64_t)kind << 32) | idx;
	if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	return 0;
}

static void ep_mod(struct sb_worker *w, int fd, uint32_t events,
		   enum ev_kind kind, uint32_t idx)
{
	struct epoll_event ev = {.events = events};

	ev.data.u64 = ((uint64_t)kind << 32) | idx;
	(void)epoll_ctl(w->ep, EPOLL_CTL_MOD, fd, &ev);
}

/* Split "user%d" into what comes before and after the number. */
static bool split_pattern(const char *pat, char *pre, char *suf)
{
	const char *d = strstr(pat, "%d");

	if (!d) {
		snprintf(pre, 64, "%s", pat);
		suf[0] = '\0';
		return false;
	}
	snprintf(pre, 64, "%.*s", (int)(d - pat), pat);
	snprintf(suf, 64, "%s", d + 2);
	return true;
}

/* memcpy that returns the length, for building names piecewise. */
static size_t put(char *out, const char *p, size_t n)
{
	memcpy(out, p, n);
	return n;
}

static size_t pattern_name(const char *pre, const char *suf, bool num,
			   uint64_t n, char *out)
{
	size_t a = strlen(pre), b = strlen(suf), len;

	len = put(out, pre, a);
	if (num)
		len += sb_dec(out + len, n);
	return len + put(out + len, suf, b);
}

/* ------------------------------------------------------------------------ */
/* counters                                                                 */
/* ------------------------------------------------------------------------ */

static void count_fail(struct sb_stats *st, enum sb_reason r, unsigned status)
{
	inc(&st->failed);
	st->by_reason[r]++;
	if (status && status < SB_MAX_STATUS)
		st->by_status[status]++;
}

static void count_ok(struct sb_stats *st, uint64_t lat_us)
{
	inc(&st->succeeded);
	sb_hist_record(&st->lat, lat_us);
}

/* ------------------------------------------------------------------------ */
/* transmission                                                             */
/* ------------------------------------------------------------------------ */

static void tx_flush(struct sb_worker *w)
{
	unsigned i = 0;

	/* Group by socket, keeping the order within each one. */
	for (unsigned a = 1; a < w->ntx; a++) {
		struct mmsghdr m = w->tmsg[a];
		int fd = w->tfd[a];
		unsigned b = a;

		while (b > 0 && w->tfd[b - 1] > fd) {
			w->tmsg[b] = w->tmsg[b - 1];
			w->tfd[b] = w->tfd[b - 1];
			b--;
		}
		w->tmsg[b] = m;
		w->tfd[b] = fd;
	}
	while (i < w->ntx) {
		unsigned j = i, k = i;

		while (j < w->ntx && w->tfd[j] == w->tfd[i])
			j++;
		while (k < j) {
			int r = sendmmsg(w->tfd[i], &w->tmsg[k], j - k, 0);

			if (r < 0) {
				if (errno == EINTR)
					continue;
				w->stats.rx_errors++;
				k++;
				continue;
			}
			w->stats.tx += (uint64_t)r;
			k += (unsigned)r;
		}
		i = j;
	}
	w->ntx = 0;
}

static void conn_close(struct sb_worker *w, uint32_t ci);

static void conn_flush(struct sb_worker *w, uint32_t ci)
{
	struct conn *c = &w->conns[ci];

	while (c->fd >= 0 && c->up && c->out_off < c->out_len) {
		ssize_t n = write(c->fd, c->out + c->out_off,
				  c->out_len - c->out_off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			conn_close(w, ci);
			return;
		}
		c->out_off += (size_t)n;
	}
	if (c->fd < 0)
		return;
	if (c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	if (c->up && (c->out_len != 0) != c->want_out) {
		c->want_out = c->out_len != 0;
		ep_mod(w, c->fd, EPOLLIN | (c->want_out ? EPOLLOUT : 0),
		       EV_CONN, ci);
	}
}

static void flush_all(struct sb_worker *w)
{
	if (w->ntx)
		tx_flush(w);
	for (unsigned i = 0; i < w->ndirty; i++) {
		uint32_t ci = w->dirty[i];

		w->conns[ci].dirty = false;
		conn_flush(w, ci);
	}
	w->ndirty = 0;
}

static char *tx_reserve(struct sb_worker *w, const struct dest *d, size_t *cap)
{
	if (d->tcp) {
		*cap = sizeof(w->scratch);
		return w->scratch;
	}
	if (w->ntx == BATCH)
		tx_flush(w);
	*cap = TXBUF;
	return w->tbuf[w->ntx];
}

static int tx_commit(struct sb_worker *w, const struct dest *d, size_t len)
{
	if (d->tcp) {
		struct conn *c = &w->conns[d->idx];

		if (c->fd < 0 || c->gen != d->gen)
			return -EPIPE;
		if (c->out_len + len > TCP_OUT && c->out_off) {
			memmove(c->out, c->out + c->out_off,
				c->out_len - c->out_off);
			c->out_len -= c->out_off;
			c->out_off = 0;
		}
		if (c->out_len + len > TCP_OUT)
			return -ENOBUFS;
		memcpy(c->out + c->out_len, w->scratch, len);
		c->out_len += len;
		if (!c->dirty) {
			c->dirty = true;
			w->dirty[w->ndirty++] = d->idx;
		}
		w->stats.tx++;
		return 0;
	}
	{
		unsigned i = w->ntx++;
		struct msghdr *mh = &w->tmsg[i].msg_hdr;

		w->tiov[i].iov_base = w->tbuf[i];
		w->tiov[i].iov_len = len;
		memset(mh, 0, sizeof(*mh));
		mh->msg_iov = &w->tiov[i];
		mh->msg_iovlen = 1;
		if (d->addr) {
			memcpy(&w->taddr[i], d->addr, d->alen);
			mh->msg_name = &w->taddr[i];
			mh->msg_namelen = d->alen;
		}
		w->tfd[i] = w->socks[d->idx].fd;
	}
	return 0;
}

/* ------------------------------------------------------------------------ */
/* client (UAC) side                                                        */
/* ------------------------------------------------------------------------ */

static struct dest uac_dest(struct sb_worker *w, const struct uac *s)
{
	struct dest d = {0};

	if (w->cfg->transport == SB_TP_TCP) {
		d.tcp = true;
		d.idx = s->via;
		d.gen = w->conns[s->via].gen;
	} else {
		d.idx = s->via;
		if (!w->socks[s->via].connected) {
			d.addr = (const struct sockaddr *)&w->cfg->target;
			d.alen = w->cfg->target_len;
		}
	}
	return d;
}

static sip_str via_port(struct sb_worker *w, uint16_t via)
{
	if (w->cfg->transport == SB_TP_TCP)
		return (sip_str){w->conns[via].lport, w->conns[via].lport_len};
	return (sip_str){w->socks[via].lport, w->socks[via].lport_len};
}

static size_t user_name(struct sb_worker *w, uint32_t user, char *out)
{
	return pattern_name(w->user_pre, w->user_suf, w->user_num,
			    (uint64_t)w->cfg->user_start + user, out);
}

static const char *const kind_method[] = {
	[K_OPTIONS] = "OPTIONS", [K_REGISTER] = "REGISTER",
	[K_MESSAGE] = "MESSAGE", [K_INVITE] = "INVITE",
	[K_ACK] = "ACK",	 [K_BYE] = "BYE",
};

/* Build @p s's request of @p kind with branch generation @p gen and send
 * it. */
static int uac_send(struct sb_worker *w, struct uac *s, enum msg_kind kind,
		    uint32_t gen, uint32_t cseq)
{
	char branch[40], callid[64], cseqs[12], ftag[16], user[96];
	sip_str v[SB_F__COUNT];
	struct dest d = uac_dest(w, s);
	size_t cap, n;
	char *out;
	int len;

	n = put(branch, "z9hG4bK", 7);
	n += sb_hex(branch + n, w->cfg->run_id, 8);
	branch[n++] = '-';
	n += sb_hex(branch + n, ((uint64_t)w->idx << 24) | (s - w->uac), 8);
	n += sb_hex(branch + n, gen, 8);
	v[SB_F_BRANCH] = (sip_str){branch, n};

	n = sb_hex(callid, w->cfg->run_id, 8);
	callid[n++] = '-';
	if (s->kind == K_REGISTER) {
		callid[n++] = 'r';
		n += sb_dec(callid + n, (uint64_t)w->user_lo + s->user);
	} else {
		n += sb_hex(callid + n, w->idx, 2);
		n += sb_hex(callid + n, s->call_gen, 8);
	}
	n += put(callid + n, "@sipbench", 9);
	v[SB_F_CALLID] = (sip_str){callid, n};
	v[SB_F_CSEQ] = (sip_str){cseqs, sb_dec(cseqs, cseq)};
	n = sb_hex(ftag, s->call_gen, 8);
	n += sb_hex(ftag + n, w->idx, 2);
	v[SB_F_FTAG] = (sip_str){ftag, n};
	v[SB_F_USER] =
		(sip_str){user, user_name(w, w->user_lo + s->user, user)};
	v[SB_F_TO] = s->kind == K_REGISTER ? v[SB_F_USER]
					   : sip_str_c(w->cfg->callee);
	v[SB_F_LHOST] = (sip_str){w->lhost, w->lhost_len};
	v[SB_F_LPORT] = via_port(w, s->via);
	if ((kind == K_ACK || kind == K_BYE) && s->rtarget_len)
		v[SB_F_RURI] = (sip_str){s->rtarget, s->rtarget_len};
	else
		v[SB_F_RURI] = sip_str_c(w->ruri_first);
	v[SB_F_TOTAG] = (sip_str){s->totag, s->totag_len};
	/* The ACK of a non-2xx goes where the INVITE went: no route set. */
	v[SB_F_ROUTE] = (kind == K_ACK && gen != s->gen) || kind == K_BYE
				? (sip_str){s->route, s->route_len}
				: SIP_STR_NULL;
	v[SB_F_AUTH] = kind == K_ACK && gen == s->invite_gen
			       ? SIP_STR_NULL
			       : (sip_str){s->auth, s->auth_len};

	out = tx_reserve(w, &d, &cap);
	len = sb_tmpl_render(&w->tmpl[kind], v, out, cap);
	if (len < 0)
		return len;
	return tx_commit(w, &d, (size_t)len);
}

static void uac_arm(struct sb_worker *w, struct uac *s)
{
	uint64_t at = s->end_at;

	if (s->rtx_at && s->rtx_at < at)
		at = s->rtx_at;
	sb_heap_set(&w->heap, (uint32_t)(s - w->uac), at);
}

/* Start a transaction of @p kind on @p s: timers per RFC 3261 §17.1. */
static int uac_begin(struct sb_worker *w, struct uac *s, enum msg_kind kind,
		     uint64_t now)
{
	uint64_t t1 = (uint64_t)w->cfg->t1_ms * 1000u;
	uint64_t limit = 64 * t1;
	int r;

	if (w->cfg->timeout_ms && (uint64_t)w->cfg->timeout_ms * 1000u < limit)
		limit = (uint64_t)w->cfg->timeout_ms * 1000u;
	s->gen = ++w->seq;
	if (kind == K_INVITE)
		s->invite_gen = s->gen;
	r = uac_send(w, s, kind, s->gen, s->cseq);
	if (w->cfg->transport == SB_TP_UDP) {
		s->rtx_ms = w->cfg->t1_ms;
		s->rtx_at = now + t1;
	} else {
		s->rtx_at = 0;
	}
	s->end_at = now + limit;
	uac_arm(w, s);
	return r;
}

static void uac_free(struct sb_worker *w, struct uac *s)
{
	uint32_t i = (uint32_t)(s - w->uac);

	sb_heap_del(&w->heap, i);
	if (s->kind == K_REGISTER)
		w->user_busy[s->user] = 0;
	s->state = U_FREE;
	s->next_free = w->free_uac;
	w->free_uac = i;
	w->inflight--;
	set_ctr(&w->ust->inflight, w->inflight);
}

static void uac_fail(struct sb_worker *w, struct uac *s, enum sb_reason r,
		     unsigned status)
{
	count_fail(w->ust, r, status);
	uac_free(w, s);
}

/* Authorization for the next request of @p s from its user's challenge. */
static void uac_auth(struct sb_worker *w, struct uac *s, enum msg_kind kind)
{
	struct sb_challenge *ch;
	char user[96], pass[96], cn[16];
	size_t ulen, plen;
	sip_str uri;
	int n;

	s->auth_len = 0;
	if (!w->chal)
		return;
	ch = &w->chal[s->user];
	if (!ch->valid)
		return;
	ulen = user_name(w, w->user_lo + s->user, user);
	plen = pattern_name(w->pass_pre, w->pass_suf, w->pass_num,
			    (uint64_t)w->cfg->user_start + w->user_lo + s->user,
			    pass);
	if (kind == K_BYE && s->rtarget_len)
		uri = (sip_str){s->rtarget, s->rtarget_len};
	else
		uri = sip_str_c(w->ruri_first);
	sb_hex(cn, ((uint64_t)w->seq << 8) | w->idx, 16);
	n = sb_digest_header(&w->hasher, ch, (sip_str){user, ulen},
			     (sip_str){pass, plen},
			     sip_str_c(kind_method[kind]), uri, ++ch->nc,
			     (sip_str){cn, 16}, s->auth, sizeof(s->auth));
	if (n > 0)
		s->auth_len = (uint16_t)n;
}

static bool pick_user(struct sb_worker *w, uint32_t *user)
{
	if (w->first_kind != K_REGISTER) {
		*user = w->user_rr++ % w->nusers;
		return true;
	}
	for (uint32_t i = 0; i < w->nusers; i++) {
		uint32_t u = w->user_rr++ % w->nusers;

		if (!w->user_busy[u]) {
			w->user_busy[u] = 1;
			*user = u;
			return true;
		}
	}
	return false;
}

static bool uac_start(struct sb_worker *w, uint64_t now)
{
	struct uac *s;
	uint32_t i, user;
	enum msg_kind kind = w->first_kind;

	if (w->free_uac == NONE)
		return false;
	if (w->cfg->transport == SB_TP_TCP) {
		unsigned live = 0;

		for (unsigned c = 0; c < w->nconns; c++)
			live += w->conns[c].fd >= 0;
		if (!live) {
			w->fatal = true;
			return false;
		}
	}
	if (!pick_user(w, &user))
		return false;
	i = w->free_uac;
	s = &w->uac[i];
	w->free_uac = s->next_free;
	memset(s, 0, offsetof(struct uac, totag));
	s->kind = (uint8_t)kind;
	s->user = user;
	s->call_gen = ++w->seq;
	s->start_us = now;
	if (w->cfg->transport == SB_TP_TCP) {
		s->via = (uint16_t)(i % w->nconns);
		for (unsigned c = 0; c < w->nconns && w->conns[s->via].fd < 0;
		     c++)
			s->via = (uint16_t)((s->via + 1) % w->nconns);
	} else {
		s->via = (uint16_t)(i % w->nsocks);
	}
	s->cseq = kind == K_REGISTER ? ++w->user_cseq[user] : 1;
	s->state = kind == K_INVITE ? U_INV : U_NI;
	w->inflight++;
	w->started++;
	inc(&w->ust->attempted);
	set_ctr(&w->ust->inflight, w->inflight);
	uac_auth(w, s, kind);
	if (uac_begin(w, s, kind, now) < 0)
		uac_fail(w, s,
			 w->cfg->transport == SB_TP_TCP ? SB_R_CONN : SB_R_SEND,
			 0);
	return true;
}

static void uac_bye(struct sb_worker *w, struct uac *s, uint64_t now)
{
	s->state = U_BYE;
	s->kind = K_BYE;
	s->cseq++;
	uac_auth(w, s, K_BYE);
	if (uac_begin(w, s, K_BYE, now) < 0)
		uac_fail(w, s, SB_R_SEND, 0);
}

static void uac_timer(struct sb_worker *w, struct uac *s, uint64_t now)
{
	if (s->state == U_HOLD) {
		uac_bye(w, s, now);
		return;
	}
	if (now >= s->end_at) {
		uac_fail(w, s, s->state == U_BYE ? SB_R_BYE : SB_R_TIMEOUT, 0);
		return;
	}
	if (s->rtx_at && now >= s->rtx_at) {
		if (uac_send(w, s, s->kind, s->gen, s->cseq) == 0)
			inc(&w->ust->retrans);
		if (s->kind == K_INVITE)
			s->rtx_ms *= 2;
		else
			s->rtx_ms = s->rtx_ms * 2 < w->cfg->t2_ms
					    ? s->rtx_ms * 2
					    : w->cfg->t2_ms;
		s->rtx_at = now + (uint64_t)s->rtx_ms * 1000u;
	}
	uac_arm(w, s);
}

static bool hexval(const char *p, size_t n, uint64_t *out)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		unsigned d;

		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else
			return false;
		v = v << 4 | d;
	}
	*out = v;
	return true;
}

/* The slot and generation a branch of ours names. */
static struct uac *uac_find(struct sb_worker *w, sip_str branch, uint32_t *gen)
{
	char pre[16];
	uint64_t id, g;

	if (branch.len != 32 || memcmp(branch.p, "z9hG4bK", 7) != 0)
		return NULL;
	sb_hex(pre, w->cfg->run_id, 8);
	if (memcmp(branch.p + 7, pre, 8) != 0 || branch.p[15] != '-')
		return NULL;
	if (!hexval(branch.p + 16, 8, &id) || !hexval(branch.p + 24, 8, &g))
		return NULL;
	if ((id >> 24) != w->idx || (id & 0xffffff) >= w->nuac)
		return NULL;
	*gen = (uint32_t)g;
	return &w->uac[id & 0xffffff];
}

/* The route set of a 2xx (RFC 3261 §12.1.2): its Record-Route values in
 * reverse order, kept as one "Route:" line for the ACK and the BYE. A set
 * too long for the slot is left out. */
static void copy_route(struct uac *s, const struct sip_msg *m)
{
	sip_str rr[8], cur, item;
	unsigned n = 0;
	size_t len;

	s->route_len = 0;
	for (const struct sip_hdr *h = sip_msg_hdr(m, SIP_HDR_RECORD_ROUTE); h;
	     h = sip_msg_hdr_next(m, h)) {
		cur = h->value;
		while (sip_list_next(&cur, &item) == 1) {
			if (n == sizeof(rr) / sizeof(rr[0]))
				return;
			rr[n++] = item;
		}
	}
	if (!n)
		return;
	len = put(s->route, "Route: ", 7);
	while (n--) {
		if (len + rr[n].len + 4 > sizeof(s->route))
			return;
		len += put(s->route + len, rr[n].p, rr[n].len);
		len += put(s->route + len, n ? ", " : "\r\n", 2);
	}
	s->route_len = (uint16_t)len;
}

static void copy_dialog(struct uac *s, const struct sip_msg *m)
{
	const struct sip_hdr *h = sip_msg_hdr(m, SIP_HDR_TO);
	struct sip_addr a;
	struct sip_contact c;
	sip_str cur, item;

	s->totag_len = 0;
	if (h && sip_addr_parse(h->value, &a) == 0 && a.tag.len &&
	    a.tag.len + 5 <= sizeof(s->totag)) {
		memcpy(s->totag, ";tag=", 5);
		memcpy(s->totag + 5, a.tag.p, a.tag.len);
		s->totag_len = (uint8_t)(a.tag.len + 5);
	}
	h = sip_msg_hdr(m, SIP_HDR_CONTACT);
	if (!h)
		return;
	cur = h->value;
	if (sip_list_next(&cur, &item) == 1 &&
	    sip_contact_parse(item, &c) == 0 && !c.star &&
	    c.addr.uri_text.len < sizeof(s->rtarget)) {
		memcpy(s->rtarget, c.addr.uri_text.p, c.addr.uri_text.len);
		s->rtarget_len = (uint8_t)c.addr.uri_text.len;
	}
}

/* 401/407: keep the challenge and resend with credentials.
 * @return true when resent. */
static bool uac_challenge(struct sb_worker *w, struct uac *s,
			  const struct sip_msg *m)
{
	bool proxy = m->status == 407;
	const struct sip_hdr *h =
		sip_msg_hdr(m, proxy ? SIP_HDR_PROXY_AUTHENTICATE
				     : SIP_HDR_WWW_AUTHENTICATE);
	struct sb_challenge best, ch;
	bool have = false;

	memset(&best, 0, sizeof(best));
	if (!w->chal || s->auth_tries >= 2)
		return false;
	for (; h; h = sip_msg_hdr_next(m, h)) {
		if (sb_challenge_parse(h->value, proxy, &ch) < 0)
			continue;
		if (!have || ch.alg > best.alg) {
			best = ch;
			have = true;
		}
	}
	/* A second challenge after credentials is a refusal unless stale. */
	if (!have || (s->auth_tries && s->auth_len && !best.stale))
		return false;
	w->chal[s->user] = best;
	s->auth_tries++;
	return true;
}

static void uac_response(struct sb_worker *w, const struct sip_msg *m,
			 uint64_t now)
{
	const struct sip_hdr *h = sip_msg_hdr(m, SIP_HDR_VIA);
	const struct sip_hdr *ch = sip_msg_hdr(m, SIP_HDR_CSEQ);
	struct sip_via via;
	struct sip_cseq cseq;
	sip_str cur, item;
	struct uac *s;
	uint32_t gen;
	unsigned st = m->status;

	cur = h ? h->value : SIP_STR_NULL;
	if (!h || !ch || sip_list_next(&cur, &item) != 1 ||
	    sip_via_parse(item, &via) < 0 ||
	    sip_cseq_parse(ch->value, &cseq) < 0) {
		w->stats.bad++;
		return;
	}
	s = uac_find(w, via.branch, &gen);
	if (!s || s->state == U_FREE) {
		w->stats.stray++;
		return;
	}
	if (gen != s->gen) {
		/* A 2xx to the INVITE again: its ACK was lost. */
		if (gen == s->invite_gen &&
		    cseq.method_id == SIP_METHOD_INVITE && st >= 200 &&
		    st < 300 && (s->state == U_HOLD || s->state == U_BYE)) {
			if (uac_send(w, s, K_ACK, ++w->seq, s->inv_cseq) == 0)
				inc(&w->ust->retrans);
		} else {
			w->stats.stray++;
		}
		return;
	}
	switch (s->state) {
	case U_NI:
	case U_BYE:
		if (st < 200) {
			if (s->rtx_at)
				s->rtx_ms = w->cfg->t2_ms;
			return;
		}
		if (st >= 200 && st < 300) {
			if (s->state == U_BYE) {
				count_ok(w->ust, s->lat_us);
			} else {
				count_ok(w->ust, now - s->start_us);
			}
			uac_free(w, s);
			return;
		}
		if ((st == 401 || st == 407) && uac_challenge(w, s, m)) {
			s->cseq++;
			if (s->kind == K_REGISTER)
				s->cseq = ++w->user_cseq[s->user];
			uac_auth(w, s, (enum msg_kind)s->kind);
			if (uac_begin(w, s, (enum msg_kind)s->kind, now) < 0)
				uac_fail(w, s, SB_R_SEND, 0);
			return;
		}
		if (st == 401 || st == 407)
			uac_fail(w, s, SB_R_AUTH, st);
		else
			uac_fail(w, s,
				 s->state == U_BYE ? SB_R_BYE : SB_R_STATUS,
				 st);
		return;
	case U_INV:
	case U_INV_PROC:
		if (st < 200) {
			s->state = U_INV_PROC;
			if (s->rtx_at) {
				s->rtx_at = 0;
				uac_arm(w, s);
			}
			return;
		}
		copy_dialog(s, m);
		if (st < 300) {
			copy_route(s, m);
			s->lat_us = now - s->start_us;
			s->inv_cseq = s->cseq;
			if (uac_send(w, s, K_ACK, ++w->seq, s->cseq) < 0) {
				uac_fail(w, s, SB_R_SEND, 0);
				return;
			}
			if (w->cfg->hold_ms) {
				s->state = U_HOLD;
				s->rtx_at = 0;
				s->end_at =
					now + (uint64_t)w->cfg->hold_ms * 1000u;
				uac_arm(w, s);
				return;
			}
			uac_bye(w, s, now);
			return;
		}
		/* ACK of a non-2xx: same branch as the INVITE (§17.1.1.3). */
		(void)uac_send(w, s, K_ACK, s->gen, s->cseq);
		if ((st == 401 || st == 407) && uac_challenge(w, s, m)) {
			s->totag_len = 0;
			s->rtarget_len = 0;
			s->cseq++;
			s->state = U_INV;
			uac_auth(w, s, K_INVITE);
			if (uac_begin(w, s, K_INVITE, now) < 0)
				uac_fail(w, s, SB_R_SEND, 0);
			return;
		}
		uac_fail(w, s,
			 (st == 401 || st == 407) ? SB_R_AUTH : SB_R_STATUS,
			 st);
		return;
	default:
		w->stats.stray++;
		return;
	}
}

/* ------------------------------------------------------------------------ */
/* server (UAS) side                                                        */
/* ------------------------------------------------------------------------ */

static int respond(struct sb_worker *w, const struct sip_msg *req,
		   const struct dest *d, unsigned status, sip_str totag,
		   bool contact, bool sdp, char *keep, uint16_t *keep_len)
{
	struct sip_writer wr;
	size_t cap = UAS_RESP;
	char *out = keep ? keep : tx_reserve(w, d, &cap);
	int len;

	sip_wr_init(&wr, out, cap);
	sip_wr_response_to(&wr, req, status, sip_reason_phrase(status), totag);
	if (contact) {
		/* A dialog-creating response copies the Record-Route
		 * headers of the request, in order (RFC 3261 §12.1.1). */
		for (const struct sip_hdr *h =
			     sip_msg_hdr(req, SIP_HDR_RECORD_ROUTE);
		     h; h = sip_msg_hdr_next(req, h))
			sip_wr_header(&wr, "Record-Route", h->value);
		sip_wr_header(&wr, "Contact", sip_str_c(w->contact));
	}
	if (sdp)
		len = sip_wr_finish(&wr, "application/sdp",
				    (sip_str){w->sdp, w->sdp_len});
	else
		len = sip_wr_finish(&wr, NULL, SIP_STR_NULL);
	if (len < 0)
		return len;
	if (keep) {
		size_t c2;
		char *o2 = tx_reserve(w, d, &c2);

		if ((size_t)len > c2)
			return -ENOSPC;
		memcpy(o2, keep, (size_t)len);
		*keep_len = (uint16_t)len;
	}
	return tx_commit(w, d, (size_t)len);
}

static struct uas *uas_lookup(struct sb_worker *w, sip_str cid, uint64_t hash,
			      uint32_t **link)
{
	uint32_t *l = &w->htab[hash & w->hmask];

	while (*l != NONE) {
		struct uas *u = &w->uas[*l];

		if (u->hash == hash && u->cid_len == cid.len &&
		    memcmp(u->cid, cid.p, cid.len) == 0) {
			if (link)
				*link = l;
			return u;
		}
		l = &u->hnext;
	}
	return NULL;
}

static void uas_free(struct sb_worker *w, struct uas *u)
{
	uint32_t i = (uint32_t)(u - w->uas), *link = NULL;

	if (uas_lookup(w, (sip_str){u->cid, u->cid_len}, u->hash, &link) == u)
		*link = u->hnext;
	sb_heap_del(&w->heap, w->nuac + i);
	u->state = S_FREE;
	u->hnext = w->free_uas;
	w->free_uas = i;
	w->uas_inflight--;
	set_ctr(&w->stats.inflight, w->uas_inflight);
}

static void uas_arm(struct sb_worker *w, struct uas *u)
{
	uint64_t at = u->end_at;

	if (u->rtx_at && u->rtx_at < at)
		at = u->rtx_at;
	sb_heap_set(&w->heap, w->nuac + (uint32_t)(u - w->uas), at);
}

static struct dest uas_dest(const struct uas *u)
{
	struct dest d = {.tcp = u->tcp, .idx = u->via, .gen = u->conn_gen};

	if (!u->tcp) {
		d.addr = (const struct sockaddr *)&u->peer;
		d.alen = u->peer_len;
	}
	return d;
}

static void uas_timer(struct sb_worker *w, struct uas *u, uint64_t now)
{
	struct dest d;

	if (now >= u->end_at) {
		count_fail(&w->stats,
			   u->state == S_WAIT_ACK ? SB_R_NO_ACK : SB_R_NO_BYE,
			   0);
		uas_free(w, u);
		return;
	}
	if (u->rtx_at && now >= u->rtx_at) {
		size_t cap;
		char *out;

		d = uas_dest(u);
		out = tx_reserve(w, &d, &cap);
		if (u->resp_len <= cap) {
			memcpy(out, u->resp, u->resp_len);
			if (tx_commit(w, &d, u->resp_len) == 0)
				inc(&w->stats.retrans);
		}
		u->rtx_ms = u->rtx_ms * 2 < w->cfg->t2_ms ? u->rtx_ms * 2
							  : w->cfg->t2_ms;
		u->rtx_at = now + (uint64_t)u->rtx_ms * 1000u;
	}
	uas_arm(w, u);
}

static void uas_invite(struct sb_worker *w, const struct sip_msg *m,
		       const struct dest *d, sip_str cid, uint64_t hash,
		       uint64_t now)
{
	uint64_t t1 = (uint64_t)w->cfg->t1_ms * 1000u;
	struct uas *u = uas_lookup(w, cid, hash, NULL);
	char tag[16];
	sip_str totag;
	uint32_t i;

	if (u) {
		/* A retransmission: answer it with the 2xx again. */
		struct dest ud = uas_dest(u);
		size_t cap;
		char *out = tx_reserve(w, &ud, &cap);

		if (u->resp_len <= cap) {
			memcpy(out, u->resp, u->resp_len);
			(void)tx_commit(w, &ud, u->resp_len);
		}
		return;
	}
	inc(&w->stats.attempted);
	if (w->free_uas == NONE || cid.len > UAS_CID) {
		(void)respond(w, m, d, 503, SIP_STR_NULL, false, false, NULL,
			      NULL);
		count_fail(&w->stats, SB_R_FULL, 0);
		return;
	}
	i = w->free_uas;
	u = &w->uas[i];
	w->free_uas = u->hnext;
	u->state = S_WAIT_ACK;
	u->tcp = d->tcp;
	u->via = d->idx;
	u->conn_gen = d->gen;
	u->hash = hash;
	u->cid_len = (uint8_t)cid.len;
	memcpy(u->cid, cid.p, cid.len);
	if (!d->tcp) {
		memcpy(&u->peer, d->addr, d->alen);
		u->peer_len = d->alen;
	}
	u->hnext = w->htab[hash & w->hmask];
	w->htab[hash & w->hmask] = i;
	w->uas_inflight++;
	set_ctr(&w->stats.inflight, w->uas_inflight);

	totag = (sip_str){
		tag, sb_hex(tag, ((uint64_t)w->idx << 32) | ++w->tag_seq, 12)};
	if (!w->cfg->no_100)
		(void)respond(w, m, d, 100, SIP_STR_NULL, false, false, NULL,
			      NULL);
	(void)respond(w, m, d, 180, totag, true, false, NULL, NULL);
	if (respond(w, m, d, 200, totag, true, true, u->resp, &u->resp_len) <
	    0) {
		count_fail(&w->stats, SB_R_SEND, 0);
		uas_free(w, u);
		return;
	}
	u->start_us = now;
	u->rtx_ms = w->cfg->t1_ms;
	u->rtx_at = d->tcp ? 0 : now + t1;
	u->end_at = now + 64 * t1;
	uas_arm(w, u);
}

static void uas_request(struct sb_worker *w, const struct sip_msg *m,
			const struct dest *d, uint64_t now)
{
	const struct sip_hdr *h = sip_msg_hdr(m, SIP_HDR_CALL_ID);
	sip_str cid = h ? h->value : SIP_STR_NULL;
	uint64_t hash = fnv1a(cid.p, cid.len);
	struct uas *u;

	if (!h || !sip_msg_hdr(m, SIP_HDR_VIA) ||
	    !sip_msg_hdr(m, SIP_HDR_CSEQ)) {
		w->stats.bad++;
		return;
	}
	switch (m->method_id) {
	case SIP_METHOD_INVITE:
		if (w->cfg->scenario == SB_SC_UAS) {
			uas_invite(w, m, d, cid, hash, now);
			return;
		}
		(void)respond(w, m, d, 486, SIP_STR_LIT("sb"), false, false,
			      NULL, NULL);
		return;
	case SIP_METHOD_ACK:
		u = w->uas ? uas_lookup(w, cid, hash, NULL) : NULL;
		if (u && u->state == S_WAIT_ACK) {
			u->state = S_CONFIRMED;
			u->lat_us = now - u->start_us;
			u->rtx_at = 0;
			u->end_at = now +
				    (uint64_t)w->cfg->dialog_timeout_ms * 1000u;
			uas_arm(w, u);
		}
		return;
	case SIP_METHOD_BYE:
		u = w->uas ? uas_lookup(w, cid, hash, NULL) : NULL;
		(void)respond(w, m, d, 200, SIP_STR_NULL, false, false, NULL,
			      NULL);
		if (!u) {
			w->stats.stray++;
			return;
		}
		count_ok(&w->stats, u->state == S_WAIT_ACK ? now - u->start_us
							   : u->lat_us);
		uas_free(w, u);
		return;
	default:
		/* OPTIONS, MESSAGE, REGISTER, CANCEL, ...: 200, statelessly. */
		(void)respond(w, m, d, 200, SIP_STR_LIT("sb"), false, false,
			      NULL, NULL);
		return;
	}
}

static void handle_msg(struct sb_worker *w, const char *buf, size_t len,
		       const struct dest *d, uint64_t now)
{
	struct sip_error err;

	w->stats.rx++;
	if (sip_msg_parse(w->msg, buf, len,
			  d->tcp ? SIP_FRAMING_STREAM : SIP_FRAMING_DATAGRAM,
			  &w->limits, &err) < 0) {
		w->stats.bad++;
		return;
	}
	if (w->msg->is_request)
		uas_request(w, w->msg, d, now);
	else if (w->uac)
		uac_response(w, w->msg, now);
	else
		w->stats.stray++;
}

/* ------------------------------------------------------------------------ */
/* sockets                                                                  */
/* ------------------------------------------------------------------------ */

static void udp_readable(struct sb_worker *w, uint32_t si)
{
	int fd = w->socks[si].fd;

	for (int round = 0; round < 16; round++) {
		int n;
		uint64_t now;

		for (unsigned i = 0; i < BATCH; i++) {
			w->rmsg[i].msg_hdr.msg_namelen = sizeof(w->raddr[i]);
			w->rmsg[i].msg_hdr.msg_flags = 0;
		}
		n = recvmmsg(fd, w->rmsg, BATCH, MSG_DONTWAIT, NULL);
		if (n < 0) {
			if (errno == EINTR || errno == ECONNREFUSED) {
				w->stats.rx_errors++;
				continue;
			}
			return;
		}
		now = sb_now_us();
		for (int i = 0; i < n; i++) {
			struct dest d = {.idx = (uint16_t)si};

			if (w->rmsg[i].msg_hdr.msg_flags & MSG_TRUNC) {
				w->stats.bad++;
				continue;
			}
			d.addr = (const struct sockaddr *)&w->raddr[i];
			d.alen = w->rmsg[i].msg_hdr.msg_namelen;
			handle_msg(w, w->rbuf[i], w->rmsg[i].msg_len, &d, now);
		}
		flush_all(w);
		if (n < BATCH)
			return;
	}
}

static void fail_conn_slots(struct sb_worker *w, uint32_t ci)
{
	for (uint32_t i = 0; i < w->nuac; i++) {
		struct uac *s = &w->uac[i];

		if (s->state != U_FREE && s->via == ci)
			uac_fail(w, s, SB_R_CONN, 0);
	}
}

static void conn_close(struct sb_worker *w, uint32_t ci)
{
	struct conn *c = &w->conns[ci];

	if (c->fd < 0)
		return;
	close(c->fd);
	c->fd = -1;
	c->up = false;
	c->gen++;
	c->in_len = 0;
	c->out_off = c->out_len = 0;
	c->want_out = false;
	if (w->cfg->scenario != SB_SC_UAS)
		fail_conn_slots(w, ci);
}

static void conn_readable(struct sb_worker *w, uint32_t ci)
{
	struct conn *c = &w->conns[ci];

	for (;;) {
		ssize_t n;
		size_t off = 0;
		uint64_t now;

		if (c->in_len == TCP_IN) {
			conn_close(w, ci);
			return;
		}
		n = read(c->fd, c->in + c->in_len, TCP_IN - c->in_len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			conn_close(w, ci);
			return;
		}
		c->in_len += (size_t)n;
		now = sb_now_us();
		for (;;) {
			struct sip_error err;
			struct dest d = {.tcp = true,
					 .idx = (uint16_t)ci,
					 .gen = c->gen};
			size_t flen = 0;
			int r = sip_framer_next(&c->fr, c->in + off,
						c->in_len - off, &flen, &err);

			if (r < 0) {
				w->stats.bad++;
				conn_close(w, ci);
				return;
			}
			if (r == SIP_FRAME_NEED_MORE)
				break;
			if (r == SIP_FRAME_MESSAGE)
				handle_msg(w, c->in + off, flen, &d, now);
			off += flen;
			if (c->fd < 0)
				return;
		}
		if (off) {
			memmove(c->in, c->in + off, c->in_len - off);
			c->in_len -= off;
		}
		flush_all(w);
		if ((size_t)n < TCP_IN / 2)
			return;
	}
}

static void conn_event(struct sb_worker *w, uint32_t ci, uint32_t events)
{
	struct conn *c = &w->conns[ci];

	if (ci >= w->nconns || c->fd < 0)
		return;
	if (!c->up && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
		int err = 0;
		socklen_t el = sizeof(err);

		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 ||
		    err) {
			fprintf(stderr, "sipbench: tcp connect: %s\n",
				strerror(err ? err : errno));
			conn_close(w, ci);
			return;
		}
		c->up = true;
		c->want_out = true;
	}
	if (events & EPOLLIN) {
		conn_readable(w, ci);
		if (c->fd < 0)
			return;
	} else if (events & (EPOLLERR | EPOLLHUP)) {
		conn_close(w, ci);
		return;
	}
	if (events & EPOLLOUT)
		conn_flush(w, ci);
}

static int conn_buffers(struct conn *c)
{
	if (!c->in)
		c->in = malloc(TCP_IN);
	if (!c->out)
		c->out = malloc(TCP_OUT);
	return c->in && c->out ? 0 : -ENOMEM;
}

static void listen_readable(struct sb_worker *w)
{
	for (;;) {
		struct sockaddr_storage ss = {0};
		socklen_t sl = sizeof(ss);
		int fd = accept4(w->listen_fd, (struct sockaddr *)&ss, &sl,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		uint32_t ci;
		int one = 1;

		if (fd < 0)
			return;
		for (ci = 0; ci < w->nconns && w->conns[ci].fd >= 0; ci++)
			;
		if (ci == w->nconns || conn_buffers(&w->conns[ci]) < 0) {
			close(fd);
			continue;
		}
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
				 sizeof(one));
		w->conns[ci].fd = fd;
		w->conns[ci].up = true;
		w->conns[ci].want_out = false;
		sip_framer_init(&w->conns[ci].fr, &w->limits);
		if (ep_add(w, fd, EPOLLIN, EV_CONN, ci) < 0)
			conn_close(w, ci);
	}
}

/* ------------------------------------------------------------------------ */
/* the loop                                                                 */
/* ------------------------------------------------------------------------ */

static double due_by(const struct sb_worker *w, double t)
{
	double r = w->rate, ramp = w->cfg->ramp;

	if (t <= 0)
		return 0;
	if (ramp > 0 && t < ramp)
		return r * t * t / (2 * ramp);
	if (ramp > 0)
		return r * ramp / 2 + r * (t - ramp);
	return r * t;
}

/* When the @p n-th start is due, in seconds from the start of the run. */
static double due_time(const struct sb_worker *w, double n)
{
	double r = w->rate, ramp = w->cfg->ramp;

	if (ramp > 0 && n < r * ramp / 2)
		return sqrt(2 * n * ramp / r);
	if (ramp > 0)
		return ramp + (n - r * ramp / 2) / r;
	return n / r;
}

static bool may_start(struct sb_worker *w, uint64_t now)
{
	if (w->no_more)
		return false;
	if (atomic_load_explicit(&w->sh->stop, memory_order_relaxed) ||
	    w->fatal || (w->max_starts && w->started >= w->max_starts) ||
	    (w->cfg->duration > 0 && w->cfg->scenario != SB_SC_UAS &&
	     (double)(now - w->sh->t0_us) >= w->cfg->duration * 1e6)) {
		w->no_more = true;
		w->drain_end = now + (uint64_t)(w->cfg->drain * 1e6);
		return false;
	}
	return true;
}

/* Start what is due; returns microseconds until the next start is due. */
static uint64_t start_due(struct sb_worker *w, uint64_t now)
{
	if (!w->client || !may_start(w, now))
		return UINT64_MAX;
	if (w->rate <= 0) {
		while (w->inflight < w->window && may_start(w, now))
			if (!uac_start(w, now))
				break;
		return UINT64_MAX;
	}
	{
		double t = (double)(now - w->sh->t0_us) / 1e6;
		uint64_t due = (uint64_t)due_by(w, t) + 1;
		double next;

		while (w->started < due && w->inflight < w->bound &&
		       may_start(w, now))
			if (!uac_start(w, now))
				break;
		if (w->started < due)
			return 1000;
		next = due_time(w, (double)w->started) * 1e6;
		if (next <= (double)(now - w->sh->t0_us))
			return 0;
		return (uint64_t)(next - (double)(now - w->sh->t0_us));
	}
}

static void run_timers(struct sb_worker *w, uint64_t now)
{
	uint32_t id;
	uint64_t at;

	while (sb_heap_top(&w->heap, &id, &at) && at <= now) {
		if (id < w->nuac)
			uac_timer(w, &w->uac[id], now);
		else
			uas_timer(w, &w->uas[id - w->nuac], now);
	}
}

static void finish(struct sb_worker *w)
{
	for (uint32_t i = 0; i < w->nuac; i++)
		if (w->uac[i].state != U_FREE)
			uac_fail(w, &w->uac[i], SB_R_UNFINISHED, 0);
	for (uint32_t i = 0; i < w->nuas; i++)
		if (w->uas[i].state != S_FREE) {
			count_fail(&w->stats, SB_R_UNFINISHED, 0);
			uas_free(w, &w->uas[i]);
		}
	flush_all(w);
}

void *sb_worker_run(void *arg)
{
	struct sb_worker *w = arg;
	struct epoll_event evs[64];

	for (;;) {
		uint64_t now = sb_now_us(), wait, t;
		uint32_t id;
		int stop = atomic_load_explicit(&w->sh->stop,
						memory_order_relaxed);
		int n, ms;

		if (stop == 2)
			break;
		run_timers(w, now);
		wait = start_due(w, now);
		if (w->cfg->scenario == SB_SC_UAS) {
			if (stop || (w->cfg->duration > 0 &&
				     (double)(now - w->sh->t0_us) >=
					     w->cfg->duration * 1e6))
				break;
		} else if (w->no_more) {
			if (w->inflight == 0 || now >= w->drain_end)
				break;
		}
		flush_all(w);
		if (sb_heap_top(&w->heap, &id, &t))
			wait = t > now ? (t - now < wait ? t - now : wait) : 0;
		if (wait > 100000)
			wait = 100000;
		ms = (int)((wait + 999) / 1000);
		n = epoll_wait(w->ep, evs, 64, ms);
		for (int i = 0; i < n; i++) {
			uint32_t kind = (uint32_t)(evs[i].data.u64 >> 32);
			uint32_t idx = (uint32_t)evs[i].data.u64;

			if (kind == EV_UDP)
				udp_readable(w, idx);
			else if (kind == EV_LISTEN)
				listen_readable(w);
			else
				conn_event(w, idx, evs[i].events);
		}
		flush_all(w);
	}
	finish(w);
	atomic_store(&w->done, true);
	return NULL;
}

/* ------------------------------------------------------------------------ */
/* setup                                                                    */
/* ------------------------------------------------------------------------ */

static int build_templates(struct sb_worker *w)
{
	const struct sb_config *c = w->cfg;
	const char *tp = c->transport == SB_TP_TCP ? "TCP" : "UDP";
	const char *tparam = c->transport == SB_TP_TCP ? ";transport=tcp" : "";
	char *src, via[128];
	int r = 0;

	snprintf(via, sizeof(via),
		 "Via: SIP/2.0/%s {lhost}:{lport};branch={branch};rport\r\n"
		 "Max-Forwards: 70\r\n",
		 tp);
	src = malloc(8192);
	if (!src)
		return -ENOMEM;
#define COMPILE(k, ...)                                                        \
	do {                                                                   \
		snprintf(src, 8192, __VA_ARGS__);                              \
		if (!r)                                                        \
			r = sb_tmpl_compile(&w->tmpl[k], src);                 \
	} while (0)
	/* clang-format off */
	COMPILE(K_REGISTER,
		"REGISTER {ruri} SIP/2.0\r\n%s"
		"From: <sip:{user}@%s>;tag={ftag}\r\n"
		"To: <sip:{user}@%s>\r\n"
		"Call-ID: {callid}\r\n"
		"CSeq: {cseq} REGISTER\r\n"
		"Contact: <sip:{user}@{lhost}:{lport}%s>\r\n"
		"Expires: %u\r\n"
		"{auth}User-Agent: sipbench\r\n"
		"Content-Length: 0\r\n\r\n", via, c->domain, c->domain, tparam,
		c->expires);
	COMPILE(K_OPTIONS,
		"OPTIONS {ruri} SIP/2.0\r\n%s"
		"From: <sip:{user}@%s>;tag={ftag}\r\n"
		"To: <sip:{to}@%s>\r\n"
		"Call-ID: {callid}\r\n"
		"CSeq: {cseq} OPTIONS\r\n"
		"{auth}Accept: application/sdp\r\n"
		"User-Agent: sipbench\r\n"
		"Content-Length: 0\r\n\r\n", via, c->domain, c->domain);
	COMPILE(K_MESSAGE,
		"MESSAGE {ruri} SIP/2.0\r\n%s"
		"From: <sip:{user}@%s>;tag={ftag}\r\n"
		"To: <sip:{to}@%s>\r\n"
		"Call-ID: {callid}\r\n"
		"CSeq: {cseq} MESSAGE\r\n"
		"{auth}User-Agent: sipbench\r\n"
		"Content-Type: text/plain\r\n"
		"Content-Length: 16\r\n\r\n"
		"sipbench message", via, c->domain, c->domain);
	COMPILE(K_INVITE,
		"INVITE {ruri} SIP/2.0\r\n%s"
		"From: <sip:{user}@%s>;tag={ftag}\r\n"
		"To: <sip:{to}@%s>\r\n"
		"Call-ID: {callid}\r\n"
		"CSeq: {cseq} INVITE\r\n"
		"Contact: <sip:{user}@{lhost}:{lport}%s>\r\n"
		"{auth}User-Agent: sipbench\r\n"
		"Content-Type: application/sdp\r\n"
		"Content-Length: %zu\r\n\r\n%s", via, c->domain, c->domain,
		tparam, w->sdp_len, w->sdp);
	COMPILE(K_ACK,
		"ACK {ruri} SIP/2.0\r\n%s{route}"
		"From: <sip:{user}@%s>;tag={ftag}\r\n"
		"To: <sip:{to}@%s>{totag}\r\n"
		"Call-ID: {callid}\r\n"
		"CSeq: {cseq} ACK\r\n"
		"{auth}Content-Length: 0\r\n\r\n", via, c->domain, c->domain);
	COMPILE(K_BYE,
		"BYE {ruri} SIP/2.0\r\n%s{route}"
		"From: <sip:{user}@%s>;tag={ftag}\r\n"
		"To: <sip:{to}@%s>{totag}\r\n"
		"Call-ID: {callid}\r\n"
		"CSeq: {cseq} BYE\r\n"
		"{auth}User-Agent: sipbench\r\n"
		"Content-Length: 0\r\n\r\n", via, c->domain, c->domain);
	/* clang-format on */
#undef COMPILE
	free(src);
	return r;
}

static int open_udp(struct sb_worker *w, struct sock *s, bool server)
{
	const struct sb_config *c = w->cfg;
	const struct sockaddr_storage *peer = server ? &c->listen : &c->target;
	struct sockaddr_storage ss = {0};
	socklen_t sl = sizeof(ss);
	int one = 1;

	s->fd = socket(peer->ss_family,
		       SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0)
		return -errno;
	big_buffers(s->fd);
	if (server) {
		(void)setsockopt(s->fd, SOL_SOCKET, SO_REUSEPORT, &one,
				 sizeof(one));
		if (bind(s->fd, (const struct sockaddr *)&c->listen,
			 c->listen_len) < 0)
			return -errno;
	} else {
		if (connect(s->fd, (const struct sockaddr *)&c->target,
			    c->target_len) < 0)
			return -errno;
		s->connected = true;
	}
	if (getsockname(s->fd, (struct sockaddr *)&ss, &sl) < 0)
		return -errno;
	port_str(&ss, s->lport, &s->lport_len);
	return 0;
}

static int open_tcp_client(struct sb_worker *w, struct conn *cn)
{
	const struct sb_config *c = w->cfg;
	struct sockaddr_storage ss = {0};
	socklen_t sl = sizeof(ss);
	int one = 1, r;

	r = conn_buffers(cn);
	if (r < 0)
		return r;
	cn->fd = socket(c->target.ss_family,
			SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (cn->fd < 0)
		return -errno;
	(void)setsockopt(cn->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	sip_framer_init(&cn->fr, &w->limits);
	if (connect(cn->fd, (const struct sockaddr *)&c->target,
		    c->target_len) < 0 &&
	    errno != EINPROGRESS)
		return -errno;
	if (getsockname(cn->fd, (struct sockaddr *)&ss, &sl) < 0)
		return -errno;
	port_str(&ss, cn->lport, &cn->lport_len);
	return 0;
}

static int open_tcp_listen(struct sb_worker *w)
{
	const struct sb_config *c = w->cfg;
	int one = 1;

	w->listen_fd = socket(c->listen.ss_family,
			      SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (w->listen_fd < 0)
		return -errno;
	(void)setsockopt(w->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one,
			 sizeof(one));
	(void)setsockopt(w->listen_fd, SOL_SOCKET, SO_REUSEPORT, &one,
			 sizeof(one));
	if (bind(w->listen_fd, (const struct sockaddr *)&c->listen,
		 c->listen_len) < 0 ||
	    listen(w->listen_fd, 1024) < 0)
		return -errno;
	return ep_add(w, w->listen_fd, EPOLLIN, EV_LISTEN, 0);
}

static void local_names(struct sb_worker *w, int fd)
{
	struct sockaddr_storage ss = {0};
	socklen_t sl = sizeof(ss);
	char ip[INET6_ADDRSTRLEN] = "127.0.0.1", port[8];
	uint8_t plen = 0;
	bool v6 = false;
	const char *tparam =
		w->cfg->transport == SB_TP_TCP ? ";transport=tcp" : "";

	if (fd >= 0 && getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
		v6 = ss.ss_family == AF_INET6;
		if (v6)
			inet_ntop(AF_INET6,
				  &((struct sockaddr_in6 *)(void *)&ss)
					   ->sin6_addr,
				  ip, sizeof(ip));
		else
			inet_ntop(
				AF_INET,
				&((struct sockaddr_in *)(void *)&ss)->sin_addr,
				ip, sizeof(ip));
		port_str(&ss, port, &plen);
	}
	port[plen] = '\0';
	snprintf(w->lhost, sizeof(w->lhost), v6 ? "[%s]" : "%s", ip);
	w->lhost_len = strlen(w->lhost);
	snprintf(w->contact, sizeof(w->contact), "<sip:sipbench@%s:%s%s>",
		 w->lhost, port, tparam);
	w->sdp_len = (size_t)snprintf(
		w->sdp, sizeof(w->sdp),
		"v=0\r\no=sipbench 1 1 IN %s %s\r\ns=-\r\nc=IN %s %s\r\n"
		"t=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n",
		v6 ? "IP6" : "IP4", ip, v6 ? "IP6" : "IP4", ip);
}

static int setup_client(struct sb_worker *w, unsigned threads)
{
	const struct sb_config *c = w->cfg;
	bool uas = c->scenario == SB_SC_UAS;
	uint32_t users;
	int r;

	w->client = true;
	switch (c->scenario) {
	case SB_SC_REGISTER:
		w->first_kind = K_REGISTER;
		break;
	case SB_SC_OPTIONS:
		w->first_kind = K_OPTIONS;
		break;
	case SB_SC_MESSAGE:
		w->first_kind = K_MESSAGE;
		break;
	case SB_SC_CALL:
		w->first_kind = K_INVITE;
		break;
	default:
		w->first_kind = K_REGISTER;
		break;
	}
	if (uas) {
		/* The uas registers each user once, from worker 0. */
		w->user_lo = 0;
		w->nusers = c->users;
		w->window = c->users < 32 ? c->users : 32;
		w->max_starts = c->users;
		w->ust = &w->reg_stats;
	} else {
		users = share(c->users, w->idx, threads);
		w->user_lo = (uint32_t)((uint64_t)c->users * w->idx / threads);
		w->nusers = users;
		if (!users) {
			w->user_lo = w->idx % c->users;
			w->nusers = 1;
		}
		w->window = share(c->inflight, w->idx, threads);
		w->bound = w->window;
		w->rate = c->rate / threads;
		w->max_starts = c->max_requests ? share(c->max_requests, w->idx,
							threads)
						: 0;
		w->ust = &w->stats;
	}
	w->nuac = w->window ? w->window : 1;
	if (w->nuac > 0xffffff)
		w->nuac = 0xffffff;
	w->uac = calloc(w->nuac, sizeof(*w->uac));
	if (!w->nusers)
		w->nusers = 1;
	w->user_cseq = calloc(w->nusers, sizeof(*w->user_cseq));
	w->user_busy = calloc(w->nusers, 1);
	if (c->has_password)
		w->chal = calloc(w->nusers, sizeof(*w->chal));
	if (!w->uac || !w->user_cseq || !w->user_busy ||
	    (c->has_password && !w->chal))
		return -ENOMEM;
	for (uint32_t i = 0; i < w->nuac; i++) {
		w->uac[i].next_free = i + 1 < w->nuac ? i + 1 : NONE;
	}
	w->free_uac = 0;
	w->user_num = split_pattern(c->user_pat, w->user_pre, w->user_suf);
	w->pass_num = split_pattern(c->pass_pat, w->pass_pre, w->pass_suf);
	if (w->first_kind == K_REGISTER)
		snprintf(w->ruri_first, sizeof(w->ruri_first), "sip:%s",
			 c->domain);
	else
		snprintf(w->ruri_first, sizeof(w->ruri_first), "sip:%s@%s",
			 c->callee, c->domain);
	r = build_templates(w);
	if (r < 0)
		fprintf(stderr, "sipbench: message template: %s\n",
			strerror(-r));
	return r;
}

int sb_worker_create(const struct sb_config *cfg, unsigned idx,
		     struct sb_shared *sh, struct sb_worker **out)
{
	struct sb_worker *w = calloc(1, sizeof(*w));
	bool uas = cfg->scenario == SB_SC_UAS;
	unsigned threads = cfg->threads;
	int r = -ENOMEM;

	*out = NULL;
	if (!w)
		return -ENOMEM;
	w->cfg_copy = *cfg;
	w->cfg = &w->cfg_copy;
	w->sh = sh;
	w->idx = idx;
	w->listen_fd = -1;
	w->ep = epoll_create1(EPOLL_CLOEXEC);
	w->free_uas = NONE;
	w->free_uac = NONE;
	sip_limits_default(&w->limits);
	sb_hist_init(&w->stats.lat);
	sb_hist_init(&w->reg_stats.lat);
	w->msg = malloc(sizeof(*w->msg));
	w->rbuf = malloc(sizeof(*w->rbuf) * BATCH);
	w->tbuf = malloc(sizeof(*w->tbuf) * BATCH);
	if (w->ep < 0 || !w->msg || !w->rbuf || !w->tbuf)
		goto fail;
	if (sb_hasher_init(&w->hasher) < 0)
		goto fail;
	for (unsigned i = 0; i < BATCH; i++) {
		w->riov[i].iov_base = w->rbuf[i];
		w->riov[i].iov_len = RXBUF;
		w->rmsg[i].msg_hdr.msg_iov = &w->riov[i];
		w->rmsg[i].msg_hdr.msg_iovlen = 1;
		w->rmsg[i].msg_hdr.msg_name = &w->raddr[i];
	}

	/* sockets */
	if (cfg->transport == SB_TP_UDP) {
		w->nsocks = uas ? 1 : share(cfg->local_ports, idx, threads);
		if (!w->nsocks)
			w->nsocks = 1;
		w->socks = calloc(w->nsocks, sizeof(*w->socks));
		if (!w->socks)
			goto fail;
		for (unsigned i = 0; i < w->nsocks; i++)
			w->socks[i].fd = -1;
		for (unsigned i = 0; i < w->nsocks; i++) {
			r = open_udp(w, &w->socks[i], uas);
			if (r == 0)
				r = ep_add(w, w->socks[i].fd, EPOLLIN, EV_UDP,
					   i);
			if (r < 0) {
				fprintf(stderr, "sipbench: udp socket: %s\n",
					strerror(-r));
				goto fail;
			}
		}
		local_names(w, w->socks[0].fd);
	} else {
		w->nconns = uas ? UAS_MAX_CONNS
				: share(cfg->connections, idx, threads);
		if (!w->nconns)
			w->nconns = 1;
		w->conns = calloc(w->nconns, sizeof(*w->conns));
		w->dirty = calloc(w->nconns, sizeof(*w->dirty));
		if (!w->conns || !w->dirty)
			goto fail;
		for (unsigned i = 0; i < w->nconns; i++)
			w->conns[i].fd = -1;
		if (uas) {
			r = open_tcp_listen(w);
			if (r < 0) {
				fprintf(stderr, "sipbench: tcp listen: %s\n",
					strerror(-r));
				goto fail;
			}
			local_names(w, w->listen_fd);
		} else {
			for (unsigned i = 0; i < w->nconns; i++) {
				r = open_tcp_client(w, &w->conns[i]);
				if (r == 0)
					r = ep_add(w, w->conns[i].fd,
						   EPOLLIN | EPOLLOUT, EV_CONN,
						   i);
				if (r < 0) {
					fprintf(stderr,
						"sipbench: tcp connect: %s\n",
						strerror(-r));
					goto fail;
				}
			}
			local_names(w, w->conns[0].fd);
		}
	}

	/* slots */
	if (uas) {
		w->nuas = share(cfg->inflight, idx, threads);
		if (!w->nuas)
			w->nuas = 1;
		w->uas = calloc(w->nuas, sizeof(*w->uas));
		w->hmask = 1;
		while (w->hmask < 2 * w->nuas)
			w->hmask <<= 1;
		w->htab = malloc(w->hmask * sizeof(*w->htab));
		w->hmask--;
		if (!w->uas || !w->htab)
			goto fail;
		for (uint32_t i = 0; i <= w->hmask; i++)
			w->htab[i] = NONE;
		for (uint32_t i = 0; i < w->nuas; i++)
			w->uas[i].hnext = i + 1 < w->nuas ? i + 1 : NONE;
		w->free_uas = 0;
	}
	if (!uas || (cfg->uas_register && idx == 0 && cfg->users)) {
		r = setup_client(w, threads);
		if (r < 0)
			goto fail;
	}
	r = sb_heap_init(&w->heap, w->nuac + w->nuas);
	if (r < 0)
		goto fail;
	*out = w;
	return 0;
fail:
	sb_worker_destroy(w);
	return r < 0 ? r : -ENOMEM;
}

bool sb_worker_done(struct sb_worker *w)
{
	return atomic_load(&w->done);
}

struct sb_stats *sb_worker_stats(struct sb_worker *w)
{
	return &w->stats;
}

struct sb_stats *sb_worker_reg_stats(struct sb_worker *w)
{
	return w->cfg->scenario == SB_SC_UAS && w->client ? &w->reg_stats
							  : NULL;
}

int sb_worker_local(const struct sb_worker *w, struct sockaddr_storage *ss,
		    socklen_t *len)
{
	int fd = w->listen_fd;

	if (fd < 0 && w->nsocks)
		fd = w->socks[0].fd;
	if (fd < 0 && w->nconns)
		fd = w->conns[0].fd;
	*len = sizeof(*ss);
	if (fd < 0 || getsockname(fd, (struct sockaddr *)ss, len) < 0)
		return -EBADF;
	return 0;
}

void sb_worker_destroy(struct sb_worker *w)
{
	if (!w)
		return;
	for (unsigned i = 0; w->socks && i < w->nsocks; i++)
		if (w->socks[i].fd >= 0)
			close(w->socks[i].fd);
	for (unsigned i = 0; w->conns && i < w->nconns; i++) {
		if (w->conns[i].fd >= 0)
			close(w->conns[i].fd);
		free(w->conns[i].in);
		free(w->conns[i].out);
	}
	if (w->listen_fd >= 0)
		close(w->listen_fd);
	if (w->ep >= 0)
		close(w->ep);
	free(w->socks);
	free(w->conns);
	free(w->dirty);
	free(w->uac);
	free(w->user_cseq);
	free(w->user_busy);
	free(w->chal);
	free(w->uas);
	free(w->htab);
	free(w->msg);
	free(w->rbuf);
	free(w->tbuf);
	sb_heap_free(&w->heap);
	sb_hasher_free(&w->hasher);
	free(w);
}
