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
 * The detour, allocated within +-1 GiB:
 *
 *     lea   -128(%rsp), %rsp      step over the red zone
 *     push  $index                which optimized site this is
 *     call  *<common trampoline>  save registers, run the handlers
 *   main:
 *     lea   136(%rsp), %rsp
 *     <the region's instructions, relocated; every exit sets the thread's
 *      `resume` and leaves through the exit stub, which clears `active`>
 *   nested:
 *     lea   136(%rsp), %rsp
 *     <the region's instructions with plain jumps: for a handler's own hit>
 *     jmp   <probe + region length>
 *     .quad <a call's return address>, <common trampoline>, <exit stub>
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

/*
 * Out of the main copy to @to: a jump to that target's exit stub, which
 * clears `active` and jumps on. The stub lives in memory never freed, so
 * that a thread stopped (a signal handler) between the two is outside
 * every detour reclaim() may free. Cheaper than the shared exit stub's
 * jump through `resume`, whose two halves cannot be forwarded to the
 * 8-byte load that reads them.
 */
static void put_exit_to(struct emit *e, const struct sd_opt_detour_spec *spec, uint64_t to)
{
	uint64_t stub = spec->exit_to ? spec->exit_to(to) : 0;

	if (!stub) {
		e->err = -ENOMEM;
		return;
	}
	put(e, "\xe9", 1);
	put_rel32(e, stub);
}

int sd_arch_opt_exit_stub(int32_t active_tls_off, uint64_t at, uint64_t to, uint8_t *buf)
{
	/* movb $0, %fs:active_tls_off; jmp to */
	memcpy(buf, "\x64\xc6\x04\x25", 4);
	memcpy(buf + 4, &active_tls_off, 4);
	buf[8] = 0x00;
	buf[9] = 0xe9;
	if (rel32(buf + 10, at + 14, to))
		return -ERANGE;
	return 14;
}

/* jmp *stub_slot(%rip): the exit stub's address is stored at @stub_slot */
static void put_exit(struct emit *e, uint64_t stub_slot)
{
	put(e, "\xff\x25", 2);
	put_rel32(e, stub_slot);
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

int sd_arch_opt_build_detour(const struct sd_opt_region *r, const struct sd_opt_detour_spec *spec,
			     uint8_t *buf, size_t cap, struct sd_opt_layout *lay)
{
	struct emit e = {.buf = buf, .cap = cap, .base = spec->detour};
	uint64_t stub_slot, taken[SD_OPT_MAX_INSNS];
	size_t taken_at[SD_OPT_MAX_INSNS];
	int ntaken = 0;

	/*
	 * three data words go last: a call's return address, the trampoline's
	 * address and the exit stub's
	 */
	if (cap < 24)
		return -ENOSPC;
	e.cap = cap - 24;

	/* prologue: off the red zone, tell the trampoline which site, call it */
	put(&e, "\x48\x8d\x64\x24\x80", 5); /* lea -128(%rsp), %rsp */
	put(&e, "\x68", 1);		    /* push $index */
	put(&e, &spec->index, 4);
	/* call *common(%rip): the trampoline may be anywhere (a static link) */
	put(&e, "\xff\x15", 2);
	put_rel32(&e, spec->detour + cap - 16);
	lay->ret_main = spec->detour + e.n;
	put(&e, "\x48\x8d\xa4\x24\x88\x00\x00\x00", 8); /* lea 136(%rsp), %rsp */
	/*
	 * movb $SLOT, %fs:active: the handler's fast path returns with `active`
	 * still HANDLER (it tail-calls the probe's handler); from here the
	 * thread runs the probed code, where a signal's own probes must run
	 * (and a siglongjmp out of such a signal must not leave HANDLER for
	 * good). A breakpoint hit comes in at `main` having set it already.
	 */
	put(&e, "\x64\xc6\x04\x25", 4);
	put(&e, &spec->active_tls_off, 4);
	put(&e, &spec->active_slot, 1);
	lay->main = spec->detour + e.n;

	/*
	 * Every way out of the main copy unmarks the thread: through its
	 * target's exit stub (put_exit_to), or for a `ret` through the shared
	 * exit stub with the destination in the thread's `resume`.
	 */
	stub_slot = spec->detour + cap - 8;
	for (int i = 0; i < r->ninsn && !e.err; i++) {
		const struct sd_insn *in = &r->insn[i];

		switch (in->kind) {
		case SD_INSN_JMP:
			put_exit_to(&e, spec, in->target);
			break;
		case SD_INSN_CALL:
			/* pushq ret_slot(%rip): the return address; then out to the callee */
			put(&e, "\xff\x35", 2);
			put_rel32(&e, spec->detour + cap - 24);
			put_exit_to(&e, spec, in->target);
			break;
		case SD_INSN_JCC:
			put(&e, "\x0f", 1);
			put(&e, (uint8_t[]){0x80 | in->cond}, 1);
			taken_at[ntaken] = e.n;
			taken[ntaken++] = in->target;
			put(&e, "\0\0\0\0", 4); /* filled below */
			break;
		case SD_INSN_RET:
			/* popq %fs:resume, then the bytes the ret pops besides */
			put(&e, "\x64\x8f\x04\x25", 4);
			put(&e, &spec->resume_tls_off, 4);
			if (in->ret_pop) {
				uint32_t imm = in->ret_pop;

				put(&e, "\x48\x8d\xa4\x24", 4); /* lea imm32(%rsp), %rsp */
				put(&e, &imm, 4);
			}
			put_exit(&e, stub_slot);
			break;
		default:
			put_insn_copy(&e, in);
			break;
		}
	}
	put_exit_to(&e, spec, r->addr + r->len);
	for (int i = 0; i < ntaken && !e.err; i++) {
		uint64_t here = spec->detour + e.n;

		if (rel32(buf + taken_at[i], spec->detour + taken_at[i] + 4, here)) {
			e.err = -ERANGE;
			break;
		}
		put_exit_to(&e, spec, taken[i]);
	}

	/* the nested copy: a handler's own hit, under its `active`; plain jumps */
	lay->ret_nested = spec->detour + e.n;
	put(&e, "\x48\x8d\xa4\x24\x88\x00\x00\x00", 8);
	lay->nested = spec->detour + e.n;
	for (int i = 0; i < r->ninsn && !e.err; i++) {
		const struct sd_insn *in = &r->insn[i];

		switch (in->kind) {
		case SD_INSN_JMP:
			put(&e, "\xe9", 1);
			put_rel32(&e, in->target);
			break;
		case SD_INSN_CALL:
			put(&e, "\xff\x35", 2);
			put_rel32(&e, spec->detour + cap - 24);
			put(&e, "\xe9", 1);
			put_rel32(&e, in->target);
			break;
		case SD_INSN_JCC:
			put(&e, "\x0f", 1);
			put(&e, (uint8_t[]){0x80 | in->cond}, 1);
			put_rel32(&e, in->target);
			break;
		default:
			put_insn_copy(&e, in);
			break;
		}
	}
	put(&e, "\xe9", 1);
	put_rel32(&e, r->addr + r->len);

	if (e.err)
		return e.err;
	{
		/* (only a last instruction can be a call: its end is the region's) */
		uint64_t after = r->addr + r->len;

		memcpy(buf + cap - 24, &after, 8);
	}
	memcpy(buf + cap - 16, &spec->common, 8);
	memcpy(buf + cap - 8, &spec->exit_stub, 8);
	lay->len = cap;
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
