/* SPDX-License-Identifier: MIT */
/*
 * probe.h - the probe engine's internal structures.
 *
 * A struct sd_site is one probed address: the displaced instruction, its
 * out-of-line slots and the probes registered there (the kernel's
 * "aggregate probe"). Sites are found by address in a hash table that the
 * SIGTRAP handler reads without locks; both the table and each site's probe
 * list are immutable once published and replaced whole by writers, which
 * hold sd_probe_mutex and free what they replaced only after
 * sd_sync_threads().
 */
#ifndef SD_PROBE_PROBE_H
#define SD_PROBE_PROBE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <sonde/kprobes.h>

#include "arch/arch.h"

struct sd_probe_list {
	int n;
	struct sonde_kprobe *p[];
};

struct sd_site {
	uint64_t addr;
	struct sd_insn insn;
	uint8_t *slot;        /* insn, clear `active`, jump back */
	uint8_t *slot_nested; /* insn, jump back (for hits inside a handler) */
	uint8_t *slot_post;   /* insn, trap (post_handler); NULL until needed */
	uint64_t post_trap;   /* address of the trap byte in slot_post */
	struct sd_probe_list *probes;
	bool armed;
};

struct sd_site_table {
	uint64_t mask;
	unsigned int count;
	struct sd_site *slot[];
};

extern pthread_mutex_t sd_probe_mutex;
extern struct sd_site_table *sd_sites;

/* lock-free lookup, signal-safe */
struct sd_site *sd_site_lookup(uint64_t addr);

/* private bits kept in sonde_kprobe.__reserved[0] */
#define SD_KP_REGISTERED 0x1UL
#define SD_KP_INTERNAL   0x2UL /* sonde's own probe: never listed */

static inline bool sd_kprobe_enabled(const struct sonde_kprobe *p)
{
	return !(__atomic_load_n(&p->flags, __ATOMIC_RELAXED) & SONDE_KPROBE_FLAG_DISABLED);
}

/* install the SIGTRAP handler (signal.c) */
int sd_signal_setup(void);
/* hand a trap that is not ours to the program's own handler */
void sd_signal_chain(int sig, void *info, void *uc);
/* the signal return trampoline of libc (never probed) */
uint64_t sd_signal_restorer(void);

/* the SIGTRAP handler (dispatch.c) */
void sd_trap_handler(int sig, void *info, void *uc);

/* resolve a kprobe's address from symbol_name/offset/addr (kprobe.c) */
int sd_kprobe_resolve(struct sonde_kprobe *p, uint64_t *addr);

/* kretprobe entry, as a pre_handler (kretprobe.c) */
int sd_kretprobe_pre_handler(struct sonde_kprobe *p, struct sonde_regs *regs);

#endif
