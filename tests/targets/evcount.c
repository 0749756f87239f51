// SPDX-License-Identifier: MIT
/*
 * evcount - calls one function a known number of times, as fast as it
 * can, and prints nothing: a target for counting events exactly (t3100).
 *
 *   evcount N                 ev_hit(i, 0) for i = 0 .. N-1, exit 0
 *   evcount N segv            the same, then a store to NULL (SIGSEGV)
 *   evcount N abort           the same, then abort() (SIGABRT)
 *   evcount N kill            the same, then SIGKILL to itself (no
 *                             handler of anyone runs)
 *   evcount N threads T       T threads, started together, thread t
 *                             calling ev_hit(i, t) for i = 0 .. N-1;
 *                             the main thread calls nothing
 *
 * ev_hit is the function to probe: n=%di is the call's number (in its
 * thread), t=%si the thread's number. Its first instruction stores to a
 * global (rip-relative), so a probe there runs out of line.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

volatile unsigned long ev_sink;

__attribute__((noinline, used)) void ev_hit(unsigned long n, unsigned long t)
{
	ev_sink = n + t;
}

static long calls;
static pthread_barrier_t start;

static void *thread_main(void *arg)
{
	unsigned long t = (unsigned long)arg;

	pthread_barrier_wait(&start);
	for (long i = 0; i < calls; i++)
		ev_hit((unsigned long)i, t);
	return NULL;
}

static int usage(void)
{
	fprintf(stderr, "usage: evcount N [segv|abort|kill|threads T]\n");
	return 2;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	calls = atol(argv[1]);
	if (calls < 0)
		return usage();
	if (argc >= 3 && !strcmp(argv[2], "threads")) {
		int nt = argc >= 4 ? atoi(argv[3]) : 0;
		pthread_t *th;

		if (nt <= 0 || nt > 1024)
			return usage();
		th = calloc((size_t)nt, sizeof(*th));
		if (!th || pthread_barrier_init(&start, NULL, (unsigned)nt))
			return 1;
		for (long t = 0; t < nt; t++)
			if (pthread_create(&th[t], NULL, thread_main, (void *)t)) {
				fprintf(stderr, "evcount: pthread_create failed\n");
				return 1;
			}
		for (int t = 0; t < nt; t++)
			pthread_join(th[t], NULL);
		free(th);
		return 0;
	}
	for (long i = 0; i < calls; i++)
		ev_hit((unsigned long)i, 0);
	if (argc >= 3 && !strcmp(argv[2], "segv")) {
		volatile int *volatile null = NULL;

		*null = 1; /* both volatile, or the compiler drops the store */
	} else if (argc >= 3 && !strcmp(argv[2], "abort")) {
		abort();
	} else if (argc >= 3 && !strcmp(argv[2], "kill")) {
		raise(SIGKILL);
	} else if (argc >= 3) {
		return usage();
	}
	return 0;
}
