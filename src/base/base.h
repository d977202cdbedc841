/**
 * @file base.h  Slices and small text helpers shared by every layer.
 *
 * A sip_str is a pointer + length view into a buffer owned by someone else
 * (usually the receive buffer of a message). Nothing here allocates.
 */
#ifndef SIPD_BASE_H
#define SIPD_BASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** A read-only slice: @p p points into a buffer owned elsewhere. */
typedef struct sip_str {
	const char *p;
	size_t len;
} sip_str;

#define SIP_STR_NULL ((sip_str){NULL, 0})
/** Slice of a string literal. */
#define SIP_STR_LIT(s) ((sip_str){(s), sizeof(s) - 1})
/** printf helper: printf("%.*s", SIP_STR_FMT(s)). */
#define SIP_STR_FMT(s) (int)(s).len, (s).p

/** Slice of a NUL-terminated string (NULL gives the empty slice). */
sip_str sip_str_c(const char *s);
/** Exact byte comparison. */
bool sip_str_eq(sip_str a, sip_str b);
/** ASCII case-insensitive comparison. */
bool sip_str_ieq(sip_str a, sip_str b);
/** ASCII case-insensitive comparison with a C string. */
bool sip_str_ieq_c(sip_str a, const char *c);
/** Remove leading and trailing LWS (SP, HT, CR, LF) — folded lines included. */
sip_str sip_str_trim(sip_str s);
/** Sub-slice [from, end). */
sip_str sip_str_sub(sip_str s, size_t from, size_t end);

/**
 * Parse an unsigned decimal number (digits only, leading zeros allowed, no
 * sign, no surrounding space).
 * @return 0, -EINVAL if @p s is not all digits or empty, -ERANGE above @p max.
 */
int sip_str_to_u64(sip_str s, uint64_t max, uint64_t *out);

/** Lower-case ASCII of one byte. */
static inline char sip_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c + ('a' - 'A')) : c;
}

/** SP or HT. */
static inline bool sip_is_ws(char c)
{
	return c == ' ' || c == '\t';
}

/** Character classes, indexed by byte (a constant table). */
extern const uint16_t sip_char_class[256];
#define SIP_CC_TOKEN 0x001u	 /**< RFC 3261 token */
#define SIP_CC_DIGIT 0x002u	 /**< DIGIT */
#define SIP_CC_ALPHA 0x004u	 /**< ALPHA */
#define SIP_CC_UNRESERVED 0x008u /**< unreserved = alphanum / mark */
#define SIP_CC_USER 0x010u	 /**< user: unreserved / user-unreserved */
#define SIP_CC_PASSWORD 0x020u	 /**< password characters */
#define SIP_CC_PARAM 0x040u /**< paramchar: param-unreserved / unreserved */
#define SIP_CC_HNV 0x080u   /**< hname/hvalue: hnv-unreserved / unreserved */
#define SIP_CC_URIC 0x100u  /**< uric (RFC 2396) plus [ ] */
/** parameter name or unquoted value: token plus the URI param-unreserved
 * characters [ ] / : & $ (RFC 3261 §25.1) */
#define SIP_CC_PNAME 0x200u
/** what ends a plain run inside a header list: , " < */
#define SIP_CC_LIST_SPECIAL 0x400u

/** True when byte @p c is in every class of @p mask. */
static inline bool sip_cc(char c, unsigned mask)
{
	return (sip_char_class[(unsigned char)c] & mask) == mask;
}

/** SP, HT, CR or LF: linear white space, folded lines included. */
static inline bool sip_is_lws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/** First offset at or after @p i in @p s that is not LWS. */
static inline size_t sip_skip_lws(sip_str s, size_t i)
{
	while (i < s.len && sip_is_lws(s.p[i]))
		i++;
	return i;
}

/** RFC 3261 token character. */
static inline bool sip_is_token_char(char c)
{
	return sip_char_class[(unsigned char)c] & SIP_CC_TOKEN;
}

/** Base64 alphabets (RFC 4648): §4 with '=' padding, §5 without. */
enum sip_base64 {
	SIP_BASE64_STD = 0,
	SIP_BASE64_URL = 1,
};

/** Length of the text for @p n bytes (without the NUL). */
size_t sip_base64_len(size_t n, enum sip_base64 kind);
/** Encode; @p out holds sip_base64_len() + 1 bytes (NUL-terminated).
 * @return the text length. */
size_t sip_base64_encode(const uint8_t *in, size_t len, char *out,
			 enum sip_base64 kind);
/** Decode canonical text only (STD: padding required; URL: none; the
 * unused bits zero; no whitespace).
 * @return bytes written, -EINVAL (not canonical), -ENOSPC. */
int sip_base64_decode(sip_str in, uint8_t *out, size_t cap,
		      enum sip_base64 kind);

#endif /* SIPD_BASE_H */
