/**
 * @file persist.h  Internal to src/location: the SQLite persistence of the
 * in-memory store — the bounded change queue and the writer thread that
 * commits it. Not part of the public API (see location.h).
 *
 * A change is prepared before the shard is locked (the record is allocated
 * and a queue slot reserved, waiting for room if configured), then pushed
 * or cancelled with the shard locked, so that the queue holds the changes
 * of one AOR in the order memory saw them.
 */
#ifndef SIPD_LOCATION_PERSIST_H
#define SIPD_LOCATION_PERSIST_H

#include "location/location.h"

struct loc_persist;
struct loc_chg;

enum loc_chg_kind {
	LOC_CHG_UPSERT = 0, /**< insert or replace a row by id            */
	LOC_CHG_DELETE,	    /**< delete rows by id (one or more)          */
};

/** Receives each row loaded at open; @p id is its row id. */
typedef int loc_load_fn(const struct loc_binding *b, uint64_t id, void *arg);

/**
 * Called by the writer thread for each change of a transaction that failed
 * (rolled back), newest first, so that memory can be put back to what the
 * database holds. @p seq is the failed UPSERT's sequence number (0 for a
 * failed DELETE), @p aor its AOR, @p id the row, @p row the row as the
 * database still has it (NULL: no such row).
 */
typedef void loc_revert_fn(void *arg, sip_str aor, uint64_t id, uint64_t seq,
			   const struct loc_binding *row);

/** The callbacks of the memory side (struct mem in mem.c). */
struct loc_persist_cbs {
	loc_load_fn *load;
	loc_revert_fn *revert;
	void *arg;
};

/**
 * Open the database of @p cfg->db_path, create or migrate the schema, drop
 * the rows expired at @p cfg->now, pass the others to @p load, and start
 * the writer thread. @p max_id receives the largest row id in the table.
 * @return 0 or a negative errno with @p errmsg filled (see loc_store_open).
 */
int loc_persist_open(const struct loc_config *cfg,
		     const struct loc_persist_cbs *cbs, uint64_t *max_id,
		     struct loc_persist **out, char *errmsg, size_t errcap);

/**
 * Allocate a change and reserve its queue slot. UPSERT copies every field
 * of @p b; DELETE keeps @p b's AOR and room for @p nids row ids
 * (loc_persist_add_id()).
 * @return 0, -EAGAIN (queue full after the configured wait), -ENOMEM.
 */
int loc_persist_prepare(struct loc_persist *p, enum loc_chg_kind kind,
			const struct loc_binding *b, unsigned nids,
			struct loc_chg **out);
/** Add a row id to a prepared DELETE (up to the nids it was prepared for). */
void loc_persist_add_id(struct loc_chg *c, uint64_t id);
/** Queue a prepared change (UPSERT: for row @p id; DELETE: its ids, at
 * least one). @return its sequence number (1, 2, ... since open). */
uint64_t loc_persist_push(struct loc_persist *p, struct loc_chg *c,
			  uint64_t id);
/** Free a prepared change and release its slot. NULL is a no-op. */
void loc_persist_cancel(struct loc_persist *p, struct loc_chg *c);
/** Queue the deletion of the @p n expired rows @p ids (never refused:
 * expiry must not wait for room). @return 0 or -ENOMEM. */
int loc_persist_expired(struct loc_persist *p, const uint64_t *ids, unsigned n);
/** The sequence number of the last change whose transaction has ended
 * (committed or failed). */
uint64_t loc_persist_done(struct loc_persist *p);
/** Wait for the commit of everything queued before; see loc_store_flush. */
int loc_persist_flush(struct loc_persist *p);
/** Flush, stop the writer and close the database. NULL is a no-op. */
void loc_persist_close(struct loc_persist *p);

#endif /* SIPD_LOCATION_PERSIST_H */
