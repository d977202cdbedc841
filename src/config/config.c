/**
 * @file config.c  The INI parser of the sipd configuration file and the
 * checks of every key (see config.h for the syntax).
 *
 * One pass over the text, line by line; nothing is allocated. Every error
 * is recorded with its line and column and parsing goes on with the next
 * line, so that one run reports all of a file's mistakes. Keys under an
 * unknown section are skipped without further errors: the section name is
 * the mistake.
 */
#include "config/config.h"

#include "transport/transport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

struct keydef {
	const char *section;
	const char *name;
	bool repeat;
};

/* Indexed by enum cfg_key. */
static const struct keydef keys[CFG_NKEYS] = {
	[CFG_K_LISTEN] = {"server", "listen", true},
	[CFG_K_WORKERS] = {"server", "workers", false},
	[CFG_K_DOMAIN] = {"server", "domain", true},
	[CFG_K_DB] = {"server", "db", false},
	[CFG_K_AUTH] = {"server", "auth", false},
	[CFG_K_MODE] = {"server", "mode", false},
	[CFG_K_UAS] = {"server", "uas", false},
	[CFG_K_MIN_EXPIRES] = {"registrar", "min_expires", false},
	[CFG_K_MAX_EXPIRES] = {"registrar", "max_expires", false},
	[CFG_K_DEFAULT_EXPIRES] = {"registrar", "default_expires", false},
	[CFG_K_NONCE_LIFETIME] = {"server", "nonce_lifetime", false},
	[CFG_K_DIGEST_ALGORITHMS] = {"server", "digest_algorithms", false},
	[CFG_K_TLS_CERT] = {"tls", "cert", false},
	[CFG_K_TLS_KEY] = {"tls", "key", false},
	[CFG_K_TLS_CA] = {"tls", "ca", false},
	[CFG_K_LOG_LEVEL] = {"log", "level", false},
	[CFG_K_LOG_FORMAT] = {"log", "format", false},
	[CFG_K_PROXY_ROUTE] = {"proxy", "route", true},
	[CFG_K_PROXY_TRUSTED] = {"proxy", "trusted", true},
	[CFG_K_PROXY_FORK_TIMEOUT] = {"proxy", "fork_timeout", false},
	[CFG_K_ADMIN] = {"server", "admin", false},
	[CFG_K_PROXY_DNS] = {"proxy", "dns", true},
	[CFG_K_PROXY_DNS_TIMEOUT] = {"proxy", "dns_timeout", false},
};

static const char *const sections[] = {"server", "registrar", "tls", "log",
				       "proxy"};
#define NSECTIONS (sizeof(sections) / sizeof(sections[0]))

static const char *const level_names[] = {"error", "warn", "info", "debug",
					  "trace"};
static const char *const format_names[] = {"text", "json"};

/* ------------------------------------------------------------------------ */
/* Names and defaults                                                       */
/* ------------------------------------------------------------------------ */

void cfg_init(struct cfg *c)
{
	memset(c, 0, sizeof(*c));
	c->auth = true;
	c->log_level = CFG_LOG_INFO;
	c->log_format = CFG_LOG_TEXT;
	c->min_expires = 60;
	c->max_expires = 7200;
	c->default_expires = 3600;
	c->nonce_lifetime = 300;
	c->digest_algs = CFG_DIGEST_MD5 | CFG_DIGEST_SHA256;
	c->mode = CFG_MODE_PROXY;
	c->fork_timeout = 30000;
	c->dns_timeout = 4000;
}

const char *cfg_log_level_name(enum cfg_log_level l)
{
	return (unsigned)l < 5 ? level_names[l] : "?";
}

const char *cfg_log_format_name(enum cfg_log_format f)
{
	return (unsigned)f < 2 ? format_names[f] : "?";
}

const char *cfg_key_name(enum cfg_key k)
{
	return (unsigned)k < CFG_NKEYS ? keys[k].name : "?";
}

const char *cfg_key_section(enum cfg_key k)
{
	return (unsigned)k < CFG_NKEYS ? keys[k].section : "?";
}

/* ------------------------------------------------------------------------ */
/* Values                                                                   */
/* ------------------------------------------------------------------------ */

static int expect(char *err, size_t cap, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int expect(char *err, size_t cap, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (err && cap)
		vsnprintf(err, cap, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int parse_num(const char *v, unsigned max, unsigned *out);

/* "192.0.2.1", "192.0.2.1:53", "[2001:db8::1]:53" or "2001:db8::1". */
static bool dns_server_ok(const char *v)
{
	char host[64];
	const char *port = NULL;
	unsigned char a[16];
	unsigned n;
	size_t len;

	if (v[0] == '[') {
		const char *e = strchr(v, ']');

		if (!e || (size_t)(e - v - 1) >= sizeof(host))
			return false;
		len = (size_t)(e - v - 1);
		memcpy(host, v + 1, len);
		host[len] = '\0';
		if (e[1] && e[1] != ':')
			return false;
		port = e[1] ? e + 2 : NULL;
		if (inet_pton(AF_INET6, host, a) != 1)
			return false;
	} else if (strchr(v, ':') != strrchr(v, ':')) {
		return strlen(v) < sizeof(host) &&
		       inet_pton(AF_INET6, v, a) == 1;
	} else {
		const char *c = strchr(v, ':');

		len = c ? (size_t)(c - v) : strlen(v);
		if (len >= sizeof(host))
			return false;
		memcpy(host, v, len);
		host[len] = '\0';
		port = c ? c + 1 : NULL;
		if (inet_pton(AF_INET, host, a) != 1)
			return false;
	}
	return !port || parse_num(port, 65535, &n) == 0;
}

static int parse_num(const char *v, unsigned max, unsigned *out)
{
	unsigned long n = 0;

	if (!*v)
		return -EINVAL;
	for (const char *p = v; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		n = n * 10 + (unsigned long)(*p - '0');
		if (n > max)
			return -EINVAL;
	}
	if (n == 0)
		return -EINVAL;
	*out = (unsigned)n;
	return 0;
}

/* A host name or a numeric address, as a served domain. */
static bool valid_name(const char *v)
{
	size_t n = strlen(v);

	if (n == 0 || n >= CFG_NAME_MAX)
		return false;
	for (const char *p = v; *p; p++) {
		char ch = *p;

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' ||
		      ch == '_' || ch == ':' || ch == '[' || ch == ']'))
			return false;
	}
	return true;
}

static int pick(const char *v, const char *const *names, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (!strcmp(v, names[i]))
			return (int)i;
	return -1;
}

/* "sha-256,md5", "md5", "sha-256 md5": one or both names, separated by
 * commas and/or spaces, case-insensitive. */
static int parse_algs(const char *v, unsigned *out)
{
	unsigned bits = 0;

	while (*v) {
		size_t n;

		while (*v == ',' || *v == ' ' || *v == '\t')
			v++;
		if (!*v)
			break;
		n = strcspn(v, ", \t");
		if (n == 3 && !strncasecmp(v, "md5", 3))
			bits |= CFG_DIGEST_MD5;
		else if (n == 7 && !strncasecmp(v, "sha-256", 7))
			bits |= CFG_DIGEST_SHA256;
		else
			return -EINVAL;
		v += n;
	}
	if (!bits)
		return -EINVAL;
	*out = bits;
	return 0;
}

static int copy_str(char *dst, size_t cap, const char *v)
{
	size_t n = strlen(v);

	if (n == 0 || n >= cap)
		return -EINVAL;
	memcpy(dst, v, n + 1);
	return 0;
}

/* Check @p v for key @p k and store it. */
static int set_key(struct cfg *c, enum cfg_key k, const char *v, char *err,
		   size_t cap)
{
	unsigned transport, n;
	struct sockaddr_storage ss;
	int i;

	switch (k) {
	case CFG_K_LISTEN:
		if (strlen(v) >= CFG_URI_MAX ||
		    sip_tp_uri_parse(v, &transport, &ss) < 0)
			return expect(err, cap,
				      "expected a listen URI like "
				      "udp:127.0.0.1:5060");
		if (c->nlisten >= CFG_MAX_LISTEN) {
			expect(err, cap, "too many listen values (at most %d)",
			       CFG_MAX_LISTEN);
			return -E2BIG;
		}
		memcpy(c->listen[c->nlisten++], v, strlen(v) + 1);
		break;
	case CFG_K_WORKERS:
		if (parse_num(v, CFG_MAX_WORKERS, &c->workers) < 0)
			return expect(err, cap, "expected a number 1..%d",
				      CFG_MAX_WORKERS);
		break;
	case CFG_K_DOMAIN:
		if (!valid_name(v))
			return expect(err, cap,
				      "expected a domain name like "
				      "example.com");
		if (c->ndomains >= CFG_MAX_DOMAINS) {
			expect(err, cap, "too many domain values (at most %d)",
			       CFG_MAX_DOMAINS);
			return -E2BIG;
		}
		memcpy(c->domain[c->ndomains++], v, strlen(v) + 1);
		break;
	case CFG_K_DB:
	case CFG_K_ADMIN:
	case CFG_K_TLS_CERT:
	case CFG_K_TLS_KEY:
	case CFG_K_TLS_CA: {
		char *dst = k == CFG_K_DB	  ? c->db
			    : k == CFG_K_ADMIN	  ? c->admin
			    : k == CFG_K_TLS_CERT ? c->tls_cert
			    : k == CFG_K_TLS_KEY  ? c->tls_key
						  : c->tls_ca;

		if (copy_str(dst, CFG_PATH_MAX, v) < 0)
			return expect(err, cap, "expected a file path");
		break;
	}
	case CFG_K_AUTH:
	case CFG_K_UAS:
		if (strcmp(v, "on") != 0 && strcmp(v, "off") != 0)
			return expect(err, cap, "expected on or off");
		if (k == CFG_K_AUTH)
			c->auth = !strcmp(v, "on");
		else
			c->uas = !strcmp(v, "on");
		break;
	case CFG_K_MODE:
		if (!strcmp(v, "registrar"))
			c->mode = CFG_MODE_REGISTRAR;
		else if (!strcmp(v, "proxy"))
			c->mode = CFG_MODE_PROXY;
		else if (!strcmp(v, "redirect"))
			c->mode = CFG_MODE_REDIRECT;
		else
			return expect(err, cap,
				      "expected proxy, redirect or registrar");
		break;
	case CFG_K_PROXY_ROUTE: {
		const char *eq = strchr(v, '=');

		if (!eq || eq == v || !eq[1] || strlen(v) >= CFG_NAME_MAX)
			return expect(err, cap,
				      "expected DOMAIN=HOST[:PORT][;transport="
				      "udp|tcp|tls],...");
		if (c->nroutes >= CFG_MAX_ROUTES) {
			expect(err, cap, "too many route values (at most %d)",
			       CFG_MAX_ROUTES);
			return -E2BIG;
		}
		memcpy(c->route[c->nroutes++], v, strlen(v) + 1);
		break;
	}
	case CFG_K_PROXY_TRUSTED: {
		unsigned char a[16];

		if (strlen(v) >= CFG_URI_MAX ||
		    (inet_pton(AF_INET, v, a) != 1 &&
		     inet_pton(AF_INET6, v, a) != 1))
			return expect(err, cap,
				      "expected an IP address like 127.0.0.1");
		if (c->ntrusted >= CFG_MAX_TRUSTED) {
			expect(err, cap, "too many trusted values (at most %d)",
			       CFG_MAX_TRUSTED);
			return -E2BIG;
		}
		memcpy(c->trusted[c->ntrusted++], v, strlen(v) + 1);
		break;
	}
	case CFG_K_PROXY_FORK_TIMEOUT:
		if (parse_num(v, 600000, &n) < 0)
			return expect(err, cap,
				      "expected milliseconds 1..600000");
		c->fork_timeout = n;
		break;
	case CFG_K_PROXY_DNS:
		if (!dns_server_ok(v))
			return expect(err, cap,
				      "expected a DNS server ADDRESS[:PORT], "
				      "like 127.0.0.1:53 or [::1]:53");
		if (c->ndns >= CFG_MAX_DNS) {
			expect(err, cap, "too many dns values (at most %d)",
			       CFG_MAX_DNS);
			return -E2BIG;
		}
		memcpy(c->dns[c->ndns++], v, strlen(v) + 1);
		break;
	case CFG_K_PROXY_DNS_TIMEOUT:
		if (parse_num(v, 60000, &n) < 0)
			return expect(err, cap,
				      "expected milliseconds 1..60000");
		c->dns_timeout = n;
		break;
	case CFG_K_MIN_EXPIRES:
	case CFG_K_MAX_EXPIRES:
	case CFG_K_DEFAULT_EXPIRES:
		if (parse_num(v, CFG_EXPIRES_LIMIT, &n) < 0)
			return expect(err, cap, "expected a number 1..%u",
				      CFG_EXPIRES_LIMIT);
		if (k == CFG_K_MIN_EXPIRES)
			c->min_expires = n;
		else if (k == CFG_K_MAX_EXPIRES)
			c->max_expires = n;
		else
			c->default_expires = n;
		break;
	case CFG_K_NONCE_LIFETIME:
		if (parse_num(v, CFG_NONCE_LIFETIME_LIMIT, &n) < 0)
			return expect(err, cap, "expected a number 1..%u",
				      CFG_NONCE_LIFETIME_LIMIT);
		c->nonce_lifetime = n;
		break;
	case CFG_K_DIGEST_ALGORITHMS:
		if (parse_algs(v, &c->digest_algs) < 0)
			return expect(err, cap,
				      "expected sha-256, md5, or both: "
				      "sha-256,md5");
		break;
	case CFG_K_LOG_LEVEL:
		i = pick(v, level_names, 5);
		if (i < 0)
			return expect(err, cap,
				      "expected error, warn, info, debug or "
				      "trace");
		c->log_level = (enum cfg_log_level)i;
		break;
	case CFG_K_LOG_FORMAT:
		i = pick(v, format_names, 2);
		if (i < 0)
			return expect(err, cap, "expected text or json");
		c->log_format = (enum cfg_log_format)i;
		break;
	default:
		return -ENOENT;
	}
	c->set[k] = true;
	return 0;
}

static int find_key(const char *section, const char *name)
{
	for (unsigned k = 0; k < CFG_NKEYS; k++)
		if (!strcmp(keys[k].section, section) &&
		    !strcmp(keys[k].name, name))
			return (int)k;
	return -1;
}

int cfg_set(struct cfg *c, const char *section, const char *key,
	    const char *value, char *err, size_t errcap)
{
	int k = find_key(section, key);
	int r;

	if (k < 0) {
		expect(err, errcap, "unknown key %s.%s", section, key);
		return -ENOENT;
	}
	/* a flag replaces a single value but adds to a list */
	r = set_key(c, (enum cfg_key)k, value, err, errcap);
	if (r == 0)
		c->line[k] = 0;
	return r;
}

void cfg_merge(struct cfg *base, const struct cfg *over)
{
	for (unsigned k = 0; k < CFG_NKEYS; k++) {
		if (!over->set[k])
			continue;
		base->set[k] = true;
		base->line[k] = over->line[k];
		switch ((enum cfg_key)k) {
		case CFG_K_LISTEN:
			memcpy(base->listen, over->listen,
			       sizeof(base->listen));
			base->nlisten = over->nlisten;
			break;
		case CFG_K_WORKERS:
			base->workers = over->workers;
			break;
		case CFG_K_DOMAIN:
			memcpy(base->domain, over->domain,
			       sizeof(base->domain));
			base->ndomains = over->ndomains;
			break;
		case CFG_K_DB:
			memcpy(base->db, over->db, sizeof(base->db));
			break;
		case CFG_K_ADMIN:
			memcpy(base->admin, over->admin, sizeof(base->admin));
			break;
		case CFG_K_AUTH:
			base->auth = over->auth;
			break;
		case CFG_K_MODE:
			base->mode = over->mode;
			break;
		case CFG_K_UAS:
			base->uas = over->uas;
			break;
		case CFG_K_MIN_EXPIRES:
			base->min_expires = over->min_expires;
			break;
		case CFG_K_MAX_EXPIRES:
			base->max_expires = over->max_expires;
			break;
		case CFG_K_DEFAULT_EXPIRES:
			base->default_expires = over->default_expires;
			break;
		case CFG_K_NONCE_LIFETIME:
			base->nonce_lifetime = over->nonce_lifetime;
			break;
		case CFG_K_DIGEST_ALGORITHMS:
			base->digest_algs = over->digest_algs;
			break;
		case CFG_K_TLS_CERT:
			memcpy(base->tls_cert, over->tls_cert,
			       sizeof(base->tls_cert));
			break;
		case CFG_K_TLS_KEY:
			memcpy(base->tls_key, over->tls_key,
			       sizeof(base->tls_key));
			break;
		case CFG_K_TLS_CA:
			memcpy(base->tls_ca, over->tls_ca,
			       sizeof(base->tls_ca));
			break;
		case CFG_K_LOG_LEVEL:
			base->log_level = over->log_level;
			break;
		case CFG_K_LOG_FORMAT:
			base->log_format = over->log_format;
			break;
		case CFG_K_PROXY_ROUTE:
			memcpy(base->route, over->route, sizeof(base->route));
			base->nroutes = over->nroutes;
			break;
		case CFG_K_PROXY_TRUSTED:
			memcpy(base->trusted, over->trusted,
			       sizeof(base->trusted));
			base->ntrusted = over->ntrusted;
			break;
		case CFG_K_PROXY_FORK_TIMEOUT:
			base->fork_timeout = over->fork_timeout;
			break;
		case CFG_K_PROXY_DNS:
			memcpy(base->dns, over->dns, sizeof(base->dns));
			base->ndns = over->ndns;
			break;
		case CFG_K_PROXY_DNS_TIMEOUT:
			base->dns_timeout = over->dns_timeout;
			break;
		case CFG_NKEYS:
			break;
		}
	}
}

/* ------------------------------------------------------------------------ */
/* Errors and "did you mean"                                                */
/* ------------------------------------------------------------------------ */

static void add_error(struct cfg_errors *e, unsigned line, unsigned column,
		      const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void add_error(struct cfg_errors *e, unsigned line, unsigned column,
		      const char *fmt, ...)
{
	va_list ap;

	if (e->n >= CFG_MAX_ERRORS) {
		e->dropped++;
		return;
	}
	e->v[e->n].line = line;
	e->v[e->n].column = column;
	va_start(ap, fmt);
	vsnprintf(e->v[e->n].msg, sizeof(e->v[e->n].msg), fmt, ap);
	va_end(ap);
	e->n++;
}

/* Edit distance (insertions, deletions, substitutions, transpositions of
 * neighbours), for names of at most 31 characters. */
static unsigned distance(const char *a, const char *b)
{
	unsigned d[32][32];
	size_t la = strlen(a), lb = strlen(b);

	if (la > 31 || lb > 31)
		return 99;
	for (size_t i = 0; i <= la; i++)
		d[i][0] = (unsigned)i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = (unsigned)j;
	for (size_t i = 1; i <= la; i++) {
		for (size_t j = 1; j <= lb; j++) {
			unsigned cost = a[i - 1] != b[j - 1];
			unsigned v = d[i - 1][j] + 1;

			if (d[i][j - 1] + 1 < v)
				v = d[i][j - 1] + 1;
			if (d[i - 1][j - 1] + cost < v)
				v = d[i - 1][j - 1] + cost;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] &&
			    a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v)
				v = d[i - 2][j - 2] + 1;
			d[i][j] = v;
		}
	}
	return d[la][lb];
}

/* Close enough to be a typo: at most 2 edits, and fewer than half the
 * name. */
static bool close_to(const char *typed, const char *name)
{
	unsigned d = distance(typed, name);

	return d <= 2 && (size_t)d * 2 < strlen(name);
}

static void unknown_key(struct cfg_errors *e, unsigned line, unsigned col,
			const char *section, const char *name)
{
	int best = -1;

	/* the right name in the wrong section first, then a typo here */
	for (unsigned k = 0; k < CFG_NKEYS && best < 0; k++)
		if (!strcmp(keys[k].name, name))
			best = (int)k;
	if (best >= 0) {
		add_error(e, line, col,
			  "unknown key \"%s\" in [%s]; did you mean \"%s\" "
			  "in [%s]?",
			  name, section, name, keys[best].section);
		return;
	}
	for (unsigned k = 0; k < CFG_NKEYS; k++) {
		if (strcmp(keys[k].section, section) != 0 ||
		    !close_to(name, keys[k].name))
			continue;
		if (best < 0 || distance(name, keys[k].name) <
					distance(name, keys[best].name))
			best = (int)k;
	}
	if (best >= 0) {
		add_error(e, line, col,
			  "unknown key \"%s\" in [%s]; did you mean \"%s\"?",
			  name, section, keys[best].name);
		return;
	}
	add_error(e, line, col, "unknown key \"%s\" in [%s]", name, section);
}

static void unknown_section(struct cfg_errors *e, unsigned line, unsigned col,
			    const char *name)
{
	for (unsigned i = 0; i < NSECTIONS; i++) {
		if (close_to(name, sections[i])) {
			add_error(e, line, col,
				  "unknown section [%s]; did you mean [%s]?",
				  name, sections[i]);
			return;
		}
	}
	add_error(e, line, col,
		  "unknown section [%s]; expected server, registrar, tls or "
		  "log",
		  name);
}

/* ------------------------------------------------------------------------ */
/* The parser                                                               */
/* ------------------------------------------------------------------------ */

static bool is_ws(char ch)
{
	return ch == ' ' || ch == '\t';
}

static bool is_name_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || ch == '.';
}

struct line {
	const char *p; /* the line, without its end-of-line */
	size_t len;
	unsigned no;
};

static unsigned col_of(const struct line *l, const char *at)
{
	return (unsigned)(at - l->p) + 1;
}

/* "[name]": the section name into @p out ("" when invalid). Returns the
 * section index, NSECTIONS for an unknown one, -1 for a syntax error. */
static int parse_section(const struct line *l, const char *p,
			 struct cfg_errors *e, char *out, size_t cap)
{
	const char *end = l->p + l->len, *name, *rb;
	size_t n;

	out[0] = '\0';
	name = p + 1;
	while (name < end && is_ws(*name))
		name++;
	rb = memchr(p, ']', (size_t)(end - p));
	if (!rb) {
		add_error(e, l->no, col_of(l, end),
			  "expected ] to close the section name");
		return -1;
	}
	n = 0;
	while (name + n < rb && is_name_char(name[n]))
		n++;
	for (const char *q = name + n; q < rb; q++) {
		if (!is_ws(*q)) {
			add_error(e, l->no, col_of(l, q),
				  "expected a section name (letters, digits, "
				  "_) before ]");
			return -1;
		}
	}
	if (n == 0) {
		add_error(e, l->no, col_of(l, name),
			  "expected a section name before ]");
		return -1;
	}
	for (const char *q = rb + 1; q < end; q++) {
		if (*q == '#' || *q == ';')
			break;
		if (!is_ws(*q)) {
			add_error(e, l->no, col_of(l, q),
				  "expected nothing after ]");
			return -1;
		}
	}
	if (n >= cap)
		n = cap - 1;
	memcpy(out, name, n);
	out[n] = '\0';
	for (unsigned i = 0; i < NSECTIONS; i++)
		if (!strcmp(out, sections[i]))
			return (int)i;
	unknown_section(e, l->no, col_of(l, name), out);
	return (int)NSECTIONS;
}

/* The value after '=' at @p p: quoted or bare, comments removed, into
 * @p out. Returns 0 or -EINVAL (error recorded). */
static int parse_value(const struct line *l, const char *p,
		       struct cfg_errors *e, char *out, size_t cap,
		       const char **vstart)
{
	const char *end = l->p + l->len;
	size_t n = 0;

	while (p < end && is_ws(*p))
		p++;
	*vstart = p;
	if (p < end && *p == '"') {
		const char *q = p + 1;

		for (;; q++) {
			if (q >= end) {
				add_error(e, l->no, col_of(l, end),
					  "expected a closing \"");
				return -EINVAL;
			}
			if (*q == '"')
				break;
			if (*q == '\\' && q + 1 < end &&
			    (q[1] == '"' || q[1] == '\\'))
				q++;
			if (n + 1 >= cap) {
				add_error(e, l->no, col_of(l, p),
					  "expected a value of at most %zu "
					  "characters",
					  cap - 1);
				return -EINVAL;
			}
			out[n++] = *q;
		}
		for (q++; q < end; q++) {
			if (*q == '#' || *q == ';')
				break;
			if (!is_ws(*q)) {
				add_error(e, l->no, col_of(l, q),
					  "expected nothing after the closing "
					  "\"");
				return -EINVAL;
			}
		}
		out[n] = '\0';
		return 0;
	}
	/* bare: up to a comment that follows whitespace, trimmed */
	const char *stop = end;

	for (const char *q = p; q < end; q++) {
		if ((*q == '#' || *q == ';') && q > p && is_ws(q[-1])) {
			stop = q;
			break;
		}
	}
	while (stop > p && is_ws(stop[-1]))
		stop--;
	n = (size_t)(stop - p);
	if (n >= cap) {
		add_error(e, l->no, col_of(l, p),
			  "expected a value of at most %zu characters",
			  cap - 1);
		return -EINVAL;
	}
	memcpy(out, p, n);
	out[n] = '\0';
	return 0;
}

struct state {
	int section; /* index in sections[]; -1 none yet; NSECTIONS unknown */
	char section_name[64];
	char value[CFG_PATH_MAX];
};

static void parse_line(struct cfg *c, const struct line *l, struct state *st,
		       struct cfg_errors *e)
{
	const char *p = l->p, *end = l->p + l->len, *name, *vstart;
	char key[64], err[160];
	size_t n;
	int k;

	while (p < end && is_ws(*p))
		p++;
	if (p == end || *p == '#' || *p == ';')
		return;
	if (*p == '[') {
		st->section = parse_section(l, p, e, st->section_name,
					    sizeof(st->section_name));
		return;
	}
	name = p;
	while (p < end && is_name_char(*p))
		p++;
	n = (size_t)(p - name);
	while (p < end && is_ws(*p))
		p++;
	if (p == end || *p != '=') {
		add_error(e, l->no, col_of(l, n ? p : name),
			  n ? "expected = after the key"
			    : "expected key = value, a [section] or a comment");
		return;
	}
	if (n == 0) {
		add_error(e, l->no, col_of(l, name), "expected a key before =");
		return;
	}
	if (st->section == (int)NSECTIONS)
		return; /* under an unknown section, already reported */
	if (n >= sizeof(key))
		n = sizeof(key) - 1;
	memcpy(key, name, n);
	key[n] = '\0';
	if (st->section < 0) {
		add_error(e, l->no, col_of(l, name),
			  "key \"%s\" outside a section; expected a [section] "
			  "line first",
			  key);
		return;
	}
	k = find_key(sections[st->section], key);
	if (k < 0) {
		unknown_key(e, l->no, col_of(l, name), sections[st->section],
			    key);
		return;
	}
	if (parse_value(l, p + 1, e, st->value, sizeof(st->value), &vstart) < 0)
		return;
	if (c->set[k] && !keys[k].repeat) {
		add_error(e, l->no, col_of(l, name),
			  "duplicate key \"%s\" (first set on line %u); "
			  "expected one value",
			  key, c->line[k]);
		return;
	}
	if (set_key(c, (enum cfg_key)k, st->value, err, sizeof(err)) < 0) {
		add_error(e, l->no, col_of(l, vstart), "%s", err);
		return;
	}
	c->line[k] = l->no;
}

int cfg_parse(struct cfg *c, const char *text, size_t len,
	      struct cfg_errors *errs)
{
	struct state st = {.section = -1};
	const char *p = text, *end = text + len;
	unsigned no = 0;

	errs->n = 0;
	errs->dropped = 0;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		struct line l = {p, nl ? (size_t)(nl - p) : (size_t)(end - p),
				 ++no};

		if (l.len && l.p[l.len - 1] == '\r')
			l.len--;
		if (memchr(l.p, '\0', l.len)) {
			add_error(errs, no,
				  col_of(&l, memchr(l.p, '\0', l.len)),
				  "expected text, found a NUL byte");
		} else {
			parse_line(c, &l, &st, errs);
		}
		p = nl ? nl + 1 : end;
	}
	return errs->n || errs->dropped ? -EINVAL : 0;
}

int cfg_load(struct cfg *c, const char *path, struct cfg_errors *errs)
{
	FILE *f = fopen(path, "rb");
	struct stat sb;
	char *buf;
	size_t n;
	int r;

	errs->n = 0;
	errs->dropped = 0;
	if (!f)
		return -errno;
	if (fstat(fileno(f), &sb) < 0) {
		r = -errno;
		fclose(f);
		return r;
	}
	if (sb.st_size > (off_t)1 << 20) {
		fclose(f);
		return -EFBIG;
	}
	buf = malloc((size_t)sb.st_size + 1);
	if (!buf) {
		fclose(f);
		return -ENOMEM;
	}
	n = fread(buf, 1, (size_t)sb.st_size, f);
	r = ferror(f) ? -EIO : 0;
	fclose(f);
	if (r == 0)
		r = cfg_parse(c, buf, n, errs);
	free(buf);
	return r;
}

/* ------------------------------------------------------------------------ */
/* Checks across keys                                                       */
/* ------------------------------------------------------------------------ */

static unsigned later(const struct cfg *c, enum cfg_key a, enum cfg_key b)
{
	return c->line[a] > c->line[b] ? c->line[a] : c->line[b];
}

int cfg_validate(const struct cfg *c, struct cfg_errors *errs)
{
	bool tls = false;
	unsigned line;

	if (c->min_expires > c->max_expires) {
		line = later(c, CFG_K_MIN_EXPIRES, CFG_K_MAX_EXPIRES);
		add_error(errs, line, 1,
			  "min_expires %u is above max_expires %u; expected "
			  "min_expires <= default_expires <= max_expires",
			  c->min_expires, c->max_expires);
	} else if (c->default_expires < c->min_expires ||
		   c->default_expires > c->max_expires) {
		line = later(c, CFG_K_DEFAULT_EXPIRES,
			     c->default_expires < c->min_expires
				     ? CFG_K_MIN_EXPIRES
				     : CFG_K_MAX_EXPIRES);
		add_error(errs, line, 1,
			  "default_expires %u is outside %u..%u; expected "
			  "min_expires <= default_expires <= max_expires",
			  c->default_expires, c->min_expires, c->max_expires);
	}
	for (unsigned i = 0; i < c->nlisten; i++)
		if (!strncasecmp(c->listen[i], "tls:", 4) ||
		    !strncasecmp(c->listen[i], "wss:", 4))
			tls = true;
	if (tls && (!c->tls_cert[0] || !c->tls_key[0]))
		add_error(errs, c->line[CFG_K_LISTEN], 1,
			  "a tls: or wss: listen needs [tls] cert and key");
	return errs->n || errs->dropped ? -EINVAL : 0;
}
