/** @file location.c  The store interface (dispatch to a backend's
 * operations) and the registrar helpers: the §10.3 step 7 ordering rule and
 * the canonical AOR. */
#include "location/location.h"

#include "resolv/resolv.h"
#include "sipmsg/sipmsg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct loc_store *loc_store_wrap(const struct loc_store_ops *ops, void *impl)
{
	struct loc_store *s = malloc(sizeof(*s));

	if (!s)
		return NULL;
	s->ops = ops;
	s->impl = impl;
	return s;
}

void loc_store_destroy(struct loc_store *s)
{
	if (!s)
		return;
	s->ops->destroy(s->impl);
	free(s);
}

int loc_store_save(struct loc_store *s, const struct loc_binding *b)
{
	uint64_t seq = 0;

	return s->ops->save(s->impl, b, &seq);
}

int loc_store_remove(struct loc_store *s, sip_str aor, sip_str contact,
		     sip_str call_id, uint32_t cseq)
{
	uint64_t seq = 0;

	return s->ops->remove(s->impl, aor, contact, call_id, cseq, &seq);
}

int loc_store_remove_aor(struct loc_store *s, sip_str aor, sip_str call_id,
			 uint32_t cseq)
{
	uint64_t seq = 0;

	return s->ops->remove_aor(s->impl, aor, call_id, cseq, &seq);
}

int loc_store_save_seq(struct loc_store *s, const struct loc_binding *b,
		       uint64_t *seq)
{
	*seq = 0;
	return s->ops->save(s->impl, b, seq);
}

int loc_store_remove_seq(struct loc_store *s, sip_str aor, sip_str contact,
			 sip_str call_id, uint32_t cseq, uint64_t *seq)
{
	*seq = 0;
	return s->ops->remove(s->impl, aor, contact, call_id, cseq, seq);
}

int loc_store_remove_aor_seq(struct loc_store *s, sip_str aor, sip_str call_id,
			     uint32_t cseq, uint64_t *seq)
{
	*seq = 0;
	return s->ops->remove_aor(s->impl, aor, call_id, cseq, seq);
}

int loc_store_lookup(struct loc_store *s, sip_str aor, int64_t now,
		     loc_binding_cb *cb, void *arg)
{
	return s->ops->lookup(s->impl, aor, now, cb, arg);
}

size_t loc_store_expire(struct loc_store *s, int64_t now, loc_binding_cb *cb,
			void *arg)
{
	return s->ops->expire(s->impl, now, cb, arg);
}

size_t loc_store_count(struct loc_store *s)
{
	return s->ops->count(s->impl);
}

int loc_store_foreach(struct loc_store *s, loc_binding_cb *cb, void *arg)
{
	return s->ops->foreach (s->impl, cb, arg);
}

int loc_store_flush(struct loc_store *s)
{
	return s->ops->flush(s->impl);
}

int loc_binding_format(const struct loc_binding *b, int64_t now, char *buf,
		       size_t cap)
{
	char inst[LOC_MAX_FIELD + 32];
	char path[LOC_MAX_FIELD + 8] = "";
	int n;

	if (b->instance.len)
		snprintf(inst, sizeof(inst), "instance=%.*s;reg-id=%u",
			 SIP_STR_FMT(b->instance), b->reg_id);
	else
		snprintf(inst, sizeof(inst), "instance=-");
	if (b->path.len)
		snprintf(path, sizeof(path), "\tpath=%.*s",
			 SIP_STR_FMT(b->path));
	n = snprintf(
		buf, cap,
		"%.*s\t%.*s\texpires=%lld\tq=%u.%03u\t%s\tflow=%s:%.*s%s\n",
		SIP_STR_FMT(b->aor), SIP_STR_FMT(b->contact),
		(long long)(b->expires - now), b->q / 1000u, b->q % 1000u, inst,
		sip_transport_name(b->transport), SIP_STR_FMT(b->source), path);
	if (n < 0 || (size_t)n >= cap)
		return -ENOSPC;
	return n;
}

enum loc_order loc_order_check(sip_str old_call_id, uint32_t old_cseq,
			       sip_str new_call_id, uint32_t new_cseq)
{
	if (!sip_str_eq(old_call_id, new_call_id))
		return LOC_ORDER_ACCEPT;
	return new_cseq > old_cseq ? LOC_ORDER_ACCEPT : LOC_ORDER_STALE;
}

/* Append @p s lower-cased (or as is) to out[*n], keeping room for a NUL. */
static int put(char *out, size_t cap, size_t *n, sip_str s, bool lower)
{
	if (s.len >= cap - *n)
		return -ENOSPC;
	for (size_t i = 0; i < s.len; i++)
		out[*n + i] = lower ? sip_lower(s.p[i]) : s.p[i];
	*n += s.len;
	return 0;
}

int loc_aor_canon(sip_str text, char *out, size_t cap)
{
	struct sip_uri u;
	size_t n = 0;
	int rc;

	if (!cap)
		return -ENOSPC;
	if (sip_uri_parse(text, &u) != 0 ||
	    (u.scheme != SIP_URI_SIP && u.scheme != SIP_URI_SIPS))
		return -EINVAL;
	rc = put(out, cap, &n,
		 u.scheme == SIP_URI_SIP ? SIP_STR_LIT("sip:")
					 : SIP_STR_LIT("sips:"),
		 false);
	if (!rc && u.user.p) {
		rc = sip_unescape(u.user, out + n, cap - n);
		if (rc >= 0) {
			n += (size_t)rc;
			rc = put(out, cap, &n, SIP_STR_LIT("@"), false);
		}
	}
	if (!rc)
		rc = put(out, cap, &n, u.host, true);
	if (!rc && u.has_port) {
		char port[8];
		int pn = snprintf(port, sizeof(port), ":%u", (unsigned)u.port);

		rc = put(out, cap, &n, (sip_str){port, (size_t)pn}, false);
	}
	if (rc < 0)
		return rc;
	if (n >= cap)
		return -ENOSPC;
	out[n] = '\0';
	return (int)n;
}
