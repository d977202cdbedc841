/**
 * @file registrar.c  REGISTER processing (RFC 3261 §10.3, RFC 3327,
 * RFC 5626 §6) on the location store. See registrar.h for the steps.
 */
#include "registrar/registrar.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct registrar {
	struct loc_store *store;
	struct sip_userdb *userdb;
	struct sip_digest *digest;
	struct sip_authlimit *limit;
	bool durable;
	/* What registrar_reconfigure() changes while workers run: read under
	 * the read lock (domains for each request, the expiry limits copied
	 * into the request once), written under the write lock. */
	pthread_rwlock_t lock;
	char **domains;
	size_t ndomains;
	uint32_t default_expires;
	uint32_t min_expires;
	uint32_t max_expires;
};

struct settings {
	char **domains;
	size_t ndomains;
	uint32_t default_expires, min_expires, max_expires;
};

/* ------------------------------------------------------------------------ */
/* Life                                                                     */
/* ------------------------------------------------------------------------ */

static void free_domains(char **domains, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(domains[i]);
	free((void *)domains);
}

void registrar_destroy(struct registrar *reg)
{
	if (!reg)
		return;
	free_domains(reg->domains, reg->ndomains);
	pthread_rwlock_destroy(&reg->lock);
	free(reg);
}

/* The changeable part of @p cfg, checked and copied into @p s. */
static int settings_make(const struct registrar_config *cfg, struct settings *s)
{
	size_t n = 0;

	memset(s, 0, sizeof(*s));
	s->default_expires = cfg->default_expires ? cfg->default_expires
						  : REGISTRAR_DEFAULT_EXPIRES;
	s->min_expires = cfg->min_expires ? cfg->min_expires
					  : REGISTRAR_DEFAULT_MIN_EXPIRES;
	s->max_expires = cfg->max_expires ? cfg->max_expires
					  : REGISTRAR_DEFAULT_MAX_EXPIRES;
	if (s->min_expires > s->max_expires)
		return -EINVAL;
	while (cfg->domains && cfg->domains[n])
		n++;
	if (!n)
		return 0;
	s->domains = calloc(n, sizeof(char *));
	if (!s->domains)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		s->domains[i] = strdup(cfg->domains[i]);
		if (!s->domains[i]) {
			free_domains(s->domains, i);
			return -ENOMEM;
		}
	}
	s->ndomains = n;
	return 0;
}

int registrar_create(const struct registrar_config *cfg, struct registrar **out)
{
	struct registrar *reg;
	struct settings s;
	int r;

	if (!cfg || !cfg->store)
		return -EINVAL;
	r = settings_make(cfg, &s);
	if (r < 0)
		return r;
	reg = calloc(1, sizeof(*reg));
	if (!reg) {
		free_domains(s.domains, s.ndomains);
		return -ENOMEM;
	}
	reg->store = cfg->store;
	reg->userdb = cfg->userdb;
	reg->digest = cfg->digest;
	reg->limit = cfg->limit;
	reg->durable = cfg->durable;
	reg->domains = s.domains;
	reg->ndomains = s.ndomains;
	reg->default_expires = s.default_expires;
	reg->min_expires = s.min_expires;
	reg->max_expires = s.max_expires;
	pthread_rwlock_init(&reg->lock, NULL);
	*out = reg;
	return 0;
}

int registrar_reconfigure(struct registrar *reg,
			  const struct registrar_config *cfg)
{
	struct settings s;
	char **old;
	size_t nold;
	int r = settings_make(cfg, &s);

	if (r < 0)
		return r;
	pthread_rwlock_wrlock(&reg->lock);
	old = reg->domains;
	nold = reg->ndomains;
	reg->domains = s.domains;
	reg->ndomains = s.ndomains;
	reg->default_expires = s.default_expires;
	reg->min_expires = s.min_expires;
	reg->max_expires = s.max_expires;
	pthread_rwlock_unlock(&reg->lock);
	free_domains(old, nold);
	return 0;
}

bool registrar_serves(struct registrar *reg, sip_str domain)
{
	bool found = false;

	pthread_rwlock_rdlock(&reg->lock);
	for (size_t i = 0; i < reg->ndomains && !found; i++)
		found = sip_str_ieq_c(domain, reg->domains[i]);
	pthread_rwlock_unlock(&reg->lock);
	if (found)
		return true;
	return reg->userdb && sip_userdb_domain_exists(reg->userdb, domain) > 0;
}

/* ------------------------------------------------------------------------ */
/* Copies of the bindings of an AOR (to check and to undo)                  */
/* ------------------------------------------------------------------------ */

struct held {
	struct loc_binding b;
	struct sip_uri uri; /* parsed contact, slices into mem */
	char *mem;
};

struct snapshot {
	struct held v[REGISTRAR_MAX_CONTACTS * 2];
	unsigned n;
	int err;
};

static void put(char **p, sip_str *s)
{
	memcpy(*p, s->p, s->len);
	s->p = *p;
	*p += s->len;
}

static int snap_cb(const struct loc_binding *b, void *arg)
{
	struct snapshot *s = arg;
	struct held *h;
	size_t total;
	char *p;

	if (s->n >= sizeof(s->v) / sizeof(s->v[0])) {
		s->err = -E2BIG;
		return 1;
	}
	h = &s->v[s->n];
	h->b = *b;
	total = b->aor.len + b->contact.len + b->call_id.len + b->path.len +
		b->instance.len + b->source.len + b->user_agent.len + 1;
	h->mem = malloc(total);
	if (!h->mem) {
		s->err = -ENOMEM;
		return 1;
	}
	p = h->mem;
	put(&p, &h->b.aor);
	put(&p, &h->b.contact);
	put(&p, &h->b.call_id);
	put(&p, &h->b.path);
	put(&p, &h->b.instance);
	put(&p, &h->b.source);
	put(&p, &h->b.user_agent);
	if (sip_uri_parse(h->b.contact, &h->uri) < 0)
		memset(&h->uri, 0, sizeof(h->uri));
	s->n++;
	return 0;
}

static void snap_free(struct snapshot *s)
{
	for (unsigned i = 0; i < s->n; i++)
		free(s->v[i].mem);
	s->n = 0;
}

static int snap_take(struct registrar *reg, sip_str aor, int64_t now,
		     struct snapshot *s)
{
	s->n = 0;
	s->err = 0;
	loc_store_lookup(reg->store, aor, now, snap_cb, s);
	if (s->err) {
		snap_free(s);
		return s->err;
	}
	return 0;
}

/* ------------------------------------------------------------------------ */
/* The contacts of the request                                              */
/* ------------------------------------------------------------------------ */

struct entry {
	sip_str uri_text;
	struct sip_uri uri;
	uint32_t expires; /* seconds from now, 0 removes */
	uint16_t q;
	sip_str instance;
	uint32_t reg_id;
	bool skip;    /* a later value of the same request replaces it */
	int prev;     /* index in the snapshot of the binding it touches */
	bool applied; /* the store was changed for it */
};

/* Cleared up to `aor` when a request starts; the buffers and entries are
 * written before they are read. */
struct request {
	sip_str aor_s;
	sip_str call_id;
	uint32_t cseq;
	sip_str path; /* the Path values joined, or empty */
	sip_str user_agent;
	bool star;
	bool has_expires_hdr;
	uint32_t expires_hdr;
	bool path_supported;
	bool outbound;
	/* the registrar's limits when the request arrived */
	uint32_t default_expires, min_expires, max_expires;
	unsigned n;
	char aor[512];
	char path_buf[4096];
	struct entry c[REGISTRAR_MAX_CONTACTS];
};

static bool option_tag(const struct sip_msg *m, enum sip_hdr_id id,
		       const char *tag)
{
	for (const struct sip_hdr *h = sip_msg_hdr(m, id); h;
	     h = sip_msg_hdr_next(m, h)) {
		sip_str cur = h->value, item;

		while (sip_list_next(&cur, &item) > 0)
			if (sip_str_ieq_c(item, tag))
				return true;
	}
	return false;
}

static bool same_binding(const struct entry *e, const struct loc_binding *b,
			 const struct sip_uri *buri)
{
	if (e->instance.len && e->reg_id)
		return b->reg_id == e->reg_id &&
		       sip_str_eq(b->instance, e->instance);
	return sip_uri_equal(&e->uri, buri);
}

static bool same_entry(const struct entry *a, const struct entry *b)
{
	if (a->instance.len && a->reg_id)
		return b->reg_id == a->reg_id &&
		       sip_str_eq(b->instance, a->instance);
	return !(b->instance.len && b->reg_id) &&
	       sip_uri_equal(&a->uri, &b->uri);
}

/* Join the Path header values into one comma-separated value. */
static int collect_path(const struct sip_msg *m, struct request *rq)
{
	size_t len = 0;

	for (const struct sip_hdr *h = sip_msg_hdr(m, SIP_HDR_PATH); h;
	     h = sip_msg_hdr_next(m, h)) {
		size_t need = h->value.len + (len ? 2 : 0);

		if (len + need > sizeof(rq->path_buf))
			return -E2BIG;
		if (len) {
			memcpy(rq->path_buf + len, ", ", 2);
			len += 2;
		}
		memcpy(rq->path_buf + len, h->value.p, h->value.len);
		len += h->value.len;
	}
	rq->path = (sip_str){rq->path_buf, len};
	return 0;
}

/* Why parse_contacts() refused the request. */
struct refusal {
	unsigned status;
	const char *reason;
};

static int refuse(struct refusal *rf, unsigned status, const char *reason)
{
	rf->status = status;
	rf->reason = reason;
	return -EINVAL;
}

static int parse_entry(struct request *rq, const struct sip_contact *c,
		       struct refusal *rf)
{
	struct entry *e = &rq->c[rq->n];
	sip_str v;
	int r;

	memset(e, 0, sizeof(*e));
	e->prev = -1;
	e->uri_text = c->addr.uri_text;
	e->uri = c->addr.uri;
	e->q = c->has_q ? c->q : 1000;
	if (c->has_expires)
		e->expires = c->expires;
	else if (rq->has_expires_hdr)
		e->expires = rq->expires_hdr;
	else
		e->expires = rq->default_expires;
	if (e->expires > rq->max_expires)
		e->expires = rq->max_expires;
	if (sip_param_find(c->addr.params, "+sip.instance", &v) > 0 && v.len)
		e->instance = v;
	r = sip_param_find(c->addr.params, "reg-id", &v);
	if (r > 0) {
		if (sip_uint_parse(v, UINT32_MAX, &e->reg_id) < 0 ||
		    e->reg_id == 0)
			return refuse(rf, 400, "Bad reg-id");
		/* RFC 5626 §6: reg-id without +sip.instance is ignored */
		if (!e->instance.len)
			e->reg_id = 0;
		else
			rq->outbound = true;
	}
	rq->n++;
	return 0;
}

static int parse_contacts(const struct sip_msg *m, struct request *rq,
			  struct refusal *rf)
{
	const struct sip_hdr *h = sip_msg_hdr(m, SIP_HDR_EXPIRES);
	unsigned values = 0;

	if (h) {
		if (sip_uint_parse(h->value, UINT32_MAX, &rq->expires_hdr) < 0)
			return refuse(rf, 400, "Bad Expires");
		rq->has_expires_hdr = true;
	}
	for (h = sip_msg_hdr(m, SIP_HDR_CONTACT); h;
	     h = sip_msg_hdr_next(m, h)) {
		sip_str cur = h->value, item;
		int r;

		while ((r = sip_list_next(&cur, &item)) > 0) {
			struct sip_contact c;

			values++;
			if (sip_contact_parse(item, &c) < 0)
				return refuse(rf, 400, "Bad Contact");
			if (c.star) {
				rq->star = true;
				continue;
			}
			if (rq->n >= REGISTRAR_MAX_CONTACTS)
				return refuse(rf, 403, "Too Many Contacts");
			if (parse_entry(rq, &c, rf) < 0)
				return -EINVAL;
		}
		if (r < 0)
			return refuse(rf, 400, "Bad Contact");
	}
	if (rq->star) {
		/* §10.3 step 6 */
		if (values != 1 || !rq->has_expires_hdr || rq->expires_hdr)
			return refuse(rf, 400,
				      "Contact * needs Expires: 0 and no "
				      "other Contact");
		return 0;
	}
	for (unsigned i = 0; i < rq->n; i++) {
		for (unsigned j = i + 1; j < rq->n; j++)
			if (same_entry(&rq->c[i], &rq->c[j]))
				rq->c[i].skip = true;
	}
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Applying the request                                                     */
/* ------------------------------------------------------------------------ */

static void fill_binding(const struct request *rq, const struct entry *e,
			 const struct registrar_ctx *ctx, struct loc_binding *b)
{
	memset(b, 0, sizeof(*b));
	b->aor = rq->aor_s;
	b->contact = e->uri_text;
	b->q = e->q;
	b->expires = ctx->now + (int64_t)e->expires;
	b->call_id = rq->call_id;
	b->cseq = rq->cseq;
	b->path = rq->path;
	b->instance = e->instance;
	b->reg_id = e->reg_id;
	b->transport = ctx->transport;
	b->source = sip_str_c(ctx->source);
	b->conn_id = ctx->conn_id;
	b->user_agent = rq->user_agent;
}

/* The sequence numbers of the changes a request queued. */
struct seqs {
	uint64_t first, last;
};

static void seq_note(struct seqs *q, uint64_t seq)
{
	if (!seq)
		return;
	if (!q->first || seq < q->first)
		q->first = seq;
	if (seq > q->last)
		q->last = seq;
}

/* Put the bindings back as the snapshot had them. */
static void undo(struct registrar *reg, struct request *rq,
		 const struct snapshot *s)
{
	for (unsigned i = rq->n; i-- > 0;) {
		const struct entry *e = &rq->c[i];

		if (!e->applied)
			continue;
		if (e->expires)
			loc_store_remove(reg->store, rq->aor_s, e->uri_text,
					 SIP_STR_NULL, 0);
		if (e->prev >= 0)
			loc_store_save(reg->store, &s->v[e->prev].b);
	}
}

/* §10.3 steps 6 and 7 for the contacts. @return 0 or a negative errno
 * (-ESTALE for the ordering rule). */
static int apply(struct registrar *reg, struct request *rq,
		 const struct registrar_ctx *ctx, struct seqs *q)
{
	struct snapshot *s;
	uint64_t seq = 0;
	int r = 0;

	if (rq->star) {
		r = loc_store_remove_aor_seq(reg->store, rq->aor_s, rq->call_id,
					     rq->cseq, &seq);
		seq_note(q, seq);
		return r < 0 ? r : 0;
	}
	/* One contact: the store's own check of the ordering rule and its
	 * single change are already all or nothing — no copy to undo from. */
	unsigned live = 0, last = 0;
	for (unsigned i = 0; i < rq->n; i++)
		if (!rq->c[i].skip) {
			live++;
			last = i;
		}
	if (live == 0)
		return 0; /* a query */
	if (live == 1) {
		struct entry *e = &rq->c[last];
		struct loc_binding b;

		if (e->expires == 0) {
			r = loc_store_remove_seq(reg->store, rq->aor_s,
						 e->uri_text, rq->call_id,
						 rq->cseq, &seq);
			seq_note(q, seq);
			return r == -ENOENT ? 0 : r;
		}
		fill_binding(rq, e, ctx, &b);
		r = loc_store_save_seq(reg->store, &b, &seq);
		seq_note(q, seq);
		return r < 0 ? r : 0;
	}
	s = malloc(sizeof(*s));
	if (!s)
		return -ENOMEM;
	r = snap_take(reg, rq->aor_s, ctx->now, s);
	if (r < 0) {
		free(s);
		return r;
	}
	/* Check every contact before changing anything. */
	for (unsigned i = 0; i < rq->n && r == 0; i++) {
		struct entry *e = &rq->c[i];

		if (e->skip)
			continue;
		for (unsigned k = 0; k < s->n; k++) {
			if (!same_binding(e, &s->v[k].b, &s->v[k].uri))
				continue;
			e->prev = (int)k;
			if (loc_order_check(s->v[k].b.call_id, s->v[k].b.cseq,
					    rq->call_id,
					    rq->cseq) == LOC_ORDER_STALE)
				r = -ESTALE;
			break;
		}
	}
	for (unsigned i = 0; i < rq->n && r == 0; i++) {
		struct entry *e = &rq->c[i];
		struct loc_binding b;

		if (e->skip)
			continue;
		if (e->expires == 0) {
			r = loc_store_remove_seq(reg->store, rq->aor_s,
						 e->uri_text, rq->call_id,
						 rq->cseq, &seq);
			seq_note(q, seq);
			if (r == -ENOENT)
				r = 0;
			else if (r == 0)
				e->applied = true;
			continue;
		}
		fill_binding(rq, e, ctx, &b);
		r = loc_store_save_seq(reg->store, &b, &seq);
		seq_note(q, seq);
		if (r >= 0) {
			e->applied = true;
			r = 0;
		}
	}
	if (r < 0)
		undo(reg, rq, s);
	snap_free(s);
	free(s);
	return r;
}

/* ------------------------------------------------------------------------ */
/* Responses                                                                */
/* ------------------------------------------------------------------------ */

static void begin(struct sip_writer *w, const struct sip_msg *m,
		  const struct registrar_ctx *ctx, unsigned status,
		  const char *reason, struct registrar_result *res)
{
	if (!reason)
		reason = sip_reason_phrase(status);
	res->status = status;
	res->reason = reason;
	sip_wr_response_to_rcvd(w, m, status, reason, ctx->to_tag, ctx->rcvd);
}

static int finish(struct sip_writer *w, struct registrar_result *res)
{
	int n;

	sip_wr_header(w, "Server", SIP_STR_LIT("sipd"));
	n = sip_wr_finish(w, NULL, SIP_STR_NULL);
	if (n < 0)
		return -ENOSPC;
	res->len = (size_t)n;
	return 0;
}

static int answer(struct sip_writer *w, const struct sip_msg *m,
		  const struct registrar_ctx *ctx, unsigned status,
		  const char *reason, struct registrar_result *res)
{
	begin(w, m, ctx, status, reason, res);
	return finish(w, res);
}

/* A header value built in a caller's buffer, without printf: the 200
 * lists every binding, so this is on the path of every REGISTER. */
struct text {
	char *p;
	size_t n, cap;
	bool over;
};

static void tx_s(struct text *t, sip_str s)
{
	if (s.len > t->cap - t->n) {
		t->over = true;
		return;
	}
	memcpy(t->p + t->n, s.p, s.len);
	t->n += s.len;
}

/* @p v in decimal, at least @p width digits (zero-padded). */
static void tx_u(struct text *t, uint64_t v, unsigned width)
{
	char d[24];
	unsigned k = sizeof(d);

	do {
		d[--k] = (char)('0' + v % 10);
		v /= 10;
	} while (v || sizeof(d) - k < width);
	tx_s(t, (sip_str){d + k, sizeof(d) - k});
}

struct listing {
	struct sip_writer *w;
	int64_t now;
	unsigned n;
};

static int list_cb(const struct loc_binding *b, void *arg)
{
	struct listing *l = arg;
	int64_t left = b->expires - l->now;
	char buf[LOC_MAX_FIELD * 2 + 96];
	struct text t = {buf, 0, sizeof(buf), false};

	tx_s(&t, SIP_STR_LIT("<"));
	tx_s(&t, b->contact);
	tx_s(&t, SIP_STR_LIT(">;expires="));
	tx_u(&t, left > 0 ? (uint64_t)left : 0, 1);
	if (b->q != 1000) {
		tx_s(&t, SIP_STR_LIT(";q="));
		tx_u(&t, b->q / 1000u, 1);
		tx_s(&t, SIP_STR_LIT("."));
		tx_u(&t, b->q % 1000u, 3);
	}
	if (b->instance.len) {
		tx_s(&t, SIP_STR_LIT(";+sip.instance="));
		tx_s(&t, b->instance);
	}
	if (b->reg_id) {
		tx_s(&t, SIP_STR_LIT(";reg-id="));
		tx_u(&t, b->reg_id, 1);
	}
	if (t.over)
		l->w->overflow = true;
	else
		sip_wr_header(l->w, "Contact", (sip_str){buf, t.n});
	l->n++;
	return 0;
}

/* RFC 3261 §20.17 (RFC 1123 date, GMT). */
static void write_date(struct sip_writer *w, int64_t now)
{
	static const char days[] = "SunMonTueWedThuFriSat";
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	time_t tt = (time_t)now;
	struct tm tm;
	char buf[40];
	struct text t = {buf, 0, sizeof(buf), false};

	if (!gmtime_r(&tt, &tm) || tm.tm_wday < 0 || tm.tm_wday > 6 ||
	    tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_year < -1900)
		return;
	tx_s(&t, (sip_str){days + (size_t)3 * (size_t)tm.tm_wday, 3});
	tx_s(&t, SIP_STR_LIT(", "));
	tx_u(&t, (unsigned)tm.tm_mday, 2);
	tx_s(&t, SIP_STR_LIT(" "));
	tx_s(&t, (sip_str){months + (size_t)3 * (size_t)tm.tm_mon, 3});
	tx_s(&t, SIP_STR_LIT(" "));
	tx_u(&t, (uint64_t)tm.tm_year + 1900, 4);
	tx_s(&t, SIP_STR_LIT(" "));
	tx_u(&t, (unsigned)tm.tm_hour, 2);
	tx_s(&t, SIP_STR_LIT(":"));
	tx_u(&t, (unsigned)tm.tm_min, 2);
	tx_s(&t, SIP_STR_LIT(":"));
	tx_u(&t, (unsigned)tm.tm_sec, 2);
	tx_s(&t, SIP_STR_LIT(" GMT"));
	if (!t.over)
		sip_wr_header(w, "Date", (sip_str){buf, t.n});
}

static int answer_ok(struct registrar *reg, const struct sip_msg *m,
		     const struct registrar_ctx *ctx, const struct request *rq,
		     struct sip_writer *w, struct registrar_result *res)
{
	struct listing l = {w, ctx->now, 0};

	begin(w, m, ctx, 200, NULL, res);
	loc_store_lookup(reg->store, rq->aor_s, ctx->now, list_cb, &l);
	res->bindings = l.n;
	write_date(w, ctx->now);
	if (rq->path.len && rq->path_supported) {
		for (const struct sip_hdr *h = sip_msg_hdr(m, SIP_HDR_PATH); h;
		     h = sip_msg_hdr_next(m, h))
			sip_wr_copy(w, h);
	}
	if (rq->outbound)
		sip_wr_header(w, "Require", SIP_STR_LIT("outbound"));
	sip_wr_header(w, "Supported", SIP_STR_LIT("path, outbound"));
	return finish(w, res);
}

/* Step 3: the failure limiter and the credentials. @return 1 when the
 * request may go on with *user set, 0 when it was answered. */
static int authenticate(struct registrar *reg, const struct sip_msg *m,
			const struct registrar_ctx *ctx, sip_str realm,
			struct sip_writer *w, struct registrar_result *res,
			int *err)
{
	struct sip_digest_info info;
	enum sip_digest_result dr;
	bool stale = false;
	int r;

	*err = 0;
	if (reg->limit && ctx->addr) {
		enum sip_authlimit_verdict v =
			sip_authlimit_check(reg->limit, ctx->addr, ctx->now_ms);

		if (v == SIP_AUTHLIMIT_DROP) {
			res->note = "source over the failure limit, dropped";
			return 0;
		}
		if (v == SIP_AUTHLIMIT_REJECT) {
			res->note = "source over the failure limit";
			*err = answer(w, m, ctx, 403, NULL, res);
			return 0;
		}
	}
	dr = sip_digest_verify_msg(reg->digest, m, false, realm, &info);
	switch (dr) {
	case SIP_DIGEST_OK:
		r = sip_digest_aor_check(m, sip_str_c(info.username), realm);
		if (r == 0)
			return 1;
		res->note = "authenticated user does not own the To AOR";
		*err = answer(w, m, ctx, r == -EPERM ? 403 : 400, NULL, res);
		return 0;
	case SIP_DIGEST_STALE:
		stale = true;
		break;
	case SIP_DIGEST_MISSING:
		break;
	case SIP_DIGEST_BAD_CREDENTIALS:
		res->note = info.reason;
		if (reg->limit && ctx->addr)
			sip_authlimit_fail(reg->limit, ctx->addr, ctx->now_ms);
		break;
	case SIP_DIGEST_MALFORMED:
		res->note = info.reason;
		if (reg->limit && ctx->addr)
			sip_authlimit_fail(reg->limit, ctx->addr, ctx->now_ms);
		*err = answer(w, m, ctx, 400, "Bad Credentials", res);
		return 0;
	default:
		res->note = "user store failed";
		*err = answer(w, m, ctx, 500, NULL, res);
		return 0;
	}
	begin(w, m, ctx, 401, NULL, res);
	if (sip_digest_challenge_write(reg->digest, w, false, realm, stale) <
	    0) {
		sip_wr_init(w, w->buf, w->cap);
		*err = answer(w, m, ctx, 500, NULL, res);
		return 0;
	}
	*err = finish(w, res);
	return 0;
}

static int answer_verdict(const struct sip_msg *m,
			  const struct registrar_ctx *ctx,
			  const struct sip_caps *caps, int status,
			  const struct sip_error *e, struct sip_writer *w,
			  struct registrar_result *res)
{
	char tags[512];
	int n;

	begin(w, m, ctx, (unsigned)status, e->reason, res);
	if (status == 420) {
		n = sip_unsupported_tags(m, SIP_ROLE_REGISTRAR, caps, tags,
					 sizeof(tags));
		if (n > 0)
			sip_wr_header(w, "Unsupported",
				      (sip_str){tags, (size_t)n});
	}
	return finish(w, res);
}

/* Steps 4 and 5: the To AOR, canonical, in the Request-URI's domain. */
static int to_aor(const struct sip_msg *m, const struct sip_uri *ruri,
		  struct request *rq)
{
	const struct sip_hdr *h = sip_msg_hdr(m, SIP_HDR_TO);
	struct sip_addr to;
	int n;

	if (!h || sip_addr_parse(h->value, &to) < 0)
		return -EBADMSG;
	if (!sip_str_ieq(to.uri.host, ruri->host))
		return -ENOENT;
	n = loc_aor_canon(to.uri_text, rq->aor, sizeof(rq->aor));
	if (n < 0)
		return -EBADMSG;
	rq->aor_s = (sip_str){rq->aor, (size_t)n};
	return 0;
}

int registrar_handle(struct registrar *reg, const struct sip_msg *m,
		     const struct registrar_ctx *ctx, struct sip_writer *w,
		     struct registrar_result *res)
{
	static const char *const tags[] = {"path", "outbound", NULL};
	struct seqs q = {0, 0};
	static const struct sip_caps caps = {NULL, tags, NULL};
	struct sip_error e = {0};
	struct refusal rf = {0};
	struct request *rq;
	struct sip_uri ruri;
	struct sip_cseq cs;
	const struct sip_hdr *h;
	int r, status;

	memset(res, 0, sizeof(*res));
	if (!m->is_request || m->method_id != SIP_METHOD_REGISTER)
		return -EINVAL;

	status = sip_request_verdict(m, SIP_ROLE_REGISTRAR, &caps, &e);
	if (status > 0)
		return answer_verdict(m, ctx, &caps, status, &e, w, res);
	if (sip_uri_parse(m->ruri, &ruri) < 0 || !ruri.host.len)
		return answer(w, m, ctx, 400, "Bad Request-URI", res);
	if (!registrar_serves(reg, ruri.host)) {
		res->note = "domain not served";
		return answer(w, m, ctx, 403, "Domain Not Served", res);
	}
	if (ctx->auth) {
		if (!reg->digest)
			return answer(w, m, ctx, 500, NULL, res);
		if (!authenticate(reg, m, ctx, ruri.host, w, res, &r))
			return r;
	}

	/* clear the fields, not the buffers (the whole is some 20 KiB) */
	rq = malloc(sizeof(*rq));
	if (rq)
		memset(rq, 0, offsetof(struct request, aor));
	if (!rq)
		return answer(w, m, ctx, 500, NULL, res);
	pthread_rwlock_rdlock(&reg->lock);
	rq->default_expires = reg->default_expires;
	rq->min_expires = reg->min_expires;
	rq->max_expires = reg->max_expires;
	pthread_rwlock_unlock(&reg->lock);
	r = to_aor(m, &ruri, rq);
	if (r < 0) {
		free(rq);
		res->note = "To not in the Request-URI's domain";
		return r == -ENOENT ? answer(w, m, ctx, 404, NULL, res)
				    : answer(w, m, ctx, 400, "Bad To", res);
	}
	h = sip_msg_hdr(m, SIP_HDR_CALL_ID);
	rq->call_id = h ? h->value : SIP_STR_NULL;
	h = sip_msg_hdr(m, SIP_HDR_CSEQ);
	if (!h || sip_cseq_parse(h->value, &cs) < 0 || !rq->call_id.len) {
		free(rq);
		return answer(w, m, ctx, 400, NULL, res);
	}
	rq->cseq = cs.num;
	h = sip_msg_hdr(m, SIP_HDR_USER_AGENT);
	rq->user_agent = h ? h->value : SIP_STR_NULL;
	rq->path_supported = option_tag(m, SIP_HDR_SUPPORTED, "path") ||
			     option_tag(m, SIP_HDR_REQUIRE, "path");
	if (collect_path(m, rq) < 0) {
		free(rq);
		return answer(w, m, ctx, 400, "Path Too Long", res);
	}
	if (rq->path.len && !rq->path_supported) {
		free(rq);
		res->note = "Path without Supported: path";
		begin(w, m, ctx, 421, NULL, res);
		sip_wr_header(w, "Require", SIP_STR_LIT("path"));
		return finish(w, res);
	}
	if (parse_contacts(m, rq, &rf) < 0) {
		free(rq);
		return answer(w, m, ctx, rf.status, rf.reason, res);
	}
	for (unsigned i = 0; i < rq->n; i++) {
		if (rq->c[i].expires && rq->c[i].expires < rq->min_expires) {
			uint32_t min = rq->min_expires;

			free(rq);
			begin(w, m, ctx, 423, NULL, res);
			sip_wr_headerf(w, "Min-Expires", "%u", min);
			return finish(w, res);
		}
	}

	r = apply(reg, rq, ctx, &q);
	switch (r) {
	case 0:
		r = answer_ok(reg, m, ctx, rq, w, res);
		if (r == 0 && reg->durable && q.last) {
			res->pending = true;
			res->seq_first = q.first;
			res->seq_last = q.last;
		}
		break;
	case -ESTALE:
		res->note = "Call-ID/CSeq out of order (RFC 3261 10.3 step 7)";
		r = answer(w, m, ctx, 500, "Out of Order", res);
		break;
	case -E2BIG:
		res->note = "too many bindings for the AOR";
		r = answer(w, m, ctx, 403, "Too Many Bindings", res);
		break;
	case -EINVAL:
		r = answer(w, m, ctx, 400, "Bad Contact", res);
		break;
	default:
		res->note = r == -EAGAIN ? "location store busy"
					 : "location store failed";
		begin(w, m, ctx, 500, NULL, res);
		sip_wr_header(w, "Retry-After", SIP_STR_LIT("1"));
		r = finish(w, res);
		break;
	}
	free(rq);
	return r;
}

int registrar_failed_answer(const char *ok, size_t len, char *out, size_t cap)
{
	struct sip_msg *m = malloc(sizeof(*m));
	struct sip_error e;
	struct sip_writer w;
	int n;

	if (!m)
		return -ENOMEM;
	if (sip_msg_parse(m, ok, len, SIP_FRAMING_DATAGRAM, NULL, &e) < 0 ||
	    m->is_request) {
		free(m);
		return -EINVAL;
	}
	sip_wr_init(&w, out, cap);
	sip_wr_response_to(&w, m, 500, NULL, SIP_STR_NULL);
	sip_wr_header(&w, "Retry-After", SIP_STR_LIT("1"));
	sip_wr_header(&w, "Server", SIP_STR_LIT("sipd"));
	n = sip_wr_finish(&w, NULL, SIP_STR_NULL);
	free(m);
	return n < 0 ? -ENOSPC : n;
}
