/**
 * @file testcert.h  A self-signed certificate made at test time: CN
 * sip.test, subjectAltName DNS:sip.test and IP:127.0.0.1, EC P-256, valid
 * from an hour ago for a day, usable as its own CA.
 */
#ifndef SIPD_TESTCERT_H
#define SIPD_TESTCERT_H

struct test_cert {
	char dir[64];
	char cert_file[128];
	char key_file[128];
};

/** Write cert.pem and key.pem into a new temporary directory.
 * @return 0, or -1 (a message on stderr). */
int test_cert_make(struct test_cert *tc);
/** Remove the files and the directory. */
void test_cert_remove(struct test_cert *tc);

#endif /* SIPD_TESTCERT_H */
