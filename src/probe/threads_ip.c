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
#include <pthread.h>
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

/*
 * A question carries its answer's place and the asking round in the
 * signal's value: COOKIE << 48 | round << 32 | index. The answer goes into
 * the asker's table, never into the thread's own memory: a thread that
 * exits (and whose id comes back for another) leaves nothing stale behind.
 */
#define SAMPLE_COOKIE 0x534fULL /* "SO" */
#define MAX_ASK	      4096

static struct {
	volatile uint64_t ip;
	volatile uint32_t round; /* the round it answered, 0: none yet */
} answers[MAX_ASK];
static uint32_t cur_round;
static pthread_mutex_t ask_lock = PTHREAD_MUTEX_INITIALIZER;

SD_NOTRACE static void sample_handler(int sig, void *info, void *uc)
{
	const siginfo_t *si = info;
	uint64_t v = (uint64_t)(uintptr_t)si->si_value.sival_ptr;
	uint32_t k = (uint32_t)v;

	if (si->si_code != SI_QUEUE || v >> 48 != SAMPLE_COOKIE || k >= MAX_ASK ||
	    si->si_pid != (int)sd_raw_syscall0(SYS_getpid)) {
		sd_signal_chain(sig, info, uc);
		return;
	}
	answers[k].ip = sd_arch_uc_ip(uc);
	__atomic_store_n(&answers[k].round, (uint32_t)(v >> 32) & 0xffff, __ATOMIC_RELEASE);
}

static bool inside(uint64_t ip, const struct sd_range *r, int n)
{
	for (int i = 0; i < n; i++)
		if (ip >= r[i].start && ip < r[i].end)
			return true;
	return false;
}

struct ranges {
	const struct sd_range *r;
	int n;
};

static bool inside_ranges(uint64_t ip, const void *arg)
{
	const struct ranges *rs = arg;

	return inside(ip, rs->r, rs->n);
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

static int ask(int tid, uint32_t k)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	si.si_signo = SD_SAMPLE_SIGNAL;
	si.si_code = SI_QUEUE;
	si.si_pid = getpid();
	si.si_uid = getuid();
	si.si_value.sival_ptr =
	    (void *)(uintptr_t)(SAMPLE_COOKIE << 48 | (uint64_t)cur_round << 32 | k);
	return (int)sd_raw_syscall6(SYS_rt_tgsigqueueinfo, getpid(), tid, SD_SAMPLE_SIGNAL,
				    (long)&si, 0, 0);
}

struct probe_thread {
	int tid;
	int state; /* 0 unknown, 1 outside (done), 2 asked */
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
			struct probe_thread *w =
			    realloc(v, (cap = cap ? 2 * cap : 16) * sizeof(*v));

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
 * A thread interrupted inside by a signal whose handler is still running is
 * seen in its handler: the places the program's handlers interrupted are
 * recorded (signal.c) and looked at too.
 */
static int threads_outside(const struct sd_range *ranges, int n, int attempts)
{
	struct probe_thread *th = NULL;
	int nth, left;

	nth = list_threads(&th);
	if (nth <= 0) {
		free(th);
		return nth;
	}
	if (nth > MAX_ASK) {
		free(th);
		return -EBUSY;
	}
	for (int attempt = 0; attempt < attempts; attempt++) {
		struct timespec nap = {0, 20 * 1000};

		/* a new round: answers to an earlier question do not count */
		cur_round = cur_round % 0xffff + 1;
		/* blocked threads tell where they are; running ones are asked */
		for (int i = 0; i < nth; i++) {
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
			if (ask(th[i].tid, (uint32_t)i))
				th[i].state = 1; /* gone */
			else
				th[i].state = 2;
		}
		/* collect the answers: a running thread answers within microseconds */
		for (int waited = 0; waited < 20000; waited++) {
			bool all = true;

			for (int i = 0; i < nth; i++) {
				if (th[i].state != 2)
					continue;
				if (__atomic_load_n(&answers[i].round, __ATOMIC_ACQUIRE) ==
				    cur_round) {
					th[i].state = inside(answers[i].ip, ranges, n) ? 0 : 1;
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
		/*
		 * a thread in one of the program's signal handlers is seen
		 * there, but resumes where the signal found it
		 */
		if (!left && sd_threads_interrupted(inside_ranges, &(struct ranges){ranges, n}))
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

/* one asker at a time: the answers' table is shared */
int sd_threads_outside(const struct sd_range *ranges, int n, int attempts)
{
	int err = sd_signal_own(SD_SAMPLE_SIGNAL, sample_handler);

	if (err)
		return err;
	pthread_mutex_lock(&ask_lock);
	err = threads_outside(ranges, n, attempts);
	pthread_mutex_unlock(&ask_lock);
	return err;
}
