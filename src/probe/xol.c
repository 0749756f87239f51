// SPDX-License-Identifier: MIT
/*
 * xol.c - pages of execute-only-from-here slots near the probed code.
 *
 * A page is mapped read+execute in a free gap of the address space within
 * reach of the probe (found in /proc/self/maps) and is never writable:
 * slots are filled through sd_text_write(). A page with no slot in use is
 * unmapped, so a process that had probes ends with no sonde mappings left.
 * Callers hold the probe mutex.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#include <sd_arch/syscall.h>

#define SD_LOG_PREFIX "xol"
#include "arch/arch.h"
#include "common/compiler.h"
#include "common/log.h"
#include "probe/thread.h"
#include "probe/xol.h"

#define PAGE	       4096UL
#define SLOTS_PER_PAGE (PAGE / SD_XOL_SLOT_SIZE)

struct xol_page {
	struct xol_page *next;
	uint64_t base;
	uint64_t used; /* bitmap of SLOTS_PER_PAGE (64) slots; bytes on a permanent page */
};

static struct xol_page *pages;

static uint64_t distance(uint64_t a, uint64_t b)
{
	return a > b ? a - b : b - a;
}

/* a free page-sized hole as close to @near as /proc/self/maps shows */
/*
 * The hole: /proc/self/maps read with system calls and parsed by hand.
 * This runs while probes are being placed, libc's among them: stdio's
 * functions (fgets, sscanf, strtoul…) and the string ones would each
 * trap on a breakpoint not yet optimized, dozens of times a line.
 */
static bool hex_field(const char **p, const char *end, char stop, uint64_t *v)
{
	uint64_t x = 0;
	const char *q = *p;

	for (; q < end && *q != stop; q++) {
		int d = *q >= '0' && *q <= '9'	 ? *q - '0'
			: *q >= 'a' && *q <= 'f' ? *q - 'a' + 10
						 : -1;

		if (d < 0)
			return false;
		x = x << 4 | (uint64_t)d;
	}
	if (q == end || q == *p)
		return false;
	*p = q + 1;
	*v = x;
	return true;
}

static uint64_t find_hole(uint64_t near)
{
	char buf[8192]; /* a line is at most a path (PATH_MAX) and its fields */
	uint64_t prev_end = 0x10000, best = 0, lo, hi;
	size_t have = 0;
	bool eof = false;
	long fd = sd_raw_syscall3(SYS_openat, AT_FDCWD, "/proc/self/maps", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	for (;;) {
		const char *p = buf, *end, *nl;

		if (!eof && have < sizeof(buf)) {
			long n = sd_raw_syscall3(SYS_read, fd, buf + have, sizeof(buf) - have);

			if (n <= 0)
				eof = true;
			else
				have += (size_t)n;
		}
		end = buf + have;
		for (;;) {
			const char *q = p;

			for (nl = p; nl < end && *nl != '\n'; nl++)
				;
			if (nl == end)
				break;
			if (hex_field(&q, nl, '-', &lo) && hex_field(&q, nl, ' ', &hi)) {
				if (lo > prev_end) {
					/* candidates: the page just below lo, and the page at
					 * prev_end */
					uint64_t cand[2] = {lo - PAGE, prev_end};

					for (int i = 0; i < 2; i++)
						if (distance(cand[i], near) < SD_XOL_NEAR - PAGE &&
						    (!best || distance(cand[i], near) <
								  distance(best, near)))
							best = cand[i];
				}
				if (hi > prev_end)
					prev_end = hi;
			}
			p = nl + 1;
		}
		/* keep the partial line for the next read (no libc: memmove may be probed) */
		have = (size_t)(end - p);
		for (size_t i = 0; i < have; i++)
			buf[i] = p[i];
		if (eof || have == sizeof(buf))
			break;
	}
	sd_raw_syscall1(SYS_close, fd);
	if (!best && prev_end < 0x7ffffffff000UL && distance(prev_end, near) < SD_XOL_NEAR - PAGE)
		best = prev_end;
	return best;
}

/* a page within reach of @near, in a free hole; NULL if there is none */
static void *map_near(uint64_t near)
{
	for (int tries = 0; tries < 4; tries++) {
		uint64_t hole = find_hole(near);
		void *p;

		if (!hole)
			break;
		p = mmap((void *)hole, PAGE, PROT_READ | PROT_EXEC,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		if (p != MAP_FAILED)
			return p;
		/* raced with another mapping: look again */
	}
	return NULL;
}

/*
 * A page next to one of @list's, within reach of @near: where a page of
 * ours is, the space beside it is often free, and trying it costs one mmap
 * where find_hole() reads the whole of /proc/self/maps (placing 2000 probes
 * maps a hundred pages). The kernel merges the neighbours into one mapping.
 */
static void *map_beside(const struct xol_page *list, uint64_t near)
{
	for (const struct xol_page *pg = list; pg; pg = pg->next) {
		uint64_t cand[2] = {pg->base + PAGE, pg->base - PAGE};

		if (distance(pg->base, near) >= SD_XOL_NEAR - PAGE)
			continue;
		for (int i = 0; i < 2; i++) {
			void *p;

			if (distance(cand[i], near) >= SD_XOL_NEAR - PAGE)
				continue;
			p = mmap((void *)cand[i], PAGE, PROT_READ | PROT_EXEC,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
			if (p == (void *)cand[i])
				return p;
			if (p !=
			    MAP_FAILED) /* a kernel without MAP_FIXED_NOREPLACE put it elsewhere */
				munmap(p, PAGE);
		}
		return NULL; /* the newest page in reach only: one or two calls */
	}
	return NULL;
}

/* a new page on @list (slots or permanent) */
static struct xol_page *map_page(struct xol_page **list, uint64_t near)
{
	struct xol_page *pg;
	void *p = map_beside(*list, near);

	if (!p)
		p = map_near(near);

	if (!p) {
		sd_error(-ENOMEM, "no room for an out-of-line slot within 1 GiB of 0x%lx",
			 (unsigned long)near);
		return NULL;
	}
	pg = calloc(1, sizeof(*pg));
	if (!pg) {
		munmap(p, PAGE);
		return NULL;
	}
	pg->base = (uint64_t)p;
	pg->next = *list;
	*list = pg;
	return pg;
}

/* @n consecutive slots within reach of @near */
void *sd_xol_alloc_n(uint64_t near, unsigned int n)
{
	uint64_t want = n >= 64 ? ~0UL : ((1UL << n) - 1);
	struct xol_page *pg;

	if (!n || n > SLOTS_PER_PAGE)
		return NULL;
	for (int pass = 0; pass < 2; pass++) {
		for (pg = pages; pg; pg = pg->next) {
			if (distance(pg->base, near) >= SD_XOL_NEAR - PAGE)
				continue;
			for (unsigned int i = 0; i + n <= SLOTS_PER_PAGE; i++) {
				if (!(pg->used & (want << i))) {
					pg->used |= want << i;
					return (void *)(pg->base + i * SD_XOL_SLOT_SIZE);
				}
			}
		}
		if (pass == 0 && !map_page(&pages, near))
			return NULL;
	}
	return NULL;
}

void *sd_xol_alloc(uint64_t near)
{
	return sd_xol_alloc_n(near, 1);
}

void sd_xol_free_n(void *slot, unsigned int n)
{
	uint64_t a = (uint64_t)slot;

	if (!slot)
		return;
	for (struct xol_page **pp = &pages, *pg; (pg = *pp); pp = &pg->next) {
		uint64_t want = n >= 64 ? ~0UL : ((1UL << n) - 1);

		if (a < pg->base || a >= pg->base + PAGE)
			continue;
		pg->used &= ~(want << ((a - pg->base) / SD_XOL_SLOT_SIZE));
		if (!pg->used) {
			*pp = pg->next;
			munmap((void *)pg->base, PAGE);
			free(pg);
		}
		return;
	}
}

void sd_xol_free(void *slot)
{
	sd_xol_free_n(slot, 1);
}

/*
 * Pages never unmapped, for code a thread may be in while nothing marks it
 * (a detour's way out): bump-allocated (`used` counts bytes), each within
 * reach of @near.
 */
static struct xol_page *perm_pages;

void *sd_xol_alloc_permanent(uint64_t near, size_t len)
{
	struct xol_page *pg;
	void *p;

	len = (len + 15) & ~(size_t)15;
	for (pg = perm_pages; pg; pg = pg->next)
		if (distance(pg->base, near) < SD_XOL_NEAR - PAGE && pg->used + len <= PAGE)
			break;
	if (!pg && !(pg = map_page(&perm_pages, near)))
		return NULL;
	p = (void *)(pg->base + pg->used);
	pg->used += len;
	return p;
}

uint64_t sd_xol_exit_stub(void)
{
	static uint64_t stub;
	uint8_t buf[32];
	void *p;
	int n;

	if (stub)
		return stub;
	/* one page for the life of the process: a thread may be in it at any time */
	p = mmap(NULL, PAGE, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return 0;
	n = sd_arch_xol_exit_stub(sd_thread_active_tls_offset(), sd_thread_resume_tls_offset(),
				  buf);
	if (sd_text_write(p, buf, n)) {
		munmap(p, PAGE);
		return 0;
	}
	stub = (uint64_t)p;
	return stub;
}

void sd_xol_stats(size_t *slots, size_t *npages)
{
	*slots = 0;
	*npages = 0;
	for (struct xol_page *pg = pages; pg; pg = pg->next) {
		(*npages)++;
		*slots += __builtin_popcountl(pg->used);
	}
}
