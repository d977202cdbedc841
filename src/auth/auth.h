/**
 * @file auth.h  Users and digest authentication for the registrar and the
 * proxy (RFC 3261 §22, RFC 7616, RFC 8760).
 *
 * Three parts, usable on their own:
 *
 * - **User store** (`sip_userdb`, SQLite): users per served domain with
 *   their HA1 = H(username ":" realm ":" password) for MD5 and SHA-256,
 *   where the realm is the domain. Passwords are never stored. The store
 *   also keeps the list of served domains and the random secret the nonces
 *   are signed with. Its tables live in the database file sipd uses; they
 *   carry their own schema version (`auth_schema`), since other components
 *   share the file.
 *
 * - **Digest core** (`sip_digest`, sans-I/O): challenges and the
 *   verification of Authorization / Proxy-Authorization credentials. The
 *   clock, the random source and the HA1 lookup are injected. Nonces are
 *   stateless: base64url(timestamp || salt || HMAC-SHA256(secret,
 *   timestamp || salt || realm) truncated to 128 bits), the salt being a
 *   sequence number and 4 random bytes. The only state is the nonce-count
 *   tracker, a ring of the latest challenges indexed by that sequence
 *   number (lock-free, O(1)): it rejects a replayed nc, and a nonce whose
 *   slot a newer challenge took is stale (so is every nonce issued before
 *   a restart).
 *
 * - **Failure limiter** (`sip_authlimit`): failed attempts per source
 *   address in a sliding window, in a bounded table.
 *
 * How a server uses them for one request (not ACK or CANCEL, which are
 * never challenged, §22.1):
 *
 *  1. sip_authlimit_check(): SIP_AUTHLIMIT_REJECT → answer 403,
 *     SIP_AUTHLIMIT_DROP → send nothing.
 *  2. sip_digest_verify_msg() with the realm of the request's domain:
 *     - SIP_DIGEST_OK: sip_digest_aor_check() (-EPERM → 403), then serve.
 *     - SIP_DIGEST_MISSING: 401 (registrar, UAS) or 407 (proxy) with
 *       sip_digest_challenge_write().
 *     - SIP_DIGEST_STALE: the same with stale=true.
 *     - SIP_DIGEST_BAD_CREDENTIALS: sip_authlimit_fail(), then challenge.
 *     - SIP_DIGEST_MALFORMED: sip_authlimit_fail(), then 400.
 *     - SIP_DIGEST_ERROR: 500.
 *
 * Not supported: the -sess algorithms, qop=auth-int, userhash, username*
 * (RFC 7616 §3.4.4, §3.4.5), SHA-512-256, Authentication-Info, and
 * credentials without qop (RFC 2069). They are answered with a challenge
 * or SIP_DIGEST_MALFORMED.
 *
 * Errors are negative errno values.
 */
#ifndef SIPD_AUTH_H
#define SIPD_AUTH_H

#include "base/base.h"
#include "sipmsg/sipmsg.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sockaddr;

/* ------------------------------------------------------------------------ */
/* Hashes                                                                   */
/* ------------------------------------------------------------------------ */

/** Digest algorithms (RFC 7616 §3.2, RFC 8760). */
enum sip_digest_alg {
	SIP_DIGEST_MD5 = 0,
	SIP_DIGEST_SHA256 = 1,
};

/** Bit of @p alg in a set of algorithms. */
#define SIP_DIGEST_ALG_BIT(alg) (1u << (unsigned)(alg))
/** Both algorithms (the default offer). */
#define SIP_DIGEST_ALGS_ALL                                                    \
	(SIP_DIGEST_ALG_BIT(SIP_DIGEST_MD5) |                                  \
	 SIP_DIGEST_ALG_BIT(SIP_DIGEST_SHA256))

/** Longest hex digest (SHA-256) plus the NUL. */
#define SIP_DIGEST_HEX_MAX 65

/** Length of the hex digest of @p alg: 32 (MD5) or 64 (SHA-256). */
size_t sip_digest_hex_len(enum sip_digest_alg alg);
/** Name used in the algorithm parameter: "MD5" or "SHA-256". */
const char *sip_digest_alg_name(enum sip_digest_alg alg);

/**
 * HA1 = H(@p username ":" @p realm ":" @p password) as lower-case hex into
 * @p out (SIP_DIGEST_HEX_MAX bytes, NUL-terminated).
 * @return the hex length, or -EINVAL (unknown algorithm), -ENOMEM.
 */
int sip_digest_ha1(enum sip_digest_alg alg, sip_str username, sip_str realm,
		   sip_str password, char *out);

/**
 * The response for qop=auth (RFC 7616 §3.4.1): H(HA1 ":" nonce ":" nc ":"
 * cnonce ":" qop ":" H(method ":" uri)), lower-case hex into @p out
 * (SIP_DIGEST_HEX_MAX bytes, NUL-terminated). @p ha1 is the hex HA1.
 * @return the hex length, or -EINVAL, -ENOMEM.
 */
int sip_digest_response(enum sip_digest_alg alg, sip_str ha1, sip_str nonce,
			sip_str nc, sip_str cnonce, sip_str qop, sip_str method,
			sip_str uri, char *out);

/* ------------------------------------------------------------------------ */
/* User store                                                               */
/* ------------------------------------------------------------------------ */

/** Length of the nonce-signing secret kept in the store, bytes. */
#define SIP_USERDB_SECRET_LEN 32
/** Longest user name accepted by the store, bytes. */
#define SIP_USERDB_USER_MAX 64
/** Longest domain name, bytes. */
#define SIP_USERDB_DOMAIN_MAX 253
/** Longest password, bytes. */
#define SIP_USERDB_PASSWORD_MAX 1024

/** An open user store. One handle may be used from several threads (the
 * SQLite connection is opened serialized); every call is a short
 * transaction on the file. */
struct sip_userdb;

/** One user, as listed by sip_userdb_user_list(). */
struct sip_userdb_user {
	const char *username;
	const char *domain;
	int64_t created; /**< seconds since the epoch */
};

/**
 * Open (creating it with mode 0600 when absent) the database at @p path,
 * create or migrate the auth tables, and generate the secret on first use.
 * A file that cannot be written is opened read-only when its tables are
 * current; the writing calls then fail with -EROFS.
 * @return 0, -EACCES / -ENOENT (cannot open), -EROFS (must be migrated but
 *         cannot be written), -EBUSY (locked), -EPROTO (schema newer than
 *         this code), -EIO (not a database, other SQLite errors), -ENOMEM.
 */
int sip_userdb_open(const char *path, struct sip_userdb **out);
/**
 * The path of the sipd database into @p buf: @p given when non-empty,
 * else $SIPD_DB, else $XDG_DATA_HOME/sipd/sipd.db, else
 * ~/.local/share/sipd/sipd.db. For the two defaults the directory is
 * created (mode 0700).
 * @return 0, -ENAMETOOLONG, -ENOENT (no $HOME to default to), or the
 *         errno of a directory that cannot be created.
 */
int sip_db_path(const char *given, char *buf, size_t cap);

/** Close the store. NULL is a no-op. */
void sip_userdb_close(struct sip_userdb *db);

/** The text of the last SQLite error on this handle (for messages). */
const char *sip_userdb_errmsg(const struct sip_userdb *db);

/** Copy the nonce-signing secret (SIP_USERDB_SECRET_LEN bytes). */
void sip_userdb_secret(const struct sip_userdb *db, uint8_t *out);

/**
 * Add a served domain (stored lower-case; a host name, letters, digits,
 * '-' and '.').
 * @return 0, -EEXIST, -EINVAL (not a host name), -EROFS, -EBUSY, -EIO.
 */
int sip_userdb_domain_add(struct sip_userdb *db, const char *domain);
/**
 * Remove a served domain.
 * @return 0, -ENOENT, -ENOTEMPTY (it still has users), -EINVAL, -EROFS,
 *         -EBUSY, -EIO.
 */
int sip_userdb_domain_del(struct sip_userdb *db, const char *domain);
/** True when @p domain is served. @return 1, 0, or a negative errno. */
int sip_userdb_domain_exists(struct sip_userdb *db, sip_str domain);

/** Called once per domain in name order; a non-zero return stops the
 * listing and is returned by the list call. */
typedef int (*sip_userdb_domain_fn)(void *arg, const char *domain);
/** @return 0, the callback's non-zero value, or a negative errno. */
int sip_userdb_domain_list(struct sip_userdb *db, sip_userdb_domain_fn fn,
			   void *arg);

/**
 * Add user @p username in served domain @p domain with @p password (any
 * bytes but NUL, CR and LF, 1 to SIP_USERDB_PASSWORD_MAX of them). The user
 * name is case-sensitive and made of RFC 3261 user characters (unreserved
 * and "&=+$,;?/"), without escapes.
 * @return 0, -EEXIST (already present), -ENOENT (domain not served),
 *         -EINVAL (bad user name, domain or password), -EROFS, -EBUSY, -EIO.
 */
int sip_userdb_user_add(struct sip_userdb *db, const char *username,
			const char *domain, const char *password);
/** Remove a user. @return 0, -ENOENT, -EINVAL, -EROFS, -EBUSY, -EIO. */
int sip_userdb_user_del(struct sip_userdb *db, const char *username,
			const char *domain);
/** Replace a user's password (both HA1s).
 * @return 0, -ENOENT, -EINVAL, -EROFS, -EBUSY, -EIO. */
int sip_userdb_user_passwd(struct sip_userdb *db, const char *username,
			   const char *domain, const char *password);

/** Called once per user, ordered by domain then user name; a non-zero
 * return stops the listing and is returned by the list call. The strings
 * are valid during the call only. */
typedef int (*sip_userdb_user_fn)(void *arg, const struct sip_userdb_user *u);
/**
 * List the users of @p domain, or of every domain when it is NULL.
 * @return 0, the callback's non-zero value, or a negative errno.
 */
int sip_userdb_user_list(struct sip_userdb *db, const char *domain,
			 sip_userdb_user_fn fn, void *arg);

/**
 * The stored HA1 of @p username in realm @p realm (a served domain,
 * compared case-insensitively) for @p alg, hex and NUL-terminated, into
 * @p out of @p cap bytes (SIP_DIGEST_HEX_MAX is enough).
 * @return the hex length, -ENOENT (no such user or realm), -ENOSPC,
 *         -EINVAL, -EBUSY, -EIO.
 */
int sip_userdb_ha1(struct sip_userdb *db, sip_str username, sip_str realm,
		   enum sip_digest_alg alg, char *out, size_t cap);

/* ------------------------------------------------------------------------ */
/* Digest core                                                              */
/* ------------------------------------------------------------------------ */

/**
 * HA1 lookup for the verifier: the hex HA1 of @p username in @p realm for
 * @p alg into @p out (@p cap bytes, NUL-terminated).
 * @return the hex length, -ENOENT for an unknown user, or another negative
 *         errno for a failure of the store.
 */
typedef int (*sip_digest_ha1_fn)(void *arg, sip_str username, sip_str realm,
				 enum sip_digest_alg alg, char *out,
				 size_t cap);

/** sip_userdb_ha1() as a sip_digest_ha1_fn; @p arg is the sip_userdb. */
int sip_userdb_ha1_cb(void *arg, sip_str username, sip_str realm,
		      enum sip_digest_alg alg, char *out, size_t cap);

/** Wall clock: seconds since the epoch. Nonces outlive a restart, so this
 * must not be a monotonic clock. */
typedef uint64_t (*sip_digest_clock_fn)(void *arg);
/** Random source: fill @p out with @p len random bytes; 0 or -errno. */
typedef int (*sip_digest_rand_fn)(void *arg, uint8_t *out, size_t len);

struct sip_digest_config {
	/** Nonce-signing key (e.g. sip_userdb_secret()), copied; 16 to 64
	 * bytes. */
	const uint8_t *secret;
	size_t secret_len;
	/** Seconds a nonce stays fresh; 0 means 300. */
	uint32_t nonce_lifetime;
	/** Algorithms offered and accepted (SIP_DIGEST_ALG_BIT); 0 means
	 * SIP_DIGEST_ALGS_ALL. */
	unsigned algs;
	/** Challenges whose nonce-count is tracked (rounded up to a power
	 * of two, 8 bytes each, touched as used); 0 means 1,048,576: at
	 * 3,000 challenges/s a nonce is tracked for about 6 minutes. */
	size_t nc_slots;
	/** HA1 lookup (required). */
	sip_digest_ha1_fn ha1;
	void *ha1_arg;
	/** Clock; NULL means time(). */
	sip_digest_clock_fn clock;
	void *clock_arg;
	/** Random source for nonce salts; NULL means OpenSSL RAND_bytes(). */
	sip_digest_rand_fn rand;
	void *rand_arg;
};

/** Verification outcome. */
enum sip_digest_result {
	/** Credentials valid: the request is from info->username. */
	SIP_DIGEST_OK = 0,
	/** Valid credentials with an expired or already used nonce (or nc):
	 * challenge again with stale=true. */
	SIP_DIGEST_STALE,
	/** Wrong password, unknown user, wrong realm or URI, a nonce we did
	 * not issue, an algorithm we do not offer: challenge again. Unknown
	 * user and wrong password are not told apart, and cost the same. */
	SIP_DIGEST_BAD_CREDENTIALS,
	/** No credentials for this realm: challenge. */
	SIP_DIGEST_MISSING,
	/** Credentials that do not parse or lack a required parameter: 400. */
	SIP_DIGEST_MALFORMED,
	/** The HA1 lookup failed: 500. */
	SIP_DIGEST_ERROR,
};

/** Name of a result ("ok", "stale", ...). */
const char *sip_digest_result_name(enum sip_digest_result r);

/** The request the credentials are checked against. */
struct sip_digest_request {
	sip_str method; /**< the request method, as written           */
	sip_str ruri;	/**< Request-URI; empty: uri is not compared */
	sip_str realm;	/**< the realm we challenge with              */
};

/** What the verifier found (filled for every result). */
struct sip_digest_info {
	/** User name from the credentials (quoted-pairs resolved); empty
	 * when absent or too long. Authenticated only with SIP_DIGEST_OK. */
	char username[SIP_USERDB_USER_MAX + 1];
	enum sip_digest_alg alg;
	uint32_t nc;
	/** Why the result is not OK, for logs (static text). Unknown user
	 * and wrong password give the same text. */
	const char *reason;
};

/** Counters (relaxed, for tests and metrics). */
struct sip_digest_stats {
	uint64_t verified;     /**< sip_digest_verify() calls             */
	uint64_t ha1_lookups;  /**< HA1 lookups done                      */
	uint64_t ha1_derived;  /**< substitute HA1s computed              */
	uint64_t responses;    /**< response digests computed and compared */
	uint64_t challenges;   /**< nonces issued                          */
	uint64_t nc_evictions; /**< nonces refused as stale because newer
				    challenges took their slot            */
	uint64_t result[SIP_DIGEST_ERROR + 1]; /**< per result        */
};

/**
 * Challenges and verification. Thread-safe: the nonce-count tracker is
 * split into shards, each behind its own mutex; everything else is
 * read-only after creation.
 */
struct sip_digest;

/** Fill @p cfg with the defaults (no secret, no lookup). */
void sip_digest_config_default(struct sip_digest_config *cfg);
/**
 * @return 0, -EINVAL (no lookup, secret length out of range, no known
 *         algorithm), -ENOMEM.
 */
int sip_digest_create(const struct sip_digest_config *cfg,
		      struct sip_digest **out);
/** NULL is a no-op. */
void sip_digest_destroy(struct sip_digest *d);

/** Longest challenge value sip_digest_challenge() writes for a realm of
 * SIP_USERDB_DOMAIN_MAX bytes. */
#define SIP_DIGEST_CHALLENGE_MAX 512

/**
 * Issue a fresh nonce for @p realm into @p nonce (at least 44 bytes;
 * base64url, NUL-terminated).
 * @return its length, or a negative errno from the random source.
 */
int sip_digest_nonce(struct sip_digest *d, sip_str realm, char *nonce,
		     size_t cap);

/**
 * Write one challenge value, `Digest realm="..", nonce="..", opaque="..",
 * algorithm=.., qop="auth"[, stale=true]`, NUL-terminated into @p out.
 * @return its length, -ENOSPC, -EINVAL (realm or nonce empty, too long, or
 *         with '"', '\\' or controls).
 */
int sip_digest_challenge(struct sip_digest *d, sip_str realm,
			 enum sip_digest_alg alg, sip_str nonce, bool stale,
			 char *out, size_t cap);

/**
 * Write the challenge headers of a 401 (`WWW-Authenticate`) or, when
 * @p proxy, a 407 (`Proxy-Authenticate`): one per algorithm offered,
 * SHA-256 first, then MD5 (RFC 8760 §2.4), sharing one fresh nonce.
 * @return 0, -EINVAL, or a random source error. Writer overflow is left to
 *         sip_wr_finish().
 */
int sip_digest_challenge_write(struct sip_digest *d, struct sip_writer *w,
			       bool proxy, sip_str realm, bool stale);

/**
 * Verify one credentials value (an Authorization or Proxy-Authorization
 * header value) against @p req. An empty value is SIP_DIGEST_MISSING, a
 * scheme other than Digest SIP_DIGEST_MALFORMED. On SIP_DIGEST_OK the
 * nonce-count is recorded, so the same credentials are not accepted twice.
 */
enum sip_digest_result sip_digest_verify(struct sip_digest *d, sip_str value,
					 const struct sip_digest_request *req,
					 struct sip_digest_info *info);

/**
 * Verify the credentials of @p msg for @p realm: the first Authorization
 * (Proxy-Authorization when @p proxy) header with the Digest scheme and
 * realm @p realm, checked with the request's method and Request-URI. None →
 * SIP_DIGEST_MISSING.
 */
enum sip_digest_result sip_digest_verify_msg(struct sip_digest *d,
					     const struct sip_msg *msg,
					     bool proxy, sip_str realm,
					     struct sip_digest_info *info);

/** Copy the counters. */
void sip_digest_stats_get(const struct sip_digest *d,
			  struct sip_digest_stats *out);

/**
 * Whether the authenticated @p username in @p realm may send @p msg: the
 * address of record of From (To for REGISTER, §10.3 step 5) must be a sip
 * or sips URI whose user part (escapes resolved) is @p username and whose
 * host is @p realm (case-insensitive).
 * @return 0 when it matches, -EPERM when it does not (answer 403),
 *         -EBADMSG when the header is missing or does not parse.
 */
int sip_digest_aor_check(const struct sip_msg *msg, sip_str username,
			 sip_str realm);

/* ------------------------------------------------------------------------ */
/* Failure limiter                                                          */
/* ------------------------------------------------------------------------ */

/** What to do with a request from a source. */
enum sip_authlimit_verdict {
	SIP_AUTHLIMIT_ALLOW = 0, /**< go on                          */
	SIP_AUTHLIMIT_REJECT,	 /**< over the limit: answer 403     */
	SIP_AUTHLIMIT_DROP,	 /**< over the limit: send nothing   */
};

/** Called once when a source reaches the limit (again after it has fallen
 * below it). @p addr is the address as text. */
typedef void (*sip_authlimit_fn)(void *arg, const char *addr,
				 unsigned failures);

struct sip_authlimit_config {
	size_t capacity;	   /**< sources tracked; 0 means 4096      */
	uint64_t window_ms;	   /**< sliding window; 0 means 60000      */
	unsigned max_failures;	   /**< failures allowed in a window;
					0 means 10                       */
	bool silent;		   /**< over the limit: DROP, not REJECT    */
	sip_authlimit_fn on_limit; /**< may be NULL                 */
	void *arg;
};

/**
 * Failed authentications per source address (the port is ignored; IPv6
 * sources are counted per /64, IPv4-mapped ones as IPv4), counted in a
 * sliding window approximated from the current and the previous window. The
 * table is bounded: when full, the source seen least recently is forgotten.
 * Thread-safe (one mutex). The times given are milliseconds of any monotonic
 * clock.
 */
struct sip_authlimit;

/** @return 0, -EINVAL, -ENOMEM. */
int sip_authlimit_create(const struct sip_authlimit_config *cfg,
			 struct sip_authlimit **out);
/** NULL is a no-op. */
void sip_authlimit_destroy(struct sip_authlimit *l);
/** The verdict for a request from @p src (an unknown family is allowed). */
enum sip_authlimit_verdict sip_authlimit_check(struct sip_authlimit *l,
					       const struct sockaddr *src,
					       uint64_t now);
/** Count one failure from @p src; calls on_limit when it reaches the limit.
 * @return the failures in the window now. */
unsigned sip_authlimit_fail(struct sip_authlimit *l, const struct sockaddr *src,
			    uint64_t now);
/** Sources in the table. */
size_t sip_authlimit_size(struct sip_authlimit *l);

#endif /* SIPD_AUTH_H */
