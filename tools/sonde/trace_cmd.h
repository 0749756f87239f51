/* SPDX-License-Identifier: MIT */
/*
 * trace_cmd.h - what `sonde trace`, `sonde record` and the function
 * tracers' commands (`sonde ftrace`, `sonde graph`: cmd_ftrace.c) share.
 */
#ifndef SONDE_TRACE_CMD_H
#define SONDE_TRACE_CMD_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#include "session.h"
#include "trace/event.h"
#include "trace/ringbuf.h"

#define TRACE_MAX_EVENTS 128

struct trace_event {
	const char *def;    /* as given to -e */
	const char *filter; /* --filter after it */
	char system[SD_EVENT_NAME_MAX];
	char name[SD_EVENT_NAME_MAX];
	int placed; /* processes it was defined in (several -p: a PATH some do not map) */
};

#define FTRACE_MAX_GLOBS 64
/* the function tracers' buffer_size_kb unless -b says otherwise */
#define FTRACE_DEFAULT_BUFFER_KB "8192"

/* the function tracers: what is written to the tracefs files of the same names */
struct ftrace_opts {
	const char *tracer; /* current_tracer: "function", "function_graph"; NULL: none */
	const char *filter[FTRACE_MAX_GLOBS]; /* set_ftrace_filter */
	int nfilter;
	const char *notrace[FTRACE_MAX_GLOBS]; /* set_ftrace_notrace */
	int nnotrace;
	const char *graph_fn[FTRACE_MAX_GLOBS]; /* set_graph_function */
	int ngraph_fn;
	const char *graph_notrace[FTRACE_MAX_GLOBS]; /* set_graph_notrace */
	int ngraph_notrace;
	const char *tids[FTRACE_MAX_GLOBS]; /* set_ftrace_pid */
	int ntids;
	const char *max_depth; /* max_graph_depth */
	const char *thresh;    /* tracing_thresh, µs */
	unsigned int gflags;   /* funcgraph-* (graph_render.h GR_*): rendering only */
	bool init;	       /* options/init-trace: start-up tracing */
	bool no_header;
};

/* option codes beyond the letters */
enum trace_optcode {
	OPT_DISCARD = 256,
	OPT_GRAPH_NOTRACE,
	OPT_TID,
	OPT_FG_PROC,
	OPT_FG_ABSTIME,
	OPT_FG_TAIL,
	OPT_INIT,
	OPT_FUNCTION,
	OPT_GRAPH,
	OPT_NO_HEADER,
	OPT_FOLLOW,
};

#define TRACE_MAX_PIDS 64

struct trace_opts {
	struct trace_event events[TRACE_MAX_EVENTS];
	int nevents;
	const char *buffer_kb;
	const char *clock;
	const char *output;
	bool output_given;
	bool discard;
	pid_t pid;			 /* the first -p */
	pid_t more_pids[TRACE_MAX_PIDS]; /* the other -p, traced beside it */
	int nmore;
	struct session *more; /* their sessions, once trace_setup reached them */
	bool follow;	      /* children and executed programs too */
	char **argv;
	struct ftrace_opts ft;
};

/* 0, 1 after --help, or a negative errno (already explained) */
int trace_parse_args(int argc, char **argv, struct trace_opts *o, const char *cmd);
/* launch or reach the program, define and enable the events, map the ring */
int trace_setup(struct session *s, struct trace_opts *o);

typedef void (*record_fn)(void *arg, struct session *s, const struct sd_rb_event *ev);
/*
 * let the program run; hand every record to @rec until it ends or Ctrl-C;
 * @idle (may be NULL) runs whenever the buffer is empty for now
 */
int trace_loop(struct session *s, struct trace_opts *o, record_fn rec, void (*idle)(void *arg),
	       void *arg);
/* the exit status the command returns */
int trace_exit_status(struct session *s);

/* write @text to tracefs file @path; a refusal is explained (@what: what the user gave) */
int write_or_explain(struct session *s, const char *path, const char *text, bool truncate,
		     const char *what);

/* ---- cmd_ftrace.c ------------------------------------------------------------------------ */

/* option @c (a letter or an OPT_*) of the function tracers: 0, 1 not one of them, -errno */
int ftrace_parse_opt(struct trace_opts *o, int c, const char *arg, const char *cmd);
/* the function tracers' options, for the --help of @cmd */
void ftrace_usage(FILE *f, const char *cmd);
/* the tracefs writes for @f, current_tracer last (0 or a negative errno, explained) */
int ftrace_setup(struct session *s, const struct ftrace_opts *f);

/* what the engine says was traced how (its ftrace_sites file), kept while the program runs */
struct ftrace_sites {
	char *text;
	long long at_ms;
	bool missing; /* the file is not there (an engine without it) */
};

/* read ftrace_sites again if @force or a second has passed */
void ftrace_sites_poll(struct ftrace_sites *fs, struct session *s, bool force);
/* print the last text read to @f, then free it */
void ftrace_sites_done(struct ftrace_sites *fs, FILE *f);

#endif
