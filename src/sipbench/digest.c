/**
 * @file digest.c  HTTP Digest for SIP (RFC 3261 §22.4, RFC 2617, RFC 7616):
 * challenge reading, response computation with OpenSSL EVP (MD5, SHA-256,
 * SHA-512/256) and the Authorization header line.
 */
#include "sipbench/sipbench.h"
#include "sipmsg/sipmsg.h"

#include <errno.h>
#include <string.h>

static const char *const alg_fetch[SB_ALG__COUNT] = {
	[SB_ALG_MD5] = "MD5",
	[SB_ALG_SHA256] = "SHA2-256",
	[SB_ALG_SHA512_256] = "SHA2-512/256",
};

static const char *const alg_token[SB_ALG__COUNT] = {
	[SB_ALG_MD5] = "MD5",
	[SB_ALG_SHA256] = "SHA-256",
	[SB_ALG_SHA512_256] = "SHA-512-256",
};

int sb_hasher_init(struct sb_hasher *h)
{
	memset(h, 0, sizeof(*h));
	h->ctx = EVP_MD_CTX_new();
	if (!h->ctx)
		return -ENOMEM;
	for (int i = 0; i < SB_ALG__COUNT; i++) {
		h->md[i] = EVP_MD_fetch(NULL, alg_fetch[i], NULL);
		if (!h->md[i]) {
			sb_hasher_free(h);
			return -ENOTSUP;
		}
	}
	return 0;
}

void sb_hasher_free(struct sb_hasher *h)
{
	for (int i = 0; i < SB_ALG__COUNT; i++) {
		EVP_MD_free(h->md[i]);
		h->md[i] = NULL;
	}
	EVP_MD_CTX_free(h->ctx);
	h->ctx = NULL;
}

/* H(p[0]:p[1]:...) in lower-case hex into @p hex (129 bytes at most). */
static int hash_hex(struct sb_hasher *h, enum sb_alg alg, const sip_str *p,
		    unsigned n, char *hex)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (EVP_DigestInit_ex(h->ctx, h->md[alg], NULL) != 1)
		return -EIO;
	for (unsigned i = 0; i < n; i++) {
		if (i && EVP_DigestUpdate(h->ctx, ":", 1) != 1)
			return -EIO;
		if (p[i].len && EVP_DigestUpdate(h->ctx, p[i].p, p[i].len) != 1)
			return -EIO;
	}
	if (EVP_DigestFinal_ex(h->ctx, md, &mdlen) != 1)
		return -EIO;
	for (unsigned i = 0; i < mdlen; i++)
		sb_hex(hex + (size_t)2 * i, md[i], 2);
	return (int)(2 * mdlen);
}

int sb_digest_response(struct sb_hasher *h, const struct sb_digest_in *in,
		       char *out, size_t cap)
{
	char ha1[2 * EVP_MAX_MD_SIZE], ha2[2 * EVP_MAX_MD_SIZE];
	int n1, n2, n;

	if ((unsigned)in->alg >= SB_ALG__COUNT)
		return -EINVAL;
	n1 = hash_hex(h, in->alg,
		      (const sip_str[]){in->user, in->realm, in->password}, 3,
		      ha1);
	if (n1 < 0)
		return n1;
	n2 = hash_hex(h, in->alg, (const sip_str[]){in->method, in->uri}, 2,
		      ha2);
	if (n2 < 0)
		return n2;
	if ((size_t)n2 + 1 > cap || (size_t)n1 + 1 > cap)
		return -ENOSPC;
	if (in->qop.len)
		n = hash_hex(h, in->alg,
			     (const sip_str[]){{ha1, (size_t)n1},
					       in->nonce,
					       in->nc,
					       in->cnonce,
					       in->qop,
					       {ha2, (size_t)n2}},
			     6, ha1);
	else
		n = hash_hex(h, in->alg,
			     (const sip_str[]){{ha1, (size_t)n1},
					       in->nonce,
					       {ha2, (size_t)n2}},
			     3, ha1);
	if (n < 0)
		return n;
	if ((size_t)n + 1 > cap)
		return -ENOSPC;
	memcpy(out, ha1, (size_t)n);
	out[n] = '\0';
	return n;
}

static int copy_param(const struct sip_auth *a, const char *name, char *dst,
		      size_t cap, uint8_t *len)
{
	sip_str v;

	if (!sip_auth_param(a, name, &v)) {
		*len = 0;
		return 0;
	}
	if (v.len > cap || v.len > 255)
		return -E2BIG;
	memcpy(dst, v.p, v.len);
	*len = (uint8_t)v.len;
	return 1;
}

static bool list_has_token(sip_str list, const char *tok)
{
	sip_str cur = list, item;

	while (sip_list_next(&cur, &item) == 1)
		if (sip_str_ieq_c(item, tok))
			return true;
	return false;
}

int sb_challenge_parse(sip_str value, bool proxy, struct sb_challenge *ch)
{
	struct sip_auth a;
	sip_str v;
	int r;

	memset(ch, 0, sizeof(*ch));
	if (sip_auth_parse(value, &a) < 0)
		return -EBADMSG;
	if (!sip_str_ieq_c(a.scheme, "Digest"))
		return -ENOTSUP;
	ch->alg = SB_ALG_MD5;
	if (sip_auth_param(&a, "algorithm", &v)) {
		int i;

		for (i = 0; i < SB_ALG__COUNT; i++)
			if (sip_str_ieq_c(v, alg_token[i]))
				break;
		if (i == SB_ALG__COUNT)
			return -ENOTSUP;
		ch->alg = (enum sb_alg)i;
	}
	if (sip_auth_param(&a, "qop", &v)) {
		if (!list_has_token(v, "auth"))
			return -ENOTSUP;
		ch->qop_auth = true;
	}
	if (sip_auth_param(&a, "stale", &v))
		ch->stale = sip_str_ieq_c(v, "true");
	r = copy_param(&a, "realm", ch->realm, sizeof(ch->realm),
		       &ch->realm_len);
	if (r < 0)
		return r;
	r = copy_param(&a, "nonce", ch->nonce, sizeof(ch->nonce),
		       &ch->nonce_len);
	if (r <= 0)
		return r < 0 ? r : -EBADMSG;
	r = copy_param(&a, "opaque", ch->opaque, sizeof(ch->opaque),
		       &ch->opaque_len);
	if (r < 0)
		return r;
	ch->proxy = proxy;
	ch->valid = true;
	return 0;
}

struct out {
	char *p;
	size_t cap, len;
	bool over;
};

static void put(struct out *o, const char *p, size_t n)
{
	if (o->over || n > o->cap - o->len) {
		o->over = true;
		return;
	}
	memcpy(o->p + o->len, p, n);
	o->len += n;
}

static void puts_c(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

int sb_digest_header(struct sb_hasher *h, const struct sb_challenge *ch,
		     sip_str user, sip_str password, sip_str method,
		     sip_str uri, uint32_t nc, sip_str cnonce, char *out,
		     size_t cap)
{
	char resp[2 * EVP_MAX_MD_SIZE + 1], ncs[8];
	struct sb_digest_in in = {
		.alg = ch->alg,
		.user = user,
		.realm = {ch->realm, ch->realm_len},
		.password = password,
		.method = method,
		.uri = uri,
		.nonce = {ch->nonce, ch->nonce_len},
		.cnonce = cnonce,
		.nc = {ncs, 8},
		.qop = ch->qop_auth ? SIP_STR_LIT("auth") : SIP_STR_NULL,
	};
	struct out o = {out, cap, 0, false};
	int n;

	sb_hex(ncs, nc, 8);
	n = sb_digest_response(h, &in, resp, sizeof(resp));
	if (n < 0)
		return n;
	puts_c(&o, ch->proxy ? "Proxy-Authorization" : "Authorization");
	puts_c(&o, ": Digest username=\"");
	put(&o, user.p, user.len);
	puts_c(&o, "\", realm=\"");
	put(&o, ch->realm, ch->realm_len);
	puts_c(&o, "\", nonce=\"");
	put(&o, ch->nonce, ch->nonce_len);
	puts_c(&o, "\", uri=\"");
	put(&o, uri.p, uri.len);
	puts_c(&o, "\", response=\"");
	put(&o, resp, (size_t)n);
	puts_c(&o, "\", algorithm=");
	puts_c(&o, alg_token[ch->alg]);
	if (ch->qop_auth) {
		puts_c(&o, ", cnonce=\"");
		put(&o, cnonce.p, cnonce.len);
		puts_c(&o, "\", qop=auth, nc=");
		put(&o, ncs, 8);
	}
	if (ch->opaque_len) {
		puts_c(&o, ", opaque=\"");
		put(&o, ch->opaque, ch->opaque_len);
		puts_c(&o, "\"");
	}
	puts_c(&o, "\r\n");
	if (o.over)
		return -ENOSPC;
	return (int)o.len;
}
