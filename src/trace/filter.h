/* SPDX-License-Identifier: MIT */
/*
 * filter.h - event filters in the kernel's grammar (events.rst §5):
 *
 *   expr  := term (('&&' | '||') term)*        && binds tighter than ||
 *   term  := '(' expr ')' | '!' term | field OP value
 *   OP    := == != < <= > >= &                 numeric fields
 *          | == != ~                           string fields (~: glob * ? [..])
 *
 * Fields are the event's (and common_*; plus `common_cpu`). A filter is
 * compiled once against an event's fields and then evaluated on each
 * record before it is committed.
 */
#ifndef SD_TRACE_FILTER_H
#define SD_TRACE_FILTER_H

#include <stdbool.h>
#include <stdint.h>

#include "trace/errlog.h"
#include "trace/event.h"
#include "trace/seq.h"

struct sd_filter;

/*
 * sd_filter_compile - @text against @ev's fields. Returns 0 and *out
 * (NULL for "0" or an empty text: no filter), or a negative errno with @err
 * giving the kernel's message (e.g. "Field not found", "Invalid value (did
 * you forget quotes)?") and the byte position.
 */
int sd_filter_compile(const char *text, const struct sd_event *ev, struct sd_filter **out,
		      struct sd_parse_error *err);
void sd_filter_free(struct sd_filter *f);

/* true when the record passes. Signal-safe: no allocation, no libc. */
bool sd_filter_match(const struct sd_filter *f, const void *entry, uint32_t len, unsigned int cpu);

/*
 * What the event's `filter` file reads: the text, or "none"; after a failed
 * write, the text, a caret line and "parse_error: <msg>".
 */
void sd_filter_print_error(struct sd_seq *s, const char *text, const struct sd_parse_error *err);

#endif
