/**
 * @file check.c  Message checks and request verdicts: which status an
 * element answers a received message with before doing its own work
 * (RFC 3261 §8.2, §16.3, §18.3; RFC 4475's verdicts).
 */
#include "sipmsg/sipmsg.h"

#include <errno.h>
#include <string.h>

static int verdict(struct sip_error *err, int code, unsigned status,
		   const char *reason, const struct sip_msg *m,
		   const struct sip_hdr *h)
{
	if (err) {
		memset(err, 0, sizeof(*err));
		err->err = code;
		err->status = status;
		err->reason = reason;
		if (h) {
			const char *at = h->name.p;
			unsigned line = 1, col = 1;
			err->offset = (size_t)(at - m->buf);
			for (const char *p = m->buf; p < at; p++) {
				if (*p == '\n') {
					line++;
					col = 1;
				} else {
					col++;
				}
			}
			err->line = line;
			err->column = col;
		}
	}
	return code;
}

#define REJECT(reason, h) verdict(err, -EBADMSG, 400, reason, m, h)

/* A header that must appear exactly once, with a single value. */
static int check_single(const struct sip_msg *m, enum sip_hdr_id id,
			bool required, const char *missing,
			const char *multiple, struct sip_error *err,
			const struct sip_hdr **out)
{
	const struct sip_hdr *h = sip_msg_hdr(m, id);

	*out = h;
	if (!h)
		return required ? REJECT(missing, NULL) : 0;
	if (h->next != SIP_HDR_NONE)
		return REJECT(multiple, sip_msg_hdr_next(m, h));
	return 0;
}

/* Parse every element of every header of kind @p id with @p parse. */
static int check_list(const struct sip_msg *m, enum sip_hdr_id id,
		      int (*parse)(sip_str, void *), void *view,
		      const char *reason, struct sip_error *err)
{
	for (const struct sip_hdr *h = sip_msg_hdr(m, id); h;
	     h = sip_msg_hdr_next(m, h)) {
		sip_str cur = h->value, item;
		int rc;
		while ((rc = sip_list_next(&cur, &item)) > 0) {
			if (parse(item, view) != 0)
				return REJECT(reason, h);
		}
		if (rc < 0)
			return REJECT(reason, h);
	}
	return 0;
}

/* Every Via value parses; the top one was parsed by sip_msg_parse(). */
static int check_vias(const struct sip_msg *m, struct sip_via *via,
		      struct sip_error *err)
{
	const struct sip_hdr *h = sip_msg_hdr(m, SIP_HDR_VIA);
	bool first = true;

	for (; h; h = sip_msg_hdr_next(m, h)) {
		sip_str cur = h->value, item;
		int rc;

		while ((rc = sip_list_next(&cur, &item)) > 0) {
			if (first && m->top_via_rc == 0) {
				first = false;
				continue;
			}
			first = false;
			if (sip_via_parse(item, via) != 0)
				return REJECT("Malformed Via header", h);
		}
		if (rc < 0)
			return REJECT("Malformed Via header", h);
	}
	return 0;
}

static int contact_parse(sip_str v, void *view)
{
	return sip_contact_parse(v, view);
}

static int addr_parse(sip_str v, void *view)
{
	return sip_addr_parse(v, view);
}

static int token_parse(sip_str v, void *view)
{
	(void)view;
	for (size_t i = 0; i < v.len; i++) {
		if (!sip_is_token_char(v.p[i]))
			return -EBADMSG;
	}
	return v.len ? 0 : -EBADMSG;
}

/* callid = word [ "@" word ] (§25.1) */
static bool is_word_char(char c)
{
	if (sip_is_token_char(c))
		return true;
	return c != '\0' && strchr("()<>:\\\"/[]?{}", c) != NULL;
}

static bool valid_callid(sip_str v)
{
	size_t ats = 0;

	if (v.len == 0 || v.p[0] == '@' || v.p[v.len - 1] == '@')
		return false;
	for (size_t i = 0; i < v.len; i++) {
		if (v.p[i] == '@')
			ats++;
		else if (!is_word_char(v.p[i]))
			return false;
	}
	return ats <= 1;
}

int sip_msg_check(const struct sip_msg *m, struct sip_error *err)
{
	const struct sip_hdr *from, *to, *callid, *cseq_h, *mf, *ct;
	union {
		struct sip_via via;
		struct sip_contact contact;
		struct sip_addr addr;
	} view;
	int rc;

	if (!sip_str_ieq_c(m->version, "SIP/2.0"))
		return verdict(err, -EPROTONOSUPPORT, 505,
			       "Version Not Supported", m, NULL);

	if (m->is_request) {
		struct sip_uri uri;
		if (sip_uri_parse(m->ruri, &uri) != 0)
			return REJECT("Malformed Request-URI", NULL);
	}

	if (!sip_msg_hdr(m, SIP_HDR_VIA))
		return REJECT("Missing Via header", NULL);
	if ((rc = check_single(m, SIP_HDR_FROM, true, "Missing From header",
			       "Multiple From headers", err, &from)) ||
	    (rc = check_single(m, SIP_HDR_TO, true, "Missing To header",
			       "Multiple To headers", err, &to)) ||
	    (rc = check_single(m, SIP_HDR_CALL_ID, true,
			       "Missing Call-ID header",
			       "Multiple Call-ID headers", err, &callid)) ||
	    (rc = check_single(m, SIP_HDR_CSEQ, true, "Missing CSeq header",
			       "Multiple CSeq headers", err, &cseq_h)) ||
	    (rc = check_single(m, SIP_HDR_MAX_FORWARDS, false, NULL,
			       "Multiple Max-Forwards headers", err, &mf)) ||
	    (rc = check_single(m, SIP_HDR_CONTENT_TYPE, false, NULL,
			       "Multiple Content-Type headers", err, &ct)))
		return rc;

	if (!valid_callid(callid->value))
		return REJECT("Malformed Call-ID header", callid);

	struct sip_cseq cseq;
	rc = sip_cseq_parse(cseq_h->value, &cseq);
	if (rc == -ERANGE)
		return REJECT("CSeq number out of range", cseq_h);
	if (rc)
		return REJECT("Malformed CSeq header", cseq_h);
	if (m->is_request && !sip_str_eq(cseq.method, m->method)) {
		/* RFC 4475 §3.1.2.18: for an unknown method, 501 says more
		 * than 400 about what went wrong. */
		if (m->method_id == SIP_METHOD_UNKNOWN)
			return verdict(err, -EOPNOTSUPP, 501, "Not Implemented",
				       m, cseq_h);
		return REJECT("CSeq method does not match request method",
			      cseq_h);
	}

	if (mf) {
		uint32_t n;
		rc = sip_uint_parse(mf->value, 255, &n);
		if (rc)
			return REJECT(rc == -ERANGE
					      ? "Max-Forwards out of range"
					      : "Malformed Max-Forwards header",
				      mf);
	}

	if (sip_addr_parse(from->value, &view.addr) != 0)
		return REJECT("Malformed From header", from);
	if (sip_addr_parse(to->value, &view.addr) != 0)
		return REJECT("Malformed To header", to);
	if ((rc = check_vias(m, &view.via, err)) ||
	    (rc = check_list(m, SIP_HDR_CONTACT, contact_parse, &view,
			     "Malformed Contact header", err)) ||
	    (rc = check_list(m, SIP_HDR_ROUTE, addr_parse, &view,
			     "Malformed Route header", err)) ||
	    (rc = check_list(m, SIP_HDR_RECORD_ROUTE, addr_parse, &view,
			     "Malformed Record-Route header", err)) ||
	    (rc = check_list(m, SIP_HDR_REQUIRE, token_parse, NULL,
			     "Malformed Require header", err)) ||
	    (rc = check_list(m, SIP_HDR_PROXY_REQUIRE, token_parse, NULL,
			     "Malformed Proxy-Require header", err)))
		return rc;

	if (ct) {
		struct sip_ctype ctype;
		if (sip_ctype_parse(ct->value, &ctype) != 0)
			return REJECT("Malformed Content-Type header", ct);
	}
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Verdicts                                                                 */
/* ------------------------------------------------------------------------ */

static bool in_list(const char *const *list, sip_str item)
{
	for (; list && *list; list++) {
		if (sip_str_ieq_c(item, *list))
			return true;
	}
	return false;
}

/* Calls @p fn for each option tag in Require (and Proxy-Require for a
 * proxy) that @p caps lacks. Returns how many there are. */
static unsigned each_unsupported(const struct sip_msg *m, enum sip_role role,
				 const struct sip_caps *caps,
				 void (*fn)(sip_str tag, void *arg), void *arg)
{
	enum sip_hdr_id id = role == SIP_ROLE_PROXY ? SIP_HDR_PROXY_REQUIRE
						    : SIP_HDR_REQUIRE;
	unsigned n = 0;

	for (const struct sip_hdr *h = sip_msg_hdr(m, id); h;
	     h = sip_msg_hdr_next(m, h)) {
		sip_str cur = h->value, tag;
		while (sip_list_next(&cur, &tag) > 0) {
			if (in_list(caps ? caps->option_tags : NULL, tag))
				continue;
			n++;
			if (fn)
				fn(tag, arg);
		}
	}
	return n;
}

struct tag_out {
	char *out;
	size_t cap;
	size_t len;
	bool overflow;
};

static void append_tag(sip_str tag, void *arg)
{
	struct tag_out *t = arg;
	size_t need = tag.len + (t->len ? 2 : 0);

	if (t->len + need > t->cap) {
		t->overflow = true;
		return;
	}
	if (t->len) {
		memcpy(t->out + t->len, ", ", 2);
		t->len += 2;
	}
	memcpy(t->out + t->len, tag.p, tag.len);
	t->len += tag.len;
}

int sip_unsupported_tags(const struct sip_msg *m, enum sip_role role,
			 const struct sip_caps *caps, char *out, size_t cap)
{
	struct tag_out t = {out, cap, 0, false};

	each_unsupported(m, role, caps, append_tag, &t);
	return t.overflow ? -ENOSPC : (int)t.len;
}

static bool accepts_type(const struct sip_caps *caps,
			 const struct sip_ctype *ct)
{
	static const char *const sdp_only[] = {"application/sdp", NULL};
	const char *const *acc = caps && caps->accept ? caps->accept : sdp_only;

	for (; *acc; acc++) {
		const char *slash = strchr(*acc, '/');
		if (!slash)
			continue;
		sip_str t = {*acc, (size_t)(slash - *acc)};
		sip_str s = sip_str_c(slash + 1);
		if (sip_str_ieq(t, ct->type) && sip_str_ieq(s, ct->subtype))
			return true;
	}
	return false;
}

/* Does the Accept header (if any) allow application/sdp? */
static bool accept_allows_sdp(const struct sip_msg *m)
{
	const struct sip_hdr *h = sip_msg_hdr(m, SIP_HDR_ACCEPT);

	if (!h)
		return true; /* absent: application/sdp is assumed (§20.1) */
	for (; h; h = sip_msg_hdr_next(m, h)) {
		sip_str cur = h->value, item;
		if (h->value.len == 0)
			continue;
		while (sip_list_next(&cur, &item) > 0) {
			struct sip_ctype ct;
			if (sip_ctype_parse(item, &ct) != 0)
				continue;
			bool any_type = sip_str_eq(ct.type, SIP_STR_LIT("*"));
			bool any_sub = sip_str_eq(ct.subtype, SIP_STR_LIT("*"));
			if ((any_type ||
			     sip_str_ieq_c(ct.type, "application")) &&
			    (any_sub || sip_str_ieq_c(ct.subtype, "sdp")))
				return true;
		}
	}
	return false;
}

static bool method_allowed(const struct sip_caps *caps, sip_str method)
{
	if (!caps || !caps->methods)
		return true;
	return in_list(caps->methods, method);
}

int sip_request_verdict(const struct sip_msg *m, enum sip_role role,
			const struct sip_caps *caps, struct sip_error *err)
{
	struct sip_uri uri;

	if (!m->is_request)
		return 0;
	if (sip_uri_parse(m->ruri, &uri) != 0) {
		verdict(err, -EBADMSG, 400, "Malformed Request-URI", m, NULL);
		return 400;
	}
	bool routable = uri.scheme == SIP_URI_SIP ||
			uri.scheme == SIP_URI_SIPS ||
			(uri.scheme == SIP_URI_TEL && role == SIP_ROLE_PROXY);
	if (!routable) {
		verdict(err, -EPROTONOSUPPORT, 416, "Unsupported URI Scheme", m,
			NULL);
		return 416;
	}

	if (role == SIP_ROLE_PROXY) {
		const struct sip_hdr *mf = sip_msg_hdr(m, SIP_HDR_MAX_FORWARDS);
		uint32_t n;
		if (mf && sip_uint_parse(mf->value, 255, &n) == 0 && n == 0 &&
		    m->method_id != SIP_METHOD_ACK) {
			verdict(err, -ELOOP, 483, "Too Many Hops", m, mf);
			return 483;
		}
	} else {
		if (m->method_id == SIP_METHOD_UNKNOWN) {
			verdict(err, -EOPNOTSUPP, 501, "Not Implemented", m,
				NULL);
			return 501;
		}
		if (!method_allowed(caps, m->method)) {
			verdict(err, -EOPNOTSUPP, 405, "Method Not Allowed", m,
				NULL);
			return 405;
		}
	}

	/* §8.2.2.3 / §16.3: option tags we do not support. ACK and CANCEL
	 * carry no Require semantics for us to refuse. */
	if (m->method_id != SIP_METHOD_ACK &&
	    m->method_id != SIP_METHOD_CANCEL &&
	    each_unsupported(m, role, caps, NULL, NULL) > 0) {
		verdict(err, -EOPNOTSUPP, 420, "Bad Extension", m, NULL);
		return 420;
	}

	if (role == SIP_ROLE_REGISTRAR && m->method_id == SIP_METHOD_REGISTER) {
		struct sip_addr to;
		const struct sip_hdr *h = sip_msg_hdr(m, SIP_HDR_TO);
		if (!h || sip_addr_parse(h->value, &to) != 0 ||
		    (to.uri.scheme != SIP_URI_SIP &&
		     to.uri.scheme != SIP_URI_SIPS)) {
			verdict(err, -EBADMSG, 400,
				"To is not a SIP or SIPS address-of-record", m,
				h);
			return 400;
		}
	}

	if (role == SIP_ROLE_UAS) {
		const struct sip_hdr *ct = sip_msg_hdr(m, SIP_HDR_CONTENT_TYPE);
		struct sip_ctype ctype;
		if (m->body.len > 0 && ct &&
		    sip_ctype_parse(ct->value, &ctype) == 0 &&
		    !accepts_type(caps, &ctype)) {
			verdict(err, -EPROTONOSUPPORT, 415,
				"Unsupported Media Type", m, ct);
			return 415;
		}
		if (m->method_id == SIP_METHOD_INVITE &&
		    !accept_allows_sdp(m)) {
			verdict(err, -EPROTONOSUPPORT, 406, "Not Acceptable", m,
				sip_msg_hdr(m, SIP_HDR_ACCEPT));
			return 406;
		}
	}
	return 0;
}
