/**
 * @file resolv_uv.c  Runs the queries of RFC 3263 lookups with c-ares on a
 * libuv loop: one uv_poll per c-ares socket, one uv_timer for c-ares
 * retransmissions, one uv_timer per lookup for its time bound. Callbacks
 * to the user always run from a uv_timer callback, never from inside
 * c-ares, so they may destroy the adapter.
 */
#include "resolv/resolv.h"

#include <ares.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

struct sock_watch {
	uv_poll_t poll;
	ares_socket_t fd;
	struct sip_resolv_uv *ad;
	struct sock_watch *next;
};

struct sip_resolv_uv {
	uv_loop_t *loop;
	struct sip_resolver *r;
	ares_channel ch;
	bool ch_ok;
	uv_timer_t timer; /* c-ares timeouts */
	struct sock_watch *socks;
	struct sip_resolv_req *reqs; /* not yet delivered */
	unsigned lookup_timeout_ms;
	unsigned handles; /* open uv handles, for the deferred free */
	bool closing;
};

struct sip_resolv_req {
	struct sip_resolv_uv *ad;
	struct sip_resolv_req *prev, *next;
	struct sip_lookup *lk;
	uv_timer_t timer; /* the bound, then the delivery */
	sip_resolv_done_cb cb;
	void *arg;
	unsigned inflight; /* c-ares queries not answered yet */
	int status;
	bool pumping;
	bool finished;	 /* outcome known, delivery pending */
	bool detached;	 /* delivered or cancelled */
	bool timer_open; /* until its close callback */
};

/** One c-ares query, owned by c-ares until its callback. */
struct qctx {
	struct sip_resolv_req *req;
	unsigned id;
	enum sip_dns_type type;
};

static void ad_release(struct sip_resolv_uv *ad)
{
	if (ad->closing && ad->handles == 0)
		free(ad);
}

static void handle_closed(uv_handle_t *h)
{
	struct sip_resolv_uv *ad = h->data;

	ad->handles--;
	ad_release(ad);
}

static void poll_closed(uv_handle_t *h)
{
	struct sock_watch *w = h->data;
	struct sip_resolv_uv *ad = w->ad;

	free(w);
	ad->handles--;
	ad_release(ad);
}

/* ------------------------------------------------------------------------ */
/* c-ares plumbing                                                          */
/* ------------------------------------------------------------------------ */

static void ares_timer_cb(uv_timer_t *t);

/** Arm the c-ares timer for its next retransmission or timeout. */
static void update_timer(struct sip_resolv_uv *ad)
{
	struct timeval tv, *tvp;
	uint64_t ms;

	if (!ad->ch_ok)
		return;
	tvp = ares_timeout(ad->ch, NULL, &tv);
	if (!tvp) {
		uv_timer_stop(&ad->timer);
		return;
	}
	ms = (uint64_t)tvp->tv_sec * 1000u +
	     ((uint64_t)tvp->tv_usec + 999) / 1000;
	uv_timer_start(&ad->timer, ares_timer_cb, ms, 0);
}

static void ares_timer_cb(uv_timer_t *t)
{
	struct sip_resolv_uv *ad = t->data;

	ares_process_fd(ad->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	update_timer(ad);
}

static void poll_cb(uv_poll_t *p, int status, int events)
{
	struct sock_watch *w = p->data;
	struct sip_resolv_uv *ad = w->ad;
	ares_socket_t rfd = ARES_SOCKET_BAD, wfd = ARES_SOCKET_BAD;

	/* on a poll error let c-ares read and write: it sees the error */
	if (status < 0 || (events & UV_READABLE))
		rfd = w->fd;
	if (status < 0 || (events & UV_WRITABLE))
		wfd = w->fd;
	ares_process_fd(ad->ch, rfd, wfd);
	update_timer(ad);
}

static void sock_state_cb(void *data, ares_socket_t fd, int readable,
			  int writable)
{
	struct sip_resolv_uv *ad = data;
	struct sock_watch **pp, *w;
	int events =
		(readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0);

	for (pp = &ad->socks; *pp && (*pp)->fd != fd; pp = &(*pp)->next)
		;
	w = *pp;
	if (!events) {
		if (w) { /* c-ares closes the socket right after this */
			*pp = w->next;
			uv_poll_stop(&w->poll);
			uv_close((uv_handle_t *)&w->poll, poll_closed);
		}
		return;
	}
	if (!w) {
		w = calloc(1, sizeof(*w));
		if (!w)
			return; /* the query times out */
		if (uv_poll_init_socket(ad->loop, &w->poll, fd) != 0) {
			free(w);
			return;
		}
		w->fd = fd;
		w->ad = ad;
		w->poll.data = w;
		w->next = ad->socks;
		ad->socks = w;
		ad->handles++;
	}
	uv_poll_start(&w->poll, events, poll_cb);
}

/* ------------------------------------------------------------------------ */
/* Answers                                                                  */
/* ------------------------------------------------------------------------ */

/** Offset after the (possibly compressed) name at @p off, or -1. */
static int skip_name(const unsigned char *p, int len, int off)
{
	while (off < len) {
		unsigned c = p[off];

		if (c == 0)
			return off + 1;
		if ((c & 0xc0) == 0xc0)
			return off + 2 <= len ? off + 2 : -1;
		if (c & 0xc0)
			return -1;
		off += 1 + (int)c;
	}
	return -1;
}

/** Smallest TTL of the answer records of @p type (c-ares' SRV and NAPTR
 * parsers do not report TTLs). 0 when malformed. */
static uint32_t answer_ttl(const unsigned char *p, int len, int type)
{
	uint32_t ttl = UINT32_MAX;
	int off, qd, an;

	if (len < 12)
		return 0;
	qd = (p[4] << 8) | p[5];
	an = (p[6] << 8) | p[7];
	off = 12;
	for (int i = 0; i < qd; i++) {
		off = skip_name(p, len, off);
		if (off < 0 || off + 4 > len)
			return 0;
		off += 4;
	}
	for (int i = 0; i < an; i++) {
		int t, rdlen;
		uint32_t rttl;

		off = skip_name(p, len, off);
		if (off < 0 || off + 10 > len)
			return 0;
		t = (p[off] << 8) | p[off + 1];
		rttl = ((uint32_t)p[off + 4] << 24) |
		       ((uint32_t)p[off + 5] << 16) |
		       ((uint32_t)p[off + 6] << 8) | p[off + 7];
		rdlen = (p[off + 8] << 8) | p[off + 9];
		off += 10 + rdlen;
		if (off > len)
			return 0;
		if (t == type && rttl < ttl)
			ttl = rttl;
	}
	return ttl == UINT32_MAX ? 0 : ttl;
}

static int ares_to_errno(int st)
{
	switch (st) {
	case ARES_ENOTFOUND:
		return -ENOENT;
	case ARES_ETIMEOUT:
		return -ETIMEDOUT;
	case ARES_ECONNREFUSED:
		return -ECONNREFUSED;
	case ARES_ENOMEM:
		return -ENOMEM;
	case ARES_ECANCELLED:
	case ARES_EDESTRUCTION:
		return -ECANCELED;
	case ARES_EBADRESP:
	case ARES_EFORMERR:
		return -EBADMSG;
	default:
		return -EIO;
	}
}

static int feed_addr(struct sip_lookup *lk, const struct qctx *c,
		     const unsigned char *abuf, int alen)
{
	struct sip_dns_rr rr[SIP_RESOLV_MAX_RRS];
	struct ares_addrttl a4[SIP_RESOLV_MAX_RRS];
	struct ares_addr6ttl a6[SIP_RESOLV_MAX_RRS];
	struct hostent *he = NULL;
	int n = SIP_RESOLV_MAX_RRS, st;

	if (c->type == SIP_DNS_A)
		st = ares_parse_a_reply(abuf, alen, &he, a4, &n);
	else
		st = ares_parse_aaaa_reply(abuf, alen, &he, a6, &n);
	if (he)
		ares_free_hostent(he);
	if (st == ARES_ENODATA)
		return sip_lookup_feed(lk, c->id, 0, NULL, 0);
	if (st != ARES_SUCCESS)
		return sip_lookup_feed(lk, c->id, ares_to_errno(st), NULL, 0);
	memset(rr, 0, sizeof(rr));
	for (int i = 0; i < n; i++) {
		rr[i].type = c->type;
		if (c->type == SIP_DNS_A) {
			memcpy(rr[i].a, &a4[i].ipaddr, 4);
			rr[i].ttl = a4[i].ttl > 0 ? (uint32_t)a4[i].ttl : 0;
		} else {
			memcpy(rr[i].aaaa, &a6[i].ip6addr, 16);
			rr[i].ttl = a6[i].ttl > 0 ? (uint32_t)a6[i].ttl : 0;
		}
	}
	return sip_lookup_feed(lk, c->id, 0, rr, (size_t)n);
}

static int feed_srv(struct sip_lookup *lk, const struct qctx *c,
		    const unsigned char *abuf, int alen)
{
	struct sip_dns_rr rr[SIP_RESOLV_MAX_RRS];
	struct ares_srv_reply *srv = NULL;
	uint32_t ttl = answer_ttl(abuf, alen, SIP_DNS_SRV);
	size_t n = 0;
	int st = ares_parse_srv_reply(abuf, alen, &srv), rc;

	if (st != ARES_SUCCESS) {
		st = st == ARES_ENODATA ? 0 : ares_to_errno(st);
		return sip_lookup_feed(lk, c->id, st, NULL, 0);
	}
	memset(rr, 0, sizeof(rr));
	for (const struct ares_srv_reply *s = srv; s && n < SIP_RESOLV_MAX_RRS;
	     s = s->next, n++) {
		rr[n].type = SIP_DNS_SRV;
		rr[n].ttl = ttl;
		rr[n].srv.priority = s->priority;
		rr[n].srv.weight = s->weight;
		rr[n].srv.port = s->port;
		rr[n].srv.target = s->host;
	}
	rc = sip_lookup_feed(lk, c->id, 0, rr, n);
	ares_free_data(srv);
	return rc;
}

static int feed_naptr(struct sip_lookup *lk, const struct qctx *c,
		      const unsigned char *abuf, int alen)
{
	struct sip_dns_rr rr[SIP_RESOLV_MAX_RRS];
	struct ares_naptr_reply *np = NULL;
	uint32_t ttl = answer_ttl(abuf, alen, SIP_DNS_NAPTR);
	size_t n = 0;
	int st = ares_parse_naptr_reply(abuf, alen, &np), rc;

	if (st != ARES_SUCCESS) {
		st = st == ARES_ENODATA ? 0 : ares_to_errno(st);
		return sip_lookup_feed(lk, c->id, st, NULL, 0);
	}
	memset(rr, 0, sizeof(rr));
	for (const struct ares_naptr_reply *x = np; x && n < SIP_RESOLV_MAX_RRS;
	     x = x->next, n++) {
		rr[n].type = SIP_DNS_NAPTR;
		rr[n].ttl = ttl;
		rr[n].naptr.order = x->order;
		rr[n].naptr.preference = x->preference;
		rr[n].naptr.flags = (const char *)x->flags;
		rr[n].naptr.service = (const char *)x->service;
		rr[n].naptr.regexp = (const char *)x->regexp;
		rr[n].naptr.replacement = x->replacement;
	}
	rc = sip_lookup_feed(lk, c->id, 0, rr, n);
	ares_free_data(np);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Requests                                                                 */
/* ------------------------------------------------------------------------ */

static void req_release(struct sip_resolv_req *req)
{
	if (req->detached && !req->timer_open && req->inflight == 0)
		free(req);
}

static void req_timer_closed(uv_handle_t *h)
{
	struct sip_resolv_req *req = h->data;

	req->timer_open = false;
	req_release(req);
}

static void req_unlink(struct sip_resolv_req *req)
{
	if (req->prev)
		req->prev->next = req->next;
	else
		req->ad->reqs = req->next;
	if (req->next)
		req->next->prev = req->prev;
	req->prev = req->next = NULL;
}

/** Deliver the outcome (or nothing, when @p call is false) and let go. */
static void req_detach(struct sip_resolv_req *req, bool call, int status)
{
	struct sip_lookup *lk = req->lk;

	req->detached = true;
	req->lk = NULL;
	req_unlink(req);
	uv_timer_stop(&req->timer);
	uv_close((uv_handle_t *)&req->timer, req_timer_closed);
	if (status != 0 || !call) {
		sip_lookup_destroy(lk);
		lk = NULL;
	}
	if (call)
		req->cb(status, lk, req->arg);
	/* freed by req_timer_closed() once c-ares has nothing more for it */
}

static void deliver_cb(uv_timer_t *t)
{
	struct sip_resolv_req *req = t->data;

	req_detach(req, true, req->status);
}

/** The outcome is known: deliver it from the loop, outside c-ares. */
static void req_finish(struct sip_resolv_req *req, int status)
{
	if (req->finished)
		return;
	req->finished = true;
	req->status = status;
	uv_timer_stop(&req->timer);
	uv_timer_start(&req->timer, deliver_cb, 0, 0);
}

static void bound_cb(uv_timer_t *t)
{
	req_finish(t->data, -ETIMEDOUT);
}

static void on_answer(void *arg, int status, int timeouts, unsigned char *abuf,
		      int alen);

/** Send what the lookup asks for; finish when it has its targets. */
static void req_pump(struct sip_resolv_req *req)
{
	struct sip_resolv_uv *ad = req->ad;
	struct sip_dns_query q;

	if (req->pumping || req->finished)
		return;
	req->pumping = true;
	while (!req->finished && sip_lookup_next_query(req->lk, &q) == 1) {
		struct qctx *c = malloc(sizeof(*c));

		if (!c) {
			sip_lookup_feed(req->lk, q.id, -ENOMEM, NULL, 0);
			continue;
		}
		c->req = req;
		c->id = q.id;
		c->type = q.type;
		req->inflight++;
		ares_query(ad->ch, q.name, 1 /* IN */, (int)q.type, on_answer,
			   c);
	}
	req->pumping = false;
	if (!req->finished && sip_lookup_done(req->lk))
		req_finish(req, sip_lookup_status(req->lk));
	update_timer(ad);
}

static void on_answer(void *arg, int status, int timeouts, unsigned char *abuf,
		      int alen)
{
	struct qctx *c = arg;
	struct sip_resolv_req *req = c->req;

	(void)timeouts;
	req->inflight--;
	if (req->finished || req->detached) {
		free(c);
		req_release(req);
		return;
	}
	if (status != ARES_SUCCESS && status != ARES_ENODATA)
		sip_lookup_feed(req->lk, c->id, ares_to_errno(status), NULL, 0);
	else if (status == ARES_ENODATA || !abuf)
		sip_lookup_feed(req->lk, c->id, 0, NULL, 0);
	else if (c->type == SIP_DNS_NAPTR)
		feed_naptr(req->lk, c, abuf, alen);
	else if (c->type == SIP_DNS_SRV)
		feed_srv(req->lk, c, abuf, alen);
	else
		feed_addr(req->lk, c, abuf, alen);
	free(c);
	req_pump(req);
}

int sip_resolv_uv_lookup(struct sip_resolv_uv *ad, const struct sip_uri *uri,
			 sip_resolv_done_cb cb, void *arg,
			 struct sip_resolv_req **out)
{
	struct sip_resolv_req *req;
	int rc;

	if (out)
		*out = NULL;
	if (ad->closing)
		return -ECANCELED;
	req = calloc(1, sizeof(*req));
	if (!req)
		return -ENOMEM;
	rc = sip_lookup_create(ad->r, uri, &req->lk);
	if (rc) {
		free(req);
		return rc;
	}
	req->ad = ad;
	req->cb = cb;
	req->arg = arg;
	uv_timer_init(ad->loop, &req->timer);
	req->timer.data = req;
	req->timer_open = true;
	req->next = ad->reqs;
	if (ad->reqs)
		ad->reqs->prev = req;
	ad->reqs = req;
	uv_timer_start(&req->timer, bound_cb, ad->lookup_timeout_ms, 0);
	req_pump(req);
	if (out)
		*out = req;
	return 0;
}

void sip_resolv_uv_cancel(struct sip_resolv_req *req)
{
	if (req && !req->detached)
		req_detach(req, false, 0);
}

/* ------------------------------------------------------------------------ */
/* Adapter                                                                  */
/* ------------------------------------------------------------------------ */

int sip_resolv_uv_create(struct uv_loop_s *loop, struct sip_resolver *r,
			 const struct sip_resolv_uv_config *cfg,
			 struct sip_resolv_uv **out)
{
	struct sip_resolv_uv *ad;
	struct ares_options o;
	struct in_addr placeholder = {htonl(0x7f000001)};
	char lookups[] = "b"; /* DNS only, never the hosts file */
	int mask, rc;

	bool sys;

	*out = NULL;
	sys = (!cfg->servers || !cfg->servers[0]) && cfg->system_servers;
	if (!sys && (!cfg->servers || !cfg->servers[0]))
		return -EINVAL;
	ad = calloc(1, sizeof(*ad));
	if (!ad)
		return -ENOMEM;
	ad->loop = loop;
	ad->r = r;
	ad->lookup_timeout_ms =
		cfg->lookup_timeout_ms ? cfg->lookup_timeout_ms : 10000;
	if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS) {
		free(ad);
		return -EIO;
	}

	/* Every field c-ares would otherwise take from /etc/resolv.conf is
	 * given, so the system configuration is not read. */
	memset(&o, 0, sizeof(o));
	o.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES;
	o.timeout = (int)(cfg->query_timeout_ms ? cfg->query_timeout_ms : 2000);
	o.tries = (int)(cfg->tries ? cfg->tries : 2);
	o.ndots = 1;
	o.servers = &placeholder; /* replaced by cfg->servers below */
	o.nservers = 1;
	o.domains = NULL;
	o.ndomains = 0;
	o.lookups = lookups;
	o.sortlist = NULL;
	o.nsort = 0;
	o.sock_state_cb = sock_state_cb;
	o.sock_state_cb_data = ad;
	mask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
	       ARES_OPT_NDOTS | ARES_OPT_SERVERS | ARES_OPT_DOMAINS |
	       ARES_OPT_LOOKUPS | ARES_OPT_SORTLIST | ARES_OPT_SOCK_STATE_CB;
	if (sys) /* the servers (and the rest) from /etc/resolv.conf */
		mask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
		       ARES_OPT_LOOKUPS | ARES_OPT_SOCK_STATE_CB;
	rc = ares_init_options(&ad->ch, &o, mask);
	if (rc != ARES_SUCCESS) {
		ares_library_cleanup();
		free(ad);
		return rc == ARES_ENOMEM ? -ENOMEM : -EIO;
	}
	ad->ch_ok = true;
	rc = sys ? ARES_SUCCESS
		 : ares_set_servers_ports_csv(ad->ch, cfg->servers);
	if (rc != ARES_SUCCESS) {
		ares_destroy(ad->ch);
		ares_library_cleanup();
		free(ad);
		return rc == ARES_ENOMEM ? -ENOMEM : -EINVAL;
	}
	uv_timer_init(loop, &ad->timer);
	ad->timer.data = ad;
	ad->handles = 1;
	*out = ad;
	return 0;
}

void sip_resolv_uv_destroy(struct sip_resolv_uv *ad)
{
	if (!ad || ad->closing)
		return;
	ad->closing = true;
	while (ad->reqs) {
		struct sip_resolv_req *req = ad->reqs;

		req_detach(req, true, req->finished ? req->status : -ECANCELED);
	}
	/* answers still owed come back with ARES_EDESTRUCTION */
	ares_destroy(ad->ch);
	ad->ch_ok = false;
	ares_library_cleanup();
	while (ad->socks) {
		struct sock_watch *w = ad->socks;

		ad->socks = w->next;
		uv_poll_stop(&w->poll);
		uv_close((uv_handle_t *)&w->poll, poll_closed);
	}
	uv_close((uv_handle_t *)&ad->timer, handle_closed);
}
