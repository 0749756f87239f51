/* SPDX-License-Identifier: MIT */
/*
 * hits.h - kprobe hit counts without a locked add on the hit path.
 *
 * A registered kprobe gets a counter slot; each thread counts its own hits
 * in a block of counters of its own (claimed on its first hit, from the
 * probe path: mmap only, no lock), with a plain increment. A probe's count
 * is its nhit (hits folded in: from exited threads, from unregistering,
 * and hits that found no slot) plus the sum of its slot over every block.
 * The kernel keeps its kprobe hit counts per cpu for the same reason.
 */
#ifndef SD_PROBE_HITS_H
#define SD_PROBE_HITS_H

#include <stdint.h>

#include <sonde/kprobes.h>

#include "common/compiler.h"
#include "probe/thread.h"

#define SD_HIT_SLOTS 65536

/* @p's slot + 1 lives in __reserved[1] (0: none, counted with a locked add) */
static inline int sd_hit_slot(const struct sonde_kprobe *p)
{
	return (int)p->__reserved[1] - 1;
}

/* this thread's block, claimed on its first hit; NULL when none can be had */
uint64_t *sd_hit_block_claim(struct sd_thread *t);

/* count a hit of @p by this thread (probe path: signal-safe) */
SD_NOTRACE static inline void sd_hit(struct sonde_kprobe *p)
{
	struct sd_thread *t = &sd_self;
	uint64_t *b = t->hits;
	int slot = sd_hit_slot(p);

	if (likely(slot >= 0 && (b || (b = sd_hit_block_claim(t)))))
		WRITE_ONCE(b[slot], b[slot] + 1);
	else
		__atomic_add_fetch(&p->nhit, 1, __ATOMIC_RELAXED);
}

/* registration (under the probe mutex): a slot for @p, whose nhit starts at 0 */
void sd_hit_register(struct sonde_kprobe *p);
/* unregistration, once no thread can be counting for @p: its hits folded into nhit */
void sd_hit_unregister(struct sonde_kprobe *p);
/* @p's hits so far */
unsigned long sd_hit_count(const struct sonde_kprobe *p);
/* a thread's exit: its counts folded into the probes' nhit, its block freed */
void sd_hit_thread_exit(struct sd_thread *t);

#endif
