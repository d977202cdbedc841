/**
 * @file headers.c  Parsed views of header values: Via, name-addr, Contact,
 * CSeq, numbers, credentials/challenges and Content-Type (RFC 3261 §20, §25).
 *
 * Every view reads one value (for list headers: one element from
 * sip_list_next) and fills a struct of slices into it.
 */
#include "sipmsg/sipmsg.h"

#include <errno.h>
#include <string.h>

static size_t skip_token(sip_str v, size_t i)
{
	while (i < v.len && sip_is_token_char(v.p[i]))
		i++;
	return i;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_alnum(char c)
{
	return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
}

/* Host of a sent-by: IPv6 reference, IPv4 address or host name. Returns the
 * end offset, or 0 on a syntax error. */
static size_t parse_host(sip_str v, size_t i, sip_str *host,
			 enum sip_host_kind *kind)
{
	size_t s = i;

	if (i < v.len && v.p[i] == '[') {
		i++;
		while (i < v.len &&
		       (is_alnum(v.p[i]) || v.p[i] == ':' || v.p[i] == '.'))
			i++;
		if (i >= v.len || v.p[i] != ']' || i == s + 1)
			return 0;
		i++;
		*kind = SIP_HOST_IPV6;
	} else {
		bool digits_dots = true;
		unsigned dots = 0;
		while (i < v.len && (is_alnum(v.p[i]) || v.p[i] == '-' ||
				     v.p[i] == '.' || v.p[i] == '_')) {
			if (v.p[i] == '.')
				dots++;
			else if (!is_digit(v.p[i]))
				digits_dots = false;
			i++;
		}
		if (i == s)
			return 0;
		*kind = (digits_dots && dots == 3) ? SIP_HOST_IPV4
						   : SIP_HOST_NAME;
	}
	*host = (sip_str){v.p + s, i - s};
	return i;
}

static int parse_port(sip_str digits, uint16_t *port)
{
	uint64_t n;

	if (sip_str_to_u64(digits, 65535, &n) != 0)
		return -EBADMSG;
	*port = (uint16_t)n;
	return 0;
}

int sip_via_parse(sip_str value, struct sip_via *via)
{
	sip_str v = sip_str_trim(value);
	size_t i = 0, s;

	memset(via, 0, sizeof(*via));
	/* sent-protocol = protocol-name SLASH protocol-version SLASH transport
	 * where SLASH may be surrounded by LWS. */
	s = i;
	i = skip_token(v, i);
	if (i == s)
		return -EBADMSG;
	for (int part = 0; part < 2; part++) {
		i = sip_skip_lws(v, i);
		if (i >= v.len || v.p[i] != '/')
			return -EBADMSG;
		i = sip_skip_lws(v, i + 1);
		size_t t = i;
		i = skip_token(v, i);
		if (i == t)
			return -EBADMSG;
		if (part == 0)
			via->protocol = (sip_str){v.p + s, i - s};
		else
			via->transport = (sip_str){v.p + t, i - t};
	}
	s = i;
	i = sip_skip_lws(v, i);
	if (i == s)
		return -EBADMSG;
	i = parse_host(v, i, &via->host, &via->host_kind);
	if (i == 0)
		return -EBADMSG;
	i = sip_skip_lws(v, i);
	if (i < v.len && v.p[i] == ':') {
		i = sip_skip_lws(v, i + 1);
		s = i;
		while (i < v.len && is_digit(v.p[i]))
			i++;
		if (parse_port((sip_str){v.p + s, i - s}, &via->port))
			return -EBADMSG;
		via->has_port = true;
		i = sip_skip_lws(v, i);
	}
	if (i == v.len)
		return 0;
	if (v.p[i] != ';')
		return -EBADMSG;
	via->params = (sip_str){v.p + i, v.len - i};

	sip_str cur = via->params, name, val;
	int rc;
	while ((rc = sip_param_next(&cur, &name, &val)) > 0) {
		/* the names below are 3, 5, 6 and 8 long: skip the rest
		 * (most extension params) without comparing */
		if (name.len != 3 && name.len != 5 && name.len != 6 &&
		    name.len != 8)
			continue;
		if (sip_str_ieq_c(name, "branch")) {
			if (val.len == 0)
				return -EBADMSG;
			via->branch = val;
		} else if (sip_str_ieq_c(name, "received")) {
			if (val.len == 0)
				return -EBADMSG;
			via->received = val;
		} else if (sip_str_ieq_c(name, "maddr")) {
			if (val.len == 0)
				return -EBADMSG;
			via->maddr = val;
		} else if (sip_str_ieq_c(name, "rport")) {
			via->has_rport = true;
			if (val.len) {
				if (parse_port(val, &via->rport))
					return -EBADMSG;
				via->rport_value = true;
			}
		} else if (sip_str_ieq_c(name, "ttl")) {
			uint64_t n;
			if (sip_str_to_u64(val, 255, &n) != 0)
				return -EBADMSG;
			via->has_ttl = true;
			via->ttl = (uint8_t)n;
		}
	}
	return rc < 0 ? -EBADMSG : 0;
}

/* End of a quoted string starting at v.p[i] == '"' (offset after the
 * closing quote), or 0 when unterminated. */
static size_t skip_quoted(sip_str v, size_t i)
{
	for (i++; i < v.len; i++) {
		if (v.p[i] == '\\')
			i++;
		else if (v.p[i] == '"')
			return i + 1;
	}
	return 0;
}

/* After the URI (and its closing '>'), only header params may follow. */
static int parse_after_uri(sip_str v, size_t i, struct sip_addr *a)
{
	i = sip_skip_lws(v, i);
	if (i == v.len)
		return 0;
	if (v.p[i] != ';')
		return -EBADMSG;
	a->params = (sip_str){v.p + i, v.len - i};

	sip_str cur = a->params, name, val;
	int rc;
	while ((rc = sip_param_next(&cur, &name, &val)) > 0) {
		if (sip_str_ieq_c(name, "tag")) {
			if (val.len == 0)
				return -EBADMSG;
			a->tag = val;
		}
	}
	return rc < 0 ? -EBADMSG : 0;
}

int sip_addr_parse(sip_str value, struct sip_addr *a)
{
	sip_str v = sip_str_trim(value);
	size_t i = 0;

	memset(a, 0, sizeof(*a));
	if (v.len == 0)
		return -EBADMSG;

	if (v.p[0] == '"') {
		i = skip_quoted(v, 0);
		if (i == 0)
			return -EBADMSG;
		a->display = (sip_str){v.p, i};
		i = sip_skip_lws(v, i);
		if (i >= v.len || v.p[i] != '<')
			return -EBADMSG;
	} else {
		/* *(token LWS) before '<', or an addr-spec. */
		while (i < v.len &&
		       (sip_is_token_char(v.p[i]) || sip_is_lws(v.p[i])))
			i++;
		if (i < v.len && v.p[i] == '<') {
			a->display = sip_str_trim((sip_str){v.p, i});
		} else {
			/* addr-spec: the URI ends at the first ';' (§20.10) */
			const char *semi = memchr(v.p, ';', v.len);
			size_t end = semi ? (size_t)(semi - v.p) : v.len;
			a->uri_text = sip_str_trim((sip_str){v.p, end});
			if (memchr(a->uri_text.p, ',', a->uri_text.len) ||
			    memchr(a->uri_text.p, '?', a->uri_text.len))
				return -EBADMSG; /* must be in <> */
			if (sip_uri_parse(a->uri_text, &a->uri) != 0)
				return -EBADMSG;
			return parse_after_uri(v, end, a);
		}
	}
	/* name-addr: v.p[i] == '<' */
	const char *gt = memchr(v.p + i, '>', v.len - i);
	if (!gt)
		return -EBADMSG;
	a->bracketed = true;
	a->uri_text = (sip_str){v.p + i + 1, (size_t)(gt - v.p) - i - 1};
	if (sip_uri_parse(a->uri_text, &a->uri) != 0)
		return -EBADMSG;
	return parse_after_uri(v, (size_t)(gt - v.p) + 1, a);
}

/* qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ) */
static int parse_q(sip_str s, uint16_t *q)
{
	unsigned v, scale = 100;

	if (s.len == 0 || s.len > 5 || (s.p[0] != '0' && s.p[0] != '1'))
		return -EBADMSG;
	v = (unsigned)(s.p[0] - '0') * 1000;
	if (s.len > 1) {
		if (s.p[1] != '.')
			return -EBADMSG;
		for (size_t i = 2; i < s.len; i++, scale /= 10) {
			if (!is_digit(s.p[i]))
				return -EBADMSG;
			v += (unsigned)(s.p[i] - '0') * scale;
		}
	}
	if (v > 1000)
		return -EBADMSG;
	*q = (uint16_t)v;
	return 0;
}

int sip_contact_parse(sip_str value, struct sip_contact *c)
{
	sip_str v = sip_str_trim(value);
	int rc;

	memset(c, 0, sizeof(*c));
	if (v.len == 1 && v.p[0] == '*') {
		c->star = true;
		return 0;
	}
	rc = sip_addr_parse(v, &c->addr);
	if (rc)
		return rc;

	sip_str cur = c->addr.params, name, val;
	while ((rc = sip_param_next(&cur, &name, &val)) > 0) {
		if (sip_str_ieq_c(name, "q")) {
			if (parse_q(val, &c->q))
				return -EBADMSG;
			c->has_q = true;
		} else if (sip_str_ieq_c(name, "expires")) {
			uint64_t n;
			/* §20.19: a malformed or overlarge value is treated
			 * as absent (the registrar's default applies). */
			if (sip_str_to_u64(val, UINT32_MAX, &n) == 0) {
				c->expires = (uint32_t)n;
				c->has_expires = true;
			}
		}
	}
	return rc < 0 ? -EBADMSG : 0;
}

int sip_cseq_parse(sip_str value, struct sip_cseq *cs)
{
	sip_str v = sip_str_trim(value);
	size_t i = 0;
	uint64_t n;
	int rc;

	memset(cs, 0, sizeof(*cs));
	while (i < v.len && is_digit(v.p[i]))
		i++;
	rc = sip_str_to_u64((sip_str){v.p, i}, UINT32_MAX, &n);
	if (rc)
		return rc == -ERANGE ? -ERANGE : -EBADMSG;
	size_t s = i;
	i = sip_skip_lws(v, i);
	if (i == s)
		return -EBADMSG;
	s = i;
	i = skip_token(v, i);
	if (i == s || i != v.len)
		return -EBADMSG;
	cs->num = (uint32_t)n;
	cs->method = (sip_str){v.p + s, i - s};
	cs->method_id = sip_method_id(cs->method);
	return 0;
}

int sip_uint_parse(sip_str value, uint32_t max, uint32_t *out)
{
	uint64_t n;
	int rc = sip_str_to_u64(sip_str_trim(value), max, &n);

	if (rc)
		return rc == -ERANGE ? -ERANGE : -EBADMSG;
	*out = (uint32_t)n;
	return 0;
}

int sip_auth_parse(sip_str value, struct sip_auth *auth)
{
	sip_str v = sip_str_trim(value);
	size_t i;
	int rc;

	auth->nparams = 0;
	i = skip_token(v, 0);
	if (i == 0)
		return -EBADMSG;
	auth->scheme = (sip_str){v.p, i};
	if (i == v.len)
		return 0;
	if (!sip_is_lws(v.p[i]))
		return -EBADMSG;

	sip_str cur = {v.p + i, v.len - i}, item;
	while ((rc = sip_list_next(&cur, &item)) > 0) {
		if (auth->nparams >= SIP_AUTH_MAX_PARAMS)
			return -E2BIG;
		size_t k = skip_token(item, 0);
		if (k == 0)
			return -EBADMSG;
		sip_str name = {item.p, k};
		k = sip_skip_lws(item, k);
		sip_str val = SIP_STR_NULL;
		bool quoted = false;
		if (k == item.len) {
			/* token68 (e.g. Basic credentials): name only;
			 * trailing '=' padding is part of a token68 */
		} else if (item.p[k] == '=') {
			k = sip_skip_lws(item, k + 1);
			if (k < item.len && item.p[k] == '"') {
				size_t e = skip_quoted(item, k);
				if (e != item.len)
					return -EBADMSG;
				quoted = true;
			} else {
				size_t e = skip_token(item, k);
				/* token68 padding: "abc==" */
				while (e < item.len && item.p[e] == '=')
					e++;
				if (e != item.len)
					return -EBADMSG;
			}
			val = (sip_str){item.p + k, item.len - k};
		} else {
			return -EBADMSG;
		}
		auth->params[auth->nparams].name = name;
		auth->params[auth->nparams].value = val;
		auth->params[auth->nparams].quoted = quoted;
		auth->nparams++;
	}
	return rc < 0 ? -EBADMSG : 0;
}

bool sip_auth_param(const struct sip_auth *auth, const char *name,
		    sip_str *value)
{
	for (unsigned i = 0; i < auth->nparams; i++) {
		if (!sip_str_ieq_c(auth->params[i].name, name))
			continue;
		sip_str v = auth->params[i].value;
		if (auth->params[i].quoted && v.len >= 2) {
			v.p++;
			v.len -= 2;
		}
		*value = v;
		return true;
	}
	return false;
}

int sip_ctype_parse(sip_str value, struct sip_ctype *ct)
{
	sip_str v = sip_str_trim(value);
	size_t i, s;

	memset(ct, 0, sizeof(*ct));
	i = skip_token(v, 0);
	if (i == 0)
		return -EBADMSG;
	ct->type = (sip_str){v.p, i};
	i = sip_skip_lws(v, i);
	if (i >= v.len || v.p[i] != '/')
		return -EBADMSG;
	i = sip_skip_lws(v, i + 1);
	s = i;
	i = skip_token(v, i);
	if (i == s)
		return -EBADMSG;
	ct->subtype = (sip_str){v.p + s, i - s};
	i = sip_skip_lws(v, i);
	if (i == v.len)
		return 0;
	if (v.p[i] != ';')
		return -EBADMSG;
	ct->params = (sip_str){v.p + i, v.len - i};
	sip_str cur = ct->params, name, val;
	int rc;
	while ((rc = sip_param_next(&cur, &name, &val)) > 0)
		;
	return rc < 0 ? -EBADMSG : 0;
}
