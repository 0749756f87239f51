/* SPDX-License-Identifier: MIT */
/*
 * sd_arch/tsc.h - the time-stamp counter, for the trace clocks.
 *
 * rdtsc is not ordered with the instructions around it; a trace stamp does
 * not need it to be. rdtscp also gives TSC_AUX, where Linux keeps the cpu
 * number, but costs about twice as much (in a virtual machine notably).
 */
#ifndef SD_ARCH_TSC_H
#define SD_ARCH_TSC_H

#include <stdint.h>

static inline uint64_t sd_arch_tsc(void)
{
	uint32_t lo, hi;

	__asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

/* the TSC and, if @cpu, the cpu number from TSC_AUX */
static inline uint64_t sd_arch_tscp(uint16_t *cpu)
{
	uint32_t lo, hi, aux;

	__asm__ __volatile__("rdtscp" : "=a"(lo), "=d"(hi), "=c"(aux));
	if (cpu)
		*cpu = aux & 0xfff;
	return ((uint64_t)hi << 32) | lo;
}

#endif
