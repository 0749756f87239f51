// SPDX-License-Identifier: MIT
/*
 * safe_mem.c - fault-free access to possibly unmapped memory of this process.
 *
 * process_vm_readv() on our own pid walks the page tables in the kernel and
 * returns EFAULT for a hole, where a plain load would raise SIGSEGV in the
 * traced program. Our own process always passes the ptrace access check.
 */
#include <errno.h>
#include <sys/uio.h>
#include <unistd.h>

#include <sd_arch/syscall.h>

#include "common/compiler.h"
#include "common/safe_mem.h"

static int self_pid;

static int pid_self(void)
{
	int pid = READ_ONCE(self_pid);
	int now;

	/* a fork leaves the cached pid stale; getpid is cheap enough to check */
	now = (int)sd_raw_syscall0(SYS_getpid);
	if (pid != now)
		WRITE_ONCE(self_pid, now);
	return now;
}

static long vm_rw(int nr, void *local, const void *remote, size_t len)
{
	struct iovec l = {.iov_base = local, .iov_len = len};
	struct iovec r = {.iov_base = (void *)remote, .iov_len = len};

	return sd_raw_syscall6(nr, pid_self(), (long)&l, 1, (long)&r, 1, 0);
}

int sd_safe_read(void *dst, const void *src, size_t len)
{
	long n;

	if (!len)
		return 0;
	n = vm_rw(SYS_process_vm_readv, dst, src, len);
	return n == (long)len ? 0 : -EFAULT;
}

int sd_safe_write(void *dst, const void *src, size_t len)
{
	long n;

	if (!len)
		return 0;
	n = vm_rw(SYS_process_vm_writev, (void *)src, dst, len);
	return n == (long)len ? 0 : -EFAULT;
}

long sd_safe_read_str(char *dst, const char *src, size_t max)
{
	size_t done = 0;

	if (!max)
		return -EFAULT;
	/* read up to page ends so one bad page does not hide a good prefix */
	while (done < max) {
		unsigned long addr = (unsigned long)src + done;
		size_t chunk = 4096 - (addr & 4095);
		long n;

		if (chunk > max - done)
			chunk = max - done;
		n = vm_rw(SYS_process_vm_readv, dst + done, src + done, chunk);
		if (n <= 0)
			return done ? (dst[done - 1] = '\0', (long)done - 1) : -EFAULT;
		for (long i = 0; i < n; i++)
			if (!dst[done + i])
				return (long)(done + i);
		done += n;
	}
	dst[max - 1] = '\0';
	return (long)max - 1;
}
