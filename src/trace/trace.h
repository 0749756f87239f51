/* SPDX-License-Identifier: MIT */
/*
 * trace.h - the process's trace instance (the kernel's global trace_array):
 * its ring buffer, clock, on/off switch and the registry of events.
 *
 * Locking: sd_trace_lock() serializes every change (event creation,
 * enabling, buffer resizing); the event-writing path (sd_trace_reserve /
 * sd_trace_commit) takes no lock and runs in signal handlers.
 */
#ifndef SD_TRACE_TRACE_H
#define SD_TRACE_TRACE_H

#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>

#include "common/compiler.h"
#include "trace/clock.h"
#include "trace/errlog.h"
#include "trace/event.h"
#include "trace/ringbuf.h"

#define SD_EVENT_ID_FIRST 1000 /* every event, dynamic or static tracepoint, from here up */
#define SD_EVENTS_MAX	  4096 /* at once */

struct sd_trace_res {
	struct sd_rb_region *region;
	struct sd_rb_res rb;
	void *entry;
	uint32_t len;
	uint16_t cpu;
};

struct sd_trace {
	struct sd_rb_region *rb; /* replaced whole when buffer_size_kb or overwrite change */
	unsigned int gen;	 /* bumps with each new region */
	int clock;		 /* enum sd_clock_id */
	struct sd_clock_params clock_params;
	size_t buffer_kb;
	unsigned int max_bufs;
	bool overwrite;
	bool tracing_on;

	struct sd_event *events[SD_EVENTS_MAX]; /* in no order; ids grow, never reused */
	unsigned int nevents;
	unsigned int next_id;
};

/* the one instance of this process; created on first use */
struct sd_trace *sd_trace_get(void);
void sd_trace_lock(void);
void sd_trace_unlock(void);
/* whether this thread holds the trace lock */
bool sd_trace_lock_held(void);

/* ---- events ------------------------------------------------------------------- */

/* add @ev (id assigned here); -EEXIST when system/name exists */
int sd_trace_add_event(struct sd_event *ev);
/* remove and free @ev (disabled first); -EBUSY if it cannot be disabled */
int sd_trace_remove_event(struct sd_event *ev);
struct sd_event *sd_trace_find_event(const char *system, const char *name);
struct sd_event *sd_trace_event_by_id(unsigned int id);
/* call @fn for every event, in id order; stops when @fn returns nonzero */
int sd_trace_for_each_event(int (*fn)(struct sd_event *ev, void *arg), void *arg);

int sd_trace_enable_event(struct sd_event *ev, bool on);

/*
 * Events enabled before they exist (set_event_pending, a sonde extension):
 * SYSTEM:NAME globs (NULL: any) that enable every matching event an
 * object loaded later defines, once, when it appears. Under sd_trace_lock.
 */
#define SD_PENDING_MAX 32
int sd_trace_add_pending(const char *system, const char *name);
void sd_trace_clear_pending(void);
/* "system:name\n" for each pattern */
void sd_trace_print_pending(FILE *out);
/* a new event: enabled if a pattern matches it */
void sd_trace_apply_pending(struct sd_event *ev);
/* set or clear (text NULL, "0" or "") an event's filter; errors go to error_log */
int sd_trace_set_filter(struct sd_event *ev, const char *text, struct sd_parse_error *err);

/* ---- buffer settings ------------------------------------------------------------ */

int sd_trace_set_buffer_kb(size_t kb);
int sd_trace_set_overwrite(bool on);
int sd_trace_set_clock(int clock);

/* ---- writing (signal-safe) -------------------------------------------------------- */

/*
 * sd_trace_reserve - room for an entry of @len bytes for @ev; the common
 * header is filled in. NULL when tracing is off, the event disabled, or the
 * ring full (the loss is counted by the ring).
 */
void *sd_trace_reserve(struct sd_event *ev, uint32_t len, struct sd_trace_res *res);
/*
 * the same, stamped @ts (the trace clock's raw time) instead of now: for
 * what happened before sonde could write it (start-up tracing); the
 * thread's buffer must hold nothing later yet
 */
void *sd_trace_reserve_at(struct sd_event *ev, uint32_t len, uint64_t ts, struct sd_trace_res *res);
/* apply the event's filter, then commit or discard */
void sd_trace_commit(struct sd_event *ev, struct sd_trace_res *res);

struct sd_fetch_copy;
/*
 * A fixed-size event whose fields are all copied from one place (a probe's
 * registers): the common header, *@ip at its first field, then @nplan
 * copies. @slow writes it when the common case does not hold.
 */
struct sd_trace_copy {
	struct sd_event *ev;
	const uint64_t *ip;
	const struct sd_fetch_copy *plan;
	int nplan;
	int (*slow)(const struct sd_trace_copy *c, const void *src);
};

/*
 * The event of @c from @src, written whole if the common case allows it,
 * else by @c->slow (a tail call: the caller keeps nothing across). Returns
 * 0, or what @c->slow returns.
 */
int sd_trace_write_copy(const struct sd_trace_copy *c, const void *src);

/*
 * A record of @len bytes (at most SD_RB_MAX_PAYLOAD) built whole at @rec,
 * all but its common header, which this fills: reserve, copy and commit in
 * one call.
 */
void sd_trace_write(struct sd_event *ev, const void *rec, uint32_t len);
/* the same, stamped @ts (a raw time of the trace clock read before) */
void sd_trace_write_at(struct sd_event *ev, uint64_t ts, const void *rec, uint32_t len);

/*
 * Set while this thread's function_graph holds back the entry record of a
 * call that may turn out a leaf (one record then): before any other record
 * of the thread is written, the hook set here writes that entry.
 */
extern SD_TLS_IE uint8_t sd_trace_held __attribute__((visibility("hidden")));
void sd_trace_set_held_flush(void (*flush)(void));

/* the trace clock's raw time now, and the ns between two raw times (signal-safe) */
uint64_t sd_trace_clock_now(void);
/* the trace clock in use (enum sd_clock_id) */
int sd_trace_clock_id(void);
uint64_t sd_trace_clock_delta_ns(uint64_t from, uint64_t to);

/* the thread's name, as $comm and the ring's buffer owner show it */
const char *sd_trace_comm(void);

#endif
