/* SPDX-License-Identifier: MIT */
/*
 * kretprobe_tramp.S - where a hooked function returns to.
 *
 * A kretprobe replaces the return address of the probed call with this
 * trampoline. It arrives here by `ret`, with %rsp one word above the slot
 * that held the return address (call it S), and must leave to the real
 * return address with every register as the function returned it.
 *
 * It builds a struct sonde_regs on the stack (the area below S+8 is the dead
 * callee frame), saves the vector state (vecstate.h: the handler is C
 * and may clobber any vector register, and a caller compiled with
 * -fipa-ra may keep values in registers the callee never touched) unless
 * every handler to run is flagged as touching none, and
 * calls sd_kretprobe_trampoline_handler(regs), which stores the real
 * return address in regs->ip and also in the last word of the frame, which
 * is S itself: so the frame below reads as an ordinary call frame to an
 * unwinder, and the final jump to it leaves %rsp at S+8 (a jump, not `ret`:
 * the function's `ret` here already took its entry off the CPU's return-address
 * stack, and a second `ret` would make every return above it mispredict).
 */
#include "vecstate.h"

	.section sonde_text,"ax",@progbits
	.globl	sd_arch_kretprobe_trampoline
	.hidden	sd_arch_kretprobe_trampoline
	.globl	sd_arch_kretprobe_trampoline_end
	.hidden	sd_arch_kretprobe_trampoline_end
	.type	sd_arch_kretprobe_trampoline, @function
	.p2align 4
	.cfi_startproc
	.cfi_undefined rip
	/* unwinders look up return address - 1: keep that inside this FDE */
	nop
sd_arch_kretprobe_trampoline:
	pushq	$0		/* ss: becomes S, the real return address */
	.cfi_adjust_cfa_offset 8
	pushq	$0		/* sp */
	.cfi_adjust_cfa_offset 8
	pushfq			/* flags */
	.cfi_adjust_cfa_offset 8
	pushq	$0x33		/* cs: 64-bit user code, as a breakpoint's regs say */
	.cfi_adjust_cfa_offset 8
	pushq	$0		/* ip */
	.cfi_adjust_cfa_offset 8
	pushq	$-1		/* orig_ax */
	.cfi_adjust_cfa_offset 8
	pushq	%rdi
	.cfi_adjust_cfa_offset 8
	pushq	%rsi
	.cfi_adjust_cfa_offset 8
	pushq	%rdx
	.cfi_adjust_cfa_offset 8
	pushq	%rcx
	.cfi_adjust_cfa_offset 8
	pushq	%rax
	.cfi_adjust_cfa_offset 8
	pushq	%r8
	.cfi_adjust_cfa_offset 8
	pushq	%r9
	.cfi_adjust_cfa_offset 8
	pushq	%r10
	.cfi_adjust_cfa_offset 8
	pushq	%r11
	.cfi_adjust_cfa_offset 8
	pushq	%rbx
	.cfi_adjust_cfa_offset 8
	pushq	%rbp
	.cfi_adjust_cfa_offset 8
	pushq	%r12
	.cfi_adjust_cfa_offset 8
	pushq	%r13
	.cfi_adjust_cfa_offset 8
	pushq	%r14
	.cfi_adjust_cfa_offset 8
	pushq	%r15
	.cfi_adjust_cfa_offset 8
	leaq	168(%rsp), %rax
	movq	%rax, 152(%rsp)		/* regs->sp: the stack as the caller sees it */
	movq	%rsp, %rbp
	cld
	/* from here the frame reads as a call frame whose return address is at S */
	.cfi_def_cfa rbp, 168
	.cfi_offset rip, -8
	.cfi_offset rbp, -136
	.cfi_offset r12, -144		/* VEC_SAVE keeps its mode there */
	andq	$-16, %rsp
	/* handlers that touch no vector register (SONDE_KPROBE_FLAG_NOFPU): none saved */
	movq	%rbp, %rdi
	call	sd_kretprobe_return_nofpu
	testl	%eax, %eax
	jz	6f
	movq	%rbp, %rdi
	call	sd_kretprobe_trampoline_handler
	jmp	5f
6:	VEC_SAVE VS_RETURN
	movq	%rbp, %rdi
	call	sd_kretprobe_trampoline_handler
	VEC_RESTORE
5:	movq	%rbp, %rsp
	movq	128(%rsp), %rax
	movq	%rax, 160(%rsp)		/* the real return address, at S */
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
	/*
	 * orig_ax, ip, cs, flags, sp: the flags are not restored, a return
	 * leaves them undefined for the caller (the ABI); DF is clear.
	 */
	leaq	48(%rsp), %rsp
	/* to S's contents, %rsp at S+8: a jump, as ftrace_tramp.S says why */
	jmp	*-8(%rsp)
	.cfi_endproc
sd_arch_kretprobe_trampoline_end:
	.size	sd_arch_kretprobe_trampoline, . - sd_arch_kretprobe_trampoline

	.section .note.GNU-stack,"",@progbits
