// SPDX-License-Identifier: MIT
/*
 * threads_ip.c - where is every thread of the process right now?
 *
 * Replacing several instructions with one jump is only safe if no thread is
 * stopped between two of them (it would resume in the middle of the jump),
 * and a detour may only be freed when no thread runs in it. The kernel waits
 * for every CPU to pass a quiescent point; in user space the threads are
 * asked:
 *
 *   - a thread blocked in a system call shows its user instruction pointer
 *     in /proc/self/task/TID/syscall, without being disturbed;
 *   - a thread that is running (or runnable) is sent a signal carrying
 *     sonde's cookie; its handler stores the interrupted instruction
 *     pointer. Such a thread is in user code, not in a system call, so the
 *     signal does not interrupt one.
 *
 * The signal is a real-time one the program is unlikely to use; sonde owns
 * it through the same interposition as SIGTRAP and passes any other use of
 * it to the program's handler.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sd_arch/syscall.h>

#define SD_LOG_PREFIX "threads"
#include "common/log.h"
#include "probe/probe.h"
#include "probe/thread.h"

#define SAMPLE_COOKIE 0x534f4e44 /* "SOND" */

static SD_TLS_IE volatile uint64_t sampled_ip;
static SD_TLS_IE volatile unsigned long sampled_seq;

struct sample {
	int tid;
	volatile uint64_t *ip;
	volatile unsigned long *seq;
};

/* a tiny table tid -> where that thread stores its answer */
#define MAX_SAMPLE 4096
static struct sample table[MAX_SAMPLE];
static volatile int table_n;

SD_NOTRACE static void sample_handler(int sig, void *info, void *uc)
{
	const siginfo_t *si = info;

	if (si->si_code != SI_QUEUE || si->si_value.sival_int != SAMPLE_COOKIE ||
	    si->si_pid != (int)sd_raw_syscall0(SYS_getpid)) {
		sd_signal_chain(sig, info, uc);
		return;
	}
	sampled_ip = sd_arch_uc_ip(uc);
	__atomic_add_fetch(&sampled_seq, 1, __ATOMIC_RELEASE);
	/* publish where to find this thread's answer */
	{
		int tid = sd_raw_gettid();
		int n = __atomic_load_n(&table_n, __ATOMIC_ACQUIRE);

		for (int i = 0; i < n; i++)
			if (table[i].tid == tid)
				return;
		if (n < MAX_SAMPLE) {
			int k = __atomic_fetch_add(&table_n, 1, __ATOMIC_ACQ_REL);

			if (k < MAX_SAMPLE) {
				table[k].ip = &sampled_ip;
				table[k].seq = &sampled_seq;
				__atomic_store_n(&table[k].tid, tid, __ATOMIC_RELEASE);
			}
		}
	}
}

static bool inside(uint64_t ip, const struct sd_range *r, int n)
{
	for (int i = 0; i < n; i++)
		if (ip >= r[i].start && ip < r[i].end)
			return true;
	return false;
}

/*
 * 1: the thread is blocked and its ip is known (*ip); 0: it runs; -1: gone.
 * The syscall file reads "nr a1 … a6 sp pc", "-1 sp pc" or "running".
 */
static int blocked_ip(int tid, uint64_t *ip)
{
	char path[64], buf[256];
	int fd, n;
	char *last;

	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = (int)read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	if (!strncmp(buf, "running", 7))
		return 0;
	last = strrchr(buf, ' ');
	if (!last)
		return 0;
	*ip = strtoull(last + 1, NULL, 16);
	return 1;
}

/* where thread @tid stores its answers, once it has answered once */
static bool answer_slot(int tid, volatile uint64_t **ip, volatile unsigned long **seq)
{
	int n = __atomic_load_n(&table_n, __ATOMIC_ACQUIRE);

	for (int i = 0; i < n && i < MAX_SAMPLE; i++)
		if (__atomic_load_n(&table[i].tid, __ATOMIC_ACQUIRE) == tid) {
			*ip = table[i].ip;
			*seq = table[i].seq;
			return true;
		}
	return false;
}

static int ask(int tid)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	si.si_signo = SD_SAMPLE_SIGNAL;
	si.si_code = SI_QUEUE;
	si.si_pid = getpid();
	si.si_uid = getuid();
	si.si_value.sival_int = SAMPLE_COOKIE;
	return (int)sd_raw_syscall6(SYS_rt_tgsigqueueinfo, getpid(), tid, SD_SAMPLE_SIGNAL,
				    (long)&si, 0, 0);
}

struct probe_thread {
	int tid;
	int state; /* 0 unknown, 1 outside (done), 2 asked */
	unsigned long before;
};

static int list_threads(struct probe_thread **out)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;
	struct probe_thread *v = NULL;
	int n = 0, cap = 0, self = sd_raw_gettid();

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		int tid = atoi(de->d_name);

		if (tid <= 0 || tid == self)
			continue;
		if (n == cap) {
			struct probe_thread *w = realloc(v, (cap = cap ? 2 * cap : 16) * sizeof(*v));

			if (!w) {
				free(v);
				closedir(d);
				return -ENOMEM;
			}
			v = w;
		}
		v[n++] = (struct probe_thread){.tid = tid};
	}
	closedir(d);
	*out = v;
	return n;
}

/*
 * A thread seen outside stays outside: it can only enter the ranges through
 * their first byte (a breakpoint, which sends it elsewhere) -- nothing jumps
 * into them. So only threads seen inside, or not seen yet, are asked again.
 * (A thread interrupted inside by a signal whose handler is still running
 * would be missed: its handler's code is where it is seen.)
 */
int sd_threads_outside(const struct sd_range *ranges, int n, int attempts)
{
	struct probe_thread *th = NULL;
	int nth, left, err;

	err = sd_signal_own(SD_SAMPLE_SIGNAL, sample_handler);
	if (err)
		return err;
	nth = list_threads(&th);
	if (nth <= 0) {
		free(th);
		return nth;
	}
	for (int attempt = 0; attempt < attempts; attempt++) {
		struct timespec nap = {0, 20 * 1000};

		/* blocked threads tell where they are; running ones are asked */
		for (int i = 0; i < nth; i++) {
			volatile uint64_t *ip;
			volatile unsigned long *seq;
			uint64_t where;
			int r;

			if (th[i].state == 1)
				continue;
			r = blocked_ip(th[i].tid, &where);
			if (r < 0 || (r > 0 && !inside(where, ranges, n))) {
				th[i].state = 1; /* gone, or blocked outside */
				continue;
			}
			if (r > 0)
				continue; /* blocked inside: ask again later */
			th[i].before = answer_slot(th[i].tid, &ip, &seq) ? *seq : 0;
			if (ask(th[i].tid))
				th[i].state = 1; /* gone */
			else
				th[i].state = 2;
		}
		/* collect the answers: a running thread answers within microseconds */
		for (int waited = 0; waited < 20000; waited++) {
			bool all = true;

			for (int i = 0; i < nth; i++) {
				volatile uint64_t *ip;
				volatile unsigned long *seq;

				if (th[i].state != 2)
					continue;
				if (answer_slot(th[i].tid, &ip, &seq) &&
				    __atomic_load_n(seq, __ATOMIC_ACQUIRE) != th[i].before) {
					th[i].state = inside(*ip, ranges, n) ? 0 : 1;
					continue;
				}
				if (blocked_ip(th[i].tid, &(uint64_t){0}) < 0) {
					th[i].state = 1; /* it exited meanwhile */
					continue;
				}
				all = false;
			}
			if (all)
				break;
			nanosleep(&nap, NULL);
		}
		left = 0;
		for (int i = 0; i < nth; i++)
			if (th[i].state != 1)
				left++;
		if (!left) {
			free(th);
			return 0;
		}
		nanosleep(&nap, NULL);
	}
	free(th);
	return -EBUSY;
}
