// SPDX-License-Identifier: MIT
/*
 * test_usdt.c - USDT notes, argument specs and their uprobe_events lines.
 *
 *  - notes: a hand-built ELF file (ET_EXEC and ET_DYN, a data segment
 *    loaded at another delta than the text, notes written before a
 *    "prelink" moved the sections, a probe without semaphore, symbols) read
 *    back: addresses as recorded, adjusted addresses, file offsets; broken
 *    notes are refused naming the note; this test program's own
 *    <sys/sdt.h> probes, whose file offsets must lead to the runtime
 *    address of the probe's label;
 *  - argument specs: a table of x86-64 specs and the fetch expression and
 *    type each becomes, and a table of bad specs with the message and the
 *    column;
 *  - the fetch grammar's extension for them, +DISP(%base,%index,SCALE):
 *    parsed, run on a register set over test memory, and its errors;
 *  - whole lines: default arguments, the user's argN words, the trace spec
 *    expanded against this process (sites named NAME, NAME_1…).
 */
#include <elf.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>
#if __has_include(<sys/sdt.h>)
#include <sys/sdt.h>
#define HAVE_SDT 1
#else
#define HAVE_SDT 0 /* no systemtap-sdt-dev: the tests of this program's own probes skip */
#define STAP_PROBE(p, n)
#define STAP_PROBE1(p, n, a)	((void)(a))
#define STAP_PROBE2(p, n, a, b) ((void)(a), (void)(b))
#endif

#include <sonde/sonde.h>

#include "check.h"
#include "common/compiler.h"
#include "trace/event.h"
#include "trace/probe_def.h"
#include "usdt/usdt.h"

/* ---- a hand-built ELF file ------------------------------------------------------------------ */

#define OFF_TEXT   0x1000 /* .text, 0x100 bytes of nop */
#define OFF_BASE   0x1100 /* .stapsdt.base, 1 byte */
#define OFF_PROBES 0x2000 /* .probes (semaphores), in the data segment */
#define OFF_DATA   0x2100 /* .data: gvar at +0, garr at +0x100 */
#define OFF_NOTES  0x3000
#define OFF_SYMTAB 0x3800
#define OFF_STRTAB 0x3900
#define OFF_SHSTR  0x3a00
#define OFF_SHDRS  0x4000
#define DATA_DELTA 0x1000 /* the data segment's vaddr - offset exceeds the text's by this */
#define NSECS	   9

struct note {
	uint64_t pc, base, sem;
	const char *provider, *name, *args;
	size_t truncate; /* > 0: cut the descriptor to this many bytes */
};

struct elf_img {
	char path[64];
	uint64_t text_vaddr; /* link-time address of file offset 0 */
};

static void put(unsigned char *img, size_t off, const void *p, size_t n)
{
	memcpy(img + off, p, n);
}

static size_t add_str(char *tab, size_t *len, const char *s)
{
	size_t at = *len;

	strcpy(tab + at, s);
	*len += strlen(s) + 1;
	return at;
}

/* write the file; vaddr(x) = text_vaddr + x in the text segment, + DATA_DELTA in the data one */
static void make_elf(struct elf_img *e, bool pie, const struct note *notes, int n)
{
	static unsigned char img[OFF_SHDRS + NSECS * sizeof(Elf64_Shdr)];
	uint64_t tv = pie ? 0 : 0x400000;
	Elf64_Ehdr eh = {0};
	Elf64_Phdr ph[2] = {0};
	Elf64_Shdr sh[NSECS] = {0};
	char shstr[256] = "", strtab[64] = "";
	size_t shlen = 1, stlen = 1, noff = OFF_NOTES;
	Elf64_Sym syms[3] = {0};
	int fd;

	memset(img, 0, sizeof(img));
	e->text_vaddr = tv;
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_VERSION] = EV_CURRENT;
	eh.e_type = pie ? ET_DYN : ET_EXEC;
	eh.e_machine = EM_X86_64;
	eh.e_version = EV_CURRENT;
	eh.e_entry = tv + OFF_TEXT;
	eh.e_phoff = sizeof(eh);
	eh.e_shoff = OFF_SHDRS;
	eh.e_ehsize = sizeof(eh);
	eh.e_phentsize = sizeof(Elf64_Phdr);
	eh.e_phnum = 2;
	eh.e_shentsize = sizeof(Elf64_Shdr);
	eh.e_shnum = NSECS;
	eh.e_shstrndx = NSECS - 1;

	ph[0] = (Elf64_Phdr){PT_LOAD, PF_R | PF_X, 0, tv, tv, 0x1200, 0x1200, 0x1000};
	ph[1] = (Elf64_Phdr){PT_LOAD,
			     PF_R | PF_W,
			     OFF_PROBES,
			     tv + OFF_PROBES + DATA_DELTA,
			     tv + OFF_PROBES + DATA_DELTA,
			     0x1000,
			     0x1000,
			     0x1000};
	memset(img + OFF_TEXT, 0x90, 0x100);

	for (int i = 0; i < n; i++) {
		const struct note *t = &notes[i];
		unsigned char desc[512];
		size_t dl = 24;
		Elf64_Nhdr nh = {sizeof("stapsdt"), 0, 3};

		memcpy(desc, &t->pc, 8);
		memcpy(desc + 8, &t->base, 8);
		memcpy(desc + 16, &t->sem, 8);
		dl += (size_t)sprintf((char *)desc + dl, "%s", t->provider) + 1;
		dl += (size_t)sprintf((char *)desc + dl, "%s", t->name) + 1;
		dl += (size_t)sprintf((char *)desc + dl, "%s", t->args) + 1;
		if (t->truncate)
			dl = t->truncate;
		nh.n_descsz = (Elf64_Word)dl;
		put(img, noff, &nh, sizeof(nh));
		put(img, noff + sizeof(nh), "stapsdt", 8);
		put(img, noff + sizeof(nh) + 8, desc, dl);
		noff += sizeof(nh) + 8 + ((dl + 3) & ~(size_t)3);
	}

	syms[1].st_name = (Elf64_Word)add_str(strtab, &stlen, "gvar");
	syms[1].st_info = ELF64_ST_INFO(STB_GLOBAL, STT_OBJECT);
	syms[1].st_shndx = 4;
	syms[1].st_value = tv + OFF_DATA + DATA_DELTA;
	syms[1].st_size = 8;
	syms[2].st_name = (Elf64_Word)add_str(strtab, &stlen, "garr");
	syms[2].st_info = ELF64_ST_INFO(STB_GLOBAL, STT_OBJECT);
	syms[2].st_shndx = 4;
	syms[2].st_value = tv + OFF_DATA + 0x100 + DATA_DELTA;
	syms[2].st_size = 32;
	put(img, OFF_SYMTAB, syms, sizeof(syms));
	put(img, OFF_STRTAB, strtab, stlen);

#define SEC(i, nm, type, flags, addr, off, size, link, info, align, ent) \
	sh[i] = (Elf64_Shdr){(Elf64_Word)add_str(shstr, &shlen, nm),     \
			     type,                                       \
			     flags,                                      \
			     addr,                                       \
			     off,                                        \
			     size,                                       \
			     link,                                       \
			     info,                                       \
			     align,                                      \
			     ent}
	SEC(1, ".text", SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, tv + OFF_TEXT, OFF_TEXT, 0x100, 0,
	    0, 16, 0);
	SEC(2, ".stapsdt.base", SHT_PROGBITS, SHF_ALLOC, tv + OFF_BASE, OFF_BASE, 1, 0, 0, 1, 0);
	SEC(3, ".probes", SHT_PROGBITS, SHF_ALLOC | SHF_WRITE, tv + OFF_PROBES + DATA_DELTA,
	    OFF_PROBES, 0x10, 0, 0, 2, 0);
	SEC(4, ".data", SHT_PROGBITS, SHF_ALLOC | SHF_WRITE, tv + OFF_DATA + DATA_DELTA, OFF_DATA,
	    0x200, 0, 0, 8, 0);
	SEC(5, ".note.stapsdt", SHT_NOTE, 0, 0, OFF_NOTES, noff - OFF_NOTES, 0, 0, 4, 0);
	SEC(6, ".symtab", SHT_SYMTAB, 0, 0, OFF_SYMTAB, sizeof(syms), 7, 1, 8, sizeof(Elf64_Sym));
	SEC(7, ".strtab", SHT_STRTAB, 0, 0, OFF_STRTAB, stlen, 0, 0, 1, 0);
	SEC(8, ".shstrtab", SHT_STRTAB, 0, 0, OFF_SHSTR, 0, 0, 0, 1, 0);
#undef SEC
	sh[8].sh_size = shlen;
	put(img, OFF_SHSTR, shstr, shlen);
	put(img, 0, &eh, sizeof(eh));
	put(img, sizeof(eh), ph, sizeof(ph));
	put(img, OFF_SHDRS, sh, sizeof(sh));

	snprintf(e->path, sizeof(e->path), "/tmp/sonde-test-usdt.XXXXXX");
	fd = mkstemp(e->path);
	CHECK(fd >= 0);
	CHECK(write(fd, img, sizeof(img)) == (ssize_t)sizeof(img));
	close(fd);
}

/* link-time addresses of the image's places */
#define PC(e, x)  ((e)->text_vaddr + OFF_TEXT + (x))
#define BASE(e)	  ((e)->text_vaddr + OFF_BASE)
#define SEM(e, x) ((e)->text_vaddr + OFF_PROBES + DATA_DELTA + (x))

static struct sd_usdt_file *open_ok(const char *path)
{
	struct sd_usdt_file *f = NULL;
	int r = sd_usdt_open(path, &f);

	if (r)
		check_fail(__FILE__, __LINE__, "sd_usdt_open(%s): %d %s", path, r,
			   sonde_last_error());
	return f;
}

/* ---- notes ------------------------------------------------------------------------------------
 */

static void check_notes(bool pie)
{
	struct elf_img e;
	struct sd_usdt_file *f;
	const struct sd_usdt_probe *p;
	const int64_t shift = 0x10000; /* the notes were written before a prelink moved things */
	uint64_t tv = pie ? 0 : 0x400000;
	struct note notes[] = {
	    {tv + OFF_TEXT + 0x10, tv + OFF_BASE, tv + OFF_PROBES + DATA_DELTA + 2, "prov", "one",
	     "-4@%edi 8@%rsi", 0},
	    {tv + OFF_TEXT + 0x20 - shift, tv + OFF_BASE - shift,
	     tv + OFF_PROBES + DATA_DELTA + 4 - shift, "prov", "moved", "", 0},
	    {tv + OFF_TEXT + 0x30, tv + OFF_BASE, 0, "other", "nosem", "8@$1", 0},
	};

	make_elf(&e, pie, notes, 3);
	f = open_ok(e.path);
	CHECK_STREQ(sd_usdt_path(f), e.path);
	CHECK_EQ(sd_usdt_count(f), 3);

	p = sd_usdt_at(f, 0);
	CHECK_STREQ(p->provider, "prov");
	CHECK_STREQ(p->name, "one");
	CHECK_STREQ(p->args, "-4@%edi 8@%rsi");
	CHECK_EQ(p->note_pc, PC(&e, 0x10));
	CHECK_EQ(p->note_base, BASE(&e));
	CHECK_EQ(p->note_sem, SEM(&e, 2));
	CHECK_EQ(p->pc, PC(&e, 0x10));
	CHECK(p->pc_mapped && p->sem_mapped);
	CHECK_EQ(p->pc_offset, OFF_TEXT + 0x10);
	CHECK_EQ(p->sem_offset, OFF_PROBES + 2); /* through the data segment's own delta */

	p = sd_usdt_at(f, 1);
	CHECK_STREQ(p->name, "moved");
	CHECK_STREQ(p->args, "");
	CHECK_EQ(p->note_pc, PC(&e, 0x20) - shift); /* as recorded: what readelf shows */
	CHECK_EQ(p->note_base, BASE(&e) - shift);
	CHECK_EQ(p->pc, PC(&e, 0x20)); /* adjusted by the real .stapsdt.base */
	CHECK_EQ(p->sem, SEM(&e, 4));
	CHECK_EQ(p->pc_offset, OFF_TEXT + 0x20);
	CHECK_EQ(p->sem_offset, OFF_PROBES + 4);

	p = sd_usdt_at(f, 2);
	CHECK_STREQ(p->provider, "other");
	CHECK_EQ(p->sem, 0);
	CHECK(!p->sem_mapped);
	CHECK(!sd_usdt_at(f, 3));
	sd_usdt_free(f);
	unlink(e.path);
}

TEST(notes_exec)
{
	check_notes(false);
}

TEST(notes_pie)
{
	check_notes(true);
}

TEST(notes_malformed)
{
	struct note bad[] = {
	    {0x1010, 0x1100, 0, "p", "ok", "", 0},
	    {0x1010, 0x1100, 0, "p", "cut", "8@%rax", 24 + 2 + 2}, /* "p\0cu" */
	};
	struct sd_usdt_file *f = NULL;
	struct elf_img e;

	make_elf(&e, true, bad, 2);
	CHECK_EQ(sd_usdt_open(e.path, &f), -ENOEXEC);
	CHECK(!f);
	CHECK(strstr(sonde_last_error(), "stapsdt note 1"));
	CHECK(strstr(sonde_last_error(), e.path));
	unlink(e.path);

	bad[0].truncate = 20; /* shorter than the three addresses */
	make_elf(&e, true, bad, 1);
	CHECK_EQ(sd_usdt_open(e.path, &f), -ENOEXEC);
	CHECK(strstr(sonde_last_error(), "stapsdt note 0 is too short"));
	unlink(e.path);

	CHECK_EQ(sd_usdt_open("/nonexistent/x", &f), -ENOENT);
	CHECK(strstr(sonde_last_error(), "/nonexistent/x"));
	CHECK_EQ(sd_usdt_open("/etc/passwd", &f), -ENOEXEC);
	CHECK(strstr(sonde_last_error(), "not an ELF file"));
}

/* no notes: no probes, no error */
TEST(notes_none)
{
	struct sd_usdt_file *f;
	struct elf_img e;

	make_elf(&e, true, NULL, 0);
	f = open_ok(e.path);
	CHECK_EQ(sd_usdt_count(f), 0);
	sd_usdt_free(f);
	unlink(e.path);
}

/* this program's own probes: their file offsets lead to the labels' runtime addresses */
__attribute__((noinline)) static int own_probes(int x, long y)
{
	STAP_PROBE2(test_usdt, twice, x, y);
	STAP_PROBE1(test_usdt, twice, x + 1);
	STAP_PROBE(test_usdt, noargs);
	return x;
}

static bool exe_mapping(unsigned long *lo, unsigned long *pgoff, const char *perm_want, char *path,
			size_t cap, unsigned long addr)
{
	char line[1024], perm[8], file[512];
	FILE *m = fopen("/proc/self/maps", "r");
	unsigned long a, b, off;
	bool ok = false;

	while (m && fgets(line, sizeof(line), m)) {
		file[0] = 0;
		if (sscanf(line, "%lx-%lx %7s %lx %*s %*s %511s", &a, &b, perm, &off, file) < 4)
			continue;
		if (addr >= a && addr < b && !strcmp(perm, perm_want)) {
			*lo = a;
			*pgoff = off;
			snprintf(path, cap, "%s", file);
			ok = true;
		}
	}
	if (m)
		fclose(m);
	return ok;
}

TEST(own_notes)
{
	unsigned long lo, pgoff, bias;
	char path[512];
	struct sd_usdt_file *f;
	int found = 0;

	if (!HAVE_SDT)
		SKIP("no <sys/sdt.h> (systemtap-sdt-dev)");
	CHECK_EQ(own_probes(1, 2), 1);
	CHECK(exe_mapping(&lo, &pgoff, "r-xp", path, sizeof(path), (unsigned long)own_probes));
	f = open_ok(path);
	bias = lo - pgoff; /* runtime address of file offset 0 in the text mapping */
	for (size_t i = 0; i < sd_usdt_count(f); i++) {
		const struct sd_usdt_probe *p = sd_usdt_at(f, i);
		unsigned char byte;

		if (strcmp(p->provider, "test_usdt"))
			continue;
		found++;
		CHECK(p->pc_mapped);
		/* the probe site is a nop, and inside own_probes() */
		memcpy(&byte, (void *)(bias + p->pc_offset), 1);
		CHECK_EQ(byte, 0x90);
		CHECK(bias + p->pc_offset > (unsigned long)own_probes);
		CHECK(bias + p->pc_offset < (unsigned long)own_probes + 256);
		CHECK_EQ(p->sem, 0);
	}
	CHECK_EQ(found, 3);
	sd_usdt_free(f);
}

/* ---- argument specs ------------------------------------------------------------------------- */

static struct sd_usdt_probe fake_probe(const struct elf_img *e, const char *args)
{
	struct sd_usdt_probe p = {.provider = "t", .name = "n", .args = args};

	p.pc = p.note_pc = PC(e, 0x10);
	p.note_base = BASE(e);
	p.pc_offset = OFF_TEXT + 0x10;
	p.pc_mapped = true;
	return p;
}

/* the fetch text of the single argument @spec, "EXPR:TYPE", or NULL with the error */
static const char *fetch_of(struct sd_usdt_file *f, const struct elf_img *e, const char *spec)
{
	static char buf[256];
	struct sd_usdt_probe p = fake_probe(e, spec);
	struct sd_usdt_arg a[SD_USDT_MAX_ARGS];
	char expr[128], type[32];
	int n = sd_usdt_parse_args(&p, a, SD_USDT_MAX_ARGS);

	if (n != 1)
		return NULL;
	if (sd_usdt_arg_fetch(f, &p, &a[0], expr, sizeof(expr), type, sizeof(type)))
		return NULL;
	snprintf(buf, sizeof(buf), "%s:%s", expr, type);
	return buf;
}

struct spec_case {
	const char *spec, *want;
};

static void check_specs(bool pie, const struct spec_case *cases, size_t n)
{
	struct elf_img e;
	struct sd_usdt_file *f;

	make_elf(&e, pie, NULL, 0);
	f = open_ok(e.path);
	for (size_t i = 0; i < n; i++) {
		const char *got = fetch_of(f, &e, cases[i].spec);

		if (!got || strcmp(got, cases[i].want))
			check_fail(__FILE__, __LINE__, "%s %s: got %s, want %s (%s)",
				   pie ? "pie" : "exec", cases[i].spec, got ? got : "an error",
				   cases[i].want, got ? "" : sonde_last_error());
	}
	sd_usdt_free(f);
	unlink(e.path);
}

/* @+OFF of link-time address @v in the image: v - (probe vaddr - probe offset) */
#define FOFF(tv, v) ((unsigned long)((v) - (tv)))

TEST(arg_specs)
{
	char rip_sym[64], rip_sym8[64], rip_disp[64], rip_neg[64];
	const struct spec_case cases[] = {
	    /* registers, every width */
	    {"-4@%edi", "%di:s32"},
	    {"8@%rax", "%ax:u64"},
	    {"-8@%rsp", "%sp:s64"},
	    {"2@%ax", "%ax:u16"},
	    {"-2@%bp", "%bp:s16"},
	    {"-1@%al", "%ax:s8"},
	    {"1@%sil", "%si:u8"},
	    {"1@%dil", "%di:u8"},
	    {"1@%bpl", "%bp:u8"},
	    {"1@%spl", "%sp:u8"},
	    {"1@%ah", "%ax:b8@8/16"},
	    {"1@%bh", "%bx:b8@8/16"},
	    {"1@%ch", "%cx:b8@8/16"},
	    {"1@%dh", "%dx:b8@8/16"},
	    {"-4@%r8d", "%r8:s32"},
	    {"2@%r15w", "%r15:u16"},
	    {"1@%r9b", "%r9:u8"},
	    {"1@%r10l", "%r10:u8"},
	    {"8@%r12", "%r12:u64"},
	    {"4@%eip", "%ip:u32"},
	    /* old specs without a size: the register's width, unsigned */
	    {"%edi", "%di:u32"},
	    {"%rax", "%ax:u64"},
	    /* memory */
	    {"8@-16(%rbp)", "-16(%bp):u64"},
	    {"-4@112(%rsp)", "+112(%sp):s32"},
	    {"8@(%rsp)", "+0(%sp):u64"},
	    {"8@0x10(%rax)", "+16(%ax):u64"},
	    {"-8@-0x8(%rbx)", "-8(%bx):s64"},
	    /* scaled index: the grammar's extension */
	    {"-8@(%rdi,%rsi,8)", "+0(%di,%si,8):s64"},
	    {"-8@8(%r9,%rdi,8)", "+8(%r9,%di,8):s64"},
	    {"4@-4(%rax,%rbx)", "-4(%ax,%bx,1):u32"},
	    {"4@-4(%rax,%rbx,1)", "-4(%ax,%bx,1):u32"},
	    {"8@(,%rdx,4)", "+0(,%dx,4):u64"},
	    {"2@24(,%r11,2)", "+24(,%r11,2):u16"},
	    /* constants */
	    {"-4@$-7", "\\-7:s32"},
	    {"4@$42", "\\42:u32"},
	    {"8@$0x10", "\\16:u64"},
	    {"-8@$-9223372036854775808", "\\-9223372036854775808:s64"},
	    {"1@$0", "\\0:u8"},
	    /* %rip-relative and symbols: filled in below */
	    {"-8@gvar(%rip)", rip_sym},
	    {"-8@gvar+8(%rip)", rip_sym8},
	    {"-8@8+gvar(%rip)", rip_sym8},
	    {"-4@0x20(%rip)", rip_disp},
	    {"-4@-0x20(%rip)", rip_neg},
	};
	size_t n = ARRAY_SIZE(cases);
	struct spec_case *c = malloc(sizeof(cases));

	memcpy(c, cases, sizeof(cases));
	for (int pie = 0; pie < 2; pie++) {
		uint64_t tv = pie ? 0 : 0x400000;
		size_t k = 0;

		snprintf(rip_sym, sizeof(rip_sym), "@+0x%lx:s64",
			 FOFF(tv, tv + OFF_DATA + DATA_DELTA));
		snprintf(rip_sym8, sizeof(rip_sym8), "@+0x%lx:s64",
			 FOFF(tv, tv + OFF_DATA + DATA_DELTA + 8));
		snprintf(rip_disp, sizeof(rip_disp), "@+0x%lx:s32",
			 FOFF(tv, tv + OFF_TEXT + 0x10 + 0x20));
		snprintf(rip_neg, sizeof(rip_neg), "@+0x%lx:s32",
			 FOFF(tv, tv + OFF_TEXT + 0x10 - 0x20));
		for (size_t i = 0; i < n; i++)
			if (cases[i].want)
				c[k++] = cases[i];
		check_specs(pie, c, k);
	}
	free(c);
}

/* symbols and absolute addresses: only an ET_EXEC has constant addresses */
TEST(arg_specs_exec_only)
{
	char abs_sym[64], imm_sym[64], abs_num[64], mem_sym[64];
	struct spec_case exec_cases[] = {
	    {"8@gvar", abs_sym},
	    {"8@$gvar", imm_sym},
	    {"4@0x402000", abs_num},
	    {"8@garr(,%rax,8)", mem_sym},
	};
	const char *pie_fail[] = {"8@$gvar", "4@0x402000", "8@garr(,%rax,8)"};
	struct elf_img e;
	struct sd_usdt_file *f;

	snprintf(abs_sym, sizeof(abs_sym), "@+0x%x:u64", OFF_DATA + DATA_DELTA);
	snprintf(imm_sym, sizeof(imm_sym), "\\0x%x:u64", 0x400000 + OFF_DATA + DATA_DELTA);
	snprintf(abs_num, sizeof(abs_num), "@+0x%x:u32", 0x2000);
	snprintf(mem_sym, sizeof(mem_sym), "+%d(,%%ax,8):u64",
		 0x400000 + OFF_DATA + 0x100 + DATA_DELTA);
	check_specs(false, exec_cases, ARRAY_SIZE(exec_cases));

	make_elf(&e, true, NULL, 0);
	f = open_ok(e.path);
	for (size_t i = 0; i < ARRAY_SIZE(pie_fail); i++) {
		if (fetch_of(f, &e, pie_fail[i]))
			check_fail(__FILE__, __LINE__, "pie: %s accepted", pie_fail[i]);
		CHECK(strstr(sonde_last_error(), "position-independent"));
	}
	/* a symbol the file does not have */
	CHECK(!fetch_of(f, &e, "8@nosuch(%rip)"));
	CHECK(strstr(sonde_last_error(), "nosuch, which is not in the symbol table"));
	/* the gvar symbol of a PIE: @+ the same way */
	CHECK_STREQ(fetch_of(f, &e, "8@gvar"), "@+0x3100:u64");
	sd_usdt_free(f);
	unlink(e.path);
}

struct bad_spec {
	const char *args;
	int argno, col;
	const char *msg;
};

TEST(arg_spec_errors)
{
	static const struct bad_spec bad[] = {
	    {"3@%eax", 1, 1, "the size must be 1, 2, 4 or 8, not 3"},
	    {"16@%rax", 1, 1, "the size must be 1, 2, 4 or 8, not 16"},
	    {"4@%foo", 1, 3, "unknown register %foo"},
	    {"-4@%edi 4@%foo", 2, 11, "unknown register %foo"},
	    {"8@%xmm0", 1, 3, "floating-point and vector registers (%xmm0) are not supported"},
	    {"8@%st0", 1, 3, "floating-point"},
	    {"8@%fs:0x28", 1, 3, "segment-relative operands (%fs:) are not supported"},
	    {"8@(%rax", 1, 8, "missing ')'"},
	    {"8@(%rax,%rbx,3)", 1, 14, "the scale must be 1, 2, 4 or 8, not 3"},
	    {"8@(%eax)", 1, 4, "an address register must be a 64-bit one, not %eax"},
	    {"8@(%rax,%ebx,2)", 1, 9, "an address register must be a 64-bit one, not %ebx"},
	    {"8@(%rax,%rsp,2)", 1, 9, "%rsp cannot be an index"},
	    {"8@8(%rip,%rax,2)", 1, 9, "%rip-relative addresses take no index"},
	    {"8@()", 1, 4, "expected a register or ',' after '('"},
	    {"8@(,)", 1, 5, "expected an index register"},
	    {"8@(,%rax,)", 1, 10, "expected a scale (1, 2, 4 or 8)"},
	    {"4@", 1, 3, "expected an operand"},
	    {"4@%", 1, 3, "expected a register name after '%'"},
	    {"x@%eax", 1, 1, "expected the size before '@'"},
	    {"4x@%eax", 1, 2, "expected '@' after the size"},
	    {"8@%rbx)", 1, 7, "unexpected ')'"},
	    {"8@(%rbx)x", 1, 9, "unexpected 'x'"},
	    {"4@$", 1, 4, "expected a number after '$'"},
	    {"4@$12x", 1, 6, "unexpected 'x'"},
	    {"8@sym@GOTPCREL(%rip)", 1, 6,
	     "relocation suffixes (@GOTPCREL(%rip)) are not supported"},
	    {"8@a+b(%rip)", 1, 5, "more than one symbol"},
	    {"8@-a(%rip)", 1, 4, "a symbol cannot be subtracted"},
	    {"8@0x(%rax)", 1, 3, "expected a number"},
	    {"8@99999999999999999999(%rax)", 1, 3, "number out of range"},
	};
	struct sd_usdt_arg a[SD_USDT_MAX_ARGS];

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct sd_usdt_probe p = {.provider = "prov", .name = "nm", .args = bad[i].args};
		char want[512];
		const char *arg = bad[i].args;
		int r;

		for (int k = 1; k < bad[i].argno; k++)
			arg = strchr(arg, ' ') + 1;
		snprintf(want, sizeof(want), "prov:nm: argument %d '%.*s', column %d: %s",
			 bad[i].argno, (int)strcspn(arg, " "), arg, bad[i].col, bad[i].msg);
		r = sd_usdt_parse_args(&p, a, SD_USDT_MAX_ARGS);
		if (r != -EINVAL || strncmp(sonde_last_error(), want, strlen(want)))
			check_fail(__FILE__, __LINE__, "'%s': %d '%s', want '%s'", bad[i].args, r,
				   sonde_last_error(), want);
	}
	/* more than 12 */
	{
		struct sd_usdt_probe p = {
		    .provider = "p",
		    .name = "n",
		    .args = "1@$1 1@$2 1@$3 1@$4 1@$5 1@$6 1@$7 1@$8 1@$9 1@$10 1@$11 1@$12 1@$13"};

		CHECK_EQ(sd_usdt_parse_args(&p, a, SD_USDT_MAX_ARGS), -E2BIG);
	}
	/* whitespace of any amount, the columns of each argument */
	{
		struct sd_usdt_probe p = {
		    .provider = "p", .name = "n", .args = "  -4@%edi\t 8@%rsi  "};

		CHECK_EQ(sd_usdt_parse_args(&p, a, SD_USDT_MAX_ARGS), 2);
		CHECK_EQ(a[0].col, 3);
		CHECK_EQ(a[0].len, 7);
		CHECK_EQ(a[0].argno, 1);
		CHECK_EQ(a[1].col, 12);
		CHECK_EQ(a[1].argno, 2);
		CHECK_EQ(a[0].size, 4);
		CHECK(a[0].is_signed);
		CHECK(!a[1].is_signed);
	}
}

/* ---- the fetch grammar's extension ---------------------------------------------------------- */

static struct sd_probe_def *parse_line(const char *line, struct sd_parse_error *err)
{
	char rg[SD_EVENT_NAME_MAX], re[SD_EVENT_NAME_MAX];
	struct sd_probe_def *def = NULL;

	memset(err, 0, sizeof(*err));
	if (sd_probe_parse(line, SD_PROBE_UPROBE, &def, rg, re, err))
		return NULL;
	return def;
}

static uint64_t field_of(const struct sd_probe_def *def, const void *entry, const char *name)
{
	for (int i = 0; i < def->nargs; i++)
		if (!strcmp(def->args[i].name, name))
			return sd_field_value(&def->args[i].field, entry);
	check_fail(__FILE__, __LINE__, "no argument %s", name);
}

TEST(fetch_sib)
{
	static int64_t arr[6] = {10, -20, 30, -40, 50, -60};
	static int32_t words[4] = {-1, -2, -3, -4};
	struct sonde_regs regs = {0};
	struct sd_fetch_ctx ctx = {.regs = &regs};
	struct sd_parse_error err;
	struct sd_probe_def *def;
	unsigned char *entry;
	uint32_t dyn;
	char line[512];

	snprintf(line, sizeof(line),
		 "p:g/e /proc/self/exe:0x10 a=+0(%%di,%%si,8):s64 b=+8(%%di,%%si,8):s64 "
		 "c=-8(%%di,%%si,8):s64 d=+%lu(,%%dx,4):s32 e=+0(%%r8,%%r9,1):u8 "
		 "f=+0(+0(%%di,%%si,8)):u64 bad=+0(%%cx,%%si,8):s64",
		 (unsigned long)(uintptr_t)words);
	def = parse_line(line, &err);
	if (!def)
		check_fail(__FILE__, __LINE__, "%s at %d", err.msg, err.pos);
	regs.di = (uintptr_t)arr;
	regs.si = 2;
	regs.dx = 3;
	regs.r8 = (uintptr_t)arr + 8;
	regs.r9 = 0;
	regs.cx = 0x10; /* a bad pointer */
	dyn = sd_probe_dynamic_size(def, &ctx);
	entry = calloc(1, def->fixed_size + dyn);
	sd_probe_store_args(def, &ctx, entry, dyn);
	CHECK_EQ(field_of(def, entry, "a"), 30);
	CHECK_EQ(field_of(def, entry, "b"), -40);
	CHECK_EQ(field_of(def, entry, "c"), -20);
	CHECK_EQ(field_of(def, entry, "d"), -4);
	CHECK_EQ(field_of(def, entry, "e"), (uint8_t)-20);
	CHECK_EQ(field_of(def, entry, "f"), 0); /* 30 is no pointer */
	CHECK_EQ(field_of(def, entry, "bad"), 0);
	free(entry);
	sd_probe_def_free(def);

	/* the readback is the line as written */
	def = parse_line("p:g/e /proc/self/exe:0x10 a=+8(%ax,%dx,8):u64", &err);
	CHECK(def);
	CHECK_STREQ(def->args[0].comm, "+8(%ax,%dx,8):u64");
	sd_probe_def_free(def);
}

struct bad_line {
	const char *line;
	const char *msg;
	const char *at; /* the error points at the first occurrence of this */
};

TEST(fetch_sib_errors)
{
	static const struct bad_line bad[] = {
	    {"p:g/e /proc/self/exe:0x10 a=+0(%ax,%zz,8)", "Invalid register name", "%zz"},
	    {"p:g/e /proc/self/exe:0x10 a=+0(%zz,%ax,8)", "Invalid register name", "%zz"},
	    {"p:g/e /proc/self/exe:0x10 a=+0(%ax,%dx,3)", "Invalid fetch argument", "3)"},
	    {"p:g/e /proc/self/exe:0x10 a=+0(%ax,%dx)", "Invalid fetch argument", "%dx"},
	    {"p:g/e /proc/self/exe:0x10 a=+0(%ax,%dx,x)", "Invalid fetch argument", "x)"},
	    {"p:g/e /proc/self/exe:0x10 a=+0(ax,%dx,8)", "Invalid register name", "ax,"},
	    {"p:g/e /proc/self/exe:0x10 a=+0(%ax,%dx,8,1)", "Invalid fetch argument", "8,1"},
	    /* only inside a dereference: the kernel's message elsewhere */
	    {"p:g/e /proc/self/exe:0x10 a=%ax,%dx,8", "Invalid register name", "%ax"},
	};

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct sd_parse_error err;
		struct sd_probe_def *def = parse_line(bad[i].line, &err);
		int want = (int)(strstr(bad[i].line, bad[i].at) - bad[i].line);

		if (def || !err.msg || strcmp(err.msg, bad[i].msg) || err.pos != want)
			check_fail(__FILE__, __LINE__, "'%s': %s at %d, want %s at %d", bad[i].line,
				   def	     ? "accepted"
				   : err.msg ? err.msg
					     : "?",
				   err.pos, bad[i].msg, want);
	}
}

/* ---- whole lines ------------------------------------------------------------------------------
 */

TEST(probe_lines)
{
	/* a PIE: link-time addresses are file offsets, + DATA_DELTA in the data segment */
	struct note notes[] = {
	    {OFF_TEXT + 0x10, OFF_BASE, OFF_PROBES + DATA_DELTA + 2, "my-prov", "ev",
	     "-4@%edi 8@-16(%rbp) 1@%ah", 0},
	    {OFF_TEXT + 0x20, OFF_BASE, 0, "p", "nosem", "", 0},
	};
	struct sd_usdt_file *f;
	struct elf_img e;
	char *line, want[1024];
	struct sd_parse_error err;
	struct sd_probe_def *def;

	make_elf(&e, true, notes, 2);
	f = open_ok(e.path);

	CHECK_EQ(sd_usdt_probe_def(f, sd_usdt_at(f, 0), NULL, NULL, NULL, NULL, &line), 0);
	snprintf(want, sizeof(want),
		 "p:sdt_my-prov/ev %s:0x1010(0x2002) arg1=%%di:s32 arg2=-16(%%bp):u64 "
		 "arg3=%%ax:b8@8/16",
		 e.path);
	CHECK_STREQ(line, want);
	/* the parser takes it, as it is */
	def = parse_line(line, &err);
	CHECK(def);
	CHECK_STREQ(def->group, "sdt_my-prov");
	CHECK_STREQ(def->event, "ev");
	CHECK(def->has_ref_ctr);
	CHECK_EQ(def->ref_ctr_offset, 0x2002);
	CHECK_EQ(def->nargs, 3);
	sd_probe_def_free(def);
	free(line);

	/* the user's words: argN alone (a type, a name), in an expression, other fetch args */
	CHECK_EQ(sd_usdt_probe_def(f, sd_usdt_at(f, 0), "grp", "other", "/other/path",
				   "arg2 s=arg2:string x=arg1:x32 f=+8(arg2):u32 "
				   "g=+0(+8(arg2)):string c=$comm arr=arg2:u8[4] arg3",
				   &line),
		 0);
	CHECK_STREQ(line, "p:grp/other /other/path:0x1010(0x2002) arg2=-16(%bp):u64 "
			  "s=+0(-16(%bp)):string x=%di:x32 f=+8(-16(%bp)):u32 "
			  "g=+0(+8(-16(%bp))):string c=$comm arr=+0(-16(%bp)):u8[4] "
			  "arg3=%ax:b8@8/16");
	free(line);

	/* no semaphore: no (REF_CTR_OFFSET) */
	CHECK_EQ(sd_usdt_probe_def(f, sd_usdt_at(f, 1), NULL, NULL, NULL, NULL, &line), 0);
	snprintf(want, sizeof(want), "p:sdt_p/nosem %s:0x1020", e.path);
	CHECK_STREQ(line, want);
	free(line);

	/* errors */
	CHECK_EQ(sd_usdt_probe_def(f, sd_usdt_at(f, 0), NULL, NULL, NULL, "arg4", &line), -EINVAL);
	CHECK(!line);
	CHECK(strstr(sonde_last_error(), "'arg4': my-prov:ev has 3 arguments"));
	CHECK_EQ(sd_usdt_probe_def(f, sd_usdt_at(f, 0), NULL, NULL, NULL, "x=arg3:u32", &line),
		 -EINVAL);
	CHECK(strstr(sonde_last_error(), "high byte register"));
	CHECK_EQ(sd_usdt_probe_def(f, sd_usdt_at(f, 0), NULL, NULL, NULL, "+4(arg3)", &line),
		 -EINVAL);
	CHECK_EQ(sd_usdt_probe_def(f, sd_usdt_at(f, 1), NULL, NULL, NULL, "arg1", &line), -EINVAL);
	CHECK(strstr(sonde_last_error(), "p:nosem has 0 arguments"));
	/* argN as a part of a name is not a reference */
	CHECK_EQ(sd_usdt_probe_def(f, sd_usdt_at(f, 0), NULL, NULL, NULL, "myarg1=$arg1x", &line),
		 0);
	CHECK(strstr(line, " myarg1=$arg1x"));
	free(line);
	sd_usdt_free(f);
	unlink(e.path);
}

/* the trace spec against this process: its own probes, two sites of one name */
TEST(expand_self)
{
	char **lines;
	int n;

	if (!HAVE_SDT)
		SKIP("no <sys/sdt.h> (systemtap-sdt-dev)");
	CHECK_EQ(own_probes(3, 4), 3);
	CHECK(sd_usdt_is_spec("u:a:b"));
	CHECK(sd_usdt_is_spec("usdt:/x:a:b"));
	CHECK(!sd_usdt_is_spec("p:a/b x"));
	CHECK(!sd_usdt_is_spec("uprobes:x"));

	n = sd_usdt_expand("u:test_usdt:twice", 0, &lines);
	if (n < 0)
		check_fail(__FILE__, __LINE__, "%s", sonde_last_error());
	CHECK_EQ(n, 2);
	CHECK(!strncmp(lines[0], "p:sdt_test_usdt/twice /", 23));
	CHECK(strstr(lines[0], " arg1=") && strstr(lines[0], " arg2="));
	CHECK(!strncmp(lines[1], "p:sdt_test_usdt/twice_1 /", 25));
	CHECK(strstr(lines[1], " arg1=") && !strstr(lines[1], " arg2="));
	sd_usdt_lines_free(lines, n);

	/* globs, a path by name, user args */
	n = sd_usdt_expand("usdt:test_usdt:* ", 0, &lines);
	CHECK_EQ(n, 3);
	sd_usdt_lines_free(lines, n);
	n = sd_usdt_expand("usdt:test_usdt:tw* x=arg1", 0, &lines);
	CHECK_EQ(n, 2);
	CHECK(strstr(lines[0], " x="));
	sd_usdt_lines_free(lines, n);
	{
		char spec[700], exe[512];
		ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

		CHECK(len > 0);
		exe[len] = 0;
		snprintf(spec, sizeof(spec), "u:%s:test_usdt:noargs", exe);
		n = sd_usdt_expand(spec, 0, &lines);
		CHECK_EQ(n, 1);
		CHECK(strstr(lines[0], "p:sdt_test_usdt/noargs "));
		sd_usdt_lines_free(lines, n);
		snprintf(spec, sizeof(spec), "u:%s:test_usdt:noargs", strrchr(exe, '/') + 1);
		n = sd_usdt_expand(spec, 0, &lines);
		CHECK_EQ(n, 1);
		sd_usdt_lines_free(lines, n);
	}

	/* errors */
	CHECK_EQ(sd_usdt_expand("u:test_usdt:nosuch", 0, &lines), -ENOENT);
	CHECK(strstr(sonde_last_error(), "no USDT probe test_usdt:nosuch"));
	CHECK_EQ(sd_usdt_expand("u:nosuchobject:a:b", 0, &lines), -ENOENT);
	CHECK(strstr(sonde_last_error(), "no object named nosuchobject"));
	CHECK_EQ(sd_usdt_expand("u:justone", 0, &lines), -EINVAL);
	CHECK_EQ(sd_usdt_expand("u::b", 0, &lines), -EINVAL);
	CHECK_EQ(sd_usdt_expand("u:a:", 0, &lines), -EINVAL);
	CHECK_EQ(sd_usdt_expand("u::a:b", 0, &lines), -EINVAL);
	CHECK_EQ(sd_usdt_expand("u:test_usdt:twice arg9", 0, &lines), -EINVAL);
	CHECK(strstr(sonde_last_error(), "has 2 arguments"));
}
