/**
 * @file txn.h  SIP transactions (RFC 3261 §17, amended by RFC 6026):
 * the four state machines, their timers and the matching of received
 * messages to transactions.
 *
 * Sans-I/O. The caller feeds events — a received message already parsed
 * (sip_txn_table_recv), a request to send (sip_txn_client_create), a
 * response to send (sip_txn_respond), the passing of time
 * (sip_txn_table_expire) and transport errors (sip_txn_transport_error) —
 * together with the current time in milliseconds from any monotonic clock.
 * The layer answers through the callbacks given to the table: bytes to send
 * to a transaction's peer, requests and responses for the TU, timeouts,
 * transport errors and termination. It never touches sockets or clocks.
 *
 * All timers of a table live in one min-heap: arm a single event-loop timer
 * for sip_txn_table_next_deadline() and call sip_txn_table_expire() when it
 * fires.
 *
 * Lifetime: a transaction belongs to its table. When it reaches Terminated
 * the table calls the terminated callback (the last callback it makes for
 * that transaction) and frees it once the callback returns; the handle is
 * invalid afterwards. sip_txn_destroy() removes a transaction early without
 * any callback. Callbacks may create, respond to, or destroy transactions
 * of the same table (themselves included); the send callback must not call
 * back into the layer, and no callback may destroy the table.
 */
#ifndef SIPD_TXN_H
#define SIPD_TXN_H

#include "base/base.h"
#include "sipmsg/sipmsg.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sip_txn;
struct sip_txn_table;

/** The four machines of §17. */
enum sip_txn_kind {
	SIP_TXN_INVITE_CLIENT = 0, /**< Figure 5 (RFC 6026 Figure 3)  */
	SIP_TXN_NON_INVITE_CLIENT, /**< Figure 6                      */
	SIP_TXN_INVITE_SERVER,	   /**< Figure 7 (RFC 6026 Figure 5)  */
	SIP_TXN_NON_INVITE_SERVER, /**< Figure 8                      */
};

enum sip_txn_state {
	SIP_TXN_CALLING = 0, /**< INVITE client                     */
	SIP_TXN_TRYING,	     /**< non-INVITE client and server      */
	SIP_TXN_PROCEEDING,
	SIP_TXN_COMPLETED,
	SIP_TXN_CONFIRMED, /**< INVITE server                      */
	SIP_TXN_ACCEPTED,  /**< INVITE client and server (RFC 6026) */
	SIP_TXN_TERMINATED,
};

/** Timers of §17 and RFC 6026, plus the §17.2.1 100 Trying delay. */
enum sip_txn_timer {
	SIP_TXN_TIMER_A = 0,  /**< INVITE request retransmit (unreliable)  */
	SIP_TXN_TIMER_B,      /**< INVITE transaction timeout             */
	SIP_TXN_TIMER_C,      /**< proxy INVITE timeout (§16.6 step 11)  */
	SIP_TXN_TIMER_D,      /**< wait for response retransmits         */
	SIP_TXN_TIMER_E,      /**< non-INVITE request retransmit         */
	SIP_TXN_TIMER_F,      /**< non-INVITE transaction timeout        */
	SIP_TXN_TIMER_G,      /**< INVITE response retransmit            */
	SIP_TXN_TIMER_H,      /**< wait for ACK receipt                  */
	SIP_TXN_TIMER_I,      /**< wait for ACK retransmits              */
	SIP_TXN_TIMER_J,      /**< wait for non-INVITE request retransmits */
	SIP_TXN_TIMER_K,      /**< wait for response retransmits         */
	SIP_TXN_TIMER_L,      /**< wait for INVITE retransmits (Accepted) */
	SIP_TXN_TIMER_M,      /**< wait for 2xx retransmits (Accepted)   */
	SIP_TXN_TIMER_TRYING, /**< UAS sends 100 Trying when it fires   */
	SIP_TXN_TIMER__COUNT
};

/** Flags of one transaction. */
#define SIP_TXN_RELIABLE                                                       \
	0x1u /**< TCP/TLS/SCTP/WS: no retransmissions,                         \
		D/I/J/K are zero */
#define SIP_TXN_PROXY                                                          \
	0x2u /**< proxy: 100 Trying at once (INVITE                            \
		server), Timer C (INVITE client) */

/** Timer values in milliseconds. */
struct sip_txn_config {
	uint32_t t1;	       /**< RTT estimate (default 500)              */
	uint32_t t2;	       /**< retransmit cap (default 4000)           */
	uint32_t t4;	       /**< network lifetime (default 5000)         */
	uint32_t timer_c;      /**< > 180000 (default 181000)                */
	uint32_t timer_d;      /**< unreliable, >= 32000 (default 32000)    */
	uint32_t trying_delay; /**< UAS 100 Trying delay (default 200)      */
	unsigned worker;       /**< encoded in generated branches (<= 65535) */
	uint64_t seed;	       /**< makes generated branches unpredictable  */
};

/** Fill @p cfg with the defaults above (worker 0, seed 0). */
void sip_txn_config_default(struct sip_txn_config *cfg);

/* ------------------------------------------------------------------------ */
/* Callbacks                                                                */
/* ------------------------------------------------------------------------ */

/** Send @p len bytes to the peer of @p txn (the request's next hop for a
 * client, the response address of the top Via for a server). @p buf is
 * valid during the call only. Return 0, or a negative errno: the
 * transaction then reports a transport error and terminates. */
typedef int sip_txn_send_fn(struct sip_txn *txn, const char *buf, size_t len,
			    void *arg);
/** A request (server) or response (client) for the TU. @p msg is valid
 * during the call only. */
typedef void sip_txn_msg_fn(struct sip_txn *txn, const struct sip_msg *msg,
			    void *arg);
/** Timer B, F or H fired (for a client the TU treats this as a 408
 * Request Timeout, §8.1.3.1), or Timer C fired (see SIP_TXN_PROXY). */
typedef void sip_txn_timeout_fn(struct sip_txn *txn, enum sip_txn_timer timer,
				void *arg);
/** Sending failed with @p err (negative errno); Terminated follows. */
typedef void sip_txn_error_fn(struct sip_txn *txn, int err, void *arg);
/** The transaction reached Terminated; freed when this returns. */
typedef void sip_txn_event_fn(struct sip_txn *txn, void *arg);

/** Where the table reports; any member may be NULL except send. */
struct sip_txn_callbacks {
	sip_txn_send_fn *send;
	sip_txn_msg_fn *request;  /**< server: new request; ACK in Accepted */
	sip_txn_msg_fn *response; /**< client: 1xx, final, 2xx in Accepted  */
	sip_txn_timeout_fn *timeout;
	sip_txn_error_fn *transport_error;
	sip_txn_event_fn *terminated;
};

/* ------------------------------------------------------------------------ */
/* Table: matching and timers                                               */
/* ------------------------------------------------------------------------ */

/**
 * Create an empty table. @p cfg may be NULL for the defaults; @p cb and
 * @p arg are kept (@p cb is copied).
 * @return 0, -EINVAL (no send callback, T1/T2/T4 zero, T2 < T1, Timer C
 *         not above 3 minutes, Timer D under 32 s, worker > 65535),
 *         -ENOMEM.
 */
int sip_txn_table_create(const struct sip_txn_config *cfg,
			 const struct sip_txn_callbacks *cb, void *arg,
			 struct sip_txn_table **out);
/** Free the table and every transaction in it, without callbacks. */
void sip_txn_table_destroy(struct sip_txn_table *tab);
/** Number of live transactions. */
size_t sip_txn_table_count(const struct sip_txn_table *tab);

/**
 * Dispatch a received message to its transaction: a response by §17.1.3
 * (top Via branch and CSeq method), a request by §17.2.3 (branch with the
 * z9hG4bK cookie, sent-by and method, ACK matching the INVITE) or, for a
 * branch without the cookie, the RFC 2543 rules of §17.2.3.
 * @return 1 when a transaction consumed it (callbacks have run, @p out
 *         set when non-NULL), 0 when none matched (create a server
 *         transaction for a request other than ACK; hand a response to
 *         the stateless core), -EBADMSG when the top Via or CSeq do not
 *         parse.
 */
int sip_txn_table_recv(struct sip_txn_table *tab, const struct sip_msg *msg,
		       uint64_t now, struct sip_txn **out);
/** The transaction @p msg matches, without dispatching it (NULL if none). */
struct sip_txn *sip_txn_table_match(struct sip_txn_table *tab,
				    const struct sip_msg *msg);
/** The INVITE server transaction a CANCEL request refers to (§9.2: the
 * same matching as §17.2.3 with method INVITE), or NULL. */
struct sip_txn *sip_txn_table_find_invite(struct sip_txn_table *tab,
					  const struct sip_msg *cancel);

/** Earliest armed deadline (ms), UINT64_MAX when no timer is armed. */
uint64_t sip_txn_table_next_deadline(const struct sip_txn_table *tab);
/** Fire every timer due at @p now, in deadline order. */
void sip_txn_table_expire(struct sip_txn_table *tab, uint64_t now);

/* ------------------------------------------------------------------------ */
/* Transactions                                                             */
/* ------------------------------------------------------------------------ */

/**
 * Start a client transaction for the request in @p buf (copied): parses
 * it, sends it and arms its timers. The top Via must carry a branch with
 * the z9hG4bK cookie (see sip_txn_table_branch()); ACK is not a
 * transaction (§17.1.1.3, §13.2.2.4).
 * @param flags  SIP_TXN_RELIABLE, SIP_TXN_PROXY.
 * @param user   stored, see sip_txn_user().
 * @return 0 with @p out set; -EINVAL (does not parse, ACK, no cookie,
 *         CSeq method differs), -EEXIST (same branch and method live),
 *         -ENOMEM; or the send error, after the transport_error and
 *         terminated callbacks, with *out NULL.
 */
int sip_txn_client_create(struct sip_txn_table *tab, const char *buf,
			  size_t len, unsigned flags, void *user, uint64_t now,
			  struct sip_txn **out);

/**
 * Start a server transaction for the received request @p msg (not ACK)
 * and pass it to the TU through the request callback. An INVITE server
 * transaction prepares a 100 Trying: a proxy (SIP_TXN_PROXY) sends it at
 * once, a UAS after trying_delay unless the TU responded first.
 * @return 0 with @p out set (NULL when the TU terminated the transaction
 *         during the callback), -EINVAL (a response, ACK, bad top Via or
 *         CSeq), -EEXIST (matches a live transaction), -ENOMEM.
 */
int sip_txn_server_create(struct sip_txn_table *tab, const struct sip_msg *msg,
			  unsigned flags, void *user, uint64_t now,
			  struct sip_txn **out);

/**
 * The TU sends a response (bytes copied, kept for retransmission) through
 * a server transaction.
 * @return 0 (sent), -EINVAL (not a parseable response, CSeq method not the
 *         transaction's), -EPROTO (the state takes no such response: it is
 *         discarded, §17.2.1/§17.2.2), -ENOMEM, or the send error.
 */
int sip_txn_respond(struct sip_txn *txn, const char *buf, size_t len,
		    uint64_t now);

/** The transport failed for this transaction (§17.1.4, §17.2.4): reports
 * the error and terminates. */
void sip_txn_transport_error(struct sip_txn *txn, int err, uint64_t now);

/** Remove @p txn now, without callbacks (NULL is a no-op). */
void sip_txn_destroy(struct sip_txn *txn);

enum sip_txn_kind sip_txn_kind(const struct sip_txn *txn);
enum sip_txn_state sip_txn_state(const struct sip_txn *txn);
void *sip_txn_user(const struct sip_txn *txn);
void sip_txn_set_user(struct sip_txn *txn, void *user);
/** Branch of the transaction's top Via (points into the transaction). */
sip_str sip_txn_branch(const struct sip_txn *txn);
/** Method of the request that created the transaction. */
sip_str sip_txn_method(const struct sip_txn *txn);
/** Deadline of @p timer, UINT64_MAX when it is not armed. */
uint64_t sip_txn_deadline(const struct sip_txn *txn, enum sip_txn_timer timer);
/** Name of a state ("Calling", ...) and of a timer ("A", ..., "Trying"). */
const char *sip_txn_state_name(enum sip_txn_state state);
const char *sip_txn_timer_name(enum sip_txn_timer timer);

/* ------------------------------------------------------------------------ */
/* Branches                                                                 */
/* ------------------------------------------------------------------------ */

/** The RFC 3261 branch cookie (§8.1.1.7). */
#define SIP_BRANCH_COOKIE "z9hG4bK"
/** Room for a generated branch and its NUL. */
#define SIP_BRANCH_SIZE 32

/** True when @p branch starts with the magic cookie z9hG4bK. */
bool sip_branch_is_rfc3261(sip_str branch);

/**
 * Write "z9hG4bK<worker>.<16 hex digits of unique>" and a NUL.
 * @return the length (without NUL), -EINVAL (worker > 65535), -ENOSPC.
 */
int sip_branch_make(char *out, size_t cap, unsigned worker, uint64_t unique);

/** A fresh branch for the table's worker: unique within the table (a
 * counter through a bijective mix keyed by the seed). Same returns as
 * sip_branch_make(). */
int sip_txn_table_branch(struct sip_txn_table *tab, char *out, size_t cap);

/** The worker encoded in a branch written by sip_branch_make().
 * @return 0, or -EINVAL when the branch is not in that form. */
int sip_branch_worker(sip_str branch, unsigned *worker);

#endif /* SIPD_TXN_H */
