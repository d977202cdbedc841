/** @file hist.c  Log-linear latency histogram with fixed memory. */
#include "sipbench/sipbench.h"

#include <string.h>

#define SUB (1u << SB_HIST_SUB_BITS)
#define HALF (1u << (SB_HIST_SUB_BITS - 1))

void sb_hist_init(struct sb_hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

unsigned sb_hist_index(uint64_t v)
{
	unsigned msb, g;

	if (v < SUB)
		return (unsigned)v;
	if (v >> SB_HIST_MAX_BITS)
		return SB_HIST_BUCKETS - 1;
	msb = 63u - (unsigned)__builtin_clzll(v);
	g = msb - SB_HIST_SUB_BITS + 1;
	return SUB + (g - 1) * HALF + (unsigned)((v >> g) - HALF);
}

/* Highest value that lands in bucket @p i. */
static uint64_t bucket_high(unsigned i)
{
	unsigned g, sub;

	if (i < SUB)
		return i;
	g = (i - SUB) / HALF + 1;
	sub = (i - SUB) % HALF + HALF;
	return (((uint64_t)sub + 1) << g) - 1;
}

void sb_hist_record(struct sb_hist *h, uint64_t v)
{
	h->b[sb_hist_index(v)]++;
	h->count++;
	h->sum += v;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
}

void sb_hist_merge(struct sb_hist *dst, const struct sb_hist *src)
{
	if (!src->count)
		return;
	for (unsigned i = 0; i < SB_HIST_BUCKETS; i++)
		dst->b[i] += src->b[i];
	dst->count += src->count;
	dst->sum += src->sum;
	if (src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
}

uint64_t sb_hist_percentile(const struct sb_hist *h, double p)
{
	uint64_t rank, seen = 0;
	double r;

	if (!h->count)
		return 0;
	if (p < 0)
		p = 0;
	if (p > 100)
		p = 100;
	r = p / 100.0 * (double)h->count;
	rank = (uint64_t)r;
	if ((double)rank < r)
		rank++;
	if (rank < 1)
		rank = 1;
	for (unsigned i = 0; i < SB_HIST_BUCKETS; i++) {
		seen += h->b[i];
		if (seen >= rank) {
			/* The last bucket also holds everything beyond. */
			uint64_t v = i == SB_HIST_BUCKETS - 1 ? h->max
							      : bucket_high(i);

			if (v > h->max)
				v = h->max;
			if (v < h->min)
				v = h->min;
			return v;
		}
	}
	return h->max;
}
