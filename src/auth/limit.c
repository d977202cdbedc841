/**
 * @file limit.c  Failed authentications per source address: a bounded
 * table with least-recently-seen eviction, counting in a sliding window.
 *
 * The window is the usual two-counter approximation: the failures of the
 * current fixed window plus those of the previous one weighted by how much
 * of it still overlaps the sliding window. IPv4-mapped IPv6 addresses count
 * as IPv4; other IPv6 sources are counted per /64, the block one host
 * usually holds. The hash is seeded at random so that sources cannot be
 * chosen to collide.
 */
#include "auth/auth.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define NIL UINT32_MAX
#define DEFAULT_CAPACITY 4096
#define DEFAULT_WINDOW_MS 60000
#define DEFAULT_MAX_FAILURES 10

struct key {
	uint8_t family; /* 4 or 6 */
	uint8_t addr[16];
};

struct entry {
	struct key key;
	uint64_t start; /* start of the current fixed window */
	uint32_t cur, prev;
	bool limited; /* on_limit already called */
	uint32_t hnext;
	uint32_t lru_prev, lru_next; /* lru_prev toward the most recent */
};

struct sip_authlimit {
	pthread_mutex_t lock;
	struct sip_authlimit_config cfg;
	struct entry *entries;
	uint32_t *buckets;
	size_t nbuckets; /* a power of two */
	size_t used;
	uint32_t lru_head, lru_tail; /* most and least recently seen */
	uint64_t seed;
};

int sip_authlimit_create(const struct sip_authlimit_config *cfg,
			 struct sip_authlimit **out)
{
	struct sip_authlimit *l;

	*out = NULL;
	if (cfg->capacity > (size_t)1 << 24)
		return -EINVAL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->cfg = *cfg;
	if (!l->cfg.capacity)
		l->cfg.capacity = DEFAULT_CAPACITY;
	if (!l->cfg.window_ms)
		l->cfg.window_ms = DEFAULT_WINDOW_MS;
	if (!l->cfg.max_failures)
		l->cfg.max_failures = DEFAULT_MAX_FAILURES;
	l->nbuckets = 1;
	while (l->nbuckets < 2 * l->cfg.capacity)
		l->nbuckets *= 2;
	l->entries = calloc(l->cfg.capacity, sizeof(*l->entries));
	l->buckets = malloc(l->nbuckets * sizeof(*l->buckets));
	if (!l->entries || !l->buckets ||
	    RAND_bytes((unsigned char *)&l->seed, sizeof(l->seed)) != 1 ||
	    pthread_mutex_init(&l->lock, NULL) != 0) {
		free(l->entries);
		free(l->buckets);
		free(l);
		return -ENOMEM;
	}
	for (size_t i = 0; i < l->nbuckets; i++)
		l->buckets[i] = NIL;
	l->lru_head = l->lru_tail = NIL;
	*out = l;
	return 0;
}

void sip_authlimit_destroy(struct sip_authlimit *l)
{
	if (!l)
		return;
	pthread_mutex_destroy(&l->lock);
	free(l->entries);
	free(l->buckets);
	free(l);
}

static bool key_of(const struct sockaddr *sa, struct key *k)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0,    0,
					   0, 0, 0, 0, 0xff, 0xff};

	memset(k, 0, sizeof(*k));
	if (!sa)
		return false;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		k->family = 4;
		memcpy(k->addr, &in->sin_addr, 4);
		return true;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 =
			(const struct sockaddr_in6 *)sa;
		const uint8_t *a = in6->sin6_addr.s6_addr;

		if (memcmp(a, mapped, sizeof(mapped)) == 0) {
			k->family = 4;
			memcpy(k->addr, a + 12, 4);
		} else {
			k->family = 6;
			memcpy(k->addr, a, 8); /* the /64 */
		}
		return true;
	}
	return false;
}

static size_t key_hash(const struct sip_authlimit *l, const struct key *k)
{
	uint64_t h = l->seed ^ k->family;

	for (int i = 0; i < 16; i += 8) {
		uint64_t w;

		memcpy(&w, k->addr + i, 8);
		h = (h ^ w) * 0x9e3779b97f4a7c15ull;
		h ^= h >> 29;
	}
	h = (h ^ (h >> 32)) * 0xd6e8feb86659fd93ull;
	h ^= h >> 32;
	return (size_t)h & (l->nbuckets - 1);
}

static void lru_unlink(struct sip_authlimit *l, uint32_t i)
{
	struct entry *e = &l->entries[i];

	if (e->lru_prev != NIL)
		l->entries[e->lru_prev].lru_next = e->lru_next;
	else
		l->lru_head = e->lru_next;
	if (e->lru_next != NIL)
		l->entries[e->lru_next].lru_prev = e->lru_prev;
	else
		l->lru_tail = e->lru_prev;
}

static void lru_push_front(struct sip_authlimit *l, uint32_t i)
{
	struct entry *e = &l->entries[i];

	e->lru_prev = NIL;
	e->lru_next = l->lru_head;
	if (l->lru_head != NIL)
		l->entries[l->lru_head].lru_prev = i;
	l->lru_head = i;
	if (l->lru_tail == NIL)
		l->lru_tail = i;
}

static uint32_t find(struct sip_authlimit *l, const struct key *k)
{
	for (uint32_t i = l->buckets[key_hash(l, k)]; i != NIL;
	     i = l->entries[i].hnext) {
		if (memcmp(&l->entries[i].key, k, sizeof(*k)) == 0)
			return i;
	}
	return NIL;
}

static void hash_remove(struct sip_authlimit *l, uint32_t i)
{
	uint32_t *p = &l->buckets[key_hash(l, &l->entries[i].key)];

	while (*p != NIL && *p != i)
		p = &l->entries[*p].hnext;
	if (*p == i)
		*p = l->entries[i].hnext;
}

static uint32_t insert(struct sip_authlimit *l, const struct key *k,
		       uint64_t now)
{
	uint32_t i;
	size_t b;

	if (l->used < l->cfg.capacity) {
		i = (uint32_t)l->used++;
	} else {
		i = l->lru_tail; /* forget the source seen least recently */
		lru_unlink(l, i);
		hash_remove(l, i);
	}
	struct entry *e = &l->entries[i];
	memset(e, 0, sizeof(*e));
	e->key = *k;
	e->start = now;
	b = key_hash(l, k);
	e->hnext = l->buckets[b];
	l->buckets[b] = i;
	lru_push_front(l, i);
	return i;
}

/* Move the window to @p now and return the failures in the sliding window. */
static unsigned roll(const struct sip_authlimit *l, struct entry *e,
		     uint64_t now)
{
	uint64_t w = l->cfg.window_ms, into;

	if (now < e->start)
		now = e->start; /* a clock that went back counts as no time */
	if (now - e->start >= 2 * w) {
		e->prev = 0;
		e->cur = 0;
		e->start = now - (now - e->start) % w;
	} else if (now - e->start >= w) {
		e->prev = e->cur;
		e->cur = 0;
		e->start += w;
	}
	into = now - e->start;
	return e->cur + (unsigned)((e->prev * (w - into)) / w);
}

enum sip_authlimit_verdict sip_authlimit_check(struct sip_authlimit *l,
					       const struct sockaddr *src,
					       uint64_t now)
{
	enum sip_authlimit_verdict v = SIP_AUTHLIMIT_ALLOW;
	struct key k;
	uint32_t i;

	if (!key_of(src, &k))
		return v;
	pthread_mutex_lock(&l->lock);
	i = find(l, &k);
	if (i != NIL) {
		struct entry *e = &l->entries[i];

		lru_unlink(l, i);
		lru_push_front(l, i);
		if (roll(l, e, now) >= l->cfg.max_failures)
			v = l->cfg.silent ? SIP_AUTHLIMIT_DROP
					  : SIP_AUTHLIMIT_REJECT;
		else
			e->limited = false;
	}
	pthread_mutex_unlock(&l->lock);
	return v;
}

unsigned sip_authlimit_fail(struct sip_authlimit *l, const struct sockaddr *src,
			    uint64_t now)
{
	bool report = false;
	unsigned n;
	struct key k;
	uint32_t i;

	if (!key_of(src, &k))
		return 0;
	pthread_mutex_lock(&l->lock);
	i = find(l, &k);
	if (i == NIL) {
		i = insert(l, &k, now);
	} else {
		lru_unlink(l, i);
		lru_push_front(l, i);
	}
	struct entry *e = &l->entries[i];
	roll(l, e, now);
	if (e->cur < UINT32_MAX)
		e->cur++;
	n = roll(l, e, now);
	if (n >= l->cfg.max_failures && !e->limited) {
		e->limited = true;
		report = l->cfg.on_limit != NULL;
	}
	pthread_mutex_unlock(&l->lock);

	if (report) {
		char text[INET6_ADDRSTRLEN + 4];

		if (!inet_ntop(k.family == 4 ? AF_INET : AF_INET6, k.addr, text,
			       sizeof(text)))
			snprintf(text, sizeof(text), "?");
		else if (k.family == 6)
			snprintf(text + strlen(text),
				 sizeof(text) - strlen(text), "/64");
		l->cfg.on_limit(l->cfg.arg, text, n);
	}
	return n;
}

size_t sip_authlimit_size(struct sip_authlimit *l)
{
	size_t n;

	pthread_mutex_lock(&l->lock);
	n = l->used;
	pthread_mutex_unlock(&l->lock);
	return n;
}
