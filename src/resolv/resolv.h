/**
 * @file resolv.h  SIP server location (RFC 3263): from a SIP URI to an
 * ordered list of (transport, address, port) targets.
 *
 * Two parts:
 *
 * - A sans-I/O core (`sip_resolver`, `sip_lookup`). A lookup is created from
 *   a URI; it hands out the DNS queries it needs (sip_lookup_next_query())
 *   and is fed the answers (sip_lookup_feed()). When sip_lookup_done() the
 *   targets are ready and sip_lookup_next() walks them in RFC 3263 order,
 *   one more each time the caller fails over (timeout, 503). The resolver
 *   holds what lookups share: the configuration, a bounded TTL cache with
 *   negative entries, and static routes that replace DNS for a domain.
 *   Time and randomness are injected, so everything is deterministic.
 *
 * - An adapter (`sip_resolv_uv`, library `sipresolv`) that runs the queries
 *   with c-ares on a libuv loop, against DNS servers the caller names, with
 *   an upper bound on the time a lookup may take. It never blocks the loop.
 *
 * Order of work in the core (RFC 3263 §4):
 * 1. a static route for the host (exact, case-insensitive) replaces DNS;
 * 2. a numeric host needs no DNS; the port is the URI's or the default;
 * 3. an explicit port: A/AAAA of the host;
 * 4. a transport parameter without a port: SRV for that transport;
 * 5. otherwise NAPTR; the usable records (services SIP+D2U, SIP+D2T,
 *    SIPS+D2T, SIP+D2W, SIPS+D2W that we support, flag "s", lowest order)
 *    by preference give the SRV names; with no usable NAPTR, SRV
 *    _sip._udp, _sip._tcp, _sips._tcp (sips: _sips._tcp only);
 * 6. SRV records by priority, then weighted random order (RFC 2782); with
 *    no SRV records at all, A/AAAA of the host at the default port;
 * 7. A/AAAA of every SRV target, in that order.
 * A sips URI uses TLS (or WSS) only.
 */
#ifndef SIPD_RESOLV_H
#define SIPD_RESOLV_H

#include "sipmsg/sipmsg.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Longest DNS name kept, with its NUL. */
#define SIP_RESOLV_NAME_MAX 256
/** Most targets a lookup yields (and most targets in one static route). */
#define SIP_RESOLV_MAX_TARGETS 32
/** Most DNS queries one lookup makes. */
#define SIP_RESOLV_MAX_QUERIES 48
/** Most records one answer may carry; the rest are ignored. */
#define SIP_RESOLV_MAX_RRS 32

/** Transports, as bits of a mask. */
enum sip_transport {
	SIP_TP_UDP = 1u << 0,
	SIP_TP_TCP = 1u << 1,
	SIP_TP_TLS = 1u << 2,
	SIP_TP_WS = 1u << 3,
	SIP_TP_WSS = 1u << 4,
};
#define SIP_TP_ALL 0x1fu

/** "udp", "tcp", "tls", "ws", "wss" for one SIP_TP_* bit, else "?". */
const char *sip_transport_name(unsigned tp);

/** Record types the core asks for (DNS type codes). */
enum sip_dns_type {
	SIP_DNS_A = 1,
	SIP_DNS_AAAA = 28,
	SIP_DNS_SRV = 33,
	SIP_DNS_NAPTR = 35,
};

/** One resource record of an answer. Strings are NUL-terminated and only
 * need to live for the sip_lookup_feed() call. */
struct sip_dns_rr {
	enum sip_dns_type type;
	uint32_t ttl; /**< seconds */
	union {
		uint8_t a[4];	  /**< SIP_DNS_A, network order    */
		uint8_t aaaa[16]; /**< SIP_DNS_AAAA, network order */
		struct {
			uint16_t priority;
			uint16_t weight;
			uint16_t port;
			const char *target;
		} srv;
		struct {
			uint16_t order;
			uint16_t preference;
			const char *flags;
			const char *service;
			const char *regexp;
			const char *replacement;
		} naptr;
	};
};

/** A query the lookup wants answered. */
struct sip_dns_query {
	unsigned id; /**< pass back to sip_lookup_feed() */
	enum sip_dns_type type;
	char name[SIP_RESOLV_NAME_MAX];
};

/** One place to send the request to. */
struct sip_target {
	unsigned transport; /**< one SIP_TP_* bit */
	int family;	    /**< 4 or 6 */
	uint8_t addr[16];   /**< network order; 4 bytes used for IPv4 */
	uint16_t port;
	/** The name the address was found for (the SRV target, the host):
	 * the TLS server name. For a numeric host, the address as text. */
	char host[SIP_RESOLV_NAME_MAX];
};

/**
 * Write @p t as "transport:address:port" ("tcp:[2001:db8::1]:5060").
 * @return the length written, or -ENOSPC.
 */
int sip_target_format(const struct sip_target *t, char *buf, size_t cap);

/** Random source: a uniformly distributed 32-bit value. */
typedef uint32_t (*sip_resolv_rand_cb)(void *arg);
/** Clock: monotonic milliseconds. */
typedef uint64_t (*sip_resolv_clock_cb)(void *arg);

/** Address families to look up, as bits of a mask. */
#define SIP_RESOLV_IPV4 1u
#define SIP_RESOLV_IPV6 2u

struct sip_resolv_config {
	/** SIP_TP_* we can use; 0 means all. */
	unsigned transports;
	/** SIP_RESOLV_IPV4 / SIP_RESOLV_IPV6; 0 means IPv4 only. */
	unsigned families;
	/** With both families: AAAA addresses before A addresses. */
	bool prefer_ipv6;
	/** Random source for SRV weights; NULL: an internal generator seeded
	 * with @p seed. */
	sip_resolv_rand_cb rand;
	void *rand_arg;
	uint32_t seed;
	/** Clock for the cache; NULL disables the cache. */
	sip_resolv_clock_cb clock;
	void *clock_arg;
	/** Most cached answers (positive and negative); 0 disables the cache.
	 */
	size_t cache_max;
	/** Seconds a "no such name" or "no records" answer is kept; 0 means
	 * not at all. */
	uint32_t neg_ttl;
	/** Upper bound on any record's TTL in seconds; 0 means one day. */
	uint32_t max_ttl;
};

/** What lookups share: configuration, cache, static routes. */
struct sip_resolver;
/** The resolution of one URI. */
struct sip_lookup;

/**
 * Create a resolver. @p cfg is copied.
 * @return 0, -EINVAL (transports outside SIP_TP_ALL), -ENOMEM.
 */
int sip_resolver_create(const struct sip_resolv_config *cfg,
			struct sip_resolver **out);
/** Destroy a resolver; its lookups must have been destroyed. NULL is a no-op.
 */
void sip_resolver_destroy(struct sip_resolver *r);

/**
 * Route @p domain (exact, case-insensitive) to fixed targets instead of
 * DNS, replacing any route it had. @p targets is a comma-separated list of
 * `host[:port][;transport=udp|tcp|tls|ws|wss]`; a host name there is looked
 * up with A/AAAA only. The default port is 5060 (5061 for TLS, 80 for WS,
 * 443 for WSS), the default transport UDP (TLS for a sips URI).
 * @return 0, -EINVAL (syntax, too many targets, bad transport), -ENOMEM.
 */
int sip_resolver_route_set(struct sip_resolver *r, const char *domain,
			   const char *targets);
/** Remove the route of @p domain. @return 0, -ENOENT. */
int sip_resolver_route_del(struct sip_resolver *r, const char *domain);
/** Drop every cached answer. */
void sip_resolver_cache_flush(struct sip_resolver *r);
/** Number of answers in the cache (expired ones included until reused). */
size_t sip_resolver_cache_size(const struct sip_resolver *r);

/**
 * Start resolving @p uri (sip or sips). The URI's slices are read only
 * here. @p r must outlive the lookup.
 * @return 0, -EINVAL (not sip/sips, no host, sips with transport=udp, bad
 *         transport parameter), -EPROTONOSUPPORT (the transport the URI asks
 *         for is not configured), -ENOMEM.
 */
int sip_lookup_create(struct sip_resolver *r, const struct sip_uri *uri,
		      struct sip_lookup **out);
/** Destroy a lookup. NULL is a no-op. */
void sip_lookup_destroy(struct sip_lookup *lk);

/**
 * Next query to send. Answers found in the cache are applied here without
 * a query. Each query is handed out once.
 * @return 1 with @p q set, 0 when nothing more is to be sent now (all sent
 *         and awaiting answers, or done).
 */
int sip_lookup_next_query(struct sip_lookup *lk, struct sip_dns_query *q);

/**
 * Feed the answer to query @p id.
 * @p status: 0 for an answer (@p n may be 0: the name exists without
 * records of that type), -ENOENT for "no such name", any other negative
 * errno for a failure (timeout, server failure), which is not cached.
 * Records of other types than asked are ignored; so are records beyond
 * SIP_RESOLV_MAX_RRS.
 * @return 0, -EINVAL (unknown id), -EALREADY (already answered).
 */
int sip_lookup_feed(struct sip_lookup *lk, unsigned id, int status,
		    const struct sip_dns_rr *rrs, size_t n);

/** True when every query is answered and the targets are known. */
bool sip_lookup_done(const struct sip_lookup *lk);

/**
 * Outcome once done: 0 when there is at least one target; otherwise the
 * error of a failed query (-ETIMEDOUT, ...) or -ENOENT. -EINPROGRESS before.
 */
int sip_lookup_status(const struct sip_lookup *lk);

/** Number of targets (0 before done). */
size_t sip_lookup_count(const struct sip_lookup *lk);

/** Target @p i in order. @return 0, -ENOENT past the end. */
int sip_lookup_target(const struct sip_lookup *lk, size_t i,
		      struct sip_target *t);

/**
 * Failover iterator: the first call gives the first target; call again
 * after a timeout or 503 for the next one.
 * @return 1 with @p t set, 0 when the targets are exhausted (or not done).
 */
int sip_lookup_next(struct sip_lookup *lk, struct sip_target *t);

/* ------------------------------------------------------------------------ */
/* c-ares on libuv (library sipresolv)                                      */
/* ------------------------------------------------------------------------ */

struct uv_loop_s;
/** Runs lookups with c-ares on one libuv loop. */
struct sip_resolv_uv;
/** One lookup in flight. */
struct sip_resolv_req;

struct sip_resolv_uv_config {
	/** DNS servers, c-ares CSV form: "127.0.0.1:5353,[::1]:53". Required
	 * unless system_servers: the system configuration (/etc/resolv.conf)
	 * is read only when asked for. */
	const char *servers;
	/** With no servers: those of the system (/etc/resolv.conf, as c-ares
	 * reads it by default). Never in tests. */
	bool system_servers;
	/** Time c-ares waits for one answer before a retry; 0 means 2000. */
	unsigned query_timeout_ms;
	/** Tries per query and server; 0 means 2. */
	unsigned tries;
	/** Upper bound on a whole lookup; 0 means 10000. */
	unsigned lookup_timeout_ms;
};

/**
 * Lookup finished. On @p status 0, @p lk holds the targets and belongs to
 * the callee (sip_lookup_destroy()). Otherwise @p lk is NULL and @p status
 * is -ETIMEDOUT (the bound passed), -ENOENT (no targets), -ECANCELED (the
 * adapter was destroyed) or another query error.
 */
typedef void (*sip_resolv_done_cb)(int status, struct sip_lookup *lk,
				   void *arg);

/**
 * Create an adapter on @p loop for the lookups of @p r (which must outlive
 * it). For the cache, give @p r a clock that matches the loop (uv_now()).
 * @return 0, -EINVAL (no servers, bad server list), -ENOMEM, -EIO (c-ares).
 */
int sip_resolv_uv_create(struct uv_loop_s *loop, struct sip_resolver *r,
			 const struct sip_resolv_uv_config *cfg,
			 struct sip_resolv_uv **out);

/**
 * Destroy the adapter. Lookups in flight complete with -ECANCELED. Handles
 * close asynchronously: run the loop until it has no more handles for the
 * memory to be released. NULL is a no-op.
 */
void sip_resolv_uv_destroy(struct sip_resolv_uv *ad);

/**
 * Resolve @p uri; @p cb runs once, always from the loop (never inside this
 * call), at the latest lookup_timeout_ms later. @p req, if not NULL,
 * receives a handle valid until the callback runs or sip_resolv_uv_cancel().
 * @return 0, or the errors of sip_lookup_create() (then no callback).
 */
int sip_resolv_uv_lookup(struct sip_resolv_uv *ad, const struct sip_uri *uri,
			 sip_resolv_done_cb cb, void *arg,
			 struct sip_resolv_req **req);

/** Abandon a lookup in flight: its callback will not run. */
void sip_resolv_uv_cancel(struct sip_resolv_req *req);

#endif /* SIPD_RESOLV_H */
