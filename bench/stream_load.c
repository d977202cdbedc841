/**
 * @file stream_load.c  TCP and TLS load on many connections, and idle TLS
 * connections for the memory figure.
 *
 * load: opens --conns connections (at most 64 connecting at a time), and
 *       on each keeps --depth OPTIONS requests in flight (pipelined); a
 *       response is framed by its Content-Length. Counts responses over
 *       --duration seconds after a --warmup.
 * idle: opens --conns connections, completes each handshake, sends one
 *       OPTIONS on each and waits for its answer; then prints a JSON line
 *       with "ready": true and holds the connections, without traffic,
 *       until stdin reaches end of file or --hold seconds pass.
 *
 * Usage: stream_load load|idle --target 127.0.0.1:PORT [--tls] [--conns N]
 *                   [--depth D] [--duration S] [--warmup S] [--hold S]
 * Prints JSON on stdout.
 */
#include "tp_common.h"

#include <fcntl.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/epoll.h>
#include <unistd.h>

#define MAX_CONNS 20000
#define MAX_DEPTH 64
#define RBUF 16384
#define MAX_PENDING 64

enum state { ST_FREE, ST_CONNECTING, ST_HANDSHAKE, ST_RUN, ST_DONE, ST_DEAD };

struct conn {
	int fd;
	enum state st;
	SSL *ssl;
	unsigned outstanding;
	size_t rlen, woff, wlen;
	char rbuf[RBUF];
	char wbuf[MAX_DEPTH * 512];
};

struct opts {
	struct sockaddr_in target;
	bool tls, idle;
	unsigned conns, depth;
	double duration, warmup, hold;
};

struct run {
	struct opts o;
	struct bench_req req;
	SSL_CTX *ctx;
	int ep;
	struct conn *c;
	unsigned next, pending, up, failed, done;
	unsigned long long seq, responses, ok, measured_base, ok_base;
	bool measuring, stopping;
};

static void set_events(struct run *r, struct conn *c, unsigned ev)
{
	struct epoll_event e = {.events = ev, .data.ptr = c};

	epoll_ctl(r->ep, EPOLL_CTL_MOD, c->fd, &e);
}

static void conn_fail(struct run *r, struct conn *c)
{
	if (c->st == ST_CONNECTING || c->st == ST_HANDSHAKE)
		r->pending--;
	if (c->ssl)
		SSL_free(c->ssl);
	c->ssl = NULL;
	epoll_ctl(r->ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->st = ST_DEAD;
	r->failed++;
}

static int conn_open(struct run *r, struct conn *c)
{
	struct epoll_event e = {.events = EPOLLOUT, .data.ptr = c};
	int one = 1;

	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (c->fd < 0)
		return -errno;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (struct sockaddr *)&r->o.target,
		    sizeof(r->o.target)) < 0 &&
	    errno != EINPROGRESS) {
		close(c->fd);
		return -errno;
	}
	c->st = ST_CONNECTING;
	r->pending++;
	epoll_ctl(r->ep, EPOLL_CTL_ADD, c->fd, &e);
	return 0;
}

/* Write what is queued; -1 when the connection failed. */
static int conn_flush(struct run *r, struct conn *c)
{
	while (c->woff < c->wlen) {
		size_t left = c->wlen - c->woff;
		ssize_t n;

		if (c->ssl) {
			int w = SSL_write(c->ssl, c->wbuf + c->woff, (int)left);

			if (w <= 0) {
				int e = SSL_get_error(c->ssl, w);

				if (e == SSL_ERROR_WANT_WRITE ||
				    e == SSL_ERROR_WANT_READ)
					break;
				return -1;
			}
			n = w;
		} else {
			n = send(c->fd, c->wbuf + c->woff, left, MSG_NOSIGNAL);
			if (n < 0) {
				if (errno == EAGAIN)
					break;
				return -1;
			}
		}
		c->woff += (size_t)n;
	}
	if (c->woff == c->wlen)
		c->woff = c->wlen = 0;
	set_events(r, c, c->wlen ? EPOLLIN | EPOLLOUT : EPOLLIN);
	return 0;
}

static void conn_queue(struct run *r, struct conn *c)
{
	unsigned want = r->o.idle ? 1 : r->o.depth;

	if (r->stopping || c->wlen)
		return;
	while (c->outstanding < want) {
		c->wlen += bench_stamp(&r->req, c->wbuf + c->wlen, r->seq++);
		c->outstanding++;
	}
}

static void conn_up(struct run *r, struct conn *c)
{
	c->st = ST_RUN;
	r->pending--;
	r->up++;
	conn_queue(r, c);
	if (conn_flush(r, c) < 0)
		conn_fail(r, c);
}

/* Take the complete responses off the front of the read buffer. */
static void conn_parse(struct run *r, struct conn *c)
{
	size_t pos = 0;

	for (;;) {
		const char *start = c->rbuf + pos;
		size_t avail = c->rlen - pos;
		const char *end = memmem(start, avail, "\r\n\r\n", 4);
		size_t hlen, clen = 0, total;
		const char *cl;

		if (!end)
			break;
		hlen = (size_t)(end - start) + 4;
		cl = memmem(start, hlen, "\nContent-Length:", 16);
		if (cl)
			clen = strtoul(cl + 16, NULL, 10);
		total = hlen + clen;
		if (total > avail)
			break;
		r->responses++;
		if (avail >= 9 && !memcmp(start, "SIP/2.0 2", 9))
			r->ok++;
		if (c->outstanding)
			c->outstanding--;
		pos += total;
	}
	if (pos) {
		memmove(c->rbuf, c->rbuf + pos, c->rlen - pos);
		c->rlen -= pos;
	}
}

static void conn_read(struct run *r, struct conn *c)
{
	for (;;) {
		ssize_t n;

		if (c->rlen == RBUF) {
			conn_fail(r, c);
			return;
		}
		if (c->ssl) {
			int g = SSL_read(c->ssl, c->rbuf + c->rlen,
					 (int)(RBUF - c->rlen));

			if (g <= 0) {
				int e = SSL_get_error(c->ssl, g);

				if (e == SSL_ERROR_WANT_READ ||
				    e == SSL_ERROR_WANT_WRITE)
					break;
				conn_fail(r, c);
				return;
			}
			n = g;
		} else {
			n = recv(c->fd, c->rbuf + c->rlen, RBUF - c->rlen, 0);
			if (n < 0 && errno == EAGAIN)
				break;
			if (n <= 0) {
				conn_fail(r, c);
				return;
			}
		}
		c->rlen += (size_t)n;
		conn_parse(r, c);
	}
	if (r->o.idle && c->st == ST_RUN && c->outstanding == 0) {
		c->st = ST_DONE;
		r->done++;
		return;
	}
	conn_queue(r, c);
	if (conn_flush(r, c) < 0)
		conn_fail(r, c);
}

static void conn_handshake(struct run *r, struct conn *c)
{
	int h = SSL_do_handshake(c->ssl);

	if (h == 1) {
		conn_up(r, c);
		return;
	}
	switch (SSL_get_error(c->ssl, h)) {
	case SSL_ERROR_WANT_READ:
		set_events(r, c, EPOLLIN);
		break;
	case SSL_ERROR_WANT_WRITE:
		set_events(r, c, EPOLLIN | EPOLLOUT);
		break;
	default:
		conn_fail(r, c);
	}
}

static void conn_event(struct run *r, struct conn *c, unsigned ev)
{
	if (c->st == ST_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);

		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err || (ev & (EPOLLERR | EPOLLHUP))) {
			conn_fail(r, c);
			return;
		}
		if (!r->o.tls) {
			conn_up(r, c);
			return;
		}
		c->ssl = SSL_new(r->ctx);
		if (!c->ssl) {
			conn_fail(r, c);
			return;
		}
		SSL_set_fd(c->ssl, c->fd);
		SSL_set_connect_state(c->ssl);
		c->st = ST_HANDSHAKE;
		conn_handshake(r, c);
		return;
	}
	if (c->st == ST_HANDSHAKE) {
		conn_handshake(r, c);
		return;
	}
	if (c->st == ST_RUN) {
		if (ev & EPOLLIN)
			conn_read(r, c);
		if (c->st == ST_RUN && (ev & EPOLLOUT) && conn_flush(r, c) < 0)
			conn_fail(r, c);
		return;
	}
	if (c->st == ST_DONE && (ev & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
		/* an idle connection the server closed */
		char b[256];

		if (c->ssl ? SSL_read(c->ssl, b, sizeof(b)) <= 0
			   : recv(c->fd, b, sizeof(b), 0) <= 0) {
			r->done--;
			conn_fail(r, c);
		}
	}
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	const char *target = NULL;

	if (argc < 2)
		return -1;
	if (!strcmp(argv[1], "idle"))
		o->idle = true;
	else if (strcmp(argv[1], "load") != 0)
		return -1;
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";

		if (!strcmp(a, "--tls")) {
			o->tls = true;
			continue;
		}
		if (!strcmp(a, "--target"))
			target = v;
		else if (!strcmp(a, "--conns"))
			o->conns = (unsigned)atoi(v);
		else if (!strcmp(a, "--depth"))
			o->depth = (unsigned)atoi(v);
		else if (!strcmp(a, "--duration"))
			o->duration = atof(v);
		else if (!strcmp(a, "--warmup"))
			o->warmup = atof(v);
		else if (!strcmp(a, "--hold"))
			o->hold = atof(v);
		else
			return -1;
		i++;
	}
	if (!target || bench_parse_addr(target, &o->target) < 0)
		return -1;
	if (o->conns == 0 || o->conns > MAX_CONNS || o->depth == 0 ||
	    o->depth > MAX_DEPTH || o->duration <= 0 || o->duration > 3600 ||
	    o->hold <= 0 || o->hold > 3600)
		return -1;
	return 0;
}

static SSL_CTX *client_ctx(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (!ctx)
		return NULL;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
				      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				      SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	return ctx;
}

/* Run the loop until @p until (monotonic seconds), or, when @p settle,
 * until no connection is still being set up or waiting for its answer. */
static void loop(struct run *r, double until, bool settle)
{
	struct epoll_event ev[256];

	for (;;) {
		double now = bench_now();
		int n;

		if (now >= until)
			return;
		if (settle && r->next == r->o.conns && r->pending == 0 &&
		    r->done + r->failed == r->o.conns)
			return;
		while (r->next < r->o.conns && r->pending < MAX_PENDING) {
			if (conn_open(r, &r->c[r->next]) < 0) {
				r->c[r->next].st = ST_DEAD;
				r->failed++;
			}
			r->next++;
		}
		if (!r->measuring && !r->o.idle && now >= r->o.warmup) {
			r->measuring = true;
			r->measured_base = r->responses;
			r->ok_base = r->ok;
		}
		n = epoll_wait(r->ep, ev, 256, 10);
		for (int i = 0; i < n; i++)
			conn_event(r, ev[i].data.ptr, ev[i].events);
	}
}

static void close_all(struct run *r)
{
	for (unsigned i = 0; i < r->o.conns; i++) {
		struct conn *c = &r->c[i];

		if (c->st == ST_FREE || c->st == ST_DEAD)
			continue;
		if (c->ssl) {
			SSL_shutdown(c->ssl);
			SSL_free(c->ssl);
		}
		close(c->fd);
	}
}

int main(int argc, char **argv)
{
	struct run r = {
		.o = {.conns = 100,
		      .depth = 8,
		      .duration = 10,
		      .warmup = 1,
		      .hold = 600},
		.seq = 1,
	};
	double t0;

	if (parse_opts(argc, argv, &r.o) < 0) {
		fprintf(stderr,
			"usage: stream_load load|idle --target 127.0.0.1:PORT "
			"[--tls] [--conns N] [--depth D<=64] [--duration S] "
			"[--warmup S] [--hold S]\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	bench_req_init(&r.req, r.o.tls ? "TLS" : "TCP", &r.o.target);
	r.c = calloc(r.o.conns, sizeof(*r.c));
	r.ep = epoll_create1(0);
	if (r.o.tls)
		r.ctx = client_ctx();
	if (!r.c || r.ep < 0 || (r.o.tls && !r.ctx)) {
		fprintf(stderr, "stream_load: out of memory\n");
		free(r.c);
		return 1;
	}
	t0 = bench_now();
	r.o.warmup += t0;
	if (r.o.idle) {
		struct pollfd in = {.fd = 0, .events = POLLIN};
		double end;

		loop(&r, t0 + 120, true);
		printf("{\"ready\": true, \"conns\": %u, \"up\": %u, "
		       "\"answered\": %u, \"failed\": %u, \"setup_s\": %.3f}\n",
		       r.o.conns, r.up, r.done, r.failed, bench_now() - t0);
		fflush(stdout);
		end = bench_now() + r.o.hold;
		while (bench_now() < end) {
			int ms = (int)((end - bench_now()) * 1000) + 1;

			if (poll(&in, 1, ms > 1000 ? 1000 : ms) > 0) {
				char b[64];

				if (read(0, b, sizeof(b)) <= 0)
					break;
			}
		}
	} else {
		double el;

		loop(&r, r.o.warmup + r.o.duration, false);
		el = bench_now() - r.o.warmup;
		r.stopping = true;
		printf("{\"tls\": %s, \"conns\": %u, \"up\": %u, "
		       "\"failed\": %u, \"depth\": %u, \"duration_s\": %.3f, "
		       "\"responses\": %llu, \"ok\": %llu, \"rate\": %.1f}\n",
		       r.o.tls ? "true" : "false", r.o.conns, r.up, r.failed,
		       r.o.depth, el, r.responses - r.measured_base,
		       r.ok - r.ok_base, (double)(r.ok - r.ok_base) / el);
	}
	close_all(&r);
	if (r.ctx)
		SSL_CTX_free(r.ctx);
	free(r.c);
	close(r.ep);
	return 0;
}
