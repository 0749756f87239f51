// SPDX-License-Identifier: MIT
/*
 * bench_patch.c - how many function sites per second the function tracers
 * patch when tracing starts, and restore when it stops.
 *
 * The program links libsonde statically (so it is itself never traced) and
 * drives its own virtual tracefs as tests/unit/test_ftrace.c does, with
 * sd_tracefs_write()/sd_tracefs_read(): for each set of functions,
 *   set_ftrace_filter  = ':mod:OBJECT'
 *   current_tracer     = function_graph    timed from here ...
 *   sonde_wait_kprobe_optimizer()          ... to here: "enable" (every site
 *                                          in its final form: entry probes
 *                                          jumps where they can be, nop sites
 *                                          calls; the write alone: write_ms=)
 *   ftrace_sites                           how many sites were hooked, how
 *   current_tracer     = nop               timed: "disable" (every byte back)
 * on three objects:
 *   libc      libc.so.6: entry probes on its ~2200 function symbols
 *   gen_pfe   libbench_gen_pfe.so: BENCH_GEN_N generated functions built with
 *             -fpatchable-function-entry=5 (nop sites, patched into calls)
 *   gen_plain libbench_gen_plain.so: the same functions built plain -O2
 *             (entry probes on the symbol table)
 * R rounds each; the first round of each object is printed apart as cold
 * (the object's symbol table and sites are read then). --only=NAME: one
 * object. One metric line per object and phase:
 *   metric=patch_libc_enable kind=patch status=ok sites=2200 ms=… min=…
 *     max=… sites_per_s=… runs=R cold_ms=… how="…" desc="…"
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sonde/kprobes.h>

#include "bench_util.h"
#include "control/tracefs.h"

int bgp_f1(int x);
int bgn_f1(int x);

struct object {
	const char *name;   /* metric name part */
	const char *filter; /* set_ftrace_filter */
	const char *sites;  /* its line in ftrace_sites starts with this */
	const char *desc;
};

static const struct object objects[] = {
    {"libc", ":mod:libc", "libc.so.6:", "libc.so.6, entry probes on its function symbols"},
    {"gen_pfe", ":mod:libbench_gen_pfe",
     "libbench_gen_pfe.so:", "generated library, -fpatchable-function-entry=5 (nop sites)"},
    {"gen_plain", ":mod:libbench_gen_plain",
     "libbench_gen_plain.so:", "the same generated library built plain -O2 (entry probes)"},
};

#define NOBJECTS (int)(sizeof(objects) / sizeof(objects[0]))

enum { PH_ENABLE, PH_DISABLE, NPHASES };

static const char *const phase_name[NPHASES] = {"enable", "disable"};
static const char *const phase_desc[NPHASES] = {
    "current_tracer nop -> function_graph, until every site has its final form",
    "current_tracer function_graph -> nop, every byte back",
};

static int echo(const char *file, const char *text, char *err, size_t len)
{
	char *why = NULL;
	size_t wl = 0;
	FILE *w = open_memstream(&why, &wl);
	int ret = sd_tracefs_write(file, text, strlen(text), true, w);

	if (w)
		fclose(w);
	if (ret)
		snprintf(err, len, "echo '%s' > %s: %s%s%s", text, file, strerror(-ret),
			 why && *why ? ": " : "", why ? why : "");
	free(why);
	return ret;
}

static char *cat(const char *file)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	if (sd_tracefs_read(file, f)) {
		fclose(f);
		free(buf);
		return NULL;
	}
	fclose(f);
	return buf;
}

/* the object's line of ftrace_sites: "OBJ: HOW: N functions, T traced (…)" */
static int sites_line(const struct object *o, char *line, size_t len)
{
	char *all = cat("ftrace_sites"), *p, *end;

	if (!all)
		return -EIO;
	p = strstr(all, o->sites);
	if (!p) {
		free(all);
		return -ENOENT;
	}
	end = strchr(p, '\n');
	snprintf(line, len, "%.*s", end ? (int)(end - p) : (int)strlen(p), p);
	free(all);
	return 0;
}

static long traced_count(const char *line)
{
	const char *p = strstr(line, " traced");

	if (!p)
		return -1;
	while (p > line && p[-1] >= '0' && p[-1] <= '9')
		p--;
	return atol(p);
}

static void unquote(char *s)
{
	for (; *s; s++)
		if (*s == '"')
			*s = '\'';
}

static void fail(const struct object *o, const char *err)
{
	char e[1024];

	snprintf(e, sizeof(e), "%s", err);
	unquote(e);
	for (int ph = 0; ph < NPHASES; ph++)
		printf("metric=patch_%s_%s kind=patch status=failed error=\"%s\" desc=\"%s: %s\"\n",
		       o->name, phase_name[ph], e, o->desc, phase_desc[ph]);
}

static void bench_object(const struct object *o, int runs)
{
	double t[NPHASES][64], cold[NPHASES] = {0}, write[64];
	char err[1024] = "", line[512] = "", how[512] = "", scratch[1024];
	long sites = -1;

	for (int r = 0; r <= runs; r++) {
		double t0, t1, t2, t3, t4;
		long n;

		if (echo("current_tracer", "nop", err, sizeof(err)) ||
		    echo("set_ftrace_filter", o->filter, err, sizeof(err)))
			break;
		t0 = now_ns() / 1e6;
		if (echo("current_tracer", "function_graph", err, sizeof(err)))
			break;
		t1 = now_ns() / 1e6;
		sonde_wait_kprobe_optimizer();
		t2 = now_ns() / 1e6;
		if (sites_line(o, line, sizeof(line))) {
			snprintf(err, sizeof(err), "no '%s' line in ftrace_sites", o->sites);
			break;
		}
		n = traced_count(line);
		if (n <= 0) {
			snprintf(err, sizeof(err), "nothing traced: %s", line);
			break;
		}
		if (sites >= 0 && n != sites) {
			snprintf(err, sizeof(err), "round %d traced %ld sites, round 1 %ld", r, n,
				 sites);
			break;
		}
		sites = n;
		snprintf(how, sizeof(how), "%s", line);
		t3 = now_ns() / 1e6;
		if (echo("current_tracer", "nop", err, sizeof(err)))
			break;
		t4 = now_ns() / 1e6;
		if (r == 0) {
			cold[PH_ENABLE] = t2 - t0;
			cold[PH_DISABLE] = t4 - t3;
		} else {
			t[PH_ENABLE][r - 1] = t2 - t0;
			t[PH_DISABLE][r - 1] = t4 - t3;
			write[r - 1] = t1 - t0;
		}
	}
	echo("current_tracer", "nop", scratch, sizeof(scratch));
	echo("set_ftrace_filter", "", scratch, sizeof(scratch));
	if (*err) {
		fail(o, err);
		return;
	}
	unquote(how);
	qsort(write, (size_t)runs, sizeof(double), cmp_double);
	for (int ph = 0; ph < NPHASES; ph++) {
		double med;

		qsort(t[ph], (size_t)runs, sizeof(double), cmp_double);
		med = runs % 2 ? t[ph][runs / 2] : (t[ph][runs / 2 - 1] + t[ph][runs / 2]) / 2;
		printf(
		    "metric=patch_%s_%s kind=patch status=ok sites=%ld ms=%.3f min=%.3f max=%.3f "
		    "sites_per_s=%.0f runs=%d cold_ms=%.3f",
		    o->name, phase_name[ph], sites, med, t[ph][0], t[ph][runs - 1],
		    med > 0 ? (double)sites / (med / 1e3) : 0.0, runs, cold[ph]);
		if (ph == PH_ENABLE) /* the write alone: the optimizer's share is the rest */
			printf(" write_ms=%.3f", runs % 2
						     ? write[runs / 2]
						     : (write[runs / 2 - 1] + write[runs / 2]) / 2);
		printf(" how=\"%s\" desc=\"%s: %s\"\n", how, o->desc, phase_desc[ph]);
	}
	fflush(stdout);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"quick", no_argument, NULL, 'q'},
	    {"runs", required_argument, NULL, 'r'},
	    {"only", required_argument, NULL, 'o'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *only = NULL;
	int runs = 0, c;
	bool quick = false;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'q':
			quick = true;
			break;
		case 'r':
			runs = atoi(optarg);
			break;
		case 'o':
			only = optarg;
			break;
		case 'h':
			printf("usage: bench_patch [--quick] [--runs=R] "
			       "[--only=libc|gen_pfe|gen_plain]\n");
			return 0;
		default:
			fprintf(stderr, "usage: bench_patch [--quick] [--runs=R] "
					"[--only=libc|gen_pfe|gen_plain]\n");
			return 2;
		}
	}
	if (runs <= 0)
		runs = quick ? 1 : 7;
	if (runs > 64)
		runs = 64;
	/* the generated libraries are linked in: keep them loaded */
	if (bgp_f1(1) != (1 ^ 1) + (1 >> 2) || bgn_f1(1) != (1 ^ 1) + (1 >> 2)) {
		fprintf(stderr, "bench_patch: the generated libraries compute wrong results\n");
		return 1;
	}
	printf("# bench_patch: %d rounds per object (and a first, cold one)\n", runs);
	for (int i = 0; i < NOBJECTS; i++)
		if (!only || !strcmp(only, objects[i].name))
			bench_object(&objects[i], runs);
	return 0;
}
