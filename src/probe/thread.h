/* SPDX-License-Identifier: MIT */
/*
 * thread.h - per-thread state of the probe path, and waiting for threads to
 * leave it.
 *
 * Every thread that takes a probe trap has a struct sd_thread in its static
 * TLS block. Its `active` byte says where the thread is:
 *
 *   0                          nowhere in sonde: quiescent
 *   SD_ACTIVE_HANDLER          in the trap handler or a trampoline handler
 *   SD_ACTIVE_SLOT             running a probe's out-of-line slot; the exit
 *                              stub stores 0 once the thread is out of it
 *                              (a detour: the region's main copy, which is
 *                              never freed, at each of its ways out)
 *
 * Its `gen` counts outermost entries, mod 256: a watcher that saw the
 * thread marked knows, once gen changed, that what it saw has ended (a
 * thread whose handlers run back to back is seldom seen unmarked); a count
 * that went round by a multiple of 256 only makes it look again. An entry
 * marks and counts in one 16-bit store. The hit path loads `active`,
 * `gen` and `in_sonde` as bytes: a wider load than the byte store that last
 * cleared `active` could not be forwarded from it and would wait for it to
 * reach the cache; and a full-width counter (a read-modify-write of memory
 * on every hit) cost 0.5 to 0.9 ns a hit.
 *
 * sd_sync_threads() is the user-space stand-in for synchronize_rcu(): after
 * a probe is unlinked from everything a new trap could find, it returns once
 * every thread that might still be using it has been seen quiescent.
 */
#ifndef SD_PROBE_THREAD_H
#define SD_PROBE_THREAD_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/compiler.h"

#define SD_ACTIVE_HANDLER 0x1
#define SD_ACTIVE_SLOT	  0x2

struct sd_site;
struct sd_shadow;

/* how many nested handlers of the program's signals a thread's record keeps */
#define SD_SIG_NEST 4

/*
 * The program's signal handlers running on a thread, and where each
 * interrupted it (signal.c): a thread stopped in one is elsewhere, but
 * resumes there (sd_threads_outside looks at both). Apart from struct
 * sd_thread, which the hit path reads: that stays one cache line.
 */
struct sd_sig_record {
	uint8_t depth;
	struct {
		uint64_t ip, sp;
	} at[SD_SIG_NEST];
};

struct sd_thread {
	union {
		struct {
			volatile uint8_t active; /* SD_ACTIVE_*; cleared by the slot code */
			uint8_t gen;		 /* outermost entries, mod 256 */
		};
		uint16_t mark; /* both, in one store */
	};
	uint8_t in_sonde; /* inside libsonde's own API: probes pass through */
	uint8_t registered;
	uint8_t post_prev;	   /* `active` to restore after the post_handler trap */
	uint64_t resume;	   /* where the slot exit stub jumps back to */
	struct sd_site *post_site; /* waiting for the post_handler trap of this site */
	struct sd_shadow *shadow;  /* kretprobe return stack */
	void *fgraph;		   /* function_graph return stack (fgraph.c) */
	uint64_t *hits;		   /* its kprobe hit counters (hits.c) */
	uint8_t hits_off;	   /* exiting: hits are counted with a locked add */
	int tid;
	struct sd_sig_record *sig; /* the thread's sd_sig_self, once registered */
};

extern SD_TLS_IE struct sd_thread sd_self;
extern SD_TLS_IE struct sd_sig_record sd_sig_self;

/* a hit marks the thread as in a handler; @prev, its `active` before */
static inline void sd_thread_enter(struct sd_thread *t, uint8_t prev)
{
	if (prev)
		t->active = prev | SD_ACTIVE_HANDLER;
	else
		WRITE_ONCE(t->mark, (uint16_t)((uint8_t)(t->gen + 1) << 8 | SD_ACTIVE_HANDLER));
}

/* the %fs-relative offsets of sd_self.active and sd_self.resume, for slot code */
int32_t sd_thread_active_tls_offset(void);
int32_t sd_thread_resume_tls_offset(void);

/* put this thread on the list sd_sync_threads() watches (signal-safe) */
void sd_thread_register(struct sd_thread *t);
/*
 * Whether a registered thread other than this one is running one of the
 * program's signal handlers, which interrupted it where @inside(ip, arg)
 * holds (threads_ip.c)
 */
bool sd_threads_interrupted(bool (*inside)(uint64_t ip, const void *arg), const void *arg);
/*
 * whether sd_thread_register() leaves the vector registers alone (it calls
 * pthread_setspecific, which allocates for a key past glibc's first 32):
 * else no probe path may skip saving them, a thread's first hit registers it
 */
bool sd_thread_register_vec_free(void);

/*
 * sd_sync_threads - wait until every other thread has been quiescent at
 * least once since the call. Returns 0, or -ETIMEDOUT when a thread stayed
 * inside for seconds (stopped in a debugger, or left a slot by longjmp from
 * a signal handler): the caller must then leak what it meant to free.
 */
int sd_sync_threads(void);

/*
 * sd_spawn_thread - start one of sonde's own threads, detached and named
 * @name. Asynchronous signals never reach it; the synchronous ones stay
 * open (it steps on probes like any thread, and a blocked SIGTRAP at a
 * breakpoint kills the process), and so does the one that asks threads
 * where they are while code is patched (threads_ip.c), which a thread
 * that cannot answer holds up for seconds. Whatever the caller blocks
 * does not matter. 0, or a positive error as pthread_create() returns.
 */
int sd_spawn_thread(pthread_t *t, void *(*fn)(void *), void *arg, const char *name);

/* the API side: mark this thread as running libsonde's own code */
static inline void sd_enter_sonde(void)
{
	sd_self.in_sonde++;
	barrier();
}

static inline void sd_leave_sonde(void)
{
	barrier();
	sd_self.in_sonde--;
}

/* called when a thread exits with a shadow stack (kretprobe.c) */
void sd_shadow_thread_exit(struct sd_thread *t);
/* likewise with a function_graph stack (fgraph.c) */
void sd_fgraph_thread_exit(struct sd_thread *t);

#endif
