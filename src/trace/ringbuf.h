/* SPDX-License-Identifier: MIT */
/*
 * ringbuf.h - per-thread ring buffers in shared memory.
 *
 * One region (a memfd) holds a header and up to `max_bufs` buffers; each
 * buffer has a single writer, the thread that claimed it, so writing takes
 * no lock. A consumer in another process maps the same memfd and reads
 * while the target runs; what was committed before the target crashed stays
 * readable for as long as the consumer keeps the mapping.
 *
 * Buffers are split in pages; a record never crosses a page. Each page
 * records the index of its first record, so a consumer that finds pages
 * overwritten under it (overwrite mode) knows exactly how many records it
 * lost. In discard mode a full buffer drops new records and counts them.
 * Either way, at the end: records read + lost + dropped == records written
 * (attempted).
 *
 * A record is [struct sd_rb_rec][payload], 8-byte aligned. The payload is
 * opaque here (the trace layer puts an event entry in it).
 *
 * The writer side is async-signal-safe and uses no libc; it never blocks.
 * A write attempted while the same thread is already inside a write (a
 * signal handler interrupting it) is dropped and counted, never corrupts.
 */
#ifndef SD_TRACE_RINGBUF_H
#define SD_TRACE_RINGBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SD_RB_DEFAULT_KB 1408 /* per buffer, the kernel's default buffer_size_kb */

/*
 * The layout in shared memory (ringbuf.c tells the whole of it). Buffers
 * are cut in SD_RB_PAGE_SIZE pages, each starting with a 32-byte header;
 * a record is a struct sd_rb_rec and its payload, padded to 8 bytes.
 */
#define SD_RB_PAGE_SIZE	  4096
#define SD_RB_MAX_PAYLOAD (SD_RB_PAGE_SIZE - 32 - 16)

struct sd_rb_rec {
	uint16_t len; /* payload bytes; 0xffff: the rest of the page is empty */
	uint16_t cpu;
	uint32_t idx; /* the record's index in its buffer, low 32 bits */
	uint64_t ts;
};

struct sd_rb_config {
	size_t buf_kb;	       /* bytes per buffer / 1024 (rounded up to pages) */
	unsigned int max_bufs; /* threads that can hold a buffer at once */
	bool overwrite;	       /* flight recorder (true) or discard when full */
	int clock;	       /* enum sd_clock_id (clock.h), stored for consumers */
	/*
	 * A writing thread's name is read when it claims a buffer, and again
	 * at its first record this many clock units after the last read; a
	 * new name starts a new page (whose header carries it). 0: at claim
	 * only.
	 */
	uint64_t comm_ticks;
};

struct sd_rb_region;
struct sd_clock_params;

/* ---- the owner (inside the traced process) ---------------------------------- */

int sd_rb_region_create(const struct sd_rb_config *cfg, struct sd_rb_region **out);
void sd_rb_region_destroy(struct sd_rb_region *r);
/* the memfd, to pass to a consumer (SCM_RIGHTS) */
int sd_rb_region_fd(const struct sd_rb_region *r);
void sd_rb_region_config(const struct sd_rb_region *r, struct sd_rb_config *cfg);
/*
 * The tsc-to-ns parameters of the region's clock, kept in the region header
 * for consumers: the owner sets them once, before passing the fd; get
 * returns -ENOENT while they were never set.
 */
void sd_rb_set_clock_params(struct sd_rb_region *r, const struct sd_clock_params *p);
int sd_rb_get_clock_params(const struct sd_rb_region *r, struct sd_clock_params *p);

/* ---- the writer (signal-safe, no libc) --------------------------------------- */

struct sd_rb_res {
	void *payload; /* where to write len bytes */
	uint32_t len;
	void *priv[2];
};

/*
 * sd_rb_reserve - room for a record of @len payload bytes in the calling
 * thread's buffer (claimed on first use, with @tid and @comm recorded in it)
 * stamped @ts and @cpu. NULL when the record is dropped: full buffer in
 * discard mode, nested write, no free buffer, or @len too big for a page;
 * the drop is counted.
 */
void *sd_rb_reserve(struct sd_rb_region *r, uint32_t len, uint64_t ts, uint16_t cpu,
		    struct sd_rb_res *res);
/* make the reserved record visible to consumers */
void sd_rb_commit(struct sd_rb_region *r, struct sd_rb_res *res);
/* give the reservation back (a filter rejected the record): not counted */
void sd_rb_discard(struct sd_rb_region *r, struct sd_rb_res *res);

/* the thread is exiting: its buffer can be reused once drained */
void sd_rb_thread_exit(struct sd_rb_region *r);

/* ---- consumers (any process) ------------------------------------------------ */

/* map a region from its memfd (read+write: consumers publish their position) */
int sd_rb_region_attach(int fd, struct sd_rb_region **out);
void sd_rb_region_detach(struct sd_rb_region *r);

struct sd_rb_event {
	const void *payload; /* valid until the next call on the reader */
	uint32_t len;
	uint64_t ts;
	uint16_t cpu;
	int tid;
	const char *comm; /* the thread's name when it claimed its buffer */
	uint64_t lost;	  /* records of this buffer lost just before this one */
	unsigned int buf; /* buffer index */
};

struct sd_rb_reader;

/*
 * sd_rb_reader_open - a reader over every buffer of @r, merging them by
 * timestamp. A consuming reader (trace_pipe) moves the buffers' shared read
 * positions, so records it returned are not returned again to anyone; only
 * one consuming reader may exist at a time (-EBUSY otherwise). A
 * non-consuming reader (the `trace` file) starts at the oldest record still
 * present and leaves the positions alone.
 */
int sd_rb_reader_open(struct sd_rb_region *r, bool consuming, struct sd_rb_reader **out);
void sd_rb_reader_close(struct sd_rb_reader *rd);
/* 1 and *ev: a record; 0: nothing more for now; negative errno on error */
int sd_rb_read(struct sd_rb_reader *rd, struct sd_rb_event *ev);

struct sd_rb_stats {
	uint64_t written;  /* records committed */
	uint64_t dropped;  /* records refused by writers (discard mode, nesting, no buffer) */
	uint64_t overrun;  /* records overwritten before a consumer read them */
	uint64_t entries;  /* records currently readable */
	unsigned int bufs; /* buffers claimed */
};

void sd_rb_stats(struct sd_rb_region *r, struct sd_rb_stats *st);
/* forget every record (writing the `trace` file with O_TRUNC) */
void sd_rb_reset(struct sd_rb_region *r);

#endif
