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
 * a breakpoint, code it cannot read or decode, or more code than the budget.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include <Zydis/Zydis.h>

#include "arch/arch.h"
#include "common/safe_mem.h"

#define SCAN_MAX_INSNS	 4096 /* instructions decoded in all */
#define SCAN_MAX_PENDING 256  /* branch targets waiting */
#define SCAN_SEEN_SLOTS	 8192 /* instruction addresses already read: a power of 2 */

struct scan {
	uint64_t pending[SCAN_MAX_PENDING];
	int npending;
	uint64_t seen[SCAN_SEEN_SLOTS];
	int budget;
};

/* true when @a was seen already; marks it */
static bool seen(struct scan *s, uint64_t a)
{
	uint64_t h = (a * 0x9e3779b97f4a7c15ULL) >> 51; /* 13 bits */

	for (;; h = (h + 1) & (SCAN_SEEN_SLOTS - 1)) {
		if (s->seen[h] == a)
			return true;
		if (!s->seen[h]) {
			s->seen[h] = a;
			return false;
		}
	}
}

static bool push(struct scan *s, uint64_t a)
{
	if (s->npending == SCAN_MAX_PENDING)
		return false;
	s->pending[s->npending++] = a;
	return true;
}

/* the bytes at @a, as many as are readable up to 15 */
static size_t fetch(uint64_t a, uint8_t *buf)
{
	size_t n = ZYDIS_MAX_INSTRUCTION_LENGTH;
	size_t to_page = 4096 - (a & 4095);

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

/* follow one straight run of code from @a; false when it may touch the state */
static bool scan_run(struct scan *s, const ZydisDecoder *d, uint64_t a)
{
	ZydisDecodedInstruction in;
	ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
	uint8_t buf[ZYDIS_MAX_INSTRUCTION_LENGTH];

	for (;;) {
		uint64_t to;
		size_t n;

		if (seen(s, a))
			return true;
		if (--s->budget < 0)
			return false;
		n = fetch(a, buf);
		if (!n || !ZYAN_SUCCESS(ZydisDecoderDecodeFull(d, buf, n, &in, ops)))
			return false;
		if (!integer_insn(&in, ops))
			return false;
		switch (in.meta.category) {
		case ZYDIS_CATEGORY_RET:
			return true;
		case ZYDIS_CATEGORY_UNCOND_BR:
			to = direct_target(&in, ops, a);
			if (!to)
				return false;
			a = to;
			continue;
		case ZYDIS_CATEGORY_COND_BR:
		case ZYDIS_CATEGORY_CALL:
			to = direct_target(&in, ops, a);
			if (!to || !push(s, to))
				return false;
			break;
		default:
			if (in.meta.branch_type != ZYDIS_BRANCH_TYPE_NONE)
				return false; /* far transfers, loops we did not expect */
			if (in.mnemonic == ZYDIS_MNEMONIC_UD2 || in.mnemonic == ZYDIS_MNEMONIC_HLT)
				return true; /* ends the path (__builtin_trap) */
			break;
		}
		a += in.length;
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
	s->pending[s->npending++] = fn;
	while (ok && s->npending)
		ok = scan_run(s, &d, s->pending[--s->npending]);
	free(s);
	return ok;
}
