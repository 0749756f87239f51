// SPDX-License-Identifier: MIT
/*
 * optprobe.c - breakpoint probes made into jumps (the kernel's optprobes).
 *
 * A probe starts as an int3. If every probe at the site has no
 * post_handler and the instructions under it can move (optimize.c says
 * which), the site gets a detour and its breakpoint becomes a jump:
 *
 *  1. build the detour and publish it: from now on an int3 hit resumes in
 *     the detour's copy of the whole region, never inside the region;
 *  2. sd_sync_threads(): every thread that took the int3 earlier is out of
 *     the old slot;
 *  3. make sure no thread sits between two instructions of the region
 *     (threads_ip.c); otherwise try later;
 *  4. write the jump with the text_poke protocol (the int3 is already the
 *     first byte).
 *
 * Undoing it writes the original bytes back behind an int3, waits for the
 * handlers (sd_sync_threads) and for any thread still in the detour's
 * first instructions (which run before a thread is marked), then frees it.
 *
 * A hit enters sd_optprobe_handler() on the thread's own stack, not in a
 * signal handler: it is nanoseconds, not microseconds. As in the kernel,
 * handlers of an optimized probe cannot change where execution continues
 * (regs->ip and regs->sp are ignored); other registers they change are
 * restored changed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/mman.h>
#include <time.h>

#define SD_LOG_PREFIX "optprobe"
#include "common/compiler.h"
#include "common/log.h"
#include "common/safe_mem.h"
#include "probe/probe.h"
#include "probe/hits.h"
#include "probe/thread.h"
#include "probe/xol.h"
#include "sym/sym.h"

#define OPT_MAX (1u << 16)

bool sd_opt_allowed = true;
const char sd_opt_why_inside[] = "another probe sits inside the jump's bytes";

/* SONDE_NOOPT=1 in the environment: breakpoints only, as debug.kprobes_optimization=0 */
/* before the agent's constructor, which may start a tracer (thread.c) */
__attribute__((constructor(101))) static void opt_env(void)
{
	const char *e = getenv("SONDE_NOOPT");

	if (e && *e && strcmp(e, "0"))
		sd_opt_allowed = false;
}

extern const char __stop_sonde_text[] __attribute__((weak));

/*
 * index -> what the handler needs, read without locks. A retired detour
 * keeps its slot (site NULL, layout kept) until the optimizer frees both:
 * a thread may still be on its way from the jump to the handler.
 */
struct opt_slot {
	struct sd_site *site;
	struct sd_opt_layout layout;
	uint8_t *detour;
	bool used;
	bool lite; /* its trampoline saves no vector state */
	/*
	 * the common case, decided when the site's probes change: its one
	 * probe, enabled and able to run on this detour; else NULL
	 */
	struct sonde_kprobe *fast;
};

static struct opt_slot *opt_table;
static uint32_t opt_free_hint;

static int index_alloc(uint32_t *out)
{
	if (!opt_table) {
		void *p = mmap(NULL, OPT_MAX * sizeof(*opt_table), PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

		if (p == MAP_FAILED)
			return -ENOMEM;
		opt_table = p;
	}
	for (uint32_t k = 0; k < OPT_MAX; k++) {
		uint32_t i = (opt_free_hint + k) % OPT_MAX;

		if (!opt_table[i].used) {
			opt_table[i].used = true;
			opt_free_hint = i + 1;
			*out = i;
			return 0;
		}
	}
	return -ENOSPC;
}

/* ---- the hit ------------------------------------------------------------------------ */

/* every case: nested hits, several probes on the site, a vector probe on a lite detour */
SD_NOTRACE __attribute__((noinline)) static void optprobe_hit(uint32_t index,
							      struct sonde_regs *regs)
{
	struct opt_slot *slot = &opt_table[index];
	struct sd_thread *t = &sd_self;
	uint8_t prev = t->active;
	/*
	 * the trampoline returns to the word above the saved registers; a
	 * detour that saved them itself called the handler with them aligned
	 * down to 16 (its return address: this function's, by tail calls)
	 */
	uint64_t *ret = slot->layout.saves_regs ? (uint64_t *)((uintptr_t)regs & ~(uintptr_t)15) - 1
						: (uint64_t *)(regs + 1);
	struct sd_probe_list *l;
	struct sd_site *site;

	sd_thread_enter(t, prev);
	/* no fence: sd_sync_threads() orders every thread with membarrier */
	barrier();
	site = LOAD_ACQUIRE(slot->site);
	/* the outer activity keeps its mark: out through the nested copy */
	if (prev && *ret == slot->layout.ret_main)
		*ret = slot->layout.ret_nested;
	if (site && !(prev & SD_ACTIVE_HANDLER) && likely(!t->in_sonde)) {
		regs->ip = site->addr;
		l = LOAD_ACQUIRE(site->probes);
		for (int i = 0; i < l->n; i++) {
			struct sonde_kprobe *p = l->p[i];

			if (!sd_kprobe_enabled(p))
				continue;
			if (unlikely(slot->lite && !(p->__reserved[0] & SD_KP_NOFPU))) {
				/* joined while the site was optimized without vector state */
				__atomic_add_fetch(&p->nmissed, 1, __ATOMIC_RELAXED);
				continue;
			}
			sd_hit(p);
			if (p->pre_handler)
				p->pre_handler(p, regs);
		}
	} else if (site && (prev & SD_ACTIVE_HANDLER)) {
		l = LOAD_ACQUIRE(site->probes);
		for (int i = 0; i < l->n; i++)
			if (sd_kprobe_enabled(l->p[i]))
				__atomic_add_fetch(&l->p[i]->nmissed, 1, __ATOMIC_RELAXED);
	}
	barrier();
	/* out of the detour to the region's main copy, which unmarks it on its way out */
	t->active = prev ? prev : SD_ACTIVE_SLOT;
}

/*
 * The hit: what the common case needs, one enabled probe on the site
 * (slot->fast), the thread in none of sonde's code and its hit counter
 * ready, with no loop and no frame: the probe's handler is entered by a
 * tail call. The thread leaves with `active` still HANDLER until the
 * region's main copy marks it as in a slot (a signal arriving in between
 * counts its probes' hits as missed, as inside a handler). Anything else takes
 * optprobe_hit().
 */
SD_NOTRACE void sd_optprobe_handler(uint32_t index, struct sonde_regs *regs);
SD_NOTRACE SD_HOT void sd_optprobe_handler(uint32_t index, struct sonde_regs *regs)
{
	struct opt_slot *slot = &opt_table[index];
	struct sd_thread *t = &sd_self;
	struct sonde_kprobe *p;
	uint64_t *hits = t->hits;
	int hs;

	/* (two byte loads: see thread.h) */
	if (unlikely(READ_ONCE(t->active) | READ_ONCE(t->in_sonde) || !hits))
		goto general;
	sd_thread_enter(t, 0);
	/* no fence: sd_sync_threads() orders every thread with membarrier */
	barrier();
	p = LOAD_ACQUIRE(slot->fast);
	if (unlikely(!p))
		goto back;
	hs = sd_hit_slot(p);
	if (unlikely(hs < 0))
		goto back;
	hits[hs]++; /* this thread's own counter (hits.h) */
	regs->ip = (uint64_t)(uintptr_t)p->addr;
	if (p->pre_handler)
		p->pre_handler(p, regs);
	return;
back:
	/* as it came (the thread was in nothing of sonde's): the general case says what to do */
	barrier();
	t->active = 0;
general:
	optprobe_hit(index, regs);
}

/* ---- the code around a probe ------------------------------------------------------------ */

static int read_piece(uint64_t start, size_t len, struct sd_opt_code *c)
{
	uint8_t *b = malloc(len);

	if (!b)
		return -ENOMEM;
	if (sd_safe_read(b, (const void *)start, len)) {
		free(b);
		return -EFAULT;
	}
	sd_recover_code(b, start, len);
	c->start = start;
	c->len = len;
	c->bytes = b;
	return 0;
}

int sd_recover_function(uint64_t addr, struct sd_opt_code *code, int max, int *n)
{
	struct sd_maps *maps = sd_probe_maps(false);
	struct sd_module *m = maps ? sd_maps_find_addr(maps, addr) : NULL;
	struct sd_symtab *st = m ? sd_module_symtab(m) : NULL;
	const struct sd_sym *sym, *cold;
	uint64_t off;
	char name[512];
	int err;

	*n = 0;
	if (!st)
		return -ENOENT;
	sym = sd_symtab_find_addr(st, addr - m->bias, &off);
	if (!sym || !sym->size || (sym->type != SD_SYM_FUNC && sym->type != SD_SYM_IFUNC))
		return -ENOENT;
	err = read_piece(m->bias + sym->value, sym->size, &code[(*n)++]);
	if (err)
		return err;
	/* gcc splits unlikely paths into NAME.cold: they may jump back into NAME */
	snprintf(name, sizeof(name), "%s.cold", sym->name);
	cold = sd_symtab_lookup(st, name);
	if (cold && cold->size && *n < max &&
	    read_piece(m->bias + cold->value, cold->size, &code[*n]) == 0)
		(*n)++;
	return 0;
}

/* ---- optimizing and undoing it ----------------------------------------------------------- */

/* @addr is the start of a function's .cold part (gcc's split-off unlikely code) */
static bool cold_part(uint64_t addr)
{
	struct sd_maps *maps = sd_probe_maps(false);
	struct sd_module *m = maps ? sd_maps_find_addr(maps, addr) : NULL;
	struct sd_symtab *st = m ? sd_module_symtab(m) : NULL;
	const struct sd_sym *s;
	uint64_t off;

	s = st ? sd_symtab_find_addr(st, addr - m->bias, &off) : NULL;
	return s && strstr(s->name, ".cold");
}

static bool another_site_inside(struct sd_site *site, unsigned int len)
{
	for (unsigned int i = 1; i < len; i++)
		if (sd_site_lookup(site->addr + i))
			return true;
	return false;
}

static bool all_lite(struct sd_site *site)
{
	for (int i = 0; i < site->probes->n; i++)
		if (!(site->probes->p[i]->__reserved[0] & SD_KP_NOFPU))
			return false;
	return true;
}

static bool wants_int3(struct sd_site *site)
{
	for (int i = 0; i < site->probes->n; i++)
		if (site->probes->p[i]->post_handler)
			return true;
	return false;
}

static void set_flag(struct sd_site *site, bool on)
{
	for (int i = 0; i < site->probes->n; i++) {
		if (on)
			__atomic_or_fetch(&site->probes->p[i]->flags, SONDE_KPROBE_FLAG_OPTIMIZED,
					  __ATOMIC_RELAXED);
		else
			__atomic_and_fetch(&site->probes->p[i]->flags, ~SONDE_KPROBE_FLAG_OPTIMIZED,
					   __ATOMIC_RELAXED);
	}
}

/* ---- the optimizer ---------------------------------------------------------------------- */

/*
 * Like the kernel's kprobe_optimizer, a worker does the slow part a little
 * after registration, for many sites at once: one sd_sync_threads(), one
 * look at where every thread is, one text_poke batch. Registration returns
 * at once with a working breakpoint probe.
 */
#define OPT_DELAY_MS  5
#define OPT_BATCH     256
#define OPT_RETRIES   20
#define RECLAIM_BATCH 32

struct retired {
	uint32_t index;
	uint8_t *detour;
};

static bool optimizer_running;
static pthread_cond_t opt_cond = PTHREAD_COND_INITIALIZER;
static pthread_cond_t opt_done = PTHREAD_COND_INITIALIZER;
static struct sd_site **queue;
static size_t nqueue, capqueue;
static struct retired *retired;
static size_t nretired, capretired;
static unsigned long rounds;
static bool urgent;   /* someone waits: no batching delay */
static bool stop_req; /* sd_optimizer_stop(): end the worker */

static void retire(struct sd_site *site)
{
	uint32_t i = site->opt_index;

	__atomic_store_n(&site->detour, NULL, __ATOMIC_RELEASE);
	STORE_RELEASE(opt_table[i].fast, NULL);
	STORE_RELEASE(opt_table[i].site, NULL);
	if (nretired == capretired) {
		size_t c = capretired ? 2 * capretired : 64;
		struct retired *r = realloc(retired, c * sizeof(*r));

		if (!r) {
			sd_warn("out of memory: a detour is kept for the life of the process");
			return;
		}
		retired = r;
		capretired = c;
	}
	retired[nretired++] = (struct retired){.index = i, .detour = opt_table[i].detour};
}

static void dequeue(struct sd_site *site)
{
	for (size_t i = 0; i < nqueue; i++)
		if (queue[i] == site) {
			queue[i] = queue[--nqueue];
			return;
		}
}

/* ---- branch targets of whole objects ------------------------------------------------- */

/* an object's branch targets, known by the file mapped there */
struct obj_targets {
	struct sd_targets t;
	uint64_t dev, ino;
};

static struct obj_targets *objs;
static size_t nobjs;

/* the executable mappings of object @m, as /proc/self/maps shows */
static int scan_object(const struct sd_module *m, struct obj_targets *o)
{
	FILE *f;
	char line[4096];

	o->t.start = m->start;
	o->t.end = m->end;
	o->dev = m->dev;
	o->ino = m->ino;
	/* a bit per byte of the object: calloc'd pages stay untouched where no target falls */
	o->t.bits = calloc((m->end - m->start + 63) / 64, sizeof(*o->t.bits));
	if (!o->t.bits)
		return -ENOMEM;
	f = fopen("/proc/self/maps", "re");
	if (!f) {
		free(o->t.bits);
		return -errno;
	}
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		char perms[8];
		uint8_t *code;

		if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3 || perms[2] != 'x' ||
		    lo < m->start || hi > m->end)
			continue;
		code = malloc(hi - lo);
		if (!code || sd_safe_read(code, (void *)lo, hi - lo)) {
			free(code);
			continue;
		}
		sd_recover_code(code, lo, hi - lo);
		sd_arch_scan_targets(code, lo, hi - lo, &o->t);
		free(code);
	}
	fclose(f);
	return 0;
}

/*
 * The branch targets of the object containing @addr, swept once per object
 * (a few ms for libc). What was swept from other maps is swept again: the
 * optimizer reads them anew after the dynamic linker loaded or unloaded an
 * object (optimize_batch), and another object may sit where one was.
 */
static const struct sd_targets *object_targets(uint64_t addr)
{
	static unsigned long gen_seen;
	struct sd_maps *maps = sd_probe_maps(false);
	struct sd_module *m = maps ? sd_maps_find_addr(maps, addr) : NULL;
	struct obj_targets o, *bigger;

	if (sd_probe_maps_gen() != gen_seen) {
		while (nobjs)
			free(objs[--nobjs].t.bits);
		gen_seen = sd_probe_maps_gen();
	}
	if (!m)
		return NULL;
	for (size_t i = 0; i < nobjs; i++) {
		struct obj_targets *x = &objs[i];

		if (x->t.start == m->start && x->t.end == m->end && x->dev == m->dev &&
		    x->ino == m->ino)
			return &x->t;
	}
	if (scan_object(m, &o))
		return NULL;
	bigger = realloc(objs, (nobjs + 1) * sizeof(*objs));
	if (!bigger) {
		free(o.t.bits);
		return NULL;
	}
	objs = bigger;
	objs[nobjs] = o;
	return &objs[nobjs++].t;
}

/*
 * The region's copies (sd_arch_opt_build_copy), made once per site and its
 * bytes, and never freed: detours come and go, and a thread may still run
 * a copy long after its detour went (or be stopped between a copy's
 * unmarking and its jump out). An open-addressed table by address, under
 * sd_probe_mutex; an object loaded where another was gets copies of its
 * own bytes.
 */
struct region_copy {
	uint64_t addr, copy, nested;
	unsigned int len;
	uint8_t bytes[SD_OPT_MAX_BYTES];
	/* where the main copy goes out to: after the region, its branches' targets */
	uint64_t exits[SD_OPT_MAX_INSNS + 1];
	int nexits;
};

static struct {
	struct region_copy *v;
	size_t cap, n;
} copies;

static struct region_copy *copy_slot(struct region_copy *v, size_t cap, const struct region_copy *k)
{
	size_t i = (k->addr >> 4) % cap;

	while (v[i].addr &&
	       (v[i].addr != k->addr || v[i].len != k->len || memcmp(v[i].bytes, k->bytes, k->len)))
		i = (i + 1) % cap;
	return &v[i];
}

static const struct region_copy *region_copy(const struct sd_opt_region *r)
{
	const struct sd_opt_copy_spec spec = {
	    .active_tls_off = sd_thread_active_tls_offset(),
	    .active_slot = SD_ACTIVE_SLOT,
	};
	struct region_copy k = {.addr = r->addr, .len = 0}, *c;
	uint8_t buf[SD_OPT_COPY_MAX];
	size_t nested;
	void *at;
	int len;

	for (int i = 0; i < r->ninsn; i++) {
		if (k.len + r->insn[i].len > sizeof(k.bytes))
			return NULL;
		memcpy(k.bytes + k.len, r->insn[i].bytes, r->insn[i].len);
		k.len += r->insn[i].len;
	}
	if (copies.n && (c = copy_slot(copies.v, copies.cap, &k))->addr)
		return c;
	if (2 * (copies.n + 1) > copies.cap) {
		size_t cap = copies.cap ? 2 * copies.cap : 256;
		struct region_copy *v = calloc(cap, sizeof(*v));

		if (!v)
			return NULL;
		for (size_t i = 0; i < copies.cap; i++)
			if (copies.v[i].addr)
				*copy_slot(v, cap, &copies.v[i]) = copies.v[i];
		free(copies.v);
		copies.v = v;
		copies.cap = cap;
	}
	/* its length first (it does not depend on where it sits), then in place */
	len = sd_arch_opt_build_copy(r, &spec, r->addr, buf, sizeof(buf), &nested);
	if (len < 0 || !(at = sd_xol_alloc_permanent(r->addr, (size_t)len)))
		return NULL;
	len = sd_arch_opt_build_copy(r, &spec, (uint64_t)at, buf, sizeof(buf), &nested);
	if (len < 0 || sd_text_write(at, buf, (size_t)len))
		return NULL; /* (its bytes stay taken) */
	k.copy = (uint64_t)at;
	k.nested = k.copy + nested;
	k.exits[k.nexits++] = r->addr + r->len;
	for (int i = 0; i < r->ninsn; i++)
		if (r->insn[i].kind == SD_INSN_JMP || r->insn[i].kind == SD_INSN_JCC ||
		    r->insn[i].kind == SD_INSN_CALL)
			k.exits[k.nexits++] = r->insn[i].target;
	c = copy_slot(copies.v, copies.cap, &k);
	*c = k;
	copies.n++;
	return c;
}

/* analyse the site and publish its detour; int3 hits go there from now on */
static int prepare(struct sd_site *site)
{
	struct sd_opt_code code[2];
	struct sd_opt_detour_spec spec;
	const struct region_copy *copy;
	uint8_t buf[SD_OPT_DETOUR_MAX];
	uint8_t *detour;
	const char *why = NULL;
	const char *common;
	int n = 0, err;
	bool at_entry;

	if (!(site->armed || site->arm_pending) || wants_int3(site)) {
		site->opt_why = "a probe here has a post_handler";
		return -EOPNOTSUPP;
	}
	err = sd_recover_function(site->addr, code, 2, &n);
	if (err) {
		site->opt_why = "no function symbol around the probe";
		return err;
	}
	/* (a NAME.cold part is entered by a jump: the flags there may be live) */
	at_entry = code[0].start == site->addr && !cold_part(site->addr);
	{
		const struct sd_targets *ot = object_targets(site->addr);

		if (!ot) {
			for (int i = 0; i < n; i++)
				free((void *)code[i].bytes);
			site->opt_why = "cannot read the object's code";
			return -ENOENT;
		}
		err = sd_arch_opt_analyze(code, n, site->addr, ot, &site->region, &why);
	}
	for (int i = 0; i < n; i++)
		free((void *)code[i].bytes);
	if (err) {
		site->opt_why = why;
		return err;
	}
	if (another_site_inside(site, site->region.len)) {
		site->opt_why = sd_opt_why_inside;
		return -EBUSY;
	}
	if (sd_text_claimed(site->addr, site->region.len, NULL)) {
		site->opt_why =
		    "its jump would cover a function tracer's or a static tracepoint's nop";
		return -EBUSY;
	}
	detour = sd_xol_alloc_n(site->addr, SD_OPT_DETOUR_MAX / SD_XOL_SLOT_SIZE);
	if (!detour) {
		site->opt_why = "no room for a detour near the probe";
		return -ENOMEM;
	}
	site->lite = all_lite(site) && sd_thread_register_vec_free();
	if (site->lite)
		common = at_entry ? sd_arch_optprobe_tramp_lite_entry : sd_arch_optprobe_tramp_lite;
	else
		common = at_entry ? sd_arch_optprobe_tramp_entry : sd_arch_optprobe_tramp;
	copy = region_copy(&site->region);
	if (!copy) {
		sd_xol_free_n(detour, SD_OPT_DETOUR_MAX / SD_XOL_SLOT_SIZE);
		site->opt_why = "the region's copy cannot be placed near it";
		return -ENOMEM;
	}
	spec = (struct sd_opt_detour_spec){
	    .detour = (uint64_t)detour,
	    .common = (uint64_t)common,
	    /* the common case: the registers saved by the detour itself */
	    .handler = site->lite && at_entry ? (uint64_t)(uintptr_t)sd_optprobe_handler : 0,
	    .copy = copy->copy,
	    .copy_nested = copy->nested,
	};
	err = index_alloc(&spec.index);
	if (err) {
		sd_xol_free_n(detour, SD_OPT_DETOUR_MAX / SD_XOL_SLOT_SIZE);
		site->opt_why = "too many optimized probes";
		return err;
	}
	err =
	    sd_arch_opt_build_detour(&spec, buf, SD_OPT_DETOUR_MAX, &opt_table[spec.index].layout);
	if (err >= 0)
		err = sd_text_write(detour, buf, SD_OPT_DETOUR_MAX);
	if (err < 0) {
		sd_xol_free_n(detour, SD_OPT_DETOUR_MAX / SD_XOL_SLOT_SIZE);
		opt_table[spec.index].used = false;
		site->opt_why = "the detour cannot reach what the region addresses";
		return err;
	}
	site->opt_index = spec.index;
	site->layout = opt_table[spec.index].layout;
	opt_table[spec.index].detour = detour;
	opt_table[spec.index].lite = site->lite;
	STORE_RELEASE(opt_table[spec.index].site, site);
	sd_site_fast_update(site);
	/* the detour is published last: only complete, it is reachable */
	__atomic_store_n(&site->detour, detour, __ATOMIC_RELEASE);
	return 0;
}

static int range_cmp(const void *a, const void *b)
{
	const struct sd_range *x = a, *y = b;

	return (x->start > y->start) - (x->start < y->start);
}

/*
 * Besides @interior (the new regions' insides, sorted here), where a
 * thread must not be stopped while the jumps are written: the main copy of
 * any region that goes out to a place inside them (a thread between its
 * unmarking and its jump out is no longer waited for), and the slots' exit
 * stub, whose jump goes to wherever the thread's `resume` says. A new
 * array, or NULL.
 */
static struct sd_range *ways_back_in(struct sd_range *interior, int n, int *out_n)
{
	struct sd_range *r = malloc((n + copies.n + 1) * sizeof(*r));
	uint64_t stub = sd_xol_exit_stub();
	int k = n;

	if (!r)
		return NULL;
	qsort(interior, n, sizeof(*interior), range_cmp);
	memcpy(r, interior, n * sizeof(*r));
	for (size_t i = 0; i < copies.cap; i++) {
		const struct region_copy *c = &copies.v[i];
		bool in = false;

		for (int j = 0; c->addr && j < c->nexits && !in; j++) {
			int lo = 0, hi = n; /* the last interior starting at or before the exit */

			while (hi - lo > 1) {
				int mid = (lo + hi) / 2;

				if (interior[mid].start <= c->exits[j])
					lo = mid;
				else
					hi = mid;
			}
			in = interior[lo].start <= c->exits[j] && c->exits[j] < interior[lo].end;
		}
		if (in)
			r[k++] = (struct sd_range){c->copy, c->nested};
	}
	if (stub)
		r[k++] = (struct sd_range){stub, stub + 32};
	*out_n = k;
	return r;
}

static void optimize_batch(void)
{
	struct sd_site *ready[OPT_BATCH];
	struct sd_range ranges[OPT_BATCH];
	struct sd_poke *pokes;
	int nready = 0, nranges = 0, err;

	/*
	 * the functions' bounds come from the maps: not from those of an
	 * object unloaded since, where another may sit now (no caller of the
	 * optimizer holds a module of the maps)
	 */
	sd_probe_maps_current();
	/* 1: detours for every pending site; int3 hits now resume in them */
	while (nqueue && nready < OPT_BATCH) {
		struct sd_site *site = queue[--nqueue];

		site->opt_queued = false;
		if (site->detour || !(site->armed || site->arm_pending))
			continue;
		if (prepare(site) == 0) {
			ready[nready++] = site;
		} else {
			sd_dbg("0x%lx stays a breakpoint: %s", (unsigned long)site->addr,
			       site->opt_why ? site->opt_why : "?");
			sd_site_arm_fallback(site);
		}
	}
	if (!nready)
		return;
	/*
	 * 2: nobody is still in an old slot or copy on its way back into a
	 * region (a thread that stays marked for seconds, say in a signal
	 * handler of the program, may still be: try later)
	 */
	err = sd_sync_threads();
	/* 3: nobody stopped between two instructions of a region, or on its way back into one */
	for (int i = 0; i < nready; i++)
		if (ready[i]->region.ninsn > 1)
			ranges[nranges++] = (struct sd_range){
			    ready[i]->addr + 1, ready[i]->addr + ready[i]->region.len};
	if (!err && nranges) {
		int nall = 0;
		struct sd_range *all = ways_back_in(ranges, nranges, &nall);

		/* (without memory for the list, the regions alone) */
		err = sd_threads_outside(all ? all : ranges, all ? nall : nranges, 20);
		free(all);
	}
	if (err) {
		for (int i = 0; i < nready; i++) {
			ready[i]->opt_why = "a thread stayed inside the region";
			retire(ready[i]);
			if (++ready[i]->opt_tries < OPT_RETRIES)
				sd_site_queue_optimize(ready[i]);
			else
				sd_site_arm_fallback(ready[i]);
		}
		return;
	}
	/* 4: the jumps */
	pokes = calloc(nready, sizeof(*pokes));
	if (!pokes) {
		for (int i = 0; i < nready; i++) {
			retire(ready[i]);
			sd_site_arm_fallback(ready[i]);
		}
		return;
	}
	for (int i = 0; i < nready; i++) {
		pokes[i].addr = (void *)ready[i]->addr;
		pokes[i].len = (uint8_t)ready[i]->region.len;
		sd_arch_opt_jump(&ready[i]->region, (uint64_t)ready[i]->detour, pokes[i].new);
	}
	err = sd_text_poke_batch(pokes, nready);
	free(pokes);
	for (int i = 0; i < nready; i++) {
		if (err) {
			ready[i]->opt_why = "the jump could not be written";
			retire(ready[i]);
			sd_site_arm_fallback(ready[i]);
			continue;
		}
		/* (a pending site is armed by its jump) */
		ready[i]->armed = true;
		ready[i]->arm_pending = false;
		ready[i]->optimized = true;
		ready[i]->opt_why = NULL;
		set_flag(ready[i], true);
	}
}

extern const char __start_sonde_text[] __attribute__((weak));

/* free the retired detours no thread can be in any more */
static void reclaim(void)
{
	struct sd_range *r;
	size_t n = nretired;

	if (!n)
		return;
	r = calloc(n + 1, sizeof(*r));
	if (!r)
		return;
	/* every retirement happened before this: marked threads are waited for */
	sd_sync_threads();
	for (size_t i = 0; i < n; i++)
		r[i] = (struct sd_range){(uint64_t)retired[i].detour,
					 (uint64_t)retired[i].detour + SD_OPT_DETOUR_MAX};
	/* unmarked ones: between a jump and the handler's first store */
	if (__start_sonde_text)
		r[n] = (struct sd_range){(uint64_t)__start_sonde_text, (uint64_t)__stop_sonde_text};
	if (sd_threads_outside(r, (int)n + (__start_sonde_text ? 1 : 0), 20) == 0) {
		for (size_t i = 0; i < n; i++) {
			sd_xol_free_n(retired[i].detour, SD_OPT_DETOUR_MAX / SD_XOL_SLOT_SIZE);
			opt_table[retired[i].index].detour = NULL;
			opt_table[retired[i].index].used = false;
		}
		memmove(retired, retired + n, (nretired - n) * sizeof(*retired));
		nretired -= n;
	}
	free(r);
}

static void *optimizer_main(void *arg)
{
	sd_enter_sonde();
	pthread_mutex_lock(&sd_probe_mutex);
	for (;;) {
		while (!nqueue && !nretired && !stop_req)
			pthread_cond_wait(&opt_cond, &sd_probe_mutex);
		if (stop_req && !nqueue) {
			/* free what can be freed now; what cannot waits for a next worker */
			reclaim();
			stop_req = false;
			optimizer_running = false;
			pthread_cond_broadcast(&opt_done);
			pthread_mutex_unlock(&sd_probe_mutex);
			return NULL;
		}
		bool was_urgent = urgent;

		/* let more work arrive: one batch for a burst of registrations */
		if (!urgent) {
			struct timespec d = {0, OPT_DELAY_MS * 1000 * 1000};

			pthread_mutex_unlock(&sd_probe_mutex);
			nanosleep(&d, NULL);
			pthread_mutex_lock(&sd_probe_mutex);
		}
		urgent = false;
		if (sd_opt_allowed) {
			optimize_batch();
		} else {
			while (nqueue) {
				queue[--nqueue]->opt_queued = false;
				sd_site_arm_fallback(queue[nqueue]);
			}
		}
		/* freeing waits for every thread to be seen elsewhere: do it in bulk */
		if (nretired >= RECLAIM_BATCH || !was_urgent)
			reclaim();
		rounds++;
		pthread_cond_broadcast(&opt_done);
	}
	return NULL;
}

static void optimizer_fork_child(void)
{
	optimizer_running = false; /* the child has no worker; one starts on demand */
}

static void optimizer_start(void)
{
	static bool atfork;

	if (optimizer_running)
		return;
	if (sd_spawn_thread(NULL, optimizer_main, NULL, "sonde-optimizer"))
		return;
	optimizer_running = true;
	if (!atfork) {
		pthread_atfork(NULL, NULL, optimizer_fork_child);
		atfork = true;
	}
}

void sd_optimizer_stop(void)
{
	pthread_mutex_lock(&sd_probe_mutex);
	if (optimizer_running) {
		stop_req = true;
		urgent = true;
		pthread_cond_signal(&opt_cond);
		while (optimizer_running)
			pthread_cond_wait(&opt_done, &sd_probe_mutex);
	}
	pthread_mutex_unlock(&sd_probe_mutex);
}

void sd_site_fast_update(struct sd_site *site)
{
	const struct sd_probe_list *l = site->probes;
	struct opt_slot *slot;
	struct sonde_kprobe *p;

	if (!site->detour && !(opt_table && opt_table[site->opt_index].site == site))
		return;
	slot = &opt_table[site->opt_index];
	p = l && l->n == 1 ? l->p[0] : NULL;
	if (p && (!sd_kprobe_enabled(p) || (slot->lite && !(p->__reserved[0] & SD_KP_NOFPU))))
		p = NULL;
	STORE_RELEASE(slot->fast, p);
}

void sd_site_queue_optimize(struct sd_site *site)
{
	if (!sd_opt_allowed || site->opt_queued || site->detour)
		return;
	if (nqueue == capqueue) {
		size_t c = capqueue ? 2 * capqueue : 64;
		struct sd_site **q = realloc(queue, c * sizeof(*q));

		if (!q) {
			sd_site_arm_fallback(site);
			return;
		}
		queue = q;
		capqueue = c;
	}
	queue[nqueue++] = site;
	site->opt_queued = true;
	optimizer_start();
	pthread_cond_signal(&opt_cond);
}

int sd_site_unoptimize(struct sd_site *site, bool keep_int3)
{
	struct sd_poke pk;
	int err;

	if (site->opt_queued) {
		dequeue(site);
		site->opt_queued = false;
	}
	if (!site->detour)
		return 0;
	if (site->optimized && !site->gone) {
		memset(&pk, 0, sizeof(pk));
		pk.addr = (void *)site->addr;
		pk.len = (uint8_t)site->region.len;
		for (int k = 0, at = 0; k < site->region.ninsn; k++) {
			memcpy(pk.new + at, site->region.insn[k].bytes, site->region.insn[k].len);
			at += site->region.insn[k].len;
		}
		if (keep_int3)
			pk.new[0] = SD_ARCH_BP_INSN;
		err = sd_text_poke_batch(&pk, 1);
		if (err)
			return err;
		site->optimized = false;
		site->armed = keep_int3;
	}
	site->optimized = false;
	set_flag(site, false);
	/* the optimizer frees it once nobody can be in it */
	retire(site);
	if (optimizer_running)
		pthread_cond_signal(&opt_cond);
	else
		optimizer_start();
	return 0;
}

void sd_optimize_now(void)
{
	/*
	 * Do the pending work here rather than wake the worker and wait for
	 * it: on a busy machine each hand-over between threads costs a
	 * scheduling delay.
	 */
	while (nqueue && sd_opt_allowed)
		optimize_batch();
}

SONDE_API void sonde_wait_kprobe_optimizer(void)
{
	sd_enter_sonde();
	pthread_mutex_lock(&sd_probe_mutex);
	sd_optimize_now();
	pthread_mutex_unlock(&sd_probe_mutex);
	sd_leave_sonde();
}

static void set_all(bool on)
{
	struct sd_site_table *t = sd_sites;

	for (uint64_t i = 0; t && i <= t->mask; i++) {
		struct sd_site *s = t->slot[i];

		if (!s || s == &sd_site_gone)
			continue;
		if (on && s->armed)
			sd_site_queue_optimize(s);
		else if (!on && s->detour)
			sd_site_unoptimize(s, s->armed);
		else if (!on)
			sd_site_arm_fallback(s); /* (it was waiting for a jump) */
	}
}

SONDE_API int sonde_set_kprobe_optimization(int on)
{
	sd_enter_sonde();
	pthread_mutex_lock(&sd_probe_mutex);
	if (sd_opt_allowed != !!on) {
		sd_opt_allowed = !!on;
		set_all(sd_opt_allowed);
	}
	pthread_mutex_unlock(&sd_probe_mutex);
	sd_leave_sonde();
	return 0;
}
