/* SPDX-License-Identifier: MIT */
/*
 * xol.h - executable slots for out-of-line copies and detours, allocated
 * near the code they stand in for (+-1 GiB), so that rip-relative operands
 * and rel32 jumps reach from one to the other.
 */
#ifndef SD_PROBE_XOL_H
#define SD_PROBE_XOL_H

#include <stddef.h>
#include <stdint.h>

#define SD_XOL_NEAR (1UL << 30)

/* a slot of SD_XOL_SLOT_SIZE bytes within SD_XOL_NEAR of @near, or NULL */
void *sd_xol_alloc(uint64_t near);
/* the caller has made sure no thread can be running it (sd_sync_threads) */
void sd_xol_free(void *slot);
/* @n consecutive slots (a detour), and their release */
void *sd_xol_alloc_n(uint64_t near, unsigned int n);
void sd_xol_free_n(void *slot, unsigned int n);
/* @len bytes within reach of @near, never freed (code a thread may be in unmarked) */
void *sd_xol_alloc_permanent(uint64_t near, size_t len);
/* the slots' way out (sd_arch_xol_exit_stub), made once; 0 if it cannot be */
uint64_t sd_xol_exit_stub(void);
/* number of slots in use, and pages mapped (for tests and detach checks) */
void sd_xol_stats(size_t *slots, size_t *pages);

#endif
