/** @file multipart.c  Iterator over multipart bodies (RFC 2046 §5.1). */
#include "sipmsg/sipmsg.h"

#include <errno.h>
#include <string.h>

/*
 * Layout: [preamble] "--" boundary padding CRLF part { CRLF "--" boundary
 * padding CRLF part } CRLF "--" boundary "--" [epilogue], where padding is
 * optional SP/HT. A delimiter must start a line; bare LF line ends are
 * accepted too. Parts are binary: only mem* functions touch them.
 */

enum delim_kind {
	DELIM_NONE = 0,
	DELIM_PART,  /**< "--boundary" then a line end                */
	DELIM_CLOSE, /**< "--boundary--"                              */
};

/**
 * Is there a delimiter line at @p at? On DELIM_PART, *after is the offset
 * past its line end.
 */
static enum delim_kind delim_at(const struct sip_mpart_iter *it, size_t at,
				size_t *after)
{
	const char *b = it->body.p;
	size_t len = it->body.len, blen = it->boundary.len;
	size_t i = at + 2 + blen;

	if (len - at < 2 + blen || b[at] != '-' || b[at + 1] != '-' ||
	    memcmp(b + at + 2, it->boundary.p, blen) != 0)
		return DELIM_NONE;
	if (len - i >= 2 && b[i] == '-' && b[i + 1] == '-')
		return DELIM_CLOSE;
	while (i < len && sip_is_ws(b[i]))
		i++;
	if (i < len && b[i] == '\r')
		i++;
	if (i < len && b[i] == '\n') {
		*after = i + 1;
		return DELIM_PART;
	}
	return DELIM_NONE; /* "--boundaryX...": part of the content */
}

/**
 * Find the next delimiter at a line start at or after @p from.
 * @return its kind (DELIM_NONE when there is none), *at its offset.
 */
static enum delim_kind find_delim(const struct sip_mpart_iter *it, size_t from,
				  size_t *at, size_t *after)
{
	const char *b = it->body.p;
	size_t len = it->body.len;
	size_t i = from;

	/* a line starts at @p from when it is 0 or follows a LF */
	if (i < len && (i == 0 || b[i - 1] == '\n')) {
		enum delim_kind k = delim_at(it, i, after);
		if (k != DELIM_NONE) {
			*at = i;
			return k;
		}
	}
	while (i < len) {
		const char *lf = memchr(b + i, '\n', len - i);
		if (!lf)
			break;
		i = (size_t)(lf - b) + 1;
		enum delim_kind k = delim_at(it, i, after);
		if (k != DELIM_NONE) {
			*at = i;
			return k;
		}
	}
	return DELIM_NONE;
}

int sip_mpart_init(struct sip_mpart_iter *it, const struct sip_ctype *ctype,
		   sip_str body)
{
	sip_str b;

	memset(it, 0, sizeof(*it));
	if (!ctype || sip_param_find(ctype->params, "boundary", &b) != 1)
		return -EINVAL;
	b = sip_str_trim(b);
	if (b.len >= 2 && b.p[0] == '"' && b.p[b.len - 1] == '"') {
		/* bchars (RFC 2046) exclude '"' and '\\': nothing to unescape
		 */
		b = sip_str_sub(b, 1, b.len - 1);
		if (memchr(b.p, '"', b.len) || memchr(b.p, '\\', b.len))
			return -EINVAL;
	} else if (b.len && (b.p[0] == '"' || b.p[b.len - 1] == '"')) {
		return -EINVAL;
	}
	if (b.len == 0 || !body.p)
		return -EINVAL;
	it->body = body;
	it->boundary = b;
	return 0;
}

/** Length of the line break ending at @p end (exclusive) after @p start. */
static size_t eol_before(const char *p, size_t start, size_t end)
{
	if (end > start && p[end - 1] == '\n')
		return (end - 1 > start && p[end - 2] == '\r') ? 2 : 1;
	return 0;
}

/**
 * Split a part into headers and body at the first empty line, and pick up
 * its Content-Type (or compact "c") header. A part without an empty line
 * has headers only.
 */
static int split_part(sip_str content, struct sip_mpart *part)
{
	const char *p = content.p;
	size_t len = content.len, pos = 0, body_at = len, hdr_end = len;
	bool have_ctype = false, in_ctype = false;
	size_t ctype_start = 0, ctype_end = 0;

	while (pos < len) {
		const char *lf = memchr(p + pos, '\n', len - pos);
		size_t next = lf ? (size_t)(lf - p) + 1 : len;
		size_t end = next - eol_before(p, pos, next);

		if (end == pos) { /* the empty line */
			hdr_end = pos;
			body_at = next;
			break;
		}
		if (sip_is_ws(p[pos])) { /* folded continuation */
			if (pos == 0)
				return -EBADMSG;
			if (in_ctype)
				ctype_end = end;
			pos = next;
			continue;
		}
		const char *colon = memchr(p + pos, ':', end - pos);
		if (!colon)
			return -EBADMSG;
		sip_str name = sip_str_trim(
			(sip_str){p + pos, (size_t)(colon - (p + pos))});
		in_ctype = false;
		if (!have_ctype && (sip_str_ieq_c(name, "Content-Type") ||
				    sip_str_ieq_c(name, "c"))) {
			have_ctype = in_ctype = true;
			ctype_start = (size_t)(colon - p) + 1;
			ctype_end = end;
		}
		pos = next;
	}

	/* the header block ends before the line break of its last line */
	hdr_end -= eol_before(p, 0, hdr_end);
	part->headers = (sip_str){p, hdr_end};
	part->body = (sip_str){p + body_at, len - body_at};
	part->ctype = have_ctype
			      ? sip_str_trim((sip_str){p + ctype_start,
						       ctype_end - ctype_start})
			      : SIP_STR_NULL;
	return 0;
}

int sip_mpart_next(struct sip_mpart_iter *it, struct sip_mpart *part)
{
	size_t at, after = 0, start;
	enum delim_kind k;

	if (it->done)
		return 0;
	if (!it->body.p || it->boundary.len == 0)
		return -EINVAL;

	if (it->pos == 0) {
		/* skip the preamble up to the first delimiter */
		k = find_delim(it, 0, &at, &after);
		if (k == DELIM_NONE)
			return -EBADMSG;
		if (k == DELIM_CLOSE) {
			it->done = true;
			return 0;
		}
		it->pos = after; /* > 0 from now on */
	}
	start = it->pos;
	if (start > it->body.len)
		return -EBADMSG;

	k = find_delim(it, start, &at, &after);
	if (k == DELIM_NONE)
		return -EBADMSG; /* no close delimiter */

	/* the line break before the delimiter belongs to it */
	size_t end = at - eol_before(it->body.p, start, at);
	if (end < start)
		end = start;
	int rc = split_part((sip_str){it->body.p + start, end - start}, part);
	if (rc < 0)
		return rc;

	if (k == DELIM_CLOSE)
		it->done = true;
	else
		it->pos = after;
	return 1;
}
