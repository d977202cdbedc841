/**
 * @file reg.c  `sipctl reg list|del`: the registrar's bindings.
 *
 * When a sipd runs on the database, its admin socket (`--admin PATH`,
 * default the database path + ".sock", see src/sipd/admin.h) answers: the
 * bindings are listed from its memory and removed from memory and database
 * at once. When nobody answers on the socket, the database file is opened
 * as a location store of its own and read or changed directly.
 */
#include "location/location.h"
#include "sipctl/sipctl.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct list_state {
	int64_t now;
	unsigned n;
};

static int print_binding(const struct loc_binding *b, void *arg)
{
	struct list_state *st = arg;
	char buf[LOC_MAX_FIELD * 4 + 256];

	if (b->expires <= st->now ||
	    loc_binding_format(b, st->now, buf, sizeof(buf)) < 0)
		return 0;
	fputs(buf, stdout);
	st->n++;
	return 0;
}

static int reg_usage(void)
{
	fputs("usage: sipctl [--db PATH] reg [--admin PATH|off] list [AOR]\n"
	      "       sipctl [--db PATH] reg [--admin PATH|off] del AOR "
	      "[CONTACT]\n",
	      stderr);
	return SIPCTL_EXIT_USAGE;
}

/* ------------------------------------------------------------------------ */
/* Through the running sipd                                                 */
/* ------------------------------------------------------------------------ */

/* Connect to the admin socket. @return the fd, -ENOTCONN when no server
 * answers there (no file, or one left by a sipd that is gone), or another
 * negative errno (e.g. -EACCES: somebody else's server). */
static int admin_connect(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct timeval tv = {.tv_sec = 120};
	int fd, e;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENOTCONN; /* sipd could not have used it either */
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		e = errno;
		close(fd);
		return e == ENOENT || e == ECONNREFUSED ? -ENOTCONN : -e;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

/* Send @p req, print the data lines, and return the status line's N
 * (>= 0), or -1 with its error printed. */
static long admin_call(int fd, const char *req, const char *what)
{
	size_t len = strlen(req), off = 0, n = 0, cap = 65536;
	char *buf = malloc(cap), *line, *nl;
	long result = -1;
	ssize_t r;

	if (!buf)
		return -1;
	while (off < len) {
		r = write(fd, req + off, len - off);
		if (r <= 0) {
			fprintf(stderr, "sipctl: admin socket: %s\n",
				strerror(errno));
			free(buf);
			return -1;
		}
		off += (size_t)r;
	}
	for (;;) {
		if (n == cap) {
			char *p = realloc(buf, cap * 2);
			if (!p)
				break;
			buf = p;
			cap *= 2;
		}
		r = read(fd, buf + n, cap - n);
		if (r <= 0)
			break;
		n += (size_t)r;
		/* print the complete data lines as they come */
		for (line = buf;
		     (nl = memchr(line, '\n', n - (size_t)(line - buf)));
		     line = nl + 1) {
			*nl = '\0';
			if (!strncmp(line, "= ", 2)) {
				puts(line + 2);
			} else if (!strncmp(line, "ok ", 3)) {
				result = strtol(line + 3, NULL, 10);
			} else if (!strncmp(line, "err ", 4)) {
				const char *text = strchr(line + 4, ' ');
				fprintf(stderr, "sipctl: %s: %s\n", what,
					text ? text + 1 : line + 4);
			}
		}
		n -= (size_t)(line - buf);
		memmove(buf, line, n);
	}
	if (r < 0)
		fprintf(stderr, "sipctl: admin socket: %s\n", strerror(errno));
	free(buf);
	return result;
}

/* The command through the running server. */
static int via_admin(int fd, int npos, const char **pos, const char *aor)
{
	char req[3 * 1024 + 32];
	long r;

	if (!strcmp(pos[0], "list"))
		snprintf(req, sizeof(req), "reg list%s%s\n",
			 npos == 2 ? " " : "", npos == 2 ? aor : "");
	else
		snprintf(req, sizeof(req), "reg del %s%s%s\n", aor,
			 npos == 3 ? " " : "", npos == 3 ? pos[2] : "");
	r = admin_call(fd, req, npos == 3 ? pos[2] : aor);
	close(fd);
	if (r < 0)
		return SIPCTL_EXIT_FAIL;
	if (!strcmp(pos[0], "list"))
		return SIPCTL_EXIT_OK;
	if (npos == 3) {
		printf("binding %s of %s removed\n", pos[2], aor);
		return SIPCTL_EXIT_OK;
	}
	if (r == 0) {
		fprintf(stderr, "sipctl: %s has no bindings\n", aor);
		return SIPCTL_EXIT_FAIL;
	}
	printf("%ld binding%s of %s removed\n", r, r == 1 ? "" : "s", aor);
	return SIPCTL_EXIT_OK;
}

/* "alice@example.com" or "sip:alice@example.com" → canonical AOR. */
static int canon(const char *in, char *out, size_t cap)
{
	char buf[1024];
	int n;

	if (strncmp(in, "sip:", 4) == 0 || strncmp(in, "sips:", 5) == 0)
		n = snprintf(buf, sizeof(buf), "%s", in);
	else
		n = snprintf(buf, sizeof(buf), "sip:%s", in);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return -ENAMETOOLONG;
	n = loc_aor_canon(sip_str_c(buf), out, cap);
	if (n < 0)
		fprintf(stderr, "sipctl: '%s' is not a SIP address-of-record\n",
			in);
	return n;
}

int sipctl_reg(const struct sipctl_opts *opts, int argc, char **argv)
{
	const char *db = opts->db, *admin = NULL, *pos[3];
	char path[PATH_MAX], apath[PATH_MAX + 8], aor[1024], err[512] = "";
	struct loc_config cfg = {0};
	struct loc_store *store;
	struct list_state st = {0};
	int npos = 0, rc;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--db") == 0 && i + 1 < argc)
			db = argv[++i];
		else if (strncmp(argv[i], "--db=", 5) == 0)
			db = argv[i] + 5;
		else if (strcmp(argv[i], "--admin") == 0 && i + 1 < argc)
			admin = argv[++i];
		else if (strncmp(argv[i], "--admin=", 8) == 0)
			admin = argv[i] + 8;
		else if ((argv[i][0] == '-' && argv[i][1]) || npos >= 3)
			return reg_usage();
		else
			pos[npos++] = argv[i];
	}
	if (npos < 1 || (strcmp(pos[0], "list") == 0  ? npos > 2
			 : strcmp(pos[0], "del") == 0 ? npos < 2
						      : true))
		return reg_usage();
	if (npos >= 2 && canon(pos[1], aor, sizeof(aor)) < 0)
		return SIPCTL_EXIT_USAGE;
	if (sipctl_db_path(db, path, sizeof(path)) < 0)
		return SIPCTL_EXIT_FAIL;
	if (!admin || strcmp(admin, "off") != 0) {
		int fd;

		snprintf(apath, sizeof(apath), "%s%s", admin ? admin : path,
			 admin ? "" : ".sock");
		fd = admin_connect(apath);
		if (fd >= 0)
			return via_admin(fd, npos, pos, aor);
		if (fd != -ENOTCONN) {
			fprintf(stderr,
				"sipctl: cannot reach the sipd admin socket "
				"%s: %s\n",
				apath, strerror(-fd));
			return SIPCTL_EXIT_FAIL;
		}
	}

	st.now = (int64_t)time(NULL);
	cfg.db_path = path;
	cfg.now = st.now;
	rc = loc_store_open(&cfg, &store, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "sipctl: %s\n", err[0] ? err : strerror(-rc));
		return SIPCTL_EXIT_FAIL;
	}
	if (strcmp(pos[0], "list") == 0) {
		if (npos == 2)
			loc_store_lookup(store, sip_str_c(aor), st.now,
					 print_binding, &st);
		else
			loc_store_foreach(store, print_binding, &st);
		rc = SIPCTL_EXIT_OK;
	} else if (npos == 3) {
		rc = loc_store_remove(store, sip_str_c(aor), sip_str_c(pos[2]),
				      SIP_STR_NULL, 0);
		if (rc == 0)
			printf("binding %s of %s removed\n", pos[2], aor);
		else
			fprintf(stderr, "sipctl: %s: %s\n", pos[2],
				rc == -ENOENT ? "no such binding"
					      : strerror(-rc));
		rc = rc == 0 ? SIPCTL_EXIT_OK : SIPCTL_EXIT_FAIL;
	} else {
		rc = loc_store_remove_aor(store, sip_str_c(aor), SIP_STR_NULL,
					  0);
		if (rc > 0)
			printf("%d binding%s of %s removed\n", rc,
			       rc == 1 ? "" : "s", aor);
		else if (rc == 0)
			fprintf(stderr, "sipctl: %s has no bindings\n", aor);
		else
			fprintf(stderr, "sipctl: %s: %s\n", aor, strerror(-rc));
		rc = rc > 0 ? SIPCTL_EXIT_OK : SIPCTL_EXIT_FAIL;
	}
	if (loc_store_flush(store) < 0) {
		fputs("sipctl: the change could not be written\n", stderr);
		rc = SIPCTL_EXIT_FAIL;
	}
	loc_store_destroy(store);
	return rc;
}
