// SPDX-License-Identifier: MIT
/*
 * t7_target - a busy multi-threaded process to attach to (issue 7 tests).
 *
 *   t7_target [-t THREADS] [-f] [-x] [-s] [-o COUNTFILE]
 *
 * THREADS workers (default 4) call t7_work(id, n, tag) in a loop, a few
 * microseconds apart; the main thread waits in sigsuspend() (a blocking
 * system call the injector finds it in) and, with -f, forks a child every
 * 100 ms that calls t7_child(k) 50 times and exits (-x: the child executes
 * this program again as "t7_target --exec-child", which does the same).
 * -s: the workers spin without sleeping. On SIGTERM or SIGINT every thread
 * stops; with -o the total number of t7_work calls is written to COUNTFILE.
 * Prints its pid on stdout, then "ready".
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;
static unsigned long calls[64];
static int spin;

__attribute__((noinline)) long t7_work(int id, long n, const char *tag)
{
	__asm__ volatile("" ::: "memory");
	return n + id + (tag[0] == 'w');
}

__attribute__((noinline)) int t7_child(int k)
{
	__asm__ volatile("" ::: "memory");
	return k * 2;
}

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static void on_alarm(int sig)
{
	(void)sig;
}

static void *worker(void *arg)
{
	int id = (int)(long)arg;
	struct timespec nap = {0, 20 * 1000};
	char tag[16];

	snprintf(tag, sizeof(tag), "w%d", id);
	while (!stop) {
		t7_work(id, (long)calls[id], tag);
		calls[id]++;
		if (!spin)
			nanosleep(&nap, NULL);
	}
	return NULL;
}

static void child_body(void)
{
	struct timespec nap = {0, 1000 * 1000};

	for (int k = 0; k < 50; k++) {
		t7_child(k);
		nanosleep(&nap, NULL);
	}
}

int main(int argc, char **argv)
{
	int nthreads = 4, do_fork = 0, do_exec = 0;
	const char *countfile = NULL;
	pthread_t th[64];
	struct sigaction sa = {.sa_handler = on_term};
	sigset_t block, old;

	if (argc > 1 && !strcmp(argv[1], "--exec-child")) {
		child_body();
		return 0;
	}
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-t") && i + 1 < argc)
			nthreads = atoi(argv[++i]);
		else if (!strcmp(argv[i], "-f"))
			do_fork = 1;
		else if (!strcmp(argv[i], "-x"))
			do_fork = do_exec = 1;
		else if (!strcmp(argv[i], "-s"))
			spin = 1;
		else if (!strcmp(argv[i], "-o") && i + 1 < argc)
			countfile = argv[++i];
	}
	if (nthreads < 1 || nthreads > 64)
		nthreads = 4;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGALRM);
	/* workers never take SIGTERM: the main thread does, in sigsuspend() */
	pthread_sigmask(SIG_BLOCK, &block, &old);
	for (int i = 0; i < nthreads; i++)
		pthread_create(&th[i], NULL, worker, (void *)(long)i);
	printf("%d\nready\n", (int)getpid());
	fflush(stdout);
	if (do_fork) {
		struct itimerval it = {{0, 100 * 1000}, {0, 100 * 1000}};

		sa.sa_handler = on_alarm;
		sigaction(SIGALRM, &sa, NULL);
		setitimer(ITIMER_REAL, &it, NULL);
	}
	while (!stop) {
		sigset_t wait_mask = old;

		sigdelset(&wait_mask, SIGALRM);
		sigsuspend(&wait_mask);
		if (do_fork && !stop) {
			pid_t c = fork();

			if (c == 0) {
				if (do_exec)
					execl("/proc/self/exe", argv[0], "--exec-child",
					      (char *)NULL);
				child_body();
				_exit(0);
			}
			while (waitpid(-1, NULL, WNOHANG) > 0)
				;
		}
	}
	for (int i = 0; i < nthreads; i++)
		pthread_join(th[i], NULL);
	while (waitpid(-1, NULL, 0) > 0)
		;
	if (countfile) {
		FILE *f = fopen(countfile, "w");
		unsigned long total = 0;

		for (int i = 0; i < nthreads; i++)
			total += calls[i];
		if (f) {
			fprintf(f, "%lu\n", total);
			fclose(f);
		}
	}
	return 0;
}
