/**
 * @file parse_bench.c  Parser throughput on one core: messages/s, MB/s and
 * heap allocations per message, for each message of a realistic mix and for
 * the mix as a whole.
 *
 * Two figures per message: "index" is sip_msg_parse() alone (start line,
 * every header found and indexed, framing); "checked" adds sip_msg_check()
 * (the views of Via, From, To, CSeq, Contact, ... a server applies before
 * it processes a request).
 *
 * Usage: parse_bench [seconds-per-case]   (default 1)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sipmsg/sipmsg.h"

/* Count every heap allocation in the process by wrapping glibc's
 * allocator: the figure the zero-allocation target is about. */
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);
extern void __libc_free(void *p);

static unsigned long n_allocs;

void *malloc(size_t size)
{
	n_allocs++;
	return __libc_malloc(size);
}

void *calloc(size_t n, size_t size)
{
	n_allocs++;
	return __libc_calloc(n, size);
}

void *realloc(void *p, size_t size)
{
	n_allocs++;
	return __libc_realloc(p, size);
}

void free(void *p)
{
	__libc_free(p);
}

static const char INVITE[] =
	"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
	"Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds"
	";rport\r\n"
	"Max-Forwards: 70\r\n"
	"To: Bob <sip:bob@biloxi.example.com>\r\n"
	"From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
	"Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"
	"CSeq: 314159 INVITE\r\n"
	"Contact: <sip:alice@pc33.atlanta.example.com;transport=udp>\r\n"
	"Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, MESSAGE\r\n"
	"Supported: replaces, timer\r\n"
	"User-Agent: softphone/1.2.3\r\n"
	"Content-Type: application/sdp\r\n"
	"Content-Length: 224\r\n"
	"\r\n"
	"v=0\r\n"
	"o=alice 2890844526 2890844526 IN IP4 pc33.atlanta.example.com\r\n"
	"s=-\r\n"
	"c=IN IP4 192.0.2.101\r\n"
	"t=0 0\r\n"
	"m=audio 49172 RTP/AVP 0 8 101\r\n"
	"a=rtpmap:0 PCMU/8000\r\n"
	"a=rtpmap:8 PCMA/8000\r\n"
	"a=rtpmap:101 telephone-event/8000\r\n"
	"a=sendrecv\r\n";

static const char OK200[] =
	"SIP/2.0 200 OK\r\n"
	"Via: SIP/2.0/UDP server10.biloxi.example.com;branch=z9hG4bKnashds8"
	";received=192.0.2.3\r\n"
	"Via: SIP/2.0/UDP bigbox3.site3.atlanta.example.com;branch="
	"z9hG4bK77ef4c2312983.1;received=192.0.2.2\r\n"
	"Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds"
	";received=192.0.2.1\r\n"
	"Record-Route: <sip:server10.biloxi.example.com;lr>\r\n"
	"Record-Route: <sip:bigbox3.site3.atlanta.example.com;lr>\r\n"
	"To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf\r\n"
	"From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
	"Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"
	"CSeq: 314159 INVITE\r\n"
	"Contact: <sip:bob@192.0.2.4>\r\n"
	"Content-Length: 0\r\n"
	"\r\n";

static const char REGISTER[] =
	"REGISTER sip:registrar.biloxi.example.com SIP/2.0\r\n"
	"Via: SIP/2.0/UDP bobspc.biloxi.example.com:5060;branch=z9hG4bKnashds7"
	";rport\r\n"
	"Max-Forwards: 70\r\n"
	"To: Bob <sip:bob@biloxi.example.com>\r\n"
	"From: Bob <sip:bob@biloxi.example.com>;tag=456248\r\n"
	"Call-ID: 843817637684230@998sdasdh09\r\n"
	"CSeq: 1826 REGISTER\r\n"
	"Contact: <sip:bob@192.0.2.4>;expires=7200;+sip.instance="
	"\"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>\";reg-id=1\r\n"
	"Authorization: Digest username=\"bob\", realm=\"biloxi.example.com\","
	" nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri="
	"\"sip:registrar.biloxi.example.com\", qop=auth, nc=00000001, cnonce="
	"\"0a4f113b\", response=\"6629fae49393a05397450978507c4ef1\", "
	"opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"\r\n"
	"Expires: 7200\r\n"
	"Content-Length: 0\r\n"
	"\r\n";

static const char MESSAGE[] =
	"MESSAGE sip:user2@domain.com SIP/2.0\r\n"
	"Via: SIP/2.0/TCP user1pc.domain.com;branch=z9hG4bK776sgdkse\r\n"
	"Max-Forwards: 70\r\n"
	"From: sip:user1@domain.com;tag=49583\r\n"
	"To: sip:user2@domain.com\r\n"
	"Call-ID: asd88asd77a@1.2.3.4\r\n"
	"CSeq: 1 MESSAGE\r\n"
	"Content-Type: text/plain\r\n"
	"Content-Length: 18\r\n"
	"\r\n"
	"Watson, come here.";

static const char NOTIFY[] =
	"NOTIFY sip:user@pc.example.com SIP/2.0\r\n"
	"Via: SIP/2.0/UDP server.example.com;branch=z9hG4bK4cd42a\r\n"
	"Max-Forwards: 70\r\n"
	"To: <sip:user@example.com>;tag=78923\r\n"
	"From: <sip:resource@example.com>;tag=ffd2\r\n"
	"Call-ID: 2010@pc.example.com\r\n"
	"CSeq: 20 NOTIFY\r\n"
	"Contact: <sip:server.example.com>\r\n"
	"Event: presence\r\n"
	"Subscription-State: active;expires=599\r\n"
	"Content-Type: application/pidf+xml\r\n"
	"Content-Length: 270\r\n"
	"\r\n"
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n"
	"<presence xmlns=\"urn:ietf:params:xml:ns:pidf\"\r\n"
	"    entity=\"pres:resource@example.com\">\r\n"
	"  <tuple id=\"sg89ae\">\r\n"
	"    <status><basic>open</basic></status>\r\n"
	"    <contact>sip:resource@pc.example.com</contact>\r\n"
	"  </tuple>\r\n"
	"</presence>\r\n";

struct bench_case {
	const char *name;
	const char *msg;
	size_t len;
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct result {
	double msgs_per_s;
	double mb_per_s;
	double allocs_per_msg;
};

/* Parse the cases round-robin for about @p seconds. */
static int run(const struct bench_case *cases, size_t ncases, bool check,
	       double seconds, struct sip_msg *m, struct result *r)
{
	struct sip_error err;
	unsigned long n = 0, bytes = 0, allocs0 = n_allocs;
	double t0 = now(), t;

	do {
		for (int rep = 0; rep < 1000; rep++) {
			for (size_t i = 0; i < ncases; i++) {
				if (sip_msg_parse(m, cases[i].msg, cases[i].len,
						  SIP_FRAMING_DATAGRAM, NULL,
						  &err) != 0 ||
				    (check && sip_msg_check(m, &err) != 0)) {
					fprintf(stderr, "%s: %s\n",
						cases[i].name, err.reason);
					return -1;
				}
				bytes += cases[i].len;
			}
			n += ncases;
		}
		t = now() - t0;
	} while (t < seconds);
	r->msgs_per_s = (double)n / t;
	r->mb_per_s = (double)bytes / t / 1e6;
	r->allocs_per_msg = (double)(n_allocs - allocs0) / (double)n;
	return 0;
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 1.0;
	const struct bench_case cases[] = {
		{"INVITE+SDP", INVITE, sizeof(INVITE) - 1},
		{"200 OK", OK200, sizeof(OK200) - 1},
		{"REGISTER", REGISTER, sizeof(REGISTER) - 1},
		{"MESSAGE", MESSAGE, sizeof(MESSAGE) - 1},
		{"NOTIFY+PIDF", NOTIFY, sizeof(NOTIFY) - 1},
	};
	const size_t ncases = sizeof(cases) / sizeof(cases[0]);
	/* One message object, allocated before measuring (it is reused per
	 * worker in a server, never per message). */
	struct sip_msg *m = malloc(sizeof(*m));
	struct result r;

	if (!m || seconds <= 0)
		return 2;
	printf("sipd parser benchmark: one thread, %.1f s per row, "
	       "sizeof(struct sip_msg) = %zu\n\n",
	       seconds, sizeof(*m));
	printf("%-14s %6s %-8s %14s %10s %14s\n", "message", "bytes", "mode",
	       "msgs/s", "MB/s", "allocs/msg");
	for (int check = 0; check <= 1; check++) {
		for (size_t i = 0; i <= ncases; i++) {
			const struct bench_case *c =
				i < ncases ? &cases[i] : cases;
			size_t nc = i < ncases ? 1 : ncases;
			size_t bytes = 0;
			for (size_t k = 0; k < nc; k++)
				bytes += c[k].len;
			if (run(c, nc, check, seconds, m, &r) != 0)
				return 1;
			printf("%-14s %6zu %-8s %14.0f %10.1f %14.3f\n",
			       i < ncases ? c->name : "mix (all 5)", bytes / nc,
			       check ? "checked" : "index", r.msgs_per_s,
			       r.mb_per_s, r.allocs_per_msg);
		}
	}
	free(m);
	return 0;
}
