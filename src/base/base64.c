/**
 * @file base64.c  Base64 (RFC 4648 §4, padded) and base64url (§5, unpadded),
 * canonical forms only. Written here because the nonces and WebSocket keys
 * need a few bytes encoded, where OpenSSL's BIO/EVP encoders add line
 * breaks or allocate.
 */
#include "base/base.h"

#include <errno.h>
#include <limits.h>

static const char alphabet[2][65] = {
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
};

size_t sip_base64_len(size_t n, enum sip_base64 kind)
{
	if (kind == SIP_BASE64_URL)
		return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
	return (n + 2) / 3 * 4;
}

size_t sip_base64_encode(const uint8_t *in, size_t len, char *out,
			 enum sip_base64 kind)
{
	const char *a = alphabet[kind == SIP_BASE64_URL];
	size_t o = 0;

	for (size_t i = 0; i < len; i += 3) {
		size_t left = len - i;
		uint32_t v = (uint32_t)in[i] << 16;

		if (left > 1)
			v |= (uint32_t)in[i + 1] << 8;
		if (left > 2)
			v |= in[i + 2];
		out[o++] = a[(v >> 18) & 0x3f];
		out[o++] = a[(v >> 12) & 0x3f];
		if (left > 1)
			out[o++] = a[(v >> 6) & 0x3f];
		else if (kind == SIP_BASE64_STD)
			out[o++] = '=';
		if (left > 2)
			out[o++] = a[v & 0x3f];
		else if (kind == SIP_BASE64_STD)
			out[o++] = '=';
	}
	out[o] = '\0';
	return o;
}

static int value(char c, enum sip_base64 kind)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == (kind == SIP_BASE64_URL ? '-' : '+'))
		return 62;
	if (c == (kind == SIP_BASE64_URL ? '_' : '/'))
		return 63;
	return -1;
}

int sip_base64_decode(sip_str in, uint8_t *out, size_t cap,
		      enum sip_base64 kind)
{
	size_t len = in.len, o = 0;
	uint32_t v = 0;
	int bits = 0;

	if (kind == SIP_BASE64_STD) {
		/* padded to a multiple of 4, at most two '=' at the end */
		if (len % 4 != 0)
			return -EINVAL;
		if (len && in.p[len - 1] == '=')
			len--;
		if (len && in.p[len - 1] == '=')
			len--;
	}
	if (len % 4 == 1 || len / 4 * 3 > INT_MAX)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		int x = value(in.p[i], kind);

		if (x < 0)
			return -EINVAL;
		v = (v << 6) | (uint32_t)x;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o >= cap)
				return -ENOSPC;
			out[o++] = (uint8_t)(v >> bits);
		}
	}
	/* canonical: the bits left over are zero */
	if (v & ((1u << bits) - 1))
		return -EINVAL;
	return (int)o;
}
