/**
 * @file resolv.c  RFC 3263 server location, sans-I/O: the lookup plan
 * (static route, numeric host, NAPTR, SRV, A/AAAA), RFC 2782 SRV ordering,
 * the TTL cache with negative entries, and the failover iterator.
 */
#include "resolv/resolv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Small helpers                                                            */
/* ------------------------------------------------------------------------ */

const char *sip_transport_name(unsigned tp)
{
	switch (tp) {
	case SIP_TP_UDP:
		return "udp";
	case SIP_TP_TCP:
		return "tcp";
	case SIP_TP_TLS:
		return "tls";
	case SIP_TP_WS:
		return "ws";
	case SIP_TP_WSS:
		return "wss";
	default:
		return "?";
	}
}

static uint16_t default_port(unsigned tp)
{
	switch (tp) {
	case SIP_TP_TLS:
		return 5061;
	case SIP_TP_WS:
		return 80;
	case SIP_TP_WSS:
		return 443;
	default:
		return 5060;
	}
}

/** Copy a DNS name lower-cased, without a trailing dot.
 * @return 0 or -EINVAL (empty, too long, NUL inside). */
static int name_copy(char *dst, const char *src, size_t len)
{
	if (len > 0 && src[len - 1] == '.')
		len--;
	if (len == 0 || len >= SIP_RESOLV_NAME_MAX)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (src[i] == '\0')
			return -EINVAL;
		dst[i] = sip_lower(src[i]);
	}
	dst[len] = '\0';
	return 0;
}

static bool ieq(const char *a, const char *b)
{
	return sip_str_ieq(sip_str_c(a), sip_str_c(b));
}

/** Transport named by a transport= value, 0 when unknown. */
static unsigned transport_from_param(sip_str v)
{
	static const struct {
		const char *name;
		unsigned tp;
	} map[] = {{"udp", SIP_TP_UDP},
		   {"tcp", SIP_TP_TCP},
		   {"tls", SIP_TP_TLS},
		   {"ws", SIP_TP_WS},
		   {"wss", SIP_TP_WSS}};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (sip_str_ieq_c(v, map[i].name))
			return map[i].tp;
	return 0;
}

/** Parse a numeric host (IPv6 without brackets). @return 4, 6 or 0. */
static int parse_numeric(const char *host, uint8_t addr[16])
{
	if (inet_pton(AF_INET, host, addr) == 1)
		return 4;
	if (inet_pton(AF_INET6, host, addr) == 1)
		return 6;
	return 0;
}

int sip_target_format(const struct sip_target *t, char *buf, size_t cap)
{
	char ip[INET6_ADDRSTRLEN];
	int n;

	if (!inet_ntop(t->family == 6 ? AF_INET6 : AF_INET, t->addr, ip,
		       sizeof(ip)))
		return -EINVAL;
	n = snprintf(buf, cap, t->family == 6 ? "%s:[%s]:%u" : "%s:%s:%u",
		     sip_transport_name(t->transport), ip, (unsigned)t->port);
	if (n < 0 || (size_t)n >= cap)
		return -ENOSPC;
	return n;
}

/* ------------------------------------------------------------------------ */
/* Answers: owned copies of record sets                                     */
/* ------------------------------------------------------------------------ */

/** An answer: status 0 (records, maybe none), -ENOENT, or an error. */
struct rrset {
	int status;
	size_t n;
	struct sip_dns_rr *rr; /* one block: records, then their strings */
};

static size_t str_need(const char *s)
{
	return (s ? strlen(s) : 0) + 1;
}

static const char *str_put(char **pool, const char *s)
{
	char *d = *pool;
	size_t n = s ? strlen(s) : 0;

	if (n)
		memcpy(d, s, n);
	d[n] = '\0';
	*pool += n + 1;
	return d;
}

static bool rr_usable(const struct sip_dns_rr *rr, enum sip_dns_type type)
{
	if (rr->type != type)
		return false;
	if (type == SIP_DNS_SRV)
		return rr->srv.target &&
		       strlen(rr->srv.target) < SIP_RESOLV_NAME_MAX;
	if (type == SIP_DNS_NAPTR)
		return rr->naptr.replacement &&
		       strlen(rr->naptr.replacement) < SIP_RESOLV_NAME_MAX;
	return true;
}

/** Copy the records of type @p type (at most SIP_RESOLV_MAX_RRS).
 * @return 0 or -ENOMEM. */
static int rrset_copy(struct rrset *dst, int status, enum sip_dns_type type,
		      const struct sip_dns_rr *rrs, size_t n)
{
	size_t keep = 0, bytes = 0;
	char *pool;

	dst->status = status;
	dst->n = 0;
	dst->rr = NULL;
	if (status != 0 || !rrs)
		return 0;
	for (size_t i = 0; i < n && keep < SIP_RESOLV_MAX_RRS; i++) {
		const struct sip_dns_rr *rr = &rrs[i];

		if (!rr_usable(rr, type))
			continue;
		keep++;
		bytes += sizeof(*rr);
		if (type == SIP_DNS_SRV)
			bytes += str_need(rr->srv.target);
		else if (type == SIP_DNS_NAPTR)
			bytes += str_need(rr->naptr.flags) +
				 str_need(rr->naptr.service) +
				 str_need(rr->naptr.regexp) +
				 str_need(rr->naptr.replacement);
	}
	if (keep == 0)
		return 0;
	dst->rr = malloc(bytes);
	if (!dst->rr)
		return -ENOMEM;
	pool = (char *)(dst->rr + keep);
	for (size_t i = 0; i < n && dst->n < keep; i++) {
		const struct sip_dns_rr *rr = &rrs[i];
		struct sip_dns_rr *d;

		if (!rr_usable(rr, type))
			continue;
		d = &dst->rr[dst->n++];
		*d = *rr;
		if (type == SIP_DNS_SRV) {
			d->srv.target = str_put(&pool, rr->srv.target);
		} else if (type == SIP_DNS_NAPTR) {
			d->naptr.flags = str_put(&pool, rr->naptr.flags);
			d->naptr.service = str_put(&pool, rr->naptr.service);
			d->naptr.regexp = str_put(&pool, rr->naptr.regexp);
			d->naptr.replacement =
				str_put(&pool, rr->naptr.replacement);
		}
	}
	return 0;
}

static int rrset_dup(struct rrset *dst, const struct rrset *src,
		     enum sip_dns_type type)
{
	return rrset_copy(dst, src->status, type, src->rr, src->n);
}

static void rrset_free(struct rrset *s)
{
	free(s->rr);
	s->rr = NULL;
	s->n = 0;
}

/* ------------------------------------------------------------------------ */
/* Resolver: configuration, cache, routes                                   */
/* ------------------------------------------------------------------------ */

struct centry {
	struct centry *hnext;	    /* hash chain */
	struct centry *prev, *next; /* LRU list, most recent first */
	uint32_t hash;
	enum sip_dns_type type;
	uint64_t expires; /* ms */
	struct rrset set;
	char name[SIP_RESOLV_NAME_MAX];
};

struct rtarget {
	char host[SIP_RESOLV_NAME_MAX];
	int family; /* 4 or 6 for a numeric host, else 0 */
	uint8_t addr[16];
	bool has_port;
	uint16_t port;
	unsigned transport; /* 0: as the URI says */
};

struct route {
	struct route *next;
	char domain[SIP_RESOLV_NAME_MAX];
	size_t n;
	struct rtarget t[SIP_RESOLV_MAX_TARGETS];
};

struct sip_resolver {
	struct sip_resolv_config cfg;
	uint32_t rng;
	struct centry **buckets;
	size_t nbuckets;
	struct centry lru; /* sentinel */
	size_t ncache;
	struct route *routes;
};

static uint32_t next_rand(struct sip_resolver *r)
{
	uint32_t x;

	if (r->cfg.rand)
		return r->cfg.rand(r->cfg.rand_arg);
	x = r->rng; /* xorshift32 */
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	r->rng = x;
	return x;
}

static bool cache_on(const struct sip_resolver *r)
{
	return r->buckets != NULL;
}

static uint64_t now_ms(const struct sip_resolver *r)
{
	return r->cfg.clock(r->cfg.clock_arg);
}

static uint32_t name_hash(const char *name, enum sip_dns_type type)
{
	uint32_t h = 2166136261u ^ (uint32_t)type; /* FNV-1a */

	for (; *name; name++)
		h = (h ^ (uint8_t)*name) * 16777619u;
	return h;
}

static void lru_unlink(struct centry *e)
{
	e->prev->next = e->next;
	e->next->prev = e->prev;
}

static void lru_push(struct sip_resolver *r, struct centry *e)
{
	e->next = r->lru.next;
	e->prev = &r->lru;
	r->lru.next->prev = e;
	r->lru.next = e;
}

static void cache_remove(struct sip_resolver *r, struct centry *e)
{
	struct centry **pp = &r->buckets[e->hash & (r->nbuckets - 1)];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	lru_unlink(e);
	rrset_free(&e->set);
	free(e);
	r->ncache--;
}

/** A live entry for (name, type), or NULL; expired entries are dropped. */
static struct centry *cache_get(struct sip_resolver *r, const char *name,
				enum sip_dns_type type)
{
	uint32_t h;
	struct centry *e;

	if (!cache_on(r))
		return NULL;
	h = name_hash(name, type);
	for (e = r->buckets[h & (r->nbuckets - 1)]; e; e = e->hnext) {
		if (e->hash != h || e->type != type ||
		    strcmp(e->name, name) != 0)
			continue;
		if (now_ms(r) >= e->expires) {
			cache_remove(r, e);
			return NULL;
		}
		lru_unlink(e);
		lru_push(r, e);
		return e;
	}
	return NULL;
}

static uint32_t set_ttl(const struct sip_resolver *r, const struct rrset *s)
{
	uint32_t ttl = r->cfg.max_ttl;

	if (s->status != 0 || s->n == 0)
		return s->status == 0 || s->status == -ENOENT ? r->cfg.neg_ttl
							      : 0;
	for (size_t i = 0; i < s->n; i++)
		if (s->rr[i].ttl < ttl)
			ttl = s->rr[i].ttl;
	return ttl;
}

/** Remember an answer (positive or negative) for its TTL. */
static void cache_put(struct sip_resolver *r, const char *name,
		      enum sip_dns_type type, const struct rrset *s)
{
	struct centry *e;
	uint32_t ttl;
	size_t b;

	if (!cache_on(r))
		return;
	ttl = set_ttl(r, s);
	if (ttl == 0)
		return;
	e = cache_get(r, name, type);
	if (e)
		cache_remove(r, e);
	if (r->ncache >= r->cfg.cache_max)
		cache_remove(r, r->lru.prev);
	e = calloc(1, sizeof(*e));
	if (!e)
		return;
	if (rrset_dup(&e->set, s, type) != 0) {
		free(e);
		return;
	}
	snprintf(e->name, sizeof(e->name), "%s", name);
	e->type = type;
	e->hash = name_hash(name, type);
	e->expires = now_ms(r) + (uint64_t)ttl * 1000u;
	b = e->hash & (r->nbuckets - 1);
	e->hnext = r->buckets[b];
	r->buckets[b] = e;
	lru_push(r, e);
	r->ncache++;
}

void sip_resolver_cache_flush(struct sip_resolver *r)
{
	while (r->ncache)
		cache_remove(r, r->lru.prev);
}

size_t sip_resolver_cache_size(const struct sip_resolver *r)
{
	return r->ncache;
}

int sip_resolver_create(const struct sip_resolv_config *cfg,
			struct sip_resolver **out)
{
	struct sip_resolver *r;

	*out = NULL;
	if (cfg->transports & ~SIP_TP_ALL ||
	    cfg->families & ~(SIP_RESOLV_IPV4 | SIP_RESOLV_IPV6))
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->cfg = *cfg;
	if (!r->cfg.transports)
		r->cfg.transports = SIP_TP_ALL;
	if (!r->cfg.families)
		r->cfg.families = SIP_RESOLV_IPV4;
	if (!r->cfg.max_ttl)
		r->cfg.max_ttl = 86400;
	r->rng = cfg->seed ? cfg->seed : 0x9e3779b9u;
	r->lru.next = r->lru.prev = &r->lru;
	if (cfg->clock && cfg->cache_max) {
		r->nbuckets = 16;
		while (r->nbuckets < cfg->cache_max && r->nbuckets < (1u << 20))
			r->nbuckets <<= 1;
		r->buckets = calloc(r->nbuckets, sizeof(struct centry *));
		if (!r->buckets) {
			free(r);
			return -ENOMEM;
		}
	}
	*out = r;
	return 0;
}

void sip_resolver_destroy(struct sip_resolver *r)
{
	if (!r)
		return;
	if (cache_on(r))
		sip_resolver_cache_flush(r);
	while (r->routes) {
		struct route *next = r->routes->next;

		free(r->routes);
		r->routes = next;
	}
	free(r->buckets);
	free(r);
}

static struct route **route_find(struct sip_resolver *r, const char *domain)
{
	struct route **pp;

	for (pp = &r->routes; *pp; pp = &(*pp)->next)
		if (!strcmp((*pp)->domain, domain))
			return pp;
	return NULL;
}

/** Parse one "host[:port][;transport=x]" of a route. */
static int route_target_parse(sip_str item, struct rtarget *t)
{
	char text[SIP_RESOLV_NAME_MAX + 64];
	struct sip_uri u;
	sip_str host, v;
	int n, rc;

	n = snprintf(text, sizeof(text), "sip:%.*s", SIP_STR_FMT(item));
	if (n < 0 || (size_t)n >= sizeof(text))
		return -EINVAL;
	if (sip_uri_parse(sip_str_c(text), &u) != 0 ||
	    u.host_kind == SIP_HOST_NONE || u.user.p || u.headers.len)
		return -EINVAL;
	memset(t, 0, sizeof(*t));
	host = u.host;
	if (u.host_kind == SIP_HOST_IPV6)
		host = sip_str_sub(host, 1, host.len - 1);
	if (name_copy(t->host, host.p, host.len) != 0)
		return -EINVAL;
	if (u.host_kind != SIP_HOST_NAME) {
		t->family = parse_numeric(t->host, t->addr);
		if (!t->family)
			return -EINVAL;
	}
	t->has_port = u.has_port;
	t->port = u.port;
	rc = sip_param_find(u.params, "transport", &v);
	if (rc < 0)
		return -EINVAL;
	if (rc == 1) {
		t->transport = transport_from_param(v);
		if (!t->transport)
			return -EINVAL;
	}
	return 0;
}

int sip_resolver_route_set(struct sip_resolver *r, const char *domain,
			   const char *targets)
{
	struct route *rt, **pp;
	sip_str rest = sip_str_c(targets), item;
	char name[SIP_RESOLV_NAME_MAX];
	int rc;

	if (!domain || name_copy(name, domain, strlen(domain)) != 0)
		return -EINVAL;
	rt = calloc(1, sizeof(*rt));
	if (!rt)
		return -ENOMEM;
	memcpy(rt->domain, name, sizeof(name));
	while ((rc = sip_list_next(&rest, &item)) == 1) {
		if (rt->n == SIP_RESOLV_MAX_TARGETS ||
		    route_target_parse(item, &rt->t[rt->n]) != 0) {
			rc = -EINVAL;
			break;
		}
		rt->n++;
	}
	if (rc != 0 || rt->n == 0) {
		free(rt);
		return -EINVAL;
	}
	pp = route_find(r, name);
	if (pp) {
		struct route *old = *pp;

		rt->next = old->next;
		*pp = rt;
		free(old);
	} else {
		rt->next = r->routes;
		r->routes = rt;
	}
	return 0;
}

int sip_resolver_route_del(struct sip_resolver *r, const char *domain)
{
	char name[SIP_RESOLV_NAME_MAX];
	struct route **pp, *old;

	if (!domain || name_copy(name, domain, strlen(domain)) != 0)
		return -ENOENT;
	pp = route_find(r, name);
	if (!pp)
		return -ENOENT;
	old = *pp;
	*pp = old->next;
	free(old);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Lookups                                                                  */
/* ------------------------------------------------------------------------ */

enum qstate { Q_NEW, Q_SENT, Q_DONE };
enum phase { PH_NAPTR, PH_SRV, PH_ADDR, PH_DONE };

struct lquery {
	enum sip_dns_type type;
	enum qstate state;
	struct rrset set;
	char name[SIP_RESOLV_NAME_MAX];
};

/** An SRV name to ask, with the transport it stands for. */
struct srv_ent {
	unsigned transport;
	int q;
};

/** A name (or a numeric address) that becomes targets. */
struct host_ent {
	unsigned transport;
	uint16_t port;
	int family; /* numeric: 4 or 6; name: 0 */
	uint8_t addr[16];
	int qa, qaaaa; /* query indexes, -1 when not asked */
	char name[SIP_RESOLV_NAME_MAX];
};

#define MAX_SRV_NAMES 8

struct sip_lookup {
	struct sip_resolver *r;
	enum phase phase;
	bool sips;
	unsigned allowed;    /* transports this URI may use */
	unsigned tp_default; /* transport for A/AAAA without SRV */
	int err;	     /* first failed query */
	int naptr_q;
	char host[SIP_RESOLV_NAME_MAX];
	unsigned nq;
	struct lquery q[SIP_RESOLV_MAX_QUERIES];
	unsigned nsrv;
	struct srv_ent srv[MAX_SRV_NAMES];
	unsigned nhosts;
	struct host_ent hosts[SIP_RESOLV_MAX_TARGETS];
	size_t ntargets, cursor;
	struct sip_target targets[SIP_RESOLV_MAX_TARGETS];
};

/** Index of the query (name, type), added when new; -1 when full. */
static int query_add(struct sip_lookup *lk, const char *name,
		     enum sip_dns_type type)
{
	struct lquery *q;

	for (unsigned i = 0; i < lk->nq; i++)
		if (lk->q[i].type == type && !strcmp(lk->q[i].name, name))
			return (int)i;
	if (lk->nq == SIP_RESOLV_MAX_QUERIES)
		return -1;
	q = &lk->q[lk->nq];
	memset(q, 0, sizeof(*q));
	q->type = type;
	q->state = Q_NEW;
	snprintf(q->name, sizeof(q->name), "%s", name);
	return (int)lk->nq++;
}

static void add_srv(struct sip_lookup *lk, const char *name, unsigned tp)
{
	char n[SIP_RESOLV_NAME_MAX];
	int q;

	if (lk->nsrv == MAX_SRV_NAMES || name_copy(n, name, strlen(name)) != 0)
		return;
	q = query_add(lk, n, SIP_DNS_SRV);
	if (q < 0)
		return;
	lk->srv[lk->nsrv].transport = tp;
	lk->srv[lk->nsrv].q = q;
	lk->nsrv++;
}

/** A host to turn into addresses: numeric now, a name through A/AAAA. */
static void add_host(struct sip_lookup *lk, const char *name, int family,
		     const uint8_t *addr, uint16_t port, unsigned tp)
{
	struct host_ent *h;
	unsigned fam = lk->r->cfg.families;

	if (lk->nhosts == SIP_RESOLV_MAX_TARGETS)
		return;
	h = &lk->hosts[lk->nhosts];
	memset(h, 0, sizeof(*h));
	if (name_copy(h->name, name, strlen(name)) != 0)
		return;
	h->transport = tp;
	h->port = port;
	h->family = family;
	h->qa = h->qaaaa = -1;
	if (family) {
		memcpy(h->addr, addr, family == 6 ? 16 : 4);
	} else {
		if (fam & SIP_RESOLV_IPV4)
			h->qa = query_add(lk, h->name, SIP_DNS_A);
		if (fam & SIP_RESOLV_IPV6)
			h->qaaaa = query_add(lk, h->name, SIP_DNS_AAAA);
	}
	lk->nhosts++;
}

/** The transport to use without NAPTR/SRV: UDP for sip, TLS for sips
 * (§4.1), else the first one allowed; 0 when none is. */
static unsigned pick_default(unsigned allowed, bool sips)
{
	static const unsigned pref[] = {SIP_TP_UDP, SIP_TP_TCP, SIP_TP_TLS,
					SIP_TP_WS, SIP_TP_WSS};

	if (sips && (allowed & SIP_TP_TLS))
		return SIP_TP_TLS;
	for (size_t i = 0; i < sizeof(pref) / sizeof(pref[0]); i++)
		if (allowed & pref[i])
			return pref[i];
	return 0;
}

static unsigned naptr_transport(const char *service)
{
	static const struct {
		const char *service;
		unsigned tp;
	} map[] = {{"SIP+D2U", SIP_TP_UDP},
		   {"SIP+D2T", SIP_TP_TCP},
		   {"SIPS+D2T", SIP_TP_TLS},
		   {"SIP+D2W", SIP_TP_WS},
		   {"SIPS+D2W", SIP_TP_WSS}};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (ieq(service, map[i].service))
			return map[i].tp;
	return 0;
}

static bool naptr_usable(const struct sip_lookup *lk,
			 const struct sip_dns_rr *rr)
{
	const char *rep = rr->naptr.replacement;

	return ieq(rr->naptr.flags, "s") && rr->naptr.regexp[0] == '\0' &&
	       rep[0] != '\0' && strcmp(rep, ".") != 0 &&
	       (naptr_transport(rr->naptr.service) & lk->allowed);
}

/** SRV names of the standard services we may use (no usable NAPTR). */
static void plan_srv_fallback(struct sip_lookup *lk)
{
	static const struct {
		const char *prefix;
		unsigned tp;
	} std[] = {{"_sip._udp.", SIP_TP_UDP},
		   {"_sip._tcp.", SIP_TP_TCP},
		   {"_sips._tcp.", SIP_TP_TLS}};
	char name[SIP_RESOLV_NAME_MAX + 16];

	for (size_t i = 0; i < sizeof(std) / sizeof(std[0]); i++) {
		if (!(lk->allowed & std[i].tp))
			continue;
		snprintf(name, sizeof(name), "%s%s", std[i].prefix, lk->host);
		add_srv(lk, name, std[i].tp);
	}
}

/** NAPTR answer → SRV names (RFC 3263 §4.1, RFC 3403 order/preference). */
static void plan_srv_from_naptr(struct sip_lookup *lk)
{
	const struct rrset *s = &lk->q[lk->naptr_q].set;
	const struct sip_dns_rr *use[SIP_RESOLV_MAX_RRS];
	size_t n = 0;
	uint32_t order = UINT32_MAX;

	for (size_t i = 0; i < s->n; i++)
		if (naptr_usable(lk, &s->rr[i]) && s->rr[i].naptr.order < order)
			order = s->rr[i].naptr.order;
	for (size_t i = 0; i < s->n; i++) {
		const struct sip_dns_rr *rr = &s->rr[i];
		size_t j;

		if (!naptr_usable(lk, rr) || rr->naptr.order != order)
			continue;
		/* insertion by preference, stable */
		for (j = n; j > 0 &&
			    use[j - 1]->naptr.preference > rr->naptr.preference;
		     j--)
			use[j] = use[j - 1];
		use[j] = rr;
		n++;
	}
	for (size_t i = 0; i < n; i++)
		add_srv(lk, use[i]->naptr.replacement,
			naptr_transport(use[i]->naptr.service));
	if (lk->nsrv) {
		lk->tp_default = lk->srv[0].transport;
		return;
	}
	plan_srv_fallback(lk);
}

/** RFC 2782 order: by priority, then weighted random within a priority. */
static void srv_order(struct sip_resolver *r, const struct sip_dns_rr **v,
		      size_t n)
{
	size_t i, j;

	for (i = 1; i < n; i++) { /* stable sort by priority */
		const struct sip_dns_rr *x = v[i];

		for (j = i; j > 0 && v[j - 1]->srv.priority > x->srv.priority;
		     j--)
			v[j] = v[j - 1];
		v[j] = x;
	}
	for (i = 0; i < n; i = j) {
		size_t k, z = i;

		for (j = i; j < n && v[j]->srv.priority == v[i]->srv.priority;
		     j++)
			;
		/* weight 0 first, order otherwise kept */
		for (k = i; k < j; k++) {
			if (v[k]->srv.weight == 0) {
				const struct sip_dns_rr *x = v[k];

				memmove(&v[z + 1], &v[z],
					(k - z) * sizeof(const struct sip_dns_rr
								 *));
				v[z++] = x;
			}
		}
		for (k = i; k + 1 < j; k++) {
			uint32_t sum = 0, pick, run = 0;
			size_t m;

			for (m = k; m < j; m++)
				sum += v[m]->srv.weight;
			pick = next_rand(r) % (sum + 1);
			for (m = k; m + 1 < j; m++) {
				run += v[m]->srv.weight;
				if (run >= pick)
					break;
			}
			if (m > k) {
				const struct sip_dns_rr *x = v[m];

				memmove(&v[k + 1], &v[k],
					(m - k) * sizeof(const struct sip_dns_rr
								 *));
				v[k] = x;
			}
		}
	}
}

/** SRV answers → hosts; none at all: the domain at the default port. */
static void plan_hosts_from_srv(struct sip_lookup *lk)
{
	bool any = false;

	for (unsigned i = 0; i < lk->nsrv; i++) {
		const struct rrset *s = &lk->q[lk->srv[i].q].set;
		const struct sip_dns_rr *v[SIP_RESOLV_MAX_RRS];
		size_t n = 0;

		for (size_t k = 0; k < s->n && n < SIP_RESOLV_MAX_RRS; k++)
			v[n++] = &s->rr[k];
		if (n)
			any = true;
		srv_order(lk->r, v, n);
		for (size_t k = 0; k < n; k++) {
			const char *t = v[k]->srv.target;

			if (t[0] == '\0' || !strcmp(t, "."))
				continue; /* service not offered there */
			add_host(lk, t, 0, NULL, v[k]->srv.port,
				 lk->srv[i].transport);
		}
	}
	if (!any && lk->tp_default)
		add_host(lk, lk->host, 0, NULL, default_port(lk->tp_default),
			 lk->tp_default);
}

static void add_target(struct sip_lookup *lk, const struct host_ent *h,
		       int family, const uint8_t *addr)
{
	struct sip_target *t;
	size_t alen = family == 6 ? 16 : 4;

	if (lk->ntargets == SIP_RESOLV_MAX_TARGETS)
		return;
	for (size_t i = 0; i < lk->ntargets; i++) {
		t = &lk->targets[i];
		if (t->transport == h->transport && t->port == h->port &&
		    t->family == family && !memcmp(t->addr, addr, alen))
			return;
	}
	t = &lk->targets[lk->ntargets++];
	memset(t, 0, sizeof(*t));
	t->transport = h->transport;
	t->family = family;
	memcpy(t->addr, addr, alen);
	t->port = h->port;
	memcpy(t->host, h->name, sizeof(t->host));
}

static void add_addresses(struct sip_lookup *lk, const struct host_ent *h,
			  int q, int family)
{
	const struct rrset *s;

	if (q < 0)
		return;
	s = &lk->q[q].set;
	for (size_t i = 0; i < s->n; i++)
		add_target(lk, h, family,
			   family == 6 ? s->rr[i].aaaa : s->rr[i].a);
}

static void build_targets(struct sip_lookup *lk)
{
	bool v6first = lk->r->cfg.prefer_ipv6;

	for (unsigned i = 0; i < lk->nhosts; i++) {
		const struct host_ent *h = &lk->hosts[i];

		if (h->family) {
			add_target(lk, h, h->family, h->addr);
			continue;
		}
		add_addresses(lk, h, v6first ? h->qaaaa : h->qa,
			      v6first ? 6 : 4);
		add_addresses(lk, h, v6first ? h->qa : h->qaaaa,
			      v6first ? 4 : 6);
	}
}

/** Move to the next phase whenever the current one has all its answers. */
static void advance(struct sip_lookup *lk)
{
	while (lk->phase != PH_DONE) {
		for (unsigned i = 0; i < lk->nq; i++)
			if (lk->q[i].state != Q_DONE)
				return;
		switch (lk->phase) {
		case PH_NAPTR:
			plan_srv_from_naptr(lk);
			lk->phase = PH_SRV;
			break;
		case PH_SRV:
			plan_hosts_from_srv(lk);
			lk->phase = PH_ADDR;
			break;
		default:
			build_targets(lk);
			lk->phase = PH_DONE;
			break;
		}
	}
}

/** Static route for the URI's host: its targets, filtered by transport. */
static void plan_route(struct sip_lookup *lk, const struct route *rt,
		       unsigned uri_tp)
{
	for (size_t i = 0; i < rt->n; i++) {
		const struct rtarget *t = &rt->t[i];
		unsigned tp = t->transport ? t->transport : uri_tp;

		if (!(tp & lk->allowed))
			continue;
		add_host(lk, t->host, t->family, t->addr,
			 t->has_port ? t->port : default_port(tp), tp);
	}
}

/** The transport the URI asks for: 0 when none, else the SIP_TP_* bit.
 * @return 0 or -EINVAL / -EPROTONOSUPPORT. */
static int uri_transport(const struct sip_uri *uri, bool sips, unsigned *tp)
{
	sip_str v;
	int rc = sip_param_find(uri->params, "transport", &v);

	*tp = 0;
	if (rc < 0)
		return -EINVAL;
	if (rc == 0)
		return 0;
	if (!v.len)
		return -EINVAL;
	*tp = transport_from_param(v);
	if (!*tp)
		return -EPROTONOSUPPORT; /* sctp, tls-sctp, ... */
	if (sips) {
		if (*tp == SIP_TP_UDP)
			return -EINVAL;
		if (*tp == SIP_TP_TCP)
			*tp = SIP_TP_TLS;
		else if (*tp == SIP_TP_WS)
			*tp = SIP_TP_WSS;
	}
	return 0;
}

static int lookup_plan(struct sip_lookup *lk, const struct sip_uri *uri)
{
	struct sip_resolver *r = lk->r;
	sip_str host = uri->host;
	unsigned tp;
	struct route **rt;
	uint8_t addr[16];
	int rc, family = 0;

	if (uri->scheme != SIP_URI_SIP && uri->scheme != SIP_URI_SIPS)
		return -EINVAL;
	if (uri->host_kind == SIP_HOST_NONE || !host.len)
		return -EINVAL;
	lk->sips = uri->scheme == SIP_URI_SIPS;
	rc = uri_transport(uri, lk->sips, &tp);
	if (rc)
		return rc;
	lk->allowed = r->cfg.transports;
	if (lk->sips)
		lk->allowed &= SIP_TP_TLS | SIP_TP_WSS;
	if (tp) {
		if (!(tp & lk->allowed))
			return -EPROTONOSUPPORT;
		lk->allowed = tp;
	}
	lk->tp_default = tp ? tp : pick_default(lk->allowed, lk->sips);
	if (!lk->tp_default)
		return -EPROTONOSUPPORT;
	if (uri->host_kind == SIP_HOST_IPV6)
		host = sip_str_sub(host, 1, host.len - 1);
	if (name_copy(lk->host, host.p, host.len) != 0)
		return -EINVAL;
	if (uri->host_kind != SIP_HOST_NAME) {
		family = parse_numeric(lk->host, addr);
		if (!family)
			return -EINVAL;
	}

	lk->naptr_q = -1;
	rt = family ? NULL : route_find(r, lk->host);
	if (rt) {
		lk->phase = PH_ADDR;
		plan_route(lk, *rt, lk->tp_default);
	} else if (family || uri->has_port) {
		/* §4.2: numeric host or explicit port: no NAPTR or SRV */
		lk->phase = PH_ADDR;
		add_host(lk, lk->host, family, addr,
			 uri->has_port ? uri->port
				       : default_port(lk->tp_default),
			 lk->tp_default);
	} else if (tp == SIP_TP_WS || tp == SIP_TP_WSS) {
		/* no SRV names for WebSocket: the host at the default port */
		lk->phase = PH_SRV;
	} else if (tp) {
		lk->phase = PH_SRV;
		plan_srv_fallback(lk);
	} else {
		lk->phase = PH_NAPTR;
		lk->naptr_q = query_add(lk, lk->host, SIP_DNS_NAPTR);
	}
	advance(lk);
	return 0;
}

int sip_lookup_create(struct sip_resolver *r, const struct sip_uri *uri,
		      struct sip_lookup **out)
{
	struct sip_lookup *lk;
	int rc;

	*out = NULL;
	lk = calloc(1, sizeof(*lk));
	if (!lk)
		return -ENOMEM;
	lk->r = r;
	rc = lookup_plan(lk, uri);
	if (rc) {
		sip_lookup_destroy(lk);
		return rc;
	}
	*out = lk;
	return 0;
}

void sip_lookup_destroy(struct sip_lookup *lk)
{
	if (!lk)
		return;
	for (unsigned i = 0; i < lk->nq; i++)
		rrset_free(&lk->q[i].set);
	free(lk);
}

static void query_done(struct sip_lookup *lk, struct lquery *q, int status)
{
	q->state = Q_DONE;
	if (status != 0 && status != -ENOENT && !lk->err)
		lk->err = status;
}

int sip_lookup_next_query(struct sip_lookup *lk, struct sip_dns_query *out)
{
	unsigned i = 0;

	while (i < lk->nq) {
		struct lquery *q = &lk->q[i];
		const struct centry *e;

		if (q->state != Q_NEW) {
			i++;
			continue;
		}
		e = cache_get(lk->r, q->name, q->type);
		if (e) {
			if (rrset_dup(&q->set, &e->set, q->type) != 0)
				q->set.status = -ENOMEM;
			query_done(lk, q, q->set.status);
			advance(lk); /* may add queries after this one */
			i++;
			continue;
		}
		q->state = Q_SENT;
		out->id = i;
		out->type = q->type;
		memcpy(out->name, q->name, sizeof(out->name));
		return 1;
	}
	return 0;
}

int sip_lookup_feed(struct sip_lookup *lk, unsigned id, int status,
		    const struct sip_dns_rr *rrs, size_t n)
{
	struct lquery *q;

	if (id >= lk->nq)
		return -EINVAL;
	q = &lk->q[id];
	if (q->state == Q_DONE)
		return -EALREADY;
	if (q->state != Q_SENT)
		return -EINVAL;
	if (status > 0)
		status = -EINVAL;
	if (rrset_copy(&q->set, status, q->type, rrs, n) != 0)
		q->set.status = status = -ENOMEM;
	if (status == 0 || status == -ENOENT)
		cache_put(lk->r, q->name, q->type, &q->set);
	query_done(lk, q, status);
	advance(lk);
	return 0;
}

bool sip_lookup_done(const struct sip_lookup *lk)
{
	return lk->phase == PH_DONE;
}

int sip_lookup_status(const struct sip_lookup *lk)
{
	if (lk->phase != PH_DONE)
		return -EINPROGRESS;
	if (lk->ntargets)
		return 0;
	return lk->err ? lk->err : -ENOENT;
}

size_t sip_lookup_count(const struct sip_lookup *lk)
{
	return lk->phase == PH_DONE ? lk->ntargets : 0;
}

int sip_lookup_target(const struct sip_lookup *lk, size_t i,
		      struct sip_target *t)
{
	if (i >= sip_lookup_count(lk))
		return -ENOENT;
	*t = lk->targets[i];
	return 0;
}

int sip_lookup_next(struct sip_lookup *lk, struct sip_target *t)
{
	if (sip_lookup_target(lk, lk->cursor, t) != 0)
		return 0;
	lk->cursor++;
	return 1;
}
