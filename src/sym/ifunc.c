// SPDX-License-Identifier: MIT
/*
 * ifunc.c - where the IFUNCs of an ELF file lead, when this process has
 * the same file loaded.
 *
 * An IFUNC symbol's value is its resolver, which the dynamic linker runs
 * once; the calls go to the implementation it returned (libc's strlen,
 * memcpy: __strlen_evex…), a local function that a stripped library has
 * no symbol for. The dynamic linker's choice depends on the CPU and the
 * process's tunables only, so a file loaded here resolves as it does in
 * any process of this machine started alike: dlsym() asks, the size comes
 * from the implementation's .eh_frame entry (what bounds a function when
 * no symbol does).
 */
#include <dlfcn.h>
#include <elfutils/libdw.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sym/ifunc.h"

struct same_file {
	dev_t dev;
	ino_t ino;
	bool found, is_main;
	uint64_t bias, start, end;
	char name[4096];
};

static int find_loaded(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct same_file *f = arg;
	const char *name = info->dlpi_name && *info->dlpi_name ? info->dlpi_name : NULL;
	struct stat st;

	(void)size;
	/* the first entry without a name is the executable; vdso has one */
	if (stat(name ? name : "/proc/self/exe", &st) || st.st_dev != f->dev || st.st_ino != f->ino)
		return 0;
	f->found = true;
	f->is_main = !name;
	f->bias = info->dlpi_addr;
	f->start = UINT64_MAX;
	f->end = 0;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];

		if (ph->p_type != PT_LOAD)
			continue;
		if (info->dlpi_addr + ph->p_vaddr < f->start)
			f->start = info->dlpi_addr + ph->p_vaddr;
		if (info->dlpi_addr + ph->p_vaddr + ph->p_memsz > f->end)
			f->end = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
	}
	snprintf(f->name, sizeof(f->name), "%s", name ? name : "");
	return 1;
}

/* the .eh_frame entry that starts at @vaddr: the function's extent */
static uint64_t cfi_size(Dwarf_CFI *cfi, uint64_t vaddr)
{
	Dwarf_Frame *frame;
	Dwarf_Addr start, end;
	uint64_t size = 0;

	if (!cfi || dwarf_cfi_addrframe(cfi, vaddr, &frame))
		return 0;
	if (dwarf_frame_info(frame, &start, &end, NULL) >= 0 && start == vaddr && end > start)
		size = end - start;
	free(frame);
	return size;
}

int sd_ifunc_resolve_file(const char *path, Elf *elf, struct sd_ifunc *v, size_t n)
{
	struct same_file f = {0};
	struct stat st;
	Dwarf_CFI *cfi;
	void *h;
	int found = 0;

	if (!n || stat(path, &st))
		return 0;
	f.dev = st.st_dev;
	f.ino = st.st_ino;
	dl_iterate_phdr(find_loaded, &f);
	if (!f.found)
		return 0;
	h = dlopen(f.is_main ? NULL : f.name, RTLD_LAZY | RTLD_NOLOAD);
	if (!h)
		return 0;
	cfi = dwarf_getcfi_elf(elf);
	for (size_t i = 0; i < n; i++) {
		uint64_t impl = (uint64_t)(uintptr_t)dlsym(h, v[i].name);

		v[i].impl = 0;
		v[i].size = 0;
		if (impl < f.start || impl >= f.end)
			continue; /* not found, or defined by another object */
		v[i].impl = impl - f.bias;
		v[i].size = cfi_size(cfi, v[i].impl);
		found++;
	}
	if (cfi)
		dwarf_cfi_end(cfi);
	dlclose(h);
	return found;
}
