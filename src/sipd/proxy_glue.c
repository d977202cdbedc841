/**
 * @file proxy_glue.c  The proxy on a worker's libuv loop, and the
 * hand-over queues between workers. See proxy_glue.h.
 */
#include "sipd/proxy_glue.h"

#include "auth/auth.h"
#include "proxy/proxy.h"
#include "registrar/registrar.h"
#include "resolv/resolv.h"
#include "sipd/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------------------ */
/* The hand-over queue: an intrusive MPSC list (Vyukov)                     */
/* ------------------------------------------------------------------------ */

struct hlink {
	_Atomic(struct hlink *) next;
};

struct hnode {
	struct hlink link; /* first: a node is its link */
	unsigned transport;
	struct sockaddr_storage src;
	size_t len;
	char buf[]; /* the message */
};

struct hqueue {
	_Atomic(struct hlink *) head; /* producers push here */
	struct hlink *tail;	      /* the consumer pops here */
	struct hlink stub;
};

static void hq_init(struct hqueue *q)
{
	atomic_store(&q->stub.next, NULL);
	atomic_store(&q->head, &q->stub);
	q->tail = &q->stub;
}

static void hq_push(struct hqueue *q, struct hlink *n)
{
	struct hlink *prev;

	atomic_store_explicit(&n->next, NULL, memory_order_relaxed);
	prev = atomic_exchange_explicit(&q->head, n, memory_order_acq_rel);
	atomic_store_explicit(&prev->next, n, memory_order_release);
}

/* @return a node, or NULL when empty or a push is halfway (*busy set). */
static struct hlink *hq_pop_link(struct hqueue *q, bool *busy)
{
	struct hlink *tail = q->tail, *next;

	*busy = false;
	next = atomic_load_explicit(&tail->next, memory_order_acquire);
	if (tail == &q->stub) {
		if (!next)
			return NULL;
		q->tail = next;
		tail = next;
		next = atomic_load_explicit(&tail->next, memory_order_acquire);
	}
	if (next) {
		q->tail = next;
		return tail;
	}
	if (tail != atomic_load_explicit(&q->head, memory_order_acquire)) {
		*busy = true;
		return NULL;
	}
	hq_push(q, &q->stub);
	next = atomic_load_explicit(&tail->next, memory_order_acquire);
	if (next) {
		q->tail = next;
		return tail;
	}
	*busy = true;
	return NULL;
}

static struct hnode *hq_pop(struct hqueue *q, bool *busy)
{
	return (struct hnode *)(void *)hq_pop_link(q, busy);
}

#define HUB_MAX 64

struct sipd_hub {
	unsigned n;
	_Atomic(struct sipd_glue *) glue[HUB_MAX];
	atomic_ulong handovers;
};

int sipd_hub_create(unsigned workers, struct sipd_hub **out)
{
	struct sipd_hub *h;

	if (workers == 0 || workers > HUB_MAX)
		return -EINVAL;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->n = workers;
	*out = h;
	return 0;
}

void sipd_hub_destroy(struct sipd_hub *hub)
{
	free(hub);
}

unsigned long sipd_hub_handovers(const struct sipd_hub *hub)
{
	return hub ? atomic_load(&hub->handovers) : 0;
}

/* ------------------------------------------------------------------------ */
/* The glue                                                                 */
/* ------------------------------------------------------------------------ */

struct sipd_glue {
	const struct sipd_config *cfg;
	unsigned index;
	uv_loop_t *loop;
	struct sip_tp *tp;
	struct proxy *proxy;
	struct sip_resolver *resolver;
	struct sip_resolv_uv *dns; /* NULL: no DNS (names get 503) */
	uv_timer_t timer;
	uv_async_t wake;
	struct hqueue queue;
	bool closed;
	struct sip_msg msg; /* for handed-over messages */
	struct sip_limits limits;
};

static void glue_log_sip(struct sipd_glue *g, const char *dir,
			 unsigned transport, const struct sockaddr *peer,
			 const char *buf, size_t len)
{
	char uri[SIP_TP_URI_MAX];

	if (!sipd_log_enabled(g->cfg->log, SIPD_LOG_TRACE))
		return;
	if (sip_tp_uri_format(transport, peer, uri, sizeof(uri)) < 0)
		snprintf(uri, sizeof(uri), "?");
	const struct sipd_log_field f[] = {
		SIPD_LF_STR("dir", dir),
		SIPD_LF_STR("peer", uri),
		SIPD_LF_BODY("message", buf, len),
	};
	sipd_log_event(g->cfg->log, SIPD_LOG_TRACE, (int)g->index, "sip", f, 3,
		       "%s %s %zu bytes (proxy)", dir, uri, len);
}

static int g_send(void *arg, const struct proxy_peer *to, const char *buf,
		  size_t len)
{
	struct sipd_glue *g = arg;
	struct sip_tp_dest d = {
		.transport = to->transport,
		.addr = (const struct sockaddr *)&to->addr,
		.conn = to->conn,
		.lsn = to->transport == SIP_TP_UDP ? to->lsn : NULL,
	};
	int r;

	glue_log_sip(g, "send", to->transport, d.addr, buf, len);
	r = sip_tp_send(g->tp, &d, buf, len, NULL);
	if (r < 0)
		sipd_logf(g->cfg->log, SIPD_LOG_WARN, (int)g->index, "send",
			  "proxy send: %s", strerror(-r));
	return r;
}

static bool g_serves(void *arg, sip_str host)
{
	struct sipd_glue *g = arg;

	return g->cfg->registrar && registrar_serves(g->cfg->registrar, host);
}

static int count_user(void *arg, const struct sip_userdb_user *u)
{
	(void)u;
	++*(unsigned *)arg;
	return 1;
}

/* 1: the user exists; 0: the domain has users but not this one. */
static int g_user_exists(void *arg, sip_str user, sip_str domain)
{
	struct sipd_glue *g = arg;
	char ha1[160];
	char dom[256];
	unsigned n = 0;
	int r;

	if (!g->cfg->userdb || domain.len >= sizeof(dom))
		return -ENOENT;
	r = sip_userdb_ha1(g->cfg->userdb, user, domain, SIP_DIGEST_MD5, ha1,
			   sizeof(ha1));
	if (r >= 0)
		return 1;
	memcpy(dom, domain.p, domain.len);
	dom[domain.len] = '\0';
	sip_userdb_user_list(g->cfg->userdb, dom, count_user, &n);
	return n ? 0 : -ENOENT;
}

static bool g_auth_on(void *arg)
{
	struct sipd_glue *g = arg;

	return g->cfg->live && atomic_load(&g->cfg->live->auth);
}

static int64_t g_wall(void *arg)
{
	(void)arg;
	return (int64_t)time(NULL);
}

static void arm(struct sipd_glue *g);

/* ------------------------------------------------------------------------ */
/* DNS: the proxy's lookups with c-ares on the worker's loop                */
/* ------------------------------------------------------------------------ */

/* One lookup of the proxy. Freed by its outcome, or by the proxy's
 * resolve_cancel() when it ended while the glue was closing. */
struct glookup {
	struct sipd_glue *g;
	void *token;
	struct sip_resolv_req *req; /* NULL once the adapter let go */
};

static void g_resolved(int status, struct sip_lookup *lk, void *arg)
{
	struct glookup *l = arg;
	struct sipd_glue *g = l->g;

	l->req = NULL;
	if (g->closed) {
		/* the adapter is going away: the proxy cancels it later */
		sip_lookup_destroy(lk);
		return;
	}
	if (status < 0)
		sipd_logf(g->cfg->log, SIPD_LOG_DEBUG, (int)g->index, "dns",
			  "lookup failed: %s", strerror(-status));
	proxy_resolved(g->proxy, l->token, status, lk, uv_now(g->loop));
	free(l);
	arm(g);
}

static int g_resolve(void *arg, const struct sip_uri *uri, void *token,
		     void **handle)
{
	struct sipd_glue *g = arg;
	struct glookup *l;
	int r;

	if (!g->dns || g->closed)
		return -EHOSTUNREACH;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->g = g;
	l->token = token;
	r = sip_resolv_uv_lookup(g->dns, uri, g_resolved, l, &l->req);
	if (r < 0) {
		free(l);
		return r;
	}
	*handle = l;
	return 0;
}

static void g_resolve_cancel(void *arg, void *handle)
{
	struct glookup *l = handle;

	(void)arg;
	if (!l)
		return;
	if (l->req)
		sip_resolv_uv_cancel(l->req);
	free(l);
}

static uint64_t g_clock(void *arg)
{
	return uv_now(((struct sipd_glue *)arg)->loop);
}

static void on_timer(uv_timer_t *t)
{
	struct sipd_glue *g = t->data;

	proxy_expire(g->proxy, uv_now(g->loop));
	arm(g);
}

static void arm(struct sipd_glue *g)
{
	uint64_t d, now;

	if (g->closed)
		return;
	d = proxy_next_deadline(g->proxy);
	now = uv_now(g->loop);
	if (d == UINT64_MAX) {
		uv_timer_stop(&g->timer);
		return;
	}
	uv_timer_start(&g->timer, on_timer, d > now ? d - now : 0, 0);
}

static void handed(struct sipd_glue *g, struct hnode *n)
{
	struct sip_error err;
	struct proxy_peer src = {.transport = n->transport};

	if (sip_msg_parse(&g->msg, n->buf, n->len, SIP_FRAMING_DATAGRAM,
			  &g->limits, &err) == 0 &&
	    !g->msg.is_request) {
		src.addr = n->src;
		glue_log_sip(g, "handed", n->transport,
			     (const struct sockaddr *)&n->src, n->buf, n->len);
		proxy_response(g->proxy, &g->msg, &src, uv_now(g->loop));
	}
	free(n);
}

static void on_wake(uv_async_t *a)
{
	struct sipd_glue *g = a->data;
	struct hnode *n;
	bool busy;

	while ((n = hq_pop(&g->queue, &busy)))
		handed(g, n);
	if (busy) /* a push is halfway: look again */
		uv_async_send(&g->wake);
	arm(g);
}

static void copy_ss(struct sockaddr_storage *d, const struct sockaddr *s)
{
	memset(d, 0, sizeof(*d));
	memcpy(d, s,
	       s->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
					: sizeof(struct sockaddr_in));
}

/* "DOMAIN=TARGETS" into the resolver's static routes. */
static int add_routes(struct sipd_glue *g)
{
	const char *const *r = g->cfg->routes;

	for (; r && *r; r++) {
		char dom[256];
		const char *eq = strchr(*r, '=');
		size_t n = eq ? (size_t)(eq - *r) : 0;
		int e;

		if (!eq || n == 0 || n >= sizeof(dom))
			return -EINVAL;
		memcpy(dom, *r, n);
		dom[n] = '\0';
		e = sip_resolver_route_set(g->resolver, dom, eq + 1);
		if (e < 0) {
			sipd_logf(g->cfg->log, SIPD_LOG_ERROR, (int)g->index,
				  "start", "proxy route %s: %s", *r,
				  strerror(-e));
			return e;
		}
	}
	return 0;
}

int sipd_glue_create(uv_loop_t *loop, struct sip_tp *tp,
		     const struct sipd_config *cfg, unsigned index,
		     struct sip_tp_listener *const *lsn, unsigned n,
		     struct sipd_glue **out)
{
	struct sipd_glue *g = calloc(1, sizeof(*g));
	struct proxy_config pc;
	struct proxy_callbacks cb = {
		.send = g_send,
		.serves = g_serves,
		.user_exists = g_user_exists,
		.auth_on = g_auth_on,
		.resolve = g_resolve,
		.resolve_cancel = g_resolve_cancel,
	};
	struct sip_resolv_config rc = {0};
	struct sip_resolv_uv_config uc = {0};
	int r;

	if (!g)
		return -ENOMEM;
	g->cfg = cfg;
	g->index = index;
	g->loop = loop;
	g->tp = tp;
	sip_limits_default(&g->limits);
	hq_init(&g->queue);
	rc.transports = SIP_TP_UDP | SIP_TP_TCP | SIP_TP_TLS;
	rc.families = SIP_RESOLV_IPV4 | SIP_RESOLV_IPV6;
	rc.seed = (uint32_t)uv_hrtime();
	/* answers cached per their TTL, "no such name" and "no records"
	 * for neg_ttl, on the loop's clock */
	rc.clock = g_clock;
	rc.clock_arg = g;
	rc.cache_max = 4096;
	rc.neg_ttl = 60;
	r = sip_resolver_create(&rc, &g->resolver);
	if (r < 0 || (r = add_routes(g)) < 0)
		goto fail;
	uc.servers = cfg->dns;
	uc.system_servers = !cfg->dns;
	uc.lookup_timeout_ms = cfg->dns_timeout ? cfg->dns_timeout : 4000;
	uc.query_timeout_ms = uc.lookup_timeout_ms < 4000
				      ? (uc.lookup_timeout_ms + 1) / 2
				      : 2000;
	r = sip_resolv_uv_create(loop, g->resolver, &uc, &g->dns);
	if (r < 0) {
		sipd_logf(cfg->log, SIPD_LOG_WARN, (int)index, "start",
			  "proxy DNS (%s): %s; only static routes and numeric "
			  "hosts are reached",
			  cfg->dns ? cfg->dns : "/etc/resolv.conf",
			  strerror(-r));
		g->dns = NULL;
	}

	proxy_config_default(&pc);
	pc.mode = cfg->mode == 2 ? PROXY_MODE_REDIRECT : PROXY_MODE_PROXY;
	pc.worker = index;
	pc.seed = uv_hrtime() ^ ((uint64_t)index << 40);
	pc.store = cfg->store;
	pc.resolver = g->resolver;
	pc.digest = cfg->digest;
	pc.wall_now = g_wall;
	if (cfg->fork_timeout)
		pc.fork_timeout_ms = cfg->fork_timeout;
	for (unsigned i = 0; i < n && pc.nlocal < PROXY_MAX_LOCAL; i++) {
		unsigned t = sip_tp_listener_transport(lsn[i]);

		if (t != SIP_TP_UDP && t != SIP_TP_TCP && t != SIP_TP_TLS)
			continue;
		if (sip_tp_listener_addr(lsn[i], &pc.local[pc.nlocal].addr) < 0)
			continue;
		pc.local[pc.nlocal++].transport = t;
	}
	for (const char *const *t = cfg->trusted;
	     t && *t && pc.ntrusted < PROXY_MAX_TRUSTED; t++) {
		struct sockaddr_storage *ss = &pc.trusted[pc.ntrusted];
		struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;

		memset(ss, 0, sizeof(*ss));
		if (inet_pton(AF_INET, *t, &a4->sin_addr) == 1)
			a4->sin_family = AF_INET;
		else if (inet_pton(AF_INET6, *t, &a6->sin6_addr) == 1)
			a6->sin6_family = AF_INET6;
		else
			continue;
		pc.ntrusted++;
	}
	r = proxy_create(&pc, &cb, g, &g->proxy);
	if (r < 0) {
		sip_resolv_uv_destroy(g->dns);
		goto fail;
	}
	g->timer.data = g;
	g->wake.data = g;
	uv_timer_init(loop, &g->timer);
	uv_async_init(loop, &g->wake, on_wake);
	if (cfg->hub && index < cfg->hub->n)
		atomic_store(&cfg->hub->glue[index], g);
	*out = g;
	return 0;
fail:
	sip_resolver_destroy(g->resolver);
	free(g);
	return r;
}

static void closed_cb(uv_handle_t *h)
{
	(void)h;
}

void sipd_glue_close(struct sipd_glue *g)
{
	if (!g || g->closed)
		return;
	g->closed = true;
	if (g->cfg->hub && g->index < g->cfg->hub->n)
		atomic_store(&g->cfg->hub->glue[g->index], NULL);
	uv_close((uv_handle_t *)&g->timer, closed_cb);
	uv_close((uv_handle_t *)&g->wake, closed_cb);
	/* lookups in flight end here; the proxy frees their records */
	sip_resolv_uv_destroy(g->dns);
	g->dns = NULL;
}

void sipd_glue_free(struct sipd_glue *g)
{
	struct hnode *n;
	bool busy;

	if (!g)
		return;
	while ((n = hq_pop(&g->queue, &busy)))
		free(n);
	proxy_destroy(g->proxy);
	sip_resolver_destroy(g->resolver);
	free(g);
}

bool sipd_glue_wants(struct sipd_glue *g, const struct sip_msg *msg)
{
	return proxy_wants(g->proxy, msg);
}

void sipd_glue_request(struct sipd_glue *g, const struct sip_msg *msg,
		       const struct sip_tp_rx *rx,
		       const struct sockaddr_storage *reply,
		       const struct sip_via_rcvd *rcvd, struct sipd_outcome *o)
{
	struct proxy_peer src = {
		.transport = rx->transport,
		.addr = *reply,
		.conn = rx->conn,
		.lsn = rx->transport == SIP_TP_UDP ? rx->lsn : NULL,
	};
	struct proxy_outcome po;

	proxy_request(g->proxy, msg, &src, rcvd, uv_now(g->loop), &po);
	o->status = po.status;
	o->reason = po.status ? sip_reason_phrase(po.status) : NULL;
	o->note = po.note	? po.note
		  : po.branches ? "forwarded"
				: (po.status ? NULL : "proxied");
	arm(g);
}

void sipd_glue_response(struct sipd_glue *g, const struct sip_msg *msg,
			const struct sip_tp_rx *rx, struct sipd_outcome *o)
{
	unsigned owner;
	struct proxy_peer src = {.transport = rx->transport, .conn = rx->conn};
	struct sipd_hub *hub = g->cfg->hub;

	if (proxy_response_owner(msg, &owner) == 0 && owner != g->index) {
		struct sipd_glue *to = hub && owner < hub->n
					       ? atomic_load(&hub->glue[owner])
					       : NULL;
		struct hnode *n;

		if (!to) {
			o->note = "response for an unknown worker";
			return;
		}
		n = malloc(sizeof(*n) + msg->len);
		if (!n) {
			o->note = "out of memory";
			return;
		}
		n->transport = rx->transport;
		copy_ss(&n->src, rx->src);
		n->len = msg->len;
		memcpy(n->buf, msg->buf, msg->len);
		hq_push(&to->queue, &n->link);
		uv_async_send(&to->wake);
		atomic_fetch_add(&hub->handovers, 1);
		o->note = "handed over";
		return;
	}
	copy_ss(&src.addr, rx->src);
	o->note = proxy_response(g->proxy, msg, &src, uv_now(g->loop)) == 1
			  ? "response forwarded"
			  : "stray response";
	arm(g);
}
