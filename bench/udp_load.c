/**
 * @file udp_load.c  Closed-loop UDP load: keeps a window of OPTIONS
 * requests in flight over several connected sockets (distinct source
 * ports, so that SO_REUSEPORT spreads them over a server's workers), sent
 * and received in batches with sendmmsg()/recvmmsg(). Any datagram that
 * comes back ends one request: a 2xx from a SIP server, the request itself
 * from udp_echo. A socket that hears nothing for 200 ms while it has
 * requests out counts them lost and starts again.
 *
 * Usage: udp_load --target 127.0.0.1:PORT [--window W] [--sockets K]
 *                 [--duration S] [--warmup S]
 * Prints one JSON object on stdout: requests, replies by kind, lost, and
 * the rate over the measured time (the warmup is not counted).
 */
#include "tp_common.h"

#include <poll.h>
#include <unistd.h>

#define BATCH 64
#define MAX_SOCKS 64
#define DGRAM_MAX 2048
#define LOSS_S 0.2

struct sock {
	int fd;
	unsigned window;
	unsigned inflight;
	double last_rx;
};

struct counts {
	unsigned long long sent, ok, echo, other, lost;
};

static char rxbuf[BATCH][DGRAM_MAX];
static char txbuf[BATCH][512];

static unsigned drain(struct sock *s, struct counts *c, double now)
{
	struct iovec iov[BATCH];
	struct mmsghdr msgs[BATCH];
	int n;

	for (int i = 0; i < BATCH; i++) {
		iov[i].iov_base = rxbuf[i];
		iov[i].iov_len = DGRAM_MAX;
		memset(&msgs[i], 0, sizeof(msgs[i]));
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	n = recvmmsg(s->fd, msgs, BATCH, MSG_DONTWAIT, NULL);
	if (n <= 0)
		return 0;
	for (int i = 0; i < n; i++) {
		const char *p = rxbuf[i];

		if (msgs[i].msg_len >= 9 && !memcmp(p, "SIP/2.0 2", 9))
			c->ok++;
		else if (msgs[i].msg_len >= 8 && !memcmp(p, "OPTIONS ", 8))
			c->echo++;
		else
			c->other++;
	}
	s->inflight = (unsigned)n > s->inflight ? 0 : s->inflight - (unsigned)n;
	s->last_rx = now;
	return (unsigned)n;
}

static void refill(struct sock *s, const struct bench_req *req,
		   unsigned long long *seq, struct counts *c)
{
	while (s->inflight < s->window) {
		struct iovec iov[BATCH];
		struct mmsghdr msgs[BATCH];
		unsigned k = s->window - s->inflight;
		int n;

		if (k > BATCH)
			k = BATCH;
		for (unsigned i = 0; i < k; i++) {
			iov[i].iov_base = txbuf[i];
			iov[i].iov_len = bench_stamp(req, txbuf[i], (*seq)++);
			memset(&msgs[i], 0, sizeof(msgs[i]));
			msgs[i].msg_hdr.msg_iov = &iov[i];
			msgs[i].msg_hdr.msg_iovlen = 1;
		}
		n = sendmmsg(s->fd, msgs, k, MSG_DONTWAIT);
		if (n <= 0)
			return;
		s->inflight += (unsigned)n;
		c->sent += (unsigned long long)n;
	}
}

int main(int argc, char **argv)
{
	struct sock socks[MAX_SOCKS];
	struct pollfd pfd[MAX_SOCKS];
	struct sockaddr_in target;
	struct bench_req req = {0};
	struct counts c = {0}, base = {0};
	const char *target_s = NULL;
	unsigned window = 256, nsocks = 8;
	double duration = 10, warmup = 1, t0, t_meas = 0, end;
	unsigned long long seq = 1;
	int measuring = 0;

	for (int i = 1; i + 1 < argc; i += 2) {
		const char *a = argv[i], *v = argv[i + 1];

		if (!strcmp(a, "--target")) {
			target_s = v;
		} else if (!strcmp(a, "--window")) {
			window = (unsigned)atoi(v);
		} else if (!strcmp(a, "--sockets")) {
			nsocks = (unsigned)atoi(v);
		} else if (!strcmp(a, "--duration")) {
			duration = atof(v);
		} else if (!strcmp(a, "--warmup")) {
			warmup = atof(v);
		} else {
			target_s = NULL;
			break;
		}
	}
	if (!target_s || bench_parse_addr(target_s, &target) < 0 ||
	    nsocks == 0 || nsocks > MAX_SOCKS || window < nsocks ||
	    duration <= 0 || duration > 3600) {
		fprintf(stderr, "usage: udp_load --target 127.0.0.1:PORT "
				"[--window W] [--sockets K<=64] [--duration S] "
				"[--warmup S]\n");
		return 2;
	}
	bench_req_init(&req, "UDP", &target);
	t0 = bench_now();
	for (unsigned i = 0; i < nsocks; i++) {
		int buf = 4 << 20;

		socks[i].fd = socket(AF_INET, SOCK_DGRAM, 0);
		if (socks[i].fd < 0 ||
		    connect(socks[i].fd, (struct sockaddr *)&target,
			    sizeof(target)) < 0) {
			perror("udp_load: socket");
			return 1;
		}
		setsockopt(socks[i].fd, SOL_SOCKET, SO_RCVBUF, &buf,
			   sizeof(buf));
		socks[i].window =
			window / nsocks + (i < window % nsocks ? 1 : 0);
		socks[i].inflight = 0;
		socks[i].last_rx = t0;
		pfd[i].fd = socks[i].fd;
		pfd[i].events = POLLIN;
	}
	end = t0 + warmup + duration;
	for (;;) {
		double now = bench_now();
		unsigned got = 0;

		if (!measuring && now >= t0 + warmup) {
			measuring = 1;
			base = c;
			t_meas = now;
		}
		if (now >= end)
			break;
		for (unsigned i = 0; i < nsocks; i++) {
			struct sock *s = &socks[i];

			got += drain(s, &c, now);
			if (s->inflight && now - s->last_rx > LOSS_S) {
				c.lost += s->inflight;
				s->inflight = 0;
				s->last_rx = now;
			}
			refill(s, &req, &seq, &c);
		}
		if (!got)
			poll(pfd, nsocks, 10);
	}
	{
		double el = bench_now() - t_meas;
		unsigned long long ok = c.ok - base.ok,
				   echo = c.echo - base.echo;

		printf("{\"target\": \"%s\", \"window\": %u, \"sockets\": %u, "
		       "\"duration_s\": %.3f, \"sent\": %llu, \"ok\": %llu, "
		       "\"echo\": %llu, \"other\": %llu, \"lost\": %llu, "
		       "\"rate\": %.1f}\n",
		       target_s, window, nsocks, el, c.sent - base.sent, ok,
		       echo, c.other - base.other, c.lost - base.lost,
		       (double)(ok + echo) / el);
	}
	for (unsigned i = 0; i < nsocks; i++)
		close(socks[i].fd);
	return 0;
}
