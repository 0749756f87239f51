// SPDX-License-Identifier: MIT
/*
 * tracefs_ftrace.c - the function tracers' files of the virtual tracefs:
 * current_tracer, available_tracers, set_ftrace_filter/notrace,
 * set_graph_function/notrace, set_ftrace_pid, max_graph_depth,
 * tracing_thresh, options/funcgraph-*, and sonde's own ftrace_sites (how
 * each object's functions are hooked, and which are not, with why).
 *
 * Called from tracefs.c with the trace lock held.
 */
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "control/tracefs_ftrace.h"
#include "ftrace/ftrace.h"

struct list_file {
	const char *path;
	size_t off_list, off_n;
	const char *empty; /* what reading an empty list shows */
};

#define LIST(p, l, n, e)                                                   \
	{                                                                  \
		.path = p, .off_list = offsetof(struct sd_ftrace_opts, l), \
		.off_n = offsetof(struct sd_ftrace_opts, n), .empty = e    \
	}

static const struct list_file lists[] = {
    LIST("set_ftrace_filter", filter, nfilter, "#### all functions enabled ####\n"),
    LIST("set_ftrace_notrace", notrace, nnotrace, ""),
    LIST("set_graph_function", graph_fn, ngraph_fn, "#### all functions enabled ####\n"),
    LIST("set_graph_notrace", graph_notrace, ngraph_notrace, "#### no functions disabled ####\n"),
};

/*
 * the kernel's funcgraph-* options, and which are on by default; bit i of
 * graph_flags is option i (the order of the command's gr_flag)
 */
static const struct {
	const char *name;
	bool on;
} graph_options[] = {
    {"funcgraph-cpu", true},	  {"funcgraph-overhead", true}, {"funcgraph-duration", true},
    {"funcgraph-proc", false},	  {"funcgraph-abstime", false}, {"funcgraph-tail", false},
    {"funcgraph-overrun", false},
};

#define NGRAPH_OPTIONS (sizeof(graph_options) / sizeof(graph_options[0]))

static char *text_of(const char *data, size_t len)
{
	char *t = malloc(len + 1);

	if (t) {
		memcpy(t, data, len);
		t[len] = '\0';
	}
	return t;
}

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

static int number_of(const char *data, size_t len, unsigned long *v)
{
	char *t = text_of(data, len), *s, *end;
	int err = 0;

	if (!t)
		return -ENOMEM;
	s = trim(t);
	errno = 0;
	*v = strtoul(s, &end, 10);
	if (errno || end == s || *end || *s == '-')
		err = -EINVAL;
	free(t);
	return err;
}

static const struct list_file *list_file(const char *path)
{
	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
		if (!strcmp(lists[i].path, path))
			return &lists[i];
	return NULL;
}

static int graph_option(const char *path)
{
	if (strncmp(path, "options/", 8))
		return -1;
	for (size_t i = 0; i < NGRAPH_OPTIONS; i++)
		if (!strcmp(path + 8, graph_options[i].name))
			return (int)i;
	return -1;
}

static unsigned int graph_flags(void)
{
	static bool init;
	struct sd_ftrace_opts *o = sd_ftrace_opts();

	if (!init) {
		for (size_t i = 0; i < NGRAPH_OPTIONS; i++)
			if (graph_options[i].on)
				o->graph_flags |= 1u << i;
		init = true;
	}
	return o->graph_flags;
}

const char *const sd_tracefs_ftrace_files[] = {
    "current_tracer",
    "available_tracers",
    "set_ftrace_filter",
    "set_ftrace_notrace",
    "set_graph_function",
    "set_graph_notrace",
    "set_ftrace_pid",
    "max_graph_depth",
    "tracing_thresh",
    "ftrace_sites",
    NULL,
};

void sd_tracefs_ftrace_options(FILE *out)
{
	for (size_t i = 0; i < NGRAPH_OPTIONS; i++)
		fprintf(out, "%s\n", graph_options[i].name);
	fputs("init-trace\n", out);
}

void sd_tracefs_ftrace_trace_options(FILE *out)
{
	unsigned int f = graph_flags();

	for (size_t i = 0; i < NGRAPH_OPTIONS; i++)
		fprintf(out, "%s%s\n", f & (1u << i) ? "" : "no", graph_options[i].name);
}

int sd_tracefs_ftrace_read(const char *path, FILE *out)
{
	struct sd_ftrace_opts *o = sd_ftrace_opts();
	const struct list_file *lf = list_file(path);
	int opt = graph_option(path);

	if (lf) {
		char **list = *(char ***)((char *)o + lf->off_list);
		int n = *(int *)((char *)o + lf->off_n);
		bool positive = false;

		for (int i = 0; i < n; i++)
			positive |= list[i][0] != '!';
		if (!positive)
			fputs(lf->empty, out);
		else
			sd_ftrace_list_print(list, n, out);
		return 0;
	}
	if (opt >= 0) {
		fprintf(out, "%d\n", !!(graph_flags() & (1u << opt)));
		return 0;
	}
	if (!strcmp(path, "options/init-trace")) {
		fprintf(out, "%d\n", sd_initcall_on());
		return 0;
	}
	if (!strcmp(path, "current_tracer")) {
		fprintf(out, "%s\n", sd_ftrace_tracer_name(sd_ftrace_tracer()));
		return 0;
	}
	if (!strcmp(path, "available_tracers")) {
		fputs("function_graph function nop\n", out);
		return 0;
	}
	if (!strcmp(path, "set_ftrace_pid")) {
		if (!o->npids)
			fputs("no pid\n", out);
		for (int i = 0; i < o->npids; i++)
			fprintf(out, "%d\n", o->pids[i]);
		return 0;
	}
	if (!strcmp(path, "max_graph_depth")) {
		fprintf(out, "%d\n", o->max_depth);
		return 0;
	}
	if (!strcmp(path, "tracing_thresh")) {
		fprintf(out, "%llu\n", (unsigned long long)(o->thresh_ns / 1000));
		return 0;
	}
	if (!strcmp(path, "ftrace_sites")) {
		sd_ftrace_report(out);
		return 0;
	}
	return -ENOENT;
}

static int write_list(const struct list_file *lf, const char *data, size_t len, bool truncate,
		      FILE *why)
{
	struct sd_ftrace_opts *o = sd_ftrace_opts();
	char **list = *(char ***)((char *)o + lf->off_list);
	int n = *(int *)((char *)o + lf->off_n);
	char *text = text_of(data, len), *tok, *save = NULL, *copy;
	int err;

	if (!text)
		return -ENOMEM;
	/*
	 * the kernel refuses a glob that selects nothing, and changes nothing
	 * then; but takes :mod:OBJECT for an object not loaded yet (the
	 * tracers hook it when it is: sd_ftrace_refresh)
	 */
	copy = strdup(text);
	for (tok = copy ? strtok_r(copy, " \t\n", &save) : NULL; tok;
	     tok = strtok_r(NULL, " \t\n", &save))
		if (!sd_ftrace_glob_matches(tok) && !strstr(tok, ":mod:")) {
			if (why)
				fprintf(why, "%s: '%s' matches no function\n", lf->path, tok);
			free(copy);
			free(text);
			return -EINVAL;
		}
	free(copy);
	err = sd_ftrace_list_write(&list, &n, text, truncate);
	*(char ***)((char *)o + lf->off_list) = list;
	*(int *)((char *)o + lf->off_n) = n;
	free(text);
	return err ? err : sd_ftrace_apply();
}

static int write_pids(const char *data, size_t len, bool truncate, FILE *why)
{
	struct sd_ftrace_opts *o = sd_ftrace_opts();
	char *text = text_of(data, len), *tok, *save = NULL, *end;
	int err = 0;

	if (!text)
		return -ENOMEM;
	if (truncate)
		o->npids = 0;
	for (tok = strtok_r(text, " \t\n", &save); tok && !err;
	     tok = strtok_r(NULL, " \t\n", &save)) {
		long v = strtol(tok, &end, 10);
		int *bigger;

		if (*end || v <= 0 || v > 0x7fffffff) {
			if (why)
				fprintf(why, "set_ftrace_pid: '%s' is not a thread id\n", tok);
			err = -EINVAL;
			break;
		}
		bigger = realloc(o->pids, (o->npids + 1) * sizeof(int));
		if (!bigger) {
			err = -ENOMEM;
			break;
		}
		o->pids = bigger;
		o->pids[o->npids++] = (int)v;
	}
	free(text);
	return err ? err : sd_ftrace_apply();
}

int sd_tracefs_ftrace_write(const char *path, const char *data, size_t len, bool truncate,
			    FILE *why)
{
	struct sd_ftrace_opts *o = sd_ftrace_opts();
	const struct list_file *lf = list_file(path);
	int opt = graph_option(path);
	unsigned long v;
	int err;

	if (lf)
		return write_list(lf, data, len, truncate, why);
	if (opt >= 0) {
		err = number_of(data, len, &v);
		if (err || v > 1)
			return -EINVAL;
		graph_flags();
		if (v)
			o->graph_flags |= 1u << opt;
		else
			o->graph_flags &= ~(1u << opt);
		return 0;
	}
	if (!strcmp(path, "options/init-trace")) {
		err = number_of(data, len, &v);
		if (err || v > 1)
			return -EINVAL;
		return sd_initcall_set(v, why);
	}
	if (!strcmp(path, "current_tracer")) {
		char *text = text_of(data, len);
		const char *name;
		int t = -1;

		if (!text)
			return -ENOMEM;
		name = trim(text);
		for (int i = SD_TRACER_NOP; i <= SD_TRACER_GRAPH; i++)
			if (!strcmp(name, sd_ftrace_tracer_name(i)))
				t = i;
		if (t < 0 && why)
			fprintf(why,
				"current_tracer: no tracer '%s' (available: function_graph "
				"function nop)\n",
				name);
		free(text);
		return t < 0 ? -EINVAL : sd_ftrace_set_tracer(t);
	}
	if (!strcmp(path, "set_ftrace_pid"))
		return write_pids(data, len, truncate, why);
	if (!strcmp(path, "max_graph_depth")) {
		err = number_of(data, len, &v);
		if (err || v > 4096)
			return -EINVAL;
		o->max_depth = (int)v;
		return sd_ftrace_apply();
	}
	if (!strcmp(path, "tracing_thresh")) {
		err = number_of(data, len, &v);
		if (err || v > 1000000000UL)
			return -EINVAL;
		o->thresh_ns = (uint64_t)v * 1000;
		return sd_ftrace_apply();
	}
	if (!strcmp(path, "available_tracers") || !strcmp(path, "ftrace_sites"))
		return -EACCES;
	return -ENOENT;
}
