/** @file sdp_json.c  JSON form of a parsed SDP body for `sipctl parse`. */
#include "sdp/sdp.h"
#include "sipctl/json.h"
#include "sipctl/sipctl.h"

#include <errno.h>
#include <stdlib.h>

/* Optional field: p == NULL means absent (null), else the string. */
static void kv_field(struct json *j, const char *key, sip_str s)
{
	json_key(j, key);
	if (s.p)
		json_str(j, s);
	else
		json_null(j);
}

static void put_conn(struct json *j, const struct sdp_conn *c)
{
	json_obj_begin(j);
	json_kv_str(j, "nettype", c->nettype);
	json_kv_str(j, "addrtype", c->addrtype);
	json_kv_str(j, "address", c->address);
	json_key(j, "ttl");
	if (c->has_ttl)
		json_uint(j, c->ttl);
	else
		json_null(j);
	json_key(j, "count");
	if (c->has_count)
		json_uint(j, c->count);
	else
		json_null(j);
	json_obj_end(j);
}

static void put_bw(struct json *j, const struct sdp_bw *bw, unsigned n)
{
	json_key(j, "bandwidth");
	json_arr_begin(j);
	for (unsigned i = 0; i < n && i < SDP_MAX_BW; i++) {
		json_obj_begin(j);
		json_kv_str(j, "type", bw[i].type);
		json_kv_uint(j, "value", bw[i].value);
		json_obj_end(j);
	}
	json_arr_end(j);
}

static void put_attrs(struct json *j, const struct sdp_attr *a, unsigned n)
{
	json_key(j, "attributes");
	json_arr_begin(j);
	for (unsigned i = 0; i < n && i < SDP_MAX_ATTRS; i++) {
		json_obj_begin(j);
		json_kv_str(j, "name", a[i].name);
		json_key(j, "value");
		if (a[i].has_value)
			json_str(j, a[i].value);
		else
			json_null(j);
		json_obj_end(j);
	}
	json_arr_end(j);
}

static void put_strs(struct json *j, const char *key, const sip_str *s,
		     unsigned n, unsigned max)
{
	json_key(j, key);
	json_arr_begin(j);
	for (unsigned i = 0; i < n && i < max; i++)
		json_str(j, s[i]);
	json_arr_end(j);
}

static void put_media(struct json *j, const struct sdp_session *s,
		      const struct sdp_media *m)
{
	json_obj_begin(j);
	json_kv_str(j, "media", m->media);
	json_kv_uint(j, "port", m->port);
	json_key(j, "nports");
	if (m->has_nports)
		json_uint(j, m->nports);
	else
		json_null(j);
	json_kv_str(j, "proto", m->proto);
	put_strs(j, "formats", m->fmts, m->nfmts, SDP_MAX_FMTS);
	kv_field(j, "info", m->info);
	json_key(j, "connections");
	json_arr_begin(j);
	for (unsigned i = 0; i < m->nconns && i < SDP_MAX_CONNS; i++)
		put_conn(j, &m->conns[i]);
	json_arr_end(j);
	put_bw(j, m->bw, m->nbw);
	kv_field(j, "key", m->key);
	json_kv_cstr(j, "direction", sdp_dir_name(sdp_media_dir(s, m)));
	put_attrs(j, m->attrs, m->nattrs);
	json_obj_end(j);
}

static void put_session(struct json *j, const struct sdp_session *s)
{
	const struct sdp_origin *o = &s->origin;

	json_obj_begin(j);
	json_key(j, "origin");
	json_obj_begin(j);
	json_kv_str(j, "username", o->username);
	json_kv_str(j, "sess_id", o->sess_id);
	json_kv_str(j, "sess_version", o->sess_version);
	json_kv_str(j, "nettype", o->nettype);
	json_kv_str(j, "addrtype", o->addrtype);
	json_kv_str(j, "address", o->address);
	json_obj_end(j);
	json_kv_str(j, "name", s->name);
	kv_field(j, "info", s->info);
	kv_field(j, "uri", s->uri);
	put_strs(j, "emails", s->emails, s->nemails, SDP_MAX_EMAILS);
	put_strs(j, "phones", s->phones, s->nphones, SDP_MAX_PHONES);
	json_key(j, "connection");
	if (s->has_conn)
		put_conn(j, &s->conn);
	else
		json_null(j);
	put_bw(j, s->bw, s->nbw);
	json_key(j, "times");
	json_arr_begin(j);
	for (unsigned i = 0; i < s->ntimes && i < SDP_MAX_TIMES; i++) {
		const struct sdp_time *t = &s->times[i];

		json_obj_begin(j);
		json_kv_uint(j, "start", t->start);
		json_kv_uint(j, "stop", t->stop);
		put_strs(j, "repeats", t->repeats, t->nrepeats,
			 SDP_MAX_REPEATS);
		json_obj_end(j);
	}
	json_arr_end(j);
	kv_field(j, "zone", s->zone);
	kv_field(j, "key", s->key);
	json_kv_cstr(j, "direction", sdp_dir_name(sdp_session_dir(s)));
	put_attrs(j, s->attrs, s->nattrs);
	json_key(j, "media");
	json_arr_begin(j);
	for (unsigned i = 0; i < s->nmedia && i < SDP_MAX_MEDIA; i++)
		put_media(j, s, &s->media[i]);
	json_arr_end(j);
	json_obj_end(j);
}

void sipctl_put_sdp(struct json *j, sip_str body)
{
	struct sdp_session *s = malloc(sizeof(*s));
	unsigned line = 0;
	int r;

	json_key(j, "sdp");
	if (!s) {
		json_obj_begin(j);
		json_kv_cstr(j, "error", "out of memory");
		json_obj_end(j);
		return;
	}
	r = sdp_parse(s, body.p ? body.p : "", body.len, &line);
	if (r < 0) {
		json_obj_begin(j);
		json_kv_cstr(j, "error",
			     r == -E2BIG ? "limit exceeded" : "bad syntax");
		json_kv_uint(j, "line", line);
		json_obj_end(j);
	} else {
		put_session(j, s);
	}
	free(s);
}
