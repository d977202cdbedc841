/**
 * @file worker.h  A sipd worker: one thread, one libuv loop, its own
 * transport (sockets bound with SO_REUSEPORT), transaction table and
 * handler. Workers share nothing on the hot path.
 */
#ifndef SIPD_WORKER_H
#define SIPD_WORKER_H

#include <stdatomic.h>
#include <stdbool.h>

struct registrar;
struct regq_hub;
struct sipd_log;
struct loc_store;
struct sip_userdb;
struct sip_digest;
struct sipd_hub;

/** What a SIGHUP reload changes besides the logger and the registrar:
 * written by the main thread, read by the workers for each request. */
struct sipd_live {
	atomic_bool auth; /**< digest authentication of REGISTER */
};

#define SIPD_MAX_LISTEN 16

/** What every worker is started with. */
struct sipd_config {
	const char *listen[SIPD_MAX_LISTEN]; /**< URIs (udp:/tcp:/tls:)  */
	unsigned nlisten;
	unsigned workers;     /**< threads, each with its own loop     */
	bool uas;	      /**< answer calls (minimal UAS)          */
	const char *tls_cert; /**< PEM files for tls: listeners         */
	const char *tls_key;
	const char *tls_ca;
	unsigned drop_every; /**< UDP test hook: drop every Nth datagram */
	/** REGISTER handling shared by every worker (thread-safe); NULL:
	 * REGISTER is answered 501 */
	struct registrar *registrar;
	/** Where the store's commits are reported: a REGISTER's answer is
	 * held until its change is committed (regq.h); NULL: sent at once */
	struct regq_hub *regq;
	const struct sipd_live *live; /**< changed by reloads          */
	/** 0 registrar only, 1 registrar and proxy, 2 registrar and
	 * redirect server (enum cfg_mode); the proxy is off with uas */
	int mode;
	struct loc_store *store;    /**< bindings, for the proxy         */
	struct sip_userdb *userdb;  /**< known users (404 or 480)        */
	struct sip_digest *digest;  /**< 407 for callers of our domains  */
	const char *const *routes;  /**< "DOMAIN=TARGETS", NULL-ended    */
	const char *const *trusted; /**< addresses never challenged    */
	unsigned fork_timeout;	    /**< ms per q group                 */
	/** DNS servers of the proxy, c-ares CSV ("127.0.0.1:53,[::1]:53");
	 * NULL: the system's (/etc/resolv.conf) */
	const char *dns;
	unsigned dns_timeout; /**< ms one lookup may take (0: 4000)    */
	/** The workers' hand-over queues, shared by all (proxy_glue.c). */
	struct sipd_hub *hub;
	/** The logger (thread-safe); a line per request at debug, every
	 * message sent and received at trace. */
	struct sipd_log *log;
};

struct sipd_worker;

/**
 * Start worker @p index in its own thread; it binds every listen URI of
 * @p cfg. Returns once the worker is listening (or failed).
 * @param bound  receives the listen URIs with their bound ports (port 0
 *               resolved), for the next workers and the log; may be NULL.
 * @return 0, or a negative errno (the worker is not running).
 */
int sipd_worker_start(const struct sipd_config *cfg, unsigned index,
		      char bound[][64], struct sipd_worker **out);

/** Ask the worker to stop (thread-safe); it finishes and exits its loop. */
void sipd_worker_stop(struct sipd_worker *w);

/** Wait for the worker thread to end (its memory stays: other workers
 * may still hand messages to it until they have ended too). */
void sipd_worker_wait(struct sipd_worker *w);

/** Wait for the worker thread and free it. */
void sipd_worker_join(struct sipd_worker *w);

#endif /* SIPD_WORKER_H */
