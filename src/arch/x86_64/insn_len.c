// SPDX-License-Identifier: MIT
/*
 * insn_len.c - x86-64 instruction lengths from opcode tables (insn_len.h).
 *
 * An instruction is: legacy prefixes, REX, opcode (one byte; 0F xx; 0F 38
 * xx; 0F 3A xx; or a VEX/EVEX/XOP prefix and its opcode), ModRM, SIB,
 * displacement, immediate. Its length follows from the opcode's row in a
 * table (does it take a ModRM byte, which immediate) and from the operand
 * and address size prefixes. The tables follow the Intel SDM's opcode maps
 * (volume 2, appendix A) for 64-bit mode; where an encoding is invalid
 * there (the one-byte opcodes of 32-bit mode only), the table says so, so
 * that data decodes as Zydis decodes it.
 */
#include "insn_len.h"

#include <stdbool.h>

/* a table entry: the immediate's kind, and flags */
enum {
	I0 = 0,	  /* no immediate */
	IB = 1,	  /* imm8 */
	IW = 2,	  /* imm16 */
	IZ = 3,	  /* imm16 with 66, else imm32 */
	IV = 4,	  /* mov r, imm: imm64 with REX.W, imm16 with 66, else imm32 */
	IM = 5,	  /* moffs: 8 bytes, 4 with 67 */
	IWB = 6,  /* enter: imm16 + imm8 */
	M = 0x08, /* a ModRM byte */
	X = 0x10, /* invalid in 64-bit mode */
	P = 0x20, /* a legacy prefix */
	R = 0x40, /* the immediate is a branch displacement */
	S = 0x80, /* decoded by hand: REX, escapes, VEX/EVEX/XOP, F6/F7, C7 */
};

#define ROW(a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p) \
	a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p

static const uint8_t map1[256] = {
    /* 0x */ ROW(M, M, M, M, IB, IZ, X, X, M, M, M, M, IB, IZ, X, S),
    /* 1x */ ROW(M, M, M, M, IB, IZ, X, X, M, M, M, M, IB, IZ, X, X),
    /* 2x */ ROW(M, M, M, M, IB, IZ, P, X, M, M, M, M, IB, IZ, P, X),
    /* 3x */ ROW(M, M, M, M, IB, IZ, P, X, M, M, M, M, IB, IZ, P, X),
    /* 4x */ ROW(S, S, S, S, S, S, S, S, S, S, S, S, S, S, S, S),
    /* 5x */ ROW(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
    /* 6x */ ROW(X, X, S, M, P, P, P, P, IZ, M | IZ, IB, M | IB, 0, 0, 0, 0),
    /* 7x */
    ROW(R | IB, R | IB, R | IB, R | IB, R | IB, R | IB, R | IB, R | IB, R | IB, R | IB, R | IB,
	R | IB, R | IB, R | IB, R | IB, R | IB),
    /* 8x */ ROW(M | IB, M | IZ, X, M | IB, M, M, M, M, M, M, M, M, M, M, M, S),
    /* 9x */ ROW(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, X, 0, 0, 0, 0, 0),
    /* Ax */ ROW(IM, IM, IM, IM, 0, 0, 0, 0, IB, IZ, 0, 0, 0, 0, 0, 0),
    /* Bx */ ROW(IB, IB, IB, IB, IB, IB, IB, IB, IV, IV, IV, IV, IV, IV, IV, IV),
    /* Cx */ ROW(M | IB, M | IB, IW, 0, S, S, M | IB, S, IWB, 0, IW, 0, 0, IB, X, 0),
    /* Dx */ ROW(M, M, M, M, X, X, X, 0, M, M, M, M, M, M, M, M),
    /* Ex */
    ROW(R | IB, R | IB, R | IB, R | IB, IB, IB, IB, IB, R | IZ, R | IZ, X, R | IB, 0, 0, 0, 0),
    /* Fx */ ROW(P, 0, P, P, 0, 0, S, S, 0, 0, 0, 0, 0, 0, M, M),
};

static const uint8_t map0f[256] = {
    /* 0x */ ROW(M, M, M, M, X, 0, 0, 0, 0, 0, X, 0, X, M, 0, M | IB),
    /* 1x */ ROW(M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M),
    /* 2x */ ROW(M, M, M, M, X, X, X, X, M, M, M, M, M, M, M, M),
    /* 3x */ ROW(0, 0, 0, 0, 0, 0, X, 0, S, X, S, X, X, X, X, X),
    /* 4x */ ROW(M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M),
    /* 5x */ ROW(M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M),
    /* 6x */ ROW(M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M),
    /* 7x */ ROW(M | IB, M | IB, M | IB, M | IB, M, M, M, 0, S, M, X, X, M, M, M, M),
    /* 8x */
    ROW(R | IZ, R | IZ, R | IZ, R | IZ, R | IZ, R | IZ, R | IZ, R | IZ, R | IZ, R | IZ, R | IZ,
	R | IZ, R | IZ, R | IZ, R | IZ, R | IZ),
    /* 9x */ ROW(M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M),
    /* Ax */ ROW(0, 0, 0, M, M | IB, M, M, M, 0, 0, 0, M, M | IB, M, M, M),
    /* Bx */ ROW(M, M, M, M, M, M, M, M, M, M, M | IB, M, M, M, M, M),
    /* Cx */ ROW(M, M, M | IB, M, M | IB, M | IB, M | IB, M, 0, 0, 0, 0, 0, 0, 0, 0),
    /* Dx */ ROW(M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M),
    /* Ex */ ROW(M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M),
    /* Fx */ ROW(M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M),
};

/* the opcodes of map 1 (0F) that take an imm8 under VEX and EVEX too */
static bool vex_map1_imm8(uint8_t op)
{
	return (op >= 0x70 && op <= 0x73) || op == 0xc2 || (op >= 0xc4 && op <= 0xc6);
}

struct cursor {
	const uint8_t *p;
	size_t n, i;
};

static inline int next(struct cursor *c, uint8_t *b)
{
	if (c->i >= c->n)
		return -1;
	*b = c->p[c->i++];
	return 0;
}

/* the ModRM byte (already read as @m), its SIB and displacement */
static int modrm_rest(struct cursor *c, uint8_t m)
{
	unsigned int mod = m >> 6, rm = m & 7, disp = 0;
	uint8_t sib;

	if (mod == 3)
		return 0;
	if (rm == 4) {
		if (next(c, &sib))
			return -1;
		if (mod == 0 && (sib & 7) == 5)
			disp = 4;
	} else if (mod == 0 && rm == 5) {
		disp = 4; /* rip-relative */
	}
	if (mod == 1)
		disp = 1;
	else if (mod == 2)
		disp = 4;
	c->i += disp;
	return c->i <= c->n ? 0 : -1;
}

static int64_t read_imm(const uint8_t *p, unsigned int size)
{
	switch (size) {
	case 1:
		return (int8_t)p[0];
	case 2:
		return (int16_t)(p[0] | p[1] << 8);
	default:
		return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
				 (uint32_t)p[3] << 24);
	}
}

/* VEX (C4, C5), EVEX (62) or XOP (8F): prefix bytes, opcode, ModRM, imm8 */
static int decode_vex(struct cursor *c, uint8_t esc, struct sd_insn_len *out)
{
	uint8_t b1, b2, op, m;
	unsigned int map, imm = 0;

	if (next(c, &b1))
		return -1;
	if (esc == 0xc5) {
		map = 1;
	} else if (esc == 0x62) {
		map = b1 & 7;
		if (map == 0 || map == 4 || map == 7 || (b1 & 8))
			return -1;
		if (next(c, &b2) || next(c, &b2)) /* P1, P2 */
			return -1;
	} else {
		map = b1 & 0x1f;
		if (esc == 0xc4 ? map > 3 : (map < 8 || map > 10))
			return -1;
	}
	if (esc == 0xc4 || esc == 0x8f) {
		if (next(c, &b2))
			return -1;
	}
	if (next(c, &op))
		return -1;
	if (esc == 0xc4 && map == 0) {
		/* Knights Corner's JKZD/JKNZD rel8 are all of map 0 (Zydis knows them) */
		if (op != 0x74 && op != 0x75)
			return -1;
		c->i += 1;
		if (c->i > c->n)
			return -1;
		goto done;
	}
	if (esc == 0x8f) {
		imm = map == 8 ? 1 : map == 10 ? 4 : 0;
	} else {
		/* vzeroupper, vzeroall: no ModRM */
		if (esc != 0x62 && map == 1 && op == 0x77)
			goto done;
		/* and their rel32 forms */
		if (esc != 0x62 && map == 1 && (op == 0x84 || op == 0x85)) {
			c->i += 4;
			if (c->i > c->n)
				return -1;
			goto done;
		}
		if (map == 3 || (map == 1 && vex_map1_imm8(op)))
			imm = 1;
	}
	if (next(c, &m) || modrm_rest(c, m))
		return -1;
	c->i += imm;
	if (c->i > c->n)
		return -1;
done:
	out->len = (uint8_t)c->i;
	return 0;
}

int sd_insn_len(const uint8_t *p, size_t avail, struct sd_insn_len *out)
{
	struct cursor c = {p, avail > 15 ? 15 : avail, 0};
	bool opsz = false, adsz = false, rep = false, repne = false, lock = false;
	uint8_t rex = 0, op, e, m = 0;
	unsigned int imm = 0;

	out->branch = 0;
	out->rel = 0;
	for (;;) {
		if (next(&c, &op))
			return -1;
		e = map1[op];
		if (e & P) {
			opsz |= op == 0x66;
			adsz |= op == 0x67;
			lock |= op == 0xf0;
			if (op == 0xf2 || op == 0xf3) {
				/* the last of F2/F3 counts */
				repne = op == 0xf2;
				rep = op == 0xf3;
			}
			rex = 0; /* a REX must come last */
			continue;
		}
		if ((op & 0xf0) == 0x40) {
			rex = op;
			continue;
		}
		break;
	}
	if (op == 0xc4 || op == 0xc5 || op == 0x62 ||
	    (op == 0x8f && c.i < c.n && (p[c.i] & 0x1f) >= 8)) {
		if (opsz || rep || repne || lock || rex)
			return -1;
		return decode_vex(&c, op, out);
	}
	if (op == 0x0f) {
		if (next(&c, &op))
			return -1;
		if (op == 0x38 || op == 0x3a) {
			e = M | (op == 0x3a ? IB : I0);
			if (next(&c, &op))
				return -1;
		} else if (op == 0x78) {
			/* AMD's EXTRQ/INSERTQ (66, F2) take two imm8; VMREAD none */
			e = M;
			if (opsz || repne)
				imm = 2;
		} else if (op >= 0x20 && op <= 0x23) {
			/* MOV to and from CR/DR: the ModRM names registers whatever its mod */
			if (next(&c, &m))
				return -1;
			e = 0;
		} else {
			e = map0f[op];
		}
	} else if (op == 0xf6 || op == 0xf7) {
		/* TEST r/m, imm: /0 and /1 */
		if (next(&c, &m) || modrm_rest(&c, m))
			return -1;
		if (((m >> 3) & 7) < 2)
			imm = op == 0xf6 ? 1 : (opsz && !(rex & 8)) ? 2 : 4;
		e = 0;
	} else if (op == 0xc7) {
		/* XBEGIN rel (C7 F8) or MOV r/m, imm */
		if (next(&c, &m))
			return -1;
		if (m == 0xf8)
			e = R | IZ;
		else if (modrm_rest(&c, m))
			return -1;
		else
			e = IZ;
	} else if (op == 0x8f) {
		e = M;
	}
	if (e & X)
		return -1;
	if ((e & M) && (next(&c, &m) || modrm_rest(&c, m)))
		return -1;
	switch (e & 7) {
	case IB:
		imm = 1;
		break;
	case IW:
		imm = 2;
		break;
	case IZ:
		/* near branches ignore 66 in 64-bit mode (as Intel's CPUs do), xbegin not */
		imm = opsz && !(rex & 8) && (!(e & R) || op == 0xc7) ? 2 : 4;
		break;
	case IV:
		imm = (rex & 8) ? 8 : opsz ? 2 : 4;
		break;
	case IM:
		imm = adsz ? 4 : 8;
		break;
	case IWB:
		imm = 3;
		break;
	}
	if (c.i + imm > c.n)
		return -1;
	if (e & R) {
		out->branch = 1;
		out->rel = read_imm(p + c.i, imm);
	}
	c.i += imm;
	out->len = (uint8_t)c.i;
	return 0;
}
