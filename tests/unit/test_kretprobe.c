// SPDX-License-Identifier: MIT
/*
 * test_kretprobe.c - kretprobes through the public API only.
 *
 * Targets are functions of this program that the compiler may neither
 * inline, clone nor fold (noinline, noclone, an empty asm volatile); the
 * caller's view of every value is compared with what the handlers saw.
 * Handlers run in a signal handler or on the returning thread's stack, so
 * they only record; the test body checks. The tests also check that the
 * probed functions' first bytes are back as they were once everything is
 * unregistered.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sonde/kprobes.h>

#include "check.h"

/*
 * Targets: never inlined, cloned or folded. OPAQUE() in each also tells the
 * compiler the call may read and write any memory, so that the counters the
 * handlers update are read again after each call.
 */
#define TARGET	    __attribute__((noinline, noclone, used))
#define OPAQUE()    asm volatile("" ::: "memory")
#define OPAQUE_R(r) asm volatile("" : "+r"(r)::"memory")

/* ------------------------------------------------------------------------- */
/* helpers */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static bool contains(const char *hay, const char *needle)
{
	return hay && strstr(hay, needle);
}

#define CHECK_MSG(needle)                                                                          \
	do {                                                                                       \
		const char *m_ = sonde_last_error();                                               \
		if (!contains(m_, needle))                                                         \
			check_fail(__FILE__, __LINE__, "error \"%s\" does not mention \"%s\"", m_, \
				   needle);                                                        \
	} while (0)

#define REG_OK(rp)                                                                         \
	do {                                                                               \
		int err_ = sonde_register_kretprobe(rp);                                   \
		if (err_)                                                                  \
			check_fail(__FILE__, __LINE__,                                     \
				   "sonde_register_kretprobe(%s): %d (%s): %s", #rp, err_, \
				   sonde_strerror(err_), sonde_last_error());              \
	} while (0)

static void krp_init(struct sonde_kretprobe *rp, void *fn, sonde_kretprobe_handler_t handler,
		     sonde_kretprobe_handler_t entry, size_t data_size, int maxactive)
{
	memset(rp, 0, sizeof(*rp));
	rp->kp.addr = fn;
	rp->handler = handler;
	rp->entry_handler = entry;
	rp->data_size = data_size;
	rp->maxactive = maxactive;
}

static int nmissed(const struct sonde_kretprobe *rp)
{
	return __atomic_load_n(&rp->nmissed, __ATOMIC_SEQ_CST);
}

/* the first bytes of functions, to compare once the probes are gone */
#define SNAP_LEN 16
#define SNAP_MAX 8

static struct {
	const void *fn;
	unsigned char b[SNAP_LEN];
} snaps[SNAP_MAX];
static int nsnaps;

static void snap(const void *fn)
{
	CHECK(nsnaps < SNAP_MAX);
	snaps[nsnaps].fn = fn;
	memcpy(snaps[nsnaps].b, fn, SNAP_LEN);
	nsnaps++;
}

static void snap_check(void)
{
	for (int i = 0; i < nsnaps; i++)
		if (memcmp(snaps[i].b, snaps[i].fn, SNAP_LEN))
			check_fail(__FILE__, __LINE__, "%p: code not restored after unregister",
				   snaps[i].fn);
}

static long atomic_get(long *p)
{
	return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}

static void atomic_inc(long *p)
{
	__atomic_add_fetch(p, 1, __ATOMIC_SEQ_CST);
}

/* ------------------------------------------------------------------------- */
/* targets */

long krt_add3(long x);
TARGET long krt_add3(long x)
{
	OPAQUE();
	return x * 3 + 7;
}

long krt_wrap_add3(long x);
TARGET long krt_wrap_add3(long x)
{
	long r = krt_add3(x);

	OPAQUE_R(r);
	return r;
}

double krt_dbl(double x);
TARGET double krt_dbl(double x)
{
	OPAQUE();
	return x * 1.5 + 0.25;
}

struct krt_pair {
	long a, b;
};

struct krt_pair krt_pair(long x);
TARGET struct krt_pair krt_pair(long x)
{
	struct krt_pair p = {x + 11, x * 2 - 5};

	asm volatile("" : "+r"(p.a), "+r"(p.b)::"memory");
	return p;
}

struct krt_dpair {
	double a, b;
};

struct krt_dpair krt_dpair(double x);
TARGET struct krt_dpair krt_dpair(double x)
{
	struct krt_dpair p = {x + 0.5, x * -3.0};

	OPAQUE();
	return p;
}

long double krt_ldbl(long double x);
TARGET long double krt_ldbl(long double x)
{
	OPAQUE();
	return x * 2.5L + 1.0L;
}

/* ------------------------------------------------------------------------- */
/* 1. return values */

#define NREC 64

static struct {
	long calls, entries;
	uint64_t ax[NREC], dx[NREC];
	uint64_t ip[NREC], sp[NREC];
	void *ret_addr[NREC], *stack[NREC];
} rec;

static int rec_handler(struct sonde_kretprobe_instance *ri, struct sonde_regs *regs)
{
	long i = rec.calls;

	if (i < NREC) {
		rec.ax[i] = sonde_regs_return_value(regs);
		rec.dx[i] = regs->dx;
		rec.ip[i] = regs->ip;
		rec.sp[i] = regs->sp;
		rec.ret_addr[i] = ri->ret_addr;
		rec.stack[i] = ri->stack;
	}
	rec.calls = i + 1;
	return 0;
}

static int rec_entry(struct sonde_kretprobe_instance *ri, struct sonde_regs *regs)
{
	rec.entries++;
	return 0;
}

static const long inputs[] = {0, 1, -1, 2, 42, -1000, 123456789, -987654321, 1L << 40};
#define NINPUTS ((int)(sizeof(inputs) / sizeof(inputs[0])))

TEST(retval_int)
{
	struct sonde_kretprobe rp;
	long got[NINPUTS];

	snap((void *)krt_add3);
	/* by name, the common way */
	krp_init(&rp, NULL, rec_handler, rec_entry, 0, 0);
	rp.kp.symbol_name = "krt_add3";
	REG_OK(&rp);
	CHECK(rp.kp.addr == (void *)krt_add3);
	for (int i = 0; i < NINPUTS; i++)
		got[i] = krt_add3(inputs[i]);
	CHECK_EQ(rec.calls, NINPUTS);
	CHECK_EQ(rec.entries, NINPUTS);
	for (int i = 0; i < NINPUTS; i++) {
		CHECK_EQ(got[i], inputs[i] * 3 + 7);
		CHECK_EQ(rec.ax[i], got[i]);
		/* regs at return: ip is where the function returns to, sp the caller's */
		CHECK_EQ(rec.ip[i], (uint64_t)rec.ret_addr[i]);
		CHECK_EQ(rec.sp[i], (uint64_t)rec.stack[i] + 8);
	}
	CHECK_EQ(nmissed(&rp), 0);
	sonde_unregister_kretprobe(&rp);
	CHECK_EQ(krt_add3(5), 22);
	CHECK_EQ(rec.calls, NINPUTS);
	snap_check();
}

static long nop_calls;

static int nop_handler2(struct sonde_kretprobe_instance *ri, struct sonde_regs *regs)
{
	nop_calls++;
	return 0;
}

static int dbl_handler(struct sonde_kretprobe_instance *ri, struct sonde_regs *regs)
{
	rec.calls++;
	return 0;
}

TEST(retval_double)
{
	static const double in[] = {0.0, 1.0, -2.75, 1e300, -1e-300, 3.141592653589793};
	struct sonde_kretprobe rp;

	snap((void *)krt_dbl);
	krp_init(&rp, (void *)krt_dbl, dbl_handler, NULL, 0, 0);
	REG_OK(&rp);
	for (int round = 0; round < 10; round++)
		for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
			volatile double r = krt_dbl(in[i]);

			CHECK(r == in[i] * 1.5 + 0.25);
		}
	CHECK_EQ(rec.calls, 10 * (long)(sizeof(in) / sizeof(in[0])));
	sonde_unregister_kretprobe(&rp);
	snap_check();
}

TEST(retval_struct_rax_rdx)
{
	struct sonde_kretprobe rp;

	snap((void *)krt_pair);
	krp_init(&rp, (void *)krt_pair, rec_handler, NULL, 0, 0);
	REG_OK(&rp);
	for (int i = 0; i < NINPUTS; i++) {
		struct krt_pair p = krt_pair(inputs[i]);

		CHECK_EQ(p.a, inputs[i] + 11);
		CHECK_EQ(p.b, inputs[i] * 2 - 5);
		/* the handler sees both halves where the ABI puts them */
		CHECK_EQ(rec.ax[i], p.a);
		CHECK_EQ(rec.dx[i], p.b);
	}
	CHECK_EQ(rec.calls, NINPUTS);
	sonde_unregister_kretprobe(&rp);
	snap_check();
}

TEST(retval_struct_xmm0_xmm1)
{
	struct sonde_kretprobe rp;

	snap((void *)krt_dpair);
	krp_init(&rp, (void *)krt_dpair, dbl_handler, NULL, 0, 0);
	REG_OK(&rp);
	for (int i = 0; i < 100; i++) {
		double x = i * 0.75 - 20.0;
		struct krt_dpair p = krt_dpair(x);

		CHECK(p.a == x + 0.5);
		CHECK(p.b == x * -3.0);
	}
	CHECK_EQ(rec.calls, 100);
	sonde_unregister_kretprobe(&rp);
	snap_check();
}

/* a handler that does x87 arithmetic of its own, as any C handler may */
static volatile long double ld_sink;

static int ldbl_handler(struct sonde_kretprobe_instance *ri, struct sonde_regs *regs)
{
	ld_sink = ld_sink * 1.0000001L + 3.0L;
	rec.calls++;
	return 0;
}

TEST(retval_long_double)
{
	struct sonde_kretprobe rp;

	snap((void *)krt_ldbl);
	krp_init(&rp, (void *)krt_ldbl, ldbl_handler, NULL, 0, 0);
	REG_OK(&rp);
	for (int i = 0; i < 100; i++) {
		long double x = i * 0.125L - 3.0L;
		volatile long double r = krt_ldbl(x);

		CHECK(r == x * 2.5L + 1.0L);
	}
	CHECK_EQ(rec.calls, 100);
	sonde_unregister_kretprobe(&rp);
	snap_check();
}

/* the handler may change the return value; the caller must see the change */
static int change_handler(struct sonde_kretprobe_instance *ri, struct sonde_regs *regs)
{
	long arg;

	memcpy(&arg, ri->data, sizeof(arg));
	rec.calls++;
	if (arg % 3 == 0)
		regs->ax = (uint64_t)(-arg - 1000000);
	return 0;
}

static int arg_entry(struct sonde_kretprobe_instance *ri, struct sonde_regs *regs)
{
	long arg = (long)sonde_regs_arg(regs, 0);

	memcpy(ri->data, &arg, sizeof(arg));
	rec.entries++;
	return 0;
}

TEST(retval_changed_by_handler)
{
	struct sonde_kretprobe rp;

	snap((void *)krt_add3);
	krp_init(&rp, (void *)krt_add3, change_handler, arg_entry, sizeof(long), 0);
	REG_OK(&rp);
	for (long x = -30; x <= 30; x++) {
		long r = krt_wrap_add3(x);

		if (x % 3 == 0)
			CHECK_EQ(r, -x - 1000000);
		else
			CHECK_EQ(r, x * 3 + 7);
	}
	CHECK_EQ(rec.calls, 61);
	CHECK_EQ(rec.entries, 61);
	sonde_unregister_kretprobe(&rp);
	CHECK_EQ(krt_wrap_add3(3), 16);
	snap_check();
}

/*
 * Registers the calling convention calls "not preserved" are preserved in
 * practice across a call when the compiler can see the callee does not touch
 * them (GCC's -fipa-ra, on at -O2): the caller below may keep values in
 * %xmm2..%xmm15 across the call to krt_ipa_leaf. A return handler is free to
 * use those registers (this one does, as any C code may), so the trampoline
 * must put them back.
 */
long krt_ipa_leaf(long x);
TARGET long krt_ipa_leaf(long x)
{
	OPAQUE();
	return (long)((unsigned long)x + 1); /* no overflow check: no call */
}

/*
 * Built here (GCC 12, -O2) as: b, c, d, e stay in %xmm1..%xmm4 across the
 * call, nothing is spilled.
 */
double krt_ipa_caller(double a, double b, double c, double d, double e, long n);
TARGET double krt_ipa_caller(double a, double b, double c, double d, double e, long n)
{
	long r = krt_ipa_leaf(n);

	return (a + b * 2.0 + c * 3.0 + d * 4.0 + e * 5.0) * (double)r;
}

static int clobber_handler(struct sonde_kretprobe_instance *ri, struct sonde_regs *regs)
{
	rec.calls++;
	asm volatile("pcmpeqd %%xmm2, %%xmm2\n\t"
		     "pcmpeqd %%xmm3, %%xmm3\n\t"
		     "pcmpeqd %%xmm4, %%xmm4\n\t"
		     "pcmpeqd %%xmm5, %%xmm5\n\t"
		     "pcmpeqd %%xmm6, %%xmm6\n\t"
		     "pcmpeqd %%xmm7, %%xmm7\n\t"
		     "pcmpeqd %%xmm8, %%xmm8\n\t"
		     "pcmpeqd %%xmm9, %%xmm9\n\t"
		     "pcmpeqd %%xmm10, %%xmm10\n\t"
		     "pcmpeqd %%xmm11, %%xmm11\n\t"
		     "pcmpeqd %%xmm12, %%xmm12\n\t"
		     "pcmpeqd %%xmm13, %%xmm13\n\t"
		     "pcmpeqd %%xmm14, %%xmm14\n\t"
		     "pcmpeqd %%xmm15, %%xmm15\n\t" ::
			 : "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
			   "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
	return 0;
}

static double ipa_expected(double a, double b, double c, double d, double e, long n)
{
	return (a + b * 2.0 + c * 3.0 + d * 4.0 + e * 5.0) * (double)(n + 1);
}

TEST(retval_caller_vector_regs_kept)
{
	struct sonde_kretprobe rp;
	double want[20], got[20];

	for (int i = 0; i < 20; i++)
		want[i] = krt_ipa_caller(i + 0.5, i * 2.0, 3.25, -i, 7.0, i);
	snap((void *)krt_ipa_leaf);
	krp_init(&rp, (void *)krt_ipa_leaf, clobber_handler, NULL, 0, 0);
	REG_OK(&rp);
	for (int i = 0; i < 20; i++)
		got[i] = krt_ipa_caller(i + 0.5, i * 2.0, 3.25, -i, 7.0, i);
	sonde_unregister_kretprobe(&rp);
	CHECK_EQ(rec.calls, 20);
	for (int i = 0; i < 20; i++) {
		CHECK(want[i] == ipa_expected(i + 0.5, i * 2.0, 3.25, -i, 7.0, i));
		if (got[i] != want[i])
			check_fail(__FILE__, __LINE__,
				   "call %d: caller computed %g with the probe, %g without", i,
				   got[i], want[i]);
	}
	snap_check();
}

SONDE_NOFPU static int count_nofpu(struct sonde_kretprobe_instance *ri, struct sonde_regs *regs)
{
	rec.calls++;
	return 0;
}

/*
 * A SONDE_KPROBE_FLAG_NOFPU kretprobe: no vector state is saved at entry or
 * return, and none is needed: a double comes back in %xmm0 and the caller's
 * values kept in vector registers across the call (-fipa-ra) survive.
 */
TEST(nofpu_kretprobe_keeps_vector_regs)
{
	static const double in[] = {0.0, 1.0, -2.75, 1e300, 3.141592653589793};
	struct sonde_kretprobe rp;
	double want[20];

	for (int i = 0; i < 20; i++)
		want[i] = krt_ipa_caller(i + 0.5, i * 2.0, 3.25, -i, 7.0, i);
	snap((void *)krt_dbl);
	krp_init(&rp, (void *)krt_dbl, count_nofpu, NULL, 0, 0);
	rp.kp.flags = SONDE_KPROBE_FLAG_NOFPU;
	REG_OK(&rp);
	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		volatile double r = krt_dbl(in[i]);

		CHECK(r == in[i] * 1.5 + 0.25);
	}
	CHECK_EQ(rec.calls, (long)(sizeof(in) / sizeof(in[0])));
	sonde_unregister_kretprobe(&rp);
	snap_check();

	rec.calls = 0;
	snap((void *)krt_ipa_leaf);
	krp_init(&rp, (void *)krt_ipa_leaf, count_nofpu, NULL, 0, 0);
	rp.kp.flags = SONDE_KPROBE_FLAG_NOFPU;
	REG_OK(&rp);
	for (int i = 0; i < 20; i++) {
		double got = krt_ipa_caller(i + 0.5, i * 2.0, 3.25, -i, 7.0, i);

		if (got != want[i])
			check_fail(__FILE__, __LINE__, "call %d: %g with the probe, %g without", i,
				   got, want[i]);
	}
	CHECK_EQ(rec.calls, 20);
	sonde_unregister_kretprobe(&rp);
	snap_check();
}

/*
 * AVX: a __m256d comes back in %ymm0. A handler that runs any AVX code of
 * libc (memcpy, strlen...) ends with vzeroupper, which clears the upper
 * halves of every ymm register; this one does it directly.
 */
typedef double krt_v4d __attribute__((vector_size(32)));

krt_v4d krt_avx(double x);
__attribute__((noinline, noclone, used, target("avx"))) krt_v4d krt_avx(double x)
{
	krt_v4d v = {x, x + 1.0, x + 2.0, x + 3.0};

	asm volatile("" : "+x"(v)::"memory");
	return v;
}

__attribute__((noinline, noclone, target("avx"))) static void avx_call(double x, double out[4])
{
	krt_v4d v = krt_avx(x);

	memcpy(out, &v, sizeof(v));
}

__attribute__((target("avx"))) static int vzu_handler(struct sonde_kretprobe_instance *ri,
						      struct sonde_regs *regs)
{
	rec.calls++;
	asm volatile("vzeroupper" ::
			 : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8",
			   "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
	return 0;
}

TEST(retval_avx_ymm0)
{
	struct sonde_kretprobe rp;
	double out[4];

	__builtin_cpu_init();
	if (!__builtin_cpu_supports("avx"))
		SKIP("no AVX on this CPU");
	snap((void *)krt_avx);
	krp_init(&rp, (void *)krt_avx, vzu_handler, NULL, 0, 0);
	REG_OK(&rp);
	for (int i = 0; i < 10; i++) {
		avx_call(i * 10.0, out);
		for (int k = 0; k < 4; k++)
			if (out[k] != i * 10.0 + k)
				check_fail(__FILE__, __LINE__,
					   "call %d: lane %d of the returned vector is %g, not %g",
					   i, k, out[k], i * 10.0 + k);
	}
	CHECK_EQ(rec.calls, 10);
	sonde_unregister_kretprobe(&rp);
	snap_check();
}

/* the entry handler may change the arguments, as a kprobe pre_handler may */
static int arg_change_entry(struct sonde_kretprobe_instance *ri, struct sonde_regs *regs)
{
	if (regs->di == 5)
		regs->di = 100;
	return 0;
}

TEST(entry_handler_changes_args)
{
	struct sonde_kretprobe rp;

	snap((void *)krt_add3);
	krp_init(&rp, (void *)krt_add3, rec_handler, arg_change_entry, 0, 0);
	REG_OK(&rp);
	CHECK_EQ(krt_wrap_add3(4), 19);
	CHECK_EQ(krt_wrap_add3(5), 307);
	CHECK_EQ(krt_wrap_add3(6), 25);
	CHECK_EQ(rec.calls, 3);
	CHECK_EQ(rec.ax[1], 307);
	sonde_unregister_kretprobe(&rp);
	CHECK_EQ(krt_wrap_add3(5), 22);
	snap_check();
}

/* functions of a shared library, by name: a plain one and an IFUNC */
TEST(libc_functions_by_name)
{
	struct sonde_kretprobe a, b;
	size_t (*volatile my_strlen)(const char *) = strlen;
	pid_t (*volatile my_getppid)(void) = getppid;
	static const char *strs[] = {"", "a", "hello, world", "0123456789abcdefghijklmnopqrstuv"};
	pid_t ppid = getppid();

	krp_init(&a, NULL, rec_handler, NULL, 0, 0);
	a.kp.symbol_name = "getppid";
	krp_init(&b, NULL, nop_handler2, NULL, 0, 0);
	b.kp.symbol_name = "libc.so.6:strlen";
	snap((void *)getppid);
	REG_OK(&a);
	REG_OK(&b);
	CHECK(a.kp.addr == (void *)getppid);
	CHECK_EQ(my_getppid(), ppid);
	CHECK_EQ(rec.calls, 1);
	CHECK_EQ(rec.ax[0], ppid);
	for (int i = 0; i < 4; i++) {
		long before = nop_calls;
		size_t n = my_strlen(strs[i]);

		CHECK_EQ(n, __builtin_strlen(strs[i]));
		CHECK(nop_calls > before);
	}
	CHECK_EQ(nmissed(&a), 0);
	CHECK_EQ(nmissed(&b), 0);
	sonde_unregister_kretprobe(&b);
	sonde_unregister_kretprobe(&a);
	snap_check();
}

/* ------------------------------------------------------------------------- */
/* 2. entry-to-return time, ret_addr, stack */

static void *nap_ret_addr, *nap_slot;

long krt_nap(long ms);
TARGET long krt_nap(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	long r;

	/* with a kretprobe the slot already holds the trampoline: record the slot */
	nap_slot = (char *)__builtin_frame_address(0) + 8;
	nap_ret_addr = __builtin_return_address(0);
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
	r = ms + 100;
	OPAQUE_R(r);
	return r;
}

long krt_nap_site(long ms);
TARGET long krt_nap_site(long ms)
{
	long r = krt_nap(ms);

	OPAQUE_R(r);
	return r;
}

struct timing {
	uint64_t t0;
	long arg;
};

static struct {
	long calls;
	uint64_t elapsed;
	long ax, arg;
	void *ret_addr, *stack;
} tm;

static int tm_entry(struct sonde_kretprobe_instance *ri, struct sonde_regs *regs)
{
	struct timing *d = (struct timing *)ri->data;

	d->t0 = now_ns();
	d->arg = (long)sonde_regs_arg(regs, 0);
	return 0;
}

static int tm_handler(struct sonde_kretprobe_instance *ri, struct sonde_regs *regs)
{
	struct timing *d = (struct timing *)ri->data;

	tm.elapsed = now_ns() - d->t0;
	tm.arg = d->arg;
	tm.ax = (long)regs->ax;
	tm.ret_addr = ri->ret_addr;
	tm.stack = ri->stack;
	tm.calls++;
	return 0;
}

TEST(entry_to_return_time)
{
	struct sonde_kretprobe rp;
	void *real_ret, *real_slot;
	long r;

	/* unprobed: where krt_nap returns to from krt_nap_site */
	CHECK_EQ(krt_nap_site(0), 100);
	real_ret = nap_ret_addr;

	snap((void *)krt_nap);
	krp_init(&rp, (void *)krt_nap, tm_handler, tm_entry, sizeof(struct timing), 0);
	REG_OK(&rp);
	for (int i = 0; i < 3; i++) {
		r = krt_nap_site(20);
		real_slot = nap_slot;
		CHECK_EQ(r, 120);
		CHECK_EQ(tm.calls, i + 1);
		CHECK_EQ(tm.ax, 120);
		CHECK_EQ(tm.arg, 20);
		if (tm.elapsed < 20000000ULL || tm.elapsed >= 2000000000ULL)
			check_fail(__FILE__, __LINE__, "entry to return took %" PRIu64 " ns",
				   tm.elapsed);
		CHECK(tm.ret_addr == real_ret);
		CHECK(tm.stack == real_slot);
		/* the function saw its return address already replaced */
		CHECK(nap_ret_addr != real_ret);
	}
	/* a short call measures short */
	r = krt_nap_site(0);
	CHECK_EQ(r, 100);
	CHECK(tm.elapsed < 20000000ULL);
	CHECK_EQ(nmissed(&rp), 0);
	sonde_unregister_kretprobe(&rp);
	snap_check();
}

/* ------------------------------------------------------------------------- */
/* 3. entry_handler returning nonzero */

static struct {
	long entries, calls, bad;
	long seen[128];
} sk;

static int skip_entry(struct sonde_kretprobe_instance *ri, struct sonde_regs *regs)
{
	long arg = (long)sonde_regs_arg(regs, 0);

	sk.entries++;
	memcpy(ri->data, &arg, sizeof(arg));
	return arg & 1; /* odd: do not hook */
}

static int skip_handler(struct sonde_kretprobe_instance *ri, struct sonde_regs *regs)
{
	long arg;

	memcpy(&arg, ri->data, sizeof(arg));
	if ((arg & 1) || (long)regs->ax != arg * 3 + 7)
		sk.bad++;
	if (sk.calls < 128)
		sk.seen[sk.calls] = arg;
	sk.calls++;
	return 0;
}

TEST(entry_handler_skips)
{
	struct sonde_kretprobe rp;

	snap((void *)krt_add3);
	/* one instance: a skipped call must give it back at once */
	krp_init(&rp, (void *)krt_add3, skip_handler, skip_entry, sizeof(long), 1);
	REG_OK(&rp);
	for (long x = 0; x < 100; x++)
		CHECK_EQ(krt_wrap_add3(x), x * 3 + 7);
	CHECK_EQ(sk.entries, 100);
	CHECK_EQ(sk.calls, 50);
	CHECK_EQ(sk.bad, 0);
	for (long i = 0; i < 50; i++)
		CHECK_EQ(sk.seen[i], 2 * i);
	CHECK_EQ(nmissed(&rp), 0);
	sonde_unregister_kretprobe(&rp);
	snap_check();
}

/* ------------------------------------------------------------------------- */
/* 4. recursion */

long krt_rec(long n);
TARGET long krt_rec(long n)
{
	long r;

	OPAQUE();
	if (n == 0)
		return 0;
	r = krt_rec(n - 1);
	OPAQUE_R(r); /* no accumulator loop: real recursion */
	return r + n;
}

#define DEPTH 1000

static struct {
	long entries, calls, bad_pair;
	long ax[DEPTH + 1];
	long arg[DEPTH + 1];
} rc;

static int rc_entry(struct sonde_kretprobe_instance *ri, struct sonde_regs *regs)
{
	long n = (long)sonde_regs_arg(regs, 0);

	memcpy(ri->data, &n, sizeof(n));
	rc.entries++;
	return 0;
}

static int rc_handler(struct sonde_kretprobe_instance *ri, struct sonde_regs *regs)
{
	long n;

	memcpy(&n, ri->data, sizeof(n));
	/* each instance keeps its own data: the value is that of its own call */
	if ((long)regs->ax != n * (n + 1) / 2)
		rc.bad_pair++;
	if (rc.calls <= DEPTH) {
		rc.ax[rc.calls] = (long)regs->ax;
		rc.arg[rc.calls] = n;
	}
	rc.calls++;
	return 0;
}

TEST(recursion_1000_deep)
{
	struct sonde_kretprobe rp;
	long r;

	snap((void *)krt_rec);
	krp_init(&rp, (void *)krt_rec, rc_handler, rc_entry, sizeof(long), 2000);
	REG_OK(&rp);
	for (int round = 0; round < 3; round++) {
		memset(&rc, 0, sizeof(rc));
		r = krt_rec(DEPTH);
		CHECK_EQ(r, (long)DEPTH * (DEPTH + 1) / 2);
		CHECK_EQ(rc.entries, DEPTH + 1);
		CHECK_EQ(rc.calls, DEPTH + 1);
		CHECK_EQ(rc.bad_pair, 0);
		/* innermost first */
		for (long i = 0; i <= DEPTH; i++) {
			CHECK_EQ(rc.arg[i], i);
			CHECK_EQ(rc.ax[i], i * (i + 1) / 2);
		}
	}
	CHECK_EQ(nmissed(&rp), 0);
	CHECK_EQ(sonde_kprobe_missed(&rp.kp), 0);
	sonde_unregister_kretprobe(&rp);
	CHECK_EQ(krt_rec(10), 55);
	snap_check();
}

TEST(recursion_beyond_maxactive)
{
	struct sonde_kretprobe rp;
	long r;

	/* 101 calls deep with 40 instances: the 40 outermost are hooked */
	snap((void *)krt_rec);
	krp_init(&rp, (void *)krt_rec, rc_handler, rc_entry, sizeof(long), 40);
	REG_OK(&rp);
	r = krt_rec(100);
	CHECK_EQ(r, 5050);
	CHECK_EQ(rc.entries, 40);
	CHECK_EQ(rc.calls, 40);
	CHECK_EQ(nmissed(&rp), 61);
	CHECK_EQ(rc.bad_pair, 0);
	for (long i = 0; i < 40; i++)
		CHECK_EQ(rc.arg[i], 61 + i);
	/* all instances came back */
	memset(&rc, 0, sizeof(rc));
	r = krt_rec(39);
	CHECK_EQ(r, 780);
	CHECK_EQ(rc.calls, 40);
	CHECK_EQ(nmissed(&rp), 61);
	sonde_unregister_kretprobe(&rp);
	snap_check();
}

/* maxactive <= 0: the kernel's default, max(10, 2 * CPUs) */
TEST(default_maxactive)
{
	struct sonde_kretprobe rp;
	long ncpu = sysconf(_SC_NPROCESSORS_CONF);
	long def = 2 * ncpu > 10 ? 2 * ncpu : 10;

	CHECK(def + 4 <= DEPTH);
	snap((void *)krt_rec);
	krp_init(&rp, (void *)krt_rec, rc_handler, rc_entry, sizeof(long), 0);
	REG_OK(&rp);
	CHECK_EQ(krt_rec(def + 4), (def + 4) * (def + 5) / 2);
	CHECK_EQ(rc.calls, def);
	CHECK_EQ(nmissed(&rp), 5);
	CHECK_EQ(rc.bad_pair, 0);
	sonde_unregister_kretprobe(&rp);
	snap_check();
}

/* a large ri->data: each instance's bytes are its own */
#define BIG_DATA 200

static long big_bad, big_calls;

static int big_entry(struct sonde_kretprobe_instance *ri, struct sonde_regs *regs)
{
	unsigned char n = (unsigned char)sonde_regs_arg(regs, 0);

	for (int i = 0; i < BIG_DATA; i++)
		ri->data[i] = (char)(n + i);
	return 0;
}

static int big_handler(struct sonde_kretprobe_instance *ri, struct sonde_regs *regs)
{
	unsigned char n = (unsigned char)ri->data[0];

	for (int i = 0; i < BIG_DATA; i++)
		if ((unsigned char)ri->data[i] != (unsigned char)(n + i))
			big_bad++;
	if ((long)regs->ax != (long)n * (n + 1) / 2)
		big_bad++;
	big_calls++;
	return 0;
}

TEST(instance_data_is_private)
{
	struct sonde_kretprobe rp;

	snap((void *)krt_rec);
	krp_init(&rp, (void *)krt_rec, big_handler, big_entry, BIG_DATA, 64);
	REG_OK(&rp);
	for (int round = 0; round < 10; round++)
		CHECK_EQ(krt_rec(60), 1830);
	CHECK_EQ(big_calls, 610);
	CHECK_EQ(big_bad, 0);
	CHECK_EQ(nmissed(&rp), 0);
	sonde_unregister_kretprobe(&rp);
	snap_check();
}

/* ------------------------------------------------------------------------- */
/* 5. longjmp */

static jmp_buf lj_env;

void krt_lj_maybe_jump(long x);
TARGET void krt_lj_maybe_jump(long x)
{
	OPAQUE();
	if (x & 1)
		longjmp(lj_env, 1);
}

long krt_lj_inner(long x);
TARGET long krt_lj_inner(long x)
{
	long r;

	krt_lj_maybe_jump(x);
	r = x * 11;
	OPAQUE_R(r);
	return r;
}

long krt_lj_outer(long x);
TARGET long krt_lj_outer(long x)
{
	long r = krt_lj_inner(x);

	OPAQUE_R(r);
	return r + 1;
}

/* an unprobed chain that puts the probed call deeper on the stack */
long krt_lj_deep(int depth, long x);
TARGET long krt_lj_deep(int depth, long x)
{
	volatile char pad[64];
	long r;

	pad[0] = (char)depth;
	r = depth ? krt_lj_deep(depth - 1, x) : krt_lj_inner(x);
	OPAQUE_R(r);
	return r + pad[0] - depth;
}

/* setjmp inside a probed function: a jump from below lands in it, it returns */
long krt_lj_catcher(long x);
TARGET long krt_lj_catcher(long x)
{
	volatile long r = -1, vx = x;

	if (setjmp(lj_env) == 0)
		r = krt_lj_outer(vx);
	else
		r = vx * 13;
	OPAQUE();
	return r;
}

static struct {
	long inner_calls, outer_calls, catcher_calls, bad;
} lj;

static int lj_entry(struct sonde_kretprobe_instance *ri, struct sonde_regs *regs)
{
	long x = (long)sonde_regs_arg(regs, 0);

	memcpy(ri->data, &x, sizeof(x));
	return 0;
}

static int lj_inner_handler(struct sonde_kretprobe_instance *ri, struct sonde_regs *regs)
{
	long x;

	memcpy(&x, ri->data, sizeof(x));
	if ((x & 1) || (long)regs->ax != x * 11)
		lj.bad++;
	lj.inner_calls++;
	return 0;
}

static int lj_outer_handler(struct sonde_kretprobe_instance *ri, struct sonde_regs *regs)
{
	long x;

	memcpy(&x, ri->data, sizeof(x));
	if ((x & 1) || (long)regs->ax != x * 11 + 1)
		lj.bad++;
	lj.outer_calls++;
	return 0;
}

static int lj_catcher_handler(struct sonde_kretprobe_instance *ri, struct sonde_regs *regs)
{
	long x;

	memcpy(&x, ri->data, sizeof(x));
	if ((long)regs->ax != ((x & 1) ? x * 13 : x * 11 + 1))
		lj.bad++;
	lj.catcher_calls++;
	return 0;
}

TEST(longjmp_within_probed)
{
	struct sonde_kretprobe in, out, c;

	snap((void *)krt_lj_inner);
	snap((void *)krt_lj_outer);
	snap((void *)krt_lj_catcher);
	krp_init(&in, (void *)krt_lj_inner, lj_inner_handler, lj_entry, sizeof(long), 3);
	krp_init(&out, (void *)krt_lj_outer, lj_outer_handler, lj_entry, sizeof(long), 3);
	krp_init(&c, (void *)krt_lj_catcher, lj_catcher_handler, lj_entry, sizeof(long), 3);
	REG_OK(&in);
	REG_OK(&out);
	REG_OK(&c);
	/*
	 * The jump skips inner and outer and lands in catcher, which then
	 * returns: the frames below it must be dropped on that return.
	 */
	for (long i = 0; i < 1000; i++) {
		CHECK_EQ(krt_lj_catcher(2 * i + 1), (2 * i + 1) * 13);
		CHECK_EQ(lj.catcher_calls, 2 * i + 1);
		CHECK_EQ(lj.inner_calls, i);
		CHECK_EQ(krt_lj_catcher(2 * i), 22 * i + 1);
		CHECK_EQ(lj.catcher_calls, 2 * i + 2);
		CHECK_EQ(lj.inner_calls, i + 1);
		CHECK_EQ(lj.outer_calls, i + 1);
	}
	CHECK_EQ(lj.bad, 0);
	CHECK_EQ(nmissed(&in), 0);
	CHECK_EQ(nmissed(&out), 0);
	CHECK_EQ(nmissed(&c), 0);
	sonde_unregister_kretprobe(&c);
	sonde_unregister_kretprobe(&out);
	sonde_unregister_kretprobe(&in);
	snap_check();
}

TEST(longjmp_out_of_probed)
{
	struct sonde_kretprobe in, out;
	volatile long i;

	snap((void *)krt_lj_inner);
	snap((void *)krt_lj_outer);
	/*
	 * Few instances: one left behind by each jump would use them all up
	 * within a few rounds, and the exact handler counts would fall short.
	 */
	krp_init(&in, (void *)krt_lj_inner, lj_inner_handler, lj_entry, sizeof(long), 3);
	krp_init(&out, (void *)krt_lj_outer, lj_outer_handler, lj_entry, sizeof(long), 3);
	REG_OK(&in);
	REG_OK(&out);

	/* jump over one probed frame; then a normal call from the same depth */
	for (i = 0; i < 1000; i++) {
		if (!setjmp(lj_env)) {
			krt_lj_inner(2 * i + 1);
			check_fail(__FILE__, __LINE__, "no longjmp");
		}
		CHECK_EQ(krt_lj_inner(2 * i), 22 * i);
	}
	CHECK_EQ(lj.inner_calls, 1000);
	CHECK_EQ(lj.bad, 0);

	/* jump over two probed frames */
	for (i = 0; i < 1000; i++) {
		if (!setjmp(lj_env)) {
			krt_lj_outer(2 * i + 1);
			check_fail(__FILE__, __LINE__, "no longjmp");
		}
		CHECK_EQ(krt_lj_outer(2 * i), 22 * i + 1);
	}
	CHECK_EQ(lj.inner_calls, 2000);
	CHECK_EQ(lj.outer_calls, 1000);
	CHECK_EQ(lj.bad, 0);

	/* after the jump, the next call comes from deeper down the stack */
	for (i = 0; i < 1000; i++) {
		if (!setjmp(lj_env)) {
			krt_lj_outer(2 * i + 1);
			check_fail(__FILE__, __LINE__, "no longjmp");
		}
		CHECK_EQ(krt_lj_deep((int)(i % 7) + 1, 2 * i), 22 * i);
	}
	CHECK_EQ(lj.inner_calls, 3000);
	CHECK_EQ(lj.outer_calls, 1000);
	CHECK_EQ(lj.bad, 0);

	CHECK_EQ(nmissed(&in), 0);
	CHECK_EQ(nmissed(&out), 0);
	sonde_unregister_kretprobe(&out);
	sonde_unregister_kretprobe(&in);
	CHECK_EQ(krt_lj_outer(4), 45);
	snap_check();
}

/* ------------------------------------------------------------------------- */
/* 6. several probes on one function; a kprobe beside a kretprobe */

static long two_a, two_b, two_ax_a, two_ax_b, kp_hits;

static int two_a_handler(struct sonde_kretprobe_instance *ri, struct sonde_regs *regs)
{
	two_ax_a = (long)regs->ax;
	two_a++;
	return 0;
}

static int two_b_handler(struct sonde_kretprobe_instance *ri, struct sonde_regs *regs)
{
	two_ax_b = (long)regs->ax;
	two_b++;
	return 0;
}

static int plain_pre(struct sonde_kprobe *p, struct sonde_regs *regs)
{
	kp_hits++;
	return 0;
}

TEST(two_kretprobes_and_a_kprobe)
{
	struct sonde_kretprobe a, b;
	struct sonde_kprobe kp;

	snap((void *)krt_add3);
	krp_init(&a, (void *)krt_add3, two_a_handler, NULL, 0, 0);
	krp_init(&b, (void *)krt_add3, two_b_handler, NULL, 0, 0);
	memset(&kp, 0, sizeof(kp));
	kp.addr = (void *)krt_add3;
	kp.pre_handler = plain_pre;
	REG_OK(&a);
	REG_OK(&b);
	CHECK_EQ(sonde_register_kprobe(&kp), 0);
	for (long x = 0; x < 50; x++) {
		CHECK_EQ(krt_wrap_add3(x), x * 3 + 7);
		CHECK_EQ(two_ax_a, x * 3 + 7);
		CHECK_EQ(two_ax_b, x * 3 + 7);
		CHECK_EQ(two_a, x + 1);
		CHECK_EQ(two_b, x + 1);
	}
	CHECK_EQ(two_a, 50);
	CHECK_EQ(two_b, 50);
	CHECK_EQ(kp_hits, 50);
	sonde_unregister_kretprobe(&b);
	for (long x = 0; x < 10; x++) {
		CHECK_EQ(krt_wrap_add3(x), x * 3 + 7);
		CHECK_EQ(two_ax_a, x * 3 + 7);
	}
	CHECK_EQ(two_a, 60);
	CHECK_EQ(two_b, 50);
	CHECK_EQ(kp_hits, 60);
	sonde_unregister_kprobe(&kp);
	sonde_unregister_kretprobe(&a);
	CHECK_EQ(krt_wrap_add3(1), 10);
	CHECK_EQ(two_a, 60);
	snap_check();
}

TEST(disable_enable)
{
	struct sonde_kretprobe rp;

	snap((void *)krt_add3);
	krp_init(&rp, (void *)krt_add3, rec_handler, rec_entry, 0, 0);
	REG_OK(&rp);
	CHECK_EQ(krt_wrap_add3(1), 10);
	CHECK_EQ(rec.calls, 1);
	CHECK_EQ(sonde_disable_kprobe(&rp.kp), 0);
	CHECK_EQ(krt_wrap_add3(2), 13);
	CHECK_EQ(rec.calls, 1);
	CHECK_EQ(rec.entries, 1);
	CHECK_EQ(sonde_enable_kprobe(&rp.kp), 0);
	CHECK_EQ(krt_wrap_add3(3), 16);
	CHECK_EQ(rec.calls, 2);
	CHECK_EQ(rec.ax[1], 16);
	sonde_unregister_kretprobe(&rp);
	snap_check();
}

/* ------------------------------------------------------------------------- */
/* 7. maxactive under threads */

#define MT_THREADS 8
#define MT_CALLS   40

long krt_sleepy(long x);
TARGET long krt_sleepy(long x)
{
	long r;

	usleep(1000);
	r = x ^ 0x5a5a;
	OPAQUE_R(r);
	return r;
}

static struct {
	long entries, calls, bad, wrong;
} mt;

static int mt_entry(struct sonde_kretprobe_instance *ri, struct sonde_regs *regs)
{
	long x = (long)sonde_regs_arg(regs, 0);

	memcpy(ri->data, &x, sizeof(x));
	atomic_inc(&mt.entries);
	return 0;
}

static int mt_handler(struct sonde_kretprobe_instance *ri, struct sonde_regs *regs)
{
	long x;

	memcpy(&x, ri->data, sizeof(x));
	if ((long)regs->ax != (x ^ 0x5a5a))
		atomic_inc(&mt.bad);
	atomic_inc(&mt.calls);
	return 0;
}

static void *mt_thread(void *arg)
{
	long id = (long)arg;

	for (long i = 0; i < MT_CALLS; i++) {
		long x = id * 1000 + i;

		if (krt_sleepy(x) != (x ^ 0x5a5a))
			atomic_inc(&mt.wrong);
	}
	return NULL;
}

TEST(maxactive_under_threads)
{
	struct sonde_kretprobe rp;
	pthread_t th[MT_THREADS];
	long total = MT_THREADS * MT_CALLS;

	snap((void *)krt_sleepy);
	krp_init(&rp, (void *)krt_sleepy, mt_handler, mt_entry, sizeof(long), 2);
	REG_OK(&rp);
	for (long i = 0; i < MT_THREADS; i++)
		CHECK_EQ(pthread_create(&th[i], NULL, mt_thread, (void *)i), 0);
	for (int i = 0; i < MT_THREADS; i++)
		pthread_join(th[i], NULL);
	CHECK_EQ(atomic_get(&mt.wrong), 0);
	CHECK_EQ(atomic_get(&mt.bad), 0);
	CHECK(nmissed(&rp) > 0);
	CHECK_EQ(atomic_get(&mt.calls) + nmissed(&rp), total);
	CHECK_EQ(atomic_get(&mt.entries), atomic_get(&mt.calls));
	CHECK_EQ(sonde_kprobe_missed(&rp.kp), 0);
	CHECK_EQ(sonde_kprobe_hits(&rp.kp), total);
	sonde_unregister_kretprobe(&rp);
	snap_check();
}

/* ------------------------------------------------------------------------- */
/* 8. unregister while other threads are inside the function */

#define UR_THREADS 4
#define UR_CYCLES  12

struct ur_probe {
	struct sonde_kretprobe rp;
	long cycle;
};

long krt_slow(long x);
TARGET long krt_slow(long x)
{
	long r;

	usleep(150);
	r = x * 7 - 3;
	OPAQUE_R(r);
	return r;
}

static struct {
	long stop;
	long unregistered; /* cycles whose unregister has returned */
	long late;	   /* handlers that started after their unregister returned */
	long running;	   /* handlers running now */
	long bad, wrong, total;
	long hits[UR_CYCLES];
} ur;

/* a handler that takes a while, so that unregister often finds one running */
static void spin_us(long us)
{
	uint64_t end = now_ns() + (uint64_t)us * 1000;

	while (now_ns() < end)
		;
}

static int ur_entry(struct sonde_kretprobe_instance *ri, struct sonde_regs *regs)
{
	long x = (long)sonde_regs_arg(regs, 0);

	atomic_inc(&ur.running);
	memcpy(ri->data, &x, sizeof(x));
	spin_us(20);
	__atomic_sub_fetch(&ur.running, 1, __ATOMIC_SEQ_CST);
	return 0;
}

static int ur_handler(struct sonde_kretprobe_instance *ri, struct sonde_regs *regs)
{
	struct sonde_kretprobe *rp = sonde_get_kretprobe(ri);
	struct ur_probe *up;
	long x;

	if (!rp) {
		atomic_inc(&ur.late); /* a handler for an unregistered probe */
		return 0;
	}
	atomic_inc(&ur.running);
	up = (struct ur_probe *)rp;
	/*
	 * Sound: a handler that began before unregister returned was waited
	 * for, so it ended before `unregistered` moved past its cycle.
	 */
	if (atomic_get(&ur.unregistered) > up->cycle)
		atomic_inc(&ur.late);
	memcpy(&x, ri->data, sizeof(x));
	if ((long)regs->ax != x * 7 - 3)
		atomic_inc(&ur.bad);
	atomic_inc(&ur.hits[up->cycle]);
	spin_us(50);
	if (atomic_get(&ur.unregistered) > up->cycle)
		atomic_inc(&ur.late);
	__atomic_sub_fetch(&ur.running, 1, __ATOMIC_SEQ_CST);
	return 0;
}

static void *ur_thread(void *arg)
{
	long id = (long)arg, i = 0;

	while (!atomic_get(&ur.stop)) {
		long x = id * 1000000 + i++;

		if (krt_slow(x) != x * 7 - 3)
			atomic_inc(&ur.wrong);
		atomic_inc(&ur.total);
	}
	return NULL;
}

/* instance pools allocated and not freed yet (src/probe/kretprobe.h) */
unsigned long sd_kretprobe_pools(void);

TEST(unregister_while_threads_inside)
{
	pthread_t th[UR_THREADS];
	struct timespec ms5 = {0, 5000000};
	unsigned long pools = sd_kretprobe_pools();

	snap((void *)krt_slow);
	for (long i = 0; i < UR_THREADS; i++)
		CHECK_EQ(pthread_create(&th[i], NULL, ur_thread, (void *)i), 0);
	for (long c = 0; c < UR_CYCLES; c++) {
		struct ur_probe *up = malloc(sizeof(*up));
		long snapshot, running;

		CHECK(up);
		krp_init(&up->rp, (void *)krt_slow, ur_handler, ur_entry, sizeof(long), 0);
		up->cycle = c;
		REG_OK(&up->rp);
		nanosleep(&ms5, NULL);
		/* unregister while calls are in flight: wait for some to have returned */
		for (int k = 0; k < 400 && atomic_get(&ur.hits[c]) < 8; k++)
			nanosleep(&ms5, NULL);
		sonde_unregister_kretprobe(&up->rp);
		/* no entry or return handler of it may still be running */
		running = atomic_get(&ur.running);
		__atomic_store_n(&ur.unregistered, c + 1, __ATOMIC_SEQ_CST);
		snapshot = atomic_get(&ur.hits[c]);
		/* the caller may free its struct at once: instances in flight must not need it */
		memset(up, 0xa5, sizeof(*up));
		free(up);
		CHECK_EQ(running, 0);
		nanosleep(&ms5, NULL);
		CHECK_EQ(atomic_get(&ur.hits[c]), snapshot);
		CHECK(snapshot > 0);
		CHECK_EQ(atomic_get(&ur.late), 0);
	}
	/* the threads go on calling the unprobed function for a while */
	nanosleep(&ms5, NULL);
	__atomic_store_n(&ur.stop, 1, __ATOMIC_SEQ_CST);
	for (int i = 0; i < UR_THREADS; i++)
		pthread_join(th[i], NULL);
	CHECK_EQ(atomic_get(&ur.wrong), 0);
	CHECK_EQ(atomic_get(&ur.bad), 0);
	CHECK_EQ(atomic_get(&ur.late), 0);
	CHECK(atomic_get(&ur.total) > 100);
	/*
	 * every instance in flight at an unregister came back, and the last
	 * freed its pool (at the next API call: here, registering one more)
	 */
	{
		struct sonde_kretprobe rp;

		krp_init(&rp, (void *)krt_slow, ur_handler, NULL, 0, 0);
		REG_OK(&rp);
		sonde_unregister_kretprobe(&rp);
	}
	CHECK_EQ(sd_kretprobe_pools(), pools);
	snap_check();
}

/* ------------------------------------------------------------------------- */
/* signals, fork, thread exit and cancellation inside probed functions */

long krt_sig_target(long x);
TARGET long krt_sig_target(long x)
{
	long r = x * 5 + 1;

	OPAQUE_R(r);
	return r;
}

static struct {
	long entries, calls, bad, wrong, total, in_signal;
} sg;

static int sg_entry(struct sonde_kretprobe_instance *ri, struct sonde_regs *regs)
{
	long x = (long)sonde_regs_arg(regs, 0);

	memcpy(ri->data, &x, sizeof(x));
	atomic_inc(&sg.entries);
	return 0;
}

static int sg_handler(struct sonde_kretprobe_instance *ri, struct sonde_regs *regs)
{
	long x;

	memcpy(&x, ri->data, sizeof(x));
	if ((long)regs->ax != x * 5 + 1)
		atomic_inc(&sg.bad);
	atomic_inc(&sg.calls);
	return 0;
}

static void on_alarm(int sig)
{
	int saved = errno;

	for (long k = 0; k < 3; k++) {
		long x = 1000000 + k;

		if (krt_sig_target(x) != x * 5 + 1)
			atomic_inc(&sg.wrong);
		atomic_inc(&sg.total);
	}
	atomic_inc(&sg.in_signal);
	errno = saved;
}

TEST(signal_handler_reenters_probed)
{
	struct sonde_kretprobe rp;
	struct sigaction sa;
	struct itimerval it = {{0, 50}, {0, 50}}, off = {{0, 0}, {0, 0}};
	long main_calls = 0;
	uint64_t end;

	snap((void *)krt_sig_target);
	krp_init(&rp, (void *)krt_sig_target, sg_handler, sg_entry, sizeof(long), 0);
	REG_OK(&rp);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	CHECK_EQ(sigaction(SIGALRM, &sa, NULL), 0);
	CHECK_EQ(setitimer(ITIMER_REAL, &it, NULL), 0);
	/* signals land anywhere: in the function, the trap, the slot, the trampoline */
	end = now_ns() + 300000000ULL;
	while (now_ns() < end || atomic_get(&sg.in_signal) < 100) {
		for (long k = 0; k < 100; k++, main_calls++)
			if (krt_sig_target(k) != k * 5 + 1)
				atomic_inc(&sg.wrong);
		if (now_ns() > end + 5000000000ULL)
			break;
	}
	CHECK_EQ(setitimer(ITIMER_REAL, &off, NULL), 0);
	signal(SIGALRM, SIG_IGN);
	CHECK(atomic_get(&sg.in_signal) >= 100);
	CHECK_EQ(atomic_get(&sg.wrong), 0);
	CHECK_EQ(atomic_get(&sg.bad), 0);
	/* every call was handled, or counted as missed */
	CHECK_EQ(atomic_get(&sg.calls), atomic_get(&sg.entries));
	CHECK_EQ(atomic_get(&sg.entries) + nmissed(&rp) + (long)sonde_kprobe_missed(&rp.kp),
		 main_calls + atomic_get(&sg.total));
	sonde_unregister_kretprobe(&rp);
	snap_check();
}

/*
 * A signal handler on an alternate stack (sigaltstack) calls a probed
 * function while a probed function of the interrupted thread is still
 * running. The two stacks are unrelated: the alternate one may lie above
 * the thread's stack, and frames of the thread's stack are then below the
 * handler's without being gone.
 */
long krt_alt_outer(long x);
TARGET long krt_alt_outer(long x)
{
	long r;

	pthread_kill(pthread_self(), SIGUSR1);
	r = x * 2;
	OPAQUE_R(r);
	return r;
}

static struct {
	long in_handler, handler_ret, outer_ret;
	void *alt_lo, *thread_stack_lo;
	char on_alt;
} alt;

static void on_usr1(int sig)
{
	char here;

	alt.on_alt = &here >= (char *)alt.alt_lo && &here < (char *)alt.alt_lo + 65536;
	alt.handler_ret = krt_sig_target(3);
	alt.in_handler++;
}

static void *alt_thread(void *arg)
{
	stack_t ss = {.ss_sp = alt.alt_lo, .ss_size = 65536};
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sa.sa_flags = SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	if (sigaltstack(&ss, NULL) || sigaction(SIGUSR1, &sa, NULL))
		return (void *)1;
	alt.outer_ret = krt_alt_outer(21);
	ss.ss_flags = SS_DISABLE;
	sigaltstack(&ss, NULL);
	return NULL;
}

static void alt_round(bool alt_above)
{
	static char low[512 * 1024] __attribute__((aligned(4096))); /* in .bss */
	void *map = mmap(NULL, 512 * 1024, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	pthread_attr_t attr;
	pthread_t t;
	void *ret;

	CHECK(map != MAP_FAILED);
	/* .bss lies below mmap()ed memory */
	CHECK((char *)low < (char *)map);
	memset(&alt, 0, sizeof(alt));
	alt.thread_stack_lo = alt_above ? low : map;
	alt.alt_lo = alt_above ? (char *)map + 256 * 1024 : low + 256 * 1024;
	pthread_attr_init(&attr);
	CHECK_EQ(pthread_attr_setstack(&attr, alt.thread_stack_lo, 256 * 1024), 0);
	CHECK_EQ(pthread_create(&t, &attr, alt_thread, NULL), 0);
	CHECK_EQ(pthread_join(t, &ret), 0);
	pthread_attr_destroy(&attr);
	CHECK(ret == NULL);
	CHECK_EQ(alt.in_handler, 1);
	CHECK(alt.on_alt);
	CHECK_EQ(alt.handler_ret, 16);
	CHECK_EQ(alt.outer_ret, 42);
	munmap(map, 512 * 1024);
}

TEST(signal_on_alternate_stack)
{
	struct sonde_kretprobe outer, inner;

	snap((void *)krt_alt_outer);
	snap((void *)krt_sig_target);
	krp_init(&outer, (void *)krt_alt_outer, rec_handler, NULL, 0, 0);
	krp_init(&inner, (void *)krt_sig_target, nop_handler2, NULL, 0, 0);
	REG_OK(&outer);
	REG_OK(&inner);
	/* the alternate stack below the thread's, then above it */
	alt_round(false);
	CHECK_EQ(rec.calls, 1);
	CHECK_EQ(rec.ax[0], 42);
	CHECK_EQ(nop_calls, 1);
	alt_round(true);
	CHECK_EQ(rec.calls, 2);
	CHECK_EQ(rec.ax[1], 42);
	CHECK_EQ(nop_calls, 2);
	sonde_unregister_kretprobe(&inner);
	sonde_unregister_kretprobe(&outer);
	snap_check();
}

static pid_t fork_pid;

long krt_forker(long x);
TARGET long krt_forker(long x)
{
	long r;

	fork_pid = fork();
	r = fork_pid == 0 ? x + 1 : x + 2;
	OPAQUE_R(r);
	return r;
}

TEST(fork_inside_probed)
{
	struct sonde_kretprobe rp, rp2;
	int status;
	long r;

	snap((void *)krt_forker);
	snap((void *)krt_add3);
	krp_init(&rp, (void *)krt_forker, rec_handler, NULL, 0, 0);
	krp_init(&rp2, (void *)krt_add3, nop_handler2, NULL, 0, 0);
	REG_OK(&rp);
	REG_OK(&rp2);
	r = krt_forker(10);
	CHECK(fork_pid >= 0);
	if (fork_pid == 0) {
		/* the child returned through the trampoline too; its probes work */
		int ok = r == 11 && rec.calls == 1 && rec.ax[0] == 11;

		ok = ok && krt_wrap_add3(1) == 10 && nop_calls == 1;
		_exit(ok ? 0 : 1);
	}
	CHECK_EQ(r, 12);
	CHECK_EQ(rec.calls, 1);
	CHECK_EQ(rec.ax[0], 12);
	CHECK_EQ(waitpid(fork_pid, &status, 0), fork_pid);
	CHECK(WIFEXITED(status));
	CHECK_EQ(WEXITSTATUS(status), 0);
	CHECK_EQ(krt_wrap_add3(2), 13);
	CHECK_EQ(nop_calls, 1);
	sonde_unregister_kretprobe(&rp2);
	sonde_unregister_kretprobe(&rp);
	snap_check();
}

static long cleanups;

static void count_cleanup(void *arg)
{
	atomic_inc(&cleanups);
}

long krt_exiter(long x);
TARGET long krt_exiter(long x)
{
	long r = x;

	pthread_cleanup_push(count_cleanup, NULL);
	if (x >= 0)
		pthread_exit((void *)(x + 5));
	OPAQUE_R(r);
	pthread_cleanup_pop(0);
	return r;
}

long krt_sleeper(long x);
TARGET long krt_sleeper(long x)
{
	long r = x;

	pthread_cleanup_push(count_cleanup, NULL);
	for (;;) {
		if (x < 0)
			break;
		usleep(1000); /* a cancellation point */
	}
	OPAQUE_R(r);
	pthread_cleanup_pop(0);
	return r;
}

static void *exit_thread(void *arg)
{
	long r = krt_exiter((long)arg);

	return (void *)(r + 1000000); /* not reached */
}

static void *sleep_thread(void *arg)
{
	long r = krt_sleeper((long)arg);

	return (void *)r; /* not reached */
}

TEST(thread_exit_and_cancel_inside_probed)
{
	struct sonde_kretprobe ex, sl;
	void *ret;

	snap((void *)krt_exiter);
	snap((void *)krt_sleeper);
	/*
	 * Two instances each: the instances of a thread that ends inside the
	 * function must come back, or later calls are missed.
	 */
	krp_init(&ex, (void *)krt_exiter, rec_handler, NULL, 0, 2);
	krp_init(&sl, (void *)krt_sleeper, rec_handler, NULL, 0, 2);
	REG_OK(&ex);
	REG_OK(&sl);
	for (long i = 0; i < 10; i++) {
		pthread_t t;
		struct timespec ms3 = {0, 3000000};

		CHECK_EQ(pthread_create(&t, NULL, exit_thread, (void *)i), 0);
		CHECK_EQ(pthread_join(t, &ret), 0);
		CHECK_EQ((long)ret, i + 5);

		CHECK_EQ(pthread_create(&t, NULL, sleep_thread, (void *)i), 0);
		nanosleep(&ms3, NULL);
		CHECK_EQ(pthread_cancel(t), 0);
		CHECK_EQ(pthread_join(t, &ret), 0);
		CHECK(ret == PTHREAD_CANCELED);
	}
	CHECK_EQ(atomic_get(&cleanups), 20);
	CHECK_EQ(rec.calls, 0);
	/* normal calls still hooked: nothing was missed */
	CHECK_EQ(krt_exiter(-3), -3);
	CHECK_EQ(krt_sleeper(-4), -4);
	CHECK_EQ(rec.calls, 2);
	CHECK_EQ(rec.ax[0], -3);
	CHECK_EQ(rec.ax[1], -4);
	CHECK_EQ(nmissed(&ex), 0);
	CHECK_EQ(nmissed(&sl), 0);
	sonde_unregister_kretprobe(&ex);
	sonde_unregister_kretprobe(&sl);
	snap_check();
}

/* ------------------------------------------------------------------------- */
/* 9. tail calls */

/*
 * krt_tc_a(x) = krt_tc_b(x + 1), by a jmp: written in assembly so that the
 * tail call is certain. krt_tc_b(x) = 5x.
 */
long krt_tc_a(long x);
long krt_tc_b(long x);
long krt_tc_site(long x);
long krt_tc_c(long x);
long krt_tc_c_callee(long x);

__asm__(".text\n"
	".p2align 4\n"
	".globl krt_tc_a\n"
	".type krt_tc_a, @function\n"
	"krt_tc_a:\n"
	"	.cfi_startproc\n"
	"	leaq 1(%rdi), %rdi\n"
	"	jmp krt_tc_b\n"
	"	.cfi_endproc\n"
	".size krt_tc_a, .-krt_tc_a\n");

TARGET long krt_tc_b(long x)
{
	long r = x * 5;

	OPAQUE_R(r);
	return r;
}

TARGET long krt_tc_site(long x)
{
	long r = krt_tc_a(x);

	OPAQUE_R(r);
	return r;
}

static struct {
	long a, b, bad;
	long last; /* 'a' or 'b' */
	void *a_ret;
} tc;

static int tc_a_handler(struct sonde_kretprobe_instance *ri, struct sonde_regs *regs)
{
	long x;

	memcpy(&x, ri->data, sizeof(x));
	if ((long)regs->ax != (x + 1) * 5)
		tc.bad++;
	tc.a_ret = ri->ret_addr;
	tc.last = 'a';
	tc.a++;
	return 0;
}

static int tc_b_handler(struct sonde_kretprobe_instance *ri, struct sonde_regs *regs)
{
	long x;

	memcpy(&x, ri->data, sizeof(x));
	if ((long)regs->ax != x * 5)
		tc.bad++;
	tc.last = 'b';
	tc.b++;
	return 0;
}

/* does the code of @fn (up to @len bytes) hold a jmp rel32/rel8 to @to? */
static bool jumps_to(const void *fn, size_t len, const void *to)
{
	const unsigned char *c = fn;

	for (size_t i = 0; i + 5 <= len; i++) {
		int32_t rel;

		if (c[i] != 0xe9)
			continue;
		memcpy(&rel, c + i + 1, sizeof(rel));
		if (c + i + 5 + rel == (const unsigned char *)to)
			return true;
	}
	for (size_t i = 0; i + 2 <= len; i++)
		if (c[i] == 0xeb && c + i + 2 + (signed char)c[i + 1] == (const unsigned char *)to)
			return true;
	return false;
}

TEST(tail_call)
{
	struct sonde_kretprobe a, b;
	unsigned char *code = (unsigned char *)krt_tc_a;
	void *real_ret;

	/* the tail call really is a jmp to krt_tc_b */
	CHECK(jumps_to(code, 9, (void *)krt_tc_b));

	snap((void *)krt_tc_a);
	snap((void *)krt_tc_b);
	krp_init(&a, (void *)krt_tc_a, tc_a_handler, lj_entry, sizeof(long), 0);
	krp_init(&b, (void *)krt_tc_b, tc_b_handler, lj_entry, sizeof(long), 0);
	REG_OK(&a);
	/* with only 'a' probed: its handler sees b's value */
	CHECK_EQ(krt_tc_site(1), 10);
	CHECK_EQ(tc.a, 1);
	real_ret = tc.a_ret;
	REG_OK(&b);
	for (long x = 0; x < 200; x++) {
		CHECK_EQ(krt_tc_site(x), (x + 1) * 5);
		CHECK_EQ(tc.a, x + 2);
		CHECK_EQ(tc.b, x + 1);
		CHECK_EQ(tc.last, 'a'); /* innermost first */
	}
	CHECK(tc.a_ret == real_ret);
	/* b alone */
	CHECK_EQ(krt_tc_b(4), 20);
	CHECK_EQ(tc.b, 201);
	CHECK_EQ(tc.a, 201);
	CHECK_EQ(tc.bad, 0);
	CHECK_EQ(nmissed(&a), 0);
	CHECK_EQ(nmissed(&b), 0);
	sonde_unregister_kretprobe(&a);
	CHECK_EQ(krt_tc_site(2), 15);
	CHECK_EQ(tc.b, 202);
	CHECK_EQ(tc.a, 201);
	sonde_unregister_kretprobe(&b);
	snap_check();
}

/*
 * Several instances on one return slot (two kretprobes on one function, or
 * a probed function tail-calling another): the kernel gives every handler
 * of that return the real return address, in ri->ret_addr and regs->ip
 * (__kretprobe_trampoline_handler sets both to correct_ret_addr).
 */
static void *sh_ret[2], *sh_ip[2];
static long sh_calls[2];

static int sh_a_handler(struct sonde_kretprobe_instance *ri, struct sonde_regs *regs)
{
	sh_ret[0] = ri->ret_addr;
	sh_ip[0] = (void *)regs->ip;
	sh_calls[0]++;
	return 0;
}

static int sh_b_handler(struct sonde_kretprobe_instance *ri, struct sonde_regs *regs)
{
	sh_ret[1] = ri->ret_addr;
	sh_ip[1] = (void *)regs->ip;
	sh_calls[1]++;
	return 0;
}

static void check_shared(const char *what, void *real, int line)
{
	for (int k = 0; k < 2; k++)
		if (sh_ret[k] != real || sh_ip[k] != real)
			check_fail(
			    __FILE__, line,
			    "%s: handler %c saw ret_addr %p, regs->ip %p; the caller's return "
			    "address is %p",
			    what, 'a' + k, sh_ret[k], sh_ip[k], real);
}

TEST(ret_addr_when_frames_share_a_slot)
{
	struct sonde_kretprobe a, b;
	void *real;

	snap((void *)krt_add3);
	snap((void *)krt_tc_a);
	snap((void *)krt_tc_b);

	/* two kretprobes on one function */
	krp_init(&a, (void *)krt_add3, sh_a_handler, NULL, 0, 0);
	krp_init(&b, (void *)krt_add3, sh_b_handler, NULL, 0, 0);
	REG_OK(&a);
	CHECK_EQ(krt_wrap_add3(1), 10);
	real = sh_ret[0]; /* one probe alone: its ret_addr is the real one */
	CHECK(sh_ip[0] == real);
	REG_OK(&b);
	CHECK_EQ(krt_wrap_add3(2), 13);
	CHECK_EQ(sh_calls[0], 2);
	CHECK_EQ(sh_calls[1], 1);
	check_shared("two kretprobes on krt_add3", real, __LINE__);
	sonde_unregister_kretprobe(&b);
	sonde_unregister_kretprobe(&a);

	/* a tail call */
	memset(sh_ret, 0, sizeof(sh_ret));
	krp_init(&a, (void *)krt_tc_a, sh_a_handler, NULL, 0, 0);
	krp_init(&b, (void *)krt_tc_b, sh_b_handler, NULL, 0, 0);
	REG_OK(&a);
	CHECK_EQ(krt_tc_site(1), 10);
	real = sh_ret[0];
	REG_OK(&b);
	CHECK_EQ(krt_tc_site(2), 15);
	CHECK_EQ(sh_calls[0], 4);
	CHECK_EQ(sh_calls[1], 2);
	check_shared("krt_tc_a tail-calls krt_tc_b", real, __LINE__);
	sonde_unregister_kretprobe(&b);
	sonde_unregister_kretprobe(&a);
	snap_check();
}

/* the same in C, if the compiler emits the tail call (checked, not assumed) */
TARGET __attribute__((optimize("O2", "optimize-sibling-calls"))) long krt_tc_c(long x)
{
	OPAQUE();
	return krt_tc_c_callee((long)((unsigned long)x + 2));
}

TARGET long krt_tc_c_callee(long x)
{
	long r = x * 9;

	OPAQUE_R(r);
	return r;
}

static long tc_c_a, tc_c_b, tc_c_bad;

static int tc_c_a_handler(struct sonde_kretprobe_instance *ri, struct sonde_regs *regs)
{
	long x;

	memcpy(&x, ri->data, sizeof(x));
	if ((long)regs->ax != (x + 2) * 9 || tc_c_b != tc_c_a + 1)
		tc_c_bad++;
	tc_c_a++;
	return 0;
}

static int tc_c_b_handler(struct sonde_kretprobe_instance *ri, struct sonde_regs *regs)
{
	long x;

	memcpy(&x, ri->data, sizeof(x));
	if ((long)regs->ax != x * 9)
		tc_c_bad++;
	tc_c_b++;
	return 0;
}

TEST(tail_call_compiled)
{
	struct sonde_kretprobe a, b;

	if (!jumps_to((void *)krt_tc_c, 64, (void *)krt_tc_c_callee))
		SKIP("the compiler did not emit krt_tc_c's call as a jmp");
	snap((void *)krt_tc_c);
	snap((void *)krt_tc_c_callee);
	krp_init(&a, (void *)krt_tc_c, tc_c_a_handler, lj_entry, sizeof(long), 0);
	krp_init(&b, (void *)krt_tc_c_callee, tc_c_b_handler, lj_entry, sizeof(long), 0);
	REG_OK(&a);
	REG_OK(&b);
	for (long x = 0; x < 200; x++) {
		CHECK_EQ(krt_tc_c(x), (x + 2) * 9);
		CHECK_EQ(tc_c_a, x + 1);
		CHECK_EQ(tc_c_b, x + 1);
	}
	CHECK_EQ(tc_c_bad, 0);
	sonde_unregister_kretprobe(&a);
	sonde_unregister_kretprobe(&b);
	snap_check();
}

/* ------------------------------------------------------------------------- */
/* 10. errors */

static int nop_handler(struct sonde_kretprobe_instance *ri, struct sonde_regs *regs)
{
	rec.calls++;
	return 0;
}

static int nop_pre(struct sonde_kprobe *p, struct sonde_regs *regs)
{
	return 0;
}

static int data_var = 5;

TEST(errors)
{
	struct sonde_kretprobe rp;
	int err;

	snap((void *)krt_add3);
	CHECK_EQ(sonde_register_kretprobe(NULL), -EINVAL);

	/* not at the entry: by name */
	krp_init(&rp, NULL, nop_handler, NULL, 0, 0);
	rp.kp.symbol_name = "krt_add3";
	rp.kp.offset = 4;
	errno = 0;
	err = sonde_register_kretprobe(&rp);
	CHECK_EQ(err, -EINVAL);
	CHECK_EQ(errno, EINVAL);
	CHECK_MSG("krt_add3+0x4");
	CHECK_MSG("entry");
	snap_check();
	/* ... and the same struct, mended, registers */
	rp.kp.offset = 0;
	REG_OK(&rp);
	CHECK_EQ(krt_wrap_add3(1), 10);
	CHECK_EQ(rec.calls, 1);
	sonde_unregister_kretprobe(&rp);
	snap_check();

	/* not at the entry: by address */
	krp_init(&rp, (void *)krt_add3, nop_handler, NULL, 0, 0);
	rp.kp.offset = 1;
	CHECK_EQ(sonde_register_kretprobe(&rp), -EINVAL);
	CHECK_MSG("entry");

	/* maxactive: the kernel's KRETPROBE_MAXACTIVE_MAX is the limit */
	krp_init(&rp, (void *)krt_add3, nop_handler, NULL, 0, 4097);
	errno = 0;
	err = sonde_register_kretprobe(&rp);
	CHECK(err < 0);
	CHECK_EQ(errno, -err);
	CHECK_MSG("maxactive");
	CHECK_MSG("4097");
	snap_check();
	krp_init(&rp, (void *)krt_add3, nop_handler, NULL, 0, 100000000);
	CHECK(sonde_register_kretprobe(&rp) < 0);
	CHECK_MSG("maxactive");
	krp_init(&rp, (void *)krt_add3, nop_handler, NULL, 0, 4096);
	REG_OK(&rp);
	CHECK_EQ(krt_wrap_add3(2), 13);
	CHECK_EQ(rec.calls, 2);
	sonde_unregister_kretprobe(&rp);
	snap_check();

	/* unknown symbol */
	krp_init(&rp, NULL, nop_handler, NULL, 0, 0);
	rp.kp.symbol_name = "krt_no_such_function_anywhere";
	errno = 0;
	CHECK_EQ(sonde_register_kretprobe(&rp), -ENOENT);
	CHECK_EQ(errno, ENOENT);
	CHECK_MSG("krt_no_such_function_anywhere");

	/* neither name nor address; an address that is data, not code */
	krp_init(&rp, NULL, nop_handler, NULL, 0, 0);
	CHECK_EQ(sonde_register_kretprobe(&rp), -EINVAL);
	krp_init(&rp, &data_var, nop_handler, NULL, 0, 0);
	CHECK(sonde_register_kretprobe(&rp) < 0);
	CHECK(sonde_last_error()[0]);

	/* the kprobe inside is the kretprobe's own: no handlers of its own */
	krp_init(&rp, (void *)krt_add3, nop_handler, NULL, 0, 0);
	rp.kp.pre_handler = nop_pre;
	CHECK_EQ(sonde_register_kretprobe(&rp), -EINVAL);
	snap_check();

	/* registered twice: refused, and the first registration is intact */
	krp_init(&rp, (void *)krt_add3, nop_handler, NULL, 0, 0);
	REG_OK(&rp);
	CHECK(sonde_register_kretprobe(&rp) < 0);
	CHECK_EQ(krt_wrap_add3(3), 16);
	CHECK_EQ(rec.calls, 3);
	sonde_unregister_kretprobe(&rp);
	CHECK_EQ(krt_wrap_add3(3), 16);
	CHECK_EQ(rec.calls, 3);
	/* unregistering again, or something never registered, is harmless */
	sonde_unregister_kretprobe(&rp);
	krp_init(&rp, (void *)krt_add3, nop_handler, NULL, 0, 0);
	sonde_unregister_kretprobe(&rp);
	sonde_unregister_kretprobe(NULL);
	CHECK_EQ(krt_wrap_add3(3), 16);
	snap_check();
}

/* ------------------------------------------------------------------------- */
/* 11. bytes restored, batch registration */

TEST(batch_and_bytes_restored)
{
	struct sonde_kretprobe rps[5], *list[5];
	void *fns[5] = {(void *)krt_add3, (void *)krt_dbl, (void *)krt_pair, (void *)krt_rec,
			(void *)krt_lj_inner};

	for (int i = 0; i < 5; i++) {
		snap(fns[i]);
		krp_init(&rps[i], fns[i], nop_handler, NULL, 0, 0);
		list[i] = &rps[i];
	}
	CHECK_EQ(sonde_register_kretprobes(list, 5), 0);
	CHECK_EQ(krt_add3(1), 10);
	CHECK(krt_dbl(2.0) == 3.25);
	CHECK_EQ(krt_pair(1).b, -3);
	CHECK_EQ(krt_rec(3), 6);
	CHECK_EQ(krt_lj_inner(2), 22);
	CHECK_EQ(rec.calls, 1 + 1 + 1 + 4 + 1);
	/* while registered, the code is patched */
	{
		bool changed = false;

		for (int i = 0; i < nsnaps; i++)
			changed |= memcmp(snaps[i].b, snaps[i].fn, SNAP_LEN) != 0;
		CHECK(changed);
	}
	sonde_unregister_kretprobes(list, 5);
	snap_check();
	CHECK_EQ(krt_rec(3), 6);
	CHECK_EQ(rec.calls, 8);

	/* a batch with one bad member: nothing stays registered */
	for (int i = 0; i < 5; i++)
		krp_init(&rps[i], fns[i], nop_handler, NULL, 0, 0);
	rps[3].kp.offset = 1;
	CHECK(sonde_register_kretprobes(list, 5) < 0);
	CHECK_EQ(krt_add3(1), 10);
	CHECK_EQ(rec.calls, 8);
	snap_check();
}
