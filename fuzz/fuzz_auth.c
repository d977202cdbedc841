/**
 * @file fuzz_auth.c  libFuzzer target: digest verification of arbitrary
 * credentials against one known user. Nothing may crash, and no input may
 * ever be accepted (SIP_DIGEST_OK): the fuzzer cannot know the password.
 *
 * The input is used three ways: as an Authorization value, with every
 * "@N" replaced by a nonce the verifier really issued (so that the HA1 and
 * response paths are reached, not only the nonce check); as a whole SIP
 * message for sip_digest_verify_msg(); and as a realm for a challenge.
 */
#include "auth/auth.h"
#include "sipmsg/sipmsg.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_IN 8192
#define REALM "example.com"

static struct sip_digest *verifier;
static uint64_t now = 1700000000;

static uint64_t fixed_clock(void *arg)
{
	(void)arg;
	return now;
}

static int counter_rand(void *arg, uint8_t *out, size_t len)
{
	static uint64_t ctr;

	(void)arg;
	ctr++;
	for (size_t i = 0; i < len; i++)
		out[i] = (uint8_t)(ctr >> (8 * (i % 8)));
	return 0;
}

static int one_user(void *arg, sip_str user, sip_str realm,
		    enum sip_digest_alg alg, char *out, size_t cap)
{
	(void)arg;
	if (cap < SIP_DIGEST_HEX_MAX)
		return -ENOSPC;
	if (!sip_str_eq(user, SIP_STR_LIT("alice")) ||
	    !sip_str_eq(realm, SIP_STR_LIT(REALM)))
		return -ENOENT;
	return sip_digest_ha1(alg, user, realm, SIP_STR_LIT("wonderland"), out);
}

static void setup(void)
{
	static const uint8_t secret[32] = "fuzzing secret, fixed for replay";
	struct sip_digest_config cfg;

	sip_digest_config_default(&cfg);
	cfg.secret = secret;
	cfg.secret_len = sizeof(secret);
	cfg.ha1 = one_user;
	cfg.clock = fixed_clock;
	cfg.rand = counter_rand;
	cfg.nc_slots = 64;
	if (sip_digest_create(&cfg, &verifier) != 0)
		abort();
}

static void must_not_pass(enum sip_digest_result r)
{
	if (r == SIP_DIGEST_OK || r > SIP_DIGEST_ERROR)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char value[MAX_IN * 8];
	static const struct sip_digest_request req = {SIP_STR_LIT("REGISTER"),
						      SIP_STR_LIT("sip:" REALM),
						      SIP_STR_LIT(REALM)};
	struct sip_digest_info info;
	struct sip_msg msg;
	char nonce[64], ch[SIP_DIGEST_CHALLENGE_MAX];
	size_t n = 0;

	if (!verifier)
		setup();
	if (size > MAX_IN)
		return 0;
	/* Time moves a little with every input, so expiry is reached. */
	now += size % 7;

	if (sip_digest_nonce(verifier, SIP_STR_LIT(REALM), nonce,
			     sizeof(nonce)) < 0)
		abort();
	for (size_t i = 0; i < size; i++) {
		if (data[i] == '@' && i + 1 < size && data[i + 1] == 'N' &&
		    n + strlen(nonce) <= sizeof(value) - (size - i)) {
			memcpy(value + n, nonce, strlen(nonce));
			n += strlen(nonce);
			i++;
		} else {
			value[n++] = (char)data[i];
		}
	}
	must_not_pass(
		sip_digest_verify(verifier, (sip_str){value, n}, &req, &info));
	if (sip_msg_parse(&msg, (const char *)data, size, SIP_FRAMING_DATAGRAM,
			  NULL, NULL) == 0 &&
	    msg.is_request) {
		must_not_pass(sip_digest_verify_msg(verifier, &msg, false,
						    SIP_STR_LIT(REALM), &info));
		must_not_pass(sip_digest_verify_msg(verifier, &msg, true,
						    SIP_STR_LIT(REALM), &info));
		(void)sip_digest_aor_check(&msg, SIP_STR_LIT("alice"),
					   SIP_STR_LIT(REALM));
	}
	(void)sip_digest_challenge(
		verifier,
		(sip_str){(const char *)data, size < 300 ? size : 300},
		SIP_DIGEST_MD5, sip_str_c(nonce), true, ch, sizeof(ch));
	return 0;
}
