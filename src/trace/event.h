/* SPDX-License-Identifier: MIT */
/*
 * event.h - trace events: their fields (the `format` file, the stable ABI),
 * and the registry of events of a process.
 *
 * An event's record (the kernel's "entry") starts with the common header
 *
 *   offset 0  unsigned short common_type          the event id
 *   offset 2  unsigned char  common_flags         0 in user space
 *   offset 3  unsigned char  common_preempt_count 0 in user space
 *   offset 4  int            common_pid           the thread id
 *
 * followed by the event's fields at the offsets its format gives, then the
 * dynamic data that __data_loc fields point into (u32 = len << 16 | offset
 * from the entry's start). Fields are packed, without alignment padding,
 * as the kernel's probe events are.
 */
#ifndef SD_TRACE_EVENT_H
#define SD_TRACE_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "trace/seq.h"

#define SD_ENTRY_COMMON_SIZE 8
#define SD_EVENT_NAME_MAX    64 /* as the kernel's MAX_EVENT_NAME_LEN */

/* how a field's value is read, compared and printed */
enum sd_ftype {
	SD_FT_UNSIGNED = 0, /* u8..u64, printed decimal */
	SD_FT_SIGNED,	    /* s8..s64, printed decimal */
	SD_FT_HEX,	    /* x8..x64, printed 0x%x */
	SD_FT_CHAR,	    /* char: printed '%c' */
	SD_FT_STRING,	    /* __data_loc char[]: printed "%s" */
	SD_FT_SYMBOL,	    /* an address printed as sym+off/size */
	SD_FT_CHARARRAY,    /* char name[N] (static string, e.g. comm) */
};

struct sd_field {
	char *name;
	char *c_type;	    /* as the format file shows it: "u64", "__data_loc char[]" */
	uint16_t offset;    /* from the entry's start */
	uint16_t size;	    /* bytes in the fixed part (4 for __data_loc) */
	uint16_t array_len; /* elements of a fixed array, 0 for a scalar */
	uint8_t elem_size;  /* bytes per element (scalars: == size) */
	uint8_t is_signed;
	uint8_t ftype;	 /* enum sd_ftype */
	uint8_t dynamic; /* a __data_loc field */
	uint8_t unsized; /* an array the format declares as name[] (probe events do) */
};

/* a scalar field of a built-in event (the tracers' own) */
#define SD_FIELD(n, t, off, sz, ft)                                                           \
	{                                                                                     \
		.name = (n), .c_type = (t), .offset = (off), .size = (sz), .elem_size = (sz), \
		.is_signed = (ft) == SD_FT_SIGNED, .ftype = (ft)                              \
	}

/* the common fields, as every format file lists them first */
extern const struct sd_field sd_common_fields[4];

/* read a scalar field of @entry as a 64-bit value (sign-extended if signed) */
uint64_t sd_field_value(const struct sd_field *f, const void *entry);
/* a __data_loc field's bytes; *len excludes nothing (strings include their NUL) */
const void *sd_field_dynamic(const struct sd_field *f, const void *entry, uint32_t entry_len,
			     uint32_t *len);

/*
 * Symbols for printing: writes "func+0x1c/0x80" for @addr into @buf;
 * returns the length, or -1 when no symbol contains it.
 */
typedef int (*sd_symbolize_fn)(void *arg, uint64_t addr, char *buf, size_t len);

struct sd_print_ctx {
	sd_symbolize_fn sym;
	void *sym_arg;
};

struct sd_event;

struct sd_render;
struct sd_rb_event;

struct sd_event_ops {
	/* the text after "name: " in trace output, for one record */
	void (*print)(struct sd_seq *s, const struct sd_event *ev, const void *entry, uint32_t len,
		      const struct sd_print_ctx *ctx);
	/*
	 * instead, whole lines (sd_render_context() for their columns): a
	 * record that stands for more than one line; NULL for most events
	 */
	void (*render)(struct sd_seq *s, const struct sd_render *r, const struct sd_rb_event *rec,
		       const struct sd_event *ev);
	/* arm or disarm what fires the event; called under the event lock */
	int (*enable)(struct sd_event *ev, bool on);
	/* what `format` shows after the fields: the "print fmt: ..." line's content */
	void (*free)(struct sd_event *ev);
};

struct sd_filter;

struct sd_event {
	unsigned int id;
	char system[SD_EVENT_NAME_MAX];
	char name[SD_EVENT_NAME_MAX];
	struct sd_field *fields; /* the event's own fields, after the common ones */
	unsigned int nfields;
	uint32_t fixed_size; /* bytes of the entry before dynamic data */
	char *print_fmt;     /* the format file's print fmt, quotes and args */
	const struct sd_event_ops *ops;
	void *priv;

	bool enabled;
	/*
	 * a tracer's own event (ftrace:function…): on while its tracer is, never
	 * enabled by name; events/ shows its format and id only (the kernel's
	 * TRACE_EVENT_FL_IGNORE_ENABLE)
	 */
	bool internal;
	struct sd_filter *filter; /* swapped whole; read by handlers */
	char *filter_text;
	char *filter_error; /* what `filter` reads after a failed write */
	unsigned long nhit; /* profile: times the probe fired */
	unsigned long nmissed;
};

/* the field named @name among the common fields and @ev's own, or NULL */
const struct sd_field *sd_event_field(const struct sd_event *ev, const char *name);

/* the `format` file text */
void sd_event_format(struct sd_seq *s, const struct sd_event *ev);

#endif
