/**
 * @file admin.h  sipd's admin socket: a Unix domain stream socket (mode
 * 0600) on the main thread's loop, through which `sipctl reg list|del`
 * reads and changes the bindings of the running server, so that memory and
 * database stay one.
 *
 * Protocol: one request per connection, one line of at most
 * SIPD_ADMIN_LINE_MAX bytes ending in LF, words separated by spaces:
 *
 *     ping
 *     reg list [AOR]
 *     reg del AOR [CONTACT]
 *
 * The answer is zero or more data lines, each "= " then a binding as
 * loc_binding_format() writes it (reg list), then one status line:
 * "ok N" (N: bindings listed or removed; ping: 0) or "err NAME TEXT"
 * (NAME an errno name such as ENOENT or EINVAL). Then the server closes
 * the connection. A connection that sends no complete line within 10 s
 * is closed, and so is one that has not read its answer within 120 s; at
 * most 16 are open at once (more are closed at once). A removal is answered
 * once the database has committed it (the main thread waits for the store's
 * writer; the workers do not).
 */
#ifndef SIPD_ADMIN_H
#define SIPD_ADMIN_H

#include <stddef.h>

struct loc_store;
struct sipd_admin;
struct sipd_log;
struct uv_loop_s;

/** Longest request line accepted (bytes, LF excluded). */
#define SIPD_ADMIN_LINE_MAX 4096

/**
 * Listen on @p path (created with mode 0600). A socket file left by a
 * sipd that is gone is replaced; one a running server answers on is not.
 * @return 0, -ENAMETOOLONG (longer than a Unix socket path may be),
 *         -EADDRINUSE (a running server has it), or the system error;
 *         @p err (may be NULL) says why.
 */
int sipd_admin_open(struct uv_loop_s *loop, const char *path,
		    struct loc_store *store, struct sipd_log *log,
		    struct sipd_admin **out, char *err, size_t errcap);

/** Stop listening, close the connections and remove the socket file (the
 * memory goes with the loop's close callbacks). NULL is a no-op. */
void sipd_admin_close(struct sipd_admin *a);

#endif /* SIPD_ADMIN_H */
