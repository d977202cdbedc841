/** @file test_sdp.c  Unit tests of the SDP parser, helpers and writer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "sdp/sdp.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#ifndef SIPD_TEST_DATA
#define SIPD_TEST_DATA "tests/data"
#endif

/* Sessions are large: keep them out of the test stack. */
static struct sdp_session sess, sess2;
static char file_buf[8192];
static char out_buf[8192];

static void assert_str(sip_str s, const char *expect)
{
	assert_non_null(s.p);
	assert_int_equal(s.len, strlen(expect));
	assert_memory_equal(s.p, expect, s.len);
}

/** The body of a corpus message: everything after the first empty line. */
static sip_str corpus_body(const char *rel)
{
	char path[512];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/corpus/%s", SIPD_TEST_DATA, rel);
	f = fopen(path, "rb");
	assert_non_null(f);
	n = fread(file_buf, 1, sizeof(file_buf), f);
	fclose(f);
	assert_true(n < sizeof(file_buf));

	for (size_t i = 0; i + 4 <= n; i++) {
		if (memcmp(file_buf + i, "\r\n\r\n", 4) == 0) {
			sip_str body = {file_buf + i + 4, n - i - 4};
			return body;
		}
	}
	fail_msg("%s has no body", rel);
	return SIP_STR_NULL;
}

/** Parse, write, parse the output again and compare the structures. */
static void round_trip(const struct sdp_session *s)
{
	unsigned line = 99;
	int n = sdp_write(s, out_buf, sizeof(out_buf));

	assert_true(n > 0);
	assert_int_equal(strlen(out_buf), (size_t)n);
	assert_int_equal(sdp_parse(&sess2, out_buf, (size_t)n, &line), 0);
	assert_int_equal(line, 0);
	assert_true(sdp_session_equal(s, &sess2));
}

/* ------------------------------------------------------------------------ */
/* Corpus bodies                                                            */
/* ------------------------------------------------------------------------ */

static void test_rfc5118_ipv6_in_sdp(void **state)
{
	(void)state;
	sip_str body = corpus_body("rfc5118/ipv6-in-sdp.clfix.dat");
	struct sdp_rtpmap rm;
	unsigned line = 99;

	assert_int_equal(sdp_parse(&sess, body.p, body.len, &line), 0);
	assert_int_equal(line, 0);
	assert_str(sess.origin.username, "assistant");
	assert_str(sess.origin.sess_id, "971731711378798081");
	assert_str(sess.origin.sess_version, "0");
	assert_str(sess.origin.nettype, "IN");
	assert_str(sess.origin.addrtype, "IP6");
	assert_str(sess.origin.address, "2001:db8::20");
	assert_str(sess.name, "Live video feed for today's meeting");
	assert_null(sess.info.p);
	assert_true(sess.has_conn);
	assert_str(sess.conn.addrtype, "IP6");
	assert_str(sess.conn.address, "2001:db8::20");
	assert_false(sess.conn.has_ttl);
	assert_false(sess.conn.has_count);
	assert_int_equal(sess.ntimes, 1);
	assert_int_equal(sess.times[0].start, 3338481189u);
	assert_int_equal(sess.times[0].stop, 3370017201u);
	assert_int_equal(sess.nattrs, 0);

	assert_int_equal(sess.nmedia, 2);
	struct sdp_media *a = &sess.media[0], *v = &sess.media[1];
	assert_str(a->media, "audio");
	assert_int_equal(a->port, 6000);
	assert_false(a->has_nports);
	assert_str(a->proto, "RTP/AVP");
	assert_int_equal(a->nfmts, 1);
	assert_str(a->fmts[0], "2");
	assert_int_equal(sdp_rtpmap(a, 2, &rm), 1);
	assert_str(rm.encoding, "G726-32");
	assert_int_equal(rm.clock, 8000);
	assert_int_equal(rm.channels, 1);
	assert_int_equal(sdp_rtpmap(a, 107, &rm), 0);
	assert_ptr_equal(sdp_media_conn(&sess, a), &sess.conn);
	assert_int_equal(sdp_media_dir(&sess, a), SDP_DIR_SENDRECV);

	assert_str(v->media, "video");
	assert_int_equal(v->port, 6024);
	assert_str(v->fmts[0], "107");
	assert_int_equal(sdp_rtpmap(v, 107, &rm), 1);
	assert_str(rm.encoding, "H263-1998");
	assert_int_equal(rm.clock, 90000);
	assert_ptr_equal(sdp_media_conn(&sess, v), &sess.conn);
	round_trip(&sess);
}

static void test_rfc5118_mult_ip(void **state)
{
	(void)state;
	sip_str body = corpus_body("rfc5118/mult-ip-in-sdp.clfix.dat");
	const struct sdp_conn *c;
	struct sdp_rtpmap rm;

	assert_int_equal(sdp_parse(&sess, body.p, body.len, NULL), 0);
	assert_str(sess.origin.username, "bob");
	assert_str(sess.origin.sess_id, "280744730");
	assert_str(sess.origin.sess_version, "28977631");
	assert_str(sess.origin.addrtype, "IP4");
	assert_str(sess.origin.address, "host.example.com");
	assert_str(sess.name, ""); /* "s=" with an empty value */
	assert_false(sess.has_conn);
	assert_int_equal(sess.times[0].start, 0);
	assert_int_equal(sess.times[0].stop, 0);
	assert_int_equal(sess.nmedia, 2);

	c = sdp_media_conn(&sess, &sess.media[0]);
	assert_ptr_equal(c, &sess.media[0].conns[0]);
	assert_str(c->nettype, "IN");
	assert_str(c->addrtype, "IP4");
	assert_str(c->address, "192.0.2.1");
	assert_int_equal(sess.media[0].port, 22334);
	assert_str(sess.media[0].fmts[0], "0");

	c = sdp_media_conn(&sess, &sess.media[1]);
	assert_non_null(c);
	assert_str(c->addrtype, "IP6");
	assert_str(c->address, "2001:db8::1");
	assert_int_equal(sdp_rtpmap(&sess.media[1], 107, &rm), 1);
	assert_str(rm.encoding, "H263-1998");
	assert_int_equal(rm.clock, 90000);
	round_trip(&sess);
}

static void test_rfc5118_ipv4_mapped(void **state)
{
	(void)state;
	sip_str body = corpus_body("rfc5118/ipv4-mapped-ipv6.clfix.dat");

	assert_int_equal(sdp_parse(&sess, body.p, body.len, NULL), 0);
	assert_str(sess.origin.address, "::ffff:192.0.2.2");
	assert_str(sess.conn.address, "::ffff:192.0.2.2");
	assert_str(sess.name, "Call me soon, please!");
	assert_int_equal(sess.nmedia, 2);
	assert_str(sess.media[1].fmts[0], "107");
	round_trip(&sess);
}

static void test_rfc4475_sdp01(void **state)
{
	(void)state;
	sip_str body = corpus_body("rfc4475/sdp01.dat");
	struct sdp_rtpmap rm;

	assert_int_equal(sdp_parse(&sess, body.p, body.len, NULL), 0);
	assert_str(sess.origin.username, "mhandley");
	assert_str(sess.name, "-");
	assert_str(sess.conn.address, "192.0.2.5");
	assert_int_equal(sess.nmedia, 2);
	assert_int_equal(sess.media[0].port, 49217);
	assert_int_equal(sess.media[0].nfmts, 2);
	assert_str(sess.media[0].fmts[0], "0");
	assert_str(sess.media[0].fmts[1], "12");
	assert_int_equal(sess.media[1].port, 3227);
	/* "a=rtpmap:31 LPC" has no clock rate */
	assert_int_equal(sdp_rtpmap(&sess.media[1], 31, &rm), -EBADMSG);
	assert_int_equal(sdp_rtpmap(&sess.media[0], 0, &rm), 0);
	round_trip(&sess);
}

/** Every RFC 4475 body that is a valid SDP parses and round-trips. */
static void test_rfc4475_bodies(void **state)
{
	(void)state;
	static const char *const ok[] = {
		"baddate.dat", "badinv01.dat", "bcast.dat",   "clerr.dat",
		"esc01.dat",   "escruri.dat",  "insuf.dat",   "inv2543.dat",
		"longreq.dat", "ltgtruri.dat", "lwsruri.dat", "lwsstart.dat",
		"multi01.dat", "ncl.dat",      "quotbal.dat", "unreason.dat",
		"wsinv.dat",
	};
	char rel[64];

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		unsigned line = 99;

		snprintf(rel, sizeof(rel), "rfc4475/%s", ok[i]);
		sip_str body = corpus_body(rel);
		int rc = sdp_parse(&sess, body.p, body.len, &line);
		if (rc != 0)
			fail_msg("%s: %d at line %u", rel, rc, line);
		assert_str(sess.origin.nettype, "IN");
		assert_true(sess.nmedia >= 1);
		assert_str(sess.media[0].media, "audio");
		assert_int_equal(sess.media[0].port, 49217);
		round_trip(&sess);
	}
}

static void test_rfc4475_bad_bodies(void **state)
{
	(void)state;
	unsigned line = 0;
	sip_str body;

	/* no s= and no t= before the first m= (line 4) */
	body = corpus_body("rfc4475/mismatch02.dat");
	assert_int_equal(sdp_parse(&sess, body.p, body.len, &line), -EBADMSG);
	assert_int_equal(line, 4);

	/* "testing=123" is not a <type>=<value> line */
	body = corpus_body("rfc4475/test.dat");
	assert_int_equal(sdp_parse(&sess, body.p, body.len, &line), -EBADMSG);
	assert_int_equal(line, 2);
}

/* ------------------------------------------------------------------------ */
/* Hand-made descriptions                                                   */
/* ------------------------------------------------------------------------ */

/* Every line type, LF line ends and no final line end. */
static const char full_sdp[] =
	"v=0\n"
	"o=jdoe 2890844526 2890842807 IN IP4 10.47.16.5\n"
	"s=SDP Seminar\n"
	"i=A Seminar on the session description protocol\n"
	"u=http://www.example.com/seminars/sdp.pdf\n"
	"e=j.doe@example.com (Jane Doe)\n"
	"p=+1 617 555-6011\n"
	"c=IN IP4 224.2.17.12/127/3\n"
	"b=CT:1000\n"
	"t=2873397496 2873404696\n"
	"r=7d 1h 0 25h\n"
	"r=604800 3600 0 90000\n"
	"t=0 0\n"
	"z=2882844526 -1h 2898848070 0\n"
	"k=prompt\n"
	"a=recvonly\n"
	"a=tool:sipd\n"
	"m=audio 49170 RTP/AVP 0 111 101\n"
	"i=voice\n"
	"c=IN IP6 ff15::101/3\n"
	"b=AS:64\n"
	"b=TIAS:64000\n"
	"k=clear:secret\n"
	"a=rtpmap:0 PCMU/8000\n"
	"a=rtpmap:111 opus/48000/2\n"
	"a=fmtp:111 minptime=10;useinbandfec=1\n"
	"a=rtpmap:101 telephone-event/8000\n"
	"a=fmtp:101 0-16\n"
	"a=sendonly\n"
	"a=ptime:\n"
	"m=video 51372/2 RTP/AVP 99\n"
	"a=rtpmap:99 h263-1998/90000\n"
	"m=application 0 UDP/DTLS/SCTP webrtc-datachannel\n"
	"c=IN IP4 192.0.2.7\n"
	"c=IN IP4 192.0.2.8\n"
	"a=inactive";

static void test_full(void **state)
{
	(void)state;
	unsigned line = 99;
	struct sdp_rtpmap rm;
	sip_str fp;

	assert_int_equal(
		sdp_parse(&sess, full_sdp, sizeof(full_sdp) - 1, &line), 0);
	assert_int_equal(line, 0);
	assert_str(sess.info, "A Seminar on the session description protocol");
	assert_str(sess.uri, "http://www.example.com/seminars/sdp.pdf");
	assert_int_equal(sess.nemails, 1);
	assert_str(sess.emails[0], "j.doe@example.com (Jane Doe)");
	assert_int_equal(sess.nphones, 1);
	assert_str(sess.phones[0], "+1 617 555-6011");
	assert_str(sess.conn.address, "224.2.17.12");
	assert_true(sess.conn.has_ttl);
	assert_int_equal(sess.conn.ttl, 127);
	assert_true(sess.conn.has_count);
	assert_int_equal(sess.conn.count, 3);
	assert_int_equal(sess.nbw, 1);
	assert_str(sess.bw[0].type, "CT");
	assert_int_equal(sess.bw[0].value, 1000);
	assert_int_equal(sess.ntimes, 2);
	assert_int_equal(sess.times[0].start, 2873397496u);
	assert_int_equal(sess.times[0].stop, 2873404696u);
	assert_int_equal(sess.times[0].nrepeats, 2);
	assert_str(sess.times[0].repeats[0], "7d 1h 0 25h");
	assert_str(sess.times[0].repeats[1], "604800 3600 0 90000");
	assert_int_equal(sess.times[1].nrepeats, 0);
	assert_str(sess.zone, "2882844526 -1h 2898848070 0");
	assert_str(sess.key, "prompt");
	assert_int_equal(sess.nattrs, 2);
	assert_str(sess.attrs[0].name, "recvonly");
	assert_false(sess.attrs[0].has_value);
	assert_str(sess.attrs[1].name, "tool");
	assert_str(sess.attrs[1].value, "sipd");
	assert_int_equal(sdp_session_dir(&sess), SDP_DIR_RECVONLY);

	assert_int_equal(sess.nmedia, 3);
	struct sdp_media *a = &sess.media[0];
	assert_int_equal(a->nfmts, 3);
	assert_str(a->fmts[2], "101");
	assert_str(a->info, "voice");
	assert_int_equal(a->nconns, 1);
	assert_str(a->conns[0].addrtype, "IP6");
	assert_str(a->conns[0].address, "ff15::101");
	assert_false(a->conns[0].has_ttl);
	assert_true(a->conns[0].has_count);
	assert_int_equal(a->conns[0].count, 3);
	assert_int_equal(a->nbw, 2);
	assert_str(a->bw[1].type, "TIAS");
	assert_int_equal(a->bw[1].value, 64000);
	assert_str(a->key, "clear:secret");
	assert_int_equal(a->nattrs, 7);

	assert_int_equal(sdp_rtpmap(a, 0, &rm), 1);
	assert_str(rm.encoding, "PCMU");
	assert_int_equal(rm.clock, 8000);
	assert_int_equal(rm.channels, 1);
	assert_int_equal(sdp_rtpmap(a, 111, &rm), 1);
	assert_str(rm.encoding, "opus");
	assert_int_equal(rm.clock, 48000);
	assert_int_equal(rm.channels, 2);
	assert_int_equal(sdp_rtpmap(a, 101, &rm), 1);
	assert_str(rm.encoding, "telephone-event");
	assert_int_equal(sdp_rtpmap(a, 1, &rm), 0);
	/* "111" is not a prefix match of 11 */
	assert_int_equal(sdp_rtpmap(a, 11, &rm), 0);
	assert_int_equal(sdp_fmtp(a, 111, &fp), 1);
	assert_str(fp, "minptime=10;useinbandfec=1");
	assert_int_equal(sdp_fmtp(a, 101, &fp), 1);
	assert_str(fp, "0-16");
	assert_int_equal(sdp_fmtp(a, 0, &fp), 0);

	/* a=ptime: has an empty value */
	const struct sdp_attr *pt = sdp_media_attr(a, "PTIME");
	assert_non_null(pt);
	assert_true(pt->has_value);
	assert_int_equal(pt->value.len, 0);

	/* directions: media override, session default */
	assert_int_equal(sdp_media_dir(&sess, a), SDP_DIR_SENDONLY);
	assert_int_equal(sdp_media_dir(&sess, &sess.media[1]),
			 SDP_DIR_RECVONLY);
	assert_int_equal(sdp_media_dir(&sess, &sess.media[2]),
			 SDP_DIR_INACTIVE);
	assert_string_equal(sdp_dir_name(SDP_DIR_INACTIVE), "inactive");

	struct sdp_media *v = &sess.media[1];
	assert_int_equal(v->port, 51372);
	assert_true(v->has_nports);
	assert_int_equal(v->nports, 2);
	assert_ptr_equal(sdp_media_conn(&sess, v), &sess.conn);

	struct sdp_media *d = &sess.media[2];
	assert_int_equal(d->port, 0);
	assert_str(d->proto, "UDP/DTLS/SCTP");
	assert_str(d->fmts[0], "webrtc-datachannel");
	assert_int_equal(d->nconns, 2);
	assert_str(sdp_media_conn(&sess, d)->address, "192.0.2.7");
	assert_str(d->conns[1].address, "192.0.2.8");

	round_trip(&sess);
}

static void test_attr_iter(void **state)
{
	(void)state;
	const struct sdp_attr *at;
	const struct sdp_media *a;
	unsigned pos = 0, n = 0;
	static const char *const want[] = {"0 PCMU/8000", "111 opus/48000/2",
					   "101 telephone-event/8000"};

	assert_int_equal(sdp_parse(&sess, full_sdp, sizeof(full_sdp) - 1, NULL),
			 0);
	a = &sess.media[0];
	while ((at = sdp_attr_next(a->attrs, a->nattrs, "rtpmap", &pos))) {
		assert_true(n < 3);
		assert_str(at->value, want[n]);
		n++;
	}
	assert_int_equal(n, 3);
	assert_int_equal(pos, a->nattrs);
	pos = 0;
	assert_null(sdp_attr_next(a->attrs, a->nattrs, "rtcp", &pos));
	pos = 0;
	at = sdp_attr_next(sess.attrs, sess.nattrs, "tool", &pos);
	assert_non_null(at);
	assert_str(at->value, "sipd");
	assert_int_equal(pos, 2);
}

static void test_dir_default(void **state)
{
	(void)state;
	struct sdp_rtpmap rm;
	sip_str fp;
	static const char sdp[] = "v=0\r\n"
				  "o=- 1 1 IN IP4 192.0.2.1\r\n"
				  "s=-\r\n"
				  "t=0 0\r\n"
				  "m=audio 4000 RTP/AVP 0\r\n"
				  "a=rtpmap\r\n"
				  "a=fmtp\r\n"
				  "m=audio 4002 RTP/AVP 0\r\n"
				  "a=recvonly\r\n"
				  "a=sendonly\r\n"
				  "\r\n";

	assert_int_equal(sdp_parse(&sess, sdp, sizeof(sdp) - 1, NULL), 0);
	assert_int_equal(sdp_session_dir(&sess), SDP_DIR_SENDRECV);
	assert_int_equal(sdp_media_dir(&sess, &sess.media[0]),
			 SDP_DIR_SENDRECV);
	/* the first direction attribute wins */
	assert_int_equal(sdp_media_dir(&sess, &sess.media[1]),
			 SDP_DIR_RECVONLY);
	assert_null(sdp_media_conn(&sess, &sess.media[0]));
	/* rtpmap / fmtp without a value match no payload type */
	assert_int_equal(sdp_rtpmap(&sess.media[0], 0, &rm), 0);
	assert_int_equal(sdp_fmtp(&sess.media[0], 0, &fp), 0);
}

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */
/* ------------------------------------------------------------------------ */

#define HEAD "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\n"

static void test_errors(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		int rc;
		unsigned line;
	} cases[] = {
		{"", -EBADMSG, 1},
		{"v=1\r\no=- 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\n", -EBADMSG, 1},
		{"o=- 1 1 IN IP4 h\r\nv=0\r\ns=-\r\nt=0 0\r\n", -EBADMSG, 1},
		{"v=0\r\n", -EBADMSG, 2},
		{HEAD, -EBADMSG, 4}, /* no t= at all */
		{HEAD "m=audio 1 RTP/AVP 0\r\n", -EBADMSG, 4},	 /* t= */
		{"v=0\r\ns=-\r\nt=0 0\r\n", -EBADMSG, 4},	 /* no o= */
		{"v=0\no=- 1 1 IN IP4 h\nt=0 0\n", -EBADMSG, 4}, /* no s= */
		{HEAD "t=0 0\r\nm=audio abc RTP/AVP 0\r\n", -EBADMSG, 5},
		{HEAD "t=0 0\r\nm=audio 70000 RTP/AVP 0\r\n", -EBADMSG, 5},
		{HEAD "t=0 0\r\nm=audio -1 RTP/AVP 0\r\n", -EBADMSG, 5},
		{HEAD "t=0 0\r\nm=audio 1/x RTP/AVP 0\r\n", -EBADMSG, 5},
		{HEAD "t=0 0\r\nm=audio 1 RTP/AVP\r\n", -EBADMSG, 5},
		{HEAD "t=0 0\r\nm =video 1 RTP/AVP 0\r\n", -EBADMSG, 5},
		{HEAD "t=0 0\r\nM=video 1 RTP/AVP 0\r\n", -EBADMSG, 5},
		{HEAD "t=0 0\r\nx=unknown\r\n", -EBADMSG, 5},
		{HEAD "t=0 0\r\nnovalue\r\n", -EBADMSG, 5},
		{HEAD "o=- 1 1 IN IP4 h\r\nt=0 0\r\n", -EBADMSG, 4},
		{HEAD "s=again\r\nt=0 0\r\n", -EBADMSG, 4},
		{HEAD "t=0 0\r\nm=audio 1 RTP/AVP 0\r\ns=x\r\n", -EBADMSG, 6},
		{HEAD "t=0 0\r\nm=audio 1 RTP/AVP 0\r\nt=0 0\r\n", -EBADMSG, 6},
		{HEAD "t=0 0\r\nm=audio 1 RTP/AVP 0\r\ni=a\r\ni=b\r\n",
		 -EBADMSG, 7},
		{HEAD "r=7d 1h 0\r\nt=0 0\r\n", -EBADMSG, 4},
		{HEAD "t=0\r\n", -EBADMSG, 4},
		{HEAD "t=0 x\r\n", -EBADMSG, 4},
		{HEAD "t=0 0\r\n\r\na=late\r\n", -EBADMSG, 6},
		{HEAD "t=0 0\r\nc=IN IP4 224.2.1.1/300\r\n", -EBADMSG, 5},
		{HEAD "t=0 0\r\nc=IN IP4 224.2.1.1/1/0\r\n", -EBADMSG, 5},
		{HEAD "t=0 0\r\nc=IN IP6 ff15::1/1/2\r\n", -EBADMSG, 5},
		{HEAD "t=0 0\r\nc=IN IP4\r\n", -EBADMSG, 5},
		{HEAD "t=0 0\r\nc=IN IP4 a\r\nc=IN IP4 b\r\n", -EBADMSG, 6},
		{HEAD "t=0 0\r\nb=AS\r\n", -EBADMSG, 5},
		{HEAD "t=0 0\r\nb=AS:x\r\n", -EBADMSG, 5},
		{HEAD "t=0 0\r\na=:value\r\n", -EBADMSG, 5},
		{HEAD "t=0 0\r\na=bad name\r\n", -EBADMSG, 5},
		{HEAD "t=0 0\r\nk=\r\n", -EBADMSG, 5},
		{"v=0\r\no=- 1 1 IN IP4\r\ns=-\r\nt=0 0\r\n", -EBADMSG, 2},
		{"v=0\r\no=- x 1 IN IP4 h\r\ns=-\r\nt=0 0\r\n", -EBADMSG, 2},
		{"v=0\r\no=- 1 1 IN IP4 h extra\r\ns=-\r\nt=0 0\r\n", -EBADMSG,
		 2},
		{HEAD "t=0 0\r\na=x\ry\r\n", -EBADMSG, 5},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unsigned line = 0;
		int rc = sdp_parse(&sess, cases[i].text, strlen(cases[i].text),
				   &line);
		if (rc != cases[i].rc || line != cases[i].line)
			fail_msg("case %zu: rc %d line %u, want %d line %u", i,
				 rc, line, cases[i].rc, cases[i].line);
	}
}

static void test_error_nul(void **state)
{
	(void)state;
	static const char sdp[] = HEAD "t=0 0\r\na=x\0y\r\n";
	unsigned line = 0;

	assert_int_equal(sdp_parse(&sess, sdp, sizeof(sdp) - 1, &line),
			 -EBADMSG);
	assert_int_equal(line, 5);
	assert_int_equal(sdp_parse(NULL, sdp, sizeof(sdp) - 1, &line), -EINVAL);
}

static void test_limits(void **state)
{
	(void)state;
	static char big[8192];
	size_t n;
	unsigned line = 0;

	/* SDP_MAX_MEDIA media sections are fine, one more is not */
	n = (size_t)snprintf(big, sizeof(big), "%s", HEAD "t=0 0\r\n");
	for (unsigned i = 0; i < SDP_MAX_MEDIA; i++)
		n += (size_t)snprintf(big + n, sizeof(big) - n,
				      "m=audio %u RTP/AVP 0\r\n", 1000 + i);
	assert_int_equal(sdp_parse(&sess, big, n, &line), 0);
	assert_int_equal(sess.nmedia, SDP_MAX_MEDIA);
	n += (size_t)snprintf(big + n, sizeof(big) - n,
			      "m=audio 2 RTP/AVP 0\r\n");
	assert_int_equal(sdp_parse(&sess, big, n, &line), -E2BIG);
	assert_int_equal(line, 5 + SDP_MAX_MEDIA);

	/* attributes per section */
	n = (size_t)snprintf(big, sizeof(big), "%s", HEAD "t=0 0\r\n");
	for (unsigned i = 0; i < SDP_MAX_ATTRS; i++)
		n += (size_t)snprintf(big + n, sizeof(big) - n, "a=x%u\r\n", i);
	assert_int_equal(sdp_parse(&sess, big, n, &line), 0);
	assert_int_equal(sess.nattrs, SDP_MAX_ATTRS);
	round_trip(&sess);
	n += (size_t)snprintf(big + n, sizeof(big) - n, "a=last\r\n");
	assert_int_equal(sdp_parse(&sess, big, n, &line), -E2BIG);
	assert_int_equal(line, 5 + SDP_MAX_ATTRS);

	/* formats per m= line */
	n = (size_t)snprintf(big, sizeof(big), "%s",
			     HEAD "t=0 0\r\nm=audio 9 RTP/AVP");
	for (unsigned i = 0; i <= SDP_MAX_FMTS; i++)
		n += (size_t)snprintf(big + n, sizeof(big) - n, " %u", i);
	assert_int_equal(sdp_parse(&sess, big, n, &line), -E2BIG);
	assert_int_equal(line, 5);
}

/* ------------------------------------------------------------------------ */
/* Writer                                                                   */
/* ------------------------------------------------------------------------ */

static void test_write_canonical(void **state)
{
	(void)state;
	/* liberal input: LF, extra blanks between fields, "b=AS: 64" */
	static const char in[] = "v=0\n"
				 "o=alice  1 2 IN IP4 192.0.2.1\n"
				 "s= \n"
				 "t=0   0\n"
				 "a=group:BUNDLE 0\n"
				 "m=audio 4000 RTP/AVP  0 8\n"
				 "b=AS: 64\n"
				 "a=rtpmap:8 PCMA/8000\n";
	static const char want[] = "v=0\r\n"
				   "o=alice 1 2 IN IP4 192.0.2.1\r\n"
				   "s= \r\n"
				   "t=0 0\r\n"
				   "a=group:BUNDLE 0\r\n"
				   "m=audio 4000 RTP/AVP 0 8\r\n"
				   "b=AS:64\r\n"
				   "a=rtpmap:8 PCMA/8000\r\n";
	int n;

	assert_int_equal(sdp_parse(&sess, in, sizeof(in) - 1, NULL), 0);
	n = sdp_write(&sess, out_buf, sizeof(out_buf));
	assert_int_equal(n, sizeof(want) - 1);
	assert_string_equal(out_buf, want);
	round_trip(&sess);
}

static void test_write_nospc(void **state)
{
	(void)state;
	int n;

	assert_int_equal(sdp_parse(&sess, full_sdp, sizeof(full_sdp) - 1, NULL),
			 0);
	n = sdp_write(&sess, out_buf, sizeof(out_buf));
	assert_true(n > 0);
	for (size_t cap = 0; cap < (size_t)n; cap++) {
		memset(out_buf, 'X', sizeof(out_buf));
		assert_int_equal(sdp_write(&sess, out_buf, cap), -ENOSPC);
		assert_int_equal(out_buf[cap], 'X'); /* nothing past cap */
	}
	/* exactly enough: no room for the NUL, which is fine */
	memset(out_buf, 'X', sizeof(out_buf));
	assert_int_equal(sdp_write(&sess, out_buf, (size_t)n), n);
	assert_int_equal(out_buf[n], 'X');
	assert_int_equal(sdp_write(&sess, NULL, 0), -ENOSPC);
}

/** A description filled by hand, as a UA building an offer would. */
static void test_write_built(void **state)
{
	(void)state;
	static const char want[] = "v=0\r\n"
				   "o=- 42 1 IN IP6 2001:db8::1\r\n"
				   "s=-\r\n"
				   "c=IN IP6 2001:db8::1\r\n"
				   "t=0 0\r\n"
				   "m=audio 5004 RTP/AVP 96\r\n"
				   "a=rtpmap:96 opus/48000/2\r\n"
				   "a=sendrecv\r\n";
	static struct sdp_session b;
	struct sdp_rtpmap rm;

	memset(&b, 0, sizeof(b));
	b.origin = (struct sdp_origin){
		SIP_STR_LIT("-"),   SIP_STR_LIT("42"),
		SIP_STR_LIT("1"),   SIP_STR_LIT("IN"),
		SIP_STR_LIT("IP6"), SIP_STR_LIT("2001:db8::1")};
	b.name = SIP_STR_LIT("-");
	b.has_conn = true;
	b.conn.nettype = SIP_STR_LIT("IN");
	b.conn.addrtype = SIP_STR_LIT("IP6");
	b.conn.address = SIP_STR_LIT("2001:db8::1");
	b.ntimes = 1;
	b.nmedia = 1;
	b.media[0].media = SIP_STR_LIT("audio");
	b.media[0].port = 5004;
	b.media[0].proto = SIP_STR_LIT("RTP/AVP");
	b.media[0].nfmts = 1;
	b.media[0].fmts[0] = SIP_STR_LIT("96");
	b.media[0].nattrs = 2;
	b.media[0].attrs[0] = (struct sdp_attr){
		SIP_STR_LIT("rtpmap"), SIP_STR_LIT("96 opus/48000/2"), true};
	b.media[0].attrs[1] =
		(struct sdp_attr){SIP_STR_LIT("sendrecv"), SIP_STR_NULL, false};

	assert_int_equal(sdp_write(&b, out_buf, sizeof(out_buf)),
			 sizeof(want) - 1);
	assert_string_equal(out_buf, want);
	assert_int_equal(sdp_parse(&sess, out_buf, sizeof(want) - 1, NULL), 0);
	assert_true(sdp_session_equal(&b, &sess));
	assert_int_equal(sdp_rtpmap(&sess.media[0], 96, &rm), 1);
	assert_int_equal(rm.channels, 2);

	/* a value that would inject a line is refused */
	b.name = SIP_STR_LIT("x\r\na=evil");
	assert_int_equal(sdp_write(&b, out_buf, sizeof(out_buf)), -EINVAL);
	b.name = SIP_STR_LIT("-");
	/* a field with a blank would not parse back */
	b.media[0].fmts[0] = SIP_STR_LIT("9 6");
	assert_int_equal(sdp_write(&b, out_buf, sizeof(out_buf)), -EINVAL);
	b.media[0].fmts[0] = SIP_STR_LIT("96");
	/* t= is required */
	b.ntimes = 0;
	assert_int_equal(sdp_write(&b, out_buf, sizeof(out_buf)), -EINVAL);
	b.ntimes = 1;
	b.media[0].nattrs = SDP_MAX_ATTRS + 1;
	assert_int_equal(sdp_write(&b, out_buf, sizeof(out_buf)), -EINVAL);
	b.media[0].nattrs = 2;
	/* a different struct compares unequal */
	b.media[0].port = 5006;
	assert_false(sdp_session_equal(&b, &sess));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc5118_ipv6_in_sdp),
		cmocka_unit_test(test_rfc5118_mult_ip),
		cmocka_unit_test(test_rfc5118_ipv4_mapped),
		cmocka_unit_test(test_rfc4475_sdp01),
		cmocka_unit_test(test_rfc4475_bodies),
		cmocka_unit_test(test_rfc4475_bad_bodies),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_attr_iter),
		cmocka_unit_test(test_dir_default),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_error_nul),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_write_canonical),
		cmocka_unit_test(test_write_nospc),
		cmocka_unit_test(test_write_built),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
