// SPDX-License-Identifier: MIT
/*
 * vecuse.c - whether a handler's code can touch the vector state.
 *
 * The kernel never saves FPU state for a kprobe handler: kernel code does
 * not use it. A user-space handler may, so a jump-optimized probe saves the
 * vector registers in use around it, which costs more than the rest of the
 * hit. Most handlers (count, store a few words) are plain integer code;
 * this proves it by reading their machine code, so that they run without
 * that save even when nobody set SONDE_KPROBE_FLAG_NOFPU.
 *
 * The proof is conservative. Every instruction reachable from the entry
 * (both ways of each branch, into every direct call) must be of the base
 * integer set and name only general, flag or instruction-pointer registers,
 * visible or implied. Anything the scan cannot follow answers "may touch":
 * an indirect call or jump (a PLT stub, a switch table, a function pointer),
 * a breakpoint, an interrupt or system-call gate, code it cannot read or
 * decode, or more code than the budget.
 *
 * A `ret` ends a path only where it returns to the caller: the scan keeps
 * each path's stack height (pushes, pops, rsp arithmetic, a frame pointer
 * set from rsp) and refuses a `ret` at any other height, a write over the
 * return address, and a write through rsp at a height it lost track of
 * (push-and-ret, retpoline-style tricks). It does not follow pointers: a
 * write through some other register that happens to hit the return
 * address is beyond it, as is code that changes itself.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <Zydis/Zydis.h>

#include "arch/arch.h"
#include "common/safe_mem.h"

#define SCAN_MAX_INSNS	 4096 /* instructions decoded in all */
#define SCAN_MAX_PENDING 256  /* branch targets waiting */
#define SCAN_SEEN_SLOTS	 8192 /* instruction addresses already read: a power of 2 */

#define UNKNOWN INT32_MIN /* a stack height the scan lost track of */

/*
 * Where a path stands: its address, how many bytes it has pushed since the
 * function's entry (the return address is at h(%rsp)), and the height at
 * which it set its frame pointer (%rbp) from %rsp.
 */
struct at {
	uint64_t a;
	int32_t h, fp;
};

struct scan {
	struct at pending[SCAN_MAX_PENDING];
	int npending;
	struct at seen[SCAN_SEEN_SLOTS];
	int budget;
	uint64_t page; /* the page cached in bytes, or 1: none */
	bool page_ok;
	uint8_t bytes[4096];
};

/*
 * 1 when @p was seen already in the same state, 0 when not (marked now),
 * -1 when seen in another: the code's stack does not add up, give up
 */
static int seen(struct scan *s, const struct at *p)
{
	uint64_t h = (p->a * 0x9e3779b97f4a7c15ULL) >> 51; /* 13 bits */

	for (;; h = (h + 1) & (SCAN_SEEN_SLOTS - 1)) {
		struct at *e = &s->seen[h];

		if (e->a == p->a)
			return e->h == p->h && e->fp == p->fp ? 1 : -1;
		if (!e->a) {
			*e = *p;
			return 0;
		}
	}
}

static bool push(struct scan *s, uint64_t a, int32_t h, int32_t fp)
{
	if (s->npending == SCAN_MAX_PENDING)
		return false;
	s->pending[s->npending++] = (struct at){a, h, fp};
	return true;
}

/* the bytes at @a, as many as are readable up to 15 */
static size_t fetch(struct scan *s, uint64_t a, uint8_t *buf)
{
	size_t n = ZYDIS_MAX_INSTRUCTION_LENGTH;
	size_t off = a & 4095, to_page = 4096 - off;

	/* a page read once serves every instruction in it */
	if (s->page != a - off) {
		s->page = a - off;
		s->page_ok = !sd_safe_read(s->bytes, (const void *)(uintptr_t)s->page, 4096);
	}
	if (s->page_ok && to_page >= n) {
		memcpy(buf, s->bytes + off, n);
		return n;
	}
	if (!sd_safe_read(buf, (const void *)(uintptr_t)a, n))
		return n;
	/* the instruction may end at a page whose successor is unmapped */
	n = to_page < n ? to_page : n;
	return sd_safe_read(buf, (const void *)(uintptr_t)a, n) ? 0 : n;
}

static bool integer_ext(ZydisISAExt ext)
{
	switch (ext) {
	case ZYDIS_ISA_EXT_BASE:
	case ZYDIS_ISA_EXT_LONGMODE:
	case ZYDIS_ISA_EXT_BMI1:
	case ZYDIS_ISA_EXT_BMI2:
	case ZYDIS_ISA_EXT_LZCNT:
	case ZYDIS_ISA_EXT_MOVBE:
	case ZYDIS_ISA_EXT_ADOX_ADCX:
	case ZYDIS_ISA_EXT_PAUSE:
	case ZYDIS_ISA_EXT_CET: /* endbr64 */
		return true;
	default:
		return false;
	}
}

static bool integer_reg(ZydisRegister r)
{
	if (r == ZYDIS_REGISTER_NONE)
		return true;
	switch (ZydisRegisterGetClass(r)) {
	case ZYDIS_REGCLASS_GPR8:
	case ZYDIS_REGCLASS_GPR16:
	case ZYDIS_REGCLASS_GPR32:
	case ZYDIS_REGCLASS_GPR64:
	case ZYDIS_REGCLASS_FLAGS:
	case ZYDIS_REGCLASS_IP:
		return true;
	default:
		return false;
	}
}

/* an instruction that leaves the vector, x87, MMX and MXCSR state alone */
static bool integer_insn(const ZydisDecodedInstruction *in, const ZydisDecodedOperand *ops)
{
	if (!integer_ext(in->meta.isa_ext))
		return false;
	switch (in->meta.category) {
	case ZYDIS_CATEGORY_INTERRUPT: /* int n, int1, into: gates (int $0x80 a 32-bit syscall) */
	case ZYDIS_CATEGORY_SYSCALL:
	case ZYDIS_CATEGORY_SYSRET:
	case ZYDIS_CATEGORY_SYSTEM:
		return false;
	default:
		break;
	}
	switch (in->mnemonic) {
	case ZYDIS_MNEMONIC_FXSAVE:
	case ZYDIS_MNEMONIC_FXSAVE64:
	case ZYDIS_MNEMONIC_FXRSTOR:
	case ZYDIS_MNEMONIC_FXRSTOR64:
	case ZYDIS_MNEMONIC_INT3:
		return false;
	default:
		break;
	}
	for (int i = 0; i < in->operand_count; i++) {
		const ZydisDecodedOperand *op = &ops[i];

		if (op->type == ZYDIS_OPERAND_TYPE_REGISTER && !integer_reg(op->reg.value))
			return false;
		if (op->type == ZYDIS_OPERAND_TYPE_MEMORY &&
		    (!integer_reg(op->mem.base) || !integer_reg(op->mem.index)))
			return false;
	}
	return true;
}

/* the direct target of a branch, 0 for an indirect one */
static uint64_t direct_target(const ZydisDecodedInstruction *in, const ZydisDecodedOperand *ops,
			      uint64_t at)
{
	ZyanU64 to;

	if (in->operand_count_visible < 1 || ops[0].type != ZYDIS_OPERAND_TYPE_IMMEDIATE ||
	    !ops[0].imm.is_relative)
		return 0;
	if (!ZYAN_SUCCESS(ZydisCalcAbsoluteAddress(in, &ops[0], at, &to)))
		return 0;
	return to;
}

static bool is_reg(const ZydisDecodedOperand *op, ZydisRegister r)
{
	return op->type == ZYDIS_OPERAND_TYPE_REGISTER && op->reg.value == r;
}

/* whether @op writes bytes of the return address, at [0, 8) from the entry's %rsp */
static bool hits_return(const ZydisDecodedOperand *op, const struct at *p)
{
	int64_t at;

	if (op->mem.base == ZYDIS_REGISTER_RSP)
		at = (int64_t)op->mem.disp.value - p->h;
	else if (op->mem.base == ZYDIS_REGISTER_RBP && p->fp != UNKNOWN)
		at = (int64_t)op->mem.disp.value - p->fp;
	else
		return false; /* not followed: pointers in other registers */
	if (op->mem.index != ZYDIS_REGISTER_NONE)
		return true; /* an index into the frame: anywhere in it */
	return at < 8 && at + op->size / 8 > 0;
}

/*
 * The stack effects of @in on @p: false for what the scan refuses (a write
 * over the return address, or through %rsp where the height is unknown).
 */
static bool track_stack(const ZydisDecodedInstruction *in, const ZydisDecodedOperand *ops,
			struct at *p)
{
	int32_t width = in->operand_width / 8;
	bool rsp_done = false, rbp_done = false;

	for (int i = 0; i < in->operand_count_visible; i++) {
		const ZydisDecodedOperand *op = &ops[i];

		if (op->type != ZYDIS_OPERAND_TYPE_MEMORY ||
		    !(op->actions & ZYDIS_OPERAND_ACTION_MASK_WRITE))
			continue;
		if (op->mem.base == ZYDIS_REGISTER_RSP && p->h == UNKNOWN)
			return false;
		if (hits_return(op, p))
			return false;
	}
	switch (in->mnemonic) {
	case ZYDIS_MNEMONIC_PUSH:
	case ZYDIS_MNEMONIC_PUSHFQ:
		if (p->h != UNKNOWN)
			p->h += width;
		rsp_done = true;
		break;
	case ZYDIS_MNEMONIC_POP:
	case ZYDIS_MNEMONIC_POPFQ:
		if (p->h != UNKNOWN)
			p->h -= width;
		rsp_done = true;
		if (in->operand_count_visible && is_reg(&ops[0], ZYDIS_REGISTER_RSP))
			p->h = UNKNOWN;
		break;
	case ZYDIS_MNEMONIC_CALL: /* the callee gives back what it takes */
		rsp_done = rbp_done = true;
		break;
	case ZYDIS_MNEMONIC_LEAVE: /* mov %rbp, %rsp; pop %rbp */
		p->h = p->fp == UNKNOWN ? UNKNOWN : p->fp - 8;
		p->fp = UNKNOWN;
		rsp_done = rbp_done = true;
		break;
	case ZYDIS_MNEMONIC_SUB:
	case ZYDIS_MNEMONIC_ADD:
		if (is_reg(&ops[0], ZYDIS_REGISTER_RSP) &&
		    ops[1].type == ZYDIS_OPERAND_TYPE_IMMEDIATE) {
			int64_t v = ops[1].imm.value.s;

			if (p->h != UNKNOWN)
				p->h += (int32_t)(in->mnemonic == ZYDIS_MNEMONIC_SUB ? v : -v);
			rsp_done = true;
		}
		break;
	case ZYDIS_MNEMONIC_LEA:
		if (is_reg(&ops[0], ZYDIS_REGISTER_RSP) &&
		    ops[1].mem.index == ZYDIS_REGISTER_NONE) {
			int64_t disp = ops[1].mem.disp.value;

			if (ops[1].mem.base == ZYDIS_REGISTER_RSP && p->h != UNKNOWN)
				p->h -= (int32_t)disp;
			else if (ops[1].mem.base == ZYDIS_REGISTER_RBP && p->fp != UNKNOWN)
				p->h = p->fp - (int32_t)disp;
			else
				p->h = UNKNOWN;
			rsp_done = true;
		}
		break;
	case ZYDIS_MNEMONIC_MOV:
		if (is_reg(&ops[0], ZYDIS_REGISTER_RBP) && is_reg(&ops[1], ZYDIS_REGISTER_RSP)) {
			p->fp = p->h;
			rbp_done = true;
		} else if (is_reg(&ops[0], ZYDIS_REGISTER_RSP) &&
			   is_reg(&ops[1], ZYDIS_REGISTER_RBP)) {
			p->h = p->fp;
			rsp_done = true;
		}
		break;
	default:
		break;
	}
	/* anything else that writes %rsp or %rbp: their values are lost */
	for (int i = 0; i < in->operand_count; i++) {
		const ZydisDecodedOperand *op = &ops[i];

		if (op->type != ZYDIS_OPERAND_TYPE_REGISTER ||
		    !(op->actions & ZYDIS_OPERAND_ACTION_MASK_WRITE))
			continue;
		if (ZydisRegisterGetLargestEnclosing(ZYDIS_MACHINE_MODE_LONG_64, op->reg.value) ==
			ZYDIS_REGISTER_RSP &&
		    !rsp_done)
			p->h = UNKNOWN;
		if (ZydisRegisterGetLargestEnclosing(ZYDIS_MACHINE_MODE_LONG_64, op->reg.value) ==
			ZYDIS_REGISTER_RBP &&
		    !rbp_done)
			p->fp = UNKNOWN;
	}
	return true;
}

/* follow one straight run of code from @p; false when it may touch the state */
static bool scan_run(struct scan *s, const ZydisDecoder *d, struct at p)
{
	ZydisDecodedInstruction in;
	ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
	uint8_t buf[ZYDIS_MAX_INSTRUCTION_LENGTH];

	for (;;) {
		uint64_t to;
		size_t n;
		int was = seen(s, &p);

		if (was)
			return was > 0;
		if (--s->budget < 0)
			return false;
		n = fetch(s, p.a, buf);
		if (!n || !ZYAN_SUCCESS(ZydisDecoderDecodeFull(d, buf, n, &in, ops)))
			return false;
		if (!integer_insn(&in, ops))
			return false;
		switch (in.meta.category) {
		case ZYDIS_CATEGORY_RET:
			/* a near ret at the entry's height: back to the caller */
			return in.mnemonic == ZYDIS_MNEMONIC_RET &&
			       in.meta.branch_type == ZYDIS_BRANCH_TYPE_NEAR && p.h == 0 &&
			       track_stack(&in, ops, &p);
		case ZYDIS_CATEGORY_UNCOND_BR:
			to = direct_target(&in, ops, p.a);
			if (!to || !track_stack(&in, ops, &p))
				return false;
			p.a = to;
			continue;
		case ZYDIS_CATEGORY_COND_BR:
			to = direct_target(&in, ops, p.a);
			if (!to || !track_stack(&in, ops, &p) || !push(s, to, p.h, p.fp))
				return false;
			break;
		case ZYDIS_CATEGORY_CALL:
			/* the callee from its own entry; this path goes on after the call */
			to = direct_target(&in, ops, p.a);
			if (!to || !track_stack(&in, ops, &p) || !push(s, to, 0, UNKNOWN))
				return false;
			break;
		default:
			if (in.meta.branch_type != ZYDIS_BRANCH_TYPE_NONE)
				return false; /* far transfers, loops we did not expect */
			if (in.mnemonic == ZYDIS_MNEMONIC_UD2 || in.mnemonic == ZYDIS_MNEMONIC_HLT)
				return true; /* ends the path (__builtin_trap) */
			if (!track_stack(&in, ops, &p))
				return false;
			break;
		}
		p.a += in.length;
	}
}

bool sd_arch_code_vec_free(uint64_t fn)
{
	struct scan *s;
	ZydisDecoder d;
	bool ok = true;

	if (!fn)
		return true; /* no handler: nothing runs */
	s = calloc(1, sizeof(*s));
	if (!s)
		return false;
	ZydisDecoderInit(&d, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
	s->budget = SCAN_MAX_INSNS;
	s->page = 1;
	s->pending[s->npending++] = (struct at){fn, 0, UNKNOWN};
	while (ok && s->npending)
		ok = scan_run(s, &d, s->pending[--s->npending]);
	free(s);
	return ok;
}
