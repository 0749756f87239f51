// SPDX-License-Identifier: MIT
/*
 * bench_ftrace.c - what a function tracer costs per traced call.
 *
 * Built several ways (bench/CMakeLists.txt), one program each, so that each
 * way a tracer can hook a function is measured on the same code:
 *   bench_ftrace_pfe       -fpatchable-function-entry=5: entry nops
 *   bench_ftrace_mcount    -pg: a call to mcount after the prologue
 *   bench_ftrace_fentry    -pg -mfentry: a call to __fentry__ first
 *   bench_ftrace_nopmcount -pg -mfentry -mnop-mcount -mrecord-mcount: a
 *                          5-byte nop listed in __mcount_loc (non-PIE)
 *   bench_ftrace_plain     -O2 only: a tracer must use the symbol table
 * None links libsonde: the tracer (sonde, uftrace) brings its own.
 *
 * The program times its own loop: R runs of N calls of ft_leaf(), a small
 * noinline function, with CLOCK_MONOTONIC around each run (process
 * start-up and the tracer's set-up do not count), and prints the median,
 * min and max ns per call as one metric line (the format of
 * bench_probe.c), with total_calls= every call of ft_leaf it made, for
 * checking that the tracer recorded every one. Before the timed runs, W
 * warm-up runs; after every run, a pause of P ms, so that the tracer's
 * consumer drains what the run wrote (each run's records fit in the
 * tracer's buffer: nothing is lost and the target never waits for the
 * consumer); with --drain=PATH, the pause lasts until the tracer's output
 * (a file, or the files of a directory) has stopped growing, however
 * long the consumer takes on a busy machine. The warm-up's first run is
 * printed as cold_ns= (a tracer whose buffer pages are touched for the
 * first time pays for that there).
 *
 * Built with -DBENCH_LTTNG (bench/run.sh does, when liblttng-ust-dev is
 * there), ft_leaf() also hits the LTTng-UST tracepoint sonde_bench:hit of
 * bench_lttng_tp.h: the LTTng anchor, enabled or not by an lttng session.
 * Built with -DBENCH_SONDE_TP (bench_ftrace_tp), it hits sonde's own
 * tracepoint sonde_bench:tp_hit of bench_sonde_tp.h instead: disabled (a
 * 5-byte nop) when nobody traces it, enabled under `sonde record -e`.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"

#ifdef BENCH_LTTNG
#define LTTNG_UST_TRACEPOINT_DEFINE
#define LTTNG_UST_TRACEPOINT_CREATE_PROBES
#include "bench_lttng_tp.h"
#define HIT(a, b) lttng_ust_tracepoint(sonde_bench, hit, a, b)
#elif defined(BENCH_SONDE_TP)
#define CREATE_TRACE_POINTS
#include "bench_sonde_tp.h"
#define HIT(a, b) trace_tp_hit(a)
#else
#define HIT(a, b) ((void)0)
#endif

#ifndef FT_BUILD
#define FT_BUILD "unknown"
#endif

/* the traced function: a few movable bytes, as a real small function has */
__attribute__((noinline, noipa)) int ft_leaf(int a, int b);
__attribute__((noinline, noipa)) int ft_leaf(int a, int b)
{
	int x = a ^ (b << 3);

	HIT(a, b);
	asm volatile("");
	return x + (a >> 1);
}

__attribute__((noinline, noipa)) static long ft_loop(long n)
{
	long sum = 0;

	for (long i = 0; i < n; i++)
		sum += ft_leaf((int)i, 1);
	return sum;
}

/*
 * --pair: the same function and loop without the tracepoint, timed in
 * turn with the ones above in the same process, for what a disabled
 * tracepoint costs (two runs of separate processes differ by more than
 * that on a function of a nanosecond)
 */
__attribute__((noinline, noipa)) int ft_leaf_plain(int a, int b);
__attribute__((noinline, noipa)) int ft_leaf_plain(int a, int b)
{
	int x = a ^ (b << 3);

	asm volatile("");
	return x + (a >> 1);
}

__attribute__((noinline, noipa)) static long ft_loop_plain(long n)
{
	long sum = 0;

	for (long i = 0; i < n; i++)
		sum += ft_leaf_plain((int)i, 1);
	return sum;
}

static long expected(long n)
{
	long sum = 0;

	for (long i = 0; i < n; i++) {
		int a = (int)i;

		sum += (a ^ 8) + (a >> 1);
	}
	return sum;
}

static void pause_ms(double ms)
{
	struct timespec ts = {.tv_sec = (time_t)(ms / 1e3),
			      .tv_nsec = (long)((ms - (double)(time_t)(ms / 1e3) * 1e3) * 1e6)};

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* bytes in @path: a file's size, or the sum of a directory's files */
static long long output_size(const char *path)
{
	struct stat st;
	long long sum = 0;
	struct dirent *d;
	DIR *dir;

	if (stat(path, &st))
		return -1;
	if (!S_ISDIR(st.st_mode))
		return (long long)st.st_size;
	dir = opendir(path);
	if (!dir)
		return -1;
	while ((d = readdir(dir))) {
		char p[4096];

		snprintf(p, sizeof(p), "%s/%s", path, d->d_name);
		if (!stat(p, &st) && S_ISREG(st.st_mode))
			sum += (long long)st.st_size;
	}
	closedir(dir);
	return sum;
}

/* until @path has not grown for 30 ms (at most 5 s): the consumer is done */
static void wait_drained(const char *path)
{
	long long last = output_size(path), now;
	int still = 0;

	for (int i = 0; i < 1000 && still < 6; i++) {
		pause_ms(5);
		now = output_size(path);
		still = now == last ? still + 1 : 0;
		last = now;
	}
}

static void usage(FILE *f)
{
	fprintf(f, "usage: bench_ftrace [--quick] [--bare=METRIC] [--kind=KIND] [--desc=TEXT]\n"
		   "                    [--calls=N] [--runs=R] [--warmup=W] [--pause-ms=P]\n"
		   "                    [--cpu=C] [--drain=PATH] [--pair=METRIC]\n"
		   "Times R runs of N calls of ft_leaf() (after W warm-up runs, each run\n"
		   "followed by a pause of P ms, and with --drain until PATH, the tracer's\n"
		   "output file or directory, stops growing) and prints one metric line;\n"
		   "--pair also times ft_leaf_plain (ft_leaf without a tracepoint) in turn,\n"
		   "as METRIC.\n");
}

int main(int argc, char **argv)
{
	enum {
		O_QUICK = 1,
		O_BARE,
		O_KIND,
		O_DESC,
		O_CALLS,
		O_RUNS,
		O_WARMUP,
		O_PAUSE,
		O_CPU,
		O_DRAIN,
		O_PAIR
	};
	static const struct option longopts[] = {
	    {"quick", no_argument, NULL, O_QUICK},
	    {"bare", required_argument, NULL, O_BARE},
	    {"kind", required_argument, NULL, O_KIND},
	    {"desc", required_argument, NULL, O_DESC},
	    {"calls", required_argument, NULL, O_CALLS},
	    {"runs", required_argument, NULL, O_RUNS},
	    {"warmup", required_argument, NULL, O_WARMUP},
	    {"pause-ms", required_argument, NULL, O_PAUSE},
	    {"cpu", required_argument, NULL, O_CPU},
	    {"drain", required_argument, NULL, O_DRAIN},
	    {"pair", required_argument, NULL, O_PAIR},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *metric = "ftrace_" FT_BUILD, *kind = "graph", *desc = FT_BUILD " build";
	const char *drain = NULL, *pair = NULL;
	long calls = 0, total = 0, want = 0;
	int runs = 0, warmup = -1, cpu = -1, c;
	double pause = -1, cold = 0, v[64], all[128], vp[64];
	bool quick = false;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case O_QUICK:
			quick = true;
			break;
		case O_BARE:
			metric = optarg;
			break;
		case O_KIND:
			kind = optarg;
			break;
		case O_DESC:
			desc = optarg;
			break;
		case O_CALLS:
			calls = atol(optarg);
			break;
		case O_RUNS:
			runs = atoi(optarg);
			break;
		case O_WARMUP:
			warmup = atoi(optarg);
			break;
		case O_PAUSE:
			pause = atof(optarg);
			break;
		case O_CPU:
			cpu = atoi(optarg);
			break;
		case O_DRAIN:
			drain = optarg;
			break;
		case O_PAIR:
			pair = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	if (calls <= 0)
		calls = quick ? 5000 : 100000;
	if (runs <= 0)
		runs = quick ? 3 : 11;
	if (runs > 64)
		runs = 64;
	if (warmup < 0)
		warmup = quick ? 1 : 5;
	if (warmup > 64)
		warmup = 64;
	if (pause < 0)
		pause = quick ? 5 : 50;
	if (cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set)) {
			fprintf(stderr, "bench_ftrace: cannot pin to CPU %d: %s\n", cpu,
				strerror(errno));
			return 2;
		}
	}
	want = expected(calls);
	printf("# bench_ftrace (%s build): %d warm-up and %d timed runs of %ld calls, %.0f ms "
	       "apart\n",
	       FT_BUILD, warmup, runs, calls, pause);
	fflush(stdout);
	for (int i = 0; i < warmup + runs; i++) {
		double t0 = now_ns(), el;
		long sum = ft_loop(calls);

		el = now_ns() - t0;
		total += calls;
		if (sum != want) {
			printf(
			    "metric=%s kind=%s status=failed error=\"wrong results: %ld, not %ld\" "
			    "target=ft_leaf desc=\"%s\"\n",
			    metric, kind, sum, want, desc);
			return 1;
		}
		all[i] = el / (double)calls;
		if (i == 0)
			cold = el / (double)calls;
		if (i >= warmup)
			v[i - warmup] = el / (double)calls;
		if (pair) {
			t0 = now_ns();
			sum = ft_loop_plain(calls);
			el = now_ns() - t0;
			if (sum != want) {
				printf(
				    "metric=%s kind=baseline status=failed error=\"wrong results: "
				    "%ld, not %ld\" target=ft_leaf_plain desc=\"%s\"\n",
				    pair, sum, want, "the same without the tracepoint");
				return 1;
			}
			if (i >= warmup)
				vp[i - warmup] = el / (double)calls;
		}
		pause_ms(pause);
		if (drain)
			wait_drained(drain);
	}
	printf("# ns per call, run by run (the first %d warm-up):", warmup);
	for (int i = 0; i < warmup + runs; i++)
		printf(" %.1f", all[i]);
	printf("\n");
	qsort(v, (size_t)runs, sizeof(v[0]), cmp_double);
	/* three decimals: a disabled tracepoint's ratio to none is a matter of 0.01 ns */
	printf("metric=%s kind=%s status=ok ns_per_call=%.3f min=%.3f max=%.3f runs=%d calls=%ld "
	       "total_calls=%ld cold_ns=%.3f build=%s target=ft_leaf desc=\"%s\"\n",
	       metric, kind, runs % 2 ? v[runs / 2] : (v[runs / 2 - 1] + v[runs / 2]) / 2, v[0],
	       v[runs - 1], runs, calls, total, cold, FT_BUILD, desc);
	if (pair) {
		qsort(vp, (size_t)runs, sizeof(vp[0]), cmp_double);
		printf(
		    "metric=%s kind=baseline status=ok ns_per_call=%.3f min=%.3f max=%.3f runs=%d "
		    "calls=%ld build=%s target=ft_leaf_plain desc=\"the same function and loop "
		    "without the tracepoint, timed in turn in the same process\"\n",
		    pair, runs % 2 ? vp[runs / 2] : (vp[runs / 2 - 1] + vp[runs / 2]) / 2, vp[0],
		    vp[runs - 1], runs, calls, FT_BUILD);
	}
	return 0;
}
