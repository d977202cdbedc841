/**
 * @file writer.c  Message writer: builds requests and responses straight
 * into caller memory, copying header slices from a parsed request without
 * reparsing them (RFC 3261 §8.2.6).
 */
#include "sipmsg/sipmsg.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

void sip_wr_init(struct sip_writer *w, char *buf, size_t cap)
{
	w->buf = buf;
	w->cap = cap;
	w->len = 0;
	w->overflow = false;
}

static void put(struct sip_writer *w, const char *p, size_t n)
{
	if (w->overflow || n == 0)
		return;
	if (n > w->cap - w->len) {
		w->overflow = true;
		return;
	}
	memcpy(w->buf + w->len, p, n);
	w->len += n;
}

static void put_s(struct sip_writer *w, sip_str s)
{
	put(w, s.p, s.len);
}

static void put_c(struct sip_writer *w, const char *s)
{
	put(w, s, strlen(s));
}

/* A string literal, its length known at compile time. */
#define PUT_LIT(w, lit) put((w), (lit), sizeof(lit) - 1)

static void put_u(struct sip_writer *w, uint64_t v)
{
	char tmp[24];
	size_t n = sizeof(tmp);

	do {
		tmp[--n] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	put(w, tmp + n, sizeof(tmp) - n);
}

void sip_wr_raw(struct sip_writer *w, sip_str bytes)
{
	put_s(w, bytes);
}

void sip_wr_request_line(struct sip_writer *w, sip_str method, sip_str ruri)
{
	put_s(w, method);
	put(w, " ", 1);
	put_s(w, ruri);
	PUT_LIT(w, " SIP/2.0\r\n");
}

void sip_wr_status_line(struct sip_writer *w, unsigned status,
			const char *reason)
{
	PUT_LIT(w, "SIP/2.0 ");
	put_u(w, status % 1000);
	put(w, " ", 1);
	put_c(w, reason ? reason : sip_reason_phrase(status));
	PUT_LIT(w, "\r\n");
}

void sip_wr_header(struct sip_writer *w, const char *name, sip_str value)
{
	put_c(w, name);
	PUT_LIT(w, ": ");
	put_s(w, value);
	PUT_LIT(w, "\r\n");
}

void sip_wr_headerf(struct sip_writer *w, const char *name, const char *fmt,
		    ...)
{
	va_list ap;
	size_t room;
	int n;

	put_c(w, name);
	PUT_LIT(w, ": ");
	room = w->overflow ? 0 : w->cap - w->len;
	va_start(ap, fmt);
	n = vsnprintf(room ? w->buf + w->len : NULL, room, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= room)
		w->overflow = true;
	else
		w->len += (size_t)n;
	PUT_LIT(w, "\r\n");
}

void sip_wr_copy(struct sip_writer *w, const struct sip_hdr *h)
{
	put_s(w, h->name);
	PUT_LIT(w, ": ");
	put_s(w, h->value);
	PUT_LIT(w, "\r\n");
}

/* Copy every header line of @p id, keeping the long name. */
static void copy_all(struct sip_writer *w, const struct sip_msg *m,
		     enum sip_hdr_id id)
{
	for (const struct sip_hdr *h = sip_msg_hdr(m, id); h;
	     h = sip_msg_hdr_next(m, h))
		sip_wr_header(w, sip_hdr_name(id), h->value);
}

/* The top Via value @p item with @p rcvd applied. */
static void put_top_via(struct sip_writer *w, sip_str item,
			const struct sip_via_rcvd *rcvd)
{
	/* No ';' can come before the parameters (sent-protocol and
	 * sent-by have none), so they start at the first one; the rest of
	 * the Via is copied as it is. */
	const char *semi = memchr(item.p, ';', item.len);
	sip_str cur, name, val;
	int rc;

	if (!semi) {
		put_s(w, item);
		if (rcvd->received.len) {
			PUT_LIT(w, ";received=");
			put_s(w, rcvd->received);
		}
		return;
	}
	put(w, item.p, (size_t)(semi - item.p));
	cur = (sip_str){semi, item.len - (size_t)(semi - item.p)};
	while ((rc = sip_param_next(&cur, &name, &val)) > 0) {
		if (rcvd->received.len && sip_str_ieq_c(name, "received"))
			continue;
		put(w, ";", 1);
		put_s(w, name);
		if (rcvd->rport >= 0 && val.len == 0 &&
		    sip_str_ieq_c(name, "rport")) {
			put(w, "=", 1);
			put_u(w, (uint64_t)rcvd->rport);
		} else if (val.len) {
			put(w, "=", 1);
			put_s(w, val);
		}
	}
	if (rc < 0) /* a malformed parameter: the rest as received */
		put_s(w, cur);
	if (rcvd->received.len) {
		PUT_LIT(w, ";received=");
		put_s(w, rcvd->received);
	}
}

/* Every Via line, the first value of the first line with @p rcvd. */
static void copy_vias(struct sip_writer *w, const struct sip_msg *m,
		      const struct sip_via_rcvd *rcvd)
{
	const struct sip_hdr *h = sip_msg_hdr(m, SIP_HDR_VIA);
	sip_str cur, item;

	if (!h)
		return;
	cur = h->value;
	if (!rcvd || sip_list_next(&cur, &item) <= 0) {
		copy_all(w, m, SIP_HDR_VIA);
		return;
	}
	PUT_LIT(w, "Via: ");
	put_top_via(w, item, rcvd);
	/* the rest of that line: cur now starts after the first comma */
	sip_str rest = sip_str_trim(cur);
	if (rest.len) {
		PUT_LIT(w, ", ");
		put_s(w, rest);
	}
	PUT_LIT(w, "\r\n");
	for (h = sip_msg_hdr_next(m, h); h; h = sip_msg_hdr_next(m, h))
		sip_wr_header(w, "Via", h->value);
}

void sip_wr_vias(struct sip_writer *w, const struct sip_msg *m,
		 const struct sip_via_rcvd *rcvd)
{
	copy_vias(w, m, rcvd);
}

void sip_wr_response_to_rcvd(struct sip_writer *w, const struct sip_msg *req,
			     unsigned status, const char *reason,
			     sip_str to_tag, const struct sip_via_rcvd *rcvd)
{
	const struct sip_hdr *to = sip_msg_hdr(req, SIP_HDR_TO);

	sip_wr_status_line(w, status, reason);
	copy_vias(w, req, rcvd);
	copy_all(w, req, SIP_HDR_FROM);
	if (to) {
		struct sip_addr a;
		bool has_tag = sip_addr_parse(to->value, &a) == 0 && a.tag.len;
		PUT_LIT(w, "To: ");
		put_s(w, to->value);
		if (!has_tag && to_tag.len && status > 100) {
			PUT_LIT(w, ";tag=");
			put_s(w, to_tag);
		}
		PUT_LIT(w, "\r\n");
	}
	copy_all(w, req, SIP_HDR_CALL_ID);
	copy_all(w, req, SIP_HDR_CSEQ);
	if (status == 100)
		copy_all(w, req, SIP_HDR_TIMESTAMP);
}

void sip_wr_response_to(struct sip_writer *w, const struct sip_msg *req,
			unsigned status, const char *reason, sip_str to_tag)
{
	sip_wr_response_to_rcvd(w, req, status, reason, to_tag, NULL);
}

int sip_wr_finish(struct sip_writer *w, const char *ctype, sip_str body)
{
	if (ctype)
		sip_wr_header(w, "Content-Type", sip_str_c(ctype));
	PUT_LIT(w, "Content-Length: ");
	put_u(w, body.len);
	PUT_LIT(w, "\r\n\r\n");
	put_s(w, body);
	if (w->overflow)
		return -ENOSPC;
	return (int)w->len;
}

const char *sip_reason_phrase(unsigned status)
{
	switch (status) {
	case 100:
		return "Trying";
	case 180:
		return "Ringing";
	case 181:
		return "Call Is Being Forwarded";
	case 182:
		return "Queued";
	case 183:
		return "Session Progress";
	case 199:
		return "Early Dialog Terminated";
	case 200:
		return "OK";
	case 202:
		return "Accepted";
	case 204:
		return "No Notification";
	case 300:
		return "Multiple Choices";
	case 301:
		return "Moved Permanently";
	case 302:
		return "Moved Temporarily";
	case 305:
		return "Use Proxy";
	case 380:
		return "Alternative Service";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 402:
		return "Payment Required";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 406:
		return "Not Acceptable";
	case 407:
		return "Proxy Authentication Required";
	case 408:
		return "Request Timeout";
	case 410:
		return "Gone";
	case 412:
		return "Conditional Request Failed";
	case 413:
		return "Request Entity Too Large";
	case 414:
		return "Request-URI Too Long";
	case 415:
		return "Unsupported Media Type";
	case 416:
		return "Unsupported URI Scheme";
	case 420:
		return "Bad Extension";
	case 421:
		return "Extension Required";
	case 423:
		return "Interval Too Brief";
	case 439:
		return "First Hop Lacks Outbound Support";
	case 480:
		return "Temporarily Unavailable";
	case 481:
		return "Call/Transaction Does Not Exist";
	case 482:
		return "Loop Detected";
	case 483:
		return "Too Many Hops";
	case 484:
		return "Address Incomplete";
	case 485:
		return "Ambiguous";
	case 486:
		return "Busy Here";
	case 487:
		return "Request Terminated";
	case 488:
		return "Not Acceptable Here";
	case 489:
		return "Bad Event";
	case 491:
		return "Request Pending";
	case 493:
		return "Undecipherable";
	case 500:
		return "Server Internal Error";
	case 501:
		return "Not Implemented";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Server Time-out";
	case 505:
		return "Version Not Supported";
	case 513:
		return "Message Too Large";
	case 600:
		return "Busy Everywhere";
	case 603:
		return "Decline";
	case 604:
		return "Does Not Exist Anywhere";
	case 606:
		return "Not Acceptable";
	default:
		return "";
	}
}
