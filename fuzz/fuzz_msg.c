/**
 * @file fuzz_msg.c  libFuzzer target for the SIP message layer.
 *
 * Parses the input in both framings; a message that parses is checked,
 * every header goes through the view of its kind, requests get a verdict
 * for each role, and a response written to a parsed request must parse
 * again with the same status and Via count. The stream framer must find
 * the same frames whether the input arrives whole or in pieces.
 */
#include "sipmsg/sipmsg.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_INPUT (256u * 1024)
#define RESPONSE_CAP (MAX_INPUT + 4096u)

static struct {
	const char *start;
	size_t len;
} input;

/* Every slice a view returns must lie inside the input. */
static void inside(sip_str s)
{
	if (s.len == 0)
		return;
	if (s.p < input.start || s.p + s.len > input.start + input.len)
		abort();
}

static void params(sip_str p)
{
	sip_str name, value;

	inside(p);
	while (sip_param_next(&p, &name, &value) > 0) {
		inside(name);
		inside(value);
	}
}

static void uri(sip_str text)
{
	struct sip_uri u;
	char buf[512];

	if (sip_uri_parse(text, &u) != 0)
		return;
	inside(u.host);
	inside(u.user);
	params(u.params);
	if (!sip_uri_equal(&u, &u))
		abort();
	(void)sip_unescape(u.user, buf, sizeof(buf));
}

static void view_via(sip_str v)
{
	struct sip_via via;

	if (sip_via_parse(v, &via) != 0)
		return;
	inside(via.host);
	inside(via.branch);
	params(via.params);
}

static void view_addr(sip_str v)
{
	struct sip_addr a;
	char buf[256];

	if (sip_addr_parse(v, &a) != 0)
		return;
	inside(a.display);
	inside(a.uri_text);
	inside(a.tag);
	params(a.params);
	if (a.display.len && a.display.p[0] == '"')
		(void)sip_unquote(a.display, buf, sizeof(buf));
}

static void view_contact(sip_str v)
{
	struct sip_contact c;

	if (sip_contact_parse(v, &c) != 0)
		return;
	if (c.has_q && c.q > 1000)
		abort();
	if (!c.star) {
		inside(c.addr.uri_text);
		params(c.addr.params);
	}
}

static void view_cseq(sip_str v)
{
	struct sip_cseq c;

	if (sip_cseq_parse(v, &c) == 0)
		inside(c.method);
}

static void view_auth(sip_str v)
{
	struct sip_auth a;
	sip_str val;

	if (sip_auth_parse(v, &a) != 0)
		return;
	if (a.nparams > SIP_AUTH_MAX_PARAMS)
		abort();
	for (unsigned i = 0; i < a.nparams; i++) {
		inside(a.params[i].name);
		inside(a.params[i].value);
	}
	(void)sip_auth_param(&a, "realm", &val);
	(void)sip_auth_param(&a, "nonce", &val);
}

static void view_body(const struct sip_msg *m, sip_str v)
{
	struct sip_ctype ct;
	struct sip_mpart_iter it;
	struct sip_mpart part;
	unsigned n = 0;

	if (sip_ctype_parse(v, &ct) != 0)
		return;
	params(ct.params);
	if (sip_mpart_init(&it, &ct, m->body) != 0)
		return;
	while (sip_mpart_next(&it, &part) > 0) {
		inside(part.body);
		inside(part.ctype);
		if (part.body.len > m->body.len || ++n > 100000)
			abort();
	}
}

static void each(sip_str value, void (*fn)(sip_str))
{
	sip_str item;
	unsigned n = 0;

	while (sip_list_next(&value, &item) > 0) {
		inside(item);
		fn(item);
		if (++n > MAX_INPUT)
			abort();
	}
}

static void views(const struct sip_msg *m)
{
	uint32_t u;

	for (unsigned i = 0; i < m->nhdrs; i++) {
		const struct sip_hdr *h = &m->hdrs[i];

		inside(h->name);
		inside(h->value);
		switch (h->id) {
		case SIP_HDR_VIA:
			each(h->value, view_via);
			break;
		case SIP_HDR_FROM:
		case SIP_HDR_TO:
		case SIP_HDR_REPLY_TO:
		case SIP_HDR_REFER_TO:
		case SIP_HDR_REFERRED_BY:
			view_addr(h->value);
			break;
		case SIP_HDR_ROUTE:
		case SIP_HDR_RECORD_ROUTE:
		case SIP_HDR_PATH:
			each(h->value, view_addr);
			break;
		case SIP_HDR_CONTACT:
			each(h->value, view_contact);
			break;
		case SIP_HDR_CSEQ:
			view_cseq(h->value);
			break;
		case SIP_HDR_MAX_FORWARDS:
			if (sip_uint_parse(h->value, 255, &u) == 0 && u > 255)
				abort();
			break;
		case SIP_HDR_EXPIRES:
		case SIP_HDR_MIN_EXPIRES:
		case SIP_HDR_CONTENT_LENGTH:
		case SIP_HDR_RSEQ:
			(void)sip_uint_parse(h->value, UINT32_MAX, &u);
			break;
		case SIP_HDR_AUTHORIZATION:
		case SIP_HDR_WWW_AUTHENTICATE:
		case SIP_HDR_PROXY_AUTHENTICATE:
		case SIP_HDR_PROXY_AUTHORIZATION:
			view_auth(h->value);
			break;
		case SIP_HDR_CONTENT_TYPE:
			view_body(m, h->value);
			break;
		default:
			if (sip_hdr_is_list((enum sip_hdr_id)h->id))
				each(h->value, inside);
			break;
		}
	}
}

static void verdicts(const struct sip_msg *m)
{
	static const char *const methods[] = {"INVITE", "ACK",	   "BYE",
					      "CANCEL", "OPTIONS", NULL};
	static const char *const tags[] = {"path", "outbound", "100rel", NULL};
	static const char *const accept[] = {"application/sdp", "text/plain",
					     NULL};
	const struct sip_caps caps[2] = {
		{0},
		{.methods = methods, .option_tags = tags, .accept = accept},
	};
	struct sip_error err;
	char out[1024];

	for (int c = 0; c < 2; c++) {
		for (int role = SIP_ROLE_UAS; role <= SIP_ROLE_REGISTRAR;
		     role++) {
			int v = sip_request_verdict(m, (enum sip_role)role,
						    &caps[c], &err);

			if (v < 0 || (v > 0 && (v < 400 || v > 699)))
				abort();
			(void)sip_unsupported_tags(m, (enum sip_role)role,
						   &caps[c], out, sizeof(out));
		}
	}
}

/* A response to a parsed request must itself parse. */
static void respond(const struct sip_msg *req, unsigned status)
{
	static char buf[RESPONSE_CAP];
	static struct sip_msg resp;
	struct sip_limits limits;
	struct sip_writer w;
	int n;

	sip_wr_init(&w, buf, sizeof(buf));
	sip_wr_response_to(&w, req, status, sip_reason_phrase(status),
			   SIP_STR_LIT("fuzz1"));
	n = sip_wr_finish(&w, "text/plain", SIP_STR_LIT("x"));
	if (n < 0)
		return;
	/* Copied lines may grow by a few bytes (": " and the To tag), and
	 * Content-Type and Content-Length are added to the copied lines. */
	sip_limits_default(&limits);
	limits.max_msg_size = sizeof(buf);
	limits.max_header_line += 64;
	limits.max_headers = SIP_MSG_MAX_HEADERS;
	if (sip_msg_parse(&resp, buf, (size_t)n, SIP_FRAMING_STREAM, &limits,
			  NULL) != 0)
		abort();
	if (resp.is_request || resp.status != status ||
	    resp.nvia != req->nvia || resp.body.len != 1)
		abort();
}

static void one_message(const char *buf, size_t len,
			enum sip_transport_kind framing)
{
	static struct sip_msg m;
	struct sip_limits limits;
	struct sip_error err;

	sip_limits_default(&limits);
	memset(&err, 0, sizeof(err));
	if (sip_msg_parse(&m, buf, len, framing, &limits, &err) != 0) {
		if (err.err >= 0 || err.status < 400 || err.status > 599 ||
		    !err.reason)
			abort();
		return;
	}
	if (m.len > len || m.nhdrs > SIP_MSG_MAX_HEADERS)
		abort();
	inside(m.body);
	if (sip_msg_check(&m, &err) != 0) {
		if (err.status < 400 || err.status > 599)
			abort();
	} else if (m.is_request) {
		verdicts(&m);
	}
	views(&m);
	if (m.is_request) {
		uri(m.ruri);
		respond(&m, 100 + (unsigned)(len % 600));
	}
}

/* Frames found by sip_framer_next, as (kind, length) pairs. */
struct frames {
	size_t n;
	int end; /* NEED_MORE or a negative errno */
	struct {
		int kind;
		size_t len;
	} f[MAX_INPUT + 1];
};

/*
 * Consecutive keepalives are merged: a CRLFCRLF ping that arrives in two
 * pieces is legitimately seen as two CRLF pongs (RFC 5626 §4.4.1).
 */
static void add_frame(struct frames *fr, int kind, size_t len, size_t avail)
{
	if (len == 0 || len > avail || fr->n > MAX_INPUT)
		abort();
	if (kind == SIP_FRAME_KEEPALIVE && fr->n > 0 &&
	    fr->f[fr->n - 1].kind == SIP_FRAME_KEEPALIVE) {
		fr->f[fr->n - 1].len += len;
		return;
	}
	fr->f[fr->n].kind = kind;
	fr->f[fr->n].len = len;
	fr->n++;
}

/* Feed the framer up to @p fed bytes; return true when it stopped. */
static bool frame_until(struct sip_framer *f, const char *buf, size_t fed,
			size_t *pos, struct frames *fr)
{
	struct sip_limits limits;

	for (;;) {
		struct sip_error err;
		size_t len = 0;
		int r = sip_framer_next(f, buf + *pos, fed - *pos, &len, &err);

		if (r == SIP_FRAME_NEED_MORE) {
			fr->end = r;
			return false;
		}
		if (r < 0) {
			fr->end = r;
			return true;
		}
		if (r != SIP_FRAME_MESSAGE && r != SIP_FRAME_KEEPALIVE)
			abort();
		add_frame(fr, r, len, fed - *pos);
		if (r == SIP_FRAME_MESSAGE) {
			static struct sip_msg m;

			sip_limits_default(&limits);
			(void)sip_msg_parse(&m, buf + *pos, len,
					    SIP_FRAMING_STREAM, &limits, NULL);
		}
		*pos += len;
	}
}

static uint64_t next_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void framing(const char *buf, size_t len)
{
	static struct frames whole, split;
	struct sip_limits limits;
	struct sip_framer f;
	uint64_t seed = 0x9e3779b97f4a7c15ull;
	size_t pos = 0, fed = 0;

	sip_limits_default(&limits);
	whole.n = split.n = 0;
	sip_framer_init(&f, &limits);
	(void)frame_until(&f, buf, len, &pos, &whole);

	for (size_t i = 0; i < len; i++)
		seed = (seed ^ (unsigned char)buf[i]) * 0x100000001b3ull;
	seed |= 1;
	pos = 0;
	sip_framer_init(&f, &limits);
	while (fed < len) {
		/* Mostly small pieces, sometimes single bytes or large ones. */
		uint64_t r = next_rand(&seed);
		size_t step = (r & 3) == 0 ? 1 : 1 + (size_t)((r >> 8) % 200);

		if ((r & 0xf0) == 0)
			step = 1 + (size_t)((r >> 16) % 4096);
		fed = step > len - fed ? len : fed + step;
		if (frame_until(&f, buf, fed, &pos, &split))
			break;
	}
	if (len == 0)
		(void)frame_until(&f, buf, 0, &pos, &split);

	if (whole.n != split.n || whole.end != split.end)
		abort();
	for (size_t i = 0; i < whole.n; i++) {
		if (whole.f[i].kind != split.f[i].kind ||
		    whole.f[i].len != split.f[i].len)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;

	if (size > MAX_INPUT)
		return 0;
	input.start = buf;
	input.len = size;
	one_message(buf, size, SIP_FRAMING_DATAGRAM);
	one_message(buf, size, SIP_FRAMING_STREAM);
	framing(buf, size);
	return 0;
}
