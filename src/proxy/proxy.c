/**
 * @file proxy.c  The stateful proxy core (RFC 3261 §16): request
 * processing, forking, response selection, CANCEL; and the redirect
 * server. See proxy.h.
 *
 * Objects. A call (struct pcall, the §16 "response context") is created
 * with the server transaction of a request the proxy takes; it keeps a
 * copy of the request, its targets in q order and its branches. A branch
 * (struct pbranch) is one client transaction and a copy of the request it
 * sent (for its CANCEL). A CANCEL we send has its own client transaction
 * (struct pcancel). The user pointer of every transaction points to one
 * of these three, told apart by their first member. A call is freed once
 * its server transaction and every client transaction it started have
 * terminated and no callback is running on it.
 */
#include "proxy/proxy.h"

#include "auth/auth.h"
#include "location/location.h"
#include "resolv/resolv.h"
#include "transport/transport.h"
#include "txn/txn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PROXY_OUT_MAX (65535u + 8192u)
#define PROXY_MAX_TARGETS 32
#define PROXY_MAX_ROUTES 32
#define DEFAULT_MAX_FORWARDS 70

enum obj_kind { OBJ_CALL = 1, OBJ_BRANCH, OBJ_CANCEL };

struct target {
	char *uri;  /**< the Request-URI of the branch              */
	char *path; /**< Path values, comma-separated, or NULL       */
	uint16_t q;
	int64_t expires;
	bool has_flow; /**< send on the binding's connection         */
	struct proxy_peer flow;
};

struct pcall;

struct pbranch {
	enum obj_kind kind;
	struct pcall *call;
	struct pbranch *next;
	struct sip_txn *txn;   /**< NULL once terminated                    */
	unsigned target;       /**< index in the call's targets             */
	struct sip_lookup *lk; /**< targets left for failover, or NULL    */
	void *lookup;	       /**< the resolve handle while resolving    */
	bool resolving;	       /**< waiting for proxy_resolved()          */
	struct proxy_peer dest;
	char *req; /**< the request sent (for the CANCEL)          */
	size_t req_len;
	unsigned status;    /**< final status (synthetic ones too), 0     */
	bool provisional;   /**< a 1xx (above 100) arrived               */
	bool cancel_wanted; /**< CANCEL once a provisional arrives       */
	bool cancel_sent;
	char reason[96]; /**< Reason of the CANCEL, empty for none     */
};

struct pcancel {
	enum obj_kind kind;
	struct pbranch *branch;
	struct pcancel *next; /**< the call's CANCELs in flight */
};

struct pcall {
	enum obj_kind kind;
	struct proxy *p;
	struct pcall *prev, *next;   /**< every call              */
	struct pcall *tprev, *tnext; /**< calls with a deadline   */
	bool timed;
	uint64_t deadline; /**< the group's time is up              */
	struct sip_txn *stxn;
	struct proxy_peer src;
	char *req;
	size_t req_len;
	enum sip_method method;
	uint32_t loop_hash;
	struct target targets[PROXY_MAX_TARGETS];
	unsigned ntargets, next_target;
	struct pbranch *branches;
	struct pcancel *cancels;
	unsigned live_txns; /**< client transactions not terminated */
	unsigned busy;	    /**< callbacks running on it            */
	/* the answer so far */
	unsigned best_status;
	char *best; /**< the best final response (bytes), or NULL */
	size_t best_len;
	/** The WWW-/Proxy-Authenticate lines of every 401 and 407 a branch
	 * answered, for a 401/407 sent upstream (§16.7 step 6). */
	char *chal;
	size_t chal_len;
	bool final_sent, got_2xx, got_6xx, cancelled;
	bool closed;	   /**< no longer counted in proxy.nopen          */
	unsigned starting; /**< start_group() running on it        */
	char received[48]; /**< received/rport of the caller's Via  */
	struct sip_via_rcvd rcvd;
	bool has_rcvd;
};

struct proxy {
	struct proxy_config cfg;
	struct proxy_callbacks cb;
	void *arg;
	struct sip_txn_table *txns;
	struct pcall calls; /**< list head */
	struct pcall timed; /**< list head of calls with a deadline */
	size_t ncalls;
	/** Calls still waiting for their final answer: what max_calls
	 * bounds. The others only wait for their transactions to end
	 * (Timer J, K, L, M: up to 64*T1) and cost memory, not work. */
	size_t nopen;
	uint32_t counter;
	uint64_t now;
	/* the request being processed by proxy_request() */
	const struct proxy_peer *cur_src;
	const struct sip_via_rcvd *cur_rcvd;
	struct proxy_outcome *cur_out;
	struct sip_msg scratch; /**< reparsed copies */
	struct sip_msg scratch2;
	char out[PROXY_OUT_MAX];
	char cbuf[16384];
	struct target tmp[PROXY_MAX_TARGETS];
	unsigned ntmp;
	void *gone; /**< the last object whose transaction terminated */
};

/* ------------------------------------------------------------------------ */
/* Small helpers                                                            */
/* ------------------------------------------------------------------------ */

void proxy_config_default(struct proxy_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->t1 = 500;
	cfg->t2 = 4000;
	cfg->t4 = 5000;
	cfg->timer_c = 181000;
	cfg->fork_timeout_ms = 30000;
	cfg->max_calls = 100000;
	cfg->retry_after = 5;
}

static char *dup_mem(const char *p, size_t n)
{
	char *d = malloc(n + 1);

	if (d) {
		memcpy(d, p, n);
		d[n] = '\0';
	}
	return d;
}

static uint32_t fnv(uint32_t h, sip_str s)
{
	for (size_t i = 0; i < s.len; i++) {
		h ^= (unsigned char)s.p[i];
		h *= 16777619u;
	}
	return h;
}

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

static uint16_t addr_port(const struct sockaddr_storage *a)
{
	if (a->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)a)->sin6_port);
	return ntohs(((const struct sockaddr_in *)a)->sin_port);
}

/* "192.0.2.1" or "[2001:db8::1]" */
static void addr_host(const struct sockaddr_storage *a, char *buf, size_t cap)
{
	char tmp[INET6_ADDRSTRLEN] = "";

	if (a->ss_family == AF_INET6) {
		inet_ntop(AF_INET6,
			  &((const struct sockaddr_in6 *)a)->sin6_addr, tmp,
			  sizeof(tmp));
		snprintf(buf, cap, "[%s]", tmp);
	} else {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)a)->sin_addr,
			  tmp, sizeof(tmp));
		snprintf(buf, cap, "%s", tmp);
	}
}

static const char *tp_upper(unsigned tp)
{
	switch (tp) {
	case SIP_TP_TCP:
		return "TCP";
	case SIP_TP_TLS:
		return "TLS";
	case SIP_TP_WS:
		return "WS";
	case SIP_TP_WSS:
		return "WSS";
	default:
		return "UDP";
	}
}

static uint16_t default_port(unsigned tp)
{
	return tp == SIP_TP_TLS	  ? 5061
	       : tp == SIP_TP_WS  ? 80
	       : tp == SIP_TP_WSS ? 443
				  : 5060;
}

/* Our local address for @p tp and family (or any of the transport). */
static int local_for(const struct proxy *p, unsigned tp, int family)
{
	int any = -1;

	for (unsigned i = 0; i < p->cfg.nlocal; i++) {
		if (p->cfg.local[i].transport != tp)
			continue;
		if (p->cfg.local[i].addr.ss_family == family)
			return (int)i;
		if (any < 0)
			any = (int)i;
	}
	if (any < 0 && p->cfg.nlocal)
		any = 0;
	return any;
}

/* Does @p host:@p port name one of our listen addresses? */
static bool is_local_addr(const struct proxy *p, sip_str host, bool has_port,
			  uint16_t port)
{
	char h[INET6_ADDRSTRLEN + 2];

	for (unsigned i = 0; i < p->cfg.nlocal; i++) {
		uint16_t lp = addr_port(&p->cfg.local[i].addr);

		addr_host(&p->cfg.local[i].addr, h, sizeof(h));
		if (!sip_str_ieq_c(host, h))
			continue;
		/* without a port, any of ours (a URI of the server) */
		if (!has_port || port == lp)
			return true;
	}
	return false;
}

static bool port_is_ours(const struct proxy *p, uint16_t port)
{
	for (unsigned i = 0; i < p->cfg.nlocal; i++)
		if (addr_port(&p->cfg.local[i].addr) == port)
			return true;
	return false;
}

static bool serves(const struct proxy *p, sip_str host)
{
	return p->cb.serves && p->cb.serves(p->arg, host);
}

/* Is this URI us: one of our addresses, or a domain we serve at one of our
 * ports (or without a port)? */
static bool uri_is_me(const struct proxy *p, const struct sip_uri *u)
{
	if (u->scheme != SIP_URI_SIP && u->scheme != SIP_URI_SIPS)
		return false;
	if (is_local_addr(p, u->host, u->has_port, u->port))
		return true;
	return serves(p, u->host) && (!u->has_port || port_is_ours(p, u->port));
}

static bool uri_has_lr(const struct sip_uri *u)
{
	sip_str v;

	return sip_param_find(u->params, "lr", &v) == 1;
}

/* The Route values of @p m, in order. */
static unsigned route_values(const struct sip_msg *m, sip_str *out,
			     unsigned max)
{
	unsigned n = 0;

	for (const struct sip_hdr *h = sip_msg_hdr(m, SIP_HDR_ROUTE); h;
	     h = sip_msg_hdr_next(m, h)) {
		sip_str cur = h->value, item;

		while (n < max && sip_list_next(&cur, &item) > 0)
			out[n++] = item;
	}
	return n;
}

static int route_uri(sip_str value, struct sip_addr *a)
{
	return sip_addr_parse(value, a);
}

/* How many of the first Route values are ours: 1, or 2 when we put two
 * Record-Route values in (RFC 5658). */
static unsigned own_routes(const struct proxy *p, const sip_str *v, unsigned n)
{
	struct sip_addr a;
	unsigned k = 0;

	while (k < n && k < 2 && route_uri(v[k], &a) == 0 &&
	       uri_is_me(p, &a.uri))
		k++;
	return k;
}

static sip_str hdr_value(const struct sip_msg *m, enum sip_hdr_id id)
{
	const struct sip_hdr *h = sip_msg_hdr(m, id);

	return h ? h->value : SIP_STR_NULL;
}

static sip_str tag_of(const struct sip_msg *m, enum sip_hdr_id id)
{
	struct sip_addr a;
	const struct sip_hdr *h = sip_msg_hdr(m, id);

	if (h && sip_addr_parse(h->value, &a) == 0)
		return a.tag;
	return SIP_STR_NULL;
}

/* RFC 5393 §4.2: what a looping request has in common with its earlier
 * pass (the Via changes, so it is not part of it). */
static uint32_t loop_hash(const struct sip_msg *m)
{
	struct sip_cseq cs;
	uint32_t h = 2166136261u;
	sip_str sep = SIP_STR_LIT("\n");

	h = fnv(h, m->ruri);
	h = fnv(h, sep);
	h = fnv(h, tag_of(m, SIP_HDR_FROM));
	h = fnv(h, sep);
	h = fnv(h, tag_of(m, SIP_HDR_TO));
	h = fnv(h, sep);
	h = fnv(h, hdr_value(m, SIP_HDR_CALL_ID));
	h = fnv(h, sep);
	if (sip_cseq_parse(hdr_value(m, SIP_HDR_CSEQ), &cs) == 0)
		h = fnv(h, (sip_str){(const char *)&cs.num, sizeof(cs.num)});
	h = fnv(h, sep);
	for (const struct sip_hdr *r = sip_msg_hdr(m, SIP_HDR_PROXY_REQUIRE); r;
	     r = sip_msg_hdr_next(m, r))
		h = fnv(h, r->value);
	h = fnv(h, sep);
	for (const struct sip_hdr *r = sip_msg_hdr(m, SIP_HDR_ROUTE); r;
	     r = sip_msg_hdr_next(m, r))
		h = fnv(h, r->value);
	return h ? h : 1;
}

/* Our branch: the worker, the loop hash in the upper 32 bits of the
 * unique part, a counter through a mix in the lower ones. */
static int make_branch(struct proxy *p, uint32_t lh, uint32_t low, char *out,
		       size_t cap)
{
	uint64_t u = ((uint64_t)lh << 32) | low;

	return sip_branch_make(out, cap, p->cfg.worker, u);
}

static uint32_t next_low(struct proxy *p)
{
	return (uint32_t)mix64(p->cfg.seed ^ ++p->counter);
}

/* §16.3 step 4: a Via of ours whose branch carries the same loop hash. */
static bool is_loop(const struct proxy *p, const struct sip_msg *m, uint32_t lh)
{
	for (const struct sip_hdr *h = sip_msg_hdr(m, SIP_HDR_VIA); h;
	     h = sip_msg_hdr_next(m, h)) {
		sip_str cur = h->value, item;

		while (sip_list_next(&cur, &item) > 0) {
			struct sip_via v;
			unsigned wk;
			uint64_t u = 0;

			if (sip_via_parse(item, &v) < 0 ||
			    !is_local_addr(p, v.host, v.has_port, v.port))
				continue;
			if (sip_branch_worker(v.branch, &wk) < 0)
				continue;
			/* "z9hG4bK<w>.<16 hex>": the 8 hex after the dot */
			sip_str hex = sip_str_sub(v.branch, v.branch.len - 16,
						  v.branch.len - 8);
			for (size_t i = 0; i < hex.len; i++) {
				char c = hex.p[i];
				u = u * 16 + (uint64_t)(c <= '9'
								? c - '0'
								: c - 'a' + 10);
			}
			if ((uint32_t)u == lh)
				return true;
		}
	}
	return false;
}

/* To tag of our own answers: a hash of Call-ID, From tag and the top Via. */
static sip_str local_tag(const struct sip_msg *m, char *buf)
{
	uint32_t h = 2166136261u;
	const struct sip_hdr *v = sip_msg_hdr(m, SIP_HDR_VIA);

	h = fnv(h, hdr_value(m, SIP_HDR_CALL_ID));
	h = fnv(h, tag_of(m, SIP_HDR_FROM));
	if (v)
		h = fnv(h, v->value);
	snprintf(buf, 16, "px%08x", h);
	return (sip_str){buf, 10};
}

/* ------------------------------------------------------------------------ */
/* Sending                                                                  */
/* ------------------------------------------------------------------------ */

static int send_to(struct proxy *p, const struct proxy_peer *to,
		   const char *buf, size_t len)
{
	return p->cb.send(p->arg, to, buf, len);
}

static int txn_send_cb(struct sip_txn *txn, const char *buf, size_t len,
		       void *arg)
{
	struct proxy *p = arg;
	enum obj_kind *k = sip_txn_user(txn);

	if (!k)
		return -ENOTCONN;
	switch (*k) {
	case OBJ_CALL:
		return send_to(p, &((struct pcall *)(void *)k)->src, buf, len);
	case OBJ_BRANCH:
		return send_to(p, &((struct pbranch *)(void *)k)->dest, buf,
			       len);
	case OBJ_CANCEL:
		return send_to(p, &((struct pcancel *)(void *)k)->branch->dest,
			       buf, len);
	}
	return -EINVAL;
}

/* Start an answer to @p req (status line and §8.2.6 headers) in p->out. */
static void resp_begin(struct proxy *p, struct sip_writer *w,
		       const struct sip_msg *req, unsigned status,
		       const char *reason, const struct sip_via_rcvd *rcvd)
{
	char tag[16];

	sip_wr_init(w, p->out, sizeof(p->out));
	sip_wr_response_to_rcvd(w, req, status, reason, local_tag(req, tag),
				rcvd);
}

static int resp_finish(struct proxy *p, struct sip_writer *w,
		       struct sip_txn *stxn, const struct proxy_peer *to)
{
	int n;

	sip_wr_header(w, "Server", SIP_STR_LIT("sipd"));
	n = sip_wr_finish(w, NULL, SIP_STR_NULL);
	if (n < 0)
		return n;
	if (stxn)
		return sip_txn_respond(stxn, p->out, (size_t)n, p->now);
	return send_to(p, to, p->out, (size_t)n);
}

/* A whole local answer with no extra headers. */
static int respond_simple(struct proxy *p, struct sip_txn *stxn,
			  const struct sip_msg *req,
			  const struct sip_via_rcvd *rcvd, unsigned status,
			  const char *reason)
{
	struct sip_writer w;

	if (p->cur_out && !p->cur_out->status)
		p->cur_out->status = status;
	resp_begin(p, &w, req, status, reason, rcvd);
	return resp_finish(p, &w, stxn, p->cur_src);
}

/* A response without its top Via, into p->out. @return the length, or
 * -ENOENT when no Via would remain: such a response was meant for us and
 * is not forwarded (§16.7 step 3). */
static int strip_top_via(struct proxy *p, const struct sip_msg *m)
{
	const struct sip_hdr *h = sip_msg_hdr(m, SIP_HDR_VIA);
	const char *start, *end, *bufend = m->buf + m->len;
	sip_str cur, item;
	size_t n = 0;

	if (!h || m->len > sizeof(p->out))
		return -EINVAL;
	cur = h->value;
	if (sip_list_next(&cur, &item) <= 0)
		return -EINVAL;
	cur = sip_str_trim(cur);
	if (cur.len) {
		/* more values on the line: drop "first, " */
		start = h->value.p;
		end = cur.p;
	} else {
		if (!sip_msg_hdr_next(m, h))
			return -ENOENT;
		start = h->name.p;
		end = h->value.p + h->value.len;
		while (end < bufend && *end != '\n')
			end++;
		if (end < bufend)
			end++;
	}
	memcpy(p->out, m->buf, (size_t)(start - m->buf));
	n = (size_t)(start - m->buf);
	memcpy(p->out + n, end, (size_t)(bufend - end));
	n += (size_t)(bufend - end);
	return (int)n;
}

/* ------------------------------------------------------------------------ */
/* Calls                                                                    */
/* ------------------------------------------------------------------------ */

static void targets_free(struct target *t, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		free(t[i].uri);
		free(t[i].path);
		t[i].uri = t[i].path = NULL;
	}
}

static void untime(struct pcall *c)
{
	if (!c->timed)
		return;
	c->tprev->tnext = c->tnext;
	c->tnext->tprev = c->tprev;
	c->timed = false;
}

static void set_deadline(struct pcall *c, uint64_t at)
{
	struct proxy *p = c->p;

	untime(c);
	c->deadline = at;
	c->tnext = p->timed.tnext;
	c->tprev = &p->timed;
	c->tnext->tprev = c;
	p->timed.tnext = c;
	c->timed = true;
}

/* The call has its final answer (or was refused): it no longer counts
 * against max_calls. */
static void call_close(struct pcall *c)
{
	if (!c->closed) {
		c->closed = true;
		c->p->nopen--;
	}
}

static void call_free(struct pcall *c)
{
	struct proxy *p = c->p;

	call_close(c);
	untime(c);
	c->prev->next = c->next;
	c->next->prev = c->prev;
	p->ncalls--;
	for (struct pbranch *b = c->branches, *n; b; b = n) {
		n = b->next;
		if (b->resolving && p->cb.resolve_cancel)
			p->cb.resolve_cancel(p->arg, b->lookup);
		sip_lookup_destroy(b->lk);
		free(b->req);
		free(b);
	}
	/* only at proxy_destroy(): their transactions are gone */
	for (struct pcancel *pc = c->cancels, *n; pc; pc = n) {
		n = pc->next;
		free(pc);
	}
	targets_free(c->targets, c->ntargets);
	free(c->chal);
	free(c->best);
	free(c->req);
	free(c);
}

static void call_maybe_free(struct pcall *c)
{
	if (!c->busy && !c->stxn && !c->live_txns)
		call_free(c);
}

static struct pcall *call_new(struct proxy *p, const struct sip_msg *m)
{
	struct pcall *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->req = dup_mem(m->buf, m->len);
	if (!c->req) {
		free(c);
		return NULL;
	}
	c->kind = OBJ_CALL;
	c->p = p;
	c->req_len = m->len;
	c->method = m->method_id;
	c->src = *p->cur_src;
	if (p->cur_rcvd) {
		size_t n = p->cur_rcvd->received.len;

		if (n >= sizeof(c->received))
			n = 0;
		if (n)
			memcpy(c->received, p->cur_rcvd->received.p, n);
		c->rcvd.received = (sip_str){c->received, n};
		c->rcvd.rport = p->cur_rcvd->rport;
		c->has_rcvd = true;
	}
	c->next = p->calls.next;
	c->prev = &p->calls;
	c->next->prev = c;
	p->calls.next = c;
	p->ncalls++;
	p->nopen++;
	return c;
}

/* The call's request, parsed into @p m (from its own copy). */
static int call_req(struct pcall *c, struct sip_msg *m)
{
	return sip_msg_parse(m, c->req, c->req_len, SIP_FRAMING_DATAGRAM, NULL,
			     NULL);
}

/* ------------------------------------------------------------------------ */
/* Next hops                                                                */
/* ------------------------------------------------------------------------ */

static void target_peer(const struct sip_target *t, struct proxy_peer *out)
{
	memset(out, 0, sizeof(*out));
	out->transport = t->transport;
	if (t->family == 6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&out->addr;

		a->sin6_family = AF_INET6;
		memcpy(&a->sin6_addr, t->addr, 16);
		a->sin6_port = htons(t->port);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&out->addr;

		a->sin_family = AF_INET;
		memcpy(&a->sin_addr, t->addr, 4);
		a->sin_port = htons(t->port);
	}
}

/* Where a request for @p uri_text goes, when that is known now: static
 * routes, numeric hosts and cached answers (RFC 3263 through the
 * resolver). With @p lk_out, the lookup is handed over when targets are
 * left for failover. @return 0, -EINPROGRESS when DNS queries are needed
 * and the resolve callback can run them, or a negative errno. */
static int resolve(struct proxy *p, sip_str uri_text, struct proxy_peer *out,
		   struct sip_lookup **lk_out)
{
	struct sip_uri u;
	struct sip_lookup *lk = NULL;
	struct sip_dns_query q;
	struct sip_target t;
	int r;

	memset(out, 0, sizeof(*out));
	if (lk_out)
		*lk_out = NULL;
	if (sip_uri_parse(uri_text, &u) < 0)
		return -EINVAL;
	if (u.scheme != SIP_URI_SIP && u.scheme != SIP_URI_SIPS)
		return -EPROTONOSUPPORT;
	if (p->cfg.resolver) {
		r = sip_lookup_create(p->cfg.resolver, &u, &lk);
		if (r < 0)
			return r;
		if (sip_lookup_next_query(lk, &q) == 1 ||
		    !sip_lookup_done(lk)) {
			sip_lookup_destroy(lk);
			return p->cb.resolve ? -EINPROGRESS : -EHOSTUNREACH;
		}
		if (sip_lookup_next(lk, &t) != 1) {
			sip_lookup_destroy(lk);
			return -EHOSTUNREACH;
		}
		target_peer(&t, out);
		if (lk_out && sip_lookup_count(lk) > 1)
			*lk_out = lk;
		else
			sip_lookup_destroy(lk);
		return 0;
	}
	/* numeric hosts only */
	{
		char host[INET6_ADDRSTRLEN + 2];
		sip_str tp;
		unsigned tr =
			u.scheme == SIP_URI_SIPS ? SIP_TP_TLS : SIP_TP_UDP;

		if (sip_param_find(u.params, "transport", &tp) == 1) {
			if (sip_str_ieq_c(tp, "tcp"))
				tr = u.scheme == SIP_URI_SIPS ? SIP_TP_TLS
							      : SIP_TP_TCP;
			else if (sip_str_ieq_c(tp, "tls"))
				tr = SIP_TP_TLS;
			else if (sip_str_ieq_c(tp, "ws"))
				tr = SIP_TP_WS;
			else if (sip_str_ieq_c(tp, "wss"))
				tr = SIP_TP_WSS;
		}
		out->transport = tr;
		if (u.host_kind == SIP_HOST_IPV4 && u.host.len < sizeof(host)) {
			struct sockaddr_in *a =
				(struct sockaddr_in *)&out->addr;
			memcpy(host, u.host.p, u.host.len);
			host[u.host.len] = '\0';
			a->sin_family = AF_INET;
			a->sin_port =
				htons(u.has_port ? u.port : default_port(tr));
			return inet_pton(AF_INET, host, &a->sin_addr) == 1
				       ? 0
				       : -EINVAL;
		}
		if (u.host_kind == SIP_HOST_IPV6 && u.host.len >= 2 &&
		    u.host.len < sizeof(host)) {
			struct sockaddr_in6 *a =
				(struct sockaddr_in6 *)&out->addr;
			memcpy(host, u.host.p + 1, u.host.len - 2);
			host[u.host.len - 2] = '\0';
			a->sin6_family = AF_INET6;
			a->sin6_port =
				htons(u.has_port ? u.port : default_port(tr));
			return inet_pton(AF_INET6, host, &a->sin6_addr) == 1
				       ? 0
				       : -EINVAL;
		}
	}
	return -EHOSTUNREACH;
}

/* ------------------------------------------------------------------------ */
/* Forwarding (§16.6)                                                       */
/* ------------------------------------------------------------------------ */

/* What a forwarded copy differs in. */
struct fwd {
	sip_str ruri;
	sip_str routes[PROXY_MAX_ROUTES + PROXY_MAX_TARGETS];
	unsigned nroutes;
	bool record_route;
	int rr_local;  /**< local address for Record-Route, -1 none */
	int rr_out;    /**< RFC 5658: the outbound one above it, or -1 */
	int via_local; /**< local address for our Via                */
	char branch[SIP_BRANCH_SIZE];
	const struct sip_via_rcvd *rcvd;
	struct proxy_peer dest;
	sip_str hop; /**< the URI the next hop is resolved from     */
	char strict_ruri[1024]; /**< RURI kept when the next hop is strict */
};

static void write_local_uri(struct proxy *p, struct sip_writer *w, int li,
			    bool lr)
{
	char host[INET6_ADDRSTRLEN + 2];
	unsigned tp = p->cfg.local[li].transport;
	const char *tn = tp == SIP_TP_TCP   ? ";transport=tcp"
			 : tp == SIP_TP_TLS ? ";transport=tls"
			 : tp == SIP_TP_WS || tp == SIP_TP_WSS ? ";transport=ws"
							       : "";

	addr_host(&p->cfg.local[li].addr, host, sizeof(host));
	sip_wr_headerf(w, "Record-Route", "<%s:%s:%u%s%s>",
		       tp == SIP_TP_TLS || tp == SIP_TP_WSS ? "sips" : "sip",
		       host, addr_port(&p->cfg.local[li].addr), tn,
		       lr ? ";lr" : "");
}

static bool dialog_creating(const struct sip_msg *m)
{
	if (tag_of(m, SIP_HDR_TO).len)
		return false;
	switch (m->method_id) {
	case SIP_METHOD_INVITE:
	case SIP_METHOD_SUBSCRIBE:
	case SIP_METHOD_REFER:
	case SIP_METHOD_NOTIFY:
		return true;
	default:
		return false;
	}
}

/* Credentials for a realm of ours: consumed here, not passed on to the
 * next hop (§22.3, §20.28), so that a digest response of our users does
 * not reach other domains and their phones. */
static bool own_credentials(const struct proxy *p, sip_str value)
{
	struct sip_auth a;
	sip_str realm;

	return sip_auth_parse(value, &a) == 0 &&
	       sip_auth_param(&a, "realm", &realm) && serves(p, realm);
}

/* Write the forwarded copy of @p m into @p buf. @return its length. */
static int write_forward(struct proxy *p, const struct sip_msg *m,
			 const struct fwd *f, char *buf, size_t cap)
{
	struct sip_writer w;
	uint32_t mf = DEFAULT_MAX_FORWARDS;
	char host[INET6_ADDRSTRLEN + 2];
	const struct sip_hdr *h;

	h = sip_msg_hdr(m, SIP_HDR_MAX_FORWARDS);
	if (h && sip_uint_parse(h->value, 255, &mf) == 0 && mf > 0)
		mf--;
	sip_wr_init(&w, buf, cap);
	sip_wr_request_line(&w, m->method, f->ruri);
	if (f->via_local >= 0) {
		const struct sockaddr_storage *la =
			&p->cfg.local[f->via_local].addr;
		addr_host(la, host, sizeof(host));
		sip_wr_headerf(&w, "Via", "SIP/2.0/%s %s:%u;branch=%s;rport",
			       tp_upper(f->dest.transport), host, addr_port(la),
			       f->branch);
	}
	sip_wr_vias(&w, m, f->rcvd);
	if (f->record_route && f->rr_out >= 0)
		write_local_uri(p, &w, f->rr_out, true);
	if (f->record_route && f->rr_local >= 0)
		write_local_uri(p, &w, f->rr_local, true);
	for (unsigned i = 0; i < f->nroutes; i++)
		sip_wr_header(&w, "Route", f->routes[i]);
	sip_wr_headerf(&w, "Max-Forwards", "%u", mf);
	for (unsigned i = 0; i < m->nhdrs; i++) {
		switch (m->hdrs[i].id) {
		case SIP_HDR_VIA:
		case SIP_HDR_ROUTE:
		case SIP_HDR_MAX_FORWARDS:
		case SIP_HDR_CONTENT_LENGTH:
			continue;
		case SIP_HDR_PROXY_AUTHORIZATION:
			if (own_credentials(p, m->hdrs[i].value))
				continue;
			sip_wr_copy(&w, &m->hdrs[i]);
			break;
		default:
			sip_wr_copy(&w, &m->hdrs[i]);
		}
	}
	return sip_wr_finish(&w, NULL, m->body);
}

static bool has_local(const struct proxy *p, unsigned tp)
{
	for (unsigned i = 0; i < p->cfg.nlocal; i++)
		if (p->cfg.local[i].transport == tp)
			return true;
	return false;
}

/*
 * write_forward() with the transport chosen by size (RFC 3261 §18.1.1): a
 * request for UDP larger than 1300 bytes (the path MTU is not known) goes
 * over TCP to the same address and port instead, with a Via (and
 * Record-Route) for TCP, unless the next hop's URI says transport=udp or
 * we have no TCP. A flow (a binding's connection) is kept as it is.
 */
static int write_forward_sized(struct proxy *p, const struct sip_msg *m,
			       struct fwd *f, char *buf, size_t cap)
{
	int n = write_forward(p, m, f, buf, cap);
	struct sip_uri u;
	sip_str tp;
	bool explicit_tp = false;

	if (n < 0 || f->dest.transport != SIP_TP_UDP || !f->hop.len ||
	    !has_local(p, SIP_TP_TCP))
		return n;
	if (sip_uri_parse(f->hop, &u) == 0 &&
	    sip_param_find(u.params, "transport", &tp) == 1)
		explicit_tp = sip_str_ieq_c(tp, "udp");
	if (sip_tp_request_transport(SIP_TP_UDP, (size_t)n, 0, explicit_tp) !=
	    SIP_TP_TCP)
		return n;
	f->dest.transport = SIP_TP_TCP;
	f->dest.conn = 0;
	f->dest.lsn = NULL;
	f->via_local = local_for(p, SIP_TP_TCP, f->dest.addr.ss_family);
	f->rr_out = f->rr_local >= 0 && f->via_local != f->rr_local
			    ? f->via_local
			    : -1;
	return write_forward(p, m, f, buf, cap);
}

/*
 * Build @p f for target @p ruri with the extra Route values @p path (may be
 * empty) in front of the request's remaining routes @p rest: §16.6 steps
 * 2 (RURI), 4 (Record-Route), 6 (strict next hop) and 7 (next hop). The
 * next hop is @p given when known (a target of an earlier lookup), else
 * resolved from f->hop (-EINPROGRESS: it needs DNS; @p lk_out as resolve()).
 */
static int plan_forward(struct proxy *p, const struct sip_msg *m, sip_str ruri,
			sip_str path, const sip_str *rest, unsigned nrest,
			const struct proxy_peer *flow,
			const struct proxy_peer *given,
			struct sip_lookup **lk_out, struct fwd *f)
{
	struct sip_addr a;
	sip_str cur, item;
	int r;

	f->ruri = ruri;
	f->nroutes = 0;
	cur = path;
	while (path.len && f->nroutes < PROXY_MAX_TARGETS &&
	       sip_list_next(&cur, &item) > 0)
		f->routes[f->nroutes++] = item;
	for (unsigned i = 0; i < nrest && f->nroutes < PROXY_MAX_ROUTES; i++)
		f->routes[f->nroutes++] = rest[i];
	f->record_route = dialog_creating(m);
	f->rr_local =
		local_for(p, p->cur_src ? p->cur_src->transport : 0,
			  p->cur_src ? p->cur_src->addr.ss_family : AF_INET);
	if (f->nroutes) {
		if (route_uri(f->routes[0], &a) < 0)
			return -EINVAL;
		if (!uri_has_lr(&a.uri)) {
			/* §16.6 step 6: a strict router: it gets the URI as
			 * the Request-URI, ours goes to the end of Route */
			int n = snprintf(f->strict_ruri, sizeof(f->strict_ruri),
					 "<%.*s>", SIP_STR_FMT(ruri));
			if (n < 0 || (size_t)n >= sizeof(f->strict_ruri))
				return -ENOSPC;
			f->ruri = a.uri_text;
			memmove(f->routes, f->routes + 1,
				(f->nroutes - 1) * sizeof(f->routes[0]));
			f->routes[f->nroutes - 1] =
				(sip_str){f->strict_ruri, (size_t)n};
			f->hop = f->ruri;
		} else {
			f->hop = a.uri_text;
		}
	} else if (flow) {
		f->dest = *flow;
	} else {
		f->hop = ruri;
	}
	if (given) {
		f->dest = *given;
	} else if (f->hop.len) {
		r = resolve(p, f->hop, &f->dest, lk_out);
		if (r < 0)
			return r;
	}
	f->via_local = local_for(p, f->dest.transport, f->dest.addr.ss_family);
	/* RFC 5658: in on one transport or address, out on another: the
	 * inbound URI for the caller's side, the outbound one above it for
	 * the callee's, so that each side reaches us the way it did */
	f->rr_out = f->rr_local >= 0 && f->via_local >= 0 &&
				    f->via_local != f->rr_local
			    ? f->via_local
			    : -1;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Branches and CANCEL                                                      */
/* ------------------------------------------------------------------------ */

static void call_check(struct pcall *c);
static void keep_best(struct pcall *c, const struct sip_msg *m, unsigned st);
static size_t add_challenges(struct pcall *c, size_t n);

/* Write the CANCEL of @p b (§9.1) into p->cbuf. */
static int write_cancel(struct proxy *p, struct pbranch *b)
{
	struct sip_msg *m = &p->scratch2;
	struct sip_writer w;
	const struct sip_hdr *h;
	struct sip_cseq cs;
	sip_str cur, item;

	if (sip_msg_parse(m, b->req, b->req_len, SIP_FRAMING_DATAGRAM, NULL,
			  NULL) < 0)
		return -EINVAL;
	if (sip_cseq_parse(hdr_value(m, SIP_HDR_CSEQ), &cs) < 0)
		return -EINVAL;
	h = sip_msg_hdr(m, SIP_HDR_VIA);
	cur = h ? h->value : SIP_STR_NULL;
	if (!h || sip_list_next(&cur, &item) <= 0)
		return -EINVAL;
	sip_wr_init(&w, p->cbuf, sizeof(p->cbuf));
	sip_wr_request_line(&w, SIP_STR_LIT("CANCEL"), m->ruri);
	sip_wr_header(&w, "Via", item);
	for (h = sip_msg_hdr(m, SIP_HDR_ROUTE); h; h = sip_msg_hdr_next(m, h))
		sip_wr_copy(&w, h);
	sip_wr_header(&w, "Max-Forwards", SIP_STR_LIT("70"));
	sip_wr_header(&w, "From", hdr_value(m, SIP_HDR_FROM));
	sip_wr_header(&w, "To", hdr_value(m, SIP_HDR_TO));
	sip_wr_header(&w, "Call-ID", hdr_value(m, SIP_HDR_CALL_ID));
	sip_wr_headerf(&w, "CSeq", "%u CANCEL", cs.num);
	if (b->reason[0])
		sip_wr_header(&w, "Reason", sip_str_c(b->reason));
	return sip_wr_finish(&w, NULL, SIP_STR_NULL);
}

static void send_cancel(struct pbranch *b)
{
	struct pcall *c = b->call;
	struct proxy *p = c->p;
	struct pcancel *pc;
	struct sip_txn *txn = NULL;
	int n;

	if (b->cancel_sent || !b->txn)
		return;
	b->cancel_sent = true;
	n = write_cancel(p, b);
	pc = calloc(1, sizeof(*pc));
	if (n < 0 || !pc) {
		free(pc);
		return;
	}
	pc->kind = OBJ_CANCEL;
	pc->branch = b;
	pc->next = c->cancels;
	c->cancels = pc;
	c->live_txns++;
	p->gone = NULL;
	if (sip_txn_client_create(p->txns, p->cbuf, (size_t)n,
				  b->dest.transport == SIP_TP_UDP
					  ? SIP_TXN_PROXY
					  : SIP_TXN_PROXY | SIP_TXN_RELIABLE,
				  pc, p->now, &txn) < 0 &&
	    p->gone != pc) {
		/* refused before it existed: no callback ran */
		c->live_txns--;
		c->cancels = pc->next;
		free(pc);
	}
}

/* Cancel a pending branch: now when it rang, else once it does (§9.1). */
static void branch_cancel(struct pbranch *b, const char *reason)
{
	if (b->status || b->call->method != SIP_METHOD_INVITE)
		return;
	if (reason && !b->reason[0])
		snprintf(b->reason, sizeof(b->reason), "%s", reason);
	b->cancel_wanted = true;
	if (b->provisional)
		send_cancel(b);
}

static void cancel_others(struct pcall *c, struct pbranch *except,
			  const char *reason)
{
	for (struct pbranch *b = c->branches; b; b = b->next) {
		if (b == except || b->status)
			continue;
		branch_cancel(b, reason);
		if (!b->provisional) {
			/* nothing came back yet: it is over for the caller;
			 * its transaction runs on and a provisional that
			 * still comes is cancelled */
			b->status = 487;
		}
	}
}

static struct pbranch *branch_new(struct pcall *c, unsigned target)
{
	struct pbranch *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	b->kind = OBJ_BRANCH;
	b->call = c;
	b->target = target;
	b->next = c->branches;
	c->branches = b;
	return b;
}

static void branch_fail(struct pbranch *b, unsigned status)
{
	if (!b->status) {
		b->status = status;
		keep_best(b->call, NULL, status);
	}
}

/*
 * Forward @p m (the call's request) as branch @p b to its target: to
 * @p given when the next hop is known, else to the next hop resolved now,
 * or once DNS has answered (proxy_resolved()).
 * @return 0 (sent, or waiting for DNS), or a negative errno (b failed).
 */
static int branch_go(struct pcall *c, struct pbranch *b,
		     const struct sip_msg *m, const sip_str *rest,
		     unsigned nrest, const struct proxy_peer *given)
{
	struct proxy *p = c->p;
	const struct target *t = &c->targets[b->target];
	struct sip_lookup *lk = NULL;
	struct fwd f;
	struct sip_txn *txn = NULL;
	int n, r;

	memset(&f, 0, sizeof(f));
	f.rcvd = p->cur_rcvd;
	r = plan_forward(p, m, sip_str_c(t->uri),
			 t->path ? sip_str_c(t->path) : SIP_STR_NULL, rest,
			 nrest, t->has_flow && !t->path ? &t->flow : NULL,
			 given, &lk, &f);
	if (r == -EINPROGRESS) {
		struct sip_uri u;

		if (sip_uri_parse(f.hop, &u) < 0) {
			r = -EINVAL;
			goto fail;
		}
		b->resolving = true;
		c->live_txns++;
		r = p->cb.resolve(p->arg, &u, b, &b->lookup);
		if (r < 0) {
			b->resolving = false;
			c->live_txns--;
			goto fail;
		}
		if (p->cur_out) {
			p->cur_out->branches++;
			p->cur_out->note = "resolving";
		}
		return 0;
	}
	if (r < 0)
		goto fail;
	if (lk) {
		sip_lookup_destroy(b->lk);
		b->lk = lk;
	}
	r = make_branch(p, c->loop_hash, next_low(p), f.branch,
			sizeof(f.branch));
	if (r < 0)
		goto fail;
	n = write_forward_sized(p, m, &f, p->out, sizeof(p->out));
	if (n < 0) {
		r = n;
		goto fail;
	}
	b->req = dup_mem(p->out, (size_t)n);
	if (!b->req) {
		r = -ENOMEM;
		goto fail;
	}
	b->req_len = (size_t)n;
	b->dest = f.dest;
	c->live_txns++;
	p->gone = NULL;
	r = sip_txn_client_create(p->txns, b->req, b->req_len,
				  f.dest.transport == SIP_TP_UDP
					  ? SIP_TXN_PROXY
					  : SIP_TXN_PROXY | SIP_TXN_RELIABLE,
				  b, p->now, &txn);
	if (r < 0) {
		/* a send error ran the callbacks (503 and failover,
		 * terminated); a refusal before creation ran none */
		if (p->gone != b)
			c->live_txns--;
		goto fail;
	}
	b->txn = txn;
	if (p->cur_out)
		p->cur_out->branches++;
	return 0;
fail:
	branch_fail(b, 503);
	return r;
}

/* Forward @p m to target @p ti as a new branch of @p c. */
static int branch_start(struct pcall *c, const struct sip_msg *m, unsigned ti,
			const sip_str *rest, unsigned nrest)
{
	struct pbranch *b = branch_new(c, ti);

	if (!b)
		return -ENOMEM;
	return branch_go(c, b, m, rest, nrest, NULL);
}

/* The remaining routes of the call's request after our own. */
static unsigned rest_routes(struct proxy *p, const struct sip_msg *m,
			    sip_str *out);

/* Work on @p c outside proxy_request(): its request parsed into
 * p->scratch, its source and received/rport as the current ones. */
struct call_ctx {
	const struct proxy_peer *src;
	const struct sip_via_rcvd *rcvd;
	struct proxy_outcome *out;
	sip_str rest[PROXY_MAX_ROUTES];
	unsigned nrest;
};

static int ctx_enter(struct pcall *c, struct call_ctx *x)
{
	struct proxy *p = c->p;

	if (call_req(c, &p->scratch) < 0)
		return -EINVAL;
	x->nrest = rest_routes(p, &p->scratch, x->rest);
	x->src = p->cur_src;
	x->rcvd = p->cur_rcvd;
	x->out = p->cur_out;
	p->cur_src = &c->src;
	p->cur_rcvd = c->has_rcvd ? &c->rcvd : NULL;
	p->cur_out = NULL;
	return 0;
}

static void ctx_leave(struct pcall *c, struct call_ctx *x)
{
	c->p->cur_src = x->src;
	c->p->cur_rcvd = x->rcvd;
	c->p->cur_out = x->out;
}

/*
 * RFC 3263 §4.3: @p b failed with a timeout, a transport error or a 503:
 * the next target of its lookup gets the request in a new branch (a new
 * transaction), unless the call is over or the branch was cancelled.
 */
static void failover(struct pbranch *b)
{
	struct pcall *c = b->call;
	struct sip_target t;
	struct proxy_peer peer;
	struct pbranch *nb;
	struct call_ctx x;

	if (!b->lk || c->final_sent || c->cancelled || c->got_6xx ||
	    b->cancel_wanted || sip_lookup_next(b->lk, &t) != 1)
		return;
	nb = branch_new(c, b->target);
	if (!nb || ctx_enter(c, &x) < 0)
		return;
	nb->lk = b->lk;
	b->lk = NULL;
	target_peer(&t, &peer);
	branch_go(c, nb, &c->p->scratch, x.rest, x.nrest, &peer);
	ctx_leave(c, &x);
}

/* Start the next group of targets (equal q). @return branches started. */
static unsigned start_group(struct pcall *c, const struct sip_msg *m,
			    const sip_str *rest, unsigned nrest)
{
	struct proxy *p = c->p;
	unsigned started = 0;

	c->starting++;
	while (c->next_target < c->ntargets) {
		unsigned i = c->next_target;
		uint16_t q = c->targets[i].q;

		for (; i < c->ntargets && c->targets[i].q == q; i++) {
			if (branch_start(c, m, i, rest, nrest) == 0)
				started++;
		}
		c->next_target = i;
		if (started)
			break;
	}
	c->starting--;
	if (c->next_target < c->ntargets && c->method == SIP_METHOD_INVITE)
		set_deadline(c, p->now + p->cfg.fork_timeout_ms);
	else
		untime(c);
	return started;
}

/* The remaining routes of the call's request after our own. */
static unsigned rest_routes(struct proxy *p, const struct sip_msg *m,
			    sip_str *out)
{
	sip_str all[PROXY_MAX_ROUTES];
	unsigned n = route_values(m, all, PROXY_MAX_ROUTES), k = 0, i;

	for (i = own_routes(p, all, n); i < n; i++)
		out[k++] = all[i];
	return k;
}

static void next_group(struct pcall *c)
{
	struct proxy *p = c->p;
	struct sip_msg *m = &p->scratch;
	sip_str rest[PROXY_MAX_ROUTES];
	unsigned nrest;

	if (call_req(c, m) < 0)
		return;
	nrest = rest_routes(p, m, rest);
	const struct proxy_peer *os = p->cur_src;
	const struct sip_via_rcvd *orc = p->cur_rcvd;
	p->cur_src = &c->src;
	p->cur_rcvd = c->has_rcvd ? &c->rcvd : NULL;
	start_group(c, m, rest, nrest);
	p->cur_src = os;
	p->cur_rcvd = orc;
}

static unsigned rank(unsigned st)
{
	if (st >= 600)
		return 0;
	if (st >= 300 && st < 400)
		return 1;
	if (st == 401 || st == 407 || st == 415 || st == 420 || st == 484)
		return 2;
	if (st == 408)
		return 6;
	if (st >= 400 && st < 500)
		return 3;
	if (st == 503)
		return 5;
	return 4;
}

/* Send the best final answer now (§16.7 step 6). */
static void send_best(struct pcall *c)
{
	struct proxy *p = c->p;
	struct sip_msg *m = &p->scratch;
	unsigned st = c->best_status ? c->best_status : 408;

	c->final_sent = true;
	call_close(c);
	untime(c);
	if (!c->stxn)
		return;
	if (c->cancelled && (st == 408 || !c->best))
		st = 487;
	if (c->best && st == c->best_status && st != 503) {
		struct sip_msg r;
		int n;

		if (sip_msg_parse(&r, c->best, c->best_len,
				  SIP_FRAMING_DATAGRAM, NULL, NULL) == 0 &&
		    (n = strip_top_via(p, &r)) > 0) {
			size_t len = (size_t)n;

			if (st == 401 || st == 407)
				len = add_challenges(c, len);
			sip_txn_respond(c->stxn, p->out, len, p->now);
			return;
		}
	}
	if (st == 503)
		st = 500;
	if (call_req(c, m) < 0)
		return;
	respond_simple(p, c->stxn, m, NULL, st, NULL);
}

/* Every branch done? Then the next group, or the answer. */
static void call_check(struct pcall *c)
{
	if (c->final_sent || c->starting)
		return;
	for (struct pbranch *b = c->branches; b; b = b->next)
		if (!b->status)
			return;
	if (!c->got_6xx && !c->cancelled && c->next_target < c->ntargets) {
		next_group(c);
		for (struct pbranch *b = c->branches; b; b = b->next)
			if (!b->status)
				return;
		if (c->next_target < c->ntargets)
			return;
	}
	send_best(c);
}

/* A final non-2xx answer of @p b: keep it when it is the best so far. */
/* Keep the challenge lines of a 401 or 407 (§16.7 step 6: the answer
 * upstream carries those of every branch). */
static void keep_challenges(struct pcall *c, const struct sip_msg *m)
{
	for (unsigned i = 0; i < m->nhdrs; i++) {
		const struct sip_hdr *h = &m->hdrs[i];
		const char *name;
		size_t add;
		char *grown;

		if (h->id == SIP_HDR_WWW_AUTHENTICATE)
			name = "WWW-Authenticate: ";
		else if (h->id == SIP_HDR_PROXY_AUTHENTICATE)
			name = "Proxy-Authenticate: ";
		else
			continue;
		add = strlen(name) + h->value.len + 2;
		if (c->chal_len + add > PROXY_OUT_MAX / 2)
			return; /* bounded: the answer must still fit */
		grown = realloc(c->chal, c->chal_len + add);
		if (!grown)
			return;
		c->chal = grown;
		memcpy(c->chal + c->chal_len, name, strlen(name));
		c->chal_len += strlen(name);
		memcpy(c->chal + c->chal_len, h->value.p, h->value.len);
		c->chal_len += h->value.len;
		memcpy(c->chal + c->chal_len, "\r\n", 2);
		c->chal_len += 2;
	}
}

/* Add to the answer in p->out (@p n bytes) the kept challenge lines it
 * does not carry yet, before the end of its header section.
 * @return the new length. */
static size_t add_challenges(struct pcall *c, size_t n)
{
	struct proxy *p = c->p;
	const char *end = memmem(p->out, n, "\r\n\r\n", 4);
	size_t at, off = 0;

	if (!end || !c->chal)
		return n;
	at = (size_t)(end - p->out) + 2; /* after the last header's CRLF */
	while (off < c->chal_len) {
		const char *nl = memchr(c->chal + off, '\n', c->chal_len - off);
		size_t len = (size_t)(nl - (c->chal + off)) + 1;

		/* the best answer's own lines are there already */
		if (!memmem(p->out, at, c->chal + off, len) &&
		    n + len <= sizeof(p->out)) {
			memmove(p->out + at + len, p->out + at, n - at);
			memcpy(p->out + at, c->chal + off, len);
			at += len;
			n += len;
		}
		off += len;
	}
	return n;
}

static void keep_best(struct pcall *c, const struct sip_msg *m, unsigned st)
{
	if (m && (st == 401 || st == 407))
		keep_challenges(c, m);
	if (c->best_status && rank(st) >= rank(c->best_status))
		return;
	free(c->best);
	c->best = m ? dup_mem(m->buf, m->len) : NULL;
	c->best_len = m && c->best ? m->len : 0;
	c->best_status = st;
}

static void forward_response(struct pcall *c, const struct sip_msg *m)
{
	struct proxy *p = c->p;
	int n = strip_top_via(p, m);

	if (n <= 0)
		return;
	if (c->stxn && sip_txn_respond(c->stxn, p->out, (size_t)n, p->now) == 0)
		return;
	/* a later 2xx after a final non-2xx answer, or after the server
	 * transaction ended: straight to the caller (§16.7 step 5) */
	if (m->status >= 200 && m->status < 300)
		send_to(p, &c->src, p->out, (size_t)n);
}

static void on_branch_response(struct pbranch *b, const struct sip_msg *m)
{
	struct pcall *c = b->call;
	unsigned st = m->status;

	if (st < 200) {
		if (st == 100)
			return;
		b->provisional = true;
		if (b->cancel_wanted) {
			send_cancel(b);
			return;
		}
		if (!c->final_sent)
			forward_response(c, m);
		return;
	}
	if (st < 300) {
		/* every 2xx goes up at once, even after a CANCEL */
		bool first = !c->got_2xx;

		b->status = st;
		c->got_2xx = true;
		forward_response(c, m);
		if (first) {
			c->final_sent = true;
			call_close(c);
			untime(c);
			cancel_others(c, b,
				      "SIP;cause=200;text=\"Call completed "
				      "elsewhere\"");
		}
		return;
	}
	if (b->status && b->status != 487) {
		return;
	}
	b->status = st;
	if (st >= 600) {
		char reason[96];

		c->got_6xx = true;
		snprintf(reason, sizeof(reason), "SIP;cause=%u;text=\"%s\"", st,
			 sip_reason_phrase(st));
		keep_best(c, m, st);
		cancel_others(c, b, reason);
		if (!c->final_sent)
			send_best(c);
		return;
	}
	keep_best(c, m, st);
	if (st == 503)
		failover(b);
	call_check(c);
}

/* ------------------------------------------------------------------------ */
/* Transaction callbacks                                                    */
/* ------------------------------------------------------------------------ */

static void process(struct proxy *p, struct sip_txn *stxn,
		    const struct sip_msg *m);
static void forward_stateless(struct proxy *p, const struct sip_msg *m);

static void txn_request_cb(struct sip_txn *txn, const struct sip_msg *m,
			   void *arg)
{
	struct proxy *p = arg;

	if (m->method_id == SIP_METHOD_ACK) {
		/* RFC 6026: the ACK of a 2xx on the INVITE's transaction */
		forward_stateless(p, m);
		return;
	}
	process(p, txn, m);
}

static void txn_response_cb(struct sip_txn *txn, const struct sip_msg *m,
			    void *arg)
{
	enum obj_kind *k = sip_txn_user(txn);
	struct pcall *c;

	(void)arg;
	if (!k || *k != OBJ_BRANCH)
		return; /* the answer to our CANCEL */
	c = ((struct pbranch *)(void *)k)->call;
	c->busy++;
	on_branch_response((struct pbranch *)(void *)k, m);
	c->busy--;
	call_maybe_free(c);
}

/* A branch that never got a final answer: 408 (or 503 for a transport
 * failure), and its transaction goes away; with @p fo the next target of
 * its lookup is tried (RFC 3263 §4.3). */
static void branch_gone(struct pbranch *b, unsigned status, bool fo)
{
	struct pcall *c = b->call;

	c->busy++;
	if (!b->status) {
		b->status = status;
		keep_best(c, NULL, status);
		if (fo)
			failover(b);
		call_check(c);
	}
	c->busy--;
}

static void txn_timeout_cb(struct sip_txn *txn, enum sip_txn_timer t, void *arg)
{
	enum obj_kind *k = sip_txn_user(txn);

	(void)arg;
	if (!k)
		return;
	if (*k == OBJ_CANCEL) {
		/* no answer to the CANCEL: give up on the branch */
		struct pbranch *b = ((struct pcancel *)(void *)k)->branch;
		struct pcall *c = b->call;

		c->busy++;
		branch_gone(b, 408, false);
		if (b->txn) {
			sip_txn_destroy(b->txn);
			b->txn = NULL;
			c->live_txns--;
		}
		c->busy--;
		return;
	}
	if (*k != OBJ_BRANCH)
		return;
	struct pbranch *b = (struct pbranch *)(void *)k;
	if (t == SIP_TXN_TIMER_C) {
		/* §16.8: ringing too long: CANCEL, or give up when it
		 * never rang */
		if (b->provisional) {
			branch_cancel(b, NULL);
			return;
		}
	}
	branch_gone(b, 408, t == SIP_TXN_TIMER_B || t == SIP_TXN_TIMER_F);
}

static void txn_error_cb(struct sip_txn *txn, int err, void *arg)
{
	enum obj_kind *k = sip_txn_user(txn);

	(void)arg;
	(void)err;
	if (k && *k == OBJ_BRANCH)
		branch_gone((struct pbranch *)(void *)k, 503, true);
}

static void p_gone(void *arg, void *obj)
{
	((struct proxy *)arg)->gone = obj;
}

static void txn_terminated_cb(struct sip_txn *txn, void *arg)
{
	enum obj_kind *k = sip_txn_user(txn);
	struct pcall *c = NULL;

	if (!k)
		return;
	sip_txn_set_user(txn, NULL);
	p_gone(arg, k);
	switch (*k) {
	case OBJ_CALL:
		c = (struct pcall *)(void *)k;
		c->stxn = NULL;
		break;
	case OBJ_BRANCH: {
		struct pbranch *b = (struct pbranch *)(void *)k;
		c = b->call;
		if (!b->status) {
			c->busy++;
			branch_gone(b, 408, false);
			c->busy--;
		}
		b->txn = NULL;
		c->live_txns--;
		break;
	}
	case OBJ_CANCEL: {
		struct pcancel *pc = (struct pcancel *)(void *)k;
		struct pcancel **pp;
		c = pc->branch->call;
		for (pp = &c->cancels; *pp && *pp != pc; pp = &(*pp)->next)
			;
		if (*pp)
			*pp = pc->next;
		free(pc);
		c->live_txns--;
		break;
	}
	}
	if (c)
		call_maybe_free(c);
}

/* ------------------------------------------------------------------------ */
/* Request processing (§16.3–§16.5)                                         */
/* ------------------------------------------------------------------------ */

struct lookup_ctx {
	struct proxy *p;
	unsigned n;
};

static int on_binding(const struct loc_binding *b, void *arg)
{
	struct lookup_ctx *lc = arg;
	struct target *t;

	if (lc->n >= PROXY_MAX_TARGETS)
		return 1;
	t = &lc->p->tmp[lc->n];
	memset(t, 0, sizeof(*t));
	t->uri = dup_mem(b->contact.p, b->contact.len);
	t->path = b->path.len ? dup_mem(b->path.p, b->path.len) : NULL;
	if (!t->uri)
		return 1;
	t->q = b->q;
	t->expires = b->expires;
	if (b->conn_id && b->transport) {
		/* RFC 5626: the flow the binding came over */
		struct sip_uri u;
		char host[INET6_ADDRSTRLEN + 2];
		const char *colon;
		size_t hl;

		t->flow.transport = b->transport;
		t->flow.conn = b->conn_id;
		/* "192.0.2.1:5060" or "[::1]:5060" */
		colon = memrchr(b->source.p, ':', b->source.len);
		hl = colon ? (size_t)(colon - b->source.p) : 0;
		if (colon && hl < sizeof(host)) {
			char buf[INET6_ADDRSTRLEN + 16];
			int n = snprintf(buf, sizeof(buf), "sip:%.*s",
					 SIP_STR_FMT(b->source));
			if (n > 0 && (size_t)n < sizeof(buf) &&
			    sip_uri_parse((sip_str){buf, (size_t)n}, &u) == 0 &&
			    resolve(lc->p, (sip_str){buf, (size_t)n}, &t->flow,
				    NULL) == 0) {
				t->flow.transport = b->transport;
				t->flow.conn = b->conn_id;
				t->has_flow = true;
			}
		}
	}
	lc->n++;
	return 0;
}

static int64_t wall(const struct proxy *p)
{
	return p->cfg.wall_now ? p->cfg.wall_now(p->arg) : (int64_t)time(NULL);
}

/* Bindings of the AOR of @p ruri into p->tmp, q descending (stable). */
static unsigned lookup(struct proxy *p, const struct sip_uri *u)
{
	char aor[1024], canon[1024];
	struct lookup_ctx lc = {p, 0};
	int n;

	n = snprintf(aor, sizeof(aor), "%s:%.*s@%.*s",
		     u->scheme == SIP_URI_SIPS ? "sips" : "sip",
		     SIP_STR_FMT(u->user), SIP_STR_FMT(u->host));
	if (n < 0 || (size_t)n >= sizeof(aor))
		return 0;
	n = loc_aor_canon((sip_str){aor, (size_t)n}, canon, sizeof(canon));
	if (n < 0)
		return 0;
	loc_store_lookup(p->cfg.store, (sip_str){canon, (size_t)n}, wall(p),
			 on_binding, &lc);
	if (lc.n == 0 && u->scheme == SIP_URI_SIPS) {
		/* a sips request reaches the bindings of the sip AOR too */
		n = loc_aor_canon((sip_str){aor + 1, strlen(aor) - 1}, canon,
				  sizeof(canon));
		if (n > 0)
			loc_store_lookup(p->cfg.store,
					 (sip_str){canon, (size_t)n}, wall(p),
					 on_binding, &lc);
	}
	/* insertion sort by q, highest first, keeping the store's order */
	for (unsigned i = 1; i < lc.n; i++) {
		struct target t = p->tmp[i];
		unsigned j = i;

		while (j > 0 && p->tmp[j - 1].q < t.q) {
			p->tmp[j] = p->tmp[j - 1];
			j--;
		}
		p->tmp[j] = t;
	}
	p->ntmp = lc.n;
	return lc.n;
}

static bool trusted(const struct proxy *p, const struct proxy_peer *src)
{
	for (unsigned i = 0; i < p->cfg.ntrusted; i++) {
		const struct sockaddr_storage *t = &p->cfg.trusted[i];

		if (t->ss_family != src->addr.ss_family)
			continue;
		if (t->ss_family == AF_INET &&
		    ((const struct sockaddr_in *)t)->sin_addr.s_addr ==
			    ((const struct sockaddr_in *)&src->addr)
				    ->sin_addr.s_addr)
			return true;
		if (t->ss_family == AF_INET6 &&
		    !memcmp(&((const struct sockaddr_in6 *)t)->sin6_addr,
			    &((const struct sockaddr_in6 *)&src->addr)
				     ->sin6_addr,
			    16))
			return true;
	}
	return false;
}

/* Digest authentication of a caller from one of our domains.
 * @return 0 to go on, else the request is answered. */
static int authenticate(struct proxy *p, struct sip_txn *stxn,
			const struct sip_msg *m)
{
	struct sip_addr from;
	struct sip_digest_info info;
	enum sip_digest_result r;
	struct sip_writer w;

	if (!p->cfg.digest || !p->cb.auth_on || !p->cb.auth_on(p->arg))
		return 0;
	if (m->method_id == SIP_METHOD_ACK ||
	    m->method_id == SIP_METHOD_CANCEL || tag_of(m, SIP_HDR_TO).len ||
	    trusted(p, p->cur_src))
		return 0;
	if (sip_addr_parse(hdr_value(m, SIP_HDR_FROM), &from) < 0 ||
	    (from.uri.scheme != SIP_URI_SIP &&
	     from.uri.scheme != SIP_URI_SIPS) ||
	    !serves(p, from.uri.host))
		return 0;
	r = sip_digest_verify_msg(p->cfg.digest, m, true, from.uri.host, &info);
	if (r == SIP_DIGEST_OK) {
		int a = sip_digest_aor_check(m, sip_str_c(info.username),
					     from.uri.host);
		if (a == 0)
			return 0;
		respond_simple(p, stxn, m, p->cur_rcvd, 403,
			       "From does not match the credentials");
		return 1;
	}
	if (r != SIP_DIGEST_STALE && r != SIP_DIGEST_MISSING &&
	    r != SIP_DIGEST_BAD_CREDENTIALS) {
		respond_simple(p, stxn, m, p->cur_rcvd, 400,
			       "Bad Proxy-Authorization");
		return 1;
	}
	if (p->cur_out)
		p->cur_out->status = 407;
	resp_begin(p, &w, m, 407, NULL, p->cur_rcvd);
	if (sip_digest_challenge_write(p->cfg.digest, &w, true, from.uri.host,
				       r == SIP_DIGEST_STALE) < 0)
		return respond_simple(p, stxn, m, p->cur_rcvd, 500, NULL), 1;
	resp_finish(p, &w, stxn, p->cur_src);
	return 1;
}

/* The redirect server's answer: 302 with every binding (§8.3). */
static void redirect(struct proxy *p, struct sip_txn *stxn,
		     const struct sip_msg *m, unsigned n)
{
	struct sip_writer w;
	int64_t now = wall(p);

	if (p->cur_out)
		p->cur_out->status = 302;
	resp_begin(p, &w, m, 302, NULL, p->cur_rcvd);
	for (unsigned i = 0; i < n; i++) {
		const struct target *t = &p->tmp[i];
		int64_t left = t->expires > now ? t->expires - now : 0;

		sip_wr_headerf(&w, "Contact", "<%s>;q=%u.%03u;expires=%lld",
			       t->uri, t->q / 1000, t->q % 1000,
			       (long long)left);
	}
	resp_finish(p, &w, stxn, p->cur_src);
}

/* A CANCEL (§16.10): 200, then every pending branch is cancelled. */
static void process_cancel(struct proxy *p, struct sip_txn *stxn,
			   const struct sip_msg *m)
{
	struct sip_txn *inv = sip_txn_table_find_invite(p->txns, m);
	enum obj_kind *k = inv ? sip_txn_user(inv) : NULL;
	struct pcall *c;
	const struct sip_hdr *reason = sip_msg_hdr(m, SIP_HDR_REASON);

	if (!k || *k != OBJ_CALL) {
		respond_simple(p, stxn, m, p->cur_rcvd, 481, NULL);
		return;
	}
	c = (struct pcall *)(void *)k;
	respond_simple(p, stxn, m, p->cur_rcvd, 200, NULL);
	if (c->final_sent)
		return;
	c->busy++;
	c->cancelled = true;
	char rs[96] = "";
	if (reason && reason->value.len < sizeof(rs))
		snprintf(rs, sizeof(rs), "%.*s", SIP_STR_FMT(reason->value));
	cancel_others(c, NULL, rs[0] ? rs : NULL);
	call_check(c);
	c->busy--;
	call_maybe_free(c);
}

/* The request callback of a new server transaction: §16.3 to §16.6. */
static void process(struct proxy *p, struct sip_txn *stxn,
		    const struct sip_msg *m)
{
	static const char *const methods[] = {NULL};
	static const struct sip_caps caps = {NULL, NULL, NULL};
	const struct sip_via_rcvd *rcvd = p->cur_rcvd;
	struct sip_error err = {0};
	sip_str rest[PROXY_MAX_ROUTES], all[PROXY_MAX_ROUTES];
	unsigned nrest = 0, nall, first = 0;
	struct sip_uri ruri;
	sip_str ruri_text = m->ruri;
	struct sip_addr a;
	struct pcall *c = sip_txn_user(stxn);
	int status;
	uint32_t lh;

	(void)methods;
	if (!c)
		return;
	c->stxn = stxn;
	if (m->method_id == SIP_METHOD_CANCEL) {
		process_cancel(p, stxn, m);
		return;
	}
	/* §16.3: 483, 420 (Proxy-Require), 416 */
	status = sip_request_verdict(m, SIP_ROLE_PROXY, &caps, &err);
	if (status > 0) {
		struct sip_writer w;
		char tags[512];
		int n;

		if (p->cur_out)
			p->cur_out->status = (unsigned)status;
		resp_begin(p, &w, m, (unsigned)status, err.reason, rcvd);
		if (status == 420) {
			n = sip_unsupported_tags(m, SIP_ROLE_PROXY, &caps, tags,
						 sizeof(tags));
			if (n > 0)
				sip_wr_header(&w, "Unsupported",
					      (sip_str){tags, (size_t)n});
		}
		resp_finish(p, &w, stxn, p->cur_src);
		return;
	}
	lh = loop_hash(m);
	if (is_loop(p, m, lh)) {
		respond_simple(p, stxn, m, rcvd, 482, NULL);
		return;
	}
	if (p->nopen > p->cfg.max_calls) {
		struct sip_writer w;

		if (p->cur_out)
			p->cur_out->status = 503;
		resp_begin(p, &w, m, 503, NULL, rcvd);
		sip_wr_headerf(&w, "Retry-After", "%u", p->cfg.retry_after);
		resp_finish(p, &w, stxn, p->cur_src);
		return;
	}
	if (authenticate(p, stxn, m))
		return;

	/* §16.4: Route information */
	nall = route_values(m, all, PROXY_MAX_ROUTES);
	if (sip_uri_parse(m->ruri, &ruri) < 0) {
		respond_simple(p, stxn, m, rcvd, 400, "Bad Request-URI");
		return;
	}
	if (nall && uri_is_me(p, &ruri) && !ruri.user.len &&
	    route_uri(all[nall - 1], &a) == 0) {
		/* a strict router before us put our Record-Route URI in the
		 * Request-URI: the real one is the last Route */
		ruri_text = a.uri_text;
		nall--;
		if (sip_uri_parse(ruri_text, &ruri) < 0) {
			respond_simple(p, stxn, m, rcvd, 400, "Bad Route");
			return;
		}
	}
	first = own_routes(p, all, nall);
	for (unsigned i = first; i < nall; i++)
		rest[nrest++] = all[i];

	c->busy++;
	c->loop_hash = lh;

	/* §16.5: the targets */
	if (nrest || !uri_is_me(p, &ruri)) {
		c->targets[0].uri = dup_mem(ruri_text.p, ruri_text.len);
		c->targets[0].q = 1000;
		c->ntargets = c->targets[0].uri ? 1 : 0;
	} else if (!ruri.user.len) {
		respond_simple(p, stxn, m, rcvd, 404, "No user in Request-URI");
		goto done;
	} else {
		unsigned n = lookup(p, &ruri);

		if (n == 0) {
			int r = p->cb.user_exists
					? p->cb.user_exists(p->arg, ruri.user,
							    ruri.host)
					: -ENOENT;
			respond_simple(p, stxn, m, rcvd, r == 1 ? 480 : 404,
				       NULL);
			if (p->cur_out)
				p->cur_out->note =
					r == 1 ? "no binding" : "unknown user";
			goto done;
		}
		if (p->cfg.mode == PROXY_MODE_REDIRECT) {
			redirect(p, stxn, m, n);
			targets_free(p->tmp, n);
			goto done;
		}
		memcpy(c->targets, p->tmp, n * sizeof(c->targets[0]));
		c->ntargets = n;
	}
	if (!c->ntargets) {
		respond_simple(p, stxn, m, rcvd, 500, "Out of memory");
		goto done;
	}
	if (!start_group(c, m, rest, nrest) && !c->final_sent) {
		/* nothing could be sent anywhere */
		call_check(c);
		if (!c->final_sent)
			send_best(c);
	} else {
		call_check(c);
	}
done:
	c->busy--;
	call_maybe_free(c);
}

/* ACK of a 2xx (and any request outside a transaction): §16.11-like
 * stateless forwarding along Route or to the Request-URI. */
static void forward_stateless(struct proxy *p, const struct sip_msg *m)
{
	sip_str all[PROXY_MAX_ROUTES], rest[PROXY_MAX_ROUTES];
	unsigned nall = route_values(m, all, PROXY_MAX_ROUTES), nrest = 0,
		 i = 0;
	struct sip_uri ruri;
	sip_str ruri_text = m->ruri, path = SIP_STR_NULL;
	const struct proxy_peer *flow = NULL;
	struct sip_addr a;
	struct fwd f;
	const struct sip_hdr *via = sip_msg_hdr(m, SIP_HDR_VIA);
	int n;

	if (sip_uri_parse(m->ruri, &ruri) < 0)
		return;
	if (nall && uri_is_me(p, &ruri) && !ruri.user.len &&
	    route_uri(all[nall - 1], &a) == 0) {
		ruri_text = a.uri_text;
		nall--;
		if (sip_uri_parse(ruri_text, &ruri) < 0)
			return;
	}
	for (i = own_routes(p, all, nall); i < nall; i++)
		rest[nrest++] = all[i];
	p->ntmp = 0;
	if (!nrest && uri_is_me(p, &ruri)) {
		if (!ruri.user.len || lookup(p, &ruri) == 0)
			return;
		ruri_text = sip_str_c(p->tmp[0].uri);
		if (p->tmp[0].path)
			path = sip_str_c(p->tmp[0].path);
		else if (p->tmp[0].has_flow)
			flow = &p->tmp[0].flow;
	}
	memset(&f, 0, sizeof(f));
	f.rcvd = p->cur_rcvd;
	/* a next hop that needs DNS first is not waited for: the ACK is
	 * dropped (the caller retransmits it while the 2xx comes again) */
	if (plan_forward(p, m, ruri_text, path, rest, nrest, flow, NULL, NULL,
			 &f) == 0) {
		/* the same branch for a retransmission of the ACK */
		uint32_t h = via ? fnv(2166136261u, via->value) : 0;

		f.record_route = false;
		if (make_branch(p, loop_hash(m), h, f.branch,
				sizeof(f.branch)) > 0) {
			n = write_forward(p, m, &f, p->out, sizeof(p->out));
			if (n > 0)
				send_to(p, &f.dest, p->out, (size_t)n);
		}
	}
	targets_free(p->tmp, p->ntmp);
	p->ntmp = 0;
}

/* ------------------------------------------------------------------------ */
/* Public                                                                   */
/* ------------------------------------------------------------------------ */

int proxy_create(const struct proxy_config *cfg,
		 const struct proxy_callbacks *cb, void *arg,
		 struct proxy **out)
{
	struct proxy *p;
	struct sip_txn_config xc;
	struct sip_txn_callbacks tcb = {
		.send = txn_send_cb,
		.request = txn_request_cb,
		.response = txn_response_cb,
		.timeout = txn_timeout_cb,
		.transport_error = txn_error_cb,
		.terminated = txn_terminated_cb,
	};
	int r;

	if (!cfg || !cb || !cb->send || !cfg->store || cfg->worker > 65535 ||
	    cfg->nlocal > PROXY_MAX_LOCAL || cfg->ntrusted > PROXY_MAX_TRUSTED)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->cfg = *cfg;
	p->cb = *cb;
	p->arg = arg;
	if (!p->cfg.fork_timeout_ms)
		p->cfg.fork_timeout_ms = 30000;
	if (!p->cfg.max_calls)
		p->cfg.max_calls = 100000;
	if (!p->cfg.retry_after)
		p->cfg.retry_after = 5;
	p->calls.next = p->calls.prev = &p->calls;
	p->timed.tnext = p->timed.tprev = &p->timed;
	sip_txn_config_default(&xc);
	if (cfg->t1)
		xc.t1 = cfg->t1;
	if (cfg->t2)
		xc.t2 = cfg->t2;
	if (cfg->t4)
		xc.t4 = cfg->t4;
	if (cfg->timer_c)
		xc.timer_c = cfg->timer_c;
	xc.worker = cfg->worker;
	xc.seed = cfg->seed;
	r = sip_txn_table_create(&xc, &tcb, p, &p->txns);
	if (r < 0) {
		free(p);
		return r;
	}
	*out = p;
	return 0;
}

void proxy_destroy(struct proxy *p)
{
	if (!p)
		return;
	sip_txn_table_destroy(p->txns);
	while (p->calls.next != &p->calls) {
		struct pcall *c = p->calls.next;

		c->stxn = NULL;
		c->live_txns = 0;
		c->busy = 0;
		call_free(c);
	}
	free(p);
}

bool proxy_wants(struct proxy *p, const struct sip_msg *m)
{
	struct sip_uri u;

	if (m->method_id == SIP_METHOD_REGISTER)
		return false; /* the registrar answers (403 for others) */
	if (sip_msg_hdr(m, SIP_HDR_ROUTE))
		return true;
	if (sip_uri_parse(m->ruri, &u) < 0)
		return true; /* 400 from the proxy */
	return !(uri_is_me(p, &u) && !u.user.len);
}

int proxy_request(struct proxy *p, const struct sip_msg *msg,
		  const struct proxy_peer *src, const struct sip_via_rcvd *rcvd,
		  uint64_t now, struct proxy_outcome *o)
{
	struct proxy_outcome dummy;
	struct sip_txn *txn = NULL;
	int r;

	if (!o)
		o = &dummy;
	memset(o, 0, sizeof(*o));
	p->now = now;
	p->cur_src = src;
	p->cur_rcvd = rcvd;
	p->cur_out = o;
	r = sip_txn_table_recv(p->txns, msg, now, NULL);
	if (r == 1) {
		o->note = "matched a transaction";
		r = 0;
	} else if (r == 0 && msg->method_id == SIP_METHOD_ACK) {
		forward_stateless(p, msg);
		o->note = "ACK forwarded";
	} else if (r == 0) {
		struct pcall *c = call_new(p, msg);

		if (!c) {
			r = -ENOMEM;
		} else {
			c->busy++;
			r = sip_txn_server_create(
				p->txns, msg,
				SIP_TXN_PROXY | (src->transport == SIP_TP_UDP
							 ? 0
							 : SIP_TXN_RELIABLE),
				c, now, &txn);
			/* refused at once (404, 480, 407, 503, 302, ...) */
			if (!c->stxn ||
			    sip_txn_state(c->stxn) >= SIP_TXN_COMPLETED)
				call_close(c);
			c->busy--;
			call_maybe_free(c);
		}
		if (r == -EEXIST)
			r = 0;
		if (r < 0)
			o->note = "no transaction";
	}
	p->cur_src = NULL;
	p->cur_rcvd = NULL;
	p->cur_out = NULL;
	return r < 0 ? r : 0;
}

int proxy_response(struct proxy *p, const struct sip_msg *msg,
		   const struct proxy_peer *src, uint64_t now)
{
	int r;

	(void)src;
	p->now = now;
	r = sip_txn_table_recv(p->txns, msg, now, NULL);
	return r;
}

void proxy_resolved(struct proxy *p, void *token, int status,
		    struct sip_lookup *lk, uint64_t now)
{
	struct pbranch *b = token;
	struct pcall *c;
	struct sip_target t;
	struct proxy_peer peer;
	struct call_ctx x;

	if (!b || !b->resolving) {
		sip_lookup_destroy(lk);
		return;
	}
	c = b->call;
	p->now = now;
	b->resolving = false;
	b->lookup = NULL;
	c->live_txns--;
	c->busy++;
	if (b->status) {
		/* the branch ended meanwhile (CANCEL, 2xx elsewhere, fork
		 * timeout) */
		sip_lookup_destroy(lk);
	} else if (status < 0 || !lk || sip_lookup_next(lk, &t) != 1) {
		sip_lookup_destroy(lk);
		/* out of time: as a branch that was never answered; no
		 * target: as a transport error (§16.9) */
		branch_fail(b, status == -ETIMEDOUT ? 408 : 503);
		call_check(c);
	} else if (ctx_enter(c, &x) < 0) {
		sip_lookup_destroy(lk);
		branch_fail(b, 500);
		call_check(c);
	} else {
		sip_lookup_destroy(b->lk);
		b->lk = lk;
		target_peer(&t, &peer);
		branch_go(c, b, &p->scratch, x.rest, x.nrest, &peer);
		ctx_leave(c, &x);
		call_check(c);
	}
	c->busy--;
	call_maybe_free(c);
}

uint64_t proxy_next_deadline(const struct proxy *p)
{
	uint64_t d = sip_txn_table_next_deadline(p->txns);

	for (const struct pcall *c = p->timed.tnext; c != &p->timed;
	     c = c->tnext)
		if (c->deadline < d)
			d = c->deadline;
	return d;
}

void proxy_expire(struct proxy *p, uint64_t now)
{
	p->now = now;
	sip_txn_table_expire(p->txns, now);
	for (struct pcall *c = p->timed.tnext, *n; c != &p->timed; c = n) {
		n = c->tnext;
		if (c->deadline > now)
			continue;
		untime(c);
		c->busy++;
		/* the group rang long enough: cancel it, try the next */
		for (struct pbranch *b = c->branches; b; b = b->next) {
			if (b->status)
				continue;
			branch_cancel(b, NULL);
			b->status = 408;
			keep_best(c, NULL, 408);
		}
		call_check(c);
		c->busy--;
		call_maybe_free(c);
	}
}

size_t proxy_calls(const struct proxy *p)
{
	return p->ncalls;
}

size_t proxy_txns(const struct proxy *p)
{
	return sip_txn_table_count(p->txns);
}

int proxy_response_owner(const struct sip_msg *msg, unsigned *worker)
{
	const struct sip_hdr *h = sip_msg_hdr(msg, SIP_HDR_VIA);
	struct sip_via v;
	sip_str cur, item;

	if (!h)
		return -ENOENT;
	cur = h->value;
	if (sip_list_next(&cur, &item) <= 0 || sip_via_parse(item, &v) < 0)
		return -ENOENT;
	return sip_branch_worker(v.branch, worker) == 0 ? 0 : -ENOENT;
}
