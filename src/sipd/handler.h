/**
 * @file handler.h  Stateless request handling of sipd: one datagram in, at
 * most one response out. No I/O here; main.c owns the sockets.
 */
#ifndef SIPD_HANDLER_H
#define SIPD_HANDLER_H

#include "sipmsg/sipmsg.h"

#include <stddef.h>

/** Largest datagram handled, and room for the response. */
#define SIPD_MAX_DATAGRAM 65535u
#define SIPD_MAX_RESPONSE (SIPD_MAX_DATAGRAM + 4096u)

/** What sipd_handle() did with a datagram, for the log line. */
struct sipd_outcome {
	sip_str method;	    /**< request method (empty if unknown)         */
	sip_str ruri;	    /**< request-URI (empty if unknown)            */
	unsigned status;    /**< status answered, 0 when nothing was sent  */
	const char *reason; /**< reason phrase of the answer               */
	const char *note;   /**< why nothing was sent, or extra detail     */
	size_t len;	    /**< response length in the output buffer      */
};

/** Per-server working memory: reused for every datagram. */
struct sipd_handler {
	struct sip_limits limits;
	struct sip_msg msg;
};

void sipd_handler_init(struct sipd_handler *h);

/**
 * Handle one datagram @p buf of @p len bytes and write the response, if
 * any, into @p out (at least SIPD_MAX_RESPONSE bytes).
 * @return 1 when @p o->len bytes of @p out should be sent back to the
 *         source, 0 when the datagram is dropped or absorbed (see o->note).
 */
int sipd_handle(struct sipd_handler *h, const char *buf, size_t len, char *out,
		size_t cap, struct sipd_outcome *o);

#endif /* SIPD_HANDLER_H */
