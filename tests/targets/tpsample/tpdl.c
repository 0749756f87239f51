// SPDX-License-Identifier: MIT
/* tpdl.c - libtpdl.so: opened with dlopen() by tpsample_prog after tracing started. */
#define CREATE_TRACE_POINTS
#include "tpdl_trace.h"

int tpdl_hello(int round, const char *who);
int tpdl_hello(int round, const char *who)
{
	trace_tpdl_hello(round, who);
	return round + 1;
}
