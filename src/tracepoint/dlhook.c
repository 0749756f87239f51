// SPDX-License-Identifier: MIT
/*
 * dlhook.c - libsonde's dlopen() and dlclose(): the program's call does
 * what it always does, then the tracepoints of what was loaded appear (or
 * those of what was unloaded go), and the uprobes that waited for a file
 * just loaded are placed, before the call returns, so that a library's
 * events can be enabled right after it is opened.
 *
 * Exported under glibc's own versions (dlopen@@GLIBC_2.34 and
 * dlopen@GLIBC_2.2.5, libsonde.map), so that a preloaded libsonde takes
 * the program's calls whichever glibc the program was linked against: a
 * definition under another version name would never be bound to them.
 *
 * glibc's dlopen() looks at its caller: the caller's RPATH/RUNPATH and
 * $ORIGIN find the file, the caller's namespace receives it. A wrapper that
 * simply called the real dlopen() would make libsonde the caller. So:
 *  - when the call is the program's own (a caller in the main executable,
 *    or in no object at all), the real dlopen() is called from a small
 *    thunk in anonymous memory, which glibc takes for the main executable
 *    — what it would have seen — and the new objects are looked at after;
 *  - when only the namespace matters (a path with '/' and no '$', from the
 *    base namespace), the same;
 *  - otherwise (a library loading a bare name or $ORIGIN/…, or a caller in
 *    another namespace), the stub jumps to the real dlopen() with the
 *    caller's return address untouched, and the new objects are found at
 *    the agent's next look (before its next request), not synchronously.
 * Calls made while a dlopen() is in progress on the thread (constructors
 * opening more), or by sonde itself, go straight through.
 *
 * dlclose() does not depend on its caller: the real one, then a look.
 *
 * The look is not taken on the caller's thread, which must not allocate or
 * take sonde's locks on sonde's behalf (a program's allocations are the same
 * with and without sonde): a thread of sonde's ("sonde-dl", started with
 * the runtime when these hooks are the ones the program calls) does it
 * while the caller waits, at most a couple of seconds.
 */
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "common/compiler.h"
#include "ftrace/ftrace.h"
#include "probe/probe.h"
#include "probe/thread.h"
#include "trace/trace.h"
#include "trace/trace_probe.h"
#include "tracepoint/tracepoint.h"

typedef void *(*dlopen_fn)(const char *file, int mode);
typedef int (*dlclose_fn)(void *handle);
typedef void *(*thunk_fn)(const char *file, int mode, dlopen_fn real);

static dlopen_fn real_dlopen;
static dlclose_fn real_dlclose;
static thunk_fn thunk;
static pthread_once_t once = PTHREAD_ONCE_INIT;
/* inside a dlopen/dlclose of this thread */
static SD_TLS_IE int dl_depth;

/*
 *	endbr64
 *	sub  $8, %rsp		aligned for the call
 *	call *%rdx		the real dlopen: its return address is here,
 *	add  $8, %rsp		in memory that belongs to no object
 *	ret
 */
static const unsigned char thunk_code[] = {
    0xf3, 0x0f, 0x1e, 0xfa, 0x48, 0x83, 0xec, 0x08, 0xff, 0xd2, 0x48, 0x83, 0xc4, 0x08, 0xc3,
};

static void resolve(void)
{
	void *p;

	p = dlvsym(RTLD_NEXT, "dlopen", "GLIBC_2.34");
	if (!p)
		p = dlsym(RTLD_NEXT, "dlopen");
	real_dlopen = (dlopen_fn)p;
	p = dlvsym(RTLD_NEXT, "dlclose", "GLIBC_2.34");
	if (!p)
		p = dlsym(RTLD_NEXT, "dlclose");
	real_dlclose = (dlclose_fn)p;

	p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return;
	memcpy(p, thunk_code, sizeof(thunk_code));
	if (mprotect(p, 4096, PROT_READ | PROT_EXEC)) {
		munmap(p, 4096);
		return;
	}
	thunk = (thunk_fn)p;
}

/* ---- the thread that looks at what was loaded ------------------------------------------- */

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned long req, done;
	bool running;
} helper = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, false};

void sd_dlhook_objects_changed(void)
{
	sd_kprobes_forget_unmapped(); /* (a dlclose: before anything probes again) */
	sd_tracepoint_refresh();
	sd_probe_events_refresh();
	sd_trace_lock();
	sd_ftrace_refresh(); /* the function tracers hook what was loaded */
	sd_trace_unlock();
}

static void *helper_main(void *arg)
{
	(void)arg;
	sd_enter_sonde(); /* no probe fires here, nothing counts */
	pthread_mutex_lock(&helper.lock);
	for (;;) {
		unsigned long r;

		while (helper.done == helper.req)
			pthread_cond_wait(&helper.cond, &helper.lock);
		r = helper.req;
		pthread_mutex_unlock(&helper.lock);
		sd_dlhook_objects_changed();
		pthread_mutex_lock(&helper.lock);
		helper.done = r;
		pthread_cond_broadcast(&helper.cond);
	}
	return NULL;
}

static void helper_fork_child(void)
{
	/* the thread is not in the child: the agent's next request looks instead */
	pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t c = PTHREAD_COND_INITIALIZER;

	helper.lock = m;
	helper.cond = c;
	helper.running = false;
}

extern char sd_dlopen_stub[];

void sd_dlhook_start(void)
{
	static int interposed = -1;
	static bool atfork;

	pthread_once(&once, resolve);
	/* only where the program's dlopen() is this one (launched, not attached) */
	if (interposed < 0)
		interposed = real_dlopen && dlsym(RTLD_DEFAULT, "dlopen") == sd_dlopen_stub;
	if (helper.running || !interposed)
		return;
	if (!sd_spawn_thread(NULL, helper_main, NULL, "sonde-dl")) {
		if (!atfork)
			pthread_atfork(NULL, NULL, helper_fork_child);
		atfork = true;
		__atomic_store_n(&helper.running, true, __ATOMIC_RELEASE);
	}
}

/* an object came or went: have the helper look, and wait for it */
static void changed(void)
{
	int saved = errno;
	struct timespec until;
	unsigned long mine;

	if (!__atomic_load_n(&helper.running, __ATOMIC_ACQUIRE))
		return;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 2;
	pthread_mutex_lock(&helper.lock);
	mine = ++helper.req;
	pthread_cond_broadcast(&helper.cond);
	while (helper.running && helper.done < mine)
		if (pthread_cond_timedwait(&helper.cond, &helper.lock, &until) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&helper.lock);
	errno = saved;
}

/* ---- dlopen -------------------------------------------------------------------------------- */

/* whether the thunk makes glibc see the caller it would have seen */
static bool same_as_caller(const char *file, void *caller)
{
	struct link_map *lm = NULL;
	Lmid_t ns;
	Dl_info info;

	if (!dladdr1(caller, &info, (void **)&lm, RTLD_DL_LINKMAP) || !lm)
		return true; /* no object: glibc takes the main executable, as for the thunk */
	if (lm == _r_debug.r_map)
		return true;
	return file && strchr(file, '/') && !strchr(file, '$') && !dlinfo(lm, RTLD_DI_LMID, &ns) &&
	       ns == LM_ID_BASE;
}

void *sd_dlopen_route(const char *file, int mode, void *caller);
void *sd_dlopen_wrapped(const char *file, int mode);

/* called by the stub: NULL to take the wrapped way, else the function to jump to */
__attribute__((used)) void *sd_dlopen_route(const char *file, int mode, void *caller)
{
	int saved = errno;
	bool wrap;

	(void)mode;
	pthread_once(&once, resolve);
	wrap = real_dlopen && thunk && !dl_depth && !sd_self.in_sonde &&
	       __atomic_load_n(&helper.running, __ATOMIC_ACQUIRE) && same_as_caller(file, caller);
	errno = saved;
	return wrap ? NULL : (void *)real_dlopen;
}

__attribute__((used)) void *sd_dlopen_wrapped(const char *file, int mode)
{
	void *h;

	dl_depth++;
	h = thunk(file, mode, real_dlopen);
	dl_depth--;
	if (h)
		changed();
	return h;
}

/* dlopen: to the real one untouched, or through the wrapper (see above) */
__asm__(".text\n"
	".globl sd_dlopen_stub\n"
	".type sd_dlopen_stub, @function\n"
	"sd_dlopen_stub:\n"
	"	.cfi_startproc\n"
	"	endbr64\n"
	"	push %rdi\n"
	"	.cfi_adjust_cfa_offset 8\n"
	"	push %rsi\n"
	"	.cfi_adjust_cfa_offset 8\n"
	"	sub $8, %rsp\n"
	"	.cfi_adjust_cfa_offset 8\n"
	"	mov 24(%rsp), %rdx\n"
	"	call sd_dlopen_route\n"
	"	add $8, %rsp\n"
	"	.cfi_adjust_cfa_offset -8\n"
	"	pop %rsi\n"
	"	.cfi_adjust_cfa_offset -8\n"
	"	pop %rdi\n"
	"	.cfi_adjust_cfa_offset -8\n"
	"	test %rax, %rax\n"
	"	jz 1f\n"
	"	jmp *%rax\n"
	"1:	jmp sd_dlopen_wrapped\n"
	"	.cfi_endproc\n"
	".size sd_dlopen_stub, .-sd_dlopen_stub\n"
	".symver sd_dlopen_stub, dlopen@@GLIBC_2.34\n"
	".symver sd_dlopen_stub, dlopen@GLIBC_2.2.5\n");

/* default visibility, or the versioned aliases below would be hidden too */
__attribute__((visibility("default"))) int sd_dlclose_hook(void *handle);
int sd_dlclose_hook(void *handle)
{
	int r;

	pthread_once(&once, resolve);
	if (!real_dlclose) {
		errno = ENOSYS;
		return -1;
	}
	if (dl_depth || sd_self.in_sonde || !__atomic_load_n(&helper.running, __ATOMIC_ACQUIRE))
		return real_dlclose(handle);
	dl_depth++;
	r = real_dlclose(handle);
	dl_depth--;
	if (!r)
		changed();
	return r;
}
__asm__(".symver sd_dlclose_hook, dlclose@@GLIBC_2.34\n"
	".symver sd_dlclose_hook, dlclose@GLIBC_2.2.5\n");
