/* SPDX-License-Identifier: MIT */
/*
 * log.h - messages and errors inside libsonde.
 *
 * A file sets SD_LOG_PREFIX before including this header. sd_warn/sd_info/
 * sd_dbg go to the print callback (sonde_set_print). sd_error() records the
 * calling thread's explanation for sonde_last_error() and returns the
 * negative errno it was given, so failures read `return sd_error(-EINVAL,
 * "…", …);`. None of these may be called from a signal handler.
 */
#ifndef SD_LOG_H
#define SD_LOG_H

#include <sonde/sonde.h>

#ifndef SD_LOG_PREFIX
#define SD_LOG_PREFIX "sonde"
#endif

void sd_log(enum sonde_log_level level, const char *prefix, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int sd_error(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* keep the message already recorded, return @err (for passing failures up) */
void sd_error_clear(void);

#define sd_warn(...) sd_log(SONDE_LOG_WARN, SD_LOG_PREFIX, __VA_ARGS__)
#define sd_info(...) sd_log(SONDE_LOG_INFO, SD_LOG_PREFIX, __VA_ARGS__)
#define sd_dbg(...)  sd_log(SONDE_LOG_DEBUG, SD_LOG_PREFIX, __VA_ARGS__)

#endif
