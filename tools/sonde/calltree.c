// SPDX-License-Identifier: MIT
/* calltree.c - calls rebuilt from function_graph records (calltree.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calltree.h"

struct ct_frame {
	uint64_t func;
	int depth;
	uint64_t start_raw; /* the entry record's time */
};

struct ct_thread {
	int tid;
	char comm[16];
	struct ct_frame *frames; /* running calls, outermost first, depths increasing */
	int nframes, capframes;
	uint64_t *child; /* ns of the returned calls at each depth, not yet charged to the caller */
	int nchild;
	uint64_t last_ts;
	struct ct_thread *next;
};

#define CT_BUCKETS 256

struct calltree {
	const struct sd_render *r;
	struct ct_ops ops;
	void *arg;
	struct ftr_ids ids;
	struct ct_thread *threads[CT_BUCKETS];
	uint64_t *stack;
	int capstack;
	unsigned long records;
};

int ct_new(const struct sd_render *r, const struct ct_ops *ops, void *arg, struct calltree **out)
{
	struct calltree *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	t->r = r;
	t->ops = *ops;
	t->arg = arg;
	*out = t;
	return 0;
}

void ct_free(struct calltree *t)
{
	if (!t)
		return;
	for (int b = 0; b < CT_BUCKETS; b++) {
		struct ct_thread *th = t->threads[b], *next;

		for (; th; th = next) {
			next = th->next;
			free(th->frames);
			free(th->child);
			free(th);
		}
	}
	ftr_ids_free(&t->ids);
	free(t->stack);
	free(t);
}

unsigned long ct_records(const struct calltree *t)
{
	return t->records;
}

static struct ct_thread *thread_of(struct calltree *t, int tid)
{
	unsigned int b = (unsigned int)tid % CT_BUCKETS;
	struct ct_thread *th;

	for (th = t->threads[b]; th; th = th->next)
		if (th->tid == tid)
			return th;
	th = calloc(1, sizeof(*th));
	if (!th)
		return NULL;
	th->tid = tid;
	th->next = t->threads[b];
	t->threads[b] = th;
	return th;
}

/* the slot of depth @d in th->child, grown as needed (NULL without memory) */
static uint64_t *child_at(struct ct_thread *th, int d)
{
	if (d < 0)
		return NULL;
	if (d >= th->nchild) {
		int n = d + 64;
		uint64_t *bigger = realloc(th->child, n * sizeof(*bigger));

		if (!bigger)
			return NULL;
		memset(bigger + th->nchild, 0, (n - th->nchild) * sizeof(*bigger));
		th->child = bigger;
		th->nchild = n;
	}
	return &th->child[d];
}

static void set_child(struct ct_thread *th, int d, uint64_t v)
{
	uint64_t *p = child_at(th, d);

	if (p)
		*p = v;
}

static uint64_t get_child(const struct ct_thread *th, int d)
{
	return d >= 0 && d < th->nchild ? th->child[d] : 0;
}

static void add_child(struct ct_thread *th, int d, uint64_t v)
{
	uint64_t *p = child_at(th, d);

	if (p)
		*p += v;
}

/* the functions of frames [0, n) and then @func, in t->stack */
static int build_stack(struct calltree *t, struct ct_thread *th, int n, uint64_t func)
{
	if (n + 1 > t->capstack) {
		int cap = n + 64;
		uint64_t *bigger = realloc(t->stack, cap * sizeof(*bigger));

		if (!bigger)
			return 0;
		t->stack = bigger;
		t->capstack = cap;
	}
	for (int i = 0; i < n; i++)
		t->stack[i] = th->frames[i].func;
	t->stack[n] = func;
	return n + 1;
}

static bool running_below(const struct ct_thread *th, int n, uint64_t func)
{
	for (int i = 0; i < n; i++)
		if (th->frames[i].func == func)
			return true;
	return false;
}

static void on_entry(struct ct_thread *th, const struct ftr_rec *fr, uint64_t ts)
{
	int d = fr->depth < 0 ? 0 : fr->depth;

	/* calls at this depth or deeper that are still open never returned */
	while (th->nframes && th->frames[th->nframes - 1].depth >= d)
		th->nframes--;
	if (th->nframes == th->capframes) {
		int cap = th->capframes ? 2 * th->capframes : 64;
		struct ct_frame *bigger = realloc(th->frames, cap * sizeof(*bigger));

		if (!bigger)
			return;
		th->frames = bigger;
		th->capframes = cap;
	}
	th->frames[th->nframes++] =
	    (struct ct_frame){.func = fr->func, .depth = d, .start_raw = ts};
	set_child(th, d + 1, 0);
}

static void on_exit_rec(struct calltree *t, struct ct_thread *th, const struct ftr_rec *fr)
{
	int d = fr->depth < 0 ? 0 : fr->depth;
	struct ct_call c = {
	    .tid = th->tid, .comm = th->comm, .func = fr->func, .depth = d, .complete = true};
	uint64_t children;

	/* deeper calls still open lost their exits; so did another function at this depth */
	while (th->nframes && (th->frames[th->nframes - 1].depth > d ||
			       (th->frames[th->nframes - 1].depth == d &&
				th->frames[th->nframes - 1].func != fr->func)))
		th->nframes--;
	if (th->nframes && th->frames[th->nframes - 1].depth == d) {
		c.entered = true;
		th->nframes--; /* it returns */
	}
	c.start_ns = sd_clock_to_ns(t->r->clock, t->r->clock_id, fr->calltime);
	c.dur_ns = ftr_delta_ns(t->r, fr->calltime, fr->rettime);
	children = get_child(th, d + 1);
	c.self_ns = c.dur_ns > children ? c.dur_ns - children : 0;
	set_child(th, d + 1, 0);
	add_child(th, d, c.dur_ns);
	c.recursive = running_below(th, th->nframes, fr->func);
	c.nstack = build_stack(t, th, th->nframes, fr->func);
	c.stack = t->stack;
	if (t->ops.call)
		t->ops.call(t->arg, &c);
}

void ct_feed(struct calltree *t, const struct sd_rb_event *ev)
{
	struct ct_thread *th = thread_of(t, ev->tid);
	struct ftr_rec fr;

	if (!th)
		return;
	if (ev->comm && ev->comm[0])
		snprintf(th->comm, sizeof(th->comm), "%s", ev->comm);
	if (ev->lost) {
		/* a gap: what ran on this thread before it is unknown */
		th->nframes = 0;
		if (th->child)
			memset(th->child, 0, th->nchild * sizeof(*th->child));
	}
	if (ev->ts > th->last_ts)
		th->last_ts = ev->ts;
	ftr_decode(&t->ids, t->r, ev, &fr);
	if (fr.kind == FTR_LEAF) {
		/* an entry and its exit in one record */
		t->records++;
		on_entry(th, &fr, fr.calltime);
		if (fr.rettime > th->last_ts)
			th->last_ts = fr.rettime;
		on_exit_rec(t, th, &fr);
	} else if (fr.kind == FTR_ENTRY) {
		t->records++;
		on_entry(th, &fr, ev->ts);
	} else if (fr.kind == FTR_EXIT) {
		t->records++;
		if (fr.rettime > th->last_ts)
			th->last_ts = fr.rettime;
		on_exit_rec(t, th, &fr);
	}
}

static int by_tid(const void *a, const void *b)
{
	const struct ct_thread *x = *(const struct ct_thread *const *)a;
	const struct ct_thread *y = *(const struct ct_thread *const *)b;

	return (x->tid > y->tid) - (x->tid < y->tid);
}

/* the calls still running at the end, innermost first, thread by thread */
void ct_finish(struct calltree *t)
{
	struct ct_thread **all = NULL, *th;
	size_t n = 0;

	for (int b = 0; b < CT_BUCKETS; b++)
		for (th = t->threads[b]; th; th = th->next)
			n++;
	all = calloc(n ? n : 1, sizeof(*all));
	if (!all)
		return;
	n = 0;
	for (int b = 0; b < CT_BUCKETS; b++)
		for (th = t->threads[b]; th; th = th->next)
			all[n++] = th;
	qsort(all, n, sizeof(*all), by_tid);
	for (size_t i = 0; i < n; i++) {
		th = all[i];
		while (th->nframes) {
			struct ct_frame *f = &th->frames[th->nframes - 1];
			struct ct_call c = {.tid = th->tid,
					    .comm = th->comm,
					    .func = f->func,
					    .depth = f->depth,
					    .entered = true};
			uint64_t children = get_child(th, f->depth + 1);

			c.start_ns = sd_clock_to_ns(t->r->clock, t->r->clock_id, f->start_raw);
			c.dur_ns = ftr_delta_ns(t->r, f->start_raw, th->last_ts);
			c.self_ns = c.dur_ns > children ? c.dur_ns - children : 0;
			set_child(th, f->depth + 1, 0);
			add_child(th, f->depth, c.dur_ns);
			th->nframes--;
			c.recursive = running_below(th, th->nframes, f->func);
			c.nstack = build_stack(t, th, th->nframes, f->func);
			c.stack = t->stack;
			if (t->ops.call)
				t->ops.call(t->arg, &c);
		}
	}
	free(all);
}
