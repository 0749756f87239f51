// SPDX-License-Identifier: MIT
/*
 * resolve.c - probe locations ("malloc", "libc:free+4", "0x401136") to
 * runtime addresses, and runtime addresses back to "sym+0x1c".
 *
 * Which definition a bare name means follows the dynamic linker: the first
 * global (or weak) definition in load order, executable first. Static
 * functions are only taken when they are the one definition anywhere; two
 * static helpers of one name cannot be told apart without OBJ: or an
 * address, so they are refused rather than guessed.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SD_LOG_PREFIX "sym"
#include "common/log.h"
#include "sym/sym.h"

/* how many namesakes an error message lists */
#define MAX_SHOWN 4

struct spec {
	char obj[256];
	char sym[512];
	char sign; /* '+', '-' or 0 */
	uint64_t off;
};

/* digits of @s (decimal, or hex after 0x) into *v; false if malformed */
static bool parse_number(const char *s, uint64_t *v)
{
	int base = 10;
	uint64_t x = 0;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	if (!*s)
		return false;
	for (; *s; s++) {
		unsigned int d;

		if (*s >= '0' && *s <= '9')
			d = *s - '0';
		else if (base == 16 && isxdigit((unsigned char)*s))
			d = (tolower((unsigned char)*s) - 'a') + 10;
		else
			return false;
		if (x > (UINT64_MAX - d) / base)
			return false;
		x = x * base + d;
	}
	*v = x;
	return true;
}

static int parse_spec(const char *spec, struct spec *p)
{
	const char *colon, *rest, *op, *s;
	size_t n;

	memset(p, 0, sizeof(*p));
	if (!spec || !*spec)
		return sd_error(-EINVAL, "empty probe location: expected SYM[+OFFS], "
					 "OBJ:SYM[+OFFS] or 0xADDR");
	for (s = spec; *s; s++)
		if (isspace((unsigned char)*s))
			return sd_error(-EINVAL, "'%s': unexpected space at column %d", spec,
					(int)(s - spec) + 1);

	rest = spec;
	colon = strchr(spec, ':');
	if (colon) {
		n = (size_t)(colon - spec);
		if (!n)
			return sd_error(-EINVAL, "'%s': missing object name before ':'", spec);
		if (n >= sizeof(p->obj))
			return sd_error(-ENAMETOOLONG, "'%s': object name too long", spec);
		memcpy(p->obj, spec, n);
		rest = colon + 1;
		s = strchr(rest, ':');
		if (s)
			return sd_error(-EINVAL,
					"'%s': unexpected ':' at column %d (one OBJ: prefix; "
					"C++ names must be given mangled)",
					spec, (int)(s - spec) + 1);
	}

	op = rest + strcspn(rest, "+-");
	n = (size_t)(op - rest);
	if (!n)
		return sd_error(-EINVAL, "'%s': missing symbol name%s", spec,
				colon ? " after ':'" : "");
	if (n >= sizeof(p->sym))
		return sd_error(-ENAMETOOLONG, "'%s': symbol name too long", spec);
	memcpy(p->sym, rest, n);
	if (colon && p->sym[0] == '0' && (p->sym[1] == 'x' || p->sym[1] == 'X'))
		return sd_error(-EINVAL,
				"'%s': OBJ:ADDR is not a location here; write 0xADDR (runtime) "
				"or OBJ:SYM+OFFS",
				spec);
	if (*op) {
		p->sign = *op;
		if (!parse_number(op + 1, &p->off))
			return sd_error(-EINVAL, "'%s': bad offset '%s' at column %d", spec, op,
					(int)(op - spec) + 1);
	}
	return 0;
}

/* a name list for messages: "a", "a and b", "a, b and c" */
static void join_names(char *buf, size_t len, const char *const *names, size_t n, size_t more)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n && used < len; i++) {
		const char *sep = !i ? "" : (i == n - 1 && !more) ? " and " : ", ";

		used += snprintf(buf + used, len - used, "%s%s", sep, names[i]);
	}
	if (more && used < len)
		snprintf(buf + used, len - used, " and %zu more", more);
}

/* "'libc:foo+4': " before a lookup failure, nothing when the spec is the bare name */
static const char *who(const char *spec, const struct spec *p, char *buf, size_t len)
{
	if (!strcmp(spec, p->sym))
		return "";
	snprintf(buf, len, "'%s': ", spec);
	return buf;
}

static void fill(struct sd_resolved *out, struct sd_module *mod, const struct sd_sym *sym,
		 const struct spec *p)
{
	uint64_t base = mod->bias + sym->value;
	struct sd_symtab *st = mod->symtab;

	out->mod = mod;
	out->sym = sym;
	out->offset = 0;
	if (p->sign == '+') {
		out->addr = base + p->off;
		out->offset = p->off;
	} else if (p->sign == '-') {
		/* before the symbol: whatever contains that address now */
		out->addr = base - p->off;
		out->sym = st ? sd_symtab_find_addr(st, out->addr - mod->bias, &out->offset) : NULL;
		if (!out->sym)
			out->offset = 0;
	} else {
		out->addr = base;
	}
}

static int check_offset(const char *spec, const struct sd_sym *sym, const struct spec *p)
{
	if (p->sign == '+' && sym->size && p->off >= sym->size)
		return sd_error(-EINVAL,
				"'%s': offset 0x%" PRIx64 " is past the end of %s (size 0x%" PRIx64
				")",
				spec, p->off, sym->name, sym->size);
	return 0;
}

/* several local definitions in one module: say where they are */
static int ambiguous_in_one(const char *spec, struct sd_module *mod, const struct sd_sym **syms,
			    size_t n)
{
	char where[160];
	size_t used = 0, i;

	where[0] = '\0';
	for (i = 0; i < n && i < MAX_SHOWN && used < sizeof(where); i++)
		used += snprintf(where + used, sizeof(where) - used, "%s0x%" PRIx64, i ? ", " : "",
				 mod->bias + syms[i]->value);
	return sd_error(-ENOTUNIQ,
			"ambiguous: '%s' names %zu local symbols in %s (at %s%s); write the "
			"address",
			spec, n, mod->name, where, n > MAX_SHOWN ? ", ..." : "");
}

static int resolve_in(struct sd_maps *maps, const char *spec, const struct spec *p,
		      struct sd_resolved *out)
{
	struct sd_module *mod = sd_maps_find_module(maps, p->obj);
	const struct sd_sym *syms[MAX_SHOWN];
	struct sd_symtab *st;
	char pre[600];
	size_t n;
	int err;

	if (!mod)
		return sd_error(-ENOENT, "'%s': no object '%s' is loaded", spec, p->obj);
	st = sd_module_symtab(mod);
	if (!st) {
		int e = errno ? -errno : -ENOENT;
		char why[256];

		snprintf(why, sizeof(why), "%s", sonde_last_error());
		return sd_error(e, "'%s': cannot read the symbols of %s: %s", spec, mod->name, why);
	}
	n = sd_symtab_lookup_all(st, p->sym, syms, MAX_SHOWN);
	if (!n)
		return sd_error(-ENOENT, "%sno symbol '%s' in %s", who(spec, p, pre, sizeof(pre)),
				p->sym, mod->name);
	if (n > 1 && syms[0]->bind == SD_SYM_LOCAL)
		return ambiguous_in_one(spec, mod, syms, n);
	err = check_offset(spec, syms[0], p);
	if (err)
		return err;
	fill(out, mod, syms[0], p);
	return 0;
}

static int resolve_any(struct sd_maps *maps, const char *spec, const struct spec *p,
		       struct sd_resolved *out)
{
	const char *local_mods[MAX_SHOWN], *unreadable = NULL;
	const struct sd_sym *local = NULL, *one_mod_syms[MAX_SHOWN];
	struct sd_module *local_mod = NULL;
	size_t nlocal = 0, nmods = 0, nunreadable = 0, i;
	char pre[600];
	int err;

	for (i = 0; i < sd_maps_count(maps); i++) {
		struct sd_module *mod = sd_maps_at(maps, i);
		struct sd_symtab *st = sd_module_symtab(mod);
		const struct sd_sym *syms[MAX_SHOWN];
		size_t n;

		if (!st) {
			if (!nunreadable++)
				unreadable = mod->name;
			continue;
		}
		n = sd_symtab_lookup_all(st, p->sym, syms, MAX_SHOWN);
		if (!n)
			continue;
		if (syms[0]->bind != SD_SYM_LOCAL) {
			err = check_offset(spec, syms[0], p);
			if (err)
				return err;
			fill(out, mod, syms[0], p);
			return 0;
		}
		if (!nlocal) {
			local = syms[0];
			local_mod = mod;
			memcpy(one_mod_syms, syms, sizeof(syms));
		}
		if (nmods < MAX_SHOWN)
			local_mods[nmods] = mod->name;
		nmods++;
		nlocal += n;
	}

	if (!nlocal) {
		if (nunreadable)
			return sd_error(-ENOENT,
					"%sno symbol '%s' in any loaded object (the symbols of "
					"%s%s could not be read)",
					who(spec, p, pre, sizeof(pre)), p->sym, unreadable,
					nunreadable > 1 ? " and others" : "");
		return sd_error(-ENOENT, "%sno symbol '%s' in any loaded object",
				who(spec, p, pre, sizeof(pre)), p->sym);
	}
	if (nmods > 1) {
		char names[256];

		join_names(names, sizeof(names), local_mods, nmods < MAX_SHOWN ? nmods : MAX_SHOWN,
			   nmods > MAX_SHOWN ? nmods - MAX_SHOWN : 0);
		return sd_error(-ENOTUNIQ, "ambiguous: '%s' is a local symbol in %s; write OBJ:SYM",
				p->sym, names);
	}
	if (nlocal > 1)
		return ambiguous_in_one(spec, local_mod, one_mod_syms, nlocal);
	err = check_offset(spec, local, p);
	if (err)
		return err;
	fill(out, local_mod, local, p);
	return 0;
}

static void resolve_addr(struct sd_maps *maps, uint64_t addr, struct sd_resolved *out)
{
	struct sd_module *mod = sd_maps_find_addr(maps, addr);
	struct sd_symtab *st = mod ? sd_module_symtab(mod) : NULL;

	out->addr = addr;
	out->mod = mod;
	out->offset = 0;
	out->sym = st ? sd_symtab_find_addr(st, addr - mod->bias, &out->offset) : NULL;
	if (!out->sym)
		out->offset = 0;
}

int sd_resolve(struct sd_maps *maps, const char *spec, struct sd_resolved *out)
{
	struct spec p;
	int err;

	memset(out, 0, sizeof(*out));
	if (spec && spec[0] == '0' && (spec[1] == 'x' || spec[1] == 'X')) {
		uint64_t addr;

		if (!parse_number(spec, &addr))
			return sd_error(-EINVAL, "'%s': bad address (expected 0x and hex digits)",
					spec);
		resolve_addr(maps, addr, out);
		return 0;
	}
	err = parse_spec(spec, &p);
	if (err)
		return err;
	if (p.obj[0])
		return resolve_in(maps, spec, &p, out);
	return resolve_any(maps, spec, &p, out);
}

int sd_maps_format_addr(struct sd_maps *maps, uint64_t addr, char *buf, size_t len)
{
	struct sd_resolved r;
	int n;

	if (!buf || !len)
		return sd_error(-EINVAL, "no buffer to format 0x%" PRIx64 " into", addr);
	resolve_addr(maps, addr, &r);
	if (r.sym)
		n = snprintf(buf, len, "%s+0x%" PRIx64, r.sym->name, r.offset);
	else
		n = snprintf(buf, len, "0x%" PRIx64, addr);
	if (n < 0 || (size_t)n >= len)
		return sd_error(-ENOSPC, "0x%" PRIx64 ": buffer of %zu bytes is too small", addr,
				len);
	return 0;
}
