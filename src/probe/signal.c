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
 *
 * A thread running one of the program's handlers is seen there, but goes
 * back to where the signal found it: replacing code there meanwhile (a
 * probe's jump over several instructions, a patched nop) would make it
 * resume inside the new instruction. So every handler the program sets
 * through these calls runs behind a wrapper that records where its signal
 * interrupted the thread (struct sd_sig_record), and the chained ones
 * do the same; sd_threads_outside() counts those places. (Handlers set
 * before libsonde was loaded, and SA_RESETHAND ones, run unwrapped.)
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
#include "probe/thread.h"

/* libc's own entry points, not the interposed ones below */
extern int __sigaction(int sig, const struct sigaction *act, struct sigaction *old);

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

/* a handler's frame is below the place it interrupted, on the same stack */
#define SAME_STACK (8UL << 20)

/*
 * Before one of the program's handlers: where its signal interrupted the
 * thread. Places of handlers left by longjmp are dropped once a later
 * signal finds the thread at or above them on the same stack. Returns the
 * depth to put back after.
 */
SD_NOTRACE static uint8_t handler_enter(void *uc)
{
	struct sd_sig_record *r = &sd_sig_self;
	uint64_t sp = sd_arch_uc_sp(uc);
	uint8_t d = r->depth;

	if (!sd_self.registered)
		sd_thread_register(&sd_self);
	while (d && d <= SD_SIG_NEST && sp >= r->at[d - 1].sp && sp - r->at[d - 1].sp < SAME_STACK)
		d--;
	if (d < SD_SIG_NEST) {
		r->at[d].ip = sd_arch_uc_ip(uc);
		r->at[d].sp = sp;
	}
	barrier(); /* (the place before the depth that counts it) */
	r->depth = d < 255 ? d + 1 : d;
	return d;
}

SD_NOTRACE static void handler_leave(uint8_t depth)
{
	barrier();
	sd_sig_self.depth = depth;
}

/* signal context */
SD_NOTRACE void sd_signal_chain(int sig, void *info, void *uc)
{
	struct sigaction *a = &prog_act[sig];
	const siginfo_t *si = info;
	uint64_t old_mask, mask;
	uint8_t depth;

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
	depth = handler_enter(uc);
	if (a->sa_flags & SA_SIGINFO)
		a->sa_sigaction(sig, (siginfo_t *)info, uc);
	else
		a->sa_handler(sig);
	handler_leave(depth);
	if (a->sa_flags & SA_RESETHAND)
		a->sa_handler = SIG_DFL;
	sd_raw_syscall6(SYS_rt_sigprocmask, SIG_SETMASK, (long)&old_mask, 0, 8, 0, 0);
}

/* ---- the program's handlers of the signals sonde does not own ------------------- */

/*
 * The handler behind each wrapped signal, published whole: a new one goes
 * into the other of two slots, then the index flips (a signal may be
 * delivered on another thread while the program changes its handler).
 */
struct wrapped {
	void *fn;
	bool siginfo;
};

static struct wrapped wrapped[_NSIG][2];
static uint8_t wrapped_cur[_NSIG]; /* the slot in use, plus one; 0: not wrapped */

SD_NOTRACE static void wrap_entry(int sig, siginfo_t *si, void *uc)
{
	uint8_t cur = __atomic_load_n(&wrapped_cur[sig], __ATOMIC_ACQUIRE);
	struct wrapped w;
	uint8_t depth;

	if (!cur)
		return; /* (unwrapped meanwhile: the kernel has the program's own now) */
	w = wrapped[sig][cur - 1];
	depth = handler_enter(uc);
	if (w.siginfo)
		((void (*)(int, siginfo_t *, void *))w.fn)(sig, si, uc);
	else
		((void (*)(int))w.fn)(sig);
	handler_leave(depth);
}

/*
 * What the kernel is to have for the program's @act, in @k: its handler
 * behind wrap_entry (published before it is installed), or as it is.
 * Whether it is wrapped.
 */
static bool wrap(int sig, const struct sigaction *act, struct sigaction *k)
{
	uint8_t cur = wrapped_cur[sig];
	struct wrapped *w;

	*k = *act;
	if (act->sa_handler == SIG_DFL || act->sa_handler == SIG_IGN ||
	    (act->sa_flags & SA_RESETHAND))
		return false;
	w = &wrapped[sig][cur == 1 ? 1 : 0];
	w->siginfo = act->sa_flags & SA_SIGINFO;
	w->fn = w->siginfo ? (void *)act->sa_sigaction : (void *)act->sa_handler;
	__atomic_store_n(&wrapped_cur[sig], (uint8_t)(w - wrapped[sig] + 1), __ATOMIC_RELEASE);
	k->sa_sigaction = wrap_entry;
	k->sa_flags |= SA_SIGINFO;
	return true;
}

/* @k as the program set it: the handler behind the wrapper */
static void unwrap(int sig, struct sigaction *k)
{
	uint8_t cur = wrapped_cur[sig];

	if (k->sa_sigaction != wrap_entry || !cur)
		return;
	if (wrapped[sig][cur - 1].siginfo) {
		k->sa_sigaction = wrapped[sig][cur - 1].fn;
	} else {
		k->sa_handler = wrapped[sig][cur - 1].fn;
		k->sa_flags &= ~SA_SIGINFO;
	}
}

/*
 * One change of a wrapped disposition at a time, with the program's
 * signals blocked: sigaction() may be called from a handler, so no mutex
 */
static volatile int wrap_busy;

static uint64_t wrap_lock(void)
{
	/*
	 * (but sonde's own signals, and the faults: a breakpoint met with
	 * SIGTRAP blocked, in a probed libc function, kills the process)
	 */
	uint64_t all = ~(owned_mask() | 1ULL << (SIGTRAP - 1) | 1ULL << (SIGSEGV - 1) |
			 1ULL << (SIGBUS - 1) | 1ULL << (SIGILL - 1) | 1ULL << (SIGFPE - 1)),
		 old;

	sd_raw_syscall6(SYS_rt_sigprocmask, SIG_BLOCK, (long)&all, (long)&old, 8, 0, 0);
	while (__atomic_exchange_n(&wrap_busy, 1, __ATOMIC_ACQUIRE))
		__builtin_ia32_pause();
	return old;
}

static void wrap_unlock(uint64_t old)
{
	__atomic_store_n(&wrap_busy, 0, __ATOMIC_RELEASE);
	sd_raw_syscall6(SYS_rt_sigprocmask, SIG_SETMASK, (long)&old, 0, 8, 0, 0);
}

/* ---- interposed libc entry points ---------------------------------------- */

__attribute__((visibility("default"))) int sigaction(int sig, const struct sigaction *act,
						     struct sigaction *old)
{
	struct sigaction mine, was;
	uint64_t mask;
	bool wrapped_now = false;
	int r;

	if (sig > 0 && sig < _NSIG && __atomic_load_n(&owned[sig], __ATOMIC_ACQUIRE)) {
		if (old)
			*old = prog_act[sig];
		if (act)
			prog_act[sig] = *act;
		return 0;
	}
	if (sig <= 0 || sig >= _NSIG || sig == SIGKILL || sig == SIGSTOP)
		return __sigaction(sig, act, old);
	mask = wrap_lock();
	r = __sigaction(sig, NULL, &was);
	if (!r)
		unwrap(sig, &was);
	if (!r && act) {
		uint64_t own = owned_mask();

		wrapped_now = wrap(sig, act, &mine);
		for (int s = 1; own; s++, own >>= 1)
			if (own & 1)
				sigdelset(&mine.sa_mask, s);
		r = __sigaction(sig, &mine, NULL);
	}
	/* (unwrapped once the kernel has the program's own) */
	if (!r && act && !wrapped_now)
		__atomic_store_n(&wrapped_cur[sig], 0, __ATOMIC_RELEASE);
	wrap_unlock(mask);
	if (!r && old)
		*old = was;
	return r;
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
	struct sigaction act, old;

	/* BSD semantics, as glibc's signal(); sigaction() above shadows or wraps it */
	memset(&act, 0, sizeof(act));
	act.sa_handler = handler;
	act.sa_flags = SA_RESTART;
	sigaddset(&act.sa_mask, sig);
	if (sigaction(sig, &act, &old))
		return SIG_ERR; /* (errno set) */
	return old.sa_handler;
}
