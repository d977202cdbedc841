/** @file file.c  Reading whole input files for sipctl subcommands. */
#include "sipctl/sipctl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int read_stream(FILE *f, size_t max, char **buf, size_t *len)
{
	size_t cap = (size_t)64 * 1024, n = 0;
	char *p = malloc(cap);

	if (!p)
		return -ENOMEM;
	errno = 0;
	for (;;) {
		size_t got;

		if (n == cap) {
			char *q;

			if (cap > max) {
				free(p);
				return -EFBIG;
			}
			cap *= 2;
			q = realloc(p, cap);
			if (!q) {
				free(p);
				return -ENOMEM;
			}
			p = q;
		}
		got = fread(p + n, 1, cap - n, f);
		n += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		int e = errno ? -errno : -EIO;

		free(p);
		return e;
	}
	if (n > max) {
		free(p);
		return -EFBIG;
	}
	*buf = p;
	*len = n;
	return 0;
}

int sipctl_read_file(const char *path, size_t max, char **buf, size_t *len)
{
	FILE *f;
	int err;

	if (strcmp(path, "-") == 0)
		return read_stream(stdin, max, buf, len);
	f = fopen(path, "rb");
	if (!f)
		return -errno;
	err = read_stream(f, max, buf, len);
	fclose(f);
	return err;
}
