// SPDX-License-Identifier: MIT
/* graph_export.c - statistics, Chrome JSON and folded stacks of calls (graph_export.h). */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "graph_export.h"

void gx_time(char *buf, size_t len, uint64_t ns)
{
	/* unit i is unit i-1 divided by div[i]; a value stays in unit i below stay[i] */
	static const char *const units[] = {"us", "ms", " s", " m", " h"};
	static const uint64_t div[] = {1000, 1000, 1000, 60, 60};
	static const uint64_t stay[] = {1000, 1000, 60, 60, UINT64_MAX};
	uint64_t v = ns, small = 0;
	size_t idx;

	if (!ns) {
		snprintf(buf, len, "%10s", "");
		return;
	}
	for (idx = 0; idx < 5; idx++) {
		small = v % div[idx];
		v /= div[idx];
		if (v < stay[idx])
			break;
	}
	if (v > 999)
		v = small = 999;
	snprintf(buf, len, "%3" PRIu64 ".%03" PRIu64 " %s", v, small, units[idx]);
}

/* ---- statistics -------------------------------------------------------------------------- */

static size_t str_hash(const char *s)
{
	size_t h = 1469598103934665603ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

void gx_stats_init(struct gx_stats *st)
{
	memset(st, 0, sizeof(*st));
}

void gx_stats_free(struct gx_stats *st)
{
	for (size_t i = 0; i < st->cap; i++)
		free(st->funcs[i].name);
	free(st->funcs);
	memset(st, 0, sizeof(*st));
}

static struct gx_func *stats_slot(struct gx_func *funcs, size_t cap, const char *name)
{
	size_t i = str_hash(name) & (cap - 1);

	while (funcs[i].name && strcmp(funcs[i].name, name))
		i = (i + 1) & (cap - 1);
	return &funcs[i];
}

static int stats_grow(struct gx_stats *st)
{
	size_t cap = st->cap ? 2 * st->cap : 256;
	struct gx_func *funcs = calloc(cap, sizeof(*funcs));

	if (!funcs)
		return -ENOMEM;
	for (size_t i = 0; i < st->cap; i++)
		if (st->funcs[i].name)
			*stats_slot(funcs, cap, st->funcs[i].name) = st->funcs[i];
	free(st->funcs);
	st->funcs = funcs;
	st->cap = cap;
	return 0;
}

int gx_stats_add(struct gx_stats *st, const char *name, const struct ct_call *c)
{
	struct gx_func *f;

	if ((st->n + 1) * 2 > st->cap && stats_grow(st))
		return -ENOMEM;
	f = stats_slot(st->funcs, st->cap, name);
	if (!f->name) {
		f->name = strdup(name);
		if (!f->name)
			return -ENOMEM;
		f->min_total = f->min_self = UINT64_MAX;
		st->n++;
	}
	f->calls++;
	st->calls++;
	if (!c->recursive)
		f->total_ns += c->dur_ns;
	f->self_ns += c->self_ns;
	f->sum_ns += c->dur_ns;
	if (c->dur_ns < f->min_total)
		f->min_total = c->dur_ns;
	if (c->dur_ns > f->max_total)
		f->max_total = c->dur_ns;
	if (c->self_ns < f->min_self)
		f->min_self = c->self_ns;
	if (c->self_ns > f->max_self)
		f->max_self = c->self_ns;
	return 0;
}

int gx_sort_by_name(const char *key)
{
	if (!strcmp(key, "total"))
		return GX_SORT_TOTAL;
	if (!strcmp(key, "self"))
		return GX_SORT_SELF;
	if (!strcmp(key, "calls") || !strcmp(key, "call"))
		return GX_SORT_CALLS;
	if (!strcmp(key, "func") || !strcmp(key, "function"))
		return GX_SORT_FUNC;
	return -1;
}

static int sort_key;

static int cmp_u64_desc(uint64_t a, uint64_t b)
{
	return (a < b) - (a > b);
}

static int cmp_funcs(const void *pa, const void *pb)
{
	const struct gx_func *a = *(const struct gx_func *const *)pa;
	const struct gx_func *b = *(const struct gx_func *const *)pb;
	int c = 0;

	switch (sort_key) {
	case GX_SORT_TOTAL:
		c = cmp_u64_desc(a->total_ns, b->total_ns);
		break;
	case GX_SORT_SELF:
		c = cmp_u64_desc(a->self_ns, b->self_ns);
		break;
	case GX_SORT_CALLS:
		c = cmp_u64_desc(a->calls, b->calls);
		break;
	default:
		break;
	}
	return c ? c : strcmp(a->name, b->name);
}

size_t gx_stats_print(struct gx_stats *st, FILE *out, int sort, int columns)
{
	struct gx_func **v = calloc(st->n ? st->n : 1, sizeof(*v));
	char t1[32], t2[32], t3[32];
	size_t n = 0;

	if (!v)
		return 0;
	for (size_t i = 0; i < st->cap; i++)
		if (st->funcs[i].name)
			v[n++] = &st->funcs[i];
	sort_key = sort;
	qsort(v, n, sizeof(*v), cmp_funcs);
	if (columns == GX_COLS_AVG_TOTAL)
		fputs("   Total avg   Total min   Total max  Function\n", out);
	else if (columns == GX_COLS_AVG_SELF)
		fputs("    Self avg    Self min    Self max  Function\n", out);
	else
		fputs("  Total time   Self time       Calls  Function\n", out);
	fputs("  ==========  ==========  ==========  ====================\n", out);
	for (size_t i = 0; i < n; i++) {
		struct gx_func *f = v[i];

		if (columns == GX_COLS_AVG_TOTAL || columns == GX_COLS_AVG_SELF) {
			bool tot = columns == GX_COLS_AVG_TOTAL;

			gx_time(t1, sizeof(t1), (tot ? f->sum_ns : f->self_ns) / f->calls);
			gx_time(t2, sizeof(t2), tot ? f->min_total : f->min_self);
			gx_time(t3, sizeof(t3), tot ? f->max_total : f->max_self);
			fprintf(out, "  %s  %s  %s  %s\n", t1, t2, t3, f->name);
		} else {
			gx_time(t1, sizeof(t1), f->total_ns);
			gx_time(t2, sizeof(t2), f->self_ns);
			fprintf(out, "  %s  %s  %10lu  %s\n", t1, t2, f->calls, f->name);
		}
	}
	free(v);
	return n;
}

/* ---- Chrome trace events ----------------------------------------------------------------- */

void gx_json_string(FILE *out, const char *s)
{
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			fprintf(out, "\\%c", ch);
		else if (ch < 0x20 || ch == 0x7f)
			fprintf(out, "\\u%04x", ch);
		else
			fputc(ch, out);
	}
}

/* µs with the ns as decimals, as the format wants (a JSON number) */
static void put_us(FILE *out, uint64_t ns)
{
	fprintf(out, "%" PRIu64 ".%03u", ns / 1000, (unsigned int)(ns % 1000));
}

static void chrome_sep(struct gx_chrome *c)
{
	fputs(c->first ? "\n" : ",\n", c->f);
	c->first = false;
}

void gx_chrome_begin(struct gx_chrome *c, FILE *f, int pid, const char *process_name)
{
	memset(c, 0, sizeof(*c));
	c->f = f;
	c->pid = pid;
	c->first = true;
	fputs("{\"traceEvents\":[", f);
	if (process_name && *process_name) {
		chrome_sep(c);
		fprintf(f,
			"{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":%d,\"tid\":%d,"
			"\"args\":{\"name\":\"",
			pid, pid);
		gx_json_string(f, process_name);
		fputs("\"}}", f);
	}
}

static void chrome_thread(struct gx_chrome *c, int tid, const char *comm)
{
	for (size_t i = 0; i < c->ntids; i++)
		if (c->tids[i] == tid)
			return;
	if (c->ntids == c->captids) {
		size_t cap = c->captids ? 2 * c->captids : 16;
		int *bigger = realloc(c->tids, cap * sizeof(*bigger));

		if (!bigger)
			return;
		c->tids = bigger;
		c->captids = cap;
	}
	c->tids[c->ntids++] = tid;
	chrome_sep(c);
	fprintf(c->f,
		"{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%d,\"tid\":%d,"
		"\"args\":{\"name\":\"",
		c->pid, tid);
	gx_json_string(c->f, comm && *comm ? comm : "?");
	fprintf(c->f, "-%d\"}}", tid);
}

void gx_chrome_call(struct gx_chrome *c, const char *name, const struct ct_call *call)
{
	chrome_thread(c, call->tid, call->comm);
	chrome_sep(c);
	fputs("{\"name\":\"", c->f);
	gx_json_string(c->f, name);
	fputs("\",\"cat\":\"function\",\"ph\":\"X\",\"ts\":", c->f);
	put_us(c->f, call->start_ns);
	fputs(",\"dur\":", c->f);
	put_us(c->f, call->dur_ns);
	fprintf(c->f, ",\"pid\":%d,\"tid\":%d", c->pid, call->tid);
	if (!call->complete)
		fputs(",\"args\":{\"returned\":false}", c->f);
	fputc('}', c->f);
	c->events++;
}

void gx_chrome_end(struct gx_chrome *c)
{
	fputs("\n],\"displayTimeUnit\":\"ns\",\"otherData\":{\"producer\":\"sonde\"}}\n", c->f);
	free(c->tids);
	c->tids = NULL;
	c->ntids = c->captids = 0;
}

/* ---- folded stacks ----------------------------------------------------------------------- */

void gx_folded_init(struct gx_folded *f, bool per_thread)
{
	memset(f, 0, sizeof(*f));
	f->per_thread = per_thread;
}

void gx_folded_free(struct gx_folded *f)
{
	for (size_t i = 0; i < f->cap; i++)
		free(f->slots[i].stack);
	free(f->slots);
	free(f->buf);
	memset(f, 0, sizeof(*f));
}

static struct gx_folded_slot *folded_slot(struct gx_folded_slot *slots, size_t cap,
					  const char *stack)
{
	size_t i = str_hash(stack) & (cap - 1);

	while (slots[i].stack && strcmp(slots[i].stack, stack))
		i = (i + 1) & (cap - 1);
	return &slots[i];
}

static int folded_grow(struct gx_folded *f)
{
	size_t cap = f->cap ? 2 * f->cap : 256;
	struct gx_folded_slot *slots = calloc(cap, sizeof(*slots));

	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; i < f->cap; i++)
		if (f->slots[i].stack)
			*folded_slot(slots, cap, f->slots[i].stack) = f->slots[i];
	free(f->slots);
	f->slots = slots;
	f->cap = cap;
	return 0;
}

/* append @s to the stack being built; ';' and ' ' would break the format */
static int folded_put(struct gx_folded *f, size_t *len, const char *s, bool sep)
{
	size_t need = *len + strlen(s) + 2;

	if (need > f->buflen) {
		size_t n = need * 2;
		char *bigger = realloc(f->buf, n);

		if (!bigger)
			return -ENOMEM;
		f->buf = bigger;
		f->buflen = n;
	}
	if (sep)
		f->buf[(*len)++] = ';';
	for (; *s; s++)
		f->buf[(*len)++] = *s == ';' ? ':' : *s == ' ' ? '_' : *s;
	f->buf[*len] = '\0';
	return 0;
}

int gx_folded_add(struct gx_folded *f, struct ftr_names *names, const struct ct_call *c)
{
	struct gx_folded_slot *slot;
	size_t len = 0;
	char who[48];
	int err = 0;

	if (f->per_thread) {
		snprintf(who, sizeof(who), "%s-%d", c->comm && *c->comm ? c->comm : "?", c->tid);
		err = folded_put(f, &len, who, false);
	}
	for (int i = 0; i < c->nstack && !err; i++)
		err = folded_put(f, &len, ftr_name(names, c->stack[i]), len != 0);
	if (err)
		return err;
	if ((f->n + 1) * 2 > f->cap && folded_grow(f))
		return -ENOMEM;
	slot = folded_slot(f->slots, f->cap, f->buf);
	if (!slot->stack) {
		slot->stack = strdup(f->buf);
		if (!slot->stack)
			return -ENOMEM;
		f->n++;
	}
	slot->ns += c->self_ns;
	return 0;
}

static int cmp_stacks(const void *a, const void *b)
{
	return strcmp((*(const struct gx_folded_slot *const *)a)->stack,
		      (*(const struct gx_folded_slot *const *)b)->stack);
}

size_t gx_folded_print(struct gx_folded *f, FILE *out, bool ns)
{
	struct gx_folded_slot **v = calloc(f->n ? f->n : 1, sizeof(*v));
	size_t n = 0, printed = 0;

	if (!v)
		return 0;
	for (size_t i = 0; i < f->cap; i++)
		if (f->slots[i].stack)
			v[n++] = &f->slots[i];
	qsort(v, n, sizeof(*v), cmp_stacks);
	for (size_t i = 0; i < n; i++) {
		uint64_t val = ns ? v[i]->ns : (v[i]->ns + 999) / 1000;

		if (!val)
			continue;
		fprintf(out, "%s %" PRIu64 "\n", v[i]->stack, val);
		printed++;
	}
	free(v);
	return printed;
}
