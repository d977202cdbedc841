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

struct loc_chg {
	struct loc_chg *next;
	enum loc_chg_kind kind;
	uint64_t id;
	int64_t expires; /* UPSERT: the binding's; PURGE: the time */
	uint64_t conn_id;
	uint32_t cseq;
	uint32_t reg_id;
	uint16_t q;
	uint8_t transport;
	uint32_t len[NF];
	char s[];
};

enum {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_UPSERT,
	ST_DELETE,
	ST_DELETE_AOR,
	ST_PURGE,
	ST__COUNT
};

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
	[ST_DELETE_AOR] = "DELETE FROM bindings WHERE aor = ?1",
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
	uint64_t pushed;    /* records pushed since open             */
	uint64_t committed; /* records written (or failed) since open */
	unsigned flushers;
	bool stop;
	int err;	  /* first failed commit since the last flush */
	int64_t purge_at; /* drop rows expired at this time, 0: none */

	unsigned queue_max;
	unsigned queue_wait_ms;
	unsigned batch_max;
	unsigned batch_ms;
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
	rc = sqlite3_prepare_v2(
		p->db,
		"SELECT id, aor, contact, q, expires, call_id, cseq, path, "
		"instance, reg_id, transport, source, user_agent FROM bindings "
		"WHERE expires > ?1",
		-1, &st, NULL);
	if (rc != SQLITE_OK)
		return db_fail(p->db, rc, cfg->db_path, "loading", errmsg, cap);
	sqlite3_bind_int64(st, 1, cfg->now);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct loc_binding b = {
			.aor = col_str(st, 1),
			.contact = col_str(st, 2),
			.q = (uint16_t)sqlite3_column_int(st, 3),
			.expires = sqlite3_column_int64(st, 4),
			.call_id = col_str(st, 5),
			.cseq = (uint32_t)sqlite3_column_int64(st, 6),
			.path = col_str(st, 7),
			.instance = col_str(st, 8),
			.reg_id = (uint32_t)sqlite3_column_int64(st, 9),
			.transport = (unsigned)sqlite3_column_int(st, 10),
			.source = col_str(st, 11),
			.conn_id = 0,
			.user_agent = col_str(st, 12),
		};
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

int loc_persist_open(const struct loc_config *cfg, loc_load_fn *fn, void *arg,
		     uint64_t *max_id, struct loc_persist **out, char *errmsg,
		     size_t cap)
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
	p->batch_ms = cfg->batch_ms ? cfg->batch_ms : 10;

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
	e = load(p, cfg, fn, arg, max_id, errmsg, cap);
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

static void deadline_in(struct timespec *ts, unsigned ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
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
			deadline_in(&until, p->queue_wait_ms);
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
			const struct loc_binding *b, struct loc_chg **out)
{
	sip_str f[NF] = {SIP_STR_NULL};
	size_t total = 0;
	struct loc_chg *c;
	int rc;

	if (kind == LOC_CHG_UPSERT) {
		f[F_AOR] = b->aor;
		f[F_CONTACT] = b->contact;
		f[F_CALL_ID] = b->call_id;
		f[F_PATH] = b->path;
		f[F_INSTANCE] = b->instance;
		f[F_SOURCE] = b->source;
		f[F_UA] = b->user_agent;
	} else if (kind == LOC_CHG_DELETE_AOR) {
		f[F_AOR] = b->aor;
	}
	for (int i = 0; i < NF; i++)
		total += f[i].len;
	c = malloc(sizeof(*c) + total);
	if (!c)
		return -ENOMEM;
	memset(c, 0, sizeof(*c));
	c->kind = kind;
	total = 0;
	for (int i = 0; i < NF; i++) {
		if (f[i].len)
			memcpy(c->s + total, f[i].p, f[i].len);
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

/* Append @p c; called with mu held. */
static void append_locked(struct loc_persist *p, struct loc_chg *c)
{
	c->next = NULL;
	if (p->tail)
		p->tail->next = c;
	else
		p->head = c;
	p->tail = c;
	p->queued++;
	p->pushed++;
	if (p->queued == 1 || p->queued >= p->batch_max)
		pthread_cond_signal(&p->cv_work);
}

void loc_persist_push(struct loc_persist *p, struct loc_chg *c, uint64_t id)
{
	c->id = id;
	pthread_mutex_lock(&p->mu);
	p->reserved--;
	append_locked(p, c);
	pthread_mutex_unlock(&p->mu);
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

void loc_persist_purge(struct loc_persist *p, int64_t now)
{
	pthread_mutex_lock(&p->mu);
	if (now > p->purge_at) {
		p->purge_at = now;
		pthread_cond_signal(&p->cv_work);
	}
	pthread_mutex_unlock(&p->mu);
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
	return (sip_str){c->s + off, c->len[i]};
}

static void bind_str(sqlite3_stmt *st, int col, sip_str s)
{
	sqlite3_bind_text(st, col, s.len ? s.p : "", (int)s.len, SQLITE_STATIC);
}

static int apply(struct loc_persist *p, const struct loc_chg *c)
{
	sqlite3_stmt *st;
	int rc;

	switch (c->kind) {
	case LOC_CHG_UPSERT:
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
		break;
	case LOC_CHG_DELETE:
		st = p->st[ST_DELETE];
		sqlite3_bind_int64(st, 1, (sqlite3_int64)c->id);
		break;
	case LOC_CHG_DELETE_AOR:
		st = p->st[ST_DELETE_AOR];
		bind_str(st, 1, chg_field(c, F_AOR));
		break;
	case LOC_CHG_PURGE:
	default:
		st = p->st[ST_PURGE];
		sqlite3_bind_int64(st, 1, c->expires);
		break;
	}
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int exec_st(struct loc_persist *p, int which)
{
	int rc = sqlite3_step(p->st[which]);

	sqlite3_reset(p->st[which]);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Write one batch in a transaction. @return 0 or a negative errno. */
static int write_batch(struct loc_persist *p, struct loc_chg *list,
		       int64_t purge_at)
{
	struct loc_chg purge = {.kind = LOC_CHG_PURGE, .expires = purge_at};
	int rc = exec_st(p, ST_BEGIN);
	int first = SQLITE_OK;

	for (struct loc_chg *c = list; c && rc == SQLITE_OK; c = c->next) {
		int r = apply(p, c);
		if (r != SQLITE_OK && first == SQLITE_OK)
			first = r;
		if ((r & 0xff) == SQLITE_FULL || (r & 0xff) == SQLITE_IOERR)
			rc = r;
	}
	/* after the batch: a later refresh has a later expiry anyway */
	if (rc == SQLITE_OK && purge_at) {
		int r = apply(p, &purge);
		if (r != SQLITE_OK && first == SQLITE_OK)
			first = r;
	}
	if (rc == SQLITE_OK)
		rc = exec_st(p, ST_COMMIT);
	if (rc != SQLITE_OK) {
		int e = db_errno(p->db, rc);
		if (!sqlite3_get_autocommit(p->db))
			exec_st(p, ST_ROLLBACK);
		return e;
	}
	return first == SQLITE_OK ? 0 : db_errno(p->db, first);
}

static void *writer_main(void *arg)
{
	struct loc_persist *p = arg;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->head && !p->purge_at && !p->stop)
			pthread_cond_wait(&p->cv_work, &p->mu);
		if (!p->head && !p->purge_at && p->stop)
			break;
		/* Let a batch gather unless it is full or someone waits. */
		if (p->queued < p->batch_max && !p->flushers && !p->stop) {
			struct timespec until;

			deadline_in(&until, p->batch_ms);
			while (p->queued < p->batch_max && !p->flushers &&
			       !p->stop &&
			       pthread_cond_timedwait(&p->cv_work, &p->mu,
						      &until) != ETIMEDOUT)
				;
		}
		struct loc_chg *list = p->head;
		unsigned n = p->queued;
		int64_t purge_at = p->purge_at;
		p->head = p->tail = NULL;
		p->queued = 0;
		p->purge_at = 0;
		pthread_cond_broadcast(&p->cv_room);
		pthread_mutex_unlock(&p->mu);

		int e = write_batch(p, list, purge_at);
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
