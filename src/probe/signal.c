// SPDX-License-Identifier: MIT
/*
 * signal.c - owning SIGTRAP without taking it from the program.
 *
 * Probes need the SIGTRAP handler, but the program may have its own (a
 * debugger-aware runtime, a test framework) and may install it after sonde
 * did. So sonde interposes sigaction() and signal(): for a signal sonde
 * owns, the program's calls read and write a shadow disposition, and every
 * trap that is not sonde's is handed to that disposition exactly as the
 * kernel would have (sd_signal_chain). Signals sonde does not own pass
 * straight through to libc.
 *
 * A breakpoint met while SIGTRAP is blocked kills the process (the kernel
 * forces the default action), and a thread that blocks the sampling
 * signal (threads_ip.c) cannot say where it is: so the program can no
 * longer block a signal sonde owns. sigprocmask(), pthread_sigmask() and
 * the masks of sigaction() are interposed and leave those out, as the
 * kernel leaves out SIGKILL. (libc's own short windows with every signal
 * blocked cannot be reached this way; the function tracers stay out of
 * them.)
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <sd_arch/syscall.h>

#define SD_LOG_PREFIX "signal"
#include "common/compiler.h"
#include "common/log.h"
#include "arch/arch.h"
#include "probe/probe.h"

/* libc's own entry points, not the interposed ones below */
extern int __sigaction(int sig, const struct sigaction *act, struct sigaction *old);
extern __sighandler_t bsd_signal(int sig, __sighandler_t handler);

static struct sigaction prog_act[_NSIG]; /* what the program believes is installed */
static volatile bool owned[_NSIG];

/* the kernel's struct sigaction layout, for the raw system calls */
struct ksigaction {
	void *handler;
	unsigned long flags;
	void *restorer;
	uint64_t mask;
};

typedef void (*owned_handler_t)(int sig, void *info, void *uc);
static owned_handler_t handlers[_NSIG];

SD_NOTRACE static void owned_entry(int sig, siginfo_t *si, void *uc)
{
	handlers[sig](sig, si, uc);
}

int sd_signal_own(int sig, void (*handler)(int sig, void *info, void *uc))
{
	struct sigaction act, old;

	if (sig <= 0 || sig >= _NSIG)
		return -EINVAL;
	if (owned[sig])
		return 0;
	handlers[sig] = handler;
	memset(&act, 0, sizeof(act));
	act.sa_sigaction = owned_entry;
	act.sa_flags = SA_SIGINFO | SA_RESTART;
	/* NODEFER: a handler may hit another probe (counted as missed) */
	if (sig == SIGTRAP)
		act.sa_flags |= SA_NODEFER;
	/* asynchronous signals wait until sonde's handler is done */
	sigfillset(&act.sa_mask);
	sigdelset(&act.sa_mask, SIGTRAP);
	sigdelset(&act.sa_mask, SIGSEGV);
	sigdelset(&act.sa_mask, SIGBUS);
	sigdelset(&act.sa_mask, SIGILL);
	sigdelset(&act.sa_mask, SIGFPE);
	if (__sigaction(sig, &act, &old))
		return sd_error(-errno, "cannot install a handler for signal %d: %s", sig,
				strerror(errno));
	prog_act[sig] = old;
	__atomic_store_n(&owned[sig], true, __ATOMIC_RELEASE);
	return 0;
}

int sd_signal_setup(void)
{
	return sd_signal_own(SIGTRAP, sd_trap_handler);
}

uint64_t sd_signal_restorer(void)
{
	struct ksigaction k;

	if (sd_raw_syscall6(SYS_rt_sigaction, SIGTRAP, 0, (long)&k, 8, 0, 0))
		return 0;
	return (uint64_t)k.restorer;
}

/* the signals sonde owns now, as a kernel sigset word */
SD_NOTRACE static uint64_t owned_mask(void)
{
	uint64_t m = 0;

	for (int sig = 1; sig <= 64 && sig < _NSIG; sig++)
		if (__atomic_load_n(&owned[sig], __ATOMIC_ACQUIRE))
			m |= 1ULL << (sig - 1);
	return m;
}

/* signal context */
SD_NOTRACE void sd_signal_chain(int sig, void *info, void *uc)
{
	struct sigaction *a = &prog_act[sig];
	const siginfo_t *si = info;
	uint64_t old_mask, mask;

	if (a->sa_handler == SIG_IGN && si->si_code != SI_KERNEL)
		return;
	if (a->sa_handler == SIG_DFL || a->sa_handler == SIG_IGN) {
		/* the process is about to die of it: say where, for whoever debugs it */
		if (sig == SIGTRAP && si->si_code == SI_KERNEL) {
			char msg[80] = "sonde: a breakpoint that is not sonde's, at 0x";
			uint64_t ip = sd_arch_uc_ip(uc) - 1;
			int n = 46;

			for (int sh = 60; sh >= 0; sh -= 4)
				msg[n++] = "0123456789abcdef"[(ip >> sh) & 0xf];
			msg[n++] = '\n';
			sd_raw_syscall3(SYS_write, 2, msg, n);
		}
		/*
		 * The default action (a kernel-raised trap ignores SIG_IGN too):
		 * put the default back and send the signal again; it lands when
		 * this handler returns and ends the process as it would have.
		 */
		struct ksigaction dfl = {.handler = SIG_DFL};

		sd_raw_syscall6(SYS_rt_sigaction, sig, (long)&dfl, 0, 8, 0, 0);
		owned[sig] = false;
		sd_raw_syscall3(SYS_tgkill, sd_raw_syscall0(SYS_getpid), sd_raw_gettid(), sig);
		return;
	}
	memcpy(&mask, &a->sa_mask, sizeof(mask));
	if (!(a->sa_flags & SA_NODEFER))
		mask |= 1ULL << (sig - 1);
	mask &= ~owned_mask();
	sd_raw_syscall6(SYS_rt_sigprocmask, SIG_BLOCK, (long)&mask, (long)&old_mask, 8, 0, 0);
	if (a->sa_flags & SA_SIGINFO)
		a->sa_sigaction(sig, (siginfo_t *)info, uc);
	else
		a->sa_handler(sig);
	if (a->sa_flags & SA_RESETHAND)
		a->sa_handler = SIG_DFL;
	sd_raw_syscall6(SYS_rt_sigprocmask, SIG_SETMASK, (long)&old_mask, 0, 8, 0, 0);
}

/* ---- interposed libc entry points ---------------------------------------- */

__attribute__((visibility("default"))) int sigaction(int sig, const struct sigaction *act,
						     struct sigaction *old)
{
	struct sigaction mine;

	if (sig > 0 && sig < _NSIG && __atomic_load_n(&owned[sig], __ATOMIC_ACQUIRE)) {
		if (old)
			*old = prog_act[sig];
		if (act)
			prog_act[sig] = *act;
		return 0;
	}
	if (act) {
		uint64_t own = owned_mask();

		mine = *act;
		for (int s = 1; own; s++, own >>= 1)
			if (own & 1)
				sigdelset(&mine.sa_mask, s);
		act = &mine;
	}
	return __sigaction(sig, act, old);
}

/*
 * libc's pthread_sigmask, which these replace, keeps its own two signals
 * (thread cancellation, setxid) out of every mask; so do these
 */
#define SD_SIGCANCEL 32
#define SD_SIGSETXID 33

SD_NOTRACE static int set_mask(int how, const sigset_t *set, sigset_t *old)
{
	uint64_t m, o = 0;
	long r;

	if (set) {
		memcpy(&m, set, sizeof(m));
		m &= ~((1ULL << (SD_SIGCANCEL - 1)) | (1ULL << (SD_SIGSETXID - 1)));
		if (how != SIG_UNBLOCK)
			m &= ~owned_mask();
	}
	r = sd_raw_syscall6(SYS_rt_sigprocmask, how, set ? (long)&m : 0, old ? (long)&o : 0, 8, 0,
			    0);
	if (r < 0)
		return (int)-r;
	if (old) {
		sigemptyset(old);
		memcpy(old, &o, sizeof(o));
	}
	return 0;
}

__attribute__((visibility("default"))) int pthread_sigmask(int how, const sigset_t *set,
							   sigset_t *old)
{
	return set_mask(how, set, old);
}

__attribute__((visibility("default"))) int sigprocmask(int how, const sigset_t *set, sigset_t *old)
{
	int err = set_mask(how, set, old);

	if (err) {
		errno = err;
		return -1;
	}
	return 0;
}

__attribute__((visibility("default"))) __sighandler_t signal(int sig, __sighandler_t handler)
{
	if (sig > 0 && sig < _NSIG && __atomic_load_n(&owned[sig], __ATOMIC_ACQUIRE)) {
		__sighandler_t prev = prog_act[sig].sa_handler;

		/* BSD semantics, as glibc's signal() */
		memset(&prog_act[sig], 0, sizeof(prog_act[sig]));
		prog_act[sig].sa_handler = handler;
		prog_act[sig].sa_flags = SA_RESTART;
		sigaddset(&prog_act[sig].sa_mask, sig);
		return prev;
	}
	return bsd_signal(sig, handler);
}
