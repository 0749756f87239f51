// SPDX-License-Identifier: MIT
/*
 * trace.c - the trace instance: events by id and name, the ring buffer
 * they write to, and the lock-free write path.
 *
 * Events are published in an array indexed by id - SD_EVENT_ID_FIRST; a
 * removed event's slot is cleared and its memory freed only after
 * sd_sync_threads(), so a handler that looked it up keeps a valid pointer
 * until it leaves the probe path. The ring region is replaced the same way.
 */
#include <errno.h>
#include <fnmatch.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <sd_arch/syscall.h>

#define SD_LOG_PREFIX "trace"
#include "common/compiler.h"
#include "common/log.h"
#include "probe/thread.h"
#include "trace/filter.h"
#include "trace/probe_def.h"
#include "trace/ringbuf_impl.h"
#include "trace/trace.h"

static struct sd_trace trace;
static pthread_mutex_t trace_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t trace_once = PTHREAD_ONCE_INIT;
static int init_err;

/* the thread's id and name, cached for the write path */
static SD_TLS_IE int cached_tid;
static SD_TLS_IE char cached_comm[16];
static SD_TLS_IE uint32_t cached_comm_gen; /* sd_rb_self.comm_gen when read */

/* the child of fork() is another thread: the cached id was its parent's */
static void trace_atfork_child(void)
{
	cached_tid = 0;
}

/*
 * 1 ms in units of clock @id: how often a thread that writes reads its
 * name again, so that a rename shows (the kernel's comm is the current
 * one). A read is a system call: 1 ms makes it a few in 10^4 of the time.
 */
static uint64_t comm_ticks(int id)
{
	switch (id) {
	case SD_CLOCK_LOCAL:
	case SD_CLOCK_GLOBAL:
	case SD_CLOCK_PERF:
	case SD_CLOCK_X86_TSC:
		return trace.clock_params.tsc_hz ? trace.clock_params.tsc_hz / 1000 : 1000000;
	case SD_CLOCK_COUNTER:
		return 4096; /* records, of every thread */
	default:
		return 1000000; /* ns */
	}
}

static void trace_init(void)
{
	struct sd_rb_config cfg = {
	    .buf_kb = SD_RB_DEFAULT_KB,
	    .max_bufs = 256,
	    .overwrite = true,
	    .clock = SD_CLOCK_LOCAL,
	};

	trace.clock = SD_CLOCK_LOCAL;
	sd_clock_init(&trace.clock_params);
	cfg.comm_ticks = comm_ticks(cfg.clock);
	trace.buffer_kb = cfg.buf_kb;
	trace.max_bufs = cfg.max_bufs;
	trace.overwrite = cfg.overwrite;
	trace.tracing_on = true;
	trace.next_id = SD_EVENT_ID_FIRST;
	init_err = sd_rb_region_create(&cfg, &trace.rb);
	pthread_atfork(NULL, NULL, trace_atfork_child);
	if (init_err)
		sd_warn("cannot create the trace buffer: %s", sonde_last_error());
}

struct sd_trace *sd_trace_get(void)
{
	pthread_once(&trace_once, trace_init);
	return init_err ? NULL : &trace;
}

static SD_TLS_IE bool trace_lock_mine;

void sd_trace_lock(void)
{
	sd_enter_sonde();
	pthread_mutex_lock(&trace_mutex);
	trace_lock_mine = true;
}

void sd_trace_unlock(void)
{
	trace_lock_mine = false;
	pthread_mutex_unlock(&trace_mutex);
	sd_leave_sonde();
}

bool sd_trace_lock_held(void)
{
	return trace_lock_mine;
}

/* ---- events ---------------------------------------------------------------------- */

int sd_trace_add_event(struct sd_event *ev)
{
	unsigned int slot;

	if (!sd_trace_get())
		return -ENOMEM;
	if (sd_trace_find_event(ev->system, ev->name))
		return -EEXIST;
	for (slot = 0; slot < SD_EVENTS_MAX && trace.events[slot]; slot++)
		;
	if (slot == SD_EVENTS_MAX || trace.next_id > 0xffff)
		return sd_error(-ENOSPC, "too many events (%d)", SD_EVENTS_MAX);
	/*
	 * Ids are not reused: a consumer may still hold records of a removed
	 * event, and must never read them with a newer event's format.
	 */
	ev->id = trace.next_id++;
	STORE_RELEASE(trace.events[slot], ev);
	trace.nevents++;
	return 0;
}

static int slot_of(const struct sd_event *ev)
{
	for (int i = 0; i < SD_EVENTS_MAX; i++)
		if (trace.events[i] == ev)
			return i;
	return -1;
}

int sd_trace_remove_event(struct sd_event *ev)
{
	int slot = slot_of(ev);
	int err;

	if (slot < 0)
		return -ENOENT;
	if (ev->enabled) {
		err = sd_trace_enable_event(ev, false);
		if (err)
			return err;
	}
	STORE_RELEASE(trace.events[slot], NULL);
	trace.nevents--;
	sd_sync_threads();
	sd_filter_free(ev->filter);
	free(ev->filter_text);
	free(ev->filter_error);
	if (ev->ops && ev->ops->free)
		ev->ops->free(ev);
	return 0;
}

struct sd_event *sd_trace_find_event(const char *system, const char *name)
{
	for (unsigned int i = 0; i < SD_EVENTS_MAX; i++) {
		struct sd_event *ev = trace.events[i];

		if (ev && !strcmp(ev->name, name) && (!system || !strcmp(ev->system, system)))
			return ev;
	}
	return NULL;
}

struct sd_event *sd_trace_event_by_id(unsigned int id)
{
	for (unsigned int i = 0; i < SD_EVENTS_MAX; i++) {
		struct sd_event *ev = LOAD_ACQUIRE(trace.events[i]);

		if (ev && ev->id == id)
			return ev;
	}
	return NULL;
}

static int by_id(const void *a, const void *b)
{
	const struct sd_event *x = *(struct sd_event *const *)a, *y = *(struct sd_event *const *)b;

	return (x->id > y->id) - (x->id < y->id);
}

int sd_trace_for_each_event(int (*fn)(struct sd_event *ev, void *arg), void *arg)
{
	struct sd_event *list[SD_EVENTS_MAX];
	unsigned int n = 0;
	int r = 0;

	for (unsigned int i = 0; i < SD_EVENTS_MAX; i++)
		if (trace.events[i])
			list[n++] = trace.events[i];
	qsort(list, n, sizeof(list[0]), by_id);
	for (unsigned int i = 0; i < n && !r; i++)
		r = fn(list[i], arg);
	return r;
}

int sd_trace_enable_event(struct sd_event *ev, bool on)
{
	int err = 0;

	if (ev->enabled == on)
		return 0;
	if (on) {
		/* visible to handlers before the probe can fire */
		STORE_RELEASE(ev->enabled, true);
		if (ev->ops && ev->ops->enable)
			err = ev->ops->enable(ev, true);
		if (err)
			STORE_RELEASE(ev->enabled, false);
	} else {
		if (ev->ops && ev->ops->enable)
			err = ev->ops->enable(ev, false);
		if (!err)
			STORE_RELEASE(ev->enabled, false);
	}
	return err;
}

/* ---- events enabled before they exist ------------------------------------------------- */

static struct pending {
	char system[SD_EVENT_NAME_MAX], name[SD_EVENT_NAME_MAX]; /* "": any */
} pending[SD_PENDING_MAX];
static int npending;

int sd_trace_add_pending(const char *system, const char *name)
{
	struct pending *p;

	if (npending == SD_PENDING_MAX)
		return sd_error(-ENOSPC, "at most %d pending event patterns", SD_PENDING_MAX);
	if ((system && strlen(system) >= SD_EVENT_NAME_MAX) ||
	    (name && strlen(name) >= SD_EVENT_NAME_MAX))
		return sd_error(-EINVAL, "event pattern too long");
	p = &pending[npending++];
	snprintf(p->system, sizeof(p->system), "%s", system ? system : "");
	snprintf(p->name, sizeof(p->name), "%s", name ? name : "");
	return 0;
}

void sd_trace_clear_pending(void)
{
	npending = 0;
}

void sd_trace_print_pending(FILE *out)
{
	for (int i = 0; i < npending; i++)
		fprintf(out, "%s:%s\n", pending[i].system[0] ? pending[i].system : "*",
			pending[i].name[0] ? pending[i].name : "*");
}

void sd_trace_apply_pending(struct sd_event *ev)
{
	if (ev->internal || ev->enabled)
		return;
	for (int i = 0; i < npending; i++) {
		const struct pending *p = &pending[i];

		if ((!p->system[0] || !fnmatch(p->system, ev->system, 0)) &&
		    (!p->name[0] || !fnmatch(p->name, ev->name, 0))) {
			if (sd_trace_enable_event(ev, true))
				sd_warn("%s:%s: cannot enable: %s", ev->system, ev->name,
					sonde_last_error());
			return;
		}
	}
}

int sd_trace_set_filter(struct sd_event *ev, const char *text, struct sd_parse_error *err)
{
	struct sd_filter *f = NULL, *old;
	char *copy = NULL;
	int r;

	if (text && *text && strcmp(text, "0")) {
		r = sd_filter_compile(text, ev, &f, err);
		if (r) {
			/* as the kernel: a rejected filter leaves the event unfiltered */
			old = ev->filter;
			STORE_RELEASE(ev->filter, NULL);
			free(ev->filter_text);
			ev->filter_text = NULL;
			if (old) {
				sd_sync_threads();
				sd_filter_free(old);
			}
			return r;
		}
		copy = strdup(text);
		if (!copy) {
			sd_filter_free(f);
			return -ENOMEM;
		}
	}
	old = ev->filter;
	STORE_RELEASE(ev->filter, f);
	free(ev->filter_text);
	ev->filter_text = copy;
	if (old) {
		sd_sync_threads();
		sd_filter_free(old);
	}
	return 0;
}

/* ---- buffer settings ------------------------------------------------------------- */

static int new_region(size_t kb, bool overwrite, int clock)
{
	struct sd_rb_config cfg = {.buf_kb = kb,
				   .max_bufs = trace.max_bufs,
				   .overwrite = overwrite,
				   .clock = clock,
				   .comm_ticks = comm_ticks(clock)};
	struct sd_rb_region *r, *old = trace.rb;
	int err;

	err = sd_rb_region_create(&cfg, &r);
	if (err)
		return err;
	STORE_RELEASE(trace.rb, r);
	trace.gen++;
	trace.buffer_kb = kb;
	trace.overwrite = overwrite;
	trace.clock = clock;
	/* no writer may still be inside the old region */
	sd_sync_threads();
	sd_rb_region_destroy(old);
	return 0;
}

int sd_trace_set_buffer_kb(size_t kb)
{
	if (!kb || kb > (1UL << 20))
		return sd_error(-EINVAL, "buffer_size_kb must be between 1 and %lu", 1UL << 20);
	if (kb == trace.buffer_kb)
		return 0;
	return new_region(kb, trace.overwrite, trace.clock);
}

int sd_trace_set_overwrite(bool on)
{
	if (on == trace.overwrite)
		return 0;
	return new_region(trace.buffer_kb, on, trace.clock);
}

int sd_trace_set_clock(int clock)
{
	if (clock < 0 || clock >= SD_CLOCK_NR)
		return -EINVAL;
	if (clock == trace.clock)
		return 0;
	/* like the kernel, a new clock starts a new buffer: old stamps would not compare */
	return new_region(trace.buffer_kb, trace.overwrite, clock);
}

/* ---- writing -------------------------------------------------------------------------- */

SD_NOTRACE uint64_t sd_trace_clock_now(void)
{
	return sd_clock_read_inline(READ_ONCE(trace.clock), NULL);
}

SD_NOTRACE uint64_t sd_trace_clock_delta_ns(uint64_t from, uint64_t to)
{
	int id = READ_ONCE(trace.clock);

	return sd_clock_to_ns(&trace.clock_params, id, to) -
	       sd_clock_to_ns(&trace.clock_params, id, from);
}

SD_NOTRACE const char *sd_trace_comm(void)
{
	uint32_t gen = READ_ONCE(sd_rb_self.comm_gen); /* the ring saw a rename */

	if (unlikely(!cached_comm[0] || cached_comm_gen != gen)) {
		sd_raw_syscall2(SYS_prctl, PR_GET_NAME, cached_comm);
		cached_comm_gen = gen;
	}
	return cached_comm;
}

SD_TLS_IE uint8_t sd_trace_held;
static void (*held_flush)(void);

void sd_trace_set_held_flush(void (*flush)(void))
{
	STORE_RELEASE(held_flush, flush);
}

/* the common header: type, flags, preempt count, pid */
SD_NOTRACE static inline void entry_common(void *entry, const struct sd_event *ev)
{
	*(uint16_t *)entry = (uint16_t)ev->id;
	*(uint16_t *)((char *)entry + 2) = 0;
	*(int32_t *)((char *)entry + 4) = cached_tid;
}

SD_NOTRACE static inline __attribute__((always_inline)) void *
reserve(struct sd_event *ev, uint32_t len, const uint64_t *at, struct sd_trace_res *res)
{
	struct sd_rb_region *rb;
	uint64_t ts;
	uint16_t cpu;
	void *entry;

	if (!READ_ONCE(trace.tracing_on) || !READ_ONCE(ev->enabled))
		return NULL;
	/* a held function_graph entry goes first: the records keep their order */
	if (unlikely(sd_trace_held)) {
		void (*flush)(void) = LOAD_ACQUIRE(held_flush);

		if (flush)
			flush();
	}
	rb = LOAD_ACQUIRE(trace.rb);
	if (!rb)
		return NULL;
	if (unlikely(!cached_tid))
		cached_tid = sd_raw_gettid();
	if (at) {
		ts = *at;
		if (!sd_clock_rseq_cpu(&cpu))
			sd_clock_cpu(&cpu);
	} else {
		ts = sd_clock_read_inline(READ_ONCE(trace.clock), &cpu);
	}
	entry = sd_rb_reserve_inline(rb, len, ts, cpu, &res->rb);
	if (!entry)
		return NULL;
	res->region = rb;
	res->entry = entry;
	res->len = len;
	res->cpu = cpu;
	entry_common(entry, ev);
	return entry;
}

SD_NOTRACE SD_HOT void *sd_trace_reserve(struct sd_event *ev, uint32_t len,
					 struct sd_trace_res *res)
{
	return reserve(ev, len, NULL, res);
}

SD_NOTRACE void *sd_trace_reserve_at(struct sd_event *ev, uint32_t len, uint64_t ts,
				     struct sd_trace_res *res)
{
	return reserve(ev, len, &ts, res);
}

/*
 * The fast path's reservation for a fixed-size event of @len bytes, for
 * the writers below: FAST_OK with the entry (common header filled) and
 * where its record ends, the thread's ring marked busy until
 * rb_commit_to(); FAST_OFF when nothing is to be written; FAST_SLOW,
 * having taken nothing, when the general path must write it: a filter, a
 * held function_graph entry, a clock other than the TSC, no rseq cpu, the
 * thread's first record, a new page, a nested write, the thread's name due
 * again. It is sd_rb_reserve_inline() with reserve()'s checks.
 */
enum { FAST_OFF, FAST_SLOW, FAST_OK };

SD_NOTRACE static inline __attribute__((always_inline)) int
fast_reserve(struct sd_event *ev, uint32_t len, const uint64_t *at, char **entryp,
	     struct rb_buf **bp, uint64_t *endp)
{
	struct rb_tls *t = &sd_rb_self;
	struct sd_rb_region *rb = LOAD_ACQUIRE(trace.rb);
	int clock = READ_ONCE(trace.clock);
	struct rb_buf *b;
	uint64_t ts, pos, size;
	uint16_t cpu;

	if (!READ_ONCE(trace.tracing_on) || !READ_ONCE(ev->enabled))
		return FAST_OFF;
	if (unlikely(!rb || t->busy || sd_trace_held || LOAD_ACQUIRE(ev->filter) || !cached_tid ||
		     !sd_clock_is_tsc(clock) || !sd_clock_rseq_cpu(&cpu)))
		return FAST_SLOW;
	t->busy = 1;
	barrier(); /* a signal arriving from here on sees busy */
	/* no buffer of this region yet (none to be had, or a new region): t->b is not ours */
	if (unlikely(t->r != rb || t->gen != rb->gen))
		goto decline;
	b = t->b;
	size = (RB_RHDR + len + 7) & ~7ULL;
	ts = at ? *at : sd_arch_tsc();
	pos = READ_ONCE(b->head);
	if (unlikely(ts >= t->comm_due || !(pos & RB_PMASK) || (pos & RB_PMASK) + size > RB_PAGE))
		goto decline;
	*entryp = rb_rec_head(rb, t, b, pos, len, ts, cpu);
	entry_common(*entryp, ev);
	*bp = b;
	*endp = pos + size;
	return FAST_OK;
decline:
	barrier();
	t->busy = 0;
	return FAST_SLOW;
}

/*
 * The whole of a fixed-size event whose fields are copied from @src (a
 * probe's registers), in one function: the common case of a probe event
 * costs no reserve/commit pair, no handle between them, no filter call.
 * What fast_reserve() declines goes to c->slow.
 */
SD_NOTRACE SD_HOT int sd_trace_write_copy(const struct sd_trace_copy *c, const void *src)
{
	struct rb_buf *b;
	uint64_t end;
	char *entry;

	switch (fast_reserve(c->ev, c->ev->fixed_size, NULL, &entry, &b, &end)) {
	case FAST_OFF:
		return 0;
	case FAST_SLOW:
		return c->slow(c, src);
	}
	memcpy(entry + SD_ENTRY_COMMON_SIZE, c->ip, 8);
	sd_fetch_copy_run(entry, src, c->plan, c->nplan);
	rb_commit_to(b, end);
	return 0;
}

/*
 * memcpy() without libc's: nothing on the write path may call what a user
 * can probe (t2001), and a record is a few words
 */
SD_NOTRACE static inline void copy_small(char *to, const char *from, size_t n)
{
	for (; n >= 8; n -= 8, to += 8, from += 8)
		__builtin_memcpy(to, from, 8);
	if (n & 4) {
		__builtin_memcpy(to, from, 4);
		to += 4;
		from += 4;
	}
	if (n & 2) {
		__builtin_memcpy(to, from, 2);
		to += 2;
		from += 2;
	}
	if (n & 1)
		*to = *from;
}

SD_NOTRACE static inline __attribute__((always_inline)) void
write_rec(struct sd_event *ev, const uint64_t *at, const void *rec, uint32_t len)
{
	struct sd_trace_res res;
	struct rb_buf *b;
	uint64_t end;
	char *entry;

	switch (fast_reserve(ev, len, at, &entry, &b, &end)) {
	case FAST_OFF:
		return;
	case FAST_OK:
		copy_small(entry + SD_ENTRY_COMMON_SIZE, (const char *)rec + SD_ENTRY_COMMON_SIZE,
			   len - SD_ENTRY_COMMON_SIZE);
		rb_commit_to(b, end);
		return;
	}
	entry = reserve(ev, len, at, &res);
	if (!entry)
		return;
	copy_small(entry + SD_ENTRY_COMMON_SIZE, (const char *)rec + SD_ENTRY_COMMON_SIZE,
		   len - SD_ENTRY_COMMON_SIZE);
	sd_trace_commit(ev, &res);
}

/*
 * A record of @len bytes built whole by its writer (@rec; its common header
 * is filled here), in one function; the general path when fast_reserve()
 * declines.
 */
SD_NOTRACE SD_HOT void sd_trace_write(struct sd_event *ev, const void *rec, uint32_t len)
{
	write_rec(ev, NULL, rec, len);
}

SD_NOTRACE SD_HOT void sd_trace_write_at(struct sd_event *ev, uint64_t ts, const void *rec,
					 uint32_t len)
{
	write_rec(ev, &ts, rec, len);
}

int sd_trace_clock_id(void)
{
	return READ_ONCE(trace.clock);
}

SD_NOTRACE SD_HOT void sd_trace_commit(struct sd_event *ev, struct sd_trace_res *res)
{
	struct sd_filter *f = LOAD_ACQUIRE(ev->filter);

	if (f && !sd_filter_match(f, res->entry, res->len, res->cpu))
		sd_rb_discard(res->region, &res->rb);
	else
		sd_rb_commit_inline(&res->rb);
}
