/** @file main.c  sipctl: command-line tool for the SIP stack. */
#include "sipctl/sipctl.h"

#include <stdio.h>
#include <string.h>

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *args;
	const char *help;
};

static const struct command commands[] = {
	{"parse", sipctl_parse, "[--stream] FILE|-",
	 "parse a SIP message and print it as JSON"},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out)
{
	fputs("usage: sipctl COMMAND [ARGS...]\n"
	      "\n"
	      "commands:\n",
	      out);
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(out, "  %s %s\n      %s\n", commands[i].name,
			commands[i].args, commands[i].help);
	fputs("  help\n      show this text\n"
	      "\n"
	      "exit status: 0 success, 1 negative result (e.g. the message "
	      "does not parse),\n"
	      "2 usage or I/O error\n",
	      out);
}

int main(int argc, char **argv)
{
	const char *name;

	if (argc < 2) {
		usage(stderr);
		return SIPCTL_EXIT_USAGE;
	}
	name = argv[1];
	if (strcmp(name, "help") == 0 || strcmp(name, "-h") == 0 ||
	    strcmp(name, "--help") == 0) {
		usage(stdout);
		return SIPCTL_EXIT_OK;
	}
	for (size_t i = 0; i < NCOMMANDS; i++) {
		if (strcmp(name, commands[i].name) == 0)
			return commands[i].run(argc - 1, argv + 1);
	}
	fprintf(stderr, "sipctl: unknown command '%s'\n\n", name);
	usage(stderr);
	return SIPCTL_EXIT_USAGE;
}
