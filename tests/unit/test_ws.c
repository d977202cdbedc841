/** @file test_ws.c  Unit tests for SIP over WebSocket: base64 and the accept
 * key, both sides of the opening handshake, the frame decoder (the RFC 6455
 * §5.7 examples, every close code it produces, byte-by-byte feeding) and
 * encoder/decoder round trips. */
#include "sipmsg/sipmsg.h"
#include "ws/ws.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#define S(lit) SIP_STR_LIT(lit)
#define MAX_MSG 70000

static void assert_slice(sip_str s, const void *expect, size_t n)
{
	if (s.len != n || (n && memcmp(s.p, expect, n) != 0))
		fail_msg("got \"%.*s\" (%zu), expected %zu bytes",
			 SIP_STR_FMT(s), s.len, n);
}

/* ------------------------------------------------------------------------ */
/* Base64 and the accept key                                                */
/* ------------------------------------------------------------------------ */

static void test_base64_vectors(void **state)
{
	(void)state;
	/* RFC 4648 §10 */
	static const char *const enc[] = {
		"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
	const char *plain = "foobar";
	char out[16];
	uint8_t dec[16];

	for (size_t n = 0; n <= 6; n++) {
		size_t l = sip_base64_encode((const uint8_t *)plain, n, out,
					     SIP_BASE64_STD);
		assert_int_equal(l, WS_BASE64_LEN(n));
		assert_string_equal(out, enc[n]);
		assert_int_equal(sip_base64_decode(sip_str_c(enc[n]), dec,
						   sizeof(dec), SIP_BASE64_STD),
				 (int)n);
		assert_memory_equal(dec, plain, n);
	}
	assert_int_equal(
		sip_base64_decode(S("Zm9"), dec, sizeof(dec), SIP_BASE64_STD),
		-EINVAL);
	assert_int_equal(
		sip_base64_decode(S("Zm=v"), dec, sizeof(dec), SIP_BASE64_STD),
		-EINVAL);
	assert_int_equal(sip_base64_decode(S("Zg==Zg=="), dec, sizeof(dec),
					   SIP_BASE64_STD),
			 -EINVAL);
	assert_int_equal(
		sip_base64_decode(S("Zh=="), dec, sizeof(dec), SIP_BASE64_STD),
		-EINVAL); /* non-zero pad bits */
	assert_int_equal(sip_base64_decode(S("Zm9v YmFy"), dec, sizeof(dec),
					   SIP_BASE64_STD),
			 -EINVAL);
	assert_int_equal(
		sip_base64_decode(S("Zm9vYmFy"), dec, 5, SIP_BASE64_STD),
		-ENOSPC);
	assert_int_equal(
		sip_base64_decode(S("+/+/"), dec, sizeof(dec), SIP_BASE64_STD),
		3);
	assert_int_equal(dec[0], 0xfb);

	/* base64url (RFC 4648 §5), unpadded */
	static const char *const url[] = {
		"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
	for (size_t n = 0; n <= 6; n++) {
		size_t l = sip_base64_encode((const uint8_t *)plain, n, out,
					     SIP_BASE64_URL);
		assert_int_equal(l, sip_base64_len(n, SIP_BASE64_URL));
		assert_string_equal(out, url[n]);
		assert_int_equal(sip_base64_decode(sip_str_c(url[n]), dec,
						   sizeof(dec), SIP_BASE64_URL),
				 (int)n);
		assert_memory_equal(dec, plain, n);
	}
	assert_int_equal(
		sip_base64_decode(S("-_-_"), dec, sizeof(dec), SIP_BASE64_URL),
		3);
	assert_int_equal(dec[0], 0xfb);
	assert_int_equal(
		sip_base64_decode(S("+/+/"), dec, sizeof(dec), SIP_BASE64_URL),
		-EINVAL);
	assert_int_equal(
		sip_base64_decode(S("Zg=="), dec, sizeof(dec), SIP_BASE64_URL),
		-EINVAL);
	assert_int_equal(
		sip_base64_decode(S("Zm9vY"), dec, sizeof(dec), SIP_BASE64_URL),
		-EINVAL);
	assert_int_equal(
		sip_base64_decode(S("Zh"), dec, sizeof(dec), SIP_BASE64_URL),
		-EINVAL); /* non-zero leftover bits */
}

static void test_accept_key_rfc6455(void **state)
{
	(void)state;
	char acc[WS_ACCEPT_LEN + 1];

	/* RFC 6455 §1.3 */
	assert_int_equal(ws_accept_key(S("dGhlIHNhbXBsZSBub25jZQ=="), acc), 0);
	assert_string_equal(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

/* ------------------------------------------------------------------------ */
/* Server handshake                                                         */
/* ------------------------------------------------------------------------ */

/* The RFC 7118 §4 example request. */
#define REQ_START "GET / HTTP/1.1\r\n"
#define REQ_HOST "Host: sip-ws.example.com\r\n"
#define REQ_UPGRADE "Upgrade: websocket\r\n"
#define REQ_CONN "Connection: Upgrade\r\n"
#define REQ_KEY "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
#define REQ_ORIGIN "Origin: http://www.example.com\r\n"
#define REQ_PROTO "Sec-WebSocket-Protocol: sip\r\n"
#define REQ_VERSION "Sec-WebSocket-Version: 13\r\n"
#define REQ_ALL                                                                \
	REQ_START REQ_HOST REQ_UPGRADE REQ_CONN REQ_KEY REQ_ORIGIN REQ_PROTO   \
		REQ_VERSION "\r\n"

static const char resp_101[] =
	"HTTP/1.1 101 Switching Protocols\r\n"
	"Upgrade: websocket\r\n"
	"Connection: Upgrade\r\n"
	"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
	"Sec-WebSocket-Protocol: sip\r\n"
	"\r\n";

static int server_parse(const char *req, struct ws_handshake *h)
{
	ws_handshake_init(h, 0);
	return ws_server_handshake(h, req, strlen(req));
}

static void test_server_rfc7118_example(void **state)
{
	(void)state;
	struct ws_handshake h;
	char out[512];
	int n;

	assert_int_equal(server_parse(REQ_ALL, &h), WS_HS_ACCEPT);
	assert_int_equal(h.status, 101);
	assert_int_equal(h.len, strlen(REQ_ALL));
	assert_slice(h.target, "/", 1);
	assert_slice(h.host, "sip-ws.example.com", 18);
	assert_slice(h.origin, "http://www.example.com", 22);
	assert_string_equal(h.key, "dGhlIHNhbXBsZSBub25jZQ==");
	assert_string_equal(h.accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
	n = ws_server_response(&h, out, sizeof(out));
	assert_int_equal(n, (int)strlen(resp_101));
	assert_memory_equal(out, resp_101, (size_t)n);
	assert_int_equal(ws_server_response(&h, out, 40), -ENOSPC);
	/* asking again gives the same verdict */
	assert_int_equal(ws_server_handshake(&h, REQ_ALL, strlen(REQ_ALL)),
			 WS_HS_ACCEPT);
}

static void test_server_variants_accepted(void **state)
{
	(void)state;
	struct ws_handshake h;
	/* lists, case, spacing, several header lines, no Origin */
	static const char req[] =
		"GET /ws?x=1 HTTP/1.1\r\n"
		"host:example.org:8080\r\n"
		"UPGRADE: WebSocket\r\n"
		"connection: keep-alive, ,UPGRADE\r\n"
		"sec-websocket-key:    dGhlIHNhbXBsZSBub25jZQ==   \r\n"
		"Sec-WebSocket-Protocol: chat\r\n"
		"Sec-WebSocket-Protocol: superchat, sip\r\n"
		"Sec-WebSocket-Extensions: permessage-deflate\r\n"
		"Sec-WebSocket-Version: 13\r\n"
		"\r\n";

	assert_int_equal(server_parse(req, &h), WS_HS_ACCEPT);
	assert_slice(h.target, "/ws?x=1", 7);
	assert_slice(h.host, "example.org:8080", 16);
	assert_int_equal(h.origin.len, 0);
	assert_string_equal(h.accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

static void test_server_incremental(void **state)
{
	(void)state;
	static const char req[] = REQ_ALL "\x81\x85";
	const size_t n = strlen(REQ_ALL);
	struct ws_handshake h;

	ws_handshake_init(&h, 0);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(ws_server_handshake(&h, req, i),
				 WS_HS_NEED_MORE);
	/* bytes of the first frame may follow the header block */
	assert_int_equal(ws_server_handshake(&h, req, sizeof(req) - 1),
			 WS_HS_ACCEPT);
	assert_int_equal(h.len, n);
}

struct reject_case {
	const char *req;
	unsigned status;
	const char *reason;
};

static void test_server_rejections(void **state)
{
	(void)state;
	static const struct reject_case cases[] = {
		{REQ_START REQ_HOST REQ_UPGRADE REQ_CONN REQ_KEY REQ_VERSION
		 "\r\n",
		 400, "Sec-WebSocket-Protocol sip required"},
		{REQ_START REQ_HOST REQ_UPGRADE REQ_CONN REQ_KEY
		 "Sec-WebSocket-Protocol: chat, SIP, sips\r\n" REQ_VERSION
		 "\r\n",
		 400, "Sec-WebSocket-Protocol sip required"},
		{REQ_START REQ_HOST REQ_UPGRADE REQ_CONN REQ_KEY REQ_PROTO
		 "Sec-WebSocket-Version: 8\r\n\r\n",
		 426, "Sec-WebSocket-Version 13 required"},
		{REQ_START REQ_HOST REQ_UPGRADE REQ_CONN REQ_KEY REQ_PROTO
		 "\r\n",
		 400, "Missing Sec-WebSocket-Version"},
		{REQ_START REQ_HOST REQ_UPGRADE REQ_CONN
		 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ\r\n" REQ_PROTO
			 REQ_VERSION "\r\n",
		 400, "Invalid Sec-WebSocket-Key"},
		{REQ_START REQ_HOST REQ_UPGRADE REQ_CONN
		 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j\r\n" REQ_PROTO
			 REQ_VERSION "\r\n",
		 400, "Invalid Sec-WebSocket-Key"}, /* 15 bytes */
		{REQ_START REQ_HOST REQ_UPGRADE REQ_CONN
		 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZ*==\r\n" REQ_PROTO
			 REQ_VERSION "\r\n",
		 400, "Invalid Sec-WebSocket-Key"},
		{REQ_START REQ_HOST REQ_UPGRADE REQ_CONN REQ_PROTO REQ_VERSION
		 "\r\n",
		 400, "Invalid Sec-WebSocket-Key"},
		{REQ_START REQ_HOST REQ_UPGRADE REQ_CONN REQ_KEY REQ_KEY
			 REQ_PROTO REQ_VERSION "\r\n",
		 400, "Invalid Sec-WebSocket-Key"},
		{"POST / HTTP/1.1\r\n" REQ_HOST REQ_UPGRADE REQ_CONN REQ_KEY
			 REQ_PROTO REQ_VERSION "\r\n",
		 400, "Method must be GET"},
		{"get / HTTP/1.1\r\n" REQ_HOST REQ_UPGRADE REQ_CONN REQ_KEY
			 REQ_PROTO REQ_VERSION "\r\n",
		 400, "Method must be GET"},
		{"GET / HTTP/1.0\r\n" REQ_HOST REQ_UPGRADE REQ_CONN REQ_KEY
			 REQ_PROTO REQ_VERSION "\r\n",
		 400, "HTTP/1.1 required"},
		{"GET /\r\n" REQ_HOST REQ_UPGRADE REQ_CONN REQ_KEY REQ_PROTO
			 REQ_VERSION "\r\n",
		 400, "Malformed request line"},
		{"GET  / HTTP/1.1\r\n" REQ_HOST REQ_UPGRADE REQ_CONN REQ_KEY
			 REQ_PROTO REQ_VERSION "\r\n",
		 400, "Malformed request line"},
		{REQ_START REQ_UPGRADE REQ_CONN REQ_KEY REQ_PROTO REQ_VERSION
		 "\r\n",
		 400, "Exactly one Host required"},
		{REQ_START REQ_HOST REQ_HOST REQ_UPGRADE REQ_CONN REQ_KEY
			 REQ_PROTO REQ_VERSION "\r\n",
		 400, "Exactly one Host required"},
		{REQ_START REQ_HOST
		 "Upgrade: h2c\r\n" REQ_CONN REQ_KEY REQ_PROTO REQ_VERSION
		 "\r\n",
		 400, "Upgrade: websocket required"},
		{REQ_START REQ_HOST REQ_UPGRADE
		 "Connection: keep-alive\r\n" REQ_KEY REQ_PROTO REQ_VERSION
		 "\r\n",
		 400, "Connection: Upgrade required"},
		{REQ_START REQ_HOST " folded\r\n" REQ_UPGRADE REQ_CONN REQ_KEY
			 REQ_PROTO REQ_VERSION "\r\n",
		 400, "Malformed header field"},
		{REQ_START REQ_HOST "Bad Name: x\r\n" REQ_UPGRADE REQ_CONN
			 REQ_KEY REQ_PROTO REQ_VERSION "\r\n",
		 400, "Malformed header field"},
		{REQ_START REQ_HOST "X-Bare\nLF: x\r\n" REQ_UPGRADE REQ_CONN
			 REQ_KEY REQ_PROTO REQ_VERSION "\r\n",
		 400, "Malformed header field"},
		{"\r\n" REQ_ALL, 400, "Malformed request line"},
	};
	struct ws_handshake h;
	char out[512];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int n;

		if (server_parse(cases[i].req, &h) != WS_HS_REJECT)
			fail_msg("case %zu accepted", i);
		assert_int_equal(h.status, cases[i].status);
		assert_string_equal(h.reason, cases[i].reason);
		n = ws_server_response(&h, out, sizeof(out));
		assert_true(n > 0);
		out[n] = '\0';
		if (cases[i].status == 426) {
			assert_non_null(strstr(out, "HTTP/1.1 426 Upgrade "
						    "Required\r\n"));
			assert_non_null(strstr(
				out, "\r\nSec-WebSocket-Version: 13\r\n"));
		} else {
			assert_non_null(
				strstr(out, "HTTP/1.1 400 Bad Request"));
			assert_null(strstr(out, "\r\nSec-WebSocket-Version:"));
		}
		assert_non_null(strstr(out, cases[i].reason));
		assert_non_null(strstr(out, "Connection: close\r\n"));
	}
}

static void test_server_oversize(void **state)
{
	(void)state;
	static char big[9000];
	struct ws_handshake h;
	char out[512];
	size_t n;

	/* no end of the block within the bound */
	memset(big, 'a', sizeof(big));
	ws_handshake_init(&h, 1024);
	assert_int_equal(ws_server_handshake(&h, big, 1023), WS_HS_NEED_MORE);
	assert_int_equal(ws_server_handshake(&h, big, 1024), WS_HS_REJECT);
	assert_int_equal(h.status, 431);
	assert_true(ws_server_response(&h, out, sizeof(out)) > 0);
	assert_non_null(strstr(out, "431 Request Header Fields Too Large"));

	/* a complete but too long block, default bound */
	n = (size_t)snprintf(big, sizeof(big), "%s", REQ_START REQ_HOST);
	while (n < 8300)
		n += (size_t)snprintf(big + n, sizeof(big) - n,
				      "X-Filler: %s\r\n",
				      "0123456789012345678901234567890123");
	n += (size_t)snprintf(big + n, sizeof(big) - n, "%s",
			      REQ_UPGRADE REQ_CONN REQ_KEY REQ_PROTO REQ_VERSION
			      "\r\n");
	assert_int_equal(server_parse(big, &h), WS_HS_REJECT);
	assert_int_equal(h.status, 431);
	/* the same block under a larger bound is fine */
	ws_handshake_init(&h, 16384);
	assert_int_equal(ws_server_handshake(&h, big, n), WS_HS_ACCEPT);
}

static void test_server_response_needs_verdict(void **state)
{
	(void)state;
	struct ws_handshake h;
	char out[256];

	ws_handshake_init(&h, 0);
	assert_int_equal(ws_server_response(&h, out, sizeof(out)), -EINVAL);
	assert_int_equal(ws_server_handshake(&h, REQ_START, 16),
			 WS_HS_NEED_MORE);
	assert_int_equal(ws_server_response(&h, out, sizeof(out)), -EINVAL);
	assert_int_equal(ws_server_handshake(NULL, "", 0), -EINVAL);
}

/* ------------------------------------------------------------------------ */
/* Client handshake                                                         */
/* ------------------------------------------------------------------------ */

/* "the sample nonce" of RFC 6455 §1.3 */
static const uint8_t sample_nonce[WS_NONCE_LEN] = "the sample nonce";

static void test_client_request(void **state)
{
	(void)state;
	struct ws_handshake c, s;
	char req[512];
	int n;

	ws_handshake_init(&c, 0);
	n = ws_client_request(&c, sample_nonce, "sip-ws.example.com", "/",
			      "http://www.example.com", req, sizeof(req));
	assert_true(n > 0);
	assert_string_equal(c.key, "dGhlIHNhbXBsZSBub25jZQ==");
	assert_string_equal(c.accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
	assert_non_null(strstr(req, "GET / HTTP/1.1\r\n"));
	assert_non_null(strstr(req, "\r\nSec-WebSocket-Protocol: sip\r\n"));
	assert_non_null(strstr(req, "\r\nOrigin: http://www.example.com\r\n"));
	/* the server side accepts it */
	assert_int_equal(server_parse(req, &s), WS_HS_ACCEPT);
	assert_int_equal(s.len, (size_t)n);
	assert_slice(s.origin, "http://www.example.com", 22);

	n = ws_client_request(&c, sample_nonce, "h", "/", NULL, req,
			      sizeof(req));
	assert_true(n > 0);
	assert_null(strstr(req, "Origin"));
	assert_int_equal(
		ws_client_request(&c, sample_nonce, "h", "/", NULL, req, 50),
		-ENOSPC);
	assert_int_equal(ws_client_request(&c, sample_nonce, "h\r\nX: y", "/",
					   NULL, req, sizeof(req)),
			 -EINVAL);
	assert_int_equal(ws_client_request(&c, sample_nonce, "h", "/a b", NULL,
					   req, sizeof(req)),
			 -EINVAL);
	assert_int_equal(ws_client_request(&c, sample_nonce, "", "/", NULL, req,
					   sizeof(req)),
			 -EINVAL);
}

static int client_check(const char *resp, struct ws_handshake *c)
{
	char req[512];

	ws_handshake_init(c, 0);
	assert_true(ws_client_request(c, sample_nonce, "h", "/", NULL, req,
				      sizeof(req)) > 0);
	return ws_client_handshake(c, resp, strlen(resp));
}

static void test_client_validates_101(void **state)
{
	(void)state;
	struct ws_handshake c;
	static const char lower[] =
		"HTTP/1.1 101 \r\n"
		"upgrade: WEBSOCKET\r\n"
		"connection: upgrade\r\n"
		"sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
		"sec-websocket-protocol: sip\r\n"
		"Server: x\r\n"
		"\r\n";

	assert_int_equal(client_check(resp_101, &c), WS_HS_ACCEPT);
	assert_int_equal(c.status, 101);
	assert_int_equal(c.len, strlen(resp_101));
	assert_int_equal(client_check(lower, &c), WS_HS_ACCEPT);

	/* byte by byte */
	client_check("", &c);
	for (size_t i = 0; i < strlen(resp_101); i++)
		assert_int_equal(ws_client_handshake(&c, resp_101, i),
				 WS_HS_NEED_MORE);
	assert_int_equal(ws_client_handshake(&c, resp_101, strlen(resp_101)),
			 WS_HS_ACCEPT);
}

static void test_client_rejections(void **state)
{
	(void)state;
#define R_UP "Upgrade: websocket\r\n"
#define R_CONN "Connection: Upgrade\r\n"
#define R_ACC "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
#define R_PROTO "Sec-WebSocket-Protocol: sip\r\n"
	static const struct reject_case cases[] = {
		{"HTTP/1.1 101 OK\r\n" R_UP R_CONN "Sec-WebSocket-Accept: "
		 "s3pPLMBiTxaQ9kYGzzhZRbK+xOp=\r\n" R_PROTO "\r\n",
		 101, "Wrong Sec-WebSocket-Accept"},
		{"HTTP/1.1 101 OK\r\n" R_UP R_CONN R_PROTO "\r\n", 101,
		 "Wrong Sec-WebSocket-Accept"},
		{"HTTP/1.1 101 OK\r\n" R_UP R_CONN R_ACC "\r\n", 101,
		 "Sec-WebSocket-Protocol is not sip"},
		{"HTTP/1.1 101 OK\r\n" R_UP R_CONN R_ACC
		 "Sec-WebSocket-Protocol: chat\r\n\r\n",
		 101, "Sec-WebSocket-Protocol is not sip"},
		{"HTTP/1.1 101 OK\r\n" R_UP R_CONN R_ACC
		 "Sec-WebSocket-Protocol: sip, chat\r\n\r\n",
		 101, "Sec-WebSocket-Protocol is not sip"},
		{"HTTP/1.1 101 OK\r\n" R_CONN R_ACC R_PROTO "\r\n", 101,
		 "Upgrade: websocket missing"},
		{"HTTP/1.1 101 OK\r\n" R_UP R_ACC R_PROTO "\r\n", 101,
		 "Connection: Upgrade missing"},
		{"HTTP/1.1 101 OK\r\n" R_UP R_CONN R_ACC R_PROTO
		 "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
		 101, "Unrequested Sec-WebSocket-Extensions"},
		{"HTTP/1.1 426 Upgrade Required\r\n"
		 "Sec-WebSocket-Version: 13\r\n\r\n",
		 426, "Server did not switch protocols"},
		{"HTTP/1.1 400 Bad Request\r\n\r\n", 400,
		 "Server did not switch protocols"},
		{"HTTP/1.0 101 OK\r\n" R_UP R_CONN R_ACC R_PROTO "\r\n", 0,
		 "Malformed status line"},
		{"HTTP/1.1 1x1 OK\r\n\r\n", 0, "Malformed status line"},
		{"HTTP/1.1 101OK\r\n\r\n", 0, "Malformed status line"},
	};
	struct ws_handshake c;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (client_check(cases[i].req, &c) != WS_HS_REJECT)
			fail_msg("case %zu accepted", i);
		assert_int_equal(c.status, cases[i].status);
		assert_string_equal(c.reason, cases[i].reason);
	}
}

/* ------------------------------------------------------------------------ */
/* Decoder                                                                  */
/* ------------------------------------------------------------------------ */

/** One recorded event. */
struct rec {
	int kind;
	int opcode;
	unsigned code;
	size_t len;
	uint32_t hash; /**< FNV-1a of the data */
	char head[64]; /**< first bytes of the data, NUL-terminated */
	const char *reason;
};

static uint32_t fnv(sip_str s)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < s.len; i++)
		h = (h ^ (uint8_t)s.p[i]) * 16777619u;
	return h;
}

static uint8_t rbuf[1 << 18];
static uint8_t mbuf[1 << 18];
static uint8_t frames[1 << 18];

/* Feed @p in to a fresh decoder @p chunk bytes at a time (0: all at once)
 * the way a transport does: append, decode until NEED_MORE, drop what was
 * consumed. Stops after CLOSE or ERROR. @return the number of events. */
static size_t feed(enum ws_role role, size_t max_msg, const uint8_t *in,
		   size_t n, size_t chunk, struct rec *out, size_t max_ev)
{
	struct ws_decoder d;
	size_t have = 0, fed = 0, nev = 0;

	ws_decoder_init(&d, role, mbuf, max_msg);
	for (;;) {
		size_t add = chunk && chunk < n - fed ? chunk : n - fed;

		memcpy(rbuf + have, in + fed, add);
		have += add;
		fed += add;
		for (;;) {
			struct ws_event ev;
			size_t used = 99;
			int rc = ws_decode(&d, rbuf, have, &used, &ev);

			assert_true(rc >= 0);
			assert_int_equal(rc, ev.kind);
			assert_true(used <= have);
			if (rc != WS_EV_NEED_MORE) {
				struct rec *r = &out[nev++];
				assert_true(nev <= max_ev);
				memset(r, 0, sizeof(*r));
				r->kind = rc;
				r->opcode = ev.opcode;
				r->code = ev.code;
				r->len = ev.data.len;
				r->hash = fnv(ev.data);
				r->reason = ev.reason;
				if (ev.data.len)
					memcpy(r->head, ev.data.p,
					       ev.data.len < 63 ? ev.data.len
								: 63);
			}
			if (used) {
				memmove(rbuf, rbuf + used, have - used);
				have -= used;
			}
			if (rc == WS_EV_CLOSE || rc == WS_EV_ERROR) {
				struct ws_event ev2;
				assert_int_equal(
					ws_decode(&d, rbuf, have, &used, &ev2),
					-EPIPE);
				return nev;
			}
			if (rc == WS_EV_NEED_MORE)
				break;
		}
		if (fed == n)
			return nev;
	}
}

/* Feed whole, then byte by byte and in 7-byte chunks: same events. */
static size_t feed_all_ways(enum ws_role role, size_t max_msg,
			    const uint8_t *in, size_t n, struct rec *out,
			    size_t max_ev)
{
	static struct rec other[64];
	static const size_t chunks[] = {1, 7};
	size_t nev = feed(role, max_msg, in, n, 0, out, max_ev);

	for (size_t c = 0; c < 2; c++) {
		size_t m = feed(role, max_msg, in, n, chunks[c], other, 64);
		assert_int_equal(m, nev);
		for (size_t i = 0; i < m; i++) {
			assert_int_equal(other[i].kind, out[i].kind);
			assert_int_equal(other[i].opcode, out[i].opcode);
			assert_int_equal(other[i].code, out[i].code);
			assert_int_equal(other[i].len, out[i].len);
			assert_int_equal(other[i].hash, out[i].hash);
		}
	}
	return nev;
}

static void test_rfc6455_examples(void **state)
{
	(void)state;
	/* RFC 6455 §5.7 */
	static const uint8_t unmasked[] = {0x81, 0x05, 0x48, 0x65,
					   0x6c, 0x6c, 0x6f};
	static const uint8_t masked[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
					 0x7f, 0x9f, 0x4d, 0x51, 0x58};
	static const uint8_t fragmented[] = {0x01, 0x03, 0x48, 0x65, 0x6c,
					     0x80, 0x02, 0x6c, 0x6f};
	static const uint8_t ping[] = {0x89, 0x05, 0x48, 0x65,
				       0x6c, 0x6c, 0x6f};
	static const uint8_t pong[] = {0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d,
				       0x7f, 0x9f, 0x4d, 0x51, 0x58};
	struct rec r[4];

	assert_int_equal(feed_all_ways(WS_ROLE_CLIENT, MAX_MSG, unmasked,
				       sizeof(unmasked), r, 4),
			 1);
	assert_int_equal(r[0].kind, WS_EV_MESSAGE);
	assert_int_equal(r[0].opcode, WS_OP_TEXT);
	assert_string_equal(r[0].head, "Hello");

	assert_int_equal(feed_all_ways(WS_ROLE_SERVER, MAX_MSG, masked,
				       sizeof(masked), r, 4),
			 1);
	assert_int_equal(r[0].kind, WS_EV_MESSAGE);
	assert_string_equal(r[0].head, "Hello");

	assert_int_equal(feed_all_ways(WS_ROLE_CLIENT, MAX_MSG, fragmented,
				       sizeof(fragmented), r, 4),
			 1);
	assert_int_equal(r[0].kind, WS_EV_MESSAGE);
	assert_int_equal(r[0].opcode, WS_OP_TEXT);
	assert_string_equal(r[0].head, "Hello");

	assert_int_equal(feed_all_ways(WS_ROLE_CLIENT, MAX_MSG, ping,
				       sizeof(ping), r, 4),
			 1);
	assert_int_equal(r[0].kind, WS_EV_PING);
	assert_string_equal(r[0].head, "Hello");

	assert_int_equal(feed_all_ways(WS_ROLE_SERVER, MAX_MSG, pong,
				       sizeof(pong), r, 4),
			 1);
	assert_int_equal(r[0].kind, WS_EV_PONG);
	assert_string_equal(r[0].head, "Hello");
}

static void test_rfc6455_lengths(void **state)
{
	(void)state;
	struct rec r[2];
	size_t n;

	/* 256 bytes binary data in a single unmasked frame */
	frames[0] = 0x82;
	frames[1] = 0x7e;
	frames[2] = 0x01;
	frames[3] = 0x00;
	for (size_t i = 0; i < 256; i++)
		frames[4 + i] = (uint8_t)i;
	assert_int_equal(
		feed_all_ways(WS_ROLE_CLIENT, MAX_MSG, frames, 260, r, 2), 1);
	assert_int_equal(r[0].kind, WS_EV_MESSAGE);
	assert_int_equal(r[0].opcode, WS_OP_BINARY);
	assert_int_equal(r[0].len, 256);
	assert_int_equal(r[0].head[1], 1);

	/* 64 KiB binary data in a single unmasked frame */
	static const uint8_t hdr64[] = {0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0};
	memcpy(frames, hdr64, sizeof(hdr64));
	for (size_t i = 0; i < 65536; i++)
		frames[10 + i] = (uint8_t)(i * 7);
	n = 10 + 65536;
	assert_int_equal(feed(WS_ROLE_CLIENT, MAX_MSG, frames, n, 0, r, 2), 1);
	assert_int_equal(r[0].kind, WS_EV_MESSAGE);
	assert_int_equal(r[0].len, 65536);
	assert_int_equal(r[0].hash, fnv((sip_str){(char *)frames + 10, 65536}));
	memcpy(frames, hdr64, sizeof(hdr64));
	assert_int_equal(feed(WS_ROLE_CLIENT, MAX_MSG, frames, n, 1000, r, 2),
			 1);
	assert_int_equal(r[0].len, 65536);
	/* one byte over the bound is refused from the header alone */
	assert_int_equal(feed(WS_ROLE_CLIENT, 65535, frames, 10, 0, r, 2), 1);
	assert_int_equal(r[0].kind, WS_EV_ERROR);
	assert_int_equal(r[0].code, WS_CLOSE_TOO_BIG);
}

struct err_case {
	enum ws_role role;
	uint8_t bytes[16];
	size_t len;
	unsigned code;
	const char *reason;
};

static void test_decoder_errors(void **state)
{
	(void)state;
	static const struct err_case cases[] = {
		/* RSV1, RSV2, RSV3 */
		{WS_ROLE_CLIENT, {0xc1, 0x00}, 2, 1002, "Reserved bits set"},
		{WS_ROLE_CLIENT, {0xa1, 0x00}, 2, 1002, "Reserved bits set"},
		{WS_ROLE_CLIENT, {0x91, 0x00}, 2, 1002, "Reserved bits set"},
		/* reserved opcodes */
		{WS_ROLE_CLIENT, {0x83, 0x00}, 2, 1002, "Reserved opcode"},
		{WS_ROLE_CLIENT, {0x87, 0x00}, 2, 1002, "Reserved opcode"},
		{WS_ROLE_CLIENT, {0x8b, 0x00}, 2, 1002, "Reserved opcode"},
		{WS_ROLE_CLIENT, {0x8f, 0x00}, 2, 1002, "Reserved opcode"},
		/* control frames: fragmented, too long */
		{WS_ROLE_CLIENT,
		 {0x09, 0x00},
		 2,
		 1002,
		 "Fragmented control frame"},
		{WS_ROLE_CLIENT,
		 {0x89, 0x7e, 0x00, 0x7e},
		 4,
		 1002,
		 "Control frame too long"},
		/* masking by role */
		{WS_ROLE_SERVER,
		 {0x81, 0x01, 'a'},
		 3,
		 1002,
		 "Unmasked client frame"},
		{WS_ROLE_CLIENT,
		 {0x81, 0x81, 1, 2, 3, 4, 'a'},
		 7,
		 1002,
		 "Masked server frame"},
		/* continuation without a start, start inside a message */
		{WS_ROLE_CLIENT,
		 {0x80, 0x01, 'a'},
		 3,
		 1002,
		 "Unexpected continuation"},
		{WS_ROLE_CLIENT,
		 {0x01, 0x01, 'a', 0x81, 0x01, 'b'},
		 6,
		 1002,
		 "Continuation expected"},
		{WS_ROLE_CLIENT,
		 {0x02, 0x01, 'a', 0x02, 0x01, 'b'},
		 6,
		 1002,
		 "Continuation expected"},
		/* lengths not in their shortest form, 64-bit MSB */
		{WS_ROLE_CLIENT,
		 {0x82, 0x7e, 0x00, 0x7d},
		 4,
		 1002,
		 "Length not in shortest form"},
		{WS_ROLE_CLIENT,
		 {0x82, 0x7f, 0, 0, 0, 0, 0, 0, 0xff, 0xff},
		 10,
		 1002,
		 "Length not in shortest form"},
		{WS_ROLE_CLIENT,
		 {0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0},
		 10,
		 1002,
		 "Length too large"},
		/* close payloads */
		{WS_ROLE_CLIENT,
		 {0x88, 0x01, 0x03},
		 3,
		 1002,
		 "Truncated close code"},
		{WS_ROLE_CLIENT,
		 {0x88, 0x02, 0x03, 0xed},
		 4,
		 1002,
		 "Invalid close code"}, /* 1005 */
		{WS_ROLE_CLIENT,
		 {0x88, 0x02, 0x03, 0xee},
		 4,
		 1002,
		 "Invalid close code"}, /* 1006 */
		{WS_ROLE_CLIENT,
		 {0x88, 0x02, 0x03, 0xe7},
		 4,
		 1002,
		 "Invalid close code"}, /* 999 */
		{WS_ROLE_CLIENT,
		 {0x88, 0x02, 0x03, 0xf7},
		 4,
		 1002,
		 "Invalid close code"}, /* 1015 */
		{WS_ROLE_CLIENT,
		 {0x88, 0x02, 0x13, 0x88},
		 4,
		 1002,
		 "Invalid close code"}, /* 5000 */
		{WS_ROLE_CLIENT,
		 {0x88, 0x04, 0x03, 0xe8, 0xc0, 0xaf},
		 6,
		 1007,
		 "Close reason not UTF-8"},
		/* UTF-8 */
		{WS_ROLE_CLIENT,
		 {0x81, 0x02, 0xc0, 0xaf},
		 4,
		 1007,
		 "Text not UTF-8"}, /* overlong */
		{WS_ROLE_CLIENT,
		 {0x81, 0x03, 0xed, 0xa0, 0x80},
		 5,
		 1007,
		 "Text not UTF-8"}, /* surrogate */
		{WS_ROLE_CLIENT,
		 {0x81, 0x04, 0xf4, 0x90, 0x80, 0x80},
		 6,
		 1007,
		 "Text not UTF-8"}, /* above U+10FFFF */
		{WS_ROLE_CLIENT,
		 {0x81, 0x02, 'a', 0xe2},
		 4,
		 1007,
		 "Text not UTF-8"}, /* truncated */
		{WS_ROLE_CLIENT,
		 {0x01, 0x01, 0xff},
		 3,
		 1007,
		 "Text not UTF-8"}, /* caught in the first fragment */
		{WS_ROLE_CLIENT,
		 {0x01, 0x01, 0xe2, 0x80, 0x01, 0x82},
		 6,
		 1007,
		 "Text not UTF-8"}, /* truncated at the last fragment */
	};
	struct rec r[2];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = feed_all_ways(cases[i].role, MAX_MSG, cases[i].bytes,
					 cases[i].len, r, 2);
		if (n != 1 || r[0].kind != WS_EV_ERROR)
			fail_msg("case %zu: no error", i);
		assert_int_equal(r[0].code, cases[i].code);
		assert_string_equal(r[0].reason, cases[i].reason);
	}
}

static void test_decoder_too_big(void **state)
{
	(void)state;
	static const uint8_t single[] = {0x82, 0x05, 1, 2, 3, 4, 5};
	static const uint8_t frags[] = {0x02, 0x03, 1, 2, 3, 0x80, 0x02, 4, 5};
	struct rec r[2];

	assert_int_equal(
		feed_all_ways(WS_ROLE_CLIENT, 5, single, sizeof(single), r, 2),
		1);
	assert_int_equal(r[0].kind, WS_EV_MESSAGE);
	assert_int_equal(
		feed_all_ways(WS_ROLE_CLIENT, 4, single, sizeof(single), r, 2),
		1);
	assert_int_equal(r[0].kind, WS_EV_ERROR);
	assert_int_equal(r[0].code, WS_CLOSE_TOO_BIG);

	assert_int_equal(
		feed_all_ways(WS_ROLE_CLIENT, 5, frags, sizeof(frags), r, 2),
		1);
	assert_int_equal(r[0].kind, WS_EV_MESSAGE);
	assert_int_equal(r[0].len, 5);
	assert_int_equal(
		feed_all_ways(WS_ROLE_CLIENT, 4, frags, sizeof(frags), r, 2),
		1);
	assert_int_equal(r[0].kind, WS_EV_ERROR);
	assert_int_equal(r[0].code, WS_CLOSE_TOO_BIG);
	assert_string_equal(r[0].reason, "Message too big");

	/* no reassembly buffer: fragmented messages are refused */
	struct ws_decoder d;
	struct ws_event ev;
	size_t used;
	uint8_t copy[sizeof(frags)];

	memcpy(copy, frags, sizeof(frags));
	ws_decoder_init(&d, WS_ROLE_CLIENT, NULL, 100);
	assert_int_equal(ws_decode(&d, copy, sizeof(copy), &used, &ev),
			 WS_EV_ERROR);
	assert_int_equal(ev.code, WS_CLOSE_TOO_BIG);
}

static void test_decoder_close(void **state)
{
	(void)state;
	static const uint8_t with_reason[] = {0x88, 0x05, 0x03, 0xe8,
					      'b',  'y',  'e'};
	static const uint8_t empty[] = {0x88, 0x00};
	static const uint8_t masked_close[] = {
		0x88, 0x82, 0x11, 0x22, 0x33, 0x44, 0x03 ^ 0x11, 0xe9 ^ 0x22};
	/* a message, then close: frames after the close are not read */
	static const uint8_t then_more[] = {0x81, 0x01, 'x',  0x88,
					    0x00, 0x81, 0x01, 'y'};
	struct rec r[4];

	assert_int_equal(feed_all_ways(WS_ROLE_CLIENT, MAX_MSG, with_reason,
				       sizeof(with_reason), r, 4),
			 1);
	assert_int_equal(r[0].kind, WS_EV_CLOSE);
	assert_int_equal(r[0].code, 1000);
	assert_string_equal(r[0].head, "bye");

	assert_int_equal(feed_all_ways(WS_ROLE_CLIENT, MAX_MSG, empty,
				       sizeof(empty), r, 4),
			 1);
	assert_int_equal(r[0].kind, WS_EV_CLOSE);
	assert_int_equal(r[0].code, WS_CLOSE_NO_STATUS);
	assert_int_equal(r[0].len, 0);

	assert_int_equal(feed_all_ways(WS_ROLE_SERVER, MAX_MSG, masked_close,
				       sizeof(masked_close), r, 4),
			 1);
	assert_int_equal(r[0].code, 1001);

	assert_int_equal(feed_all_ways(WS_ROLE_CLIENT, MAX_MSG, then_more,
				       sizeof(then_more), r, 4),
			 2);
	assert_int_equal(r[0].kind, WS_EV_MESSAGE);
	assert_int_equal(r[1].kind, WS_EV_CLOSE);
}

static void test_decoder_interleaved_control(void **state)
{
	(void)state;
	/* "Hel" + ping "p" + pong "" + "lo" + binary "\0\1" in 3 pieces,
	 * then an empty text message and a close */
	static const uint8_t in[] = {0x01, 0x03, 'H',  'e',  'l',  0x89, 0x01,
				     'p',  0x8a, 0x00, 0x80, 0x02, 'l',	 'o',
				     0x02, 0x01, 0x00, 0x00, 0x00, 0x80, 0x01,
				     0x01, 0x81, 0x00, 0x88, 0x02, 0x03, 0xe8};
	struct rec r[8];

	assert_int_equal(
		feed_all_ways(WS_ROLE_CLIENT, MAX_MSG, in, sizeof(in), r, 8),
		6);
	assert_int_equal(r[0].kind, WS_EV_PING);
	assert_string_equal(r[0].head, "p");
	assert_int_equal(r[1].kind, WS_EV_PONG);
	assert_int_equal(r[1].len, 0);
	assert_int_equal(r[2].kind, WS_EV_MESSAGE);
	assert_int_equal(r[2].opcode, WS_OP_TEXT);
	assert_string_equal(r[2].head, "Hello");
	assert_int_equal(r[3].kind, WS_EV_MESSAGE);
	assert_int_equal(r[3].opcode, WS_OP_BINARY);
	assert_int_equal(r[3].len, 2);
	assert_int_equal(r[3].head[1], 1);
	assert_int_equal(r[4].kind, WS_EV_MESSAGE);
	assert_int_equal(r[4].len, 0);
	assert_int_equal(r[5].kind, WS_EV_CLOSE);
	assert_int_equal(r[5].code, 1000);
}

static void test_decoder_need_more_consumes_fragments(void **state)
{
	(void)state;
	uint8_t in[] = {0x01, 0x02, 'a', 'b', 0x80, 0x01};
	struct ws_decoder d;
	struct ws_event ev;
	size_t used;

	ws_decoder_init(&d, WS_ROLE_CLIENT, mbuf, MAX_MSG);
	assert_int_equal(ws_decode(&d, in, sizeof(in), &used, &ev),
			 WS_EV_NEED_MORE);
	assert_int_equal(used, 4); /* the first fragment was absorbed */
	assert_true(d.in_message);
	assert_int_equal(ws_decode(NULL, in, 1, &used, &ev), -EINVAL);
}

static void test_utf8(void **state)
{
	(void)state;
	assert_true(ws_utf8_valid("", 0));
	assert_true(ws_utf8_valid("plain ascii", 11));
	assert_true(ws_utf8_valid("\xc3\xa9t\xc3\xa9", 6));
	assert_true(ws_utf8_valid("\xe2\x82\xac", 3));
	assert_true(ws_utf8_valid("\xf0\x9f\x98\x80", 4));
	assert_true(ws_utf8_valid("\xf4\x8f\xbf\xbf", 4));  /* U+10FFFF */
	assert_true(ws_utf8_valid("\xed\x9f\xbf", 3));	    /* U+D7FF */
	assert_true(ws_utf8_valid("\xee\x80\x80", 3));	    /* U+E000 */
	assert_false(ws_utf8_valid("\xc1\xbf", 2));	    /* overlong */
	assert_false(ws_utf8_valid("\xe0\x9f\xbf", 3));	    /* overlong */
	assert_false(ws_utf8_valid("\xf0\x8f\xbf\xbf", 4)); /* overlong */
	assert_false(ws_utf8_valid("\xed\xbf\xbf", 3));	    /* surrogate */
	assert_false(ws_utf8_valid("\xf5\x80\x80\x80", 4));
	assert_false(ws_utf8_valid("\x80", 1));
	assert_false(ws_utf8_valid("\xe2\x82", 2));
	assert_false(ws_utf8_valid("\xe2\x28\xa1", 3));

	struct ws_utf8 u = {0, 0, 0};
	assert_true(ws_utf8_feed(&u, (const uint8_t *)"\xf0\x9f", 2));
	assert_int_equal(u.need, 2);
	assert_true(ws_utf8_feed(&u, (const uint8_t *)"\x98\x80", 2));
	assert_int_equal(u.need, 0);
}

/* ------------------------------------------------------------------------ */
/* Encoder and round trips                                                  */
/* ------------------------------------------------------------------------ */

static void test_encode_rfc6455_examples(void **state)
{
	(void)state;
	static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
	static const uint8_t unmasked[] = {0x81, 0x05, 0x48, 0x65,
					   0x6c, 0x6c, 0x6f};
	static const uint8_t masked[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
					 0x7f, 0x9f, 0x4d, 0x51, 0x58};
	static const uint8_t h256[] = {0x82, 0x7e, 0x01, 0x00};
	static const uint8_t h64k[] = {0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0};
	uint8_t out[64];

	assert_int_equal(
		ws_encode(out, sizeof(out), WS_OP_TEXT, true, "Hello", 5, NULL),
		7);
	assert_memory_equal(out, unmasked, 7);
	assert_int_equal(
		ws_encode(out, sizeof(out), WS_OP_TEXT, true, "Hello", 5, key),
		11);
	assert_memory_equal(out, masked, 11);
	assert_int_equal(
		ws_encode(out, sizeof(out), WS_OP_PING, true, "Hello", 5, NULL),
		7);
	assert_int_equal(out[0], 0x89);
	assert_int_equal(ws_encode_header(out, sizeof(out), WS_OP_BINARY, true,
					  256, NULL),
			 4);
	assert_memory_equal(out, h256, 4);
	assert_int_equal(ws_encode_header(out, sizeof(out), WS_OP_BINARY, true,
					  65536, NULL),
			 10);
	assert_memory_equal(out, h64k, 10);
	assert_int_equal(ws_encode_header(out, sizeof(out), WS_OP_BINARY, true,
					  125, key),
			 6);
	assert_int_equal(ws_encode_header(out, sizeof(out), WS_OP_BINARY, true,
					  65535, key),
			 8);
	assert_int_equal(ws_encode_header(out, sizeof(out), WS_OP_BINARY, true,
					  65536, key),
			 14);
}

static void test_encode_errors(void **state)
{
	(void)state;
	uint8_t out[256];
	static const uint8_t big[126];

	assert_int_equal(
		ws_encode(out, sizeof(out), WS_OP_PING, true, big, 126, NULL),
		-EINVAL);
	assert_int_equal(
		ws_encode(out, sizeof(out), WS_OP_PONG, false, big, 1, NULL),
		-EINVAL);
	assert_int_equal(ws_encode(out, sizeof(out), (enum ws_opcode)3, true,
				   big, 1, NULL),
			 -EINVAL);
	assert_int_equal(ws_encode(out, 6, WS_OP_TEXT, true, "Hello", 5, NULL),
			 -ENOSPC);
	assert_int_equal(ws_encode(out, 1, WS_OP_TEXT, true, "Hello", 5, NULL),
			 -ENOSPC);
	assert_int_equal(
		ws_encode(out, sizeof(out), WS_OP_TEXT, true, NULL, 5, NULL),
		-EINVAL);
	assert_int_equal(ws_encode_close(out, sizeof(out), 1005, S("x"), NULL),
			 -EINVAL);
	assert_int_equal(ws_encode_close(out, sizeof(out), 1006, S(""), NULL),
			 -EINVAL);
	assert_int_equal(ws_encode_close(out, sizeof(out), 1000,
					 (sip_str){(const char *)big, 124},
					 NULL),
			 -EINVAL);
	assert_int_equal(ws_encode_close(out, sizeof(out), 0, S(""), NULL), 2);
	assert_int_equal(out[0], 0x88);
	assert_int_equal(out[1], 0x00);
}

/* Encode @p n bytes as one message in @p nfrag fragments for @p sender,
 * feed them to a decoder of the other role with a ping in the middle. */
static void round_trip(enum ws_role sender, enum ws_opcode op,
		       const uint8_t *msg, size_t n, size_t nfrag)
{
	static const uint8_t key[4] = {0xa5, 0x01, 0xff, 0x7e};
	const uint8_t *mask = sender == WS_ROLE_CLIENT ? key : NULL;
	enum ws_role receiver =
		sender == WS_ROLE_CLIENT ? WS_ROLE_SERVER : WS_ROLE_CLIENT;
	size_t len = 0, off = 0;
	struct rec r[8];
	int w;

	for (size_t f = 0; f < nfrag; f++) {
		size_t part = f + 1 == nfrag ? n - off : n / nfrag;
		w = ws_encode(frames + len, sizeof(frames) - len,
			      f == 0 ? op : WS_OP_CONT, f + 1 == nfrag,
			      msg + off, part, mask);
		assert_true(w > 0);
		len += (size_t)w;
		off += part;
		if (f == 0 && nfrag > 1) {
			w = ws_encode(frames + len, sizeof(frames) - len,
				      WS_OP_PING, true, "hb", 2, mask);
			assert_int_equal(w, mask ? 8 : 4);
			len += (size_t)w;
		}
	}
	w = ws_encode_close(frames + len, sizeof(frames) - len, 1000, S("done"),
			    mask);
	assert_true(w > 0);
	len += (size_t)w;

	size_t nev = feed_all_ways(receiver, MAX_MSG, frames, len, r, 8);
	size_t i = 0;
	assert_int_equal(nev, nfrag > 1 ? 3 : 2);
	if (nfrag > 1) {
		assert_int_equal(r[i].kind, WS_EV_PING);
		assert_string_equal(r[i].head, "hb");
		i++;
	}
	assert_int_equal(r[i].kind, WS_EV_MESSAGE);
	assert_int_equal(r[i].opcode, op);
	assert_int_equal(r[i].len, n);
	assert_int_equal(r[i].hash, fnv((sip_str){(const char *)msg, n}));
	i++;
	assert_int_equal(r[i].kind, WS_EV_CLOSE);
	assert_int_equal(r[i].code, 1000);
	assert_string_equal(r[i].head, "done");
}

static void test_round_trips(void **state)
{
	(void)state;
	static uint8_t bin[65536 + 10];
	static char text[70000];
	static const char unit[] = "SIP/2.0 \xc3\xa9\r\n";
	const size_t ul = sizeof(unit) - 1;
	static const size_t sizes[] = {0,   1,	   125,	  126,	127,
				       200, 65535, 65536, 65537};

	for (size_t i = 0; i < sizeof(bin); i++)
		bin[i] = (uint8_t)(i * 31 + (i >> 8));
	for (size_t i = 0; i < sizeof(text); i++)
		text[i] = unit[i % ul];
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		size_t n = sizes[s];
		for (int role = 0; role < 2; role++) {
			round_trip((enum ws_role)role, WS_OP_BINARY, bin, n, 1);
			round_trip((enum ws_role)role, WS_OP_BINARY, bin, n, 3);
			/* a whole number of UTF-8 units */
			size_t tn = n / ul * ul;
			round_trip((enum ws_role)role, WS_OP_TEXT,
				   (const uint8_t *)text, tn, 1);
			/* fragments split the 2-byte sequences */
			round_trip((enum ws_role)role, WS_OP_TEXT,
				   (const uint8_t *)text, tn, 7);
		}
	}
}

static void test_mask_in_pieces(void **state)
{
	(void)state;
	static const uint8_t key[4] = {1, 2, 3, 4};
	uint8_t a[10], b[10];

	for (int i = 0; i < 10; i++)
		a[i] = b[i] = (uint8_t)(i * 17);
	ws_mask(a, 10, key, 0);
	ws_mask(b, 3, key, 0);
	ws_mask(b + 3, 7, key, 3);
	assert_memory_equal(a, b, 10);
}

/* ------------------------------------------------------------------------ */
/* SIP over WebSocket end to end                                            */
/* ------------------------------------------------------------------------ */

static void test_sip_over_ws(void **state)
{
	(void)state;
	/* a request without Content-Length: the WS message frames it */
	static const char sip[] =
		"OPTIONS sip:bob@example.com SIP/2.0\r\n"
		"Via: SIP/2.0/WSS "
		"df7jal23ls0d.invalid;branch=z9hG4bK56sdasks\r\n"
		"Max-Forwards: 70\r\n"
		"To: <sip:bob@example.com>\r\n"
		"From: <sip:alice@example.com>;tag=hy1cl\r\n"
		"Call-ID: ws1@example.com\r\n"
		"CSeq: 1 OPTIONS\r\n"
		"\r\n";
	static const uint8_t key[4] = {9, 8, 7, 6};
	static struct sip_msg msg;
	struct ws_handshake c, s;
	struct ws_decoder d;
	struct ws_event ev;
	struct sip_error err;
	char req[512], resp[512];
	size_t used;
	int n, rn, fn;

	/* handshake: client request, server answer, client check */
	ws_handshake_init(&c, 0);
	ws_handshake_init(&s, 0);
	n = ws_client_request(&c, sample_nonce, "proxy.example.com", "/", NULL,
			      req, sizeof(req));
	assert_true(n > 0);
	/* the client's first frame right behind the request */
	fn = ws_encode((uint8_t *)req + n, sizeof(req) - (size_t)n, WS_OP_TEXT,
		       true, sip, sizeof(sip) - 1, key);
	assert_true(fn > 0);
	assert_int_equal(ws_server_handshake(&s, req, (size_t)(n + fn)),
			 WS_HS_ACCEPT);
	rn = ws_server_response(&s, resp, sizeof(resp));
	assert_true(rn > 0);
	assert_int_equal(ws_client_handshake(&c, resp, (size_t)rn),
			 WS_HS_ACCEPT);

	/* the server decodes what followed the request */
	ws_decoder_init(&d, WS_ROLE_SERVER, mbuf, MAX_MSG);
	assert_int_equal(ws_decode(&d, (uint8_t *)req + s.len,
				   (size_t)(n + fn) - s.len, &used, &ev),
			 WS_EV_MESSAGE);
	assert_int_equal(used, (size_t)fn);
	assert_int_equal(ev.opcode, WS_OP_TEXT);
	assert_int_equal(sip_msg_parse(&msg, ev.data.p, ev.data.len,
				       SIP_FRAMING_DATAGRAM, NULL, &err),
			 0);
	assert_true(msg.is_request);
	assert_int_equal(msg.method_id, SIP_METHOD_OPTIONS);
	assert_int_equal(sip_msg_check(&msg, &err), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_base64_vectors),
		cmocka_unit_test(test_accept_key_rfc6455),
		cmocka_unit_test(test_server_rfc7118_example),
		cmocka_unit_test(test_server_variants_accepted),
		cmocka_unit_test(test_server_incremental),
		cmocka_unit_test(test_server_rejections),
		cmocka_unit_test(test_server_oversize),
		cmocka_unit_test(test_server_response_needs_verdict),
		cmocka_unit_test(test_client_request),
		cmocka_unit_test(test_client_validates_101),
		cmocka_unit_test(test_client_rejections),
		cmocka_unit_test(test_rfc6455_examples),
		cmocka_unit_test(test_rfc6455_lengths),
		cmocka_unit_test(test_decoder_errors),
		cmocka_unit_test(test_decoder_too_big),
		cmocka_unit_test(test_decoder_close),
		cmocka_unit_test(test_decoder_interleaved_control),
		cmocka_unit_test(test_decoder_need_more_consumes_fragments),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_encode_rfc6455_examples),
		cmocka_unit_test(test_encode_errors),
		cmocka_unit_test(test_round_trips),
		cmocka_unit_test(test_mask_in_pieces),
		cmocka_unit_test(test_sip_over_ws),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
