/**
 * @file test_corpus.c  Table-driven conformance test: every message of the
 * RFC 4475 and RFC 5118 corpus (tests/data/corpus) must get the verdict its
 * MANIFEST.tsv row states.
 *
 * Verdict codes of later layers (200 from a registrar, 401 from digest auth,
 * 404 from a location lookup) cannot be produced by the message layer; for
 * those the test requires that the message passes sip_msg_check() and
 * sip_request_verdict() so that the later layer gets to answer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sdp/sdp.h"
#include "sipmsg/sipmsg.h"

#define CORPUS SIPD_TEST_DATA "/corpus"

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0) {
		fclose(f);
		return NULL;
	}
	buf = malloc((size_t)n + 1);
	if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	*len = (size_t)n;
	return buf;
}

/* UAS capabilities: an endpoint that is not a registrar. */
static const char *const uas_methods[] = {"INVITE", "ACK",     "BYE",
					  "CANCEL", "OPTIONS", "MESSAGE",
					  "INFO",   "UPDATE",  NULL};
static const char *const reg_methods[] = {"REGISTER", "OPTIONS", NULL};

static const struct sip_caps *caps_for(enum sip_role role)
{
	static const struct sip_caps uas = {uas_methods, NULL, NULL};
	static const struct sip_caps reg = {reg_methods, NULL, NULL};
	static const struct sip_caps proxy = {NULL, NULL, NULL};

	switch (role) {
	case SIP_ROLE_UAS:
		return &uas;
	case SIP_ROLE_REGISTRAR:
		return &reg;
	default:
		return &proxy;
	}
}

/* What an element in @p role answers: 0 = proceeds to its own work. */
static unsigned answer(const char *buf, size_t len, enum sip_role role,
		       struct sip_msg *m)
{
	struct sip_error err;

	if (sip_msg_parse(m, buf, len, SIP_FRAMING_DATAGRAM, NULL, &err) != 0)
		return err.status;
	if (sip_msg_check(m, &err) != 0)
		return err.status;
	int v = sip_request_verdict(m, role, caps_for(role), &err);
	return v > 0 ? (unsigned)v : 0;
}

/* Does @p got match one of the '|'-separated codes in @p set? */
static int code_ok(unsigned got, const char *set)
{
	char buf[64];
	snprintf(buf, sizeof(buf), "%s", set);
	for (char *save, *t = strtok_r(buf, "|", &save); t;
	     t = strtok_r(NULL, "|", &save)) {
		unsigned want = (unsigned)atoi(t);
		if (got == want)
			return 1;
		if (got == 0 && (want == 200 || want == 401 || want == 404))
			return 1;
	}
	return 0;
}

static int role_of(const char *name, enum sip_role *role)
{
	if (strcmp(name, "UAS") == 0 || strcmp(name, "UA") == 0)
		*role = SIP_ROLE_UAS;
	else if (strcmp(name, "proxy") == 0)
		*role = SIP_ROLE_PROXY;
	else if (strcmp(name, "registrar") == 0)
		*role = SIP_ROLE_REGISTRAR;
	else
		return -1;
	return 0;
}

/* Check "role:codes;role:codes" or plain "codes". */
static int check_codes(const char *file, const char *buf, size_t len,
		       const char *spec)
{
	struct sip_msg m;
	char tmp[128];
	int bad = 0;

	snprintf(tmp, sizeof(tmp), "%s", spec);
	if (!strchr(tmp, ':')) {
		/* No role given: the endpoint and proxy roles, except codes
		 * only one kind of element gives. */
		enum sip_role roles[2] = {SIP_ROLE_UAS, SIP_ROLE_PROXY};
		int nroles = 2;
		if (strstr(tmp, "200")) {
			roles[0] = SIP_ROLE_REGISTRAR;
			nroles = 1;
		} else if (strstr(tmp, "406") || strstr(tmp, "415")) {
			nroles = 1;
		}
		for (int i = 0; i < nroles; i++) {
			unsigned got = answer(buf, len, roles[i], &m);
			if (!code_ok(got, tmp)) {
				printf("  %s: role %d answered %u, want %s\n",
				       file, roles[i], got, tmp);
				bad++;
			}
		}
		return bad;
	}
	for (char *save, *t = strtok_r(tmp, ";", &save); t;
	     t = strtok_r(NULL, ";", &save)) {
		char *colon = strchr(t, ':');
		enum sip_role role;
		if (!colon)
			continue;
		*colon = '\0';
		if (role_of(t, &role) != 0) {
			printf("  %s: unknown role '%s'\n", file, t);
			bad++;
			continue;
		}
		unsigned got = answer(buf, len, role, &m);
		if (!code_ok(got, colon + 1)) {
			printf("  %s: %s answered %u, want %s\n", file, t, got,
			       colon + 1);
			bad++;
		}
	}
	return bad;
}

/* Feed the message to the stream framer in one piece and byte by byte;
 * both must agree. Returns the frame kind (or negative error). */
static int frame_stream(const char *buf, size_t len, size_t *flen)
{
	struct sip_framer f;
	struct sip_error err;
	int whole, step = SIP_FRAME_NEED_MORE;
	size_t l1 = 0, l2 = 0;

	sip_framer_init(&f, NULL);
	whole = sip_framer_next(&f, buf, len, &l1, &err);
	sip_framer_init(&f, NULL);
	for (size_t n = 1; n <= len; n++) {
		step = sip_framer_next(&f, buf, n, &l2, &err);
		if (step != SIP_FRAME_NEED_MORE)
			break;
	}
	assert_int_equal(whole, step);
	if (whole == SIP_FRAME_MESSAGE)
		assert_int_equal(l1, l2);
	*flen = l1;
	return whole;
}

static int check_one(const char *file, const char *kind, const char *expected,
		     const char *code)
{
	char path[512];
	size_t len = 0, flen = 0;
	struct sip_msg m;
	struct sip_error err;
	int bad = 0;

	snprintf(path, sizeof(path), "%s/%s", CORPUS, file);
	char *buf = read_file(path, &len);
	if (!buf) {
		printf("  %s: cannot read\n", file);
		return 1;
	}
	int prc = sip_msg_parse(&m, buf, len, SIP_FRAMING_DATAGRAM, NULL, &err);
	int crc = prc == 0 ? sip_msg_check(&m, &err) : prc;
	int want_req = strcmp(kind, "request") == 0;

	if (getenv("SIPD_CORPUS_VERBOSE"))
		printf("%-40s %-26s %-18s -> %s %u %s\n", file, expected, code,
		       prc ? "parse-error" : (crc ? "check-error" : "ok"),
		       crc ? err.status : 0, crc ? err.reason : "");

	if (strcmp(expected, "parse_ok") == 0 ||
	    strcmp(expected, "parse_ok_ignore_trailing") == 0) {
		if (prc != 0 || crc != 0) {
			printf("  %s: rejected (%u %s at %u:%u)\n", file,
			       err.status, err.reason, err.line, err.column);
			bad++;
		} else if (m.is_request != want_req) {
			printf("  %s: request/response mixed up\n", file);
			bad++;
		}
		if (prc == 0 &&
		    strcmp(expected, "parse_ok_ignore_trailing") == 0 &&
		    m.len >= len) {
			printf("  %s: trailing octets not cut\n", file);
			bad++;
		}
		if (prc == 0 && m.has_content_length) {
			int fk = frame_stream(buf, len, &flen);
			if (fk != SIP_FRAME_MESSAGE ||
			    flen != (size_t)(m.buf - buf) + m.len) {
				printf("  %s: stream framing disagrees\n",
				       file);
				bad++;
			}
		}
		/* An SDP body must parse too. */
		const struct sip_hdr *ct =
			sip_msg_hdr(&m, SIP_HDR_CONTENT_TYPE);
		if (prc == 0 && ct && m.body.len &&
		    sip_str_ieq_c(ct->value, "application/sdp")) {
			struct sdp_session s;
			unsigned line = 0;
			if (sdp_parse(&s, m.body.p, m.body.len, &line) != 0) {
				printf("  %s: SDP body rejected at line %u\n",
				       file, line);
				bad++;
			}
		}
	} else if (strcmp(expected, "parse_ok_then_respond") == 0) {
		if (prc != 0) {
			printf("  %s: parse failed (%s)\n", file, err.reason);
			bad++;
		} else {
			bad += check_codes(file, buf, len, code);
		}
	} else if (strcmp(expected, "respond_400") == 0) {
		if (crc == 0 || err.status != 400) {
			printf("  %s: want 400, got %s %u\n", file,
			       crc == 0 ? "accepted" : "status",
			       crc == 0 ? 0 : err.status);
			bad++;
		}
	} else if (strcmp(expected, "reject_400_or_tolerate") == 0) {
		if (crc != 0 && err.status != 400) {
			printf("  %s: rejected with %u, want 400 or accept\n",
			       file, err.status);
			bad++;
		}
	} else if (strcmp(expected, "respond_error_framing") == 0) {
		if (prc == 0 || err.status != 400) {
			printf("  %s: datagram framing error not found\n",
			       file);
			bad++;
		}
		/* Over a stream: an invalid length closes the connection; a
		 * length beyond the data waits for more bytes. */
		int fk = frame_stream(buf, len, &flen);
		if (fk == SIP_FRAME_MESSAGE) {
			printf("  %s: stream framer accepted it\n", file);
			bad++;
		}
	} else if (strcmp(expected, "respond_specific") == 0) {
		unsigned got = crc == 0 ? 0 : err.status;
		if (!code_ok(got, code)) {
			printf("  %s: got %u, want %s\n", file, got, code);
			bad++;
		}
	} else if (strcmp(expected, "discard") == 0) {
		/* A response: whatever the checks say, it must never be
		 * taken for a request (requests get answers). */
		if (prc == 0 && m.is_request) {
			printf("  %s: taken for a request\n", file);
			bad++;
		}
	} else if (strcmp(expected, "unspecified") != 0) {
		printf("  %s: unknown expectation '%s'\n", file, expected);
		bad++;
	}
	free(buf);
	return bad;
}

static void test_manifest(void **state)
{
	(void)state;
	FILE *f = fopen(CORPUS "/MANIFEST.tsv", "r");
	char line[4096];
	int rows = 0, bad = 0;

	assert_non_null(f);
	assert_non_null(fgets(line, sizeof(line), f)); /* column names */
	while (fgets(line, sizeof(line), f)) {
		char *cols[8] = {0};
		char *save = NULL;
		int n = 0;
		for (char *t = strtok_r(line, "\t\n", &save); t && n < 8;
		     t = strtok_r(NULL, "\t\n", &save))
			cols[n++] = t;
		assert_true(n >= 7);
		if (strcmp(cols[5], "reference_only") == 0)
			continue;
		rows++;
		bad += check_one(cols[0], cols[4], cols[5], cols[6]);
	}
	fclose(f);
	printf("corpus: %d messages checked, %d mismatches\n", rows, bad);
	assert_int_equal(rows, 65);
	assert_int_equal(bad, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_manifest),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
