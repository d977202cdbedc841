/**
 * @file tp_common.h  Small helpers shared by the transport benchmark
 * programs (udp_echo, udp_load, stream_load, tls_churn): loopback address
 * parsing, a monotonic clock, and the OPTIONS request they send.
 */
#ifndef SIPD_BENCH_TP_COMMON_H
#define SIPD_BENCH_TP_COMMON_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

static inline double bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* "127.0.0.1:5060" into @p out; only 127.0.0.0/8 is accepted, so that no
 * benchmark can be pointed away from this machine. */
static inline int bench_parse_addr(const char *text, struct sockaddr_in *out)
{
	char host[64];
	const char *colon = strrchr(text, ':');
	char *end;
	unsigned long port;

	if (!colon || (size_t)(colon - text) >= sizeof(host))
		return -EINVAL;
	memcpy(host, text, (size_t)(colon - text));
	host[colon - text] = '\0';
	port = strtoul(colon + 1, &end, 10);
	if (*end || port > 65535)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->sin_family = AF_INET;
	out->sin_port = htons((unsigned short)port);
	if (inet_pton(AF_INET, host, &out->sin_addr) != 1)
		return -EINVAL;
	if ((ntohl(out->sin_addr.s_addr) >> 24) != 127) {
		fprintf(stderr, "%s: not a loopback address\n", text);
		return -EINVAL;
	}
	return 0;
}

/* An OPTIONS request with a 16-digit hex field in the branch and one in
 * the Call-ID; bench_stamp() rewrites both. */
struct bench_req {
	char buf[512];
	size_t len;
	size_t branch_off;
	size_t callid_off;
};

static inline void bench_req_init(struct bench_req *r, const char *transport,
				  const struct sockaddr_in *target)
{
	char host[INET_ADDRSTRLEN];
	unsigned port = ntohs(target->sin_port);
	int n;

	inet_ntop(AF_INET, &target->sin_addr, host, sizeof(host));
	n = snprintf(r->buf, sizeof(r->buf),
		     "OPTIONS sip:service@%s:%u SIP/2.0\r\n"
		     "Via: SIP/2.0/%s 127.0.0.1:5999;branch=z9hG4bK"
		     "0000000000000000;rport\r\n"
		     "Max-Forwards: 70\r\n"
		     "From: <sip:bench@127.0.0.1>;tag=bench1\r\n"
		     "To: <sip:service@%s>\r\n"
		     "Call-ID: 0000000000000000@bench\r\n"
		     "CSeq: 1 OPTIONS\r\n"
		     "Accept: application/sdp\r\n"
		     "User-Agent: sipd-bench\r\n"
		     "Content-Length: 0\r\n\r\n",
		     host, port, transport, host);
	r->len = (size_t)n;
	r->branch_off = (size_t)(strstr(r->buf, "z9hG4bK") - r->buf) + 7;
	r->callid_off = (size_t)(strstr(r->buf, "Call-ID: ") - r->buf) + 9;
}

/* Copy the request into @p dst with @p seq in its branch and Call-ID. */
static inline size_t bench_stamp(const struct bench_req *r, char *dst,
				 unsigned long long seq)
{
	static const char hex[] = "0123456789abcdef";

	memcpy(dst, r->buf, r->len);
	for (int i = 15; i >= 0; i--) {
		dst[r->branch_off + (size_t)i] = hex[seq & 15];
		dst[r->callid_off + (size_t)i] = hex[seq & 15];
		seq >>= 4;
	}
	return r->len;
}

#endif /* SIPD_BENCH_TP_COMMON_H */
