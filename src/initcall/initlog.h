/* SPDX-License-Identifier: MIT */
/*
 * initlog.h - what the start-up tracer's audit module (audit.c, built as
 * libsonde-init.so and loaded through LD_AUDIT) tells the agent.
 *
 * The dynamic loader runs the constructors of the program's libraries
 * before libsonde's own: only an audit module is there early enough. It
 * swaps every .preinit_array, DT_INIT and .init_array entry for a stub
 * that logs when the constructor starts and ends, then calls it. The
 * agent finds the log by its symbol (sonde_initlog, in libsonde-init.so's
 * symbol table: the audit module lives in its own link namespace, out of
 * dlsym's reach), turns what already ran into events, and sets the hook
 * through which the rest arrive as they run.
 */
#ifndef SD_INITCALL_INITLOG_H
#define SD_INITCALL_INITLOG_H

#include <stdint.h>

#define SD_INITLOG_MAGIC   0x696e696564686f73ULL /* "sondeini", little-endian */
#define SD_INITLOG_VERSION 1
#define SD_INITLOG_MAX	   4096

enum sd_init_kind {
	SD_INIT_PREINIT_ARRAY = 1, /* the executable's .preinit_array */
	SD_INIT_DT_INIT,	   /* DT_INIT (_init) */
	SD_INIT_ARRAY,		   /* .init_array */
};

enum sd_init_state {
	SD_INIT_PENDING = 0,
	SD_INIT_RUNNING,
	SD_INIT_DONE,
};

struct sd_initrec {
	uint64_t func;	      /* the constructor (offset 0: the stubs read it there) */
	uint64_t obj_base;    /* its object's load bias */
	const char *obj;      /* its object's path ("" for the executable) */
	uint32_t kind;	      /* enum sd_init_kind */
	uint32_t index;	      /* its place in its array */
	uint32_t state;	      /* enum sd_init_state */
	uint32_t not_program; /* its object is there for sonde only (libsonde, its libraries) */
	uint32_t seq_start, seq_end;   /* order of starts and ends, from 1 */
	uint64_t tsc_start, tsc_end;   /* the TSC */
	uint64_t mono_start, mono_end; /* CLOCK_MONOTONIC, ns */
};

struct sd_initlog {
	uint64_t magic;
	uint32_t version;
	uint32_t n;	   /* records in use */
	uint32_t seq;	   /* the last seq_start/seq_end given */
	uint32_t overflow; /* constructors not logged: the table was full */
	/* called at each start (end = 0) and end (end = 1) once set; the agent's */
	void (*volatile hook)(struct sd_initrec *r, int end);
	struct sd_initrec rec[SD_INITLOG_MAX];
};

#endif
