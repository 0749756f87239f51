// SPDX-License-Identifier: MIT
/*
 * tracer.c - current_tracer, the function tracers' options, and applying
 * them: which functions are hooked, how, and the sets the hot path reads.
 *
 * Called under the trace lock (from the virtual tracefs).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SD_LOG_PREFIX "ftrace"
#include "arch/arch.h"
#include "common/compiler.h"
#include "common/log.h"
#include "ftrace/fgraph.h"
#include "ftrace/ftrace.h"
#include "ftrace/sites.h"
#include "sym/sym.h"
#include "trace/output.h"
#include "probe/kretprobe.h"
#include "probe/probe.h"
#include "probe/thread.h"
#include "probe/xol.h"
#include "trace/trace.h"

static int cur_tracer;
static struct sd_ftrace_opts opts;
static bool unwind_held;

static const char *const tracer_names[] = {"nop", "function", "function_graph"};

const char *sd_ftrace_tracer_name(int tracer)
{
	return tracer >= 0 && tracer < (int)ARRAY_SIZE(tracer_names) ? tracer_names[tracer] : "?";
}

int sd_ftrace_tracer(void)
{
	return cur_tracer;
}

struct sd_ftrace_opts *sd_ftrace_opts(void)
{
	return &opts;
}

/* ---- the events ------------------------------------------------------------------------- */

/* the kernel's %ps: the symbol without its offset, or the address */
static void sym_ps(const struct sd_print_ctx *ctx, uint64_t addr, char *buf, size_t len)
{
	if (!ctx->sym || ctx->sym(ctx->sym_arg, addr, buf, len) < 0)
		snprintf(buf, len, "0x%lx", (unsigned long)addr);
	buf[strcspn(buf, "+")] = '\0';
}

static void print_function(struct sd_seq *s, const struct sd_event *ev, const void *entry,
			   uint32_t len, const struct sd_print_ctx *ctx)
{
	uint64_t ip, parent;
	char a[256], b[256];

	memcpy(&ip, (const char *)entry + 8, 8);
	memcpy(&parent, (const char *)entry + 16, 8);
	sym_ps(ctx, ip, a, sizeof(a));
	/* a return address: its call is the byte before (it may end its function) */
	if (!parent || !ctx->sym || ctx->sym(ctx->sym_arg, parent - 1, b, sizeof(b)) < 0)
		snprintf(b, sizeof(b), "0x%lx", (unsigned long)parent);
	b[strcspn(b, "+")] = '\0';
	sd_seq_printf(s, "%s <-%s", a, b);
}

static void print_graph(struct sd_seq *s, const struct sd_event *ev, const void *entry,
			uint32_t len, const struct sd_print_ctx *ctx)
{
	uint64_t func;
	int32_t depth;
	char a[256];

	memcpy(&func, (const char *)entry + 8, 8);
	memcpy(&depth, (const char *)entry + 16, 4);
	sym_ps(ctx, func, a, sizeof(a));
	sd_seq_printf(s, "%s %s (%d)",
		      !strcmp(ev->name, "funcgraph_entry")  ? "-->"
		      : !strcmp(ev->name, "funcgraph_leaf") ? "<->"
							    : "<--",
		      a, depth);
}

/* a leaf's one record: the kernel's two lines, entry and exit, each at its time */
static void render_leaf(struct sd_seq *s, const struct sd_render *r, const struct sd_rb_event *rec,
			const struct sd_event *ev)
{
	struct sd_rb_event at = *rec;
	uint64_t times[2];
	const char *name[2] = {"funcgraph_entry", "funcgraph_exit"};
	char a[256];
	uint64_t func;
	int32_t depth;

	if (rec->len < 40) {
		sd_render_context(s, r, rec);
		sd_seq_printf(s, "%s: (short record)\n", ev->name);
		return;
	}
	memcpy(&func, (const char *)rec->payload + 8, 8);
	memcpy(&depth, (const char *)rec->payload + 16, 4);
	memcpy(times, (const char *)rec->payload + 24, 16);
	sym_ps(&r->pctx, func, a, sizeof(a));
	for (int i = 0; i < 2; i++) {
		at.ts = times[i];
		sd_render_context(s, r, &at);
		sd_seq_printf(s, "%s: %s %s (%d)\n", name[i], i ? "<--" : "-->", a, depth);
	}
}

static const struct sd_event_ops function_ops = {.print = print_function};
static const struct sd_event_ops graph_ops = {.print = print_graph};
static const struct sd_event_ops leaf_ops = {.print = print_graph, .render = render_leaf};

static struct sd_field f_function[] = {
    SD_FIELD("ip", "unsigned long", 8, 8, SD_FT_SYMBOL),
    SD_FIELD("parent_ip", "unsigned long", 16, 8, SD_FT_SYMBOL),
};
static struct sd_field f_entry[] = {
    SD_FIELD("func", "unsigned long", 8, 8, SD_FT_SYMBOL),
    SD_FIELD("depth", "int", 16, 4, SD_FT_SIGNED),
};
static struct sd_field f_exit[] = {
    SD_FIELD("func", "unsigned long", 8, 8, SD_FT_SYMBOL),
    SD_FIELD("depth", "int", 16, 4, SD_FT_SIGNED),
    SD_FIELD("overrun", "unsigned int", 20, 4, SD_FT_UNSIGNED),
    SD_FIELD("calltime", "unsigned long long", 24, 8, SD_FT_UNSIGNED),
    SD_FIELD("rettime", "unsigned long long", 32, 8, SD_FT_UNSIGNED),
};

static struct sd_event ev_function = {
    .system = "ftrace",
    .name = "function",
    .fields = f_function,
    .nfields = 2,
    .fixed_size = 24,
    .print_fmt = "\" %ps <-- %ps\", (void *)REC->ip, (void *)REC->parent_ip",
    .ops = &function_ops,
    .internal = true,
};
static struct sd_event ev_entry = {
    .system = "ftrace",
    .name = "funcgraph_entry",
    .fields = f_entry,
    .nfields = 2,
    .fixed_size = 24,
    .print_fmt = "\"--> %ps (%d)\", (void *)REC->func, REC->depth",
    .ops = &graph_ops,
    .internal = true,
};
/*
 * A call that wrote nothing between its entry and its return (a leaf): one
 * record, written at its return with its entry's time, for the pair the
 * kernel writes (funcgraph_entry, then funcgraph_exit). Readers take it as
 * that pair.
 */
static struct sd_event ev_leaf = {
    .system = "ftrace",
    .name = "funcgraph_leaf",
    .fields = f_exit,
    .nfields = 5,
    .fixed_size = 40,
    .print_fmt = "\"<-> %ps (%d) (start: %llx  end: %llx) over: %d\", (void *)REC->func, "
		 "REC->depth, REC->calltime, REC->rettime, REC->overrun",
    .ops = &leaf_ops,
    .internal = true,
};
static struct sd_event ev_exit = {
    .system = "ftrace",
    .name = "funcgraph_exit",
    .fields = f_exit,
    .nfields = 5,
    .fixed_size = 40,
    .print_fmt = "\"<-- %ps (%d) (start: %llx  end: %llx) over: %d\", (void *)REC->func, "
		 "REC->depth, REC->calltime, REC->rettime, REC->overrun",
    .ops = &graph_ops,
    .internal = true,
};

static int release_site(uint64_t addr);

int sd_ftrace_events_init(void)
{
	static bool done;
	int err;

	if (done)
		return 0;
	err = sd_trace_add_event(&ev_function);
	if (!err)
		err = sd_trace_add_event(&ev_entry);
	if (!err)
		err = sd_trace_add_event(&ev_exit);
	if (!err)
		err = sd_trace_add_event(&ev_leaf);
	if (err)
		return err;
	STORE_RELEASE(sd_fgraph.ev_function, &ev_function);
	STORE_RELEASE(sd_fgraph.ev_entry, &ev_entry);
	STORE_RELEASE(sd_fgraph.ev_exit, &ev_exit);
	STORE_RELEASE(sd_fgraph.ev_leaf, &ev_leaf);
	sd_trace_set_held_flush(sd_fgraph_flush_held);
	sd_text_claim_set_release(release_site);
	done = true;
	return 0;
}

/* ---- option lists --------------------------------------------------------------------------- */

static void list_free(char ***list, int *n)
{
	for (int i = 0; i < *n; i++)
		free((*list)[i]);
	free(*list);
	*list = NULL;
	*n = 0;
}

/*
 * "glob" adds, "!glob" takes a glob out again or, when it was not one of
 * the list's, excludes what it matches from the others
 */
int sd_ftrace_list_write(char ***list, int *n, const char *text, bool truncate)
{
	char *copy = strdup(text), *tok, *save = NULL;
	int err = 0;

	if (!copy)
		return -ENOMEM;
	if (truncate)
		list_free(list, n);
	for (tok = strtok_r(copy, " \t\n", &save); tok && !err;
	     tok = strtok_r(NULL, " \t\n", &save)) {
		char **bigger;
		bool dup = false;

		if (*tok == '!') {
			for (int i = 0; i < *n; i++)
				if (!strcmp((*list)[i], tok + 1)) {
					free((*list)[i]);
					memmove(&(*list)[i], &(*list)[i + 1],
						(*n - i - 1) * sizeof(char *));
					--*n;
					dup = true;
					break;
				}
		}
		for (int i = 0; i < *n && !dup; i++)
			dup = !strcmp((*list)[i], tok);
		if (dup)
			continue;
		bigger = realloc(*list, (*n + 1) * sizeof(*bigger));
		if (!bigger) {
			err = -ENOMEM;
			break;
		}
		*list = bigger;
		if (!(bigger[*n] = strdup(tok))) {
			err = -ENOMEM;
			break;
		}
		(*n)++;
	}
	free(copy);
	return err;
}

bool sd_ftrace_glob_matches(const char *glob)
{
	size_t n;
	struct ft_obj *objs = sd_ft_objects(&n);

	if (*glob == '!')
		return true;
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < objs[i].nfuncs; k++)
			if (sd_ft_matches(glob, &objs[i], &objs[i].funcs[k]))
				return true;
	return false;
}

/* as the kernel lists a filter file: the functions it selects */
void sd_ftrace_list_print(char **list, int n, FILE *out)
{
	size_t nobj;
	struct ft_obj *objs = sd_ft_objects(&nobj);

	for (size_t i = 0; i < nobj; i++) {
		const struct ft_obj *o = &objs[i];

		if (o->why)
			continue;
		for (size_t k = 0; k < o->nfuncs; k++) {
			if (!sd_ft_in_list(list, n, o, &o->funcs[k]))
				continue;
			if (o->is_main)
				fprintf(out, "%s\n", o->funcs[k].name);
			else
				fprintf(out, "%s [%s]\n", o->funcs[k].name, o->name);
		}
	}
}

/* ---- applying ----------------------------------------------------------------------------------
 */

struct set_builder {
	struct sd_fg_set *s;
	size_t cap;
};

static int set_add(struct set_builder *b, uint64_t start, uint64_t end)
{
	if (!b->s || b->s->n == b->cap) {
		size_t c = b->cap ? 2 * b->cap : 64;
		struct sd_fg_set *n = realloc(b->s, sizeof(*n) + c * sizeof(n->v[0]));

		if (!n)
			return -ENOMEM;
		if (!b->s)
			n->n = 0;
		b->s = n;
		b->cap = c;
	}
	b->s->v[b->s->n].start = start;
	b->s->v[b->s->n].end = end;
	b->s->n++;
	return 0;
}

static int cmp_range(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

static struct sd_fg_set *set_done(struct set_builder *b)
{
	if (b->s)
		qsort(b->s->v, b->s->n, sizeof(b->s->v[0]), cmp_range);
	return b->s;
}

/* a function's extent: up to the next function of the object */
static uint64_t func_end(const struct ft_obj *o, size_t i)
{
	return i + 1 < o->nfuncs ? o->funcs[i + 1].addr : o->end;
}

static void swap_set(struct sd_fg_set **slot, struct sd_fg_set *fresh, void **garbage, int *ng)
{
	garbage[(*ng)++] = *slot;
	STORE_RELEASE(*slot, fresh);
}

static int pids_build(struct sd_fg_pids **out)
{
	struct sd_fg_pids *p;

	*out = NULL;
	if (!opts.npids)
		return 0;
	p = malloc(sizeof(*p) + opts.npids * sizeof(p->v[0]));
	if (!p)
		return -ENOMEM;
	p->n = opts.npids;
	memcpy(p->v, opts.pids, opts.npids * sizeof(int));
	*out = p;
	return 0;
}

/*
 * libc's functions that never return: function_graph writes their entry at
 * once instead of holding it back for a return (a leaf's single record)
 */
static const char *const noreturn_names[] = {
    "_exit",
    "_Exit",
    "exit",
    "quick_exit",
    "abort",
    "pthread_exit",
    "__stack_chk_fail",
    "__fortify_fail",
    "__chk_fail",
    "__assert_fail",
    "__assert_perror_fail",
    "__libc_fatal",
    "err",
    "errx",
    "verr",
    "verrx",
};

/* one of @f's names is in @list */
static bool listed_func(const char *const *list, size_t n, const struct ft_func *f)
{
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(list[i], f->name))
			return true;
		for (const char *a = f->aliases; a && *a; a += strlen(a) + 1)
			if (!strcmp(list[i], a))
				return true;
	}
	return false;
}

static bool never_returns(const struct ft_func *f)
{
	return listed_func(noreturn_names, sizeof(noreturn_names) / sizeof(noreturn_names[0]), f);
}

static int hook_probe(struct ft_func *f)
{
	struct sonde_kprobe *kp = calloc(1, sizeof(*kp));
	int err;

	if (!kp)
		return -ENOMEM;
	kp->addr = (void *)f->addr;
	kp->pre_handler = never_returns(f) ? sd_ftrace_kprobe_pre_noreturn : sd_ftrace_kprobe_pre;
	/*
	 * a jump from the start: no breakpoint, whose traps cost a signal each,
	 * while the optimizer works (sd_ftrace_apply waits for it)
	 */
	kp->__reserved[0] = SD_KP_OWN_NOFPU | SD_KP_JUMP_FIRST;
	/*
	 * memcpy, strlen: what the IFUNC chose runs at every call, the
	 * program's and sonde's own; a breakpoint would make each a signal
	 */
	if (f->resolved)
		kp->__reserved[0] |= SD_KP_JUMP_ONLY;
	err = sonde_register_kprobe(kp);
	if (err) {
		f->why = "cannot be probed";
		free(kp);
		return err;
	}
	f->kp = kp;
	return 0;
}

/*
 * a function that may only be a jump and could not be one (its probe never
 * fires): taken out for good (FT_NONE), and said why
 */
static bool jump_failed(struct ft_func *f)
{
	const char *opt;
	char *why;

	if (!f->on || !f->kp || (f->kp->flags & SONDE_KPROBE_FLAG_OPTIMIZED) ||
	    !sd_kprobe_jump_only(f->kp))
		return false;
	opt = sd_kprobe_opt_why(f->kp);
	if (asprintf(&why, "%s, and it cannot be a jump: %s",
		     f->resolved ? "the code an IFUNC chose, which every call runs: a breakpoint "
				   "would make each call a signal"
				 : "glibc runs it with every signal blocked (a thread's last "
				   "steps), where a breakpoint kills the process",
		     opt ? opt : "optimization is off") < 0)
		why = NULL;
	f->why = why ? why : "it cannot be a jump";
	f->kind = FT_NONE;
	return true;
}

/* a patched nop's stub, near it and never freed (a thread may be in it at any time) */
static uint8_t *make_stub(struct ft_func *f)
{
	uint8_t buf[SD_ARCH_FTRACE_STUB_SIZE];
	uint8_t *stub;

	/* (xol memory is the probe engine's: its optimizer takes some meanwhile) */
	sd_enter_sonde();
	pthread_mutex_lock(&sd_probe_mutex);
	stub = sd_xol_alloc_permanent(f->addr, sizeof(buf));
	pthread_mutex_unlock(&sd_probe_mutex);
	sd_leave_sonde();
	if (!stub || sd_arch_ftrace_stub(buf, (uint64_t)(uintptr_t)stub, f->addr + 5) ||
	    sd_text_write(stub, buf, sizeof(buf))) {
		sd_warn("%s: no room for its stub near %#" PRIx64 ": not traced", f->name, f->addr);
		return NULL; /* (permanent memory is not given back) */
	}
	return stub;
}

struct settle_arg {
	const struct sd_range *ranges;
	int n;
};

/* with the breakpoints in: no thread may still be between two one-byte nops */
static int settle(void *arg)
{
	const struct settle_arg *a = arg;

	return sd_threads_outside(a->ranges, a->n, 100) ? -EBUSY : 0;
}

/*
 * The batch, checking the threads once its breakpoints are in (before, a
 * thread seen at a site's first nop could step past it unseen). A thread
 * whose signal handler waits at one of the batch's breakpoints while the
 * signal left it inside another site's nops holds the batch up: put back,
 * it goes on, and a later try passes.
 */
static int poke(struct sd_poke *pokes, int n, const struct sd_range *ranges, int nranges)
{
	struct settle_arg a = {ranges, nranges};
	int err = 0;

	for (int tries = 0; tries < 5; tries++) {
		err = sd_text_poke_batch_settle(pokes, n, nranges ? settle : NULL, &a);
		if (err != -EBUSY)
			break;
		usleep(2000);
	}
	return err;
}

/* @f's entry nop to the jump to its stub (@on) or back, as a poke of the batch */
static void poke_nop(struct ft_func *f, struct sd_poke *pk, struct sd_range *ranges, int *nranges,
		     bool on)
{
	pk->addr = (void *)f->addr;
	pk->len = 5;
	if (on) {
		int32_t rel = (int32_t)((int64_t)(uintptr_t)f->stub - (int64_t)(f->addr + 5));

		pk->new[0] = 0xe9;
		memcpy(pk->new + 1, &rel, 4);
	} else {
		memcpy(pk->new, f->orig, 5);
	}
	/* single-byte nops: a thread may stand between two of them */
	if (f->orig[0] == 0x90)
		ranges[(*nranges)++] = (struct sd_range){f->addr + 1, f->addr + 5};
	f->on = on;
}

/*
 * A probe is to go on @addr, a patched entry nop (claim.c): the nop back,
 * the claim given up, and the function hooked by a probe of ours at the
 * same address instead, which the new one joins (as the kernel's kprobes
 * join the function tracer on its sites, through ftrace). Called from the
 * probe's registration, with the trace lock or without.
 */
static int release_site(uint64_t addr)
{
	bool mine = sd_trace_lock_held();
	struct ft_func *f;
	struct sd_range range;
	struct sd_poke pk;
	int nrange = 0, err = -EBUSY;

	if (!mine)
		sd_trace_lock();
	/* (the objects as they are: a scan could move them under sd_ftrace_apply) */
	f = sd_ft_func_at(addr);
	if (!f || f->kind != FT_NOP || !f->on || f->kp)
		goto out;
	memset(&pk, 0, sizeof(pk));
	poke_nop(f, &pk, &range, &nrange, false);
	err = poke(&pk, 1, &range, nrange);
	if (err == -EBUSY)
		sd_error(err, "a thread stayed inside the entry nops at 0x%lx",
			 (unsigned long)addr);
	if (err) {
		f->on = true;
		goto out;
	}
	sd_text_unclaim(&f->addr, 1);
	f->on = hook_probe(f) == 0;
out:
	if (!mine)
		sd_trace_unlock();
	return err;
}

static unsigned long long loads_seen; /* at the last apply */

int sd_ftrace_apply(void)
{
	struct set_builder pg = {0}, gfn = {0}, gnt = {0};
	struct sd_poke *pokes = NULL;
	struct sonde_kprobe **unreg = NULL;
	struct sd_range *ranges = NULL;
	struct ft_func **nop_on = NULL; /* entry nops to patch, once claimed */
	struct ft_func **poked = NULL;	/* whose site each poke changes */
	uint64_t *addrs = NULL;		/* claimed, or to give up */
	bool *claimed = NULL;
	int npokes = 0, nunreg = 0, nranges = 0, nhooked = 0, nnop_on = 0, nunclaim = 0,
	    nclaimed = 0;
	int err = 0;
	size_t n, total = 0;
	struct ft_obj *objs;
	void *garbage[4];
	int ng = 0;
	struct sd_fg_pids *pids;

	err = sd_ftrace_events_init();
	if (err)
		return err;
	loads_seen = sd_dl_loads();
	objs = sd_ft_objects(&n);
	for (size_t i = 0; i < n; i++)
		total += objs[i].nfuncs;
	pokes = calloc(total + 1, sizeof(*pokes));
	unreg = calloc(total + 1, sizeof(*unreg));
	ranges = calloc(total + 1, sizeof(*ranges));
	nop_on = calloc(total + 1, sizeof(*nop_on));
	addrs = calloc(total + 1, sizeof(*addrs));
	claimed = calloc(total + 1, sizeof(*claimed));
	poked = calloc(total + 1, sizeof(*poked));
	if (!pokes || !unreg || !ranges || !nop_on || !addrs || !claimed || !poked) {
		err = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct ft_obj *o = &objs[i];

		for (size_t k = 0; k < o->nfuncs; k++) {
			struct ft_func *f = &o->funcs[k];
			bool want = cur_tracer != SD_TRACER_NOP && f->kind != FT_NONE && !o->why &&
				    sd_ft_selected(&opts, o, f);

			if (opts.ngraph_fn && sd_ft_in_list(opts.graph_fn, opts.ngraph_fn, o, f))
				set_add(&gfn, f->addr, func_end(o, k));
			if (opts.ngraph_notrace &&
			    sd_ft_in_list(opts.graph_notrace, opts.ngraph_notrace, o, f))
				set_add(&gnt, f->addr, func_end(o, k));
			if (f->kind == FT_PG) {
				if (want)
					set_add(&pg, f->addr, func_end(o, k));
				f->on = want;
				continue;
			}
			if (want == f->on)
				continue;
			if (f->kind == FT_NOP) {
				if (want) {
					nop_on[nnop_on++] = f; /* claimed below, all at once */
				} else if (f->kp) {
					unreg[nunreg++] =
					    f->kp; /* hooked by a probe: claim refused */
					f->on = false;
				} else {
					poked[npokes] = f;
					poke_nop(f, &pokes[npokes++], ranges, &nranges, false);
					addrs[nunclaim++] =
					    f->addr; /* given up once the nop is back */
				}
			} else if (f->kind == FT_PROBE) {
				if (want) {
					if (hook_probe(f) == 0) {
						f->on = true;
						nhooked++;
					}
				} else {
					unreg[nunreg++] = f->kp;
					f->on = false;
				}
			}
		}
	}
	/*
	 * The nops to patch: claimed first (claim.c), and where a probe
	 * already sits, hooked by a probe of ours at the same address instead
	 */
	if (nnop_on) {
		int first = npokes;

		for (int j = 0; j < nnop_on; j++)
			addrs[nunclaim + j] = nop_on[j]->addr;
		/* (out of memory: none claimed, every one hooked by a probe) */
		if (sd_text_claim(addrs + nunclaim, nnop_on, 5, SD_CLAIM_FTRACE, claimed))
			for (int j = 0; j < nnop_on; j++)
				claimed[j] = false;
		for (int j = 0; j < nnop_on; j++) {
			struct ft_func *f = nop_on[j];

			if (!claimed[j]) {
				if (hook_probe(f) == 0) {
					f->on = true;
					nhooked++;
				}
			} else if (!f->stub && !(f->stub = make_stub(f))) {
				sd_text_unclaim(&f->addr, 1);
			} else {
				poked[npokes] = f;
				poke_nop(f, &pokes[npokes++], ranges, &nranges, true);
			}
		}
		/* claimed and to be patched: given up again if the batch fails */
		for (int j = first; j < npokes; j++)
			addrs[nunclaim + j - first] = (uint64_t)(uintptr_t)pokes[j].addr;
		nclaimed = npokes - first;
	}
	if (npokes) {
		/* a thread meeting a site mid-patch traps on its breakpoint: sonde must catch it */
		err = sd_signal_setup();
		if (!err)
			err = poke(pokes, npokes, ranges, nranges);
		if (err == -EBUSY)
			sd_warn("a thread stayed inside entry nops; patching them anyway is "
				"unsafe: skipped");
	}
	if (err) {
		/* nothing patched: every site as it was, its claim too */
		for (int j = 0; j < npokes; j++)
			poked[j]->on = !poked[j]->on;
		sd_text_unclaim(addrs + nunclaim, nclaimed);
	}
	/* the nops back in place: given up */
	if (!err && nunclaim)
		sd_text_unclaim(addrs, nunclaim);
	if (nhooked) {
		/* every new site in its final form before the program goes on */
		sonde_wait_kprobe_optimizer();
		for (size_t i = 0; i < n; i++)
			for (size_t k = 0; k < objs[i].nfuncs; k++)
				if (jump_failed(&objs[i].funcs[k])) {
					unreg[nunreg++] = objs[i].funcs[k].kp;
					objs[i].funcs[k].on = false;
				}
	}
	if (nunreg) {
		sonde_unregister_kprobes(unreg, nunreg);
		for (int i = 0; i < nunreg; i++)
			free(unreg[i]);
		for (size_t i = 0; i < n; i++)
			for (size_t k = 0; k < objs[i].nfuncs; k++)
				if (!objs[i].funcs[k].on)
					objs[i].funcs[k].kp = NULL;
	}

	/* what the hot path reads */
	pids_build(&pids);
	swap_set(&sd_fgraph.pg_funcs, set_done(&pg), garbage, &ng);
	swap_set(&sd_fgraph.graph_fn, set_done(&gfn), garbage, &ng);
	swap_set(&sd_fgraph.graph_notrace, set_done(&gnt), garbage, &ng);
	garbage[ng++] = sd_fgraph.pids;
	STORE_RELEASE(sd_fgraph.pids, pids);
	sd_fgraph.max_depth = opts.max_depth;
	sd_fgraph.thresh_ns = opts.thresh_ns;
	STORE_RELEASE(sd_fgraph.tracer, cur_tracer);
	ev_function.enabled = cur_tracer == SD_TRACER_FUNCTION;
	ev_entry.enabled = ev_exit.enabled = ev_leaf.enabled = cur_tracer == SD_TRACER_GRAPH;
	STORE_RELEASE(sd_ftrace_active, cur_tracer != SD_TRACER_NOP);
	sd_sync_threads();
	for (int i = 0; i < ng; i++)
		free(garbage[i]);

	/* exceptions must see real return addresses while graph frames are hooked */
	if (cur_tracer == SD_TRACER_GRAPH && !unwind_held) {
		sd_unwind_hooks_get();
		unwind_held = true;
	} else if (cur_tracer != SD_TRACER_GRAPH && unwind_held) {
		sd_unwind_hooks_put();
		unwind_held = false;
	}
out:
	free(pokes);
	free(unreg);
	free(ranges);
	free(nop_on);
	free(addrs);
	free(claimed);
	free(poked);
	return err;
}

void sd_ftrace_refresh(void)
{
	if (cur_tracer != SD_TRACER_NOP && sd_dl_loads() != loads_seen)
		sd_ftrace_apply();
}

int sd_ftrace_set_tracer(int tracer)
{
	if (tracer < SD_TRACER_NOP || tracer > SD_TRACER_GRAPH)
		return -EINVAL;
	cur_tracer = tracer;
	return sd_ftrace_apply();
}

void sd_ftrace_report(FILE *out)
{
	size_t n;
	struct ft_obj *objs = sd_ft_objects(&n);

	for (size_t i = 0; i < n; i++) {
		struct ft_obj *o = &objs[i];
		size_t on = 0, none = 0, optimized = 0;

		if (o->for_sonde)
			continue; /* not the program's: it has nothing to say of it */
		if (o->why) {
			fprintf(out, "%s: not traced: %s\n", o->name, o->why);
			continue;
		}
		for (size_t k = 0; k < o->nfuncs; k++) {
			on += o->funcs[k].on;
			none += o->funcs[k].kind == FT_NONE;
			if (o->funcs[k].kp && (o->funcs[k].kp->flags & SONDE_KPROBE_FLAG_OPTIMIZED))
				optimized++;
		}
		fprintf(out, "%s: %s: %zu functions, %zu traced", o->name, o->how, o->nfuncs, on);
		if (o->kind == FT_PROBE)
			fprintf(out, " (%zu as jumps, %zu as breakpoints)", optimized,
				on - optimized);
		fputc('\n', out);
		/* what the filters asked for and could not have */
		for (size_t k = 0; k < o->nfuncs; k++) {
			const struct ft_func *f = &o->funcs[k];

			if ((f->kind == FT_NONE || (f->why && !f->on)) &&
			    sd_ft_selected(&opts, o, f))
				fprintf(out, "  not traced: %s: %s\n", f->name,
					f->why ? f->why : "?");
		}
		(void)none;
	}
}
