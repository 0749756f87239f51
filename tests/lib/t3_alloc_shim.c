// SPDX-License-Identifier: MIT
/*
 * t3_alloc_shim.c - an LD_PRELOAD library that logs every call of malloc,
 * free, calloc and realloc made through the dynamic linker, with their
 * arguments and results: the independent oracle of t3002, which traces the
 * same calls with sonde in the same run.
 *
 * The window: the shim interposes __libc_start_main, so that it runs just
 * before the program's main(): it registers an atexit handler (before
 * counting: atexit may allocate), calls t3_marker_begin() and starts
 * logging. The atexit handler (run after the program's own atexit
 * handlers, before any library destructor) stops logging, calls
 * t3_marker_end() and writes the log. sonde probes both markers; the
 * events between them are the ones to compare. (Library constructors run
 * in an order of the dynamic linker's choosing, and libsonde's -- which
 * installs the probes -- may run after ours: main() is after all of them.)
 *
 * The log is kept in memory that was mapped before the window (no call to
 * anything that allocates while logging) and written at the end as lines:
 *   TID malloc SIZE PTR
 *   TID calloc N SIZE PTR
 *   TID realloc PTR SIZE NEWPTR
 *   TID free PTR
 * (hex pointers, decimal sizes), after a first line "pid PID" (sonde's own
 * threads in the process allocate too: the test tells them apart by TID),
 * to the file T3SHIM_OUT names; nothing
 * happens without T3SHIM_OUT, nor in a program whose argv[0] is not
 * T3SHIM_ARGV0 when that is set (sonde itself runs with the LD_PRELOAD it
 * passes on to the program it launches). T3SHIM_MAX: the most records kept (default
 * 4M); more are counted and reported as "overflow N", never dropped silently.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

enum op { OP_MALLOC, OP_CALLOC, OP_REALLOC, OP_FREE };

struct rec {
	unsigned char op;
	int tid;
	unsigned long a, b, r;
};

static struct rec *log_recs;
static unsigned long log_max, log_n, log_overflow;
static volatile int logging;
static const char *out_path;
static __thread int my_tid __attribute__((tls_model("initial-exec")));

extern void *__libc_malloc(size_t size);
extern void __libc_free(void *p);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);

typedef int (*main_fn)(int, char **, char **);

#define EXPORT __attribute__((visibility("default")))
EXPORT void t3_marker_begin(void);
EXPORT void t3_marker_end(void);
EXPORT int __libc_start_main(main_fn main, int argc, char **argv, void (*init)(void),
			     void (*fini)(void), void (*rtld_fini)(void), void *stack_end);

/* the markers sonde probes: distinct bodies, so no two are folded into one */
volatile int t3_marker_state;

__attribute__((noinline, used)) void t3_marker_begin(void)
{
	t3_marker_state = 1;
	__asm__ volatile("" ::: "memory");
}

__attribute__((noinline, used)) void t3_marker_end(void)
{
	t3_marker_state = 2;
	__asm__ volatile("" ::: "memory");
}

static void log_call(enum op op, unsigned long a, unsigned long b, unsigned long r)
{
	unsigned long i;

	if (!logging)
		return;
	if (!my_tid)
		my_tid = (int)syscall(SYS_gettid);
	i = __atomic_fetch_add(&log_n, 1, __ATOMIC_RELAXED);
	if (i >= log_max) {
		__atomic_add_fetch(&log_overflow, 1, __ATOMIC_RELAXED);
		return;
	}
	log_recs[i] = (struct rec){.op = op, .tid = my_tid, .a = a, .b = b, .r = r};
}

EXPORT void *malloc(size_t size)
{
	void *p = __libc_malloc(size);

	log_call(OP_MALLOC, size, 0, (unsigned long)p);
	return p;
}

EXPORT void free(void *p)
{
	log_call(OP_FREE, (unsigned long)p, 0, 0);
	__libc_free(p);
}

EXPORT void *calloc(size_t n, size_t size)
{
	void *p = __libc_calloc(n, size);

	log_call(OP_CALLOC, n, size, (unsigned long)p);
	return p;
}

EXPORT void *realloc(void *old, size_t size)
{
	void *p = __libc_realloc(old, size);

	log_call(OP_REALLOC, (unsigned long)old, size, (unsigned long)p);
	return p;
}

/* ---- the window --------------------------------------------------------------------- */

static void window_end(void)
{
	unsigned long n;
	FILE *f;

	logging = 0;
	t3_marker_end();
	n = log_n < log_max ? log_n : log_max;
	f = fopen(out_path, "we");
	if (!f) {
		perror(out_path);
		return;
	}
	fprintf(f, "pid %d\n", (int)getpid());
	for (unsigned long i = 0; i < n; i++) {
		const struct rec *r = &log_recs[i];

		switch (r->op) {
		case OP_MALLOC:
			fprintf(f, "%d malloc %lu 0x%lx\n", r->tid, r->a, r->r);
			break;
		case OP_CALLOC:
			fprintf(f, "%d calloc %lu %lu 0x%lx\n", r->tid, r->a, r->b, r->r);
			break;
		case OP_REALLOC:
			fprintf(f, "%d realloc 0x%lx %lu 0x%lx\n", r->tid, r->a, r->b, r->r);
			break;
		case OP_FREE:
			fprintf(f, "%d free 0x%lx\n", r->tid, r->a);
			break;
		}
	}
	if (log_overflow)
		fprintf(f, "overflow %lu\n", log_overflow);
	fclose(f);
}

typedef int (*start_fn)(main_fn, int, char **, void (*)(void), void (*)(void), void (*)(void),
			void *);

static main_fn real_main;

static int main_wrapper(int argc, char **argv, char **envp)
{
	if (out_path) {
		atexit(window_end);
		t3_marker_begin();
		logging = 1;
	}
	return real_main(argc, argv, envp);
}

int __libc_start_main(main_fn main, int argc, char **argv, void (*init)(void), void (*fini)(void),
		      void (*rtld_fini)(void), void *stack_end)
{
	start_fn next = (start_fn)dlvsym(RTLD_NEXT, "__libc_start_main", "GLIBC_2.34");
	const char *max = getenv("T3SHIM_MAX");
	const char *only;

	if (!next)
		next = (start_fn)dlsym(RTLD_NEXT, "__libc_start_main");
	if (!next) {
		static const char msg[] = "t3_alloc_shim: no __libc_start_main after us\n";

		write(2, msg, sizeof(msg) - 1);
		_exit(127);
	}
	out_path = getenv("T3SHIM_OUT");
	only = getenv("T3SHIM_ARGV0");
	if (only && *only && (argc < 1 || strcmp(argv[0], only)))
		out_path = NULL;
	if (out_path && *out_path) {
		log_max = max && *max ? strtoul(max, NULL, 10) : 4UL << 20;
		log_recs = mmap(NULL, log_max * sizeof(*log_recs), PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (log_recs == MAP_FAILED) {
			perror("t3_alloc_shim: mmap");
			_exit(127);
		}
	} else {
		out_path = NULL;
	}
	real_main = main;
	return next(main_wrapper, argc, argv, init, fini, rtld_fini, stack_end);
}
