/**
 * @file main.c  sipd: the SIP server. Parses the command line, opens the
 * database (users, domains, bindings) and the registrar that every worker
 * shares, starts the workers (see worker.c), expires bindings every
 * second, and on SIGINT/SIGTERM stops the workers before writing out the
 * location store.
 */
#include "auth/auth.h"
#include "location/location.h"
#include "registrar/registrar.h"
#include "sipd/worker.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define SIPD_DEFAULT_UDP "udp:127.0.0.1:5060"
#define SIPD_DEFAULT_TCP "tcp:127.0.0.1:5060"
#define SIPD_MAX_WORKERS 64
#define SIPD_MAX_DOMAINS 16

static void usage(FILE *out)
{
	fputs("usage: sipd [options]\n"
	      "\n"
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
	      "      --auth on|off    digest authentication of REGISTER "
	      "(default on)\n"
	      "      --uas            answer calls: INVITE 180+200 with SDP,\n"
	      "                       BYE 200 (a minimal UAS for tests)\n"
	      "      --tls-cert FILE  certificate (PEM) for tls: and wss:\n"
	      "                       listeners\n"
	      "      --tls-key FILE   its private key (PEM)\n"
	      "      --tls-ca FILE    CAs to verify peers with\n"
	      "  -v, --verbose        one log line per message\n"
	      "      --test-drop-every N  drop every Nth UDP datagram (tests)\n"
	      "  -h, --help           show this text\n",
	      out);
}

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

/* What main() adds to struct sipd_config. */
struct sipd_opts {
	const char *domains[SIPD_MAX_DOMAINS + 4];
	unsigned ndomains;
	const char *db;
	bool auth_off;
};

static int parse_args(int argc, char **argv, struct sipd_config *cfg,
		      struct sipd_opts *opt)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		bool takes = true;

		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			exit(0);
		} else if (!strcmp(a, "--uas")) {
			cfg->uas = true;
			takes = false;
		} else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
			cfg->verbose = true;
			takes = false;
		} else if (!v) {
			fprintf(stderr,
				"sipd: %s: missing value or unknown "
				"option\n",
				a);
			return -EINVAL;
		} else if (!strcmp(a, "-l") || !strcmp(a, "--listen")) {
			if (cfg->nlisten >= SIPD_MAX_LISTEN) {
				fprintf(stderr, "sipd: too many --listen\n");
				return -EINVAL;
			}
			cfg->listen[cfg->nlisten++] = v;
		} else if (!strcmp(a, "-w") || !strcmp(a, "--workers")) {
			if (parse_uint(v, SIPD_MAX_WORKERS, &cfg->workers) ||
			    cfg->workers == 0) {
				fprintf(stderr, "sipd: --workers: 1 to %d\n",
					SIPD_MAX_WORKERS);
				return -EINVAL;
			}
		} else if (!strcmp(a, "-d") || !strcmp(a, "--domain")) {
			if (opt->ndomains >= SIPD_MAX_DOMAINS) {
				fprintf(stderr, "sipd: too many --domain\n");
				return -EINVAL;
			}
			opt->domains[opt->ndomains++] = v;
		} else if (!strcmp(a, "--db")) {
			opt->db = v;
		} else if (!strcmp(a, "--auth")) {
			if (strcmp(v, "on") != 0 && strcmp(v, "off") != 0) {
				fprintf(stderr, "sipd: --auth: on or off\n");
				return -EINVAL;
			}
			opt->auth_off = !strcmp(v, "off");
		} else if (!strcmp(a, "--tls-cert")) {
			cfg->tls_cert = v;
		} else if (!strcmp(a, "--tls-key")) {
			cfg->tls_key = v;
		} else if (!strcmp(a, "--tls-ca")) {
			cfg->tls_ca = v;
		} else if (!strcmp(a, "--test-drop-every")) {
			if (parse_uint(v, 1000000, &cfg->drop_every)) {
				fprintf(stderr, "sipd: --test-drop-every: a "
						"number\n");
				return -EINVAL;
			}
		} else {
			fprintf(stderr, "sipd: unknown option %s\n", a);
			return -EINVAL;
		}
		if (takes)
			i++;
	}
	if (cfg->nlisten == 0) {
		cfg->listen[cfg->nlisten++] = SIPD_DEFAULT_UDP;
		cfg->listen[cfg->nlisten++] = SIPD_DEFAULT_TCP;
	}
	if (cfg->workers == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		cfg->workers = n < 1		      ? 1
			       : n > SIPD_MAX_WORKERS ? SIPD_MAX_WORKERS
						      : (unsigned)n;
	}
	return 0;
}

struct sipd_main {
	struct sipd_worker *workers[SIPD_MAX_WORKERS];
	unsigned nworkers;
	uv_signal_t sigint;
	uv_signal_t sigterm;
	uv_timer_t expire_timer;
	bool timer_on;

	char db_path[PATH_MAX];
	char hostname[256];
	struct sip_userdb *userdb;
	struct sip_digest *digest;
	struct sip_authlimit *limit;
	struct loc_store *store;
	struct registrar *registrar;
};

static void on_limit(void *arg, const char *addr, unsigned failures)
{
	(void)arg;
	fprintf(stderr,
		"sipd: %s: %u failed authentications, further REGISTERs "
		"from it are refused (403) for a while\n",
		addr, failures);
}

static int has_user(void *arg, const struct sip_userdb_user *u)
{
	(void)arg;
	(void)u;
	return 1;
}

/* The default domains: this host's name, localhost and 127.0.0.1. */
static void default_domains(struct sipd_main *m, struct sipd_opts *opt)
{
	if (gethostname(m->hostname, sizeof(m->hostname) - 1) == 0 &&
	    m->hostname[0] && strcmp(m->hostname, "localhost") != 0)
		opt->domains[opt->ndomains++] = m->hostname;
	opt->domains[opt->ndomains++] = "localhost";
	opt->domains[opt->ndomains++] = "127.0.0.1";
}

/* The database, the stores and the registrar every worker shares. */
static int open_services(struct sipd_main *m, struct sipd_opts *opt,
			 struct sipd_config *cfg)
{
	struct sip_digest_config dc;
	struct sip_authlimit_config lc = {.on_limit = on_limit};
	struct loc_config lcfg = {0};
	struct registrar_config rc = {0};
	uint8_t secret[SIP_USERDB_SECRET_LEN];
	char err[512] = "";
	int r;

	r = sip_db_path(opt->db, m->db_path, sizeof(m->db_path));
	if (r < 0) {
		fprintf(stderr, "sipd: database path: %s%s\n", strerror(-r),
			r == -ENOENT ? " (give --db PATH or set SIPD_DB)" : "");
		return r;
	}
	r = sip_userdb_open(m->db_path, &m->userdb);
	if (r < 0) {
		fprintf(stderr, "sipd: cannot open the user database %s: %s\n",
			m->db_path, strerror(-r));
		return r;
	}
	/* served domains are realms of the user store, so that
	 * `sipctl user add alice@DOMAIN` works for each of them */
	for (unsigned i = 0; i < opt->ndomains; i++) {
		r = sip_userdb_domain_add(m->userdb, opt->domains[i]);
		if (r < 0 && r != -EEXIST && r != -EROFS)
			fprintf(stderr, "sipd: domain %s: %s\n",
				opt->domains[i], strerror(-r));
	}
	sip_userdb_secret(m->userdb, secret);
	sip_digest_config_default(&dc);
	dc.secret = secret;
	dc.secret_len = sizeof(secret);
	dc.ha1 = sip_userdb_ha1_cb;
	dc.ha1_arg = m->userdb;
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
	r = loc_store_open(&lcfg, &m->store, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "sipd: location store: %s\n",
			err[0] ? err : strerror(-r));
		return r;
	}
	rc.store = m->store;
	rc.userdb = m->userdb;
	rc.digest = m->digest;
	rc.limit = m->limit;
	rc.durable = true;
	opt->domains[opt->ndomains] = NULL;
	rc.domains = opt->domains;
	r = registrar_create(&rc, &m->registrar);
	if (r < 0)
		return r;
	cfg->registrar = m->registrar;
	cfg->auth = !opt->auth_off;
	return 0;
}

static void close_services(struct sipd_main *m)
{
	registrar_destroy(m->registrar);
	if (m->store) {
		int r = loc_store_flush(m->store);

		if (r < 0)
			fprintf(stderr, "sipd: location store: %s\n",
				strerror(-r));
		loc_store_destroy(m->store);
	}
	sip_authlimit_destroy(m->limit);
	sip_digest_destroy(m->digest);
	sip_userdb_close(m->userdb);
}

static void print_banner(struct sipd_main *m, const struct sipd_opts *opt,
			 const struct sipd_config *cfg)
{
	fprintf(stderr, "sipd: database %s, auth %s\n", m->db_path,
		cfg->auth ? "on" : "off");
	fprintf(stderr, "sipd: domains:");
	for (unsigned i = 0; i < opt->ndomains; i++)
		fprintf(stderr, " %s", opt->domains[i]);
	fprintf(stderr, " (and those of the database)\n");
	fprintf(stderr, "sipd: %zu bindings loaded\n",
		loc_store_count(m->store));
	if (cfg->auth &&
	    sip_userdb_user_list(m->userdb, NULL, has_user, NULL) == 0)
		fprintf(stderr,
			"sipd: no users yet; add one with:\n"
			"  build/sipctl --db %s user add alice@%s\n",
			m->db_path, opt->domains[0]);
}

/* Every second: bindings whose time has passed are removed. */
static void on_expire(uv_timer_t *t)
{
	struct sipd_main *m = t->data;

	loc_store_expire(m->store, (int64_t)time(NULL), NULL, NULL);
}

static void on_signal(uv_signal_t *sig, int signum)
{
	struct sipd_main *m = sig->data;

	fprintf(stderr, "sipd: %s, stopping\n",
		signum == SIGINT ? "SIGINT" : "SIGTERM");
	for (unsigned i = 0; i < m->nworkers; i++)
		sipd_worker_stop(m->workers[i]);
	uv_close((uv_handle_t *)&m->sigint, NULL);
	uv_close((uv_handle_t *)&m->sigterm, NULL);
	if (m->timer_on)
		uv_close((uv_handle_t *)&m->expire_timer, NULL);
	m->timer_on = false;
}

int main(int argc, char **argv)
{
	static char bound[SIPD_MAX_LISTEN][64];
	static struct sipd_main m;
	struct sipd_config cfg = {0}, rest;
	struct sipd_opts opt = {0};
	uv_loop_t *loop = uv_default_loop();
	int r;

	if (parse_args(argc, argv, &cfg, &opt) < 0) {
		usage(stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (opt.ndomains == 0)
		default_domains(&m, &opt);
	if (open_services(&m, &opt, &cfg) < 0) {
		close_services(&m);
		return 1;
	}

	/* Worker 0 binds first, so that port 0 becomes a real port the
	 * other workers then share through SO_REUSEPORT. */
	r = sipd_worker_start(&cfg, 0, bound, &m.workers[0]);
	if (r < 0) {
		fprintf(stderr, "sipd: cannot start: %s\n", strerror(-r));
		close_services(&m);
		return 1;
	}
	m.nworkers = 1;
	rest = cfg;
	for (unsigned i = 0; i < cfg.nlisten; i++)
		rest.listen[i] = bound[i];
	for (unsigned i = 1; i < cfg.workers; i++) {
		r = sipd_worker_start(&rest, i, NULL, &m.workers[i]);
		if (r < 0) {
			fprintf(stderr, "sipd: worker %u: %s\n", i,
				strerror(-r));
			break;
		}
		m.nworkers++;
	}
	for (unsigned i = 0; i < cfg.nlisten; i++)
		fprintf(stderr, "sipd: listening on %s\n", bound[i]);
	fprintf(stderr, "sipd: %u worker%s%s\n", m.nworkers,
		m.nworkers == 1 ? "" : "s", cfg.uas ? ", UAS mode" : "");
	print_banner(&m, &opt, &cfg);

	if (r == 0) {
		m.sigint.data = m.sigterm.data = &m;
		uv_signal_init(loop, &m.sigint);
		uv_signal_init(loop, &m.sigterm);
		uv_signal_start(&m.sigint, on_signal, SIGINT);
		uv_signal_start(&m.sigterm, on_signal, SIGTERM);
		m.expire_timer.data = &m;
		uv_timer_init(loop, &m.expire_timer);
		uv_timer_start(&m.expire_timer, on_expire, 1000, 1000);
		m.timer_on = true;
		uv_run(loop, UV_RUN_DEFAULT);
	} else {
		for (unsigned i = 0; i < m.nworkers; i++)
			sipd_worker_stop(m.workers[i]);
	}
	for (unsigned i = 0; i < m.nworkers; i++)
		sipd_worker_join(m.workers[i]);
	/* the workers are gone: write out every binding they acknowledged */
	close_services(&m);
	uv_loop_close(loop);
	return r == 0 ? 0 : 1;
}
