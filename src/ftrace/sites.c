// SPDX-License-Identifier: MIT
/*
 * sites.c - where the function tracers hook each function of each loaded
 * object, and turning them on and off.
 *
 * Objects are looked at once, when a tracer first needs them:
 *
 *   __patchable_function_entries   entry nops (>= 5 bytes, none before the
 *                                  entry) patched into `jmp <stub>`
 *   __mcount_loc of -mnop-mcount   5-byte nops, likewise
 *   imports mcount / __fentry__    a -pg build: its calls reach libsonde's
 *                                  exported ones; nothing to patch
 *   anything else                  a probe at every function symbol
 *
 * Each patched nop jumps to a stub of its own, within reach of a rel32
 * jump, made when the function is first hooked and kept (ftrace_stub.c).
 *
 * Not traced, and said so: sonde itself and what it runs on (the dynamic
 * loader, Zydis, elfutils), functions that return twice (setjmp, vfork…:
 * their return address cannot be swapped), and what cannot be probed.
 */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <gelf.h>
#include <link.h>
#include <pthread.h>
#include <libelf.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SD_LOG_PREFIX "ftrace"
#include "arch/arch.h"
#include "common/log.h"
#include "common/safe_mem.h"
#include "ftrace/fgraph.h"
#include "ftrace/ftrace.h"
#include "ftrace/sites.h"
#include "sym/elf_file.h"
#include "probe/probe.h"
#include "probe/thread.h"
#include "sym/sym.h"

static struct ft_obj *objs;
static size_t nobjs;

static const char *const never_objects[] = {
    "libsonde", "ld-linux", "libZydis", "libZycore", "libelf", "libdw",
};

/* functions whose return address cannot be swapped: they return twice */
static const char *const returns_twice[] = {
    "setjmp",
    "_setjmp",
    "__setjmp",
    "sigsetjmp",
    "__sigsetjmp",
    "_longjmp",
    "vfork",
    "__vfork",
    "getcontext",
    "swapcontext",
    "__libc_start_main",
    "__restore_rt",
    "_dl_runtime_resolve",
    "__tls_get_addr",
};

/*
 * where sonde watches exceptions (unwind.c): a return address swapped after
 * the throw was seen would stop the unwinder
 */
static const char *const unwinder[] = {
    "_Unwind_RaiseException", "_Unwind_Resume_or_Rethrow", "_Unwind_ForcedUnwind",
    "_Unwind_Resume",	      "__cxa_begin_catch",
};

static bool listed(const char *const *list, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(list[i], name))
			return true;
	return false;
}

/* ---- reading an object ---------------------------------------------------------------- */

struct sections {
	uint64_t pfe_addr, pfe_size;
	uint64_t mcount_addr, mcount_size;
	bool imports_pg;
	char *soname, *needed; /* malloc'ed, see struct ft_obj */
};

/* DT_NEEDED and DT_SONAME of the .dynamic section @scn */
static void read_dynamic(Elf *e, Elf_Scn *scn, const GElf_Shdr *sh, struct sections *sec)
{
	Elf_Data *d = elf_getdata(scn, NULL);
	size_t n = sh->sh_entsize ? sh->sh_size / sh->sh_entsize : 0, len = 0;

	for (size_t i = 0; d && i < n; i++) {
		GElf_Dyn dyn;
		const char *s;

		if (!gelf_getdyn(d, (int)i, &dyn) || dyn.d_tag == DT_NULL)
			break;
		if (dyn.d_tag != DT_NEEDED && dyn.d_tag != DT_SONAME)
			continue;
		s = elf_strptr(e, sh->sh_link, dyn.d_un.d_val);
		if (!s)
			continue;
		if (dyn.d_tag == DT_SONAME) {
			free(sec->soname);
			sec->soname = strdup(s);
		} else {
			size_t l = strlen(s) + 1;
			char *v = realloc(sec->needed, len + l + 1);

			if (!v)
				continue;
			memcpy(v + len, s, l);
			len += l;
			v[len] = '\0';
			sec->needed = v;
		}
	}
}

static void read_sections(const char *path, struct sections *sec)
{
	Elf *e;
	Elf_Scn *scn = NULL;
	size_t shstrndx;
	int fd;

	memset(sec, 0, sizeof(*sec));
	if (sd_elf_open(path, &fd, &e))
		return;
	if (elf_getshdrstrndx(e, &shstrndx)) {
		sd_elf_close(fd, e);
		return;
	}
	while ((scn = elf_nextscn(e, scn))) {
		GElf_Shdr sh;
		const char *name;

		if (!gelf_getshdr(scn, &sh))
			continue;
		name = elf_strptr(e, shstrndx, sh.sh_name);
		if (!name)
			continue;
		if (!strcmp(name, "__patchable_function_entries") && (sh.sh_flags & SHF_ALLOC)) {
			sec->pfe_addr = sh.sh_addr;
			sec->pfe_size = sh.sh_size;
		} else if (!strcmp(name, "__mcount_loc") && (sh.sh_flags & SHF_ALLOC)) {
			sec->mcount_addr = sh.sh_addr;
			sec->mcount_size = sh.sh_size;
		} else if (sh.sh_type == SHT_DYNAMIC) {
			read_dynamic(e, scn, &sh, sec);
		} else if (sh.sh_type == SHT_DYNSYM) {
			Elf_Data *d = elf_getdata(scn, NULL);
			size_t n = sh.sh_entsize ? sh.sh_size / sh.sh_entsize : 0;

			for (size_t i = 0; d && i < n; i++) {
				GElf_Sym s;
				const char *sn;

				if (!gelf_getsym(d, (int)i, &s) || s.st_shndx != SHN_UNDEF)
					continue;
				sn = elf_strptr(e, sh.sh_link, s.st_name);
				if (sn && (!strcmp(sn, "mcount") || !strcmp(sn, "__fentry__")))
					sec->imports_pg = true;
			}
		}
	}
	sd_elf_close(fd, e);
}

static bool is_nop5(const uint8_t *b)
{
	static const uint8_t nopl[5] = {0x0f, 0x1f, 0x44, 0x00, 0x00};

	if (!memcmp(b, nopl, 5))
		return true;
	for (int i = 0; i < 5; i++)
		if (b[i] != 0x90)
			return false;
	return true;
}

static int add_func(struct ft_obj *o, uint64_t addr, const char *name, int kind, const char *why)
{
	struct ft_func *f;

	if (o->nfuncs == o->capfuncs) {
		size_t c = o->capfuncs ? 2 * o->capfuncs : 256;
		struct ft_func *v = realloc(o->funcs, c * sizeof(*v));

		if (!v)
			return -ENOMEM;
		o->funcs = v;
		o->capfuncs = c;
	}
	f = &o->funcs[o->nfuncs];
	memset(f, 0, sizeof(*f));
	/* the maps, and their symbol tables, are read again when objects come and go */
	f->name = strdup(name);
	if (!f->name)
		return -ENOMEM;
	o->nfuncs++;
	f->addr = addr;
	f->kind = kind;
	f->why = why;
	return 0;
}

static void add_alias(struct ft_func *f, const char *name)
{
	size_t have = 0, len = strlen(name) + 1;
	char *v;

	if (!strcmp(name, f->name))
		return;
	for (const char *a = f->aliases; a && *a; a += strlen(a) + 1) {
		if (!strcmp(a, name))
			return;
		have = (size_t)(a - f->aliases) + strlen(a) + 1;
	}
	v = realloc(f->aliases, have + len + 1);
	if (!v)
		return; /* (a name less to match) */
	memcpy(v + have, name, len);
	v[have + len] = '\0';
	f->aliases = v;
}

/* the function sites listed in a section of pointers (relocated in memory) */
/* @len bytes of code at @addr as they were before any probe went there */
static bool read_code(uint8_t *buf, uint64_t addr, size_t len)
{
	bool ok;

	sd_enter_sonde();
	pthread_mutex_lock(&sd_probe_mutex);
	ok = !sd_safe_read(buf, (void *)addr, len);
	if (ok)
		sd_recover_code(buf, addr, len);
	pthread_mutex_unlock(&sd_probe_mutex);
	sd_leave_sonde();
	return ok;
}

static void sites_from_section(struct ft_obj *o, struct sd_module *m, uint64_t addr, uint64_t size,
			       int kind)
{
	struct sd_symtab *st = sd_module_symtab(m);

	for (uint64_t off = 0; off + 8 <= size; off += 8) {
		uint64_t site, symoff;
		uint8_t code[5];
		const struct sd_sym *sym;

		if (sd_safe_read(&site, (void *)(m->bias + addr + off), 8) || !site)
			continue;
		sym = st ? sd_symtab_find_addr(st, site - m->bias, &symoff) : NULL;
		if (!sym || symoff) {
			/* nops before the entry (N,M with M > 0) are never run: not usable */
			add_func(o, site, sym ? sym->name : "?", FT_NONE,
				 "patchable entry not at the function's start");
			continue;
		}
		if (!read_code(code, site, 5) || !is_nop5(code)) {
			add_func(o, site, sym->name, FT_NONE,
				 "fewer than 5 bytes of nops at entry");
			continue;
		}
		add_func(o, site, sym->name, kind, NULL);
		memcpy(o->funcs[o->nfuncs - 1].orig, code, 5);
	}
}

static void sites_from_symbols(struct ft_obj *o, struct sd_module *m, int kind)
{
	struct sd_symtab *st = sd_module_symtab(m);
	uint64_t last = 0;

	for (size_t i = 0; st && i < sd_symtab_count(st); i++) {
		const struct sd_sym *s = sd_symtab_at(st, i);

		/*
		 * An IFUNC's value is its resolver, run once by the dynamic
		 * linker: the calls go to what it resolved to, a symbol of its
		 * own (sym.h: resolved), sized or not.
		 */
		if (s->type != SD_SYM_FUNC || (!s->size && !s->resolved) ||
		    !sd_symtab_vaddr_is_exec(st, s->value))
			continue;
		if (s->value + m->bias == last) {
			/* an alias: once per address, filters match it too */
			if (o->nfuncs && o->funcs[o->nfuncs - 1].addr == last) {
				add_alias(&o->funcs[o->nfuncs - 1], s->name);
				/* (an unstripped libc names its memcpy code itself) */
				o->funcs[o->nfuncs - 1].resolved |= s->resolved;
			}
			continue;
		}
		last = s->value + m->bias;
		if (!strcmp(s->name, "_start") || !strcmp(s->name, "_dl_start_user"))
			/* the process's first instruction: [rsp] is argc, not a return address */
			add_func(o, last, s->name, FT_NONE,
				 "the entry point: nothing returns from it");
		else if (strstr(s->name, ".cold"))
			/* the unlikely half gcc split off: jumped to, no return address at entry */
			add_func(o, last, s->name, FT_NONE,
				 "a function's cold part, entered by a jump");
		else if (listed(returns_twice, ARRAY_SIZE(returns_twice), s->name))
			add_func(o, last, s->name, FT_NONE, "returns twice (setjmp-like)");
		else if (sd_libc_signals_blocked(s->name) == SD_BLOCKED_THREAD_START)
			add_func(o, last, s->name, FT_NONE,
				 "libc runs it with every signal blocked");
		else if (listed(unwinder, ARRAY_SIZE(unwinder), s->name))
			add_func(o, last, s->name, FT_NONE, "the exception unwinder's entry");
		else
			add_func(o, last, s->name, kind, NULL);
		if (s->resolved && o->nfuncs && o->funcs[o->nfuncs - 1].addr == last)
			o->funcs[o->nfuncs - 1].resolved = true;
	}
}

static int cmp_func(const void *a, const void *b)
{
	const struct ft_func *x = a, *y = b;

	return (x->addr > y->addr) - (x->addr < y->addr);
}

struct ns_probe {
	uint64_t start, end;
	bool found;
};

static int ns_one(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct ns_probe *p = arg;

	(void)size;
	for (int i = 0; i < info->dlpi_phnum && !p->found; i++) {
		uint64_t a = info->dlpi_addr + info->dlpi_phdr[i].p_vaddr;

		if (info->dlpi_phdr[i].p_type == PT_LOAD && a >= p->start && a < p->end)
			p->found = true;
	}
	return p->found;
}

/*
 * The program's own link namespace: dl_iterate_phdr() lists its caller's.
 * Objects of another (an LD_AUDIT module's own libc, dlmopen) are left alone.
 */
static bool in_base_namespace(const struct sd_module *m)
{
	struct ns_probe p = {m->start, m->end, false};

	dl_iterate_phdr(ns_one, &p);
	return p.found;
}

/*
 * sonde's own objects (but the dynamic linker, which calls the program's
 * constructors and destructors): the calls their code makes are not traced
 */
static void add_self(const struct ft_obj *o)
{
	struct sd_fgraph_state *st = &sd_fgraph;
	int n = st->nself;

	if (o->is_main || n == SD_FG_SELF_MAX)
		return; /* (sonde linked into the program: its calls are the program's) */
	st->self[n + 1].start = o->start;
	st->self[n + 1].end = o->end;
	if (!n || o->start < st->self[0].start)
		st->self[0].start = o->start;
	if (!n || o->end > st->self[0].end)
		st->self[0].end = o->end;
	/* the hot path reads nself last */
	__atomic_store_n(&st->nself, n + 1, __ATOMIC_RELEASE);
}

/* @o is the program's after all: calls from its code are traced (the span stays wider) */
static void drop_self(const struct ft_obj *o)
{
	struct sd_fgraph_state *st = &sd_fgraph;

	for (int i = 1; i <= st->nself; i++)
		if (st->self[i].start == o->start && st->self[i].end == o->end) {
			STORE_RELEASE(st->self[i].end, st->self[i].start);
			break;
		}
}

static int scan_object(struct sd_module *m, struct ft_obj *o)
{
	struct sections sec;

	memset(o, 0, sizeof(*o));
	o->path = strdup(m->path);
	o->name = o->path ? strrchr(o->path, '/') : NULL;
	o->name = o->name ? o->name + 1 : o->path;
	o->start = m->start;
	o->end = m->end;
	o->bias = m->bias;
	o->is_main = m->is_main;
	if (!o->path)
		return -ENOMEM;
	read_sections(m->path, &sec);
	o->soname = sec.soname;
	o->needed = sec.needed;
	for (size_t i = 0; i < ARRAY_SIZE(never_objects); i++)
		if (!strncmp(o->name, never_objects[i], strlen(never_objects[i]))) {
			o->kind = FT_NONE;
			o->why = "sonde runs on it";
			if (strcmp(never_objects[i], "ld-linux"))
				add_self(o);
			return 0;
		}
	if (!in_base_namespace(m)) {
		o->kind = FT_NONE;
		o->why = "in another link namespace (sonde's start-up tracer, or dlmopen)";
		return 0;
	}
	/* a program sonde is statically linked into: its functions and sonde's are one */
	if ((uint64_t)(uintptr_t)sd_arch_ftrace_stub_entry >= m->start &&
	    (uint64_t)(uintptr_t)sd_arch_ftrace_stub_entry < m->end) {
		o->kind = FT_NONE;
		o->why = "sonde is linked into it";
		return 0;
	}
	if (sec.pfe_size) {
		o->kind = FT_NOP;
		o->how = "patchable function entries";
		sites_from_section(o, m, sec.pfe_addr, sec.pfe_size, FT_NOP);
	} else if (sec.mcount_size && !sec.imports_pg) {
		/* (-mrecord-mcount without -mnop-mcount lists calls: a -pg object) */
		o->kind = FT_NOP;
		o->how = "__mcount_loc nops";
		sites_from_section(o, m, sec.mcount_addr, sec.mcount_size, FT_NOP);
	} else if (sec.imports_pg) {
		o->kind = FT_PG;
		o->how = "-pg calls to mcount/__fentry__";
		sites_from_symbols(o, m, FT_PG);
	} else {
		o->kind = FT_PROBE;
		o->how = "entry probes on function symbols";
		sites_from_symbols(o, m, FT_PROBE);
	}
	/* the filters' ranges end each function at the next one */
	qsort(o->funcs, o->nfuncs, sizeof(*o->funcs), cmp_func);
	return 0;
}

/* the object a DT_NEEDED name stands for */
static struct ft_obj *needed_object(const char *name)
{
	for (size_t k = 0; k < nobjs; k++)
		if ((objs[k].soname && !strcmp(objs[k].soname, name)) ||
		    (objs[k].name && !strcmp(objs[k].name, name)))
			return &objs[k];
	return NULL;
}

/* @o and what it needs, transitively: @bit set in @mark */
static void reach(const struct ft_obj *o, uint8_t *mark, uint8_t bit)
{
	size_t k = (size_t)(o - objs);

	if (mark[k] & bit)
		return;
	mark[k] |= bit;
	for (const char *a = o->needed; a && *a; a += strlen(a) + 1) {
		const struct ft_obj *d = needed_object(a);

		if (d)
			reach(d, mark, bit);
	}
}

/*
 * The libraries loaded only because libsonde needs them (libdw's libz,
 * liblzma, libbz2): not the program's, so not traced, not listed, and
 * the calls their code makes (their destructors' __cxa_finalize) are
 * sonde's. What libsonde needs and the program needs too (its executable,
 * what it preloaded or dlopen()ed, and what those need) stays the
 * program's; a library becomes the program's once something of it needs
 * it.
 */
static void classify(void)
{
	uint8_t *mark = calloc(nobjs ? nobjs : 1, 1);

	if (!mark)
		return;
	for (size_t k = 0; k < nobjs; k++)
		if (!objs[k].is_main && objs[k].name && !strncmp(objs[k].name, "libsonde", 8))
			reach(&objs[k], mark, 1);
	for (size_t k = 0; k < nobjs; k++)
		if (objs[k].is_main || !(mark[k] & 1))
			reach(&objs[k], mark, 2);
	for (size_t k = 0; k < nobjs; k++) {
		struct ft_obj *o = &objs[k];
		bool sonde_only = (mark[k] & 1) && !(mark[k] & 2);

		if (sonde_only && !o->for_sonde && !o->why) {
			o->for_sonde = true;
			o->why = "loaded only because sonde needs it";
			add_self(o);
		} else if (!sonde_only && o->for_sonde) {
			o->for_sonde = false;
			o->why = NULL;
			drop_self(o);
		}
	}
	free(mark);
}

/* an object unmapped (dlclose): its probes went with it (sd_kprobes_forget_unmapped) */
static void object_free(struct ft_obj *o)
{
	for (size_t k = 0; k < o->nfuncs; k++) {
		struct ft_func *f = &o->funcs[k];

		/* its patched nops' claims (claim.c): another object may come there */
		if (f->kind == FT_NOP && f->on && !f->kp)
			sd_text_unclaim(&f->addr, 1);
		if (f->kp) {
			sonde_unregister_kprobe(f->kp); /* (nothing, if it was forgotten) */
			free(f->kp);
		}
		free((void *)f->name);
		free(f->aliases);
	}
	if (o->for_sonde)
		drop_self(o);
	free(o->funcs);
	free(o->path);
	free(o->soname);
	free(o->needed);
	/* (its functions' stubs: xol memory near an object gone, kept) */
}

static bool still_mapped(const struct ft_obj *o, struct sd_maps *maps)
{
	for (size_t i = 0; i < sd_maps_count(maps); i++) {
		const struct sd_module *m = sd_maps_at(maps, i);

		if (m->start == o->start && o->path && !strcmp(m->path, o->path))
			return true;
	}
	return false;
}

struct ft_func *sd_ft_func_at(uint64_t addr)
{
	for (size_t i = 0; i < nobjs; i++)
		for (size_t k = 0; k < objs[i].nfuncs; k++)
			if (objs[i].funcs[k].addr == addr)
				return &objs[i].funcs[k];
	return NULL;
}

/*
 * (a maps list of our own: the probe engine's is replaced under its own lock,
 * and its optimizer reads it from another thread)
 */
struct ft_obj *sd_ft_objects(size_t *n)
{
	struct sd_maps *maps = NULL;
	bool added = false;

	if (sd_maps_read(0, &maps))
		maps = NULL;
	for (size_t k = 0; maps && k < nobjs;) {
		if (still_mapped(&objs[k], maps)) {
			k++;
			continue;
		}
		sd_kprobes_forget_unmapped();
		object_free(&objs[k]);
		memmove(&objs[k], &objs[k + 1], (nobjs - k - 1) * sizeof(*objs));
		nobjs--;
	}

	for (size_t i = 0; maps && i < sd_maps_count(maps); i++) {
		struct sd_module *m = sd_maps_at(maps, i);
		bool known = false;
		struct ft_obj *bigger;

		for (size_t k = 0; k < nobjs; k++)
			if (objs[k].start == m->start && objs[k].path &&
			    !strcmp(objs[k].path, m->path))
				known = true;
		if (known)
			continue;
		bigger = realloc(objs, (nobjs + 1) * sizeof(*objs));
		if (!bigger)
			break;
		objs = bigger;
		if (scan_object(m, &objs[nobjs]) == 0) {
			nobjs++;
			added = true;
		}
	}
	if (maps)
		sd_maps_free(maps);
	if (added)
		classify();
	*n = nobjs;
	return objs;
}

/* ---- filters -------------------------------------------------------------------------- */

/* "glob", "glob:mod:object", ":mod:object" (the kernel's forms) */
static bool matches_one(const char *pat, const struct ft_obj *o, const char *fn)
{
	const char *mod = strstr(pat, ":mod:");
	char glob[256];

	if (mod) {
		size_t gl = (size_t)(mod - pat);
		const char *want = mod + 5;
		size_t wl = strcspn(o->name, ".-");

		/* libc matches libc.so.6, as the kernel's module names have no suffix */
		if (fnmatch(want, o->name, 0) &&
		    !(strlen(want) == wl && !strncmp(want, o->name, wl)))
			return false;
		if (!gl)
			return true;
		snprintf(glob, sizeof(glob), "%.*s", (int)gl, pat);
		return !fnmatch(glob, fn, 0);
	}
	return !fnmatch(pat, fn, 0);
}

/* @pat matches one of @f's names */
static bool matches_func(const char *pat, const struct ft_obj *o, const struct ft_func *f)
{
	if (matches_one(pat, o, f->name))
		return true;
	for (const char *a = f->aliases; a && *a; a += strlen(a) + 1)
		if (matches_one(pat, o, a))
			return true;
	return false;
}

/*
 * A filter file's entries: globs, and "!glob" for what a `!` write took out
 * of the functions the globs select (the kernel keeps functions, sonde the
 * patterns, so that objects loaded later are matched too).
 * 1: selected, 0: not, -1: the list has no positive entry.
 */
static int list_match(char **list, int n, const struct ft_obj *o, const struct ft_func *f)
{
	bool any = false, in = false;

	for (int i = 0; i < n && !in; i++)
		if (list[i][0] != '!') {
			any = true;
			in = matches_func(list[i], o, f);
		}
	if (!any)
		return -1;
	for (int i = 0; i < n && in; i++)
		if (list[i][0] == '!' && matches_func(list[i] + 1, o, f))
			in = false;
	return in;
}

bool sd_ft_selected(const struct sd_ftrace_opts *o, const struct ft_obj *obj,
		    const struct ft_func *f)
{
	return list_match(o->filter, o->nfilter, obj, f) != 0 &&
	       list_match(o->notrace, o->nnotrace, obj, f) != 1;
}

bool sd_ft_in_list(char **list, int n, const struct ft_obj *obj, const struct ft_func *f)
{
	return list_match(list, n, obj, f) == 1;
}

bool sd_ft_matches(const char *glob, const struct ft_obj *obj, const struct ft_func *f)
{
	return matches_func(glob, obj, f);
}
