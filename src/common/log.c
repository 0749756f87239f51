// SPDX-License-Identifier: MIT
/* log.c - the print callback, per-thread error explanations, strerror. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

static __thread char last_error[512];

static void print_stderr(enum sonde_log_level level, const char *msg)
{
	static const char *const names[] = {"warning", "info", "debug"};

	fprintf(stderr, "sonde: %s: %s\n", names[level], msg);
}

static sonde_print_fn_t print_fn = print_stderr;
static int max_level = -1;

static int log_level(void)
{
	if (max_level < 0) {
		const char *s = getenv("SONDE_LOG_LEVEL");

		max_level = SONDE_LOG_WARN;
		if (s && !strcmp(s, "info"))
			max_level = SONDE_LOG_INFO;
		else if (s && !strcmp(s, "debug"))
			max_level = SONDE_LOG_DEBUG;
	}
	return max_level;
}

SONDE_API sonde_print_fn_t sonde_set_print(sonde_print_fn_t fn)
{
	sonde_print_fn_t old = print_fn;

	print_fn = fn;
	return old;
}

void sd_log(enum sonde_log_level level, const char *prefix, const char *fmt, ...)
{
	char msg[1024];
	int n;
	va_list ap;

	if (!print_fn || (int)level > log_level())
		return;
	n = snprintf(msg, sizeof(msg), "%s: ", prefix);
	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof(msg) - n, fmt, ap);
	va_end(ap);
	print_fn(level, msg);
}

int sd_error(int err, const char *fmt, ...)
{
	char msg[sizeof(last_error)];
	va_list ap;

	/* formatted apart: an argument may be sonde_last_error() itself (a cause quoted) */
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	memcpy(last_error, msg, sizeof(msg));
	errno = err < 0 ? -err : err;
	return err;
}

void sd_error_clear(void)
{
	last_error[0] = '\0';
}

SONDE_API const char *sonde_last_error(void)
{
	return last_error;
}

SONDE_API const char *sonde_strerror(int err)
{
	if (err < 0)
		err = -err;
	return strerror(err);
}

SONDE_API const char *sonde_version_string(void)
{
	return "0.1.0";
}
