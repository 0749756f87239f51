// SPDX-License-Identifier: MIT
/*
 * t6init.c - a program with every kind of constructor (t6151):
 * .preinit_array, DT_INIT (linked with -Wl,-init=exe_init), two
 * .init_array entries with priorities, and its library's.
 */
#include "t6init.h"

int t6_lib_answer(void);

static void pre1(int argc, char **argv, char **envp)
{
	(void)argc, (void)argv;
	t6_ctor_log_env("pre1", 2, envp);
}

__attribute__((section(".preinit_array"), used)) static void (*const preinit[])(int, char **,
										char **) = {pre1};

void exe_init(void);
void exe_init(void)
{
	t6_ctor_log("exe_init", 3);
}

__attribute__((constructor(101))) static void ctor_a(void)
{
	t6_ctor_log("ctor_a", 5);
}

__attribute__((constructor)) static void ctor_b(void)
{
	t6_ctor_log("ctor_b", 1);
}

int main(void)
{
	printf("main: %d\n", t6_lib_answer());
	return 0;
}
