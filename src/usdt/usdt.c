// SPDX-License-Identifier: MIT
/*
 * usdt.c - USDT probes: the stapsdt notes of an ELF file, their argument
 * specs, and the uprobe_events lines that trace them (see usdt.h).
 *
 * Three layers, each usable alone:
 *  - notes:  sd_usdt_open() reads .note.stapsdt with libelf, applies the
 *            prelink adjustment and finds the file offsets;
 *  - specs:  sd_usdt_parse_args() parses "[-]SIZE@OPERAND" words of the
 *            x86-64 AT&T operand syntax into struct sd_usdt_arg;
 *  - lines:  sd_usdt_arg_fetch() and sd_usdt_probe_def() write them in the
 *            uprobe_events grammar (plus its one scaled-index extension),
 *            sd_usdt_expand() does so for a "usdt:[PATH:]PROVIDER:NAME"
 *            trace spec against the objects a process has mapped.
 */
#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <gelf.h>
#include <inttypes.h>
#include <libelf.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SD_LOG_PREFIX "usdt"
#include "common/compiler.h"
#include "common/log.h"
#include "sym/elf_file.h"
#include "sym/sym.h"
#include "trace/event.h"
#include "usdt/usdt.h"

#define NOTE_OWNER   "stapsdt"
#define NOTE_TYPE    3
#define NOTE_SECTION ".note.stapsdt"
#define BASE_SECTION ".stapsdt.base"

#define MAX_ARGSTR_LEN 63 /* the longest fetch argument body uprobe_events takes */

struct sd_usdt_file {
	char *path;
	int machine; /* e_machine */
	bool pie;    /* ET_DYN */
	struct sd_elf_seg *segs;
	size_t nsegs;
	struct sd_usdt_probe *probes;
	size_t n, cap;
	struct sd_symtab *symtab; /* for symbol operands, read on first use */
	char *symtab_err;
};

/* ---- notes ------------------------------------------------------------------------------ */

static uint64_t get_addr(const unsigned char *p, size_t size, bool msb)
{
	uint64_t v = 0;

	for (size_t i = 0; i < size; i++)
		v |= (uint64_t)p[msb ? size - 1 - i : i] << (8 * i);
	return v;
}

static const struct sd_elf_seg *find_seg(const struct sd_usdt_file *f, uint64_t vaddr, bool exec)
{
	for (size_t i = 0; i < f->nsegs; i++) {
		const struct sd_elf_seg *g = &f->segs[i];

		if (exec && !(g->flags & PF_X))
			continue;
		if (vaddr >= g->vaddr && vaddr - g->vaddr < g->filesz)
			return g;
	}
	return NULL;
}

static int read_segments(struct sd_usdt_file *f, Elf *elf)
{
	return sd_elf_read_segs(elf, f->path, &f->segs, &f->nsegs);
}

/* one note's descriptor: addresses, then provider, name and args, each NUL-terminated */
static int add_note(struct sd_usdt_file *f, const unsigned char *desc, size_t len, size_t asize,
		    bool msb, bool have_base, uint64_t base_addr, size_t index)
{
	const char *s = (const char *)desc + 3 * asize, *end = (const char *)desc + len;
	const char *strs[3];
	struct sd_usdt_probe *p;
	char *copy;

	if (len < 3 * asize + 3)
		return sd_error(-ENOEXEC, "%s: stapsdt note %zu is too short (%zu bytes)", f->path,
				index, len);
	for (int i = 0; i < 3; i++) {
		const char *nul = memchr(s, '\0', (size_t)(end - s));

		if (!nul)
			return sd_error(-ENOEXEC,
					"%s: stapsdt note %zu: its %s is not NUL-terminated",
					f->path, index,
					i == 0	 ? "provider"
					: i == 1 ? "name"
						 : "argument string");
		strs[i] = s;
		s = nul + 1;
		if (i < 2 && s == end)
			return sd_error(-ENOEXEC, "%s: stapsdt note %zu is truncated", f->path,
					index);
	}
	if (!*strs[0] || !*strs[1])
		return sd_error(-ENOEXEC, "%s: stapsdt note %zu has an empty %s", f->path, index,
				*strs[0] ? "name" : "provider");
	if (f->n == f->cap) {
		size_t cap = f->cap ? 2 * f->cap : 16;
		struct sd_usdt_probe *bigger = realloc(f->probes, cap * sizeof(*bigger));

		if (!bigger)
			return -ENOMEM;
		f->probes = bigger;
		f->cap = cap;
	}
	/* one block per probe: "provider\0name\0args\0", freed through ->provider */
	copy = malloc((size_t)(s - strs[0]));
	if (!copy)
		return -ENOMEM;
	memcpy(copy, strs[0], (size_t)(s - strs[0]));
	p = &f->probes[f->n++];
	memset(p, 0, sizeof(*p));
	p->provider = copy;
	p->name = copy + (strs[1] - strs[0]);
	p->args = copy + (strs[2] - strs[0]);
	p->note_pc = get_addr(desc, asize, msb);
	p->note_base = get_addr(desc + asize, asize, msb);
	p->note_sem = get_addr(desc + 2 * asize, asize, msb);
	p->pc = p->note_pc;
	p->sem = p->note_sem;
	/* prelink moved the sections after the notes were written */
	if (have_base && p->note_base) {
		p->pc += base_addr - p->note_base;
		if (p->sem)
			p->sem += base_addr - p->note_base;
	}
	{
		const struct sd_elf_seg *g = find_seg(f, p->pc, true);

		if (g) {
			p->pc_offset = p->pc - g->vaddr + g->offset;
			p->pc_mapped = true;
		}
		g = p->sem ? find_seg(f, p->sem, false) : NULL;
		if (g) {
			p->sem_offset = p->sem - g->vaddr + g->offset;
			p->sem_mapped = true;
		}
	}
	return 0;
}

static int read_notes(struct sd_usdt_file *f, Elf *elf, Elf_Scn *scn, size_t asize, bool msb,
		      bool have_base, uint64_t base_addr, size_t *index)
{
	Elf_Data *data = elf_getdata(scn, NULL);
	size_t off = 0, next, name_off, desc_off;
	GElf_Nhdr nh;
	int err;

	if (!data)
		return sd_error(-ENOEXEC, "%s: cannot read %s: %s", f->path, NOTE_SECTION,
				elf_errmsg(-1));
	while (off < data->d_size &&
	       (next = gelf_getnote(data, off, &nh, &name_off, &desc_off)) > 0) {
		const char *owner = (const char *)data->d_buf + name_off;

		off = next;
		if (nh.n_type != NOTE_TYPE || nh.n_namesz != sizeof(NOTE_OWNER) ||
		    memcmp(owner, NOTE_OWNER, sizeof(NOTE_OWNER)))
			continue;
		err = add_note(f, (const unsigned char *)data->d_buf + desc_off, nh.n_descsz, asize,
			       msb, have_base, base_addr, (*index)++);
		if (err)
			return err;
	}
	return 0;
}

static int read_elf(struct sd_usdt_file *f, Elf *elf)
{
	Elf_Scn *scn = NULL;
	GElf_Ehdr eh;
	size_t shstrndx, asize, index = 0;
	uint64_t base_addr = 0;
	bool have_base = false, msb;
	int err;

	if (elf_kind(elf) != ELF_K_ELF)
		return sd_error(-ENOEXEC, "%s: not an ELF file", f->path);
	if (!gelf_getehdr(elf, &eh))
		return sd_error(-ENOEXEC, "%s: truncated or corrupt ELF header: %s", f->path,
				elf_errmsg(-1));
	if (elf_getshdrstrndx(elf, &shstrndx))
		return sd_error(-ENOEXEC, "%s: cannot read section headers: %s", f->path,
				elf_errmsg(-1));
	f->machine = eh.e_machine;
	f->pie = eh.e_type == ET_DYN;
	asize = gelf_getclass(elf) == ELFCLASS32 ? 4 : 8;
	msb = eh.e_ident[EI_DATA] == ELFDATA2MSB;
	err = read_segments(f, elf);
	if (err)
		return err;

	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		const char *name;

		if (!gelf_getshdr(scn, &sh))
			return sd_error(-ENOEXEC, "%s: corrupt section header: %s", f->path,
					elf_errmsg(-1));
		name = elf_strptr(elf, shstrndx, sh.sh_name);
		if (name && !strcmp(name, BASE_SECTION)) {
			have_base = true;
			base_addr = sh.sh_addr;
		}
	}
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		const char *name;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_NOTE)
			continue;
		name = elf_strptr(elf, shstrndx, sh.sh_name);
		if (!name || strcmp(name, NOTE_SECTION))
			continue;
		err = read_notes(f, elf, scn, asize, msb, have_base, base_addr, &index);
		if (err)
			return err;
	}
	return 0;
}

int sd_usdt_open(const char *path, struct sd_usdt_file **out)
{
	struct sd_usdt_file *f;
	Elf *elf;
	int fd, err;

	*out = NULL;
	err = sd_elf_open(path, &fd, &elf);
	if (err)
		return err;
	f = calloc(1, sizeof(*f));
	if (!f || !(f->path = strdup(path))) {
		free(f);
		sd_elf_close(fd, elf);
		return sd_error(-ENOMEM, "%s: out of memory", path);
	}
	err = read_elf(f, elf);
	sd_elf_close(fd, elf);
	if (err) {
		if (err == -ENOMEM)
			sd_error(err, "%s: out of memory", path);
		sd_usdt_free(f);
		return err;
	}
	*out = f;
	return 0;
}

void sd_usdt_free(struct sd_usdt_file *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->n; i++)
		free((char *)f->probes[i].provider);
	free(f->probes);
	free(f->segs);
	sd_symtab_free(f->symtab);
	free(f->symtab_err);
	free(f->path);
	free(f);
}

const char *sd_usdt_path(const struct sd_usdt_file *f)
{
	return f->path;
}

size_t sd_usdt_count(const struct sd_usdt_file *f)
{
	return f->n;
}

const struct sd_usdt_probe *sd_usdt_at(const struct sd_usdt_file *f, size_t i)
{
	return i < f->n ? &f->probes[i] : NULL;
}

/* ---- argument specs (x86-64) ------------------------------------------------------------ */

/* names by width: 8, 4, 2, 1 bytes; then the high byte; the uprobe_events name */
/* clang-format off */
static const struct x86_reg {
	const char *names[4];
	const char *high;
	const char *kname;
} x86_regs[] = {
	{{"rax", "eax", "ax", "al"}, "ah", "ax"},
	{{"rbx", "ebx", "bx", "bl"}, "bh", "bx"},
	{{"rcx", "ecx", "cx", "cl"}, "ch", "cx"},
	{{"rdx", "edx", "dx", "dl"}, "dh", "dx"},
	{{"rsi", "esi", "si", "sil"}, NULL, "si"},
	{{"rdi", "edi", "di", "dil"}, NULL, "di"},
	{{"rbp", "ebp", "bp", "bpl"}, NULL, "bp"},
	{{"rsp", "esp", "sp", "spl"}, NULL, "sp"},
	{{"r8", "r8d", "r8w", "r8b"}, NULL, "r8"},
	{{"r9", "r9d", "r9w", "r9b"}, NULL, "r9"},
	{{"r10", "r10d", "r10w", "r10b"}, NULL, "r10"},
	{{"r11", "r11d", "r11w", "r11b"}, NULL, "r11"},
	{{"r12", "r12d", "r12w", "r12b"}, NULL, "r12"},
	{{"r13", "r13d", "r13w", "r13b"}, NULL, "r13"},
	{{"r14", "r14d", "r14w", "r14b"}, NULL, "r14"},
	{{"r15", "r15d", "r15w", "r15b"}, NULL, "r15"},
	{{"rip", "eip", "ip", NULL}, NULL, "ip"},
};
/* clang-format on */

/* a register by its AT&T name (without '%'): kernel name, width in bytes, shift */
static const struct x86_reg *x86_reg(const char *name, int *width, int *shift)
{
	static const int widths[4] = {8, 4, 2, 1};
	char buf[8];
	size_t n = strlen(name);

	/* %r8l is the old name of %r8b */
	if (n >= 3 && n < sizeof(buf) && name[0] == 'r' && isdigit((unsigned char)name[1]) &&
	    name[n - 1] == 'l') {
		memcpy(buf, name, n);
		buf[n - 1] = 'b';
		buf[n] = '\0';
		name = buf;
	}
	*shift = 0;
	for (size_t i = 0; i < ARRAY_SIZE(x86_regs); i++) {
		const struct x86_reg *r = &x86_regs[i];

		for (int w = 0; w < 4; w++)
			if (r->names[w] && !strcmp(name, r->names[w])) {
				*width = widths[w];
				return r;
			}
		if (r->high && !strcmp(name, r->high)) {
			*width = 1;
			*shift = 8;
			return r;
		}
	}
	return NULL;
}

struct spec_ctx {
	const struct sd_usdt_probe *p;
	int argno;     /* 1-based */
	const char *s; /* the argument's text, within p->args */
	size_t len;
	const char *at; /* the cursor */
};

static int spec_col(const struct spec_ctx *c, const char *where)
{
	return (int)(where - c->p->args) + 1;
}

__attribute__((format(printf, 3, 4))) static int spec_fail(const struct spec_ctx *c,
							   const char *where, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return sd_error(-EINVAL, "%s:%s: argument %d '%.*s', column %d: %s", c->p->provider,
			c->p->name, c->argno, (int)c->len, c->s, spec_col(c, where), msg);
}

static bool at_end(const struct spec_ctx *c)
{
	return c->at >= c->s + c->len;
}

static char peek(const struct spec_ctx *c)
{
	return at_end(c) ? '\0' : *c->at;
}

static bool is_sym_start(char ch)
{
	return isalpha((unsigned char)ch) || ch == '_' || ch == '.';
}

static bool is_sym_char(char ch)
{
	return isalnum((unsigned char)ch) || ch == '_' || ch == '.' || ch == '$';
}

/* an unsigned number (decimal, 0x hex, 0 octal) at the cursor */
static int spec_number(struct spec_ctx *c, uint64_t *v)
{
	const char *start = c->at;
	unsigned int base = 10;
	uint64_t n = 0;
	int digits = 0;

	if (peek(c) == '0' && c->at + 1 < c->s + c->len &&
	    tolower((unsigned char)c->at[1]) == 'x') {
		base = 16;
		c->at += 2;
	} else if (peek(c) == '0') {
		base = 8;
	}
	while (!at_end(c)) {
		int d = tolower((unsigned char)*c->at);

		d = isdigit(d) ? d - '0' : (d >= 'a' && d <= 'f') ? d - 'a' + 10 : 99;
		if (d >= (int)base)
			break;
		if (n > (UINT64_MAX - (uint64_t)d) / base)
			return spec_fail(c, start, "number out of range");
		n = n * base + (uint64_t)d;
		digits++;
		c->at++;
	}
	if (!digits && base != 8)
		return spec_fail(c, start, "expected a number");
	*v = n;
	return 0;
}

/* %reg at the cursor; *r NULL is refused with a reason */
static int spec_register(struct spec_ctx *c, const struct x86_reg **r, int *width, int *shift)
{
	const char *start = c->at;
	char name[16];
	size_t n = 0;

	c->at++; /* '%' */
	while (!at_end(c) && isalnum((unsigned char)*c->at) && n < sizeof(name) - 1)
		name[n++] = *c->at++;
	name[n] = '\0';
	if (!n)
		return spec_fail(c, start, "expected a register name after '%%'");
	*r = x86_reg(name, width, shift);
	if (*r)
		return 0;
	if (!strncmp(name, "xmm", 3) || !strncmp(name, "ymm", 3) || !strncmp(name, "zmm", 3) ||
	    !strncmp(name, "st", 2) || !strncmp(name, "mm", 2))
		return spec_fail(
		    c, start, "floating-point and vector registers (%%%s) are not supported", name);
	if (peek(c) == ':' && n == 2 && name[1] == 's')
		return spec_fail(c, start, "segment-relative operands (%%%s:) are not supported",
				 name);
	return spec_fail(c, start, "unknown register %%%s", name);
}

/* DISP: [sym][(+|-)N] or N[+sym], summed into a->disp and a->sym */
static int spec_disp(struct spec_ctx *c, struct sd_usdt_arg *a)
{
	bool first = true;
	int err;

	while (!at_end(c) && peek(c) != '(') {
		const char *start = c->at;
		bool neg = false;

		if (peek(c) == '+' || peek(c) == '-') {
			neg = peek(c) == '-';
			c->at++;
		} else if (!first) {
			return spec_fail(c, start, "unexpected '%c'", peek(c));
		}
		first = false;
		if (isdigit((unsigned char)peek(c))) {
			uint64_t v;

			err = spec_number(c, &v);
			if (err)
				return err;
			/* two's complement sums: the address arithmetic wraps */
			a->disp = (int64_t)((uint64_t)a->disp + (neg ? 0 - v : v));
		} else if (is_sym_start(peek(c))) {
			size_t n = 0;

			if (neg)
				return spec_fail(c, c->at, "a symbol cannot be subtracted");
			if (a->sym[0])
				return spec_fail(c, c->at, "more than one symbol");
			while (!at_end(c) && is_sym_char(*c->at)) {
				if (n == sizeof(a->sym) - 1)
					return spec_fail(c, c->at - n,
							 "the symbol name is too long");
				a->sym[n++] = *c->at++;
			}
			a->sym[n] = '\0';
			if (peek(c) == '@')
				return spec_fail(c, c->at,
						 "relocation suffixes (%.*s) are not supported",
						 (int)(c->s + c->len - c->at), c->at);
		} else if (at_end(c)) {
			return spec_fail(c, c->at, "expected a number or a symbol");
		} else {
			return spec_fail(c, c->at, "unexpected '%c'", peek(c));
		}
	}
	return 0;
}

/* (%base[,%index[,SCALE]]) or (,%index[,SCALE]) at the cursor */
static int spec_mem(struct spec_ctx *c, struct sd_usdt_arg *a)
{
	const struct x86_reg *r;
	int width, shift, err;
	const char *start;

	c->at++; /* '(' */
	start = c->at;
	if (peek(c) == '%') {
		err = spec_register(c, &r, &width, &shift);
		if (err)
			return err;
		if (width != 8 || shift)
			return spec_fail(c, start,
					 "an address register must be a 64-bit one, not %.*s",
					 (int)(c->at - start), start);
		if (!strcmp(r->kname, "ip")) {
			a->kind = SD_USDT_ARG_RIP;
		} else {
			a->kind = SD_USDT_ARG_MEM;
			snprintf(a->reg, sizeof(a->reg), "%s", r->kname);
		}
	} else if (peek(c) == ',') {
		a->kind = SD_USDT_ARG_MEM;
	} else {
		return spec_fail(c, c->at, "expected a register or ',' after '('");
	}
	if (peek(c) == ',') {
		if (a->kind == SD_USDT_ARG_RIP)
			return spec_fail(c, c->at, "%%rip-relative addresses take no index");
		c->at++;
		start = c->at;
		if (peek(c) != '%')
			return spec_fail(c, c->at, "expected an index register");
		err = spec_register(c, &r, &width, &shift);
		if (err)
			return err;
		if (width != 8 || shift)
			return spec_fail(c, start,
					 "an address register must be a 64-bit one, not %.*s",
					 (int)(c->at - start), start);
		if (!strcmp(r->kname, "ip") || !strcmp(r->kname, "sp"))
			return spec_fail(c, start, "%.*s cannot be an index", (int)(c->at - start),
					 start);
		snprintf(a->index, sizeof(a->index), "%s", r->kname);
		a->scale = 1;
		if (peek(c) == ',') {
			uint64_t v;

			c->at++;
			start = c->at;
			if (!isdigit((unsigned char)peek(c)))
				return spec_fail(c, start, "expected a scale (1, 2, 4 or 8)");
			err = spec_number(c, &v);
			if (err)
				return err;
			if (v != 1 && v != 2 && v != 4 && v != 8)
				return spec_fail(c, start,
						 "the scale must be 1, 2, 4 or 8, not %" PRIu64, v);
			a->scale = (int)v;
		}
	} else if (!a->reg[0] && a->kind == SD_USDT_ARG_MEM) {
		return spec_fail(c, c->at, "expected an index register");
	}
	if (at_end(c))
		return spec_fail(c, c->at, "missing ')'");
	if (peek(c) != ')')
		return spec_fail(c, c->at, "unexpected '%c'", peek(c));
	c->at++;
	return 0;
}

static int parse_one(struct spec_ctx *c, struct sd_usdt_arg *a)
{
	const char *start = c->s, *atsign = memchr(c->s, '@', c->len);
	int err;

	memset(a, 0, sizeof(*a));
	a->argno = c->argno;
	a->col = spec_col(c, c->s);
	a->len = (int)c->len;
	c->at = c->s;
	/* [-]SIZE@ (a spec without it is an old one: a full-width register or 8 bytes) */
	a->size = 0;
	if (atsign) {
		uint64_t v;

		if (peek(c) == '-') {
			a->is_signed = true;
			c->at++;
		}
		if (!isdigit((unsigned char)peek(c)))
			return spec_fail(c, c->at, "expected the size before '@'");
		err = spec_number(c, &v);
		if (err)
			return err;
		if (c->at != atsign)
			return spec_fail(c, c->at, "expected '@' after the size");
		if (v != 1 && v != 2 && v != 4 && v != 8)
			return spec_fail(c, start, "the size must be 1, 2, 4 or 8, not %" PRIu64,
					 v);
		a->size = (int)v;
		c->at++;
	}
	if (at_end(c))
		return spec_fail(c, c->at, "expected an operand");

	switch (peek(c)) {
	case '$': {
		uint64_t v;
		bool neg = false;

		a->kind = SD_USDT_ARG_CONST;
		c->at++;
		if (is_sym_start(peek(c))) {
			err = spec_disp(c, a);
			if (err)
				return err;
			break;
		}
		if (peek(c) == '-' || peek(c) == '+') {
			neg = peek(c) == '-';
			c->at++;
		}
		if (!isdigit((unsigned char)peek(c)))
			return spec_fail(c, c->at, "expected a number after '$'");
		err = spec_number(c, &v);
		if (err)
			return err;
		a->disp = (int64_t)(neg ? 0 - v : v);
		break;
	}
	case '%': {
		const struct x86_reg *r;
		int width, shift;

		err = spec_register(c, &r, &width, &shift);
		if (err)
			return err;
		a->kind = SD_USDT_ARG_REG;
		snprintf(a->reg, sizeof(a->reg), "%s", r->kname);
		a->reg_shift = shift;
		if (!a->size)
			a->size = width;
		break;
	}
	default:
		err = spec_disp(c, a);
		if (err)
			return err;
		if (peek(c) == '(') {
			err = spec_mem(c, a);
			if (err)
				return err;
		} else {
			a->kind = SD_USDT_ARG_ABS;
		}
		break;
	}
	if (!at_end(c))
		return spec_fail(c, c->at, "unexpected '%c'", peek(c));
	if (!a->size)
		a->size = 8;
	return 0;
}

int sd_usdt_parse_args(const struct sd_usdt_probe *p, struct sd_usdt_arg *out, int max)
{
	struct spec_ctx c = {.p = p};
	const char *s = p->args;
	int n = 0, err;

	for (;;) {
		while (isspace((unsigned char)*s))
			s++;
		if (!*s)
			break;
		c.s = s;
		while (*s && !isspace((unsigned char)*s))
			s++;
		c.len = (size_t)(s - c.s);
		c.argno = n + 1;
		if (n == max)
			return sd_error(-E2BIG, "%s:%s: more than %d arguments", p->provider,
					p->name, max);
		err = parse_one(&c, &out[n]);
		if (err)
			return err;
		n++;
	}
	return n;
}

/* ---- uprobe_events lines ------------------------------------------------------------------ */

static int file_symtab(struct sd_usdt_file *f, struct sd_symtab **st)
{
	if (!f->symtab && !f->symtab_err) {
		int err = sd_symtab_open(f->path, &f->symtab);

		if (err) {
			f->symtab_err = strdup(sonde_last_error());
			if (!f->symtab_err)
				return err;
		}
	}
	if (!f->symtab)
		return sd_error(-ENOENT, "%s", f->symtab_err);
	*st = f->symtab;
	return 0;
}

/* the link-time address of a->sym + a->disp */
static int sym_vaddr(struct sd_usdt_file *f, const struct sd_usdt_probe *p,
		     const struct sd_usdt_arg *a, int argno, uint64_t *vaddr)
{
	const struct sd_sym *s;
	struct sd_symtab *st = NULL;

	if (file_symtab(f, &st))
		return sd_error(-ENOENT, "%s:%s: argument %d names symbol %s: %s", p->provider,
				p->name, argno, a->sym, sonde_last_error());
	s = sd_symtab_lookup(st, a->sym);
	if (!s)
		return sd_error(-ENOENT,
				"%s:%s: argument %d names symbol %s, which is not in the symbol "
				"table of %s",
				p->provider, p->name, argno, a->sym, f->path);
	*vaddr = s->value + (uint64_t)a->disp;
	return 0;
}

static const char *const type_names[2][9] = {
    {NULL, "u8", "u16", NULL, "u32", NULL, NULL, NULL, "u64"},
    {NULL, "s8", "s16", NULL, "s32", NULL, NULL, NULL, "s64"},
};

int sd_usdt_arg_fetch(struct sd_usdt_file *f, const struct sd_usdt_probe *p,
		      const struct sd_usdt_arg *a, char *expr, size_t elen, char *type, size_t tlen)
{
	int argno = a->argno, n = 0, err;
	uint64_t target;

	if (f->machine != EM_X86_64)
		return sd_error(-EOPNOTSUPP,
				"%s: argument specs of ELF machine %d are not supported", f->path,
				f->machine);
	if (a->reg_shift)
		snprintf(type, tlen, "b8@%d/16", a->reg_shift);
	else
		snprintf(type, tlen, "%s", type_names[a->is_signed][a->size]);

	switch (a->kind) {
	case SD_USDT_ARG_CONST:
		if (!a->sym[0]) {
			n = snprintf(expr, elen, "\\%" PRId64, a->disp);
			break;
		}
		if (f->pie)
			return sd_error(-EOPNOTSUPP,
					"%s:%s: argument %d: the address of %s is not a constant "
					"in a position-independent object",
					p->provider, p->name, argno, a->sym);
		err = sym_vaddr(f, p, a, argno, &target);
		if (err)
			return err;
		n = snprintf(expr, elen, "\\0x%" PRIx64, target);
		break;
	case SD_USDT_ARG_REG:
		n = snprintf(expr, elen, "%%%s", a->reg);
		break;
	case SD_USDT_ARG_MEM: {
		int64_t disp = a->disp;

		if (a->sym[0]) {
			if (f->pie)
				return sd_error(-EOPNOTSUPP,
						"%s:%s: argument %d: %s as a displacement is not a "
						"constant in a position-independent object",
						p->provider, p->name, argno, a->sym);
			err = sym_vaddr(f, p, a, argno, &target);
			if (err)
				return err;
			disp = (int64_t)target;
		}
		if (!a->index[0])
			n = snprintf(expr, elen, "%+" PRId64 "(%%%s)", disp, a->reg);
		else if (a->reg[0])
			n = snprintf(expr, elen, "%+" PRId64 "(%%%s,%%%s,%d)", disp, a->reg,
				     a->index, a->scale);
		else
			n = snprintf(expr, elen, "%+" PRId64 "(,%%%s,%d)", disp, a->index,
				     a->scale);
		break;
	}
	case SD_USDT_ARG_RIP:
	case SD_USDT_ARG_ABS: {
		int64_t off;

		if (a->sym[0]) {
			err = sym_vaddr(f, p, a, argno, &target);
			if (err)
				return err;
		} else if (a->kind == SD_USDT_ARG_RIP) {
			target = p->pc + (uint64_t)a->disp;
		} else if (!f->pie) {
			target = (uint64_t)a->disp;
		} else {
			return sd_error(
			    -EOPNOTSUPP,
			    "%s:%s: argument %d: an absolute address means nothing in a "
			    "position-independent object",
			    p->provider, p->name, argno);
		}
		if (!p->pc_mapped)
			return sd_error(-ENOEXEC, "%s:%s: the probe is not in a loaded segment",
					p->provider, p->name);
		/* @+OFF: probe address - probe file offset + OFF (see usdt.h) */
		off = (int64_t)(target - (p->pc - p->pc_offset));
		if (off < 0)
			n = snprintf(expr, elen, "@+-0x%" PRIx64, 0 - (uint64_t)off);
		else
			n = snprintf(expr, elen, "@+0x%" PRIx64, (uint64_t)off);
		break;
	}
	default:
		return sd_error(-EINVAL, "%s:%s: argument %d: unknown kind", p->provider, p->name,
				argno);
	}
	if (n < 0 || (size_t)n >= elen)
		return sd_error(-E2BIG, "%s:%s: argument %d: the fetch expression is too long",
				p->provider, p->name, argno);
	return 0;
}

/* a growing string */
struct sbuf {
	char *s;
	size_t len, cap;
	int err;
};

__attribute__((format(printf, 2, 3))) static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->err)
		return;
	for (;;) {
		size_t room = b->cap - b->len;

		va_start(ap, fmt);
		n = vsnprintf(b->s ? b->s + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->err = -EINVAL;
			return;
		}
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		{
			size_t cap = b->cap ? b->cap : 256;
			char *bigger;

			while (cap <= b->len + (size_t)n)
				cap *= 2;
			bigger = realloc(b->s, cap);
			if (!bigger) {
				b->err = -ENOMEM;
				return;
			}
			b->s = bigger;
			b->cap = cap;
		}
	}
}

/* "argN" at @s (not part of a longer name): N, else 0 */
static int arg_ref(const char *start, const char *s, size_t *len)
{
	const char *d = s + 3;
	int n = 0;

	if (strncmp(s, "arg", 3) || !isdigit((unsigned char)*d))
		return 0;
	if (s > start && (isalnum((unsigned char)s[-1]) || s[-1] == '_' || s[-1] == '$'))
		return 0;
	while (isdigit((unsigned char)*d) && n < 1000)
		n = n * 10 + (*d++ - '0');
	if (isalnum((unsigned char)*d) || *d == '_')
		return 0;
	*len = (size_t)(d - s);
	return n;
}

/* the user's words: [NAME=]EXPR[:TYPE] with argN standing for the probe's arguments */
static int user_arg(struct sbuf *b, const struct sd_usdt_probe *p, const char *word,
		    char (*exprs)[MAX_ARGSTR_LEN + 1], char (*types)[32],
		    const struct sd_usdt_arg *args, int nargs)
{
	const char *eq = strchr(word, '='), *body = eq ? eq + 1 : word, *colon;
	char expr[256], name[64] = "";
	const char *type = NULL;
	size_t elen, len;
	int k;

	if (eq) {
		snprintf(name, sizeof(name), "%.*s", (int)(eq - word), word);
	}
	colon = strchr(body, ':');
	elen = colon ? (size_t)(colon - body) : strlen(body);
	if (colon)
		type = colon + 1;
	if (elen >= sizeof(expr))
		return sd_error(-E2BIG, "'%s': the expression is too long", word);
	memcpy(expr, body, elen);
	expr[elen] = '\0';

	k = arg_ref(expr, expr, &len);
	if (k && len == elen) {
		/* argN alone */
		if (k > nargs)
			return sd_error(-EINVAL, "'%s': %s:%s has %d argument%s", word, p->provider,
					p->name, nargs, nargs == 1 ? "" : "s");
		if (!name[0])
			snprintf(name, sizeof(name), "arg%d", k);
		if (!type) {
			sb_printf(b, " %s=%s:%s", name, exprs[k - 1], types[k - 1]);
			return 0;
		}
		if (args[k - 1].reg_shift)
			return sd_error(-EINVAL,
					"'%s': arg%d is a high byte register: it has no other type",
					word, k);
		if (!strcmp(type, "string") || !strcmp(type, "ustring") || strchr(type, '['))
			sb_printf(b, " %s=+0(%s):%s", name, exprs[k - 1], type);
		else
			sb_printf(b, " %s=%s:%s", name, exprs[k - 1], type);
		return 0;
	}

	/* an expression: argN inside it becomes its value's fetch expression */
	sb_printf(b, " ");
	if (name[0])
		sb_printf(b, "%s=", name);
	for (const char *s = expr; *s;) {
		k = arg_ref(expr, s, &len);
		if (!k) {
			sb_printf(b, "%c", *s++);
			continue;
		}
		if (k > nargs)
			return sd_error(-EINVAL, "'%s': %s:%s has %d argument%s", word, p->provider,
					p->name, nargs, nargs == 1 ? "" : "s");
		if (args[k - 1].reg_shift)
			return sd_error(-EINVAL,
					"'%s': arg%d is a high byte register: it can only be read "
					"alone",
					word, k);
		sb_printf(b, "%s", exprs[k - 1]);
		s += len;
	}
	if (type)
		sb_printf(b, ":%s", type);
	return 0;
}

/* group names follow the kernel's rules: C identifiers (and '-') */
static void sanitize(char *s)
{
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-')
			*s = '_';
}

int sd_usdt_probe_def(struct sd_usdt_file *f, const struct sd_usdt_probe *p, const char *group,
		      const char *event, const char *path, const char *user_args, char **line)
{
	struct sd_usdt_arg args[SD_USDT_MAX_ARGS];
	char exprs[SD_USDT_MAX_ARGS][MAX_ARGSTR_LEN + 1], types[SD_USDT_MAX_ARGS][32];
	char grp[SD_EVENT_NAME_MAX], ev[SD_EVENT_NAME_MAX];
	struct sbuf b = {0};
	int nargs, err;

	*line = NULL;
	if (!p->pc_mapped)
		return sd_error(
		    -ENOEXEC, "%s:%s: address 0x%" PRIx64 " is not in an executable segment of %s",
		    p->provider, p->name, p->pc, f->path);
	if (p->sem && !p->sem_mapped)
		return sd_error(-ENOEXEC,
				"%s:%s: semaphore 0x%" PRIx64 " is not in a loaded segment of %s",
				p->provider, p->name, p->sem, f->path);
	nargs = sd_usdt_parse_args(p, args, SD_USDT_MAX_ARGS);
	if (nargs < 0)
		return nargs;
	for (int i = 0; i < nargs; i++) {
		err = sd_usdt_arg_fetch(f, p, &args[i], exprs[i], sizeof(exprs[i]), types[i],
					sizeof(types[i]));
		if (err)
			return err;
	}
	if (group) {
		snprintf(grp, sizeof(grp), "%s", group);
	} else {
		snprintf(grp, sizeof(grp), "sdt_%s", p->provider);
		sanitize(grp);
	}
	snprintf(ev, sizeof(ev), "%s", event ? event : p->name);
	sanitize(ev);

	sb_printf(&b, "p:%s/%s %s:0x%" PRIx64, grp, ev, path ? path : f->path, p->pc_offset);
	if (p->sem)
		sb_printf(&b, "(0x%" PRIx64 ")", p->sem_offset);
	if (user_args && *user_args) {
		const char *s = user_args;

		for (;;) {
			char word[256];
			const char *w;

			while (isspace((unsigned char)*s))
				s++;
			if (!*s)
				break;
			w = s;
			while (*s && !isspace((unsigned char)*s))
				s++;
			if ((size_t)(s - w) >= sizeof(word)) {
				err = sd_error(-E2BIG, "'%.*s…': an argument is too long", 32, w);
				goto fail;
			}
			memcpy(word, w, (size_t)(s - w));
			word[s - w] = '\0';
			err = user_arg(&b, p, word, exprs, types, args, nargs);
			if (err)
				goto fail;
		}
	} else {
		for (int i = 0; i < nargs; i++)
			sb_printf(&b, " arg%d=%s:%s", i + 1, exprs[i], types[i]);
	}
	if (b.err) {
		err = sd_error(b.err, "out of memory");
		goto fail;
	}
	*line = b.s;
	return 0;
fail:
	free(b.s);
	return err;
}

/* ---- trace specs ----------------------------------------------------------------------------- */

bool sd_usdt_is_spec(const char *spec)
{
	return !strncmp(spec, "usdt:", 5) || !strncmp(spec, "u:", 2);
}

void sd_usdt_lines_free(char **lines, int n)
{
	for (int i = 0; lines && i < n; i++)
		free(lines[i]);
	free(lines);
}

struct expand {
	const char *provider, *name, *user_args;
	char **lines;
	int n, cap;
	/* event names given so far, for the _1, _2 suffixes */
	char (*used)[2 * SD_EVENT_NAME_MAX];
};

static int add_line(struct expand *x, char *line, const char *key)
{
	if (x->n == x->cap) {
		int cap = x->cap ? 2 * x->cap : 8;
		char **l = realloc(x->lines, (size_t)cap * sizeof(*l));
		char(*u)[2 * SD_EVENT_NAME_MAX] = realloc(x->used, (size_t)cap * sizeof(*u));

		if (l)
			x->lines = l;
		if (u)
			x->used = u;
		if (!l || !u)
			return -ENOMEM;
		x->cap = cap;
	}
	x->lines[x->n] = line;
	snprintf(x->used[x->n], sizeof(x->used[0]), "%s", key);
	x->n++;
	return 0;
}

static bool used(const struct expand *x, const char *key)
{
	for (int i = 0; i < x->n; i++)
		if (!strcmp(x->used[i], key))
			return true;
	return false;
}

/* the probes of one object matching the spec; *unreadable when it cannot be opened */
static int expand_file(struct expand *x, const char *path, bool *unreadable)
{
	struct sd_usdt_file *f;
	int err = sd_usdt_open(path, &f);

	*unreadable = err != 0;
	if (err)
		return err;
	for (size_t i = 0; i < f->n; i++) {
		const struct sd_usdt_probe *p = &f->probes[i];
		char grp[SD_EVENT_NAME_MAX], ev[SD_EVENT_NAME_MAX], key[2 * SD_EVENT_NAME_MAX];
		char *line;

		if (fnmatch(x->provider, p->provider, 0) || fnmatch(x->name, p->name, 0))
			continue;
		snprintf(grp, sizeof(grp), "sdt_%s", p->provider);
		sanitize(grp);
		snprintf(ev, sizeof(ev), "%s", p->name);
		sanitize(ev);
		snprintf(key, sizeof(key), "%s/%s", grp, ev);
		for (int k = 1; used(x, key); k++) {
			char tmp[SD_EVENT_NAME_MAX + 16];

			snprintf(tmp, sizeof(tmp), "%.*s_%d", SD_EVENT_NAME_MAX - 12, p->name, k);
			tmp[SD_EVENT_NAME_MAX - 1] = '\0';
			memcpy(ev, tmp, sizeof(ev));
			sanitize(ev);
			snprintf(key, sizeof(key), "%s/%s", grp, ev);
		}
		err = sd_usdt_probe_def(f, p, grp, ev, path, x->user_args, &line);
		if (!err) {
			err = add_line(x, line, key);
			if (err)
				free(line);
		}
		if (err)
			break;
	}
	sd_usdt_free(f);
	return err;
}

/* the module of @maps that is the file @path (device and inode) */
int sd_usdt_expand(const char *spec, pid_t pid, char ***lines)
{
	struct expand x = {0};
	struct sd_maps *maps = NULL;
	char *target = NULL, *c1, *c2, *path = NULL;
	const char *s = spec, *end;
	int err = 0;

	*lines = NULL;
	if (!sd_usdt_is_spec(spec))
		return sd_error(-EINVAL, "'%s' is not a USDT spec (usdt:[PATH:]PROVIDER:NAME)",
				spec);
	s = strchr(spec, ':') + 1;
	end = s + strcspn(s, " \t\n");
	target = strndup(s, (size_t)(end - s));
	if (!target)
		return -ENOMEM;
	x.user_args = end;
	/* [PATH:]PROVIDER:NAME, split from the right (a path may hold ':') */
	c2 = strrchr(target, ':');
	if (!c2) {
		err = sd_error(-EINVAL, "'%s': expected usdt:[PATH:]PROVIDER:NAME", spec);
		goto out;
	}
	*c2 = '\0';
	x.name = c2 + 1;
	c1 = strrchr(target, ':');
	if (c1) {
		*c1 = '\0';
		x.provider = c1 + 1;
		path = target;
	} else {
		x.provider = target;
	}
	if (!*x.provider || !*x.name || (path && !*path)) {
		err = sd_error(-EINVAL, "'%s': expected usdt:[PATH:]PROVIDER:NAME", spec);
		goto out;
	}

	err = sd_maps_read(pid, &maps);
	if (err)
		goto out;
	if (path) {
		struct sd_module *m = strchr(path, '/') ? sd_maps_find_file(maps, path)
							: sd_maps_find_module(maps, path);

		if (!m && !strchr(path, '/')) {
			err = sd_error(-ENOENT, "'%s': pid %d has no object named %s mapped", spec,
				       (int)pid, path);
			goto out;
		}
		bool unreadable;

		/* a file the process has not mapped: the agent will say so */
		err = expand_file(&x, m ? m->path : path, &unreadable);
		if (!err && !x.n)
			err = sd_error(-ENOENT, "%s: no USDT probe %s:%s", m ? m->path : path,
				       x.provider, x.name);
	} else {
		for (size_t i = 0; i < sd_maps_count(maps) && !err; i++) {
			struct sd_module *m = sd_maps_at(maps, i);
			bool unreadable;

			if (!m->is_main && !strncmp(m->name, "libsonde", 8))
				continue;
			err = expand_file(&x, m->path, &unreadable);
			if (err && unreadable) {
				/* an object we cannot read holds no probe we could use */
				sd_error_clear();
				err = 0;
			}
		}
		if (!err && !x.n)
			err = sd_error(-ENOENT,
				       "no USDT probe %s:%s in pid %d's executable or libraries",
				       x.provider, x.name, (int)pid);
	}
out:
	sd_maps_free(maps);
	free(target);
	free(x.used);
	if (err) {
		sd_usdt_lines_free(x.lines, x.n);
		return err;
	}
	*lines = x.lines;
	return x.n;
}
