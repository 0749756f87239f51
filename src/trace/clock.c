// SPDX-License-Identifier: MIT
/*
 * clock.c - trace clocks without libc on the hot path.
 *
 * The TSC clocks read `rdtsc`, and the cpu number from the thread's rseq
 * area, which the kernel keeps current and glibc registers for every thread
 * (`rdtscp` also yields it, from TSC_AUX, but costs twice as much in a
 * virtual machine; it remains the fallback when rseq is not registered). The POSIX clocks call the
 * vDSO's clock_gettime directly: its address is found once, from the vDSO image's own dynamic
 * symbols, so a user's probe on libc's clock_gettime never fires for sonde.
 */
#include <elf.h>
#include <stdbool.h>
#include <string.h>
#include <sys/auxv.h>
#include <time.h>

#include <sd_arch/syscall.h>
#include <sd_arch/tsc.h>

#include "common/compiler.h"
#include "trace/clock.h"

const char *const sd_clock_names[SD_CLOCK_NR] = {
    "local", "global", "counter", "uptime", "perf", "mono", "mono_raw", "boot", "tai", "x86-tsc",
};

int sd_clock_by_name(const char *name)
{
	for (int i = 0; i < SD_CLOCK_NR; i++)
		if (!strcmp(sd_clock_names[i], name))
			return i;
	return -1;
}

typedef int (*vdso_gettime_t)(clockid_t, struct timespec *);
static vdso_gettime_t vdso_gettime;
static unsigned long counter;

/* find a symbol in the vDSO image mapped at @base (its dynamic symbols) */
static void *vdso_sym(const char *name)
{
	const Elf64_Ehdr *eh = (const void *)getauxval(AT_SYSINFO_EHDR);
	const Elf64_Phdr *ph;
	const Elf64_Dyn *dyn = NULL;
	const Elf64_Sym *symtab = NULL;
	const char *strtab = NULL;
	const uint32_t *hash = NULL;
	uint64_t load = 0;

	if (!eh || memcmp(eh->e_ident, ELFMAG, SELFMAG))
		return NULL;
	ph = (const void *)((const char *)eh + eh->e_phoff);
	for (int i = 0; i < eh->e_phnum; i++) {
		if (ph[i].p_type == PT_LOAD && !load)
			load = (uint64_t)eh + ph[i].p_offset - ph[i].p_vaddr;
		if (ph[i].p_type == PT_DYNAMIC)
			dyn = (const void *)((const char *)eh + ph[i].p_offset);
	}
	if (!dyn || !load)
		return NULL;
	for (; dyn->d_tag != DT_NULL; dyn++) {
		if (dyn->d_tag == DT_SYMTAB)
			symtab = (const void *)(load + dyn->d_un.d_ptr);
		else if (dyn->d_tag == DT_STRTAB)
			strtab = (const void *)(load + dyn->d_un.d_ptr);
		else if (dyn->d_tag == DT_HASH)
			hash = (const void *)(load + dyn->d_un.d_ptr);
	}
	if (!symtab || !strtab || !hash)
		return NULL;
	for (uint32_t i = 0; i < hash[1]; i++)
		if (symtab[i].st_shndx != SHN_UNDEF && !strcmp(strtab + symtab[i].st_name, name))
			return (void *)(load + symtab[i].st_value);
	return NULL;
}

static uint64_t ts_ns(clockid_t id)
{
	struct timespec ts;

	if (vdso_gettime)
		vdso_gettime(id, &ts);
	else
		sd_raw_syscall2(SYS_clock_gettime, id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* the TSC and the cpu this thread runs on */
static inline uint64_t tsc_cpu(uint16_t *cpu)
{
	if (!cpu || sd_clock_rseq_cpu(cpu))
		return sd_arch_tsc();
	return sd_arch_tscp(cpu);
}

void sd_clock_init(struct sd_clock_params *p)
{
	uint64_t t0, t1, n0, n1;

	if (!vdso_gettime)
		vdso_gettime = (vdso_gettime_t)vdso_sym("__vdso_clock_gettime");
	/* a couple of milliseconds against CLOCK_MONOTONIC gives the TSC rate */
	n0 = ts_ns(CLOCK_MONOTONIC);
	t0 = sd_arch_tscp(NULL);
	do {
		n1 = ts_ns(CLOCK_MONOTONIC);
		t1 = sd_arch_tscp(NULL);
	} while (n1 - n0 < 2000000);
	p->tsc_hz = (t1 - t0) * 1000000000ull / (n1 - n0);
	p->shift = 24;
	p->mult = ((n1 - n0) << p->shift) / (t1 - t0);
	p->tsc0 = t0;
	p->ns0 = n0;
}

SD_NOTRACE uint64_t sd_clock_read(int id, uint16_t *cpu)
{
	uint64_t v;

	switch (id) {
	case SD_CLOCK_LOCAL:
	case SD_CLOCK_GLOBAL:
	case SD_CLOCK_PERF:
	case SD_CLOCK_X86_TSC:
		return tsc_cpu(cpu);
	case SD_CLOCK_COUNTER:
		v = __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
		break;
	case SD_CLOCK_UPTIME:
		v = ts_ns(CLOCK_MONOTONIC_COARSE);
		break;
	case SD_CLOCK_MONO:
		v = ts_ns(CLOCK_MONOTONIC);
		break;
	case SD_CLOCK_MONO_RAW:
		v = ts_ns(CLOCK_MONOTONIC_RAW);
		break;
	case SD_CLOCK_BOOT:
		v = ts_ns(CLOCK_BOOTTIME);
		break;
	default:
		v = ts_ns(CLOCK_TAI);
		break;
	}
	if (cpu && !sd_clock_rseq_cpu(cpu))
		sd_arch_tscp(cpu);
	return v;
}

SD_NOTRACE void sd_clock_cpu(uint16_t *cpu)
{
	if (!sd_clock_rseq_cpu(cpu))
		sd_arch_tscp(cpu);
}

uint64_t sd_clock_to_ns(const struct sd_clock_params *p, int id, uint64_t raw)
{
	switch (id) {
	case SD_CLOCK_LOCAL:
	case SD_CLOCK_GLOBAL:
	case SD_CLOCK_PERF: {
		/* signed: records taken just before tsc0 on another cpu stay sane */
		int64_t d = (int64_t)(raw - p->tsc0);
		__int128 ns = (__int128)d * p->mult;

		return p->ns0 + (int64_t)(ns >> p->shift);
	}
	default:
		return raw;
	}
}
