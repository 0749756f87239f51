// SPDX-License-Identifier: MIT
/*
 * xstate.c - how the trampolines save the vector state: XSAVEC where the CPU
 * has it, XSAVE otherwise, FXSAVE on CPUs (or kernels) without XSAVE; and
 * how many bytes that takes for the features the kernel enabled.
 */
#include <cpuid.h>
#include <stdint.h>

/* read by the trampolines */
uint64_t sd_xstate_size __attribute__((visibility("hidden"))) = 4096;
int sd_xstate_mode __attribute__((visibility("hidden"))); /* 0 fxsave, 1 xsave, 2 xsavec */

__attribute__((constructor)) static void xstate_init(void)
{
	unsigned int a, b, c, d;
	uint64_t size;

	if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) { /* OSXSAVE */
		sd_xstate_mode = 0;
		sd_xstate_size = 512 + 64 + 64; /* the header the trampoline zeroes, and slack */
		return;
	}
	__cpuid_count(0xd, 0, a, b, c, d);
	size = b; /* bytes for the features enabled in XCR0, standard layout */
	__cpuid_count(0xd, 1, a, b, c, d);
	sd_xstate_mode = (a & 0x2) ? 2 : 1;
	/* room to align to 64, and never below the legacy area plus header */
	if (size < 576)
		size = 576;
	sd_xstate_size = size + 64;
}
