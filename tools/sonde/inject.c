// SPDX-License-Identifier: MIT
/*
 * inject.c - loading the agent into a running process, the way a debugger
 * calls a function in it.
 *
 *  1. PTRACE_SEIZE every thread (until /proc/PID/task has no new one) and
 *     PTRACE_INTERRUPT it: the process is stopped, each thread where it
 *     was, some inside system calls.
 *  2. Pick the thread that makes the calls: one waiting in a blocking
 *     system call is best (it holds no lock of libc's), then one in the
 *     program's own code; never one that blocks SIGSEGV (the call's end is
 *     a fault, see 3).
 *  3. Save its registers (general and the whole XSAVE area) and call, as
 *     the System V ABI wants: arguments in %rdi, %rsi…, a string argument
 *     on the thread's stack below the red zone, %rsp 16-byte aligned at the
 *     call, and a return address of 0, so that the function's `ret` faults
 *     at address 0 and the thread stops with SIGSEGV, %rax holding the
 *     result. orig_rax is set to -1 for the call: the kernel must not take
 *     the call's registers for an interrupted system call to restart.
 *     Signals that arrive meanwhile are delivered as they would have been.
 *     If the call has not returned within a moment, another stopped thread
 *     may hold a lock it needs (malloc's, the loader's): the other threads
 *     are let run until it returns.
 *  4. dlopen(libsonde.so, RTLD_NOW) — the loader's dlopen, exported by
 *     libc.so.6 since glibc 2.34, by libdl.so.2 before it (or glibc's
 *     private __libc_dlopen_mode when libdl is not loaded); dlerror() says
 *     why it failed. Then dlsym(handle, "sonde_agent_attach") and the call
 *     sonde_agent_attach(ctl_path, flags), which starts the agent thread
 *     and returns at once.
 *  5. Put the saved registers back — the thread resumes exactly where it
 *     was; a system call it was interrupted in restarts as after any
 *     signal, the way gdb leaves it after `call` — and detach every thread
 *     (delivering any signal one stopped for).
 */
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sonde/sonde.h>

#include "cli.h"
#include "inject.h"
#include "sym/sym.h"

#define RTLD_NOW_      0x2
#define RTLD_DLOPEN_   0x80000000u /* glibc's __RTLD_DLOPEN, for __libc_dlopen_mode */
#define XSTATE_MAX     (64 * 1024)
#define RELEASE_MS     2000 /* then let the other threads run */
#define BELOW_RED_ZONE 256  /* bytes left untouched under the thread's %rsp */

struct thr {
	pid_t tid;
	bool stopped;	 /* in a ptrace-stop */
	bool gone;	 /* exited meanwhile */
	bool group_stop; /* stopped by job control before we came */
	bool released;	 /* let run while the call waits for a lock */
	int sig;	 /* a signal it stopped for: delivered at detach */
};

struct target {
	pid_t pid;
	struct thr *t;
	int n, cap;
	int mem;
};

struct saved {
	struct user_regs_struct regs;
	struct user_fpregs_struct fp;
	uint8_t *xs;
	size_t xs_len;
};

struct loader {
	uint64_t dlopen, dlsym, dlerror; /* dlerror may be 0 */
	bool private_api;		 /* __libc_dlopen_mode / __libc_dlsym */
	char lib_loaded[PATH_MAX];	 /* a libsonde already mapped there */
	uint64_t libc_lo, libc_hi, ld_lo, ld_hi;
};

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ---- what /proc says ------------------------------------------------------------------ */

/* the value of "Key:" in /proc/PID[/task/TID]/status, or NULL */
static char *status_field(pid_t pid, pid_t tid, const char *key, char *buf, size_t len)
{
	char path[64], line[512];
	size_t klen = strlen(key);
	char *ret = NULL;
	FILE *f;

	if (tid)
		snprintf(path, sizeof(path), "/proc/%d/task/%d/status", (int)pid, (int)tid);
	else
		snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return NULL;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, key, klen) || line[klen] != ':')
			continue;
		char *v = line + klen + 1;

		v += strspn(v, " \t");
		v[strcspn(v, "\n")] = '\0';
		snprintf(buf, len, "%s", v);
		ret = buf;
		break;
	}
	fclose(f);
	return ret;
}

static void proc_comm(pid_t pid, char *buf, size_t len)
{
	if (!status_field(pid, 0, "Name", buf, len))
		snprintf(buf, len, "?");
}

static int read_int_file(const char *path, int *v)
{
	FILE *f = fopen(path, "re");
	int ok;

	if (!f)
		return -errno;
	ok = fscanf(f, "%d", v) == 1;
	fclose(f);
	return ok ? 0 : -EINVAL;
}

pid_t inject_sonde_tracer(pid_t pid, pid_t tid)
{
	char buf[64], path[64], self[PATH_MAX], other[PATH_MAX];
	ssize_t n, m;
	pid_t tracer;

	if (!status_field(pid, tid, "TracerPid", buf, sizeof(buf)))
		return 0;
	tracer = atoi(buf);
	if (tracer <= 0 || tracer == getpid())
		return 0;
	/* TracerPid names a thread; /proc/TID/exe is its process's program */
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)tracer);
	n = readlink("/proc/self/exe", self, sizeof(self));
	m = readlink(path, other, sizeof(other));
	return n > 0 && n == m && !memcmp(self, other, n) ? tracer : 0;
}

/*
 * why PTRACE_SEIZE of @tid (0: the leader) failed with EPERM, as precisely
 * as /proc tells; -EINPROGRESS, unexplained, when another sonde holds it
 */
static int explain_eperm(pid_t pid, pid_t tid)
{
	char buf[128], comm[64];
	int scope = 0, tracer = 0;
	unsigned int uid = 0;

	if (inject_sonde_tracer(pid, tid) || (tid && inject_sonde_tracer(pid, 0)))
		return -EINPROGRESS;
	proc_comm(pid, comm, sizeof(comm));
	if (status_field(pid, 0, "TracerPid", buf, sizeof(buf)))
		tracer = atoi(buf);
	if (tracer && tracer != getpid()) {
		char tcomm[64];

		proc_comm(tracer, tcomm, sizeof(tcomm));
		return cli_fail(-EBUSY,
				"pid %d (%s) is already traced by pid %d (%s): a process has one "
				"tracer at a time; detach the debugger first",
				(int)pid, comm, tracer, tcomm);
	}
	if (status_field(pid, 0, "Uid", buf, sizeof(buf)))
		sscanf(buf, "%u", &uid);
	if (uid != geteuid() && geteuid() != 0)
		return cli_fail(-EPERM,
				"pid %d (%s) belongs to uid %u and sonde runs as uid %u: only root "
				"(CAP_SYS_PTRACE) may attach to another user's process",
				(int)pid, comm, uid, (unsigned int)geteuid());
	if (!read_int_file("/proc/sys/kernel/yama/ptrace_scope", &scope) && scope > 0)
		return cli_fail(
		    -EPERM, "not permitted to ptrace pid %d (%s): kernel.yama.ptrace_scope is %d%s",
		    (int)pid, comm, scope,
		    scope == 1	 ? " (only a parent may trace its children); run sonde as "
				   "root, or 'sysctl kernel.yama.ptrace_scope=0'"
		    : scope == 2 ? " (only root may attach)"
				 : " (no process may attach)");
	if (status_field(pid, 0, "Uid", buf, sizeof(buf))) {
		unsigned int r, e, s, fs;

		if (sscanf(buf, "%u %u %u %u", &r, &e, &s, &fs) == 4 && (r != e || e != s))
			return cli_fail(-EPERM,
					"not permitted to ptrace pid %d (%s): it changed its "
					"user ids (set-uid); only root may attach",
					(int)pid, comm);
	}
	return cli_fail(-EPERM,
			"not permitted to ptrace pid %d (%s) (not dumpable, or a security module "
			"said no)",
			(int)pid, comm);
}

int inject_check(pid_t pid)
{
	char buf[64], comm[64], path[64];
	struct stat st;
	int tracer = 0;

	if (kill(pid, 0) && errno == ESRCH)
		return cli_fail(-ESRCH, "no process with pid %d", (int)pid);
	if (pid == getpid())
		return cli_fail(-EINVAL, "pid %d is sonde itself", (int)pid);
	if (status_field(pid, 0, "State", buf, sizeof(buf)) && buf[0] == 'Z')
		return cli_fail(-ESRCH, "pid %d is a zombie: it has ended", (int)pid);
	proc_comm(pid, comm, sizeof(comm));
	if (status_field(pid, 0, "TracerPid", buf, sizeof(buf)))
		tracer = atoi(buf);
	if (tracer && tracer != getpid())
		return explain_eperm(pid, 0);
	snprintf(path, sizeof(path), "/proc/%d", (int)pid);
	if (geteuid() != 0 && !stat(path, &st) && st.st_uid != geteuid())
		return explain_eperm(pid, 0); /* another user's: ptrace would refuse */
	return 0;
}

/* ---- the loader's functions in the target --------------------------------------------- */

static bool name_is(const char *name, const char *prefix)
{
	size_t n = strlen(prefix);

	return !strncmp(name, prefix, n) && (name[n] == '.' || name[n] == '-' || !name[n]);
}

static uint64_t dyn_func(struct sd_module *m, const char *name)
{
	struct sd_symtab *st = sd_module_symtab(m);
	const struct sd_sym *s = st ? sd_symtab_lookup(st, name) : NULL;

	if (!s || !s->dynamic || (s->type != SD_SYM_FUNC && s->type != SD_SYM_IFUNC))
		return 0;
	return m->bias + s->value;
}

/* is the executable without a PT_INTERP (statically linked)? */
static bool exe_is_static(pid_t pid)
{
	char path[64];
	Elf64_Ehdr eh;
	bool interp = false;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	if (pread(fd, &eh, sizeof(eh), 0) != sizeof(eh) || memcmp(eh.e_ident, ELFMAG, SELFMAG)) {
		close(fd);
		return false;
	}
	for (int i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;

		if (pread(fd, &ph, sizeof(ph), eh.e_phoff + (off_t)i * eh.e_phentsize) !=
		    sizeof(ph))
			break;
		if (ph.p_type == PT_INTERP)
			interp = true;
	}
	close(fd);
	return !interp;
}

static int find_loader(pid_t pid, struct loader *ld)
{
	struct sd_maps *maps;
	bool has_ld = false;
	char comm[64];
	int err;

	memset(ld, 0, sizeof(*ld));
	err = sd_maps_read(pid, &maps);
	if (err)
		return cli_fail(err, "%s", sonde_last_error());
	for (size_t i = 0; i < sd_maps_count(maps); i++) {
		struct sd_module *m = sd_maps_at(maps, i);

		if (m->is_main)
			continue;
		if (!strncmp(m->name, "libsonde", 8) && !ld->lib_loaded[0])
			snprintf(ld->lib_loaded, sizeof(ld->lib_loaded), "%s", m->path);
		if (!strncmp(m->name, "ld-linux", 8) || !strncmp(m->name, "ld-musl", 7) ||
		    !strncmp(m->name, "ld64.so", 7)) {
			has_ld = true;
			ld->ld_lo = m->start;
			ld->ld_hi = m->end;
		}
		if (name_is(m->name, "libc")) {
			ld->libc_lo = m->start;
			ld->libc_hi = m->end;
		}
	}
	/* glibc >= 2.34 and musl: dlopen in libc; older glibc: libdl, or the private entry */
	for (int pass = 0; pass < 3 && !ld->dlopen; pass++) {
		for (size_t i = 0; i < sd_maps_count(maps) && !ld->dlopen; i++) {
			struct sd_module *m = sd_maps_at(maps, i);

			if (m->is_main)
				continue;
			if (pass == 0 &&
			    (name_is(m->name, "libc") || !strncmp(m->name, "ld-musl", 7))) {
				ld->dlopen = dyn_func(m, "dlopen");
				ld->dlsym = dyn_func(m, "dlsym");
				ld->dlerror = dyn_func(m, "dlerror");
			} else if (pass == 1 && name_is(m->name, "libdl")) {
				ld->dlopen = dyn_func(m, "dlopen");
				ld->dlsym = dyn_func(m, "dlsym");
				ld->dlerror = dyn_func(m, "dlerror");
			} else if (pass == 2 && name_is(m->name, "libc")) {
				ld->dlopen = dyn_func(m, "__libc_dlopen_mode");
				ld->dlsym = dyn_func(m, "__libc_dlsym");
				ld->dlerror = 0;
				ld->private_api = true;
			}
			if (!ld->dlsym)
				ld->dlopen = 0;
		}
	}
	sd_maps_free(maps);
	if (ld->dlopen)
		return 0;
	proc_comm(pid, comm, sizeof(comm));
	if (!has_ld || exe_is_static(pid))
		return cli_fail(-ENOEXEC,
				"pid %d (%s) is statically linked: it has no dynamic loader, so "
				"sonde cannot load its agent into it",
				(int)pid, comm);
	return cli_fail(-ENOEXEC,
			"pid %d (%s): its libc exports no dlopen (nor __libc_dlopen_mode): sonde "
			"cannot load its agent into it",
			(int)pid, comm);
}

/* ---- threads ------------------------------------------------------------------------- */

static struct thr *find_thr(struct target *tg, pid_t tid)
{
	for (int i = 0; i < tg->n; i++)
		if (tg->t[i].tid == tid)
			return &tg->t[i];
	return NULL;
}

/* note the stop @st of @th */
static void note_stop(struct thr *th, int st)
{
	if (WIFEXITED(st) || WIFSIGNALED(st)) {
		th->gone = true;
		th->stopped = false;
		return;
	}
	if (!WIFSTOPPED(st))
		return;
	th->stopped = true;
	if ((st >> 16) == PTRACE_EVENT_STOP) {
		int sig = WSTOPSIG(st);

		if (sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU)
			th->group_stop = true;
	} else if ((st >> 16) == 0) {
		/* a signal on its way: it is delivered when we let go */
		th->sig = WSTOPSIG(st);
	}
}

static int wait_stopped(struct thr *th)
{
	while (!th->stopped && !th->gone) {
		int st;

		if (waitpid(th->tid, &st, __WALL) < 0) {
			if (errno == EINTR)
				continue;
			th->gone = true;
			break;
		}
		note_stop(th, st);
	}
	return 0;
}

static int seize_all(struct target *tg)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/task", (int)tg->pid);
	for (int round = 0; round < 1000; round++) {
		DIR *d = opendir(path);
		struct dirent *de;
		bool added = false;

		if (!d)
			return errno == ENOENT
				   ? cli_fail(-ESRCH, "no process with pid %d", (int)tg->pid)
				   : cli_fail(-errno, "%s: %s", path, strerror(errno));
		while ((de = readdir(d))) {
			pid_t tid = atoi(de->d_name);
			char st[16];

			if (tid <= 0 || find_thr(tg, tid))
				continue;
			/* a leader that called pthread_exit is a zombie: it never stops */
			if (status_field(tg->pid, tid, "State", st, sizeof(st)) && st[0] == 'Z')
				continue;
			if (ptrace(PTRACE_SEIZE, tid, 0, 0)) {
				int e = errno;

				if (e == ESRCH)
					continue; /* exited meanwhile */
				closedir(d);
				if (e == EPERM)
					return explain_eperm(tg->pid, tid);
				return cli_fail(-e, "cannot ptrace thread %d of pid %d: %s",
						(int)tid, (int)tg->pid, strerror(e));
			}
			if (tg->n == tg->cap) {
				int c = tg->cap ? 2 * tg->cap : 16;
				struct thr *t = realloc(tg->t, c * sizeof(*t));

				if (!t) {
					ptrace(PTRACE_DETACH, tid, 0, 0);
					closedir(d);
					return -ENOMEM;
				}
				tg->t = t;
				tg->cap = c;
			}
			tg->t[tg->n++] = (struct thr){.tid = tid};
			ptrace(PTRACE_INTERRUPT, tid, 0, 0);
			added = true;
		}
		closedir(d);
		if (!added)
			break;
	}
	for (int i = 0; i < tg->n; i++)
		wait_stopped(&tg->t[i]);
	return 0;
}

static void detach_all(struct target *tg)
{
	for (int i = 0; i < tg->n; i++) {
		struct thr *th = &tg->t[i];

		if (th->gone)
			continue;
		if (!th->stopped) {
			/* running (released): stop it to let it go */
			ptrace(PTRACE_INTERRUPT, th->tid, 0, 0);
			wait_stopped(th);
			if (th->gone)
				continue;
		}
		ptrace(PTRACE_DETACH, th->tid, 0, (void *)(long)th->sig);
	}
}

/* let the other threads run: one of them may hold a lock the call waits for */
static void release_others(struct target *tg, struct thr *caller)
{
	for (int i = 0; i < tg->n; i++) {
		struct thr *th = &tg->t[i];

		if (th == caller || th->gone || !th->stopped)
			continue;
		if (ptrace(PTRACE_CONT, th->tid, 0, (void *)(long)th->sig) == 0) {
			th->sig = 0;
			th->stopped = false;
			th->released = true;
		}
	}
}

/* blocked in a system call that waits for something else (no libc lock held) */
static bool waiting_syscall(long nr)
{
	switch (nr) {
	case SYS_read:
	case SYS_poll:
	case SYS_select:
	case SYS_nanosleep:
	case SYS_clock_nanosleep:
	case SYS_accept:
	case SYS_accept4:
	case SYS_recvfrom:
	case SYS_recvmsg:
	case SYS_epoll_wait:
	case SYS_epoll_pwait:
	case SYS_ppoll:
	case SYS_pselect6:
	case SYS_wait4:
	case SYS_pause:
	case SYS_rt_sigsuspend:
	case SYS_rt_sigtimedwait:
	case SYS_io_getevents:
	case SYS_msgrcv:
	case SYS_semop:
	case SYS_semtimedop:
	case SYS_waitid:
	case SYS_futex:
		return true;
	default:
		return false;
	}
}

static bool sigsegv_blocked(pid_t pid, pid_t tid)
{
	char buf[64];

	for (int k = 0; k < 2; k++) {
		const char *key = k ? "SigIgn" : "SigBlk";
		unsigned long long mask;
		bool in = k ? status_field(pid, 0, key, buf, sizeof(buf)) != NULL
			    : status_field(pid, tid, key, buf, sizeof(buf)) != NULL;

		if (in && sscanf(buf, "%llx", &mask) == 1 && (mask & (1ULL << (SIGSEGV - 1))))
			return true;
	}
	return false;
}

static struct thr *pick_caller(struct target *tg, const struct loader *ld)
{
	struct thr *best = NULL;
	int best_score = -1;

	for (int i = 0; i < tg->n; i++) {
		struct thr *th = &tg->t[i];
		struct user_regs_struct r;
		int score;

		if (th->gone || !th->stopped || th->group_stop || th->sig)
			continue;
		if (ptrace(PTRACE_GETREGS, th->tid, 0, &r))
			continue;
		if (sigsegv_blocked(tg->pid, th->tid))
			continue;
		if ((long)r.orig_rax >= 0 && waiting_syscall((long)r.orig_rax) &&
		    (long)r.orig_rax != SYS_futex)
			score = 4;
		else if ((long)r.orig_rax == SYS_futex)
			score = 3; /* waiting, maybe for a lock: the others may have to run */
		else if (!((r.rip >= ld->libc_lo && r.rip < ld->libc_hi) ||
			   (r.rip >= ld->ld_lo && r.rip < ld->ld_hi)))
			score = 2; /* in the program's own code */
		else
			score = 1; /* somewhere in libc: it may hold one of its locks */
		if (th->tid == tg->pid)
			score = score * 2 + 1; /* the main thread on a tie */
		else
			score = score * 2;
		if (score > best_score) {
			best_score = score;
			best = th;
		}
	}
	return best;
}

/* ---- registers and calls --------------------------------------------------------------- */

static int save_regs(pid_t tid, struct saved *sv)
{
	struct iovec iov;

	memset(sv, 0, sizeof(*sv));
	if (ptrace(PTRACE_GETREGS, tid, 0, &sv->regs))
		return -errno;
	sv->xs = malloc(XSTATE_MAX);
	if (!sv->xs)
		return -ENOMEM;
	iov = (struct iovec){sv->xs, XSTATE_MAX};
	if (ptrace(PTRACE_GETREGSET, tid, (void *)NT_X86_XSTATE, &iov) == 0) {
		sv->xs_len = iov.iov_len;
	} else {
		free(sv->xs);
		sv->xs = NULL;
		if (ptrace(PTRACE_GETFPREGS, tid, 0, &sv->fp))
			return -errno;
	}
	return 0;
}

static int restore_regs(pid_t tid, const struct saved *sv)
{
	int err = 0;

	if (sv->xs) {
		struct iovec iov = {sv->xs, sv->xs_len};

		if (ptrace(PTRACE_SETREGSET, tid, (void *)NT_X86_XSTATE, &iov))
			err = -errno;
	} else if (ptrace(PTRACE_SETFPREGS, tid, 0, &sv->fp)) {
		err = -errno;
	}
	if (ptrace(PTRACE_SETREGS, tid, 0, &sv->regs))
		err = -errno;
	return err;
}

static int mem_write(struct target *tg, uint64_t addr, const void *buf, size_t len)
{
	return pwrite(tg->mem, buf, len, (off_t)addr) == (ssize_t)len ? 0 : -EIO;
}

/* where call() puts @len bytes of argument data on the caller's stack */
static uint64_t data_addr(const struct saved *sv, size_t len)
{
	return (sv->regs.rsp - BELOW_RED_ZONE - len) & ~15ULL;
}

/*
 * call - @fn(@args…) on thread @th, @data (if any) at data_addr(); the
 * result in *@ret. The thread's registers are the call's afterwards: the
 * caller restores them.
 */
static int call(struct target *tg, struct thr *th, const struct saved *sv, uint64_t fn,
		const uint64_t *args, int nargs, const void *data, size_t len, uint64_t *ret)
{
	struct user_regs_struct r = sv->regs;
	uint64_t at = data_addr(sv, len), zero = 0;
	double start = now_ms();
	long nap_us = 20;
	int err;

	if (data && (err = mem_write(tg, at, data, len)))
		return err;
	r.rsp = at - 8; /* 16-byte aligned before the call's push */
	if ((err = mem_write(tg, r.rsp, &zero, 8)))
		return err;
	r.rip = fn;
	r.rax = 0;
	r.orig_rax = -1;		    /* not in a system call: nothing to restart */
	r.eflags &= ~(0x400ULL | 0x100ULL); /* DF clear, as at any call; no single step */
	for (int i = 0; i < nargs; i++) {
		unsigned long long *reg[] = {&r.rdi, &r.rsi, &r.rdx, &r.rcx, &r.r8, &r.r9};

		*reg[i] = args[i];
	}
	if (ptrace(PTRACE_SETREGS, th->tid, 0, &r))
		return -errno;
	if (ptrace(PTRACE_CONT, th->tid, 0, 0))
		return -errno;
	th->stopped = false;
	for (;;) {
		int st;
		pid_t w = waitpid(-1, &st, __WALL | WNOHANG);
		struct thr *who;

		if (w < 0 && errno != EINTR && errno != ECHILD)
			return -errno;
		if (w <= 0) {
			double t = now_ms() - start;
			struct timespec ts = {0, nap_us * 1000};

			if (t > RELEASE_MS)
				release_others(tg, th);
			if (t > INJECT_CALL_LIMIT_MS)
				return -ETIMEDOUT;
			nanosleep(&ts, NULL);
			if (nap_us < 2000)
				nap_us *= 2;
			continue;
		}
		who = find_thr(tg, w);
		if (!who)
			continue;
		if (who != th) {
			/* a released thread stopped (a signal): let it go on */
			if (WIFSTOPPED(st)) {
				int sig = (st >> 16) == 0 ? WSTOPSIG(st) : 0;

				ptrace(PTRACE_CONT, w, 0, (void *)(long)sig);
			} else {
				note_stop(who, st);
			}
			continue;
		}
		if (WIFEXITED(st) || WIFSIGNALED(st)) {
			th->gone = true;
			return -ESRCH;
		}
		if (!WIFSTOPPED(st))
			continue;
		if ((st >> 16) == 0 && WSTOPSIG(st) == SIGSEGV) {
			struct user_regs_struct now;

			if (ptrace(PTRACE_GETREGS, th->tid, 0, &now))
				return -errno;
			if (now.rip == 0) {
				th->stopped = true; /* back from the call */
				*ret = now.rax;
				return 0;
			}
		}
		/* anything else: a signal for the program, delivered as it would have been */
		ptrace(PTRACE_CONT, th->tid, 0, (void *)(long)((st >> 16) == 0 ? WSTOPSIG(st) : 0));
	}
}

/* a NUL-terminated string of the target at @addr */
static void read_string(struct target *tg, uint64_t addr, char *buf, size_t len)
{
	ssize_t n = addr ? pread(tg->mem, buf, len - 1, (off_t)addr) : -1;

	buf[n > 0 ? n : 0] = '\0';
}

int inject_agent(pid_t pid, const char *lib, const char *ctl_path, unsigned int flags,
		 struct inject_stats *stats)
{
	struct target tg = {.pid = pid, .mem = -1};
	struct saved sv = {0};
	struct loader ld;
	struct thr *th = NULL;
	char memp[64], comm[64], why[512];
	const char *path;
	uint64_t handle = 0, fn = 0, ret = 0, args[3];
	double t0 = 0;
	bool have_regs = false;
	int err;

	err = inject_check(pid);
	if (err)
		return err;
	err = find_loader(pid, &ld);
	if (err)
		return err;
	proc_comm(pid, comm, sizeof(comm));
	/* one loaded by an earlier attach (or a launch) is used again, whatever its path */
	path = ld.lib_loaded[0] ? ld.lib_loaded : lib;
	if (stats)
		stats->reused = ld.lib_loaded[0] != '\0';

	t0 = now_ms();
	err = seize_all(&tg);
	if (err)
		goto out;
	if (stats)
		stats->nthreads = tg.n;
	snprintf(memp, sizeof(memp), "/proc/%d/mem", (int)pid);
	tg.mem = open(memp, O_RDWR | O_CLOEXEC);
	if (tg.mem < 0) {
		err = cli_fail(-errno, "%s: %s", memp, strerror(errno));
		goto out;
	}
	th = pick_caller(&tg, &ld);
	if (!th) {
		bool stopped = false;

		for (int i = 0; i < tg.n; i++)
			stopped |= tg.t[i].group_stop;
		err = stopped ? cli_fail(-EAGAIN,
					 "pid %d (%s) is stopped (SIGSTOP): continue it first "
					 "('kill -CONT %d')",
					 (int)pid, comm, (int)pid)
			      : cli_fail(-EAGAIN,
					 "pid %d (%s): no thread can make the call now (all block "
					 "SIGSEGV, or are on their way to a signal); try again",
					 (int)pid, comm);
		goto out;
	}
	err = save_regs(th->tid, &sv);
	if (err) {
		err = cli_fail(err, "cannot read the registers of thread %d: %s", (int)th->tid,
			       strerror(-err));
		goto out;
	}
	have_regs = true;

	/* dlopen(path, RTLD_NOW) */
	args[0] = data_addr(&sv, strlen(path) + 1);
	args[1] = RTLD_NOW_ | (ld.private_api ? RTLD_DLOPEN_ : 0);
	err = call(&tg, th, &sv, ld.dlopen, args, 2, path, strlen(path) + 1, &handle);
	if (err)
		goto call_failed;
	if (!handle) {
		uint64_t msg = 0;

		why[0] = '\0';
		if (ld.dlerror && call(&tg, th, &sv, ld.dlerror, NULL, 0, NULL, 0, &msg) == 0)
			read_string(&tg, msg, why, sizeof(why));
		err = cli_fail(-ENOEXEC, "pid %d (%s) could not load %s: %s", (int)pid, comm, path,
			       why[0] ? why : "dlopen failed");
		goto out;
	}
	/* dlsym(handle, "sonde_agent_attach") */
	args[0] = handle;
	args[1] = data_addr(&sv, sizeof("sonde_agent_attach"));
	err = call(&tg, th, &sv, ld.dlsym, args, 2, "sonde_agent_attach",
		   sizeof("sonde_agent_attach"), &fn);
	if (err)
		goto call_failed;
	if (!fn) {
		err = cli_fail(-ENOEXEC,
			       "%s in pid %d has no sonde_agent_attach: an older libsonde? (set "
			       "SONDE_LIB, or restart the process)",
			       path, (int)pid);
		goto out;
	}
	/* sonde_agent_attach(ctl_path, flags): starts the agent thread, returns */
	args[0] = ctl_path ? data_addr(&sv, strlen(ctl_path) + 1) : 0;
	args[1] = flags;
	err = call(&tg, th, &sv, fn, args, 2, ctl_path, ctl_path ? strlen(ctl_path) + 1 : 0, &ret);
	if (err)
		goto call_failed;
	if ((int)ret < 0)
		err = cli_fail((int)ret, "the agent did not start in pid %d: %s", (int)pid,
			       strerror(-(int)ret));
	goto out;

call_failed:
	if (err == -ESRCH)
		cli_error("pid %d (%s) ended while sonde was loading its agent", (int)pid, comm);
	else if (err == -ETIMEDOUT)
		cli_error("pid %d (%s) did not come back from the loader within %d s", (int)pid,
			  comm, INJECT_CALL_LIMIT_MS / 1000);
	else
		cli_error("calling into pid %d (%s) failed: %s", (int)pid, comm, strerror(-err));
out:
	if (have_regs && !th->gone) {
		if (!th->stopped) {
			ptrace(PTRACE_INTERRUPT, th->tid, 0, 0);
			wait_stopped(th);
		}
		if (!th->gone && restore_regs(th->tid, &sv))
			cli_error("could not restore the registers of thread %d of pid %d",
				  (int)th->tid, (int)pid);
	}
	detach_all(&tg);
	if (stats)
		stats->stopped_ms = now_ms() - t0;
	if (tg.mem >= 0)
		close(tg.mem);
	free(sv.xs);
	free(tg.t);
	return err;
}
