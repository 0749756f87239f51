/* SPDX-License-Identifier: MIT */
/*
 * insn_len.h - x86-64 instruction lengths and direct branch targets, fast.
 *
 * The optimizer sweeps every executable byte of an object for the targets
 * of its direct branches (a jump into the bytes a probe's jump replaces
 * would land mid-instruction). Zydis decodes about 10 million instructions
 * a second here, which made the first probe in libc cost 60 ms; this
 * decoder only finds lengths and relative branches, from opcode tables,
 * and is checked against Zydis instruction by instruction on real
 * binaries (tests/unit/test_insn_len.c). Everything else still decodes
 * with Zydis.
 */
#ifndef SD_ARCH_X86_64_INSN_LEN_H
#define SD_ARCH_X86_64_INSN_LEN_H

#include <stddef.h>
#include <stdint.h>

struct sd_insn_len {
	uint8_t len;	/* 1..15 */
	uint8_t branch; /* a relative branch: jmp, jcc, call, loop*, j*cxz, xbegin */
	int64_t rel;	/* its displacement, from the end of the instruction */
};

/*
 * Decode the instruction at @p (at most @avail bytes readable): 0 and
 * *@out, or -1 if the bytes are not a valid instruction of 64-bit mode
 * (or it does not fit in @avail bytes).
 */
int sd_insn_len(const uint8_t *p, size_t avail, struct sd_insn_len *out);

#endif
