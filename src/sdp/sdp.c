/** @file sdp.c  SDP (RFC 4566) parser, lookup helpers and writer. */
#include "sdp/sdp.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Small slice helpers                                                      */
/* ------------------------------------------------------------------------ */

/** Next SP/HT-separated field of *cur; false when none is left. */
static bool next_field(sip_str *cur, sip_str *field)
{
	size_t i = 0;

	if (cur->len == 0)
		return false;
	while (i < cur->len && sip_is_ws(cur->p[i]))
		i++;
	if (i == cur->len) {
		cur->p += i;
		cur->len = 0;
		return false;
	}
	size_t start = i;
	while (i < cur->len && !sip_is_ws(cur->p[i]))
		i++;
	field->p = cur->p + start;
	field->len = i - start;
	cur->p += i;
	cur->len -= i;
	return true;
}

/** True when only SP/HT remain in @p s. */
static bool only_ws(sip_str s)
{
	for (size_t i = 0; i < s.len; i++) {
		if (!sip_is_ws(s.p[i]))
			return false;
	}
	return true;
}

/** Position of @p c in @p s, or s.len. */
static size_t find_char(sip_str s, char c)
{
	const char *hit = s.len ? memchr(s.p, c, s.len) : NULL;
	return hit ? (size_t)(hit - s.p) : s.len;
}

static bool all_digits(sip_str s)
{
	if (s.len == 0)
		return false;
	for (size_t i = 0; i < s.len; i++) {
		if (s.p[i] < '0' || s.p[i] > '9')
			return false;
	}
	return true;
}

static bool is_token(sip_str s)
{
	if (s.len == 0)
		return false;
	for (size_t i = 0; i < s.len; i++) {
		if (!sip_is_token_char(s.p[i]))
			return false;
	}
	return true;
}

static int to_u32(sip_str s, uint32_t max, uint32_t *out)
{
	uint64_t v;

	if (sip_str_to_u64(s, max, &v) != 0)
		return -EBADMSG;
	*out = (uint32_t)v;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Line parsers                                                             */
/* ------------------------------------------------------------------------ */

static int parse_origin(sip_str v, struct sdp_origin *o)
{
	sip_str *f[] = {&o->username, &o->sess_id,  &o->sess_version,
			&o->nettype,  &o->addrtype, &o->address};

	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		if (!next_field(&v, f[i]))
			return -EBADMSG;
	}
	if (v.len != 0 || !all_digits(o->sess_id) ||
	    !all_digits(o->sess_version))
		return -EBADMSG;
	return 0;
}

static int parse_conn(sip_str v, struct sdp_conn *c)
{
	sip_str addr;

	memset(c, 0, sizeof(*c));
	if (!next_field(&v, &c->nettype) || !next_field(&v, &c->addrtype) ||
	    !next_field(&v, &addr) || v.len != 0)
		return -EBADMSG;

	bool ip4 = sip_str_ieq_c(c->addrtype, "IP4");
	bool ip6 = sip_str_ieq_c(c->addrtype, "IP6");
	size_t slash = (ip4 || ip6) ? find_char(addr, '/') : addr.len;

	c->address = sip_str_sub(addr, 0, slash);
	if (c->address.len == 0)
		return -EBADMSG;
	if (slash == addr.len)
		return 0;

	sip_str rest = sip_str_sub(addr, slash + 1, addr.len);
	size_t s2 = find_char(rest, '/');
	sip_str first = sip_str_sub(rest, 0, s2);
	uint32_t n;

	if (ip4) {
		if (to_u32(first, 255, &n) != 0)
			return -EBADMSG;
		c->has_ttl = true;
		c->ttl = (uint8_t)n;
		if (s2 == rest.len)
			return 0;
		first = sip_str_sub(rest, s2 + 1, rest.len);
	} else if (s2 != rest.len) {
		return -EBADMSG; /* IP6 has no TTL: addr/count only */
	}
	if (to_u32(first, UINT32_MAX, &n) != 0 || n == 0)
		return -EBADMSG;
	c->has_count = true;
	c->count = n;
	return 0;
}

static int parse_bw(sip_str v, struct sdp_bw *bw)
{
	size_t colon = find_char(v, ':');

	if (colon == v.len)
		return -EBADMSG;
	bw->type = sip_str_sub(v, 0, colon);
	if (!is_token(bw->type))
		return -EBADMSG;
	return to_u32(sip_str_trim(sip_str_sub(v, colon + 1, v.len)),
		      UINT32_MAX, &bw->value);
}

static int parse_time(sip_str v, struct sdp_time *t)
{
	sip_str a, b;

	memset(t, 0, sizeof(*t));
	if (!next_field(&v, &a) || !next_field(&v, &b) || v.len != 0)
		return -EBADMSG;
	if (sip_str_to_u64(a, UINT64_MAX, &t->start) != 0 ||
	    sip_str_to_u64(b, UINT64_MAX, &t->stop) != 0)
		return -EBADMSG;
	return 0;
}

static int parse_attr(sip_str v, struct sdp_attr *a)
{
	size_t colon = find_char(v, ':');

	a->name = sip_str_sub(v, 0, colon);
	if (!is_token(a->name))
		return -EBADMSG;
	a->has_value = colon < v.len;
	a->value =
		a->has_value ? sip_str_sub(v, colon + 1, v.len) : SIP_STR_NULL;
	return 0;
}

static int parse_media(sip_str v, struct sdp_media *m)
{
	sip_str port, fmt;
	uint32_t n;

	memset(m, 0, sizeof(*m));
	if (!next_field(&v, &m->media) || !next_field(&v, &port) ||
	    !next_field(&v, &m->proto))
		return -EBADMSG;

	size_t slash = find_char(port, '/');
	if (to_u32(sip_str_sub(port, 0, slash), 65535, &n) != 0)
		return -EBADMSG;
	m->port = (uint16_t)n;
	if (slash < port.len) {
		if (to_u32(sip_str_sub(port, slash + 1, port.len), 65535, &n) !=
		    0)
			return -EBADMSG;
		m->has_nports = true;
		m->nports = (uint16_t)n;
	}
	while (next_field(&v, &fmt)) {
		if (m->nfmts == SDP_MAX_FMTS)
			return -E2BIG;
		m->fmts[m->nfmts++] = fmt;
	}
	return m->nfmts ? 0 : -EBADMSG;
}

/** Raw value that must not be empty (r=, z=, k=, u=, e=, p=). */
static int set_raw(sip_str *dst, sip_str v)
{
	if (v.len == 0 || only_ws(v))
		return -EBADMSG;
	*dst = v;
	return 0;
}

/** Text that may be empty (s=, i=); stays non-NULL when empty. */
static void set_text(sip_str *dst, sip_str v)
{
	*dst = v;
}

/* ------------------------------------------------------------------------ */
/* Session parser                                                           */
/* ------------------------------------------------------------------------ */

struct parse_state {
	struct sdp_session *s;
	struct sdp_media *m; /**< current media section, NULL at session */
	bool has_origin, has_name;
};

static int session_line(struct parse_state *st, char type, sip_str v)
{
	struct sdp_session *s = st->s;

	switch (type) {
	case 'o':
		if (st->has_origin)
			return -EBADMSG;
		st->has_origin = true;
		return parse_origin(v, &s->origin);
	case 's':
		if (st->has_name)
			return -EBADMSG;
		st->has_name = true;
		set_text(&s->name, v);
		return 0;
	case 'i':
		if (s->info.p)
			return -EBADMSG;
		set_text(&s->info, v);
		return 0;
	case 'u':
		if (s->uri.p)
			return -EBADMSG;
		return set_raw(&s->uri, v);
	case 'e':
		if (s->nemails == SDP_MAX_EMAILS)
			return -E2BIG;
		return set_raw(&s->emails[s->nemails++], v);
	case 'p':
		if (s->nphones == SDP_MAX_PHONES)
			return -E2BIG;
		return set_raw(&s->phones[s->nphones++], v);
	case 'c':
		if (s->has_conn)
			return -EBADMSG;
		s->has_conn = true;
		return parse_conn(v, &s->conn);
	case 'b':
		if (s->nbw == SDP_MAX_BW)
			return -E2BIG;
		return parse_bw(v, &s->bw[s->nbw++]);
	case 't':
		if (s->ntimes == SDP_MAX_TIMES)
			return -E2BIG;
		return parse_time(v, &s->times[s->ntimes++]);
	case 'r': {
		if (s->ntimes == 0)
			return -EBADMSG;
		struct sdp_time *t = &s->times[s->ntimes - 1];
		if (t->nrepeats == SDP_MAX_REPEATS)
			return -E2BIG;
		return set_raw(&t->repeats[t->nrepeats++], v);
	}
	case 'z':
		if (s->zone.p)
			return -EBADMSG;
		return set_raw(&s->zone, v);
	case 'k':
		if (s->key.p)
			return -EBADMSG;
		return set_raw(&s->key, v);
	case 'a':
		if (s->nattrs == SDP_MAX_ATTRS)
			return -E2BIG;
		return parse_attr(v, &s->attrs[s->nattrs++]);
	default:
		return -EBADMSG;
	}
}

static int media_line(struct parse_state *st, char type, sip_str v)
{
	struct sdp_media *m = st->m;

	switch (type) {
	case 'i':
		if (m->info.p)
			return -EBADMSG;
		set_text(&m->info, v);
		return 0;
	case 'c':
		if (m->nconns == SDP_MAX_CONNS)
			return -E2BIG;
		return parse_conn(v, &m->conns[m->nconns++]);
	case 'b':
		if (m->nbw == SDP_MAX_BW)
			return -E2BIG;
		return parse_bw(v, &m->bw[m->nbw++]);
	case 'k':
		if (m->key.p)
			return -EBADMSG;
		return set_raw(&m->key, v);
	case 'a':
		if (m->nattrs == SDP_MAX_ATTRS)
			return -E2BIG;
		return parse_attr(v, &m->attrs[m->nattrs++]);
	default:
		return -EBADMSG;
	}
}

/** The session part is complete: o=, s= and t= are present. */
static bool session_complete(const struct parse_state *st)
{
	return st->has_origin && st->has_name && st->s->ntimes > 0;
}

int sdp_parse(struct sdp_session *s, const char *buf, size_t len,
	      unsigned *err_line)
{
	struct parse_state st = {.s = s};
	size_t pos = 0;
	unsigned lineno = 0;
	bool blank_seen = false;
	int rc = 0;

	if (err_line)
		*err_line = 0;
	if (!s || (!buf && len))
		return -EINVAL;
	memset(s, 0, sizeof(*s));

	while (pos < len) {
		const char *lf = memchr(buf + pos, '\n', len - pos);
		size_t end = lf ? (size_t)(lf - buf) : len;
		sip_str line = {buf + pos, end - pos};

		pos = lf ? end + 1 : len;
		lineno++;
		if (line.len && line.p[line.len - 1] == '\r')
			line.len--;
		if (line.len == 0) {
			blank_seen = true;
			continue;
		}
		if (blank_seen || line.len < 2 || line.p[1] != '=' ||
		    line.p[0] < 'a' || line.p[0] > 'z' ||
		    memchr(line.p, '\r', line.len) ||
		    memchr(line.p, '\0', line.len)) {
			rc = -EBADMSG;
			break;
		}

		char type = line.p[0];
		sip_str v = sip_str_sub(line, 2, line.len);

		if (lineno == 1) {
			if (type != 'v' || !sip_str_eq(v, SIP_STR_LIT("0"))) {
				rc = -EBADMSG;
				break;
			}
			continue;
		}
		if (type == 'm') {
			if (!st.m && !session_complete(&st)) {
				rc = -EBADMSG;
				break;
			}
			if (s->nmedia == SDP_MAX_MEDIA) {
				rc = -E2BIG;
				break;
			}
			st.m = &s->media[s->nmedia++];
			rc = parse_media(v, st.m);
		} else if (st.m) {
			rc = media_line(&st, type, v);
		} else {
			rc = session_line(&st, type, v);
		}
		if (rc < 0)
			break;
	}
	if (rc == 0 && lineno == 0) {
		lineno = 1; /* empty description: v= missing */
		rc = -EBADMSG;
	}
	if (rc == 0 && !st.m && !session_complete(&st)) {
		lineno++;
		rc = -EBADMSG;
	}
	if (rc < 0 && err_line)
		*err_line = lineno;
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Writer                                                                   */
/* ------------------------------------------------------------------------ */

struct sdp_wr {
	char *buf;
	size_t cap;
	size_t len;
	bool overflow;
	bool invalid;
};

static void wr_bytes(struct sdp_wr *w, const char *p, size_t n)
{
	if (w->overflow || n > w->cap - w->len) {
		w->overflow = true;
		return;
	}
	if (n)
		memcpy(w->buf + w->len, p, n);
	w->len += n;
}

/** Free text: anything but CR, LF and NUL. */
static void wr_text(struct sdp_wr *w, sip_str s)
{
	for (size_t i = 0; i < s.len; i++) {
		if (s.p[i] == '\r' || s.p[i] == '\n' || s.p[i] == '\0')
			w->invalid = true;
	}
	wr_bytes(w, s.p, s.len);
}

/** One field of a structured line: non-empty, no white space either. */
static void wr_field(struct sdp_wr *w, sip_str s)
{
	if (s.len == 0)
		w->invalid = true;
	for (size_t i = 0; i < s.len; i++) {
		if (sip_is_ws(s.p[i]))
			w->invalid = true;
	}
	wr_text(w, s);
}

static void wr_c(struct sdp_wr *w, const char *c)
{
	wr_bytes(w, c, strlen(c));
}

static void wr_u64(struct sdp_wr *w, uint64_t v)
{
	char tmp[20];
	size_t n = 0;

	do {
		tmp[sizeof(tmp) - 1 - n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	wr_bytes(w, tmp + sizeof(tmp) - n, n);
}

static void wr_eol(struct sdp_wr *w)
{
	wr_bytes(w, "\r\n", 2);
}

static void wr_line(struct sdp_wr *w, const char *prefix, sip_str v)
{
	wr_c(w, prefix);
	wr_text(w, v);
	wr_eol(w);
}

static void wr_opt(struct sdp_wr *w, const char *prefix, sip_str v)
{
	if (v.p)
		wr_line(w, prefix, v);
}

static void wr_conn(struct sdp_wr *w, const struct sdp_conn *c)
{
	bool ip4 = sip_str_ieq_c(c->addrtype, "IP4");
	bool ip6 = sip_str_ieq_c(c->addrtype, "IP6");

	/* what sdp_parse() could not read back the same way */
	if ((c->has_ttl && !ip4) || (c->has_count && !ip4 && !ip6) ||
	    (c->has_count && ip4 && !c->has_ttl) ||
	    (c->has_count && c->count == 0) ||
	    ((ip4 || ip6) && find_char(c->address, '/') < c->address.len))
		w->invalid = true;
	wr_c(w, "c=");
	wr_field(w, c->nettype);
	wr_c(w, " ");
	wr_field(w, c->addrtype);
	wr_c(w, " ");
	wr_field(w, c->address);
	if (c->has_ttl) {
		wr_c(w, "/");
		wr_u64(w, c->ttl);
	}
	if (c->has_count) {
		wr_c(w, "/");
		wr_u64(w, c->count);
	}
	wr_eol(w);
}

static void wr_bws(struct sdp_wr *w, const struct sdp_bw *bw, unsigned n)
{
	if (n > SDP_MAX_BW) {
		w->invalid = true;
		return;
	}
	for (unsigned i = 0; i < n; i++) {
		if (!is_token(bw[i].type))
			w->invalid = true;
		wr_c(w, "b=");
		wr_text(w, bw[i].type);
		wr_c(w, ":");
		wr_u64(w, bw[i].value);
		wr_eol(w);
	}
}

static void wr_attrs(struct sdp_wr *w, const struct sdp_attr *a, unsigned n)
{
	if (n > SDP_MAX_ATTRS) {
		w->invalid = true;
		return;
	}
	for (unsigned i = 0; i < n; i++) {
		if (!is_token(a[i].name))
			w->invalid = true;
		wr_c(w, "a=");
		wr_text(w, a[i].name);
		if (a[i].has_value) {
			wr_c(w, ":");
			wr_text(w, a[i].value);
		}
		wr_eol(w);
	}
}

/** Raw value lines that sdp_parse() requires to be non-blank. */
static void wr_raw(struct sdp_wr *w, const char *prefix, sip_str v)
{
	if (v.len == 0 || only_ws(v))
		w->invalid = true;
	wr_line(w, prefix, v);
}

static void wr_media(struct sdp_wr *w, const struct sdp_media *m)
{
	wr_c(w, "m=");
	wr_field(w, m->media);
	wr_c(w, " ");
	wr_u64(w, m->port);
	if (m->has_nports) {
		wr_c(w, "/");
		wr_u64(w, m->nports);
	}
	wr_c(w, " ");
	wr_field(w, m->proto);
	if (m->nfmts == 0 || m->nfmts > SDP_MAX_FMTS) {
		w->invalid = true;
		return;
	}
	for (unsigned i = 0; i < m->nfmts; i++) {
		wr_c(w, " ");
		wr_field(w, m->fmts[i]);
	}
	wr_eol(w);
	wr_opt(w, "i=", m->info);
	if (m->nconns > SDP_MAX_CONNS) {
		w->invalid = true;
		return;
	}
	for (unsigned i = 0; i < m->nconns; i++)
		wr_conn(w, &m->conns[i]);
	wr_bws(w, m->bw, m->nbw);
	if (m->key.p)
		wr_raw(w, "k=", m->key);
	wr_attrs(w, m->attrs, m->nattrs);
}

static void wr_session(struct sdp_wr *w, const struct sdp_session *s)
{
	const struct sdp_origin *o = &s->origin;

	if (s->nemails > SDP_MAX_EMAILS || s->nphones > SDP_MAX_PHONES ||
	    s->ntimes == 0 || s->ntimes > SDP_MAX_TIMES ||
	    s->nmedia > SDP_MAX_MEDIA || !all_digits(o->sess_id) ||
	    !all_digits(o->sess_version)) {
		w->invalid = true;
		return;
	}
	wr_c(w, "v=0\r\no=");
	wr_field(w, o->username);
	wr_c(w, " ");
	wr_field(w, o->sess_id);
	wr_c(w, " ");
	wr_field(w, o->sess_version);
	wr_c(w, " ");
	wr_field(w, o->nettype);
	wr_c(w, " ");
	wr_field(w, o->addrtype);
	wr_c(w, " ");
	wr_field(w, o->address);
	wr_eol(w);
	wr_line(w, "s=", s->name);
	wr_opt(w, "i=", s->info);
	if (s->uri.p)
		wr_raw(w, "u=", s->uri);
	for (unsigned i = 0; i < s->nemails; i++)
		wr_raw(w, "e=", s->emails[i]);
	for (unsigned i = 0; i < s->nphones; i++)
		wr_raw(w, "p=", s->phones[i]);
	if (s->has_conn)
		wr_conn(w, &s->conn);
	wr_bws(w, s->bw, s->nbw);
	for (unsigned i = 0; i < s->ntimes; i++) {
		const struct sdp_time *t = &s->times[i];

		wr_c(w, "t=");
		wr_u64(w, t->start);
		wr_c(w, " ");
		wr_u64(w, t->stop);
		wr_eol(w);
		if (t->nrepeats > SDP_MAX_REPEATS) {
			w->invalid = true;
			return;
		}
		for (unsigned j = 0; j < t->nrepeats; j++)
			wr_raw(w, "r=", t->repeats[j]);
	}
	if (s->zone.p)
		wr_raw(w, "z=", s->zone);
	if (s->key.p)
		wr_raw(w, "k=", s->key);
	wr_attrs(w, s->attrs, s->nattrs);
	for (unsigned i = 0; i < s->nmedia; i++)
		wr_media(w, &s->media[i]);
}

int sdp_write(const struct sdp_session *s, char *buf, size_t cap)
{
	struct sdp_wr w = {.buf = buf, .cap = buf ? cap : 0};

	if (!s)
		return -EINVAL;
	wr_session(&w, s);
	if (w.invalid)
		return -EINVAL;
	if (w.overflow || w.len > INT_MAX)
		return -ENOSPC;
	if (buf && w.len < cap)
		buf[w.len] = '\0';
	return (int)w.len;
}

/* ------------------------------------------------------------------------ */
/* Comparison                                                               */
/* ------------------------------------------------------------------------ */

/** Equal contents and equal presence (p == NULL means absent). */
static bool opt_eq(sip_str a, sip_str b)
{
	return (a.p == NULL) == (b.p == NULL) && sip_str_eq(a, b);
}

static bool conn_eq(const struct sdp_conn *a, const struct sdp_conn *b)
{
	return sip_str_eq(a->nettype, b->nettype) &&
	       sip_str_eq(a->addrtype, b->addrtype) &&
	       sip_str_eq(a->address, b->address) && a->has_ttl == b->has_ttl &&
	       (!a->has_ttl || a->ttl == b->ttl) &&
	       a->has_count == b->has_count &&
	       (!a->has_count || a->count == b->count);
}

static bool bws_eq(const struct sdp_bw *a, const struct sdp_bw *b, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		if (!sip_str_eq(a[i].type, b[i].type) ||
		    a[i].value != b[i].value)
			return false;
	}
	return true;
}

static bool attrs_eq(const struct sdp_attr *a, const struct sdp_attr *b,
		     unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		if (!sip_str_eq(a[i].name, b[i].name) ||
		    a[i].has_value != b[i].has_value ||
		    !sip_str_eq(a[i].value, b[i].value))
			return false;
	}
	return true;
}

static bool strs_eq(const sip_str *a, const sip_str *b, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		if (!sip_str_eq(a[i], b[i]))
			return false;
	}
	return true;
}

static bool media_eq(const struct sdp_media *a, const struct sdp_media *b)
{
	if (!sip_str_eq(a->media, b->media) || a->port != b->port ||
	    a->has_nports != b->has_nports ||
	    (a->has_nports && a->nports != b->nports) ||
	    !sip_str_eq(a->proto, b->proto) || a->nfmts != b->nfmts ||
	    a->nfmts > SDP_MAX_FMTS || !strs_eq(a->fmts, b->fmts, a->nfmts) ||
	    !opt_eq(a->info, b->info) || a->nconns != b->nconns ||
	    a->nconns > SDP_MAX_CONNS || a->nbw != b->nbw ||
	    a->nbw > SDP_MAX_BW || !bws_eq(a->bw, b->bw, a->nbw) ||
	    !opt_eq(a->key, b->key) || a->nattrs != b->nattrs ||
	    a->nattrs > SDP_MAX_ATTRS ||
	    !attrs_eq(a->attrs, b->attrs, a->nattrs))
		return false;
	for (unsigned i = 0; i < a->nconns; i++) {
		if (!conn_eq(&a->conns[i], &b->conns[i]))
			return false;
	}
	return true;
}

static bool origin_eq(const struct sdp_origin *a, const struct sdp_origin *b)
{
	return sip_str_eq(a->username, b->username) &&
	       sip_str_eq(a->sess_id, b->sess_id) &&
	       sip_str_eq(a->sess_version, b->sess_version) &&
	       sip_str_eq(a->nettype, b->nettype) &&
	       sip_str_eq(a->addrtype, b->addrtype) &&
	       sip_str_eq(a->address, b->address);
}

static bool times_eq(const struct sdp_time *a, const struct sdp_time *b,
		     unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		if (a[i].start != b[i].start || a[i].stop != b[i].stop ||
		    a[i].nrepeats != b[i].nrepeats ||
		    a[i].nrepeats > SDP_MAX_REPEATS ||
		    !strs_eq(a[i].repeats, b[i].repeats, a[i].nrepeats))
			return false;
	}
	return true;
}

bool sdp_session_equal(const struct sdp_session *a, const struct sdp_session *b)
{
	if (!origin_eq(&a->origin, &b->origin) ||
	    !sip_str_eq(a->name, b->name) || !opt_eq(a->info, b->info) ||
	    !opt_eq(a->uri, b->uri) || a->nemails != b->nemails ||
	    a->nemails > SDP_MAX_EMAILS ||
	    !strs_eq(a->emails, b->emails, a->nemails) ||
	    a->nphones != b->nphones || a->nphones > SDP_MAX_PHONES ||
	    !strs_eq(a->phones, b->phones, a->nphones) ||
	    a->has_conn != b->has_conn ||
	    (a->has_conn && !conn_eq(&a->conn, &b->conn)) || a->nbw != b->nbw ||
	    a->nbw > SDP_MAX_BW || !bws_eq(a->bw, b->bw, a->nbw) ||
	    a->ntimes != b->ntimes || a->ntimes > SDP_MAX_TIMES ||
	    !times_eq(a->times, b->times, a->ntimes) ||
	    !opt_eq(a->zone, b->zone) || !opt_eq(a->key, b->key) ||
	    a->nattrs != b->nattrs || a->nattrs > SDP_MAX_ATTRS ||
	    !attrs_eq(a->attrs, b->attrs, a->nattrs) ||
	    a->nmedia != b->nmedia || a->nmedia > SDP_MAX_MEDIA)
		return false;
	for (unsigned i = 0; i < a->nmedia; i++) {
		if (!media_eq(&a->media[i], &b->media[i]))
			return false;
	}
	return true;
}

/* ------------------------------------------------------------------------ */
/* Lookups                                                                  */
/* ------------------------------------------------------------------------ */

const struct sdp_attr *sdp_attr_next(const struct sdp_attr *attrs, unsigned n,
				     const char *name, unsigned *pos)
{
	for (unsigned i = *pos; i < n; i++) {
		if (sip_str_ieq_c(attrs[i].name, name)) {
			*pos = i + 1;
			return &attrs[i];
		}
	}
	*pos = n;
	return NULL;
}

const struct sdp_attr *sdp_media_attr(const struct sdp_media *m,
				      const char *name)
{
	unsigned pos = 0;

	return sdp_attr_next(m->attrs, m->nattrs, name, &pos);
}

/**
 * Split "<pt> <rest>" of an rtpmap/fmtp value.
 * @return true when the payload type is @p pt.
 */
static bool pt_matches(sip_str v, unsigned pt, sip_str *rest)
{
	sip_str cur = v, num;
	uint64_t n;

	if (!next_field(&cur, &num) || sip_str_to_u64(num, UINT_MAX, &n) != 0 ||
	    n != pt)
		return false;
	*rest = sip_str_trim(cur);
	return true;
}

int sdp_rtpmap(const struct sdp_media *m, unsigned pt, struct sdp_rtpmap *out)
{
	const struct sdp_attr *a;
	unsigned pos = 0;
	sip_str rest;

	while ((a = sdp_attr_next(m->attrs, m->nattrs, "rtpmap", &pos))) {
		if (!pt_matches(a->value, pt, &rest))
			continue;

		size_t s1 = find_char(rest, '/');
		sip_str after = sip_str_sub(rest, s1 + 1, rest.len);
		size_t s2 = find_char(after, '/');
		uint32_t clock, ch = 1;

		out->encoding = sip_str_sub(rest, 0, s1);
		if (out->encoding.len == 0 || s1 == rest.len ||
		    to_u32(sip_str_sub(after, 0, s2), UINT32_MAX, &clock) != 0)
			return -EBADMSG;
		if (s2 < after.len &&
		    to_u32(sip_str_sub(after, s2 + 1, after.len), UINT_MAX,
			   &ch) != 0)
			return -EBADMSG;
		out->clock = clock;
		out->channels = ch;
		return 1;
	}
	return 0;
}

int sdp_fmtp(const struct sdp_media *m, unsigned pt, sip_str *params)
{
	const struct sdp_attr *a;
	unsigned pos = 0;

	while ((a = sdp_attr_next(m->attrs, m->nattrs, "fmtp", &pos))) {
		if (pt_matches(a->value, pt, params))
			return 1;
	}
	return 0;
}

static const char *const dir_names[] = {
	[SDP_DIR_SENDRECV] = "sendrecv",
	[SDP_DIR_SENDONLY] = "sendonly",
	[SDP_DIR_RECVONLY] = "recvonly",
	[SDP_DIR_INACTIVE] = "inactive",
};

const char *sdp_dir_name(enum sdp_dir d)
{
	return (unsigned)d < sizeof(dir_names) / sizeof(dir_names[0])
		       ? dir_names[d]
		       : "";
}

/** First direction attribute in attrs[0..n), or -1. */
static int find_dir(const struct sdp_attr *attrs, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		for (int d = 0;
		     d < (int)(sizeof(dir_names) / sizeof(dir_names[0])); d++) {
			if (sip_str_ieq_c(attrs[i].name, dir_names[d]))
				return d;
		}
	}
	return -1;
}

enum sdp_dir sdp_session_dir(const struct sdp_session *s)
{
	int d = find_dir(s->attrs, s->nattrs);

	return d < 0 ? SDP_DIR_SENDRECV : (enum sdp_dir)d;
}

enum sdp_dir sdp_media_dir(const struct sdp_session *s,
			   const struct sdp_media *m)
{
	int d = find_dir(m->attrs, m->nattrs);

	return d < 0 ? sdp_session_dir(s) : (enum sdp_dir)d;
}

const struct sdp_conn *sdp_media_conn(const struct sdp_session *s,
				      const struct sdp_media *m)
{
	if (m->nconns)
		return &m->conns[0];
	return s->has_conn ? &s->conn : NULL;
}
