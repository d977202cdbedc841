/** @file test_location.c  Unit tests for the location store: bindings
 * added, refreshed and removed, §19.1.4 contact equivalence, RFC 5626
 * instance/reg-id replacement, the §10.3 ordering rule, expiry on a fake
 * clock, threads, and SQLite persistence across a close and a kill. */
#include "location/location.h"
#include "resolv/resolv.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define T0 1700000000 /* fake wall clock, seconds */

static struct loc_binding mk(const char *aor, const char *contact,
			     const char *call_id, uint32_t cseq,
			     int64_t expires)
{
	return (struct loc_binding){
		.aor = sip_str_c(aor),
		.contact = sip_str_c(contact),
		.q = 1000,
		.expires = expires,
		.call_id = sip_str_c(call_id),
		.cseq = cseq,
		.transport = SIP_TP_UDP,
		.source = SIP_STR_LIT("192.0.2.1:5060"),
		.user_agent = SIP_STR_LIT("test/1"),
	};
}

static struct loc_store *open_mem(void)
{
	struct loc_config cfg = {.now = T0};
	struct loc_store *s = NULL;
	char msg[256] = "";

	int rc = loc_store_open(&cfg, &s, msg, sizeof(msg));
	if (rc)
		fail_msg("loc_store_open: %d %s", rc, msg);
	return s;
}

/* Copies of what a lookup saw. */
#define MAXSEEN 64
struct seen {
	int n;
	struct {
		char contact[128];
		char call_id[64];
		char instance[80];
		char path[128];
		char source[64];
		uint16_t q;
		int64_t expires;
		uint32_t cseq;
		uint32_t reg_id;
		uint64_t conn_id;
	} b[MAXSEEN];
};

static void cp(char *dst, size_t cap, sip_str s)
{
	snprintf(dst, cap, "%.*s", SIP_STR_FMT(s));
}

static int collect(const struct loc_binding *b, void *arg)
{
	struct seen *sn = arg;

	if (sn->n >= MAXSEEN)
		return 1;
	cp(sn->b[sn->n].contact, sizeof(sn->b[0].contact), b->contact);
	cp(sn->b[sn->n].call_id, sizeof(sn->b[0].call_id), b->call_id);
	cp(sn->b[sn->n].instance, sizeof(sn->b[0].instance), b->instance);
	cp(sn->b[sn->n].path, sizeof(sn->b[0].path), b->path);
	cp(sn->b[sn->n].source, sizeof(sn->b[0].source), b->source);
	sn->b[sn->n].q = b->q;
	sn->b[sn->n].expires = b->expires;
	sn->b[sn->n].cseq = b->cseq;
	sn->b[sn->n].reg_id = b->reg_id;
	sn->b[sn->n].conn_id = b->conn_id;
	sn->n++;
	return 0;
}

static struct seen lookup(struct loc_store *s, const char *aor, int64_t now)
{
	struct seen sn;

	memset(&sn, 0, sizeof(sn));
	int n = loc_store_lookup(s, sip_str_c(aor), now, collect, &sn);
	assert_int_equal(n, sn.n);
	return sn;
}

/* ------------------------------------------------------------------------ */
/* Bindings                                                                 */
/* ------------------------------------------------------------------------ */

static void test_add_refresh(void **state)
{
	(void)state;
	struct loc_store *s = open_mem();
	struct loc_binding b =
		mk("sip:alice@example.com", "sip:alice@192.0.2.1:5060",
		   "c1@host", 1, T0 + 3600);

	b.path = SIP_STR_LIT("<sip:edge1.example.com;lr>, <sip:p2;lr>");
	b.conn_id = 42;
	assert_int_equal(loc_store_save(s, &b), LOC_SAVE_ADDED);
	struct seen sn = lookup(s, "sip:alice@example.com", T0);
	assert_int_equal(sn.n, 1);
	assert_string_equal(sn.b[0].contact, "sip:alice@192.0.2.1:5060");
	assert_string_equal(sn.b[0].call_id, "c1@host");
	assert_string_equal(sn.b[0].path,
			    "<sip:edge1.example.com;lr>, <sip:p2;lr>");
	assert_string_equal(sn.b[0].source, "192.0.2.1:5060");
	assert_int_equal(sn.b[0].expires, T0 + 3600);
	assert_int_equal(sn.b[0].conn_id, 42);
	assert_int_equal(sn.b[0].q, 1000);

	/* refresh: same contact, same Call-ID, higher CSeq */
	b.cseq = 2;
	b.expires = T0 + 7200;
	b.q = 500;
	assert_int_equal(loc_store_save(s, &b), LOC_SAVE_UPDATED);
	sn = lookup(s, "sip:alice@example.com", T0);
	assert_int_equal(sn.n, 1);
	assert_int_equal(sn.b[0].expires, T0 + 7200);
	assert_int_equal(sn.b[0].cseq, 2);
	assert_int_equal(sn.b[0].q, 500);
	assert_int_equal(loc_store_count(s), 1);

	/* nothing for another AOR, and the AOR is compared exactly */
	assert_int_equal(lookup(s, "sip:bob@example.com", T0).n, 0);
	assert_int_equal(lookup(s, "sip:Alice@example.com", T0).n, 0);
	loc_store_destroy(s);
}

static void test_several_contacts_and_aors(void **state)
{
	(void)state;
	struct loc_store *s = open_mem();
	static const char *const contacts[] = {
		"sip:alice@192.0.2.1", "sip:alice@192.0.2.2:5070",
		"sips:alice@desk.example.com", "tel:+1-201-555-0123"};
	static const uint16_t qs[] = {1000, 700, 0, 100};

	for (int i = 0; i < 4; i++) {
		struct loc_binding b = mk("sip:alice@example.com", contacts[i],
					  "c1", (uint32_t)i + 1, T0 + 100);
		b.q = qs[i];
		assert_int_equal(loc_store_save(s, &b), LOC_SAVE_ADDED);
	}
	for (int i = 0; i < 10; i++) {
		char aor[64];
		snprintf(aor, sizeof(aor), "sip:user%d@example.com", i);
		struct loc_binding b =
			mk(aor, "sip:u@192.0.2.9", "cx", 1, T0 + 100);
		assert_int_equal(loc_store_save(s, &b), LOC_SAVE_ADDED);
	}
	struct seen sn = lookup(s, "sip:alice@example.com", T0);
	assert_int_equal(sn.n, 4);
	for (int i = 0; i < 4; i++) {
		/* kept in the order added, with their q */
		assert_string_equal(sn.b[i].contact, contacts[i]);
		assert_int_equal(sn.b[i].q, qs[i]);
	}
	assert_int_equal(lookup(s, "sip:user7@example.com", T0).n, 1);
	assert_int_equal(loc_store_count(s), 14);
	loc_store_destroy(s);
}

static void test_remove(void **state)
{
	(void)state;
	struct loc_store *s = open_mem();
	sip_str aor = SIP_STR_LIT("sip:carol@example.com");

	for (int i = 0; i < 3; i++) {
		char c[64];
		snprintf(c, sizeof(c), "sip:carol@192.0.2.%d", i + 1);
		struct loc_binding b =
			mk("sip:carol@example.com", c, "c1", 10, T0 + 60);
		assert_int_equal(loc_store_save(s, &b), LOC_SAVE_ADDED);
	}
	struct loc_binding other = mk("sip:dave@example.com",
				      "sip:dave@192.0.2.7", "d", 1, T0 + 60);
	assert_int_equal(loc_store_save(s, &other), LOC_SAVE_ADDED);

	/* one, by an equivalent URI (§19.1.4: host case) */
	assert_int_equal(loc_store_remove(s, aor,
					  SIP_STR_LIT("SIP:carol@192.0.2.2"),
					  SIP_STR_NULL, 0),
			 0);
	assert_int_equal(loc_store_remove(s, aor,
					  SIP_STR_LIT("sip:carol@192.0.2.2"),
					  SIP_STR_NULL, 0),
			 -ENOENT);
	assert_int_equal(loc_store_remove(s, SIP_STR_LIT("sip:nobody@x"),
					  SIP_STR_LIT("sip:carol@192.0.2.1"),
					  SIP_STR_NULL, 0),
			 -ENOENT);
	assert_int_equal(loc_store_remove(s, aor, SIP_STR_LIT("not a uri"),
					  SIP_STR_NULL, 0),
			 -EINVAL);
	assert_int_equal(lookup(s, "sip:carol@example.com", T0).n, 2);

	/* wildcard: every binding of the AOR, the others stay */
	assert_int_equal(loc_store_remove_aor(s, aor, SIP_STR_LIT("c2"), 1), 2);
	assert_int_equal(lookup(s, "sip:carol@example.com", T0).n, 0);
	assert_int_equal(loc_store_remove_aor(s, aor, SIP_STR_NULL, 0), 0);
	assert_int_equal(loc_store_count(s), 1);
	assert_int_equal(lookup(s, "sip:dave@example.com", T0).n, 1);

	/* the AOR can be registered again after */
	struct loc_binding b = mk("sip:carol@example.com",
				  "sip:carol@192.0.2.1", "c3", 1, T0 + 60);
	assert_int_equal(loc_store_save(s, &b), LOC_SAVE_ADDED);
	loc_store_destroy(s);
}

static void test_uri_equivalence(void **state)
{
	(void)state;
	struct loc_store *s = open_mem();
	struct loc_binding b =
		mk("sip:bob@example.com", "sip:bob@Host;transport=udp", "c", 1,
		   T0 + 60);

	assert_int_equal(loc_store_save(s, &b), LOC_SAVE_ADDED);
	b.contact = SIP_STR_LIT("sip:bob@host;transport=UDP");
	b.cseq = 2;
	assert_int_equal(loc_store_save(s, &b), LOC_SAVE_UPDATED);
	b.contact = SIP_STR_LIT("sip:%62ob@HOST;Transport=udp");
	b.cseq = 3;
	assert_int_equal(loc_store_save(s, &b), LOC_SAVE_UPDATED);
	struct seen sn = lookup(s, "sip:bob@example.com", T0);
	assert_int_equal(sn.n, 1);
	/* the text of the latest REGISTER is what is kept */
	assert_string_equal(sn.b[0].contact, "sip:%62ob@HOST;Transport=udp");

	/* not equivalent: user case, explicit port, transport, scheme */
	static const char *const differ[] = {
		"sip:BOB@host;transport=udp", "sip:bob@host:5060;transport=udp",
		"sip:bob@host;transport=tcp", "sips:bob@host;transport=udp"};
	for (size_t i = 0; i < 4; i++) {
		b.contact = sip_str_c(differ[i]);
		b.cseq++;
		assert_int_equal(loc_store_save(s, &b), LOC_SAVE_ADDED);
	}
	assert_int_equal(lookup(s, "sip:bob@example.com", T0).n, 5);
	loc_store_destroy(s);
}

static void test_instance_reg_id(void **state)
{
	(void)state;
	struct loc_store *s = open_mem();
	const char *inst =
		"\"<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>\"";
	struct loc_binding b =
		mk("sip:eve@example.com", "sip:eve@192.0.2.5:5060;ob", "boot1",
		   1, T0 + 600);

	/* two flows of one device: same contact, reg-id 1 and 2 */
	b.instance = sip_str_c(inst);
	b.reg_id = 1;
	b.conn_id = 11;
	assert_int_equal(loc_store_save(s, &b), LOC_SAVE_ADDED);
	b.reg_id = 2;
	b.conn_id = 12;
	b.cseq = 2;
	assert_int_equal(loc_store_save(s, &b), LOC_SAVE_ADDED);

	/* the device reboots (new Call-ID, CSeq back to 1) and registers
	 * flow 1 from a new address: it replaces its own binding */
	b.contact = SIP_STR_LIT("sip:eve@198.51.100.7:40000;ob");
	b.call_id = SIP_STR_LIT("boot2");
	b.cseq = 1;
	b.reg_id = 1;
	b.conn_id = 21;
	assert_int_equal(loc_store_save(s, &b), LOC_SAVE_UPDATED);
	struct seen sn = lookup(s, "sip:eve@example.com", T0);
	assert_int_equal(sn.n, 2);
	assert_string_equal(sn.b[0].contact, "sip:eve@198.51.100.7:40000;ob");
	assert_int_equal(sn.b[0].reg_id, 1);
	assert_int_equal(sn.b[0].conn_id, 21);
	assert_string_equal(sn.b[0].instance, inst);
	assert_string_equal(sn.b[1].contact, "sip:eve@192.0.2.5:5060;ob");
	assert_int_equal(sn.b[1].conn_id, 12);

	/* another device with the same contact URI is another binding */
	b.instance = SIP_STR_LIT("\"<urn:uuid:11111111-0000-1000-8000-"
				 "000000000001>\"");
	b.call_id = SIP_STR_LIT("other");
	assert_int_equal(loc_store_save(s, &b), LOC_SAVE_ADDED);

	/* +sip.instance without reg-id: matched by contact URI (RFC 3261) */
	struct loc_binding g =
		mk("sip:gru@example.com", "sip:g@192.0.2.8", "g", 1, T0 + 60);
	g.instance = sip_str_c(inst);
	assert_int_equal(loc_store_save(s, &g), LOC_SAVE_ADDED);
	g.contact = SIP_STR_LIT("sip:g@192.0.2.9");
	g.cseq = 2;
	assert_int_equal(loc_store_save(s, &g), LOC_SAVE_ADDED);
	g.cseq = 3;
	assert_int_equal(loc_store_save(s, &g), LOC_SAVE_UPDATED);
	assert_int_equal(loc_store_count(s), 5);
	loc_store_destroy(s);
}

static void test_order_rule(void **state)
{
	(void)state;
	sip_str a = SIP_STR_LIT("abc@h"), b = SIP_STR_LIT("ABC@h");

	assert_int_equal(loc_order_check(a, 5, a, 6), LOC_ORDER_ACCEPT);
	assert_int_equal(loc_order_check(a, 5, a, 5), LOC_ORDER_STALE);
	assert_int_equal(loc_order_check(a, 5, a, 4), LOC_ORDER_STALE);
	/* a different Call-ID (case counts, §20.8) replaces, any CSeq */
	assert_int_equal(loc_order_check(a, 5, b, 1), LOC_ORDER_ACCEPT);
	assert_int_equal(loc_order_check(a, 5, SIP_STR_LIT("x"), 5),
			 LOC_ORDER_ACCEPT);

	struct loc_store *s = open_mem();
	sip_str aor = SIP_STR_LIT("sip:frank@example.com");
	struct loc_binding r = mk("sip:frank@example.com", "sip:f@192.0.2.1",
				  "cid", 10, T0 + 60);
	assert_int_equal(loc_store_save(s, &r), LOC_SAVE_ADDED);
	/* a late retransmission or reordered REGISTER must not win */
	r.cseq = 10;
	r.expires = T0 + 9999;
	assert_int_equal(loc_store_save(s, &r), -ESTALE);
	r.cseq = 9;
	assert_int_equal(loc_store_save(s, &r), -ESTALE);
	assert_int_equal(lookup(s, "sip:frank@example.com", T0).b[0].expires,
			 T0 + 60);
	/* removal follows the same rule */
	assert_int_equal(loc_store_remove(s, aor, r.contact, r.call_id, 10),
			 -ESTALE);
	assert_int_equal(loc_store_remove_aor(s, aor, r.call_id, 10), -ESTALE);
	assert_int_equal(loc_store_count(s), 1);
	/* another Call-ID with a lower CSeq replaces */
	r.call_id = SIP_STR_LIT("cid2");
	r.cseq = 1;
	assert_int_equal(loc_store_save(s, &r), LOC_SAVE_UPDATED);
	assert_int_equal(lookup(s, "sip:frank@example.com", T0).b[0].expires,
			 T0 + 9999);
	/* step 6 for '*': all removed only if each passes */
	struct loc_binding r2 = mk("sip:frank@example.com", "sip:f@192.0.2.2",
				   "cid3", 50, T0 + 60);
	assert_int_equal(loc_store_save(s, &r2), LOC_SAVE_ADDED);
	assert_int_equal(loc_store_remove_aor(s, aor, SIP_STR_LIT("cid3"), 50),
			 -ESTALE);
	assert_int_equal(loc_store_count(s), 2);
	assert_int_equal(loc_store_remove_aor(s, aor, SIP_STR_LIT("cid3"), 51),
			 2);
	/* an empty Call-ID skips the rule (administrative writes) */
	r.call_id = SIP_STR_NULL;
	assert_int_equal(loc_store_save(s, &r), LOC_SAVE_ADDED);
	assert_int_equal(loc_store_save(s, &r), LOC_SAVE_UPDATED);
	loc_store_destroy(s);
}

struct expired {
	int n;
	char aor[8][64];
	char contact[8][64];
};

static int on_expired(const struct loc_binding *b, void *arg)
{
	struct expired *e = arg;

	if (e->n < 8) {
		cp(e->aor[e->n], sizeof(e->aor[0]), b->aor);
		cp(e->contact[e->n], sizeof(e->contact[0]), b->contact);
	}
	e->n++;
	return 1; /* ignored by expire */
}

static void test_expiry_fake_clock(void **state)
{
	(void)state;
	struct loc_store *s = open_mem();
	struct expired e;
	int64_t now = T0;

	struct loc_binding a1 = mk("sip:a@x", "sip:a1@h", "a", 1, now + 30);
	struct loc_binding a2 = mk("sip:a@x", "sip:a2@h", "a", 2, now + 60);
	struct loc_binding b1 = mk("sip:b@x", "sip:b1@h", "b", 1, now + 10);
	assert_int_equal(loc_store_save(s, &a1), LOC_SAVE_ADDED);
	assert_int_equal(loc_store_save(s, &a2), LOC_SAVE_ADDED);
	assert_int_equal(loc_store_save(s, &b1), LOC_SAVE_ADDED);

	memset(&e, 0, sizeof(e));
	assert_int_equal(loc_store_expire(s, now + 9, on_expired, &e), 0);
	assert_int_equal(e.n, 0);
	/* lookups hide what has passed even before the sweep */
	assert_int_equal(lookup(s, "sip:b@x", now + 10).n, 0);
	assert_int_equal(lookup(s, "sip:a@x", now + 30).n, 1);
	assert_int_equal(loc_store_expire(s, now + 10, on_expired, &e), 1);
	assert_int_equal(e.n, 1);
	assert_string_equal(e.aor[0], "sip:b@x");
	assert_string_equal(e.contact[0], "sip:b1@h");
	assert_int_equal(loc_store_count(s), 2);

	/* a refresh moves the expiry (the heap follows) */
	a1.cseq = 3;
	a1.expires = now + 100;
	assert_int_equal(loc_store_save(s, &a1), LOC_SAVE_UPDATED);
	memset(&e, 0, sizeof(e));
	assert_int_equal(loc_store_expire(s, now + 60, on_expired, &e), 1);
	assert_string_equal(e.contact[0], "sip:a2@h");
	assert_int_equal(loc_store_expire(s, now + 99, NULL, NULL), 0);
	assert_int_equal(loc_store_expire(s, now + 1000, on_expired, &e), 1);
	assert_string_equal(e.contact[1], "sip:a1@h");
	assert_int_equal(loc_store_count(s), 0);
	assert_int_equal(lookup(s, "sip:a@x", now).n, 0);

	/* many, in shuffled order: each comes out at its time */
	for (int i = 0; i < 1000; i++) {
		char aor[32];
		int t = (i * 7919) % 1000;
		snprintf(aor, sizeof(aor), "sip:u%d@x", i % 37);
		char c[32];
		snprintf(c, sizeof(c), "sip:c%d@h", i);
		struct loc_binding b = mk(aor, c, "", 0, now + 1 + t);
		assert_int_equal(loc_store_save(s, &b), LOC_SAVE_ADDED);
	}
	size_t total = 0;
	for (int t = 1; t <= 1000; t++) {
		size_t n = loc_store_expire(s, now + t, NULL, NULL);
		assert_int_equal(n, 1);
		total += n;
	}
	assert_int_equal(total, 1000);
	assert_int_equal(loc_store_count(s), 0);
	loc_store_destroy(s);
}

static void test_invalid_and_limits(void **state)
{
	(void)state;
	struct loc_config cfg = {.now = T0, .max_per_aor = 3};
	struct loc_store *s = NULL;
	assert_int_equal(loc_store_open(&cfg, &s, NULL, 0), 0);

	struct loc_binding b = mk("sip:h@x", "sip:h@192.0.2.1", "c", 1, T0);
	b.contact = SIP_STR_LIT("sip:h@bad host");
	assert_int_equal(loc_store_save(s, &b), -EINVAL);
	b.contact = SIP_STR_LIT("sip:h@h");
	b.q = 1001;
	assert_int_equal(loc_store_save(s, &b), -EINVAL);
	b.q = 0;
	b.aor = SIP_STR_NULL;
	assert_int_equal(loc_store_save(s, &b), -EINVAL);
	b.aor = SIP_STR_LIT("sip:h@x");
	static char big[LOC_MAX_FIELD + 1];
	memset(big, 'a', sizeof(big));
	b.user_agent = (sip_str){big, sizeof(big)};
	assert_int_equal(loc_store_save(s, &b), -E2BIG);
	b.user_agent = SIP_STR_NULL;
	for (int i = 0; i < 4; i++) {
		char c[32];
		snprintf(c, sizeof(c), "sip:h%d@h", i);
		b.contact = sip_str_c(c);
		assert_int_equal(loc_store_save(s, &b),
				 i < 3 ? LOC_SAVE_ADDED : -E2BIG);
	}
	assert_int_equal(loc_store_count(s), 3);
	loc_store_destroy(s);
	loc_store_destroy(NULL);

	cfg.max_per_aor = 100000;
	char msg[128] = "";
	assert_int_equal(loc_store_open(&cfg, &s, msg, sizeof(msg)), -EINVAL);
	assert_true(strlen(msg) > 0);
}

static void test_aor_canon(void **state)
{
	(void)state;
	char out[64];

	assert_int_equal(loc_aor_canon(SIP_STR_LIT("SIP:Alice@Example.COM;"
						   "transport=tcp?subject=x"),
				       out, sizeof(out)),
			 (int)strlen("sip:Alice@example.com"));
	assert_string_equal(out, "sip:Alice@example.com");
	assert_true(loc_aor_canon(SIP_STR_LIT("sips:%61lice:pw@host:5061;"
					      "user=phone"),
				  out, sizeof(out)) > 0);
	assert_string_equal(out, "sips:alice@host:5061");
	assert_true(loc_aor_canon(SIP_STR_LIT("sip:[2001:DB8::1]"), out,
				  sizeof(out)) > 0);
	assert_string_equal(out, "sip:[2001:db8::1]");
	assert_int_equal(
		loc_aor_canon(SIP_STR_LIT("tel:+1234"), out, sizeof(out)),
		-EINVAL);
	assert_int_equal(loc_aor_canon(SIP_STR_LIT("sip:a@b"), out, 7),
			 -ENOSPC);
	assert_int_equal(loc_aor_canon(SIP_STR_LIT("sip:a@b"), out, 8), 7);
}

static int count_cb(const struct loc_binding *b, void *arg)
{
	(void)b;
	(*(int *)arg)++;
	return 0;
}

static int stop_cb(const struct loc_binding *b, void *arg)
{
	(void)b;
	(*(int *)arg)++;
	return 1;
}

static void test_foreach(void **state)
{
	(void)state;
	struct loc_store *s = open_mem();
	int n = 0;

	for (int i = 0; i < 500; i++) {
		char aor[32], c[32];
		snprintf(aor, sizeof(aor), "sip:u%d@x", i / 3);
		snprintf(c, sizeof(c), "sip:c%d@h", i);
		struct loc_binding b = mk(aor, c, "", 0, T0 + 60);
		assert_int_equal(loc_store_save(s, &b), LOC_SAVE_ADDED);
	}
	assert_int_equal(loc_store_foreach(s, count_cb, &n), 500);
	assert_int_equal(n, 500);
	n = 0;
	assert_int_equal(loc_store_foreach(s, stop_cb, &n), 1);
	assert_int_equal(n, 1);
	n = 0;
	assert_int_equal(
		loc_store_lookup(s, SIP_STR_LIT("sip:u1@x"), T0, stop_cb, &n),
		1);
	assert_int_equal(loc_store_count(s), 500);
	loc_store_destroy(s);
}

/* ------------------------------------------------------------------------ */
/* Threads                                                                  */
/* ------------------------------------------------------------------------ */

struct worker {
	struct loc_store *s;
	long ops;
	long eagain; /* persistence queue full: a normal answer */
	unsigned seed;
	int errors;
};

static int check_cb(const struct loc_binding *b, void *arg)
{
	int *bad = arg;

	if (b->aor.len < 5 || memcmp(b->aor.p, "sip:", 4) != 0 ||
	    b->contact.len < 5 || memcmp(b->contact.p, "sip:", 4) != 0)
		(*bad)++;
	return 0;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		for (int k = 0; k < 200; k++) {
			char aor[32], c[32];
			unsigned r = rand_r(&w->seed);
			snprintf(aor, sizeof(aor), "sip:shared%u@x", r % 16);
			snprintf(c, sizeof(c), "sip:c%u@h", (r >> 8) % 8);
			int rc;
			switch ((r >> 16) % 4) {
			case 0:
			case 1: {
				struct loc_binding b =
					mk(aor, c, "", 0, T0 + (r >> 20) % 50);
				rc = loc_store_save(w->s, &b);
				if (rc == -EAGAIN)
					w->eagain++;
				else if (rc != LOC_SAVE_ADDED &&
					 rc != LOC_SAVE_UPDATED)
					w->errors++;
				break;
			}
			case 2: {
				int bad = 0;
				loc_store_lookup(w->s, sip_str_c(aor), T0,
						 check_cb, &bad);
				w->errors += bad;
				break;
			}
			default:
				if ((r >> 20) % 8 == 0)
					rc = loc_store_remove_aor(
						w->s, sip_str_c(aor),
						SIP_STR_NULL, 0);
				else
					rc = loc_store_remove(
						w->s, sip_str_c(aor),
						sip_str_c(c), SIP_STR_NULL, 0);
				if (rc == -EAGAIN)
					w->eagain++;
				else if (rc < 0 && rc != -ENOENT)
					w->errors++;
				if ((r >> 20) % 64 == 1)
					loc_store_expire(w->s, T0 + 10, NULL,
							 NULL);
			}
			w->ops++;
		}
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while ((t.tv_sec - t0.tv_sec) * 1000 +
			 (t.tv_nsec - t0.tv_nsec) / 1000000 <
		 500);
	return NULL;
}

static void run_threads(struct loc_store *s)
{
	struct worker w[4];
	pthread_t th[4];
	long ops = 0, eagain = 0;
	int n = 0;

	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){.s = s, .seed = 1234u + (unsigned)i};
		assert_int_equal(
			pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(w[i].errors, 0);
		ops += w[i].ops;
		eagain += w[i].eagain;
	}
	print_message("%ld operations, %ld refused with -EAGAIN\n", ops,
		      eagain);
	assert_true(ops > 1000);
	/* the structures agree with each other afterwards */
	assert_int_equal((size_t)loc_store_foreach(s, count_cb, &n),
			 loc_store_count(s));
	assert_true(loc_store_count(s) <= (size_t)16 * 8);
	loc_store_expire(s, T0 + 1000, NULL, NULL);
	assert_int_equal(loc_store_count(s), 0);
}

static void test_threads_memory(void **state)
{
	(void)state;
	struct loc_store *s = open_mem();

	run_threads(s);
	loc_store_destroy(s);
}

/* ------------------------------------------------------------------------ */
/* Persistence                                                              */
/* ------------------------------------------------------------------------ */

struct tmp {
	char dir[64];
	char db[96];
};

static int tmp_setup(void **state)
{
	struct tmp *t = calloc(1, sizeof(*t));

	if (!t)
		return -1;
	snprintf(t->dir, sizeof(t->dir), "/tmp/test_location.XXXXXX");
	if (!mkdtemp(t->dir)) {
		free(t);
		return -1;
	}
	snprintf(t->db, sizeof(t->db), "%s/loc.db", t->dir);
	*state = t;
	return 0;
}

static int tmp_teardown(void **state)
{
	struct tmp *t = *state;
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
	if (system(cmd) != 0)
		return -1;
	free(t);
	return 0;
}

static struct loc_store *open_db(const char *path, int64_t now)
{
	struct loc_config cfg = {.db_path = path, .now = now};
	struct loc_store *s = NULL;
	char msg[256] = "";

	int rc = loc_store_open(&cfg, &s, msg, sizeof(msg));
	if (rc)
		fail_msg("loc_store_open(%s): %d %s", path, rc, msg);
	return s;
}

static void add_many(struct loc_store *s, int n, int64_t now)
{
	for (int i = 0; i < n; i++) {
		char aor[32], c[48], cid[32];
		snprintf(aor, sizeof(aor), "sip:user%d@example.com", i / 2);
		snprintf(c, sizeof(c), "sip:user%d@192.0.2.%d:%d", i, i % 250,
			 5060 + i);
		snprintf(cid, sizeof(cid), "call-%d", i);
		struct loc_binding b = mk(aor, c, cid, (uint32_t)i + 1,
					  now + 60 + (int64_t)(i % 500) * 7);
		b.q = (uint16_t)(i % 1001);
		b.reg_id = (uint32_t)(i % 3);
		b.instance =
			i % 3 ? SIP_STR_LIT("\"<urn:uuid:1>\"") : SIP_STR_NULL;
		b.path = i % 5 ? SIP_STR_NULL : SIP_STR_LIT("<sip:edge;lr>");
		b.conn_id = (uint64_t)i + 100;
		b.transport = SIP_TP_TCP;
		/* reg-id i%3 with one instance per AOR of two: distinct */
		assert_int_equal(loc_store_save(s, &b), LOC_SAVE_ADDED);
	}
}

/* Every binding add_many(n, now) wrote is there, with its fields. */
static void check_many(struct loc_store *s, int n, int64_t now)
{
	assert_int_equal(loc_store_count(s), n);
	for (int i = 0; i < n; i += 2) {
		char aor[32];
		snprintf(aor, sizeof(aor), "sip:user%d@example.com", i / 2);
		struct seen sn = lookup(s, aor, now);
		assert_int_equal(sn.n, i + 1 < n ? 2 : 1);
		for (int k = 0; k < sn.n; k++) {
			int j = i + k;
			char c[48];
			snprintf(c, sizeof(c), "sip:user%d@192.0.2.%d:%d", j,
				 j % 250, 5060 + j);
			assert_string_equal(sn.b[k].contact, c);
			assert_int_equal(sn.b[k].expires,
					 now + 60 + (int64_t)(j % 500) * 7);
			assert_int_equal(sn.b[k].q, j % 1001);
			assert_int_equal(sn.b[k].cseq, j + 1);
			assert_int_equal(sn.b[k].reg_id, j % 3);
			assert_string_equal(sn.b[k].path,
					    j % 5 ? "" : "<sip:edge;lr>");
			/* connections do not survive a restart */
			assert_int_equal(sn.b[k].conn_id, 0);
		}
	}
}

static void test_persist_reopen(void **state)
{
	struct tmp *t = *state;
	int64_t now = (int64_t)time(NULL);
	struct loc_store *s = open_db(t->db, now);

	add_many(s, 1000, now);
	/* a removal and a refresh are persisted too */
	struct loc_binding x =
		mk("sip:gone@example.com", "sip:g@h", "g", 1, now + 100);
	assert_int_equal(loc_store_save(s, &x), LOC_SAVE_ADDED);
	assert_int_equal(loc_store_remove(s, x.aor, x.contact, SIP_STR_NULL, 0),
			 0);
	struct loc_binding w =
		mk("sip:wild@example.com", "sip:w@h", "w", 1, now + 100);
	assert_int_equal(loc_store_save(s, &w), LOC_SAVE_ADDED);
	assert_int_equal(loc_store_remove_aor(s, w.aor, SIP_STR_NULL, 0), 1);
	assert_int_equal(loc_store_flush(s), 0);
	loc_store_destroy(s);

	/* a restart a little later: absolute expiries are unchanged, so the
	 * remaining time is what it was minus the time that passed */
	int64_t later = (int64_t)time(NULL);
	s = open_db(t->db, later);
	check_many(s, 1000, now);
	assert_int_equal(lookup(s, "sip:gone@example.com", later).n, 0);
	assert_int_equal(lookup(s, "sip:wild@example.com", later).n, 0);
	assert_true(later - now <= 1);

	/* new bindings get fresh row ids: nothing is overwritten */
	struct loc_binding y =
		mk("sip:new@example.com", "sip:n@h", "n", 1, now + 100);
	assert_int_equal(loc_store_save(s, &y), LOC_SAVE_ADDED);
	loc_store_destroy(s); /* destroy flushes */
	s = open_db(t->db, later);
	assert_int_equal(loc_store_count(s), 1001);
	loc_store_destroy(s);
}

static void test_persist_expired_not_loaded(void **state)
{
	struct tmp *t = *state;
	struct loc_store *s = open_db(t->db, T0);

	for (int i = 0; i < 100; i++) {
		char c[32];
		snprintf(c, sizeof(c), "sip:c%d@h", i);
		char aor[32];
		snprintf(aor, sizeof(aor), "sip:x%d@y", i / 10);
		struct loc_binding b = mk(aor, c, "", 0, T0 + i + 1);
		assert_int_equal(loc_store_save(s, &b), LOC_SAVE_ADDED);
	}
	/* expire() drops rows too (a purge is queued) */
	assert_int_equal(loc_store_expire(s, T0 + 10, NULL, NULL), 10);
	assert_int_equal(loc_store_flush(s), 0);
	loc_store_destroy(s);

	s = open_db(t->db, T0 + 50); /* rows expiring at or before: gone */
	assert_int_equal(loc_store_count(s), 50);
	assert_int_equal(lookup(s, "sip:x4@y", T0 + 50).n, 0);
	assert_int_equal(lookup(s, "sip:x5@y", T0 + 50).n, 10);
	loc_store_destroy(s);

	sqlite3 *db;
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_open(t->db, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM bindings",
					    -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 50);
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static void test_persist_killed(void **state)
{
	struct tmp *t = *state;
	int64_t now = (int64_t)time(NULL);
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		struct loc_config cfg = {.db_path = t->db, .now = now};
		struct loc_store *s = NULL;

		if (loc_store_open(&cfg, &s, NULL, 0))
			_exit(2);
		add_many(s, 1000, now);
		if (loc_store_flush(s))
			_exit(3);
		/* more, unflushed: may or may not be there */
		kill(getpid(), SIGKILL);
		_exit(4);
	}
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGKILL);

	struct loc_store *s = open_db(t->db, now);
	check_many(s, 1000, now);
	loc_store_destroy(s);
}

static void test_persist_errors(void **state)
{
	struct tmp *t = *state;
	struct loc_config cfg = {.now = T0};
	struct loc_store *s = NULL;
	char msg[256] = "";
	char path[128], garbage[128], newer[128];
	int rc;

	/* missing directory */
	snprintf(path, sizeof(path), "%s/no/such/dir/loc.db", t->dir);
	cfg.db_path = path;
	rc = loc_store_open(&cfg, &s, msg, sizeof(msg));
	assert_true(rc < 0);
	assert_null(s);
	assert_non_null(strstr(msg, path));

	/* a directory */
	cfg.db_path = t->dir;
	msg[0] = '\0';
	rc = loc_store_open(&cfg, &s, msg, sizeof(msg));
	assert_true(rc < 0);
	assert_true(strlen(msg) > 0);

	/* not a database */
	snprintf(garbage, sizeof(garbage), "%s/garbage.db", t->dir);
	FILE *f = fopen(garbage, "w");
	assert_non_null(f);
	for (int i = 0; i < 512; i++)
		fputs("this is not an sqlite database\n", f);
	fclose(f);
	cfg.db_path = garbage;
	msg[0] = '\0';
	rc = loc_store_open(&cfg, &s, msg, sizeof(msg));
	assert_int_equal(rc, -EBADMSG);
	assert_non_null(strstr(msg, "garbage.db"));

	/* a schema from a newer build */
	snprintf(newer, sizeof(newer), "%s/newer.db", t->dir);
	sqlite3 *db;
	assert_int_equal(sqlite3_open(newer, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
				      "CREATE TABLE schema_version (version "
				      "INTEGER NOT NULL);"
				      "INSERT INTO schema_version VALUES (99)",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	msg[0] = '\0';
	rc = loc_store_open(&cfg, &s, msg, sizeof(msg));
	assert_int_equal(rc, -EBADMSG); /* still garbage.db */
	cfg.db_path = newer;
	rc = loc_store_open(&cfg, &s, msg, sizeof(msg));
	assert_int_equal(rc, -ENOTSUP);
	assert_non_null(strstr(msg, "99"));
	assert_null(s);
}

static void test_persist_queue_full(void **state)
{
	struct tmp *t = *state;
	struct loc_config cfg = {
		.db_path = t->db, .now = T0, .queue_max = 4, .batch_ms = 2000};
	struct loc_store *s = NULL;

	assert_int_equal(loc_store_open(&cfg, &s, NULL, 0), 0);
	/* the writer holds its first batch open for batch_ms: the queue
	 * fills and the fifth change is refused, memory unchanged */
	int rc = 0, i;
	for (i = 0; i < 5 && rc >= 0; i++) {
		char c[32];
		snprintf(c, sizeof(c), "sip:c%d@h", i);
		struct loc_binding b = mk("sip:q@x", c, "", 0, T0 + 100);
		rc = loc_store_save(s, &b);
	}
	assert_int_equal(rc, -EAGAIN);
	assert_int_equal(i, 5);
	assert_int_equal(loc_store_count(s), 4);
	assert_int_equal(loc_store_flush(s), 0);
	struct loc_binding b = mk("sip:q@x", "sip:c4@h", "", 0, T0 + 100);
	assert_int_equal(loc_store_save(s, &b), LOC_SAVE_ADDED);
	loc_store_destroy(s);
	s = open_db(t->db, T0);
	assert_int_equal(loc_store_count(s), 5);
	loc_store_destroy(s);
}

static void test_threads_persist(void **state)
{
	struct tmp *t = *state;
	struct loc_store *s = open_db(t->db, T0);

	run_threads(s);
	assert_int_equal(loc_store_flush(s), 0); /* room in the queue again */
	struct loc_binding b = mk("sip:last@x", "sip:l@h", "", 0, T0 + 5000);
	assert_int_equal(loc_store_save(s, &b), LOC_SAVE_ADDED);
	assert_int_equal(loc_store_flush(s), 0);
	loc_store_destroy(s);
	/* what the threads left (nothing, all expired by the sweep at
	 * T0 + 1000, even with the queue full then) and the last one */
	s = open_db(t->db, T0);
	assert_int_equal(loc_store_count(s), 1);
	loc_store_destroy(s);
}

/* What on_commit reported. */
struct commits {
	pthread_mutex_t mu;
	int n;
	struct {
		uint64_t first, last;
		int err;
	} v[64];
};

static void on_commit(void *arg, uint64_t first, uint64_t last, int err)
{
	struct commits *c = arg;

	pthread_mutex_lock(&c->mu);
	if (c->n < 64) {
		c->v[c->n].first = first;
		c->v[c->n].last = last;
		c->v[c->n].err = err;
		c->n++;
	}
	pthread_mutex_unlock(&c->mu);
}

static void sql(const char *path, const char *text)
{
	sqlite3 *db;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	assert_int_equal(sqlite3_exec(db, text, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

/* Sequence numbers in queue order, reported once per transaction, in
 * order; a failed transaction is reported failed and memory goes back to
 * what the database holds. */
static void test_persist_commit_hook(void **state)
{
	struct tmp *t = *state;
	static struct commits c = {.mu = PTHREAD_MUTEX_INITIALIZER};
	struct loc_config cfg = {.db_path = t->db,
				 .now = T0,
				 .on_commit = on_commit,
				 .commit_arg = &c};
	struct loc_store *s = NULL;
	uint64_t seq = 99;

	assert_int_equal(loc_store_open(&cfg, &s, NULL, 0), 0);
	struct loc_binding ok = mk("sip:ok@x", "sip:ok@h", "c1", 1, T0 + 100);
	struct loc_binding keep =
		mk("sip:keep@x", "sip:keep@h", "c2", 1, T0 + 100);
	assert_int_equal(loc_store_save_seq(s, &ok, &seq), LOC_SAVE_ADDED);
	assert_int_equal(seq, 1);
	assert_int_equal(loc_store_save_seq(s, &keep, &seq), LOC_SAVE_ADDED);
	assert_int_equal(seq, 2);
	assert_int_equal(loc_store_flush(s), 0);
	assert_true(c.n >= 1);
	assert_int_equal(c.v[0].first, 1);
	assert_int_equal(c.v[c.n - 1].last, 2);
	for (int i = 0; i < c.n; i++)
		assert_int_equal(c.v[i].err, 0);
	/* nothing changed, nothing queued */
	assert_int_equal(loc_store_remove_seq(s, SIP_STR_LIT("sip:none@x"),
					      SIP_STR_LIT("sip:n@h"),
					      SIP_STR_NULL, 0, &seq),
			 -ENOENT);
	assert_int_equal(seq, 0);

	/* the database now refuses some writes */
	sql(t->db, "CREATE TRIGGER no_ins BEFORE INSERT ON bindings "
		   "WHEN NEW.user_agent = 'refused' "
		   "BEGIN SELECT RAISE(ABORT, 'refused'); END;"
		   "CREATE TRIGGER no_del BEFORE DELETE ON bindings "
		   "WHEN OLD.aor = 'sip:keep@x' "
		   "BEGIN SELECT RAISE(ABORT, 'refused'); END;");

	/* a new binding that fails: gone from memory again */
	struct loc_binding bad = mk("sip:bad@x", "sip:bad@h", "c3", 1, T0 + 90);
	bad.user_agent = SIP_STR_LIT("refused");
	assert_int_equal(loc_store_save_seq(s, &bad, &seq), LOC_SAVE_ADDED);
	assert_int_equal(seq, 3);
	assert_int_equal(lookup(s, "sip:bad@x", T0).n, 1);
	assert_true(loc_store_flush(s) < 0);
	assert_int_equal(lookup(s, "sip:bad@x", T0).n, 0);
	assert_int_equal(c.v[c.n - 1].first, 3);
	assert_int_equal(c.v[c.n - 1].last, 3);
	assert_true(c.v[c.n - 1].err < 0);

	/* a refresh that fails: the committed binding is back as it was */
	struct loc_binding ref = ok;
	ref.cseq = 2;
	ref.expires = T0 + 500;
	ref.user_agent = SIP_STR_LIT("refused");
	assert_int_equal(loc_store_save_seq(s, &ref, &seq), LOC_SAVE_UPDATED);
	assert_int_equal(seq, 4);
	assert_int_equal(lookup(s, "sip:ok@x", T0).b[0].expires, T0 + 500);
	assert_true(loc_store_flush(s) < 0);
	struct seen sn = lookup(s, "sip:ok@x", T0);
	assert_int_equal(sn.n, 1);
	assert_int_equal(sn.b[0].expires, T0 + 100);
	assert_int_equal(sn.b[0].cseq, 1);

	/* a removal that fails: the binding is back */
	assert_int_equal(
		loc_store_remove_aor_seq(s, keep.aor, SIP_STR_NULL, 0, &seq),
		1);
	assert_int_equal(seq, 5);
	assert_true(loc_store_flush(s) < 0);
	assert_int_equal(lookup(s, "sip:keep@x", T0).n, 1);
	assert_int_equal(c.v[c.n - 1].last, 5);

	/* the database accepts again: later changes commit */
	sql(t->db, "DROP TRIGGER no_ins; DROP TRIGGER no_del;");
	assert_int_equal(loc_store_remove_seq(s, keep.aor, keep.contact,
					      SIP_STR_NULL, 0, &seq),
			 0);
	assert_int_equal(seq, 6);
	assert_int_equal(loc_store_flush(s), 0);
	assert_int_equal(c.v[c.n - 1].last, 6);
	assert_int_equal(c.v[c.n - 1].err, 0);
	loc_store_destroy(s);

	s = open_db(t->db, T0);
	assert_int_equal(loc_store_count(s), 1);
	sn = lookup(s, "sip:ok@x", T0);
	assert_int_equal(sn.n, 1);
	assert_int_equal(sn.b[0].expires, T0 + 100);
	loc_store_destroy(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_refresh),
		cmocka_unit_test(test_several_contacts_and_aors),
		cmocka_unit_test(test_remove),
		cmocka_unit_test(test_uri_equivalence),
		cmocka_unit_test(test_instance_reg_id),
		cmocka_unit_test(test_order_rule),
		cmocka_unit_test(test_expiry_fake_clock),
		cmocka_unit_test(test_invalid_and_limits),
		cmocka_unit_test(test_aor_canon),
		cmocka_unit_test(test_foreach),
		cmocka_unit_test(test_threads_memory),
		cmocka_unit_test_setup_teardown(test_persist_reopen, tmp_setup,
						tmp_teardown),
		cmocka_unit_test_setup_teardown(test_persist_expired_not_loaded,
						tmp_setup, tmp_teardown),
		cmocka_unit_test_setup_teardown(test_persist_killed, tmp_setup,
						tmp_teardown),
		cmocka_unit_test_setup_teardown(test_persist_errors, tmp_setup,
						tmp_teardown),
		cmocka_unit_test_setup_teardown(test_persist_queue_full,
						tmp_setup, tmp_teardown),
		cmocka_unit_test_setup_teardown(test_persist_commit_hook,
						tmp_setup, tmp_teardown),
		cmocka_unit_test_setup_teardown(test_threads_persist, tmp_setup,
						tmp_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
