/* SPDX-License-Identifier: MIT */
/*
 * inject.h - loading the agent into a running process (ptrace).
 *
 * inject_agent() stops every thread of @pid for a moment (PTRACE_SEIZE +
 * PTRACE_INTERRUPT), has one of them call the dynamic loader's dlopen() on
 * libsonde.so and then sonde_agent_attach(@ctl_path, @flags), puts every
 * register back exactly as it was and lets the process go. The agent then
 * connects to @ctl_path by itself. Failures are explained on stderr (no
 * such process, permission, already traced, statically linked, the loader
 * refused the library) and returned as a negative errno; the process is
 * left as it was. Another sonde command attaching at the same moment is
 * not an error to explain: -EINPROGRESS, as from inject_check() (the
 * agent's own -EALREADY, one serving already, is another matter).
 */
#ifndef SONDE_INJECT_H
#define SONDE_INJECT_H

#include <stdbool.h>
#include <sys/types.h>

/* how long a call made in the target may take before inject gives up */
#define INJECT_CALL_LIMIT_MS 30000

struct inject_stats {
	double stopped_ms; /* how long the threads were stopped */
	int nthreads;
	bool reused; /* libsonde.so was already loaded (an earlier attach) */
};

/*
 * could sonde attach to @pid at all? 0, or a negative errno with the reason
 * printed; -EINPROGRESS, printed by nobody, while another sonde command holds
 * it (attaching right now: its agent will serve soon)
 */
int inject_check(pid_t pid);

/* the thread of another sonde command that ptraces @tid of @pid (0: the leader), or 0 */
pid_t inject_sonde_tracer(pid_t pid, pid_t tid);

/*
 * inject_agent - load @lib (an absolute path) into @pid and start its
 * agent, which connects to @ctl_path; @flags are SD_AGENT_*.
 * @stats may be NULL.
 */
int inject_agent(pid_t pid, const char *lib, const char *ctl_path, unsigned int flags,
		 struct inject_stats *stats);

#endif
