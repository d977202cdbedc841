/**
 * @file sdp.h  SDP session descriptions (RFC 4566): parser, helpers, writer.
 *
 * Zero-copy and allocation-free like the SIP message layer: every parsed
 * value is a sip_str slice into the caller's buffer, which must outlive the
 * struct sdp_session. The structs are plain data with fixed arrays; the
 * caller may also fill one by hand and serialise it with sdp_write().
 *
 * Optional single-valued text fields (i=, u=, z=, k=, ...) are absent when
 * their slice has p == NULL; a present but empty value has p != NULL and
 * len == 0.
 *
 * Limits (exceeding one makes sdp_parse() fail with -E2BIG):
 *  - SDP_MAX_MEDIA media sections (m=),
 *  - SDP_MAX_ATTRS attributes (a=) per section (session, or each media),
 *  - SDP_MAX_FMTS formats per m= line,
 *  - SDP_MAX_CONNS c= lines per media section (one at session level),
 *  - SDP_MAX_BW b= lines per section,
 *  - SDP_MAX_TIMES t= lines, SDP_MAX_REPEATS r= lines per t=,
 *  - SDP_MAX_EMAILS e= lines and SDP_MAX_PHONES p= lines.
 *
 * Errors are negative errno values.
 */
#ifndef SIPD_SDP_H
#define SIPD_SDP_H

#include "base/base.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SDP_MAX_MEDIA 16
#define SDP_MAX_ATTRS 64
#define SDP_MAX_FMTS 32
#define SDP_MAX_CONNS 4
#define SDP_MAX_BW 4
#define SDP_MAX_TIMES 4
#define SDP_MAX_REPEATS 4
#define SDP_MAX_EMAILS 4
#define SDP_MAX_PHONES 4

/** o= line: all six fields are required. */
struct sdp_origin {
	sip_str username;     /**< "-" when none                        */
	sip_str sess_id;      /**< digits                               */
	sip_str sess_version; /**< digits                               */
	sip_str nettype;      /**< "IN"                                 */
	sip_str addrtype;     /**< "IP4", "IP6"                         */
	sip_str address;      /**< unicast address or FQDN              */
};

/**
 * c= line. For IP4 a multicast address may carry "/ttl[/count]", for IP6
 * "/count"; for other address types the whole field stays in @p address.
 */
struct sdp_conn {
	sip_str nettype;  /**< "IN"                                    */
	sip_str addrtype; /**< "IP4", "IP6"                            */
	sip_str address;  /**< without /ttl and /count; IPv6 unbracketed */
	bool has_ttl;
	uint8_t ttl;
	bool has_count;
	uint32_t count; /**< number of addresses (>= 1)               */
};

/** b=<type>:<bandwidth> */
struct sdp_bw {
	sip_str type; /**< "AS", "CT", "TIAS", ...                  */
	uint32_t value;
};

/** a=<name>[:<value>] */
struct sdp_attr {
	sip_str name;
	sip_str value;	/**< empty for property attributes          */
	bool has_value; /**< a ':' was present (value may be empty)   */
};

/** t=<start> <stop> with its r= lines (kept raw, e.g. "7d 1h 0 25h"). */
struct sdp_time {
	uint64_t start;
	uint64_t stop;
	unsigned nrepeats;
	sip_str repeats[SDP_MAX_REPEATS];
};

/** One media section: m= and the i=, c=, b=, k=, a= lines after it. */
struct sdp_media {
	sip_str media; /**< "audio", "video", "application", ...     */
	uint16_t port;
	bool has_nports;
	uint16_t nports; /**< the "/<number of ports>" suffix          */
	sip_str proto;	 /**< "RTP/AVP", "UDP/TLS/RTP/SAVPF", ...     */
	unsigned nfmts;
	sip_str fmts[SDP_MAX_FMTS]; /**< payload types or format names  */
	sip_str info;		    /**< i= (p == NULL: absent)            */
	unsigned nconns;
	struct sdp_conn conns[SDP_MAX_CONNS];
	unsigned nbw;
	struct sdp_bw bw[SDP_MAX_BW];
	sip_str key; /**< k= (p == NULL: absent)                     */
	unsigned nattrs;
	struct sdp_attr attrs[SDP_MAX_ATTRS];
};

/** A whole session description. About 60 KiB: keep it static or per worker. */
struct sdp_session {
	struct sdp_origin origin;
	sip_str name; /**< s= (may be empty, e.g. "s=")              */
	sip_str info; /**< i= (p == NULL: absent)                     */
	sip_str uri;  /**< u= (p == NULL: absent)                     */
	unsigned nemails;
	sip_str emails[SDP_MAX_EMAILS];
	unsigned nphones;
	sip_str phones[SDP_MAX_PHONES];
	bool has_conn;
	struct sdp_conn conn;
	unsigned nbw;
	struct sdp_bw bw[SDP_MAX_BW];
	unsigned ntimes;
	struct sdp_time times[SDP_MAX_TIMES];
	sip_str zone; /**< z= raw (p == NULL: absent)                 */
	sip_str key;  /**< k= raw (p == NULL: absent)                 */
	unsigned nattrs;
	struct sdp_attr attrs[SDP_MAX_ATTRS];
	unsigned nmedia;
	struct sdp_media media[SDP_MAX_MEDIA];
};

/**
 * Parse a session description.
 *
 * Lines are `<type>=<value>` ending in CRLF or LF (the last line may lack
 * its line end; empty lines are accepted only at the very end). v=0 must
 * come first and o=, s= and at least one t= are required at session level;
 * the order of the other session lines is not enforced, except that r=
 * follows a t= and that after the first m= only i=, c=, b=, k= and a= are
 * allowed (they belong to that media section). Unknown line types, repeated
 * single lines, malformed fields and non-numeric ports are rejected.
 *
 * @param err_line  if non-NULL, receives the 1-based line of the error
 *                  (for a missing o=/s=/t=, the line that ended the session
 *                  part: the first m= or one past the last line); 0 on
 *                  success.
 * @return 0, -EBADMSG (syntax), -E2BIG (a limit above), -EINVAL (NULL).
 */
int sdp_parse(struct sdp_session *s, const char *buf, size_t len,
	      unsigned *err_line);

/**
 * Serialise @p s with CRLF line ends in RFC 4566 order (v o s i u e p c b
 * t r z k a, then per media m i c b k a). Writes a terminating NUL when
 * there is room for it (not counted in the result).
 * @return length written, -ENOSPC if @p cap is too small, -EINVAL if a
 *         field contains CR, LF or NUL or a count exceeds its array.
 */
int sdp_write(const struct sdp_session *s, char *buf, size_t cap);

/** Field-by-field comparison (slice contents, not pointers). */
bool sdp_session_equal(const struct sdp_session *a,
		       const struct sdp_session *b);

/**
 * Iterate attributes named @p name (ASCII case-insensitive) in
 * attrs[0..n). Start with *pos = 0.
 * @return the next match (and *pos moves past it), or NULL at the end.
 */
const struct sdp_attr *sdp_attr_next(const struct sdp_attr *attrs, unsigned n,
				     const char *name, unsigned *pos);

/** First attribute named @p name of a media section, or NULL. */
const struct sdp_attr *sdp_media_attr(const struct sdp_media *m,
				      const char *name);

/** a=rtpmap:<pt> <encoding>/<clock>[/<channels>] */
struct sdp_rtpmap {
	sip_str encoding;  /**< "PCMU", "opus", ...                       */
	uint32_t clock;	   /**< clock rate in Hz                          */
	unsigned channels; /**< encoding parameter; 1 when absent         */
};

/**
 * rtpmap of payload type @p pt in @p m (the first a=rtpmap for it).
 * @return 1 found, 0 none, -EBADMSG if that rtpmap is malformed.
 */
int sdp_rtpmap(const struct sdp_media *m, unsigned pt, struct sdp_rtpmap *out);

/**
 * Format parameters of @p pt: the text after "a=fmtp:<pt> ".
 * @return 1 found, 0 none.
 */
int sdp_fmtp(const struct sdp_media *m, unsigned pt, sip_str *params);

enum sdp_dir {
	SDP_DIR_SENDRECV = 0,
	SDP_DIR_SENDONLY,
	SDP_DIR_RECVONLY,
	SDP_DIR_INACTIVE,
};

/** Direction attribute of @p s at session level (sendrecv when none). */
enum sdp_dir sdp_session_dir(const struct sdp_session *s);

/** Effective direction of @p m: its own direction attribute, else the
 * session-level one, else sendrecv. */
enum sdp_dir sdp_media_dir(const struct sdp_session *s,
			   const struct sdp_media *m);

/** Name of a direction ("sendrecv", ...). */
const char *sdp_dir_name(enum sdp_dir d);

/** Effective connection of @p m: its first c=, else the session c=, else
 * NULL. */
const struct sdp_conn *sdp_media_conn(const struct sdp_session *s,
				      const struct sdp_media *m);

#endif /* SIPD_SDP_H */
