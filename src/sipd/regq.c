/**
 * @file regq.c  Held REGISTER answers and the completion queue from the
 * location store's writer thread to each worker (see regq.h).
 *
 * Ordering without a lock on the hot path: a worker's held answers are a
 * FIFO whose last sequence numbers increase (one worker queues its changes
 * one request after the other). regq_hold() counts the answer in
 * `npending` and then reads `done`; the writer stores `done` and then
 * reads `npending` (both sequentially consistent), so either the worker
 * sees its change ended or the writer sees an answer held and wakes the
 * worker.
 */
#include "sipd/regq.h"

#include "location/location.h"
#include "registrar/registrar.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

struct held {
	struct held *next;
	uint64_t first, last;
	void *user;
	size_t len;
	char buf[];
};

struct fail {
	uint64_t first, last;
};

struct fails {
	struct fail *v;
	size_t n, cap;
};

struct regq {
	struct regq_hub *hub;
	unsigned index;
	uv_async_t async;
	regq_send_fn *send;
	regq_batch_fn *batch;
	void *arg;

	/* the worker's own */
	struct held *head, *tail;
	size_t nheld;
	struct fails mine; /* failed ranges still relevant */

	/* shared with the writer thread */
	atomic_uint_fast64_t done; /* last sequence number ended */
	atomic_size_t npending;
	pthread_mutex_t mu; /* guards `reported` */
	struct fails reported;
};

struct regq_hub {
	pthread_mutex_t mu; /* guards q[] against open/close */
	struct loc_store *store;
	unsigned n;
	struct regq *q[];
};

int regq_hub_create(unsigned nworkers, struct regq_hub **out)
{
	struct regq_hub *h =
		calloc(1, sizeof(*h) + nworkers * sizeof(struct regq *));

	if (!h)
		return -ENOMEM;
	pthread_mutex_init(&h->mu, NULL);
	h->n = nworkers;
	*out = h;
	return 0;
}

void regq_hub_destroy(struct regq_hub *hub)
{
	if (!hub)
		return;
	pthread_mutex_destroy(&hub->mu);
	free(hub);
}

void regq_hub_set_store(struct regq_hub *hub, struct loc_store *store)
{
	hub->store = store;
}

static int fails_add(struct fails *f, uint64_t first, uint64_t last)
{
	if (f->n && f->v[f->n - 1].last + 1 == first) {
		f->v[f->n - 1].last = last; /* merge with the one before */
		return 0;
	}
	if (f->n == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 8;
		struct fail *v = realloc(f->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		f->v = v;
		f->cap = cap;
	}
	f->v[f->n++] = (struct fail){first, last};
	return 0;
}

void regq_hub_on_commit(void *arg, uint64_t first, uint64_t last, int err)
{
	struct regq_hub *hub = arg;

	pthread_mutex_lock(&hub->mu);
	for (unsigned i = 0; i < hub->n; i++) {
		struct regq *q = hub->q[i];
		bool wake;

		if (!q)
			continue;
		wake = err != 0;
		if (err) {
			pthread_mutex_lock(&q->mu);
			/* without memory for the range, the worker is not
			 * told: it would answer 200 — so keep it at 0 and
			 * answer 500 to every held one instead */
			if (q->reported.n != SIZE_MAX &&
			    fails_add(&q->reported, first, last) < 0)
				q->reported.n = SIZE_MAX;
			pthread_mutex_unlock(&q->mu);
		}
		atomic_store(&q->done, last);
		if (wake || atomic_load(&q->npending))
			uv_async_send(&q->async);
	}
	pthread_mutex_unlock(&hub->mu);
}

/* Whether any change of @p h is in a failed range. */
static bool failed(const struct fails *f, const struct held *h)
{
	if (f->n == SIZE_MAX)
		return true;
	for (size_t i = 0; i < f->n; i++)
		if (f->v[i].first <= h->last && h->first <= f->v[i].last)
			return true;
	return false;
}

/* Send every held answer whose changes have ended. */
static void drain(struct regq *q)
{
	uint64_t done = atomic_load(&q->done);

	pthread_mutex_lock(&q->mu);
	if (q->reported.n == SIZE_MAX) {
		q->mine.n = SIZE_MAX;
		q->reported.n = 0;
	}
	for (size_t i = 0; i < q->reported.n && q->mine.n != SIZE_MAX; i++)
		if (fails_add(&q->mine, q->reported.v[i].first,
			      q->reported.v[i].last) < 0)
			q->mine.n = SIZE_MAX;
	q->reported.n = 0;
	pthread_mutex_unlock(&q->mu);

	bool batch = q->batch && q->head && q->head->last <= done;

	if (batch)
		q->batch(q->arg, true);
	while (q->head && q->head->last <= done) {
		struct held *h = q->head;

		q->head = h->next;
		if (!q->head)
			q->tail = NULL;
		q->nheld--;
		atomic_fetch_sub(&q->npending, 1);
		if (!failed(&q->mine, h)) {
			q->send(q->arg, h->user, h->buf, h->len, 200);
		} else {
			/* the 500 repeats the 200's Via, From, To, Call-ID and
			 * CSeq: never longer than it plus a few lines */
			size_t cap = h->len + 256;
			char *out = malloc(cap);
			int n = out ? registrar_failed_answer(h->buf, h->len,
							      out, cap)
				    : -ENOMEM;
			if (n > 0)
				q->send(q->arg, h->user, out, (size_t)n, 500);
			free(out);
		}
		free(h);
	}
	if (batch)
		q->batch(q->arg, false);
	/* failed ranges below every held answer are of no use any more */
	if (!q->head) {
		q->mine.n = 0;
	} else if (q->mine.n != SIZE_MAX) {
		size_t k = 0;

		for (size_t i = 0; i < q->mine.n; i++)
			if (q->mine.v[i].last >= q->head->first)
				q->mine.v[k++] = q->mine.v[i];
		q->mine.n = k;
	}
}

static void on_async(uv_async_t *a)
{
	drain(a->data);
}

static void close_cb(uv_handle_t *handle)
{
	struct regq *q = handle->data;

	free(q->mine.v);
	free(q->reported.v);
	pthread_mutex_destroy(&q->mu);
	free(q);
}

int regq_open(struct regq_hub *hub, unsigned index, uv_loop_t *loop,
	      regq_send_fn *send, regq_batch_fn *batch, void *arg,
	      struct regq **out)
{
	struct regq *q;
	int r;

	if (index >= hub->n)
		return -EINVAL;
	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->hub = hub;
	q->index = index;
	q->send = send;
	q->batch = batch;
	q->arg = arg;
	atomic_init(&q->done, 0);
	atomic_init(&q->npending, 0);
	pthread_mutex_init(&q->mu, NULL);
	q->async.data = q;
	r = uv_async_init(loop, &q->async, on_async);
	if (r < 0) {
		pthread_mutex_destroy(&q->mu);
		free(q);
		return r;
	}
	pthread_mutex_lock(&hub->mu);
	if (hub->q[index]) {
		pthread_mutex_unlock(&hub->mu);
		uv_close((uv_handle_t *)&q->async, close_cb); /* frees q */
		return -EINVAL;
	}
	/* `done` starts at 0: whatever ended before has no answer held, and
	 * every later transaction is reported */
	hub->q[index] = q;
	pthread_mutex_unlock(&hub->mu);
	*out = q;
	return 0;
}

int regq_hold(struct regq *q, uint64_t first, uint64_t last, void *user,
	      const char *buf, size_t len)
{
	struct held *h = malloc(sizeof(*h) + len);

	if (!h)
		return -ENOMEM;
	h->next = NULL;
	h->first = first;
	h->last = last;
	h->user = user;
	h->len = len;
	memcpy(h->buf, buf, len);
	if (q->tail)
		q->tail->next = h;
	else
		q->head = h;
	q->tail = h;
	q->nheld++;
	atomic_fetch_add(&q->npending, 1);
	if (atomic_load(&q->done) >= last)
		drain(q);
	return 0;
}

size_t regq_held(const struct regq *q)
{
	return q->nheld;
}

void regq_close(struct regq *q)
{
	struct regq_hub *hub;

	if (!q)
		return;
	hub = q->hub;
	if (q->head && hub->store)
		loc_store_flush(hub->store);
	drain(q);
	pthread_mutex_lock(&hub->mu);
	hub->q[q->index] = NULL;
	pthread_mutex_unlock(&hub->mu);
	while (q->head) { /* not reported: cannot happen after a flush */
		struct held *h = q->head;

		q->head = h->next;
		free(h);
	}
	uv_close((uv_handle_t *)&q->async, close_cb);
}
