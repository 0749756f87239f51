// SPDX-License-Identifier: MIT
/*
 * cmd_record.c - sonde record: what `sonde trace` would print, kept in a
 * file (tracefile.h) for `sonde report`. Records are written as they are
 * read, so what was recorded before a crash of the program — or of sonde —
 * is in the file.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "session.h"
#include "sym/sym.h"
#include "trace_cmd.h"
#include "tracefile.h"

struct record_state {
	FILE *f;
	unsigned long records, lost;
	time_t maps_at;
	char *maps_text;
	int err;
	struct session *s;
	struct ftrace_sites sites; /* --function, --graph: what the engine hooked */
	bool ftrace;
};

/* the objects of the process, for symbols at report time */
static void write_maps(struct record_state *rs, struct session *s)
{
	struct sd_maps *maps;
	char *text = NULL;
	size_t len = 0;
	FILE *m;

	if (sd_maps_read(s->pid, &maps))
		return; /* gone: keep what was written last */
	m = open_memstream(&text, &len);
	if (!m) {
		sd_maps_free(maps);
		return;
	}
	for (size_t i = 0; i < sd_maps_count(maps); i++) {
		struct sd_module *mod = sd_maps_at(maps, i);

		fprintf(m, "%lx %lx %lx %s\n", (unsigned long)mod->start, (unsigned long)mod->end,
			(unsigned long)mod->bias, mod->path);
	}
	fclose(m);
	sd_maps_free(maps);
	if (!rs->maps_text || strcmp(rs->maps_text, text)) {
		if (tf_write_chunk(rs->f, 'M', text, len, NULL, 0))
			rs->err = -EIO;
		free(rs->maps_text);
		rs->maps_text = text;
	} else {
		free(text);
	}
}

static void write_events(struct record_state *rs, struct session *s)
{
	char *text;

	if (session_events_text(s, &text) == 0 &&
	    tf_write_chunk(rs->f, 'E', text, strlen(text), NULL, 0))
		rs->err = -EIO;
	free(text);
}

static void record_one(void *arg, struct session *s, const struct sd_rb_event *ev)
{
	struct record_state *rs = arg;
	struct tf_rec r = {.cpu = ev->cpu, .tid = ev->tid, .ts = ev->ts, .lost = ev->lost};
	uint16_t id = 0;

	if (ev->comm)
		snprintf(r.comm, sizeof(r.comm), "%s", ev->comm);
	if (ev->len >= 2)
		memcpy(&id, ev->payload, 2);
	/* a new event since the last description: describe them again */
	if (!session_event(s, id) || time(NULL) != rs->maps_at) {
		if (!session_event(s, id))
			write_events(rs, s);
		if (time(NULL) != rs->maps_at) {
			rs->maps_at = time(NULL);
			write_maps(rs, s);
		}
	}
	if (tf_write_chunk(rs->f, 'R', &r, sizeof(r), ev->payload, ev->len))
		rs->err = -EIO;
	rs->records++;
	rs->lost += ev->lost;
}

static void record_idle(void *arg)
{
	struct record_state *rs = arg;

	if (rs->ftrace)
		ftrace_sites_poll(&rs->sites, rs->s, false);
}

int cmd_record(int argc, char **argv)
{
	struct record_state rs = {0};
	struct trace_opts o;
	struct session s;
	char head[512];
	int err, status;

	err = trace_parse_args(argc, argv, &o, "record");
	if (err)
		return err > 0 ? 0 : 2;
	rs.f = fopen(o.output, "we");
	if (!rs.f)
		return cli_error("record: %s: %s", o.output, strerror(errno)) + 1;
	err = trace_setup(&s, &o);
	if (err) {
		if (s.launched && !s.exited) {
			kill(s.pid, SIGKILL);
			session_wait_exit(&s, 2000);
		}
		session_close(&s);
		fclose(rs.f);
		remove(o.output);
		return 2;
	}
	snprintf(head, sizeof(head),
		 "pid=%d clock=%d tsc_hz=%lu mult=%lu shift=%u tsc0=%lu ns0=%lu tracer=%s ncpus=%d "
		 "cmd=%s\n",
		 s.pid, s.clock, (unsigned long)s.clock_params.tsc_hz,
		 (unsigned long)s.clock_params.mult, s.clock_params.shift,
		 (unsigned long)s.clock_params.tsc0, (unsigned long)s.clock_params.ns0,
		 o.ft.tracer ? o.ft.tracer : "nop", (int)sysconf(_SC_NPROCESSORS_CONF),
		 o.argv && o.argv[0] ? o.argv[0] : "");
	tf_write_magic(rs.f);
	tf_write_chunk(rs.f, 'H', head, strlen(head), NULL, 0);
	write_events(&rs, &s);
	rs.maps_at = time(NULL);
	write_maps(&rs, &s);

	rs.s = &s;
	rs.ftrace = o.ft.tracer != NULL;
	if (rs.ftrace)
		ftrace_sites_poll(&rs.sites, &s, true);
	trace_loop(&s, &o, record_one, record_idle, &rs);
	status = trace_exit_status(&s);
	if (fclose(rs.f) || rs.err)
		cli_error("record: writing %s failed", o.output);
	else
		fprintf(stderr, "sonde: recorded %lu events to %s%s", rs.records, o.output,
			rs.lost ? "" : "\n");
	if (rs.lost)
		fprintf(stderr, " (%lu lost)\n", rs.lost);
	ftrace_sites_done(&rs.sites, stderr);
	free(rs.maps_text);
	session_close(&s);
	return status;
}
