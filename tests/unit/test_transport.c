/** @file test_transport.c  Unit tests for the transport layer over real
 * loopback sockets: UDP (IPv4, IPv6, drop hook, SO_REUSEPORT), TCP framing,
 * keepalives and the close reasons, limits, connection reuse, TLS with a
 * certificate made at run time, and the Via helpers. */
#include "support/testcert.h"
#include "transport/transport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include <cmocka.h>

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

/* ------------------------------------------------------------------------ */
/* Fixtures                                                                 */
/* ------------------------------------------------------------------------ */

/* What one transport saw. */
struct rec {
	struct sip_tp *tp;
	bool echo; /* answer every message with the same bytes */
	int nrx;
	char last[4096];
	size_t last_len;
	sip_tp_conn_id last_conn;
	struct sockaddr_storage last_src;
	struct sip_tp_listener *last_lsn;
	int nup, ndown;
	sip_tp_conn_id last_up;
	enum sip_tp_close_reason last_reason;
	int last_err;
};

struct env {
	uv_loop_t loop;
	struct rec a, b;
	int fds[8];
	int nfds;
};

/* Certificate directory, made once for the TLS tests. */
/* the certificate every TLS test uses, made once per run */
static struct test_cert test_cert;

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Run the loop until @p cond holds or @p ms pass. */
#define WAIT_FOR(env, cond, ms)                                                \
	do {                                                                   \
		uint64_t deadline_ = now_ms() + (ms);                          \
		while (!(cond) && now_ms() < deadline_) {                      \
			uv_run(&(env)->loop, UV_RUN_NOWAIT);                   \
			usleep(300);                                           \
		}                                                              \
	} while (0)

static void on_recv(struct sip_tp *tp, const struct sip_tp_rx *rx, void *arg)
{
	struct rec *r = arg;

	r->nrx++;
	r->last_len = rx->len < sizeof(r->last) ? rx->len : sizeof(r->last);
	memcpy(r->last, rx->buf, r->last_len);
	r->last_conn = rx->conn;
	r->last_lsn = rx->lsn;
	memset(&r->last_src, 0, sizeof(r->last_src));
	memcpy(&r->last_src, rx->src,
	       rx->src->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
					      : sizeof(struct sockaddr_in));
	if (r->echo) {
		struct sip_tp_dest d = {
			.transport = rx->transport,
			.addr = rx->src,
			.conn = rx->conn,
			.lsn = rx->lsn,
		};
		assert_int_equal(sip_tp_send(tp, &d, rx->buf, rx->len, NULL),
				 0);
	}
}

static void on_conn(struct sip_tp *tp, sip_tp_conn_id conn,
		    enum sip_tp_conn_event ev, enum sip_tp_close_reason reason,
		    int err, void *arg)
{
	struct rec *r = arg;

	(void)tp;
	if (ev == SIP_TP_CONN_UP) {
		r->nup++;
		r->last_up = conn;
		return;
	}
	r->ndown++;
	r->last_reason = reason;
	r->last_err = err;
}

static void config(struct sip_tp_config *cfg, struct rec *r)
{
	sip_tp_config_default(cfg);
	cfg->recv = on_recv;
	cfg->on_conn = on_conn;
	cfg->arg = r;
}

static void make_tp(struct env *e, struct rec *r, struct sip_tp_config *cfg)
{
	assert_int_equal(sip_tp_create(&e->loop, cfg, &r->tp), 0);
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));

	assert_non_null(e);
	assert_int_equal(uv_loop_init(&e->loop), 0);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;

	for (int i = 0; i < e->nfds; i++)
		close(e->fds[i]);
	sip_tp_destroy(e->a.tp);
	sip_tp_destroy(e->b.tp);
	uv_run(&e->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&e->loop), 0);
	free(e);
	return 0;
}

static struct sip_tp_listener *listen_on(struct rec *r, const char *uri,
					 struct sockaddr_storage *addr)
{
	struct sip_tp_listen_config lc = {.uri = uri};
	struct sip_tp_listener *l = NULL;

	assert_int_equal(sip_tp_listen(r->tp, &lc, &l), 0);
	assert_int_equal(sip_tp_listener_addr(l, addr), 0);
	return l;
}

static uint16_t port_of(const struct sockaddr_storage *ss)
{
	return ntohs(ss->ss_family == AF_INET6
			     ? ((const struct sockaddr_in6 *)ss)->sin6_port
			     : ((const struct sockaddr_in *)ss)->sin_port);
}

/* A blocking raw TCP client connected to @p addr. */
static int raw_connect(struct env *e, const struct sockaddr_storage *addr)
{
	int fd = socket(addr->ss_family, SOCK_STREAM, 0);
	socklen_t len = addr->ss_family == AF_INET6
				? sizeof(struct sockaddr_in6)
				: sizeof(struct sockaddr_in);

	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (const struct sockaddr *)addr, len), 0);
	assert_true(e->nfds < 8);
	e->fds[e->nfds++] = fd;
	return fd;
}

static void raw_send(int fd, const char *s, size_t n)
{
	assert_int_equal(send(fd, s, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* Read what arrives on @p fd within @p ms while running the loop.
 * @return bytes read, 0 at EOF, -1 when nothing came. */
static ssize_t raw_recv(struct env *e, int fd, char *buf, size_t cap, int ms)
{
	uint64_t deadline = now_ms() + (uint64_t)ms;

	while (now_ms() < deadline) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		uv_run(&e->loop, UV_RUN_NOWAIT);
		if (poll(&p, 1, 1) == 1) {
			ssize_t n = recv(fd, buf, cap, 0);
			return n < 0 ? 0 : n; /* a reset counts as closed */
		}
	}
	return -1;
}

static const char msg_options[] = "OPTIONS sip:bob@example.com SIP/2.0\r\n"
				  "Via: SIP/2.0/TCP 127.0.0.1:5060;branch="
				  "z9hG4bK776asdhds\r\n"
				  "Max-Forwards: 70\r\n"
				  "To: <sip:bob@example.com>\r\n"
				  "From: <sip:alice@example.com>;tag=1928\r\n"
				  "Call-ID: a84b4c76e66710\r\n"
				  "CSeq: 63104 OPTIONS\r\n"
				  "Content-Length: 0\r\n\r\n";
#define MSG_LEN (sizeof(msg_options) - 1)

/* ------------------------------------------------------------------------ */
/* Addresses                                                                */
/* ------------------------------------------------------------------------ */

static void test_uri_parse(void **state)
{
	struct sockaddr_storage ss;
	unsigned tp;
	char buf[SIP_TP_URI_MAX];

	(void)state;
	assert_int_equal(sip_tp_uri_parse("udp:127.0.0.1:5060", &tp, &ss), 0);
	assert_int_equal(tp, SIP_TP_UDP);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(port_of(&ss), 5060);
	assert_int_equal(
		sip_tp_uri_format(tp, (struct sockaddr *)&ss, buf, sizeof(buf)),
		18);
	assert_string_equal(buf, "udp:127.0.0.1:5060");

	assert_int_equal(sip_tp_uri_parse("TCP:[::1]:5070", &tp, &ss), 0);
	assert_int_equal(tp, SIP_TP_TCP);
	assert_int_equal(ss.ss_family, AF_INET6);
	assert_int_equal(port_of(&ss), 5070);
	assert_true(sip_tp_uri_format(tp, (struct sockaddr *)&ss, buf,
				      sizeof(buf)) > 0);
	assert_string_equal(buf, "tcp:[::1]:5070");

	assert_int_equal(sip_tp_uri_parse("tls:0.0.0.0:0", &tp, &ss), 0);
	assert_int_equal(tp, SIP_TP_TLS);
	assert_int_equal(
		sip_tp_uri_format(tp, (struct sockaddr *)&ss, buf, sizeof(buf)),
		13);
	assert_string_equal(buf, "tls:0.0.0.0:0");
	assert_int_equal(
		sip_tp_uri_parse("wss:255.255.255.255:65535", &tp, &ss), 0);
	assert_int_equal(
		sip_tp_uri_format(tp, (struct sockaddr *)&ss, buf, sizeof(buf)),
		25);
	assert_string_equal(buf, "wss:255.255.255.255:65535");

	const char *bad[] = {
		"sctp:127.0.0.1:5060",	 "udp:127.0.0.1",
		"udp:127.0.0.1:",	 "udp:127.0.0.1:65536",
		"udp:127.0.0.1:5x",	 "tcp:::1:5060",
		"tcp:[::1]5060",	 "tcp:[::1",
		"udp:host.example:5060", "udp::5060",
		"tcp:[]:5060",		 "",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(sip_tp_uri_parse(bad[i], &tp, &ss), -EINVAL);
	assert_int_equal(sip_tp_uri_parse("udp:127.0.0.1:5060", &tp, &ss), 0);
	assert_int_equal(
		sip_tp_uri_format(SIP_TP_UDP, (struct sockaddr *)&ss, buf, 8),
		-ENOSPC);
	assert_string_equal(sip_tp_close_reason_name(SIP_TP_CLOSE_STALLED),
			    "stalled");
}

/* ------------------------------------------------------------------------ */
/* UDP                                                                      */
/* ------------------------------------------------------------------------ */

static void udp_exchange(struct env *e, const char *uri)
{
	struct sip_tp_config cfg;
	struct sockaddr_storage aaddr, baddr;
	struct sip_tp_stats st;

	config(&cfg, &e->a);
	make_tp(e, &e->a, &cfg);
	config(&cfg, &e->b);
	make_tp(e, &e->b, &cfg);
	e->a.echo = true;
	struct sip_tp_listen_config lc = {.uri = uri};
	struct sip_tp_listener *la;
	int rc = sip_tp_listen(e->a.tp, &lc, &la);
	if (rc == -EADDRNOTAVAIL || rc == -EAFNOSUPPORT)
		skip();
	assert_int_equal(rc, 0);
	sip_tp_listener_addr(la, &aaddr);
	assert_int_not_equal(port_of(&aaddr), 0);
	assert_int_equal(sip_tp_listener_transport(la), SIP_TP_UDP);
	listen_on(&e->b, uri, &baddr);

	struct sip_tp_dest d = {.transport = SIP_TP_UDP,
				.addr = (struct sockaddr *)&aaddr};
	for (int i = 0; i < 3; i++)
		assert_int_equal(
			sip_tp_send(e->b.tp, &d, msg_options, MSG_LEN, NULL),
			0);
	WAIT_FOR(e, e->b.nrx == 3, 2000);
	assert_int_equal(e->a.nrx, 3);
	assert_int_equal(e->b.nrx, 3);
	assert_ptr_equal(e->a.last_lsn, la);
	assert_int_equal(e->a.last_conn, 0);
	assert_int_equal(port_of(&e->a.last_src), port_of(&baddr));
	assert_int_equal(port_of(&e->b.last_src), port_of(&aaddr));
	assert_memory_equal(e->b.last, msg_options, MSG_LEN);
	sip_tp_stats_get(e->a.tp, &st);
	assert_int_equal(st.msgs_in, 3);
	assert_int_equal(st.msgs_out, 3);
	assert_int_equal(st.bytes_in, 3 * MSG_LEN);
	assert_int_equal(st.bytes_out, 3 * MSG_LEN);

	/* no socket of the other family */
	struct sockaddr_storage other;
	unsigned tpk;
	sip_tp_uri_parse(aaddr.ss_family == AF_INET ? "udp:[::1]:5060"
						    : "udp:127.0.0.1:5060",
			 &tpk, &other);
	d.addr = (struct sockaddr *)&other;
	assert_int_equal(sip_tp_send(e->b.tp, &d, "x", 1, NULL), -EAFNOSUPPORT);
}

static void test_udp_ipv4(void **state)
{
	udp_exchange(*state, "udp:127.0.0.1:0");
}

static void test_udp_ipv6(void **state)
{
	udp_exchange(*state, "udp:[::1]:0");
}

static void test_udp_drop_every(void **state)
{
	struct env *e = *state;
	struct sip_tp_config cfg;
	struct sockaddr_storage addr;
	struct sip_tp_stats st;

	config(&cfg, &e->a);
	make_tp(e, &e->a, &cfg);
	struct sip_tp_listen_config lc = {.uri = "udp:127.0.0.1:0",
					  .drop_every = 3};
	struct sip_tp_listener *l;
	assert_int_equal(sip_tp_listen(e->a.tp, &lc, &l), 0);
	sip_tp_listener_addr(l, &addr);

	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	e->fds[e->nfds++] = fd;
	for (int i = 0; i < 9; i++)
		assert_int_equal(sendto(fd, msg_options, MSG_LEN, 0,
					(struct sockaddr *)&addr,
					sizeof(struct sockaddr_in)),
				 (ssize_t)MSG_LEN);
	WAIT_FOR(e, e->a.nrx == 6, 2000);
	uv_run(&e->loop, UV_RUN_NOWAIT);
	assert_int_equal(e->a.nrx, 6);
	sip_tp_stats_get(e->a.tp, &st);
	assert_int_equal(st.dgrams_dropped, 3);
	assert_int_equal(st.msgs_in, 6);
}

static void test_udp_reuseport(void **state)
{
	struct env *e = *state;
	struct sip_tp_config cfg;
	struct sockaddr_storage a1, a2;
	char uri[SIP_TP_URI_MAX];

	config(&cfg, &e->a);
	make_tp(e, &e->a, &cfg);
	config(&cfg, &e->b);
	make_tp(e, &e->b, &cfg);
	struct sip_tp_listen_config lc = {.uri = "udp:127.0.0.1:0",
					  .reuseport = true};
	struct sip_tp_listener *l1, *l2;
	assert_int_equal(sip_tp_listen(e->a.tp, &lc, &l1), 0);
	sip_tp_listener_addr(l1, &a1);
	sip_tp_uri_format(SIP_TP_UDP, (struct sockaddr *)&a1, uri, sizeof(uri));
	/* without SO_REUSEPORT the port is taken */
	struct sip_tp_listen_config plain = {.uri = uri};
	assert_int_equal(sip_tp_listen(e->b.tp, &plain, &l2), -EADDRINUSE);
	lc.uri = uri;
	assert_int_equal(sip_tp_listen(e->b.tp, &lc, &l2), 0);
	sip_tp_listener_addr(l2, &a2);
	assert_int_equal(port_of(&a1), port_of(&a2));

	/* the kernel spreads sources over both sockets; none is lost */
	for (int i = 0; i < 6; i++) {
		int fd = socket(AF_INET, SOCK_DGRAM, 0);
		assert_true(fd >= 0);
		assert_int_equal(sendto(fd, msg_options, MSG_LEN, 0,
					(struct sockaddr *)&a1,
					sizeof(struct sockaddr_in)),
				 (ssize_t)MSG_LEN);
		close(fd);
	}
	WAIT_FOR(e, e->a.nrx + e->b.nrx == 6, 2000);
	assert_int_equal(e->a.nrx + e->b.nrx, 6);
}

/* Answers each "req N" with "reply N" (N == batch_big: 3000 bytes, more
 * than a send slot), and destroys its transport from the callback of the
 * destroy_at-th datagram. */
struct batch_rec {
	struct env *e;
	int nrx;
	int destroy_at;
};

enum { batch_big = 17 };

static void batch_recv(struct sip_tp *tp, const struct sip_tp_rx *rx, void *arg)
{
	struct batch_rec *r = arg;
	char in[32], out[3000];
	unsigned seq = 0;
	size_t len = rx->len < sizeof(in) - 1 ? rx->len : sizeof(in) - 1;
	struct sip_tp_dest d = {
		.transport = SIP_TP_UDP,
		.addr = rx->src,
		.lsn = rx->lsn,
	};
	int n;

	memcpy(in, rx->buf, len);
	in[len] = '\0';
	assert_int_equal(sscanf(in, "req %u", &seq), 1);
	n = snprintf(out, sizeof(out), "reply %u", seq);
	assert_true(n > 0);
	len = (size_t)n;
	if (seq == batch_big) {
		memset(out + len, 'x', sizeof(out) - len);
		len = sizeof(out);
	}
	assert_int_equal(sip_tp_send(tp, &d, out, len, NULL), 0);
	if (++r->nrx == r->destroy_at) {
		sip_tp_destroy(tp);
		r->e->a.tp = NULL;
	}
}

/* A listener answering with @p r, and a raw socket that has sent it
 * "req 0" .. "req N-1" in one burst before the loop runs. */
static int batch_burst(struct env *e, struct batch_rec *r, int count)
{
	struct sip_tp_config cfg;
	struct sockaddr_storage addr;
	char req[32];

	sip_tp_config_default(&cfg);
	cfg.recv = batch_recv;
	cfg.arg = r;
	r->e = e;
	make_tp(e, &e->a, &cfg);
	listen_on(&e->a, "udp:127.0.0.1:0", &addr);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	assert_true(fd >= 0);
	e->fds[e->nfds++] = fd;
	for (int i = 0; i < count; i++) {
		int n = snprintf(req, sizeof(req), "req %d", i);
		assert_int_equal(sendto(fd, req, (size_t)n, 0,
					(struct sockaddr *)&addr,
					sizeof(struct sockaddr_in)),
				 n);
	}
	return fd;
}

/* The answers to a burst go out with a few sendmmsg calls, all of them
 * and in order, the one too big for a slot in its place. */
static void test_udp_batch(void **state)
{
	enum { count = 40 };
	struct env *e = *state;
	struct batch_rec r = {0};
	struct sip_tp_stats st;
	char buf[4096], want[32];
	int fd = batch_burst(e, &r, count);

	for (int i = 0; i < count; i++) {
		ssize_t n = raw_recv(e, fd, buf, sizeof(buf), 2000);
		int wn = snprintf(want, sizeof(want), "reply %d", i);

		assert_true(n >= wn);
		assert_memory_equal(buf, want, (size_t)wn);
		assert_int_equal(n, i == batch_big ? 3000 : wn);
	}
	assert_int_equal(r.nrx, count);
	sip_tp_stats_get(e->a.tp, &st);
	assert_int_equal(st.msgs_in, count);
	assert_int_equal(st.msgs_out, count);
	assert_int_equal(st.send_errors, 0);
	assert_int_equal(st.udp_batched, count - 1);
	assert_true(st.udp_flushes >= 1);
	assert_true(st.udp_flushes < count / 2);
}

/* Destroying the transport in the middle of a batch sends what the batch
 * had sent so far and delivers nothing more. */
static void test_udp_batch_destroy(void **state)
{
	struct env *e = *state;
	struct batch_rec r = {.destroy_at = 3};
	char buf[4096], want[32];
	int fd = batch_burst(e, &r, 10);

	for (int i = 0; i < 3; i++) {
		ssize_t n = raw_recv(e, fd, buf, sizeof(buf), 2000);
		int wn = snprintf(want, sizeof(want), "reply %d", i);

		assert_int_equal(n, wn);
		assert_memory_equal(buf, want, (size_t)wn);
	}
	assert_int_equal(raw_recv(e, fd, buf, sizeof(buf), 100), -1);
	assert_int_equal(r.nrx, 3);
	assert_null(e->a.tp);
}

/* ------------------------------------------------------------------------ */
/* TCP                                                                      */
/* ------------------------------------------------------------------------ */

static int tcp_server(struct env *e, struct sip_tp_config *cfg,
		      struct sockaddr_storage *addr)
{
	make_tp(e, &e->a, cfg);
	listen_on(&e->a, "tcp:127.0.0.1:0", addr);
	return raw_connect(e, addr);
}

static void test_tcp_split_writes(void **state)
{
	struct env *e = *state;
	struct sip_tp_config cfg;
	struct sockaddr_storage addr;

	config(&cfg, &e->a);
	int fd = tcp_server(e, &cfg, &addr);
	WAIT_FOR(e, e->a.nup == 1, 1000);
	assert_int_equal(e->a.nup, 1);
	for (size_t i = 0; i < MSG_LEN; i++) {
		raw_send(fd, msg_options + i, 1);
		uv_run(&e->loop, UV_RUN_NOWAIT);
		if (i + 1 < MSG_LEN)
			assert_int_equal(e->a.nrx, 0);
	}
	WAIT_FOR(e, e->a.nrx == 1, 1000);
	assert_int_equal(e->a.nrx, 1);
	assert_int_equal(e->a.last_len, MSG_LEN);
	assert_memory_equal(e->a.last, msg_options, MSG_LEN);
	assert_int_not_equal(e->a.last_conn, 0);
	assert_int_equal(e->a.last_conn, e->a.last_up);

	/* two messages and a keepalive in one write, then a body message */
	char two[3 * MSG_LEN + 8];
	snprintf(two, sizeof(two), "%s\r\n\r\n%s", msg_options, msg_options);
	raw_send(fd, two, 2 * MSG_LEN + 4);
	WAIT_FOR(e, e->a.nrx == 3, 1000);
	assert_int_equal(e->a.nrx, 3);
	char pong[8];
	assert_int_equal(raw_recv(e, fd, pong, sizeof(pong), 1000), 2);

	static const char body[] = "MESSAGE sip:b@example.com SIP/2.0\r\n"
				   "Content-Length: 5\r\n\r\nhello";
	raw_send(fd, body, 20);
	uv_run(&e->loop, UV_RUN_NOWAIT);
	raw_send(fd, body + 20, sizeof(body) - 1 - 20);
	WAIT_FOR(e, e->a.nrx == 4, 1000);
	assert_int_equal(e->a.last_len, sizeof(body) - 1);
	assert_memory_equal(e->a.last, body, sizeof(body) - 1);
	assert_int_equal(e->a.ndown, 0);
}

static void test_tcp_keepalive(void **state)
{
	struct env *e = *state;
	struct sip_tp_config cfg;
	struct sockaddr_storage addr;
	struct sip_tp_stats st;
	char buf[16];

	config(&cfg, &e->a);
	int fd = tcp_server(e, &cfg, &addr);
	raw_send(fd, "\r\n\r\n", 4);
	assert_int_equal(raw_recv(e, fd, buf, sizeof(buf), 1000), 2);
	assert_memory_equal(buf, "\r\n", 2);
	/* a pong (CRLF) is not answered */
	raw_send(fd, "\r\n", 2);
	assert_int_equal(raw_recv(e, fd, buf, sizeof(buf), 100), -1);
	sip_tp_stats_get(e->a.tp, &st);
	assert_int_equal(st.keepalives_in, 1);
	assert_int_equal(st.conns_open, 1);
	assert_int_equal(e->a.nrx, 0);
}

/* Send @p data on a fresh connection; expect it closed with @p reason. */
static void expect_close(struct env *e, struct sip_tp_config *cfg,
			 const char *data, size_t len,
			 enum sip_tp_close_reason reason)
{
	struct sockaddr_storage addr;
	struct sip_tp_stats st;
	char buf[64];

	int fd = tcp_server(e, cfg, &addr);
	raw_send(fd, data, len);
	WAIT_FOR(e, e->a.ndown == 1, 2000);
	assert_int_equal(e->a.ndown, 1);
	assert_int_equal(e->a.last_reason, reason);
	assert_int_equal(raw_recv(e, fd, buf, sizeof(buf), 1000), 0);
	sip_tp_stats_get(e->a.tp, &st);
	assert_int_equal(st.closes[reason], 1);
	assert_int_equal(st.conns_open, 0);
	assert_int_equal(e->a.nrx, 0);
}

static void test_tcp_garbage(void **state)
{
	struct env *e = *state;
	struct sip_tp_config cfg;

	config(&cfg, &e->a);
	expect_close(e, &cfg, "\x16\x03\x01\x02\x00garbage", 12,
		     SIP_TP_CLOSE_GARBAGE);
}

static void test_tcp_garbage_line(void **state)
{
	struct env *e = *state;
	struct sip_tp_config cfg;

	config(&cfg, &e->a);
	expect_close(e, &cfg, "GET / HTTP/1.1\r\n", 16, SIP_TP_CLOSE_GARBAGE);
}

static void test_tcp_framing_error(void **state)
{
	struct env *e = *state;
	struct sip_tp_config cfg;
	static const char m[] = "OPTIONS sip:b@example.com SIP/2.0\r\n"
				"Call-ID: x\r\n\r\n";

	config(&cfg, &e->a);
	expect_close(e, &cfg, m, sizeof(m) - 1, SIP_TP_CLOSE_FRAMING);
}

static void test_tcp_oversize(void **state)
{
	struct env *e = *state;
	struct sip_tp_config cfg;
	static const char m[] = "OPTIONS sip:b@example.com SIP/2.0\r\n"
				"Content-Length: 5000\r\n\r\n";

	config(&cfg, &e->a);
	cfg.max_msg_size = 1024;
	expect_close(e, &cfg, m, sizeof(m) - 1, SIP_TP_CLOSE_OVERSIZE);
}

static void test_tcp_oversize_headers(void **state)
{
	struct env *e = *state;
	struct sip_tp_config cfg;
	char m[1500];

	config(&cfg, &e->a);
	cfg.max_msg_size = 1024;
	int n = snprintf(m, sizeof(m), "OPTIONS sip:b@example.com SIP/2.0\r\n");
	while ((size_t)n + 20 < sizeof(m))
		n += snprintf(m + n, sizeof(m) - (size_t)n,
			      "X-Pad: 0123456789\r\n");
	expect_close(e, &cfg, m, (size_t)n, SIP_TP_CLOSE_OVERSIZE);
}

static void test_tcp_slowloris(void **state)
{
	struct env *e = *state;
	struct sip_tp_config cfg;
	struct sockaddr_storage addr;
	char buf[16];

	config(&cfg, &e->a);
	cfg.stall_timeout_ms = 200;
	int fd = tcp_server(e, &cfg, &addr);
	uint64_t t0 = now_ms();
	raw_send(fd, "OPTIONS sip:b@example.com SIP/2.0\r\nX: ", 38);
	/* a byte every 20 ms keeps it from being idle, not from stalling */
	while (e->a.ndown == 0 && now_ms() - t0 < 2000) {
		WAIT_FOR(e, e->a.ndown == 1, 20);
		if (e->a.ndown == 0)
			raw_send(fd, "a", 1);
	}
	uint64_t took = now_ms() - t0;
	assert_int_equal(e->a.ndown, 1);
	assert_int_equal(e->a.last_reason, SIP_TP_CLOSE_STALLED);
	assert_true(took >= 200 && took < 1000);
	assert_int_equal(raw_recv(e, fd, buf, sizeof(buf), 1000), 0);
}

static void test_tcp_idle(void **state)
{
	struct env *e = *state;
	struct sip_tp_config cfg;
	struct sockaddr_storage addr;

	config(&cfg, &e->a);
	cfg.idle_timeout_ms = 150;
	int fd = tcp_server(e, &cfg, &addr);
	/* a whole message keeps it alive; no partial message is pending */
	WAIT_FOR(e, e->a.nup == 1, 1000);
	raw_send(fd, msg_options, MSG_LEN);
	WAIT_FOR(e, e->a.nrx == 1, 1000);
	uint64_t t0 = now_ms();
	WAIT_FOR(e, e->a.ndown == 1, 2000);
	assert_int_equal(e->a.ndown, 1);
	assert_int_equal(e->a.last_reason, SIP_TP_CLOSE_IDLE);
	assert_true(now_ms() - t0 >= 100);
}

static void test_tcp_per_source_limit(void **state)
{
	struct env *e = *state;
	struct sip_tp_config cfg;
	struct sockaddr_storage addr;
	struct sip_tp_stats st;
	char buf[16];

	config(&cfg, &e->a);
	cfg.max_conns_per_ip = 2;
	int f1 = tcp_server(e, &cfg, &addr);
	int f2 = raw_connect(e, &addr);
	WAIT_FOR(e, e->a.nup == 2, 1000);
	int f3 = raw_connect(e, &addr);
	assert_int_equal(raw_recv(e, f3, buf, sizeof(buf), 1000), 0);
	sip_tp_stats_get(e->a.tp, &st);
	assert_int_equal(st.closes[SIP_TP_CLOSE_LIMIT], 1);
	assert_int_equal(st.conns_open, 2);
	assert_int_equal(st.conns_accepted, 2);
	/* the two admitted ones still work; closing one frees a place */
	raw_send(f1, msg_options, MSG_LEN);
	raw_send(f2, msg_options, MSG_LEN);
	WAIT_FOR(e, e->a.nrx == 2, 1000);
	assert_int_equal(e->a.nrx, 2);
	assert_int_equal(sip_tp_conn_close(e->a.tp, e->a.last_conn), 0);
	assert_int_equal(sip_tp_conn_close(e->a.tp, e->a.last_conn), -ENOTCONN);
	raw_connect(e, &addr);
	WAIT_FOR(e, e->a.nup == 3, 1000);
	assert_int_equal(e->a.nup, 3);
}

static void test_tcp_global_limit(void **state)
{
	struct env *e = *state;
	struct sip_tp_config cfg;
	struct sockaddr_storage addr;
	char buf[16];

	config(&cfg, &e->a);
	cfg.max_conns = 1;
	tcp_server(e, &cfg, &addr);
	WAIT_FOR(e, e->a.nup == 1, 1000);
	int f2 = raw_connect(e, &addr);
	assert_int_equal(raw_recv(e, f2, buf, sizeof(buf), 1000), 0);
	struct sip_tp_dest d = {.transport = SIP_TP_TCP,
				.addr = (struct sockaddr *)&addr};
	assert_int_equal(sip_tp_send(e->a.tp, &d, "x", 1, NULL), -EMFILE);
}

/* A request over a new outbound connection; the response comes back on
 * it, and a request from the server to the client's address reuses it. */
static void stream_reuse(struct env *e, unsigned transport,
			 struct sip_tp_config *acfg, struct sip_tp_config *bcfg,
			 const char *luri, const char *name)
{
	struct sockaddr_storage addr;
	struct sip_tp_stats sa, sb;
	sip_tp_conn_id c = 0, old;
	struct sip_tp_conn_info info;

	make_tp(e, &e->a, acfg);
	make_tp(e, &e->b, bcfg);
	e->a.echo = true;
	listen_on(&e->a, luri, &addr);
	struct sip_tp_dest d = {.transport = transport,
				.addr = (struct sockaddr *)&addr,
				.server_name = name};
	assert_int_equal(sip_tp_send(e->b.tp, &d, msg_options, MSG_LEN, &c), 0);
	assert_int_not_equal(c, 0);
	assert_int_equal(sip_tp_conn_info(e->b.tp, c, &info), 0);
	assert_true(info.outbound);
	assert_int_equal(info.transport, transport);
	WAIT_FOR(e, e->b.nrx == 1, 3000);
	assert_int_equal(e->b.nrx, 1);
	assert_int_equal(e->b.last_conn, c);
	assert_memory_equal(e->b.last, msg_options, MSG_LEN);
	assert_int_equal(e->a.nup, 1);
	assert_int_equal(e->b.nup, 1);

	/* a second request reuses the connection */
	sip_tp_conn_id c2 = 0;
	assert_int_equal(sip_tp_send(e->b.tp, &d, msg_options, MSG_LEN, &c2),
			 0);
	assert_int_equal(c2, c);
	WAIT_FOR(e, e->b.nrx == 2, 2000);

	/* the server sends a request to the client's address: same
	 * connection, the other direction */
	e->a.echo = false;
	sip_tp_conn_id ac = e->a.last_conn;
	struct sip_tp_dest back = {.transport = transport,
				   .addr = (struct sockaddr *)&e->a.last_src};
	sip_tp_conn_id used = 0;
	assert_int_equal(
		sip_tp_send(e->a.tp, &back, msg_options, MSG_LEN, &used), 0);
	assert_int_equal(used, ac);
	WAIT_FOR(e, e->b.nrx == 3, 2000);
	assert_int_equal(e->b.nrx, 3);
	sip_tp_stats_get(e->a.tp, &sa);
	sip_tp_stats_get(e->b.tp, &sb);
	assert_int_equal(sa.conns_accepted, 1);
	assert_int_equal(sa.conns_connected, 0);
	assert_int_equal(sb.conns_connected, 1);
	assert_int_equal(sa.msgs_in, 2);
	assert_int_equal(sb.msgs_in, 3);

	/* a stale id is detected, never used */
	old = c;
	assert_int_equal(sip_tp_conn_close(e->b.tp, c), 0);
	WAIT_FOR(e, e->a.ndown == 1, 2000);
	assert_int_equal(e->a.last_reason, SIP_TP_CLOSE_EOF);
	assert_int_equal(sip_tp_conn_info(e->b.tp, old, &info), -ENOTCONN);
	struct sip_tp_dest stale = {.transport = transport, .conn = old};
	assert_int_equal(sip_tp_send(e->b.tp, &stale, "x", 1, NULL), -ENOTCONN);
	assert_int_equal(
		sip_tp_send(e->a.tp,
			    &(struct sip_tp_dest){.transport = transport,
						  .conn = ac},
			    "x", 1, NULL),
		-ENOTCONN);
}

static void test_tcp_reuse(void **state)
{
	struct env *e = *state;
	struct sip_tp_config acfg, bcfg;

	config(&acfg, &e->a);
	config(&bcfg, &e->b);
	stream_reuse(e, SIP_TP_TCP, &acfg, &bcfg, "tcp:127.0.0.1:0", NULL);
}

static void test_tcp_ipv6_reuse(void **state)
{
	struct env *e = *state;
	struct sip_tp_config acfg, bcfg;
	struct sip_tp *probe;
	struct sip_tp_listener *l;

	config(&acfg, &e->a);
	assert_int_equal(sip_tp_create(&e->loop, &acfg, &probe), 0);
	int rc = sip_tp_listen(
		probe, &(struct sip_tp_listen_config){.uri = "tcp:[::1]:0"},
		&l);
	sip_tp_destroy(probe);
	uv_run(&e->loop, UV_RUN_DEFAULT);
	if (rc < 0)
		skip();
	config(&bcfg, &e->b);
	stream_reuse(e, SIP_TP_TCP, &acfg, &bcfg, "tcp:[::1]:0", NULL);
}

static void test_send_queue_bound(void **state)
{
	struct env *e = *state;
	struct sip_tp_config cfg;
	struct sockaddr_storage addr;
	char big[600];
	sip_tp_conn_id c;

	config(&cfg, &e->a);
	make_tp(e, &e->a, &cfg);
	config(&cfg, &e->b);
	cfg.max_send_queue = 1000;
	make_tp(e, &e->b, &cfg);
	listen_on(&e->a, "tcp:127.0.0.1:0", &addr);
	memset(big, 'x', sizeof(big));
	struct sip_tp_dest d = {.transport = SIP_TP_TCP,
				.addr = (struct sockaddr *)&addr};
	/* queued while connecting */
	assert_int_equal(sip_tp_send(e->b.tp, &d, big, sizeof(big), &c), 0);
	assert_int_equal(sip_tp_send(e->b.tp, &d, big, sizeof(big), NULL),
			 -ENOBUFS);
	struct sip_tp_conn_info info;
	assert_int_equal(sip_tp_conn_info(e->b.tp, c, &info), 0);
	assert_false(info.up);
	assert_int_equal(info.queued, sizeof(big));
	struct sip_tp_stats st;
	sip_tp_stats_get(e->b.tp, &st);
	assert_int_equal(st.send_errors, 1);
	assert_int_equal(st.msgs_out, 1);
}

static void test_connect_refused(void **state)
{
	struct env *e = *state;
	struct sip_tp_config cfg;
	struct sockaddr_storage addr;
	unsigned tpk;
	sip_tp_conn_id c;

	config(&cfg, &e->b);
	make_tp(e, &e->b, &cfg);
	/* a port nobody listens on: bind one, read it, close it */
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	sip_tp_uri_parse("tcp:127.0.0.1:0", &tpk, &addr);
	assert_int_equal(
		bind(fd, (struct sockaddr *)&addr, sizeof(struct sockaddr_in)),
		0);
	socklen_t len = sizeof(addr);
	getsockname(fd, (struct sockaddr *)&addr, &len);
	close(fd);
	struct sip_tp_dest d = {.transport = SIP_TP_TCP,
				.addr = (struct sockaddr *)&addr};
	assert_int_equal(sip_tp_connect(e->b.tp, &d, &c), 0);
	WAIT_FOR(e, e->b.ndown == 1, 2000);
	assert_int_equal(e->b.last_reason, SIP_TP_CLOSE_CONNECT);
	assert_int_equal(e->b.last_err, -ECONNREFUSED);
}

/* ------------------------------------------------------------------------ */
/* TLS                                                                      */
/* ------------------------------------------------------------------------ */

static int make_cert(void **state)
{
	(void)state;
	return test_cert_make(&test_cert);
}

static int remove_cert(void **state)
{
	(void)state;
	test_cert_remove(&test_cert);
	return 0;
}

static void tls_server_config(struct sip_tp_config *cfg, struct rec *r)
{
	config(cfg, r);
	cfg->tls.cert_file = test_cert.cert_file;
	cfg->tls.key_file = test_cert.key_file;
}

static void tls_client_config(struct sip_tp_config *cfg, struct rec *r)
{
	config(cfg, r);
	cfg->tls.ca_file = test_cert.cert_file;
	cfg->tls.verify_server = true;
}

static void test_tls_exchange(void **state)
{
	struct env *e = *state;
	struct sip_tp_config acfg, bcfg;

	tls_server_config(&acfg, &e->a);
	tls_client_config(&bcfg, &e->b);
	stream_reuse(e, SIP_TP_TLS, &acfg, &bcfg, "tls:127.0.0.1:0",
		     "sip.test");
}

static void test_tls_verify_ip(void **state)
{
	struct env *e = *state;
	struct sip_tp_config acfg, bcfg;

	/* no server name: the certificate must carry the IP address */
	tls_server_config(&acfg, &e->a);
	tls_client_config(&bcfg, &e->b);
	stream_reuse(e, SIP_TP_TLS, &acfg, &bcfg, "tls:127.0.0.1:0", NULL);
}

static void test_tls_mutual(void **state)
{
	struct env *e = *state;
	struct sip_tp_config acfg, bcfg;

	tls_server_config(&acfg, &e->a);
	acfg.tls.ca_file = test_cert.cert_file;
	acfg.tls.verify_client = true;
	tls_client_config(&bcfg, &e->b);
	bcfg.tls.cert_file = test_cert.cert_file;
	bcfg.tls.key_file = test_cert.key_file;
	stream_reuse(e, SIP_TP_TLS, &acfg, &bcfg, "tls:127.0.0.1:0",
		     "sip.test");
}

static void tls_expect_fail(struct env *e, struct sip_tp_config *acfg,
			    struct sip_tp_config *bcfg, const char *name,
			    struct rec *who, int err)
{
	struct sockaddr_storage addr;

	make_tp(e, &e->a, acfg);
	make_tp(e, &e->b, bcfg);
	listen_on(&e->a, "tls:127.0.0.1:0", &addr);
	struct sip_tp_dest d = {.transport = SIP_TP_TLS,
				.addr = (struct sockaddr *)&addr,
				.server_name = name};
	assert_int_equal(sip_tp_send(e->b.tp, &d, msg_options, MSG_LEN, NULL),
			 0);
	WAIT_FOR(e, who->ndown == 1, 3000);
	assert_int_equal(who->ndown, 1);
	assert_int_equal(who->last_reason, SIP_TP_CLOSE_TLS);
	assert_int_equal(who->last_err, err);
	WAIT_FOR(e, e->a.ndown == 1 && e->b.ndown == 1, 3000);
	assert_int_equal(e->a.nrx, 0);
	/* TLS 1.3: a client is done before the server checks its cert */
	if (who == &e->b)
		assert_int_equal(e->b.nup, 0);
}

static void test_tls_wrong_name(void **state)
{
	struct env *e = *state;
	struct sip_tp_config acfg, bcfg;

	tls_server_config(&acfg, &e->a);
	tls_client_config(&bcfg, &e->b);
	tls_expect_fail(e, &acfg, &bcfg, "wrong.test", &e->b, -EKEYREJECTED);
}

static void test_tls_unknown_ca(void **state)
{
	struct env *e = *state;
	struct sip_tp_config acfg, bcfg;

	tls_server_config(&acfg, &e->a);
	config(&bcfg, &e->b);
	bcfg.tls.verify_server = true; /* no CA: nothing is trusted */
	tls_expect_fail(e, &acfg, &bcfg, "sip.test", &e->b, -EKEYREJECTED);
}

static void test_tls_client_cert_required(void **state)
{
	struct env *e = *state;
	struct sip_tp_config acfg, bcfg;

	tls_server_config(&acfg, &e->a);
	acfg.tls.ca_file = test_cert.cert_file;
	acfg.tls.verify_client = true;
	tls_client_config(&bcfg, &e->b);
	tls_expect_fail(e, &acfg, &bcfg, "sip.test", &e->a, -EKEYREJECTED);
}

static void test_tls_half_client_hello(void **state)
{
	struct env *e = *state;
	struct sip_tp_config cfg;
	struct sockaddr_storage addr;
	struct sip_tp_stats st;
	/* a record header announcing 512 bytes of handshake, then 16 */
	static const char hello[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03"
				    "\x03\x00\x11\x22\x33\x44\x55\x66\x77\x88";

	tls_server_config(&cfg, &e->a);
	make_tp(e, &e->a, &cfg);
	listen_on(&e->a, "tls:127.0.0.1:0", &addr);
	for (int i = 0; i < 3; i++) {
		int fd = raw_connect(e, &addr);
		WAIT_FOR(e, e->a.nrx < 0, 20); /* let it be accepted */
		raw_send(fd, hello, sizeof(hello) - 1);
		WAIT_FOR(e, e->a.nrx < 0, 20);
		if (i == 2) {
			/* a reset instead of a FIN */
			struct linger lg = {.l_onoff = 1, .l_linger = 0};
			setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		}
		close(fd);
		e->fds[--e->nfds] = -1;
	}
	WAIT_FOR(e, e->a.ndown == 3, 2000);
	assert_int_equal(e->a.ndown, 3);
	assert_int_equal(e->a.nup, 0);
	sip_tp_stats_get(e->a.tp, &st);
	assert_int_equal(st.conns_open, 0);
	assert_int_equal(st.conns_accepted, 3);
	assert_int_equal(
		st.closes[SIP_TP_CLOSE_EOF] + st.closes[SIP_TP_CLOSE_IO], 3);
}

static void test_tls_handshake_timeout(void **state)
{
	struct env *e = *state;
	struct sip_tp_config cfg;
	struct sockaddr_storage addr;
	char buf[16];

	tls_server_config(&cfg, &e->a);
	cfg.handshake_timeout_ms = 150;
	make_tp(e, &e->a, &cfg);
	listen_on(&e->a, "tls:127.0.0.1:0", &addr);
	int fd = raw_connect(e, &addr);
	WAIT_FOR(e, e->a.ndown == 1, 2000);
	assert_int_equal(e->a.last_reason, SIP_TP_CLOSE_HANDSHAKE_TIMEOUT);
	assert_int_equal(raw_recv(e, fd, buf, sizeof(buf), 1000), 0);
}

static void test_tls_no_certificate(void **state)
{
	struct env *e = *state;
	struct sip_tp_config cfg;
	struct sip_tp_listener *l;
	struct sip_tp *tp;

	config(&cfg, &e->a);
	make_tp(e, &e->a, &cfg);
	assert_int_equal(sip_tp_listen(e->a.tp,
				       &(struct sip_tp_listen_config){
					       .uri = "tls:127.0.0.1:0"},
				       &l),
			 -ENOENT);
	cfg.tls.cert_file = "/nonexistent/cert.pem";
	cfg.tls.key_file = "/nonexistent/key.pem";
	assert_int_equal(sip_tp_create(&e->loop, &cfg, &tp), -EIO);
}

static size_t heap_used(void)
{
	struct mallinfo2 mi = mallinfo2();
	return mi.uordblks + mi.hblkhd;
}

static size_t rss_kib(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long pages = 0, rss = 0;

	if (f) {
		if (fscanf(f, "%lu %lu", &pages, &rss) != 2)
			rss = 0;
		fclose(f);
	}
	return rss * (size_t)sysconf(_SC_PAGESIZE) / 1024;
}

/* N idle TLS connections, both ends in this process: memory per end. */
static void test_tls_memory(void **state)
{
	enum { N = 200 };
	struct env *e = *state;
	struct sip_tp_config acfg, bcfg;
	static struct sockaddr_storage addrs[N];

	tls_server_config(&acfg, &e->a);
	tls_client_config(&bcfg, &e->b);
	make_tp(e, &e->a, &acfg);
	make_tp(e, &e->b, &bcfg);
	for (int i = 0; i < N; i++)
		listen_on(&e->a, "tls:127.0.0.1:0", &addrs[i]);
	/* warm up OpenSSL's lazily built tables with one connection */
	sip_tp_conn_id c;
	struct sip_tp_dest d = {.transport = SIP_TP_TLS,
				.server_name = "sip.test"};
	d.addr = (struct sockaddr *)&addrs[0];
	assert_int_equal(sip_tp_send(e->b.tp, &d, msg_options, MSG_LEN, &c), 0);
	WAIT_FOR(e, e->a.nrx == 1, 3000);
	assert_int_equal(e->a.nrx, 1);

	size_t h0 = heap_used(), r0 = rss_kib();
	for (int i = 1; i < N; i++) {
		d.addr = (struct sockaddr *)&addrs[i];
		assert_int_equal(
			sip_tp_send(e->b.tp, &d, msg_options, MSG_LEN, &c), 0);
		if (i % 20 == 0)
			uv_run(&e->loop, UV_RUN_NOWAIT);
	}
	WAIT_FOR(e, e->a.nrx == N, 8000);
	assert_int_equal(e->a.nrx, N);
	WAIT_FOR(e, false, 50);
	size_t h1 = heap_used(), r1 = rss_kib();
	double heap = (double)(h1 - h0) / (2.0 * (N - 1));
	double rss = (double)(r1 - r0) * 1024.0 / (2.0 * (N - 1));
	printf("[ TLS mem  ] %d idle connections, per connection end: "
	       "heap %.0f B, RSS %.0f B\n",
	       N - 1, heap, rss);
#ifndef UNDER_ASAN
	assert_true(heap <= 20 * 1024);
#endif
}

/* ------------------------------------------------------------------------ */
/* Via helpers                                                              */
/* ------------------------------------------------------------------------ */

static void via_of(const char *text, struct sip_via *via)
{
	assert_int_equal(sip_via_parse(sip_str_c(text), via), 0);
}

static struct sockaddr_storage sa(const char *uri)
{
	struct sockaddr_storage ss;
	unsigned tpk;

	assert_int_equal(sip_tp_uri_parse(uri, &tpk, &ss), 0);
	return ss;
}

static void test_via_received(void **state)
{
	struct sip_via via;
	struct sip_tp_via_fix fix;
	struct sockaddr_storage src = sa("udp:192.0.2.7:40000");

	(void)state;
	/* sent-by is the source: nothing to add */
	via_of("SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bK1", &via);
	assert_int_equal(
		sip_tp_via_received(&via, (struct sockaddr *)&src, &fix), 0);
	assert_false(fix.add_received);
	assert_false(fix.set_rport);

	/* a name, or another address: received */
	via_of("SIP/2.0/UDP pc33.example.com;branch=z9hG4bK1", &via);
	sip_tp_via_received(&via, (struct sockaddr *)&src, &fix);
	assert_true(fix.add_received);
	assert_string_equal(fix.received, "192.0.2.7");
	via_of("SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1", &via);
	sip_tp_via_received(&via, (struct sockaddr *)&src, &fix);
	assert_true(fix.add_received);

	/* RFC 3581: rport without value gets the source port, and received
	 * is added even when sent-by is the source */
	via_of("SIP/2.0/UDP 192.0.2.7:5060;rport;branch=z9hG4bK1", &via);
	sip_tp_via_received(&via, (struct sockaddr *)&src, &fix);
	assert_true(fix.add_received);
	assert_true(fix.set_rport);
	assert_int_equal(fix.rport, 40000);

	/* IPv6, brackets in the Via */
	struct sockaddr_storage s6 = sa("udp:[2001:db8::9]:5062");
	via_of("SIP/2.0/UDP [2001:db8::9]:5062;branch=z9hG4bK1", &via);
	sip_tp_via_received(&via, (struct sockaddr *)&s6, &fix);
	assert_false(fix.add_received);
	via_of("SIP/2.0/UDP [2001:db8::1];rport;branch=z9hG4bK1", &via);
	sip_tp_via_received(&via, (struct sockaddr *)&s6, &fix);
	assert_true(fix.add_received);
	assert_string_equal(fix.received, "2001:db8::9");
	assert_int_equal(fix.rport, 5062);

	/* received holds the IPv4 address as inet_ntop writes it */
	static const uint8_t quads[][4] = {
		{0, 0, 0, 0},	  {255, 255, 255, 255}, {10, 0, 100, 9},
		{1, 20, 199, 99}, {127, 0, 0, 1},	{100, 10, 1, 250},
	};
	via_of("SIP/2.0/UDP example.com;branch=z9hG4bK1", &via);
	for (size_t i = 0; i < sizeof(quads) / sizeof(quads[0]); i++) {
		struct sockaddr_in s4 = {.sin_family = AF_INET};
		char want[INET_ADDRSTRLEN];

		memcpy(&s4.sin_addr, quads[i], 4);
		inet_ntop(AF_INET, &s4.sin_addr, want, sizeof(want));
		sip_tp_via_received(&via, (struct sockaddr *)&s4, &fix);
		assert_string_equal(fix.received, want);
	}

	struct sockaddr bad = {.sa_family = AF_UNIX};
	assert_int_equal(sip_tp_via_received(&via, &bad, &fix), -EINVAL);
}

static void expect_addr(const struct sip_tp_resp_dest *d, const char *uri)
{
	char buf[SIP_TP_URI_MAX];

	assert_int_equal(d->kind, SIP_TP_RESP_ADDR);
	assert_true(sip_tp_uri_format(SIP_TP_UDP,
				      (const struct sockaddr *)&d->addr, buf,
				      sizeof(buf)) > 0);
	assert_string_equal(buf, uri);
}

static void test_request_transport(void **state)
{
	(void)state;
	/* unknown MTU: 1300 bytes is the most UDP carries */
	assert_int_equal(sip_tp_request_transport(SIP_TP_UDP, 1300, 0, false),
			 SIP_TP_UDP);
	assert_int_equal(sip_tp_request_transport(SIP_TP_UDP, 1301, 0, false),
			 SIP_TP_TCP);
	/* known MTU: within 200 bytes of it switches */
	assert_int_equal(sip_tp_request_transport(SIP_TP_UDP, 1300,
						  SIP_TP_DEFAULT_MTU, false),
			 SIP_TP_UDP);
	assert_int_equal(sip_tp_request_transport(SIP_TP_UDP, 1301,
						  SIP_TP_DEFAULT_MTU, false),
			 SIP_TP_TCP);
	assert_int_equal(
		sip_tp_request_transport(SIP_TP_UDP, 8000, 9000, false),
		SIP_TP_UDP);
	assert_int_equal(
		sip_tp_request_transport(SIP_TP_UDP, 8801, 9000, false),
		SIP_TP_TCP);
	/* an explicit transport=udp target stays on UDP */
	assert_int_equal(sip_tp_request_transport(SIP_TP_UDP, 4000, 0, true),
			 SIP_TP_UDP);
	/* streams are never changed */
	assert_int_equal(sip_tp_request_transport(SIP_TP_TLS, 4000, 0, false),
			 SIP_TP_TLS);
	assert_int_equal(sip_tp_request_transport(SIP_TP_TCP, 100, 0, false),
			 SIP_TP_TCP);
}

static void test_response_dest(void **state)
{
	struct sip_via via;
	struct sip_tp_resp_dest d;
	struct sockaddr_storage src = sa("udp:192.0.2.7:40000");
	const struct sockaddr *s = (const struct sockaddr *)&src;

	(void)state;
	/* reliable: the same connection while it is open */
	via_of("SIP/2.0/TCP pc33.example.com:5070;branch=z9hG4bK1", &via);
	assert_int_equal(sip_tp_response_dest(&via, SIP_TP_TCP, s, true, &d),
			 0);
	assert_int_equal(d.kind, SIP_TP_RESP_CONN);
	/* ... else the source address (received) at the sent-by port */
	sip_tp_response_dest(&via, SIP_TP_TCP, s, false, &d);
	expect_addr(&d, "udp:192.0.2.7:5070");
	/* ... and a sent-by name without a source is resolved (RFC 3263 §5),
	 * TLS defaulting to 5061 */
	via_of("SIP/2.0/TLS pc33.example.com;branch=z9hG4bK1", &via);
	sip_tp_response_dest(&via, SIP_TP_TLS, NULL, false, &d);
	assert_int_equal(d.kind, SIP_TP_RESP_RESOLVE);
	assert_true(sip_str_eq(d.host, sip_str_c("pc33.example.com")));
	assert_int_equal(d.port, 5061);

	/* unreliable: maddr */
	via_of("SIP/2.0/UDP 192.0.2.7;maddr=239.255.255.1;ttl=16;"
	       "branch=z9hG4bK1",
	       &via);
	sip_tp_response_dest(&via, SIP_TP_UDP, s, false, &d);
	expect_addr(&d, "udp:239.255.255.1:5060");
	assert_true(d.multicast);
	assert_int_equal(d.ttl, 16);

	/* rport: the source address and port */
	via_of("SIP/2.0/UDP 10.1.1.1:5060;rport;branch=z9hG4bK1", &via);
	sip_tp_response_dest(&via, SIP_TP_UDP, s, false, &d);
	expect_addr(&d, "udp:192.0.2.7:40000");
	/* ... or the values a server already put in the Via */
	via_of("SIP/2.0/UDP 10.1.1.1:5060;received=198.51.100.4;rport=33000;"
	       "branch=z9hG4bK1",
	       &via);
	sip_tp_response_dest(&via, SIP_TP_UDP, NULL, false, &d);
	expect_addr(&d, "udp:198.51.100.4:33000");

	/* received without rport: received at the sent-by port */
	via_of("SIP/2.0/UDP 10.1.1.1:5070;received=198.51.100.4;"
	       "branch=z9hG4bK1",
	       &via);
	sip_tp_response_dest(&via, SIP_TP_UDP, NULL, false, &d);
	expect_addr(&d, "udp:198.51.100.4:5070");
	/* a raw Via whose sent-by is not the source: the source address,
	 * sent-by port (5060 by default) */
	via_of("SIP/2.0/UDP pc33.example.com;branch=z9hG4bK1", &via);
	sip_tp_response_dest(&via, SIP_TP_UDP, s, false, &d);
	expect_addr(&d, "udp:192.0.2.7:5060");
	/* sent-by is the source: sent-by */
	via_of("SIP/2.0/UDP 192.0.2.7:5080;branch=z9hG4bK1", &via);
	sip_tp_response_dest(&via, SIP_TP_UDP, s, false, &d);
	expect_addr(&d, "udp:192.0.2.7:5080");
	/* nothing known but a name */
	via_of("SIP/2.0/UDP pc33.example.com:5090;branch=z9hG4bK1", &via);
	sip_tp_response_dest(&via, SIP_TP_UDP, NULL, false, &d);
	assert_int_equal(d.kind, SIP_TP_RESP_RESOLVE);
	assert_int_equal(d.port, 5090);
	/* IPv6 received */
	via_of("SIP/2.0/UDP pc33.example.com;received=2001:db8::5;"
	       "branch=z9hG4bK1",
	       &via);
	sip_tp_response_dest(&via, SIP_TP_UDP, NULL, false, &d);
	expect_addr(&d, "udp:[2001:db8::5]:5060");
	/* unparseable received */
	via_of("SIP/2.0/UDP pc33.example.com;received=nothere;"
	       "branch=z9hG4bK1",
	       &via);
	assert_int_equal(
		sip_tp_response_dest(&via, SIP_TP_UDP, NULL, false, &d),
		-EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uri_parse),
		cmocka_unit_test(test_via_received),
		cmocka_unit_test(test_response_dest),
		cmocka_unit_test(test_request_transport),
		cmocka_unit_test_setup_teardown(test_udp_ipv4, setup, teardown),
		cmocka_unit_test_setup_teardown(test_udp_ipv6, setup, teardown),
		cmocka_unit_test_setup_teardown(test_udp_drop_every, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_udp_batch, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_udp_batch_destroy, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_udp_reuseport, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_tcp_split_writes, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_tcp_keepalive, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_tcp_garbage, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_tcp_garbage_line, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_tcp_framing_error, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_tcp_oversize, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_tcp_oversize_headers,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_tcp_slowloris, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_tcp_idle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tcp_per_source_limit,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_tcp_global_limit, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_tcp_reuse, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_tcp_ipv6_reuse, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_send_queue_bound, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_connect_refused, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_tls_exchange, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_tls_verify_ip, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_tls_mutual, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_tls_wrong_name, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_tls_unknown_ca, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_tls_client_cert_required,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_tls_half_client_hello,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_tls_handshake_timeout,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_tls_no_certificate, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_tls_memory, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, make_cert, remove_cert);
}
