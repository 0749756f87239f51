// SPDX-License-Identifier: MIT
/*
 * test_insn_len.c - the optimizer's fast length decoder (insn_len.c)
 * against Zydis, the decoder it stands in for.
 *
 * On the code of real binaries (libc, the dynamic linker, libstdc++,
 * python3, libZydis, libdw, sonde's own library and command), swept
 * linearly as the optimizer sweeps them: at every offset where Zydis
 * decodes an instruction, the fast decoder must give the same length and,
 * for a relative branch, the same target; the branch targets of the whole
 * sweep must be the same set. Then hand-written encodings of every form
 * the tables distinguish (prefixes, REX.W, moffs, VEX, EVEX, XOP, 3DNow,
 * F6/F7 /0, xbegin, rel16), and random bytes: wherever Zydis decodes, the
 * lengths agree.
 */
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <Zydis/Zydis.h>

#include "check.h"
#include "arch/x86_64/insn_len.h"

struct zy {
	int len; /* 0: invalid */
	bool branch;
	int64_t rel;
};

static ZydisDecoder dec;

static struct zy zydis(const uint8_t *p, size_t n)
{
	ZydisDecodedInstruction in;
	ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
	struct zy z = {0};

	if (!ZYAN_SUCCESS(ZydisDecoderDecodeFull(&dec, p, n, &in, ops)))
		return z;
	z.len = in.length;
	if (in.operand_count_visible >= 1 && ops[0].type == ZYDIS_OPERAND_TYPE_IMMEDIATE &&
	    ops[0].imm.is_relative &&
	    (in.meta.category == ZYDIS_CATEGORY_UNCOND_BR ||
	     in.meta.category == ZYDIS_CATEGORY_COND_BR || in.mnemonic == ZYDIS_MNEMONIC_CALL ||
	     in.mnemonic == ZYDIS_MNEMONIC_LOOP || in.mnemonic == ZYDIS_MNEMONIC_LOOPE ||
	     in.mnemonic == ZYDIS_MNEMONIC_LOOPNE || in.mnemonic == ZYDIS_MNEMONIC_JRCXZ ||
	     in.mnemonic == ZYDIS_MNEMONIC_JECXZ || in.mnemonic == ZYDIS_MNEMONIC_XBEGIN)) {
		z.branch = true;
		z.rel = ops[0].imm.value.s;
	}
	return z;
}

static void hex(char *out, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n && i < 15; i++)
		out += sprintf(out, "%02x ", p[i]);
}

/* one instruction: both decoders agree wherever Zydis decodes it */
static bool agree(const uint8_t *p, size_t n, const char *where, uint64_t off, bool quiet)
{
	struct zy z = zydis(p, n);
	struct sd_insn_len f;
	int r = sd_insn_len(p, n, &f);
	char b[64] = "";

	if (!z.len)
		return true;
	if (r == 0 && f.len == z.len && f.branch == z.branch && (!z.branch || f.rel == z.rel))
		return true;
	if (!quiet) {
		hex(b, p, n);
		fprintf(stderr,
			"%s+%#" PRIx64 ": %s: zydis len %d branch %d rel %" PRId64
			", fast %s len %d branch %d rel %" PRId64 "\n",
			where, off, b, z.len, z.branch, z.rel, r ? "invalid" : "ok", r ? 0 : f.len,
			r ? 0 : f.branch, r ? 0 : f.rel);
	}
	return false;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

struct sweep {
	uint64_t *t;
	size_t n, cap;
	size_t insns, bad;
};

static void push(struct sweep *s, uint64_t v)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 4096;
		s->t = realloc(s->t, s->cap * sizeof(*s->t));
		CHECK(s->t);
	}
	s->t[s->n++] = v;
}

/* the optimizer's sweep, by each decoder; every instruction compared */
static void sweep_section(const uint8_t *code, size_t len, uint64_t base, const char *where,
			  struct sweep *zs, struct sweep *fs)
{
	for (size_t off = 0; off < len;) {
		struct zy z = zydis(code + off, len - off);

		if (!z.len) {
			off++;
			continue;
		}
		zs->insns++;
		if (!agree(code + off, len - off, where, base + off, zs->bad >= 10))
			zs->bad++;
		if (z.branch)
			push(zs, base + off + z.len + (uint64_t)z.rel);
		off += z.len;
	}
	for (size_t off = 0; off < len;) {
		struct sd_insn_len f;

		if (sd_insn_len(code + off, len - off, &f)) {
			off++;
			continue;
		}
		fs->insns++;
		if (f.branch)
			push(fs, base + off + f.len + (uint64_t)f.rel);
		off += f.len;
	}
}

/* every executable section of @path; false if the file is not here */
static bool check_file(const char *path)
{
	struct sweep zs = {0}, fs = {0};
	Elf_Scn *scn = NULL;
	size_t shstrndx;
	Elf *e;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false;
	elf_version(EV_CURRENT);
	e = elf_begin(fd, ELF_C_READ, NULL);
	CHECK(e);
	CHECK(elf_getshdrstrndx(e, &shstrndx) == 0);
	while ((scn = elf_nextscn(e, scn))) {
		GElf_Shdr sh;
		Elf_Data *d;
		char where[512];

		if (!gelf_getshdr(scn, &sh) || !(sh.sh_flags & SHF_EXECINSTR) ||
		    sh.sh_type != SHT_PROGBITS)
			continue;
		d = elf_getdata(scn, NULL);
		if (!d || !d->d_buf)
			continue;
		snprintf(where, sizeof(where), "%s:%s", path, elf_strptr(e, shstrndx, sh.sh_name));
		sweep_section(d->d_buf, d->d_size, sh.sh_addr, where, &zs, &fs);
	}
	elf_end(e);
	close(fd);
	printf("%s: %zu instructions, %zu branches; %zu disagree\n", path, zs.insns, zs.n, zs.bad);
	CHECK_EQ(zs.bad, 0);
	CHECK_EQ(fs.insns, zs.insns);
	CHECK_EQ(fs.n, zs.n);
	qsort(zs.t, zs.n, sizeof(*zs.t), cmp_u64);
	qsort(fs.t, fs.n, sizeof(*fs.t), cmp_u64);
	CHECK(zs.n == 0 || memcmp(zs.t, fs.t, zs.n * sizeof(*zs.t)) == 0);
	free(zs.t);
	free(fs.t);
	return true;
}

static void init(void)
{
	ZydisDecoderInit(&dec, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
}

TEST(real_binaries)
{
	static const char *const files[] = {
	    "/lib/x86_64-linux-gnu/libc.so.6",
	    "/lib64/ld-linux-x86-64.so.2",
	    "/lib/x86_64-linux-gnu/libm.so.6",
	    "/usr/lib/x86_64-linux-gnu/libstdc++.so.6",
	    "/usr/bin/python3",
	    "/usr/lib/x86_64-linux-gnu/libZydis.so.4",
	    "/usr/lib/x86_64-linux-gnu/libdw.so.1",
	    "/usr/bin/bash",
	    SONDE_LIB_DIR "/libsonde.so",
	    SONDE_BIN,
	};
	int found = 0;

	init();
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		found += check_file(files[i]);
	/* libc and the command at least are on every machine that runs this */
	CHECK(found >= 2);
}

/* encodings the tables tell apart, each checked against Zydis */
TEST(forms)
{
	static const struct {
		const char *what;
		uint8_t b[15];
		int len;
	} cases[] = {
	    {"add r/m, imm32 with 66: imm16", {0x66, 0x81, 0xc0, 0x34, 0x12}, 5},
	    {"66 REX.W: imm32", {0x66, 0x48, 0x81, 0xc0, 1, 2, 3, 4}, 8},
	    {"mov r64, imm64", {0x48, 0xb8, 1, 2, 3, 4, 5, 6, 7, 8}, 10},
	    {"mov r16, imm16", {0x66, 0xb8, 1, 2}, 4},
	    {"mov al, moffs64", {0xa0, 1, 2, 3, 4, 5, 6, 7, 8}, 9},
	    {"mov al, moffs32 (67)", {0x67, 0xa0, 1, 2, 3, 4}, 6},
	    {"enter", {0xc8, 0x10, 0x00, 0x01}, 4},
	    {"ret imm16", {0xc2, 0x08, 0x00}, 3},
	    {"test r/m8, imm8 (F6 /0)", {0xf6, 0x07, 0x01}, 3},
	    {"test r/m8, imm8 (F6 /1)", {0xf6, 0x0f, 0x01}, 3},
	    {"not r/m8 (F6 /2)", {0xf6, 0x17}, 2},
	    {"test r/m32, imm32", {0xf7, 0x44, 0x24, 0x08, 1, 2, 3, 4}, 8},
	    {"test r/m16, imm16", {0x66, 0xf7, 0x00, 1, 2}, 5},
	    {"mov r/m, imm32 rip-relative", {0xc7, 0x05, 1, 2, 3, 4, 5, 6, 7, 8}, 10},
	    {"xbegin rel32", {0xc7, 0xf8, 0x10, 0, 0, 0}, 6},
	    {"sib, no base: disp32", {0x8b, 0x04, 0x25, 1, 2, 3, 4}, 7},
	    {"sib, rbp base, disp8", {0x8b, 0x44, 0x25, 0x08}, 4},
	    {"disp32", {0x8b, 0x80, 1, 2, 3, 4}, 6},
	    {"jcc rel32", {0x0f, 0x84, 0x00, 0x01, 0x00, 0x00}, 6},
	    {"jrcxz", {0xe3, 0xfe}, 2},
	    {"loop", {0xe2, 0xfe}, 2},
	    {"call rel32", {0xe8, 0xfb, 0xff, 0xff, 0xff}, 5},
	    {"bnd jmp", {0xf2, 0xe9, 0, 0, 0, 0}, 6},
	    {"endbr64", {0xf3, 0x0f, 0x1e, 0xfa}, 4},
	    {"cs nopw", {0x2e, 0x66, 0x0f, 0x1f, 0x84, 0, 0, 0, 0, 0}, 10},
	    {"pshufd (0F 70 ib)", {0x66, 0x0f, 0x70, 0xc1, 0x1b}, 5},
	    {"pshufb (0F 38)", {0x66, 0x0f, 0x38, 0x00, 0xc1}, 5},
	    {"palignr (0F 3A ib)", {0x66, 0x0f, 0x3a, 0x0f, 0xc1, 0x08}, 6},
	    {"shld imm8", {0x0f, 0xa4, 0xc1, 0x03}, 4},
	    {"bt imm8 (0F BA)", {0x0f, 0xba, 0xe0, 0x03}, 4},
	    {"cmpps imm8 (0F C2)", {0x0f, 0xc2, 0xc1, 0x01}, 4},
	    {"3DNow (0F 0F)", {0x0f, 0x0f, 0xc1, 0x9e}, 4},
	    {"vzeroupper (VEX, no ModRM)", {0xc5, 0xf8, 0x77}, 3},
	    {"vpxor (C5)", {0xc5, 0xf1, 0xef, 0xc0}, 4},
	    {"vpshufd (C5 map 1, ib)", {0xc5, 0xf9, 0x70, 0xc1, 0x1b}, 5},
	    {"vpbroadcastb (C4 map 2)", {0xc4, 0xe2, 0x7d, 0x78, 0xc0}, 5},
	    {"vpalignr (C4 map 3, ib)", {0xc4, 0xe3, 0x71, 0x0f, 0xc2, 0x08}, 6},
	    {"vmovdqu64 (EVEX) disp8", {0x62, 0xf1, 0xfe, 0x48, 0x6f, 0x46, 0x01}, 7},
	    {"vpcmpub (EVEX map 3, ib)", {0x62, 0xf3, 0x7d, 0x48, 0x3e, 0xc1, 0x04}, 7},
	    {"vpternlogd (EVEX) rip", {0x62, 0xf3, 0x75, 0x48, 0x25, 0x05, 1, 2, 3, 4, 0x96}, 11},
	    {"pop r/m (8F /0)", {0x8f, 0x00}, 2},
	    {"xop vpcmov (map 8, ib)", {0x8f, 0xe8, 0x78, 0xa2, 0xc1, 0x20}, 6},
	    {"lock cmpxchg", {0xf0, 0x48, 0x0f, 0xb1, 0x11}, 5},
	    {"rep movsb", {0xf3, 0xa4}, 2},
	    {"push imm32", {0x68, 1, 2, 3, 4}, 5},
	    {"imul imm8", {0x6b, 0xc0, 0x05}, 3},
	    {"extrq (66 0F 78 /0 ib ib)", {0x66, 0x0f, 0x78, 0xc0, 0x01, 0x02}, 6},
	};
	int valid = 0;

	init();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sd_insn_len f;
		struct zy z = zydis(cases[i].b, 15);

		if (z.len) {
			valid++;
			CHECK(agree(cases[i].b, 15, cases[i].what, 0, false));
		}
		/* the length the SDM gives, whatever Zydis says */
		if (sd_insn_len(cases[i].b, 15, &f) != 0 || f.len != cases[i].len) {
			fprintf(stderr, "%s: fast decoder says %d\n", cases[i].what,
				sd_insn_len(cases[i].b, 15, &f) ? -1 : f.len);
			CHECK(0);
		}
	}
	CHECK(valid > 40);
}

/* instructions cut short or too long are refused, never read past the end */
TEST(bounds)
{
	static const uint8_t movabs[] = {0x48, 0xb8, 1, 2, 3, 4, 5, 6, 7, 8};
	uint8_t pre[16];
	struct sd_insn_len f;

	for (size_t n = 0; n < sizeof(movabs); n++)
		CHECK(sd_insn_len(movabs, n, &f) == -1);
	CHECK(sd_insn_len(movabs, sizeof(movabs), &f) == 0 && f.len == 10);
	/* fifteen bytes at most: 14 prefixes and a nop fit, 15 do not */
	memset(pre, 0x66, sizeof(pre));
	pre[14] = 0x90;
	CHECK(sd_insn_len(pre, 15, &f) == 0 && f.len == 15);
	pre[14] = 0x66;
	pre[15] = 0x90;
	CHECK(sd_insn_len(pre, 16, &f) == -1);
	/* these are not instructions in 64-bit mode */
	CHECK(sd_insn_len((const uint8_t[]){0x06}, 1, &f) == -1);
	CHECK(sd_insn_len((const uint8_t[]){0xd4, 0x0a}, 2, &f) == -1);
	CHECK(sd_insn_len((const uint8_t[]){0x66, 0xc5, 0xf8, 0x77}, 4, &f) == -1);
}

/* random bytes: wherever Zydis decodes an instruction, the lengths agree */
TEST(random_bytes)
{
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	size_t valid = 0, bad = 0;

	init();
	for (int i = 0; i < 2000000; i++) {
		uint8_t b[15];

		for (int j = 0; j < 15; j++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			b[j] = (uint8_t)x;
		}
		/* half the cases start with prefixes and escapes, where the rules are */
		if (i & 1) {
			static const uint8_t lead[] = {0x66, 0x67, 0xf2, 0xf3, 0x48, 0x0f,
						       0xc4, 0xc5, 0x62, 0x8f, 0xf0, 0x2e};

			b[0] = lead[(x >> 40) % sizeof(lead)];
			if ((x >> 48) & 1)
				b[1] = 0x0f;
		}
		if (!zydis(b, 15).len)
			continue;
		valid++;
		if (!agree(b, 15, "random", (uint64_t)i, bad >= 20))
			bad++;
	}
	printf("random: %zu valid instructions, %zu disagree\n", valid, bad);
	CHECK(valid > 100000);
	CHECK_EQ(bad, 0);
}
