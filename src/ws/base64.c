/** @file base64.c  Base64 (RFC 4648) and the Sec-WebSocket-Accept value
 * (RFC 6455 §4.2.2). */
#include "ws/ws.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

#include <openssl/evp.h>

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* The GUID every endpoint appends to the key (RFC 6455 §1.3). */
static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

size_t ws_base64_encode(const uint8_t *in, size_t len, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		size_t left = len - i;

		if (left > 1)
			v |= (uint32_t)in[i + 1] << 8;
		if (left > 2)
			v |= in[i + 2];
		out[o++] = b64_alphabet[(v >> 18) & 0x3f];
		out[o++] = b64_alphabet[(v >> 12) & 0x3f];
		out[o++] = left > 1 ? b64_alphabet[(v >> 6) & 0x3f] : '=';
		out[o++] = left > 2 ? b64_alphabet[v & 0x3f] : '=';
	}
	out[o] = '\0';
	return o;
}

/* Value of one base64 character, -1 for anything else ('=' included). */
static int b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int ws_base64_decode(sip_str in, uint8_t *out, size_t cap)
{
	size_t o = 0;

	if (in.len % 4 != 0 || in.len / 4 * 3 > INT_MAX)
		return -EINVAL;
	for (size_t i = 0; i < in.len; i += 4) {
		bool last = i + 4 == in.len;
		int pad = 0;
		uint32_t v = 0;

		if (last && in.p[i + 3] == '=')
			pad = in.p[i + 2] == '=' ? 2 : 1;
		for (int k = 0; k < 4; k++) {
			int c = k < 4 - pad ? b64_value(in.p[i + (size_t)k])
					    : 0;
			if (c < 0)
				return -EINVAL;
			v = (v << 6) | (uint32_t)c;
		}
		/* canonical: the bits the padding leaves over are zero */
		if ((pad == 1 && (v & 0xff) != 0) ||
		    (pad == 2 && (v & 0xffff) != 0))
			return -EINVAL;
		if (cap - o < (size_t)(3 - pad))
			return -ENOSPC;
		out[o++] = (uint8_t)(v >> 16);
		if (pad < 2)
			out[o++] = (uint8_t)(v >> 8);
		if (pad < 1)
			out[o++] = (uint8_t)v;
	}
	return (int)o;
}

int ws_accept_key(sip_str key, char out[WS_ACCEPT_LEN + 1])
{
	char text[64 + sizeof(ws_guid)];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (key.len > 64)
		return -EINVAL;
	if (key.len)
		memcpy(text, key.p, key.len);
	memcpy(text + key.len, ws_guid, sizeof(ws_guid) - 1);
	if (EVP_Digest(text, key.len + sizeof(ws_guid) - 1, md, &mdlen,
		       EVP_sha1(), NULL) != 1 ||
	    mdlen != 20)
		return -EIO;
	ws_base64_encode(md, mdlen, out);
	return 0;
}
