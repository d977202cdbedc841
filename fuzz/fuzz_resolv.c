/**
 * @file fuzz_resolv.c  libFuzzer target for the RFC 3263 resolution core.
 *
 * The input picks the configuration, a static route, a few URIs and then,
 * query by query, the answers: status, record types (matching or not),
 * TTLs, SRV and NAPTR fields and names. Between lookups the clock moves so
 * cache entries live and expire. Every lookup whose queries are all
 * answered must be done, and its targets must be well formed.
 */
#include "resolv/resolv.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct input {
	const uint8_t *p;
	size_t n;
	uint64_t now;
	uint32_t rnd;
};

static uint8_t u8(struct input *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->p++;
}

static uint16_t u16(struct input *in)
{
	uint16_t hi = u8(in);

	return (uint16_t)(hi << 8 | u8(in));
}

static const char *const names[] = {
	"example.com",
	"_sip._udp.example.com",
	"_sip._tcp.example.com",
	"_sips._tcp.example.com",
	"a.example.com",
	"b.example.com",
	".",
	"",
};

/** A name: often one the lookups ask for, else bytes from the input. */
static const char *name(struct input *in, char *buf, size_t cap)
{
	uint8_t sel = u8(in);
	size_t len;

	if (sel < 192)
		return names[sel % (sizeof(names) / sizeof(names[0]))];
	len = u8(in) % cap;
	if (len > in->n)
		len = in->n;
	memcpy(buf, in->p, len);
	buf[len] = '\0';
	in->p += len;
	in->n -= len;
	return buf;
}

static const char *const services[] = {"SIP+D2U", "SIP+D2T",  "SIPS+D2T",
				       "SIP+D2W", "SIPS+D2W", "E2U+sip",
				       "sip+d2u", ""};
static const char *const flags[] = {"s", "S", "a", "", "sa"};

static uint32_t fuzz_rand(void *arg)
{
	struct input *in = arg;

	in->rnd = in->rnd * 1664525u + 1013904223u;
	return in->rnd;
}

static uint64_t fuzz_clock(void *arg)
{
	return ((struct input *)arg)->now;
}

static void answer(struct sip_lookup *lk, const struct sip_dns_query *q,
		   struct input *in)
{
	struct sip_dns_rr rr[12];
	char strs[12][2][64];
	uint8_t sel = u8(in);
	size_t n = sel % 12;
	int status = 0;
	static const enum sip_dns_type types[] = {SIP_DNS_A, SIP_DNS_AAAA,
						  SIP_DNS_SRV, SIP_DNS_NAPTR};

	if ((sel & 0xc0) == 0x40)
		status = -ENOENT;
	else if ((sel & 0xc0) == 0x80)
		status = -ETIMEDOUT;
	memset(rr, 0, sizeof(rr));
	for (size_t i = 0; i < n; i++) {
		uint8_t t = u8(in);

		rr[i].type = t < 200 ? q->type : types[t % 4];
		rr[i].ttl = u16(in);
		switch (rr[i].type) {
		case SIP_DNS_A:
		case SIP_DNS_AAAA:
			for (size_t k = 0; k < 16; k++)
				rr[i].aaaa[k] = u8(in);
			break;
		case SIP_DNS_SRV:
			rr[i].srv.priority = u8(in);
			rr[i].srv.weight = u16(in);
			rr[i].srv.port = u16(in);
			rr[i].srv.target = name(in, strs[i][0], 64);
			break;
		default:
			rr[i].naptr.order = u8(in);
			rr[i].naptr.preference = u8(in);
			rr[i].naptr.flags = flags[u8(in) % 5];
			rr[i].naptr.service = services[u8(in) % 8];
			rr[i].naptr.regexp = u8(in) < 240 ? "" : "!^.*$!x!";
			rr[i].naptr.replacement = name(in, strs[i][1], 64);
			break;
		}
	}
	if (sip_lookup_feed(lk, q->id, status, rr, n) != 0)
		abort();
	if (sip_lookup_feed(lk, q->id, 0, NULL, 0) != -EALREADY)
		abort();
}

static const char *const uris[] = {
	"sip:example.com",
	"sips:example.com",
	"sip:example.com;transport=tcp",
	"sip:example.com:5070",
	"sip:b@example.com;transport=ws",
	"sip:192.0.2.1",
	"sips:[2001:db8::1]:5071",
	"sip:a.example.com;transport=sctp",
};

static void run_lookup(struct sip_resolver *r, struct input *in)
{
	struct sip_lookup *lk;
	struct sip_dns_query q;
	struct sip_target t;
	struct sip_uri uri;
	char text[128], out[600];
	uint8_t sel = u8(in);
	int queries = 0;

	if (sel < 224) {
		if (sip_uri_parse(sip_str_c(uris[sel % 8]), &uri) != 0)
			abort();
	} else {
		const char *s = name(in, text, sizeof(text));

		if (sip_uri_parse(sip_str_c(s), &uri) != 0)
			return;
	}
	if (sip_lookup_create(r, &uri, &lk) != 0)
		return;
	while (sip_lookup_next_query(lk, &q) == 1) {
		if (++queries > SIP_RESOLV_MAX_QUERIES || !q.name[0])
			abort();
		answer(lk, &q, in);
	}
	if (!sip_lookup_done(lk))
		abort();
	if ((sip_lookup_status(lk) == 0) != (sip_lookup_count(lk) > 0))
		abort();
	while (sip_lookup_next(lk, &t) == 1) {
		if (!t.transport || (t.transport & (t.transport - 1)) ||
		    (t.transport & ~SIP_TP_ALL) ||
		    (t.family != 4 && t.family != 6) || !t.host[0])
			abort();
		if (sip_target_format(&t, out, sizeof(out)) <= 0)
			abort();
	}
	sip_lookup_destroy(lk);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = {.p = data, .n = size, .now = 1};
	struct sip_resolv_config cfg = {
		.rand = fuzz_rand,
		.rand_arg = &in,
		.clock = fuzz_clock,
		.clock_arg = &in,
	};
	struct sip_resolver *r;
	char text[128];
	uint8_t c = u8(&in);

	cfg.transports = u8(&in) & SIP_TP_ALL;
	cfg.families = c & 3;
	cfg.prefer_ipv6 = c & 4;
	cfg.cache_max = (c >> 3) & 7;
	cfg.neg_ttl = u8(&in);
	cfg.max_ttl = u16(&in);
	in.rnd = u8(&in);
	if (sip_resolver_create(&cfg, &r) != 0)
		abort();
	c = u8(&in);
	if (c & 1)
		sip_resolver_route_set(r, "example.com",
				       name(&in, text, sizeof(text)));
	else if (c & 2)
		sip_resolver_route_set(
			r, "example.com",
			"10.0.0.1:5070;transport=tcp, "
			"a.example.com, [2001:db8::5];transport=tls");
	for (int i = 0; i < 4 && in.n; i++) {
		run_lookup(r, &in);
		in.now += (uint64_t)u16(&in) * 100u;
		if (sip_resolver_cache_size(r) > cfg.cache_max)
			abort();
	}
	sip_resolver_destroy(r);
	return 0;
}
