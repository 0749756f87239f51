/* SPDX-License-Identifier: MIT */
/*
 * bench_util.h - what the benchmark programs share: the clock they time
 * with and the order they sort their runs in.
 */
#ifndef SONDE_BENCH_UTIL_H
#define SONDE_BENCH_UTIL_H

#include <time.h>

/* CLOCK_MONOTONIC, in ns */
static inline double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* for qsort() of doubles, ascending */
static inline int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

#endif
