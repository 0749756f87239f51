/* SPDX-License-Identifier: MIT */
/*
 * elf_segs.h - the loadable segments of an ELF file (PT_LOAD program
 * headers), for turning link-time addresses into file offsets and back.
 */
#ifndef SD_SYM_ELF_SEGS_H
#define SD_SYM_ELF_SEGS_H

#include <gelf.h>
#include <stddef.h>
#include <stdint.h>

struct sd_elf_seg {
	uint64_t vaddr, memsz, offset, filesz;
	uint32_t flags; /* PF_* */
};

/*
 * sd_elf_read_segs - the PT_LOAD segments of @elf (@path names it in
 * errors), in file order, into a calloc'ed *@segs of *@n; 0 or a negative
 * errno with sonde_last_error() set
 */
int sd_elf_read_segs(Elf *elf, const char *path, struct sd_elf_seg **segs, size_t *n);

#endif
