// SPDX-License-Identifier: MIT
/*
 * probe_parse.c - the kprobe_events / uprobe_events grammar.
 *
 * The kernel is the reference (kernel/trace/trace_probe.c, trace_kprobe.c,
 * trace_uprobe.c): the same forms, the same checks in the same order, the
 * same error texts at the same positions. Like the kernel, the command is
 * split into whitespace-separated words and positions count in the words
 * re-joined with single spaces (struct sd_parse_error.words).
 *
 * A fetch argument compiles into an array of SD_FETCH_INSN_MAX
 * instructions whose last slot is a fixed END, exactly as the kernel
 * builds its fetch_insn array, so the nesting limits ("Dereference is too
 * much nested") fall where the kernel's do.
 *
 * Where sonde differs on purpose:
 *  - kprobe_events locations are symbols of the process: MOD:SYM splits at
 *    the first ':' and the offset is searched after it (shared object
 *    names contain '-'); generated event names turn '-' into '_' too;
 *  - a PATH:OFFSET written to kprobe_events is refused with "Invalid
 *    probed address or symbol" (the kernel hands it to another parser);
 *  - there is no BTF: bare names, '(' casts and $arg* are "BTF is not
 *    available or not supported";
 *  - one extension, for USDT operands: inside a dereference's braces a
 *    scaled-index address, %base,%index,SCALE or ,%index,SCALE
 *    (+8(%ax,%dx,8)); a bad register is "Invalid register name", anything
 *    else wrong in it "Invalid fetch argument" at the faulty part.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SD_LOG_PREFIX "probe_def"
#include "arch/arch.h"
#include "common/compiler.h"
#include "common/log.h"
#include "trace/probe_def.h"

#define MAX_ARGSTR_LEN	 63
#define MAX_ARRAY_LEN	 64
#define MAX_ARG_NAME_LEN 32
#define PARAM_MAX_STACK	 2048 /* THREAD_SIZE / sizeof(long) on x86-64 */

/* the kernel's TPARG_FL_* */
#define FL_RETURN 0x1
#define FL_KERNEL 0x2
#define FL_FENTRY 0x4
#define FL_USER	  0x10
#define FL_LOC	  0x1f

/* error texts (kernel/trace/trace_probe.h ERRORS, as this kernel prints them) */
#define E_FILE_NOT_FOUND    "Failed to find the given file"
#define E_NO_REGULAR_FILE   "Not a regular file"
#define E_BAD_REFCNT	    "Invalid reference counter offset"
#define E_REFCNT_OPEN_BRACE "Reference counter brace is not closed"
#define E_BAD_REFCNT_SUFFIX "Reference counter has wrong suffix"
#define E_BAD_UPROBE_OFFS   "Invalid uprobe offset"
#define E_BAD_MAXACT_TYPE   "Maxactive is only for function exit"
#define E_BAD_MAXACT	    "Invalid maxactive number"
#define E_MAXACT_TOO_BIG    "Maxactive is too big"
#define E_BAD_PROBE_ADDR    "Invalid probed address or symbol"
#define E_BAD_RETPROBE	    "Retprobe address must be an function entry"
#define E_BAD_ADDR_SUFFIX   "Invalid probed address suffix"
#define E_NO_GROUP_NAME	    "Group name is not specified"
#define E_GROUP_TOO_LONG    "Group name is too long"
#define E_BAD_GROUP_NAME    "Group name must follow the same rules as C identifiers"
#define E_NO_EVENT_NAME	    "Event name is not specified"
#define E_EVENT_TOO_LONG    "Event name is too long"
#define E_BAD_EVENT_NAME    "Event name must follow the same rules as C identifiers"
#define E_RETVAL_ON_PROBE   "$retval is not available on probe"
#define E_BAD_STACK_NUM	    "Invalid stack number"
#define E_BAD_ARG_NUM	    "Invalid argument number"
#define E_BAD_VAR	    "Invalid $-variable specified"
#define E_BAD_REG_NAME	    "Invalid register name"
#define E_BAD_MEM_ADDR	    "Invalid memory address"
#define E_BAD_IMM	    "Invalid immediate value"
#define E_IMMSTR_NO_CLOSE   "String is not closed with '\"'"
#define E_FILE_ON_KPROBE    "File offset is not available with kprobe"
#define E_BAD_FILE_OFFS	    "Invalid file offset value"
#define E_SYM_ON_UPROBE	    "Symbol is not available with uprobe"
#define E_TOO_MANY_OPS	    "Dereference is too much nested"
#define E_DEREF_NEED_BRACE  "Dereference needs a brace"
#define E_BAD_DEREF_OFFS    "Invalid dereference offset"
#define E_DEREF_OPEN_BRACE  "Dereference brace is not closed"
#define E_COMM_CANT_DEREF   "$comm can not be dereferenced"
#define E_BAD_FETCH_ARG	    "Invalid fetch argument"
#define E_ARRAY_NO_CLOSE    "Array is not closed"
#define E_BAD_ARRAY_SUFFIX  "Array has wrong suffix"
#define E_BAD_ARRAY_NUM	    "Invalid array size"
#define E_ARRAY_TOO_BIG	    "Array number is too big"
#define E_BAD_TYPE	    "Unknown type is specified"
#define E_BAD_STRING	    "String accepts only memory argument"
#define E_BAD_SYMSTRING	    "Symbol String doesn't accept data/userdata"
#define E_BAD_BITFIELD	    "Invalid bitfield"
#define E_ARG_NAME_TOO_LONG "Argument name is too long"
#define E_NO_ARG_NAME	    "Argument name is not specified"
#define E_BAD_ARG_NAME	    "Argument name must follow the same rules as C identifiers"
#define E_USED_ARG_NAME	    "This argument name is already used"
#define E_ARG_TOO_LONG	    "Argument expression is too long"
#define E_NO_ARG_BODY	    "No argument expression"
#define E_NOSUP_BTFARG	    "BTF is not available or not supported"
#define E_NOFENTRY_ARGS	    "$arg* can be used only on function entry or exit"
#define E_DOUBLE_ARGS	    "$arg* can be used only once in the parameters"
#define E_NEED_STRING_TYPE  "$comm and immediate-string only accepts string type"
#define E_TOO_MANY_ARGS	    "Too many arguments are specified"

/* ---- numbers, the kernel's kstrto* and simple_strtoul ------------------------------- */

static int digit_val(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return 99;
}

static const char *fixup_radix(const char *s, unsigned int *base)
{
	if (*base == 0) {
		if (s[0] == '0') {
			if (tolower((unsigned char)s[1]) == 'x' && isxdigit((unsigned char)s[2]))
				*base = 16;
			else
				*base = 8;
		} else {
			*base = 10;
		}
	}
	if (*base == 16 && s[0] == '0' && tolower((unsigned char)s[1]) == 'x')
		s += 2;
	return s;
}

/* kstrtoull without the leading '+' */
static int k_strtoull_raw(const char *s, unsigned int base, uint64_t *res)
{
	uint64_t v = 0;
	int n = 0, d;

	s = fixup_radix(s, &base);
	for (; (d = digit_val((unsigned char)*s)) < (int)base; s++, n++) {
		if (v > (UINT64_MAX - (uint64_t)d) / base)
			return -ERANGE;
		v = v * base + (uint64_t)d;
	}
	if (!n)
		return -EINVAL;
	if (*s == '\n')
		s++;
	if (*s)
		return -EINVAL;
	*res = v;
	return 0;
}

static int k_strtoull(const char *s, unsigned int base, uint64_t *res)
{
	if (s[0] == '+')
		s++;
	return k_strtoull_raw(s, base, res);
}

static int k_strtoul(const char *s, unsigned int base, unsigned long *res)
{
	uint64_t v;
	int r = k_strtoull(s, base, &v);

	if (!r)
		*res = (unsigned long)v;
	return r;
}

static int k_strtol(const char *s, unsigned int base, long *res)
{
	uint64_t v;
	int r;

	if (s[0] == '-') {
		r = k_strtoull_raw(s + 1, base, &v);
		if (r)
			return r;
		if ((long long)-v > 0)
			return -ERANGE;
		*res = (long)-v;
		return 0;
	}
	r = k_strtoull(s, base, &v);
	if (r)
		return r;
	if ((long long)v < 0)
		return -ERANGE;
	*res = (long)v;
	return 0;
}

static int k_strtouint(const char *s, unsigned int base, unsigned int *res)
{
	uint64_t v;
	int r = k_strtoull(s, base, &v);

	if (r)
		return r;
	if (v > UINT_MAX)
		return -ERANGE;
	*res = (unsigned int)v;
	return 0;
}

static unsigned long simple_strtoul(const char *s, char **end, unsigned int base)
{
	unsigned long v = 0;
	int d;

	s = fixup_radix(s, &base);
	while ((d = digit_val((unsigned char)*s)) < (int)base) {
		v = v * base + (unsigned long)d;
		s++;
	}
	*end = (char *)s;
	return v;
}

/* ---- names ------------------------------------------------------------------------- */

static bool good_name(const char *name, bool hyphen_ok)
{
	if (!isalpha((unsigned char)*name) && *name != '_' && (!hyphen_ok || *name != '-'))
		return false;
	while (*++name) {
		if (!isalnum((unsigned char)*name) && *name != '_' && (!hyphen_ok || *name != '-'))
			return false;
	}
	return true;
}

static const char *const reserved_names[] = {
    "common_type", "common_flags", "common_preempt_count", "common_pid",
    "common_tgid", "__probe_ip",   "__probe_ret_ip",	   "__probe_func",
};

/* ---- types --------------------------------------------------------------------------- */

struct ptype {
	const char *name;
	const char *fmttype; /* the field's type in the format file */
	uint8_t size;
	uint8_t is_signed;
	uint8_t ftype; /* enum sd_ftype */
	bool is_string;
};

static const struct ptype ptypes[] = {
    {"string", "__data_loc char[]", 4, 1, SD_FT_STRING, true},
    {"ustring", "__data_loc char[]", 4, 1, SD_FT_STRING, true},
    {"symstr", "__data_loc char[]", 4, 1, SD_FT_STRING, true},
    {"u8", "u8", 1, 0, SD_FT_UNSIGNED, false},
    {"u16", "u16", 2, 0, SD_FT_UNSIGNED, false},
    {"u32", "u32", 4, 0, SD_FT_UNSIGNED, false},
    {"u64", "u64", 8, 0, SD_FT_UNSIGNED, false},
    {"s8", "s8", 1, 1, SD_FT_SIGNED, false},
    {"s16", "s16", 2, 1, SD_FT_SIGNED, false},
    {"s32", "s32", 4, 1, SD_FT_SIGNED, false},
    {"s64", "s64", 8, 1, SD_FT_SIGNED, false},
    {"x8", "u8", 1, 0, SD_FT_HEX, false},
    {"x16", "u16", 2, 0, SD_FT_HEX, false},
    {"x32", "u32", 4, 0, SD_FT_HEX, false},
    {"x64", "u64", 8, 0, SD_FT_HEX, false},
    {"char", "u8", 1, 0, SD_FT_CHAR, false},
    {"symbol", "u64", 8, 0, SD_FT_SYMBOL, false},
};

static const struct ptype *find_ptype(const char *type, unsigned int flags)
{
	if (type && (flags & FL_USER) && (!strcmp(type, "symbol") || !strcmp(type, "symstr")))
		return NULL;
	if (!type)
		type = "x64";
	if (*type == 'b') { /* bitfield: the container decides */
		unsigned long bs;

		type = strchr(type, '/');
		if (!type || k_strtoul(type + 1, 0, &bs))
			return NULL;
		switch (bs) {
		case 8:
			return find_ptype("u8", flags);
		case 16:
			return find_ptype("u16", flags);
		case 32:
			return find_ptype("u32", flags);
		case 64:
			return find_ptype("u64", flags);
		default:
			return NULL;
		}
	}
	for (size_t i = 0; i < ARRAY_SIZE(ptypes); i++)
		if (!strcmp(type, ptypes[i].name))
			return &ptypes[i];
	return NULL;
}

/* ---- parse context ------------------------------------------------------------------- */

struct pctx {
	int kind;
	const char *sub;
	struct sd_parse_error *err;
	char **argv;
	int *base; /* where word i starts in the re-joined command */
	int argc;
	int index;	    /* the word errors point into */
	int offset;	    /* the kernel's ctx->offset, within the word */
	unsigned int flags; /* FL_* */
	struct sd_probe_def *def;
	struct sd_probe_arg *parg;
	bool sib_ok; /* the next parse_probe_arg() is a dereference's inside */
};

static int fail_errno(struct pctx *pc, int offs, const char *msg, int err)
{
	int base = pc->index < pc->argc ? pc->base[pc->index] : pc->base[pc->argc];

	sd_parse_fail(pc->err, pc->sub, base + offs, msg);
	pc->err->err = err;
	pc->err->words = true;
	return err;
}

static int fail(struct pctx *pc, int offs, const char *msg)
{
	return fail_errno(pc, offs, msg, -EINVAL);
}

/* ---- one fetch argument ---------------------------------------------------------------- */

struct code_buf {
	struct sd_fetch_insn c[SD_FETCH_INSN_MAX];
	int end; /* index of the fixed END */
};

static int parse_vars(struct pctx *pc, char *orig, struct code_buf *cb, int ci)
{
	struct sd_fetch_insn *code = &cb->c[ci];
	const char *msg = E_BAD_VAR;
	char *arg = orig + 1;
	unsigned long param;
	size_t len;

	if (!strncmp(arg, "retval", 6)) {
		if (!(pc->flags & FL_RETURN)) {
			msg = E_RETVAL_ON_PROBE;
			goto inval;
		}
		code->op = SD_FOP_RETVAL;
		return 0;
	}
	if (!strncmp(arg, "stack", 5)) {
		len = 5;
		if (arg[len] == '\0') {
			code->op = SD_FOP_STACKP;
			return 0;
		}
		if (isdigit((unsigned char)arg[len])) {
			if (k_strtoul(arg + len, 10, &param))
				goto inval;
			if ((pc->flags & FL_KERNEL) && param > PARAM_MAX_STACK) {
				msg = E_BAD_STACK_NUM;
				goto inval;
			}
			code->op = SD_FOP_STACK;
			code->param = (uint32_t)param;
			return 0;
		}
		goto inval;
	}
	if (!strcmp(arg, "comm") || !strcmp(arg, "COMM")) {
		code->op = SD_FOP_COMM;
		return 0;
	}
	if (!strncmp(arg, "arg", 3)) {
		unsigned int loc = pc->flags & FL_LOC;

		if (k_strtoul(arg + 3, 10, &param))
			goto inval;
		if (!param || param > PARAM_MAX_STACK) {
			msg = E_BAD_ARG_NUM;
			goto inval;
		}
		param--;
		if (loc == (FL_KERNEL | FL_FENTRY)) {
			code->op = SD_FOP_ARG;
			code->param = (uint32_t)param;
		} else if (loc == (FL_KERNEL | FL_RETURN)) {
			struct sd_probe_def *def = pc->def;
			int i;

			for (i = 0; i < def->nr_entry_args; i++)
				if (def->entry_args[i] == param)
					break;
			if (i == def->nr_entry_args) {
				unsigned int *n =
				    realloc(def->entry_args, (size_t)(i + 1) * sizeof(*n));

				if (!n)
					return -ENOMEM;
				def->entry_args = n;
				n[def->nr_entry_args++] = (unsigned int)param;
			}
			code->op = SD_FOP_EDATA;
			code->offset = (int64_t)i * 8;
		} else {
			msg = E_NOFENTRY_ARGS;
			goto inval;
		}
		return 0;
	}
inval:
	return fail(pc, pc->offset, msg);
}

static int str_to_immediate(const char *str, uint64_t *imm)
{
	long l;
	int r;

	if (isdigit((unsigned char)str[0]))
		return k_strtoull(str, 0, imm);
	if (str[0] == '-' || str[0] == '+') {
		r = k_strtol(str[0] == '-' ? str : str + 1, 0, &l);
		if (!r)
			*imm = (uint64_t)l;
		return r;
	}
	return -EINVAL;
}

/* kernel-x86 register names only: sonde's arch table also takes rax, rdi… */
static int reg_offset(const char *name)
{
	if (name[0] == 'r' && name[1] && !isdigit((unsigned char)name[1]))
		return -ENOENT;
	return sd_arch_reg_offset(name);
}

/*
 * sonde extension: "%base,%index,SCALE" or ",%index,SCALE", the inside of
 * a dereference's braces, into one SD_FOP_SIB load
 */
static int parse_sib(struct pctx *pc, char *arg, struct sd_fetch_insn *code)
{
	char *index = strchr(arg, ','), *scale;
	unsigned long sc;
	int off;

	*index++ = '\0';
	code->param = SD_FETCH_NO_REG;
	if (*arg) {
		off = arg[0] == '%' ? reg_offset(arg + 1) : -ENOENT;
		if (off < 0)
			return fail(pc, pc->offset, E_BAD_REG_NAME);
		code->param = (uint32_t)off;
	}
	scale = strchr(index, ',');
	if (!scale)
		return fail(pc, pc->offset + (int)(index - arg), E_BAD_FETCH_ARG);
	*scale++ = '\0';
	off = index[0] == '%' ? reg_offset(index + 1) : -ENOENT;
	if (off < 0)
		return fail(pc, pc->offset + (int)(index - arg), E_BAD_REG_NAME);
	if (k_strtoul(scale, 10, &sc) || (sc != 1 && sc != 2 && sc != 4 && sc != 8))
		return fail(pc, pc->offset + (int)(scale - arg), E_BAD_FETCH_ARG);
	code->op = SD_FOP_SIB;
	code->imm = (uint64_t)off;
	code->basesize = (uint8_t)sc;
	return 0;
}

/* the recursive fetch-argument parser; *pci is the current instruction */
static int parse_probe_arg(struct pctx *pc, char *arg, struct code_buf *cb, int *pci)
{
	struct sd_fetch_insn *code = &cb->c[*pci];
	int ci = *pci;
	uint8_t deref = SD_FOP_DEREF;
	long offset = 0;
	unsigned long param;
	char *tmp;
	int ret = 0;
	bool sib_ok = pc->sib_ok;

	pc->sib_ok = false;
	if (sib_ok && (arg[0] == '%' || arg[0] == ',' || isalpha((unsigned char)arg[0])) &&
	    strchr(arg, ','))
		return parse_sib(pc, arg, code);

	switch (arg[0]) {
	case '$':
		ret = parse_vars(pc, arg, cb, ci);
		break;
	case '%':
		ret = reg_offset(arg + 1);
		if (ret >= 0) {
			code->op = SD_FOP_REG;
			code->param = (uint32_t)ret;
			ret = 0;
		} else {
			ret = fail(pc, pc->offset, E_BAD_REG_NAME);
		}
		break;
	case '@':
		if (isdigit((unsigned char)arg[1])) {
			if (k_strtoul(arg + 1, 0, &param)) {
				ret = fail(pc, pc->offset, E_BAD_MEM_ADDR);
				break;
			}
			code->op = SD_FOP_IMM;
			code->imm = param;
		} else if (arg[1] == '+') {
			if (pc->flags & FL_KERNEL)
				return fail(pc, pc->offset, E_FILE_ON_KPROBE);
			if (k_strtol(arg + 2, 0, &offset)) {
				ret = fail(pc, pc->offset, E_BAD_FILE_OFFS);
				break;
			}
			code->op = SD_FOP_FOFFS;
			code->imm = (uint64_t)offset;
			offset = 0;
		} else {
			if (!(pc->flags & FL_KERNEL))
				return fail(pc, pc->offset, E_SYM_ON_UPROBE);
			code->op = SD_FOP_SYMBOL;
			code->data = strdup(arg + 1);
			if (!code->data)
				return -ENOMEM;
			pc->parg->needs_symbol = true;
			if (++ci == cb->end)
				return fail(pc, pc->offset, E_TOO_MANY_OPS);
			code = &cb->c[ci];
			code->op = SD_FOP_IMM;
			code->imm = 0;
		}
		if (++ci == cb->end)
			return fail(pc, pc->offset, E_TOO_MANY_OPS);
		*pci = ci;
		code = &cb->c[ci];
		code->op = SD_FOP_DEREF;
		code->offset = offset;
		break;
	case '+':
	case '-':
		if (arg[1] == 'u') {
			deref = SD_FOP_UDEREF;
			arg[1] = arg[0];
			arg++;
		}
		if (arg[0] == '+')
			arg++; /* kstrtol takes no '+' here */
		tmp = strchr(arg, '(');
		if (!tmp)
			return fail(pc, pc->offset, E_DEREF_NEED_BRACE);
		*tmp = '\0';
		if (k_strtol(arg, 0, &offset)) {
			ret = fail(pc, pc->offset, E_BAD_DEREF_OFFS);
			break;
		}
		pc->offset += (int)(tmp + 1 - arg) + (arg[0] != '-' ? 1 : 0);
		arg = tmp + 1;
		tmp = strrchr(arg, ')');
		if (!tmp) {
			return fail(pc, pc->offset + (int)strlen(arg), E_DEREF_OPEN_BRACE);
		} else {
			int cur_offs = pc->offset;

			*tmp = '\0';
			pc->sib_ok = true;
			ret = parse_probe_arg(pc, arg, cb, &ci);
			if (ret)
				break;
			pc->offset = cur_offs;
			code = &cb->c[ci];
			if (code->op == SD_FOP_COMM || code->op == SD_FOP_DATA)
				return fail(pc, pc->offset, E_COMM_CANT_DEREF);
			if (++ci == cb->end)
				return fail(pc, pc->offset, E_TOO_MANY_OPS);
			*pci = ci;
			code = &cb->c[ci];
			code->op = deref;
			code->offset = offset;
		}
		break;
	case '\\':
		if (arg[1] == '"') {
			char *str = arg + 2;
			size_t len = strlen(str);

			if (!len || str[len - 1] != '"')
				return fail(pc, pc->offset + 2 + (int)len, E_IMMSTR_NO_CLOSE);
			code->data = strndup(str, len - 1);
			if (!code->data)
				return -ENOMEM;
			code->op = SD_FOP_DATA;
		} else {
			if (str_to_immediate(arg + 1, &code->imm))
				ret = fail(pc, pc->offset + 1, E_BAD_IMM);
			else
				code->op = SD_FOP_IMM;
		}
		break;
	default:
		/* a BTF name, or a '(' type cast on one: there is no BTF here */
		if (isalpha((unsigned char)arg[0]) || arg[0] == '_')
			return fail(pc, pc->offset, E_NOSUP_BTFARG);
		if (arg[0] == '(')
			return fail_errno(pc, pc->offset, E_NOSUP_BTFARG, -EOPNOTSUPP);
		break;
	}
	if (!ret && code->op == SD_FOP_NOP)
		ret = fail(pc, pc->offset, E_BAD_FETCH_ARG);
	return ret;
}

static int parse_bitfield(const char *bf, const struct ptype *t, struct code_buf *cb, int *pci)
{
	struct sd_fetch_insn *code;
	unsigned long bw, bo;
	char *tail;
	int bits = t->size * 8;

	if (*bf != 'b')
		return 0;
	bw = simple_strtoul(bf + 1, &tail, 0);
	if (bw == 0 || *tail != '@')
		return -EINVAL;
	bf = tail + 1;
	bo = simple_strtoul(bf, &tail, 0);
	if (tail == bf || *tail != '/')
		return -EINVAL;
	code = &cb->c[++*pci];
	if (code->op != SD_FOP_NOP)
		return -EINVAL;
	if ((unsigned long)bits < bw + bo)
		return -EINVAL;
	code->op = SD_FOP_MOD_BF;
	code->lshift = (uint8_t)(bits - (int)(bw + bo));
	code->rshift = (uint8_t)(bits - (int)bw);
	code->basesize = t->size;
	return 0;
}

/* after parsing: the store, modify and loop stages, as finalize_fetch_insn */
static int finalize(struct pctx *pc, struct code_buf *cb, int ci, const struct ptype *t,
		    unsigned int count, const char *type, int type_offset)
{
	struct sd_fetch_insn *code = &cb->c[ci];
	int sci;

	if (t->is_string) {
		bool symstr = !strcmp(t->name, "symstr");

		if (symstr) {
			if (code->op != SD_FOP_REG && code->op != SD_FOP_STACK &&
			    code->op != SD_FOP_RETVAL && code->op != SD_FOP_ARG &&
			    code->op != SD_FOP_DEREF)
				return fail(pc, pc->offset + type_offset, E_BAD_SYMSTRING);
		} else if (code->op != SD_FOP_DEREF && code->op != SD_FOP_UDEREF &&
			   code->op != SD_FOP_IMM && code->op != SD_FOP_COMM &&
			   code->op != SD_FOP_DATA) {
			return fail(pc, pc->offset + type_offset, E_BAD_STRING);
		}
		if (symstr || code->op == SD_FOP_IMM || code->op == SD_FOP_COMM ||
		    code->op == SD_FOP_DATA || count) {
			code = &cb->c[++ci];
			if (code->op != SD_FOP_NOP)
				return fail(pc, pc->offset, E_TOO_MANY_OPS);
		}
		if (!strcmp(t->name, "ustring") || code->op == SD_FOP_UDEREF)
			code->op = SD_FOP_ST_USTRING;
		else if (symstr)
			code->op = SD_FOP_ST_SYMSTR;
		else
			code->op = SD_FOP_ST_STRING;
		code->param = t->size;
	} else if (code->op == SD_FOP_DEREF) {
		code->op = SD_FOP_ST_MEM;
		code->param = t->size;
	} else if (code->op == SD_FOP_UDEREF) {
		code->op = SD_FOP_ST_UMEM;
		code->param = t->size;
	} else {
		code = &cb->c[++ci];
		if (code->op != SD_FOP_NOP)
			return fail_errno(pc, pc->offset, E_TOO_MANY_OPS, -E2BIG);
		code->op = SD_FOP_ST_RAW;
		code->param = t->size;
	}
	sci = ci;

	if (type && parse_bitfield(type, t, cb, &ci))
		return fail(pc, pc->offset + type_offset, E_BAD_BITFIELD);

	if (count) {
		uint8_t sop = cb->c[sci].op;

		if (sop != SD_FOP_ST_MEM && sop != SD_FOP_ST_STRING && sop != SD_FOP_ST_USTRING)
			return fail(pc, pc->offset + type_offset, E_BAD_STRING);
		code = &cb->c[++ci];
		if (code->op != SD_FOP_NOP)
			return fail_errno(pc, pc->offset, E_TOO_MANY_OPS, -E2BIG);
		code->op = SD_FOP_LP_ARRAY;
		code->param = count;
	}
	cb->c[++ci].op = SD_FOP_END;
	return ci;
}

/* the type after ':' in @arg (cut there); fills *tp, *count, *type_offset */
static int parse_arg_type(struct pctx *pc, char *arg, char **ptype, const struct ptype **tp,
			  unsigned int *count, int *type_offset)
{
	char *t, *t2, *t3;
	int offs;

	*count = 0;
	t = strchr(arg, ':');
	if (t) {
		*t++ = '\0';
		t2 = strchr(t, '[');
		if (t2) {
			*t2++ = '\0';
			t3 = strchr(t2, ']');
			if (!t3) {
				offs = (int)(t2 + strlen(t2) - arg);
				return fail(pc, pc->offset + offs, E_ARRAY_NO_CLOSE);
			} else if (t3[1] != '\0') {
				return fail(pc, pc->offset + (int)(t3 + 1 - arg),
					    E_BAD_ARRAY_SUFFIX);
			}
			*t3 = '\0';
			if (k_strtouint(t2, 0, count) || !*count)
				return fail(pc, pc->offset + (int)(t2 - arg), E_BAD_ARRAY_NUM);
			if (*count > MAX_ARRAY_LEN)
				return fail(pc, pc->offset + (int)(t2 - arg), E_ARRAY_TOO_BIG);
		}
	}
	offs = t ? (int)(t - arg) : 0;
	if (!strcmp(arg, "$comm") || !strcmp(arg, "$COMM") || !strncmp(arg, "\\\"", 2)) {
		if (*count || (t && strcmp(t, "string")))
			return fail(pc, pc->offset + offs, E_NEED_STRING_TYPE);
		*tp = find_ptype("string", pc->flags);
	} else {
		*tp = find_ptype(t, pc->flags);
	}
	if (!*tp)
		return fail(pc, pc->offset + offs, E_BAD_TYPE);
	*ptype = t;
	*type_offset = offs;
	return 0;
}

static void code_free(struct sd_fetch_insn *c, int n)
{
	for (int i = 0; i < n; i++)
		if (c[i].op == SD_FOP_SYMBOL || c[i].op == SD_FOP_DATA)
			free(c[i].data);
}

static void arg_field(struct sd_probe_arg *parg, const struct ptype *t, unsigned int count,
		      uint32_t offset)
{
	struct sd_field *f = &parg->field;

	f->name = parg->name;
	f->offset = (uint16_t)offset;
	f->elem_size = t->size;
	f->size = (uint16_t)(t->size * (count ? count : 1));
	f->array_len = (uint16_t)count;
	f->is_signed = t->is_signed;
	f->ftype = t->ftype;
	f->dynamic = t->is_string;
	f->unsized = count && !t->is_string;
}

static int parse_arg_body(struct pctx *pc, struct sd_probe_arg *parg, const char *body,
			  uint32_t *size)
{
	struct code_buf cb;
	const struct ptype *t;
	unsigned int count;
	char *arg, *type;
	int ret, type_offset, last;
	size_t len = strlen(body);

	if (len > MAX_ARGSTR_LEN)
		return fail_errno(pc, pc->offset, E_ARG_TOO_LONG, -E2BIG);
	if (len == 0)
		return fail(pc, pc->offset, E_NO_ARG_BODY);
	parg->comm = strdup(body);
	arg = strdup(body);
	if (!parg->comm || !arg) {
		free(arg);
		return -ENOMEM;
	}
	ret = parse_arg_type(pc, arg, &type, &t, &count, &type_offset);
	if (ret)
		goto out;
	if (type) {
		parg->type = strdup(type);
		if (!parg->type) {
			ret = -ENOMEM;
			goto out;
		}
	}
	memset(&cb, 0, sizeof(cb));
	cb.end = SD_FETCH_INSN_MAX - 1;
	cb.c[cb.end].op = SD_FOP_END;
	last = 0;
	ret = parse_probe_arg(pc, arg, &cb, &last);
	if (ret < 0)
		goto fail_code;

	arg_field(parg, t, count, *size);
	*size += (uint32_t)t->size * (count ? count : 1);
	if (count && t->is_string) {
		char buf[64];

		snprintf(buf, sizeof(buf), "%s[%u]", t->fmttype, count);
		parg->field.c_type = strdup(buf);
	} else {
		parg->field.c_type = strdup(t->fmttype);
	}
	if (!parg->field.c_type) {
		ret = -ENOMEM;
		goto fail_code;
	}

	ret = finalize(pc, &cb, last, t, count, type, type_offset);
	if (ret < 0)
		goto fail_code;
	last = ret;
	parg->code = calloc((size_t)last + 1, sizeof(*parg->code));
	if (!parg->code) {
		ret = -ENOMEM;
		goto fail_code;
	}
	memcpy(parg->code, cb.c, sizeof(*parg->code) * ((size_t)last + 1));
	ret = 0;
	goto out;
fail_code:
	code_free(cb.c, SD_FETCH_INSN_MAX);
out:
	free(arg);
	return ret;
}

static int parse_probe_arg_word(struct pctx *pc, int i, const char *word, uint32_t *size)
{
	struct sd_probe_def *def = pc->def;
	struct sd_probe_arg *parg = &def->args[i];
	const char *body = strchr(word, '=');

	pc->parg = parg;
	if (body) {
		if (body - word > MAX_ARG_NAME_LEN)
			return fail(pc, 0, E_ARG_NAME_TOO_LONG);
		if (body == word)
			return fail(pc, 0, E_NO_ARG_NAME);
		parg->name = strndup(word, (size_t)(body - word));
		body++;
	} else {
		if (asprintf(&parg->name, "arg%d", i + 1) < 0)
			parg->name = NULL;
		body = word;
	}
	if (!parg->name)
		return -ENOMEM;
	if (!good_name(parg->name, false))
		return fail(pc, 0, E_BAD_ARG_NAME);
	for (size_t j = 0; j < ARRAY_SIZE(reserved_names); j++)
		if (!strcmp(reserved_names[j], parg->name))
			return fail(pc, 0, E_USED_ARG_NAME);
	for (int j = 0; j < i; j++)
		if (!strcmp(def->args[j].name, parg->name))
			return fail(pc, 0, E_USED_ARG_NAME);
	pc->offset = (int)(body - word);
	return parse_arg_body(pc, parg, body, size);
}

/* ---- the whole line ------------------------------------------------------------------- */

static int parse_event_name(struct pctx *pc, const char *event, int offset, char *group_out,
			    char *event_out, bool *has_event)
{
	const char *slash = strchr(event, '/');
	size_t len;

	if (!slash)
		slash = strchr(event, '.');
	if (slash) {
		char buf[SD_EVENT_NAME_MAX];

		if (slash == event)
			return fail(pc, offset, E_NO_GROUP_NAME);
		if (slash - event + 1 > SD_EVENT_NAME_MAX)
			return fail(pc, offset, E_GROUP_TOO_LONG);
		memcpy(buf, event, (size_t)(slash - event));
		buf[slash - event] = '\0';
		if (!good_name(buf, true))
			return fail(pc, offset, E_BAD_GROUP_NAME);
		strcpy(group_out, buf);
		offset += (int)(slash - event + 1);
		event = slash + 1;
	}
	len = strlen(event);
	if (len == 0) {
		if (slash) {
			*has_event = false;
			return 0;
		}
		return fail(pc, offset, E_NO_EVENT_NAME);
	} else if (len >= SD_EVENT_NAME_MAX) {
		return fail(pc, offset, E_EVENT_TOO_LONG);
	}
	if (!good_name(event, false))
		return fail(pc, offset, E_BAD_EVENT_NAME);
	strcpy(event_out, event);
	*has_event = true;
	return 0;
}

/* split @cmd into words as argv_split does; base[i]: word i in the re-joined command */
static int split_words(const char *cmd, char ***pargv, int **pbase, int *pargc)
{
	size_t n = strlen(cmd);
	char **argv = calloc(n / 2 + 2, sizeof(*argv));
	int *base = calloc(n / 2 + 3, sizeof(*base));
	int argc = 0, pos = 0;
	const char *p = cmd;

	if (!argv || !base)
		goto nomem;
	for (;;) {
		const char *s;

		while (isspace((unsigned char)*p))
			p++;
		if (!*p)
			break;
		s = p;
		while (*p && !isspace((unsigned char)*p))
			p++;
		argv[argc] = strndup(s, (size_t)(p - s));
		if (!argv[argc])
			goto nomem;
		base[argc++] = pos;
		pos += (int)(p - s) + 1;
	}
	base[argc] = pos; /* past the end, as the kernel's index >= argc */
	*pargv = argv;
	*pbase = base;
	*pargc = argc;
	return 0;
nomem:
	for (int i = 0; argv && i < argc; i++)
		free(argv[i]);
	free(argv);
	free(base);
	return -ENOMEM;
}

static void generate_kprobe_name(struct sd_probe_def *def)
{
	char *p;

	if (def->symbol)
		snprintf(def->event, sizeof(def->event), "%c_%s%s%s_%ld",
			 def->is_return ? 'r' : 'p', def->module ? def->module : "",
			 def->module ? ":" : "", def->symbol, def->offset);
	else
		snprintf(def->event, sizeof(def->event), "%c_0x%016lx", def->is_return ? 'r' : 'p',
			 (unsigned long)def->addr);
	/* sanitize_event_name(), which leaves the first character alone */
	for (p = def->event + 1; *p; p++)
		if (*p == ':' || *p == '.' || *p == '*' || *p == '-')
			*p = '_';
}

static void generate_uprobe_name(struct sd_probe_def *def)
{
	const char *b = strrchr(def->path, '/');
	char tail[SD_EVENT_NAME_MAX], buf[SD_EVENT_NAME_MAX + 32];
	size_t n;

	b = b ? b + 1 : def->path;
	n = strcspn(b, ".-_");
	if (n >= sizeof(tail))
		n = sizeof(tail) - 1;
	memcpy(tail, b, n);
	tail[n] = '\0';
	/* the kernel names return uprobes p_… too */
	snprintf(buf, sizeof(buf), "p_%s_0x%lx", tail, (unsigned long)def->file_offset);
	buf[SD_EVENT_NAME_MAX - 1] = '\0'; /* cut as the kernel's snprintf into 64 bytes */
	strcpy(def->event, buf);
}

static int parse_kprobe_location(struct pctx *pc, const char *loc)
{
	struct sd_probe_def *def = pc->def;
	unsigned long addr;
	char *sym, *tmp, *colon, *name;
	long offset = 0;
	int ret;

	if (!k_strtoul(loc, 0, &addr)) {
		def->addr = addr;
		/* (the kernel forgets this for an address, and refuses $retval there) */
		if (def->is_return)
			pc->flags |= FL_RETURN;
		return 0;
	}
	pc->index = 1;
	if (strchr(loc, '/') && strchr(loc, ':'))
		return fail(pc, 0, E_BAD_PROBE_ADDR); /* a uprobe location */
	sym = strdup(loc);
	if (!sym)
		return -ENOMEM;
	tmp = strchr(sym, '%');
	if (tmp) {
		if (!strcmp(tmp, "%return")) {
			*tmp = '\0';
			def->is_return = true;
		} else {
			ret = fail(pc, (int)(tmp - sym), E_BAD_ADDR_SUFFIX);
			goto out;
		}
	}
	colon = strchr(sym, ':');
	name = colon ? colon + 1 : sym;
	tmp = strpbrk(name, "+-");
	if (tmp) {
		if (k_strtol(tmp, 0, &offset) || offset < 0 || offset > (long)UINT_MAX) {
			ret = fail(pc, 0, E_BAD_PROBE_ADDR);
			goto out;
		}
		*tmp = '\0';
	}
	if (!*name || (colon && colon == sym)) {
		ret = fail(pc, 0, E_BAD_PROBE_ADDR);
		goto out;
	}
	if (def->is_return)
		pc->flags |= FL_RETURN;
	if (offset == 0 && !def->is_return)
		pc->flags |= FL_FENTRY;
	if (offset != 0 && def->is_return) {
		ret = fail(pc, 0, E_BAD_RETPROBE);
		goto out;
	}
	if (colon) {
		def->module = strndup(sym, (size_t)(colon - sym));
		def->symbol = strdup(name);
	} else {
		def->symbol = strdup(sym);
	}
	def->offset = offset;
	ret = def->symbol && (!colon || def->module) ? 0 : -ENOMEM;
out:
	free(sym);
	return ret;
}

static int parse_kprobe_head(struct pctx *pc, bool *has_event)
{
	struct sd_probe_def *def = pc->def;
	const char *a0 = pc->argv[0];
	const char *event = strchr(a0 + 1, ':');
	int ret;

	if (event)
		event++;
	pc->index = 0;
	if (isdigit((unsigned char)a0[1])) {
		unsigned int maxactive;
		char buf[SD_EVENT_NAME_MAX];
		size_t len = event ? (size_t)(event - (a0 + 1) - 1) : strlen(a0 + 1);

		if (!def->is_return)
			return fail(pc, 1, E_BAD_MAXACT_TYPE);
		if (len > SD_EVENT_NAME_MAX - 1)
			return fail(pc, 1, E_BAD_MAXACT);
		memcpy(buf, a0 + 1, len);
		buf[len] = '\0';
		if (k_strtouint(buf, 0, &maxactive) || !maxactive)
			return fail(pc, 1, E_BAD_MAXACT);
		if (maxactive > SD_MAXACTIVE_MAX)
			return fail(pc, 1, E_MAXACT_TOO_BIG);
		def->maxactive = (int)maxactive;
	}
	ret = parse_kprobe_location(pc, pc->argv[1]);
	if (ret)
		return ret;
	pc->index = 0;
	*has_event = false;
	if (event)
		return parse_event_name(pc, event, (int)(event - a0), def->group, def->event,
					has_event);
	return 0;
}

static int parse_uprobe_head(struct pctx *pc, bool *has_event)
{
	struct sd_probe_def *def = pc->def;
	const char *a0 = pc->argv[0];
	const char *event = a0[1] == ':' ? a0 + 2 : NULL;
	char *filename, *arg, *rctr, *rctr_end, *tmp;
	unsigned long offset, ref = 0;
	struct stat st;
	int ret;

	if (!strchr(pc->argv[1], '/'))
		return sd_error(-EINVAL, "%s: not a PATH:OFFSET uprobe location", pc->argv[1]);
	filename = strdup(pc->argv[1]);
	if (!filename)
		return -ENOMEM;
	arg = strrchr(filename, ':');
	if (!arg || !isdigit((unsigned char)arg[1])) {
		free(filename);
		return sd_error(-EINVAL, "%s: not a PATH:OFFSET uprobe location", pc->argv[1]);
	}
	pc->index = 1;
	*arg++ = '\0';
	if (stat(filename, &st)) {
		ret = fail_errno(pc, 0, E_FILE_NOT_FOUND, errno ? -errno : -ENOENT);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = fail(pc, 0, E_NO_REGULAR_FILE);
		goto out;
	}
	rctr = strchr(arg, '(');
	if (rctr) {
		rctr_end = strchr(rctr, ')');
		if (!rctr_end) {
			rctr_end = rctr + strlen(rctr);
			ret = fail(pc, (int)(rctr_end - filename), E_REFCNT_OPEN_BRACE);
			goto out;
		} else if (rctr_end[1] != '\0') {
			ret = fail(pc, (int)(rctr_end + 1 - filename), E_BAD_REFCNT_SUFFIX);
			goto out;
		}
		*rctr++ = '\0';
		*rctr_end = '\0';
		if (k_strtoul(rctr, 0, &ref)) {
			ret = fail(pc, (int)(rctr - filename), E_BAD_REFCNT);
			goto out;
		}
		def->has_ref_ctr = true;
		def->ref_ctr_offset = ref;
	}
	tmp = strchr(arg, '%');
	if (tmp) {
		if (!strcmp(tmp, "%return")) {
			*tmp = '\0';
			def->is_return = true;
		} else {
			ret = fail(pc, (int)(tmp - filename), E_BAD_ADDR_SUFFIX);
			goto out;
		}
	}
	if (k_strtoul(arg, 0, &offset)) {
		ret = fail(pc, (int)(arg - filename), E_BAD_UPROBE_OFFS);
		goto out;
	}
	def->file_offset = offset;
	def->path = filename;
	filename = NULL;
	if (def->is_return)
		pc->flags |= FL_RETURN;
	pc->index = 0;
	*has_event = false;
	ret = 0;
	if (event)
		ret = parse_event_name(pc, event, 2, def->group, def->event, has_event);
out:
	free(filename);
	return ret;
}

/* kprobes look for $arg words before parsing any argument (traceprobe_expand_meta_args) */
static int check_var_args(struct pctx *pc)
{
	unsigned int loc = pc->flags & FL_LOC;
	bool star = false;

	for (int i = 2; i < pc->argc; i++) {
		const char *a = pc->argv[i];

		if (strncmp(a, "$arg", 4))
			continue;
		pc->index = i;
		if (loc != (FL_KERNEL | FL_FENTRY) && loc != (FL_KERNEL | FL_RETURN))
			return fail(pc, 0, E_NOFENTRY_ARGS);
		if (isdigit((unsigned char)a[4]))
			continue;
		if (a[4] != '*')
			return fail(pc, 0, E_BAD_VAR);
		if (star)
			return fail(pc, 0, E_DOUBLE_ARGS);
		star = true;
	}
	if (star) {
		for (int i = 2; i < pc->argc; i++)
			if (!strncmp(pc->argv[i], "$arg*", 5)) {
				pc->index = i;
				return fail(pc, 0, E_NOSUP_BTFARG); /* $arg* needs BTF */
			}
	}
	return 0;
}

static int parse_remove(char **argv, char *rg, char *re)
{
	const char *event, *slash;
	size_t glen = 0;

	if (argv[0][1] != ':')
		return sd_error(-EINVAL, "%s: a removal is -:[GRP/]EVENT", argv[0]);
	event = argv[0] + 2;
	slash = strchr(event, '/');
	if (slash) {
		glen = (size_t)(slash - event);
		if (glen >= SD_EVENT_NAME_MAX)
			return sd_error(-ENOENT, "%s: no such event", argv[0] + 2);
		memcpy(rg, event, glen);
		event = slash + 1;
	} else if (!*event) {
		return sd_error(-EINVAL, "%s: no event name", argv[0]);
	}
	rg[glen] = '\0';
	if (strlen(event) >= SD_EVENT_NAME_MAX)
		return sd_error(-ENOENT, "%s: no such event", argv[0] + 2);
	strcpy(re, event);
	return 1;
}

void sd_probe_def_free(struct sd_probe_def *def)
{
	if (!def)
		return;
	for (int i = 0; def->args && i < def->nargs; i++) {
		struct sd_probe_arg *a = &def->args[i];

		if (a->code) {
			for (int j = 0; a->code[j].op != SD_FOP_END; j++)
				if (a->code[j].op == SD_FOP_SYMBOL || a->code[j].op == SD_FOP_DATA)
					free(a->code[j].data);
		}
		free(a->code);
		free(a->name);
		free(a->comm);
		free(a->type);
		free(a->field.c_type);
	}
	free(def->args);
	free(def->module);
	free(def->symbol);
	free(def->path);
	free(def->print_fmt);
	free(def->entry_args);
	free(def);
}

int sd_probe_parse(const char *cmd, int kind, struct sd_probe_def **out, char *remove_group,
		   char *remove_event, struct sd_parse_error *err)
{
	struct sd_parse_error dummy;
	struct pctx pc = {.kind = kind};
	struct sd_probe_def *def = NULL;
	bool has_event = false;
	uint32_t size;
	int ret, nargs;

	if (!err)
		err = &dummy;
	memset(err, 0, sizeof(*err));
	*out = NULL;
	pc.err = err;
	pc.sub = kind == SD_PROBE_KPROBE ? "trace_kprobe" : "trace_uprobe";
	ret = split_words(cmd, &pc.argv, &pc.base, &pc.argc);
	if (ret)
		return ret;
	if (!pc.argc) {
		ret = sd_error(-EINVAL, "empty probe definition");
		goto out;
	}
	if (pc.argv[0][0] == '-') {
		ret = parse_remove(pc.argv, remove_group, remove_event);
		goto out;
	}
	/* the kernel hands these to no parser: -EINVAL, nothing in error_log */
	if (pc.argv[0][0] != 'p' && pc.argv[0][0] != 'r') {
		ret =
		    sd_error(-EINVAL, "%s: unknown probe type '%c' (p: a probe, r: a return probe)",
			     cmd, pc.argv[0][0]);
		goto out;
	}
	if (pc.argc < 2) {
		ret = sd_error(-EINVAL,
			       "%s: no probe point after the event (SYMBOL[+OFFS], ADDRESS or "
			       "PATH:OFFSET)",
			       cmd);
		goto out;
	}
	def = calloc(1, sizeof(*def));
	if (!def) {
		ret = -ENOMEM;
		goto out;
	}
	pc.def = def;
	def->kind = kind;
	def->is_return = pc.argv[0][0] == 'r';
	nargs = pc.argc - 2;
	if (kind == SD_PROBE_KPROBE) {
		pc.flags = FL_KERNEL;
		strcpy(def->group, "kprobes");
		ret = parse_kprobe_head(&pc, &has_event);
		if (!ret)
			ret = check_var_args(&pc);
		if (!ret && nargs > SD_PROBE_MAX_ARGS) {
			pc.index = 2;
			ret = fail_errno(&pc, 0, E_TOO_MANY_ARGS, -E2BIG);
		}
	} else {
		pc.flags = FL_USER;
		strcpy(def->group, "uprobes");
		if (nargs > SD_PROBE_MAX_ARGS) {
			pc.index = 2;
			ret = fail_errno(&pc, 0, E_TOO_MANY_ARGS, -E2BIG);
		} else {
			ret = parse_uprobe_head(&pc, &has_event);
		}
	}
	if (ret)
		goto out;
	def->loc_pos = pc.base[1];
	if (!has_event) {
		if (kind == SD_PROBE_KPROBE)
			generate_kprobe_name(def);
		else
			generate_uprobe_name(def);
	}

	def->args = calloc((size_t)(nargs ? nargs : 1), sizeof(*def->args));
	if (!def->args) {
		ret = -ENOMEM;
		goto out;
	}
	size = SD_ENTRY_COMMON_SIZE + (def->is_return ? 16 : 8);
	for (int i = 0; i < nargs; i++) {
		pc.index = i + 2;
		pc.offset = 0;
		def->nargs = i + 1;
		def->args[i].pos = pc.base[i + 2];
		ret = parse_probe_arg_word(&pc, i, pc.argv[i + 2], &size);
		if (ret)
			goto out;
	}
	def->fixed_size = size;
	ret = sd_probe_def_set_print_fmt(def);
	if (ret)
		goto out;
	*out = def;
	def = NULL;
out:
	sd_probe_def_free(def);
	for (int i = 0; i < pc.argc; i++)
		free(pc.argv[i]);
	free(pc.argv);
	free(pc.base);
	return ret;
}

/* ---- @SYM ------------------------------------------------------------------------------- */

int sd_probe_def_resolve(struct sd_probe_def *def, uint64_t (*lookup)(void *arg, const char *sym),
			 void *arg, struct sd_parse_error *err)
{
	for (int i = 0; i < def->nargs; i++) {
		struct sd_probe_arg *a = &def->args[i];

		if (!a->needs_symbol)
			continue;
		for (struct sd_fetch_insn *c = a->code; c->op != SD_FOP_END; c++) {
			char *name, *tmp;
			long offset = 0;
			uint64_t addr;

			if (c->op != SD_FOP_SYMBOL)
				continue;
			if (c[1].op != SD_FOP_IMM)
				return -EINVAL;
			name = strdup(c->data);
			if (!name)
				return -ENOMEM;
			tmp = strpbrk(name, "+-");
			if (tmp) {
				if (k_strtol(tmp, 0, &offset)) {
					free(name);
					goto bad;
				}
				*tmp = '\0';
			}
			addr = *name ? lookup(arg, name) : 0;
			if (!addr) {
				sd_error(-ENOENT, "%s: no data symbol %s", a->name, name);
				free(name);
				goto bad;
			}
			free(name);
			c[1].imm = addr + (uint64_t)offset;
			continue;
		bad:
			if (err) {
				sd_parse_fail(err,
					      def->kind == SD_PROBE_KPROBE ? "trace_kprobe"
									   : "trace_uprobe",
					      a->pos, E_BAD_PROBE_ADDR);
				err->err = -ENOENT;
				err->words = true;
			}
			return -ENOENT;
		}
	}
	return 0;
}
