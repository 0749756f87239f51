// SPDX-License-Identifier: MIT
/*
 * t3_target.c - a deterministic program for the integration tests of the
 * trace events, the virtual tracefs and the sonde command (t3*.sh).
 *
 *   t3_target run N      N rounds; round i calls work(A[i], S[i]) then
 *                        t3_step(i - 3, T[i]); prints one log line per call:
 *                          work a=<u64> s=<string or (null)> ret=<hex>
 *                          step n=<s64> tag=<string>
 *   t3_target crash N    N calls of work() (log lines as above), then abort()
 *   t3_target loop [noint]
 *                        calls work() every 20 ms forever, printing
 *                        "tick K" after each (flushed); noint: SIGINT ignored
 *   t3_target cmd        reads commands from stdin, one a line:
 *                          call N   N more calls of work(), then "done TOTAL"
 *                          exit     exit 0 (EOF too)
 *   t3_target exit N     exit with status N without calling anything
 *
 * The values walk a table made to exercise the fetch types: a u64 that needs
 * all 64 bits, an empty string, a string with a space and a quote, a long
 * one, and a NULL pointer (the fault marker); work() returns -1 (all bits
 * set) for the NULL string. Every line is flushed before the next call, so
 * a program killed midway has logged every call it made. The functions'
 * names are unique in the process (libc exports a `step`, for one).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const unsigned long A[] = {
    7, 1007, 18446744073709551615UL, 0, 4294967296UL, 123456789012345UL, 42,
};
static const char *const S[] = {
    "alpha",
    "",
    "two words",
    "quote\"d",
    NULL,
    "a-long-string-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFGHIJKLMNOPQRSTUVWXYZ-0123456789-end",
    "gamma",
};
static const char *const T[] = {"green", "gray", "blue"};

#define NA (sizeof(A) / sizeof(A[0]))
#define NS (sizeof(S) / sizeof(S[0]))
#define NT (sizeof(T) / sizeof(T[0]))

volatile unsigned long sink;

long work(unsigned long a, const char *s);
long t3_step(long n, const char *tag);

__attribute__((noinline)) long work(unsigned long a, const char *s)
{
	if (!s)
		return -1;
	return (long)(a * 3 + strlen(s));
}

__attribute__((noinline)) long t3_step(long n, const char *tag)
{
	sink += (unsigned long)n + (unsigned char)tag[0];
	return n * 2;
}

static unsigned long calls;
static int stamps; /* T3_CLOCK set: log CLOCK_MONOTONIC around each work() */

static void one_work(void)
{
	unsigned long i = calls++;
	unsigned long a = A[i % NA];
	const char *s = S[i % NS];
	struct timespec t0, t1;
	long r;

	if (stamps)
		clock_gettime(CLOCK_MONOTONIC, &t0);
	r = work(a, s);
	if (stamps)
		clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("work a=%lu s=%s ret=0x%lx\n", a, s ? s : "(null)", (unsigned long)r);
	if (stamps)
		printf("clock %ld.%09ld %ld.%09ld\n", (long)t0.tv_sec, t0.tv_nsec, (long)t1.tv_sec,
		       t1.tv_nsec);
	fflush(stdout);
}

static void one_step(unsigned long i)
{
	long n = (long)i - 3;
	const char *t = T[i % NT];

	t3_step(n, t);
	printf("step n=%ld tag=%s\n", n, t);
	fflush(stdout);
}

static void nap_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "run";
	long n = argc > 2 ? atol(argv[2]) : 10;
	const char *out = getenv("T3_OUT");

	stamps = getenv("T3_CLOCK") != NULL;
	if (out && *out && !freopen(out, "w", stdout)) {
		perror(out);
		return 66;
	}

	if (!strcmp(mode, "run")) {
		for (long i = 0; i < n; i++) {
			one_work();
			one_step((unsigned long)i);
		}
		return 0;
	}
	if (!strcmp(mode, "crash")) {
		for (long i = 0; i < n; i++)
			one_work();
		abort();
	}
	if (!strcmp(mode, "loop")) {
		if (argc > 2 && !strcmp(argv[2], "noint"))
			signal(SIGINT, SIG_IGN);
		for (unsigned long k = 1;; k++) {
			sink += (unsigned long)work(A[k % NA], "tick");
			printf("tick %lu\n", k);
			fflush(stdout);
			nap_ms(20);
		}
	}
	if (!strcmp(mode, "cmd")) {
		char line[128];

		while (fgets(line, sizeof(line), stdin)) {
			long k;

			if (!strncmp(line, "exit", 4))
				return 0;
			if (sscanf(line, "call %ld", &k) == 1) {
				while (k-- > 0)
					one_work();
				printf("done %lu\n", calls);
				fflush(stdout);
			}
		}
		return 0;
	}
	if (!strcmp(mode, "exit"))
		return (int)n;
	fprintf(stderr, "t3_target: unknown mode %s\n", mode);
	return 64;
}
