/* SPDX-License-Identifier: MIT */
/*
 * cli.h - what the sonde commands share.
 *
 * Adding a command:
 *  1. tools/sonde/cmd_<name>.c with int cmd_<name>(int argc, char **argv),
 *     parsing its own options (argv[0] is the command's name) and printing
 *     its own --help;
 *  2. one line in the table in main.c;
 *  3. its part of the README and a test under tests/integration/.
 * Commands return the process exit status. Only the CLI may exit().
 */
#ifndef SONDE_CLI_H
#define SONDE_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

int cmd_list(int argc, char **argv);
int cmd_trace(int argc, char **argv);
int cmd_record(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_ctl(int argc, char **argv);
/* the function tracers and what is made of their recordings: cmd_ftrace.c, cmd_export.c */
int cmd_ftrace(int argc, char **argv);
int cmd_graph(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_detach(int argc, char **argv);
/* sonde list KIND in files of their own: list_usdt.c */
int list_usdt(int argc, char **argv);

/* print "sonde: <msg>\n" to stderr; returns 1 (an exit status) */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* cli_error, then return @err (a negative errno) */
int cli_fail(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* true when @arg is -h or --help */
bool cli_is_help(const char *arg);
/* a bare @name that is not a file here, looked up in $PATH as a shell would (in @buf) */
const char *cli_find_binary(const char *name, char *buf, size_t len);
/* @s as a process id (decimal, > 0, nothing after it): 0, or -EINVAL */
int cli_parse_pid(const char *s, pid_t *pid);
/* all of @buf to @fd; on a failed write (a closed pipe) *@failed, and nothing more */
void cli_write_out(int fd, const char *buf, size_t len, bool *failed);

#endif
