/* SPDX-License-Identifier: MIT */
/*
 * ftrace.h - the function tracers (the kernel's ftrace and fgraph).
 *
 * Where functions are hooked (sites.c):
 *   - a `-fpatchable-function-entry=N` object (N >= 5, no nops before the
 *     entry): the entry nops become a jump to a stub of the function's
 *     own, which calls sd_arch_ftrace_stub_entry (ftrace_stub.c);
 *   - a `-pg -mfentry -mnop-mcount -mrecord-mcount` object: the 5-byte nop
 *     each __mcount_loc entry names, likewise;
 *   - a plain `-pg` (or -mfentry) object: its calls to mcount/__fentry__
 *     reach libsonde's own, exported under those names;
 *   - any other object: a probe at each function symbol's entry (jump-
 *     optimized where the kernel's rules allow it).
 *
 * What a hit does (fgraph.c): the `function` tracer writes ftrace:function
 * {ip, parent_ip}; `function_graph` writes ftrace:funcgraph_entry {func,
 * depth}, hooks the return (at a patched nop the stub calls the function's
 * body; elsewhere the return address is swapped for sd_arch_fgraph_return) and on return
 * writes ftrace:funcgraph_exit {func, depth, overrun, calltime, rettime}.
 * The entry is held back until the thread writes something else: a call
 * that writes nothing before it returns (a leaf, the most common) is one
 * record, ftrace:funcgraph_leaf, with the exit's fields, at its entry's
 * time. Readers take it as the pair (the kernel writes the pair).
 *
 * Everything here is driven from the virtual tracefs (current_tracer,
 * set_ftrace_filter…), under the trace lock.
 */
#ifndef SD_FTRACE_FTRACE_H
#define SD_FTRACE_FTRACE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum sd_tracer {
	SD_TRACER_NOP = 0,
	SD_TRACER_FUNCTION,
	SD_TRACER_GRAPH,
};

/* which functions, filters and graph options (tracefs writes) */
struct sd_ftrace_opts {
	char **filter; /* set_ftrace_filter: globs, "glob:mod:name" or ":mod:name" */
	int nfilter;
	char **notrace; /* set_ftrace_notrace */
	int nnotrace;
	char **graph_fn; /* set_graph_function */
	int ngraph_fn;
	char **graph_notrace;
	int ngraph_notrace;
	int max_depth;	    /* max_graph_depth, 0 = no limit */
	uint64_t thresh_ns; /* tracing_thresh (written in µs) */
	int *pids;	    /* set_ftrace_pid: thread ids, none = all */
	int npids;
	unsigned int graph_flags; /* options/funcgraph-*: how the trace file prints */
};

/* switch tracers (nop turns everything off and restores every byte) */
int sd_ftrace_set_tracer(int tracer);
int sd_ftrace_tracer(void);
const char *sd_ftrace_tracer_name(int tracer);

/* the options of the tracers; applied at once if a tracer is running */
struct sd_ftrace_opts *sd_ftrace_opts(void);
int sd_ftrace_apply(void);
/*
 * objects loaded (dlopen) since the tracers last looked: the running
 * tracer hooks the functions of theirs it selects, as the kernel's does a
 * module loaded after it started. Cheap when nothing was loaded. Call
 * with sd_trace_lock() held.
 */
void sd_ftrace_refresh(void);

/* what the ftrace_sites file shows: how each object is hooked, what could not be */
void sd_ftrace_report(FILE *out);

/*
 * options/init-trace: start-up tracing (initcall.c); -ENOENT, with why,
 * when the program was not started with libsonde-init.so in LD_AUDIT
 */
int sd_initcall_set(bool on, FILE *why);
bool sd_initcall_on(void);

/* the events, registered with the trace core on first use */
int sd_ftrace_events_init(void);

/* glob list editing, as the tracefs files: `>` replaces, `>>` appends, "" clears */
int sd_ftrace_list_write(char ***list, int *n, const char *text, bool truncate);
/* the functions @list selects, one a line: "name" (the executable's) or "name [object]" */
void sd_ftrace_list_print(char **list, int n, FILE *out);
/* @glob matches some function of the process (a filter write naming none fails) */
bool sd_ftrace_glob_matches(const char *glob);

#endif
