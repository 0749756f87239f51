/* SPDX-License-Identifier: MIT */
/*
 * optprobe_tramp.S - the common part of every jump-optimized probe.
 *
 * A detour reaches here by `call` after stepping over the red zone and
 * pushing its site index, so on entry
 *
 *     0(%rsp)   return address, back into the detour
 *     8(%rsp)   the site index
 *    16(%rsp)   128 bytes of the interrupted code's red zone, then its stack
 *
 * It saves every general register as a struct sonde_regs, the vector state
 * (vecstate.h) for handlers that may use it, calls
 * sd_optprobe_handler(index, regs), restores everything and returns to the
 * detour, which runs the displaced instructions and jumps back.
 * sd_arch_optprobe_tramp_entry is for sites at a function's first
 * instruction, where the x87 stack is empty; sd_arch_optprobe_tramp_lite
 * is the same without the vector state, for handlers known not to touch it
 * (sonde's own event writers, handlers flagged SONDE_KPROBE_FLAG_NOFPU or
 * proven integer code at registration).
 */
#include "vecstate.h"

	.section sonde_text,"ax",@progbits

.macro SAVE_REGS
	pushq	$0			/* ss */
	pushq	$0			/* sp, set below */
	pushfq
	pushq	$0			/* cs */
	pushq	$0			/* ip, set by the handler */
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
	/* the interrupted stack: regs(168) + return(8) + index(8) + red zone(128) */
	leaq	312(%rsp), %rax
	movq	%rax, 152(%rsp)
	movq	%rsp, %rbp
	cld				/* the C handler expects it, as the ABI says */
.endm

.macro RESTORE_REGS
	movq	%rbp, %rsp
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
	SAVE_REGS
	VEC_SAVE \kind
	movl	176(%rbp), %edi		/* the site index */
	movq	%rbp, %rsi
	call	sd_optprobe_handler
	VEC_RESTORE
	RESTORE_REGS
	ret
	.cfi_endproc
	.size	\name, . - \name
.endm

	OPT_TRAMP sd_arch_optprobe_tramp, VS_ANYWHERE
	OPT_TRAMP sd_arch_optprobe_tramp_entry, VS_ENTRY

	.globl	sd_arch_optprobe_tramp_lite
	.hidden	sd_arch_optprobe_tramp_lite
	.type	sd_arch_optprobe_tramp_lite, @function
	.p2align 4
sd_arch_optprobe_tramp_lite:
	.cfi_startproc
	.cfi_undefined rip
	SAVE_REGS
	andq	$-16, %rsp
	movl	176(%rbp), %edi
	movq	%rbp, %rsi
	call	sd_optprobe_handler
	RESTORE_REGS
	ret
	.cfi_endproc
	.size	sd_arch_optprobe_tramp_lite, . - sd_arch_optprobe_tramp_lite

	.section .note.GNU-stack,"",@progbits
