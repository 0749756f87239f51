/* SPDX-License-Identifier: MIT */
/*
 * graph_export.h - what a function_graph trace becomes outside the trace
 * text, from the calls calltree.h rebuilds:
 *
 *  - per-function statistics, printed as `uftrace report` prints them:
 *
 *      Total time   Self time       Calls  Function
 *      ==========  ==========  ==========  ====================
 *      301.984 us    0.126 us           1  main
 *
 *  - Chrome trace-event JSON (chrome://tracing, ui.perfetto.dev): one
 *    complete ("X") event per call, ts and dur in µs;
 *  - folded stacks for flame graphs (flamegraph.pl, speedscope):
 *    "main;foo;bar 1234", the self time of that stack.
 */
#ifndef SONDE_GRAPH_EXPORT_H
#define SONDE_GRAPH_EXPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "calltree.h"

/* a duration as uftrace prints it: "  1.234 us", "999.999 ms", "  2.500  m"; 10 columns, blank for
 * 0 */
void gx_time(char *buf, size_t len, uint64_t ns);

/* ---- statistics -------------------------------------------------------------------------- */

enum gx_sort {
	GX_SORT_TOTAL = 0,
	GX_SORT_SELF,
	GX_SORT_CALLS,
	GX_SORT_FUNC,
};

enum gx_columns {
	GX_COLS_TIMES = 0, /* Total time, Self time, Calls */
	GX_COLS_AVG_TOTAL, /* Total avg, Total min, Total max */
	GX_COLS_AVG_SELF,  /* Self avg, Self min, Self max */
};

struct gx_func {
	char *name;
	unsigned long calls;
	uint64_t total_ns; /* outermost calls only (recursion is not counted twice) */
	uint64_t self_ns;
	uint64_t sum_ns; /* every call's duration, for the average */
	uint64_t min_total, max_total, min_self, max_self;
};

struct gx_stats {
	struct gx_func *funcs;
	size_t n, cap; /* open addressing by name, cap a power of two */
	unsigned long calls;
};

void gx_stats_init(struct gx_stats *st);
void gx_stats_free(struct gx_stats *st);
/* a call of the function named @name */
int gx_stats_add(struct gx_stats *st, const char *name, const struct ct_call *c);
/* the table; returns the number of functions */
size_t gx_stats_print(struct gx_stats *st, FILE *out, int sort, int columns);
/* "total", "self", "calls"/"call", "func"; -1 for anything else */
int gx_sort_by_name(const char *key);

/* ---- Chrome trace events ----------------------------------------------------------------- */

struct gx_chrome {
	FILE *f;
	int pid;
	bool first;
	int *tids; /* threads named so far */
	size_t ntids, captids;
	unsigned long events;
};

/* '{"traceEvents":[' and the process's name */
void gx_chrome_begin(struct gx_chrome *c, FILE *f, int pid, const char *process_name);
void gx_chrome_call(struct gx_chrome *c, const char *name, const struct ct_call *call);
/* '],"displayTimeUnit":"ns",…}' */
void gx_chrome_end(struct gx_chrome *c);

/* ---- folded stacks ----------------------------------------------------------------------- */

struct gx_folded_slot {
	char *stack;
	uint64_t ns;
};

struct gx_folded {
	struct gx_folded_slot *slots;
	size_t n, cap;
	bool per_thread; /* each stack starts with "comm-tid" */
	char *buf;	 /* scratch for building a stack */
	size_t buflen;
};

void gx_folded_init(struct gx_folded *f, bool per_thread);
void gx_folded_free(struct gx_folded *f);
/* a call's self time, charged to its stack (names through @names) */
int gx_folded_add(struct gx_folded *f, struct ftr_names *names, const struct ct_call *c);
/*
 * the stacks, sorted, one per line with their self time: in µs rounded up
 * (@ns false; stacks below 1 ns are left out) or in ns
 */
size_t gx_folded_print(struct gx_folded *f, FILE *out, bool ns);

/* @s as a JSON string's content (quotes not included) */
void gx_json_string(FILE *out, const char *s);

#endif
