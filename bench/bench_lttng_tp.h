/* SPDX-License-Identifier: MIT */
/*
 * bench_lttng_tp.h - the LTTng-UST tracepoint of the LTTng anchor
 * (bench_ftrace.c built with -DBENCH_LTTNG by bench/run.sh):
 * sonde_bench:hit with the two arguments of the traced function.
 */
#undef LTTNG_UST_TRACEPOINT_PROVIDER
#define LTTNG_UST_TRACEPOINT_PROVIDER sonde_bench

#undef LTTNG_UST_TRACEPOINT_INCLUDE
#define LTTNG_UST_TRACEPOINT_INCLUDE "./bench_lttng_tp.h"

#if !defined(BENCH_LTTNG_TP_H) || defined(LTTNG_UST_TRACEPOINT_HEADER_MULTI_READ)
#define BENCH_LTTNG_TP_H

#include <lttng/tracepoint.h>

LTTNG_UST_TRACEPOINT_EVENT(sonde_bench, hit, LTTNG_UST_TP_ARGS(int, a, int, b),
			   LTTNG_UST_TP_FIELDS(lttng_ust_field_integer(int, a, a)
						   lttng_ust_field_integer(int, b, b)))

#endif

#include <lttng/tracepoint-event.h>
