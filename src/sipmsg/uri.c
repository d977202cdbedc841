/**
 * @file uri.c  URI parsing and comparison: sip/sips (RFC 3261 §19.1, §25.1,
 * RFC 5118 IPv6 references), tel (RFC 3966) and other absolute URIs.
 *
 * Parsing fills sip_str slices into the caller's text and never allocates;
 * comparison decodes %HH escapes on the fly.
 */
#include "sipmsg/sipmsg.h"

#include <errno.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Character classes (RFC 3261 §25.1, RFC 3966 §3)                          */
/* ------------------------------------------------------------------------ */

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_alnum(char c)
{
	return is_alpha(c) || is_digit(c);
}

static int hex_val(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/** user: unreserved / user-unreserved (escapes handled separately) */
static bool is_user_char(char c)
{
	return sip_cc(c, SIP_CC_USER);
}

static bool is_password_char(char c)
{
	return sip_cc(c, SIP_CC_PASSWORD);
}

/** paramchar without escapes: param-unreserved / unreserved */
static bool is_paramchar(char c)
{
	return sip_cc(c, SIP_CC_PARAM);
}

/** hname / hvalue characters: hnv-unreserved / unreserved */
static bool is_hnv_char(char c)
{
	return sip_cc(c, SIP_CC_HNV);
}

/** uric (RFC 2396): reserved / unreserved, plus [ ] for IPv6 hosts */
static bool is_uric(char c)
{
	return sip_cc(c, SIP_CC_URIC);
}

static bool is_visual_sep(char c)
{
	return c == '-' || c == '.' || c == '(' || c == ')';
}

/** True when a well-formed %HH escape starts at s.p[i]. */
static bool escape_at(sip_str s, size_t i)
{
	return i + 2 < s.len && s.p[i] == '%' && hex_val(s.p[i + 1]) >= 0 &&
	       hex_val(s.p[i + 2]) >= 0;
}

/**
 * Check that every byte of @p s is in class @p ok or part of a %HH escape.
 * @p min_len is the minimum number of bytes.
 */
static bool check_chars(sip_str s, bool (*ok)(char), size_t min_len)
{
	if (s.len < min_len)
		return false;
	for (size_t i = 0; i < s.len; i++) {
		if (s.p[i] == '%') {
			if (!escape_at(s, i))
				return false;
			i += 2;
		} else if (!ok(s.p[i])) {
			return false;
		}
	}
	return true;
}

/** Index of the first @p c in @p s at or after @p from, or s.len. */
static size_t find_char(sip_str s, size_t from, char c)
{
	for (size_t i = from; i < s.len; i++) {
		if (s.p[i] == c)
			return i;
	}
	return s.len;
}

static sip_str slice(sip_str s, size_t from, size_t end)
{
	sip_str r = {s.p + from, end - from};
	return r;
}

/** Next byte of @p s at *i, decoding a %HH escape. */
static unsigned char dec_next(sip_str s, size_t *i)
{
	size_t k = *i;

	if (s.p[k] == '%' && escape_at(s, k)) {
		*i = k + 3;
		return (unsigned char)(hex_val(s.p[k + 1]) * 16 +
				       hex_val(s.p[k + 2]));
	}
	*i = k + 1;
	return (unsigned char)s.p[k];
}

/** Compare after %-decoding, optionally ASCII case-insensitive. */
static bool dec_eq(sip_str a, sip_str b, bool ci)
{
	size_t i = 0, j = 0;

	while (i < a.len && j < b.len) {
		unsigned char ca = dec_next(a, &i), cb = dec_next(b, &j);
		if (ci) {
			ca = (unsigned char)sip_lower((char)ca);
			cb = (unsigned char)sip_lower((char)cb);
		}
		if (ca != cb)
			return false;
	}
	return i == a.len && j == b.len;
}

/** Compare ignoring RFC 3966 visual separators, case-insensitively. */
static bool phone_eq(sip_str a, sip_str b)
{
	size_t i = 0, j = 0;

	for (;;) {
		while (i < a.len && is_visual_sep(a.p[i]))
			i++;
		while (j < b.len && is_visual_sep(b.p[j]))
			j++;
		if (i == a.len || j == b.len)
			return i == a.len && j == b.len;
		if (sip_lower(a.p[i]) != sip_lower(b.p[j]))
			return false;
		i++;
		j++;
	}
}

/**
 * Next item of a validated list: @p sep-separated "name[=value]".
 * *cur must start at an item or at the separator before one.
 */
static bool item_next(sip_str *cur, char sep, sip_str *name, sip_str *value)
{
	sip_str s = *cur;
	size_t i = 0;

	if (s.len == 0)
		return false;
	if (s.p[0] == sep)
		i = 1;
	size_t end = find_char(s, i, sep);
	sip_str item = slice(s, i, end);
	size_t eq = find_char(item, 0, '=');

	*name = slice(item, 0, eq);
	*value = eq < item.len ? slice(item, eq + 1, item.len)
			       : slice(item, item.len, item.len);
	*cur = slice(s, end, s.len);
	return true;
}

/** First item named @p name (decoded, case-insensitive) in @p list. */
static bool item_find(sip_str list, char sep, sip_str name, sip_str *value)
{
	sip_str n, v;

	while (item_next(&list, sep, &n, &v)) {
		if (dec_eq(n, name, true)) {
			*value = v;
			return true;
		}
	}
	return false;
}

/* ------------------------------------------------------------------------ */
/* Hosts                                                                    */
/* ------------------------------------------------------------------------ */

/** IPv4address = 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT, each
 * <= 255. Stores the 4 bytes in @p out when non-NULL. */
static bool parse_ipv4(sip_str s, uint8_t *out)
{
	size_t i = 0;

	for (int part = 0; part < 4; part++) {
		unsigned v = 0;
		size_t start = i;

		if (part > 0) {
			if (i >= s.len || s.p[i] != '.')
				return false;
			start = ++i;
		}
		while (i < s.len && is_digit(s.p[i]) && i - start < 3)
			v = v * 10 + (unsigned)(s.p[i++] - '0');
		if (i == start || v > 255)
			return false;
		if (out)
			out[part] = (uint8_t)v;
	}
	return i == s.len;
}

/** True when s[from..] is an IPv4 address (the end of an IPv6 one). */
static bool ipv4_tail(sip_str s, size_t from)
{
	return from < s.len && parse_ipv4(slice(s, from, s.len), NULL);
}

/**
 * Parse the IPv6 address inside [ ] into 16 bytes. Accepts RFC 4291 text
 * forms and, per RFC 5118 §4.10, the RFC 3261 ABNF form with three colons
 * before an embedded IPv4 address ("2001:db8:::192.0.2.1").
 */
static bool parse_ipv6(sip_str s, uint8_t out[16])
{
	uint16_t groups[8];
	size_t ng = 0, i = 0;
	int gap = -1; /* group index where "::" stands */
	uint8_t v4[4];
	bool v4_seen = false;

	if (s.len >= 2 && s.p[0] == ':' && s.p[1] == ':') {
		gap = 0;
		i = 2;
		if (i < s.len && s.p[i] == ':') {
			if (!ipv4_tail(s, i + 1))
				return false;
			i++; /* ":::192.0.2.1" */
		}
	} else if (s.len == 0 || s.p[0] == ':') {
		return false;
	}

	while (i < s.len) {
		size_t start = i;
		bool dot = false;

		while (i < s.len && (hex_val(s.p[i]) >= 0 || s.p[i] == '.')) {
			dot |= s.p[i] == '.';
			i++;
		}
		if (i == start)
			return false;
		if (dot) {
			if (i != s.len || ng > 6 ||
			    !parse_ipv4(slice(s, start, i), v4))
				return false;
			v4_seen = true;
			break;
		}
		if (i - start > 4 || ng >= 8)
			return false;
		uint16_t g = 0;
		for (size_t k = start; k < i; k++)
			g = (uint16_t)(g * 16 + hex_val(s.p[k]));
		groups[ng++] = g;

		if (i == s.len)
			break;
		if (s.p[i] != ':')
			return false;
		i++;
		if (i < s.len && s.p[i] == ':') {
			if (gap >= 0)
				return false;
			gap = (int)ng;
			i++;
			if (i == s.len)
				break;
			if (s.p[i] == ':') {
				/* only the RFC 3261 form before an IPv4 part */
				if (!ipv4_tail(s, i + 1))
					return false;
				i++;
			}
		} else if (i == s.len) {
			return false;
		}
	}

	size_t total = ng + (v4_seen ? 2 : 0);
	if (gap < 0 ? total != 8 : total > 7)
		return false;

	size_t nz = 8 - total; /* zero groups standing for "::" */
	size_t o = 0;
	for (size_t k = 0; k < ng; k++) {
		if (gap >= 0 && k == (size_t)gap) {
			memset(out + o, 0, nz * 2);
			o += nz * 2;
		}
		out[o++] = (uint8_t)(groups[k] >> 8);
		out[o++] = (uint8_t)groups[k];
	}
	if (gap >= 0 && (size_t)gap == ng) {
		memset(out + o, 0, nz * 2);
		o += nz * 2;
	}
	if (v4_seen) {
		memcpy(out + o, v4, 4);
		o += 4;
	}
	return o == 16;
}

/**
 * hostname = *( domainlabel "." ) toplabel [ "." ]; labels are alphanum
 * with inner '-', the toplabel starts with a letter.
 */
static bool is_hostname(sip_str s)
{
	size_t i = 0, label_start = 0;

	if (s.len == 0)
		return false;
	if (s.p[s.len - 1] == '.')
		s.len--;
	if (s.len == 0)
		return false;
	for (i = 0; i <= s.len; i++) {
		if (i == s.len || s.p[i] == '.') {
			if (i == label_start || s.p[label_start] == '-' ||
			    s.p[i - 1] == '-')
				return false;
			if (i == s.len && !is_alpha(s.p[label_start]))
				return false;
			label_start = i + 1;
		} else if (!is_alnum(s.p[i]) && s.p[i] != '-') {
			return false;
		}
	}
	return true;
}

/* ------------------------------------------------------------------------ */
/* Parsing                                                                  */
/* ------------------------------------------------------------------------ */

/** ";" pname [ "=" pvalue ] repeated, with the given value class. */
static bool check_uri_params(sip_str s, bool (*name_ok)(char),
			     bool (*value_ok)(char))
{
	size_t i = 0;

	while (i < s.len) {
		if (s.p[i] != ';')
			return false;
		size_t end = find_char(s, i + 1, ';');
		sip_str p = slice(s, i + 1, end);
		size_t eq = find_char(p, 0, '=');

		if (!check_chars(slice(p, 0, eq), name_ok, 1))
			return false;
		if (eq < p.len &&
		    !check_chars(slice(p, eq + 1, p.len), value_ok, 1))
			return false;
		i = end;
	}
	return true;
}

/** headers = hname "=" hvalue *( "&" hname "=" hvalue ) */
static bool check_uri_headers(sip_str s)
{
	size_t i = 0;

	do {
		size_t end = find_char(s, i, '&');
		sip_str h = slice(s, i, end);
		size_t eq = find_char(h, 0, '=');

		if (eq == h.len ||
		    !check_chars(slice(h, 0, eq), is_hnv_char, 1) ||
		    !check_chars(slice(h, eq + 1, h.len), is_hnv_char, 0))
			return false;
		i = end + 1;
	} while (i <= s.len);
	return true;
}

static int parse_sip(sip_str rest, struct sip_uri *uri)
{
	size_t at = find_char(rest, 0, '@');
	size_t i = 0;

	if (at < rest.len) {
		sip_str ui = slice(rest, 0, at);
		size_t colon = find_char(ui, 0, ':');

		uri->user = slice(ui, 0, colon);
		if (!check_chars(uri->user, is_user_char, 1))
			return -EINVAL;
		if (colon < ui.len) {
			uri->password = slice(ui, colon + 1, ui.len);
			if (!check_chars(uri->password, is_password_char, 0))
				return -EINVAL;
		}
		i = at + 1;
	}

	/* host */
	size_t hstart = i;
	if (i < rest.len && rest.p[i] == '[') {
		size_t close = find_char(rest, i, ']');
		uint8_t addr[16];

		if (close == rest.len ||
		    !parse_ipv6(slice(rest, i + 1, close), addr))
			return -EINVAL;
		i = close + 1;
		uri->host_kind = SIP_HOST_IPV6;
	} else {
		while (i < rest.len && (is_alnum(rest.p[i]) ||
					rest.p[i] == '-' || rest.p[i] == '.'))
			i++;
		sip_str h = slice(rest, hstart, i);
		if (parse_ipv4(h, NULL))
			uri->host_kind = SIP_HOST_IPV4;
		else if (is_hostname(h))
			uri->host_kind = SIP_HOST_NAME;
		else
			return -EINVAL;
	}
	uri->host = slice(rest, hstart, i);

	/* port */
	if (i < rest.len && rest.p[i] == ':') {
		size_t pstart = ++i;
		uint64_t port;

		while (i < rest.len && is_digit(rest.p[i]))
			i++;
		if (sip_str_to_u64(slice(rest, pstart, i), 65535, &port) < 0)
			return -EINVAL;
		uri->has_port = true;
		uri->port = (uint16_t)port;
	}

	/* uri-parameters */
	size_t q = find_char(rest, i, '?');
	if (i < rest.len && rest.p[i] == ';') {
		uri->params = slice(rest, i, q);
		if (!check_uri_params(uri->params, is_paramchar, is_paramchar))
			return -EINVAL;
	} else if (i != q) {
		return -EINVAL;
	}

	/* headers */
	if (q < rest.len) {
		uri->headers = slice(rest, q + 1, rest.len);
		if (!check_uri_headers(uri->headers))
			return -EINVAL;
	}
	return 0;
}

static bool is_tel_pname_char(char c)
{
	return is_alnum(c) || c == '-';
}

/** tel parameter values: paramchar, plus the uric of isdn-subaddress. */
static bool is_tel_pvalue_char(char c)
{
	return is_paramchar(c) || c == '?' || c == '@' || c == '=' || c == ',';
}

/** global-number-digits = "+" *phonedigit DIGIT *phonedigit */
static bool is_global_number(sip_str s)
{
	bool digit = false;

	if (s.len < 2 || s.p[0] != '+')
		return false;
	for (size_t i = 1; i < s.len; i++) {
		if (is_digit(s.p[i]))
			digit = true;
		else if (!is_visual_sep(s.p[i]))
			return false;
	}
	return digit;
}

/** local-number-digits: phonedigit-hex with at least one HEXDIG / * / # */
static bool is_local_number(sip_str s)
{
	bool digit = false;

	for (size_t i = 0; i < s.len; i++) {
		if (hex_val(s.p[i]) >= 0 || s.p[i] == '*' || s.p[i] == '#')
			digit = true;
		else if (!is_visual_sep(s.p[i]))
			return false;
	}
	return digit;
}

static int parse_tel(sip_str rest, struct sip_uri *uri)
{
	size_t semi = find_char(rest, 0, ';');

	uri->user = slice(rest, 0, semi);
	uri->params = slice(rest, semi, rest.len);
	if (!check_uri_params(uri->params, is_tel_pname_char,
			      is_tel_pvalue_char))
		return -EINVAL;
	if (is_global_number(uri->user))
		return 0;
	if (!is_local_number(uri->user))
		return -EINVAL;

	/* a local number needs a phone-context */
	sip_str ctx;
	if (!item_find(uri->params, ';', SIP_STR_LIT("phone-context"), &ctx))
		return -EINVAL;
	if (!is_global_number(ctx) && !is_hostname(ctx))
		return -EINVAL;
	return 0;
}

int sip_uri_parse(sip_str text, struct sip_uri *uri)
{
	size_t colon, i;

	memset(uri, 0, sizeof(*uri));
	if (text.len == 0 || text.p == NULL || !is_alpha(text.p[0]))
		return -EINVAL;
	for (i = 1; i < text.len && text.p[i] != ':'; i++) {
		char c = text.p[i];
		if (!is_alnum(c) && c != '+' && c != '-' && c != '.')
			return -EINVAL;
	}
	colon = i;
	if (colon >= text.len)
		return -EINVAL;

	sip_str scheme = slice(text, 0, colon);
	sip_str rest = slice(text, colon + 1, text.len);
	int rc;

	uri->scheme_str = scheme;
	if (sip_str_ieq_c(scheme, "sip")) {
		uri->scheme = SIP_URI_SIP;
		rc = parse_sip(rest, uri);
	} else if (sip_str_ieq_c(scheme, "sips")) {
		uri->scheme = SIP_URI_SIPS;
		rc = parse_sip(rest, uri);
	} else if (sip_str_ieq_c(scheme, "tel")) {
		uri->scheme = SIP_URI_TEL;
		rc = parse_tel(rest, uri);
	} else {
		uri->scheme = SIP_URI_OTHER;
		uri->opaque = rest;
		rc = check_chars(rest, is_uric, 1) ? 0 : -EINVAL;
	}
	if (rc < 0)
		memset(uri, 0, sizeof(*uri));
	return rc;
}

int sip_unescape(sip_str in, char *out, size_t cap)
{
	size_t n = 0;

	for (size_t i = 0; i < in.len; i++) {
		char c = in.p[i];
		if (c == '%') {
			if (!escape_at(in, i))
				return -EINVAL;
			c = (char)(hex_val(in.p[i + 1]) * 16 +
				   hex_val(in.p[i + 2]));
			i += 2;
		}
		if (n >= cap)
			return -ENOSPC;
		out[n++] = c;
	}
	if (n > (size_t)INT32_MAX)
		return -ENOSPC;
	if (n < cap)
		out[n] = '\0';
	return (int)n;
}

/* ------------------------------------------------------------------------ */
/* Comparison                                                               */
/* ------------------------------------------------------------------------ */

static bool sip_params_eq(sip_str a, sip_str b)
{
	static const char *const must[] = {"user", "ttl", "method", "maddr",
					   "transport"};
	sip_str n, va, vb;

	for (size_t k = 0; k < sizeof(must) / sizeof(must[0]); k++) {
		sip_str name = sip_str_c(must[k]);
		bool ina = item_find(a, ';', name, &va);
		bool inb = item_find(b, ';', name, &vb);

		if (ina != inb || (ina && !dec_eq(va, vb, true)))
			return false;
	}
	/* other parameters: those present in both must match */
	sip_str cur = a, v;
	while (item_next(&cur, ';', &n, &v)) {
		if (!item_find(a, ';', n, &va))
			continue;
		if (item_find(b, ';', n, &vb) && !dec_eq(va, vb, true))
			return false;
	}
	return true;
}

/** Every header of @p a has an equal one in @p b. */
static bool headers_in(sip_str a, sip_str b)
{
	sip_str cur = a, n, v;

	while (item_next(&cur, '&', &n, &v)) {
		sip_str other = b, on, ov;
		bool found = false;

		while (!found && item_next(&other, '&', &on, &ov))
			found = dec_eq(n, on, true) && dec_eq(v, ov, false);
		if (!found)
			return false;
	}
	return true;
}

static bool sip_eq(const struct sip_uri *a, const struct sip_uri *b)
{
	if (!dec_eq(a->user, b->user, false) ||
	    !dec_eq(a->password, b->password, false))
		return false;
	if (a->host_kind != b->host_kind)
		return false;
	if (a->host_kind == SIP_HOST_IPV6) {
		uint8_t x[16], y[16];
		if (a->host.len < 2 || b->host.len < 2 ||
		    !parse_ipv6(slice(a->host, 1, a->host.len - 1), x) ||
		    !parse_ipv6(slice(b->host, 1, b->host.len - 1), y))
			return sip_str_ieq(a->host, b->host);
		if (memcmp(x, y, sizeof(x)) != 0)
			return false;
	} else if (!sip_str_ieq(a->host, b->host)) {
		return false;
	}
	if (a->has_port != b->has_port || (a->has_port && a->port != b->port))
		return false;
	if (!sip_params_eq(a->params, b->params))
		return false;
	return headers_in(a->headers, b->headers) &&
	       headers_in(b->headers, a->headers);
}

/** Parameters of @p a all present in @p b with equal values (RFC 3966 §4). */
static bool tel_params_in(sip_str a, sip_str b)
{
	sip_str cur = a, n, v, va, vb;

	while (item_next(&cur, ';', &n, &v)) {
		if (!item_find(a, ';', n, &va))
			va = v;
		if (!item_find(b, ';', n, &vb))
			return false;
		bool phone = sip_str_ieq_c(n, "ext") ||
			     (sip_str_ieq_c(n, "phone-context") && va.len &&
			      va.p[0] == '+');
		if (phone ? !phone_eq(va, vb) : !dec_eq(va, vb, true))
			return false;
	}
	return true;
}

static bool tel_eq(const struct sip_uri *a, const struct sip_uri *b)
{
	bool ga = a->user.len && a->user.p[0] == '+';
	bool gb = b->user.len && b->user.p[0] == '+';

	if (ga != gb || !phone_eq(a->user, b->user))
		return false;
	return tel_params_in(a->params, b->params) &&
	       tel_params_in(b->params, a->params);
}

bool sip_uri_equal(const struct sip_uri *a, const struct sip_uri *b)
{
	if (a->scheme != b->scheme)
		return false;
	switch (a->scheme) {
	case SIP_URI_SIP:
	case SIP_URI_SIPS:
		return sip_eq(a, b);
	case SIP_URI_TEL:
		return tel_eq(a, b);
	default:
		return sip_str_ieq(a->scheme_str, b->scheme_str) &&
		       sip_str_eq(a->opaque, b->opaque);
	}
}
