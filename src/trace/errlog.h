/* SPDX-License-Identifier: MIT */
/*
 * errlog.h - parse errors, reported the kernel's way.
 *
 * A parser that rejects a command fills a struct sd_parse_error: what
 * (the kernel's message text), where (a byte offset into the command).
 * The tracefs layer appends it to `error_log`, which reads as
 *
 *   [ 1091.337085] trace_kprobe: error: Unknown type is specified
 *     Command: p:grp/ev /bin/x:0x1149 a=%di:u65
 *                                          ^
 */
#ifndef SD_TRACE_ERRLOG_H
#define SD_TRACE_ERRLOG_H

#include <stdbool.h>
#include <stddef.h>

#include "trace/seq.h"

struct sd_parse_error {
	const char *subsystem; /* "trace_kprobe", "trace_uprobe", "event filter parse error" */
	const char *msg;       /* static text, e.g. "Invalid register name" */
	int pos;	       /* byte offset of the offending token in the command */
	int err;	       /* negative errno to return (-EINVAL mostly) */
	/*
	 * pos counts in the command re-joined from its whitespace-separated
	 * words with single spaces, which is how the kernel's probe parsers
	 * log it (error_log then shows the command that way too)
	 */
	bool words;
};

/*
 * record an error (e->err = -EINVAL, e->words = false); returns e->err so
 * parsers can `return sd_parse_fail(...)`
 */
int sd_parse_fail(struct sd_parse_error *e, const char *subsystem, int pos, const char *msg);

/* the error_log file: entries kept (at most 8, as the kernel), printed, cleared */
void sd_errlog_add(const struct sd_parse_error *e, const char *cmd);
void sd_errlog_print(struct sd_seq *s);
void sd_errlog_clear(void);

/* "error text\n  Command: cmd\n           ^\n" for a CLI message */
void sd_parse_error_format(struct sd_seq *s, const struct sd_parse_error *e, const char *cmd);

#endif
