/**
 * @file reg.c  `sipctl reg list|del`: the registrar's bindings in the sipd
 * database, read and written directly (src/location store).
 *
 * The file is opened as a location store of its own: the bindings a
 * running sipd holds in memory are those of the file when it started plus
 * what it wrote since, so `reg list` shows what the server has committed,
 * and `reg del` changes the file only — a running sipd keeps the binding
 * in memory until it expires or sipd restarts (reaching a running server
 * through an admin socket is not implemented).
 */
#include "location/location.h"
#include "resolv/resolv.h"
#include "sipctl/sipctl.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

struct list_state {
	int64_t now;
	unsigned n;
};

static int print_binding(const struct loc_binding *b, void *arg)
{
	struct list_state *st = arg;
	int64_t left = b->expires - st->now;

	if (left <= 0)
		return 0;
	printf("%.*s\t%.*s\texpires=%lld\tq=%u.%03u\t", SIP_STR_FMT(b->aor),
	       SIP_STR_FMT(b->contact), (long long)left, b->q / 1000u,
	       b->q % 1000u);
	if (b->instance.len)
		printf("instance=%.*s;reg-id=%u", SIP_STR_FMT(b->instance),
		       b->reg_id);
	else
		printf("instance=-");
	printf("\tflow=%s:%.*s", sip_transport_name(b->transport),
	       SIP_STR_FMT(b->source));
	if (b->path.len)
		printf("\tpath=%.*s", SIP_STR_FMT(b->path));
	printf("\n");
	st->n++;
	return 0;
}

static int reg_usage(void)
{
	fputs("usage: sipctl [--db PATH] reg list [AOR]\n"
	      "       sipctl [--db PATH] reg del AOR [CONTACT]\n",
	      stderr);
	return SIPCTL_EXIT_USAGE;
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
	const char *db = opts->db, *pos[3];
	char path[PATH_MAX], aor[1024], err[512] = "";
	struct loc_config cfg = {0};
	struct loc_store *store;
	struct list_state st = {0};
	int npos = 0, rc;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--db") == 0 && i + 1 < argc)
			db = argv[++i];
		else if (strncmp(argv[i], "--db=", 5) == 0)
			db = argv[i] + 5;
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
