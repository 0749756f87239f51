// SPDX-License-Identifier: MIT
/*
 * symbolize.c - "func+0x1c/0x80" for an address of a process, for printing
 * (the kernel's %pS), in this process or another one.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "sym/sym.h"
#include "trace/symbolize.h"

struct sd_symbolizer {
	pid_t pid;
	struct sd_maps *maps;
	int64_t refreshed_ms;	  /* CLOCK_MONOTONIC */
	unsigned long long loads; /* this process: sd_dl_loads() when the maps were read */
};

/* an address in no object: the maps are read again, at most this often */
#define REFRESH_MS 20

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int sd_symbolizer_new(pid_t pid, struct sd_symbolizer **out)
{
	struct sd_symbolizer *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->pid = pid;
	*out = s;
	return 0;
}

void sd_symbolizer_free(struct sd_symbolizer *s)
{
	if (!s)
		return;
	sd_maps_free(s->maps);
	free(s);
}

static struct sd_module *find(struct sd_symbolizer *s, uint64_t addr)
{
	struct sd_module *m = s->maps ? sd_maps_find_addr(s->maps, addr) : NULL;
	int64_t now;

	if (m)
		return m;
	/* a library loaded since: look again, but not more than every REFRESH_MS */
	now = now_ms();
	if (s->maps && now - s->refreshed_ms < REFRESH_MS)
		return NULL;
	s->refreshed_ms = now;
	{
		struct sd_maps *fresh;

		if (!s->pid)
			s->loads = sd_dl_loads();
		if (sd_maps_read(s->pid, &fresh))
			return NULL;
		sd_maps_free(s->maps);
		s->maps = fresh;
	}
	return sd_maps_find_addr(s->maps, addr);
}

void sd_symbolizer_sync(struct sd_symbolizer *s)
{
	if (s && !s->pid && s->maps && sd_dl_loads() != s->loads) {
		sd_maps_free(s->maps);
		s->maps = NULL;
	}
}

int sd_symbolize(void *arg, uint64_t addr, char *buf, size_t len)
{
	struct sd_symbolizer *s = arg;
	struct sd_module *m = find(s, addr);
	const struct sd_sym *sym;
	uint64_t off;
	int n;

	if (!m || !sd_module_symtab(m))
		return -1;
	sym = sd_symtab_find_addr(m->symtab, addr - m->bias, &off);
	if (!sym)
		return -1;
	n = snprintf(buf, len, "%s+0x%lx/0x%lx", sym->name, (unsigned long)off,
		     (unsigned long)sym->size);
	return n < 0 || (size_t)n >= len ? -1 : n;
}

struct sd_maps *sd_symbolizer_maps(struct sd_symbolizer *s)
{
	if (!s->maps)
		find(s, 0);
	return s->maps;
}
