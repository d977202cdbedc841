/**
 * @file proxy.h  The stateful proxy and the redirect server of sipd
 * (RFC 3261 §16, §8.3; loop detection of RFC 5393; Reason of RFC 3326).
 *
 * Sans-I/O. One proxy per worker: it owns a transaction table (src/txn)
 * for the server transactions of the requests it takes and the client
 * transactions of its branches. The caller feeds it parsed messages with
 * their source (proxy_request(), proxy_response()) and the passing of time
 * (proxy_expire()), always with the current time in milliseconds of one
 * monotonic clock; the proxy answers through the send callback (bytes and
 * where they go). Bindings are read from the location store, next hops
 * come from the RFC 3263 core: static routes, numeric hosts and cached
 * answers at once; a name that needs DNS queries is handed to the resolve
 * callback and its branch waits (without blocking anything else) until
 * proxy_resolved() brings the targets. A branch tries the targets in RFC
 * 3263 order and fails over to the next one (a new branch, §4.3) on a
 * transport error, a timeout (Timer B/F) or a 503. A lookup that fails
 * ends its branch with 408 when it ran out of time (as a branch that was
 * never answered, §16.7 step 6) and with 503 otherwise (no such name, no
 * usable record: treated as a transport error, §16.9). Served domains and
 * known users come from callbacks.
 *
 * Request processing (§16.3–§16.6): the checks (483, 420 with Unsupported,
 * 416), loop detection (482: our Via with the same loop hash in its
 * branch), overload (503 with Retry-After above max_calls), digest
 * authentication of callers from served domains (407, 403; skipped for
 * trusted sources, ACK, CANCEL and in-dialog requests), Route
 * pre-processing (our own top Route removed; a Request-URI we put in a
 * Record-Route replaced by the last Route, for strict routers), then the
 * targets: the Request-URI unchanged when a Route remains or the domain is
 * not ours, else the bindings of the address of record (404 unknown user,
 * 480 known user without binding), their Path pushed as Route and their
 * flow (the connection of a stream binding) used. Forwarding (§16.6):
 * Max-Forwards decremented, Proxy-Authorization for our realms removed
 * (§22.3), Record-Route on dialog-creating requests, a
 * strict next hop handled, our Via with a branch that encodes the worker
 * and the loop hash.
 *
 * Forking and responses (§16.7): bindings of the highest q are tried in
 * parallel; lower q groups follow in turn (sequential hunting) when a
 * group has failed or its time (fork_timeout_ms) has passed. 1xx are
 * forwarded (not 100), every 2xx at once, the best final answer once every
 * branch is done (6xx first, 408 when nothing answered, 500 for a 503;
 * a 401 or 407 with the challenges of every branch that sent one).
 * A 2xx or a 6xx cancels the other branches with a Reason header; a CANCEL
 * from the caller is answered 200 and sent to every pending branch (once
 * it has sent a provisional answer); Timer C cancels a branch that rings
 * too long.
 *
 * Redirect mode: the bindings are returned in a 302 (Contact with q and
 * expires); 404 and 480 as above.
 */
#ifndef SIPD_PROXY_H
#define SIPD_PROXY_H

#include "base/base.h"
#include "sipmsg/sipmsg.h"

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct loc_store;
struct sip_resolver;
struct sip_digest;

/** One side of a hop: where a message came from or goes to. */
struct proxy_peer {
	unsigned transport; /**< one SIP_TP_* bit (resolv/resolv.h)        */
	struct sockaddr_storage addr;
	uint64_t conn; /**< stream connection, 0 for none             */
	void *lsn;     /**< the caller's socket handle, opaque here   */
};

enum proxy_mode {
	PROXY_MODE_PROXY = 0, /**< stateful proxy (§16)        */
	PROXY_MODE_REDIRECT,  /**< redirect server (§8.3, 302) */
};

/** Most local addresses (Via, Record-Route, "is this us?"). */
#define PROXY_MAX_LOCAL 16
/** Most trusted source addresses. */
#define PROXY_MAX_TRUSTED 16

/** What the proxy calls. send is required; the others may be NULL. */
struct proxy_callbacks {
	/** Send @p len bytes to @p to. @return 0 or a negative errno. */
	int (*send)(void *arg, const struct proxy_peer *to, const char *buf,
		    size_t len);
	/** Is @p host a domain we serve (callers and callees are ours)? */
	bool (*serves)(void *arg, sip_str host);
	/** Does the user @p user@@p domain exist? 1 yes, 0 no, -ENOENT
	 * when nothing is known about the users of the domain. */
	int (*user_exists)(void *arg, sip_str user, sip_str domain);
	/** Is authentication on now (it may change at run time)? */
	bool (*auth_on)(void *arg);
	/** Resolve @p uri (RFC 3263) with DNS. The outcome is given back
	 * later with proxy_resolved(@p token), never from inside this call,
	 * unless the lookup is cancelled first. @p handle receives what
	 * resolve_cancel() takes. @return 0, or a negative errno (the
	 * branch fails with 503). NULL: names that need DNS get 503. */
	int (*resolve)(void *arg, const struct sip_uri *uri, void *token,
		       void **handle);
	/** Abandon the lookup @p handle: proxy_resolved() must not follow. */
	void (*resolve_cancel)(void *arg, void *handle);
};

struct proxy_config {
	enum proxy_mode mode;
	unsigned worker; /**< encoded in our branches (<= 65535) */
	uint64_t seed;
	/** Our listen addresses: Via sent-by, Record-Route, and what counts
	 * as us in a Route or Request-URI. */
	struct {
		unsigned transport;
		struct sockaddr_storage addr;
	} local[PROXY_MAX_LOCAL];
	unsigned nlocal;
	struct loc_store *store;       /**< bindings; required        */
	struct sip_resolver *resolver; /**< next hops; NULL: numeric only */
	struct sip_digest *digest;     /**< NULL: no authentication   */
	/** Sources (address, any port) never challenged. */
	struct sockaddr_storage trusted[PROXY_MAX_TRUSTED];
	unsigned ntrusted;
	uint32_t t1, t2, t4; /**< transaction timers (0: 500, 4000, 5000) */
	uint32_t timer_c;    /**< 0: 181000                          */
	/** Time a group of equal q may ring before the next is tried;
	 * 0: 30000. */
	uint32_t fork_timeout_ms;
	/** Calls waiting for their final answer above which new requests
	 * get 503 (answered calls that only wait for their transactions to
	 * end do not count); 0: 100000. */
	size_t max_calls;
	unsigned retry_after; /**< seconds in the 503 (0: 5) */
	/** Wall clock (seconds) for binding expiry; NULL: time(). */
	int64_t (*wall_now)(void *arg);
};

void proxy_config_default(struct proxy_config *cfg);

struct proxy;

/** What the proxy made of a message, for the caller's log. */
struct proxy_outcome {
	unsigned status;   /**< answered locally with it, 0 when not     */
	unsigned branches; /**< forwarded to this many targets          */
	const char *note;  /**< detail (static text), may be NULL         */
};

/**
 * @return 0, -EINVAL (no send callback, no store, bad timers or worker),
 *         -ENOMEM.
 */
int proxy_create(const struct proxy_config *cfg,
		 const struct proxy_callbacks *cb, void *arg,
		 struct proxy **out);
/** Free everything, without sending anything. NULL is a no-op. */
void proxy_destroy(struct proxy *p);

/**
 * Whether @p msg (a request that passed sip_msg_check()) is for the proxy:
 * false for what the element answers itself — a REGISTER or a request
 * without Route to one of our domains without a user part (OPTIONS to the
 * server).
 */
bool proxy_wants(struct proxy *p, const struct sip_msg *msg);

/**
 * A request that passed sip_msg_check(), from @p src (responses go back
 * to @p src; @p rcvd are the received/rport parameters the top Via gets,
 * may be NULL). Retransmissions, ACK and CANCEL are matched here.
 * @return 0 (taken), -EBADMSG (no usable top Via or CSeq), -ENOMEM.
 */
int proxy_request(struct proxy *p, const struct sip_msg *msg,
		  const struct proxy_peer *src, const struct sip_via_rcvd *rcvd,
		  uint64_t now, struct proxy_outcome *o);

/**
 * A response from @p src. @return 1 when it belonged to one of our
 * branches, 0 when not (dropped), -EBADMSG.
 */
int proxy_response(struct proxy *p, const struct sip_msg *msg,
		   const struct proxy_peer *src, uint64_t now);

struct sip_lookup;
/**
 * The outcome of a lookup started with the resolve callback: @p status 0
 * with @p lk (taken over by the proxy, its targets walked in order), or a
 * negative errno with @p lk NULL (-ETIMEDOUT: the lookup ran out of time).
 */
void proxy_resolved(struct proxy *p, void *token, int status,
		    struct sip_lookup *lk, uint64_t now);

/** Earliest deadline (ms), UINT64_MAX when none. */
uint64_t proxy_next_deadline(const struct proxy *p);
/** Fire what is due at @p now. */
void proxy_expire(struct proxy *p, uint64_t now);

/** Calls (request contexts) alive, and transactions. */
size_t proxy_calls(const struct proxy *p);
size_t proxy_txns(const struct proxy *p);

/**
 * The worker that owns the client transaction a response belongs to (from
 * the branch of its top Via).
 * @return 0 with @p worker set, -ENOENT when the branch is not ours.
 */
int proxy_response_owner(const struct sip_msg *msg, unsigned *worker);

#endif /* SIPD_PROXY_H */
