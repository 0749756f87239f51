// SPDX-License-Identifier: MIT
/*
 * test_probe_def.c - the kprobe_events / uprobe_events grammar, fetch
 * arguments and their rendering.
 *
 *  - definitions parsed into the kernel's record layout, readback line and
 *    print fmt (the packed layout captured from the kernel);
 *  - a table of malformed definitions with the kernel's message, caret
 *    position and errno;
 *  - fetch programs run on a hand-made struct sonde_regs over test memory
 *    (strings, arrays, a struct, bad pointers) and rendered;
 *  - error_log formatting and its ring of 8;
 *  - where tracefs and uprobes are available (root): the live kernel as the
 *    oracle, for readback, format and error_log of a table of definitions
 *    on a function of this program, and for the trace text of a real hit.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "common/log.h"
#include "trace/errlog.h"
#include "trace/event.h"
#include "trace/probe_def.h"
#include "trace/seq.h"

#define TRACEFS "/sys/kernel/tracing"

/* ---- helpers ------------------------------------------------------------------------------- */

struct pd_obj {
	int32_t a;
	char name[8];
	int64_t b;
	const char *str;
	const char *strs[3];
	uint8_t bytes[4];
};

long pd_oracle_fn(long a, const char *s, struct pd_obj *p, unsigned long x, const char *bad,
		  const char *const *arr);

/* the function the kernel oracle probes */
__attribute__((noinline, used)) long pd_oracle_fn(long a, const char *s, struct pd_obj *p,
						  unsigned long x, const char *bad,
						  const char *const *arr)
{
	__asm__ __volatile__("" ::"r"(a), "r"(s), "r"(p), "r"(x), "r"(bad), "r"(arr) : "memory");
	return a + p->a;
}

/* this program's file and the file offset of @fn in it */
static bool text_offset(void *fn, char *path, size_t cap, unsigned long *off)
{
	unsigned long lo, hi, pgoff, addr = (unsigned long)fn;
	char line[1024], perm[8], file[512];
	FILE *m = fopen("/proc/self/maps", "r");
	bool ok = false;

	if (!m)
		return false;
	while (fgets(line, sizeof(line), m)) {
		file[0] = 0;
		if (sscanf(line, "%lx-%lx %7s %lx %*s %*s %511s", &lo, &hi, perm, &pgoff, file) < 4)
			continue;
		if (addr >= lo && addr < hi && file[0] == '/') {
			snprintf(path, cap, "%s", file);
			*off = addr - lo + pgoff;
			ok = true;
			break;
		}
	}
	fclose(m);
	return ok;
}

static char exe[512];
static unsigned long fn_off;
static char group[64] = "pdt";

static void setup_paths(void)
{
	if (!exe[0])
		CHECK(text_offset((void *)pd_oracle_fn, exe, sizeof(exe), &fn_off));
}

/* @t with EXE, GRP and OFF replaced */
static char *expand(const char *t)
{
	size_t cap = strlen(t) + 4096, n = 0;
	char *out = malloc(cap);

	setup_paths();
	while (*t) {
		if (!strncmp(t, "EXE", 3)) {
			n += (size_t)sprintf(out + n, "%s", exe);
			t += 3;
		} else if (!strncmp(t, "GRP", 3)) {
			n += (size_t)sprintf(out + n, "%s", group);
			t += 3;
		} else if (!strncmp(t, "OFF", 3)) {
			n += (size_t)sprintf(out + n, "0x%lx", fn_off);
			t += 3;
		} else {
			out[n++] = *t++;
		}
	}
	out[n] = 0;
	return out;
}

static struct sd_probe_def *parse_ok(int kind, const char *cmd)
{
	char rg[SD_EVENT_NAME_MAX], re[SD_EVENT_NAME_MAX];
	struct sd_parse_error err = {0};
	struct sd_probe_def *def = NULL;
	int r = sd_probe_parse(cmd, kind, &def, rg, re, &err);

	if (r)
		check_fail(__FILE__, __LINE__, "parse \"%s\": %d %s at %d", cmd, r,
			   err.msg ? err.msg : "(no message)", err.pos);
	CHECK(def);
	return def;
}

static char readback_buf[8192];

static const char *readback(const struct sd_probe_def *def)
{
	struct sd_seq s;

	sd_seq_init(&s, readback_buf, sizeof(readback_buf));
	sd_probe_def_print(&s, def);
	return readback_buf;
}

static const struct sd_field *arg_field(const struct sd_probe_def *def, const char *name)
{
	for (int i = 0; i < def->nargs; i++)
		if (!strcmp(def->args[i].name, name))
			return &def->args[i].field;
	check_fail(__FILE__, __LINE__, "no argument %s", name);
}

/* ---- parsing: layout, readback, print fmt ------------------------------------------------------
 */

TEST(uprobe_packed_layout)
{
	char *cmd = expand("p:grp/ev EXE:0x1149 a=%di:s8 b=%di:x8 c=+0(%si):u8[3] d=%si:b4@2/32 "
			   "e=$comm f=\\7 g=+0(%si):char h=$stack0 i=$stack");
	struct sd_probe_def *def = parse_ok(SD_PROBE_UPROBE, cmd);
	static const struct {
		const char *name, *type;
		int off, size, sign, ftype;
	} want[] = {
	    {"a", "s8", 16, 1, 1, SD_FT_SIGNED},
	    {"b", "u8", 17, 1, 0, SD_FT_HEX},
	    {"c", "u8", 18, 3, 0, SD_FT_UNSIGNED},
	    {"d", "u32", 21, 4, 0, SD_FT_UNSIGNED},
	    {"e", "__data_loc char[]", 25, 4, 1, SD_FT_STRING},
	    {"f", "u64", 29, 8, 0, SD_FT_HEX},
	    {"g", "u8", 37, 1, 0, SD_FT_CHAR},
	    {"h", "u64", 38, 8, 0, SD_FT_HEX},
	    {"i", "u64", 46, 8, 0, SD_FT_HEX},
	};
	struct sd_field *fields;
	unsigned int n;

	CHECK_EQ(def->kind, SD_PROBE_UPROBE);
	CHECK_STREQ(def->group, "grp");
	CHECK_STREQ(def->event, "ev");
	CHECK_STREQ(def->path, exe);
	CHECK_EQ(def->file_offset, 0x1149);
	CHECK_EQ(def->nargs, 9);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const struct sd_field *f = arg_field(def, want[i].name);

		CHECK_STREQ(f->c_type, want[i].type);
		CHECK_EQ(f->offset, want[i].off);
		CHECK_EQ(f->size, want[i].size);
		CHECK_EQ(f->is_signed, want[i].sign);
		CHECK_EQ(f->ftype, want[i].ftype);
	}
	CHECK_EQ(arg_field(def, "c")->array_len, 3);
	CHECK_EQ(arg_field(def, "c")->unsized, 1);
	CHECK_EQ(arg_field(def, "e")->dynamic, 1);
	CHECK_EQ(def->fixed_size, 54);
	CHECK_STREQ(def->print_fmt,
		    "\"(%lx) a=%d b=0x%x c={%u,%u,%u} d=%u e=\\\"%s\\\" f=0x%Lx g='%c' h=0x%Lx "
		    "i=0x%Lx\", REC->__probe_ip, REC->a, REC->b, REC->c[0], REC->c[1], REC->c[2], "
		    "REC->d, __get_str(e), REC->f, REC->g, REC->h, REC->i");
	CHECK_EQ(sd_probe_def_fields(def, &fields, &n), 0);
	CHECK_EQ(n, 10);
	CHECK_STREQ(fields[0].name, "__probe_ip");
	CHECK_STREQ(fields[0].c_type, "unsigned long");
	CHECK_EQ(fields[0].offset, 8);
	CHECK_EQ(fields[0].size, 8);
	CHECK_STREQ(fields[3].name, "c");
	CHECK_EQ(fields[3].offset, 18);
	for (unsigned int i = 0; i < n; i++) {
		free(fields[i].name);
		free(fields[i].c_type);
	}
	free(fields);
	sd_probe_def_free(def);
	free(cmd);
}

TEST(uprobe_readback)
{
	static const struct {
		const char *cmd, *line, *fmt;
	} cases[] = {
	    {"p:grp/ev EXE:0x1149 a=%di:u64 s=+0(%si):string x=%si:x32",
	     "p:grp/ev EXE:0x0000000000001149 a=%di:u64 s=+0(%si):string x=%si:x32",
	     "\"(%lx) a=%Lu s=\\\"%s\\\" x=0x%x\", REC->__probe_ip, REC->a, __get_str(s), REC->x"},
	    {"r:grp/rev EXE:0x1149 $retval", "r:grp/rev EXE:0x0000000000001149 arg1=$retval",
	     "\"(%lx <- %lx) arg1=0x%Lx\", REC->__probe_func, REC->__probe_ret_ip, REC->arg1"},
	    {"p EXE:0x1149 %di %si",
	     "p:uprobes/p_test_0x1149 EXE:0x0000000000001149 arg1=%di arg2=%si", NULL},
	    {"r EXE:4425", "r:uprobes/p_test_0x1149 EXE:0x0000000000001149", NULL},
	    {"p:g.e EXE:0x10%return(0x2010) %ax", "r:g/e EXE:0x0000000000000010(0x2010) arg1=%ax",
	     NULL},
	    {"p:g/ EXE:0x10(0) a=@+0x20:u16", "p:g/p_test_0x10 EXE:0x0000000000000010 a=@+0x20:u16",
	     NULL},
	    {"p2:ignored/x EXE:010", "p:uprobes/p_test_0x8 EXE:0x0000000000000008", NULL},
	    {"p:g/e EXE:0x10 s=+0(%si):string[2] c=$comm i=\\\"imm\" n=\\-5:s8",
	     "p:g/e EXE:0x0000000000000010 s=+0(%si):string[2] c=$comm i=\\\"imm\" n=\\-5:s8",
	     "\"(%lx) s={\\\"%s\\\",\\\"%s\\\"} c=\\\"%s\\\" i=\\\"%s\\\" n=%d\", REC->__probe_ip, "
	     "__get_str(s[0]), __get_str(s[1]), __get_str(c), __get_str(i), REC->n"},
	    {"p:g/e EXE:0x10 a=+0(%si):x8[2] b=+0(%si):b2@1/8[2]",
	     "p:g/e EXE:0x0000000000000010 a=+0(%si):x8[2] b=+0(%si):b2@1/8[2]",
	     "\"(%lx) a={0x%x,0x%x} b={%u,%u}\", REC->__probe_ip, REC->a[0], REC->a[1], "
	     "REC->b[0], REC->b[1]"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *cmd = expand(cases[i].cmd), *line = expand(cases[i].line);
		struct sd_probe_def *def = parse_ok(SD_PROBE_UPROBE, cmd);

		CHECK_STREQ(readback(def), line);
		if (cases[i].fmt)
			CHECK_STREQ(def->print_fmt, cases[i].fmt);
		sd_probe_def_free(def);
		free(cmd);
		free(line);
	}
}

TEST(string_array_field)
{
	char *cmd = expand("p:g/e EXE:0x10 s=+0(%si):string[2]");
	struct sd_probe_def *def = parse_ok(SD_PROBE_UPROBE, cmd);
	const struct sd_field *f = arg_field(def, "s");

	CHECK_STREQ(f->c_type, "__data_loc char[][2]");
	CHECK_EQ(f->size, 8);
	CHECK_EQ(f->array_len, 2);
	CHECK_EQ(f->dynamic, 1);
	CHECK_EQ(f->is_signed, 1);
	sd_probe_def_free(def);
	free(cmd);
}

TEST(kprobe_readback_and_names)
{
	static const struct {
		const char *cmd, *line;
		int is_return, maxactive;
	} cases[] = {
	    {"p:myprobe do_sys_open dfd=%ax filename=%dx flags=%cx mode=+4($stack)",
	     "p:kprobes/myprobe do_sys_open dfd=%ax filename=%dx flags=%cx mode=+4($stack)", 0, 0},
	    {"r:myretprobe do_sys_open $retval", "r:kprobes/myretprobe do_sys_open arg1=$retval", 1,
	     0},
	    {"p:grp/ev vfs_read+0x10 cnt=%dx:u32 name=+0(+8(%di)):string",
	     "p:grp/ev vfs_read+16 cnt=%dx:u32 name=+0(+8(%di)):string", 0, 0},
	    {"r16:rp tcp_sendmsg ret=$retval:s32", "r16:kprobes/rp tcp_sendmsg ret=$retval:s32", 1,
	     16},
	    {"r0x10:rp tcp_sendmsg", "r16:kprobes/rp tcp_sendmsg", 1, 16},
	    {"p:rp2 tcp_sendmsg%return $retval", "r:kprobes/rp2 tcp_sendmsg arg1=$retval", 1, 0},
	    {"p vfs_read+16", "p:kprobes/p_vfs_read_16 vfs_read+16", 0, 0},
	    {"r libc.so.6:malloc", "r:kprobes/r_libc_so_6_malloc_0 libc.so.6:malloc", 1, 0},
	    {"p ld-linux-x86-64.so.2:_dl_start+0x4",
	     "p:kprobes/p_ld_linux_x86_64_so_2__dl_start_4 ld-linux-x86-64.so.2:_dl_start+4", 0, 0},
	    {"p 0x401000", "p:kprobes/p_0x0000000000401000 0x0000000000401000", 0, 0},
	    {"r4096 f", "r4096:kprobes/r_f_0 f", 1, 4096},
	    {"p:ev f a=@var+8:u32 b=@var-4 c=%ip:symbol d=%ip:symstr",
	     "p:kprobes/ev f a=@var+8:u32 b=@var-4 c=%ip:symbol d=%ip:symstr", 0, 0},
	    {"p:ev f a=$arg1 b=$arg7:s32", "p:kprobes/ev f a=$arg1 b=$arg7:s32", 0, 0},
	    {"p:ev f $arg1 $arg2", "p:kprobes/ev f arg1=$arg1 arg2=$arg2", 0, 0},
	    {"p:ev f a=+0(+0(+0(+0(+0(+0(+0(+0(+0(+0(+0(+0(@sym))))))))))))",
	     "p:kprobes/ev f a=+0(+0(+0(+0(+0(+0(+0(+0(+0(+0(+0(+0(@sym))))))))))))", 0, 0},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sd_probe_def *def = parse_ok(SD_PROBE_KPROBE, cases[i].cmd);

		CHECK_EQ(def->is_return, cases[i].is_return);
		CHECK_EQ(def->maxactive, cases[i].maxactive);
		CHECK_STREQ(readback(def), cases[i].line);
		if (strstr(cases[i].cmd, "ld-linux")) {
			CHECK_STREQ(def->module, "ld-linux-x86-64.so.2");
			CHECK_STREQ(def->symbol, "_dl_start");
			CHECK_EQ(def->offset, 4);
		}
		sd_probe_def_free(def);
	}
}

TEST(kprobe_location_fields)
{
	struct sd_probe_def *def = parse_ok(SD_PROBE_KPROBE, "p:g/e libc.so.6:malloc+0x20 a=%di");

	CHECK_STREQ(def->module, "libc.so.6");
	CHECK_STREQ(def->symbol, "malloc");
	CHECK_EQ(def->offset, 0x20);
	CHECK_EQ(def->fixed_size, 24);
	CHECK_EQ(def->loc_pos, 6);
	CHECK_EQ(def->args[0].pos, 28);
	sd_probe_def_free(def);

	def = parse_ok(SD_PROBE_KPROBE, "r:g/e 0x7f0000001000 $retval");
	CHECK(!def->symbol);
	CHECK_EQ(def->addr, 0x7f0000001000ull);
	CHECK_EQ(def->fixed_size, 32);
	CHECK_STREQ(
	    def->print_fmt,
	    "\"(%lx <- %lx) arg1=0x%Lx\", REC->__probe_func, REC->__probe_ret_ip, REC->arg1");
	sd_probe_def_free(def);
}

TEST(remove_lines)
{
	char rg[SD_EVENT_NAME_MAX], re[SD_EVENT_NAME_MAX];
	struct sd_parse_error err = {0};
	struct sd_probe_def *def = NULL;

	CHECK_EQ(sd_probe_parse("-:grp/ev", SD_PROBE_KPROBE, &def, rg, re, &err), 1);
	CHECK_STREQ(rg, "grp");
	CHECK_STREQ(re, "ev");
	CHECK(!def);
	CHECK_EQ(sd_probe_parse("  -:myprobe ", SD_PROBE_UPROBE, &def, rg, re, &err), 1);
	CHECK_STREQ(rg, "");
	CHECK_STREQ(re, "myprobe");
	CHECK_EQ(sd_probe_parse("-:grp/", SD_PROBE_UPROBE, &def, rg, re, &err), 1);
	CHECK_STREQ(rg, "grp");
	CHECK_STREQ(re, "");
	CHECK_EQ(sd_probe_parse("-:", SD_PROBE_UPROBE, &def, rg, re, &err), -EINVAL);
	CHECK_EQ(sd_probe_parse("-grp/ev", SD_PROBE_UPROBE, &def, rg, re, &err), -EINVAL);
	CHECK(!err.msg);
}

/* ---- malformed definitions ------------------------------------------------------------------ */

#define K SD_PROBE_KPROBE
#define U SD_PROBE_UPROBE

struct bad {
	int kind;
	const char *cmd;
	const char *at; /* the caret is at this text of the (expanded) command, plus adj */
	int adj;
	const char *msg;
	int err; /* 0: -EINVAL */
};

static const struct bad bad_defs[] = {
    /* fetch arguments (shared code: the uprobe oracle checks these) */
    {U, "p:GRP/e1 EXE:0x10 a=%zz", "%zz", 0, "Invalid register name", 0},
    {U, "p:GRP/e1 EXE:0x10 a=%rax", "%rax", 0, "Invalid register name", 0},
    {U, "p:GRP/e1 EXE:0x10 a=+0(%si", "+0(%si", 6, "Dereference brace is not closed", 0},
    {U, "p:GRP/e1 EXE:0x10 a=+0%si", "+0%si", 0, "Dereference needs a brace", 0},
    {U, "p:GRP/e1 EXE:0x10 a=+z(%si)", "+z", 0, "Invalid dereference offset", 0},
    {U, "p:GRP/e1 EXE:0x10 a=+0(+8(%zz))", "%zz", 0, "Invalid register name", 0},
    {U, "p:GRP/e1 EXE:0x10 a=-8(+0(%zz)):u32", "%zz", 0, "Invalid register name", 0},
    {U, "p:GRP/e1 EXE:0x10 a=+u8(+0(%zz)):u32", "%zz", -1, "Invalid register name", 0},
    {U, "p:GRP/e1 EXE:0x10 a=+0(+0(+0(+0(+0(+0(+0(+0(+0(+0(+0(+0(+0(+0(+0(%si)))))))))))))))",
     "+0(", 3, "Dereference is too much nested", 0},
    {U, "p:GRP/e1 EXE:0x10 a=+0(+0(+0(+0(+0(+0(+0(+0(+0(+0(+0(+0(@0x10)))))))))))):string[2]",
     "+0(", 3, "Dereference is too much nested", -E2BIG},
    {U, "p:GRP/e1 EXE:0x10 a=+0(+0(+0(+0(+0(+0(+0(+0(+0(+0(+0(+0(+0(+0(@+0x10))))))))))))))", "+0(",
     3, "Dereference is too much nested", 0},
    {U, "p:GRP/e1 EXE:0x10 a=+0(+0(+0(+0(+0(+0(+0(+0(+0(+0(+0(+0(+0(+0(%si)))))))))))))):u8[2]",
     "+0(", 0, "Argument expression is too long", -E2BIG},
    {U, "p:GRP/e1 EXE:0x10 a=+0($comm)", "$comm", 0, "$comm can not be dereferenced", 0},
    {U, "p:GRP/e1 EXE:0x10 a=+0(\\\"abc\")", "\\\"", 0, "$comm can not be dereferenced", 0},
    {U, "p:GRP/e1 EXE:0x10 a=\\\"abc", "\\\"abc", 5, "String is not closed with '\"'", 0},
    {U, "p:GRP/e1 EXE:0x10 a=\\\"a b\"", "\\\"a", 3, "String is not closed with '\"'", 0},
    {U, "p:GRP/e1 EXE:0x10 a=\\\"", "a=\\\"", 4, "String is not closed with '\"'", 0},
    {U, "p:GRP/e1 EXE:0x10 a=\\zz", "zz", 0, "Invalid immediate value", 0},
    {U, "p:GRP/e1 EXE:0x10 a=\\", "a=\\", 3, "Invalid immediate value", 0},
    {U, "p:GRP/e1 EXE:0x10 a=@zz", "@zz", 0, "Symbol is not available with uprobe", 0},
    {U, "p:GRP/e1 EXE:0x10 a=@", "@", 0, "Symbol is not available with uprobe", 0},
    {U, "p:GRP/e1 EXE:0x10 a=@0xzz", "@0xzz", 0, "Invalid memory address", 0},
    {U, "p:GRP/e1 EXE:0x10 a=@+zz", "@+zz", 0, "Invalid file offset value", 0},
    {U, "p:GRP/e1 EXE:0x10 a=$stackzz", "$stackzz", 0, "Invalid $-variable specified", 0},
    {U, "p:GRP/e1 EXE:0x10 a=$stack99999999999999999999", "$stack", 0,
     "Invalid $-variable specified", 0},
    {U, "p:GRP/e1 EXE:0x10 a=$foo", "$foo", 0, "Invalid $-variable specified", 0},
    {U, "p:GRP/e1 EXE:0x10 a=$comm[2]", "$comm", 0, "Invalid $-variable specified", 0},
    {U, "p:GRP/e1 EXE:0x10 a=$arg0", "$arg0", 0, "Invalid argument number", 0},
    {U, "p:GRP/e1 EXE:0x10 a=$argx", "$argx", 0, "Invalid $-variable specified", 0},
    {U, "p:GRP/e1 EXE:0x10 $arg1", "$arg1", 0, "$arg* can be used only on function entry or exit",
     0},
    {U, "r:GRP/e1 EXE:0x10 a=$arg1", "$arg1", 0, "$arg* can be used only on function entry or exit",
     0},
    {U, "p:GRP/e1 EXE:0x10 $retval", "$retval", 0, "$retval is not available on probe", 0},
    {U, "p:GRP/e1 EXE:0x10 a=$retvalx", "$retvalx", 0, "$retval is not available on probe", 0},
    {U, "p:GRP/e1 EXE:0x10 =%di", "=%di", 0, "Argument name is not specified", 0},
    {U, "p:GRP/e1 EXE:0x10 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa=%di", "aaa", 0,
     "Argument name is too long", 0},
    {U, "p:GRP/e1 EXE:0x10 1a=%di", "1a=", 0,
     "Argument name must follow the same rules as C identifiers", 0},
    {U, "p:GRP/e1 EXE:0x10 a=%di a=%si", "a=%si", 0, "This argument name is already used", 0},
    {U, "p:GRP/e1 EXE:0x10 common_pid=%di", "common_pid", 0, "This argument name is already used",
     0},
    {U, "p:GRP/e1 EXE:0x10 __probe_ip=%di", "__probe_ip", 0, "This argument name is already used",
     0},
    {U, "p:GRP/e1 EXE:0x10 %di arg1=%si", "arg1=", 0, "This argument name is already used", 0},
    {U, "p:GRP/e1 EXE:0x10 a=", "a=", 2, "No argument expression", 0},
    {U, "p:GRP/e1 EXE:0x10 a=+0(%si):u8[3", "u8[3", 4, "Array is not closed", 0},
    {U, "p:GRP/e1 EXE:0x10 a=+0(%si):u8[3]x", "]x", 1, "Array has wrong suffix", 0},
    {U, "p:GRP/e1 EXE:0x10 a=+0(%si):x8[2]:u8", "]:u8", 1, "Array has wrong suffix", 0},
    {U, "p:GRP/e1 EXE:0x10 a=+0(%si):u8[0]", "0]", 0, "Invalid array size", 0},
    {U, "p:GRP/e1 EXE:0x10 a=+0(%si):u8[x]", "x]", 0, "Invalid array size", 0},
    {U, "p:GRP/e1 EXE:0x10 a=+0(%si):u8[65]", "65]", 0, "Array number is too big", 0},
    {U, "p:GRP/e1 EXE:0x10 a=%si:u8[2]", "u8[2]", 0, "String accepts only memory argument", 0},
    {U, "p:GRP/e1 EXE:0x10 a=+u0(%si):u8[2]", "u8[2]", 3, "String accepts only memory argument", 0},
    {U, "p:GRP/e1 EXE:0x10 a=+0(%si):symbol", "symbol", 0, "Unknown type is specified", 0},
    {U, "p:GRP/e1 EXE:0x10 a=+0(%si):b9@0/8", "b9@", 3, "Invalid bitfield", 0},
    {U, "p:GRP/e1 EXE:0x10 a=%si:string", "string", 0, "String accepts only memory argument", 0},
    {U, "p:GRP/e1 EXE:0x10 a=$stack:string", "string", 0, "String accepts only memory argument", 0},
    {U, "p:GRP/e1 EXE:0x10 a=%ax:b4@2/8[2]", "b4@", 0, "String accepts only memory argument", 0},
    {U, "p:GRP/e1 EXE:0x10 a=%si:b4@30/32", "b4@", 0, "Invalid bitfield", 0},
    {U, "p:GRP/e1 EXE:0x10 a=%si:b0@2/32", "b0@", 0, "Invalid bitfield", 0},
    {U, "p:GRP/e1 EXE:0x10 a=%si:b4/32", "b4/", 0, "Invalid bitfield", 0},
    {U, "p:GRP/e1 EXE:0x10 a=%si:bx@2/32", "bx@", 0, "Invalid bitfield", 0},
    {U, "p:GRP/e1 EXE:0x10 a=+8(+0(%si)):b4@30/32", "b4@", 3, "Invalid bitfield", 0},
    {U, "p:GRP/e1 EXE:0x10 a=%si:b4@2/31", "b4@", 0, "Unknown type is specified", 0},
    {U, "p:GRP/e1 EXE:0x10 a=%si:b4@2", "b4@", 0, "Unknown type is specified", 0},
    {U, "p:GRP/e1 EXE:0x10 a=%di:u65", "u65", 0, "Unknown type is specified", 0},
    {U, "p:GRP/e1 EXE:0x10 a=%di:", "%di:", 4, "Unknown type is specified", 0},
    {U, "p:GRP/e1 EXE:0x10 a=+0(%si):string:u8", "string:", 0, "Unknown type is specified", 0},
    {U, "p:GRP/e1 EXE:0x10 a=%ip:symbol", "symbol", 0, "Unknown type is specified", 0},
    {U, "p:GRP/e1 EXE:0x10 a=%ip:symstr", "symstr", 0, "Unknown type is specified", 0},
    {U, "p:GRP/e1 EXE:0x10 a=$comm:u32", "u32", 0,
     "$comm and immediate-string only accepts string type", 0},
    {U, "p:GRP/e1 EXE:0x10 a=$comm:string[2]", "string[", 0,
     "$comm and immediate-string only accepts string type", 0},
    {U, "p:GRP/e1 EXE:0x10 a=\\\"a:b\"", "b\"", 0,
     "$comm and immediate-string only accepts string type", 0},
    {U, "p:GRP/e1 EXE:0x10 foo", "foo", 0, "BTF is not available or not supported", 0},
    {U, "p:GRP/e1 EXE:0x10 a=(%si)", "(%si)", 0, "BTF is not available or not supported",
     -EOPNOTSUPP},
    {U, "p:GRP/e1 EXE:0x10 a=1abc", "1abc", 0, "Invalid fetch argument", 0},
    {U, "p:GRP/e1 EXE:0x10 a=*x", "*x", 0, "Invalid fetch argument", 0},
    {U, "p:GRP/e1 EXE:0x10 a=:u32", "a=", 2, "Invalid fetch argument", 0},
    {U, "p:GRP/e1 EXE:0x10 a=+0(+0(+0(+0(+0(+0(+0(+0(+0(+0(+0(+0(+0(+0(%si)))))))))))))):string",
     "+0(", 0, "Argument expression is too long", -E2BIG},
    /* uprobe location and names */
    {U, "p:GRP/e1 /nonexistent/x:0x10", "/nonexistent", 0, "Failed to find the given file",
     -ENOENT},
    {U, "p:GRP/e1 /tmp:0x10", "/tmp", 0, "Not a regular file", 0},
    {U, "p:GRP/e1 EXE:0x10(0x10", "(0x10", 5, "Reference counter brace is not closed", 0},
    {U, "p:GRP/e1 EXE:0x10(0x10)x", ")x", 1, "Reference counter has wrong suffix", 0},
    {U, "p:GRP/e1 EXE:0x10(zz)", "zz)", 0, "Invalid reference counter offset", 0},
    {U, "p:GRP/e1 EXE:0x10(0x10)%return", ")%", 1, "Reference counter has wrong suffix", 0},
    {U, "p:GRP/e1 EXE:0x10%ret", "%ret", 0, "Invalid probed address suffix", 0},
    {U, "p:GRP/e1 EXE:0x1z", "0x1z", 0, "Invalid uprobe offset", 0},
    {U, "p:/e1 EXE:0x10", "/e1", 0, "Group name is not specified", 0},
    {U, "p:1grp/e1 EXE:0x10", "1grp", 0, "Group name must follow the same rules as C identifiers",
     0},
    {U, "p:GRP/1e EXE:0x10", "1e ", 0, "Event name must follow the same rules as C identifiers", 0},
    {U, "p:GRP/e-1 EXE:0x10", "e-1", 0, "Event name must follow the same rules as C identifiers",
     0},
    {U, "p: EXE:0x10", ": ", 1, "Event name is not specified", 0},
    {U, "p:GRP/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa EXE:0x10", "aaa", 0,
     "Event name is too long", 0},
    {U, "p:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/e EXE:0x10", "aaa", 0,
     "Group name is too long", 0},
    /* kprobe_events: location, maxactive and kprobe-only fetch arguments */
    {K, "p1:ev func", "1:", 0, "Maxactive is only for function exit", 0},
    {K, "r0:ev func", "0:", 0, "Invalid maxactive number", 0},
    {K, "r99999999999:ev func", "999", 0, "Invalid maxactive number", 0},
    {K, "r4097:ev func", "4097", 0, "Maxactive is too big", 0},
    {K, "r1x func", "1x", 0, "Invalid maxactive number", 0},
    {K, "p:ev func%ret", "%ret", 0, "Invalid probed address suffix", 0},
    {K, "p:ev func%return+4", "%return", 0, "Invalid probed address suffix", 0},
    {K, "p:ev func-4", "func", 0, "Invalid probed address or symbol", 0},
    {K, "p:ev func+z", "func", 0, "Invalid probed address or symbol", 0},
    {K, "p:ev mod:", "mod", 0, "Invalid probed address or symbol", 0},
    {K, "p:ev /bin/sh:0x10", "/bin", 0, "Invalid probed address or symbol", 0},
    {K, "r:ev func+4", "func", 0, "Retprobe address must be an function entry", 0},
    {K, "p:1ev func", "1ev", 0, "Event name must follow the same rules as C identifiers", 0},
    {K, "r16:g/1ev func", "1ev", 0, "Event name must follow the same rules as C identifiers", 0},
    {K, "p:ev func a=@+0x10", "@+", 0, "File offset is not available with kprobe", 0},
    {K, "p:ev func a=$stack2049", "$stack", 0, "Invalid stack number", 0},
    {K, "p:ev func a=$arg2049", "$arg", 0, "Invalid argument number", 0},
    {K, "p:ev func+4 $arg1", "$arg1", 0, "$arg* can be used only on function entry or exit", 0},
    {K, "p:ev func+4 a=$arg1", "$arg1", 0, "$arg* can be used only on function entry or exit", 0},
    {K, "p:ev 0x1000 a=$arg1", "$arg1", 0, "$arg* can be used only on function entry or exit", 0},
    {K, "p:ev func a=%zz $argx", "$argx", 0, "Invalid $-variable specified", 0},
    {K, "p:ev func $arg* $arg*", "$arg* ", 6, "$arg* can be used only once in the parameters", 0},
    {K, "p:ev func $arg*", "$arg*", 0, "BTF is not available or not supported", 0},
    {K, "p:ev func a=\\1:symstr", "symstr", 0, "Symbol String doesn't accept data/userdata", 0},
    {K, "p:ev func a=$stack:symstr", "symstr", 0, "Symbol String doesn't accept data/userdata", 0},
    {K, "p:ev func a=$comm:symstr", "symstr", 0,
     "$comm and immediate-string only accepts string type", 0},
    {K, "p:ev func a=%di:ustring", "ustring", 0, "String accepts only memory argument", 0},
    {K, "r:ev func a=$arg1:symstr", "symstr", 0, "Symbol String doesn't accept data/userdata", 0},
    {K, "p:ev func a=%ip:symstr[2]", "symstr", 0, "String accepts only memory argument", 0},
    {K, "p:ev func a=+0(%di):%pd", "%pd", 0, "Unknown type is specified", 0},
    {K, "p:ev func a=+0(+0(+0(+0(+0(+0(+0(+0(+0(+0(+0(+0(+0(@sym)))))))))))))", "+0(", 3,
     "Dereference is too much nested", 0},
};

static void check_bad(const struct bad *b)
{
	char rg[SD_EVENT_NAME_MAX], re[SD_EVENT_NAME_MAX];
	struct sd_parse_error err = {0};
	struct sd_probe_def *def = NULL;
	char *cmd = expand(b->cmd);
	const char *at = strstr(cmd, b->at);
	int r = sd_probe_parse(cmd, b->kind, &def, rg, re, &err);

	if (!at)
		check_fail(__FILE__, __LINE__, "bad table entry: \"%s\" not in \"%s\"", b->at, cmd);
	if (r >= 0 || !err.msg)
		check_fail(__FILE__, __LINE__, "\"%s\": accepted (%d) or no message", cmd, r);
	if (strcmp(err.msg, b->msg) || err.pos != (int)(at - cmd) + b->adj)
		check_fail(__FILE__, __LINE__, "\"%s\": got \"%s\" at %d, want \"%s\" at %d", cmd,
			   err.msg, err.pos, b->msg, (int)(at - cmd) + b->adj);
	CHECK_EQ(r, b->err ? b->err : -EINVAL);
	CHECK_EQ(err.err, r);
	CHECK_STREQ(err.subsystem, b->kind == K ? "trace_kprobe" : "trace_uprobe");
	CHECK(err.words);
	CHECK(!def);
	free(cmd);
}

TEST(malformed_definitions)
{
	size_t n = sizeof(bad_defs) / sizeof(bad_defs[0]);

	CHECK(n >= 40);
	for (size_t i = 0; i < n; i++)
		check_bad(&bad_defs[i]);
}

TEST(too_many_args)
{
	char *cmd = malloc(8192), *p;
	struct sd_parse_error err = {0};
	struct sd_probe_def *def = NULL;
	char rg[SD_EVENT_NAME_MAX], re[SD_EVENT_NAME_MAX];
	int n;

	setup_paths();
	for (int kind = 0; kind < 2; kind++) {
		p = cmd + sprintf(cmd, kind == K ? "p:g/e func" : "p:g/e %s:0x10", exe);
		n = (int)(p - cmd);
		for (int i = 0; i < 129; i++)
			p += sprintf(p, " a%d=%%di", i);
		CHECK_EQ(sd_probe_parse(cmd, kind, &def, rg, re, &err), -E2BIG);
		CHECK_STREQ(err.msg, "Too many arguments are specified");
		CHECK_EQ(err.pos, n + 1);
		/* 128 is fine */
		*strrchr(cmd, ' ') = 0;
		CHECK_EQ(sd_probe_parse(cmd, kind, &def, rg, re, &err), 0);
		CHECK_EQ(def->nargs, 128);
		sd_probe_def_free(def);
	}
	free(cmd);
}

TEST(not_a_definition)
{
	static const char *const cmds[] = {"x:g/e EXE:0x10", "p:g/e tgt:0x10", "p:g/e EXE",
					   "p:g/e EXE:x10",  "p:g/e",	       ""};
	char rg[SD_EVENT_NAME_MAX], re[SD_EVENT_NAME_MAX];

	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		struct sd_parse_error err = {0};
		struct sd_probe_def *def = NULL;
		char *cmd = expand(cmds[i]);

		/* the kernel hands these to no parser: -EINVAL, nothing in error_log */
		CHECK_EQ(sd_probe_parse(cmd, U, &def, rg, re, &err), -EINVAL);
		CHECK(!err.msg);
		/* but sonde's own message names what is wrong */
		if (cmds[i][0] == 'x')
			CHECK(strstr(sonde_last_error(), "unknown probe type 'x'"));
		if (!strcmp(cmds[i], "p:g/e"))
			CHECK(strstr(sonde_last_error(), "no probe point after the event"));
		free(cmd);
	}
}

TEST(whitespace_positions)
{
	struct sd_parse_error err = {0};
	struct sd_probe_def *def = NULL;
	char rg[SD_EVENT_NAME_MAX], re[SD_EVENT_NAME_MAX], buf[1024];
	struct sd_seq s;

	CHECK_EQ(sd_probe_parse("  p:ev\t func    a=%di\t\tb=%zz  ", K, &def, rg, re, &err),
		 -EINVAL);
	CHECK_STREQ(err.msg, "Invalid register name");
	/* "p:ev func a=%di b=%zz": the kernel re-joins the words */
	CHECK_EQ(err.pos, 18);
	sd_seq_init(&s, buf, sizeof(buf));
	sd_parse_error_format(&s, &err, "  p:ev\t func    a=%di\t\tb=%zz  ");
	CHECK_STREQ(buf, "Invalid register name\n"
			 "  Command: p:ev func a=%di b=%zz\n"
			 "           " /* the width of "  Command: " */
			 "                  ^\n");
}

/* ---- fetching ---------------------------------------------------------------------------------
 */

static const char hello[] = "hello";
static uint32_t global_u32 = 0xdeadbeef;
static uint64_t stack_words[4] = {0x1111, 0x2222, 0x3333, 0x4444};

static int fake_sym(void *arg, uint64_t addr, char *buf, size_t len)
{
	if (addr >= 0x1000 && addr < 0x1040)
		return snprintf(buf, len, "func+0x%lx/0x40", (unsigned long)(addr - 0x1000));
	if (addr >= 0x2000 && addr < 0x2020)
		return snprintf(buf, len, "caller+0x%lx/0x20", (unsigned long)(addr - 0x2000));
	return -1;
}

struct rec {
	unsigned char *e;
	uint32_t len;
	char text[8192];
};

static void hit(const struct sd_probe_def *def, const struct sd_fetch_ctx *ctx, uint64_t ip,
		uint64_t ret_ip, struct rec *r)
{
	struct sd_print_ctx pctx = {.sym = fake_sym};
	uint32_t dyn = sd_probe_dynamic_size(def, ctx);
	struct sd_seq s;

	r->len = def->fixed_size + dyn;
	r->e = malloc(r->len);
	memset(r->e, 0xa5, r->len); /* no help from zeroed memory */
	memset(r->e, 0, 8);
	memcpy(r->e + 8, &ip, 8);
	if (def->is_return)
		memcpy(r->e + 16, &ret_ip, 8);
	sd_probe_store_args(def, ctx, r->e, dyn);
	sd_seq_init(&s, r->text, sizeof(r->text));
	sd_probe_print(&s, def, r->e, r->len, &pctx);
}

static uint64_t val_of(const struct sd_probe_def *def, const struct rec *r, const char *name)
{
	return sd_field_value(arg_field(def, name), r->e);
}

static const char *str_of(const struct sd_probe_def *def, const struct rec *r, const char *name,
			  int idx)
{
	struct sd_field f = *arg_field(def, name);
	uint32_t len;
	const char *p;

	f.offset = (uint16_t)(f.offset + 4 * idx);
	p = sd_field_dynamic(&f, r->e, r->len, &len);
	return len ? p : NULL;
}

TEST(fetch_values)
{
	static const char *const strs[3] = {"one", "two", NULL};
	struct pd_obj obj = {
	    .a = 0x2d, .name = "xyz", .b = -7, .str = hello, .bytes = {1, 2, 3, 4}};
	struct sonde_regs regs = {0};
	struct sd_fetch_ctx ctx = {.regs = &regs, .comm = "tester", .sym = fake_sym};
	struct sd_probe_def *def;
	char cmd[2048];
	struct rec r;

	memcpy(obj.strs, strs, sizeof(strs));
	regs.di = (uint64_t)-5;
	regs.si = (uintptr_t)hello;
	regs.dx = (uintptr_t)&obj;
	regs.cx = 0x12345678;
	regs.r8 = 0x10; /* a bad pointer */
	regs.sp = (uintptr_t)stack_words;
	regs.ip = 0x1010;
	regs.ax = 42;
	ctx.file_base = (uintptr_t)&global_u32 - 0x100;
	snprintf(cmd, sizeof(cmd),
		 "p:g/ev f a=%%di:s64 s=+0(%%si):string n=+%zu(%%dx):string i=+0(%%dx):s32 "
		 "b=+%zu(%%dx):s64 p=+0(+%zu(%%dx)):string ss=+%zu(%%dx):string[3] "
		 "ch=+%zu(%%dx):char arr=+%zu(%%dx):u8[4] bf=+0(%%dx):b3@2/32 x=%%cx:x16 "
		 "bad=+0(%%r8):u32 bads=+0(+0(%%r8)):string badss=+0(%%r8):string[2] c=$comm "
		 "imm=\\\"imm\" neg=\\-5:s8 st=$stack1 sp=$stack g=@%p:x32 arg=$arg2:x8 "
		 "sym=%%ip:symbol sym2=%%cx:symbol ss2=%%ip:symstr sx=%%cx:symstr",
		 offsetof(struct pd_obj, name), offsetof(struct pd_obj, b),
		 offsetof(struct pd_obj, str), offsetof(struct pd_obj, strs),
		 offsetof(struct pd_obj, name), offsetof(struct pd_obj, bytes),
		 (void *)&global_u32);
	def = parse_ok(K, cmd);
	hit(def, &ctx, 0x1010, 0, &r);
	CHECK_EQ(val_of(def, &r, "a"), (uint64_t)-5);
	CHECK_STREQ(str_of(def, &r, "s", 0), "hello");
	CHECK_STREQ(str_of(def, &r, "n", 0), "xyz");
	CHECK_EQ(val_of(def, &r, "i"), 0x2d);
	CHECK_EQ(val_of(def, &r, "b"), (uint64_t)-7);
	CHECK_STREQ(str_of(def, &r, "p", 0), "hello");
	CHECK_STREQ(str_of(def, &r, "ss", 0), "one");
	CHECK_STREQ(str_of(def, &r, "ss", 1), "two");
	CHECK(!str_of(def, &r, "ss", 2));
	CHECK_EQ(val_of(def, &r, "ch"), 'x');
	CHECK_EQ(val_of(def, &r, "bf"), (0x2d >> 2) & 7);
	CHECK_EQ(val_of(def, &r, "x"), 0x5678);
	CHECK_EQ(val_of(def, &r, "bad"), 0);
	CHECK(!str_of(def, &r, "bads", 0));
	CHECK(!str_of(def, &r, "badss", 0));
	CHECK(!str_of(def, &r, "badss", 1));
	CHECK_STREQ(str_of(def, &r, "c", 0), "tester");
	CHECK_STREQ(str_of(def, &r, "imm", 0), "imm");
	CHECK_EQ(val_of(def, &r, "neg"), (uint64_t)-5);
	CHECK_EQ(val_of(def, &r, "st"), 0x2222);
	CHECK_EQ(val_of(def, &r, "sp"), (uintptr_t)stack_words);
	CHECK_EQ(val_of(def, &r, "g"), 0xdeadbeef);
	CHECK_EQ(val_of(def, &r, "arg"), (uint8_t)(uintptr_t)hello);
	CHECK_STREQ(str_of(def, &r, "ss2", 0), "func+0x10/0x40");
	CHECK_STREQ(str_of(def, &r, "sx", 0), "0x12345678");
	{
		char want[4096];

		snprintf(
		    want, sizeof(want),
		    "(func+0x10/0x40) a=-5 s=\"hello\" n=\"xyz\" i=45 b=-7 p=\"hello\" "
		    "ss={\"one\",\"two\",(fault)} ch='x' arr={1,2,3,4} bf=3 x=0x5678 "
		    "bad=0 bads=(fault) badss={(fault),(fault)} c=\"tester\" imm=\"imm\" neg=-5 "
		    "st=0x2222 sp=0x%lx g=0xdeadbeef arg=0x%x sym=func+0x10/0x40 "
		    "sym2=0x12345678 ss2=\"func+0x10/0x40\" sx=\"0x12345678\"",
		    (unsigned long)(uintptr_t)stack_words, (unsigned)(uint8_t)(uintptr_t)hello);
		CHECK_STREQ(r.text, want);
	}
	free(r.e);
	sd_probe_def_free(def);

	/* uprobe: @+OFFSET from the file base, and the (0x…) form */
	{
		char *c = expand("p:g/ev EXE:0x10 g=@+0x100:u32 a=+0(%dx):x8[3] b=%di:b4@4/8");

		def = parse_ok(U, c);
		free(c);
	}
	regs.di = 0xab;
	hit(def, &ctx, 0x55d4c0a1b149ull, 0, &r);
	CHECK_STREQ(r.text, "(0x55d4c0a1b149) g=3735928559 a={0x2d,0x0,0x0} b=10");
	free(r.e);
	sd_probe_def_free(def);
}

static uint64_t look_words(void *arg, const char *sym)
{
	return strcmp(sym, "words") ? 0 : (uintptr_t)arg;
}

TEST(fetch_symbols_resolved)
{
	struct sonde_regs regs = {0};
	struct sd_fetch_ctx ctx = {.regs = &regs};
	struct sd_parse_error err = {0};
	struct sd_probe_def *def;
	struct rec r;
	static uint64_t words[2] = {0x1122334455667788ull, 0x99};

	def = parse_ok(K, "p:g/e f a=@words+8 b=@words:u16 c=+0(@words):u8 d=@nosuch");
	CHECK(def->args[0].needs_symbol);
	CHECK_EQ(sd_probe_def_resolve(def, look_words, words, &err), -ENOENT);
	CHECK_STREQ(err.msg, "Invalid probed address or symbol");
	CHECK_EQ(err.pos,
		 (int)(strstr("p:g/e f a=@words+8 b=@words:u16 c=+0(@words):u8 d=@nosuch", "d=@") -
		       "p:g/e f a=@words+8 b=@words:u16 c=+0(@words):u8 d=@nosuch"));
	sd_probe_def_free(def);

	def = parse_ok(K, "p:g/e f a=@words+8 b=@words:u16 c=+0(@words+0):u8");
	CHECK_EQ(sd_probe_def_resolve(def, look_words, words, &err), 0);
	hit(def, &ctx, 0x1000, 0, &r);
	CHECK_STREQ(r.text, "(func+0x0/0x40) a=0x99 b=30600 c=0");
	free(r.e);
	sd_probe_def_free(def);
}

TEST(return_probes)
{
	struct sonde_regs regs = {0}, entry_regs = {0};
	struct sd_fetch_ctx ctx = {.regs = &regs};
	struct sd_probe_def *def;
	uint64_t edata[4];
	struct rec r;

	/* kretprobe: (caller+off/size <- func), $argN saved at entry */
	def = parse_ok(K, "r:g/e f a=$retval:s32 b=$arg2 c=$arg1:s8 d=$arg2:u8 e=$arg8");
	CHECK_EQ(sd_probe_entry_data_size(def), 24);
	entry_regs.di = (uint64_t)-3;
	entry_regs.si = 0x5555;
	entry_regs.sp = (uintptr_t)stack_words;
	sd_probe_store_entry_data(def, &entry_regs, edata);
	regs.ax = (uint64_t)-2;
	regs.di = 77; /* changed by the function: not what $arg1 reads */
	ctx.edata = edata;
	hit(def, &ctx, 0x1000, 0x2007, &r);
	CHECK_STREQ(r.text, "(caller+0x7/0x20 <- func) a=-2 b=0x5555 c=-3 d=85 e=0x3333");
	free(r.e);
	hit(def, &ctx, 0x9000, 0x8000, &r);
	CHECK_STREQ(r.text, "(0x8000 <- 0x00009000) a=-2 b=0x5555 c=-3 d=85 e=0x3333");
	free(r.e);
	ctx.edata = NULL;
	hit(def, &ctx, 0x1000, 0x2007, &r);
	CHECK_STREQ(r.text, "(caller+0x7/0x20 <- func) a=-2 b=0x0 c=0 d=0 e=0x0");
	free(r.e);
	sd_probe_def_free(def);

	/* uretprobe: (0xret <- 0xfunc) */
	{
		char *c = expand("r:g/e EXE:0x10 %ax");

		def = parse_ok(U, c);
		free(c);
	}
	hit(def, &ctx, 0x555555555139ull, 0x555555555166ull, &r);
	CHECK_STREQ(r.text, "(0x555555555166 <- 0x555555555139) arg1=0xfffffffffffffffe");
	free(r.e);
	sd_probe_def_free(def);
}

TEST(fetch_long_strings)
{
	struct sonde_regs regs = {0};
	struct sd_fetch_ctx ctx = {.regs = &regs};
	struct sd_probe_def *def = parse_ok(K, "p:g/e 0x1000 a=+0(%di):string b=+0(%si):string");
	char *big = malloc(6000);
	uint32_t dyn;
	struct rec r;

	memset(big, 'z', 5999);
	big[5999] = 0;
	regs.di = (uintptr_t)big;
	regs.si = (uintptr_t)hello;
	dyn = sd_probe_dynamic_size(def, &ctx);
	/* no more than a ring record holds */
	CHECK(def->fixed_size + dyn <= 4096);
	hit(def, &ctx, 0x1000, 0, &r);
	CHECK_EQ(strlen(str_of(def, &r, "a", 0)), dyn - 1);
	CHECK(!str_of(def, &r, "b", 0)); /* no room left: the kernel's (fault) */
	free(r.e);

	/* a string running into an unmapped page is a fault, as strncpy_from_user */
	{
		char *pg =
		    mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		CHECK(pg != MAP_FAILED);
		memset(pg, 'q', 8192);
		CHECK_EQ(mprotect(pg + 4096, 4096, PROT_NONE), 0);
		regs.di = (uintptr_t)(pg + 4090);
		hit(def, &ctx, 0x1000, 0, &r);
		CHECK(!str_of(def, &r, "a", 0));
		CHECK_STREQ(str_of(def, &r, "b", 0), "hello");
		CHECK(strstr(r.text, "a=(fault) b=\"hello\""));
		free(r.e);

		/* an array half in an unmapped page: what is readable, zeros for the rest */
		{
			struct sd_probe_def *d2 =
			    parse_ok(K, "p:g/e 0x1000 a=+0(%di):x8[8] b=+2(%di):u16[2]");

			regs.di = (uintptr_t)(pg + 4092);
			hit(d2, &ctx, 0x1000, 0, &r);
			CHECK_STREQ(r.text,
				    "(func+0x0/0x40) a={0x71,0x71,0x71,0x71,0x0,0x0,0x0,0x0} "
				    "b={29041,0}");
			free(r.e);
			sd_probe_def_free(d2);
		}
		munmap(pg, 8192);
	}
	free(big);
	sd_probe_def_free(def);
}

/* ---- error_log ------------------------------------------------------------------------------- */

/* sonde_last_error(): a message may quote the one it replaces (a cause) */
TEST(last_error_quotes_itself)
{
	CHECK_EQ(sd_error(-ENOENT, "no symbol '%s'", "frobnicate"), -ENOENT);
	CHECK_EQ(sd_error(-EINVAL, "p:ev frobnicate: %s", sonde_last_error()), -EINVAL);
	CHECK_STREQ(sonde_last_error(), "p:ev frobnicate: no symbol 'frobnicate'");
}

TEST(errlog_ring)
{
	struct sd_parse_error e;
	char *buf = malloc(1 << 16);
	struct sd_seq s;
	int n = 0;

	sd_errlog_clear();
	for (int i = 0; i < 10; i++) {
		char cmd[64];

		snprintf(cmd, sizeof(cmd), "p:g/e%d /x:0x1 a=%%zz", i);
		sd_parse_fail(&e, "trace_uprobe", 22, "Invalid register name");
		sd_errlog_add(&e, cmd);
	}
	sd_seq_init(&s, buf, 1 << 16);
	sd_errlog_print(&s);
	for (char *p = buf; (p = strstr(p, "] trace_uprobe: error: Invalid register name\n")); p++)
		n++;
	CHECK_EQ(n, 8);
	CHECK(!strstr(buf, "g/e1 "));
	CHECK(strstr(buf, "g/e2 "));
	CHECK(strstr(buf, "  Command: p:g/e9 /x:0x1 a=%zz\n"
			  "           " /* the width of "  Command: " */
			  "                      ^\n"));
	CHECK_EQ(buf[0], '[');
	CHECK_EQ(buf[6], '.');
	CHECK_EQ(strchr(buf, ']') - buf, 14 - 1); /* "[%5lu.%06lu]" */
	sd_errlog_clear();
	sd_seq_init(&s, buf, 1 << 16);
	sd_errlog_print(&s);
	CHECK_STREQ(buf, "");
	free(buf);
}

/* ---- the kernel as the oracle -----------------------------------------------------------------
 */

static int write_file(const char *path, const char *text, int flags)
{
	int fd = open(path, O_WRONLY | flags);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, text, strlen(text));
	if (n < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	close(fd);
	return 0;
}

static char *read_file(const char *path)
{
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap);
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0) {
		free(buf);
		return NULL;
	}
	while ((n = read(fd, buf + len, cap - 1 - len)) > 0) {
		len += (size_t)n;
		if (len + 1 == cap)
			buf = realloc(buf, cap *= 2);
	}
	close(fd);
	buf[len] = 0;
	for (size_t i = 0; i < len; i++)
		if (!buf[i])
			buf[i] = '?';
	return buf;
}

static void oracle_or_skip(void)
{
	if (geteuid() != 0)
		SKIP("not root: no tracefs");
	if (access(TRACEFS "/uprobe_events", W_OK) &&
	    (mount("nodev", TRACEFS, "tracefs", 0, NULL) || access(TRACEFS "/uprobe_events", W_OK)))
		SKIP("no tracefs with uprobe_events");
	setup_paths();
	snprintf(group, sizeof(group), "sdpd%d", (int)getpid());
}

/* the newest error_log entry for @cmd, without its timestamp */
static char *kernel_error(const char *cmd)
{
	char *log = read_file(TRACEFS "/error_log"), *best = NULL, *p, want[4096];

	snprintf(want, sizeof(want), "\n  Command: %s\n", cmd);
	for (p = log; p && (p = strstr(p, want)); p++)
		best = p;
	if (best) {
		char *start = best, *end = strchr(best + strlen(want), '\n');

		while (start > log && start[-1] != '\n')
			start--;
		start = strchr(start, ']') + 2;
		end[1] = 0;
		best = strdup(start);
	}
	free(log);
	return best;
}

static char *our_error(const struct sd_parse_error *e, const char *cmd)
{
	char *buf = malloc(8192), *line;
	struct sd_seq s;

	sd_errlog_clear();
	sd_errlog_add(e, cmd);
	sd_seq_init(&s, buf, 8192);
	sd_errlog_print(&s);
	line = strdup(strchr(buf, ']') + 2);
	free(buf);
	return line;
}

/* the uprobe_events line of GRP/@event */
static char *kernel_readback(const char *event)
{
	char *all = read_file(TRACEFS "/uprobe_events"), *p, *out = NULL, want[256];

	for (p = all; p && *p;) {
		char *nl = strchr(p, '\n');

		if (nl)
			*nl = 0;
		snprintf(want, sizeof(want), ":%s/%s ", group, event);
		if (strstr(p, want) == p + 1)
			out = strdup(p);
		p = nl ? nl + 1 : p + strlen(p);
	}
	free(all);
	return out;
}

static char *our_format(const struct sd_probe_def *def)
{
	struct sd_event ev = {0};
	char *buf = malloc(1 << 16), *out;
	struct sd_seq s;

	snprintf(ev.name, sizeof(ev.name), "%s", def->event);
	CHECK_EQ(sd_probe_def_fields(def, &ev.fields, &ev.nfields), 0);
	ev.print_fmt = def->print_fmt;
	sd_seq_init(&s, buf, 1 << 16);
	sd_event_format(&s, &ev);
	out = strdup(strstr(buf, "format:\n"));
	for (unsigned int i = 0; i < ev.nfields; i++) {
		free(ev.fields[i].name);
		free(ev.fields[i].c_type);
	}
	free(ev.fields);
	free(buf);
	return out;
}

static const char *const oracle_defs[] = {
    "p:GRP/ev EXE:OFF a=%di:u64 s=+0(%si):string x=%si:x32",
    "r:GRP/rev EXE:OFF $retval",
    "p:GRP/pk EXE:OFF a=%di:s8 b=%di:x8 c=+0(%si):u8[3] d=%si:b4@2/32 e=$comm f=\\7 "
    "g=+0(%si):char h=$stack0 i=$stack",
    "p:GRP/ EXE:OFF %di %si",
    "p:GRP.dot EXE:OFF%return(0x10) %ax:s16 %dx:x16 $stack3:s32",
    "p:GRP/im EXE:OFF c=\\\"abc\" d=\\123 e=\\-5 f=\\0x10:u8 g=\\123:string h=@0x1000:string",
    "p:GRP/dr EXE:OFF a=+0(+0(+0(+0(+0(+0(+0(+0(+0(+0(+0(+0(+0(+0(%si)))))))))))))):u8",
    "p:GRP/ar EXE:OFF a=+0(%si):u8[64] b=+0(%si):string[2] c=+0(%si):b2@1/8[2] d=-8(%sp):s64[2]",
    "p:GRP/fo EXE:OFF a=@+0x2004:string b=@+0x10:u32 c=+u0(%si):string d=+0(%si):ustring",
    "p:GRP/long EXE:OFF aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa=%di",
    "p:GRP/es EXE:OFF a=\\\"\" b=$COMM",
    "p:GRP/reg EXE:OFF a=%ax b=%bx c=%cx d=%dx e=%si f=%di g=%bp h=%sp i=%ip j=%r8 k=%r15 "
    "l=%flags m=%cs n=%ss o=%orig_ax",
    "p:GRP/e1 EXE:OFF a=%zz",
    "p:GRP/e1 EXE:OFF a=%rax",
    "p:GRP/e1 EXE:OFF a=+0(%si",
    "p:GRP/e1 EXE:OFF a=+u8(+0(%zz)):u32",
    "p:GRP/e1 EXE:OFF a=+0(+0(+0(+0(+0(+0(+0(+0(+0(+0(+0(+0(+0(+0(+0(%si)))))))))))))))",
    "p:GRP/e1 EXE:OFF a=+0(+0(+0(+0(+0(+0(+0(+0(+0(+0(+0(+0(@0x10)))))))))))):string[2]",
    "p:GRP/e1 EXE:OFF a=\\\"abc",
    "p:GRP/e1 EXE:OFF a=$arg1",
    "p:GRP/e1 EXE:OFF $retval",
    "p:GRP/e1 EXE:OFF %di arg1=%si",
    "p:GRP/e1 EXE:OFF a=+0(%si):u8[3]x",
    "p:GRP/e1 EXE:OFF a=%si:u8[2]",
    "p:GRP/e1 EXE:OFF a=+8(+0(%si)):b4@30/32",
    "p:GRP/e1 EXE:OFF a=\\\"a:b\"",
    "p:GRP/e1 EXE:OFF a=(%si)",
    "p:GRP/e1 EXE:OFF a=@zz",
    "p:GRP/e1 EXE:OFF a=%ip:symbol",
    "p:GRP/e1 /nonexistent/x:OFF",
    "p:GRP/e1 EXE:OFF(0x10",
    "p:GRP/e1 EXE:0x1z",
    "p:GRP/1e EXE:OFF",
    "p: EXE:OFF",
    "p:GRP/e1 EXE:OFF a=+0(%si):u8[65]",
    "p:GRP/e1 EXE:OFF a=$stack:string",
    "p:GRP/e1 EXE:OFF a=$comm:u32",
};

TEST(oracle_definitions)
{
	oracle_or_skip();
	for (size_t i = 0; i < sizeof(oracle_defs) / sizeof(oracle_defs[0]); i++) {
		char *cmd = expand(oracle_defs[i]);
		char rg[SD_EVENT_NAME_MAX], re[SD_EVENT_NAME_MAX];
		struct sd_parse_error err = {0};
		struct sd_probe_def *def = NULL;
		int ours = sd_probe_parse(cmd, U, &def, rg, re, &err);
		int theirs = write_file(TRACEFS "/uprobe_events", cmd, O_APPEND);

		if ((ours < 0) != (theirs < 0))
			check_fail(__FILE__, __LINE__, "\"%s\": sonde %d, kernel %d", cmd, ours,
				   theirs);
		if (theirs == 0) {
			char path[512], rm[256], *kline = kernel_readback(def->event), *kfmt, *ofmt;

			snprintf(path, sizeof(path), TRACEFS "/events/%s/%s/format", group,
				 def->event);
			kfmt = read_file(path);
			snprintf(rm, sizeof(rm), "-:%s/%s", group, def->event);
			write_file(TRACEFS "/uprobe_events", rm, O_APPEND);
			CHECK_STREQ(readback(def), kline);
			ofmt = our_format(def);
			CHECK(kfmt);
			CHECK_STREQ(ofmt, strstr(kfmt, "format:\n"));
			free(kline);
			free(kfmt);
			free(ofmt);
			sd_probe_def_free(def);
		} else {
			char *k = kernel_error(cmd), *o;

			CHECK(err.msg);
			if (!k)
				check_fail(__FILE__, __LINE__, "\"%s\": no error_log entry", cmd);
			o = our_error(&err, cmd);
			if (strcmp(k, o))
				check_fail(__FILE__, __LINE__, "\"%s\":\nkernel: %ssonde:  %s", cmd,
					   k, o);
			if (ours != theirs)
				check_fail(__FILE__, __LINE__, "\"%s\": errno %d, kernel %d", cmd,
					   ours, theirs);
			free(k);
			free(o);
		}
		free(cmd);
	}
}

/* a real hit: the kernel's trace text after "ev: " against ours for the same registers */
TEST(oracle_trace)
{
	static const char *const strs[2] = {"first", "second"};
	struct pd_obj obj = {
	    .a = 0x2d, .name = "xyz", .b = -7, .str = hello, .bytes = {1, 2, 3, 4}};
	char inst[256], path[512], comm[32] = {0}, *cmd, *rcmd, *trace, *line, *ev, *rv;
	struct sd_probe_def *rdef;
	long ret;
	struct sonde_regs regs = {0};
	struct sd_fetch_ctx ctx = {.regs = &regs, .comm = comm};
	struct sd_probe_def *def;
	struct rec r;
	char tmpl[2048];

	oracle_or_skip();
	memcpy(obj.strs, strs, sizeof(strs));
	prctl(PR_GET_NAME, comm);
	snprintf(tmpl, sizeof(tmpl),
		 "p:GRP/ev EXE:OFF a=%%di:s64 s=+0(%%si):string n=+%zu(%%dx):string "
		 "i=+0(%%dx):s32 b=+%zu(%%dx):s64 p=+0(+%zu(%%dx)):string c=$comm "
		 "ch=+%zu(%%dx):char arr=+%zu(%%dx):u8[4] bf=+0(%%dx):b3@2/32 x=%%cx:x16 "
		 "f=+0(%%r8):string ss=+0(%%r9):string[2] xs=+0(%%si):x8[3] e=\\-5:s8",
		 offsetof(struct pd_obj, name), offsetof(struct pd_obj, b),
		 offsetof(struct pd_obj, str), offsetof(struct pd_obj, name),
		 offsetof(struct pd_obj, bytes));
	cmd = expand(tmpl);
	def = parse_ok(U, cmd);
	snprintf(inst, sizeof(inst), TRACEFS "/instances/%s", group);
	if (mkdir(inst, 0755))
		SKIP("cannot make a tracefs instance");
	rcmd = expand("r:GRP/rv EXE:OFF r=$retval:s64 rx=$retval");
	rdef = parse_ok(U, rcmd);
	if (write_file(TRACEFS "/uprobe_events", cmd, O_APPEND)) {
		rmdir(inst);
		check_fail(__FILE__, __LINE__, "the kernel refused %s", cmd);
	}
	if (write_file(TRACEFS "/uprobe_events", rcmd, O_APPEND))
		check_fail(__FILE__, __LINE__, "the kernel refused %s", rcmd);
	snprintf(path, sizeof(path), "%s/events/%s/enable", inst, group);
	CHECK_EQ(write_file(path, "1", O_TRUNC), 0);
	ret = pd_oracle_fn(-5, hello, &obj, 0x12345678, (const char *)0x10, strs);
	write_file(path, "0", O_TRUNC);
	snprintf(path, sizeof(path), "%s/trace", inst);
	trace = read_file(path);
	{
		char rm[128];

		snprintf(rm, sizeof(rm), "-:%s/ev", group);
		write_file(TRACEFS "/uprobe_events", rm, O_APPEND);
		snprintf(rm, sizeof(rm), "-:%s/rv", group);
		write_file(TRACEFS "/uprobe_events", rm, O_APPEND);
		rmdir(inst);
	}
	CHECK(trace);
	ev = strstr(trace, " ev: ");
	if (!ev)
		check_fail(__FILE__, __LINE__, "no hit in the kernel's trace:\n%s", trace);
	line = ev + 5;
	rv = strstr(trace, " rv: ");
	if (!rv)
		check_fail(__FILE__, __LINE__, "no return hit in the kernel's trace:\n%s", trace);
	*strchr(line, '\n') = 0;
	rv += 5;
	*strchr(rv, '\n') = 0;

	regs.di = (uint64_t)-5;
	regs.si = (uintptr_t)hello;
	regs.dx = (uintptr_t)&obj;
	regs.cx = 0x12345678;
	regs.r8 = 0x10;
	regs.r9 = (uintptr_t)strs;
	hit(def, &ctx, (uintptr_t)pd_oracle_fn, 0, &r);
	CHECK_STREQ(r.text, line);
	free(r.e);

	/* the return: "(0xRET <- 0xFUNC)", the function being ours */
	{
		unsigned long ret_ip = 0, func = 0;

		CHECK_EQ(sscanf(rv, "(0x%lx <- 0x%lx)", &ret_ip, &func), 2);
		CHECK_EQ(func, (uintptr_t)pd_oracle_fn);
		regs.ax = (uint64_t)ret;
		hit(rdef, &ctx, func, ret_ip, &r);
		CHECK_STREQ(r.text, rv);
		free(r.e);
	}
	free(trace);
	free(cmd);
	free(rcmd);
	sd_probe_def_free(def);
	sd_probe_def_free(rdef);
}

/* every uprobe entry of the malformed table, against the kernel's error_log */
TEST(oracle_malformed)
{
	int n = 0;

	oracle_or_skip();
	for (size_t i = 0; i < sizeof(bad_defs) / sizeof(bad_defs[0]); i++) {
		char *cmd, *k, *o;
		struct sd_parse_error err = {0};
		struct sd_probe_def *def = NULL;
		char rg[SD_EVENT_NAME_MAX], re[SD_EVENT_NAME_MAX];
		int ours, theirs;

		if (bad_defs[i].kind != U)
			continue;
		cmd = expand(bad_defs[i].cmd);
		ours = sd_probe_parse(cmd, U, &def, rg, re, &err);
		theirs = write_file(TRACEFS "/uprobe_events", cmd, O_APPEND);
		if (!theirs)
			check_fail(__FILE__, __LINE__, "the kernel took \"%s\"", cmd);
		k = kernel_error(cmd);
		if (!k)
			check_fail(__FILE__, __LINE__, "\"%s\": no error_log entry", cmd);
		o = our_error(&err, cmd);
		if (strcmp(k, o))
			check_fail(__FILE__, __LINE__, "\"%s\":\nkernel: %ssonde:  %s", cmd, k, o);
		if (ours != theirs)
			check_fail(__FILE__, __LINE__, "\"%s\": errno %d, kernel %d", cmd, ours,
				   theirs);
		free(k);
		free(o);
		free(cmd);
		n++;
	}
	CHECK(n >= 40);
}
