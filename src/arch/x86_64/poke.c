// SPDX-License-Identifier: MIT
/*
 * poke.c - changing code that other threads are running.
 *
 * Every change to live code goes through here. The protocol is the
 * kernel's text_poke_bp_batch(), with membarrier() standing in for the IPI
 * that serializes the other CPUs:
 *
 *   1. write int3 over the first byte of every site    sync every core
 *   2. write the remaining new bytes of every site     sync every core
 *   3. write the new first byte of every site          sync every core
 *
 * Between 1 and 3 a thread can only see an int3 or the old instruction
 * (before 1), or the complete new instruction (after 3): never a mix. A
 * thread that meets the transient int3 traps; the SIGTRAP handler asks
 * sd_text_poke_trap(), which waits for the batch to end and has the thread
 * resume at the site, where the new instruction now is. (The kernel
 * emulates the new instruction instead because a CPU cannot wait; a thread
 * can.)
 *
 * Bytes are written through /proc/self/mem, which writes a private copy of
 * a read-only page without ever making it writable; if the kernel refuses
 * that, the page is made writable for the length of one memcpy.
 */
#include <cpuid.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <sd_arch/syscall.h>

#define SD_LOG_PREFIX "poke"
#include "arch/arch.h"
#include "common/compiler.h"
#include "common/log.h"
#include "common/safe_mem.h"

static pthread_mutex_t poke_lock = PTHREAD_MUTEX_INITIALIZER;

/* odd while a multi-byte batch is in progress; read by the trap handler */
static volatile unsigned long poke_seq;

static int membarrier_state; /* 0 unknown, 1 registered, -1 unavailable, -2 none at all */

volatile unsigned long sd_code_gen;

static void membarrier_setup(void)
{
	const char *e = getenv("SONDE_MEMBARRIER");
	long r;

	if (membarrier_state)
		return;
	/* SONDE_MEMBARRIER=0: as on a kernel without it (tests the fallback) */
	if (e && !strcmp(e, "0")) {
		membarrier_state = -2;
		return;
	}
	r = sd_raw_syscall3(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE, 0,
			    0);
	membarrier_state = r == 0 ? 1 : -1;
	if (r)
		sd_warn("membarrier(SYNC_CORE) unavailable (%s): falling back to a full barrier",
			strerror((int)-r));
}

/*
 * No membarrier at all (seccomp, nohz_full, a kernel without it): taking
 * write permission away from a page the process has touched makes the
 * kernel shoot down its TLB entry on every CPU running one of our threads,
 * and each interrupt is a full barrier there (what JVMs do for the same).
 */
static void ipi_barrier(void)
{
	/* one at a time: another's read-only turn between our two would fault our write */
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static volatile char *page;

	pthread_mutex_lock(&lock);
	if (!page) {
		void *p =
		    mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p != MAP_FAILED)
			page = p;
	}
	if (page) {
		mprotect((void *)page, 4096, PROT_READ | PROT_WRITE);
		page[0]++; /* the page is present and dirty: its TLB entries matter */
		mprotect((void *)page, 4096, PROT_READ);
	}
	pthread_mutex_unlock(&lock);
}

/*
 * A core-serializing instruction for the calling thread. Not cpuid: in a
 * virtual machine it exits to the hypervisor (6.8 us here, on Firecracker,
 * and every site patched paid three). SERIALIZE where the CPU has it
 * (CPUID.(EAX=7,ECX=0):EDX[14]; 30 ns here), else an IRET to ourselves, as
 * the kernel's sync_core() does (95 ns), below the red zone.
 */
static void serialize_core(void)
{
	static int has_serialize = -1;
	int has = __atomic_load_n(&has_serialize, __ATOMIC_RELAXED);
	unsigned long tmp;

	if (has < 0) {
		unsigned int a, b, c, d;

		has = __get_cpuid_count(7, 0, &a, &b, &c, &d) && (d & (1u << 14));
		__atomic_store_n(&has_serialize, has, __ATOMIC_RELAXED);
	}
	if (has) {
		__asm__ __volatile__(".byte 0x0f, 0x01, 0xe8" ::: "memory"); /* serialize */
		return;
	}
	__asm__ __volatile__("lea -128(%%rsp), %%rsp\n\t"
			     "mov %%ss, %k0\n\t"
			     "pushq %0\n\t"
			     "pushq %%rsp\n\t"
			     "addq $8, (%%rsp)\n\t"
			     "pushfq\n\t"
			     "mov %%cs, %k0\n\t"
			     "pushq %0\n\t"
			     "lea 1f(%%rip), %0\n\t"
			     "pushq %0\n\t"
			     "iretq\n"
			     "1:\tlea 128(%%rsp), %%rsp"
			     : "=&r"(tmp)
			     :
			     : "cc", "memory");
}

void sd_sync_cores(void)
{
	membarrier_setup();
	if (membarrier_state > 0) {
		long r = sd_raw_syscall3(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE,
					 0, 0);
		if (r == -EPERM) { /* registration lost, e.g. in a forked child */
			membarrier_state = 0;
			membarrier_setup();
			if (membarrier_state > 0)
				sd_raw_syscall3(SYS_membarrier,
						MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE, 0, 0);
		}
	} else if (membarrier_state == -2 ||
		   sd_raw_syscall3(SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0)) {
		/* MEMBARRIER_CMD_GLOBAL at least orders memory on every CPU; without it: */
		ipi_barrier();
	}
	serialize_core();
}

/* protection of the mapping containing @addr, from /proc/self/maps */
static int page_prot(uintptr_t addr)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[512], perms[8];
	unsigned long lo, hi;
	int prot = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3)
			continue;
		if (addr >= lo && addr < hi) {
			prot = (perms[0] == 'r' ? PROT_READ : 0) |
			       (perms[1] == 'w' ? PROT_WRITE : 0) |
			       (perms[2] == 'x' ? PROT_EXEC : 0);
			break;
		}
	}
	fclose(f);
	return prot;
}

static int write_mprotect(void *addr, const void *src, size_t len)
{
	uintptr_t page = SD_ALIGN_DOWN((uintptr_t)addr, 4096);
	size_t span = SD_ALIGN_UP((uintptr_t)addr + len, 4096) - page;
	int prot = page_prot((uintptr_t)addr);

	if (prot < 0)
		return -EFAULT;
	if (mprotect((void *)page, span, prot | PROT_WRITE | PROT_EXEC))
		return -errno;
	memcpy(addr, src, len);
	if (mprotect((void *)page, span, prot))
		return -errno;
	return 0;
}

static int mem_fd = -1;

static int write_bytes(void *addr, const void *src, size_t len)
{
	if (mem_fd >= 0) {
		ssize_t n = pwrite(mem_fd, src, len, (off_t)(uintptr_t)addr);

		if (n == (ssize_t)len)
			return 0;
		if (n < 0 && errno != EIO && errno != EACCES && errno != EPERM)
			return -errno;
	}
	return write_mprotect(addr, src, len);
}

static void mem_open(void)
{
	/* opened per batch so that the program never sees an extra descriptor linger */
	mem_fd = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
}

static void mem_close(void)
{
	if (mem_fd >= 0)
		close(mem_fd);
	mem_fd = -1;
}

int sd_text_write(void *addr, const void *src, size_t len)
{
	int err;

	pthread_mutex_lock(&poke_lock);
	mem_open();
	err = write_bytes(addr, src, len);
	mem_close();
	pthread_mutex_unlock(&poke_lock);
	if (err)
		return sd_error(err, "cannot write code at %p: %s", addr, strerror(-err));
	return 0;
}

int sd_text_poke_batch(struct sd_poke *v, int n)
{
	return sd_text_poke_batch_settle(v, n, NULL, NULL);
}

int sd_text_poke_batch_settle(struct sd_poke *v, int n, int (*settle)(void *arg), void *arg)
{
	static const uint8_t bp = SD_ARCH_BP_INSN;
	bool multi = false;
	int err = 0, i;

	for (i = 0; i < n; i++) {
		if (!v[i].len || v[i].len > sizeof(v[i].new))
			return sd_error(-EINVAL, "bad poke length %u", v[i].len);
		/* (code unmapped under a probe, dlclose: an error, not a crash) */
		if (sd_safe_read(v[i].old, v[i].addr, v[i].len))
			return sd_error(-EFAULT, "0x%lx: no code there any more",
					(unsigned long)(uintptr_t)v[i].addr);
		multi |= v[i].len > 1;
	}

	pthread_mutex_lock(&poke_lock);
	__atomic_add_fetch(&sd_code_gen, 1, __ATOMIC_SEQ_CST);
	mem_open();
	if (!multi) {
		for (i = 0; i < n && !err; i++)
			err = write_bytes(v[i].addr, v[i].new, 1);
		goto out_sync;
	}

	__atomic_add_fetch(&poke_seq, 1, __ATOMIC_SEQ_CST); /* odd: in progress */

	for (i = 0; i < n && !err; i++)
		err = write_bytes(v[i].addr, &bp, 1);
	sd_sync_cores();
	/* no thread gets in now but through a breakpoint: none may be left inside */
	if (!err && settle)
		err = settle(arg);
	for (i = 0; i < n && !err; i++)
		if (v[i].len > 1)
			err = write_bytes((uint8_t *)v[i].addr + 1, v[i].new + 1, v[i].len - 1);
	sd_sync_cores();
	for (i = 0; i < n && !err; i++)
		err = write_bytes(v[i].addr, v[i].new, 1);
	if (err) {
		/* put back what was there: int3 first, tails, then first bytes */
		for (i = 0; i < n; i++)
			write_bytes(v[i].addr, &bp, 1);
		sd_sync_cores();
		for (i = 0; i < n; i++)
			if (v[i].len > 1)
				write_bytes((uint8_t *)v[i].addr + 1, v[i].old + 1, v[i].len - 1);
		sd_sync_cores();
		for (i = 0; i < n; i++)
			write_bytes(v[i].addr, v[i].old, 1);
	}
out_sync:
	sd_sync_cores();
	if (multi) {
		__atomic_add_fetch(&poke_seq, 1, __ATOMIC_SEQ_CST); /* even: done */
	}
	mem_close();
	__atomic_add_fetch(&sd_code_gen, 1, __ATOMIC_SEQ_CST);
	pthread_mutex_unlock(&poke_lock);
	if (err)
		return sd_error(err, "cannot patch code: %s", strerror(-err));
	return 0;
}

/*
 * Signal context: a raw sched_yield, nothing from libc. Any breakpoint the
 * dispatcher does not own that is met while a batch is in progress is
 * treated as transient: after the batch the thread goes back to the site;
 * if it was the program's own int3 it simply traps again, and is passed on.
 */
bool sd_text_poke_trap(uint64_t bp_addr)
{
	unsigned long seq = __atomic_load_n(&poke_seq, __ATOMIC_ACQUIRE);

	(void)bp_addr;
	if (!(seq & 1))
		return false;
	while (__atomic_load_n(&poke_seq, __ATOMIC_ACQUIRE) == seq)
		sd_raw_syscall0(SYS_sched_yield);
	return true;
}
