// SPDX-License-Identifier: MIT
/*
 * ringbuf.c - per-thread ring buffers in one shared memfd.
 *
 * The ideas are the kernel's lockless ring buffer (Documentation/trace/
 * ring-buffer-design.rst): a buffer per writer, so that writing needs no
 * lock; fixed-size pages, so that a reader can tell which part was
 * overwritten under it; overwrite and producer/consumer modes. What differs
 * is the setting: the writer is a thread of the traced process, the reader
 * is another process, and either may die at any moment. So there is no
 * reader page swapped in and out of the ring (a swap would need the writer
 * to cooperate with a cmpxchg on a link the reader owns); instead every
 * position is a 64-bit byte count that only grows, and the reader detects
 * that it has been lapped by comparing positions, seqlock-style.
 *
 * The region (one memfd, mapped MAP_SHARED by the owner and by consumers)
 *
 *   0            +--------------------------------------------+
 *                | struct rb_hdr: magic, version, geometry,   |
 *                | mode, clock id (line 0)                    |
 *                | hw (buffers ever handed out), consumer     |
 *                | lock (a pid), exits, no-buffer drops (1)   |
 *                | clock params for consumers (line 2)        |
 *                +--------------------------------------------+
 *                | struct rb_buf[max_bufs], 256 bytes each:   |
 *                |   owner line:  own (seq|state) tid pid     |
 *                |                comm dropped                |
 *                |   writer line: head tail written           |
 *                |   reader line: rpos ridx lost              |
 *                |   reset line:  reset_pos reset_idx ...     |
 *   hdr_size     +--------------------------------------------+
 *                | buffer 0: buf_size bytes = N pages         |
 *                +--------------------------------------------+
 *                | buffer 1                                   |
 *                +--------------------------------------------+
 *                | ...  (pages never written are never        |
 *                |       allocated: the memfd is sparse)      |
 *                +--------------------------------------------+
 *
 *   a page (4096 bytes; position P is a multiple of 4096, stored at
 *   P % buf_size in its buffer)
 *
 *   +--------------------+--------+---------+--------+---------+-----+-----+
 *   | first_idx tid pid  | rec    | payload | rec    | payload | pad |     |
 *   | comm[16]  (32 B)   | (16 B) |  (8n)   |        |         |ffff |     |
 *   +--------------------+--------+---------+--------+---------+-----+-----+
 *
 * Records never cross pages; a record that does not fit ends the page with
 * a pad marker (len 0xffff) and goes to the next page. first_idx is the
 * index (count of records committed before it in this buffer) of the
 * page's first record; each record also carries the low 32 bits of its own
 * index, which readers check. The page header also names the thread that
 * wrote the page: a buffer passes from thread to thread (recycling) and a
 * new owner always starts on a fresh page, so a page has one writer.
 *
 * Positions, per buffer, all in bytes since the buffer was created:
 *
 *   head     committed: every record before it is complete. Only the
 *            owning thread writes it, with a release store (commit).
 *   tail     the end of the page the writer is in: it is about to write,
 *            or writing, anything below tail. Stored when the writer
 *            enters a page, before the first byte of the page changes.
 *   rpos     the consuming reader's position (+ ridx, the index of the
 *            record there): everything before it has been consumed.
 *
 *   Page P of the ring holds, at any time, the bytes of the latest
 *   position P + k * buf_size the writer entered. A reader that copied a
 *   record of page P knows the copy is intact iff, after the copy, tail <=
 *   P + buf_size: the writer has not entered the page that laps P.
 *
 * Writer (the owning thread only; async-signal-safe, no libc, no lock)
 *
 *   reserve:  busy = 1 (a reserve that finds busy set is a nested write
 *             from a signal handler: dropped, counted)
 *             if the record does not fit in the current page:
 *               discard mode: if the page to enter still holds unread
 *                 bytes (P + PAGE > max(rpos, reset_pos) + buf_size):
 *                 drop, count
 *               pad the current page; tail = P + PAGE; release fence;
 *               write the page header
 *             write the record header, hand out the payload
 *   commit:   written++; head = end of record (release); busy = 0
 *   discard:  busy = 0 (what was written past head is invisible)
 *
 * Memory-ordering pairings
 *
 *   (A) writer: store tail, then fence(release), then page/record stores;
 *       reader: copy page/record, then fence(acquire), then load tail.
 *       If the copy saw any byte of the new lap, the reader sees the new
 *       tail and throws the copy away (seqlock pattern).
 *   (B) writer: record stores, then store-release head (commit);
 *       reader: load-acquire head, then copy: what is below head is whole.
 *   (C) consuming reader: copy a record, then store-release rpos;
 *       discard-mode writer: load-acquire rpos, then overwrite: no page
 *       is reused while the consumer may still be copying from it.
 *   (D) claim: CAS own to CLAIMING, fill tid/pid/comm, store-release own
 *       = ACTIVE; a reaper load-acquires own before reading tid/pid, and
 *       its CAS on own (sequence number included) fails if the owner
 *       changed meanwhile.
 *   (E) reset: load-acquire head, then load written: written >= the index
 *       at head (commit stores written before its release of head).
 *
 *   The reader copies bytes the writer may be changing; like every
 *   seqlock it relies on the copy being plain loads and on the check
 *   after it. On x86 (A) and (B) cost no instruction.
 *
 * How loss is counted, exactly
 *
 *   A record attempt either commits (gets the next index of its buffer) or
 *   is dropped (buffer->dropped, or the region's no-buffer count): discard
 *   mode full, nested write, too long, no buffer. A reader tracks the
 *   index it expects next; records come in index order inside a buffer.
 *   When its position has been overwritten it resynchronizes at the oldest
 *   intact page (tail - buf_size), whose header gives the index of its
 *   first record: the difference is the number of records lost, reported
 *   with the next record returned. Records below a reset (reset_idx) or
 *   below what an earlier consumer consumed (ridx) are skipped silently.
 *   So for one buffer: read + lost + dropped == attempted, whatever
 *   interleaving happens.
 *
 * Buffers and threads
 *
 *   A thread finds its buffer through a TLS cache (region, generation,
 *   buffer); regions are replaced (buffer_size_kb), and a fresh region has
 *   a new generation, so a stale cache never points into a dead region.
 *   Claiming, on the first write: the buffer the thread already owns in
 *   this region (it wrote to another region in between), else a never-used
 *   buffer (hw counter), else an exited one (drained ones first; an
 *   undrained one keeps its unread records: the new owner's writes are
 *   dropped in discard mode, or overwrite them in overwrite mode, counted
 *   either way), else one whose owner died without sd_rb_thread_exit
 *   (tgkill(pid, tid, 0) == -ESRCH). After a failed claim the next ones
 *   are tried at once if some thread exited, else after 0, 1, 3, 7 ... 255
 *   dropped reserves, so that a full region costs little.
 *   Positions and indexes of a buffer continue across owners; the new owner
 *   pads the current page so that its records start on a page of its own.
 *   After fork, the child's thread forgets its buffer (pthread_atfork) and
 *   claims one of its own in the (shared) region.
 *
 * Readers
 *
 *   One consuming reader at a time (its pid in the header; a dead holder's
 *   lock is taken over). It moves rpos/ridx; a reader opened later starts
 *   there. Non-consuming readers keep private positions, start at the
 *   oldest record not consumed and still present, and report losses only
 *   for records lapped while they read. A reader copies what is committed
 *   of a page in one go into a private page, checks the copy once (A), and
 *   hands out records from it. Buffers are merged by timestamp: each
 *   buffer's next record is made ready, the smallest ts returned. The merge
 *   orders what is committed when it looks: a record committed late with an
 *   early timestamp can follow a later one (as with the kernel's per-cpu
 *   buffers). A reader is used by one thread at a time.
 *
 * What the owner must guarantee
 *
 *   - no writer is inside a region when it is destroyed (trace.c waits
 *     with sd_sync_threads());
 *   - a write is not left by longjmp out of reserve..commit (the thread's
 *     later writes would all be dropped as nested), nor does a process
 *     fork inside one.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sd_arch/syscall.h>

#define SD_LOG_PREFIX "ringbuf"
#include "common/compiler.h"
#include "common/log.h"
#include "trace/clock.h"
#include "trace/ringbuf.h"
#include "trace/ringbuf_impl.h"

SD_TLS_IE struct rb_tls sd_rb_self;
static uint64_t rb_generation;
static pthread_once_t rb_once = PTHREAD_ONCE_INIT;

static inline uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

/* ---- the writer ---------------------------------------------------------------------- */

SD_NOTRACE static void rb_drop_nested(struct sd_rb_region *r, struct rb_tls *t)
{
	/* claim sets t->r last: when it matches, t->b is complete */
	if (t->r == r && t->gen == r->gen && t->b)
		__atomic_fetch_add(&t->b->dropped, 1, __ATOMIC_RELAXED);
	else
		__atomic_fetch_add(&r->hdr->nobuf, 1, __ATOMIC_RELAXED);
}

SD_NOTRACE static bool rb_try_own(struct rb_buf *b, uint64_t o)
{
	return __atomic_compare_exchange_n(&b->own, &o, OWN(OWN_SEQ(o) + 1, RB_CLAIMING), false,
					   __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
}

/*
 * Buffer @i is ours (CLAIMING): name it, start a fresh page unless we
 * owned it already (@adopt), publish it.
 */
SD_NOTRACE static void rb_setup(struct sd_rb_region *r, struct rb_tls *t, unsigned int i,
				bool adopt)
{
	struct rb_buf *b = &r->hdr->bufs[i];
	union {
		char c[16];
		uint64_t q[2];
	} comm = {.q = {0, 0}};
	uint64_t head, off;

	sd_raw_syscall2(SYS_prctl, PR_GET_NAME, comm.c);
	WRITE_ONCE(b->tid, sd_raw_gettid());
	WRITE_ONCE(b->pid, (int32_t)sd_raw_syscall0(SYS_getpid));
	WRITE_ONCE(b->comm[0], comm.q[0]);
	WRITE_ONCE(b->comm[1], comm.q[1]);

	t->b = b;
	t->data = r->data + (uint64_t)i * r->buf_size;
	t->page_pos = UINT64_MAX;
	t->fail_skip = 0;
	t->fail_count = 0;
	t->comm_due = 0; /* the first record sets the next read */

	/* the previous owner's last page stays its own: pad it */
	head = READ_ONCE(b->head);
	off = head & RB_PMASK;
	if (off && !adopt) {
		WRITE_ONCE(*(uint16_t *)rb_waddr(r, t, head), RB_PAD);
		STORE_RELEASE(b->head, head - off + RB_PAGE); /* (B) */
	}
	STORE_RELEASE(b->own, OWN(OWN_SEQ(READ_ONCE(b->own)), RB_ACTIVE)); /* (D) */
	barrier();
	t->gen = r->gen;
	barrier();
	t->r = r;
}

/* a buffer's records have all been consumed or forgotten */
SD_NOTRACE static bool rb_drained(struct rb_buf *b)
{
	uint64_t head = LOAD_ACQUIRE(b->head);

	return LOAD_ACQUIRE(b->rpos) >= head || LOAD_ACQUIRE(b->reset_pos) >= head;
}

SD_NOTRACE static bool rb_owner_dead(struct rb_buf *b)
{
	int pid = READ_ONCE(b->pid), tid = READ_ONCE(b->tid);

	if (pid <= 0 || tid <= 0)
		return false;
	return sd_raw_syscall3(SYS_tgkill, pid, tid, 0) == -ESRCH;
}

/* the calling thread owns a buffer of @r its TLS forgot: take it back */
SD_NOTRACE static bool rb_adopt(struct sd_rb_region *r, struct rb_tls *t)
{
	struct rb_hdr *h = r->hdr;
	unsigned int n = LOAD_ACQUIRE(h->hw);
	int tid = sd_raw_gettid(), pid = (int)sd_raw_syscall0(SYS_getpid);

	if (n > r->max_bufs)
		n = r->max_bufs;
	for (unsigned int i = 0; i < n; i++) {
		struct rb_buf *b = &h->bufs[i];
		uint64_t o = LOAD_ACQUIRE(b->own); /* (D) */

		if (OWN_ST(o) == RB_ACTIVE && READ_ONCE(b->tid) == tid &&
		    READ_ONCE(b->pid) == pid && rb_try_own(b, o)) {
			rb_setup(r, t, i, true);
			return true;
		}
	}
	return false;
}

/* give the calling thread a buffer of @r; false when every one is taken */
SD_NOTRACE static bool rb_claim(struct sd_rb_region *r, struct rb_tls *t)
{
	struct rb_hdr *h = r->hdr;
	uint64_t exits = LOAD_ACQUIRE(h->exits);
	unsigned int i, n = r->max_bufs;
	uint64_t o;

	if (t->fail_gen == r->gen && t->fail_skip && exits == t->fail_exits) {
		t->fail_skip--;
		return false;
	}
	/* 0. ours already: the thread wrote to another region in between */
	if (rb_adopt(r, t))
		return true;
	/* 1. a buffer nobody used yet */
	i = READ_ONCE(h->hw);
	while (i < n) {
		if (__atomic_compare_exchange_n(&h->hw, &i, i + 1, false, __ATOMIC_ACQ_REL,
						__ATOMIC_RELAXED)) {
			o = LOAD_ACQUIRE(h->bufs[i].own);
			if (OWN_ST(o) == RB_FREE && rb_try_own(&h->bufs[i], o)) {
				rb_setup(r, t, i, false);
				return true;
			}
			i = READ_ONCE(h->hw);
		}
	}
	/*
	 * 2. a buffer whose thread exited, or died without saying so: drained
	 * ones first (passes 0, 1), then any (2, 3)
	 */
	for (int pass = 0; pass < 4; pass++) {
		for (i = 0; i < n; i++) {
			struct rb_buf *b = &h->bufs[i];

			o = LOAD_ACQUIRE(b->own); /* (D) */
			if (OWN_ST(o) != (pass & 1 ? RB_ACTIVE : RB_EXITED) ||
			    (pass < 2 && !rb_drained(b)) || (pass & 1 && !rb_owner_dead(b)))
				continue;
			if (rb_try_own(b, o)) {
				rb_setup(r, t, i, false);
				return true;
			}
		}
	}
	if (t->fail_gen != r->gen)
		t->fail_count = 0;
	t->fail_gen = r->gen;
	t->fail_exits = exits;
	/* 0, 1, 3, 7 ... reserves: a thread that just died may still be listed */
	t->fail_skip = (uint16_t)((1u << t->fail_count) - 1);
	if (t->fail_skip < RB_CLAIM_BACKOFF - 1)
		t->fail_count++;
	return false;
}

/*
 * The record does not fit after @pos (or @pos starts a page): enter the
 * next page. Returns the record's position in it, 0 to drop.
 */
SD_NOTRACE static uint64_t rb_enter_page(struct sd_rb_region *r, struct rb_tls *t, struct rb_buf *b,
					 uint64_t pos)
{
	uint64_t off = pos & RB_PMASK;
	uint64_t p = off ? pos - off + RB_PAGE : pos;
	struct rb_page *pg;

	if (!r->overwrite) {
		/* (C): the consumer is done with the bytes it left behind */
		uint64_t cons = max_u64(LOAD_ACQUIRE(b->rpos), LOAD_ACQUIRE(b->reset_pos));

		if (p + RB_PAGE > cons + r->buf_size)
			return 0;
	}
	if (off)
		WRITE_ONCE(((struct sd_rb_rec *)rb_waddr(r, t, pos))->len, RB_PAD);
	WRITE_ONCE(b->tail, p + RB_PAGE);
	__atomic_thread_fence(__ATOMIC_RELEASE); /* (A): tail before the page's bytes */
	pg = (struct rb_page *)rb_waddr(r, t, p);
	pg->first_idx = READ_ONCE(b->written);
	pg->tid = READ_ONCE(b->tid);
	pg->pid = READ_ONCE(b->pid);
	pg->comm[0] = READ_ONCE(b->comm[0]);
	pg->comm[1] = READ_ONCE(b->comm[1]);
	return p + RB_PHDR;
}

/*
 * Time to read the thread's name again (a thread renamed after its first
 * record: pthread_setname_np, prctl). True when it changed: the records
 * from here on go to a new page, under the new name.
 */
SD_NOTRACE static bool rb_comm_renamed(struct sd_rb_region *r, struct rb_tls *t, struct rb_buf *b,
				       uint64_t ts, uint64_t old[2])
{
	union {
		char c[16];
		uint64_t q[2];
	} comm = {.q = {0, 0}};
	bool first = !t->comm_due;

	t->comm_due = r->comm_ticks && ts + r->comm_ticks > ts ? ts + r->comm_ticks : UINT64_MAX;
	if (first)
		return false; /* rb_setup has just read it */
	sd_raw_syscall2(SYS_prctl, PR_GET_NAME, comm.c);
	old[0] = READ_ONCE(b->comm[0]);
	old[1] = READ_ONCE(b->comm[1]);
	if (comm.q[0] == old[0] && comm.q[1] == old[1])
		return false;
	WRITE_ONCE(b->comm[0], comm.q[0]);
	WRITE_ONCE(b->comm[1], comm.q[1]);
	t->comm_gen++;
	return true;
}

SD_NOTRACE void *sd_rb_reserve(struct sd_rb_region *r, uint32_t len, uint64_t ts, uint16_t cpu,
			       struct sd_rb_res *res)
{
	struct rb_tls *t = &sd_rb_self;
	struct rb_buf *b;
	uint64_t pos, size, old_comm[2];
	bool renamed;

	if (unlikely(t->busy)) {
		rb_drop_nested(r, t);
		return NULL;
	}
	t->busy = 1;
	barrier(); /* a signal arriving from here on sees busy */

	if (unlikely(t->r != r || t->gen != r->gen)) {
		t->r = NULL; /* until the claim is complete (rb_drop_nested) */
		barrier();
		if (!rb_claim(r, t)) {
			__atomic_fetch_add(&r->hdr->nobuf, 1, __ATOMIC_RELAXED);
			goto out;
		}
	}
	b = t->b;
	if (unlikely(len > SD_RB_MAX_PAYLOAD))
		goto drop;
	size = (RB_RHDR + len + 7) & ~7ULL;
	pos = READ_ONCE(b->head);
	/* renamed: a new page carries the new name (the rest of this one is padding) */
	renamed = unlikely(ts >= t->comm_due) && rb_comm_renamed(r, t, b, ts, old_comm);
	if (unlikely(renamed || !(pos & RB_PMASK) || (pos & RB_PMASK) + size > RB_PAGE)) {
		pos = rb_enter_page(r, t, b, pos);
		if (!pos) {
			if (renamed) {
				/* no new page (full): the old name stays, the next record tries
				 * again */
				WRITE_ONCE(b->comm[0], old_comm[0]);
				WRITE_ONCE(b->comm[1], old_comm[1]);
				t->comm_due = ts ? ts : 1;
			}
			goto drop;
		}
	}
	return rb_place(r, t, b, pos, size, len, ts, cpu, res);

drop:
	__atomic_fetch_add(&b->dropped, 1, __ATOMIC_RELAXED);
out:
	barrier();
	t->busy = 0;
	return NULL;
}

SD_NOTRACE void sd_rb_commit(struct sd_rb_region *r, struct sd_rb_res *res)
{
	sd_rb_commit_inline(res);
}

SD_NOTRACE void sd_rb_discard(struct sd_rb_region *r, struct sd_rb_res *res)
{
	/* nothing below head changed: the bytes written past it are invisible */
	barrier();
	sd_rb_self.busy = 0;
}

SD_NOTRACE void sd_rb_thread_exit(struct sd_rb_region *r)
{
	struct rb_tls *t = &sd_rb_self;
	struct rb_buf *b;

	/* inside a write (a handler on the way out): the write must finish first */
	if (t->busy || !r || t->r != r || t->gen != r->gen)
		return;
	t->busy = 1;
	barrier();
	b = t->b;
	t->r = NULL;
	t->b = NULL;
	STORE_RELEASE(b->own, OWN(OWN_SEQ(READ_ONCE(b->own)), RB_EXITED));
	__atomic_fetch_add(&r->hdr->exits, 1, __ATOMIC_RELEASE);
	barrier();
	t->busy = 0;
}

/* ---- the region ---------------------------------------------------------------------- */

static void rb_atfork_child(void)
{
	/* the child's thread has no buffer yet; the parent's is not its own */
	sd_rb_self.r = NULL;
	sd_rb_self.b = NULL;
	sd_rb_self.gen = 0;
	sd_rb_self.fail_skip = 0;
	sd_rb_self.fail_count = 0;
}

static void rb_once_init(void)
{
	pthread_atfork(NULL, NULL, rb_atfork_child);
}

static int rb_handle(int fd, void *map, size_t size, struct sd_rb_region **out)
{
	struct rb_hdr *h = map;
	struct sd_rb_region *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	pthread_once(&rb_once, rb_once_init);
	r->hdr = h;
	r->data = (char *)map + h->hdr_size;
	r->map_size = size;
	r->buf_size = h->buf_size;
	r->max_bufs = h->max_bufs;
	r->overwrite = h->overwrite;
	r->clock = h->clock;
	r->fd = fd;
	r->gen = __atomic_add_fetch(&rb_generation, 1, __ATOMIC_RELAXED);
	*out = r;
	return 0;
}

static uint64_t rb_hdr_size(unsigned int max_bufs)
{
	return SD_ALIGN_UP(sizeof(struct rb_hdr) + (uint64_t)max_bufs * sizeof(struct rb_buf),
			   RB_PAGE);
}

int sd_rb_region_create(const struct sd_rb_config *cfg, struct sd_rb_region **out)
{
	size_t kb = cfg->buf_kb ? cfg->buf_kb : SD_RB_DEFAULT_KB;
	unsigned int nb = cfg->max_bufs ? cfg->max_bufs : RB_DEFAULT_BUFS;
	uint64_t buf_size, hdr_size, total;
	struct rb_hdr *h;
	void *map;
	int fd, err;

	if (kb > RB_MAX_KB)
		return sd_error(-EINVAL, "buffer of %zu KiB: at most %u", kb, RB_MAX_KB);
	if (nb > RB_MAX_BUFS)
		return sd_error(-EINVAL, "%u buffers: at most %u", nb, RB_MAX_BUFS);
	buf_size = SD_ALIGN_UP((uint64_t)kb * 1024, RB_PAGE);
	if (buf_size < 2 * RB_PAGE)
		buf_size = 2 * RB_PAGE; /* the writer's page and at least one other */
	hdr_size = rb_hdr_size(nb);
	total = hdr_size + (uint64_t)nb * buf_size;
	if (total > (uint64_t)SIZE_MAX / 2 || total > (1ULL << 46))
		return sd_error(-EINVAL, "ring region of %llu bytes is too large",
				(unsigned long long)total);

	fd = memfd_create("sonde-ring", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return sd_error(-errno, "memfd_create: %s", strerror(errno));
	/* sealed at its size: a consumer's mapping can never turn into SIGBUS */
	if (ftruncate(fd, (off_t)total) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		err = sd_error(-errno, "ring region of %llu bytes: %s", (unsigned long long)total,
			       strerror(errno));
		goto err_close;
	}
	map = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		err = sd_error(-errno, "mmap ring region: %s", strerror(errno));
		goto err_close;
	}
	h = map;
	h->version = RB_VERSION;
	h->hdr_size = (uint32_t)hdr_size;
	h->page_size = RB_PAGE;
	h->bufhdr_size = sizeof(struct rb_buf);
	h->buf_size = buf_size;
	h->region_size = total;
	h->max_bufs = nb;
	h->overwrite = cfg->overwrite;
	h->clock = cfg->clock;
	STORE_RELEASE(h->magic, RB_MAGIC);
	err = rb_handle(fd, map, total, out);
	if (err) {
		munmap(map, total);
		goto err_close;
	}
	(*out)->comm_ticks = cfg->comm_ticks;
	return 0;

err_close:
	close(fd);
	return err;
}

int sd_rb_region_attach(int fd, struct sd_rb_region **out)
{
	struct rb_hdr hc;
	struct stat st;
	void *map;
	int err, seals;

	if (fstat(fd, &st) < 0)
		return sd_error(-errno, "ring region: %s", strerror(errno));
	/* a region that can shrink under our mapping is not one of ours */
	seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0 || !(seals & F_SEAL_SHRINK))
		return sd_error(-EINVAL, "not a sonde ring region (not sealed)");
	if ((uint64_t)st.st_size < sizeof(hc) ||
	    pread(fd, &hc, sizeof(hc), 0) != (ssize_t)sizeof(hc))
		return sd_error(-EINVAL, "not a sonde ring region (too small)");
	if (hc.magic != RB_MAGIC)
		return sd_error(-EINVAL, "not a sonde ring region (bad magic)");
	if (hc.version != RB_VERSION)
		return sd_error(-EPROTO, "ring region version %u, expected %u", hc.version,
				RB_VERSION);
	if (hc.page_size != RB_PAGE || hc.bufhdr_size != sizeof(struct rb_buf) || !hc.max_bufs ||
	    hc.max_bufs > RB_MAX_BUFS || hc.hdr_size != rb_hdr_size(hc.max_bufs) ||
	    hc.buf_size < 2 * RB_PAGE || hc.buf_size % RB_PAGE ||
	    hc.buf_size > (uint64_t)RB_MAX_KB * 1024 ||
	    hc.region_size != hc.hdr_size + (uint64_t)hc.max_bufs * hc.buf_size ||
	    hc.region_size > (uint64_t)st.st_size)
		return sd_error(-EINVAL, "ring region header is inconsistent");
	map = mmap(NULL, hc.region_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		return sd_error(-errno, "mmap ring region: %s", strerror(errno));
	/* the mapped header must be the one checked (geometry never changes) */
	if (memcmp(map, &hc, offsetof(struct rb_hdr, hw))) {
		munmap(map, hc.region_size);
		return sd_error(-EINVAL, "ring region header changed");
	}
	fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0) {
		err = sd_error(-errno, "dup: %s", strerror(errno));
		munmap(map, hc.region_size);
		return err;
	}
	err = rb_handle(fd, map, hc.region_size, out);
	if (err) {
		munmap(map, hc.region_size);
		close(fd);
	}
	return err;
}

void sd_rb_region_destroy(struct sd_rb_region *r)
{
	if (!r)
		return;
	munmap(r->hdr, r->map_size);
	close(r->fd);
	free(r);
}

void sd_rb_region_detach(struct sd_rb_region *r)
{
	sd_rb_region_destroy(r);
}

int sd_rb_region_fd(const struct sd_rb_region *r)
{
	return r->fd;
}

void sd_rb_region_config(const struct sd_rb_region *r, struct sd_rb_config *cfg)
{
	cfg->buf_kb = r->buf_size / 1024;
	cfg->max_bufs = r->max_bufs;
	cfg->overwrite = r->overwrite;
	cfg->clock = r->clock;
	cfg->comm_ticks = r->comm_ticks;
}

void sd_rb_set_clock_params(struct sd_rb_region *r, const struct sd_clock_params *p)
{
	STORE_RELEASE(r->hdr->clock_set, 0);
	memcpy(r->hdr->clock_params, p, sizeof(*p));
	STORE_RELEASE(r->hdr->clock_set, 1);
}

int sd_rb_get_clock_params(const struct sd_rb_region *r, struct sd_clock_params *p)
{
	if (!LOAD_ACQUIRE(r->hdr->clock_set))
		return -ENOENT;
	memcpy(p, r->hdr->clock_params, sizeof(*p));
	return 0;
}

/* ---- readers ------------------------------------------------------------------------- */

struct rd_buf {
	uint64_t pos;	/* next page start or record to parse */
	uint64_t exp;	/* index of the record at pos */
	uint64_t floor; /* records below this index are skipped silently */
	uint64_t reset; /* the buffer's reset_idx last seen */
	uint64_t pend;	/* records lost before the next one returned */
	uint64_t page;	/* page whose header tid/comm hold, UINT64_MAX: none */
	uint64_t pub;	/* rpos published (consuming) */
	bool started;
	bool returned; /* a record was returned (non-consuming: losses count now) */
	bool have;     /* the next record is ready in the chunk */
	int tid;
	char comm[17];
	/* a validated copy of bytes [c_lo, c_hi) of page c_page */
	unsigned char *chunk;
	uint64_t c_page;
	uint32_t c_lo, c_hi;
	/* the record ready to return */
	const unsigned char *r_payload;
	uint64_t r_idx, r_end, r_ts, r_lost;
	uint32_t r_len;
	uint16_t r_cpu;
};

struct sd_rb_reader {
	struct sd_rb_region *r;
	bool consuming;
	uint32_t pid; /* the consumer lock we hold */
	struct rd_buf *b;
};

static inline char *rd_addr(struct sd_rb_region *r, unsigned int i, uint64_t pos)
{
	return r->data + (uint64_t)i * r->buf_size + pos % r->buf_size;
}

/* (A): the bytes copied from page @p are those of the lap at @p */
static inline bool rd_intact(struct sd_rb_region *r, struct rb_buf *b, uint64_t p)
{
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	return READ_ONCE(b->tail) <= p + r->buf_size;
}

/* the next record to parse is the first of a page, index @f */
static void rd_first(struct sd_rb_reader *rd, struct rd_buf *rb, uint64_t f)
{
	if (f > rb->exp) {
		uint64_t from = max_u64(rb->exp, rb->floor);

		if (f > from && (rd->consuming || rb->returned))
			rb->pend += f - from;
	} else if (f < rb->exp) {
		/* the page starts before what we read (or was consumed): skip up to exp */
		rb->floor = max_u64(rb->floor, rb->exp);
	}
	rb->exp = f;
}

/* lapped: go on at the oldest page still intact (its header tells the loss) */
static void rd_resync(struct sd_rb_region *r, unsigned int i, struct rd_buf *rb)
{
	uint64_t t = LOAD_ACQUIRE(r->hdr->bufs[i].tail);

	rb->pos = t > r->buf_size ? (t - r->buf_size) & ~RB_PMASK : 0;
	rb->c_page = UINT64_MAX;
}

static void rd_publish(struct sd_rb_reader *rd, unsigned int i, struct rd_buf *rb)
{
	struct rb_buf *b = &rd->r->hdr->bufs[i];

	if (!rd->consuming || rb->pos <= rb->pub)
		return;
	WRITE_ONCE(b->ridx, rb->exp);
	STORE_RELEASE(b->rpos, rb->pos); /* (C) */
	rb->pub = rb->pos;
}

static int rd_start(struct sd_rb_reader *rd, unsigned int i, struct rd_buf *rb)
{
	struct rb_buf *b = &rd->r->hdr->bufs[i];
	uint64_t rpos = LOAD_ACQUIRE(b->rpos);
	uint64_t ridx = READ_ONCE(b->ridx);

	rb->chunk = malloc(RB_PAGE);
	if (!rb->chunk)
		return -ENOMEM;
	/* re-read the page of rpos from its start, skipping what was consumed */
	rb->pos = rpos & ~RB_PMASK;
	rb->reset = LOAD_ACQUIRE(b->reset_idx);
	rb->floor = max_u64(ridx, rb->reset);
	rb->exp = rb->floor;
	rb->pub = rpos;
	rb->page = UINT64_MAX;
	rb->c_page = UINT64_MAX;
	rb->started = true;
	return 0;
}

/*
 * Copy what is committed of the page at pos (from its header if we have
 * not read it yet), check it was not lapped meanwhile. False: it was.
 */
static bool rd_fill(struct sd_rb_reader *rd, unsigned int i, struct rd_buf *rb, uint64_t head)
{
	struct sd_rb_region *r = rd->r;
	uint64_t p = rb->pos & ~RB_PMASK, off = rb->pos & RB_PMASK;
	uint64_t lo = (!off || rb->page != p) ? 0 : off;
	uint64_t hi = head - p < RB_PAGE ? head - p : RB_PAGE;
	const struct rb_page *pg = (const void *)rb->chunk;

	memcpy(rb->chunk + lo, rd_addr(r, i, p + lo), hi - lo);
	if (!rd_intact(r, &r->hdr->bufs[i], p))
		return false;
	rb->c_page = p;
	rb->c_lo = (uint32_t)lo;
	rb->c_hi = (uint32_t)hi;
	if (!lo) {
		rb->page = p;
		rb->tid = pg->tid;
		memcpy(rb->comm, pg->comm, 16);
		rb->comm[16] = 0;
		rd_first(rd, rb, pg->first_idx);
		rb->pos = p + RB_PHDR;
	}
	return true;
}

/* make buffer @i's next record ready: 1, or 0 when it has none now */
static int rd_peek(struct sd_rb_reader *rd, unsigned int i)
{
	struct sd_rb_region *r = rd->r;
	struct rd_buf *rb = &rd->b[i];
	struct rb_buf *b = &r->hdr->bufs[i];

	if (rb->have)
		return 1;
	if (!rb->started && rd_start(rd, i, rb))
		return -ENOMEM;
	for (;;) {
		uint64_t reset = LOAD_ACQUIRE(b->reset_idx);
		uint64_t p = rb->pos & ~RB_PMASK, off = rb->pos & RB_PMASK, size;
		const struct sd_rb_rec *rec;

		if (reset > rb->reset) {
			/* sd_rb_reset: what is below reset_idx is forgotten, not lost */
			rb->reset = reset;
			rb->floor = max_u64(rb->floor, reset);
			if (reset >= rb->exp)
				rb->pend = 0;
			else if (rb->pend > rb->exp - reset)
				rb->pend = rb->exp - reset;
		}
		if (!off || p != rb->c_page || off < rb->c_lo || off >= rb->c_hi) {
			uint64_t head = LOAD_ACQUIRE(b->head); /* (B) */

			if (rb->pos >= head)
				return 0;
			if (!rd_fill(rd, i, rb, head))
				rd_resync(r, i, rb);
			continue;
		}
		rec = (const struct sd_rb_rec *)(rb->chunk + off);
		if (rec->len == RB_PAD) {
			rb->pos = p + RB_PAGE;
			rd_publish(rd, i, rb);
			continue;
		}
		size = (RB_RHDR + rec->len + 7) & ~7ULL;
		if (off + size > rb->c_hi || rec->idx != (uint32_t)rb->exp) {
			/* corrupt (nothing of ours writes this): the page is lost */
			rb->pos = p + RB_PAGE;
			continue;
		}
		rb->pos += size;
		if (rb->exp++ < rb->floor) {
			rd_publish(rd, i, rb);
			continue;
		}
		rb->have = true;
		rb->r_payload = (const unsigned char *)(rec + 1);
		rb->r_idx = rb->exp - 1;
		rb->r_end = rb->pos;
		rb->r_ts = rec->ts;
		rb->r_cpu = rec->cpu;
		rb->r_len = rec->len;
		rb->r_lost = rb->pend;
		rb->pend = 0;
		return 1;
	}
}

int sd_rb_reader_open(struct sd_rb_region *r, bool consuming, struct sd_rb_reader **out)
{
	struct sd_rb_reader *rd = calloc(1, sizeof(*rd));
	uint32_t pid = (uint32_t)getpid();

	if (!rd)
		return -ENOMEM;
	rd->b = calloc(r->max_bufs, sizeof(*rd->b));
	if (!rd->b) {
		free(rd);
		return -ENOMEM;
	}
	rd->r = r;
	rd->consuming = consuming;
	if (consuming) {
		uint32_t cur = LOAD_ACQUIRE(r->hdr->consumer);

		for (;;) {
			if (cur && (cur == pid || kill((pid_t)cur, 0) == 0 || errno != ESRCH)) {
				free(rd->b);
				free(rd);
				return sd_error(-EBUSY,
						"the buffer has a consuming reader (pid %u)", cur);
			}
			/* free, or its holder died: take it */
			if (__atomic_compare_exchange_n(&r->hdr->consumer, &cur, pid, false,
							__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
				break;
		}
		rd->pid = pid;
	}
	*out = rd;
	return 0;
}

void sd_rb_reader_close(struct sd_rb_reader *rd)
{
	if (!rd)
		return;
	if (rd->consuming) {
		uint32_t pid = rd->pid;

		__atomic_compare_exchange_n(&rd->r->hdr->consumer, &pid, 0, false, __ATOMIC_RELEASE,
					    __ATOMIC_RELAXED);
	}
	for (unsigned int i = 0; i < rd->r->max_bufs; i++)
		free(rd->b[i].chunk);
	free(rd->b);
	free(rd);
}

static unsigned int rb_nbufs(const struct sd_rb_region *r)
{
	unsigned int hw = LOAD_ACQUIRE(r->hdr->hw);

	return hw < r->max_bufs ? hw : r->max_bufs;
}

int sd_rb_read(struct sd_rb_reader *rd, struct sd_rb_event *ev)
{
	unsigned int n = rb_nbufs(rd->r);
	struct rd_buf *rb;
	int best = -1;

	for (unsigned int i = 0; i < n; i++) {
		int err = rd_peek(rd, i);

		if (err < 0)
			return err;
		if (err && (best < 0 || rd->b[i].r_ts < rd->b[best].r_ts))
			best = (int)i;
	}
	if (best < 0)
		return 0;
	rb = &rd->b[best];
	rb->have = false;
	rb->returned = true;
	ev->payload = rb->r_payload;
	ev->len = rb->r_len;
	ev->ts = rb->r_ts;
	ev->cpu = rb->r_cpu;
	ev->tid = rb->tid;
	ev->comm = rb->comm;
	ev->lost = rb->r_lost;
	ev->buf = (unsigned int)best;
	if (rd->consuming) {
		struct rb_buf *b = &rd->r->hdr->bufs[best];

		if (rb->r_lost)
			WRITE_ONCE(b->lost, READ_ONCE(b->lost) + rb->r_lost);
		WRITE_ONCE(b->ridx, rb->r_idx + 1);
		STORE_RELEASE(b->rpos, max_u64(rb->r_end, rb->pub)); /* (C) */
		rb->pub = max_u64(rb->r_end, rb->pub);
	}
	return 1;
}

/* ---- statistics and reset -------------------------------------------------------- */

/* the index of the oldest record still in buffer @i */
static uint64_t rb_oldest(struct sd_rb_region *r, unsigned int i)
{
	struct rb_buf *b = &r->hdr->bufs[i];

	for (int tries = 0; tries < 1000; tries++) {
		uint64_t t = LOAD_ACQUIRE(b->tail), o, f;

		if (t <= r->buf_size)
			return 0; /* never lapped */
		o = (t - r->buf_size) & ~RB_PMASK;
		memcpy(&f, rd_addr(r, i, o), sizeof(f)); /* rb_page.first_idx */
		if (rd_intact(r, b, o))
			return f;
	}
	return READ_ONCE(b->written);
}

void sd_rb_stats(struct sd_rb_region *r, struct sd_rb_stats *st)
{
	unsigned int n = rb_nbufs(r);

	memset(st, 0, sizeof(*st));
	for (unsigned int i = 0; i < n; i++) {
		struct rb_buf *b = &r->hdr->bufs[i];
		uint64_t w = LOAD_ACQUIRE(b->written);
		uint64_t reset = LOAD_ACQUIRE(b->reset_idx);
		uint64_t floor = max_u64(READ_ONCE(b->ridx), reset);
		uint64_t old = rb_oldest(r, i), d, l;
		unsigned int s = OWN_ST(LOAD_ACQUIRE(b->own));

		w = max_u64(w, old);
		st->written += w > reset ? w - reset : 0;
		d = READ_ONCE(b->dropped) - READ_ONCE(b->reset_dropped);
		st->dropped += (int64_t)d > 0 ? d : 0;
		l = READ_ONCE(b->lost) - READ_ONCE(b->reset_lost);
		st->overrun += ((int64_t)l > 0 ? l : 0) + (old > floor ? old - floor : 0);
		floor = max_u64(floor, old);
		st->entries += w > floor ? w - floor : 0;
		if (s == RB_ACTIVE || s == RB_CLAIMING)
			st->bufs++;
	}
	{
		uint64_t d = READ_ONCE(r->hdr->nobuf) - READ_ONCE(r->hdr->reset_nobuf);

		st->dropped += (int64_t)d > 0 ? d : 0;
	}
}

static void store_max(uint64_t *p, uint64_t v)
{
	uint64_t cur = READ_ONCE(*p);

	while (cur < v &&
	       !__atomic_compare_exchange_n(p, &cur, v, false, __ATOMIC_RELEASE, __ATOMIC_RELAXED))
		;
}

void sd_rb_reset(struct sd_rb_region *r)
{
	unsigned int n = rb_nbufs(r);

	for (unsigned int i = 0; i < n; i++) {
		struct rb_buf *b = &r->hdr->bufs[i];
		uint64_t head = LOAD_ACQUIRE(b->head); /* (E) */
		uint64_t w = LOAD_ACQUIRE(b->written); /* >= the index at head */

		WRITE_ONCE(b->reset_dropped, READ_ONCE(b->dropped));
		WRITE_ONCE(b->reset_lost, READ_ONCE(b->lost));
		store_max(&b->reset_pos, head);
		store_max(&b->reset_idx, w);
	}
	WRITE_ONCE(r->hdr->reset_nobuf, READ_ONCE(r->hdr->nobuf));
}
