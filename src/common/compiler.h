/* SPDX-License-Identifier: MIT */
/* compiler.h - small helpers every file of libsonde may use. */
#ifndef SD_COMPILER_H
#define SD_COMPILER_H

#include <stddef.h>

#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#define READ_ONCE(x)	    __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define WRITE_ONCE(x, v)    __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)
#define LOAD_ACQUIRE(x)	    __atomic_load_n(&(x), __ATOMIC_ACQUIRE)
#define STORE_RELEASE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELEASE)
#define smp_mb()	    __atomic_thread_fence(__ATOMIC_SEQ_CST)
#define barrier()	    __asm__ __volatile__("" ::: "memory")

/* Per-thread state the signal path touches must sit in the static TLS block. */
#define SD_TLS_IE __thread __attribute__((tls_model("initial-exec")))

/*
 * Functions on the probe path: never probed, never instrumented. (UBSan's
 * null check is off there: GCC 12 tests the address of a TLS variable with a
 * `je` after a flag-less `lea`, and reports nonsense.)
 */
#define SD_NOTRACE \
	__attribute__((no_instrument_function, section("sonde_text"), no_sanitize("null")))

/*
 * The hottest of them: without the frame pointer that the rest of libsonde
 * keeps for profilers, one more register (0.5 ns an event, measured; their
 * .eh_frame still unwinds them).
 */
#define SD_HOT __attribute__((optimize("omit-frame-pointer")))

#define SD_ALIGN_UP(x, a)   (((x) + (a)-1) & ~((__typeof__(x))(a)-1))
#define SD_ALIGN_DOWN(x, a) ((x) & ~((__typeof__(x))(a)-1))

#endif
