/**
 * @file bench.h  sipbench run configuration, counters and the worker
 * threads that generate and answer the traffic.
 */
#ifndef SIPBENCH_BENCH_H
#define SIPBENCH_BENCH_H

#include "sipbench/sipbench.h"

#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

enum sb_scenario {
	SB_SC_REGISTER = 0,
	SB_SC_OPTIONS,
	SB_SC_CALL,
	SB_SC_UAS,
	SB_SC_MESSAGE,
	SB_SC__COUNT
};

enum sb_transport { SB_TP_UDP = 0, SB_TP_TCP };

/** Why an attempt failed; SB_R_STATUS ones are also counted by code. */
enum sb_reason {
	SB_R_STATUS = 0, /**< a final response other than 2xx           */
	SB_R_TIMEOUT,	 /**< no final response in time (Timer B / F)   */
	SB_R_BYE,	 /**< the BYE failed or timed out               */
	SB_R_AUTH,   /**< challenged again, or a challenge we cannot answer */
	SB_R_SEND,   /**< the message could not be sent             */
	SB_R_CONN,   /**< the TCP connection failed or closed       */
	SB_R_NO_ACK, /**< uas: no ACK for the 200                   */
	SB_R_NO_BYE, /**< uas: no BYE before the dialog timeout     */
	SB_R_FULL,   /**< uas: no free call slot (503 sent)         */
	SB_R_UNFINISHED, /**< still in progress when the run ended      */
	SB_R__COUNT
};

const char *sb_reason_name(enum sb_reason r);
const char *sb_scenario_name(enum sb_scenario s);

#define SB_MAX_STATUS 700

/** The counters of one worker; the live ones are read by the main thread. */
struct sb_stats {
	_Atomic uint64_t attempted;
	_Atomic uint64_t succeeded;
	_Atomic uint64_t failed;
	_Atomic uint64_t retrans;
	_Atomic uint64_t inflight;
	uint64_t by_reason[SB_R__COUNT];
	uint64_t by_status[SB_MAX_STATUS];
	uint64_t rx, tx, stray, bad, rx_errors;
	struct sb_hist lat; /**< microseconds */
};

/** Add @p src into @p dst (after the workers have stopped). */
void sb_stats_merge(struct sb_stats *dst, struct sb_stats *src);

struct sb_config {
	enum sb_scenario scenario;
	enum sb_transport transport;
	struct sockaddr_storage target;
	socklen_t target_len;
	bool has_target;
	struct sockaddr_storage listen;
	socklen_t listen_len;
	double rate;	 /**< starts per second (all threads), 0: closed loop */
	double ramp;	 /**< seconds to reach @p rate                       */
	double duration; /**< seconds of starting new attempts, 0: no limit  */
	double drain;	 /**< seconds to wait for in-flight ones at the end  */
	uint64_t max_requests; /**< attempts in total, 0: no limit         */
	unsigned inflight;     /**< closed loop: the window; else the bound */
	unsigned threads;
	unsigned local_ports; /**< UDP sockets in total                     */
	unsigned connections; /**< TCP connections in total                 */
	unsigned users;
	unsigned user_start;
	char user_pat[64];
	char pass_pat[64];
	bool has_password;
	char domain[128];
	char callee[64];
	unsigned expires;
	unsigned hold_ms;
	unsigned t1_ms, t2_ms;
	unsigned timeout_ms; /**< overall bound on one transaction           */
	unsigned dialog_timeout_ms; /**< uas: ACK-to-BYE bound              */
	bool uas_register;
	bool no_100;
	uint32_t run_id;
};

/** Shared between the main thread and the workers. */
struct sb_shared {
	_Atomic int stop; /**< 1: start nothing new and drain, 2: abort    */
	uint64_t t0_us;	  /**< CLOCK_MONOTONIC start of the run          */
};

struct sb_worker;

/**
 * Create worker @p idx of @p cfg->threads: sockets bound (and, for a
 * client, connected), slots and buffers allocated.
 * @return 0 or a negative errno with a message on stderr.
 */
int sb_worker_create(const struct sb_config *cfg, unsigned idx,
		     struct sb_shared *sh, struct sb_worker **out);
/** The thread body. */
void *sb_worker_run(void *worker);
/** Whether the worker's loop has returned. */
bool sb_worker_done(struct sb_worker *w);
struct sb_stats *sb_worker_stats(struct sb_worker *w);
/** The statistics of the uas' own registrations (NULL when none). */
struct sb_stats *sb_worker_reg_stats(struct sb_worker *w);
/** Local address of the first socket (uas: the listening one). */
int sb_worker_local(const struct sb_worker *w, struct sockaddr_storage *ss,
		    socklen_t *len);
void sb_worker_destroy(struct sb_worker *w);

/** CLOCK_MONOTONIC in microseconds. */
uint64_t sb_now_us(void);

#endif /* SIPBENCH_BENCH_H */
