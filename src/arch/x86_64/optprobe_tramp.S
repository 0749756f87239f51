/* SPDX-License-Identifier: MIT */
/*
 * optprobe_tramp.S - the common part of every jump-optimized probe.
 *
 * A detour reaches here by `call` after stepping over the red zone, so on
 * entry
 *
 *     0(%rsp)   return address, back into the detour, where a 7-byte
 *               `nopl index(%rax)` holds the site index in its last 4 bytes
 *     8(%rsp)   128 bytes of the interrupted code's red zone, then its stack
 *
 * The hit path is bound by its stores (about 30, two a cycle), so none is
 * spent that a later one overwrites: the index is read from the code rather
 * than pushed, and the words of sp and ip are stepped over, then written
 * once (sp below, ip by the handler).
 *
 * It saves every general register as a struct sonde_regs, the vector state
 * (vecstate.h) for handlers that may use it, calls
 * sd_optprobe_handler(index, regs), restores everything and returns to the
 * detour, which runs the displaced instructions and jumps back.
 * sd_arch_optprobe_tramp_entry is for sites at a function's first
 * instruction, where the x87 stack is empty; sd_arch_optprobe_tramp_lite
 * is the same without the vector state, for handlers known not to touch it
 * (sonde's own event writers, handlers flagged SONDE_KPROBE_FLAG_NOFPU or
 * proven integer code at registration), and sd_arch_optprobe_tramp_lite_entry
 * that one at a function's first instruction.
 *
 * At a function's first instruction the ABI has the status flags dead and
 * DF clear: the _entry trampolines neither clear DF for the handler nor
 * put the flags back (a C handler returns with DF clear). Everywhere else
 * the flags are restored whole.
 */
#include "vecstate.h"

	.section sonde_text,"ax",@progbits

.macro SAVE_REGS at_entry
	pushq	$0x2b			/* ss: user data, as a breakpoint's regs say */
	leaq	-8(%rsp), %rsp		/* sp, set below */
	pushfq
	pushq	$0x33			/* cs: 64-bit user code */
	leaq	-8(%rsp), %rsp		/* ip, set by the handler before any use */
	pushq	$-1			/* orig_ax */
	pushq	%rdi
	pushq	%rsi
	pushq	%rdx
	pushq	%rcx
	pushq	%rax
	pushq	%r8
	pushq	%r9
	pushq	%r10
	pushq	%r11
	pushq	%rbx
	pushq	%rbp
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	/* the interrupted stack: regs(168) + return(8) + red zone(128) */
	leaq	304(%rsp), %rax
	movq	%rax, 152(%rsp)
	movq	%rsp, %rbp
	.if !\at_entry
	cld				/* the C handler expects it, as the ABI says */
	.endif
.endm

.macro RESTORE_REGS at_entry
	movq	%rbp, %rsp
	.if !\at_entry
	/*
	 * The flags without popfq (a slow, microcoded instruction): DF by
	 * hand, OF by an addition that overflows exactly when it was set,
	 * then sahf for SF ZF AF PF CF. Nothing after this changes a flag.
	 */
	movq	144(%rsp), %rax
	testl	$0x400, %eax
	jz	6f
	std
6:	movq	%rax, %rdx
	shrq	$11, %rdx
	andl	$1, %edx
	movb	%al, %ah
	movb	%dl, %al
	addb	$0x7f, %al
	sahf
	.endif
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbp
	popq	%rbx
	popq	%r11
	popq	%r10
	popq	%r9
	popq	%r8
	popq	%rax
	popq	%rcx
	popq	%rdx
	popq	%rsi
	popq	%rdi
	leaq	48(%rsp), %rsp		/* orig_ax, ip, cs, flags, sp, ss */
.endm

/* with the vector state; \kind: what the ABI says of the x87 stack at the site */
.macro OPT_TRAMP name, kind
	.globl	\name
	.hidden	\name
	.type	\name, @function
	.p2align 4
\name:
	.cfi_startproc
	.cfi_undefined rip
	SAVE_REGS (\kind == VS_ENTRY)
	VEC_SAVE \kind
	movq	168(%rbp), %rdi		/* the return address: the nopl */
	movl	3(%rdi), %edi		/* its displacement, the site index */
	movq	%rbp, %rsi
	call	sd_optprobe_handler
	VEC_RESTORE
	RESTORE_REGS (\kind == VS_ENTRY)
	ret
	.cfi_endproc
	.size	\name, . - \name
.endm

	OPT_TRAMP sd_arch_optprobe_tramp, VS_ANYWHERE
	OPT_TRAMP sd_arch_optprobe_tramp_entry, VS_ENTRY

/* without the vector state; \at_entry: at a function's first instruction */
.macro OPT_TRAMP_LITE name, at_entry
	.globl	\name
	.hidden	\name
	.type	\name, @function
	.p2align 4
\name:
	.cfi_startproc
	.cfi_undefined rip
	SAVE_REGS \at_entry
	andq	$-16, %rsp
	movq	168(%rbp), %rdi
	movl	3(%rdi), %edi
	movq	%rbp, %rsi
	call	sd_optprobe_handler
	RESTORE_REGS \at_entry
	ret
	.cfi_endproc
	.size	\name, . - \name
.endm

	OPT_TRAMP_LITE sd_arch_optprobe_tramp_lite, 0
	OPT_TRAMP_LITE sd_arch_optprobe_tramp_lite_entry, 1

	.section .note.GNU-stack,"",@progbits
