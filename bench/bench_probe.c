// SPDX-License-Identifier: MIT
/*
 * bench_probe.c - what a probe costs per call, in one process.
 *
 * Each benchmark calls a tiny target function in a tight loop of N calls,
 * times the loop with CLOCK_MONOTONIC, repeats it R times and reports the
 * median, min and max ns per call, and the ratio of the median to the
 * unprobed call measured in the same process:
 *
 *   metric=int3_probe_empty kind=sonde status=ok ns_per_call=1843.20 \
 *     min=1830.11 max=1902.57 ratio=970.11 runs=11 calls=54000 \
 *     target=target vs=kernel_uprobe_event desc="INT3 kprobe, empty pre_handler"
 *
 * One line per metric, space-separated key=value pairs, values with spaces
 * in double quotes (never containing one); lines starting with '#' are for
 * humans. Keys every line has: metric, kind (baseline|sonde|anchor), status
 * (ok|failed|skipped). Lines with status=ok have ns_per_call, min, max,
 * ratio, runs and calls; the others have error= or reason=. vs= names the
 * kernel anchor of the same kind, which bench/run.sh measures in separate
 * runs of this program (--bare) and puts side by side.
 *
 * N is found per benchmark: calls double until a loop takes a few
 * milliseconds (which is also the warm-up), then N is set so that one run
 * takes --time-ms. Every loop checks the sum of the return values, and
 * each probe benchmark checks its hit counts afterwards: a probe that
 * changes results or misses hits is reported as failed, not timed.
 *
 * To add a benchmark: a target (a function and its DEFINE_LOOP) if none of
 * the existing ones fits, optional setup/check/teardown functions, and one
 * entry in benches[].
 *
 * Probes put from outside (the kernel's uprobe_events, or the sonde
 * command running this program) are timed by --bare: the same
 * measurement, on a target nothing in this process touches; its line also
 * has total_calls=, every call made (calibration included), for checking
 * the probe's hit or event count. --burst=N makes N calls in one timed
 * loop and prints a 'burst' line; with --stop-parent it first stops its
 * parent (SIGSTOP; it must be the sonde command tracing it) and continues
 * it after the loop, so that the tracer finds all N events waiting and its
 * drain can be timed (the line's cont_ns= is CLOCK_REALTIME at SIGCONT).
 * --cpu=C pins this program to CPU C (its tracer can run elsewhere).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sonde/kprobes.h>

#include "bench_util.h"

/* ---- targets ---------------------------------------------------------------- */

/* the plain target: whatever the compiler makes of a two-argument add */
__attribute__((noinline, noclone, used)) int target(int a, int b);
__attribute__((noinline, noclone, used)) int target(int a, int b)
{
	asm volatile("");
	return a + b;
}

/*
 * target_nop5 starts with the 5-byte nop of -pg -mfentry -mnop-mcount
 * builds (nopl 0x0(%rax,%rax,1), the bytes __mcount_loc names), which the
 * kernel's uprobes emulate instead of single-stepping, and sonde's
 * optimizer turns into a jump. target_opt is an ordinary function whose
 * first instructions give 6 movable bytes (target itself is `lea; ret`, 4
 * bytes: a probe there stays a breakpoint). target_int3 starts with a bare
 * breakpoint, for the cost of the trap and signal alone.
 */
int target_nop5(int a, int b);
int target_opt(int a, int b);
int target_int3(int a, int b);
asm(".pushsection .text\n"
    ".p2align 4\n"
    ".globl target_nop5\n"
    ".hidden target_nop5\n"
    ".type target_nop5, @function\n"
    "target_nop5:\n"
    "	nopl 0x0(%rax,%rax,1)\n"
    "	leal (%rdi,%rsi), %eax\n"
    "	ret\n"
    ".size target_nop5, .-target_nop5\n"
    ".p2align 4\n"
    ".globl target_opt\n"
    ".hidden target_opt\n"
    ".type target_opt, @function\n"
    "target_opt:\n"
    "	movl %edi, %eax\n"
    "	movl %esi, %edx\n"
    "	addl %edx, %eax\n"
    "	ret\n"
    ".size target_opt, .-target_opt\n"
    ".p2align 4\n"
    ".globl target_int3\n"
    ".hidden target_int3\n"
    ".type target_int3, @function\n"
    "target_int3:\n"
    "	int3\n"
    "	leal (%rdi,%rsi), %eax\n"
    "	ret\n"
    ".size target_int3, .-target_int3\n"
    ".popsection\n");

/*
 * site_pfe is a compiled-in function-entry site, as -fpatchable-function-entry=5
 * makes one (GCC: five one-byte nops, listed in __patchable_function_entries).
 */
__attribute__((noinline, noclone, used, patchable_function_entry(5, 0))) int site_pfe(int a, int b);
__attribute__((noinline, noclone, used, patchable_function_entry(5, 0))) int site_pfe(int a, int b)
{
	asm volatile("");
	return a + b;
}

/*
 * target_usdt holds a USDT probe of <sys/sdt.h> (provider sonde_bench, name
 * hit, its two arguments): a one-byte nop and a note, nothing else while no
 * tracer is attached.
 */
#if __has_include(<sys/sdt.h>)
#include <sys/sdt.h>
#define HAVE_SDT 1
#else
#define HAVE_SDT 0
#endif
__attribute__((noinline, noclone, used)) int target_usdt(int a, int b);
__attribute__((noinline, noclone, used)) int target_usdt(int a, int b)
{
#if HAVE_SDT
	DTRACE_PROBE2(sonde_bench, hit, a, b);
#else
	asm volatile("");
#endif
	return a + b;
}

/*
 * target_tsc reads the time-stamp counter, as the trace clock does for
 * every record: the floor under any event with a timestamp.
 */
static volatile uint64_t tsc_sink;

__attribute__((noinline, noclone, used)) int target_tsc(int a, int b);
__attribute__((noinline, noclone, used)) int target_tsc(int a, int b)
{
	uint32_t lo, hi;

	asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
	tsc_sink = (uint64_t)hi << 32 | lo;
	return a + b;
}

/* one loop per target, so that each calls its target directly */
#define DEFINE_LOOP(fn)                                         \
	static __attribute__((noinline)) long loop_##fn(long n) \
	{                                                       \
		long sum = 0;                                   \
                                                                \
		for (long i = 0; i < n; i++)                    \
			sum += fn((int)i, 1);                   \
		return sum;                                     \
	}

DEFINE_LOOP(target)
DEFINE_LOOP(target_nop5)
DEFINE_LOOP(target_opt)
DEFINE_LOOP(target_int3)
DEFINE_LOOP(site_pfe)
DEFINE_LOOP(target_usdt)
DEFINE_LOOP(target_tsc)

struct target_desc {
	const char *name;
	void *addr;
	long (*loop)(long n);
};

static const struct target_desc targets[] = {
    {"target", (void *)target, loop_target},
    {"target_nop5", (void *)target_nop5, loop_target_nop5},
    {"target_opt", (void *)target_opt, loop_target_opt},
    {"target_int3", (void *)target_int3, loop_target_int3},
    {"site_pfe", (void *)site_pfe, loop_site_pfe},
    {"target_usdt", (void *)target_usdt, loop_target_usdt},
    {"target_tsc", (void *)target_tsc, loop_target_tsc},
};

#define NTARGETS (int)(sizeof(targets) / sizeof(targets[0]))

static const struct target_desc *target_by_name(const char *name)
{
	for (int i = 0; i < NTARGETS; i++)
		if (!strcmp(targets[i].name, name))
			return &targets[i];
	return NULL;
}

/* ---- benchmarks ---------------------------------------------------------------- */

/* the form a probe must have while it is timed (what its metric's name says) */
enum probe_form {
	FORM_ANY = 0,
	FORM_INT3, /* a breakpoint: optimization turned off for the benchmark */
	FORM_JUMP, /* jump-optimized (SONDE_KPROBE_FLAG_OPTIMIZED, a jmp or call at the site) */
};

struct bench_state {
	struct sonde_kprobe kp;
	struct sonde_kretprobe rp;
	struct sigaction old_act;
	long calls; /* target calls made between setup and teardown */
	const struct target_desc *t;
	int form;	    /* enum probe_form the benchmark asks for */
	bool opt_off;	    /* setup turned optimization off: teardown turns it on */
	uint8_t site_byte;  /* the probed address's first byte once set up */
	unsigned int flags; /* the probe's flags once set up */
	bool probed;	    /* site_byte was read from a probed site */
	bool has_flags;	    /* flags are those of a sonde probe of this process */
	bool vec;	    /* the handler uses a vector register */
};

struct bench {
	const char *metric;
	const char *kind; /* baseline, sonde or anchor */
	const char *desc;
	const char *target;
	const char *vs; /* the kernel anchor of the same kind, or NULL */
	int form;	/* enum probe_form */
	bool vec;	/* the handler uses a vector register: its state is saved around it */
	/* 0 or a negative errno, with a message in @err */
	int (*setup)(struct bench_state *st, const struct target_desc *t, char *err, size_t len);
	int (*check)(struct bench_state *st, char *err, size_t len);
	void (*teardown)(struct bench_state *st);
};

/* integer code: sonde finds it touches no vector register and saves none */
static int empty_pre(struct sonde_kprobe *p, struct sonde_regs *regs)
{
	return 0;
}

/* one vector instruction: the vector registers in use are saved around it */
static int vec_pre(struct sonde_kprobe *p, struct sonde_regs *regs)
{
	__asm__ volatile("pxor %%xmm0, %%xmm0" ::: "xmm0");
	return 0;
}

static int empty_ret(struct sonde_kretprobe_instance *ri, struct sonde_regs *regs)
{
	return 0;
}

static int vec_ret(struct sonde_kretprobe_instance *ri, struct sonde_regs *regs)
{
	__asm__ volatile("pxor %%xmm0, %%xmm0" ::: "xmm0");
	return 0;
}

static uint8_t first_byte(const void *addr)
{
	return *(const volatile uint8_t *)addr;
}

/* what the first byte of a patched site says it is */
static const char *form_of_byte(uint8_t b)
{
	switch (b) {
	case 0xcc:
		return "int3";
	case 0xe9:
		return "jump";
	case 0xe8:
		return "call";
	default:
		return "unpatched";
	}
}

static bool byte_is_jump(uint8_t b)
{
	return b == 0xe9 || b == 0xe8;
}

/* before registering: a breakpoint benchmark turns the optimizer off */
static void form_prepare(struct bench_state *st)
{
	if (st->form == FORM_INT3) {
		sonde_set_kprobe_optimization(0);
		st->opt_off = true;
	}
}

static void form_restore(struct bench_state *st)
{
	if (st->opt_off) {
		sonde_set_kprobe_optimization(1);
		st->opt_off = false;
	}
}

/*
 * after registering: wait for the optimizer, then check that @kp has the
 * form the metric's name promises, both by its flags and by the byte at the
 * site (a jump is e9, a call e8, a breakpoint cc)
 */
static int form_check(struct bench_state *st, const struct sonde_kprobe *kp, char *err, size_t len)
{
	bool opt;

	if (st->form == FORM_JUMP)
		sonde_wait_kprobe_optimizer();
	st->flags = __atomic_load_n(&kp->flags, __ATOMIC_RELAXED);
	st->site_byte = first_byte(st->t->addr);
	st->probed = true;
	st->has_flags = true;
	opt = st->flags & SONDE_KPROBE_FLAG_OPTIMIZED;
	if (st->form == FORM_JUMP && (!opt || !byte_is_jump(st->site_byte))) {
		snprintf(err, len,
			 "not jump-optimized: flags=0x%x, first byte 0x%02x at %s (the optimizer "
			 "needs >= 5 bytes of movable instructions)",
			 st->flags, st->site_byte, st->t->name);
		return -EAGAIN;
	}
	if (st->form == FORM_INT3 && (opt || st->site_byte != 0xcc)) {
		snprintf(err, len, "not a breakpoint: flags=0x%x, first byte 0x%02x at %s",
			 st->flags, st->site_byte, st->t->name);
		return -EAGAIN;
	}
	return 0;
}

/* after timing: the probe kept its form (the optimizer did not change it meanwhile) */
static int form_kept(struct bench_state *st, char *err, size_t len)
{
	uint8_t b = first_byte(st->t->addr);

	if (b != st->site_byte) {
		snprintf(err, len,
			 "the probe changed form while timed (first byte 0x%02x -> 0x%02x)",
			 st->site_byte, b);
		return -EAGAIN;
	}
	return 0;
}

static int kprobe_setup(struct bench_state *st, const struct target_desc *t, char *err, size_t len)
{
	int ret;

	form_prepare(st);
	st->kp.addr = t->addr;
	st->kp.pre_handler = st->vec ? vec_pre : empty_pre;
	ret = sonde_register_kprobe(&st->kp);
	if (ret) {
		snprintf(err, len, "sonde_register_kprobe(%s): %s: %s", t->name,
			 sonde_strerror(ret), sonde_last_error());
		form_restore(st);
		return ret;
	}
	ret = form_check(st, &st->kp, err, len);
	if (ret) {
		sonde_unregister_kprobe(&st->kp);
		form_restore(st);
	}
	return ret;
}

static int kprobe_check(struct bench_state *st, char *err, size_t len)
{
	unsigned long hits = sonde_kprobe_hits(&st->kp), missed = sonde_kprobe_missed(&st->kp);

	if (hits != (unsigned long)st->calls || missed) {
		snprintf(err, len, "wrong counts: nhit=%lu nmissed=%lu for %ld calls", hits, missed,
			 st->calls);
		return -EIO;
	}
	return form_kept(st, err, len);
}

static void kprobe_teardown(struct bench_state *st)
{
	sonde_unregister_kprobe(&st->kp);
	form_restore(st);
}

static int kretprobe_setup(struct bench_state *st, const struct target_desc *t, char *err,
			   size_t len)
{
	int ret;

	form_prepare(st);
	st->rp.kp.addr = t->addr;
	st->rp.handler = st->vec ? vec_ret : empty_ret;
	ret = sonde_register_kretprobe(&st->rp);
	if (ret) {
		snprintf(err, len, "sonde_register_kretprobe(%s): %s: %s", t->name,
			 sonde_strerror(ret), sonde_last_error());
		form_restore(st);
		return ret;
	}
	ret = form_check(st, &st->rp.kp, err, len);
	if (ret) {
		sonde_unregister_kretprobe(&st->rp);
		form_restore(st);
	}
	return ret;
}

static int kretprobe_check(struct bench_state *st, char *err, size_t len)
{
	unsigned long hits = sonde_kprobe_hits(&st->rp.kp);
	unsigned long kmissed = sonde_kprobe_missed(&st->rp.kp);

	if (hits != (unsigned long)st->calls || kmissed || st->rp.nmissed) {
		snprintf(err, len, "wrong counts: nhit=%lu kp.nmissed=%lu nmissed=%d for %ld calls",
			 hits, kmissed, st->rp.nmissed, st->calls);
		return -EIO;
	}
	return form_kept(st, err, len);
}

static void kretprobe_teardown(struct bench_state *st)
{
	sonde_unregister_kretprobe(&st->rp);
	form_restore(st);
}

static volatile unsigned long int3_traps;

static void int3_handler(int sig, siginfo_t *si, void *uc)
{
	int3_traps++;
}

/* the breakpoint is the program's own: sonde passes it on to this handler */
static int int3_setup(struct bench_state *st, const struct target_desc *t, char *err, size_t len)
{
	struct sigaction act;

	memset(&act, 0, sizeof(act));
	act.sa_sigaction = int3_handler;
	act.sa_flags = SA_SIGINFO;
	sigemptyset(&act.sa_mask);
	int3_traps = 0;
	if (sigaction(SIGTRAP, &act, &st->old_act)) {
		snprintf(err, len, "sigaction(SIGTRAP): %s", strerror(errno));
		return -errno;
	}
	return 0;
}

static int int3_check(struct bench_state *st, char *err, size_t len)
{
	if (int3_traps != (unsigned long)st->calls) {
		snprintf(err, len, "wrong counts: %lu traps for %ld calls", int3_traps, st->calls);
		return -EIO;
	}
	return 0;
}

static void int3_teardown(struct bench_state *st)
{
	sigaction(SIGTRAP, &st->old_act, NULL);
}

/*
 * --bare --expect=FORM: the probe is put from outside (the sonde command,
 * the kernel); check the form it has before and after the timing by the
 * byte at the site. With this process's libsonde serving the sonde command
 * (the same libsonde.so), the optimizer's pending work is done first.
 */
static int bare_setup(struct bench_state *st, const struct target_desc *t, char *err, size_t len)
{
	uint8_t b = first_byte(t->addr);

	if (st->form == FORM_JUMP) {
		sonde_wait_kprobe_optimizer();
		/* an optimizer still working elsewhere: give it two seconds */
		for (int i = 0; i < 2000 && !byte_is_jump(b = first_byte(t->addr)); i++)
			usleep(1000);
	}
	if (st->form == FORM_ANY) {
		/* whatever form it gets, the one it ends with: the byte stays for 100 ms */
		sonde_wait_kprobe_optimizer();
		for (int i = 0, still = 0; i < 2000 && still < 100; i++) {
			uint8_t now;

			usleep(1000);
			now = first_byte(t->addr);
			still = now == b ? still + 1 : 0;
			b = now;
		}
	}
	st->site_byte = b;
	st->probed = true;
	if (st->form == FORM_JUMP && !byte_is_jump(b)) {
		snprintf(err, len,
			 "not jump-optimized: first byte 0x%02x at %s (the optimizer needs >= 5 "
			 "bytes of movable instructions)",
			 b, t->name);
		return -EAGAIN;
	}
	if (st->form == FORM_INT3 && b != 0xcc) {
		snprintf(err, len, "not a breakpoint: first byte 0x%02x at %s", b, t->name);
		return -EAGAIN;
	}
	return 0;
}

static int bare_check(struct bench_state *st, char *err, size_t len)
{
	return form_kept(st, err, len);
}

#define KPROBE	  .setup = kprobe_setup, .check = kprobe_check, .teardown = kprobe_teardown
#define KRETPROBE .setup = kretprobe_setup, .check = kretprobe_check, .teardown = kretprobe_teardown

/*
 * The first entry is the baseline every ratio is taken against; each
 * target has its unprobed baseline, for the ns a probe adds to a call.
 */
static const struct bench benches[] = {
    {
	.metric = "unprobed",
	.kind = "baseline",
	.desc = "plain call, no probe (target: lea; ret)",
	.target = "target",
    },
    {
	.metric = "unprobed_nop5",
	.kind = "baseline",
	.desc = "plain call of a function starting with a 5-byte nop",
	.target = "target_nop5",
    },
    {
	.metric = "unprobed_opt",
	.kind = "baseline",
	.desc = "plain call of target_opt (mov; mov; add; ret)",
	.target = "target_opt",
    },
    {
	.metric = "unprobed_site_pfe",
	.kind = "baseline",
	.desc = "plain call of a -fpatchable-function-entry=5 function (5 one-byte nops)",
	.target = "site_pfe",
    },
    {
	.metric = "anchor_usdt_disabled",
	.kind = "baseline",
#if HAVE_SDT
	.desc = "USDT probe site of <sys/sdt.h> (DTRACE_PROBE2), no tracer: its nop",
#else
	.desc = "USDT probe site: NOT BUILT (no <sys/sdt.h>; systemtap-sdt-dev), a plain call",
#endif
	.target = "target_usdt",
    },
    {
	.metric = "anchor_tsc_read",
	.kind = "baseline",
	.desc = "a function that reads the TSC (rdtsc), as the trace clock does: what any "
		"timestamped record costs at least",
	.target = "target_tsc",
    },
    {
	.metric = "anchor_int3_sigtrap",
	.kind = "anchor",
	.desc = "bare int3 + empty SIGTRAP handler (no out-of-line step, no sonde)",
	.target = "target_int3",
	.setup = int3_setup,
	.check = int3_check,
	.teardown = int3_teardown,
    },
    {
	.metric = "int3_probe_empty",
	.kind = "sonde",
	.desc = "INT3 kprobe, empty pre_handler (optimization off)",
	.target = "target",
	.vs = "kernel_uprobe_event",
	.form = FORM_INT3,
	KPROBE,
    },
    {
	.metric = "int3_probe_nop5_empty",
	.kind = "sonde",
	.desc = "INT3 kprobe on a 5-byte nop, empty pre_handler (optimization off)",
	.target = "target_nop5",
	.vs = "kernel_uprobe_nop5_event",
	.form = FORM_INT3,
	KPROBE,
    },
    {
	.metric = "optimized_probe_empty",
	.kind = "sonde",
	.desc = "jump-optimized kprobe at target_opt's entry, empty pre_handler (integer code: "
		"no vector state saved)",
	.target = "target_opt",
	.vs = "kernel_uprobe_opt_event",
	.form = FORM_JUMP,
	KPROBE,
    },
    {
	.metric = "optimized_probe_vec",
	.kind = "sonde",
	.desc = "jump-optimized kprobe at target_opt's entry, pre_handler with one vector "
		"instruction (pxor %xmm0): the vector registers in use saved around it",
	.target = "target_opt",
	.vs = "kernel_uprobe_opt_event",
	.form = FORM_JUMP,
	.vec = true,
	KPROBE,
    },
    {
	.metric = "optimized_probe_nop5_empty",
	.kind = "sonde",
	.desc = "jump-optimized kprobe on a 5-byte nop (the bytes of a -mnop-mcount site), empty "
		"pre_handler",
	.target = "target_nop5",
	.vs = "kernel_uprobe_nop5_event",
	.form = FORM_JUMP,
	KPROBE,
    },
    {
	.metric = "site_pfe_probe_empty",
	.kind = "sonde",
	.desc = "kprobe at a compiled-in -fpatchable-function-entry=5 site, empty pre_handler "
		"(no vector state saved)",
	.target = "site_pfe",
	.vs = "kernel_uprobe_site_pfe_event",
	.form = FORM_JUMP,
	KPROBE,
    },
    {
	.metric = "site_pfe_probe_vec",
	.kind = "sonde",
	.desc = "kprobe at the compiled-in -fpatchable-function-entry=5 site, pre_handler with one "
		"vector instruction: the vector registers in use saved",
	.target = "site_pfe",
	.vs = "kernel_uprobe_site_pfe_event",
	.form = FORM_JUMP,
	.vec = true,
	KPROBE,
    },
    {
	.metric = "kretprobe_int3_empty",
	.kind = "sonde",
	.desc = "kretprobe, empty handler, breakpoint at entry (optimization off)",
	.target = "target",
	.vs = "kernel_uretprobe_event",
	.form = FORM_INT3,
	KRETPROBE,
    },
    {
	.metric = "kretprobe_optimized_empty",
	.kind = "sonde",
	.desc = "kretprobe, empty handler, jump-optimized entry (target_opt; no vector state "
		"saved at entry or return)",
	.target = "target_opt",
	.vs = "kernel_uretprobe_opt_event",
	.form = FORM_JUMP,
	KRETPROBE,
    },
    {
	.metric = "kretprobe_optimized_vec",
	.kind = "sonde",
	.desc = "kretprobe, handler with one vector instruction, jump-optimized entry: the vector "
		"registers in use saved at entry and return",
	.target = "target_opt",
	.vs = "kernel_uretprobe_opt_event",
	.form = FORM_JUMP,
	.vec = true,
	KRETPROBE,
    },
};

#define NBENCHES (int)(sizeof(benches) / sizeof(benches[0]))

/* ---- measuring ---------------------------------------------------------------- */

struct options {
	bool quick;
	int runs;
	double time_ms;	  /* per run */
	double baseline;  /* ns per unprobed call, 0: measure it */
	const char *only; /* comma-separated metric names */
	const char *bare; /* metric name for a --bare run */
	const char *bare_target;
	const char *desc;
	const char *vs;
	const char *kind; /* --bare, --burst: the line's kind (default anchor) */
	int expect;	  /* --bare: enum probe_form the site must have (--expect) */
	bool check_form;  /* --bare: --expect given */
	long burst;	  /* --burst: calls, 0: no burst */
	bool stop_parent; /* --burst: stop the tracer during the loop */
	int cpu;	  /* --cpu, -1: not pinned */
};

struct result {
	double median, min, max;
	long calls; /* per run */
	int runs;
};

/* sum of target(i, 1) for i in [0, n) */
static long expected_sum(long n)
{
	return n * (n - 1) / 2 + n;
}

static int run_loop(const struct target_desc *t, long n, struct bench_state *st, double *ns,
		    char *err, size_t len)
{
	double t0 = now_ns();
	long sum = t->loop(n);

	*ns = now_ns() - t0;
	st->calls += n;
	if (sum != expected_sum(n)) {
		snprintf(err, len, "wrong results: %s() summed to %ld over %ld calls, not %ld",
			 t->name, sum, n, expected_sum(n));
		return -EIO;
	}
	return 0;
}

static int measure(const struct target_desc *t, const struct options *o, struct bench_state *st,
		   struct result *r, char *err, size_t len)
{
	double calib_ns = o->quick ? 2e5 : 5e6, el = 0, per_call, runs_ns[64];
	long n = 16;
	int ret;

	/* calibrate (and warm up): double n until a loop takes calib_ns */
	for (;;) {
		ret = run_loop(t, n, st, &el, err, len);
		if (ret)
			return ret;
		if (el >= calib_ns || n >= (1L << 36))
			break;
		n *= 2;
	}
	per_call = el / (double)n;
	/* once more: a preempted loop would make every run too short */
	ret = run_loop(t, n, st, &el, err, len);
	if (ret)
		return ret;
	if (el / (double)n < per_call)
		per_call = el / (double)n;
	if (per_call <= 0)
		per_call = 0.1;
	r->calls = (long)(o->time_ms * 1e6 / per_call);
	if (r->calls < 16)
		r->calls = 16;
	if (r->calls > INT_MAX) /* target() adds ints */
		r->calls = INT_MAX;
	r->runs = o->runs;
	for (int i = 0; i < r->runs; i++) {
		ret = run_loop(t, r->calls, st, &el, err, len);
		if (ret)
			return ret;
		runs_ns[i] = el / (double)r->calls;
	}
	qsort(runs_ns, r->runs, sizeof(runs_ns[0]), cmp_double);
	r->min = runs_ns[0];
	r->max = runs_ns[r->runs - 1];
	if (r->runs % 2)
		r->median = runs_ns[r->runs / 2];
	else
		r->median = (runs_ns[r->runs / 2 - 1] + runs_ns[r->runs / 2]) / 2;
	return 0;
}

/* double quotes would end a quoted value */
static const char *unquote(char *s)
{
	for (char *p = s; *p; p++)
		if (*p == '"' || *p == '\n')
			*p = *p == '"' ? '\'' : ' ';
	return s;
}

static void print_head(const char *metric, const char *kind, const char *status)
{
	printf("metric=%s kind=%s status=%s", metric, kind, status);
}

static void print_tail(const char *target, const char *vs, const char *desc)
{
	char buf[512];

	printf(" target=%s", target);
	if (vs)
		printf(" vs=%s", vs);
	snprintf(buf, sizeof(buf), "%s", desc);
	printf(" desc=\"%s\"\n", unquote(buf));
	fflush(stdout);
}

static void print_ok(const char *metric, const char *kind, const struct result *r, double baseline)
{
	print_head(metric, kind, "ok");
	printf(" ns_per_call=%.2f min=%.2f max=%.2f", r->median, r->min, r->max);
	if (baseline > 0)
		printf(" ratio=%.2f", r->median / baseline);
	printf(" runs=%d calls=%ld", r->runs, r->calls);
}

static void print_failed(const char *metric, const char *kind, char *err)
{
	print_head(metric, kind, "failed");
	printf(" error=\"%s\"", unquote(err));
}

/* returns false if the benchmark failed */
static bool run_bench(const struct bench *b, const struct options *o, double *baseline)
{
	const struct target_desc *t = target_by_name(b->target);
	struct bench_state st;
	struct result r;
	char err[1024] = "";
	int ret = 0;

	memset(&st, 0, sizeof(st));
	st.t = t;
	st.form = b->form;
	st.vec = b->vec;
	if (!t) {
		snprintf(err, sizeof(err), "no target named %s", b->target);
		ret = -ENOENT;
	}
	/* a kernel uprobe (or a debugger) on a target would time its probe, not a call */
	if (!ret && !strcmp(b->kind, "baseline") && *(const volatile uint8_t *)t->addr == 0xcc) {
		snprintf(err, sizeof(err),
			 "%s starts with a breakpoint that is not sonde's (a kernel uprobe? a "
			 "debugger?)",
			 t->name);
		ret = -EBUSY;
	}
	if (!ret && b->setup)
		ret = b->setup(&st, t, err, sizeof(err));
	if (!ret) {
		st.calls = 0;
		ret = measure(t, o, &st, &r, err, sizeof(err));
		if (!ret && b->check)
			ret = b->check(&st, err, sizeof(err));
		if (b->teardown)
			b->teardown(&st);
	}
	if (ret) {
		print_failed(b->metric, b->kind, err);
	} else {
		if (!*baseline && !strcmp(b->metric, benches[0].metric))
			*baseline = r.median;
		print_ok(b->metric, b->kind, &r, *baseline);
		printf(" total_calls=%ld", st.calls);
		if (st.probed)
			printf(" how=%s site_byte=0x%02x", form_of_byte(st.site_byte),
			       st.site_byte);
		if (st.has_flags)
			printf(" flags=0x%x", st.flags);
	}
	print_tail(b->target, b->vs, b->desc);
	return !ret;
}

static bool selected(const char *only, const char *metric)
{
	size_t len = strlen(metric);

	if (!only)
		return true;
	for (const char *p = only; *p;) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);

		if (n == len && !strncmp(p, metric, n))
			return true;
		if (!end)
			break;
		p = end + 1;
	}
	return false;
}

/* ---- where the targets are, for the kernel's uprobe_events ------------------ */

/* @path and the file offset of @addr in it, from /proc/self/maps */
static int file_offset(const void *addr, char *path, size_t len, unsigned long *off)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[4096];
	int ret = -ENOENT;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		unsigned long start, end, pgoff;
		char perms[8];
		int pos = 0;

		if (sscanf(line, "%lx-%lx %7s %lx %*s %*s%n", &start, &end, perms, &pgoff, &pos) <
		    4)
			continue;
		if ((unsigned long)addr < start || (unsigned long)addr >= end)
			continue;
		while (line[pos] == ' ')
			pos++;
		line[strcspn(line, "\n")] = 0;
		if (line[pos] != '/')
			break;
		snprintf(path, len, "%s", line + pos);
		*off = (unsigned long)addr - start + pgoff;
		ret = 0;
		break;
	}
	fclose(f);
	return ret;
}

static int print_where(void)
{
	for (int i = 0; i < NTARGETS; i++) {
		const unsigned char *code = targets[i].addr;
		char path[PATH_MAX];
		unsigned long off = 0;
		int ret = file_offset(targets[i].addr, path, sizeof(path), &off);

		if (ret) {
			fprintf(stderr, "bench_probe: cannot find %s in /proc/self/maps: %s\n",
				targets[i].name, strerror(-ret));
			return 1;
		}
		printf("target=%s path=%s offset=0x%lx bytes=", targets[i].name, path, off);
		for (int k = 0; k < 8; k++)
			printf("%02x%s", code[k], k < 7 ? "," : "\n");
	}
	return 0;
}

/* ---- one burst, for a tracer's drain ------------------------------------------ */

static unsigned long long realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ULL + (unsigned long long)ts.tv_nsec;
}

/* the state letter of /proc/PID/stat ('R', 'S', 'T', ...), or 0 */
static char proc_state(pid_t pid)
{
	char path[64], buf[512];
	const char *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	p = strrchr(buf, ')'); /* comm may hold spaces and parentheses */
	return p && p[1] == ' ' ? p[2] : 0;
}

static bool parent_is_sonde(pid_t pp)
{
	char path[64], comm[32] = "";
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pp);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, comm, sizeof(comm) - 1);
	close(fd);
	if (n <= 0)
		return false;
	comm[n] = 0;
	comm[strcspn(comm, "\n")] = 0;
	return !strcmp(comm, "sonde");
}

/* --burst: N calls of target in one timed loop, its tracer stopped meanwhile */
static int run_burst(const struct options *o)
{
	const struct target_desc *t = target_by_name(o->bare_target ? o->bare_target : "target");
	const char *metric = o->bare ? o->bare : "burst";
	const char *kind = o->kind ? o->kind : "anchor";
	pid_t pp = getppid();
	double t0 = 0, t1 = 0;
	unsigned long long cont = 0;
	char err[512] = "";
	bool stopped = false;
	long sum = 0;

	if (!t)
		snprintf(err, sizeof(err), "no target named %s", o->bare_target);
	else if (o->burst > INT_MAX)
		snprintf(err, sizeof(err), "--burst=%ld: at most %d calls", o->burst, INT_MAX);
	else if (o->stop_parent && !parent_is_sonde(pp))
		snprintf(err, sizeof(err), "--stop-parent: the parent (pid %d) is not sonde",
			 (int)pp);
	if (!*err && o->stop_parent) {
		if (kill(pp, SIGSTOP)) {
			snprintf(err, sizeof(err), "cannot stop the parent: %s", strerror(errno));
		} else {
			stopped = true;
			/* SIGSTOP takes effect asynchronously: wait until it has (<= 2 s) */
			for (int i = 0; i < 20000 && proc_state(pp) != 'T'; i++)
				usleep(100);
			if (proc_state(pp) != 'T')
				snprintf(err, sizeof(err), "the parent did not stop");
		}
	}
	if (!*err) {
		t0 = now_ns();
		sum = t->loop(o->burst);
		t1 = now_ns();
	}
	if (stopped) {
		cont = realtime_ns();
		kill(pp, SIGCONT);
	}
	if (!*err && sum != expected_sum(o->burst))
		snprintf(err, sizeof(err),
			 "wrong results: %s() summed to %ld over %ld calls, not %ld", t->name, sum,
			 o->burst, expected_sum(o->burst));
	if (*err) {
		print_failed(metric, kind, err);
	} else {
		print_head(metric, kind, "ok");
		printf(" ns_per_call=%.2f runs=1 calls=%ld total_calls=%ld cont_ns=%llu",
		       (t1 - t0) / (double)o->burst, o->burst, o->burst, cont);
	}
	print_tail(t ? t->name : "?", o->vs, o->desc ? o->desc : metric);
	return *err ? 1 : 0;
}

/* ---- main ---------------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f, "usage: bench_probe [--quick] [--runs=R] [--time-ms=T] [--only=M1,M2...]\n"
		   "       bench_probe --bare=METRIC --target=NAME [--desc=TEXT] [--vs=METRIC]\n"
		   "                   [--baseline-ns=NS] [--kind=KIND] [--expect=int3|jump]\n"
		   "       bench_probe --burst=N [--stop-parent] [--bare=METRIC] [--target=NAME]\n"
		   "       bench_probe --where | --list\n"
		   "Any of them: [--cpu=C] to run pinned to CPU C.\n"
		   "\n"
		   "Prints one 'metric=NAME kind=... status=... ns_per_call=...' line per metric.\n"
		   "--bare times an unprobed loop on NAME without sonde touching anything, for a\n"
		   "probe put there from outside (the kernel's uprobe_events); --where prints the\n"
		   "file offset of each target for such probes; --expect fails the run unless\n"
		   "the target's first byte is a breakpoint (int3) or a jmp/call (jump) before\n"
		   "and after the timing (jump: once the optimizer has finished). --burst makes N "
		   "calls in one\n"
		   "timed loop; --stop-parent stops the sonde command tracing this program\n"
		   "meanwhile (SIGSTOP, SIGCONT after), for timing its drain of N events.\n");
}

static void print_header(const struct options *o)
{
	cpu_set_t set;

	printf("# bench_probe: sonde %s, %s mode, %d runs of ~%.0f ms per metric",
	       sonde_version_string(), o->quick ? "quick" : "full", o->runs, o->time_ms);
	if (!sched_getaffinity(0, sizeof(set), &set)) {
		printf(", cpus");
		for (int c = 0, first = 1; c < CPU_SETSIZE; c++)
			if (CPU_ISSET(c, &set)) {
				printf("%s%d", first ? " " : ",", c);
				first = 0;
			}
	}
	printf("\n");
	fflush(stdout);
}

int main(int argc, char **argv)
{
	enum {
		OPT_QUICK = 1,
		OPT_RUNS,
		OPT_TIME,
		OPT_ONLY,
		OPT_BARE,
		OPT_TARGET,
		OPT_DESC,
		OPT_VS,
		OPT_BASELINE,
		OPT_WHERE,
		OPT_LIST,
		OPT_BURST,
		OPT_STOP_PARENT,
		OPT_CPU,
		OPT_KIND,
		OPT_EXPECT,
		OPT_HELP
	};
	static const struct option longopts[] = {
	    {"quick", no_argument, NULL, OPT_QUICK},
	    {"runs", required_argument, NULL, OPT_RUNS},
	    {"time-ms", required_argument, NULL, OPT_TIME},
	    {"only", required_argument, NULL, OPT_ONLY},
	    {"bare", required_argument, NULL, OPT_BARE},
	    {"target", required_argument, NULL, OPT_TARGET},
	    {"desc", required_argument, NULL, OPT_DESC},
	    {"vs", required_argument, NULL, OPT_VS},
	    {"baseline-ns", required_argument, NULL, OPT_BASELINE},
	    {"where", no_argument, NULL, OPT_WHERE},
	    {"list", no_argument, NULL, OPT_LIST},
	    {"burst", required_argument, NULL, OPT_BURST},
	    {"stop-parent", no_argument, NULL, OPT_STOP_PARENT},
	    {"cpu", required_argument, NULL, OPT_CPU},
	    {"kind", required_argument, NULL, OPT_KIND},
	    {"expect", required_argument, NULL, OPT_EXPECT},
	    {"help", no_argument, NULL, OPT_HELP},
	    {NULL, 0, NULL, 0},
	};
	struct options o = {.runs = 0, .time_ms = 0, .cpu = -1};
	bool ok = true;
	int c;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_QUICK:
			o.quick = true;
			break;
		case OPT_RUNS:
			o.runs = atoi(optarg);
			break;
		case OPT_TIME:
			o.time_ms = atof(optarg);
			break;
		case OPT_ONLY:
			o.only = optarg;
			break;
		case OPT_BARE:
			o.bare = optarg;
			break;
		case OPT_TARGET:
			o.bare_target = optarg;
			break;
		case OPT_DESC:
			o.desc = optarg;
			break;
		case OPT_VS:
			o.vs = optarg;
			break;
		case OPT_BASELINE:
			o.baseline = atof(optarg);
			break;
		case OPT_BURST:
			o.burst = atol(optarg);
			if (o.burst <= 0) {
				usage(stderr);
				return 2;
			}
			break;
		case OPT_STOP_PARENT:
			o.stop_parent = true;
			break;
		case OPT_CPU:
			o.cpu = atoi(optarg);
			break;
		case OPT_KIND:
			o.kind = optarg;
			break;
		case OPT_EXPECT:
			if (!strcmp(optarg, "int3")) {
				o.expect = FORM_INT3;
			} else if (!strcmp(optarg, "jump")) {
				o.expect = FORM_JUMP;
			} else if (strcmp(optarg, "any")) {
				usage(stderr);
				return 2;
			}
			o.check_form = true;
			break;
		case OPT_WHERE:
			return print_where();
		case OPT_LIST:
			for (int i = 0; i < NBENCHES; i++)
				printf("%s\t%s\t%s\n", benches[i].metric, benches[i].kind,
				       benches[i].desc);
			return 0;
		case OPT_HELP:
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	if (o.runs <= 0)
		o.runs = o.quick ? 3 : 11;
	if (o.runs > 64)
		o.runs = 64;
	if (o.time_ms <= 0)
		o.time_ms = o.quick ? 2 : 100;
	if (o.cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(o.cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set)) {
			fprintf(stderr, "bench_probe: cannot pin to CPU %d: %s\n", o.cpu,
				strerror(errno));
			return 2;
		}
	}
	if (o.stop_parent && !o.burst) {
		usage(stderr);
		return 2;
	}

	print_header(&o);
	if (o.burst)
		return run_burst(&o);
	if (o.bare) {
		struct bench b = {
		    .metric = o.bare,
		    .kind = o.kind ? o.kind : "anchor",
		    .desc = o.desc ? o.desc : o.bare,
		    .target = o.bare_target,
		    .vs = o.vs,
		    .form = o.expect,
		    .setup = o.check_form ? bare_setup : NULL,
		    .check = o.check_form ? bare_check : NULL,
		};

		if (!o.bare_target) {
			usage(stderr);
			return 2;
		}
		return run_bench(&b, &o, &o.baseline) ? 0 : 1;
	}
	for (int i = 0; i < NBENCHES; i++)
		if (i == 0 || selected(o.only, benches[i].metric))
			ok &= run_bench(&benches[i], &o, &o.baseline);
	return ok ? 0 : 1;
}
