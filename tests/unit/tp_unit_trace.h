/* SPDX-License-Identifier: MIT */
/* tp_unit_trace.h - the tracepoints test_tracepoint.c defines in its own executable. */
/* trace headers keep the kernel's layout */
/* clang-format off */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM tpunit

#if !defined(TP_UNIT_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define TP_UNIT_TRACE_H

#include <sonde/tracepoint.h>

TRACE_EVENT(tpu_int,
	TP_PROTO(int value, char tag),
	TP_ARGS(value, tag),
	TP_STRUCT__entry(
		__field(char, tag)
		__field(int, value)
		__field(unsigned long long, big)
		__field(short, neg)
	),
	TP_fast_assign(
		__entry->tag = tag;
		__entry->value = value;
		__entry->big = 0x123456789ULL * (unsigned int)value;
		__entry->neg = (short)-value;
	),
	TP_printk("tag=%c value=%d big=%#llx neg=%hd", __entry->tag, __entry->value,
		  __entry->big, __entry->neg)
);

TRACE_EVENT(tpu_mix,
	TP_PROTO(const char *s, const unsigned char *bytes, int n),
	TP_ARGS(s, bytes, n),
	TP_STRUCT__entry(
		__array(char, comm, 8)
		__string(s, s)
		__dynamic_array(unsigned char, bytes, n)
		__string_len(first3, s, 3)
	),
	TP_fast_assign(
		memset(__entry->comm, 0, sizeof(__entry->comm));
		strncpy(__entry->comm, "unit", sizeof(__entry->comm) - 1);
		__assign_str(s);
		memcpy(__get_dynamic_array(bytes), bytes, n);
		__assign_str(first3, s);
	),
	TP_printk("comm=%s s=%s bytes=%s n=%u first3=%s", __entry->comm, __get_str(s),
		  __print_hex(__get_dynamic_array(bytes), __get_dynamic_array_len(bytes)),
		  __get_dynamic_array_len(bytes), __get_str(first3))
);

TRACE_EVENT_CONDITION(tpu_cond,
	TP_PROTO(int v),
	TP_ARGS(v),
	TP_CONDITION(v > 10),
	TP_STRUCT__entry(__field(int, v)),
	TP_fast_assign(__entry->v = v;),
	TP_printk("v=%d", __entry->v)
);

/* TP_printk calls a function: sonde cannot evaluate it and prints fields instead */
TRACE_EVENT(tpu_opaque,
	TP_PROTO(int v),
	TP_ARGS(v),
	TP_STRUCT__entry(__field(int, v) __string(msg, "hi")),
	TP_fast_assign(__entry->v = v; __assign_str(msg);),
	TP_printk("v=%d abs=%d", __entry->v, abs(__entry->v))
);

#endif

#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE tp_unit_trace
#include <sonde/define_trace.h>
/* clang-format on */
