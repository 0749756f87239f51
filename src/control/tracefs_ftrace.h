/* SPDX-License-Identifier: MIT */
/* tracefs_ftrace.h - the function tracers' tracefs files (tracefs_ftrace.c). */
#ifndef SD_CONTROL_TRACEFS_FTRACE_H
#define SD_CONTROL_TRACEFS_FTRACE_H

#include <stdbool.h>
#include <stdio.h>

/* the top-level files, NULL-terminated */
extern const char *const sd_tracefs_ftrace_files[];

/* -ENOENT when @path is not one of the function tracers' files */
int sd_tracefs_ftrace_read(const char *path, FILE *out);
int sd_tracefs_ftrace_write(const char *path, const char *data, size_t len, bool truncate,
			    FILE *why);
/* options/ entries, and their lines in trace_options */
void sd_tracefs_ftrace_options(FILE *out);
void sd_tracefs_ftrace_trace_options(FILE *out);

#endif
