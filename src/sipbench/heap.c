/** @file heap.c  Binary min-heap of deadlines, one entry per id. */
#include "sipbench/sipbench.h"

#include <errno.h>
#include <stdlib.h>

#define NONE UINT32_MAX

int sb_heap_init(struct sb_heap *h, uint32_t cap)
{
	h->n = 0;
	h->cap = cap;
	h->e = calloc(cap ? cap : 1, sizeof(*h->e));
	h->pos = malloc((cap ? cap : 1) * sizeof(*h->pos));
	if (!h->e || !h->pos) {
		sb_heap_free(h);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < cap; i++)
		h->pos[i] = NONE;
	return 0;
}

void sb_heap_free(struct sb_heap *h)
{
	free(h->e);
	free(h->pos);
	h->e = NULL;
	h->pos = NULL;
	h->n = 0;
	h->cap = 0;
}

static void place(struct sb_heap *h, uint32_t i, struct sb_heap_ent ent)
{
	h->e[i] = ent;
	h->pos[ent.id] = i;
}

static void sift_up(struct sb_heap *h, uint32_t i)
{
	struct sb_heap_ent ent = h->e[i];

	while (i > 0) {
		uint32_t parent = (i - 1) / 2;

		if (h->e[parent].at <= ent.at)
			break;
		place(h, i, h->e[parent]);
		i = parent;
	}
	place(h, i, ent);
}

static void sift_down(struct sb_heap *h, uint32_t i)
{
	struct sb_heap_ent ent = h->e[i];

	for (;;) {
		uint32_t c = 2 * i + 1;

		if (c >= h->n)
			break;
		if (c + 1 < h->n && h->e[c + 1].at < h->e[c].at)
			c++;
		if (ent.at <= h->e[c].at)
			break;
		place(h, i, h->e[c]);
		i = c;
	}
	place(h, i, ent);
}

void sb_heap_set(struct sb_heap *h, uint32_t id, uint64_t at)
{
	uint32_t i;

	if (id >= h->cap)
		return;
	i = h->pos[id];
	if (i == NONE) {
		i = h->n++;
		place(h, i, (struct sb_heap_ent){at, id});
		sift_up(h, i);
		return;
	}
	if (at < h->e[i].at) {
		h->e[i].at = at;
		sift_up(h, i);
	} else {
		h->e[i].at = at;
		sift_down(h, i);
	}
}

void sb_heap_del(struct sb_heap *h, uint32_t id)
{
	uint32_t i;

	if (id >= h->cap || h->pos[id] == NONE)
		return;
	i = h->pos[id];
	h->pos[id] = NONE;
	h->n--;
	if (i == h->n)
		return;
	place(h, i, h->e[h->n]);
	if (i > 0 && h->e[(i - 1) / 2].at > h->e[i].at)
		sift_up(h, i);
	else
		sift_down(h, i);
}

bool sb_heap_top(const struct sb_heap *h, uint32_t *id, uint64_t *at)
{
	if (!h->n)
		return false;
	*id = h->e[0].id;
	*at = h->e[0].at;
	return true;
}
