// SPDX-License-Identifier: MIT
/*
 * bench_probe.c - what a probe costs per call, in one process.
 *
 * Each benchmark calls a tiny target function in a tight loop of N calls,
 * times the loop with CLOCK_MONOTONIC, repeats it R times and reports the
 * median, min and max ns per call, and the ratio of the median to the
 * unprobed call measured in the same process:
 *
 *   metric=int3_probe_empty kind=sonde status=ok ns_per_call=1843.20 \
 *     min=1830.11 max=1902.57 ratio=970.11 runs=11 calls=54000 \
 *     target=target vs=kernel_uprobe_event desc="INT3 kprobe, empty pre_handler"
 *
 * One line per metric, space-separated key=value pairs, values with spaces
 * in double quotes (never containing one); lines starting with '#' are for
 * humans. Keys every line has: metric, kind (baseline|sonde|anchor), status
 * (ok|failed|skipped). Lines with status=ok have ns_per_call, min, max,
 * ratio, runs and calls; the others have error= or reason=. vs= names the
 * kernel anchor of the same kind, which bench/run.sh measures in separate
 * runs of this program (--bare) and puts side by side.
 *
 * N is found per benchmark: calls double until a loop takes a few
 * milliseconds (which is also the warm-up), then N is set so that one run
 * takes --time-ms. Every loop checks the sum of the return values, and
 * each probe benchmark checks its hit counts afterwards: a probe that
 * changes results or misses hits is reported as failed, not timed.
 *
 * To add a benchmark: a target (a function and its DEFINE_LOOP) if none of
 * the existing ones fits, optional setup/check/teardown functions, and one
 * entry in benches[].
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sonde/kprobes.h>

/* ---- targets ---------------------------------------------------------------- */

/* the plain target: whatever the compiler makes of a two-argument add */
__attribute__((noinline, noclone, used)) int target(int a, int b);
__attribute__((noinline, noclone, used)) int target(int a, int b)
{
	asm volatile("");
	return a + b;
}

/*
 * target_nop5 starts with the 5-byte nop of -mfentry -mnop-mcount and
 * -fpatchable-function-entry builds, which the kernel's uprobes emulate (or
 * optimize into a call) instead of single-stepping. target_int3 starts with
 * a bare breakpoint, for the cost of the trap and signal alone.
 */
int target_nop5(int a, int b);
int target_int3(int a, int b);
asm(".pushsection .text\n"
    ".p2align 4\n"
    ".globl target_nop5\n"
    ".hidden target_nop5\n"
    ".type target_nop5, @function\n"
    "target_nop5:\n"
    "	nopl 0x0(%rax,%rax,1)\n"
    "	leal (%rdi,%rsi), %eax\n"
    "	ret\n"
    ".size target_nop5, .-target_nop5\n"
    ".p2align 4\n"
    ".globl target_int3\n"
    ".hidden target_int3\n"
    ".type target_int3, @function\n"
    "target_int3:\n"
    "	int3\n"
    "	leal (%rdi,%rsi), %eax\n"
    "	ret\n"
    ".size target_int3, .-target_int3\n"
    ".popsection\n");

/* one loop per target, so that each calls its target directly */
#define DEFINE_LOOP(fn)                                         \
	static __attribute__((noinline)) long loop_##fn(long n) \
	{                                                       \
		long sum = 0;                                   \
                                                                \
		for (long i = 0; i < n; i++)                    \
			sum += fn((int)i, 1);                   \
		return sum;                                     \
	}

DEFINE_LOOP(target)
DEFINE_LOOP(target_nop5)
DEFINE_LOOP(target_int3)

struct target_desc {
	const char *name;
	void *addr;
	long (*loop)(long n);
};

static const struct target_desc targets[] = {
    {"target", (void *)target, loop_target},
    {"target_nop5", (void *)target_nop5, loop_target_nop5},
    {"target_int3", (void *)target_int3, loop_target_int3},
};

#define NTARGETS (int)(sizeof(targets) / sizeof(targets[0]))

static const struct target_desc *target_by_name(const char *name)
{
	for (int i = 0; i < NTARGETS; i++)
		if (!strcmp(targets[i].name, name))
			return &targets[i];
	return NULL;
}

/* ---- benchmarks ---------------------------------------------------------------- */

struct bench_state {
	struct sonde_kprobe kp;
	struct sonde_kretprobe rp;
	struct sigaction old_act;
	long calls; /* target calls made between setup and teardown */
};

struct bench {
	const char *metric;
	const char *kind; /* baseline, sonde or anchor */
	const char *desc;
	const char *target;
	const char *vs; /* the kernel anchor of the same kind, or NULL */
	/* 0 or a negative errno, with a message in @err */
	int (*setup)(struct bench_state *st, const struct target_desc *t, char *err, size_t len);
	int (*check)(struct bench_state *st, char *err, size_t len);
	void (*teardown)(struct bench_state *st);
};

static int empty_pre(struct sonde_kprobe *p, struct sonde_regs *regs)
{
	return 0;
}

static int empty_ret(struct sonde_kretprobe_instance *ri, struct sonde_regs *regs)
{
	return 0;
}

static int kprobe_setup(struct bench_state *st, const struct target_desc *t, char *err, size_t len)
{
	int ret;

	st->kp.addr = t->addr;
	st->kp.pre_handler = empty_pre;
	ret = sonde_register_kprobe(&st->kp);
	if (ret)
		snprintf(err, len, "sonde_register_kprobe(%s): %s: %s", t->name,
			 sonde_strerror(ret), sonde_last_error());
	return ret;
}

static int kprobe_check(struct bench_state *st, char *err, size_t len)
{
	unsigned long hits = sonde_kprobe_hits(&st->kp), missed = sonde_kprobe_missed(&st->kp);

	if (hits != (unsigned long)st->calls || missed) {
		snprintf(err, len, "wrong counts: nhit=%lu nmissed=%lu for %ld calls", hits, missed,
			 st->calls);
		return -EIO;
	}
	return 0;
}

static void kprobe_teardown(struct bench_state *st)
{
	sonde_unregister_kprobe(&st->kp);
}

static int kretprobe_setup(struct bench_state *st, const struct target_desc *t, char *err,
			   size_t len)
{
	int ret;

	st->rp.kp.addr = t->addr;
	st->rp.handler = empty_ret;
	ret = sonde_register_kretprobe(&st->rp);
	if (ret)
		snprintf(err, len, "sonde_register_kretprobe(%s): %s: %s", t->name,
			 sonde_strerror(ret), sonde_last_error());
	return ret;
}

static int kretprobe_check(struct bench_state *st, char *err, size_t len)
{
	unsigned long hits = sonde_kprobe_hits(&st->rp.kp);
	unsigned long kmissed = sonde_kprobe_missed(&st->rp.kp);

	if (hits != (unsigned long)st->calls || kmissed || st->rp.nmissed) {
		snprintf(err, len, "wrong counts: nhit=%lu kp.nmissed=%lu nmissed=%d for %ld calls",
			 hits, kmissed, st->rp.nmissed, st->calls);
		return -EIO;
	}
	return 0;
}

static void kretprobe_teardown(struct bench_state *st)
{
	sonde_unregister_kretprobe(&st->rp);
}

static volatile unsigned long int3_traps;

static void int3_handler(int sig, siginfo_t *si, void *uc)
{
	int3_traps++;
}

/* the breakpoint is the program's own: sonde passes it on to this handler */
static int int3_setup(struct bench_state *st, const struct target_desc *t, char *err, size_t len)
{
	struct sigaction act;

	memset(&act, 0, sizeof(act));
	act.sa_sigaction = int3_handler;
	act.sa_flags = SA_SIGINFO;
	sigemptyset(&act.sa_mask);
	int3_traps = 0;
	if (sigaction(SIGTRAP, &act, &st->old_act)) {
		snprintf(err, len, "sigaction(SIGTRAP): %s", strerror(errno));
		return -errno;
	}
	return 0;
}

static int int3_check(struct bench_state *st, char *err, size_t len)
{
	if (int3_traps != (unsigned long)st->calls) {
		snprintf(err, len, "wrong counts: %lu traps for %ld calls", int3_traps, st->calls);
		return -EIO;
	}
	return 0;
}

static void int3_teardown(struct bench_state *st)
{
	sigaction(SIGTRAP, &st->old_act, NULL);
}

/* the first entry is the baseline every ratio is taken against */
static const struct bench benches[] = {
    {
	.metric = "unprobed",
	.kind = "baseline",
	.desc = "plain call, no probe",
	.target = "target",
    },
    {
	.metric = "unprobed_nop5",
	.kind = "baseline",
	.desc = "plain call of a function starting with a 5-byte nop",
	.target = "target_nop5",
    },
    {
	.metric = "anchor_int3_sigtrap",
	.kind = "anchor",
	.desc = "bare int3 + empty SIGTRAP handler (no out-of-line step, no sonde)",
	.target = "target_int3",
	.setup = int3_setup,
	.check = int3_check,
	.teardown = int3_teardown,
    },
    {
	.metric = "int3_probe_empty",
	.kind = "sonde",
	.desc = "INT3 kprobe, empty pre_handler",
	.target = "target",
	.vs = "kernel_uprobe_event",
	.setup = kprobe_setup,
	.check = kprobe_check,
	.teardown = kprobe_teardown,
    },
    {
	.metric = "kretprobe_empty",
	.kind = "sonde",
	.desc = "kretprobe, empty handler",
	.target = "target",
	.vs = "kernel_uretprobe_event",
	.setup = kretprobe_setup,
	.check = kretprobe_check,
	.teardown = kretprobe_teardown,
    },
    {
	.metric = "int3_probe_nop5_empty",
	.kind = "sonde",
	.desc = "INT3 kprobe on a 5-byte nop, empty pre_handler",
	.target = "target_nop5",
	.vs = "kernel_uprobe_nop5_event",
	.setup = kprobe_setup,
	.check = kprobe_check,
	.teardown = kprobe_teardown,
    },
};

#define NBENCHES (int)(sizeof(benches) / sizeof(benches[0]))

/* ---- measuring ---------------------------------------------------------------- */

struct options {
	bool quick;
	int runs;
	double time_ms;	  /* per run */
	double baseline;  /* ns per unprobed call, 0: measure it */
	const char *only; /* comma-separated metric names */
	const char *bare; /* metric name for a --bare run */
	const char *bare_target;
	const char *desc;
	const char *vs;
};

struct result {
	double median, min, max;
	long calls; /* per run */
	int runs;
};

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* sum of target(i, 1) for i in [0, n) */
static long expected_sum(long n)
{
	return n * (n - 1) / 2 + n;
}

static int run_loop(const struct target_desc *t, long n, struct bench_state *st, double *ns,
		    char *err, size_t len)
{
	double t0 = now_ns();
	long sum = t->loop(n);

	*ns = now_ns() - t0;
	st->calls += n;
	if (sum != expected_sum(n)) {
		snprintf(err, len, "wrong results: %s() summed to %ld over %ld calls, not %ld",
			 t->name, sum, n, expected_sum(n));
		return -EIO;
	}
	return 0;
}

static int measure(const struct target_desc *t, const struct options *o, struct bench_state *st,
		   struct result *r, char *err, size_t len)
{
	double calib_ns = o->quick ? 2e5 : 5e6, el = 0, per_call, runs_ns[64];
	long n = 16;
	int ret;

	/* calibrate (and warm up): double n until a loop takes calib_ns */
	for (;;) {
		ret = run_loop(t, n, st, &el, err, len);
		if (ret)
			return ret;
		if (el >= calib_ns || n >= (1L << 36))
			break;
		n *= 2;
	}
	per_call = el / (double)n;
	/* once more: a preempted loop would make every run too short */
	ret = run_loop(t, n, st, &el, err, len);
	if (ret)
		return ret;
	if (el / (double)n < per_call)
		per_call = el / (double)n;
	if (per_call <= 0)
		per_call = 0.1;
	r->calls = (long)(o->time_ms * 1e6 / per_call);
	if (r->calls < 16)
		r->calls = 16;
	if (r->calls > INT_MAX) /* target() adds ints */
		r->calls = INT_MAX;
	r->runs = o->runs;
	for (int i = 0; i < r->runs; i++) {
		ret = run_loop(t, r->calls, st, &el, err, len);
		if (ret)
			return ret;
		runs_ns[i] = el / (double)r->calls;
	}
	qsort(runs_ns, r->runs, sizeof(runs_ns[0]), cmp_double);
	r->min = runs_ns[0];
	r->max = runs_ns[r->runs - 1];
	if (r->runs % 2)
		r->median = runs_ns[r->runs / 2];
	else
		r->median = (runs_ns[r->runs / 2 - 1] + runs_ns[r->runs / 2]) / 2;
	return 0;
}

/* double quotes would end a quoted value */
static const char *unquote(char *s)
{
	for (char *p = s; *p; p++)
		if (*p == '"' || *p == '\n')
			*p = *p == '"' ? '\'' : ' ';
	return s;
}

static void print_head(const char *metric, const char *kind, const char *status)
{
	printf("metric=%s kind=%s status=%s", metric, kind, status);
}

static void print_tail(const char *target, const char *vs, const char *desc)
{
	char buf[512];

	printf(" target=%s", target);
	if (vs)
		printf(" vs=%s", vs);
	snprintf(buf, sizeof(buf), "%s", desc);
	printf(" desc=\"%s\"\n", unquote(buf));
	fflush(stdout);
}

static void print_ok(const char *metric, const char *kind, const struct result *r, double baseline)
{
	print_head(metric, kind, "ok");
	printf(" ns_per_call=%.2f min=%.2f max=%.2f", r->median, r->min, r->max);
	if (baseline > 0)
		printf(" ratio=%.2f", r->median / baseline);
	printf(" runs=%d calls=%ld", r->runs, r->calls);
}

static void print_failed(const char *metric, const char *kind, char *err)
{
	print_head(metric, kind, "failed");
	printf(" error=\"%s\"", unquote(err));
}

/* returns false if the benchmark failed */
static bool run_bench(const struct bench *b, const struct options *o, double *baseline)
{
	const struct target_desc *t = target_by_name(b->target);
	struct bench_state st;
	struct result r;
	char err[1024] = "";
	int ret = 0;

	memset(&st, 0, sizeof(st));
	if (!t) {
		snprintf(err, sizeof(err), "no target named %s", b->target);
		ret = -ENOENT;
	}
	/* a kernel uprobe (or a debugger) on a target would time its probe, not a call */
	if (!ret && !strcmp(b->kind, "baseline") && *(const volatile uint8_t *)t->addr == 0xcc) {
		snprintf(err, sizeof(err),
			 "%s starts with a breakpoint that is not sonde's (a kernel uprobe? a "
			 "debugger?)",
			 t->name);
		ret = -EBUSY;
	}
	if (!ret && b->setup)
		ret = b->setup(&st, t, err, sizeof(err));
	if (!ret) {
		st.calls = 0;
		ret = measure(t, o, &st, &r, err, sizeof(err));
		if (!ret && b->check)
			ret = b->check(&st, err, sizeof(err));
		if (b->teardown)
			b->teardown(&st);
	}
	if (ret) {
		print_failed(b->metric, b->kind, err);
	} else {
		if (!*baseline && !strcmp(b->metric, benches[0].metric))
			*baseline = r.median;
		print_ok(b->metric, b->kind, &r, *baseline);
	}
	print_tail(b->target, b->vs, b->desc);
	return !ret;
}

static bool selected(const char *only, const char *metric)
{
	size_t len = strlen(metric);

	if (!only)
		return true;
	for (const char *p = only; *p;) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);

		if (n == len && !strncmp(p, metric, n))
			return true;
		if (!end)
			break;
		p = end + 1;
	}
	return false;
}

/* ---- where the targets are, for the kernel's uprobe_events ------------------ */

/* @path and the file offset of @addr in it, from /proc/self/maps */
static int file_offset(const void *addr, char *path, size_t len, unsigned long *off)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[4096];
	int ret = -ENOENT;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		unsigned long start, end, pgoff;
		char perms[8];
		int pos = 0;

		if (sscanf(line, "%lx-%lx %7s %lx %*s %*s%n", &start, &end, perms, &pgoff, &pos) <
		    4)
			continue;
		if ((unsigned long)addr < start || (unsigned long)addr >= end)
			continue;
		while (line[pos] == ' ')
			pos++;
		line[strcspn(line, "\n")] = 0;
		if (line[pos] != '/')
			break;
		snprintf(path, len, "%s", line + pos);
		*off = (unsigned long)addr - start + pgoff;
		ret = 0;
		break;
	}
	fclose(f);
	return ret;
}

static int print_where(void)
{
	for (int i = 0; i < NTARGETS; i++) {
		const unsigned char *code = targets[i].addr;
		char path[PATH_MAX];
		unsigned long off = 0;
		int ret = file_offset(targets[i].addr, path, sizeof(path), &off);

		if (ret) {
			fprintf(stderr, "bench_probe: cannot find %s in /proc/self/maps: %s\n",
				targets[i].name, strerror(-ret));
			return 1;
		}
		printf("target=%s path=%s offset=0x%lx bytes=", targets[i].name, path, off);
		for (int k = 0; k < 8; k++)
			printf("%02x%s", code[k], k < 7 ? "," : "\n");
	}
	return 0;
}

/* ---- main ---------------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f, "usage: bench_probe [--quick] [--runs=R] [--time-ms=T] [--only=M1,M2...]\n"
		   "       bench_probe --bare=METRIC --target=NAME [--desc=TEXT] [--vs=METRIC]\n"
		   "                   [--baseline-ns=NS]\n"
		   "       bench_probe --where | --list\n"
		   "\n"
		   "Prints one 'metric=NAME kind=... status=... ns_per_call=...' line per metric.\n"
		   "--bare times an unprobed loop on NAME without sonde touching anything, for a\n"
		   "probe put there from outside (the kernel's uprobe_events); --where prints the\n"
		   "file offset of each target for such probes.\n");
}

static void print_header(const struct options *o)
{
	cpu_set_t set;

	printf("# bench_probe: sonde %s, %s mode, %d runs of ~%.0f ms per metric",
	       sonde_version_string(), o->quick ? "quick" : "full", o->runs, o->time_ms);
	if (!sched_getaffinity(0, sizeof(set), &set)) {
		printf(", cpus");
		for (int c = 0, first = 1; c < CPU_SETSIZE; c++)
			if (CPU_ISSET(c, &set)) {
				printf("%s%d", first ? " " : ",", c);
				first = 0;
			}
	}
	printf("\n");
	fflush(stdout);
}

int main(int argc, char **argv)
{
	enum {
		OPT_QUICK = 1,
		OPT_RUNS,
		OPT_TIME,
		OPT_ONLY,
		OPT_BARE,
		OPT_TARGET,
		OPT_DESC,
		OPT_VS,
		OPT_BASELINE,
		OPT_WHERE,
		OPT_LIST,
		OPT_HELP
	};
	static const struct option longopts[] = {
	    {"quick", no_argument, NULL, OPT_QUICK},
	    {"runs", required_argument, NULL, OPT_RUNS},
	    {"time-ms", required_argument, NULL, OPT_TIME},
	    {"only", required_argument, NULL, OPT_ONLY},
	    {"bare", required_argument, NULL, OPT_BARE},
	    {"target", required_argument, NULL, OPT_TARGET},
	    {"desc", required_argument, NULL, OPT_DESC},
	    {"vs", required_argument, NULL, OPT_VS},
	    {"baseline-ns", required_argument, NULL, OPT_BASELINE},
	    {"where", no_argument, NULL, OPT_WHERE},
	    {"list", no_argument, NULL, OPT_LIST},
	    {"help", no_argument, NULL, OPT_HELP},
	    {NULL, 0, NULL, 0},
	};
	struct options o = {.runs = 0, .time_ms = 0};
	bool ok = true;
	int c;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_QUICK:
			o.quick = true;
			break;
		case OPT_RUNS:
			o.runs = atoi(optarg);
			break;
		case OPT_TIME:
			o.time_ms = atof(optarg);
			break;
		case OPT_ONLY:
			o.only = optarg;
			break;
		case OPT_BARE:
			o.bare = optarg;
			break;
		case OPT_TARGET:
			o.bare_target = optarg;
			break;
		case OPT_DESC:
			o.desc = optarg;
			break;
		case OPT_VS:
			o.vs = optarg;
			break;
		case OPT_BASELINE:
			o.baseline = atof(optarg);
			break;
		case OPT_WHERE:
			return print_where();
		case OPT_LIST:
			for (int i = 0; i < NBENCHES; i++)
				printf("%s\t%s\t%s\n", benches[i].metric, benches[i].kind,
				       benches[i].desc);
			return 0;
		case OPT_HELP:
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
	if (o.runs <= 0)
		o.runs = o.quick ? 3 : 11;
	if (o.runs > 64)
		o.runs = 64;
	if (o.time_ms <= 0)
		o.time_ms = o.quick ? 2 : 100;

	print_header(&o);
	if (o.bare) {
		struct bench b = {
		    .metric = o.bare,
		    .kind = "anchor",
		    .desc = o.desc ? o.desc : o.bare,
		    .target = o.bare_target,
		    .vs = o.vs,
		};

		if (!o.bare_target) {
			usage(stderr);
			return 2;
		}
		return run_bench(&b, &o, &o.baseline) ? 0 : 1;
	}
	for (int i = 0; i < NBENCHES; i++)
		if (i == 0 || selected(o.only, benches[i].metric))
			ok &= run_bench(&benches[i], &o, &o.baseline);
	return ok ? 0 : 1;
}
