/**
 * @file main.c  sipd: the SIP server. Parses the command line, starts the
 * workers (see worker.c) and stops them on SIGINT/SIGTERM.
 */
#include "sipd/worker.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#define SIPD_DEFAULT_UDP "udp:127.0.0.1:5060"
#define SIPD_DEFAULT_TCP "tcp:127.0.0.1:5060"
#define SIPD_MAX_WORKERS 64

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

static int parse_args(int argc, char **argv, struct sipd_config *cfg)
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
};

static void on_signal(uv_signal_t *sig, int signum)
{
	struct sipd_main *m = sig->data;

	fprintf(stderr, "sipd: %s, stopping\n",
		signum == SIGINT ? "SIGINT" : "SIGTERM");
	for (unsigned i = 0; i < m->nworkers; i++)
		sipd_worker_stop(m->workers[i]);
	uv_close((uv_handle_t *)&m->sigint, NULL);
	uv_close((uv_handle_t *)&m->sigterm, NULL);
}

int main(int argc, char **argv)
{
	static char bound[SIPD_MAX_LISTEN][64];
	struct sipd_config cfg = {0}, rest;
	struct sipd_main m = {0};
	uv_loop_t *loop = uv_default_loop();
	int r;

	if (parse_args(argc, argv, &cfg) < 0) {
		usage(stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);

	/* Worker 0 binds first, so that port 0 becomes a real port the
	 * other workers then share through SO_REUSEPORT. */
	r = sipd_worker_start(&cfg, 0, bound, &m.workers[0]);
	if (r < 0) {
		fprintf(stderr, "sipd: cannot start: %s\n", strerror(-r));
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

	if (r == 0) {
		m.sigint.data = m.sigterm.data = &m;
		uv_signal_init(loop, &m.sigint);
		uv_signal_init(loop, &m.sigterm);
		uv_signal_start(&m.sigint, on_signal, SIGINT);
		uv_signal_start(&m.sigterm, on_signal, SIGTERM);
		uv_run(loop, UV_RUN_DEFAULT);
	} else {
		for (unsigned i = 0; i < m.nworkers; i++)
			sipd_worker_stop(m.workers[i]);
	}
	for (unsigned i = 0; i < m.nworkers; i++)
		sipd_worker_join(m.workers[i]);
	uv_loop_close(loop);
	return r == 0 ? 0 : 1;
}
