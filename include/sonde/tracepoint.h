/* SPDX-License-Identifier: MIT */
/*
 * tracepoint.h - static tracepoints for C programs and libraries: the
 * kernel's TRACE_EVENT(), behind jump labels.
 *
 * A program or library declares its events in a header of its own, exactly
 * as a kernel subsystem does in include/trace/events/<system>.h:
 *
 *	#undef TRACE_SYSTEM
 *	#define TRACE_SYSTEM myapp
 *
 *	#if !defined(MYAPP_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
 *	#define MYAPP_TRACE_H
 *
 *	#include <sonde/tracepoint.h>
 *
 *	TRACE_EVENT(myapp_request,
 *		TP_PROTO(int id, const char *path, const unsigned char *key, int klen),
 *		TP_ARGS(id, path, key, klen),
 *		TP_STRUCT__entry(
 *			__field(int, id)
 *			__string(path, path)
 *			__array(unsigned char, key4, 4)
 *			__dynamic_array(unsigned char, key, klen)
 *		),
 *		TP_fast_assign(
 *			__entry->id = id;
 *			__assign_str(path);
 *			memcpy(__entry->key4, key, 4);
 *			memcpy(__get_dynamic_array(key), key, klen);
 *		),
 *		TP_printk("id=%d path=%s key=%s", __entry->id, __get_str(path),
 *			  __print_hex(__get_dynamic_array(key), __get_dynamic_array_len(key)))
 *	);
 *
 *	#endif
 *
 *	#undef TRACE_INCLUDE_FILE
 *	#define TRACE_INCLUDE_FILE myapp_trace	// this header is myapp_trace.h
 *	#include <sonde/define_trace.h>		// outside the guard, last
 *
 * Every file that traces includes the header and calls trace_myapp_request(
 * id, path, key, klen); exactly one C file of the object (executable or
 * shared library) defines CREATE_TRACE_POINTS before including it, which
 * makes define_trace.h include the header again several times to generate
 * the record layout, the format description, the record-writing function
 * and the event's descriptor (the kernel's define_trace.h technique).
 *
 * What a call costs:
 *  - disabled (the normal state, and always when sonde is not there): one
 *    5-byte nop at the call site (`asm goto`; its address, the address of
 *    the out-of-line call and the event's static key are listed in the
 *    object's __sonde_jump_table section). The arguments are not evaluated.
 *    The out-of-line call is declared cold, so the compiler keeps the
 *    registers and stack frame it needs off the disabled path: a function
 *    with a disabled tracepoint runs the code it would run without one.
 *  - enabled: sonde's agent has patched the nop into a jmp (text_poke_bp
 *    protocol, safe while threads run); the site calls the event's function.
 *    An event without dynamic fields runs TP_fast_assign into a record on
 *    the stack and hands it to the runtime in one call (rt->write), which
 *    copies it into the thread's ring buffer; one with dynamic fields is
 *    sized, reserved in the ring, filled there and committed. The event's
 *    filter is applied by the runtime. Static keys are reference counted.
 *
 * The instrumented object needs nothing from sonde at run time: it carries
 * data sections (__sonde_tracepoints: one struct sonde_tracepoint per
 * event; __sonde_jump_table) and calls libc's strlen/memcpy; it is not
 * linked with libsonde. The record-writing function goes through
 * tp->rt, a pointer that stays NULL until a sonde agent in the process
 * finds the object (at start, and after every dlopen) and registers its
 * events in available_events and events/<system>/<name>/.
 *
 * Names (the kernel's, so that a kernel trace header reads as is):
 *   TRACE_SYSTEM TRACE_INCLUDE_FILE TRACE_INCLUDE_PATH CREATE_TRACE_POINTS
 *   TRACE_HEADER_MULTI_READ
 *   TRACE_EVENT DECLARE_EVENT_CLASS DEFINE_EVENT DEFINE_EVENT_PRINT
 *   TRACE_EVENT_CONDITION DEFINE_EVENT_CONDITION
 *   TP_PROTO TP_ARGS TP_CONDITION TP_STRUCT__entry TP_fast_assign TP_printk
 *   __field(type, name) __array(type, name, len) __string(name, src)
 *   __string_len(name, src, len) __dynamic_array(type, name, len)
 *   __assign_str(name) __entry __get_str(name) __get_dynamic_array(name)
 *   __get_dynamic_array_len(name)
 *   __print_flags __print_flags_u64 __print_symbolic __print_symbolic_u64
 *   __print_array __print_hex __print_hex_str   (in TP_printk)
 *   trace_<name>(args)  trace_<name>_enabled()
 * Each is an alias of a SONDE_-prefixed macro (TRACE_EVENT ->
 * SONDE_TRACE_EVENT, __field -> SONDE_FIELD, __get_str -> SONDE_GET_STR,
 * __print_flags -> SONDE_PRINT_FLAGS …). A file that also includes headers
 * defining these names (the kernel's linux/tracepoint.h, LTTng-UST's
 * TP_ARGS) defines SONDE_TP_PREFIXED_ONLY before including this one and
 * writes the prefixed forms; TRACE_SYSTEM and the other TRACE_* control
 * macros, __entry and trace_<name>() keep their names. (TP_PROTO, TP_ARGS and
 * TP_CONDITION are defined only if nothing defined them first: LTTng-UST's
 * TP_ARGS means the same.)
 *
 * Where sonde's macros differ from the kernel's:
 *  - __assign_str(name) takes the field only, as since Linux 6.10; the
 *    older two-argument form __assign_str(name, src) is accepted and its
 *    second argument ignored: the string copied is always the one
 *    __string(name, src) measured (copying another one could overflow the
 *    room reserved for it). __string(name, NULL) records "(null)", as the
 *    kernel does. A string is cut at SONDE_TP_STR_MAX - 1 bytes.
 *  - __string_len(name, src, len) records len bytes of src and a NUL.
 *  - TP_printk() is not compiled into the object: its text is the event's
 *    `print fmt` (format file), and sonde renders records from it
 *    (src/trace/printfmt.h lists what it evaluates: REC->field, arithmetic,
 *    ?:, casts, __get_str and the __print_* helpers above). Arguments
 *    calling other functions make the event print its fields as name=value
 *    instead, with a note. The arguments are still type-checked against
 *    the format at compile time (printf rules; SONDE_TP_NO_PRINTK_CHECK
 *    turns that off).
 *  - The format file's print fmt is the TP_printk() arguments as written
 *    (macros expanded, __entry shown as REC), with the format string's
 *    escapes as in the source, e.g. "id=%d\n", REC->id.
 *  - Record fields are laid out as a C struct after the 8-byte common
 *    header (the kernel's layout); dynamic data follows the last field
 *    (__data_loc: u32 = length << 16 | offset from the record's start).
 *  - TP_PROTO must have at least one parameter (as the kernel's
 *    DECLARE_EVENT_CLASS); end each TRACE_EVENT(...) with ';'.
 *  - Event names must be unique within one object (the kernel: the whole
 *    kernel). The same system:name in two objects of a process (a static
 *    library linked into both) is one event, enabled in both, if their
 *    formats match.
 *  - The file that defines CREATE_TRACE_POINTS must be C (gnu11 or later);
 *    callers may be C or C++. GCC or Clang on x86-64 (asm goto).
 *  - There are no TRACE_DEFINE_ENUM, __bitmask, __cpumask, __rel_loc or
 *    perf/BPF hooks; a record is at most about 4 KiB (one ring page).
 */
#ifndef SONDE_TRACEPOINT_H
#define SONDE_TRACEPOINT_H

#ifndef __cplusplus
#include <stdbool.h>
#endif
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the ABI between an instrumented object and sonde's runtime -------------------------- */

#define SONDE_TP_MAGIC	 0x50546453u /* "SdTP" */
#define SONDE_TP_ABI	 1
#define SONDE_TP_STR_MAX 2048 /* longest string a __string field records, NUL included */
/* struct sonde_tp_runtime.abi from which it has write() */
#define SONDE_TP_RT_WRITE 2

/* what every record starts with (the kernel's struct trace_entry) */
struct sonde_trace_entry {
	unsigned short common_type;
	unsigned char common_flags;
	unsigned char common_preempt_count;
	int common_pid;
};

/* enabled: how many users want the event (sonde's runtime keeps it) */
struct sonde_static_key {
	int enabled;
	int __reserved;
};

/*
 * One site: the 5-byte nop (code), the out-of-line branch (target) and the
 * key, each relative to its own field's address (no relocation needed).
 */
struct sonde_jump_entry {
	int32_t code;
	int32_t target;
	int64_t key;
};

enum sonde_tp_field_kind {
	SONDE_TPF_SCALAR = 0, /* __field */
	SONDE_TPF_ARRAY,      /* __array */
	SONDE_TPF_STRING,     /* __string, __string_len */
	SONDE_TPF_DYN_ARRAY,  /* __dynamic_array */
};

/*
 * One line of the event's format file. Offsets are not stored: the fields
 * follow the common header in the C layout of the record (each at the next
 * multiple of its alignment), which sonde's runtime computes from sizes and
 * alignments, and checks against entry_size.
 */
struct sonde_tp_field {
	const char *type; /* "int", "char" (of char name[16]), "__data_loc char[]" */
	const char *name;
	uint16_t size;	/* the whole field (4 for __data_loc) */
	uint16_t align; /* _Alignof its type (of an element, for arrays) */
	uint16_t array_len;
	uint16_t elem_size;
	uint8_t is_signed;
	uint8_t kind; /* enum sonde_tp_field_kind */
	uint8_t __reserved[6];
};

/* room the runtime keeps between reserve and commit (on the caller's stack) */
struct sonde_tp_res {
	uint64_t __opaque[16];
};

struct sonde_tracepoint;

/* set by sonde's runtime into struct sonde_tracepoint.rt */
struct sonde_tp_runtime {
	uint32_t abi;
	/* a record of @len bytes, common header filled; NULL: not recorded */
	void *(*reserve)(struct sonde_tracepoint *tp, uint32_t len, struct sonde_tp_res *res);
	void (*commit)(struct sonde_tracepoint *tp, struct sonde_tp_res *res);
	/*
	 * abi >= SONDE_TP_RT_WRITE: a whole record of an event without dynamic
	 * fields, built by the caller (@len bytes at @rec; the runtime fills
	 * the common header): one call instead of reserve and commit
	 */
	void (*write)(struct sonde_tracepoint *tp, const void *rec, uint32_t len);
};

/* one event of an object, in its __sonde_tracepoints section */
struct sonde_tracepoint {
	uint32_t magic; /* SONDE_TP_MAGIC */
	uint16_t abi;	/* SONDE_TP_ABI */
	uint16_t size;	/* sizeof(struct sonde_tracepoint) */
	struct sonde_static_key key;
	const struct sonde_tp_runtime *rt; /* NULL until an agent takes the event */
	void *priv;			   /* the runtime's */
	const char *system;
	const char *name;
	const char *print_fmt;
	const struct sonde_tp_field *fields;
	uint32_t nfields;
	uint32_t entry_size; /* bytes of the record before dynamic data */
	uint64_t __reserved[2];
};

/* ---- jump labels --------------------------------------------------------------------------- */

#if defined(__has_attribute)
#if __has_attribute(retain)
/* kept by --gc-sections: nothing refers to these sections but sonde */
#define __SONDE_RETAIN	    __attribute__((retain))
#define __SONDE_RETAIN_FLAG "R"
#endif
#endif
#ifndef __SONDE_RETAIN
#define __SONDE_RETAIN
#define __SONDE_RETAIN_FLAG ""
#endif

#if !defined(__x86_64__)
#error "sonde tracepoints: x86-64 only for now"
#endif

/*
 * __sonde_static_branch(keyp) - false until the runtime patches this site:
 * a 5-byte nop (0f 1f 44 00 00) that becomes `jmp` to the true branch.
 * @keyp must be a link-time constant (the address of an event's key).
 */
#define __sonde_static_branch(keyp)                                                              \
	__extension__({                                                                          \
		__label__ __sonde_yes, __sonde_done;                                             \
		bool __sonde_on = false;                                                         \
		__asm__ goto("1: .byte 0x0f, 0x1f, 0x44, 0x00, 0x00\n\t"                         \
			     ".pushsection __sonde_jump_table, \"a" __SONDE_RETAIN_FLAG "\"\n\t" \
			     ".balign 8\n\t"                                                     \
			     ".long 1b - ., %l[__sonde_yes] - .\n\t"                             \
			     ".quad %c0 - .\n\t"                                                 \
			     ".popsection"                                                       \
			     :                                                                   \
			     : "i"(keyp)                                                         \
			     :                                                                   \
			     : __sonde_yes);                                                     \
		goto __sonde_done;                                                               \
	__sonde_yes:                                                                             \
		__sonde_on = true;                                                               \
	__sonde_done:                                                                            \
		__sonde_on;                                                                      \
	})

#define sonde_static_branch_unlikely(keyp) __builtin_expect(__sonde_static_branch(keyp), 0)

/* ---- helpers of the generated code ------------------------------------------------------ */

#define __SONDE_STRINGIFY_1(...) #__VA_ARGS__
#define __SONDE_STRINGIFY(...)	 __SONDE_STRINGIFY_1(__VA_ARGS__)
#define SONDE_PARAMS(...)	 __VA_ARGS__

#define __SONDE_HIDDEN __attribute__((visibility("hidden")))
/*
 * The out-of-line call is cold: the compiler then keeps the disabled path
 * free of the registers and frame the call needs (shrink-wrapping), where
 * otherwise the whole function would save callee-saved registers for it.
 */
#define __SONDE_COLD __attribute__((cold))
#ifdef __cplusplus
#define __SONDE_LINKAGE extern "C"
/* absorbs the ';' after TRACE_EVENT(...) at file scope */
#define __SONDE_DECL_END static_assert(true, "")
#else
#define __SONDE_LINKAGE	 extern
#define __SONDE_DECL_END _Static_assert(1, "")
#endif

static inline __attribute__((unused)) uint32_t __sonde_strnlen(const char *s, uint32_t max)
{
	uint32_t n = 0;

	while (n < max && s[n])
		n++;
	return n;
}

/* a record built whole on the caller's stack (an event without dynamic fields) */
static inline __attribute__((always_inline, unused)) void
__sonde_tp_write(struct sonde_tracepoint *tp, const struct sonde_tp_runtime *rt, void *rec,
		 uint32_t len)
{
	const size_t common = sizeof(struct sonde_trace_entry);
	struct sonde_tp_res res;
	void *entry;

	if (rt->abi >= SONDE_TP_RT_WRITE) {
		rt->write(tp, rec, len);
		return;
	}
	/* an older runtime */
	entry = rt->reserve(tp, len, &res);
	if (!entry)
		return;
	memcpy((char *)entry + common, (const char *)rec + common, len - common);
	rt->commit(tp, &res);
}

/* TP_printk's arguments, type-checked against its format (never called) */
static inline __attribute__((format(printf, 1, 2), unused)) void
__sonde_printf_check(const char *fmt, ...)
{
	(void)fmt;
}

#define SONDE_TP_PROTO(...)	__VA_ARGS__
#define SONDE_TP_ARGS(...)	__VA_ARGS__
#define SONDE_TP_CONDITION(...) __VA_ARGS__

/* the caller's side of every event */
#define __SONDE_DECLARE_TRACE(name, proto, args, cond)                                         \
	__SONDE_LINKAGE struct sonde_tracepoint __sonde_tp_##name __SONDE_HIDDEN;              \
	__SONDE_LINKAGE void __sonde_trace_##name(proto) __SONDE_HIDDEN __SONDE_COLD;          \
	static inline __attribute__((always_inline, unused)) bool trace_##name##_enabled(void) \
	{                                                                                      \
		return sonde_static_branch_unlikely(&__sonde_tp_##name.key);                   \
	}                                                                                      \
	static inline __attribute__((always_inline, unused)) void trace_##name(proto)          \
	{                                                                                      \
		if (sonde_static_branch_unlikely(&__sonde_tp_##name.key) && (cond))            \
			__sonde_trace_##name(args);                                            \
	}                                                                                      \
	__SONDE_DECL_END

#ifdef __cplusplus
}
#endif

/* ---- the kernel's names ------------------------------------------------------------------ */

#ifndef SONDE_TP_PREFIXED_ONLY
#define TRACE_EVENT		SONDE_TRACE_EVENT
#define TRACE_EVENT_CONDITION	SONDE_TRACE_EVENT_CONDITION
#define DECLARE_EVENT_CLASS	SONDE_DECLARE_EVENT_CLASS
#define DEFINE_EVENT		SONDE_DEFINE_EVENT
#define DEFINE_EVENT_PRINT	SONDE_DEFINE_EVENT_PRINT
#define DEFINE_EVENT_CONDITION	SONDE_DEFINE_EVENT_CONDITION
#define TP_STRUCT__entry	SONDE_TP_STRUCT__entry
#define TP_fast_assign		SONDE_TP_fast_assign
#define TP_printk		SONDE_TP_printk
#define __field			SONDE_FIELD
#define __array			SONDE_ARRAY
#define __string		SONDE_STRING
#define __string_len		SONDE_STRING_LEN
#define __dynamic_array		SONDE_DYNAMIC_ARRAY
#define __assign_str		SONDE_ASSIGN_STR
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
#ifndef TP_PROTO
#define TP_PROTO SONDE_TP_PROTO
#endif
#ifndef TP_ARGS
#define TP_ARGS SONDE_TP_ARGS
#endif
#ifndef TP_CONDITION
#define TP_CONDITION SONDE_TP_CONDITION
#endif
#endif /* !SONDE_TP_PREFIXED_ONLY */

#endif /* SONDE_TRACEPOINT_H */

/*
 * Outside the guard: what the event macros mean in every file but during
 * define_trace.h's passes, which redefine them and include this header
 * again at their end to put these back.
 */
#ifndef SONDE_TRACE_EVENT

#define SONDE_DECLARE_EVENT_CLASS(call, proto, args, tstruct, assign, print) __SONDE_DECL_END
#define SONDE_DEFINE_EVENT(template, name, proto, args) \
	__SONDE_DECLARE_TRACE(name, SONDE_PARAMS(proto), SONDE_PARAMS(args), 1)
#define SONDE_DEFINE_EVENT_PRINT(template, name, proto, args, print) \
	__SONDE_DECLARE_TRACE(name, SONDE_PARAMS(proto), SONDE_PARAMS(args), 1)
#define SONDE_DEFINE_EVENT_CONDITION(template, name, proto, args, cond) \
	__SONDE_DECLARE_TRACE(name, SONDE_PARAMS(proto), SONDE_PARAMS(args), SONDE_PARAMS(cond))
#define SONDE_TRACE_EVENT(name, proto, args, tstruct, assign, print) \
	__SONDE_DECLARE_TRACE(name, SONDE_PARAMS(proto), SONDE_PARAMS(args), 1)
#define SONDE_TRACE_EVENT_CONDITION(name, proto, args, cond, tstruct, assign, print) \
	__SONDE_DECLARE_TRACE(name, SONDE_PARAMS(proto), SONDE_PARAMS(args), SONDE_PARAMS(cond))

#endif /* !SONDE_TRACE_EVENT */
