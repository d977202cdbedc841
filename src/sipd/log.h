/**
 * @file log.h  sipd's logger: one line per event on a stream (stderr),
 * as text or as JSON.
 *
 * One logger handle is created by main() and given to every worker
 * through struct sipd_config; nothing here is global. Level and format
 * are atomics, so the main thread changes them on SIGHUP while workers
 * log. Each line is written with a single fwrite() under the stream's
 * lock, so lines of different threads never interleave.
 *
 * Text: "sipd: MESSAGE" (main thread) or "sipd[W]: MESSAGE" (worker W),
 * followed by ": " and the content of each SIPD_LF_BODY field, with CR,
 * LF, tabs, backslashes and other control bytes escaped C-style so that
 * it stays one line.
 *
 * JSON: {"ts":"2024-05-01T12:00:00.123Z","level":"info","worker":0,
 * "event":"listen","msg":"listening on ...", FIELDS...}; worker is null
 * for the main thread. Field values are strings or integers.
 */
#ifndef SIPD_LOG_H
#define SIPD_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/** Least verbose first; same order as enum cfg_log_level. */
enum sipd_log_level {
	SIPD_LOG_ERROR = 0,
	SIPD_LOG_WARN,
	SIPD_LOG_INFO,
	SIPD_LOG_DEBUG,
	SIPD_LOG_TRACE,
};

enum sipd_log_format {
	SIPD_LOG_TEXT = 0,
	SIPD_LOG_JSON,
};

/** One field of an event: a string (len SIZE_MAX: NUL-terminated, NULL
 * as ""), a slice (len given), or a number (str NULL, len 0). Every field is a
 * JSON key; text lines show only the message and then, after ": ", the fields
 * marked `show` (SIPD_LF_BODY: a SIP message at trace level). Build them with
 * the macros below. */
struct sipd_log_field {
	const char *key;
	const char *str;
	size_t len;
	long long num;
	bool show;
};

#define SIPD_LF_STR(k, s)                                                      \
	{                                                                      \
		(k), (s), SIZE_MAX, 0, false                                   \
	}
#define SIPD_LF_SLICE(k, p, n)                                                 \
	{                                                                      \
		(k), (p), (n), 0, false                                        \
	}
#define SIPD_LF_BODY(k, p, n)                                                  \
	{                                                                      \
		(k), (p), (n), 0, true                                         \
	}
#define SIPD_LF_NUM(k, v)                                                      \
	{                                                                      \
		(k), NULL, 0, (long long)(v), false                            \
	}

/** Worker index of lines from the main thread. */
#define SIPD_LOG_MAIN (-1)

struct sipd_log;

/** @return 0 or -ENOMEM. @p out is borrowed (stderr). */
int sipd_log_create(FILE *out, enum sipd_log_level level,
		    enum sipd_log_format format, struct sipd_log **log);
void sipd_log_destroy(struct sipd_log *log);

/** Change level and format (thread-safe; takes effect for the next
 * line). */
void sipd_log_set(struct sipd_log *log, enum sipd_log_level level,
		  enum sipd_log_format format);

/** Whether lines of @p level are written (to skip building them). */
bool sipd_log_enabled(const struct sipd_log *log, enum sipd_log_level level);

/**
 * Write one event if @p level is enabled.
 * @param worker  the worker's index, or SIPD_LOG_MAIN
 * @param event   a short name for machines ("listen", "sip", "reload")
 * @param fields  extra fields (may be NULL when @p nfields is 0)
 * @param fmt     the human-readable message (printf format)
 */
void sipd_log_event(struct sipd_log *log, enum sipd_log_level level, int worker,
		    const char *event, const struct sipd_log_field *fields,
		    size_t nfields, const char *fmt, ...)
	__attribute__((format(printf, 7, 8)));

/** sipd_log_event() without fields. */
#define sipd_logf(log, level, worker, event, ...)                              \
	sipd_log_event((log), (level), (worker), (event), NULL, 0, __VA_ARGS__)

#endif /* SIPD_LOG_H */
