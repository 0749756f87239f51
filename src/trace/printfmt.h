/* SPDX-License-Identifier: MIT */
/*
 * printfmt.h - an event's `format` file as data: its fields parsed from
 * their declarations, and its `print fmt:` line interpreted to render a
 * record. Shared by the agent (the trace files) and the sonde command,
 * which prints records from shared memory with nothing but the format text
 * (the traced process may be gone).
 *
 * The print fmt is what TP_printk() stringified:
 *
 *   "fmt", arg, arg...
 *
 * Supported in the arguments (the kernel's print fmts use these):
 *   REC->field  REC->array[i]  integer, character and string constants,
 *   + - * / % << >> & | ^ ~ ! && || == != < <= > >= ?: ( ), casts to C
 *   integer and pointer types (an unknown type name casts to nothing),
 *   sizeof(type), sizeof(REC->field),
 *   __get_str(f)  __get_dynamic_array(f)  __get_dynamic_array_len(f)
 *   __print_flags(v, "delim", {mask, "name"}...)  (and _u64)
 *   __print_symbolic(v, {value, "name"}...)       (and _u64)
 *   __print_array(array, count, elem_size)  __print_hex(buf, len)
 *   __print_hex_str(buf, len)
 * and in the format: %d %i %u %x %X %o %c %s %p %% with flags, width and
 * precision (also `*`), length modifiers hh h l ll z t j L q, and the
 * kernel's %pS %pB %pF (symbol+offset/size), %ps %pf (symbol), %pK %px.
 *
 * Anything else (a function call, a field or type it does not know) makes
 * sd_printfmt_compile() fail with the column and reason; callers then print
 * the record's fields as name=value (sd_print_fields).
 */
#ifndef SD_TRACE_PRINTFMT_H
#define SD_TRACE_PRINTFMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "trace/event.h"
#include "trace/seq.h"

/*
 * sd_field_parse_decl - fill @f from one field line of a format file: @decl
 * is what sits between "field:" and ';' ("int pid", "char comm[16]",
 * "__data_loc char[] msg"). Name and type are allocated (sd_fields_free).
 * The field's kind (string, char array, number, pointer) and element size
 * follow from the declaration. Returns 0 or -EINVAL / -ENOMEM.
 */
int sd_field_parse_decl(struct sd_field *f, const char *decl, unsigned int offset,
			unsigned int size, bool is_signed);
void sd_fields_free(struct sd_field *fields, unsigned int n);

/* size in bytes of a C type named in a format file ("unsigned long", "u32", "pid_t"), 0 unknown */
unsigned int sd_ctype_size(const char *type);

/*
 * sd_format_parse - a `format` file's text to the event's own fields (the
 * common_* ones are left out) and its print fmt (malloc'd, NULL when the
 * text has none). @fixed_size gets the end of the last fixed field.
 */
int sd_format_parse(const char *text, struct sd_field **fields, unsigned int *nfields,
		    char **print_fmt, uint32_t *fixed_size);

struct sd_printfmt;

/*
 * sd_printfmt_compile - compile @print_fmt against the fields of @ev.
 * Returns 0 and *out, or -EINVAL with @why ("col 12: unknown field 'x'")
 * when the text uses something this interpreter cannot evaluate. *out
 * points into @ev's fields: free it before them.
 */
int sd_printfmt_compile(const char *print_fmt, const struct sd_event *ev, struct sd_printfmt **out,
			char *why, size_t whylen);
void sd_printfmt_free(struct sd_printfmt *pf);

/* the text of one record (what follows "name: "); reads only inside @len */
void sd_printfmt_render(struct sd_seq *s, const struct sd_printfmt *pf, const void *entry,
			uint32_t len, const struct sd_print_ctx *ctx);

/* every field of @ev as name=value, space separated (no usable print fmt) */
void sd_print_fields(struct sd_seq *s, const struct sd_event *ev, const void *entry, uint32_t len);

#endif
