/* SPDX-License-Identifier: MIT */
/*
 * ftrace_tramp.S - the function tracers' ways in and out.
 *
 *   sd_arch_ftrace_stub_entry  a patched function-entry nop jumps to its
 *                           stub (ftrace_stub.c), which calls here: the
 *                           function's first instruction has not run, its
 *                           return address is at 8(%rsp)
 *   __fentry__, mcount      what a `-pg` build calls at every function entry
 *                           (after the prologue for mcount); exported so
 *                           that a preloaded libsonde takes the calls
 *   sd_arch_fgraph_return   where a function_graph-hooked function returns
 *                           when its return address was swapped
 *   sd_arch_fgraph_return_call  where it goes when its stub called it
 *
 * Every caller-saved general register is saved: a caller compiled with
 * -fipa-ra may keep values in registers its callee does not touch, and the
 * C side (built without vector registers, -mgeneral-regs-only) clobbers any
 * of them; it keeps the callee-saved ones itself. No vector register is
 * touched, so none is saved. The flags are not: every
 * way in is at a function's entry (or a call), where the ABI has them dead
 * but for DF, which is clear there and which the C side leaves clear; and
 * popfq is a slow, microcoded instruction.
 *
 * sd_ftrace_enter_stub(in_stub, slot) gets an address in the function's
 * stub and the address of its return-address slot; sd_ftrace_enter_pg(site,
 * slot) the address of a -pg call, which names the function that holds it.
 */
	.section sonde_text,"ax",@progbits

.macro PUSH_GPRS
	pushq	%rax
	pushq	%rcx
	pushq	%rdx
	pushq	%rsi
	pushq	%rdi
	pushq	%r8
	pushq	%r9
	pushq	%r10
	pushq	%r11
	pushq	%rbx			/* ours: it keeps the frame */
.endm

.macro POP_GPRS
	popq	%rbx
	popq	%r11
	popq	%r10
	popq	%r9
	popq	%r8
	popq	%rdi
	popq	%rsi
	popq	%rdx
	popq	%rcx
	popq	%rax
.endm

/* 10 words pushed: the word the caller's call left is at 80(%rsp) */

/*
 * A patched entry nop jumps to its function's stub (ftrace_stub.c), which
 * calls here: 0(%rsp) is in the stub, 8(%rsp) the function's return
 * address. The stub reads %r11 when we return: nonzero, function_graph
 * took the call and the stub calls the body. (%r11 is scratch at a
 * function's entry: no argument is passed in it.)
 */
	.globl	sd_arch_ftrace_stub_entry
	.hidden	sd_arch_ftrace_stub_entry
	.type	sd_arch_ftrace_stub_entry, @function
	.p2align 4
sd_arch_ftrace_stub_entry:
	.cfi_startproc
	PUSH_GPRS
	movq	%rsp, %rbx
	andq	$-16, %rsp
	cld
	movq	80(%rbx), %rdi		/* in the stub */
	leaq	88(%rbx), %rsi		/* the function's return-address slot */
	call	sd_ftrace_enter_stub
	movq	%rax, 8(%rbx)		/* POP_GPRS puts it in %r11 */
	movq	%rbx, %rsp
	POP_GPRS
	ret
	.cfi_endproc
	.size	sd_arch_ftrace_stub_entry, . - sd_arch_ftrace_stub_entry

/*
 * The -pg entries. Both are called from the traced function, directly
 * (e8, 5 bytes) or through the GOT (ff 15, 6 bytes) in position-independent
 * code; the call's address names the function (sd_ftrace_enter_pg looks
 * it up). \slot: where the function's return address is once PUSH_GPRS
 * has run.
 */
.macro PG_ENTRY name, slot
	.globl	\name
	.type	\name, @function
	.p2align 4
\name:
	.cfi_startproc
	cmpb	$0, sd_ftrace_active(%rip)
	jne	1f
	ret
1:	PUSH_GPRS
	movq	%rsp, %rbx
	andq	$-16, %rsp
	cld
	movq	80(%rbx), %rdi
	leaq	-6(%rdi), %rax
	cmpw	$0x15ff, (%rax)
	je	2f
	leaq	-5(%rdi), %rax
2:	movq	%rax, %rdi		/* the call site */
	leaq	\slot, %rsi
	call	sd_ftrace_enter_pg
	movq	%rbx, %rsp
	POP_GPRS
	ret
	.cfi_endproc
	.size	\name, . - \name
.endm

/* __fentry__ (-pg -mfentry): the first instruction; the return address is above ours */
	PG_ENTRY __fentry__, 88(%rbx)

/* mcount (plain -pg): after the prologue (push %rbp; mov %rsp,%rbp): at 8(%rbp) */
	PG_ENTRY mcount, 8(%rbp)

/*
 * The return side of function_graph: entered with %rsp just above the
 * return-address slot; sd_fgraph_return(slot) gives the real return
 * address, which goes into the slot again.
 */
.macro FGRAPH_RETURN
	subq	$8, %rsp		/* becomes the slot again: the real address goes there */
	PUSH_GPRS
	movq	%rsp, %rbx
	andq	$-16, %rsp
	cld
	leaq	80(%rbx), %rdi
	call	sd_fgraph_return
	movq	%rax, 80(%rbx)
	movq	%rbx, %rsp
	POP_GPRS
.endm

/*
 * Where a function whose return address was swapped returns to (by `ret`:
 * like kretprobe_tramp.S).
 */
	.globl	sd_arch_fgraph_return
	.hidden	sd_arch_fgraph_return
	.type	sd_arch_fgraph_return, @function
	.p2align 4
	.cfi_startproc
	.cfi_undefined rip
	nop
sd_arch_fgraph_return:
	FGRAPH_RETURN
	/*
	 * Out by an indirect jump, not `ret`: the function's own `ret` here
	 * already took the caller's entry off the CPU's return-address stack,
	 * and another `ret` would take the next one, mispredicting every
	 * return up the call chain. A signal cannot land on the word just
	 * popped: the kernel puts its frame below the 128-byte red zone.
	 */
	leaq	8(%rsp), %rsp
	jmp	*-8(%rsp)
	.cfi_endproc
sd_arch_fgraph_return_end:
	.globl	sd_arch_fgraph_return_end
	.hidden	sd_arch_fgraph_return_end
	.size	sd_arch_fgraph_return, . - sd_arch_fgraph_return

/*
 * Where a stub that called the function's body goes when the body returns
 * (a jump). The caller's own call is still the top of the return-address
 * stack: this one leaves by `ret`.
 */
	.globl	sd_arch_fgraph_return_call
	.hidden	sd_arch_fgraph_return_call
	.type	sd_arch_fgraph_return_call, @function
	.p2align 4
sd_arch_fgraph_return_call:
	.cfi_startproc
	.cfi_undefined rip
	FGRAPH_RETURN
	ret
	.cfi_endproc
	.size	sd_arch_fgraph_return_call, . - sd_arch_fgraph_return_call

	.section .note.GNU-stack,"",@progbits
