// SPDX-License-Identifier: MIT
/* t6init_lib.c - a library constructor for t6init (t6151) */
#include "t6init.h"

__attribute__((constructor)) static void lib_ctor(void)
{
	t6_ctor_log("lib_ctor", 10);
}

int t6_lib_answer(void)
{
	return 42;
}
