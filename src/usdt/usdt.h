/* SPDX-License-Identifier: MIT */
/*
 * usdt.h - USDT probes (<sys/sdt.h>, DTrace-style static probes): reading
 * them from ELF files and turning them into uprobe_events definitions.
 *
 * A probe is an ELF note in .note.stapsdt: owner "stapsdt", type 3, a
 * descriptor of three addresses (the probe's nop, the address .stapsdt.base
 * had at link time, the semaphore or 0) and three NUL-terminated strings:
 * provider, name, argument specs ("-4@%edi 8@-16(%rbp) 8@(%rax,%rdx,8)").
 * A prelinked file moved its sections after the notes were written; the
 * difference between the real .stapsdt.base and the recorded one is added
 * to the probe and semaphore addresses (as libbpf and systemtap do). The
 * file offsets of the probe and of its semaphore, through the PT_LOAD
 * segment holding each, are what uprobe_events takes:
 *
 *   p:sdt_PROVIDER/NAME PATH:0xPC_OFFSET(0xSEM_OFFSET) arg1=FETCH:TYPE ...
 *
 * (the group and event names the kernel's `perf probe` gives SDT events).
 *
 * Argument specs, x86-64 (AT&T operands, [-]SIZE@OPERAND, '-' = signed):
 *
 *   -4@%edi            register, any width     %di:s32
 *   1@%ah              high byte register      %ax:b8@8/16   (unsigned only)
 *   8@-16(%rbp)        base + displacement     -16(%bp):u64
 *   8@(%rsp)           base                    +0(%sp):u64
 *   8@8(%rax,%rdx,8)   base + index*scale      +8(%ax,%dx,8):u64   (sonde extension)
 *   8@(,%rdx,8)        index*scale             +0(,%dx,8):u64      (sonde extension)
 *   -4@sym+4(%rip)     rip-relative data       @+0xOFF:s32 (OFF: see below)
 *   -4@$-7             constant                \-7:s32
 *
 * %rip-relative operands name data of the same object: the note is a string,
 * never an instruction, so `sym(%rip)` means "at sym" (looked up in the
 * file's .symtab/.dynsym) and `DISP(%rip)` means "DISP bytes from the probe"
 * (as libbpf reads it). Either is written as uprobe_events' @+OFFSET, whose
 * address is, as the kernel computes it, probe address - probe file offset
 * + OFFSET; so OFF = data vaddr - (probe vaddr - probe file offset), which
 * is the data's file offset when both lie in segments loaded with the same
 * delta, and the right address in every case (the kernel reads the line
 * the same way).
 *
 * Nothing here runs in a signal handler.
 */
#ifndef SD_USDT_H
#define SD_USDT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SD_USDT_MAX_ARGS 12 /* sdt.h's STAP_PROBE12 */

struct sd_usdt_probe {
	const char *provider;
	const char *name;
	const char *args; /* the argument specs, "" when none */
	/* as recorded in the note (what readelf --notes shows) */
	uint64_t note_pc, note_base, note_sem;
	/* link-time addresses after the prelink adjustment */
	uint64_t pc, sem; /* sem 0: no semaphore */
	/* file offsets (uprobe_events' OFFSET and REF_CTR_OFFSET) */
	uint64_t pc_offset, sem_offset;
	bool pc_mapped;	 /* pc lies in an executable PT_LOAD segment (pc_offset valid) */
	bool sem_mapped; /* sem lies in a file-backed PT_LOAD segment (sem_offset valid) */
};

struct sd_usdt_file;

/*
 * sd_usdt_open - read every stapsdt note of the ELF file at @path, in file
 * order. A file without notes is not an error (0 probes). Errors say what
 * is wrong in sonde_last_error(): not an ELF file, a malformed note (its
 * index and why).
 */
int sd_usdt_open(const char *path, struct sd_usdt_file **out);
void sd_usdt_free(struct sd_usdt_file *f);

const char *sd_usdt_path(const struct sd_usdt_file *f);
size_t sd_usdt_count(const struct sd_usdt_file *f);
const struct sd_usdt_probe *sd_usdt_at(const struct sd_usdt_file *f, size_t i);

/* ---- argument specs ---------------------------------------------------------------- */

enum sd_usdt_arg_kind {
	SD_USDT_ARG_CONST, /* $N */
	SD_USDT_ARG_REG,   /* %reg */
	SD_USDT_ARG_MEM,   /* [DISP](%base[,%index[,SCALE]]) */
	SD_USDT_ARG_RIP,   /* [sym][+-DISP](%rip) */
	SD_USDT_ARG_ABS,   /* sym[+-DISP] or an absolute address (no register) */
};

struct sd_usdt_arg {
	int kind;	/* enum sd_usdt_arg_kind */
	int size;	/* 1, 2, 4 or 8 bytes */
	bool is_signed; /* the spec's '-' */
	/* registers by their uprobe_events name: "di", "r8"; "" when absent */
	char reg[8];   /* REG: the register read; MEM: the base */
	char index[8]; /* MEM: the index register */
	int scale;     /* MEM: 1, 2, 4, 8 (index only) */
	int reg_shift; /* REG: 8 for %ah %bh %ch %dh */
	int64_t disp;  /* MEM, RIP, ABS: the number part of the displacement; CONST: the value */
	char sym[128]; /* RIP, ABS, CONST ($sym): a symbol, "" for none */
	int argno;     /* the argument's number (1-based) */
	int col;       /* where the spec starts in the argument string (1-based) */
	int len;       /* its length */
};

/*
 * sd_usdt_parse_args - parse @p's argument string (x86-64). Returns the
 * number of arguments (filled into @out, at most @max), or a negative errno
 * with sonde_last_error() naming the probe, the argument, its column and
 * what is wrong: "python:line: argument 2 '8@%rxx', column 9: unknown
 * register %rxx".
 */
int sd_usdt_parse_args(const struct sd_usdt_probe *p, struct sd_usdt_arg *out, int max);

/*
 * sd_usdt_arg_fetch - the uprobe_events fetch expression and default type of
 * one argument of a probe of @f ("%di" and "s32"). @expr gets the value
 * expression, @type the type without ':'. 0, or -errno explained.
 */
int sd_usdt_arg_fetch(struct sd_usdt_file *f, const struct sd_usdt_probe *p,
		      const struct sd_usdt_arg *a, char *expr, size_t elen, char *type,
		      size_t tlen);

/*
 * sd_usdt_probe_def - the uprobe_events line for probe @p of @f, as event
 * GROUP/EVENT (NULL: sdt_PROVIDER/NAME), through @path (NULL: the file's
 * path; a caller may name the same file by the path a process maps it by).
 *
 * @user_args NULL or "": every argument as argN=FETCH:TYPE. Otherwise the
 * words of @user_args are the fetch arguments, each [NAME=]EXPR[:TYPE] of
 * the uprobe_events grammar in which argN stands for the probe's N'th
 * argument: "argN" alone keeps its default type and name; "argN:string"
 * (ustring, and arrays "argN:u8[16]") reads what argN points to;
 * "argN:TYPE" converts the value; argN inside a larger expression
 * ("+8(arg2):string") is replaced by its value's fetch expression.
 * Returns 0 and *line (malloc'd), or -errno explained.
 */
int sd_usdt_probe_def(struct sd_usdt_file *f, const struct sd_usdt_probe *p, const char *group,
		      const char *event, const char *path, const char *user_args, char **line);

/* ---- trace specs: usdt:[PATH:]PROVIDER:NAME [ARGS] ------------------------------------- */

/* true when @spec is a USDT trace spec ("usdt:…" or "u:…") */
bool sd_usdt_is_spec(const char *spec);

/*
 * sd_usdt_expand - the uprobe_events lines of a trace spec
 *
 *   usdt:[PATH:]PROVIDER:NAME [ARG...]     (u: for short)
 *
 * for process @pid: PATH (a file, or an object of the process by name as
 * sd_maps_find_module takes it: "libstdc++") or, without PATH, every ELF
 * object the process has mapped (the executable first, then its libraries
 * in load order; sonde's own library is skipped). PROVIDER and NAME may be
 * shell globs. Every matching probe site becomes one line; events are named
 * sdt_PROVIDER/NAME, and NAME_1, NAME_2… for further sites of one name
 * (as perf probe names them). ARGs as sd_usdt_probe_def's @user_args.
 * Returns the number of lines (> 0) in *lines (malloc'd array of malloc'd
 * strings, free with sd_usdt_lines_free), or -errno explained.
 */
int sd_usdt_expand(const char *spec, pid_t pid, char ***lines);
void sd_usdt_lines_free(char **lines, int n);

#endif
