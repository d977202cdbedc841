/**
 * @file udp_echo.c  The ceiling for a UDP SIP server on one core: a bare
 * echo that reads datagrams in batches with recvmmsg() and sends each one
 * back to its source with sendmmsg(), nothing else. The transport
 * benchmark runs it pinned to the core sipd gets and drives both with the
 * same load.
 *
 * Usage: udp_echo [--listen 127.0.0.1:PORT] [--duration S]
 * Prints "udp_echo: listening on udp:HOST:PORT" on stderr; stops on
 * SIGINT/SIGTERM or after S seconds (default 600) and prints the count.
 */
#include "tp_common.h"

#include <signal.h>
#include <sys/time.h>
#include <unistd.h>

#define BATCH 64
#define DGRAM_MAX 2048

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

int main(int argc, char **argv)
{
	static char bufs[BATCH][DGRAM_MAX];
	struct sockaddr_in addrs[BATCH];
	struct iovec iov[BATCH];
	struct mmsghdr msgs[BATCH];
	struct sockaddr_in sa;
	socklen_t salen = sizeof(sa);
	const char *listen = "127.0.0.1:0";
	double duration = 600, end;
	unsigned long long echoed = 0;
	struct timeval tv = {0, 100000};
	int fd, one = 1, rcvbuf = 4 << 20;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--listen")) {
			listen = argv[i + 1];
		} else if (!strcmp(argv[i], "--duration")) {
			duration = atof(argv[i + 1]);
		} else {
			fprintf(stderr, "usage: udp_echo [--listen H:P] "
					"[--duration S]\n");
			return 2;
		}
	}
	if (bench_parse_addr(listen, &sa) < 0)
		return 2;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0)
		return 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &salen) < 0) {
		perror("udp_echo: bind");
		return 1;
	}
	{
		char host[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &sa.sin_addr, host, sizeof(host));
		fprintf(stderr, "udp_echo: listening on udp:%s:%u\n", host,
			ntohs(sa.sin_port));
	}
	end = bench_now() + duration;
	while (!stop && bench_now() < end) {
		int n;

		for (int i = 0; i < BATCH; i++) {
			iov[i].iov_base = bufs[i];
			iov[i].iov_len = DGRAM_MAX;
			memset(&msgs[i], 0, sizeof(msgs[i]));
			msgs[i].msg_hdr.msg_iov = &iov[i];
			msgs[i].msg_hdr.msg_iovlen = 1;
			msgs[i].msg_hdr.msg_name = &addrs[i];
			msgs[i].msg_hdr.msg_namelen = sizeof(addrs[i]);
		}
		n = recvmmsg(fd, msgs, BATCH, MSG_WAITFORONE, NULL);
		if (n <= 0)
			continue;
		for (int i = 0; i < n; i++)
			iov[i].iov_len = msgs[i].msg_len;
		for (int off = 0; off < n;) {
			int s = sendmmsg(fd, msgs + off, (unsigned)(n - off),
					 0);

			if (s <= 0)
				break;
			off += s;
		}
		echoed += (unsigned long long)n;
	}
	fprintf(stderr, "udp_echo: echoed %llu datagrams\n", echoed);
	close(fd);
	return 0;
}
