/** @file handshake.c  WebSocket opening handshake (RFC 6455 §4) for SIP
 * (RFC 7118 §4): the server's check of the Upgrade request and its
 * answer, the client's request and its check of the 101. */
#include "ws/ws.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

void ws_handshake_init(struct ws_handshake *h, size_t max_size)
{
	memset(h, 0, sizeof(*h));
	h->max_size = max_size ? max_size : WS_HANDSHAKE_MAX_DEFAULT;
}

/* Offset just past the CRLFCRLF ending the header block, 0 while it has
 * not arrived. Resumes where the previous call stopped. */
static size_t block_end(struct ws_handshake *h, const char *buf, size_t len)
{
	size_t i = h->scan > 3 ? h->scan - 3 : 0;

	while (i + 4 <= len) {
		const char *cr = memchr(buf + i, '\r', len - 3 - i);
		if (!cr)
			break;
		i = (size_t)(cr - buf);
		if (memcmp(cr, "\r\n\r\n", 4) == 0)
			return i + 4;
		i++;
	}
	h->scan = len;
	return 0;
}

/* Reject with @p status and @p reason. */
static int reject(struct ws_handshake *h, unsigned status, const char *reason)
{
	h->status = status;
	h->reason = reason;
	return WS_HS_REJECT;
}

/* have_block(): the header block is complete, go on and check it. */
#define BLOCK_READY (-1)

/* Find the header block; BLOCK_READY when it is complete in @p buf (h->len
 * set), else the result to return. */
static int have_block(struct ws_handshake *h, const char *buf, size_t len,
		      unsigned too_big_status)
{
	size_t end;

	if (h->reason) /* the verdict is in: say it again */
		return WS_HS_REJECT;
	if (h->status)
		return WS_HS_ACCEPT;
	end = block_end(h, buf, len);
	if ((end == 0 && len >= h->max_size) || end > h->max_size)
		return reject(h, too_big_status, "Header block too large");
	if (end == 0)
		return WS_HS_NEED_MORE;
	h->len = end;
	return BLOCK_READY;
}

/* HTTP tchar (RFC 7230 §3.2.6). */
static bool is_tchar(char c)
{
	return sip_is_token_char(c) || (c != '\0' && strchr("#$&^|", c));
}

/* Next line of the block starting at *pos (CRLF excluded). @return 1 with
 * @p line, 0 at the empty line, -EBADMSG for a stray CR or LF. */
static int next_line(const char **pos, const char *end, sip_str *line)
{
	const char *p = *pos;
	const char *cr = memchr(p, '\r', (size_t)(end - p));

	/* the block ends with CRLFCRLF, so a CR is always found */
	if (!cr || cr + 1 >= end || cr[1] != '\n' ||
	    memchr(p, '\n', (size_t)(cr - p)))
		return -EBADMSG;
	*line = (sip_str){p, (size_t)(cr - p)};
	*pos = cr + 2;
	return line->len ? 1 : 0;
}

/* Split "name: value"; value trimmed. @return 0 or -EBADMSG. */
static int split_header(sip_str line, sip_str *name, sip_str *value)
{
	size_t i = 0;

	while (i < line.len && is_tchar(line.p[i]))
		i++;
	if (i == 0 || i == line.len || line.p[i] != ':')
		return -EBADMSG;
	*name = sip_str_sub(line, 0, i);
	*value = sip_str_trim(sip_str_sub(line, i + 1, line.len));
	for (size_t k = 0; k < value->len; k++) {
		unsigned char c = (unsigned char)value->p[k];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return -EBADMSG;
	}
	return 0;
}

/* True when the comma-separated list @p v has an element equal to @p tok
 * (empty elements are allowed, RFC 7230 §7). */
static bool list_has(sip_str v, const char *tok, bool icase)
{
	sip_str want = sip_str_c(tok);
	size_t i = 0;

	while (i <= v.len) {
		size_t j = i;
		while (j < v.len && v.p[j] != ',')
			j++;
		sip_str item = sip_str_trim(sip_str_sub(v, i, j));
		if (icase ? sip_str_ieq(item, want) : sip_str_eq(item, want))
			return true;
		i = j + 1;
	}
	return false;
}

/** The header fields either side looks at. */
struct ws_fields {
	unsigned n_host, n_key, n_version, n_accept, n_protocol;
	bool upgrade;	 /**< Upgrade lists websocket         */
	bool connection; /**< Connection lists upgrade        */
	bool proto_sip;	 /**< Sec-WebSocket-Protocol lists sip */
	bool extensions; /**< Sec-WebSocket-Extensions present */
	sip_str host, origin, key, version, accept, protocol;
};

/* Read every header line after the start line. @return 0 or -EBADMSG. */
static int read_fields(const char *pos, const char *end, struct ws_fields *f)
{
	sip_str line, name, v;
	int rc;

	memset(f, 0, sizeof(*f));
	while ((rc = next_line(&pos, end, &line)) == 1) {
		if (split_header(line, &name, &v) != 0)
			return -EBADMSG;
		if (sip_str_ieq_c(name, "Host")) {
			f->n_host++;
			f->host = v;
		} else if (sip_str_ieq_c(name, "Upgrade")) {
			f->upgrade |= list_has(v, "websocket", true);
		} else if (sip_str_ieq_c(name, "Connection")) {
			f->connection |= list_has(v, "upgrade", true);
		} else if (sip_str_ieq_c(name, "Origin")) {
			f->origin = v;
		} else if (sip_str_ieq_c(name, "Sec-WebSocket-Key")) {
			f->n_key++;
			f->key = v;
		} else if (sip_str_ieq_c(name, "Sec-WebSocket-Version")) {
			f->n_version++;
			f->version = v;
		} else if (sip_str_ieq_c(name, "Sec-WebSocket-Accept")) {
			f->n_accept++;
			f->accept = v;
		} else if (sip_str_ieq_c(name, "Sec-WebSocket-Protocol")) {
			f->n_protocol++;
			f->protocol = v;
			f->proto_sip |= list_has(v, "sip", false);
		} else if (sip_str_ieq_c(name, "Sec-WebSocket-Extensions")) {
			f->extensions = true;
		}
	}
	return rc;
}

/* Request line "GET SP target SP HTTP/1.1". */
static const char *check_request_line(struct ws_handshake *h, sip_str line)
{
	const char *sp1 = memchr(line.p, ' ', line.len);
	const char *sp2;
	sip_str method, version;

	if (!sp1)
		return "Malformed request line";
	sp2 = memchr(sp1 + 1, ' ', (size_t)(line.p + line.len - sp1 - 1));
	if (!sp2 || sp2 == sp1 + 1)
		return "Malformed request line";
	method = (sip_str){line.p, (size_t)(sp1 - line.p)};
	h->target = (sip_str){sp1 + 1, (size_t)(sp2 - sp1 - 1)};
	version = (sip_str){sp2 + 1, (size_t)(line.p + line.len - sp2 - 1)};
	if (!sip_str_eq(method, SIP_STR_LIT("GET")))
		return "Method must be GET";
	if (!sip_str_eq(version, SIP_STR_LIT("HTTP/1.1")))
		return "HTTP/1.1 required";
	for (size_t i = 0; i < h->target.len; i++) {
		unsigned char c = (unsigned char)h->target.p[i];
		if (c <= 0x20 || c == 0x7f)
			return "Malformed request line";
	}
	return NULL;
}

int ws_server_handshake(struct ws_handshake *h, const char *buf, size_t len)
{
	struct ws_fields f;
	const char *pos, *end, *defect;
	uint8_t nonce[WS_NONCE_LEN + 2];
	sip_str line;
	int rc;

	if (!h || (!buf && len))
		return -EINVAL;
	if (!buf)
		buf = "";
	rc = have_block(h, buf, len, 431);
	if (rc != BLOCK_READY)
		return rc;
	pos = buf;
	end = buf + h->len;
	if (next_line(&pos, end, &line) != 1)
		return reject(h, 400, "Malformed request line");
	defect = check_request_line(h, line);
	if (defect)
		return reject(h, 400, defect);
	if (read_fields(pos, end, &f) != 0)
		return reject(h, 400, "Malformed header field");
	if (f.n_host != 1)
		return reject(h, 400, "Exactly one Host required");
	h->host = f.host;
	h->origin = f.origin;
	if (!f.upgrade)
		return reject(h, 400, "Upgrade: websocket required");
	if (!f.connection)
		return reject(h, 400, "Connection: Upgrade required");
	if (f.n_version == 0)
		return reject(h, 400, "Missing Sec-WebSocket-Version");
	if (f.n_version != 1 || !sip_str_eq(f.version, SIP_STR_LIT("13")))
		return reject(h, 426, "Sec-WebSocket-Version 13 required");
	if (f.n_key != 1 || f.key.len != WS_KEY_LEN ||
	    sip_base64_decode(f.key, nonce, sizeof(nonce), SIP_BASE64_STD) !=
		    WS_NONCE_LEN)
		return reject(h, 400, "Invalid Sec-WebSocket-Key");
	if (!f.proto_sip)
		return reject(h, 400, "Sec-WebSocket-Protocol sip required");
	memcpy(h->key, f.key.p, WS_KEY_LEN);
	h->key[WS_KEY_LEN] = '\0';
	if (ws_accept_key(f.key, h->accept) != 0)
		return reject(h, 500, "Cannot compute Sec-WebSocket-Accept");
	h->status = 101;
	h->reason = NULL;
	return WS_HS_ACCEPT;
}

/* Write the result of snprintf checks. */
static int printed(int n, size_t cap)
{
	if (n < 0)
		return -EIO;
	if ((size_t)n >= cap)
		return -ENOSPC;
	return n;
}

int ws_server_response(const struct ws_handshake *h, char *out, size_t cap)
{
	const char *reason;
	const char *phrase;
	int n;

	if (!h || !out || h->status == 0)
		return -EINVAL;
	if (h->status == 101) {
		n = snprintf(out, cap,
			     "HTTP/1.1 101 Switching Protocols\r\n"
			     "Upgrade: websocket\r\n"
			     "Connection: Upgrade\r\n"
			     "Sec-WebSocket-Accept: %s\r\n"
			     "Sec-WebSocket-Protocol: sip\r\n"
			     "\r\n",
			     h->accept);
		return printed(n, cap);
	}
	reason = h->reason ? h->reason : "";
	switch (h->status) {
	case 426:
		phrase = "Upgrade Required";
		break;
	case 431:
		phrase = "Request Header Fields Too Large";
		break;
	case 500:
		phrase = "Internal Server Error";
		break;
	default:
		phrase = "Bad Request";
		break;
	}
	n = snprintf(out, cap,
		     "HTTP/1.1 %u %s\r\n"
		     "%s"
		     "Connection: close\r\n"
		     "Content-Type: text/plain\r\n"
		     "Content-Length: %zu\r\n"
		     "\r\n"
		     "%s\r\n",
		     h->status, phrase,
		     h->status == 426 ? "Upgrade: websocket\r\n"
					"Sec-WebSocket-Version: 13\r\n"
				      : "",
		     strlen(reason) + 2, reason);
	return printed(n, cap);
}

/* A host or target we can put on a request line or in a header. */
static bool safe_text(const char *s)
{
	if (!s || !*s)
		return false;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c <= 0x20 || c == 0x7f)
			return false;
	}
	return true;
}

int ws_client_request(struct ws_handshake *h, const uint8_t nonce[WS_NONCE_LEN],
		      const char *host, const char *target, const char *origin,
		      char *out, size_t cap)
{
	int n;

	if (!h || !nonce || !out || !safe_text(host) || !safe_text(target) ||
	    (origin && !safe_text(origin)))
		return -EINVAL;
	sip_base64_encode(nonce, WS_NONCE_LEN, h->key, SIP_BASE64_STD);
	if (ws_accept_key(sip_str_c(h->key), h->accept) != 0)
		return -EIO;
	n = snprintf(out, cap,
		     "GET %s HTTP/1.1\r\n"
		     "Host: %s\r\n"
		     "Upgrade: websocket\r\n"
		     "Connection: Upgrade\r\n"
		     "Sec-WebSocket-Key: %s\r\n"
		     "Sec-WebSocket-Version: 13\r\n"
		     "Sec-WebSocket-Protocol: sip\r\n"
		     "%s%s%s"
		     "\r\n",
		     target, host, h->key, origin ? "Origin: " : "",
		     origin ? origin : "", origin ? "\r\n" : "");
	return printed(n, cap);
}

/* Status line "HTTP/1.1 SP 3DIGIT [SP reason]": the status, 0 if bad. */
static unsigned status_of(sip_str line)
{
	static const char version[] = "HTTP/1.1 ";
	const size_t vl = sizeof(version) - 1;
	unsigned status = 0;

	if (line.len < vl + 3 || memcmp(line.p, version, vl) != 0 ||
	    (line.len > vl + 3 && line.p[vl + 3] != ' '))
		return 0;
	for (size_t i = vl; i < vl + 3; i++) {
		if (!sip_cc(line.p[i], SIP_CC_DIGIT))
			return 0;
		status = status * 10 + (unsigned)(line.p[i] - '0');
	}
	return status >= 100 ? status : 0;
}

int ws_client_handshake(struct ws_handshake *h, const char *buf, size_t len)
{
	struct ws_fields f;
	const char *pos, *end;
	sip_str line;
	unsigned status;
	int rc;

	if (!h || (!buf && len))
		return -EINVAL;
	if (!buf)
		buf = "";
	rc = have_block(h, buf, len, 0);
	if (rc != BLOCK_READY)
		return rc;
	pos = buf;
	end = buf + h->len;
	if (next_line(&pos, end, &line) != 1 || (status = status_of(line)) == 0)
		return reject(h, 0, "Malformed status line");
	if (status != 101)
		return reject(h, status, "Server did not switch protocols");
	if (read_fields(pos, end, &f) != 0)
		return reject(h, status, "Malformed header field");
	if (!f.upgrade)
		return reject(h, status, "Upgrade: websocket missing");
	if (!f.connection)
		return reject(h, status, "Connection: Upgrade missing");
	if (f.n_accept != 1 || !sip_str_eq(f.accept, sip_str_c(h->accept)))
		return reject(h, status, "Wrong Sec-WebSocket-Accept");
	if (f.n_protocol != 1 || !sip_str_eq(f.protocol, SIP_STR_LIT("sip")))
		return reject(h, status, "Sec-WebSocket-Protocol is not sip");
	if (f.extensions)
		return reject(h, status,
			      "Unrequested Sec-WebSocket-Extensions");
	h->status = status;
	h->reason = NULL;
	return WS_HS_ACCEPT;
}
