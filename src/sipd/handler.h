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

/** What sipd_handle() did with a message, for the log line. */
struct sipd_outcome {
	sip_str method;	    /**< request method (empty if unknown)         */
	sip_str ruri;	    /**< request-URI (empty if unknown)            */
	unsigned status;    /**< status answered, 0 when nothing was sent  */
	const char *reason; /**< reason phrase of the answer               */
	const char *note;   /**< why nothing was sent, or extra detail     */
	size_t len;	    /**< response length in the output buffer      */
};

/** Per-worker working memory: reused for every message. */
struct sipd_handler {
	struct sip_limits limits;
	struct sip_msg msg;
	/** the top Via of @p msg, parsed by sipd_handle() (when via_ok) */
	struct sip_via via;
	bool via_ok;
	bool uas;	/**< serve INVITE/BYE/CANCEL statefully (minimal UAS) */
	bool registrar; /**< REGISTER goes to the registrar          */
};

void sipd_handler_init(struct sipd_handler *h, bool uas, bool registrar);

/** What sipd_handle() decided. */
enum sipd_action {
	SIPD_DROP = 0, /**< nothing to send (see o->note)                 */
	SIPD_SEND = 1, /**< send o->len bytes of @p out to the source      */
	SIPD_UAS = 2,  /**< h->msg is a valid request for the UAS core      */
	SIPD_TXN = 3,  /**< h->msg parsed: let the transaction layer try it */
	SIPD_REGISTER =
		4, /**< h->msg is a checked REGISTER for the registrar */
};

/**
 * First step for one received message @p buf: parse (with @p framing),
 * then for requests the checks and verdicts. Requests other than the ones
 * the UAS serves are answered statelessly into @p out, with @p rcvd (may
 * be NULL) applied to the top Via. Responses and ACKs return SIPD_TXN so
 * the caller can offer them to its transactions first; for a request,
 * SIPD_TXN means h->via holds its parsed top Via.
 * @return enum sipd_action.
 */
int sipd_handle(struct sipd_handler *h, const char *buf, size_t len,
		enum sip_transport_kind framing,
		const struct sip_via_rcvd *rcvd, char *out, size_t cap,
		struct sipd_outcome *o);

/** Stateless part for a request the transaction layer did not take:
 * answers it (SIPD_SEND), or hands it to the UAS (SIPD_UAS) or the
 * registrar (SIPD_REGISTER). */
int sipd_handle_request(struct sipd_handler *h, const struct sip_via_rcvd *rcvd,
			char *out, size_t cap, struct sipd_outcome *o);

/** To tag of our responses to @p msg: a hash of Call-ID, From and the top
 * Via, so a retransmitted request gets the same tag without state. */
sip_str sipd_to_tag(const struct sip_msg *msg, char *buf, size_t cap);

/** The Allow header value sipd sends. */
const char *sipd_allow(const struct sipd_handler *h);

#endif /* SIPD_HANDLER_H */
