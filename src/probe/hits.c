// SPDX-License-Identifier: MIT
/*
 * hits.c - per-thread hit counters (see hits.h).
 *
 * Blocks are mmap'ed (MAP_NORESERVE: only the pages of slots in use are
 * ever touched), kept on a list that only grows, and handed from an exited
 * thread to the next one that needs a block. Readers, registration and a
 * thread's exit serialize on `lock`; the counting threads take no lock: a
 * reader may see a count a few hits old, never a wrong one.
 */
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>

#include <sd_arch/syscall.h>

#include "probe/hits.h"

struct hit_block {
	struct hit_block *next;
	struct sd_thread *owner; /* NULL: free for the next thread */
	uint64_t pad[6];
	uint64_t count[SD_HIT_SLOTS];
};

static struct hit_block *blocks;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct sonde_kprobe *slot_owner[SD_HIT_SLOTS];
static int next_free; /* no slot below it is free: slots are handed out lowest first */
static int high;      /* no slot at or above it was ever handed out */

static struct hit_block *block_of(const uint64_t *count)
{
	return (struct hit_block *)((const char *)count - offsetof(struct hit_block, count));
}

SD_NOTRACE uint64_t *sd_hit_block_claim(struct sd_thread *t)
{
	struct hit_block *b;

	if (t->hits_off)
		return NULL; /* exiting: its block is gone */
	for (b = LOAD_ACQUIRE(blocks); b; b = b->next) {
		struct sd_thread *expect = NULL;

		if (!LOAD_ACQUIRE(b->owner) &&
		    __atomic_compare_exchange_n(&b->owner, &expect, t, false, __ATOMIC_SEQ_CST,
						__ATOMIC_RELAXED))
			goto claimed;
	}
	b = (void *)sd_raw_syscall6(SYS_mmap, 0, sizeof(*b), PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if ((unsigned long)b > -4096UL)
		return NULL;
	b->owner = t;
	b->next = LOAD_ACQUIRE(blocks);
	while (!__atomic_compare_exchange_n(&blocks, &b->next, b, false, __ATOMIC_SEQ_CST,
					    __ATOMIC_RELAXED))
		;
claimed:
	/* the thread's exit must fold its counts: it needs the exit hook */
	if (!t->registered)
		sd_thread_register(t);
	t->hits = b->count;
	return t->hits;
}

void sd_hit_register(struct sonde_kprobe *p)
{
	int slot = -1;

	p->nhit = 0;
	pthread_mutex_lock(&lock);
	/* lowest first: a thread's exit folds the slots below `high` only */
	for (int s = next_free; s < SD_HIT_SLOTS; s++) {
		if (!slot_owner[s]) {
			slot = s;
			break;
		}
	}
	if (slot >= 0) {
		/* every block holds 0 there: unregistering cleared it */
		slot_owner[slot] = p;
		next_free = slot + 1;
		if (slot >= high)
			high = slot + 1;
	}
	p->__reserved[1] = (uint64_t)(slot + 1);
	pthread_mutex_unlock(&lock);
}

void sd_hit_unregister(struct sonde_kprobe *p)
{
	int slot = sd_hit_slot(p);
	uint64_t sum = 0;

	if (slot < 0)
		return;
	pthread_mutex_lock(&lock);
	for (struct hit_block *b = LOAD_ACQUIRE(blocks); b; b = b->next) {
		sum += READ_ONCE(b->count[slot]);
		WRITE_ONCE(b->count[slot], 0);
	}
	__atomic_add_fetch(&p->nhit, sum, __ATOMIC_RELAXED);
	slot_owner[slot] = NULL;
	if (slot < next_free)
		next_free = slot;
	p->__reserved[1] = 0;
	pthread_mutex_unlock(&lock);
}

unsigned long sd_hit_count(const struct sonde_kprobe *p)
{
	int slot = sd_hit_slot(p);
	uint64_t sum;

	if (slot < 0)
		return __atomic_load_n(&p->nhit, __ATOMIC_RELAXED);
	pthread_mutex_lock(&lock);
	sum = __atomic_load_n(&p->nhit, __ATOMIC_RELAXED);
	if (sd_hit_slot(p) == slot)
		for (struct hit_block *b = LOAD_ACQUIRE(blocks); b; b = b->next)
			sum += READ_ONCE(b->count[slot]);
	pthread_mutex_unlock(&lock);
	return sum;
}

void sd_hit_thread_exit(struct sd_thread *t)
{
	struct hit_block *b;

	/* from here its hits take the locked add: the block can go to another thread */
	t->hits_off = 1;
	barrier();
	if (!t->hits)
		return;
	b = block_of(t->hits);
	t->hits = NULL;
	barrier();
	pthread_mutex_lock(&lock);
	for (int s = 0; s < high; s++) {
		uint64_t c = b->count[s];

		if (!c)
			continue;
		if (slot_owner[s])
			__atomic_add_fetch(&slot_owner[s]->nhit, c, __ATOMIC_RELAXED);
		b->count[s] = 0;
	}
	STORE_RELEASE(b->owner, NULL);
	pthread_mutex_unlock(&lock);
}
