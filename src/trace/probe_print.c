// SPDX-License-Identifier: MIT
/*
 * probe_print.c - probe events as text: the *_events readback line, the
 * format file's fields and print fmt, and one record as the `trace` file
 * shows it (kernel/trace/trace_probe.c __set_print_fmt and
 * trace_probe_print_args, trace_kprobe.c / trace_uprobe.c show and print).
 *
 *   p:kprobes/ev vfs_read+16 a=%di:u32           kprobe readback (decimal offset)
 *   p:uprobes/ev /bin/x:0x0000000000001149 a=%di  uprobe readback
 *   "(%lx) a=%u", REC->__probe_ip, REC->a         print fmt
 *   (vfs_read+0x10/0x40) a=3                      a kprobe record
 *   (0x55d4c0a1b149) a=3                          a uprobe record
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trace/probe_def.h"

#define FAULT_STRING "(fault)"

/* the printf format of one element, as the kernel's fetch types carry it */
static const char *type_fmt(const struct sd_field *f)
{
	bool wide = f->elem_size == 8;

	switch (f->ftype) {
	case SD_FT_SIGNED:
		return wide ? "%Ld" : "%d";
	case SD_FT_HEX:
		return wide ? "0x%Lx" : "0x%x";
	case SD_FT_CHAR:
		return "'%c'";
	case SD_FT_STRING:
		return "\\\"%s\\\"";
	case SD_FT_SYMBOL:
		return "%pS";
	default:
		return wide ? "%Lu" : "%u";
	}
}

int sd_probe_def_set_print_fmt(struct sd_probe_def *def)
{
	char *buf = NULL;
	size_t cap = 0;
	FILE *f = open_memstream(&buf, &cap);

	if (!f)
		return -ENOMEM;
	fprintf(f, "\"%s", def->is_return ? "(%lx <- %lx)" : "(%lx)");
	for (int i = 0; i < def->nargs; i++) {
		const struct sd_field *fl = &def->args[i].field;
		const char *fmt = type_fmt(fl);

		fprintf(f, " %s=", def->args[i].name);
		if (fl->array_len) {
			fprintf(f, "{%s", fmt);
			for (int j = 1; j < fl->array_len; j++)
				fprintf(f, ",%s", fmt);
			fputc('}', f);
		} else {
			fputs(fmt, f);
		}
	}
	fprintf(f, "\"%s",
		def->is_return ? ", REC->__probe_func, REC->__probe_ret_ip" : ", REC->__probe_ip");
	for (int i = 0; i < def->nargs; i++) {
		const struct sd_field *fl = &def->args[i].field;
		const char *name = def->args[i].name;
		bool str = fl->ftype == SD_FT_STRING;

		if (fl->array_len) {
			for (int j = 0; j < fl->array_len; j++)
				fprintf(f, str ? ", __get_str(%s[%d])" : ", REC->%s[%d]", name, j);
		} else {
			fprintf(f, str ? ", __get_str(%s)" : ", REC->%s", name);
		}
	}
	if (fclose(f) || !buf) {
		free(buf);
		return -ENOMEM;
	}
	free(def->print_fmt);
	def->print_fmt = buf;
	return 0;
}

void sd_probe_def_print(struct sd_seq *s, const struct sd_probe_def *def)
{
	char c = def->is_return ? 'r' : 'p';

	if (def->kind == SD_PROBE_UPROBE) {
		sd_seq_printf(s, "%c:%s/%s %s:0x%016" PRIx64, c, def->group, def->event, def->path,
			      def->file_offset);
		if (def->ref_ctr_offset)
			sd_seq_printf(s, "(0x%" PRIx64 ")", def->ref_ctr_offset);
	} else {
		sd_seq_putc(s, c);
		if (def->is_return && def->maxactive)
			sd_seq_printf(s, "%d", def->maxactive);
		sd_seq_printf(s, ":%s/%s", def->group, def->event);
		if (!def->symbol)
			sd_seq_printf(s, " 0x%016" PRIx64, def->addr);
		else
			sd_seq_printf(s, " %s%s%s", def->module ? def->module : "",
				      def->module ? ":" : "", def->symbol);
		if (def->symbol && def->offset)
			sd_seq_printf(s, "+%u", (unsigned int)def->offset);
	}
	for (int i = 0; i < def->nargs; i++)
		sd_seq_printf(s, " %s=%s", def->args[i].name, def->args[i].comm);
}

int sd_probe_def_fields(const struct sd_probe_def *def, struct sd_field **fields,
			unsigned int *nfields)
{
	unsigned int nhead = def->is_return ? 2 : 1, n = nhead + (unsigned int)def->nargs;
	struct sd_field *f = calloc(n, sizeof(*f));
	static const char *const heads[2][2] = {{"__probe_ip", NULL},
						{"__probe_func", "__probe_ret_ip"}};

	if (!f)
		return -ENOMEM;
	for (unsigned int i = 0; i < n; i++) {
		if (i < nhead) {
			f[i].name = strdup(heads[def->is_return][i]);
			f[i].c_type = strdup("unsigned long");
			f[i].offset = (uint16_t)(SD_ENTRY_COMMON_SIZE + 8 * i);
			f[i].size = f[i].elem_size = 8;
			f[i].ftype = SD_FT_HEX;
		} else {
			const struct sd_field *a = &def->args[i - nhead].field;

			f[i] = *a;
			f[i].name = strdup(a->name);
			f[i].c_type = strdup(a->c_type);
		}
		if (!f[i].name || !f[i].c_type) {
			for (unsigned int j = 0; j <= i; j++) {
				free(f[j].name);
				free(f[j].c_type);
			}
			free(f);
			return -ENOMEM;
		}
	}
	*fields = f;
	*nfields = n;
	return 0;
}

/* ---- one record ------------------------------------------------------------------------ */

static uint64_t load_u64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

/* seq_print_ip_sym: "func+0x10/0x40" (with_offset) or "func"; unknown: hex */
static void print_sym(struct sd_seq *s, uint64_t addr, bool with_offset,
		      const struct sd_print_ctx *ctx)
{
	char buf[512];
	int n = -1;

	if (ctx && ctx->sym && addr)
		n = ctx->sym(ctx->sym_arg, addr, buf, sizeof(buf));
	if (n > 0) {
		if (!with_offset) {
			char *plus = strchr(buf, '+');

			if (plus)
				*plus = '\0';
		}
		sd_seq_puts(s, buf);
	} else if (with_offset) {
		sd_seq_printf(s, "0x%" PRIx64, addr);
	} else {
		sd_seq_printf(s, "0x%08" PRIx64, addr);
	}
}

static void print_string(struct sd_seq *s, const uint8_t *entry, uint32_t len, const uint8_t *p)
{
	uint32_t loc, off, n;
	const char *str;

	memcpy(&loc, p, 4);
	n = loc >> 16;
	off = loc & 0xffff;
	if (!n) {
		sd_seq_puts(s, FAULT_STRING);
		return;
	}
	if (off >= len) {
		sd_seq_puts(s, "\"\"");
		return;
	}
	if (n > len - off)
		n = len - off;
	str = (const char *)entry + off;
	sd_seq_putc(s, '"');
	sd_seq_putmem(s, str, strnlen(str, n));
	sd_seq_putc(s, '"');
}

static void print_elem(struct sd_seq *s, const struct sd_field *f, const uint8_t *entry,
		       uint32_t len, const uint8_t *p, const struct sd_print_ctx *ctx)
{
	uint64_t v = 0;

	if (f->ftype == SD_FT_STRING) {
		print_string(s, entry, len, p);
		return;
	}
	memcpy(&v, p, f->elem_size);
	switch (f->ftype) {
	case SD_FT_SIGNED:
		switch (f->elem_size) {
		case 1:
			sd_seq_printf(s, "%d", (int8_t)v);
			break;
		case 2:
			sd_seq_printf(s, "%d", (int16_t)v);
			break;
		case 4:
			sd_seq_printf(s, "%d", (int32_t)v);
			break;
		default:
			sd_seq_printf(s, "%" PRId64, (int64_t)v);
			break;
		}
		break;
	case SD_FT_HEX:
		sd_seq_printf(s, "0x%" PRIx64, v);
		break;
	case SD_FT_CHAR: {
		char c = (char)v;

		sd_seq_putc(s, '\'');
		sd_seq_putmem(s, &c, 1);
		sd_seq_putc(s, '\'');
		break;
	}
	case SD_FT_SYMBOL:
		print_sym(s, v, true, ctx);
		break;
	default:
		sd_seq_printf(s, "%" PRIu64, v);
		break;
	}
}

void sd_probe_print(struct sd_seq *s, const struct sd_probe_def *def, const void *entry,
		    uint32_t len, const struct sd_print_ctx *ctx)
{
	const uint8_t *e = entry;
	uint64_t a0, a1 = 0;

	if (len < def->fixed_size) {
		sd_seq_puts(s, "(truncated record)");
		return;
	}
	a0 = load_u64(e + SD_ENTRY_COMMON_SIZE);
	if (def->is_return)
		a1 = load_u64(e + SD_ENTRY_COMMON_SIZE + 8);
	if (def->kind == SD_PROBE_UPROBE) {
		if (def->is_return)
			sd_seq_printf(s, "(0x%" PRIx64 " <- 0x%" PRIx64 ")", a1, a0);
		else
			sd_seq_printf(s, "(0x%" PRIx64 ")", a0);
	} else {
		sd_seq_putc(s, '(');
		if (def->is_return) {
			/* (caller+0x7/0x20 <- func): the return address, then the function */
			if (a1)
				print_sym(s, a1, true, ctx);
			else
				sd_seq_putc(s, '0');
			sd_seq_puts(s, " <- ");
			if (a0)
				print_sym(s, a0, false, ctx);
			else
				sd_seq_putc(s, '0');
		} else if (a0) {
			print_sym(s, a0, true, ctx);
		} else {
			sd_seq_putc(s, '0');
		}
		sd_seq_putc(s, ')');
	}
	for (int i = 0; i < def->nargs; i++) {
		const struct sd_field *f = &def->args[i].field;
		const uint8_t *p = e + f->offset;

		sd_seq_printf(s, " %s=", def->args[i].name);
		if (!f->array_len) {
			print_elem(s, f, e, len, p, ctx);
			continue;
		}
		sd_seq_putc(s, '{');
		for (int j = 0; j < f->array_len; j++) {
			print_elem(s, f, e, len, p, ctx);
			sd_seq_putc(s, j == f->array_len - 1 ? '}' : ',');
			p += f->elem_size;
		}
	}
}
