// SPDX-License-Identifier: MIT
/*
 * tpsample_prog.c - a program using libtpsample.so (linked) and, on
 * request, libtpdl.so (dlopen()ed while it runs). It knows nothing of sonde.
 *
 *   tpsample_prog run [N]          N rounds of every tpsample tracepoint
 *   tpsample_prog dlopen LIB DIR   open LIB, call its tracepoint (round 1),
 *                                  write DIR/ready (our pid), wait for
 *                                  DIR/go, call it again (round 2), close LIB
 *   tpsample_prog spin N THREADS   THREADS threads each running tpsample_spin(N)
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tpsample.h"

static void run(int n)
{
	static const unsigned int v[] = {7, 11, 13, 17, 19, 23};

	for (int i = 0; i < n; i++) {
		tpsample_int(i * 3 - 4);
		tpsample_str(i & 1 ? "beta" : "alpha");
		tpsample_array(v, 2 + i % 5);
		tpsample_state(i % 8, i & 1);
	}
	tpsample_str(NULL);
	printf("tpsample: %d rounds\n", n);
}

typedef int (*hello_fn)(int, const char *);

/* dlopen LIB: its tpdl_hello, NULL (said) when it cannot be had */
static hello_fn open_hello(const char *lib, void **h)
{
	hello_fn hello;

	*h = dlopen(lib, RTLD_NOW);
	if (!*h) {
		fprintf(stderr, "tpsample: %s\n", dlerror());
		return NULL;
	}
	hello = (hello_fn)dlsym(*h, "tpdl_hello");
	if (!hello)
		fprintf(stderr, "tpsample: %s has no tpdl_hello\n", lib);
	return hello;
}

static int dl(const char *lib, const char *dir)
{
	char path[4096];
	void *h;
	hello_fn hello = open_hello(lib, &h);
	FILE *f;

	if (!hello)
		return 1;
	hello(1, "before");
	snprintf(path, sizeof(path), "%s/ready.tmp", dir);
	f = fopen(path, "w");
	if (!f)
		return 1;
	fprintf(f, "%d\n", (int)getpid());
	fclose(f);
	{
		char ready[4096];

		snprintf(ready, sizeof(ready), "%s/ready", dir);
		rename(path, ready);
	}
	snprintf(path, sizeof(path), "%s/go", dir);
	for (int i = 0; i < 3000 && access(path, F_OK); i++) {
		struct timespec ts = {0, 10 * 1000 * 1000};

		nanosleep(&ts, NULL);
	}
	hello(2, "after");
	tpsample_int(42);
	{
		/*
		 * a moment for a reader to learn the new event's format while we
		 * live (the sonde command asks for it when it meets its first record)
		 */
		struct timespec ts = {0, 300 * 1000 * 1000};

		nanosleep(&ts, NULL);
	}
	dlclose(h);
	printf("tpsample: dlopen done\n");
	return 0;
}

/* dlopen LIB, fire its event N times and exit at once: nobody waits for a reader */
static int dlquick(const char *lib, int n)
{
	void *h;
	hello_fn hello = open_hello(lib, &h);

	if (!hello)
		return 1;
	for (int i = 0; i < n; i++)
		hello(i, "quick");
	return 0;
}

static unsigned long spin_n;

static void *spinner(void *arg)
{
	(void)arg;
	return (void *)tpsample_spin(spin_n);
}

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "run")) {
		run(argc >= 3 ? atoi(argv[2]) : 3);
		return 0;
	}
	if (argc >= 4 && !strcmp(argv[1], "dlopen"))
		return dl(argv[2], argv[3]);
	if (argc >= 4 && !strcmp(argv[1], "dlquick"))
		return dlquick(argv[2], atoi(argv[3]));
	if (argc >= 4 && !strcmp(argv[1], "spin")) {
		int nt = atoi(argv[3]);
		pthread_t t[64];

		spin_n = strtoul(argv[2], NULL, 0);
		for (int i = 0; i < nt && i < 64; i++)
			pthread_create(&t[i], NULL, spinner, NULL);
		for (int i = 0; i < nt && i < 64; i++)
			pthread_join(t[i], NULL);
		printf("tpsample: %d threads done\n", nt);
		return 0;
	}
	fprintf(stderr, "usage: tpsample_prog run [N] | dlopen LIB DIR | dlquick LIB N | spin N "
			"THREADS\n");
	return 2;
}
