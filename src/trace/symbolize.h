/* SPDX-License-Identifier: MIT */
/* symbolize.h - addresses of a process to "func+off/size", for printing. */
#ifndef SD_TRACE_SYMBOLIZE_H
#define SD_TRACE_SYMBOLIZE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct sd_symbolizer;
struct sd_maps;

/* for process @pid (0: this one); its maps are read again when an address misses */
int sd_symbolizer_new(pid_t pid, struct sd_symbolizer **out);
void sd_symbolizer_free(struct sd_symbolizer *s);
/* an sd_symbolize_fn (event.h) with @arg the symbolizer; not signal-safe */
int sd_symbolize(void *arg, uint64_t addr, char *buf, size_t len);
struct sd_maps *sd_symbolizer_maps(struct sd_symbolizer *s);
/*
 * This process: if an object was loaded or unloaded since the maps were
 * read, read them again at the next address (one closed and another
 * opened at its address would be named by the first one's symbols)
 */
void sd_symbolizer_sync(struct sd_symbolizer *s);

#endif
