// SPDX-License-Identifier: MIT
/*
 * printfmt.c - format files as data, and an interpreter for their print fmt
 * (what libtraceevent does for the kernel's events, for the subset of C
 * that TP_printk() arguments use; printfmt.h lists it).
 *
 * A print fmt is compiled once into segments (literal text, or one
 * conversion with the expression tree of its argument) and rendered per
 * record. Evaluation never reads outside the record: a field, an array
 * element or dynamic data that does not fit reads as a fault and prints as
 * "(fault)".
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trace/printfmt.h"

/* ---- C types and field declarations ----------------------------------------------------- */

static const struct {
	const char *name;
	unsigned int size;
} ctypes[] = {
    {"char", 1},
    {"signed char", 1},
    {"unsigned char", 1},
    {"_Bool", 1},
    {"bool", 1},
    {"u8", 1},
    {"s8", 1},
    {"__u8", 1},
    {"__s8", 1},
    {"uint8_t", 1},
    {"int8_t", 1},
    {"short", 2},
    {"short int", 2},
    {"signed short", 2},
    {"unsigned short", 2},
    {"unsigned short int", 2},
    {"u16", 2},
    {"s16", 2},
    {"__u16", 2},
    {"__s16", 2},
    {"uint16_t", 2},
    {"int16_t", 2},
    {"__le16", 2},
    {"__be16", 2},
    {"int", 4},
    {"signed", 4},
    {"signed int", 4},
    {"unsigned", 4},
    {"unsigned int", 4},
    {"u32", 4},
    {"s32", 4},
    {"__u32", 4},
    {"__s32", 4},
    {"uint32_t", 4},
    {"int32_t", 4},
    {"__le32", 4},
    {"__be32", 4},
    {"pid_t", 4},
    {"uid_t", 4},
    {"gid_t", 4},
    {"mode_t", 4},
    {"float", 4},
    {"long", 8},
    {"long int", 8},
    {"signed long", 8},
    {"unsigned long", 8},
    {"unsigned long int", 8},
    {"long long", 8},
    {"long long int", 8},
    {"unsigned long long", 8},
    {"signed long long", 8},
    {"u64", 8},
    {"s64", 8},
    {"__u64", 8},
    {"__s64", 8},
    {"uint64_t", 8},
    {"int64_t", 8},
    {"__le64", 8},
    {"__be64", 8},
    {"size_t", 8},
    {"ssize_t", 8},
    {"off_t", 8},
    {"loff_t", 8},
    {"ptrdiff_t", 8},
    {"intptr_t", 8},
    {"uintptr_t", 8},
    {"double", 8},
    {"time_t", 8},
    {"dev_t", 8},
    {"ino_t", 8},
    {"uintmax_t", 8},
    {"intmax_t", 8},
};

/* @type without const/volatile and with single spaces, into @buf */
static void norm_type(const char *type, char *buf, size_t len)
{
	size_t n = 0;

	while (*type && n + 1 < len) {
		while (isspace((unsigned char)*type))
			type++;
		if (!strncmp(type, "const", 5) && !isalnum((unsigned char)type[5]) &&
		    type[5] != '_') {
			type += 5;
			continue;
		}
		if (!strncmp(type, "volatile", 8) && !isalnum((unsigned char)type[8]) &&
		    type[8] != '_') {
			type += 8;
			continue;
		}
		if (!*type)
			break;
		if (n && n + 1 < len && buf[n - 1] != ' ' && buf[n - 1] != '*' && *type != '*')
			buf[n++] = ' ';
		while (*type && !isspace((unsigned char)*type) && n + 1 < len)
			buf[n++] = *type++;
	}
	while (n && buf[n - 1] == ' ')
		n--;
	buf[n] = '\0';
}

unsigned int sd_ctype_size(const char *type)
{
	char t[128];

	if (strchr(type, '*'))
		return sizeof(void *);
	norm_type(type, t, sizeof(t));
	for (size_t i = 0; i < sizeof(ctypes) / sizeof(ctypes[0]); i++)
		if (!strcmp(ctypes[i].name, t))
			return ctypes[i].size;
	return 0;
}

static bool type_unsigned(const char *type)
{
	char t[128];

	norm_type(type, t, sizeof(t));
	return strstr(t, "unsigned") || t[0] == 'u' || !strncmp(t, "__u", 3) ||
	       !strncmp(t, "__le", 4) || !strncmp(t, "__be", 4) || !strcmp(t, "size_t") ||
	       !strcmp(t, "bool") || !strcmp(t, "_Bool") || !strcmp(t, "dev_t") ||
	       !strcmp(t, "ino_t") || !strcmp(t, "mode_t") || !strcmp(t, "uid_t") ||
	       !strcmp(t, "gid_t");
}

static bool type_is_char(const char *type)
{
	char t[128];

	norm_type(type, t, sizeof(t));
	return !strcmp(t, "char");
}

static char *dup_n(const char *s, size_t n)
{
	char *d = malloc(n + 1);

	if (d) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

static const char *skip_ws(const char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	return s;
}

static size_t trim_len(const char *s, size_t n)
{
	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	return n;
}

/* the identifier ending at @end (exclusive) in @s: its start */
static const char *ident_start(const char *s, const char *end)
{
	const char *p = end;

	while (p > s && (isalnum((unsigned char)p[-1]) || p[-1] == '_'))
		p--;
	return p;
}

static uint8_t elem8(unsigned int v)
{
	return v > 255 ? 255 : (uint8_t)v;
}

int sd_field_parse_decl(struct sd_field *f, const char *decl, unsigned int offset,
			unsigned int size, bool is_signed)
{
	const char *d = skip_ws(decl), *end, *name, *br;
	size_t n = trim_len(d, strlen(d));
	char elem[128];

	memset(f, 0, sizeof(*f));
	f->offset = (uint16_t)offset;
	f->size = (uint16_t)size;
	f->is_signed = is_signed;
	end = d + n;
	if (n && end[-1] == ']') {
		br = memrchr(d, '[', n);
		if (!br)
			return -EINVAL;
		if (!strncmp(d, "__data_loc ", 11) || !strncmp(d, "__rel_loc ", 10)) {
			/* "__data_loc TYPE[] name" is the other way round */
			return -EINVAL;
		}
		name = ident_start(d, br);
		if (name == br || name == d)
			return -EINVAL;
		f->name = dup_n(name, br - name);
		f->c_type = dup_n(d, trim_len(d, name - d));
		if (!f->name || !f->c_type)
			goto nomem;
		if (br[1] == ']') {
			unsigned int es = sd_ctype_size(f->c_type);

			f->unsized = 1;
			f->elem_size = elem8(es ? es : 1);
			/* at least 1: what marks an array (it may be empty, size 0) */
			f->array_len = (uint16_t)(size / (es ? es : 1) ? size / (es ? es : 1) : 1);
		} else {
			unsigned long len = strtoul(br + 1, NULL, 0);

			if (!len)
				return -EINVAL;
			f->array_len = (uint16_t)len;
			f->elem_size = elem8(size / len ? size / len : 1);
		}
		f->ftype = type_is_char(f->c_type) ? SD_FT_CHARARRAY
			   : is_signed		   ? SD_FT_SIGNED
						   : SD_FT_UNSIGNED;
		return 0;
	}
	name = ident_start(d, end);
	if (name == end || name == d)
		return -EINVAL;
	f->name = dup_n(name, end - name);
	f->c_type = dup_n(d, trim_len(d, name - d));
	if (!f->name || !f->c_type)
		goto nomem;
	if (!strncmp(f->c_type, "__data_loc ", 11) || !strncmp(f->c_type, "__rel_loc ", 10)) {
		const char *t = f->c_type + (f->c_type[2] == 'd' ? 11 : 10);
		const char *b = strchr(t, '[');
		unsigned int es;

		snprintf(elem, sizeof(elem), "%.*s", (int)(b ? b - t : (long)strlen(t)), t);
		es = sd_ctype_size(elem);
		f->dynamic = 1;
		f->elem_size = elem8(es ? es : 1);
		f->ftype = type_is_char(elem) ? SD_FT_STRING
			   : is_signed	      ? SD_FT_SIGNED
					      : SD_FT_UNSIGNED;
		return 0;
	}
	f->elem_size = elem8(size);
	if (strchr(f->c_type, '*'))
		f->ftype = SD_FT_HEX;
	else
		f->ftype = is_signed ? SD_FT_SIGNED : SD_FT_UNSIGNED;
	return 0;
nomem:
	free(f->name);
	free(f->c_type);
	f->name = f->c_type = NULL;
	return -ENOMEM;
}

static void sd_fields_free_one(struct sd_field *f)
{
	free(f->name);
	free(f->c_type);
	f->name = f->c_type = NULL;
}

void sd_fields_free(struct sd_field *fields, unsigned int n)
{
	for (unsigned int i = 0; fields && i < n; i++) {
		free(fields[i].name);
		free(fields[i].c_type);
	}
	free(fields);
}

int sd_format_parse(const char *text, struct sd_field **fields, unsigned int *nfields,
		    char **print_fmt, uint32_t *fixed_size)
{
	const char *line = text;
	struct sd_field *v = NULL;
	unsigned int n = 0, cap = 0;
	uint32_t fixed = SD_ENTRY_COMMON_SIZE;
	char *pf = NULL;
	int err = 0;

	while (line && *line) {
		const char *eol = strchr(line, '\n');
		size_t len = eol ? (size_t)(eol - line) : strlen(line);
		const char *l = line + strspn(line, " \t");

		if (!strncmp(l, "field:", 6)) {
			const char *semi = memchr(l, ';', len - (l - line));
			unsigned int off, sz;
			int sg;
			char decl[256];

			if (!semi || semi - l - 6 >= (long)sizeof(decl) ||
			    sscanf(semi + 1, " offset:%u; size:%u; signed:%d;", &off, &sz, &sg) !=
				3) {
				err = -EINVAL;
				break;
			}
			memcpy(decl, l + 6, semi - l - 6);
			decl[semi - l - 6] = '\0';
			if (off + sz > fixed)
				fixed = off + sz;
			if (n == cap) {
				struct sd_field *bigger;

				cap = cap ? 2 * cap : 8;
				bigger = realloc(v, cap * sizeof(*v));
				if (!bigger) {
					err = -ENOMEM;
					break;
				}
				v = bigger;
			}
			err = sd_field_parse_decl(&v[n], decl, off, sz, sg != 0);
			if (err)
				break;
			if (!strncmp(v[n].name, "common_", 7)) /* the header every event has */
				sd_fields_free_one(&v[n]);
			else
				n++;
		} else if (!strncmp(line, "print fmt: ", 11)) {
			/* the rest: a format string may hold newlines (the kernel's do) */
			size_t rest = strlen(line + 11);

			if (rest && line[11 + rest - 1] == '\n')
				rest--;
			free(pf);
			pf = dup_n(line + 11, rest);
			if (!pf)
				err = -ENOMEM;
			break;
		}
		line = eol ? eol + 1 : NULL;
	}
	if (err) {
		sd_fields_free(v, n);
		free(pf);
		return err;
	}
	*fields = v;
	*nfields = n;
	*print_fmt = pf;
	if (fixed_size)
		*fixed_size = fixed;
	return 0;
}

/* ---- the interpreter: tokens ------------------------------------------------------------ */

enum tok_kind { T_END, T_NUM, T_STR, T_IDENT, T_PUNCT, T_BAD };

struct tok {
	int kind;
	const char *p; /* where it starts in the source */
	size_t len;
	uint64_t num;
	bool uns;
	char *str; /* T_STR: decoded (owned by the token) */
	size_t slen;
};

enum node_kind {
	NK_NUM,
	NK_STR,
	NK_FIELD,	/* REC->f */
	NK_INDEX,	/* a[b] */
	NK_UNARY,	/* op a */
	NK_BINARY,	/* a op b */
	NK_COND,	/* a ? b : c */
	NK_CAST,	/* (type) a */
	NK_GET_STR,	/* __get_str(f) */
	NK_GET_DYN,	/* __get_dynamic_array(f) */
	NK_GET_DYN_LEN, /* __get_dynamic_array_len(f) */
	NK_FLAGS,	/* __print_flags(a, str, tab) */
	NK_SYMBOLIC,	/* __print_symbolic(a, tab) */
	NK_ARRAY,	/* __print_array(a, b, c) */
	NK_HEX,		/* __print_hex(a, b) */
	NK_HEX_STR,	/* __print_hex_str(a, b) */
};

/* two-character operators, as single ints */
#define OP2(a, b) ((a) << 8 | (b))

struct sym_ent {
	uint64_t val;
	char *name;
};

struct node {
	int kind;
	int op;
	uint64_t num;
	bool uns;
	char *str;
	size_t slen;
	const struct sd_field *field;
	struct node *a, *b, *c;
	uint8_t cast_size; /* 0: no conversion */
	bool cast_signed;
	struct sym_ent *tab;
	int ntab;
	struct node *next_alloc;
};

enum seg_kind { SEG_LIT, SEG_CONV };

struct seg {
	int kind;
	char *lit;
	size_t litlen;
	char flags[8];
	int width, prec; /* -1 none, -2 from an argument */
	char len[3];	 /* "", "h", "hh", "l", "ll"… */
	char conv;
	char pext; /* %p extension letter, 0 none */
	struct node *warg, *parg, *arg;
};

struct sd_printfmt {
	struct seg *segs;
	int nsegs;
	struct node *nodes; /* every node, for freeing */
};

struct parser {
	const char *src, *p;
	struct tok t;
	const struct sd_event *ev;
	struct sd_printfmt *pf;
	char *why;
	size_t whylen;
	bool failed;
};

static void fail(struct parser *ps, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(struct parser *ps, const char *where, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (ps->failed)
		return;
	ps->failed = true;
	if (!ps->why || !ps->whylen)
		return;
	n = snprintf(ps->why, ps->whylen, "col %d: ", (int)(where - ps->src) + 1);
	if (n < 0 || (size_t)n >= ps->whylen)
		return;
	va_start(ap, fmt);
	vsnprintf(ps->why + n, ps->whylen - n, fmt, ap);
	va_end(ap);
}

static int hexval(int c)
{
	return isdigit(c) ? c - '0' : isxdigit(c) ? (tolower(c) - 'a' + 10) : -1;
}

/* one escape after a backslash at *pp; advances */
static int unescape(const char **pp)
{
	const char *p = *pp;
	int c = *p++, v;

	switch (c) {
	case 'n':
		c = '\n';
		break;
	case 't':
		c = '\t';
		break;
	case 'r':
		c = '\r';
		break;
	case 'a':
		c = '\a';
		break;
	case 'b':
		c = '\b';
		break;
	case 'f':
		c = '\f';
		break;
	case 'v':
		c = '\v';
		break;
	case 'e':
		c = 27;
		break;
	case 'x':
		v = 0;
		while (hexval((unsigned char)*p) >= 0)
			v = v * 16 + hexval((unsigned char)*p++);
		c = v & 0xff;
		break;
	default:
		if (c >= '0' && c <= '7') {
			v = c - '0';
			for (int i = 0; i < 2 && *p >= '0' && *p <= '7'; i++)
				v = v * 8 + (*p++ - '0');
			c = v & 0xff;
		}
		break;
	}
	*pp = p;
	return c;
}

static void next(struct parser *ps)
{
	const char *p = skip_ws(ps->p);
	struct tok *t = &ps->t;

	free(t->str);
	memset(t, 0, sizeof(*t));
	t->p = p;
	if (!*p) {
		t->kind = T_END;
	} else if (isdigit((unsigned char)*p)) {
		char *end;

		t->kind = T_NUM;
		t->num = strtoull(p, &end, 0);
		p = end;
		while (*p == 'u' || *p == 'U' || *p == 'l' || *p == 'L') {
			if (*p == 'u' || *p == 'U')
				t->uns = true;
			p++;
		}
		if (isalnum((unsigned char)*p) || *p == '.')
			t->kind = T_BAD;
	} else if (isalpha((unsigned char)*p) || *p == '_') {
		t->kind = T_IDENT;
		while (isalnum((unsigned char)*p) || *p == '_')
			p++;
	} else if (*p == '"') {
		size_t cap = 32;

		t->kind = T_STR;
		t->str = malloc(cap);
		p++;
		while (t->str && *p && *p != '"') {
			int c = *p == '\\' && p[1] ? (p++, unescape(&p)) : *p++;

			if (t->slen + 2 > cap) {
				char *bigger = realloc(t->str, cap *= 2);

				if (!bigger) {
					free(t->str);
					t->str = NULL;
					break;
				}
				t->str = bigger;
			}
			t->str[t->slen++] = (char)c;
		}
		if (!t->str || *p != '"') {
			t->kind = T_BAD;
		} else {
			t->str[t->slen] = '\0';
			p++;
		}
	} else if (*p == '\'') {
		p++;
		t->kind = T_NUM;
		t->num = *p == '\\' && p[1] ? (p++, (uint64_t)unescape(&p)) : (uint64_t)*p++;
		if (*p != '\'')
			t->kind = T_BAD;
		else
			p++;
	} else {
		static const char *const two[] = {
		    "->", "<<", ">>", "<=", ">=", "==", "!=", "&&", "||"};

		t->kind = T_PUNCT;
		t->num = (unsigned char)*p;
		for (size_t i = 0; i < sizeof(two) / sizeof(two[0]); i++)
			if (p[0] == two[i][0] && p[1] == two[i][1])
				t->num = OP2(p[0], p[1]);
		p += t->num > 0xff ? 2 : 1;
		if (!strchr("+-*/%<>&|^!~?:()[]{},.", (int)(t->num > 0xff ? '+' : t->num)))
			t->kind = T_BAD;
	}
	t->len = p - t->p;
	ps->p = p;
}

static bool is_punct(const struct parser *ps, int op)
{
	return ps->t.kind == T_PUNCT && ps->t.num == (uint64_t)op;
}

static bool is_ident(const struct parser *ps, const char *name)
{
	return ps->t.kind == T_IDENT && ps->t.len == strlen(name) &&
	       !memcmp(ps->t.p, name, ps->t.len);
}

static void expect(struct parser *ps, int op)
{
	if (!is_punct(ps, op)) {
		if (op > 0xff)
			fail(ps, ps->t.p, "expected '%c%c'", op >> 8, op & 0xff);
		else
			fail(ps, ps->t.p, "expected '%c'", op);
		return;
	}
	next(ps);
}

/* a string constant, adjacent literals joined ("a" "b"): the text is the caller's */
static char *take_string(struct parser *ps, size_t *len)
{
	char *str;

	if (ps->t.kind != T_STR) {
		fail(ps, ps->t.p, "expected a string");
		return NULL;
	}
	str = ps->t.str;
	*len = ps->t.slen;
	ps->t.str = NULL;
	next(ps);
	while (ps->t.kind == T_STR) {
		char *joined = realloc(str, *len + ps->t.slen + 1);

		if (!joined) {
			free(str);
			fail(ps, ps->t.p, "out of memory");
			return NULL;
		}
		memcpy(joined + *len, ps->t.str, ps->t.slen + 1);
		str = joined;
		*len += ps->t.slen;
		next(ps);
	}
	return str;
}

static struct node *new_node(struct parser *ps, int kind)
{
	struct node *n = calloc(1, sizeof(*n));

	if (!n) {
		fail(ps, ps->t.p, "out of memory");
		return NULL;
	}
	n->kind = kind;
	n->next_alloc = ps->pf->nodes;
	ps->pf->nodes = n;
	return n;
}

/* ---- the interpreter: parsing ------------------------------------------------------------- */

static struct node *parse_expr(struct parser *ps);
static struct node *parse_unary(struct parser *ps);

static const char *const type_words[] = {
    "unsigned", "signed", "char",     "short",	"int",	"long",	 "_Bool",  "bool",
    "void",	"const",  "volatile", "struct", "enum", "float", "double",
};

static bool is_type_word(const char *s, size_t n)
{
	for (size_t i = 0; i < sizeof(type_words) / sizeof(type_words[0]); i++)
		if (strlen(type_words[i]) == n && !memcmp(type_words[i], s, n))
			return true;
	return false;
}

static bool is_known_function(const char *s, size_t n)
{
	static const char *const fns[] = {
	    "__get_str",
	    "__get_dynamic_array",
	    "__get_dynamic_array_len",
	    "__print_flags",
	    "__print_flags_u64",
	    "__print_symbolic",
	    "__print_symbolic_u64",
	    "__print_array",
	    "__print_hex",
	    "__print_hex_str",
	    "sizeof",
	    "REC",
	};

	for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++)
		if (strlen(fns[i]) == n && !memcmp(fns[i], s, n))
			return true;
	return false;
}

/*
 * At '(' (ps->p just past it): is this a cast "(type name [*...])"? Returns
 * the length of the type text, 0 if not a cast.
 */
static size_t cast_type_len(const char *p)
{
	const char *s = skip_ws(p), *q = s;
	size_t words = 0, keywords = 0;

	/*
	 * Words and stars only: C type keywords, or a typedef name this
	 * interpreter may not know (gfp_t): both cast (the latter to nothing).
	 */
	while (*q && *q != ')') {
		if (isalpha((unsigned char)*q) || *q == '_') {
			const char *w = q;

			while (isalnum((unsigned char)*q) || *q == '_')
				q++;
			if (is_known_function(w, q - w))
				return 0;
			keywords += is_type_word(w, q - w);
			words++;
		} else if (*q == '*' || isspace((unsigned char)*q)) {
			q++;
		} else {
			return 0;
		}
	}
	if (*q != ')' || !words || (words > 1 && !keywords && !strchr(s, '*')))
		return 0;
	return q - s;
}

static void type_of_cast(const char *s, size_t n, struct node *c)
{
	char t[128];
	unsigned int size;

	snprintf(t, sizeof(t), "%.*s", (int)n, s);
	if (strchr(t, '*')) {
		c->cast_size = 0; /* a pointer: the value as it is */
		return;
	}
	size = sd_ctype_size(t);
	c->cast_size = (uint8_t)(size <= 8 ? size : 0);
	c->cast_signed = !type_unsigned(t);
	if (strstr(t, "float") || strstr(t, "double"))
		c->cast_size = 0;
}

/* REC->name: the field */
static struct node *parse_rec(struct parser *ps)
{
	const struct sd_field *f;
	struct node *n;
	char name[SD_EVENT_NAME_MAX];

	next(ps); /* REC */
	expect(ps, OP2('-', '>'));
	if (ps->failed)
		return NULL;
	if (ps->t.kind != T_IDENT || ps->t.len >= sizeof(name)) {
		fail(ps, ps->t.p, "expected a field name after REC->");
		return NULL;
	}
	memcpy(name, ps->t.p, ps->t.len);
	name[ps->t.len] = '\0';
	f = sd_event_field(ps->ev, name);
	if (!f) {
		fail(ps, ps->t.p, "no field '%s'", name);
		return NULL;
	}
	n = new_node(ps, NK_FIELD);
	if (n)
		n->field = f;
	next(ps);
	return n;
}

/* a bare field name, as __get_str() takes */
static const struct sd_field *field_arg(struct parser *ps)
{
	const struct sd_field *f;
	char name[SD_EVENT_NAME_MAX];

	if (ps->t.kind != T_IDENT || ps->t.len >= sizeof(name)) {
		fail(ps, ps->t.p, "expected a field name");
		return NULL;
	}
	memcpy(name, ps->t.p, ps->t.len);
	name[ps->t.len] = '\0';
	f = sd_event_field(ps->ev, name);
	if (!f)
		fail(ps, ps->t.p, "no field '%s'", name);
	else if (!f->dynamic)
		fail(ps, ps->t.p, "field '%s' is not dynamic (__data_loc)", name);
	next(ps);
	return f;
}

struct val;
static int eval_const(struct node *n, uint64_t *v);

/* {value, "name"}, {…} up to ')' */
static void parse_table(struct parser *ps, struct node *n)
{
	bool ended = false;

	while (!ps->failed && is_punct(ps, ',')) {
		struct node *v;
		struct sym_ent *bigger;
		size_t len;

		next(ps);
		expect(ps, '{');
		v = parse_expr(ps);
		expect(ps, ',');
		if (ps->failed)
			return;
		bigger = realloc(n->tab, (n->ntab + 1) * sizeof(*bigger));
		if (!bigger) {
			fail(ps, ps->t.p, "out of memory");
			return;
		}
		n->tab = bigger;
		if (eval_const(v, &n->tab[n->ntab].val)) {
			fail(ps, ps->t.p, "the table's values must be constants");
			return;
		}
		if (ps->t.kind != T_STR) {
			/* { 0, NULL } ends the kernel's tables: nothing after it counts */
			uint64_t null;

			if (eval_const(parse_expr(ps), &null) || null) {
				fail(ps, ps->t.p, "expected a string");
				return;
			}
			ended = true;
			expect(ps, '}');
			continue;
		}
		n->tab[n->ntab].name = take_string(ps, &len);
		if (!n->tab[n->ntab].name)
			return;
		if (ended)
			free(n->tab[n->ntab].name);
		else
			n->ntab++;
		expect(ps, '}');
	}
}

static struct node *parse_call(struct parser *ps)
{
	const char *name = ps->t.p, *at = ps->t.p;
	size_t len = ps->t.len;
	struct node *n = NULL;

#define IS(s) (len == strlen(s) && !memcmp(name, s, len))
	next(ps);
	expect(ps, '(');
	if (ps->failed)
		return NULL;
	if (IS("__get_str") || IS("__get_dynamic_array") || IS("__get_dynamic_array_len")) {
		n = new_node(ps, IS("__get_str")	     ? NK_GET_STR
				 : IS("__get_dynamic_array") ? NK_GET_DYN
							     : NK_GET_DYN_LEN);
		if (n)
			n->field = field_arg(ps);
	} else if (IS("__print_flags") || IS("__print_flags_u64")) {
		n = new_node(ps, NK_FLAGS);
		if (n) {
			n->a = parse_expr(ps);
			expect(ps, ',');
			if (!ps->failed)
				n->str = take_string(ps, &n->slen);
			if (!ps->failed)
				parse_table(ps, n);
		}
	} else if (IS("__print_symbolic") || IS("__print_symbolic_u64")) {
		n = new_node(ps, NK_SYMBOLIC);
		if (n) {
			n->a = parse_expr(ps);
			parse_table(ps, n);
		}
	} else if (IS("__print_array")) {
		n = new_node(ps, NK_ARRAY);
		if (n) {
			n->a = parse_expr(ps);
			expect(ps, ',');
			n->b = parse_expr(ps);
			expect(ps, ',');
			n->c = parse_expr(ps);
		}
	} else if (IS("__print_hex") || IS("__print_hex_str")) {
		n = new_node(ps, IS("__print_hex") ? NK_HEX : NK_HEX_STR);
		if (n) {
			n->a = parse_expr(ps);
			expect(ps, ',');
			n->b = parse_expr(ps);
		}
	} else {
		fail(ps, at, "'%.*s' cannot be evaluated outside the traced program", (int)len,
		     name);
		return NULL;
	}
#undef IS
	expect(ps, ')');
	return ps->failed ? NULL : n;
}

static struct node *parse_sizeof(struct parser *ps)
{
	struct node *n;
	size_t tl;

	next(ps);
	if (!is_punct(ps, '(')) {
		fail(ps, ps->t.p, "expected '(' after sizeof");
		return NULL;
	}
	tl = cast_type_len(ps->p);
	n = new_node(ps, NK_NUM);
	if (!n)
		return NULL;
	if (tl) {
		const char *s = skip_ws(ps->p);
		char t[128];

		snprintf(t, sizeof(t), "%.*s", (int)tl, s);
		n->num = sd_ctype_size(t);
		if (!n->num) {
			fail(ps, s, "unknown type '%s'", t);
			return NULL;
		}
		ps->p = s + tl;
		next(ps); /* ')' */
		expect(ps, ')');
		return n;
	}
	next(ps);
	if (!is_ident(ps, "REC")) {
		fail(ps, ps->t.p, "sizeof takes a type or REC->field");
		return NULL;
	}
	{
		struct node *f = parse_rec(ps);

		if (!f)
			return NULL;
		n->num = f->field->size;
	}
	expect(ps, ')');
	return n;
}

static struct node *parse_primary(struct parser *ps)
{
	struct node *n;

	switch (ps->t.kind) {
	case T_NUM:
		n = new_node(ps, NK_NUM);
		if (n) {
			n->num = ps->t.num;
			n->uns = ps->t.uns;
		}
		next(ps);
		return n;
	case T_STR:
		n = new_node(ps, NK_STR);
		if (!n)
			return NULL;
		n->str = take_string(ps, &n->slen); /* "a" "b" joined */
		return n->str ? n : NULL;
	case T_IDENT:
		if (is_ident(ps, "REC"))
			return parse_rec(ps);
		if (is_ident(ps, "sizeof"))
			return parse_sizeof(ps);
		if (skip_ws(ps->p)[0] == '(')
			return parse_call(ps);
		fail(ps, ps->t.p, "unknown name '%.*s'", (int)ps->t.len, ps->t.p);
		return NULL;
	case T_PUNCT:
		if (is_punct(ps, '(')) {
			next(ps);
			n = parse_expr(ps);
			expect(ps, ')');
			return ps->failed ? NULL : n;
		}
		break;
	default:
		break;
	}
	fail(ps, ps->t.p, ps->t.kind == T_END ? "unexpected end" : "unexpected '%.*s'",
	     (int)ps->t.len, ps->t.p);
	return NULL;
}

static struct node *parse_postfix(struct parser *ps)
{
	struct node *n = parse_primary(ps);

	while (n && !ps->failed && is_punct(ps, '[')) {
		struct node *ix = new_node(ps, NK_INDEX);

		next(ps);
		if (!ix)
			return NULL;
		ix->a = n;
		ix->b = parse_expr(ps);
		expect(ps, ']');
		n = ix;
	}
	return ps->failed ? NULL : n;
}

static struct node *parse_unary(struct parser *ps)
{
	struct node *n;

	if (ps->t.kind == T_PUNCT && ps->t.num < 0x100 && strchr("-+!~", (int)ps->t.num)) {
		int op = (int)ps->t.num;

		next(ps);
		n = new_node(ps, NK_UNARY);
		if (!n)
			return NULL;
		n->op = op;
		n->a = parse_unary(ps);
		return ps->failed ? NULL : n;
	}
	if (is_punct(ps, '(')) {
		size_t tl = cast_type_len(ps->p);

		if (tl) {
			const char *s = skip_ws(ps->p);

			n = new_node(ps, NK_CAST);
			if (!n)
				return NULL;
			type_of_cast(s, tl, n);
			ps->p = s + tl;
			next(ps);
			expect(ps, ')');
			n->a = parse_unary(ps);
			return ps->failed ? NULL : n;
		}
	}
	return parse_postfix(ps);
}

static int binop_prec(const struct parser *ps)
{
	if (ps->t.kind != T_PUNCT)
		return -1;
	switch (ps->t.num) {
	case '*':
	case '/':
	case '%':
		return 10;
	case '+':
	case '-':
		return 9;
	case OP2('<', '<'):
	case OP2('>', '>'):
		return 8;
	case '<':
	case '>':
	case OP2('<', '='):
	case OP2('>', '='):
		return 7;
	case OP2('=', '='):
	case OP2('!', '='):
		return 6;
	case '&':
		return 5;
	case '^':
		return 4;
	case '|':
		return 3;
	case OP2('&', '&'):
		return 2;
	case OP2('|', '|'):
		return 1;
	default:
		return -1;
	}
}

static struct node *parse_binary(struct parser *ps, int min_prec)
{
	struct node *lhs = parse_unary(ps);

	while (lhs && !ps->failed) {
		int prec = binop_prec(ps), op = (int)ps->t.num;
		struct node *n;

		if (prec < min_prec)
			break;
		next(ps);
		n = new_node(ps, NK_BINARY);
		if (!n)
			return NULL;
		n->op = op;
		n->a = lhs;
		n->b = parse_binary(ps, prec + 1);
		lhs = n;
	}
	return ps->failed ? NULL : lhs;
}

static struct node *parse_expr(struct parser *ps)
{
	struct node *c = parse_binary(ps, 1), *n;

	if (!c || ps->failed || !is_punct(ps, '?'))
		return ps->failed ? NULL : c;
	next(ps);
	n = new_node(ps, NK_COND);
	if (!n)
		return NULL;
	n->a = c;
	n->b = parse_expr(ps);
	expect(ps, ':');
	n->c = parse_expr(ps);
	return ps->failed ? NULL : n;
}

/* ---- the interpreter: evaluation ---------------------------------------------------------- */

enum val_type { V_INT, V_STR, V_BUF, V_FAULT };

struct val {
	int t;
	bool uns;
	uint64_t i;
	const char *s; /* V_STR, V_BUF: bytes (not terminated) */
	size_t n;
	uint8_t esz; /* V_BUF: element size */
	bool esigned;
};

struct eval {
	const unsigned char *entry; /* NULL: constants only */
	uint32_t len;
	char *scratch; /* helper output */
	size_t used, cap;
};

static struct val v_int(uint64_t i, bool uns)
{
	return (struct val){.t = V_INT, .i = i, .uns = uns};
}

static struct val v_fault(void)
{
	return (struct val){.t = V_FAULT};
}

/* room for @n bytes of helper output; NULL when the scratch is full */
static char *scratch(struct eval *e, size_t n)
{
	char *p;

	if (e->used + n > e->cap)
		return NULL;
	p = e->scratch + e->used;
	e->used += n;
	return p;
}

static uint64_t read_elem(const unsigned char *p, unsigned int size, bool is_signed)
{
	switch (size) {
	case 1:
		return is_signed ? (uint64_t)(int64_t)(int8_t)p[0] : p[0];
	case 2: {
		uint16_t v;

		memcpy(&v, p, 2);
		return is_signed ? (uint64_t)(int64_t)(int16_t)v : v;
	}
	case 4: {
		uint32_t v;

		memcpy(&v, p, 4);
		return is_signed ? (uint64_t)(int64_t)(int32_t)v : v;
	}
	default: {
		uint64_t v;

		memcpy(&v, p, 8);
		return v;
	}
	}
}

static struct val eval(struct eval *e, const struct node *n);

static struct val field_val(struct eval *e, const struct sd_field *f)
{
	const unsigned char *p;

	if (!e->entry || (uint32_t)f->offset + f->size > e->len)
		return v_fault();
	p = e->entry + f->offset;
	if (f->array_len && !f->dynamic) {
		if (f->ftype == SD_FT_CHARARRAY)
			return (struct val){.t = V_STR,
					    .s = (const char *)p,
					    .n = strnlen((const char *)p, f->size)};
		return (struct val){.t = V_BUF,
				    .s = (const char *)p,
				    .n = f->size,
				    .esz = f->elem_size ? f->elem_size : 1,
				    .esigned = f->is_signed};
	}
	if (f->size != 1 && f->size != 2 && f->size != 4 && f->size != 8)
		return v_fault();
	return v_int(read_elem(p, f->size, f->is_signed), !f->is_signed);
}

static struct val dyn_val(struct eval *e, const struct sd_field *f, int kind)
{
	uint32_t len;
	const char *p;

	if (!e->entry || !f || (uint32_t)f->offset + 4 > e->len)
		return v_fault();
	p = sd_field_dynamic(f, e->entry, e->len, &len);
	if (kind == NK_GET_DYN_LEN)
		return v_int(len, true);
	if (!p)
		return v_fault();
	if (kind == NK_GET_STR)
		return (struct val){.t = V_STR, .s = p, .n = strnlen(p, len)};
	return (struct val){.t = V_BUF,
			    .s = p,
			    .n = len,
			    .esz = f->elem_size ? f->elem_size : 1,
			    .esigned = f->is_signed};
}

static uint64_t truncate_to(uint64_t v, unsigned int size, bool is_signed)
{
	switch (size) {
	case 1:
		return is_signed ? (uint64_t)(int64_t)(int8_t)v : (uint8_t)v;
	case 2:
		return is_signed ? (uint64_t)(int64_t)(int16_t)v : (uint16_t)v;
	case 4:
		return is_signed ? (uint64_t)(int64_t)(int32_t)v : (uint32_t)v;
	default:
		return v;
	}
}

static struct val binary(int op, struct val a, struct val b)
{
	bool uns = a.uns || b.uns;
	uint64_t x = a.i, y = b.i;

	switch (op) {
	case '+':
		return v_int(x + y, uns);
	case '-':
		return v_int(x - y, uns);
	case '*':
		return v_int(x * y, uns);
	case '/':
		if (!y)
			return v_fault();
		return v_int(uns ? x / y : (uint64_t)((int64_t)x / (int64_t)y), uns);
	case '%':
		if (!y)
			return v_fault();
		return v_int(uns ? x % y : (uint64_t)((int64_t)x % (int64_t)y), uns);
	case OP2('<', '<'):
		return v_int(y >= 64 ? 0 : x << y, a.uns);
	case OP2('>', '>'):
		if (y >= 64)
			return v_int(a.uns || (int64_t)x >= 0 ? 0 : (uint64_t)-1, a.uns);
		return v_int(a.uns ? x >> y : (uint64_t)((int64_t)x >> y), a.uns);
	case '<':
		return v_int(uns ? x < y : (int64_t)x < (int64_t)y, false);
	case '>':
		return v_int(uns ? x > y : (int64_t)x > (int64_t)y, false);
	case OP2('<', '='):
		return v_int(uns ? x <= y : (int64_t)x <= (int64_t)y, false);
	case OP2('>', '='):
		return v_int(uns ? x >= y : (int64_t)x >= (int64_t)y, false);
	case OP2('=', '='):
		return v_int(x == y, false);
	case OP2('!', '='):
		return v_int(x != y, false);
	case '&':
		return v_int(x & y, uns);
	case '^':
		return v_int(x ^ y, uns);
	case '|':
		return v_int(x | y, uns);
	default:
		return v_fault();
	}
}

/* the kernel's trace_print_flags_seq */
static struct val print_flags(struct eval *e, const struct node *n, uint64_t flags)
{
	char buf[1024];
	struct sd_seq s;
	bool first = true;
	char *out;

	sd_seq_init(&s, buf, sizeof(buf));
	for (int i = 0; i < n->ntab && flags; i++) {
		uint64_t mask = n->tab[i].val;

		if ((flags & mask) != mask)
			continue;
		flags &= ~mask;
		if (!first && n->slen)
			sd_seq_putmem(&s, n->str, n->slen);
		first = false;
		sd_seq_puts(&s, n->tab[i].name);
	}
	if (flags) {
		if (!first && n->slen)
			sd_seq_putmem(&s, n->str, n->slen);
		sd_seq_printf(&s, "0x%" PRIx64, flags);
	}
	out = scratch(e, s.len);
	if (!out)
		return v_fault();
	memcpy(out, buf, s.len);
	return (struct val){.t = V_STR, .s = out, .n = s.len};
}

/* the kernel's trace_print_symbols_seq */
static struct val print_symbolic(struct eval *e, const struct node *n, uint64_t v)
{
	char buf[32], *out;
	int len;

	for (int i = 0; i < n->ntab; i++)
		if (n->tab[i].val == v)
			return (struct val){
			    .t = V_STR, .s = n->tab[i].name, .n = strlen(n->tab[i].name)};
	len = snprintf(buf, sizeof(buf), "0x%" PRIx64, v);
	out = scratch(e, len);
	if (!out)
		return v_fault();
	memcpy(out, buf, len);
	return (struct val){.t = V_STR, .s = out, .n = len};
}

/* __print_array: "{0x1,0x2}" (trace_print_array_seq) */
static struct val print_array(struct eval *e, struct val buf, uint64_t count, uint64_t esz)
{
	char *start = e->scratch + e->used, tmp[24];

	if ((buf.t != V_BUF && buf.t != V_STR) || (esz != 1 && esz != 2 && esz != 4 && esz != 8))
		return v_fault();
	if (count > buf.n / esz)
		count = buf.n / esz;
	if (!scratch(e, 1))
		return v_fault();
	start[0] = '{';
	for (uint64_t i = 0; i < count; i++) {
		uint64_t v =
		    read_elem((const unsigned char *)buf.s + i * esz, (unsigned int)esz, false);
		int len = snprintf(tmp, sizeof(tmp), "%s0x%" PRIx64, i ? "," : "", v);
		char *o = scratch(e, len);

		if (!o)
			return v_fault();
		memcpy(o, tmp, len);
	}
	if (!scratch(e, 1))
		return v_fault();
	e->scratch[e->used - 1] = '}';
	return (struct val){.t = V_STR, .s = start, .n = e->scratch + e->used - start};
}

/* __print_hex ("01 02 0a", %*ph) and __print_hex_str ("01020a", %*phN) */
static struct val print_hex(struct eval *e, struct val buf, uint64_t len, bool concat)
{
	char *start = e->scratch + e->used;

	if (buf.t != V_BUF && buf.t != V_STR)
		return v_fault();
	if (len > buf.n)
		len = buf.n;
	for (uint64_t i = 0; i < len; i++) {
		static const char digits[] = "0123456789abcdef";
		unsigned char c = (unsigned char)buf.s[i];
		char *o = scratch(e, concat || !i ? 2 : 3);

		if (!o)
			return v_fault();
		if (!concat && i)
			*o++ = ' ';
		o[0] = digits[c >> 4];
		o[1] = digits[c & 15];
	}
	return (struct val){.t = V_STR, .s = start, .n = e->scratch + e->used - start};
}

static struct val eval(struct eval *e, const struct node *n)
{
	struct val a, b;

	switch (n->kind) {
	case NK_NUM:
		return v_int(n->num, n->uns);
	case NK_STR:
		return (struct val){.t = V_STR, .s = n->str, .n = n->slen};
	case NK_FIELD:
		return field_val(e, n->field);
	case NK_INDEX:
		a = eval(e, n->a);
		b = eval(e, n->b);
		if (b.t != V_INT)
			return v_fault();
		if (a.t == V_STR)
			return b.i < a.n ? v_int((uint64_t)(int64_t)(char)a.s[b.i], false)
					 : v_int(0, false);
		if (a.t != V_BUF || b.i >= a.n / a.esz)
			return v_fault();
		return v_int(read_elem((const unsigned char *)a.s + b.i * a.esz, a.esz, a.esigned),
			     !a.esigned);
	case NK_UNARY:
		a = eval(e, n->a);
		if (a.t != V_INT)
			return n->op == '!' && a.t != V_FAULT ? v_int(0, false) : v_fault();
		switch (n->op) {
		case '-':
			return v_int(-a.i, a.uns);
		case '~':
			return v_int(~a.i, a.uns);
		case '!':
			return v_int(!a.i, false);
		default:
			return a;
		}
	case NK_BINARY:
		a = eval(e, n->a);
		if (a.t == V_FAULT)
			return a;
		if (n->op == OP2('&', '&') || n->op == OP2('|', '|')) {
			bool x = a.t != V_INT || a.i;

			if (n->op == OP2('&', '&') ? !x : x)
				return v_int(x, false);
			b = eval(e, n->b);
			if (b.t == V_FAULT)
				return b;
			return v_int(b.t != V_INT || b.i, false);
		}
		b = eval(e, n->b);
		if (a.t != V_INT || b.t != V_INT)
			return v_fault();
		return binary(n->op, a, b);
	case NK_COND:
		a = eval(e, n->a);
		if (a.t == V_FAULT)
			return a;
		return eval(e, (a.t != V_INT || a.i) ? n->b : n->c);
	case NK_CAST:
		a = eval(e, n->a);
		if (a.t != V_INT || !n->cast_size)
			return a;
		return v_int(truncate_to(a.i, n->cast_size, n->cast_signed), !n->cast_signed);
	case NK_GET_STR:
	case NK_GET_DYN:
	case NK_GET_DYN_LEN:
		return dyn_val(e, n->field, n->kind);
	case NK_FLAGS:
		a = eval(e, n->a);
		return a.t == V_INT ? print_flags(e, n, a.i) : v_fault();
	case NK_SYMBOLIC:
		a = eval(e, n->a);
		return a.t == V_INT ? print_symbolic(e, n, a.i) : v_fault();
	case NK_ARRAY: {
		struct val c = eval(e, n->c);

		a = eval(e, n->a);
		b = eval(e, n->b);
		if (b.t != V_INT || c.t != V_INT)
			return v_fault();
		return print_array(e, a, b.i, c.i);
	}
	case NK_HEX:
	case NK_HEX_STR:
		a = eval(e, n->a);
		b = eval(e, n->b);
		if (b.t != V_INT)
			return v_fault();
		return print_hex(e, a, b.i, n->kind == NK_HEX_STR);
	default:
		return v_fault();
	}
}

static int eval_const(struct node *n, uint64_t *v)
{
	struct eval e = {0};
	struct val r;

	if (!n)
		return -EINVAL;
	r = eval(&e, n);
	if (r.t != V_INT)
		return -EINVAL;
	*v = r.i;
	return 0;
}

/* ---- the format string --------------------------------------------------------------- */

static struct seg *add_seg(struct parser *ps, int kind)
{
	struct seg *bigger = realloc(ps->pf->segs, (ps->pf->nsegs + 1) * sizeof(*bigger));

	if (!bigger) {
		fail(ps, ps->p, "out of memory");
		return NULL;
	}
	ps->pf->segs = bigger;
	memset(&bigger[ps->pf->nsegs], 0, sizeof(*bigger));
	bigger[ps->pf->nsegs].kind = kind;
	bigger[ps->pf->nsegs].width = bigger[ps->pf->nsegs].prec = -1;
	return &bigger[ps->pf->nsegs++];
}

static void add_lit(struct parser *ps, const char *s, size_t n)
{
	struct seg *sg;

	if (!n)
		return;
	sg = add_seg(ps, SEG_LIT);
	if (sg) {
		sg->lit = dup_n(s, n);
		sg->litlen = n;
		if (!sg->lit)
			fail(ps, ps->p, "out of memory");
	}
}

/* split the decoded format @f into literal and conversion segments */
static void split_format(struct parser *ps, const char *f, size_t n, const char *where)
{
	const char *p = f, *end = f + n, *lit = f;

	while (p < end && !ps->failed) {
		struct seg *sg;
		size_t k = 0;

		if (*p != '%') {
			p++;
			continue;
		}
		if (p + 1 < end && p[1] == '%') {
			add_lit(ps, lit, p + 1 - lit);
			p += 2;
			lit = p;
			continue;
		}
		add_lit(ps, lit, p - lit);
		sg = add_seg(ps, SEG_CONV);
		if (!sg)
			return;
		p++;
		while (p < end && strchr("-+ #0", *p) && k + 1 < sizeof(sg->flags))
			sg->flags[k++] = *p++;
		if (p < end && *p == '*') {
			sg->width = -2;
			p++;
		} else if (p < end && isdigit((unsigned char)*p)) {
			sg->width = (int)strtol(p, (char **)&p, 10);
		}
		if (p < end && *p == '.') {
			p++;
			if (p < end && *p == '*') {
				sg->prec = -2;
				p++;
			} else {
				sg->prec = (int)strtol(p, (char **)&p, 10);
			}
		}
		k = 0;
		while (p < end && strchr("hlLqjzt", *p) && k < 2)
			sg->len[k++] = *p++;
		if (p >= end) {
			fail(ps, where, "the format ends inside a conversion");
			return;
		}
		sg->conv = *p++;
		if (!strchr("diuxXocsp", sg->conv)) {
			fail(ps, where, "conversion '%%%c' is not supported", sg->conv);
			return;
		}
		if (sg->conv == 'p' && p < end && strchr("SsFfBKx", *p))
			sg->pext = *p++;
		lit = p;
	}
	add_lit(ps, lit, p - lit);
}

int sd_printfmt_compile(const char *print_fmt, const struct sd_event *ev, struct sd_printfmt **out,
			char *why, size_t whylen)
{
	struct parser ps = {
	    .src = print_fmt, .p = print_fmt, .ev = ev, .why = why, .whylen = whylen};
	struct node *fmt;

	*out = NULL;
	if (why && whylen)
		why[0] = '\0';
	ps.pf = calloc(1, sizeof(*ps.pf));
	if (!ps.pf)
		return -ENOMEM;
	next(&ps);
	if (ps.t.kind != T_STR) {
		fail(&ps, ps.t.p, "expected the format string");
		goto out;
	}
	fmt = parse_primary(&ps); /* with adjacent literals joined */
	if (!fmt)
		goto out;
	split_format(&ps, fmt->str, fmt->slen, print_fmt);
	for (int i = 0; i < ps.pf->nsegs && !ps.failed; i++) {
		struct seg *sg = &ps.pf->segs[i];
		struct node **slots[3] = {&sg->warg, &sg->parg, &sg->arg};

		if (sg->kind != SEG_CONV)
			continue;
		for (int k = 0; k < 3 && !ps.failed; k++) {
			if ((k == 0 && sg->width != -2) || (k == 1 && sg->prec != -2))
				continue;
			if (!is_punct(&ps, ',')) {
				fail(&ps, ps.t.p, "fewer arguments than conversions");
				break;
			}
			next(&ps);
			*slots[k] = parse_expr(&ps);
		}
	}
	if (!ps.failed && ps.t.kind != T_END)
		fail(&ps, ps.t.p,
		     is_punct(&ps, ',') ? "more arguments than conversions" : "unexpected '%.*s'",
		     (int)ps.t.len, ps.t.p);
out:
	free(ps.t.str);
	if (ps.failed) {
		sd_printfmt_free(ps.pf);
		return -EINVAL;
	}
	*out = ps.pf;
	return 0;
}

void sd_printfmt_free(struct sd_printfmt *pf)
{
	if (!pf)
		return;
	for (int i = 0; i < pf->nsegs; i++)
		free(pf->segs[i].lit);
	free(pf->segs);
	while (pf->nodes) {
		struct node *n = pf->nodes;

		pf->nodes = n->next_alloc;
		free(n->str);
		for (int i = 0; i < n->ntab; i++)
			free(n->tab[i].name);
		free(n->tab);
		free(n);
	}
	free(pf);
}

/* ---- rendering ---------------------------------------------------------------------------- */

static void put_spec(char *spec, size_t len, const struct seg *sg, int width, const char *tail)
{
	if (width >= 0)
		snprintf(spec, len, "%%%s%d%s", sg->flags, width, tail);
	else
		snprintf(spec, len, "%%%s%s", sg->flags, tail);
}

static void render_conv(struct sd_seq *s, const struct seg *sg, struct eval *e,
			const struct sd_print_ctx *ctx)
{
	int width = sg->width, prec = sg->prec;
	char spec[48], tail[24], out[512];
	struct val v;

	if (width == -2) {
		v = eval(e, sg->warg);
		width = v.t == V_INT ? (int)(int32_t)v.i : -1;
		if (width < 0) /* a negative width is the '-' flag (ignored here) and its value */
			width = width == -1 ? -1 : -width;
	}
	if (prec == -2) {
		v = eval(e, sg->parg);
		prec = v.t == V_INT && (int32_t)v.i >= 0 ? (int)(int32_t)v.i : -1;
	}
	v = eval(e, sg->arg);
	if (v.t == V_FAULT) {
		sd_seq_puts(s, "(fault)");
		return;
	}
	switch (sg->conv) {
	case 's': {
		size_t n;
		const char *str;

		if (v.t == V_INT) {
			str = v.i ? "(bad string)" : "(null)";
			n = strlen(str);
		} else {
			str = v.s;
			n = strnlen(v.s, v.n);
		}
		if (prec >= 0 && (size_t)prec < n)
			n = prec;
		put_spec(spec, sizeof(spec), sg, width, ".*s");
		sd_seq_printf(s, spec, (int)n, str);
		return;
	}
	case 'p':
		if (v.t != V_INT)
			v.i = (uint64_t)(uintptr_t)v.s;
		if (sg->pext && strchr("SsFfB", sg->pext) && ctx && ctx->sym &&
		    ctx->sym(ctx->sym_arg, v.i, out, sizeof(out)) > 0) {
			if (sg->pext == 's' || sg->pext == 'f')
				out[strcspn(out, "+")] = '\0';
			put_spec(spec, sizeof(spec), sg, width, "s");
			sd_seq_printf(s, spec, out);
			return;
		}
		snprintf(tail, sizeof(tail), "0x%" PRIx64, v.i);
		put_spec(spec, sizeof(spec), sg, width, "s");
		sd_seq_printf(s, spec, tail);
		return;
	default:
		break;
	}
	if (v.t != V_INT) {
		sd_seq_puts(s, "(fault)");
		return;
	}
	if (prec >= 0)
		snprintf(tail, sizeof(tail), ".%d", prec);
	else
		tail[0] = '\0';
	if (sg->conv == 'c') {
		strcat(tail, "c");
		put_spec(spec, sizeof(spec), sg, width, tail);
		sd_seq_printf(s, spec, (unsigned char)v.i);
		return;
	}
	{
		bool sgn = sg->conv == 'd' || sg->conv == 'i';
		bool wide = sg->len[0] == 'l' || sg->len[0] == 'L' || sg->len[0] == 'q' ||
			    sg->len[0] == 'j' || sg->len[0] == 'z' || sg->len[0] == 't';
		unsigned int size = wide ? 8 : sg->len[0] != 'h' ? 4 : sg->len[1] == 'h' ? 1 : 2;
		uint64_t x = truncate_to(v.i, size, sgn);
		size_t tl = strlen(tail);

		snprintf(tail + tl, sizeof(tail) - tl, "ll%c", sg->conv);
		put_spec(spec, sizeof(spec), sg, width, tail);
		if (sgn)
			sd_seq_printf(s, spec, (long long)x);
		else
			sd_seq_printf(s, spec, (unsigned long long)x);
	}
}

void sd_printfmt_render(struct sd_seq *s, const struct sd_printfmt *pf, const void *entry,
			uint32_t len, const struct sd_print_ctx *ctx)
{
	char scratch_buf[4096];
	struct eval e = {
	    .entry = entry, .len = len, .scratch = scratch_buf, .cap = sizeof(scratch_buf)};

	for (int i = 0; i < pf->nsegs; i++) {
		const struct seg *sg = &pf->segs[i];

		if (sg->kind == SEG_LIT)
			sd_seq_putmem(s, sg->lit, sg->litlen);
		else
			render_conv(s, sg, &e, ctx);
	}
}

void sd_print_fields(struct sd_seq *s, const struct sd_event *ev, const void *entry, uint32_t len)
{
	char scratch_buf[4096];
	struct eval e = {
	    .entry = entry, .len = len, .scratch = scratch_buf, .cap = sizeof(scratch_buf)};

	for (unsigned int i = 0; i < ev->nfields; i++) {
		const struct sd_field *f = &ev->fields[i];
		struct val v;

		e.used = 0;
		sd_seq_printf(s, "%s%s=", i ? " " : "", f->name);
		if (f->dynamic)
			v = dyn_val(&e, f, f->ftype == SD_FT_STRING ? NK_GET_STR : NK_GET_DYN);
		else
			v = field_val(&e, f);
		if (v.t == V_BUF)
			v = print_array(&e, v, v.n / v.esz, v.esz);
		if (v.t == V_FAULT)
			sd_seq_puts(s, "(fault)");
		else if (v.t == V_STR && (f->ftype == SD_FT_STRING || f->ftype == SD_FT_CHARARRAY))
			sd_seq_printf(s, "\"%.*s\"", (int)v.n, v.s);
		else if (v.t == V_STR)
			sd_seq_putmem(s, v.s, v.n);
		else if (f->ftype == SD_FT_HEX)
			sd_seq_printf(s, "0x%" PRIx64, v.i);
		else if (!v.uns)
			sd_seq_printf(s, "%" PRId64, (int64_t)v.i);
		else
			sd_seq_printf(s, "%" PRIu64, v.i);
	}
}
