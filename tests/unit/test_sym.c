// SPDX-License-Identifier: MIT
/*
 * test_sym.c - the symbol module against outside oracles: readelf's symbol
 * tables, the dynamic loader (dlsym, dl_iterate_phdr), the addresses of
 * this program's own functions, and child processes that print theirs.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sonde/sonde.h>

#include "check.h"
#include "sym/sym.h"

int main(int argc, char **argv);

/* functions and data of this program with known addresses */
int sd_test_helper(int x);
__attribute__((noinline, used)) int sd_test_helper(int x)
{
	return x * 7 + 3;
}

static __attribute__((noinline, used)) int sd_test_local_helper(int x)
{
	return x * 5 - 1;
}

int sd_test_data_var = 42;

#define LIBC_SONAME "libc.so.6"

/* ------------------------------------------------------------------------- */
/* helpers */

static void *libc_handle(void)
{
	void *h = dlopen(LIBC_SONAME, RTLD_NOW | RTLD_NOLOAD);

	if (!h)
		SKIP("libc.so.6 is not loaded (not glibc?)");
	return h;
}

static const char *libc_path(void)
{
	static char path[4096];
	struct link_map *lm;

	if (dlinfo(libc_handle(), RTLD_DI_LINKMAP, &lm) || !lm->l_name[0])
		SKIP("cannot find libc's path");
	snprintf(path, sizeof(path), "%s", lm->l_name);
	return path;
}

static bool have_tool(const char *name)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", name);
	return system(cmd) == 0;
}

static bool contains(const char *hay, const char *needle)
{
	return hay && strstr(hay, needle);
}

#define CHECK_MSG(needle)                                                                          \
	do {                                                                                       \
		const char *m_ = sonde_last_error();                                               \
		if (!contains(m_, needle))                                                         \
			check_fail(__FILE__, __LINE__, "error \"%s\" does not mention \"%s\"", m_, \
				   needle);                                                        \
	} while (0)

/* is there a symbol @name at @value (with @size, unless size is -1)? */
static const struct sd_sym *find_exact(const struct sd_symtab *st, const char *name, uint64_t value,
				       long long size)
{
	const struct sd_sym *all[64];
	size_t n = sd_symtab_lookup_all(st, name, all, 64);

	for (size_t i = 0; i < n && i < 64; i++)
		if (all[i]->value == value && (size < 0 || all[i]->size == (uint64_t)size))
			return all[i];
	return NULL;
}

struct re_sym {
	char name[256];
	char type[8];
	unsigned long long value, size;
	bool local, is_default;
};

/* readelf -sW @path: the defined FUNC/IFUNC/OBJECT symbols with a value */
static struct re_sym *readelf_syms(const char *path, size_t *count)
{
	char cmd[4200], line[8192];
	struct re_sym *v = NULL;
	size_t n = 0, cap = 0;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "readelf -sW '%s' 2>/dev/null", path);
	f = popen(cmd, "r");
	CHECK(f);
	while (fgets(line, sizeof(line), f)) {
		char type[32], bind[32], vis[32], ndx[32], name[4096], size_s[64], *at;
		unsigned long long value;
		struct re_sym *r;

		if (sscanf(line, " %*u: %llx %63s %31s %31s %31s %31s %4095s", &value, size_s, type,
			   bind, vis, ndx, name) != 7)
			continue;
		if (strcmp(type, "FUNC") && strcmp(type, "IFUNC") && strcmp(type, "OBJECT"))
			continue;
		if (!strcmp(ndx, "UND") || !value)
			continue;
		if (strcmp(bind, "GLOBAL") && strcmp(bind, "WEAK") && strcmp(bind, "LOCAL") &&
		    strcmp(bind, "UNIQUE"))
			continue;
		at = strchr(name, '@');
		if ((at ? (size_t)(at - name) : strlen(name)) >= sizeof(v->name) || name == at)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 1024;
			v = realloc(v, cap * sizeof(*v));
			CHECK(v);
		}
		r = &v[n++];
		memset(r, 0, sizeof(*r));
		r->is_default = at && at[1] == '@';
		if (at)
			*at = '\0';
		memcpy(r->name, name, strlen(name) + 1); /* length checked above */
		memcpy(r->type, type, strlen(type) + 1); /* FUNC, IFUNC or OBJECT */
		r->value = value;
		r->size = strtoull(size_s, NULL, 0);
		r->local = !strcmp(bind, "LOCAL");
	}
	pclose(f);
	*count = n;
	return v;
}

/*
 * Every defined FUNC/IFUNC/OBJECT with a value that readelf lists for @path
 * must be in the table with the same value, size and type (the size is not
 * compared when readelf lists one name at one address with several sizes:
 * versions of one object that grew, which the table merges); every name
 * readelf marks as the default version (@@) must be what lookup() returns.
 * Returns how many symbols were compared.
 */
static size_t check_against_readelf(const char *path, const struct sd_symtab *st)
{
	size_t n, i, j;
	struct re_sym *v = readelf_syms(path, &n);

	for (i = 0; i < n; i++) {
		const struct re_sym *r = &v[i];
		const struct sd_sym *s;
		bool several = false;

		for (j = 0; j < n && !several; j++)
			several = j != i && v[j].value == r->value && v[j].size != r->size &&
				  !strcmp(v[j].name, r->name);
		s = find_exact(st, r->name, r->value, several ? -1 : (long long)r->size);
		if (!s)
			check_fail(__FILE__, __LINE__,
				   "%s: readelf has %s %s at 0x%llx size %llu, sd_symtab does not",
				   path, r->type, r->name, r->value, r->size);
		if (!strcmp(r->type, "IFUNC"))
			CHECK_EQ(s->type, SD_SYM_IFUNC);
		else if (!strcmp(r->type, "FUNC"))
			CHECK_EQ(s->type, SD_SYM_FUNC);
		else
			CHECK_EQ(s->type, SD_SYM_OBJECT);
		if (r->local)
			CHECK_EQ(s->bind, SD_SYM_LOCAL);
		if (r->is_default) {
			const struct sd_sym *d = sd_symtab_lookup(st, r->name);

			if (!d || d->value != r->value)
				check_fail(__FILE__, __LINE__,
					   "%s: lookup(%s) = 0x%llx, the default version %s@@ is "
					   "at 0x%llx",
					   path, r->name, d ? (unsigned long long)d->value : 0ULL,
					   r->name, r->value);
		}
	}
	free(v);
	return n;
}

/*
 * the table holds only what readelf lists, and the implementations IFUNCs
 * resolved to in this process: each one an IFUNC of its name in the table
 */
static void check_no_extra(const char *path, const struct sd_symtab *st)
{
	size_t n, i, j;
	struct re_sym *v = readelf_syms(path, &n);

	for (i = 0; i < sd_symtab_count(st); i++) {
		const struct sd_sym *s = sd_symtab_at(st, i);

		if (s->resolved) {
			const struct sd_sym *f = sd_symtab_lookup(st, s->name);

			CHECK(f && f->type == SD_SYM_IFUNC);
			CHECK_EQ(s->type, SD_SYM_FUNC);
			continue;
		}
		for (j = 0; j < n; j++)
			if (v[j].value == s->value && !strcmp(v[j].name, s->name))
				break;
		if (j == n)
			check_fail(__FILE__, __LINE__, "%s: %s at 0x%llx is not in readelf's list",
				   path, s->name, (unsigned long long)s->value);
	}
	free(v);
}

static const char *self_path(void)
{
	static char path[4096];
	ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);

	CHECK(n > 0);
	path[n] = '\0';
	return path;
}

/* the table is sorted by address and holds no (name, value) twice */
static void check_sorted_unique(const struct sd_symtab *st)
{
	size_t n = sd_symtab_count(st);

	for (size_t i = 1; i < n; i++) {
		const struct sd_sym *a = sd_symtab_at(st, i - 1), *b = sd_symtab_at(st, i);

		CHECK(a->value <= b->value);
		if (a->value == b->value && !strcmp(a->name, b->name))
			check_fail(__FILE__, __LINE__, "%s at 0x%llx listed twice", a->name,
				   (unsigned long long)a->value);
	}
	for (size_t i = 0; i < n; i++) {
		const struct sd_sym *s = sd_symtab_at(st, i);

		CHECK(s->value != 0);
		CHECK(!strchr(s->name, '@'));
		CHECK(s->type >= SD_SYM_FUNC && s->type <= SD_SYM_OBJECT);
	}
	CHECK(sd_symtab_at(st, n) == NULL);
}

/* ------------------------------------------------------------------------- */
/* one ELF file */

TEST(symtab_libc_matches_readelf)
{
	const char *path = libc_path();
	struct sd_symtab *st;
	const struct sd_sym *s;

	if (!have_tool("readelf"))
		SKIP("readelf is not installed");
	CHECK_EQ(sd_symtab_open(path, &st), 0);
	CHECK_STREQ(sd_symtab_path(st), path);
	CHECK(sd_symtab_is_pie(st));
	check_sorted_unique(st);
	CHECK(check_against_readelf(path, st) > 1000);
	check_no_extra(path, st);

	/* strlen is an IFUNC (its value is the resolver), malloc is not */
	s = sd_symtab_lookup(st, "strlen");
	CHECK(s);
	CHECK_EQ(s->type, SD_SYM_IFUNC);
	CHECK(s->dynamic);
	s = sd_symtab_lookup(st, "malloc");
	CHECK(s);
	CHECK_EQ(s->type, SD_SYM_FUNC);
	CHECK_EQ(s->bind, SD_SYM_GLOBAL);
	CHECK(sd_symtab_vaddr_is_exec(st, s->value));

	/* libc has memcpy twice; lookup gives the default version, lookup_all both */
	{
		const struct sd_sym *all[8];

		CHECK(sd_symtab_lookup_all(st, "memcpy", all, 8) >= 2);
		CHECK(all[0] == sd_symtab_lookup(st, "memcpy"));
		CHECK(all[0]->value != all[1]->value);
	}
	CHECK(sd_symtab_lookup(st, "no_such_symbol_in_libc") == NULL);
	CHECK_EQ(sd_symtab_lookup_all(st, "no_such_symbol_in_libc", NULL, 0), 0);
	sd_symtab_free(st);
}

/*
 * The code libc's IFUNCs resolved to in this process has a symbol of the
 * IFUNC's name, sized by its .eh_frame entry; a strong name before a weak
 * alias (strchr, not index); lookups by name still give the IFUNC.
 */
TEST(symtab_libc_ifunc_implementations)
{
	static const char *const names[] = {"strlen", "memcpy", "strchr", "memcmp", "memset"};
	struct sd_symtab *st;
	Dl_info info;

	CHECK_EQ(sd_symtab_open(libc_path(), &st), 0);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		void *impl = dlsym(libc_handle(), names[i]);
		const struct sd_sym *s;
		uint64_t off = 1;

		CHECK(impl);
		CHECK(dladdr(impl, &info) && info.dli_fbase);
		s = sd_symtab_find_addr(st, (uint64_t)(uintptr_t)impl - (uintptr_t)info.dli_fbase,
					&off);
		if (!s)
			check_fail(__FILE__, __LINE__, "%s: no symbol at its implementation %p",
				   names[i], impl);
		CHECK_EQ(off, 0);
		if (s->resolved) /* (an unstripped libc names it __strlen_evex…: that wins) */
			CHECK_STREQ(s->name, names[i]);
		CHECK_EQ(s->type, SD_SYM_FUNC);
		CHECK(s->size > 0);
		CHECK(sd_symtab_vaddr_is_exec(st, s->value));
		CHECK_EQ(sd_symtab_lookup(st, names[i])->type, SD_SYM_IFUNC);
	}
	sd_symtab_free(st);
}

/* an executable with .symtab: locals, both tables merged, ET_DYN */
TEST(symtab_self_matches_readelf)
{
	struct sd_symtab *st;
	const struct sd_sym *s;

	if (!have_tool("readelf"))
		SKIP("readelf is not installed");
	/* readelf is another process: give it our path, not /proc/self/exe */
	CHECK_EQ(sd_symtab_open(self_path(), &st), 0);
	check_sorted_unique(st);
	CHECK(check_against_readelf(self_path(), st) > 50);
	check_no_extra(self_path(), st);

	s = sd_symtab_lookup(st, "sd_test_local_helper");
	CHECK(s);
	CHECK_EQ(s->bind, SD_SYM_LOCAL);
	CHECK_EQ(s->type, SD_SYM_FUNC);
	CHECK(!s->dynamic);
	s = sd_symtab_lookup(st, "sd_test_data_var");
	CHECK(s);
	CHECK_EQ(s->type, SD_SYM_OBJECT);
	CHECK_EQ(s->size, sizeof(int));
	CHECK(!sd_symtab_vaddr_is_exec(st, s->value));
	sd_symtab_free(st);
}

/* a non-PIE executable: ET_EXEC and absolute addresses */
TEST(symtab_nonpie_python)
{
	const char *path = "/usr/bin/python3";
	struct sd_symtab *st;
	char cmd[256];

	if (access(path, R_OK))
		SKIP("no /usr/bin/python3");
	if (!have_tool("readelf"))
		SKIP("readelf is not installed");
	snprintf(cmd, sizeof(cmd), "readelf -hW %s | grep -q 'EXEC (Executable'", path);
	CHECK_EQ(sd_symtab_open(path, &st), 0);
	CHECK_EQ(sd_symtab_is_pie(st), system(cmd) != 0);
	check_sorted_unique(st);
	CHECK(check_against_readelf(path, st) > 100);
	check_no_extra(path, st);
	sd_symtab_free(st);
}

/* file offsets: the bytes at a symbol's offset in the file are its code in memory */
TEST(symtab_offsets_match_memory)
{
	struct sd_symtab *st;
	struct sd_maps *maps;
	const struct sd_sym *s;
	unsigned char file_bytes[16];
	uint64_t off, vaddr, bias;
	int fd;

	CHECK_EQ(sd_symtab_open("/proc/self/exe", &st), 0);
	CHECK_EQ(sd_maps_read(0, &maps), 0);
	bias = sd_maps_at(maps, 0)->bias;

	s = sd_symtab_lookup(st, "sd_test_helper");
	CHECK(s);
	CHECK(sd_symtab_vaddr_is_exec(st, s->value));
	CHECK_EQ(bias + s->value, (uintptr_t)sd_test_helper);
	CHECK_EQ(sd_symtab_vaddr_to_offset(st, s->value, &off), 0);
	CHECK_EQ(sd_symtab_offset_to_vaddr(st, off, &vaddr), 0);
	CHECK_EQ(vaddr, s->value);

	fd = open("/proc/self/exe", O_RDONLY);
	CHECK(fd >= 0);
	CHECK_EQ(pread(fd, file_bytes, sizeof(file_bytes), (off_t)off), sizeof(file_bytes));
	close(fd);
	CHECK(!memcmp(file_bytes, (const void *)(uintptr_t)sd_test_helper, sizeof(file_bytes)));

	/* nowhere near a segment */
	CHECK_EQ(sd_symtab_vaddr_to_offset(st, 0x7fffffffffffULL, &off), -ENOENT);
	CHECK_EQ(sd_symtab_offset_to_vaddr(st, 0x7fffffffffffULL, &vaddr), -ENOENT);
	CHECK(!sd_symtab_vaddr_is_exec(st, 0x7fffffffffffULL));
	sd_maps_free(maps);
	sd_symtab_free(st);
}

TEST(symtab_find_addr)
{
	struct sd_symtab *st;
	const struct sd_sym *s, *f;
	uint64_t off = 12345;

	CHECK_EQ(sd_symtab_open(libc_path(), &st), 0);
	s = sd_symtab_lookup(st, "malloc");
	CHECK(s && s->size > 8);

	f = sd_symtab_find_addr(st, s->value, &off);
	CHECK(f);
	CHECK_EQ(f->value, s->value);
	CHECK_EQ(off, 0);
	f = sd_symtab_find_addr(st, s->value + s->size / 2, &off);
	CHECK(f);
	CHECK_EQ(f->value, s->value); /* malloc or one of its aliases */
	CHECK_EQ(off, s->size / 2);
	CHECK(f->bind != SD_SYM_LOCAL); /* aliases: the exported name first */

	/* every symbol with a size is found from its last byte */
	for (size_t i = 0; i < sd_symtab_count(st); i++) {
		const struct sd_sym *x = sd_symtab_at(st, i);

		if (!x->size)
			continue;
		f = sd_symtab_find_addr(st, x->value + x->size - 1, &off);
		CHECK(f);
		CHECK(f->value <= x->value + x->size - 1);
		CHECK(f->value >= x->value);
	}
	CHECK(sd_symtab_find_addr(st, 1, &off) == NULL);
	sd_symtab_free(st);
}

TEST(symtab_errors)
{
	char tmpl[] = "/tmp/sonde-test-sym-XXXXXX";
	struct sd_symtab *st = (void *)1;
	char buf[64];
	int fd, in;

	CHECK_EQ(sd_symtab_open("/nonexistent/file", &st), -ENOENT);
	CHECK(st == NULL);
	CHECK_MSG("/nonexistent/file");
	CHECK_MSG("No such file or directory");

	/* a text file */
	fd = mkstemp(tmpl);
	CHECK(fd >= 0);
	CHECK_EQ(write(fd, "hello, world\n", 13), 13);
	close(fd);
	CHECK_EQ(sd_symtab_open(tmpl, &st), -ENOEXEC);
	CHECK_MSG(": not an ELF file");
	CHECK_MSG(tmpl);
	unlink(tmpl);
	strcpy(tmpl, "/tmp/sonde-test-sym-XXXXXX");

	CHECK_EQ(sd_symtab_open("/tmp", &st), -EISDIR);
	CHECK_MSG("/tmp");

	/* the ELF header of a real file, and nothing after it */
	fd = mkstemp(tmpl);
	CHECK(fd >= 0);
	in = open(libc_path(), O_RDONLY);
	CHECK(in >= 0);
	CHECK_EQ(read(in, buf, sizeof(buf)), sizeof(buf));
	close(in);
	CHECK_EQ(write(fd, buf, sizeof(buf)), sizeof(buf));
	close(fd);
	CHECK_EQ(sd_symtab_open(tmpl, &st), -ENOEXEC);
	CHECK_MSG(tmpl);
	unlink(tmpl);
	strcpy(tmpl, "/tmp/sonde-test-sym-XXXXXX");

	/* an empty file */
	fd = mkstemp(tmpl);
	CHECK(fd >= 0);
	close(fd);
	CHECK_EQ(sd_symtab_open(tmpl, &st), -ENOEXEC);
	CHECK_MSG("not an ELF file");
	unlink(tmpl);
	sd_symtab_free(NULL);
}

/* ------------------------------------------------------------------------- */
/* the objects of this process */

struct dl_order {
	dev_t dev[64];
	ino_t ino[64];
	uint64_t bias[64];
	int n;
};

static int collect_dl(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct dl_order *o = arg;
	const char *name = info->dlpi_name[0] ? info->dlpi_name : "/proc/self/exe";
	struct stat sb;

	if (o->n < 64 && !stat(name, &sb)) {
		o->dev[o->n] = sb.st_dev;
		o->ino[o->n] = sb.st_ino;
		o->bias[o->n] = info->dlpi_addr;
		o->n++;
	}
	return 0;
}

TEST(maps_self_modules)
{
	char exe[4096];
	struct sd_maps *maps;
	struct sd_module *m, *libc;
	struct dl_order dl = {0};
	ssize_t n;
	size_t i, j;
	int last = -1;

	CHECK_EQ(sd_maps_read(0, &maps), 0);
	CHECK(sd_maps_count(maps) >= 3); /* this program, libc, the loader */

	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	CHECK(n > 0);
	exe[n] = '\0';
	m = sd_maps_at(maps, 0);
	CHECK(m->is_main);
	CHECK_STREQ(m->path, exe);
	CHECK_STREQ(m->name, strrchr(exe, '/') + 1);
	CHECK(m->start <= (uintptr_t)sd_test_helper && (uintptr_t)sd_test_helper < m->end);
	CHECK(sd_maps_find_addr(maps, (uintptr_t)sd_test_helper) == m);
	CHECK(sd_maps_find_addr(maps, (uintptr_t)&sd_test_data_var) == m);
	CHECK(sd_maps_find_addr(maps, 0x10) == NULL);
	CHECK(sd_maps_at(maps, sd_maps_count(maps)) == NULL);
	for (i = 1; i < sd_maps_count(maps); i++) {
		CHECK(!sd_maps_at(maps, i)->is_main);
		CHECK(sd_maps_at(maps, i)->path[0] == '/');
		CHECK(sd_maps_at(maps, i)->start < sd_maps_at(maps, i)->end);
	}

	/* names: path, basename, basename prefix up to '.' or '-' */
	libc = sd_maps_find_module(maps, "libc");
	CHECK(libc);
	CHECK_STREQ(libc->name, LIBC_SONAME);
	CHECK(sd_maps_find_module(maps, LIBC_SONAME) == libc);
	CHECK(sd_maps_find_module(maps, libc->path) == libc);
	CHECK(sd_maps_find_module(maps, "libc.so") == libc);
	CHECK(sd_maps_find_module(maps, "lib") == NULL);
	CHECK(sd_maps_find_module(maps, "libc.so.6x") == NULL);
	CHECK(sd_maps_find_module(maps, "") == NULL);
	CHECK(sd_maps_find_module(maps, "ld-linux-x86-64") != NULL);
	CHECK(sd_maps_find_module(maps, m->name) == m);
	CHECK(sd_maps_find_addr(maps, (uintptr_t)dlsym(libc_handle(), "free")) == libc);

	/* the loader's order and biases, for every object both know */
	dl_iterate_phdr(collect_dl, &dl);
	CHECK(dl.n >= 3);
	for (i = 0; i < sd_maps_count(maps); i++) {
		m = sd_maps_at(maps, i);
		for (j = 0; j < (size_t)dl.n; j++)
			if (dl.dev[j] == m->dev && dl.ino[j] == m->ino)
				break;
		if (j == (size_t)dl.n)
			continue;
		CHECK_EQ(m->bias, dl.bias[j]);
		CHECK((int)j > last);
		last = (int)j;
	}
	CHECK(last > 0);
	sd_maps_free(maps);
}

TEST(maps_bias)
{
	struct sd_maps *maps;
	struct sd_module *exe, *libc;
	struct sd_symtab *st;
	const struct sd_sym *s;

	CHECK_EQ(sd_maps_read(0, &maps), 0);
	exe = sd_maps_at(maps, 0);
	st = sd_module_symtab(exe);
	CHECK(st);
	CHECK(sd_module_symtab(exe) == st); /* read once */
	CHECK(exe->symtab == st);
	s = sd_symtab_lookup(st, "sd_test_helper");
	CHECK(s);
	CHECK_EQ(exe->bias + s->value, (uintptr_t)sd_test_helper);
	s = sd_symtab_lookup(st, "sd_test_local_helper");
	CHECK(s);
	CHECK_EQ(exe->bias + s->value, (uintptr_t)sd_test_local_helper);
	s = sd_symtab_lookup(st, "sd_test_data_var");
	CHECK(s);
	CHECK_EQ(exe->bias + s->value, (uintptr_t)&sd_test_data_var);
	if (sd_symtab_is_pie(st))
		CHECK(exe->bias != 0);
	else
		CHECK_EQ(exe->bias, 0);

	libc = sd_maps_find_module(maps, "libc");
	CHECK(libc);
	st = sd_module_symtab(libc);
	CHECK(st);
	s = sd_symtab_lookup(st, "free");
	CHECK(s);
	CHECK_EQ(libc->bias + s->value, (uintptr_t)dlsym(libc_handle(), "free"));
	s = sd_symtab_lookup(st, "qsort");
	CHECK(s);
	CHECK_EQ(libc->bias + s->value, (uintptr_t)dlsym(libc_handle(), "qsort"));
	sd_maps_free(maps);
}

/* ------------------------------------------------------------------------- */
/* sd_resolve */

static struct sd_maps *self_maps(void)
{
	struct sd_maps *maps;

	CHECK_EQ(sd_maps_read(0, &maps), 0);
	return maps;
}

TEST(resolve_names)
{
	struct sd_maps *maps = self_maps();
	struct sd_resolved r;
	char spec[64];

	/* the first global in load order, as dlsym(RTLD_DEFAULT) binds (ASan's malloc if any) */
	CHECK_EQ(sd_resolve(maps, "malloc", &r), 0);
	CHECK_EQ(r.addr, (uintptr_t)dlsym(RTLD_DEFAULT, "malloc"));
	CHECK_STREQ(r.sym->name, "malloc");
	CHECK_EQ(r.offset, 0);
	CHECK(r.mod);

	CHECK_EQ(sd_resolve(maps, "libc:free", &r), 0);
	CHECK_EQ(r.addr, (uintptr_t)dlsym(libc_handle(), "free"));
	CHECK_STREQ(r.mod->name, LIBC_SONAME);
	CHECK_EQ(sd_resolve(maps, LIBC_SONAME ":malloc", &r), 0);
	CHECK_EQ(r.addr, (uintptr_t)dlsym(libc_handle(), "malloc"));
	CHECK_EQ(r.sym->type, SD_SYM_FUNC);

	/* an IFUNC resolves to its resolver, and says so */
	CHECK_EQ(sd_resolve(maps, "libc:strlen", &r), 0);
	CHECK_EQ(r.sym->type, SD_SYM_IFUNC);
	CHECK_EQ(r.addr, r.mod->bias + r.sym->value);

	CHECK_EQ(sd_resolve(maps, "main", &r), 0);
	CHECK_EQ(r.addr, (uintptr_t)main);
	CHECK(r.mod->is_main);
	CHECK_EQ(sd_resolve(maps, "sd_test_helper", &r), 0);
	CHECK_EQ(r.addr, (uintptr_t)sd_test_helper);
	CHECK_EQ(r.sym->bind, SD_SYM_GLOBAL);

	/* one local definition anywhere is not ambiguous */
	CHECK_EQ(sd_resolve(maps, "sd_test_local_helper", &r), 0);
	CHECK_EQ(r.addr, (uintptr_t)sd_test_local_helper);
	CHECK_EQ(r.sym->bind, SD_SYM_LOCAL);

	/* the executable's own name as OBJ */
	snprintf(spec, sizeof(spec), "%s:sd_test_helper", sd_maps_at(maps, 0)->name);
	CHECK_EQ(sd_resolve(maps, spec, &r), 0);
	CHECK_EQ(r.addr, (uintptr_t)sd_test_helper);
	sd_maps_free(maps);
}

TEST(resolve_offsets_and_addresses)
{
	struct sd_maps *maps = self_maps();
	uintptr_t helper = (uintptr_t)sd_test_helper;
	struct sd_resolved r;
	char spec[64];

	CHECK_EQ(sd_resolve(maps, "sd_test_helper+4", &r), 0);
	CHECK_EQ(r.addr, helper + 4);
	CHECK_EQ(r.offset, 4);
	CHECK_STREQ(r.sym->name, "sd_test_helper");
	CHECK_EQ(sd_resolve(maps, "sd_test_helper+0x3", &r), 0);
	CHECK_EQ(r.addr, helper + 3);
	CHECK_EQ(r.offset, 3);
	CHECK_EQ(sd_resolve(maps, "sd_test_helper+0", &r), 0);
	CHECK_EQ(r.addr, helper);
	CHECK_EQ(sd_resolve(maps, "libc:free+1", &r), 0);
	CHECK_EQ(r.addr, (uintptr_t)dlsym(libc_handle(), "free") + 1);

	/* before a symbol: the offset is from whatever contains that address */
	CHECK_EQ(sd_resolve(maps, "sd_test_helper-1", &r), 0);
	CHECK_EQ(r.addr, helper - 1);
	if (r.sym)
		CHECK_EQ(r.mod->bias + r.sym->value + r.offset, helper - 1);

	/* a raw runtime address */
	snprintf(spec, sizeof(spec), "0x%lx", (unsigned long)(helper + 2));
	CHECK_EQ(sd_resolve(maps, spec, &r), 0);
	CHECK_EQ(r.addr, helper + 2);
	CHECK(r.mod && r.mod->is_main);
	CHECK_STREQ(r.sym->name, "sd_test_helper");
	CHECK_EQ(r.offset, 2);
	snprintf(spec, sizeof(spec), "0X%lX", (unsigned long)helper);
	CHECK_EQ(sd_resolve(maps, spec, &r), 0);
	CHECK_EQ(r.addr, helper);
	CHECK_EQ(sd_resolve(maps, "0x10", &r), 0);
	CHECK_EQ(r.addr, 0x10);
	CHECK(r.mod == NULL);
	CHECK(r.sym == NULL);
	sd_maps_free(maps);
}

TEST(resolve_errors)
{
	struct sd_maps *maps = self_maps();
	struct sd_resolved r;

	CHECK_EQ(sd_resolve(maps, "no_such_function_xyz", &r), -ENOENT);
	CHECK_MSG("no symbol 'no_such_function_xyz' in any loaded object");
	CHECK_EQ(sd_resolve(maps, "no_such_function_xyz+4", &r), -ENOENT);
	CHECK_MSG("'no_such_function_xyz+4'");
	CHECK_EQ(sd_resolve(maps, "nosuchlib:malloc", &r), -ENOENT);
	CHECK_MSG("no object 'nosuchlib'");
	CHECK_EQ(sd_resolve(maps, "libc:no_such_function_xyz", &r), -ENOENT);
	CHECK_MSG("no symbol 'no_such_function_xyz' in libc.so.6");

	CHECK_EQ(sd_resolve(maps, "", &r), -EINVAL);
	CHECK_MSG("empty");
	CHECK_EQ(sd_resolve(maps, NULL, &r), -EINVAL);
	CHECK_EQ(sd_resolve(maps, "malloc+zz", &r), -EINVAL);
	CHECK_MSG("bad offset '+zz' at column 7");
	CHECK_EQ(sd_resolve(maps, "malloc+", &r), -EINVAL);
	CHECK_MSG("bad offset '+' at column 7");
	CHECK_EQ(sd_resolve(maps, "malloc-0x", &r), -EINVAL);
	CHECK_MSG("bad offset '-0x'");
	CHECK_EQ(sd_resolve(maps, "malloc+4+4", &r), -EINVAL);
	CHECK_MSG("bad offset '+4+4'");
	CHECK_EQ(sd_resolve(maps, "malloc+99999999999999999999999", &r), -EINVAL);
	CHECK_MSG("bad offset");
	CHECK_EQ(sd_resolve(maps, "libc:free+0x10000000", &r), -EINVAL);
	CHECK_MSG("past the end of free");
	CHECK_EQ(sd_resolve(maps, "+4", &r), -EINVAL);
	CHECK_MSG("missing symbol name");
	CHECK_EQ(sd_resolve(maps, ":malloc", &r), -EINVAL);
	CHECK_MSG("missing object name");
	CHECK_EQ(sd_resolve(maps, "libc:", &r), -EINVAL);
	CHECK_MSG("missing symbol name after ':'");
	CHECK_EQ(sd_resolve(maps, "std::sort", &r), -EINVAL);
	CHECK_MSG("unexpected ':' at column 5");
	CHECK_EQ(sd_resolve(maps, "libc:0x1234", &r), -EINVAL);
	CHECK_MSG("0xADDR");
	CHECK_EQ(sd_resolve(maps, "0xzz", &r), -EINVAL);
	CHECK_MSG("bad address");
	CHECK_EQ(sd_resolve(maps, "0x", &r), -EINVAL);
	CHECK_EQ(sd_resolve(maps, "mal loc", &r), -EINVAL);
	CHECK_MSG("column 4");
	sd_maps_free(maps);
}

TEST(format_addr)
{
	struct sd_maps *maps = self_maps();
	uintptr_t helper = (uintptr_t)sd_test_helper;
	char buf[128];

	CHECK_EQ(sd_maps_format_addr(maps, helper + 3, buf, sizeof(buf)), 0);
	CHECK_STREQ(buf, "sd_test_helper+0x3");
	CHECK_EQ(sd_maps_format_addr(maps, helper, buf, sizeof(buf)), 0);
	CHECK_STREQ(buf, "sd_test_helper+0x0");
	CHECK_EQ(sd_maps_format_addr(maps, 0x10, buf, sizeof(buf)), 0);
	CHECK_STREQ(buf, "0x10");
	CHECK_EQ(sd_maps_format_addr(maps, (uintptr_t)dlsym(libc_handle(), "free") + 1, buf,
				     sizeof(buf)),
		 0);
	CHECK(!strncmp(buf, "free+0x1", 8) || strstr(buf, "+0x1")); /* free or an alias */
	CHECK_EQ(sd_maps_format_addr(maps, helper, buf, 5), -ENOSPC);
	CHECK_EQ(sd_maps_format_addr(maps, helper, NULL, 0), -EINVAL);
	sd_maps_free(maps);
}

/* ------------------------------------------------------------------------- */
/* programs built here: two libraries with clashing names, non-PIE and PIE */

static char workdir[64];

static void make_workdir(void)
{
	snprintf(workdir, sizeof(workdir), "/tmp/sonde-test-sym-XXXXXX");
	if (!mkdtemp(workdir))
		SKIP("cannot create a directory in /tmp");
	if (!have_tool("cc"))
		SKIP("no C compiler (cc) to build test programs");
}

static void remove_workdir(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", workdir);
	if (system(cmd))
		fprintf(stderr, "could not remove %s\n", workdir);
}

static void write_file(const char *name, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", workdir, name);
	f = fopen(path, "w");
	CHECK(f);
	fputs(text, f);
	CHECK_EQ(fclose(f), 0);
}

static void build(const char *args)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), "cd '%s' && cc %s 2>&1", workdir, args);
	if (system(cmd))
		check_fail(__FILE__, __LINE__, "build failed: cc %s", args);
}

static const char lib_src[] =
    "static __attribute__((noinline, used)) int sdt_dup_local(int x) { return x + LIBNUM; }\n"
    "__attribute__((noinline)) int sdt_dup_global(int x) { return sdt_dup_local(x) * 2; }\n";

TEST(resolve_across_libraries)
{
	struct sd_maps *maps;
	struct sd_resolved r;
	void *ha, *hb, *hc;
	char path[256];

	make_workdir();
	write_file("lib.c", lib_src);
	build("-O1 -shared -fPIC -DLIBNUM=1 -o libsdtA.so lib.c");
	build("-O1 -shared -fPIC -DLIBNUM=2 -o libsdtB.so lib.c");
	snprintf(path, sizeof(path), "%s/libsdtA.so", workdir);
	ha = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
	snprintf(path, sizeof(path), "%s/libsdtB.so", workdir);
	hb = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
	CHECK(ha && hb);

	CHECK_EQ(sd_maps_read(0, &maps), 0);
	/* two globals: the first loaded wins, as the dynamic linker binds */
	CHECK_EQ(sd_resolve(maps, "sdt_dup_global", &r), 0);
	CHECK_EQ(r.addr, (uintptr_t)dlsym(RTLD_DEFAULT, "sdt_dup_global"));
	CHECK_EQ(r.addr, (uintptr_t)dlsym(ha, "sdt_dup_global"));
	CHECK_STREQ(r.mod->name, "libsdtA.so");
	CHECK_EQ(sd_resolve(maps, "libsdtB:sdt_dup_global", &r), 0);
	CHECK_EQ(r.addr, (uintptr_t)dlsym(hb, "sdt_dup_global"));

	/* two locals: refused, naming both; OBJ: picks one */
	CHECK_EQ(sd_resolve(maps, "sdt_dup_local", &r), -ENOTUNIQ);
	CHECK_MSG("ambiguous: 'sdt_dup_local' is a local symbol in libsdtA.so and libsdtB.so; "
		  "write OBJ:SYM");
	CHECK_EQ(sd_resolve(maps, "libsdtB:sdt_dup_local", &r), 0);
	CHECK_STREQ(r.mod->name, "libsdtB.so");
	CHECK_EQ(r.sym->bind, SD_SYM_LOCAL);
	CHECK(sd_maps_find_addr(maps, r.addr) == r.mod);
	sd_maps_free(maps);

	/* two statics of one name in one library: only an address can tell them apart */
	write_file("twin1.c", "static __attribute__((noinline, used)) int sdt_twin(int x) "
			      "{ return x + 1; }\nint sdt_twin1(int x) { return sdt_twin(x); }\n");
	write_file("twin2.c", "static __attribute__((noinline, used)) int sdt_twin(int x) "
			      "{ return x + 2; }\nint sdt_twin2(int x) { return sdt_twin(x); }\n");
	build("-O1 -shared -fPIC -o libsdtC.so twin1.c twin2.c");
	snprintf(path, sizeof(path), "%s/libsdtC.so", workdir);
	hc = dlopen(path, RTLD_NOW);
	CHECK(hc);
	CHECK_EQ(sd_maps_read(0, &maps), 0);
	CHECK_EQ(sd_resolve(maps, "libsdtC:sdt_twin", &r), -ENOTUNIQ);
	CHECK_MSG("names 2 local symbols in libsdtC.so");
	CHECK_EQ(sd_resolve(maps, "sdt_twin", &r), -ENOTUNIQ);
	CHECK_MSG("names 2 local symbols in libsdtC.so");
	CHECK_EQ(sd_resolve(maps, "sdt_twin1", &r), 0);
	CHECK_EQ(r.addr, (uintptr_t)dlsym(hc, "sdt_twin1"));
	sd_maps_free(maps);

	dlclose(hc);
	dlclose(hb);
	dlclose(ha);
	remove_workdir();
}

static const char child_src[] =
    "#include <dlfcn.h>\n"
    "#include <stdio.h>\n"
    "#include <unistd.h>\n"
    "static __attribute__((noinline, used)) int sdt_child_helper(int x) { return x + 1; }\n"
    "int main(void)\n"
    "{\n"
    "	void *h = dlopen(\"libc.so.6\", RTLD_NOW | RTLD_NOLOAD);\n"
    "	printf(\"%p %p %p\\n\", (void *)main, (void *)sdt_child_helper,\n"
    "	       h ? dlsym(h, \"free\") : NULL);\n"
    "	fflush(stdout);\n"
    "	alarm(60);\n"
    "	pause();\n"
    "	return sdt_child_helper(0);\n"
    "}\n";

/* a child's maps: its bias, its order, its symbols at the addresses it reports */
static void check_child(const char *flags, bool pie)
{
	unsigned long long a_main, a_helper, a_free;
	char cmd[256], path[256], line[256];
	struct sd_maps *maps;
	struct sd_module *exe, *libc, *ld;
	struct sd_resolved r;
	int pfd[2];
	FILE *f;
	pid_t pid;

	make_workdir();
	write_file("child.c", child_src);
	snprintf(cmd, sizeof(cmd), "-O1 %s -o child child.c -ldl", flags);
	build(cmd);
	snprintf(path, sizeof(path), "%s/child", workdir);

	CHECK_EQ(pipe(pfd), 0);
	pid = fork();
	CHECK(pid >= 0);
	if (!pid) {
		/* never outlive a failed test */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(pfd[1], 1);
		close(pfd[0]);
		execl(path, path, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	f = fdopen(pfd[0], "r");
	CHECK(f && fgets(line, sizeof(line), f));
	CHECK_EQ(sscanf(line, "%llx %llx %llx", &a_main, &a_helper, &a_free), 3);

	CHECK_EQ(sd_maps_read(pid, &maps), 0);
	exe = sd_maps_at(maps, 0);
	CHECK(exe->is_main);
	CHECK_STREQ(exe->name, "child");
	CHECK(sd_module_symtab(exe));
	CHECK_EQ(sd_symtab_is_pie(exe->symtab), pie);
	if (!pie)
		CHECK_EQ(exe->bias, 0);
	else
		CHECK(exe->bias != 0);

	CHECK_EQ(sd_resolve(maps, "main", &r), 0);
	CHECK_EQ(r.addr, a_main);
	CHECK_EQ(sd_resolve(maps, "sdt_child_helper", &r), 0);
	CHECK_EQ(r.addr, a_helper);
	CHECK_EQ(sd_resolve(maps, "libc:free", &r), 0);
	CHECK_EQ(r.addr, a_free);

	/* load order: the program, libc, then the loader (last in its list) */
	libc = sd_maps_find_module(maps, "libc");
	ld = sd_maps_find_module(maps, "ld-linux-x86-64");
	CHECK(libc && ld);
	CHECK(libc == sd_maps_at(maps, 1));
	CHECK(ld == sd_maps_at(maps, sd_maps_count(maps) - 1));
	sd_maps_free(maps);

	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	fclose(f);
	remove_workdir();
}

TEST(maps_child_nopie)
{
	check_child("-no-pie -fno-pie", false);
}

TEST(maps_child_pie)
{
	check_child("-pie -fPIE", true);
}

TEST(maps_errors)
{
	struct sd_maps *maps = (void *)1;

	/* pid_max is at most 2^22: this pid cannot exist */
	CHECK_EQ(sd_maps_read(999999999, &maps), -ESRCH);
	CHECK(maps == NULL);
	CHECK_MSG("999999999");
	sd_maps_free(NULL);
}
