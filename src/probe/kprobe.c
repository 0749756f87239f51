// SPDX-License-Identifier: MIT
/*
 * kprobe.c - registering, arming and removing probes.
 *
 * Registration resolves the address, checks it is a probeable instruction
 * boundary, finds or creates the site (decoding the instruction and
 * building its out-of-line slots), publishes the site and the new probe
 * list, and only then writes the breakpoint: a thread can never trap on a
 * site the handler cannot find. Removal goes the other way: restore the
 * byte, unpublish, sd_sync_threads(), free.
 *
 * Everything here runs under sd_probe_mutex with the thread marked as
 * inside sonde, so that libsonde's own calls into libc (malloc, open…)
 * pass through probes the user has put there without firing them.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SD_LOG_PREFIX "kprobe"
#include "common/compiler.h"
#include "common/log.h"
#include "common/safe_mem.h"
#include "probe/hits.h"
#include "probe/probe.h"
#include "probe/thread.h"
#include "probe/xol.h"
#include "sym/sym.h"

pthread_mutex_t sd_probe_mutex = PTHREAD_MUTEX_INITIALIZER;
struct sd_site_table *sd_sites;

/* section bounds of the probe path (SD_NOTRACE), provided by the linker */
extern const char __start_sonde_text[] __attribute__((weak));
extern const char __stop_sonde_text[] __attribute__((weak));

static struct sd_maps *self_maps;
static unsigned long long self_maps_loads; /* sd_dl_loads() when they were read */
static unsigned long self_maps_gen;	   /* counts the reads */
/* where the last registration met a claim (claim.c), under the lock */
static uint64_t claimed_at;

static void lock(void)
{
	sd_enter_sonde();
	pthread_mutex_lock(&sd_probe_mutex);
}

static void unlock(void)
{
	pthread_mutex_unlock(&sd_probe_mutex);
	sd_leave_sonde();
}

/* ---- the site table --------------------------------------------------------- */

static uint64_t site_hash(uint64_t addr)
{
	return (addr * 0x9e3779b97f4a7c15ULL) >> 20;
}

/*
 * The table is changed in place under sd_probe_mutex, as lock-free
 * lookups allow: a slot goes from empty to a site (published with a
 * release store), and from a site to sd_site_gone when it is removed (a
 * lookup walks on past that; an insert may take it). Only growing makes a
 * new table (the old one is freed once no thread can still be reading
 * it), so that registering n sites costs O(n), not O(n^2).
 */
struct sd_site sd_site_gone = {.addr = UINT64_MAX};

/* a table for the current one's sites and @add, with room for as many again */
static struct sd_site_table *table_grow(struct sd_site *add)
{
	struct sd_site_table *old = sd_sites, *t;
	unsigned int count = (old ? old->count : 0) + 1;
	uint64_t size = 16;

	while (size < 4 * (uint64_t)count + 4)
		size <<= 1;
	t = calloc(1, sizeof(*t) + size * sizeof(t->slot[0]));
	if (!t)
		return NULL;
	t->mask = size - 1;
	t->count = count;
	t->used = count;
	for (uint64_t i = 0; old && i <= old->mask; i++) {
		struct sd_site *s = old->slot[i];

		if (!s || s == &sd_site_gone)
			continue;
		for (uint64_t h = site_hash(s->addr);; h++)
			if (!t->slot[h & t->mask]) {
				t->slot[h & t->mask] = s;
				break;
			}
	}
	for (uint64_t h = site_hash(add->addr);; h++)
		if (!t->slot[h & t->mask]) {
			t->slot[h & t->mask] = add;
			break;
		}
	return t;
}

/*
 * Publish @add (not in the table). A table that had to grow is returned
 * in @old, for the caller to free after sd_sync_threads(); -ENOMEM leaves
 * everything as it was.
 */
static int table_insert(struct sd_site *add, struct sd_site_table **old)
{
	struct sd_site_table *t = sd_sites;

	*old = NULL;
	if (!t || 2 * ((uint64_t)t->used + 1) > t->mask + 1) {
		struct sd_site_table *n = table_grow(add);

		if (!n)
			return -ENOMEM;
		*old = t;
		STORE_RELEASE(sd_sites, n);
		return 0;
	}
	for (uint64_t h = site_hash(add->addr);; h++) {
		struct sd_site **slot = &t->slot[h & t->mask];

		if (!*slot || *slot == &sd_site_gone) {
			if (!*slot)
				t->used++;
			t->count++;
			STORE_RELEASE(*slot, add);
			return 0;
		}
	}
}

/* @del leaves the table (lookups under way may still return it) */
static void table_remove(struct sd_site *del)
{
	struct sd_site_table *t = sd_sites;

	for (uint64_t i = 0, h = site_hash(del->addr); t && i <= t->mask; i++, h++) {
		struct sd_site **slot = &t->slot[h & t->mask];

		if (!*slot)
			return;
		if (*slot == del) {
			STORE_RELEASE(*slot, &sd_site_gone);
			t->count--;
			return;
		}
	}
}

/* ---- resolving -------------------------------------------------------------- */

/* the bytes of @s that sonde changed, as they were, where they fall in buf */
static void recover_site(uint8_t *buf, uint64_t start, size_t len, const struct sd_site *s)
{
	uint64_t a = s->region.addr;

	if (s->optimized) {
		/* the jump covers whole instructions, kept as they were */
		for (int i = 0; i < s->region.ninsn; i++)
			for (unsigned int j = 0; j < s->region.insn[i].len; j++, a++)
				if (a >= start && a < start + len)
					buf[a - start] = s->region.insn[i].bytes[j];
	} else if (s->armed && s->addr >= start && s->addr < start + len) {
		buf[s->addr - start] = s->insn.bytes[0];
	}
}

/*
 * Code as it was before sonde touched it: armed sites read back as int3 and
 * optimized ones as a jump, so decoding live bytes would misalign (the
 * kernel's recover_probed_instruction()).
 */
void sd_recover_code(uint8_t *buf, uint64_t start, size_t len)
{
	struct sd_site_table *t = sd_sites;

	if (!t)
		return;
	/*
	 * A function much shorter than the table: look each address up
	 * (a lookup costs a few slots' walk) rather than walk every site,
	 * from a jump's length before (a jump that starts before @start may
	 * cover its first bytes).
	 */
	if ((uint64_t)len * 4 <= t->mask) {
		for (uint64_t a = start >= SD_OPT_MAX_BYTES ? start - SD_OPT_MAX_BYTES : 0;
		     a < start + len; a++) {
			struct sd_site *s = sd_site_lookup(a);

			if (s)
				recover_site(buf, start, len, s);
		}
		return;
	}
	for (uint64_t i = 0; i <= t->mask; i++) {
		struct sd_site *s = t->slot[i];

		if (s && s != &sd_site_gone)
			recover_site(buf, start, len, s);
	}
}

struct sd_maps *sd_probe_maps(bool refresh)
{
	if (refresh || !self_maps) {
		unsigned long long loads = sd_dl_loads();
		struct sd_maps *m;

		if (sd_maps_read(0, &m))
			return NULL;
		sd_maps_free(self_maps);
		self_maps = m;
		self_maps_loads = loads;
		self_maps_gen++;
	}
	return self_maps;
}

unsigned long sd_probe_maps_gen(void)
{
	return self_maps_gen;
}

struct sd_maps *sd_probe_maps_current(void)
{
	return sd_probe_maps(sd_dl_loads() != self_maps_loads);
}

/* the implementation an IFUNC resolved to, as the dynamic linker chose it */
static int ifunc_target(struct sd_module *mod, const char *name, uint64_t *addr)
{
	void *h = dlopen(mod->is_main ? NULL : mod->path, RTLD_LAZY | RTLD_NOLOAD);
	void *impl;

	if (!h)
		return sd_error(-ENOENT, "%s: '%s' is an IFUNC and the object is not loaded",
				mod->name, name);
	impl = dlsym(h, name);
	dlclose(h);
	if (!impl)
		return sd_error(-ENOENT, "%s: cannot find the implementation of IFUNC '%s'",
				mod->name, name);
	*addr = (uint64_t)impl;
	return 0;
}

static bool blacklisted(struct sd_maps *maps, uint64_t addr, const char **why)
{
	struct sd_module *self =
	    sd_maps_find_addr(maps, (uint64_t)(uintptr_t)sonde_register_kprobe);
	uint64_t restorer = sd_signal_restorer();

	if (__start_sonde_text && addr >= (uint64_t)__start_sonde_text &&
	    addr < (uint64_t)__stop_sonde_text) {
		*why = "it is sonde's own probe handling code";
		return true;
	}
	if (self && !self->is_main && addr >= self->start && addr < self->end) {
		*why = "it is inside libsonde";
		return true;
	}
	if (addr >= (uint64_t)sd_arch_kretprobe_trampoline - 1 &&
	    addr < (uint64_t)sd_arch_kretprobe_trampoline_end) {
		*why = "it is sonde's return trampoline";
		return true;
	}
	if (restorer && addr >= restorer && addr < restorer + 16) {
		*why = "it is the signal return trampoline";
		return true;
	}
	return false;
}

int sd_kprobe_resolve(struct sonde_kprobe *p, uint64_t *out)
{
	struct sd_maps *maps = sd_probe_maps(false);
	struct sd_resolved r;
	const char *why;
	char what[256];
	int err;

	if (!maps)
		return -errno ? -errno : -EIO;
	if (p->symbol_name) {
		err = sd_resolve(maps, p->symbol_name, &r);
		if (err == -ENOENT) { /* maybe dlopen()ed since we last looked */
			maps = sd_probe_maps(true);
			if (!maps)
				return -EIO;
			err = sd_resolve(maps, p->symbol_name, &r);
		}
		if (err)
			return err;
		if (r.sym && r.sym->type == SD_SYM_IFUNC && r.offset == 0) {
			uint64_t impl = 0;

			err = ifunc_target(r.mod, r.sym->name, &impl);
			if (err)
				return err;
			r.addr = impl;
			r.offset = 0;
			r.sym = NULL;
			r.mod = sd_maps_find_addr(maps, impl);
			if (r.mod && sd_module_symtab(r.mod))
				r.sym = sd_symtab_find_addr(r.mod->symtab, impl - r.mod->bias,
							    &r.offset);
		}
		r.addr += p->offset;
		r.offset += p->offset;
		snprintf(what, sizeof(what), "%s", p->symbol_name);
	} else {
		if (!p->addr)
			return sd_error(-EINVAL, "a kprobe needs symbol_name or addr");
		r.addr = (uint64_t)(uintptr_t)p->addr + p->offset;
		r.mod = sd_maps_find_addr(maps, r.addr);
		if (!r.mod) {
			maps = sd_probe_maps(true);
			r.mod = maps ? sd_maps_find_addr(maps, r.addr) : NULL;
		}
		if (!r.mod)
			return sd_error(-EINVAL, "0x%lx is not in the code of any loaded object",
					(unsigned long)r.addr);
		r.sym = NULL;
		if (sd_module_symtab(r.mod))
			r.sym = sd_symtab_find_addr(r.mod->symtab, r.addr - r.mod->bias, &r.offset);
		snprintf(what, sizeof(what), "0x%lx", (unsigned long)r.addr);
	}

	if (r.mod && r.mod->symtab && !sd_symtab_vaddr_is_exec(r.mod->symtab, r.addr - r.mod->bias))
		return sd_error(-EINVAL, "%s: 0x%lx is not in executable code of %s", what,
				(unsigned long)r.addr, r.mod->name);
	if (blacklisted(maps, r.addr, &why))
		return sd_error(-EINVAL, "%s: cannot probe 0x%lx: %s", what, (unsigned long)r.addr,
				why);
	/* the kernel refuses addresses that are not instruction boundaries */
	if (r.sym && (r.sym->type == SD_SYM_FUNC || r.sym->type == SD_SYM_IFUNC) && r.sym->size &&
	    r.offset) {
		uint64_t func = r.addr - r.offset;
		uint8_t *code = malloc(r.sym->size);

		if (!code)
			return -ENOMEM;
		err = sd_safe_read(code, (const void *)func, r.sym->size);
		if (!err) {
			sd_recover_code(code, func, r.sym->size);
			err = sd_arch_insn_boundary(code, r.sym->size, func, r.addr, r.sym->name);
		} else {
			err =
			    sd_error(-EFAULT, "%s: cannot read the code of %s", what, r.sym->name);
		}
		free(code);
		if (err)
			return err;
	}
	*out = r.addr;
	return 0;
}

/* ---- sites -------------------------------------------------------------------- */

static int build_slot(struct sd_site *s, uint8_t *slot, enum sd_xol_end end)
{
	struct sd_xol_tail tail = {.exit_stub = sd_xol_exit_stub(), .end = end};
	uint8_t buf[SD_XOL_COPY_MAX];
	int n;

	if (!tail.exit_stub)
		return -ENOMEM;
	n = sd_arch_xol_build(&s->insn, (uint64_t)slot, &tail, buf);

	if (n < 0)
		return n;
	return sd_text_write(slot, buf, n);
}

static void site_free(struct sd_site *s)
{
	if (!s)
		return;
	sd_xol_free(s->slot);
	sd_xol_free(s->slot_post);
	free(s->probes);
	free(s);
}

static int site_create(uint64_t addr, struct sd_site **out)
{
	uint8_t code[SD_INSN_MAX + 1];
	struct sd_site *s;
	size_t avail;
	int err;

	/* the instruction may end right at the end of a mapping */
	for (avail = sizeof(code); avail && sd_safe_read(code, (void *)addr, avail); avail--)
		;
	if (!avail)
		return sd_error(-EFAULT, "0x%lx: cannot read the code there", (unsigned long)addr);
	if (code[0] == SD_ARCH_BP_INSN)
		return sd_error(-EBUSY,
				"0x%lx: there is already a breakpoint there (a debugger or "
				"another tracer?)",
				(unsigned long)addr);
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->addr = addr;
	err = sd_arch_insn_decode(code, avail, addr, &s->insn);
	if (err)
		goto fail;
	err = -ENOMEM;
	s->probes = calloc(1, sizeof(*s->probes));
	s->slot = sd_xol_alloc(addr);
	s->slot_nested = s->slot ? s->slot + SD_XOL_SLOT_SIZE / 2 : NULL;
	if (!s->probes || !s->slot)
		goto fail;
	err = build_slot(s, s->slot, SD_XOL_EXIT);
	if (!err)
		err = build_slot(s, s->slot_nested, SD_XOL_JMP);
	if (err)
		goto fail;
	*out = s;
	return 0;
fail:
	site_free(s);
	return err;
}

static int site_add_post_slot(struct sd_site *s)
{
	uint8_t *slot;
	int err;

	if (s->slot_post)
		return 0;
	slot = sd_xol_alloc(s->addr);
	if (!slot)
		return -ENOMEM;
	err = build_slot(s, slot, SD_XOL_TRAP);
	if (err) {
		sd_xol_free(slot);
		return err;
	}
	s->post_trap = sd_arch_xol_trap_addr(&s->insn, (uint64_t)slot);
	STORE_RELEASE(s->slot_post, slot);
	return 0;
}

static bool site_any_enabled(struct sd_site *s)
{
	for (int i = 0; i < s->probes->n; i++)
		if (sd_kprobe_enabled(s->probes->p[i]))
			return true;
	return false;
}

static int site_set_armed(struct sd_site *s, bool arm)
{
	struct sd_poke pk = {.addr = (void *)s->addr, .len = 1};
	int err;

	s->arm_pending = false;
	if (s->armed == arm)
		return 0;
	if (s->gone) {
		s->armed = arm; /* (no code there to write to) */
		return 0;
	}
	pk.new[0] = arm ? SD_ARCH_BP_INSN : s->insn.bytes[0];
	err = sd_text_poke_batch(&pk, 1);
	if (!err)
		s->armed = arm;
	return err;
}

void sd_site_arm_fallback(struct sd_site *s)
{
	if (!s->arm_pending)
		return;
	if (s->jump_only && sd_opt_allowed) {
		s->arm_pending = false; /* stays out: its probes never fire */
		return;
	}
	/* (optimization off: a breakpoint, as asked; a thread ending meets it and dies) */
	if (s->jump_only)
		sd_dbg("0x%lx: a breakpoint where glibc runs with every signal blocked",
		       (unsigned long)s->addr);
	if (site_set_armed(s, true))
		sd_warn("0x%lx: cannot write its breakpoint: its probes stay out",
			(unsigned long)s->addr);
}

/* a copy of @s's probe list with @add appended or @del removed */
static struct sd_probe_list *list_rebuild(struct sd_site *s, struct sonde_kprobe *add,
					  struct sonde_kprobe *del)
{
	struct sd_probe_list *old = s->probes, *l;
	int n = 0;

	l = calloc(1, sizeof(*l) + (old->n + 1) * sizeof(l->p[0]));
	if (!l)
		return NULL;
	for (int i = 0; i < old->n; i++)
		if (old->p[i] != del)
			l->p[n++] = old->p[i];
	if (add)
		l->p[n++] = add;
	l->n = n;
	return l;
}

static struct sd_site *probe_site(const struct sonde_kprobe *p)
{
	return p->__priv;
}

/* ---- registration ---------------------------------------------------------------- */

/*
 * Whether the handlers a hit of @p runs are integer code only: then, as if
 * flagged SONDE_KPROBE_FLAG_NOFPU, a jump-optimized hit saves no vector
 * state. A post_handler keeps the probe a breakpoint, where the signal
 * frame holds that state anyway.
 */
static bool handlers_vec_free(const struct sonde_kprobe *p)
{
	if (p->pre_handler == sd_kretprobe_pre_handler)
		return sd_kretprobe_vec_free(p);
	return sd_arch_code_vec_free((uint64_t)(uintptr_t)p->pre_handler);
}

/*
 * The sites whose jump (optimized) or whose jump to come (armed, not yet
 * optimized) would cover @addr: those starting up to a jump's length
 * before it. The kernel's rule: a probe inside an optimized one's jump
 * sends that one back to its breakpoint; once the probe inside is gone,
 * it may be optimized again.
 */
static int sites_before(uint64_t addr, struct sd_site *out[SD_OPT_MAX_BYTES])
{
	int n = 0;

	for (uint64_t a = addr - 1; a > addr - SD_OPT_MAX_BYTES && a < addr; a--)
		if ((out[n] = sd_site_lookup(a)))
			n++;
	return n;
}

/*
 * A probe is coming at @addr: the optimized sites whose jump covers it go
 * back to their breakpoints. 0, or an error when one could not (its jump
 * stays, and the new breakpoint must not go into it).
 */
static int unoptimize_covering(uint64_t addr)
{
	struct sd_site *v[SD_OPT_MAX_BYTES];
	int n = sites_before(addr, v), err = 0;

	for (int i = 0; i < n; i++) {
		int e;

		if (!v[i]->optimized || v[i]->addr + v[i]->region.len <= addr)
			continue;
		if (v[i]->jump_only) {
			/* its breakpoint could kill the process: the new probe is refused */
			err =
			    err ? err
				: sd_error(-EBUSY,
					   "0x%lx is inside the jump of the probe at 0x%lx, which "
					   "may only be a jump (glibc runs it with every signal "
					   "blocked, or every call runs it)",
					   (unsigned long)addr, (unsigned long)v[i]->addr);
			continue;
		}
		e = sd_site_unoptimize(v[i], true);
		if (e) {
			err = err ? err : e;
			continue;
		}
		v[i]->opt_why = sd_opt_why_inside;
		sd_sync_threads(); /* nobody is still in its jump's bytes or on the way */
	}
	return err;
}

/* no probe at @addr any more: the sites kept off their jump for it may go back on */
static void reoptimize_covering(uint64_t addr)
{
	struct sd_site *v[SD_OPT_MAX_BYTES];
	int n = sites_before(addr, v);

	for (int i = 0; i < n; i++)
		if (v[i]->opt_why == sd_opt_why_inside && v[i]->armed && !v[i]->detour)
			sd_site_queue_optimize(v[i]); /* the optimizer decides */
}

/*
 * glibc runs some of its code with every signal blocked, SIGTRAP included,
 * where a breakpoint kills the process: a thread's last steps, the child
 * of posix_spawn (system(), popen()) until its execve, a new thread's
 * first steps, raise(). So a probe in libc is armed by its jump when it
 * can be one (at registration, the optimizer run at once), a breakpoint
 * only when it cannot; and the functions of a thread's last steps
 * (start_thread: advise_stack_range; for a detached thread, freeing its
 * TLS and its stack), which every program with threads runs, are a jump
 * or nothing.
 */
static const char *const thread_end_names[] = {
    "getpagesize", "__getpagesize", "madvise", "__madvise", "free",
    "__libc_free", "cfree",	    "munmap",  "__munmap",
};
static const char *const thread_start_names[] = {
    "__ctype_init",
    "clone",
    "__clone",
    "__clone3",
    "__clone_internal",
    "__spawni",
    "__spawni_child",
    "__lll_lock_wait_private",
    "__lll_lock_wake_private",
};

static bool name_in(const char *const *v, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i], name))
			return true;
	return false;
}

int sd_libc_signals_blocked(const char *name)
{
	if (name_in(thread_end_names, ARRAY_SIZE(thread_end_names), name))
		return SD_BLOCKED_THREAD_END;
	if (name_in(thread_start_names, ARRAY_SIZE(thread_start_names), name))
		return SD_BLOCKED_THREAD_START;
	return 0;
}

static bool in_libc(const struct sd_module *m)
{
	return m && !strncmp(m->name, "libc.so", 7);
}

static bool site_in_libc(uint64_t addr)
{
	struct sd_maps *maps = sd_probe_maps(false);

	return maps && in_libc(sd_maps_find_addr(maps, addr));
}

/* the name, if @addr is in one of those libc functions */
static const char *signals_blocked_at(uint64_t addr)
{
	struct sd_maps *maps = sd_probe_maps(false);
	struct sd_module *m = maps ? sd_maps_find_addr(maps, addr) : NULL;
	struct sd_symtab *st = in_libc(m) ? sd_module_symtab(m) : NULL;
	const struct sd_sym *s, *first;
	uint64_t off;

	if (!st || !(s = sd_symtab_find_addr(st, addr - m->bias, &off)))
		return NULL;
	/* every alias: they sit next to each other in address order */
	first = sd_symtab_at(st, 0);
	for (size_t i = (size_t)(s - first); i < sd_symtab_count(st); i++) {
		const struct sd_sym *a = sd_symtab_at(st, i);

		if (a->value != s->value)
			break;
		if (sd_libc_signals_blocked(a->name))
			return a->name;
	}
	return NULL;
}

static int __register_kprobe(struct sonde_kprobe *p)
{
	struct sd_site *site, *fresh = NULL;
	struct sd_site_table *old_table = NULL;
	struct sd_probe_list *list, *old_list;
	const char *blocked;
	bool jump_first;
	uint64_t addr, claimed;
	int err, owner;

	if (p->__reserved[0] & SD_KP_REGISTERED)
		return sd_error(-EBUSY, "this kprobe is already registered");
	/* found again at each registration: the handlers may have changed since the last */
	p->__reserved[0] &= ~SD_KP_NOFPU;
	if ((p->flags & SONDE_KPROBE_FLAG_NOFPU) || (p->__reserved[0] & SD_KP_OWN_NOFPU) ||
	    handlers_vec_free(p))
		p->__reserved[0] |= SD_KP_NOFPU;
	err = sd_signal_setup();
	if (err)
		return err;
	err = sd_kprobe_resolve(p, &addr);
	if (err)
		return err;
	if ((claimed = sd_text_claimed(addr, 1, &owner))) {
		if (owner == SD_CLAIM_JUMP_LABEL)
			/* (the kernel's jump_label_text_reserved() answer) */
			return sd_error(
			    -EINVAL,
			    "0x%lx: a static tracepoint's jump label is there: "
			    "enable the tracepoint instead, or probe another instruction",
			    (unsigned long)addr);
		claimed_at = claimed;
		return sd_error(-EBUSY,
				"0x%lx: the function tracer has patched the entry nop there and "
				"did not give it up",
				(unsigned long)addr);
	}
	blocked = signals_blocked_at(addr);
	jump_first = (p->__reserved[0] & (SD_KP_JUMP_FIRST | SD_KP_JUMP_ONLY)) || blocked ||
		     site_in_libc(addr);

	site = sd_site_lookup(addr);
	if (!site) {
		err = unoptimize_covering(addr);
		if (err) {
			char why[256];

			/* (a copy: putting the jumps back may set an error of its own) */
			snprintf(why, sizeof(why), "%s", sonde_last_error());
			reoptimize_covering(addr);
			if (err == -EBUSY)
				return sd_error(err, "%s", why); /* (it says it all) */
			return sd_error(err,
					"0x%lx is inside the jump of an optimized probe, which "
					"cannot be taken off: %s",
					(unsigned long)addr, why);
		}
		err = site_create(addr, &fresh);
		if (err) {
			reoptimize_covering(addr);
			return err;
		}
		site = fresh;
	}
	if (p->post_handler) {
		err = site_add_post_slot(site);
		if (err)
			goto fail;
	}
	if (p->post_handler && (blocked || site->jump_only)) {
		err = sd_error(-EOPNOTSUPP,
			       "0x%lx: a post_handler needs a breakpoint, and there a breakpoint "
			       "could kill the process (glibc runs it with every signal blocked)",
			       (unsigned long)addr);
		goto fail;
	}
	list = list_rebuild(site, p, NULL);
	if (!list) {
		err = -ENOMEM;
		goto fail;
	}

	/*
	 * A post_handler needs the breakpoint, a handler that may touch vector
	 * registers a detour that saves them: off the jump before it can run
	 * there (sd_optprobe_handler also skips it on a detour that does not);
	 * a site that must not be a breakpoint gets a new jump at once instead
	 * (jump_settle)
	 */
	if (site->detour &&
	    (p->post_handler || (site->lite && !(p->__reserved[0] & SD_KP_NOFPU)))) {
		if (!p->post_handler && site->jump_first && sd_opt_allowed) {
			sd_site_unoptimize(site, false);
			site->arm_pending = true;
		} else {
			sd_site_unoptimize(site, true);
		}
		sd_sync_threads(); /* nobody is still on the way to the handler there */
	}

	p->addr = (void *)addr;
	sd_hit_register(p); /* nhit = 0, and a counter slot */
	p->nmissed = 0;
	p->__priv = site;
	p->__reserved[0] |= SD_KP_REGISTERED;
	p->flags &= ~SONDE_KPROBE_FLAG_GONE;
	old_list = site->probes;
	STORE_RELEASE(site->probes, list);
	sd_site_fast_update(site);
	if (fresh) {
		err = table_insert(fresh, &old_table);
		if (err) {
			/* the site was nowhere to be found: nobody can have read its list */
			site->probes = old_list;
			sd_hit_unregister(p);
			free(list);
			p->__priv = NULL;
			p->__reserved[0] &= ~SD_KP_REGISTERED;
			goto fail;
		}
		__atomic_add_fetch(&sd_code_gen, 1, __ATOMIC_SEQ_CST);
	}
	/* (disabled, it is armed by sonde_enable_kprobe: set_enabled) */
	site->jump_only |= (p->__reserved[0] & SD_KP_JUMP_ONLY) || blocked;
	site->jump_first |= jump_first;
	if (sd_kprobe_enabled(p) && jump_first && (fresh || site->arm_pending)) {
		/* the optimizer arms it (sd_site_arm_fallback when it cannot) */
		site->arm_pending = true;
		if (!sd_opt_allowed)
			sd_site_arm_fallback(site);
	} else if (sd_kprobe_enabled(p) && site->jump_first && !site->armed && sd_opt_allowed) {
		/* (disabled before: a jump again first) */
		site->arm_pending = true;
	} else if (sd_kprobe_enabled(p)) {
		err = site_set_armed(site, true);
		if (err) {
			/* unpublish what was published; nobody can have trapped on it */
			STORE_RELEASE(site->probes, old_list);
			sd_site_fast_update(site);
			if (fresh)
				table_remove(fresh);
			sd_sync_threads();
			sd_hit_unregister(p);
			free(list);
			free(old_table);
			p->__priv = NULL;
			p->__reserved[0] &= ~SD_KP_REGISTERED;
			goto fail;
		}
	}
	/*
	 * A trap may still be reading the old list or table; not the list a
	 * fresh site was made with, replaced before the site could be found.
	 */
	if (old_table || (old_list && !fresh))
		sd_sync_threads();
	free(old_table);
	free(old_list);
	if (site->optimized) {
		__atomic_or_fetch(&p->flags, SONDE_KPROBE_FLAG_OPTIMIZED, __ATOMIC_RELAXED);
	} else if (site->armed || site->arm_pending) {
		site->opt_tries = 0; /* (a new probe: the optimizer tries again) */
		sd_site_queue_optimize(site);
	}
	return 0;
fail:
	if (fresh)
		reoptimize_covering(addr); /* what it took off its jump may go back on */
	site_free(fresh);
	return err;
}

/* unlink @p; returns the site if it became empty (the caller frees it after sync) */
static struct sd_site *__unregister_kprobe(struct sonde_kprobe *p, void **garbage, int *ngarbage)
{
	struct sd_site *site = probe_site(p);
	struct sd_probe_list *list;

	if (!site || !(p->__reserved[0] & SD_KP_REGISTERED))
		return NULL;
	list = list_rebuild(site, NULL, p);
	if (!list)
		return NULL; /* out of memory: keep it registered rather than corrupt */
	garbage[(*ngarbage)++] = site->probes;
	STORE_RELEASE(site->probes, list);
	sd_site_fast_update(site);
	p->__reserved[0] &= ~SD_KP_REGISTERED;
	/* the marks a probe that is gone put on the site go with it (its address keeps its own) */
	if (list->n && !signals_blocked_at(site->addr)) {
		bool only = false, first = site_in_libc(site->addr);

		for (int i = 0; i < list->n; i++) {
			only |= !!(list->p[i]->__reserved[0] & SD_KP_JUMP_ONLY);
			first |=
			    !!(list->p[i]->__reserved[0] & (SD_KP_JUMP_FIRST | SD_KP_JUMP_ONLY));
		}
		site->jump_only = only;
		site->jump_first = first;
	}
	p->__priv = NULL;
	__atomic_and_fetch(&p->flags, ~SONDE_KPROBE_FLAG_OPTIMIZED, __ATOMIC_RELAXED);
	if (list->n && site_any_enabled(site))
		return NULL;
	sd_site_unoptimize(site, false);
	site_set_armed(site, false);
	if (list->n)
		return NULL;
	table_remove(site);
	__atomic_add_fetch(&sd_code_gen, 1, __ATOMIC_SEQ_CST);
	reoptimize_covering(site->addr);
	return site;
}

/*
 * A site waiting for its jump (in libc: signals_blocked_at) gets it now,
 * or its breakpoint; a jump-only one that cannot be a jump is refused
 * (-EOPNOTSUPP, left registered for the caller to take out): it could
 * never fire, and a breakpoint there could kill the process. Callers that
 * wait for the optimizer themselves (SD_KP_JUMP_FIRST) find out later.
 * With optimization off (debug.kprobes_optimization=0's "breakpoints
 * everywhere"), it is a breakpoint: the README says what that risks (a
 * warning on the program's stderr would change what it does).
 */
static int jump_settle(struct sonde_kprobe *p)
{
	struct sd_site *site = probe_site(p);
	const char *name;

	if (!site || !site->arm_pending || (p->__reserved[0] & SD_KP_JUMP_FIRST))
		return 0;
	sd_optimize_now();
	if (site->optimized || !site->jump_only || !sd_opt_allowed)
		return 0;
	name = signals_blocked_at(site->addr);
	return sd_error(-EOPNOTSUPP,
			"%s (0x%lx): glibc runs it with every signal blocked (a thread's last "
			"steps), where a breakpoint kills the process, and it cannot be a "
			"jump: %s",
			name ? name : "this function", (unsigned long)site->addr,
			site->opt_why ? site->opt_why
				      : (sd_opt_allowed ? "?" : "optimization is off"));
}

SONDE_API int sonde_register_kprobe(struct sonde_kprobe *p)
{
	uint64_t at;
	int err;

	if (!p)
		return -EINVAL;
	for (int tries = 0;; tries++) {
		lock();
		sd_error_clear();
		claimed_at = 0;
		err = __register_kprobe(p);
		if (!err)
			err = jump_settle(p);
		at = claimed_at;
		unlock();
		/* on a patched entry nop: the function tracer gives it up (claim.c) */
		if (err != -EBUSY || !at || tries == 2 || sd_text_release(at))
			break;
	}
	if (err == -EOPNOTSUPP && (p->__reserved[0] & SD_KP_REGISTERED)) {
		char msg[512];

		snprintf(msg, sizeof(msg), "%s", sonde_last_error());
		sonde_unregister_kprobe(p);
		sd_error(err, "%s", msg);
	}
	if (err)
		errno = -err;
	return err;
}

SONDE_API int sonde_register_kprobes(struct sonde_kprobe **kps, int num)
{
	int i, err = 0;

	if (!kps || num <= 0)
		return -EINVAL;
	for (i = 0; i < num; i++) {
		err = sonde_register_kprobe(kps[i]);
		if (err) {
			char msg[512];

			snprintf(msg, sizeof(msg), "%s", sonde_last_error());
			sonde_unregister_kprobes(kps, i);
			sd_error(err, "kprobe %d of %d: %s", i, num, msg);
			return err;
		}
	}
	return 0;
}

static void unregister_batch(struct sonde_kprobe **kps, int num)
{
	void **garbage;
	struct sd_site **sites;
	bool *was; /* which of them were registered */
	int ngarbage = 0, nsites = 0;

	garbage = calloc(2 * num + 1, sizeof(*garbage));
	sites = calloc(num + 1, sizeof(*sites));
	was = calloc(num + 1, sizeof(*was));
	if (!garbage || !sites || !was) {
		/* one at a time needs no arrays beyond one entry each */
		free(garbage);
		free(sites);
		free(was);
		for (int i = 0; i < num; i++) {
			void *g[2];
			int ng = 0;
			bool reg = kps[i] && (kps[i]->__reserved[0] & SD_KP_REGISTERED);
			struct sd_site *s = __unregister_kprobe(kps[i], g, &ng);

			if (sd_sync_threads() == 0 && reg)
				sd_hit_unregister(kps[i]);
			for (int k = 0; k < ng; k++)
				free(g[k]);
			site_free(s);
		}
		return;
	}
	for (int i = 0; i < num; i++) {
		struct sd_site *s;

		if (!kps[i] || !(kps[i]->__reserved[0] & SD_KP_REGISTERED))
			continue;
		was[i] = true;
		s = __unregister_kprobe(kps[i], garbage, &ngarbage);
		if (s)
			sites[nsites++] = s;
	}
	/* once no thread can be in a handler: their hits folded, sites and lists freed */
	if (sd_sync_threads() == 0) {
		for (int i = 0; i < num; i++)
			if (was[i])
				sd_hit_unregister(kps[i]);
		for (int k = 0; k < ngarbage; k++)
			free(garbage[k]);
		for (int k = 0; k < nsites; k++)
			site_free(sites[k]);
	}
	free(garbage);
	free(sites);
	free(was);
}

void sd_kprobes_forget_unmapped(void)
{
	static unsigned long long seen;
	unsigned long long now = sd_dl_loads();
	struct sonde_kprobe **v = NULL;
	struct sd_maps *maps;
	int n = 0, cap = 0;

	if (now == seen)
		return;
	lock();
	seen = now;
	maps = sd_probe_maps(true);
	for (uint64_t i = 0; maps && sd_sites && i <= sd_sites->mask; i++) {
		struct sd_site *s = sd_sites->slot[i];

		if (!s || s == &sd_site_gone || sd_maps_find_addr(maps, s->addr))
			continue;
		s->gone = true;
		for (int k = 0; k < s->probes->n; k++) {
			if (n == cap) {
				struct sonde_kprobe **w =
				    realloc(v, (cap = cap ? 2 * cap : 64) * sizeof(*w));

				if (!w)
					break;
				v = w;
			}
			v[n++] = s->probes->p[k];
		}
	}
	if (n) {
		sd_dbg("%d probes in code unmapped since: taken out", n);
		unregister_batch(v, n);
		for (int k = 0; k < n; k++)
			__atomic_or_fetch(&v[k]->flags, SONDE_KPROBE_FLAG_GONE, __ATOMIC_RELAXED);
	}
	unlock();
	free(v);
}

SONDE_API void sonde_unregister_kprobe(struct sonde_kprobe *p)
{
	if (!p)
		return;
	sonde_unregister_kprobes(&p, 1);
}

SONDE_API void sonde_unregister_kprobes(struct sonde_kprobe **kps, int num)
{
	if (!kps || num <= 0)
		return;
	lock();
	unregister_batch(kps, num);
	unlock();
}

bool sd_kprobe_jump_only(struct sonde_kprobe *p)
{
	struct sd_site *site;
	bool only;

	lock();
	site = p->__reserved[0] & SD_KP_REGISTERED ? probe_site(p) : NULL;
	only = site && site->jump_only;
	unlock();
	return only;
}

const char *sd_kprobe_opt_why(struct sonde_kprobe *p)
{
	struct sd_site *site;
	const char *why = NULL;

	lock();
	site = p->__reserved[0] & SD_KP_REGISTERED ? probe_site(p) : NULL;
	if (site)
		why = site->opt_why;
	unlock();
	return why;
}

static int set_enabled(struct sonde_kprobe *p, bool enable)
{
	struct sd_site *site;
	int err = 0;

	if (!p)
		return -EINVAL;
	lock();
	site = probe_site(p);
	if (!site || !(p->__reserved[0] & SD_KP_REGISTERED)) {
		err = sd_error(-EINVAL, "the kprobe is not registered");
		goto out;
	}
	if (enable)
		__atomic_and_fetch(&p->flags, ~SONDE_KPROBE_FLAG_DISABLED, __ATOMIC_RELEASE);
	else
		__atomic_or_fetch(&p->flags, SONDE_KPROBE_FLAG_DISABLED, __ATOMIC_RELEASE);
	sd_site_fast_update(site);
	if (!site_any_enabled(site)) {
		sd_site_unoptimize(site, false);
		site->arm_pending = false;
	}
	if (site_any_enabled(site) && site->jump_first && !site->armed && sd_opt_allowed) {
		/* its jump first, as at its registration (never a breakpoint meanwhile) */
		site->arm_pending = true;
		site->opt_tries = 0;
		sd_site_queue_optimize(site);
		err = jump_settle(p);
		if (err && enable) {
			/* as it was: disabled */
			__atomic_or_fetch(&p->flags, SONDE_KPROBE_FLAG_DISABLED, __ATOMIC_RELEASE);
			sd_site_fast_update(site);
		}
		goto out;
	}
	err = site_set_armed(site, site_any_enabled(site));
	if (!err && site->armed) {
		site->opt_tries = 0;
		sd_site_queue_optimize(site);
	}
out:
	unlock();
	return err;
}

SONDE_API int sonde_enable_kprobe(struct sonde_kprobe *p)
{
	return set_enabled(p, true);
}

SONDE_API int sonde_disable_kprobe(struct sonde_kprobe *p)
{
	return set_enabled(p, false);
}

SONDE_API unsigned long sonde_kprobe_hits(const struct sonde_kprobe *p)
{
	return sd_hit_count(p);
}

SONDE_API unsigned long sonde_kprobe_missed(const struct sonde_kprobe *p)
{
	return __atomic_load_n(&p->nmissed, __ATOMIC_RELAXED);
}
