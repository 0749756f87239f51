// SPDX-License-Identifier: MIT
/*
 * t3_signals.c - a program that uses SIGTRAP and signal masks itself
 * (t3008): what it sees must not change under sonde.
 *
 *   1. its own SIGTRAP handler, installed with sigaction(), gets its int3
 *   2. sigaction() reads back its own handler, and SIG_DFL before it set one
 *   3. with every signal blocked (sigprocmask, pthread_sigmask, and a
 *      handler whose sa_mask is full) it calls work(), which sonde probes
 *
 * Prints one line per step and the number of work() calls.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static volatile int traps;

__attribute__((noinline)) int work(int x)
{
	asm volatile("" : "+r"(x)::"memory");
	return x + 1;
}

static void on_trap(int sig)
{
	(void)sig;
	traps++;
}

static void on_usr1(int sig)
{
	work(sig);
}

int main(void)
{
	struct sigaction sa, old;
	sigset_t all, now;
	int calls = 0;

	sigaction(SIGTRAP, NULL, &old);
	printf("initial SIGTRAP handler: %s\n", old.sa_handler == SIG_DFL ? "default" : "other");
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_trap;
	sigaction(SIGTRAP, &sa, NULL);
	sigaction(SIGTRAP, NULL, &old);
	printf("handler reads back: %s\n", old.sa_handler == on_trap ? "mine" : "other");
	asm volatile("int3");
	printf("own traps: %d\n", traps);

	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, NULL);
	calls += work(1) == 2;
	pthread_sigmask(SIG_SETMASK, &all, NULL);
	calls += work(2) == 3;
	pthread_sigmask(SIG_SETMASK, NULL, &now);
	printf("SIGUSR1 blocked: %d\n", sigismember(&now, SIGUSR1));
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sigfillset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	raise(SIGUSR1);
	calls++;
	printf("work calls: %d\n", calls);
	return 0;
}
