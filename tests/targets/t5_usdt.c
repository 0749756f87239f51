// SPDX-License-Identifier: MIT
/*
 * t5_usdt.c - USDT probes (<sys/sdt.h>) of every operand kind, for the
 * t5001 integration tests.
 *
 *   t5_usdt run N         N rounds, then exit 0
 *   t5_usdt loop [noint]  a round every 20 ms forever; noint: SIGINT ignored
 *
 * First line of the log: "sem=0xADDR" (the runtime address of the guarded
 * probe's semaphore). Then, for every probe the round fires, the line an
 * event of it prints after "(0x…) " with sonde's default fields (argN, the
 * type from the spec: -4 s32, 1 u8, 8 u64 …), e.g.
 *
 *   reg: arg1=-3 arg2=-1000000000000 arg3=200 arg4=-300 arg5=94823…
 *
 * and "round K" after each round. The log goes to $T5_OUT (stdout when
 * unset), flushed line by line.
 *
 * Provider t5, the probes and how gcc -O1 passes their arguments here:
 *   reg      registers of four widths and a pointer  -4@%eax -8@%rsi 1@%dl -2@%cx 8@%r8
 *   mem      a stack slot and two constants          -4@-4(%rsp) -4@$42 -4@$-7
 *   sib      array elements                          -8@(%r9,%rdi,8) -8@8(%r9,%rdi,8)
 *   glob     globals (%rip-relative) and an address  -8@gvar(%rip) -4@gint(%rip) 8@%rdx
 *            -8@garr+16(%rip)
 *   guarded  fired only while its semaphore is raised (someone traces it)
 * (t5001 checks readelf --notes for the kinds, whatever the registers.)
 * Every probe has a semaphore (sdt.h gives them to all probes of a file or
 * to none); only `guarded` tests its own.
 */
#define _SDT_HAS_SEMAPHORES 1
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if __has_include(<sys/sdt.h>)
#include <sys/sdt.h>
#else
/* no systemtap-sdt-dev: a program without probes (t5001 skips) */
#define STAP_PROBE1(p, n, a)		 ((void)(a))
#define STAP_PROBE2(p, n, a, b)		 ((void)(a), (void)(b))
#define STAP_PROBE3(p, n, a, b, c)	 ((void)(a), (void)(b), (void)(c))
#define STAP_PROBE4(p, n, a, b, c, d)	 ((void)(a), (void)(b), (void)(c), (void)(d))
#define STAP_PROBE5(p, n, a, b, c, d, e) ((void)(a), (void)(b), (void)(c), (void)(d), (void)(e))
#endif

#define SEMAPHORE(name) \
	unsigned short t5_##name##_semaphore __attribute__((unused, section(".probes")))
SEMAPHORE(reg);
SEMAPHORE(mem);
SEMAPHORE(sib);
SEMAPHORE(glob);
SEMAPHORE(guarded);

long gvar = 77;
int gint = -5;
char gname[] = "hello";
long garr[4] = {1000, 2000, 3000, 4000};

static FILE *out;

/* one function a probe, so that gcc passes the arguments the plainest way */
__attribute__((noinline)) static void p_reg(int a, long b, unsigned char c, short d, const char *s)
{
	STAP_PROBE5(t5, reg, a, b, c, d, s);
	fprintf(out, "reg: arg1=%d arg2=%ld arg3=%u arg4=%d arg5=%lu\n", a, b, c, d,
		(unsigned long)s);
}

__attribute__((noinline)) static void p_mem(int a)
{
	volatile int v = a * 3;

	STAP_PROBE3(t5, mem, v, 42, -7);
	fprintf(out, "mem: arg1=%d arg2=42 arg3=-7\n", v);
}

__attribute__((noinline)) static void p_sib(long *arr, long i)
{
	STAP_PROBE2(t5, sib, arr[i], arr[i + 1]); /* logged by the caller: (%base,%index,8) */
}

__attribute__((noinline)) static void p_glob(void)
{
	STAP_PROBE4(t5, glob, gvar, gint, gname, garr[2]);
	fprintf(out, "glob: arg1=%ld arg2=%d arg3=%lu arg4=%ld\n", gvar, gint, (unsigned long)gname,
		garr[2]);
}

__attribute__((noinline)) static void p_guarded(int round)
{
	if (t5_guarded_semaphore) {
		STAP_PROBE1(t5, guarded, round);
		fprintf(out, "guarded: arg1=%d\n", round);
	}
}

static void round_of(int k)
{
	static char strs[4][16];
	long arr[5] = {10, 20, 30, 40, 50};
	char *s = strs[k % 4];

	snprintf(s, sizeof(strs[0]), "str%d", k);
	gvar = 77 + k;
	gint = -5 - k;
	garr[2] = 3000 + k;
	p_reg(-(k + 1) * 3, -1000000000000L - k, (unsigned char)(200 + k), (short)(-300 - k), s);
	p_mem(-(k + 1) * 3);
	p_sib(arr, k % 3);
	fprintf(out, "sib: arg1=%ld arg2=%ld\n", arr[k % 3], arr[k % 3 + 1]);
	p_glob();
	p_guarded(k);
	fprintf(out, "round %d\n", k);
	fflush(out);
}

int main(int argc, char **argv)
{
	const char *path = getenv("T5_OUT");
	int n;

	out = path ? fopen(path, "a") : stdout;
	if (!out) {
		perror(path);
		return 1;
	}
	setvbuf(out, NULL, _IOLBF, 0);
	fprintf(out, "sem=%p\n", (void *)&t5_guarded_semaphore);
	fflush(out);
	if (argc >= 3 && !strcmp(argv[1], "run")) {
		n = atoi(argv[2]);
		for (int k = 0; k < n; k++)
			round_of(k);
		return 0;
	}
	if (argc >= 2 && !strcmp(argv[1], "loop")) {
		if (argc >= 3 && !strcmp(argv[2], "noint"))
			signal(SIGINT, SIG_IGN);
		for (int k = 0;; k++) {
			struct timespec ts = {0, 20 * 1000 * 1000};

			round_of(k);
			nanosleep(&ts, NULL);
		}
	}
	fprintf(stderr, "usage: t5_usdt run N | loop [noint]\n");
	return 2;
}
