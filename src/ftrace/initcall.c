// SPDX-License-Identifier: MIT
/*
 * initcall.c - start-up tracing, the kernel's initcall events for user
 * space: every constructor of the program and its libraries
 * (.preinit_array, DT_INIT, .init_array) with its object and duration.
 *
 *   initcall:initcall_start   func, kind, index, obj
 *   initcall:initcall_finish  func, kind, index, duration (ns), obj
 *
 * The constructors are logged by libsonde-init.so (initcall/audit.c),
 * loaded through LD_AUDIT by the command: most run before libsonde's own
 * constructor. Turning options/init-trace on writes what already ran, at
 * the times it ran, and sets the log's hook so that the rest are written
 * as they run. Constructors of objects the program does not need (libsonde
 * and what it alone loads) are left out: sonde is not the program.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SD_LOG_PREFIX "initcall"
#include "common/compiler.h"
#include "common/log.h"
#include "ftrace/ftrace.h"
#include "initcall/initlog.h"
#include "sym/sym.h"
#include "trace/clock.h"
#include "trace/printfmt.h"
#include "trace/trace.h"

static struct sd_initlog *initlog;
static char exe_name[256];

/* ---- the events ------------------------------------------------------------------------- */

#define START_FIXED  28
#define FINISH_FIXED 36

/*
 * Printed from their print fmt, here and in the command alike (which has
 * nothing else: the records may outlive the process)
 */
static void print_by_fmt(struct sd_seq *s, const struct sd_event *ev, const void *entry,
			 uint32_t len, const struct sd_print_ctx *ctx)
{
	static struct sd_printfmt *pf[2];
	int k = ev->nfields == 5;
	char why[128];

	if (!pf[k] && sd_printfmt_compile(ev->print_fmt, ev, &pf[k], why, sizeof(why))) {
		sd_print_fields(s, ev, entry, len);
		return;
	}
	sd_printfmt_render(s, pf[k], entry, len, ctx);
}

static const struct sd_event_ops initcall_ops = {.print = print_by_fmt};

#define OBJ_FIELD(off)                                                                  \
	{                                                                               \
		.name = "obj", .c_type = "__data_loc char[]", .offset = off, .size = 4, \
		.elem_size = 1, .ftype = SD_FT_STRING, .dynamic = 1                     \
	}

#define KIND_SYMBOLIC                                                                 \
	"__print_symbolic(REC->kind, { 1, \".preinit_array\" }, { 2, \"DT_INIT\" }, " \
	"{ 3, \".init_array\" })"

static struct sd_field f_start[] = {
    SD_FIELD("func", "unsigned long", 8, 8, SD_FT_SYMBOL),
    SD_FIELD("kind", "unsigned int", 16, 4, SD_FT_UNSIGNED),
    SD_FIELD("index", "unsigned int", 20, 4, SD_FT_UNSIGNED),
    OBJ_FIELD(24),
};
static struct sd_field f_finish[] = {
    SD_FIELD("func", "unsigned long", 8, 8, SD_FT_SYMBOL),
    SD_FIELD("kind", "unsigned int", 16, 4, SD_FT_UNSIGNED),
    SD_FIELD("index", "unsigned int", 20, 4, SD_FT_UNSIGNED),
    SD_FIELD("duration", "unsigned long long", 24, 8, SD_FT_UNSIGNED),
    OBJ_FIELD(32),
};

static struct sd_event ev_start = {
    .system = "initcall",
    .name = "initcall_start",
    .fields = f_start,
    .nfields = 4,
    .fixed_size = START_FIXED,
    .print_fmt =
	"\"func=%pS [%s] %s[%u]\", REC->func, __get_str(obj), " KIND_SYMBOLIC ", REC->index",
    .ops = &initcall_ops,
};
static struct sd_event ev_finish = {
    .system = "initcall",
    .name = "initcall_finish",
    .fields = f_finish,
    .nfields = 5,
    .fixed_size = FINISH_FIXED,
    .print_fmt =
	"\"func=%pS [%s] %s[%u] duration=%llu ns\", REC->func, __get_str(obj), " KIND_SYMBOLIC
	", REC->index, REC->duration",
    .ops = &initcall_ops,
};

/* ---- writing ------------------------------------------------------------------------------ */

SD_NOTRACE static const char *obj_name(const struct sd_initrec *r)
{
	const char *s = r->obj && *r->obj ? r->obj : exe_name, *base = s;

	/* by hand: a probe on libc's strrchr must not see sonde */
	for (; *s; s++)
		if (*s == '/')
			base = s + 1;
	return base;
}

/* @at: the raw trace-clock time to stamp, or NULL for now */
SD_NOTRACE static void write_rec(const struct sd_initrec *r, bool finish, const uint64_t *at)
{
	struct sd_event *ev = finish ? &ev_finish : &ev_start;
	uint32_t fixed = finish ? FINISH_FIXED : START_FIXED;
	const char *obj = obj_name(r);
	uint32_t olen = 1, loc;
	struct sd_trace_res res;
	char *e;

	while (obj[olen - 1])
		olen++;
	loc = olen << 16 | fixed;
	e = at ? sd_trace_reserve_at(ev, fixed + olen, *at, &res)
	       : sd_trace_reserve(ev, fixed + olen, &res);
	if (!e)
		return;
	memcpy(e + 8, &r->func, 8);
	memcpy(e + 16, &r->kind, 4);
	memcpy(e + 20, &r->index, 4);
	if (finish) {
		uint64_t d = r->mono_end - r->mono_start;

		memcpy(e + 24, &d, 8);
	}
	memcpy(e + fixed - 4, &loc, 4);
	for (uint32_t i = 0; i < olen; i++)
		e[fixed + i] = obj[i];
	sd_trace_commit(ev, &res);
}

/* the log's hook: a constructor starts or ends now, in the thread running it */
SD_NOTRACE static void hook(struct sd_initrec *r, int end)
{
	if (!r->not_program)
		write_rec(r, end, NULL);
}

/* a time the log took (TSC and CLOCK_MONOTONIC both) on the trace clock */
static uint64_t to_trace_clock(uint64_t tsc, uint64_t mono, uint64_t now_raw, uint64_t now_mono)
{
	switch (sd_trace_clock_id()) {
	case SD_CLOCK_LOCAL:
	case SD_CLOCK_GLOBAL:
	case SD_CLOCK_PERF:
	case SD_CLOCK_X86_TSC:
		return tsc;
	case SD_CLOCK_MONO:
		return mono;
	default: /* the others count ns too: the same distance back from now */
		return now_mono > mono && now_raw > now_mono - mono ? now_raw - (now_mono - mono)
								    : now_raw;
	}
}

static uint64_t mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

struct step {
	uint32_t seq;
	const struct sd_initrec *r;
	bool finish;
};

static int cmp_step(const void *a, const void *b)
{
	const struct step *x = a, *y = b;

	return (x->seq > y->seq) - (x->seq < y->seq);
}

/* what ran before the hook was set, in the order it ran, at the times it ran */
static void write_backlog(void)
{
	uint32_t n = __atomic_load_n(&initlog->n, __ATOMIC_ACQUIRE);
	struct step *steps = calloc(2 * (size_t)n + 1, sizeof(*steps));
	uint64_t now_raw = sd_trace_clock_now(), now_m = mono_now();
	size_t k = 0;

	if (!steps)
		return;
	for (uint32_t i = 0; i < n; i++) {
		const struct sd_initrec *r = &initlog->rec[i];
		uint32_t st = __atomic_load_n(&r->state, __ATOMIC_ACQUIRE);

		if (r->not_program || st == SD_INIT_PENDING || !r->seq_start)
			continue;
		steps[k++] = (struct step){r->seq_start, r, false};
		if (st == SD_INIT_DONE && r->seq_end)
			steps[k++] = (struct step){r->seq_end, r, true};
	}
	qsort(steps, k, sizeof(*steps), cmp_step);
	for (size_t i = 0; i < k; i++) {
		const struct sd_initrec *r = steps[i].r;
		uint64_t at = steps[i].finish
				  ? to_trace_clock(r->tsc_end, r->mono_end, now_raw, now_m)
				  : to_trace_clock(r->tsc_start, r->mono_start, now_raw, now_m);

		write_rec(r, steps[i].finish, &at);
	}
	free(steps);
}

/* ---- turning it on ------------------------------------------------------------------------ */

static struct sd_initlog *find_log(void)
{
	struct sd_maps *maps;
	struct sd_initlog *log = NULL;

	if (sd_maps_read(0, &maps))
		return NULL;
	for (size_t i = 0; i < sd_maps_count(maps) && !log; i++) {
		struct sd_module *m = sd_maps_at(maps, i);
		struct sd_symtab *st;
		const struct sd_sym *s;

		if (strncmp(m->name, "libsonde-init", 13) || !(st = sd_module_symtab(m)))
			continue;
		s = sd_symtab_lookup(st, "sonde_initlog");
		if (s)
			log = (struct sd_initlog *)(uintptr_t)(m->bias + s->value);
	}
	sd_maps_free(maps);
	if (log && (log->magic != SD_INITLOG_MAGIC || log->version != SD_INITLOG_VERSION))
		log = NULL;
	return log;
}

int sd_initcall_set(bool on, FILE *why)
{
	static bool registered;
	ssize_t n;
	int err;

	if (!on) {
		if (initlog)
			initlog->hook = NULL;
		ev_start.enabled = ev_finish.enabled = false;
		return 0;
	}
	if (!initlog)
		initlog = find_log();
	if (!initlog) {
		if (why)
			fprintf(why, "options/init-trace: the program was not started with "
				     "libsonde-init.so in LD_AUDIT (sonde ftrace/graph --init does "
				     "that): its constructors were not logged\n");
		return -ENOENT;
	}
	if (!registered) {
		err = sd_trace_add_event(&ev_start);
		if (!err)
			err = sd_trace_add_event(&ev_finish);
		if (err)
			return err;
		registered = true;
	}
	n = readlink("/proc/self/exe", exe_name, sizeof(exe_name) - 1);
	exe_name[n > 0 ? n : 0] = '\0';
	ev_start.enabled = ev_finish.enabled = true;
	if (initlog->hook != hook) {
		write_backlog();
		__atomic_store_n(&initlog->hook, hook, __ATOMIC_RELEASE);
	}
	if (initlog->overflow)
		sd_warn("%u constructors were not logged: more than %d", initlog->overflow,
			SD_INITLOG_MAX);
	return 0;
}

bool sd_initcall_on(void)
{
	return initlog && initlog->hook == hook;
}
