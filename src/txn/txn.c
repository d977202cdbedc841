/**
 * @file txn.c  SIP transaction layer: the four RFC 3261 §17 state machines
 * with the RFC 6026 Accepted states, a chained hash table for §17.1.3 and
 * §17.2.3 matching, and one binary min-heap of timer deadlines per table.
 */
#include "txn/txn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Timer slots: a transaction never runs two timers of the same slot. */
enum { SLOT_RETX, SLOT_LIFE, SLOT_C, SLOT_TRYING, NSLOTS };

#define NOT_ARMED UINT32_MAX
#define MIN_BUCKETS 64u
#define TIMER_C_MIN 180000u
#define TIMER_D_MIN 32000u

struct tslot {
	uint64_t deadline;
	uint64_t seq; /* ties fire in arming order */
	struct sip_txn *txn;
	uint32_t pos; /* index in the heap, NOT_ARMED */
	uint8_t which;
};

struct sip_txn {
	struct sip_txn_table *tab;
	struct sip_txn *hnext;	     /* hash chain */
	struct sip_txn *prev, *next; /* every transaction of the table */
	uint64_t hash;
	enum sip_txn_kind kind;
	enum sip_txn_state state;
	unsigned flags;
	void *user;
	unsigned busy; /* nested calls running on this transaction */
	bool dead;     /* free when busy drops to 0 */
	bool hashed;
	bool cookie;
	bool responded;	  /* server: the TU passed a response */
	bool trying_sent; /* server INVITE: the 100 Trying went out */
	bool final_sent;  /* server INVITE: resp holds a final response */
	uint32_t retx;	  /* current retransmission interval */
	struct tslot slots[NSLOTS];

	/* Matching keys: slices into blob. */
	sip_str branch;
	sip_str method;
	enum sip_method method_id;
	sip_str host; /* sent-by */
	bool has_port;
	uint16_t port;
	sip_str ruri, call_id, from_tag, to_tag, top_via;
	uint32_t cseq;

	/* Client: the request (in blob) and the ACK for a non-2xx. */
	sip_str req;
	char *ack;
	size_t ack_len;

	/* Server: the last response, and the To tag of the last final one. */
	char *resp;
	size_t resp_len, resp_cap;
	size_t resp_tag_off, resp_tag_len;

	char blob[];
};

struct sip_txn_table {
	struct sip_txn_config cfg;
	struct sip_txn_callbacks cb;
	void *arg;
	struct sip_txn **buckets;
	size_t nbuckets; /* power of two */
	size_t count;	 /* live (hashed) transactions */
	struct sip_txn *all;
	struct tslot **heap;
	size_t nheap, capheap;
	uint64_t seq;
	uint64_t branch_counter;
	struct sip_msg scratch; /* parsing our own messages */
};

/* ------------------------------------------------------------------------ */
/* Small helpers                                                            */
/* ------------------------------------------------------------------------ */

void sip_txn_config_default(struct sip_txn_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->t1 = 500;
	cfg->t2 = 4000;
	cfg->t4 = 5000;
	cfg->timer_c = 181000;
	cfg->timer_d = 32000;
	cfg->trying_delay = 200;
}

static uint64_t fnv(uint64_t h, sip_str s)
{
	for (size_t i = 0; i < s.len; i++) {
		h ^= (unsigned char)s.p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

#define FNV_BASIS 0xcbf29ce484222325ull

static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static bool str_eq(sip_str a, sip_str b)
{
	return sip_str_eq(a, b);
}

static sip_str rebase(sip_str s, const char *from, char *to)
{
	if (!s.len)
		return (sip_str){to, 0};
	return (sip_str){to + (s.p - from), s.len};
}

static bool is_client(const struct sip_txn *t)
{
	return t->kind == SIP_TXN_INVITE_CLIENT ||
	       t->kind == SIP_TXN_NON_INVITE_CLIENT;
}

static bool reliable(const struct sip_txn *t)
{
	return t->flags & SIP_TXN_RELIABLE;
}

bool sip_branch_is_rfc3261(sip_str branch)
{
	const size_t n = sizeof(SIP_BRANCH_COOKIE) - 1;

	return branch.len >= n && memcmp(branch.p, SIP_BRANCH_COOKIE, n) == 0;
}

/* ------------------------------------------------------------------------ */
/* Branches                                                                 */
/* ------------------------------------------------------------------------ */

int sip_branch_make(char *out, size_t cap, unsigned worker, uint64_t unique)
{
	int n;

	if (worker > 65535)
		return -EINVAL;
	n = snprintf(out, cap, SIP_BRANCH_COOKIE "%u.%016llx", worker,
		     (unsigned long long)unique);
	if (n < 0 || (size_t)n >= cap)
		return -ENOSPC;
	return n;
}

int sip_txn_table_branch(struct sip_txn_table *tab, char *out, size_t cap)
{
	/* mix64 is a bijection, so distinct counters give distinct ids. */
	uint64_t id = mix64(tab->branch_counter++ + tab->cfg.seed);

	return sip_branch_make(out, cap, tab->cfg.worker, id);
}

int sip_branch_worker(sip_str branch, unsigned *worker)
{
	const size_t c = sizeof(SIP_BRANCH_COOKIE) - 1;
	size_t i = c, digits = 0;
	unsigned w = 0;

	if (!sip_branch_is_rfc3261(branch))
		return -EINVAL;
	while (i < branch.len && branch.p[i] >= '0' && branch.p[i] <= '9') {
		w = w * 10 + (unsigned)(branch.p[i] - '0');
		if (++digits > 5)
			return -EINVAL;
		i++;
	}
	if (!digits || w > 65535 || i >= branch.len || branch.p[i] != '.')
		return -EINVAL;
	i++;
	if (branch.len - i != 16)
		return -EINVAL;
	for (; i < branch.len; i++) {
		char ch = branch.p[i];

		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
			return -EINVAL;
	}
	*worker = w;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Timer heap                                                               */
/* ------------------------------------------------------------------------ */

static bool before(const struct tslot *a, const struct tslot *b)
{
	return a->deadline < b->deadline ||
	       (a->deadline == b->deadline && a->seq < b->seq);
}

static void heap_set(struct sip_txn_table *tab, size_t i, struct tslot *s)
{
	tab->heap[i] = s;
	s->pos = (uint32_t)i;
}

static void sift_up(struct sip_txn_table *tab, size_t i)
{
	struct tslot *s = tab->heap[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (!before(s, tab->heap[parent]))
			break;
		heap_set(tab, i, tab->heap[parent]);
		i = parent;
	}
	heap_set(tab, i, s);
}

static void sift_down(struct sip_txn_table *tab, size_t i)
{
	struct tslot *s = tab->heap[i];

	for (;;) {
		size_t l = 2 * i + 1, m = i;
		const struct tslot *best = s;

		if (l < tab->nheap && before(tab->heap[l], best)) {
			m = l;
			best = tab->heap[l];
		}
		if (l + 1 < tab->nheap && before(tab->heap[l + 1], best))
			m = l + 1;
		if (m == i)
			break;
		heap_set(tab, i, tab->heap[m]);
		i = m;
	}
	heap_set(tab, i, s);
}

static void heap_remove(struct sip_txn_table *tab, struct tslot *s)
{
	size_t i = s->pos;
	struct tslot *last;

	if (s->pos == NOT_ARMED)
		return;
	s->pos = NOT_ARMED;
	last = tab->heap[--tab->nheap];
	if (i == tab->nheap)
		return;
	heap_set(tab, i, last);
	sift_up(tab, i);
	sift_down(tab, last->pos);
}

/* Room for every slot of @p n transactions: arming never allocates. */
static int heap_reserve(struct sip_txn_table *tab, size_t n)
{
	size_t need = n * NSLOTS, cap = tab->capheap ? tab->capheap : 64;
	struct tslot **h;

	if (need <= tab->capheap)
		return 0;
	while (cap < need)
		cap *= 2;
	h = realloc(tab->heap, cap * sizeof(struct tslot *));
	if (!h)
		return -ENOMEM;
	tab->heap = h;
	tab->capheap = cap;
	return 0;
}

static int slot_of(enum sip_txn_timer w)
{
	switch (w) {
	case SIP_TXN_TIMER_A:
	case SIP_TXN_TIMER_E:
	case SIP_TXN_TIMER_G:
		return SLOT_RETX;
	case SIP_TXN_TIMER_C:
		return SLOT_C;
	case SIP_TXN_TIMER_TRYING:
		return SLOT_TRYING;
	default:
		return SLOT_LIFE;
	}
}

static void arm(struct sip_txn *t, enum sip_txn_timer w, uint64_t deadline)
{
	struct sip_txn_table *tab = t->tab;
	struct tslot *s = &t->slots[slot_of(w)];

	heap_remove(tab, s);
	s->deadline = deadline;
	s->seq = tab->seq++;
	s->which = (uint8_t)w;
	s->txn = t;
	s->pos = (uint32_t)tab->nheap;
	tab->heap[tab->nheap++] = s;
	sift_up(tab, s->pos);
}

static void disarm(struct sip_txn *t, enum sip_txn_timer w)
{
	struct tslot *s = &t->slots[slot_of(w)];

	if (s->pos != NOT_ARMED && s->which == w)
		heap_remove(t->tab, s);
}

static void disarm_all(struct sip_txn *t)
{
	for (int i = 0; i < NSLOTS; i++)
		heap_remove(t->tab, &t->slots[i]);
}

uint64_t sip_txn_table_next_deadline(const struct sip_txn_table *tab)
{
	return tab->nheap ? tab->heap[0]->deadline : UINT64_MAX;
}

uint64_t sip_txn_deadline(const struct sip_txn *txn, enum sip_txn_timer timer)
{
	const struct tslot *s;

	if ((unsigned)timer >= SIP_TXN_TIMER__COUNT)
		return UINT64_MAX;
	s = &txn->slots[slot_of(timer)];
	if (s->pos == NOT_ARMED || s->which != timer)
		return UINT64_MAX;
	return s->deadline;
}

/* ------------------------------------------------------------------------ */
/* Hash table                                                               */
/* ------------------------------------------------------------------------ */

static uint64_t key_2543(sip_str call_id, uint32_t cseq)
{
	return fnv(FNV_BASIS, call_id) ^ mix64(cseq);
}

static uint64_t txn_hash(const struct sip_txn *t)
{
	if (t->cookie || is_client(t))
		return fnv(FNV_BASIS, t->branch);
	return key_2543(t->call_id, t->cseq);
}

static int rehash(struct sip_txn_table *tab, size_t n)
{
	struct sip_txn **b = calloc(n, sizeof(struct sip_txn *));

	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < tab->nbuckets; i++) {
		struct sip_txn *t = tab->buckets[i], *nx;

		for (; t; t = nx) {
			nx = t->hnext;
			t->hnext = b[t->hash & (n - 1)];
			b[t->hash & (n - 1)] = t;
		}
	}
	free(tab->buckets);
	tab->buckets = b;
	tab->nbuckets = n;
	return 0;
}

static void hash_insert(struct sip_txn_table *tab, struct sip_txn *t)
{
	size_t i = t->hash & (tab->nbuckets - 1);

	t->hnext = tab->buckets[i];
	tab->buckets[i] = t;
	t->hashed = true;
	tab->count++;
}

static void hash_remove(struct sip_txn *t)
{
	struct sip_txn_table *tab = t->tab;
	struct sip_txn **pp;

	if (!t->hashed)
		return;
	pp = &tab->buckets[t->hash & (tab->nbuckets - 1)];
	while (*pp && *pp != t)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = t->hnext;
	t->hnext = NULL;
	t->hashed = false;
	tab->count--;
}

/* ------------------------------------------------------------------------ */
/* Keys of a received message                                               */
/* ------------------------------------------------------------------------ */

struct msgkey {
	struct sip_via via;
	sip_str top_via;
	struct sip_cseq cseq;
	bool cookie;
	/* RFC 2543 fallback, requests only */
	sip_str call_id, from_tag, to_tag;
};

static int top_via(const struct sip_msg *m, sip_str *value, struct sip_via *v)
{
	return sip_msg_top_via(m, value, v) == 0 ? 0 : -EBADMSG;
}

static int addr_tag(const struct sip_msg *m, enum sip_hdr_id id, sip_str *tag)
{
	const struct sip_hdr *h = sip_msg_hdr(m, id);
	struct sip_addr a;

	*tag = SIP_STR_NULL;
	if (!h)
		return -EBADMSG;
	if (sip_addr_parse(h->value, &a) != 0)
		return -EBADMSG;
	*tag = a.tag;
	return 0;
}

static int msg_key(const struct sip_msg *m, struct msgkey *k)
{
	const struct sip_hdr *h;

	memset(k, 0, sizeof(*k));
	if (top_via(m, &k->top_via, &k->via) != 0)
		return -EBADMSG;
	h = sip_msg_hdr(m, SIP_HDR_CSEQ);
	if (!h || sip_cseq_parse(h->value, &k->cseq) != 0)
		return -EBADMSG;
	k->cookie = sip_branch_is_rfc3261(k->via.branch);
	if (!m->is_request || k->cookie)
		return 0;
	h = sip_msg_hdr(m, SIP_HDR_CALL_ID);
	if (!h)
		return -EBADMSG;
	k->call_id = h->value;
	if (addr_tag(m, SIP_HDR_FROM, &k->from_tag) != 0 ||
	    addr_tag(m, SIP_HDR_TO, &k->to_tag) != 0)
		return -EBADMSG;
	return 0;
}

static uint64_t msgkey_hash(const struct msgkey *k, bool request)
{
	if (!request || k->cookie)
		return fnv(FNV_BASIS, k->via.branch);
	return key_2543(k->call_id, k->cseq.num);
}

/* Request-URIs match when equal bytes or equivalent per §19.1.4. */
static bool ruri_eq(sip_str a, sip_str b)
{
	struct sip_uri ua, ub;

	if (str_eq(a, b))
		return true;
	return sip_uri_parse(a, &ua) == 0 && sip_uri_parse(b, &ub) == 0 &&
	       sip_uri_equal(&ua, &ub);
}

enum want { WANT_SAME, WANT_INVITE };

/* §17.2.3 for a request against server transaction @p t. */
static bool match_request(const struct sip_txn *t, const struct sip_msg *m,
			  const struct msgkey *k, enum want want)
{
	bool ack = m->method_id == SIP_METHOD_ACK;
	bool invite_only = ack || want == WANT_INVITE;

	if (is_client(t) || t->cookie != k->cookie)
		return false;
	if (invite_only && t->kind != SIP_TXN_INVITE_SERVER)
		return false;
	if (!invite_only && !str_eq(t->method, m->method))
		return false;
	if (k->cookie)
		return str_eq(t->branch, k->via.branch) &&
		       sip_str_ieq(t->host, k->via.host) &&
		       t->has_port == k->via.has_port && t->port == k->via.port;
	/* RFC 2543: Request-URI, tags, Call-ID, CSeq, top Via. */
	if (t->cseq != k->cseq.num || !str_eq(t->call_id, k->call_id) ||
	    !str_eq(t->from_tag, k->from_tag) ||
	    !sip_str_ieq(t->top_via, k->top_via) || !ruri_eq(t->ruri, m->ruri))
		return false;
	if (ack) /* the To tag of the final response we sent */
		return t->final_sent &&
		       str_eq((sip_str){t->resp + t->resp_tag_off,
					t->resp_tag_len},
			      k->to_tag);
	return str_eq(t->to_tag, k->to_tag);
}

/* §17.1.3 for a response against client transaction @p t. */
static bool match_response(const struct sip_txn *t, const struct msgkey *k)
{
	return is_client(t) && str_eq(t->branch, k->via.branch) &&
	       str_eq(t->method, k->cseq.method);
}

static struct sip_txn *lookup(struct sip_txn_table *tab,
			      const struct sip_msg *m, const struct msgkey *k,
			      enum want want)
{
	uint64_t h = msgkey_hash(k, m->is_request);
	struct sip_txn *t = tab->buckets[h & (tab->nbuckets - 1)];

	for (; t; t = t->hnext) {
		if (t->hash != h)
			continue;
		if (m->is_request ? match_request(t, m, k, want)
				  : match_response(t, k))
			return t;
	}
	return NULL;
}

struct sip_txn *sip_txn_table_match(struct sip_txn_table *tab,
				    const struct sip_msg *msg)
{
	struct msgkey k;

	if (msg_key(msg, &k) != 0)
		return NULL;
	return lookup(tab, msg, &k, WANT_SAME);
}

struct sip_txn *sip_txn_table_find_invite(struct sip_txn_table *tab,
					  const struct sip_msg *cancel)
{
	struct msgkey k;

	if (!cancel->is_request || cancel->method_id != SIP_METHOD_CANCEL ||
	    msg_key(cancel, &k) != 0)
		return NULL;
	return lookup(tab, cancel, &k, WANT_INVITE);
}

/* ------------------------------------------------------------------------ */
/* Lifetime                                                                 */
/* ------------------------------------------------------------------------ */

static void txn_free(struct sip_txn *t)
{
	struct sip_txn_table *tab = t->tab;

	if (t->prev)
		t->prev->next = t->next;
	else
		tab->all = t->next;
	if (t->next)
		t->next->prev = t->prev;
	free(t->ack);
	free(t->resp);
	free(t);
}

static void hold(struct sip_txn *t)
{
	t->busy++;
}

static void release(struct sip_txn *t)
{
	if (--t->busy == 0 && t->dead)
		txn_free(t);
}

static bool gone(const struct sip_txn *t)
{
	return t->dead || t->state == SIP_TXN_TERMINATED;
}

static void terminate(struct sip_txn *t)
{
	struct sip_txn_table *tab = t->tab;

	if (t->state == SIP_TXN_TERMINATED)
		return;
	t->state = SIP_TXN_TERMINATED;
	disarm_all(t);
	hash_remove(t);
	if (!t->dead && tab->cb.terminated)
		tab->cb.terminated(t, tab->arg);
	t->dead = true;
}

void sip_txn_destroy(struct sip_txn *txn)
{
	if (!txn || txn->dead)
		return;
	disarm_all(txn);
	hash_remove(txn);
	txn->state = SIP_TXN_TERMINATED;
	txn->dead = true;
	if (txn->busy == 0)
		txn_free(txn);
}

static void fail(struct sip_txn *t, int err)
{
	struct sip_txn_table *tab = t->tab;

	if (gone(t))
		return;
	if (tab->cb.transport_error)
		tab->cb.transport_error(t, err, tab->arg);
	terminate(t);
}

/* Send and report a failure; returns the send result. */
static int xmit(struct sip_txn *t, const char *buf, size_t len)
{
	struct sip_txn_table *tab = t->tab;
	int rc = tab->cb.send(t, buf, len, tab->arg);

	if (rc < 0)
		fail(t, rc);
	return rc < 0 ? rc : 0;
}

static void up_msg(struct sip_txn *t, const struct sip_msg *m)
{
	struct sip_txn_table *tab = t->tab;
	sip_txn_msg_fn *fn = m->is_request ? tab->cb.request : tab->cb.response;

	if (fn && !gone(t))
		fn(t, m, tab->arg);
}

static void timed_out(struct sip_txn *t, enum sip_txn_timer w)
{
	struct sip_txn_table *tab = t->tab;

	if (tab->cb.timeout && !gone(t))
		tab->cb.timeout(t, w, tab->arg);
}

/* ------------------------------------------------------------------------ */
/* Table                                                                    */
/* ------------------------------------------------------------------------ */

int sip_txn_table_create(const struct sip_txn_config *cfg,
			 const struct sip_txn_callbacks *cb, void *arg,
			 struct sip_txn_table **out)
{
	struct sip_txn_config def;
	struct sip_txn_table *tab;

	*out = NULL;
	if (!cfg) {
		sip_txn_config_default(&def);
		cfg = &def;
	}
	if (!cb || !cb->send || !cfg->t1 || !cfg->t2 || !cfg->t4 ||
	    cfg->t2 < cfg->t1 || cfg->timer_c <= TIMER_C_MIN ||
	    cfg->timer_d < TIMER_D_MIN || cfg->worker > 65535)
		return -EINVAL;
	tab = calloc(1, sizeof(*tab));
	if (!tab)
		return -ENOMEM;
	tab->cfg = *cfg;
	tab->cb = *cb;
	tab->arg = arg;
	tab->buckets = calloc(MIN_BUCKETS, sizeof(struct sip_txn *));
	if (!tab->buckets || heap_reserve(tab, MIN_BUCKETS) != 0) {
		free(tab->buckets);
		free(tab);
		return -ENOMEM;
	}
	tab->nbuckets = MIN_BUCKETS;
	*out = tab;
	return 0;
}

void sip_txn_table_destroy(struct sip_txn_table *tab)
{
	if (!tab)
		return;
	while (tab->all) {
		struct sip_txn *t = tab->all;

		tab->all = t->next;
		free(t->ack);
		free(t->resp);
		free(t);
	}
	free(tab->buckets);
	free(tab->heap);
	free(tab);
}

size_t sip_txn_table_count(const struct sip_txn_table *tab)
{
	return tab->count;
}

/* Allocate a transaction with @p blob bytes and link it (not hashed). */
static int txn_new(struct sip_txn_table *tab, enum sip_txn_kind kind,
		   size_t blob, unsigned flags, void *user,
		   struct sip_txn **out)
{
	struct sip_txn *t;

	if (tab->count + 1 > tab->nbuckets &&
	    rehash(tab, tab->nbuckets * 2) != 0)
		return -ENOMEM;
	if (heap_reserve(tab, tab->count + 1) != 0)
		return -ENOMEM;
	t = calloc(1, sizeof(*t) + blob);
	if (!t)
		return -ENOMEM;
	t->tab = tab;
	t->kind = kind;
	t->flags = flags;
	t->user = user;
	for (int i = 0; i < NSLOTS; i++)
		t->slots[i].pos = NOT_ARMED;
	t->next = tab->all;
	if (tab->all)
		tab->all->prev = t;
	tab->all = t;
	*out = t;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Client transactions (§17.1)                                              */
/* ------------------------------------------------------------------------ */

static int parse_own(struct sip_txn_table *tab, const char *buf, size_t len)
{
	struct sip_limits lim;

	sip_limits_default(&lim);
	if (len > lim.max_msg_size)
		lim.max_msg_size = len;
	lim.max_headers = SIP_MSG_MAX_HEADERS;
	return sip_msg_parse(&tab->scratch, buf, len, SIP_FRAMING_DATAGRAM,
			     &lim, NULL);
}

int sip_txn_client_create(struct sip_txn_table *tab, const char *buf,
			  size_t len, unsigned flags, void *user, uint64_t now,
			  struct sip_txn **out)
{
	const struct sip_msg *m = &tab->scratch;
	const struct sip_txn_config *c = &tab->cfg;
	struct sip_txn *t;
	struct msgkey k;
	int rc;

	*out = NULL;
	if (parse_own(tab, buf, len) != 0 || !m->is_request ||
	    m->method_id == SIP_METHOD_ACK || msg_key(m, &k) != 0 ||
	    !k.cookie || !str_eq(k.cseq.method, m->method))
		return -EINVAL;
	/* A response to it would match a live transaction. */
	for (t = tab->buckets[msgkey_hash(&k, false) & (tab->nbuckets - 1)]; t;
	     t = t->hnext)
		if (match_response(t, &k))
			return -EEXIST;
	rc = txn_new(tab,
		     m->method_id == SIP_METHOD_INVITE
			     ? SIP_TXN_INVITE_CLIENT
			     : SIP_TXN_NON_INVITE_CLIENT,
		     len, flags, user, &t);
	if (rc)
		return rc;
	memcpy(t->blob, buf, len);
	t->req = (sip_str){t->blob, len};
	t->branch = rebase(k.via.branch, buf, t->blob);
	t->method = rebase(m->method, buf, t->blob);
	t->method_id = m->method_id;
	t->cseq = k.cseq.num;
	t->cookie = true;
	t->hash = txn_hash(t);
	hash_insert(tab, t);

	if (t->kind == SIP_TXN_INVITE_CLIENT) {
		t->state = SIP_TXN_CALLING;
		if (!reliable(t))
			arm(t, SIP_TXN_TIMER_A, now + c->t1);
		arm(t, SIP_TXN_TIMER_B, now + 64ull * c->t1);
		if (flags & SIP_TXN_PROXY)
			arm(t, SIP_TXN_TIMER_C, now + c->timer_c);
	} else {
		t->state = SIP_TXN_TRYING;
		if (!reliable(t))
			arm(t, SIP_TXN_TIMER_E, now + c->t1);
		arm(t, SIP_TXN_TIMER_F, now + 64ull * c->t1);
	}
	t->retx = c->t1;
	hold(t);
	rc = xmit(t, t->req.p, t->req.len);
	if (!gone(t))
		*out = t;
	release(t);
	return rc;
}

/* §17.1.1.3: the ACK for a non-2xx final response, built once. */
static int build_ack(struct sip_txn *t, const struct sip_msg *resp)
{
	struct sip_txn_table *tab = t->tab;
	const struct sip_msg *req = &tab->scratch;
	const struct sip_hdr *to = sip_msg_hdr(resp, SIP_HDR_TO);
	const struct sip_hdr *h;
	struct sip_writer w;
	struct sip_via via;
	sip_str via_value;
	size_t cap;
	int n;

	if (t->ack)
		return 0;
	if (parse_own(tab, t->req.p, t->req.len) != 0 ||
	    top_via(req, &via_value, &via) != 0)
		return -EINVAL;
	cap = t->req.len + (to ? to->value.len : 0) + 128;
	t->ack = malloc(cap);
	if (!t->ack)
		return -ENOMEM;
	sip_wr_init(&w, t->ack, cap);
	sip_wr_request_line(&w, SIP_STR_LIT("ACK"), req->ruri);
	sip_wr_header(&w, "Via", via_value);
	h = sip_msg_hdr(req, SIP_HDR_MAX_FORWARDS);
	sip_wr_header(&w, "Max-Forwards", h ? h->value : SIP_STR_LIT("70"));
	for (h = sip_msg_hdr(req, SIP_HDR_ROUTE); h;
	     h = sip_msg_hdr_next(req, h))
		sip_wr_header(&w, "Route", h->value);
	if ((h = sip_msg_hdr(req, SIP_HDR_FROM)))
		sip_wr_header(&w, "From", h->value);
	if (to)
		sip_wr_header(&w, "To", to->value);
	if ((h = sip_msg_hdr(req, SIP_HDR_CALL_ID)))
		sip_wr_header(&w, "Call-ID", h->value);
	sip_wr_headerf(&w, "CSeq", "%lu ACK", (unsigned long)t->cseq);
	n = sip_wr_finish(&w, NULL, SIP_STR_NULL);
	if (n < 0) {
		free(t->ack);
		t->ack = NULL;
		return n;
	}
	t->ack_len = (size_t)n;
	return 0;
}

static void invite_client_recv(struct sip_txn *t, const struct sip_msg *m,
			       uint64_t now)
{
	const struct sip_txn_config *c = &t->tab->cfg;
	unsigned st = m->status;
	int rc;

	switch (t->state) {
	case SIP_TXN_CALLING:
	case SIP_TXN_PROCEEDING:
		if (st < 200) {
			if (t->state == SIP_TXN_CALLING) {
				disarm(t, SIP_TXN_TIMER_A);
				disarm(t, SIP_TXN_TIMER_B);
				t->state = SIP_TXN_PROCEEDING;
			}
			/* §16.7 step 2: 101-199 reset Timer C. */
			if ((t->flags & SIP_TXN_PROXY) && st > 100 &&
			    t->slots[SLOT_C].pos != NOT_ARMED)
				arm(t, SIP_TXN_TIMER_C, now + c->timer_c);
			up_msg(t, m);
			return;
		}
		disarm_all(t);
		if (st < 300) {
			t->state = SIP_TXN_ACCEPTED;
			arm(t, SIP_TXN_TIMER_M, now + 64ull * c->t1);
			up_msg(t, m);
			return;
		}
		t->state = SIP_TXN_COMPLETED;
		if (!reliable(t))
			arm(t, SIP_TXN_TIMER_D, now + c->timer_d);
		rc = build_ack(t, m);
		up_msg(t, m);
		if (gone(t))
			return;
		if (rc < 0) {
			fail(t, rc);
			return;
		}
		if (xmit(t, t->ack, t->ack_len) == 0 && reliable(t))
			terminate(t);
		return;
	case SIP_TXN_COMPLETED:
		/* Retransmitted final response: ACK again, absorb. */
		if (st >= 300 && t->ack)
			(void)xmit(t, t->ack, t->ack_len);
		return;
	case SIP_TXN_ACCEPTED:
		if (st >= 200 && st < 300)
			up_msg(t, m);
		return;
	default:
		return;
	}
}

static void non_invite_client_recv(struct sip_txn *t, const struct sip_msg *m,
				   uint64_t now)
{
	if (t->state != SIP_TXN_TRYING && t->state != SIP_TXN_PROCEEDING)
		return; /* Completed absorbs retransmissions */
	if (m->status < 200) {
		t->state = SIP_TXN_PROCEEDING;
		up_msg(t, m);
		return;
	}
	disarm_all(t);
	t->state = SIP_TXN_COMPLETED;
	if (!reliable(t))
		arm(t, SIP_TXN_TIMER_K, now + t->tab->cfg.t4);
	up_msg(t, m);
	if (!gone(t) && reliable(t))
		terminate(t);
}

/* ------------------------------------------------------------------------ */
/* Server transactions (§17.2)                                              */
/* ------------------------------------------------------------------------ */

static size_t put(char *blob, size_t off, sip_str s, sip_str *dst)
{
	if (s.len)
		memcpy(blob + off, s.p, s.len);
	*dst = (sip_str){blob + off, s.len};
	return off + s.len;
}

/* Keep @p len bytes as the response to retransmit (grows, never shrinks). */
static int keep_response(struct sip_txn *t, const char *buf, size_t len)
{
	if (len > t->resp_cap) {
		char *p = realloc(t->resp, len);

		if (!p)
			return -ENOMEM;
		t->resp = p;
		t->resp_cap = len;
	}
	memcpy(t->resp, buf, len);
	t->resp_len = len;
	return 0;
}

static int prepare_trying(struct sip_txn *t, const struct sip_msg *req)
{
	size_t cap = req->len + (size_t)16 * req->nhdrs + 128;
	struct sip_writer w;
	int n;

	t->resp = malloc(cap);
	if (!t->resp)
		return -ENOMEM;
	t->resp_cap = cap;
	sip_wr_init(&w, t->resp, cap);
	sip_wr_response_to(&w, req, 100, "Trying", SIP_STR_NULL);
	n = sip_wr_finish(&w, NULL, SIP_STR_NULL);
	if (n < 0)
		return n;
	t->resp_len = (size_t)n;
	return 0;
}

int sip_txn_server_create(struct sip_txn_table *tab, const struct sip_msg *msg,
			  unsigned flags, void *user, uint64_t now,
			  struct sip_txn **out)
{
	struct sip_txn *t;
	struct msgkey k;
	const struct sip_hdr *h;
	size_t blob, off = 0;
	int rc;

	*out = NULL;
	if (!msg->is_request || msg->method_id == SIP_METHOD_ACK ||
	    msg_key(msg, &k) != 0)
		return -EINVAL;
	if (k.cookie) {
		/* Fallback fields are kept for find_invite and logs alike. */
		h = sip_msg_hdr(msg, SIP_HDR_CALL_ID);
		k.call_id = h ? h->value : SIP_STR_NULL;
		(void)addr_tag(msg, SIP_HDR_FROM, &k.from_tag);
		(void)addr_tag(msg, SIP_HDR_TO, &k.to_tag);
	}
	if (lookup(tab, msg, &k, WANT_SAME))
		return -EEXIST;
	blob = k.via.branch.len + msg->method.len + k.via.host.len +
	       msg->ruri.len + k.call_id.len + k.from_tag.len + k.to_tag.len +
	       k.top_via.len;
	rc = txn_new(tab,
		     msg->method_id == SIP_METHOD_INVITE
			     ? SIP_TXN_INVITE_SERVER
			     : SIP_TXN_NON_INVITE_SERVER,
		     blob, flags, user, &t);
	if (rc)
		return rc;
	off = put(t->blob, off, k.via.branch, &t->branch);
	off = put(t->blob, off, msg->method, &t->method);
	off = put(t->blob, off, k.via.host, &t->host);
	off = put(t->blob, off, msg->ruri, &t->ruri);
	off = put(t->blob, off, k.call_id, &t->call_id);
	off = put(t->blob, off, k.from_tag, &t->from_tag);
	off = put(t->blob, off, k.to_tag, &t->to_tag);
	(void)put(t->blob, off, k.top_via, &t->top_via);
	t->method_id = msg->method_id;
	t->has_port = k.via.has_port;
	t->port = k.via.port;
	t->cseq = k.cseq.num;
	t->cookie = k.cookie;
	t->retx = tab->cfg.t1;

	if (t->kind == SIP_TXN_INVITE_SERVER) {
		t->state = SIP_TXN_PROCEEDING;
		rc = prepare_trying(t, msg);
		if (rc) {
			txn_free(t);
			return rc;
		}
	} else {
		t->state = SIP_TXN_TRYING;
	}
	t->hash = txn_hash(t);
	hash_insert(tab, t);
	*out = t;
	hold(t);
	if (t->kind == SIP_TXN_INVITE_SERVER) {
		if (flags & SIP_TXN_PROXY) {
			t->trying_sent = true;
			(void)xmit(t, t->resp, t->resp_len);
		} else {
			arm(t, SIP_TXN_TIMER_TRYING,
			    now + tab->cfg.trying_delay);
		}
	}
	up_msg(t, msg);
	if (gone(t))
		*out = NULL;
	release(t);
	return 0;
}

static void resend_response(struct sip_txn *t)
{
	if (t->resp_len)
		(void)xmit(t, t->resp, t->resp_len);
}

static void invite_server_recv(struct sip_txn *t, const struct sip_msg *m,
			       uint64_t now)
{
	const struct sip_txn_config *c = &t->tab->cfg;

	if (m->method_id != SIP_METHOD_ACK) {
		/* A retransmission of the INVITE. */
		if (t->state == SIP_TXN_PROCEEDING) {
			if (!t->responded && !t->trying_sent) {
				disarm(t, SIP_TXN_TIMER_TRYING);
				t->trying_sent = true;
			}
			if (t->responded || t->trying_sent)
				resend_response(t);
		} else if (t->state == SIP_TXN_COMPLETED) {
			resend_response(t);
		}
		return; /* Confirmed and Accepted absorb it */
	}
	switch (t->state) {
	case SIP_TXN_COMPLETED:
		disarm(t, SIP_TXN_TIMER_G);
		disarm(t, SIP_TXN_TIMER_H);
		t->state = SIP_TXN_CONFIRMED;
		if (reliable(t))
			terminate(t);
		else
			arm(t, SIP_TXN_TIMER_I, now + c->t4);
		return;
	case SIP_TXN_ACCEPTED:
		up_msg(t, m); /* RFC 6026 §7.1: the ACK for the 2xx */
		return;
	default:
		return;
	}
}

static void non_invite_server_recv(struct sip_txn *t)
{
	if (t->state == SIP_TXN_PROCEEDING || t->state == SIP_TXN_COMPLETED)
		resend_response(t);
}

/* Record where the To tag of the response in t->resp is. */
static void note_to_tag(struct sip_txn *t, const struct sip_msg *m,
			const char *buf)
{
	const struct sip_hdr *h = sip_msg_hdr(m, SIP_HDR_TO);
	struct sip_addr a;

	t->final_sent = true;
	t->resp_tag_off = 0;
	t->resp_tag_len = 0;
	if (h && sip_addr_parse(h->value, &a) == 0 && a.tag.len) {
		t->resp_tag_off = (size_t)(a.tag.p - buf);
		t->resp_tag_len = a.tag.len;
	}
}

static int invite_server_respond(struct sip_txn *t, const struct sip_msg *m,
				 const char *buf, size_t len, uint64_t now)
{
	const struct sip_txn_config *c = &t->tab->cfg;
	unsigned st = m->status;
	int rc;

	if (t->state == SIP_TXN_ACCEPTED) {
		/* RFC 6026: the TU's 2xx retransmissions go out unchanged. */
		if (st < 200 || st >= 300)
			return -EPROTO;
		return xmit(t, buf, len);
	}
	if (t->state != SIP_TXN_PROCEEDING)
		return -EPROTO;
	rc = keep_response(t, buf, len);
	if (rc)
		return rc;
	t->responded = true;
	disarm(t, SIP_TXN_TIMER_TRYING);
	if (st >= 200) {
		note_to_tag(t, m, buf);
		if (st < 300) {
			t->state = SIP_TXN_ACCEPTED;
			arm(t, SIP_TXN_TIMER_L, now + 64ull * c->t1);
		} else {
			t->state = SIP_TXN_COMPLETED;
			t->retx = c->t1;
			if (!reliable(t))
				arm(t, SIP_TXN_TIMER_G, now + c->t1);
			arm(t, SIP_TXN_TIMER_H, now + 64ull * c->t1);
		}
	}
	return xmit(t, t->resp, t->resp_len);
}

static int non_invite_server_respond(struct sip_txn *t, const struct sip_msg *m,
				     const char *buf, size_t len, uint64_t now)
{
	int rc;

	if (t->state != SIP_TXN_TRYING && t->state != SIP_TXN_PROCEEDING)
		return -EPROTO;
	rc = keep_response(t, buf, len);
	if (rc)
		return rc;
	t->responded = true;
	if (m->status < 200) {
		t->state = SIP_TXN_PROCEEDING;
		return xmit(t, t->resp, t->resp_len);
	}
	t->state = SIP_TXN_COMPLETED;
	if (!reliable(t))
		arm(t, SIP_TXN_TIMER_J, now + 64ull * t->tab->cfg.t1);
	rc = xmit(t, t->resp, t->resp_len);
	if (rc == 0 && reliable(t))
		terminate(t);
	return rc;
}

int sip_txn_respond(struct sip_txn *txn, const char *buf, size_t len,
		    uint64_t now)
{
	struct sip_txn_table *tab = txn->tab;
	const struct sip_msg *m = &tab->scratch;
	const struct sip_hdr *h;
	struct sip_cseq cs;
	int rc;

	if (gone(txn) || is_client(txn))
		return -EPROTO;
	if (parse_own(tab, buf, len) != 0 || m->is_request || m->status < 100 ||
	    m->status > 699 || !(h = sip_msg_hdr(m, SIP_HDR_CSEQ)) ||
	    sip_cseq_parse(h->value, &cs) != 0 ||
	    !str_eq(cs.method, txn->method))
		return -EINVAL;
	hold(txn);
	if (txn->kind == SIP_TXN_INVITE_SERVER)
		rc = invite_server_respond(txn, m, buf, len, now);
	else
		rc = non_invite_server_respond(txn, m, buf, len, now);
	release(txn);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Events                                                                   */
/* ------------------------------------------------------------------------ */

int sip_txn_table_recv(struct sip_txn_table *tab, const struct sip_msg *msg,
		       uint64_t now, struct sip_txn **out)
{
	struct sip_txn *t;
	struct msgkey k;

	if (out)
		*out = NULL;
	if (msg_key(msg, &k) != 0 ||
	    (!msg->is_request && (msg->status < 100 || msg->status > 699)))
		return -EBADMSG;
	t = lookup(tab, msg, &k, WANT_SAME);
	if (!t)
		return 0;
	if (out)
		*out = t;
	hold(t);
	switch (t->kind) {
	case SIP_TXN_INVITE_CLIENT:
		invite_client_recv(t, msg, now);
		break;
	case SIP_TXN_NON_INVITE_CLIENT:
		non_invite_client_recv(t, msg, now);
		break;
	case SIP_TXN_INVITE_SERVER:
		invite_server_recv(t, msg, now);
		break;
	case SIP_TXN_NON_INVITE_SERVER:
		non_invite_server_recv(t);
		break;
	}
	if (out && gone(t))
		*out = NULL;
	release(t);
	return 1;
}

void sip_txn_transport_error(struct sip_txn *txn, int err, uint64_t now)
{
	(void)now;
	hold(txn);
	fail(txn, err < 0 ? err : -EIO);
	release(txn);
}

static void fire(struct sip_txn *t, enum sip_txn_timer w, uint64_t now)
{
	const struct sip_txn_config *c = &t->tab->cfg;

	switch (w) {
	case SIP_TXN_TIMER_A:
		t->retx *= 2;
		arm(t, w, now + t->retx);
		(void)xmit(t, t->req.p, t->req.len);
		break;
	case SIP_TXN_TIMER_E:
		/* §17.1.2.2: doubling up to T2 in Trying, T2 in Proceeding. */
		t->retx = t->state == SIP_TXN_PROCEEDING ? c->t2
			  : t->retx * 2 < c->t2		 ? t->retx * 2
							 : c->t2;
		arm(t, w, now + t->retx);
		(void)xmit(t, t->req.p, t->req.len);
		break;
	case SIP_TXN_TIMER_G:
		t->retx = t->retx * 2 < c->t2 ? t->retx * 2 : c->t2;
		arm(t, w, now + t->retx);
		resend_response(t);
		break;
	case SIP_TXN_TIMER_C:
		timed_out(t, w);
		if (gone(t))
			break;
		if (t->state == SIP_TXN_CALLING) {
			/* §16.8: as if a 408 arrived. */
			terminate(t);
		} else if (t->state == SIP_TXN_PROCEEDING) {
			/* The TU cancels (§16.8); give up 64*T1 later if no
			 * final response comes (§9.1). */
			arm(t, SIP_TXN_TIMER_B, now + 64ull * c->t1);
		}
		break;
	case SIP_TXN_TIMER_B:
	case SIP_TXN_TIMER_F:
	case SIP_TXN_TIMER_H:
		timed_out(t, w);
		terminate(t);
		break;
	case SIP_TXN_TIMER_TRYING:
		if (!t->responded && !t->trying_sent) {
			t->trying_sent = true;
			resend_response(t);
		}
		break;
	default: /* D, I, J, K, L, M */
		terminate(t);
		break;
	}
}

void sip_txn_table_expire(struct sip_txn_table *tab, uint64_t now)
{
	while (tab->nheap && tab->heap[0]->deadline <= now) {
		struct tslot *s = tab->heap[0];
		struct sip_txn *t = s->txn;

		heap_remove(tab, s);
		hold(t);
		if (!gone(t))
			fire(t, (enum sip_txn_timer)s->which, now);
		release(t);
	}
}

/* ------------------------------------------------------------------------ */
/* Accessors                                                                */
/* ------------------------------------------------------------------------ */

enum sip_txn_kind sip_txn_kind(const struct sip_txn *txn)
{
	return txn->kind;
}

enum sip_txn_state sip_txn_state(const struct sip_txn *txn)
{
	return txn->state;
}

void *sip_txn_user(const struct sip_txn *txn)
{
	return txn->user;
}

void sip_txn_set_user(struct sip_txn *txn, void *user)
{
	txn->user = user;
}

sip_str sip_txn_branch(const struct sip_txn *txn)
{
	return txn->branch;
}

sip_str sip_txn_method(const struct sip_txn *txn)
{
	return txn->method;
}

const char *sip_txn_state_name(enum sip_txn_state state)
{
	static const char *const names[] = {
		"Calling",   "Trying",	 "Proceeding", "Completed",
		"Confirmed", "Accepted", "Terminated",
	};

	if ((unsigned)state >= sizeof(names) / sizeof(names[0]))
		return "?";
	return names[state];
}

const char *sip_txn_timer_name(enum sip_txn_timer timer)
{
	static const char *const names[] = {
		"A", "B", "C", "D", "E", "F", "G",
		"H", "I", "J", "K", "L", "M", "Trying",
	};

	if ((unsigned)timer >= sizeof(names) / sizeof(names[0]))
		return "?";
	return names[timer];
}
