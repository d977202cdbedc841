/**
 * @file proxy_glue.h  The proxy (src/proxy) on a sipd worker's loop: its
 * timer, the sends through the worker's transport, and the hand-over of
 * responses that reach a worker which does not own their transaction.
 *
 * Hand-over. With SO_REUSEPORT the kernel picks the worker socket by the
 * source address, so the response of a callee may land on another worker
 * than the one that sent the request. Our branches encode the owning
 * worker: the receiving worker copies the message into a node and pushes
 * it on the owner's queue — a lock-free multi-producer single-consumer
 * list (one atomic exchange per push) — and wakes it with uv_async_send();
 * the owner drains its queue on its own loop. No lock is taken on this
 * path, and the owner alone touches its transactions.
 */
#ifndef SIPD_PROXY_GLUE_H
#define SIPD_PROXY_GLUE_H

#include "sipd/handler.h"
#include "sipd/worker.h"
#include "transport/transport.h"

#include <stdbool.h>
#include <uv.h>

struct sipd_glue;

/** The queues of every worker, shared (created by main). */
struct sipd_hub;
int sipd_hub_create(unsigned workers, struct sipd_hub **out);
void sipd_hub_destroy(struct sipd_hub *hub);
/** Counters of hand-overs (for the log at exit). */
unsigned long sipd_hub_handovers(const struct sipd_hub *hub);

/**
 * Create worker @p index's proxy on @p loop, sending through @p tp; its
 * local addresses are the listeners @p lsn (n of them).
 * @return 0, or a negative errno.
 */
int sipd_glue_create(uv_loop_t *loop, struct sip_tp *tp,
		     const struct sipd_config *cfg, unsigned index,
		     struct sip_tp_listener *const *lsn, unsigned n,
		     struct sipd_glue **out);
/** Close the glue's handles (on the loop, before it ends). */
void sipd_glue_close(struct sipd_glue *g);
/** Free it once the loop has ended. NULL is a no-op. */
void sipd_glue_free(struct sipd_glue *g);

/** Is @p msg (a checked request) for the proxy? */
bool sipd_glue_wants(struct sipd_glue *g, const struct sip_msg *msg);

/** A request for the proxy; @p reply is the §18.2.2 response address. */
void sipd_glue_request(struct sipd_glue *g, const struct sip_msg *msg,
		       const struct sip_tp_rx *rx,
		       const struct sockaddr_storage *reply,
		       const struct sip_via_rcvd *rcvd, struct sipd_outcome *o);

/** A response: to the proxy, or handed over to the worker that owns it. */
void sipd_glue_response(struct sipd_glue *g, const struct sip_msg *msg,
			const struct sip_tp_rx *rx, struct sipd_outcome *o);

#endif /* SIPD_PROXY_GLUE_H */
