/* SPDX-License-Identifier: MIT */
/* trace_cmd.h - what `sonde trace` and `sonde record` share. */
#ifndef SONDE_TRACE_CMD_H
#define SONDE_TRACE_CMD_H

#include <stdbool.h>
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
};

struct trace_opts {
	struct trace_event events[TRACE_MAX_EVENTS];
	int nevents;
	const char *buffer_kb;
	const char *clock;
	const char *output;
	bool output_given;
	bool discard;
	pid_t pid;
	char **argv;
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

#endif
