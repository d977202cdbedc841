/**
 * @file regq.h  Held REGISTER answers: a worker keeps the answer of a
 * REGISTER that changed bindings until the location store's writer has
 * committed the change (group commit), then sends it — without ever
 * waiting on the database.
 *
 * The writer thread reports each transaction to the hub
 * (regq_hub_on_commit(), the store's loc_config.on_commit): the highest
 * sequence number ended and, for a failed transaction, its range. The hub
 * passes that to every worker's queue (an atomic watermark and, rarely, a
 * list of failed ranges under a small mutex) and wakes the worker with its
 * uv_async handle — only when it holds answers, and once for any number of
 * reports (libuv coalesces the wake-ups). The worker then sends, in order,
 * every held answer whose changes are committed: the 200 the registrar
 * wrote, or a 500 with Retry-After (registrar_failed_answer()) when any of
 * them failed.
 */
#ifndef SIPD_REGQ_H
#define SIPD_REGQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct loc_store;
struct regq;
struct regq_hub;
struct uv_loop_s;

/**
 * Create the hub for workers 0 .. @p nworkers - 1.
 * @return 0 or -ENOMEM.
 */
int regq_hub_create(unsigned nworkers, struct regq_hub **out);
/** Free the hub (after every queue is closed). NULL is a no-op. */
void regq_hub_destroy(struct regq_hub *hub);
/** The store whose commits the hub reports; regq_close() flushes it. */
void regq_hub_set_store(struct regq_hub *hub, struct loc_store *store);
/** A loc_commit_fn: @p hub is the struct regq_hub. Writer thread. */
void regq_hub_on_commit(void *hub, uint64_t first, uint64_t last, int err);

/**
 * Sends a held answer: @p user as given to regq_hold(), the bytes to send
 * (the 200, or the 500 of a failed commit) and the status they carry.
 */
typedef void regq_send_fn(void *arg, void *user, const char *buf, size_t len,
			  unsigned status);
/** Around the answers one wake-up sends (@p begin true, then false): for
 * sending them together (sip_tp_send_batch_begin()). */
typedef void regq_batch_fn(void *arg, bool begin);

/**
 * Open worker @p index's queue on its loop (called on the worker's
 * thread). @return 0, -EINVAL (index out of range or taken), -ENOMEM, or
 * a libuv error.
 */
int regq_open(struct regq_hub *hub, unsigned index, struct uv_loop_s *loop,
	      regq_send_fn *send, regq_batch_fn *batch, void *arg,
	      struct regq **out);

/**
 * Hold the answer @p buf (copied) until the changes @p first .. @p last
 * are reported; it may be sent at once if they already are.
 * @return 0 or -ENOMEM (nothing held).
 */
int regq_hold(struct regq *q, uint64_t first, uint64_t last, void *user,
	      const char *buf, size_t len);

/** Answers held now. */
size_t regq_held(const struct regq *q);

/**
 * For a worker that stops: wait for the store to commit what is queued
 * (loc_store_flush(), the one blocking call, at shutdown), send every
 * held answer, detach from the hub and close (the memory is freed by the
 * loop's close callback). NULL is a no-op.
 */
void regq_close(struct regq *q);

#endif /* SIPD_REGQ_H */
