// SPDX-License-Identifier: MIT
/*
 * audit.c - libsonde-init.so, the start-up tracer's LD_AUDIT module.
 *
 * `sonde ftrace --init` / `sonde graph --init` start the program with this
 * module in LD_AUDIT. When the dynamic loader reports the base namespace
 * consistent (every object loaded and relocated, no constructor run yet;
 * and again after each dlopen), every constructor of every object not yet
 * seen is swapped for a stub: .preinit_array, DT_INIT and .init_array
 * entries, in their own memory, read-only pages opened and closed again.
 * A stub logs the start and the end around the real call (initlog.h).
 *
 * The module asks for no symbol binding (la_objopen returns 0): the
 * program's calls go through the loader exactly as without it. It runs in
 * its own link namespace with its own libc, so it shares nothing with
 * libsonde but the log.
 */
#include <link.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "initcall/initlog.h"

#define API	 __attribute__((visibility("default")))
#define MAX_OBJS 1024
#define STUB_LEN 32

API struct sd_initlog sonde_initlog = {
    .magic = SD_INITLOG_MAGIC,
    .version = SD_INITLOG_VERSION,
};

/* the common part of every stub (init_thunk.S) */
extern const char sd_init_thunk_common[];

struct obj {
	struct link_map *map;
	bool patched;
	bool program; /* the executable, or what it needs (DT_NEEDED, transitively) */
};

static struct obj objs[MAX_OBJS];
static int nobjs;

API unsigned int la_version(unsigned int version)
{
	return version < LAV_CURRENT ? version : LAV_CURRENT;
}

API unsigned int la_objopen(struct link_map *map, Lmid_t lmid, uintptr_t *cookie)
{
	(void)cookie;
	if (lmid == LM_ID_BASE && nobjs < MAX_OBJS)
		objs[nobjs++].map = map;
	return 0; /* no la_symbind: calls bind as they would without us */
}

API unsigned int la_objclose(uintptr_t *cookie)
{
	(void)cookie;
	return 0;
}

/* ---- the stubs' C side ------------------------------------------------------------------ */

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void sd_init_begin(struct sd_initrec *r);
void sd_init_begin(struct sd_initrec *r)
{
	void (*hook)(struct sd_initrec *, int) = sonde_initlog.hook;

	r->seq_start = __atomic_add_fetch(&sonde_initlog.seq, 1, __ATOMIC_RELAXED);
	r->mono_start = mono_ns();
	r->tsc_start = rdtsc();
	__atomic_store_n(&r->state, SD_INIT_RUNNING, __ATOMIC_RELEASE);
	if (hook)
		hook(r, 0);
}

void sd_init_end(struct sd_initrec *r);
void sd_init_end(struct sd_initrec *r)
{
	void (*hook)(struct sd_initrec *, int) = sonde_initlog.hook;

	r->tsc_end = rdtsc();
	r->mono_end = mono_ns();
	r->seq_end = __atomic_add_fetch(&sonde_initlog.seq, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&r->state, SD_INIT_DONE, __ATOMIC_RELEASE);
	if (hook)
		hook(r, 1);
}

/* ---- reading an object ------------------------------------------------------------------- */

/* a dynamic entry's address: the loader has made some absolute already */
static uint64_t dyn_addr(const struct link_map *m, uint64_t v)
{
	return v < m->l_addr ? v + m->l_addr : v;
}

static ElfW(Dyn) * dyn_find(const struct link_map *m, long tag)
{
	for (ElfW(Dyn) *d = m->l_ld; d && d->d_tag != DT_NULL; d++)
		if (d->d_tag == tag)
			return d;
	return NULL;
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

/* the object a DT_NEEDED name designates: by soname, else by file name */
static struct obj *obj_by_needed(const char *name)
{
	for (int i = 0; i < nobjs; i++) {
		const struct link_map *m = objs[i].map;
		ElfW(Dyn) *so = dyn_find(m, DT_SONAME), *str = dyn_find(m, DT_STRTAB);
		const char *soname =
		    so && str ? (const char *)dyn_addr(m, str->d_un.d_ptr) + so->d_un.d_val : NULL;

		if ((soname && !strcmp(soname, name)) || !strcmp(base_name(m->l_name), name))
			return &objs[i];
	}
	return NULL;
}

/* mark what the executable needs, transitively; what only libsonde needs stays unmarked */
static void mark_program(struct obj *o)
{
	const struct link_map *m = o->map;
	ElfW(Dyn) *str = dyn_find(m, DT_STRTAB);

	if (o->program)
		return;
	o->program = true;
	for (ElfW(Dyn) *d = m->l_ld; str && d->d_tag != DT_NULL; d++)
		if (d->d_tag == DT_NEEDED) {
			struct obj *n = obj_by_needed((const char *)dyn_addr(m, str->d_un.d_ptr) +
						      d->d_un.d_val);

			if (n)
				mark_program(n);
		}
}

/* ---- writing read-only memory ------------------------------------------------------------ */

/* the protection of the page at @addr now, from /proc/self/maps */
static int page_prot(uint64_t addr)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[512];
	int prot = -1;

	while (f && fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		char p[5];

		if (sscanf(line, "%lx-%lx %4s", &lo, &hi, p) == 3 && addr >= lo && addr < hi) {
			prot = (p[0] == 'r' ? PROT_READ : 0) | (p[1] == 'w' ? PROT_WRITE : 0) |
			       (p[2] == 'x' ? PROT_EXEC : 0);
			break;
		}
	}
	if (f)
		fclose(f);
	return prot;
}

static int poke(uint64_t *where, uint64_t value)
{
	long pg = sysconf(_SC_PAGESIZE);
	uint64_t page = (uint64_t)(uintptr_t)where & ~(uint64_t)(pg - 1);
	int prot = page_prot((uint64_t)(uintptr_t)where);

	if (prot < 0)
		return -1;
	if (!(prot & PROT_WRITE) && mprotect((void *)page, pg, prot | PROT_WRITE))
		return -1;
	*where = value;
	if (!(prot & PROT_WRITE))
		mprotect((void *)page, pg, prot);
	return 0;
}

/* ---- swapping the constructors ------------------------------------------------------------ */

struct batch {
	uint8_t *stubs;
	int n, cap;
};

/* a stub: movabs $rec, %r11; jmp *common(%rip) */
static uint64_t make_stub(struct batch *b, struct sd_initrec *r)
{
	uint8_t *s = b->stubs + (size_t)b->n++ * STUB_LEN;
	uint64_t rec = (uint64_t)(uintptr_t)r, common = (uint64_t)(uintptr_t)sd_init_thunk_common;

	s[0] = 0x49;
	s[1] = 0xbb;
	memcpy(s + 2, &rec, 8);
	s[10] = 0xff;
	s[11] = 0x25;
	memset(s + 12, 0, 4);
	memcpy(s + 16, &common, 8);
	return (uint64_t)(uintptr_t)s;
}

static struct sd_initrec *new_rec(struct obj *o, uint64_t func, int kind, int index)
{
	struct sd_initrec *r;

	if (sonde_initlog.n >= SD_INITLOG_MAX) {
		sonde_initlog.overflow++;
		return NULL;
	}
	r = &sonde_initlog.rec[sonde_initlog.n];
	memset(r, 0, sizeof(*r));
	r->func = func;
	r->obj_base = o->map->l_addr;
	r->obj = o->map->l_name ? o->map->l_name : "";
	r->kind = kind;
	r->index = index;
	r->not_program = !o->program;
	/* visible to the agent only once whole */
	__atomic_store_n(&sonde_initlog.n, sonde_initlog.n + 1, __ATOMIC_RELEASE);
	return r;
}

static void patch_array(struct batch *b, struct obj *o, long tag, long sztag, int kind)
{
	ElfW(Dyn) *arr = dyn_find(o->map, tag), *sz = dyn_find(o->map, sztag);
	uint64_t *v;
	size_t n;

	if (!arr || !sz)
		return;
	/* the loaders add l_addr to this one themselves when they run the array */
	v = (uint64_t *)(uintptr_t)(arr->d_un.d_ptr + o->map->l_addr);
	n = sz->d_un.d_val / sizeof(*v);
	for (size_t i = 0; i < n && b->n < b->cap; i++) {
		struct sd_initrec *r;

		/* 0 and -1 are the old terminators some toolchains leave */
		if (!v[i] || v[i] == (uint64_t)-1)
			continue;
		r = new_rec(o, v[i], kind, (int)i);
		if (r && poke(&v[i], make_stub(b, r)))
			r->state = SD_INIT_DONE; /* could not swap it: leave it out */
	}
}

static void patch_dt_init(struct batch *b, struct obj *o)
{
	ElfW(Dyn) *d = dyn_find(o->map, DT_INIT);
	struct sd_initrec *r;

	if (!d || b->n >= b->cap)
		return;
	/* the loaders call l_addr + d_ptr */
	r = new_rec(o, o->map->l_addr + d->d_un.d_ptr, SD_INIT_DT_INIT, 0);
	if (r && poke((uint64_t *)&d->d_un.d_ptr, make_stub(b, r) - o->map->l_addr))
		r->state = SD_INIT_DONE;
}

static size_t count_entries(const struct obj *o)
{
	static const long sizes[] = {DT_PREINIT_ARRAYSZ, DT_INIT_ARRAYSZ};
	size_t n = dyn_find(o->map, DT_INIT) ? 1 : 0;

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		ElfW(Dyn) *d = dyn_find(o->map, sizes[i]);

		n += d ? d->d_un.d_val / sizeof(uint64_t) : 0;
	}
	return n;
}

static bool loader(const struct obj *o)
{
	return strstr(base_name(o->map->l_name), "ld-linux") || !o->map->l_ld;
}

static void patch_new_objects(void)
{
	struct batch b = {0};
	size_t want = 0;
	long pg = sysconf(_SC_PAGESIZE);
	size_t len;

	if (nobjs && !objs[0].program)
		mark_program(&objs[0]); /* the first object of the base namespace: the executable */
	for (int i = 0; i < nobjs; i++)
		if (!objs[i].patched && !loader(&objs[i]))
			want += count_entries(&objs[i]);
	if (!want)
		goto done;
	/* each batch its own stubs: earlier ones may be running on another thread */
	len = (want * STUB_LEN + pg - 1) & ~(size_t)(pg - 1);
	b.stubs = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (b.stubs == MAP_FAILED)
		return;
	b.cap = (int)want;
	for (int i = 0; i < nobjs; i++) {
		struct obj *o = &objs[i];

		if (o->patched || loader(o))
			continue;
		if (i == 0)
			patch_array(&b, o, DT_PREINIT_ARRAY, DT_PREINIT_ARRAYSZ,
				    SD_INIT_PREINIT_ARRAY);
		patch_dt_init(&b, o);
		patch_array(&b, o, DT_INIT_ARRAY, DT_INIT_ARRAYSZ, SD_INIT_ARRAY);
	}
	mprotect(b.stubs, len, PROT_READ | PROT_EXEC);
done:
	for (int i = 0; i < nobjs; i++)
		objs[i].patched = true;
}

API void la_activity(uintptr_t *cookie, unsigned int flag)
{
	(void)cookie;
	if (flag == LA_ACT_CONSISTENT)
		patch_new_objects();
}
