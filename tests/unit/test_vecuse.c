// SPDX-License-Identifier: MIT
/*
 * test_vecuse.c - the proof that a handler never touches the vector state
 * (sd_arch_code_vec_free), and the probes that get it.
 *
 * Exact cases are written in assembly, so that the compiler cannot change
 * what is tested: integer code, loops, direct calls and tail calls pass;
 * one SSE, AVX, x87, MMX or MXCSR instruction anywhere reachable, an
 * indirect call or jump, a PLT call or a breakpoint fails. Then handlers
 * written in C as users write them, and registered probes: an unflagged
 * integer-only handler is run without the vector state saved, a handler
 * that uses it still gets it saved.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <sonde/kprobes.h>

#include "check.h"
#include "arch/arch.h"
#include "probe/probe.h"

#define ASM_FN(name, body)                                                                    \
	__asm__(".text\n.globl " #name "\n.type " #name ", @function\n" #name ":\n" body "\n" \
		".size " #name ", .-" #name "\n");                                            \
	void name(void)

/* integer code: arithmetic, memory, a loop */
ASM_FN(vu_int, "	endbr64\n"
	       "	mov $10, %ecx\n"
	       "1:	add %rcx, %rax\n"
	       "	imul $3, %rdx, %rdx\n"
	       "	mov %rax, -8(%rsp)\n"
	       "	cmovz %rdx, %rax\n"
	       "	dec %ecx\n"
	       "	jnz 1b\n"
	       "	lock incq (%rdi)\n"
	       "	ret");
/* a direct call and a tail call into integer code */
ASM_FN(vu_calls, "	call vu_int\n"
		 "	test %eax, %eax\n"
		 "	je 2f\n"
		 "	jmp vu_int\n"
		 "2:	ret");
/* integer code until a branch reaches one SSE instruction */
ASM_FN(vu_sse_far, "	test %edi, %edi\n"
		   "	jne 3f\n"
		   "	ret\n"
		   "3:	add $1, %eax\n"
		   "	pxor %xmm0, %xmm0\n"
		   "	ret");
/* the same, behind a direct call */
ASM_FN(vu_call_sse, "	call vu_sse_far\n"
		    "	ret");
ASM_FN(vu_avx, "	vzeroupper\n"
	       "	ret");
ASM_FN(vu_x87, "	fldz\n"
	       "	fstp %st(0)\n"
	       "	ret");
ASM_FN(vu_mmx, "	emms\n"
	       "	ret");
ASM_FN(vu_mxcsr, "	stmxcsr -4(%rsp)\n"
		 "	ret");
ASM_FN(vu_xsave, "	xor %eax, %eax\n"
		 "	xor %edx, %edx\n"
		 "	xsave (%rdi)\n"
		 "	ret");
ASM_FN(vu_fxsave, "	fxsave64 (%rdi)\n"
		  "	ret");
ASM_FN(vu_gather, "	vpgatherdd %xmm1, (%rdi,%xmm2,4), %xmm0\n"
		  "	ret");
ASM_FN(vu_icall, "	call *%rsi\n"
		 "	ret");
ASM_FN(vu_ijmp, "	jmp *(%rsi)\n");
ASM_FN(vu_int3, "	int3\n"
		"	ret");
/* a trap ends its path: what follows it is not code */
ASM_FN(vu_trap, "	test %edi, %edi\n"
		"	je 4f\n"
		"	ret\n"
		"4:	ud2\n"
		"	.byte 0x66, 0x0f, 0xef, 0xc0\n"); /* pxor %xmm0,%xmm0, never reached */

/* a frame: rbp set from rsp, locals, leave */
ASM_FN(vu_frame, "	push %rbp\n"
		 "	mov %rsp, %rbp\n"
		 "	sub $32, %rsp\n"
		 "	mov %rdi, -8(%rbp)\n"
		 "	mov %rsi, 8(%rsp)\n"
		 "	call vu_int\n"
		 "	leave\n"
		 "	ret");
/* returns that do not go back to the caller: each reaches vu_avx */
ASM_FN(vu_push_ret, "	lea vu_avx(%rip), %rax\n"
		    "	push %rax\n"
		    "	ret");
ASM_FN(vu_retpoline, "	lea vu_avx(%rip), %rax\n"
		     "	call 5f\n"
		     "6:	pause\n"
		     "	jmp 6b\n"
		     "5:	mov %rax, (%rsp)\n"
		     "	ret");
ASM_FN(vu_frame_ret, "	push %rbp\n"
		     "	mov %rsp, %rbp\n"
		     "	lea vu_avx(%rip), %rax\n"
		     "	mov %rax, 8(%rbp)\n"
		     "	pop %rbp\n"
		     "	ret");
ASM_FN(vu_lret, "	push $0x33\n"
		"	lea vu_avx(%rip), %rax\n"
		"	push %rax\n"
		"	lretq");
/* a realigned stack, then a write through it: where to, the scan cannot tell */
ASM_FN(vu_realign, "	push %rbp\n"
		   "	mov %rsp, %rbp\n"
		   "	and $-16, %rsp\n"
		   "	mov %rax, (%rsp)\n"
		   "	leave\n"
		   "	ret");
/* gates: a breakpoint encoded as int $3, a 32-bit system call, sysenter */
ASM_FN(vu_int_3, "	.byte 0xcd, 0x03\n"
		 "	ret");
ASM_FN(vu_int80, "	int $0x80\n"
		 "	ret");
ASM_FN(vu_sysenter, "	sysenter\n"
		    "	ret");
ASM_FN(vu_ldmxcsr, "	ldmxcsr -4(%rsp)\n"
		   "	ret");
ASM_FN(vu_fwait, "	fwait\n"
		 "	ret");
ASM_FN(vu_xbegin, "	xbegin 7f\n"
		  "7:	ret");
/* more code than the budget: 5000 instructions of integer code */
ASM_FN(vu_long, "	.rept 5000\n"
		"	add $1, %rax\n"
		"	.endr\n"
		"	ret");

static int counter;

/* the handlers users write: count, keep an argument; no sanitizer calls in them */
__attribute__((noinline, no_sanitize("undefined"))) static int c_empty(struct sonde_kprobe *p,
								       struct sonde_regs *regs)
{
	(void)p;
	(void)regs;
	return 0;
}

static uint64_t last_arg;

__attribute__((noinline, no_sanitize("undefined"))) static int c_count(struct sonde_kprobe *p,
								       struct sonde_regs *regs)
{
	(void)p;
	__atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
	last_arg = regs->di;
	return 0;
}

static volatile double scale = 1.5;

/* a double: vector registers */
__attribute__((noinline, no_sanitize("undefined"))) static int c_float(struct sonde_kprobe *p,
								       struct sonde_regs *regs)
{
	(void)p;
	last_arg = (uint64_t)((double)regs->di * scale);
	return 0;
}

static char text[64];

/* a libc call: through the PLT, an indirect jump (a memset GCC would inline) */
__attribute__((noinline, no_sanitize("undefined"))) static int c_libc(struct sonde_kprobe *p,
								      struct sonde_regs *regs)
{
	(void)p;
	snprintf(text, sizeof(text), "%lu", (unsigned long)regs->di);
	return 0;
}

static int returns;

__attribute__((noinline, no_sanitize("undefined"))) static int
c_ret_count(struct sonde_kretprobe_instance *ri, struct sonde_regs *regs)
{
	(void)ri;
	(void)regs;
	returns++;
	return 0;
}

__attribute__((noinline, no_sanitize("undefined"))) static int
c_ret_libc(struct sonde_kretprobe_instance *ri, struct sonde_regs *regs)
{
	(void)ri;
	snprintf(text, sizeof(text), "%lu", (unsigned long)regs->di);
	return 0;
}

TEST(code_cases)
{
	CHECK(sd_arch_code_vec_free((uint64_t)0)); /* no handler */
	CHECK(sd_arch_code_vec_free((uint64_t)vu_int));
	CHECK(sd_arch_code_vec_free((uint64_t)vu_calls));
	CHECK(sd_arch_code_vec_free((uint64_t)vu_trap));
	CHECK(!sd_arch_code_vec_free((uint64_t)vu_sse_far));
	CHECK(!sd_arch_code_vec_free((uint64_t)vu_call_sse));
	CHECK(!sd_arch_code_vec_free((uint64_t)vu_avx));
	CHECK(!sd_arch_code_vec_free((uint64_t)vu_x87));
	CHECK(!sd_arch_code_vec_free((uint64_t)vu_mmx));
	CHECK(!sd_arch_code_vec_free((uint64_t)vu_mxcsr));
	CHECK(!sd_arch_code_vec_free((uint64_t)vu_xsave));
	CHECK(!sd_arch_code_vec_free((uint64_t)vu_fxsave));
	CHECK(!sd_arch_code_vec_free((uint64_t)vu_gather));
	CHECK(!sd_arch_code_vec_free((uint64_t)vu_icall));
	CHECK(!sd_arch_code_vec_free((uint64_t)vu_ijmp));
	CHECK(!sd_arch_code_vec_free((uint64_t)vu_int3));
	CHECK(sd_arch_code_vec_free((uint64_t)vu_frame));
	CHECK(!sd_arch_code_vec_free((uint64_t)vu_push_ret));
	CHECK(!sd_arch_code_vec_free((uint64_t)vu_retpoline));
	CHECK(!sd_arch_code_vec_free((uint64_t)vu_frame_ret));
	CHECK(!sd_arch_code_vec_free((uint64_t)vu_lret));
	CHECK(!sd_arch_code_vec_free((uint64_t)vu_realign));
	CHECK(!sd_arch_code_vec_free((uint64_t)vu_int_3));
	CHECK(!sd_arch_code_vec_free((uint64_t)vu_int80));
	CHECK(!sd_arch_code_vec_free((uint64_t)vu_sysenter));
	CHECK(!sd_arch_code_vec_free((uint64_t)vu_ldmxcsr));
	CHECK(!sd_arch_code_vec_free((uint64_t)vu_fwait));
	CHECK(!sd_arch_code_vec_free((uint64_t)vu_xbegin));
	CHECK(!sd_arch_code_vec_free((uint64_t)vu_long));

	CHECK(sd_arch_code_vec_free((uint64_t)c_empty));
	CHECK(sd_arch_code_vec_free((uint64_t)c_count));
	CHECK(!sd_arch_code_vec_free((uint64_t)c_float));
	CHECK(!sd_arch_code_vec_free((uint64_t)c_libc));
	/* libc's own code calls through its PLT and uses SSE */
	CHECK(!sd_arch_code_vec_free((uint64_t)memcpy));
}

/* a double in and out: xmm0 is live at the entry and at the return */
double vu_dtarget(double x);
__asm__(".text\n.globl vu_dtarget\n.type vu_dtarget, @function\nvu_dtarget:\n"
	"	movapd %xmm0, %xmm1\n"
	"	addsd %xmm1, %xmm0\n"
	"	ret\n"
	".size vu_dtarget, .-vu_dtarget\n");

/* clobbers xmm0: the vector state must be saved around it */
__attribute__((noinline)) static int c_vec(struct sonde_kprobe *p, struct sonde_regs *regs)
{
	(void)p;
	(void)regs;
	__asm__ volatile("pxor %%xmm0, %%xmm0" ::: "xmm0");
	return 0;
}

__attribute__((noinline, noipa)) int vu_target(int a);
__attribute__((noinline, noipa)) int vu_target(int a)
{
	__asm__ volatile("" : "+r"(a));
	return a + 1;
}

static bool nofpu(const struct sonde_kprobe *p)
{
	return p->__reserved[0] & SD_KP_NOFPU;
}

/* registered probes: the integer handler runs without the vector state, the others with it */
TEST(probes)
{
	struct sonde_kprobe kp_count = {.symbol_name = "vu_target", .pre_handler = c_count};
	struct sonde_kprobe kp_float = {.symbol_name = "vu_target", .pre_handler = c_float};
	struct sonde_kretprobe rp_int = {.kp.symbol_name = "vu_target", .handler = c_ret_count};
	struct sonde_kretprobe rp_libc = {
	    .kp.symbol_name = "vu_target", .handler = c_ret_count, .entry_handler = c_ret_libc};

	CHECK_EQ(sonde_register_kprobe(&kp_count), 0);
	CHECK(nofpu(&kp_count));
	CHECK(!(kp_count.flags & SONDE_KPROBE_FLAG_NOFPU)); /* the user's flags are theirs */
	CHECK_EQ(sonde_register_kprobe(&kp_float), 0);
	CHECK(!nofpu(&kp_float));
	CHECK_EQ(sonde_register_kretprobe(&rp_int), 0);
	CHECK(nofpu(&rp_int.kp));
	CHECK_EQ(sonde_register_kretprobe(&rp_libc), 0);
	CHECK(!nofpu(&rp_libc.kp));

	counter = returns = 0;
	for (int i = 0; i < 1000; i++)
		CHECK_EQ(vu_target(i), i + 1);
	CHECK_EQ(counter, 1000);
	CHECK_EQ(returns, 2000);
	CHECK_EQ(last_arg, (uint64_t)(999 * 1.5));
	sonde_unregister_kretprobe(&rp_libc);
	sonde_unregister_kretprobe(&rp_int);
	sonde_unregister_kprobe(&kp_float);
	sonde_unregister_kprobe(&kp_count);
}

/* registering again with another handler: what it touches is found again */
TEST(reregister_finds_again)
{
	struct sonde_kprobe kp = {.symbol_name = "vu_target", .pre_handler = c_count};
	struct sonde_kretprobe rp = {.kp.symbol_name = "vu_target", .handler = c_ret_count};

	CHECK_EQ(sonde_register_kprobe(&kp), 0);
	CHECK(nofpu(&kp));
	sonde_unregister_kprobe(&kp);
	kp.pre_handler = c_float;
	CHECK_EQ(sonde_register_kprobe(&kp), 0);
	CHECK(!nofpu(&kp));
	sonde_unregister_kprobe(&kp);

	CHECK_EQ(sonde_register_kretprobe(&rp), 0);
	CHECK(nofpu(&rp.kp));
	sonde_unregister_kretprobe(&rp);
	rp.entry_handler = c_ret_libc;
	CHECK_EQ(sonde_register_kretprobe(&rp), 0);
	CHECK(!nofpu(&rp.kp));
	sonde_unregister_kretprobe(&rp);
}

/*
 * A probe whose handler uses xmm0 joins a site already optimized without
 * vector state: it must not run there; the double in xmm0 comes through.
 */
TEST(vector_probe_joins_a_lite_site)
{
	struct sonde_kprobe kp_count = {.symbol_name = "vu_dtarget", .pre_handler = c_count};
	struct sonde_kprobe kp_vec = {.symbol_name = "vu_dtarget", .pre_handler = c_vec};
	int calls = 0;

	CHECK_EQ(sonde_register_kprobe(&kp_count), 0);
	sonde_wait_kprobe_optimizer();
	CHECK(kp_count.flags & SONDE_KPROBE_FLAG_OPTIMIZED);
	CHECK(vu_dtarget(21.0) == 42.0);
	CHECK_EQ(sonde_register_kprobe(&kp_vec), 0);
	CHECK(!nofpu(&kp_vec));
	for (int i = 0; i < 100; i++, calls++)
		CHECK(vu_dtarget(21.0) == 42.0);
	sonde_wait_kprobe_optimizer();
	CHECK(kp_vec.flags & SONDE_KPROBE_FLAG_OPTIMIZED); /* again, saving the vectors */
	for (int i = 0; i < 100; i++, calls++)
		CHECK(vu_dtarget(21.0) == 42.0);
	CHECK_EQ(sonde_kprobe_hits(&kp_vec), (unsigned long)calls);
	CHECK_EQ(sonde_kprobe_missed(&kp_vec), 0UL);
	sonde_unregister_kprobe(&kp_vec);
	sonde_unregister_kprobe(&kp_count);
}
