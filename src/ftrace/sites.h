/* SPDX-License-Identifier: MIT */
/* sites.h - the functions of each object and how they are hooked (sites.c). */
#ifndef SD_FTRACE_SITES_H
#define SD_FTRACE_SITES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sonde/kprobes.h>

#include "ftrace/ftrace.h"

enum ft_kind {
	FT_NONE = 0, /* not traced (why says why) */
	FT_NOP,	     /* an entry nop patched into a jump to the function's stub */
	FT_PG,	     /* -pg: calls mcount/__fentry__ itself */
	FT_PROBE,    /* an entry probe */
};

struct ft_func {
	uint64_t addr;
	const char *name;
	char *aliases; /* its other names ("_exit" for _Exit), each NUL-ended, "" last; or NULL */
	uint8_t kind;
	bool on;		 /* hooked now */
	bool resolved;		 /* what an IFUNC resolved to (sym.h): every call runs it */
	uint8_t orig[5];	 /* FT_NOP: the nop bytes */
	uint8_t *stub;		 /* FT_NOP: its stub (ftrace_stub.c), made when first hooked */
	const char *why;	 /* FT_NONE */
	struct sonde_kprobe *kp; /* FT_PROBE, while on */
};

struct ft_obj {
	char *path;
	const char *name;
	uint64_t start, end, bias;
	bool is_main; /* the executable: its functions are listed without [object] */
	int kind;     /* how most of its functions are hooked */
	const char *how;
	const char *why; /* the whole object is not traced */
	struct ft_func *funcs;
	size_t nfuncs, capfuncs;
	char *soname;	/* DT_SONAME, or NULL */
	char *needed;	/* DT_NEEDED names, each NUL-ended, "" last; or NULL */
	bool for_sonde; /* loaded only because sonde needs it (sites.c: classify) */
};

/* the objects of this process, scanned once each (new ones on each call) */
struct ft_obj *sd_ft_objects(size_t *n);
/* the function at @addr among the objects scanned so far (no new scan), or NULL */
struct ft_func *sd_ft_func_at(uint64_t addr);
/*
 * set_ftrace_filter / set_ftrace_notrace applied to one function, by any
 * of its names (a positive entry selects it by one, a '!' one or notrace
 * takes it out by one)
 */
bool sd_ft_selected(const struct sd_ftrace_opts *o, const struct ft_obj *obj,
		    const struct ft_func *f);
/* @list (set_graph_function…) selects @f */
bool sd_ft_in_list(char **list, int n, const struct ft_obj *obj, const struct ft_func *f);
/* one glob, in any of the kernel's forms ("glob", "glob:mod:obj", ":mod:obj") */
bool sd_ft_matches(const char *glob, const struct ft_obj *obj, const struct ft_func *f);

#endif
