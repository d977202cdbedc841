/**
 * @file registrar.h  The registrar (RFC 3261 §10.3): REGISTER requests in,
 * bindings in the location store and the answer out.
 *
 * Sans-I/O: registrar_handle() takes one parsed REGISTER, the wall-clock
 * time and where the request came from, updates the location store
 * (src/location) and writes the whole response into a caller's writer. It
 * never reads a clock or touches a socket; the location store and the user
 * store it is given do their own locking, so one registrar may serve every
 * worker thread at once.
 *
 * The steps of §10.3, in order:
 *
 *  1. the checks of sip_request_verdict() for a registrar (416, 420 with
 *     Unsupported; the option tag `path` is supported);
 *  2. the Request-URI's domain must be served — a configured domain or
 *     one of the user store's domains — else 403;
 *  3. with authentication on: the failure limiter (403, or silence), then
 *     digest credentials for the realm of that domain (401 with a
 *     WWW-Authenticate per algorithm, stale=true for an old nonce, 400 for
 *     credentials that do not parse, failures counted), then the
 *     authenticated user must own the To address-of-record (403);
 *  4. To must be a sip/sips URI in that domain (404 otherwise); its
 *     canonical form (loc_aor_canon()) is the key of the bindings;
 *  5. Contact: `*` only alone and with Expires: 0 (else 400), removing
 *     every binding; otherwise each contact's expiry is its `expires`
 *     parameter, else the Expires header, else the default; 0 removes, a
 *     non-zero value below the minimum is answered 423 with Min-Expires,
 *     a value above the maximum is lowered to it; q, +sip.instance and
 *     reg-id (RFC 5626), the Path (RFC 3327) and the flow (transport,
 *     source, connection) are stored;
 *  6. Call-ID/CSeq ordering (§10.3 step 7): a request whose Call-ID matches
 *     a binding it touches must carry a higher CSeq, else the update is
 *     aborted and the request fails with 500. The updates of one request
 *     are all made or none: a failure halfway puts the bindings back as
 *     they were, and a full persistence queue is answered 500 with
 *     Retry-After;
 *     with `durable`, the answer is held until the change is committed
 *     (see registrar_result.pending);
 *  7. 200 OK listing every current binding of the AOR as a Contact with
 *     its remaining `expires` (and q, +sip.instance, reg-id), a Date
 *     header, and the Path echoed when the client supports path.
 *
 * A REGISTER with a Path but without `Supported: path` is answered 421
 * with `Require: path` (RFC 3327 §5.3): the registrar cannot tell the
 * client the Path it would route with.
 */
#ifndef SIPD_REGISTRAR_H
#define SIPD_REGISTRAR_H

#include "auth/auth.h"
#include "location/location.h"
#include "sipmsg/sipmsg.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sockaddr;

/** Defaults of struct registrar_config (seconds). */
#define REGISTRAR_DEFAULT_EXPIRES 3600u
#define REGISTRAR_DEFAULT_MIN_EXPIRES 60u
#define REGISTRAR_DEFAULT_MAX_EXPIRES 7200u

/** Most Contact values handled in one REGISTER. */
#define REGISTRAR_MAX_CONTACTS 32u

/** Options of registrar_create(); zero fields take the default. The
 * objects pointed to are borrowed and must outlive the registrar. */
struct registrar_config {
	struct loc_store *store;     /**< the bindings (required)          */
	struct sip_userdb *userdb;   /**< served domains; may be NULL     */
	struct sip_digest *digest;   /**< required when auth is used      */
	struct sip_authlimit *limit; /**< failure limiter; may be NULL    */
	/** Served domains besides the user store's, NULL-terminated; may
	 * be NULL. Compared case-insensitively, copied. */
	const char *const *domains;
	uint32_t default_expires; /**< no expiry given (3600)             */
	uint32_t min_expires;	  /**< shortest accepted (60)             */
	uint32_t max_expires;	  /**< longer ones are lowered to it (7200) */
	/** Hold the answer to a changing REGISTER until the store has
	 * committed the change, so that a binding acknowledged with 200
	 * survives the process being killed: registrar_handle() then writes
	 * the 200 but marks it pending with the change's sequence numbers
	 * (loc_store_save_seq()); the caller sends it once the store's
	 * on_commit reports them committed, and answers a failed commit
	 * with registrar_failed_answer() (500 with Retry-After; the store
	 * has put memory back, so a 500 leaves neither memory nor database
	 * changed — except the committed half of a several-contact request
	 * whose changes fell into two transactions). Nothing waits: the
	 * caller's thread goes on with other requests. */
	bool durable;
};

/** Where and when one request arrived. */
struct registrar_ctx {
	int64_t now;		     /**< wall clock, Unix seconds         */
	uint64_t now_ms;	     /**< monotonic ms, for the limiter    */
	unsigned transport;	     /**< one SIP_TP_* bit                 */
	const char *source;	     /**< "192.0.2.1:5060" (may be NULL)   */
	const struct sockaddr *addr; /**< the source, for the limiter;
					  may be NULL                  */
	uint64_t conn_id;	     /**< stream connection, 0 for none    */
	bool auth;		     /**< digest authentication on         */
	sip_str to_tag;		     /**< To tag of the response          */
	const struct sip_via_rcvd *rcvd; /**< top Via fix; may be NULL   */
};

/** What registrar_handle() did. */
struct registrar_result {
	unsigned status;    /**< status written; 0: send nothing     */
	const char *reason; /**< its reason phrase                   */
	const char *note;   /**< detail for the log (static), or NULL */
	size_t len;	    /**< response length in the writer       */
	unsigned bindings;  /**< bindings listed in a 200            */
	/** durable: the 200 is written but must be held until the store
	 * reports every change from seq_first to seq_last committed */
	bool pending;
	uint64_t seq_first, seq_last;
};

struct registrar;

/**
 * @return 0, -EINVAL (no store, bad expiry bounds), -ENOMEM.
 */
int registrar_create(const struct registrar_config *cfg,
		     struct registrar **out);
/** NULL is a no-op. */
void registrar_destroy(struct registrar *reg);

/**
 * Replace the served domains and the expiry limits (default, min, max) of
 * a running registrar with those of @p cfg; its other fields are ignored.
 * Thread-safe: requests being handled finish with the old limits, later
 * ones see the new ones.
 * @return 0, -EINVAL (min above max; nothing changed), -ENOMEM.
 */
int registrar_reconfigure(struct registrar *reg,
			  const struct registrar_config *cfg);

/** Whether @p domain is served (configured or in the user store). */
bool registrar_serves(struct registrar *reg, sip_str domain);

/**
 * Process the REGISTER @p req (parsed, sip_msg_check() passed) and write
 * the complete response into @p w (started with sip_wr_init(), empty).
 * @return 0 with @p res filled (res->status 0: send nothing), -EINVAL
 *         (not a REGISTER), -ENOSPC (the response does not fit in @p w).
 */
int registrar_handle(struct registrar *reg, const struct sip_msg *req,
		     const struct registrar_ctx *ctx, struct sip_writer *w,
		     struct registrar_result *res);

/**
 * The answer to a held REGISTER whose change failed to commit: from the
 * held 200 @p ok (its Via, From, To, Call-ID and CSeq), a 500 with
 * Retry-After written into @p out.
 * @return its length, -EINVAL (@p ok is not a response), -ENOSPC.
 */
int registrar_failed_answer(const char *ok, size_t len, char *out, size_t cap);

#endif /* SIPD_REGISTRAR_H */
