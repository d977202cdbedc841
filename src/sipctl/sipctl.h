/**
 * @file sipctl.h  Subcommands of the sipctl tool and their shared helpers.
 *
 * Every subcommand takes its own argv (argv[0] is the subcommand name) and
 * returns the process exit status: 0 success, 1 a negative result (e.g. the
 * message did not parse), 2 a usage or I/O error.
 */
#ifndef SIPCTL_SIPCTL_H
#define SIPCTL_SIPCTL_H

#include "base/base.h"

#include <stddef.h>

struct json;

enum {
	SIPCTL_EXIT_OK = 0,
	SIPCTL_EXIT_FAIL = 1,
	SIPCTL_EXIT_USAGE = 2,
};

/** Largest input file sipctl reads, bytes. */
#define SIPCTL_MAX_INPUT ((size_t)16 * 1024 * 1024)

/** Options given before the command name. */
struct sipctl_opts {
	const char *db; /**< --db PATH, or NULL for the default */
};

/**
 * The sipd database path (sip_db_path(): --db, $SIPD_DB or the XDG data
 * directory) into @p buf, printing why there is none.
 * @return 0 or a negative errno.
 */
int sipctl_db_path(const char *given, char *buf, size_t cap);

/** `sipctl parse [--stream] FILE|-` */
int sipctl_parse(int argc, char **argv);

/** `sipctl user add|del|passwd|list ...` on the user store. */
int sipctl_user(const struct sipctl_opts *opts, int argc, char **argv);

/** `sipctl domain add|del|list ...` on the user store. */
int sipctl_domain(const struct sipctl_opts *opts, int argc, char **argv);

/** `sipctl reg list [AOR]` and `sipctl reg del AOR [CONTACT]` on the
 * location store of the sipd database. */
int sipctl_reg(const struct sipctl_opts *opts, int argc, char **argv);

/**
 * Read all of @p path ("-" for stdin), binary safe, at most @p max bytes.
 * On success *buf is malloc'ed (never NULL, free it) and *len set.
 * @return 0, -EFBIG when larger than @p max, or another negative errno.
 */
int sipctl_read_file(const char *path, size_t max, char **buf, size_t *len);

/** Write "sdp": the parsed session description of @p body, or
 * {"error", "line"} when it does not parse. */
void sipctl_put_sdp(struct json *j, sip_str body);

#endif /* SIPCTL_SIPCTL_H */
