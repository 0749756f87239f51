// SPDX-License-Identifier: MIT
/*
 * cmd_detach.c - sonde detach PID...: the agent of a running process
 * leaves it as it was. Every probe is removed and every patched byte
 * restored before the agent answers; then it stops its optimizer, closes
 * and unlinks its sockets and ends its thread. libsonde.so stays mapped,
 * idle (see src/agent/agent.c); attaching again uses it.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "control/protocol.h"
#include "session.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: sonde detach PID...\n\n"
		   "Make the agent of each process leave: every probe removed, every patched\n"
		   "byte restored, its thread and sockets gone. The process carries on.\n");
}

static int detach_one(pid_t pid)
{
	struct session s;
	char path[256];
	int err = session_connect(&s, pid);

	if (err) {
		session_close(&s);
		if (err == -ENOENT || err == -ECONNREFUSED)
			return cli_error("detach: pid %d has no sonde agent (nothing to detach)",
					 (int)pid);
		return cli_error("detach: cannot reach the agent of pid %d: %s", (int)pid,
				 strerror(-err));
	}
	s.attached = true; /* whoever put it there: it leaves */
	err = session_detach(&s);
	session_close(&s);
	if (err)
		return cli_error("detach: pid %d: %s", (int)pid, strerror(-err));
	/* the agent unlinks its socket before it answers */
	if (!sd_ctl_agent_path(pid, path, sizeof(path)) && !access(path, F_OK))
		return cli_error("detach: pid %d: its socket %s is still there", (int)pid, path);
	return 0;
}

int cmd_detach(int argc, char **argv)
{
	int status = 0;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (cli_is_help(argv[1])) {
		usage(stdout);
		return 0;
	}
	for (int i = 1; i < argc; i++) {
		pid_t pid;

		if (!strcmp(argv[i], "-p") || !strcmp(argv[i], "--pid"))
			continue;
		if (cli_parse_pid(argv[i], &pid)) {
			cli_error("detach: '%s' is not a process id", argv[i]);
			status = 2;
			continue;
		}
		if (detach_one(pid))
			status = 1;
	}
	return status;
}
