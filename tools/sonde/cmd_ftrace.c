// SPDX-License-Identifier: MIT
/*
 * cmd_ftrace.c - the function tracers from the command line:
 *
 *   sonde ftrace [opts] -- CMD    the `function` tracer: one line per call,
 *                                 "comm-tid [cpu] ..... ts: func <-parent"
 *   sonde graph [opts] -- CMD     `function_graph`: the call tree with
 *                                 durations, as the kernel prints it
 *
 * Both are `sonde trace` (trace_setup/trace_loop in cmd_trace.c) with the
 * tracefs writes the kernel's users make by hand: set_ftrace_filter and
 * friends, then current_tracer. `sonde record --function|--graph` takes
 * the same options (ftrace_parse_opt) and writes the records to a file.
 * What the engine says about which objects were traced how, and which
 * functions could not be and why (its ftrace_sites file), is printed to
 * stderr at the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "graph_render.h"
#include "session.h"
#include "trace/output.h"
#include "trace/symbolize.h"
#include "trace_cmd.h"

/* how long, live, an entry waits for its thread's next record (graph_render.h) */
#define GRAPH_PENDING_MS 200

static const char usage_which[] =
    "Which functions (the tracefs files of the same names). GLOB as the kernel's:\n"
    "'*' and '?', 'GLOB:mod:OBJECT' or ':mod:OBJECT' for one object's functions\n"
    "(one the program loads later, dlopen, too: it is hooked when it loads);\n"
    "each option may be repeated:\n"
    "  -F, --ftrace-filter GLOB    trace only these functions (set_ftrace_filter)\n"
    "  -N, --notrace GLOB          never these (set_ftrace_notrace)\n";

static const char usage_graph[] =
    "  -G, --graph-function FUNC   graph only FUNC and what it calls\n"
    "                              (set_graph_function)\n"
    "      --graph-notrace FUNC    leave out FUNC and what it calls (set_graph_notrace)\n"
    "  -D, --max-depth N           at most N levels of calls (max_graph_depth)\n"
    "  -T, --thresh USECS          only the calls that took longer than USECS µs\n"
    "                              (tracing_thresh: their returns only)\n";

static const char usage_both[] =
    "      --tid TID               only thread TID (set_ftrace_pid)\n"
    "      --init                  start-up tracing: the constructors of the program\n"
    "                              and its libraries (.preinit_array, .init_array,\n"
    "                              DT_INIT) before main() (options/init-trace)\n";

static const char usage_print[] =
    "How it is printed (the kernel's funcgraph-* options):\n"
    "      --funcgraph-proc        a TASK/PID column (comm-tid)\n"
    "      --funcgraph-abstime     a TIME column: when each line's record was taken\n"
    "      --funcgraph-tail        every '}' names its function in a comment\n"
    "      --no-header             no column headers\n";

static const char usage_also[] =
    "Also:\n"
    "  -e, --event DEF             an event to trace as well (as 'sonde trace -e')\n"
    "  -f, --filter EXPR           filter for the events of the -e before it\n"
    "  -b, --buffer-kb KB          each thread's ring buffer size (buffer_size_kb;\n"
    "                              8192 by default for the function tracers)\n"
    "      --discard               drop new records when a buffer is full (default:\n"
    "                              overwrite the oldest, counted as lost)\n"
    "      --clock NAME            trace_clock: local, global, mono, boot, x86-tsc…\n"
    "  -o, --output FILE           write the trace there instead of stdout\n"
    "  -p, --pid PID               a running process instead (sonde loads its agent\n"
    "                              into it, and leaves it as it was when done)\n"
    "  -h, --help                  this text\n\n"
    "Programs built with -fpatchable-function-entry or -pg [-mfentry -mnop-mcount\n"
    "-mrecord-mcount] are traced at their compiled-in sites; any other executable or\n"
    "library through probes at its functions' entries. What was traced how, and\n"
    "what could not be and why, is printed to stderr at the end.\n"
    "The command's exit status is the program's; Ctrl-C stops tracing, restores\n"
    "every patched byte and returns.\n";

void ftrace_usage(FILE *f, const char *cmd)
{
	bool graph = !strcmp(cmd, "graph");

	if (!strcmp(cmd, "record")) {
		/* after `sonde record`'s own text */
		fprintf(f, "\nWith --function or --graph:\n%s", usage_which);
		fputs(usage_graph, f);
		fputs(usage_both, f);
		fputs("'sonde report --graph' takes the funcgraph-* options of 'sonde graph'.\n",
		      f);
		return;
	}
	fprintf(f, "usage: sonde %s [options] -- COMMAND [ARG...]\n", cmd);
	fprintf(f, "       sonde %s [options] -p PID\n\n", cmd);
	if (graph)
		fputs(
		    "Trace every call and return of a program's functions with the function_graph\n"
		    "tracer; print the call tree with durations as the kernel does:\n"
		    "  CPU) DURATION | func() { ... }\n\n",
		    f);
	else
		fputs("Trace every call of a program's functions with the function tracer; print\n"
		      "one line per call as the kernel does:\n"
		      "  comm-tid [cpu] ..... timestamp: function <-caller\n\n",
		      f);
	fputs(usage_which, f);
	if (graph)
		fputs(usage_graph, f);
	fputs(usage_both, f);
	if (graph)
		fputs(usage_print, f);
	fputs(usage_also, f);
	fprintf(f, "'sonde record --%s' keeps the trace for 'sonde report' and 'sonde export'.\n",
		graph ? "graph" : "function");
}

static int add_glob(const char **v, int *n, const char *arg, const char *opt, const char *cmd)
{
	if (*n == FTRACE_MAX_GLOBS)
		return cli_fail(-E2BIG, "%s: at most %d %s", cmd, FTRACE_MAX_GLOBS, opt);
	if (!*arg)
		return cli_fail(-EINVAL, "%s: %s needs a function name or glob", cmd, opt);
	v[(*n)++] = arg;
	return 0;
}

/* a decimal number in [0, max] */
static int check_number(const char *arg, unsigned long max, const char *opt, const char *cmd)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(arg, &end, 10);
	if (errno || end == arg || *end || arg[0] == '-' || v > max)
		return cli_fail(-EINVAL, "%s: %s wants a number from 0 to %lu, not '%s'", cmd, opt,
				max, arg);
	return 0;
}

int ftrace_parse_opt(struct trace_opts *o, int c, const char *arg, const char *cmd)
{
	struct ftrace_opts *f = &o->ft;
	bool graph_cmd = !strcmp(cmd, "graph") || !strcmp(cmd, "record");
	bool ftrace_cmd = graph_cmd || !strcmp(cmd, "ftrace");
	bool graph_only = false;
	int err = 0;

	switch (c) {
	case 'F':
	case 'N':
	case OPT_TID:
	case OPT_INIT:
	case OPT_FUNCTION:
	case OPT_GRAPH:
	case OPT_NO_HEADER:
		break;
	case 'G':
	case OPT_GRAPH_NOTRACE:
	case 'D':
	case 'T':
	case OPT_FG_PROC:
	case OPT_FG_ABSTIME:
	case OPT_FG_TAIL:
		graph_only = true;
		break;
	default:
		return 1;
	}
	if (!ftrace_cmd)
		return cli_fail(-EINVAL,
				"%s: that option is one of the function tracers' ('sonde ftrace', "
				"'sonde graph', 'sonde record --function|--graph')",
				cmd);
	if (graph_only && !graph_cmd)
		return cli_fail(-EINVAL,
				"%s: that option is for the function_graph tracer ('sonde "
				"graph')",
				cmd);
	switch (c) {
	case 'F':
		return add_glob(f->filter, &f->nfilter, arg, "-F", cmd);
	case 'N':
		return add_glob(f->notrace, &f->nnotrace, arg, "-N", cmd);
	case 'G':
		return add_glob(f->graph_fn, &f->ngraph_fn, arg, "-G", cmd);
	case OPT_GRAPH_NOTRACE:
		return add_glob(f->graph_notrace, &f->ngraph_notrace, arg, "--graph-notrace", cmd);
	case OPT_TID:
		err = check_number(arg, 0x7fffffff, "--tid", cmd);
		if (!err && !strtoul(arg, NULL, 10))
			err = cli_fail(-EINVAL, "%s: --tid wants a thread id", cmd);
		return err ? err : add_glob(f->tids, &f->ntids, arg, "--tid", cmd);
	case 'D':
		err = check_number(arg, 0x7fffffff, "-D", cmd);
		f->max_depth = arg;
		return err;
	case 'T':
		err = check_number(arg, 0xffffffffUL, "-T", cmd);
		f->thresh = arg;
		return err;
	case OPT_FG_PROC:
		f->gflags |= GR_PROC;
		return 0;
	case OPT_FG_ABSTIME:
		f->gflags |= GR_ABSTIME;
		return 0;
	case OPT_FG_TAIL:
		f->gflags |= GR_TAIL;
		return 0;
	case OPT_INIT:
		f->init = true;
		return 0;
	case OPT_NO_HEADER:
		f->no_header = true;
		return 0;
	case OPT_FUNCTION:
	case OPT_GRAPH:
		if (strcmp(cmd, "record"))
			return cli_fail(
			    -EINVAL, "%s: --function and --graph are 'sonde record' options", cmd);
		f->tracer = c == OPT_GRAPH ? "function_graph" : "function";
		return 0;
	}
	return 1;
}

/* one tracefs list file: the first write replaces (`>`), the next append (`>>`) */
static int write_list(struct session *s, const char *file, const char *opt, const char *const *v,
		      int n)
{
	char what[512];

	for (int i = 0; i < n; i++) {
		int err;

		snprintf(what, sizeof(what), "%s '%s'", opt, v[i]);
		err = write_or_explain(s, file, v[i], i == 0, what);
		if (err)
			return err;
	}
	return 0;
}

/* a rendering option: the agent's `trace` file follows it if the engine has the file */
static void write_option(struct session *s, const char *file, bool on)
{
	char *why = NULL;

	if (on)
		session_write(s, file, "1", true, &why);
	free(why);
}

int ftrace_setup(struct session *s, const struct ftrace_opts *f)
{
	char *why = NULL;
	int err;

	if (!f->tracer)
		return 0;
	err = write_list(s, "set_ftrace_filter", "-F", f->filter, f->nfilter);
	if (!err)
		err = write_list(s, "set_ftrace_notrace", "-N", f->notrace, f->nnotrace);
	if (!err)
		err = write_list(s, "set_graph_function", "-G", f->graph_fn, f->ngraph_fn);
	if (!err)
		err = write_list(s, "set_graph_notrace", "--graph-notrace", f->graph_notrace,
				 f->ngraph_notrace);
	if (!err)
		err = write_list(s, "set_ftrace_pid", "--tid", f->tids, f->ntids);
	if (!err && f->max_depth)
		err = write_or_explain(s, "max_graph_depth", f->max_depth, true, "-D");
	if (!err && f->thresh)
		err = write_or_explain(s, "tracing_thresh", f->thresh, true, "-T");
	if (err)
		return err;
	write_option(s, "options/funcgraph-proc", f->gflags & GR_PROC);
	write_option(s, "options/funcgraph-abstime", f->gflags & GR_ABSTIME);
	write_option(s, "options/funcgraph-tail", f->gflags & GR_TAIL);
	if (f->init) {
		/* before the tracer: the constructors come first in the trace */
		err = session_write(s, "options/init-trace", "1", true, &why);
		if (err) {
			if (why)
				why[strcspn(why, "\n")] = '\0';
			cli_error("--init: %s", why && *why ? why : strerror(-err));
			free(why);
			return err;
		}
		free(why);
		why = NULL;
	}
	err = session_write(s, "current_tracer", f->tracer, true, &why);
	if (err == -EINVAL || err == -ENOENT)
		cli_error("current_tracer: this build has no '%s' tracer%s%s", f->tracer,
			  why && *why ? ": " : "", why ? why : "");
	else if (err)
		cli_error("current_tracer: %s%s%s", strerror(-err), why && *why ? ": " : "",
			  why ? why : "");
	free(why);
	return err;
}

/* ---- what the engine traced -------------------------------------------------------------- */

static long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void ftrace_sites_poll(struct ftrace_sites *fs, struct session *s, bool force)
{
	long long now = mono_ms();
	char *text = NULL;
	int err;

	if (fs->missing || s->ctl < 0 || (!force && now - fs->at_ms < 1000))
		return;
	fs->at_ms = now;
	err = session_read(s, "ftrace_sites", &text);
	if (err == -ENOENT) {
		fs->missing = true; /* TODO(engine): the file comes with src/ftrace */
	} else if (!err && text && *text) {
		/* keep the last word of a live engine: after the program ends there is none */
		free(fs->text);
		fs->text = text;
		text = NULL;
	}
	free(text);
}

void ftrace_sites_done(struct ftrace_sites *fs, FILE *f)
{
	if (fs->text) {
		size_t len = strlen(fs->text);

		fputs("sonde: what the function tracer hooked, and what it could not:\n", f);
		fputs(fs->text, f);
		if (len && fs->text[len - 1] != '\n')
			fputc('\n', f);
	}
	free(fs->text);
	fs->text = NULL;
}

/* ---- the commands ------------------------------------------------------------------------ */

#define OUT_BUF (256 * 1024)

struct ftrace_state {
	struct session *s;
	struct sd_render r;
	struct ftr_ids ids;
	struct ftr_names *names;
	struct graph_render *gr; /* function_graph */
	struct ftrace_sites sites;
	int fd;
	bool write_failed;
	size_t len;
	char line[16384];
	char buf[OUT_BUF];
};

/*
 * Lines go out whole, many in one write(): the traced program may share the
 * terminal or pipe, and a line of its own must not land inside one of ours.
 */
static void flush_out(struct ftrace_state *st)
{
	cli_write_out(st->fd, st->buf, st->len, &st->write_failed);
	st->len = 0;
}

static void put_out(void *arg, const char *text, size_t len)
{
	struct ftrace_state *st = arg;

	while (len) {
		size_t n = len < OUT_BUF - st->len ? len : OUT_BUF - st->len;

		memcpy(st->buf + st->len, text, n);
		st->len += n;
		text += n;
		len -= n;
		if (st->len == OUT_BUF)
			flush_out(st);
	}
}

/* sonde ftrace: the function tracer's lines, and any other event as `sonde trace` prints it */
static void function_record(void *arg, struct session *s, const struct sd_rb_event *ev)
{
	struct ftrace_state *st = arg;
	struct ftr_rec fr;
	struct sd_seq seq;

	sd_seq_init(&seq, st->line, sizeof(st->line));
	if (ev->lost)
		sd_render_lost(&seq, ev->cpu, ev->lost);
	switch (ftr_decode(&st->ids, &st->r, ev, &fr)) {
	case FTR_FUNCTION:
		ftr_render_function(&seq, &st->r, st->names, ev, &fr);
		break;
	case FTR_ENTRY:
	case FTR_EXIT:
	case FTR_LEAF:
		ftr_render_graph_event(&seq, &st->r, st->names, ev, &fr);
		break;
	default:
		sd_render_record(&seq, &st->r, ev);
	}
	put_out(st, seq.buf, seq.len);
}

static void graph_record(void *arg, struct session *s, const struct sd_rb_event *ev)
{
	struct ftrace_state *st = arg;

	gr_feed(st->gr, ev);
}

static void on_idle(void *arg)
{
	struct ftrace_state *st = arg;

	if (st->gr)
		gr_idle(st->gr);
	flush_out(st);
	ftrace_sites_poll(&st->sites, st->s, false);
}

static int run(int argc, char **argv, const char *cmd)
{
	struct trace_opts o;
	struct ftrace_state *st;
	struct session s;
	bool graph = !strcmp(cmd, "graph");
	int err;

	err = trace_parse_args(argc, argv, &o, cmd);
	if (err)
		return err > 0 ? 0 : 2;
	st = calloc(1, sizeof(*st));
	if (!st)
		return cli_error("%s: out of memory", cmd);
	st->fd = STDOUT_FILENO;
	if (o.output_given) {
		st->fd = open(o.output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (st->fd < 0) {
			cli_error("%s: %s: %s", cmd, o.output, strerror(errno));
			free(st);
			return 2;
		}
	}
	err = trace_setup(&s, &o);
	if (err) {
		if (s.launched && !s.exited) {
			kill(s.pid, SIGKILL);
			session_wait_exit(&s, 2000);
		}
		session_close(&s);
		if (st->fd != STDOUT_FILENO) {
			close(st->fd);
			unlink(o.output); /* nothing was traced */
		}
		free(st);
		return 2;
	}
	st->s = &s;
	st->r.pctx.sym = sd_symbolize;
	st->r.pctx.sym_arg = s.sym;
	st->r.clock = &s.clock_params;
	st->r.clock_id = s.clock;
	st->r.event = session_event;
	st->r.event_arg = &s;
	st->names = ftr_names_new(&st->r.pctx);
	if (graph) {
		struct gr_opts go = {.flags = GR_DEFAULT | o.ft.gflags,
				     .ncpus = (int)sysconf(_SC_NPROCESSORS_CONF),
				     .pending_ms = GRAPH_PENDING_MS};

		err = gr_new(&go, &st->r, put_out, st, &st->gr);
		if (!err && !o.ft.no_header) {
			struct sd_seq seq;

			sd_seq_init(&seq, st->line, sizeof(st->line));
			gr_header(&seq, go.flags);
			put_out(st, seq.buf, seq.len);
		}
	}
	if (err || !st->names) {
		cli_error("%s: out of memory", cmd);
		if (s.launched && !s.exited)
			kill(s.pid, SIGKILL);
	} else {
		ftrace_sites_poll(&st->sites, &s, true);
		trace_loop(&s, &o, graph ? graph_record : function_record, on_idle, st);
		if (st->gr)
			gr_finish(st->gr);
	}
	flush_out(st);
	if (st->fd != STDOUT_FILENO)
		close(st->fd);
	err = trace_exit_status(&s);
	ftrace_sites_done(&st->sites, stderr);
	gr_free(st->gr);
	ftr_names_free(st->names);
	ftr_ids_free(&st->ids);
	free(st);
	session_close(&s);
	return err;
}

int cmd_ftrace(int argc, char **argv)
{
	return run(argc, argv, "ftrace");
}

int cmd_graph(int argc, char **argv)
{
	return run(argc, argv, "graph");
}
