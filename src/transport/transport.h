/**
 * @file transport.h  SIP transports on libuv: UDP, TCP and TLS (RFC 3261
 * §18), WS and WSS (RFC 7118), listeners, connection management, and the
 * Via helpers of §18.2 and RFC 3581.
 *
 * One `sip_tp` per worker loop; it never starts threads and never blocks.
 * Everything it owns (listeners, connections, its timer) lives on the
 * loop given to sip_tp_create().
 *
 * - UDP: sockets read in batches (recvmmsg). Each datagram is delivered to
 *   the receive callback with its source address and the listener it
 *   arrived on. What the callbacks of one batch send on that socket goes
 *   out with one sendmmsg at the end of the batch. Several workers may
 *   bind one address with SO_REUSEPORT.
 * - TCP and TLS: listeners and outbound connections. Each connection frames
 *   its byte stream with sip_framer_next(); each complete message is
 *   delivered to the same receive callback with the connection's id.
 *   CRLFCRLF keepalives are answered with CRLF (RFC 5626 §3.5.1). A framing
 *   error, an oversize message, bytes that cannot start a SIP message, a
 *   stalled partial message and an idle connection close the connection,
 *   reported through the connection callback with the reason.
 * - Connections are named by a `sip_tp_conn_id`, a slot number and a
 *   generation: an id used after its connection closed is detected
 *   (-ENOTCONN), never dereferenced.
 * - sip_tp_send() reuses an open connection to the destination in either
 *   direction (§18.2.2, §18.1.1), or opens one and queues the bytes until
 *   it is up. Send queues are bounded; a full queue gives -ENOBUFS.
 * - TLS uses OpenSSL 3 through memory BIOs over the libuv stream, one
 *   shared SSL_CTX per role and per transport, with SSL_MODE_RELEASE_BUFFERS
 *   so that an idle connection keeps little memory.
 * - WS and WSS (RFC 7118) are listeners only: an accepted connection (WSS:
 *   once TLS is up) first answers the WebSocket opening handshake (src/ws,
 *   bounded to WS_HANDSHAKE_MAX_DEFAULT bytes and handshake_timeout_ms; a
 *   rejected one gets its 400/426/431 and is closed once that is written).
 *   It is reported UP after the 101. Then each WebSocket message is one SIP
 *   message (no Content-Length framing); pings are answered, a close is
 *   answered and ends the connection, a protocol error is answered with a
 *   close frame carrying its code (1002, 1007, 1009) and ends it. Sending
 *   wraps each message in one unmasked frame (text, or binary when it is
 *   not UTF-8). A fragmented message is reassembled in a buffer that
 *   exists only while it is in progress. There are no outbound WebSocket
 *   connections: sending to a WS/WSS address without an open connection
 *   gives -ENOTCONN.
 *
 * The Via helpers at the end (sip_tp_via_received(), sip_tp_response_dest())
 * are pure functions and need no transport.
 *
 * Errors are negative errno values.
 */
#ifndef SIPD_TRANSPORT_H
#define SIPD_TRANSPORT_H

#include "resolv/resolv.h"
#include "sipmsg/sipmsg.h"

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

struct sip_tp;
struct sip_tp_listener;

/** A connection: slot and generation. 0 is "no connection". */
typedef uint64_t sip_tp_conn_id;

/* ------------------------------------------------------------------------ */
/* Addresses                                                                */
/* ------------------------------------------------------------------------ */

/** Longest text sip_tp_uri_format() writes, with its NUL. */
#define SIP_TP_URI_MAX 64

/**
 * Parse a listen or destination address "udp:127.0.0.1:5060",
 * "tcp:[::1]:5060", "tls:0.0.0.0:5061", "ws:127.0.0.1:8080",
 * "wss:127.0.0.1:8443" (transport case-insensitive, numeric hosts only,
 * IPv6 in brackets, port 0..65535 required).
 * @param transport set to one SIP_TP_* bit (UDP, TCP, TLS, WS or WSS)
 * @param addr      the socket address (sockaddr_in or sockaddr_in6)
 * @return 0 or -EINVAL.
 */
int sip_tp_uri_parse(const char *text, unsigned *transport,
		     struct sockaddr_storage *addr);

/** Write "transport:address:port" for @p addr.
 * @return the length written, or -ENOSPC / -EINVAL. */
int sip_tp_uri_format(unsigned transport, const struct sockaddr *addr,
		      char *buf, size_t cap);

/* ------------------------------------------------------------------------ */
/* Events                                                                   */
/* ------------------------------------------------------------------------ */

/** Why a connection closed. */
enum sip_tp_close_reason {
	SIP_TP_CLOSE_LOCAL = 0, /**< sip_tp_conn_close()            */
	SIP_TP_CLOSE_EOF,	/**< the peer closed                */
	SIP_TP_CLOSE_IO,	/**< read or write error            */
	SIP_TP_CLOSE_FRAMING,	/**< sip_framer_next() failed       */
	SIP_TP_CLOSE_OVERSIZE,	/**< message above max_msg_size     */
	SIP_TP_CLOSE_GARBAGE,	/**< not the start of a SIP message */
	SIP_TP_CLOSE_STALLED,	/**< partial message past the bound */
	SIP_TP_CLOSE_IDLE,	/**< no traffic for idle_timeout    */
	/** Global or per-source limit at accept: counted in the stats only;
	 * the connection never got an id, so no callback reports it. */
	SIP_TP_CLOSE_LIMIT,
	SIP_TP_CLOSE_CONNECT, /**< connect failed or timed out    */
	SIP_TP_CLOSE_TLS,     /**< TLS handshake or record error  */
	/** The TLS or WebSocket handshake took too long. */
	SIP_TP_CLOSE_HANDSHAKE_TIMEOUT,
	SIP_TP_CLOSE_SHUTDOWN, /**< sip_tp_destroy()               */
	/** WebSocket opening handshake rejected (400, 426 or 431 sent). */
	SIP_TP_CLOSE_WS_HANDSHAKE,
	/** WebSocket protocol error: closed with 1002 or 1007 (a message
	 * above max_msg_size is SIP_TP_CLOSE_OVERSIZE, closed with 1009; a
	 * close frame from the peer is SIP_TP_CLOSE_EOF). */
	SIP_TP_CLOSE_WS_PROTOCOL,
	SIP_TP_CLOSE__COUNT
};

/** Short name of a close reason ("eof", "stalled", ...). */
const char *sip_tp_close_reason_name(enum sip_tp_close_reason reason);

/** One received message (stream) or datagram (UDP). Everything it points
 * to is valid during the receive callback only. */
struct sip_tp_rx {
	unsigned transport;	      /**< one SIP_TP_* bit                  */
	const struct sockaddr *src;   /**< the peer                          */
	const struct sockaddr *local; /**< our address it arrived on         */
	struct sip_tp_listener *lsn;  /**< UDP: the socket; stream: the
					   listener it was accepted on, or
					   NULL for an outbound connection */
	sip_tp_conn_id conn;	      /**< stream: the connection; UDP: 0    */
	const char *buf;	      /**< the message                       */
	size_t len;
};

/** A message or datagram arrived. */
typedef void sip_tp_recv_fn(struct sip_tp *tp, const struct sip_tp_rx *rx,
			    void *arg);

enum sip_tp_conn_event {
	/** connected/accepted (TLS: handshake done; WS/WSS: 101 sent) */
	SIP_TP_CONN_UP = 1,
	SIP_TP_CONN_DOWN, /**< closed; the id is stale from now on      */
};

/** A connection came up or went down. For SIP_TP_CONN_DOWN, @p reason
 * says why and @p err carries the errno of I/O and connect errors, or
 * -EPROTO / -EKEYREJECTED (certificate verification) for TLS. */
typedef void sip_tp_conn_fn(struct sip_tp *tp, sip_tp_conn_id conn,
			    enum sip_tp_conn_event ev,
			    enum sip_tp_close_reason reason, int err,
			    void *arg);

/* ------------------------------------------------------------------------ */
/* Configuration                                                            */
/* ------------------------------------------------------------------------ */

/** TLS material, PEM files. */
struct sip_tp_tls_config {
	const char *cert_file; /**< our certificate (server; client cert) */
	const char *key_file;  /**< its private key                        */
	const char *ca_file;   /**< trusted CAs for verifying the peer     */
	/** Server: request a client certificate and require a valid one.
	 * Client: verify the server's certificate against @p ca_file and the
	 * server name of the destination (or its IP address). */
	bool verify_server;
	bool verify_client;
};

struct sip_tp_config {
	sip_tp_recv_fn *recv;	 /**< required */
	sip_tp_conn_fn *on_conn; /**< may be NULL */
	void *arg;

	size_t max_msg_size;	   /**< stream message bound (default 65536)  */
	size_t max_header_line;	   /**< framer line bound (default 8192)      */
	size_t max_send_queue;	   /**< bytes queued per connection (256 KiB) */
	unsigned max_conns;	   /**< all connections (default 4096)        */
	unsigned max_conns_per_ip; /**< inbound per source IP (0: no limit) */
	uint32_t connect_timeout_ms;   /**< default 5000   */
	uint32_t handshake_timeout_ms; /**< default 5000   */
	uint32_t stall_timeout_ms;     /**< default 10000  */
	uint32_t idle_timeout_ms;      /**< default 300000 */
	struct sip_tp_tls_config tls;
};

/** Fill @p cfg with the defaults above (no callbacks, no TLS files). */
void sip_tp_config_default(struct sip_tp_config *cfg);

/** One listener. */
struct sip_tp_listen_config {
	const char *uri; /**< "udp:127.0.0.1:5060", see sip_tp_uri_parse */
	bool reuseport;	 /**< set SO_REUSEPORT before binding          */
	/** UDP test hook: drop every Nth received datagram (0: none). */
	unsigned drop_every;
};

/* ------------------------------------------------------------------------ */
/* Lifecycle                                                                */
/* ------------------------------------------------------------------------ */

/**
 * Create a transport on @p loop. TLS contexts are set up from cfg->tls:
 * the server context needs cert_file and key_file (without them TLS
 * listeners fail with -ENOENT); the client context always exists.
 * @return 0, -EINVAL (no recv callback), -ENOMEM, -EIO (TLS files).
 */
int sip_tp_create(uv_loop_t *loop, const struct sip_tp_config *cfg,
		  struct sip_tp **out);

/**
 * Close every listener and connection (no more callbacks) and release the
 * transport. Handles close asynchronously: run the loop until it has no
 * more work (uv_run(loop, UV_RUN_DEFAULT)) before closing it; the memory
 * is released by the last close callback. May be called from a callback.
 */
void sip_tp_destroy(struct sip_tp *tp);

/**
 * Bind and start a listener.
 * @return 0, -EINVAL (bad URI), -ENOENT (TLS/WSS without a certificate),
 *         or the socket error (-EADDRINUSE, ...).
 */
int sip_tp_listen(struct sip_tp *tp, const struct sip_tp_listen_config *lc,
		  struct sip_tp_listener **out);

/** The bound address of @p lsn (the port a port-0 bind got). */
int sip_tp_listener_addr(const struct sip_tp_listener *lsn,
			 struct sockaddr_storage *out);

/**
 * Check that the address of listen URI @p uri is free, by binding a socket
 * of its kind without SO_REUSEPORT and closing it again, and write the URI
 * with the port the kernel chose (port 0) into @p out. Call it once before
 * a group of SO_REUSEPORT listeners binds the address: SO_REUSEPORT alone
 * would let them join the sockets of another process on that address
 * (same user) and silently share its traffic.
 * @return 0, -EADDRINUSE, -EINVAL (bad URI), -ENOSPC (@p cap too small),
 *         or the socket error.
 */
int sip_tp_listen_reserve(const char *uri, char *out, size_t cap);

/** The transport of @p lsn (one SIP_TP_* bit). */
unsigned sip_tp_listener_transport(const struct sip_tp_listener *lsn);

/* ------------------------------------------------------------------------ */
/* Sending                                                                  */
/* ------------------------------------------------------------------------ */

/** Where to send. */
struct sip_tp_dest {
	unsigned transport;	     /**< one SIP_TP_* bit                  */
	const struct sockaddr *addr; /**< required unless @p conn is given  */
	/** Stream: send on this connection when it is still open (a response
	 * on the connection its request came on); else fall back to
	 * @p addr. */
	sip_tp_conn_id conn;
	/** UDP: the socket to send from (NULL: the first UDP listener of the
	 * address family). */
	struct sip_tp_listener *lsn;
	/** TLS client: SNI and the name the certificate must match (NULL:
	 * no SNI, the certificate must match the IP address). */
	const char *server_name;
};

/**
 * Send one message. UDP: sent now (a copy is queued when the socket would
 * block); while the socket delivers a receive batch (the receive callback
 * runs for a datagram of it), a datagram of up to 2 KiB is queued and
 * sent with the others of the batch by one sendmmsg when the batch ends,
 * in the order of the calls (errors the kernel reports then are counted
 * in the stats, not returned). Stream: on @p dst->conn when open, else on an
 * open connection to
 * @p dst->addr, else on a new outbound connection, where the bytes wait
 * until it is up (TLS: until the handshake is done).
 * @param conn_out when non-NULL, set to the stream connection used (0 UDP)
 * @return 0, -ENOBUFS (send queue full), -EMFILE (connection limit),
 *         -ENOTCONN (no address and the connection is gone; WS/WSS: no
 *         open connection to the address), -EAFNOSUPPORT
 *         (no UDP socket of that family), -EINVAL, or the socket error.
 */
int sip_tp_send(struct sip_tp *tp, const struct sip_tp_dest *dst,
		const char *buf, size_t len, sip_tp_conn_id *conn_out);

/**
 * Between these two, UDP datagrams sent are queued and go out with one
 * sendmmsg per socket at the end, as the answers sent while a receive
 * batch is delivered do (for answers sent from elsewhere than the receive
 * callback, e.g. answers held until a commit). Calls nest; the order of
 * sends is kept.
 */
void sip_tp_send_batch_begin(struct sip_tp *tp);
void sip_tp_send_batch_end(struct sip_tp *tp);

/** Open (or find) a connection to @p dst without sending anything.
 * @return 0 with *@p out set, or an error as sip_tp_send(). */
int sip_tp_connect(struct sip_tp *tp, const struct sip_tp_dest *dst,
		   sip_tp_conn_id *out);

/* ------------------------------------------------------------------------ */
/* Connections                                                              */
/* ------------------------------------------------------------------------ */

struct sip_tp_conn_info {
	unsigned transport; /**< SIP_TP_TCP, _TLS, _WS or _WSS */
	bool outbound;	    /**< we opened it              */
	bool up;	    /**< connected (TLS: handshake; WS: upgraded) */
	struct sockaddr_storage peer;
	struct sockaddr_storage local; /**< zero until connected      */
	size_t queued;		       /**< bytes waiting to be sent  */
};

/** @return 0, or -ENOTCONN when @p conn is closed or unknown. */
int sip_tp_conn_info(struct sip_tp *tp, sip_tp_conn_id conn,
		     struct sip_tp_conn_info *info);

/** Close @p conn (reported with SIP_TP_CLOSE_LOCAL). Queued bytes are
 * dropped. @return 0 or -ENOTCONN. */
int sip_tp_conn_close(struct sip_tp *tp, sip_tp_conn_id conn);

/* ------------------------------------------------------------------------ */
/* Statistics                                                               */
/* ------------------------------------------------------------------------ */

struct sip_tp_stats {
	uint64_t msgs_in; /**< datagrams, framed and WS messages */
	/** sip_tp_send() calls that succeeded (a UDP datagram queued during
	 * a receive batch and refused by the kernel when sent is taken back
	 * and counted in send_errors) */
	uint64_t msgs_out;
	uint64_t bytes_in; /**< SIP bytes (after TLS)              */
	uint64_t bytes_out;
	uint64_t dgrams_dropped; /**< by the drop_every test hook        */
	uint64_t udp_flushes;	 /**< sendmmsg calls that sent datagrams */
	uint64_t udp_batched;	 /**< datagrams sent by those calls      */
	uint64_t keepalives_in;	 /**< CRLFCRLF and WS pings answered     */
	uint64_t send_errors;	 /**< sip_tp_send() failures, -ENOBUFS incl. */
	uint64_t conns_open;	 /**< now                                */
	uint64_t conns_accepted; /**< since creation                     */
	uint64_t conns_connected;
	uint64_t closes[SIP_TP_CLOSE__COUNT]; /**< by reason             */
};

/** Copy the counters of @p tp. */
void sip_tp_stats_get(const struct sip_tp *tp, struct sip_tp_stats *out);

/* ------------------------------------------------------------------------ */
/* Via helpers (§18.2.1, §18.2.2, RFC 3581) — pure functions                */
/* ------------------------------------------------------------------------ */

/** What a server adds to the top Via of a request it received. */
struct sip_tp_via_fix {
	bool add_received;		 /**< add ;received=@p received       */
	char received[INET6_ADDRSTRLEN]; /**< the source address as text */
	bool set_rport; /**< give the empty rport a value     */
	uint16_t rport; /**< the source port                  */
};

/**
 * RFC 3261 §18.2.1 and RFC 3581 §4: given the top Via of a received
 * request and its source address, say whether `received` must be added
 * (the sent-by host is not the source address, or rport is present) and
 * which value the rport parameter gets (when present without a value).
 * @return 0, -EINVAL (not an IPv4/IPv6 source address).
 */
int sip_tp_via_received(const struct sip_via *via, const struct sockaddr *src,
			struct sip_tp_via_fix *out);

enum sip_tp_resp_kind {
	SIP_TP_RESP_CONN = 1, /**< send on the connection the request came on */
	SIP_TP_RESP_ADDR,     /**< send to @p addr                           */
	SIP_TP_RESP_RESOLVE, /**< resolve @p host / @p port (RFC 3263 §5)    */
};

/** Where a response goes. */
struct sip_tp_resp_dest {
	enum sip_tp_resp_kind kind;
	unsigned transport;	      /**< of the request                 */
	struct sockaddr_storage addr; /**< SIP_TP_RESP_ADDR                */
	sip_str host;		      /**< SIP_TP_RESP_RESOLVE (in the Via) */
	uint16_t port;		      /**< port for RESOLVE and ADDR       */
	bool multicast;		      /**< maddr: use @p ttl               */
	uint8_t ttl;
};

/**
 * RFC 3261 §18.2.2 with RFC 3581 §4: where the response to a request goes.
 * @param via         the request's top Via as received, or with the
 *                    received/rport parameters already added
 * @param transport   the request's transport (SIP_TP_*)
 * @param src         the request's source address (may be NULL)
 * @param conn_open   reliable transports: the request's connection is open
 *
 * Reliable: the same connection; else received (or the source address)
 * with the sent-by port or the default port; a sent-by name is resolved.
 * Unreliable: maddr (sent-by port, default 5060); else, with rport, the
 * source address and port (or received and the rport value); else
 * received (or the source address when it differs from sent-by) at the
 * sent-by port or 5060; else sent-by, resolved when it is a name.
 * @return 0, -EINVAL (unparseable numeric address).
 */
int sip_tp_response_dest(const struct sip_via *via, unsigned transport,
			 const struct sockaddr *src, bool conn_open,
			 struct sip_tp_resp_dest *out);

/** Path MTU assumed when it is not known (RFC 3261 §18.1.1). */
#define SIP_TP_DEFAULT_MTU 1500u

/**
 * RFC 3261 §18.1.1: the transport a request of @p len bytes goes over when
 * its target chose @p transport. A UDP request within 200 bytes of the path
 * MTU (@p mtu; 0: unknown, 1300 bytes is then the limit) goes over TCP
 * instead, unless the target named its transport explicitly (a
 * `transport=udp` URI parameter or a NAPTR/SRV answer for UDP only:
 * @p explicit_transport), in which case it stays UDP. The caller writes
 * the top Via with the transport returned. Other transports are returned
 * unchanged.
 * @return the SIP_TP_* bit to send with.
 */
unsigned sip_tp_request_transport(unsigned transport, size_t len, unsigned mtu,
				  bool explicit_transport);

#endif /* SIPD_TRANSPORT_H */
