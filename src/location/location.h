/**
 * @file location.h  The location service (RFC 3261 §10): the bindings of
 * addresses-of-record to contact addresses that the registrar writes and
 * the proxy reads.
 *
 * The store is reached through a small table of operations
 * (struct loc_store_ops) so that the registrar and the proxy do not know
 * where bindings live. The first backend, loc_store_open(), keeps every
 * binding in memory — 64 shards by AOR hash, each with its own mutex, hash
 * table and expiry min-heap — and optionally persists them to SQLite
 * through a single writer thread owned by the store.
 *
 * Time is passed in, never read: every expiry is an absolute wall-clock
 * time in seconds (Unix time, CLOCK_REALTIME), so that the remaining
 * lifetime of a binding is right after a restart. Nothing is expired behind
 * the caller's back: loc_store_expire() removes what has passed, and
 * loc_store_lookup() skips bindings whose time has passed but which are not
 * swept yet.
 *
 * Keys. An AOR is compared byte for byte: the registrar passes its
 * canonical form (§10.3 step 5, see loc_aor_canon()). Within an AOR a
 * binding is found by its +sip.instance and reg-id when both are present
 * (RFC 5626 §6: a device that re-registers a flow replaces it), else by its
 * contact URI compared per RFC 3261 §19.1.4 (sip_uri_equal()).
 *
 * Thread safety: every operation may be called from any thread at the same
 * time. Callbacks run with the shard of the binding locked: they must not
 * call back into the store, and should be short.
 *
 * Persistence (when loc_config.db_path is set): every change that reaches
 * memory also queues a change record with a sequence number (1, 2, ...
 * since open, in queue order), and the writer thread commits the queue in
 * batched transactions (every batch_ms or batch_max records, at once when
 * someone flushes) to a database in WAL mode with synchronous=NORMAL, so a
 * committed change survives the process being killed (not necessarily a
 * power loss). After each transaction the writer calls
 * loc_config.on_commit with the range of sequence numbers it held and its
 * result: a caller that answers only once its change's number is reported
 * committed (group commit) never waits on the database itself. A
 * transaction is all or nothing; when it fails, the writer puts every
 * binding it touched back in memory as the database still has it (unless
 * a later change has replaced it since), then reports the failure — so
 * memory does not keep a change that was answered as failed.
 * The queue is bounded: when it is full, a change waits up to
 * queue_wait_ms for room (without holding any shard) and then fails with
 * -EAGAIN, leaving memory unchanged — a registrar answers 500 with
 * Retry-After. loc_store_flush() returns once everything queued before it
 * is committed (and reported).
 */
#ifndef SIPD_LOCATION_H
#define SIPD_LOCATION_H

#include "base/base.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Longest accepted string field of a binding (bytes). */
#define LOC_MAX_FIELD 8192

/**
 * One binding. Filled by the caller for loc_store_save(); given to
 * callbacks by the store, its slices then point into the store and are
 * valid only during the callback.
 */
struct loc_binding {
	sip_str aor;	    /**< address-of-record, canonical form       */
	sip_str contact;    /**< contact URI (no < >, no header params)  */
	uint16_t q;	    /**< q-value × 1000 (0..1000); 1000 if absent */
	int64_t expires;    /**< absolute expiry, Unix time in seconds   */
	sip_str call_id;    /**< Call-ID of the REGISTER that wrote it   */
	uint32_t cseq;	    /**< its CSeq number                         */
	sip_str path;	    /**< Path URIs (RFC 3327), in order, as one
				 comma-separated Path value (sip_list_next());
				 empty when none                          */
	sip_str instance;   /**< +sip.instance value as written (with its
				 quotes and < >), empty when none         */
	uint32_t reg_id;    /**< RFC 5626 reg-id, 0 when none            */
	unsigned transport; /**< one SIP_TP_* bit (resolv/resolv.h) the
				 REGISTER came over, 0 when unknown    */
	sip_str source;	    /**< its source address, e.g. "192.0.2.1:5060"
				 or "[2001:db8::1]:5061"               */
	uint64_t conn_id;   /**< the flow: connection id of a stream
				 transport (sip_tp_conn_id), 0 for none.
				 Not kept across a restart (the connection
				 is gone): loaded bindings have 0.      */
	sip_str user_agent; /**< User-Agent header value, may be empty   */
};

/**
 * Called once per binding by lookup, foreach and expire, with the binding's
 * shard locked. For lookup and foreach a non-zero return stops the walk;
 * for expire it is ignored.
 */
typedef int loc_binding_cb(const struct loc_binding *b, void *arg);

/* ------------------------------------------------------------------------ */
/* The interface                                                            */
/* ------------------------------------------------------------------------ */

/** Result of a successful loc_store_save(). */
enum loc_save_result {
	LOC_SAVE_ADDED = 0,   /**< a new binding                          */
	LOC_SAVE_UPDATED = 1, /**< an existing binding refreshed/replaced  */
};

/**
 * The operations of a location store backend. @p impl is the backend's
 * own state (struct loc_store.impl). The public functions below document
 * the contract every backend keeps.
 */
struct loc_store_ops {
	int (*save)(void *impl, const struct loc_binding *b, uint64_t *seq);
	int (*remove)(void *impl, sip_str aor, sip_str contact, sip_str call_id,
		      uint32_t cseq, uint64_t *seq);
	int (*remove_aor)(void *impl, sip_str aor, sip_str call_id,
			  uint32_t cseq, uint64_t *seq);
	int (*lookup)(void *impl, sip_str aor, int64_t now, loc_binding_cb *cb,
		      void *arg);
	size_t (*expire)(void *impl, int64_t now, loc_binding_cb *cb,
			 void *arg);
	size_t (*count)(void *impl);
	int (*foreach)(void *impl, loc_binding_cb *cb, void *arg);
	int (*flush)(void *impl);
	void (*destroy)(void *impl);
};

/** A store: a backend's operations and its state. */
struct loc_store {
	const struct loc_store_ops *ops;
	void *impl;
};

/**
 * Wrap a backend's state into a store (for backend constructors).
 * @return the store, or NULL when out of memory.
 */
struct loc_store *loc_store_wrap(const struct loc_store_ops *ops, void *impl);

/** Flush (best effort) and free the store and its backend. NULL is a no-op. */
void loc_store_destroy(struct loc_store *s);

/**
 * Add a binding, or refresh/replace the one it matches (same AOR and
 * +sip.instance/reg-id, else same AOR and §19.1.4-equal contact URI).
 * When it matches a binding with the same Call-ID, the RFC 3261 §10.3
 * step 7 rule applies (loc_order_check()): a CSeq not higher than the
 * stored one is refused with -ESTALE and nothing changes. An empty
 * @p b->call_id skips that check (administrative writes).
 * @return LOC_SAVE_ADDED or LOC_SAVE_UPDATED; -EINVAL (empty AOR, contact
 *         not a valid URI, q above 1000), -E2BIG (a field longer than
 *         LOC_MAX_FIELD, or the AOR already has max_per_aor bindings),
 *         -ESTALE, -EAGAIN (persistence queue full), -ENOMEM.
 */
int loc_store_save(struct loc_store *s, const struct loc_binding *b);

/**
 * Remove the binding of @p aor whose contact is §19.1.4-equal to
 * @p contact. With a non-empty @p call_id the §10.3 step 7 rule applies as
 * for save (a REGISTER with expires=0).
 * @return 0, -ENOENT (no such binding), -EINVAL (contact not a URI),
 *         -ESTALE, -EAGAIN.
 */
int loc_store_remove(struct loc_store *s, sip_str aor, sip_str contact,
		     sip_str call_id, uint32_t cseq);

/**
 * Remove every binding of @p aor (Contact: * with Expires: 0, §10.3
 * step 6). With a non-empty @p call_id the step 6 rule applies to every
 * binding first: if any has that Call-ID and a CSeq not lower than
 * @p cseq, nothing is removed and -ESTALE is returned.
 * @return the number removed (>= 0), -ESTALE, -EAGAIN.
 */
int loc_store_remove_aor(struct loc_store *s, sip_str aor, sip_str call_id,
			 uint32_t cseq);

/**
 * loc_store_save(), loc_store_remove() and loc_store_remove_aor() that
 * also give the sequence number of the change they queued for the
 * database in @p *seq (0: nothing queued — no persistence, or nothing
 * changed). The change is durable once on_commit reports a range holding
 * it without error.
 */
int loc_store_save_seq(struct loc_store *s, const struct loc_binding *b,
		       uint64_t *seq);
int loc_store_remove_seq(struct loc_store *s, sip_str aor, sip_str contact,
			 sip_str call_id, uint32_t cseq, uint64_t *seq);
int loc_store_remove_aor_seq(struct loc_store *s, sip_str aor, sip_str call_id,
			     uint32_t cseq, uint64_t *seq);

/**
 * Call @p cb for each binding of @p aor that expires after @p now, in the
 * order they were added.
 * @return the number of bindings passed to @p cb (>= 0).
 */
int loc_store_lookup(struct loc_store *s, sip_str aor, int64_t now,
		     loc_binding_cb *cb, void *arg);

/**
 * Remove every binding whose expiry is at or before @p now, calling
 * @p cb (may be NULL) for each just before it is freed. Costs
 * O(shards + expired × log n). Drive it from a periodic timer.
 * @return the number removed.
 */
size_t loc_store_expire(struct loc_store *s, int64_t now, loc_binding_cb *cb,
			void *arg);

/** Number of bindings held (expired ones not swept yet included). */
size_t loc_store_count(struct loc_store *s);

/**
 * Call @p cb for every binding (sipctl reg list), one shard locked at a
 * time: a concurrent change may or may not be seen.
 * @return the number of bindings passed to @p cb.
 */
int loc_store_foreach(struct loc_store *s, loc_binding_cb *cb, void *arg);

/**
 * Wait until every change queued before this call is committed (for a
 * clean shutdown). A store without persistence returns 0 at once.
 * @return 0, or the negative errno of a failed commit since the last
 *         flush (those changes are lost from the database, not from memory).
 */
int loc_store_flush(struct loc_store *s);

/* ------------------------------------------------------------------------ */
/* The in-memory store with optional SQLite persistence                     */
/* ------------------------------------------------------------------------ */

/**
 * Called by the writer thread after each transaction with the sequence
 * numbers it held, @p first to @p last (consecutive), and 0 when they are
 * committed or the negative errno of the failure (then none of them is,
 * and memory has been put back). Ranges come in order, each once. Must
 * be short and must not call the store.
 */
typedef void loc_commit_fn(void *arg, uint64_t first, uint64_t last, int err);

/** Options of loc_store_open(); zero fields take the default. */
struct loc_config {
	const char *db_path;	/**< SQLite file; NULL: memory only      */
	int64_t now;		/**< wall-clock seconds at open: bindings
				     expired by then are not loaded      */
	unsigned max_per_aor;	/**< bindings per AOR (default 32)       */
	unsigned queue_max;	/**< queued change records (65536)       */
	unsigned queue_wait_ms; /**< wait for room when full (0: none)   */
	unsigned batch_max;	/**< records per transaction (1000)      */
	unsigned batch_ms;	/**< commit at least this often (10)     */
	/** When set, the gathering time in microseconds instead of
	 * batch_ms: for callers that wait for every change (held answers),
	 * a short window that still lets a batch form when the writer
	 * shares a core with the threads that queue (group commit). */
	unsigned batch_us;
	loc_commit_fn *on_commit; /**< after each transaction; may be NULL */
	void *commit_arg;
};

/**
 * Open the in-memory store. With a database path: open or create the
 * file, switch it to WAL, create or migrate the schema (table
 * schema_version), drop expired rows, load the others and start the
 * writer thread.
 * @param errmsg   receives a message naming the path and the cause on
 *                 failure (may be NULL)
 * @return 0 with @p *out set, or -ENOMEM, -EINVAL (bad config), the
 *         system errno of a file that cannot be opened (-ENOENT, -EACCES,
 *         -EISDIR, ...), -EBADMSG (not a database, or corrupt), -EROFS /
 *         -EACCES (read-only), -ENOTSUP (schema newer than this build),
 *         -EIO (other database errors).
 */
int loc_store_open(const struct loc_config *cfg, struct loc_store **out,
		   char *errmsg, size_t errcap);

/**
 * One binding as one text line for people and scripts (sipctl reg list,
 * sipd's admin socket), tab-separated, ending in "\n":
 * `AOR CONTACT expires=SECONDS-LEFT q=Q instance=(VALUE;reg-id=N|-)
 * flow=TRANSPORT:SOURCE [path=PATH]`.
 * @return the length written (NUL-terminated), -ENOSPC.
 */
int loc_binding_format(const struct loc_binding *b, int64_t now, char *buf,
		       size_t cap);

/* ------------------------------------------------------------------------ */
/* Registrar helpers                                                        */
/* ------------------------------------------------------------------------ */

enum loc_order {
	LOC_ORDER_ACCEPT = 0, /**< update or remove the binding          */
	LOC_ORDER_STALE = 1,  /**< abort the update; the request fails   */
};

/**
 * RFC 3261 §10.3 step 7: may a REGISTER with @p new_call_id / @p new_cseq
 * update a binding written by @p old_call_id / @p old_cseq? A different
 * Call-ID (compared byte for byte, §20.8) always may; the same Call-ID
 * only with a higher CSeq.
 */
enum loc_order loc_order_check(sip_str old_call_id, uint32_t old_cseq,
			       sip_str new_call_id, uint32_t new_cseq);

/**
 * The canonical AOR of a sip/sips URI (§10.3 step 5): URI parameters and
 * headers dropped, user %-escapes decoded, scheme and host lower-cased,
 * port kept when present ("sip:alice@example.com").
 * @return the length written (NUL-terminated), -EINVAL (not a sip/sips
 *         URI or a bad escape), -ENOSPC.
 */
int loc_aor_canon(sip_str uri, char *out, size_t cap);

#endif /* SIPD_LOCATION_H */
