/**
 * @file ws.h  SIP over WebSocket (RFC 7118 on RFC 6455): the opening
 * handshake for both roles, the frame decoder and the frame encoder.
 *
 * Sans-I/O. The handshake functions take the connection's receive buffer
 * (which only grows at the end between calls) and answer "need more",
 * "accept" or "reject"; the responses and requests they produce are
 * written into caller memory. The decoder takes the unconsumed bytes of the
 * receive buffer and returns one event at a time; the encoder writes frames
 * into caller memory. Nothing here allocates, and no state is global.
 *
 * One WebSocket message carries exactly one SIP message (RFC 7118 §5), so
 * a WS_EV_MESSAGE payload goes to sip_msg_parse() with
 * SIP_FRAMING_DATAGRAM: Content-Length is optional and the message ends
 * with the WebSocket message. Text and binary messages are both allowed.
 *
 * Errors are negative errno values. Protocol failures of the peer are not
 * errors of the call: they are reported as a rejected handshake (with the
 * HTTP status to answer) or as a WS_EV_ERROR event (with the close code to
 * send before closing the connection).
 */
#ifndef SIPD_WS_H
#define SIPD_WS_H

#include "base/base.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------------------ */
/* The accept key (base64: sip_base64_*() in base.h) */
/* ------------------------------------------------------------------------ */

/** Length of the base64 text of @p n bytes (with padding, without NUL). */
#define WS_BASE64_LEN(n) ((((size_t)(n) + 2) / 3) * 4)
/** Bytes of random data in a Sec-WebSocket-Key (RFC 6455 §4.1). */
#define WS_NONCE_LEN 16
/** Length of a Sec-WebSocket-Key: base64 of 16 bytes. */
#define WS_KEY_LEN WS_BASE64_LEN(WS_NONCE_LEN)
/** Length of a Sec-WebSocket-Accept: base64 of a SHA-1 digest. */
#define WS_ACCEPT_LEN WS_BASE64_LEN(20)

/**
 * Sec-WebSocket-Accept for @p key: base64(SHA-1(key + the RFC 6455 GUID)),
 * NUL-terminated into @p out.
 * @return 0, -EINVAL when @p key is longer than 64 bytes, -EIO when the
 *         digest fails.
 */
int ws_accept_key(sip_str key, char out[WS_ACCEPT_LEN + 1]);

/* ------------------------------------------------------------------------ */
/* Opening handshake (RFC 6455 §4, RFC 7118 §4)                             */
/* ------------------------------------------------------------------------ */

/** Default bound on a handshake's header block, bytes. */
#define WS_HANDSHAKE_MAX_DEFAULT 8192

enum ws_hs_result {
	WS_HS_NEED_MORE = 0, /**< the header block has not ended yet       */
	WS_HS_ACCEPT = 1,    /**< valid: the connection becomes WebSocket  */
	WS_HS_REJECT = 2,    /**< invalid: see status and reason           */
};

/**
 * State and outcome of one opening handshake, either role. Plain data; the
 * slices point into the buffer given to the parse call and are valid while
 * it is.
 */
struct ws_handshake {
	size_t max_size; /**< bound on the header block, bytes          */
	size_t scan;	 /**< bytes already searched for the block end  */
	size_t len; /**< header block length incl. the empty line (ACCEPT) */
	/**
	 * Server: the status to answer (101, or 400, 426 for a version other
	 * than 13, 431 for a header block over max_size). Client: the status
	 * received (0 when the status line is malformed or too long).
	 */
	unsigned status;
	const char *reason; /**< REJECT: the defect, a static string       */
	sip_str target;	    /**< server: the request-target, e.g. "/"      */
	sip_str host;	    /**< server: the Host value                    */
	sip_str origin;	    /**< server: the Origin value, empty if absent */
	/** Client: the key sent. Server: the key received (when valid). */
	char key[WS_KEY_LEN + 1];
	/** Server: the accept value to send. Client: the value expected. */
	char accept[WS_ACCEPT_LEN + 1];
};

/** Start a handshake; @p max_size 0 means WS_HANDSHAKE_MAX_DEFAULT. */
void ws_handshake_init(struct ws_handshake *h, size_t max_size);

/**
 * Server: parse the client's Upgrade request at the start of @p buf (the
 * whole receive buffer, called again each time it grows). Checks GET,
 * HTTP/1.1, header syntax, one Host, Upgrade: websocket, Connection:
 * Upgrade (token lists, case-insensitive), Sec-WebSocket-Version: 13, one
 * Sec-WebSocket-Key that is base64 of 16 bytes, and "sip" among the
 * Sec-WebSocket-Protocol values (RFC 7118 §4). Extensions are declined.
 *
 * After WS_HS_ACCEPT the caller sends ws_server_response(), consumes
 * h->len bytes and gives the rest of the buffer (frames the client may
 * already have sent) to a WS_ROLE_SERVER decoder. After WS_HS_REJECT it
 * sends ws_server_response() and closes the connection.
 *
 * @return enum ws_hs_result, or -EINVAL for NULL arguments.
 */
int ws_server_handshake(struct ws_handshake *h, const char *buf, size_t len);

/**
 * Server: write the answer to a parsed request into @p out: the 101
 * Switching Protocols with Sec-WebSocket-Accept and
 * Sec-WebSocket-Protocol: sip, or the error response (a text/plain body
 * naming the defect, Connection: close; a 426 also carries
 * Sec-WebSocket-Version: 13).
 * @return the length written (not NUL-terminated), -EINVAL when no
 *         verdict was reached, -ENOSPC when @p cap is too small.
 */
int ws_server_response(const struct ws_handshake *h, char *out, size_t cap);

/**
 * Client: write an Upgrade request for @p target on @p host offering the
 * "sip" subprotocol; the key is the base64 of @p nonce, which the caller
 * draws from a strong random source for each connection. @p origin may be
 * NULL. Remembers the key and the accept value expected in @p h, which
 * must have been initialised with ws_handshake_init().
 * @return the length written, -EINVAL for an empty or unsafe host or
 *         target (CR, LF, SP, control characters), -ENOSPC, -EIO.
 */
int ws_client_request(struct ws_handshake *h, const uint8_t nonce[WS_NONCE_LEN],
		      const char *host, const char *target, const char *origin,
		      char *out, size_t cap);

/**
 * Client: check the server's response at the start of @p buf (called
 * again each time it grows): HTTP/1.1 101, Upgrade: websocket, Connection:
 * Upgrade, the expected Sec-WebSocket-Accept, Sec-WebSocket-Protocol: sip
 * and no Sec-WebSocket-Extensions. After WS_HS_ACCEPT the caller consumes
 * h->len bytes and gives the rest to a WS_ROLE_CLIENT decoder; after
 * WS_HS_REJECT it closes the connection (h->status is what was received).
 * @return enum ws_hs_result, or -EINVAL for NULL arguments.
 */
int ws_client_handshake(struct ws_handshake *h, const char *buf, size_t len);

/* ------------------------------------------------------------------------ */
/* Frames (RFC 6455 §5)                                                     */
/* ------------------------------------------------------------------------ */

/** Which end of the connection we are: it decides the masking rules. */
enum ws_role {
	WS_ROLE_SERVER = 0, /**< receives masked frames, sends unmasked   */
	WS_ROLE_CLIENT = 1, /**< receives unmasked frames, sends masked   */
};

enum ws_opcode {
	WS_OP_CONT = 0x0,
	WS_OP_TEXT = 0x1,
	WS_OP_BINARY = 0x2,
	WS_OP_CLOSE = 0x8,
	WS_OP_PING = 0x9,
	WS_OP_PONG = 0xa,
};

/** Close codes (RFC 6455 §7.4.1) this layer produces or reports. */
#define WS_CLOSE_NORMAL 1000
#define WS_CLOSE_GOING_AWAY 1001
#define WS_CLOSE_PROTOCOL 1002
#define WS_CLOSE_NO_STATUS 1005 /**< received close had no code; never sent */
#define WS_CLOSE_INVALID_DATA 1007
#define WS_CLOSE_TOO_BIG 1009

/** Longest frame header: 2 + 8 (length) + 4 (masking key). */
#define WS_MAX_HEADER 14
/** Longest control frame payload. */
#define WS_MAX_CONTROL 125

/** Incremental UTF-8 validation state (start zeroed). */
struct ws_utf8 {
	uint8_t need; /**< continuation bytes still expected           */
	uint8_t lo;   /**< range of the next continuation byte         */
	uint8_t hi;
};

/**
 * Feed @p len bytes to the validator.
 * @return false as soon as the bytes cannot be part of valid UTF-8 (an
 *         incomplete sequence at the end is not yet a failure).
 */
bool ws_utf8_feed(struct ws_utf8 *u, const uint8_t *p, size_t len);
/** True when @p p is complete, valid UTF-8 (no overlongs, surrogates or
 * code points above U+10FFFF). */
bool ws_utf8_valid(const void *p, size_t len);

enum ws_event_kind {
	WS_EV_NEED_MORE = 0, /**< no complete event in the bytes given      */
	WS_EV_MESSAGE,	     /**< a whole data message                      */
	WS_EV_PING,	     /**< send a pong with the same payload         */
	WS_EV_PONG,	     /**< a pong (answer or unsolicited heartbeat)  */
	WS_EV_CLOSE,	     /**< peer closes: reply with a close, then end */
	WS_EV_ERROR,	     /**< peer broke the protocol: send close(code) */
};

/** One decoder event. */
struct ws_event {
	enum ws_event_kind kind;
	enum ws_opcode opcode; /**< MESSAGE: WS_OP_TEXT or WS_OP_BINARY     */
	/**
	 * MESSAGE: the message; PING/PONG: the payload; CLOSE: the reason.
	 * Points into the caller's buffer or the reassembly buffer, valid
	 * until the next ws_decode() call or until those bytes are dropped.
	 */
	sip_str data;
	/** CLOSE: the code received (WS_CLOSE_NO_STATUS when the frame had
	 * none). ERROR: the code to close the connection with. */
	uint16_t code;
	const char *reason; /**< ERROR: the defect, a static string        */
};

/**
 * Frame decoder state. Plain data: set up with ws_decoder_init(), no
 * teardown. The reassembly buffer is caller memory.
 */
struct ws_decoder {
	enum ws_role role;
	uint8_t *msg_buf;   /**< reassembly of fragmented messages          */
	size_t max_message; /**< bound on a message; msg_buf holds this much */
	size_t msg_len;	    /**< bytes reassembled so far                   */
	bool in_message;    /**< a fragmented message is in progress        */
	bool done;	    /**< CLOSE or ERROR was returned                */
	enum ws_opcode msg_opcode; /**< TEXT or BINARY of that message      */
	struct ws_utf8 utf8; /**< validation of a fragmented text message */
};

/**
 * Start decoding for @p role. @p msg_buf must hold @p max_message bytes:
 * fragments are unmasked into it and a fragmented message is delivered
 * from it. When it is NULL, fragmented messages are refused with 1009.
 */
void ws_decoder_init(struct ws_decoder *d, enum ws_role role, uint8_t *msg_buf,
		     size_t max_message);

/**
 * Decode the next event from @p buf, the unconsumed bytes of the receive
 * buffer. Works on whole frames: a frame is decoded once all of it is in
 * @p buf (so the receive buffer needs max_message + WS_MAX_HEADER bytes),
 * and its payload is unmasked in place. An unfragmented data message is
 * delivered in place; fragments are copied to the reassembly buffer and
 * absorbed without an event. Control frames may come between fragments.
 *
 * After every call, whatever the event, the caller drops *consumed bytes
 * from the front of its buffer (after it is done with ev->data) and must
 * not pass them again: they have been unmasked.
 *
 * Errors of the peer give WS_EV_ERROR with the close code: 1002 for RSV
 * bits, reserved opcodes, a wrong masking for the role, a fragmented or
 * oversized control frame, a stray or missing continuation, a length not
 * in its shortest form, a bad close payload; 1007 for invalid UTF-8 in a
 * text message or close reason; 1009 for a message above max_message.
 * After WS_EV_CLOSE or WS_EV_ERROR the decoder is finished.
 *
 * @return the event kind (>= 0), -EINVAL for NULL arguments, -EPIPE when
 *         the decoder is finished.
 */
int ws_decode(struct ws_decoder *d, uint8_t *buf, size_t len, size_t *consumed,
	      struct ws_event *ev);

/** XOR @p len bytes with @p key, starting at byte @p offset of the
 * payload (so a payload may be masked in pieces). */
void ws_mask(uint8_t *p, size_t len, const uint8_t key[4], size_t offset);

/**
 * Write a frame header: FIN, @p op, the payload length @p len in its
 * shortest form and, when @p mask is not NULL (client role), the masking
 * key. The payload follows (masked with ws_mask() by a client).
 * @return the header length (2..14), -EINVAL for an unknown opcode or a
 *         control frame that is fragmented or above 125 bytes, -ENOSPC.
 */
int ws_encode_header(uint8_t *out, size_t cap, enum ws_opcode op, bool fin,
		     uint64_t len, const uint8_t *mask);

/**
 * Write a whole frame: the header as ws_encode_header() and the payload,
 * masked when @p mask is not NULL (client role: a fresh random key per
 * frame). @p payload may be NULL when @p len is 0. A text payload must be
 * valid UTF-8 (not checked here).
 * @return the frame length, -EINVAL, -ENOSPC, -EMSGSIZE above INT_MAX.
 */
int ws_encode(uint8_t *out, size_t cap, enum ws_opcode op, bool fin,
	      const void *payload, size_t len, const uint8_t *mask);

/**
 * Write a close frame with @p code and @p reason (at most 123 bytes of
 * UTF-8). @p code 0 (or WS_CLOSE_NO_STATUS, to echo a close that had
 * none) writes an empty close; otherwise the code must be one an endpoint
 * may send (1000-1003, 1007-1014, 3000-4999).
 * @return the frame length, -EINVAL, -ENOSPC.
 */
int ws_encode_close(uint8_t *out, size_t cap, uint16_t code, sip_str reason,
		    const uint8_t *mask);

#endif /* SIPD_WS_H */
