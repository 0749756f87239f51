/*
 * optx_lib.S - built twice (optprobe.cmake), for test_optprobe: the same
 * layout, byte for byte in length, in two files.
 *
 *   optx_f   mov %edi,%eax; add $1,%eax; add $2,%eax; ret
 *            (its first two instructions, 5 bytes, are what a jump replaces)
 *   optx_g   jmp rel32: in libopt_a to optx_f's first byte (allowed), in
 *            libopt_b to its second instruction, inside those 5 bytes, so
 *            that a probe on optx_f must stay a breakpoint there.
 *
 * libopt_c (OPTX_SPLIT) has the same bytes in size, cut otherwise: optx_f
 * is `mov; ret` and the function optx_h (`lea 2(%rdi),%eax; ret`), entered only
 * through a pointer, starts inside the 5 bytes a jump at optx_f would take.
 */
	.text
	.globl	optx_f
	.type	optx_f, @function
#ifdef OPTX_SPLIT
optx_f:
	movl	%edi, %eax
	ret
	.size	optx_f, .-optx_f
	.globl	optx_h
	.type	optx_h, @function
optx_h:
	leal	2(%rdi), %eax
	ret
	nop
	nop
	.size	optx_h, .-optx_h
optx_in = optx_f
#else
optx_f:
	movl	%edi, %eax
optx_in:
	addl	$1, %eax
	addl	$2, %eax
	ret
	.size	optx_f, .-optx_f
#endif

	.globl	optx_g
	.type	optx_g, @function
optx_g:
	movl	%edi, %eax
	.byte	0xe9
#ifdef OPTX_INTO
	.long	optx_in - . - 4
#else
	.long	optx_f - . - 4
#endif
	.size	optx_g, .-optx_g

	.section .note.GNU-stack,"",@progbits
