/**
 * @file fuzz_uri.c  libFuzzer target for URI parsing, comparison and
 * unescaping, and for the list and parameter iterators.
 *
 * A parsed URI must compare equal to itself, and its slices must lie inside
 * the input. Nothing here allocates.
 */
#include "sipmsg/sipmsg.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_inside(sip_str s, sip_str in)
{
	if (s.len == 0)
		return;
	if (s.p < in.p || s.p + s.len > in.p + in.len)
		abort();
}

static void fuzz_uri(sip_str in)
{
	struct sip_uri uri;
	char buf[256];

	if (sip_uri_parse(in, &uri) != 0)
		return;
	if (!sip_uri_equal(&uri, &uri))
		abort();
	check_inside(uri.scheme_str, in);
	check_inside(uri.user, in);
	check_inside(uri.password, in);
	check_inside(uri.host, in);
	check_inside(uri.params, in);
	check_inside(uri.headers, in);
	check_inside(uri.opaque, in);

	int n = sip_unescape(uri.user, buf, sizeof(buf));
	if (n < 0 && n != -ENOSPC)
		abort(); /* a parsed user has only well-formed escapes */
	if (n > (int)sizeof(buf) || (n >= 0 && (size_t)n > uri.user.len))
		abort();

	/* the parameter iterator must terminate on URI parameters too */
	sip_str cur = uri.params, name, value;
	while (sip_param_next(&cur, &name, &value) > 0)
		check_inside(name, in);
}

static void fuzz_values(sip_str in)
{
	sip_str cur = in, item, name, value;
	size_t steps = 0;
	int rc;
	char buf[128];

	while ((rc = sip_list_next(&cur, &item)) > 0) {
		check_inside(item, in);
		if (item.len == 0 || ++steps > in.len + 1)
			abort();
		sip_str pc = item;
		size_t psteps = 0;
		while (sip_param_next(&pc, &name, &value) > 0) {
			check_inside(name, in);
			check_inside(value, in);
			if (name.len == 0 || ++psteps > item.len + 1)
				abort();
			if (value.len && value.p[0] == '"')
				(void)sip_unquote(value, buf, sizeof(buf));
		}
	}

	cur = in;
	steps = 0;
	while ((rc = sip_param_next(&cur, &name, &value)) > 0) {
		check_inside(name, in);
		check_inside(value, in);
		if (++steps > in.len + 1)
			abort();
	}
	(void)sip_param_find(in, "tag", &value);
	(void)sip_unquote(in, buf, sizeof(buf));
	(void)sip_unescape(in, buf, sizeof(buf));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	sip_str in = {(const char *)data, size};

	fuzz_uri(in);
	fuzz_values(in);
	return 0;
}
