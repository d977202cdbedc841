/**
 * @file json.h  Minimal streaming JSON writer with pretty printing.
 *
 * Values are written as they come; the writer only tracks nesting so it can
 * place commas and indentation. Strings are escaped so that the output is
 * valid JSON for any input bytes: valid UTF-8 passes through, control
 * characters and bytes that are not part of a valid UTF-8 sequence are
 * written as \u00XX.
 */
#ifndef SIPCTL_JSON_H
#define SIPCTL_JSON_H

#include "base/base.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define JSON_MAX_DEPTH 64

struct json {
	FILE *out;
	unsigned depth;
	bool after_key; /**< a key was written, its value comes next */
	bool overflow;	/**< nesting went past JSON_MAX_DEPTH        */
	bool has_items[JSON_MAX_DEPTH];
};

void json_init(struct json *j, FILE *out);
/** Finish the document (newline). @return 0, or -EIO on a write error or
 * unbalanced nesting. */
int json_finish(struct json *j);

void json_obj_begin(struct json *j);
void json_obj_end(struct json *j);
void json_arr_begin(struct json *j);
void json_arr_end(struct json *j);
/** Write an object key; the next call writes its value. */
void json_key(struct json *j, const char *key);

void json_str(struct json *j, sip_str s);
/** NUL-terminated string, or null when @p s is NULL. */
void json_cstr(struct json *j, const char *s);
void json_uint(struct json *j, uint64_t v);
/** Fixed-point number v / 1000 printed with three decimals. */
void json_milli(struct json *j, unsigned v);
void json_bool(struct json *j, bool v);
void json_null(struct json *j);

/* key + value shorthands */
void json_kv_str(struct json *j, const char *key, sip_str s);
/** String value, or null when @p s is empty. */
void json_kv_opt(struct json *j, const char *key, sip_str s);
void json_kv_cstr(struct json *j, const char *key, const char *s);
void json_kv_uint(struct json *j, const char *key, uint64_t v);
void json_kv_bool(struct json *j, const char *key, bool v);
void json_kv_null(struct json *j, const char *key);

#endif /* SIPCTL_JSON_H */
