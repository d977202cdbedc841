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
	LOC_CHG_DELETE,	    /**< delete a row by id                       */
	LOC_CHG_DELETE_AOR, /**< delete the rows of an AOR                */
	LOC_CHG_PURGE,	    /**< delete the rows expired at a time (the
				 writer's own, never queued)              */
};

/** Receives each row loaded at open; @p id is its row id. */
typedef int loc_load_fn(const struct loc_binding *b, uint64_t id, void *arg);

/**
 * Open the database of @p cfg->db_path, create or migrate the schema, drop
 * the rows expired at @p cfg->now, pass the others to @p load, and start
 * the writer thread. @p max_id receives the largest row id in the table.
 * @return 0 or a negative errno with @p errmsg filled (see loc_store_open).
 */
int loc_persist_open(const struct loc_config *cfg, loc_load_fn *load, void *arg,
		     uint64_t *max_id, struct loc_persist **out, char *errmsg,
		     size_t errcap);

/**
 * Allocate a change and reserve its queue slot. UPSERT copies every field
 * of @p b, DELETE_AOR its aor, DELETE nothing.
 * @return 0, -EAGAIN (queue full after the configured wait), -ENOMEM.
 */
int loc_persist_prepare(struct loc_persist *p, enum loc_chg_kind kind,
			const struct loc_binding *b, struct loc_chg **out);
/** Queue a prepared change for row @p id (ignored by DELETE_AOR). */
void loc_persist_push(struct loc_persist *p, struct loc_chg *c, uint64_t id);
/** Free a prepared change and release its slot. NULL is a no-op. */
void loc_persist_cancel(struct loc_persist *p, struct loc_chg *c);
/** Ask the writer to drop the rows expired at @p now after its next batch
 * (never refused: it is a time, not a queued record). */
void loc_persist_purge(struct loc_persist *p, int64_t now);
/** Wait for the commit of everything queued before; see loc_store_flush. */
int loc_persist_flush(struct loc_persist *p);
/** Flush, stop the writer and close the database. NULL is a no-op. */
void loc_persist_close(struct loc_persist *p);

#endif /* SIPD_LOCATION_PERSIST_H */
