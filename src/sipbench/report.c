/** @file report.c  sipbench results: merged counters, the text summary
 * and the JSON file. */
#include "sipbench/report.h"

#include <stdio.h>
#include <string.h>

static const char *const reason_names[SB_R__COUNT] = {
	[SB_R_STATUS] = "status",     [SB_R_TIMEOUT] = "timeout",
	[SB_R_BYE] = "bye",	      [SB_R_AUTH] = "auth",
	[SB_R_SEND] = "send",	      [SB_R_CONN] = "connection",
	[SB_R_NO_ACK] = "no_ack",     [SB_R_NO_BYE] = "no_bye",
	[SB_R_FULL] = "no_free_slot", [SB_R_UNFINISHED] = "unfinished",
};

static const char *const scenario_names[SB_SC__COUNT] = {
	[SB_SC_REGISTER] = "register", [SB_SC_OPTIONS] = "options",
	[SB_SC_CALL] = "call",	       [SB_SC_UAS] = "uas",
	[SB_SC_MESSAGE] = "message",
};

const char *sb_reason_name(enum sb_reason r)
{
	return (unsigned)r < SB_R__COUNT ? reason_names[r] : "?";
}

const char *sb_scenario_name(enum sb_scenario s)
{
	return (unsigned)s < SB_SC__COUNT ? scenario_names[s] : "?";
}

static void add(_Atomic uint64_t *dst, _Atomic uint64_t *src)
{
	atomic_store(dst, atomic_load(dst) + atomic_load(src));
}

void sb_stats_merge(struct sb_stats *dst, struct sb_stats *src)
{
	add(&dst->attempted, &src->attempted);
	add(&dst->succeeded, &src->succeeded);
	add(&dst->failed, &src->failed);
	add(&dst->retrans, &src->retrans);
	add(&dst->inflight, &src->inflight);
	for (int i = 0; i < SB_R__COUNT; i++)
		dst->by_reason[i] += src->by_reason[i];
	for (int i = 0; i < SB_MAX_STATUS; i++)
		dst->by_status[i] += src->by_status[i];
	dst->rx += src->rx;
	dst->tx += src->tx;
	dst->stray += src->stray;
	dst->bad += src->bad;
	dst->rx_errors += src->rx_errors;
	sb_hist_merge(&dst->lat, &src->lat);
}

static double ms(uint64_t us)
{
	return (double)us / 1000.0;
}

void sb_report_text(FILE *out, const struct sb_report *r)
{
	struct sb_stats *st = r->stats;
	uint64_t ok = atomic_load(&st->succeeded);
	const struct sb_hist *h = &st->lat;
	bool first;

	fprintf(out, "sipbench %s: %s %s, %u thread%s, %.2f s\n",
		sb_scenario_name(r->scenario), r->transport, r->peer,
		r->threads, r->threads == 1 ? "" : "s", r->duration_s);
	fprintf(out, "  attempted        %llu\n",
		(unsigned long long)atomic_load(&st->attempted));
	fprintf(out, "  succeeded        %llu\n", (unsigned long long)ok);
	fprintf(out, "  failed           %llu\n",
		(unsigned long long)atomic_load(&st->failed));
	first = true;
	for (int i = 0; i < SB_R__COUNT; i++) {
		if (!st->by_reason[i])
			continue;
		fprintf(out, "%s %s %llu", first ? "    by reason:" : ",",
			sb_reason_name((enum sb_reason)i),
			(unsigned long long)st->by_reason[i]);
		first = false;
	}
	if (!first)
		fputc('\n', out);
	first = true;
	for (int i = 0; i < SB_MAX_STATUS; i++) {
		if (!st->by_status[i])
			continue;
		fprintf(out, "%s %d: %llu", first ? "    by status:" : ",", i,
			(unsigned long long)st->by_status[i]);
		first = false;
	}
	if (!first)
		fputc('\n', out);
	fprintf(out, "  retransmissions  %llu\n",
		(unsigned long long)atomic_load(&st->retrans));
	fprintf(out, "  rate             %.1f/s succeeded\n",
		r->duration_s > 0 ? (double)ok / r->duration_s : 0.0);
	fprintf(out,
		"  latency ms       p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  "
		"max %.3f\n",
		ms(sb_hist_percentile(h, 50)), ms(sb_hist_percentile(h, 90)),
		ms(sb_hist_percentile(h, 99)), ms(sb_hist_percentile(h, 99.9)),
		ms(h->count ? h->max : 0));
	fprintf(out,
		"  messages         sent %llu, received %llu (unmatched %llu, "
		"unparsable %llu)\n",
		(unsigned long long)st->tx, (unsigned long long)st->rx,
		(unsigned long long)st->stray, (unsigned long long)st->bad);
	if (r->reg) {
		fprintf(out,
			"  registrations    %llu of %llu succeeded, %llu "
			"failed\n",
			(unsigned long long)atomic_load(&r->reg->succeeded),
			(unsigned long long)atomic_load(&r->reg->attempted),
			(unsigned long long)atomic_load(&r->reg->failed));
	}
}

int sb_report_json(const char *path, const struct sb_report *r)
{
	struct sb_stats *st = r->stats;
	uint64_t ok = atomic_load(&st->succeeded);
	const struct sb_hist *h = &st->lat;
	FILE *f = fopen(path, "w");
	bool first;
	int rc;

	if (!f)
		return -1;
	fprintf(f, "{\"scenario\": \"%s\", \"transport\": \"%s\", ",
		sb_scenario_name(r->scenario), r->transport);
	fprintf(f, "\"threads\": %u, ", r->threads);
	fprintf(f, "\"attempted\": %llu, \"succeeded\": %llu, ",
		(unsigned long long)atomic_load(&st->attempted),
		(unsigned long long)ok);
	fprintf(f, "\"failed\": %llu, \"failed_by_status\": {",
		(unsigned long long)atomic_load(&st->failed));
	first = true;
	for (int i = 0; i < SB_MAX_STATUS; i++) {
		if (!st->by_status[i])
			continue;
		fprintf(f, "%s\"%d\": %llu", first ? "" : ", ", i,
			(unsigned long long)st->by_status[i]);
		first = false;
	}
	fputs("}, \"failed_by_reason\": {", f);
	first = true;
	for (int i = 0; i < SB_R__COUNT; i++) {
		if (!st->by_reason[i])
			continue;
		fprintf(f, "%s\"%s\": %llu", first ? "" : ", ",
			sb_reason_name((enum sb_reason)i),
			(unsigned long long)st->by_reason[i]);
		first = false;
	}
	fprintf(f, "}, \"retransmissions\": %llu, ",
		(unsigned long long)atomic_load(&st->retrans));
	fprintf(f, "\"rate\": %.3f, \"duration_s\": %.3f, ",
		r->duration_s > 0 ? (double)ok / r->duration_s : 0.0,
		r->duration_s);
	fprintf(f,
		"\"latency_ms\": {\"p50\": %.3f, \"p90\": %.3f, \"p99\": %.3f, "
		"\"p999\": %.3f, \"max\": %.3f}, ",
		ms(sb_hist_percentile(h, 50)), ms(sb_hist_percentile(h, 90)),
		ms(sb_hist_percentile(h, 99)), ms(sb_hist_percentile(h, 99.9)),
		ms(h->count ? h->max : 0));
	fprintf(f,
		"\"messages\": {\"sent\": %llu, \"received\": %llu, "
		"\"unmatched\": %llu, \"unparsable\": %llu}",
		(unsigned long long)st->tx, (unsigned long long)st->rx,
		(unsigned long long)st->stray, (unsigned long long)st->bad);
	if (r->reg)
		fprintf(f,
			", \"registrations\": {\"attempted\": %llu, "
			"\"succeeded\": %llu, \"failed\": %llu}",
			(unsigned long long)atomic_load(&r->reg->attempted),
			(unsigned long long)atomic_load(&r->reg->succeeded),
			(unsigned long long)atomic_load(&r->reg->failed));
	fputs("}\n", f);
	rc = ferror(f);
	if (fclose(f) != 0 || rc)
		return -1;
	return 0;
}
