/**
 * @file test_config.c  The sipd configuration file: sections and keys,
 * comments, whitespace, quoted values, repeatable keys, every kind of
 * error with its line and column, flags over the file, the checks across
 * keys, and docs/sipd.conf.example.
 */
#include "config/config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

static struct cfg c;
static struct cfg_errors errs;

static int parse(const char *text)
{
	cfg_init(&c);
	return cfg_parse(&c, text, strlen(text), &errs);
}

/* The only error of @p text is @p msg at @p line:@p col. */
static void one_error(const char *text, unsigned line, unsigned col,
		      const char *msg)
{
	assert_int_equal(parse(text), -EINVAL);
	if (errs.n != 1)
		for (unsigned i = 0; i < errs.n; i++)
			print_message("%u:%u: %s\n", errs.v[i].line,
				      errs.v[i].column, errs.v[i].msg);
	assert_int_equal(errs.n, 1);
	assert_int_equal(errs.v[0].line, line);
	assert_int_equal(errs.v[0].column, col);
	assert_string_equal(errs.v[0].msg, msg);
}

static void test_defaults(void **state)
{
	(void)state;
	assert_int_equal(parse(""), 0);
	assert_true(c.auth);
	assert_false(c.uas);
	assert_int_equal(c.workers, 0);
	assert_int_equal(c.nlisten, 0);
	assert_int_equal(c.min_expires, 60);
	assert_int_equal(c.default_expires, 3600);
	assert_int_equal(c.max_expires, 7200);
	assert_int_equal(c.nonce_lifetime, 300);
	assert_int_equal(c.digest_algs, CFG_DIGEST_MD5 | CFG_DIGEST_SHA256);
	assert_int_equal(c.log_level, CFG_LOG_INFO);
	assert_int_equal(c.log_format, CFG_LOG_TEXT);
	assert_int_equal(c.mode, CFG_MODE_PROXY);
	assert_int_equal(c.fork_timeout, 30000);
	assert_int_equal(c.ndns, 0);
	assert_int_equal(c.dns_timeout, 4000);
	for (unsigned k = 0; k < CFG_NKEYS; k++)
		assert_false(c.set[k]);
	assert_int_equal(cfg_validate(&c, &errs), 0);
}

static void test_every_key(void **state)
{
	(void)state;
	assert_int_equal(parse("[server]\n"
			       "listen = udp:127.0.0.1:5060\n"
			       "workers = 4\n"
			       "domain = example.com\n"
			       "db = /var/lib/sipd/sipd.db\n"
			       "auth = off\n"
			       "mode = registrar\n"
			       "uas = on\n"
			       "nonce_lifetime = 5\n"
			       "digest_algorithms = MD5\n"
			       "admin = /run/sipd/admin.sock\n"
			       "[registrar]\n"
			       "min_expires = 30\n"
			       "max_expires = 600\n"
			       "default_expires = 300\n"
			       "[tls]\n"
			       "cert = /etc/sipd/cert.pem\n"
			       "key = /etc/sipd/key.pem\n"
			       "ca = /etc/sipd/ca.pem\n"
			       "[log]\n"
			       "level = trace\n"
			       "format = json\n"
			       "[proxy]\n"
			       "route = example.net=127.0.0.1:5070\n"
			       "trusted = 127.0.0.2\n"
			       "fork_timeout = 5000\n"
			       "dns = 127.0.0.1:5353\n"
			       "dns = [::1]:53\n"
			       "dns_timeout = 1500\n"),
			 0);
	assert_int_equal(c.nlisten, 1);
	assert_string_equal(c.listen[0], "udp:127.0.0.1:5060");
	assert_int_equal(c.workers, 4);
	assert_int_equal(c.ndomains, 1);
	assert_string_equal(c.domain[0], "example.com");
	assert_string_equal(c.db, "/var/lib/sipd/sipd.db");
	assert_false(c.auth);
	assert_int_equal(c.mode, CFG_MODE_REGISTRAR);
	assert_true(c.uas);
	assert_int_equal(c.nonce_lifetime, 5);
	assert_int_equal(c.digest_algs, CFG_DIGEST_MD5);
	assert_string_equal(c.admin, "/run/sipd/admin.sock");
	assert_int_equal(c.min_expires, 30);
	assert_int_equal(c.max_expires, 600);
	assert_int_equal(c.default_expires, 300);
	assert_string_equal(c.tls_cert, "/etc/sipd/cert.pem");
	assert_string_equal(c.tls_key, "/etc/sipd/key.pem");
	assert_string_equal(c.tls_ca, "/etc/sipd/ca.pem");
	assert_int_equal(c.log_level, CFG_LOG_TRACE);
	assert_int_equal(c.log_format, CFG_LOG_JSON);
	assert_int_equal(c.nroutes, 1);
	assert_string_equal(c.route[0], "example.net=127.0.0.1:5070");
	assert_int_equal(c.ntrusted, 1);
	assert_string_equal(c.trusted[0], "127.0.0.2");
	assert_int_equal(c.fork_timeout, 5000);
	assert_int_equal(c.ndns, 2);
	assert_string_equal(c.dns[0], "127.0.0.1:5353");
	assert_string_equal(c.dns[1], "[::1]:53");
	assert_int_equal(c.dns_timeout, 1500);
	for (unsigned k = 0; k < CFG_NKEYS; k++)
		assert_true(c.set[k]);
	assert_int_equal(c.line[CFG_K_WORKERS], 3);
	assert_int_equal(c.line[CFG_K_LOG_FORMAT], 22);
	assert_int_equal(cfg_validate(&c, &errs), 0);
}

static void test_repeatable(void **state)
{
	(void)state;
	assert_int_equal(parse("[server]\n"
			       "listen = udp:127.0.0.1:5060\n"
			       "listen = tcp:[::1]:5060\n"
			       "listen = wss:0.0.0.0:8443\n"
			       "domain = a.example\n"
			       "domain = b.example\n"
			       "[tls]\ncert = c.pem\nkey = k.pem\n"),
			 0);
	assert_int_equal(c.nlisten, 3);
	assert_string_equal(c.listen[1], "tcp:[::1]:5060");
	assert_string_equal(c.listen[2], "wss:0.0.0.0:8443");
	assert_int_equal(c.ndomains, 2);
	assert_string_equal(c.domain[1], "b.example");
	assert_int_equal(c.line[CFG_K_LISTEN], 4);
}

static void test_too_many(void **state)
{
	char text[4096];
	size_t n = (size_t)snprintf(text, sizeof(text), "[server]\n");

	(void)state;
	for (int i = 0; i <= CFG_MAX_LISTEN; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n,
				      "listen = udp:127.0.0.1:%d\n", 5060 + i);
	one_error(text, CFG_MAX_LISTEN + 2, 10,
		  "too many listen values (at most 16)");
}

static void test_comments_whitespace(void **state)
{
	(void)state;
	assert_int_equal(parse("# a comment\n"
			       "; another\n"
			       "\n"
			       "   \t\n"
			       "  [ server ]   # trailing\n"
			       "\tworkers\t=\t2\t; why two\n"
			       "db =   /tmp/a;b.db   \r\n"
			       "   # indented comment\n"
			       "[log] ; level next\n"
			       "level=debug"),
			 0);
	assert_int_equal(c.workers, 2);
	assert_int_equal(errs.n, 0);
	/* '#' and ';' only start a comment after whitespace */
	assert_string_equal(c.db, "/tmp/a;b.db");
	assert_int_equal(c.log_level, CFG_LOG_DEBUG);
}

static void test_domain_hash(void **state)
{
	(void)state;
	one_error("[server]\ndomain = example.com#x\n", 2, 10,
		  "expected a domain name like example.com");
}

static void test_quoted(void **state)
{
	(void)state;
	assert_int_equal(parse("[server]\n"
			       "db = \"/data/my sipd # files; here/sipd.db\" "
			       "# comment\n"
			       "[tls]\n"
			       "cert = \"a \\\"quoted\\\" name \\\\ .pem\"\n"
			       "key = \"k.pem\"\n"),
			 0);
	assert_string_equal(c.db, "/data/my sipd # files; here/sipd.db");
	assert_string_equal(c.tls_cert, "a \"quoted\" name \\ .pem");
	assert_string_equal(c.tls_key, "k.pem");
}

static void test_quote_errors(void **state)
{
	(void)state;
	one_error("[server]\ndb = \"/tmp/x\n", 2, 13, "expected a closing \"");
	one_error("[server]\ndb = \"/tmp/x\" y\n", 2, 15,
		  "expected nothing after the closing \"");
	one_error("[server]\ndb = \"\"\n", 2, 6, "expected a file path");
}

static void test_value_errors(void **state)
{
	(void)state;
	one_error("[server]\nauth = yes\n", 2, 8, "expected on or off");
	one_error("[server]\nuas = 1\n", 2, 7, "expected on or off");
	one_error("[server]\nworkers = 0\n", 2, 11, "expected a number 1..64");
	one_error("[server]\nworkers = 65\n", 2, 11, "expected a number 1..64");
	one_error("[server]\nworkers = four\n", 2, 11,
		  "expected a number 1..64");
	one_error("[server]\nworkers =\n", 2, 10, "expected a number 1..64");
	one_error("[server]\nlisten = 127.0.0.1:5060\n", 2, 10,
		  "expected a listen URI like udp:127.0.0.1:5060");
	one_error("[server]\nlisten = udp:localhost:5060\n", 2, 10,
		  "expected a listen URI like udp:127.0.0.1:5060");
	one_error("[server]\nmode = b2bua\n", 2, 8,
		  "expected proxy, redirect or registrar");
	one_error("[proxy]\nroute = example.net\n", 2, 9,
		  "expected DOMAIN=HOST[:PORT][;transport=udp|tcp|tls],...");
	one_error("[proxy]\ntrusted = host.example\n", 2, 11,
		  "expected an IP address like 127.0.0.1");
	one_error("[proxy]\nfork_timeout = 0\n", 2, 16,
		  "expected milliseconds 1..600000");
	one_error("[proxy]\ndns = ns.example\n", 2, 7,
		  "expected a DNS server ADDRESS[:PORT], like 127.0.0.1:53 "
		  "or [::1]:53");
	one_error("[proxy]\ndns = 127.0.0.1:99999\n", 2, 7,
		  "expected a DNS server ADDRESS[:PORT], like 127.0.0.1:53 "
		  "or [::1]:53");
	one_error("[proxy]\ndns = [::1\n", 2, 7,
		  "expected a DNS server ADDRESS[:PORT], like 127.0.0.1:53 "
		  "or [::1]:53");
	one_error("[proxy]\ndns_timeout = 60001\n", 2, 15,
		  "expected milliseconds 1..60000");
	one_error("[server]\ndomain = a b\n", 2, 10,
		  "expected a domain name like example.com");
	one_error("[registrar]\nmin_expires = -1\n", 2, 15,
		  "expected a number 1..604800");
	one_error("[registrar]\nmax_expires = 604801\n", 2, 15,
		  "expected a number 1..604800");
	one_error("[server]\nnonce_lifetime = 0\n", 2, 18,
		  "expected a number 1..86400");
	one_error("[server]\nnonce_lifetime = 86401\n", 2, 18,
		  "expected a number 1..86400");
	one_error("[server]\ndigest_algorithms = sha1\n", 2, 21,
		  "expected sha-256, md5, or both: sha-256,md5");
	one_error("[server]\ndigest_algorithms = ,\n", 2, 21,
		  "expected sha-256, md5, or both: sha-256,md5");
	one_error("[log]\nlevel = verbose\n", 2, 9,
		  "expected error, warn, info, debug or trace");
	one_error("[log]\nformat = xml\n", 2, 10, "expected text or json");
}

static void test_syntax_errors(void **state)
{
	(void)state;
	one_error("workers = 2\n", 1, 1,
		  "key \"workers\" outside a section; expected a [section] "
		  "line first");
	one_error("[server\n", 1, 8, "expected ] to close the section name");
	one_error("[]\n", 1, 2, "expected a section name before ]");
	one_error("[my server]\n", 1, 5,
		  "expected a section name (letters, digits, _) before ]");
	one_error("[server] x\n", 1, 10, "expected nothing after ]");
	one_error("[server]\nworkers 2\n", 2, 9, "expected = after the key");
	one_error("[server]\n= 2\n", 2, 1, "expected a key before =");
	one_error("[server]\n!!\n", 2, 1,
		  "expected key = value, a [section] or a comment");
	one_error("[server]\nworkers = 2\nworkers = 3\n", 3, 1,
		  "duplicate key \"workers\" (first set on line 2); expected "
		  "one value");
}

static void test_unknown(void **state)
{
	(void)state;
	one_error("[server]\nlisn = udp:127.0.0.1:5060\n", 2, 1,
		  "unknown key \"lisn\" in [server]; did you mean "
		  "\"listen\"?");
	one_error("[server]\n  wokers = 2\n", 2, 3,
		  "unknown key \"wokers\" in [server]; did you mean "
		  "\"workers\"?");
	one_error("[server]\nmin_expires = 30\n", 2, 1,
		  "unknown key \"min_expires\" in [server]; did you mean "
		  "\"min_expires\" in [registrar]?");
	one_error("[server]\ncolour = red\n", 2, 1,
		  "unknown key \"colour\" in [server]");
	/* keys under an unknown section are not reported again */
	one_error("[srever]\nworkers = 2\nfoo = bar\n", 1, 2,
		  "unknown section [srever]; did you mean [server]?");
	one_error("[ logs ]\n", 1, 3,
		  "unknown section [logs]; did you mean [log]?");
	one_error("[database]\n", 1, 2,
		  "unknown section [database]; expected server, registrar, "
		  "tls or log");
}

static void test_all_errors(void **state)
{
	(void)state;
	assert_int_equal(parse("[server]\n"
			       "auth = maybe\n"
			       "workers = 100\n"
			       "listn = x\n"
			       "[log]\n"
			       "level = loud\n"),
			 -EINVAL);
	assert_int_equal(errs.n, 4);
	assert_int_equal(errs.v[0].line, 2);
	assert_int_equal(errs.v[1].line, 3);
	assert_int_equal(errs.v[2].line, 4);
	assert_int_equal(errs.v[3].line, 6);
	assert_int_equal(errs.v[3].column, 9);
}

static void test_nul_and_crlf(void **state)
{
	static const char text[] = "[server]\r\nworkers = 2\r\nauth = o\0n\r\n";

	(void)state;
	cfg_init(&c);
	assert_int_equal(cfg_parse(&c, text, sizeof(text) - 1, &errs), -EINVAL);
	assert_int_equal(errs.n, 1);
	assert_int_equal(errs.v[0].line, 3);
	assert_int_equal(errs.v[0].column, 9);
	assert_int_equal(c.workers, 2);
}

static void test_validate(void **state)
{
	(void)state;
	assert_int_equal(parse("[registrar]\n"
			       "min_expires = 600\n"
			       "max_expires = 300\n"),
			 0);
	assert_int_equal(cfg_validate(&c, &errs), -EINVAL);
	assert_int_equal(errs.n, 1);
	assert_int_equal(errs.v[0].line, 3);
	assert_string_equal(errs.v[0].msg,
			    "min_expires 600 is above max_expires 300; "
			    "expected min_expires <= default_expires <= "
			    "max_expires");

	assert_int_equal(parse("[registrar]\n"
			       "default_expires = 10\n"),
			 0);
	assert_int_equal(cfg_validate(&c, &errs), -EINVAL);
	assert_int_equal(errs.v[0].line, 2);

	assert_int_equal(parse("[server]\nlisten = tls:127.0.0.1:5061\n"), 0);
	assert_int_equal(cfg_validate(&c, &errs), -EINVAL);
	assert_int_equal(errs.v[0].line, 2);
	assert_string_equal(errs.v[0].msg,
			    "a tls: or wss: listen needs [tls] cert and key");
}

static void test_flags_override(void **state)
{
	struct cfg flags;
	char err[160];

	(void)state;
	assert_int_equal(parse("[server]\n"
			       "listen = udp:127.0.0.1:5060\n"
			       "listen = tcp:127.0.0.1:5060\n"
			       "domain = file.example\n"
			       "workers = 2\n"
			       "auth = off\n"
			       "[log]\nlevel = warn\n"),
			 0);
	cfg_init(&flags);
	assert_int_equal(cfg_set(&flags, "server", "listen",
				 "udp:127.0.0.1:5070", err, sizeof(err)),
			 0);
	assert_int_equal(
		cfg_set(&flags, "log", "level", "debug", err, sizeof(err)), 0);
	assert_int_equal(
		cfg_set(&flags, "server", "auth", "maybe", err, sizeof(err)),
		-EINVAL);
	assert_string_equal(err, "expected on or off");
	assert_int_equal(
		cfg_set(&flags, "server", "colour", "red", err, sizeof(err)),
		-ENOENT);
	assert_int_equal(cfg_set(&flags, "server", "digest_algorithms",
				 "sha-256, md5", err, sizeof(err)),
			 0);
	assert_int_equal(flags.digest_algs, CFG_DIGEST_MD5 | CFG_DIGEST_SHA256);
	assert_int_equal(cfg_set(&flags, "server", "digest_algorithms",
				 "sha-256", err, sizeof(err)),
			 0);
	cfg_merge(&c, &flags);
	assert_int_equal(c.digest_algs, CFG_DIGEST_SHA256);
	/* a list from the flags replaces the file's list */
	assert_int_equal(c.nlisten, 1);
	assert_string_equal(c.listen[0], "udp:127.0.0.1:5070");
	assert_int_equal(c.line[CFG_K_LISTEN], 0);
	assert_int_equal(c.log_level, CFG_LOG_DEBUG);
	/* what the flags do not set stays as the file says */
	assert_int_equal(c.ndomains, 1);
	assert_string_equal(c.domain[0], "file.example");
	assert_int_equal(c.workers, 2);
	assert_false(c.auth);
	assert_int_equal(c.line[CFG_K_AUTH], 6);
}

static void test_example_file(void **state)
{
	(void)state;
	cfg_init(&c);
	assert_int_equal(
		cfg_load(&c, SIPD_SOURCE_DIR "/docs/sipd.conf.example", &errs),
		0);
	assert_int_equal(cfg_validate(&c, &errs), 0);
	assert_true(c.nlisten >= 1);
	cfg_init(&c);
	assert_int_equal(cfg_load(&c, "/nonexistent/sipd.conf", &errs),
			 -ENOENT);
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(cfg_log_level_name(CFG_LOG_TRACE), "trace");
	assert_string_equal(cfg_log_format_name(CFG_LOG_JSON), "json");
	assert_string_equal(cfg_key_name(CFG_K_MIN_EXPIRES), "min_expires");
	assert_string_equal(cfg_key_section(CFG_K_MIN_EXPIRES), "registrar");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_every_key),
		cmocka_unit_test(test_repeatable),
		cmocka_unit_test(test_too_many),
		cmocka_unit_test(test_comments_whitespace),
		cmocka_unit_test(test_domain_hash),
		cmocka_unit_test(test_quoted),
		cmocka_unit_test(test_quote_errors),
		cmocka_unit_test(test_value_errors),
		cmocka_unit_test(test_syntax_errors),
		cmocka_unit_test(test_unknown),
		cmocka_unit_test(test_all_errors),
		cmocka_unit_test(test_nul_and_crlf),
		cmocka_unit_test(test_validate),
		cmocka_unit_test(test_flags_override),
		cmocka_unit_test(test_example_file),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
