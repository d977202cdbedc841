/**
 * @file dbpath.c  Where the sipd database lives when no path is given: the
 * one default shared by sipd and sipctl.
 */
#include "auth/auth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

/* mkdir -p for the directories of @p path (not its last component). */
static int make_dirs(char *path)
{
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0700) < 0 && errno != EEXIST) {
			int e = -errno;

			*p = '/';
			return e;
		}
		*p = '/';
	}
	return 0;
}

int sip_db_path(const char *given, char *buf, size_t cap)
{
	const char *env = getenv("SIPD_DB"), *base;
	int n;

	if (given && *given) {
		n = snprintf(buf, cap, "%s", given);
		return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
	}
	if (env && *env) {
		n = snprintf(buf, cap, "%s", env);
		return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
	}
	base = getenv("XDG_DATA_HOME");
	if (base && base[0] == '/') {
		n = snprintf(buf, cap, "%s/sipd/sipd.db", base);
	} else {
		base = getenv("HOME");
		if (!base || !*base)
			return -ENOENT;
		n = snprintf(buf, cap, "%s/.local/share/sipd/sipd.db", base);
	}
	if (n < 0 || (size_t)n >= cap)
		return -ENAMETOOLONG;
	return make_dirs(buf);
}
