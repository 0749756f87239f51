/* SPDX-License-Identifier: MIT */
/*
 * elf_file.h - what every reader of an ELF file (symbols, USDT notes)
 * needs first: the file opened for libelf, and its loadable segments
 * (PT_LOAD program headers), for turning link-time addresses into file
 * offsets and back.
 */
#ifndef SD_SYM_ELF_FILE_H
#define SD_SYM_ELF_FILE_H

#include <gelf.h>
#include <stddef.h>
#include <stdint.h>

/*
 * sd_elf_open - @path opened for reading with libelf: a regular file, an
 * ELF one. 0 with *@fd and *@elf (give both to sd_elf_close), or a
 * negative errno with sonde_last_error() naming the file and the reason.
 */
int sd_elf_open(const char *path, int *fd, Elf **elf);
void sd_elf_close(int fd, Elf *elf);

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
