// SPDX-License-Identifier: MIT
/*
 * insn.c - decoding, out-of-line copies and emulation of x86-64
 * instructions under a probe, on Zydis.
 *
 * A probed instruction is displaced by the breakpoint byte, so it must run
 * somewhere else. Like the kernel's kprobes (and unlike uprobes, which use a
 * per-thread slot), each probe has its own slot with constant contents, so
 * any number of threads may run it at once:
 *
 *   slot:  <instruction, rip-relative disp32 re-aimed at the same target>
 *          movb $0, %fs:busy        ; this thread has left the slot
 *          jmp  <original + len>    ; or int3 when a post_handler must run
 *
 * Slots are allocated within +-1 GiB of the probe, so a rip-relative
 * operand keeps reaching its target by adjusting the displacement alone.
 * Instructions whose effect depends on where they run (relative jumps and
 * calls, jcc, loop, jrcxz) or that never fall through (ret, indirect jmp and
 * call) are emulated on the saved registers instead, as uprobes do.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <Zydis/Zydis.h>

#define SD_LOG_PREFIX "insn"
#include "arch/arch.h"
#include "common/compiler.h"
#include "common/log.h"
#include "common/safe_mem.h"

static void decoder_init(ZydisDecoder *d)
{
	ZydisDecoderInit(d, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
}

unsigned int sd_arch_insn_len(const void *code, size_t avail)
{
	ZydisDecoder d;
	ZydisDecodedInstruction in;

	decoder_init(&d);
	if (!ZYAN_SUCCESS(ZydisDecoderDecodeInstruction(&d, NULL, code, avail, &in)))
		return 0;
	return in.length;
}

/* instructions a breakpoint cannot displace, with the reason given to the user */
static const char *unprobeable(const ZydisDecodedInstruction *in)
{
	if (in->attributes & ZYDIS_ATTRIB_IS_PRIVILEGED)
		return "privileged instruction";
	if (in->meta.branch_type == ZYDIS_BRANCH_TYPE_FAR)
		return "far control transfer";
	switch (in->mnemonic) {
	case ZYDIS_MNEMONIC_INT3:
		return "already a breakpoint (int3)";
	case ZYDIS_MNEMONIC_INT:
	case ZYDIS_MNEMONIC_INT1:
	case ZYDIS_MNEMONIC_INTO:
		return "software interrupt";
	case ZYDIS_MNEMONIC_UD0:
	case ZYDIS_MNEMONIC_UD1:
	case ZYDIS_MNEMONIC_UD2:
		return "undefined-instruction trap (ud)";
	case ZYDIS_MNEMONIC_XBEGIN:
	case ZYDIS_MNEMONIC_XEND:
	case ZYDIS_MNEMONIC_XABORT:
		return "transactional memory instruction";
	case ZYDIS_MNEMONIC_IRET:
	case ZYDIS_MNEMONIC_IRETD:
	case ZYDIS_MNEMONIC_IRETQ:
	case ZYDIS_MNEMONIC_SYSENTER:
	case ZYDIS_MNEMONIC_SYSEXIT:
	case ZYDIS_MNEMONIC_SYSRET:
		return "privileged control transfer";
	default:
		return NULL;
	}
}

static int classify(const ZydisDecodedInstruction *in, const ZydisDecodedOperand *ops,
		    struct sd_insn *insn)
{
	int nvis = in->operand_count_visible;

	insn->kind = SD_INSN_PLAIN;
	insn->riprel = -1;
	insn->addr32 = in->address_width == 32;
	for (int i = 0; i < in->operand_count; i++) {
		if (ops[i].type == ZYDIS_OPERAND_TYPE_MEMORY &&
		    ops[i].mem.base == ZYDIS_REGISTER_RIP) {
			if (in->raw.disp.size != 32)
				return -ENOTSUP;
			insn->riprel = (int8_t)in->raw.disp.offset;
		}
	}

	switch (in->mnemonic) {
	case ZYDIS_MNEMONIC_JMP:
	case ZYDIS_MNEMONIC_CALL: {
		bool call = in->mnemonic == ZYDIS_MNEMONIC_CALL;

		if (nvis >= 1 && ops[0].type == ZYDIS_OPERAND_TYPE_IMMEDIATE &&
		    ops[0].imm.is_relative) {
			insn->kind = call ? SD_INSN_CALL : SD_INSN_JMP;
			insn->target = insn->addr + in->length + ops[0].imm.value.s;
		} else {
			insn->kind = call ? SD_INSN_CALL_IND : SD_INSN_JMP_IND;
			if (in->operand_width != 64)
				return -ENOTSUP;
			if (nvis >= 1 && ops[0].type == ZYDIS_OPERAND_TYPE_MEMORY &&
			    ops[0].mem.segment == ZYDIS_REGISTER_GS)
				return -ENOTSUP;
		}
		return 0;
	}
	case ZYDIS_MNEMONIC_RET:
		insn->kind = SD_INSN_RET;
		if (nvis >= 1 && ops[0].type == ZYDIS_OPERAND_TYPE_IMMEDIATE)
			insn->ret_pop = (uint16_t)ops[0].imm.value.u;
		return 0;
	case ZYDIS_MNEMONIC_LOOP:
	case ZYDIS_MNEMONIC_LOOPE:
	case ZYDIS_MNEMONIC_LOOPNE:
		insn->kind = SD_INSN_LOOP;
		insn->cond = in->mnemonic == ZYDIS_MNEMONIC_LOOP    ? 0
			     : in->mnemonic == ZYDIS_MNEMONIC_LOOPE ? 1
								    : 2;
		insn->target = insn->addr + in->length + ops[0].imm.value.s;
		return 0;
	case ZYDIS_MNEMONIC_JRCXZ:
	case ZYDIS_MNEMONIC_JECXZ:
	case ZYDIS_MNEMONIC_JCXZ:
		insn->kind = SD_INSN_JRCXZ;
		insn->addr32 = in->mnemonic != ZYDIS_MNEMONIC_JRCXZ;
		insn->target = insn->addr + in->length + ops[0].imm.value.s;
		return 0;
	default:
		break;
	}
	if (in->meta.category == ZYDIS_CATEGORY_COND_BR) {
		insn->kind = SD_INSN_JCC;
		insn->cond = in->opcode & 0xf;
		insn->target = insn->addr + in->length + ops[0].imm.value.s;
		return 0;
	}
	return 0;
}

int sd_arch_insn_decode(const void *code, size_t avail, uint64_t addr, struct sd_insn *insn)
{
	ZydisDecoder d;
	ZydisDecodedInstruction in;
	ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
	const char *why;
	int err;

	memset(insn, 0, sizeof(*insn));
	decoder_init(&d);
	if (!ZYAN_SUCCESS(ZydisDecoderDecodeFull(&d, code, avail, &in, ops)))
		return sd_error(-EILSEQ, "0x%lx: bytes %02x %02x %02x are not a valid instruction",
				(unsigned long)addr, ((const uint8_t *)code)[0],
				avail > 1 ? ((const uint8_t *)code)[1] : 0,
				avail > 2 ? ((const uint8_t *)code)[2] : 0);
	insn->addr = addr;
	insn->len = in.length;
	memcpy(insn->bytes, code, in.length);

	why = unprobeable(&in);
	if (why)
		return sd_error(-ENOTSUP, "0x%lx: cannot probe this instruction: %s",
				(unsigned long)addr, why);
	err = classify(&in, ops, insn);
	if (err)
		return sd_error(err,
				"0x%lx: cannot probe this instruction: unsupported operand form",
				(unsigned long)addr);
	return 0;
}

int sd_arch_insn_boundary(const void *code, size_t size, uint64_t func, uint64_t addr,
			  const char *what)
{
	ZydisDecoder d;
	ZydisDecodedInstruction in;
	uint64_t pc = func, prev = func;
	size_t off = 0;

	decoder_init(&d);
	while (pc < addr && off < size) {
		if (!ZYAN_SUCCESS(ZydisDecoderDecodeInstruction(
			&d, NULL, (const uint8_t *)code + off, size - off, &in)))
			return sd_error(-EILSEQ,
					"%s+0x%lx: cannot decode the function up to there "
					"(bad instruction at +0x%lx)",
					what, (unsigned long)(addr - func), (unsigned long)off);
		prev = pc;
		pc += in.length;
		off += in.length;
	}
	if (pc == addr)
		return 0;
	return sd_error(-EILSEQ,
			"%s+0x%lx: not an instruction boundary (instructions start at +0x%lx and "
			"+0x%lx)",
			what, (unsigned long)(addr - func), (unsigned long)(prev - func),
			(unsigned long)(pc - func));
}

/* ---- out-of-line slots ---------------------------------------------------- */

static int put_rel32(uint8_t *p, uint64_t from_end, uint64_t to)
{
	int64_t rel = (int64_t)(to - from_end);

	if (rel != (int32_t)rel)
		return -ERANGE;
	int32_t r = (int32_t)rel;
	memcpy(p, &r, 4);
	return 0;
}

int sd_arch_xol_build(const struct sd_insn *insn, uint64_t slot, const struct sd_xol_tail *tail,
		      uint8_t *buf)
{
	int n = insn->len;

	memcpy(buf, insn->bytes, insn->len);
	if (insn->riprel >= 0) {
		int32_t disp;

		memcpy(&disp, insn->bytes + insn->riprel, 4);
		uint64_t target = insn->addr + insn->len + (int64_t)disp;
		if (put_rel32(buf + insn->riprel, slot + insn->len, target))
			return sd_error(-ERANGE,
					"0x%lx: out-of-line slot too far from the data the "
					"instruction addresses",
					(unsigned long)insn->addr);
	}
	if (tail->end == SD_XOL_TRAP) {
		buf[n++] = SD_ARCH_BP_INSN;
		return n;
	}
	if (tail->end == SD_XOL_EXIT) {
		/* jmp *0(%rip), then the stub's address */
		memcpy(buf + n, "\xff\x25\x00\x00\x00\x00", 6);
		n += 6;
		memcpy(buf + n, &tail->exit_stub, 8);
		return n + 8;
	}
	buf[n++] = 0xe9;
	if (put_rel32(buf + n, slot + n + 4, insn->addr + insn->len))
		return sd_error(-ERANGE, "0x%lx: out-of-line slot too far to jump back",
				(unsigned long)insn->addr);
	n += 4;
	return n;
}

int sd_arch_xol_exit_stub(int32_t active_tls_off, int32_t resume_tls_off, uint8_t *buf)
{
	int n = 0;

	/* movb $0, %fs:active_tls_off */
	memcpy(buf + n, "\x64\xc6\x04\x25", 4);
	n += 4;
	memcpy(buf + n, &active_tls_off, 4);
	n += 4;
	buf[n++] = 0x00;
	/* jmp *%fs:resume_tls_off */
	memcpy(buf + n, "\x64\xff\x24\x25", 4);
	n += 4;
	memcpy(buf + n, &resume_tls_off, 4);
	n += 4;
	return n;
}

uint64_t sd_arch_xol_trap_addr(const struct sd_insn *insn, uint64_t slot)
{
	return slot + insn->len;
}

/* ---- emulation (signal context: no libc) ---------------------------------- */

static bool cond_true(unsigned int cc, uint64_t fl)
{
	bool cf = fl & 0x1, pf = fl & 0x4, zf = fl & 0x40, sf = fl & 0x80, of = fl & 0x800;
	bool r;

	switch (cc >> 1) {
	case 0:
		r = of;
		break; /* jo */
	case 1:
		r = cf;
		break; /* jb */
	case 2:
		r = zf;
		break; /* je */
	case 3:
		r = cf || zf;
		break; /* jbe */
	case 4:
		r = sf;
		break; /* js */
	case 5:
		r = pf;
		break; /* jp */
	case 6:
		r = sf != of;
		break; /* jl */
	default:
		r = zf || sf != of;
		break; /* jle */
	}
	return (cc & 1) ? !r : r;
}

static uint64_t fs_base(void)
{
	uint64_t v;

	/* glibc keeps the thread pointer's own value at %fs:0 */
	__asm__("mov %%fs:0, %0" : "=r"(v));
	return v;
}

/*
 * The stack is accessed directly: the instruction itself would have pushed or
 * popped there, so a fault here is the fault the program would have taken.
 */
static int push64(struct sonde_regs *regs, uint64_t v)
{
	regs->sp -= 8;
	*(volatile uint64_t *)regs->sp = v;
	return 0;
}

static void fill_context(ZydisRegisterContext *ctx, const struct sonde_regs *r)
{
	static const ZydisRegister r64[16] = {
	    ZYDIS_REGISTER_RAX, ZYDIS_REGISTER_RCX, ZYDIS_REGISTER_RDX, ZYDIS_REGISTER_RBX,
	    ZYDIS_REGISTER_RSP, ZYDIS_REGISTER_RBP, ZYDIS_REGISTER_RSI, ZYDIS_REGISTER_RDI,
	    ZYDIS_REGISTER_R8,	ZYDIS_REGISTER_R9,  ZYDIS_REGISTER_R10, ZYDIS_REGISTER_R11,
	    ZYDIS_REGISTER_R12, ZYDIS_REGISTER_R13, ZYDIS_REGISTER_R14, ZYDIS_REGISTER_R15};
	static const ZydisRegister r32[16] = {
	    ZYDIS_REGISTER_EAX,	 ZYDIS_REGISTER_ECX,  ZYDIS_REGISTER_EDX,  ZYDIS_REGISTER_EBX,
	    ZYDIS_REGISTER_ESP,	 ZYDIS_REGISTER_EBP,  ZYDIS_REGISTER_ESI,  ZYDIS_REGISTER_EDI,
	    ZYDIS_REGISTER_R8D,	 ZYDIS_REGISTER_R9D,  ZYDIS_REGISTER_R10D, ZYDIS_REGISTER_R11D,
	    ZYDIS_REGISTER_R12D, ZYDIS_REGISTER_R13D, ZYDIS_REGISTER_R14D, ZYDIS_REGISTER_R15D};
	const uint64_t v[16] = {r->ax, r->cx, r->dx,  r->bx,  r->sp,  r->bp,  r->si,  r->di,
				r->r8, r->r9, r->r10, r->r11, r->r12, r->r13, r->r14, r->r15};

	for (int i = 0; i < 16; i++) {
		ctx->values[r64[i]] = v[i];
		ctx->values[r32[i]] = (uint32_t)v[i];
	}
}

/* destination of an indirect jmp/call: decode again, evaluate the operand */
static int indirect_target(const struct sd_insn *insn, const struct sonde_regs *regs,
			   uint64_t *dest)
{
	ZydisDecoder d;
	ZydisDecodedInstruction in;
	ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
	ZydisRegisterContext ctx;
	uint64_t ea;

	decoder_init(&d);
	if (!ZYAN_SUCCESS(ZydisDecoderDecodeFull(&d, insn->bytes, insn->len, &in, ops)))
		return -EFAULT;
	fill_context(&ctx, regs);
	if (ops[0].type == ZYDIS_OPERAND_TYPE_REGISTER) {
		*dest = ctx.values[ops[0].reg.value];
		return 0;
	}
	if (ops[0].type != ZYDIS_OPERAND_TYPE_MEMORY)
		return -EFAULT;
	if (!ZYAN_SUCCESS(ZydisCalcAbsoluteAddressEx(&in, &ops[0], insn->addr, &ctx, &ea)))
		return -EFAULT;
	if (ops[0].mem.segment == ZYDIS_REGISTER_FS)
		ea += fs_base();
	return sd_safe_read(dest, (const void *)ea, 8);
}

int sd_arch_emulate(const struct sd_insn *insn, struct sonde_regs *regs)
{
	uint64_t next = insn->addr + insn->len, dest, cx;

	switch (insn->kind) {
	case SD_INSN_JMP:
		regs->ip = insn->target;
		return 0;
	case SD_INSN_CALL:
		if (push64(regs, next))
			return -EFAULT;
		regs->ip = insn->target;
		return 0;
	case SD_INSN_JCC:
		regs->ip = cond_true(insn->cond, regs->flags) ? insn->target : next;
		return 0;
	case SD_INSN_LOOP:
		/* loop decrements without touching the flags */
		if (insn->addr32) {
			cx = (uint32_t)(regs->cx - 1);
			regs->cx = cx;
		} else {
			cx = --regs->cx;
		}
		bool zf = regs->flags & 0x40;
		bool take = cx != 0 && (insn->cond == 0 || (insn->cond == 1 ? zf : !zf));
		regs->ip = take ? insn->target : next;
		return 0;
	case SD_INSN_JRCXZ:
		cx = insn->addr32 ? (uint32_t)regs->cx : regs->cx;
		regs->ip = cx == 0 ? insn->target : next;
		return 0;
	case SD_INSN_RET:
		dest = *(volatile uint64_t *)regs->sp;
		regs->sp += 8 + insn->ret_pop;
		regs->ip = dest;
		return 0;
	case SD_INSN_JMP_IND:
	case SD_INSN_CALL_IND:
		if (indirect_target(insn, regs, &dest))
			return -EFAULT;
		if (insn->kind == SD_INSN_CALL_IND && push64(regs, next))
			return -EFAULT;
		regs->ip = dest;
		return 0;
	default:
		return -EINVAL;
	}
}
