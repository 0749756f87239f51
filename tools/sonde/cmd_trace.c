// SPDX-License-Identifier: MIT
/*
 * cmd_trace.c - sonde trace: define events in a program, print them live in
 * the kernel's trace_pipe format. Also the engine of `sonde record`, which
 * writes the same records to a file instead (trace_setup/trace_loop).
 */
#include <ctype.h>
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
#include "control/protocol.h"
#include "session.h"
#include "sym/sym.h"
#include "trace/output.h"
#include "trace/probe_def.h"
#include "trace/symbolize.h"
#include "trace_cmd.h"
#include "usdt/usdt.h"

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
	interrupted = 1;
}

static void usage(FILE *f, const char *cmd)
{
	fprintf(
	    f,
	    "usage: sonde %s [options] -- COMMAND [ARG...]\n"
	    "       sonde %s [options] -p PID\n\n"
	    "Define trace events in a program and %s.\n\n"
	    "  -e, --event DEF      a kprobe_events or uprobe_events line, e.g.\n"
	    "                         'p:grp/alloc malloc size=%%di:u64'\n"
	    "                         'r:grp/ret malloc $retval'\n"
	    "                         'p /usr/bin/python3:0x1a2b %%di'\n"
	    "                       or an existing event to enable: 'grp:ev', 'grp:*'\n"
	    "                       or a USDT probe: 'usdt:[PATH:]PROVIDER:NAME [ARG...]'\n"
	    "                         (u: for short; without PATH, searched in the\n"
	    "                         program and its libraries; globs allowed) as event\n"
	    "                         sdt_PROVIDER:NAME with fields arg1..argN, or the\n"
	    "                         ARGs given: 'u:python:function__entry\n"
	    "                         file=arg1:string fn=arg2:string line=arg3'\n"
	    "                       a PATH the program has not loaded yet (a plugin it\n"
	    "                         dlopens) is probed when it loads it; with -p,\n"
	    "                         the process must map it already\n"
	    "  -f, --filter EXPR    filter for the events of the -e before it\n"
	    "                         (the kernel's grammar: 'size > 4096 && size < 8192')\n"
	    "  -b, --buffer-kb KB   each thread's ring buffer size (buffer_size_kb)\n"
	    "      --discard        drop new events when a buffer is full (default: overwrite\n"
	    "                       the oldest, like the kernel's flight recorder)\n"
	    "      --clock NAME     trace_clock: local, global, counter, mono, boot, x86-tsc…\n"
	    "%s"
	    "  -p, --pid PID        a running process: sonde loads its agent into it\n"
	    "                       (ptrace) unless one serves already, and when done leaves\n"
	    "                       it as it was: every probe out, every byte back;\n"
	    "                       -p again for more processes (not with record)\n"
	    "      --follow         trace the processes it forks and the programs it runs\n"
	    "%s"
	    "  -h, --help           this text\n\n"
	    "The command's exit status is the program's. Ctrl-C stops tracing, removes\n"
	    "every probe and returns.\n",
	    cmd, cmd,
	    !strcmp(cmd, "record") ? "record what they see to a file (see 'sonde report')"
				   : "print them live, as the kernel's trace_pipe shows them",
	    !strcmp(cmd, "record")
		? "  -o, --output FILE    where to write (default sonde.dat)\n"
		: "  -o, --output FILE    write the events there instead of stdout\n",
	    !strcmp(cmd, "record")
		? "      --function       record the function tracer's calls (as 'sonde ftrace')\n"
		  "      --graph          record the function_graph tracer's calls and\n"
		  "                       returns (as 'sonde graph'); their options below\n"
		: "");
	if (!strcmp(cmd, "record"))
		ftrace_usage(f, cmd);
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
	    {"discard", no_argument, NULL, OPT_DISCARD},
	    {"clock", required_argument, NULL, 'C'},
	    {"output", required_argument, NULL, 'o'},
	    {"pid", required_argument, NULL, 'p'},
	    {"follow", no_argument, NULL, OPT_FOLLOW},
	    {"help", no_argument, NULL, 'h'},
	    /* the function tracers' (cmd_ftrace.c) */
	    {"ftrace-filter", required_argument, NULL, 'F'},
	    {"notrace", required_argument, NULL, 'N'},
	    {"graph-function", required_argument, NULL, 'G'},
	    {"graph-notrace", required_argument, NULL, OPT_GRAPH_NOTRACE},
	    {"max-depth", required_argument, NULL, 'D'},
	    {"thresh", required_argument, NULL, 'T'},
	    {"tid", required_argument, NULL, OPT_TID},
	    {"funcgraph-proc", no_argument, NULL, OPT_FG_PROC},
	    {"funcgraph-abstime", no_argument, NULL, OPT_FG_ABSTIME},
	    {"funcgraph-tail", no_argument, NULL, OPT_FG_TAIL},
	    {"init", no_argument, NULL, OPT_INIT},
	    {"function", no_argument, NULL, OPT_FUNCTION},
	    {"graph", no_argument, NULL, OPT_GRAPH},
	    {"no-header", no_argument, NULL, OPT_NO_HEADER},
	    {0},
	};
	bool ftrace_cmd = !strcmp(cmd, "ftrace") || !strcmp(cmd, "graph");
	int c, err;

	memset(o, 0, sizeof(*o));
	o->output = "sonde.dat";
	if (ftrace_cmd)
		o->ft.tracer = !strcmp(cmd, "graph") ? "function_graph" : "function";
	optind = 1;
	while ((c = getopt_long(argc, argv, "+e:f:b:o:p:hF:N:G:D:T:", longopts, NULL)) != -1) {
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
		case OPT_DISCARD:
			o->discard = true;
			break;
		case 'C':
			o->clock = optarg;
			break;
		case 'o':
			o->output = optarg;
			o->output_given = true;
			break;
		case 'p': {
			pid_t pid;

			if (cli_parse_pid(optarg, &pid))
				return cli_fail(-EINVAL, "%s: '%s' is not a process id", cmd,
						optarg);
			if (!o->pid)
				o->pid = pid;
			else if (o->nmore == TRACE_MAX_PIDS)
				return cli_fail(-E2BIG, "%s: at most %d -p", cmd,
						TRACE_MAX_PIDS + 1);
			else
				o->more_pids[o->nmore++] = pid;
			break;
		}
		case OPT_FOLLOW:
			o->follow = true;
			break;
		case 'h':
			if (ftrace_cmd)
				ftrace_usage(stdout, cmd);
			else
				usage(stdout, cmd);
			return 1;
		default:
			err = ftrace_parse_opt(o, c, optarg, cmd);
			if (err <= 0) {
				if (err)
					return err;
				break;
			}
			if (ftrace_cmd)
				ftrace_usage(stderr, cmd);
			else
				usage(stderr, cmd);
			return -EINVAL;
		}
	}
	o->argv = argv + optind;
	if (!o->pid && !*o->argv) {
		if (ftrace_cmd)
			ftrace_usage(stderr, cmd);
		else
			usage(stderr, cmd);
		return -EINVAL;
	}
	if (o->pid && *o->argv)
		return cli_fail(-EINVAL, "%s: give either -p PID or a command, not both", cmd);
	/* one recording describes the events of one process: their ids are its agent's */
	if (o->nmore && !strcmp(cmd, "record"))
		return cli_fail(-EINVAL,
				"%s: one -p per recording (run one sonde record per process)", cmd);
	/*
	 * A function tracer writes millions of records a second in bursts
	 * that a reader rendering text cannot follow: a bigger ring than the
	 * kernel's default 1408 KB (its pages are used only when written).
	 */
	if (o->ft.tracer && !o->buffer_kb)
		o->buffer_kb = FTRACE_DEFAULT_BUFFER_KB;
	if (!o->nevents && !o->ft.tracer)
		return cli_fail(-EINVAL, "%s: nothing to trace: give at least one -e%s", cmd,
				!strcmp(cmd, "record") ? ", --function or --graph" : "");
	return 0;
}

int write_or_explain(struct session *s, const char *path, const char *text, bool truncate,
		     const char *what)
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

/* an event name, or a glob of them: what may wait for an object to define it */
static bool event_glob_ok(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("_.*?[]!-", *s))
			return false;
	return true;
}

/* the event te->system:te->name: its filter, then enable it */
static int enable_event(struct session *s, struct trace_event *te)
{
	char path[256];
	int err;

	if (te->filter) {
		if (strchr(te->name, '*') || strchr(te->system, '*'))
			return cli_fail(-EINVAL, "--filter needs one event, not '%s'", te->def);
		snprintf(path, sizeof(path), "events/%s/%s/filter", te->system, te->name);
		err = write_or_explain(s, path, te->filter, true, te->filter);
		if (err)
			return err;
	}
	snprintf(path, sizeof(path), "%s:%s", te->system, te->name);
	if (!te->filter && event_glob_ok(te->system) && event_glob_ok(te->name)) {
		/* no such event yet: one an object loaded later (dlopen) defines */
		char *why = NULL;

		err = session_write(s, "set_event", path, false, &why);
		free(why);
		if (err != -EINVAL)
			return err ? write_or_explain(s, "set_event", path, false, te->def) : 0;
		err = session_write(s, "set_event_pending", path, false, NULL);
		if (!err) {
			fprintf(stderr,
				"sonde: no event %s yet: it is enabled when an object that defines "
				"it is loaded\n",
				path);
			return 0;
		}
	}
	return write_or_explain(s, "set_event", path, false, te->def);
}

/*
 * Whether the uprobe @pd (of the line @def) goes to this process. Its file
 * is mapped; or it is not, and then a launched program gets it (the agent
 * places it when the program loads the file, as the kernel's uprobes wait
 * for a file), an attached process is an error, or, one of several -p, is
 * left out with a word (*skip).
 */
static int check_uprobe_file(struct session *s, const struct trace_opts *o,
			     const struct sd_probe_def *pd, const char *def, bool *skip)
{
	struct sd_maps *maps = NULL;
	bool mapped = true;

	*skip = false;
	/* a file that is not there is for the agent to refuse */
	if (!pd->path || access(pd->path, F_OK))
		return 0;
	if (!sd_maps_read(s->pid, &maps)) {
		mapped = sd_maps_find_file(maps, pd->path) != NULL;
		sd_maps_free(maps);
	}
	if (mapped)
		return 0;
	if (s->launched) {
		fprintf(stderr, "sonde: %s is not loaded yet: its probe is placed when it is\n",
			pd->path);
		return 0;
	}
	if (!o->nmore)
		return cli_fail(-ENOENT, "'%s': pid %d does not map %s", def, (int)s->pid,
				pd->path);
	fprintf(stderr, "sonde: pid %d does not map the object of '%s'\n", (int)s->pid, def);
	*skip = true;
	return 0;
}

/*
 * The definition @def (a kprobe_events or uprobe_events line, by @kind) to
 * the agent, and @te named after its event: 0, 1 when it is left out (see
 * check_uprobe_file), or an error.
 */
static int place_definition(struct session *s, const struct trace_opts *o, struct trace_event *te,
			    const char *def, int kind)
{
	struct sd_probe_def *pd = NULL;
	struct sd_parse_error pe = {0};
	char g[SD_EVENT_NAME_MAX], n[SD_EVENT_NAME_MAX];
	bool skip = false;
	int err = 0;

	/* what does not parse is for the agent to refuse, with the kernel's words */
	if (def[0] != '-' && sd_probe_parse(def, kind, &pd, g, n, &pe))
		pd = NULL;
	if (pd && kind == SD_PROBE_UPROBE)
		err = check_uprobe_file(s, o, pd, def, &skip);
	if (!err && !skip)
		err =
		    write_or_explain(s, kind == SD_PROBE_UPROBE ? "uprobe_events" : "kprobe_events",
				     def, false, def);
	if (!err && !skip && def[0] != '-') {
		/* the same parse the agent made gives the event's name */
		if (!pd) {
			err = cli_fail(-EINVAL, "%s: cannot name the event", def);
		} else {
			snprintf(te->system, sizeof(te->system), "%s", pd->group);
			snprintf(te->name, sizeof(te->name), "%s", pd->event);
		}
	}
	sd_probe_def_free(pd);
	return err ? err : skip;
}

/*
 * usdt:[PATH:]PROVIDER:NAME: the probes are found here, in the files the
 * program has mapped (/proc/PID/maps; a launched program waits before main()
 * with its libraries loaded), and each site becomes an uprobe_events line
 * with its --filter, as if given with -e
 */
static int setup_usdt(struct session *s, const struct trace_opts *o, struct trace_event *te)
{
	char **lines;
	int n = sd_usdt_expand(te->def, s->pid, &lines), err = 0;

	if (n < 0)
		return cli_fail(n, "%s", sonde_last_error());
	for (int i = 0; i < n && !err; i++) {
		err = place_definition(s, o, te, lines[i], SD_PROBE_UPROBE);
		if (err > 0)
			err = 0; /* left out here */
		else if (!err)
			err = enable_event(s, te);
	}
	sd_usdt_lines_free(lines, n);
	return err;
}

/* define or select the events, set filters, enable them */
static int setup_events(struct session *s, struct trace_opts *o)
{
	for (int i = 0; i < o->nevents; i++) {
		struct trace_event *te = &o->events[i];
		const char *def = te->def;
		int err;

		if (sd_usdt_is_spec(def)) {
			err = setup_usdt(s, o, te);
			if (err)
				return err;
			continue;
		}
		if (is_definition(def)) {
			err = place_definition(s, o, te, def, def_kind(def));
			if (err < 0)
				return err;
			if (err > 0)
				continue;
			te->placed++;
			if (def[0] == '-')
				continue;
		} else {
			const char *colon = strchr(def, ':');

			/* a name has no blank: 'q:grp/ev func' is a definition of no known type */
			if (!colon || strpbrk(def, " \t"))
				return cli_fail(
				    -EINVAL,
				    "'%s' is neither an event definition (p:…, r:…) nor an "
				    "event name (group:event)",
				    def);
			snprintf(te->system, sizeof(te->system), "%.*s", (int)(colon - def), def);
			snprintf(te->name, sizeof(te->name), "%s", colon + 1);
		}
		err = enable_event(s, te);
		if (err)
			return err;
	}
	return 0;
}

static int trace_configure(struct session *s, struct trace_opts *o);

int trace_setup(struct session *s, struct trace_opts *o)
{
	struct sigaction sa = {.sa_handler = on_sigint};
	int err;

	/* attaching: a Ctrl-C from now on detaches cleanly (even before events flow) */
	sigemptyset(&sa.sa_mask);
	if (o->pid) {
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
	}
	if (o->pid)
		err = session_attach(s, o->pid, o->follow ? SD_AGENT_FOLLOW : 0);
	else
		err = session_launch_opts(s, o->argv,
					  (o->follow ? SESSION_FOLLOW : 0) |
					      (o->ft.init ? SESSION_INIT_TRACE : 0));
	if (err)
		return err;
	err = trace_configure(s, o);
	if (err && !s->launched)
		session_detach(s); /* refused: the attached process is left as it was */
	if (err || !o->nmore)
		return err;
	/* the other -p: each its own agent and ring, the same events */
	o->more = calloc(o->nmore, sizeof(*o->more));
	if (!o->more)
		return -ENOMEM;
	for (int i = 0; i < o->nmore; i++) {
		err = session_attach(&o->more[i], o->more_pids[i], o->follow ? SD_AGENT_FOLLOW : 0);
		if (!err) {
			err = trace_configure(&o->more[i], o);
			if (err)
				session_detach(&o->more[i]);
		}
		if (err) {
			/* none stays half traced: the ones reached so far leave too */
			for (int j = 0; j < i; j++) {
				session_detach(&o->more[j]);
				session_close(&o->more[j]);
			}
			session_close(&o->more[i]);
			free(o->more);
			o->more = NULL;
			session_detach(s);
			return err;
		}
	}
	for (int i = 0; i < o->nevents; i++)
		if (is_definition(o->events[i].def) && o->events[i].def[0] != '-' &&
		    !o->events[i].placed) {
			cli_error("'%s': no process given with -p maps its object",
				  o->events[i].def);
			for (int j = 0; j < o->nmore; j++) {
				session_detach(&o->more[j]);
				session_close(&o->more[j]);
			}
			free(o->more);
			o->more = NULL;
			session_detach(s);
			return -ENOENT;
		}
	return 0;
}

/* the buffer settings and the events, in a process whose agent is reached */
static int trace_configure(struct session *s, struct trace_opts *o)
{
	int err = 0;

	if (o->buffer_kb)
		err = write_or_explain(s, "buffer_size_kb", o->buffer_kb, true, "buffer_size_kb");
	if (!err && o->discard)
		err = write_or_explain(s, "options/overwrite", "0", true, "--discard");
	if (!err && o->clock)
		err = write_or_explain(s, "trace_clock", o->clock, true, o->clock);
	if (!err)
		err = setup_events(s, o);
	if (!err)
		err = ftrace_setup(s, &o->ft);
	if (!err)
		err = session_refresh_events(s);
	if (!err) {
		err = session_open_ring(s);
		if (err)
			cli_error("cannot map the trace buffer: %s", strerror(-err));
	}
	return err;
}

/* ---- --follow: the children's agents ---------------------------------------------------- */

struct kid {
	struct session s;
	struct sd_rb_reader *rd; /* an executed program's own ring; NULL for a fork */
};

struct kids {
	struct kid *v;
	int n;
};

/*
 * Children that connected: a forked one shares its parent's ring (its
 * events, with its own pid, come with the parent's); a program executed
 * gets the same events defined in its own tracefs, and its ring is read
 * beside.
 */
static void kids_accept(struct kids *k, struct session *s, struct trace_opts *o)
{
	struct kid kid;

	if (!s->follow)
		return;
	while (session_accept_child(s, &kid.s) > 0) {
		struct kid *bigger = realloc(k->v, (k->n + 1) * sizeof(*bigger));

		kid.rd = NULL;
		if (!strcmp(kid.s.kind, "launch")) {
			if (trace_configure(&kid.s, o) == 0 &&
			    sd_rb_reader_open(kid.s.ring, true, &kid.rd))
				kid.rd = NULL;
			session_go(&kid.s);
		}
		if (!bigger) {
			if (kid.rd)
				sd_rb_reader_close(kid.rd);
			session_close(&kid.s);
			continue;
		}
		k->v = bigger;
		k->v[k->n++] = kid;
	}
}

static int kids_read(struct kids *k, record_fn rec, void *arg)
{
	struct sd_rb_event ev;
	int n = 0;

	for (int i = 0; i < k->n; i++)
		while (k->v[i].rd && n < 65536 && sd_rb_read(k->v[i].rd, &ev) > 0) {
			rec(arg, &k->v[i].s, &ev);
			n++;
		}
	return n;
}

/* forget the processes that ended, once what they wrote is read */
static void kids_prune(struct kids *k, record_fn rec, void *arg)
{
	for (int i = 0; i < k->n;) {
		struct kid *c = &k->v[i];
		struct sd_rb_event ev;

		if (!(kill(c->s.pid, 0) && errno == ESRCH)) {
			i++;
			continue;
		}
		while (c->rd && sd_rb_read(c->rd, &ev) > 0)
			rec(arg, &c->s, &ev);
		if (c->rd)
			sd_rb_reader_close(c->rd);
		session_close(&c->s);
		k->v[i] = k->v[--k->n];
	}
}

/* the other -p of the command line: read beside the first, like executed children */
static void kids_add_more(struct kids *k, struct trace_opts *o)
{
	struct kid *v;

	if (!o->more)
		return;
	v = realloc(k->v, (k->n + o->nmore) * sizeof(*v));
	if (!v)
		return;
	k->v = v;
	for (int i = 0; i < o->nmore; i++) {
		struct kid *c = &k->v[k->n++];

		c->s = o->more[i];
		if (sd_rb_reader_open(c->s.ring, true, &c->rd))
			c->rd = NULL;
	}
	free(o->more); /* the sessions are the kids' now */
	o->more = NULL;
}

static void kids_detach(struct kids *k)
{
	for (int i = 0; i < k->n; i++)
		session_detach(&k->v[i].s);
}

static void kids_close(struct kids *k)
{
	for (int i = 0; i < k->n; i++) {
		if (k->v[i].rd)
			sd_rb_reader_close(k->v[i].rd);
		session_close(&k->v[i].s);
	}
	free(k->v);
	k->v = NULL;
	k->n = 0;
}

int trace_loop(struct session *s, struct trace_opts *o, record_fn rec, void (*idle)(void *arg),
	       void *arg)
{
	struct sigaction sa = {.sa_handler = on_sigint};
	struct sd_rb_reader *rd;
	struct sd_rb_event ev;
	bool done = false, detached = false, first_gone = false;
	int err, nidle = 0;
	struct timespec last_idle = {0};
	struct kids kids = {0};

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
	kids_add_more(&kids, o);
	while (!done) {
		int n = 0;

		/* in bounded batches: a Ctrl-C is seen even when events never stop coming */
		while (n < 65536 && sd_rb_read(rd, &ev) > 0) {
			rec(arg, s, &ev);
			n++;
		}
		if (s->follow)
			kids_accept(&kids, s, o);
		if (kids.n)
			n += kids_read(&kids, rec, arg);
		if (n && !interrupted) {
			struct timespec now;

			nidle = 0;
			/* a busy ring never empties: hand out what was read every 20 ms */
			clock_gettime(CLOCK_MONOTONIC, &now);
			if (idle && (now.tv_sec - last_idle.tv_sec) * 1000000000L + now.tv_nsec -
					    last_idle.tv_nsec >
					20 * 1000 * 1000L) {
				idle(arg);
				last_idle = now;
			}
			continue;
		}
		if (idle)
			idle(arg);
		if (interrupted && !detached) {
			/* stop tracing: every probe out, every byte back */
			session_detach(s);
			kids_detach(&kids);
			detached = true;
			continue; /* one more pass for what was written meanwhile */
		}
		if (interrupted) {
			/* the probes are out: what is left in the buffer is all there is */
			while (sd_rb_read(rd, &ev) > 0)
				rec(arg, s, &ev);
			while (kids_read(&kids, rec, arg))
				;
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
		if (!s->launched && !first_gone && kill(s->pid, 0) && errno == ESRCH) {
			while (sd_rb_read(rd, &ev) > 0)
				rec(arg, s, &ev);
			if (!o->nmore)
				break;
			first_gone = true; /* the other -p go on */
		}
		if (first_gone) {
			kids_prune(&kids, rec, arg);
			if (!kids.n)
				break;
		}
		if (!s->launched && !first_gone && !detached && session_agent_gone(s)) {
			/* it is ending, or `sonde detach` from elsewhere: the probes are gone */
			while (sd_rb_read(rd, &ev) > 0)
				rec(arg, s, &ev);
			if (!o->nmore) {
				fprintf(stderr, "sonde: the agent of pid %d has left\n",
					(int)s->pid);
				break;
			}
			first_gone = true; /* the other -p go on */
			continue;
		}
		if (kids.n && nidle % 100 == 99)
			kids_prune(&kids, rec, arg);
		{
			struct timespec ts = {0, (nidle < 10 ? 1 : 10) * 1000 * 1000};

			nanosleep(&ts, NULL);
			nidle++;
		}
	}
	if (!detached)
		kids_detach(
		    &kids); /* the parent ended: its children's (and the other -p) probes go too */
	kids_close(&kids);
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

	cli_write_out(ps->fd, ps->buf, ps->len, &ps->write_failed);
	ps->len = 0;
}

static void print_record(void *arg, struct session *s, const struct sd_rb_event *ev)
{
	struct print_state *ps = arg;
	struct sd_seq seq;

	/* the record's own process (--follow: a program executed has its own events) */
	ps->r.event_arg = s;
	ps->r.pctx.sym_arg = s->sym;
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
