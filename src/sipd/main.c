/**
 * @file main.c  sipd: the SIP server. For now a stateless UDP responder
 * (see handler.c) on one socket, driven by libuv.
 */
#include "sipd/handler.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define SIPD_DEFAULT_LISTEN "udp:127.0.0.1:5060"

struct sipd_server {
	uv_loop_t *loop;
	uv_udp_t udp;
	uv_signal_t sigint;
	uv_signal_t sigterm;
	bool stopping;
	struct sipd_handler handler;
	char rx[SIPD_MAX_DATAGRAM + 1];
	char tx[SIPD_MAX_RESPONSE];
};

static void usage(FILE *out)
{
	fputs("usage: sipd [--listen udp:HOST:PORT]\n"
	      "\n"
	      "  -l, --listen udp:HOST:PORT  address to listen on "
	      "(default " SIPD_DEFAULT_LISTEN ");\n"
	      "                              IPv6 hosts in brackets, port 0 "
	      "picks a free port\n"
	      "  -h, --help                  show this text\n",
	      out);
}

/* "udp:HOST:PORT" or "udp:[V6]:PORT" to a socket address. */
static int parse_listen(const char *spec, struct sockaddr_storage *ss)
{
	char host[64];
	const char *p, *colon;
	size_t hlen;
	char *end;
	unsigned long port;

	if (strncmp(spec, "udp:", 4) != 0)
		return UV_EINVAL;
	p = spec + 4;
	if (*p == '[') {
		const char *rb = strchr(p, ']');

		if (!rb || rb[1] != ':')
			return UV_EINVAL;
		hlen = (size_t)(rb - p - 1);
		p++;
		colon = rb + 1;
	} else {
		colon = strrchr(p, ':');
		if (!colon)
			return UV_EINVAL;
		hlen = (size_t)(colon - p);
	}
	if (hlen == 0 || hlen >= sizeof(host))
		return UV_EINVAL;
	memcpy(host, p, hlen);
	host[hlen] = '\0';
	if (colon[1] < '0' || colon[1] > '9')
		return UV_EINVAL;
	port = strtoul(colon + 1, &end, 10);
	if (*end != '\0' || port > 65535)
		return UV_EINVAL;
	if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss) == 0)
		return 0;
	if (uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)ss) == 0)
		return 0;
	return UV_EINVAL;
}

static void format_addr(const struct sockaddr *sa, char *buf, size_t cap)
{
	char ip[64] = "?";

	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 =
			(const struct sockaddr_in6 *)(const void *)sa;

		uv_ip6_name(in6, ip, sizeof(ip));
		snprintf(buf, cap, "[%s]:%u", ip, ntohs(in6->sin6_port));
	} else {
		const struct sockaddr_in *in =
			(const struct sockaddr_in *)(const void *)sa;

		uv_ip4_name(in, ip, sizeof(ip));
		snprintf(buf, cap, "%s:%u", ip, ntohs(in->sin_port));
	}
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
	struct sipd_server *srv = handle->data;

	(void)suggested;
	*buf = uv_buf_init(srv->rx, sizeof(srv->rx));
}

/* Printable prefix of a slice for the log (at most 80 bytes). */
static void log_str(char *out, size_t cap, sip_str s)
{
	size_t n = 0;

	for (size_t i = 0; i < s.len && i < 80 && n + 1 < cap; i++) {
		unsigned char c = (unsigned char)s.p[i];

		out[n++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	out[n] = '\0';
}

static void log_outcome(const char *from, const struct sipd_outcome *o,
			const char *extra)
{
	char method[96], ruri[96];

	log_str(method, sizeof(method), o->method);
	log_str(ruri, sizeof(ruri), o->ruri);
	if (o->status)
		fprintf(stderr, "sipd: %s %s %s -> %u %s%s\n", from,
			method[0] ? method : "-", ruri[0] ? ruri : "-",
			o->status, o->reason ? o->reason : "", extra);
	else
		fprintf(stderr, "sipd: %s %s %s -> no answer (%s)\n", from,
			method[0] ? method : "-", ruri[0] ? ruri : "-",
			o->note ? o->note : "dropped");
}

static void on_recv(uv_udp_t *udp, ssize_t nread, const uv_buf_t *buf,
		    const struct sockaddr *addr, unsigned flags)
{
	struct sipd_server *srv = udp->data;
	struct sipd_outcome o;
	char from[96];
	uv_buf_t reply;
	int r;

	if (nread < 0) {
		fprintf(stderr, "sipd: receive error: %s\n",
			uv_strerror((int)nread));
		return;
	}
	if (!addr)
		return; /* nothing more to read this round */
	format_addr(addr, from, sizeof(from));
	if ((flags & UV_UDP_PARTIAL) || (size_t)nread > SIPD_MAX_DATAGRAM) {
		fprintf(stderr, "sipd: %s datagram too large, dropped\n", from);
		return;
	}
	if (!sipd_handle(&srv->handler, buf->base, (size_t)nread, srv->tx,
			 sizeof(srv->tx), &o)) {
		if (!o.note || strcmp(o.note, "keepalive") != 0)
			log_outcome(from, &o, "");
		return;
	}
	reply = uv_buf_init(srv->tx, (unsigned)o.len);
	r = uv_udp_try_send(udp, &reply, 1, addr);
	if (r < 0) {
		log_outcome(from, &o, " (send failed)");
		fprintf(stderr, "sipd: send to %s: %s\n", from, uv_strerror(r));
		return;
	}
	log_outcome(from, &o, "");
}

static void close_handle(uv_handle_t *h)
{
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static void on_signal(uv_signal_t *sig, int signum)
{
	struct sipd_server *srv = sig->data;

	if (srv->stopping)
		return;
	srv->stopping = true;
	fprintf(stderr, "sipd: %s, stopping\n",
		signum == SIGINT ? "SIGINT" : "SIGTERM");
	uv_udp_recv_stop(&srv->udp);
	close_handle((uv_handle_t *)&srv->udp);
	close_handle((uv_handle_t *)&srv->sigint);
	close_handle((uv_handle_t *)&srv->sigterm);
}

static int start(struct sipd_server *srv, const struct sockaddr *addr)
{
	struct sockaddr_storage bound;
	int len = sizeof(bound);
	char name[96];
	int r;

	memset(&bound, 0, sizeof(bound));
	srv->udp.data = srv;
	srv->sigint.data = srv;
	srv->sigterm.data = srv;
	r = uv_udp_init(srv->loop, &srv->udp);
	if (r < 0)
		return r;
	r = uv_udp_bind(&srv->udp, addr, 0);
	if (r == 0)
		r = uv_udp_getsockname(&srv->udp, (struct sockaddr *)&bound,
				       &len);
	if (r == 0)
		r = uv_udp_recv_start(&srv->udp, on_alloc, on_recv);
	if (r < 0) {
		close_handle((uv_handle_t *)&srv->udp);
		return r;
	}
	uv_signal_init(srv->loop, &srv->sigint);
	uv_signal_init(srv->loop, &srv->sigterm);
	uv_signal_start(&srv->sigint, on_signal, SIGINT);
	uv_signal_start(&srv->sigterm, on_signal, SIGTERM);
	format_addr((const struct sockaddr *)&bound, name, sizeof(name));
	fprintf(stderr, "sipd: listening on udp:%s\n", name);
	return 0;
}

int main(int argc, char **argv)
{
	const char *spec = SIPD_DEFAULT_LISTEN;
	struct sockaddr_storage addr;
	struct sipd_server *srv;
	int r;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-h") == 0 ||
		    strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else if ((strcmp(argv[i], "-l") == 0 ||
			    strcmp(argv[i], "--listen") == 0) &&
			   i + 1 < argc) {
			spec = argv[++i];
		} else if (strncmp(argv[i], "--listen=", 9) == 0) {
			spec = argv[i] + 9;
		} else {
			fprintf(stderr, "sipd: bad argument '%s'\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	memset(&addr, 0, sizeof(addr));
	if (parse_listen(spec, &addr) < 0) {
		fprintf(stderr, "sipd: bad listen address '%s'\n", spec);
		usage(stderr);
		return 2;
	}

	srv = calloc(1, sizeof(*srv));
	if (!srv) {
		fputs("sipd: out of memory\n", stderr);
		return 1;
	}
	sipd_handler_init(&srv->handler);
	srv->loop = uv_default_loop();
	r = start(srv, (const struct sockaddr *)&addr);
	if (r < 0) {
		fprintf(stderr, "sipd: %s: %s\n", spec, uv_strerror(r));
		uv_run(srv->loop, UV_RUN_DEFAULT);
		uv_loop_close(srv->loop);
		free(srv);
		return 1;
	}
	uv_run(srv->loop, UV_RUN_DEFAULT);
	r = uv_loop_close(srv->loop);
	free(srv);
	if (r < 0) {
		fprintf(stderr, "sipd: loop close: %s\n", uv_strerror(r));
		return 1;
	}
	fputs("sipd: stopped\n", stderr);
	return 0;
}
