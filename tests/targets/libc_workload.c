// SPDX-License-Identifier: MIT
/*
 * libc_workload - a deterministic program that calls ~20 libc functions a
 * known number of times, for t6001 (probe counts against the kernel's
 * uprobes and against an LD_PRELOAD counting shim).
 *
 *   libc_workload        every function, including the ones that call
 *                        other counted functions inside libc (strdup calls
 *                        strlen and memcpy, qsort memcpy, puts strlen, a
 *                        printf of a string strlen)
 *   libc_workload plt    only calls that reach libc through the PLT and
 *                        make no hidden call to another counted function,
 *                        so that an interposing shim sees every call a
 *                        probe at the function sees
 *
 * Every input is read through a volatile so that the compiler keeps real
 * calls (no builtin folding or inline expansion of memcpy, strlen, ...).
 * Nothing depends on time, addresses or the environment; the output is the
 * same on every run.
 */
#undef _FORTIFY_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ROUNDS 200
#define NWORDS 8

static const char *const volatile words[NWORDS] = {
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
};
static volatile size_t two = 2;
static volatile size_t big = 96;
static volatile size_t small = 16;
static volatile int letter_a = 'a';
static volatile int letter_o = 'o';
static const char *volatile dev_zero = "/dev/zero";

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

static unsigned long mix(unsigned long h, unsigned long v)
{
	return (h ^ v) * 0x100000001b3UL;
}

/*
 * Per round: strlen 1, malloc 1, strcpy 1, calloc 1, memcpy 1, memmove 1,
 * memset 1, memcmp 1, strcmp 1, strncmp 1, strchr 1, strrchr 1, realloc 1
 * (shrinking: no copy), snprintf 1, free 2; every 10th round printf 1,
 * every 4th fwrite 1, every 8th getpid 1.
 */
static unsigned long plt_round(int r, unsigned long h)
{
	const char *w = words[r % NWORDS];
	size_t len = strlen(w);
	char *a = malloc(big);
	char *b = calloc(1, 32);
	char buf[64];
	int n;

	strcpy(a, words[r % NWORDS]);
	memcpy(b, a, len + 1);
	memmove(b + 1, b, len);
	memset(a, 'x', len);
	h = mix(h, memcmp(a, b, len) < 0);
	h = mix(h, strcmp(b + 1, words[r % NWORDS]) == 0);
	h = mix(h, strncmp(b, words[(r + 1) % NWORDS], two) == 0);
	h = mix(h, strchr(words[r % NWORDS], letter_a) != NULL);
	h = mix(h, strrchr(words[r % NWORDS], letter_o) != NULL);
	a = realloc(a, small);
	n = snprintf(buf, sizeof(buf), "%d:%lu", r, (unsigned long)len);
	h = mix(h, (unsigned long)n);
	if (r % 10 == 0)
		printf("round %d hash %lx\n", r, h);
	if (r % 4 == 0)
		fwrite(buf, 1, (size_t)n, stdout);
	if (r % 8 == 0)
		h = mix(h, getpid() > 0);
	free(a);
	free(b);
	return h;
}

/*
 * Per round, on top of plt_round: strdup 1, free 1, qsort 1, puts 1,
 * printf 1 (with a string), snprintf 1 (with a string). Inside libc these
 * call more counted functions: strdup malloc, strlen and memcpy; qsort
 * memcpy and free(NULL); puts and the string conversions strlen.
 */
static unsigned long extra_round(int r, unsigned long h)
{
	int v[12];
	char buf[64];
	char *d = strdup(words[r % NWORDS]);

	for (int i = 0; i < 12; i++)
		v[i] = (i * 7 + r) % 12;
	qsort(v, 12, sizeof(v[0]), cmp_int);
	h = mix(h, (unsigned long)v[r % 12]);
	puts(d);
	printf("[%s]\n", d);
	h = mix(h, (unsigned long)snprintf(buf, sizeof(buf), "<%s>", d));
	free(d);
	return h;
}

/* 10 times: open 1, read 1, close 1 */
static unsigned long file_io(unsigned long h)
{
	char buf[64];

	for (int i = 0; i < 10; i++) {
		int fd = open(dev_zero, O_RDONLY | O_CLOEXEC);
		ssize_t n;

		if (fd < 0)
			return mix(h, 1);
		n = read(fd, buf, sizeof(buf));
		h = mix(h, (unsigned long)n);
		close(fd);
	}
	return h;
}

int main(int argc, char **argv)
{
	int plt_only = argc > 1 && strcmp(argv[1], "plt") == 0;
	unsigned long h = 0xcbf29ce484222325UL;

	for (int r = 0; r < ROUNDS; r++) {
		h = plt_round(r, h);
		if (!plt_only)
			h = extra_round(r, h);
	}
	h = file_io(h);
	printf("done %d hash %lx\n", plt_only, h);
	return 0;
}
