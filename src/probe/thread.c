// SPDX-License-Identifier: MIT
/*
 * thread.c - the list of threads that have entered the probe path, and
 * sd_sync_threads().
 *
 * A thread registers itself the first time it traps, from the signal
 * handler, so registration takes no lock and allocates with mmap only:
 * the list is a chain of fixed chunks of pointers, slots claimed by CAS and
 * never freed (an exiting thread clears its slot from a pthread key
 * destructor). The watcher reads another thread's TLS through
 * sd_safe_read(): a thread may exit, and its stack and TLS be unmapped,
 * between the moment the watcher reads its slot and the moment it looks.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include <sd_arch/syscall.h>

#define SD_LOG_PREFIX "thread"
#include "common/log.h"
#include "arch/arch.h"
#include "common/safe_mem.h"
#include "probe/hits.h"
#include "probe/probe.h"
#include "probe/thread.h"

/* one cache line: the hit path reads it */
SD_TLS_IE struct sd_thread sd_self __attribute__((aligned(64)));
SD_TLS_IE struct sd_sig_record sd_sig_self;

#define CHUNK_SLOTS 254

struct chunk {
	struct chunk *next;
	unsigned long unused;
	struct sd_thread *slot[CHUNK_SLOTS];
};

static struct chunk *chunks;
static pthread_key_t exit_key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static bool key_ok;

int32_t sd_thread_active_tls_offset(void)
{
	uint64_t tp;

	__asm__("mov %%fs:0, %0" : "=r"(tp));
	return (int32_t)((int64_t)(uintptr_t)&sd_self.active - (int64_t)tp);
}

int32_t sd_thread_resume_tls_offset(void)
{
	uint64_t tp;

	__asm__("mov %%fs:0, %0" : "=r"(tp));
	return (int32_t)((int64_t)(uintptr_t)&sd_self.resume - (int64_t)tp);
}

/* a thread's end (its TSD destructors): sonde's calls, which probes never see */
static void thread_exit(void *arg)
{
	struct sd_thread *t = arg;

	sd_enter_sonde();
	if (t->shadow)
		sd_shadow_thread_exit(t);
	if (t->fgraph)
		sd_fgraph_thread_exit(t);
	sd_hit_thread_exit(t);
	for (struct chunk *c = LOAD_ACQUIRE(chunks); c; c = c->next)
		for (int i = 0; i < CHUNK_SLOTS; i++)
			if (LOAD_ACQUIRE(c->slot[i]) == t)
				STORE_RELEASE(c->slot[i], NULL);
	t->registered = 0;
	sd_leave_sonde();
}

static void fork_child(void)
{
	/* only the forking thread lives on in the child */
	for (struct chunk *c = chunks; c; c = c->next)
		for (int i = 0; i < CHUNK_SLOTS; i++)
			if (c->slot[i] != &sd_self)
				c->slot[i] = NULL;
}

static void key_init(void)
{
	key_ok = pthread_key_create(&exit_key, thread_exit) == 0;
	pthread_atfork(NULL, NULL, fork_child);
}

/*
 * called once from the API before any trap can happen; before the agent's
 * constructor (the default priority), which may start a tracer
 */
__attribute__((constructor(101))) static void thread_init(void)
{
	pthread_once(&key_once, key_init);
}

static bool claim(struct chunk *c, struct sd_thread *t)
{
	for (int i = 0; i < CHUNK_SLOTS; i++) {
		struct sd_thread *expect = NULL;

		if (!LOAD_ACQUIRE(c->slot[i]) &&
		    __atomic_compare_exchange_n(&c->slot[i], &expect, t, false, __ATOMIC_SEQ_CST,
						__ATOMIC_RELAXED))
			return true;
	}
	return false;
}

void sd_thread_register(struct sd_thread *t)
{
	struct chunk *c, *fresh;

	t->tid = sd_raw_gettid();
	t->sig = &sd_sig_self; /* (t is this thread's sd_self) */
	for (;;) {
		for (c = LOAD_ACQUIRE(chunks); c; c = c->next)
			if (claim(c, t))
				goto done;
		fresh = (void *)sd_raw_syscall6(SYS_mmap, 0, sizeof(struct chunk),
						PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
						-1, 0);
		if ((unsigned long)fresh > -4096UL)
			return; /* unwatched: sync cannot wait for this thread */
		fresh->next = LOAD_ACQUIRE(chunks);
		if (!__atomic_compare_exchange_n(&chunks, &fresh->next, fresh, false,
						 __ATOMIC_SEQ_CST, __ATOMIC_RELAXED))
			sd_raw_syscall2(SYS_munmap, fresh, sizeof(struct chunk));
	}
done:
	/*
	 * Registered first, and as sonde's own call: pthread_setspecific may be
	 * probed itself (all of libc traced), and its breakpoint, reached from
	 * the trap handler registering this thread, must pass through rather
	 * than register again. (glibc keeps the first 32 keys in the thread
	 * descriptor: no malloc here; past those it may calloc, which may use
	 * vector registers: sd_thread_register_vec_free() says which.)
	 */
	t->registered = 1;
	if (key_ok) {
		sd_enter_sonde();
		pthread_setspecific(exit_key, t);
		sd_leave_sonde();
	}
}

bool sd_thread_register_vec_free(void)
{
	pthread_once(&key_once, key_init);
	return !key_ok || exit_key < 32;
}

bool sd_threads_interrupted(bool (*inside)(uint64_t ip, const void *arg), const void *arg)
{
	for (struct chunk *c = LOAD_ACQUIRE(chunks); c; c = c->next)
		for (int i = 0; i < CHUNK_SLOTS; i++) {
			struct sd_thread *t = LOAD_ACQUIRE(c->slot[i]), now;
			struct sd_sig_record rec;

			/* (its TLS may go with it meanwhile) */
			if (!t || t == &sd_self || sd_safe_read(&now, t, sizeof(now)) || !now.sig ||
			    sd_safe_read(&rec, now.sig, sizeof(rec)))
				continue;
			for (int k = 0; k < rec.depth && k < SD_SIG_NEST; k++)
				if (inside(rec.at[k].ip, arg))
					return true;
		}
	return false;
}

struct watch {
	struct sd_thread *t;
	uint8_t gen;
	int tid;
};

static bool still_inside(const struct watch *w)
{
	struct sd_thread now;

	if (sd_safe_read(&now, w->t, sizeof(now)))
		return false; /* gone with its thread */
	return now.active && now.gen == w->gen;
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#define SYNC_TIMEOUT_MS 5000

int sd_sync_threads(void)
{
	struct timespec nap = {0, 20 * 1000};
	struct watch *ws = NULL;
	size_t n = 0, cap = 0;
	long deadline;
	int err = 0;

	/*
	 * Handlers on the jump path set `active` without a fence; a membarrier
	 * makes every thread's earlier stores visible before we look.
	 */
	sd_sync_cores();
	for (struct chunk *c = LOAD_ACQUIRE(chunks); c; c = c->next) {
		for (int i = 0; i < CHUNK_SLOTS; i++) {
			struct sd_thread *t = LOAD_ACQUIRE(c->slot[i]), now;

			if (!t || t == &sd_self)
				continue;
			if (sd_safe_read(&now, t, sizeof(now)) || !now.active)
				continue;
			if (n == cap) {
				struct watch *bigger =
				    realloc(ws, (cap = cap ? 2 * cap : 16) * sizeof(*ws));

				if (!bigger) {
					free(ws);
					return -ENOMEM;
				}
				ws = bigger;
			}
			ws[n].t = t;
			ws[n].gen = now.gen;
			ws[n].tid = now.tid;
			n++;
		}
	}
	deadline = now_ms() + SYNC_TIMEOUT_MS;
	for (size_t k = 0; k < n; k++) {
		while (still_inside(&ws[k])) {
			if (now_ms() > deadline) {
				sd_warn("thread %d stayed inside a probe for seconds; what it may "
					"use is kept, not freed",
					ws[k].tid);
				err = -ETIMEDOUT;
				goto out;
			}
			nanosleep(&nap, NULL);
		}
	}
out:
	free(ws);
	return err;
}

int sd_spawn_thread(pthread_t *t, void *(*fn)(void *), void *arg, const char *name)
{
	sigset_t all, old;
	pthread_t th;
	int err;

	sigfillset(&all);
	sigdelset(&all, SIGTRAP);
	sigdelset(&all, SIGSEGV);
	sigdelset(&all, SIGBUS);
	sigdelset(&all, SIGILL);
	sigdelset(&all, SIGFPE);
	sigdelset(&all, SD_SAMPLE_SIGNAL);
	pthread_sigmask(SIG_SETMASK, &all, &old); /* the new thread's, not the caller's */
	err = pthread_create(&th, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err)
		return err;
	pthread_setname_np(th, name); /* before detaching: the thread may be gone, not its handle */
	pthread_detach(th);
	if (t)
		*t = th;
	return 0;
}
