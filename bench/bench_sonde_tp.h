/* SPDX-License-Identifier: MIT */
/*
 * bench_sonde_tp.h - the sonde tracepoint of bench_ftrace_tp (bench_ftrace.c
 * built with -DBENCH_SONDE_TP): sonde_bench:tp_hit with one int field, the
 * first argument of the traced function.
 */
/* trace headers keep the kernel's layout */
/* clang-format off */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM sonde_bench

#if !defined(BENCH_SONDE_TP_H) || defined(TRACE_HEADER_MULTI_READ)
#define BENCH_SONDE_TP_H

#include <sonde/tracepoint.h>

TRACE_EVENT(tp_hit,
	TP_PROTO(int a),
	TP_ARGS(a),
	TP_STRUCT__entry(
		__field(int, a)
	),
	TP_fast_assign(
		__entry->a = a;
	),
	TP_printk("a=%d", __entry->a)
);

#endif

#undef TRACE_INCLUDE_PATH
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE bench_sonde_tp
#include <sonde/define_trace.h>
/* clang-format on */
