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
 * One extension to the kernel's fetch arguments, for USDT operands the
 * kernel's grammar cannot express (src/usdt/usdt.h): inside a dereference,
 * an x86 scaled-index address, +DISP(%base,%index,SCALE) or
 * +DISP(,%index,SCALE) (SCALE 1, 2, 4 or 8), e.g. +8(%ax,%dx,8):u64 reads
 * the u64 at %ax + %dx * 8 + 8. Like every dereference it never faults.
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

#define SD_PROBE_MAX_ARGS   128 /* MAX_TRACE_ARGS */
#define SD_MAXACTIVE_MAX    4096
#define SD_PROBE_STRING_MAX 4096 /* bytes fetched for a string at most */

/*
 * A compiled fetch program: the kernel's staged fetch_insn idea. One load
 * (register, stack, immediate…), then dereferences, one store into the
 * record, an optional bitfield modification, an optional array loop, END.
 * Built by probe_parse.c, run by fetch.c.
 */
enum sd_fetch_op {
	SD_FOP_NOP = 0,
	/* stage 1: load */
	SD_FOP_REG,    /* .param: byte offset of the register in struct sonde_regs */
	SD_FOP_STACK,  /* .param: index of the stack word */
	SD_FOP_STACKP, /* the stack pointer */
	SD_FOP_RETVAL, /* the return value */
	SD_FOP_IMM,    /* .imm */
	SD_FOP_COMM,   /* the thread's name */
	SD_FOP_ARG,    /* .param: function argument (0-based) */
	SD_FOP_FOFFS,  /* .imm: a file offset of the probed object */
	SD_FOP_DATA,   /* .data: an immediate string */
	SD_FOP_EDATA,  /* .offset: a value saved at function entry (return probes) */
	/* stage 2: dereference */
	SD_FOP_DEREF,  /* .offset */
	SD_FOP_UDEREF, /* .offset (user memory: the same thing in user space) */
	/* stage 3: store into the record */
	SD_FOP_ST_RAW,	   /* .param: size */
	SD_FOP_ST_MEM,	   /* .offset, .param: size */
	SD_FOP_ST_UMEM,	   /* .offset, .param: size */
	SD_FOP_ST_STRING,  /* .offset: a NUL-terminated string into dynamic data */
	SD_FOP_ST_USTRING, /* .offset */
	SD_FOP_ST_SYMSTR,  /* .offset: "sym+off/size" of the address into dynamic data */
	/* stage 4: modify */
	SD_FOP_MOD_BF, /* .basesize, .lshift, .rshift */
	/* stage 5: loop */
	SD_FOP_LP_ARRAY, /* .param: element count */
	SD_FOP_END,
	SD_FOP_SYMBOL, /* .data: an unresolved "@SYM[+|-offs]"; the IMM after it gets the address */
	/*
	 * stage 1, sonde extension (USDT operands): base + index * scale, from
	 * +DISP(%base,%index,SCALE) or +DISP(,%index,SCALE). .param: the base
	 * register's byte offset in struct sonde_regs or SD_FETCH_NO_REG,
	 * .imm: the index register's, .basesize: the scale (1, 2, 4, 8).
	 * Always followed by a dereference.
	 */
	SD_FOP_SIB,
};

#define SD_FETCH_NO_REG UINT32_MAX

#define SD_FETCH_INSN_MAX 16 /* as the kernel's FETCH_INSN_MAX: limits the nesting */

struct sd_fetch_insn {
	uint8_t op; /* enum sd_fetch_op */
	uint8_t basesize, lshift, rshift;
	uint32_t param;
	int64_t offset;
	uint64_t imm;
	char *data;
};

struct sd_probe_arg {
	char *name; /* "a", or "arg1"… when not named */
	char *comm; /* the fetch expression as written: "+0(%si)" */
	char *type; /* the type as written without ':' ("u32", "string"), NULL: default */
	/* the record field; field.name is @name, field.c_type is owned by the arg */
	struct sd_field field;
	struct sd_fetch_insn *code; /* ends with SD_FOP_END */
	bool needs_symbol; /* @SYM in the expression: resolve with sd_probe_def_resolve() */
	int pos;	   /* where the argument starts in the command (error positions) */
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

	int loc_pos; /* where the location starts in the command (error positions) */
	/*
	 * kprobe return probes reading $argN: the function arguments (0-based)
	 * to save at entry, one unsigned long each, in this order (see
	 * sd_probe_entry_data_size()).
	 */
	unsigned int *entry_args;
	int nr_entry_args;
};

/* ---- parsing ------------------------------------------------------------------ */

/*
 * sd_probe_parse - parse one kprobe_events (@kind SD_PROBE_KPROBE) or
 * uprobe_events line. Returns 0 and *out; 1 and *remove_group/
 * *remove_event (caller buffers of SD_EVENT_NAME_MAX) for a `-:` line; or a
 * negative errno with @err giving the kernel's message and position
 * (err->words: positions count in the command's words re-joined with
 * single spaces, as the kernel logs them). A line the kernel hands to no
 * parser at all (not p/r/-, a uprobe location without '/' or ':'…) is
 * -EINVAL with err->msg NULL and the reason in sonde_last_error().
 * Default names follow the kernel: group "kprobes"/"uprobes", event
 * "p_<sym>_<offs>", "r_<sym>_<offs>" (decimal offset; ':', '.', '-' made
 * '_'), "p_<basename up to . - or _>_0x<offset>" (return uprobes too),
 * arguments "arg1", "arg2"…
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
int sd_probe_def_resolve(struct sd_probe_def *def, uint64_t (*lookup)(void *arg, const char *sym),
			 void *arg, struct sd_parse_error *err);

/* ---- fetching (signal-safe, no libc) -------------------------------------------- */

struct sd_fetch_ctx {
	const struct sonde_regs *regs; /* at the probe; for return probes, at return */
	const char *comm;	       /* the thread's name ($comm) */
	uint64_t file_base;	       /* uprobes: runtime address of file offset 0 (@+OFFSET) */
	/* return probes: what sd_probe_store_entry_data() saved at entry ($argN), or NULL */
	const void *edata;
	/* symstr: "func+0x10/0x40" for an address; must be signal-safe */
	sd_symbolize_fn sym;
	void *sym_arg;
};

/*
 * A fetch arg that is a register, or a register argument, stored as it is:
 * @size bytes of struct sonde_regs at @from, to the entry at @to.
 */
struct sd_fetch_copy {
	uint16_t from, to;
	uint8_t size;
};

/* the @n copies of @plan from @regs into @entry (probe path: no call) */
static inline void sd_fetch_copy_run(char *entry, const void *regs,
				     const struct sd_fetch_copy *plan, int n)
{
	for (int i = 0; i < n; i++) {
		const char *from = (const char *)regs + plan[i].from;

		/* the register's low bytes (little-endian), at constant sizes */
		if (plan[i].size == 8)
			__builtin_memcpy(entry + plan[i].to, from, 8);
		else if (plan[i].size == 4)
			__builtin_memcpy(entry + plan[i].to, from, 4);
		else if (plan[i].size == 2)
			__builtin_memcpy(entry + plan[i].to, from, 2);
		else
			__builtin_memcpy(entry + plan[i].to, from, 1);
	}
}

/* every fetch arg of @def as such a copy (at most @max): their number, or -1 */
int sd_probe_copy_plan(const struct sd_probe_def *def, struct sd_fetch_copy *plan, int max);
/* bytes of dynamic data (strings…) the arguments need for this hit */
uint32_t sd_probe_dynamic_size(const struct sd_probe_def *def, const struct sd_fetch_ctx *ctx);
/*
 * Fill the entry's argument fields and dynamic data (the common header and
 * the __probe_* fields are the caller's). @entry has fixed_size + @dyn_size
 * bytes. A bad pointer stores the kernel's fault marker, never faults.
 */
void sd_probe_store_args(const struct sd_probe_def *def, const struct sd_fetch_ctx *ctx,
			 void *entry, uint32_t dyn_size);

/*
 * Return probes reading $argN (kprobe_events, as the kernel's kretprobe
 * entry_handler does): the bytes of per-instance data to keep (0: none,
 * no entry handler needed), and, at function entry, saving the arguments
 * into it (signal-safe). The return handler passes it as ctx->edata.
 */
uint32_t sd_probe_entry_data_size(const struct sd_probe_def *def);
void sd_probe_store_entry_data(const struct sd_probe_def *def, const struct sonde_regs *regs,
			       void *edata);

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

/* (probe_print.c, for the parser) build def->print_fmt from the arguments' fields */
int sd_probe_def_set_print_fmt(struct sd_probe_def *def);

#endif
