/**
 * @file sipmsg.h  SIP message layer: parser, header views, URIs, framing,
 * multipart bodies and the message writer (RFC 3261 §7, §19, §20, §25).
 *
 * Sans-I/O and zero-copy: every parsed value is a sip_str slice into the
 * caller's read-only receive buffer, which must outlive the sip_msg. Parsing
 * never allocates; a sip_msg holds a fixed header index.
 *
 * Errors are negative errno values. When a function takes a
 * `struct sip_error *`, it also fills the SIP status a server should answer
 * with, a reason phrase naming the defect, and where it was found.
 */
#ifndef SIPD_SIPMSG_H
#define SIPD_SIPMSG_H

#include "base/base.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */
/* ------------------------------------------------------------------------ */

/** What went wrong and what to answer. */
struct sip_error {
	int err;	    /**< negative errno (-EBADMSG, -EMSGSIZE, ...)   */
	unsigned status;    /**< SIP status to answer (400, 505, 413, ...)  */
	const char *reason; /**< reason phrase naming the defect (static)   */
	size_t offset;	    /**< byte offset into the message (if known)    */
	unsigned line;	    /**< 1-based line (0 if unknown)                */
	unsigned column;    /**< 1-based column (0 if unknown)              */
};

/* ------------------------------------------------------------------------ */
/* Methods and header ids                                                   */
/* ------------------------------------------------------------------------ */

enum sip_method {
	SIP_METHOD_UNKNOWN = 0,
	SIP_METHOD_INVITE,
	SIP_METHOD_ACK,
	SIP_METHOD_BYE,
	SIP_METHOD_CANCEL,
	SIP_METHOD_OPTIONS,
	SIP_METHOD_REGISTER,
	SIP_METHOD_PRACK,
	SIP_METHOD_SUBSCRIBE,
	SIP_METHOD_NOTIFY,
	SIP_METHOD_PUBLISH,
	SIP_METHOD_INFO,
	SIP_METHOD_REFER,
	SIP_METHOD_MESSAGE,
	SIP_METHOD_UPDATE,
	SIP_METHOD__COUNT
};

/** Method id of a method token (case-sensitive, per RFC 3261 §7.1). */
enum sip_method sip_method_id(sip_str token);
/** Canonical name of a known method ("" for UNKNOWN). */
const char *sip_method_name(enum sip_method m);

/** Known headers. SIP_HDR_OTHER is every header we do not index. */
enum sip_hdr_id {
	SIP_HDR_OTHER = 0,
	SIP_HDR_ACCEPT,
	SIP_HDR_ACCEPT_CONTACT,
	SIP_HDR_ACCEPT_ENCODING,
	SIP_HDR_ACCEPT_LANGUAGE,
	SIP_HDR_ALERT_INFO,
	SIP_HDR_ALLOW,
	SIP_HDR_ALLOW_EVENTS,
	SIP_HDR_AUTHENTICATION_INFO,
	SIP_HDR_AUTHORIZATION,
	SIP_HDR_CALL_ID,
	SIP_HDR_CALL_INFO,
	SIP_HDR_CONTACT,
	SIP_HDR_CONTENT_DISPOSITION,
	SIP_HDR_CONTENT_ENCODING,
	SIP_HDR_CONTENT_LANGUAGE,
	SIP_HDR_CONTENT_LENGTH,
	SIP_HDR_CONTENT_TYPE,
	SIP_HDR_CSEQ,
	SIP_HDR_DATE,
	SIP_HDR_ERROR_INFO,
	SIP_HDR_EVENT,
	SIP_HDR_EXPIRES,
	SIP_HDR_FLOW_TIMER,
	SIP_HDR_FROM,
	SIP_HDR_IDENTITY,
	SIP_HDR_IN_REPLY_TO,
	SIP_HDR_MAX_FORWARDS,
	SIP_HDR_MIME_VERSION,
	SIP_HDR_MIN_EXPIRES,
	SIP_HDR_MIN_SE,
	SIP_HDR_ORGANIZATION,
	SIP_HDR_PATH,
	SIP_HDR_PRIORITY,
	SIP_HDR_PROXY_AUTHENTICATE,
	SIP_HDR_PROXY_AUTHORIZATION,
	SIP_HDR_PROXY_REQUIRE,
	SIP_HDR_RACK,
	SIP_HDR_REASON,
	SIP_HDR_RECORD_ROUTE,
	SIP_HDR_REFER_TO,
	SIP_HDR_REFERRED_BY,
	SIP_HDR_REJECT_CONTACT,
	SIP_HDR_REPLY_TO,
	SIP_HDR_REQUEST_DISPOSITION,
	SIP_HDR_REQUIRE,
	SIP_HDR_RETRY_AFTER,
	SIP_HDR_ROUTE,
	SIP_HDR_RSEQ,
	SIP_HDR_SERVER,
	SIP_HDR_SESSION_EXPIRES,
	SIP_HDR_SIP_ETAG,
	SIP_HDR_SIP_IF_MATCH,
	SIP_HDR_SUBJECT,
	SIP_HDR_SUBSCRIPTION_STATE,
	SIP_HDR_SUPPORTED,
	SIP_HDR_TIMESTAMP,
	SIP_HDR_TO,
	SIP_HDR_UNSUPPORTED,
	SIP_HDR_USER_AGENT,
	SIP_HDR_VIA,
	SIP_HDR_WARNING,
	SIP_HDR_WWW_AUTHENTICATE,
	SIP_HDR__COUNT
};

/** Header id of a header name (case-insensitive, compact forms included). */
enum sip_hdr_id sip_hdr_lookup(sip_str name);
/** Canonical (long) name of a known header, NULL for SIP_HDR_OTHER. */
const char *sip_hdr_name(enum sip_hdr_id id);
/** True for headers whose value is a comma-separated list (§7.3.1). */
bool sip_hdr_is_list(enum sip_hdr_id id);

/* ------------------------------------------------------------------------ */
/* The parsed message                                                       */
/* ------------------------------------------------------------------------ */

/** Capacity of the fixed header index; limits may be lower, not higher. */
#define SIP_MSG_MAX_HEADERS 256
#define SIP_HDR_NONE 0xffffu

/** One header line (folded continuation lines included in @p value). */
struct sip_hdr {
	sip_str name;  /**< as written, e.g. "v" or "Via"                  */
	sip_str value; /**< raw value, leading/trailing LWS removed      */
	uint16_t id;   /**< enum sip_hdr_id                               */
	uint16_t next; /**< next header of the same id, or SIP_HDR_NONE    */
};

/** Limits applied while parsing; all configurable. */
struct sip_limits {
	size_t max_msg_size;	/**< whole message, bytes (default 65535)    */
	unsigned max_headers;	/**< header lines (default 128, max 256)     */
	size_t max_header_line; /**< one header incl. folding (default 8192) */
	unsigned max_via;	/**< Via values in total (default 70)        */
};

/** Fill @p l with the defaults above. */
void sip_limits_default(struct sip_limits *l);

enum sip_transport_kind {
	SIP_FRAMING_DATAGRAM =
		0,	    /**< UDP: no Content-Length means "the rest" */
	SIP_FRAMING_STREAM, /**< TCP/TLS/WS: Content-Length mandatory   */
};

enum sip_host_kind {
	SIP_HOST_NONE = 0,
	SIP_HOST_NAME,
	SIP_HOST_IPV4,
	SIP_HOST_IPV6, /**< host slice includes the [ ] brackets */
};

/** One Via value (§20.42). */
struct sip_via {
	sip_str protocol;  /**< "SIP/2.0"                           */
	sip_str transport; /**< "UDP", "TCP", ... as written         */
	sip_str host;	   /**< with [ ] for IPv6                    */
	enum sip_host_kind host_kind;
	bool has_port;
	uint16_t port;
	sip_str branch;
	sip_str received;
	bool has_rport;
	bool rport_value; /**< rport=N present                    */
	uint16_t rport;
	sip_str maddr;
	bool has_ttl;
	uint8_t ttl;
	sip_str params; /**< all params, incl. the ones above     */
};

/**
 * A parsed SIP message. Plain data: everything points into the buffer given
 * to sip_msg_parse(). About 4 KiB; reuse one per worker on the hot path.
 */
struct sip_msg {
	const char *buf; /**< start of the message                         */
	size_t len;	 /**< message length incl. body (excl. trailing)   */
	bool is_request;

	/* request line */
	sip_str method;
	enum sip_method method_id;
	sip_str ruri;
	/* status line */
	unsigned status;
	sip_str reason;
	/* both */
	sip_str version; /**< "SIP/2.0" as written                          */

	sip_str headers; /**< the whole header section (after start line)  */
	sip_str body;
	bool has_content_length;
	uint32_t content_length;

	/** The top Via value (first element of the first Via line) and
	 * its parse, made once by sip_msg_parse() for the checks, the
	 * transaction layer and the response writer: read them with
	 * sip_msg_top_via(). */
	sip_str top_via_value;
	int top_via_rc; /**< 0, -ENOENT (no Via), -EBADMSG, -EAGAIN (not
			     parsed: the message did not parse)     */
	struct sip_via top_via;

	uint16_t nhdrs;
	uint16_t nvia; /**< number of Via values (commas counted)      */
	uint16_t first[SIP_HDR__COUNT]; /**< first header of each id     */
	uint16_t last[SIP_HDR__COUNT];	/**< valid where first[] is set  */
	struct sip_hdr hdrs[SIP_MSG_MAX_HEADERS];
};

/**
 * Parse one complete message (a datagram, or a frame cut by sip_framer).
 * Checks the start line, header syntax, limits and Content-Length framing;
 * header values are checked on demand by the views below, and the
 * transaction-level checks by sip_msg_check().
 *
 * For datagrams, octets past Content-Length are ignored (msg->len stops
 * there); a Content-Length larger than the data is a framing error.
 *
 * On failure the start line and the headers indexed before the defect stay
 * valid (msg->nhdrs of them, reachable through sip_msg_hdr()), so that a
 * server can still answer 400 when Via, From, To, Call-ID and CSeq were
 * read; msg->body and msg->len are not set.
 *
 * @return 0, or a negative errno with @p err filled (may be NULL).
 */
int sip_msg_parse(struct sip_msg *msg, const char *buf, size_t len,
		  enum sip_transport_kind framing,
		  const struct sip_limits *limits, struct sip_error *err);

/**
 * The top Via of @p msg: its value (the first element of the first Via
 * line) into @p value and its parse into @p via (either may be NULL). Uses
 * the parse sip_msg_parse() made; after a failed sip_msg_parse() the
 * headers indexed so far are parsed now.
 * @return 0, -ENOENT (no Via), -EBADMSG (the top Via does not parse).
 */
int sip_msg_top_via(const struct sip_msg *msg, sip_str *value,
		    struct sip_via *via);

/** First header with @p id, or NULL. */
const struct sip_hdr *sip_msg_hdr(const struct sip_msg *msg,
				  enum sip_hdr_id id);
/** Next header with the same id as @p h, or NULL. */
const struct sip_hdr *sip_msg_hdr_next(const struct sip_msg *msg,
				       const struct sip_hdr *h);
/** First header whose name matches @p name (any header, case-insensitive). */
const struct sip_hdr *sip_msg_hdr_by_name(const struct sip_msg *msg,
					  sip_str name);
/** Number of header lines with @p id. */
unsigned sip_msg_hdr_count(const struct sip_msg *msg, enum sip_hdr_id id);

/**
 * Checks an element applies before processing a request or response
 * (RFC 3261 §8.1.3.3, §8.2, §16.3): a single From/To/Call-ID/CSeq/
 * Max-Forwards, CSeq method equal to the request method, parseable top Via,
 * From/To/Contact syntax, numeric fields in range, SIP/2.0.
 *
 * @return 0 when the message may be processed, else negative errno with
 *         @p err->status the answer (400, 505, ...) and a reason phrase.
 */
int sip_msg_check(const struct sip_msg *msg, struct sip_error *err);

/* ------------------------------------------------------------------------ */
/* Stream framing                                                           */
/* ------------------------------------------------------------------------ */

/**
 * Incremental framer for stream transports. Feed it the connection's
 * receive buffer (which only grows at the end between calls); it resumes
 * where it stopped and never rescans bytes it has already seen.
 */
struct sip_framer {
	size_t scan;	   /**< bytes already scanned for the header end */
	size_t hdr_end;	   /**< offset after CRLFCRLF, 0 when not found  */
	size_t msg_len;	   /**< total length once Content-Length is known */
	size_t line_start; /**< start of the current header line        */
	size_t max_size;   /**< from sip_limits                          */
	size_t max_line;   /**< from sip_limits                          */
};

enum sip_frame_kind {
	SIP_FRAME_NEED_MORE = 0, /**< wait for more bytes                    */
	SIP_FRAME_MESSAGE = 1,	 /**< a message of *len bytes is complete     */
	SIP_FRAME_KEEPALIVE = 2, /**< *len bytes of CRLF keepalive (RFC 5626) */
};

void sip_framer_init(struct sip_framer *f, const struct sip_limits *limits);

/**
 * Look for the next frame at the start of @p buf.
 * @return SIP_FRAME_* (>= 0) with @p len set for MESSAGE and KEEPALIVE, or
 *         a negative errno (the connection must be closed) with @p err.
 *         After MESSAGE or KEEPALIVE the caller consumes *len bytes; the
 *         framer is reset for the next frame.
 */
int sip_framer_next(struct sip_framer *f, const char *buf, size_t avail,
		    size_t *len, struct sip_error *err);

/* ------------------------------------------------------------------------ */
/* URIs (RFC 3261 §19.1, RFC 3966)                                          */
/* ------------------------------------------------------------------------ */

enum sip_uri_scheme {
	SIP_URI_OTHER = 0, /**< absoluteURI of another scheme            */
	SIP_URI_SIP,
	SIP_URI_SIPS,
	SIP_URI_TEL,
};

struct sip_uri {
	enum sip_uri_scheme scheme;
	sip_str scheme_str; /**< as written                               */
	sip_str user;	    /**< sip/sips userinfo user; tel: the number   */
	sip_str password;
	sip_str host;
	enum sip_host_kind host_kind;
	bool has_port;
	uint16_t port;
	sip_str params;	 /**< ";a=b;c" incl. leading ';' (sip, sips, tel) */
	sip_str headers; /**< after '?', without it                         */
	sip_str opaque;	 /**< everything after "scheme:" for other schemes  */
};

/**
 * Parse a URI. sip/sips/tel are checked strictly (no spaces, %-escapes
 * well formed, IPv6 in brackets, port <= 65535); other schemes are accepted
 * when they match absoluteURI.
 * @return 0 or -EINVAL.
 */
int sip_uri_parse(sip_str text, struct sip_uri *uri);

/** Compare two URIs per RFC 3261 §19.1.4 (sip/sips) or RFC 3966 (tel).
 * @return true when equivalent. */
bool sip_uri_equal(const struct sip_uri *a, const struct sip_uri *b);

/**
 * Copy @p in to @p out decoding %HH escapes.
 * @return decoded length, or -ENOSPC / -EINVAL (bad escape).
 */
int sip_unescape(sip_str in, char *out, size_t cap);

/* ------------------------------------------------------------------------ */
/* Generic value helpers                                                    */
/* ------------------------------------------------------------------------ */

/**
 * Iterate the comma-separated values of a list header, respecting quoted
 * strings and <...>. *cursor starts as the header value; each call yields
 * the next trimmed element.
 * @return 1 with @p item set, 0 at the end, -EBADMSG on an empty element or
 *         an unterminated quote/angle bracket.
 */
int sip_list_next(sip_str *cursor, sip_str *item);

/** Iterate ";name=value" parameters. *cursor starts at the params slice
 * (leading ';' optional). @return 1, 0 at end, -EBADMSG on bad syntax. */
int sip_param_next(sip_str *cursor, sip_str *name, sip_str *value);

/** Find parameter @p name (case-insensitive) in @p params.
 * @return 1 found (value may be empty: flag parameter), 0 not, <0 syntax. */
int sip_param_find(sip_str params, const char *name, sip_str *value);

/** Unquote a quoted-string (with its quotes) into @p out, resolving
 * quoted-pairs. @return length or -EINVAL / -ENOSPC. */
int sip_unquote(sip_str quoted, char *out, size_t cap);

/* ------------------------------------------------------------------------ */
/* Header views                                                             */
/* ------------------------------------------------------------------------ */

/** Parse one Via value (an element from sip_list_next). @return 0 / -EBADMSG */
int sip_via_parse(sip_str value, struct sip_via *via);

/** name-addr / addr-spec with params: From, To, Contact, Route, ... */
struct sip_addr {
	sip_str display;  /**< token(s) or quoted-string as written, or empty */
	sip_str uri_text; /**< the URI (without < >)                         */
	struct sip_uri uri;
	bool bracketed; /**< name-addr form                                */
	sip_str params; /**< header params after the URI (";tag=..")         */
	sip_str tag;	/**< value of the tag param, if any                  */
};

/** Parse a name-addr or addr-spec with header params. In the addr-spec form
 * ';' starts header params (§20.10). @return 0 / -EBADMSG */
int sip_addr_parse(sip_str value, struct sip_addr *addr);

/** Contact value: '*' or a sip_addr with expires and q. */
struct sip_contact {
	bool star;
	struct sip_addr addr;
	bool has_expires;
	uint32_t expires;
	bool has_q;
	uint16_t q; /**< q-value times 1000 (0..1000) */
};
/** @return 0 / -EBADMSG (bad syntax, q out of range) */
int sip_contact_parse(sip_str value, struct sip_contact *c);

struct sip_cseq {
	uint32_t num;
	sip_str method;
	enum sip_method method_id;
};
/** CSeq (§20.16): number <= 2^32-1 accepted. @return 0 / -EBADMSG / -ERANGE */
int sip_cseq_parse(sip_str value, struct sip_cseq *cseq);
/** Largest CSeq number we put in our own requests (§8.1.1.5). */
#define SIP_CSEQ_MAX_OWN 0x7fffffffu

/** Decimal header value (Max-Forwards, Expires, Min-Expires, ...).
 * @return 0 / -EBADMSG / -ERANGE above @p max */
int sip_uint_parse(sip_str value, uint32_t max, uint32_t *out);

/** Challenge or credentials (§20.7, §20.44; RFC 7616). */
#define SIP_AUTH_MAX_PARAMS 24
struct sip_auth {
	sip_str scheme; /**< "Digest", ... */
	unsigned nparams;
	struct {
		sip_str name;
		sip_str value; /**< raw: with quotes when quoted */
		bool quoted;
	} params[SIP_AUTH_MAX_PARAMS];
};
/** @return 0 / -EBADMSG / -E2BIG */
int sip_auth_parse(sip_str value, struct sip_auth *auth);
/** Value of parameter @p name (case-insensitive), quotes removed (no
 * quoted-pair decoding). @return true when present. */
bool sip_auth_param(const struct sip_auth *auth, const char *name,
		    sip_str *value);

/** Content-Type: type/subtype and params. */
struct sip_ctype {
	sip_str type;
	sip_str subtype;
	sip_str params;
};
/** @return 0 / -EBADMSG */
int sip_ctype_parse(sip_str value, struct sip_ctype *ct);

/* ------------------------------------------------------------------------ */
/* Multipart bodies (RFC 2046 §5.1)                                         */
/* ------------------------------------------------------------------------ */

struct sip_mpart {
	sip_str headers; /**< raw part headers (may be empty)            */
	sip_str ctype;	 /**< Content-Type value of the part, if any      */
	sip_str body;	 /**< binary-safe                                */
};

struct sip_mpart_iter {
	sip_str body;
	sip_str boundary;
	size_t pos;
	bool done;
};

/** Start iterating @p body with the boundary from @p ctype.
 * @return 0, -EINVAL (no boundary parameter). */
int sip_mpart_init(struct sip_mpart_iter *it, const struct sip_ctype *ctype,
		   sip_str body);
/** @return 1 with @p part, 0 after the close delimiter, -EBADMSG. */
int sip_mpart_next(struct sip_mpart_iter *it, struct sip_mpart *part);

/* ------------------------------------------------------------------------ */
/* Request verdicts                                                         */
/* ------------------------------------------------------------------------ */

enum sip_role {
	SIP_ROLE_UAS = 0,
	SIP_ROLE_PROXY,
	SIP_ROLE_REGISTRAR,
};

/** What the element supports, for the §8.2.2 / §16.3 checks. */
struct sip_caps {
	const char *const *methods; /**< NULL-terminated; NULL = all known */
	const char *const *option_tags; /**< NULL-terminated; NULL = none */
	const char *const *accept; /**< content types; NULL = SDP only    */
};

/**
 * The answer an element in @p role gives a request that passed
 * sip_msg_check() before it does its own work: 416 (URI scheme), 420
 * (Require / Proxy-Require, see sip_unsupported_tags()), 483 (proxy,
 * Max-Forwards 0), 501 (unknown method, UAS/registrar), 405, 415 (UAS body
 * type), 400 (registrar: To not sip/sips).
 * @return 0 to proceed, or the status (>0) with @p err describing it.
 */
int sip_request_verdict(const struct sip_msg *msg, enum sip_role role,
			const struct sip_caps *caps, struct sip_error *err);

/** Write the option tags of Require (and, for a proxy, Proxy-Require) that
 * @p caps does not support, comma-separated, for a 420's Unsupported.
 * @return length written, or -ENOSPC. */
int sip_unsupported_tags(const struct sip_msg *msg, enum sip_role role,
			 const struct sip_caps *caps, char *out, size_t cap);

/* ------------------------------------------------------------------------ */
/* Writer                                                                   */
/* ------------------------------------------------------------------------ */

/** Writes a message into caller memory; no allocation. After the first
 * overflow every call is a no-op and sip_wr_finish() returns -ENOSPC. */
struct sip_writer {
	char *buf;
	size_t cap;
	size_t len;
	bool overflow;
};

void sip_wr_init(struct sip_writer *w, char *buf, size_t cap);
void sip_wr_request_line(struct sip_writer *w, sip_str method, sip_str ruri);
void sip_wr_status_line(struct sip_writer *w, unsigned status,
			const char *reason);
void sip_wr_header(struct sip_writer *w, const char *name, sip_str value);
void sip_wr_headerf(struct sip_writer *w, const char *name, const char *fmt,
		    ...) __attribute__((format(printf, 3, 4)));
/** Copy a parsed header line unchanged (name as written). */
void sip_wr_copy(struct sip_writer *w, const struct sip_hdr *h);
void sip_wr_raw(struct sip_writer *w, sip_str bytes);
/**
 * Start a response to @p req per §8.2.6: status line, every Via, From, To
 * (adding ;tag=@p to_tag when To has none and the tag is non-empty),
 * Call-ID, CSeq, and Timestamp for 100.
 */
void sip_wr_response_to(struct sip_writer *w, const struct sip_msg *req,
			unsigned status, const char *reason, sip_str to_tag);
/** What a server adds to the top Via of its responses (RFC 3261 §18.2.1,
 * RFC 3581 §4). */
struct sip_via_rcvd {
	sip_str received; /**< ;received= value; empty: leave as is       */
	int rport;	  /**< value for an empty ;rport; < 0: leave as is */
};

/** sip_wr_response_to() whose top Via value gets @p rcvd's parameters
 * (an existing received is replaced; an empty rport gets its value).
 * @p rcvd NULL is the same as sip_wr_response_to(). */
void sip_wr_response_to_rcvd(struct sip_writer *w, const struct sip_msg *req,
			     unsigned status, const char *reason,
			     sip_str to_tag, const struct sip_via_rcvd *rcvd);
/** Every Via line of @p m (a proxy forwarding a request), the top value
 * with @p rcvd applied (may be NULL). */
void sip_wr_vias(struct sip_writer *w, const struct sip_msg *m,
		 const struct sip_via_rcvd *rcvd);
/** Standard reason phrase of a status code ("" when unknown). */
const char *sip_reason_phrase(unsigned status);
/**
 * End the header section: Content-Type (if @p ctype non-NULL),
 * Content-Length, empty line, body.
 * @return total length, or -ENOSPC.
 */
int sip_wr_finish(struct sip_writer *w, const char *ctype, sip_str body);

#endif /* SIPD_SIPMSG_H */
