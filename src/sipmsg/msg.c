/**
 * @file msg.c  One-pass SIP message parser and header index.
 *
 * The parser walks the buffer once: start line, then each header line
 * (folded continuation lines included), recording name and value slices in
 * the fixed index of struct sip_msg and linking headers of the same kind.
 * It allocates nothing and never writes to the buffer. Values are checked
 * later, on demand, by the views in headers.c and by sip_msg_check().
 */
#include "sipmsg/sipmsg.h"

#include <errno.h>
#include <string.h>

/* Compare a header name (already known to be token characters) with a
 * lower-case literal. OR-ing 0x20 lower-cases letters and leaves '-' and
 * digits alone; no other token character maps onto a letter or '-'. */
static inline bool name_eq(const char *p, const char *lit, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if ((char)(p[i] | 0x20) != lit[i])
			return false;
	}
	return true;
}

#include "hdr_lookup.inc"

static const char *const method_names[SIP_METHOD__COUNT] = {
	[SIP_METHOD_UNKNOWN] = "",
	[SIP_METHOD_INVITE] = "INVITE",
	[SIP_METHOD_ACK] = "ACK",
	[SIP_METHOD_BYE] = "BYE",
	[SIP_METHOD_CANCEL] = "CANCEL",
	[SIP_METHOD_OPTIONS] = "OPTIONS",
	[SIP_METHOD_REGISTER] = "REGISTER",
	[SIP_METHOD_PRACK] = "PRACK",
	[SIP_METHOD_SUBSCRIBE] = "SUBSCRIBE",
	[SIP_METHOD_NOTIFY] = "NOTIFY",
	[SIP_METHOD_PUBLISH] = "PUBLISH",
	[SIP_METHOD_INFO] = "INFO",
	[SIP_METHOD_REFER] = "REFER",
	[SIP_METHOD_MESSAGE] = "MESSAGE",
	[SIP_METHOD_UPDATE] = "UPDATE",
};

enum sip_method sip_method_id(sip_str t)
{
	if (t.len < 3 || t.len > 9)
		return SIP_METHOD_UNKNOWN;
	for (int m = SIP_METHOD_INVITE; m < SIP_METHOD__COUNT; m++) {
		const char *n = method_names[m];
		if (n[0] == t.p[0] && strlen(n) == t.len &&
		    memcmp(n, t.p, t.len) == 0)
			return (enum sip_method)m;
	}
	return SIP_METHOD_UNKNOWN;
}

const char *sip_method_name(enum sip_method m)
{
	if ((unsigned)m >= SIP_METHOD__COUNT)
		return "";
	return method_names[m];
}

enum sip_hdr_id sip_hdr_lookup(sip_str name)
{
	if (name.len == 0)
		return SIP_HDR_OTHER;
	return hdr_lookup(name.p, name.len);
}

const char *sip_hdr_name(enum sip_hdr_id id)
{
	if ((unsigned)id >= SIP_HDR__COUNT)
		return NULL;
	return hdr_names[id];
}

bool sip_hdr_is_list(enum sip_hdr_id id)
{
	switch (id) {
	case SIP_HDR_ACCEPT:
	case SIP_HDR_ACCEPT_CONTACT:
	case SIP_HDR_ACCEPT_ENCODING:
	case SIP_HDR_ACCEPT_LANGUAGE:
	case SIP_HDR_ALERT_INFO:
	case SIP_HDR_ALLOW:
	case SIP_HDR_ALLOW_EVENTS:
	case SIP_HDR_CALL_INFO:
	case SIP_HDR_CONTACT:
	case SIP_HDR_CONTENT_ENCODING:
	case SIP_HDR_CONTENT_LANGUAGE:
	case SIP_HDR_ERROR_INFO:
	case SIP_HDR_IN_REPLY_TO:
	case SIP_HDR_PATH:
	case SIP_HDR_PROXY_REQUIRE:
	case SIP_HDR_REASON:
	case SIP_HDR_RECORD_ROUTE:
	case SIP_HDR_REJECT_CONTACT:
	case SIP_HDR_REPLY_TO:
	case SIP_HDR_REQUEST_DISPOSITION:
	case SIP_HDR_REQUIRE:
	case SIP_HDR_ROUTE:
	case SIP_HDR_SUPPORTED:
	case SIP_HDR_UNSUPPORTED:
	case SIP_HDR_VIA:
	case SIP_HDR_WARNING:
		return true;
	default:
		return false;
	}
}

void sip_limits_default(struct sip_limits *l)
{
	l->max_msg_size = 65535;
	l->max_headers = 128;
	l->max_header_line = 8192;
	l->max_via = 70;
}

/* Fill @p err; line and column are computed from the offset (error path
 * only, so the scan costs nothing on good messages). */
static int fail(struct sip_error *err, int code, unsigned status,
		const char *reason, const char *buf, size_t len, size_t off)
{
	if (err) {
		unsigned line = 1, col = 1;
		if (off > len)
			off = len;
		for (size_t i = 0; i < off; i++) {
			if (buf[i] == '\n') {
				line++;
				col = 1;
			} else {
				col++;
			}
		}
		err->err = code;
		err->status = status;
		err->reason = reason;
		err->offset = off;
		err->line = line;
		err->column = col;
	}
	return code;
}

#define BAD(reason, off) fail(err, -EBADMSG, 400, reason, buf, len, (off))

/* End of the line starting at @p i: offset of its LF, or len if none. */
static inline size_t line_end(const char *buf, size_t len, size_t i)
{
	const char *nl = memchr(buf + i, '\n', len - i);
	return nl ? (size_t)(nl - buf) : len;
}

/* Length of a line's content without its CR (the LF is at @p lf). */
static inline size_t content_end(const char *buf, size_t start, size_t lf)
{
	return (lf > start && buf[lf - 1] == '\r') ? lf - 1 : lf;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* "SIP/" 1*DIGIT "." 1*DIGIT, the literal case-insensitive (RFC 3261 §7.1
 * and RFC 2234 string rules). */
static bool is_version(sip_str v)
{
	size_t i = 4;

	if (v.len < 7 || (v.p[0] | 0x20) != 's' || (v.p[1] | 0x20) != 'i' ||
	    (v.p[2] | 0x20) != 'p' || v.p[3] != '/')
		return false;
	if (!is_digit(v.p[i]))
		return false;
	while (i < v.len && is_digit(v.p[i]))
		i++;
	if (i >= v.len || v.p[i] != '.')
		return false;
	i++;
	if (i >= v.len || !is_digit(v.p[i]))
		return false;
	while (i < v.len && is_digit(v.p[i]))
		i++;
	return i == v.len;
}

static int parse_start_line(struct sip_msg *m, const char *buf, size_t len,
			    size_t start, size_t end, struct sip_error *err)
{
	const char *p = buf + start;
	size_t n = end - start;

	if (n >= 4 && memcmp(p, "SIP/", 4) == 0) {
		/* Status-Line = SIP-Version SP Status-Code SP Reason-Phrase */
		const char *sp = memchr(p, ' ', n);
		if (!sp)
			return BAD("Malformed status line", start);
		m->is_request = false;
		m->version = (sip_str){p, (size_t)(sp - p)};
		size_t i = (size_t)(sp - p) + 1;
		if (i + 3 > n || !is_digit(p[i]) || !is_digit(p[i + 1]) ||
		    !is_digit(p[i + 2]) || (i + 3 < n && p[i + 3] != ' '))
			return BAD("Malformed status code", start + i);
		m->status = (unsigned)(p[i] - '0') * 100 +
			    (unsigned)(p[i + 1] - '0') * 10 +
			    (unsigned)(p[i + 2] - '0');
		if (m->status < 100 || m->status > 699)
			return BAD("Status code out of range", start + i);
		if (i + 3 ==
		    n) /* tolerate a missing SP before an empty phrase */
			m->reason = (sip_str){p + n, 0};
		else
			m->reason = (sip_str){p + i + 4, n - i - 4};
		if (!is_version(m->version))
			return BAD("Malformed SIP version", start);
		return 0;
	}

	/* Request-Line = Method SP Request-URI SP SIP-Version */
	size_t i = 0;
	while (i < n && sip_is_token_char(p[i]))
		i++;
	if (i == 0 || i >= n || p[i] != ' ')
		return BAD("Malformed request line", start + i);
	m->is_request = true;
	m->method = (sip_str){p, i};
	m->method_id = sip_method_id(m->method);
	size_t u = ++i;
	while (i < n && p[i] != ' ' && p[i] != '\t')
		i++;
	if (i == u)
		return BAD("Extra space in request line", start + i);
	if (i >= n)
		return BAD("Missing SIP version in request line", start + i);
	m->ruri = (sip_str){p + u, i - u};
	i++;
	m->version = (sip_str){p + i, n - i};
	for (size_t k = i; k < n; k++) {
		if (p[k] == ' ' || p[k] == '\t')
			return BAD(k == i ? "Extra space in request line"
					  : "Malformed request line",
				   start + k);
	}
	if (!is_version(m->version))
		return BAD("Malformed SIP version", start + i);
	return 0;
}

/* Content-Length value: digits with optional surrounding LWS. */
static int parse_clen(sip_str v, uint32_t *out)
{
	uint64_t n;

	v = sip_str_trim(v);
	if (sip_str_to_u64(v, UINT32_MAX, &n) != 0)
		return -EBADMSG;
	*out = (uint32_t)n;
	return 0;
}

/* Commas outside quoted strings and <...>: a cheap count of list items,
 * used only to enforce the Via limit. */
static unsigned count_items(sip_str v)
{
	unsigned n = 1;
	bool q = false;
	int angle = 0;

	if (!memchr(v.p, '"', v.len) && !memchr(v.p, '<', v.len)) {
		/* the usual Via: no quotes, no brackets */
		const char *p = v.p, *end = v.p + v.len;
		while ((p = memchr(p, ',', (size_t)(end - p))) != NULL) {
			n++;
			p++;
		}
		return n;
	}
	for (size_t i = 0; i < v.len; i++) {
		char c = v.p[i];
		if (q) {
			if (c == '\\')
				i++;
			else if (c == '"')
				q = false;
		} else if (c == '"') {
			q = true;
		} else if (c == '<') {
			angle++;
		} else if (c == '>') {
			angle--;
		} else if (c == ',' && angle <= 0) {
			n++;
		}
	}
	return n;
}

static void index_header(struct sip_msg *m, uint16_t idx)
{
	uint16_t id = m->hdrs[idx].id;

	m->hdrs[idx].next = SIP_HDR_NONE;
	if (m->first[id] == SIP_HDR_NONE)
		m->first[id] = idx;
	else
		m->hdrs[m->last[id]].next = idx;
	m->last[id] = idx;
}

/* The first element of the first Via line, parsed. */
static int parse_top_via(const struct sip_msg *m, sip_str *value,
			 struct sip_via *via)
{
	const struct sip_hdr *h = sip_msg_hdr(m, SIP_HDR_VIA);
	sip_str cur;

	*value = SIP_STR_NULL;
	if (!h)
		return -ENOENT;
	cur = h->value;
	if (sip_list_next(&cur, value) != 1)
		return -EBADMSG;
	return sip_via_parse(*value, via) == 0 ? 0 : -EBADMSG;
}

int sip_msg_parse(struct sip_msg *m, const char *buf, size_t len,
		  enum sip_transport_kind framing,
		  const struct sip_limits *limits, struct sip_error *err)
{
	struct sip_limits defl;
	size_t i = 0;
	int rc;

	if (!limits) {
		sip_limits_default(&defl);
		limits = &defl;
	}
	m->buf = buf;
	m->len = 0;
	m->is_request = false;
	m->method = m->ruri = m->reason = m->version = SIP_STR_NULL;
	m->method_id = SIP_METHOD_UNKNOWN;
	m->status = 0;
	m->headers = m->body = SIP_STR_NULL;
	m->has_content_length = false;
	m->content_length = 0;
	m->nhdrs = 0;
	m->nvia = 0;
	m->top_via_rc = -EAGAIN;
	m->top_via_value = SIP_STR_NULL;
	memset(m->first, 0xff, sizeof(m->first));

	/* §7.5: ignore CRLFs before the start line. */
	while (i < len && (buf[i] == '\r' || buf[i] == '\n'))
		i++;
	if (len > limits->max_msg_size)
		return fail(err, -EMSGSIZE, 513, "Message Too Large", buf, len,
			    limits->max_msg_size);
	if (i >= len)
		return BAD("Empty message", i);
	m->buf = buf + i;

	size_t lf = line_end(buf, len, i);
	if (lf >= len)
		return BAD("Missing end of start line", len);
	rc = parse_start_line(m, buf, len, i, content_end(buf, i, lf), err);
	if (rc)
		return rc;

	/* Header lines up to the empty line. */
	size_t hstart = lf + 1;
	i = hstart;
	bool have_cl = false, cl_conflict = false, cl_bad = false;
	uint32_t cl = 0;
	for (;;) {
		if (i >= len) {
			/* A datagram may end right after its last header
			 * line: an empty body, the empty line implied. */
			if (framing == SIP_FRAMING_DATAGRAM && i > hstart) {
				m->headers =
					(sip_str){buf + hstart, i - hstart};
				break;
			}
			return BAD("Missing empty line after headers", len);
		}
		if (buf[i] == '\n' ||
		    (buf[i] == '\r' && i + 1 < len && buf[i + 1] == '\n')) {
			m->headers = (sip_str){buf + hstart, i - hstart};
			i += buf[i] == '\n' ? 1 : 2;
			break;
		}
		if (sip_is_ws(buf[i]))
			return BAD("Continuation line without a header", i);

		size_t name_start = i;
		while (i < len && sip_is_token_char(buf[i]))
			i++;
		size_t name_end = i;
		while (i < len && sip_is_ws(buf[i]))
			i++;
		if (name_end == name_start || i >= len || buf[i] != ':')
			return BAD("Malformed header line", name_start);
		i++;

		/* Value: this line and every folded continuation line. */
		size_t vstart = i, vend;
		for (;;) {
			lf = line_end(buf, len, i);
			if (lf >= len)
				return BAD("Header line not terminated", i);
			vend = content_end(buf, i, lf);
			i = lf + 1;
			if (i < len && sip_is_ws(buf[i]))
				continue;
			break;
		}
		if (vend - name_start > limits->max_header_line)
			return fail(err, -EMSGSIZE, 400, "Header line too long",
				    buf, len, name_start);
		if (m->nhdrs >= limits->max_headers ||
		    m->nhdrs >= SIP_MSG_MAX_HEADERS)
			return fail(err, -E2BIG, 400, "Too many headers", buf,
				    len, name_start);

		struct sip_hdr *h = &m->hdrs[m->nhdrs];
		h->name = (sip_str){buf + name_start, name_end - name_start};
		h->value = sip_str_trim((sip_str){buf + vstart, vend - vstart});
		h->id = (uint16_t)hdr_lookup(h->name.p, h->name.len);
		index_header(m, m->nhdrs);
		m->nhdrs++;

		if (h->id == SIP_HDR_VIA) {
			unsigned n = count_items(h->value) + m->nvia;
			if (n > limits->max_via)
				return fail(err, -E2BIG, 400,
					    "Too many Via values", buf, len,
					    name_start);
			m->nvia = (uint16_t)n;
		} else if (h->id == SIP_HDR_CONTENT_LENGTH) {
			uint32_t v = 0;
			if (parse_clen(h->value, &v) != 0)
				cl_bad = true;
			else if (have_cl && v != cl)
				cl_conflict = true;
			cl = v;
			have_cl = true;
		}
	}

	/* Framing (§18.3). */
	size_t avail = len - i;
	if (cl_bad)
		return BAD("Malformed Content-Length", i);
	if (cl_conflict)
		return BAD("Conflicting Content-Length values", i);
	if (have_cl) {
		m->has_content_length = true;
		m->content_length = cl;
		if (cl > avail)
			return BAD("Content-Length larger than message", i);
		avail = cl;
	} else if (framing == SIP_FRAMING_STREAM) {
		return BAD("Missing Content-Length", i);
	}
	m->body = (sip_str){buf + i, avail};
	m->len = (size_t)(buf + i + avail - m->buf);
	m->top_via_rc = parse_top_via(m, &m->top_via_value, &m->top_via);
	return 0;
}

int sip_msg_top_via(const struct sip_msg *m, sip_str *value,
		    struct sip_via *via)
{
	sip_str v;
	struct sip_via tmp;
	int rc;

	if (m->top_via_rc != -EAGAIN) {
		if (value)
			*value = m->top_via_value;
		if (via && m->top_via_rc == 0)
			*via = m->top_via;
		return m->top_via_rc;
	}
	rc = parse_top_via(m, &v, via ? via : &tmp);
	if (value)
		*value = v;
	return rc;
}

const struct sip_hdr *sip_msg_hdr(const struct sip_msg *m, enum sip_hdr_id id)
{
	if ((unsigned)id >= SIP_HDR__COUNT || m->first[id] == SIP_HDR_NONE)
		return NULL;
	return &m->hdrs[m->first[id]];
}

const struct sip_hdr *sip_msg_hdr_next(const struct sip_msg *m,
				       const struct sip_hdr *h)
{
	if (!h || h->next == SIP_HDR_NONE)
		return NULL;
	return &m->hdrs[h->next];
}

const struct sip_hdr *sip_msg_hdr_by_name(const struct sip_msg *m, sip_str name)
{
	enum sip_hdr_id id = sip_hdr_lookup(name);

	if (id != SIP_HDR_OTHER)
		return sip_msg_hdr(m, id);
	for (unsigned i = 0; i < m->nhdrs; i++) {
		if (sip_str_ieq(m->hdrs[i].name, name))
			return &m->hdrs[i];
	}
	return NULL;
}

unsigned sip_msg_hdr_count(const struct sip_msg *m, enum sip_hdr_id id)
{
	unsigned n = 0;

	for (const struct sip_hdr *h = sip_msg_hdr(m, id); h;
	     h = sip_msg_hdr_next(m, h))
		n++;
	return n;
}

/* ------------------------------------------------------------------------ */
/* Stream framing                                                           */
/* ------------------------------------------------------------------------ */

void sip_framer_init(struct sip_framer *f, const struct sip_limits *limits)
{
	struct sip_limits defl;

	if (!limits) {
		sip_limits_default(&defl);
		limits = &defl;
	}
	memset(f, 0, sizeof(*f));
	f->max_size = limits->max_msg_size;
	f->max_line = limits->max_header_line;
}

static void framer_reset(struct sip_framer *f)
{
	f->scan = f->hdr_end = f->msg_len = f->line_start = 0;
}

static int frame_fail(struct sip_framer *f, struct sip_error *err, int code,
		      unsigned status, const char *reason, const char *buf,
		      size_t len, size_t off)
{
	framer_reset(f);
	return fail(err, code, status, reason, buf, len, off);
}

/* Find the Content-Length in the header block [0, hdr_end). The header
 * section is complete here, so this runs once per message. */
static int framer_clen(const char *buf, size_t hdr_end, uint32_t *out,
		       size_t *bad_off)
{
	size_t i = 0;
	bool have = false;
	uint32_t cl = 0;

	while (i < hdr_end) {
		size_t lf = line_end(buf, hdr_end, i);
		size_t s = i, e;
		i = lf + 1;
		if (sip_is_ws(buf[s]))
			continue; /* continuation of a header we skip */
		size_t n = s;
		while (n < lf && sip_is_token_char(buf[n]))
			n++;
		enum sip_hdr_id id = hdr_lookup(buf + s, n - s);
		if (n == s || id != SIP_HDR_CONTENT_LENGTH)
			continue;
		while (n < lf && sip_is_ws(buf[n]))
			n++;
		if (n >= lf || buf[n] != ':') {
			*bad_off = s;
			return -EBADMSG;
		}
		/* the value may be folded onto following lines */
		e = lf;
		while (i < hdr_end && sip_is_ws(buf[i])) {
			e = line_end(buf, hdr_end, i);
			i = e + 1;
		}
		uint32_t v;
		if (parse_clen((sip_str){buf + n + 1, e - n - 1}, &v) != 0 ||
		    (have && v != cl)) {
			*bad_off = s;
			return -EBADMSG;
		}
		cl = v;
		have = true;
	}
	if (!have) {
		*bad_off = hdr_end;
		return -ENOENT;
	}
	*out = cl;
	return 0;
}

int sip_framer_next(struct sip_framer *f, const char *buf, size_t avail,
		    size_t *len, struct sip_error *err)
{
	if (f->hdr_end == 0) {
		/* RFC 5626 §3.5.1 keepalives between messages. */
		if (f->scan == 0 && avail > 0 && buf[0] == '\r') {
			if (avail < 2)
				return SIP_FRAME_NEED_MORE;
			if (buf[1] != '\n')
				return frame_fail(f, err, -EBADMSG, 400,
						  "Malformed keepalive", buf,
						  avail, 0);
			if (avail >= 4 && buf[2] == '\r' && buf[3] == '\n') {
				*len = 4; /* ping: answer with a pong */
				return SIP_FRAME_KEEPALIVE;
			}
			if (avail == 3 && buf[2] == '\r')
				return SIP_FRAME_NEED_MORE;
			*len = 2; /* pong */
			return SIP_FRAME_KEEPALIVE;
		}
		/* Resume the search for the empty line where we stopped. */
		size_t i = f->scan;
		while (i < avail) {
			const char *nl = memchr(buf + i, '\n', avail - i);
			if (!nl) {
				i = avail;
				break;
			}
			size_t lf = (size_t)(nl - buf);
			if (lf - f->line_start > f->max_line)
				return frame_fail(f, err, -EMSGSIZE, 400,
						  "Header line too long", buf,
						  avail, f->line_start);
			/* need the next bytes to tell an empty line */
			if (lf + 1 >= avail ||
			    (buf[lf + 1] == '\r' && lf + 2 >= avail)) {
				i = lf;
				break;
			}
			if (buf[lf + 1] == '\n') {
				f->hdr_end = lf + 2;
				break;
			}
			if (buf[lf + 1] == '\r' && buf[lf + 2] == '\n') {
				f->hdr_end = lf + 3;
				break;
			}
			f->line_start = lf + 1;
			i = lf + 1;
		}
		if (f->hdr_end == 0) {
			f->scan = i;
			if (avail > f->max_size ||
			    avail - f->line_start > f->max_line)
				return frame_fail(f, err, -EMSGSIZE, 513,
						  "Message Too Large", buf,
						  avail, f->line_start);
			return SIP_FRAME_NEED_MORE;
		}
		uint32_t cl;
		size_t bad = 0;
		int rc = framer_clen(buf, f->hdr_end, &cl, &bad);
		if (rc == -ENOENT)
			return frame_fail(f, err, -EBADMSG, 400,
					  "Missing Content-Length", buf, avail,
					  bad);
		if (rc)
			return frame_fail(f, err, -EBADMSG, 400,
					  "Malformed Content-Length", buf,
					  avail, bad);
		f->msg_len = f->hdr_end + cl;
		if (f->msg_len > f->max_size)
			return frame_fail(f, err, -EMSGSIZE, 513,
					  "Message Too Large", buf, avail, 0);
	}
	if (avail < f->msg_len)
		return SIP_FRAME_NEED_MORE;
	*len = f->msg_len;
	framer_reset(f);
	return SIP_FRAME_MESSAGE;
}
