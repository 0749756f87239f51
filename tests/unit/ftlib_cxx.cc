// SPDX-License-Identifier: MIT
/*
 * ftlib_cxx.cc - C++ exceptions through function_graph-hooked frames
 * (test_ftrace_cxx): cxx_catcher -> cxx_middle -> cxx_thrower, which
 * throws; cxx_catcher catches and calls cxx_after.
 */
#include <stdexcept>

#define TARGET __attribute__((noinline, noclone, used, visibility("default")))

extern "C" {
TARGET int cxx_thrower(int x)
{
	if (x > 0)
		throw std::runtime_error("thrown");
	return x;
}

TARGET int cxx_middle(int x)
{
	int r = cxx_thrower(x);

	asm volatile("" : "+r"(r)::"memory");
	return r + 1;
}

TARGET int cxx_after(int x)
{
	asm volatile("" : "+r"(x)::"memory");
	return x + 100;
}

TARGET int cxx_catcher(int x)
{
	int r;

	try {
		r = cxx_middle(x);
	} catch (const std::exception &e) {
		r = cxx_after(x);
	}
	asm volatile("" : "+r"(r)::"memory");
	return r;
}
}
