// SPDX-License-Identifier: MIT
/*
 * dispatch.c - the breakpoint path: SIGTRAP to handlers to the displaced
 * instruction.
 *
 *   int3 at site ─► sd_trap_handler
 *                     ├ thread already in a handler?  count nmissed, no handlers
 *                     ├ run every enabled pre_handler (nhit++)
 *                     ├ a pre_handler returned nonzero: resume at regs->ip
 *                     ├ branch instruction: emulate it, run post_handlers
 *                     └ otherwise resume in the site's slot, which runs the
 *                       instruction, marks the thread quiescent and jumps
 *                       back (or traps again for the post_handlers)
 *
 * A breakpoint with no site is a probe that was removed after the thread
 * trapped (the byte under it is no longer int3: run it again), a poke in
 * progress (wait for it), or the program's own: passed on.
 *
 * Nothing here calls libc: a user may probe any libc function, and this
 * code runs inside a signal handler. Every function of this file lives in
 * the sonde_text section, which probes refuse.
 */
#include <signal.h>
#include <stddef.h>

#include <sd_arch/syscall.h>

#include "common/compiler.h"
#include "probe/probe.h"
#include "probe/hits.h"
#include "probe/thread.h"

SD_NOTRACE struct sd_site *sd_site_lookup(uint64_t addr)
{
	struct sd_site_table *t = LOAD_ACQUIRE(sd_sites);
	uint64_t h;

	if (!t)
		return NULL;
	h = (addr * 0x9e3779b97f4a7c15ULL) >> 20;
	for (uint64_t i = 0; i <= t->mask; i++) {
		struct sd_site *s = LOAD_ACQUIRE(t->slot[(h + i) & t->mask]);

		if (!s)
			return NULL;
		if (s->addr == addr) /* never sd_site_gone's */
			return s;
	}
	return NULL;
}

SD_NOTRACE static void count_missed(struct sd_site *site)
{
	struct sd_probe_list *l = LOAD_ACQUIRE(site->probes);

	for (int i = 0; i < l->n; i++)
		if (sd_kprobe_enabled(l->p[i]))
			__atomic_add_fetch(&l->p[i]->nmissed, 1, __ATOMIC_RELAXED);
}

SD_NOTRACE static void run_post(struct sd_site *site, struct sonde_regs *regs)
{
	struct sd_probe_list *l = LOAD_ACQUIRE(site->probes);

	for (int i = 0; i < l->n; i++) {
		struct sonde_kprobe *p = l->p[i];

		if (p->post_handler && sd_kprobe_enabled(p))
			p->post_handler(p, regs, 0);
	}
}

SD_NOTRACE static bool wants_post(struct sd_site *site)
{
	struct sd_probe_list *l = LOAD_ACQUIRE(site->probes);

	if (!site->slot_post)
		return false;
	for (int i = 0; i < l->n; i++)
		if (l->p[i]->post_handler && sd_kprobe_enabled(l->p[i]))
			return true;
	return false;
}

/*
 * Run the displaced instruction of @site for a hit whose handlers are not
 * run (recursion, or sonde's own code). @prev is what the thread was doing
 * before this trap; when something was active its state must survive, so
 * the slot that leaves `active` alone is used.
 */
/*
 * An optimized site (or one being optimized) continues in its copy of the
 * whole region: resuming after the first instruction would land in the
 * middle of the jump. The main copy (never freed) clears `active` on its
 * way out; the nested one keeps it.
 */
SD_NOTRACE static bool to_detour(struct sd_thread *t, struct sd_site *site, void *uc, uint8_t prev)
{
	if (!LOAD_ACQUIRE(site->detour))
		return false;
	sd_arch_uc_set_ip(uc, prev ? site->layout.nested : site->layout.main);
	barrier();
	t->active = prev ? prev : SD_ACTIVE_SLOT;
	return true;
}

SD_NOTRACE static void pass_through(struct sd_thread *t, struct sd_site *site, void *uc,
				    uint8_t prev)
{
	struct sonde_regs regs;

	if (to_detour(t, site, uc, prev))
		return;

	if (sd_arch_insn_emulated(&site->insn)) {
		sd_arch_regs_from_uc(&regs, uc);
		regs.ip = site->addr;
		if (!sd_arch_emulate(&site->insn, &regs)) {
			sd_arch_regs_to_uc(uc, &regs);
			barrier();
			t->active = prev;
			return;
		}
	}
	if (!prev)
		t->resume = site->addr + site->insn.len;
	sd_arch_uc_set_ip(uc, (uint64_t)(prev ? site->slot_nested : site->slot));
	barrier();
	t->active = prev ? prev : SD_ACTIVE_SLOT;
}

/* the second trap, at the end of slot_post: the instruction has run */
SD_NOTRACE static void post_trap(struct sd_thread *t, void *uc)
{
	struct sd_site *site = t->post_site;
	struct sonde_regs regs;

	t->active = SD_ACTIVE_HANDLER | SD_ACTIVE_SLOT;
	sd_arch_regs_from_uc(&regs, uc);
	regs.ip = site->addr + site->insn.len;
	run_post(site, &regs);
	regs.ip = site->addr + site->insn.len;
	sd_arch_regs_to_uc(uc, &regs);
	t->post_site = NULL;
	barrier();
	t->active = t->post_prev;
}

SD_NOTRACE static void no_site(struct sd_thread *t, uint64_t bp, int sig, void *info, void *uc,
			       uint8_t prev, unsigned long gen)
{
	t->active = prev;
	{
		/* waiting out a batch, the thread can still say where it is (threads_ip.c) */
		uint64_t sample = 1ULL << (SD_SAMPLE_SIGNAL - 1), old;
		bool transient;

		sd_raw_syscall6(SYS_rt_sigprocmask, SIG_UNBLOCK, (long)&sample, (long)&old, 8, 0,
				0);
		transient = sd_text_poke_trap(bp);
		sd_raw_syscall6(SYS_rt_sigprocmask, SIG_SETMASK, (long)&old, 0, 8, 0, 0);
		if (transient) {
			sd_arch_uc_set_ip(uc, bp);
			return;
		}
	}
	if (*(volatile uint8_t *)bp != SD_ARCH_BP_INSN ||
	    __atomic_load_n(&sd_code_gen, __ATOMIC_SEQ_CST) != gen) {
		/*
		 * The probe went away after this thread trapped on it, or the
		 * code and tables changed while we looked (a probe just put back
		 * at this address): run the instruction there again.
		 */
		sd_arch_uc_set_ip(uc, bp);
		return;
	}
	sd_signal_chain(sig, info, uc);
}

SD_NOTRACE void sd_trap_handler(int sig, void *info, void *uc)
{
	struct sd_thread *t = &sd_self;
	const siginfo_t *si = info;
	uint64_t bp = sd_arch_uc_ip(uc) - SD_ARCH_BP_LEN;
	uint8_t prev = t->active;
	unsigned long gen = __atomic_load_n(&sd_code_gen, __ATOMIC_SEQ_CST);
	struct sd_probe_list *l;
	struct sd_site *site;
	struct sonde_regs regs;
	bool skip = false;

	if (si->si_code != SI_KERNEL) {
		sd_signal_chain(sig, info, uc); /* kill -TRAP, single-step: not ours */
		return;
	}
	if (t->post_site && bp == t->post_site->post_trap) {
		post_trap(t, uc);
		return;
	}
	if (unlikely(!t->registered))
		sd_thread_register(t);

	if (prev & SD_ACTIVE_HANDLER) {
		/* a handler hit a probe: the outer entry keeps the thread visible */
		site = sd_site_lookup(bp);
		if (!site) {
			no_site(t, bp, sig, info, uc, prev, gen);
			return;
		}
		count_missed(site);
		pass_through(t, site, uc, prev);
		return;
	}

	/* outermost entry, or a signal handler that interrupted a slot */
	sd_thread_enter(t, prev);
	smp_mb(); /* pairs with sd_sync_threads(): flag visible before the lookup */

	site = sd_site_lookup(bp);
	if (!site) {
		no_site(t, bp, sig, info, uc, prev, gen);
		return;
	}
	if (t->in_sonde) {
		/* libsonde's own calls never fire probes nor show in counts */
		pass_through(t, site, uc, prev);
		return;
	}

	sd_arch_regs_from_uc(&regs, uc);
	regs.ip = bp;
	l = LOAD_ACQUIRE(site->probes);
	for (int i = 0; i < l->n && !skip; i++) {
		struct sonde_kprobe *p = l->p[i];

		if (!sd_kprobe_enabled(p))
			continue;
		sd_hit(p);
		if (p->pre_handler && p->pre_handler(p, &regs))
			skip = true;
	}
	if (skip) {
		/* the handler moved execution elsewhere: the instruction is not run */
		sd_arch_regs_to_uc(uc, &regs);
		barrier();
		t->active = prev;
		return;
	}

	regs.ip = bp;
	sd_arch_regs_to_uc(uc, &regs);
	if (to_detour(t, site, uc, prev))
		return;
	if (sd_arch_insn_emulated(&site->insn) && !sd_arch_emulate(&site->insn, &regs)) {
		run_post(site, &regs);
		sd_arch_regs_to_uc(uc, &regs);
		barrier();
		t->active = prev;
		return;
	}

	if (wants_post(site)) {
		t->post_site = site;
		t->post_prev = prev;
		regs.ip = (uint64_t)site->slot_post;
		sd_arch_regs_to_uc(uc, &regs);
		barrier();
		t->active = SD_ACTIVE_SLOT | prev;
		return;
	}
	/*
	 * The exit stub clears `active` and jumps to `resume`: only right when
	 * nothing was active before (a signal handler may have interrupted a
	 * slot whose own resume must survive).
	 */
	if (!prev)
		t->resume = site->addr + site->insn.len;
	regs.ip = (uint64_t)(prev ? site->slot_nested : site->slot);
	sd_arch_regs_to_uc(uc, &regs);
	barrier();
	t->active = prev ? prev : SD_ACTIVE_SLOT;
}
