// SPDX-License-Identifier: MIT
/*
 * cmd_report.c - sonde report FILE: a recorded trace as the kernel's
 * `trace` file shows it; for a recording of the function_graph tracer,
 * per-function statistics as `uftrace report` prints them (or, with
 * --graph, the call graph as `sonde graph` prints it). Symbols come from
 * the object files named in the recording, read now (recording.c).
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "calltree.h"
#include "cli.h"
#include "graph_export.h"
#include "graph_render.h"
#include "recording.h"
#include "trace/output.h"
#include "trace_cmd.h"

enum report_mode {
	MODE_AUTO = 0,
	MODE_LIST,  /* the records, one line each */
	MODE_STATS, /* per-function statistics */
	MODE_GRAPH, /* the function_graph text */
};

struct report_opts {
	int mode;
	bool header;
	int sort;
	int columns;
	unsigned int gflags;
	const char *path;
};

static void usage(FILE *f)
{
	fprintf(
	    f, "usage: sonde report [options] [FILE]\n\n"
	       "Print a trace recorded by 'sonde record' (default sonde.dat).\n\n"
	       "Events, or the function tracer's calls (record --function): the records as the\n"
	       "kernel's trace file shows them.\n"
	       "The function_graph tracer's calls (record --graph): the time spent in each\n"
	       "function, as 'uftrace report' shows it: Total time (from call to return; a\n"
	       "recursive function counts its outermost calls), Self time (less the time in\n"
	       "the functions it called), Calls. Calls still running when the trace ended\n"
	       "count up to the thread's last record.\n\n"
	       "  -s, --sort KEY         total (default), self, calls or func\n"
	       "      --avg-total        the average, shortest and longest time of a call\n"
	       "      --avg-self         the same, of self time\n"
	       "      --graph            the call graph instead, as 'sonde graph' prints it, with\n"
	       "      --funcgraph-proc, --funcgraph-abstime, --funcgraph-tail (see 'sonde graph')\n"
	       "      --events           the records one per line instead\n"
	       "      --no-header        no header before the lines\n"
	       "  -h, --help             this text\n\n"
	       "'sonde export' turns a function_graph recording into Chrome/Perfetto JSON or\n"
	       "flame-graph stacks.\n");
}

static int parse(int argc, char **argv, struct report_opts *ro)
{
	enum { O_AVG_TOTAL = 300, O_AVG_SELF, O_GRAPH, O_EVENTS };
	static const struct option longopts[] = {
	    {"sort", required_argument, NULL, 's'},
	    {"avg-total", no_argument, NULL, O_AVG_TOTAL},
	    {"avg-self", no_argument, NULL, O_AVG_SELF},
	    {"graph", no_argument, NULL, O_GRAPH},
	    {"events", no_argument, NULL, O_EVENTS},
	    {"funcgraph-proc", no_argument, NULL, OPT_FG_PROC},
	    {"funcgraph-abstime", no_argument, NULL, OPT_FG_ABSTIME},
	    {"funcgraph-tail", no_argument, NULL, OPT_FG_TAIL},
	    {"no-header", no_argument, NULL, OPT_NO_HEADER},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	int c;

	memset(ro, 0, sizeof(*ro));
	ro->header = true;
	optind = 1;
	while ((c = getopt_long(argc, argv, "s:h", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			ro->sort = gx_sort_by_name(optarg);
			if (ro->sort < 0)
				return cli_fail(-EINVAL,
						"report: sort by total, self, calls or func, "
						"not '%s'",
						optarg);
			break;
		case O_AVG_TOTAL:
			ro->columns = GX_COLS_AVG_TOTAL;
			break;
		case O_AVG_SELF:
			ro->columns = GX_COLS_AVG_SELF;
			break;
		case O_GRAPH:
			ro->mode = MODE_GRAPH;
			break;
		case O_EVENTS:
			ro->mode = MODE_LIST;
			break;
		case OPT_FG_PROC:
			ro->gflags |= GR_PROC;
			break;
		case OPT_FG_ABSTIME:
			ro->gflags |= GR_ABSTIME;
			break;
		case OPT_FG_TAIL:
			ro->gflags |= GR_TAIL;
			break;
		case OPT_NO_HEADER:
			ro->header = false;
			break;
		case 'h':
			usage(stdout);
			return 1;
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc - 1)
		return cli_fail(-EINVAL, "report: one recording at a time");
	ro->path = optind < argc ? argv[optind] : "sonde.dat";
	return 0;
}

/* ---- the records, one line each ---------------------------------------------------------- */

static void list_header(const struct recording *rc)
{
	char line[4096];
	struct sd_seq seq;

	sd_seq_init(&seq, line, sizeof(line));
	sd_render_header(&seq, rc->tracer, 0, 0, (int)sysconf(_SC_NPROCESSORS_ONLN));
	/* the counts are unknown until the end: leave them out */
	printf("# tracer: %s\n#\n", rc->tracer);
	fputs(strstr(line, "#                                _"), stdout);
}

static void report_list(struct recording *rc, const struct report_opts *ro)
{
	struct ftr_names *names = ftr_names_new(&rc->r.pctx);
	struct ftr_ids ids = {0};
	struct sd_rb_event ev;
	char line[16384];

	if (ro->header)
		list_header(rc);
	while (rec_next(rc, &ev) > 0) {
		struct ftr_rec fr;
		struct sd_seq seq;

		sd_seq_init(&seq, line, sizeof(line));
		if (ev.lost)
			sd_render_lost(&seq, ev.cpu, ev.lost);
		switch (ftr_decode(&ids, &rc->r, &ev, &fr)) {
		case FTR_FUNCTION:
			ftr_render_function(&seq, &rc->r, names, &ev, &fr);
			break;
		case FTR_ENTRY:
		case FTR_EXIT:
		case FTR_LEAF:
			ftr_render_graph_event(&seq, &rc->r, names, &ev, &fr);
			break;
		default:
			sd_render_record(&seq, &rc->r, &ev);
		}
		fwrite(seq.buf, 1, seq.len, stdout);
	}
	ftr_ids_free(&ids);
	ftr_names_free(names);
}

/* ---- the call graph ---------------------------------------------------------------------- */

static void to_stdout(void *arg, const char *text, size_t len)
{
	fwrite(text, 1, len, stdout);
}

static int report_graph(struct recording *rc, const struct report_opts *ro)
{
	struct gr_opts go = {.flags = GR_DEFAULT | ro->gflags,
			     .ncpus = rc->ncpus ? rc->ncpus : (int)sysconf(_SC_NPROCESSORS_CONF)};
	struct graph_render *gr;
	struct sd_rb_event ev;

	if (gr_new(&go, &rc->r, to_stdout, NULL, &gr))
		return cli_error("report: out of memory");
	if (ro->header) {
		char line[1024];
		struct sd_seq seq;

		sd_seq_init(&seq, line, sizeof(line));
		gr_header(&seq, go.flags);
		fputs(seq.buf, stdout);
	}
	while (rec_next(rc, &ev) > 0)
		gr_feed(gr, &ev);
	gr_finish(gr);
	gr_free(gr);
	return 0;
}

/* ---- statistics -------------------------------------------------------------------------- */

struct stats_state {
	struct gx_stats st;
	struct ftr_names *names;
	int err;
};

static void stats_call(void *arg, const struct ct_call *c)
{
	struct stats_state *ss = arg;

	if (gx_stats_add(&ss->st, ftr_name(ss->names, c->func), c))
		ss->err = -ENOMEM;
}

static int report_stats(struct recording *rc, const struct report_opts *ro)
{
	struct stats_state ss = {0};
	struct ct_ops ops = {.call = stats_call};
	struct calltree *ct = NULL;
	struct sd_rb_event ev;

	gx_stats_init(&ss.st);
	ss.names = ftr_names_new(&rc->r.pctx);
	if (!ss.names || ct_new(&rc->r, &ops, &ss, &ct)) {
		ftr_names_free(ss.names);
		return cli_error("report: out of memory");
	}
	while (rec_next(rc, &ev) > 0)
		ct_feed(ct, &ev);
	ct_finish(ct);
	if (!ct_records(ct))
		cli_error("report: %s holds no function_graph records (was it recorded with "
			  "--graph?)",
			  rc->path);
	gx_stats_print(&ss.st, stdout, ro->sort, ro->columns);
	if (ss.err)
		cli_error("report: out of memory: the statistics are incomplete");
	ct_free(ct);
	gx_stats_free(&ss.st);
	ftr_names_free(ss.names);
	return 0;
}

int cmd_report(int argc, char **argv)
{
	struct report_opts ro;
	struct recording rc;
	int err;

	err = parse(argc, argv, &ro);
	if (err)
		return err > 0 ? 0 : 2;
	err = rec_open(&rc, ro.path, "report");
	if (err)
		return err;
	if (ro.mode == MODE_AUTO)
		ro.mode = !strcmp(rc.tracer, "function_graph") ? MODE_STATS : MODE_LIST;
	if (ro.mode == MODE_STATS)
		err = report_stats(&rc, &ro);
	else if (ro.mode == MODE_GRAPH)
		err = report_graph(&rc, &ro);
	else
		report_list(&rc, &ro);
	fflush(stdout);
	if (rc.damaged)
		cli_error("report: %s ends in a damaged chunk (a recording cut short?); "
			  "printed what came before",
			  ro.path);
	fprintf(stderr, "sonde: %lu events%s", rc.records, rc.lost ? "" : "\n");
	if (rc.lost)
		fprintf(stderr, ", %lu lost\n", rc.lost);
	rec_close(&rc);
	return err ? 1 : 0;
}
