/** @file report.h  sipbench results: the text summary and the JSON file. */
#ifndef SIPBENCH_REPORT_H
#define SIPBENCH_REPORT_H

#include "sipbench/bench.h"

#include <stdio.h>

struct sb_report {
	enum sb_scenario scenario;
	const char *transport; /**< "udp" or "tcp"            */
	const char *peer;      /**< target or listen address */
	unsigned threads;
	double duration_s;
	struct sb_stats *stats; /**< merged                  */
	struct sb_stats *reg;	/**< uas registrations, or NULL */
};

void sb_report_text(FILE *out, const struct sb_report *r);
/** @return 0, or -1 with errno set. */
int sb_report_json(const char *path, const struct sb_report *r);

#endif /* SIPBENCH_REPORT_H */
