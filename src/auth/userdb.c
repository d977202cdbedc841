/**
 * @file userdb.c  The user store: served domains, users with their HA1s
 * and the nonce secret, in SQLite.
 *
 * The tables share the database file with other sipd components, so the
 * schema version is kept in our own table (`auth_schema`), not in
 * PRAGMA user_version. Each call holds the handle's mutex and is one
 * statement (hence one implicit transaction); opening runs the migrations
 * in one BEGIN IMMEDIATE transaction.
 */
#include "auth/auth.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SCHEMA_VERSION 1
#define BUSY_TIMEOUT_MS 5000

struct sip_userdb {
	sqlite3 *h;
	pthread_mutex_t lock; /* recursive: list callbacks may call back */
	uint8_t secret[SIP_USERDB_SECRET_LEN];
};

/* Migration i takes the schema from version i to version i + 1. */
static const char *const migrations[SCHEMA_VERSION] = {
	"CREATE TABLE IF NOT EXISTS domains ("
	" domain TEXT PRIMARY KEY NOT NULL,"
	" created INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS users ("
	" domain TEXT NOT NULL,"
	" username TEXT NOT NULL,"
	" ha1_md5 TEXT NOT NULL,"
	" ha1_sha256 TEXT NOT NULL,"
	" created INTEGER NOT NULL,"
	" PRIMARY KEY (domain, username));"
	"CREATE TABLE IF NOT EXISTS auth_secret ("
	" id INTEGER PRIMARY KEY CHECK (id = 1),"
	" secret BLOB NOT NULL);",
};

static int map_err(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE:
		return 0;
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_CANTOPEN:
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return -EACCES;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_CONSTRAINT:
		return -EEXIST;
	default:
		return -EIO;
	}
}

const char *sip_userdb_errmsg(const struct sip_userdb *db)
{
	return sqlite3_errmsg(db->h);
}

void sip_userdb_secret(const struct sip_userdb *db, uint8_t *out)
{
	memcpy(out, db->secret, SIP_USERDB_SECRET_LEN);
}

/* ------------------------------------------------------------------------ */
/* Statements                                                               */
/* ------------------------------------------------------------------------ */

/* Prepare @p sql and bind the text arguments (NULL binds NULL). */
static int prep(sqlite3 *h, const char *sql, sqlite3_stmt **st, int n,
		const char *const *args)
{
	int rc = sqlite3_prepare_v2(h, sql, -1, st, NULL);

	if (rc != SQLITE_OK)
		return map_err(rc);
	for (int i = 0; i < n; i++) {
		rc = args[i] ? sqlite3_bind_text(*st, i + 1, args[i], -1,
						 SQLITE_STATIC)
			     : sqlite3_bind_null(*st, i + 1);
		if (rc != SQLITE_OK) {
			sqlite3_finalize(*st);
			*st = NULL;
			return map_err(rc);
		}
	}
	return 0;
}

/* Run a statement that returns no rows; *changes gets the rows changed. */
static int run(sqlite3 *h, const char *sql, int n, const char *const *args,
	       int *changes)
{
	sqlite3_stmt *st;
	int rc = prep(h, sql, &st, n, args);

	if (rc < 0)
		return rc;
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return map_err(rc == SQLITE_ROW ? SQLITE_MISUSE : rc);
	if (changes)
		*changes = sqlite3_changes(h);
	return 0;
}

/* 1 when the query returns a row, 0 when not, or a negative errno. */
static int exists(sqlite3 *h, const char *sql, int n, const char *const *args)
{
	sqlite3_stmt *st;
	int rc = prep(h, sql, &st, n, args);

	if (rc < 0)
		return rc;
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : map_err(rc);
}

/* ------------------------------------------------------------------------ */
/* Opening and the schema                                                   */
/* ------------------------------------------------------------------------ */

/* The schema version, 0 when our tables do not exist yet. */
static int schema_version(sqlite3 *h, int *version)
{
	sqlite3_stmt *st;
	int rc;

	*version = 0;
	rc = exists(h,
		    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
		    "name = 'auth_schema'",
		    0, NULL);
	if (rc <= 0)
		return rc;
	rc = sqlite3_prepare_v2(h, "SELECT max(version) FROM auth_schema", -1,
				&st, NULL);
	if (rc != SQLITE_OK)
		return map_err(rc);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : map_err(rc);
}

/* 1 with the secret loaded, 0 when there is none, or a negative errno. */
static int secret_load(struct sip_userdb *db)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(
		db->h, "SELECT secret FROM auth_secret WHERE id = 1", -1, &st,
		NULL);

	if (rc != SQLITE_OK)
		return map_err(rc);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const void *p = sqlite3_column_blob(st, 0);

		if (p && sqlite3_column_bytes(st, 0) == SIP_USERDB_SECRET_LEN) {
			memcpy(db->secret, p, SIP_USERDB_SECRET_LEN);
			rc = 1;
		} else {
			rc = -EIO; /* not a secret this code wrote */
		}
	} else {
		rc = rc == SQLITE_DONE ? 0 : map_err(rc);
	}
	sqlite3_finalize(st);
	return rc;
}

static int secret_create(struct sip_userdb *db)
{
	sqlite3_stmt *st;
	int rc;

	if (RAND_bytes(db->secret, SIP_USERDB_SECRET_LEN) != 1)
		return -EIO;
	rc = sqlite3_prepare_v2(db->h,
				"INSERT INTO auth_secret (id, secret) "
				"VALUES (1, ?)",
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		return map_err(rc);
	rc = sqlite3_bind_blob(st, 1, db->secret, SIP_USERDB_SECRET_LEN,
			       SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : map_err(rc);
}

/* Bring the tables to SCHEMA_VERSION and make the secret, in one
 * transaction. */
static int migrate(struct sip_userdb *db)
{
	char sql[64];
	int version, rc;

	rc = map_err(sqlite3_exec(db->h, "BEGIN IMMEDIATE", NULL, NULL, NULL));
	if (rc < 0)
		return rc;
	rc = schema_version(db->h, &version); /* again, under the lock */
	if (rc == 0 && version > SCHEMA_VERSION)
		rc = -EPROTO;
	if (rc == 0 && version == 0)
		rc = map_err(sqlite3_exec(db->h,
					  "CREATE TABLE IF NOT EXISTS "
					  "auth_schema (version INTEGER NOT "
					  "NULL)",
					  NULL, NULL, NULL));
	for (int v = version; rc == 0 && v < SCHEMA_VERSION; v++)
		rc = map_err(
			sqlite3_exec(db->h, migrations[v], NULL, NULL, NULL));
	if (rc == 0 && version < SCHEMA_VERSION) {
		snprintf(sql, sizeof(sql),
			 "DELETE FROM auth_schema; INSERT INTO auth_schema "
			 "VALUES (%d)",
			 SCHEMA_VERSION);
		rc = map_err(sqlite3_exec(db->h, sql, NULL, NULL, NULL));
	}
	if (rc == 0) {
		rc = secret_load(db);
		if (rc == 0)
			rc = secret_create(db);
		else if (rc > 0)
			rc = 0;
	}
	if (rc == 0)
		rc = map_err(sqlite3_exec(db->h, "COMMIT", NULL, NULL, NULL));
	if (rc < 0)
		sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

static int open_schema(struct sip_userdb *db)
{
	int version, rc;

	rc = schema_version(db->h, &version);
	if (rc < 0)
		return rc;
	if (version > SCHEMA_VERSION)
		return -EPROTO;
	if (version == SCHEMA_VERSION) {
		rc = secret_load(db);
		if (rc != 0)
			return rc < 0 ? rc : 0;
	}
	if (sqlite3_db_readonly(db->h, "main") == 1)
		return -EROFS;
	/* WAL lets sipd read while sipctl writes; a database in another
	 * mode that cannot switch still works. */
	sqlite3_exec(db->h, "PRAGMA journal_mode = WAL", NULL, NULL, NULL);
	return migrate(db);
}

int sip_userdb_open(const char *path, struct sip_userdb **out)
{
	pthread_mutexattr_t attr;
	struct sip_userdb *db;
	int rc, fd;

	*out = NULL;
	if (!path || !*path)
		return -EINVAL;
	/* Create the file ourselves so that it is private from the start:
	 * an HA1 is as good as the password for this realm. */
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd >= 0)
		close(fd);
	else if (errno != EEXIST)
		return -errno;

	db = calloc(1, sizeof(*db));
	if (!db)
		return -ENOMEM;
	if (pthread_mutexattr_init(&attr) != 0) {
		free(db);
		return -ENOMEM;
	}
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
	rc = pthread_mutex_init(&db->lock, &attr);
	pthread_mutexattr_destroy(&attr);
	if (rc != 0) {
		free(db);
		return -ENOMEM;
	}
	rc = sqlite3_open_v2(path, &db->h,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		rc = map_err(rc);
		goto fail;
	}
	sqlite3_extended_result_codes(db->h, 0);
	sqlite3_busy_timeout(db->h, BUSY_TIMEOUT_MS);
	rc = open_schema(db);
	if (rc < 0)
		goto fail;
	*out = db;
	return 0;
fail:
	sqlite3_close(db->h);
	pthread_mutex_destroy(&db->lock);
	OPENSSL_cleanse(db->secret, sizeof(db->secret));
	free(db);
	return rc;
}

void sip_userdb_close(struct sip_userdb *db)
{
	if (!db)
		return;
	sqlite3_close(db->h);
	pthread_mutex_destroy(&db->lock);
	OPENSSL_cleanse(db->secret, sizeof(db->secret));
	free(db);
}

/* ------------------------------------------------------------------------ */
/* Validation                                                               */
/* ------------------------------------------------------------------------ */

/* Lower-case copy of a host name into @p out (SIP_USERDB_DOMAIN_MAX + 1). */
static int domain_norm(sip_str in, char *out)
{
	if (in.len == 0 || in.len > SIP_USERDB_DOMAIN_MAX)
		return -EINVAL;
	for (size_t i = 0; i < in.len; i++) {
		char c = sip_lower(in.p[i]);

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '.'))
			return -EINVAL;
		out[i] = c;
	}
	out[in.len] = '\0';
	if (out[0] == '.' || out[0] == '-' || strstr(out, ".."))
		return -EINVAL;
	return 0;
}

static bool username_ok(sip_str u)
{
	if (u.len == 0 || u.len > SIP_USERDB_USER_MAX)
		return false;
	for (size_t i = 0; i < u.len; i++) {
		if (u.p[i] == '%' || !sip_cc(u.p[i], SIP_CC_USER))
			return false;
	}
	return true;
}

static bool password_ok(const char *p)
{
	size_t n = p ? strlen(p) : 0;

	return n > 0 && n <= SIP_USERDB_PASSWORD_MAX && !strpbrk(p, "\r\n");
}

/* ------------------------------------------------------------------------ */
/* Domains                                                                  */
/* ------------------------------------------------------------------------ */

int sip_userdb_domain_add(struct sip_userdb *db, const char *domain)
{
	char dom[SIP_USERDB_DOMAIN_MAX + 1], now[24];
	int rc;

	if (domain_norm(sip_str_c(domain), dom) < 0)
		return -EINVAL;
	snprintf(now, sizeof(now), "%lld", (long long)time(NULL));
	const char *const args[] = {dom, now};
	pthread_mutex_lock(&db->lock);
	rc = run(db->h, "INSERT INTO domains (domain, created) VALUES (?, ?)",
		 2, args, NULL);
	pthread_mutex_unlock(&db->lock);
	return rc;
}

int sip_userdb_domain_del(struct sip_userdb *db, const char *domain)
{
	char dom[SIP_USERDB_DOMAIN_MAX + 1];
	int rc, changes = 0;

	if (domain_norm(sip_str_c(domain), dom) < 0)
		return -EINVAL;
	const char *const args[] = {dom};
	pthread_mutex_lock(&db->lock);
	rc = run(db->h,
		 "DELETE FROM domains WHERE domain = ?1 AND NOT EXISTS "
		 "(SELECT 1 FROM users WHERE domain = ?1)",
		 1, args, &changes);
	if (rc == 0 && changes == 0) {
		rc = exists(db->h, "SELECT 1 FROM domains WHERE domain = ?", 1,
			    args);
		if (rc >= 0)
			rc = rc ? -ENOTEMPTY : -ENOENT;
	}
	pthread_mutex_unlock(&db->lock);
	return rc;
}

int sip_userdb_domain_exists(struct sip_userdb *db, sip_str domain)
{
	char dom[SIP_USERDB_DOMAIN_MAX + 1];
	int rc;

	if (domain_norm(domain, dom) < 0)
		return 0;
	const char *const args[] = {dom};
	pthread_mutex_lock(&db->lock);
	rc = exists(db->h, "SELECT 1 FROM domains WHERE domain = ?", 1, args);
	pthread_mutex_unlock(&db->lock);
	return rc;
}

int sip_userdb_domain_list(struct sip_userdb *db, sip_userdb_domain_fn fn,
			   void *arg)
{
	sqlite3_stmt *st;
	int rc;

	pthread_mutex_lock(&db->lock);
	rc = prep(db->h, "SELECT domain FROM domains ORDER BY domain", &st, 0,
		  NULL);
	if (rc == 0) {
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			const char *d =
				(const char *)sqlite3_column_text(st, 0);
			int r = fn(arg, d ? d : "");

			if (r != 0) {
				sqlite3_finalize(st);
				pthread_mutex_unlock(&db->lock);
				return r;
			}
		}
		rc = map_err(rc);
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&db->lock);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Users                                                                    */
/* ------------------------------------------------------------------------ */

/* Check the arguments and compute both HA1s. */
static int user_prepare(const char *username, const char *domain,
			const char *password, char *dom, char *md5,
			char *sha256)
{
	int rc;

	if (!username || !username_ok(sip_str_c(username)) ||
	    domain_norm(sip_str_c(domain), dom) < 0)
		return -EINVAL;
	if (!password)
		return 0;
	if (!password_ok(password))
		return -EINVAL;
	rc = sip_digest_ha1(SIP_DIGEST_MD5, sip_str_c(username), sip_str_c(dom),
			    sip_str_c(password), md5);
	if (rc >= 0)
		rc = sip_digest_ha1(SIP_DIGEST_SHA256, sip_str_c(username),
				    sip_str_c(dom), sip_str_c(password),
				    sha256);
	return rc < 0 ? rc : 0;
}

int sip_userdb_user_add(struct sip_userdb *db, const char *username,
			const char *domain, const char *password)
{
	char dom[SIP_USERDB_DOMAIN_MAX + 1], now[24];
	char md5[SIP_DIGEST_HEX_MAX], sha256[SIP_DIGEST_HEX_MAX];
	int rc, changes = 0;

	if (!password)
		return -EINVAL;
	rc = user_prepare(username, domain, password, dom, md5, sha256);
	if (rc < 0)
		return rc;
	snprintf(now, sizeof(now), "%lld", (long long)time(NULL));
	const char *const args[] = {dom, username, md5, sha256, now};
	pthread_mutex_lock(&db->lock);
	rc = run(db->h,
		 "INSERT INTO users (domain, username, ha1_md5, ha1_sha256, "
		 "created) SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS "
		 "(SELECT 1 FROM domains WHERE domain = ?1)",
		 5, args, &changes);
	pthread_mutex_unlock(&db->lock);
	if (rc == 0 && changes == 0)
		rc = -ENOENT;
	OPENSSL_cleanse(md5, sizeof(md5));
	OPENSSL_cleanse(sha256, sizeof(sha256));
	return rc;
}

int sip_userdb_user_del(struct sip_userdb *db, const char *username,
			const char *domain)
{
	char dom[SIP_USERDB_DOMAIN_MAX + 1];
	int rc, changes = 0;

	rc = user_prepare(username, domain, NULL, dom, NULL, NULL);
	if (rc < 0)
		return rc;
	const char *const args[] = {dom, username};
	pthread_mutex_lock(&db->lock);
	rc = run(db->h, "DELETE FROM users WHERE domain = ? AND username = ?",
		 2, args, &changes);
	pthread_mutex_unlock(&db->lock);
	return rc == 0 && changes == 0 ? -ENOENT : rc;
}

int sip_userdb_user_passwd(struct sip_userdb *db, const char *username,
			   const char *domain, const char *password)
{
	char dom[SIP_USERDB_DOMAIN_MAX + 1];
	char md5[SIP_DIGEST_HEX_MAX], sha256[SIP_DIGEST_HEX_MAX];
	int rc, changes = 0;

	if (!password)
		return -EINVAL;
	rc = user_prepare(username, domain, password, dom, md5, sha256);
	if (rc < 0)
		return rc;
	const char *const args[] = {md5, sha256, dom, username};
	pthread_mutex_lock(&db->lock);
	rc = run(db->h,
		 "UPDATE users SET ha1_md5 = ?, ha1_sha256 = ? "
		 "WHERE domain = ? AND username = ?",
		 4, args, &changes);
	pthread_mutex_unlock(&db->lock);
	OPENSSL_cleanse(md5, sizeof(md5));
	OPENSSL_cleanse(sha256, sizeof(sha256));
	return rc == 0 && changes == 0 ? -ENOENT : rc;
}

int sip_userdb_user_list(struct sip_userdb *db, const char *domain,
			 sip_userdb_user_fn fn, void *arg)
{
	char dom[SIP_USERDB_DOMAIN_MAX + 1];
	sqlite3_stmt *st;
	int rc;

	if (domain && domain_norm(sip_str_c(domain), dom) < 0)
		return -EINVAL;
	const char *const args[] = {domain ? dom : NULL};
	pthread_mutex_lock(&db->lock);
	rc = prep(db->h,
		  "SELECT username, domain, created FROM users "
		  "WHERE ?1 IS NULL OR domain = ?1 ORDER BY domain, username",
		  &st, 1, args);
	if (rc == 0) {
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			const char *u =
				(const char *)sqlite3_column_text(st, 0);
			const char *d =
				(const char *)sqlite3_column_text(st, 1);
			struct sip_userdb_user user = {
				u ? u : "", d ? d : "",
				sqlite3_column_int64(st, 2)};
			int r = fn(arg, &user);

			if (r != 0) {
				sqlite3_finalize(st);
				pthread_mutex_unlock(&db->lock);
				return r;
			}
		}
		rc = map_err(rc);
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&db->lock);
	return rc;
}

int sip_userdb_ha1(struct sip_userdb *db, sip_str username, sip_str realm,
		   enum sip_digest_alg alg, char *out, size_t cap)
{
	char dom[SIP_USERDB_DOMAIN_MAX + 1], user[SIP_USERDB_USER_MAX + 1];
	size_t want = sip_digest_hex_len(alg);
	sqlite3_stmt *st;
	int rc;

	if (alg != SIP_DIGEST_MD5 && alg != SIP_DIGEST_SHA256)
		return -EINVAL;
	if (cap < want + 1)
		return -ENOSPC;
	if (!username_ok(username) || domain_norm(realm, dom) < 0)
		return -ENOENT;
	memcpy(user, username.p, username.len);
	user[username.len] = '\0';
	const char *const args[] = {dom, user};
	pthread_mutex_lock(&db->lock);
	rc = prep(db->h,
		  alg == SIP_DIGEST_SHA256
			  ? "SELECT ha1_sha256 FROM users WHERE domain = ? "
			    "AND username = ?"
			  : "SELECT ha1_md5 FROM users WHERE domain = ? AND "
			    "username = ?",
		  &st, 2, args);
	if (rc == 0) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			const char *h =
				(const char *)sqlite3_column_text(st, 0);

			if (h && strlen(h) == want) {
				memcpy(out, h, want + 1);
				rc = (int)want;
			} else {
				rc = -EIO;
			}
		} else {
			rc = rc == SQLITE_DONE ? -ENOENT : map_err(rc);
		}
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&db->lock);
	return rc;
}

int sip_userdb_ha1_cb(void *arg, sip_str username, sip_str realm,
		      enum sip_digest_alg alg, char *out, size_t cap)
{
	return sip_userdb_ha1(arg, username, realm, alg, out, cap);
}
