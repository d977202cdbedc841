/** @file json.c  Minimal streaming JSON writer with pretty printing. */
#include "sipctl/json.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

void json_init(struct json *j, FILE *out)
{
	memset(j, 0, sizeof(*j));
	j->out = out;
}

int json_finish(struct json *j)
{
	fputc('\n', j->out);
	if (j->depth != 0 || j->overflow || ferror(j->out))
		return -EIO;
	return 0;
}

static void indent(struct json *j, unsigned depth)
{
	for (unsigned i = 0; i < depth; i++)
		fputs("  ", j->out);
}

/* Called before every value: separator and indentation, unless the value
 * follows its key on the same line. */
static void before_value(struct json *j)
{
	if (j->after_key) {
		j->after_key = false;
		return;
	}
	if (j->depth == 0)
		return;
	if (j->depth <= JSON_MAX_DEPTH) {
		fputs(j->has_items[j->depth - 1] ? ",\n" : "\n", j->out);
		j->has_items[j->depth - 1] = true;
	}
	indent(j, j->depth);
}

static void push(struct json *j, char c)
{
	before_value(j);
	fputc(c, j->out);
	if (j->depth >= JSON_MAX_DEPTH)
		j->overflow = true;
	else
		j->has_items[j->depth] = false;
	j->depth++;
}

static void pop(struct json *j, char c)
{
	if (j->depth == 0) {
		j->overflow = true;
		return;
	}
	j->depth--;
	if (j->depth < JSON_MAX_DEPTH && j->has_items[j->depth]) {
		fputc('\n', j->out);
		indent(j, j->depth);
	}
	fputc(c, j->out);
}

void json_obj_begin(struct json *j)
{
	push(j, '{');
}

void json_obj_end(struct json *j)
{
	pop(j, '}');
}

void json_arr_begin(struct json *j)
{
	push(j, '[');
}

void json_arr_end(struct json *j)
{
	pop(j, ']');
}

static void put_escaped(struct json *j, const unsigned char *p, size_t len);

void json_key(struct json *j, const char *key)
{
	before_value(j);
	put_escaped(j, (const unsigned char *)key, strlen(key));
	fputs(": ", j->out);
	j->after_key = true;
}

static bool is_cont(unsigned char c)
{
	return (c & 0xc0) == 0x80;
}

/* Length of the valid UTF-8 sequence at @p p (1..4), or 0 when the bytes
 * there do not form one (RFC 3629: no overlongs, no surrogates, at most
 * U+10FFFF). */
static size_t utf8_len(const unsigned char *p, size_t avail)
{
	unsigned char c = p[0];

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		return (avail >= 2 && is_cont(p[1])) ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		unsigned char lo = 0x80, hi = 0xbf;

		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
		if (avail < 3 || p[1] < lo || p[1] > hi || !is_cont(p[2]))
			return 0;
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		unsigned char lo = 0x80, hi = 0xbf;

		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
		if (avail < 4 || p[1] < lo || p[1] > hi || !is_cont(p[2]) ||
		    !is_cont(p[3]))
			return 0;
		return 4;
	}
	return 0;
}

static void put_escaped(struct json *j, const unsigned char *p, size_t len)
{
	FILE *out = j->out;
	size_t i = 0;

	fputc('"', out);
	while (i < len) {
		unsigned char c = p[i];
		size_t n;

		switch (c) {
		case '"':
			fputs("\\\"", out);
			i++;
			continue;
		case '\\':
			fputs("\\\\", out);
			i++;
			continue;
		case '\n':
			fputs("\\n", out);
			i++;
			continue;
		case '\r':
			fputs("\\r", out);
			i++;
			continue;
		case '\t':
			fputs("\\t", out);
			i++;
			continue;
		default:
			break;
		}
		if (c < 0x20 || c == 0x7f) {
			fprintf(out, "\\u%04x", c);
			i++;
			continue;
		}
		n = utf8_len(p + i, len - i);
		if (n == 0) {
			/* Not UTF-8: keep the byte's value as a code point. */
			fprintf(out, "\\u%04x", c);
			i++;
			continue;
		}
		fwrite(p + i, 1, n, out);
		i += n;
	}
	fputc('"', out);
}

void json_str(struct json *j, sip_str s)
{
	before_value(j);
	put_escaped(j, (const unsigned char *)(s.p ? s.p : ""),
		    s.p ? s.len : 0);
}

void json_cstr(struct json *j, const char *s)
{
	if (!s) {
		json_null(j);
		return;
	}
	before_value(j);
	put_escaped(j, (const unsigned char *)s, strlen(s));
}

void json_uint(struct json *j, uint64_t v)
{
	before_value(j);
	fprintf(j->out, "%" PRIu64, v);
}

void json_milli(struct json *j, unsigned v)
{
	before_value(j);
	fprintf(j->out, "%u.%03u", v / 1000, v % 1000);
}

void json_bool(struct json *j, bool v)
{
	before_value(j);
	fputs(v ? "true" : "false", j->out);
}

void json_null(struct json *j)
{
	before_value(j);
	fputs("null", j->out);
}

void json_kv_str(struct json *j, const char *key, sip_str s)
{
	json_key(j, key);
	json_str(j, s);
}

void json_kv_opt(struct json *j, const char *key, sip_str s)
{
	json_key(j, key);
	if (s.len)
		json_str(j, s);
	else
		json_null(j);
}

void json_kv_cstr(struct json *j, const char *key, const char *s)
{
	json_key(j, key);
	json_cstr(j, s);
}

void json_kv_uint(struct json *j, const char *key, uint64_t v)
{
	json_key(j, key);
	json_uint(j, v);
}

void json_kv_bool(struct json *j, const char *key, bool v)
{
	json_key(j, key);
	json_bool(j, v);
}

void json_kv_null(struct json *j, const char *key)
{
	json_key(j, key);
	json_null(j);
}
