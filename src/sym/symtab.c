// SPDX-License-Identifier: MIT
/*
 * symtab.c - the function and data symbols of one ELF file.
 *
 * .symtab and .dynsym are read into one table. A symbol that appears in both
 * (an exported function of an unstripped library) is kept once, flagged
 * dynamic. Version suffixes are stripped from .symtab names ("memcpy@@GLIBC_2.14"
 * -> "memcpy"); whether a version is the default one ("@@", or no hidden bit
 * in .gnu.version for .dynsym) is kept as a rank, so that a lookup by name
 * returns the symbol the dynamic linker would bind an unversioned reference
 * to. Two symbols with one name and different addresses are both kept:
 * libc's two memcpy, or static functions of two .c files.
 *
 * Three views of the same symbols:
 *   syms[]    by address (then best name first), what callers iterate;
 *   by_name[] indices sorted by (name, rank, address) for lookups;
 *   maxend[]  running maximum of value+size over syms[0..i], which bounds the
 *             backward scan of an address lookup (symbols may nest).
 */
#include <errno.h>
#include <gelf.h>
#include <inttypes.h>
#include <libelf.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SD_LOG_PREFIX "sym"
#include "common/log.h"
#include "sym/elf_file.h"
#include "sym/ifunc.h"
#include "sym/sym.h"

/* rank of a name among its namesakes: lower binds first */
enum {
	RANK_GLOBAL = 0, /* global or weak, default version */
	RANK_HIDDEN,	 /* global or weak, non-default version (memcpy@GLIBC_2.2.5) */
	RANK_LOCAL,
	RANK_IMPL, /* what an IFUNC resolved to, named after it (ifunc.c) */
};

struct sd_symtab {
	char *path;
	bool pie;
	struct sd_elf_seg *segs;
	size_t nsegs;
	struct sd_sym *syms;
	uint8_t *rank; /* parallel to syms */
	uint32_t *by_name;
	uint64_t *maxend;
	size_t nsyms;
	char *names;
};

/* a symbol while the table is being built: the name is an offset in the pool */
struct raw_sym {
	size_t name;
	uint64_t value, size;
	uint8_t type, bind, rank;
	bool dynamic, resolved;
};

struct builder {
	const char *path;
	struct raw_sym *raw;
	size_t nraw, raw_cap;
	char *pool;
	size_t pool_len, pool_cap;
};

static int pool_add(struct builder *b, const char *s, size_t len, size_t *off)
{
	if (b->pool_len + len + 1 > b->pool_cap) {
		size_t cap = b->pool_cap ? b->pool_cap * 2 : 65536;
		char *p;

		while (cap < b->pool_len + len + 1)
			cap *= 2;
		p = realloc(b->pool, cap);
		if (!p)
			return -ENOMEM;
		b->pool = p;
		b->pool_cap = cap;
	}
	memcpy(b->pool + b->pool_len, s, len);
	b->pool[b->pool_len + len] = '\0';
	*off = b->pool_len;
	b->pool_len += len + 1;
	return 0;
}

static int raw_add(struct builder *b, const struct raw_sym *r)
{
	if (b->nraw == b->raw_cap) {
		size_t cap = b->raw_cap ? b->raw_cap * 2 : 1024;
		struct raw_sym *p = realloc(b->raw, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		b->raw = p;
		b->raw_cap = cap;
	}
	b->raw[b->nraw++] = *r;
	return 0;
}

static int map_type(unsigned char t)
{
	switch (t) {
	case STT_FUNC:
		return SD_SYM_FUNC;
	case STT_GNU_IFUNC:
		return SD_SYM_IFUNC;
	case STT_OBJECT:
		return SD_SYM_OBJECT;
	}
	return 0;
}

static int map_bind(unsigned char b)
{
	switch (b) {
	case STB_GLOBAL:
	case STB_GNU_UNIQUE:
		return SD_SYM_GLOBAL;
	case STB_WEAK:
		return SD_SYM_WEAK;
	case STB_LOCAL:
		return SD_SYM_LOCAL;
	}
	return -1;
}

/* the .gnu.version data matching the .dynsym section @dynsym, or NULL */
static Elf_Data *find_versym(Elf *elf, size_t dynsym)
{
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;

	while ((scn = elf_nextscn(elf, scn))) {
		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_GNU_versym)
			continue;
		if (sh.sh_link != dynsym)
			continue;
		return elf_getdata(scn, NULL);
	}
	return NULL;
}

static int read_symbols(struct builder *b, Elf *elf, Elf_Scn *scn, const GElf_Shdr *sh)
{
	bool dynamic = sh->sh_type == SHT_DYNSYM;
	Elf_Data *data = elf_getdata(scn, NULL), *versym = NULL;
	size_t n, i;
	int err;

	if (!data || !sh->sh_entsize)
		return sd_error(-ENOEXEC, "%s: cannot read %s: %s", b->path,
				dynamic ? ".dynsym" : ".symtab", elf_errmsg(-1));
	if (dynamic)
		versym = find_versym(elf, elf_ndxscn(scn));
	n = sh->sh_size / sh->sh_entsize;

	/* entry 0 is the null symbol */
	for (i = 1; i < n; i++) {
		struct raw_sym r = {.dynamic = dynamic};
		GElf_Sym s;
		const char *name, *at;
		size_t len;
		int type, bind;

		if (!gelf_getsym(data, (int)i, &s))
			return sd_error(-ENOEXEC, "%s: symbol %zu of %s is truncated", b->path, i,
					dynamic ? ".dynsym" : ".symtab");
		type = map_type(GELF_ST_TYPE(s.st_info));
		bind = map_bind(GELF_ST_BIND(s.st_info));
		if (!type || bind < 0 || !s.st_value || s.st_shndx == SHN_UNDEF)
			continue;
		name = elf_strptr(elf, sh->sh_link, s.st_name);
		if (!name || !*name)
			continue;

		len = strlen(name);
		r.rank = bind == SD_SYM_LOCAL ? RANK_LOCAL : RANK_GLOBAL;
		at = strchr(name, '@');
		if (at) {
			/* "name@VER" is a non-default version, "name@@VER" the default */
			if (at[1] != '@' && r.rank == RANK_GLOBAL)
				r.rank = RANK_HIDDEN;
			len = (size_t)(at - name);
			if (!len)
				continue;
		}
		if (versym && r.rank == RANK_GLOBAL) {
			GElf_Versym v;

			if (gelf_getversym(versym, (int)i, &v) && (v & 0x8000))
				r.rank = RANK_HIDDEN;
		}
		r.value = s.st_value;
		r.size = s.st_size;
		r.type = (uint8_t)type;
		r.bind = (uint8_t)bind;
		err = pool_add(b, name, len, &r.name);
		if (!err)
			err = raw_add(b, &r);
		if (err)
			return sd_error(err, "%s: out of memory reading symbols", b->path);
	}
	return 0;
}

static int cmp_name_value(const void *a, const void *b, void *pool)
{
	const struct raw_sym *x = a, *y = b;
	int c = strcmp((char *)pool + x->name, (char *)pool + y->name);

	if (c)
		return c;
	return x->value < y->value ? -1 : x->value > y->value;
}

/* address order; among aliases the name a reader expects first */
static int cmp_addr(const void *a, const void *b, void *pool)
{
	const struct raw_sym *x = a, *y = b;

	if (x->value != y->value)
		return x->value < y->value ? -1 : 1;
	if (x->rank != y->rank)
		return x->rank - y->rank;
	if (x->dynamic != y->dynamic)
		return y->dynamic - x->dynamic;
	if (x->type != y->type)
		return x->type - y->type;
	/* aliases: the public name (malloc) before the internal one (__libc_malloc) */
	{
		const char *xn = (char *)pool + x->name, *yn = (char *)pool + y->name;
		size_t ux = strspn(xn, "_"), uy = strspn(yn, "_");

		if (ux != uy)
			return ux < uy ? -1 : 1;
		/* an implementation: its strong IFUNC's name (strchr), not a weak alias's (index)
		 */
		if (x->resolved && y->resolved && x->bind != y->bind)
			return x->bind - y->bind;
		return strcmp(xn, yn);
	}
}

static int cmp_by_name(const void *a, const void *b, void *arg)
{
	const struct sd_symtab *st = arg;
	uint32_t i = *(const uint32_t *)a, j = *(const uint32_t *)b;
	const struct sd_sym *x = &st->syms[i], *y = &st->syms[j];
	int c = strcmp(x->name, y->name);

	if (c)
		return c;
	if (st->rank[i] != st->rank[j])
		return st->rank[i] - st->rank[j];
	return i < j ? -1 : i > j;
}

/* merge (name, value) duplicates: the .symtab and .dynsym copies of one symbol */
static size_t dedupe(struct raw_sym *r, size_t n, const char *pool)
{
	size_t i, out = 0;

	for (i = 0; i < n; i++) {
		struct raw_sym *last = out ? &r[out - 1] : NULL;

		if (last && last->value == r[i].value &&
		    !strcmp(pool + last->name, pool + r[i].name)) {
			/*
			 * The better-ranked copy names the binding; the larger
			 * size wins otherwise (versions of an object that grew,
			 * like _sys_siglist).
			 */
			last->dynamic |= r[i].dynamic;
			if (r[i].rank < last->rank) {
				last->rank = r[i].rank;
				last->bind = r[i].bind;
				last->size = r[i].size ? r[i].size : last->size;
			} else if (r[i].rank == last->rank && r[i].size > last->size) {
				last->size = r[i].size;
			}
			continue;
		}
		r[out++] = r[i];
	}
	return out;
}

static int build_table(struct sd_symtab *st, struct builder *b)
{
	size_t n, i;
	uint64_t end = 0;

	qsort_r(b->raw, b->nraw, sizeof(*b->raw), cmp_name_value, b->pool);
	n = dedupe(b->raw, b->nraw, b->pool);
	qsort_r(b->raw, n, sizeof(*b->raw), cmp_addr, b->pool);

	st->syms = calloc(n ? n : 1, sizeof(*st->syms));
	st->rank = calloc(n ? n : 1, sizeof(*st->rank));
	st->by_name = calloc(n ? n : 1, sizeof(*st->by_name));
	st->maxend = calloc(n ? n : 1, sizeof(*st->maxend));
	if (!st->syms || !st->rank || !st->by_name || !st->maxend)
		return sd_error(-ENOMEM, "%s: out of memory reading symbols", st->path);
	if (n > UINT32_MAX)
		return sd_error(-EFBIG, "%s: too many symbols", st->path);

	/* the pool stops moving now: names can point into it */
	st->names = b->pool;
	b->pool = NULL;
	for (i = 0; i < n; i++) {
		const struct raw_sym *r = &b->raw[i];
		struct sd_sym *s = &st->syms[i];

		s->name = st->names + r->name;
		s->value = r->value;
		s->size = r->size;
		s->type = r->type;
		s->bind = r->bind;
		s->dynamic = r->dynamic;
		s->resolved = r->resolved;
		st->rank[i] = r->rank;
		st->by_name[i] = (uint32_t)i;
		if (r->value + r->size > end)
			end = r->value + r->size;
		st->maxend[i] = end;
	}
	st->nsyms = n;

	qsort_r(st->by_name, n, sizeof(*st->by_name), cmp_by_name, st);
	return 0;
}

/*
 * One more function symbol for each exported IFUNC whose implementation
 * this process can find (the same file loaded here): a stripped library
 * has no other name for the code its strlen and memcpy calls run.
 */
static int add_ifunc_impls(struct builder *b, Elf *elf)
{
	struct sd_ifunc *v;
	size_t *from, n = 0, nraw = b->nraw;
	int err = 0;

	for (size_t i = 0; i < nraw; i++)
		n += b->raw[i].type == SD_SYM_IFUNC && b->raw[i].dynamic &&
		     b->raw[i].rank == RANK_GLOBAL;
	if (!n)
		return 0;
	v = calloc(n, sizeof(*v));
	from = calloc(n, sizeof(*from));
	if (!v || !from) {
		free(v);
		free(from);
		return sd_error(-ENOMEM, "%s: out of memory reading symbols", b->path);
	}
	n = 0;
	for (size_t i = 0; i < nraw; i++)
		if (b->raw[i].type == SD_SYM_IFUNC && b->raw[i].dynamic &&
		    b->raw[i].rank == RANK_GLOBAL) {
			v[n].name = b->pool + b->raw[i].name;
			from[n++] = i;
		}
	if (sd_ifunc_resolve_file(b->path, elf, v, n) > 0)
		for (size_t k = 0; k < n && !err; k++) {
			struct raw_sym r = {.name = b->raw[from[k]].name,
					    .value = v[k].impl,
					    .size = v[k].size,
					    .type = SD_SYM_FUNC,
					    .bind = b->raw[from[k]].bind,
					    .rank = RANK_IMPL,
					    .resolved = true};

			/* (the pool may move under v[].name: names are offsets in r) */
			if (v[k].impl)
				err = raw_add(b, &r);
		}
	free(v);
	free(from);
	return err ? sd_error(err, "%s: out of memory reading symbols", b->path) : 0;
}

static int read_segments(struct sd_symtab *st, Elf *elf)
{
	return sd_elf_read_segs(elf, st->path, &st->segs, &st->nsegs);
}

static int read_elf(struct sd_symtab *st, Elf *elf)
{
	struct builder b = {.path = st->path};
	Elf_Scn *scn = NULL;
	GElf_Ehdr eh;
	bool have_table = false;
	size_t shstrndx;
	int err;

	if (elf_kind(elf) != ELF_K_ELF)
		return sd_error(-ENOEXEC, "%s: not an ELF file", st->path);
	if (!gelf_getehdr(elf, &eh))
		return sd_error(-ENOEXEC, "%s: truncated or corrupt ELF header: %s", st->path,
				elf_errmsg(-1));
	if (elf_getshdrstrndx(elf, &shstrndx))
		return sd_error(-ENOEXEC, "%s: cannot read section headers: %s", st->path,
				elf_errmsg(-1));
	st->pie = eh.e_type == ET_DYN;
	err = read_segments(st, elf);
	if (err)
		return err;

	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;

		if (!gelf_getshdr(scn, &sh))
			return sd_error(-ENOEXEC, "%s: corrupt section header: %s", st->path,
					elf_errmsg(-1));
		if (sh.sh_type != SHT_SYMTAB && sh.sh_type != SHT_DYNSYM)
			continue;
		have_table = true;
		err = read_symbols(&b, elf, scn, &sh);
		if (err)
			goto out;
	}
	if (!have_table) {
		err = sd_error(-ENODATA, "%s: no symbols (stripped, and no .dynsym)", st->path);
		goto out;
	}
	err = add_ifunc_impls(&b, elf);
	if (!err)
		err = build_table(st, &b);
out:
	free(b.raw);
	free(b.pool);
	return err;
}

int sd_symtab_open(const char *path, struct sd_symtab **out)
{
	struct sd_symtab *st;
	Elf *elf;
	int fd, err;

	*out = NULL;
	err = sd_elf_open(path, &fd, &elf);
	if (err)
		return err;
	st = calloc(1, sizeof(*st));
	if (!st || !(st->path = strdup(path))) {
		free(st);
		sd_elf_close(fd, elf);
		return sd_error(-ENOMEM, "%s: out of memory", path);
	}
	err = read_elf(st, elf);
	sd_elf_close(fd, elf);
	if (err) {
		sd_symtab_free(st);
		return err;
	}
	*out = st;
	return 0;
}

void sd_symtab_free(struct sd_symtab *st)
{
	if (!st)
		return;
	free(st->path);
	free(st->segs);
	free(st->syms);
	free(st->rank);
	free(st->by_name);
	free(st->maxend);
	free(st->names);
	free(st);
}

size_t sd_symtab_count(const struct sd_symtab *st)
{
	return st->nsyms;
}

const struct sd_sym *sd_symtab_at(const struct sd_symtab *st, size_t i)
{
	return i < st->nsyms ? &st->syms[i] : NULL;
}

/* index in by_name[] of the first symbol named @name, or nsyms */
static size_t name_lower_bound(const struct sd_symtab *st, const char *name)
{
	size_t lo = 0, hi = st->nsyms;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(st->syms[st->by_name[mid]].name, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

const struct sd_sym *sd_symtab_lookup(const struct sd_symtab *st, const char *name)
{
	size_t i = name_lower_bound(st, name);

	if (i < st->nsyms && !strcmp(st->syms[st->by_name[i]].name, name))
		return &st->syms[st->by_name[i]];
	return NULL;
}

size_t sd_symtab_lookup_all(const struct sd_symtab *st, const char *name, const struct sd_sym **out,
			    size_t max)
{
	size_t i = name_lower_bound(st, name), n = 0;

	for (; i < st->nsyms; i++) {
		const struct sd_sym *s = &st->syms[st->by_name[i]];

		if (strcmp(s->name, name))
			break;
		if (n < max)
			out[n] = s;
		n++;
	}
	return n;
}

const struct sd_sym *sd_symtab_find_addr(const struct sd_symtab *st, uint64_t vaddr, uint64_t *off)
{
	const struct sd_sym *best = NULL;
	size_t lo = 0, hi = st->nsyms;

	/* hi = number of symbols with value <= vaddr */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (st->syms[mid].value <= vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	/*
	 * Walk back while some earlier symbol may still reach vaddr. The
	 * closest start wins; among aliases the first (best-named) one.
	 */
	while (hi > 0) {
		const struct sd_sym *s = &st->syms[hi - 1];

		if (best && s->value < best->value)
			break;
		if (st->maxend[hi - 1] <= vaddr && s->value != vaddr)
			break;
		hi--;
		if (vaddr < s->value + s->size || vaddr == s->value)
			best = s;
	}
	if (best && off)
		*off = vaddr - best->value;
	return best;
}

bool sd_symtab_is_pie(const struct sd_symtab *st)
{
	return st->pie;
}

int sd_symtab_vaddr_to_offset(const struct sd_symtab *st, uint64_t vaddr, uint64_t *offset)
{
	for (size_t i = 0; i < st->nsegs; i++) {
		const struct sd_elf_seg *g = &st->segs[i];

		if (vaddr >= g->vaddr && vaddr - g->vaddr < g->filesz) {
			*offset = vaddr - g->vaddr + g->offset;
			return 0;
		}
	}
	return sd_error(-ENOENT, "%s: address 0x%" PRIx64 " is not backed by the file", st->path,
			vaddr);
}

int sd_symtab_offset_to_vaddr(const struct sd_symtab *st, uint64_t offset, uint64_t *vaddr)
{
	for (size_t i = 0; i < st->nsegs; i++) {
		const struct sd_elf_seg *g = &st->segs[i];

		if (offset >= g->offset && offset - g->offset < g->filesz) {
			*vaddr = offset - g->offset + g->vaddr;
			return 0;
		}
	}
	return sd_error(-ENOENT, "%s: file offset 0x%" PRIx64 " is not in a loaded segment",
			st->path, offset);
}

bool sd_symtab_vaddr_is_exec(const struct sd_symtab *st, uint64_t vaddr)
{
	for (size_t i = 0; i < st->nsegs; i++) {
		const struct sd_elf_seg *g = &st->segs[i];

		if ((g->flags & PF_X) && vaddr >= g->vaddr && vaddr - g->vaddr < g->memsz)
			return true;
	}
	return false;
}

const char *sd_symtab_path(const struct sd_symtab *st)
{
	return st->path;
}
