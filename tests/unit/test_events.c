// SPDX-License-Identifier: MIT
/*
 * test_events.c - probe events written from many threads while the trace
 * buffer changes under them, through the in-process tracefs.
 *
 *  - more threads alive at once than the region has buffers (256): the
 *    threads left without one drop their events (counted), never fault;
 *  - buffer_size_kb and trace_clock changed while threads write: every
 *    change replaces the region, and no thread may write into the old one.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "tracefs_echo.h"

__attribute__((noinline, used)) int ev_target(int a);
__attribute__((noinline, used)) int ev_target(int a)
{
	__asm__ volatile("");
	return a * 3 + 1;
}

/* lines of the trace file that are events of evt/hit */
static int count_events(void)
{
	char *buf = cat("trace"), *p;
	int n = 0;

	for (p = buf; (p = strstr(p, " hit: (")); p++)
		n++;
	free(buf);
	return n;
}

static void define_event(void)
{
	ECHO("kprobe_events", "p:evt/hit ev_target a=%di:s32");
	ECHO("events/evt/hit/enable", "1");
}

static void undefine_event(void)
{
	ECHO("events/evt/hit/enable", "0");
	ECHO("trace", "");
	ECHO("kprobe_events", "");
}

#define NTHREADS 300
#define NCALLS	 3

static pthread_barrier_t all_alive, all_done;

static void *call_alive(void *arg)
{
	long sum = 0;

	pthread_barrier_wait(&all_alive);
	for (int i = 0; i < NCALLS; i++)
		sum += ev_target((int)(long)arg);
	/* nobody exits (and hands its buffer on) before everyone has written */
	pthread_barrier_wait(&all_done);
	return (void *)sum;
}

TEST(more_threads_than_buffers)
{
	pthread_t th[NTHREADS];
	int n;

	define_event();
	CHECK_EQ(pthread_barrier_init(&all_alive, NULL, NTHREADS), 0);
	CHECK_EQ(pthread_barrier_init(&all_done, NULL, NTHREADS), 0);
	for (long i = 0; i < NTHREADS; i++)
		CHECK_EQ(pthread_create(&th[i], NULL, call_alive, (void *)i), 0);
	for (long i = 0; i < NTHREADS; i++) {
		void *ret;

		CHECK_EQ(pthread_join(th[i], &ret), 0);
		CHECK_EQ((long)ret, NCALLS * (3 * i + 1));
	}
	n = count_events();
	printf("%d of %d events recorded\n", n, NTHREADS * NCALLS);
	/* 256 buffers: at least their threads' events, never more than were made */
	CHECK(n >= 256 * NCALLS && n <= NTHREADS * NCALLS);
	undefine_event();
}

static atomic_int stop;

static void *call_loop(void *arg)
{
	long calls = 0;

	(void)arg;
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		CHECK_EQ(ev_target(2), 7);
		calls++;
	}
	return (void *)calls;
}

TEST(buffer_replaced_while_writing)
{
	static const char *const sizes[] = {"64", "128", "32", "256"};
	static const char *const clocks[] = {"global", "local", "x86-tsc", "local"};
	pthread_t th[4];
	long calls = 0;

	define_event();
	atomic_store(&stop, 0);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(pthread_create(&th[i], NULL, call_loop, NULL), 0);
	for (int r = 0; r < 40; r++) {
		struct timespec ts = {0, 2 * 1000 * 1000};

		nanosleep(&ts, NULL);
		ECHO(r % 2 ? "trace_clock" : "buffer_size_kb",
		     r % 2 ? clocks[r / 2 % 4] : sizes[r / 2 % 4]);
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < 4; i++) {
		void *ret;

		CHECK_EQ(pthread_join(th[i], &ret), 0);
		calls += (long)ret;
	}
	printf("%ld calls while the buffer was replaced 40 times\n", calls);
	CHECK(calls > 0);
	/* the last region holds events of the last moments, readable */
	CHECK(count_events() > 0);
	undefine_event();
}
