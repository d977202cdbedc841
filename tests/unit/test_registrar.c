/**
 * @file test_registrar.c  REGISTER processing: domains, digest
 * authentication and the limiter, Contact and expiry rules, ordering,
 * Path, RFC 5626 instances and flows, the 200's binding list.
 *
 * Each test builds a REGISTER, runs registrar_handle() on an in-memory
 * location store and a temporary user database, and parses the response
 * back with sip_msg_parse().
 */
#include "registrar/registrar.h"
#include "resolv/resolv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define DOMAIN "example.com"
#define T0 1700000000

struct fx {
	char path[256];
	struct sip_userdb *db;
	struct sip_digest *digest;
	struct sip_authlimit *limit;
	struct loc_store *store;
	struct registrar *reg;
	uint64_t clock;
	struct registrar_ctx ctx;
	struct sockaddr_in src;
	unsigned branch;
	char out[16384];
	char req[8192];
	struct sip_msg msg;  /* the request */
	struct sip_msg resp; /* the response, parsed back */
	struct registrar_result res;
};

static uint64_t fake_clock(void *arg)
{
	return ((struct fx *)arg)->clock;
}

static void remove_db(const char *path)
{
	char p[300];

	unlink(path);
	snprintf(p, sizeof(p), "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", path);
	unlink(p);
}

static int setup_cfg(void **state, const struct registrar_config *base)
{
	static const char *const extra[] = {"other.example", NULL};
	struct fx *f = calloc(1, sizeof(*f));
	struct sip_digest_config dc;
	struct sip_authlimit_config lc = {0};
	struct loc_config loc = {0};
	struct registrar_config rc = *base;
	uint8_t secret[SIP_USERDB_SECRET_LEN];
	int fd;

	assert_non_null(f);
	snprintf(f->path, sizeof(f->path), "/tmp/test_registrar_%ld_XXXXXX",
		 (long)getpid());
	fd = mkstemp(f->path);
	assert_true(fd >= 0);
	close(fd);
	unlink(f->path);
	assert_int_equal(sip_userdb_open(f->path, &f->db), 0);
	assert_int_equal(sip_userdb_domain_add(f->db, DOMAIN), 0);
	assert_int_equal(sip_userdb_user_add(f->db, "alice", DOMAIN, "secret1"),
			 0);
	assert_int_equal(sip_userdb_user_add(f->db, "bob", DOMAIN, "secret2"),
			 0);
	sip_userdb_secret(f->db, secret);

	f->clock = T0;
	sip_digest_config_default(&dc);
	dc.secret = secret;
	dc.secret_len = sizeof(secret);
	dc.ha1 = sip_userdb_ha1_cb;
	dc.ha1_arg = f->db;
	dc.clock = fake_clock;
	dc.clock_arg = f;
	assert_int_equal(sip_digest_create(&dc, &f->digest), 0);
	lc.max_failures = 3;
	assert_int_equal(sip_authlimit_create(&lc, &f->limit), 0);
	loc.now = T0;
	assert_int_equal(loc_store_open(&loc, &f->store, NULL, 0), 0);

	rc.store = f->store;
	rc.userdb = f->db;
	rc.digest = f->digest;
	rc.limit = f->limit;
	rc.domains = extra;
	assert_int_equal(registrar_create(&rc, &f->reg), 0);

	f->src.sin_family = AF_INET;
	f->src.sin_port = htons(5062);
	inet_pton(AF_INET, "192.0.2.7", &f->src.sin_addr);
	f->ctx.now = T0;
	f->ctx.now_ms = 1000;
	f->ctx.transport = SIP_TP_TCP;
	f->ctx.source = "192.0.2.7:5062";
	f->ctx.addr = (const struct sockaddr *)&f->src;
	f->ctx.conn_id = 42;
	f->ctx.auth = false;
	f->ctx.to_tag = SIP_STR_LIT("regtag");
	*state = f;
	return 0;
}

static int setup(void **state)
{
	struct registrar_config rc = {0};

	return setup_cfg(state, &rc);
}

static int teardown(void **state)
{
	struct fx *f = *state;

	registrar_destroy(f->reg);
	loc_store_destroy(f->store);
	sip_authlimit_destroy(f->limit);
	sip_digest_destroy(f->digest);
	sip_userdb_close(f->db);
	remove_db(f->path);
	free(f);
	return 0;
}

/* Send a REGISTER for @p to (e.g. "sip:alice@example.com") to
 * sip:@p domain with @p extra header lines; returns the status. */
static unsigned do_reg(struct fx *f, const char *domain, const char *to,
		       const char *call_id, unsigned cseq, const char *extra)
{
	struct sip_limits lim;
	struct sip_error err;
	struct sip_writer w;
	int n;

	sip_limits_default(&lim);
	n = snprintf(f->req, sizeof(f->req),
		     "REGISTER sip:%s SIP/2.0\r\n"
		     "Via: SIP/2.0/TCP 192.0.2.7:5062;branch=z9hG4bK%u\r\n"
		     "Max-Forwards: 70\r\n"
		     "From: <%s>;tag=f1\r\n"
		     "To: <%s>\r\n"
		     "Call-ID: %s\r\n"
		     "CSeq: %u REGISTER\r\n"
		     "%s"
		     "Content-Length: 0\r\n\r\n",
		     domain, ++f->branch, to, to, call_id, cseq, extra);
	assert_true(n > 0 && (size_t)n < sizeof(f->req));
	assert_int_equal(sip_msg_parse(&f->msg, f->req, (size_t)n,
				       SIP_FRAMING_STREAM, &lim, &err),
			 0);
	sip_wr_init(&w, f->out, sizeof(f->out));
	assert_int_equal(
		registrar_handle(f->reg, &f->msg, &f->ctx, &w, &f->res), 0);
	if (f->res.status == 0)
		return 0;
	assert_int_equal(sip_msg_parse(&f->resp, f->out, f->res.len,
				       SIP_FRAMING_STREAM, &lim, &err),
			 0);
	assert_false(f->resp.is_request);
	assert_int_equal(f->resp.status, f->res.status);
	return f->resp.status;
}

static unsigned reg_alice(struct fx *f, unsigned cseq, const char *extra)
{
	return do_reg(f, DOMAIN, "sip:alice@" DOMAIN, "call-1", cseq, extra);
}

/* The Contact values of the response: URIs and expires into arrays. */
static unsigned contacts(struct fx *f, char uris[][128], uint32_t *expires,
			 uint16_t *q)
{
	unsigned n = 0;

	for (const struct sip_hdr *h = sip_msg_hdr(&f->resp, SIP_HDR_CONTACT);
	     h; h = sip_msg_hdr_next(&f->resp, h)) {
		sip_str cur = h->value, item;

		while (sip_list_next(&cur, &item) > 0) {
			struct sip_contact c;

			assert_int_equal(sip_contact_parse(item, &c), 0);
			assert_true(c.has_expires);
			if (uris)
				snprintf(uris[n], 128, "%.*s",
					 SIP_STR_FMT(c.addr.uri_text));
			if (expires)
				expires[n] = c.expires;
			if (q)
				q[n] = c.has_q ? c.q : 1000;
			n++;
		}
	}
	return n;
}

static sip_str hdr(struct fx *f, enum sip_hdr_id id)
{
	const struct sip_hdr *h = sip_msg_hdr(&f->resp, id);

	return h ? h->value : SIP_STR_NULL;
}

static bool hdr_is(struct fx *f, enum sip_hdr_id id, const char *v)
{
	return sip_str_eq(hdr(f, id), sip_str_c(v));
}

/* Whether the first @p id header of the response contains @p needle. */
static bool hdr_has(struct fx *f, enum sip_hdr_id id, const char *needle)
{
	char buf[1024];

	snprintf(buf, sizeof(buf), "%.*s", SIP_STR_FMT(hdr(f, id)));
	return strstr(buf, needle) != NULL;
}

/* ------------------------------------------------------------------------ */
/* Domains, To, verdicts                                                    */
/* ------------------------------------------------------------------------ */

static void test_foreign_domain(void **state)
{
	struct fx *f = *state;

	assert_int_equal(do_reg(f, "elsewhere.org", "sip:alice@elsewhere.org",
				"c", 1, "Contact: <sip:a@192.0.2.7>\r\n"),
			 403);
	assert_int_equal(loc_store_count(f->store), 0);
}

static void test_configured_domain(void **state)
{
	struct fx *f = *state;

	/* served from the configuration, not the user store */
	assert_int_equal(do_reg(f, "OTHER.example", "sip:carol@other.example",
				"c", 1, "Contact: <sip:c@192.0.2.7>\r\n"),
			 200);
	assert_int_equal(contacts(f, NULL, NULL, NULL), 1);
}

static void test_to_other_domain(void **state)
{
	struct fx *f = *state;

	assert_int_equal(do_reg(f, DOMAIN, "sip:alice@other.example", "c", 1,
				"Contact: <sip:a@192.0.2.7>\r\n"),
			 404);
}

static void test_to_not_sip(void **state)
{
	struct fx *f = *state;

	assert_int_equal(do_reg(f, DOMAIN, "tel:+15551234", "c", 1,
				"Contact: <sip:a@192.0.2.7>\r\n"),
			 400);
}

static void test_require_unknown(void **state)
{
	struct fx *f = *state;

	assert_int_equal(reg_alice(f, 1,
				   "Require: path, foo\r\n"
				   "Contact: <sip:a@192.0.2.7>\r\n"),
			 420);
	assert_true(hdr_is(f, SIP_HDR_UNSUPPORTED, "foo"));
}

static void test_not_register(void **state)
{
	struct fx *f = *state;
	struct sip_limits lim;
	struct sip_writer w;
	static const char opt[] = "OPTIONS sip:example.com SIP/2.0\r\n"
				  "Via: SIP/2.0/UDP h;branch=z9hG4bKx\r\n"
				  "From: <sip:a@example.com>;tag=1\r\n"
				  "To: <sip:a@example.com>\r\n"
				  "Call-ID: x\r\nCSeq: 1 OPTIONS\r\n"
				  "Max-Forwards: 70\r\n"
				  "Content-Length: 0\r\n\r\n";

	sip_limits_default(&lim);
	assert_int_equal(sip_msg_parse(&f->msg, opt, sizeof(opt) - 1,
				       SIP_FRAMING_STREAM, &lim, NULL),
			 0);
	sip_wr_init(&w, f->out, sizeof(f->out));
	assert_int_equal(
		registrar_handle(f->reg, &f->msg, &f->ctx, &w, &f->res),
		-EINVAL);
}

static void test_create_bad(void **state)
{
	struct registrar_config rc = {0};
	struct registrar *r;
	struct fx *f = *state;

	assert_int_equal(registrar_create(&rc, &r), -EINVAL);
	rc.store = f->store;
	rc.min_expires = 100;
	rc.max_expires = 50;
	assert_int_equal(registrar_create(&rc, &r), -EINVAL);
	registrar_destroy(NULL);
}

/* ------------------------------------------------------------------------ */
/* Expiry                                                                   */
/* ------------------------------------------------------------------------ */

static void test_default_expiry_and_date(void **state)
{
	struct fx *f = *state;
	uint32_t exp[4];

	assert_int_equal(reg_alice(f, 1, "Contact: <sip:a@192.0.2.7:5062>\r\n"),
			 200);
	assert_int_equal(contacts(f, NULL, exp, NULL), 1);
	assert_int_equal(exp[0], 3600);
	/* T0 is Tue, 14 Nov 2023 22:13:20 GMT */
	assert_true(hdr_is(f, SIP_HDR_DATE, "Tue, 14 Nov 2023 22:13:20 GMT"));
	assert_int_equal(f->res.bindings, 1);
}

static void test_expires_header_and_param(void **state)
{
	struct fx *f = *state;
	char uris[4][128];
	uint32_t exp[4];

	assert_int_equal(reg_alice(f, 1,
				   "Expires: 300\r\n"
				   "Contact: <sip:a@192.0.2.7>, "
				   "<sip:b@192.0.2.7>;expires=120\r\n"),
			 200);
	assert_int_equal(contacts(f, uris, exp, NULL), 2);
	assert_string_equal(uris[0], "sip:a@192.0.2.7");
	assert_int_equal(exp[0], 300);
	assert_string_equal(uris[1], "sip:b@192.0.2.7");
	assert_int_equal(exp[1], 120);

	/* 100 s later, the 200 shows what is left */
	f->ctx.now += 100;
	assert_int_equal(reg_alice(f, 2, ""), 200);
	assert_int_equal(contacts(f, NULL, exp, NULL), 2);
	assert_int_equal(exp[0], 200);
	assert_int_equal(exp[1], 20);
}

static void test_max_expiry_capped(void **state)
{
	struct fx *f = *state;
	uint32_t exp[2];

	assert_int_equal(reg_alice(f, 1,
				   "Contact: <sip:a@192.0.2.7>"
				   ";expires=100000\r\n"),
			 200);
	assert_int_equal(contacts(f, NULL, exp, NULL), 1);
	assert_int_equal(exp[0], 7200);
}

static void test_interval_too_brief(void **state)
{
	struct fx *f = *state;

	assert_int_equal(reg_alice(f, 1,
				   "Expires: 10\r\n"
				   "Contact: <sip:a@192.0.2.7>\r\n"),
			 423);
	assert_true(hdr_is(f, SIP_HDR_MIN_EXPIRES, "60"));
	assert_int_equal(loc_store_count(f->store), 0);
	/* one brief contact refuses the whole request */
	assert_int_equal(reg_alice(f, 2,
				   "Contact: <sip:a@192.0.2.7>, "
				   "<sip:b@192.0.2.7>;expires=59\r\n"),
			 423);
	assert_int_equal(loc_store_count(f->store), 0);
}

static int setup_custom(void **state)
{
	struct registrar_config rc = {0};

	rc.default_expires = 900;
	rc.min_expires = 30;
	rc.max_expires = 1000;
	rc.durable = true;
	return setup_cfg(state, &rc);
}

static void test_configured_bounds(void **state)
{
	struct fx *f = *state;
	uint32_t exp[2];

	assert_int_equal(reg_alice(f, 1, "Contact: <sip:a@192.0.2.7>\r\n"),
			 200);
	assert_int_equal(contacts(f, NULL, exp, NULL), 1);
	assert_int_equal(exp[0], 900);
	assert_int_equal(
		reg_alice(f, 2, "Contact: <sip:a@192.0.2.7>;expires=29\r\n"),
		423);
	assert_true(hdr_is(f, SIP_HDR_MIN_EXPIRES, "30"));
	assert_int_equal(
		reg_alice(f, 3, "Contact: <sip:a@192.0.2.7>;expires=5000\r\n"),
		200);
	assert_int_equal(contacts(f, NULL, exp, NULL), 1);
	assert_int_equal(exp[0], 1000);
}

/* A reload: new limits and domains apply to the next request, and the
 * bindings stay. */
static void test_reconfigure(void **state)
{
	static const char *const domains[] = {"new.example", NULL};
	struct fx *f = *state;
	struct registrar_config rc = {0};
	uint32_t exp[2];

	assert_int_equal(reg_alice(f, 1, "Contact: <sip:a@192.0.2.7>\r\n"),
			 200);
	assert_int_equal(do_reg(f, "other.example", "sip:carol@other.example",
				"call-9", 1, ""),
			 200);
	rc.min_expires = 120;
	rc.max_expires = 60;
	assert_int_equal(registrar_reconfigure(f->reg, &rc), -EINVAL);
	rc.max_expires = 1800;
	rc.default_expires = 600;
	rc.domains = domains;
	assert_int_equal(registrar_reconfigure(f->reg, &rc), 0);
	assert_int_equal(
		reg_alice(f, 2, "Contact: <sip:a@192.0.2.7>;expires=100\r\n"),
		423);
	assert_true(hdr_is(f, SIP_HDR_MIN_EXPIRES, "120"));
	assert_int_equal(reg_alice(f, 3, "Contact: <sip:b@192.0.2.7>\r\n"),
			 200);
	assert_int_equal(contacts(f, NULL, exp, NULL), 2);
	assert_true(exp[0] == 600 || exp[1] == 600);
	/* the user store's domain is still served, the old extra one not */
	assert_true(registrar_serves(f->reg, SIP_STR_LIT("new.example")));
	assert_false(registrar_serves(f->reg, SIP_STR_LIT("other.example")));
	assert_int_equal(do_reg(f, "other.example", "sip:carol@other.example",
				"call-9", 2, ""),
			 403);
}

static void test_bad_expires(void **state)
{
	struct fx *f = *state;

	assert_int_equal(reg_alice(f, 1,
				   "Expires: soon\r\n"
				   "Contact: <sip:a@192.0.2.7>\r\n"),
			 400);
}

static void test_remove_one(void **state)
{
	struct fx *f = *state;
	char uris[4][128];

	assert_int_equal(reg_alice(f, 1,
				   "Contact: <sip:a@192.0.2.7>, "
				   "<sip:b@192.0.2.7>\r\n"),
			 200);
	assert_int_equal(
		reg_alice(f, 2, "Contact: <sip:a@192.0.2.7>;expires=0\r\n"),
		200);
	assert_int_equal(contacts(f, uris, NULL, NULL), 1);
	assert_string_equal(uris[0], "sip:b@192.0.2.7");
	/* removing what is not there is fine */
	assert_int_equal(reg_alice(f, 3,
				   "Expires: 0\r\n"
				   "Contact: <sip:zz@192.0.2.7>\r\n"),
			 200);
	assert_int_equal(contacts(f, NULL, NULL, NULL), 1);
}

/* ------------------------------------------------------------------------ */
/* Contact: *                                                               */
/* ------------------------------------------------------------------------ */

static void test_star(void **state)
{
	struct fx *f = *state;

	assert_int_equal(reg_alice(f, 1,
				   "Contact: <sip:a@192.0.2.7>, "
				   "<sip:b@192.0.2.7>\r\n"),
			 200);
	assert_int_equal(do_reg(f, DOMAIN, "sip:bob@" DOMAIN, "bob-1", 1,
				"Contact: <sip:bob@192.0.2.9>\r\n"),
			 200);
	assert_int_equal(reg_alice(f, 2, "Contact: *\r\nExpires: 0\r\n"), 200);
	assert_int_equal(contacts(f, NULL, NULL, NULL), 0);
	assert_null(sip_msg_hdr(&f->resp, SIP_HDR_CONTACT));
	/* bob untouched */
	assert_int_equal(loc_store_count(f->store), 1);
}

static void test_star_invalid(void **state)
{
	struct fx *f = *state;

	assert_int_equal(reg_alice(f, 1, "Contact: *\r\n"), 400);
	assert_int_equal(reg_alice(f, 2, "Contact: *\r\nExpires: 60\r\n"), 400);
	assert_int_equal(reg_alice(f, 3,
				   "Contact: *, <sip:a@192.0.2.7>\r\n"
				   "Expires: 0\r\n"),
			 400);
	assert_int_equal(reg_alice(f, 4,
				   "Contact: <sip:a@192.0.2.7>\r\n"
				   "Contact: *\r\nExpires: 0\r\n"),
			 400);
}

static void test_star_ordering(void **state)
{
	struct fx *f = *state;

	assert_int_equal(reg_alice(f, 5, "Contact: <sip:a@192.0.2.7>\r\n"),
			 200);
	/* same Call-ID, CSeq not higher: refused, nothing removed */
	assert_int_equal(reg_alice(f, 5, "Contact: *\r\nExpires: 0\r\n"), 500);
	assert_int_equal(loc_store_count(f->store), 1);
}

static void test_bad_contact(void **state)
{
	struct fx *f = *state;

	assert_int_equal(reg_alice(f, 1, "Contact: <sip:a@192.0.2.7;q=2\r\n"),
			 400);
	assert_int_equal(reg_alice(f, 2, "Contact: <sip:a@192.0.2.7>;q=7\r\n"),
			 400);
}

static void test_too_many_contacts(void **state)
{
	struct fx *f = *state;
	char extra[4096];
	size_t len = 0;

	len += (size_t)snprintf(extra, sizeof(extra), "Contact: ");
	for (unsigned i = 0; i <= REGISTRAR_MAX_CONTACTS; i++)
		len += (size_t)snprintf(extra + len, sizeof(extra) - len,
					"%s<sip:u%u@192.0.2.7>", i ? ", " : "",
					i);
	snprintf(extra + len, sizeof(extra) - len, "\r\n");
	assert_int_equal(reg_alice(f, 1, extra), 403);
	assert_int_equal(loc_store_count(f->store), 0);
}

/* ------------------------------------------------------------------------ */
/* Several contacts, q, query                                               */
/* ------------------------------------------------------------------------ */

static void test_q_and_query(void **state)
{
	struct fx *f = *state;
	char uris[4][128];
	uint16_t q[4];

	assert_int_equal(
		reg_alice(f, 1,
			  "Contact: <sip:desk@192.0.2.7>;q=0.7\r\n"
			  "Contact: <sip:mobile@192.0.2.8>;q=0.25\r\n"),
		200);
	/* a second device of the same user, another Call-ID */
	assert_int_equal(do_reg(f, DOMAIN, "sip:alice@" DOMAIN, "call-2", 1,
				"Contact: <sip:laptop@192.0.2.9>\r\n"),
			 200);
	assert_int_equal(contacts(f, uris, NULL, q), 3);
	/* a query: no Contact, every binding listed */
	assert_int_equal(reg_alice(f, 2, ""), 200);
	assert_int_equal(contacts(f, uris, NULL, q), 3);
	assert_string_equal(uris[0], "sip:desk@192.0.2.7");
	assert_int_equal(q[0], 700);
	assert_string_equal(uris[1], "sip:mobile@192.0.2.8");
	assert_int_equal(q[1], 250);
	assert_string_equal(uris[2], "sip:laptop@192.0.2.9");
	assert_int_equal(q[2], 1000);
}

static void test_refresh(void **state)
{
	struct fx *f = *state;
	uint32_t exp[2];

	assert_int_equal(
		reg_alice(f, 1, "Contact: <sip:a@192.0.2.7>;expires=600\r\n"),
		200);
	f->ctx.now += 500;
	assert_int_equal(
		reg_alice(f, 2, "Contact: <sip:a@192.0.2.7>;expires=600\r\n"),
		200);
	assert_int_equal(contacts(f, NULL, exp, NULL), 1);
	assert_int_equal(exp[0], 600);
	assert_int_equal(loc_store_count(f->store), 1);
}

/* ------------------------------------------------------------------------ */
/* Ordering (§10.3 step 7) and all-or-nothing                               */
/* ------------------------------------------------------------------------ */

static void test_ordering(void **state)
{
	struct fx *f = *state;
	uint32_t exp[2];

	assert_int_equal(
		reg_alice(f, 10, "Contact: <sip:a@192.0.2.7>;expires=600\r\n"),
		200);
	/* same Call-ID, same or lower CSeq: refused with 500 */
	assert_int_equal(
		reg_alice(f, 10, "Contact: <sip:a@192.0.2.7>;expires=900\r\n"),
		500);
	assert_int_equal(
		reg_alice(f, 9, "Contact: <sip:a@192.0.2.7>;expires=0\r\n"),
		500);
	/* another Call-ID may */
	assert_int_equal(do_reg(f, DOMAIN, "sip:alice@" DOMAIN, "call-9", 1,
				"Contact: <sip:a@192.0.2.7>;expires=900\r\n"),
			 200);
	assert_int_equal(contacts(f, NULL, exp, NULL), 1);
	assert_int_equal(exp[0], 900);
}

static void test_all_or_nothing(void **state)
{
	struct fx *f = *state;
	char uris[4][128];

	assert_int_equal(reg_alice(f, 10, "Contact: <sip:a@192.0.2.7>\r\n"),
			 200);
	/* the new contact b would be fine, the update of a is stale */
	assert_int_equal(reg_alice(f, 5,
				   "Contact: <sip:b@192.0.2.7>, "
				   "<sip:a@192.0.2.7>;expires=0\r\n"),
			 500);
	assert_int_equal(reg_alice(f, 11, ""), 200);
	assert_int_equal(contacts(f, uris, NULL, NULL), 1);
	assert_string_equal(uris[0], "sip:a@192.0.2.7");
}

static void test_duplicate_contact(void **state)
{
	struct fx *f = *state;
	uint32_t exp[2];

	/* the same URI twice in one request: the last one counts */
	assert_int_equal(reg_alice(f, 1,
				   "Contact: <sip:a@192.0.2.7>;expires=100, "
				   "<sip:a@192.0.2.7>;expires=200\r\n"),
			 200);
	assert_int_equal(contacts(f, NULL, exp, NULL), 1);
	assert_int_equal(exp[0], 200);
}

/* ------------------------------------------------------------------------ */
/* Path, RFC 5626, flow                                                     */
/* ------------------------------------------------------------------------ */

struct seen {
	char path[256];
	char instance[128];
	char source[64];
	uint32_t reg_id;
	unsigned transport;
	uint64_t conn;
	char contact[128];
	unsigned n;
};

static int seen_cb(const struct loc_binding *b, void *arg)
{
	struct seen *s = arg;

	snprintf(s->path, sizeof(s->path), "%.*s", SIP_STR_FMT(b->path));
	snprintf(s->instance, sizeof(s->instance), "%.*s",
		 SIP_STR_FMT(b->instance));
	snprintf(s->source, sizeof(s->source), "%.*s", SIP_STR_FMT(b->source));
	snprintf(s->contact, sizeof(s->contact), "%.*s",
		 SIP_STR_FMT(b->contact));
	s->reg_id = b->reg_id;
	s->transport = b->transport;
	s->conn = b->conn_id;
	s->n++;
	return 0;
}

static void lookup_alice(struct fx *f, struct seen *s)
{
	memset(s, 0, sizeof(*s));
	loc_store_lookup(f->store, SIP_STR_LIT("sip:alice@example.com"),
			 f->ctx.now, seen_cb, s);
}

static void test_path(void **state)
{
	struct fx *f = *state;
	struct seen s;

	assert_int_equal(reg_alice(f, 1,
				   "Supported: path\r\n"
				   "Path: <sip:edge1.example.com;lr>\r\n"
				   "Path: <sip:edge2.example.com;lr>\r\n"
				   "Contact: <sip:a@192.0.2.7>\r\n"),
			 200);
	lookup_alice(f, &s);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.path, "<sip:edge1.example.com;lr>, "
				    "<sip:edge2.example.com;lr>");
	assert_int_equal(sip_msg_hdr_count(&f->resp, SIP_HDR_PATH), 2);
	assert_true(hdr_is(f, SIP_HDR_PATH, "<sip:edge1.example.com;lr>"));
}

static void test_path_unsupported(void **state)
{
	struct fx *f = *state;

	assert_int_equal(reg_alice(f, 1,
				   "Path: <sip:edge1.example.com;lr>\r\n"
				   "Contact: <sip:a@192.0.2.7>\r\n"),
			 421);
	assert_true(hdr_is(f, SIP_HDR_REQUIRE, "path"));
	assert_int_equal(loc_store_count(f->store), 0);
}

static void test_flow_stored(void **state)
{
	struct fx *f = *state;
	struct seen s;

	assert_int_equal(reg_alice(f, 1, "Contact: <sip:a@192.0.2.7>\r\n"),
			 200);
	lookup_alice(f, &s);
	assert_int_equal(s.transport, SIP_TP_TCP);
	assert_string_equal(s.source, "192.0.2.7:5062");
	assert_int_equal(s.conn, 42);
	assert_string_equal(s.path, "");
}

static void test_instance_reg_id(void **state)
{
	struct fx *f = *state;
	struct seen s;
	char uris[4][128];

	assert_int_equal(
		reg_alice(f, 1,
			  "Supported: outbound, path\r\n"
			  "Contact: <sip:a@192.0.2.7;transport=tcp>"
			  ";+sip.instance=\"<urn:uuid:0001>\";reg-id=1\r\n"),
		200);
	assert_true(hdr_is(f, SIP_HDR_REQUIRE, "outbound"));
	lookup_alice(f, &s);
	assert_string_equal(s.instance, "\"<urn:uuid:0001>\"");
	assert_int_equal(s.reg_id, 1);
	/* the device comes back from another address (new Call-ID after a
	 * reboot): its binding is replaced, not added */
	f->ctx.source = "192.0.2.99:40000";
	f->ctx.conn_id = 43;
	assert_int_equal(
		do_reg(f, DOMAIN, "sip:alice@" DOMAIN, "reboot", 1,
		       "Contact: <sip:a@192.0.2.99:40000;transport=tcp>"
		       ";+sip.instance=\"<urn:uuid:0001>\";reg-id=1\r\n"),
		200);
	assert_int_equal(contacts(f, uris, NULL, NULL), 1);
	assert_string_equal(uris[0], "sip:a@192.0.2.99:40000;transport=tcp");
	assert_true(hdr_has(f, SIP_HDR_CONTACT,
			    "+sip.instance=\"<urn:uuid:0001>\";reg-id=1"));
	lookup_alice(f, &s);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.conn, 43);
	/* another reg-id of the same instance is a second flow */
	assert_int_equal(
		do_reg(f, DOMAIN, "sip:alice@" DOMAIN, "reboot", 2,
		       "Contact: <sip:a@192.0.2.99:40001;transport=tcp>"
		       ";+sip.instance=\"<urn:uuid:0001>\";reg-id=2\r\n"),
		200);
	assert_int_equal(contacts(f, NULL, NULL, NULL), 2);
	assert_int_equal(
		reg_alice(f, 2,
			  "Contact: <sip:x@192.0.2.7>"
			  ";+sip.instance=\"<urn:uuid:1>\";reg-id=0\r\n"),
		400);
}

/* ------------------------------------------------------------------------ */
/* Digest authentication                                                    */
/* ------------------------------------------------------------------------ */

struct chal {
	char nonce[128];
	char opaque[128];
	bool stale;
	bool sha256, md5;
	unsigned n;
};

static void challenges(struct fx *f, struct chal *c)
{
	memset(c, 0, sizeof(*c));
	for (const struct sip_hdr *h =
		     sip_msg_hdr(&f->resp, SIP_HDR_WWW_AUTHENTICATE);
	     h; h = sip_msg_hdr_next(&f->resp, h)) {
		struct sip_auth a;
		sip_str v;

		assert_int_equal(sip_auth_parse(h->value, &a), 0);
		assert_true(sip_str_ieq_c(a.scheme, "Digest"));
		assert_true(sip_auth_param(&a, "realm", &v));
		assert_true(sip_str_eq(v, SIP_STR_LIT(DOMAIN)));
		assert_true(sip_auth_param(&a, "qop", &v));
		assert_true(sip_str_eq(v, SIP_STR_LIT("auth")));
		assert_true(sip_auth_param(&a, "algorithm", &v));
		if (sip_str_eq(v, SIP_STR_LIT("SHA-256")))
			c->sha256 = true;
		else if (sip_str_eq(v, SIP_STR_LIT("MD5")))
			c->md5 = true;
		assert_true(sip_auth_param(&a, "nonce", &v));
		snprintf(c->nonce, sizeof(c->nonce), "%.*s", SIP_STR_FMT(v));
		assert_true(sip_auth_param(&a, "opaque", &v));
		snprintf(c->opaque, sizeof(c->opaque), "%.*s", SIP_STR_FMT(v));
		if (sip_auth_param(&a, "stale", &v) && sip_str_ieq_c(v, "true"))
			c->stale = true;
		c->n++;
	}
}

/* An Authorization header line for @p user / @p pw answering @p c. */
static void credentials(const struct chal *c, const char *user, const char *pw,
			enum sip_digest_alg alg, unsigned nc, char *out,
			size_t cap)
{
	char ha1[SIP_DIGEST_HEX_MAX], resp[SIP_DIGEST_HEX_MAX], ncs[16];

	snprintf(ncs, sizeof(ncs), "%08x", nc);
	assert_true(sip_digest_ha1(alg, sip_str_c(user), SIP_STR_LIT(DOMAIN),
				   sip_str_c(pw), ha1) > 0);
	assert_true(sip_digest_response(
			    alg, sip_str_c(ha1), sip_str_c(c->nonce),
			    sip_str_c(ncs), SIP_STR_LIT("c0ffee"),
			    SIP_STR_LIT("auth"), SIP_STR_LIT("REGISTER"),
			    SIP_STR_LIT("sip:" DOMAIN), resp) > 0);
	snprintf(out, cap,
		 "Authorization: Digest username=\"%s\", realm=\"" DOMAIN
		 "\", nonce=\"%s\", uri=\"sip:" DOMAIN "\", response=\"%s\", "
		 "algorithm=%s, qop=auth, nc=%s, cnonce=\"c0ffee\", "
		 "opaque=\"%s\"\r\n",
		 user, c->nonce, resp, sip_digest_alg_name(alg), ncs,
		 c->opaque);
}

static void test_auth_challenge_then_ok(void **state)
{
	struct fx *f = *state;
	struct chal c;
	char extra[2048], auth[1024];

	f->ctx.auth = true;
	assert_int_equal(reg_alice(f, 1, "Contact: <sip:a@192.0.2.7>\r\n"),
			 401);
	challenges(f, &c);
	assert_int_equal(c.n, 2);
	assert_true(c.sha256 && c.md5);
	assert_false(c.stale);
	/* SHA-256 first (RFC 8760 §2.4) */
	assert_true(hdr_has(f, SIP_HDR_WWW_AUTHENTICATE, "SHA-256"));
	assert_int_equal(loc_store_count(f->store), 0);

	credentials(&c, "alice", "secret1", SIP_DIGEST_SHA256, 1, auth,
		    sizeof(auth));
	snprintf(extra, sizeof(extra), "%sContact: <sip:a@192.0.2.7>\r\n",
		 auth);
	assert_int_equal(reg_alice(f, 2, extra), 200);
	assert_int_equal(contacts(f, NULL, NULL, NULL), 1);

	/* MD5 with the same nonce and the next nc */
	credentials(&c, "alice", "secret1", SIP_DIGEST_MD5, 2, auth,
		    sizeof(auth));
	snprintf(extra, sizeof(extra), "%sContact: <sip:b@192.0.2.7>\r\n",
		 auth);
	assert_int_equal(reg_alice(f, 3, extra), 200);
	assert_int_equal(contacts(f, NULL, NULL, NULL), 2);

	/* the same nc again: replay, challenged with stale=true */
	snprintf(extra, sizeof(extra), "%sContact: <sip:c@192.0.2.7>\r\n",
		 auth);
	assert_int_equal(reg_alice(f, 4, extra), 401);
	challenges(f, &c);
	assert_true(c.stale);
	assert_int_equal(loc_store_count(f->store), 2);
}

static void test_auth_wrong_password_unknown_user(void **state)
{
	struct fx *f = *state;
	struct chal c;
	char extra[2048], auth[1024];
	size_t len_wrong;

	f->ctx.auth = true;
	assert_int_equal(reg_alice(f, 1, "Contact: <sip:a@192.0.2.7>\r\n"),
			 401);
	challenges(f, &c);
	credentials(&c, "alice", "nope", SIP_DIGEST_SHA256, 1, auth,
		    sizeof(auth));
	snprintf(extra, sizeof(extra), "%sContact: <sip:a@192.0.2.7>\r\n",
		 auth);
	assert_int_equal(reg_alice(f, 2, extra), 401);
	len_wrong = f->res.len;
	challenges(f, &c);
	assert_int_equal(c.n, 2);
	assert_false(c.stale);

	credentials(&c, "mallory", "x", SIP_DIGEST_SHA256, 1, auth,
		    sizeof(auth));
	snprintf(extra, sizeof(extra), "%sContact: <sip:a@192.0.2.7>\r\n",
		 auth);
	assert_int_equal(
		do_reg(f, DOMAIN, "sip:mallory@" DOMAIN, "call-1", 3, extra),
		401);
	challenges(f, &c);
	assert_int_equal(c.n, 2);
	/* the same shape: only the From and To users differ in length */
	assert_int_equal(f->res.len - 2 * (strlen("mallory") - strlen("alice")),
			 len_wrong);
	assert_int_equal(loc_store_count(f->store), 0);
}

static void test_auth_user_mismatch(void **state)
{
	struct fx *f = *state;
	struct chal c;
	char extra[2048], auth[1024];

	f->ctx.auth = true;
	assert_int_equal(reg_alice(f, 1, "Contact: <sip:a@192.0.2.7>\r\n"),
			 401);
	challenges(f, &c);
	/* bob's valid credentials for alice's AOR */
	credentials(&c, "bob", "secret2", SIP_DIGEST_SHA256, 1, auth,
		    sizeof(auth));
	snprintf(extra, sizeof(extra), "%sContact: <sip:a@192.0.2.7>\r\n",
		 auth);
	assert_int_equal(reg_alice(f, 2, extra), 403);
	assert_int_equal(loc_store_count(f->store), 0);
}

static void test_auth_stale_nonce(void **state)
{
	struct fx *f = *state;
	struct chal c;
	char extra[2048], auth[1024];

	f->ctx.auth = true;
	assert_int_equal(reg_alice(f, 1, "Contact: <sip:a@192.0.2.7>\r\n"),
			 401);
	challenges(f, &c);
	f->clock += 1000; /* past the nonce lifetime */
	credentials(&c, "alice", "secret1", SIP_DIGEST_SHA256, 1, auth,
		    sizeof(auth));
	snprintf(extra, sizeof(extra), "%sContact: <sip:a@192.0.2.7>\r\n",
		 auth);
	assert_int_equal(reg_alice(f, 2, extra), 401);
	challenges(f, &c);
	assert_true(c.stale);
	assert_int_equal(c.n, 2);
}

static void test_auth_malformed(void **state)
{
	struct fx *f = *state;

	f->ctx.auth = true;
	assert_int_equal(reg_alice(f, 1,
				   "Authorization: Digest username=\"alice\", "
				   "realm=\"" DOMAIN "\"\r\n"
				   "Contact: <sip:a@192.0.2.7>\r\n"),
			 400);
}

static void test_auth_limiter(void **state)
{
	struct fx *f = *state;
	struct chal c;
	char extra[2048], auth[1024];

	f->ctx.auth = true;
	assert_int_equal(reg_alice(f, 1, "Contact: <sip:a@192.0.2.7>\r\n"),
			 401);
	challenges(f, &c);
	for (unsigned i = 0; i < 3; i++) {
		credentials(&c, "alice", "wrong", SIP_DIGEST_SHA256, i + 1,
			    auth, sizeof(auth));
		snprintf(extra, sizeof(extra),
			 "%sContact: <sip:a@192.0.2.7>\r\n", auth);
		assert_int_equal(reg_alice(f, 2 + i, extra), 401);
	}
	/* over the limit: even good credentials get 403 */
	credentials(&c, "alice", "secret1", SIP_DIGEST_SHA256, 9, auth,
		    sizeof(auth));
	snprintf(extra, sizeof(extra), "%sContact: <sip:a@192.0.2.7>\r\n",
		 auth);
	assert_int_equal(reg_alice(f, 10, extra), 403);
	assert_int_equal(loc_store_count(f->store), 0);
	/* another source is not affected */
	inet_pton(AF_INET, "192.0.2.8", &f->src.sin_addr);
	assert_int_equal(reg_alice(f, 11, extra), 200);
}

static void test_auth_off(void **state)
{
	struct fx *f = *state;

	/* without auth, any user of a served domain may register */
	assert_int_equal(do_reg(f, DOMAIN, "sip:nobody@" DOMAIN, "c", 1,
				"Contact: <sip:n@192.0.2.7>\r\n"),
			 200);
}

/* Durable with a persisted store: a changing REGISTER is answered 200 but
 * held with the sequence numbers of its changes; a query is not held; the
 * answer for a failed commit is a 500 with Retry-After from the held 200. */
static void test_durable_pending(void **state)
{
	struct fx *f = *state;
	struct registrar *plain = f->reg;
	struct loc_store *mem = f->store;
	struct registrar_config rc = {0};
	struct loc_config loc = {0};
	struct sip_limits lim;
	struct sip_error err;
	struct sip_msg *m = malloc(sizeof(*m));
	char dbp[272], fail[1024];
	int n;

	assert_non_null(m);
	snprintf(dbp, sizeof(dbp), "%s.loc", f->path);
	loc.db_path = dbp;
	loc.now = T0;
	assert_int_equal(loc_store_open(&loc, &f->store, NULL, 0), 0);
	rc.store = f->store;
	rc.userdb = f->db;
	rc.durable = true;
	assert_int_equal(registrar_create(&rc, &f->reg), 0);

	assert_int_equal(reg_alice(f, 1,
				   "Contact: <sip:a@192.0.2.7>, "
				   "<sip:b@192.0.2.7>\r\n"),
			 200);
	assert_true(f->res.pending);
	assert_int_equal(f->res.seq_first, 1);
	assert_int_equal(f->res.seq_last, 2);
	assert_int_equal(contacts(f, NULL, NULL, NULL), 2);
	assert_int_equal(reg_alice(f, 2, ""), 200); /* a query */
	assert_false(f->res.pending);
	assert_int_equal(
		reg_alice(f, 3, "Contact: <sip:a@192.0.2.7>;expires=0\r\n"),
		200);
	assert_true(f->res.pending);
	assert_int_equal(f->res.seq_first, 3);
	assert_int_equal(f->res.seq_last, 3);

	n = registrar_failed_answer(f->out, f->res.len, fail, sizeof(fail));
	assert_true(n > 0);
	sip_limits_default(&lim);
	assert_int_equal(sip_msg_parse(m, fail, (size_t)n, SIP_FRAMING_STREAM,
				       &lim, &err),
			 0);
	assert_int_equal(m->status, 500);
	const struct sip_hdr *h = sip_msg_hdr(m, SIP_HDR_RETRY_AFTER);
	assert_non_null(h);
	assert_true(sip_str_eq(h->value, SIP_STR_LIT("1")));
	static const enum sip_hdr_id same[] = {SIP_HDR_VIA, SIP_HDR_FROM,
					       SIP_HDR_TO, SIP_HDR_CALL_ID,
					       SIP_HDR_CSEQ};
	for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
		enum sip_hdr_id id = same[i];

		assert_non_null(sip_msg_hdr(m, id));
		assert_true(sip_str_eq(sip_msg_hdr(m, id)->value,
				       sip_msg_hdr(&f->resp, id)->value));
	}
	assert_null(sip_msg_hdr(m, SIP_HDR_CONTACT));
	assert_int_equal(registrar_failed_answer(f->req, strlen(f->req), fail,
						 sizeof(fail)),
			 -EINVAL);
	assert_int_equal(registrar_failed_answer(f->out, f->res.len, fail, 40),
			 -ENOSPC);

	registrar_destroy(f->reg);
	loc_store_destroy(f->store);
	remove_db(dbp);
	f->reg = plain;
	f->store = mem;
	free(m);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_foreign_domain),
		T(test_configured_domain),
		T(test_to_other_domain),
		T(test_to_not_sip),
		T(test_require_unknown),
		T(test_not_register),
		T(test_create_bad),
		T(test_default_expiry_and_date),
		T(test_expires_header_and_param),
		T(test_max_expiry_capped),
		T(test_interval_too_brief),
		cmocka_unit_test_setup_teardown(test_configured_bounds,
						setup_custom, teardown),
		T(test_reconfigure),
		T(test_bad_expires),
		T(test_remove_one),
		T(test_star),
		T(test_star_invalid),
		T(test_star_ordering),
		T(test_bad_contact),
		T(test_too_many_contacts),
		T(test_q_and_query),
		T(test_refresh),
		T(test_ordering),
		T(test_all_or_nothing),
		T(test_duplicate_contact),
		T(test_path),
		T(test_path_unsupported),
		T(test_flow_stored),
		T(test_instance_reg_id),
		T(test_auth_challenge_then_ok),
		T(test_auth_wrong_password_unknown_user),
		T(test_auth_user_mismatch),
		T(test_auth_stale_nonce),
		T(test_auth_malformed),
		T(test_auth_limiter),
		T(test_auth_off),
		T(test_durable_pending),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
