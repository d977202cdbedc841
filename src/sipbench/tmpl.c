/**
 * @file tmpl.c  Message templates: literal runs and fields, compiled once,
 * rendered with memcpy; hex and decimal writers for the fields.
 */
#include "sipbench/sipbench.h"

#include <errno.h>
#include <string.h>

static const char *const field_names[SB_F__COUNT] = {
	[SB_F_BRANCH] = "branch", [SB_F_CALLID] = "callid",
	[SB_F_CSEQ] = "cseq",	  [SB_F_FTAG] = "ftag",
	[SB_F_USER] = "user",	  [SB_F_TO] = "to",
	[SB_F_LHOST] = "lhost",	  [SB_F_LPORT] = "lport",
	[SB_F_RURI] = "ruri",	  [SB_F_TOTAG] = "totag",
	[SB_F_AUTH] = "auth",	  [SB_F_ROUTE] = "route",
};

const char *sb_field_name(enum sb_field f)
{
	return (unsigned)f < SB_F__COUNT ? field_names[f] : "";
}

static int add_seg(struct sb_tmpl *t, unsigned field, size_t off, size_t len)
{
	if (field == SB_F__COUNT && len == 0)
		return 0;
	if (t->nsegs >= SB_TMPL_SEGS)
		return -E2BIG;
	t->segs[t->nsegs].field = (uint16_t)field;
	t->segs[t->nsegs].off = (uint16_t)off;
	t->segs[t->nsegs].len = (uint16_t)len;
	t->nsegs++;
	return 0;
}

int sb_tmpl_compile(struct sb_tmpl *t, const char *src)
{
	size_t run = 0;
	int r;

	t->nsegs = 0;
	t->text_len = 0;
	for (const char *p = src; *p;) {
		const char *end;
		unsigned f;

		if (*p != '{') {
			if (t->text_len >= SB_TMPL_TEXT)
				return -E2BIG;
			t->text[t->text_len++] = *p++;
			continue;
		}
		end = strchr(p, '}');
		if (!end)
			return -EINVAL;
		for (f = 0; f < SB_F__COUNT; f++) {
			size_t n = strlen(field_names[f]);

			if ((size_t)(end - p - 1) == n &&
			    memcmp(p + 1, field_names[f], n) == 0)
				break;
		}
		if (f == SB_F__COUNT)
			return -EINVAL;
		r = add_seg(t, SB_F__COUNT, run, t->text_len - run);
		if (r < 0)
			return r;
		r = add_seg(t, f, 0, 0);
		if (r < 0)
			return r;
		run = t->text_len;
		p = end + 1;
	}
	return add_seg(t, SB_F__COUNT, run, t->text_len - run);
}

int sb_tmpl_render(const struct sb_tmpl *t, const sip_str *vals, char *out,
		   size_t cap)
{
	size_t len = 0;

	for (unsigned i = 0; i < t->nsegs; i++) {
		const char *p;
		size_t n;

		if (t->segs[i].field == SB_F__COUNT) {
			p = t->text + t->segs[i].off;
			n = t->segs[i].len;
		} else {
			p = vals[t->segs[i].field].p;
			n = vals[t->segs[i].field].len;
		}
		if (n > cap - len)
			return -ENOSPC;
		if (n)
			memcpy(out + len, p, n);
		len += n;
	}
	return (int)len;
}

size_t sb_hex(char *out, uint64_t v, unsigned width)
{
	static const char digits[] = "0123456789abcdef";

	for (unsigned i = width; i > 0; i--) {
		out[i - 1] = digits[v & 15];
		v >>= 4;
	}
	return width;
}

size_t sb_dec(char *out, uint64_t v)
{
	char tmp[20];
	size_t n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (size_t i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	return n;
}
