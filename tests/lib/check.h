/* SPDX-License-Identifier: MIT */
/*
 * check.h - the unit-test harness.
 *
 *   TEST(name) { CHECK(x); CHECK_EQ(a, b); CHECK_STREQ(s, t); }
 *
 * Each TEST runs in a forked child, so a crash fails that test only and is
 * reported with its signal. A test that cannot run here calls
 * SKIP("why"); a binary whose tests all skip exits 77, which CTest reports
 * as skipped (never as passed). Run one test: ./test_x name.
 */
#ifndef SONDE_CHECK_H
#define SONDE_CHECK_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void check_register(const char *name, void (*fn)(void));
void check_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));
void check_skip(const char *why) __attribute__((noreturn));

#define TEST(name)                                                     \
	static void test_##name(void);                                 \
	__attribute__((constructor)) static void test_reg_##name(void) \
	{                                                              \
		check_register(#name, test_##name);                    \
	}                                                              \
	static void test_##name(void)

#define CHECK(cond)                                                         \
	do {                                                                \
		if (!(cond))                                                \
			check_fail(__FILE__, __LINE__, "CHECK(%s)", #cond); \
	} while (0)

#define CHECK_EQ(a, b)                                                                             \
	do {                                                                                       \
		long long check_a_ = (long long)(a), check_b_ = (long long)(b);                    \
		if (check_a_ != check_b_)                                                          \
			check_fail(__FILE__, __LINE__, "%s == %s: %lld (0x%llx) != %lld (0x%llx)", \
				   #a, #b, check_a_, check_a_, check_b_, check_b_);                \
	} while (0)

#define CHECK_STREQ(a, b)                                                                    \
	do {                                                                                 \
		const char *check_a_ = (a), *check_b_ = (b);                                 \
		if (!check_a_ || !check_b_ || strcmp(check_a_, check_b_))                    \
			check_fail(__FILE__, __LINE__, "%s == %s: \"%s\" != \"%s\"", #a, #b, \
				   check_a_ ? check_a_ : "(null)",                           \
				   check_b_ ? check_b_ : "(null)");                          \
	} while (0)

#define SKIP(why) check_skip(why)

#endif
