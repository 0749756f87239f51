/* SPDX-License-Identifier: MIT */
/* kretprobe.h - what the rest of the engine needs from kretprobe.c and unwind.c. */
#ifndef SD_PROBE_KRETPROBE_H
#define SD_PROBE_KRETPROBE_H

#include <stdint.h>

/* as the kernel's KRETPROBE_MAXACTIVE_MAX */
#define SD_KRETPROBE_MAXACTIVE_MAX 4096

struct sd_shadow;

/* frames on the calling thread's shadow stack (tests) */
unsigned int sd_shadow_depth(void);

/*
 * Exceptions: put every hooked return address of this thread back on the
 * stack (the unwinder must see real ones), and hook again the frames still
 * live at @sp once the exception is caught.
 */
void sd_shadow_unhook_all(void);
void sd_shadow_rehook(uint64_t sp);

/* internal probes on the unwinder while any kretprobe exists (unwind.c) */
void sd_unwind_hooks_get(void);
void sd_unwind_hooks_put(void);

/* free pools of unregistered kretprobes whose last instance came back */
void sd_kretprobe_reap(void);
/* instance pools allocated and not freed yet (tests) */
unsigned long sd_kretprobe_pools(void);

#endif
