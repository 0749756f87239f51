/* SPDX-License-Identifier: MIT */
/*
 * calltree.h - the calls of a function_graph trace, rebuilt per thread
 * from its entry and exit records (graph_render.h gives their layout),
 * for what is derived from them: per-function statistics (sonde report),
 * Chrome trace events and flame-graph stacks (sonde export).
 *
 * Each exit record is a complete call: its duration is rettime - calltime
 * of the record itself, so calls are known even when their entries are not
 * (tracing_thresh, a lost-events gap). Self time is the duration less that
 * of the calls one level deeper that returned meanwhile (by depth, which
 * works with or without entries); with tracing_thresh the calls too short
 * to be recorded count in their caller's self time. A call is "recursive"
 * when a call of the same function is still running below it on the thread:
 * totals count only the outermost one, as uftrace report does.
 *
 * The callers (the stack) come from the entries seen; after a gap, or
 * without entries, they are what is known.
 */
#ifndef SONDE_CALLTREE_H
#define SONDE_CALLTREE_H

#include <stdbool.h>
#include <stdint.h>

#include "graph_render.h"

struct ct_call {
	int tid;
	const char *comm; /* the thread's name, "" if unknown */
	uint64_t func;
	int depth;
	uint64_t start_ns; /* trace-clock ns */
	uint64_t dur_ns;
	uint64_t self_ns;
	bool complete;	       /* it returned (false: still running at the end of the trace) */
	bool entered;	       /* its entry was seen */
	bool recursive;	       /* an outer call of the same function was running */
	const uint64_t *stack; /* the functions from the outermost known caller to this one */
	int nstack;
};

struct ct_ops {
	/*
	 * a call, when it returned; at ct_finish, the calls that never did
	 * (complete == false, dur_ns up to the last record of the thread),
	 * innermost first
	 */
	void (*call)(void *arg, const struct ct_call *c);
};

struct calltree;

int ct_new(const struct sd_render *r, const struct ct_ops *ops, void *arg, struct calltree **out);
/* one record; anything not funcgraph_entry/exit only advances its thread's clock */
void ct_feed(struct calltree *t, const struct sd_rb_event *ev);
void ct_finish(struct calltree *t);
void ct_free(struct calltree *t);
/* records of the function graph tracer seen (entries + exits) */
unsigned long ct_records(const struct calltree *t);

#endif
