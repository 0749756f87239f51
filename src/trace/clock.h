/* SPDX-License-Identifier: MIT */
/*
 * clock.h - trace clocks, as the kernel's trace_clock offers them.
 *
 *   local, global, perf   the TSC, converted to ns (invariant TSC here, so
 *                         local is global)
 *   counter               an atomic counter: orders, does not time
 *   uptime                jiffies-like: CLOCK_MONOTONIC_COARSE
 *   mono, mono_raw, boot, tai   the POSIX clocks, read through the vDSO
 *   x86-tsc               raw TSC cycles
 *
 * sd_clock_read() is signal-safe and calls no libc function (the vDSO's
 * clock_gettime is found once at start), so a probe on clock_gettime never
 * sees sonde.
 */
#ifndef SD_TRACE_CLOCK_H
#define SD_TRACE_CLOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/rseq.h>

#include <sd_arch/tsc.h>

enum sd_clock_id {
	SD_CLOCK_LOCAL = 0,
	SD_CLOCK_GLOBAL,
	SD_CLOCK_COUNTER,
	SD_CLOCK_UPTIME,
	SD_CLOCK_PERF,
	SD_CLOCK_MONO,
	SD_CLOCK_MONO_RAW,
	SD_CLOCK_BOOT,
	SD_CLOCK_TAI,
	SD_CLOCK_X86_TSC,
	SD_CLOCK_NR,
};

/* "[local] global counter ..." as trace_clock reads */
extern const char *const sd_clock_names[SD_CLOCK_NR];
int sd_clock_by_name(const char *name);

/* conversion from raw TSC to ns, shared with consumers in the region header */
struct sd_clock_params {
	uint64_t tsc_hz;
	uint64_t mult; /* ns = ((tsc - tsc0) * mult) >> shift + ns0 */
	uint32_t shift;
	uint64_t tsc0, ns0;
};

void sd_clock_init(struct sd_clock_params *p);
/* a raw timestamp of clock @id, and the cpu the thread runs on */
uint64_t sd_clock_read(int id, uint16_t *cpu);
/* the cpu alone (for a record whose time was read before) */
void sd_clock_cpu(uint16_t *cpu);
/* the cpu this thread runs on, from its rseq area; false if glibc did not register one */
static inline bool sd_clock_rseq_cpu(uint16_t *cpu)
{
	const volatile struct rseq *rs;
	int32_t id;

	if (!__rseq_size)
		return false;
	rs = (const void *)((char *)__builtin_thread_pointer() + __rseq_offset);
	id = (int32_t)rs->cpu_id;
	if (id < 0)
		return false;
	*cpu = (uint16_t)id;
	return true;
}

/* whether clock @id reads the TSC (local, the default, among them) */
static inline bool sd_clock_is_tsc(int id)
{
	return id == SD_CLOCK_LOCAL || id == SD_CLOCK_GLOBAL || id == SD_CLOCK_PERF ||
	       id == SD_CLOCK_X86_TSC;
}

/* sd_clock_read(), inline for the TSC clocks (local, the default) */
static inline uint64_t sd_clock_read_inline(int id, uint16_t *cpu)
{
	if (sd_clock_is_tsc(id)) {
		if (!cpu || sd_clock_rseq_cpu(cpu))
			return sd_arch_tsc();
		return sd_arch_tscp(cpu);
	}
	return sd_clock_read(id, cpu);
}

/* a raw timestamp of @id in nanoseconds (x86-tsc and counter: unchanged) */
uint64_t sd_clock_to_ns(const struct sd_clock_params *p, int id, uint64_t raw);

#endif
