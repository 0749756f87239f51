/* SPDX-License-Identifier: MIT */
/*
 * t6init.h - the start-up tracing target (t6151): each constructor sleeps
 * its milliseconds and appends "name start_ns end_ns" (CLOCK_MONOTONIC) to
 * the file $T6_LOG, the order and durations sonde's --init must show.
 */
#ifndef T6INIT_H
#define T6INIT_H

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static inline unsigned long long t6_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* @envp: where to find T6_LOG before libc has set up environ (.preinit_array), or NULL */
static inline void t6_ctor_log_env(const char *name, int ms, char **envp)
{
	unsigned long long a = t6_now(), b;
	struct timespec nap = {0, ms * 1000000L};
	const char *path = NULL;
	char line[128];
	int fd, n;

	for (char **e = envp; e && *e && !path; e++)
		if (!strncmp(*e, "T6_LOG=", 7))
			path = *e + 7;
	if (!envp)
		path = getenv("T6_LOG");
	nanosleep(&nap, NULL);
	b = t6_now();
	if (!path)
		return;
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0644);
	n = snprintf(line, sizeof(line), "%s %llu %llu\n", name, a, b);
	if (fd >= 0 && write(fd, line, n) != n)
		n = -1;
	if (fd >= 0)
		close(fd);
}

static inline void t6_ctor_log(const char *name, int ms)
{
	t6_ctor_log_env(name, ms, NULL);
}

#endif
