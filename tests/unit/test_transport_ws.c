/** @file test_transport_ws.c  Unit tests for the WS and WSS listeners of
 * the transport (RFC 7118) over real loopback sockets: a raw client (TCP,
 * or TLS through OpenSSL on a non-blocking socket) runs the opening
 * handshake and sends masked frames; the checks cover delivery of whole
 * messages, the unmasked answer, fragments, ping/pong, close, rejected
 * handshakes (400, 426, 431) and protocol errors (1002, 1009). */
#include "support/testcert.h"
#include "transport/transport.h"
#include "ws/ws.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include <cmocka.h>

/* ------------------------------------------------------------------------ */
/* Server side                                                              */
/* ------------------------------------------------------------------------ */

struct rec {
	struct sip_tp *tp;
	int nrx;
	char last[4096];
	size_t last_len;
	unsigned last_transport;
	sip_tp_conn_id last_conn;
	int nup, ndown;
	enum sip_tp_close_reason last_reason;
	int last_err;
};

struct env {
	uv_loop_t loop;
	struct rec a;
	struct sockaddr_storage addr;
};

/* the certificate every TLS test uses, made once per run */
static struct test_cert test_cert;

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

#define WAIT_FOR(env, cond, ms)                                                \
	do {                                                                   \
		uint64_t deadline_ = now_ms() + (ms);                          \
		while (!(cond) && now_ms() < deadline_) {                      \
			uv_run(&(env)->loop, UV_RUN_NOWAIT);                   \
			usleep(300);                                           \
		}                                                              \
	} while (0)

/* Every message is echoed on its connection. */
static void on_recv(struct sip_tp *tp, const struct sip_tp_rx *rx, void *arg)
{
	struct rec *r = arg;
	struct sip_tp_dest d = {
		.transport = rx->transport,
		.addr = rx->src,
		.conn = rx->conn,
	};

	r->nrx++;
	r->last_len = rx->len < sizeof(r->last) ? rx->len : sizeof(r->last);
	memcpy(r->last, rx->buf, r->last_len);
	r->last_transport = rx->transport;
	r->last_conn = rx->conn;
	assert_int_equal(sip_tp_send(tp, &d, rx->buf, rx->len, NULL), 0);
}

static void on_conn(struct sip_tp *tp, sip_tp_conn_id conn,
		    enum sip_tp_conn_event ev, enum sip_tp_close_reason reason,
		    int err, void *arg)
{
	struct rec *r = arg;

	(void)tp;
	(void)conn;
	if (ev == SIP_TP_CONN_UP) {
		r->nup++;
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
	cfg->tls.cert_file = test_cert.cert_file;
	cfg->tls.key_file = test_cert.key_file;
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

	sip_tp_destroy(e->a.tp);
	uv_run(&e->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&e->loop), 0);
	free(e);
	return 0;
}

/* Start the transport with @p cfg and listen on @p uri. */
static void serve(struct env *e, struct sip_tp_config *cfg, const char *uri)
{
	struct sip_tp_listen_config lc = {.uri = uri};
	struct sip_tp_listener *l = NULL;

	assert_int_equal(sip_tp_create(&e->loop, cfg, &e->a.tp), 0);
	assert_int_equal(sip_tp_listen(e->a.tp, &lc, &l), 0);
	assert_int_equal(sip_tp_listener_addr(l, &e->addr), 0);
}

/* ------------------------------------------------------------------------ */
/* Client side: raw socket, optionally TLS, non-blocking so that the loop  */
/* runs while the client waits                                              */
/* ------------------------------------------------------------------------ */

#define CL_BUF 80000

struct client {
	struct env *e;
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
	uint8_t buf[CL_BUF];
	size_t len;
	struct ws_handshake hs;
	struct ws_decoder dec;
	/* the last event, copied */
	struct ws_event ev;
	char data[CL_BUF];
};

/* Run the loop a little while the client waits for @p events on its fd. */
static void cl_pump(struct client *cl, short events)
{
	struct pollfd p = {.fd = cl->fd, .events = events};

	uv_run(&cl->e->loop, UV_RUN_NOWAIT);
	poll(&p, 1, 1);
}

/* Retry an SSL call that wants I/O while the loop runs. */
static bool cl_ssl_retry(struct client *cl, int r, uint64_t deadline)
{
	int err = SSL_get_error(cl->ssl, r);

	if (now_ms() >= deadline)
		return false;
	if (err == SSL_ERROR_WANT_READ) {
		cl_pump(cl, POLLIN);
		return true;
	}
	if (err == SSL_ERROR_WANT_WRITE) {
		cl_pump(cl, POLLOUT);
		return true;
	}
	return false;
}

static struct client *cl_open(struct env *e, bool tls)
{
	struct client *cl = calloc(1, sizeof(*cl));
	socklen_t alen = sizeof(struct sockaddr_in);

	assert_non_null(cl);
	cl->e = e;
	cl->fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(cl->fd >= 0);
	assert_int_equal(connect(cl->fd, (struct sockaddr *)&e->addr, alen), 0);
	assert_int_equal(fcntl(cl->fd, F_SETFL, O_NONBLOCK), 0);
	ws_decoder_init(&cl->dec, WS_ROLE_CLIENT, NULL, CL_BUF - WS_MAX_HEADER);
	if (!tls)
		return cl;
	cl->ctx = SSL_CTX_new(TLS_client_method());
	assert_non_null(cl->ctx);
	assert_int_equal(SSL_CTX_load_verify_locations(
				 cl->ctx, test_cert.cert_file, NULL),
			 1);
	SSL_CTX_set_verify(cl->ctx, SSL_VERIFY_PEER, NULL);
	cl->ssl = SSL_new(cl->ctx);
	assert_non_null(cl->ssl);
	assert_int_equal(SSL_set1_host(cl->ssl, "sip.test"), 1);
	SSL_set_fd(cl->ssl, cl->fd);
	uint64_t deadline = now_ms() + 3000;
	int r;
	while ((r = SSL_connect(cl->ssl)) != 1)
		assert_true(cl_ssl_retry(cl, r, deadline));
	return cl;
}

static void cl_close(struct client *cl)
{
	if (cl->ssl)
		SSL_free(cl->ssl);
	SSL_CTX_free(cl->ctx);
	close(cl->fd);
	free(cl);
}

static void cl_send(struct client *cl, const void *data, size_t n)
{
	const char *p = data;
	uint64_t deadline = now_ms() + 3000;

	while (n > 0) {
		ssize_t w;
		if (cl->ssl) {
			int r = SSL_write(cl->ssl, p, (int)n);
			if (r <= 0) {
				assert_true(cl_ssl_retry(cl, r, deadline));
				continue;
			}
			w = r;
		} else {
			w = send(cl->fd, p, n, MSG_NOSIGNAL);
			if (w < 0) {
				assert_true(errno == EAGAIN &&
					    now_ms() < deadline);
				cl_pump(cl, POLLOUT);
				continue;
			}
		}
		p += w;
		n -= (size_t)w;
	}
}

/* Read more bytes within @p ms. @return bytes, 0 at end of stream (or a
 * reset), -1 when nothing came. */
static ssize_t cl_fill(struct client *cl, int ms)
{
	uint64_t deadline = now_ms() + (uint64_t)ms;

	assert_true(cl->len < CL_BUF);
	for (;;) {
		if (cl->ssl) {
			int r = SSL_read(cl->ssl, cl->buf + cl->len,
					 (int)(CL_BUF - cl->len));
			if (r > 0) {
				cl->len += (size_t)r;
				return r;
			}
			int err = SSL_get_error(cl->ssl, r);
			if (err == SSL_ERROR_ZERO_RETURN ||
			    err == SSL_ERROR_SYSCALL || err == SSL_ERROR_SSL) {
				ERR_clear_error();
				return 0;
			}
		} else {
			ssize_t r = recv(cl->fd, cl->buf + cl->len,
					 CL_BUF - cl->len, 0);
			if (r > 0) {
				cl->len += (size_t)r;
				return r;
			}
			if (r == 0 || errno != EAGAIN)
				return 0;
		}
		if (now_ms() >= deadline)
			return -1;
		cl_pump(cl, POLLIN);
	}
}

static void cl_drop(struct client *cl, size_t n)
{
	memmove(cl->buf, cl->buf + n, cl->len - n);
	cl->len -= n;
}

/* Read an HTTP response head; it stays at the start of cl->buf, NUL
 * terminated. @return its length. */
static size_t cl_http(struct client *cl)
{
	for (;;) {
		cl->buf[cl->len] = '\0';
		const char *end = strstr((const char *)cl->buf, "\r\n\r\n");
		if (end)
			return (size_t)(end - (const char *)cl->buf) + 4;
		assert_true(cl_fill(cl, 3000) > 0);
	}
}

/* Send the Upgrade request (with @p extra bytes in the same write) and
 * check the 101. */
static void cl_upgrade(struct client *cl, const void *extra, size_t n)
{
	static const uint8_t nonce[WS_NONCE_LEN] = {
		1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
	char req[1024];
	int len;

	ws_handshake_init(&cl->hs, 0);
	len = ws_client_request(&cl->hs, nonce, "127.0.0.1", "/", NULL, req,
				sizeof(req));
	assert_true(len > 0);
	assert_true((size_t)len + n <= sizeof(req));
	if (n)
		memcpy(req + len, extra, n);
	cl_send(cl, req, (size_t)len + n);
	cl_http(cl);
	assert_int_equal(
		ws_client_handshake(&cl->hs, (const char *)cl->buf, cl->len),
		WS_HS_ACCEPT);
	cl_drop(cl, cl->hs.len);
}

/* Send one masked frame. */
static void cl_frame(struct client *cl, enum ws_opcode op, bool fin,
		     const void *payload, size_t len)
{
	static const uint8_t mask[4] = {0x12, 0x34, 0x56, 0x78};
	uint8_t *f = malloc(len + WS_MAX_HEADER);

	assert_non_null(f);
	int n = ws_encode(f, len + WS_MAX_HEADER, op, fin, payload, len, mask);
	assert_true(n > 0);
	cl_send(cl, f, (size_t)n);
	free(f);
}

/* Wait for the next frame event from the server; its data is copied to
 * cl->data. */
static enum ws_event_kind cl_event(struct client *cl)
{
	for (;;) {
		size_t used = 0;
		int rc = ws_decode(&cl->dec, cl->buf, cl->len, &used, &cl->ev);
		assert_true(rc >= 0);
		if (rc != WS_EV_NEED_MORE) {
			memcpy(cl->data, cl->ev.data.p, cl->ev.data.len);
			cl->ev.data.p = cl->data;
			cl_drop(cl, used);
			return (enum ws_event_kind)rc;
		}
		cl_drop(cl, used);
		assert_true(cl_fill(cl, 3000) > 0);
	}
}

/* The server closes its end: end of stream within 3 s. */
static void cl_expect_eof(struct client *cl)
{
	ssize_t n;

	cl->len = 0;
	while ((n = cl_fill(cl, 3000)) > 0)
		cl->len = 0;
	assert_int_equal(n, 0);
}

/* A request without Content-Length: on WebSocket the message ends with
 * the WebSocket message (RFC 7118 §5). */
static const char msg_options[] = "OPTIONS sip:bob@example.com SIP/2.0\r\n"
				  "Via: SIP/2.0/WS df7jal23ls0d.invalid;"
				  "branch=z9hG4bK56sdasks\r\n"
				  "Max-Forwards: 70\r\n"
				  "To: <sip:bob@example.com>\r\n"
				  "From: <sip:alice@example.com>;tag=1928\r\n"
				  "Call-ID: a84b4c76e66710\r\n"
				  "CSeq: 63104 OPTIONS\r\n\r\n";
#define MSG_LEN (sizeof(msg_options) - 1)

/* ------------------------------------------------------------------------ */
/* Tests                                                                    */
/* ------------------------------------------------------------------------ */

static void test_ws_uri(void **state)
{
	struct sockaddr_storage ss;
	unsigned t = 0;
	char buf[SIP_TP_URI_MAX];

	(void)state;
	assert_int_equal(sip_tp_uri_parse("ws:127.0.0.1:8080", &t, &ss), 0);
	assert_int_equal(t, SIP_TP_WS);
	assert_int_equal(
		sip_tp_uri_format(t, (struct sockaddr *)&ss, buf, sizeof(buf)),
		17);
	assert_string_equal(buf, "ws:127.0.0.1:8080");
	assert_int_equal(sip_tp_uri_parse("WSS:[::1]:8443", &t, &ss), 0);
	assert_int_equal(t, SIP_TP_WSS);
	assert_true(sip_tp_uri_format(t, (struct sockaddr *)&ss, buf,
				      sizeof(buf)) > 0);
	assert_string_equal(buf, "wss:[::1]:8443");
	assert_int_equal(sip_tp_uri_parse("ws:", &t, &ss), -EINVAL);
	assert_int_equal(sip_tp_uri_parse("wsx:127.0.0.1:1", &t, &ss), -EINVAL);
	assert_int_equal(sip_tp_uri_parse("w:127.0.0.1:1", &t, &ss), -EINVAL);
	assert_string_equal(sip_tp_close_reason_name(SIP_TP_CLOSE_WS_PROTOCOL),
			    "ws-protocol");
}

/* Handshake, a message each way, a split frame, then a close from the
 * client, on WS or WSS. */
static void exchange(struct env *e, bool tls)
{
	struct sip_tp_config cfg;
	uint8_t frame[MSG_LEN + WS_MAX_HEADER];
	static const uint8_t mask[4] = {1, 2, 3, 4};

	config(&cfg, &e->a);
	serve(e, &cfg, tls ? "wss:127.0.0.1:0" : "ws:127.0.0.1:0");
	struct client *cl = cl_open(e, tls);
	int n = ws_encode(frame, sizeof(frame), WS_OP_TEXT, true, msg_options,
			  MSG_LEN, mask);
	assert_true(n > 0);

	/* over plain WS the first frame comes with the Upgrade request */
	if (tls) {
		cl_upgrade(cl, NULL, 0);
		cl_send(cl, frame, (size_t)n);
	} else {
		cl_upgrade(cl, frame, (size_t)n);
	}
	WAIT_FOR(e, e->a.nrx == 1, 3000);
	assert_int_equal(e->a.nup, 1);
	assert_int_equal(e->a.nrx, 1);
	assert_int_equal(e->a.last_transport, tls ? SIP_TP_WSS : SIP_TP_WS);
	assert_int_equal(e->a.last_len, MSG_LEN);
	assert_memory_equal(e->a.last, msg_options, MSG_LEN);

	struct sip_tp_conn_info info;
	assert_int_equal(sip_tp_conn_info(e->a.tp, e->a.last_conn, &info), 0);
	assert_int_equal(info.transport, tls ? SIP_TP_WSS : SIP_TP_WS);
	assert_true(info.up);

	/* the echo: one unmasked text frame */
	assert_int_equal(cl_event(cl), WS_EV_MESSAGE);
	assert_int_equal(cl->ev.opcode, WS_OP_TEXT);
	assert_int_equal(cl->ev.data.len, MSG_LEN);
	assert_memory_equal(cl->ev.data.p, msg_options, MSG_LEN);

	/* a frame in two pieces */
	n = ws_encode(frame, sizeof(frame), WS_OP_TEXT, true, msg_options,
		      MSG_LEN, mask);
	cl_send(cl, frame, 20);
	WAIT_FOR(e, false, 50);
	assert_int_equal(e->a.nrx, 1);
	cl_send(cl, frame + 20, (size_t)n - 20);
	WAIT_FOR(e, e->a.nrx == 2, 3000);
	assert_int_equal(e->a.last_len, MSG_LEN);
	assert_int_equal(cl_event(cl), WS_EV_MESSAGE);

	/* the client closes: the code comes back, then the end of stream */
	n = ws_encode_close(frame, sizeof(frame), WS_CLOSE_NORMAL,
			    SIP_STR_LIT("bye"), mask);
	cl_send(cl, frame, (size_t)n);
	assert_int_equal(cl_event(cl), WS_EV_CLOSE);
	assert_int_equal(cl->ev.code, WS_CLOSE_NORMAL);
	cl_expect_eof(cl);
	assert_int_equal(sip_tp_conn_info(e->a.tp, e->a.last_conn, &info),
			 -ENOTCONN);
	cl_close(cl);
	WAIT_FOR(e, e->a.ndown == 1, 3000);
	assert_int_equal(e->a.ndown, 1);
	assert_int_equal(e->a.last_reason, SIP_TP_CLOSE_EOF);
}

static void test_ws_exchange(void **state)
{
	exchange(*state, false);
}

static void test_wss_exchange(void **state)
{
	exchange(*state, true);
}

/* A message in three fragments with a ping in between: the pong comes at
 * once, the message once whole; a second message too. */
static void test_ws_fragments_ping(void **state)
{
	struct env *e = *state;
	struct sip_tp_config cfg;

	config(&cfg, &e->a);
	serve(e, &cfg, "ws:127.0.0.1:0");
	struct client *cl = cl_open(e, false);
	cl_upgrade(cl, NULL, 0);

	for (int round = 0; round < 2; round++) {
		cl_frame(cl, WS_OP_TEXT, false, msg_options, 40);
		cl_frame(cl, WS_OP_PING, true, "hb", 2);
		assert_int_equal(cl_event(cl), WS_EV_PONG);
		assert_int_equal(cl->ev.data.len, 2);
		assert_memory_equal(cl->ev.data.p, "hb", 2);
		cl_frame(cl, WS_OP_CONT, false, msg_options + 40, 60);
		WAIT_FOR(e, false, 20);
		assert_int_equal(e->a.nrx, round);
		cl_frame(cl, WS_OP_CONT, true, msg_options + 100,
			 MSG_LEN - 100);
		WAIT_FOR(e, e->a.nrx == round + 1, 3000);
		assert_int_equal(e->a.nrx, round + 1);
		assert_int_equal(e->a.last_len, MSG_LEN);
		assert_memory_equal(e->a.last, msg_options, MSG_LEN);
		assert_int_equal(cl_event(cl), WS_EV_MESSAGE);
		assert_int_equal(cl->ev.data.len, MSG_LEN);
	}

	/* an empty ping; a CRLFCRLF keepalive message gets CRLF back */
	cl_frame(cl, WS_OP_PING, true, NULL, 0);
	assert_int_equal(cl_event(cl), WS_EV_PONG);
	assert_int_equal(cl->ev.data.len, 0);
	cl_frame(cl, WS_OP_TEXT, true, "\r\n\r\n", 4);
	assert_int_equal(cl_event(cl), WS_EV_MESSAGE);
	assert_int_equal(cl->ev.data.len, 2);
	assert_memory_equal(cl->ev.data.p, "\r\n", 2);
	assert_int_equal(e->a.nrx, 2);
	struct sip_tp_stats st;
	sip_tp_stats_get(e->a.tp, &st);
	assert_int_equal(st.keepalives_in, 4);
	cl_close(cl);
}

/* A message that is not UTF-8 goes back in a binary frame. */
static void test_ws_binary(void **state)
{
	struct env *e = *state;
	struct sip_tp_config cfg;
	static const char bad[3] = {(char)0xff, (char)0xfe, 0};
	char msg[MSG_LEN + sizeof(bad)];

	memcpy(msg, msg_options, MSG_LEN);
	memcpy(msg + MSG_LEN, bad, sizeof(bad));
	config(&cfg, &e->a);
	serve(e, &cfg, "ws:127.0.0.1:0");
	struct client *cl = cl_open(e, false);
	cl_upgrade(cl, NULL, 0);
	cl_frame(cl, WS_OP_BINARY, true, msg, sizeof(msg));
	assert_int_equal(cl_event(cl), WS_EV_MESSAGE);
	assert_int_equal(cl->ev.opcode, WS_OP_BINARY);
	assert_int_equal(cl->ev.data.len, sizeof(msg));
	assert_memory_equal(cl->ev.data.p, msg, sizeof(msg));
	cl_close(cl);
}

/* Send @p req as the handshake: the answer has @p status, then the server
 * closes and reports @p reason. */
static void bad_handshake(struct env *e, const char *req, size_t len,
			  const char *status)
{
	struct sip_tp_config cfg;

	config(&cfg, &e->a);
	serve(e, &cfg, "ws:127.0.0.1:0");
	struct client *cl = cl_open(e, false);
	cl_send(cl, req, len);
	cl_http(cl);
	assert_memory_equal(cl->buf, status, strlen(status));
	assert_non_null(strstr((const char *)cl->buf, "Connection: close"));
	if (!strcmp(status, "HTTP/1.1 426"))
		assert_non_null(strstr((const char *)cl->buf,
				       "Sec-WebSocket-Version: 13"));
	cl_expect_eof(cl);
	cl_close(cl);
	WAIT_FOR(e, e->a.ndown == 1, 3000);
	assert_int_equal(e->a.ndown, 1);
	assert_int_equal(e->a.nup, 0);
	assert_int_equal(e->a.last_reason, SIP_TP_CLOSE_WS_HANDSHAKE);
}

static void test_ws_bad_handshake(void **state)
{
	static const char req[] = "GET / HTTP/1.1\r\n"
				  "Host: 127.0.0.1\r\n"
				  "Upgrade: websocket\r\n"
				  "Connection: Upgrade\r\n"
				  "Sec-WebSocket-Version: 13\r\n"
				  "Sec-WebSocket-Protocol: sip\r\n\r\n";

	bad_handshake(*state, req, sizeof(req) - 1, "HTTP/1.1 400");
}

static void test_ws_wrong_version(void **state)
{
	static const char req[] =
		"GET / HTTP/1.1\r\n"
		"Host: 127.0.0.1\r\n"
		"Upgrade: websocket\r\n"
		"Connection: Upgrade\r\n"
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
		"Sec-WebSocket-Version: 8\r\n"
		"Sec-WebSocket-Protocol: sip\r\n\r\n";

	bad_handshake(*state, req, sizeof(req) - 1, "HTTP/1.1 426");
}

static void test_ws_handshake_too_large(void **state)
{
	size_t len = WS_HANDSHAKE_MAX_DEFAULT + 100;
	static const char head[] = "GET / HTTP/1.1\r\nX: ";
	char *req = malloc(len);

	assert_non_null(req);
	memcpy(req, head, sizeof(head) - 1);
	memset(req + sizeof(head) - 1, 'a', len - (sizeof(head) - 1));
	bad_handshake(*state, req, len, "HTTP/1.1 431");
	free(req);
}

/* A handshake that never ends is closed after handshake_timeout_ms. */
static void test_ws_handshake_timeout(void **state)
{
	struct env *e = *state;
	struct sip_tp_config cfg;

	config(&cfg, &e->a);
	cfg.handshake_timeout_ms = 100;
	serve(e, &cfg, "ws:127.0.0.1:0");
	struct client *cl = cl_open(e, false);
	cl_send(cl, "GET / HTTP/1.1\r\n", 16);
	WAIT_FOR(e, e->a.ndown == 1, 3000);
	assert_int_equal(e->a.ndown, 1);
	assert_int_equal(e->a.last_reason, SIP_TP_CLOSE_HANDSHAKE_TIMEOUT);
	cl_expect_eof(cl);
	cl_close(cl);
}

/* After the handshake, @p frame draws a close with @p code, then the
 * server closes with @p reason. */
static void protocol_error(struct env *e, struct sip_tp_config *cfg,
			   const uint8_t *frame, size_t len, uint16_t code,
			   enum sip_tp_close_reason reason)
{
	serve(e, cfg, "ws:127.0.0.1:0");
	struct client *cl = cl_open(e, false);
	cl_upgrade(cl, NULL, 0);
	cl_send(cl, frame, len);
	assert_int_equal(cl_event(cl), WS_EV_CLOSE);
	assert_int_equal(cl->ev.code, code);
	cl_expect_eof(cl);
	cl_close(cl);
	WAIT_FOR(e, e->a.ndown == 1, 3000);
	assert_int_equal(e->a.ndown, 1);
	assert_int_equal(e->a.last_reason, reason);
	assert_int_equal(e->a.nrx, 0);
}

static void test_ws_unmasked(void **state)
{
	struct env *e = *state;
	struct sip_tp_config cfg;
	uint8_t frame[MSG_LEN + WS_MAX_HEADER];
	int n = ws_encode(frame, sizeof(frame), WS_OP_TEXT, true, msg_options,
			  MSG_LEN, NULL);

	config(&cfg, &e->a);
	protocol_error(e, &cfg, frame, (size_t)n, WS_CLOSE_PROTOCOL,
		       SIP_TP_CLOSE_WS_PROTOCOL);
}

static void test_ws_oversize(void **state)
{
	struct env *e = *state;
	struct sip_tp_config cfg;
	static const uint8_t mask[4] = {9, 8, 7, 6};
	uint8_t hdr[WS_MAX_HEADER];
	/* only the header: the length alone is refused */
	int n = ws_encode_header(hdr, sizeof(hdr), WS_OP_TEXT, true, 2000,
				 mask);

	config(&cfg, &e->a);
	cfg.max_msg_size = 1024;
	protocol_error(e, &cfg, hdr, (size_t)n, WS_CLOSE_TOO_BIG,
		       SIP_TP_CLOSE_OVERSIZE);
}

/* Fragments adding up to more than max_msg_size. */
static void test_ws_oversize_fragments(void **state)
{
	struct env *e = *state;
	struct sip_tp_config cfg;
	static const uint8_t mask[4] = {9, 8, 7, 6};
	uint8_t frames[2 * (600 + WS_MAX_HEADER)];
	char part[600];
	int n, m;

	memset(part, 'a', sizeof(part));
	n = ws_encode(frames, sizeof(frames), WS_OP_TEXT, false, part,
		      sizeof(part), mask);
	m = ws_encode(frames + n, sizeof(frames) - (size_t)n, WS_OP_CONT, true,
		      part, sizeof(part), mask);
	config(&cfg, &e->a);
	cfg.max_msg_size = 1024;
	protocol_error(e, &cfg, frames, (size_t)n + (size_t)m, WS_CLOSE_TOO_BIG,
		       SIP_TP_CLOSE_OVERSIZE);
}

/* No outbound WebSocket connections: without one open, -ENOTCONN. */
static void test_ws_send_without_conn(void **state)
{
	struct env *e = *state;
	struct sip_tp_config cfg;
	struct sip_tp_dest d = {.transport = SIP_TP_WS};

	config(&cfg, &e->a);
	serve(e, &cfg, "ws:127.0.0.1:0");
	d.addr = (struct sockaddr *)&e->addr;
	assert_int_equal(sip_tp_send(e->a.tp, &d, msg_options, MSG_LEN, NULL),
			 -ENOTCONN);
	d.transport = SIP_TP_WSS;
	assert_int_equal(sip_tp_send(e->a.tp, &d, msg_options, MSG_LEN, NULL),
			 -ENOTCONN);
}

/* wss: needs a certificate. */
static void test_wss_no_certificate(void **state)
{
	struct env *e = *state;
	struct sip_tp_config cfg;
	struct sip_tp_listen_config lc = {.uri = "wss:127.0.0.1:0"};

	config(&cfg, &e->a);
	cfg.tls.cert_file = cfg.tls.key_file = NULL;
	assert_int_equal(sip_tp_create(&e->loop, &cfg, &e->a.tp), 0);
	assert_int_equal(sip_tp_listen(e->a.tp, &lc, NULL), -ENOENT);
}

/* ------------------------------------------------------------------------ */
/* Certificate                                                              */
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

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ws_uri),
		T(test_ws_exchange),
		T(test_wss_exchange),
		T(test_ws_fragments_ping),
		T(test_ws_binary),
		T(test_ws_bad_handshake),
		T(test_ws_wrong_version),
		T(test_ws_handshake_too_large),
		T(test_ws_handshake_timeout),
		T(test_ws_unmasked),
		T(test_ws_oversize),
		T(test_ws_oversize_fragments),
		T(test_ws_send_without_conn),
		T(test_wss_no_certificate),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, make_cert, remove_cert);
}
