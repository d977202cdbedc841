/** @file addr.c  Transport address text, close reason names, and the Via
 * helpers of RFC 3261 §18.2 and RFC 3581 (pure functions). */
#include "transport/transport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static int parse_port(const char *s, uint16_t *out)
{
	unsigned v = 0;

	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		v = v * 10 + (unsigned)(*s - '0');
		if (v > 65535)
			return -EINVAL;
	}
	*out = (uint16_t)v;
	return 0;
}

int sip_tp_uri_parse(const char *text, unsigned *transport,
		     struct sockaddr_storage *addr)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *p, *port;
	size_t hlen;
	uint16_t pn;

	if (!text || !transport || !addr)
		return -EINVAL;
	p = text + 4;
	if (!strncasecmp(text, "udp:", 4)) {
		*transport = SIP_TP_UDP;
	} else if (!strncasecmp(text, "tcp:", 4)) {
		*transport = SIP_TP_TCP;
	} else if (!strncasecmp(text, "tls:", 4)) {
		*transport = SIP_TP_TLS;
	} else if (!strncasecmp(text, "wss:", 4)) {
		*transport = SIP_TP_WSS;
	} else if (!strncasecmp(text, "ws:", 3)) {
		*transport = SIP_TP_WS;
		p = text + 3;
	} else {
		return -EINVAL;
	}
	memset(addr, 0, sizeof(*addr));
	if (*p == '[') {
		const char *rb = strchr(p, ']');
		if (!rb || rb[1] != ':')
			return -EINVAL;
		hlen = (size_t)(rb - p - 1);
		if (hlen == 0 || hlen >= sizeof(host))
			return -EINVAL;
		memcpy(host, p + 1, hlen);
		host[hlen] = '\0';
		port = rb + 2;
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)addr;
		if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1 ||
		    parse_port(port, &pn))
			return -EINVAL;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(pn);
		return 0;
	}
	port = strrchr(p, ':');
	if (!port)
		return -EINVAL;
	hlen = (size_t)(port - p);
	if (hlen == 0 || hlen >= sizeof(host))
		return -EINVAL;
	memcpy(host, p, hlen);
	host[hlen] = '\0';
	struct sockaddr_in *s4 = (struct sockaddr_in *)addr;
	if (inet_pton(AF_INET, host, &s4->sin_addr) != 1 ||
	    parse_port(port + 1, &pn))
		return -EINVAL;
	s4->sin_family = AF_INET;
	s4->sin_port = htons(pn);
	return 0;
}

/* The dotted quad inet_ntop() writes, without its sprintf (one per
 * request answered). @p text has room for INET_ADDRSTRLEN bytes. */
static void ipv4_text(const struct in_addr *a, char *text)
{
	const uint8_t *b = (const uint8_t *)&a->s_addr;
	char *p = text;

	for (int i = 0; i < 4; i++) {
		unsigned v = b[i];

		if (i)
			*p++ = '.';
		if (v >= 100)
			*p++ = (char)('0' + v / 100);
		if (v >= 10)
			*p++ = (char)('0' + v / 10 % 10);
		*p++ = (char)('0' + v % 10);
	}
	*p = '\0';
}

int sip_tp_uri_format(unsigned transport, const struct sockaddr *addr,
		      char *buf, size_t cap)
{
	char host[INET6_ADDRSTRLEN];
	const char *tp;
	int n;

	switch (transport) {
	case SIP_TP_UDP:
		tp = "udp";
		break;
	case SIP_TP_TCP:
		tp = "tcp";
		break;
	case SIP_TP_TLS:
		tp = "tls";
		break;
	case SIP_TP_WS:
		tp = "ws";
		break;
	case SIP_TP_WSS:
		tp = "wss";
		break;
	default:
		return -EINVAL;
	}
	if (!addr)
		return -EINVAL;
	if (addr->sa_family == AF_INET) {
		/* without snprintf: the registrar formats every source */
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)addr;
		char text[48], port[8];
		size_t tl = strlen(tp), hl, pl = sizeof(port), k = 0;
		unsigned v = ntohs(s4->sin_port);

		ipv4_text(&s4->sin_addr, host);
		hl = strlen(host);
		do {
			port[--pl] = (char)('0' + v % 10);
			v /= 10;
		} while (v);
		for (size_t i = 0; i < tl; i++)
			text[k++] = tp[i];
		text[k++] = ':';
		for (size_t i = 0; i < hl; i++)
			text[k++] = host[i];
		text[k++] = ':';
		for (size_t i = pl; i < sizeof(port); i++)
			text[k++] = port[i];
		text[k] = '\0';
		n = (int)k;
		if (k < cap)
			memcpy(buf, text, k + 1);
	} else if (addr->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 =
			(const struct sockaddr_in6 *)addr;
		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		n = snprintf(buf, cap, "%s:[%s]:%u", tp, host,
			     (unsigned)ntohs(s6->sin6_port));
	} else {
		return -EINVAL;
	}
	if (n < 0 || (size_t)n >= cap)
		return -ENOSPC;
	return n;
}

const char *sip_tp_close_reason_name(enum sip_tp_close_reason reason)
{
	static const char *const names[SIP_TP_CLOSE__COUNT] = {
		[SIP_TP_CLOSE_LOCAL] = "local",
		[SIP_TP_CLOSE_EOF] = "eof",
		[SIP_TP_CLOSE_IO] = "io",
		[SIP_TP_CLOSE_FRAMING] = "framing",
		[SIP_TP_CLOSE_OVERSIZE] = "oversize",
		[SIP_TP_CLOSE_GARBAGE] = "garbage",
		[SIP_TP_CLOSE_STALLED] = "stalled",
		[SIP_TP_CLOSE_IDLE] = "idle",
		[SIP_TP_CLOSE_LIMIT] = "limit",
		[SIP_TP_CLOSE_CONNECT] = "connect",
		[SIP_TP_CLOSE_TLS] = "tls",
		[SIP_TP_CLOSE_HANDSHAKE_TIMEOUT] = "handshake-timeout",
		[SIP_TP_CLOSE_SHUTDOWN] = "shutdown",
		[SIP_TP_CLOSE_WS_HANDSHAKE] = "ws-handshake",
		[SIP_TP_CLOSE_WS_PROTOCOL] = "ws-protocol",
	};
	if ((unsigned)reason >= SIP_TP_CLOSE__COUNT)
		return "?";
	return names[reason];
}

/* ------------------------------------------------------------------------ */
/* Via helpers                                                              */
/* ------------------------------------------------------------------------ */

/* Parse a numeric host slice (IPv6 with or without brackets) into @p ss
 * with @p port. @return 0, -EINVAL when it is not numeric. */
static int numeric_addr(sip_str host, uint16_t port,
			struct sockaddr_storage *ss)
{
	char buf[INET6_ADDRSTRLEN + 2];

	if (host.len >= 2 && host.p[0] == '[' && host.p[host.len - 1] == ']')
		host = sip_str_sub(host, 1, host.len - 1);
	if (host.len == 0 || host.len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, host.p, host.len);
	buf[host.len] = '\0';
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	if (inet_pton(AF_INET, buf, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		return 0;
	}
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET6, buf, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		return 0;
	}
	return -EINVAL;
}

static bool same_ip(const struct sockaddr_storage *a, const struct sockaddr *b)
{
	if (a->ss_family != b->sa_family)
		return false;
	if (b->sa_family == AF_INET)
		return !memcmp(&((const struct sockaddr_in *)a)->sin_addr,
			       &((const struct sockaddr_in *)b)->sin_addr, 4);
	return !memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
		       &((const struct sockaddr_in6 *)b)->sin6_addr, 16);
}

static int src_ip_port(const struct sockaddr *src, char *text, size_t cap,
		       uint16_t *port)
{
	if (src->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)src;
		if (cap >= INET_ADDRSTRLEN)
			ipv4_text(&s4->sin_addr, text);
		else
			inet_ntop(AF_INET, &s4->sin_addr, text, (socklen_t)cap);
		*port = ntohs(s4->sin_port);
		return 0;
	}
	if (src->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 =
			(const struct sockaddr_in6 *)src;
		inet_ntop(AF_INET6, &s6->sin6_addr, text, (socklen_t)cap);
		*port = ntohs(s6->sin6_port);
		return 0;
	}
	return -EINVAL;
}

/* True when the sent-by host of @p via is the IP address of @p src. */
static bool sent_by_is(const struct sip_via *via, const struct sockaddr *src)
{
	struct sockaddr_storage ss;

	if (via->host_kind != SIP_HOST_IPV4 && via->host_kind != SIP_HOST_IPV6)
		return false;
	if (numeric_addr(via->host, 0, &ss))
		return false;
	return same_ip(&ss, src);
}

int sip_tp_via_received(const struct sip_via *via, const struct sockaddr *src,
			struct sip_tp_via_fix *out)
{
	uint16_t port;

	memset(out, 0, sizeof(*out));
	if (!via || !src ||
	    src_ip_port(src, out->received, sizeof(out->received), &port))
		return -EINVAL;
	/* RFC 3581 §4: with rport, received is added even when equal. */
	out->add_received = via->has_rport || !sent_by_is(via, src);
	if (via->has_rport && !via->rport_value) {
		out->set_rport = true;
		out->rport = port;
	}
	if (!out->add_received)
		out->received[0] = '\0';
	return 0;
}

static uint16_t default_port(unsigned transport)
{
	return (transport == SIP_TP_TLS || transport == SIP_TP_WSS) ? 5061
								    : 5060;
}

/* Host (numeric → ADDR, name → RESOLVE) at @p port. */
static int host_dest(sip_str host, uint16_t port, struct sip_tp_resp_dest *out)
{
	out->port = port;
	if (numeric_addr(host, port, &out->addr) == 0) {
		out->kind = SIP_TP_RESP_ADDR;
		return 0;
	}
	/* a name (or something that is not an address) is resolved */
	out->kind = SIP_TP_RESP_RESOLVE;
	out->host = host;
	return 0;
}

static void set_port(struct sockaddr_storage *ss, uint16_t port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
}

int sip_tp_response_dest(const struct sip_via *via, unsigned transport,
			 const struct sockaddr *src, bool conn_open,
			 struct sip_tp_resp_dest *out)
{
	bool reliable = transport != SIP_TP_UDP;
	struct sockaddr_storage rcvd;
	bool have_rcvd = false;

	memset(out, 0, sizeof(*out));
	out->transport = transport;
	if (!via ||
	    (src && src->sa_family != AF_INET && src->sa_family != AF_INET6))
		return -EINVAL;
	uint16_t sent_port =
		via->has_port ? via->port : default_port(transport);

	/* The address the request came from: the received parameter when
	 * present, else the source address when sent-by is not it. */
	if (via->received.len) {
		if (numeric_addr(via->received, 0, &rcvd))
			return -EINVAL;
		have_rcvd = true;
	} else if (src && (via->has_rport || !sent_by_is(via, src))) {
		memset(&rcvd, 0, sizeof(rcvd));
		memcpy(&rcvd, src,
		       src->sa_family == AF_INET ? sizeof(struct sockaddr_in)
						 : sizeof(struct sockaddr_in6));
		have_rcvd = true;
	}

	if (reliable) {
		if (conn_open) {
			out->kind = SIP_TP_RESP_CONN;
			return 0;
		}
		if (have_rcvd) {
			out->kind = SIP_TP_RESP_ADDR;
			out->addr = rcvd;
			out->port = sent_port;
			set_port(&out->addr, sent_port);
			return 0;
		}
		return host_dest(via->host, sent_port, out);
	}

	if (via->maddr.len) {
		out->multicast = true;
		out->ttl = via->has_ttl ? via->ttl : 1;
		return host_dest(via->maddr, sent_port, out);
	}
	if (via->has_rport && have_rcvd) {
		uint16_t port = via->rport;
		if (!via->rport_value) {
			char tmp[INET6_ADDRSTRLEN];
			if (!src || src_ip_port(src, tmp, sizeof(tmp), &port))
				port = sent_port;
		}
		out->kind = SIP_TP_RESP_ADDR;
		out->addr = rcvd;
		out->port = port;
		set_port(&out->addr, port);
		return 0;
	}
	if (have_rcvd) {
		out->kind = SIP_TP_RESP_ADDR;
		out->addr = rcvd;
		out->port = sent_port;
		set_port(&out->addr, sent_port);
		return 0;
	}
	return host_dest(via->host, sent_port, out);
}

unsigned sip_tp_request_transport(unsigned transport, size_t len, unsigned mtu,
				  bool explicit_transport)
{
	/* §18.1.1: "within 200 bytes of the path MTU, or ... larger than
	 * 1300 bytes and the path MTU is unknown" */
	size_t limit = mtu > 200 ? (size_t)mtu - 200 : 1300;

	if (transport != SIP_TP_UDP || explicit_transport)
		return transport;
	return len > limit ? SIP_TP_TCP : SIP_TP_UDP;
}
