// SPDX-License-Identifier: MIT
/*
 * test_ftrace.c - the function and function_graph tracers, driven through
 * the virtual tracefs files as a user would (current_tracer,
 * set_ftrace_filter…), read back from the trace file.
 *
 * The traced code is tests/unit/ftlib.c built four ways, one library
 * each, so that every way sonde hooks a function is exercised:
 *   libft_plain   -O2: entry probes on the symbol table
 *   libft_pfe     -fpatchable-function-entry=5: the nops become calls
 *   libft_fentry  -pg -mfentry: its calls reach sonde's __fentry__
 *   libft_mcount  -pg: its calls reach sonde's mcount
 * This program links sonde statically, so it is itself never traced (the
 * tracers say so); each test names the functions with filters.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include <sonde/kprobes.h>

#include "check.h"
#include "control/tracefs.h"
#include "ftlib.h"
#include "ftrace/ftrace.h"
#include "probe/probe.h"
#include "probe/thread.h"
#include "trace/trace.h"
#include "tracefs_echo.h"

#define LIB(p)                                                                               \
	int p##top(int);                                                                     \
	int p##mid(int);                                                                     \
	int p##leaf(int);                                                                    \
	int p##jump(jmp_buf *);                                                              \
	int p##slow(int);                                                                    \
	long p##args(long, long, long, long, long, long, long, long, struct ft_big, double); \
	long p##vsum(int, ...);                                                              \
	int p##tail(int);
LIB(plain_)
LIB(pfe_)
LIB(fentry_)
LIB(mcount_)

struct lib {
	const char *prefix;
	int (*top)(int);
	int (*leaf)(int);
	int (*jump)(jmp_buf *);
	int (*slow)(int);
	long (*args)(long, long, long, long, long, long, long, long, struct ft_big, double);
	long (*vsum)(int, ...);
	int (*tail)(int);
};

#define LIB_FUNCS(p) #p, p##top, p##leaf, p##jump, p##slow, p##args, p##vsum, p##tail

static const struct lib libs[] = {
    {LIB_FUNCS(plain_)},
    {LIB_FUNCS(pfe_)},
    {LIB_FUNCS(fentry_)},
    {LIB_FUNCS(mcount_)},
};

#define NLIBS (int)(sizeof(libs) / sizeof(libs[0]))

/* ---- the tracefs, as `echo` and `cat` --------------------------------------------------- */

static int echo_append(const char *file, const char *text)
{
	return sd_tracefs_write(file, text, strlen(text), false, NULL);
}

/* ---- the trace, as records -------------------------------------------------------------- */

enum { R_FUNC, R_ENTRY, R_EXIT };

struct rec {
	int kind;
	int tid;
	int depth;
	char name[64];
	char parent[64];
};

/* one line of the trace file: "comm-TID [cpu] flags ts: funcgraph_entry: --> NAME (D)"… */
static bool parse_line(const char *l, struct rec *r)
{
	const char *body, *dash = strchr(l, '[');

	memset(r, 0, sizeof(*r));
	if (*l == '#' || !dash)
		return false;
	while (dash > l && dash[-1] == ' ')
		dash--;
	while (dash > l && dash[-1] != '-')
		dash--;
	r->tid = atoi(dash);
	if ((body = strstr(l, "funcgraph_entry: --> "))) {
		r->kind = R_ENTRY;
		body += 21;
	} else if ((body = strstr(l, "funcgraph_exit: <-- "))) {
		r->kind = R_EXIT;
		body += 20;
	} else if ((body = strstr(l, "function: "))) {
		r->kind = R_FUNC;
		return sscanf(body + 10, "%63s <-%63s", r->name, r->parent) == 2;
	} else {
		return false;
	}
	return sscanf(body, "%63s (%d)", r->name, &r->depth) == 2;
}

static int parse_trace(const char *text, struct rec *out, int max)
{
	int n = 0;

	for (const char *l = text; l && *l && n < max;) {
		const char *end = strchr(l, '\n');
		char line[512];

		snprintf(line, sizeof(line), "%.*s", end ? (int)(end - l) : (int)strlen(l), l);
		if (parse_line(line, &out[n]))
			n++;
		l = end ? end + 1 : NULL;
	}
	return n;
}

static struct rec recs[4096];

static int take_trace(void)
{
	char *t = cat("trace");
	int n = parse_trace(t, recs, 4096);

	if (getenv("FT_SHOW"))
		fputs(t, stderr);
	free(t);
	ECHO("trace", "");
	return n;
}

static void reset(void)
{
	ECHO("current_tracer", "nop");
	ECHO("set_ftrace_filter", "");
	ECHO("set_ftrace_notrace", "");
	ECHO("set_graph_function", "");
	ECHO("set_graph_notrace", "");
	ECHO("set_ftrace_pid", "");
	ECHO("max_graph_depth", "0");
	ECHO("tracing_thresh", "0");
	ECHO("trace", "");
}

static void expect(int i, int kind, const char *name, int depth)
{
	static const char *const kinds[] = {"function", "entry", "exit"};

	if (recs[i].kind != kind || strcmp(recs[i].name, name) || recs[i].depth != depth)
		check_fail(__FILE__, __LINE__, "record %d: %s %s (%d), expected %s %s (%d)", i,
			   kinds[recs[i].kind], recs[i].name, recs[i].depth, kinds[kind], name,
			   depth);
}

static char *fname(const struct lib *l, const char *f)
{
	static char buf[8][64];
	static int k;

	k = (k + 1) % 8;
	snprintf(buf[k], sizeof(buf[k]), "%s%s", l->prefix, f);
	return buf[k];
}

/* function_graph on every function of @l */
static void graph_lib(const struct lib *l)
{
	char glob[64];

	reset();
	snprintf(glob, sizeof(glob), "%s*", l->prefix);
	ECHO("set_ftrace_filter", glob);
	ECHO("current_tracer", "function_graph");
}

/* ... off, and its records taken: @want of them */
static int graph_done(const struct lib *l, int want)
{
	int n;

	ECHO("current_tracer", "nop");
	n = take_trace();
	if (n != want)
		check_fail(__FILE__, __LINE__, "%s: %d records, expected %d", l->prefix, n, want);
	return n;
}

/* ---- tests ------------------------------------------------------------------------------ */

TEST(tracers_listed)
{
	char *t = cat("available_tracers");

	CHECK_STREQ(t, "function_graph function nop\n");
	free(t);
	t = cat("current_tracer");
	CHECK_STREQ(t, "nop\n");
	free(t);
	CHECK_EQ(echo("current_tracer", "blk"), -EINVAL);
}

/* function_graph: the call tree of each library, with the depths and in order */
TEST(graph_tree_every_kind)
{
	for (int i = 0; i < NLIBS; i++) {
		const struct lib *l = &libs[i];
		int n;

		graph_lib(l);
		CHECK_EQ(l->top(5), 11 + 13 + 1);
		n = graph_done(l, 8);
		expect(0, R_ENTRY, fname(l, "top"), 0);
		expect(1, R_ENTRY, fname(l, "mid"), 1);
		expect(2, R_ENTRY, fname(l, "leaf"), 2);
		expect(3, R_EXIT, fname(l, "leaf"), 2);
		expect(4, R_ENTRY, fname(l, "leaf"), 2);
		expect(5, R_EXIT, fname(l, "leaf"), 2);
		expect(6, R_EXIT, fname(l, "mid"), 1);
		expect(7, R_EXIT, fname(l, "top"), 0);
		for (int k = 0; k < n; k++)
			CHECK_EQ(recs[k].tid, syscall(SYS_gettid));
	}
}

/*
 * What the body of a traced function gets is what its caller passed: the
 * arguments on the stack (where a stub that calls the body must leave
 * them), a struct by value, a double, varargs with %al; and a tail call
 * (a jump from one traced function into another) nests and returns
 * through both.
 */
TEST(arguments_and_tail_calls)
{
	const struct ft_big big = {3, 5, 7};

	for (int i = 0; i < NLIBS; i++) {
		const struct lib *l = &libs[i];
		long want_args = l->args(1, 2, 3, 4, 5, 6, 7, 8, big, 2.5);
		long want_vsum = l->vsum(3, 1, 0.5, 2, 1.5, 3, 2.5);
		CHECK_EQ(want_args, 204 + 9 * 3 + 10 * 5 + 11 * 7 + 250);
		CHECK_EQ(want_vsum, 1 + 5 + 2 + 15 + 3 + 25);
		graph_lib(l);
		CHECK_EQ(l->args(1, 2, 3, 4, 5, 6, 7, 8, big, 2.5), want_args);
		CHECK_EQ(l->vsum(3, 1, 0.5, 2, 1.5, 3, 2.5), want_vsum);
		CHECK_EQ(l->tail(5), 15);
		graph_done(l, 8);
		expect(0, R_ENTRY, fname(l, "args"), 0);
		expect(1, R_EXIT, fname(l, "args"), 0);
		expect(2, R_ENTRY, fname(l, "vsum"), 0);
		expect(3, R_EXIT, fname(l, "vsum"), 0);
		expect(4, R_ENTRY, fname(l, "tail"), 0);
		expect(5, R_ENTRY, fname(l, "leaf"), 1);
		expect(6, R_EXIT, fname(l, "leaf"), 1);
		expect(7, R_EXIT, fname(l, "tail"), 0);
	}
}

/* function: one line per call, naming the caller */
/*
 * A leaf call is one record, written at its return; an event the call
 * writes meanwhile still comes between its entry and its exit (the held
 * entry is written first), as in the kernel's trace.
 */
TEST(event_inside_a_leaf_keeps_its_place)
{
	char *t, *entry, *ev, *exit_;

	reset();
	/* bad input through the in-process API (no error stream): refused, nothing else */
	CHECK_EQ(echo("kprobe_events", "p:ftin/bad no_such_function_here"), -EINVAL);
	ECHO("kprobe_events", "p:ftin/inleaf pfe_leaf+5");
	CHECK(echo("events/ftin/inleaf/filter", "no_such_field == 1") < 0);
	ECHO("events/ftin/inleaf/enable", "1");
	ECHO("set_ftrace_filter", "pfe_*");
	ECHO("current_tracer", "function_graph");
	CHECK_EQ(pfe_top(5), 11 + 13 + 1);
	ECHO("current_tracer", "nop");
	ECHO("events/ftin/inleaf/enable", "0");
	t = cat("trace");
	entry = strstr(t, "funcgraph_entry: --> pfe_leaf (2)");
	ev = strstr(t, "inleaf: ");
	exit_ = strstr(t, "funcgraph_exit: <-- pfe_leaf (2)");
	if (!entry || !ev || !exit_ || !(entry < ev && ev < exit_))
		check_fail(__FILE__, __LINE__, "the event is not inside pfe_leaf's call:\n%s", t);
	free(t);
	ECHO("trace", "");
	ECHO("kprobe_events", "");
}

TEST(function_tracer)
{
	for (int i = 0; i < NLIBS; i++) {
		const struct lib *l = &libs[i];
		char glob[64];
		int n;

		reset();
		snprintf(glob, sizeof(glob), "%s*", l->prefix);
		ECHO("set_ftrace_filter", glob);
		ECHO("current_tracer", "function");
		CHECK_EQ(l->top(1), 3 + 5 + 1);
		ECHO("current_tracer", "nop");
		n = take_trace();
		CHECK_EQ(n, 4);
		expect(0, R_FUNC, fname(l, "top"), 0);
		CHECK_STREQ(recs[0].parent, "test_function_tracer");
		expect(1, R_FUNC, fname(l, "mid"), 0);
		CHECK_STREQ(recs[1].parent, fname(l, "top"));
		expect(2, R_FUNC, fname(l, "leaf"), 0);
		CHECK_STREQ(recs[2].parent, fname(l, "mid"));
		expect(3, R_FUNC, fname(l, "leaf"), 0);
	}
}

/* set_ftrace_filter / notrace, and the listing of what they select */
TEST(filters)
{
	char *t;
	int n;

	reset();
	CHECK_EQ(echo("set_ftrace_filter", "no_such_function_anywhere*"), -EINVAL);
	ECHO("set_ftrace_filter", "pfe_*");
	CHECK_EQ(echo_append("set_ftrace_filter", "!pfe_mid"), 0);
	t = cat("set_ftrace_filter");
	CHECK(strstr(t, "pfe_top [libft_pfe.so]\n"));
	CHECK(strstr(t, "pfe_leaf [libft_pfe.so]\n"));
	CHECK(!strstr(t, "pfe_mid"));
	free(t);
	ECHO("set_ftrace_notrace", "pfe_leaf");
	ECHO("current_tracer", "function_graph");
	pfe_top(2);
	ECHO("current_tracer", "nop");
	n = take_trace();
	CHECK_EQ(n, 2);
	expect(0, R_ENTRY, "pfe_top", 0);
	expect(1, R_EXIT, "pfe_top", 0);

	/* :mod: selects by object */
	reset();
	ECHO("set_ftrace_filter", "*leaf:mod:libft_mcount");
	ECHO("current_tracer", "function");
	mcount_top(2);
	pfe_top(2);
	ECHO("current_tracer", "nop");
	n = take_trace();
	CHECK_EQ(n, 2);
	expect(0, R_FUNC, "mcount_leaf", 0);
	expect(1, R_FUNC, "mcount_leaf", 0);
	t = cat("set_ftrace_notrace");
	CHECK_STREQ(t, "");
	free(t);
}

/* set_graph_function: only the trees under it; set_graph_notrace: not under it */
TEST(graph_function)
{
	int n;

	reset();
	ECHO("set_ftrace_filter", "fentry_*");
	ECHO("set_graph_function", "fentry_mid");
	ECHO("current_tracer", "function_graph");
	fentry_leaf(1); /* outside any fentry_mid: not traced */
	fentry_top(1);
	ECHO("current_tracer", "nop");
	n = take_trace();
	CHECK_EQ(n, 6);
	expect(0, R_ENTRY, "fentry_mid", 0);
	expect(1, R_ENTRY, "fentry_leaf", 1);
	expect(5, R_EXIT, "fentry_mid", 0);

	reset();
	ECHO("set_ftrace_filter", "fentry_*");
	ECHO("set_graph_notrace", "fentry_mid");
	ECHO("current_tracer", "function_graph");
	fentry_top(1);
	ECHO("current_tracer", "nop");
	n = take_trace();
	CHECK_EQ(n, 2);
	expect(0, R_ENTRY, "fentry_top", 0);
	expect(1, R_EXIT, "fentry_top", 0);
}

TEST(max_depth_and_thresh)
{
	int n;

	reset();
	ECHO("set_ftrace_filter", "plain_*");
	ECHO("max_graph_depth", "2");
	ECHO("current_tracer", "function_graph");
	plain_top(1);
	ECHO("current_tracer", "nop");
	n = take_trace();
	CHECK_EQ(n, 4);
	expect(0, R_ENTRY, "plain_top", 0);
	expect(1, R_ENTRY, "plain_mid", 1);
	expect(2, R_EXIT, "plain_mid", 1);
	expect(3, R_EXIT, "plain_top", 0);

	/* tracing_thresh (µs): only the exits of calls that took at least that long */
	reset();
	ECHO("set_ftrace_filter", "pfe_*");
	ECHO("tracing_thresh", "2000");
	ECHO("current_tracer", "function_graph");
	pfe_slow(5000);
	pfe_top(1);
	ECHO("current_tracer", "nop");
	n = take_trace();
	CHECK_EQ(n, 1);
	expect(0, R_EXIT, "pfe_slow", 0);
}

/* a longjmp over traced frames: they are dropped, what follows nests right */
static void longjmp_one(const struct lib *l)
{
	jmp_buf env;
	char glob[64];
	volatile int hops = 0;
	int n;

	reset();
	snprintf(glob, sizeof(glob), "%s*", l->prefix);
	ECHO("set_ftrace_filter", glob);
	ECHO("current_tracer", "function_graph");
	if (setjmp(env) == 0) {
		l->jump(&env);
		CHECK(0);
	}
	hops++;
	CHECK_EQ(l->top(1), 9);
	ECHO("current_tracer", "nop");
	CHECK_EQ(hops, 1);
	n = take_trace();
	/* jump, deep x4 entries (no exits), then top's full tree at depth 0 */
	CHECK_EQ(n, 5 + 8);
	expect(0, R_ENTRY, fname(l, "jump"), 0);
	expect(4, R_ENTRY, fname(l, "deep"), 4);
	expect(5, R_ENTRY, fname(l, "top"), 0);
	expect(7, R_ENTRY, fname(l, "leaf"), 2);
	expect(12, R_EXIT, fname(l, "top"), 0);
}

TEST(longjmp_over_frames)
{
	for (int i = 0; i < NLIBS; i++)
		longjmp_one(&libs[i]);
}

static const uint8_t *code_of(int (*fn)(int))
{
	return (const uint8_t *)(uintptr_t)fn;
}

/* nop puts every byte back */
TEST(nop_restores_code)
{
	uint8_t before[NLIBS][16];

	reset();
	for (int i = 0; i < NLIBS; i++)
		memcpy(before[i], code_of(libs[i].leaf), 16);
	ECHO("set_ftrace_filter", "plain_* pfe_* fentry_* mcount_*");
	ECHO("current_tracer", "function_graph");
	CHECK(memcmp(before[0], code_of(libs[0].leaf), 1) != 0); /* a breakpoint or a jump */
	CHECK(memcmp(before[1], code_of(libs[1].leaf), 5) != 0); /* a jump to its stub */
	ECHO("current_tracer", "function");
	ECHO("current_tracer", "nop");
	for (int i = 0; i < NLIBS; i++)
		CHECK(!memcmp(before[i], code_of(libs[i].leaf), 16));
}

static volatile int stop_thread;
static volatile unsigned other_calls;

static void *other_thread(void *arg)
{
	int *tid = arg;

	*tid = (int)syscall(SYS_gettid);
	while (!stop_thread) {
		pfe_leaf(1);
		other_calls++;
		usleep(200);
	}
	return NULL;
}

/* set_ftrace_pid: only the threads named; threads nest apart */
static int probe_hits;

static int count_hit(struct sonde_kprobe *p, struct sonde_regs *regs)
{
	(void)p;
	(void)regs;
	probe_hits++;
	return 0;
}

/* the records of pfe_leaf in the trace, emptied */
static int leaf_records(void)
{
	int n = take_trace(), leaf = 0;

	for (int i = 0; i < n; i++)
		leaf += recs[i].kind == R_EXIT && !strcmp(recs[i].name, "pfe_leaf");
	return leaf;
}

/*
 * A kprobe on a patched entry nop, placed before the tracer starts or
 * while it runs, and gone before it stops or after: both fire, and the
 * nop is back at the end (the tracer gives the nop up and hooks the
 * function through a probe of its own there).
 */
TEST(kprobe_on_a_patched_nop)
{
	const uint8_t *code = code_of(pfe_leaf);
	uint8_t before[16];

	memcpy(before, code, sizeof(before));
	for (int order = 0; order < 4; order++) {
		bool probe_first = order & 1, probe_last = order & 2;
		struct sonde_kprobe kp;

		memset(&kp, 0, sizeof(kp));
		kp.addr = (void *)(uintptr_t)pfe_leaf;
		kp.pre_handler = count_hit;
		probe_hits = 0;
		reset();
		ECHO("set_ftrace_filter", "pfe_*");
		if (probe_first)
			CHECK_EQ(sonde_register_kprobe(&kp), 0);
		ECHO("current_tracer", "function_graph");
		if (!probe_first)
			CHECK_EQ(sonde_register_kprobe(&kp), 0);
		CHECK_EQ(pfe_top(5), 11 + 13 + 1);
		CHECK_EQ(probe_hits, 2);
		CHECK_EQ(leaf_records(), 2);
		if (probe_last) {
			ECHO("current_tracer", "nop");
			CHECK_EQ(pfe_leaf(1), 3);
			CHECK_EQ(probe_hits, 3);
			sonde_unregister_kprobe(&kp);
		} else {
			sonde_unregister_kprobe(&kp);
			CHECK_EQ(pfe_top(5), 11 + 13 + 1);
			CHECK_EQ(probe_hits, 2);
			CHECK_EQ(leaf_records(), 2);
			ECHO("current_tracer", "nop");
		}
		if (memcmp(before, code, sizeof(before)))
			check_fail(
			    __FILE__, __LINE__,
			    "order %d: pfe_leaf starts %02x %02x %02x %02x %02x, not as before",
			    order, code[0], code[1], code[2], code[3], code[4]);
	}
}

/*
 * A thread stopped in its own signal handler, which interrupted it inside
 * a function's entry nops (one-byte ones, as gcc's patchable entries are):
 * the nops are not patched under it, or it would resume inside the jump.
 * The thread is stepped with the trap flag into pfe_leaf's nops; its
 * SIGTRAP handler stops stepping after the first nop and waits.
 */
static volatile int tf_state; /* 1: waiting in the handler, inside the nops; 2: let go */

static void tf_handler(int sig, siginfo_t *si, void *ucv)
{
	ucontext_t *uc = ucv;
	uint64_t ip = (uint64_t)uc->uc_mcontext.gregs[REG_RIP], at = (uint64_t)(uintptr_t)pfe_leaf;

	(void)sig;
	(void)si;
	if (ip > at && ip < at + 5) {
		uc->uc_mcontext.gregs[REG_EFL] &= ~0x100LL; /* no more steps */
		tf_state = 1;
		while (tf_state != 2)
			__builtin_ia32_pause(); /* running, in the handler: seen here */
	}
}

static void *tf_stepper(void *arg)
{
	int (*leaf)(int) = pfe_leaf;

	(void)arg;
	__asm__ volatile("pushfq; orq $0x100, (%%rsp); popfq" ::: "memory", "cc");
	*(volatile int *)&tf_state; /* (a few steps in this function first) */
	return (void *)(intptr_t)leaf(1);
}

TEST(no_patch_under_a_signal_handler)
{
	struct sigaction sa, old;
	pthread_t th;
	void *ret;
	int err;

	CHECK(code_of(pfe_leaf)[1] == 0x90); /* one-byte nops */
	reset();
	ECHO("set_ftrace_filter", "pfe_leaf");
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = tf_handler;
	sa.sa_flags = SA_SIGINFO;
	CHECK_EQ(sigaction(SIGTRAP, &sa, &old), 0);
	tf_state = 0;
	CHECK_EQ(pthread_create(&th, NULL, tf_stepper, NULL), 0);
	while (tf_state != 1)
		usleep(100);
	/* it stands in the nops: they stay as they are */
	err = echo("current_tracer", "function");
	CHECK_EQ(err, -EBUSY);
	CHECK_EQ(code_of(pfe_leaf)[0], 0x90);
	tf_state = 2;
	CHECK_EQ(pthread_join(th, &ret), 0);
	CHECK_EQ((int)(intptr_t)ret, 3);
	/* out of them: patched */
	ECHO("current_tracer", "function");
	CHECK_EQ(code_of(pfe_leaf)[0], 0xe9);
	CHECK_EQ(pfe_leaf(2), 5);
	CHECK_EQ(sigaction(SIGTRAP, &old, NULL), 0);
	reset();
}

/*
 * The program's handlers run behind sonde's wrapper (signal.c), which
 * records where the signal interrupted the thread; the program sees its
 * own handlers, called as it set them.
 */
static volatile int usr1_seen, usr1_depth;

static void usr1_info(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	usr1_seen = sig == SIGUSR1 && si->si_signo == SIGUSR1 ? 1 : -1;
	usr1_depth = sd_sig_self.depth;
}

static void usr1_plain(int sig)
{
	usr1_seen = sig == SIGUSR1 ? 2 : -1;
	usr1_depth = sd_sig_self.depth;
}

TEST(program_handlers_are_wrapped)
{
	struct sigaction sa, cur, old;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = usr1_info;
	sa.sa_flags = SA_SIGINFO;
	CHECK_EQ(sigaction(SIGUSR1, &sa, &old), 0);
	CHECK_EQ(sigaction(SIGUSR1, NULL, &cur), 0);
	CHECK(cur.sa_sigaction == usr1_info && (cur.sa_flags & SA_SIGINFO));
	CHECK_EQ(raise(SIGUSR1), 0);
	CHECK_EQ(usr1_seen, 1);
	CHECK_EQ(usr1_depth, 1);
	CHECK_EQ(sd_sig_self.depth, 0);

	CHECK(signal(SIGUSR1, usr1_plain) == (__sighandler_t)(void *)usr1_info);
	CHECK_EQ(sigaction(SIGUSR1, NULL, &cur), 0);
	CHECK(cur.sa_handler == usr1_plain && !(cur.sa_flags & SA_SIGINFO));
	CHECK_EQ(raise(SIGUSR1), 0);
	CHECK_EQ(usr1_seen, 2);
	CHECK_EQ(usr1_depth, 1);

	CHECK(signal(SIGUSR1, SIG_IGN) == usr1_plain);
	CHECK_EQ(raise(SIGUSR1), 0); /* ignored */
	CHECK_EQ(sigaction(SIGUSR1, &old, &cur), 0);
	CHECK(cur.sa_handler == SIG_IGN);
}

TEST(pid_filter_and_threads)
{
	pthread_t th;
	int tid = 0, n, mine = 0, theirs = 0;
	char buf[32];

	reset();
	CHECK_EQ(pthread_create(&th, NULL, other_thread, &tid), 0);
	while (!__atomic_load_n(&tid, __ATOMIC_ACQUIRE))
		usleep(1000);
	ECHO("set_ftrace_filter", "pfe_*");
	snprintf(buf, sizeof(buf), "%ld", (long)syscall(SYS_gettid));
	ECHO("set_ftrace_pid", buf);
	ECHO("current_tracer", "function_graph");
	for (int i = 0; i < 100; i++)
		pfe_top(1);
	ECHO("current_tracer", "nop");
	n = take_trace();
	CHECK_EQ(n, 800);
	for (int i = 0; i < n; i++)
		CHECK_EQ(recs[i].tid, syscall(SYS_gettid));

	/* both threads: each one's records nest on their own */
	ECHO("set_ftrace_pid", "");
	ECHO("current_tracer", "function_graph");
	for (int i = 0; i < 100; i++)
		pfe_top(1);
	/* (the other thread's calls while tracing, however busy the machine) */
	for (unsigned seen = other_calls, k = 0; other_calls - seen < 2 && k < 2000; k++)
		usleep(1000);
	ECHO("current_tracer", "nop");
	stop_thread = 1;
	pthread_join(th, NULL);
	n = take_trace();
	for (int i = 0; i < n; i++) {
		if (recs[i].tid == tid) {
			theirs++;
			CHECK_STREQ(recs[i].name, "pfe_leaf");
			CHECK_EQ(recs[i].depth, 0);
		} else {
			mine++;
		}
	}
	CHECK_EQ(mine, 800);
	CHECK(theirs > 0);
}

/* what could not be traced is said, with why */
TEST(sites_report)
{
	char *t;

	reset();
	ECHO("set_ftrace_filter", "pfe_*");
	ECHO("current_tracer", "function");
	t = cat("ftrace_sites");
	ECHO("current_tracer", "nop");
	CHECK(strstr(t, "libft_pfe.so: patchable function entries:"));
	CHECK(strstr(t, "libft_fentry.so: -pg calls to mcount/__fentry__"));
	CHECK(strstr(t, "libft_plain.so: entry probes on function symbols"));
	CHECK(strstr(t, "test_ftrace: not traced: sonde is linked into it"));
	free(t);
}

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

/* a little of everything libc does, for the whole-libc test */
static unsigned long libc_workload(void)
{
	unsigned long sum = 0;
	char buf[256];
	int v[64];
	DIR *d;
	FILE *f;

	for (int i = 0; i < 64; i++)
		v[i] = (i * 7919) % 64;
	qsort(v, 64, sizeof(int), cmp_int);
	for (int i = 0; i < 16; i++) {
		char *p = malloc(32 + i * 100);

		snprintf(p, 32, "%d-%s", i, "x");
		sum += strlen(p);
		free(p);
	}
	d = opendir("/usr/bin");
	for (struct dirent *e; d && (e = readdir(d));)
		sum += e->d_name[0];
	if (d)
		closedir(d);
	f = fopen("/proc/self/status", "r");
	while (f && fgets(buf, sizeof(buf), f))
		sum += strtoul(buf, NULL, 10);
	if (f)
		fclose(f);
	return sum + (unsigned long)v[63];
}

/*
 * Every function of libc at once, entry probes and all: the program runs
 * as before, the records nest (each exit closes the entry at its depth),
 * and nop gives libc its code back.
 */
TEST(all_of_libc)
{
	unsigned long want, got;
	char *t, *sites;
	int n, depth_name_ok = 0, n_strlen;
	static char open_at[4096][64];
	uint8_t before[64];
	const void *fn = (const void *)(uintptr_t)qsort;

	reset();
	want = libc_workload();
	memcpy(before, fn, sizeof(before));
	ECHO("buffer_size_kb", "65536");
	ECHO("set_ftrace_filter", ":mod:libc");
	ECHO("current_tracer", "function_graph");
	got = libc_workload();
	sites = cat("ftrace_sites");
	ECHO("current_tracer", "nop");
	CHECK_EQ(got, want);
	CHECK(!memcmp(before, fn, sizeof(before)));
	t = strstr(sites, "libc.so.6: entry probes on function symbols: ");
	CHECK(t);
	if (getenv("FT_SHOW"))
		fputs(sites, stderr);
	free(sites);

	n = take_trace();
	CHECK(n > 100);
	for (int i = 0; i < n; i++) {
		if (recs[i].tid != recs[0].tid || recs[i].depth < 0 || recs[i].depth >= 4096)
			continue;
		if (recs[i].kind == R_ENTRY) {
			snprintf(open_at[recs[i].depth], 64, "%s", recs[i].name);
		} else if (recs[i].kind == R_EXIT) {
			if (strcmp(open_at[recs[i].depth], recs[i].name))
				check_fail(__FILE__, __LINE__,
					   "record %d: exit of %s at depth %d, "
					   "entry there was %s",
					   i, recs[i].name, recs[i].depth, open_at[recs[i].depth]);
			depth_name_ok++;
		}
	}
	CHECK(depth_name_ok > 50);
	/*
	 * strlen, an IFUNC: traced where its calls go (the implementation the
	 * resolver chose), under its name; the workload calls it 16 times
	 */
	n_strlen = 0;
	for (int i = 0; i < n; i++)
		n_strlen += recs[i].tid == recs[0].tid && recs[i].kind == R_ENTRY &&
			    !strcmp(recs[i].name, "strlen");
	if (n_strlen < 16)
		check_fail(__FILE__, __LINE__, "strlen: %d calls traced, 16 made", n_strlen);
	/* qsort was called, and the functions it calls nest under it */
	t = NULL;
	for (int i = 0; i + 1 < n && !t; i++)
		if (recs[i].kind == R_ENTRY && !strcmp(recs[i].name, "qsort") &&
		    recs[i + 1].kind == R_ENTRY && recs[i + 1].depth == recs[i].depth + 1)
			t = "";
	CHECK(t);
}

/* what the agent does before each request, and sonde's dlopen hook after each */
static void look_again(void)
{
	sd_kprobes_forget_unmapped();
	sd_trace_lock();
	sd_ftrace_refresh();
	sd_trace_unlock();
}

static int count_named(int n, const char *name)
{
	int c = 0;

	for (int i = 0; i < n; i++)
		c += recs[i].kind == R_FUNC && !strcmp(recs[i].name, name);
	return c;
}

/*
 * An object opened while a tracer runs is hooked (':mod:' may name it
 * before); closed, its probes go without a byte written where its code
 * was; opened again, it is hooked again; nop then restores the rest.
 */
/*
 * @lib (libft_dl: probes; libft_dlpfe: patched nops) opened and closed
 * twice while tracing; the second time, a kprobe on its leaf too (where
 * the patched nop of the first time was: nothing of it may be left).
 */
static void dlopen_dlclose(const char *lib, const char *prefix)
{
	char path[256], filter[128], name[3][64];
	int (*top)(int);
	void *h;
	int n;

	snprintf(path, sizeof(path), "%s/lib%s.so", SONDE_TARGET_BIN, lib);
	snprintf(filter, sizeof(filter), "%s*:mod:lib%s", prefix, lib);
	snprintf(name[0], sizeof(name[0]), "%stop", prefix);
	snprintf(name[1], sizeof(name[1]), "%smid", prefix);
	snprintf(name[2], sizeof(name[2]), "%sleaf", prefix);
	reset();
	ECHO("set_ftrace_filter", filter);
	ECHO("current_tracer", "function");
	for (int round = 0; round < 2; round++) {
		struct sonde_kprobe kp;

		h = dlopen(path, RTLD_NOW);
		if (!h)
			check_fail(__FILE__, __LINE__, "dlopen %s: %s", path, dlerror());
		look_again();
		top = (int (*)(int))dlsym(h, name[0]);
		CHECK(top);
		memset(&kp, 0, sizeof(kp));
		kp.addr = dlsym(h, name[2]);
		kp.pre_handler = count_hit;
		probe_hits = 0;
		if (round == 1)
			CHECK_EQ(sonde_register_kprobe(&kp), 0);
		CHECK_EQ(top(3), 17);
		n = take_trace();
		CHECK_EQ(count_named(n, name[0]), 1);
		CHECK_EQ(count_named(n, name[1]), 1);
		CHECK_EQ(count_named(n, name[2]), 2);
		if (round == 1) {
			CHECK_EQ(probe_hits, 2);
			sonde_unregister_kprobe(&kp);
		}
		CHECK_EQ(dlclose(h), 0);
		look_again();
	}
	/* (the code is unmapped: this once wrote to it, or read it, and died) */
	ECHO("current_tracer", "nop");
	reset();
}

TEST(dlopen_dlclose_while_tracing)
{
	dlopen_dlclose("ft_dl", "dl_");
	dlopen_dlclose("ft_dlpfe", "dlp_");
}
