/* SPDX-License-Identifier: MIT */
/* jumptable.h - where an indirect jmp can land, for the optimizer (jumptable.c). */
#ifndef SD_ARCH_X86_64_JUMPTABLE_H
#define SD_ARCH_X86_64_JUMPTABLE_H

#include <stdbool.h>
#include <stdint.h>

#include <Zydis/Zydis.h>

/* one decoded instruction of the window before an indirect jmp */
struct jt_insn {
	uint64_t addr;
	ZydisDecodedInstruction in;
	ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
};

/*
 * sd_jt_targets - the places the indirect jmp @win[@n - 1] can land,
 * appended to @targets (at most @max in all), from the @n - 1
 * instructions before it. 0: the entries of a switch's jump
 * table; 1: a tail call through a pointer (it lands on some function's
 * first byte: nothing appended); -1: not known.
 */
int sd_jt_targets(const struct jt_insn *win, int n, uint64_t *targets, int *ntargets, int max);

#endif
