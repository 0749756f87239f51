// SPDX-License-Identifier: MIT
/*
 * fgraph.c - what happens at a traced function's entry and return.
 *
 * Entry comes from three places, all ending in hit():
 *   sd_ftrace_enter()         a patched nop site
 *   sd_ftrace_enter_pg()      __fentry__ or mcount, called by a -pg build
 *   sd_ftrace_kprobe_pre()    a function-entry probe (symbol-table sites)
 *
 * function_graph keeps, per thread, a stack of the return addresses it
 * swapped for sd_arch_fgraph_return (the kernel's ret_stack). It is kept
 * honest by stack address, like the kretprobes' shadow stack: a frame whose
 * slot is below the returning one was jumped over (longjmp, an exception)
 * and is dropped. Exceptions restore every hooked address first
 * (sd_fgraph_unhook_all, from unwind.c).
 *
 * This file runs from trampolines on the traced thread's own stack and in
 * signal handlers: no libc, no vector registers (-mgeneral-regs-only).
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>

#include <sd_arch/syscall.h>

#include "arch/arch.h"
#include "common/compiler.h"
#include "ftrace/fgraph.h"
#include "ftrace/ftrace.h"
#include "probe/thread.h"
#include "trace/trace.h"

#define FGRAPH_DEPTH 4096
#define SAME_STACK   (8UL << 20)

struct fg_frame {
	uint64_t ret;
	uint64_t slot;
	uint64_t func;
	uint64_t calltime;
	int depth;	      /* the depth recorded, or -1: hooked but not recorded */
	uint8_t unhooked;     /* an exception put the real address back */
	uint8_t notrace_root; /* a set_graph_notrace function: nothing under it is recorded */
	uint8_t graph_root;   /* a set_graph_function function: what is under it is */
};

struct fg_stack {
	unsigned int n;
	/*
	 * The top frame's entry record is not written yet: if the call writes
	 * nothing before it returns (a leaf), one funcgraph_leaf record says
	 * it all. Whatever this thread writes first writes the entry
	 * (fg_write_held): a child's entry, or another event (trace.c asks).
	 */
	unsigned int held;
	unsigned int busy; /* hit() or the return at work: flush_held() keeps off */
	int notrace;	   /* inside a set_graph_notrace function */
	int in_graph;	   /* inside a set_graph_function root */
	unsigned int overrun;
	struct fg_frame f[FGRAPH_DEPTH];
};

struct sd_fgraph_state sd_fgraph;
volatile uint8_t sd_ftrace_active __attribute__((visibility("hidden")));

static inline uint64_t tramp(void)
{
	return (uint64_t)(uintptr_t)sd_arch_fgraph_return;
}

static inline struct fg_stack *self_stack(void)
{
	return sd_self.fgraph;
}

SD_NOTRACE static struct fg_stack *stack_get(void)
{
	struct sd_thread *t = &sd_self;
	void *p;

	if (likely(t->fgraph))
		return t->fgraph;
	p = (void *)sd_raw_syscall6(SYS_mmap, 0, sizeof(struct fg_stack), PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if ((unsigned long)p > -4096UL)
		return NULL;
	t->fgraph = p;
	/* registered threads have their stack freed when they exit */
	if (!t->registered)
		sd_thread_register(t);
	return t->fgraph;
}

/* the thread is exiting: its stack goes unless a return still needs it */
SD_NOTRACE static void write_held(struct fg_stack *fs);

void sd_fgraph_thread_exit(struct sd_thread *t)
{
	struct fg_stack *fs = t->fgraph;

	if (fs->held) /* a call the thread ends inside (pthread_exit...): its entry */
		write_held(fs);
	for (unsigned int i = 0; i < fs->n; i++)
		if (!fs->f[i].unhooked)
			return;
	t->fgraph = NULL;
	sd_raw_syscall2(SYS_munmap, fs, sizeof(*fs));
}

/* a sorted address set: the start of the range holding @a, or 0 */
SD_NOTRACE static uint64_t set_find(const struct sd_fg_set *s, uint64_t a)
{
	size_t lo = 0, hi;

	if (!s)
		return 0;
	hi = s->n;
	while (lo < hi) {
		size_t m = (lo + hi) / 2;

		if (s->v[m].end <= a)
			lo = m + 1;
		else if (s->v[m].start > a)
			hi = m;
		else
			return s->v[m].start;
	}
	return 0;
}

SD_NOTRACE static bool in_set(const struct sd_fg_set *s, uint64_t a)
{
	return set_find(s, a) != 0;
}

SD_NOTRACE static bool pid_ok(const struct sd_fgraph_state *st)
{
	const struct sd_fg_pids *p = LOAD_ACQUIRE(st->pids);
	int tid;

	if (!p)
		return true;
	tid = sd_self.tid ? sd_self.tid : sd_raw_gettid();
	for (int i = 0; i < p->n; i++)
		if (p->v[i] == tid)
			return true;
	return false;
}

SD_NOTRACE static void write_function(uint64_t ip, uint64_t parent)
{
	struct sd_event *ev = LOAD_ACQUIRE(sd_fgraph.ev_function);
	struct sd_trace_res res;
	char *e;

	if (!ev || !(e = sd_trace_reserve(ev, SD_ENTRY_COMMON_SIZE + 16, &res)))
		return;
	memcpy(e + 8, &ip, 8);
	memcpy(e + 16, &parent, 8);
	sd_trace_commit(ev, &res);
}

/* @now: the time just read for the frame, the record's own (one clock read per record) */
SD_NOTRACE static void write_entry(uint64_t func, int depth, uint64_t now)
{
	struct sd_event *ev = LOAD_ACQUIRE(sd_fgraph.ev_entry);
	struct sd_trace_res res;
	char *e;

	if (!ev || !(e = sd_trace_reserve_at(ev, SD_ENTRY_COMMON_SIZE + 16, now, &res)))
		return;
	memcpy(e + 8, &func, 8);
	memcpy(e + 16, &depth, 4);
	memset(e + 20, 0, 4);
	sd_trace_commit(ev, &res);
}

/*
 * An exit {func, depth, overrun, calltime, rettime}: funcgraph_exit,
 * stamped at its return, or with @leaf funcgraph_leaf (a call that wrote
 * nothing else), stamped at its entry: nothing of this thread's came since.
 */
SD_NOTRACE static void write_exit(bool leaf, uint64_t func, int depth, unsigned int overrun,
				  uint64_t calltime, uint64_t rettime)
{
	struct sd_event *ev =
	    leaf ? LOAD_ACQUIRE(sd_fgraph.ev_leaf) : LOAD_ACQUIRE(sd_fgraph.ev_exit);
	struct sd_trace_res res;
	char *e;

	if (!ev || !(e = sd_trace_reserve_at(ev, SD_ENTRY_COMMON_SIZE + 32,
					     leaf ? calltime : rettime, &res)))
		return;
	memcpy(e + 8, &func, 8);
	memcpy(e + 16, &depth, 4);
	memcpy(e + 20, &overrun, 4);
	memcpy(e + 24, &calltime, 8);
	memcpy(e + 32, &rettime, 8);
	sd_trace_commit(ev, &res);
}

/* the held entry of the top frame, now that something else is written */
SD_NOTRACE static void write_held(struct fg_stack *fs)
{
	struct fg_frame *f = &fs->f[fs->held - 1];

	fs->held = 0;
	sd_trace_held = 0;
	write_entry(f->func, f->depth, f->calltime);
}

/* from trace.c, before another event of this thread is written */
SD_NOTRACE void sd_fgraph_flush_held(void)
{
	struct fg_stack *fs = self_stack();

	if (!fs || !fs->held)
		sd_trace_held = 0;
	else if (!fs->busy) /* (else a signal's event while this file works: it keeps its order) */
		write_held(fs);
}

SD_NOTRACE static void pop(struct fg_stack *fs)
{
	struct fg_frame *f;

	/* a call that ends without its return (jumped over): its entry at least */
	if (fs->held == fs->n)
		write_held(fs);
	f = &fs->f[--fs->n];

	if (f->notrace_root)
		fs->notrace--;
	if (f->graph_root)
		fs->in_graph--;
}

/*
 * Drop frames jumped over (longjmp): below @slot on the same stack, or at
 * it when it no longer holds the trampoline (a tail call leaves it there:
 * that frame is still live, and returns through both).
 */
SD_NOTRACE static void trim(struct fg_stack *fs, uint64_t slot, bool at_too)
{
	while (fs->n) {
		struct fg_frame *top = &fs->f[fs->n - 1];

		if ((top->slot < slot && slot - top->slot < SAME_STACK) ||
		    (at_too && top->slot == slot))
			pop(fs);
		else
			break;
	}
}

/* function_graph at an entry: a frame for the call, its return hooked */
SD_NOTRACE static void hook(struct sd_fgraph_state *st, struct fg_stack *fs, uint64_t func,
			    uint64_t *slot, bool noreturn)
{
	uint64_t ret = *slot;
	struct fg_frame *f;
	int depth;

	trim(fs, (uint64_t)slot, ret != tramp());
	if (fs->n == FGRAPH_DEPTH) {
		fs->overrun++;
		return;
	}
	/* set_graph_function: only the call trees under these */
	if (st->graph_fn && !fs->in_graph && !in_set(LOAD_ACQUIRE(st->graph_fn), func))
		return;
	depth = 0;
	for (unsigned int i = fs->n; i > 0; i--)
		if (fs->f[i - 1].depth >= 0) {
			depth = fs->f[i - 1].depth + 1;
			break;
		}
	f = &fs->f[fs->n];
	memset(f, 0, sizeof(*f));
	f->ret = ret;
	f->slot = (uint64_t)slot;
	f->func = func;
	f->depth = depth;
	if (st->graph_fn && in_set(LOAD_ACQUIRE(st->graph_fn), func)) {
		f->graph_root = 1;
		fs->in_graph++;
	}
	if (fs->notrace || (st->max_depth && depth >= st->max_depth)) {
		f->depth = -1; /* hooked only to know when it ends */
	} else if (st->graph_notrace && in_set(LOAD_ACQUIRE(st->graph_notrace), func)) {
		f->depth = -1;
		f->notrace_root = 1;
		fs->notrace++;
	}
	if (f->depth >= 0) {
		f->calltime = sd_trace_clock_now();
		if (!st->thresh_ns) {
			/* a child: the held entry above it is written first */
			if (fs->held)
				write_held(fs);
			if (unlikely(noreturn)) {
				/* _exit, abort: its entry now, or never */
				write_entry(func, depth, f->calltime);
			} else {
				fs->held = fs->n + 1;
				sd_trace_held = 1;
			}
		}
	}
	fs->n++;
	*slot = tramp();
}

/* @ret in the code of sonde or of a library it runs on (fgraph.h) */
SD_NOTRACE static inline bool called_by_sonde(const struct sd_fgraph_state *st, uint64_t ret)
{
	if (ret - st->self[0].start >= st->self[0].end - st->self[0].start)
		return false;
	for (int i = 1; i <= st->nself; i++)
		if (ret - st->self[i].start < st->self[i].end - st->self[i].start)
			return true;
	return false;
}

/*
 * With the thread marked as in a handler: record the hit, swap the return
 * address. @pg: a call from a -pg build, made by every function of it:
 * @func is the call's address, looked up among the selected functions.
 */
SD_NOTRACE static void hit(uint64_t func, uint64_t *slot, bool pg, bool noreturn)
{
	struct sd_fgraph_state *st = &sd_fgraph;
	struct sd_thread *t = &sd_self;
	int tracer = READ_ONCE(st->tracer);
	struct fg_stack *fs;

	if (tracer == SD_TRACER_NOP)
		return;
	if (unlikely(called_by_sonde(st, *slot)))
		return;
	if (unlikely(!t->tid))
		t->tid = sd_raw_gettid();
	if (!pid_ok(st))
		return;
	if (pg && !(func = set_find(LOAD_ACQUIRE(st->pg_funcs), func)))
		return;

	if (tracer == SD_TRACER_FUNCTION) {
		write_function(func, *slot);
		return;
	}

	fs = stack_get();
	if (!fs)
		return;
	fs->busy = 1;
	barrier();
	hook(st, fs, func, slot, noreturn);
	barrier();
	fs->busy = 0;
}

/* from the trampolines: the thread may be anywhere, even in sonde */
SD_NOTRACE static void trace_entry(uint64_t func, uint64_t *slot, bool pg)
{
	struct sd_thread *t = &sd_self;
	uint8_t prev = t->active;

	/* sonde's own threads, and a hit inside a handler, are not traced */
	if (prev & SD_ACTIVE_HANDLER || t->in_sonde)
		return;
	sd_thread_enter(t, prev);
	barrier();
	hit(func, slot, pg, false);
	barrier();
	t->active = prev;
}

SD_NOTRACE void sd_ftrace_enter(uint64_t func, uint64_t *slot);
SD_NOTRACE void sd_ftrace_enter(uint64_t func, uint64_t *slot)
{
	trace_entry(func, slot, false);
}

/* __fentry__ (at the function's start) and mcount (after its prologue) */
SD_NOTRACE void sd_ftrace_enter_pg(uint64_t site, uint64_t *slot);
SD_NOTRACE void sd_ftrace_enter_pg(uint64_t site, uint64_t *slot)
{
	trace_entry(site, slot, true);
}

/* the probe dispatcher has marked the thread and kept sonde's own calls out */
SD_NOTRACE int sd_ftrace_kprobe_pre(struct sonde_kprobe *p, struct sonde_regs *regs)
{
	hit((uint64_t)(uintptr_t)p->addr, (uint64_t *)regs->sp, false, false);
	return 0;
}

/* the same, for a function that never returns */
SD_NOTRACE int sd_ftrace_kprobe_pre_noreturn(struct sonde_kprobe *p, struct sonde_regs *regs)
{
	hit((uint64_t)(uintptr_t)p->addr, (uint64_t *)regs->sp, false, true);
	return 0;
}

SD_NOTRACE uint64_t sd_fgraph_return(uint64_t *slotp);
SD_NOTRACE uint64_t sd_fgraph_return(uint64_t *slotp)
{
	struct sd_fgraph_state *st = &sd_fgraph;
	struct sd_thread *t = &sd_self;
	struct fg_stack *fs = self_stack();
	uint64_t slot = (uint64_t)slotp, ret = 0;
	uint8_t prev = t->active;
	int top = -1;

	sd_thread_enter(t, prev);
	barrier();
	for (int i = fs ? (int)fs->n - 1 : -1; i >= 0; i--)
		if (fs->f[i].slot == slot && !fs->f[i].unhooked) {
			top = i;
			break;
		}
	if (top < 0) {
		static const char msg[] = "sonde: function_graph: return address lost; "
					  "cannot continue\n";

		sd_raw_syscall3(SYS_write, 2, msg, sizeof(msg) - 1);
		sd_raw_syscall2(SYS_kill, sd_raw_syscall0(SYS_getpid), SIGABRT);
		return 0;
	}
	fs->busy = 1;
	barrier();
	/* frames above ours were jumped over */
	while ((int)fs->n > top + 1)
		pop(fs);
	{
		struct fg_frame *f = &fs->f[top];

		ret = f->ret;
		if (f->depth >= 0) {
			uint64_t now = sd_trace_clock_now();

			if (fs->held == (unsigned int)top + 1) {
				/* nothing written since its entry: a leaf, one record */
				fs->held = 0;
				sd_trace_held = 0;
				write_exit(true, f->func, f->depth, fs->overrun, f->calltime, now);
			} else if (!st->thresh_ns ||
				   sd_trace_clock_delta_ns(f->calltime, now) >= st->thresh_ns) {
				write_exit(false, f->func, f->depth, fs->overrun, f->calltime, now);
			}
		}
		pop(fs);
	}
	barrier();
	fs->busy = 0;
	barrier();
	t->active = prev;
	return ret;
}

/* ---- exceptions (unwind.c): real addresses back on the stack, then hooked again ------ */

SD_NOTRACE void sd_fgraph_unhook_all(void)
{
	struct fg_stack *fs = self_stack();

	for (unsigned int i = 0; fs && i < fs->n; i++) {
		struct fg_frame *f = &fs->f[i];

		if (!f->unhooked && *(uint64_t *)f->slot == tramp()) {
			*(uint64_t *)f->slot = f->ret;
			f->unhooked = 1;
		}
	}
}

SD_NOTRACE void sd_fgraph_rehook(uint64_t sp)
{
	struct fg_stack *fs = self_stack();

	if (!fs)
		return;
	trim(fs, sp, false);
	for (unsigned int i = 0; i < fs->n; i++) {
		struct fg_frame *f = &fs->f[i];

		if (f->unhooked && *(uint64_t *)f->slot == f->ret) {
			*(uint64_t *)f->slot = tramp();
			f->unhooked = 0;
		}
	}
}
