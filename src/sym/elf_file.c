// SPDX-License-Identifier: MIT
/*
 * elf_file.c - opening an ELF file for libelf, and its loadable segments.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "sym/elf_file.h"

static pthread_once_t elf_once = PTHREAD_ONCE_INIT;
static bool elf_ok;

static void elf_init(void)
{
	elf_ok = elf_version(EV_CURRENT) != EV_NONE;
}

int sd_elf_open(const char *path, int *fdp, Elf **elfp)
{
	struct stat sb;
	Elf *elf;
	int fd, err;

	*fdp = -1;
	*elfp = NULL;
	pthread_once(&elf_once, elf_init);
	if (!elf_ok)
		return sd_error(-ENOSYS, "libelf: version mismatch");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return sd_error(-errno, "%s: %s", path, strerror(errno));
	if (fstat(fd, &sb)) {
		err = sd_error(-errno, "%s: %s", path, strerror(errno));
		close(fd);
		return err;
	}
	if (!S_ISREG(sb.st_mode)) {
		err = S_ISDIR(sb.st_mode) ? -EISDIR : -ENOEXEC;
		close(fd);
		return sd_error(err, "%s: %s", path,
				err == -EISDIR ? strerror(EISDIR) : "not a regular file");
	}
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!elf) {
		close(fd);
		return sd_error(-ENOEXEC, "%s: not an ELF file (%s)", path, elf_errmsg(-1));
	}
	*fdp = fd;
	*elfp = elf;
	return 0;
}

void sd_elf_close(int fd, Elf *elf)
{
	if (elf)
		elf_end(elf);
	if (fd >= 0)
		close(fd);
}

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
