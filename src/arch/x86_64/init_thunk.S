/* SPDX-License-Identifier: MIT */
/*
 * init_thunk.S - the common part of the start-up tracer's constructor stubs
 * (initcall/audit.c, libsonde-init.so only).
 *
 * A stub is `movabs $rec, %r11; jmp *sd_init_thunk_common`: the loader
 * called it as the constructor, with (argc, argv, envp). Log the start,
 * call rec->func with the same arguments, log the end.
 */
	.text
	.globl	sd_init_thunk_common
	.hidden	sd_init_thunk_common
	.type	sd_init_thunk_common, @function
	.p2align 4
sd_init_thunk_common:
	.cfi_startproc
	pushq	%rbp
	.cfi_def_cfa_offset 16
	.cfi_offset rbp, -16
	movq	%rsp, %rbp
	.cfi_def_cfa_register rbp
	pushq	%r11		/* -8(%rbp): the record */
	pushq	%rdi		/* -16: argc */
	pushq	%rsi		/* -24: argv */
	pushq	%rdx		/* -32: envp; %rsp is 16-byte aligned again */
	movq	%r11, %rdi
	call	sd_init_begin
	movq	-16(%rbp), %rdi
	movq	-24(%rbp), %rsi
	movq	-32(%rbp), %rdx
	movq	-8(%rbp), %r11
	call	*(%r11)		/* rec->func */
	movq	-8(%rbp), %rdi
	call	sd_init_end
	leave
	.cfi_def_cfa rsp, 8
	ret
	.cfi_endproc
	.size	sd_init_thunk_common, . - sd_init_thunk_common

	.section .note.GNU-stack,"",@progbits
