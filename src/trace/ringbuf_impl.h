/* SPDX-License-Identifier: MIT */
/*
 * ringbuf_impl.h - the ring buffer's layout, private to src/trace/, and the
 * writer's fast path, inlined where events are written (trace.c): a record
 * that fits in the page being written, in a buffer the thread holds, costs
 * no call. Everything else (the first record of a thread, a new page, a
 * nested write, a record too big) takes sd_rb_reserve() in ringbuf.c.
 * ringbuf.c describes the layout and the protocol.
 */
#ifndef SONDE_TRACE_RINGBUF_IMPL_H
#define SONDE_TRACE_RINGBUF_IMPL_H

#include <stdbool.h>
#include <stdint.h>

#include "common/compiler.h"
#include "trace/clock.h"
#include "trace/ringbuf.h"

#define RB_MAGIC   0x31474e4952445353ULL /* "SSDRING1" */
#define RB_VERSION 1
#define RB_PAGE	   ((uint64_t)SD_RB_PAGE_SIZE)
#define RB_PMASK   (RB_PAGE - 1)
#define RB_PHDR	   ((uint64_t)sizeof(struct rb_page))
#define RB_RHDR	   ((uint64_t)sizeof(struct sd_rb_rec))
#define RB_PAD	   0xffff

#define RB_DEFAULT_BUFS 64
#define RB_MAX_BUFS	(1u << 16)
#define RB_MAX_KB	(1u << 22) /* 4 GiB per buffer */

/* buffer states, in the low byte of rb_buf.own; the rest counts claims */
enum { RB_FREE = 0, RB_CLAIMING, RB_ACTIVE, RB_EXITED };
#define OWN(seq, st) (((uint64_t)(seq) << 8) | (st))
#define OWN_ST(o)    ((unsigned int)((o)&0xff))
#define OWN_SEQ(o)   ((o) >> 8)

#define RB_CLAIM_BACKOFF 256 /* at most, in reserves, between two failed claims */

struct rb_page {
	uint64_t first_idx; /* index of the first record of the page */
	int32_t tid;	    /* the thread that wrote the page */
	int32_t pid;
	uint64_t comm[2]; /* its name (16 bytes, may lack the NUL) */
};

struct rb_buf {
	/* owner: written on claim and exit */
	uint64_t own;	  /* OWN(claims, state) */
	int32_t tid, pid; /* the current owner */
	uint64_t comm[2];
	uint64_t dropped; /* records refused: atomic adds (nesting) */
	uint64_t pad0[3];
	/* writer: the owning thread only */
	uint64_t head __attribute__((aligned(64))); /* committed position */
	uint64_t tail;				    /* end of the page being written */
	uint64_t written;			    /* records committed (next record's index) */
	uint64_t pad1[5];
	/* the consuming reader */
	uint64_t rpos __attribute__((aligned(64))); /* consumed up to here */
	uint64_t ridx;				    /* index of the first record not consumed */
	uint64_t lost;				    /* records the consumer found overwritten */
	uint64_t pad2[5];
	/* sd_rb_reset: what was forgotten, and the counters' zero */
	uint64_t reset_pos __attribute__((aligned(64)));
	uint64_t reset_idx;
	uint64_t reset_dropped;
	uint64_t reset_lost;
	uint64_t pad3[4];
};

struct rb_hdr {
	uint64_t magic;
	uint32_t version;
	uint32_t hdr_size;    /* offset of buffer 0 */
	uint32_t page_size;   /* RB_PAGE */
	uint32_t bufhdr_size; /* sizeof(struct rb_buf) */
	uint64_t buf_size;
	uint64_t region_size;
	uint32_t max_bufs;
	uint32_t overwrite;
	int32_t clock;
	/* shared state (the geometry above never changes) */
	uint32_t hw __attribute__((aligned(64))); /* buffers ever handed out */
	uint32_t consumer;			  /* pid of the consuming reader, 0: none */
	uint32_t clock_set;			  /* clock_params are valid */
	uint64_t exits;	      /* sd_rb_thread_exit calls: a claim may succeed again */
	uint64_t nobuf;	      /* records dropped without a buffer */
	uint64_t reset_nobuf; /* nobuf at the last reset */
	uint64_t clock_params[8] __attribute__((aligned(64)));
	struct rb_buf bufs[] __attribute__((aligned(64)));
};

_Static_assert(sizeof(struct rb_page) == 32, "page header");
_Static_assert(sizeof(struct sd_rb_rec) == 16, "record header");
_Static_assert(sizeof(struct rb_buf) == 256, "buffer header");
_Static_assert(sizeof(struct sd_clock_params) <= 64, "clock params");
_Static_assert(SD_RB_MAX_PAYLOAD == SD_RB_PAGE_SIZE - 32 - 16, "max payload");

struct sd_rb_region {
	struct rb_hdr *hdr;
	char *data; /* buffer 0 */
	size_t map_size;
	uint64_t buf_size;
	uint64_t gen; /* this handle's generation, for the TLS caches */
	unsigned int max_bufs;
	int fd;
	bool overwrite;
	int clock;
	uint64_t comm_ticks; /* sd_rb_config.comm_ticks */
};

/* what a thread knows of its buffer */
struct rb_tls {
	struct sd_rb_region *r; /* the cache is valid iff r and gen match */
	uint64_t gen;
	struct rb_buf *b;
	char *data;	   /* the buffer's bytes */
	uint64_t page_pos; /* the page page_addr points to */
	char *page_addr;
	uint32_t busy;	     /* inside reserve..commit: a nested write drops */
	uint16_t fail_skip;  /* claim back-off: reserves left to drop without trying */
	uint16_t fail_count; /* consecutive failed claims */
	uint64_t fail_gen;   /* region and exits at the last failure */
	uint64_t fail_exits;
	uint64_t comm_due; /* a record at this time or later reads the name again */
	uint32_t comm_gen; /* counts the renames seen */
};

extern SD_TLS_IE struct rb_tls sd_rb_self __attribute__((visibility("hidden")));

/* the address of position @pos of the thread's buffer; caches its page */
SD_NOTRACE static inline char *rb_waddr(struct sd_rb_region *r, struct rb_tls *t, uint64_t pos)
{
	uint64_t p = pos & ~RB_PMASK;

	if (unlikely(p != t->page_pos)) {
		t->page_addr = t->data + p % r->buf_size;
		t->page_pos = p;
	}
	return t->page_addr + (pos & RB_PMASK);
}

/*
 * The line a few records past @rec, fetched ahead of time: a page is
 * written in order, and a store that misses (the consumer read the line,
 * or the ring is bigger than the cache) holds up every later store. Never
 * past the page: the next one may be another thread's. (Without -mprfchw
 * gcc makes this a read prefetch; prefetchw measured no better.)
 */
SD_NOTRACE static inline void rb_prefetch_ahead(const void *rec, uint64_t pos)
{
	if ((pos & RB_PMASK) + 512 < RB_PAGE)
		__builtin_prefetch((const char *)rec + 512, 1);
}

/* the header of the record at @pos of @b; its payload */
SD_NOTRACE static inline void *rb_rec_head(struct sd_rb_region *r, struct rb_tls *t,
					   const struct rb_buf *b, uint64_t pos, uint32_t len,
					   uint64_t ts, uint16_t cpu)
{
	struct sd_rb_rec *rec = (struct sd_rb_rec *)rb_waddr(r, t, pos);

	rb_prefetch_ahead(rec, pos);
	rec->len = (uint16_t)len;
	rec->cpu = cpu;
	rec->idx = (uint32_t)READ_ONCE(b->written);
	rec->ts = ts;
	return rec + 1;
}

/* the record before @end of @b committed: visible to the consumer; the thread out */
SD_NOTRACE static inline void rb_commit_to(struct rb_buf *b, uint64_t end)
{
	WRITE_ONCE(b->written, READ_ONCE(b->written) + 1); /* (E) */
	STORE_RELEASE(b->head, end);			   /* (B) */
	barrier();
	sd_rb_self.busy = 0;
}

/* the record's header at @pos, and the reservation that commits it */
SD_NOTRACE static inline void *rb_place(struct sd_rb_region *r, struct rb_tls *t, struct rb_buf *b,
					uint64_t pos, uint64_t size, uint32_t len, uint64_t ts,
					uint16_t cpu, struct sd_rb_res *res)
{
	res->payload = rb_rec_head(r, t, b, pos, len, ts, cpu);
	res->len = len;
	res->priv[0] = b;
	res->priv[1] = (void *)(uintptr_t)(pos + size);
	return res->payload;
}

/* sd_rb_reserve() when the record fits the thread's current page */
SD_NOTRACE static inline void *sd_rb_reserve_inline(struct sd_rb_region *r, uint32_t len,
						    uint64_t ts, uint16_t cpu,
						    struct sd_rb_res *res)
{
	struct rb_tls *t = &sd_rb_self;
	struct rb_buf *b;
	uint64_t pos, size;

	if (unlikely(t->busy))
		return sd_rb_reserve(r, len, ts, cpu, res);
	t->busy = 1;
	barrier(); /* a signal arriving from here on sees busy */
	b = t->b;
	size = (RB_RHDR + len + 7) & ~7ULL;
	if (unlikely(t->r != r || t->gen != r->gen || len > SD_RB_MAX_PAYLOAD || ts >= t->comm_due))
		goto slow;
	pos = READ_ONCE(b->head);
	if (unlikely(!(pos & RB_PMASK) || (pos & RB_PMASK) + size > RB_PAGE))
		goto slow;
	return rb_place(r, t, b, pos, size, len, ts, cpu, res);
slow:
	barrier();
	t->busy = 0;
	return sd_rb_reserve(r, len, ts, cpu, res);
}

SD_NOTRACE static inline void sd_rb_commit_inline(struct sd_rb_res *res)
{
	rb_commit_to(res->priv[0], (uint64_t)(uintptr_t)res->priv[1]);
}

#endif
