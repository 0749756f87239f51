// SPDX-License-Identifier: MIT
/*
 * cmd_trace.c - sonde trace: define events in a program, print them live in
 * the kernel's trace_pipe format. Also the engine of `sonde record`, which
 * writes the same records to a file instead (trace_setup/trace_loop).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sonde/sonde.h>

#include "cli.h"
#include "session.h"
#include "trace/output.h"
#include "trace/probe_def.h"
#include "trace/symbolize.h"
#include "trace_cmd.h"

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
	interrupted = 1;
}

static void usage(FILE *f, const char *cmd)
{
	fprintf(f,
		"usage: sonde %s [options] -- COMMAND [ARG...]\n"
		"       sonde %s [options] -p PID\n\n"
		"Define trace events in a program and %s.\n\n"
		"  -e, --event DEF      a kprobe_events or uprobe_events line, e.g.\n"
		"                         'p:grp/alloc malloc size=%%di:u64'\n"
		"                         'r:grp/ret malloc $retval'\n"
		"                         'p /usr/bin/python3:0x1a2b %%di'\n"
		"                       or an existing event to enable: 'grp:ev', 'grp:*'\n"
		"  -f, --filter EXPR    filter for the events of the -e before it\n"
		"                         (the kernel's grammar: 'size > 4096 && size < 8192')\n"
		"  -b, --buffer-kb KB   each thread's ring buffer size (buffer_size_kb)\n"
		"      --discard        drop new events when a buffer is full (default: overwrite\n"
		"                       the oldest, like the kernel's flight recorder)\n"
		"      --clock NAME     trace_clock: local, global, counter, mono, boot, x86-tsc…\n"
		"%s"
		"  -h, --help           this text\n\n"
		"The command's exit status is the program's. Ctrl-C stops tracing, removes\n"
		"every probe and returns.\n",
		cmd, cmd,
		!strcmp(cmd, "record") ? "record what they see to a file (see 'sonde report')"
				       : "print them live, as the kernel's trace_pipe shows them",
		!strcmp(cmd, "record") ? "  -o, --output FILE    where to write (default sonde.dat)\n"
				       : "  -o, --output FILE    write the events there instead of stdout\n");
}

/* a kprobe_events or uprobe_events line? the location of uprobes is PATH:OFFSET */
static int def_kind(const char *def)
{
	const char *loc = strchr(def, ' ');
	const char *colon;

	if (!loc)
		return -1;
	while (*loc == ' ')
		loc++;
	colon = strrchr(loc, ':');
	if (*loc == '/' || (colon && colon > loc && strchr(loc, '/') &&
			    (strchr(loc, ' ') == NULL || colon < strchr(loc, ' '))))
		return SD_PROBE_UPROBE;
	return SD_PROBE_KPROBE;
}

/* a probe definition (the parser judges it) rather than an event name */
static bool is_definition(const char *def)
{
	return (def[0] == 'p' || def[0] == 'r' || def[0] == '-') &&
	       (def[1] == ':' || def[1] == ' ' || (def[1] >= '0' && def[1] <= '9'));
}

int trace_parse_args(int argc, char **argv, struct trace_opts *o, const char *cmd)
{
	static const struct option longopts[] = {
		{"event", required_argument, NULL, 'e'},
		{"filter", required_argument, NULL, 'f'},
		{"buffer-kb", required_argument, NULL, 'b'},
		{"discard", no_argument, NULL, 'D'},
		{"clock", required_argument, NULL, 'C'},
		{"output", required_argument, NULL, 'o'},
		{"pid", required_argument, NULL, 'p'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	int c;

	memset(o, 0, sizeof(*o));
	o->output = "sonde.dat";
	optind = 1;
	while ((c = getopt_long(argc, argv, "+e:f:b:o:p:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'e':
			if (o->nevents == TRACE_MAX_EVENTS)
				return cli_fail(-E2BIG, "%s: at most %d -e", cmd, TRACE_MAX_EVENTS);
			o->events[o->nevents++].def = optarg;
			break;
		case 'f':
			if (!o->nevents)
				return cli_fail(-EINVAL, "%s: --filter applies to the -e before it",
						cmd);
			o->events[o->nevents - 1].filter = optarg;
			break;
		case 'b':
			o->buffer_kb = optarg;
			break;
		case 'D':
			o->discard = true;
			break;
		case 'C':
			o->clock = optarg;
			break;
		case 'o':
			o->output = optarg;
			o->output_given = true;
			break;
		case 'p':
			o->pid = atoi(optarg);
			if (o->pid <= 0)
				return cli_fail(-EINVAL, "%s: bad pid '%s'", cmd, optarg);
			break;
		case 'h':
			usage(stdout, cmd);
			return 1;
		default:
			usage(stderr, cmd);
			return -EINVAL;
		}
	}
	o->argv = argv + optind;
	if (!o->pid && !*o->argv) {
		usage(stderr, cmd);
		return -EINVAL;
	}
	if (o->pid && *o->argv)
		return cli_fail(-EINVAL, "%s: give either -p PID or a command, not both", cmd);
	if (!o->nevents)
		return cli_fail(-EINVAL, "%s: nothing to trace: give at least one -e", cmd);
	return 0;
}

static int write_or_explain(struct session *s, const char *path, const char *text,
			    bool truncate, const char *what)
{
	char *why = NULL;
	int err = session_write(s, path, text, truncate, &why);

	if (err) {
		cli_error("%s: %s", what, strerror(-err));
		if (why && *why)
			fputs(why, stderr);
	}
	free(why);
	return err;
}

/* define or select the events, set filters, enable them */
static int setup_events(struct session *s, struct trace_opts *o)
{
	for (int i = 0; i < o->nevents; i++) {
		struct trace_event *te = &o->events[i];
		const char *def = te->def;
		char path[256];
		int err;

		if (is_definition(def)) {
			int kind = def_kind(def);
			struct sd_probe_def *pd = NULL;
			struct sd_parse_error pe = {0};
			char g[SD_EVENT_NAME_MAX], n[SD_EVENT_NAME_MAX];

			err = write_or_explain(s, kind == SD_PROBE_UPROBE ? "uprobe_events"
									 : "kprobe_events",
					       def, false, def);
			if (err)
				return err;
			if (def[0] == '-')
				continue;
			/* the same parse the agent made gives the event's name */
			if (sd_probe_parse(def, kind, &pd, g, n, &pe))
				return cli_fail(-EINVAL, "%s: cannot name the event", def);
			snprintf(te->system, sizeof(te->system), "%s", pd->group);
			snprintf(te->name, sizeof(te->name), "%s", pd->event);
			sd_probe_def_free(pd);
		} else {
			const char *colon = strchr(def, ':');

			if (!colon)
				return cli_fail(-EINVAL,
						"'%s' is neither an event definition (p:…, r:…) nor an "
						"event name (group:event)",
						def);
			snprintf(te->system, sizeof(te->system), "%.*s", (int)(colon - def), def);
			snprintf(te->name, sizeof(te->name), "%s", colon + 1);
		}
		if (te->filter) {
			if (strchr(te->name, '*') || strchr(te->system, '*'))
				return cli_fail(-EINVAL, "--filter needs one event, not '%s'", def);
			snprintf(path, sizeof(path), "events/%s/%s/filter", te->system, te->name);
			err = write_or_explain(s, path, te->filter, true, te->filter);
			if (err)
				return err;
		}
		snprintf(path, sizeof(path), "%s:%s", te->system, te->name);
		err = write_or_explain(s, "set_event", path, false, def);
		if (err)
			return err;
	}
	return 0;
}

int trace_setup(struct session *s, struct trace_opts *o)
{
	int err;

	if (o->pid)
		err = session_connect(s, o->pid);
	else
		err = session_launch(s, o->argv);
	if (err) {
		if (o->pid)
			cli_error("cannot reach the agent of pid %d: %s (was it started under "
				  "sonde?)",
				  o->pid, strerror(-err));
		return err;
	}
	if (o->buffer_kb)
		err = write_or_explain(s, "buffer_size_kb", o->buffer_kb, true, "buffer_size_kb");
	if (!err && o->discard)
		err = write_or_explain(s, "options/overwrite", "0", true, "--discard");
	if (!err && o->clock)
		err = write_or_explain(s, "trace_clock", o->clock, true, o->clock);
	if (!err)
		err = setup_events(s, o);
	if (!err)
		err = session_refresh_events(s);
	if (!err) {
		err = session_open_ring(s);
		if (err)
			cli_error("cannot map the trace buffer: %s", strerror(-err));
	}
	return err;
}

int trace_loop(struct session *s, struct trace_opts *o, record_fn rec, void (*idle)(void *arg),
	       void *arg)
{
	struct sigaction sa = {.sa_handler = on_sigint};
	struct sd_rb_reader *rd;
	struct sd_rb_event ev;
	bool done = false, detached = false;
	int err, nidle = 0;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	err = sd_rb_reader_open(s->ring, true, &rd);
	if (err)
		return cli_fail(err, "cannot read the trace buffer: %s", strerror(-err));
	if (s->launched) {
		err = session_go(s);
		if (err)
			cli_error("the agent did not start the program: %s", strerror(-err));
	}
	while (!done) {
		int n = 0;

		while (sd_rb_read(rd, &ev) > 0) {
			rec(arg, s, &ev);
			n++;
		}
		if (n) {
			nidle = 0;
			continue;
		}
		if (idle)
			idle(arg);
		if (interrupted && !detached) {
			/* stop tracing: every probe out, every byte back */
			session_detach(s);
			detached = true;
			continue; /* one more pass for what was written meanwhile */
		}
		if (interrupted) {
			if (s->launched)
				session_wait_exit(s, 2000);
			break;
		}
		if (s->launched && session_poll_exit(s)) {
			/* what the program wrote before it ended is all in the buffer */
			while (sd_rb_read(rd, &ev) > 0)
				rec(arg, s, &ev);
			done = true;
			continue;
		}
		if (!s->launched && kill(s->pid, 0) && errno == ESRCH) {
			while (sd_rb_read(rd, &ev) > 0)
				rec(arg, s, &ev);
			break;
		}
		{
			struct timespec ts = {0, (nidle < 10 ? 1 : 10) * 1000 * 1000};

			nanosleep(&ts, NULL);
			nidle++;
		}
	}
	sd_rb_reader_close(rd);
	return 0;
}

int trace_exit_status(struct session *s)
{
	struct sd_rb_stats st;

	if (s->ring) {
		sd_rb_stats(s->ring, &st);
		if (st.dropped)
			fprintf(stderr, "sonde: %lu events dropped (buffer full)\n",
				(unsigned long)st.dropped);
	}
	if (s->launched && s->exited)
		return s->exit_status;
	return interrupted ? 130 : 0;
}

/*
 * Lines go out whole, in one write() of many lines: the traced program may
 * share the terminal or pipe, and a line of its own must not land in the
 * middle of one of ours.
 */
#define OUT_BUF (256 * 1024)

struct print_state {
	int fd;
	struct sd_render r;
	char line[16384];
	char buf[OUT_BUF];
	size_t len;
	uint64_t lost;
	bool write_failed;
};

static void flush_out(void *arg)
{
	struct print_state *ps = arg;
	size_t done = 0;

	while (done < ps->len && !ps->write_failed) {
		ssize_t w = write(ps->fd, ps->buf + done, ps->len - done);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			ps->write_failed = true; /* a closed pipe: keep tracing, stop printing */
			break;
		}
		done += w;
	}
	ps->len = 0;
}

static void print_record(void *arg, struct session *s, const struct sd_rb_event *ev)
{
	struct print_state *ps = arg;
	struct sd_seq seq;

	sd_seq_init(&seq, ps->line, sizeof(ps->line));
	if (ev->lost) {
		sd_render_lost(&seq, ev->cpu, ev->lost);
		ps->lost += ev->lost;
	}
	sd_render_record(&seq, &ps->r, ev);
	if (ps->len + seq.len > OUT_BUF)
		flush_out(ps);
	memcpy(ps->buf + ps->len, ps->line, seq.len);
	ps->len += seq.len;
}

int cmd_trace(int argc, char **argv)
{
	struct trace_opts o;
	struct session s;
	struct print_state *ps;
	int err;

	err = trace_parse_args(argc, argv, &o, "trace");
	if (err)
		return err > 0 ? 0 : 2;
	err = trace_setup(&s, &o);
	if (err) {
		if (s.launched && !s.exited) {
			kill(s.pid, SIGKILL);
			session_wait_exit(&s, 2000);
		}
		session_close(&s);
		return 2;
	}
	ps = calloc(1, sizeof(*ps));
	if (!ps)
		return 1;
	ps->fd = STDOUT_FILENO;
	if (o.output_given) {
		ps->fd = open(o.output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (ps->fd < 0) {
			cli_error("trace: %s: %s", o.output, strerror(errno));
			free(ps);
			if (s.launched && !s.exited)
				kill(s.pid, SIGKILL);
			session_close(&s);
			return 2;
		}
	}
	ps->r.pctx.sym = sd_symbolize;
	ps->r.pctx.sym_arg = s.sym;
	ps->r.clock = &s.clock_params;
	ps->r.clock_id = s.clock;
	ps->r.event = session_event;
	ps->r.event_arg = &s;
	trace_loop(&s, &o, print_record, flush_out, ps);
	flush_out(ps);
	if (ps->fd != STDOUT_FILENO)
		close(ps->fd);
	err = trace_exit_status(&s);
	free(ps);
	session_close(&s);
	return err;
}
