// SPDX-License-Identifier: MIT
/*
 * optimize.c - turning a breakpoint probe into a jump (the kernel's
 * optprobes, arch/x86/kernel/kprobes/opt.c).
 *
 * The 5-byte `jmp rel32` written over the probe replaces one or more whole
 * instructions (the "region"). That is safe only when, as the kernel
 * checks:
 *   - the region lies inside one function;
 *   - no direct branch of the function (or of its .cold part) lands inside
 *     the region except at its first byte;
 *   - the function has no indirect jump (a jump table could land there),
 *     but those whose targets are known (jumptable.c): a switch's table,
 *     whose entries are checked as direct branches are, and at a
 *     function's entry a tail call through a pointer, which lands on a
 *     function's first byte;
 *   - every instruction of the region can run elsewhere: no loop/jrcxz
 *     (rel8 only), nothing unprobeable, and a call only as the region's
 *     last instruction: it is emulated (its return address pushed, the
 *     callee jumped to), and the callee returns to the original code right
 *     after the region, never into the detour (which may be freed, and
 *     which no unwinder knows). `sub $8,%rsp; call f` and `push %rbx;
 *     call f` open many functions.
 *
 * The detour, allocated within +-1 GiB, for a lite site at a function's
 * first instruction (no vector state, most sites):
 *
 *     <push the registers: struct sonde_regs>
 *     call  *<sd_optprobe_handler>(index, regs)
 *     <pop them>
 *     jmp   main
 *   ret_nested:                   (a handler's own hit: sent here)
 *     <pop them>
 *     jmp   nested
 *     .quad <handler>, <common trampoline>
 *
 * and elsewhere, through a common trampoline (optprobe_tramp.S):
 *
 *     lea   -128(%rsp), %rsp      step over the red zone
 *     call  *<common trampoline>  save registers, run the handlers
 *     nopl  index(%rax)           which optimized site this is
 *     lea   128(%rsp), %rsp
 *     jmp   main
 *   ret_nested:
 *     lea   128(%rsp), %rsp
 *     jmp   nested
 *
 * The copies of the region are made once per site (and its bytes), in
 * memory never freed:
 *
 *   main:
 *     movb  $SLOT, %fs:active     the thread runs the region marked: as in
 *                                 a slot if it may fault (may_fault), else
 *                                 as the handler left it
 *     <the region's instructions, relocated; before each way out,
 *      movb $0, %fs:active>
 *   nested:                       (it keeps the mark of what it is in)
 *     <the region's instructions, relocated, with plain jumps>
 *     jmp   <probe + region length>
 *     .quad <a call's return address>
 *
 * So a thread is marked from its handler's first store until it is out of
 * the region's copy: sd_sync_threads() waits for it, and the optimizer
 * writes no jump over the place it is on its way back to; and the detour
 * it left is free to go.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <Zydis/Zydis.h>

#define SD_LOG_PREFIX "optimize"
#include "arch/arch.h"
#include "common/log.h"
#include "insn_len.h"
#include "jumptable.h"

#define MAX_TARGETS 4096

static void decoder_init(ZydisDecoder *d)
{
	ZydisDecoderInit(d, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
}

#define WINDOW 16

/* the instructions before an indirect jmp, in order (a ring, under sd_probe_mutex) */
static struct jt_insn ring[WINDOW], window[WINDOW];

/*
 * Walk [base, base+len) of original code; record branch targets in
 * @targets (direct ones, and the entries of jump tables) and note
 * indirect jumps whose targets are not known (@indirect) or tail calls
 * through a pointer (@tailcall). Returns -EILSEQ if it does not decode.
 */
static int scan(const uint8_t *code, uint64_t base, size_t len, uint64_t *targets, int *ntargets,
		bool *indirect, bool *tailcall)
{
	ZydisDecoder d;
	size_t off = 0;
	unsigned int k = 0;

	decoder_init(&d);
	while (off < len) {
		struct jt_insn *x = &ring[k % WINDOW];
		ZydisDecodedInstruction in;
		ZydisDecodedOperand *ops = x->ops;

		if (!ZYAN_SUCCESS(ZydisDecoderDecodeFull(&d, code + off, len - off, &x->in, ops)))
			return -EILSEQ;
		x->addr = base + off;
		in = x->in;
		k++;
		if (in.meta.category == ZYDIS_CATEGORY_UNCOND_BR ||
		    in.meta.category == ZYDIS_CATEGORY_COND_BR ||
		    in.mnemonic == ZYDIS_MNEMONIC_CALL || in.mnemonic == ZYDIS_MNEMONIC_LOOP ||
		    in.mnemonic == ZYDIS_MNEMONIC_LOOPE || in.mnemonic == ZYDIS_MNEMONIC_LOOPNE ||
		    in.mnemonic == ZYDIS_MNEMONIC_JRCXZ || in.mnemonic == ZYDIS_MNEMONIC_JECXZ ||
		    in.mnemonic == ZYDIS_MNEMONIC_XBEGIN /* its abort handler */) {
			if (in.operand_count_visible >= 1 &&
			    ops[0].type == ZYDIS_OPERAND_TYPE_IMMEDIATE && ops[0].imm.is_relative) {
				if (*ntargets < MAX_TARGETS)
					targets[(*ntargets)++] =
					    base + off + in.length + ops[0].imm.value.s;
				else
					*indirect = true; /* too many to check: be safe */
			} else if (in.mnemonic == ZYDIS_MNEMONIC_JMP) {
				int n = k < WINDOW ? (int)k : WINDOW, r;

				for (int i = 0; i < n; i++)
					window[i] =
					    ring[(k - (unsigned int)n + (unsigned int)i) % WINDOW];
				r = sd_jt_targets(window, n, targets, ntargets, MAX_TARGETS);
				if (r < 0)
					*indirect = true;
				else if (r > 0)
					*tailcall = true;
			}
		}
		off += in.length;
	}
	return 0;
}

/*
 * Every direct branch target in [base, base+len): linear decoding, resyncing
 * one byte at a time over bytes that do not decode (data, padding). The
 * whole of an object is swept once, so lengths come from insn_len.c, ten
 * times faster than Zydis and checked against it (test_insn_len).
 */
void sd_arch_scan_targets(const uint8_t *code, uint64_t base, size_t len, struct sd_targets *t)
{
	size_t off = 0;

	while (off < len) {
		struct sd_insn_len in;
		uint64_t to;

		if (sd_insn_len(code + off, len - off, &in)) {
			off++;
			continue;
		}
		to = base + off + in.len + (uint64_t)in.rel;
		if (in.branch && to >= t->start && to < t->end)
			t->bits[(to - t->start) / 64] |= 1ULL << ((to - t->start) % 64);
		off += in.len;
	}
}

/* a branch target in (lo, hi) */
static bool target_between(const struct sd_targets *t, uint64_t lo, uint64_t hi)
{
	for (uint64_t a = lo + 1; a < hi; a++)
		if (a >= t->start && a < t->end &&
		    (t->bits[(a - t->start) / 64] >> ((a - t->start) % 64) & 1))
			return true;
	return false;
}

int sd_arch_opt_analyze(const struct sd_opt_code *code, int ncode, uint64_t addr,
			const struct sd_targets *module_targets, struct sd_opt_region *r,
			const char **why)
{
	static uint64_t targets[MAX_TARGETS];
	const struct sd_opt_code *fn = &code[0];
	bool indirect = false, tailcall = false;
	int ntargets = 0, err;
	uint64_t pc;

	memset(r, 0, sizeof(*r));
	r->addr = addr;
	for (int i = 0; i < ncode; i++) {
		err = scan(code[i].bytes, code[i].start, code[i].len, targets, &ntargets, &indirect,
			   &tailcall);
		if (err) {
			*why = "the function does not decode";
			return err;
		}
	}
	/* (a pointer may hold a label of this function: known to land on byte 0 only at entry) */
	if (indirect || (tailcall && addr != fn->start)) {
		*why = "the function has an indirect jump";
		return -EOPNOTSUPP;
	}
	/* the region: whole instructions from addr, at least a jump's worth */
	pc = addr;
	while (pc < addr + SD_OPT_JUMP_LEN) {
		struct sd_insn *in;

		if (r->ninsn == SD_OPT_MAX_INSNS || pc >= fn->start + fn->len) {
			*why = "the region would leave the function";
			return -EOPNOTSUPP;
		}
		in = &r->insn[r->ninsn];
		err = sd_arch_insn_decode(fn->bytes + (pc - fn->start), fn->start + fn->len - pc,
					  pc, in);
		if (err) {
			*why = "an instruction of the region cannot be probed";
			return -EOPNOTSUPP;
		}
		switch (in->kind) {
		case SD_INSN_CALL:
			/* the last one: the callee returns to the code after the region */
			if (pc + in->len >= addr + SD_OPT_JUMP_LEN)
				break;
			*why = "a call in the region, not its last instruction";
			return -EOPNOTSUPP;
		case SD_INSN_CALL_IND:
			*why = "an indirect call in the region";
			return -EOPNOTSUPP;
		case SD_INSN_JMP_IND:
			/* (copied, it would leave the detour with the thread still marked) */
			*why = "an indirect jump in the region";
			return -EOPNOTSUPP;
		case SD_INSN_LOOP:
		case SD_INSN_JRCXZ:
			*why = "a loop/jrcxz in the region";
			return -EOPNOTSUPP;
		default:
			break;
		}
		r->ninsn++;
		pc += in->len;
	}
	r->len = (unsigned int)(pc - addr);
	if (pc > fn->start + fn->len) {
		*why = "the region would leave the function";
		return -EOPNOTSUPP;
	}
	for (int i = 0; i < ntargets; i++) {
		if (targets[i] > addr && targets[i] < addr + r->len) {
			*why = "a branch of the function lands inside the region";
			return -EOPNOTSUPP;
		}
	}
	/* other functions may jump into this one (glibc's multi-entry assembly) */
	if (module_targets && target_between(module_targets, addr, addr + r->len)) {
		*why = "a branch elsewhere in the object lands inside the region";
		return -EOPNOTSUPP;
	}
	return 0;
}

static int rel32(uint8_t *p, uint64_t from_end, uint64_t to)
{
	int64_t d = (int64_t)(to - from_end);
	int32_t v = (int32_t)d;

	if (d != v)
		return -ERANGE;
	memcpy(p, &v, 4);
	return 0;
}

struct emit {
	uint8_t *buf;
	size_t n, cap;
	uint64_t base; /* runtime address of buf[0] */
	int err;
};

static void put(struct emit *e, const void *p, size_t len)
{
	if (e->n + len > e->cap) {
		e->err = -ENOSPC;
		return;
	}
	memcpy(e->buf + e->n, p, len);
	e->n += len;
}

static void put_rel32(struct emit *e, uint64_t to)
{
	uint8_t b[4] = {0};

	if (rel32(b, e->base + e->n + 4, to))
		e->err = -ERANGE;
	put(e, b, 4);
}

static void put_insn_copy(struct emit *e, const struct sd_insn *in)
{
	size_t at = e->n;

	put(e, in->bytes, in->len);
	if (e->err || in->riprel < 0)
		return;
	{
		int32_t disp;

		memcpy(&disp, in->bytes + in->riprel, 4);
		if (rel32(e->buf + at + in->riprel, e->base + at + in->len,
			  in->addr + in->len + (int64_t)disp))
			e->err = -ERANGE;
	}
}

static void put_movb_active(struct emit *e, int32_t active_tls_off, uint8_t v)
{
	put(e, "\x64\xc6\x04\x25", 4); /* movb $v, %fs:active */
	put(e, &active_tls_off, 4);
	put(e, &v, 1);
}

static void put_jmp(struct emit *e, uint64_t to)
{
	put(e, "\xe9", 1);
	put_rel32(e, to);
}

/*
 * The region once: @mark, the main copy (every way out clears `active`
 * first, in this memory never freed), else the nested one (plain jumps).
 * @ret_at: where a call's `pushq ret(%rip)` displacement is, to fill.
 */
static void put_region(struct emit *e, const struct sd_opt_region *r, int32_t active_tls_off,
		       bool mark, size_t *ret_at, int *nret)
{
	uint64_t taken[SD_OPT_MAX_INSNS];
	size_t taken_at[SD_OPT_MAX_INSNS];
	int ntaken = 0;

	for (int i = 0; i < r->ninsn && !e->err; i++) {
		const struct sd_insn *in = &r->insn[i];

		switch (in->kind) {
		case SD_INSN_JMP:
			if (mark)
				put_movb_active(e, active_tls_off, 0);
			put_jmp(e, in->target);
			break;
		case SD_INSN_CALL:
			/*
			 * pushq ret(%rip), the address after the region (only a
			 * last instruction can be a call), filled later; then
			 * to the callee, which returns to the original code
			 */
			put(e, "\xff\x35", 2);
			ret_at[(*nret)++] = e->n;
			put(e, "\0\0\0\0", 4);
			if (mark)
				put_movb_active(e, active_tls_off, 0);
			put_jmp(e, in->target);
			break;
		case SD_INSN_JCC:
			put(e, "\x0f", 1);
			put(e, (uint8_t[]){0x80 | in->cond}, 1);
			if (mark) {
				taken_at[ntaken] = e->n;
				taken[ntaken++] = in->target;
				put(e, "\0\0\0\0", 4); /* to its exit, below */
			} else {
				put_rel32(e, in->target);
			}
			break;
		case SD_INSN_RET:
			/* (movb leaves the flags alone; a ret needs nothing relocated) */
			if (mark)
				put_movb_active(e, active_tls_off, 0);
			put_insn_copy(e, in);
			break;
		default:
			put_insn_copy(e, in);
			break;
		}
	}
	if (mark)
		put_movb_active(e, active_tls_off, 0);
	put_jmp(e, r->addr + r->len);
	for (int i = 0; i < ntaken && !e->err; i++) {
		if (rel32(e->buf + taken_at[i], e->base + taken_at[i] + 4, e->base + e->n)) {
			e->err = -ERANGE;
			break;
		}
		put_movb_active(e, active_tls_off, 0);
		put_jmp(e, taken[i]);
	}
}

/*
 * Whether an instruction of the region may fault. It may not when it is of
 * a kind that cannot (integer and logic, moves between registers, stack
 * pushes and pops, branches, nops; not a division, a string or port
 * instruction, a system one...) and touches memory only through the stack
 * pointer or not at all (lea's operand, a nop's, a prefetch's are not
 * accesses). A stack overflow, which a signal handler would have to leave
 * by siglongjmp, is the exception.
 */
static bool may_fault(const struct sd_insn *in)
{
	ZydisDecoder d;
	ZydisDecodedInstruction x;
	ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];

	decoder_init(&d);
	if (!ZYAN_SUCCESS(ZydisDecoderDecodeFull(&d, in->bytes, in->len, &x, ops)))
		return true;
	switch (x.meta.category) {
	case ZYDIS_CATEGORY_NOP:
	case ZYDIS_CATEGORY_WIDENOP:
	case ZYDIS_CATEGORY_PREFETCH:
	case ZYDIS_CATEGORY_CET:
		return false;
	case ZYDIS_CATEGORY_BINARY:
		if (x.mnemonic == ZYDIS_MNEMONIC_DIV || x.mnemonic == ZYDIS_MNEMONIC_IDIV)
			return true;
		break;
	case ZYDIS_CATEGORY_LOGICAL:
	case ZYDIS_CATEGORY_DATAXFER:
	case ZYDIS_CATEGORY_PUSH:
	case ZYDIS_CATEGORY_POP:
	case ZYDIS_CATEGORY_CMOV:
	case ZYDIS_CATEGORY_SETCC:
	case ZYDIS_CATEGORY_SHIFT:
	case ZYDIS_CATEGORY_ROTATE:
	case ZYDIS_CATEGORY_BITBYTE:
	case ZYDIS_CATEGORY_CONVERT:
	case ZYDIS_CATEGORY_FLAGOP:
	case ZYDIS_CATEGORY_BMI1:
	case ZYDIS_CATEGORY_BMI2:
	case ZYDIS_CATEGORY_LZCNT:
	case ZYDIS_CATEGORY_CALL:
	case ZYDIS_CATEGORY_COND_BR:
	case ZYDIS_CATEGORY_UNCOND_BR:
	case ZYDIS_CATEGORY_RET:
	case ZYDIS_CATEGORY_MISC: /* lea, leave, enter... (their memory is looked at below) */
		if (x.mnemonic == ZYDIS_MNEMONIC_UD0 || x.mnemonic == ZYDIS_MNEMONIC_UD1 ||
		    x.mnemonic == ZYDIS_MNEMONIC_UD2)
			return true;
		break;
	default:
		return true;
	}
	for (int i = 0; i < x.operand_count; i++)
		if (ops[i].type == ZYDIS_OPERAND_TYPE_MEMORY &&
		    ops[i].mem.type != ZYDIS_MEMOP_TYPE_AGEN &&
		    !(ops[i].visibility == ZYDIS_OPERAND_VISIBILITY_HIDDEN &&
		      ops[i].mem.base == ZYDIS_REGISTER_RSP))
			return true;
	return false;
}

int sd_arch_opt_build_copy(const struct sd_opt_region *r, const struct sd_opt_copy_spec *spec,
			   uint64_t at, uint8_t *buf, size_t cap, size_t *nested)
{
	struct emit e = {.buf = buf, .cap = cap, .base = at};
	uint64_t after = r->addr + r->len;
	bool faults = false;
	size_t ret_at[2];
	int nret = 0;

	/*
	 * main: the thread runs the region marked, out through exits that
	 * unmark it. Marked as in a slot when an instruction may fault: the
	 * handler's fast path leaves it marked as in a handler, and a signal
	 * handler that leaves such a fault by siglongjmp must not leave it so
	 * (every later hit would count as missed). Otherwise the store is
	 * saved (0.25 ns a hit): a signal arriving in these few instructions
	 * counts its probes' hits as missed, as inside the handler.
	 */
	for (int i = 0; i < r->ninsn; i++)
		faults |= may_fault(&r->insn[i]);
	if (faults)
		put_movb_active(&e, spec->active_tls_off, spec->active_slot);
	put_region(&e, r, spec->active_tls_off, true, ret_at, &nret);
	*nested = e.n;
	put_region(&e, r, spec->active_tls_off, false, ret_at, &nret);
	if (nret && !e.err) {
		while (e.n % 8)
			put(&e, "\xcc", 1);
		for (int i = 0; i < nret && !e.err; i++)
			if (rel32(buf + ret_at[i], at + ret_at[i] + 4, at + e.n))
				e.err = -ERANGE;
		put(&e, &after, 8);
	}
	return e.err ? e.err : (int)e.n;
}

static const uint8_t gprs_push[] = {
    0x57, 0x56, 0x52, 0x51, 0x50,		    /* di si dx cx ax */
    0x41, 0x50, 0x41, 0x51, 0x41, 0x52, 0x41, 0x53, /* r8 r9 r10 r11 */
    0x53, 0x55,					    /* bx bp */
    0x41, 0x54, 0x41, 0x55, 0x41, 0x56, 0x41, 0x57, /* r12 r13 r14 r15 */
};

/* and back, then orig_ax ip cs flags sp ss dropped: as it came */
static void put_inline_restore(struct emit *e)
{
	static const uint8_t gprs_pop[] = {
	    0x41, 0x5f, 0x41, 0x5e, 0x41, 0x5d, 0x41, 0x5c, /* r15 r14 r13 r12 */
	    0x5d, 0x5b,					    /* bp bx */
	    0x41, 0x5b, 0x41, 0x5a, 0x41, 0x59, 0x41, 0x58, /* r11 r10 r9 r8 */
	    0x58, 0x59, 0x5a, 0x5e, 0x5f,		    /* ax cx dx si di */
	};

	put(e, "\x48\x89\xec", 3); /* mov %rbp, %rsp */
	put(e, gprs_pop, sizeof(gprs_pop));
	put(e, "\x48\x8d\x64\x24\x30", 5); /* lea 48(%rsp), %rsp */
}

/*
 * The registers saved by the detour itself, as struct sonde_regs, and the
 * handler called: no call into and return from the common trampoline, no
 * return address stored, the site's index an immediate. Only for a lite
 * site at a function's first instruction: no vector state; the flags dead
 * but for DF, which is clear; and no red zone yet (the call that entered
 * the function wrote over the caller's, as a -mfentry call would).
 */
static void put_inline_save_call(struct emit *e, const struct sd_opt_detour_spec *spec,
				 uint64_t handler_slot)
{
	put(e, "\x6a\x2b", 2);		   /* pushq $0x2b: ss */
	put(e, "\x48\x8d\x64\x24\xf8", 5); /* lea -8(%rsp), %rsp: sp, set below */
	put(e, "\x9c", 1);		   /* pushfq */
	put(e, "\x6a\x33", 2);		   /* pushq $0x33: cs */
	put(e, "\x48\x8d\x64\x24\xf8", 5); /* lea -8(%rsp), %rsp: ip, the handler's */
	put(e, "\x6a\xff", 2);		   /* pushq $-1: orig_ax */
	put(e, gprs_push, sizeof(gprs_push));
	/* lea 168(%rsp), %rax; mov %rax, 152(%rsp): the interrupted sp */
	put(e, "\x48\x8d\x84\x24\xa8\x00\x00\x00", 8);
	put(e, "\x48\x89\x84\x24\x98\x00\x00\x00", 8);
	put(e, "\x48\x89\xe5", 3);     /* mov %rsp, %rbp */
	put(e, "\x48\x83\xe4\xf0", 4); /* and $-16, %rsp */
	put(e, "\xbf", 1);	       /* mov $index, %edi */
	put(e, &spec->index, 4);
	put(e, "\x48\x89\xee", 3); /* mov %rbp, %rsi */
	put(e, "\xff\x15", 2);	   /* call *handler(%rip) */
	put_rel32(e, handler_slot);
}

int sd_arch_opt_build_detour(const struct sd_opt_detour_spec *spec, uint8_t *buf, size_t cap,
			     struct sd_opt_layout *lay)
{
	struct emit e = {.buf = buf, .cap = cap, .base = spec->detour};

	/* two data words go last: the handler's address and the trampoline's */
	if (cap < 16)
		return -ENOSPC;
	e.cap = cap - 16;
	lay->main = spec->copy;
	lay->nested = spec->copy_nested;
	lay->saves_regs = spec->handler != 0;
	if (spec->handler) {
		put_inline_save_call(&e, spec, spec->detour + cap - 16);
		lay->ret_main = spec->detour + e.n;
		put_inline_restore(&e);
		put_jmp(&e, lay->main);
		lay->ret_nested = spec->detour + e.n;
		put_inline_restore(&e);
		put_jmp(&e, lay->nested);
	} else {
		put(&e, "\x48\x8d\x64\x24\x80", 5); /* lea -128(%rsp), %rsp: the red zone */
		/* call *common(%rip): the trampoline may be anywhere (a static link) */
		put(&e, "\xff\x15", 2);
		put_rel32(&e, spec->detour + cap - 8);
		lay->ret_main = spec->detour + e.n;
		/*
		 * nopl index(%rax): the trampoline reads the site index from
		 * its return address (a load, where a push would be one more
		 * store)
		 */
		put(&e, "\x0f\x1f\x80", 3);
		put(&e, &spec->index, 4);
		put(&e, "\x48\x8d\xa4\x24\x80\x00\x00\x00", 8); /* lea 128(%rsp), %rsp */
		put_jmp(&e, lay->main);
		lay->ret_nested = spec->detour + e.n;
		put(&e, "\x48\x8d\xa4\x24\x80\x00\x00\x00", 8);
		put_jmp(&e, lay->nested);
	}
	if (e.err)
		return e.err;
	memcpy(buf + cap - 16, &spec->handler, 8);
	memcpy(buf + cap - 8, &spec->common, 8);
	return (int)e.n;
}

void sd_arch_opt_jump(const struct sd_opt_region *r, uint64_t detour, uint8_t *out)
{
	out[0] = 0xe9;
	rel32(out + 1, r->addr + SD_OPT_JUMP_LEN, detour);
	/* the rest of the region: int3, never executed (nothing lands there) */
	for (unsigned int i = SD_OPT_JUMP_LEN; i < r->len; i++)
		out[i] = SD_ARCH_BP_INSN;
}
