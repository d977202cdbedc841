/**
 * @file handler.c  The stateless part of sipd's request handling.
 *
 * Order of the checks: message syntax (400, or the parser's status), then
 * (after the transaction layer had its chance) the element checks of
 * sip_msg_check() (400, 505), the UAS verdict (416, 420, 405, 501, ...),
 * then the method: OPTIONS is answered 200 with Allow, Accept and
 * Supported; INVITE, BYE and CANCEL go to the UAS core in UAS mode (else
 * 501, and 481 for CANCEL); REGISTER goes to the registrar when there is
 * one, right after sip_msg_check(); everything else 501. ACK is never
 * answered.
 */
#include "sipd/handler.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#define SIPD_ALLOW "OPTIONS"
#define SIPD_ALLOW_UAS "INVITE, ACK, BYE, CANCEL, OPTIONS"
#define SIPD_ALLOW_REG "OPTIONS, REGISTER"
#define SIPD_ALLOW_UAS_REG "INVITE, ACK, BYE, CANCEL, OPTIONS, REGISTER"
#define SIPD_ACCEPT "application/sdp"
#define SIPD_SERVER "sipd"
/* Header lines written whole, as sip_wr_header() would write them. */
#define SIPD_SERVER_LINE "Server: " SIPD_SERVER "\r\n"
#define SIPD_OPTIONS_LINES(allow)                                              \
	"Allow: " allow "\r\nAccept: " SIPD_ACCEPT "\r\nSupported: \r\n"

void sipd_handler_init(struct sipd_handler *h, bool uas, bool registrar)
{
	memset(h, 0, sizeof(*h));
	h->uas = uas;
	h->registrar = registrar;
	sip_limits_default(&h->limits);
	if (h->limits.max_msg_size > SIPD_MAX_DATAGRAM)
		h->limits.max_msg_size = SIPD_MAX_DATAGRAM;
}

/* A 64-bit hash of @p s folded into @p hash, eight bytes at a step (the
 * tag is computed for every stateless answer: a byte-wise hash cost more
 * than the rest of the answer's headers). */
static uint64_t mix(uint64_t hash, sip_str s)
{
	const uint64_t k = 0x9e3779b97f4a7c15ull;
	uint64_t w;
	size_t i = 0;

	for (; i + 8 <= s.len; i += 8) {
		memcpy(&w, s.p + i, 8);
		hash = (hash ^ w) * k;
		hash ^= hash >> 29;
	}
	w = 0;
	if (s.len > i)
		memcpy(&w, s.p + i, s.len - i);
	hash = (hash ^ w ^ s.len) * k;
	return hash ^ (hash >> 32);
}

/*
 * To tag of our responses (§8.2.6.2): derived from Call-ID, From and the
 * top Via so that a retransmitted request gets the same tag without any
 * state being kept.
 */
sip_str sipd_to_tag(const struct sip_msg *msg, char *buf, size_t cap)
{
	static const enum sip_hdr_id ids[] = {SIP_HDR_CALL_ID, SIP_HDR_FROM,
					      SIP_HDR_VIA};
	static const char hex[] = "0123456789abcdef";
	uint64_t hash = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		const struct sip_hdr *hdr = sip_msg_hdr(msg, ids[i]);

		if (hdr)
			hash = mix(hash, hdr->value);
		hash = mix(hash, SIP_STR_LIT("\n"));
	}
	/* 16 lower-case hex digits and a NUL, as "%016llx" */
	if (cap < 17)
		return SIP_STR_NULL;
	for (int i = 15; i >= 0; i--) {
		buf[i] = hex[hash & 0xf];
		hash >>= 4;
	}
	buf[16] = '\0';
	return (sip_str){buf, 16};
}

/* A top Via we can parse, into @p via: without it no client could match
 * our answer. */
static bool top_via(const struct sip_msg *msg, struct sip_via *via)
{
	return sip_msg_top_via(msg, NULL, via) == 0;
}

/*
 * After sip_msg_parse() failed, the message still holds the start line and
 * the headers indexed before the defect. A 400 can be written when that is
 * a request with everything a response copies (§8.2.6.2).
 */
static bool answerable_after_error(const struct sip_msg *msg)
{
	struct sip_via via;
	static const enum sip_hdr_id need[] = {SIP_HDR_FROM, SIP_HDR_TO,
					       SIP_HDR_CALL_ID, SIP_HDR_CSEQ};

	if (!msg->is_request || !msg->method.len ||
	    msg->nhdrs > SIP_MSG_MAX_HEADERS)
		return false;
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		const struct sip_hdr *hdr = sip_msg_hdr(msg, need[i]);

		if (!hdr || hdr < msg->hdrs || hdr >= msg->hdrs + msg->nhdrs)
			return false;
	}
	return top_via(msg, &via);
}

static bool all_crlf(const char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (buf[i] != '\r' && buf[i] != '\n')
			return false;
	}
	return true;
}

static int finish(struct sip_writer *w, struct sipd_outcome *o)
{
	int n;

	sip_wr_raw(w, SIP_STR_LIT(SIPD_SERVER_LINE));
	n = sip_wr_finish(w, NULL, SIP_STR_NULL);
	if (n < 0) {
		o->status = 0;
		o->note = "response does not fit";
		return 0;
	}
	o->len = (size_t)n;
	return 1;
}

/* Start a response: status line and the headers copied from the request. */
static void begin(struct sip_writer *w, const struct sip_msg *msg,
		  unsigned status, const char *reason,
		  const struct sip_via_rcvd *rcvd, struct sipd_outcome *o)
{
	char tag[32];

	if (!reason || !*reason)
		reason = sip_reason_phrase(status);
	o->status = status;
	o->reason = reason;
	sip_wr_response_to_rcvd(w, msg, status, reason,
				sipd_to_tag(msg, tag, sizeof(tag)), rcvd);
}

static int answer_verdict(struct sipd_handler *h, struct sip_writer *w,
			  const struct sip_caps *caps, int status,
			  const struct sip_error *err,
			  const struct sip_via_rcvd *rcvd,
			  struct sipd_outcome *o)
{
	char tags[512];
	int n;

	begin(w, &h->msg, (unsigned)status, err->reason, rcvd, o);
	switch (status) {
	case 420:
		n = sip_unsupported_tags(&h->msg, SIP_ROLE_UAS, caps, tags,
					 sizeof(tags));
		if (n > 0)
			sip_wr_header(w, "Unsupported",
				      (sip_str){tags, (size_t)n});
		break;
	case 405:
	case 501:
		sip_wr_header(w, "Allow", sip_str_c(sipd_allow(h)));
		break;
	case 415:
		sip_wr_header(w, "Accept", SIP_STR_LIT(SIPD_ACCEPT));
		break;
	default:
		break;
	}
	return finish(w, o);
}

const char *sipd_allow(const struct sipd_handler *h)
{
	if (h->registrar)
		return h->uas ? SIPD_ALLOW_UAS_REG : SIPD_ALLOW_REG;
	return h->uas ? SIPD_ALLOW_UAS : SIPD_ALLOW;
}

/* Allow, Accept and Supported of a 200 to OPTIONS. */
static sip_str options_lines(const struct sipd_handler *h)
{
	if (h->registrar)
		return h->uas ? SIP_STR_LIT(
					SIPD_OPTIONS_LINES(SIPD_ALLOW_UAS_REG))
			      : SIP_STR_LIT(SIPD_OPTIONS_LINES(SIPD_ALLOW_REG));
	return h->uas ? SIP_STR_LIT(SIPD_OPTIONS_LINES(SIPD_ALLOW_UAS))
		      : SIP_STR_LIT(SIPD_OPTIONS_LINES(SIPD_ALLOW));
}

int sipd_handle(struct sipd_handler *h, const char *buf, size_t len,
		enum sip_transport_kind framing,
		const struct sip_via_rcvd *rcvd, char *out, size_t cap,
		struct sipd_outcome *o)
{
	struct sip_msg *msg = &h->msg;
	struct sip_error err = {0};
	struct sip_writer w;

	memset(o, 0, sizeof(*o));
	h->via_ok = false;
	sip_wr_init(&w, out, cap);

	if (all_crlf(buf, len)) {
		o->note = "keepalive";
		return SIPD_DROP;
	}
	if (sip_msg_parse(msg, buf, len, framing, &h->limits, &err) < 0) {
		o->method = msg->method;
		o->ruri = msg->ruri;
		if (msg->method_id == SIP_METHOD_ACK ||
		    !answerable_after_error(msg)) {
			o->note = err.reason ? err.reason : "malformed";
			return SIPD_DROP;
		}
		begin(&w, msg, err.status ? err.status : 400, err.reason, rcvd,
		      o);
		return finish(&w, o);
	}
	if (!msg->is_request) {
		o->note = "response";
		return SIPD_TXN;
	}
	o->method = msg->method;
	o->ruri = msg->ruri;
	if (!top_via(msg, &h->via)) {
		o->note = "no usable Via";
		return SIPD_DROP;
	}
	h->via_ok = true;
	return SIPD_TXN;
}

int sipd_handle_request(struct sipd_handler *h, const struct sip_via_rcvd *rcvd,
			char *out, size_t cap, struct sipd_outcome *o)
{
	static const char *const uas_methods[] = {"INVITE", "ACK",     "BYE",
						  "CANCEL", "OPTIONS", NULL};
	static const struct sip_caps plain = {0};
	static const struct sip_caps uas = {uas_methods, NULL, NULL};
	const struct sip_caps *caps = h->uas ? &uas : &plain;
	struct sip_msg *msg = &h->msg;
	struct sip_error err = {0};
	struct sip_writer w;
	int status;

	sip_wr_init(&w, out, cap);
	if (msg->method_id == SIP_METHOD_ACK) {
		o->note = "ACK absorbed";
		return SIPD_DROP;
	}
	if (sip_msg_check(msg, &err) < 0) {
		begin(&w, msg, err.status ? err.status : 400, err.reason, rcvd,
		      o);
		return finish(&w, o);
	}
	/* the registrar applies its own verdicts (§10.3 steps 1 and 2) */
	if (h->registrar && msg->method_id == SIP_METHOD_REGISTER)
		return SIPD_REGISTER;
	memset(&err, 0, sizeof(err));
	status = sip_request_verdict(msg, SIP_ROLE_UAS, caps, &err);
	if (status > 0)
		return answer_verdict(h, &w, caps, status, &err, rcvd, o);

	switch (msg->method_id) {
	case SIP_METHOD_OPTIONS:
		begin(&w, msg, 200, NULL, rcvd, o);
		sip_wr_raw(&w, options_lines(h));
		break;
	case SIP_METHOD_INVITE:
	case SIP_METHOD_BYE:
	case SIP_METHOD_CANCEL:
		if (h->uas)
			return SIPD_UAS;
		if (msg->method_id == SIP_METHOD_CANCEL) {
			begin(&w, msg, 481, NULL, rcvd, o);
			break;
		}
		begin(&w, msg, 501, NULL, rcvd, o);
		sip_wr_header(&w, "Allow", sip_str_c(sipd_allow(h)));
		break;
	default:
		begin(&w, msg, 501, NULL, rcvd, o);
		sip_wr_header(&w, "Allow", sip_str_c(sipd_allow(h)));
		break;
	}
	return finish(&w, o);
}
