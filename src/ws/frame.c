/** @file frame.c  WebSocket framing (RFC 6455 §5): the incremental
 * decoder with reassembly and the §8.1 UTF-8 check, and the encoder. */
#include "ws/ws.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* UTF-8 (RFC 3629 §4)                                                      */
/* ------------------------------------------------------------------------ */

bool ws_utf8_feed(struct ws_utf8 *u, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		uint8_t c = p[i];

		if (u->need) {
			if (c < u->lo || c > u->hi)
				return false;
			u->need--;
			u->lo = 0x80;
			u->hi = 0xbf;
			continue;
		}
		if (c < 0x80)
			continue;
		u->lo = 0x80;
		u->hi = 0xbf;
		if (c >= 0xc2 && c <= 0xdf) {
			u->need = 1;
		} else if (c >= 0xe0 && c <= 0xef) {
			u->need = 2;
			if (c == 0xe0)
				u->lo = 0xa0; /* overlong */
			else if (c == 0xed)
				u->hi = 0x9f; /* surrogates */
		} else if (c >= 0xf0 && c <= 0xf4) {
			u->need = 3;
			if (c == 0xf0)
				u->lo = 0x90; /* overlong */
			else if (c == 0xf4)
				u->hi = 0x8f; /* above U+10FFFF */
		} else {
			return false;
		}
	}
	return true;
}

bool ws_utf8_valid(const void *p, size_t len)
{
	struct ws_utf8 u = {0, 0, 0};

	return ws_utf8_feed(&u, p, len) && u.need == 0;
}

/* ------------------------------------------------------------------------ */
/* Decoder                                                                  */
/* ------------------------------------------------------------------------ */

void ws_decoder_init(struct ws_decoder *d, enum ws_role role, uint8_t *msg_buf,
		     size_t max_message)
{
	memset(d, 0, sizeof(*d));
	d->role = role;
	d->msg_buf = msg_buf;
	d->max_message = max_message;
	d->msg_opcode = WS_OP_TEXT;
}

void ws_mask(uint8_t *p, size_t len, const uint8_t key[4], size_t offset)
{
	for (size_t i = 0; i < len; i++)
		p[i] ^= key[(offset + i) & 3];
}

static bool is_control(unsigned op)
{
	return op >= WS_OP_CLOSE;
}

static bool opcode_known(unsigned op)
{
	return op <= WS_OP_BINARY || (op >= WS_OP_CLOSE && op <= WS_OP_PONG);
}

/* Close codes a peer may put in a close frame (RFC 6455 §7.4, IANA). */
static bool close_code_valid(unsigned code)
{
	return (code >= 1000 && code <= 1003) ||
	       (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

/** One frame header, parsed. */
struct ws_frame {
	bool fin;
	unsigned op;
	size_t hlen;	    /**< header bytes, masking key included */
	size_t plen;	    /**< payload bytes                      */
	const uint8_t *key; /**< masking key, NULL when unmasked    */
};

static int fail(struct ws_decoder *d, struct ws_event *ev, uint16_t code,
		const char *reason)
{
	d->done = true;
	ev->kind = WS_EV_ERROR;
	ev->code = code;
	ev->reason = reason;
	return WS_EV_ERROR;
}

/* Parse the frame header at @p p and check it against the decoder state.
 * @return WS_EV_MESSAGE when the whole frame is in @p avail bytes,
 *         WS_EV_NEED_MORE, or WS_EV_ERROR. The checks run as soon as the
 *         bytes they need are there. */
static int frame_header(struct ws_decoder *d, const uint8_t *p, size_t avail,
			struct ws_frame *f, struct ws_event *ev)
{
	bool masked;
	uint64_t len;
	size_t ext;

	if (avail < 2)
		return WS_EV_NEED_MORE;
	f->fin = p[0] & 0x80;
	f->op = p[0] & 0x0f;
	masked = p[1] & 0x80;
	len = p[1] & 0x7f;
	if (p[0] & 0x70)
		return fail(d, ev, WS_CLOSE_PROTOCOL, "Reserved bits set");
	if (!opcode_known(f->op))
		return fail(d, ev, WS_CLOSE_PROTOCOL, "Reserved opcode");
	if (is_control(f->op) && !f->fin)
		return fail(d, ev, WS_CLOSE_PROTOCOL,
			    "Fragmented control frame");
	if (is_control(f->op) && len > WS_MAX_CONTROL)
		return fail(d, ev, WS_CLOSE_PROTOCOL, "Control frame too long");
	if (d->role == WS_ROLE_SERVER && !masked)
		return fail(d, ev, WS_CLOSE_PROTOCOL, "Unmasked client frame");
	if (d->role == WS_ROLE_CLIENT && masked)
		return fail(d, ev, WS_CLOSE_PROTOCOL, "Masked server frame");
	if (f->op == WS_OP_CONT && !d->in_message)
		return fail(d, ev, WS_CLOSE_PROTOCOL,
			    "Unexpected continuation");
	if ((f->op == WS_OP_TEXT || f->op == WS_OP_BINARY) && d->in_message)
		return fail(d, ev, WS_CLOSE_PROTOCOL, "Continuation expected");

	ext = len == 126 ? 2 : len == 127 ? 8 : 0;
	f->hlen = 2 + ext + (masked ? 4 : 0);
	if (avail < 2 + ext)
		return WS_EV_NEED_MORE;
	if (ext) {
		len = 0;
		for (size_t i = 0; i < ext; i++)
			len = (len << 8) | p[2 + i];
		if (len >> 63)
			return fail(d, ev, WS_CLOSE_PROTOCOL,
				    "Length too large");
		if ((ext == 2 && len < 126) || (ext == 8 && len <= 0xffff))
			return fail(d, ev, WS_CLOSE_PROTOCOL,
				    "Length not in shortest form");
	}
	if (!is_control(f->op)) {
		size_t held = f->op == WS_OP_CONT ? d->msg_len : 0;
		if (len > d->max_message - held)
			return fail(d, ev, WS_CLOSE_TOO_BIG, "Message too big");
		if ((!f->fin || f->op == WS_OP_CONT) && !d->msg_buf)
			return fail(d, ev, WS_CLOSE_TOO_BIG,
				    "Fragmented messages not accepted");
	}
	f->plen = (size_t)len;
	if (avail < f->hlen || avail - f->hlen < f->plen)
		return WS_EV_NEED_MORE;
	f->key = masked ? p + f->hlen - 4 : NULL;
	return WS_EV_MESSAGE;
}

/* A whole control frame, payload unmasked at @p pl. */
static int control_event(struct ws_decoder *d, const struct ws_frame *f,
			 const uint8_t *pl, struct ws_event *ev)
{
	ev->data = (sip_str){(const char *)pl, f->plen};
	if (f->op == WS_OP_PING) {
		ev->kind = WS_EV_PING;
		return WS_EV_PING;
	}
	if (f->op == WS_OP_PONG) {
		ev->kind = WS_EV_PONG;
		return WS_EV_PONG;
	}
	/* close: empty, or a 2-byte code and a UTF-8 reason (§5.5.1) */
	if (f->plen == 1)
		return fail(d, ev, WS_CLOSE_PROTOCOL, "Truncated close code");
	if (f->plen == 0) {
		ev->code = WS_CLOSE_NO_STATUS;
	} else {
		ev->code = (uint16_t)(pl[0] << 8 | pl[1]);
		if (!close_code_valid(ev->code))
			return fail(d, ev, WS_CLOSE_PROTOCOL,
				    "Invalid close code");
		if (!ws_utf8_valid(pl + 2, f->plen - 2))
			return fail(d, ev, WS_CLOSE_INVALID_DATA,
				    "Close reason not UTF-8");
		ev->data = (sip_str){(const char *)pl + 2, f->plen - 2};
	}
	d->done = true;
	ev->kind = WS_EV_CLOSE;
	return WS_EV_CLOSE;
}

/* Add one fragment to the message being reassembled. */
static int append_fragment(struct ws_decoder *d, const struct ws_frame *f,
			   const uint8_t *pl, struct ws_event *ev)
{
	uint8_t *dst;

	if (f->op != WS_OP_CONT) {
		d->in_message = true;
		d->msg_opcode = (enum ws_opcode)f->op;
		d->msg_len = 0;
		memset(&d->utf8, 0, sizeof(d->utf8));
	}
	dst = d->msg_buf + d->msg_len;
	if (f->plen) {
		memcpy(dst, pl, f->plen);
		if (f->key)
			ws_mask(dst, f->plen, f->key, 0);
	}
	d->msg_len += f->plen;
	if (d->msg_opcode == WS_OP_TEXT &&
	    (!ws_utf8_feed(&d->utf8, dst, f->plen) || (f->fin && d->utf8.need)))
		return fail(d, ev, WS_CLOSE_INVALID_DATA, "Text not UTF-8");
	if (!f->fin)
		return WS_EV_NEED_MORE;
	d->in_message = false;
	ev->kind = WS_EV_MESSAGE;
	ev->opcode = d->msg_opcode;
	ev->data = (sip_str){(const char *)d->msg_buf, d->msg_len};
	return WS_EV_MESSAGE;
}

int ws_decode(struct ws_decoder *d, uint8_t *buf, size_t len, size_t *consumed,
	      struct ws_event *ev)
{
	size_t pos = 0;

	if (!d || !consumed || !ev || (!buf && len))
		return -EINVAL;
	memset(ev, 0, sizeof(*ev));
	*consumed = 0;
	if (d->done)
		return -EPIPE;
	for (;;) {
		struct ws_frame f;
		uint8_t *pl;
		int rc = frame_header(d, buf + pos, len - pos, &f, ev);

		if (rc != WS_EV_MESSAGE) {
			*consumed = pos;
			return rc;
		}
		pl = buf + pos + f.hlen;
		pos += f.hlen + f.plen;
		*consumed = pos;
		if (is_control(f.op)) {
			if (f.key)
				ws_mask(pl, f.plen, f.key, 0);
			return control_event(d, &f, pl, ev);
		}
		if (!f.fin || f.op == WS_OP_CONT) {
			rc = append_fragment(d, &f, pl, ev);
			if (rc == WS_EV_NEED_MORE)
				continue;
			return rc;
		}
		/* a whole message in one frame: delivered in place */
		if (f.key)
			ws_mask(pl, f.plen, f.key, 0);
		if (f.op == WS_OP_TEXT && !ws_utf8_valid(pl, f.plen))
			return fail(d, ev, WS_CLOSE_INVALID_DATA,
				    "Text not UTF-8");
		ev->kind = WS_EV_MESSAGE;
		ev->opcode = (enum ws_opcode)f.op;
		ev->data = (sip_str){(const char *)pl, f.plen};
		return WS_EV_MESSAGE;
	}
}

/* ------------------------------------------------------------------------ */
/* Encoder                                                                  */
/* ------------------------------------------------------------------------ */

int ws_encode_header(uint8_t *out, size_t cap, enum ws_opcode op, bool fin,
		     uint64_t len, const uint8_t *mask)
{
	unsigned code = (unsigned)op;
	size_t ext, n;

	if (!out || !opcode_known(code) ||
	    (is_control(code) && (!fin || len > WS_MAX_CONTROL)) || len >> 63)
		return -EINVAL;
	ext = len < 126 ? 0 : len <= 0xffff ? 2 : 8;
	n = 2 + ext + (mask ? 4 : 0);
	if (cap < n)
		return -ENOSPC;
	out[0] = (uint8_t)((fin ? 0x80 : 0) | code);
	out[1] = (uint8_t)((mask ? 0x80 : 0) | (ext == 0   ? len
						: ext == 2 ? 126
							   : 127));
	for (size_t i = 0; i < ext; i++)
		out[2 + i] = (uint8_t)(len >> (8 * (ext - 1 - i)));
	if (mask)
		memcpy(out + 2 + ext, mask, 4);
	return (int)n;
}

int ws_encode(uint8_t *out, size_t cap, enum ws_opcode op, bool fin,
	      const void *payload, size_t len, const uint8_t *mask)
{
	int h;

	if (len > (size_t)INT_MAX - WS_MAX_HEADER)
		return -EMSGSIZE;
	if (len && !payload)
		return -EINVAL;
	h = ws_encode_header(out, cap, op, fin, len, mask);
	if (h < 0)
		return h;
	if (cap - (size_t)h < len)
		return -ENOSPC;
	if (len) {
		memmove(out + h, payload, len);
		if (mask)
			ws_mask(out + h, len, mask, 0);
	}
	return h + (int)len;
}

int ws_encode_close(uint8_t *out, size_t cap, uint16_t code, sip_str reason,
		    const uint8_t *mask)
{
	uint8_t pl[WS_MAX_CONTROL];

	if (code == 0 || code == WS_CLOSE_NO_STATUS) {
		if (reason.len)
			return -EINVAL;
		return ws_encode(out, cap, WS_OP_CLOSE, true, NULL, 0, mask);
	}
	if (!close_code_valid(code) || reason.len > WS_MAX_CONTROL - 2 ||
	    (reason.len && !reason.p))
		return -EINVAL;
	pl[0] = (uint8_t)(code >> 8);
	pl[1] = (uint8_t)code;
	if (reason.len)
		memcpy(pl + 2, reason.p, reason.len);
	return ws_encode(out, cap, WS_OP_CLOSE, true, pl, reason.len + 2, mask);
}
