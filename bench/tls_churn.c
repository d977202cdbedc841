/**
 * @file tls_churn.c  New TLS connections as fast as the server takes them:
 * connect, full handshake (no session resumption), one OPTIONS, wait for
 * its answer, close_notify and close; --concurrency of these at a time on
 * one epoll loop. With --abort-every K, every Kth connection is instead
 * dropped with a reset in the middle of its handshake, in turn:
 *   - right after the TCP connect, before any TLS byte;
 *   - after half of a ClientHello;
 *   - after a whole ClientHello, once the server has begun to answer (it
 *     has done its part of the key exchange and signed).
 *
 * Usage: tls_churn --target 127.0.0.1:PORT [--concurrency C]
 *                  [--duration S] [--count N] [--abort-every K]
 *                  [--timeout S] [--progress S]
 * Stops starting connections after S seconds or N connections, whichever
 * comes first, waits for those in flight, and prints one JSON object.
 */
#include "tp_common.h"

#include <fcntl.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/epoll.h>
#include <unistd.h>

#define MAX_CONC 1024
#define RBUF 4096

enum state { ST_IDLE, ST_CONNECTING, ST_HANDSHAKE, ST_WAIT, ST_ABORT_WAIT };

struct slot {
	int fd;
	enum state st;
	SSL *ssl;
	int abort_kind; /* -1: a normal connection */
	double started;
	size_t rlen, woff;
	char rbuf[RBUF];
};

struct counts {
	unsigned long long started, handshakes, ok, aborted, errors, timeouts;
	unsigned long long connect_errors, handshake_errors;
};

struct churn {
	struct sockaddr_in target;
	SSL_CTX *ctx;
	int ep;
	struct bench_req req;
	unsigned char hello[4096];
	size_t hello_len;
	unsigned conc, abort_every;
	unsigned long long max_count;
	double timeout;
	struct counts c;
	struct slot s[MAX_CONC];
};

static void slot_end(struct churn *ch, struct slot *s, bool reset)
{
	if (reset) {
		struct linger lg = {1, 0};

		setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	} else if (s->ssl) {
		SSL_shutdown(s->ssl);
	}
	if (s->ssl)
		SSL_free(s->ssl);
	s->ssl = NULL;
	epoll_ctl(ch->ep, EPOLL_CTL_DEL, s->fd, NULL);
	close(s->fd);
	s->st = ST_IDLE;
}

static void set_events(struct churn *ch, struct slot *s, unsigned ev)
{
	struct epoll_event e = {.events = ev, .data.ptr = s};

	epoll_ctl(ch->ep, EPOLL_CTL_MOD, s->fd, &e);
}

static int slot_start(struct churn *ch, struct slot *s)
{
	struct epoll_event e = {.events = EPOLLOUT, .data.ptr = s};
	unsigned long long n = ch->c.started++;
	int one = 1;

	s->abort_kind = -1;
	if (ch->abort_every && n % ch->abort_every == ch->abort_every - 1)
		s->abort_kind = (int)((n / ch->abort_every) % 3);
	s->rlen = s->woff = 0;
	s->started = bench_now();
	s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (s->fd < 0)
		return -errno;
	setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(s->fd, (struct sockaddr *)&ch->target, sizeof(ch->target)) <
		    0 &&
	    errno != EINPROGRESS) {
		int err = -errno;

		close(s->fd);
		ch->c.connect_errors++;
		ch->c.errors++;
		return err;
	}
	s->st = ST_CONNECTING;
	epoll_ctl(ch->ep, EPOLL_CTL_ADD, s->fd, &e);
	return 0;
}

static void slot_fail(struct churn *ch, struct slot *s)
{
	if (s->st == ST_HANDSHAKE)
		ch->c.handshake_errors++;
	ch->c.errors++;
	slot_end(ch, s, true);
}

static void slot_handshake(struct churn *ch, struct slot *s)
{
	int h = SSL_do_handshake(s->ssl);

	if (h == 1) {
		char req[512];
		size_t len = bench_stamp(&ch->req, req, ch->c.started);

		ch->c.handshakes++;
		/* one small record: written whole or not at all */
		if (SSL_write(s->ssl, req, (int)len) != (int)len) {
			slot_fail(ch, s);
			return;
		}
		s->st = ST_WAIT;
		set_events(ch, s, EPOLLIN);
		return;
	}
	switch (SSL_get_error(s->ssl, h)) {
	case SSL_ERROR_WANT_READ:
		set_events(ch, s, EPOLLIN);
		break;
	case SSL_ERROR_WANT_WRITE:
		set_events(ch, s, EPOLLIN | EPOLLOUT);
		break;
	default:
		slot_fail(ch, s);
	}
}

static void slot_read(struct churn *ch, struct slot *s)
{
	for (;;) {
		int n = SSL_read(s->ssl, s->rbuf + s->rlen,
				 (int)(RBUF - 1 - s->rlen));
		const char *end;

		if (n <= 0) {
			int e = SSL_get_error(s->ssl, n);

			if (e == SSL_ERROR_WANT_READ ||
			    e == SSL_ERROR_WANT_WRITE)
				return;
			slot_fail(ch, s);
			return;
		}
		s->rlen += (size_t)n;
		end = memmem(s->rbuf, s->rlen, "\r\n\r\n", 4);
		if (end) {
			if (s->rlen >= 9 && !memcmp(s->rbuf, "SIP/2.0 2", 9))
				ch->c.ok++;
			else
				ch->c.errors++;
			slot_end(ch, s, false);
			return;
		}
		if (s->rlen >= RBUF - 1) {
			slot_fail(ch, s);
			return;
		}
	}
}

static void slot_connected(struct churn *ch, struct slot *s)
{
	switch (s->abort_kind) {
	case 0:
		ch->c.aborted++;
		slot_end(ch, s, true);
		return;
	case 1:
	case 2: {
		size_t len =
			s->abort_kind == 1 ? ch->hello_len / 2 : ch->hello_len;

		if (send(s->fd, ch->hello, len, MSG_NOSIGNAL) != (ssize_t)len) {
			slot_fail(ch, s);
			return;
		}
		if (s->abort_kind == 1) {
			ch->c.aborted++;
			slot_end(ch, s, true);
			return;
		}
		s->st = ST_ABORT_WAIT;
		set_events(ch, s, EPOLLIN);
		return;
	}
	default:
		break;
	}
	s->ssl = SSL_new(ch->ctx);
	if (!s->ssl) {
		slot_fail(ch, s);
		return;
	}
	SSL_set_fd(s->ssl, s->fd);
	SSL_set_connect_state(s->ssl);
	s->st = ST_HANDSHAKE;
	slot_handshake(ch, s);
}

static void slot_event(struct churn *ch, struct slot *s, unsigned ev)
{
	int err = 0;
	socklen_t len = sizeof(err);

	switch (s->st) {
	case ST_CONNECTING:
		getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err || (ev & (EPOLLERR | EPOLLHUP))) {
			ch->c.connect_errors++;
			slot_fail(ch, s);
			return;
		}
		slot_connected(ch, s);
		return;
	case ST_HANDSHAKE:
		slot_handshake(ch, s);
		return;
	case ST_WAIT:
		slot_read(ch, s);
		return;
	case ST_ABORT_WAIT:
		ch->c.aborted++;
		slot_end(ch, s, true);
		return;
	default:
		return;
	}
}

/* The ClientHello our context sends, captured once through memory BIOs. */
static int capture_hello(struct churn *ch)
{
	SSL *ssl = SSL_new(ch->ctx);
	BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
	int n;

	if (!ssl || !rb || !wb)
		return -1;
	SSL_set_bio(ssl, rb, wb);
	SSL_set_connect_state(ssl);
	SSL_do_handshake(ssl);
	n = BIO_read(wb, ch->hello, sizeof(ch->hello));
	SSL_free(ssl);
	if (n <= 0)
		return -1;
	ch->hello_len = (size_t)n;
	return 0;
}

static void print_json(const struct churn *ch, double el)
{
	const struct counts *c = &ch->c;

	printf("{\"concurrency\": %u, \"abort_every\": %u, "
	       "\"duration_s\": %.3f, \"started\": %llu, "
	       "\"handshakes\": %llu, \"ok\": %llu, \"aborted\": %llu, "
	       "\"errors\": %llu, \"connect_errors\": %llu, "
	       "\"handshake_errors\": %llu, \"timeouts\": %llu, "
	       "\"handshakes_per_s\": %.1f}\n",
	       ch->conc, ch->abort_every, el, c->started, c->handshakes, c->ok,
	       c->aborted, c->errors, c->connect_errors, c->handshake_errors,
	       c->timeouts, (double)c->handshakes / el);
}

int main(int argc, char **argv)
{
	static struct churn ch = {.conc = 32, .timeout = 5};
	const char *target = NULL;
	double duration = 10, progress = 0, t0, next_progress, last_scan = 0;
	bool bad = false;

	for (int i = 1; i + 1 < argc; i += 2) {
		const char *a = argv[i], *v = argv[i + 1];

		if (!strcmp(a, "--target"))
			target = v;
		else if (!strcmp(a, "--concurrency"))
			ch.conc = (unsigned)atoi(v);
		else if (!strcmp(a, "--duration"))
			duration = atof(v);
		else if (!strcmp(a, "--count"))
			ch.max_count = strtoull(v, NULL, 10);
		else if (!strcmp(a, "--abort-every"))
			ch.abort_every = (unsigned)atoi(v);
		else if (!strcmp(a, "--timeout"))
			ch.timeout = atof(v);
		else if (!strcmp(a, "--progress"))
			progress = atof(v);
		else
			bad = true;
	}
	if (bad || !target || bench_parse_addr(target, &ch.target) < 0 ||
	    ch.conc == 0 || ch.conc > MAX_CONC || duration <= 0 ||
	    duration > 3600 || ch.timeout <= 0) {
		fprintf(stderr, "usage: tls_churn --target 127.0.0.1:PORT "
				"[--concurrency C<=1024] [--duration S] "
				"[--count N] [--abort-every K] [--timeout S] "
				"[--progress S]\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	bench_req_init(&ch.req, "TLS", &ch.target);
	ch.ctx = SSL_CTX_new(TLS_client_method());
	ch.ep = epoll_create1(0);
	if (!ch.ctx || ch.ep < 0)
		return 1;
	SSL_CTX_set_verify(ch.ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_session_cache_mode(ch.ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(ch.ctx, SSL_OP_NO_TICKET);
	if (capture_hello(&ch) < 0)
		return 1;
	t0 = bench_now();
	next_progress = t0 + progress;
	for (;;) {
		struct epoll_event ev[256];
		double now = bench_now();
		bool starting = now < t0 + duration &&
				(!ch.max_count || ch.c.started < ch.max_count);
		unsigned busy = 0;
		int n;

		for (unsigned i = 0; i < ch.conc; i++) {
			struct slot *s = &ch.s[i];

			if (s->st == ST_IDLE && starting &&
			    (!ch.max_count || ch.c.started < ch.max_count))
				slot_start(&ch, s);
			if (s->st != ST_IDLE)
				busy++;
		}
		if (!busy && !starting)
			break;
		if (now - last_scan > 0.1) {
			last_scan = now;
			for (unsigned i = 0; i < ch.conc; i++) {
				struct slot *s = &ch.s[i];

				if (s->st != ST_IDLE &&
				    now - s->started > ch.timeout) {
					ch.c.timeouts++;
					ch.c.errors++;
					slot_end(&ch, s, true);
				}
			}
		}
		if (progress > 0 && now >= next_progress) {
			next_progress += progress;
			fprintf(stderr,
				"tls_churn: %.0f s: %llu started, %llu "
				"handshakes, %llu errors\n",
				now - t0, ch.c.started, ch.c.handshakes,
				ch.c.errors);
		}
		n = epoll_wait(ch.ep, ev, 256, 10);
		for (int i = 0; i < n; i++)
			slot_event(&ch, ev[i].data.ptr, ev[i].events);
	}
	print_json(&ch, bench_now() - t0);
	SSL_CTX_free(ch.ctx);
	close(ch.ep);
	return 0;
}
