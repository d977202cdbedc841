/** @file accept.c  The Sec-WebSocket-Accept value (RFC 6455 §4.2.2). */
#include "ws/ws.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

#include <openssl/evp.h>

/* The GUID every endpoint appends to the key (RFC 6455 §1.3). */
static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

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
	sip_base64_encode(md, mdlen, out, SIP_BASE64_STD);
	return 0;
}
