/**
 * @file main.c  sipd: the SIP server. Reads the configuration (the file of
 * --config, then the flags over it), opens the database (users, domains,
 * bindings) and the registrar that every worker shares, starts the
 * workers (see worker.c), expires bindings every second, reloads the file
 * on SIGHUP, and on SIGINT/SIGTERM stops the workers before writing out
 * the location store.
 *
 * A reload reaches the workers without waking them: what may change at
 * run time is read by the workers for each message or request — the log
 * level and format (atomics in the logger), auth on/off (an atomic in
 * struct sipd_live), the registrar's domains and expiry limits (behind
 * the registrar's read-write lock). The main thread writes them; nothing
 * is freed under a worker. Listen addresses, workers, the database, TLS
 * files, mode and uas need a restart.
 */
#include "auth/auth.h"
#include "config/config.h"
#include "location/location.h"
#include "registrar/registrar.h"
#include "sipd/admin.h"
#include "sipd/log.h"
#include "sipd/proxy_glue.h"
#include "sipd/regq.h"
#include "sipd/worker.h"
#include "transport/transport.h"

#include <errno.h>
#include <limits.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define SIPD_DEFAULT_UDP "udp:127.0.0.1:5060"
#define SIPD_DEFAULT_TCP "tcp:127.0.0.1:5060"
#define SIPD_MAX_WORKERS CFG_MAX_WORKERS

_Static_assert((int)SIPD_LOG_TRACE == (int)CFG_LOG_TRACE &&
		       (int)SIPD_LOG_ERROR == (int)CFG_LOG_ERROR &&
		       (int)SIPD_LOG_JSON == (int)CFG_LOG_JSON,
	       "log levels and formats of config.h and log.h agree");

static void usage(FILE *out)
{
	fputs("usage: sipd [options]\n"
	      "\n"
	      "      --config FILE    read this configuration file (INI, see\n"
	      "                       docs/CONFIG.md); flags override it;\n"
	      "                       SIGHUP reloads it\n"
	      "      --check-config FILE  check the file, print every error\n"
	      "                       as FILE:LINE:COLUMN: error: ... and "
	      "exit\n"
	      "  -l, --listen URI     listen address, repeatable: "
	      "udp:HOST:PORT,\n"
	      "                       tcp:HOST:PORT, tls:HOST:PORT,\n"
	      "                       ws:HOST:PORT, wss:HOST:PORT (SIP over\n"
	      "                       WebSocket; IPv6 in brackets; port 0\n"
	      "                       picks a free port)\n"
	      "                       default: " SIPD_DEFAULT_UDP
	      " and " SIPD_DEFAULT_TCP "\n"
	      "  -w, --workers N      worker threads, each with its own loop\n"
	      "                       (default: one per core)\n"
	      "  -d, --domain NAME    a domain served by the registrar, "
	      "repeatable\n"
	      "                       (default: this host's name, "
	      "localhost and\n"
	      "                       127.0.0.1); the domains of the user "
	      "database\n"
	      "                       are served too\n"
	      "      --db PATH        the database of users, domains and "
	      "bindings\n"
	      "                       (default: $SIPD_DB, else\n"
	      "                       $XDG_DATA_HOME/sipd/sipd.db, else\n"
	      "                       ~/.local/share/sipd/sipd.db); the same "
	      "file\n"
	      "                       sipctl --db works on\n"
	      "      --admin PATH|off the admin socket sipctl reg uses to\n"
	      "                       reach the running server (default:\n"
	      "                       the database path + .sock; mode 0600)\n"
	      "      --auth on|off    digest authentication of REGISTER "
	      "(default on)\n"
	      "      --mode MODE      proxy (default: registrar and stateful\n"
	      "                       proxy), redirect (registrar and 302\n"
	      "                       redirect server) or registrar\n"
	      "      --route DOMAIN=TARGETS  proxy: send requests for DOMAIN\n"
	      "                       to HOST[:PORT][;transport=udp|tcp|tls]\n"
	      "                       (comma-separated) instead of DNS;\n"
	      "                       repeatable\n"
	      "      --dns ADDR[:PORT]  proxy: DNS server for RFC 3263\n"
	      "                       lookups (NAPTR, SRV, A/AAAA);\n"
	      "                       repeatable (default: the servers\n"
	      "                       of /etc/resolv.conf)\n"
	      "      --dns-timeout MS  proxy: bound on one lookup; a\n"
	      "                       request whose lookup takes longer\n"
	      "                       gets 408 (default 4000)\n"
	      "      --trusted ADDR   proxy: requests from this address are\n"
	      "                       not challenged (407); repeatable\n"
	      "      --fork-timeout MS  proxy: how long the bindings of one\n"
	      "                       q value ring before the next (30000)\n"
	      "      --uas            answer calls: INVITE 180+200 with SDP,\n"
	      "                       BYE 200 (a minimal UAS for tests)\n"
	      "      --min-expires N, --max-expires N, --default-expires N\n"
	      "                       registrar expiry limits in seconds\n"
	      "                       (default 60, 7200, 3600)\n"
	      "      --nonce-lifetime N  seconds a digest nonce stays fresh;\n"
	      "                       older ones get stale=true (default 300)\n"
	      "      --digest-algorithms sha-256,md5|md5|sha-256\n"
	      "                       digest algorithms offered in a 401, one\n"
	      "                       challenge each, SHA-256 first (default\n"
	      "                       both; md5 for phones that stop at the\n"
	      "                       first challenge they cannot compute)\n"
	      "      --tls-cert FILE  certificate (PEM) for tls: and wss:\n"
	      "                       listeners\n"
	      "      --tls-key FILE   its private key (PEM)\n"
	      "      --tls-ca FILE    CAs to verify peers with\n"
	      "      --log-level L    error, warn, info (default), debug (a\n"
	      "                       line per request), trace (every SIP\n"
	      "                       message sent and received)\n"
	      "      --log-format F   text (default) or json (JSON lines)\n"
	      "  -v, --verbose        the same as --log-level debug\n"
	      "      --test-drop-every N  drop every Nth UDP datagram (tests)\n"
	      "  -h, --help           show this text\n",
	      out);
}

/* Flags that are a config key: the file's checks apply to them. */
static const struct {
	const char *shrt, *name, *section, *key;
} flag_keys[] = {
	{"-l", "--listen", "server", "listen"},
	{"-w", "--workers", "server", "workers"},
	{"-d", "--domain", "server", "domain"},
	{NULL, "--db", "server", "db"},
	{NULL, "--admin", "server", "admin"},
	{NULL, "--auth", "server", "auth"},
	{NULL, "--mode", "server", "mode"},
	{NULL, "--route", "proxy", "route"},
	{NULL, "--trusted", "proxy", "trusted"},
	{NULL, "--fork-timeout", "proxy", "fork_timeout"},
	{NULL, "--dns", "proxy", "dns"},
	{NULL, "--dns-timeout", "proxy", "dns_timeout"},
	{NULL, "--min-expires", "registrar", "min_expires"},
	{NULL, "--max-expires", "registrar", "max_expires"},
	{NULL, "--default-expires", "registrar", "default_expires"},
	{NULL, "--nonce-lifetime", "server", "nonce_lifetime"},
	{NULL, "--digest-algorithms", "server", "digest_algorithms"},
	{NULL, "--tls-cert", "tls", "cert"},
	{NULL, "--tls-key", "tls", "key"},
	{NULL, "--tls-ca", "tls", "ca"},
	{NULL, "--log-level", "log", "level"},
	{NULL, "--log-format", "log", "format"},
};

/* The command line. */
struct cli {
	struct cfg flags; /* keys given as flags */
	const char *config;
	const char *check;
	unsigned drop_every;
};

static int parse_uint(const char *s, unsigned max, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v > max)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

static int parse_args(int argc, char **argv, struct sipd_log *log,
		      struct cli *cli)
{
	bool verbose = false;
	char err[200];

	cfg_init(&cli->flags);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		bool done = false;

		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			exit(0);
		} else if (!strcmp(a, "--uas")) {
			cfg_set(&cli->flags, "server", "uas", "on", err,
				sizeof(err));
			continue;
		} else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
			verbose = true;
			continue;
		} else if (!v) {
			sipd_logf(log, SIPD_LOG_ERROR, SIPD_LOG_MAIN, "usage",
				  "%s: missing value or unknown option", a);
			return -EINVAL;
		}
		i++;
		for (size_t k = 0; k < sizeof(flag_keys) / sizeof(flag_keys[0]);
		     k++) {
			if (strcmp(a, flag_keys[k].name) != 0 &&
			    (!flag_keys[k].shrt ||
			     strcmp(a, flag_keys[k].shrt) != 0))
				continue;
			if (cfg_set(&cli->flags, flag_keys[k].section,
				    flag_keys[k].key, v, err,
				    sizeof(err)) < 0) {
				sipd_logf(log, SIPD_LOG_ERROR, SIPD_LOG_MAIN,
					  "usage", "%s: %s", a, err);
				return -EINVAL;
			}
			done = true;
			break;
		}
		if (done)
			continue;
		if (!strcmp(a, "--config")) {
			cli->config = v;
		} else if (!strcmp(a, "--check-config")) {
			cli->check = v;
		} else if (!strcmp(a, "--test-drop-every")) {
			if (parse_uint(v, 1000000, &cli->drop_every)) {
				sipd_logf(log, SIPD_LOG_ERROR, SIPD_LOG_MAIN,
					  "usage",
					  "--test-drop-every: expected a "
					  "number");
				return -EINVAL;
			}
		} else {
			sipd_logf(log, SIPD_LOG_ERROR, SIPD_LOG_MAIN, "usage",
				  "unknown option %s", a);
			return -EINVAL;
		}
	}
	if (verbose && !cli->flags.set[CFG_K_LOG_LEVEL])
		cfg_set(&cli->flags, "log", "level", "debug", err, sizeof(err));
	return 0;
}

/* ------------------------------------------------------------------------ */
/* The configuration file                                                   */
/* ------------------------------------------------------------------------ */

/* Every error as FILE:LINE:COLUMN: error: WHAT (flags: "--flag"). */
static void print_errors(FILE *out, const char *path,
			 const struct cfg_errors *e)
{
	for (unsigned i = 0; i < e->n; i++) {
		if (e->v[i].line)
			fprintf(out, "%s:%u:%u: error: %s\n", path,
				e->v[i].line, e->v[i].column, e->v[i].msg);
		else
			fprintf(out, "sipd: error: %s (command line)\n",
				e->v[i].msg);
	}
	if (e->dropped)
		fprintf(out, "%s: error: %u more errors\n", path, e->dropped);
}

/* The same errors as log events (for a reload). */
static void log_errors(struct sipd_log *log, const char *path,
		       const struct cfg_errors *e)
{
	for (unsigned i = 0; i < e->n; i++) {
		const struct sipd_log_field f[] = {
			SIPD_LF_STR("file", path),
			SIPD_LF_NUM("line", e->v[i].line),
			SIPD_LF_NUM("column", e->v[i].column),
			SIPD_LF_STR("error", e->v[i].msg),
		};

		sipd_log_event(log, SIPD_LOG_ERROR, SIPD_LOG_MAIN,
			       "config_error", f, 4, "%s:%u:%u: error: %s",
			       path, e->v[i].line, e->v[i].column, e->v[i].msg);
	}
}

/* --check-config FILE: 0 when valid, 1 otherwise. */
static int check_config(const char *path)
{
	static struct cfg c;
	static struct cfg_errors errs;
	int r;

	cfg_init(&c);
	r = cfg_load(&c, path, &errs);
	if (r == 0 || r == -EINVAL)
		cfg_validate(&c, &errs);
	if (r < 0 && r != -EINVAL) {
		fprintf(stderr, "%s: error: %s\n", path, strerror(-r));
		return 1;
	}
	if (errs.n || errs.dropped) {
		print_errors(stderr, path, &errs);
		return 1;
	}
	printf("%s: ok\n", path);
	return 0;
}

/* The file (when given) with the flags over it, checked. */
static int load_config(const struct cli *cli, struct cfg *out,
		       struct cfg_errors *errs)
{
	int r = 0;

	cfg_init(out);
	errs->n = errs->dropped = 0;
	if (cli->config)
		r = cfg_load(out, cli->config, errs);
	if (r < 0)
		return r;
	cfg_merge(out, &cli->flags);
	return cfg_validate(out, errs);
}

/* ------------------------------------------------------------------------ */
/* Services                                                                 */
/* ------------------------------------------------------------------------ */

struct sipd_main {
	struct sipd_worker *workers[SIPD_MAX_WORKERS];
	unsigned nworkers;
	uv_signal_t sigint;
	uv_signal_t sigterm;
	uv_signal_t sighup;
	uv_timer_t expire_timer;
	bool timer_on;
	unsigned ticks; /* of expire_timer */

	struct sipd_log *log;
	struct sipd_live live;
	struct cli cli;
	struct cfg cfg; /* in effect (the last good reload) */
	struct cfg next;
	struct cfg_errors errs;

	char db_path[PATH_MAX];
	char hostname[256];
	struct sip_userdb *userdb;
	struct sip_digest *digest;
	struct sip_authlimit *limit;
	struct loc_store *store;
	struct registrar *registrar;
	struct regq_hub *regq; /* commits reported to the workers */
	struct sipd_admin *admin;
	char admin_path[PATH_MAX + 8];
};

static void on_limit(void *arg, const char *addr, unsigned failures)
{
	struct sipd_log *log = arg;
	const struct sipd_log_field f[] = {
		SIPD_LF_STR("source", addr),
		SIPD_LF_NUM("failures", failures),
	};

	sipd_log_event(log, SIPD_LOG_WARN, SIPD_LOG_MAIN, "auth_limited", f, 2,
		       "%s: %u failed authentications, source is now "
		       "limited: further REGISTERs from it are refused (403) "
		       "for a while",
		       addr, failures);
}

static int has_user(void *arg, const struct sip_userdb_user *u)
{
	(void)arg;
	(void)u;
	return 1;
}

/* The served domains of @p c, NULL-terminated: the configured ones, else
 * this host's name, localhost and 127.0.0.1. */
static unsigned domains_of(struct sipd_main *m, const struct cfg *c,
			   const char *out[CFG_MAX_DOMAINS + 1])
{
	unsigned n = 0;

	for (unsigned i = 0; i < c->ndomains; i++)
		out[n++] = c->domain[i];
	if (n == 0) {
		if (m->hostname[0] && strcmp(m->hostname, "localhost") != 0)
			out[n++] = m->hostname;
		out[n++] = "localhost";
		out[n++] = "127.0.0.1";
	}
	out[n] = NULL;
	return n;
}

/* Served domains are realms of the user store, so that
 * `sipctl user add alice@DOMAIN` works for each of them. */
static void add_domains(struct sipd_main *m, const char *const *domains)
{
	for (unsigned i = 0; domains[i]; i++) {
		int r = sip_userdb_domain_add(m->userdb, domains[i]);

		if (r < 0 && r != -EEXIST && r != -EROFS)
			sipd_logf(m->log, SIPD_LOG_WARN, SIPD_LOG_MAIN,
				  "domain", "domain %s: %s", domains[i],
				  strerror(-r));
	}
}

static void registrar_settings(const struct cfg *c, const char *const *domains,
			       struct registrar_config *rc)
{
	rc->domains = domains;
	rc->min_expires = c->min_expires;
	rc->max_expires = c->max_expires;
	rc->default_expires = c->default_expires;
}

/* The database, the stores and the registrar every worker shares. */
static int open_services(struct sipd_main *m)
{
	const struct cfg *c = &m->cfg;
	struct sip_digest_config dc;
	struct sip_authlimit_config lc = {.on_limit = on_limit, .arg = m->log};
	struct loc_config lcfg = {0};
	struct registrar_config rc = {0};
	uint8_t secret[SIP_USERDB_SECRET_LEN];
	const char *domains[CFG_MAX_DOMAINS + 1];
	char err[512] = "";
	int r;

	r = sip_db_path(c->db[0] ? c->db : NULL, m->db_path,
			sizeof(m->db_path));
	if (r < 0) {
		sipd_logf(m->log, SIPD_LOG_ERROR, SIPD_LOG_MAIN, "db",
			  "database path: %s%s", strerror(-r),
			  r == -ENOENT ? " (give --db PATH or set SIPD_DB)"
				       : "");
		return r;
	}
	r = sip_userdb_open(m->db_path, &m->userdb);
	if (r < 0) {
		sipd_logf(m->log, SIPD_LOG_ERROR, SIPD_LOG_MAIN, "db",
			  "cannot open the user database %s: %s", m->db_path,
			  strerror(-r));
		return r;
	}
	domains_of(m, c, domains);
	add_domains(m, domains);
	sip_userdb_secret(m->userdb, secret);
	sip_digest_config_default(&dc);
	dc.secret = secret;
	dc.secret_len = sizeof(secret);
	dc.ha1 = sip_userdb_ha1_cb;
	dc.ha1_arg = m->userdb;
	dc.nonce_lifetime = c->nonce_lifetime;
	dc.algs = (c->digest_algs & CFG_DIGEST_MD5
			   ? SIP_DIGEST_ALG_BIT(SIP_DIGEST_MD5)
			   : 0) |
		  (c->digest_algs & CFG_DIGEST_SHA256
			   ? SIP_DIGEST_ALG_BIT(SIP_DIGEST_SHA256)
			   : 0);
	r = sip_digest_create(&dc, &m->digest);
	memset(secret, 0, sizeof(secret));
	if (r < 0)
		return r;
	r = sip_authlimit_create(&lc, &m->limit);
	if (r < 0)
		return r;
	lcfg.db_path = m->db_path;
	lcfg.now = (int64_t)time(NULL);
	lcfg.queue_wait_ms = 100;
	r = regq_hub_create(c->workers, &m->regq);
	if (r < 0)
		return r;
	lcfg.on_commit = regq_hub_on_commit;
	/* every change has an answer waiting: gather 1 ms, not 10 (the
	 * writer shares the workers' cores; without any gathering it
	 * commits a row or two at a time and costs 2x per row, see
	 * docs/PERFORMANCE.md) */
	lcfg.batch_us = 1000;
	lcfg.commit_arg = m->regq;
	r = loc_store_open(&lcfg, &m->store, err, sizeof(err));
	if (r < 0) {
		sipd_logf(m->log, SIPD_LOG_ERROR, SIPD_LOG_MAIN, "db",
			  "location store: %s", err[0] ? err : strerror(-r));
		return r;
	}
	regq_hub_set_store(m->regq, m->store);
	rc.store = m->store;
	rc.userdb = m->userdb;
	rc.digest = m->digest;
	rc.limit = m->limit;
	rc.durable = true;
	registrar_settings(c, domains, &rc);
	return registrar_create(&rc, &m->registrar);
}

static void close_services(struct sipd_main *m)
{
	registrar_destroy(m->registrar);
	if (m->store) {
		int r = loc_store_flush(m->store);

		if (r < 0)
			sipd_logf(m->log, SIPD_LOG_ERROR, SIPD_LOG_MAIN, "db",
				  "location store: %s", strerror(-r));
		loc_store_destroy(m->store);
	}
	regq_hub_destroy(m->regq); /* after the writer thread is gone */
	sip_authlimit_destroy(m->limit);
	sip_digest_destroy(m->digest);
	sip_userdb_close(m->userdb);
}

static void print_banner(struct sipd_main *m)
{
	const char *domains[CFG_MAX_DOMAINS + 1];
	char list[CFG_MAX_DOMAINS * CFG_NAME_MAX] = "";
	size_t len = 0;
	unsigned n = domains_of(m, &m->cfg, domains);

	sipd_logf(m->log, SIPD_LOG_INFO, SIPD_LOG_MAIN, "db",
		  "database %s, auth %s", m->db_path,
		  m->cfg.auth ? "on" : "off");
	for (unsigned i = 0; i < n && len < sizeof(list); i++)
		len += (size_t)snprintf(list + len, sizeof(list) - len, " %s",
					domains[i]);
	sipd_logf(m->log, SIPD_LOG_INFO, SIPD_LOG_MAIN, "domains",
		  "domains:%s (and those of the database)", list);
	sipd_logf(m->log, SIPD_LOG_INFO, SIPD_LOG_MAIN, "bindings",
		  "%zu bindings loaded", loc_store_count(m->store));
	if (m->cfg.auth &&
	    sip_userdb_user_list(m->userdb, NULL, has_user, NULL) == 0)
		sipd_logf(m->log, SIPD_LOG_INFO, SIPD_LOG_MAIN, "no_users",
			  "no users yet; add one with: build/sipctl --db %s "
			  "user add alice@%s",
			  m->db_path, domains[0]);
}

/* ------------------------------------------------------------------------ */
/* SIGHUP                                                                   */
/* ------------------------------------------------------------------------ */

static void fill_defaults(struct cfg *c);

static bool same_list(const char (*a)[CFG_URI_MAX], unsigned na,
		      const char (*b)[CFG_URI_MAX], unsigned nb)
{
	if (na != nb)
		return false;
	for (unsigned i = 0; i < na; i++)
		if (strcmp(a[i], b[i]) != 0)
			return false;
	return true;
}

static void needs_restart(struct sipd_main *m, enum cfg_key k)
{
	const struct sipd_log_field f[] = {
		SIPD_LF_STR("section", cfg_key_section(k)),
		SIPD_LF_STR("key", cfg_key_name(k)),
	};

	sipd_log_event(m->log, SIPD_LOG_WARN, SIPD_LOG_MAIN, "reload_restart",
		       f, 2,
		       "reload: [%s] %s changed; needs a restart, not "
		       "applied",
		       cfg_key_section(k), cfg_key_name(k));
}

/* What a reload cannot change: logged, and kept as it runs. */
static void check_restart_keys(struct sipd_main *m, struct cfg *n)
{
	const struct cfg *o = &m->cfg;

	if (!same_list(o->listen, o->nlisten, n->listen, n->nlisten))
		needs_restart(m, CFG_K_LISTEN);
	if (o->workers != n->workers)
		needs_restart(m, CFG_K_WORKERS);
	if (strcmp(o->db, n->db) != 0)
		needs_restart(m, CFG_K_DB);
	if (strcmp(o->admin, n->admin) != 0)
		needs_restart(m, CFG_K_ADMIN);
	if (o->mode != n->mode)
		needs_restart(m, CFG_K_MODE);
	if (o->uas != n->uas)
		needs_restart(m, CFG_K_UAS);
	if (o->nonce_lifetime != n->nonce_lifetime)
		needs_restart(m, CFG_K_NONCE_LIFETIME);
	if (o->digest_algs != n->digest_algs)
		needs_restart(m, CFG_K_DIGEST_ALGORITHMS);
	if (strcmp(o->tls_cert, n->tls_cert) != 0)
		needs_restart(m, CFG_K_TLS_CERT);
	if (strcmp(o->tls_key, n->tls_key) != 0)
		needs_restart(m, CFG_K_TLS_KEY);
	if (strcmp(o->tls_ca, n->tls_ca) != 0)
		needs_restart(m, CFG_K_TLS_CA);
	if (o->nroutes != n->nroutes ||
	    memcmp(o->route, n->route, sizeof(o->route)) != 0)
		needs_restart(m, CFG_K_PROXY_ROUTE);
	if (o->ntrusted != n->ntrusted ||
	    memcmp(o->trusted, n->trusted, sizeof(o->trusted)) != 0)
		needs_restart(m, CFG_K_PROXY_TRUSTED);
	if (o->fork_timeout != n->fork_timeout)
		needs_restart(m, CFG_K_PROXY_FORK_TIMEOUT);
	if (o->ndns != n->ndns || memcmp(o->dns, n->dns, sizeof(o->dns)) != 0)
		needs_restart(m, CFG_K_PROXY_DNS);
	if (o->dns_timeout != n->dns_timeout)
		needs_restart(m, CFG_K_PROXY_DNS_TIMEOUT);
	memcpy(n->dns, o->dns, sizeof(n->dns));
	n->ndns = o->ndns;
	n->dns_timeout = o->dns_timeout;
	memcpy(n->route, o->route, sizeof(n->route));
	n->nroutes = o->nroutes;
	memcpy(n->trusted, o->trusted, sizeof(n->trusted));
	n->ntrusted = o->ntrusted;
	n->fork_timeout = o->fork_timeout;
	/* keep what runs, so that the next reload compares with it */
	memcpy(n->listen, o->listen, sizeof(n->listen));
	n->nlisten = o->nlisten;
	n->workers = o->workers;
	memcpy(n->db, o->db, sizeof(n->db));
	memcpy(n->admin, o->admin, sizeof(n->admin));
	n->mode = o->mode;
	n->uas = o->uas;
	n->nonce_lifetime = o->nonce_lifetime;
	n->digest_algs = o->digest_algs;
	memcpy(n->tls_cert, o->tls_cert, sizeof(n->tls_cert));
	memcpy(n->tls_key, o->tls_key, sizeof(n->tls_key));
	memcpy(n->tls_ca, o->tls_ca, sizeof(n->tls_ca));
}

static void reload(struct sipd_main *m)
{
	const char *path = m->cli.config;
	const char *domains[CFG_MAX_DOMAINS + 1];
	struct registrar_config rc = {0};
	struct cfg *n = &m->next;
	int r;

	if (!path) {
		sipd_logf(m->log, SIPD_LOG_WARN, SIPD_LOG_MAIN, "reload",
			  "SIGHUP: no --config file to reload");
		return;
	}
	sipd_logf(m->log, SIPD_LOG_INFO, SIPD_LOG_MAIN, "reload",
		  "SIGHUP: reloading %s", path);
	r = load_config(&m->cli, n, &m->errs);
	if (r < 0) {
		if (r == -EINVAL)
			log_errors(m->log, path, &m->errs);
		else
			sipd_logf(m->log, SIPD_LOG_ERROR, SIPD_LOG_MAIN,
				  "config_error", "%s: %s", path, strerror(-r));
		sipd_logf(m->log, SIPD_LOG_ERROR, SIPD_LOG_MAIN,
			  "reload_failed",
			  "reload failed; the running configuration stays");
		return;
	}
	fill_defaults(n);
	check_restart_keys(m, n);

	domains_of(m, n, domains);
	registrar_settings(n, domains, &rc);
	r = registrar_reconfigure(m->registrar, &rc);
	if (r < 0) {
		sipd_logf(m->log, SIPD_LOG_ERROR, SIPD_LOG_MAIN,
			  "reload_failed", "reload failed: registrar: %s",
			  strerror(-r));
		return;
	}
	add_domains(m, domains);
	atomic_store(&m->live.auth, n->auth);
	/* said before the level changes, so that it shows at the old one */
	sipd_logf(m->log, SIPD_LOG_INFO, SIPD_LOG_MAIN, "reload",
		  "reloaded %s: log level %s, format %s, auth %s, expiry "
		  "%u/%u/%u",
		  path, cfg_log_level_name(n->log_level),
		  cfg_log_format_name(n->log_format), n->auth ? "on" : "off",
		  n->min_expires, n->default_expires, n->max_expires);
	sipd_log_set(m->log, (enum sipd_log_level)n->log_level,
		     (enum sipd_log_format)n->log_format);
	m->cfg = *n;
}

/* The admin socket: explicit path (its failure stops sipd), "off", or the
 * database path + ".sock" (a failure is only warned about). */
static int open_admin(struct sipd_main *m, uv_loop_t *loop)
{
	bool dflt = !m->cfg.admin[0];
	char err[PATH_MAX + 128] = "";
	int r;

	if (!strcmp(m->cfg.admin, "off"))
		return 0;
	snprintf(m->admin_path, sizeof(m->admin_path), "%s%s",
		 dflt ? m->db_path : m->cfg.admin, dflt ? ".sock" : "");
	r = sipd_admin_open(loop, m->admin_path, m->store, m->log, &m->admin,
			    err, sizeof(err));
	if (r < 0) {
		sipd_logf(m->log, dflt ? SIPD_LOG_WARN : SIPD_LOG_ERROR,
			  SIPD_LOG_MAIN, "admin", "%s%s",
			  err[0] ? err : uv_strerror(r),
			  dflt ? "; running without it" : "");
		return dflt ? 0 : r;
	}
	sipd_logf(m->log, SIPD_LOG_INFO, SIPD_LOG_MAIN, "admin",
		  "admin socket %s", m->admin_path);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Main loop                                                                */
/* ------------------------------------------------------------------------ */

/* Every second: bindings whose time has passed are removed. */
static void on_expire(uv_timer_t *t)
{
	struct sipd_main *m = t->data;

	loc_store_expire(m->store, (int64_t)time(NULL), NULL, NULL);
#ifdef __GLIBC__
	/* Every 30 s, give the pages freed inside the heaps back to the
	 * system: a burst of REGISTERs leaves a transaction per request for
	 * Timer J (32 s over UDP, about 1 KiB each), and glibc returns only
	 * the top of a heap by itself — the bindings allocated in between
	 * would keep that memory resident for good. */
	if (++m->ticks % 30 == 0)
		malloc_trim(0);
#endif
}

static void on_sighup(uv_signal_t *sig, int signum)
{
	(void)signum;
	reload(sig->data);
}

static void on_signal(uv_signal_t *sig, int signum)
{
	struct sipd_main *m = sig->data;

	sipd_logf(m->log, SIPD_LOG_INFO, SIPD_LOG_MAIN, "stop", "%s, stopping",
		  signum == SIGINT ? "SIGINT" : "SIGTERM");
	for (unsigned i = 0; i < m->nworkers; i++)
		sipd_worker_stop(m->workers[i]);
	uv_close((uv_handle_t *)&m->sigint, NULL);
	uv_close((uv_handle_t *)&m->sigterm, NULL);
	uv_close((uv_handle_t *)&m->sighup, NULL);
	sipd_admin_close(m->admin);
	m->admin = NULL;
	if (m->timer_on)
		uv_close((uv_handle_t *)&m->expire_timer, NULL);
	m->timer_on = false;
}

/* The effective listen addresses and worker count (defaults filled in). */
static void fill_defaults(struct cfg *c)
{
	if (c->nlisten == 0) {
		snprintf(c->listen[0], CFG_URI_MAX, "%s", SIPD_DEFAULT_UDP);
		snprintf(c->listen[1], CFG_URI_MAX, "%s", SIPD_DEFAULT_TCP);
		c->nlisten = 2;
	}
	if (c->workers == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		c->workers = n < 1		    ? 1
			     : n > SIPD_MAX_WORKERS ? SIPD_MAX_WORKERS
						    : (unsigned)n;
	}
}

static void start_loop(struct sipd_main *m, uv_loop_t *loop)
{
	m->sigint.data = m->sigterm.data = m->sighup.data = m;
	uv_signal_init(loop, &m->sigint);
	uv_signal_init(loop, &m->sigterm);
	uv_signal_init(loop, &m->sighup);
	uv_signal_start(&m->sigint, on_signal, SIGINT);
	uv_signal_start(&m->sigterm, on_signal, SIGTERM);
	uv_signal_start(&m->sighup, on_sighup, SIGHUP);
	m->expire_timer.data = m;
	uv_timer_init(loop, &m->expire_timer);
	uv_timer_start(&m->expire_timer, on_expire, 1000, 1000);
	m->timer_on = true;
	uv_run(loop, UV_RUN_DEFAULT);
}

int main(int argc, char **argv)
{
	static char bound[SIPD_MAX_LISTEN][64];
	static char reserved[SIPD_MAX_LISTEN][64];
	static struct sipd_main m;
	static const char *routes[CFG_MAX_ROUTES + 1];
	static const char *trusted[CFG_MAX_TRUSTED + 1];
	static char dns[CFG_MAX_DNS * (CFG_URI_MAX + 1)];
	struct sipd_hub *hub = NULL;
	struct sipd_config cfg = {0}, rest;
	uv_loop_t *loop = uv_default_loop();
	int r;

	/* one logger for the process, created here and handed to every
	 * worker; level and format come from the configuration below */
	if (sipd_log_create(stderr, SIPD_LOG_INFO, SIPD_LOG_TEXT, &m.log) < 0)
		return 1;
	if (parse_args(argc, argv, m.log, &m.cli) < 0) {
		usage(stderr);
		sipd_log_destroy(m.log);
		return 2;
	}
	if (m.cli.check) {
		r = check_config(m.cli.check);
		sipd_log_destroy(m.log);
		return r;
	}
	r = load_config(&m.cli, &m.cfg, &m.errs);
	if (r < 0) {
		if (r == -EINVAL)
			print_errors(stderr, m.cli.config, &m.errs);
		else
			sipd_logf(m.log, SIPD_LOG_ERROR, SIPD_LOG_MAIN,
				  "config_error", "%s: %s", m.cli.config,
				  strerror(-r));
		sipd_log_destroy(m.log);
		return 1;
	}
	fill_defaults(&m.cfg);
	sipd_log_set(m.log, (enum sipd_log_level)m.cfg.log_level,
		     (enum sipd_log_format)m.cfg.log_format);
	signal(SIGPIPE, SIG_IGN);
	if (gethostname(m.hostname, sizeof(m.hostname) - 1) != 0)
		m.hostname[0] = '\0';
	atomic_init(&m.live.auth, m.cfg.auth);
	if (open_services(&m) < 0) {
		close_services(&m);
		sipd_log_destroy(m.log);
		return 1;
	}

	for (unsigned i = 0; i < m.cfg.nlisten && i < SIPD_MAX_LISTEN; i++)
		cfg.listen[cfg.nlisten++] = m.cfg.listen[i];
	cfg.workers = m.cfg.workers;
	cfg.uas = m.cfg.uas;
	cfg.tls_cert = m.cfg.tls_cert[0] ? m.cfg.tls_cert : NULL;
	cfg.tls_key = m.cfg.tls_key[0] ? m.cfg.tls_key : NULL;
	cfg.tls_ca = m.cfg.tls_ca[0] ? m.cfg.tls_ca : NULL;
	cfg.drop_every = m.cli.drop_every;
	cfg.registrar = m.registrar;
	cfg.regq = m.regq;
	cfg.live = &m.live;
	cfg.log = m.log;
	cfg.mode = (int)m.cfg.mode;
	cfg.store = m.store;
	cfg.userdb = m.userdb;
	cfg.digest = m.digest;
	for (unsigned i = 0; i < m.cfg.nroutes; i++)
		routes[i] = m.cfg.route[i];
	for (unsigned i = 0; i < m.cfg.ntrusted; i++)
		trusted[i] = m.cfg.trusted[i];
	cfg.routes = routes;
	cfg.trusted = trusted;
	cfg.fork_timeout = m.cfg.fork_timeout;
	for (unsigned i = 0; i < m.cfg.ndns; i++) {
		size_t used = strlen(dns);

		snprintf(dns + used, sizeof(dns) - used, "%s%s", i ? "," : "",
			 m.cfg.dns[i]);
	}
	cfg.dns = dns[0] ? dns : NULL;
	cfg.dns_timeout = m.cfg.dns_timeout;
	if (sipd_hub_create(cfg.workers, &hub) < 0) {
		close_services(&m);
		sipd_log_destroy(m.log);
		return 1;
	}
	cfg.hub = hub;

	/* Every address must be free (the workers' SO_REUSEPORT would
	 * otherwise join another sipd on it); port 0 becomes a real port
	 * the workers then share. */
	for (unsigned i = 0; i < cfg.nlisten; i++) {
		r = sip_tp_listen_reserve(cfg.listen[i], reserved[i],
					  sizeof(reserved[i]));
		if (r < 0) {
			sipd_logf(m.log, SIPD_LOG_ERROR, SIPD_LOG_MAIN, "start",
				  "cannot listen on %s: %s", cfg.listen[i],
				  strerror(-r));
			sipd_hub_destroy(hub);
			close_services(&m);
			sipd_log_destroy(m.log);
			return 1;
		}
		cfg.listen[i] = reserved[i];
	}
	r = sipd_worker_start(&cfg, 0, bound, &m.workers[0]);
	if (r < 0) {
		sipd_logf(m.log, SIPD_LOG_ERROR, SIPD_LOG_MAIN, "start",
			  "cannot start: %s", strerror(-r));
		sipd_hub_destroy(hub);
		close_services(&m);
		sipd_log_destroy(m.log);
		return 1;
	}
	m.nworkers = 1;
	rest = cfg;
	for (unsigned i = 0; i < cfg.nlisten; i++)
		rest.listen[i] = bound[i];
	for (unsigned i = 1; i < cfg.workers; i++) {
		r = sipd_worker_start(&rest, i, NULL, &m.workers[i]);
		if (r < 0) {
			sipd_logf(m.log, SIPD_LOG_ERROR, SIPD_LOG_MAIN, "start",
				  "worker %u: %s", i, strerror(-r));
			break;
		}
		m.nworkers++;
	}
	for (unsigned i = 0; i < cfg.nlisten; i++) {
		const struct sipd_log_field f[] = {
			SIPD_LF_STR("uri", bound[i]),
		};

		sipd_log_event(m.log, SIPD_LOG_INFO, SIPD_LOG_MAIN, "listen", f,
			       1, "listening on %s", bound[i]);
	}
	sipd_logf(m.log, SIPD_LOG_INFO, SIPD_LOG_MAIN, "workers",
		  "%u worker%s%s", m.nworkers, m.nworkers == 1 ? "" : "s",
		  cfg.uas ? ", UAS mode" : "");
	if (!cfg.uas)
		sipd_logf(m.log, SIPD_LOG_INFO, SIPD_LOG_MAIN, "mode",
			  "mode: %s",
			  cfg.mode == CFG_MODE_PROXY ? "registrar and proxy"
			  : cfg.mode == CFG_MODE_REDIRECT
				  ? "registrar and redirect server"
				  : "registrar");
	if (r == 0)
		r = open_admin(&m, loop);
	print_banner(&m); /* "bindings loaded" last: tests wait for it */

	if (r == 0)
		start_loop(&m, loop);
	else
		for (unsigned i = 0; i < m.nworkers; i++)
			sipd_worker_stop(m.workers[i]);
	/* every thread ends before any worker is freed: a worker may hand a
	 * message to another until it has stopped itself */
	for (unsigned i = 0; i < m.nworkers; i++)
		sipd_worker_wait(m.workers[i]);
	for (unsigned i = 0; i < m.nworkers; i++)
		sipd_worker_join(m.workers[i]);
	sipd_logf(m.log, SIPD_LOG_DEBUG, SIPD_LOG_MAIN, "handover",
		  "%lu responses handed over between workers",
		  sipd_hub_handovers(hub));
	sipd_hub_destroy(hub);
	/* the workers are gone: write out every binding they acknowledged */
	close_services(&m);
	uv_run(loop, UV_RUN_NOWAIT); /* close callbacks of a failed start */
	uv_loop_close(loop);
	sipd_log_destroy(m.log);
	return r == 0 ? 0 : 1;
}
