// SPDX-License-Identifier: MIT
/*
 * jumptable.c - where an indirect jmp can land.
 *
 * The kernel's optprobes give up on a function with any indirect jump: a
 * switch's jump table could land inside the bytes a jump replaces. Most
 * indirect jumps in compiled code are one of three shapes, read from the
 * instructions before them:
 *
 *   tail call through a pointer   jmp *0x40(%rax), or jmp *%rax after
 *                                 mov 0x8(%rdi),%rax / mov f@GOT(%rip),%rax:
 *                                 lands on some function's first byte
 *   relative jump table (PIC)     lea T(%rip),%rB; movslq (%rB,%rI,4),%rX;
 *                                 add %rB,%rX; jmp *%rX: targets T + int32
 *   absolute jump table           jmp *T(,%rI,8), or mov T(,%rI,8),%rX;
 *                                 jmp *%rX: 8-byte addresses at T
 *
 * A table is read (in memory, relocated) entry by entry while its targets
 * stay inside the function (body or .cold part); its end is where they
 * stop doing so, which at worst reads on into another table of the same
 * function: more targets, never fewer. Anything else stays unknown.
 */
#include "jumptable.h"

#include "common/safe_mem.h"

#define TABLE_MAX 4096

static ZydisRegister full(ZydisRegister r)
{
	return r == ZYDIS_REGISTER_NONE
		   ? r
		   : ZydisRegisterGetLargestEnclosing(ZYDIS_MACHINE_MODE_LONG_64, r);
}

static bool writes(const struct jt_insn *x, ZydisRegister r)
{
	for (int i = 0; i < x->in.operand_count; i++)
		if (x->ops[i].type == ZYDIS_OPERAND_TYPE_REGISTER &&
		    (x->ops[i].actions & ZYDIS_OPERAND_ACTION_MASK_WRITE) &&
		    full(x->ops[i].reg.value) == r)
			return true;
	return false;
}

/* the last instruction of @win[0..@before) that writes @r, or -1 */
static int last_writer(const struct jt_insn *win, int before, ZydisRegister r)
{
	for (int i = before - 1; i >= 0; i--) {
		/* another control transfer: not one straight line any more */
		if (win[i].in.meta.category == ZYDIS_CATEGORY_UNCOND_BR ||
		    win[i].in.meta.category == ZYDIS_CATEGORY_RET)
			return -1;
		if (writes(&win[i], r))
			return i;
	}
	return -1;
}

static bool inside(const struct jt_range *fn, int nfn, uint64_t a)
{
	for (int i = 0; i < nfn; i++)
		if (a >= fn[i].start && a < fn[i].end)
			return true;
	return false;
}

/* the entries of a table at @t: 4-byte offsets from @t, or 8-byte addresses */
static int read_table(uint64_t t, bool rel32, const struct jt_range *fn, int nfn, uint64_t *targets,
		      int *ntargets, int max)
{
	int n = 0;

	for (; n < TABLE_MAX; n++) {
		uint64_t to;

		if (rel32) {
			int32_t v;

			if (sd_safe_read(&v, (const void *)(uintptr_t)(t + 4 * (uint64_t)n), 4))
				break;
			to = t + (int64_t)v;
		} else if (sd_safe_read(&to, (const void *)(uintptr_t)(t + 8 * (uint64_t)n), 8)) {
			break;
		}
		if (!inside(fn, nfn, to))
			break;
		if (*ntargets >= max)
			return -1;
		targets[(*ntargets)++] = to;
	}
	/* none at all, or no end in sight: not a table we understand */
	return n == 0 || n == TABLE_MAX ? -1 : 0;
}

static const ZydisDecodedOperand *mem_operand(const struct jt_insn *x)
{
	for (int i = 0; i < x->in.operand_count_visible; i++)
		if (x->ops[i].type == ZYDIS_OPERAND_TYPE_MEMORY)
			return &x->ops[i];
	return NULL;
}

/* [T + I*8], no base: an absolute table */
static bool abs_table(const ZydisDecodedOperand *m)
{
	return m->mem.base == ZYDIS_REGISTER_NONE && m->mem.index != ZYDIS_REGISTER_NONE &&
	       m->mem.scale == 8 && m->mem.disp.has_displacement;
}

/* [B + disp] or [rip + disp]: a pointer read from a structure or a global */
static bool pointer_load(const ZydisDecodedOperand *m)
{
	return m->mem.base != ZYDIS_REGISTER_NONE && m->mem.index == ZYDIS_REGISTER_NONE;
}

/* a target read from memory (jmp *mem, or the mov before jmp *%reg) */
static int through_memory(const ZydisDecodedOperand *m, const struct jt_range *fn, int nfn,
			  uint64_t *targets, int *ntargets, int max)
{
	if (pointer_load(m))
		return 1;
	if (abs_table(m))
		return read_table((uint64_t)m->mem.disp.value, false, fn, nfn, targets, ntargets,
				  max);
	return -1;
}

int sd_jt_targets(const struct jt_insn *win, int n, const struct jt_range *fn, int nfn,
		  uint64_t *targets, int *ntargets, int max)
{
	const struct jt_insn *jmp = &win[n - 1];
	const ZydisDecodedOperand *op = &jmp->ops[0], *m;
	ZydisRegister x, b;
	int w1, w2, w3;

	if (op->type == ZYDIS_OPERAND_TYPE_MEMORY)
		return through_memory(op, fn, nfn, targets, ntargets, max);
	if (op->type != ZYDIS_OPERAND_TYPE_REGISTER)
		return -1;
	x = full(op->reg.value);
	w1 = last_writer(win, n - 1, x);
	if (w1 < 0)
		return -1;
	if (win[w1].in.mnemonic == ZYDIS_MNEMONIC_MOV && (m = mem_operand(&win[w1])))
		return through_memory(m, fn, nfn, targets, ntargets, max);
	/* add %rB, %rX <- movslq (%rB,%rI,4), %rX <- lea T(%rip), %rB */
	if (win[w1].in.mnemonic != ZYDIS_MNEMONIC_ADD ||
	    win[w1].ops[1].type != ZYDIS_OPERAND_TYPE_REGISTER)
		return -1;
	b = full(win[w1].ops[1].reg.value);
	w2 = last_writer(win, w1, x);
	if (w2 < 0 || win[w2].in.mnemonic != ZYDIS_MNEMONIC_MOVSXD ||
	    !(m = mem_operand(&win[w2])) || full(m->mem.base) != b || m->mem.scale != 4 ||
	    m->mem.disp.value != 0)
		return -1;
	w3 = last_writer(win, w1, b);
	if (w3 < 0 || w3 > w2 || win[w3].in.mnemonic != ZYDIS_MNEMONIC_LEA ||
	    !(m = mem_operand(&win[w3])) || m->mem.base != ZYDIS_REGISTER_RIP ||
	    m->mem.index != ZYDIS_REGISTER_NONE)
		return -1;
	return read_table(win[w3].addr + win[w3].in.length + (uint64_t)m->mem.disp.value, true, fn,
			  nfn, targets, ntargets, max);
}
