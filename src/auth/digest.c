/**
 * @file digest.c  Digest challenges and verification (RFC 3261 §22.4,
 * RFC 7616, RFC 8760): stateless signed nonces, the nonce-count tracker
 * and the From/To address-of-record check.
 *
 * A nonce is base64url (no padding) of 32 bytes: the issue time (8 bytes,
 * seconds, big-endian), a random salt (8 bytes) and the first 16 bytes of
 * HMAC-SHA256(secret, time || salt || realm). The salt keeps two
 * challenges issued in the same second apart, so their nonce-counts are
 * tracked separately. The opaque is fixed per realm, also derived from the
 * secret.
 *
 * The tracker remembers, per nonce (keyed by its MAC), the highest nc
 * accepted. It is bounded: when a shard is full, the nonce issued earliest
 * is forgotten and the shard's floor is raised to its issue time; a nonce
 * that is not tracked and not newer than the floor is answered STALE, so a
 * forgotten nonce can never be replayed from nc=1 again.
 */
#include "auth/auth.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NONCE_TS_LEN 8
#define NONCE_SALT_LEN 8
#define NONCE_MAC_LEN 16
#define NONCE_RAW_LEN (NONCE_TS_LEN + NONCE_SALT_LEN + NONCE_MAC_LEN)
#define NONCE_TEXT_LEN 43 /* base64url of 32 bytes, no padding */
#define OPAQUE_RAW_LEN 12
#define OPAQUE_TEXT_LEN 16
#define SECRET_MIN 16
#define SECRET_MAX 64
#define DEFAULT_LIFETIME 300
#define DEFAULT_NC_SLOTS (1u << 20)
/* A nonce issued this far in our future is not fresh (clock steps). */
#define CLOCK_SKEW 5

/* ------------------------------------------------------------------------ */
/* Nonce-count tracker                                                      */
/* ------------------------------------------------------------------------ */

/*
 * Every nonce carries a sequence number (the first half of its salt) and
 * owns ring slot seq % slots from its challenge on: the slot holds the
 * sequence number and the highest nc accepted, packed in one atomic word
 * (seq << 32 | nc). A nonce whose slot a newer challenge took over is
 * forgotten (stale=true: the client is challenged again), so the ring is a
 * window over the latest challenges and costs O(1) per challenge and per
 * verification, with no lock. Sized for the challenge rate times the time
 * a client keeps using a nonce.
 */
enum { NC_OK = 0, NC_REPLAY, NC_FORGOTTEN };

struct sip_digest {
	uint8_t secret[SECRET_MAX];
	size_t secret_len;
	/* The substitute password of unknown users (hex of a MAC of the
	 * secret): their HA1 is derived the way a stored one was. */
	char dummy_password[2 * 32 + 1];
	uint32_t lifetime;
	unsigned algs;
	sip_digest_ha1_fn ha1;
	void *ha1_arg;
	sip_digest_clock_fn clock;
	void *clock_arg;
	sip_digest_rand_fn rand;
	void *rand_arg;
	_Atomic uint64_t *ring; /* seq << 32 | highest nc accepted */
	size_t ring_mask;	/* slots - 1 (a power of two)       */
	_Atomic uint32_t next_seq;

	_Atomic uint64_t verified, ha1_lookups, ha1_derived, responses,
		challenges, nc_evictions;
	_Atomic uint64_t result[SIP_DIGEST_ERROR + 1];
};

static void count(_Atomic uint64_t *c)
{
	atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

static uint64_t load64be(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

static uint32_t load32be(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static void store32be(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void store64be(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

/* Give the nonce with sequence number @p seq its ring slot. */
static void nc_issue(struct sip_digest *d, uint32_t seq)
{
	atomic_store_explicit(&d->ring[seq & d->ring_mask], (uint64_t)seq << 32,
			      memory_order_relaxed);
}

/* Accept @p nc for the nonce with sequence number @p seq, if it is higher
 * than any accepted before and the nonce still owns its slot. */
static int nc_record(struct sip_digest *d, uint32_t seq, uint32_t nc)
{
	_Atomic uint64_t *slot = &d->ring[seq & d->ring_mask];
	uint64_t cur = atomic_load_explicit(slot, memory_order_relaxed);

	for (;;) {
		if ((uint32_t)(cur >> 32) != seq) {
			count(&d->nc_evictions);
			return NC_FORGOTTEN;
		}
		if (nc <= (uint32_t)cur)
			return NC_REPLAY;
		if (atomic_compare_exchange_weak_explicit(
			    slot, &cur, ((uint64_t)seq << 32) | nc,
			    memory_order_relaxed, memory_order_relaxed))
			return NC_OK;
	}
}

/* ------------------------------------------------------------------------ */
/* Creation                                                                 */
/* ------------------------------------------------------------------------ */

void sip_digest_config_default(struct sip_digest_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->nonce_lifetime = DEFAULT_LIFETIME;
	cfg->algs = SIP_DIGEST_ALGS_ALL;
	cfg->nc_slots = DEFAULT_NC_SLOTS;
}

static void mac(const struct sip_digest *d, const void *a, size_t alen,
		sip_str b, uint8_t out[32])
{
	uint8_t buf[NONCE_TS_LEN + NONCE_SALT_LEN + SIP_USERDB_DOMAIN_MAX + 16];
	unsigned int len = 0;

	if (alen + b.len > sizeof(buf)) {
		memset(out, 0, 32);
		return;
	}
	memcpy(buf, a, alen);
	if (b.len)
		memcpy(buf + alen, b.p, b.len);
	if (!HMAC(EVP_sha256(), d->secret, (int)d->secret_len, buf,
		  alen + b.len, out, &len))
		memset(out, 0, 32);
}

int sip_digest_create(const struct sip_digest_config *cfg,
		      struct sip_digest **out)
{
	static const char hex[] = "0123456789abcdef";
	struct sip_digest *d;
	size_t want, cap = 4;
	uint8_t key[32];

	*out = NULL;
	if (!cfg->ha1 || !cfg->secret || cfg->secret_len < SECRET_MIN ||
	    cfg->secret_len > SECRET_MAX)
		return -EINVAL;
	if (cfg->algs && !(cfg->algs & SIP_DIGEST_ALGS_ALL))
		return -EINVAL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	memcpy(d->secret, cfg->secret, cfg->secret_len);
	d->secret_len = cfg->secret_len;
	d->lifetime =
		cfg->nonce_lifetime ? cfg->nonce_lifetime : DEFAULT_LIFETIME;
	d->algs = (cfg->algs ? cfg->algs : SIP_DIGEST_ALGS_ALL) &
		  SIP_DIGEST_ALGS_ALL;
	d->ha1 = cfg->ha1;
	d->ha1_arg = cfg->ha1_arg;
	d->clock = cfg->clock;
	d->clock_arg = cfg->clock_arg;
	d->rand = cfg->rand;
	d->rand_arg = cfg->rand_arg;

	mac(d, "dummy-password", 14, SIP_STR_NULL, key);
	for (size_t i = 0; i < sizeof(key); i++) {
		d->dummy_password[2 * i] = hex[key[i] >> 4];
		d->dummy_password[2 * i + 1] = hex[key[i] & 15];
	}
	d->dummy_password[2 * sizeof(key)] = '\0';

	want = cfg->nc_slots ? cfg->nc_slots : DEFAULT_NC_SLOTS;
	while (cap < want && cap < (1u << 30))
		cap *= 2;
	/* calloc: pages are touched only as challenges reach them */
	d->ring = calloc(cap, sizeof(*d->ring));
	if (!d->ring) {
		free(d);
		return -ENOMEM;
	}
	d->ring_mask = cap - 1;
	atomic_init(&d->next_seq, 1);
	*out = d;
	return 0;
}

void sip_digest_destroy(struct sip_digest *d)
{
	if (!d)
		return;
	free(d->ring);
	OPENSSL_cleanse(d->secret, sizeof(d->secret));
	OPENSSL_cleanse(d->dummy_password, sizeof(d->dummy_password));
	free(d);
}

void sip_digest_stats_get(const struct sip_digest *d,
			  struct sip_digest_stats *out)
{
	out->verified =
		atomic_load_explicit(&d->verified, memory_order_relaxed);
	out->ha1_lookups =
		atomic_load_explicit(&d->ha1_lookups, memory_order_relaxed);
	out->ha1_derived =
		atomic_load_explicit(&d->ha1_derived, memory_order_relaxed);
	out->responses =
		atomic_load_explicit(&d->responses, memory_order_relaxed);
	out->challenges =
		atomic_load_explicit(&d->challenges, memory_order_relaxed);
	out->nc_evictions =
		atomic_load_explicit(&d->nc_evictions, memory_order_relaxed);
	for (size_t i = 0; i <= SIP_DIGEST_ERROR; i++)
		out->result[i] = atomic_load_explicit(&d->result[i],
						      memory_order_relaxed);
}

const char *sip_digest_result_name(enum sip_digest_result r)
{
	switch (r) {
	case SIP_DIGEST_OK:
		return "ok";
	case SIP_DIGEST_STALE:
		return "stale";
	case SIP_DIGEST_BAD_CREDENTIALS:
		return "bad credentials";
	case SIP_DIGEST_MISSING:
		return "missing";
	case SIP_DIGEST_MALFORMED:
		return "malformed";
	case SIP_DIGEST_ERROR:
		return "error";
	}
	return "?";
}

/* ------------------------------------------------------------------------ */
/* Nonces and challenges                                                    */
/* ------------------------------------------------------------------------ */

/* Decode exactly a nonce's text. @return 0 or -EINVAL. */
static int nonce_decode(sip_str text, uint8_t raw[NONCE_RAW_LEN])
{
	if (text.len != NONCE_TEXT_LEN ||
	    sip_base64_decode(text, raw, NONCE_RAW_LEN, SIP_BASE64_URL) !=
		    NONCE_RAW_LEN)
		return -EINVAL;
	return 0;
}

static uint64_t now_sec(const struct sip_digest *d)
{
	return d->clock ? d->clock(d->clock_arg) : (uint64_t)time(NULL);
}

static void nonce_mac(const struct sip_digest *d, const uint8_t *head,
		      sip_str realm, uint8_t out[32])
{
	mac(d, head, NONCE_TS_LEN + NONCE_SALT_LEN, realm, out);
}

int sip_digest_nonce(struct sip_digest *d, sip_str realm, char *nonce,
		     size_t cap)
{
	uint8_t raw[NONCE_RAW_LEN], full[32];
	uint32_t seq;
	int rc;

	if (cap < NONCE_TEXT_LEN + 1 || realm.len > SIP_USERDB_DOMAIN_MAX)
		return cap < NONCE_TEXT_LEN + 1 ? -ENOSPC : -EINVAL;
	store64be(raw, now_sec(d));
	/* salt: the sequence number (4 bytes, never 0), then 4 random */
	if (d->rand)
		rc = d->rand(d->rand_arg, raw + NONCE_TS_LEN + 4,
			     NONCE_SALT_LEN - 4);
	else
		rc = RAND_bytes(raw + NONCE_TS_LEN + 4, NONCE_SALT_LEN - 4) == 1
			     ? 0
			     : -EIO;
	if (rc < 0)
		return rc;
	seq = atomic_fetch_add_explicit(&d->next_seq, 1, memory_order_relaxed);
	if (seq == 0)
		seq = atomic_fetch_add_explicit(&d->next_seq, 1,
						memory_order_relaxed);
	store32be(raw + NONCE_TS_LEN, seq);
	nc_issue(d, seq);
	nonce_mac(d, raw, realm, full);
	memcpy(raw + NONCE_TS_LEN + NONCE_SALT_LEN, full, NONCE_MAC_LEN);
	count(&d->challenges);
	return (int)sip_base64_encode(raw, sizeof(raw), nonce, SIP_BASE64_URL);
}

static void opaque_text(const struct sip_digest *d, sip_str realm,
			char out[OPAQUE_TEXT_LEN + 1])
{
	uint8_t full[32];

	mac(d, "opaque", 6, realm, full);
	sip_base64_encode(full, OPAQUE_RAW_LEN, out, SIP_BASE64_URL);
}

static bool realm_ok(sip_str realm)
{
	if (realm.len == 0 || realm.len > SIP_USERDB_DOMAIN_MAX)
		return false;
	for (size_t i = 0; i < realm.len; i++) {
		unsigned char c = (unsigned char)realm.p[i];

		if (c < 0x20 || c == 0x7f || c == '"' || c == '\\')
			return false;
	}
	return true;
}

int sip_digest_challenge(struct sip_digest *d, sip_str realm,
			 enum sip_digest_alg alg, sip_str nonce, bool stale,
			 char *out, size_t cap)
{
	char opaque[OPAQUE_TEXT_LEN + 1];
	int n;

	/* The nonce is written inside quotes too: the same rules. */
	if (!realm_ok(realm) || !realm_ok(nonce) ||
	    (alg != SIP_DIGEST_MD5 && alg != SIP_DIGEST_SHA256))
		return -EINVAL;
	opaque_text(d, realm, opaque);
	n = snprintf(out, cap,
		     "Digest realm=\"%.*s\", nonce=\"%.*s\", opaque=\"%s\", "
		     "algorithm=%s, qop=\"auth\"%s",
		     SIP_STR_FMT(realm), SIP_STR_FMT(nonce), opaque,
		     sip_digest_alg_name(alg), stale ? ", stale=true" : "");
	if (n < 0 || (size_t)n >= cap)
		return -ENOSPC;
	return n;
}

int sip_digest_challenge_write(struct sip_digest *d, struct sip_writer *w,
			       bool proxy, sip_str realm, bool stale)
{
	static const enum sip_digest_alg order[] = {SIP_DIGEST_SHA256,
						    SIP_DIGEST_MD5};
	char nonce[NONCE_TEXT_LEN + 1], value[SIP_DIGEST_CHALLENGE_MAX];
	size_t nlen;
	int n;

	if (!realm_ok(realm))
		return -EINVAL;
	n = sip_digest_nonce(d, realm, nonce, sizeof(nonce));
	if (n < 0)
		return n;
	nlen = (size_t)n;
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		if (!(d->algs & SIP_DIGEST_ALG_BIT(order[i])))
			continue;
		n = sip_digest_challenge(d, realm, order[i],
					 (sip_str){nonce, nlen}, stale, value,
					 sizeof(value));
		if (n < 0)
			return n;
		sip_wr_header(w,
			      proxy ? "Proxy-Authenticate" : "WWW-Authenticate",
			      (sip_str){value, (size_t)n});
	}
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Verification                                                             */
/* ------------------------------------------------------------------------ */

enum {
	P_USERNAME,
	P_REALM,
	P_NONCE,
	P_URI,
	P_RESPONSE,
	P_ALGORITHM,
	P_CNONCE,
	P_OPAQUE,
	P_QOP,
	P_NC,
	P_USERHASH,
	P_USERNAME_EXT,
	P__COUNT
};

static const char *const param_names[P__COUNT] = {
	"username", "realm",  "nonce", "uri", "response", "algorithm",
	"cnonce",   "opaque", "qop",   "nc",  "userhash", "username*"};

struct creds {
	sip_str raw[P__COUNT]; /* as written (with quotes when quoted) */
	sip_str val[P__COUNT]; /* quotes removed */
	bool quoted[P__COUNT];
	bool has[P__COUNT];
};

static int creds_collect(const struct sip_auth *a, struct creds *c)
{
	memset(c, 0, sizeof(*c));
	for (unsigned i = 0; i < a->nparams; i++) {
		for (int k = 0; k < P__COUNT; k++) {
			if (!sip_str_ieq_c(a->params[i].name, param_names[k]))
				continue;
			if (c->has[k])
				return -EBADMSG; /* repeated parameter */
			sip_str v = a->params[i].value;
			c->raw[k] = v;
			if (a->params[i].quoted && v.len >= 2) {
				v.p++;
				v.len -= 2;
			}
			c->val[k] = v;
			c->quoted[k] = a->params[i].quoted;
			c->has[k] = true;
			break;
		}
	}
	return 0;
}

static bool is_hex(sip_str s)
{
	for (size_t i = 0; i < s.len; i++) {
		char c = sip_lower(s.p[i]);

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return false;
	}
	return true;
}

static bool uri_matches(sip_str a, sip_str b)
{
	struct sip_uri ua, ub;

	if (sip_str_eq(a, b))
		return true;
	return sip_uri_parse(a, &ua) == 0 && sip_uri_parse(b, &ub) == 0 &&
	       sip_uri_equal(&ua, &ub);
}

static enum sip_digest_result fail(struct sip_digest_info *info,
				   enum sip_digest_result r, const char *why)
{
	info->reason = why;
	return r;
}

/* The part of verification after the credentials have been read: the
 * nonce, the HA1 and the response. */
static enum sip_digest_result check_digest(struct sip_digest *d,
					   const struct creds *c,
					   const struct sip_digest_request *req,
					   struct sip_digest_info *info)
{
	enum sip_digest_alg alg = info->alg;
	size_t hlen = sip_digest_hex_len(alg);
	sip_str user = sip_str_c(info->username);
	uint8_t raw[NONCE_RAW_LEN], full[32];
	char dummy[SIP_DIGEST_HEX_MAX], real[SIP_DIGEST_HEX_MAX];
	char ha1[SIP_DIGEST_HEX_MAX], want[SIP_DIGEST_HEX_MAX];
	char got[SIP_DIGEST_HEX_MAX];
	uint64_t ts, now;
	bool expired;
	int rc;

	if (nonce_decode(c->val[P_NONCE], raw) < 0)
		return fail(info, SIP_DIGEST_BAD_CREDENTIALS,
			    "nonce not issued here");
	nonce_mac(d, raw, req->realm, full);
	if (CRYPTO_memcmp(full, raw + NONCE_TS_LEN + NONCE_SALT_LEN,
			  NONCE_MAC_LEN) != 0)
		return fail(info, SIP_DIGEST_BAD_CREDENTIALS,
			    "nonce not issued here");
	ts = load64be(raw);
	now = now_sec(d);
	expired = ts > now + CLOCK_SKEW ||
		  (now > ts && now - ts > (uint64_t)d->lifetime);

	/* The same work whether the user exists or not: derive the
	 * substitute HA1, look the user up, pick one without branching. */
	rc = sip_digest_ha1(alg, user, req->realm, sip_str_c(d->dummy_password),
			    dummy);
	count(&d->ha1_derived);
	if (rc < 0)
		return fail(info, SIP_DIGEST_ERROR, "cannot hash");
	memset(real, 0, sizeof(real));
	rc = d->ha1(d->ha1_arg, user, req->realm, alg, real, sizeof(real));
	count(&d->ha1_lookups);
	if (rc < 0 && rc != -ENOENT)
		return fail(info, SIP_DIGEST_ERROR, "user store failed");
	if (rc >= 0 && (size_t)rc != hlen)
		return fail(info, SIP_DIGEST_ERROR, "stored HA1 is invalid");
	unsigned char found = (unsigned char)(rc >= 0);
	unsigned char mask = (unsigned char)(0u - found);
	for (size_t i = 0; i < hlen; i++)
		ha1[i] = (char)(((unsigned char)real[i] & mask) |
				((unsigned char)dummy[i] &
				 (unsigned char)~mask));
	ha1[hlen] = '\0';

	rc = sip_digest_response(alg, (sip_str){ha1, hlen}, c->val[P_NONCE],
				 c->val[P_NC], c->val[P_CNONCE], c->val[P_QOP],
				 req->method, c->val[P_URI], want);
	count(&d->responses);
	OPENSSL_cleanse(real, sizeof(real));
	OPENSSL_cleanse(ha1, sizeof(ha1));
	if (rc < 0)
		return fail(info, SIP_DIGEST_ERROR, "cannot hash");
	for (size_t i = 0; i < hlen; i++)
		got[i] = sip_lower(c->val[P_RESPONSE].p[i]);
	if ((CRYPTO_memcmp(got, want, hlen) != 0) | !found)
		return fail(info, SIP_DIGEST_BAD_CREDENTIALS,
			    "wrong password or unknown user");
	if (expired)
		return fail(info, SIP_DIGEST_STALE, "nonce expired");
	switch (nc_record(d, load32be(raw + NONCE_TS_LEN), info->nc)) {
	case NC_REPLAY:
		return fail(info, SIP_DIGEST_STALE,
			    "nonce-count not increasing");
	case NC_FORGOTTEN:
		return fail(info, SIP_DIGEST_STALE, "nonce no longer tracked");
	default:
		break;
	}
	info->reason = "";
	return SIP_DIGEST_OK;
}

static enum sip_digest_result verify(struct sip_digest *d, sip_str value,
				     const struct sip_digest_request *req,
				     struct sip_digest_info *info)
{
	struct sip_auth a;
	struct creds c;
	uint64_t nc;
	int n;

	value = sip_str_trim(value);
	if (value.len == 0)
		return fail(info, SIP_DIGEST_MISSING, "no credentials");
	if (sip_auth_parse(value, &a) < 0 || creds_collect(&a, &c) < 0)
		return fail(info, SIP_DIGEST_MALFORMED,
			    "credentials do not parse");
	if (!sip_str_ieq_c(a.scheme, "Digest"))
		return fail(info, SIP_DIGEST_MALFORMED, "scheme is not Digest");
	if (c.has[P_USERNAME_EXT] ||
	    (c.has[P_USERHASH] && !sip_str_ieq_c(c.val[P_USERHASH], "false")))
		return fail(info, SIP_DIGEST_MALFORMED,
			    "userhash and username* are not supported");
	for (int k = P_USERNAME; k <= P_RESPONSE; k++) {
		if (!c.has[k] || c.val[k].len == 0)
			return fail(info, SIP_DIGEST_MALFORMED,
				    "a required parameter is missing");
	}
	if (!c.has[P_QOP] || !c.has[P_NC] || !c.has[P_CNONCE] ||
	    c.val[P_CNONCE].len == 0)
		return fail(info, SIP_DIGEST_MALFORMED,
			    "qop, nc and cnonce are required");

	if (c.quoted[P_USERNAME])
		n = sip_unquote(c.raw[P_USERNAME], info->username,
				sizeof(info->username) - 1);
	else if (c.val[P_USERNAME].len < sizeof(info->username))
		n = (int)c.val[P_USERNAME].len;
	else
		n = -ENOSPC;
	if (n <= 0)
		return fail(info, SIP_DIGEST_MALFORMED, "bad user name");
	if (!c.quoted[P_USERNAME])
		memcpy(info->username, c.val[P_USERNAME].p, (size_t)n);
	info->username[n] = '\0';
	if (memchr(info->username, '\0', (size_t)n))
		return fail(info, SIP_DIGEST_MALFORMED, "bad user name");

	if (!c.has[P_ALGORITHM] || sip_str_ieq_c(c.val[P_ALGORITHM], "MD5"))
		info->alg = SIP_DIGEST_MD5;
	else if (sip_str_ieq_c(c.val[P_ALGORITHM], "SHA-256"))
		info->alg = SIP_DIGEST_SHA256;
	else
		return fail(info, SIP_DIGEST_MALFORMED,
			    "unsupported algorithm");
	if (!sip_str_ieq_c(c.val[P_QOP], "auth"))
		return fail(info, SIP_DIGEST_MALFORMED, "qop is not auth");
	if (c.val[P_NC].len != 8 || !is_hex(c.val[P_NC]))
		return fail(info, SIP_DIGEST_MALFORMED, "bad nonce-count");
	nc = 0;
	for (size_t i = 0; i < 8; i++) {
		char ch = sip_lower(c.val[P_NC].p[i]);

		nc = nc * 16 + (uint64_t)(ch <= '9' ? ch - '0' : ch - 'a' + 10);
	}
	info->nc = (uint32_t)nc;
	if (nc == 0)
		return fail(info, SIP_DIGEST_MALFORMED, "bad nonce-count");
	if (c.val[P_RESPONSE].len != sip_digest_hex_len(info->alg) ||
	    !is_hex(c.val[P_RESPONSE]))
		return fail(info, SIP_DIGEST_MALFORMED, "bad response");

	if (!sip_str_eq(c.val[P_REALM], req->realm))
		return fail(info, SIP_DIGEST_BAD_CREDENTIALS, "wrong realm");
	if (!(d->algs & SIP_DIGEST_ALG_BIT(info->alg)))
		return fail(info, SIP_DIGEST_BAD_CREDENTIALS,
			    "algorithm not offered");
	if (req->ruri.len && !uri_matches(c.val[P_URI], req->ruri))
		return fail(info, SIP_DIGEST_BAD_CREDENTIALS,
			    "uri is not the Request-URI");
	if (c.has[P_OPAQUE]) {
		char opaque[OPAQUE_TEXT_LEN + 1];

		opaque_text(d, req->realm, opaque);
		if (!sip_str_eq(c.val[P_OPAQUE], sip_str_c(opaque)))
			return fail(info, SIP_DIGEST_BAD_CREDENTIALS,
				    "opaque not issued here");
	}
	return check_digest(d, &c, req, info);
}

enum sip_digest_result sip_digest_verify(struct sip_digest *d, sip_str value,
					 const struct sip_digest_request *req,
					 struct sip_digest_info *info)
{
	enum sip_digest_result r;

	memset(info, 0, sizeof(*info));
	info->alg = SIP_DIGEST_MD5;
	count(&d->verified);
	if (!realm_ok(req->realm))
		r = fail(info, SIP_DIGEST_BAD_CREDENTIALS, "wrong realm");
	else
		r = verify(d, value, req, info);
	if (r != SIP_DIGEST_OK && r != SIP_DIGEST_STALE &&
	    r != SIP_DIGEST_BAD_CREDENTIALS)
		info->username[0] = '\0';
	count(&d->result[r]);
	return r;
}

enum sip_digest_result sip_digest_verify_msg(struct sip_digest *d,
					     const struct sip_msg *msg,
					     bool proxy, sip_str realm,
					     struct sip_digest_info *info)
{
	enum sip_hdr_id id =
		proxy ? SIP_HDR_PROXY_AUTHORIZATION : SIP_HDR_AUTHORIZATION;
	struct sip_digest_request req = {msg->method, msg->ruri, realm};

	for (const struct sip_hdr *h = sip_msg_hdr(msg, id); h;
	     h = sip_msg_hdr_next(msg, h)) {
		struct sip_auth a;
		sip_str r;

		/* Credentials for another realm or scheme are someone
		 * else's (§22.3); ours are the first with our realm. */
		if (sip_auth_parse(h->value, &a) < 0)
			continue;
		if (!sip_str_ieq_c(a.scheme, "Digest") ||
		    !sip_auth_param(&a, "realm", &r) || !sip_str_eq(r, realm))
			continue;
		return sip_digest_verify(d, h->value, &req, info);
	}
	return sip_digest_verify(d, SIP_STR_NULL, &req, info);
}

/* ------------------------------------------------------------------------ */
/* Address of record                                                        */
/* ------------------------------------------------------------------------ */

int sip_digest_aor_check(const struct sip_msg *msg, sip_str username,
			 sip_str realm)
{
	enum sip_hdr_id id = msg->method_id == SIP_METHOD_REGISTER
				     ? SIP_HDR_TO
				     : SIP_HDR_FROM;
	const struct sip_hdr *h = sip_msg_hdr(msg, id);
	char user[SIP_USERDB_USER_MAX + 1];
	struct sip_addr a;
	int n;

	if (!h || sip_addr_parse(h->value, &a) < 0)
		return -EBADMSG;
	if (a.uri.scheme != SIP_URI_SIP && a.uri.scheme != SIP_URI_SIPS)
		return -EPERM;
	n = sip_unescape(a.uri.user, user, sizeof(user));
	if (n < 0 || (size_t)n != username.len ||
	    (n && memcmp(user, username.p, (size_t)n) != 0))
		return -EPERM;
	if (realm.len == 0 || !sip_str_ieq(a.uri.host, realm))
		return -EPERM;
	return 0;
}
