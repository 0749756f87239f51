/* SPDX-License-Identifier: MIT */
/*
 * session.h - the command's side of a traced process: starting it under
 * the agent (launch) or reaching a running one, talking to its virtual
 * tracefs, reading its ring buffer and turning records into text.
 */
#ifndef SONDE_SESSION_H
#define SONDE_SESSION_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#include "trace/clock.h"
#include "trace/event.h"
#include "trace/ringbuf.h"

struct sd_symbolizer;

struct session_event {
	struct sd_event ev; /* fields, print */
	void *def;	    /* struct sd_probe_def * for probe events */
	void *fmt;	    /* struct sd_printfmt * for tracepoint events (their print fmt) */
	char kind[16];
};

struct session {
	pid_t pid;     /* the traced process */
	bool launched; /* we started it (and wait for it) */
	bool attached; /* we loaded its agent (ptrace): it leaves when we do */
	int ctl;       /* connection to its agent */
	int listen_fd;
	char listen_path[256];

	struct sd_rb_region *ring;
	int clock;
	struct sd_clock_params clock_params;
	unsigned int ring_gen;

	struct session_event **events; /* by id - SD_EVENT_ID_FIRST */
	unsigned int nevents;
	struct sd_symbolizer *sym;

	int exit_status; /* of a launched process, once it ended: as a shell shows it */
	bool exited;

	bool follow;   /* children connect to listen_fd (kept open) */
	char kind[16]; /* what its agent said: launch, attach, fork (--follow) */
	pid_t ppid;
};

/*
 * session_launch - start @argv with the agent preloaded; returns once the
 * agent has said HELLO (the program is held before main() until
 * session_go()).
 */
int session_launch(struct session *s, char **argv);
/* the same; @follow: its children and the programs it runs are traced too */
/* flags of session_launch_opts */
#define SESSION_FOLLOW 0x1 /* forked children connect too (--follow) */
#define SESSION_INIT_TRACE                                                    \
	0x2 /* libsonde-init.so in LD_AUDIT: constructors are logged (--init) \
	     */
int session_launch_opts(struct session *s, char **argv, unsigned int flags);
/*
 * session_accept_child - with follow, a child's agent that connected to
 * @parent: 1 and @kid (HELLO read; kid->kind "fork" or "launch"), 0 when
 * none waits, or a negative errno
 */
int session_accept_child(struct session *parent, struct session *kid);
/* reach the agent of running process @pid */
int session_connect(struct session *s, pid_t pid);
/*
 * session_attach - reach the agent of @pid, loading one into it first
 * (inject.c) when it has none; @flags: SD_AGENT_* for a new agent. Errors
 * are explained on stderr.
 */
int session_attach(struct session *s, pid_t pid, unsigned int flags);
void session_close(struct session *s);

/* one request: 0, or a negative errno with *why (malloc'd) explaining */
int session_write(struct session *s, const char *path, const char *text, bool truncate, char **why);
int session_read(struct session *s, const char *path, char **out);
int session_list(struct session *s, const char *path, char **out);
int session_go(struct session *s);
/* every probe out, every byte back; an agent we attached also leaves */
int session_detach(struct session *s);
/* the agent has closed the connection (it left) */
bool session_agent_gone(struct session *s);

/* map the ring buffer and learn the events */
int session_open_ring(struct session *s);
int session_refresh_events(struct session *s);
struct sd_event *session_event(void *s, unsigned int id);

/* a launched process: has it ended? (reaps it; fills exit_status) */
bool session_poll_exit(struct session *s);
/* wait at most @ms for the launched process to end */
bool session_wait_exit(struct session *s, int ms);

/* the description text of all events (the agent's EVENTS answer) */
int session_events_text(struct session *s, char **out);
/* events from a description text (also used for recorded files) */
int session_load_events(struct session *s, const char *text);

/* path of libsonde.so next to this command (../lib), or $SONDE_LIB */
int session_lib_path(char *buf, size_t len);

#endif
