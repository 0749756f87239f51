// SPDX-License-Identifier: MIT
/*
 * fetch.c - running compiled fetch arguments on a probe hit.
 *
 * Runs in the SIGTRAP handler of the traced thread: no libc, no locks, no
 * allocation. Every read of program memory goes through sd_safe_read(), so
 * a bad pointer is a fault marker in the record, never a crash:
 *
 *   numeric value behind a bad pointer   0
 *   string behind a bad pointer          data_loc length 0, printed "(fault)"
 *
 * The stages follow the kernel's process_fetch_insn_bottom(): load,
 * dereference*, store, bitfield, array loop. Strings are sized in a first
 * pass (sd_probe_dynamic_size) and copied in the second; a string that grew
 * in between is cut to the room the first pass reserved.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arch/arch.h"
#include "common/compiler.h"
#include "common/safe_mem.h"
#include "trace/probe_def.h"
#include "trace/ringbuf.h"

#define make_data_loc(len, offs) (((uint32_t)(len) << 16) | ((uint32_t)(offs)&0xffff))
#define STR_CHUNK		 256

/* ---- memory helpers (no libc: the compiler must not make memset/memcpy calls) ----- */

SD_NOTRACE static void put_u32(void *p, uint32_t v)
{
	__builtin_memcpy(p, &v, 4);
}

SD_NOTRACE static uint32_t get_u32(const void *p)
{
	uint32_t v;

	__builtin_memcpy(&v, p, 4);
	return v;
}

SD_NOTRACE static void zero(uint8_t *p, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		p[i] = 0;
		barrier(); /* no memset */
	}
}

SD_NOTRACE static void store_raw(void *dest, uint64_t val, uint32_t size)
{
	switch (size) {
	case 1: {
		uint8_t v = (uint8_t)val;

		__builtin_memcpy(dest, &v, 1);
		break;
	}
	case 2: {
		uint16_t v = (uint16_t)val;

		__builtin_memcpy(dest, &v, 2);
		break;
	}
	case 4: {
		uint32_t v = (uint32_t)val;

		__builtin_memcpy(dest, &v, 4);
		break;
	}
	default:
		__builtin_memcpy(dest, &val, 8);
		break;
	}
}

SD_NOTRACE static uint64_t load_raw(const void *src, uint32_t size)
{
	switch (size) {
	case 1: {
		uint8_t v;

		__builtin_memcpy(&v, src, 1);
		return v;
	}
	case 2: {
		uint16_t v;

		__builtin_memcpy(&v, src, 2);
		return v;
	}
	case 4: {
		uint32_t v;

		__builtin_memcpy(&v, src, 4);
		return v;
	}
	default: {
		uint64_t v;

		__builtin_memcpy(&v, src, 8);
		return v;
	}
	}
}

SD_NOTRACE static uint64_t read_word(uint64_t addr)
{
	uint64_t v = 0;

	if (sd_safe_read(&v, (const void *)(uintptr_t)addr, 8))
		return 0;
	return v;
}

SD_NOTRACE static uint64_t reg_at(const struct sonde_regs *regs, uint32_t off)
{
	uint64_t v;

	__builtin_memcpy(&v, (const char *)regs + off, 8);
	return v;
}

/* the n'th argument by the platform's ABI, as regs_get_kernel_argument() */
SD_NOTRACE static inline uint64_t func_arg(const struct sonde_regs *regs, uint32_t n)
{
	return sd_arch_regs_arg(regs, n);
}

/* bytes of the string at @addr with its NUL, at most @max; 0 when unreadable */
SD_NOTRACE static uint32_t str_size(uint64_t addr, uint32_t max)
{
	char buf[STR_CHUNK];
	uint32_t done = 0;

	while (done < max) {
		uint64_t a = addr + done;
		uint32_t chunk = 4096 - (uint32_t)(a & 4095);

		if (chunk > STR_CHUNK)
			chunk = STR_CHUNK;
		if (chunk > max - done)
			chunk = max - done;
		if (sd_safe_read(buf, (const void *)(uintptr_t)a, chunk))
			return 0; /* strnlen_user: a fault anywhere is a fault */
		for (uint32_t i = 0; i < chunk; i++)
			if (!buf[i])
				return done + i + 1;
		done += chunk;
	}
	return max; /* cut: the copy ends it with a NUL */
}

/*
 * copy the string at @addr into @dst (room @max, > 0), as
 * strncpy_from_user: the bytes with the NUL, or @max when cut (the last
 * byte becomes NUL, *cut is set), or -EFAULT
 */
SD_NOTRACE static long str_copy(char *dst, uint64_t addr, uint32_t max, bool *cut)
{
	uint32_t done = 0;

	*cut = false;

	while (done < max) {
		uint64_t a = addr + done;
		uint32_t chunk = 4096 - (uint32_t)(a & 4095);

		if (chunk > max - done)
			chunk = max - done;
		if (sd_safe_read(dst + done, (const void *)(uintptr_t)a, chunk))
			return -EFAULT;
		for (uint32_t i = 0; i < chunk; i++)
			if (!dst[done + i])
				return done + i + 1;
		done += chunk;
	}
	dst[max - 1] = '\0';
	*cut = true;
	return max;
}

/* "0x1234" for a symstr without a symbol; returns its length */
SD_NOTRACE static uint32_t hex_text(char *buf, uint64_t v)
{
	char tmp[16];
	uint32_t n = 0, len = 2;

	do {
		tmp[n++] = "0123456789abcdef"[v & 15];
		v >>= 4;
	} while (v);
	buf[0] = '0';
	buf[1] = 'x';
	while (n)
		buf[len++] = tmp[--n];
	buf[len] = '\0';
	return len;
}

/* the symstr text of @addr into @buf (room @len > 18); its length */
SD_NOTRACE static uint32_t sym_text(const struct sd_fetch_ctx *ctx, uint64_t addr, char *buf,
				    uint32_t len)
{
	int n = -1;

	if (ctx->sym)
		n = ctx->sym(ctx->sym_arg, addr, buf, len);
	if (n < 0 || (uint32_t)n >= len)
		return hex_text(buf, addr);
	return (uint32_t)n;
}

/* ---- the stages ------------------------------------------------------------------------- */

/* stage 1; returns the instruction after the load */
SD_NOTRACE static const struct sd_fetch_insn *load(const struct sd_fetch_insn *c,
						   const struct sd_fetch_ctx *ctx, uint64_t *val)
{
	const struct sonde_regs *regs = ctx->regs;

	if (c->op == SD_FOP_SYMBOL)
		c++; /* the IMM after it holds the resolved address */
	switch (c->op) {
	case SD_FOP_REG:
		*val = reg_at(regs, c->param);
		break;
	case SD_FOP_STACK:
		*val = read_word(regs->sp + 8ull * c->param);
		break;
	case SD_FOP_STACKP:
		*val = regs->sp;
		break;
	case SD_FOP_RETVAL:
		*val = regs->ax;
		break;
	case SD_FOP_IMM:
		*val = c->imm;
		break;
	case SD_FOP_COMM:
		*val = (uintptr_t)ctx->comm;
		break;
	case SD_FOP_ARG:
		*val = func_arg(regs, c->param);
		break;
	case SD_FOP_FOFFS:
		*val = ctx->file_base + c->imm;
		break;
	case SD_FOP_SIB:
		*val = reg_at(regs, (uint32_t)c->imm) * c->basesize;
		if (c->param != SD_FETCH_NO_REG)
			*val += reg_at(regs, c->param);
		break;
	case SD_FOP_DATA:
		*val = (uintptr_t)c->data;
		break;
	case SD_FOP_EDATA:
		*val = 0;
		if (ctx->edata)
			__builtin_memcpy(val, (const char *)ctx->edata + c->offset, 8);
		break;
	default:
		*val = 0;
		break;
	}
	return c + 1;
}

/* stage 2: dereferences; false on a fault. *lval: the address of the last one */
SD_NOTRACE static bool derefs(const struct sd_fetch_insn **pc, uint64_t *val, uint64_t *lval)
{
	const struct sd_fetch_insn *c = *pc;

	while (c->op == SD_FOP_DEREF || c->op == SD_FOP_UDEREF) {
		uint64_t v;

		*lval = *val;
		if (sd_safe_read(&v, (const void *)(uintptr_t)(*val + (uint64_t)c->offset), 8))
			return false;
		*val = v;
		c++;
	}
	*pc = c;
	return true;
}

SD_NOTRACE static bool is_str_store(uint8_t op)
{
	return op == SD_FOP_ST_STRING || op == SD_FOP_ST_USTRING || op == SD_FOP_ST_SYMSTR;
}

/* dynamic bytes one string element needs */
SD_NOTRACE static uint32_t elem_size(const struct sd_fetch_insn *s, const struct sd_fetch_ctx *ctx,
				     uint64_t val)
{
	uint64_t addr = val + (uint64_t)s->offset;

	if (s->op == SD_FOP_ST_SYMSTR) {
		char buf[512];

		return sym_text(ctx, addr, buf, sizeof(buf)) + 1;
	}
	return str_size(addr, SD_PROBE_STRING_MAX);
}

/* store one string element at data_loc @dl (preset with room and place); consumed bytes */
SD_NOTRACE static uint32_t elem_store(const struct sd_fetch_insn *s, const struct sd_fetch_ctx *ctx,
				      uint64_t val, uint8_t *dl, uint8_t *base)
{
	uint32_t loc = get_u32(dl), max = loc >> 16, off = loc & 0xffff;
	uint64_t addr = val + (uint64_t)s->offset;
	char *dst = (char *)base + off;
	long n;

	if (!max)
		return 0; /* no room: the length stays 0, "(fault)" */
	if (max > SD_PROBE_STRING_MAX)
		max = SD_PROBE_STRING_MAX;
	if (s->op == SD_FOP_ST_SYMSTR) {
		char buf[512];
		uint32_t len = sym_text(ctx, addr, buf, sizeof(buf)) + 1;

		if (len > max)
			len = max;
		for (uint32_t i = 0; i < len; i++) {
			dst[i] = buf[i];
			barrier(); /* no memcpy */
		}
		dst[len - 1] = '\0';
		n = len;
	} else {
		bool cut;

		n = str_copy(dst, addr, max, &cut);
		/*
		 * cut short by the room left: the sizing pass saw a fault past
		 * it if this string runs into unreadable memory, and so must we
		 * (or it would take the room of the strings after it)
		 */
		if (cut && max < SD_PROBE_STRING_MAX &&
		    !str_size(addr + max, SD_PROBE_STRING_MAX - max))
			n = -EFAULT;
	}
	if (n < 0) {
		put_u32(dl, make_data_loc(0, off));
		return 0;
	}
	put_u32(dl, make_data_loc(n, off));
	return (uint32_t)n;
}

/*
 * run one argument's program. With @dest NULL, returns the dynamic bytes
 * it needs; else stores into @dest (the field; data_loc preset for
 * strings) and returns the dynamic bytes consumed.
 */
SD_NOTRACE static uint32_t run(const struct sd_fetch_insn *code, const struct sd_fetch_ctx *ctx,
			       uint8_t *dest, uint8_t *base)
{
	const struct sd_fetch_insn *c, *s3, *lp = NULL;
	uint64_t val, lval = 0;
	uint32_t count = 1, total = 0, loc0 = 0;
	bool bulk;

	c = load(code, ctx, &val);
	lval = val;
	if (!derefs(&c, &val, &lval)) {
		/* a fault on the way: 0 for numbers, "(fault)" for every string element */
		s3 = c;
		while (s3->op == SD_FOP_DEREF || s3->op == SD_FOP_UDEREF)
			s3++;
		if (dest && is_str_store(s3->op)) {
			const struct sd_fetch_insn *e = s3 + 1;
			uint32_t n = 1, off = get_u32(dest) & 0xffff;

			while (e->op != SD_FOP_END && e->op != SD_FOP_LP_ARRAY)
				e++;
			if (e->op == SD_FOP_LP_ARRAY)
				n = e->param;
			for (uint32_t i = 0; i < n; i++)
				put_u32(dest + 4 * i, make_data_loc(0, off));
		}
		return 0;
	}
	s3 = c;
	for (lp = s3; lp->op != SD_FOP_END && lp->op != SD_FOP_LP_ARRAY; lp++)
		;
	if (lp->op == SD_FOP_LP_ARRAY)
		count = lp->param;
	else
		lp = NULL;

	if (!dest) {
		if (!is_str_store(s3->op))
			return 0;
		for (uint32_t i = 0; i < count; i++) {
			if (i) {
				/* string[N]: N pointers, re-read at lval + 8 * i */
				const struct sd_fetch_insn *d = s3 - 1;

				val = lval + 8;
				if (!derefs(&d, &val, &lval))
					continue;
			}
			total += elem_size(s3, ctx, val);
		}
		return total;
	}

	if (is_str_store(s3->op)) {
		loc0 = get_u32(dest);
		for (uint32_t i = 0; i < count; i++) {
			uint8_t *dl = dest + 4 * i;
			uint32_t room = (loc0 >> 16) - total, off = (loc0 & 0xffff) + total;

			put_u32(dl, make_data_loc(room, off));
			if (i) {
				const struct sd_fetch_insn *d = s3 - 1;

				val = lval + 8;
				if (!derefs(&d, &val, &lval)) {
					put_u32(dl, make_data_loc(0, off));
					continue;
				}
			}
			total += elem_store(s3, ctx, val, dl, base);
		}
		return total;
	}

	/* an array in one read; element by element only when a part of it faults */
	bulk = count > 1 && (s3->op == SD_FOP_ST_MEM || s3->op == SD_FOP_ST_UMEM) &&
	       !sd_safe_read(dest, (const void *)(uintptr_t)(val + (uint64_t)s3->offset),
			     count * s3->param);
	for (uint32_t i = 0; i < count; i++) {
		uint8_t *d = dest + i * s3->param;
		const struct sd_fetch_insn *m = s3 + 1;

		switch (s3->op) {
		case SD_FOP_ST_RAW:
			store_raw(d, val, s3->param);
			break;
		case SD_FOP_ST_MEM:
		case SD_FOP_ST_UMEM:
			if (!bulk &&
			    sd_safe_read(d, (const void *)(uintptr_t)(val + (uint64_t)s3->offset),
					 s3->param))
				zero(d, s3->param);
			break;
		default:
			return 0;
		}
		if (m->op == SD_FOP_MOD_BF) {
			uint64_t v = load_raw(d, m->basesize);

			switch (m->basesize) {
			case 1:
				v = (uint8_t)((uint8_t)(v << m->lshift) >> m->rshift);
				break;
			case 2:
				v = (uint16_t)((uint16_t)(v << m->lshift) >> m->rshift);
				break;
			case 4:
				v = (uint32_t)((uint32_t)(v << m->lshift) >> m->rshift);
				break;
			default:
				v = (v << m->lshift) >> m->rshift;
				break;
			}
			store_raw(d, v, m->basesize);
		}
		val += s3->param;
	}
	return 0;
}

/* ---- the entry points --------------------------------------------------------------------- */

SD_NOTRACE static uint32_t dyn_room(const struct sd_probe_def *def)
{
	return def->fixed_size < SD_RB_MAX_PAYLOAD ? SD_RB_MAX_PAYLOAD - def->fixed_size : 0;
}

SD_NOTRACE uint32_t sd_probe_dynamic_size(const struct sd_probe_def *def,
					  const struct sd_fetch_ctx *ctx)
{
	uint32_t total = 0, room = dyn_room(def);

	for (int i = 0; i < def->nargs; i++) {
		const struct sd_probe_arg *a = &def->args[i];

		if (a->field.dynamic)
			total += run(a->code, ctx, NULL, NULL);
		if (total >= room)
			return room;
	}
	return total;
}

int sd_probe_copy_plan(const struct sd_probe_def *def, struct sd_fetch_copy *plan, int max)
{
	if (def->nargs > max)
		return -1;
	for (int i = 0; i < def->nargs; i++) {
		const struct sd_probe_arg *a = &def->args[i];
		const struct sd_fetch_insn *c = a->code;
		int from;

		if (!((c[0].op == SD_FOP_REG || c[0].op == SD_FOP_ARG) &&
		      c[1].op == SD_FOP_ST_RAW && c[2].op == SD_FOP_END &&
		      c[1].param == a->field.size))
			return -1;
		from =
		    c[0].op == SD_FOP_REG ? (int)c[0].param : sd_arch_regs_arg_offset(c[0].param);
		if (from < 0 || (a->field.size != 1 && a->field.size != 2 && a->field.size != 4 &&
				 a->field.size != 8))
			return -1;
		plan[i] = (struct sd_fetch_copy){(uint16_t)from, (uint16_t)a->field.offset,
						 (uint8_t)a->field.size};
	}
	return def->nargs;
}

SD_NOTRACE void sd_probe_store_args(const struct sd_probe_def *def, const struct sd_fetch_ctx *ctx,
				    void *entry, uint32_t dyn_size)
{
	uint8_t *base = entry, *dyn = base + def->fixed_size;
	uint32_t maxlen = dyn_size;

	if (maxlen > dyn_room(def))
		maxlen = dyn_room(def);
	for (int i = 0; i < def->nargs; i++) {
		const struct sd_probe_arg *a = &def->args[i];
		const struct sd_fetch_insn *c = a->code;
		uint8_t *dest = base + a->field.offset;
		uint32_t used;

		/* the common case, a register or an argument as it is: no interpreter */
		if ((c[0].op == SD_FOP_REG || c[0].op == SD_FOP_ARG) && c[1].op == SD_FOP_ST_RAW &&
		    c[2].op == SD_FOP_END && c[1].param == a->field.size) {
			store_raw(dest,
				  c[0].op == SD_FOP_REG ? reg_at(ctx->regs, c[0].param)
							: func_arg(ctx->regs, c[0].param),
				  c[1].param);
			continue;
		}
		if (a->field.dynamic) {
			put_u32(dest, make_data_loc(maxlen, dyn - base));
		} else {
			zero(dest, a->field.size);
		}
		used = run(a->code, ctx, dest, base);
		if (a->field.dynamic && used) {
			if (used > maxlen)
				used = maxlen;
			dyn += used;
			maxlen -= used;
		}
	}
}

SD_NOTRACE uint32_t sd_probe_entry_data_size(const struct sd_probe_def *def)
{
	return (uint32_t)def->nr_entry_args * 8;
}

SD_NOTRACE void sd_probe_store_entry_data(const struct sd_probe_def *def,
					  const struct sonde_regs *regs, void *edata)
{
	for (int i = 0; i < def->nr_entry_args; i++) {
		uint64_t v = func_arg(regs, def->entry_args[i]);

		__builtin_memcpy((char *)edata + 8 * i, &v, 8);
	}
}
