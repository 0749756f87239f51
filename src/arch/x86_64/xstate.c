// SPDX-License-Identifier: MIT
/*
 * xstate.c - what the trampolines may use to save the vector state
 * (vecstate.h): which registers the OS enabled and whether XGETBV(1) can
 * tell which are in use; and for the whole state, XSAVEC where the CPU has
 * it, XSAVE otherwise, FXSAVE on CPUs (or kernels) without XSAVE, with how
 * many bytes that takes for the features the kernel enabled.
 */
#include <cpuid.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vecstate.h"

/* read by the trampolines */
uint64_t sd_xstate_size __attribute__((visibility("hidden"))) = 4096;
int sd_xstate_mode __attribute__((visibility("hidden"))); /* 0 fxsave, 1 xsave, 2 xsavec */
int sd_vec_features __attribute__((visibility("hidden")));

static uint64_t xcr0(void)
{
	uint32_t lo, hi;

	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return (uint64_t)hi << 32 | lo;
}

/* before the agent's constructor, which may start a tracer (thread.c) */
__attribute__((constructor(101))) static void xstate_init(void)
{
	unsigned int a, b, c, d;
	const char *e = getenv("SONDE_XSAVE");
	uint64_t size, xcr;

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

	/* SONDE_XSAVE=1: always the whole state (to compare, and a way out) */
	if (!(a & 0x4) || (e && *e && strcmp(e, "0")))
		return;
	xcr = xcr0();
	if ((xcr & 0x3) != 0x3) /* x87 and SSE: always, but be sure */
		return;
	sd_vec_features = SD_VEC_FAST;
	if (xcr & 0x4)
		sd_vec_features |= SD_VEC_AVX;
	/* kmovq needs AVX512BW, an EVEX xmm16-31 AVX512VL (not on Xeon Phi): else XSAVE */
	if ((xcr & 0xe0) == 0xe0) {
		__cpuid_count(7, 0, a, b, c, d);
		if (!((b & (1u << 30)) && (b & (1u << 31)))) { /* AVX512BW, AVX512VL */
			sd_vec_features = 0;
			return;
		}
		if ((xcr & 0xe4) == 0xe4)
			sd_vec_features |= SD_VEC_AVX512;
	}
}
