// SPDX-License-Identifier: MIT
/*
 * fgraph.c - what happens at a traced function's entry and return.
 *
 * Entry comes from three places, all ending in hit():
 *   sd_ftrace_enter_stub()    a patched nop site's stub
 *   sd_ftrace_enter_pg()      __fentry__ or mcount, called by a -pg build
 *   sd_ftrace_kprobe_pre()    a function-entry probe (symbol-table sites)
 *
 * function_graph keeps, per thread, a stack of the return addresses it
 * took (the kernel's ret_stack): swapped for sd_arch_fgraph_return at -pg
 * and probe sites; at patched nops the function's stub calls its body,
 * which returns into the stub (ftrace_stub.c). It is kept honest by stack
 * address, like the kretprobes' shadow stack: a frame whose slot is below
 * the returning one was jumped over (longjmp, an exception) and is
 * dropped. Exceptions restore every hooked address first
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
	uint64_t hooked; /* what the slot holds while the frame is hooked */
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

/*
 * The records are built as whole words: the writer copies them 8 bytes at
 * a time, and a load spanning two smaller stores waits for them to reach
 * the cache (no store forwarding).
 */
struct fg_rec {
	uint64_t common; /* the writer's */
	uint64_t w[4];
};

/* {depth, overrun} or {depth, 0}: two 32-bit fields, one word */
static inline uint64_t two_u32(int32_t lo, uint32_t hi)
{
	return (uint64_t)(uint32_t)lo | (uint64_t)hi << 32;
}

/* @now: the time just read for the frame, the record's own (one clock read per record) */
SD_NOTRACE static void write_entry(uint64_t func, int depth, uint64_t now)
{
	struct sd_event *ev = LOAD_ACQUIRE(sd_fgraph.ev_entry);
	struct fg_rec r;

	r.w[0] = func;
	r.w[1] = two_u32(depth, 0);
	if (ev)
		sd_trace_write_at(ev, now, &r, SD_ENTRY_COMMON_SIZE + 16);
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
	struct fg_rec r;

	r.w[0] = func;
	r.w[1] = two_u32(depth, overrun);
	r.w[2] = calltime;
	r.w[3] = rettime;
	if (ev)
		sd_trace_write_at(ev, leaf ? calltime : rettime, &r, SD_ENTRY_COMMON_SIZE + 32);
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
 * it when it no longer holds what the frame put there, @cur being what it
 * holds (a tail call leaves it there: that frame is still live, and
 * returns through both). @cur NULL: none at @slot is dropped.
 */
SD_NOTRACE static void trim(struct fg_stack *fs, uint64_t slot, const uint64_t *cur)
{
	while (fs->n) {
		struct fg_frame *top = &fs->f[fs->n - 1];

		if ((top->slot < slot && slot - top->slot < SAME_STACK) ||
		    (cur && top->slot == slot && *cur != top->hooked))
			pop(fs);
		else
			break;
	}
}

/*
 * function_graph at an entry: a frame for the call, its return hooked.
 * @call_ret: 0, swap the return address for the trampoline; else the
 * caller calls the function and this is where it returns to. Whether the
 * call was hooked.
 */
SD_NOTRACE static bool hook(struct sd_fgraph_state *st, struct fg_stack *fs, uint64_t func,
			    uint64_t *slot, bool noreturn, uint64_t call_ret)
{
	uint64_t ret = *slot;
	struct fg_frame *f;
	int depth;

	trim(fs, (uint64_t)slot, &ret);
	if (fs->n == FGRAPH_DEPTH) {
		fs->overrun++;
		return false;
	}
	/* set_graph_function: only the call trees under these */
	if (st->graph_fn && !fs->in_graph && !in_set(LOAD_ACQUIRE(st->graph_fn), func))
		return false;
	depth = 0;
	for (unsigned int i = fs->n; i > 0; i--)
		if (fs->f[i - 1].depth >= 0) {
			depth = fs->f[i - 1].depth + 1;
			break;
		}
	/* field by field: a memset() here is a `rep stos`, slow to start */
	f = &fs->f[fs->n];
	f->ret = ret;
	f->slot = (uint64_t)slot;
	f->hooked = call_ret ? call_ret : tramp();
	f->func = func;
	f->calltime = 0;
	f->depth = depth;
	f->unhooked = 0;
	f->notrace_root = 0;
	f->graph_root = 0;
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
	if (!call_ret)
		*slot = tramp();
	return true;
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
 * With the thread marked as in a handler: record the hit, hook the return
 * (hook()'s @call_ret says how). @pg: a call from a -pg build, made by
 * every function of it: @func is the call's address, looked up among the
 * selected functions. Whether function_graph hooked the call.
 */
SD_NOTRACE static bool hit(uint64_t func, uint64_t *slot, bool pg, bool noreturn, uint64_t call_ret)
{
	struct sd_fgraph_state *st = &sd_fgraph;
	struct sd_thread *t = &sd_self;
	int tracer = READ_ONCE(st->tracer);
	struct fg_stack *fs;
	bool hooked;

	if (tracer == SD_TRACER_NOP)
		return false;
	if (unlikely(called_by_sonde(st, *slot)))
		return false;
	if (unlikely(!t->tid))
		t->tid = sd_raw_gettid();
	if (!pid_ok(st))
		return false;
	if (pg && !(func = set_find(LOAD_ACQUIRE(st->pg_funcs), func)))
		return false;

	if (tracer == SD_TRACER_FUNCTION) {
		write_function(func, *slot);
		return false;
	}

	fs = stack_get();
	if (!fs)
		return false;
	fs->busy = 1;
	barrier();
	hooked = hook(st, fs, func, slot, noreturn, call_ret);
	barrier();
	fs->busy = 0;
	return hooked;
}

/* from the trampolines: the thread may be anywhere, even in sonde */
SD_NOTRACE static bool trace_entry(uint64_t func, uint64_t *slot, bool pg, uint64_t call_ret)
{
	struct sd_thread *t = &sd_self;
	uint8_t prev = t->active;
	bool hooked;

	/* sonde's own threads, and a hit inside a handler, are not traced */
	if (prev & SD_ACTIVE_HANDLER || t->in_sonde)
		return false;
	sd_thread_enter(t, prev);
	barrier();
	hooked = hit(func, slot, pg, false, call_ret);
	barrier();
	t->active = prev;
	return hooked;
}

/* a patched nop's stub (ftrace_stub.c): nonzero, the stub calls the body */
SD_NOTRACE uint64_t sd_ftrace_enter_stub(uint64_t in_stub, uint64_t *slot);
SD_NOTRACE uint64_t sd_ftrace_enter_stub(uint64_t in_stub, uint64_t *slot)
{
	/* the nop is the function's first 5 bytes; the body follows it */
	uint64_t func = sd_arch_ftrace_stub_body(in_stub) - 5;

	return trace_entry(func, slot, false, sd_arch_ftrace_stub_hook_ret(in_stub));
}

/* __fentry__ (at the function's start) and mcount (after its prologue) */
SD_NOTRACE void sd_ftrace_enter_pg(uint64_t site, uint64_t *slot);
SD_NOTRACE void sd_ftrace_enter_pg(uint64_t site, uint64_t *slot)
{
	trace_entry(site, slot, true, 0);
}

/* the probe dispatcher has marked the thread and kept sonde's own calls out */
SD_NOTRACE int sd_ftrace_kprobe_pre(struct sonde_kprobe *p, struct sonde_regs *regs)
{
	hit((uint64_t)(uintptr_t)p->addr, (uint64_t *)regs->sp, false, false, 0);
	return 0;
}

/* the same, for a function that never returns */
SD_NOTRACE int sd_ftrace_kprobe_pre_noreturn(struct sonde_kprobe *p, struct sonde_regs *regs)
{
	hit((uint64_t)(uintptr_t)p->addr, (uint64_t *)regs->sp, false, true, 0);
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

/*
 * Innermost first: the frames of tail calls share a slot, each holding the
 * hooked address of the one before as its return address, so undoing them
 * in that order leaves the real one there. (sd_fgraph_rehook() goes the
 * other way.)
 */
SD_NOTRACE void sd_fgraph_unhook_all(void)
{
	struct fg_stack *fs = self_stack();

	for (unsigned int i = fs ? fs->n : 0; i > 0; i--) {
		struct fg_frame *f = &fs->f[i - 1];

		if (!f->unhooked && *(uint64_t *)f->slot == f->hooked) {
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
	trim(fs, sp, NULL);
	for (unsigned int i = 0; i < fs->n; i++) {
		struct fg_frame *f = &fs->f[i];

		if (f->unhooked && *(uint64_t *)f->slot == f->ret) {
			*(uint64_t *)f->slot = f->hooked;
			f->unhooked = 0;
		}
	}
}
