/* SPDX-License-Identifier: MIT */
/*
 * vecstate.h - saving the vector state around a C handler, for the
 * trampolines (the macros are for .S files).
 *
 * XSAVE/XRSTOR cost about 70 ns a pair on current cores, whatever the
 * mask: microcode. The state a handler can actually change is small: the
 * SysV ABI lets a C function clobber every xmm/ymm/zmm and opmask register
 * and the status flags of MXCSR and the x87 status word; it keeps the
 * control bits, and leaves the x87 register stack as it found it. So the
 * fast path asks XGETBV(1) which components are in use and saves just
 * those registers with plain moves, at the width in use, so that a clean
 * upper state stays clean (no SSE/AVX transition cost for the traced code):
 *
 *   xmm0-15          always; restored with VEX moves, which zero what is above
 *   ymm0-15          when AVX state is in use
 *   zmm0-15          when ZMM_Hi256 is in use
 *   zmm16-31         when Hi16_ZMM is in use, else zeroed again
 *   k0-7             when the CPU has AVX-512
 *   MXCSR, x87 FSW   compared afterwards, put back only if changed
 *
 * The x87 register stack is the exception: the handler may push on it
 * (long double), which corrupts a stack the interrupted code was using.
 * At a function's entry the ABI says that stack is empty; at a return it
 * holds at most the return value (one or two registers), so it is empty
 * exactly when TOP is back at 0. Anywhere else, and
 * whenever state the fast path does not know (AMX tiles, ...) is in use,
 * the whole state goes through XSAVEC/XSAVE/FXSAVE as before.
 *
 * xstate.c includes it for the feature bits.
 *
 * Both macros run after the general registers are saved (they clobber
 * %rax %rcx %rdx), keep their mode in %r12 across the handler call (callee
 * saved in C), and leave %rsp 64-byte aligned for the call.
 */
#ifndef SD_ARCH_VECSTATE_H
#define SD_ARCH_VECSTATE_H
/* assembler macros: clang-format would take them for C */
/* clang-format off */

/* sd_vec_features (xstate.c) */
#define SD_VEC_FAST   1 /* XGETBV(1) exists */
#define SD_VEC_AVX    2 /* the OS enabled AVX state */
#define SD_VEC_AVX512 4 /* ... and the three AVX-512 components */

#ifdef __ASSEMBLER__

/* where the handler runs: what the ABI says of the x87 stack there */
#define VS_ANYWHERE 0
#define VS_ENTRY    1 /* a function's first instruction: empty */
#define VS_RETURN   2 /* just returned: empty or holding the return value */

/* XINUSE bits the fast path handles: x87 SSE AVX opmask ZMM_Hi256 Hi16_ZMM PKRU */
#define VS_KNOWN 0x2e7

/* the fast path's frame, from the aligned %rsp */
#define VS_K	 2048 /* k0-7 */
#define VS_MXCSR 2112
#define VS_TMP	 2116
#define VS_FSW	 2120
#define VS_ENV	 2176 /* fnstenv, 28 bytes */
#define VS_AREA	 2240

/* %r12 in the fast path: sd_vec_features | XINUSE << 8 */
#define VS_IN_AVX   (1 << (8 + 2))
#define VS_IN_ZMMHI (1 << (8 + 6))
#define VS_IN_HI16  (1 << (8 + 7))

#define VS_LOW  0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
#define VS_HIGH 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31

/* register \i of width \w (x, y, z) at \i * 64 from %rsp, for each \i in \regs */
.macro VS_STORE op, w, regs:vararg
	.irp i, \regs
	\op	%\w\()mm\i, (\i * 64)(%rsp)
	.endr
.endm

.macro VS_LOAD op, w, regs:vararg
	.irp i, \regs
	\op	(\i * 64)(%rsp), %\w\()mm\i
	.endr
.endm

/* the whole state, as the kernel would save it: XSAVEC, XSAVE or FXSAVE */
.macro VS_XSAVE
	subq	sd_xstate_size(%rip), %rsp
	andq	$-64, %rsp
	xorl	%eax, %eax
	.irp off, 512, 520, 528, 536, 544, 552, 560, 568
	movq	%rax, \off(%rsp)	/* the XSAVE header */
	.endr
	movl	$-1, %eax
	movl	$-1, %edx
	cmpl	$2, sd_xstate_mode(%rip)
	je	.Lvs_xsavec\@
	cmpl	$1, sd_xstate_mode(%rip)
	je	.Lvs_xsave\@
	fxsave64 (%rsp)
	jmp	.Lvs_xdone\@
.Lvs_xsavec\@:
	xsavec64 (%rsp)
	jmp	.Lvs_xdone\@
.Lvs_xsave\@:
	xsave64	(%rsp)
.Lvs_xdone\@:
.endm

.macro VS_XRSTOR
	movl	$-1, %eax
	movl	$-1, %edx
	cmpl	$0, sd_xstate_mode(%rip)
	je	.Lvs_fxrstor\@
	xrstor64 (%rsp)
	jmp	.Lvs_rdone\@
.Lvs_fxrstor\@:
	fxrstor64 (%rsp)
.Lvs_rdone\@:
.endm

.macro VEC_SAVE kind
	movl	sd_vec_features(%rip), %r12d
	testl	$SD_VEC_FAST, %r12d
	jz	.Lvs_slow\@
	movl	$1, %ecx
	xgetbv				/* XINUSE & XCR0 */
	testl	%edx, %edx
	jnz	.Lvs_slow\@
	.if \kind == VS_ANYWHERE
	testl	$~(VS_KNOWN & ~1), %eax
	.else
	testl	$~VS_KNOWN, %eax
	.endif
	jnz	.Lvs_slow\@
	.if \kind == VS_RETURN
	testl	$1, %eax
	jz	.Lvs_fast\@
	movl	%eax, %ecx
	fnstsw	%ax
	testl	$0x3800, %eax		/* TOP 0: nothing returned on the x87 stack */
	movl	%ecx, %eax
	jnz	.Lvs_slow\@
	.endif
.Lvs_fast\@:
	shll	$8, %eax
	orl	%eax, %r12d
	subq	$VS_AREA, %rsp
	andq	$-64, %rsp
	stmxcsr	VS_MXCSR(%rsp)
	fnstsw	VS_FSW(%rsp)
	testl	$VS_IN_ZMMHI, %r12d
	jnz	.Lvs_z\@
	testl	$VS_IN_AVX, %r12d
	jnz	.Lvs_y\@
	VS_STORE movups, x, VS_LOW
	jmp	.Lvs_hi\@
.Lvs_y\@:
	VS_STORE vmovdqu, y, VS_LOW
	jmp	.Lvs_hi\@
.Lvs_z\@:
	VS_STORE vmovdqu64, z, VS_LOW
.Lvs_hi\@:
	testl	$SD_VEC_AVX512, %r12d
	jz	.Lvs_done\@
	.irp i, 0, 1, 2, 3, 4, 5, 6, 7
	kmovq	%k\i, (VS_K + \i * 8)(%rsp)
	.endr
	testl	$VS_IN_HI16, %r12d
	jz	.Lvs_done\@
	VS_STORE vmovdqu64, z, VS_HIGH
	jmp	.Lvs_done\@
.Lvs_slow\@:
	movq	$-1, %r12
	VS_XSAVE
.Lvs_done\@:
.endm

.macro VEC_RESTORE
	cmpq	$-1, %r12
	je	.Lvr_slow\@
	stmxcsr	VS_TMP(%rsp)
	movl	VS_TMP(%rsp), %eax
	cmpl	VS_MXCSR(%rsp), %eax
	je	.Lvr_fsw\@
	ldmxcsr	VS_MXCSR(%rsp)
.Lvr_fsw\@:
	fnstsw	%ax
	cmpw	VS_FSW(%rsp), %ax
	je	.Lvr_vec\@
	/* the handler raised x87 flags: put the status word back whole */
	fnstenv	VS_ENV(%rsp)
	movzwl	VS_FSW(%rsp), %eax
	movw	%ax, (VS_ENV + 4)(%rsp)
	fldenv	VS_ENV(%rsp)
.Lvr_vec\@:
	testl	$SD_VEC_AVX512, %r12d
	jz	.Lvr_low\@
	.irp i, 0, 1, 2, 3, 4, 5, 6, 7
	kmovq	(VS_K + \i * 8)(%rsp), %k\i
	.endr
	testl	$VS_IN_HI16, %r12d
	jz	.Lvr_zero16\@
	VS_LOAD vmovdqu64, z, VS_HIGH
	jmp	.Lvr_low\@
.Lvr_zero16\@:
	/* they were in their initial state, all zero */
	.irp i, VS_HIGH
	vpxord	%xmm\i, %xmm\i, %xmm\i
	.endr
.Lvr_low\@:
	testl	$VS_IN_ZMMHI, %r12d
	jnz	.Lvr_z\@
	testl	$VS_IN_AVX, %r12d
	jnz	.Lvr_y\@
	testl	$SD_VEC_AVX, %r12d
	jnz	.Lvr_x\@
	VS_LOAD movups, x, VS_LOW
	jmp	.Lvr_done\@
.Lvr_x\@:
	/* VEX.128 loads zero the upper halves a handler may have dirtied */
	VS_LOAD vmovdqu, x, VS_LOW
	jmp	.Lvr_done\@
.Lvr_y\@:
	VS_LOAD vmovdqu, y, VS_LOW
	jmp	.Lvr_done\@
.Lvr_z\@:
	VS_LOAD vmovdqu64, z, VS_LOW
	jmp	.Lvr_done\@
.Lvr_slow\@:
	VS_XRSTOR
.Lvr_done\@:
.endm

#endif /* __ASSEMBLER__ */
/* clang-format on */
#endif
