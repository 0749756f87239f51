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
	uint8_t *slot;	      /* insn, clear `active`, jump back */
	uint8_t *slot_nested; /* insn, jump back (for hits inside a handler) */
	uint8_t *slot_post;   /* insn, trap (post_handler); NULL until needed */
	uint64_t post_trap;   /* address of the trap byte in slot_post */
	struct sd_probe_list *probes;
	bool armed;
	bool gone; /* its code was unmapped (dlclose): nothing is written there any more */
	/*
	 * not armed yet: the optimizer writes its jump, or (no jump to be had)
	 * its breakpoint, unless jump_only (SD_KP_JUMP_FIRST, _ONLY; every site
	 * in libc is jump_first: kprobe.c says why)
	 */
	bool arm_pending, jump_first, jump_only;

	/* jump optimization (optprobe.c) */
	bool optimized;	     /* the jump is written */
	const char *opt_why; /* why it is not, for kprobe_profile and tests */
	uint8_t *detour;
	struct sd_opt_layout layout;
	struct sd_opt_region region;
	uint32_t opt_index;
	bool lite;	 /* handlers never touch the vector state */
	bool opt_queued; /* waiting for the optimizer */
	uint8_t opt_tries;
};

/* open addressing, linear probing; kprobe.c says how it changes */
struct sd_site_table {
	uint64_t mask;
	unsigned int count; /* sites */
	unsigned int used;  /* slots not empty: sites and sd_site_gone */
	struct sd_site *slot[];
};

extern pthread_mutex_t sd_probe_mutex;
extern struct sd_site_table *sd_sites;
/* what a removed site's slot holds: no site is at its address */
extern struct sd_site sd_site_gone;
/* a site's opt_why while another probe sits inside its jump's bytes */
extern const char sd_opt_why_inside[];

/* lock-free lookup, signal-safe */
struct sd_site *sd_site_lookup(uint64_t addr);

/*
 * Code another patcher holds (claim.c): the function tracers claim each
 * entry nop, @len bytes at each of @addrs, before patching it, and give
 * the claim up once the nop is back; a static tracepoint's jump-label nops
 * are claimed while their object is loaded. ok[i]: claimed; false where a
 * probe site (or its jump) is already there. Returns 0 or -ENOMEM (nothing
 * claimed). These take sd_probe_mutex, the _held ones want it held.
 */
enum sd_claim_owner { SD_CLAIM_FTRACE = 1, SD_CLAIM_JUMP_LABEL };
int sd_text_claim(const uint64_t *addrs, int n, size_t len, int owner, bool *ok);
int sd_text_claim_held(const uint64_t *addrs, int n, size_t len, int owner, bool *ok);
void sd_text_unclaim(const uint64_t *addrs, int n);
void sd_text_unclaim_held(const uint64_t *addrs, int n);
/*
 * The start of a claim meeting [@addr, @addr + @len), or 0 (*@owner: whose,
 * if @owner); under sd_probe_mutex
 */
uint64_t sd_text_claimed(uint64_t addr, size_t len, int *owner);
/*
 * A probe is to go on the claim at @addr: its holder puts the original
 * code back and gives the claim up (hooking its function some other way),
 * through the function it set; 0, or -errno. Called without sd_probe_mutex.
 */
void sd_text_claim_set_release(int (*release)(uint64_t addr));
int sd_text_release(uint64_t addr);

/* private bits kept in sonde_kprobe.__reserved[0] */
#define SD_KP_REGISTERED 0x1UL
#define SD_KP_INTERNAL	 0x2UL /* sonde's own probe: never listed */
#define SD_KP_NOFPU	 0x4UL /* its handlers never touch vector registers (set at registration) */
#define SD_KP_OWN_NOFPU	 0x8UL /* sonde's own handlers, built -mgeneral-regs-only */
/*
 * armed by the optimizer's jump, never by a breakpoint first; a breakpoint
 * only where no jump can be had, and never for _ONLY: code that may run
 * with every signal blocked, where a breakpoint kills the process (the
 * registration adds _ONLY itself for the libc functions glibc runs so)
 */
#define SD_KP_JUMP_FIRST 0x10UL
#define SD_KP_JUMP_ONLY	 0x20UL

/* ---- jump optimization (optprobe.c); callers hold sd_probe_mutex ------------------ */

/* whether probes are optimized at all (the kernel's debug.kprobes_optimization) */
extern bool sd_opt_allowed;
/* have the optimizer try to turn @site's breakpoint into a jump, shortly */
void sd_site_queue_optimize(struct sd_site *site);
/*
 * after @site's probe list or a probe's enabled flag changed: what its
 * detour's common case calls (the readers are waited for by the caller's
 * sd_sync_threads(), as for the list)
 */
void sd_site_fast_update(struct sd_site *site);
/* a pending site (arm_pending) that gets no jump: its breakpoint, unless jump_only */
void sd_site_arm_fallback(struct sd_site *site);
/*
 * probes whose code was unmapped (dlclose) since the last look: taken out
 * without a byte written (SONDE_KPROBE_FLAG_GONE, no longer registered),
 * as the kernel's kprobes of an unloaded module. Cheap when nothing was
 * unloaded. Takes sd_probe_mutex.
 */
void sd_kprobes_forget_unmapped(void);
/*
 * sd_libc_signals_blocked - whether glibc runs its function @name with
 * every signal blocked, where a breakpoint kills the process (kprobe.c):
 * in a thread's last steps, which every program with threads runs; or in
 * a new thread's first ones, posix_spawn's child and the locks taken
 * there. 0 when not.
 */
#define SD_BLOCKED_THREAD_END	1
#define SD_BLOCKED_THREAD_START 2
int sd_libc_signals_blocked(const char *name);
/* the optimizer's queue worked through on this thread, now */
void sd_optimize_now(void);
/* why @p's site is not a jump (a static string), or NULL; takes sd_probe_mutex */
const char *sd_kprobe_opt_why(struct sonde_kprobe *p);
/* @p's site is a jump or nothing (kprobe.c: signals_blocked_at); takes sd_probe_mutex */
bool sd_kprobe_jump_only(struct sonde_kprobe *p);
/*
 * end the optimizer thread (detach): it finishes its queue and frees the
 * detours no thread can be in; a later queued site starts a new one
 */
void sd_optimizer_stop(void);
/* back to the breakpoint (or to the original code when @keep_int3 is false) */
int sd_site_unoptimize(struct sd_site *site, bool keep_int3);
/* the code of the function around @addr as it was before any probe: a copy */
int sd_recover_function(uint64_t addr, struct sd_opt_code *code, int max, int *n);
void sd_recover_code(uint8_t *buf, uint64_t start, size_t len);
/* this process's objects, read again when @refresh (kprobe.c) */
struct sd_maps *sd_probe_maps(bool refresh);
/*
 * the same, read again if the dynamic linker has loaded or unloaded an
 * object since: the caller (and every caller up its stack) holds no module
 * of the maps read before
 */
struct sd_maps *sd_probe_maps_current(void);
/* changes each time the maps are read again: what was learnt of the old ones may not hold */
unsigned long sd_probe_maps_gen(void);

static inline bool sd_kprobe_enabled(const struct sonde_kprobe *p)
{
	return !(__atomic_load_n(&p->flags, __ATOMIC_RELAXED) & SONDE_KPROBE_FLAG_DISABLED);
}

/* install the SIGTRAP handler (signal.c) */
int sd_signal_setup(void);
/* take @sig for sonde; the program's own uses of it are passed on */
int sd_signal_own(int sig, void (*handler)(int sig, void *info, void *uc));

/* the real-time signal that asks a thread where it is (threads_ip.c) */
#define SD_SAMPLE_SIGNAL 62

struct sd_range {
	uint64_t start, end;
};

/*
 * sd_threads_outside - wait until no other thread's instruction pointer is
 * inside any of @ranges, sampling them up to @attempts times (a
 * millisecond apart). 0, or -EBUSY when a thread stayed inside (or could
 * not be asked).
 */
int sd_threads_outside(const struct sd_range *ranges, int n, int attempts);
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
/* whether the entry_handler and handler of the kretprobe of @kp are integer code only */
bool sd_kretprobe_vec_free(const struct sonde_kprobe *kp);

#endif
