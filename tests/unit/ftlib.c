// SPDX-License-Identifier: MIT
/*
 * ftlib.c - the same three-level call tree, built once per way the
 * function tracers hook code (tests/unit/ftrace.cmake): FT is the name
 * prefix (plain_, pfe_, fentry_, mcount_).
 *
 *   FT_top(x) -> FT_mid(x) -> FT_leaf(x), FT_leaf(x + 1)
 *   FT_jump(env) -> FT_deep(env, 3) -> ... longjmp(env) from the bottom
 *   FT_slow(us)  -> FT_leaf, then sleeps us microseconds
 *   FT_args(...) eight integers (two on the stack), a struct by value (on
 *                the stack) and a double: a checksum of them
 *   FT_vsum(n, ...) n pairs of int and double through varargs (%al counts
 *                the vector registers used)
 *   FT_tail(x)   -> FT_leaf(x + 2) as a tail call (a jump)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <time.h>

#include "ftlib.h"

#define CAT2(a, b) a##b
#define CAT(a, b)  CAT2(a, b)
#define F(name)	   CAT(FT, name)
#define TARGET	   __attribute__((noinline, noclone, used, visibility("default")))

TARGET int F(leaf)(int x)
{
	asm volatile("" : "+r"(x)::"memory");
	return x * 2 + 1;
}

TARGET int F(mid)(int x)
{
	int r = F(leaf)(x);

	asm volatile("" : "+r"(r)::"memory");
	return r + F(leaf)(x + 1);
}

TARGET int F(top)(int x)
{
	int r = F(mid)(x);

	asm volatile("" : "+r"(r)::"memory");
	return r + 1;
}

TARGET int F(deep)(jmp_buf *env, int n)
{
	/* through a pointer the compiler cannot see: real recursion, not a loop */
	int (*volatile self)(jmp_buf *, int) = F(deep);

	if (n == 0)
		longjmp(*env, 7);
	return self(env, n - 1) + 1;
}

TARGET int F(jump)(jmp_buf *env)
{
	int r = F(deep)(env, 3);

	asm volatile("" : "+r"(r)::"memory");
	return r;
}

TARGET int F(slow)(int us)
{
	struct timespec ts = {0, (long)us * 1000};
	int r = F(leaf)(us);

	nanosleep(&ts, NULL);
	return r;
}

TARGET long F(args)(long a1, long a2, long a3, long a4, long a5, long a6, long a7, long a8,
		    struct ft_big s, double d)
{
	return a1 + 2 * a2 + 3 * a3 + 4 * a4 + 5 * a5 + 6 * a6 + 7 * a7 + 8 * a8 + 9 * s.a +
	       10 * s.b + 11 * s.c + (long)(d * 100);
}

TARGET long F(vsum)(int n, ...)
{
	va_list ap;
	long sum = 0;

	va_start(ap, n);
	for (int i = 0; i < n; i++) {
		sum += va_arg(ap, int);
		sum += (long)(va_arg(ap, double) * 10);
	}
	va_end(ap);
	return sum;
}

TARGET int F(tail)(int x)
{
	return F(leaf)(x + 2);
}
