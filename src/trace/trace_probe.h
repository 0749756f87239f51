/* SPDX-License-Identifier: MIT */
/* trace_probe.h - kprobe_events / uprobe_events lines as trace events. */
#ifndef SD_TRACE_TRACE_PROBE_H
#define SD_TRACE_TRACE_PROBE_H

#include "trace/errlog.h"
#include "trace/event.h"
#include "trace/probe_def.h"
#include "trace/seq.h"

/*
 * one line written to kprobe_events (@kind SD_PROBE_KPROBE) or
 * uprobe_events: define an event (registered, disabled) or remove one (-:).
 * Call under sd_trace_lock(). Errors fill @err for error_log.
 */
/*
 * a uprobe on a file the process has not mapped is accepted, as the
 * kernel's: it is placed by sd_probe_events_refresh() once the file is
 * mapped (dlopen), and armed then if the event was enabled meanwhile
 */
int sd_probe_event_create(const char *cmd, int kind, struct sd_parse_error *err);
/* place the pending uprobes whose files are now mapped (takes the trace lock) */
void sd_probe_events_refresh(void);
int sd_probe_event_remove(const char *group, const char *event, int kind,
			  struct sd_parse_error *err, const char *cmd);
/* what the file reads back: one definition per line, in creation order */
void sd_probe_events_print(struct sd_seq *s, int kind);
/* `>` on the file: remove them all (-EBUSY if any is enabled, nothing removed) */
int sd_probe_events_clear(int kind);
/* kprobe_profile / uprobe_profile */
void sd_probe_profile_print(struct sd_seq *s, int kind);
/* the definition behind a probe event, NULL for other events */
const struct sd_probe_def *sd_probe_event_def(const struct sd_event *ev);

#endif
