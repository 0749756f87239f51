/* SPDX-License-Identifier: MIT */
/*
 * recording.h - reading what `sonde record` wrote (tracefile.h): the
 * header, the event descriptions and the process's objects as they come,
 * the records one by one, with what renders them (struct sd_render:
 * events by id, symbols from the object files named in the recording,
 * read now, the clock's parameters).
 */
#ifndef SONDE_RECORDING_H
#define SONDE_RECORDING_H

#include <stdbool.h>
#include <stdio.h>

#include "session.h"
#include "trace/output.h"
#include "trace/ringbuf.h"
#include "tracefile.h"

struct file_syms;

struct recording {
	const char *path;
	FILE *f;
	struct session s; /* the events (no process behind it) */
	struct sd_render r;
	struct file_syms *fs;
	/* from the header */
	char tracer[32]; /* "nop", "function", "function_graph" */
	int ncpus;	 /* 0 when the recording does not say */
	char cmd[256];
	unsigned long records, lost;
	bool damaged; /* ended in a cut or broken chunk */
	/* the current record's chunk */
	struct tf_chunk c;
	struct tf_rec tr;
	bool held; /* c was read ahead (rec_open) and not handled yet */
};

/*
 * rec_open - open @path and read its header. Returns 0, or a nonzero exit
 * status after saying what is wrong (@who prefixes the messages).
 */
int rec_open(struct recording *rc, const char *path, const char *who);
/*
 * rec_next - the next record in *ev (valid until the next call): 1, or 0
 * at the end (rc->damaged tells a recording cut short).
 */
int rec_next(struct recording *rc, struct sd_rb_event *ev);
void rec_close(struct recording *rc);

#endif
