// SPDX-License-Identifier: MIT
/*
 * tpsample.c - libtpsample.so: the one file that defines
 * CREATE_TRACE_POINTS, and the functions whose calls are traced.
 */
#include <string.h>

#include "tpsample.h"

#define CREATE_TRACE_POINTS
#include "tpsample_trace.h"

static unsigned long seq;

void tpsample_int(int value)
{
	trace_tps_int(value, __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED));
}

void tpsample_str(const char *name)
{
	trace_tps_str(name, name ? (int)strlen(name) : -1);
}

void tpsample_array(const unsigned int *v, int n)
{
	trace_tps_array(v, n);
}

void tpsample_state(unsigned int flags, int state)
{
	trace_tps_enter(flags, state);
	trace_tps_leave(flags, state);
}

unsigned long tpsample_spin(unsigned long n)
{
	unsigned long sum = 0;

	for (unsigned long i = 0; i < n; i++) {
		trace_tps_int((int)i, i);
		sum += i;
	}
	return sum;
}
