/**
 * @file main.c  sipbench: a SIP load generator. Parses the command line,
 * starts the worker threads, shows progress and writes the summary.
 */
#include "sipbench/bench.h"
#include "sipbench/report.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 64

/* Interrupts received: the first drains, the second aborts. */
static volatile sig_atomic_t interrupts;

static void on_signal(int sig)
{
	(void)sig;
	if (interrupts < 2)
		interrupts++;
}

static void usage(FILE *out)
{
	fputs("usage: sipbench SCENARIO --target HOST:PORT [options]\n"
	      "       sipbench uas [--listen HOST:PORT] [options]\n"
	      "\n"
	      "scenarios:\n"
	      "  register   REGISTER N users (--users, --user), answering "
	      "digest\n"
	      "             challenges with --password; later rounds "
	      "refresh\n"
	      "  options    OPTIONS requests\n"
	      "  message    MESSAGE requests (text/plain)\n"
	      "  call       INVITE, 1xx in any order, 200, ACK, --hold, BYE\n"
	      "  uas        answer calls: 100, 180, 200 (retransmitted until "
	      "ACK),\n"
	      "             200 to BYE; 200 to OPTIONS, MESSAGE, REGISTER\n"
	      "\n"
	      "addresses (loopback only unless --allow-nonlocal):\n"
	      "  --target HOST:PORT     where requests go (IPv6: "
	      "[::1]:5060)\n"
	      "  --listen HOST:PORT     uas: where to answer (default "
	      "127.0.0.1:5060,\n"
	      "                         port 0 picks one; printed on "
	      "stderr)\n"
	      "  --transport udp|tcp    (default udp)\n"
	      "  --local-ports N        UDP sockets (local ports) in total "
	      "(default 1\n"
	      "                         per thread)\n"
	      "  --connections N        TCP connections in total (default 1 "
	      "per thread)\n"
	      "  --allow-nonlocal       allow a target outside 127.0.0.0/8 "
	      "and ::1\n"
	      "\n"
	      "load:\n"
	      "  --rate R               open loop: R attempts per second\n"
	      "  --ramp S               reach --rate linearly over S "
	      "seconds\n"
	      "  --inflight W           without --rate: keep W attempts in "
	      "flight;\n"
	      "                         with --rate: at most W in flight "
	      "(default\n"
	      "                         10000); uas: most calls at once "
	      "(20000)\n"
	      "                         (neither: --rate 10)\n"
	      "  --duration S           start attempts for S seconds (uas: "
	      "run S s)\n"
	      "  --max-requests N       start at most N attempts (register "
	      "default:\n"
	      "                         --users, when no --duration)\n"
	      "  --drain S              wait S seconds for attempts in "
	      "flight at\n"
	      "                         the end (default 5)\n"
	      "  --threads N            worker threads, each with its own "
	      "sockets\n"
	      "                         and share of rate, window and users\n"
	      "\n"
	      "SIP:\n"
	      "  --users N              distinct users (default 1)\n"
	      "  --user PATTERN         user names, %d is the number "
	      "(default user%d)\n"
	      "  --user-start N         first user number (default 1)\n"
	      "  --password P           digest password, %d is the user "
	      "number\n"
	      "  --domain D             domain of the URIs (default: target "
	      "host)\n"
	      "  --callee NAME          user called by options, message, "
	      "call\n"
	      "                         (default service)\n"
	      "  --expires S            REGISTER expiry (default 3600)\n"
	      "  --hold MS              call: time between ACK and BYE "
	      "(default 0)\n"
	      "  --t1 MS, --t2 MS       RFC 3261 timers (default 500, 4000)\n"
	      "  --timeout MS           bound on one transaction (default "
	      "64*T1)\n"
	      "  --dialog-timeout S     uas: bound from ACK to BYE (default "
	      "300)\n"
	      "  --register             uas: first register each user's "
	      "contact\n"
	      "                         at --target (UDP)\n"
	      "  --no-100               uas: do not send 100 Trying\n"
	      "\n"
	      "output:\n"
	      "  --json FILE            write the results as JSON\n"
	      "  --quiet                no progress line (shown only on a "
	      "terminal)\n"
	      "  -h, --help             this text\n"
	      "\n"
	      "Exit status: 0 when the run happened (failures included), 1 "
	      "when it\n"
	      "could not start, 2 on usage errors.\n",
	      out);
}

enum opt_id {
	O_TARGET = 256,
	O_LISTEN,
	O_TRANSPORT,
	O_LOCAL_PORTS,
	O_CONNECTIONS,
	O_ALLOW_NONLOCAL,
	O_RATE,
	O_RAMP,
	O_INFLIGHT,
	O_DURATION,
	O_MAX_REQUESTS,
	O_DRAIN,
	O_THREADS,
	O_USERS,
	O_USER,
	O_USER_START,
	O_PASSWORD,
	O_DOMAIN,
	O_CALLEE,
	O_EXPIRES,
	O_HOLD,
	O_T1,
	O_T2,
	O_TIMEOUT,
	O_DIALOG_TIMEOUT,
	O_REGISTER,
	O_NO_100,
	O_JSON,
	O_QUIET,
};

static const struct option long_opts[] = {
	{"target", required_argument, NULL, O_TARGET},
	{"listen", required_argument, NULL, O_LISTEN},
	{"transport", required_argument, NULL, O_TRANSPORT},
	{"local-ports", required_argument, NULL, O_LOCAL_PORTS},
	{"connections", required_argument, NULL, O_CONNECTIONS},
	{"allow-nonlocal", no_argument, NULL, O_ALLOW_NONLOCAL},
	{"rate", required_argument, NULL, O_RATE},
	{"ramp", required_argument, NULL, O_RAMP},
	{"inflight", required_argument, NULL, O_INFLIGHT},
	{"duration", required_argument, NULL, O_DURATION},
	{"max-requests", required_argument, NULL, O_MAX_REQUESTS},
	{"drain", required_argument, NULL, O_DRAIN},
	{"threads", required_argument, NULL, O_THREADS},
	{"users", required_argument, NULL, O_USERS},
	{"user", required_argument, NULL, O_USER},
	{"user-start", required_argument, NULL, O_USER_START},
	{"password", required_argument, NULL, O_PASSWORD},
	{"domain", required_argument, NULL, O_DOMAIN},
	{"callee", required_argument, NULL, O_CALLEE},
	{"expires", required_argument, NULL, O_EXPIRES},
	{"hold", required_argument, NULL, O_HOLD},
	{"t1", required_argument, NULL, O_T1},
	{"t2", required_argument, NULL, O_T2},
	{"timeout", required_argument, NULL, O_TIMEOUT},
	{"dialog-timeout", required_argument, NULL, O_DIALOG_TIMEOUT},
	{"register", no_argument, NULL, O_REGISTER},
	{"no-100", no_argument, NULL, O_NO_100},
	{"json", required_argument, NULL, O_JSON},
	{"quiet", no_argument, NULL, O_QUIET},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

static int parse_uint(const char *s, unsigned long long max,
		      unsigned long long *out)
{
	char *end;
	unsigned long long v = 0;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_double(const char *s, double *out)
{
	char *end;
	double v;

	if (!s || !*s)
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || !(v >= 0) || v > 1e9)
		return -EINVAL;
	*out = v;
	return 0;
}

/* "HOST:PORT", "[V6]:PORT" or "HOST" (port 5060). @p host gets the host as
 * written, brackets kept. */
static int parse_hostport(const char *spec, struct sockaddr_storage *ss,
			  socklen_t *len, char *host, size_t hcap)
{
	char name[256];
	const char *port = "5060", *colon;
	struct addrinfo hints, *res = NULL;
	size_t n;

	if (spec[0] == '[') {
		const char *rb = strchr(spec, ']');

		if (!rb || (rb[1] && rb[1] != ':'))
			return -EINVAL;
		n = (size_t)(rb - spec - 1);
		if (n == 0 || n >= sizeof(name))
			return -EINVAL;
		memcpy(name, spec + 1, n);
		name[n] = '\0';
		if (rb[1] == ':')
			port = rb + 2;
		n = (size_t)(rb - spec + 1);
	} else {
		colon = strchr(spec, ':');
		if (colon && strchr(colon + 1, ':'))
			return -EINVAL; /* IPv6 needs brackets */
		n = colon ? (size_t)(colon - spec) : strlen(spec);
		if (n == 0 || n >= sizeof(name))
			return -EINVAL;
		memcpy(name, spec, n);
		name[n] = '\0';
		if (colon)
			port = colon + 1;
	}
	if (n >= hcap)
		return -EINVAL;
	memcpy(host, spec, n);
	host[n] = '\0';
	{
		unsigned long long p;

		if (parse_uint(port, 65535, &p) < 0)
			return -EINVAL;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_DGRAM;
	hints.ai_flags = AI_NUMERICSERV;
	if (getaddrinfo(name, port, &hints, &res) != 0 || !res)
		return -EINVAL;
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static bool is_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in =
			(const struct sockaddr_in *)(const void *)ss;

		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 =
			(const struct sockaddr_in6 *)(const void *)ss;

		return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
	}
	return false;
}

static void format_addr(const struct sockaddr_storage *ss, char *buf,
			size_t cap)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 =
			(const struct sockaddr_in6 *)(const void *)ss;

		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
		snprintf(buf, cap, "[%s]:%u", ip, ntohs(in6->sin6_port));
	} else {
		const struct sockaddr_in *in =
			(const struct sockaddr_in *)(const void *)ss;

		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
		snprintf(buf, cap, "%s:%u", ip, ntohs(in->sin_port));
	}
}

/* A name pattern: short, at most one "%d" and no other '%'. */
static bool pattern_ok(const char *p)
{
	const char *d = strstr(p, "%d");

	if (strlen(p) >= 40 || !*p)
		return false;
	if (d)
		return !strchr(p, '%') ||
		       (strchr(p, '%') == d && !strchr(d + 2, '%'));
	return !strchr(p, '%');
}

struct cli {
	struct sb_config cfg;
	const char *json;
	bool quiet;
	char peer[300];
};

static int bad(const char *what, const char *arg)
{
	fprintf(stderr, "sipbench: bad %s '%s'\n", what, arg ? arg : "");
	return -EINVAL;
}

static int set_uint(const char *what, const char *arg, unsigned long long min,
		    unsigned long long max, unsigned *out)
{
	unsigned long long v = 0;

	if (parse_uint(arg, max, &v) < 0 || v < min)
		return bad(what, arg);
	*out = (unsigned)v;
	return 0;
}

static int parse_args(int argc, char **argv, struct cli *cli)
{
	struct sb_config *c = &cli->cfg;
	const char *target = NULL, *listen = "127.0.0.1:5060";
	char thost[128], lhost[128];
	bool allow = false, have_rate = false, have_inflight = false;
	bool have_local = false, have_conns = false, have_domain = false;
	unsigned long long v = 0;
	int opt, r = 0;

	memset(cli, 0, sizeof(*cli));
	c->threads = 1;
	c->users = 1;
	c->user_start = 1;
	snprintf(c->user_pat, sizeof(c->user_pat), "user%%d");
	snprintf(c->callee, sizeof(c->callee), "service");
	c->expires = 3600;
	c->t1_ms = 500;
	c->t2_ms = 4000;
	c->dialog_timeout_ms = 300000;
	c->drain = 5;
	if (argc < 2 || argv[1][0] == '-') {
		if (argc >= 2 && (strcmp(argv[1], "-h") == 0 ||
				  strcmp(argv[1], "--help") == 0)) {
			usage(stdout);
			return 1;
		}
		fputs("sipbench: which scenario?\n", stderr);
		return -EINVAL;
	}
	for (c->scenario = 0; c->scenario < SB_SC__COUNT; c->scenario++)
		if (strcmp(argv[1], sb_scenario_name(c->scenario)) == 0)
			break;
	if (c->scenario == SB_SC__COUNT)
		return bad("scenario", argv[1]);
	optind = 2;
	while (r == 0 &&
	       (opt = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
		switch (opt) {
		case 'h':
			usage(stdout);
			return 1;
		case O_TARGET:
			target = optarg;
			break;
		case O_LISTEN:
			listen = optarg;
			break;
		case O_TRANSPORT:
			if (strcmp(optarg, "udp") == 0)
				c->transport = SB_TP_UDP;
			else if (strcmp(optarg, "tcp") == 0)
				c->transport = SB_TP_TCP;
			else
				r = bad("transport", optarg);
			break;
		case O_LOCAL_PORTS:
			r = set_uint("--local-ports", optarg, 1, 4096,
				     &c->local_ports);
			have_local = true;
			break;
		case O_CONNECTIONS:
			r = set_uint("--connections", optarg, 1, 4096,
				     &c->connections);
			have_conns = true;
			break;
		case O_ALLOW_NONLOCAL:
			allow = true;
			break;
		case O_RATE:
			if (parse_double(optarg, &c->rate) < 0 || c->rate <= 0)
				r = bad("--rate", optarg);
			have_rate = true;
			break;
		case O_RAMP:
			if (parse_double(optarg, &c->ramp) < 0)
				r = bad("--ramp", optarg);
			break;
		case O_INFLIGHT:
			r = set_uint("--inflight", optarg, 1, 10000000,
				     &c->inflight);
			have_inflight = true;
			break;
		case O_DURATION:
			if (parse_double(optarg, &c->duration) < 0)
				r = bad("--duration", optarg);
			break;
		case O_MAX_REQUESTS:
			if (parse_uint(optarg, UINT64_MAX, &v) < 0)
				r = bad("--max-requests", optarg);
			c->max_requests = v;
			break;
		case O_DRAIN:
			if (parse_double(optarg, &c->drain) < 0)
				r = bad("--drain", optarg);
			break;
		case O_THREADS:
			r = set_uint("--threads", optarg, 1, MAX_THREADS,
				     &c->threads);
			break;
		case O_USERS:
			r = set_uint("--users", optarg, 1, 100000000,
				     &c->users);
			break;
		case O_USER:
			if (!pattern_ok(optarg))
				r = bad("--user", optarg);
			else
				snprintf(c->user_pat, sizeof(c->user_pat), "%s",
					 optarg);
			break;
		case O_USER_START:
			r = set_uint("--user-start", optarg, 0, 1000000000,
				     &c->user_start);
			break;
		case O_PASSWORD:
			if (!pattern_ok(optarg))
				r = bad("--password", optarg);
			snprintf(c->pass_pat, sizeof(c->pass_pat), "%s",
				 optarg);
			c->has_password = true;
			break;
		case O_DOMAIN:
			snprintf(c->domain, sizeof(c->domain), "%s", optarg);
			have_domain = true;
			break;
		case O_CALLEE:
			if (strlen(optarg) >= sizeof(c->callee))
				r = bad("--callee", optarg);
			snprintf(c->callee, sizeof(c->callee), "%s", optarg);
			break;
		case O_EXPIRES:
			r = set_uint("--expires", optarg, 0, 1u << 31,
				     &c->expires);
			break;
		case O_HOLD:
			r = set_uint("--hold", optarg, 0, 86400000,
				     &c->hold_ms);
			break;
		case O_T1:
			r = set_uint("--t1", optarg, 1, 60000, &c->t1_ms);
			break;
		case O_T2:
			r = set_uint("--t2", optarg, 1, 600000, &c->t2_ms);
			break;
		case O_TIMEOUT:
			r = set_uint("--timeout", optarg, 1, 86400000,
				     &c->timeout_ms);
			break;
		case O_DIALOG_TIMEOUT: {
			unsigned s = 0;

			r = set_uint("--dialog-timeout", optarg, 1, 86400, &s);
			c->dialog_timeout_ms = s * 1000u;
			break;
		}
		case O_REGISTER:
			c->uas_register = true;
			break;
		case O_NO_100:
			c->no_100 = true;
			break;
		case O_JSON:
			cli->json = optarg;
			break;
		case O_QUIET:
			cli->quiet = true;
			break;
		default:
			return -EINVAL;
		}
	}
	if (r < 0)
		return r;
	if (optind < argc)
		return bad("argument", argv[optind]);

	if (c->scenario != SB_SC_UAS || c->uas_register) {
		if (!target) {
			fputs("sipbench: --target HOST:PORT is required\n",
			      stderr);
			return -EINVAL;
		}
		if (parse_hostport(target, &c->target, &c->target_len, thost,
				   sizeof(thost)) < 0)
			return bad("--target", target);
		if (!allow && !is_loopback(&c->target)) {
			fprintf(stderr,
				"sipbench: %s is not a loopback address; "
				"use --allow-nonlocal for a test network\n",
				target);
			return -EINVAL;
		}
		c->has_target = true;
		if (!have_domain)
			memcpy(c->domain, thost, sizeof(c->domain));
		format_addr(&c->target, cli->peer, sizeof(cli->peer));
	}
	if (c->scenario == SB_SC_UAS) {
		if (parse_hostport(listen, &c->listen, &c->listen_len, lhost,
				   sizeof(lhost)) < 0)
			return bad("--listen", listen);
		if (!allow && !is_loopback(&c->listen)) {
			fprintf(stderr,
				"sipbench: %s is not a loopback address; "
				"use --allow-nonlocal for a test network\n",
				listen);
			return -EINVAL;
		}
		if (c->uas_register && c->transport != SB_TP_UDP) {
			fputs("sipbench: uas --register works over udp only\n",
			      stderr);
			return -EINVAL;
		}
		if (c->uas_register &&
		    c->target.ss_family != c->listen.ss_family) {
			fputs("sipbench: --target and --listen differ in "
			      "address family\n",
			      stderr);
			return -EINVAL;
		}
		if (!have_inflight)
			c->inflight = 20000;
		if (have_rate)
			fputs("sipbench: uas ignores --rate\n", stderr);
		c->rate = 0;
	} else {
		if (!have_rate && !have_inflight) {
			c->rate = 10;
			have_rate = true;
		}
		if (have_rate && !have_inflight)
			c->inflight = 10000;
		if (!have_rate)
			c->rate = 0;
		if (c->scenario == SB_SC_REGISTER && !c->max_requests &&
		    c->duration <= 0)
			c->max_requests = c->users;
		/* Each thread needs a share of the window and, for
		 * register, users of its own. */
		if (c->threads > c->inflight)
			c->threads = c->inflight;
		if (c->scenario == SB_SC_REGISTER && c->threads > c->users)
			c->threads = c->users;
	}
	if (!have_local || c->local_ports < c->threads)
		c->local_ports = c->threads;
	if (!have_conns || c->connections < c->threads)
		c->connections = c->threads;
	if (c->t2_ms < c->t1_ms)
		c->t2_ms = c->t1_ms;
	if (!c->has_password)
		snprintf(c->pass_pat, sizeof(c->pass_pat), "%s", "");
	return 0;
}

static void progress(FILE *out, struct sb_worker **ws, unsigned n, double t,
		     uint64_t *last_ok, double *last_t)
{
	uint64_t att = 0, ok = 0, fail = 0, rtx = 0, infl = 0;
	double rate;

	for (unsigned i = 0; i < n; i++) {
		struct sb_stats *st = sb_worker_stats(ws[i]);

		att += atomic_load_explicit(&st->attempted,
					    memory_order_relaxed);
		ok += atomic_load_explicit(&st->succeeded,
					   memory_order_relaxed);
		fail += atomic_load_explicit(&st->failed, memory_order_relaxed);
		rtx += atomic_load_explicit(&st->retrans, memory_order_relaxed);
		infl += atomic_load_explicit(&st->inflight,
					     memory_order_relaxed);
	}
	rate = t > *last_t ? (double)(ok - *last_ok) / (t - *last_t) : 0;
	*last_ok = ok;
	*last_t = t;
	fprintf(out,
		"\r%7.1fs  attempted %llu  ok %llu  failed %llu  rtx %llu  "
		"in flight %llu  %.0f/s   ",
		t, (unsigned long long)att, (unsigned long long)ok,
		(unsigned long long)fail, (unsigned long long)rtx,
		(unsigned long long)infl, rate);
	fflush(out);
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static int run(struct cli *cli)
{
	struct sb_config *c = &cli->cfg;
	struct sb_worker *ws[MAX_THREADS] = {0};
	pthread_t th[MAX_THREADS];
	struct sb_shared sh;
	struct sb_stats *total;
	struct sb_report rep;
	struct sigaction sa;
	unsigned started = 0;
	uint64_t last_ok = 0, t_end;
	double last_t = 0, last_shown = -1;
	bool tty = !cli->quiet && isatty(STDERR_FILENO);
	int rc = 0, r;

	if (getrandom(&c->run_id, sizeof(c->run_id), 0) !=
	    (ssize_t)sizeof(c->run_id))
		c->run_id = (uint32_t)time(NULL) ^ ((uint32_t)getpid() << 16);
	memset(&sh, 0, sizeof(sh));
	for (unsigned i = 0; i < c->threads; i++) {
		r = sb_worker_create(c, i, &sh, &ws[i]);
		if (r < 0) {
			fprintf(stderr, "sipbench: worker %u: %s\n", i,
				strerror(-r));
			rc = 1;
			goto out;
		}
		if (i == 0 && c->scenario == SB_SC_UAS) {
			/* The others bind the port the first one got. */
			struct sockaddr_storage ss = {0};
			socklen_t sl;

			if (sb_worker_local(ws[0], &ss, &sl) == 0) {
				memcpy(&c->listen, &ss, sl);
				c->listen_len = sl;
			}
			format_addr(&c->listen, cli->peer, sizeof(cli->peer));
			fprintf(stderr, "sipbench: listening on %s:%s\n",
				c->transport == SB_TP_TCP ? "tcp" : "udp",
				cli->peer);
		}
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);

	sh.t0_us = sb_now_us();
	for (; started < c->threads; started++) {
		r = pthread_create(&th[started], NULL, sb_worker_run,
				   ws[started]);
		if (r) {
			fprintf(stderr, "sipbench: thread: %s\n", strerror(r));
			atomic_store(&sh.stop, 2);
			rc = 1;
			break;
		}
	}
	for (;;) {
		bool all = true;
		double t = (double)(sb_now_us() - sh.t0_us) / 1e6;

		if (interrupts)
			atomic_store(&sh.stop, interrupts >= 2 ? 2 : 1);
		for (unsigned i = 0; i < started; i++)
			all = all && sb_worker_done(ws[i]);
		if (all)
			break;
		if (tty && t - last_shown >= 0.5) {
			progress(stderr, ws, started, t, &last_ok, &last_t);
			last_shown = t;
		}
		sleep_ms(50);
	}
	t_end = sb_now_us();
	for (unsigned i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	if (tty)
		fputs("\r\033[K", stderr);
	if (rc)
		goto out;

	total = calloc(2, sizeof(*total));
	if (!total) {
		rc = 1;
		goto out;
	}
	sb_hist_init(&total[0].lat);
	sb_hist_init(&total[1].lat);
	memset(&rep, 0, sizeof(rep));
	for (unsigned i = 0; i < started; i++) {
		struct sb_stats *reg = sb_worker_reg_stats(ws[i]);

		sb_stats_merge(&total[0], sb_worker_stats(ws[i]));
		if (reg) {
			sb_stats_merge(&total[1], reg);
			rep.reg = &total[1];
		}
	}
	rep.scenario = c->scenario;
	rep.transport = c->transport == SB_TP_TCP ? "tcp" : "udp";
	rep.peer = cli->peer;
	rep.threads = c->threads;
	rep.duration_s = (double)(t_end - sh.t0_us) / 1e6;
	rep.stats = &total[0];
	sb_report_text(stdout, &rep);
	fflush(stdout);
	if (cli->json && sb_report_json(cli->json, &rep) < 0) {
		fprintf(stderr, "sipbench: %s: %s\n", cli->json,
			strerror(errno));
		rc = 1;
	}
	free(total);
out:
	for (unsigned i = 0; i < c->threads; i++)
		sb_worker_destroy(ws[i]);
	return rc;
}

int main(int argc, char **argv)
{
	struct cli *cli = malloc(sizeof(*cli));
	int r;

	if (!cli) {
		fputs("sipbench: out of memory\n", stderr);
		return 1;
	}
	r = parse_args(argc, argv, cli);
	if (r) {
		free(cli);
		if (r > 0)
			return 0;
		fputs("try 'sipbench --help'\n", stderr);
		return 2;
	}
	r = run(cli);
	free(cli);
	return r;
}
