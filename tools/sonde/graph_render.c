// SPDX-License-Identifier: MIT
/*
 * graph_render.c - the function and function_graph tracers' text, as the
 * kernel's trace_functions_graph.c and trace_output.c print it.
 *
 * The graph renderer keeps the records in a queue, in the order they came,
 * and prints from its head. An entry is held (pending) until the next
 * record of its thread comes: its own exit makes it a leaf ("foo();", the
 * exit is folded into it), anything else makes it a nested call ("foo()
 * {"). Only the head of the queue can block printing, so one thread
 * sitting in a long leaf call holds the lines of the others back — for at
 * most pending_ms when live. The per-thread state the kernel keeps per CPU
 * (the function entered at each depth, to know whether an exit matches; the
 * depth of comments; the last task, for the context-switch lines) is
 * updated as lines are printed, in order.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "graph_render.h"
#include "trace/trace.h"

/* ---- the records ------------------------------------------------------------------------- */

int ftr_event_kind(const struct sd_event *ev)
{
	if (!ev || strcmp(ev->system, "ftrace"))
		return FTR_OTHER;
	if (!strcmp(ev->name, "function"))
		return FTR_FUNCTION;
	if (!strcmp(ev->name, "funcgraph_entry"))
		return FTR_ENTRY;
	if (!strcmp(ev->name, "funcgraph_exit"))
		return FTR_EXIT;
	if (!strcmp(ev->name, "funcgraph_leaf"))
		return FTR_LEAF;
	return FTR_OTHER;
}

static int kind_of_id(struct ftr_ids *ids, const struct sd_render *r, unsigned int id)
{
	unsigned int slot = id - SD_EVENT_ID_FIRST;
	struct sd_event *ev;
	int kind;

	if (slot >= SD_EVENTS_MAX)
		return FTR_OTHER;
	if (slot < ids->n && ids->kind[slot] >= 0)
		return ids->kind[slot];
	ev = r->event ? r->event(r->event_arg, id) : NULL;
	kind = ftr_event_kind(ev);
	if (!ev)
		return kind; /* unknown yet: ask again next time */
	if (slot >= ids->n) {
		unsigned int n = slot + 64 < SD_EVENTS_MAX ? slot + 64 : SD_EVENTS_MAX;
		int8_t *bigger = realloc(ids->kind, n);

		if (!bigger)
			return kind;
		memset(bigger + ids->n, -1, n - ids->n);
		ids->kind = bigger;
		ids->n = n;
	}
	ids->kind[slot] = (int8_t)kind;
	return kind;
}

void ftr_ids_free(struct ftr_ids *ids)
{
	free(ids->kind);
	ids->kind = NULL;
	ids->n = 0;
}

int ftr_decode(struct ftr_ids *ids, const struct sd_render *r, const struct sd_rb_event *ev,
	       struct ftr_rec *out)
{
	const unsigned char *p = ev->payload;
	uint16_t id;

	memset(out, 0, sizeof(*out));
	if (ev->len < SD_ENTRY_COMMON_SIZE)
		return FTR_OTHER;
	memcpy(&id, p, 2);
	out->kind = kind_of_id(ids, r, id);
	switch (out->kind) {
	case FTR_FUNCTION:
		if (ev->len < FTR_FUNCTION_SIZE)
			break;
		memcpy(&out->func, p + 8, 8);
		memcpy(&out->parent, p + 16, 8);
		return out->kind;
	case FTR_ENTRY:
		if (ev->len < FTR_ENTRY_SIZE)
			break;
		memcpy(&out->func, p + 8, 8);
		memcpy(&out->depth, p + 16, 4);
		return out->kind;
	case FTR_EXIT:
	case FTR_LEAF:
		if (ev->len < FTR_EXIT_SIZE)
			break;
		memcpy(&out->func, p + 8, 8);
		memcpy(&out->depth, p + 16, 4);
		memcpy(&out->overrun, p + 20, 4);
		memcpy(&out->calltime, p + 24, 8);
		memcpy(&out->rettime, p + 32, 8);
		return out->kind;
	default:
		return FTR_OTHER;
	}
	out->kind = FTR_OTHER; /* too short for its layout */
	return FTR_OTHER;
}

uint64_t ftr_delta_ns(const struct sd_render *r, uint64_t from, uint64_t to)
{
	uint64_t a = sd_clock_to_ns(r->clock, r->clock_id, from);
	uint64_t b = sd_clock_to_ns(r->clock, r->clock_id, to);

	return b > a ? b - a : 0;
}

/* ---- names ------------------------------------------------------------------------------- */

void ftr_name_of(const struct sd_print_ctx *pctx, uint64_t addr, char *buf, size_t len)
{
	char *plus;

	if (pctx && pctx->sym && pctx->sym(pctx->sym_arg, addr, buf, len) > 0) {
		/* "func+0x1c/0x80": the name is what comes before the last '+' */
		plus = strrchr(buf, '+');
		if (plus && plus != buf)
			*plus = '\0';
		return;
	}
	snprintf(buf, len, "0x%" PRIx64, addr);
}

/*
 * a return address as its caller's name: the call is the byte before it
 * (a call that ends its function, to a function that never returns, has
 * a return address past the function's end); the address when unknown
 */
void ftr_caller_name_of(const struct sd_print_ctx *pctx, uint64_t ret, char *buf, size_t len)
{
	char *plus;

	if (ret && pctx && pctx->sym && pctx->sym(pctx->sym_arg, ret - 1, buf, len) > 0) {
		plus = strrchr(buf, '+');
		if (plus && plus != buf)
			*plus = '\0';
		return;
	}
	snprintf(buf, len, "0x%" PRIx64, ret);
}

struct ftr_name_slot {
	uint64_t addr;
	char *name;	 /* NULL: free slot */
	time_t retry_at; /* no symbol found: looked for again from then (a library loaded since) */
};

struct ftr_names {
	struct sd_print_ctx pctx;
	struct ftr_name_slot *slots;
	size_t cap, used; /* cap: a power of two */
};

struct ftr_names *ftr_names_new(const struct sd_print_ctx *pctx)
{
	struct ftr_names *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	if (pctx)
		n->pctx = *pctx;
	n->cap = 1024;
	n->slots = calloc(n->cap, sizeof(*n->slots));
	if (!n->slots) {
		free(n);
		return NULL;
	}
	return n;
}

void ftr_names_free(struct ftr_names *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->cap; i++)
		free(n->slots[i].name);
	free(n->slots);
	free(n);
}

static size_t addr_hash(uint64_t addr)
{
	addr ^= addr >> 33;
	addr *= 0xff51afd7ed558ccdull;
	addr ^= addr >> 33;
	return (size_t)addr;
}

static struct ftr_name_slot *name_slot(struct ftr_name_slot *slots, size_t cap, uint64_t addr)
{
	size_t i = addr_hash(addr) & (cap - 1);

	while (slots[i].name && slots[i].addr != addr)
		i = (i + 1) & (cap - 1);
	return &slots[i];
}

static int names_grow(struct ftr_names *n)
{
	size_t cap = n->cap * 2;
	struct ftr_name_slot *slots = calloc(cap, sizeof(*slots));

	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; i < n->cap; i++)
		if (n->slots[i].name)
			*name_slot(slots, cap, n->slots[i].addr) = n->slots[i];
	free(n->slots);
	n->slots = slots;
	n->cap = cap;
	return 0;
}

/* callers are remembered apart from functions: a tag bit no user address has */
#define CALLER_TAG (1ULL << 63)

static const char *name_cached(struct ftr_names *n, uint64_t addr)
{
	static char fallback[64]; /* out of memory: not remembered */
	struct ftr_name_slot *slot = name_slot(n->slots, n->cap, addr);
	char buf[1024];

	if (slot->name && !(slot->retry_at && time(NULL) >= slot->retry_at))
		return slot->name;
	if (addr & CALLER_TAG)
		ftr_caller_name_of(&n->pctx, addr & ~CALLER_TAG, buf, sizeof(buf));
	else
		ftr_name_of(&n->pctx, addr, buf, sizeof(buf));
	if (slot->name) {
		/* a second look, a second or more after the first */
		if (strcmp(slot->name, buf)) {
			char *v = strdup(buf);

			if (v) {
				free(slot->name);
				slot->name = v;
			}
		}
		slot->retry_at = strncmp(buf, "0x", 2) ? 0 : time(NULL) + 1;
		return slot->name;
	}
	if ((n->used + 1) * 2 > n->cap) {
		if (names_grow(n))
			goto fail;
		slot = name_slot(n->slots, n->cap, addr);
	}
	slot->name = strdup(buf);
	if (!slot->name)
		goto fail;
	slot->addr = addr;
	/* the symbolizer reads the maps again a little later (a library loaded since) */
	slot->retry_at = strncmp(buf, "0x", 2) ? 0 : time(NULL) + 1;
	n->used++;
	return slot->name;
fail:
	snprintf(fallback, sizeof(fallback), "%.63s", buf);
	return fallback;
}

const char *ftr_name(struct ftr_names *n, uint64_t addr)
{
	return name_cached(n, addr & ~CALLER_TAG);
}

const char *ftr_caller_name(struct ftr_names *n, uint64_t ret)
{
	return name_cached(n, ret | CALLER_TAG);
}

/* ---- the function tracer ----------------------------------------------------------------- */

/* the columns before the event's text, as output.c prints them for every event */
void ftr_render_function(struct sd_seq *s, const struct sd_render *r, struct ftr_names *names,
			 const struct sd_rb_event *ev, const struct ftr_rec *fr)
{
	char a[512], b[512];

	sd_render_context(s, r, ev);
	if (names) {
		sd_seq_puts(s, ftr_name(names, fr->func));
	} else {
		ftr_name_of(&r->pctx, fr->func, a, sizeof(a));
		sd_seq_puts(s, a);
	}
	/* trace_fn_trace: " <-parent" when there is one */
	if (fr->parent) {
		sd_seq_puts(s, " <-");
		if (names) {
			sd_seq_puts(s, ftr_caller_name(names, fr->parent));
		} else {
			ftr_caller_name_of(&r->pctx, fr->parent, b, sizeof(b));
			sd_seq_puts(s, b);
		}
	}
	sd_seq_putc(s, '\n');
}

void ftr_render_graph_event(struct sd_seq *s, const struct sd_render *r, struct ftr_names *names,
			    const struct sd_rb_event *ev, const struct ftr_rec *fr)
{
	char name[512];

	sd_render_context(s, r, ev);
	if (names)
		snprintf(name, sizeof(name), "%s", ftr_name(names, fr->func));
	else
		ftr_name_of(&r->pctx, fr->func, name, sizeof(name));
	if (fr->kind == FTR_ENTRY || fr->kind == FTR_LEAF)
		sd_seq_printf(s, "funcgraph_entry: --> %s (%d)\n", name, fr->depth);
	if (fr->kind == FTR_LEAF) {
		/* the pair the kernel writes: the exit line with the context again */
		struct sd_rb_event at_exit = *ev;

		at_exit.ts = fr->rettime;
		sd_render_context(s, r, &at_exit);
	}
	if (fr->kind == FTR_EXIT || fr->kind == FTR_LEAF)
		sd_seq_printf(s,
			      "funcgraph_exit: <-- %s (%d) (start: %" PRIx64 "  end: %" PRIx64
			      ") over: %u\n",
			      name, fr->depth, fr->calltime, fr->rettime, fr->overrun);
}

/* ---- function_graph: columns ------------------------------------------------------------- */

#define GR_INDENT	2
#define GR_PROCINFO_LEN 14
#define GR_MAX_HELD	(1u << 18) /* records held behind a pending entry, at most */
#define GR_LINE_MAX	32768

char gr_mark(uint64_t ns)
{
	/* trace_find_mark: the first threshold the duration is above */
	static const struct {
		uint64_t ns;
		char sym;
	} marks[] = {
	    {1000000000ull, '$'}, {100000000ull, '@'}, {10000000ull, '*'},
	    {1000000ull, '#'},	  {100000ull, '!'},    {10000ull, '+'},
	};

	for (size_t i = 0; i < sizeof(marks) / sizeof(marks[0]); i++)
		if (ns > marks[i].ns)
			return marks[i].sym;
	return ' ';
}

void gr_duration(struct sd_seq *s, uint64_t ns)
{
	char usecs[24], nsecs[8];
	int len;

	/* µs, then at most 7 digits in all with the ns after the point */
	len = snprintf(usecs, sizeof(usecs), "%" PRIu64, ns / 1000);
	sd_seq_puts(s, usecs);
	if (len < 7) {
		size_t keep = 8 - len < 5 ? 8 - len : 5;

		snprintf(nsecs, keep, "%03u", (unsigned int)(ns % 1000));
		sd_seq_printf(s, ".%s", nsecs);
		len += (int)strlen(nsecs) + 1;
	}
	sd_seq_puts(s, " us ");
	for (; len < 8; len++)
		sd_seq_putc(s, ' ');
}

int gr_cpu_width(int ncpus)
{
	char buf[16];

	return snprintf(buf, sizeof(buf), "%u", ncpus > 1 ? (unsigned int)ncpus - 1 : 0u);
}

void gr_header(struct sd_seq *s, unsigned int flags)
{
	sd_seq_puts(s, "# tracer: function_graph\n#\n");
	sd_seq_putc(s, '#');
	if (flags & GR_ABSTIME)
		sd_seq_puts(s, "     TIME       ");
	if (flags & GR_CPU)
		sd_seq_puts(s, " CPU");
	if (flags & GR_PROC)
		sd_seq_puts(s, "  TASK/PID       ");
	if (flags & GR_DURATION)
		sd_seq_puts(s, "  DURATION   ");
	sd_seq_puts(s, "               FUNCTION CALLS\n");
	sd_seq_putc(s, '#');
	if (flags & GR_ABSTIME)
		sd_seq_puts(s, "      |         ");
	if (flags & GR_CPU)
		sd_seq_puts(s, " |  ");
	if (flags & GR_PROC)
		sd_seq_puts(s, "   |    |        ");
	if (flags & GR_DURATION)
		sd_seq_puts(s, "   |   |      ");
	sd_seq_puts(s, "               |   |   |   |\n");
}

/* ---- function_graph: the renderer -------------------------------------------------------- */

struct gr_thread {
	int tid;
	char comm[16];
	int depth;	 /* where comments indent (the kernel's cpu_data->depth) */
	uint64_t *enter; /* the function entered at each depth, 0: none (enter_funcs) */
	int nenter;
	uint64_t pending; /* seq of its entry waiting for the next record, 0: none */
	struct gr_thread *next;
};

enum { GR_ITEM_LINE = 16 }; /* an item whose text is the whole line (function records) */

struct gr_item {
	uint64_t seq;
	struct gr_thread *th;
	uint8_t kind; /* enum ftr_kind, or GR_ITEM_LINE */
	bool pending; /* an entry waiting for its thread's next record */
	bool leaf;    /* an entry its exit was folded into */
	uint16_t cpu;
	uint64_t ts, lost;
	uint64_t since_ms; /* when it was queued (pending entries) */
	struct ftr_rec rec;
	char *text; /* FTR_OTHER: the event's text; GR_ITEM_LINE: the line */
};

#define GR_THREAD_BUCKETS 256

struct graph_render {
	struct gr_opts o;
	const struct sd_render *r;
	gr_out_fn out;
	void *out_arg;
	struct ftr_ids ids;
	struct ftr_names *names;
	int cpu_width;

	struct gr_thread *threads[GR_THREAD_BUCKETS];

	struct gr_item *items; /* a ring of cap (a power of two) items */
	size_t cap, head, count;
	uint64_t head_seq, next_seq;

	struct gr_thread *last; /* thread of the last line printed (verif_pid) */
	char line[GR_LINE_MAX];
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int gr_new(const struct gr_opts *o, const struct sd_render *r, gr_out_fn out, void *out_arg,
	   struct graph_render **gr)
{
	struct graph_render *g = calloc(1, sizeof(*g));

	if (!g)
		return -ENOMEM;
	g->o = *o;
	g->r = r;
	g->out = out;
	g->out_arg = out_arg;
	g->cpu_width = gr_cpu_width(o->ncpus);
	g->names = ftr_names_new(&r->pctx);
	g->cap = 256;
	g->items = calloc(g->cap, sizeof(*g->items));
	g->head_seq = g->next_seq = 1;
	if (!g->names || !g->items) {
		gr_free(g);
		return -ENOMEM;
	}
	*gr = g;
	return 0;
}

void gr_free(struct graph_render *g)
{
	if (!g)
		return;
	for (size_t i = 0; i < g->count; i++)
		free(g->items[(g->head + i) & (g->cap - 1)].text);
	free(g->items);
	for (int b = 0; b < GR_THREAD_BUCKETS; b++) {
		struct gr_thread *t = g->threads[b], *next;

		for (; t; t = next) {
			next = t->next;
			free(t->enter);
			free(t);
		}
	}
	ftr_names_free(g->names);
	ftr_ids_free(&g->ids);
	free(g);
}

static struct gr_thread *thread_of(struct graph_render *g, int tid)
{
	unsigned int b = (unsigned int)tid % GR_THREAD_BUCKETS;
	struct gr_thread *t;

	for (t = g->threads[b]; t; t = t->next)
		if (t->tid == tid)
			return t;
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->tid = tid;
	t->next = g->threads[b];
	g->threads[b] = t;
	return t;
}

static struct gr_item *item_at_seq(struct graph_render *g, uint64_t seq)
{
	uint64_t i = seq - g->head_seq;

	if (seq < g->head_seq || i >= g->count)
		return NULL;
	return &g->items[(g->head + i) & (g->cap - 1)];
}

/* "comm-tid" centred in 14 columns, comm cut to 7 characters (print_graph_proc) */
static void put_proc(struct sd_seq *s, const struct gr_thread *t)
{
	char comm[8], who[40];
	int len, spaces;

	/* the kernel cuts the comm to 7 characters */
	snprintf(comm, sizeof(comm), "%.7s", t->comm[0] ? t->comm : "<...>");
	len = snprintf(who, sizeof(who), "%s-%d", comm, t->tid);
	spaces = len < GR_PROCINFO_LEN ? GR_PROCINFO_LEN - len : 0;
	sd_seq_printf(s, "%*s%s%*s", spaces / 2, "", who, spaces - spaces / 2, "");
}

static void put_cpu(struct graph_render *g, struct sd_seq *s, unsigned int cpu)
{
	sd_seq_printf(s, " %*u) ", g->cpu_width, cpu);
}

/* verif_pid: the context-switch lines when the thread of the lines changes */
static void put_switch(struct graph_render *g, struct sd_seq *s, const struct gr_item *it)
{
	struct gr_thread *prev = g->last;

	g->last = it->th;
	if (!prev || prev == it->th)
		return;
	sd_seq_puts(s, " ------------------------------------------\n");
	put_cpu(g, s, it->cpu);
	put_proc(s, prev);
	sd_seq_puts(s, " => ");
	put_proc(s, it->th);
	sd_seq_puts(s, "\n ------------------------------------------\n\n");
}

static void put_prologue(struct graph_render *g, struct sd_seq *s, const struct gr_item *it)
{
	put_switch(g, s, it);
	if (g->o.flags & GR_ABSTIME) {
		uint64_t ns = sd_clock_to_ns(g->r->clock, g->r->clock_id, it->ts);

		sd_seq_printf(s, "%5" PRIu64 ".%06" PRIu64 " |  ", (uint64_t)(ns / 1000000000ull),
			      (ns / 1000) % 1000000);
	}
	if (g->o.flags & GR_CPU)
		put_cpu(g, s, it->cpu);
	if (g->o.flags & GR_PROC) {
		put_proc(s, it->th);
		sd_seq_puts(s, " | ");
	}
}

/* the duration column: a mark and the time, or blank (FLAGS_FILL_FULL) */
static void put_duration(struct graph_render *g, struct sd_seq *s, bool have, uint64_t ns)
{
	if (!(g->o.flags & GR_DURATION))
		return;
	if (!have) {
		sd_seq_puts(s, "              |  ");
		return;
	}
	if (g->o.flags & GR_OVERHEAD)
		sd_seq_printf(s, "%c ", gr_mark(ns));
	else
		sd_seq_puts(s, "  ");
	gr_duration(s, ns);
	sd_seq_puts(s, "|  ");
}

static void put_indent(struct sd_seq *s, int depth)
{
	if (depth > 0)
		sd_seq_printf(s, "%*s", depth * GR_INDENT, "");
}

static void set_enter(struct gr_thread *t, int depth, uint64_t func)
{
	if (depth < 0)
		return;
	if (depth >= t->nenter) {
		int n = depth + 64;
		uint64_t *bigger = realloc(t->enter, n * sizeof(*bigger));

		if (!bigger)
			return;
		memset(bigger + t->nenter, 0, (n - t->nenter) * sizeof(*bigger));
		t->enter = bigger;
		t->nenter = n;
	}
	t->enter[depth] = func;
}

static uint64_t get_enter(const struct gr_thread *t, int depth)
{
	return depth >= 0 && depth < t->nenter ? t->enter[depth] : 0;
}

static void emit(struct graph_render *g, struct gr_item *it)
{
	struct gr_thread *t = it->th;
	const struct ftr_rec *fr = &it->rec;
	struct sd_seq s;

	sd_seq_init(&s, g->line, sizeof(g->line));
	if (it->lost) {
		sd_render_lost(&s, it->cpu, it->lost);
		/* what this thread entered before the gap is unknown now */
		if (t->enter)
			memset(t->enter, 0, t->nenter * sizeof(*t->enter));
	}
	switch (it->kind) {
	case FTR_ENTRY:
		put_prologue(g, &s, it);
		if (it->leaf) {
			/* print_graph_entry_leaf */
			t->depth = fr->depth - 1;
			set_enter(t, fr->depth, 0);
			put_duration(g, &s, true, ftr_delta_ns(g->r, fr->calltime, fr->rettime));
			put_indent(&s, fr->depth);
			sd_seq_printf(&s, "%s();\n", ftr_name(g->names, fr->func));
		} else {
			/* print_graph_entry_nested */
			t->depth = fr->depth;
			set_enter(t, fr->depth, fr->func);
			put_duration(g, &s, false, 0);
			put_indent(&s, fr->depth);
			sd_seq_printf(&s, "%s() {\n", ftr_name(g->names, fr->func));
		}
		break;
	case FTR_EXIT: {
		/* print_graph_return */
		bool match = get_enter(t, fr->depth) == fr->func;

		t->depth = fr->depth - 1;
		set_enter(t, fr->depth, 0);
		put_prologue(g, &s, it);
		put_duration(g, &s, true, ftr_delta_ns(g->r, fr->calltime, fr->rettime));
		put_indent(&s, fr->depth);
		if (match && !(g->o.flags & GR_TAIL))
			sd_seq_puts(&s, "}\n");
		else
			sd_seq_printf(&s, "} /* %s */\n", ftr_name(g->names, fr->func));
		if (g->o.flags & GR_OVERRUN)
			sd_seq_printf(&s, " (Overruns: %u)\n", fr->overrun);
		break;
	}
	case GR_ITEM_LINE:
		sd_seq_puts(&s, it->text ? it->text : "");
		break;
	default:
		/* print_graph_comment: another event, as a comment where the graph is */
		put_prologue(g, &s, it);
		put_duration(g, &s, false, 0);
		if (t->depth > 0)
			put_indent(&s, t->depth + 1);
		sd_seq_printf(&s, "/* %s */\n", it->text ? it->text : "");
		break;
	}
	if (s.overflow && s.len && s.buf[s.len - 1] != '\n') {
		s.buf[s.len - 1] = '\n'; /* a cut line still ends its line */
	}
	g->out(g->out_arg, s.buf, s.len);
}

/* print what is ready at the head of the queue */
static void pump(struct graph_render *g)
{
	while (g->count) {
		struct gr_item *it = &g->items[g->head];

		if (it->pending)
			break;
		emit(g, it);
		free(it->text);
		it->text = NULL;
		g->head = (g->head + 1) & (g->cap - 1);
		g->count--;
		g->head_seq++;
	}
}

/* an entry that will not be a leaf: printed as "func() {" */
static void resolve(struct graph_render *g, struct gr_thread *t)
{
	struct gr_item *p = item_at_seq(g, t->pending);

	if (p)
		p->pending = false;
	t->pending = 0;
}

static struct gr_item *enqueue(struct graph_render *g)
{
	struct gr_item *it;

	if (g->count == g->cap) {
		struct gr_item *bigger = malloc(2 * g->cap * sizeof(*bigger));

		if (!bigger)
			return NULL;
		for (size_t i = 0; i < g->count; i++)
			bigger[i] = g->items[(g->head + i) & (g->cap - 1)];
		memset(bigger + g->count, 0, (2 * g->cap - g->count) * sizeof(*bigger));
		free(g->items);
		g->items = bigger;
		g->head = 0;
		g->cap *= 2;
	}
	it = &g->items[(g->head + g->count) & (g->cap - 1)];
	memset(it, 0, sizeof(*it));
	it->seq = g->next_seq++;
	g->count++;
	return it;
}

/* the text of another event in a comment: "name: fields" */
static char *other_text(struct graph_render *g, const struct sd_rb_event *ev)
{
	struct sd_event *e = NULL;
	uint16_t id = 0;
	struct sd_seq s;

	sd_seq_init(&s, g->line, sizeof(g->line));
	if (ev->len >= 2) {
		memcpy(&id, ev->payload, 2);
		e = g->r->event ? g->r->event(g->r->event_arg, id) : NULL;
	}
	if (!e) {
		sd_seq_printf(&s, "Unknown event %u", id);
	} else {
		sd_seq_printf(&s, "%s: ", e->name);
		if (e->ops && e->ops->print)
			e->ops->print(&s, e, ev->payload, ev->len, &g->r->pctx);
	}
	while (s.len && s.buf[s.len - 1] == '\n')
		s.buf[--s.len] = '\0';
	return strdup(s.buf);
}

void gr_feed(struct graph_render *g, const struct sd_rb_event *ev)
{
	struct gr_thread *t = thread_of(g, ev->tid);
	struct ftr_rec fr;
	struct gr_item *it;

	if (!t)
		return;
	if (ev->comm && ev->comm[0])
		snprintf(t->comm, sizeof(t->comm), "%s", ev->comm);
	ftr_decode(&g->ids, g->r, ev, &fr);
	if (t->pending) {
		struct gr_item *p = item_at_seq(g, t->pending);

		/* get_return_for_leaf: the very next record of the thread is its exit */
		if (p && fr.kind == FTR_EXIT && !ev->lost && fr.func == p->rec.func) {
			p->leaf = true;
			p->rec.overrun = fr.overrun;
			p->rec.calltime = fr.calltime;
			p->rec.rettime = fr.rettime;
			p->pending = false;
			t->pending = 0;
			pump(g);
			return;
		}
		resolve(g, t);
	}
	it = enqueue(g);
	if (!it) {
		pump(g);
		return;
	}
	it->th = t;
	it->kind = (uint8_t)fr.kind;
	it->cpu = ev->cpu;
	it->ts = ev->ts;
	it->lost = ev->lost;
	it->rec = fr;
	if (fr.kind == FTR_LEAF) {
		/* an entry whose exit is known: printed as "func();" at once */
		it->kind = FTR_ENTRY;
		it->rec.kind = FTR_ENTRY;
		it->leaf = true;
	} else if (fr.kind == FTR_ENTRY) {
		it->pending = true;
		it->since_ms = g->o.pending_ms ? now_ms() : 0;
		t->pending = it->seq;
	} else if (fr.kind == FTR_FUNCTION) {
		struct sd_seq s;

		/* the function tracer's own line (the kernel prints TRACE_FN so too) */
		sd_seq_init(&s, g->line, sizeof(g->line));
		ftr_render_function(&s, g->r, g->names, ev, &fr);
		it->kind = GR_ITEM_LINE;
		it->text = strdup(s.buf);
	} else if (fr.kind == FTR_OTHER) {
		it->text = other_text(g, ev);
	}
	/* a thread that never comes back must not hold everything forever */
	while (g->count > GR_MAX_HELD && g->items[g->head].pending)
		resolve(g, g->items[g->head].th);
	pump(g);
}

void gr_idle(struct graph_render *g)
{
	uint64_t now;

	if (!g->o.pending_ms || !g->count)
		return;
	now = now_ms();
	while (g->count && g->items[g->head].pending &&
	       now - g->items[g->head].since_ms >= g->o.pending_ms) {
		resolve(g, g->items[g->head].th);
		pump(g);
	}
}

void gr_finish(struct graph_render *g)
{
	while (g->count) {
		if (g->items[g->head].pending)
			resolve(g, g->items[g->head].th);
		pump(g);
	}
}
