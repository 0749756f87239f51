/* SPDX-License-Identifier: MIT */
/*
 * syscall.h - raw system calls for the probe path.
 *
 * The signal handler and trampolines must not call into libc: a user may
 * have put a probe on any libc function (even syscall()). These inline
 * wrappers issue the instruction directly and return -errno.
 */
#ifndef SD_ARCH_SYSCALL_H
#define SD_ARCH_SYSCALL_H

#include <sys/syscall.h>

static inline long sd_raw_syscall6(long nr, long a1, long a2, long a3, long a4, long a5, long a6)
{
	long ret;
	register long r10 __asm__("r10") = a4;
	register long r8 __asm__("r8") = a5;
	register long r9 __asm__("r9") = a6;

	__asm__ __volatile__("syscall"
			     : "=a"(ret)
			     : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9)
			     : "rcx", "r11", "memory");
	return ret;
}

#define sd_raw_syscall0(nr)	     sd_raw_syscall6(nr, 0, 0, 0, 0, 0, 0)
#define sd_raw_syscall1(nr, a)	     sd_raw_syscall6(nr, (long)(a), 0, 0, 0, 0, 0)
#define sd_raw_syscall2(nr, a, b)    sd_raw_syscall6(nr, (long)(a), (long)(b), 0, 0, 0, 0)
#define sd_raw_syscall3(nr, a, b, c) sd_raw_syscall6(nr, (long)(a), (long)(b), (long)(c), 0, 0, 0)

/* the calling thread's id, without libc */
static inline int sd_raw_gettid(void)
{
	return (int)sd_raw_syscall0(SYS_gettid);
}

#endif
