/**
 * @file parse.c  `sipctl parse`: parse a SIP message and print it as JSON.
 *
 * The message is parsed with the default limits, checked with
 * sip_msg_check(), and every header that has a view is shown with its
 * parsed parts. A message the parser rejects is reported as
 * FILE:LINE:COLUMN: error: REASON (would answer STATUS) and exit status 1.
 */
#include "sipctl/json.h"
#include "sipctl/sipctl.h"
#include "sipmsg/sipmsg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *view_error(int err)
{
	switch (err) {
	case -ERANGE:
		return "value out of range";
	case -E2BIG:
		return "too many parameters";
	case -EINVAL:
		return "invalid value";
	case -ENOSPC:
		return "value too long";
	default:
		return "bad syntax";
	}
}

static void put_error(struct json *j, const char *what)
{
	json_obj_begin(j);
	json_kv_cstr(j, "error", what);
	json_obj_end(j);
}

/* "params": [{"name": .., "value": .. or null}, ...]; a syntax error ends
 * the array and adds "params_error". */
static void put_params(struct json *j, sip_str params)
{
	sip_str cur = params, name, value;
	int r;

	json_key(j, "params");
	json_arr_begin(j);
	while ((r = sip_param_next(&cur, &name, &value)) > 0) {
		json_obj_begin(j);
		json_kv_str(j, "name", name);
		json_kv_opt(j, "value", value);
		json_obj_end(j);
	}
	json_arr_end(j);
	if (r < 0)
		json_kv_cstr(j, "params_error", view_error(r));
}

/* URI headers "a=b&c=d" as [{"name", "value"}]. */
static void put_uri_headers(struct json *j, sip_str hdrs)
{
	size_t i = 0;

	json_key(j, "headers");
	json_arr_begin(j);
	while (i < hdrs.len) {
		size_t end = i, eq;

		while (end < hdrs.len && hdrs.p[end] != '&')
			end++;
		eq = i;
		while (eq < end && hdrs.p[eq] != '=')
			eq++;
		json_obj_begin(j);
		json_kv_str(j, "name", sip_str_sub(hdrs, i, eq));
		if (eq < end)
			json_kv_str(j, "value", sip_str_sub(hdrs, eq + 1, end));
		else
			json_kv_null(j, "value");
		json_obj_end(j);
		i = end + 1;
	}
	json_arr_end(j);
}

static const char *host_kind_name(enum sip_host_kind k)
{
	switch (k) {
	case SIP_HOST_NAME:
		return "name";
	case SIP_HOST_IPV4:
		return "ipv4";
	case SIP_HOST_IPV6:
		return "ipv6";
	default:
		return NULL;
	}
}

static void put_port(struct json *j, bool has, uint16_t port)
{
	json_key(j, "port");
	if (has)
		json_uint(j, port);
	else
		json_null(j);
}

/* Decoded form of a %-escaped user part, when it differs. */
static void put_unescaped(struct json *j, const char *key, sip_str s)
{
	char buf[1024];
	int n;

	if (!s.len || !memchr(s.p, '%', s.len))
		return;
	n = sip_unescape(s, buf, sizeof(buf));
	json_key(j, key);
	if (n >= 0)
		json_str(j, (sip_str){buf, (size_t)n});
	else
		json_null(j);
}

/* Members of a parsed URI (inside an open object). */
static void put_uri_members(struct json *j, sip_str text,
			    const struct sip_uri *u)
{
	json_kv_str(j, "text", text);
	json_kv_str(j, "scheme", u->scheme_str);
	if (u->scheme == SIP_URI_OTHER) {
		json_kv_str(j, "opaque", u->opaque);
		return;
	}
	json_kv_opt(j, "user", u->user);
	put_unescaped(j, "user_unescaped", u->user);
	json_kv_opt(j, "password", u->password);
	json_kv_opt(j, "host", u->host);
	json_kv_cstr(j, "host_kind", host_kind_name(u->host_kind));
	put_port(j, u->has_port, u->port);
	put_params(j, u->params);
	put_uri_headers(j, u->headers);
}

/* A URI object from its text; {"text", "error"} when it does not parse. */
static void put_uri_text(struct json *j, sip_str text)
{
	struct sip_uri u;
	int r = sip_uri_parse(text, &u);

	json_obj_begin(j);
	if (r < 0) {
		json_kv_str(j, "text", text);
		json_kv_cstr(j, "error", "invalid URI");
	} else {
		put_uri_members(j, text, &u);
	}
	json_obj_end(j);
}

static void put_addr_members(struct json *j, const struct sip_addr *a)
{
	json_kv_opt(j, "display", a->display);
	json_key(j, "uri");
	json_obj_begin(j);
	put_uri_members(j, a->uri_text, &a->uri);
	json_obj_end(j);
	json_kv_bool(j, "bracketed", a->bracketed);
	put_params(j, a->params);
	json_kv_opt(j, "tag", a->tag);
}

static void put_addr(struct json *j, sip_str value)
{
	struct sip_addr a;
	int r = sip_addr_parse(value, &a);

	if (r < 0) {
		put_error(j, view_error(r));
		return;
	}
	json_obj_begin(j);
	put_addr_members(j, &a);
	json_obj_end(j);
}

static void put_contact(struct json *j, sip_str value)
{
	struct sip_contact c;
	int r = sip_contact_parse(value, &c);

	if (r < 0) {
		put_error(j, view_error(r));
		return;
	}
	json_obj_begin(j);
	json_kv_bool(j, "star", c.star);
	if (!c.star)
		put_addr_members(j, &c.addr);
	json_key(j, "expires");
	if (c.has_expires)
		json_uint(j, c.expires);
	else
		json_null(j);
	json_key(j, "q");
	if (c.has_q)
		json_milli(j, c.q);
	else
		json_null(j);
	json_obj_end(j);
}

static void put_via(struct json *j, sip_str value)
{
	struct sip_via v;
	int r = sip_via_parse(value, &v);

	if (r < 0) {
		put_error(j, view_error(r));
		return;
	}
	json_obj_begin(j);
	json_kv_str(j, "protocol", v.protocol);
	json_kv_str(j, "transport", v.transport);
	json_kv_str(j, "host", v.host);
	json_kv_cstr(j, "host_kind", host_kind_name(v.host_kind));
	put_port(j, v.has_port, v.port);
	json_kv_opt(j, "branch", v.branch);
	json_kv_opt(j, "received", v.received);
	json_key(j, "rport");
	if (!v.has_rport)
		json_null(j);
	else if (v.rport_value)
		json_uint(j, v.rport);
	else
		json_bool(j, true);
	json_kv_opt(j, "maddr", v.maddr);
	json_key(j, "ttl");
	if (v.has_ttl)
		json_uint(j, v.ttl);
	else
		json_null(j);
	put_params(j, v.params);
	json_obj_end(j);
}

static void put_cseq(struct json *j, sip_str value)
{
	struct sip_cseq c;
	int r = sip_cseq_parse(value, &c);

	if (r < 0) {
		put_error(j, view_error(r));
		return;
	}
	json_obj_begin(j);
	json_kv_uint(j, "number", c.num);
	json_kv_str(j, "method", c.method);
	json_obj_end(j);
}

static void put_uint(struct json *j, sip_str value, uint32_t max)
{
	uint32_t n;
	int r = sip_uint_parse(value, max, &n);

	if (r < 0) {
		put_error(j, view_error(r));
		return;
	}
	json_obj_begin(j);
	json_kv_uint(j, "number", n);
	json_obj_end(j);
}

/* The value of an auth param without its surrounding quotes. */
static sip_str auth_value(sip_str v, bool quoted)
{
	if (quoted && v.len >= 2 && v.p[0] == '"' && v.p[v.len - 1] == '"')
		return sip_str_sub(v, 1, v.len - 1);
	return v;
}

static void put_auth(struct json *j, sip_str value)
{
	struct sip_auth a;
	int r = sip_auth_parse(value, &a);

	if (r < 0) {
		put_error(j, view_error(r));
		return;
	}
	json_obj_begin(j);
	json_kv_str(j, "scheme", a.scheme);
	json_key(j, "params");
	json_arr_begin(j);
	for (unsigned i = 0; i < a.nparams && i < SIP_AUTH_MAX_PARAMS; i++) {
		json_obj_begin(j);
		json_kv_str(j, "name", a.params[i].name);
		json_kv_str(j, "value",
			    auth_value(a.params[i].value, a.params[i].quoted));
		json_kv_bool(j, "quoted", a.params[i].quoted);
		json_obj_end(j);
	}
	json_arr_end(j);
	json_obj_end(j);
}

static void put_ctype(struct json *j, sip_str value)
{
	struct sip_ctype ct;
	int r = sip_ctype_parse(value, &ct);

	if (r < 0) {
		put_error(j, view_error(r));
		return;
	}
	json_obj_begin(j);
	json_kv_str(j, "type", ct.type);
	json_kv_str(j, "subtype", ct.subtype);
	put_params(j, ct.params);
	json_obj_end(j);
}

static void put_item(struct json *j, sip_str value)
{
	json_str(j, value);
}

/* "values": one element per list item, each shown by @p put. */
static void put_list(struct json *j, sip_str value,
		     void (*put)(struct json *, sip_str))
{
	sip_str cur = value, item;
	int r;

	json_key(j, "values");
	json_arr_begin(j);
	while ((r = sip_list_next(&cur, &item)) > 0)
		put(j, item);
	if (r < 0)
		put_error(j, view_error(r));
	json_arr_end(j);
}

static void put_parsed(struct json *j, sip_str value,
		       void (*put)(struct json *, sip_str))
{
	json_key(j, "parsed");
	put(j, value);
}

static void put_max_forwards(struct json *j, sip_str value)
{
	put_uint(j, value, 255);
}

static void put_uint32(struct json *j, sip_str value)
{
	put_uint(j, value, UINT32_MAX);
}

static void put_header(struct json *j, const struct sip_hdr *h)
{
	enum sip_hdr_id id = (enum sip_hdr_id)h->id;

	json_obj_begin(j);
	json_kv_str(j, "name", h->name);
	json_kv_cstr(j, "canonical", sip_hdr_name(id));
	json_kv_str(j, "value", h->value);
	switch (id) {
	case SIP_HDR_VIA:
		put_list(j, h->value, put_via);
		break;
	case SIP_HDR_FROM:
	case SIP_HDR_TO:
	case SIP_HDR_REPLY_TO:
	case SIP_HDR_REFER_TO:
	case SIP_HDR_REFERRED_BY:
		put_parsed(j, h->value, put_addr);
		break;
	case SIP_HDR_CONTACT:
		put_list(j, h->value, put_contact);
		break;
	case SIP_HDR_ROUTE:
	case SIP_HDR_RECORD_ROUTE:
	case SIP_HDR_PATH:
		put_list(j, h->value, put_addr);
		break;
	case SIP_HDR_CSEQ:
		put_parsed(j, h->value, put_cseq);
		break;
	case SIP_HDR_MAX_FORWARDS:
		put_parsed(j, h->value, put_max_forwards);
		break;
	case SIP_HDR_EXPIRES:
	case SIP_HDR_MIN_EXPIRES:
	case SIP_HDR_CONTENT_LENGTH:
	case SIP_HDR_RSEQ:
		put_parsed(j, h->value, put_uint32);
		break;
	case SIP_HDR_AUTHORIZATION:
	case SIP_HDR_WWW_AUTHENTICATE:
	case SIP_HDR_PROXY_AUTHENTICATE:
	case SIP_HDR_PROXY_AUTHORIZATION:
		put_parsed(j, h->value, put_auth);
		break;
	case SIP_HDR_CONTENT_TYPE:
		put_parsed(j, h->value, put_ctype);
		break;
	default:
		if (sip_hdr_is_list(id))
			put_list(j, h->value, put_item);
		break;
	}
	json_obj_end(j);
}

static bool is_sdp(const struct sip_ctype *ct)
{
	return sip_str_ieq_c(ct->type, "application") &&
	       sip_str_ieq_c(ct->subtype, "sdp");
}

/* Body types shown as text. */
static bool is_text_type(const struct sip_ctype *ct)
{
	return sip_str_ieq_c(ct->type, "text") || is_sdp(ct) ||
	       (sip_str_ieq_c(ct->type, "message") &&
		sip_str_ieq_c(ct->subtype, "sipfrag"));
}

static void put_content_type(struct json *j, const struct sip_ctype *ct)
{
	char buf[256];
	int n = snprintf(buf, sizeof(buf), "%.*s/%.*s", SIP_STR_FMT(ct->type),
			 SIP_STR_FMT(ct->subtype));

	json_key(j, "content_type");
	if (n < 0 || (size_t)n >= sizeof(buf))
		json_str(j, (sip_str){ct->type.p,
				      (size_t)(ct->subtype.p + ct->subtype.len -
					       ct->type.p)});
	else
		json_cstr(j, buf);
}

static void put_parts(struct json *j, const struct sip_ctype *ct, sip_str body)
{
	struct sip_mpart_iter it;
	struct sip_mpart part;
	int r = sip_mpart_init(&it, ct, body);

	json_key(j, "parts");
	json_arr_begin(j);
	while (r >= 0 && (r = sip_mpart_next(&it, &part)) > 0) {
		struct sip_ctype pct;
		bool typed = part.ctype.len &&
			     sip_ctype_parse(part.ctype, &pct) == 0;

		json_obj_begin(j);
		json_kv_opt(j, "content_type", part.ctype);
		json_kv_uint(j, "length", part.body.len);
		if (typed && is_sdp(&pct))
			sipctl_put_sdp(j, part.body);
		if (typed && is_text_type(&pct))
			json_kv_str(j, "text", part.body);
		json_obj_end(j);
	}
	if (r < 0)
		put_error(j, r == -EINVAL ? "no boundary parameter"
					  : "bad multipart body");
	json_arr_end(j);
}

static void put_body(struct json *j, const struct sip_msg *msg)
{
	const struct sip_hdr *h = sip_msg_hdr(msg, SIP_HDR_CONTENT_TYPE);
	struct sip_ctype ct;
	bool typed = h && sip_ctype_parse(h->value, &ct) == 0;

	json_key(j, "body");
	json_obj_begin(j);
	json_kv_uint(j, "length", msg->body.len);
	if (typed) {
		put_content_type(j, &ct);
	} else if (h) {
		json_kv_str(j, "content_type", h->value);
		json_kv_cstr(j, "content_type_error", "bad syntax");
	} else {
		json_kv_null(j, "content_type");
	}
	if (typed && sip_str_ieq_c(ct.type, "multipart"))
		put_parts(j, &ct, msg->body);
	if (typed && is_sdp(&ct))
		sipctl_put_sdp(j, msg->body);
	if (typed && is_text_type(&ct))
		json_kv_str(j, "text", msg->body);
	json_obj_end(j);
}

static void put_check(struct json *j, const struct sip_msg *msg)
{
	struct sip_error err = {0};
	int r = sip_msg_check(msg, &err);

	json_key(j, "check");
	json_obj_begin(j);
	json_kv_bool(j, "ok", r == 0);
	if (r < 0) {
		json_kv_uint(j, "status", err.status);
		json_kv_cstr(j, "reason", err.reason ? err.reason : "");
	}
	json_obj_end(j);
}

static void put_msg(struct json *j, const struct sip_msg *msg, size_t len)
{
	json_obj_begin(j);
	json_kv_cstr(j, "type", msg->is_request ? "request" : "response");
	if (msg->is_request) {
		json_kv_str(j, "method", msg->method);
		json_kv_bool(j, "method_known",
			     msg->method_id != SIP_METHOD_UNKNOWN);
		json_key(j, "request_uri");
		put_uri_text(j, msg->ruri);
	} else {
		json_kv_uint(j, "status", msg->status);
		json_kv_str(j, "reason", msg->reason);
	}
	json_kv_str(j, "version", msg->version);
	json_kv_uint(j, "length", msg->len);
	if (len > msg->len)
		json_kv_uint(j, "ignored_trailing_bytes", len - msg->len);
	json_key(j, "headers");
	json_arr_begin(j);
	for (unsigned i = 0; i < msg->nhdrs && i < SIP_MSG_MAX_HEADERS; i++)
		put_header(j, &msg->hdrs[i]);
	json_arr_end(j);
	put_body(j, msg);
	put_check(j, msg);
	json_obj_end(j);
}

/* 1-based line and column of byte @p off. */
static void locate(const char *buf, size_t len, size_t off, unsigned *line,
		   unsigned *col)
{
	unsigned l = 1, c = 1;

	if (off > len)
		off = len;
	for (size_t i = 0; i < off; i++) {
		if (buf[i] == '\n') {
			l++;
			c = 1;
		} else {
			c++;
		}
	}
	*line = l;
	*col = c;
}

static int parse_usage(void)
{
	fputs("usage: sipctl parse [--stream] FILE|-\n"
	      "  Parse FILE (- for stdin) as one SIP message (a datagram, or "
	      "a\n"
	      "  stream frame with --stream) and print it as JSON.\n",
	      stderr);
	return SIPCTL_EXIT_USAGE;
}

int sipctl_parse(int argc, char **argv)
{
	enum sip_transport_kind framing = SIP_FRAMING_DATAGRAM;
	const char *path = NULL, *shown;
	struct sip_limits limits;
	struct sip_error err = {0};
	struct sip_msg *msg;
	struct json j;
	char *buf;
	size_t len;
	int r;

	for (int i = 1; i < argc; i++) {
		bool option = argv[i][0] == '-' && argv[i][1] != '\0';

		if (strcmp(argv[i], "--stream") == 0)
			framing = SIP_FRAMING_STREAM;
		else if (option || path) /* -h, --help, or a usage error */
			return parse_usage();
		else
			path = argv[i];
	}
	if (!path)
		return parse_usage();
	shown = strcmp(path, "-") == 0 ? "<stdin>" : path;

	r = sipctl_read_file(path, SIPCTL_MAX_INPUT, &buf, &len);
	if (r < 0) {
		fprintf(stderr, "sipctl: %s: %s\n", shown, strerror(-r));
		return SIPCTL_EXIT_USAGE;
	}
	msg = malloc(sizeof(*msg));
	if (!msg) {
		free(buf);
		fprintf(stderr, "sipctl: out of memory\n");
		return SIPCTL_EXIT_USAGE;
	}

	sip_limits_default(&limits);
	r = sip_msg_parse(msg, buf, len, framing, &limits, &err);
	if (r < 0) {
		unsigned line = err.line, col = err.column;

		if (line == 0)
			locate(buf, len, err.offset, &line, &col);
		fprintf(stderr, "%s:%u:%u: error: %s (would answer %u)\n",
			shown, line, col ? col : 1,
			err.reason ? err.reason : strerror(-r), err.status);
		free(msg);
		free(buf);
		return SIPCTL_EXIT_FAIL;
	}

	json_init(&j, stdout);
	put_msg(&j, msg, len);
	r = json_finish(&j);
	if (fflush(stdout) != 0)
		r = -EIO;
	free(msg);
	free(buf);
	if (r < 0) {
		fprintf(stderr, "sipctl: error writing output\n");
		return SIPCTL_EXIT_USAGE;
	}
	return SIPCTL_EXIT_OK;
}
