// SPDX-License-Identifier: MIT
/*
 * kprobe_demo.c - the kprobes API on a running program: a probe on libc's
 * malloc and a kretprobe timing a recursive function, first through
 * breakpoints (a signal each hit: optimization is held off until then),
 * then once the optimizer has made the probes jumps (nanoseconds). Handlers
 * may run in a signal handler, so they only record; main prints what they
 * saw.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sonde/kprobes.h>

__attribute__((noinline)) long fib(int n)
{
	return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

__attribute__((noinline)) char *greet(const char *who)
{
	size_t len = strlen(who) + 8;
	char *s = malloc(len);

	snprintf(s, len, "hello, %s", who);
	return s;
}

static atomic_ulong malloc_bytes, fib_calls;
static atomic_ulong fib_top_ns;

static int on_malloc(struct sonde_kprobe *p, struct sonde_regs *regs)
{
	malloc_bytes += sonde_regs_arg(regs, 0);
	return 0;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static int fib_entry(struct sonde_kretprobe_instance *ri, struct sonde_regs *regs)
{
	*(uint64_t *)ri->data = now_ns();
	*(int *)(ri->data + 8) = (int)regs->di;
	return 0;
}

static int fib_return(struct sonde_kretprobe_instance *ri, struct sonde_regs *regs)
{
	fib_calls++;
	if (*(int *)(ri->data + 8) == 20) /* the outermost call */
		fib_top_ns = now_ns() - *(uint64_t *)ri->data;
	return 0;
}

int main(void)
{
	struct sonde_kprobe kp = {.symbol_name = "malloc", .pre_handler = on_malloc};
	struct sonde_kretprobe rp = {.kp.symbol_name = "fib",
				     .entry_handler = fib_entry,
				     .handler = fib_return,
				     .data_size = 16,
				     .maxactive = 64};
	char *s;
	long r;

	/* breakpoints first (the optimizer would make them jumps within milliseconds) */
	sonde_set_kprobe_optimization(0);
	if (sonde_register_kprobe(&kp) || sonde_register_kretprobe(&rp)) {
		fprintf(stderr, "demo: %s\n", sonde_last_error());
		return 1;
	}
	printf("probes: malloc at %p, fib return (kretprobe) at %p\n", kp.addr, rp.kp.addr);

	s = greet("sonde");
	r = fib(20);
	printf("%s; fib(20) = %ld\n", s, r);
	free(s);

	printf("malloc: %lu calls seen, %lu bytes asked for\n", sonde_kprobe_hits(&kp),
	       (unsigned long)malloc_bytes);
	printf("fib: %lu returns seen, fib(20) took %.3f ms under the probe (%s), %d missed\n",
	       (unsigned long)fib_calls, fib_top_ns / 1e6,
	       rp.kp.flags & SONDE_KPROBE_FLAG_OPTIMIZED ? "a jump" : "a breakpoint", rp.nmissed);

	/* the optimizer works in the background: once it is done, the entry is a jump */
	sonde_set_kprobe_optimization(1);
	sonde_wait_kprobe_optimizer();
	fib_calls = 0;
	fib(20);
	printf("fib: again, %lu returns seen, fib(20) took %.3f ms (%s)\n",
	       (unsigned long)fib_calls, fib_top_ns / 1e6,
	       rp.kp.flags & SONDE_KPROBE_FLAG_OPTIMIZED ? "a jump" : "still a breakpoint");

	sonde_unregister_kretprobe(&rp);
	sonde_unregister_kprobe(&kp);
	r = fib(20);
	printf("unprobed again: fib(20) = %ld\n", r);
	return 0;
}
