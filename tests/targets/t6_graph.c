// SPDX-License-Identifier: MIT
/*
 * t6_graph - a program with a known call graph, for the function tracers'
 * command-line tests (issue 6):
 *
 *   t6_graph [N]
 *
 * main calls t6_outer(i) N times (default 3); each t6_outer calls t6_inner
 * twice and t6_leaf once; t6_fib(5) recurses (15 calls); t6_slow sleeps
 * 3 ms; then a second thread calls t6_worker, which calls t6_leaf 4 times. Prints "sum=…" (the same
 * with or without tracing).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define NOINL __attribute__((noinline, used))

volatile int t6_sink;

NOINL int t6_leaf(int x);
NOINL int t6_inner(int x);
NOINL int t6_outer(int x);
NOINL int t6_fib(int n);
NOINL void t6_slow(void);
NOINL void *t6_worker(void *arg);

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
	return NULL;
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
	printf("sum=%d\n", sum);
	return 3; /* an exit status to find again */
}
