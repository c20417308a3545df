// SPDX-License-Identifier: Apache-2.0
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>

#include "jarena.h"

#define CHUNK_SIZE (1u << 20)
#define ALIGN 16

struct chunk {
	struct chunk *next;
	size_t used, size;
	_Alignas(ALIGN) unsigned char data[];
};

/*
 * Chunks stay allocated between windows and are reused in order: fresh
 * memory costs a page fault per 4 KiB, which is what the arena saves.
 */
struct jarena {
	struct chunk *first, *cur;
};

/*
 * jansson's allocator hooks take no context argument, so the arena in use is
 * the one piece of process state here; it is set only inside a window.
 */
static struct jarena *active;

static void *arena_alloc(size_t n)
{
	struct jarena *a = active;
	struct chunk *c = a->cur;

	n = (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);
	while (c && c->size - c->used < n) {
		c = c->next;
		if (c)
			c->used = 0;
	}
	if (!c) {
		size_t size = n > CHUNK_SIZE ? n : CHUNK_SIZE;

		c = malloc(sizeof(*c) + size);
		if (!c)
			return NULL;
		*c = (struct chunk){ .size = size };
		/* Append after cur so that the reuse order stays the allocation order. */
		if (a->cur) {
			c->next = a->cur->next;
			a->cur->next = c;
		} else {
			a->first = c;
		}
	}
	a->cur = c;
	c->used += n;
	return c->data + c->used - n;
}

static void arena_free(void *p)
{
	(void)p; /* everything goes at jarena_end */
}

struct jarena *jarena_new(void)
{
	return calloc(1, sizeof(struct jarena));
}

void jarena_free(struct jarena *a)
{
	struct chunk *c, *next;

	if (!a)
		return;
	for (c = a->first; c; c = next) {
		next = c->next;
		free(c);
	}
	free(a);
}

void jarena_begin(struct jarena *a)
{
	active = a;
	a->cur = a->first;
	if (a->cur)
		a->cur->used = 0;
	json_set_alloc_funcs(arena_alloc, arena_free);
}

void jarena_end(struct jarena *a)
{
	json_set_alloc_funcs(malloc, free);
	active = NULL;
	a->cur = NULL;
}
