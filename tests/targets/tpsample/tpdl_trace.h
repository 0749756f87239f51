/* SPDX-License-Identifier: MIT */
/* tpdl_trace.h - the event of libtpdl.so, a library the sample program dlopen()s. */
/* trace headers keep the kernel's layout */
/* clang-format off */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM tpdl

#if !defined(TPDL_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define TPDL_TRACE_H

#include <sonde/tracepoint.h>

TRACE_EVENT(tpdl_hello,
	TP_PROTO(int round, const char *who),
	TP_ARGS(round, who),
	TP_STRUCT__entry(
		__field(int, round)
		__string(who, who)
	),
	TP_fast_assign(
		__entry->round = round;
		__assign_str(who);
	),
	TP_printk("round=%d who=%s", __entry->round, __get_str(who))
);

#endif

/* found as tpsample/tpdl_trace.h through the include path (-I tests/targets) */
#undef TRACE_INCLUDE_PATH
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_PATH tpsample
#define TRACE_INCLUDE_FILE tpdl_trace
#include <sonde/define_trace.h>
/* clang-format on */
