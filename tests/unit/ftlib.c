// SPDX-License-Identifier: MIT
/*
 * ftlib.c - the same three-level call tree, built once per way the
 * function tracers hook code (tests/unit/ftrace.cmake): FT is the name
 * prefix (plain_, pfe_, fentry_, mcount_).
 *
 *   FT_top(x) -> FT_mid(x) -> FT_leaf(x), FT_leaf(x + 1)
 *   FT_jump(env) -> FT_deep(env, 3) -> ... longjmp(env) from the bottom
 *   FT_slow(us)  -> FT_leaf, then sleeps us microseconds
 */
#include <setjmp.h>
#include <time.h>

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
