// SPDX-License-Identifier: MIT
/*
 * tracefs.c - the files of the virtual tracefs: what reading each one
 * shows and what writing it does, after the kernel's tracefs.
 *
 * A table maps top-level names to handlers; events/ is walked by hand
 * (events/enable, events/<grp>/enable, events/<grp>/<ev>/{enable,filter,
 * format,id}). Every handler runs with the trace lock held.
 */
#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SD_LOG_PREFIX "tracefs"
#include "common/log.h"
#include "control/tracefs.h"
#include "control/tracefs_ftrace.h"
#include "ftrace/ftrace.h"
#include "sym/sym.h"
#include "trace/errlog.h"
#include "trace/filter.h"
#include "trace/output.h"
#include "trace/symbolize.h"
#include "trace/trace.h"
#include "trace/trace_probe.h"

#define LINE_MAX_TEXT 8192

/* ---- small helpers -------------------------------------------------------------------- */

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

/* a copy of @data as a NUL-terminated string */
static char *text_of(const char *data, size_t len)
{
	char *t = malloc(len + 1);

	if (t) {
		memcpy(t, data, len);
		t[len] = '\0';
	}
	return t;
}

static int parse_bool(const char *data, size_t len, bool *v)
{
	char buf[16];

	if (len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, data, len);
	buf[len] = '\0';
	if (!strcmp(trim(buf), "1"))
		*v = true;
	else if (!strcmp(trim(buf), "0"))
		*v = false;
	else
		return -EINVAL;
	return 0;
}

static struct sd_symbolizer *self_symbolizer(void)
{
	static struct sd_symbolizer *s;

	if (!s)
		sd_symbolizer_new(0, &s);
	return s;
}

static struct sd_event *event_of(void *arg, unsigned int id)
{
	return sd_trace_event_by_id(id);
}

static void render_setup(struct sd_render *r)
{
	struct sd_trace *t = sd_trace_get();

	r->pctx.sym = sd_symbolize;
	r->pctx.sym_arg = self_symbolizer();
	sd_symbolizer_sync(r->pctx.sym_arg);
	r->clock = &t->clock_params;
	r->clock_id = t->clock;
	r->event = event_of;
	r->event_arg = NULL;
}

/* ---- dynamic events files ------------------------------------------------------------- */

static int write_probe_events(int kind, const char *data, size_t len, bool truncate, FILE *why)
{
	char *text = text_of(data, len), *line, *save = NULL;
	int err = 0;

	if (!text)
		return -ENOMEM;
	if (truncate) {
		err = sd_probe_events_clear(kind);
		if (err) {
			if (why)
				fprintf(why, "%s\n", sonde_last_error());
			goto out;
		}
	}
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		struct sd_parse_error pe = {0};
		char *cmd = trim(line);
		char *hash = strchr(cmd, '#');

		if (hash)
			*hash = '\0';
		cmd = trim(cmd);
		if (!*cmd)
			continue;
		sd_error_clear();
		err = sd_probe_event_create(cmd, kind, &pe);
		if (err) {
			struct sd_seq s;
			char buf[LINE_MAX_TEXT];

			if (pe.msg) {
				sd_errlog_add(&pe, cmd);
				sd_seq_init(&s, buf, sizeof(buf));
				sd_parse_error_format(&s, &pe, cmd);
				if (why)
					fputs(buf, why);
			}
			if (why && sonde_last_error()[0])
				fprintf(why, "%s\n", sonde_last_error());
			break;
		}
	}
out:
	free(text);
	return err;
}

/* dynamic_events takes both kinds: a PATH:OFFSET location is a uprobe */
static int write_dynamic_events(const char *data, size_t len, bool truncate, FILE *why)
{
	char *text = text_of(data, len);
	char *sp, *colon;
	int kind = SD_PROBE_KPROBE;
	int err;

	if (!text)
		return -ENOMEM;
	if (truncate) {
		err = sd_probe_events_clear(SD_PROBE_KPROBE);
		if (!err)
			err = sd_probe_events_clear(SD_PROBE_UPROBE);
		if (err) {
			free(text);
			return err;
		}
	}
	sp = strchr(text, ' ');
	if (sp) {
		while (*sp == ' ')
			sp++;
		colon = strchr(sp, ':');
		if (*sp == '/' || (colon && colon[1] == '0' && colon[2] == 'x' && strchr(sp, '/')))
			kind = SD_PROBE_UPROBE;
	}
	free(text);
	return write_probe_events(kind, data, len, false, why);
}

/* ---- events/ ----------------------------------------------------------------------------- */

struct match {
	const char *system; /* NULL or "*": any */
	const char *name;   /* NULL or "*": any */
	int n, on, off;
};

/* (a tracer's own events are not enabled by name) */
static bool matches(const struct sd_event *ev, const struct match *m)
{
	return !ev->internal && (!m->system || !fnmatch(m->system, ev->system, 0)) &&
	       (!m->name || !fnmatch(m->name, ev->name, 0));
}

static int count_enabled(struct sd_event *ev, void *arg)
{
	struct match *m = arg;

	if (matches(ev, m)) {
		m->n++;
		if (ev->enabled)
			m->on++;
		else
			m->off++;
	}
	return 0;
}

static int set_matching(struct sd_event *ev, void *arg)
{
	struct match *m = arg;

	if (matches(ev, m)) {
		int err = sd_trace_enable_event(ev, m->on);

		if (err)
			return err;
		m->n++;
	}
	return 0;
}

/* 0, 1, X (mixed) or ? (no events) as an enable file reads */
static void print_enable(FILE *out, const char *system, const char *name)
{
	struct match m = {.system = system, .name = name};

	sd_trace_for_each_event(count_enabled, &m);
	fprintf(out, "%s\n", !m.n ? "?" : !m.on ? "0" : !m.off ? "1" : "X");
}

static int write_enable(const char *system, const char *name, const char *data, size_t len)
{
	struct match m = {.system = system, .name = name};
	bool on;
	int err = parse_bool(data, len, &on);

	if (err)
		return err;
	m.on = on;
	return sd_trace_for_each_event(set_matching, &m);
}

static int event_file_read(struct sd_event *ev, const char *file, FILE *out)
{
	char *buf;
	struct sd_seq s;

	if (ev->internal && strcmp(file, "id") && strcmp(file, "format"))
		return -ENOENT;
	if (!strcmp(file, "enable")) {
		fprintf(out, "%d\n", ev->enabled);
	} else if (!strcmp(file, "id")) {
		fprintf(out, "%u\n", ev->id);
	} else if (!strcmp(file, "filter")) {
		if (ev->filter_error)
			fputs(ev->filter_error, out);
		else
			fprintf(out, "%s\n", ev->filter_text ? ev->filter_text : "none");
	} else if (!strcmp(file, "format")) {
		buf = malloc(65536);
		if (!buf)
			return -ENOMEM;
		sd_seq_init(&s, buf, 65536);
		sd_event_format(&s, ev);
		fputs(buf, out);
		free(buf);
	} else {
		return -ENOENT;
	}
	return 0;
}

/* an enable that failed: what the probe engine said of it */
static void explain(int err, FILE *why)
{
	if (err && why && *sonde_last_error())
		fprintf(why, "%s\n", sonde_last_error());
}

static int event_file_write(struct sd_event *ev, const char *file, const char *data, size_t len,
			    FILE *why)
{
	bool on;
	int err;

	if (ev->internal && strcmp(file, "id") && strcmp(file, "format"))
		return -ENOENT;
	if (!strcmp(file, "enable")) {
		err = parse_bool(data, len, &on);
		if (err)
			return err;
		sd_error_clear();
		err = sd_trace_enable_event(ev, on);
		explain(err, why);
		return err;
	}
	if (!strcmp(file, "filter")) {
		struct sd_parse_error pe = {0};
		char *text = text_of(data, len), *t;

		if (!text)
			return -ENOMEM;
		t = trim(text);
		err = sd_trace_set_filter(ev, t, &pe);
		free(ev->filter_error);
		ev->filter_error = NULL;
		if (err && pe.msg) {
			char buf[LINE_MAX_TEXT];
			struct sd_seq s;

			sd_errlog_add(&pe, t);
			sd_seq_init(&s, buf, sizeof(buf));
			sd_filter_print_error(&s, t, &pe);
			if (why)
				fputs(buf, why);
			ev->filter_error = strdup(buf);
		}
		free(text);
		return err;
	}
	if (!strcmp(file, "id") || !strcmp(file, "format"))
		return -EACCES;
	return -ENOENT;
}

struct list_arg {
	FILE *out;
	const char *system; /* NULL: list systems */
	char seen[64][SD_EVENT_NAME_MAX];
	int nseen;
};

static int list_group(struct sd_event *ev, void *arg)
{
	struct list_arg *a = arg;

	if (a->system) {
		if (!strcmp(ev->system, a->system))
			fprintf(a->out, "%s/\n", ev->name);
		return 0;
	}
	for (int i = 0; i < a->nseen; i++)
		if (!strcmp(a->seen[i], ev->system))
			return 0;
	if (a->nseen < 64)
		snprintf(a->seen[a->nseen++], SD_EVENT_NAME_MAX, "%s", ev->system);
	fprintf(a->out, "%s/\n", ev->system);
	return 0;
}

/* events/…: split into system, name, file */
static int events_path(const char *rest, char *system, char *name, char *file)
{
	int n = sscanf(rest, "%63[^/]/%63[^/]/%63[^/]", system, name, file);

	return n < 0 ? 0 : n;
}

static int count_system(struct sd_event *ev, void *arg)
{
	struct match *m = arg;

	m->n += !strcmp(ev->system, m->system);
	return 0;
}

static bool system_exists(const char *system)
{
	struct match m = {.system = system};

	sd_trace_for_each_event(count_system, &m);
	return m.n > 0;
}

static int events_read(const char *rest, FILE *out)
{
	char system[64] = "", name[64] = "", file[64] = "";
	int n = events_path(rest, system, name, file);
	struct sd_event *ev;

	if (n == 1 && !strcmp(system, "enable")) {
		print_enable(out, NULL, NULL);
		return 0;
	}
	if (n == 2 && !strcmp(name, "enable")) {
		if (!system_exists(system))
			return -ENOENT;
		print_enable(out, system, NULL);
		return 0;
	}
	if (n != 3)
		return -EISDIR;
	ev = sd_trace_find_event(system, name);
	return ev ? event_file_read(ev, file, out) : -ENOENT;
}

static int events_write(const char *rest, const char *data, size_t len, FILE *why)
{
	char system[64] = "", name[64] = "", file[64] = "";
	int n = events_path(rest, system, name, file);
	struct sd_event *ev;

	if (n == 1 && !strcmp(system, "enable"))
		return write_enable(NULL, NULL, data, len);
	if (n == 2 && !strcmp(name, "enable"))
		return system_exists(system) ? write_enable(system, NULL, data, len) : -ENOENT;
	if (n != 3)
		return -EISDIR;
	ev = sd_trace_find_event(system, name);
	return ev ? event_file_write(ev, file, data, len, why) : -ENOENT;
}

static int events_list(const char *rest, FILE *out)
{
	char system[64] = "", name[64] = "", file[64] = "";
	int n = rest && *rest ? events_path(rest, system, name, file) : 0;
	struct list_arg *arg = calloc(1, sizeof(*arg));

	if (!arg)
		return -ENOMEM;
	arg->out = out;
	if (n == 1)
		arg->system = system;
	if (n <= 1 && (n == 0 || system_exists(system))) {
		fputs("enable\n", out);
		sd_trace_for_each_event(list_group, arg);
		free(arg);
		return 0;
	}
	free(arg);
	if (n == 1)
		return -ENOENT;
	if (n == 2) {
		struct sd_event *ev = sd_trace_find_event(system, name);

		if (!ev)
			return -ENOENT;
		fputs(ev->internal ? "format\nid\n" : "enable\nfilter\nformat\nid\n", out);
		return 0;
	}
	return -ENOTDIR;
}

/* ---- top-level files --------------------------------------------------------------------- */

static int print_available(struct sd_event *ev, void *arg)
{
	if (!ev->internal)
		fprintf(arg, "%s:%s\n", ev->system, ev->name);
	return 0;
}

static int print_set_event(struct sd_event *ev, void *arg)
{
	if (ev->enabled && !ev->internal)
		fprintf(arg, "%s:%s\n", ev->system, ev->name);
	return 0;
}

static int write_set_event(const char *data, size_t len, bool truncate)
{
	char *text = text_of(data, len), *tok, *save = NULL;
	int err = 0;

	if (!text)
		return -ENOMEM;
	if (truncate) {
		struct match all = {.on = 0};

		sd_trace_for_each_event(set_matching, &all);
	}
	for (tok = strtok_r(text, " \t\n", &save); tok && !err;
	     tok = strtok_r(NULL, " \t\n", &save)) {
		struct match m = {.on = 1};
		char *colon;

		if (*tok == '!') {
			m.on = 0;
			tok++;
		}
		colon = strchr(tok, ':');
		if (colon) {
			*colon = '\0';
			m.system = *tok ? tok : NULL;
			m.name = colon[1] ? colon + 1 : NULL;
		} else {
			/* "name" alone means any system; "grp" alone is not accepted by the kernel
			 */
			m.name = tok;
		}
		if (m.system && !strcmp(m.system, "*"))
			m.system = NULL;
		if (m.name && !strcmp(m.name, "*"))
			m.name = NULL;
		err = sd_trace_for_each_event(set_matching, &m);
		if (!err && !m.n)
			err = -EINVAL; /* the kernel: no such event */
	}
	free(text);
	return err;
}

/*
 * set_event_pending (sonde's): SYSTEM:NAME globs for events that do not
 * exist yet; each event an object loaded later defines that matches one is
 * enabled as it appears. Events that exist already are enabled now.
 */
static int write_set_event_pending(const char *data, size_t len, bool truncate)
{
	char *text = text_of(data, len), *tok, *save = NULL;
	int err = 0;

	if (!text)
		return -ENOMEM;
	if (truncate)
		sd_trace_clear_pending();
	for (tok = strtok_r(text, " \t\n", &save); tok && !err;
	     tok = strtok_r(NULL, " \t\n", &save)) {
		struct match m = {.on = 1};
		char *colon = strchr(tok, ':');

		if (colon) {
			*colon = '\0';
			m.system = *tok && strcmp(tok, "*") ? tok : NULL;
			m.name = colon[1] && strcmp(colon + 1, "*") ? colon + 1 : NULL;
		} else {
			m.name = strcmp(tok, "*") ? tok : NULL;
		}
		err = sd_trace_add_pending(m.system, m.name);
		if (!err)
			err = sd_trace_for_each_event(set_matching, &m);
	}
	free(text);
	return err;
}

static int read_trace(FILE *out)
{
	struct sd_trace *t = sd_trace_get();
	struct sd_rb_reader *rd;
	struct sd_rb_stats st;
	struct sd_rb_event rec;
	struct sd_render r;
	char line[LINE_MAX_TEXT];
	struct sd_seq s;
	int err;

	sd_rb_stats(t->rb, &st);
	sd_seq_init(&s, line, sizeof(line));
	/* as the kernel: written counts what is in the buffer and what was overwritten */
	sd_render_header(&s, sd_ftrace_tracer_name(sd_ftrace_tracer()), st.entries,
			 st.entries + st.overrun, (int)sysconf(_SC_NPROCESSORS_ONLN));
	fputs(line, out);
	err = sd_rb_reader_open(t->rb, false, &rd);
	if (err)
		return err;
	render_setup(&r);
	while (sd_rb_read(rd, &rec) > 0) {
		sd_seq_init(&s, line, sizeof(line));
		sd_render_record(&s, &r, &rec);
		fputs(line, out);
	}
	sd_rb_reader_close(rd);
	return 0;
}

long sd_tracefs_pipe(FILE *out, size_t max)
{
	struct sd_trace *t = sd_trace_get();
	static struct sd_rb_reader *rd;
	static struct sd_rb_region *rd_region;
	struct sd_rb_event rec;
	struct sd_render r;
	char line[LINE_MAX_TEXT];
	struct sd_seq s;
	size_t done = 0;
	int err;

	if (!t)
		return -ENOMEM;
	if (rd && rd_region != t->rb) { /* the buffer was replaced */
		sd_rb_reader_close(rd);
		rd = NULL;
	}
	if (!rd) {
		err = sd_rb_reader_open(t->rb, true, &rd);
		if (err)
			return err;
		rd_region = t->rb;
	}
	render_setup(&r);
	while (done < max && sd_rb_read(rd, &rec) > 0) {
		sd_seq_init(&s, line, sizeof(line));
		if (rec.lost)
			sd_render_lost(&s, rec.cpu, rec.lost);
		sd_render_record(&s, &r, &rec);
		fputs(line, out);
		done += s.len;
	}
	/* let the sonde command consume when nobody reads trace_pipe here */
	if (!done) {
		sd_rb_reader_close(rd);
		rd = NULL;
	}
	return (long)done;
}

static void print_clock(FILE *out)
{
	struct sd_trace *t = sd_trace_get();

	for (int i = 0; i < SD_CLOCK_NR; i++)
		fprintf(out, i == t->clock ? "%s[%s]" : "%s%s", i ? " " : "", sd_clock_names[i]);
	fputc('\n', out);
}

static int print_functions(FILE *out)
{
	struct sd_maps *maps;

	if (sd_maps_read(0, &maps))
		return -EIO;
	for (size_t i = 0; i < sd_maps_count(maps); i++) {
		struct sd_module *m = sd_maps_at(maps, i);
		struct sd_symtab *st = sd_module_symtab(m);

		if (!st || !strncmp(m->name, "libsonde", 8))
			continue;
		for (size_t k = 0; k < sd_symtab_count(st); k++) {
			const struct sd_sym *s = sd_symtab_at(st, k);

			/* an IFUNC's implementation is traced under the IFUNC's name: once */
			if ((s->type != SD_SYM_FUNC && s->type != SD_SYM_IFUNC) || !s->size ||
			    s->resolved || !sd_symtab_vaddr_is_exec(st, s->value))
				continue;
			if (m->is_main)
				fprintf(out, "%s\n", s->name);
			else
				fprintf(out, "%s [%s]\n", s->name, m->name);
		}
	}
	sd_maps_free(maps);
	return 0;
}

static const char readme[] =
    "tracing mini-HOWTO (sonde: the kernel's tracefs for one process)\n\n"
    " Important files:\n"
    "  trace\t\t\t- The static contents of the buffer\n"
    "\t\t\t  To clear the buffer write into this file: echo > trace\n"
    "  trace_pipe\t\t- A consuming read to see the contents of the buffer\n"
    "  tracing_on\t\t- 0/1: stop or resume writing events\n"
    "  buffer_size_kb\t- view and modify the size of each thread's buffer\n"
    "  trace_clock\t\t- the clock events are stamped with\n"
    "  kprobe_events\t\t- p[:[GRP/][EVENT]] [MOD:]SYM[+OFFS]|ADDR [FETCHARGS]\n"
    "\t\t\t  r[MAXACTIVE][:[GRP/][EVENT]] [MOD:]SYM[+0] [FETCHARGS]\n"
    "\t\t\t  -:[GRP/]EVENT\n"
    "  uprobe_events\t\t- p|r[:[GRP/][EVENT]] PATH:OFFSET[(REF_CTR_OFFSET)] [FETCHARGS]\n"
    "  events/\t\t- enable, filter, format and id of each event\n"
    "  set_event\t\t- enable events by name: grp:event, grp:*, !grp:event\n"
    "  set_event_pending\t- (sonde) the same for events of objects loaded later\n"
    "  kprobe_profile\t- hits and misses of each probe event\n"
    "  error_log\t\t- what the last failed commands got wrong, and where\n"
    "  current_tracer\t- function, function_graph or nop\n"
    "  set_ftrace_filter\t- the functions the tracers hook: globs, glob:mod:OBJECT, !glob\n"
    "  set_ftrace_notrace\t- the functions they leave alone\n"
    "  set_graph_function\t- function_graph: only the calls under these\n"
    "  set_ftrace_pid\t- only these threads\n"
    "  max_graph_depth\t- function_graph: how deep (0: no limit)\n"
    "  tracing_thresh\t- function_graph: only calls that took this many µs or more\n"
    "  ftrace_sites\t\t- how each object's functions are hooked, and which cannot be\n";

static int top_read(const char *path, FILE *out)
{
	struct sd_trace *t = sd_trace_get();
	char buf[LINE_MAX_TEXT];
	struct sd_seq s;

	if (!t)
		return -ENOMEM;
	sd_seq_init(&s, buf, sizeof(buf));
	if (!strcmp(path, "kprobe_events") || !strcmp(path, "uprobe_events") ||
	    !strcmp(path, "dynamic_events")) {
		char *big = malloc(1 << 20);

		if (!big)
			return -ENOMEM;
		sd_seq_init(&s, big, 1 << 20);
		if (path[0] != 'u')
			sd_probe_events_print(&s, SD_PROBE_KPROBE);
		if (path[0] != 'k')
			sd_probe_events_print(&s, SD_PROBE_UPROBE);
		fputs(big, out);
		free(big);
		return 0;
	}
	if (!strcmp(path, "kprobe_profile") || !strcmp(path, "uprobe_profile")) {
		char *big = malloc(1 << 20);

		if (!big)
			return -ENOMEM;
		sd_seq_init(&s, big, 1 << 20);
		sd_probe_profile_print(&s, path[0] == 'k' ? SD_PROBE_KPROBE : SD_PROBE_UPROBE);
		fputs(big, out);
		free(big);
		return 0;
	}
	if (!strcmp(path, "available_events"))
		return sd_trace_for_each_event(print_available, out);
	if (!strcmp(path, "set_event"))
		return sd_trace_for_each_event(print_set_event, out);
	if (!strcmp(path, "set_event_pending")) {
		sd_trace_print_pending(out);
		return 0;
	}
	if (!strcmp(path, "tracing_on")) {
		fprintf(out, "%d\n", t->tracing_on);
		return 0;
	}
	if (!strcmp(path, "buffer_size_kb")) {
		fprintf(out, "%zu\n", t->buffer_kb);
		return 0;
	}
	if (!strcmp(path, "buffer_total_size_kb")) {
		struct sd_rb_stats st;

		sd_rb_stats(t->rb, &st);
		fprintf(out, "%zu\n", t->buffer_kb * (st.bufs ? st.bufs : 1));
		return 0;
	}
	if (!strcmp(path, "trace_clock")) {
		print_clock(out);
		return 0;
	}
	if (!strcmp(path, "error_log")) {
		char *big = malloc(65536);

		if (!big)
			return -ENOMEM;
		sd_seq_init(&s, big, 65536);
		sd_errlog_print(&s);
		fputs(big, out);
		free(big);
		return 0;
	}
	if (!strcmp(path, "trace"))
		return read_trace(out);
	if (!strcmp(path, "trace_pipe")) {
		long n = sd_tracefs_pipe(out, 1 << 20);

		return n < 0 ? (int)n : 0;
	}
	if (!strcmp(path, "trace_options")) {
		fprintf(out, "%soverwrite\n", t->overwrite ? "" : "no");
		sd_tracefs_ftrace_trace_options(out);
		return 0;
	}
	if (!strcmp(path, "options/overwrite")) {
		fprintf(out, "%d\n", t->overwrite);
		return 0;
	}
	if (!strcmp(path, "available_filter_functions"))
		return print_functions(out);
	if (!strcmp(path, "README")) {
		fputs(readme, out);
		return 0;
	}
	if (!strcmp(path, "events") || !strcmp(path, "options") || !strcmp(path, ""))
		return -EISDIR;
	return sd_tracefs_ftrace_read(path, out);
}

static const char *const top_files[] = {
    "README",
    "available_events",
    "available_filter_functions",
    "buffer_size_kb",
    "buffer_total_size_kb",
    "dynamic_events",
    "error_log",
    "events/",
    "kprobe_events",
    "kprobe_profile",
    "options/",
    "set_event",
    "set_event_pending",
    "trace",
    "trace_clock",
    "trace_options",
    "trace_pipe",
    "tracing_on",
    "uprobe_events",
    "uprobe_profile",
};

static bool known_file(const char *path)
{
	for (size_t i = 0; i < sizeof(top_files) / sizeof(top_files[0]); i++)
		if (!strcmp(top_files[i], path))
			return true;
	return !strcmp(path, "options/overwrite");
}

static int write_number(const char *data, size_t len, unsigned long *v)
{
	char buf[32], *end;

	if (len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, data, len);
	buf[len] = '\0';
	errno = 0;
	*v = strtoul(trim(buf), &end, 10);
	if (errno || end == trim(buf) || *end)
		return -EINVAL;
	return 0;
}

/* trace_options: funcgraph-proc, nofuncgraph-proc… */
static int write_graph_option(const char *name, FILE *why)
{
	char opt[128];
	bool no = !strncmp(name, "no", 2);
	int err;

	snprintf(opt, sizeof(opt), "options/%s", name + (no ? 2 : 0));
	err = sd_tracefs_ftrace_write(opt, no ? "0" : "1", 1, true, why);
	return err == -ENOENT ? -EINVAL : err;
}

static int top_write(const char *path, const char *data, size_t len, bool truncate, FILE *why)
{
	struct sd_trace *t = sd_trace_get();
	unsigned long v;
	bool on;
	int err;

	if (!t)
		return -ENOMEM;
	if (!strcmp(path, "kprobe_events"))
		return write_probe_events(SD_PROBE_KPROBE, data, len, truncate, why);
	if (!strcmp(path, "uprobe_events"))
		return write_probe_events(SD_PROBE_UPROBE, data, len, truncate, why);
	if (!strcmp(path, "dynamic_events"))
		return write_dynamic_events(data, len, truncate, why);
	if (!strcmp(path, "set_event")) {
		sd_error_clear();
		err = write_set_event(data, len, truncate);
		explain(err, why);
		return err;
	}
	if (!strcmp(path, "set_event_pending"))
		return write_set_event_pending(data, len, truncate);
	if (!strcmp(path, "tracing_on")) {
		err = parse_bool(data, len, &on);
		if (!err)
			__atomic_store_n(&t->tracing_on, on, __ATOMIC_RELEASE);
		return err;
	}
	if (!strcmp(path, "buffer_size_kb")) {
		err = write_number(data, len, &v);
		return err ? err : sd_trace_set_buffer_kb(v);
	}
	if (!strcmp(path, "trace")) {
		if (truncate)
			sd_rb_reset(t->rb);
		return 0;
	}
	if (!strcmp(path, "trace_clock")) {
		char *text = text_of(data, len);
		int id;

		if (!text)
			return -ENOMEM;
		id = sd_clock_by_name(trim(text));
		free(text);
		return id < 0 ? -EINVAL : sd_trace_set_clock(id);
	}
	if (!strcmp(path, "error_log")) {
		if (truncate)
			sd_errlog_clear();
		return 0;
	}
	if (!strcmp(path, "options/overwrite")) {
		err = parse_bool(data, len, &on);
		return err ? err : sd_trace_set_overwrite(on);
	}
	if (!strcmp(path, "trace_options")) {
		char *text = text_of(data, len);

		if (!text)
			return -ENOMEM;
		if (!strcmp(trim(text), "overwrite"))
			err = sd_trace_set_overwrite(true);
		else if (!strcmp(trim(text), "nooverwrite"))
			err = sd_trace_set_overwrite(false);
		else
			err = write_graph_option(trim(text), why);
		free(text);
		return err;
	}
	if (known_file(path))
		return -EACCES;
	return sd_tracefs_ftrace_write(path, data, len, truncate, why);
}

/* ---- entry points ---------------------------------------------------------------------------- */

static const char *norm(const char *path)
{
	while (*path == '/')
		path++;
	return path;
}

int sd_tracefs_read(const char *path, FILE *out)
{
	int err;

	path = norm(path);
	sd_trace_lock();
	if (!strncmp(path, "events/", 7))
		err = events_read(path + 7, out);
	else
		err = top_read(path, out);
	sd_trace_unlock();
	return err;
}

int sd_tracefs_write(const char *path, const char *data, size_t len, bool truncate, FILE *why)
{
	int err;

	path = norm(path);
	sd_trace_lock();
	if (!strncmp(path, "events/", 7))
		err = events_write(path + 7, data, len, why);
	else
		err = top_write(path, data, len, truncate, why);
	sd_trace_unlock();
	return err;
}

int sd_tracefs_list(const char *path, FILE *out)
{
	int err = 0;
	char tmp[256];
	size_t n;

	path = norm(path);
	snprintf(tmp, sizeof(tmp), "%s", path);
	n = strlen(tmp);
	while (n && tmp[n - 1] == '/')
		tmp[--n] = '\0';
	sd_trace_lock();
	if (!*tmp) {
		for (size_t i = 0; i < sizeof(top_files) / sizeof(top_files[0]); i++)
			fprintf(out, "%s\n", top_files[i]);
		for (size_t i = 0; sd_tracefs_ftrace_files[i]; i++)
			fprintf(out, "%s\n", sd_tracefs_ftrace_files[i]);
	} else if (!strcmp(tmp, "events")) {
		err = events_list(NULL, out);
	} else if (!strncmp(tmp, "events/", 7)) {
		err = events_list(tmp + 7, out);
	} else if (!strcmp(tmp, "options")) {
		fputs("overwrite\n", out);
		sd_tracefs_ftrace_options(out);
	} else {
		err = -ENOTDIR;
	}
	sd_trace_unlock();
	return err;
}

static int disable_all(struct sd_event *ev, void *arg)
{
	sd_trace_enable_event(ev, false);
	return 0;
}

void sd_tracefs_reset_all(void)
{
	if (!sd_trace_get())
		return;
	sd_trace_lock();
	sd_ftrace_set_tracer(SD_TRACER_NOP);
	sd_trace_for_each_event(disable_all, NULL);
	sd_probe_events_clear(SD_PROBE_KPROBE);
	sd_probe_events_clear(SD_PROBE_UPROBE);
	sd_trace_unlock();
}
