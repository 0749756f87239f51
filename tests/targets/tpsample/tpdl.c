// SPDX-License-Identifier: MIT
/*
 * tpdl.c - libtpdl.so: opened with dlopen() by tpsample_prog after tracing
 * started. Besides its tracepoint, a USDT probe tpdl:hello (round, who),
 * fired only while its semaphore is raised: for probes asked for before the
 * library is loaded.
 */
#define _SDT_HAS_SEMAPHORES 1
#if __has_include(<sys/sdt.h>)
#include <sys/sdt.h>
#else
/* no systemtap-sdt-dev: a library without the probe (t5101 says so) */
#define STAP_PROBE2(p, n, a, b) ((void)(a), (void)(b))
#endif

#define CREATE_TRACE_POINTS
#include "tpdl_trace.h"

unsigned short tpdl_hello_semaphore __attribute__((unused, section(".probes")));

int tpdl_hello(int round, const char *who);
int tpdl_hello(int round, const char *who)
{
	trace_tpdl_hello(round, who);
	if (tpdl_hello_semaphore)
		STAP_PROBE2(tpdl, hello, round, who);
	return round + 1;
}
