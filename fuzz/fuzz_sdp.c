/**
 * @file fuzz_sdp.c  libFuzzer target: SDP parse / write / re-parse round
 * trip, and the multipart iterator over the same bytes.
 */
#include "sdp/sdp.h"
#include "sipmsg/sipmsg.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Sessions are about 60 KiB each: keep them off the stack. */
static struct sdp_session first, second;

static void sdp_round_trip(const char *p, size_t size)
{
	char out[65536];
	unsigned line = 0;
	int n;

	if (sdp_parse(&first, p, size, &line) != 0)
		return;
	n = sdp_write(&first, out, sizeof(out));
	if (n == -ENOSPC)
		return;
	if (n < 0)
		abort(); /* a parsed session must always serialise */
	if (sdp_parse(&second, out, (size_t)n, &line) != 0)
		abort();
	if (second.nmedia != first.nmedia ||
	    !sdp_session_equal(&first, &second))
		abort();

	/* exercise the lookups on what was parsed */
	for (unsigned i = 0; i < first.nmedia; i++) {
		const struct sdp_media *m = &first.media[i];
		struct sdp_rtpmap rm;
		sip_str fp;

		(void)sdp_media_dir(&first, m);
		(void)sdp_media_conn(&first, m);
		for (unsigned f = 0; f < m->nfmts; f++) {
			uint64_t pt;
			if (sip_str_to_u64(m->fmts[f], 127, &pt) != 0)
				continue;
			(void)sdp_rtpmap(m, (unsigned)pt, &rm);
			(void)sdp_fmtp(m, (unsigned)pt, &fp);
		}
	}
}

static void mpart_walk(const char *p, size_t size)
{
	static const struct sip_ctype ct = {
		SIP_STR_LIT("multipart"), SIP_STR_LIT("mixed"),
		SIP_STR_LIT(";boundary=\"boundary1\"")};
	struct sip_mpart_iter it;
	struct sip_mpart part;
	int rc;

	if (!p)
		return;
	if (sip_mpart_init(&it, &ct, (sip_str){p, size}) != 0)
		abort();
	while ((rc = sip_mpart_next(&it, &part)) == 1) {
		/* every slice must lie inside the input */
		if (part.body.p < p || part.body.p + part.body.len > p + size ||
		    part.headers.len > size)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;

	sdp_round_trip(p, size);
	mpart_walk(p, size);
	return 0;
}
