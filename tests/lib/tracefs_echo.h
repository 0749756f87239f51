/* SPDX-License-Identifier: MIT */
/*
 * tracefs_echo.h - the in-process virtual tracefs (src/control/tracefs.h)
 * as a shell uses the kernel's: `echo TEXT > FILE` and `cat FILE`, for the
 * unit tests that link libsonde.
 */
#ifndef SONDE_TRACEFS_ECHO_H
#define SONDE_TRACEFS_ECHO_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "control/tracefs.h"

/* echo TEXT > FILE: 0 or a negative errno */
static inline int echo(const char *file, const char *text)
{
	return sd_tracefs_write(file, text, strlen(text), true, NULL);
}

/* the same, and the test fails if the write does */
#define ECHO(file, text)                                                                 \
	do {                                                                             \
		int e_ = echo(file, text);                                               \
		if (e_)                                                                  \
			check_fail(__FILE__, __LINE__, "echo '%s' > %s: %s", text, file, \
				   strerror(-e_));                                       \
	} while (0)

/* cat FILE, malloc'd; the test fails if it cannot be read */
/* (not inlined: gcc 12 then warns of the buffer freed on the failing path) */
static __attribute__((noinline, unused)) char *cat(const char *file)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int err;

	CHECK(f);
	err = sd_tracefs_read(file, f);
	fclose(f);
	if (err) {
		free(buf);
		check_fail(__FILE__, __LINE__, "cat %s: %s", file, strerror(-err));
	}
	return buf;
}

#endif
