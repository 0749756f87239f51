// SPDX-License-Identifier: MIT
/*
 * test_graph_render.c - what the command makes of the function tracers'
 * records, on records built here by hand (the layouts of graph_render.h):
 *
 *  - the function_graph text against the kernel's layout (trace_functions_
 *    graph.c): headers, the duration column and its marks, leaf and nested
 *    calls, comments, funcgraph-tail/-proc/-abstime/-overrun, exits without
 *    entries (tracing_thresh, lost-events gaps), the context-switch lines,
 *    entries held until their thread's next record;
 *  - the function tracer's line;
 *  - the calls rebuilt from records (calltree.c): total, self, calls on a
 *    known tree, recursion, exits without entries, calls never returned;
 *  - uftrace's time units, the statistics table, folded stacks, Chrome JSON
 *    (well-formed: python3 -m json.tool);
 *  - `sonde report` and `sonde export` on a recording written here, with the
 *    functions of this program as the traced ones (symbols from its file).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "calltree.h"
#include "check.h"
#include "graph_export.h"
#include "graph_render.h"
#include "sym/sym.h"
#include "trace/clock.h"
#include "tracefile.h"

/* ---- events, symbols, records ------------------------------------------------------------ */

enum { ID_FUNCTION = 1000, ID_ENTRY, ID_EXIT, ID_OTHER, ID_LEAF };

static void other_print(struct sd_seq *s, const struct sd_event *ev, const void *entry,
			uint32_t len, const struct sd_print_ctx *ctx)
{
	sd_seq_puts(s, "x=1");
}

static const struct sd_event_ops other_ops = {.print = other_print};

static struct sd_event events[5] = {
    {.id = ID_FUNCTION, .system = "ftrace", .name = "function"},
    {.id = ID_ENTRY, .system = "ftrace", .name = "funcgraph_entry"},
    {.id = ID_EXIT, .system = "ftrace", .name = "funcgraph_exit"},
    {.id = ID_OTHER, .system = "grp", .name = "ev", .ops = &other_ops},
    {.id = ID_LEAF, .system = "ftrace", .name = "funcgraph_leaf"},
};

static struct sd_event *lookup(void *arg, unsigned int id)
{
	return id >= ID_FUNCTION && id <= ID_LEAF ? &events[id - ID_FUNCTION] : NULL;
}

#define F_MAIN 0x1000
#define F_FOO  0x2000
#define F_BAR  0x3000
#define F_BAZ  0x4000
#define F_OP   0x5000
#define F_FIB  0x6000

static const struct {
	uint64_t addr;
	const char *name;
} syms[] = {
    {F_MAIN, "main"}, {F_FOO, "foo"},	   {F_BAR, "bar"},
    {F_BAZ, "baz"},   {F_OP, "operator+"}, {F_FIB, "fib"},
};

static int fake_sym(void *arg, uint64_t addr, char *buf, size_t len)
{
	for (size_t i = 0; i < sizeof(syms) / sizeof(syms[0]); i++)
		if (addr >= syms[i].addr && addr < syms[i].addr + 0x100)
			return snprintf(buf, len, "%s+0x%lx/0x100", syms[i].name,
					(unsigned long)(addr - syms[i].addr));
	return -1;
}

static struct sd_clock_params no_params;

/* CLOCK_MONO: raw times are ns */
static struct sd_render rnd = {
    .pctx = {.sym = fake_sym},
    .clock = &no_params,
    .clock_id = SD_CLOCK_MONO,
    .event = lookup,
};

static unsigned char pool[256][64];
static unsigned int npool;

static struct sd_rb_event rec(int id, int tid, unsigned int cpu, uint64_t ts, uint32_t len)
{
	unsigned char *p = pool[npool++ % 256];
	uint16_t id16 = (uint16_t)id;
	int32_t pid = tid;

	memset(p, 0, 64);
	memcpy(p, &id16, 2);
	memcpy(p + 4, &pid, 4);
	return (struct sd_rb_event){.payload = p,
				    .len = len,
				    .ts = ts,
				    .cpu = (uint16_t)cpu,
				    .tid = tid,
				    .comm = tid == 100 ? "prog" : "worker"};
}

static struct sd_rb_event ent(int tid, unsigned int cpu, uint64_t ts, uint64_t func, int32_t d)
{
	struct sd_rb_event ev = rec(ID_ENTRY, tid, cpu, ts, FTR_ENTRY_SIZE);
	unsigned char *p = (unsigned char *)ev.payload;

	memcpy(p + 8, &func, 8);
	memcpy(p + 16, &d, 4);
	return ev;
}

static struct sd_rb_event ext(int tid, unsigned int cpu, uint64_t func, int32_t d,
			      uint64_t calltime, uint64_t rettime)
{
	struct sd_rb_event ev = rec(ID_EXIT, tid, cpu, rettime, FTR_EXIT_SIZE);
	unsigned char *p = (unsigned char *)ev.payload;
	uint32_t overrun = 2;

	memcpy(p + 8, &func, 8);
	memcpy(p + 16, &d, 4);
	memcpy(p + 20, &overrun, 4);
	memcpy(p + 24, &calltime, 8);
	memcpy(p + 32, &rettime, 8);
	return ev;
}

/* a call that wrote nothing else: one record, the exit's fields, at the entry's time */
static struct sd_rb_event leaf(int tid, unsigned int cpu, uint64_t func, int32_t d,
			       uint64_t calltime, uint64_t rettime)
{
	struct sd_rb_event ev = ext(tid, cpu, func, d, calltime, rettime);
	uint16_t id = ID_LEAF;

	memcpy((unsigned char *)ev.payload, &id, 2);
	ev.ts = calltime;
	return ev;
}

static struct sd_rb_event fn(int tid, unsigned int cpu, uint64_t ts, uint64_t ip, uint64_t parent)
{
	struct sd_rb_event ev = rec(ID_FUNCTION, tid, cpu, ts, FTR_FUNCTION_SIZE);
	unsigned char *p = (unsigned char *)ev.payload;

	memcpy(p + 8, &ip, 8);
	memcpy(p + 16, &parent, 8);
	return ev;
}

static struct sd_rb_event other(int tid, unsigned int cpu, uint64_t ts)
{
	return rec(ID_OTHER, tid, cpu, ts, 8);
}

/* ---- the renderer's output --------------------------------------------------------------- */

static char out[1 << 16];
static size_t outlen;

static void capture(void *arg, const char *text, size_t len)
{
	CHECK(outlen + len < sizeof(out));
	memcpy(out + outlen, text, len);
	outlen += len;
	out[outlen] = '\0';
}

static struct graph_render *renderer(unsigned int flags, int ncpus, unsigned int pending_ms)
{
	struct gr_opts o = {.flags = flags, .ncpus = ncpus, .pending_ms = pending_ms};
	struct graph_render *g = NULL;

	outlen = 0;
	out[0] = '\0';
	CHECK_EQ(gr_new(&o, &rnd, capture, NULL, &g), 0);
	return g;
}

static void feed(struct graph_render *g, struct sd_rb_event ev)
{
	gr_feed(g, &ev);
}

static void feed_lost(struct graph_render *g, struct sd_rb_event ev, uint64_t lost)
{
	ev.lost = lost;
	gr_feed(g, &ev);
}

static const char *seqtext(void (*fill)(struct sd_seq *, uint64_t), uint64_t v)
{
	static char buf[256];
	struct sd_seq s;

	sd_seq_init(&s, buf, sizeof(buf));
	fill(&s, v);
	return buf;
}

/* ---- columns ----------------------------------------------------------------------------- */

TEST(duration_column)
{
	/* µs with 3 decimals, at most 7 digits, then " us ", padded to 12 columns */
	CHECK_STREQ(seqtext(gr_duration, 0), "0.000 us    ");
	CHECK_STREQ(seqtext(gr_duration, 1382), "1.382 us    ");
	CHECK_STREQ(seqtext(gr_duration, 14237), "14.237 us   ");
	CHECK_STREQ(seqtext(gr_duration, 119000), "119.000 us  ");
	CHECK_STREQ(seqtext(gr_duration, 1234567), "1234.567 us ");
	CHECK_STREQ(seqtext(gr_duration, 12345678), "12345.67 us ");
	CHECK_STREQ(seqtext(gr_duration, 123456789), "123456.7 us ");
	CHECK_STREQ(seqtext(gr_duration, 1234567890), "1234567 us  ");
	CHECK_STREQ(seqtext(gr_duration, 12345678901ull), "12345678 us ");
}

TEST(overhead_marks)
{
	/* the kernel's trace_find_mark: strictly above each threshold */
	CHECK_EQ(gr_mark(0), ' ');
	CHECK_EQ(gr_mark(10000), ' ');
	CHECK_EQ(gr_mark(10001), '+');
	CHECK_EQ(gr_mark(100000), '+');
	CHECK_EQ(gr_mark(100001), '!');
	CHECK_EQ(gr_mark(1000001), '#');
	CHECK_EQ(gr_mark(10000001), '*');
	CHECK_EQ(gr_mark(100000001), '@');
	CHECK_EQ(gr_mark(1000000001), '$');
}

TEST(cpu_width)
{
	/* max_bytes_for_cpu: the digits of the highest cpu number */
	CHECK_EQ(gr_cpu_width(1), 1);
	CHECK_EQ(gr_cpu_width(10), 1);
	CHECK_EQ(gr_cpu_width(11), 2);
	CHECK_EQ(gr_cpu_width(100), 2);
	CHECK_EQ(gr_cpu_width(101), 3);
}

static const char *header(unsigned int flags)
{
	static char buf[1024];
	struct sd_seq s;

	sd_seq_init(&s, buf, sizeof(buf));
	gr_header(&s, flags);
	return buf;
}

TEST(headers)
{
	CHECK_STREQ(header(GR_DEFAULT), "# tracer: function_graph\n"
					"#\n"
					"# CPU  DURATION                  FUNCTION CALLS\n"
					"# |     |   |                     |   |   |   |\n");
	CHECK_STREQ(header(GR_DEFAULT | GR_PROC),
		    "# tracer: function_graph\n"
		    "#\n"
		    "# CPU  TASK/PID         DURATION                  FUNCTION CALLS\n"
		    "# |     |    |           |   |                     |   |   |   |\n");
	CHECK_STREQ(header(GR_DEFAULT | GR_ABSTIME),
		    "# tracer: function_graph\n"
		    "#\n"
		    "#     TIME        CPU  DURATION                  FUNCTION CALLS\n"
		    "#      |          |     |   |                     |   |   |   |\n");
	CHECK_STREQ(
	    header(GR_DEFAULT | GR_PROC | GR_ABSTIME),
	    "# tracer: function_graph\n"
	    "#\n"
	    "#     TIME        CPU  TASK/PID         DURATION                  FUNCTION CALLS\n"
	    "#      |          |     |    |           |   |                     |   |   |   |\n");
}

/* ---- the graph --------------------------------------------------------------------------- */

/* main { foo(); bar { baz(); an event } }, on cpu 2 */
static void tree(struct graph_render *g)
{
	feed(g, ent(100, 2, 1000, F_MAIN, 0));
	feed(g, ent(100, 2, 1100, F_FOO, 1));
	feed(g, ext(100, 2, F_FOO, 1, 1100, 2482));
	feed(g, ent(100, 2, 3000, F_BAR, 1));
	feed(g, ent(100, 2, 3100, F_BAZ, 2));
	feed(g, ext(100, 2, F_BAZ, 2, 3100, 3200));
	feed(g, other(100, 2, 3300));
	feed(g, ext(100, 2, F_BAR, 1, 3000, 16000));
	feed(g, ext(100, 2, F_MAIN, 0, 1000, 120000));
}

/* what tree() renders to with the defaults */
static const char tree_text[] = " 2)               |  main() {\n"
				" 2)   1.382 us    |    foo();\n"
				" 2)               |    bar() {\n"
				" 2)   0.100 us    |      baz();\n"
				" 2)               |      /* ev: x=1 */\n"
				" 2) + 13.000 us   |    }\n"
				" 2) ! 119.000 us  |  }\n";

TEST(graph_nesting_leaves_durations)
{
	struct graph_render *g = renderer(GR_DEFAULT, 4, 0);

	tree(g);
	gr_finish(g);
	CHECK_STREQ(out, tree_text);
	gr_free(g);
}

/* the same tree as the tracer writes it: each leaf call one record */
TEST(graph_leaf_records)
{
	struct graph_render *g = renderer(GR_DEFAULT, 4, 0);

	feed(g, ent(100, 2, 1000, F_MAIN, 0));
	feed(g, leaf(100, 2, F_FOO, 1, 1100, 2482));
	feed(g, ent(100, 2, 3000, F_BAR, 1));
	feed(g, leaf(100, 2, F_BAZ, 2, 3100, 3200));
	feed(g, other(100, 2, 3300));
	feed(g, ext(100, 2, F_BAR, 1, 3000, 16000));
	feed(g, ext(100, 2, F_MAIN, 0, 1000, 120000));
	gr_finish(g);
	CHECK_STREQ(out, tree_text);
	gr_free(g);
}

TEST(graph_tail)
{
	struct graph_render *g = renderer(GR_DEFAULT | GR_TAIL, 4, 0);

	tree(g);
	gr_finish(g);
	CHECK_STREQ(out, " 2)               |  main() {\n"
			 " 2)   1.382 us    |    foo();\n"
			 " 2)               |    bar() {\n"
			 " 2)   0.100 us    |      baz();\n"
			 " 2)               |      /* ev: x=1 */\n"
			 " 2) + 13.000 us   |    } /* bar */\n"
			 " 2) ! 119.000 us  |  } /* main */\n");
	gr_free(g);
}

TEST(graph_wide_cpu_column_and_no_overhead)
{
	struct graph_render *g = renderer(GR_CPU | GR_DURATION, 16, 0);

	feed(g, ent(100, 3, 1000, F_FOO, 0));
	feed(g, ext(100, 3, F_FOO, 0, 1000, 51000));
	gr_finish(g);
	CHECK_STREQ(out, "  3)   50.000 us   |  foo();\n");
	gr_free(g);
}

TEST(graph_proc_and_abstime)
{
	struct graph_render *g = renderer(GR_DEFAULT | GR_PROC | GR_ABSTIME, 2, 0);

	feed(g, ent(100, 0, 1500000000ull, F_FOO, 0));
	feed(g, ext(100, 0, F_FOO, 0, 1500000000ull, 1500000100ull));
	gr_finish(g);
	/* a leaf shows its entry's time */
	CHECK_STREQ(out, "    1.500000 |   0)    prog-100    |   0.100 us    |  foo();\n");
	gr_free(g);
}

TEST(graph_exits_without_entries)
{
	/* tracing_thresh: only the returns of the long calls */
	struct graph_render *g = renderer(GR_DEFAULT, 1, 0);

	feed(g, ext(100, 0, F_FOO, 1, 100, 20100));
	feed(g, ext(100, 0, F_MAIN, 0, 0, 50000));
	gr_finish(g);
	CHECK_STREQ(out, " 0) + 20.000 us   |    } /* foo */\n"
			 " 0) + 50.000 us   |  } /* main */\n");
	gr_free(g);
}

TEST(graph_lost_gap)
{
	struct graph_render *g = renderer(GR_DEFAULT, 1, 0);

	feed(g, ent(100, 0, 1000, F_MAIN, 0));
	feed(g, ent(100, 0, 1100, F_FOO, 1));
	/* 3 records of this thread lost: foo's exit may not follow its entry */
	feed_lost(g, ext(100, 0, F_FOO, 1, 1100, 3100), 3);
	feed(g, ext(100, 0, F_MAIN, 0, 1000, 4000));
	gr_finish(g);
	/* what was entered before the gap is forgotten: both exits name their function */
	CHECK_STREQ(out, " 0)               |  main() {\n"
			 " 0)               |    foo() {\n"
			 "CPU:0 [LOST 3 EVENTS]\n"
			 " 0)   2.000 us    |    } /* foo */\n"
			 " 0)   3.000 us    |  } /* main */\n");
	gr_free(g);
}

TEST(graph_other_record_between_entry_and_exit)
{
	struct graph_render *g = renderer(GR_DEFAULT, 1, 0);

	feed(g, ent(100, 0, 1000, F_FOO, 0));
	feed(g, other(100, 0, 1500));
	feed(g, ext(100, 0, F_FOO, 0, 1000, 2000));
	gr_finish(g);
	CHECK_STREQ(out,
		    " 0)               |  foo() {\n"
		    " 0)               |  /* ev: x=1 */\n" /* the kernel indents so at depth 0 */
		    " 0)   1.000 us    |  }\n");
	gr_free(g);
}

TEST(graph_threads_switch_lines)
{
	struct graph_render *g = renderer(GR_DEFAULT, 2, 0);

	feed(g, ent(100, 0, 100, F_MAIN, 0));
	feed(g, ent(101, 1, 150, F_BAR, 0));
	/* main's entry waits for thread 100's next record: nothing is printed yet */
	feed(g, ent(101, 1, 160, F_BAZ, 1));
	feed(g, ext(101, 1, F_BAZ, 1, 160, 170));
	CHECK_EQ(outlen, 0);
	feed(g, ext(100, 0, F_MAIN, 0, 100, 200));
	feed(g, ext(101, 1, F_BAR, 0, 150, 400));
	gr_finish(g);
	CHECK_STREQ(out, " 0)   0.100 us    |  main();\n"
			 " ------------------------------------------\n"
			 " 1)    prog-100    =>   worker-101  \n"
			 " ------------------------------------------\n"
			 "\n"
			 " 1)               |  bar() {\n"
			 " 1)   0.010 us    |    baz();\n"
			 " 1)   0.250 us    |  }\n");
	gr_free(g);
}

TEST(graph_end_of_trace_and_overrun)
{
	struct graph_render *g = renderer(GR_DEFAULT | GR_OVERRUN, 1, 0);

	feed(g, ent(100, 0, 100, F_MAIN, 0));
	feed(g, ent(100, 0, 200, F_FOO, 1));
	feed(g, ext(100, 0, F_FOO, 1, 200, 300));
	feed(g, ent(100, 0, 400, F_BAR, 1));
	CHECK_STREQ(out, " 0)               |  main() {\n"
			 " 0)   0.100 us    |    foo();\n");
	/* the end: a held entry is a call that did not return */
	gr_finish(g);
	CHECK_STREQ(out, " 0)               |  main() {\n"
			 " 0)   0.100 us    |    foo();\n"
			 " 0)               |    bar() {\n");
	gr_free(g);

	g = renderer(GR_DEFAULT | GR_OVERRUN, 1, 0);
	feed(g, ext(100, 0, F_FOO, 0, 200, 300));
	gr_finish(g);
	CHECK_STREQ(out, " 0)   0.100 us    |  } /* foo */\n"
			 " (Overruns: 2)\n");
	gr_free(g);
}

TEST(graph_live_pending_timeout)
{
	struct graph_render *g = renderer(GR_DEFAULT, 1, 20);

	feed(g, ent(100, 0, 100, F_FOO, 0));
	gr_idle(g);
	CHECK_EQ(outlen, 0); /* not waited long enough */
	usleep(60 * 1000);
	gr_idle(g);
	CHECK_STREQ(out, " 0)               |  foo() {\n");
	feed(g, ext(100, 0, F_FOO, 0, 100, 2100));
	CHECK_STREQ(out, " 0)               |  foo() {\n"
			 " 0)   2.000 us    |  }\n");
	gr_free(g);
}

TEST(graph_function_records_and_unknown_names)
{
	struct graph_render *g = renderer(GR_DEFAULT, 1, 0);

	feed(g, ent(100, 0, 100, 0x9990, 0));
	feed(g, ext(100, 0, 0x9990, 0, 100, 200));
	feed(g, ent(100, 0, 300, F_OP + 4, 0));
	feed(g, ext(100, 0, F_OP + 4, 0, 300, 400));
	gr_finish(g);
	CHECK_STREQ(out, " 0)   0.100 us    |  0x9990();\n"
			 " 0)   0.100 us    |  operator+();\n");
	gr_free(g);
}

/* ---- the function tracer ----------------------------------------------------------------- */

TEST(function_line)
{
	struct ftr_ids ids = {0};
	struct sd_rb_event ev = fn(100, 3, 2961863965000ull, F_FOO + 4, F_MAIN + 0x2e);
	struct ftr_rec fr;
	char buf[512];
	struct sd_seq s;

	CHECK_EQ(ftr_decode(&ids, &rnd, &ev, &fr), FTR_FUNCTION);
	sd_seq_init(&s, buf, sizeof(buf));
	ftr_render_function(&s, &rnd, NULL, &ev, &fr);
	CHECK_STREQ(buf, "            prog-100     [003] .....  2961.863965: foo <-main\n");

	/* no parent: no arrow; no symbol: the address */
	ev = fn(101, 0, 1000, 0x9999, 0);
	CHECK_EQ(ftr_decode(&ids, &rnd, &ev, &fr), FTR_FUNCTION);
	sd_seq_init(&s, buf, sizeof(buf));
	ftr_render_function(&s, &rnd, NULL, &ev, &fr);
	CHECK_STREQ(buf, "          worker-101     [000] .....     0.000001: 0x9999\n");

	/* the graph records on their own lines, with the kernel's print formats */
	ev = ent(100, 0, 1000, F_FOO, 1);
	CHECK_EQ(ftr_decode(&ids, &rnd, &ev, &fr), FTR_ENTRY);
	sd_seq_init(&s, buf, sizeof(buf));
	ftr_render_graph_event(&s, &rnd, NULL, &ev, &fr);
	CHECK_STREQ(
	    buf,
	    "            prog-100     [000] .....     0.000001: funcgraph_entry: --> foo (1)\n");
	ev = ext(100, 0, F_FOO, 1, 0x10, 0x20);
	CHECK_EQ(ftr_decode(&ids, &rnd, &ev, &fr), FTR_EXIT);
	sd_seq_init(&s, buf, sizeof(buf));
	ftr_render_graph_event(&s, &rnd, NULL, &ev, &fr);
	CHECK_STREQ(
	    buf, "            prog-100     [000] .....     0.000000: funcgraph_exit: <-- foo (1) "
		 "(start: 10  end: 20) over: 2\n");
	/* a leaf's one record: the kernel's two lines, each at its own time */
	ev = leaf(100, 0, F_FOO, 1, 2000, 5000);
	CHECK_EQ(ftr_decode(&ids, &rnd, &ev, &fr), FTR_LEAF);
	sd_seq_init(&s, buf, sizeof(buf));
	ftr_render_graph_event(&s, &rnd, NULL, &ev, &fr);
	CHECK_STREQ(
	    buf, "            prog-100     [000] .....     0.000002: funcgraph_entry: --> foo (1)\n"
		 "            prog-100     [000] .....     0.000005: funcgraph_exit: <-- foo (1) "
		 "(start: 7d0  end: 1388) over: 2\n");

	/* too short for its layout, or not an ftrace event: someone else's */
	ev = ent(100, 0, 1000, F_FOO, 1);
	ev.len = 12;
	CHECK_EQ(ftr_decode(&ids, &rnd, &ev, &fr), FTR_OTHER);
	ev = other(100, 0, 1);
	CHECK_EQ(ftr_decode(&ids, &rnd, &ev, &fr), FTR_OTHER);
	ftr_ids_free(&ids);
}

TEST(names)
{
	struct ftr_names *n = ftr_names_new(&rnd.pctx);
	char buf[64];

	CHECK(n);
	CHECK_STREQ(ftr_name(n, F_FOO + 0x10), "foo");
	CHECK_STREQ(ftr_name(n, F_OP), "operator+");
	CHECK_STREQ(ftr_name(n, 0xdead), "0xdead");
	/* many addresses: the table grows and keeps them */
	for (uint64_t a = 0; a < 5000; a++)
		ftr_name(n, 0x100000 + a);
	CHECK_STREQ(ftr_name(n, 0x100000 + 4321), "0x1010e1");
	CHECK_STREQ(ftr_name(n, F_FOO + 0x10), "foo");
	ftr_names_free(n);
	ftr_name_of(&rnd.pctx, F_BAR + 1, buf, sizeof(buf));
	CHECK_STREQ(buf, "bar");
}

/* ---- calls ------------------------------------------------------------------------------- */

struct collect {
	struct gx_stats st;
	struct gx_folded fo;
	struct ftr_names *names;
	struct ct_call calls[64];
	uint64_t stacks[64][8];
	int n;
};

static void on_call(void *arg, const struct ct_call *c)
{
	struct collect *co = arg;

	CHECK(co->n < 64);
	co->calls[co->n] = *c;
	CHECK(c->nstack <= 8);
	memcpy(co->stacks[co->n], c->stack, c->nstack * sizeof(uint64_t));
	co->calls[co->n].stack = co->stacks[co->n];
	co->n++;
	CHECK_EQ(gx_stats_add(&co->st, ftr_name(co->names, c->func), c), 0);
	CHECK_EQ(gx_folded_add(&co->fo, co->names, c), 0);
}

static struct calltree *collector(struct collect *co, bool per_thread)
{
	struct ct_ops ops = {.call = on_call};
	struct calltree *t = NULL;

	memset(co, 0, sizeof(*co));
	gx_stats_init(&co->st);
	gx_folded_init(&co->fo, per_thread);
	co->names = ftr_names_new(&rnd.pctx);
	CHECK_EQ(ct_new(&rnd, &ops, co, &t), 0);
	return t;
}

static void collect_free(struct collect *co, struct calltree *t)
{
	ct_free(t);
	gx_stats_free(&co->st);
	gx_folded_free(&co->fo);
	ftr_names_free(co->names);
}

static void ctfeed(struct calltree *t, struct sd_rb_event ev)
{
	ct_feed(t, &ev);
}

static char *stats_text(struct gx_stats *st, int sort, int cols)
{
	static char buf[4096];
	FILE *f = fmemopen(buf, sizeof(buf), "w");

	CHECK(f);
	gx_stats_print(st, f, sort, cols);
	fclose(f);
	return buf;
}

static char *folded_text(struct gx_folded *fo, bool ns)
{
	static char buf[4096];
	FILE *f = fmemopen(buf, sizeof(buf), "w");

	CHECK(f);
	gx_folded_print(fo, f, ns);
	fclose(f);
	return buf;
}

/*
 * main [0, 100 µs] { foo [10, 30] { bar [12, 20] } foo [40, 60] bar [70, 75] }
 *   main: total 100, self 100 - 20 - 20 - 5 = 55, 1 call
 *   foo:  total 40, self 12 + 20 = 32, 2 calls
 *   bar:  total 8 + 5 = 13, self 13, 2 calls
 */
static void known_tree(struct calltree *t, int tid)
{
	ctfeed(t, ent(tid, 0, 0, F_MAIN, 0));
	ctfeed(t, ent(tid, 0, 10000, F_FOO, 1));
	ctfeed(t, ent(tid, 0, 12000, F_BAR, 2));
	ctfeed(t, ext(tid, 0, F_BAR, 2, 12000, 20000));
	ctfeed(t, ext(tid, 0, F_FOO, 1, 10000, 30000));
	ctfeed(t, ent(tid, 0, 40000, F_FOO, 1));
	ctfeed(t, ext(tid, 0, F_FOO, 1, 40000, 60000));
	ctfeed(t, ent(tid, 0, 70000, F_BAR, 1));
	ctfeed(t, ext(tid, 0, F_BAR, 1, 70000, 75000));
	ctfeed(t, ext(tid, 0, F_MAIN, 0, 0, 100000));
}

/* known_tree()'s stats, by total time */
static const char known_tree_totals[] =
    "  Total time   Self time       Calls  Function\n"
    "  ==========  ==========  ==========  ====================\n"
    "  100.000 us   55.000 us           1  main\n"
    "   40.000 us   32.000 us           2  foo\n"
    "   13.000 us   13.000 us           2  bar\n";

/* known_tree()'s calls, however written: five, the first to return bar under foo under main */
static void check_known_first_call(const struct collect *co)
{
	CHECK_EQ(co->n, 5);
	CHECK_EQ(co->calls[0].func, F_BAR);
	CHECK_EQ(co->calls[0].nstack, 3);
	CHECK_EQ(co->calls[0].stack[0], F_MAIN);
	CHECK_EQ(co->calls[0].stack[1], F_FOO);
	CHECK_EQ(co->calls[0].start_ns, 12000);
	CHECK_EQ(co->calls[0].dur_ns, 8000);
	CHECK(co->calls[0].entered && co->calls[0].complete && !co->calls[0].recursive);
}

/* known_tree() with its leaf calls as the tracer writes them: the same stats */
TEST(stats_leaf_records)
{
	struct collect co;
	struct calltree *t = collector(&co, false);

	ctfeed(t, ent(100, 0, 0, F_MAIN, 0));
	ctfeed(t, ent(100, 0, 10000, F_FOO, 1));
	ctfeed(t, leaf(100, 0, F_BAR, 2, 12000, 20000));
	ctfeed(t, ext(100, 0, F_FOO, 1, 10000, 30000));
	ctfeed(t, leaf(100, 0, F_FOO, 1, 40000, 60000));
	ctfeed(t, leaf(100, 0, F_BAR, 1, 70000, 75000));
	ctfeed(t, ext(100, 0, F_MAIN, 0, 0, 100000));
	ct_finish(t);
	CHECK_EQ(ct_records(t), 7);
	check_known_first_call(&co);
	CHECK_STREQ(stats_text(&co.st, GX_SORT_TOTAL, GX_COLS_TIMES), known_tree_totals);
	collect_free(&co, t);
}

TEST(stats_known_tree)
{
	struct collect co;
	struct calltree *t = collector(&co, false);

	known_tree(t, 100);
	ct_finish(t);
	CHECK_EQ(ct_records(t), 10);
	check_known_first_call(&co);
	CHECK_STREQ(stats_text(&co.st, GX_SORT_TOTAL, GX_COLS_TIMES), known_tree_totals);
	CHECK_STREQ(stats_text(&co.st, GX_SORT_CALLS, GX_COLS_TIMES),
		    "  Total time   Self time       Calls  Function\n"
		    "  ==========  ==========  ==========  ====================\n"
		    "   13.000 us   13.000 us           2  bar\n"
		    "   40.000 us   32.000 us           2  foo\n"
		    "  100.000 us   55.000 us           1  main\n");
	CHECK_STREQ(stats_text(&co.st, GX_SORT_FUNC, GX_COLS_AVG_TOTAL),
		    "   Total avg   Total min   Total max  Function\n"
		    "  ==========  ==========  ==========  ====================\n"
		    "    6.500 us    5.000 us    8.000 us  bar\n"
		    "   20.000 us   20.000 us   20.000 us  foo\n"
		    "  100.000 us  100.000 us  100.000 us  main\n");
	CHECK_STREQ(stats_text(&co.st, GX_SORT_SELF, GX_COLS_AVG_SELF),
		    "    Self avg    Self min    Self max  Function\n"
		    "  ==========  ==========  ==========  ====================\n"
		    "   55.000 us   55.000 us   55.000 us  main\n"
		    "   16.000 us   12.000 us   20.000 us  foo\n"
		    "    6.500 us    5.000 us    8.000 us  bar\n");
	/* the self time of each stack, in µs */
	CHECK_STREQ(folded_text(&co.fo, false), "main 55\n"
						"main;bar 5\n"
						"main;foo 32\n"
						"main;foo;bar 8\n");
	CHECK_STREQ(folded_text(&co.fo, true), "main 55000\n"
					       "main;bar 5000\n"
					       "main;foo 32000\n"
					       "main;foo;bar 8000\n");
	collect_free(&co, t);
}

TEST(stats_recursion)
{
	struct collect co;
	struct calltree *t = collector(&co, false);

	/* fib(2) [0, 10] { fib(1) [2, 4] fib(0) [5, 7] } */
	ctfeed(t, ent(100, 0, 0, F_FIB, 0));
	ctfeed(t, ent(100, 0, 2000, F_FIB, 1));
	ctfeed(t, ext(100, 0, F_FIB, 1, 2000, 4000));
	ctfeed(t, ent(100, 0, 5000, F_FIB, 1));
	ctfeed(t, ext(100, 0, F_FIB, 1, 5000, 7000));
	ctfeed(t, ext(100, 0, F_FIB, 0, 0, 10000));
	ct_finish(t);
	CHECK(co.calls[0].recursive);
	CHECK(!co.calls[2].recursive);
	/* the total counts the outermost call only, as uftrace report */
	CHECK_STREQ(stats_text(&co.st, GX_SORT_TOTAL, GX_COLS_TIMES),
		    "  Total time   Self time       Calls  Function\n"
		    "  ==========  ==========  ==========  ====================\n"
		    "   10.000 us   10.000 us           3  fib\n");
	CHECK_STREQ(folded_text(&co.fo, false), "fib 6\n"
						"fib;fib 4\n");
	collect_free(&co, t);
}

TEST(calls_exits_only_and_threads)
{
	struct collect co;
	struct calltree *t = collector(&co, true);

	/* tracing_thresh: only exits; the depths still say who called whom */
	ctfeed(t, ext(100, 0, F_FOO, 1, 10000, 30000));
	ctfeed(t, ext(101, 1, F_BAR, 0, 5000, 8000));
	ctfeed(t, ext(100, 0, F_MAIN, 0, 0, 100000));
	ct_finish(t);
	CHECK_EQ(co.n, 3);
	CHECK(!co.calls[0].entered);
	CHECK_EQ(co.calls[2].self_ns, 80000);
	CHECK_STREQ(folded_text(&co.fo, false), "prog-100;foo 20\n"
						"prog-100;main 80\n"
						"worker-101;bar 3\n");
	collect_free(&co, t);
}

TEST(calls_never_returned)
{
	struct collect co;
	struct calltree *t = collector(&co, false);

	ctfeed(t, ent(100, 0, 0, F_MAIN, 0));
	ctfeed(t, ent(100, 0, 1000, F_FOO, 1));
	ctfeed(t, ext(100, 0, F_FOO, 1, 1000, 3000));
	ctfeed(t, ent(100, 0, 4000, F_BAR, 1));
	ctfeed(t, other(100, 0, 9000));
	ct_finish(t);
	/* foo returned; then bar [4, 9] and main [0, 9], innermost first */
	CHECK_EQ(co.n, 3);
	CHECK_EQ(co.calls[1].func, F_BAR);
	CHECK(!co.calls[1].complete);
	CHECK_EQ(co.calls[1].dur_ns, 5000);
	CHECK_EQ(co.calls[2].func, F_MAIN);
	CHECK_EQ(co.calls[2].dur_ns, 9000);
	CHECK_EQ(co.calls[2].self_ns, 2000);
	collect_free(&co, t);
}

TEST(calls_lost_gap)
{
	struct collect co;
	struct calltree *t = collector(&co, false);
	struct sd_rb_event ev;

	ctfeed(t, ent(100, 0, 0, F_MAIN, 0));
	ctfeed(t, ent(100, 0, 1000, F_FOO, 1));
	ev = ext(100, 0, F_BAR, 2, 2000, 3000);
	ev.lost = 5;
	ct_feed(t, &ev);
	ctfeed(t, ext(100, 0, F_MAIN, 0, 0, 10000));
	ct_finish(t);
	/* after the gap nothing is known to be running: bar has no callers, main no entry */
	CHECK_EQ(co.n, 2);
	CHECK_EQ(co.calls[0].nstack, 1);
	CHECK(!co.calls[1].entered);
	collect_free(&co, t);
}

TEST(time_units)
{
	char b[32];

	gx_time(b, sizeof(b), 0);
	CHECK_STREQ(b, "          ");
	gx_time(b, sizeof(b), 126);
	CHECK_STREQ(b, "  0.126 us");
	gx_time(b, sizeof(b), 301984);
	CHECK_STREQ(b, "301.984 us");
	gx_time(b, sizeof(b), 1234567);
	CHECK_STREQ(b, "  1.234 ms");
	gx_time(b, sizeof(b), 2500000000ull);
	CHECK_STREQ(b, "  2.500  s");
	gx_time(b, sizeof(b), 150000000000ull);
	CHECK_STREQ(b, "  2.030  m");
	gx_time(b, sizeof(b), 7200000000000ull);
	CHECK_STREQ(b, "  2.000  h");
	gx_time(b, sizeof(b), 5400000000000ull);
	CHECK_STREQ(b, "  1.030  h");
	gx_time(b, sizeof(b), 3600000000000ull * 2000);
	CHECK_STREQ(b, "999.999  h");
}

/* ---- Chrome JSON ------------------------------------------------------------------------- */

static bool have_python(void)
{
	return system("python3 -c 'import json' >/dev/null 2>&1") == 0;
}

/* python3 -m json.tool accepts @path; then a check of the content */
static void check_json(const char *path, const char *script)
{
	char cmd[1024];
	int st;

	snprintf(cmd, sizeof(cmd), "python3 -m json.tool %s >/dev/null", path);
	st = system(cmd);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	if (script) {
		snprintf(cmd, sizeof(cmd), "python3 -c '%s' %s", script, path);
		st = system(cmd);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
}

TEST(chrome_json)
{
	char path[] = "/tmp/sonde-chrome.XXXXXX";
	int fd = mkstemp(path);
	struct gx_chrome c;
	struct ct_call call = {
	    .tid = 100, .comm = "we\"ird\\", .start_ns = 1234567, .dur_ns = 1000, .complete = true};
	FILE *f;

	if (!have_python())
		SKIP("no python3 to check JSON with");
	CHECK(fd >= 0);
	f = fdopen(fd, "w");
	gx_chrome_begin(&c, f, 42, "prog \"x\"");
	gx_chrome_call(&c, "main", &call);
	call.start_ns = 1234600;
	call.dur_ns = 10;
	gx_chrome_call(&c, "a\tb\"c\\d", &call);
	call.tid = 101;
	call.complete = false;
	gx_chrome_call(&c, "foo", &call);
	gx_chrome_end(&c);
	fclose(f);
	check_json(path, "import json,sys\n"
			 "d=json.load(open(sys.argv[1]))\n"
			 "assert d[\"displayTimeUnit\"]==\"ns\"\n"
			 "x=[e for e in d[\"traceEvents\"] if e[\"ph\"]==\"X\"]\n"
			 "assert len(x)==3, x\n"
			 "assert x[0][\"ts\"]==1234.567 and x[0][\"dur\"]==1.0, x[0]\n"
			 "assert x[1][\"name\"]==\"a\\tb\\\"c\\\\d\", x[1]\n"
			 "assert x[2][\"args\"][\"returned\"]==False\n"
			 "m=[e for e in d[\"traceEvents\"] if e[\"ph\"]==\"M\"]\n"
			 "assert len(m)==3, m\n"
			 "assert all(e[\"pid\"]==42 for e in d[\"traceEvents\"])\n");
	unlink(path);
}

TEST(chrome_json_empty)
{
	char path[] = "/tmp/sonde-chrome.XXXXXX";
	int fd = mkstemp(path);
	struct gx_chrome c;
	FILE *f;

	if (!have_python())
		SKIP("no python3 to check JSON with");
	f = fdopen(fd, "w");
	gx_chrome_begin(&c, f, 42, NULL);
	gx_chrome_end(&c);
	fclose(f);
	check_json(path, NULL);
	unlink(path);
}

/* ---- sonde report and sonde export on a recording ---------------------------------------- */

__attribute__((noinline, used)) int tg_inner(int x);
__attribute__((noinline, used)) int tg_inner(int x)
{
	return x * 3;
}

__attribute__((noinline, used)) int tg_outer(int x);
__attribute__((noinline, used)) int tg_outer(int x)
{
	return tg_inner(x) + 1;
}

static void put_rec(FILE *f, struct sd_rb_event ev)
{
	struct tf_rec r = {.cpu = ev.cpu, .tid = ev.tid, .ts = ev.ts, .lost = ev.lost};

	snprintf(r.comm, sizeof(r.comm), "%s", ev.comm);
	CHECK_EQ(tf_write_chunk(f, 'R', &r, sizeof(r), ev.payload, ev.len), 0);
}

/* a function_graph recording of this program's tg_outer and tg_inner */
static void write_recording(const char *path, const char *tracer)
{
	struct sd_maps *maps;
	struct sd_module *m = NULL;
	uint64_t outer = (uint64_t)(uintptr_t)tg_outer, inner = (uint64_t)(uintptr_t)tg_inner;
	char text[4096];
	FILE *f = fopen(path, "w");

	CHECK(f);
	CHECK_EQ(sd_maps_read(0, &maps), 0);
	for (size_t i = 0; i < sd_maps_count(maps); i++)
		if (sd_maps_at(maps, i)->is_main)
			m = sd_maps_at(maps, i);
	CHECK(m);
	CHECK_EQ(tf_write_magic(f), 0);
	snprintf(text, sizeof(text),
		 "pid=42 clock=%d tsc_hz=0 mult=0 shift=0 tsc0=0 ns0=0 tracer=%s ncpus=4 "
		 "cmd=/usr/bin/tg prog\n",
		 SD_CLOCK_MONO, tracer);
	CHECK_EQ(tf_write_chunk(f, 'H', text, strlen(text), NULL, 0), 0);
	snprintf(text, sizeof(text),
		 "E %d ftrace function ftrace\nE %d ftrace funcgraph_entry ftrace\n"
		 "E %d ftrace funcgraph_exit ftrace\n",
		 ID_FUNCTION, ID_ENTRY, ID_EXIT);
	CHECK_EQ(tf_write_chunk(f, 'E', text, strlen(text), NULL, 0), 0);
	snprintf(text, sizeof(text), "%lx %lx %lx %s\n", (unsigned long)m->start,
		 (unsigned long)m->end, (unsigned long)m->bias, m->path);
	CHECK_EQ(tf_write_chunk(f, 'M', text, strlen(text), NULL, 0), 0);
	/* tg_outer [1 s, +30 µs] { tg_inner [+10, +15] tg_inner [+20, +22] }, twice */
	for (int i = 0; i < 2; i++) {
		uint64_t t0 = 1000000000ull + i * 100000;

		put_rec(f, ent(100, 1, t0, outer, 0));
		put_rec(f, ent(100, 1, t0 + 10000, inner, 1));
		put_rec(f, ext(100, 1, inner, 1, t0 + 10000, t0 + 15000));
		put_rec(f, ent(100, 1, t0 + 20000, inner, 1));
		put_rec(f, ext(100, 1, inner, 1, t0 + 20000, t0 + 22000));
		put_rec(f, ext(100, 1, outer, 0, t0, t0 + 30000));
	}
	put_rec(f, fn(100, 1, 1000300000ull, inner, outer + 9));
	CHECK_EQ(fclose(f), 0);
	sd_maps_free(maps);
}

/* run @cmd, its stdout in a static buffer; *status its exit status */
static const char *run(const char *cmd, int *status)
{
	static char buf[1 << 15];
	FILE *p = popen(cmd, "r");
	size_t n;

	CHECK(p);
	n = fread(buf, 1, sizeof(buf) - 1, p);
	buf[n] = '\0';
	*status = pclose(p);
	*status = WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
	return buf;
}

static void need_sonde(void)
{
	if (access(SONDE_BIN, X_OK))
		SKIP(SONDE_BIN " is not built");
}

TEST(report_and_export_of_a_recording)
{
	char path[] = "/tmp/sonde-graphrec.XXXXXX", cmd[1024], json[64];
	const char *o;
	int fd = mkstemp(path), st;

	need_sonde();
	CHECK(fd >= 0);
	close(fd);
	write_recording(path, "function_graph");

	snprintf(cmd, sizeof(cmd), "%s report %s 2>/dev/null", SONDE_BIN, path);
	o = run(cmd, &st);
	CHECK_EQ(st, 0);
	CHECK_STREQ(o, "  Total time   Self time       Calls  Function\n"
		       "  ==========  ==========  ==========  ====================\n"
		       "   60.000 us   46.000 us           2  tg_outer\n"
		       "   14.000 us   14.000 us           4  tg_inner\n");

	snprintf(cmd, sizeof(cmd), "%s report -s calls %s 2>/dev/null", SONDE_BIN, path);
	o = run(cmd, &st);
	CHECK_STREQ(strstr(o, "=\n") + 2, "   14.000 us   14.000 us           4  tg_inner\n"
					  "   60.000 us   46.000 us           2  tg_outer\n");

	snprintf(cmd, sizeof(cmd), "%s report --graph --funcgraph-tail %s 2>/dev/null", SONDE_BIN,
		 path);
	o = run(cmd, &st);
	CHECK_EQ(st, 0);
	CHECK_STREQ(o, "# tracer: function_graph\n"
		       "#\n"
		       "# CPU  DURATION                  FUNCTION CALLS\n"
		       "# |     |   |                     |   |   |   |\n"
		       " 1)               |  tg_outer() {\n"
		       " 1)   5.000 us    |    tg_inner();\n"
		       " 1)   2.000 us    |    tg_inner();\n"
		       " 1) + 30.000 us   |  } /* tg_outer */\n"
		       " 1)               |  tg_outer() {\n"
		       " 1)   5.000 us    |    tg_inner();\n"
		       " 1)   2.000 us    |    tg_inner();\n"
		       " 1) + 30.000 us   |  } /* tg_outer */\n"
		       "            prog-100     [001] .....     1.000300: tg_inner <-tg_outer\n");

	snprintf(cmd, sizeof(cmd), "%s report --events --no-header %s 2>/dev/null", SONDE_BIN,
		 path);
	o = run(cmd, &st);
	CHECK(strstr(o, "            prog-100     [001] .....     1.000000: funcgraph_entry: --> "
			"tg_outer (0)\n"));
	CHECK(strstr(o, "funcgraph_exit: <-- tg_inner (1) (start: 3b9af110  end: 3b9b0498) "
			"over: 2\n"));

	snprintf(cmd, sizeof(cmd), "%s export --format folded %s 2>/dev/null", SONDE_BIN, path);
	o = run(cmd, &st);
	CHECK_EQ(st, 0);
	CHECK_STREQ(o, "tg_outer 46\n"
		       "tg_outer;tg_inner 14\n");

	if (have_python()) {
		snprintf(json, sizeof(json), "%s.json", path);
		snprintf(cmd, sizeof(cmd), "%s export --format chrome -o %s %s 2>/dev/null",
			 SONDE_BIN, json, path);
		o = run(cmd, &st);
		CHECK_EQ(st, 0);
		check_json(
		    json,
		    "import json,sys\n"
		    "d=json.load(open(sys.argv[1]))\n"
		    "x=[e for e in d[\"traceEvents\"] if e[\"ph\"]==\"X\"]\n"
		    "assert len(x)==6, x\n"
		    "assert sorted(e[\"name\"] for e in x)==[\"tg_inner\"]*4+[\"tg_outer\"]*2\n"
		    "assert all(e[\"pid\"]==42 and e[\"tid\"]==100 for e in x)\n"
		    "o=[e for e in x if e[\"name\"]==\"tg_outer\"]\n"
		    "assert o[0][\"ts\"]==1000000.0 and o[0][\"dur\"]==30.0, o\n"
		    "m=[e for e in d[\"traceEvents\"] if e[\"ph\"]==\"M\"]\n"
		    "assert m[0][\"args\"][\"name\"]==\"tg prog\", m\n");
		unlink(json);
	}

	/* export wants a function_graph recording */
	write_recording(path, "function");
	snprintf(cmd, sizeof(cmd), "%s export --format folded %s 2>/dev/null", SONDE_BIN, path);
	run(cmd, &st);
	CHECK_EQ(st, 2);
	/* a function recording reports its lines */
	snprintf(cmd, sizeof(cmd), "%s report %s 2>/dev/null", SONDE_BIN, path);
	o = run(cmd, &st);
	CHECK_EQ(st, 0);
	CHECK(!strncmp(o, "# tracer: function\n#\n", 21));
	CHECK(
	    strstr(o, "            prog-100     [001] .....     1.000300: tg_inner <-tg_outer\n"));
	unlink(path);
}

TEST(report_bad_input)
{
	int st;
	const char *o;
	char cmd[512];

	need_sonde();
	snprintf(cmd, sizeof(cmd), "%s report -s nonsense /dev/null 2>&1", SONDE_BIN);
	o = run(cmd, &st);
	CHECK_EQ(st, 2);
	CHECK(strstr(o, "sort by total, self, calls or func"));
	snprintf(cmd, sizeof(cmd), "%s export /dev/null 2>&1", SONDE_BIN);
	run(cmd, &st);
	CHECK_EQ(st, 2);
	snprintf(cmd, sizeof(cmd), "%s export --format chrome /dev/null 2>&1", SONDE_BIN);
	o = run(cmd, &st);
	CHECK_EQ(st, 2);
	CHECK(strstr(o, "is not a sonde recording"));
}
