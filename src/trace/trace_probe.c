// SPDX-License-Identifier: MIT
/*
 * trace_probe.c - dynamic probe events: kprobe_events and uprobe_events
 * lines made into trace events backed by kprobes and kretprobes.
 *
 * As in the kernel, defining an event registers its probe disarmed (so a
 * bad location is refused at definition time), enabling the event arms it,
 * and an event can only be removed while disabled. The probe handler
 * fetches the arguments straight into the ring buffer entry:
 *
 *   dyn = size of strings this hit needs
 *   entry = reserve(fixed_size + dyn)         common header filled
 *   __probe_ip / __probe_func, __probe_ret_ip
 *   store args (safe reads: a bad pointer is a fault marker, not a crash)
 *   filter, then commit or discard
 */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SD_LOG_PREFIX "probe_event"
#include "common/compiler.h"
#include "common/log.h"
#include "probe/probe.h"
#include "probe/thread.h"
#include "sym/sym.h"
#include "trace/probe_def.h"
#include "trace/symbolize.h"
#include "trace/trace.h"
#include "trace/trace_probe.h"

struct sd_probe_event {
	struct sd_event ev;
	struct sd_probe_def *def;
	struct sonde_kprobe kp;
	struct sonde_kretprobe rp;
	char *symbol_spec; /* what kp.symbol_name points to */
	uint64_t addr;	   /* the probed instruction */
	uint64_t file_base;
	uint16_t *ref_ctr; /* uprobe semaphore, raised while enabled */
	bool registered;
	bool has_dynamic; /* a string or array whose size each hit measures */
	/*
	 * a uprobe on a file not mapped yet (the kernel's uprobes wait for the
	 * file too): placed when it is, enabled then if it was asked meanwhile
	 */
	bool pending;
	bool pending_failed; /* the file came, the probe could not be placed there */
	bool armed;	     /* enabled by pe_enable(): the semaphore is raised */
	/* registers stored as they are: no fetch interpreter (nplan < 0: it is needed) */
	int nplan;
	struct sd_fetch_copy plan[8];
	bool fast; /* an entry probe whose args are all in nplan: sd_trace_write_copy() */
	struct sd_trace_copy copy; /* (then) what it needs */
	bool uses_comm;		   /* $comm: the thread's name, fetched only then */
	unsigned int seq;	   /* creation order, for the *_events files */
};

static unsigned int create_seq;
static unsigned int npending; /* events with `pending` set */

static struct sd_probe_event *to_pe(struct sd_event *ev)
{
	return container_of(ev, struct sd_probe_event, ev);
}

/* ---- the handlers (signal context) ------------------------------------------------ */

SD_NOTRACE static __attribute__((noinline)) void write_event(struct sd_probe_event *pe,
							     const struct sonde_regs *regs,
							     uint64_t ip, uint64_t ret_ip,
							     const void *edata)
{
	const struct sd_probe_def *def = pe->def;
	struct sd_fetch_ctx ctx = {
	    .regs = regs,
	    .comm = pe->uses_comm ? sd_trace_comm() : NULL,
	    .file_base = pe->file_base,
	    .edata = edata,
	};
	struct sd_trace_res res;
	uint32_t dyn;
	char *entry;

	/* an entry probe's hits are its kprobe's: one locked add per hit, not two */
	if (def->is_return)
		__atomic_add_fetch(&pe->ev.nhit, 1, __ATOMIC_RELAXED);
	dyn = pe->has_dynamic ? sd_probe_dynamic_size(def, &ctx) : 0;
	entry = sd_trace_reserve(&pe->ev, def->fixed_size + dyn, &res);
	if (!entry)
		return;
	if (def->is_return) {
		memcpy(entry + SD_ENTRY_COMMON_SIZE, &ip, 8);
		memcpy(entry + SD_ENTRY_COMMON_SIZE + 8, &ret_ip, 8);
	} else {
		memcpy(entry + SD_ENTRY_COMMON_SIZE, &ip, 8);
	}
	if (pe->nplan >= 0) {
		sd_fetch_copy_run(entry, regs, pe->plan, pe->nplan);
	} else {
		sd_probe_store_args(def, &ctx, entry, dyn);
	}
	sd_trace_commit(&pe->ev, &res);
}

SD_NOTRACE static int entry_handler(struct sonde_kprobe *kp, struct sonde_regs *regs)
{
	struct sd_probe_event *pe = container_of(kp, struct sd_probe_event, kp);

	/* most events: registers only, written whole with no frame of write_event's */
	if (likely(pe->fast))
		return sd_trace_write_copy(&pe->copy, regs);
	write_event(pe, regs, pe->addr, 0, NULL);
	return 0;
}

/* sd_trace_write_copy() declined: the general path */
SD_NOTRACE static int entry_slow(const struct sd_trace_copy *c, const void *regs)
{
	struct sd_probe_event *pe = container_of(c, struct sd_probe_event, copy);

	write_event(pe, (struct sonde_regs *)regs, pe->addr, 0, NULL);
	return 0;
}

/* return probes with $argN: the arguments are saved at entry, in the instance */
SD_NOTRACE static int return_entry_handler(struct sonde_kretprobe_instance *ri,
					   struct sonde_regs *regs)
{
	/* as the kernel's get_kretprobe(): NULL once the probe is being unregistered */
	struct sonde_kretprobe *rp = sonde_get_kretprobe(ri);

	if (rp)
		sd_probe_store_entry_data(container_of(rp, struct sd_probe_event, rp)->def, regs,
					  ri->data);
	return 0;
}

SD_NOTRACE static int return_handler(struct sonde_kretprobe_instance *ri, struct sonde_regs *regs)
{
	struct sonde_kretprobe *rp = sonde_get_kretprobe(ri);
	struct sd_probe_event *pe;

	if (!rp)
		return 0;
	pe = container_of(rp, struct sd_probe_event, rp);
	write_event(pe, regs, pe->addr, (uint64_t)ri->ret_addr,
		    sd_probe_entry_data_size(pe->def) ? ri->data : NULL);
	return 0;
}

/* ---- event ops ------------------------------------------------------------------------ */

static void pe_print(struct sd_seq *s, const struct sd_event *ev, const void *entry, uint32_t len,
		     const struct sd_print_ctx *ctx)
{
	sd_probe_print(s, container_of(ev, struct sd_probe_event, ev)->def, entry, len, ctx);
}

static int pe_enable(struct sd_event *ev, bool on)
{
	struct sd_probe_event *pe = to_pe(ev);
	struct sonde_kprobe *kp = pe->def->is_return ? &pe->rp.kp : &pe->kp;
	int err;

	/* not placed yet: the event's own `enabled` says what to do when it is */
	if (pe->pending)
		return 0;
	/* the semaphore goes up and down with the probe being armed, once each */
	if (on == pe->armed)
		return 0;
	if (on && pe->ref_ctr)
		__atomic_add_fetch(pe->ref_ctr, 1, __ATOMIC_RELAXED);
	err = on ? sonde_enable_kprobe(kp) : sonde_disable_kprobe(kp);
	if (!err)
		pe->armed = on;
	if ((!on && !err && pe->ref_ctr) || (on && err && pe->ref_ctr))
		__atomic_sub_fetch(pe->ref_ctr, 1, __ATOMIC_RELAXED);
	return err;
}

static void pe_unregister(struct sd_probe_event *pe)
{
	if (!pe->registered)
		return;
	if (pe->def->is_return)
		sonde_unregister_kretprobe(&pe->rp);
	else
		sonde_unregister_kprobe(&pe->kp);
	pe->registered = false;
}

static void pe_free(struct sd_event *ev)
{
	struct sd_probe_event *pe = to_pe(ev);

	if (pe->pending)
		npending--;
	pe_unregister(pe);
	for (unsigned int i = 0; i < ev->nfields; i++) {
		free(ev->fields[i].name);
		free(ev->fields[i].c_type);
	}
	free(ev->fields);
	free(ev->print_fmt);
	sd_probe_def_free(pe->def);
	free(pe->symbol_spec);
	free(pe);
}

static const struct sd_event_ops probe_event_ops = {
    .print = pe_print,
    .enable = pe_enable,
    .free = pe_free,
};

/* ---- resolving and registering ------------------------------------------------------------ */

static struct sd_maps *self_maps(void)
{
	static struct sd_maps *maps;

	sd_maps_free(maps); /* the process may have loaded objects since */
	maps = NULL;
	if (sd_maps_read(0, &maps))
		return NULL;
	return maps;
}

static uint64_t lookup_data_sym(void *arg, const char *name)
{
	struct sd_resolved r;

	return sd_resolve(arg, name, &r) ? 0 : r.addr;
}

static int resolve_uprobe(struct sd_probe_event *pe, struct sd_maps *maps,
			  struct sd_parse_error *err, const char *cmd)
{
	struct sd_probe_def *def = pe->def;
	struct sd_module *m;
	struct sd_symtab *st;
	uint64_t vaddr;
	int pos = strstr(cmd, def->path) ? (int)(strstr(cmd, def->path) - cmd) : 0;

	if (access(def->path, F_OK))
		return sd_parse_fail(err, "trace_uprobe", pos, "Failed to find the given file");
	m = sd_maps_find_file(maps, def->path);
	if (!m) {
		sd_error(-ENOENT, "%s is not mapped in this process", def->path);
		return sd_parse_fail(err, "trace_uprobe", pos, "Failed to register probe event");
	}
	st = sd_module_symtab(m);
	if (!st || sd_symtab_offset_to_vaddr(st, def->file_offset, &vaddr)) {
		sd_error(-EINVAL, "%s: offset 0x%lx is not in a loaded segment", def->path,
			 (unsigned long)def->file_offset);
		return sd_parse_fail(err, "trace_uprobe", pos, "Invalid uprobe offset");
	}
	pe->addr = m->bias + vaddr;
	/* @+OFFSET arguments: the runtime address of file offset 0 */
	pe->file_base = m->bias + vaddr - def->file_offset;
	if (def->has_ref_ctr) {
		uint64_t rv;

		if (sd_symtab_offset_to_vaddr(st, def->ref_ctr_offset, &rv))
			return sd_parse_fail(err, "trace_uprobe", pos,
					     "Invalid reference counter offset");
		pe->ref_ctr = (uint16_t *)(m->bias + rv);
	}
	return 0;
}

static int register_probe(struct sd_probe_event *pe, struct sd_parse_error *err, const char *cmd)
{
	struct sd_probe_def *def = pe->def;
	struct sonde_kprobe *kp = def->is_return ? &pe->rp.kp : &pe->kp;
	const char *sub = def->kind == SD_PROBE_KPROBE ? "trace_kprobe" : "trace_uprobe";
	int r;

	if (def->kind == SD_PROBE_KPROBE && def->symbol) {
		size_t n = strlen(def->symbol) + (def->module ? strlen(def->module) + 1 : 0) + 1;

		pe->symbol_spec = malloc(n);
		if (!pe->symbol_spec)
			return -ENOMEM;
		snprintf(pe->symbol_spec, n, "%s%s%s", def->module ? def->module : "",
			 def->module ? ":" : "", def->symbol);
		kp->symbol_name = pe->symbol_spec;
		kp->offset = def->offset;
	} else {
		kp->addr = (void *)(uintptr_t)(def->kind == SD_PROBE_KPROBE ? def->addr : pe->addr);
	}
	kp->flags = SONDE_KPROBE_FLAG_DISABLED;
	/* the event writers never touch vector registers (built -mgeneral-regs-only) */
	kp->__reserved[0] |= SD_KP_OWN_NOFPU;
	if (def->is_return) {
		pe->rp.handler = return_handler;
		pe->rp.maxactive = def->maxactive;
		pe->rp.data_size = sd_probe_entry_data_size(def);
		if (pe->rp.data_size)
			pe->rp.entry_handler = return_entry_handler;
		r = sonde_register_kretprobe(&pe->rp);
	} else {
		kp->pre_handler = entry_handler;
		r = sonde_register_kprobe(kp);
	}
	if (r) {
		const char *loc = def->symbol ? def->symbol : def->path ? def->path : "";
		int pos = strstr(cmd, loc) && *loc ? (int)(strstr(cmd, loc) - cmd) : 0;
		const char *msg = r == -EILSEQ	 ? "Probe point is not an instruction boundary"
				  : r == -ENOENT ? "Invalid probed address or symbol"
						 : "Failed to register probe event";

		if (def->is_return && def->symbol && def->offset)
			msg = "Retprobe address must be an function entry";
		return sd_parse_fail(err, sub, pos, msg);
	}
	pe->addr = (uint64_t)(uintptr_t)kp->addr;
	pe->registered = true;
	return 0;
}

int sd_probe_event_create(const char *cmd, int kind, struct sd_parse_error *err)
{
	char rm_group[SD_EVENT_NAME_MAX], rm_event[SD_EVENT_NAME_MAX];
	struct sd_probe_def *def = NULL;
	struct sd_probe_event *pe;
	struct sd_maps *maps;
	int r;

	r = sd_probe_parse(cmd, kind, &def, rm_group, rm_event, err);
	if (r < 0)
		return r;
	if (r == 1)
		return sd_probe_event_remove(rm_group, rm_event, kind, err, cmd);
	if (!sd_trace_get()) {
		sd_probe_def_free(def);
		return -ENOMEM;
	}
	if (sd_trace_find_event(def->group, def->event)) {
		sd_probe_def_free(def);
		return sd_parse_fail(err, kind == SD_PROBE_KPROBE ? "trace_kprobe" : "trace_uprobe",
				     0, "There is already the exact same probe event");
	}
	pe = calloc(1, sizeof(*pe));
	if (!pe) {
		sd_probe_def_free(def);
		return -ENOMEM;
	}
	pe->def = def;
	maps = self_maps();
	if (!maps) {
		r = -EIO;
		goto fail;
	}
	if (kind == SD_PROBE_UPROBE && !access(def->path, F_OK) &&
	    !sd_maps_find_file(maps, def->path)) {
		pe->pending = true;
	} else {
		r = sd_probe_def_resolve(def, lookup_data_sym, maps, err);
		if (!r && kind == SD_PROBE_UPROBE)
			r = resolve_uprobe(pe, maps, err, cmd);
		if (!r)
			r = register_probe(pe, err, cmd);
		if (r)
			goto fail;
	}

	snprintf(pe->ev.system, sizeof(pe->ev.system), "%s", def->group);
	snprintf(pe->ev.name, sizeof(pe->ev.name), "%s", def->event);
	r = sd_probe_def_fields(def, &pe->ev.fields, &pe->ev.nfields);
	if (r)
		goto fail;
	pe->ev.fixed_size = def->fixed_size;
	pe->nplan =
	    sd_probe_copy_plan(def, pe->plan, (int)(sizeof(pe->plan) / sizeof(pe->plan[0])));
	for (int i = 0; i < def->nargs; i++) {
		pe->has_dynamic |= def->args[i].field.dynamic;
		for (const struct sd_fetch_insn *c = def->args[i].code; c->op != SD_FOP_END; c++)
			pe->uses_comm |= c->op == SD_FOP_COMM;
	}
	pe->fast = pe->nplan >= 0 && !def->is_return && !pe->has_dynamic && !pe->uses_comm;
	pe->copy = (struct sd_trace_copy){.ev = &pe->ev,
					  .ip = &pe->addr,
					  .plan = pe->plan,
					  .nplan = pe->nplan,
					  .slow = entry_slow};
	pe->ev.print_fmt = def->print_fmt ? strdup(def->print_fmt) : NULL;
	pe->ev.ops = &probe_event_ops;
	pe->ev.priv = pe;
	pe->seq = ++create_seq;
	r = sd_trace_add_event(&pe->ev);
	if (r)
		goto fail;
	if (pe->pending)
		npending++;
	return 0;
fail:
	pe_unregister(pe);
	for (unsigned int i = 0; i < pe->ev.nfields; i++) {
		free(pe->ev.fields[i].name);
		free(pe->ev.fields[i].c_type);
	}
	free(pe->ev.fields);
	free(pe->ev.print_fmt);
	sd_probe_def_free(def);
	free(pe->symbol_spec);
	free(pe);
	return r;
}

/* a pending event whose file is now mapped: placed, and armed if enabled meanwhile */
static void place_pending(struct sd_probe_event *pe, struct sd_maps *maps)
{
	struct sd_probe_def *def = pe->def;
	struct sd_parse_error perr = {0};
	struct sonde_kprobe *kp;
	int r;

	r = sd_probe_def_resolve(def, lookup_data_sym, maps, &perr);
	if (!r)
		r = resolve_uprobe(pe, maps, &perr, "");
	if (!r)
		r = register_probe(pe, &perr, "");
	if (r) {
		/* nobody to tell but the log: the kernel's pending probes fail so too */
		sd_warn("%s/%s: %s is loaded, but the probe cannot be placed there: %s", def->group,
			def->event, def->path, perr.msg ? perr.msg : sonde_last_error());
		pe->pending_failed = true;
		return;
	}
	pe->pending = false;
	npending--;
	kp = def->is_return ? &pe->rp.kp : &pe->kp;
	if (pe->ev.enabled && pe_enable(&pe->ev, true))
		sd_warn("%s/%s: placed at 0x%lx, but not armed", def->group, def->event,
			(unsigned long)(uintptr_t)kp->addr);
}

static int place_cb(struct sd_event *ev, void *arg)
{
	struct sd_probe_event *pe;

	if (ev->ops != &probe_event_ops)
		return 0;
	pe = to_pe(ev);
	if (pe->pending && !pe->pending_failed && sd_maps_find_file(arg, pe->def->path))
		place_pending(pe, arg);
	return 0;
}

void sd_probe_events_refresh(void)
{
	struct sd_maps *maps;

	if (!READ_ONCE(npending) || !sd_trace_get())
		return;
	sd_trace_lock();
	if (npending && (maps = self_maps()))
		sd_trace_for_each_event(place_cb, maps);
	sd_trace_unlock();
}

static bool is_probe_event(const struct sd_event *ev, int kind)
{
	return ev->ops == &probe_event_ops && to_pe((struct sd_event *)ev)->def->kind == kind;
}

int sd_probe_event_remove(const char *group, const char *event, int kind,
			  struct sd_parse_error *err, const char *cmd)
{
	struct sd_event *ev = sd_trace_find_event(group[0] ? group : NULL, event);

	if (!ev || !is_probe_event(ev, kind)) {
		sd_error(-ENOENT, "no event %s%s%s", group, group[0] ? "/" : "", event);
		return -ENOENT;
	}
	if (ev->enabled) {
		sd_error(-EBUSY, "%s/%s is enabled: disable it first", ev->system, ev->name);
		return -EBUSY;
	}
	return sd_trace_remove_event(ev);
}

struct each_arg {
	int kind;
	struct sd_probe_event *list[SD_EVENTS_MAX];
	int n;
};

static int collect(struct sd_event *ev, void *arg)
{
	struct each_arg *a = arg;

	if (is_probe_event(ev, a->kind))
		a->list[a->n++] = to_pe(ev);
	return 0;
}

static int by_seq(const void *a, const void *b)
{
	const struct sd_probe_event *x = *(struct sd_probe_event *const *)a;
	const struct sd_probe_event *y = *(struct sd_probe_event *const *)b;

	return (x->seq > y->seq) - (x->seq < y->seq);
}

static struct each_arg *collect_sorted(int kind)
{
	struct each_arg *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	a->kind = kind;
	sd_trace_for_each_event(collect, a);
	qsort(a->list, a->n, sizeof(a->list[0]), by_seq);
	return a;
}

void sd_probe_events_print(struct sd_seq *s, int kind)
{
	struct each_arg *a = collect_sorted(kind);

	for (int i = 0; a && i < a->n; i++) {
		sd_probe_def_print(s, a->list[i]->def);
		sd_seq_putc(s, '\n');
	}
	free(a);
}

int sd_probe_events_clear(int kind)
{
	struct each_arg *a = collect_sorted(kind);
	int err = 0;

	if (!a)
		return -ENOMEM;
	/* the kernel refuses to clear while any of them is in use */
	for (int i = 0; i < a->n; i++)
		if (a->list[i]->ev.enabled)
			err = sd_error(-EBUSY, "%s/%s is enabled: disable it first",
				       a->list[i]->ev.system, a->list[i]->ev.name);
	for (int i = 0; !err && i < a->n; i++)
		sd_trace_remove_event(&a->list[i]->ev);
	free(a);
	return err;
}

void sd_probe_profile_print(struct sd_seq *s, int kind)
{
	struct each_arg *a = collect_sorted(kind);

	for (int i = 0; a && i < a->n; i++) {
		struct sd_probe_event *pe = a->list[i];
		unsigned long missed =
		    pe->def->is_return ? pe->rp.kp.nmissed + pe->rp.nmissed : pe->kp.nmissed;
		unsigned long hits = pe->def->is_return ? pe->ev.nhit : sonde_kprobe_hits(&pe->kp);

		if (kind == SD_PROBE_KPROBE)
			sd_seq_printf(s, "  %-44s %15lu %15lu\n", pe->ev.name, hits, missed);
		else
			sd_seq_printf(s, "  %s %-44s %15lu\n", pe->def->path, pe->ev.name, hits);
	}
	free(a);
}

const struct sd_probe_def *sd_probe_event_def(const struct sd_event *ev)
{
	return ev->ops == &probe_event_ops ? to_pe((struct sd_event *)ev)->def : NULL;
}
