// SPDX-License-Identifier: MIT
/* main.c - the sonde command: a table of subcommands. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <sonde/sonde.h>

#include "cli.h"

struct cmd {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
};

static const struct cmd commands[] = {
    {"trace", cmd_trace, "run a program, print its events live (trace_pipe)"},
    {"record", cmd_record, "run a program, record its events to a file"},
    {"ftrace", cmd_ftrace, "run a program, print every function call (the function tracer)"},
    {"graph", cmd_graph, "run a program, print its call graph with durations (function_graph)"},
    {"report", cmd_report, "print a recorded trace, or its per-function statistics"},
    {"export", cmd_export, "a recorded call graph as Chrome/Perfetto JSON or flame-graph stacks"},
    {"list", cmd_list, "list probeable functions or events of a binary or a process"},
    {"ctl", cmd_ctl, "read and write the virtual tracefs of a traced process"},
    {"detach", cmd_detach, "make the agent of a running process leave it as it was"},
};

int cli_error(const char *fmt, ...)
{
	va_list ap;

	fputs("sonde: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

int cli_fail(int err, const char *fmt, ...)
{
	va_list ap;

	fputs("sonde: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return err;
}

bool cli_is_help(const char *arg)
{
	return !strcmp(arg, "-h") || !strcmp(arg, "--help");
}

static void usage(FILE *f)
{
	fprintf(f, "usage: sonde [--version] [--help] <command> [<args>]\n\n"
		   "sonde traces user-space processes the way the kernel traces itself.\n\n"
		   "commands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
	fprintf(f, "\n'sonde <command> --help' tells more about a command.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (cli_is_help(argv[1]) || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("sonde %s\n", sonde_version_string());
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].fn(argc - 1, argv + 1);
	cli_error("'%s' is not a sonde command; see 'sonde --help'", argv[1]);
	return 2;
}
