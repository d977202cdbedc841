/** @file testcert.c  A self-signed certificate for TLS tests. */
#include "testcert.h"

#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int add_ext(X509 *x, X509V3_CTX *v3, int nid, const char *val)
{
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, v3, nid, val);
	int ok = ext && X509_add_ext(x, ext, -1) == 1;

	X509_EXTENSION_free(ext);
	return ok ? 0 : -1;
}

static int write_pem(const char *path, X509 *x, EVP_PKEY *pkey)
{
	FILE *f = fopen(path, "w");
	int ok;

	if (!f)
		return -1;
	ok = x ? PEM_write_X509(f, x)
	       : PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL);
	return (fclose(f) == 0 && ok == 1) ? 0 : -1;
}

int test_cert_make(struct test_cert *tc)
{
	EVP_PKEY *pkey = NULL;
	X509 *x = NULL;
	X509V3_CTX v3;
	X509_NAME *n;
	int rc = -1;

	memset(tc, 0, sizeof(*tc));
	strcpy(tc->dir, "/tmp/sipd-cert-XXXXXX");
	if (!mkdtemp(tc->dir)) {
		perror("mkdtemp");
		return -1;
	}
	snprintf(tc->cert_file, sizeof(tc->cert_file), "%s/cert.pem", tc->dir);
	snprintf(tc->key_file, sizeof(tc->key_file), "%s/key.pem", tc->dir);

	pkey = EVP_EC_gen("P-256");
	x = X509_new();
	if (!pkey || !x)
		goto out;
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, pkey);
	n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
				   (const unsigned char *)"sip.test", -1, -1,
				   0);
	X509_set_issuer_name(x, n);
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	if (add_ext(x, &v3, NID_basic_constraints, "critical,CA:TRUE") ||
	    add_ext(x, &v3, NID_subject_alt_name,
		    "DNS:sip.test,IP:127.0.0.1") ||
	    X509_sign(x, pkey, EVP_sha256()) <= 0 ||
	    write_pem(tc->cert_file, x, NULL) ||
	    write_pem(tc->key_file, NULL, pkey))
		goto out;
	rc = 0;
out:
	if (rc)
		fprintf(stderr, "test certificate: cannot make it in %s\n",
			tc->dir);
	X509_free(x);
	EVP_PKEY_free(pkey);
	return rc;
}

void test_cert_remove(struct test_cert *tc)
{
	unlink(tc->cert_file);
	unlink(tc->key_file);
	rmdir(tc->dir);
}
