/* SPDX-License-Identifier: MIT */
/*
 * sonde.h - what every part of libsonde shares: version, errors, logging.
 *
 * Conventions of the whole public API:
 *  - functions returning int return 0 (or a count) on success and a negative
 *    errno on failure, and also set errno;
 *  - a failure leaves a readable explanation, naming what was wrong and where,
 *    for the calling thread: sonde_last_error();
 *  - nothing in libsonde ever ends the host process.
 */
#ifndef SONDE_SONDE_H
#define SONDE_SONDE_H

#ifdef __cplusplus
extern "C" {
#endif

#define SONDE_API __attribute__((visibility("default")))

#define SONDE_VERSION_MAJOR 0
#define SONDE_VERSION_MINOR 1
#define SONDE_VERSION_PATCH 0

/** sonde_version_string - "MAJOR.MINOR.PATCH" of the library in use. */
SONDE_API const char *sonde_version_string(void);

/**
 * sonde_strerror - text for a negative errno returned by libsonde.
 * @err: the value returned (negative or positive errno both accepted).
 */
SONDE_API const char *sonde_strerror(int err);

/**
 * sonde_last_error - the explanation of the calling thread's last failure,
 * e.g. "main+0x3: not an instruction boundary (instructions start at +0x0,
 * +0x1, +0x4)". Empty string when nothing failed yet.
 */
SONDE_API const char *sonde_last_error(void);

enum sonde_log_level {
	SONDE_LOG_WARN = 0,
	SONDE_LOG_INFO,
	SONDE_LOG_DEBUG,
};

typedef void (*sonde_print_fn_t)(enum sonde_log_level level, const char *msg);

/**
 * sonde_set_print - route libsonde's messages to @fn (NULL: silence them).
 * The default prints warnings to stderr; SONDE_LOG_LEVEL=info|debug raises it.
 * Returns the previous callback.
 */
SONDE_API sonde_print_fn_t sonde_set_print(sonde_print_fn_t fn);

#ifdef __cplusplus
}
#endif
#endif /* SONDE_SONDE_H */
