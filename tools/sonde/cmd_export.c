// SPDX-License-Identifier: MIT
/*
 * cmd_export.c - sonde export: a function_graph recording (sonde record
 * --graph) in the formats other tools read:
 *
 *   --format chrome   Chrome trace-event JSON: chrome://tracing, ui.perfetto.dev,
 *                     speedscope; one complete ("X") event per call
 *   --format folded   flame-graph stacks (flamegraph.pl, inferno, speedscope):
 *                     "main;foo;bar 1234", the stack's self time
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "calltree.h"
#include "cli.h"
#include "graph_export.h"
#include "graph_render.h"
#include "recording.h"

enum { FMT_NONE = 0, FMT_CHROME, FMT_FOLDED };

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: sonde export --format chrome|folded [options] [FILE]\n\n"
	    "Turn a recording of the function_graph tracer ('sonde record --graph', default\n"
	    "sonde.dat) into:\n\n"
	    "  chrome   Chrome trace-event JSON, for chrome://tracing, ui.perfetto.dev or\n"
	    "           speedscope: one complete event (\"ph\":\"X\") per call, named after the\n"
	    "           function, with pid, tid, ts and dur in microseconds; calls still\n"
	    "           running when the trace ended last to their thread's last record\n"
	    "           and carry \"returned\": false\n"
	    "  folded   flame-graph stacks for flamegraph.pl, inferno or speedscope, one per\n"
	    "           line: 'main;foo;bar 1234', the callers from the outermost, then the\n"
	    "           SELF TIME spent in that stack (time, not sample counts), in\n"
	    "           microseconds rounded up (--unit ns: nanoseconds)\n\n"
	    "  -f, --format FMT     chrome or folded\n"
	    "  -o, --output FILE    where to write (default: stdout)\n"
	    "      --unit us|ns     folded: the unit of the values (default us)\n"
	    "      --per-thread     folded: each stack starts with its thread, 'comm-tid'\n"
	    "  -h, --help           this text\n");
}

struct export_state {
	int format;
	struct ftr_names *names;
	struct gx_chrome chrome;
	struct gx_folded folded;
	int err;
};

static void export_call(void *arg, const struct ct_call *c)
{
	struct export_state *es = arg;

	if (es->format == FMT_CHROME)
		gx_chrome_call(&es->chrome, ftr_name(es->names, c->func), c);
	else if (gx_folded_add(&es->folded, es->names, c))
		es->err = -ENOMEM;
}

int cmd_export(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"format", required_argument, NULL, 'f'}, {"output", required_argument, NULL, 'o'},
	    {"unit", required_argument, NULL, 'u'},   {"per-thread", no_argument, NULL, 'T'},
	    {"help", no_argument, NULL, 'h'},	      {0},
	};
	struct export_state es = {0};
	struct ct_ops ops = {.call = export_call};
	const char *output = NULL, *path, *slash;
	struct calltree *ct = NULL;
	struct recording rc;
	struct sd_rb_event ev;
	bool ns = false, per_thread = false;
	FILE *out = stdout;
	int c, err;

	optind = 1;
	while ((c = getopt_long(argc, argv, "f:o:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			if (!strcmp(optarg, "chrome") || !strcmp(optarg, "perfetto") ||
			    !strcmp(optarg, "json"))
				es.format = FMT_CHROME;
			else if (!strcmp(optarg, "folded") || !strcmp(optarg, "flamegraph"))
				es.format = FMT_FOLDED;
			else
				return cli_error("export: formats are chrome and folded, not '%s'",
						 optarg) +
				       1;
			break;
		case 'o':
			output = optarg;
			break;
		case 'u':
			if (strcmp(optarg, "us") && strcmp(optarg, "ns"))
				return cli_error("export: --unit is us or ns, not '%s'", optarg) +
				       1;
			ns = !strcmp(optarg, "ns");
			break;
		case 'T':
			per_thread = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!es.format) {
		usage(stderr);
		return cli_error("export: which --format? chrome or folded") + 1;
	}
	if (optind < argc - 1)
		return cli_error("export: one recording at a time") + 1;
	path = optind < argc ? argv[optind] : "sonde.dat";
	err = rec_open(&rc, path, "export");
	if (err)
		return err;
	if (strcmp(rc.tracer, "function_graph")) {
		cli_error("export: %s is a recording of %s, not of the function_graph tracer "
			  "(sonde record --graph)",
			  path, !strcmp(rc.tracer, "nop") ? "events" : rc.tracer);
		rec_close(&rc);
		return 2;
	}
	if (output) {
		out = fopen(output, "we");
		if (!out) {
			cli_error("export: %s: %s", output, strerror(errno));
			rec_close(&rc);
			return 2;
		}
	}
	es.names = ftr_names_new(&rc.r.pctx);
	if (!es.names || ct_new(&rc.r, &ops, &es, &ct)) {
		cli_error("export: out of memory");
		err = 1;
		goto out;
	}
	if (es.format == FMT_CHROME) {
		slash = strrchr(rc.cmd, '/');
		gx_chrome_begin(&es.chrome, out, rc.s.pid, slash ? slash + 1 : rc.cmd);
	} else {
		gx_folded_init(&es.folded, per_thread);
	}
	while (rec_next(&rc, &ev) > 0)
		ct_feed(ct, &ev);
	ct_finish(ct);
	if (es.format == FMT_CHROME) {
		gx_chrome_end(&es.chrome);
	} else {
		gx_folded_print(&es.folded, out, ns);
		gx_folded_free(&es.folded);
	}
	if (!ct_records(ct))
		cli_error("export: %s holds no function_graph records", path);
	if (rc.damaged)
		cli_error("export: %s ends in a damaged chunk (a recording cut short?); "
			  "exported what came before",
			  path);
	if (es.err) {
		cli_error("export: out of memory: the output is incomplete");
		err = 1;
	}
out:
	if (out != stdout && fclose(out)) {
		cli_error("export: writing %s failed", output);
		err = 1;
	} else if (out == stdout && fflush(stdout)) {
		err = 1;
	}
	ct_free(ct);
	ftr_names_free(es.names);
	rec_close(&rc);
	return err;
}
