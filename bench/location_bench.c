/**
 * @file location_bench.c  Location store throughput and memory: inserts/s,
 * lookups/s and resident bytes per binding for N bindings (one per AOR,
 * short URIs), in memory only and with SQLite persistence; with
 * persistence also the time to flush and to load the file again.
 *
 * Each mode runs in its own process so that its RSS starts clean.
 *
 * Usage: location_bench [bindings] [db-directory]
 *        (defaults 1000000 and a fresh directory under /tmp, removed after)
 */
#include "location/location.h"
#include "resolv/resolv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Resident set size in bytes, from /proc/self/statm. */
static long rss_bytes(void)
{
	long size = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (!f)
		return -1;
	if (fscanf(f, "%ld %ld", &size, &resident) != 2)
		resident = -1;
	fclose(f);
	return resident < 0 ? -1 : resident * sysconf(_SC_PAGESIZE);
}

static int fill(struct loc_store *s, long n, int64_t t0, long *eagain)
{
	for (long i = 0; i < n; i++) {
		char aor[40], contact[48], call_id[24], source[24];
		int rc;

		snprintf(aor, sizeof(aor), "sip:u%07ld@example.com", i);
		snprintf(contact, sizeof(contact), "sip:u%07ld@10.%ld.%ld.%ld",
			 i, (i >> 16) & 255, (i >> 8) & 255, i & 255);
		snprintf(call_id, sizeof(call_id), "%08lx@10.0.0.1",
			 (unsigned long)i * 2654435761ul);
		snprintf(source, sizeof(source), "10.%ld.%ld.%ld:5060",
			 (i >> 16) & 255, (i >> 8) & 255, i & 255);
		struct loc_binding b = {
			.aor = sip_str_c(aor),
			.contact = sip_str_c(contact),
			.q = 1000,
			.expires = t0 + 3600 + i % 600,
			.call_id = sip_str_c(call_id),
			.cseq = 1,
			.transport = SIP_TP_UDP,
			.source = sip_str_c(source),
			.user_agent = SIP_STR_LIT("bench/1"),
		};
		while ((rc = loc_store_save(s, &b)) == -EAGAIN)
			(*eagain)++; /* writer behind: the save waited already
				      */
		if (rc < 0) {
			fprintf(stderr, "save %ld: %s\n", i, strerror(-rc));
			return rc;
		}
	}
	return 0;
}

static int count_cb(const struct loc_binding *b, void *arg)
{
	(void)b;
	(*(long *)arg)++;
	return 0;
}

static double lookups(struct loc_store *s, long n, int64_t t0)
{
	uint64_t x = 88172645463325252ull;
	long found = 0;
	double t = now_s();

	for (long k = 0; k < n; k++) {
		char aor[40];
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		snprintf(aor, sizeof(aor), "sip:u%07ld@example.com",
			 (long)(x % (uint64_t)n));
		loc_store_lookup(s, sip_str_c(aor), t0, count_cb, &found);
	}
	t = now_s() - t;
	if (found != n)
		fprintf(stderr, "lookups found %ld of %ld\n", found, n);
	return (double)n / t;
}

static int run(const char *label, const char *db, long n, int64_t t0)
{
	struct loc_config cfg = {.db_path = db, .now = t0, .queue_wait_ms = 50};
	struct loc_store *s = NULL;
	char msg[256] = "";
	long eagain = 0;
	long rss0 = rss_bytes();
	int rc = loc_store_open(&cfg, &s, msg, sizeof(msg));

	if (rc) {
		fprintf(stderr, "%s\n", msg);
		return 1;
	}
	double t = now_s();
	if (fill(s, n, t0, &eagain)) {
		loc_store_destroy(s);
		return 1;
	}
	double t_ins = now_s() - t;
	t = now_s();
	rc = loc_store_flush(s);
	double t_flush = now_s() - t;
	long rss1 = rss_bytes();
	double lps = lookups(s, n, t0);

	printf("%-12s %9ld bindings  inserts %9.0f/s  lookups %9.0f/s  "
	       "RSS %6.1f MiB = %5.0f B/binding\n",
	       label, n, (double)n / t_ins, lps,
	       (double)(rss1 - rss0) / 1048576.0,
	       (double)(rss1 - rss0) / (double)n);
	if (db) {
		printf("%-12s flush after the inserts %.2f s, durable rate "
		       "%.0f/s, %ld saves waited for the queue (rc %d)\n",
		       "", t_flush, (double)n / (t_ins + t_flush), eagain, rc);
		loc_store_destroy(s);
		s = NULL;
		t = now_s();
		rc = loc_store_open(&cfg, &s, msg, sizeof(msg));
		double t_load = now_s() - t;
		if (rc) {
			fprintf(stderr, "%s\n", msg);
			return 1;
		}
		printf("%-12s reopen loaded %zu bindings in %.2f s (%.0f/s)\n",
		       "", loc_store_count(s), t_load,
		       (double)loc_store_count(s) / t_load);
	}
	t = now_s();
	size_t gone = loc_store_expire(s, t0 + 7200, NULL, NULL);
	printf("%-12s expire of %zu bindings %.2f s\n", "", gone, now_s() - t);
	loc_store_destroy(s);
	return 0;
}

/* Run one mode in a child process. */
static int run_child(const char *label, const char *db, long n, int64_t t0)
{
	int status = 0;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		perror("fork");
		return 1;
	}
	if (pid == 0) {
		int rc = run(label, db, n, t0);
		fflush(stdout);
		_exit(rc);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return 1;
	return WEXITSTATUS(status);
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000000;
	char dir[256], db[300], side[310];
	int64_t t0 = (int64_t)time(NULL);
	int rc;

	if (n <= 0)
		n = 1000000;
	if (argc > 2) {
		snprintf(dir, sizeof(dir), "%s", argv[2]);
	} else {
		snprintf(dir, sizeof(dir), "/tmp/location_bench.XXXXXX");
		if (!mkdtemp(dir)) {
			perror("mkdtemp");
			return 1;
		}
	}
	snprintf(db, sizeof(db), "%s/location.db", dir);
	unlink(db);
	rc = run_child("memory", NULL, n, t0) || run_child("sqlite", db, n, t0);
	printf("database: %s (%s)\n", db, argc > 2 ? "kept" : "removed");
	if (argc <= 2) {
		unlink(db);
		snprintf(side, sizeof(side), "%s-wal", db);
		unlink(side);
		snprintf(side, sizeof(side), "%s-shm", db);
		unlink(side);
		rmdir(dir);
	}
	return rc;
}
