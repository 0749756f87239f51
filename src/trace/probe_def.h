/* SPDX-License-Identifier: MIT */
/*
 * probe_def.h - dynamic probe event definitions: the kprobe_events and
 * uprobe_events grammar, fetch arguments, and the events' record layout.
 *
 *   p[:[GRP/][EVENT]] [MOD:]SYM[+OFFS]|MEMADDR [FETCHARGS]      kprobe_events
 *   r[MAXACTIVE][:[GRP/][EVENT]] [MOD:]SYM[+0] [FETCHARGS]
 *   p[:[GRP/][EVENT]] PATH:OFFSET[%return][(REF_CTR_OFFSET)] [FETCHARGS]  uprobe_events
 *   r[:[GRP/][EVENT]] PATH:OFFSET[(REF_CTR_OFFSET)] [FETCHARGS]
 *   -:[GRP/]EVENT
 *
 * A definition parses into a struct sd_probe_def: where the probe goes (as
 * text; resolving it is the caller's job), and one struct sd_probe_arg per
 * fetch argument with its field in the record and its compiled fetch
 * program. The layout follows the kernel exactly: common header (8 bytes),
 * then __probe_ip (entry probes) or __probe_func, __probe_ret_ip (return
 * probes), then the arguments packed in order; strings are __data_loc.
 */
#ifndef SD_TRACE_PROBE_DEF_H
#define SD_TRACE_PROBE_DEF_H

#include <stdbool.h>
#include <stdint.h>

#include <sonde/kprobes.h>

#include "trace/errlog.h"
#include "trace/event.h"
#include "trace/seq.h"

enum sd_probe_kind {
	SD_PROBE_KPROBE, /* symbol-based: kprobe_events */
	SD_PROBE_UPROBE, /* file-offset based: uprobe_events */
};

#define SD_PROBE_MAX_ARGS     128 /* MAX_TRACE_ARGS */
#define SD_MAXACTIVE_MAX      4096
#define SD_PROBE_STRING_MAX   4096 /* bytes fetched for a string at most */

struct sd_fetch_insn; /* a compiled fetch program (fetch.c) */

struct sd_probe_arg {
	char *name;  /* "a", or "arg1"… when not named */
	char *comm;  /* the fetch expression as written: "+0(%si)" */
	char *type;  /* the type as written without ':' ("u32", "string"), NULL: default */
	struct sd_field field;
	struct sd_fetch_insn *code;
	bool needs_symbol; /* @SYM in the expression: resolve with sd_probe_def_resolve() */
};

struct sd_probe_def {
	int kind; /* enum sd_probe_kind */
	bool is_return;
	int maxactive; /* r<N>; 0 = default */
	char group[SD_EVENT_NAME_MAX];
	char event[SD_EVENT_NAME_MAX];

	/* kprobe location: MOD:SYM+OFFS, or an address when symbol is NULL */
	char *module;
	char *symbol;
	long offset;
	uint64_t addr;

	/* uprobe location */
	char *path;
	uint64_t file_offset;
	bool has_ref_ctr;
	uint64_t ref_ctr_offset;

	struct sd_probe_arg *args;
	int nargs;
	uint32_t fixed_size; /* bytes of the entry before dynamic data */
	char *print_fmt;     /* the format file's print fmt */
};

/* ---- parsing ------------------------------------------------------------------ */

/*
 * sd_probe_parse - parse one kprobe_events (@kind SD_PROBE_KPROBE) or
 * uprobe_events line. Returns 0 and *out; 1 and *remove_group/
 * *remove_event (caller buffers of SD_EVENT_NAME_MAX) for a `-:` line; or a
 * negative errno with @err giving the kernel's message and position.
 * Default names follow the kernel: group "kprobes"/"uprobes", event
 * "p_<sym>_<offs>", "r_<sym>_<offs>", "p_<basename>_0x<offset>", arguments
 * "arg1", "arg2"…
 */
int sd_probe_parse(const char *cmd, int kind, struct sd_probe_def **out, char *remove_group,
		   char *remove_event, struct sd_parse_error *err);
void sd_probe_def_free(struct sd_probe_def *def);

/* the line the kprobe_events / uprobe_events file reads back for @def */
void sd_probe_def_print(struct sd_seq *s, const struct sd_probe_def *def);

/*
 * Resolve @SYM fetch arguments: @lookup returns the runtime address of a
 * data symbol or 0. Returns 0 or -ENOENT with @err naming the argument.
 */
int sd_probe_def_resolve(struct sd_probe_def *def,
			 uint64_t (*lookup)(void *arg, const char *sym), void *arg,
			 struct sd_parse_error *err);

/* ---- fetching (signal-safe, no libc) -------------------------------------------- */

struct sd_fetch_ctx {
	const struct sonde_regs *regs; /* at the probe; for return probes, at return */
	const char *comm;              /* the thread's name ($comm) */
	uint64_t file_base;            /* uprobes: runtime address of file offset 0 (@+OFFSET) */
	/* symstr: "func+0x10/0x40" for an address; must be signal-safe */
	sd_symbolize_fn sym;
	void *sym_arg;
};

/* bytes of dynamic data (strings…) the arguments need for this hit */
uint32_t sd_probe_dynamic_size(const struct sd_probe_def *def, const struct sd_fetch_ctx *ctx);
/*
 * Fill the entry's argument fields and dynamic data (the common header and
 * the __probe_* fields are the caller's). @entry has fixed_size + @dyn_size
 * bytes. A bad pointer stores the kernel's fault marker, never faults.
 */
void sd_probe_store_args(const struct sd_probe_def *def, const struct sd_fetch_ctx *ctx,
			 void *entry, uint32_t dyn_size);

/* ---- printing ---------------------------------------------------------------------- */

/*
 * The text after "name: " for one record of @def's event, as the kernel
 * prints it: "(do_sys_open+0x0/0xd6) a=3 s=\"x\"" for kprobes,
 * "(0x559fff5db149) arg1=0x0" for uprobes, "(caller+0x7/0x20 <- func)" and
 * "(0x55…17b <- 0x55…149)" for return probes.
 */
void sd_probe_print(struct sd_seq *s, const struct sd_probe_def *def, const void *entry,
		    uint32_t len, const struct sd_print_ctx *ctx);

/* fill @fields/@nfields (allocated; the caller frees names, types and the array) */
int sd_probe_def_fields(const struct sd_probe_def *def, struct sd_field **fields,
			unsigned int *nfields);

#endif
