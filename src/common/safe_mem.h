/* SPDX-License-Identifier: MIT */
/*
 * safe_mem.h - read or write memory of this process that may not be mapped.
 *
 * Probes read target memory (fetch args, other threads' state) that a bad
 * pointer can make unmapped; these calls report -EFAULT instead of faulting.
 * Async-signal-safe: no libc.
 */
#ifndef SD_SAFE_MEM_H
#define SD_SAFE_MEM_H

#include <stddef.h>

int sd_safe_read(void *dst, const void *src, size_t len);
int sd_safe_write(void *dst, const void *src, size_t len);
/* copies a NUL-terminated string of at most @max bytes (NUL included);
 * returns its length without the NUL, or -EFAULT */
long sd_safe_read_str(char *dst, const char *src, size_t max);

#endif
