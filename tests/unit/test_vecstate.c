// SPDX-License-Identifier: MIT
/*
 * test_vecstate.c - a handler that clobbers every vector register, every
 * opmask register, the MXCSR and x87 status flags and the x87 stack leaves
 * the traced code's state as it was: at a function's entry, in the middle
 * of one, and at a kretprobe's return, for each width of vector state in
 * use (xmm only, ymm, zmm) and with values on the x87 stack.
 *
 * The oracle is the same call without a probe: vs_call() loads a state,
 * calls the target (which touches no vector or x87 register) and stores the
 * whole state again; with the probe it must store the same bytes.
 */
#include <cpuid.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <sonde/kprobes.h>

#include "check.h"

struct vstate {
	uint8_t z[32][64]; /* 0: zmm0-31 (ymm/xmm in their low bytes) */
	uint64_t k[8];	   /* 2048 */
	uint32_t mxcsr;	   /* 2112 */
	uint32_t width;	   /* 2116: 128, 256 or 512 bits of each register loaded */
	uint32_t x87push;  /* 2120: values pushed on the x87 stack before the call */
	uint32_t x87flag;  /* 2124: raise an x87 flag before (x87 in use, stack empty) */
	uint32_t x87pop;   /* 2128: values popped after (pushed + returned) */
	uint32_t avx512;   /* 2132 */
	int64_t x87in[4];  /* 2136 */
	int64_t x87out[4]; /* 2168 */
	uint8_t pad[8];
	uint8_t fx[512]; /* 2208: fxsave after the call */
} __attribute__((aligned(64)));

_Static_assert(__builtin_offsetof(struct vstate, fx) == 2208 + 0, "layout");

void vs_call(struct vstate *in, struct vstate *out, void (*fn)(void));
void vs_target(void);
void vs_target_mid(void);
void vs_ret_ld(void);

/*
 * vs_target: two instructions a jump may replace, at the entry and in the
 * middle; it touches only %eax. vs_ret_ld returns a long double (pi) on
 * the x87 stack.
 */
__asm__(
    ".text\n"
    ".globl vs_target, vs_target_mid, vs_ret_ld, vs_call\n"
    ".type vs_target, @function\n"
    "vs_target:\n"
    "	movl $1, %eax\n"
    ".globl vs_target_mid\n"
    "vs_target_mid:\n"
    "	movl $2, %eax\n"
    "	movl $3, %eax\n"
    "	ret\n"
    ".size vs_target, .-vs_target\n"
    ".type vs_ret_ld, @function\n"
    "vs_ret_ld:\n"
    "	movl $1, %eax\n"
    "	fldpi\n"
    "	ret\n"
    ".size vs_ret_ld, .-vs_ret_ld\n"
    ".type vs_call, @function\n"
    "vs_call:\n"
    "	push %rbx\n"
    "	push %r12\n"
    "	push %r13\n"
    "	mov %rdi, %rbx\n"
    "	mov %rsi, %r12\n"
    "	mov %rdx, %r13\n"
    "	cmpl $0, 2124(%rbx)\n"
    "	je 1f\n"
    "	fldz\n"
    "	fldz\n"
    "	fdivrp\n" /* 0/0: the invalid-operation flag */
    "	fstp %st(0)\n"
    "1:	xor %ecx, %ecx\n"
    "2:	cmpl 2120(%rbx), %ecx\n"
    "	jae 3f\n"
    "	fildq 2136(%rbx,%rcx,8)\n"
    "	inc %ecx\n"
    "	jmp 2b\n"
    "3:	ldmxcsr 2112(%rbx)\n"
    "	cmpl $0, 2132(%rbx)\n"
    "	je 4f\n"
    "	.irp i, 0, 1, 2, 3, 4, 5, 6, 7\n"
    "	kmovq (2048 + \\i * 8)(%rbx), %k\\i\n"
    "	.endr\n"
    "4:	cmpl $512, 2116(%rbx)\n"
    "	jne 5f\n"
    "	.irp i, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, "
    "22, 23, 24, 25, 26, 27, 28, 29, 30, 31\n"
    "	vmovdqu64 (\\i * 64)(%rbx), %zmm\\i\n"
    "	.endr\n"
    "	jmp 7f\n"
    "5:	vzeroupper\n"
    "	cmpl $0, 2132(%rbx)\n"
    "	je 12f\n"
    "	.irp i, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31\n"
    "	vpxord %xmm\\i, %xmm\\i, %xmm\\i\n"
    "	.endr\n"
    "12:	cmpl $256, 2116(%rbx)\n"
    "	jne 6f\n"
    "	.irp i, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15\n"
    "	vmovdqu (\\i * 64)(%rbx), %ymm\\i\n"
    "	.endr\n"
    "	jmp 7f\n"
    "6:	.irp i, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15\n"
    "	vmovdqu (\\i * 64)(%rbx), %xmm\\i\n"
    "	.endr\n"
    "7:	call *%r13\n"
    "	cmpl $0, 2132(%rbx)\n"
    "	je 8f\n"
    "	.irp i, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, "
    "22, 23, 24, 25, 26, 27, 28, 29, 30, 31\n"
    "	vmovdqu64 %zmm\\i, (\\i * 64)(%r12)\n"
    "	.endr\n"
    "	.irp i, 0, 1, 2, 3, 4, 5, 6, 7\n"
    "	kmovq %k\\i, (2048 + \\i * 8)(%r12)\n"
    "	.endr\n"
    "	jmp 9f\n"
    "8:	.irp i, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15\n"
    "	vmovdqu %ymm\\i, (\\i * 64)(%r12)\n"
    "	.endr\n"
    "9:	stmxcsr 2112(%r12)\n"
    "	fxsave64 2208(%r12)\n"
    "	xor %ecx, %ecx\n"
    "10:	cmpl 2128(%rbx), %ecx\n"
    "	jae 11f\n"
    "	fistpq 2168(%r12,%rcx,8)\n"
    "	inc %ecx\n"
    "	jmp 10b\n"
    "11:	test %ecx, %ecx\n"
    "	jz 13f\n"
    "	fnclex\n" /* fistp may round: leave no flag for the next call */
    "13:	vzeroupper\n"
    "	pop %r13\n"
    "	pop %r12\n"
    "	pop %rbx\n"
    "	ret\n"
    ".size vs_call, .-vs_call\n");

static bool has_avx512;
static long hits;
static long fast_frames; /* handler frames close enough to regs to be the fast path */
static long xsave_bytes; /* what the whole state takes (XSAVE, standard form) */

/* every register the ABI lets a C function clobber, and the x87 stack */
static void clobber(const void *regs)
{
	uint32_t mx;
	long dist = (const char *)regs - (const char *)__builtin_frame_address(0);

	hits++;
	if (dist < 4096)
		fast_frames++;
	if (has_avx512) {
		__asm__ volatile(
		    ".irp i, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, "
		    "17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31\n"
		    "vpternlogd $0xff, %%zmm\\i, %%zmm\\i, %%zmm\\i\n"
		    ".endr\n"
		    ".irp i, 0, 1, 2, 3, 4, 5, 6, 7\n"
		    "kxnorq %%k\\i, %%k\\i, %%k\\i\n"
		    ".endr\n" ::
			: "memory");
	} else {
		/* dirty upper halves, left so on purpose (no vzeroupper) */
		__asm__ volatile(".irp i, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15\n"
				 "vpcmpeqd %%ymm\\i, %%ymm\\i, %%ymm\\i\n"
				 ".endr\n" ::
				     : "memory");
	}
	/* MXCSR status flags up, x87 flags cleared, eight values through the x87 stack */
	__asm__ volatile("stmxcsr %0\n" : "=m"(mx));
	mx |= 0x3f;
	__asm__ volatile("ldmxcsr %0\n"
			 "fnclex\n"
			 ".rept 8\n fldpi\n .endr\n"
			 ".rept 8\n fstp %%st(0)\n .endr\n" ::"m"(mx)
			 : "memory");
}

static int clobber_pre(struct sonde_kprobe *p, struct sonde_regs *regs)
{
	(void)p;
	clobber(regs);
	return 0;
}

static int clobber_ret(struct sonde_kretprobe_instance *ri, struct sonde_regs *regs)
{
	(void)ri;
	clobber(regs);
	return 0;
}

static void fill(struct vstate *in, unsigned int width, unsigned int push, bool flag)
{
	uint64_t x = 0x9e3779b97f4a7c15ull;

	memset(in, 0, sizeof(*in));
	for (int r = 0; r < 32; r++)
		for (unsigned int b = 0; b < 64; b++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			/* what is not loaded must read back as zero */
			if (b < width / 8 && (r < 16 || has_avx512))
				in->z[r][b] = (uint8_t)x;
		}
	for (int i = 0; i < 8; i++)
		in->k[i] = 0x0123456789abcdefull * (uint64_t)(i + 1);
	in->mxcsr = 0x1f80; /* the default: all masked, no flag */
	in->width = width;
	in->x87push = push;
	in->x87pop = push;
	in->x87flag = flag;
	in->avx512 = has_avx512;
	for (unsigned int i = 0; i < push; i++)
		in->x87in[i] = 1000 + i;
}

/*
 * fxsave: FCW FSW FTW (a bit per physical register, set when it holds a
 * value), then ST0-7 (10 bytes each in 16); an empty register's bytes are
 * garbage that anyone may change
 */
static void check_same(const struct vstate *a, const struct vstate *b)
{
	for (int r = 0; r < (has_avx512 ? 32 : 16); r++)
		for (int i = 0; i < (has_avx512 ? 64 : 32); i++)
			if (a->z[r][i] != b->z[r][i])
				check_fail(__FILE__, __LINE__,
					   "vector register %d byte %d: %#x, not %#x", r, i,
					   b->z[r][i], a->z[r][i]);
	if (has_avx512)
		for (int i = 0; i < 8; i++)
			CHECK_EQ(b->k[i], a->k[i]);
	CHECK_EQ(b->mxcsr, a->mxcsr);
	CHECK_EQ(*(uint16_t *)b->fx, *(uint16_t *)a->fx);	      /* FCW */
	CHECK_EQ(*(uint16_t *)(b->fx + 2), *(uint16_t *)(a->fx + 2)); /* FSW */
	CHECK_EQ(b->fx[4], a->fx[4]);				      /* FTW */
	for (int i = 0; i < 8; i++) {
		int top = (a->fx[3] >> 3) & 7;

		if (a->fx[4] & (1u << ((top + i) & 7)))
			CHECK(!memcmp(b->fx + 32 + 16 * i, a->fx + 32 + 16 * i, 10));
	}
	for (int i = 0; i < 4; i++)
		CHECK_EQ(b->x87out[i], a->x87out[i]);
}

static void setup(void)
{
	unsigned int a, b, c, d;

	if (!__builtin_cpu_supports("avx"))
		SKIP("the CPU has no AVX: the state this test loads needs it");
	has_avx512 = __builtin_cpu_supports("avx512f");
	__cpuid_count(0xd, 0, a, b, c, d);
	xsave_bytes = b;
	sonde_set_kprobe_optimization(1);
}

static struct vstate in, plain, probed;

/* one state through fn without the probe: the oracle */
static void run_plain(void (*fn)(void), unsigned int width, unsigned int push, bool flag,
		      unsigned int returned)
{
	fill(&in, width, push, flag);
	in.x87pop = push + returned;
	memset(&plain, 0, sizeof(plain));
	memset(&probed, 0, sizeof(probed));
	vs_call(&in, &plain, fn);
}

/* ... and with it: the same state must come out */
static void run_probed(void (*fn)(void), bool want_fast)
{
	hits = 0;
	fast_frames = 0;
	vs_call(&in, &probed, fn);
	CHECK_EQ(hits, 1);
	check_same(&plain, &probed);
	/* the values really went through the stack and came back */
	for (unsigned int i = 0; i < in.x87push; i++)
		CHECK_EQ(probed.x87out[in.x87pop - in.x87push + i],
			 1000 + (int)(in.x87push - 1 - i));
	/* where the whole state is big, the handler's frame tells which path ran */
	if (xsave_bytes > 5000) {
		long want = want_fast ? 1 : 0;

		CHECK_EQ(fast_frames, want);
	}
}

/* the x87 state back to its initial configuration, so that XINUSE says it is unused */
static void x87_init(void)
{
	static uint8_t area[1024] __attribute__((aligned(64)));

	memset(area, 0, sizeof(area));
	__asm__ volatile("xrstor64 %0" ::"m"(area), "a"(1), "d"(0));
}

static void with_kprobe(void *addr, void (*fn)(void), unsigned int width, unsigned int push,
			bool flag, bool want_fast)
{
	struct sonde_kprobe kp;

	setup();
	run_plain(fn, width, push, flag, 0);
	memset(&kp, 0, sizeof(kp));
	kp.addr = addr;
	kp.pre_handler = clobber_pre;
	CHECK_EQ(sonde_register_kprobe(&kp), 0);
	sonde_wait_kprobe_optimizer();
	CHECK(kp.flags & SONDE_KPROBE_FLAG_OPTIMIZED);
	if (!flag && !push)
		x87_init();
	run_probed(fn, want_fast);
	sonde_unregister_kprobe(&kp);
}

TEST(entry_zmm)
{
	with_kprobe((void *)vs_target, vs_target, 512, 0, true, true);
}

TEST(entry_ymm)
{
	with_kprobe((void *)vs_target, vs_target, 256, 0, true, true);
}

TEST(entry_xmm_upper_halves_stay_zero)
{
	with_kprobe((void *)vs_target, vs_target, 128, 0, true, true);
}

TEST(mid_xmm_without_x87)
{
	with_kprobe((void *)vs_target_mid, vs_target, 128, 0, false, true);
}

TEST(mid_zmm_with_values_on_the_x87_stack)
{
	/* x87 in use in the middle of a function: the whole state is saved */
	with_kprobe((void *)vs_target_mid, vs_target, 512, 3, false, false);
}

static void with_kretprobe(void (*fn)(void), unsigned int width, unsigned int returned,
			   bool want_fast)
{
	struct sonde_kretprobe rp;

	setup();
	run_plain(fn, width, 0, true, returned);
	memset(&rp, 0, sizeof(rp));
	rp.kp.addr = (void *)fn;
	rp.handler = clobber_ret;
	CHECK_EQ(sonde_register_kretprobe(&rp), 0);
	sonde_wait_kprobe_optimizer();
	run_probed(fn, want_fast);
	sonde_unregister_kretprobe(&rp);
}

TEST(return_zmm)
{
	with_kretprobe(vs_target, 512, 0, true);
}

TEST(return_xmm)
{
	with_kretprobe(vs_target, 128, 0, true);
}

TEST(return_long_double_on_the_x87_stack)
{
	with_kretprobe(vs_ret_ld, 512, 1, false);
	CHECK_EQ(probed.x87out[0], 3); /* pi, rounded */
}
