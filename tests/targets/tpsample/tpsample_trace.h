/* SPDX-License-Identifier: MIT */
/*
 * tpsample_trace.h - the events of libtpsample.so, written as a kernel
 * subsystem writes include/trace/events/<system>.h: an int field, a
 * string, an array (fixed and dynamic), and a class with two events.
 */
/* trace headers keep the kernel's layout */
/* clang-format off */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM tpsample

#if !defined(TPSAMPLE_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define TPSAMPLE_TRACE_H

#include <sonde/tracepoint.h>

TRACE_EVENT(tps_int,
	TP_PROTO(int value, unsigned long seq),
	TP_ARGS(value, seq),
	TP_STRUCT__entry(
		__field(int, value)
		__field(unsigned long, seq)
	),
	TP_fast_assign(
		__entry->value = value;
		__entry->seq = seq;
	),
	TP_printk("value=%d seq=%lu odd=%s", __entry->value, __entry->seq,
		  __entry->value & 1 ? "yes" : "no")
);

TRACE_EVENT(tps_str,
	TP_PROTO(const char *name, int len),
	TP_ARGS(name, len),
	TP_STRUCT__entry(
		__string(name, name)
		__field(int, len)
	),
	TP_fast_assign(
		__assign_str(name);
		__entry->len = len;
	),
	TP_printk("name=%s len=%d", __get_str(name), __entry->len)
);

TRACE_EVENT(tps_array,
	TP_PROTO(const unsigned int *v, int n),
	TP_ARGS(v, n),
	TP_STRUCT__entry(
		__array(unsigned int, first, 4)
		__field(int, n)
		__dynamic_array(unsigned int, all, n)
	),
	TP_fast_assign(
		for (int i = 0; i < 4; i++)
			__entry->first[i] = i < n ? v[i] : 0;
		__entry->n = n;
		memcpy(__get_dynamic_array(all), v, n * sizeof(*v));
	),
	TP_printk("first={%u,%u,%u,%u} n=%d all=%s", __entry->first[0], __entry->first[1],
		  __entry->first[2], __entry->first[3], __entry->n,
		  __print_array(__get_dynamic_array(all),
				__get_dynamic_array_len(all) / sizeof(unsigned int),
				sizeof(unsigned int)))
);

DECLARE_EVENT_CLASS(tps_state_class,
	TP_PROTO(unsigned int flags, int state),
	TP_ARGS(flags, state),
	TP_STRUCT__entry(
		__field(unsigned int, flags)
		__field(int, state)
	),
	TP_fast_assign(
		__entry->flags = flags;
		__entry->state = state;
	),
	TP_printk("flags=%s state=%s", __print_flags(__entry->flags, "|",
		  { 0x1, "READ" }, { 0x2, "WRITE" }, { 0x4, "SYNC" }),
		  __print_symbolic(__entry->state, { 0, "idle" }, { 1, "busy" }))
);

DEFINE_EVENT(tps_state_class, tps_enter,
	TP_PROTO(unsigned int flags, int state),
	TP_ARGS(flags, state));

DEFINE_EVENT(tps_state_class, tps_leave,
	TP_PROTO(unsigned int flags, int state),
	TP_ARGS(flags, state));

#endif /* TPSAMPLE_TRACE_H */

#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE tpsample_trace
#include <sonde/define_trace.h>
/* clang-format on */
