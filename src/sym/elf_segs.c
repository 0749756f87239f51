// SPDX-License-Identifier: MIT
/*
 * elf_segs.c - the loadable segments of an ELF file.
 */
#include <errno.h>
#include <stdlib.h>

#include "common/log.h"
#include "sym/elf_segs.h"

int sd_elf_read_segs(Elf *elf, const char *path, struct sd_elf_seg **segs, size_t *n)
{
	struct sd_elf_seg *v;
	size_t nph;

	*segs = NULL;
	*n = 0;
	if (elf_getphdrnum(elf, &nph))
		return sd_error(-ENOEXEC, "%s: cannot read program headers: %s", path,
				elf_errmsg(-1));
	v = calloc(nph ? nph : 1, sizeof(*v));
	if (!v)
		return sd_error(-ENOMEM, "%s: out of memory", path);
	*segs = v;
	for (size_t i = 0; i < nph; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(elf, (int)i, &ph))
			return sd_error(-ENOEXEC, "%s: program header %zu is truncated", path, i);
		if (ph.p_type != PT_LOAD)
			continue;
		v[(*n)++] = (struct sd_elf_seg){
		    .vaddr = ph.p_vaddr,
		    .memsz = ph.p_memsz,
		    .offset = ph.p_offset,
		    .filesz = ph.p_filesz,
		    .flags = ph.p_flags,
		};
	}
	return 0;
}
