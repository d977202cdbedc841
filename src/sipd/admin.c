/**
 * @file admin.c  The admin socket (see admin.h): a libuv pipe server on the
 * main thread's loop. Each connection reads one line, answers it in one
 * write and is closed.
 */
#include "sipd/admin.h"

#include "location/location.h"
#include "sipd/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

/* Connections open at once; more are closed at once. */
#define MAX_CONNS 16
/* A connection that has not sent its line within IDLE_MS, or not read its
 * answer and closed within ANSWER_MS after, is closed. */
#define IDLE_MS 10000
#define ANSWER_MS 120000

struct sipd_admin {
	uv_pipe_t server;
	uv_loop_t *loop;
	struct loc_store *store;
	struct sipd_log *log;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	unsigned nconns;
	bool closing;
	bool server_closed;  /* freed once it and every connection are */
	struct aconn *conns; /* list, for closing */
};

struct aconn {
	uv_pipe_t pipe;
	uv_timer_t idle;
	unsigned handles; /* open: pipe and timer */
	struct sipd_admin *a;
	struct aconn *prev, *next;
	uv_write_t wr;
	uv_shutdown_t sd;
	bool answered;
	size_t n;
	char line[SIPD_ADMIN_LINE_MAX + 1];
	/* the answer */
	char *out;
	size_t outlen, outcap;
	bool outfail;
};

static void out_put(struct aconn *c, const char *s, size_t len)
{
	if (c->outfail)
		return;
	if (c->outlen + len > c->outcap) {
		size_t cap = c->outcap ? c->outcap : 4096;
		char *p;

		while (cap < c->outlen + len)
			cap *= 2;
		p = realloc(c->out, cap);
		if (!p) {
			c->outfail = true;
			return;
		}
		c->out = p;
		c->outcap = cap;
	}
	memcpy(c->out + c->outlen, s, len);
	c->outlen += len;
}

static void out_printf(struct aconn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void out_printf(struct aconn *c, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > 0)
		out_put(c, buf,
			(size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

static const char *errno_name(int e)
{
	switch (e) {
	case ENOENT:
		return "ENOENT";
	case EINVAL:
		return "EINVAL";
	case EAGAIN:
		return "EAGAIN";
	case ENOMEM:
		return "ENOMEM";
	case E2BIG:
		return "E2BIG";
	default:
		return "EIO";
	}
}

static void out_err(struct aconn *c, int e, const char *text)
{
	out_printf(c, "err %s %s\n", errno_name(e), text ? text : strerror(e));
}

/* ------------------------------------------------------------------------ */
/* Commands                                                                 */
/* ------------------------------------------------------------------------ */

struct listing {
	struct aconn *c;
	int64_t now;
	unsigned n;
};

static int list_cb(const struct loc_binding *b, void *arg)
{
	struct listing *l = arg;
	char buf[LOC_MAX_FIELD * 4 + 256];
	int n;

	if (b->expires <= l->now)
		return 0; /* expired, not swept yet */
	n = loc_binding_format(b, l->now, buf, sizeof(buf));
	if (n < 0)
		return 0;
	out_put(l->c, "= ", 2);
	out_put(l->c, buf, (size_t)n);
	l->n++;
	return 0;
}

/* Split @p s at spaces into at most @p max words. */
static int words(char *s, char **w, int max)
{
	int n = 0;

	while (*s) {
		while (*s == ' ' || *s == '\t')
			*s++ = '\0';
		if (!*s)
			break;
		if (n == max)
			return max + 1;
		w[n++] = s;
		while (*s && *s != ' ' && *s != '\t')
			s++;
	}
	return n;
}

static void command(struct sipd_admin *a, struct aconn *c, char *line)
{
	char *w[5], aor[1024];
	int n = words(line, w, 4), r;
	struct listing l = {c, (int64_t)time(NULL), 0};

	if (n == 1 && !strcmp(w[0], "ping")) {
		out_printf(c, "ok 0\n");
		return;
	}
	if (n < 2 || n > 4 || strcmp(w[0], "reg") != 0) {
		out_err(c, EINVAL, "unknown command (ping, reg list, reg del)");
		return;
	}
	if (n >= 3 && loc_aor_canon(sip_str_c(w[2]), aor, sizeof(aor)) < 0) {
		out_err(c, EINVAL, "not a SIP address-of-record");
		return;
	}
	if (!strcmp(w[1], "list") && n <= 3) {
		if (n == 3)
			loc_store_lookup(a->store, sip_str_c(aor), l.now,
					 list_cb, &l);
		else
			loc_store_foreach(a->store, list_cb, &l);
		out_printf(c, "ok %u\n", l.n);
		return;
	}
	if (strcmp(w[1], "del") != 0 || n < 3) {
		out_err(c, EINVAL,
			"usage: reg list [AOR] | reg del AOR [CONTACT]");
		return;
	}
	if (n == 4)
		r = loc_store_remove(a->store, sip_str_c(aor), sip_str_c(w[3]),
				     SIP_STR_NULL, 0);
	else
		r = loc_store_remove_aor(a->store, sip_str_c(aor), SIP_STR_NULL,
					 0);
	if (r == 0 && n == 4)
		r = 1;
	/* answered once committed: the main thread waits, workers do not */
	if (r > 0 && loc_store_flush(a->store) < 0) {
		out_err(c, EIO, "the change could not be written");
		return;
	}
	if (r < 0)
		out_err(c, -r, r == -ENOENT ? "no such binding" : NULL);
	else
		out_printf(c, "ok %d\n", r);
	sipd_logf(a->log, SIPD_LOG_INFO, SIPD_LOG_MAIN, "admin",
		  "admin: reg del %s%s%s: %s", aor, n == 4 ? " " : "",
		  n == 4 ? w[3] : "", r < 0 ? strerror(-r) : "done");
}

/* ------------------------------------------------------------------------ */
/* Connections                                                              */
/* ------------------------------------------------------------------------ */

static void conn_closed(uv_handle_t *h)
{
	struct aconn *c = h->data;
	struct sipd_admin *a = c->a;

	if (--c->handles)
		return; /* the other handle's callback frees */
	if (c->prev)
		c->prev->next = c->next;
	else
		a->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	a->nconns--;
	free(c->out);
	free(c);
	if (a->server_closed && !a->nconns)
		free(a);
}

static void conn_close(struct aconn *c)
{
	if (!uv_is_closing((uv_handle_t *)&c->pipe)) {
		uv_close((uv_handle_t *)&c->pipe, conn_closed);
		uv_close((uv_handle_t *)&c->idle, conn_closed);
	}
}

static void on_idle(uv_timer_t *t)
{
	conn_close(t->data);
}

static void shut(uv_shutdown_t *req, int status)
{
	if (status < 0)
		conn_close(req->data);
	/* else the client reads to the end and closes: read_cb sees it */
}

/* The answer is out: end our side, and close once the client has (what
 * it still sends is read and dropped — closing with unread bytes would
 * reset the connection before the client has read the answer). */
static void written(uv_write_t *req, int status)
{
	struct aconn *c = req->data;

	c->sd.data = c;
	if (status < 0 ||
	    uv_shutdown(&c->sd, (uv_stream_t *)&c->pipe, shut) < 0)
		conn_close(c);
}

static void answer(struct aconn *c)
{
	uv_buf_t b;

	c->answered = true;
	c->n = 0;
	uv_timer_start(&c->idle, on_idle, ANSWER_MS, 0);
	if (c->outfail) {
		conn_close(c);
		return;
	}
	b = uv_buf_init(c->out, (unsigned)c->outlen);
	c->wr.data = c;
	if (uv_write(&c->wr, (uv_stream_t *)&c->pipe, &b, 1, written) < 0)
		conn_close(c);
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct aconn *c = h->data;

	(void)hint;
	buf->base = c->line + c->n;
	buf->len = sizeof(c->line) - 1 - c->n;
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct aconn *c = s->data;
	char *nl;

	(void)buf;
	if (nread < 0) {
		conn_close(c);
		return;
	}
	if (c->answered)
		return; /* dropped */
	c->n += (size_t)nread;
	c->line[c->n] = '\0';
	nl = memchr(c->line, '\n', c->n);
	if (nl) {
		*nl = '\0';
		if (nl > c->line && nl[-1] == '\r')
			nl[-1] = '\0';
		command(c->a, c, c->line);
		answer(c);
	} else if (c->n >= sizeof(c->line) - 1) {
		out_err(c, E2BIG, "line too long");
		answer(c);
	}
}

static void on_connection(uv_stream_t *server, int status)
{
	struct sipd_admin *a = server->data;
	struct aconn *c;

	if (status < 0)
		return;
	c = calloc(1, sizeof(*c));
	if (!c || uv_pipe_init(a->loop, &c->pipe, 0) < 0) {
		free(c);
		return;
	}
	uv_timer_init(a->loop, &c->idle);
	c->handles = 2;
	c->a = a;
	c->pipe.data = c;
	c->idle.data = c;
	uv_timer_start(&c->idle, on_idle, IDLE_MS, 0);
	c->next = a->conns;
	if (a->conns)
		a->conns->prev = c;
	a->conns = c;
	a->nconns++;
	if (uv_accept(server, (uv_stream_t *)&c->pipe) < 0 ||
	    a->nconns > MAX_CONNS ||
	    uv_read_start((uv_stream_t *)&c->pipe, alloc_cb, read_cb) < 0)
		conn_close(c);
}

/* ------------------------------------------------------------------------ */
/* The listener                                                             */
/* ------------------------------------------------------------------------ */

/* Whether a server answers on the socket file @p path. */
static bool alive(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool up;

	if (fd < 0)
		return false;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	up = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return up;
}

static int bind_0600(uv_pipe_t *p, const char *path)
{
	/* the socket file takes its mode from the umask at bind(): no
	 * other thread creates files while sipd starts */
	mode_t old = umask(0177);
	int r = uv_pipe_bind(p, path);

	umask(old);
	return r;
}

int sipd_admin_open(uv_loop_t *loop, const char *path, struct loc_store *store,
		    struct sipd_log *log, struct sipd_admin **out, char *err,
		    size_t errcap)
{
	struct sipd_admin *a;
	struct stat st;
	int r;

	if (strlen(path) >= sizeof(a->path)) {
		snprintf(err, errcap,
			 "admin socket %s: longer than %zu bytes (give "
			 "--admin PATH, or off)",
			 path, sizeof(a->path) - 1);
		return -ENAMETOOLONG;
	}
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->loop = loop;
	a->store = store;
	a->log = log;
	memcpy(a->path, path, strlen(path) + 1);
	r = uv_pipe_init(loop, &a->server, 0);
	if (r < 0) {
		free(a);
		return r;
	}
	a->server.data = a;
	r = bind_0600(&a->server, path);
	if (r == UV_EADDRINUSE && lstat(path, &st) == 0 &&
	    S_ISSOCK(st.st_mode) && !alive(path)) {
		/* left by a sipd that is gone */
		unlink(path);
		r = bind_0600(&a->server, path);
	}
	if (r == 0)
		r = uv_listen((uv_stream_t *)&a->server, 16, on_connection);
	if (r < 0) {
		snprintf(err, errcap, "admin socket %s: %s%s", path,
			 uv_strerror(r),
			 r == UV_EADDRINUSE ? " (another sipd serves it?)"
					    : "");
		a->path[0] = '\0'; /* not ours to remove */
		sipd_admin_close(a);
		return r;
	}
	*out = a;
	return 0;
}

static void server_closed(uv_handle_t *h)
{
	struct sipd_admin *a = h->data;

	a->server_closed = true;
	if (!a->nconns)
		free(a);
}

void sipd_admin_close(struct sipd_admin *a)
{
	if (!a)
		return;
	a->closing = true;
	for (struct aconn *c = a->conns; c; c = c->next)
		conn_close(c);
	if (a->path[0])
		unlink(a->path);
	uv_close((uv_handle_t *)&a->server, server_closed);
}
