/** @file main.c  sipctl: command-line tool for the SIP stack. */
#include "sipctl/sipctl.h"

#include <stdio.h>
#include <string.h>

struct command {
	const char *name;
	int (*run)(const struct sipctl_opts *opts, int argc, char **argv);
	const char *args;
	const char *help;
};

static int run_parse(const struct sipctl_opts *opts, int argc, char **argv)
{
	(void)opts;
	return sipctl_parse(argc, argv);
}

static const struct command commands[] = {
	{"parse", run_parse, "[--stream] FILE|-",
	 "parse a SIP message and print it as JSON"},
	{"user", sipctl_user, "add USER@DOMAIN [--password P]",
	 "add a user to a served domain (password read from stdin when not "
	 "given)"},
	{"user", sipctl_user, "passwd USER@DOMAIN [--password P]",
	 "set a user's password"},
	{"user", sipctl_user, "del USER@DOMAIN", "remove a user"},
	{"user", sipctl_user, "list [DOMAIN]", "list users, one per line"},
	{"domain", sipctl_domain, "add|del DOMAIN",
	 "add or remove a served domain (the digest realm)"},
	{"domain", sipctl_domain, "list", "list the served domains"},
	{"reg", sipctl_reg, "[--admin PATH|off] list [AOR]",
	 "list the registrar's bindings: AOR, contact, seconds left, q, "
	 "instance, flow"},
	{"reg", sipctl_reg, "[--admin PATH|off] del AOR [CONTACT]",
	 "remove one binding of AOR, or all of them"},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out)
{
	fputs("usage: sipctl [--db PATH] COMMAND [ARGS...]\n"
	      "\n"
	      "commands:\n",
	      out);
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(out, "  %s %s\n      %s\n", commands[i].name,
			commands[i].args, commands[i].help);
	fputs("  help\n      show this text\n"
	      "\n"
	      "--db PATH is the sipd database the user, domain and reg "
	      "commands work on\n"
	      "(created when missing). Without it: $SIPD_DB, else\n"
	      "$XDG_DATA_HOME/sipd/sipd.db, else ~/.local/share/sipd/sipd.db "
	      "(the\n"
	      "directory is created). Passwords are not stored, only their "
	      "MD5 and\n"
	      "SHA-256 digest hashes (HA1). A --password on the command line "
	      "is visible\n"
	      "to other local users; the password on stdin is not.\n"
	      "\n"
	      "reg talks to the running sipd when there is one: through its "
	      "admin socket\n"
	      "(reg --admin PATH, default: the database path + .sock, as "
	      "sipd's\n"
	      "--admin), it lists the bindings sipd holds and removes them "
	      "from "
	      "its\n"
	      "memory and the database at once. When no sipd answers there "
	      "(or with\n"
	      "--admin off), reg reads and writes the database file "
	      "directly.\n"
	      "\n"
	      "exit status: 0 success, 1 negative result (e.g. the message "
	      "does not parse,\n"
	      "the user exists or does not, the database cannot be written), "
	      "2 usage or\n"
	      "I/O error\n",
	      out);
}

int main(int argc, char **argv)
{
	struct sipctl_opts opts = {NULL};
	const char *name;
	int i = 1;

	while (i < argc && strncmp(argv[i], "--db", 4) == 0) {
		if (strcmp(argv[i], "--db") == 0 && i + 1 < argc) {
			opts.db = argv[i + 1];
			i += 2;
		} else if (strncmp(argv[i], "--db=", 5) == 0) {
			opts.db = argv[i] + 5;
			i++;
		} else if (strcmp(argv[i], "--db") == 0) {
			fputs("sipctl: --db needs a PATH\n", stderr);
			return SIPCTL_EXIT_USAGE;
		} else {
			break;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return SIPCTL_EXIT_USAGE;
	}
	name = argv[i];
	if (strcmp(name, "help") == 0 || strcmp(name, "-h") == 0 ||
	    strcmp(name, "--help") == 0) {
		usage(stdout);
		return SIPCTL_EXIT_OK;
	}
	for (size_t c = 0; c < NCOMMANDS; c++) {
		if (strcmp(name, commands[c].name) == 0)
			return commands[c].run(&opts, argc - i, argv + i);
	}
	fprintf(stderr, "sipctl: unknown command '%s'\n\n", name);
	usage(stderr);
	return SIPCTL_EXIT_USAGE;
}
