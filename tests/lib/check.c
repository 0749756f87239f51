// SPDX-License-Identifier: MIT
/* check.c - runs every registered TEST in its own child process. */
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

#define MAX_TESTS 256
#define SKIP_CODE 77

static struct {
	const char *name;
	void (*fn)(void);
} tests[MAX_TESTS];
static int ntests;

void check_register(const char *name, void (*fn)(void))
{
	if (ntests < MAX_TESTS) {
		tests[ntests].name = name;
		tests[ntests].fn = fn;
		ntests++;
	}
}

void check_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s:%d: FAIL: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(NULL);
	_exit(1);
}

void check_skip(const char *why)
{
	fprintf(stderr, "SKIP: %s\n", why);
	fflush(NULL);
	_exit(SKIP_CODE);
}

static int run_one(int i)
{
	pid_t pid;
	int status;

	fflush(NULL);
	if (getenv("CHECK_NOFORK")) {
		tests[i].fn();
		return 0;
	}
	pid = fork();
	if (pid == 0) {
		tests[i].fn();
		fflush(NULL);
		_exit(0);
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		return 1;
	if (WIFSIGNALED(status)) {
		fprintf(stderr, "FAIL: %s: killed by signal %d (%s)\n", tests[i].name,
			WTERMSIG(status), strsignal(WTERMSIG(status)));
		return 1;
	}
	if (WEXITSTATUS(status) == SKIP_CODE)
		return SKIP_CODE;
	return WEXITSTATUS(status) != 0;
}

int main(int argc, char **argv)
{
	int failed = 0, skipped = 0, ran = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int i = 0; i < ntests; i++) {
		int r;

		if (argc > 1 && strcmp(argv[1], tests[i].name))
			continue;
		ran++;
		r = run_one(i);
		if (r == SKIP_CODE) {
			printf("skip: %s\n", tests[i].name);
			skipped++;
		} else if (r) {
			printf("FAIL: %s\n", tests[i].name);
			failed++;
		} else {
			printf("ok:   %s\n", tests[i].name);
		}
	}
	printf("%d run, %d failed, %d skipped\n", ran, failed, skipped);
	if (!ran)
		return 1;
	if (failed)
		return 1;
	return skipped == ran ? SKIP_CODE : 0;
}
