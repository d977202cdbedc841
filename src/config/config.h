/**
 * @file config.h  The sipd configuration file: INI sections and keys that
 * mirror the command-line flags, parsed into one plain struct.
 *
 * The parser is written here rather than taken from a library: the format
 * is a dozen keys in four sections, every error must carry its line and
 * column (and every error of a file is reported, not just the first), and
 * values are checked with the same rules as the flags (cfg_set()). That is
 * a few hundred lines of C, less than wiring a dependency to do the same.
 *
 * Syntax (docs/CONFIG.md): `[section]` lines, `key = value` lines, blank
 * lines, and comments on lines starting with `#` or `;`. An unquoted value
 * runs to the end of the line, trimmed; whitespace followed by `#` or `;`
 * starts a comment. A value in double quotes may hold anything, with `\"`
 * and `\\` as escapes. Keys and section names are case-sensitive
 * lowercase; `listen` and `domain` may be given several times.
 *
 * Sans-I/O except cfg_load(), which reads a file and calls cfg_parse().
 */
#ifndef SIPD_CONFIG_H
#define SIPD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#define CFG_MAX_LISTEN 16
#define CFG_MAX_DOMAINS 16
#define CFG_MAX_WORKERS 64
#define CFG_URI_MAX 64
#define CFG_NAME_MAX 256
#define CFG_PATH_MAX 4096
/** Longest expiry limit accepted (seconds): a week. */
#define CFG_EXPIRES_LIMIT 604800u
/** Longest nonce lifetime accepted (seconds): a day. */
#define CFG_NONCE_LIFETIME_LIMIT 86400u
/** Errors kept by one parse; later ones are counted in `dropped`. */
#define CFG_MAX_ERRORS 64

/** Digest algorithms of `digest_algorithms` (bits of cfg.digest_algs). */
#define CFG_DIGEST_MD5 1u
#define CFG_DIGEST_SHA256 2u

/** Log levels, least verbose first. */
enum cfg_log_level {
	CFG_LOG_ERROR = 0,
	CFG_LOG_WARN,
	CFG_LOG_INFO,
	CFG_LOG_DEBUG,
	CFG_LOG_TRACE,
};

enum cfg_log_format {
	CFG_LOG_TEXT = 0,
	CFG_LOG_JSON,
};

enum cfg_mode {
	CFG_MODE_REGISTRAR = 0, /**< REGISTER only                     */
	CFG_MODE_PROXY,		/**< registrar and stateful proxy (default) */
	CFG_MODE_REDIRECT,	/**< registrar and redirect server     */
};

/** Most [proxy] route and trusted values. */
#define CFG_MAX_ROUTES 16
#define CFG_MAX_TRUSTED 16
/** Most [proxy] dns values. */
#define CFG_MAX_DNS 4

/** Every key, as an index into struct cfg's `set` and `line`. */
enum cfg_key {
	CFG_K_LISTEN = 0,
	CFG_K_WORKERS,
	CFG_K_DOMAIN,
	CFG_K_DB,
	CFG_K_AUTH,
	CFG_K_MODE,
	CFG_K_UAS,
	CFG_K_MIN_EXPIRES,
	CFG_K_MAX_EXPIRES,
	CFG_K_DEFAULT_EXPIRES,
	CFG_K_NONCE_LIFETIME,
	CFG_K_DIGEST_ALGORITHMS,
	CFG_K_TLS_CERT,
	CFG_K_TLS_KEY,
	CFG_K_TLS_CA,
	CFG_K_LOG_LEVEL,
	CFG_K_LOG_FORMAT,
	CFG_K_PROXY_ROUTE,
	CFG_K_PROXY_TRUSTED,
	CFG_K_PROXY_FORK_TIMEOUT,
	CFG_K_ADMIN,
	CFG_K_PROXY_DNS,
	CFG_K_PROXY_DNS_TIMEOUT,
	CFG_NKEYS
};

/**
 * A configuration: plain data, no pointers, so it is copied by
 * assignment. cfg_init() fills in the defaults; `set[key]` tells which
 * keys were given (so that cfg_merge() knows what a flag overrides).
 */
struct cfg {
	char listen[CFG_MAX_LISTEN][CFG_URI_MAX];
	unsigned nlisten;
	unsigned workers; /**< 1..64; 0: one per core */
	char domain[CFG_MAX_DOMAINS][CFG_NAME_MAX];
	unsigned ndomains;
	char db[CFG_PATH_MAX];
	bool auth; /**< default on */
	enum cfg_mode mode;
	bool uas;
	unsigned min_expires;	  /**< default 60 */
	unsigned max_expires;	  /**< default 7200 */
	unsigned default_expires; /**< default 3600 */
	unsigned nonce_lifetime;  /**< seconds a digest nonce is fresh; 300 */
	unsigned digest_algs;	  /**< CFG_DIGEST_* bits offered; both */
	char tls_cert[CFG_PATH_MAX];
	char tls_key[CFG_PATH_MAX];
	char tls_ca[CFG_PATH_MAX];
	enum cfg_log_level log_level;	/**< default info */
	enum cfg_log_format log_format; /**< default text */
	/** [proxy] route: "DOMAIN=TARGETS", a static route (resolv) */
	char route[CFG_MAX_ROUTES][CFG_NAME_MAX];
	unsigned nroutes;
	/** [proxy] trusted: source addresses never challenged */
	char trusted[CFG_MAX_TRUSTED][CFG_URI_MAX];
	unsigned ntrusted;
	unsigned fork_timeout; /**< ms a q group rings; default 30000 */
	/** The admin socket: a path, "off", or empty for the default
	 * (the database path + ".sock") */
	char admin[CFG_PATH_MAX];
	/** [proxy] dns: DNS servers "ADDR[:PORT]" (IPv6 in brackets); none:
	 * the system's (/etc/resolv.conf) */
	char dns[CFG_MAX_DNS][CFG_URI_MAX];
	unsigned ndns;
	unsigned dns_timeout; /**< ms a lookup may take; default 4000 */

	bool set[CFG_NKEYS];	  /**< the key was given               */
	unsigned line[CFG_NKEYS]; /**< where (last time), 0 for a flag */
};

/** One error of a file: 1-based line and column, and what was expected. */
struct cfg_error {
	unsigned line;
	unsigned column;
	char msg[200];
};

struct cfg_errors {
	struct cfg_error v[CFG_MAX_ERRORS];
	unsigned n;
	unsigned dropped; /**< errors beyond CFG_MAX_ERRORS */
};

/** A configuration with nothing set: the defaults (no listen address, no
 * domain, workers 0, auth on, registrar, uas off, expiry 60/3600/7200,
 * nonce lifetime 300, digest algorithms SHA-256 and MD5, log level info, format
 * text). */
void cfg_init(struct cfg *c);

/**
 * Parse @p len bytes of INI text into @p c (which cfg_init() prepared),
 * collecting every error with its line and column into @p errs.
 * @return 0, or -EINVAL when @p errs holds at least one error (@p c then
 *         holds what parsed, and must not be used).
 */
int cfg_parse(struct cfg *c, const char *text, size_t len,
	      struct cfg_errors *errs);

/**
 * Read the file @p path and cfg_parse() it.
 * @return 0, -EINVAL (errors in @p errs), or the negative errno of
 *         opening or reading the file (-EFBIG above 1 MiB).
 */
int cfg_load(struct cfg *c, const char *path, struct cfg_errors *errs);

/**
 * Set one key from text, with the checks of the file (used for flags:
 * `--min-expires 30` is cfg_set(c, "registrar", "min_expires", "30")).
 * A repeatable key appends. `line` of the key is 0.
 * @param err  receives what was expected on failure
 * @return 0, -ENOENT (no such section or key), -EINVAL (bad value),
 *         -E2BIG (too many values).
 */
int cfg_set(struct cfg *c, const char *section, const char *key,
	    const char *value, char *err, size_t errcap);

/**
 * Apply @p over on top of @p base: every key set in @p over replaces the
 * one in @p base; a repeatable key given in @p over replaces all of its
 * values in @p base (flags override the file as a whole list).
 */
void cfg_merge(struct cfg *base, const struct cfg *over);

/**
 * The checks across keys: min_expires <= default_expires <= max_expires,
 * and a tls: or wss: listener needs tls cert and key. Errors are added to
 * @p errs (not reset), at column 1 of the line of the later key involved
 * (line 0 when it came from a flag).
 * @return 0, or -EINVAL when @p errs holds an error.
 */
int cfg_validate(const struct cfg *c, struct cfg_errors *errs);

/** "error", "warn", ... ; "text", "json". */
const char *cfg_log_level_name(enum cfg_log_level l);
const char *cfg_log_format_name(enum cfg_log_format f);

/** The key's name ("listen", "min_expires") and section ("server"). */
const char *cfg_key_name(enum cfg_key k);
const char *cfg_key_section(enum cfg_key k);

#endif /* SIPD_CONFIG_H */
