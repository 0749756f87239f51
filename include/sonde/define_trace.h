/* SPDX-License-Identifier: MIT */
/*
 * define_trace.h - included last by a trace header (outside its guard):
 * in the one file that defined CREATE_TRACE_POINTS, includes that header
 * again once per pass, each time with the event macros meaning something
 * else (the kernel's include/trace/define_trace.h and trace_events.h):
 *
 *   A  struct __sonde_raw_<class>: the record (common header, fields,
 *      u32 __data_loc_<name> for dynamic ones, char __data[])
 *   B  struct __sonde_offsets_<class>: where each dynamic field's data goes
 *   C  __sonde_fields_<class>[] (the format's field lines) and
 *      __sonde_print_fmt_<class> (TP_printk's arguments as text, __entry
 *      shown as REC)
 *   D  __sonde_fill_<class>(): the dynamic fields' sizes, from the arguments
 *   E  __sonde_record_<class>(): TP_fast_assign into a record on the
 *      stack and one rt->write() when no field is dynamic, else reserve,
 *      TP_fast_assign, commit; the
 *      TP_printk type check; per event the struct sonde_tracepoint
 *      descriptor and __sonde_trace_<event>(), what trace_<event>() calls
 *
 * The header is found as TRACE_INCLUDE_PATH/TRACE_INCLUDE_FILE.h when
 * TRACE_INCLUDE_PATH is defined, else as <TRACE_INCLUDE_FILE.h> through the
 * include path; TRACE_INCLUDE_FILE defaults to TRACE_SYSTEM.
 */
#ifdef CREATE_TRACE_POINTS

#undef CREATE_TRACE_POINTS /* the passes below include the header again */

#ifndef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE TRACE_SYSTEM
#define __SONDE_UNDEF_TRACE_INCLUDE_FILE
#endif
/* no spaces may come into the path: */
/* clang-format off */
#ifdef TRACE_INCLUDE_PATH
#define __SONDE_TRACE_INCLUDE_2(path, file) __SONDE_STRINGIFY(path/file.h)
#define __SONDE_TRACE_INCLUDE(file)	    __SONDE_TRACE_INCLUDE_2(TRACE_INCLUDE_PATH, file)
#else
#define __SONDE_TRACE_INCLUDE(file) <file.h>
#endif
/* clang-format on */

#define TRACE_HEADER_MULTI_READ

#ifdef __cplusplus
#error "the file that defines CREATE_TRACE_POINTS must be C"
#endif

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"

#define __SONDE_IS_SIGNED(type) ((type)-1 < (type)1)
#define __SONDE_TP_SECTION \
	__attribute__((section("__sonde_tracepoints"), used, aligned(8))) __SONDE_RETAIN

/* the same in every pass: a TRACE_EVENT is a class and one event of it */
#undef SONDE_TRACE_EVENT
#define SONDE_TRACE_EVENT(name, proto, args, tstruct, assign, print)             \
	SONDE_DECLARE_EVENT_CLASS(name, SONDE_PARAMS(proto), SONDE_PARAMS(args), \
				  SONDE_PARAMS(tstruct), SONDE_PARAMS(assign),   \
				  SONDE_PARAMS(print));                          \
	SONDE_DEFINE_EVENT(name, name, SONDE_PARAMS(proto), SONDE_PARAMS(args))
#undef SONDE_TRACE_EVENT_CONDITION
#define SONDE_TRACE_EVENT_CONDITION(name, proto, args, cond, tstruct, assign, print)            \
	SONDE_TRACE_EVENT(name, SONDE_PARAMS(proto), SONDE_PARAMS(args), SONDE_PARAMS(tstruct), \
			  SONDE_PARAMS(assign), SONDE_PARAMS(print))
#undef SONDE_DEFINE_EVENT_CONDITION
#define SONDE_DEFINE_EVENT_CONDITION(template, name, proto, args, cond) \
	SONDE_DEFINE_EVENT(template, name, SONDE_PARAMS(proto), SONDE_PARAMS(args))

#define SONDE_TP_STRUCT__entry(...) __VA_ARGS__
#define SONDE_TP_fast_assign(...)   __VA_ARGS__

#undef SONDE_DECLARE_EVENT_CLASS
#undef SONDE_DEFINE_EVENT
#undef SONDE_DEFINE_EVENT_PRINT

/* ---- A: the record ------------------------------------------------------------------------- */

#define SONDE_TP_printk(...)		     __VA_ARGS__
#define SONDE_FIELD(type, item)		     type item;
#define SONDE_ARRAY(type, item, len)	     type item[len];
#define SONDE_STRING(item, src)		     uint32_t __data_loc_##item;
#define SONDE_STRING_LEN(item, src, len)     uint32_t __data_loc_##item;
#define SONDE_DYNAMIC_ARRAY(type, item, len) uint32_t __data_loc_##item;

#define SONDE_DECLARE_EVENT_CLASS(call, proto, args, tstruct, assign, print) \
	struct __sonde_raw_##call {                                          \
		struct sonde_trace_entry __sonde_ent;                        \
		tstruct char __data[];                                       \
	}
#define SONDE_DEFINE_EVENT(template, name, proto, args)		     __SONDE_DECL_END
#define SONDE_DEFINE_EVENT_PRINT(template, name, proto, args, print) __SONDE_DECL_END

#include __SONDE_TRACE_INCLUDE(TRACE_INCLUDE_FILE)

/* ---- B: where the dynamic data goes ------------------------------------------------------ */

#undef SONDE_FIELD
#undef SONDE_ARRAY
#undef SONDE_STRING
#undef SONDE_STRING_LEN
#undef SONDE_DYNAMIC_ARRAY
#undef SONDE_DECLARE_EVENT_CLASS
#define SONDE_FIELD(type, item)
#define SONDE_ARRAY(type, item, len)
#define SONDE_STRING(item, src) \
	uint32_t item;          \
	uint32_t item##_copy_;  \
	const char *item##_ptr_;
#define SONDE_STRING_LEN(item, src, len)     SONDE_STRING(item, src)
#define SONDE_DYNAMIC_ARRAY(type, item, len) uint32_t item;

#define SONDE_DECLARE_EVENT_CLASS(call, proto, args, tstruct, assign, print) \
	struct __sonde_offsets_##call {                                      \
		uint32_t __sonde_unused_;                                    \
		tstruct                                                      \
	}

#include __SONDE_TRACE_INCLUDE(TRACE_INCLUDE_FILE)

/* ---- C: the format: field lines and print fmt ------------------------------------------- */

#undef SONDE_FIELD
#undef SONDE_ARRAY
#undef SONDE_STRING
#undef SONDE_STRING_LEN
#undef SONDE_DYNAMIC_ARRAY
#undef SONDE_DECLARE_EVENT_CLASS
#undef SONDE_DEFINE_EVENT_PRINT
#undef SONDE_TP_printk
#define SONDE_FIELD(_type, item)                \
	{.type = #_type,                        \
	 .name = #item,                         \
	 .size = sizeof(_type),                 \
	 .align = _Alignof(_type),              \
	 .elem_size = sizeof(_type),            \
	 .is_signed = __SONDE_IS_SIGNED(_type), \
	 .kind = SONDE_TPF_SCALAR},
#define SONDE_ARRAY(_type, item, len)           \
	{.type = #_type,                        \
	 .name = #item,                         \
	 .size = sizeof(_type[len]),            \
	 .align = _Alignof(_type),              \
	 .array_len = (len),                    \
	 .elem_size = sizeof(_type),            \
	 .is_signed = __SONDE_IS_SIGNED(_type), \
	 .kind = SONDE_TPF_ARRAY},
#define SONDE_STRING(item, src)                \
	{.type = "__data_loc char[]",          \
	 .name = #item,                        \
	 .size = 4,                            \
	 .align = 4,                           \
	 .elem_size = 1,                       \
	 .is_signed = __SONDE_IS_SIGNED(char), \
	 .kind = SONDE_TPF_STRING},
#define SONDE_STRING_LEN(item, src, len) SONDE_STRING(item, src)
#define SONDE_DYNAMIC_ARRAY(_type, item, len)   \
	{.type = "__data_loc " #_type "[]",     \
	 .name = #item,                         \
	 .size = 4,                             \
	 .align = 4,                            \
	 .elem_size = sizeof(_type),            \
	 .is_signed = __SONDE_IS_SIGNED(_type), \
	 .kind = SONDE_TPF_DYN_ARRAY},

/* TP_printk as text: the arguments as written, __entry shown as REC */
#define SONDE_TP_printk(...) __SONDE_STRINGIFY(__VA_ARGS__)
#define __entry		     REC
/* the helpers keep their kernel names in the text */
#undef __get_str
#undef __get_dynamic_array
#undef __get_dynamic_array_len
#undef __print_flags
#undef __print_flags_u64
#undef __print_symbolic
#undef __print_symbolic_u64
#undef __print_array
#undef __print_hex
#undef __print_hex_str
#define SONDE_GET_STR(field)		   __get_str(field)
#define SONDE_GET_DYNAMIC_ARRAY(field)	   __get_dynamic_array(field)
#define SONDE_GET_DYNAMIC_ARRAY_LEN(field) __get_dynamic_array_len(field)
#define SONDE_PRINT_FLAGS(...)		   __print_flags(__VA_ARGS__)
#define SONDE_PRINT_FLAGS_U64(...)	   __print_flags_u64(__VA_ARGS__)
#define SONDE_PRINT_SYMBOLIC(...)	   __print_symbolic(__VA_ARGS__)
#define SONDE_PRINT_SYMBOLIC_U64(...)	   __print_symbolic_u64(__VA_ARGS__)
#define SONDE_PRINT_ARRAY(...)		   __print_array(__VA_ARGS__)
#define SONDE_PRINT_HEX(...)		   __print_hex(__VA_ARGS__)
#define SONDE_PRINT_HEX_STR(...)	   __print_hex_str(__VA_ARGS__)

#define SONDE_DECLARE_EVENT_CLASS(call, proto, args, tstruct, assign, print) \
	static const struct sonde_tp_field __sonde_fields_##call[]           \
	    __attribute__((unused)) = {tstruct{.name = 0}};                  \
	static const char __sonde_print_fmt_##call[] __attribute__((unused)) = print
#define SONDE_DEFINE_EVENT_PRINT(template, name, proto, args, print) \
	static const char __sonde_print_fmt_##name[] = print

#include __SONDE_TRACE_INCLUDE(TRACE_INCLUDE_FILE)

#undef __entry
#undef SONDE_GET_STR
#undef SONDE_GET_DYNAMIC_ARRAY
#undef SONDE_GET_DYNAMIC_ARRAY_LEN
#undef SONDE_PRINT_FLAGS
#undef SONDE_PRINT_FLAGS_U64
#undef SONDE_PRINT_SYMBOLIC
#undef SONDE_PRINT_SYMBOLIC_U64
#undef SONDE_PRINT_ARRAY
#undef SONDE_PRINT_HEX
#undef SONDE_PRINT_HEX_STR
#ifndef SONDE_TP_PREFIXED_ONLY
#define __get_str		SONDE_GET_STR
#define __get_dynamic_array	SONDE_GET_DYNAMIC_ARRAY
#define __get_dynamic_array_len SONDE_GET_DYNAMIC_ARRAY_LEN
#define __print_flags		SONDE_PRINT_FLAGS
#define __print_flags_u64	SONDE_PRINT_FLAGS_U64
#define __print_symbolic	SONDE_PRINT_SYMBOLIC
#define __print_symbolic_u64	SONDE_PRINT_SYMBOLIC_U64
#define __print_array		SONDE_PRINT_ARRAY
#define __print_hex		SONDE_PRINT_HEX
#define __print_hex_str		SONDE_PRINT_HEX_STR
#endif

/* ---- D: sizing the dynamic fields ------------------------------------------------------- */

#undef SONDE_FIELD
#undef SONDE_ARRAY
#undef SONDE_STRING
#undef SONDE_STRING_LEN
#undef SONDE_DYNAMIC_ARRAY
#undef SONDE_DECLARE_EVENT_CLASS
#undef SONDE_DEFINE_EVENT_PRINT
#undef SONDE_TP_printk
#define SONDE_TP_printk(...) __VA_ARGS__

#define __SONDE_DATA(item, bytes)                                                            \
	{                                                                                    \
		uint64_t __sonde_len = (bytes);                                              \
		__o->item =                                                                  \
		    (uint32_t)(__sonde_len << 16) | (uint32_t)(__sonde_base + __sonde_size); \
		__sonde_size += __sonde_len;                                                 \
	}
#define SONDE_FIELD(type, item)
#define SONDE_ARRAY(type, item, len)
#define SONDE_STRING(item, src)                                                       \
	{                                                                             \
		const char *__sonde_s = (const char *)(src);                          \
		if (!__sonde_s)                                                       \
			__sonde_s = "(null)";                                         \
		__o->item##_ptr_ = __sonde_s;                                         \
		__o->item##_copy_ = __sonde_strnlen(__sonde_s, SONDE_TP_STR_MAX - 1); \
		__SONDE_DATA(item, __o->item##_copy_ + 1)                             \
	}
#define SONDE_STRING_LEN(item, src, len)                     \
	{                                                    \
		const char *__sonde_s = (const char *)(src); \
		uint64_t __sonde_n = (uint64_t)(len);        \
		if (!__sonde_s) {                            \
			__sonde_s = "(null)";                \
			__sonde_n = 6;                       \
		}                                            \
		if (__sonde_n > SONDE_TP_STR_MAX - 1)        \
			__sonde_n = SONDE_TP_STR_MAX - 1;    \
		__o->item##_ptr_ = __sonde_s;                \
		__o->item##_copy_ = (uint32_t)__sonde_n;     \
		__SONDE_DATA(item, __sonde_n + 1)            \
	}
#define SONDE_DYNAMIC_ARRAY(type, item, len) __SONDE_DATA(item, (uint64_t)(len) * sizeof(type))

#define SONDE_DECLARE_EVENT_CLASS(call, proto, args, tstruct, assign, print)               \
	static inline __attribute__((always_inline, unused))                               \
	uint64_t __sonde_fill_##call(struct __sonde_offsets_##call *__o, proto)            \
	{                                                                                  \
		const uint64_t __sonde_base = offsetof(struct __sonde_raw_##call, __data); \
		uint64_t __sonde_size = 0;                                                 \
                                                                                           \
		(void)__o;                                                                 \
		(void)__sonde_base;                                                        \
		tstruct return __sonde_size;                                               \
	}                                                                                  \
	__SONDE_DECL_END
#define SONDE_DEFINE_EVENT_PRINT(template, name, proto, args, print) __SONDE_DECL_END

#include __SONDE_TRACE_INCLUDE(TRACE_INCLUDE_FILE)

/* ---- E: writing the record; the descriptors ------------------------------------------------- */

#undef SONDE_FIELD
#undef SONDE_ARRAY
#undef SONDE_STRING
#undef SONDE_STRING_LEN
#undef SONDE_DYNAMIC_ARRAY
#undef SONDE_DECLARE_EVENT_CLASS
#undef SONDE_DEFINE_EVENT
#undef SONDE_DEFINE_EVENT_PRINT
#undef __SONDE_DATA
#define SONDE_FIELD(type, item)
#define SONDE_ARRAY(type, item, len)
#define SONDE_STRING(item, src)		     __entry->__data_loc_##item = __data_offsets.item;
#define SONDE_STRING_LEN(item, src, len)     __entry->__data_loc_##item = __data_offsets.item;
#define SONDE_DYNAMIC_ARRAY(type, item, len) __entry->__data_loc_##item = __data_offsets.item;

#define SONDE_GET_STR(field) ((char *)__entry + (__entry->__data_loc_##field & 0xffff))
#define SONDE_GET_DYNAMIC_ARRAY(field) \
	((void *)((char *)__entry + (__entry->__data_loc_##field & 0xffff)))
#define SONDE_GET_DYNAMIC_ARRAY_LEN(field) ((__entry->__data_loc_##field >> 16) & 0xffff)
/* the string __string(field, src) measured; a second argument (older kernels) is ignored */
#define SONDE_ASSIGN_STR(...) __SONDE_ASSIGN_STR(__VA_ARGS__, 0)
#define __SONDE_ASSIGN_STR(field, ...)                                                        \
	do {                                                                                  \
		char *__sonde_d = SONDE_GET_STR(field);                                       \
		memcpy(__sonde_d, __data_offsets.field##_ptr_, __data_offsets.field##_copy_); \
		__sonde_d[__data_offsets.field##_copy_] = '\0';                               \
	} while (0)
/* in the type check only: what the helpers give to %s */
#define SONDE_PRINT_FLAGS(flag, ...)	      ((void)(flag), "")
#define SONDE_PRINT_FLAGS_U64(flag, ...)      ((void)(flag), "")
#define SONDE_PRINT_SYMBOLIC(val, ...)	      ((void)(val), "")
#define SONDE_PRINT_SYMBOLIC_U64(val, ...)    ((void)(val), "")
#define SONDE_PRINT_ARRAY(array, count, size) ((void)(array), (void)(count), (void)(size), "")
#define SONDE_PRINT_HEX(buf, len)	      ((void)(buf), (void)(len), "")
#define SONDE_PRINT_HEX_STR(buf, len)	      ((void)(buf), (void)(len), "")

#ifdef SONDE_TP_NO_PRINTK_CHECK
#define __SONDE_PRINTK_CHECK(name, call, ...)
#else
#define __SONDE_PRINTK_CHECK(name, call, ...)                                   \
	static inline __attribute__((unused)) void __sonde_printk_check_##name( \
	    struct __sonde_raw_##call *__entry)                                 \
	{                                                                       \
		if (0)                                                          \
			__sonde_printf_check(__VA_ARGS__);                      \
	}
#endif

#define SONDE_DECLARE_EVENT_CLASS(call, proto, args, tstruct, assign, print)         \
	static __attribute__((noinline, unused)) void __sonde_record_##call(         \
	    struct sonde_tracepoint *__tp, proto)                                    \
	{                                                                            \
		const struct sonde_tp_runtime *__rt =                                \
		    __atomic_load_n(&__tp->rt, __ATOMIC_ACQUIRE);                    \
		struct __sonde_offsets_##call __data_offsets;                        \
		struct __sonde_raw_##call *__entry;                                  \
		struct sonde_tp_res __res;                                           \
		uint64_t __size;                                                     \
                                                                                     \
		if (!__rt)                                                           \
			return;                                                      \
		if (sizeof(__data_offsets) == sizeof(uint32_t)) {                    \
			/* no dynamic field: built here, written in one call */      \
			struct __sonde_raw_##call __rec;                             \
                                                                                     \
			__entry = &__rec;                                            \
			{assign} __sonde_tp_write(                                   \
			    __tp, __rt, __entry,                                     \
			    (uint32_t)offsetof(struct __sonde_raw_##call, __data));  \
			return;                                                      \
		}                                                                    \
		__size = offsetof(struct __sonde_raw_##call, __data) +               \
			 __sonde_fill_##call(&__data_offsets, args);                 \
		/* too big for a record: the runtime counts it as missed */          \
		__entry = (struct __sonde_raw_##call *)__rt->reserve(                \
		    __tp, __size > 0xffff ? 0xffffffffu : (uint32_t)__size, &__res); \
		if (!__entry)                                                        \
			return;                                                      \
		tstruct{assign} __rt->commit(__tp, &__res);                          \
	}                                                                            \
	__SONDE_PRINTK_CHECK(call, call, print) __SONDE_DECL_END

#define __SONDE_DEFINE_TP(template, _name, fmt, proto, args)                         \
	__SONDE_TP_SECTION struct sonde_tracepoint __sonde_tp_##_name = {            \
	    .magic = SONDE_TP_MAGIC,                                                 \
	    .abi = SONDE_TP_ABI,                                                     \
	    .size = sizeof(struct sonde_tracepoint),                                 \
	    .system = __SONDE_STRINGIFY(TRACE_SYSTEM),                               \
	    .name = #_name,                                                          \
	    .print_fmt = fmt,                                                        \
	    .fields = __sonde_fields_##template,                                     \
	    .nfields = (uint32_t)(sizeof(__sonde_fields_##template) /                \
				      sizeof(__sonde_fields_##template[0]) -         \
				  1),                                                \
	    .entry_size = (uint32_t)offsetof(struct __sonde_raw_##template, __data), \
	};                                                                           \
	void __sonde_trace_##_name(proto)                                            \
	{                                                                            \
		__sonde_record_##template(&__sonde_tp_##_name, args);                \
	}                                                                            \
	__SONDE_DECL_END

#define SONDE_DEFINE_EVENT(template, name, proto, args)                                      \
	__SONDE_DEFINE_TP(template, name, __sonde_print_fmt_##template, SONDE_PARAMS(proto), \
			  SONDE_PARAMS(args))
#define SONDE_DEFINE_EVENT_PRINT(template, name, proto, args, print)                     \
	__SONDE_PRINTK_CHECK(name, template, print)                                      \
	__SONDE_DEFINE_TP(template, name, __sonde_print_fmt_##name, SONDE_PARAMS(proto), \
			  SONDE_PARAMS(args))

#include __SONDE_TRACE_INCLUDE(TRACE_INCLUDE_FILE)

/* ---- back to the declarations ---------------------------------------------------------------- */

#pragma GCC diagnostic pop

#undef SONDE_FIELD
#undef SONDE_ARRAY
#undef SONDE_STRING
#undef SONDE_STRING_LEN
#undef SONDE_DYNAMIC_ARRAY
#undef SONDE_GET_STR
#undef SONDE_GET_DYNAMIC_ARRAY
#undef SONDE_GET_DYNAMIC_ARRAY_LEN
#undef SONDE_ASSIGN_STR
#undef __SONDE_ASSIGN_STR
#undef SONDE_PRINT_FLAGS
#undef SONDE_PRINT_FLAGS_U64
#undef SONDE_PRINT_SYMBOLIC
#undef SONDE_PRINT_SYMBOLIC_U64
#undef SONDE_PRINT_ARRAY
#undef SONDE_PRINT_HEX
#undef SONDE_PRINT_HEX_STR
#undef SONDE_TP_STRUCT__entry
#undef SONDE_TP_fast_assign
#undef SONDE_TP_printk
#undef SONDE_TRACE_EVENT
#undef SONDE_TRACE_EVENT_CONDITION
#undef SONDE_DECLARE_EVENT_CLASS
#undef SONDE_DEFINE_EVENT
#undef SONDE_DEFINE_EVENT_PRINT
#undef SONDE_DEFINE_EVENT_CONDITION
#undef __SONDE_PRINTK_CHECK
#undef __SONDE_DEFINE_TP
#undef __SONDE_IS_SIGNED
#undef __SONDE_TP_SECTION
#undef __SONDE_TRACE_INCLUDE
#undef __SONDE_TRACE_INCLUDE_2
#undef TRACE_HEADER_MULTI_READ
#ifdef __SONDE_UNDEF_TRACE_INCLUDE_FILE
#undef TRACE_INCLUDE_FILE
#undef __SONDE_UNDEF_TRACE_INCLUDE_FILE
#endif

#define CREATE_TRACE_POINTS
#include <sonde/tracepoint.h> /* the declaration forms of the event macros again */

#endif /* CREATE_TRACE_POINTS */
