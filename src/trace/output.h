/* SPDX-License-Identifier: MIT */
/*
 * output.h - trace records as the kernel prints them:
 *
 *              tgt-14215   [000] ..... 1094.652521: ev: (0x559fff5db149) a=0
 *
 * used by the `trace` and `trace_pipe` files in the agent and by the CLI
 * reading the ring buffer directly.
 */
#ifndef SD_TRACE_OUTPUT_H
#define SD_TRACE_OUTPUT_H

#include <stdint.h>

#include "trace/clock.h"
#include "trace/event.h"
#include "trace/ringbuf.h"
#include "trace/seq.h"

struct sd_render {
	struct sd_print_ctx pctx;
	const struct sd_clock_params *clock;
	int clock_id;
	/* the event of an id, or NULL when unknown */
	struct sd_event *(*event)(void *arg, unsigned int id);
	void *event_arg;
};

/* one record: the context columns, "name: ", the event's text, '\n' */
void sd_render_record(struct sd_seq *s, const struct sd_render *r, const struct sd_rb_event *rec);
/* a line's context columns, "comm-pid [cpu] ..... time: ", at @rec's time */
void sd_render_context(struct sd_seq *s, const struct sd_render *r, const struct sd_rb_event *rec);
/* "CPU:%d [LOST %lu EVENTS]\n", before the record that follows a loss */
void sd_render_lost(struct sd_seq *s, unsigned int cpu, uint64_t lost);
/* the `trace` file's header */
void sd_render_header(struct sd_seq *s, const char *tracer, uint64_t in_buffer, uint64_t written,
		      int ncpus);
/* whether clock @id prints as seconds.microseconds */
int sd_clock_in_ns(int id);

#endif
