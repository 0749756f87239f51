// SPDX-License-Identifier: MIT
/*
 * test_kprobe.c - kprobes through the public API: registers at each class
 * of instruction, handlers, recursion, errors, the program's own traps,
 * and patching under threads.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <sonde/kprobes.h>

#include "check.h"

/*
 * A function written in assembly so that every instruction class sits at a
 * known label:
 *
 *   long insn_target(long x)
 *     = 2*D + 7 + x                 for x < 10
 *     = 2*D + 7 + x + 3*x           for x >= 10      (D = insn_data = 1000)
 *   and stores x in insn_store.
 */
__asm__(".pushsection .data\n"
	".globl insn_data, insn_store, insn_ind_table\n"
	"insn_data: .quad 1000\n"
	"insn_store: .quad 0\n"
	"insn_ind_table: .quad insn_helper2\n"
	".popsection\n"
	".text\n"
	".globl insn_target, insn_helper, insn_helper2\n"
	".type insn_target, @function\n"
	"insn_target:\n"
	".globl insn_at_push\n insn_at_push:\n"
	"	push %rbx\n"
	"	mov %rdi, %rbx\n"
	".globl insn_at_riprel\n insn_at_riprel:\n"
	"	mov insn_data(%rip), %rax\n"
	".globl insn_at_riprel_store\n insn_at_riprel_store:\n"
	"	mov %rbx, insn_store(%rip)\n"
	".globl insn_at_lea\n insn_at_lea:\n"
	"	lea insn_data(%rip), %rcx\n"
	"	add (%rcx), %rax\n"
	"	cmp $10, %rbx\n"
	".globl insn_at_jcc\n insn_at_jcc:\n"
	"	jl 1f\n"
	"	push %rax\n"
	"	mov %rbx, %rdi\n"
	".globl insn_at_call\n insn_at_call:\n"
	"	call insn_helper\n"
	"	pop %rdx\n"
	"	add %rdx, %rax\n"
	"1:	mov %rbx, %rcx\n"
	".globl insn_at_jrcxz\n insn_at_jrcxz:\n"
	"	jrcxz 2f\n"
	"3:	add $1, %rax\n"
	".globl insn_at_loop\n insn_at_loop:\n"
	"	loop 3b\n"
	"2:	lea insn_ind_table(%rip), %rdx\n"
	".globl insn_at_call_ind\n insn_at_call_ind:\n"
	"	call *(%rdx)\n"
	"	pop %rbx\n"
	".globl insn_at_ret\n insn_at_ret:\n"
	"	ret\n"
	".size insn_target, .-insn_target\n"
	".type insn_helper, @function\n"
	"insn_helper:\n"
	"	lea (%rdi,%rdi,2), %rax\n"
	"	ret\n"
	".size insn_helper, .-insn_helper\n"
	".type insn_helper2, @function\n"
	"insn_helper2:\n"
	"	add $7, %rax\n"
	"	ret\n"
	".size insn_helper2, .-insn_helper2\n");

long insn_target(long x);
long insn_helper(long x);
extern char insn_at_push[], insn_at_riprel[], insn_at_riprel_store[], insn_at_lea[], insn_at_jcc[],
    insn_at_call[], insn_at_jrcxz[], insn_at_loop[], insn_at_call_ind[], insn_at_ret[],
    insn_helper2[];
extern long insn_data, insn_store;

static long expected(long x)
{
	return 2 * 1000 + 7 + x + (x >= 10 ? 3 * x : 0);
}

static const long inputs[] = {0, 1, 5, 9, 10, 11, 25, 100};

/* ---- what handlers saw ---------------------------------------------------- */

struct seen {
	int pre, post;
	struct sonde_regs pre_regs, post_regs;
};

static struct seen seen[16];

struct tprobe {
	struct sonde_kprobe kp;
	int idx;
};

static int idx_of(struct sonde_kprobe *p)
{
	return ((struct tprobe *)p)->idx;
}

static int rec_pre(struct sonde_kprobe *p, struct sonde_regs *regs)
{
	struct seen *s = &seen[idx_of(p)];

	s->pre++;
	s->pre_regs = *regs;
	return 0;
}

static void rec_post(struct sonde_kprobe *p, struct sonde_regs *regs, unsigned long flags)
{
	struct seen *s = &seen[idx_of(p)];

	s->post++;
	s->post_regs = *regs;
}

static void probe_at(struct tprobe *tp, int idx, void *addr)
{
	memset(tp, 0, sizeof(*tp));
	tp->kp.addr = addr;
	tp->kp.pre_handler = rec_pre;
	tp->kp.post_handler = rec_post;
	tp->idx = idx;
	if (sonde_register_kprobe(&tp->kp))
		check_fail(__FILE__, __LINE__, "register at %p: %s", addr, sonde_last_error());
	CHECK(tp->kp.addr == addr);
}

TEST(entry_probe_sees_arguments)
{
	struct tprobe tp;
	struct sonde_kprobe *kp = &tp.kp;

	memset(seen, 0, sizeof(seen));
	probe_at(&tp, 0, insn_target);
	CHECK_EQ(insn_target(25), expected(25));
	CHECK_EQ(seen[0].pre, 1);
	CHECK_EQ(seen[0].pre_regs.di, 25);
	CHECK_EQ(sonde_regs_arg(&seen[0].pre_regs, 0), 25);
	CHECK_EQ(seen[0].pre_regs.ip, (uintptr_t)insn_target);
	/* at entry the return address is on top of the stack, 16-byte aligned + 8 */
	CHECK_EQ(seen[0].pre_regs.sp % 16, 8);
	CHECK_EQ(sonde_kprobe_hits(kp), 1);
	sonde_unregister_kprobe(kp);
}

TEST(each_instruction_class)
{
	struct {
		void *addr;
		const char *name;
	} sites[] = {
	    {insn_at_push, "push"},
	    {insn_at_riprel, "riprel load"},
	    {insn_at_riprel_store, "riprel store"},
	    {insn_at_lea, "lea rip"},
	    {insn_at_jcc, "jcc"},
	    {insn_at_call, "call rel32"},
	    {insn_at_jrcxz, "jrcxz"},
	    {insn_at_loop, "loop"},
	    {insn_at_call_ind, "call *mem"},
	    {insn_at_ret, "ret"},
	};
	enum { N = sizeof(sites) / sizeof(sites[0]) };
	struct tprobe kp[N];
	long without[8], with[8];

	for (size_t i = 0; i < 8; i++)
		without[i] = insn_target(inputs[i]);
	for (int i = 0; i < N; i++)
		probe_at(&kp[i], i, sites[i].addr);

	for (size_t k = 0; k < 8; k++) {
		long x = inputs[k];

		memset(seen, 0, sizeof(seen));
		with[k] = insn_target(x);
		CHECK_EQ(with[k], without[k]);
		CHECK_EQ(with[k], expected(x));
		CHECK_EQ(insn_store, x);

		/* push: rbx still the caller's, post sees sp 8 lower */
		CHECK_EQ(seen[0].pre, 1);
		CHECK_EQ(seen[0].post_regs.sp, seen[0].pre_regs.sp - 8);
		CHECK_EQ(seen[0].post_regs.ip, (uintptr_t)insn_at_push + 1);
		/* rip-relative load: post sees the loaded value */
		CHECK_EQ(seen[1].pre_regs.bx, x);
		CHECK_EQ(seen[1].post_regs.ax, 1000);
		CHECK_EQ(seen[1].post_regs.ip, (uintptr_t)insn_at_riprel_store);
		/* rip-relative store and lea */
		CHECK_EQ(seen[2].post, 1);
		CHECK_EQ(seen[3].post_regs.cx, (uintptr_t)&insn_data);
		/* jcc: taken for x < 10 */
		CHECK_EQ(seen[4].pre, 1);
		if (x < 10) {
			CHECK_EQ(seen[5].pre, 0); /* the call was jumped over */
			CHECK(seen[4].post_regs.ip != (uintptr_t)insn_at_jcc + 2);
		} else {
			CHECK_EQ(seen[4].post_regs.ip, (uintptr_t)insn_at_jcc + 2);
			/* call: emulated, post sees the callee and the pushed return */
			CHECK_EQ(seen[5].pre, 1);
			CHECK_EQ(seen[5].pre_regs.di, x);
			CHECK_EQ(seen[5].post_regs.ip, (uintptr_t)insn_helper);
			CHECK_EQ(seen[5].post_regs.sp, seen[5].pre_regs.sp - 8);
			CHECK_EQ(*(uint64_t *)seen[5].post_regs.sp, (uintptr_t)insn_at_call + 5);
		}
		/* jrcxz taken only for x == 0; loop runs x times */
		CHECK_EQ(seen[6].pre, 1);
		CHECK_EQ(seen[7].pre, (int)x);
		if (x)
			CHECK_EQ(seen[7].post_regs.cx, 0);
		/* indirect call through memory */
		CHECK_EQ(seen[8].post_regs.ip, (uintptr_t)insn_helper2);
		/* ret: post sees the caller */
		CHECK_EQ(seen[9].pre, 1);
		CHECK_EQ(seen[9].post_regs.sp, seen[9].pre_regs.sp + 8);
		CHECK_EQ(seen[9].post_regs.ip, *(uint64_t *)seen[9].pre_regs.sp);
	}
	for (int i = 0; i < N; i++)
		CHECK(sonde_kprobe_hits(&kp[i].kp) > 0);
	for (int i = 0; i < N; i++)
		sonde_unregister_kprobe(&kp[i].kp);
	for (size_t k = 0; k < 8; k++)
		CHECK_EQ(insn_target(inputs[k]), expected(inputs[k]));
}

/* ---- handlers and counts -------------------------------------------------- */

int twice(int x);
int fails(int x);
long stress_fn(long x);

__attribute__((noinline, noclone)) int twice(int x)
{
	__asm__ volatile("");
	return 2 * x;
}

static int pre_count;

static int count_pre(struct sonde_kprobe *p, struct sonde_regs *regs)
{
	pre_count++;
	return 0;
}

static int recursing_pre(struct sonde_kprobe *p, struct sonde_regs *regs)
{
	pre_count++;
	/* a probe hit from inside a handler is not handled: nmissed */
	CHECK_EQ(twice(21), 42);
	return 0;
}

/*
 * The site table changes in place: a removed site leaves a marker that
 * lookups walk past and inserts reuse, and it grows by copying. Ten sites
 * of one function (their hashes collide in a small table) are registered
 * and unregistered in shifting subsets and orders, 3000 rounds: every
 * registered site fires on each call, no other does, and the function
 * computes what it does without probes.
 */
static int churn_hits[16];

static int churn_pre(struct sonde_kprobe *p, struct sonde_regs *regs)
{
	(void)regs;
	churn_hits[idx_of(p)]++;
	return 0;
}

/* a probe at @addr counting into churn_hits[@idx]; @round names the try, or -1 */
static void churn_probe(struct tprobe *tp, int idx, void *addr, int round)
{
	memset(tp, 0, sizeof(*tp));
	tp->kp.addr = addr;
	tp->kp.pre_handler = churn_pre;
	tp->idx = idx;
	if (sonde_register_kprobe(&tp->kp))
		check_fail(__FILE__, __LINE__, "round %d: register at %p: %s", round, addr,
			   sonde_last_error());
}

/* insn_target() on every input, each computing what it does without probes */
static void churn_calls(void)
{
	memset(churn_hits, 0, sizeof(churn_hits));
	for (size_t k = 0; k < 8; k++)
		CHECK_EQ(insn_target(inputs[k]), expected(inputs[k]));
}

TEST(site_table_churn)
{
	/* the sites every call runs exactly once, whatever its argument */
	void *const sites[] = {insn_at_push, insn_at_riprel, insn_at_riprel_store, insn_at_lea,
			       insn_at_jcc,  insn_at_jrcxz,  insn_at_call_ind,	   insn_at_ret};
	enum { N = sizeof(sites) / sizeof(sites[0]), ROUNDS = 3000 };
	struct tprobe kp[N];
	bool on[N] = {false};
	unsigned int seed = 12345;
	long optimized = 0;
	uint8_t orig[0x48];

	memcpy(orig, (void *)insn_target, sizeof(orig));

	for (int r = 0; r < ROUNDS; r++) {
		/* flip a few sites: some unregistered ones come back, some registered go */
		for (int k = 0; k < 3; k++) {
			int i;

			seed = seed * 1103515245u + 12345u;
			i = (int)((seed >> 16) % N);
			if (on[i]) {
				sonde_unregister_kprobe(&kp[i].kp);
			} else {
				churn_probe(&kp[i], i, sites[i], r);
			}
			on[i] = !on[i];
		}
		/* every other round with the jumps written that can be */
		if (r % 2)
			sonde_wait_kprobe_optimizer();
		for (int i = 0; i < N; i++)
			if (on[i] && (kp[i].kp.flags & SONDE_KPROBE_FLAG_OPTIMIZED))
				optimized++;
		memset(churn_hits, 0, sizeof(churn_hits));
		CHECK_EQ(insn_target(inputs[r % 8]), expected(inputs[r % 8]));
		for (int i = 0; i < N; i++)
			if (churn_hits[i] != (on[i] ? 1 : 0))
				check_fail(__FILE__, __LINE__,
					   "round %d: site %d (%s) hit %d times", r, i,
					   on[i] ? "registered" : "unregistered", churn_hits[i]);
	}
	for (int i = 0; i < N; i++)
		if (on[i])
			sonde_unregister_kprobe(&kp[i].kp);
	/* jumps were there, and probes inside their bytes sent them back to breakpoints */
	CHECK(optimized > ROUNDS / 4);
	CHECK(!memcmp(orig, (void *)insn_target, sizeof(orig)));
	printf("  %d rounds, %ld probe-rounds on a jump\n", ROUNDS, optimized);
}

/*
 * The kernel's rule for a probe inside an optimized probe's jump: the
 * optimized one goes back to its breakpoint first (else the new int3
 * would land in the jump's displacement), and is optimized again once
 * the probe inside is gone.
 */
TEST(probe_inside_a_jump)
{
	struct tprobe a, b;

	/* push; mov: 4 bytes, the jump takes the next mov too */
	churn_probe(&a, 0, insn_at_push, -1);
	sonde_wait_kprobe_optimizer();
	if (!(a.kp.flags & SONDE_KPROBE_FLAG_OPTIMIZED))
		check_fail(__FILE__, __LINE__, "the probe at insn_target was not optimized");

	churn_probe(&b, 1, insn_at_riprel, -1); /* +4: inside the jump */
	CHECK(!(a.kp.flags & SONDE_KPROBE_FLAG_OPTIMIZED));
	sonde_wait_kprobe_optimizer();
	CHECK(!(a.kp.flags & SONDE_KPROBE_FLAG_OPTIMIZED)); /* b is in the way */
	churn_calls();
	CHECK_EQ(churn_hits[0], 8);
	CHECK_EQ(churn_hits[1], 8);

	sonde_unregister_kprobe(&b.kp);
	sonde_wait_kprobe_optimizer();
	CHECK(a.kp.flags & SONDE_KPROBE_FLAG_OPTIMIZED);
	churn_calls();
	CHECK_EQ(churn_hits[0], 8);
	CHECK_EQ(churn_hits[1], 0);
	sonde_unregister_kprobe(&a.kp);
}

/*
 * The optimized probe comes back on its jump only when nothing is inside
 * any more: two probes inside, removed one after the other; and a probe
 * inside from before the jump was ever written.
 */
TEST(jump_back_when_nothing_inside)
{
	struct tprobe a, x, y;

	/* two inside: +1 and +4, both in the jump's 11 bytes (push; mov; mov) */
	churn_probe(&a, 0, insn_at_push, -1);
	sonde_wait_kprobe_optimizer();
	CHECK(a.kp.flags & SONDE_KPROBE_FLAG_OPTIMIZED);
	churn_probe(&x, 1, insn_at_push + 1, -1);
	churn_probe(&y, 2, insn_at_riprel, -1);
	CHECK(!(a.kp.flags & SONDE_KPROBE_FLAG_OPTIMIZED));
	sonde_unregister_kprobe(&x.kp);
	sonde_wait_kprobe_optimizer();
	CHECK(!(a.kp.flags & SONDE_KPROBE_FLAG_OPTIMIZED)); /* y is still inside */
	sonde_unregister_kprobe(&y.kp);
	sonde_wait_kprobe_optimizer();
	CHECK(a.kp.flags & SONDE_KPROBE_FLAG_OPTIMIZED);
	memset(churn_hits, 0, sizeof(churn_hits));
	CHECK_EQ(insn_target(5), expected(5));
	CHECK_EQ(churn_hits[0], 1);
	sonde_unregister_kprobe(&a.kp);

	/* inside before the jump was written: refused, then written once it goes */
	churn_probe(&a, 0, insn_at_push, -1);
	churn_probe(&y, 2, insn_at_riprel, -1);
	sonde_wait_kprobe_optimizer();
	CHECK(!(a.kp.flags & SONDE_KPROBE_FLAG_OPTIMIZED));
	sonde_unregister_kprobe(&y.kp);
	sonde_wait_kprobe_optimizer();
	CHECK(a.kp.flags & SONDE_KPROBE_FLAG_OPTIMIZED);
	sonde_unregister_kprobe(&a.kp);
}

TEST(recursion_is_missed)
{
	struct sonde_kprobe kp = {.symbol_name = "twice", .pre_handler = recursing_pre};

	CHECK_EQ(sonde_register_kprobe(&kp), 0);
	for (int i = 0; i < 10; i++)
		CHECK_EQ(twice(i), 2 * i);
	CHECK_EQ(pre_count, 10);
	CHECK_EQ(sonde_kprobe_hits(&kp), 10);
	CHECK_EQ(sonde_kprobe_missed(&kp), 10);
	sonde_unregister_kprobe(&kp);
}

TEST(several_probes_one_address)
{
	struct sonde_kprobe a = {.symbol_name = "twice", .pre_handler = count_pre};
	struct sonde_kprobe b = {.symbol_name = "twice", .pre_handler = count_pre};
	struct tprobe tc = {.kp = {.addr = (void *)twice, .pre_handler = rec_pre}, .idx = 0};

	memset(seen, 0, sizeof(seen));
	CHECK_EQ(sonde_register_kprobe(&a), 0);
	CHECK_EQ(sonde_register_kprobe(&b), 0);
	CHECK_EQ(sonde_register_kprobe(&tc.kp), 0);
	CHECK(a.addr == b.addr && b.addr == tc.kp.addr);
	CHECK_EQ(twice(4), 8);
	CHECK_EQ(pre_count, 2);
	CHECK_EQ(seen[0].pre, 1);
	sonde_unregister_kprobe(&a);
	CHECK_EQ(twice(5), 10);
	CHECK_EQ(pre_count, 3);
	CHECK_EQ(sonde_kprobe_hits(&b), 2);
	CHECK_EQ(sonde_kprobe_hits(&a), 1);
	sonde_unregister_kprobe(&b);
	sonde_unregister_kprobe(&tc.kp);
	CHECK_EQ(twice(6), 12);
	CHECK_EQ(pre_count, 3);
}

static int empty_pre(struct sonde_kprobe *p, struct sonde_regs *regs)
{
	return 0;
}

static void *call_twice_1000(void *arg)
{
	long sum = 0;

	for (int i = 0; i < 1000; i++)
		sum += twice(i);
	*(long *)arg = sum;
	return NULL;
}

/*
 * Hits are counted per thread: those of threads that have exited, of
 * threads that took over an exited thread's counters, and across
 * unregistering are all there; registering again starts from 0.
 */
TEST(hits_of_threads_that_exit)
{
	struct sonde_kprobe kp = {.symbol_name = "twice", .pre_handler = empty_pre};
	pthread_t th[8];
	long sums[8];

	CHECK_EQ(sonde_register_kprobe(&kp), 0);
	for (int round = 1; round <= 3; round++) {
		for (int i = 0; i < 8; i++)
			CHECK_EQ(pthread_create(&th[i], NULL, call_twice_1000, &sums[i]), 0);
		for (int i = 0; i < 8; i++) {
			pthread_join(th[i], NULL);
			CHECK_EQ(sums[i], 999 * 1000);
		}
		CHECK_EQ(sonde_kprobe_hits(&kp), 8000ul * round);
		if (round == 1)
			sonde_wait_kprobe_optimizer(); /* the next rounds through the jump, if any
							*/
	}
	CHECK_EQ(twice(1), 2);
	CHECK_EQ(sonde_kprobe_hits(&kp), 24001);
	sonde_unregister_kprobe(&kp);
	CHECK_EQ(sonde_kprobe_hits(&kp), 24001);
	CHECK_EQ(sonde_register_kprobe(&kp), 0);
	CHECK_EQ(sonde_kprobe_hits(&kp), 0);
	CHECK_EQ(twice(2), 4);
	CHECK_EQ(sonde_kprobe_hits(&kp), 1);
	sonde_unregister_kprobe(&kp);
}

TEST(disable_enable)
{
	struct sonde_kprobe kp = {.symbol_name = "twice", .pre_handler = count_pre};
	uint8_t orig[16], now[16];

	/* the breakpoint form: test_optprobe covers the jump form */
	sonde_set_kprobe_optimization(0);
	memcpy(orig, (void *)twice, 16);
	CHECK_EQ(sonde_register_kprobe(&kp), 0);
	CHECK_EQ(*(uint8_t *)twice, 0xcc);
	CHECK_EQ(sonde_disable_kprobe(&kp), 0);
	memcpy(now, (void *)twice, 16);
	CHECK(!memcmp(orig, now, 16));
	CHECK_EQ(twice(1), 2);
	CHECK_EQ(pre_count, 0);
	CHECK_EQ(sonde_enable_kprobe(&kp), 0);
	CHECK_EQ(twice(1), 2);
	CHECK_EQ(pre_count, 1);
	sonde_unregister_kprobe(&kp);
	memcpy(now, (void *)twice, 16);
	CHECK(!memcmp(orig, now, 16));

	/* registered disabled: not armed until enabled */
	kp.flags = SONDE_KPROBE_FLAG_DISABLED;
	CHECK_EQ(sonde_register_kprobe(&kp), 0);
	CHECK_EQ(*(uint8_t *)twice, orig[0]);
	CHECK_EQ(twice(2), 4);
	CHECK_EQ(pre_count, 1);
	sonde_unregister_kprobe(&kp);
}

__attribute__((noinline, noclone)) int fails(int x)
{
	__asm__ volatile("");
	return x < 0 ? -EINVAL : x;
}

/* error injection, the kernel's way: return at once with a chosen value */
static int override_pre(struct sonde_kprobe *p, struct sonde_regs *regs)
{
	regs->ax = 42;
	regs->ip = *(uint64_t *)regs->sp;
	regs->sp += 8;
	return 1;
}

TEST(pre_handler_changes_ip)
{
	struct sonde_kprobe kp = {.symbol_name = "fails", .pre_handler = override_pre};

	/* as in the kernel, only a breakpoint probe can redirect execution */
	sonde_set_kprobe_optimization(0);
	CHECK_EQ(fails(7), 7);
	CHECK_EQ(sonde_register_kprobe(&kp), 0);
	CHECK_EQ(fails(7), 42);
	CHECK_EQ(fails(-1), 42);
	sonde_unregister_kprobe(&kp);
	CHECK_EQ(fails(7), 7);
}

/* ---- errors ---------------------------------------------------------------- */

extern void sd_trap_handler(int sig, void *info, void *uc);

TEST(errors_are_explained)
{
	struct sonde_kprobe kp;
	int err;

	memset(&kp, 0, sizeof(kp));
	kp.symbol_name = "insn_target";
	kp.offset = 2; /* inside `mov %rdi, %rbx` (push %rbx is 1 byte, mov is 3) */
	err = sonde_register_kprobe(&kp);
	CHECK_EQ(err, -EILSEQ);
	CHECK(strstr(sonde_last_error(), "not an instruction boundary"));
	CHECK(strstr(sonde_last_error(), "insn_target+0x2"));

	memset(&kp, 0, sizeof(kp));
	kp.symbol_name = "no_such_function_here";
	CHECK_EQ(sonde_register_kprobe(&kp), -ENOENT);
	CHECK(strstr(sonde_last_error(), "no_such_function_here"));

	memset(&kp, 0, sizeof(kp));
	CHECK_EQ(sonde_register_kprobe(&kp), -EINVAL);
	CHECK(strstr(sonde_last_error(), "symbol_name or addr"));

	memset(&kp, 0, sizeof(kp));
	kp.addr = (void *)&insn_data; /* data, not code */
	CHECK_EQ(sonde_register_kprobe(&kp), -EINVAL);
	CHECK(strstr(sonde_last_error(), "not in executable code") ||
	      strstr(sonde_last_error(), "not in the code"));

	memset(&kp, 0, sizeof(kp));
	kp.addr = (void *)sd_trap_handler; /* the probe path itself */
	CHECK_EQ(sonde_register_kprobe(&kp), -EINVAL);
	CHECK(strstr(sonde_last_error(), "sonde"));

	memset(&kp, 0, sizeof(kp));
	kp.symbol_name = "twice";
	CHECK_EQ(sonde_register_kprobe(&kp), 0);
	CHECK_EQ(sonde_register_kprobe(&kp), -EBUSY);
	sonde_unregister_kprobe(&kp);
	CHECK_EQ(twice(3), 6);

	CHECK_EQ(sonde_register_kprobe(NULL), -EINVAL);
	CHECK_EQ(sonde_enable_kprobe(&kp), -EINVAL); /* not registered any more */
}

/* ---- the program's own traps ------------------------------------------------ */

static volatile int own_traps;

static void own_handler(int sig)
{
	own_traps++;
}

static void own_action(int sig, siginfo_t *si, void *uc)
{
	own_traps += 10;
}

TEST(program_traps_pass_through)
{
	struct sonde_kprobe kp = {.symbol_name = "twice", .pre_handler = count_pre};
	struct sigaction sa, old;

	CHECK_EQ(sonde_register_kprobe(&kp), 0);
	/* installed after sonde: it must still get the program's own traps */
	signal(SIGTRAP, own_handler);
	__asm__ volatile("int3");
	CHECK_EQ(own_traps, 1);
	raise(SIGTRAP);
	CHECK_EQ(own_traps, 2);
	CHECK_EQ(twice(8), 16);
	CHECK_EQ(pre_count, 1);

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = own_action;
	sa.sa_flags = SA_SIGINFO;
	CHECK_EQ(sigaction(SIGTRAP, &sa, &old), 0);
	CHECK(old.sa_handler == own_handler);
	__asm__ volatile("int3");
	CHECK_EQ(own_traps, 12);
	CHECK_EQ(twice(9), 18);
	CHECK_EQ(pre_count, 2);
	sonde_unregister_kprobe(&kp);
}

static volatile int in_handler_hits;

static void blocking_handler(int sig)
{
	/* the program's handler runs with every signal blocked (sa_mask full) */
	in_handler_hits += twice(sig) == 2 * sig;
}

/*
 * A breakpoint met with SIGTRAP blocked would kill the process: the program
 * cannot block it while probes exist (sigprocmask, pthread_sigmask, a
 * handler's sa_mask), and the probes fire as they would without the masks.
 */
TEST(program_cannot_block_trap)
{
	struct sonde_kprobe kp = {.symbol_name = "twice", .pre_handler = count_pre};
	struct sigaction sa;
	sigset_t all, now;

	CHECK_EQ(sonde_register_kprobe(&kp), 0);
	sigfillset(&all);
	CHECK_EQ(sigprocmask(SIG_BLOCK, &all, NULL), 0);
	CHECK_EQ(twice(3), 6);
	CHECK_EQ(pthread_sigmask(SIG_SETMASK, &all, NULL), 0);
	CHECK_EQ(twice(4), 8);
	CHECK_EQ(pthread_sigmask(SIG_SETMASK, NULL, &now), 0);
	CHECK_EQ(sigismember(&now, SIGTRAP), 0);
	CHECK_EQ(sigismember(&now, SIGUSR1), 1);
	CHECK_EQ(pre_count, 2);
	CHECK_EQ(sigprocmask(99, &all, NULL), -1);
	CHECK_EQ(errno, EINVAL);
	sigemptyset(&all);
	CHECK_EQ(sigprocmask(SIG_SETMASK, &all, NULL), 0);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = blocking_handler;
	sigfillset(&sa.sa_mask);
	CHECK_EQ(sigaction(SIGUSR1, &sa, NULL), 0);
	raise(SIGUSR1);
	CHECK_EQ(in_handler_hits, 1);
	CHECK_EQ(sonde_kprobe_missed(&kp), 0);
	CHECK_EQ(pre_count, 3);
	sonde_unregister_kprobe(&kp);
}

/* ---- threads ----------------------------------------------------------------- */

__attribute__((noinline, noclone)) long stress_fn(long x)
{
	__asm__ volatile("");
	return x * 2 + 1;
}

static atomic_long stress_bad, stress_hits, stress_calls;
static atomic_int stress_stop;

/* each thread makes at least @n calls, and keeps going until told to stop */
static void *stress_caller(void *arg)
{
	long n = (long)(intptr_t)arg, i;

	for (i = 0; i < n || !stress_stop; i++)
		if (stress_fn(i) != i * 2 + 1)
			stress_bad++;
	stress_calls += i;
	return NULL;
}

static int stress_pre(struct sonde_kprobe *p, struct sonde_regs *regs)
{
	stress_hits++;
	return 0;
}

TEST(register_while_threads_run)
{
	enum { THREADS = 8, CALLS = 1000000, CYCLES = 10000 };
	pthread_t th[THREADS];
	uint8_t orig[32], now[32];
	struct sonde_kprobe kp;

	memcpy(orig, (void *)stress_fn, sizeof(orig));
	for (int i = 0; i < THREADS; i++)
		CHECK_EQ(pthread_create(&th[i], NULL, stress_caller, (void *)(intptr_t)CALLS), 0);
	for (int c = 0; c < CYCLES; c++) {
		long before = stress_hits;

		memset(&kp, 0, sizeof(kp));
		kp.symbol_name = "stress_fn";
		kp.pre_handler = stress_pre;
		CHECK_EQ(sonde_register_kprobe(&kp), 0);
		/* let the callers run into it now and then */
		if (c % 100 == 0)
			while (stress_hits == before)
				sched_yield();
		sonde_unregister_kprobe(&kp);
	}
	stress_stop = 1;
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	CHECK_EQ(stress_bad, 0);
	CHECK(stress_calls >= (long)THREADS * CALLS);
	CHECK(stress_hits >= CYCLES / 100);
	memcpy(now, (void *)stress_fn, sizeof(now));
	CHECK(!memcmp(orig, now, sizeof(orig)));
	printf("  %ld probe hits in %ld calls from %d threads during %d register/unregister "
	       "cycles\n",
	       (long)stress_hits, (long)stress_calls, THREADS, CYCLES);
}
