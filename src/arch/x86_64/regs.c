// SPDX-License-Identifier: MIT
/* regs.c - x86-64 registers: signal frames, System V arguments, names. */
#include <errno.h>
#include <string.h>
#include <ucontext.h>

#include "arch/arch.h"
#include "common/compiler.h"
#include "common/safe_mem.h"

void sd_arch_regs_from_uc(struct sonde_regs *r, const void *ucv)
{
	const greg_t *g = ((const ucontext_t *)ucv)->uc_mcontext.gregs;

	r->r15 = g[REG_R15];
	r->r14 = g[REG_R14];
	r->r13 = g[REG_R13];
	r->r12 = g[REG_R12];
	r->bp = g[REG_RBP];
	r->bx = g[REG_RBX];
	r->r11 = g[REG_R11];
	r->r10 = g[REG_R10];
	r->r9 = g[REG_R9];
	r->r8 = g[REG_R8];
	r->ax = g[REG_RAX];
	r->cx = g[REG_RCX];
	r->dx = g[REG_RDX];
	r->si = g[REG_RSI];
	r->di = g[REG_RDI];
	r->orig_ax = (uint64_t)-1;
	r->ip = g[REG_RIP];
	r->cs = g[REG_CSGSFS] & 0xffff;
	r->flags = g[REG_EFL];
	r->sp = g[REG_RSP];
	r->ss = 0x2b;
}

void sd_arch_regs_to_uc(void *ucv, const struct sonde_regs *r)
{
	greg_t *g = ((ucontext_t *)ucv)->uc_mcontext.gregs;

	g[REG_R15] = r->r15;
	g[REG_R14] = r->r14;
	g[REG_R13] = r->r13;
	g[REG_R12] = r->r12;
	g[REG_RBP] = r->bp;
	g[REG_RBX] = r->bx;
	g[REG_R11] = r->r11;
	g[REG_R10] = r->r10;
	g[REG_R9] = r->r9;
	g[REG_R8] = r->r8;
	g[REG_RAX] = r->ax;
	g[REG_RCX] = r->cx;
	g[REG_RDX] = r->dx;
	g[REG_RSI] = r->si;
	g[REG_RDI] = r->di;
	g[REG_RIP] = r->ip;
	/* only the arithmetic flags and DF may change; TF/IF/IOPL are not ours */
	g[REG_EFL] = (g[REG_EFL] & ~0xcd5UL) | (r->flags & 0xcd5UL);
	g[REG_RSP] = r->sp;
}

uint64_t sd_arch_uc_ip(const void *ucv)
{
	return ((const ucontext_t *)ucv)->uc_mcontext.gregs[REG_RIP];
}

uint64_t sd_arch_uc_sp(const void *ucv)
{
	return ((const ucontext_t *)ucv)->uc_mcontext.gregs[REG_RSP];
}

void sd_arch_uc_set_ip(void *ucv, uint64_t ip)
{
	((ucontext_t *)ucv)->uc_mcontext.gregs[REG_RIP] = ip;
}

SD_NOTRACE SONDE_API uint64_t sonde_regs_arg(const struct sonde_regs *regs, unsigned int n)
{
	return sd_arch_regs_arg(regs, n);
}

/* (the probe path calls this one: no PLT, no lazy binding in a trap handler) */
SD_NOTRACE uint64_t sd_arch_regs_arg(const struct sonde_regs *regs, unsigned int n)
{
	uint64_t v = 0;

	switch (n) {
	case 0:
		return regs->di;
	case 1:
		return regs->si;
	case 2:
		return regs->dx;
	case 3:
		return regs->cx;
	case 4:
		return regs->r8;
	case 5:
		return regs->r9;
	default:
		/* at entry the return address is at sp, stack arguments above it */
		sd_safe_read(&v, (const void *)(regs->sp + 8 * (n - 5)), 8);
		return v;
	}
}

int sd_arch_regs_arg_offset(unsigned int n)
{
	static const unsigned short off[] = {
	    offsetof(struct sonde_regs, di), offsetof(struct sonde_regs, si),
	    offsetof(struct sonde_regs, dx), offsetof(struct sonde_regs, cx),
	    offsetof(struct sonde_regs, r8), offsetof(struct sonde_regs, r9),
	};

	return n < sizeof(off) / sizeof(off[0]) ? off[n] : -1;
}

static const struct {
	const char *name;
	unsigned short off;
} reg_names[] = {
#define R(n, f)                                   \
	{                                         \
		n, offsetof(struct sonde_regs, f) \
	}
    R("ax", ax),
    R("bx", bx),
    R("cx", cx),
    R("dx", dx),
    R("si", si),
    R("di", di),
    R("bp", bp),
    R("sp", sp),
    R("ip", ip),
    R("flags", flags),
    R("r8", r8),
    R("r9", r9),
    R("r10", r10),
    R("r11", r11),
    R("r12", r12),
    R("r13", r13),
    R("r14", r14),
    R("r15", r15),
    R("cs", cs),
    R("ss", ss),
    R("orig_ax", orig_ax),
    /* the names the kernel's x86 fetch args also accept */
    R("rax", ax),
    R("rbx", bx),
    R("rcx", cx),
    R("rdx", dx),
    R("rsi", si),
    R("rdi", di),
    R("rbp", bp),
    R("rsp", sp),
    R("rip", ip),
#undef R
};

int sd_arch_reg_offset(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(reg_names); i++)
		if (!strcmp(reg_names[i].name, name))
			return reg_names[i].off;
	return -ENOENT;
}

SONDE_API int sonde_regs_get(const struct sonde_regs *regs, const char *name, uint64_t *val)
{
	int off = sd_arch_reg_offset(name);

	if (off < 0)
		return off;
	memcpy(val, (const char *)regs + off, 8);
	return 0;
}
