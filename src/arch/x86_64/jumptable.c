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
 * A table is read (in memory, relocated), as many entries as the bound
 * check before it allows (cmp $N, %index; ja, or an index made from a
 * byte), and every entry is checked like a direct branch. Anything else
 * stays unknown.
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

/*
 * The entries of a table at @t (4-byte offsets from @t, or 8-byte
 * addresses), @count of them, all checked against the region: those in
 * code the function's symbols do not cover (a stripped .cold part) too.
 */
static int read_table(uint64_t t, bool rel32, int count, uint64_t *targets, int *ntargets, int max)
{
	if (count <= 0 || count > TABLE_MAX)
		return -1;
	for (int n = 0; n < count; n++) {
		uint64_t to;

		if (rel32) {
			int32_t v;

			if (sd_safe_read(&v, (const void *)(uintptr_t)(t + 4 * (uint64_t)n), 4))
				return -1;
			to = t + (int64_t)v;
		} else if (sd_safe_read(&to, (const void *)(uintptr_t)(t + 8 * (uint64_t)n), 8)) {
			return -1;
		}
		if (*ntargets >= max)
			return -1;
		targets[(*ntargets)++] = to;
	}
	return 0;
}

/*
 * How many entries the table indexed by @idx has, from the bound check
 * before @before: cmp $N, %idx (or the register copied into it) then ja
 * (N + 1 entries) or jae (N); or the index made from a byte (movzbl: 256,
 * CPython's computed goto on its opcode); 0 when not found.
 */
static int table_size(const struct jt_insn *win, int before, ZydisRegister idx)
{
	ZydisRegister alias = ZYDIS_REGISTER_NONE;
	int jcc = -1;

	for (int i = before - 1; i >= 0; i--) {
		const struct jt_insn *x = &win[i];

		if (x->in.meta.category == ZYDIS_CATEGORY_UNCOND_BR ||
		    x->in.meta.category == ZYDIS_CATEGORY_RET)
			return 0;
		if (x->in.mnemonic == ZYDIS_MNEMONIC_JNBE || x->in.mnemonic == ZYDIS_MNEMONIC_JNB) {
			if (jcc < 0)
				jcc = i;
			continue;
		}
		/* mov %src, %idx: the bound may be checked on %src */
		if (alias == ZYDIS_REGISTER_NONE && x->in.mnemonic == ZYDIS_MNEMONIC_MOV &&
		    x->ops[0].type == ZYDIS_OPERAND_TYPE_REGISTER &&
		    x->ops[1].type == ZYDIS_OPERAND_TYPE_REGISTER &&
		    full(x->ops[0].reg.value) == idx) {
			alias = full(x->ops[1].reg.value);
			continue;
		}
		if (x->in.mnemonic == ZYDIS_MNEMONIC_CMP && jcc > i &&
		    x->ops[0].type == ZYDIS_OPERAND_TYPE_REGISTER &&
		    x->ops[1].type == ZYDIS_OPERAND_TYPE_IMMEDIATE &&
		    (full(x->ops[0].reg.value) == idx || full(x->ops[0].reg.value) == alias)) {
			int64_t n = (int64_t)x->ops[1].imm.value.u;

			if (n < 0 || n >= TABLE_MAX)
				return 0;
			return (int)n + (win[jcc].in.mnemonic == ZYDIS_MNEMONIC_JNBE ? 1 : 0);
		}
		/* a byte zero-extended into the index, after any check: 256 entries */
		if (jcc < 0 && x->in.mnemonic == ZYDIS_MNEMONIC_MOVZX &&
		    x->ops[0].type == ZYDIS_OPERAND_TYPE_REGISTER &&
		    full(x->ops[0].reg.value) == idx && x->ops[1].size == 8)
			return 256;
		/* the index changed between the check and the load: not this shape */
		if (writes(x, idx) && full(x->ops[0].reg.value) != alias)
			return 0;
	}
	return 0;
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

/* a target read from memory (jmp *mem, or the mov before jmp *%reg) at @win[@at] */
static int through_memory(const struct jt_insn *win, int at, const ZydisDecodedOperand *m,
			  uint64_t *targets, int *ntargets, int max)
{
	if (pointer_load(m))
		return 1;
	if (abs_table(m))
		return read_table((uint64_t)m->mem.disp.value, false,
				  table_size(win, at, full(m->mem.index)), targets, ntargets, max);
	return -1;
}

int sd_jt_targets(const struct jt_insn *win, int n, uint64_t *targets, int *ntargets, int max)
{
	const struct jt_insn *jmp = &win[n - 1];
	const ZydisDecodedOperand *op = &jmp->ops[0], *m;
	ZydisRegister x, b;
	int w1, w2, w3;

	if (op->type == ZYDIS_OPERAND_TYPE_MEMORY)
		return through_memory(win, n - 1, op, targets, ntargets, max);
	if (op->type != ZYDIS_OPERAND_TYPE_REGISTER)
		return -1;
	x = full(op->reg.value);
	w1 = last_writer(win, n - 1, x);
	if (w1 < 0)
		return -1;
	if (win[w1].in.mnemonic == ZYDIS_MNEMONIC_MOV && (m = mem_operand(&win[w1])))
		return through_memory(win, w1, m, targets, ntargets, max);
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
	return read_table(win[w3].addr + win[w3].in.length + (uint64_t)m->mem.disp.value, true,
			  table_size(win, w2, full(win[w2].ops[1].mem.index)), targets, ntargets,
			  max);
}
