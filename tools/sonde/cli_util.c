// SPDX-License-Identifier: MIT
/*
 * cli_util.c - small things several commands need.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

const char *cli_find_binary(const char *name, char *buf, size_t len)
{
	const char *path = getenv("PATH");
	struct stat sb;

	if (strchr(name, '/') || !stat(name, &sb) || !path)
		return name;
	while (*path) {
		size_t n = strcspn(path, ":");

		if (n && (size_t)snprintf(buf, len, "%.*s/%s", (int)n, path, name) < len &&
		    !stat(buf, &sb) && S_ISREG(sb.st_mode))
			return buf;
		path += n + (path[n] == ':');
	}
	return name;
}

void cli_write_out(int fd, const char *buf, size_t len, bool *failed)
{
	size_t done = 0;

	while (done < len && !*failed) {
		ssize_t w = write(fd, buf + done, len - done);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			*failed = true; /* a closed pipe: keep tracing, stop printing */
			break;
		}
		done += (size_t)w;
	}
}

int cli_parse_pid(const char *s, pid_t *pid)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v <= 0 || v > INT_MAX)
		return -EINVAL;
	*pid = (pid_t)v;
	return 0;
}
