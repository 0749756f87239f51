/* SPDX-License-Identifier: MIT */
/* fgraph.h - the state the function tracers' hot path reads (fgraph.c). */
#ifndef SD_FTRACE_FGRAPH_H
#define SD_FTRACE_FGRAPH_H

#include <stdint.h>

#include <sonde/kprobes.h>

struct sd_event;

/* sorted, disjoint address ranges */
struct sd_fg_set {
	size_t n;
	struct {
		uint64_t start, end;
	} v[];
};

struct sd_fg_pids {
	int n;
	int v[];
};

#define SD_FG_SELF_MAX 16

/*
 * Read without locks by the hot path; each pointer is replaced whole and
 * the old one freed after sd_sync_threads().
 */
struct sd_fgraph_state {
	int tracer; /* enum sd_tracer */
	struct sd_event *ev_function, *ev_entry, *ev_exit, *ev_leaf;
	struct sd_fg_set *pg_funcs; /* the selected functions of -pg objects */
	struct sd_fg_set *graph_fn; /* set_graph_function */
	struct sd_fg_set *graph_notrace;
	struct sd_fg_pids *pids; /* set_ftrace_pid */
	int max_depth;
	uint64_t thresh_ns;
	/*
	 * the code of libsonde and the libraries it runs on, when they are
	 * libraries of their own: a call from there is sonde's (their start-up
	 * and exit code run outside sonde's API); [0] spans them all
	 */
	struct {
		uint64_t start, end;
	} self[SD_FG_SELF_MAX + 1];
	int nself;
};

extern struct sd_fgraph_state sd_fgraph;
/* nonzero while a tracer runs: __fentry__ and mcount return at once otherwise */
extern volatile uint8_t sd_ftrace_active;

/* the entry probe's handler for symbol-table sites */
int sd_ftrace_kprobe_pre(struct sonde_kprobe *p, struct sonde_regs *regs);
/* ... at a function that never returns (_exit, abort): no entry held back for its return */
int sd_ftrace_kprobe_pre_noreturn(struct sonde_kprobe *p, struct sonde_regs *regs);

/* before another record of this thread: the entry function_graph holds back */
void sd_fgraph_flush_held(void);

/* exceptions: see unwind.c */
void sd_fgraph_unhook_all(void);
void sd_fgraph_rehook(uint64_t sp);

/* the return trampoline (ftrace_tramp.S) */
extern const char sd_arch_fgraph_return[];
extern const char sd_arch_fgraph_return_end[];

#endif
