/**
 * @file sipbench.h  sipbench building blocks that need no sockets: the
 * latency histogram, message templates, digest authentication and the
 * deadline heap. The unit tests compile these files directly.
 */
#ifndef SIPBENCH_SIPBENCH_H
#define SIPBENCH_SIPBENCH_H

#include "base/base.h"

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------------------ */
/* Log-linear histogram (hist.c)                                            */
/* ------------------------------------------------------------------------ */

/**
 * Values below 2^SB_HIST_SUB_BITS are counted exactly; above, every power
 * of two is split into 2^(SB_HIST_SUB_BITS-1) equal buckets, so a reported
 * value is within 1/128 (0.8 %) of the true one. Values of 2^SB_HIST_MAX_BITS
 * and more are counted in the last bucket. Fixed memory, no allocation.
 */
#define SB_HIST_SUB_BITS 8
#define SB_HIST_MAX_BITS 40
#define SB_HIST_BUCKETS                                                        \
	((1u << SB_HIST_SUB_BITS) + (SB_HIST_MAX_BITS - SB_HIST_SUB_BITS) *    \
					    (1u << (SB_HIST_SUB_BITS - 1)))

struct sb_hist {
	uint64_t count;
	uint64_t min;
	uint64_t max;
	uint64_t sum;
	uint64_t b[SB_HIST_BUCKETS];
};

void sb_hist_init(struct sb_hist *h);
void sb_hist_record(struct sb_hist *h, uint64_t v);
/** Add every count of @p src to @p dst. */
void sb_hist_merge(struct sb_hist *dst, const struct sb_hist *src);
/**
 * The value at percentile @p p (0..100): the highest value equivalent to
 * the bucket holding the ceil(p% x count)-th smallest recorded value,
 * clamped to the recorded min and max. 0 when empty.
 */
uint64_t sb_hist_percentile(const struct sb_hist *h, double p);
/** Bucket index of @p v (exposed for the tests). */
unsigned sb_hist_index(uint64_t v);

/* ------------------------------------------------------------------------ */
/* Message templates (tmpl.c)                                               */
/* ------------------------------------------------------------------------ */

/** The variable fields of a template, written `{name}` in its source. */
enum sb_field {
	SB_F_BRANCH = 0, /**< {branch}  Via branch                 */
	SB_F_CALLID,	 /**< {callid}  Call-ID                    */
	SB_F_CSEQ,	 /**< {cseq}    CSeq number                */
	SB_F_FTAG,	 /**< {ftag}    From tag                   */
	SB_F_USER,	 /**< {user}    our user (From, Contact)   */
	SB_F_TO,	 /**< {to}      the called user            */
	SB_F_LHOST,	 /**< {lhost}   local address (Via, Contact) */
	SB_F_LPORT,	 /**< {lport}   local port                 */
	SB_F_RURI,	 /**< {ruri}    Request-URI                */
	SB_F_TOTAG,	 /**< {totag}   ";tag=..." or empty        */
	SB_F_AUTH,	 /**< {auth}    a whole header line or empty */
	SB_F_ROUTE,	 /**< {route}   a Route header line or empty */
	SB_F__COUNT
};

#define SB_TMPL_TEXT 4096
#define SB_TMPL_SEGS 64

/** A message as literal runs and fields; rendering is memcpy only. */
struct sb_tmpl {
	unsigned nsegs;
	struct {
		uint16_t field; /**< enum sb_field, SB_F__COUNT for a literal */
		uint16_t off;
		uint16_t len;
	} segs[SB_TMPL_SEGS];
	size_t text_len;
	char text[SB_TMPL_TEXT];
};

/** Name of a field as written between braces. */
const char *sb_field_name(enum sb_field f);
/**
 * Compile @p src: `{name}` is a field, every other byte literal.
 * @return 0, -EINVAL (unknown or unterminated field), -E2BIG (too long or
 *         too many segments).
 */
int sb_tmpl_compile(struct sb_tmpl *t, const char *src);
/**
 * Write the message with @p vals[field] in place of each field.
 * @return its length, or -ENOSPC when @p cap is too small.
 */
int sb_tmpl_render(const struct sb_tmpl *t, const sip_str *vals, char *out,
		   size_t cap);

/** Write @p v as exactly @p width lower-case hex digits; returns @p width. */
size_t sb_hex(char *out, uint64_t v, unsigned width);
/** Write @p v in decimal; returns the number of digits (at most 20). */
size_t sb_dec(char *out, uint64_t v);

/* ------------------------------------------------------------------------ */
/* Digest authentication (digest.c): RFC 2617, RFC 7616, RFC 3261 §22       */
/* ------------------------------------------------------------------------ */

enum sb_alg { SB_ALG_MD5 = 0, SB_ALG_SHA256, SB_ALG_SHA512_256, SB_ALG__COUNT };

/** Message digests fetched once, and one reusable context. */
struct sb_hasher {
	EVP_MD_CTX *ctx;
	EVP_MD *md[SB_ALG__COUNT];
};

/** @return 0 or -ENOMEM / -ENOTSUP (an algorithm is missing). */
int sb_hasher_init(struct sb_hasher *h);
void sb_hasher_free(struct sb_hasher *h);

/** The inputs of one digest response. */
struct sb_digest_in {
	enum sb_alg alg;
	sip_str user, realm, password;
	sip_str method, uri;
	sip_str nonce, cnonce, nc, qop; /**< qop empty: RFC 2069 form */
};

/**
 * The response value: H(H(A1):nonce:nc:cnonce:qop:H(A2)), or
 * H(H(A1):nonce:H(A2)) without qop, in lower-case hex.
 * @return its length (32 or 64), or -ENOSPC / -EIO.
 */
int sb_digest_response(struct sb_hasher *h, const struct sb_digest_in *in,
		       char *out, size_t cap);

/** A Digest challenge kept for the next requests of a user. */
struct sb_challenge {
	bool valid;
	bool proxy;    /**< 407 / Proxy-Authenticate            */
	bool qop_auth; /**< qop offered and contains "auth"       */
	bool stale;
	enum sb_alg alg;
	uint32_t nc; /**< last nonce count used                */
	uint8_t realm_len;
	uint8_t nonce_len;
	uint8_t opaque_len;
	char realm[96];
	char nonce[160];
	char opaque[160];
};

/**
 * Read one WWW-Authenticate / Proxy-Authenticate value.
 * @return 0, -EBADMSG (syntax), -ENOTSUP (not Digest, an algorithm we do
 *         not have, -sess, or qop without auth), -E2BIG (too long a value).
 */
int sb_challenge_parse(sip_str value, bool proxy, struct sb_challenge *ch);

/**
 * Write the Authorization (or Proxy-Authorization) header line, CRLF
 * included, answering @p ch for @p user / @p password and the request
 * @p method @p uri, with nonce count @p nc and client nonce @p cnonce.
 * @return the line's length, or -ENOSPC / -EIO.
 */
int sb_digest_header(struct sb_hasher *h, const struct sb_challenge *ch,
		     sip_str user, sip_str password, sip_str method,
		     sip_str uri, uint32_t nc, sip_str cnonce, char *out,
		     size_t cap);

/* ------------------------------------------------------------------------ */
/* Deadline heap (heap.c)                                                   */
/* ------------------------------------------------------------------------ */

/** A binary min-heap of (deadline, id), at most one entry per id. */
struct sb_heap {
	uint32_t n;
	uint32_t cap;
	struct sb_heap_ent {
		uint64_t at;
		uint32_t id;
	} * e;
	uint32_t *pos; /**< index in e[] of each id, UINT32_MAX when absent */
};

/** @return 0 or -ENOMEM; ids are 0..cap-1. */
int sb_heap_init(struct sb_heap *h, uint32_t cap);
void sb_heap_free(struct sb_heap *h);
/** Insert @p id at @p at, or move it there. */
void sb_heap_set(struct sb_heap *h, uint32_t id, uint64_t at);
/** Remove @p id (no-op when absent). */
void sb_heap_del(struct sb_heap *h, uint32_t id);
/** Earliest entry. @return false when empty. */
bool sb_heap_top(const struct sb_heap *h, uint32_t *id, uint64_t *at);

#endif /* SIPBENCH_SIPBENCH_H */
