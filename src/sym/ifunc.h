/* SPDX-License-Identifier: MIT */
/* ifunc.h - the implementations the IFUNCs of a file resolve to (ifunc.c). */
#ifndef SD_SYM_IFUNC_H
#define SD_SYM_IFUNC_H

#include <gelf.h>
#include <stddef.h>
#include <stdint.h>

struct sd_ifunc {
	const char *name; /* in: the IFUNC symbol's name */
	uint64_t impl;	  /* out: its implementation's address in the file, 0: unknown */
	uint64_t size;	  /* out: the implementation's size (.eh_frame), 0: unknown */
};

/*
 * sd_ifunc_resolve_file - fill @v[0..@n) for the ELF file at @path (open as
 * @elf), when this process has that same file loaded; returns how many
 * were resolved (0 when the file is not loaded here).
 */
int sd_ifunc_resolve_file(const char *path, Elf *elf, struct sd_ifunc *v, size_t n);

#endif
