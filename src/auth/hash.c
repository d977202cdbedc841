/**
 * @file hash.c  The digest hashes: HA1 and the qop=auth response (RFC 7616
 * §3.4.1, §3.4.2) for MD5 and SHA-256, streamed through OpenSSL EVP.
 */
#include "auth/auth.h"

#include <errno.h>
#include <openssl/evp.h>

size_t sip_digest_hex_len(enum sip_digest_alg alg)
{
	return alg == SIP_DIGEST_SHA256 ? 64 : 32;
}

const char *sip_digest_alg_name(enum sip_digest_alg alg)
{
	return alg == SIP_DIGEST_SHA256 ? "SHA-256" : "MD5";
}

static const EVP_MD *alg_md(enum sip_digest_alg alg)
{
	switch (alg) {
	case SIP_DIGEST_MD5:
		return EVP_md5();
	case SIP_DIGEST_SHA256:
		return EVP_sha256();
	}
	return NULL;
}

/* H(parts[0] ":" parts[1] ":" ... ) as lower-case hex. */
static int hash_joined(enum sip_digest_alg alg, const sip_str *parts, size_t n,
		       char *out)
{
	static const char hex[] = "0123456789abcdef";
	const EVP_MD *md = alg_md(alg);
	unsigned char dig[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	size_t dlen;
	EVP_MD_CTX *ctx;
	int ok;

	if (!md)
		return -EINVAL;
	ctx = EVP_MD_CTX_new();
	if (!ctx)
		return -ENOMEM;
	ok = EVP_DigestInit_ex(ctx, md, NULL);
	for (size_t i = 0; ok && i < n; i++) {
		if (i > 0)
			ok = EVP_DigestUpdate(ctx, ":", 1);
		if (ok && parts[i].len)
			ok = EVP_DigestUpdate(ctx, parts[i].p, parts[i].len);
	}
	if (ok)
		ok = EVP_DigestFinal_ex(ctx, dig, &mdlen);
	EVP_MD_CTX_free(ctx);
	dlen = mdlen;
	if (!ok || dlen * 2 != sip_digest_hex_len(alg))
		return -EINVAL;
	for (size_t i = 0; i < dlen; i++) {
		out[2 * i] = hex[dig[i] >> 4];
		out[2 * i + 1] = hex[dig[i] & 15];
	}
	out[2 * dlen] = '\0';
	return (int)(2 * dlen);
}

int sip_digest_ha1(enum sip_digest_alg alg, sip_str username, sip_str realm,
		   sip_str password, char *out)
{
	const sip_str parts[] = {username, realm, password};

	return hash_joined(alg, parts, 3, out);
}

int sip_digest_response(enum sip_digest_alg alg, sip_str ha1, sip_str nonce,
			sip_str nc, sip_str cnonce, sip_str qop, sip_str method,
			sip_str uri, char *out)
{
	const sip_str a2[] = {method, uri};
	char ha2[SIP_DIGEST_HEX_MAX];
	int n = hash_joined(alg, a2, 2, ha2);

	if (n < 0)
		return n;
	const sip_str parts[] = {ha1, nonce, nc, cnonce, qop, {ha2, (size_t)n}};
	return hash_joined(alg, parts, 6, out);
}
