// SPDX-License-Identifier: MIT
/* event.c - fields of trace events and their `format` text. */
#include <string.h>

#include "trace/event.h"

const struct sd_field sd_common_fields[4] = {
    {.name = "common_type", .c_type = "unsigned short", .offset = 0, .size = 2, .elem_size = 2},
    {.name = "common_flags", .c_type = "unsigned char", .offset = 2, .size = 1, .elem_size = 1},
    {.name = "common_preempt_count",
     .c_type = "unsigned char",
     .offset = 3,
     .size = 1,
     .elem_size = 1},
    {.name = "common_pid",
     .c_type = "int",
     .offset = 4,
     .size = 4,
     .elem_size = 4,
     .is_signed = 1,
     .ftype = SD_FT_SIGNED},
};

uint64_t sd_field_value(const struct sd_field *f, const void *entry)
{
	const unsigned char *p = (const unsigned char *)entry + f->offset;

	switch (f->elem_size) {
	case 1: {
		uint8_t v;

		memcpy(&v, p, 1);
		return f->is_signed ? (uint64_t)(int64_t)(int8_t)v : v;
	}
	case 2: {
		uint16_t v;

		memcpy(&v, p, 2);
		return f->is_signed ? (uint64_t)(int64_t)(int16_t)v : v;
	}
	case 4: {
		uint32_t v;

		memcpy(&v, p, 4);
		return f->is_signed ? (uint64_t)(int64_t)(int32_t)v : v;
	}
	default: {
		uint64_t v;

		memcpy(&v, p, 8);
		return v;
	}
	}
}

const void *sd_field_dynamic(const struct sd_field *f, const void *entry, uint32_t entry_len,
			     uint32_t *len)
{
	uint32_t loc, off, n;

	memcpy(&loc, (const char *)entry + f->offset, 4);
	off = loc & 0xffff;
	n = loc >> 16;
	if (off > entry_len || n > entry_len - off) {
		*len = 0;
		return NULL;
	}
	*len = n;
	return (const char *)entry + off;
}

const struct sd_field *sd_event_field(const struct sd_event *ev, const char *name)
{
	for (size_t i = 0; i < sizeof(sd_common_fields) / sizeof(sd_common_fields[0]); i++)
		if (!strcmp(sd_common_fields[i].name, name))
			return &sd_common_fields[i];
	for (unsigned int i = 0; i < ev->nfields; i++)
		if (!strcmp(ev->fields[i].name, name))
			return &ev->fields[i];
	return NULL;
}

static void format_field(struct sd_seq *s, const struct sd_field *f)
{
	if (f->dynamic)
		sd_seq_printf(s, "\tfield:%s %s;", f->c_type, f->name);
	else if (f->array_len && f->unsized)
		sd_seq_printf(s, "\tfield:%s %s[];", f->c_type, f->name);
	else if (f->array_len)
		sd_seq_printf(s, "\tfield:%s %s[%u];", f->c_type, f->name, f->array_len);
	else
		sd_seq_printf(s, "\tfield:%s %s;", f->c_type, f->name);
	sd_seq_printf(s, "\toffset:%u;\tsize:%u;\tsigned:%u;\n", f->offset, f->size, f->is_signed);
}

void sd_event_format(struct sd_seq *s, const struct sd_event *ev)
{
	sd_seq_printf(s, "name: %s\nID: %u\nformat:\n", ev->name, ev->id);
	for (size_t i = 0; i < sizeof(sd_common_fields) / sizeof(sd_common_fields[0]); i++)
		format_field(s, &sd_common_fields[i]);
	sd_seq_putc(s, '\n');
	for (unsigned int i = 0; i < ev->nfields; i++)
		format_field(s, &ev->fields[i]);
	sd_seq_printf(s, "\nprint fmt: %s\n", ev->print_fmt ? ev->print_fmt : "\"\"");
}
