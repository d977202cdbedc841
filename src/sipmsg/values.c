/**
 * @file values.c  Generic header value helpers: comma-separated lists,
 * ";name=value" parameters and quoted strings (RFC 3261 §7.3.1, §25.1).
 *
 * Values may still contain folded lines (CRLF followed by SP/HT); CR and LF
 * count as linear white space here, like in sip_str_trim().
 */
#include "sipmsg/sipmsg.h"

#include <errno.h>

/**
 * End of the quoted string starting at s.p[i] == '"': index just past the
 * closing quote, or 0 when it is unterminated.
 */
static size_t skip_quoted(sip_str s, size_t i)
{
	for (i++; i < s.len; i++) {
		if (s.p[i] == '\\') {
			if (++i >= s.len)
				return 0;
		} else if (s.p[i] == '"') {
			return i + 1;
		}
	}
	return 0;
}

int sip_list_next(sip_str *cursor, sip_str *item)
{
	sip_str s = *cursor;
	size_t i = 0;

	if (s.len == 0)
		return 0;
	if (sip_str_trim(s).len == 0) {
		*cursor = sip_str_sub(s, s.len, s.len);
		return 0;
	}
	while (i < s.len && s.p[i] != ',') {
		/* the plain run up to the next , " or < in one tight loop */
		if (!sip_cc(s.p[i], SIP_CC_LIST_SPECIAL)) {
			i++;
			while (i < s.len &&
			       !sip_cc(s.p[i], SIP_CC_LIST_SPECIAL))
				i++;
			continue;
		}
		if (s.p[i] == '"') {
			i = skip_quoted(s, i);
			if (i == 0)
				return -EBADMSG;
		} else if (s.p[i] == '<') {
			while (i < s.len && s.p[i] != '>')
				i++;
			if (i >= s.len)
				return -EBADMSG;
			i++;
		} else {
			i++;
		}
	}

	sip_str elem = sip_str_trim(sip_str_sub(s, 0, i));
	if (elem.len == 0)
		return -EBADMSG;
	*item = elem;

	if (i >= s.len) {
		*cursor = sip_str_sub(s, s.len, s.len);
	} else if (sip_str_trim(sip_str_sub(s, i + 1, s.len)).len == 0) {
		/* trailing comma: keep it so that the next call reports it */
		*cursor = sip_str_sub(s, i, s.len);
	} else {
		*cursor = sip_str_sub(s, i + 1, s.len);
	}
	return 1;
}

/** Characters of a parameter name or unquoted value: token characters and
 * the URI param-unreserved set (RFC 3261 §25.1). */
static bool is_param_char(char c)
{
	return sip_cc(c, SIP_CC_PNAME);
}

int sip_param_next(sip_str *cursor, sip_str *name, sip_str *value)
{
	sip_str s = *cursor;
	size_t i = sip_skip_lws(s, 0);
	size_t start;

	if (s.len == 0)
		return 0;
	if (i >= s.len) {
		*cursor = sip_str_sub(s, s.len, s.len);
		return 0;
	}
	if (s.p[i] == ';')
		i = sip_skip_lws(s, i + 1);

	start = i;
	while (i < s.len && is_param_char(s.p[i]))
		i++;
	if (i == start)
		return -EBADMSG;
	sip_str n = sip_str_sub(s, start, i);
	sip_str v = sip_str_sub(s, i, i);

	i = sip_skip_lws(s, i);
	if (i < s.len && s.p[i] == '=') {
		i = sip_skip_lws(s, i + 1);
		start = i;
		if (i >= s.len)
			return -EBADMSG;
		if (s.p[i] == '"') {
			i = skip_quoted(s, i);
			if (i == 0)
				return -EBADMSG;
		} else if (s.p[i] == '[') {
			while (i < s.len && s.p[i] != ']') {
				char c = s.p[i];
				if (sip_is_lws(c) || c == ';' || c == ',' ||
				    c == '"')
					return -EBADMSG;
				i++;
			}
			if (i >= s.len)
				return -EBADMSG;
			i++;
		} else {
			while (i < s.len && is_param_char(s.p[i]))
				i++;
			if (i == start)
				return -EBADMSG;
		}
		v = sip_str_sub(s, start, i);
		i = sip_skip_lws(s, i);
	}

	if (i < s.len && s.p[i] != ';')
		return -EBADMSG;
	*name = n;
	*value = v;
	*cursor = sip_str_sub(s, i, s.len);
	return 1;
}

int sip_param_find(sip_str params, const char *name, sip_str *value)
{
	sip_str cur = params, n, v;
	int rc;

	while ((rc = sip_param_next(&cur, &n, &v)) > 0) {
		if (sip_str_ieq_c(n, name)) {
			if (value)
				*value = v;
			return 1;
		}
	}
	return rc;
}

int sip_unquote(sip_str quoted, char *out, size_t cap)
{
	sip_str q = sip_str_trim(quoted);
	size_t n = 0;

	if (q.len < 2 || q.p[0] != '"' || q.p[q.len - 1] != '"')
		return -EINVAL;
	for (size_t i = 1; i < q.len - 1; i++) {
		char c = q.p[i];
		if (c == '"')
			return -EINVAL;
		if (c == '\\') {
			if (++i >= q.len - 1)
				return -EINVAL;
			c = q.p[i];
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
