// SPDX-License-Identifier: MIT
/*
 * filter.c - event filters in the kernel's grammar (events.rst §5).
 *
 * Compile: the text is checked once for parentheses and quotes (giving the
 * kernel's "Too many '('", "Too few '('" and "Missing matching quote"),
 * then read left to right into a flat program of predicates, each with a
 * branch: "if the predicate gives W, continue after entry T". && binds
 * tighter than ||; a '!' applies to the next predicate or parenthesised
 * group and is folded into the branch conditions (De Morgan), so that
 * evaluation is one forward walk over an array: no recursion, no stack,
 * no allocation. The two entries after the last predicate stand for
 * "true" and "false".
 *
 * Error texts, their byte positions and the errno a failed write returns
 * are the kernel's (checked against tracefs on a live kernel, see
 * tests/unit/test_filter.c), including its quirks: positions found while
 * reading a predicate are one past the byte they name, values must be
 * numbers or quoted strings, `~` patterns starting with a digit compare
 * literally, a leading '!' in a `~` pattern negates it, and an end match
 * ("*foo") on a fixed char array compares the array's last bytes.
 *
 * Fields: the event's own, then the generic ones (cpu, CPU, common_cpu:
 * the `cpu` argument of sd_filter_match; comm, COMM: the calling thread's
 * name; stacktrace), then the common_* header fields.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sd_arch/syscall.h"
#include "trace/filter.h"

/* ---- the kernel's character classes (lib/ctype.c, Latin-1 included) ---- */

static bool k_isspace(unsigned char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r') || c == 0xa0;
}

static bool k_isdigit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool k_isalnum(unsigned char c)
{
	if (k_isdigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return true;
	return c >= 0xc0 && c != 0xd7 && c != 0xf7;
}

static bool k_isxdigit(unsigned char c)
{
	return k_isdigit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

/* ---- operators and error texts ---- */

enum {
	OP_GLOB,
	OP_NE,
	OP_EQ,
	OP_LE,
	OP_LT,
	OP_GE,
	OP_GT,
	OP_BAND,
	OP_MAX,
};

/* in this order: "<=" must be tried before "<", ">=" before ">" */
static const char *const op_text[OP_MAX] = {"~", "!=", "==", "<=", "<", ">=", ">", "&"};

enum {
	FE_NONE,
	FE_INVALID_OP,
	FE_TOO_MANY_OPEN,
	FE_TOO_MANY_CLOSE,
	FE_MISSING_QUOTE,
	FE_MISSING_BRACE_OPEN,
	FE_MISSING_BRACE_CLOSE,
	FE_OPERAND_TOO_LONG,
	FE_EXPECT_STRING,
	FE_EXPECT_DIGIT,
	FE_ILLEGAL_FIELD_OP,
	FE_FIELD_NOT_FOUND,
	FE_ILLEGAL_INTVAL,
	FE_TOO_MANY_PREDS,
	FE_INVALID_CPULIST,
	FE_INVALID_VALUE,
	FE_NO_FUNCTION,
	FE_NO_FILTER,
	FE_MAX,
};

static const char *const fe_text[FE_MAX] = {
    [FE_NONE] = "No error",
    [FE_INVALID_OP] = "Invalid operator",
    [FE_TOO_MANY_OPEN] = "Too many '('",
    [FE_TOO_MANY_CLOSE] = "Too few '('",
    [FE_MISSING_QUOTE] = "Missing matching quote",
    [FE_MISSING_BRACE_OPEN] = "Missing '{'",
    [FE_MISSING_BRACE_CLOSE] = "Missing '}'",
    [FE_OPERAND_TOO_LONG] = "Operand too long",
    [FE_EXPECT_STRING] = "Expecting string field",
    [FE_EXPECT_DIGIT] = "Expecting numeric field",
    [FE_ILLEGAL_FIELD_OP] = "Illegal operation for field type",
    [FE_FIELD_NOT_FOUND] = "Field not found",
    [FE_ILLEGAL_INTVAL] = "Illegal integer value",
    [FE_TOO_MANY_PREDS] = "Too many terms in predicate expression",
    [FE_INVALID_CPULIST] = "Invalid cpulist",
    [FE_INVALID_VALUE] = "Invalid value (did you forget quotes)?",
    [FE_NO_FUNCTION] = "Function not found",
    [FE_NO_FILTER] = "No filter found",
};

/* what error_log and the filter file say when no message applies */
static const char errno_text[] = "Error";

#define SUBSYSTEM     "event filter parse error"
#define MAX_STR_VAL   256 /* MAX_FILTER_STR_VAL */
#define NUM_BUF	      24  /* "Big enough to hold an address" */
#define TASK_COMM_LEN 16
#define CPUMASK_MAX   (1u << 16)

/* ---- the compiled program ---- */

enum pred_kind {
	PK_NOP,	     /* a size no comparison exists for: never true */
	PK_NUM,	     /* scalar field vs a constant */
	PK_NUM_MASK, /* scalar field vs a CPU list of weight != 1 */
	PK_CPU,	     /* the current CPU vs a constant */
	PK_CPU_MASK, /* the current CPU vs a CPU list */
	PK_STR,	     /* fixed char array */
	PK_STRLOC,   /* __data_loc string */
	PK_COMM,     /* the thread's name */
};

enum match_type {
	MT_FULL,
	MT_FRONT,
	MT_MIDDLE,
	MT_END,
	MT_GLOB,
};

struct pred {
	uint8_t kind;
	uint8_t op;
	uint8_t size;
	uint8_t is_signed;
	uint8_t not ;
	uint8_t mtype;
	uint16_t offset;
	uint16_t field_len; /* PK_STR: the array's bytes */
	uint32_t plen;
	uint64_t val;
	char *pattern;
	uint64_t *mask;
	unsigned int nbits; /* nr_cpu_ids when the mask was parsed */
};

struct prog_entry {
	int target; /* on a branch, continue after this entry */
	int when;   /* the predicate result that branches */
};

struct sd_filter {
	int n;
	struct prog_entry *prog; /* n + 2: then "true" (target 1), "false" (target 0) */
	struct pred *preds;
};

/* ---- fields ---- */

enum field_kind {
	FK_NUM,
	FK_CPU,
	FK_COMM,
	FK_STRLOC,
	FK_STR,
	FK_OTHER, /* numeric, but no CPU lists (the kernel's stacktrace) */
};

struct fref {
	uint8_t kind;
	uint8_t is_signed;
	uint16_t offset;
	uint16_t size;
};

static bool type_has_char(const char *t)
{
	return t && strstr(t, "char");
}

static void classify(const struct sd_field *f, struct fref *r)
{
	r->offset = f->offset;
	r->size = f->size;
	r->is_signed = f->is_signed;
	if (f->dynamic || f->ftype == SD_FT_STRING)
		r->kind =
		    (f->ftype == SD_FT_STRING || type_has_char(f->c_type)) ? FK_STRLOC : FK_NUM;
	else if (f->ftype == SD_FT_CHARARRAY || (f->array_len && type_has_char(f->c_type)))
		r->kind = FK_STR;
	else
		r->kind = FK_NUM;
}

/* the event's fields, then the generic ones, then the common header */
static bool find_field(const struct sd_event *ev, const char *name, size_t len, struct fref *r)
{
	static const struct {
		const char *name;
		uint8_t kind;
	} generic[] = {
	    {"CPU", FK_CPU},	      {"cpu", FK_CPU},	 {"common_cpu", FK_CPU},
	    {"COMM", FK_COMM},	      {"comm", FK_COMM}, {"stacktrace", FK_OTHER},
	    {"STACKTRACE", FK_OTHER},
	};
	size_t i;

	for (i = 0; ev && i < ev->nfields; i++) {
		const struct sd_field *f = &ev->fields[i];

		if (f->name && strlen(f->name) == len && !memcmp(f->name, name, len)) {
			classify(f, r);
			return true;
		}
	}
	for (i = 0; i < sizeof(generic) / sizeof(generic[0]); i++) {
		if (strlen(generic[i].name) == len && !memcmp(generic[i].name, name, len)) {
			r->kind = generic[i].kind;
			/* as the kernel defines them: no offset, no size */
			r->offset = 0;
			r->size = 0;
			r->is_signed = generic[i].kind == FK_CPU;
			return true;
		}
	}
	for (i = 0; i < sizeof(sd_common_fields) / sizeof(sd_common_fields[0]); i++) {
		const struct sd_field *f = &sd_common_fields[i];

		if (strlen(f->name) == len && !memcmp(f->name, name, len)) {
			classify(f, r);
			return true;
		}
	}
	return false;
}

static bool is_string_kind(int kind)
{
	return kind == FK_STR || kind == FK_STRLOC || kind == FK_COMM;
}

/* ---- numbers, as kstrtoull/kstrtoll with base 0 ---- */

static int k_strtoull(const char *s, uint64_t *res)
{
	unsigned int base = 10;
	uint64_t v = 0;
	bool overflow = false;
	int n = 0;

	if (s[0] == '0') {
		if ((s[1] | 0x20) == 'x' && k_isxdigit(s[2])) {
			base = 16;
			s += 2;
		} else {
			base = 8;
		}
	}
	for (;; s++, n++) {
		unsigned char c = *s;
		unsigned int d;

		if (k_isdigit(c))
			d = c - '0';
		else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
			d = (c | 0x20) - 'a' + 10;
		else
			break;
		if (d >= base)
			break;
		if (v > (UINT64_MAX - d) / base)
			overflow = true;
		v = v * base + d;
	}
	if (overflow)
		return -ERANGE;
	if (!n)
		return -EINVAL;
	if (*s == '\n')
		s++;
	if (*s)
		return -EINVAL;
	*res = v;
	return 0;
}

static int k_strtoll(const char *s, uint64_t *res)
{
	uint64_t v;
	int r;

	if (s[0] == '-') {
		r = k_strtoull(s + 1, &v);
		if (r)
			return r;
		if ((int64_t)(0 - v) > 0)
			return -ERANGE;
		*res = 0 - v;
		return 0;
	}
	if (s[0] == '+')
		s++;
	r = k_strtoull(s, &v);
	if (r)
		return r;
	if ((int64_t)v < 0)
		return -ERANGE;
	*res = v;
	return 0;
}

/* ---- CPU lists (bitmap_parselist) ---- */

static unsigned int nr_cpu_ids(void)
{
	static unsigned int cached;
	unsigned int lo, hi, n = 0;
	char buf[256];
	FILE *f;

	if (cached)
		return cached;
	f = fopen("/sys/devices/system/cpu/possible", "re");
	if (f) {
		if (fgets(buf, sizeof(buf), f)) {
			/* "0-N" or "0-a,b-c": the highest CPU is what counts */
			for (char *p = buf; *p;) {
				if (sscanf(p, "%u-%u", &lo, &hi) == 2 || sscanf(p, "%u", &hi) == 1)
					if (hi + 1 > n)
						n = hi + 1;
				p = strchr(p, ',');
				if (!p)
					break;
				p++;
			}
		}
		fclose(f);
	}
	if (!n) {
		long c = sysconf(_SC_NPROCESSORS_CONF);

		n = c > 0 ? (unsigned int)c : 1;
	}
	if (n > CPUMASK_MAX)
		n = CPUMASK_MAX;
	cached = n;
	return n;
}

static bool end_of_str(char c)
{
	return c == '\0' || c == '\n';
}

static bool sep_of_region(char c)
{
	return k_isspace(c) || c == ',';
}

static bool end_of_region(char c)
{
	return sep_of_region(c) || end_of_str(c);
}

static const char *cpulist_num(const char *s, unsigned int *num, unsigned int last)
{
	uint64_t v = 0;
	int n = 0;

	if (s[0] == 'N') {
		*num = last;
		return s + 1;
	}
	for (; k_isdigit(*s); s++, n++) {
		if (v > (UINT64_MAX - 9) / 10 || v * 10 + (*s - '0') > UINT32_MAX)
			return NULL;
		v = v * 10 + (*s - '0');
	}
	if (!n)
		return NULL;
	*num = (unsigned int)v;
	return s;
}

/* bitmap_parselist: "0-3,8", "N", "all", "0-15:2/4"; false when invalid */
static bool cpulist_parse(const char *s, uint64_t *mask, unsigned int nbits)
{
	unsigned int last = nbits - 1;

	for (;;) {
		unsigned int start, end, off, group;

		while (sep_of_region(*s))
			s++;
		if (end_of_str(*s))
			return true;
		if (!strncasecmp(s, "all", 3)) {
			start = 0;
			end = last;
			s += 3;
		} else {
			s = cpulist_num(s, &start, last);
			if (!s)
				return false;
			end = start;
			if (!end_of_region(*s)) {
				if (*s != '-')
					return false;
				s = cpulist_num(s + 1, &end, last);
				if (!s)
					return false;
			}
		}
		if (end_of_region(*s)) {
			off = end + 1;
			group = end + 1;
		} else {
			if (*s != ':')
				return false;
			s = cpulist_num(s + 1, &off, last);
			if (!s || *s != '/')
				return false;
			s = cpulist_num(s + 1, &group, last);
			if (!s)
				return false;
		}
		if (start > end || group == 0 || off > group || end >= nbits)
			return false;
		for (uint64_t g = start; g <= end; g += group)
			for (uint64_t b = g; b < g + off && b <= end; b++)
				mask[b / 64] |= 1ull << (b % 64);
	}
}

static bool mask_test(const struct pred *p, uint64_t cpu)
{
	return cpu < p->nbits && (p->mask[cpu / 64] >> (cpu % 64)) & 1;
}

/* ---- parsing ---- */

struct perr {
	int code; /* FE_*, or FE_NONE for an errno-only failure */
	int pos;
};

static void set_err(struct perr *pe, int code, int pos)
{
	pe->code = code;
	pe->pos = pos;
}

/*
 * The ~ pattern: a leading '!' negates; "foo" compares whole, "foo*" the
 * front, "*foo" the end, "*foo*" anywhere, anything else with * ? [ or \
 * is a full glob. A pattern starting with a digit compares whole (the
 * kernel takes it for a function index of set_ftrace_filter).
 */
static void build_regex(struct pred *p)
{
	char *b = p->pattern, *search;
	uint32_t len = p->plen, i;
	int type = MT_FULL;

	if (b[0] == '!') {
		p->not = 1;
		b++;
		len--;
	} else {
		p->not = 0;
	}
	search = b;
	if (k_isdigit(b[0]))
		goto out;
	for (i = 0; i < len; i++) {
		if (b[i] == '*') {
			if (!i) {
				type = MT_END;
			} else if (i == len - 1) {
				type = type == MT_END ? MT_MIDDLE : MT_FRONT;
				b[i] = '\0';
				break;
			} else {
				type = MT_GLOB;
				goto out;
			}
		} else if (b[i] == '[' || b[i] == '?' || b[i] == '\\') {
			type = MT_GLOB;
			goto out;
		}
	}
	if (b[0] == '*')
		search = b + 1;
out:
	p->mtype = (uint8_t)type;
	p->plen = (uint32_t)strlen(search);
	memmove(p->pattern, search, p->plen + 1);
}

/* comparison on a scalar field of this size, or PK_NOP */
static uint8_t scalar_kind(unsigned int size)
{
	return size == 1 || size == 2 || size == 4 || size == 8 ? PK_NUM : PK_NOP;
}

struct pctx {
	const struct sd_event *ev;
	unsigned int nbits;
};

/*
 * One predicate at @str, which starts at byte @pos - 1 of the filter (the
 * kernel reports positions from here one byte late). Returns the bytes
 * consumed, -1 when there is no field name at all, or -errno.
 */
static int parse_pred(const char *str, const struct pctx *cx, int pos, struct perr *pe,
		      struct pred *p)
{
	struct fref f;
	char num[NUM_BUF];
	bool function = false;
	int i = 0, s, len, op;

	while (k_isspace(str[i]))
		i++;
	s = i;
	while (k_isalnum(str[i]) || str[i] == '_')
		i++;
	len = i - s;
	if (!len)
		return -1;
	if (!find_field(cx->ev, str + s, len, &f)) {
		set_err(pe, FE_FIELD_NOT_FOUND, pos + i);
		return -EINVAL;
	}
	if (!strncmp(str + i, ".ustring", 8))
		i += 8; /* user pointers: no such fields here, the suffix changes nothing */
	if (!strncmp(str + i, ".function", 9)) {
		function = true;
		i += 9;
	}
	while (k_isspace(str[i]))
		i++;
	for (op = 0; op < OP_MAX; op++)
		if (!strncmp(str + i, op_text[op], strlen(op_text[op])))
			break;
	if (op == OP_MAX) {
		set_err(pe, FE_INVALID_OP, pos + i);
		return -EINVAL;
	}
	i += (int)strlen(op_text[op]);
	while (k_isspace(str[i]))
		i++;
	s = i;

	memset(p, 0, sizeof(*p));
	p->op = (uint8_t)op;
	p->offset = f.offset;
	p->size = (uint8_t)(f.size > 255 ? 0 : f.size);
	p->is_signed = f.is_signed;

	if (function) {
		/*
		 * field.function == SYMBOL: the syntax is checked as the kernel
		 * does, but there is no symbol table to look the name up in, so
		 * it always ends as "Function not found".
		 */
		if (f.size != sizeof(long)) {
			set_err(pe, FE_ILLEGAL_FIELD_OP, pos + i);
			return -EINVAL;
		}
		if (op != OP_EQ && op != OP_NE) {
			set_err(pe, FE_INVALID_OP, pos + i);
			return -EINVAL;
		}
		if (k_isdigit(str[i])) {
			uint64_t v;

			while (k_isalnum(str[i]))
				i++;
			len = i - s;
			if (len >= NUM_BUF) {
				set_err(pe, FE_OPERAND_TOO_LONG, pos + i);
				return -EINVAL;
			}
			memcpy(num, str + s, len);
			num[len] = '\0';
			if (k_strtoull(num, &v)) {
				set_err(pe, FE_INVALID_VALUE, pos + i);
				return -EINVAL;
			}
		} else {
			while (str[i] && !k_isspace(str[i]))
				i++;
		}
		set_err(pe, FE_NO_FUNCTION, pos + i);
		return -EINVAL;
	}

	if (!strncmp(str + i, "CPUS", 4)) {
		unsigned int w = 0, first = 0;
		int start;
		char *list;
		bool ok;

		if (f.kind != FK_NUM && f.kind != FK_CPU) {
			set_err(pe, FE_ILLEGAL_FIELD_OP, pos + i);
			return -EINVAL;
		}
		if (op != OP_EQ && op != OP_NE && op != OP_BAND) {
			set_err(pe, FE_ILLEGAL_FIELD_OP, pos + i);
			return -EINVAL;
		}
		i += 4;
		if (str[i++] != '{') {
			set_err(pe, FE_MISSING_BRACE_OPEN, pos + i);
			return -EINVAL;
		}
		start = i;
		while (str[i] && str[i] != '}')
			i++;
		if (str[i] != '}') {
			set_err(pe, FE_MISSING_BRACE_CLOSE, pos + i);
			return -EINVAL;
		}
		if (start == i) {
			set_err(pe, FE_INVALID_CPULIST, pos + i);
			return -EINVAL;
		}
		list = strndup(str + start, i - start);
		p->nbits = cx->nbits;
		p->mask = calloc((cx->nbits + 63) / 64, sizeof(uint64_t));
		if (!list || !p->mask) {
			free(list);
			free(p->mask);
			p->mask = NULL;
			return -ENOMEM;
		}
		ok = cpulist_parse(list, p->mask, cx->nbits);
		free(list);
		if (!ok) {
			free(p->mask);
			p->mask = NULL;
			set_err(pe, FE_INVALID_CPULIST, pos + i);
			return -EINVAL;
		}
		i++;
		for (unsigned int b = 0; b < cx->nbits; b++) {
			if (mask_test(p, b)) {
				if (!w++)
					first = b;
			}
		}
		if (w == 1) {
			/* one CPU: a plain comparison with its number */
			free(p->mask);
			p->mask = NULL;
			p->val = first;
			if (p->op == OP_BAND)
				p->op = OP_EQ;
			if (f.kind == FK_CPU) {
				p->kind = PK_CPU;
			} else {
				p->kind = scalar_kind(f.size);
				p->is_signed = 0;
				p->not = p->op == OP_NE;
			}
		} else {
			p->kind = f.kind == FK_CPU ? PK_CPU_MASK : scalar_kind(f.size);
			if (p->kind == PK_NUM)
				p->kind = PK_NUM_MASK;
		}
		return i;
	}

	if (str[i] == '\'' || str[i] == '"') {
		char q = str[i];

		switch (op) {
		case OP_NE:
			p->not = 1;
			break;
		case OP_GLOB:
		case OP_EQ:
			break;
		default:
			set_err(pe, FE_ILLEGAL_FIELD_OP, pos + i);
			return -EINVAL;
		}
		if (!is_string_kind(f.kind)) {
			set_err(pe, FE_EXPECT_DIGIT, pos + i);
			return -EINVAL;
		}
		for (i++; str[i]; i++)
			if (str[i] == q)
				break;
		if (!str[i]) {
			set_err(pe, FE_MISSING_QUOTE, pos + i);
			return -EINVAL;
		}
		s++;
		len = i - s;
		if (len >= MAX_STR_VAL) {
			set_err(pe, FE_OPERAND_TOO_LONG, pos + i);
			return -EINVAL;
		}
		p->pattern = strndup(str + s, len);
		if (!p->pattern)
			return -ENOMEM;
		p->plen = (uint32_t)len;
		p->mtype = MT_FULL;
		if (op == OP_GLOB)
			build_regex(p);
		switch (f.kind) {
		case FK_COMM:
			p->kind = PK_COMM;
			p->field_len = TASK_COMM_LEN;
			break;
		case FK_STR:
			p->kind = PK_STR;
			p->field_len = f.size;
			break;
		default:
			p->kind = PK_STRLOC;
			break;
		}
		return i + 1;
	}

	if (k_isdigit(str[i]) || str[i] == '-') {
		uint64_t v;
		int r;

		if (is_string_kind(f.kind)) {
			set_err(pe, FE_EXPECT_STRING, pos + i);
			return -EINVAL;
		}
		if (op == OP_GLOB) {
			set_err(pe, FE_ILLEGAL_FIELD_OP, pos + i);
			return -EINVAL;
		}
		if (str[i] == '-')
			i++;
		while (k_isalnum(str[i]))
			i++;
		len = i - s;
		if (len >= NUM_BUF) {
			set_err(pe, FE_OPERAND_TOO_LONG, pos + i);
			return -EINVAL;
		}
		memcpy(num, str + s, len);
		num[len] = '\0';
		r = f.is_signed ? k_strtoll(num, &v) : k_strtoull(num, &v);
		if (r) {
			set_err(pe, FE_ILLEGAL_INTVAL, pos + s);
			return -EINVAL;
		}
		p->val = v;
		if (f.kind == FK_CPU) {
			p->kind = PK_CPU;
		} else {
			p->kind = scalar_kind(f.size);
			p->not = op == OP_NE;
		}
		return i;
	}

	set_err(pe, FE_INVALID_VALUE, pos + i);
	return -EINVAL;
}

enum {
	CALC_TOO_MANY_CLOSE = -1,
	CALC_TOO_MANY_OPEN = -2,
	CALC_MISSING_QUOTE = -3,
};

/*
 * First look: parentheses balance, quotes close, and how many predicates
 * and how deep the parentheses go (the whole counts as one level).
 */
static int calc_stack(const char *str, int *parens, int *preds, int *err)
{
	bool is_pred = false;
	int nr_preds = 0, open = 1, max_open = 1, last_quote = 0, i;
	char quote = 0;

	*err = 0;
	for (i = 0; str[i]; i++) {
		if (k_isspace(str[i]))
			continue;
		if (quote) {
			if (str[i] == quote)
				quote = 0;
			continue;
		}
		switch (str[i]) {
		case '\'':
		case '"':
			quote = str[i];
			last_quote = i;
			break;
		case '|':
		case '&':
			if (str[i + 1] != str[i])
				break;
			is_pred = false;
			continue;
		case '(':
			is_pred = false;
			if (++open > max_open)
				max_open = open;
			continue;
		case ')':
			is_pred = false;
			if (open == 1) {
				*err = i;
				return CALC_TOO_MANY_CLOSE;
			}
			open--;
			continue;
		}
		if (!is_pred) {
			nr_preds++;
			is_pred = true;
		}
	}
	if (quote) {
		*err = last_quote;
		return CALC_MISSING_QUOTE;
	}
	if (open != 1) {
		int level = open;

		/* the '(' left open, searched from the end; byte 0 when not found */
		for (i--; i; i--) {
			if (quote) {
				if (str[i] == quote)
					quote = 0;
				continue;
			}
			switch (str[i]) {
			case '(':
				if (level == open) {
					*err = i;
					return CALC_TOO_MANY_OPEN;
				}
				level--;
				break;
			case ')':
				level++;
				break;
			case '\'':
			case '"':
				quote = str[i];
				break;
			}
		}
		*err = 0;
		return CALC_TOO_MANY_OPEN;
	}
	*parens = max_open;
	*preds = nr_preds;
	return 0;
}

enum {
	ST_INVERT = 1,
	ST_AND = 2,
	ST_OR = 4,
};

/*
 * Entry @n ends an && or || chain: the entry its target names (the one
 * the operator follows) now branches past @n on @when, and @n takes over
 * that entry's old target, the next one up the chain.
 */
static bool update_preds(struct prog_entry *prog, int n, int when)
{
	int t = prog[n].target;

	if (t < 0)
		return false;
	prog[n].target = prog[t].target;
	prog[t].when = when;
	prog[t].target = n;
	return true;
}

static void free_preds(struct pred *preds, int n)
{
	for (int i = 0; i < n; i++) {
		free(preds[i].pattern);
		free(preds[i].mask);
	}
}

static int predicate_parse(const char *str, int nr_parens, int nr_preds, const struct pctx *cx,
			   struct perr *pe, struct sd_filter *flt)
{
	struct prog_entry *prog;
	struct pred *preds;
	uint8_t *inverts;
	int *stack;
	int top = 0, invert = 0, n = 0, ret = -ENOMEM, p = 0, i;

	stack = calloc(nr_parens + 1, sizeof(*stack));
	prog = calloc(nr_preds + 2, sizeof(*prog));
	preds = calloc(nr_preds, sizeof(*preds));
	inverts = calloc(nr_preds, 1);
	if (!stack || !prog || !preds || !inverts)
		goto fail;

	while (str[p]) {
		int q = p++, len;
		char c = str[q];

		if (k_isspace(c))
			continue;
		if (c == '(') {
			if (top >= nr_parens) {
				ret = -EINVAL;
				goto fail;
			}
			stack[++top] = invert;
			continue;
		}
		if (c == '!' && str[q + 1] != '=' && str[q + 1] != '~') {
			invert = !invert;
			continue;
		}
		if (n >= nr_preds) {
			set_err(pe, FE_TOO_MANY_PREDS, q);
			goto fail;
		}
		inverts[n] = (uint8_t)invert;
		prog[n].target = n - 1;
		len = parse_pred(str + q, cx, q + 1, pe, &preds[n]);
		if (len < 0) {
			ret = len;
			goto fail;
		}
		p = q + len;
		n++;

		ret = -1;
		for (;;) {
			q = p++;
			c = str[q];
			if (k_isspace(c))
				continue;
			if (c == '&' || c == '|') {
				if (str[q + 1] != c) {
					set_err(pe, FE_TOO_MANY_PREDS, q);
					goto fail;
				}
				p++;
			} else if (c != ')' && c != '\0') {
				set_err(pe, FE_TOO_MANY_PREDS, q);
				goto fail;
			}
			invert = stack[top] & ST_INVERT;
			if (stack[top] & ST_AND) {
				if (!update_preds(prog, n - 1, invert)) {
					ret = -EINVAL;
					goto fail;
				}
				stack[top] &= ~ST_AND;
			}
			if (c == '&') {
				stack[top] |= ST_AND;
				break;
			}
			if (stack[top] & ST_OR) {
				if (!update_preds(prog, n - 1, !invert)) {
					ret = -EINVAL;
					goto fail;
				}
				stack[top] &= ~ST_OR;
			}
			if (c == '|') {
				stack[top] |= ST_OR;
				break;
			}
			if (c == '\0')
				goto out;
			if (top == 0) {
				set_err(pe, FE_TOO_MANY_CLOSE, p);
				goto fail;
			}
			top--;
		}
	}
out:
	if (top != 0) {
		set_err(pe, FE_TOO_MANY_OPEN, p);
		goto fail;
	}
	if (!n) {
		ret = -EINVAL;
		set_err(pe, FE_NO_FILTER, p);
		goto fail;
	}
	prog[n].target = 1;	/* true */
	prog[n + 1].target = 0; /* false */
	prog[n - 1].target = n;
	prog[n - 1].when = 0;

	/* a branch to an entry that branches on the same result goes on to its target */
	for (i = n - 2; i >= 0; i--) {
		int t = prog[i].target;

		if (t < 0 || t > n + 1) {
			ret = -EINVAL;
			goto fail;
		}
		if (prog[i].when == prog[t].when)
			prog[i].target = prog[t].target;
	}
	/* fold the negations into the branch conditions */
	for (i = 0; i < n; i++) {
		prog[i].when ^= inverts[i];
		if (prog[i].target <= i || prog[i].target > n) {
			ret = -EINVAL;
			goto fail;
		}
	}
	free(stack);
	free(inverts);
	flt->n = n;
	flt->prog = prog;
	flt->preds = preds;
	return 0;
fail:
	if (preds)
		free_preds(preds, n < nr_preds ? n + 1 : n);
	free(stack);
	free(prog);
	free(preds);
	free(inverts);
	return ret;
}

static int fail_with(struct sd_parse_error *err, const struct perr *pe, int ret)
{
	if (err) {
		err->subsystem = SUBSYSTEM;
		if (pe->code > FE_NONE && pe->code < FE_MAX) {
			err->msg = fe_text[pe->code];
			err->pos = pe->pos;
		} else {
			err->msg = errno_text;
			err->pos = 0;
		}
		err->err = ret;
	}
	return ret;
}

/* the text as the kernel keeps it: trailing white space cut */
static size_t stripped_len(const char *text)
{
	size_t len = strlen(text);

	while (len && k_isspace(text[len - 1]))
		len--;
	return len;
}

int sd_filter_compile(const char *text, const struct sd_event *ev, struct sd_filter **out,
		      struct sd_parse_error *err)
{
	struct perr pe = {FE_NONE, 0};
	struct pctx cx = {ev, 0};
	struct sd_filter *flt;
	int parens, preds, pos, r;
	const char *b;
	size_t len;
	char *str;

	*out = NULL;
	if (!text)
		return 0;
	len = stripped_len(text);
	for (b = text; k_isspace(*b); b++)
		;
	/* "0" clears; so does an empty text (the kernel says "Error: (0)") */
	if (b >= text + len || (text + len - b == 1 && *b == '0'))
		return 0;

	str = strndup(text, len);
	if (!str)
		return fail_with(err, &pe, -ENOMEM);
	r = calc_stack(str, &parens, &preds, &pos);
	if (r < 0) {
		set_err(&pe,
			r == CALC_MISSING_QUOTE	  ? FE_MISSING_QUOTE
			: r == CALC_TOO_MANY_OPEN ? FE_TOO_MANY_OPEN
						  : FE_TOO_MANY_CLOSE,
			pos);
		free(str);
		return fail_with(err, &pe, r);
	}
	if (!preds) {
		free(str);
		return fail_with(err, &pe, -EINVAL);
	}
	flt = calloc(1, sizeof(*flt));
	if (!flt) {
		free(str);
		return fail_with(err, &pe, -ENOMEM);
	}
	cx.nbits = nr_cpu_ids();
	r = predicate_parse(str, parens, preds, &cx, &pe, flt);
	free(str);
	if (r) {
		free(flt);
		return fail_with(err, &pe, r);
	}
	*out = flt;
	return 0;
}

void sd_filter_free(struct sd_filter *f)
{
	if (!f)
		return;
	free_preds(f->preds, f->n);
	free(f->preds);
	free(f->prog);
	free(f);
}

/* ---- evaluation: signal-safe, no libc ---- */

static int cmp_u(uint64_t a, uint64_t b, int op)
{
	switch (op) {
	case OP_LT:
		return a < b;
	case OP_LE:
		return a <= b;
	case OP_GT:
		return a > b;
	case OP_GE:
		return a >= b;
	case OP_BAND:
		return !!(a & b);
	}
	return 0;
}

static int cmp_s(int64_t a, int64_t b, int op)
{
	switch (op) {
	case OP_LT:
		return a < b;
	case OP_LE:
		return a <= b;
	case OP_GT:
		return a > b;
	case OP_GE:
		return a >= b;
	case OP_BAND:
		return !!(a & b);
	}
	return 0;
}

/* the field's bytes as an unsigned value of its size; false if past the record */
static bool load(const struct pred *p, const unsigned char *e, uint32_t len, uint64_t *v)
{
	const unsigned char *a = e + p->offset;

	if ((uint32_t)p->offset + p->size > len)
		return false;
	switch (p->size) {
	case 1:
		*v = a[0];
		break;
	case 2: {
		uint16_t x;

		__builtin_memcpy(&x, a, 2);
		*v = x;
		break;
	}
	case 4: {
		uint32_t x;

		__builtin_memcpy(&x, a, 4);
		*v = x;
		break;
	}
	default: {
		uint64_t x;

		__builtin_memcpy(&x, a, 8);
		*v = x;
		break;
	}
	}
	return true;
}

/* sign-extend a value of @size bytes */
static int64_t sext(uint64_t v, unsigned int size)
{
	switch (size) {
	case 1:
		return (int8_t)v;
	case 2:
		return (int16_t)v;
	case 4:
		return (int32_t)v;
	}
	return (int64_t)v;
}

static uint64_t trunc_to(uint64_t v, unsigned int size)
{
	return size >= 8 ? v : v & ((1ull << (size * 8)) - 1);
}

static int num_match(const struct pred *p, uint64_t v)
{
	uint64_t c = trunc_to(p->val, p->size);

	if (p->op == OP_EQ || p->op == OP_NE)
		return (v == c) ^ p->not ;
	if (p->is_signed)
		return cmp_s(sext(v, p->size), sext(c, p->size), p->op);
	return cmp_u(v, c, p->op);
}

static int cpu_match(const struct pred *p, int cpu)
{
	int c = (int)p->val;

	switch (p->op) {
	case OP_EQ:
		return cpu == c;
	case OP_NE:
		return cpu != c;
	case OP_LT:
		return cpu < c;
	case OP_LE:
		return cpu <= c;
	case OP_GT:
		return cpu > c;
	case OP_GE:
		return cpu >= c;
	}
	return 0;
}

/* a scalar against a list of CPUs other than one: == never, != always, & tests */
static int scalar_mask_match(const struct pred *p, uint64_t cpu)
{
	switch (p->op) {
	case OP_EQ:
		return 0;
	case OP_NE:
		return 1;
	case OP_BAND:
		return mask_test(p, cpu);
	}
	return 0;
}

/* glob(7) on at most @len bytes of @s (a NUL ends it earlier), as lib/glob.c */
static bool glob_match(const char *pat, const char *s, uint32_t len)
{
	const char *end = s + len, *back_pat = NULL, *back_str = NULL;

	for (;;) {
		unsigned char c = s < end ? (unsigned char)*s : 0;
		unsigned char d = (unsigned char)*pat++;

		s++;
		switch (d) {
		case '?':
			if (!c)
				return false;
			break;
		case '*':
			if (!*pat)
				return true;
			back_pat = pat;
			back_str = --s;
			break;
		case '[': {
			bool match = false, inverted = *pat == '!';

			if (!c) /* no class matches the end, not even [!...] */
				return false;
			const char *cls = pat + inverted;
			unsigned char a = (unsigned char)*cls++;

			do {
				unsigned char hi = a;

				if (!a)
					goto literal;
				if (cls[0] == '-' && cls[1] != ']') {
					hi = (unsigned char)cls[1];
					if (!hi)
						goto literal;
					cls += 2;
				}
				match |= a <= c && c <= hi;
			} while ((a = (unsigned char)*cls++) != ']');
			if (match == inverted)
				goto backtrack;
			pat = cls;
			break;
		}
		case '\\':
			d = (unsigned char)*pat++;
			/* fall through */
		default:
		literal:
			if (c == d) {
				if (!d)
					return true;
				break;
			}
		backtrack:
			if (!c || !back_pat)
				return false;
			pat = back_pat;
			s = ++back_str;
			break;
		}
	}
}

/* strncmp(a, b, n) == 0 */
static bool str_eq_n(const char *a, const char *b, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		if (a[i] != b[i])
			return false;
		if (!a[i])
			return true;
	}
	return true;
}

static bool mem_eq(const char *a, const char *b, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		if (a[i] != b[i])
			return false;
	return true;
}

/* @s: @len bytes of string, NUL-padded or NUL-terminated or neither */
static int regex_match(const struct pred *p, const char *s, uint32_t len)
{
	const char *pat = p->pattern;
	uint32_t pl = p->plen;

	switch (p->mtype) {
	case MT_FULL:
		if (len < pl)
			return 0;
		return str_eq_n(s, pat, len);
	case MT_FRONT:
		if (len < pl)
			return 0;
		return str_eq_n(s, pat, pl);
	case MT_MIDDLE:
		/* strnstr: every window of the @len bytes, NULs included */
		if (!pl)
			return 1;
		for (uint32_t i = 0; i + pl <= len; i++)
			if (mem_eq(s + i, pat, pl))
				return 1;
		return 0;
	case MT_END:
		/* the last byte is taken to be the NUL: true of __data_loc strings only */
		return len >= 1 && len - 1 >= pl && mem_eq(s + len - 1 - pl, pat, pl);
	case MT_GLOB:
		return glob_match(pat, s, len);
	}
	return 0;
}

static int eval_pred(const struct pred *p, const unsigned char *e, uint32_t len, unsigned int cpu)
{
	uint64_t v;

	switch (p->kind) {
	case PK_NUM:
		if (!load(p, e, len, &v))
			return 0;
		return num_match(p, v);
	case PK_NUM_MASK:
		if (!load(p, e, len, &v))
			return 0;
		v = (uint32_t)v; /* an unsigned int, as the kernel reads it */
		if (v >= p->nbits)
			return 0;
		return scalar_mask_match(p, v);
	case PK_CPU:
		return cpu_match(p, (int)cpu);
	case PK_CPU_MASK:
		return scalar_mask_match(p, cpu);
	case PK_STR:
		if ((uint32_t)p->offset + p->field_len > len)
			return 0;
		return regex_match(p, (const char *)e + p->offset, p->field_len) ^ p->not ;
	case PK_STRLOC: {
		uint32_t loc, off, n;

		if ((uint32_t)p->offset + 4 > len)
			return 0;
		__builtin_memcpy(&loc, e + p->offset, 4);
		off = loc & 0xffff;
		n = loc >> 16;
		if (off > len || n > len - off)
			n = 0, off = 0; /* out of the record: taken as "" */
		return regex_match(p, n ? (const char *)e + off : "", n ? n : 1) ^ p->not ;
	}
	case PK_COMM: {
		union {
			char c[TASK_COMM_LEN];
			uint64_t q[TASK_COMM_LEN / 8];
		} comm;

		comm.q[0] = 0;
		comm.q[1] = 0;
		sd_raw_syscall2(SYS_prctl, PR_GET_NAME, comm.c);
		comm.c[TASK_COMM_LEN - 1] = '\0';
		return regex_match(p, comm.c, TASK_COMM_LEN) ^ p->not ;
	}
	}
	return 0;
}

bool sd_filter_match(const struct sd_filter *f, const void *entry, uint32_t len, unsigned int cpu)
{
	const struct prog_entry *prog;
	int i;

	if (!f)
		return true;
	prog = f->prog;
	for (i = 0; i < f->n; i++) {
		int m = eval_pred(&f->preds[i], entry, len, cpu);

		if (m == prog[i].when)
			i = prog[i].target;
	}
	return prog[i].target;
}

/* ---- the filter file ---- */

void sd_filter_print_error(struct sd_seq *s, const char *text, const struct sd_parse_error *err)
{
	size_t len;
	int pos;

	if (!text) {
		sd_seq_puts(s, "none\n");
		return;
	}
	len = stripped_len(text);
	sd_seq_putmem(s, text, len);
	if (!err || !err->msg) {
		sd_seq_putc(s, '\n');
		return;
	}
	if (err->msg == errno_text || !strcmp(err->msg, errno_text)) {
		sd_seq_printf(s, "\nError: (%d)\n\n", err->err == -ENOMEM ? -ENOMEM : 0);
		return;
	}
	pos = err->pos < 0 ? 0 : err->pos;
	if ((size_t)pos > len)
		pos = (int)len;
	if (pos)
		pos++;
	sd_seq_printf(s, "\n%*s", pos, "^");
	sd_seq_printf(s, "\nparse_error: %s\n\n", err->msg);
}
