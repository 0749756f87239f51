/* SPDX-License-Identifier: MIT */
/*
 * kprobes.h - probes on any instruction of the running process.
 *
 * The user-space twin of <linux/kprobes.h>. A caller fills a struct
 * sonde_kprobe (which it owns and must keep alive until it is unregistered)
 * and registers it; from then on pre_handler runs each time any thread
 * reaches the probed instruction, and post_handler after that instruction
 * has executed.
 *
 * Semantics that follow the kernel's:
 *  - the address is symbol_name + offset, or addr when symbol_name is NULL;
 *    it must be an instruction boundary (-EILSEQ otherwise);
 *  - several probes may share an address; each has its own handlers;
 *  - a probe hit while a handler of this thread is running is not handled
 *    but counted in nmissed;
 *  - a pre_handler that changes regs->ip and returns nonzero makes the
 *    probed instruction be skipped, execution resumes at regs->ip;
 *  - kretprobes hijack the return address of the function at entry; at
 *    most maxactive instances are in flight at once, hits beyond that are
 *    counted in nmissed;
 *  - unregistering returns only once no thread can still be running in a
 *    handler, a trampoline or an out-of-line slot of that probe.
 *
 * Differences, on purpose:
 *  - regs->ip in a pre_handler is the probed address itself (the kernel's
 *    x86 code shows the address after the breakpoint byte);
 *  - handlers run in a signal handler (breakpoint probes) or on the thread's
 *    own stack (optimized probes, kretprobe returns): they must be
 *    async-signal-safe, as kernel handlers must not sleep;
 *  - a name resolving to an IFUNC (strlen, memcpy, ...) is probed at the
 *    implementation the dynamic linker selected, not at the resolver.
 */
#ifndef SONDE_KPROBES_H
#define SONDE_KPROBES_H

#include <stddef.h>
#include <stdint.h>
#include <sonde/sonde.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * struct sonde_regs - the registers at a probe, in the order of the kernel's
 * x86-64 struct pt_regs. Handlers may change them; the changes take effect
 * when the handler returns (except ip and sp in optimized probes).
 */
struct sonde_regs {
	uint64_t r15, r14, r13, r12;
	uint64_t bp, bx;
	uint64_t r11, r10, r9, r8;
	uint64_t ax, cx, dx, si, di;
	uint64_t orig_ax;
	uint64_t ip;
	uint64_t cs;
	uint64_t flags;
	uint64_t sp;
	uint64_t ss;
};

/**
 * sonde_regs_arg - the @n'th integer argument (0-based) of a function, by the
 * System V calling convention: di, si, dx, cx, r8, r9, then the stack.
 * Valid at a function's first instruction. Reading past the sixth argument
 * reads the caller's stack (a bad stack gives 0).
 */
SONDE_API uint64_t sonde_regs_arg(const struct sonde_regs *regs, unsigned int n);

/** sonde_regs_return_value - the integer return value (ax). */
static inline uint64_t sonde_regs_return_value(const struct sonde_regs *regs)
{
	return regs->ax;
}

/** sonde_regs_get - a register by its kernel fetch-arg name ("di", "ax", "ip"…). */
SONDE_API int sonde_regs_get(const struct sonde_regs *regs, const char *name, uint64_t *val);

struct sonde_kprobe;

typedef int (*sonde_kprobe_pre_handler_t)(struct sonde_kprobe *p, struct sonde_regs *regs);
typedef void (*sonde_kprobe_post_handler_t)(struct sonde_kprobe *p, struct sonde_regs *regs,
					    unsigned long flags);

/* flags, as the kernel's KPROBE_FLAG_* */
#define SONDE_KPROBE_FLAG_GONE	    1U /* the code under the probe went away */
#define SONDE_KPROBE_FLAG_DISABLED  2U /* registered but not armed */
#define SONDE_KPROBE_FLAG_OPTIMIZED 4U /* runs through a jump, not a breakpoint */
#define SONDE_KPROBE_FLAG_FTRACE    8U /* runs from a compiled-in function-entry site */
/*
 * Set by the caller before registering, as the kernel asks of its handlers:
 * the handlers touch no vector, x87 or MMX register (their code is built
 * with -mgeneral-regs-only, or carries SONDE_NOFPU, and calls nothing that
 * does: no libc string or stdio function). A jump-optimized probe then
 * skips saving and restoring the vector state, which costs as much as the
 * rest of its path (the registers in use, found by XGETBV; the whole
 * state by XSAVE where x87 values may be live mid-function). A handler that breaks the promise
 * corrupts the vector registers of the code it interrupts. For a kretprobe
 * (in rp.kp.flags) it covers entry_handler and handler, and the return
 * side skips the vector state too. Without the flag, registration reads
 * the handlers' code (and that of the functions they call directly): when
 * it is all integer code, they are treated as if flagged.
 */
#define SONDE_KPROBE_FLAG_NOFPU 16U

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define SONDE_NOFPU __attribute__((target("general-regs-only")))
#else
#define SONDE_NOFPU
#endif

struct sonde_kprobe {
	/* Where: symbol_name ("malloc", "libc.so.6:malloc") + offset, or addr. */
	const char *symbol_name;
	unsigned long offset;
	void *addr; /* resolved address, set by registration */

	sonde_kprobe_pre_handler_t pre_handler;
	sonde_kprobe_post_handler_t post_handler;

	unsigned long nhit;    /* part of the hits: read them with sonde_kprobe_hits() */
	unsigned long nmissed; /* hits not handled (recursion, no free instance) */
	unsigned int flags;    /* SONDE_KPROBE_FLAG_*; set DISABLED to register disarmed */

	/* private to libsonde */
	void *__priv;
	uint64_t __reserved[4];
};

SONDE_API int sonde_register_kprobe(struct sonde_kprobe *p);
SONDE_API void sonde_unregister_kprobe(struct sonde_kprobe *p);
/* Batch forms: on failure nothing stays registered. */
SONDE_API int sonde_register_kprobes(struct sonde_kprobe **kps, int num);
SONDE_API void sonde_unregister_kprobes(struct sonde_kprobe **kps, int num);
SONDE_API int sonde_enable_kprobe(struct sonde_kprobe *p);
SONDE_API int sonde_disable_kprobe(struct sonde_kprobe *p);

/*
 * Jump optimization, as the kernel's optprobes: a probe without a
 * post_handler on instructions that can move becomes a 5-byte jump to a
 * detour a few milliseconds after registration (SONDE_KPROBE_FLAG_OPTIMIZED
 * says it happened). Handlers of an optimized probe cannot redirect
 * execution: changes to regs->ip and regs->sp are ignored (give the probe a
 * post_handler, or turn optimization off, to keep them).
 */
/* 0 turns optimization off (and undoes it), 1 back on: debug.kprobes_optimization */
SONDE_API int sonde_set_kprobe_optimization(int on);
/* wait until pending optimizations are done (tests, benchmarks) */
SONDE_API void sonde_wait_kprobe_optimizer(void);

/** sonde_kprobe_hits - hits of @p so far (its threads' counts, summed). */
SONDE_API unsigned long sonde_kprobe_hits(const struct sonde_kprobe *p);
/** sonde_kprobe_missed - current miss count of @p (atomic read of nmissed). */
SONDE_API unsigned long sonde_kprobe_missed(const struct sonde_kprobe *p);

struct sonde_kretprobe;

/*
 * struct sonde_kretprobe_instance - one call in flight through a kretprobe.
 * @data holds data_size bytes private to the handlers, kept from the entry
 * handler to the return handler.
 */
struct sonde_kretprobe_instance {
	struct sonde_kretprobe *rp; /* NULL once the kretprobe is unregistered */
	void *ret_addr;		    /* the real return address */
	void *stack;		    /* address of the return-address slot at entry */
	uint64_t __priv[2];
	char data[];
};

typedef int (*sonde_kretprobe_handler_t)(struct sonde_kretprobe_instance *ri,
					 struct sonde_regs *regs);

struct sonde_kretprobe {
	struct sonde_kprobe kp;		   /* where: the function's entry */
	sonde_kretprobe_handler_t handler; /* at return; regs->ax is the value */
	/* at entry; nonzero return means "do not hook this call's return" */
	sonde_kretprobe_handler_t entry_handler;
	int maxactive;	  /* instances in flight at once; <= 0: max(10, 2*ncpu) */
	int nmissed;	  /* calls not hooked for want of a free instance */
	size_t data_size; /* bytes of ri->data */

	void *__priv;
	uint64_t __reserved[4];
};

/** get_kretprobe's twin: the kretprobe of @ri, or NULL once unregistered. */
static inline struct sonde_kretprobe *sonde_get_kretprobe(struct sonde_kretprobe_instance *ri)
{
	return __atomic_load_n(&ri->rp, __ATOMIC_ACQUIRE);
}

SONDE_API int sonde_register_kretprobe(struct sonde_kretprobe *rp);
SONDE_API void sonde_unregister_kretprobe(struct sonde_kretprobe *rp);
SONDE_API int sonde_register_kretprobes(struct sonde_kretprobe **rps, int num);
SONDE_API void sonde_unregister_kretprobes(struct sonde_kretprobe **rps, int num);

#ifdef __cplusplus
}
#endif
#endif /* SONDE_KPROBES_H */
