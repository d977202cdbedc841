/** @file persist.c  SQLite persistence of the location store: schema and
 * migrations, the load at open, the bounded change queue and the writer
 * thread that commits it in batched transactions (WAL, synchronous=NORMAL).
 */
#include "location/persist.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The string fields of a change, in this order in its blob. */
enum { F_AOR, F_CONTACT, F_CALL_ID, F_PATH, F_INSTANCE, F_SOURCE, F_UA, NF };

/* A queued change: its fixed fields, then capids row ids (DELETE), then
 * the strings (UPSERT: every field; DELETE: the AOR), in one allocation. */
struct loc_chg {
	struct loc_chg *next;
	enum loc_chg_kind kind;
	uint64_t id;  /* UPSERT: the row                      */
	uint64_t seq; /* its sequence number, once pushed      */
	int64_t expires;
	uint64_t conn_id;
	uint32_t cseq;
	uint32_t reg_id;
	uint16_t q;
	uint8_t transport;
	uint32_t nids, capids; /* DELETE: the rows             */
	uint32_t len[NF];
	uint64_t ids[];
};

static char *chg_strings(const struct loc_chg *c)
{
	return (char *)(uintptr_t)(c->ids + c->capids);
}

enum {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_UPSERT,
	ST_DELETE,
	ST_ROW,
	ST_PURGE,
	ST__COUNT
};

/* The columns of a binding row, in the order of row_binding(). */
#define ROW_COLUMNS                                                            \
	"aor, contact, q, expires, call_id, cseq, path, instance, reg_id, "    \
	"transport, source, user_agent"

static const char *const stmt_sql[ST__COUNT] = {
	[ST_BEGIN] = "BEGIN",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_UPSERT] = "INSERT OR REPLACE INTO bindings (id, aor, contact, q, "
		      "expires, call_id, cseq, path, instance, reg_id, "
		      "transport, source, conn_id, user_agent) VALUES "
		      "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, "
		      "?13, ?14)",
	[ST_DELETE] = "DELETE FROM bindings WHERE id = ?1",
	[ST_ROW] = "SELECT " ROW_COLUMNS " FROM bindings WHERE id = ?1",
	[ST_PURGE] = "DELETE FROM bindings WHERE expires <= ?1",
};

/* Schema migrations: migrations[v] takes version v to v + 1. */
static const char *const migrations[] = {
	"CREATE TABLE bindings ("
	" id INTEGER PRIMARY KEY,"
	" aor TEXT NOT NULL,"
	" contact TEXT NOT NULL,"
	" q INTEGER NOT NULL,"
	" expires INTEGER NOT NULL," /* Unix time, seconds */
	" call_id TEXT NOT NULL,"
	" cseq INTEGER NOT NULL,"
	" path TEXT NOT NULL,"
	" instance TEXT NOT NULL,"
	" reg_id INTEGER NOT NULL,"
	" transport INTEGER NOT NULL,"
	" source TEXT NOT NULL,"
	" conn_id INTEGER NOT NULL,"
	" user_agent TEXT NOT NULL);"
	"CREATE INDEX bindings_aor ON bindings (aor);"
	"CREATE INDEX bindings_expires ON bindings (expires);",
	/* 2: every change is by row id (memory knows the ids of an AOR and
	 * of what expired), so the two indexes only cost writes; the scans
	 * by expiry at open run once */
	"DROP INDEX IF EXISTS bindings_aor;"
	"DROP INDEX IF EXISTS bindings_expires;",
};
#define SCHEMA_VERSION (int)(sizeof(migrations) / sizeof(migrations[0]))

struct loc_persist {
	sqlite3 *db;
	sqlite3_stmt *st[ST__COUNT];
	pthread_t thread;
	bool started;

	pthread_mutex_t mu;
	pthread_cond_t cv_work; /* the writer: records, flush or stop   */
	pthread_cond_t cv_room; /* preparers: queue slots released      */
	pthread_cond_t cv_done; /* flushers: committed moved            */
	struct loc_chg *head, *tail;
	unsigned queued;    /* records in the list                   */
	unsigned reserved;  /* prepared, not pushed or cancelled yet */
	uint64_t pushed;    /* records pushed since open: the last seq */
	uint64_t committed; /* records written (or failed) since open */
	unsigned flushers;
	bool stop;
	int err; /* first failed commit since the last flush */

	struct loc_persist_cbs cbs;
	loc_commit_fn *on_commit;
	void *commit_arg;

	unsigned queue_max;
	unsigned queue_wait_ms;
	unsigned batch_max;
	unsigned batch_us; /* gathering time */
};

static void set_msg(char *errmsg, size_t cap, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_msg(char *errmsg, size_t cap, const char *fmt, ...)
{
	va_list ap;

	if (!errmsg || !cap)
		return;
	va_start(ap, fmt);
	vsnprintf(errmsg, cap, fmt, ap);
	va_end(ap);
}

/* The errno for an SQLite result code on @p db. */
static int db_errno(sqlite3 *db, int rc)
{
	int sys = db ? sqlite3_system_errno(db) : 0;

	switch (rc & 0xff) {
	case SQLITE_CANTOPEN:
		return sys ? -sys : -EACCES;
	case SQLITE_NOTADB:
	case SQLITE_CORRUPT:
		return -EBADMSG;
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return -EACCES;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_IOERR:
		return sys ? -sys : -EIO;
	default:
		return -EIO;
	}
}

/* Fail with the database's message, naming the path. */
static int db_fail(sqlite3 *db, int rc, const char *path, const char *what,
		   char *errmsg, size_t cap)
{
	int e = db_errno(db, rc);

	set_msg(errmsg, cap, "location db %s: %s: %s (%s)", path, what,
		db ? sqlite3_errmsg(db) : sqlite3_errstr(rc), strerror(-e));
	return e;
}

/* Schema version, creating the schema_version table when absent. */
static int read_version(sqlite3 *db, int *version)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_exec(db,
			      "CREATE TABLE IF NOT EXISTS schema_version "
			      "(version INTEGER NOT NULL)",
			      NULL, NULL, NULL);

	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_prepare_v2(db, "SELECT max(version) FROM schema_version",
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_step(st);
	*version = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? SQLITE_OK : rc;
}

static int migrate(sqlite3 *db, const char *path, char *errmsg, size_t cap)
{
	int version = 0;
	int rc = read_version(db, &version);

	if (rc != SQLITE_OK)
		return db_fail(db, rc, path, "reading the schema version",
			       errmsg, cap);
	if (version > SCHEMA_VERSION) {
		set_msg(errmsg, cap,
			"location db %s: schema version %d is newer than this "
			"build's %d",
			path, version, SCHEMA_VERSION);
		return -ENOTSUP;
	}
	for (int v = version; v < SCHEMA_VERSION; v++) {
		char sql[96];

		snprintf(sql, sizeof(sql),
			 "DELETE FROM schema_version;"
			 "INSERT INTO schema_version VALUES (%d)",
			 v + 1);
		rc = sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
		if (rc == SQLITE_OK)
			rc = sqlite3_exec(db, migrations[v], NULL, NULL, NULL);
		if (rc == SQLITE_OK)
			rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
		if (rc == SQLITE_OK)
			rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
		if (rc != SQLITE_OK) {
			int e = db_fail(db, rc, path, "migrating the schema",
					errmsg, cap);
			sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
			return e;
		}
	}
	return 0;
}

static sip_str col_str(sqlite3_stmt *st, int i)
{
	const char *p = (const char *)sqlite3_column_text(st, i);
	int n = sqlite3_column_bytes(st, i);

	return p ? (sip_str){p, (size_t)n} : SIP_STR_LIT("");
}

/* The binding of a row read with ROW_COLUMNS from column @p c0. */
static void row_binding(sqlite3_stmt *st, int c0, struct loc_binding *b)
{
	*b = (struct loc_binding){
		.aor = col_str(st, c0),
		.contact = col_str(st, c0 + 1),
		.q = (uint16_t)sqlite3_column_int(st, c0 + 2),
		.expires = sqlite3_column_int64(st, c0 + 3),
		.call_id = col_str(st, c0 + 4),
		.cseq = (uint32_t)sqlite3_column_int64(st, c0 + 5),
		.path = col_str(st, c0 + 6),
		.instance = col_str(st, c0 + 7),
		.reg_id = (uint32_t)sqlite3_column_int64(st, c0 + 8),
		.transport = (unsigned)sqlite3_column_int(st, c0 + 9),
		.source = col_str(st, c0 + 10),
		.conn_id = 0,
		.user_agent = col_str(st, c0 + 11),
	};
}

static int load(struct loc_persist *p, const struct loc_config *cfg,
		loc_load_fn *fn, void *arg, uint64_t *max_id, char *errmsg,
		size_t cap)
{
	sqlite3_stmt *st = NULL;
	int rc;

	rc = sqlite3_prepare_v2(p->db, "SELECT max(id) FROM bindings", -1, &st,
				NULL);
	if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		*max_id = (uint64_t)sqlite3_column_int64(st, 0);
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_OK)
		return db_fail(p->db, rc, cfg->db_path, "reading", errmsg, cap);
	rc = sqlite3_prepare_v2(p->db,
				"SELECT id, " ROW_COLUMNS
				" FROM bindings WHERE expires > ?1",
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		return db_fail(p->db, rc, cfg->db_path, "loading", errmsg, cap);
	sqlite3_bind_int64(st, 1, cfg->now);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct loc_binding b;

		row_binding(st, 1, &b);
		int e = fn(&b, (uint64_t)sqlite3_column_int64(st, 0), arg);

		if (e == -ENOMEM) {
			sqlite3_finalize(st);
			set_msg(errmsg, cap, "location db %s: out of memory",
				cfg->db_path);
			return e;
		}
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return db_fail(p->db, rc, cfg->db_path, "loading", errmsg, cap);
	return 0;
}

static void *writer_main(void *arg);

static void persist_free(struct loc_persist *p)
{
	for (int i = 0; i < ST__COUNT; i++)
		sqlite3_finalize(p->st[i]);
	sqlite3_close(p->db);
	pthread_cond_destroy(&p->cv_work);
	pthread_cond_destroy(&p->cv_room);
	pthread_cond_destroy(&p->cv_done);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

static int init_sync(struct loc_persist *p)
{
	pthread_condattr_t ca;
	int rc = pthread_condattr_init(&ca);

	if (rc)
		return -rc;
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv_work, &ca);
	pthread_cond_init(&p->cv_room, &ca);
	pthread_cond_init(&p->cv_done, &ca);
	pthread_condattr_destroy(&ca);
	return 0;
}

int loc_persist_open(const struct loc_config *cfg,
		     const struct loc_persist_cbs *cbs, uint64_t *max_id,
		     struct loc_persist **out, char *errmsg, size_t cap)
{
	struct loc_persist *p = calloc(1, sizeof(*p));
	const char *path = cfg->db_path;
	sqlite3_stmt *st = NULL;
	int rc, e;

	*max_id = 0;
	if (!p) {
		set_msg(errmsg, cap, "location db %s: out of memory", path);
		return -ENOMEM;
	}
	e = init_sync(p);
	if (e) {
		free(p);
		set_msg(errmsg, cap, "location db %s: %s", path, strerror(-e));
		return e;
	}
	p->queue_max = cfg->queue_max ? cfg->queue_max : 65536;
	p->queue_wait_ms = cfg->queue_wait_ms;
	p->batch_max = cfg->batch_max ? cfg->batch_max : 1000;
	p->batch_us = cfg->batch_us   ? cfg->batch_us
		      : cfg->batch_ms ? cfg->batch_ms * 1000u
				      : 10000u;
	p->cbs = *cbs;
	p->on_commit = cfg->on_commit;
	p->commit_arg = cfg->commit_arg;

	rc = sqlite3_open_v2(path, &p->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				     SQLITE_OPEN_NOMUTEX,
			     NULL);
	if (rc != SQLITE_OK) {
		e = db_fail(p->db, rc, path, "cannot open", errmsg, cap);
		goto fail;
	}
	sqlite3_extended_result_codes(p->db, 0);
	sqlite3_busy_timeout(p->db, 5000);
	/* journal_mode answers a row; read it to see that WAL took. */
	rc = sqlite3_prepare_v2(p->db, "PRAGMA journal_mode=WAL", -1, &st,
				NULL);
	if (rc == SQLITE_OK) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			const char *mode =
				(const char *)sqlite3_column_text(st, 0);
			rc = mode && !strcmp(mode, "wal") ? SQLITE_OK
							  : SQLITE_CANTOPEN;
		}
		sqlite3_finalize(st);
	}
	/* A 16 MiB page cache: with the default 2 MiB, a million rows and
	 * their two indexes spill to the OS on every batch (about 4x slower
	 * writes, see docs/PERFORMANCE.md). */
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(
			p->db,
			"PRAGMA synchronous=NORMAL; PRAGMA cache_size=-16384",
			NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		e = db_fail(p->db, rc, path, "cannot use as a database", errmsg,
			    cap);
		goto fail;
	}
	e = migrate(p->db, path, errmsg, cap);
	if (e)
		goto fail;
	rc = sqlite3_prepare_v2(p->db, stmt_sql[ST_PURGE], -1, &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, cfg->now);
		rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK
						     : sqlite3_errcode(p->db);
		sqlite3_finalize(st);
	}
	if (rc != SQLITE_OK) {
		e = db_fail(p->db, rc, path, "dropping expired rows", errmsg,
			    cap);
		goto fail;
	}
	e = load(p, cfg, cbs->load, cbs->arg, max_id, errmsg, cap);
	if (e)
		goto fail;
	for (int i = 0; i < ST__COUNT; i++) {
		rc = sqlite3_prepare_v3(p->db, stmt_sql[i], -1,
					SQLITE_PREPARE_PERSISTENT, &p->st[i],
					NULL);
		if (rc != SQLITE_OK) {
			e = db_fail(p->db, rc, path, "preparing", errmsg, cap);
			goto fail;
		}
	}
	rc = pthread_create(&p->thread, NULL, writer_main, p);
	if (rc) {
		e = -rc;
		set_msg(errmsg, cap, "location db %s: writer thread: %s", path,
			strerror(rc));
		goto fail;
	}
	p->started = true;
	*out = p;
	return 0;
fail:
	persist_free(p);
	return e;
}

/* ------------------------------------------------------------------------ */
/* The queue                                                                */
/* ------------------------------------------------------------------------ */

static void deadline_in(struct timespec *ts, unsigned us)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += us / 1000000u;
	ts->tv_nsec += (long)(us % 1000000u) * 1000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* Reserve one slot, waiting up to queue_wait_ms. Called with mu held. */
static int reserve_locked(struct loc_persist *p)
{
	struct timespec until;
	bool timed = false;

	while (p->queued + p->reserved >= p->queue_max) {
		if (!p->queue_wait_ms || p->stop)
			return -EAGAIN;
		if (!timed) {
			deadline_in(&until, p->queue_wait_ms * 1000u);
			timed = true;
		}
		if (pthread_cond_timedwait(&p->cv_room, &p->mu, &until) ==
		    ETIMEDOUT) {
			if (p->queued + p->reserved >= p->queue_max)
				return -EAGAIN;
		}
	}
	p->reserved++;
	return 0;
}

int loc_persist_prepare(struct loc_persist *p, enum loc_chg_kind kind,
			const struct loc_binding *b, unsigned nids,
			struct loc_chg **out)
{
	sip_str f[NF] = {SIP_STR_NULL};
	size_t total = 0;
	struct loc_chg *c;
	char *s;
	int rc;

	if (kind == LOC_CHG_UPSERT) {
		f[F_AOR] = b->aor;
		f[F_CONTACT] = b->contact;
		f[F_CALL_ID] = b->call_id;
		f[F_PATH] = b->path;
		f[F_INSTANCE] = b->instance;
		f[F_SOURCE] = b->source;
		f[F_UA] = b->user_agent;
		nids = 0;
	} else if (b) {
		f[F_AOR] = b->aor;
	}
	for (int i = 0; i < NF; i++)
		total += f[i].len;
	c = malloc(sizeof(*c) + nids * sizeof(uint64_t) + total);
	if (!c)
		return -ENOMEM;
	memset(c, 0, sizeof(*c));
	c->kind = kind;
	c->capids = nids;
	s = chg_strings(c);
	total = 0;
	for (int i = 0; i < NF; i++) {
		if (f[i].len)
			memcpy(s + total, f[i].p, f[i].len);
		c->len[i] = (uint32_t)f[i].len;
		total += f[i].len;
	}
	if (kind == LOC_CHG_UPSERT) {
		c->expires = b->expires;
		c->conn_id = b->conn_id;
		c->cseq = b->cseq;
		c->reg_id = b->reg_id;
		c->q = b->q;
		c->transport = (uint8_t)b->transport;
	}
	pthread_mutex_lock(&p->mu);
	rc = reserve_locked(p);
	pthread_mutex_unlock(&p->mu);
	if (rc) {
		free(c);
		return rc;
	}
	*out = c;
	return 0;
}

void loc_persist_add_id(struct loc_chg *c, uint64_t id)
{
	if (c->nids < c->capids)
		c->ids[c->nids++] = id;
}

/* Append @p c; called with mu held. @return its sequence number. */
static uint64_t append_locked(struct loc_persist *p, struct loc_chg *c)
{
	c->next = NULL;
	if (p->tail)
		p->tail->next = c;
	else
		p->head = c;
	p->tail = c;
	p->queued++;
	c->seq = ++p->pushed;
	if (p->queued == 1 || p->queued >= p->batch_max)
		pthread_cond_signal(&p->cv_work);
	return c->seq;
}

uint64_t loc_persist_push(struct loc_persist *p, struct loc_chg *c, uint64_t id)
{
	uint64_t seq;

	c->id = id;
	pthread_mutex_lock(&p->mu);
	p->reserved--;
	seq = append_locked(p, c);
	pthread_mutex_unlock(&p->mu);
	return seq;
}

void loc_persist_cancel(struct loc_persist *p, struct loc_chg *c)
{
	if (!c)
		return;
	free(c);
	pthread_mutex_lock(&p->mu);
	p->reserved--;
	pthread_cond_signal(&p->cv_room);
	pthread_mutex_unlock(&p->mu);
}

int loc_persist_expired(struct loc_persist *p, const uint64_t *ids, unsigned n)
{
	struct loc_chg *c;

	if (!n)
		return 0;
	c = calloc(1, sizeof(*c) + n * sizeof(uint64_t));
	if (!c)
		return -ENOMEM;
	c->kind = LOC_CHG_DELETE;
	c->capids = c->nids = n;
	memcpy(c->ids, ids, n * sizeof(uint64_t));
	pthread_mutex_lock(&p->mu);
	append_locked(p, c);
	pthread_mutex_unlock(&p->mu);
	return 0;
}

uint64_t loc_persist_done(struct loc_persist *p)
{
	uint64_t v;

	pthread_mutex_lock(&p->mu);
	v = p->committed;
	pthread_mutex_unlock(&p->mu);
	return v;
}

int loc_persist_flush(struct loc_persist *p)
{
	int err;

	pthread_mutex_lock(&p->mu);
	uint64_t target = p->pushed;
	p->flushers++;
	pthread_cond_signal(&p->cv_work);
	while (p->committed < target)
		pthread_cond_wait(&p->cv_done, &p->mu);
	p->flushers--;
	err = p->err;
	p->err = 0;
	pthread_mutex_unlock(&p->mu);
	return err;
}

/* ------------------------------------------------------------------------ */
/* The writer thread                                                        */
/* ------------------------------------------------------------------------ */

static sip_str chg_field(const struct loc_chg *c, int i)
{
	size_t off = 0;

	for (int k = 0; k < i; k++)
		off += c->len[k];
	return (sip_str){chg_strings(c) + off, c->len[i]};
}

static void bind_str(sqlite3_stmt *st, int col, sip_str s)
{
	sqlite3_bind_text(st, col, s.len ? s.p : "", (int)s.len, SQLITE_STATIC);
}

static int step_reset(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int apply(struct loc_persist *p, const struct loc_chg *c)
{
	sqlite3_stmt *st;
	int rc = SQLITE_OK;

	if (c->kind == LOC_CHG_DELETE) {
		st = p->st[ST_DELETE];
		for (uint32_t i = 0; i < c->nids && rc == SQLITE_OK; i++) {
			sqlite3_bind_int64(st, 1, (sqlite3_int64)c->ids[i]);
			rc = step_reset(st);
		}
		return rc;
	}
	st = p->st[ST_UPSERT];
	sqlite3_bind_int64(st, 1, (sqlite3_int64)c->id);
	bind_str(st, 2, chg_field(c, F_AOR));
	bind_str(st, 3, chg_field(c, F_CONTACT));
	sqlite3_bind_int(st, 4, c->q);
	sqlite3_bind_int64(st, 5, c->expires);
	bind_str(st, 6, chg_field(c, F_CALL_ID));
	sqlite3_bind_int64(st, 7, c->cseq);
	bind_str(st, 8, chg_field(c, F_PATH));
	bind_str(st, 9, chg_field(c, F_INSTANCE));
	sqlite3_bind_int64(st, 10, c->reg_id);
	sqlite3_bind_int(st, 11, c->transport);
	bind_str(st, 12, chg_field(c, F_SOURCE));
	sqlite3_bind_int64(st, 13, (sqlite3_int64)c->conn_id);
	bind_str(st, 14, chg_field(c, F_UA));
	return step_reset(st);
}

/* Write one batch in one transaction, all or nothing.
 * @return 0 or a negative errno (then nothing of it is written). */
static int write_batch(struct loc_persist *p, const struct loc_chg *list)
{
	int rc = step_reset(p->st[ST_BEGIN]);

	for (const struct loc_chg *c = list; c && rc == SQLITE_OK; c = c->next)
		rc = apply(p, c);
	if (rc == SQLITE_OK)
		rc = step_reset(p->st[ST_COMMIT]);
	if (rc != SQLITE_OK) {
		int e = db_errno(p->db, rc);

		if (!sqlite3_get_autocommit(p->db))
			step_reset(p->st[ST_ROLLBACK]);
		return e;
	}
	return 0;
}

/* Tell memory what the database still holds for row @p id. */
static void revert_row(struct loc_persist *p, sip_str aor, uint64_t id,
		       uint64_t seq)
{
	sqlite3_stmt *st = p->st[ST_ROW];
	struct loc_binding row;
	int rc;

	sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		row_binding(st, 0, &row);
		p->cbs.revert(p->cbs.arg, seq ? aor : row.aor, id, seq, &row);
	} else if (seq) {
		p->cbs.revert(p->cbs.arg, aor, id, seq, NULL);
	}
	sqlite3_reset(st);
}

/* A batch was rolled back: put memory back to the database, newest
 * change first. Reverses @p *list. */
static void revert_batch(struct loc_persist *p, struct loc_chg **list)
{
	struct loc_chg *rev = NULL;

	while (*list) {
		struct loc_chg *c = *list;
		*list = c->next;
		c->next = rev;
		rev = c;
	}
	*list = rev;
	for (struct loc_chg *c = rev; c; c = c->next) {
		if (c->kind == LOC_CHG_UPSERT)
			revert_row(p, chg_field(c, F_AOR), c->id, c->seq);
		else
			for (uint32_t i = 0; i < c->nids; i++)
				revert_row(p, SIP_STR_NULL, c->ids[i], 0);
	}
}

static void *writer_main(void *arg)
{
	struct loc_persist *p = arg;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->head && !p->stop)
			pthread_cond_wait(&p->cv_work, &p->mu);
		if (!p->head && p->stop)
			break;
		/* Let a batch gather unless it is full or someone waits. */
		if (p->queued < p->batch_max && !p->flushers && !p->stop &&
		    p->batch_us) {
			struct timespec until;

			deadline_in(&until, p->batch_us);
			while (p->queued < p->batch_max && !p->flushers &&
			       !p->stop &&
			       pthread_cond_timedwait(&p->cv_work, &p->mu,
						      &until) != ETIMEDOUT)
				;
		}
		struct loc_chg *list = p->head;
		unsigned n = p->queued;
		uint64_t first = p->committed + 1;
		p->head = p->tail = NULL;
		p->queued = 0;
		pthread_cond_broadcast(&p->cv_room);
		pthread_mutex_unlock(&p->mu);

		int e = write_batch(p, list);
		if (e && p->cbs.revert)
			revert_batch(p, &list);
		if (p->on_commit)
			p->on_commit(p->commit_arg, first, first + n - 1, e);
		while (list) {
			struct loc_chg *next = list->next;
			free(list);
			list = next;
		}

		pthread_mutex_lock(&p->mu);
		if (e && !p->err)
			p->err = e;
		p->committed += n;
		pthread_cond_broadcast(&p->cv_done);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

void loc_persist_close(struct loc_persist *p)
{
	if (!p)
		return;
	if (p->started) {
		pthread_mutex_lock(&p->mu);
		p->stop = true;
		pthread_cond_signal(&p->cv_work);
		pthread_cond_broadcast(&p->cv_room);
		pthread_mutex_unlock(&p->mu);
		pthread_join(p->thread, NULL);
	}
	persist_free(p);
}
