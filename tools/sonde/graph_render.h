/* SPDX-License-Identifier: MIT */
/*
 * graph_render.h - the function tracers' records as the kernel prints them.
 *
 * The records (src/ftrace writes them; ids are assigned at run time, the
 * names are fixed), after the 8-byte common header of event.h:
 *
 *   ftrace:function         u64 ip @8, u64 parent_ip @16
 *   ftrace:funcgraph_entry  u64 func @8, s32 depth @16
 *   ftrace:funcgraph_exit   u64 func @8, s32 depth @16, u32 overrun @20,
 *                           u64 calltime @24, u64 rettime @32
 *
 * calltime and rettime are raw trace-clock values, as the records'
 * timestamps; depth 0 is the outermost traced call of a thread.
 *
 * The function tracer's line (trace_pipe, kernel's trace_fn_trace):
 *
 *              ls-5678    [001] .....  2961.863965: main <-__libc_start_call_main
 *
 * The function_graph text (kernel's trace_functions_graph.c):
 *
 *   # tracer: function_graph
 *   #
 *   # CPU  DURATION                  FUNCTION CALLS
 *   # |     |   |                     |   |   |   |
 *    1)               |  main() {
 *    1)   0.250 us    |    foo();
 *    1) + 12.345 us   |  }
 *
 * A call is printed on one line ("foo();") when the record that follows
 * its entry on the same thread is its own exit: the renderer holds each
 * entry until the next record of that thread arrives (or, live, until it
 * has waited gr_opts.pending_ms), and prints lines in the order of the
 * records. An exit whose entry was not seen (tracing_thresh, a lost-events
 * gap) names its function in a C comment after the brace, as the
 * kernel's does (always with funcgraph-tail). When the thread of consecutive
 * lines changes, the kernel's context-switch lines are printed, here per
 * thread rather than per CPU.
 *
 * Nothing here is used in a probe handler: this is the command's side.
 */
#ifndef SONDE_GRAPH_RENDER_H
#define SONDE_GRAPH_RENDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "trace/event.h"
#include "trace/output.h"
#include "trace/ringbuf.h"
#include "trace/seq.h"

/* ---- the records ------------------------------------------------------------------------- */

enum ftr_kind {
	FTR_OTHER = 0, /* any other event (or an unknown id) */
	FTR_FUNCTION,  /* ftrace:function */
	FTR_ENTRY,     /* ftrace:funcgraph_entry */
	FTR_EXIT,      /* ftrace:funcgraph_exit */
	FTR_LEAF,      /* ftrace:funcgraph_leaf: an entry and its exit in one record */
};

#define FTR_FUNCTION_SIZE 24
#define FTR_ENTRY_SIZE	  20
#define FTR_EXIT_SIZE	  40

struct ftr_rec {
	int kind;	   /* enum ftr_kind */
	uint64_t func;	   /* function: ip; graph: func */
	uint64_t parent;   /* function: parent_ip */
	int32_t depth;	   /* graph */
	uint32_t overrun;  /* exit, leaf */
	uint64_t calltime; /* exit, leaf: raw trace-clock times */
	uint64_t rettime;
};

/* the kind of an event, by its system and name */
int ftr_event_kind(const struct sd_event *ev);

/* event ids to kinds, remembered (ids are never reused) */
struct ftr_ids {
	int8_t *kind; /* by id - SD_EVENT_ID_FIRST: -1 not looked up yet */
	unsigned int n;
};

/*
 * ftr_decode - the kind of record @ev (its event found through @r->event),
 * its fields in *out when it is one of the function tracers'. A record too
 * short for its layout is FTR_OTHER.
 */
int ftr_decode(struct ftr_ids *ids, const struct sd_render *r, const struct sd_rb_event *ev,
	       struct ftr_rec *out);
void ftr_ids_free(struct ftr_ids *ids);

/* ns from raw trace-clock time @from to @to (0 if @to is earlier) */
uint64_t ftr_delta_ns(const struct sd_render *r, uint64_t from, uint64_t to);

/*
 * Function names, as the kernel's %ps prints them: the bare symbol name
 * ("main"), or "0x4011d6" when no symbol holds the address. Remembered per
 * address (an address is assumed to keep its name for the whole trace).
 */
struct ftr_names;
struct ftr_names *ftr_names_new(const struct sd_print_ctx *pctx);
const char *ftr_name(struct ftr_names *n, uint64_t addr);
/* a return address as its caller's name (ftr_caller_name_of), remembered */
const char *ftr_caller_name(struct ftr_names *n, uint64_t ret);
void ftr_names_free(struct ftr_names *n);
/* @addr's bare name into @buf, without remembering it */
void ftr_name_of(const struct sd_print_ctx *pctx, uint64_t addr, char *buf, size_t len);
/* a return address as its caller's name: the symbol of the byte before it, or the address */
void ftr_caller_name_of(const struct sd_print_ctx *pctx, uint64_t ret, char *buf, size_t len);

/*
 * The function tracer's line for @ev (decoded in @fr), with the context
 * columns of every trace line and "func <-parent" ('\n' included).
 */
void ftr_render_function(struct sd_seq *s, const struct sd_render *r, struct ftr_names *names,
			 const struct sd_rb_event *ev, const struct ftr_rec *fr);

/*
 * A funcgraph_entry or funcgraph_exit record as an event on its own line
 * (any tracer but function_graph shows them so), with the kernel's print
 * formats: "funcgraph_entry: --> main (0)", "funcgraph_exit: <-- main (0)
 * (start: 1a2b  end: 1a3c) over: 0".
 */
void ftr_render_graph_event(struct sd_seq *s, const struct sd_render *r, struct ftr_names *names,
			    const struct sd_rb_event *ev, const struct ftr_rec *fr);

/* ---- function_graph ---------------------------------------------------------------------- */

/* the kernel's funcgraph-* options */
enum gr_flag {
	GR_CPU = 1u << 0,      /* funcgraph-cpu (default) */
	GR_OVERHEAD = 1u << 1, /* funcgraph-overhead: the + ! # * @ $ marks (default) */
	GR_DURATION = 1u << 2, /* funcgraph-duration (default) */
	GR_PROC = 1u << 3,     /* funcgraph-proc: comm-tid column */
	GR_ABSTIME = 1u << 4,  /* funcgraph-abstime: the record's time */
	GR_TAIL = 1u << 5,     /* funcgraph-tail: every "}" names its function */
	GR_OVERRUN = 1u << 6,  /* funcgraph-overrun: " (Overruns: N)" after exits */
};

#define GR_DEFAULT (GR_CPU | GR_OVERHEAD | GR_DURATION)

struct gr_opts {
	unsigned int flags; /* enum gr_flag */
	int ncpus;	    /* for the CPU column's width, as the kernel's nr_cpu_ids */
	/*
	 * live output: an entry waits at most this long for its thread's next
	 * record before it is printed as "func() {" (0: as long as it takes —
	 * recordings, where the whole trace is there)
	 */
	unsigned int pending_ms;
};

/* the column headers (for @flags) */
void gr_header(struct sd_seq *s, unsigned int flags);
/* the kernel's trace_print_graph_duration: "1.382 us " padded to its column */
void gr_duration(struct sd_seq *s, uint64_t ns);
/* the overhead mark of a duration: ' ', '+', '!', '#', '*', '@' or '$' */
char gr_mark(uint64_t ns);
/* digits of the CPU column (max_bytes_for_cpu) */
int gr_cpu_width(int ncpus);

typedef void (*gr_out_fn)(void *arg, const char *text, size_t len);

struct graph_render;

/*
 * gr_new - a renderer writing whole lines to @out. @r gives the events,
 * symbols and clock of the records and must outlive the renderer.
 */
int gr_new(const struct gr_opts *o, const struct sd_render *r, gr_out_fn out, void *out_arg,
	   struct graph_render **gr);
/* one record, in the order the ring reader merged them */
void gr_feed(struct graph_render *g, const struct sd_rb_event *ev);
/* live: print the entries that waited pending_ms (call when no record came for a while) */
void gr_idle(struct graph_render *g);
/* the end of the trace: print everything still held */
void gr_finish(struct graph_render *g);
void gr_free(struct graph_render *g);

#endif
