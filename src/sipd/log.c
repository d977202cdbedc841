/**
 * @file log.c  sipd's logger (see log.h): text or JSON lines, built in
 * memory and written at once.
 */
#include "sipd/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct sipd_log {
	FILE *out;
	atomic_int level;
	atomic_int format;
};

static const char *const level_names[] = {"error", "warn", "info", "debug",
					  "trace"};

int sipd_log_create(FILE *out, enum sipd_log_level level,
		    enum sipd_log_format format, struct sipd_log **log)
{
	struct sipd_log *l = calloc(1, sizeof(*l));

	if (!l)
		return -ENOMEM;
	l->out = out;
	atomic_init(&l->level, (int)level);
	atomic_init(&l->format, (int)format);
	*log = l;
	return 0;
}

void sipd_log_destroy(struct sipd_log *log)
{
	free(log);
}

void sipd_log_set(struct sipd_log *log, enum sipd_log_level level,
		  enum sipd_log_format format)
{
	atomic_store(&log->level, (int)level);
	atomic_store(&log->format, (int)format);
}

bool sipd_log_enabled(const struct sipd_log *log, enum sipd_log_level level)
{
	return log && (int)level <= atomic_load(&log->level);
}

/* Bytes as one line: C escapes in text, JSON string escapes in JSON. */
static void put_escaped(FILE *f, const char *s, size_t n, bool json)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		switch (ch) {
		case '\r':
			fputs("\\r", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '\t':
			fputs("\\t", f);
			break;
		case '\\':
			fputs("\\\\", f);
			break;
		case '"':
			fputs(json ? "\\\"" : "\"", f);
			break;
		default:
			if (ch < 0x20 || ch == 0x7f)
				fprintf(f, json ? "\\u%04x" : "\\x%02x", ch);
			else
				fputc(ch, f);
		}
	}
}

static void put_json_str(FILE *f, const char *s, size_t n)
{
	fputc('"', f);
	put_escaped(f, s, n, true);
	fputc('"', f);
}

static void put_time(FILE *f)
{
	struct timespec ts;
	struct tm tm;
	char buf[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(f, "\"%s.%03ldZ\"", buf, ts.tv_nsec / 1000000);
}

void sipd_log_event(struct sipd_log *log, enum sipd_log_level level, int worker,
		    const char *event, const struct sipd_log_field *fields,
		    size_t nfields, const char *fmt, ...)
{
	char *line = NULL, *msg = NULL;
	size_t len = 0;
	bool json;
	va_list ap;
	FILE *f;
	int n;

	if (!sipd_log_enabled(log, level))
		return;
	json = atomic_load(&log->format) == SIPD_LOG_JSON;
	va_start(ap, fmt);
	n = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	f = open_memstream(&line, &len);
	if (!f) {
		free(msg);
		return;
	}
	if (json) {
		fputs("{\"ts\":", f);
		put_time(f);
		fprintf(f, ",\"level\":\"%s\",\"worker\":", level_names[level]);
		if (worker < 0)
			fputs("null", f);
		else
			fprintf(f, "%d", worker);
		fputs(",\"event\":", f);
		put_json_str(f, event, strlen(event));
		fputs(",\"msg\":", f);
		put_json_str(f, msg, (size_t)n);
		for (size_t i = 0; i < nfields; i++) {
			const struct sipd_log_field *fl = &fields[i];

			fputc(',', f);
			put_json_str(f, fl->key, strlen(fl->key));
			fputc(':', f);
			if (fl->len == SIZE_MAX)
				put_json_str(f, fl->str ? fl->str : "",
					     fl->str ? strlen(fl->str) : 0);
			else if (!fl->str)
				fprintf(f, "%lld", fl->num);
			else
				put_json_str(f, fl->str, fl->len);
		}
		fputs("}\n", f);
	} else {
		if (worker < 0)
			fputs("sipd: ", f);
		else
			fprintf(f, "sipd[%d]: ", worker);
		fputs(msg, f);
		for (size_t i = 0; i < nfields; i++) {
			if (!fields[i].show)
				continue;
			fputs(": ", f);
			put_escaped(f, fields[i].str, fields[i].len, false);
		}
		fputc('\n', f);
	}
	free(msg);
	if (fclose(f) == 0 && line) {
		flockfile(log->out);
		fwrite(line, 1, len, log->out);
		fflush(log->out);
		funlockfile(log->out);
	}
	free(line);
}
