/**
 * @file user.c  `sipctl user` and `sipctl domain`: the users and served
 * domains of the sipd database (src/auth/ user store).
 *
 * A failure of the operation itself (the user exists, does not exist, the
 * domain is not served, the database cannot be opened or written) prints
 * one line on stderr and exits 1; bad command lines exit 2.
 */
#include "auth/auth.h"
#include "sipctl/sipctl.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Parsed arguments of one user/domain subcommand. */
struct args {
	const char *db;
	const char *password;
	const char *pos[2]; /* operation, operand */
	int npos;
};

static int parse_args(const struct sipctl_opts *opts, int argc, char **argv,
		      struct args *a)
{
	memset(a, 0, sizeof(*a));
	a->db = opts->db;
	for (int i = 1; i < argc; i++) {
		const char *s = argv[i];

		if (strcmp(s, "--password") == 0 || strcmp(s, "--db") == 0) {
			if (i + 1 >= argc) {
				fprintf(stderr, "sipctl: %s needs a value\n",
					s);
				return -EINVAL;
			}
			if (s[2] == 'p')
				a->password = argv[++i];
			else
				a->db = argv[++i];
		} else if (strncmp(s, "--password=", 11) == 0) {
			a->password = s + 11;
		} else if (strncmp(s, "--db=", 5) == 0) {
			a->db = s + 5;
		} else if (s[0] == '-' && s[1] != '\0') {
			fprintf(stderr, "sipctl: unknown option '%s'\n", s);
			return -EINVAL;
		} else if (a->npos < 2) {
			a->pos[a->npos++] = s;
		} else {
			fprintf(stderr, "sipctl: unexpected argument '%s'\n",
				s);
			return -EINVAL;
		}
	}
	return 0;
}

int sipctl_db_path(const char *given, char *buf, size_t cap)
{
	int n = sip_db_path(given, buf, cap);

	if (n == -ENOENT)
		fputs("sipctl: no database: give --db PATH or set SIPD_DB\n",
		      stderr);
	else if (n < 0 && n != -ENAMETOOLONG)
		fprintf(stderr,
			"sipctl: cannot create the directory of %s: %s\n", buf,
			strerror(-n));
	return n;
}

static struct sip_userdb *db_open(const char *given)
{
	struct sip_userdb *db;
	char path[PATH_MAX];
	int rc = sipctl_db_path(given, path, sizeof(path));

	if (rc < 0) {
		if (rc == -ENAMETOOLONG)
			fputs("sipctl: database path too long\n", stderr);
		return NULL;
	}
	rc = sip_userdb_open(path, &db);
	if (rc == -EROFS)
		fprintf(stderr,
			"sipctl: database %s is not writable (its tables need "
			"to be created or upgraded)\n",
			path);
	else if (rc == -EPROTO)
		fprintf(stderr,
			"sipctl: database %s was written by a newer sipd\n",
			path);
	else if (rc < 0)
		fprintf(stderr, "sipctl: cannot open database %s: %s\n", path,
			strerror(-rc));
	return rc < 0 ? NULL : db;
}

/* Report a failed store call; always returns SIPCTL_EXIT_FAIL. */
static int report(struct sip_userdb *db, int rc, const char *what)
{
	switch (rc) {
	case -EROFS:
		fprintf(stderr, "sipctl: %s: the database is not writable\n",
			what);
		break;
	case -EBUSY:
		fprintf(stderr, "sipctl: %s: the database is locked\n", what);
		break;
	default:
		fprintf(stderr, "sipctl: %s: %s (%s)\n", what, strerror(-rc),
			sip_userdb_errmsg(db));
	}
	return SIPCTL_EXIT_FAIL;
}

/* Split "user@domain" (an optional sip: prefix is ignored). */
static int split_aor(const char *aor, char *user, size_t cap,
		     const char **domain)
{
	const char *at;

	if (strncmp(aor, "sip:", 4) == 0)
		aor += 4;
	at = strrchr(aor, '@');
	if (!at || at == aor || at[1] == '\0' || (size_t)(at - aor) >= cap) {
		fprintf(stderr, "sipctl: '%s' is not USER@DOMAIN\n", aor);
		return -EINVAL;
	}
	memcpy(user, aor, (size_t)(at - aor));
	user[at - aor] = '\0';
	*domain = at + 1;
	return 0;
}

/* One line from stdin, without its line end, into @p buf. */
static int read_password(char *buf, size_t cap)
{
	size_t n;

	if (isatty(STDIN_FILENO))
		fputs("Password: ", stderr);
	if (!fgets(buf, (int)cap, stdin)) {
		fputs("sipctl: no password on stdin\n", stderr);
		return -EINVAL;
	}
	n = strlen(buf);
	if (n && buf[n - 1] != '\n' && !feof(stdin)) {
		fprintf(stderr, "sipctl: password longer than %d bytes\n",
			SIP_USERDB_PASSWORD_MAX);
		return -EINVAL;
	}
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	if (n == 0) {
		fputs("sipctl: empty password\n", stderr);
		return -EINVAL;
	}
	return 0;
}

static int print_user(void *arg, const struct sip_userdb_user *u)
{
	struct tm tm;
	char when[32] = "?";
	time_t t = (time_t)u->created;

	(void)arg;
	if (gmtime_r(&t, &tm))
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	printf("%s@%s\t%s\n", u->username, u->domain, when);
	return 0;
}

static int user_usage(void)
{
	fputs("usage: sipctl [--db PATH] user add|passwd USER@DOMAIN "
	      "[--password P]\n"
	      "       sipctl [--db PATH] user del USER@DOMAIN\n"
	      "       sipctl [--db PATH] user list [DOMAIN]\n",
	      stderr);
	return SIPCTL_EXIT_USAGE;
}

/* add, passwd, del: the commands on one user. */
static int user_one(struct sip_userdb *db, const struct args *a, const char *op)
{
	char user[SIP_USERDB_USER_MAX + 2];
	char pw[SIP_USERDB_PASSWORD_MAX + 2];
	const char *domain, *password = a->password;
	bool del = strcmp(op, "del") == 0;
	int rc;

	if (split_aor(a->pos[1], user, sizeof(user), &domain) < 0)
		return SIPCTL_EXIT_USAGE;
	if (del && password)
		return user_usage();
	if (!del && !password) {
		if (read_password(pw, sizeof(pw)) < 0)
			return SIPCTL_EXIT_FAIL;
		password = pw;
	}
	if (del)
		rc = sip_userdb_user_del(db, user, domain);
	else if (strcmp(op, "add") == 0)
		rc = sip_userdb_user_add(db, user, domain, password);
	else
		rc = sip_userdb_user_passwd(db, user, domain, password);
	memset(pw, 0, sizeof(pw));

	switch (rc) {
	case 0:
		printf("user %s@%s %s\n", user, domain,
		       del			? "removed"
		       : strcmp(op, "add") == 0 ? "added"
						: "password changed");
		return SIPCTL_EXIT_OK;
	case -EEXIST:
		fprintf(stderr, "sipctl: user %s@%s already exists\n", user,
			domain);
		return SIPCTL_EXIT_FAIL;
	case -ENOENT:
		if (strcmp(op, "add") == 0)
			fprintf(stderr,
				"sipctl: domain %s is not served (add it "
				"with: sipctl domain add %s)\n",
				domain, domain);
		else
			fprintf(stderr, "sipctl: no such user %s@%s\n", user,
				domain);
		return SIPCTL_EXIT_FAIL;
	case -EINVAL:
		fprintf(stderr,
			"sipctl: invalid %s (user: letters, digits and "
			"-_.!~*'()&=+$,;?/, at most %d bytes; domain: a host "
			"name; password: 1 to %d bytes, no line breaks)\n",
			"user name, domain or password", SIP_USERDB_USER_MAX,
			SIP_USERDB_PASSWORD_MAX);
		return SIPCTL_EXIT_FAIL;
	default:
		return report(db, rc, op);
	}
}

int sipctl_user(const struct sipctl_opts *opts, int argc, char **argv)
{
	struct sip_userdb *db;
	struct args a;
	const char *op;
	int rc;

	if (parse_args(opts, argc, argv, &a) < 0 || a.npos < 1)
		return user_usage();
	op = a.pos[0];
	if (strcmp(op, "list") != 0 && strcmp(op, "add") != 0 &&
	    strcmp(op, "del") != 0 && strcmp(op, "passwd") != 0)
		return user_usage();
	if (strcmp(op, "list") != 0 && a.npos != 2)
		return user_usage();
	if (strcmp(op, "list") == 0 && a.password)
		return user_usage();

	db = db_open(a.db);
	if (!db)
		return SIPCTL_EXIT_FAIL;
	if (strcmp(op, "list") == 0) {
		if (a.npos == 2) {
			rc = sip_userdb_domain_exists(db, sip_str_c(a.pos[1]));
			if (rc == 0) {
				fprintf(stderr,
					"sipctl: domain %s is not served\n",
					a.pos[1]);
				sip_userdb_close(db);
				return SIPCTL_EXIT_FAIL;
			}
		}
		rc = sip_userdb_user_list(db, a.npos == 2 ? a.pos[1] : NULL,
					  print_user, NULL);
		rc = rc < 0 ? report(db, rc, "user list") : SIPCTL_EXIT_OK;
	} else {
		rc = user_one(db, &a, op);
	}
	sip_userdb_close(db);
	return rc;
}

static int print_domain(void *arg, const char *domain)
{
	(void)arg;
	printf("%s\n", domain);
	return 0;
}

static int domain_usage(void)
{
	fputs("usage: sipctl [--db PATH] domain add|del DOMAIN\n"
	      "       sipctl [--db PATH] domain list\n",
	      stderr);
	return SIPCTL_EXIT_USAGE;
}

int sipctl_domain(const struct sipctl_opts *opts, int argc, char **argv)
{
	struct sip_userdb *db;
	struct args a;
	const char *op;
	int rc;

	if (parse_args(opts, argc, argv, &a) < 0 || a.npos < 1 || a.password)
		return domain_usage();
	op = a.pos[0];
	if (strcmp(op, "list") == 0 ? a.npos != 1
				    : (a.npos != 2 || (strcmp(op, "add") != 0 &&
						       strcmp(op, "del") != 0)))
		return domain_usage();
	db = db_open(a.db);
	if (!db)
		return SIPCTL_EXIT_FAIL;
	if (strcmp(op, "list") == 0)
		rc = sip_userdb_domain_list(db, print_domain, NULL);
	else if (strcmp(op, "add") == 0)
		rc = sip_userdb_domain_add(db, a.pos[1]);
	else
		rc = sip_userdb_domain_del(db, a.pos[1]);

	switch (rc) {
	case 0:
		if (strcmp(op, "list") != 0)
			printf("domain %s %s\n", a.pos[1],
			       strcmp(op, "add") == 0 ? "added" : "removed");
		rc = SIPCTL_EXIT_OK;
		break;
	case -EEXIST:
		fprintf(stderr, "sipctl: domain %s already exists\n", a.pos[1]);
		rc = SIPCTL_EXIT_FAIL;
		break;
	case -ENOENT:
		fprintf(stderr, "sipctl: domain %s is not served\n", a.pos[1]);
		rc = SIPCTL_EXIT_FAIL;
		break;
	case -ENOTEMPTY:
		fprintf(stderr,
			"sipctl: domain %s still has users; remove them "
			"first\n",
			a.pos[1]);
		rc = SIPCTL_EXIT_FAIL;
		break;
	case -EINVAL:
		fprintf(stderr, "sipctl: '%s' is not a host name\n", a.pos[1]);
		rc = SIPCTL_EXIT_FAIL;
		break;
	default:
		rc = report(db, rc, op);
	}
	sip_userdb_close(db);
	return rc;
}
