// SPDX-License-Identifier: MIT
/*
 * t6_graph - a program with a known call graph, for the function tracers'
 * command-line tests (issue 6):
 *
 *   t6_graph [N [detached|_exit]]
 *
 * main calls t6_outer(i) N times (default 3); each t6_outer calls t6_inner
 * twice and t6_leaf once; t6_fib(5) recurses (15 calls); t6_slow sleeps
 * 3 ms; then a second thread calls t6_worker, which calls t6_leaf 4 times. Prints "sum=…" (the same
 * with or without tracing), and returns 3.
 *
 * detached: before printing, 4 detached threads run t6_worker too and end
 * (their last steps run with every signal blocked); _exit: ends with
 * _exit(3) from t6_bye instead of returning from main.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NOINL __attribute__((noinline, used))

volatile int t6_sink;

NOINL int t6_leaf(int x);
NOINL int t6_inner(int x);
NOINL int t6_outer(int x);
NOINL int t6_fib(int n);
NOINL void t6_slow(void);
NOINL void *t6_worker(void *arg);
NOINL void t6_bye(int status);

NOINL int t6_leaf(int x)
{
	t6_sink = x;
	return x + 1;
}

NOINL int t6_inner(int x)
{
	t6_sink = x;
	return x * 2;
}

NOINL int t6_outer(int x)
{
	int r = t6_inner(x) + t6_inner(x + 1);

	r += t6_leaf(r);
	t6_sink = r;
	return r;
}

NOINL int t6_fib(int n)
{
	int r = n < 2 ? n : t6_fib(n - 1) + t6_fib(n - 2);

	t6_sink = r;
	return r;
}

NOINL void t6_slow(void)
{
	usleep(3000);
	t6_sink = 0;
}

NOINL void *t6_worker(void *arg)
{
	int s = 0;

	for (int i = 0; i < 4; i++)
		s += t6_leaf(i);
	t6_sink = s;
	if (arg) /* a detached one: counted */
		__atomic_add_fetch((volatile int *)arg, 1, __ATOMIC_RELEASE);
	return NULL;
}

NOINL void t6_bye(int status)
{
	fflush(stdout);
	_exit(status);
}

/* 4 detached threads, ended before this returns */
static void detached(void)
{
	static volatile int done;
	pthread_attr_t at;

	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	for (int i = 0; i < 4; i++) {
		pthread_t th;

		if (pthread_create(&th, &at, t6_worker, (void *)&done))
			exit(1);
	}
	pthread_attr_destroy(&at);
	while (__atomic_load_n(&done, __ATOMIC_ACQUIRE) < 4)
		usleep(1000);
	usleep(50000); /* their last steps, after t6_worker returned */
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 3, sum = 0;
	pthread_t th;

	for (int i = 0; i < n; i++)
		sum += t6_outer(i);
	sum += t6_fib(5);
	t6_slow();
	if (pthread_create(&th, NULL, t6_worker, NULL) == 0)
		pthread_join(th, NULL);
	if (argc > 2 && !strcmp(argv[2], "detached"))
		detached();
	printf("sum=%d\n", sum);
	if (argc > 2 && !strcmp(argv[2], "_exit"))
		t6_bye(3);
	return 3; /* an exit status to find again */
}
