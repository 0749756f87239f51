// SPDX-License-Identifier: MIT
/*
 * tracepoint.c - the static tracepoints of every object of the process, as
 * trace events (tracepoint.h tells the model).
 *
 *   object (tp_object)      a loaded executable or library, known by its
 *                           load bias and name (dl_iterate_phdr)
 *   instance (tp_inst)      one struct sonde_tracepoint of an object, its
 *                           call sites, the key references held on it
 *   event (tp_event)        system:name, an sd_event; usually one instance,
 *                           more when several objects carry the same event
 *
 * An object's descriptors and jump entries are read in memory, from inside
 * a dl_iterate_phdr() callback that found it loaded. Their pointers are
 * checked to point into the object's segments: an object still being
 * relocated by another thread's dlopen() fails the check and is looked at
 * again at the next refresh. Each registered descriptor gets priv (its
 * instance) and then rt (the reserve/commit functions): priv also proves,
 * later, that the object at that address is still the load we registered
 * (a library unloaded and loaded again has fresh, zeroed descriptors).
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sonde/tracepoint.h>

#define SD_LOG_PREFIX "tracepoint"
#include "common/compiler.h"
#include "common/log.h"
#include "probe/probe.h"
#include "probe/thread.h"
#include "trace/errlog.h"
#include "trace/printfmt.h"
#include "trace/trace.h"
#include "tracepoint/tracepoint.h"

#define MAX_SEGS      16
#define MAX_FIELDS    256
#define MAX_RETRIES   64
#define TP_SECTION    "__sonde_tracepoints"
#define JUMP_SECTION  "__sonde_jump_table"
#define PRINT_FMT_MAX 65536

struct tp_range {
	uint64_t lo, hi;
	bool exec;
};

struct tp_event;
struct tp_object;

struct tp_inst {
	struct sonde_tracepoint *tp; /* in the object */
	struct tp_object *obj;
	struct tp_event *te;
	struct tp_inst *next; /* the event's instances */
	struct sd_jump_site *sites;
	unsigned int nsites;
	unsigned int refs; /* key references this runtime holds */
	bool broken;	   /* its sites were not nops: never patched */
};

struct tp_object {
	struct tp_object *next;
	char *name; /* dlpi_name: "" for the executable */
	uint64_t bias;
	struct tp_inst **insts;
	unsigned int ninsts;
	struct tp_inst *marker; /* an instance whose tp->priv identifies this load */
	bool seen;
};

struct tp_event {
	struct sd_event ev;
	struct sd_printfmt *pf;
	struct tp_inst *insts;
	unsigned int extra_refs; /* sd_tracepoint_get() */
	bool fresh;		 /* created by this refresh: set_event_pending applies */
};

/* what a new object's descriptors say, before anything is registered */
struct tp_desc {
	struct sonde_tracepoint *tp;
	char system[SD_EVENT_NAME_MAX], name[SD_EVENT_NAME_MAX];
	char *print_fmt;
	struct sd_field *fields;
	unsigned int nfields;
	uint32_t entry_size;
	struct sd_jump_site *sites;
	unsigned int nsites;
	bool broken;
};

/* a loaded object, as dl_iterate_phdr shows it */
struct loaded {
	char *name;
	uint64_t bias;
	struct tp_range seg[MAX_SEGS];
	int nseg;
	struct tp_object *known;
	bool is_main;
	/* for a new object with tracepoints: its sections (link-time addresses) */
	uint64_t tp_addr, tp_size, jt_addr, jt_size;
};

/* the descriptions of events gone with their objects (the EVENTS answer) */
static char *retired[SD_TRACEPOINT_RETIRED_MAX];
static unsigned int retired_next;

static struct {
	bool active;
	struct tp_object *objects;
	unsigned long long adds, subs;
	bool have_counts;
	bool retry; /* an object could not be read yet */
	int retries;
} tps;

static const struct sd_event_ops tp_event_ops;

/* ---- the write path (any thread, lock-free) ----------------------------------------------- */

struct tp_res {
	struct sd_trace_res tr;
	struct sd_event *ev;
	uint8_t prev_active;
};

_Static_assert(sizeof(struct tp_res) <= sizeof(struct sonde_tp_res),
	       "struct sonde_tp_res is too small");

/*
 * The thread marked as inside (@prev: its mark before), so that nothing it
 * uses is freed under it until it leaves; @tp's event, or NULL. A record
 * too big for a ring page (the record function sized it) counts as missed.
 * No hit count: a locked add would cost as much as the rest (the kernel has
 * none).
 */
SD_NOTRACE static inline __attribute__((always_inline)) struct tp_event *
tp_enter(struct sonde_tracepoint *tp, struct sd_thread *t, uint8_t prev, uint32_t len)
{
	struct tp_inst *in;
	struct tp_event *te;

	if (unlikely(!t->registered))
		sd_thread_register(t);
	sd_thread_enter(t, prev);
	barrier();
	in = __atomic_load_n((struct tp_inst **)&tp->priv, __ATOMIC_ACQUIRE);
	te = in ? __atomic_load_n(&in->te, __ATOMIC_ACQUIRE) : NULL;
	if (unlikely(te && len > SD_RB_MAX_PAYLOAD)) {
		__atomic_add_fetch(&te->ev.nmissed, 1, __ATOMIC_RELAXED);
		return NULL;
	}
	return te;
}

SD_NOTRACE static inline void tp_leave(struct sd_thread *t, uint8_t prev)
{
	barrier();
	t->active = prev;
}

SD_NOTRACE SD_HOT static void *tp_reserve(struct sonde_tracepoint *tp, uint32_t len,
					  struct sonde_tp_res *r)
{
	struct tp_res *res = (struct tp_res *)r;
	struct sd_thread *t = &sd_self;
	uint8_t prev = t->active;
	struct tp_event *te = tp_enter(tp, t, prev, len);
	void *entry;

	/* inside until commit */
	entry = te ? sd_trace_reserve(&te->ev, len, &res->tr) : NULL;
	if (!entry) {
		tp_leave(t, prev);
		return NULL;
	}
	res->ev = &te->ev;
	res->prev_active = prev;
	return entry;
}

SD_NOTRACE SD_HOT static void tp_commit(struct sonde_tracepoint *tp, struct sonde_tp_res *r)
{
	struct tp_res *res = (struct tp_res *)r;

	(void)tp;
	sd_trace_commit(res->ev, &res->tr);
	tp_leave(&sd_self, res->prev_active);
}

SD_NOTRACE SD_HOT static void tp_write(struct sonde_tracepoint *tp, const void *rec, uint32_t len)
{
	struct sd_thread *t = &sd_self;
	uint8_t prev = t->active;
	struct tp_event *te = tp_enter(tp, t, prev, len);

	if (likely(te))
		sd_trace_write(&te->ev, rec, len);
	tp_leave(t, prev);
}

static const struct sonde_tp_runtime tp_runtime = {
    .abi = SONDE_TP_RT_WRITE,
    .reserve = tp_reserve,
    .commit = tp_commit,
    .write = tp_write,
};

/* ---- reading an object's file: where its sections are ------------------------------------ */

static int read_at(int fd, void *buf, size_t len, uint64_t off)
{
	ssize_t n = pread(fd, buf, len, (off_t)off);

	return n == (ssize_t)len ? 0 : -EIO;
}

/* the link-time address and size of the tracepoint and jump sections of @path */
static int elf_sections(const char *path, struct loaded *l)
{
	Elf64_Ehdr eh;
	Elf64_Shdr *sh = NULL;
	char *names = NULL;
	size_t shnum, strndx;
	int fd, err = -ENOENT;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (read_at(fd, &eh, sizeof(eh), 0) || memcmp(eh.e_ident, ELFMAG, SELFMAG) ||
	    eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_shentsize != sizeof(Elf64_Shdr) ||
	    !eh.e_shoff)
		goto out;
	shnum = eh.e_shnum;
	strndx = eh.e_shstrndx;
	if (!shnum || strndx == SHN_XINDEX) { /* extended numbering: in section 0 */
		Elf64_Shdr s0;

		if (read_at(fd, &s0, sizeof(s0), eh.e_shoff))
			goto out;
		if (!shnum)
			shnum = s0.sh_size;
		if (strndx == SHN_XINDEX)
			strndx = s0.sh_link;
	}
	if (!shnum || shnum > 1u << 20 || strndx >= shnum)
		goto out;
	sh = malloc(shnum * sizeof(*sh));
	if (!sh || read_at(fd, sh, shnum * sizeof(*sh), eh.e_shoff))
		goto out;
	if (sh[strndx].sh_size > (1u << 24))
		goto out;
	names = malloc(sh[strndx].sh_size + 1);
	if (!names || read_at(fd, names, sh[strndx].sh_size, sh[strndx].sh_offset))
		goto out;
	names[sh[strndx].sh_size] = '\0';
	for (size_t i = 1; i < shnum; i++) {
		const char *n = sh[i].sh_name < sh[strndx].sh_size ? names + sh[i].sh_name : "";

		if (!(sh[i].sh_flags & SHF_ALLOC) || sh[i].sh_type == SHT_NOBITS)
			continue;
		if (!strcmp(n, TP_SECTION)) {
			l->tp_addr = sh[i].sh_addr;
			l->tp_size = sh[i].sh_size;
			err = 0;
		} else if (!strcmp(n, JUMP_SECTION)) {
			l->jt_addr = sh[i].sh_addr;
			l->jt_size = sh[i].sh_size;
		}
	}
out:
	free(names);
	free(sh);
	close(fd);
	return err;
}

/* the file mapped at @addr, from /proc/self/maps (for objects named by a relative path) */
static char *mapped_path(uint64_t addr)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[4352];
	char *path = NULL;

	if (!f)
		return NULL;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		int off = 0;

		if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %n", &lo, &hi, &off) < 2 || !off)
			continue;
		if (addr >= lo && addr < hi && line[off] == '/') {
			line[strcspn(line, "\n")] = '\0';
			path = strdup(line + off);
			break;
		}
	}
	fclose(f);
	return path;
}

/* ---- checking what an object's memory says ------------------------------------------------- */

static const char *obj_name(const struct loaded *l)
{
	return l->is_main && !l->name[0] ? "the executable" : l->name;
}

static bool in_ranges(const struct loaded *l, uint64_t p, uint64_t len, bool exec)
{
	for (int i = 0; i < l->nseg; i++)
		if (p >= l->seg[i].lo && len <= l->seg[i].hi - p && p <= l->seg[i].hi &&
		    (!exec || l->seg[i].exec))
			return true;
	return false;
}

/* a NUL-terminated string inside the object's segments, at most @max long */
static const char *valid_str(const struct loaded *l, const char *p, size_t max)
{
	uint64_t a = (uint64_t)(uintptr_t)p;

	for (int i = 0; i < l->nseg; i++) {
		if (a < l->seg[i].lo || a >= l->seg[i].hi)
			continue;
		if (max > l->seg[i].hi - a)
			max = l->seg[i].hi - a;
		return strnlen(p, max) < max ? p : NULL;
	}
	return NULL;
}

static void desc_free(struct tp_desc *d)
{
	sd_fields_free(d->fields, d->nfields);
	free(d->print_fmt);
	free(d->sites);
	memset(d, 0, sizeof(*d));
}

/*
 * one descriptor to a tp_desc: -EAGAIN when a pointer does not point into
 * the object (not relocated yet), -EINVAL when the event is not usable.
 */
static int read_desc(const struct loaded *l, struct sonde_tracepoint *tp, struct tp_desc *d)
{
	const char *sys = valid_str(l, tp->system, SD_EVENT_NAME_MAX + 1);
	const char *name = valid_str(l, tp->name, SD_EVENT_NAME_MAX + 1);
	const char *fmt = valid_str(l, tp->print_fmt, PRINT_FMT_MAX);
	uint32_t off = SD_ENTRY_COMMON_SIZE;

	memset(d, 0, sizeof(*d));
	d->tp = tp;
	if (!sys || !name || !fmt || tp->nfields > MAX_FIELDS ||
	    !in_ranges(l, (uint64_t)(uintptr_t)tp->fields,
		       (uint64_t)(tp->nfields + 1) * sizeof(*tp->fields), false))
		return -EAGAIN;
	if (strlen(sys) >= SD_EVENT_NAME_MAX || strlen(name) >= SD_EVENT_NAME_MAX || !*sys ||
	    !*name) {
		sd_warn("%s: an event name longer than %d: not registered", obj_name(l),
			SD_EVENT_NAME_MAX - 1);
		return -EINVAL;
	}
	strcpy(d->system, sys);
	strcpy(d->name, name);
	d->entry_size = tp->entry_size;
	d->print_fmt = strdup(fmt);
	d->fields = calloc(tp->nfields + 1, sizeof(*d->fields));
	if (!d->print_fmt || !d->fields)
		return -ENOMEM;
	for (uint32_t i = 0; i < tp->nfields; i++) {
		const struct sonde_tp_field *tf = &tp->fields[i];
		const char *type = valid_str(l, tf->type, 256),
			   *fname = valid_str(l, tf->name, 256);
		unsigned int align = tf->align ? tf->align : 1;
		char decl[600];
		int err;

		if (!type || !fname)
			return -EAGAIN;
		if (align & (align - 1) || tf->kind > SONDE_TPF_DYN_ARRAY)
			return -EINVAL;
		/* the C layout of the record: each field at the next multiple of its alignment */
		off = SD_ALIGN_UP(off, align);
		if (tf->kind == SONDE_TPF_ARRAY)
			snprintf(decl, sizeof(decl), "%s %s[%u]", type, fname, tf->array_len);
		else
			snprintf(decl, sizeof(decl), "%s %s", type, fname);
		err = sd_field_parse_decl(&d->fields[i], decl, off, tf->size, tf->is_signed);
		if (err)
			return err;
		d->nfields++;
		off += tf->size;
		if (off > 0xffff)
			return -EINVAL;
	}
	if (off != tp->entry_size) {
		sd_warn("%s:%s: the record is %u bytes, its fields say %u (a packed layout?): not "
			"registered",
			d->system, d->name, tp->entry_size, off);
		return -EINVAL;
	}
	return 0;
}

static int add_site(struct tp_desc *d, uint64_t code, uint64_t target)
{
	struct sd_jump_site *bigger = realloc(d->sites, (d->nsites + 1) * sizeof(*bigger));

	if (!bigger)
		return -ENOMEM;
	d->sites = bigger;
	d->sites[d->nsites].addr = code;
	d->sites[d->nsites].target = target;
	d->nsites++;
	return 0;
}

/* the jump entries of the object, each given to the descriptor of its key */
static int read_sites(const struct loaded *l, struct tp_desc *d, int nd)
{
	uint64_t start = l->bias + l->jt_addr;
	size_t n = l->jt_size / sizeof(struct sonde_jump_entry);

	if (l->jt_size && !in_ranges(l, start, l->jt_size, false))
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		const struct sonde_jump_entry *e =
		    (const void *)(uintptr_t)(start + i * sizeof(*e));
		uint64_t code = (uint64_t)(uintptr_t)&e->code + (int64_t)e->code;
		uint64_t target = (uint64_t)(uintptr_t)&e->target + (int64_t)e->target;
		uint64_t key = ((uint64_t)(uintptr_t)&e->key + (uint64_t)e->key) & ~3ULL;
		int k;

		for (k = 0; k < nd; k++)
			if (key == (uint64_t)(uintptr_t)&d[k].tp->key)
				break;
		if (k == nd)
			continue; /* a key that is not an event's */
		if (!in_ranges(l, code, SD_JUMP_LEN, true) || !in_ranges(l, target, 1, true)) {
			d[k].broken = true;
			continue;
		}
		/* a disabled site is the nop; anything else is not ours to patch */
		if (__atomic_load_n(&d[k].tp->key.enabled, __ATOMIC_RELAXED) ||
		    memcmp((const void *)(uintptr_t)code, sd_jump_nop, SD_JUMP_LEN))
			d[k].broken = true;
		if (add_site(&d[k], code, target))
			return -ENOMEM;
	}
	return 0;
}

/* ---- events ------------------------------------------------------------------------------- */

static struct tp_event *to_te(const struct sd_event *ev)
{
	return container_of(ev, struct tp_event, ev);
}

bool sd_tracepoint_event(const struct sd_event *ev)
{
	return ev && ev->ops == &tp_event_ops;
}

/* a key reference on @in; the object's memory is known to be there */
static int key_op(struct tp_inst *in, bool inc)
{
	int *enabled = &in->tp->key.enabled;
	int cur = __atomic_load_n(enabled, __ATOMIC_RELAXED);
	unsigned int skipped = 0;
	int err = 0;

	if (!inc && !in->refs)
		return 0;
	if (!in->broken && (inc ? cur == 0 : cur == 1)) {
		err = sd_jump_label_patch(in->sites, in->nsites, inc, &skipped);
		if (err && inc)
			return err;
		if (err)
			sd_warn("%s:%s: cannot put the nops back: %s", in->te->ev.system,
				in->te->ev.name, sonde_last_error());
		if (skipped)
			sd_warn("%s:%s: %u site(s) changed by someone else (a probe on them?) left "
				"as they are",
				in->te->ev.system, in->te->ev.name, skipped);
	}
	__atomic_store_n(enabled, inc ? cur + 1 : cur - 1, __ATOMIC_RELAXED);
	if (inc)
		in->refs++;
	else
		in->refs--;
	return 0;
}

static bool marker_ok(const struct tp_object *o)
{
	return !o->marker || __atomic_load_n((struct tp_inst **)&o->marker->tp->priv,
					     __ATOMIC_ACQUIRE) == o->marker;
}

struct with_obj {
	struct tp_inst *in;
	bool inc;
	bool found;
	int ret;
};

static int with_obj_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct with_obj *w = arg;
	const struct tp_object *o = w->in->obj;

	(void)size;
	if (info->dlpi_addr != o->bias || strcmp(info->dlpi_name ? info->dlpi_name : "", o->name))
		return 0;
	if (!marker_ok(o))
		return 1;
	/* the dynamic linker cannot unmap the object while we are in here */
	w->found = true;
	w->ret = key_op(w->in, w->inc);
	return 1;
}

static int inst_ref(struct tp_inst *in, bool inc)
{
	struct with_obj w = {.in = in, .inc = inc};

	if (!in->obj)
		return inc ? -ENODEV : 0;
	/* the probe engine's lock order: its mutex, then the loader's */
	pthread_mutex_lock(&sd_probe_mutex);
	dl_iterate_phdr(with_obj_cb, &w);
	pthread_mutex_unlock(&sd_probe_mutex);
	if (!w.found)
		return inc ? sd_error(-ENODEV, "%s:%s: its object is unloaded", in->te->ev.system,
				      in->te->ev.name)
			   : 0;
	return w.ret;
}

/* references every instance must hold: the event's enable and the others */
static unsigned int wanted_refs(const struct tp_event *te)
{
	return (te->ev.enabled ? 1 : 0) + te->extra_refs;
}

static int event_ref(struct tp_event *te, bool inc)
{
	for (struct tp_inst *in = te->insts; in; in = in->next) {
		int err = inst_ref(in, inc);

		if (err && inc) {
			for (struct tp_inst *x = te->insts; x != in; x = x->next)
				inst_ref(x, false);
			return err;
		}
	}
	return 0;
}

static void te_print(struct sd_seq *s, const struct sd_event *ev, const void *entry, uint32_t len,
		     const struct sd_print_ctx *ctx)
{
	const struct tp_event *te = to_te(ev);

	if (te->pf)
		sd_printfmt_render(s, te->pf, entry, len, ctx);
	else
		sd_print_fields(s, ev, entry, len);
}

static int te_enable(struct sd_event *ev, bool on)
{
	return event_ref(to_te(ev), on);
}

static void te_free(struct sd_event *ev)
{
	struct tp_event *te = to_te(ev);

	sd_printfmt_free(te->pf);
	sd_fields_free(ev->fields, ev->nfields);
	free(ev->print_fmt);
	free(te);
}

static const struct sd_event_ops tp_event_ops = {
    .print = te_print,
    .enable = te_enable,
    .free = te_free,
};

int sd_tracepoint_get(struct sd_event *ev)
{
	struct tp_event *te;
	int err;

	if (!sd_tracepoint_event(ev))
		return -EINVAL;
	te = to_te(ev);
	err = event_ref(te, true);
	if (!err)
		te->extra_refs++;
	return err;
}

void sd_tracepoint_put(struct sd_event *ev)
{
	struct tp_event *te;

	if (!sd_tracepoint_event(ev) || !to_te(ev)->extra_refs)
		return;
	te = to_te(ev);
	event_ref(te, false);
	te->extra_refs--;
}

int sd_tracepoint_sites(const struct sd_event *ev, uint64_t *addrs, int max)
{
	int n = 0;

	if (!sd_tracepoint_event(ev))
		return 0;
	for (const struct tp_inst *in = to_te(ev)->insts; in; in = in->next)
		for (unsigned int i = 0; i < in->nsites; i++, n++)
			if (n < max)
				addrs[n] = in->sites[i].addr;
	return n;
}

/* the print fmt cannot be rendered: say so where the kernel says such things */
static void note_print_fallback(const struct tp_event *te, const char *why)
{
	struct sd_parse_error pe = {0};
	char msg[400];
	int col = 1;

	sscanf(why, "col %d", &col);
	snprintf(msg, sizeof(msg),
		 "%s:%s: print fmt not understood (%.160s): records show their "
		 "fields as name=value",
		 te->ev.system, te->ev.name, why);
	sd_parse_fail(&pe, "tracepoint", col > 0 ? col - 1 : 0, msg);
	sd_errlog_add(&pe, te->ev.print_fmt);
	sd_info("%s", msg);
}

static bool same_format(const struct tp_event *te, const struct tp_desc *d)
{
	if (te->ev.nfields != d->nfields || te->ev.fixed_size != d->entry_size ||
	    strcmp(te->ev.print_fmt, d->print_fmt))
		return false;
	for (unsigned int i = 0; i < d->nfields; i++) {
		const struct sd_field *a = &te->ev.fields[i], *b = &d->fields[i];

		if (strcmp(a->name, b->name) || strcmp(a->c_type, b->c_type) ||
		    a->offset != b->offset || a->size != b->size || a->is_signed != b->is_signed ||
		    a->array_len != b->array_len)
			return false;
	}
	return true;
}

/* the event @d describes: an existing one it joins, or a new one (takes d's fields) */
static struct tp_event *event_for(struct tp_desc *d, const char *objname)
{
	struct sd_event *ev = sd_trace_find_event(d->system, d->name);
	struct tp_event *te;
	char why[160];
	int err;

	if (ev) {
		if (sd_tracepoint_event(ev) && same_format(to_te(ev), d))
			return to_te(ev);
		sd_warn("%s: %s:%s exists already with another format: this one is not "
			"registered",
			objname, d->system, d->name);
		return NULL;
	}
	te = calloc(1, sizeof(*te));
	if (!te)
		return NULL;
	snprintf(te->ev.system, sizeof(te->ev.system), "%s", d->system);
	snprintf(te->ev.name, sizeof(te->ev.name), "%s", d->name);
	te->ev.fields = d->fields;
	te->ev.nfields = d->nfields;
	te->ev.fixed_size = d->entry_size;
	te->ev.print_fmt = d->print_fmt;
	te->ev.ops = &tp_event_ops;
	te->ev.priv = te;
	if (sd_printfmt_compile(te->ev.print_fmt, &te->ev, &te->pf, why, sizeof(why)))
		note_print_fallback(te, why);
	err = sd_trace_add_event(&te->ev);
	if (err) {
		sd_warn("%s: %s:%s: %s", objname, d->system, d->name, sonde_last_error());
		sd_printfmt_free(te->pf);
		free(te);
		return NULL;
	}
	te->fresh = true;
	d->fields = NULL; /* the event's now */
	d->nfields = 0;
	d->print_fmt = NULL;
	return te;
}

/* ---- objects ---------------------------------------------------------------------------- */

/*
 * @o's jump-label nops claimed (@claim, with sd_probe_mutex held), or given
 * up: while the object is loaded they are its tracepoints' to patch, and,
 * as in the kernel, no probe goes on one or covers one with its jump
 * (claim.c). One that cannot be claimed (a probe came first) is the
 * broken one read_sites() found.
 */
static void claim_sites(struct tp_object *o, bool claim)
{
	unsigned int n = 0, k = 0;
	uint64_t *addrs;
	bool *ok;

	for (unsigned int i = 0; i < o->ninsts; i++)
		n += o->insts[i]->nsites;
	addrs = calloc(n + 1, sizeof(*addrs));
	ok = calloc(n + 1, sizeof(*ok));
	if (addrs && ok) {
		for (unsigned int i = 0; i < o->ninsts; i++)
			for (unsigned int j = 0; j < o->insts[i]->nsites; j++)
				addrs[k++] = o->insts[i]->sites[j].addr;
		if (claim)
			sd_text_claim_held(addrs, (int)n, SD_JUMP_LEN, SD_CLAIM_JUMP_LABEL, ok);
		else
			sd_text_unclaim(addrs, (int)n);
	}
	free(addrs);
	free(ok);
}

static void object_free(struct tp_object *o)
{
	for (unsigned int i = 0; i < o->ninsts; i++) {
		free(o->insts[i]->sites);
		free(o->insts[i]);
	}
	free(o->insts);
	free(o->name);
	free(o);
}

/* keep what the command needs to print records of an event that goes */
static void retire(const struct tp_event *te)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		return;
	fprintf(f, "E %u %s %s tracepoint\n", te->ev.id, te->ev.system, te->ev.name);
	sd_tracepoint_describe(f, &te->ev);
	if (fclose(f)) {
		free(text);
		return;
	}
	free(retired[retired_next]);
	retired[retired_next] = text;
	retired_next = (retired_next + 1) % SD_TRACEPOINT_RETIRED_MAX;
}

void sd_tracepoint_describe_retired(FILE *out)
{
	for (unsigned int i = 0; i < SD_TRACEPOINT_RETIRED_MAX; i++) {
		const char *t = retired[(retired_next + i) % SD_TRACEPOINT_RETIRED_MAX];

		if (t)
			fputs(t, out);
	}
}

/* @o is gone (its memory too): its events lose an instance, or go */
static void object_remove(struct tp_object *o)
{
	bool sync = false;

	for (unsigned int i = 0; i < o->ninsts; i++) {
		struct tp_inst *in = o->insts[i];
		struct tp_event *te = in->te;
		struct tp_inst **pp;

		if (!te)
			continue;
		for (pp = &te->insts; *pp && *pp != in; pp = &(*pp)->next)
			;
		if (*pp)
			*pp = in->next;
		in->obj = NULL;
		STORE_RELEASE(in->te, NULL);
		if (!te->insts) {
			retire(te);
			/* nothing left to patch: the event goes (sd_trace_remove_event syncs) */
			STORE_RELEASE(te->ev.enabled, false);
			te->extra_refs = 0;
			sd_trace_remove_event(&te->ev);
		} else {
			sync = true;
		}
	}
	if (sync)
		sd_sync_threads();
	claim_sites(o, false);
	object_free(o);
}

struct reg_arg {
	struct loaded *v;
	size_t n;
};

/* read @l's descriptors and sites and register them; inside dl_iterate_phdr */
static int object_register(struct loaded *l, struct tp_object *o)
{
	uint64_t start = l->bias + l->tp_addr;
	struct tp_desc *d = NULL;
	int nd = 0, err = 0;

	if (!in_ranges(l, start, l->tp_size, false))
		return -EINVAL;
	for (uint64_t off = 0; off + sizeof(struct sonde_tracepoint) <= l->tp_size;) {
		struct sonde_tracepoint *tp = (void *)(uintptr_t)(start + off);
		struct tp_desc *bigger;

		if (tp->magic != SONDE_TP_MAGIC) {
			off += 8;
			continue;
		}
		off += tp->size >= sizeof(*tp) ? SD_ALIGN_UP((uint64_t)tp->size, 8) : 8;
		if (tp->abi != SONDE_TP_ABI || tp->size < sizeof(*tp)) {
			sd_warn("%s: a tracepoint of ABI %u (sonde knows %u): not registered",
				obj_name(l), tp->abi, SONDE_TP_ABI);
			continue;
		}
		bigger = realloc(d, (nd + 1) * sizeof(*d));
		if (!bigger) {
			err = -ENOMEM;
			break;
		}
		d = bigger;
		err = read_desc(l, tp, &d[nd]);
		if (err == -EINVAL) {
			desc_free(&d[nd]);
			err = 0;
			continue;
		}
		nd++;
		if (err)
			break;
	}
	if (!err)
		err = read_sites(l, d, nd);
	if (err)
		goto out;
	o->insts = calloc(nd ? nd : 1, sizeof(*o->insts));
	if (!o->insts) {
		err = -ENOMEM;
		goto out;
	}
	for (int i = 0; i < nd; i++) {
		struct tp_inst *in = calloc(1, sizeof(*in));
		struct tp_event *te;

		if (!in)
			break;
		if (d[i].broken)
			sd_warn("%s:%s in %s: call sites not as compiled: the event never fires",
				d[i].system, d[i].name, obj_name(l));
		te = event_for(&d[i], obj_name(l));
		if (!te) {
			free(in);
			continue;
		}
		in->tp = d[i].tp;
		in->obj = o;
		in->te = te;
		in->sites = d[i].sites;
		in->nsites = d[i].nsites;
		in->broken = d[i].broken;
		d[i].sites = NULL;
		o->insts[o->ninsts++] = in;
		/* what identifies the load, then the way in */
		__atomic_store_n((struct tp_inst **)&in->tp->priv, in, __ATOMIC_RELEASE);
		__atomic_store_n(&in->tp->rt, &tp_runtime, __ATOMIC_RELEASE);
		if (!o->marker)
			o->marker = in;
		in->next = te->insts;
		te->insts = in;
		/* an event already on (in another object) is on here too */
		for (unsigned int r = wanted_refs(te); r; r--)
			if (key_op(in, true))
				sd_warn("%s:%s in %s: cannot enable: %s", te->ev.system,
					te->ev.name, obj_name(l), sonde_last_error());
	}
	claim_sites(o, true);
out:
	for (int i = 0; i < nd; i++)
		desc_free(&d[i]);
	free(d);
	return err;
}

static int register_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct reg_arg *a = arg;
	const char *name = info->dlpi_name ? info->dlpi_name : "";

	(void)size;
	for (size_t i = 0; i < a->n; i++) {
		struct loaded *l = &a->v[i];
		struct tp_object *o;
		int err;

		if (l->known || !l->tp_size || l->bias != info->dlpi_addr || strcmp(l->name, name))
			continue;
		o = calloc(1, sizeof(*o));
		if (!o)
			return 1;
		o->name = strdup(l->name);
		o->bias = l->bias;
		err = o->name ? object_register(l, o) : -ENOMEM;
		if (err == -EAGAIN) {
			/* being loaded by another thread (nothing registered yet): later */
			tps.retry = true;
			object_free(o);
			continue;
		}
		if (err)
			sd_warn("%s: its tracepoints cannot be read (%s)", obj_name(l),
				strerror(-err));
		o->next = tps.objects;
		tps.objects = o;
		l->known = o;
	}
	return 0;
}

struct collect {
	struct loaded *v;
	size_t n, cap;
	int err;
};

static int collect_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct collect *c = arg;
	const char *name = info->dlpi_name ? info->dlpi_name : "";
	struct loaded *l;

	if (c->n == c->cap) {
		struct loaded *bigger =
		    realloc(c->v, (c->cap = c->cap ? 2 * c->cap : 32) * sizeof(*bigger));

		if (!bigger) {
			c->err = -ENOMEM;
			return 1;
		}
		c->v = bigger;
	}
	if (size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof(info->dlpi_subs)) {
		tps.adds = info->dlpi_adds;
		tps.subs = info->dlpi_subs;
		tps.have_counts = true;
	}
	l = &c->v[c->n];
	memset(l, 0, sizeof(*l));
	l->name = strdup(name);
	if (!l->name) {
		c->err = -ENOMEM;
		return 1;
	}
	l->bias = info->dlpi_addr;
	l->is_main = c->n == 0;
	c->n++;
	for (int i = 0; i < info->dlpi_phnum && l->nseg < MAX_SEGS; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];

		if (ph->p_type != PT_LOAD)
			continue;
		l->seg[l->nseg].lo = l->bias + ph->p_vaddr;
		l->seg[l->nseg].hi = l->bias + ph->p_vaddr + ph->p_memsz;
		l->seg[l->nseg].exec = ph->p_flags & PF_X;
		l->nseg++;
	}
	for (struct tp_object *o = tps.objects; o; o = o->next) {
		if (o->seen || o->bias != l->bias || strcmp(o->name, name))
			continue;
		if (marker_ok(o)) { /* read while the object cannot go */
			o->seen = true;
			l->known = o;
		}
		break;
	}
	return 0;
}

static int counts_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	unsigned long long *v = arg;

	if (size < offsetof(struct dl_phdr_info, dlpi_subs) + sizeof(info->dlpi_subs))
		return 1;
	v[0] = info->dlpi_adds;
	v[1] = info->dlpi_subs;
	v[2] = 1;
	return 1;
}

static int apply_pending_cb(struct sd_event *ev, void *arg)
{
	(void)arg;
	if (sd_tracepoint_event(ev) && to_te(ev)->fresh) {
		to_te(ev)->fresh = false;
		sd_trace_apply_pending(ev);
	}
	return 0;
}

void sd_tracepoint_refresh_locked(void)
{
	struct collect c = {0};
	struct reg_arg ra;
	unsigned long long counts[3] = {0};
	bool any_new = false;

	if (!tps.active)
		return;
	dl_iterate_phdr(counts_cb, counts);
	if (counts[2] && tps.have_counts && counts[0] == tps.adds && counts[1] == tps.subs &&
	    !tps.retry)
		return; /* nothing loaded or unloaded since */
	tps.retry = false;
	for (struct tp_object *o = tps.objects; o; o = o->next)
		o->seen = false;
	dl_iterate_phdr(collect_cb, &c);
	if (c.err)
		goto out;
	/* gone */
	for (struct tp_object **pp = &tps.objects; *pp;) {
		struct tp_object *o = *pp;

		if (o->seen) {
			pp = &o->next;
			continue;
		}
		*pp = o->next;
		object_remove(o);
	}
	/* new: where their sections are, from their files */
	for (size_t i = 0; i < c.n; i++) {
		struct loaded *l = &c.v[i];
		char *path = NULL;
		int err;

		if (l->known)
			continue;
		if (l->is_main && !l->name[0])
			err = elf_sections("/proc/self/exe", l);
		else if (l->name[0] == '/')
			err = elf_sections(l->name, l);
		else if (l->nseg && (path = mapped_path(l->seg[0].lo)))
			err = elf_sections(path, l);
		else
			err = -ENOENT;
		free(path);
		if (!err)
			any_new = true;
		else
			l->tp_size = 0;
		if (err || !l->tp_size) {
			/* no tracepoints: remembered, not read again */
			struct tp_object *o = calloc(1, sizeof(*o));

			if (!o || !(o->name = strdup(l->name))) {
				free(o);
				continue;
			}
			o->bias = l->bias;
			o->next = tps.objects;
			tps.objects = o;
			l->known = o;
		}
	}
	if (any_new) {
		ra.v = c.v;
		ra.n = c.n;
		/* registering may patch (an event on elsewhere): the probe engine's lock first */
		pthread_mutex_lock(&sd_probe_mutex);
		dl_iterate_phdr(register_cb, &ra);
		pthread_mutex_unlock(&sd_probe_mutex);
		/* events new with these objects: those asked for before they existed go on */
		sd_trace_for_each_event(apply_pending_cb, NULL);
	}
	if (tps.retry && ++tps.retries > MAX_RETRIES) {
		sd_warn("an object's tracepoints stayed unreadable: not looked at again");
		tps.retry = false;
	}
out:
	for (size_t i = 0; i < c.n; i++)
		free(c.v[i].name);
	free(c.v);
}

void sd_tracepoint_refresh(void)
{
	if (!READ_ONCE(tps.active) || !sd_trace_get())
		return;
	sd_trace_lock();
	sd_tracepoint_refresh_locked();
	sd_trace_unlock();
}

void sd_tracepoint_update(void)
{
	if (!READ_ONCE(tps.active))
		sd_tracepoint_init();
	else
		sd_dlhook_start(); /* again in a forked child that has an agent of its own */
}

/* (any event's format: the agent describes every built-in event with it) */
void sd_tracepoint_describe(FILE *out, const struct sd_event *ev)
{
	size_t cap = 65536;
	char *buf = malloc(cap);
	struct sd_seq s;

	if (!buf)
		return;
	sd_seq_init(&s, buf, cap);
	sd_event_format(&s, ev);
	for (const char *line = buf; *line;) {
		size_t n = strcspn(line, "\n");

		fprintf(out, "F %.*s\n", (int)n, line);
		line += n;
		if (*line == '\n')
			line++;
	}
	free(buf);
}

int sd_tracepoint_init(void)
{
	if (!sd_trace_get())
		return -ENOMEM;
	sd_trace_lock();
	tps.active = true;
	sd_tracepoint_refresh_locked();
	sd_trace_unlock();
	sd_dlhook_start();
	return 0;
}
