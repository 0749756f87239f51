/* SPDX-License-Identifier: MIT */
/*
 * tracefs.h - the virtual tracefs tree of a traced process.
 *
 * Paths are relative to the tracing root ("kprobe_events",
 * "events/grp/ev/enable"). Reading a file renders its whole content;
 * writing one has the effect the same write has on the kernel's tracefs:
 * @truncate is `>` (O_TRUNC), otherwise `>>`. A failed write returns a
 * negative errno and, where the kernel logs one, leaves an entry in
 * error_log; @why gets a one-line explanation for a human.
 */
#ifndef SD_CONTROL_TRACEFS_H
#define SD_CONTROL_TRACEFS_H

#include <stdbool.h>
#include <stdio.h>

int sd_tracefs_read(const char *path, FILE *out);
int sd_tracefs_write(const char *path, const char *data, size_t len, bool truncate, FILE *why);
/* the entries of a directory, one per line, directories with a trailing '/' */
int sd_tracefs_list(const char *path, FILE *out);

/*
 * trace_pipe: render and consume what is in the buffer now (up to about
 * @max bytes). Returns bytes written (0: nothing yet), or -EBUSY when
 * another consumer (the sonde command) holds the buffer.
 */
long sd_tracefs_pipe(FILE *out, size_t max);

/* remove every event and probe, restoring every patched byte (detach) */
void sd_tracefs_reset_all(void);

#endif
