// SPDX-License-Identifier: MIT
/*
 * cmd_ctl.c - sonde ctl PID VERB [PATH] [TEXT]: the virtual tracefs of a
 * traced process by hand, the way one uses /sys/kernel/tracing.
 *
 *   ls [DIR]         ls
 *   cat FILE         cat FILE            (cat trace_pipe follows until Ctrl-C)
 *   write FILE TEXT  echo TEXT > FILE
 *   append FILE TEXT echo TEXT >> FILE
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "control/protocol.h"
#include "session.h"

static volatile sig_atomic_t stop;

static void on_sigint(int sig)
{
	stop = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: sonde ctl PID ls [DIR]\n"
		"       sonde ctl PID cat FILE\n"
		"       sonde ctl PID write FILE TEXT     (like echo TEXT > FILE)\n"
		"       sonde ctl PID append FILE TEXT    (like echo TEXT >> FILE)\n\n"
		"The virtual tracefs of a process running under sonde: kprobe_events,\n"
		"uprobe_events, events/GRP/EV/{enable,filter,format,id}, set_event, trace,\n"
		"trace_pipe, tracing_on, buffer_size_kb, trace_clock, kprobe_profile,\n"
		"error_log… ('sonde ctl PID ls' lists them). Writes have the effect the same\n"
		"write has on the kernel's /sys/kernel/tracing.\n\n"
		"PID may also be written -p PID. A process without an agent gets one (sonde\n"
		"loads it with ptrace); it stays, serving the tree, until 'sonde detach PID'.\n");
}

static int follow_pipe(struct session *s)
{
	struct sigaction sa = {.sa_handler = on_sigint};

	sigaction(SIGINT, &sa, NULL);
	while (!stop) {
		struct sd_ctl_msg m;
		int err = sd_ctl_send(s->ctl, SD_CTL_PIPE, 0, 0, "trace_pipe", NULL, 0, -1);

		if (!err)
			err = sd_ctl_recv(s->ctl, &m);
		if (err)
			return err == -EPIPE ? 0 : err; /* the process ended */
		if (m.hdr.status) {
			err = m.hdr.status;
			sd_ctl_msg_free(&m);
			return err;
		}
		fwrite(m.data, 1, m.data_len, stdout);
		fflush(stdout);
		if (!m.data_len) {
			struct timespec ts = {0, 50 * 1000 * 1000};

			nanosleep(&ts, NULL);
		}
		sd_ctl_msg_free(&m);
	}
	return 0;
}

int cmd_ctl(int argc, char **argv)
{
	struct session s;
	const char *verb, *path;
	char *out = NULL, *why = NULL;
	pid_t pid;
	int err;

	if (argc > 1 && cli_is_help(argv[1])) {
		usage(stdout);
		return 0;
	}
	if (argc < 3) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "-p") || !strcmp(argv[1], "--pid")) {
		argv++;
		argc--;
		if (argc < 3) {
			usage(stderr);
			return 2;
		}
	}
	verb = argv[2];
	path = argc > 3 ? argv[3] : "";
	if (cli_parse_pid(argv[1], &pid))
		return cli_error("ctl: '%s' is not a process id", argv[1]) + 1;
	err = session_attach(&s, pid, SD_AGENT_STAY);
	if (err)
		return 1;
	if (s.attached)
		fprintf(stderr,
			"sonde: attached to pid %d; its agent stays until 'sonde detach %d'\n",
			(int)pid, (int)pid);
	if (!strcmp(verb, "ls")) {
		err = session_list(&s, path, &out);
	} else if (!strcmp(verb, "cat") && argc == 4) {
		if (!strcmp(path, "trace_pipe"))
			err = follow_pipe(&s);
		else
			err = session_read(&s, path, &out);
	} else if ((!strcmp(verb, "write") || !strcmp(verb, "append")) && argc >= 4) {
		const char *text = argc > 4 ? argv[4] : "";

		err = session_write(&s, path, text, !strcmp(verb, "write"), &why);
	} else {
		usage(stderr);
		session_close(&s);
		return 2;
	}
	if (out)
		fputs(out, stdout);
	if (err) {
		cli_error("ctl: %s %s: %s", verb, path, strerror(-err));
		if (why && *why)
			fputs(why, stderr);
	}
	free(out);
	free(why);
	session_close(&s);
	return err ? 1 : 0;
}
