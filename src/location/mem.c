/**
 * @file mem.c  The in-memory location store: 64 shards by AOR hash, each a
 * mutex, a chained hash table of AOR records and a min-heap of binding
 * expiries; optional persistence through persist.c.
 *
 * Memory: a binding is one allocation (fixed fields then its strings, not
 * NUL-terminated); an AOR record is one allocation (its string inline) and
 * lists its bindings through their next pointers, in the order added.
 */
#include "location/location.h"
#include "location/persist.h"

#include "sipmsg/sipmsg.h"

#include <errno.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define NSHARDS 64
#define SHARD_BITS 6
#define DEFAULT_MAX_PER_AOR 32

/* String fields of a binding, in this order in its blob. */
enum { S_CONTACT, S_CALL_ID, S_PATH, S_INSTANCE, S_SOURCE, S_UA, NS };

struct aor;

struct bnd {
	struct bnd *next; /* next binding of the AOR        */
	struct aor *aor;
	int64_t expires;
	uint64_t id;  /* database row id                */
	uint64_t seq; /* change that wrote it, 0: committed or none */
	uint64_t conn_id;
	uint32_t cseq;
	uint32_t reg_id;
	uint32_t heap_idx;
	uint16_t q;
	uint8_t transport;
	uint16_t len[NS];
	char s[];
};

struct aor {
	struct aor *next; /* hash chain                     */
	struct bnd *first;
	uint32_t hash;
	uint16_t n;
	uint16_t len;
	char s[];
};

/* Bindings and AOR records come from per-shard pools of 16-byte size
 * classes carved from mmap'd chunks, not from malloc: they live for hours
 * while the transactions of the requests that made them (allocated by the
 * same worker threads) live for seconds, and in malloc's heap every
 * binding would pin the pages of the transactions around it. A pool also
 * saves malloc's per-allocation header. Larger objects use malloc. */
#define POOL_GRAIN 16
#define POOL_CLASSES 48 /* up to 768 bytes */
#define POOL_CHUNK ((size_t)256 * 1024)

struct pool_free {
	struct pool_free *next;
};

struct pool {
	struct pool_free *free[POOL_CLASSES + 1];
	char *cur; /* the unused rest of the newest chunk */
	size_t left;
	void **chunks; /* every chunk, for destroy */
	size_t nchunks, capchunks;
};

struct shard {
	alignas(64) pthread_mutex_t mu; /* one cache line per shard at least */
	struct pool pool;
	struct aor **buckets;
	uint32_t nbuckets; /* power of two, or 0 */
	uint32_t naor;
	struct bnd **heap;
	uint32_t nheap;
	uint32_t capheap;
};

struct mem {
	struct shard shards[NSHARDS];
	struct loc_persist *persist;
	unsigned max_per_aor;
	atomic_uint_fast64_t next_id;
};

/* ------------------------------------------------------------------------ */
/* Pools (per shard, used with the shard locked)                            */
/* ------------------------------------------------------------------------ */

static size_t pool_class(size_t size)
{
	return (size + POOL_GRAIN - 1) / POOL_GRAIN;
}

static void *pool_alloc(struct pool *p, size_t size)
{
	size_t c = pool_class(size), bytes = c * POOL_GRAIN;
	void *r;

	if (c > POOL_CLASSES)
		return malloc(size);
	if (p->free[c]) {
		struct pool_free *f = p->free[c];
		p->free[c] = f->next;
		return f;
	}
	if (p->left < bytes) {
		void *chunk;

		if (p->nchunks == p->capchunks) {
			size_t cap = p->capchunks ? p->capchunks * 2 : 16;
			void **v = realloc(p->chunks, cap * sizeof(*v));
			if (!v)
				return NULL;
			p->chunks = v;
			p->capchunks = cap;
		}
		chunk = mmap(NULL, POOL_CHUNK, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (chunk == MAP_FAILED)
			return NULL;
		p->chunks[p->nchunks++] = chunk;
		p->cur = chunk;
		p->left = POOL_CHUNK;
	}
	r = p->cur;
	p->cur += bytes;
	p->left -= bytes;
	return r;
}

static void pool_release(struct pool *p, void *obj, size_t size)
{
	size_t c = pool_class(size);
	struct pool_free *f = obj;

	if (!obj)
		return;
	if (c > POOL_CLASSES) {
		free(obj);
		return;
	}
	f->next = p->free[c];
	p->free[c] = f;
}

static void pool_destroy(struct pool *p)
{
	for (size_t i = 0; i < p->nchunks; i++)
		munmap(p->chunks[i], POOL_CHUNK);
	free(p->chunks);
	memset(p, 0, sizeof(*p));
}

/* ------------------------------------------------------------------------ */
/* Small helpers                                                            */
/* ------------------------------------------------------------------------ */

static uint64_t hash_aor(sip_str aor)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < aor.len; i++) {
		h ^= (unsigned char)aor.p[i];
		h *= 0x100000001b3ull;
	}
	/* finalise so that the top bits (the shard) mix every byte */
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return h;
}

static sip_str bfield(const struct bnd *b, int i)
{
	size_t off = 0;

	for (int k = 0; k < i; k++)
		off += b->len[k];
	return (sip_str){b->s + off, b->len[i]};
}

static void view(const struct bnd *b, struct loc_binding *v)
{
	const char *p = b->s;
	sip_str f[NS];

	for (int i = 0; i < NS; i++) {
		f[i] = (sip_str){p, b->len[i]};
		p += b->len[i];
	}
	*v = (struct loc_binding){
		.aor = {b->aor->s, b->aor->len},
		.contact = f[S_CONTACT],
		.q = b->q,
		.expires = b->expires,
		.call_id = f[S_CALL_ID],
		.cseq = b->cseq,
		.path = f[S_PATH],
		.instance = f[S_INSTANCE],
		.reg_id = b->reg_id,
		.transport = b->transport,
		.source = f[S_SOURCE],
		.conn_id = b->conn_id,
		.user_agent = f[S_UA],
	};
}

static size_t bnd_size(const struct bnd *b)
{
	size_t n = sizeof(*b);

	for (int i = 0; i < NS; i++)
		n += b->len[i];
	return n;
}

static void bnd_free(struct shard *sh, struct bnd *b)
{
	if (b)
		pool_release(&sh->pool, b, bnd_size(b));
}

/* A binding built from @p v (heap index and links unset). */
static struct bnd *bnd_new(struct shard *sh, const struct loc_binding *v,
			   uint64_t id)
{
	const sip_str f[NS] = {v->contact,  v->call_id, v->path,
			       v->instance, v->source,	v->user_agent};
	size_t total = 0;
	struct bnd *b;

	for (int i = 0; i < NS; i++)
		total += f[i].len;
	b = pool_alloc(&sh->pool, sizeof(*b) + total);
	if (!b)
		return NULL;
	b->next = NULL;
	b->aor = NULL;
	b->expires = v->expires;
	b->id = id;
	b->seq = 0;
	b->conn_id = v->conn_id;
	b->cseq = v->cseq;
	b->reg_id = v->reg_id;
	b->heap_idx = 0;
	b->q = v->q;
	b->transport = (uint8_t)v->transport;
	total = 0;
	for (int i = 0; i < NS; i++) {
		if (f[i].len)
			memcpy(b->s + total, f[i].p, f[i].len);
		b->len[i] = (uint16_t)f[i].len;
		total += f[i].len;
	}
	return b;
}

static int check_binding(const struct loc_binding *b, struct sip_uri *uri)
{
	const sip_str f[] = {b->aor,	  b->contact, b->call_id,   b->path,
			     b->instance, b->source,  b->user_agent};

	if (!b->aor.len || b->q > 1000 || b->transport > 0xff)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		if (f[i].len > LOC_MAX_FIELD)
			return -E2BIG;
	if (sip_uri_parse(b->contact, uri) != 0)
		return -EINVAL;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Expiry heap (per shard)                                                  */
/* ------------------------------------------------------------------------ */

static void heap_set(struct shard *sh, uint32_t i, struct bnd *b)
{
	sh->heap[i] = b;
	b->heap_idx = i;
}

static void heap_up(struct shard *sh, uint32_t i)
{
	struct bnd *b = sh->heap[i];

	while (i > 0) {
		uint32_t parent = (i - 1) / 2;
		if (sh->heap[parent]->expires <= b->expires)
			break;
		heap_set(sh, i, sh->heap[parent]);
		i = parent;
	}
	heap_set(sh, i, b);
}

static void heap_down(struct shard *sh, uint32_t i)
{
	struct bnd *b = sh->heap[i];

	for (;;) {
		uint32_t c = 2 * i + 1;
		if (c >= sh->nheap)
			break;
		if (c + 1 < sh->nheap &&
		    sh->heap[c + 1]->expires < sh->heap[c]->expires)
			c++;
		if (b->expires <= sh->heap[c]->expires)
			break;
		heap_set(sh, i, sh->heap[c]);
		i = c;
	}
	heap_set(sh, i, b);
}

static int heap_reserve(struct shard *sh)
{
	if (sh->nheap < sh->capheap)
		return 0;
	uint32_t cap = sh->capheap ? sh->capheap * 2 : 64;
	struct bnd **h = realloc(sh->heap, cap * sizeof(struct bnd *));
	if (!h)
		return -ENOMEM;
	sh->heap = h;
	sh->capheap = cap;
	return 0;
}

/* Needs a slot from heap_reserve(). */
static void heap_push(struct shard *sh, struct bnd *b)
{
	sh->heap[sh->nheap] = b;
	b->heap_idx = sh->nheap++;
	heap_up(sh, b->heap_idx);
}

static void heap_remove(struct shard *sh, struct bnd *b)
{
	uint32_t i = b->heap_idx;
	struct bnd *last = sh->heap[--sh->nheap];

	sh->heap[sh->nheap] = NULL;
	if (i == sh->nheap)
		return;
	heap_set(sh, i, last);
	heap_down(sh, i);
	heap_up(sh, last->heap_idx);
}

/* Put @p nb where @p old is in the heap. */
static void heap_replace(struct shard *sh, struct bnd *old, struct bnd *nb)
{
	uint32_t i = old->heap_idx;

	heap_set(sh, i, nb);
	heap_down(sh, i);
	heap_up(sh, nb->heap_idx);
}

/* ------------------------------------------------------------------------ */
/* AOR table (per shard)                                                    */
/* ------------------------------------------------------------------------ */

static struct shard *shard_of(struct mem *m, uint64_t h)
{
	return &m->shards[h >> (64 - SHARD_BITS)];
}

static struct aor *aor_find(struct shard *sh, sip_str aor, uint32_t h,
			    struct aor ***link)
{
	if (!sh->nbuckets)
		return NULL;
	struct aor **pp = &sh->buckets[h & (sh->nbuckets - 1)];
	for (; *pp; pp = &(*pp)->next) {
		struct aor *a = *pp;
		if (a->hash == h && a->len == aor.len &&
		    !memcmp(a->s, aor.p, aor.len)) {
			if (link)
				*link = pp;
			return a;
		}
	}
	return NULL;
}

static int table_grow(struct shard *sh)
{
	uint32_t n = sh->nbuckets ? sh->nbuckets * 2 : 64;
	struct aor **nb = calloc(n, sizeof(struct aor *));

	if (!nb)
		return -ENOMEM;
	for (uint32_t i = 0; i < sh->nbuckets; i++) {
		struct aor *a = sh->buckets[i];
		while (a) {
			struct aor *next = a->next;
			a->next = nb[a->hash & (n - 1)];
			nb[a->hash & (n - 1)] = a;
			a = next;
		}
	}
	free(sh->buckets);
	sh->buckets = nb;
	sh->nbuckets = n;
	return 0;
}

static struct aor *aor_add(struct shard *sh, sip_str aor, uint32_t h)
{
	if (sh->naor >= sh->nbuckets && table_grow(sh) < 0 && !sh->nbuckets)
		return NULL;
	struct aor *a = pool_alloc(&sh->pool, sizeof(*a) + aor.len);
	if (!a)
		return NULL;
	a->first = NULL;
	a->hash = h;
	a->n = 0;
	a->len = (uint16_t)aor.len;
	memcpy(a->s, aor.p, aor.len);
	struct aor **slot = &sh->buckets[h & (sh->nbuckets - 1)];
	a->next = *slot;
	*slot = a;
	sh->naor++;
	return a;
}

/* Free @p a when it has no binding left. */
static void aor_release(struct shard *sh, struct aor *a)
{
	struct aor **link = NULL;

	if (a->first)
		return;
	if (aor_find(sh, (sip_str){a->s, a->len}, a->hash, &link) == a) {
		*link = a->next;
		sh->naor--;
	}
	pool_release(&sh->pool, a, sizeof(*a) + a->len);
}

/* Unlink @p b from its AOR's list (not from the heap, not freed). */
static void list_unlink(struct bnd *b)
{
	struct bnd **pp = &b->aor->first;

	while (*pp != b)
		pp = &(*pp)->next;
	*pp = b->next;
	b->aor->n--;
}

/* Unlink @p b from its AOR's list and the heap (not freed). */
static void bnd_unlink(struct shard *sh, struct bnd *b)
{
	list_unlink(b);
	heap_remove(sh, b);
}

/* Take the binding expiring first off the heap if it is due at @p now. */
static struct bnd *heap_pop_due(struct shard *sh, int64_t now)
{
	struct bnd *b;

	if (!sh->nheap || sh->heap[0]->expires > now)
		return NULL;
	b = sh->heap[0];
	heap_remove(sh, b);
	return b;
}

static bool contact_eq(const struct bnd *b, const struct sip_uri *uri)
{
	struct sip_uri u;

	return sip_uri_parse(bfield(b, S_CONTACT), &u) == 0 &&
	       sip_uri_equal(&u, uri);
}

/* The binding of @p a that @p v matches, with its link. */
static struct bnd *bnd_match(struct aor *a, const struct loc_binding *v,
			     const struct sip_uri *uri, struct bnd ***link)
{
	struct bnd **pp;

	if (v->instance.len && v->reg_id) {
		for (pp = &a->first; *pp; pp = &(*pp)->next)
			if ((*pp)->reg_id == v->reg_id &&
			    sip_str_eq(bfield(*pp, S_INSTANCE), v->instance))
				break;
	} else {
		for (pp = &a->first; *pp; pp = &(*pp)->next)
			if (contact_eq(*pp, uri))
				break;
	}
	*link = pp;
	return *pp;
}

/* ------------------------------------------------------------------------ */
/* Operations                                                               */
/* ------------------------------------------------------------------------ */

/* Insert or replace with the shard locked; @p id 0 picks a new one.
 * @return LOC_SAVE_*, or -ESTALE, -E2BIG, -ENOMEM. *out is the binding. */
static int save_locked(struct mem *m, struct shard *sh, uint64_t h,
		       const struct loc_binding *v, const struct sip_uri *uri,
		       bool check_order, uint64_t id, struct bnd **out)
{
	struct aor *a = aor_find(sh, v->aor, (uint32_t)h, NULL);
	struct bnd **link = NULL, *old = NULL, *b;

	if (a)
		old = bnd_match(a, v, uri, &link);
	if (old) {
		if (check_order &&
		    loc_order_check(bfield(old, S_CALL_ID), old->cseq,
				    v->call_id, v->cseq) == LOC_ORDER_STALE)
			return -ESTALE;
		b = bnd_new(sh, v, old->id);
		if (!b)
			return -ENOMEM;
		b->aor = a;
		b->next = old->next;
		*link = b;
		heap_replace(sh, old, b);
		bnd_free(sh, old);
		*out = b;
		return LOC_SAVE_UPDATED;
	}
	if (a && a->n >= m->max_per_aor)
		return -E2BIG;
	if (heap_reserve(sh) < 0)
		return -ENOMEM;
	if (!id)
		id = atomic_fetch_add(&m->next_id, 1);
	b = bnd_new(sh, v, id);
	if (!b)
		return -ENOMEM;
	if (!a && !(a = aor_add(sh, v->aor, (uint32_t)h))) {
		bnd_free(sh, b);
		return -ENOMEM;
	}
	b->aor = a;
	for (link = &a->first; *link; link = &(*link)->next)
		;
	*link = b;
	a->n++;
	heap_push(sh, b);
	*out = b;
	return LOC_SAVE_ADDED;
}

static int mem_save(void *impl, const struct loc_binding *v, uint64_t *seq)
{
	struct mem *m = impl;
	struct sip_uri uri;
	struct loc_chg *chg = NULL;
	struct bnd *b = NULL;
	uint64_t h;
	int rc = check_binding(v, &uri);

	if (rc)
		return rc;
	if (v->aor.len > UINT16_MAX)
		return -E2BIG;
	if (m->persist &&
	    (rc = loc_persist_prepare(m->persist, LOC_CHG_UPSERT, v, 0, &chg)))
		return rc;
	h = hash_aor(v->aor);
	struct shard *sh = shard_of(m, h);
	pthread_mutex_lock(&sh->mu);
	rc = save_locked(m, sh, h, v, &uri, v->call_id.len > 0, 0, &b);
	if (chg) {
		if (rc >= 0)
			*seq = b->seq =
				loc_persist_push(m->persist, chg, b->id);
		else
			loc_persist_cancel(m->persist, chg);
	}
	pthread_mutex_unlock(&sh->mu);
	return rc;
}

static int mem_remove(void *impl, sip_str aor, sip_str contact, sip_str call_id,
		      uint32_t cseq, uint64_t *seq)
{
	struct mem *m = impl;
	struct sip_uri uri;
	struct loc_chg *chg = NULL;
	struct bnd **link, *b = NULL;
	int rc;

	struct loc_binding key = {.aor = aor};

	if (sip_uri_parse(contact, &uri) != 0)
		return -EINVAL;
	if (m->persist && (rc = loc_persist_prepare(m->persist, LOC_CHG_DELETE,
						    &key, 1, &chg)))
		return rc;
	uint64_t h = hash_aor(aor);
	struct shard *sh = shard_of(m, h);
	pthread_mutex_lock(&sh->mu);
	struct aor *a = aor_find(sh, aor, (uint32_t)h, NULL);
	if (a)
		b = bnd_match(a, &key, &uri, &link);
	if (!b) {
		rc = -ENOENT;
	} else if (call_id.len &&
		   loc_order_check(bfield(b, S_CALL_ID), b->cseq, call_id,
				   cseq) == LOC_ORDER_STALE) {
		rc = -ESTALE;
	} else {
		bnd_unlink(sh, b);
		if (chg) {
			loc_persist_add_id(chg, b->id);
			*seq = loc_persist_push(m->persist, chg, 0);
			chg = NULL;
		}
		bnd_free(sh, b);
		aor_release(sh, a);
		rc = 0;
	}
	if (chg)
		loc_persist_cancel(m->persist, chg);
	pthread_mutex_unlock(&sh->mu);
	return rc;
}

static int mem_remove_aor(void *impl, sip_str aor, sip_str call_id,
			  uint32_t cseq, uint64_t *seq)
{
	struct mem *m = impl;
	struct loc_chg *chg = NULL;
	struct loc_binding key = {.aor = aor};
	int rc, n = 0;

	if (m->persist &&
	    (rc = loc_persist_prepare(m->persist, LOC_CHG_DELETE, &key,
				      m->max_per_aor, &chg)))
		return rc;
	uint64_t h = hash_aor(aor);
	struct shard *sh = shard_of(m, h);
	pthread_mutex_lock(&sh->mu);
	struct aor *a = aor_find(sh, aor, (uint32_t)h, NULL);
	rc = 0;
	if (a && call_id.len) {
		for (struct bnd *b = a->first; b; b = b->next)
			if (loc_order_check(bfield(b, S_CALL_ID), b->cseq,
					    call_id, cseq) == LOC_ORDER_STALE)
				rc = -ESTALE;
	}
	if (a && !rc) {
		struct bnd *b = a->first;
		a->first = NULL;
		a->n = 0;
		while (b) {
			struct bnd *next = b->next;
			heap_remove(sh, b);
			if (chg)
				loc_persist_add_id(chg, b->id);
			bnd_free(sh, b);
			b = next;
			n++;
		}
		aor_release(sh, a);
		if (chg && n) {
			*seq = loc_persist_push(m->persist, chg, 0);
			chg = NULL;
		}
	}
	if (chg)
		loc_persist_cancel(m->persist, chg);
	pthread_mutex_unlock(&sh->mu);
	return rc ? rc : n;
}

static int mem_lookup(void *impl, sip_str aor, int64_t now, loc_binding_cb *cb,
		      void *arg)
{
	struct mem *m = impl;
	uint64_t h = hash_aor(aor);
	struct shard *sh = shard_of(m, h);
	struct loc_binding v;
	int n = 0;

	pthread_mutex_lock(&sh->mu);
	struct aor *a = aor_find(sh, aor, (uint32_t)h, NULL);
	for (struct bnd *b = a ? a->first : NULL; b; b = b->next) {
		if (b->expires <= now)
			continue;
		n++;
		view(b, &v);
		if (cb && cb(&v, arg))
			break;
	}
	pthread_mutex_unlock(&sh->mu);
	return n;
}

static size_t mem_expire(void *impl, int64_t now, loc_binding_cb *cb, void *arg)
{
	struct mem *m = impl;
	struct loc_binding v;
	uint64_t *ids = NULL;
	size_t n = 0, cap = 0;

	for (int i = 0; i < NSHARDS; i++) {
		struct shard *sh = &m->shards[i];
		unsigned nids = 0;

		pthread_mutex_lock(&sh->mu);
		struct bnd *b;
		while ((b = heap_pop_due(sh, now))) {
			struct aor *a = b->aor;

			list_unlink(b);
			if (cb) {
				view(b, &v);
				cb(&v, arg);
			}
			if (m->persist && nids == cap) {
				size_t nc = cap ? cap * 2 : 256;
				uint64_t *ni = realloc(ids, nc * sizeof(*ids));
				if (ni) {
					ids = ni;
					cap = nc;
				}
			}
			/* without room the row stays until the next open
			 * drops it (expired rows are never loaded) */
			if (m->persist && nids < cap)
				ids[nids++] = b->id;
			bnd_free(sh, b);
			aor_release(sh, a);
			n++;
		}
		pthread_mutex_unlock(&sh->mu);
		if (nids)
			loc_persist_expired(m->persist, ids, nids);
	}
	free(ids);
	return n;
}

static size_t mem_count(void *impl)
{
	struct mem *m = impl;
	size_t n = 0;

	for (int i = 0; i < NSHARDS; i++) {
		pthread_mutex_lock(&m->shards[i].mu);
		n += m->shards[i].nheap;
		pthread_mutex_unlock(&m->shards[i].mu);
	}
	return n;
}

static int mem_foreach(void *impl, loc_binding_cb *cb, void *arg)
{
	struct mem *m = impl;
	struct loc_binding v;
	int n = 0;
	bool stop = false;

	for (int i = 0; i < NSHARDS && !stop; i++) {
		struct shard *sh = &m->shards[i];

		pthread_mutex_lock(&sh->mu);
		for (uint32_t k = 0; k < sh->nbuckets && !stop; k++)
			for (struct aor *a = sh->buckets[k]; a && !stop;
			     a = a->next)
				for (struct bnd *b = a->first; b && !stop;
				     b = b->next) {
					n++;
					view(b, &v);
					stop = cb(&v, arg) != 0;
				}
		pthread_mutex_unlock(&sh->mu);
	}
	return n;
}

static int mem_flush(void *impl)
{
	struct mem *m = impl;

	return m->persist ? loc_persist_flush(m->persist) : 0;
}

static void mem_free(struct mem *m)
{
	for (int i = 0; i < NSHARDS; i++) {
		struct shard *sh = &m->shards[i];

		for (uint32_t k = 0; k < sh->nbuckets; k++) {
			struct aor *a = sh->buckets[k];
			while (a) {
				struct aor *next = a->next;
				struct bnd *b = a->first;
				while (b) {
					struct bnd *bn = b->next;
					bnd_free(sh, b); /* malloc'd ones */
					b = bn;
				}
				pool_release(&sh->pool, a, sizeof(*a) + a->len);
				a = next;
			}
		}
		pool_destroy(&sh->pool);
		free(sh->buckets);
		free(sh->heap);
		pthread_mutex_destroy(&sh->mu);
	}
	free(m);
}

static void mem_destroy(void *impl)
{
	struct mem *m = impl;

	loc_persist_close(m->persist);
	mem_free(m);
}

static const struct loc_store_ops mem_ops = {
	.save = mem_save,
	.remove = mem_remove,
	.remove_aor = mem_remove_aor,
	.lookup = mem_lookup,
	.expire = mem_expire,
	.count = mem_count,
	.foreach = mem_foreach,
	.flush = mem_flush,
	.destroy = mem_destroy,
};

/* A row loaded from the database (no order check, nothing queued). */
static int load_row(const struct loc_binding *v, uint64_t id, void *arg)
{
	struct mem *m = arg;
	struct sip_uri uri;
	struct bnd *out;
	uint64_t h;
	int rc;

	if (check_binding(v, &uri) || v->aor.len > UINT16_MAX)
		return 0; /* not ours to judge now: skip the row */
	h = hash_aor(v->aor);
	struct shard *sh = shard_of(m, h);
	pthread_mutex_lock(&sh->mu);
	rc = save_locked(m, sh, h, v, &uri, false, id, &out);
	pthread_mutex_unlock(&sh->mu);
	return rc == -ENOMEM ? rc : 0;
}

/* The writer's transaction holding change @p seq (an UPSERT of row @p id;
 * 0: a DELETE of it) failed: memory takes the database's @p row back,
 * unless a later change has replaced the binding since. */
static void revert_row(void *arg, sip_str aor, uint64_t id, uint64_t seq,
		       const struct loc_binding *row)
{
	struct mem *m = arg;
	uint64_t h = hash_aor(aor);
	struct shard *sh = shard_of(m, h);
	struct sip_uri uri;
	struct bnd *b = NULL, **link = NULL, *nb;

	pthread_mutex_lock(&sh->mu);
	struct aor *a = aor_find(sh, aor, (uint32_t)h, NULL);
	for (b = a ? a->first : NULL; b && b->id != id; b = b->next)
		;
	if (seq) {
		/* the failed UPSERT is what memory holds: undo it */
		if (b && b->seq == seq) {
			if (row && !check_binding(row, &uri) &&
			    (nb = bnd_new(sh, row, id))) {
				nb->aor = a;
				nb->next = b->next;
				for (link = &a->first; *link != b;
				     link = &(*link)->next)
					;
				*link = nb;
				heap_replace(sh, b, nb);
			} else {
				bnd_unlink(sh, b);
			}
			bnd_free(sh, b);
			aor_release(sh, a);
		}
	} else if (row && !b && !check_binding(row, &uri)) {
		/* a failed DELETE: back, unless the contact is there again */
		if (!a || !bnd_match(a, row, &uri, &link)) {
			struct bnd *out;

			save_locked(m, sh, h, row, &uri, false, id, &out);
		}
	}
	pthread_mutex_unlock(&sh->mu);
}

int loc_store_open(const struct loc_config *cfg, struct loc_store **out,
		   char *errmsg, size_t errcap)
{
	struct mem *m;
	struct loc_store *s;
	uint64_t max_id = 0;
	int rc;

	if (!cfg || !out) {
		if (errmsg && errcap)
			snprintf(errmsg, errcap, "location: no configuration");
		return -EINVAL;
	}
	if (cfg->max_per_aor > UINT16_MAX) {
		if (errmsg && errcap)
			snprintf(errmsg, errcap,
				 "location: max_per_aor %u above %u",
				 cfg->max_per_aor, UINT16_MAX);
		return -EINVAL;
	}
	m = aligned_alloc(64, (sizeof(*m) + 63) / 64 * 64);
	if (!m) {
		if (errmsg && errcap)
			snprintf(errmsg, errcap, "location: out of memory");
		return -ENOMEM;
	}
	memset(m, 0, sizeof(*m));
	for (int i = 0; i < NSHARDS; i++)
		pthread_mutex_init(&m->shards[i].mu, NULL);
	m->max_per_aor =
		cfg->max_per_aor ? cfg->max_per_aor : DEFAULT_MAX_PER_AOR;
	atomic_init(&m->next_id, 1);
	if (cfg->db_path) {
		const struct loc_persist_cbs cbs = {load_row, revert_row, m};

		rc = loc_persist_open(cfg, &cbs, &max_id, &m->persist, errmsg,
				      errcap);
		if (rc) {
			mem_free(m);
			return rc;
		}
		atomic_store(&m->next_id, max_id + 1);
	}
	s = loc_store_wrap(&mem_ops, m);
	if (!s) {
		mem_destroy(m);
		if (errmsg && errcap)
			snprintf(errmsg, errcap, "location: out of memory");
		return -ENOMEM;
	}
	*out = s;
	return 0;
}
