/**
 * @file fuzz_ws.c  libFuzzer target: the WebSocket handshake parsers of
 * both roles and the frame decoder of both roles over arbitrary input (fed
 * whole and in pieces, which must agree), and the encoder/decoder round
 * trip of the input as a message.
 */
#include "ws/ws.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_IN 65536
#define MAX_MSG 4096
#define MAX_EVENTS 256

static uint8_t rbuf[MAX_IN + 64];
static uint8_t mbuf[MAX_MSG];
static uint8_t frames[4 * MAX_IN];

/* The handshake verdict must not depend on how the bytes arrived. */
static void handshake(bool server, const char *p, size_t size, size_t step)
{
	static const uint8_t nonce[WS_NONCE_LEN] = "the sample nonce";
	struct ws_handshake whole, parts;
	char out[1024];
	int a, b = WS_HS_NEED_MORE;

	ws_handshake_init(&whole, 1024);
	ws_handshake_init(&parts, 1024);
	if (!server) {
		if (ws_client_request(&whole, nonce, "h", "/", NULL, out,
				      sizeof(out)) <= 0 ||
		    ws_client_request(&parts, nonce, "h", "/", NULL, out,
				      sizeof(out)) <= 0)
			abort();
	}
	a = server ? ws_server_handshake(&whole, p, size)
		   : ws_client_handshake(&whole, p, size);
	for (size_t n = 0; b == WS_HS_NEED_MORE; n += step) {
		if (n > size)
			n = size;
		b = server ? ws_server_handshake(&parts, p, n)
			   : ws_client_handshake(&parts, p, n);
		if (n == size)
			break;
	}
	if (a != b || whole.status != parts.status ||
	    (a != WS_HS_NEED_MORE && whole.reason != parts.reason))
		abort();
	if (a == WS_HS_ACCEPT &&
	    (whole.len != parts.len || whole.len > size || whole.len < 4 ||
	     memcmp(p + whole.len - 4, "\r\n\r\n", 4) != 0))
		abort();
	if (server && a != WS_HS_NEED_MORE) {
		int n = ws_server_response(&whole, out, sizeof(out));
		if (n <= 0)
			abort();
		if (a == WS_HS_ACCEPT &&
		    (whole.host.p < p ||
		     whole.host.p + whole.host.len > p + size))
			abort();
	}
}

/** What an event said, to compare two runs. */
struct rec {
	int kind;
	int opcode;
	unsigned code;
	size_t len;
	uint32_t hash;
};

static uint32_t fnv(sip_str s)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < s.len; i++)
		h = (h ^ (uint8_t)s.p[i]) * 16777619u;
	return h;
}

/* Decode @p in fed @p chunk bytes at a time (0: whole), as a transport
 * does. @return the number of events. */
static size_t decode(enum ws_role role, const uint8_t *in, size_t n,
		     size_t chunk, struct rec *out)
{
	struct ws_decoder d;
	size_t have = 0, fed = 0, nev = 0;

	ws_decoder_init(&d, role, mbuf, sizeof(mbuf));
	for (;;) {
		size_t add = chunk && chunk < n - fed ? chunk : n - fed;

		memcpy(rbuf + have, in + fed, add);
		have += add;
		fed += add;
		for (;;) {
			struct ws_event ev;
			size_t used;
			int rc = ws_decode(&d, rbuf, have, &used, &ev);
			const char *lo = (const char *)rbuf;
			const char *mlo = (const char *)mbuf;

			if (rc < 0 || rc != (int)ev.kind || used > have)
				abort();
			if (ev.data.len &&
			    !((ev.data.p >= lo &&
			       ev.data.p + ev.data.len <= lo + have) ||
			      (ev.data.p >= mlo &&
			       ev.data.p + ev.data.len <= mlo + sizeof(mbuf))))
				abort();
			if (rc == WS_EV_MESSAGE && ev.opcode == WS_OP_TEXT &&
			    !ws_utf8_valid(ev.data.p, ev.data.len))
				abort();
			if ((rc == WS_EV_PING || rc == WS_EV_PONG) &&
			    ev.data.len > WS_MAX_CONTROL)
				abort();
			if (rc != WS_EV_NEED_MORE) {
				if (nev == MAX_EVENTS)
					return nev;
				out[nev].kind = rc;
				out[nev].opcode = (int)ev.opcode;
				out[nev].code = ev.code;
				out[nev].len = ev.data.len;
				out[nev].hash = fnv(ev.data);
				nev++;
			}
			if (used) {
				memmove(rbuf, rbuf + used, have - used);
				have -= used;
			}
			if (rc == WS_EV_CLOSE || rc == WS_EV_ERROR)
				return nev;
			if (rc == WS_EV_NEED_MORE)
				break;
		}
		if (fed == n)
			return nev;
	}
}

static void decode_both_ways(enum ws_role role, const uint8_t *in, size_t n,
			     size_t chunk)
{
	static struct rec a[MAX_EVENTS], b[MAX_EVENTS];
	size_t na = decode(role, in, n, 0, a);
	size_t nb = decode(role, in, n, chunk, b);

	if (na != nb)
		abort();
	for (size_t i = 0; i < na; i++) {
		if (a[i].kind != b[i].kind || a[i].opcode != b[i].opcode ||
		    a[i].code != b[i].code || a[i].len != b[i].len ||
		    a[i].hash != b[i].hash)
			abort();
	}
}

/* Encode @p p as one message in @p nfrag fragments with a ping between the
 * first two, then a close; the other role must decode exactly that. */
static void round_trip(enum ws_role sender, enum ws_opcode op, const uint8_t *p,
		       size_t n, size_t nfrag, const uint8_t *mask)
{
	static struct rec r[MAX_EVENTS];
	size_t len = 0, off = 0, nev, i = 0;
	int w;

	if (sender == WS_ROLE_SERVER)
		mask = NULL;
	for (size_t f = 0; f < nfrag; f++) {
		size_t part = f + 1 == nfrag ? n - off : n / nfrag;
		w = ws_encode(frames + len, sizeof(frames) - len,
			      f == 0 ? op : WS_OP_CONT, f + 1 == nfrag, p + off,
			      part, mask);
		if (w <= 0)
			abort();
		len += (size_t)w;
		off += part;
		if (f == 0 && nfrag > 1) {
			w = ws_encode(frames + len, sizeof(frames) - len,
				      WS_OP_PING, true, p, n < 125 ? n : 125,
				      mask);
			if (w <= 0)
				abort();
			len += (size_t)w;
		}
	}
	w = ws_encode_close(frames + len, sizeof(frames) - len, 1000,
			    SIP_STR_LIT("bye"), mask);
	if (w <= 0)
		abort();
	len += (size_t)w;

	nev = decode(sender == WS_ROLE_CLIENT ? WS_ROLE_SERVER : WS_ROLE_CLIENT,
		     frames, len, 0, r);
	if (nev != (nfrag > 1 ? 3u : 2u))
		abort();
	if (nfrag > 1 && (r[i++].kind != WS_EV_PING))
		abort();
	if (r[i].kind != WS_EV_MESSAGE || r[i].opcode != (int)op ||
	    r[i].len != n || r[i].hash != fnv((sip_str){(const char *)p, n}))
		abort();
	i++;
	if (r[i].kind != WS_EV_CLOSE || r[i].code != 1000)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *p;
	size_t n, chunk, nfrag;
	uint8_t mask[4];

	if (size < 5 || size > MAX_IN)
		return 0;
	/* a control prefix: chunk size, fragment count, masking key */
	chunk = (size_t)(data[0] % 17) + 1;
	nfrag = (size_t)(data[0] >> 5) + 1;
	memcpy(mask, data + 1, 4);
	p = data + 5;
	n = size - 5;

	handshake(true, (const char *)p, n, chunk);
	handshake(false, (const char *)p, n, chunk);
	decode_both_ways(WS_ROLE_SERVER, p, n, chunk);
	decode_both_ways(WS_ROLE_CLIENT, p, n, chunk);
	if (n <= MAX_MSG) {
		for (int role = 0; role < 2; role++) {
			round_trip((enum ws_role)role, WS_OP_BINARY, p, n,
				   nfrag, mask);
			if (ws_utf8_valid(p, n))
				round_trip((enum ws_role)role, WS_OP_TEXT, p, n,
					   nfrag, mask);
		}
	}
	return 0;
}
