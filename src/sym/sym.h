/* SPDX-License-Identifier: MIT */
/*
 * sym.h - symbols of ELF files and of the objects loaded in a process.
 *
 * Two layers:
 *  - struct sd_symtab: the function and data symbols of one ELF file, from
 *    .symtab and .dynsym merged (a stripped library still has .dynsym),
 *    addresses as link-time virtual addresses of that file;
 *  - struct sd_maps: the objects mapped in a process (this one, or another
 *    pid through /proc), each with its load bias, so that
 *    runtime address = bias + symbol value.
 *
 * Invariants: symbol arrays are sorted by address; names are owned by the
 * table; nothing here is used from a signal handler.
 */
#ifndef SD_SYM_H
#define SD_SYM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum sd_sym_type {
	SD_SYM_FUNC = 1,
	SD_SYM_IFUNC, /* STT_GNU_IFUNC: value is the resolver */
	SD_SYM_OBJECT,
	SD_SYM_OTHER,
};

enum sd_sym_bind {
	SD_SYM_LOCAL = 0,
	SD_SYM_GLOBAL,
	SD_SYM_WEAK,
};

struct sd_sym {
	const char *name; /* without any @VERSION suffix */
	uint64_t value;	  /* link-time virtual address in the file */
	uint64_t size;
	uint8_t type; /* enum sd_sym_type */
	uint8_t bind; /* enum sd_sym_bind */
	bool dynamic; /* found in .dynsym (exported) */
	/*
	 * not in the file: the implementation the IFUNC of this name resolved
	 * to in this process (size from .eh_frame, 0 when unknown; bind that
	 * of the IFUNC)
	 */
	bool resolved;
};

struct sd_symtab;

/*
 * sd_symtab_open - read the symbols of the ELF file at @path.
 * Returns 0 and *out, or a negative errno with sonde_last_error() naming the
 * file and what is wrong with it (not an ELF file, truncated, no symbols…).
 */
int sd_symtab_open(const char *path, struct sd_symtab **out);
void sd_symtab_free(struct sd_symtab *st);

size_t sd_symtab_count(const struct sd_symtab *st);
const struct sd_sym *sd_symtab_at(const struct sd_symtab *st, size_t i);

/* first symbol named @name: a global or weak one before a local one */
const struct sd_sym *sd_symtab_lookup(const struct sd_symtab *st, const char *name);
/* every symbol named @name (locals can repeat); returns how many, fills up to @max */
size_t sd_symtab_lookup_all(const struct sd_symtab *st, const char *name, const struct sd_sym **out,
			    size_t max);
/* the function or object symbol containing link-time address @vaddr; *off = vaddr - value */
const struct sd_sym *sd_symtab_find_addr(const struct sd_symtab *st, uint64_t vaddr, uint64_t *off);

/* ELF facts used to map file offsets and addresses (uprobe_events PATH:OFFSET) */
bool sd_symtab_is_pie(const struct sd_symtab *st); /* ET_DYN */
int sd_symtab_vaddr_to_offset(const struct sd_symtab *st, uint64_t vaddr, uint64_t *offset);
int sd_symtab_offset_to_vaddr(const struct sd_symtab *st, uint64_t offset, uint64_t *vaddr);
/* true when @vaddr lies in an executable PT_LOAD segment */
bool sd_symtab_vaddr_is_exec(const struct sd_symtab *st, uint64_t vaddr);
const char *sd_symtab_path(const struct sd_symtab *st);

/* ------------------------------------------------------------------------- */

struct sd_module {
	char *path;	  /* as in /proc/PID/maps ("/usr/lib/x86_64-linux-gnu/libc.so.6") */
	const char *name; /* basename of path ("libc.so.6") */
	uint64_t bias;	  /* runtime address - link-time address */
	uint64_t start;	  /* lowest and highest mapped addresses of the object */
	uint64_t end;
	uint64_t dev, ino;
	bool is_main;		  /* the process's executable */
	struct sd_symtab *symtab; /* read on first use; may stay NULL if unreadable */
};

struct sd_maps;

/*
 * sd_dl_loads - how many objects this process's dynamic linker has loaded
 * and unloaded so far: a change says the maps are worth reading again
 */
unsigned long long sd_dl_loads(void);

/*
 * sd_maps_read - the ELF objects mapped in process @pid (0: this process),
 * from /proc/PID/maps, in load order (the executable first).
 */
int sd_maps_read(pid_t pid, struct sd_maps **out);
void sd_maps_free(struct sd_maps *maps);

size_t sd_maps_count(const struct sd_maps *maps);
struct sd_module *sd_maps_at(struct sd_maps *maps, size_t i);
/* the module whose mapping contains runtime address @addr */
struct sd_module *sd_maps_find_addr(struct sd_maps *maps, uint64_t addr);
/*
 * the module named @name: an exact path, a basename ("libc.so.6"), or a
 * basename prefix up to a '.' or '-' ("libc" matches libc.so.6, not
 * libcrypt.so.1)
 */
struct sd_module *sd_maps_find_module(struct sd_maps *maps, const char *name);
/* the module mapped from the file @path (the same device and inode), or NULL */
struct sd_module *sd_maps_find_file(struct sd_maps *maps, const char *path);
/* the module's symbols, read on first call (NULL with last error set if unreadable) */
struct sd_symtab *sd_module_symtab(struct sd_module *mod);

struct sd_resolved {
	uint64_t addr;		  /* runtime address */
	struct sd_module *mod;	  /* where it is */
	const struct sd_sym *sym; /* containing symbol, NULL for a raw address outside any */
	uint64_t offset;	  /* addr - (bias + sym->value) */
};

/*
 * sd_resolve - a probe location to a runtime address:
 *   SYM, SYM+OFFS, SYM-OFFS, OBJ:SYM[+OFFS], 0xADDR
 * SYM is looked up in the executable, then every library in load order; a
 * global definition wins over locals, the first global in load order wins
 * (as the dynamic linker binds); several local-only definitions are
 * ambiguous and refused. Errors (-ENOENT no such symbol / object, -EINVAL
 * malformed, -ENOTUNIQ ambiguous) explain themselves in sonde_last_error().
 */
int sd_resolve(struct sd_maps *maps, const char *spec, struct sd_resolved *out);

/* "sym+0x1c" for a runtime address, or "0x7f…" when no symbol contains it */
int sd_maps_format_addr(struct sd_maps *maps, uint64_t addr, char *buf, size_t len);

#endif
