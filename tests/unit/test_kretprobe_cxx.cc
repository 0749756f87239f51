// SPDX-License-Identifier: MIT
/*
 * test_kretprobe_cxx.cc - kretprobes and C++ exceptions.
 *
 * A hooked frame's return address is the trampoline, for which the
 * unwinder has no way back: an exception through it would end in
 * std::terminate() unless sonde puts the real addresses back in time. Here
 * exceptions go through, are caught inside, and are caught between probed
 * frames; afterwards the same functions return normally and their
 * handlers fire with the right values, exactly once per returning call.
 */
extern "C" {
#include "check.h"
}

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include <stdexcept>

#include <sonde/kprobes.h>

#define TARGET	 __attribute__((noinline, noclone, used))
#define OPAQUE() asm volatile("" ::: "memory")

#define ROUNDS 300

struct krt_error {
	long v;
};

static long dtors;

struct guard {
	~guard()
	{
		__atomic_add_fetch(&dtors, 1, __ATOMIC_RELAXED);
		OPAQUE();
	}
};

/* ------------------------------------------------------------------------- */
/* targets */

/* throws when x >= 0 */
TARGET void krt_throw_if(long x)
{
	OPAQUE();
	if (x >= 0)
		throw krt_error{x};
}

/* the exception goes through; a destructor runs on the way (a cleanup pad) */
TARGET long krt_through(long x)
{
	guard g;

	krt_throw_if(x);
	OPAQUE();
	return x * 2;
}

/* catches what a deeper unprobed function throws, then returns normally */
TARGET long krt_catcher(long x)
{
	long r;

	try {
		krt_throw_if(x);
		r = -1;
	} catch (const krt_error &e) {
		r = e.v + 1000;
	}
	OPAQUE();
	return r;
}

/* an unprobed function that throws and catches below a probed one */
TARGET long krt_deep_catcher(long x)
{
	try {
		krt_throw_if(x);
	} catch (const krt_error &e) {
		return e.v + 5;
	}
	return 0;
}

TARGET long krt_above(long x)
{
	long r = krt_deep_catcher(x);

	OPAQUE();
	return r * 3;
}

/* nested: a -> b -> throw, caught in a */
TARGET long krt_nest_b(long x)
{
	guard g;

	krt_throw_if(x);
	OPAQUE();
	return x + 7;
}

TARGET long krt_nest_a(long x)
{
	long r;

	try {
		r = krt_nest_b(x);
	} catch (const krt_error &e) {
		r = -e.v - 1;
	}
	OPAQUE();
	return r;
}

/* the probed function throws itself */
TARGET long krt_thrower(long x)
{
	OPAQUE();
	if (x >= 0)
		throw std::runtime_error("krt_thrower");
	return x - 1;
}

/* rethrow: caught in the probed inner, thrown again */
TARGET long krt_rethrow_inner(long x)
{
	long r;

	try {
		krt_throw_if(x);
		r = x;
	} catch (const krt_error &) {
		OPAQUE();
		throw;
	}
	OPAQUE();
	return r;
}

TARGET long krt_rethrow_outer(long x)
{
	long r = krt_rethrow_inner(x);

	OPAQUE();
	return r + 100;
}

/* probed recursion: throws at the bottom, caught at depth catch_at */
TARGET long krt_rec_throw(long n, long catch_at)
{
	long r;

	OPAQUE();
	if (n == 0)
		throw krt_error{0};
	if (n == catch_at) {
		try {
			r = krt_rec_throw(n - 1, catch_at);
		} catch (const krt_error &) {
			r = 1000 + n;
		}
	} else {
		r = krt_rec_throw(n - 1, catch_at) + 1;
	}
	OPAQUE();
	return r;
}

/* a second exception, thrown and caught while the first is being handled */
TARGET long krt_catch_in_catch(long x)
{
	long r;

	try {
		krt_throw_if(x);
		r = 0;
	} catch (const krt_error &e) {
		try {
			r = krt_through(e.v + 1); /* probed, throws */
		} catch (const krt_error &e2) {
			r = e.v * 1000 + e2.v;
		}
	}
	OPAQUE();
	return r;
}

/*
 * A destructor that throws and catches an exception of its own, run while
 * another exception unwinds through it (legal: it does not escape).
 */
static long inner_caught;

struct quiet_thrower {
	~quiet_thrower()
	{
		try {
			krt_throw_if(7);
		} catch (const krt_error &) {
			__atomic_add_fetch(&inner_caught, 1, __ATOMIC_RELAXED);
		}
	}
};

TARGET long krt_mid(long x)
{
	quiet_thrower q;

	krt_throw_if(x);
	OPAQUE();
	return x + 3;
}

TARGET long krt_over_mid(long x)
{
	long r = krt_mid(x);

	OPAQUE();
	return r * 2;
}

/* thread exit: a forced unwind through a probed frame */
TARGET long krt_exiter(long x)
{
	guard g;

	if (x >= 0)
		pthread_exit((void *)(x + 5));
	OPAQUE();
	return x;
}

/* ------------------------------------------------------------------------- */
/* handlers */

#define NVAL 4096

static struct {
	long calls;
	long last;
	long val[NVAL];
} h1, h2;

static int rec_entry(struct sonde_kretprobe_instance *ri, struct sonde_regs *regs)
{
	long x = (long)sonde_regs_arg(regs, 0);

	memcpy(ri->data, &x, sizeof(x));
	return 0;
}

static void note(decltype(h1) *h, struct sonde_regs *regs)
{
	long i = __atomic_fetch_add(&h->calls, 1, __ATOMIC_SEQ_CST);

	h->last = (long)regs->ax;
	if (i < NVAL)
		h->val[i] = (long)regs->ax;
}

static int h1_handler(struct sonde_kretprobe_instance *ri, struct sonde_regs *regs)
{
	note(&h1, regs);
	return 0;
}

static int h2_handler(struct sonde_kretprobe_instance *ri, struct sonde_regs *regs)
{
	note(&h2, regs);
	return 0;
}

static long calls(decltype(h1) *h)
{
	return __atomic_load_n(&h->calls, __ATOMIC_SEQ_CST);
}

static void krp_init(struct sonde_kretprobe *rp, void *fn, sonde_kretprobe_handler_t handler,
		     int maxactive)
{
	memset(rp, 0, sizeof(*rp));
	rp->kp.addr = fn;
	rp->handler = handler;
	rp->entry_handler = rec_entry;
	rp->data_size = sizeof(long);
	rp->maxactive = maxactive;
}

#define REG_OK(rp)                                                                             \
	do {                                                                                   \
		int err_ = sonde_register_kretprobe(rp);                                       \
		if (err_)                                                                      \
			check_fail(__FILE__, __LINE__, "sonde_register_kretprobe(%s): %d: %s", \
				   #rp, err_, sonde_last_error());                             \
	} while (0)

#define SNAP_LEN 16

struct snap {
	const void *fn;
	unsigned char b[SNAP_LEN];

	explicit snap(const void *f) : fn(f)
	{
		memcpy(b, f, SNAP_LEN);
	}
	bool same() const
	{
		return !memcmp(b, fn, SNAP_LEN);
	}
};

/* ------------------------------------------------------------------------- */
/* tests */

TEST(throw_through_probed)
{
	struct sonde_kretprobe rp;
	snap s((void *)krt_through);

	/* few instances: one left behind per throw would run out at once */
	krp_init(&rp, (void *)krt_through, h1_handler, 2);
	REG_OK(&rp);
	for (long i = 0; i < ROUNDS; i++) {
		bool caught = false;

		try {
			krt_through(i);
			check_fail(__FILE__, __LINE__, "no exception");
		} catch (const krt_error &e) {
			CHECK_EQ(e.v, i);
			caught = true;
		}
		CHECK(caught);
		CHECK_EQ(calls(&h1), i);
		CHECK_EQ(krt_through(-i - 1), (-i - 1) * 2);
		CHECK_EQ(calls(&h1), i + 1);
		CHECK_EQ(h1.last, (-i - 1) * 2);
	}
	CHECK_EQ(dtors, 2 * ROUNDS);
	CHECK_EQ(rp.nmissed, 0);
	sonde_unregister_kretprobe(&rp);
	CHECK(s.same());
}

TEST(throw_from_probed)
{
	struct sonde_kretprobe rp;
	snap s((void *)krt_thrower);

	krp_init(&rp, (void *)krt_thrower, h1_handler, 2);
	REG_OK(&rp);
	for (long i = 0; i < ROUNDS; i++) {
		bool caught = false;

		try {
			krt_thrower(i);
		} catch (const std::runtime_error &e) {
			caught = !strcmp(e.what(), "krt_thrower");
		}
		CHECK(caught);
		CHECK_EQ(krt_thrower(-i - 1), -i - 2);
		CHECK_EQ(calls(&h1), i + 1);
		CHECK_EQ(h1.last, -i - 2);
	}
	CHECK_EQ(rp.nmissed, 0);
	sonde_unregister_kretprobe(&rp);
	CHECK(s.same());
}

TEST(caught_inside_probed)
{
	struct sonde_kretprobe rp;
	snap s((void *)krt_catcher);

	krp_init(&rp, (void *)krt_catcher, h1_handler, 2);
	REG_OK(&rp);
	for (long i = 0; i < ROUNDS; i++) {
		/* caught inside: the function returns normally, its handler fires */
		CHECK_EQ(krt_catcher(i), i + 1000);
		CHECK_EQ(calls(&h1), 2 * i + 1);
		CHECK_EQ(h1.last, i + 1000);
		CHECK_EQ(krt_catcher(-5), -1);
		CHECK_EQ(calls(&h1), 2 * i + 2);
		CHECK_EQ(h1.last, -1);
	}
	CHECK_EQ(rp.nmissed, 0);
	sonde_unregister_kretprobe(&rp);
	CHECK(s.same());
}

TEST(caught_below_probed)
{
	struct sonde_kretprobe rp;
	snap s((void *)krt_above);

	krp_init(&rp, (void *)krt_above, h1_handler, 2);
	REG_OK(&rp);
	for (long i = 0; i < ROUNDS; i++) {
		CHECK_EQ(krt_above(i), (i + 5) * 3);
		CHECK_EQ(calls(&h1), i + 1);
		CHECK_EQ(h1.last, (i + 5) * 3);
	}
	CHECK_EQ(rp.nmissed, 0);
	sonde_unregister_kretprobe(&rp);
	CHECK(s.same());
}

TEST(nested_probed_caught_in_outer)
{
	struct sonde_kretprobe a, b;
	snap sa((void *)krt_nest_a), sb((void *)krt_nest_b);

	krp_init(&a, (void *)krt_nest_a, h1_handler, 2);
	krp_init(&b, (void *)krt_nest_b, h2_handler, 2);
	REG_OK(&a);
	REG_OK(&b);
	for (long i = 0; i < ROUNDS; i++) {
		/* b is unwound (no handler), a catches and returns (handler) */
		CHECK_EQ(krt_nest_a(i), -i - 1);
		CHECK_EQ(calls(&h1), 2 * i + 1);
		CHECK_EQ(h1.last, -i - 1);
		CHECK_EQ(calls(&h2), i);
		/* both return normally */
		CHECK_EQ(krt_nest_a(-i - 10), -i - 3);
		CHECK_EQ(calls(&h1), 2 * i + 2);
		CHECK_EQ(h1.last, -i - 3);
		CHECK_EQ(calls(&h2), i + 1);
		CHECK_EQ(h2.last, -i - 3);
	}
	CHECK_EQ(dtors, 2 * ROUNDS);
	CHECK_EQ(a.nmissed, 0);
	CHECK_EQ(b.nmissed, 0);
	sonde_unregister_kretprobe(&b);
	sonde_unregister_kretprobe(&a);
	CHECK(sa.same());
	CHECK(sb.same());
}

TEST(rethrow_through_probed)
{
	struct sonde_kretprobe in, out;
	snap si((void *)krt_rethrow_inner), so((void *)krt_rethrow_outer);

	krp_init(&in, (void *)krt_rethrow_inner, h1_handler, 2);
	krp_init(&out, (void *)krt_rethrow_outer, h2_handler, 2);
	REG_OK(&in);
	REG_OK(&out);
	for (long i = 0; i < ROUNDS; i++) {
		bool caught = false;

		try {
			krt_rethrow_outer(i);
		} catch (const krt_error &e) {
			caught = e.v == i;
		}
		CHECK(caught);
		CHECK_EQ(calls(&h1), i);
		CHECK_EQ(calls(&h2), i);
		CHECK_EQ(krt_rethrow_outer(-i - 1), -i - 1 + 100);
		CHECK_EQ(calls(&h1), i + 1);
		CHECK_EQ(h1.last, -i - 1);
		CHECK_EQ(calls(&h2), i + 1);
		CHECK_EQ(h2.last, -i - 1 + 100);
	}
	CHECK_EQ(in.nmissed, 0);
	CHECK_EQ(out.nmissed, 0);
	sonde_unregister_kretprobe(&out);
	sonde_unregister_kretprobe(&in);
	CHECK(si.same());
	CHECK(so.same());
}

TEST(recursion_caught_midway)
{
	struct sonde_kretprobe rp;
	snap s((void *)krt_rec_throw);
	const long depth = 60, catch_at = 25;

	krp_init(&rp, (void *)krt_rec_throw, h1_handler, 128);
	REG_OK(&rp);
	for (long round = 0; round < ROUNDS; round++) {
		long r;

		h1.calls = 0;
		r = krt_rec_throw(depth, catch_at);
		CHECK_EQ(r, 1000 + catch_at + (depth - catch_at));
		/* the frames below the catcher are gone; the catcher and those above return */
		CHECK_EQ(calls(&h1), depth - catch_at + 1);
		for (long k = 0; k <= depth - catch_at; k++)
			CHECK_EQ(h1.val[k], 1000 + catch_at + k);
	}
	/* thrown all the way out */
	for (long round = 0; round < 50; round++) {
		bool caught = false;

		h1.calls = 0;
		try {
			krt_rec_throw(depth, -1);
		} catch (const krt_error &) {
			caught = true;
		}
		CHECK(caught);
		CHECK_EQ(calls(&h1), 0);
	}
	CHECK_EQ(rp.nmissed, 0);
	sonde_unregister_kretprobe(&rp);
	CHECK(s.same());
}

TEST(exception_inside_catch)
{
	struct sonde_kretprobe a, b;

	krp_init(&a, (void *)krt_catch_in_catch, h1_handler, 2);
	krp_init(&b, (void *)krt_through, h2_handler, 2);
	REG_OK(&a);
	REG_OK(&b);
	for (long i = 0; i < ROUNDS; i++) {
		CHECK_EQ(krt_catch_in_catch(i), i * 1000 + i + 1);
		CHECK_EQ(calls(&h1), i + 1);
		CHECK_EQ(h1.last, i * 1000 + i + 1);
		CHECK_EQ(calls(&h2), 0);
	}
	CHECK_EQ(dtors, ROUNDS);
	CHECK_EQ(a.nmissed, 0);
	CHECK_EQ(b.nmissed, 0);
	sonde_unregister_kretprobe(&a);
	sonde_unregister_kretprobe(&b);
}

TEST(exception_caught_in_destructor_during_unwind)
{
	struct sonde_kretprobe rp;
	snap s((void *)krt_over_mid);

	/* without a probe: the program's own behaviour */
	for (long i = 0; i < 3; i++) {
		bool caught = false;

		try {
			krt_over_mid(i);
		} catch (const krt_error &e) {
			caught = e.v == i;
		}
		CHECK(caught);
	}
	CHECK_EQ(inner_caught, 3);

	krp_init(&rp, (void *)krt_over_mid, h1_handler, 2);
	REG_OK(&rp);
	for (long i = 0; i < ROUNDS; i++) {
		bool caught = false;

		/* the outer exception passes the probed frame after the inner one is caught */
		try {
			krt_over_mid(i);
		} catch (const krt_error &e) {
			caught = e.v == i;
		}
		CHECK(caught);
		CHECK_EQ(inner_caught, 3 + 2 * i + 1);
		CHECK_EQ(krt_over_mid(-i - 10), (-i - 7) * 2);
		CHECK_EQ(inner_caught, 3 + 2 * i + 2);
		CHECK_EQ(calls(&h1), i + 1);
		CHECK_EQ(h1.last, (-i - 7) * 2);
	}
	CHECK_EQ(rp.nmissed, 0);
	sonde_unregister_kretprobe(&rp);
	CHECK(s.same());
}

static void *exit_thread(void *arg)
{
	guard g; /* above the probed frame: runs only if the unwinder gets past it */
	long r = krt_exiter((long)arg);

	return (void *)(r + 1000000); /* not reached */
}

TEST(thread_exit_through_probed)
{
	struct sonde_kretprobe rp;
	snap s((void *)krt_exiter);

	krp_init(&rp, (void *)krt_exiter, h1_handler, 2);
	REG_OK(&rp);
	for (long i = 0; i < 20; i++) {
		pthread_t t;
		void *ret;

		CHECK_EQ(pthread_create(&t, NULL, exit_thread, (void *)i), 0);
		CHECK_EQ(pthread_join(t, &ret), 0);
		CHECK_EQ((long)ret, i + 5);
		/* both destructors ran: in the probed frame and in the one above it */
		CHECK_EQ(__atomic_load_n(&dtors, __ATOMIC_SEQ_CST), 2 * (i + 1));
	}
	CHECK_EQ(calls(&h1), 0);
	/* the instances of the exited threads came back */
	CHECK_EQ(krt_exiter(-7), -7);
	CHECK_EQ(calls(&h1), 1);
	CHECK_EQ(h1.last, -7);
	CHECK_EQ(rp.nmissed, 0);
	sonde_unregister_kretprobe(&rp);
	CHECK(s.same());
}

#define NTHREADS 4

static long thread_bad;

static void *throw_thread(void *arg)
{
	long id = (long)arg;

	for (long i = 0; i < ROUNDS; i++) {
		bool caught = false;

		try {
			krt_through(id * 100000 + i);
		} catch (const krt_error &e) {
			caught = e.v == id * 100000 + i;
		}
		if (!caught || krt_catcher(i) != i + 1000 || krt_through(-i - 1) != (-i - 1) * 2)
			__atomic_add_fetch(&thread_bad, 1, __ATOMIC_SEQ_CST);
	}
	return NULL;
}

TEST(throw_in_threads)
{
	struct sonde_kretprobe a, b;
	pthread_t th[NTHREADS];

	krp_init(&a, (void *)krt_through, h1_handler, 4 * NTHREADS);
	krp_init(&b, (void *)krt_catcher, h2_handler, 4 * NTHREADS);
	REG_OK(&a);
	REG_OK(&b);
	for (long i = 0; i < NTHREADS; i++)
		CHECK_EQ(pthread_create(&th[i], NULL, throw_thread, (void *)i), 0);
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	CHECK_EQ(thread_bad, 0);
	CHECK_EQ(calls(&h1), NTHREADS * ROUNDS);
	CHECK_EQ(calls(&h2), NTHREADS * ROUNDS);
	CHECK_EQ(a.nmissed, 0);
	CHECK_EQ(b.nmissed, 0);
	sonde_unregister_kretprobe(&a);
	sonde_unregister_kretprobe(&b);
}
