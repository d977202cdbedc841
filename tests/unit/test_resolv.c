/** @file test_resolv.c  Unit tests for RFC 3263 server location: the
 * sans-I/O core with canned answers, and the c-ares/libuv adapter against
 * a DNS responder on 127.0.0.1 that runs on the same loop. */
#include "resolv/resolv.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#include <cmocka.h>

/* ------------------------------------------------------------------------ */
/* Fixtures: fake clock and random source, canned answers                   */
/* ------------------------------------------------------------------------ */

struct env {
	uint64_t now;
	uint32_t seed;
};

static uint32_t fake_rand(void *arg)
{
	struct env *e = arg;

	e->seed = e->seed * 1664525u + 1013904223u;
	return e->seed >> 8;
}

static uint64_t fake_clock(void *arg)
{
	return ((struct env *)arg)->now;
}

#define RR_A(a0, a1, a2, a3)                                                   \
	{                                                                      \
		.type = SIP_DNS_A, .ttl = 300, .a = { a0, a1, a2, a3 }         \
	}
#define RR_SRV(pri, w, port, t)                                                \
	{                                                                      \
		.type = SIP_DNS_SRV, .ttl = 300, .srv = { pri, w, port, t }    \
	}
#define RR_NAPTR(o, p, svc, rep)                                               \
	{                                                                      \
		.type = SIP_DNS_NAPTR, .ttl = 300, .naptr = {                  \
			o,                                                     \
			p,                                                     \
			"s",                                                   \
			svc,                                                   \
			"",                                                    \
			rep                                                    \
		}                                                              \
	}

/** A canned answer; a name/type not in the table is "no such name". */
struct canned {
	const char *name;
	enum sip_dns_type type;
	int status;
	size_t n;
	struct sip_dns_rr rr[8];
};

static const char *type_name(enum sip_dns_type t)
{
	switch (t) {
	case SIP_DNS_A:
		return "A";
	case SIP_DNS_AAAA:
		return "AAAA";
	case SIP_DNS_SRV:
		return "SRV";
	default:
		return "NAPTR";
	}
}

/** Drive @p lk to the end with @p table; the queries asked go to @p log
 * ("NAPTR example.com,SRV _sip._udp.example.com,..."). */
static int drive(struct sip_lookup *lk, const struct canned *table, char *log,
		 size_t cap)
{
	struct sip_dns_query q;
	int asked = 0;

	if (log)
		log[0] = '\0';
	while (sip_lookup_next_query(lk, &q) == 1) {
		const struct canned *c = NULL;

		asked++;
		if (log) {
			size_t l = strlen(log);
			snprintf(log + l, cap - l, "%s%s %s", l ? "," : "",
				 type_name(q.type), q.name);
		}
		for (size_t i = 0; table && table[i].name; i++)
			if (table[i].type == q.type &&
			    !strcmp(table[i].name, q.name))
				c = &table[i];
		if (c)
			assert_int_equal(sip_lookup_feed(lk, q.id, c->status,
							 c->rr, c->n),
					 0);
		else
			assert_int_equal(
				sip_lookup_feed(lk, q.id, -ENOENT, NULL, 0), 0);
	}
	assert_true(sip_lookup_done(lk));
	return asked;
}

/** All targets as "udp:1.2.3.4:5060 tcp:..." */
static const char *targets(struct sip_lookup *lk, char *buf, size_t cap)
{
	struct sip_target t;
	size_t l = 0;

	buf[0] = '\0';
	for (size_t i = 0; sip_lookup_target(lk, i, &t) == 0; i++) {
		char one[128];

		assert_true(sip_target_format(&t, one, sizeof(one)) > 0);
		l += (size_t)snprintf(buf + l, cap - l, "%s%s", l ? " " : "",
				      one);
	}
	return buf;
}

static struct sip_resolver *mkres(struct env *e, unsigned transports,
				  unsigned families, size_t cache_max)
{
	struct sip_resolv_config cfg = {
		.transports = transports,
		.families = families,
		.rand = fake_rand,
		.rand_arg = e,
		.clock = fake_clock,
		.clock_arg = e,
		.cache_max = cache_max,
		.neg_ttl = 30,
	};
	struct sip_resolver *r;

	assert_int_equal(sip_resolver_create(&cfg, &r), 0);
	return r;
}

static struct sip_lookup *mklookup(struct sip_resolver *r, const char *uri)
{
	struct sip_uri u;
	struct sip_lookup *lk;

	assert_int_equal(sip_uri_parse(sip_str_c(uri), &u), 0);
	assert_int_equal(sip_lookup_create(r, &u, &lk), 0);
	return lk;
}

static int lookup_err(struct sip_resolver *r, const char *uri)
{
	struct sip_uri u;
	struct sip_lookup *lk = NULL;
	int rc;

	assert_int_equal(sip_uri_parse(sip_str_c(uri), &u), 0);
	rc = sip_lookup_create(r, &u, &lk);
	assert_null(lk);
	return rc;
}

/** Resolve @p uri against @p table; returns the targets text. */
static const char *resolve(struct sip_resolver *r, const char *uri,
			   const struct canned *table, char *log, char *buf,
			   size_t cap)
{
	struct sip_lookup *lk = mklookup(r, uri);

	drive(lk, table, log, 512);
	targets(lk, buf, cap);
	sip_lookup_destroy(lk);
	return buf;
}

/* ------------------------------------------------------------------------ */
/* Core                                                                     */
/* ------------------------------------------------------------------------ */

static void test_numeric_host(void **state)
{
	struct env e = {0};
	struct sip_resolver *r = mkres(&e, 0, 0, 0);
	char log[512], buf[512];

	(void)state;
	assert_string_equal(resolve(r, "sip:192.0.2.1", NULL, log, buf, 512),
			    "udp:192.0.2.1:5060");
	assert_string_equal(log, "");
	assert_string_equal(resolve(r, "sip:192.0.2.1:5070;transport=TCP", NULL,
				    log, buf, 512),
			    "tcp:192.0.2.1:5070");
	assert_string_equal(
		resolve(r, "sips:[2001:db8::1]", NULL, log, buf, 512),
		"tls:[2001:db8::1]:5061");
	assert_string_equal(resolve(r, "sips:alice@[2001:db8::1]:7000", NULL,
				    log, buf, 512),
			    "tls:[2001:db8::1]:7000");
	assert_string_equal(log, "");
	sip_resolver_destroy(r);
}

static void test_explicit_port(void **state)
{
	static const struct canned t[] = {
		{"example.com",
		 SIP_DNS_A,
		 0,
		 2,
		 {RR_A(192, 0, 2, 10), RR_A(192, 0, 2, 11)}},
		{"example.com",
		 SIP_DNS_NAPTR,
		 0,
		 1,
		 {RR_NAPTR(10, 10, "SIP+D2T", "_sip._tcp.example.com")}},
		{NULL, 0, 0, 0, {{0}}},
	};
	struct env e = {0};
	struct sip_resolver *r = mkres(&e, 0, 0, 0);
	char log[512], buf[512];

	(void)state;
	assert_string_equal(
		resolve(r, "sip:bob@Example.COM:5080", t, log, buf, 512),
		"udp:192.0.2.10:5080 udp:192.0.2.11:5080");
	assert_string_equal(log, "A example.com");
	assert_string_equal(
		resolve(r, "sips:example.com:5081", t, log, buf, 512),
		"tls:192.0.2.10:5081 tls:192.0.2.11:5081");
	sip_resolver_destroy(r);
}

static const struct canned naptr_table[] = {
	{"example.com",
	 SIP_DNS_NAPTR,
	 0,
	 7,
	 {
		 RR_NAPTR(20, 1, "SIP+D2U", "_sip._udp.other.com"),
		 RR_NAPTR(10, 50, "SIP+D2U", "_sip._udp.example.com"),
		 RR_NAPTR(10, 10, "SIP+D2T", "_sip._tcp.example.com"),
		 RR_NAPTR(10, 20, "SIPS+D2T", "_sips._tcp.example.com"),
		 RR_NAPTR(10, 5, "E2U+sip", "_x.example.com"),
		 {.type = SIP_DNS_NAPTR,
		  .ttl = 300,
		  .naptr = {10, 1, "a", "SIP+D2U", "", "a.example.com"}},
		 RR_NAPTR(10, 30, "SIP+D2W", "_sip._ws.example.com"),
	 }},
	{"_sip._tcp.example.com",
	 SIP_DNS_SRV,
	 0,
	 1,
	 {RR_SRV(10, 0, 5070, "tcp.example.com")}},
	{"_sips._tcp.example.com",
	 SIP_DNS_SRV,
	 0,
	 1,
	 {RR_SRV(10, 0, 5071, "tls.example.com")}},
	{"_sip._ws.example.com",
	 SIP_DNS_SRV,
	 0,
	 1,
	 {RR_SRV(10, 0, 8080, "ws.example.com")}},
	{"_sip._udp.example.com",
	 SIP_DNS_SRV,
	 0,
	 1,
	 {RR_SRV(10, 0, 5060, "udp.example.com")}},
	{"tcp.example.com", SIP_DNS_A, 0, 1, {RR_A(192, 0, 2, 1)}},
	{"tls.example.com", SIP_DNS_A, 0, 1, {RR_A(192, 0, 2, 2)}},
	{"ws.example.com", SIP_DNS_A, 0, 1, {RR_A(192, 0, 2, 4)}},
	{"udp.example.com", SIP_DNS_A, 0, 1, {RR_A(192, 0, 2, 3)}},
	{NULL, 0, 0, 0, {{0}}},
};

static void test_naptr_order_preference(void **state)
{
	struct env e = {0};
	struct sip_resolver *r = mkres(&e, 0, 0, 0);
	char log[512], buf[512];

	(void)state;
	/* lowest order only (10); by preference; "a" flag and E2U ignored */
	assert_string_equal(
		resolve(r, "sip:example.com", naptr_table, log, buf, 512),
		"tcp:192.0.2.1:5070 tls:192.0.2.2:5071 ws:192.0.2.4:8080 "
		"udp:192.0.2.3:5060");
	assert_string_equal(log, "NAPTR example.com,"
				 "SRV _sip._tcp.example.com,"
				 "SRV _sips._tcp.example.com,"
				 "SRV _sip._ws.example.com,"
				 "SRV _sip._udp.example.com,"
				 "A tcp.example.com,A tls.example.com,"
				 "A ws.example.com,A udp.example.com");
	sip_resolver_destroy(r);

	/* only the transports we support */
	r = mkres(&e, SIP_TP_UDP | SIP_TP_TLS, 0, 0);
	assert_string_equal(
		resolve(r, "sip:example.com", naptr_table, log, buf, 512),
		"tls:192.0.2.2:5071 udp:192.0.2.3:5060");
	sip_resolver_destroy(r);
}

static void test_sips_tls_only(void **state)
{
	static const struct canned fb[] = {
		{"_sips._tcp.example.org",
		 SIP_DNS_SRV,
		 0,
		 1,
		 {RR_SRV(1, 0, 5061, "sbc.example.org")}},
		{"_sip._udp.example.org",
		 SIP_DNS_SRV,
		 0,
		 1,
		 {RR_SRV(1, 0, 5060, "sbc.example.org")}},
		{"sbc.example.org", SIP_DNS_A, 0, 1, {RR_A(198, 51, 100, 1)}},
		{NULL, 0, 0, 0, {{0}}},
	};
	struct env e = {0};
	struct sip_resolver *r = mkres(&e, 0, 0, 0);
	char log[512], buf[512];

	(void)state;
	assert_string_equal(
		resolve(r, "sips:example.com", naptr_table, log, buf, 512),
		"tls:192.0.2.2:5071");
	/* no NAPTR: only _sips._tcp is asked */
	assert_string_equal(resolve(r, "sips:example.org", fb, log, buf, 512),
			    "tls:198.51.100.1:5061");
	assert_string_equal(log, "NAPTR example.org,"
				 "SRV _sips._tcp.example.org,"
				 "A sbc.example.org");
	/* sips with transport=tcp means TLS; udp is an error */
	assert_string_equal(
		resolve(r, "sips:example.org;transport=tcp", fb, log, buf, 512),
		"tls:198.51.100.1:5061");
	assert_int_equal(lookup_err(r, "sips:example.org;transport=udp"),
			 -EINVAL);
	sip_resolver_destroy(r);

	/* no TLS configured: a sips URI cannot be served */
	r = mkres(&e, SIP_TP_UDP | SIP_TP_TCP, 0, 0);
	assert_int_equal(lookup_err(r, "sips:example.org"), -EPROTONOSUPPORT);
	sip_resolver_destroy(r);
}

static void test_srv_fallback_and_a_fallback(void **state)
{
	static const struct canned srv_only[] = {
		{"example.net", SIP_DNS_NAPTR, 0, 0, {{0}}}, /* no records */
		{"_sip._tcp.example.net",
		 SIP_DNS_SRV,
		 0,
		 1,
		 {RR_SRV(5, 5, 5062, "pbx.example.net")}},
		{"pbx.example.net", SIP_DNS_A, 0, 1, {RR_A(203, 0, 113, 5)}},
		{NULL, 0, 0, 0, {{0}}},
	};
	static const struct canned a_only[] = {
		{"example.net", SIP_DNS_A, 0, 1, {RR_A(203, 0, 113, 9)}},
		{NULL, 0, 0, 0, {{0}}},
	};
	struct env e = {0};
	struct sip_resolver *r = mkres(&e, 0, 0, 0);
	char log[512], buf[512];

	(void)state;
	assert_string_equal(
		resolve(r, "sip:example.net", srv_only, log, buf, 512),
		"tcp:203.0.113.5:5062");
	assert_string_equal(log, "NAPTR example.net,"
				 "SRV _sip._udp.example.net,"
				 "SRV _sip._tcp.example.net,"
				 "SRV _sips._tcp.example.net,"
				 "A pbx.example.net");
	/* neither NAPTR nor SRV: A at the default port, UDP (TLS for sips) */
	assert_string_equal(
		resolve(r, "sip:example.net", a_only, log, buf, 512),
		"udp:203.0.113.9:5060");
	assert_string_equal(
		resolve(r, "sips:example.net", a_only, log, buf, 512),
		"tls:203.0.113.9:5061");
	/* NAPTR points at SRV names without records: A, NAPTR's transport */
	{
		static const struct canned t[] = {
			{"example.net",
			 SIP_DNS_NAPTR,
			 0,
			 1,
			 {RR_NAPTR(1, 1, "SIP+D2T", "_sip._tcp.example.net")}},
			{"example.net",
			 SIP_DNS_A,
			 0,
			 1,
			 {RR_A(203, 0, 113, 9)}},
			{NULL, 0, 0, 0, {{0}}},
		};
		assert_string_equal(
			resolve(r, "sip:example.net", t, log, buf, 512),
			"tcp:203.0.113.9:5060");
	}
	sip_resolver_destroy(r);
}

static void test_srv_priority(void **state)
{
	static const struct canned t[] = {
		{"_sip._udp.example.com",
		 SIP_DNS_SRV,
		 0,
		 3,
		 {RR_SRV(20, 100, 5060, "c.example.com"),
		  RR_SRV(10, 1, 5060, "a.example.com"),
		  RR_SRV(15, 50, 5060, "b.example.com")}},
		{"a.example.com", SIP_DNS_A, 0, 1, {RR_A(10, 0, 0, 1)}},
		{"b.example.com", SIP_DNS_A, 0, 1, {RR_A(10, 0, 0, 2)}},
		{"c.example.com", SIP_DNS_A, 0, 1, {RR_A(10, 0, 0, 3)}},
		{NULL, 0, 0, 0, {{0}}},
	};
	struct env e = {0};
	struct sip_resolver *r = mkres(&e, 0, 0, 0);
	char log[512], buf[512];

	(void)state;
	assert_string_equal(
		resolve(r, "sip:example.com;transport=udp", t, log, buf, 512),
		"udp:10.0.0.1:5060 udp:10.0.0.2:5060 "
		"udp:10.0.0.3:5060");
	assert_string_equal(log, "SRV _sip._udp.example.com,A a.example.com,"
				 "A b.example.com,A c.example.com");
	sip_resolver_destroy(r);
}

static void test_srv_weights(void **state)
{
	static const struct canned t[] = {
		{"_sip._udp.example.com",
		 SIP_DNS_SRV,
		 0,
		 5,
		 {RR_SRV(10, 10, 5060, "a.example.com"),
		  RR_SRV(10, 30, 5060, "b.example.com"),
		  RR_SRV(10, 60, 5060, "c.example.com"),
		  RR_SRV(10, 0, 5060, "z.example.com"),
		  RR_SRV(20, 1000, 5060, "backup.example.com")}},
		{"a.example.com", SIP_DNS_A, 0, 1, {RR_A(10, 0, 0, 1)}},
		{"b.example.com", SIP_DNS_A, 0, 1, {RR_A(10, 0, 0, 2)}},
		{"c.example.com", SIP_DNS_A, 0, 1, {RR_A(10, 0, 0, 3)}},
		{"z.example.com", SIP_DNS_A, 0, 1, {RR_A(10, 0, 0, 26)}},
		{"backup.example.com", SIP_DNS_A, 0, 1, {RR_A(10, 0, 0, 99)}},
		{NULL, 0, 0, 0, {{0}}},
	};
	struct env e = {.seed = 42};
	struct sip_resolver *r = mkres(&e, 0, 0, 0);
	unsigned first[4] = {0}, zero_last = 0;
	const unsigned runs = 10000;
	char first_run[512] = "";

	(void)state;
	for (unsigned i = 0; i < runs; i++) {
		struct sip_lookup *lk =
			mklookup(r, "sip:example.com;transport=udp");
		struct sip_target tg;

		drive(lk, t, NULL, 0);
		assert_int_equal(sip_lookup_count(lk), 5);
		assert_int_equal(sip_lookup_next(lk, &tg), 1);
		if (tg.addr[3] == 26)
			first[3]++;
		else
			first[tg.addr[3] - 1]++;
		/* priority 20 always last */
		assert_int_equal(sip_lookup_target(lk, 4, &tg), 0);
		assert_int_equal(tg.addr[3], 99);
		assert_int_equal(sip_lookup_target(lk, 3, &tg), 0);
		zero_last += tg.addr[3] == 26;
		if (i == 0)
			targets(lk, first_run, sizeof(first_run));
		sip_lookup_destroy(lk);
	}
	/* P(first) = weight / (sum + 1): 10/101, 30/101, 60/101, 1/101 */
	assert_in_range(first[0], 890, 1090);
	assert_in_range(first[1], 2770, 3170);
	assert_in_range(first[2], 5740, 6140);
	assert_in_range(first[3], 50, 160);
	assert_true(zero_last > runs * 8 / 10);
	sip_resolver_destroy(r);

	/* same seed, same order */
	e.seed = 42;
	r = mkres(&e, 0, 0, 0);
	{
		char log[512], buf[512];

		assert_string_equal(resolve(r, "sip:example.com;transport=udp",
					    t, log, buf, 512),
				    first_run);
	}
	sip_resolver_destroy(r);
}

static void test_transport_param(void **state)
{
	static const struct canned t[] = {
		{"_sip._tcp.example.com",
		 SIP_DNS_SRV,
		 0,
		 1,
		 {RR_SRV(1, 1, 5070, "t.example.com")}},
		{"t.example.com", SIP_DNS_A, 0, 1, {RR_A(192, 0, 2, 7)}},
		{"example.com", SIP_DNS_A, 0, 1, {RR_A(192, 0, 2, 8)}},
		{NULL, 0, 0, 0, {{0}}},
	};
	struct env e = {0};
	struct sip_resolver *r = mkres(&e, 0, 0, 0);
	char log[512], buf[512];

	(void)state;
	assert_string_equal(
		resolve(r, "sip:example.com;transport=tcp", t, log, buf, 512),
		"tcp:192.0.2.7:5070");
	assert_string_equal(log, "SRV _sip._tcp.example.com,A t.example.com");
	/* transport without SRV: A at the transport's default port */
	assert_string_equal(
		resolve(r, "sip:example.com;transport=tls", t, log, buf, 512),
		"tls:192.0.2.8:5061");
	assert_string_equal(
		resolve(r, "sip:example.com;transport=ws", t, log, buf, 512),
		"ws:192.0.2.8:80");
	assert_string_equal(log, "A example.com");
	assert_int_equal(lookup_err(r, "sip:example.com;transport=sctp"),
			 -EPROTONOSUPPORT);
	assert_int_equal(lookup_err(r, "tel:+15551234"), -EINVAL);
	sip_resolver_destroy(r);

	r = mkres(&e, SIP_TP_UDP, 0, 0);
	assert_int_equal(lookup_err(r, "sip:example.com;transport=tcp"),
			 -EPROTONOSUPPORT);
	sip_resolver_destroy(r);
}

static void test_ipv6(void **state)
{
	static const struct canned t[] = {
		{"h.example.com", SIP_DNS_A, 0, 1, {RR_A(192, 0, 2, 1)}},
		{"h.example.com",
		 SIP_DNS_AAAA,
		 0,
		 1,
		 {{.type = SIP_DNS_AAAA,
		   .ttl = 60,
		   .aaaa = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0,
			    0, 0, 1}}}},
		{NULL, 0, 0, 0, {{0}}},
	};
	struct env e = {0};
	struct sip_resolver *r =
		mkres(&e, 0, SIP_RESOLV_IPV4 | SIP_RESOLV_IPV6, 0);
	struct sip_resolv_config cfg = {.families = SIP_RESOLV_IPV4 |
						    SIP_RESOLV_IPV6,
					.prefer_ipv6 = true};
	char log[512], buf[512];

	(void)state;
	assert_string_equal(
		resolve(r, "sip:h.example.com:5060", t, log, buf, 512),
		"udp:192.0.2.1:5060 udp:[2001:db8::1]:5060");
	assert_string_equal(log, "A h.example.com,AAAA h.example.com");
	sip_resolver_destroy(r);
	assert_int_equal(sip_resolver_create(&cfg, &r), 0);
	assert_string_equal(
		resolve(r, "sip:h.example.com:5060", t, log, buf, 512),
		"udp:[2001:db8::1]:5060 udp:192.0.2.1:5060");
	sip_resolver_destroy(r);
}

static void test_static_routes(void **state)
{
	static const struct canned t[] = {
		{"backup.example.net", SIP_DNS_A, 0, 1, {RR_A(10, 1, 1, 1)}},
		{"example.com", SIP_DNS_A, 0, 1, {RR_A(192, 0, 2, 99)}},
		{NULL, 0, 0, 0, {{0}}},
	};
	struct env e = {0};
	struct sip_resolver *r = mkres(&e, 0, 0, 0);
	char log[512], buf[512];

	(void)state;
	assert_int_equal(sip_resolver_route_set(
				 r, "Example.com.",
				 "10.0.0.1:5070;transport=tcp, "
				 "backup.example.net, [2001:db8::5]:5090"),
			 0);
	assert_string_equal(
		resolve(r, "sip:alice@EXAMPLE.com:5099", t, log, buf, 512),
		"tcp:10.0.0.1:5070 udp:10.1.1.1:5060 "
		"udp:[2001:db8::5]:5090");
	assert_string_equal(log, "A backup.example.net");
	/* a sips URI keeps only what TLS can carry */
	assert_int_equal(sip_resolver_route_set(r, "example.com",
						"10.0.0.1:5070;transport=tcp,"
						"10.0.0.2;transport=tls,"
						"10.0.0.3"),
			 0);
	assert_string_equal(resolve(r, "sips:example.com", t, log, buf, 512),
			    "tls:10.0.0.2:5061 tls:10.0.0.3:5061");
	assert_string_equal(log, "");
	/* other domains and sub-domains still use DNS */
	assert_string_equal(
		resolve(r, "sip:x.example.com:5060", t, log, buf, 512), "");
	assert_string_equal(log, "A x.example.com");
	assert_int_equal(sip_resolver_route_del(r, "example.com"), 0);
	assert_int_equal(sip_resolver_route_del(r, "example.com"), -ENOENT);
	assert_string_equal(
		resolve(r, "sip:example.com:5060", t, log, buf, 512),
		"udp:192.0.2.99:5060");
	assert_int_equal(sip_resolver_route_set(r, "a.com", ""), -EINVAL);
	assert_int_equal(sip_resolver_route_set(r, "a.com", "h;transport=x"),
			 -EINVAL);
	assert_int_equal(sip_resolver_route_set(r, "a.com", "u@h"), -EINVAL);
	assert_int_equal(sip_resolver_route_set(r, "a.com", "h:99999"),
			 -EINVAL);
	assert_int_equal(sip_resolver_route_set(r, "", "h"), -EINVAL);
	sip_resolver_destroy(r);
}

static void test_cache_ttl(void **state)
{
	static const struct canned t[] = {
		{"example.com",
		 SIP_DNS_NAPTR,
		 0,
		 1,
		 {RR_NAPTR(1, 1, "SIP+D2U", "_sip._udp.example.com")}},
		{"_sip._udp.example.com",
		 SIP_DNS_SRV,
		 0,
		 1,
		 {{.type = SIP_DNS_SRV,
		   .ttl = 120,
		   .srv = {1, 1, 5060, "a.example.com"}}}},
		{"a.example.com",
		 SIP_DNS_A,
		 0,
		 2,
		 {{.type = SIP_DNS_A, .ttl = 100, .a = {10, 0, 0, 1}},
		  {.type = SIP_DNS_A, .ttl = 60, .a = {10, 0, 0, 2}}}},
		{NULL, 0, 0, 0, {{0}}},
	};
	struct env e = {.now = 1000000};
	struct sip_resolver *r = mkres(&e, 0, 0, 64);
	char log[512], buf[512];
	const char *all = "udp:10.0.0.1:5060 udp:10.0.0.2:5060";

	(void)state;
	assert_string_equal(resolve(r, "sip:example.com", t, log, buf, 512),
			    all);
	assert_string_equal(log, "NAPTR example.com,SRV _sip._udp.example.com,"
				 "A a.example.com");
	assert_int_equal(sip_resolver_cache_size(r), 3);
	/* everything cached */
	e.now += 59999;
	assert_string_equal(resolve(r, "sip:EXAMPLE.com", t, log, buf, 512),
			    all);
	assert_string_equal(log, "");
	/* the A set expires with its smallest TTL (60 s) */
	e.now += 1;
	assert_string_equal(resolve(r, "sip:example.com", t, log, buf, 512),
			    all);
	assert_string_equal(log, "A a.example.com");
	/* SRV at 120 s (with the A set fetched at 60 s), NAPTR at 300 s */
	e.now += 60000;
	resolve(r, "sip:example.com", t, log, buf, 512);
	assert_string_equal(log, "SRV _sip._udp.example.com,A a.example.com");
	e.now += 179999;
	resolve(r, "sip:example.com", t, log, buf, 512);
	assert_string_equal(log, "SRV _sip._udp.example.com,A a.example.com");
	e.now += 1;
	resolve(r, "sip:example.com", t, log, buf, 512);
	assert_string_equal(log, "NAPTR example.com");
	sip_resolver_cache_flush(r);
	assert_int_equal(sip_resolver_cache_size(r), 0);
	resolve(r, "sip:example.com", t, log, buf, 512);
	assert_string_equal(log, "NAPTR example.com,SRV _sip._udp.example.com,"
				 "A a.example.com");
	sip_resolver_destroy(r);
}

static void test_cache_negative(void **state)
{
	static const struct canned t[] = {
		{"example.org", SIP_DNS_NAPTR, 0, 0, {{0}}}, /* NODATA */
		{"_sip._udp.example.org", SIP_DNS_SRV, -ETIMEDOUT, 0, {{0}}},
		{"example.org", SIP_DNS_A, 0, 1, {RR_A(192, 0, 2, 50)}},
		{NULL, 0, 0, 0, {{0}}},
	};
	struct env e = {.now = 5};
	struct sip_resolver *r = mkres(&e, 0, 0, 64);
	char log[512], buf[512];

	(void)state;
	assert_string_equal(resolve(r, "sip:example.org", t, log, buf, 512),
			    "udp:192.0.2.50:5060");
	assert_string_equal(log, "NAPTR example.org,SRV _sip._udp.example.org,"
				 "SRV _sip._tcp.example.org,"
				 "SRV _sips._tcp.example.org,A example.org");
	/* NODATA and NXDOMAIN are kept for neg_ttl (30 s); the timeout is
	 * not kept */
	e.now += 29999;
	resolve(r, "sip:example.org", t, log, buf, 512);
	assert_string_equal(log, "SRV _sip._udp.example.org");
	e.now += 1;
	resolve(r, "sip:example.org", t, log, buf, 512);
	assert_string_equal(log, "NAPTR example.org,SRV _sip._udp.example.org,"
				 "SRV _sip._tcp.example.org,"
				 "SRV _sips._tcp.example.org");
	sip_resolver_destroy(r);
}

static void test_cache_bounded(void **state)
{
	struct env e = {.now = 1};
	struct sip_resolver *r = mkres(&e, 0, 0, 4);
	char log[512], buf[512], uri[64];

	(void)state;
	for (int i = 0; i < 10; i++) {
		snprintf(uri, sizeof(uri), "sip:h%d.example.com:5060", i);
		resolve(r, uri, NULL, log, buf, 512);
		assert_true(sip_resolver_cache_size(r) <= 4);
	}
	assert_int_equal(sip_resolver_cache_size(r), 4);
	/* least recently used went first: h6..h9 remain */
	resolve(r, "sip:h9.example.com:5060", NULL, log, buf, 512);
	assert_string_equal(log, "");
	resolve(r, "sip:h6.example.com:5060", NULL, log, buf, 512);
	assert_string_equal(log, "");
	resolve(r, "sip:h0.example.com:5060", NULL, log, buf, 512);
	assert_string_equal(log, "A h0.example.com");
	/* h7 was the least recently used */
	resolve(r, "sip:h7.example.com:5060", NULL, log, buf, 512);
	assert_string_equal(log, "A h7.example.com");
	sip_resolver_destroy(r);
}

static void test_failover_iteration(void **state)
{
	struct env e = {0};
	struct sip_resolver *r = mkres(&e, 0, 0, 0);
	struct sip_lookup *lk = mklookup(r, "sip:example.com");
	struct sip_target tg;
	char one[128];

	(void)state;
	assert_int_equal(sip_lookup_status(lk), -EINPROGRESS);
	assert_int_equal(sip_lookup_next(lk, &tg), 0);
	drive(lk, naptr_table, NULL, 0);
	assert_int_equal(sip_lookup_status(lk), 0);
	assert_int_equal(sip_lookup_count(lk), 4);
	static const char *const want[] = {
		"tcp:192.0.2.1:5070", "tls:192.0.2.2:5071", "ws:192.0.2.4:8080",
		"udp:192.0.2.3:5060"};
	for (int i = 0; i < 4; i++) {
		assert_int_equal(sip_lookup_next(lk, &tg), 1);
		sip_target_format(&tg, one, sizeof(one));
		assert_string_equal(one, want[i]);
	}
	assert_string_equal(tg.host, "udp.example.com");
	assert_int_equal(sip_lookup_next(lk, &tg), 0);
	assert_int_equal(sip_lookup_next(lk, &tg), 0);
	sip_lookup_destroy(lk);
	sip_resolver_destroy(r);
}

static void test_errors_and_edges(void **state)
{
	static const struct canned dot[] = {
		{"_sip._udp.example.com",
		 SIP_DNS_SRV,
		 0,
		 1,
		 {RR_SRV(0, 0, 0, ".")}},
		{"example.com", SIP_DNS_A, 0, 1, {RR_A(192, 0, 2, 1)}},
		{NULL, 0, 0, 0, {{0}}},
	};
	static const struct canned dup[] = {
		{"_sip._udp.example.com",
		 SIP_DNS_SRV,
		 0,
		 2,
		 {RR_SRV(1, 0, 5060, "same.example.com"),
		  RR_SRV(2, 0, 5070, "same.example.com")}},
		{"same.example.com", SIP_DNS_A, 0, 1, {RR_A(192, 0, 2, 1)}},
		{NULL, 0, 0, 0, {{0}}},
	};
	static const struct canned slow[] = {
		{"example.com", SIP_DNS_NAPTR, -ETIMEDOUT, 0, {{0}}},
		{"_sip._udp.example.com", SIP_DNS_SRV, -ETIMEDOUT, 0, {{0}}},
		{"_sip._tcp.example.com", SIP_DNS_SRV, -ETIMEDOUT, 0, {{0}}},
		{"_sips._tcp.example.com", SIP_DNS_SRV, -ETIMEDOUT, 0, {{0}}},
		{"example.com", SIP_DNS_A, -ETIMEDOUT, 0, {{0}}},
		{NULL, 0, 0, 0, {{0}}},
	};
	struct env e = {0};
	struct sip_resolver *r = mkres(&e, 0, 0, 0);
	struct sip_lookup *lk;
	struct sip_dns_query q;
	char log[512], buf[512];

	(void)state;
	/* "." : the service is not offered; no A fallback */
	assert_string_equal(
		resolve(r, "sip:example.com;transport=udp", dot, log, buf, 512),
		"");
	assert_string_equal(log, "SRV _sip._udp.example.com");
	/* one A query for a name named twice */
	assert_string_equal(
		resolve(r, "sip:example.com;transport=udp", dup, log, buf, 512),
		"udp:192.0.2.1:5060 udp:192.0.2.1:5070");
	assert_string_equal(log,
			    "SRV _sip._udp.example.com,A same.example.com");

	lk = mklookup(r, "sip:example.com");
	drive(lk, slow, NULL, 0);
	assert_int_equal(sip_lookup_status(lk), -ETIMEDOUT);
	sip_lookup_destroy(lk);
	lk = mklookup(r, "sip:nowhere.example");
	drive(lk, NULL, NULL, 0);
	assert_int_equal(sip_lookup_status(lk), -ENOENT);
	assert_int_equal(sip_lookup_count(lk), 0);
	sip_lookup_destroy(lk);

	/* feeding: unknown id, not handed out, twice */
	lk = mklookup(r, "sip:example.com");
	assert_int_equal(sip_lookup_feed(lk, 0, 0, NULL, 0), -EINVAL);
	assert_int_equal(sip_lookup_next_query(lk, &q), 1);
	assert_int_equal(sip_lookup_next_query(lk, &q), 0);
	assert_int_equal(sip_lookup_feed(lk, 7, 0, NULL, 0), -EINVAL);
	/* records of another type are ignored */
	{
		struct sip_dns_rr a = RR_A(1, 2, 3, 4);

		assert_int_equal(sip_lookup_feed(lk, q.id, 0, &a, 1), 0);
	}
	assert_int_equal(sip_lookup_feed(lk, q.id, 0, NULL, 0), -EALREADY);
	sip_lookup_destroy(lk);
	sip_resolver_destroy(r);
}

/* ------------------------------------------------------------------------ */
/* Adapter: c-ares on libuv against a DNS responder on 127.0.0.1            */
/* ------------------------------------------------------------------------ */

/** One answer of the responder; rdata is hand-built wire format. */
struct zone_rr {
	const char *name;
	int type;
	bool drop; /* never answer this question */
	uint16_t a, b, c;
	const char *s1, *s2, *s3, *s4;
	uint8_t ip[16];
};

struct responder {
	uv_udp_t udp;
	const struct zone_rr *zone;
	bool silent; /* answer nothing at all */
	int questions;
	int port;
	char mem[4096];
};

static size_t put16(uint8_t *p, size_t o, unsigned v)
{
	p[o] = (uint8_t)(v >> 8);
	p[o + 1] = (uint8_t)v;
	return o + 2;
}

static size_t put_name(uint8_t *p, size_t o, const char *name)
{
	while (*name) {
		const char *dot = strchr(name, '.');
		size_t l = dot ? (size_t)(dot - name) : strlen(name);

		p[o++] = (uint8_t)l;
		memcpy(p + o, name, l);
		o += l;
		name += l + (dot ? 1 : 0);
	}
	p[o++] = 0;
	return o;
}

static size_t put_cstr(uint8_t *p, size_t o, const char *s)
{
	size_t l = strlen(s);

	p[o++] = (uint8_t)l;
	for (size_t i = 0; i < l; i++)
		p[o++] = (uint8_t)s[i];
	return o;
}

/** Question name of a query as dotted text. @return offset after QTYPE/QCLASS
 * or 0 when malformed. */
static size_t read_question(const uint8_t *p, size_t len, char *name, int *type)
{
	size_t o = 12, n = 0;

	while (o < len && p[o]) {
		size_t l = p[o++];

		if (l > 63 || o + l > len || n + l + 2 > 256)
			return 0;
		if (n)
			name[n++] = '.';
		memcpy(name + n, p + o, l);
		n += l;
		o += l;
	}
	name[n] = '\0';
	if (o + 5 > len)
		return 0;
	*type = (p[o + 1] << 8) | p[o + 2];
	return o + 5;
}

static size_t put_rr(uint8_t *p, size_t o, const struct zone_rr *z)
{
	size_t rdlen_at, start;

	o = put_name(p, o, z->name);
	o = put16(p, o, (unsigned)z->type);
	o = put16(p, o, 1);
	o = put16(p, o, 0);
	o = put16(p, o, 300);
	rdlen_at = o;
	o += 2;
	start = o;
	switch (z->type) {
	case SIP_DNS_A:
		memcpy(p + o, z->ip, 4);
		o += 4;
		break;
	case SIP_DNS_AAAA:
		memcpy(p + o, z->ip, 16);
		o += 16;
		break;
	case SIP_DNS_SRV:
		o = put16(p, o, z->a);
		o = put16(p, o, z->b);
		o = put16(p, o, z->c);
		o = put_name(p, o, z->s1);
		break;
	default: /* NAPTR */
		o = put16(p, o, z->a);
		o = put16(p, o, z->b);
		o = put_cstr(p, o, z->s1);
		o = put_cstr(p, o, z->s2);
		o = put_cstr(p, o, z->s3);
		o = put_name(p, o, z->s4);
		break;
	}
	put16(p, rdlen_at, (unsigned)(o - start));
	return o;
}

static void resp_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct responder *rs = h->data;

	(void)hint;
	*buf = uv_buf_init(rs->mem, sizeof(rs->mem));
}

static void resp_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
		      const struct sockaddr *from, unsigned flags)
{
	struct responder *rs = h->data;
	const uint8_t *q = (const uint8_t *)buf->base;
	uint8_t out[2048];
	char name[256];
	int type, an = 0;
	bool known = false;
	size_t qend, o;
	uv_buf_t b;

	(void)flags;
	if (nread < 12 || !from)
		return;
	rs->questions++;
	if (rs->silent)
		return;
	qend = read_question(q, (size_t)nread, name, &type);
	if (!qend)
		return;
	for (const struct zone_rr *z = rs->zone; z->name; z++) {
		if (strcasecmp(z->name, name) != 0)
			continue;
		known = true;
		if (z->type == type && z->drop)
			return;
	}
	memcpy(out, q, qend);
	out[2] = 0x84 | (q[2] & 0x01); /* QR, AA, RD as asked */
	out[3] = known ? 0x00 : 0x03;  /* NOERROR / NXDOMAIN */
	o = qend;
	for (const struct zone_rr *z = rs->zone; z->name; z++) {
		if (z->type != type || strcasecmp(z->name, name) != 0)
			continue;
		o = put_rr(out, o, z);
		an++;
	}
	put16(out, 6, (unsigned)an);
	put16(out, 8, 0);
	put16(out, 10, 0);
	b = uv_buf_init((char *)out, (unsigned)o);
	assert_true(uv_udp_try_send(h, &b, 1, from) == (int)o);
}

static void responder_start(uv_loop_t *loop, struct responder *rs,
			    const struct zone_rr *zone)
{
	struct sockaddr_in sa;
	struct sockaddr_storage bound;
	int len = sizeof(bound);

	memset(rs, 0, sizeof(*rs));
	rs->zone = zone;
	assert_int_equal(uv_udp_init(loop, &rs->udp), 0);
	rs->udp.data = rs;
	assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &sa), 0);
	assert_int_equal(uv_udp_bind(&rs->udp, (const struct sockaddr *)&sa, 0),
			 0);
	assert_int_equal(
		uv_udp_getsockname(&rs->udp, (struct sockaddr *)&bound, &len),
		0);
	rs->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
	assert_int_equal(uv_udp_recv_start(&rs->udp, resp_alloc, resp_recv), 0);
}

#define Z_A(n, a0, a1, a2, a3)                                                 \
	{                                                                      \
		.name = (n), .type = SIP_DNS_A,                                \
		.ip = {(a0),                                                   \
		       (a1),                                                   \
		       (a2),                                                   \
		       (a3) }                                                  \
	}
#define Z_SRV(n, pri, w, port, t)                                              \
	{                                                                      \
		.name = (n), .type = SIP_DNS_SRV, .a = (pri), .b = (w),        \
		.c = (port), .s1 = (t)                                         \
	}
#define Z_NAPTR(n, o, p, svc, rep)                                             \
	{                                                                      \
		.name = (n), .type = SIP_DNS_NAPTR, .a = (o), .b = (p),        \
		.s1 = "S", .s2 = (svc), .s3 = "", .s4 = (rep)                  \
	}

static const struct zone_rr test_zone[] = {
	Z_NAPTR("example.test", 10, 20, "SIP+D2U", "_sip._udp.example.test"),
	Z_NAPTR("example.test", 10, 10, "SIP+D2T", "_sip._tcp.example.test"),
	Z_NAPTR("example.test", 5, 10, "SIP+D2X", "_sip._x.example.test"),
	Z_SRV("_sip._tcp.example.test", 20, 0, 5071, "b.example.test"),
	Z_SRV("_sip._tcp.example.test", 10, 0, 5070, "a.example.test"),
	Z_SRV("_sip._udp.example.test", 10, 0, 5060, "c.example.test"),
	Z_A("a.example.test", 127, 0, 0, 2),
	Z_A("b.example.test", 127, 0, 0, 3),
	Z_A("c.example.test", 127, 0, 0, 4),
	{.name = "c.example.test",
	 .type = SIP_DNS_AAAA,
	 .ip = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4}},
	/* dead.example.test: its SRV target's A question is never answered */
	Z_SRV("_sip._udp.dead.example.test", 10, 0, 5060,
	      "gone.dead.example.test"),
	Z_SRV("_sip._udp.dead.example.test", 20, 0, 5062,
	      "alive.dead.example.test"),
	{.name = "gone.dead.example.test", .type = SIP_DNS_A, .drop = true},
	Z_A("alive.dead.example.test", 127, 0, 0, 9),
	{.name = NULL},
};

struct outcome {
	int calls;
	int status;
	uint64_t at;
	char targets[512];
	uv_loop_t *loop;
};

static void on_done(int status, struct sip_lookup *lk, void *arg)
{
	struct outcome *o = arg;

	o->calls++;
	o->status = status;
	o->at = uv_now(o->loop);
	o->targets[0] = '\0';
	if (lk) {
		assert_int_equal(status, 0);
		targets(lk, o->targets, sizeof(o->targets));
		sip_lookup_destroy(lk);
	} else {
		assert_int_not_equal(status, 0);
	}
}

static uint64_t loop_clock(void *arg)
{
	return uv_now(arg);
}

struct harness {
	uv_loop_t loop;
	struct responder rs;
	struct sip_resolver *r;
	struct sip_resolv_uv *ad;
};

static void close_handle(uv_handle_t *h)
{
	(void)h;
}

static void harness_up(struct harness *h, const struct zone_rr *zone,
		       unsigned families, unsigned query_timeout_ms,
		       unsigned lookup_timeout_ms)
{
	struct sip_resolv_config cfg = {
		.families = families,
		.seed = 7,
		.clock = loop_clock,
		.cache_max = 128,
		.neg_ttl = 30,
	};
	struct sip_resolv_uv_config ucfg = {
		.query_timeout_ms = query_timeout_ms,
		.tries = 1,
		.lookup_timeout_ms = lookup_timeout_ms,
	};
	char servers[64];

	assert_int_equal(uv_loop_init(&h->loop), 0);
	cfg.clock_arg = &h->loop;
	responder_start(&h->loop, &h->rs, zone);
	snprintf(servers, sizeof(servers), "127.0.0.1:%d", h->rs.port);
	ucfg.servers = servers;
	assert_int_equal(sip_resolver_create(&cfg, &h->r), 0);
	assert_int_equal(sip_resolv_uv_create(&h->loop, h->r, &ucfg, &h->ad),
			 0);
}

static void harness_down(struct harness *h)
{
	sip_resolv_uv_destroy(h->ad);
	uv_close((uv_handle_t *)&h->rs.udp, close_handle);
	assert_int_equal(uv_run(&h->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(uv_loop_close(&h->loop), 0); /* nothing left open */
	sip_resolver_destroy(h->r);
}

static void start(struct harness *h, const char *uri, struct outcome *o)
{
	struct sip_uri u;

	memset(o, 0, sizeof(*o));
	o->loop = &h->loop;
	assert_int_equal(sip_uri_parse(sip_str_c(uri), &u), 0);
	assert_int_equal(sip_resolv_uv_lookup(h->ad, &u, on_done, o, NULL), 0);
	assert_int_equal(o->calls, 0); /* never from inside the call */
}

static void test_uv_naptr_srv_order(void **state)
{
	struct harness h;
	struct outcome o;
	int asked;

	(void)state;
	harness_up(&h, test_zone, SIP_RESOLV_IPV4 | SIP_RESOLV_IPV6, 2000,
		   5000);
	start(&h, "sip:alice@example.test", &o);
	while (!o.calls)
		uv_run(&h.loop, UV_RUN_ONCE);
	assert_int_equal(o.calls, 1);
	assert_int_equal(o.status, 0);
	/* NAPTR by preference (SIP+D2X ignored), SRV by priority */
	assert_string_equal(o.targets,
			    "tcp:127.0.0.2:5070 tcp:127.0.0.3:5071 "
			    "udp:127.0.0.4:5060 udp:[2001:db8::4]:5060");
	/* NAPTR, 2 SRV, 3 A, 3 AAAA */
	assert_int_equal(h.rs.questions, 9);

	/* again: from the cache, no question asked */
	asked = h.rs.questions;
	start(&h, "sip:example.test", &o);
	uv_run(&h.loop, UV_RUN_ONCE);
	assert_int_equal(o.calls, 1);
	assert_string_equal(o.targets,
			    "tcp:127.0.0.2:5070 tcp:127.0.0.3:5071 "
			    "udp:127.0.0.4:5060 udp:[2001:db8::4]:5060");
	assert_int_equal(h.rs.questions, asked);

	/* no such domain */
	start(&h, "sip:nope.test", &o);
	while (!o.calls)
		uv_run(&h.loop, UV_RUN_ONCE);
	assert_int_equal(o.status, -ENOENT);

	/* a numeric host completes without DNS, still from the loop */
	start(&h, "sips:127.0.0.1", &o);
	uv_run(&h.loop, UV_RUN_NOWAIT);
	assert_int_equal(o.calls, 1);
	assert_string_equal(o.targets, "tls:127.0.0.1:5061");
	harness_down(&h);
}

static void test_uv_failover_dead_target(void **state)
{
	struct harness h;
	struct outcome o;
	uint64_t t0;

	(void)state;
	/* c-ares gives up on the unanswered question after 200 ms */
	harness_up(&h, test_zone, SIP_RESOLV_IPV4, 200, 5000);
	uv_update_time(&h.loop);
	t0 = uv_now(&h.loop);
	start(&h, "sip:dead.example.test;transport=udp", &o);
	while (!o.calls)
		uv_run(&h.loop, UV_RUN_ONCE);
	assert_int_equal(o.status, 0);
	assert_string_equal(o.targets, "udp:127.0.0.9:5062");
	assert_true(o.at - t0 >= 190 && o.at - t0 < 2000);
	harness_down(&h);
}

struct ticker {
	uv_timer_t t;
	uint64_t last, max_gap;
	int ticks;
	struct outcome *o;
};

static void tick(uv_timer_t *t)
{
	struct ticker *k = t->data;
	uint64_t now = uv_now(t->loop);

	if (k->last && now - k->last > k->max_gap)
		k->max_gap = now - k->last;
	k->last = now;
	k->ticks++;
	if (k->o->calls)
		uv_timer_stop(t);
}

static void test_uv_timeout_loop_alive(void **state)
{
	struct harness h;
	struct outcome o;
	struct ticker k = {0};
	uint64_t t0;

	(void)state;
	/* c-ares would wait 10 s; the lookup is bounded to 300 ms */
	harness_up(&h, test_zone, SIP_RESOLV_IPV4, 10000, 300);
	h.rs.silent = true;
	uv_update_time(&h.loop);
	t0 = uv_now(&h.loop);
	start(&h, "sip:example.test", &o);
	k.o = &o;
	k.t.data = &k;
	uv_timer_init(&h.loop, &k.t);
	uv_timer_start(&k.t, tick, 10, 10);
	while (!o.calls)
		uv_run(&h.loop, UV_RUN_ONCE);
	assert_int_equal(o.status, -ETIMEDOUT);
	assert_true(o.at - t0 >= 300);
	assert_true(o.at - t0 < 1000);
	assert_true(h.rs.questions >= 1);
	/* the 10 ms timer kept its pace while the lookup waited (a blocked
	 * loop would show one gap of the whole bound); slack for loaded hosts
	 */
	assert_true(k.ticks >= 15);
	assert_true(k.max_gap < 150);
	uv_close((uv_handle_t *)&k.t, close_handle);
	harness_down(&h);
}

static void test_uv_cancel_and_destroy(void **state)
{
	struct harness h;
	struct outcome a, b;
	struct sip_resolv_req *req;
	struct sip_uri u;

	(void)state;
	harness_up(&h, test_zone, SIP_RESOLV_IPV4, 10000, 5000);
	h.rs.silent = true;
	memset(&a, 0, sizeof(a));
	a.loop = &h.loop;
	assert_int_equal(sip_uri_parse(sip_str_c("sip:example.test"), &u), 0);
	assert_int_equal(sip_resolv_uv_lookup(h.ad, &u, on_done, &a, &req), 0);
	sip_resolv_uv_cancel(req);
	start(&h, "sip:example.test", &b);
	uv_run(&h.loop, UV_RUN_NOWAIT);
	uv_run(&h.loop, UV_RUN_NOWAIT);
	/* destroying the adapter completes what is in flight */
	sip_resolv_uv_destroy(h.ad);
	assert_int_equal(b.calls, 1);
	assert_int_equal(b.status, -ECANCELED);
	assert_int_equal(a.calls, 0);
	h.ad = NULL;
	harness_down(&h);
	assert_int_equal(a.calls, 0);
}

static void test_uv_config(void **state)
{
	uv_loop_t loop;
	struct sip_resolver *r;
	struct sip_resolv_config cfg = {0};
	struct sip_resolv_uv_config ucfg = {0};
	struct sip_resolv_uv *ad;

	(void)state;
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(sip_resolver_create(&cfg, &r), 0);
	assert_int_equal(sip_resolv_uv_create(&loop, r, &ucfg, &ad), -EINVAL);
	ucfg.servers = "not an address";
	assert_int_equal(sip_resolv_uv_create(&loop, r, &ucfg, &ad), -EINVAL);
	assert_null(ad);
	assert_int_equal(uv_loop_close(&loop), 0);
	sip_resolver_destroy(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_numeric_host),
		cmocka_unit_test(test_explicit_port),
		cmocka_unit_test(test_naptr_order_preference),
		cmocka_unit_test(test_sips_tls_only),
		cmocka_unit_test(test_srv_fallback_and_a_fallback),
		cmocka_unit_test(test_srv_priority),
		cmocka_unit_test(test_srv_weights),
		cmocka_unit_test(test_transport_param),
		cmocka_unit_test(test_ipv6),
		cmocka_unit_test(test_static_routes),
		cmocka_unit_test(test_cache_ttl),
		cmocka_unit_test(test_cache_negative),
		cmocka_unit_test(test_cache_bounded),
		cmocka_unit_test(test_failover_iteration),
		cmocka_unit_test(test_errors_and_edges),
		cmocka_unit_test(test_uv_naptr_srv_order),
		cmocka_unit_test(test_uv_failover_dead_target),
		cmocka_unit_test(test_uv_timeout_loop_alive),
		cmocka_unit_test(test_uv_cancel_and_destroy),
		cmocka_unit_test(test_uv_config),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
