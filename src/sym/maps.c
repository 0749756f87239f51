// SPDX-License-Identifier: MIT
/*
 * maps.c - the ELF objects mapped in a process and where they are loaded.
 *
 * /proc/PID/maps lists mappings; the mappings of one file (same device,
 * inode and path) make one module. Only regular files that are ELF count:
 * locale archives, caches and deleted or anonymous mappings are skipped.
 *
 * Load bias. The loader maps file offset x of a PT_LOAD segment at
 * bias + p_vaddr + (x - p_offset). Taking the mapping with the lowest file
 * offset (start S, offset O) and the segment holding O:
 *
 *	bias = S - O + p_offset - p_vaddr
 *
 * which is 0 for an ET_EXEC and the load address for a usual ET_DYN whose
 * first segment has p_vaddr = p_offset = 0; it holds when the mapping's
 * offset is the page-aligned start of the segment or a later page (RELRO
 * splits segments).
 *
 * Load order, which decides which global definition wins:
 *  - in this process, dl_iterate_phdr walks the loader's list: exact;
 *  - in another, the same list is read through /proc/PID/mem from the
 *    executable's DT_DEBUG entry (r_debug -> link_map chain);
 *  - failing that (no permission, static binary): executable first, then
 *    libraries by decreasing address (mmap hands out addresses top-down)
 *    with the dynamic loader last, as it is in the loader's list.
 */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <libelf.h>
#include <limits.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define SD_LOG_PREFIX "sym"
#include "common/log.h"
#include "sym/sym.h"

struct mod {
	struct sd_module pub;
	char *file;	  /* what to open: path, or /proc/PID/root/path */
	uint64_t low_off; /* the mapping with the lowest file offset */
	uint64_t low_start;
	uint64_t first;	   /* lowest mapped address, for ordering */
	uint64_t dyn_addr; /* runtime address of PT_DYNAMIC, 0 if none */
	uint64_t load_end; /* highest PT_LOAD end, link-time */
	long order;	   /* position in the loader's list; -1 unknown */
	bool is_interp;
	char *symtab_err; /* why the symbols could not be read */
	int symtab_errno;
};

struct sd_maps {
	pid_t pid;
	struct mod **mods;
	size_t n, cap;
};

static struct mod *mod_of(struct sd_module *m)
{
	return (struct mod *)((char *)m - offsetof(struct mod, pub));
}

static void mod_free(struct mod *m)
{
	if (!m)
		return;
	free(m->pub.path);
	free(m->file);
	free(m->symtab_err);
	sd_symtab_free(m->pub.symtab);
	free(m);
}

void sd_maps_free(struct sd_maps *maps)
{
	if (!maps)
		return;
	for (size_t i = 0; i < maps->n; i++)
		mod_free(maps->mods[i]);
	free(maps->mods);
	free(maps);
}

static int maps_add(struct sd_maps *maps, struct mod *m)
{
	if (maps->n == maps->cap) {
		size_t cap = maps->cap ? maps->cap * 2 : 32;
		struct mod **p = realloc(maps->mods, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		maps->mods = p;
		maps->cap = cap;
	}
	maps->mods[maps->n++] = m;
	return 0;
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

/*
 * the file to read for @path as process @pid sees it: the plain path when it
 * is the mapped file, else the one under /proc/PID/root (another mount
 * namespace), else whichever exists. Device and inode can differ on
 * overlayfs, so a mismatch alone does not reject a path.
 */
static char *pick_file(pid_t pid, const char *path, uint64_t dev, uint64_t ino)
{
	char root[PATH_MAX + 32];
	struct stat a, b;
	bool has_a, has_b;

	has_a = !stat(path, &a) && S_ISREG(a.st_mode);
	if (has_a && a.st_dev == dev && a.st_ino == ino)
		return strdup(path);
	if (pid) {
		snprintf(root, sizeof(root), "/proc/%d/root%s", (int)pid, path);
		has_b = !stat(root, &b) && S_ISREG(b.st_mode);
		if (has_b && (b.st_dev == dev && b.st_ino == ino))
			return strdup(root);
		if (!has_a && has_b)
			return strdup(root);
	}
	return has_a ? strdup(path) : NULL;
}

/* read the program headers of m->file: is it ELF, and where is it loaded */
static bool mod_probe_elf(struct mod *m, uint64_t pagesz)
{
	const GElf_Phdr *anchor = NULL;
	GElf_Phdr ph, *loads = NULL;
	size_t nph = 0, nload = 0, i;
	uint64_t dyn_vaddr = 0;
	bool has_dyn = false, ok = false;
	GElf_Ehdr eh;
	Elf *elf;
	int fd;

	fd = open(m->file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!elf || elf_kind(elf) != ELF_K_ELF || !gelf_getehdr(elf, &eh) ||
	    (eh.e_type != ET_EXEC && eh.e_type != ET_DYN) || elf_getphdrnum(elf, &nph))
		goto out;
	loads = calloc(nph ? nph : 1, sizeof(*loads));
	if (!loads)
		goto out;
	for (i = 0; i < nph; i++) {
		if (!gelf_getphdr(elf, (int)i, &ph))
			goto out;
		if (ph.p_type == PT_DYNAMIC) {
			has_dyn = true;
			dyn_vaddr = ph.p_vaddr;
		} else if (ph.p_type == PT_LOAD) {
			loads[nload++] = ph;
		}
	}

	/* the segment that the lowest-offset mapping maps (its first page) */
	for (i = 0; i < nload; i++) {
		uint64_t lo = loads[i].p_offset & ~(pagesz - 1);

		if (m->low_off >= lo && m->low_off < loads[i].p_offset + loads[i].p_filesz) {
			anchor = &loads[i];
			break;
		}
	}
	if (!anchor)
		goto out;
	m->pub.bias = m->low_start - m->low_off + anchor->p_offset - anchor->p_vaddr;
	for (i = 0; i < nload; i++)
		if (loads[i].p_vaddr + loads[i].p_memsz > m->load_end)
			m->load_end = loads[i].p_vaddr + loads[i].p_memsz;
	if (has_dyn)
		m->dyn_addr = m->pub.bias + dyn_vaddr;
	ok = true;
out:
	free(loads);
	if (elf)
		elf_end(elf);
	close(fd);
	return ok;
}

/*
 * The group of the file's mappings this one belongs to. A file can be
 * mapped twice (the same library in two link namespaces: dlmopen, or an
 * LD_AUDIT module's own libc): a new mapping of its start (@off 0) past
 * the latest group of that file begins another copy.
 */
static struct mod *find_group(struct sd_maps *maps, uint64_t dev, uint64_t ino, const char *path,
			      uint64_t start, uint64_t off)
{
	for (size_t i = maps->n; i > 0; i--) {
		struct mod *m = maps->mods[i - 1];

		if (m->pub.dev == dev && m->pub.ino == ino && !strcmp(m->pub.path, path))
			return off == 0 && m->low_off == 0 && start >= m->pub.end ? NULL : m;
	}
	return NULL;
}

/* one line of /proc/PID/maps into its module group */
static int parse_line(struct sd_maps *maps, char *line)
{
	unsigned long long start, end, off, ino;
	unsigned int major, minor;
	char perms[8];
	int pos = 0;
	size_t len;
	char *path;
	struct mod *m;
	uint64_t dev;

	if (sscanf(line, "%llx-%llx %7s %llx %x:%x %llu %n", &start, &end, perms, &off, &major,
		   &minor, &ino, &pos) < 7 ||
	    !pos)
		return 0;
	path = line + pos;
	len = strlen(path);
	while (len && (path[len - 1] == '\n' || path[len - 1] == ' '))
		path[--len] = '\0';
	if (!ino || path[0] != '/')
		return 0;
	if (len > 10 && !strcmp(path + len - 10, " (deleted)"))
		return 0;

	dev = makedev(major, minor);
	m = find_group(maps, dev, ino, path, start, off);
	if (!m) {
		m = calloc(1, sizeof(*m));
		if (!m || !(m->pub.path = strdup(path))) {
			free(m);
			return -ENOMEM;
		}
		m->pub.name = base_name(m->pub.path);
		m->pub.dev = dev;
		m->pub.ino = ino;
		m->pub.start = start;
		m->pub.end = end;
		m->first = start;
		m->low_off = off;
		m->low_start = start;
		m->order = -1;
		if (maps_add(maps, m)) {
			mod_free(m);
			return -ENOMEM;
		}
		return 0;
	}
	if (start < m->pub.start)
		m->pub.start = start;
	if (end > m->pub.end)
		m->pub.end = end;
	if (off < m->low_off || (off == m->low_off && start < m->low_start)) {
		m->low_off = off;
		m->low_start = start;
	}
	return 0;
}

/* the executable's path as /proc shows it, without " (deleted)" */
static void exe_path(pid_t pid, char *buf, size_t len)
{
	char link[64];
	ssize_t n;

	snprintf(link, sizeof(link), pid ? "/proc/%d/exe" : "/proc/self/exe", (int)pid);
	n = readlink(link, buf, len - 1);
	if (n < 0)
		n = 0;
	buf[n] = '\0';
	if (n > 10 && !strcmp(buf + n - 10, " (deleted)"))
		buf[n - 10] = '\0';
}

/* the PT_INTERP string of the executable (the dynamic loader) */
static void interp_path(const char *file, char *buf, size_t len)
{
	size_t nph, i;
	Elf *elf;
	int fd;

	buf[0] = '\0';
	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (elf && !elf_getphdrnum(elf, &nph)) {
		for (i = 0; i < nph; i++) {
			GElf_Phdr ph;
			size_t sz;
			char *raw;

			if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_INTERP)
				continue;
			raw = elf_rawfile(elf, &sz);
			if (raw && ph.p_offset < sz && ph.p_filesz && ph.p_filesz < len &&
			    ph.p_filesz <= sz - ph.p_offset) {
				memcpy(buf, raw + ph.p_offset, ph.p_filesz);
				buf[ph.p_filesz - 1] = '\0';
			}
			break;
		}
	}
	if (elf)
		elf_end(elf);
	close(fd);
}

static struct mod *mod_containing(struct sd_maps *maps, uint64_t addr)
{
	for (size_t i = 0; i < maps->n; i++) {
		struct mod *m = maps->mods[i];

		if (addr >= m->pub.start && addr < m->pub.end)
			return m;
	}
	return NULL;
}

struct dl_ctx {
	struct sd_maps *maps;
	long next;
};

static int dl_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct dl_ctx *ctx = arg;
	struct mod *m = NULL;

	for (int i = 0; i < info->dlpi_phnum && !m; i++)
		if (info->dlpi_phdr[i].p_type == PT_LOAD)
			m = mod_containing(ctx->maps, info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
	if (!m || m->order >= 0)
		return 0;
	if (m->pub.bias != info->dlpi_addr)
		sd_dbg("%s: bias 0x%" PRIx64 " from maps, 0x%" PRIx64 " from the loader",
		       m->pub.path, m->pub.bias, (uint64_t)info->dlpi_addr);
	m->pub.bias = info->dlpi_addr;
	m->order = ctx->next++;
	return 0;
}

static int mem_read(int fd, uint64_t addr, void *buf, size_t len)
{
	ssize_t n = pread(fd, buf, len, (off_t)addr);

	return n == (ssize_t)len ? 0 : -EIO;
}

/*
 * the loader's list of process @pid: DT_DEBUG of the executable points at
 * struct r_debug, whose r_map heads the link_map chain. Assumes a target of
 * our own word size, and matches each entry to a module by its l_ld.
 */
static int order_from_link_map(struct sd_maps *maps, struct mod *exe)
{
	char path[64];
	uint64_t rdebug = 0, lm;
	long next = 0;
	int fd, err = -ENOENT;

	if (!exe || !exe->dyn_addr)
		return -ENOENT;
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)maps->pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (int i = 0; i < 512; i++) {
		ElfW(Dyn) d;

		if (mem_read(fd, exe->dyn_addr + i * sizeof(d), &d, sizeof(d)) ||
		    d.d_tag == DT_NULL)
			break;
		if (d.d_tag == DT_DEBUG) {
			rdebug = d.d_un.d_ptr;
			break;
		}
	}
	if (!rdebug || mem_read(fd, rdebug + offsetof(struct r_debug, r_map), &lm, sizeof(lm)))
		goto out;
	for (int i = 0; lm && i < 4096; i++) {
		struct link_map l;
		struct mod *m;

		if (mem_read(fd, lm, &l, sizeof(l)))
			break;
		m = mod_containing(maps, (uint64_t)(uintptr_t)l.l_ld);
		if (m && m->order < 0) {
			m->pub.bias = l.l_addr;
			m->order = next++;
		}
		lm = (uint64_t)(uintptr_t)l.l_next;
	}
	err = next ? 0 : -ENOENT;
out:
	close(fd);
	return err;
}

static int cmp_mod(const void *a, const void *b)
{
	const struct mod *x = *(struct mod *const *)a, *y = *(struct mod *const *)b;

	if (x->pub.is_main != y->pub.is_main)
		return y->pub.is_main - x->pub.is_main;
	/* known loader positions first, in that order */
	if ((x->order >= 0) != (y->order >= 0))
		return x->order >= 0 ? -1 : 1;
	if (x->order >= 0)
		return x->order < y->order ? -1 : x->order > y->order;
	if (x->is_interp != y->is_interp)
		return x->is_interp - y->is_interp;
	return x->first > y->first ? -1 : x->first < y->first;
}

int sd_maps_read(pid_t pid, struct sd_maps **out)
{
	char path[64], exe[PATH_MAX], interp[PATH_MAX];
	uint64_t pagesz = (uint64_t)sysconf(_SC_PAGESIZE);
	struct sd_maps *maps;
	struct mod *main_mod = NULL;
	char *line = NULL;
	size_t cap = 0, i, kept;
	FILE *f;
	int err = 0;

	*out = NULL;
	/* libelf wants its version set before any use; harmless to repeat */
	if (elf_version(EV_CURRENT) == EV_NONE)
		return sd_error(-ENOSYS, "libelf: version mismatch");
	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	else
		snprintf(path, sizeof(path), "/proc/self/maps");
	f = fopen(path, "re");
	if (!f) {
		err = -errno;
		if (err == -ENOENT && pid)
			return sd_error(-ESRCH, "pid %d: no such process", (int)pid);
		if (pid)
			return sd_error(err, "pid %d: cannot read %s: %s", (int)pid, path,
					strerror(-err));
		return sd_error(err, "%s: %s", path, strerror(-err));
	}
	maps = calloc(1, sizeof(*maps));
	if (!maps) {
		fclose(f);
		return sd_error(-ENOMEM, "out of memory");
	}
	maps->pid = pid;
	errno = 0;
	while (getline(&line, &cap, f) > 0) {
		err = parse_line(maps, line);
		if (err)
			break;
	}
	if (!err && ferror(f))
		err = -(errno ? errno : EIO);
	free(line);
	fclose(f);
	if (err) {
		sd_maps_free(maps);
		return sd_error(err, "%s: %s", path, strerror(-err));
	}

	/* keep the ELF objects, drop everything else without a word */
	for (i = kept = 0; i < maps->n; i++) {
		struct mod *m = maps->mods[i];

		m->file = pick_file(pid, m->pub.path, m->pub.dev, m->pub.ino);
		if (!m->file || !mod_probe_elf(m, pagesz)) {
			mod_free(m);
			continue;
		}
		if (m->load_end) {
			uint64_t e = (m->pub.bias + m->load_end + pagesz - 1) & ~(pagesz - 1);

			if (e > m->pub.end && e - m->pub.end < (1ull << 32))
				m->pub.end = e;
		}
		maps->mods[kept++] = m;
	}
	maps->n = kept;

	exe_path(pid, exe, sizeof(exe));
	for (i = 0; i < maps->n && !main_mod; i++)
		if (!strcmp(maps->mods[i]->pub.path, exe))
			main_mod = maps->mods[i];
	if (!main_mod && exe[0]) {
		struct stat sb;

		snprintf(path, sizeof(path), pid ? "/proc/%d/exe" : "/proc/self/exe", (int)pid);
		for (i = 0; i < maps->n && !main_mod && !stat(path, &sb); i++)
			if (maps->mods[i]->pub.dev == sb.st_dev &&
			    maps->mods[i]->pub.ino == sb.st_ino)
				main_mod = maps->mods[i];
	}
	if (main_mod) {
		main_mod->pub.is_main = true;
		interp_path(main_mod->file, interp, sizeof(interp));
		for (i = 0; i < maps->n && interp[0]; i++) {
			struct mod *m = maps->mods[i];

			if (!strcmp(m->pub.path, interp) || !strcmp(m->pub.name, base_name(interp)))
				m->is_interp = true;
		}
	}

	if (!pid) {
		struct dl_ctx ctx = {.maps = maps};

		dl_iterate_phdr(dl_cb, &ctx);
	} else if (order_from_link_map(maps, main_mod)) {
		/* no access to the memory: the heuristic order of cmp_mod */
		for (i = 0; i < maps->n; i++)
			maps->mods[i]->order = -1;
	}
	qsort(maps->mods, maps->n, sizeof(*maps->mods), cmp_mod);
	*out = maps;
	return 0;
}

size_t sd_maps_count(const struct sd_maps *maps)
{
	return maps->n;
}

struct sd_module *sd_maps_at(struct sd_maps *maps, size_t i)
{
	return i < maps->n ? &maps->mods[i]->pub : NULL;
}

struct sd_module *sd_maps_find_addr(struct sd_maps *maps, uint64_t addr)
{
	struct mod *m = mod_containing(maps, addr);

	return m ? &m->pub : NULL;
}

/* "libc" names libc.so.6 and libc-2.31.so, not libcrypt.so.1 */
static bool prefix_match(const char *base, const char *name)
{
	size_t n = strlen(name);

	return n && !strncmp(base, name, n) && (base[n] == '.' || base[n] == '-');
}

struct sd_module *sd_maps_find_file(struct sd_maps *maps, const char *path)
{
	struct stat st;

	if (!path || stat(path, &st))
		return NULL;
	for (size_t i = 0; i < maps->n; i++) {
		struct sd_module *m = &maps->mods[i]->pub;

		/* the path too: a device number maps can show otherwise (overlayfs) */
		if (m->ino == st.st_ino && (m->dev == st.st_dev || !strcmp(m->path, path)))
			return m;
	}
	return NULL;
}

struct sd_module *sd_maps_find_module(struct sd_maps *maps, const char *name)
{
	size_t i;

	if (!name || !*name)
		return NULL;
	for (i = 0; i < maps->n; i++)
		if (!strcmp(maps->mods[i]->pub.path, name))
			return &maps->mods[i]->pub;
	for (i = 0; i < maps->n; i++)
		if (!strcmp(maps->mods[i]->pub.name, name))
			return &maps->mods[i]->pub;
	for (i = 0; i < maps->n; i++)
		if (prefix_match(maps->mods[i]->pub.name, name))
			return &maps->mods[i]->pub;
	return NULL;
}

struct sd_symtab *sd_module_symtab(struct sd_module *mod)
{
	struct mod *m = mod_of(mod);
	int err;

	if (mod->symtab)
		return mod->symtab;
	if (m->symtab_err) {
		/* failed before: say so again without rereading the file */
		sd_error(m->symtab_errno, "%s", m->symtab_err);
		return NULL;
	}
	err = sd_symtab_open(m->file, &mod->symtab);
	if (err) {
		m->symtab_err = strdup(sonde_last_error());
		m->symtab_errno = err;
		return NULL;
	}
	return mod->symtab;
}

static int count_loads(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	*(unsigned long long *)arg = info->dlpi_adds + info->dlpi_subs;
	return 1; /* the counters are the same in every entry */
}

unsigned long long sd_dl_loads(void)
{
	unsigned long long n = 0;

	dl_iterate_phdr(count_loads, &n);
	return n;
}
