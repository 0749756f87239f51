// SPDX-License-Identifier: MIT
/*
 * unwind.c - kretprobes and C++ exceptions.
 *
 * An exception unwinder walks the stack by return address and finds no
 * unwind information for the trampoline, so a throw through a hooked frame
 * would end in std::terminate(). While any kretprobe exists, sonde puts
 * internal probes on the unwinder's entry points:
 *
 *   _Unwind_RaiseException, _Unwind_Resume_or_Rethrow, _Unwind_ForcedUnwind,
 *   _Unwind_Resume
 *       put every real return address of this thread back on its stack
 *   __cxa_begin_catch
 *       the exception landed: frames below the catcher are gone (dropped,
 *       unhandled, as after a longjmp); frames above it are hooked again
 *
 * The probes are ordinary kprobes, found in whatever object defines those
 * names (libgcc_s, libstdc++, or the executable when linked statically).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define SD_LOG_PREFIX "unwind"
#include "common/log.h"
#include "ftrace/fgraph.h"
#include "probe/kretprobe.h"
#include "probe/probe.h"

/*
 * function_graph swaps return addresses too. A frame hooked by both holds
 * one trampoline over the other, in either order; each side only undoes
 * (redoes) a slot holding its own (the real) address, so one more pass of
 * the first side finishes the frames where the other was outermost.
 */
static int on_throw(struct sonde_kprobe *p, struct sonde_regs *regs)
{
	sd_fgraph_unhook_all();
	sd_shadow_unhook_all();
	sd_fgraph_unhook_all();
	return 0;
}

static int on_catch(struct sonde_kprobe *p, struct sonde_regs *regs)
{
	/* regs->sp is the catching frame's stack, minus this call's return address */
	sd_shadow_rehook(regs->sp + 8);
	sd_fgraph_rehook(regs->sp + 8);
	sd_shadow_rehook(regs->sp + 8);
	return 0;
}

static struct {
	const char *name;
	sonde_kprobe_pre_handler_t fn;
	struct sonde_kprobe kp;
	bool on;
} hooks[] = {
    {.name = "_Unwind_RaiseException", .fn = on_throw},
    {.name = "_Unwind_Resume_or_Rethrow", .fn = on_throw},
    {.name = "_Unwind_ForcedUnwind", .fn = on_throw},
    /* a cleanup pad resumes unwinding: a catch inside it may have hooked frames again */
    {.name = "_Unwind_Resume", .fn = on_throw},
    {.name = "__cxa_begin_catch", .fn = on_catch},
};

static pthread_mutex_t hooks_lock = PTHREAD_MUTEX_INITIALIZER;
static int users;

void sd_unwind_hooks_get(void)
{
	char saved[512];
	int saved_errno = errno;

	pthread_mutex_lock(&hooks_lock);
	/* keep the caller's error text: a missing unwinder is not an error */
	snprintf(saved, sizeof(saved), "%s", sonde_last_error());
	if (users++ == 0) {
		for (size_t i = 0; i < sizeof(hooks) / sizeof(hooks[0]); i++) {
			memset(&hooks[i].kp, 0, sizeof(hooks[i].kp));
			hooks[i].kp.symbol_name = hooks[i].name;
			hooks[i].kp.pre_handler = hooks[i].fn;
			hooks[i].kp.__reserved[0] = SD_KP_INTERNAL;
			hooks[i].on = sonde_register_kprobe(&hooks[i].kp) == 0;
			if (hooks[i].on)
				sd_dbg("watching %s for exceptions", hooks[i].name);
		}
	}
	sd_error(saved_errno, "%s", saved);
	pthread_mutex_unlock(&hooks_lock);
}

void sd_unwind_hooks_put(void)
{
	pthread_mutex_lock(&hooks_lock);
	if (users > 0 && --users == 0) {
		for (size_t i = 0; i < sizeof(hooks) / sizeof(hooks[0]); i++)
			if (hooks[i].on) {
				sonde_unregister_kprobe(&hooks[i].kp);
				hooks[i].on = false;
			}
	}
	pthread_mutex_unlock(&hooks_lock);
}
