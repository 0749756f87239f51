/* SPDX-License-Identifier: MIT */
/*
 * tracepoint.h - the runtime side of <sonde/tracepoint.h>: static
 * tracepoints of the objects loaded in this process, as trace events.
 *
 * An object built with tracepoints carries a __sonde_tracepoints section
 * (struct sonde_tracepoint per event) and a __sonde_jump_table section
 * (struct sonde_jump_entry per call site). The runtime finds both through
 * the object's section headers (its file), reads them in memory, registers
 * one sd_event per system:name, and points each descriptor's rt at its
 * reserve/commit functions. Enabling an event raises its static key in
 * every object that has it; the first reference patches the key's sites
 * from a 5-byte nop into a jmp (sd_text_poke_batch), the last puts the
 * nops back.
 *
 * Objects come and go: sd_tracepoint_refresh() compares the loaded objects
 * (dl_iterate_phdr) with those it knows, registers the new and removes the
 * events of the gone. The agent calls it at start and before each request;
 * libsonde's dlopen()/dlclose() (dlhook.c) have it called as soon as an
 * object is loaded or unloaded, before they return.
 *
 * Memory of an object is only read or patched from inside a
 * dl_iterate_phdr() callback that has found the object still loaded (the
 * dynamic linker cannot unmap it meanwhile). Everything here runs under
 * sd_trace_lock(), except the reserve/commit path (any thread, lock-free,
 * signal-safe).
 */
#ifndef SD_TRACEPOINT_TRACEPOINT_H
#define SD_TRACEPOINT_TRACEPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "trace/event.h"

/* start: every object loaded now, and from now on those loaded later */
int sd_tracepoint_init(void);
/* pick up objects loaded or unloaded since the last look; takes the trace lock */
void sd_tracepoint_refresh(void);
/* the same, the caller holding sd_trace_lock() */
void sd_tracepoint_refresh_locked(void);
/*
 * dlhook.c: start the thread that registers what libsonde's dlopen() loads
 * (when the program's dlopen() is libsonde's); sd_tracepoint_init() calls it
 */
void sd_dlhook_start(void);
/*
 * dlhook.c: after the dynamic linker loaded or unloaded objects, everything
 * that follows them: probes in what was unloaded forgotten (first, before
 * anything writes code again), then the tracepoints, the uprobes waiting
 * for a file and the function tracers' sites of what was loaded
 */
void sd_dlhook_objects_changed(void);

/*
 * the agent, before each request, after sd_dlhook_objects_changed() (which
 * refreshes them): start on first call (sd_tracepoint_init); takes the
 * trace lock
 */
void sd_tracepoint_update(void);

/* whether @ev is a static tracepoint's event */
bool sd_tracepoint_event(const struct sd_event *ev);
/*
 * @ev's format file for the sonde command (the agent's EVENTS answer): one
 * "F <line>" per line of the text (the command renders records from it).
 */
void sd_tracepoint_describe(FILE *out, const struct sd_event *ev);
/*
 * The same for events gone with their object (dlclose): records of theirs
 * may still wait in the ring for the command to print them (ids are never
 * reused). The newest SD_TRACEPOINT_RETIRED_MAX are kept.
 */
#define SD_TRACEPOINT_RETIRED_MAX 256
void sd_tracepoint_describe_retired(FILE *out);

/*
 * Static key references besides the event's own enable (the kernel's
 * tracepoint_probe_register users: a BPF program, a hist trigger…): the
 * sites are jumps while any reference is held. Under sd_trace_lock().
 */
int sd_tracepoint_get(struct sd_event *ev);
void sd_tracepoint_put(struct sd_event *ev);

/* the call sites of @ev in every object (for tests); returns how many, fills up to @max */
int sd_tracepoint_sites(const struct sd_event *ev, uint64_t *addrs, int max);

/* ---- jump_label.c ---------------------------------------------------------------------- */

struct sd_jump_site {
	uint64_t addr;	 /* the 5 bytes */
	uint64_t target; /* where the jump goes */
};

#define SD_JUMP_LEN 5
extern const uint8_t sd_jump_nop[SD_JUMP_LEN];

/* the jmp a site holds while enabled */
void sd_jump_insn(const struct sd_jump_site *s, uint8_t out[SD_JUMP_LEN]);
/*
 * sd_jump_label_patch - every site of @sites to a jmp (@on) or back to the
 * nop, in one text_poke_bp batch. A site whose bytes are neither (a probe
 * sits on it) is left alone and counted in *skipped. Returns 0 or -errno.
 * The caller holds sd_probe_mutex (no probe is placed meanwhile) and keeps
 * the object loaded (inside dl_iterate_phdr).
 */
int sd_jump_label_patch(const struct sd_jump_site *sites, unsigned int n, bool on,
			unsigned int *skipped);

#endif
