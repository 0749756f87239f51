// SPDX-License-Identifier: MIT
/*
 * errlog.c - the error_log file: the last parse errors, the kernel's way
 * (kernel/trace/trace.c tracing_log_err): at most 8 entries, the oldest
 * dropped first, each printed as
 *
 *   [ 1091.337085] trace_uprobe: error: Unknown type is specified
 *     Command: p:grp/ev /bin/x:0x1149 a=%di:u65
 *                                          ^
 *
 * with the caret under byte `pos` of the command ("  Command: " is 11
 * columns wide, so the caret line starts with 11 + pos spaces).
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "trace/errlog.h"

#define ERRLOG_MAX 8 /* TRACING_LOG_ERRS_MAX */
#define CMD_PREFIX "  Command: "

struct errlog_entry {
	uint64_t ts_ns;
	char *loc; /* subsystem */
	char *msg;
	char *cmd;
	int pos;
};

static pthread_mutex_t errlog_lock = PTHREAD_MUTEX_INITIALIZER;
static struct errlog_entry errlog[ERRLOG_MAX];
static unsigned int errlog_first, errlog_count;

int sd_parse_fail(struct sd_parse_error *e, const char *subsystem, int pos, const char *msg)
{
	e->subsystem = subsystem;
	e->msg = msg;
	e->pos = pos;
	e->err = -EINVAL;
	e->words = false;
	return e->err;
}

/* @cmd's words joined with single spaces, as the kernel's argv_split + join */
static char *join_words(const char *cmd)
{
	char *out = malloc(strlen(cmd) + 1), *o = out;
	const char *p = cmd;

	if (!out)
		return NULL;
	for (;;) {
		while (isspace((unsigned char)*p))
			p++;
		if (!*p)
			break;
		if (o != out)
			*o++ = ' ';
		while (*p && !isspace((unsigned char)*p))
			*o++ = *p++;
	}
	*o = '\0';
	return out;
}

static char *command_of(const struct sd_parse_error *e, const char *cmd)
{
	return e->words ? join_words(cmd) : strdup(cmd);
}

static void entry_free(struct errlog_entry *en)
{
	free(en->loc);
	free(en->msg);
	free(en->cmd);
	memset(en, 0, sizeof(*en));
}

void sd_errlog_add(const struct sd_parse_error *e, const char *cmd)
{
	struct errlog_entry en = {0};
	struct timespec ts;

	if (!e || !e->msg)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	en.ts_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	en.loc = strdup(e->subsystem ? e->subsystem : "");
	en.msg = strdup(e->msg);
	en.cmd = command_of(e, cmd ? cmd : "");
	en.pos = e->pos < 0 ? 0 : e->pos;
	if (!en.loc || !en.msg || !en.cmd) {
		entry_free(&en);
		return;
	}
	pthread_mutex_lock(&errlog_lock);
	if (errlog_count == ERRLOG_MAX) {
		entry_free(&errlog[errlog_first]);
		errlog[errlog_first] = en;
		errlog_first = (errlog_first + 1) % ERRLOG_MAX;
	} else {
		errlog[(errlog_first + errlog_count) % ERRLOG_MAX] = en;
		errlog_count++;
	}
	pthread_mutex_unlock(&errlog_lock);
}

static void put_caret(struct sd_seq *s, int pos)
{
	for (size_t i = 0; i < sizeof(CMD_PREFIX) - 1; i++)
		sd_seq_putc(s, ' ');
	for (int i = 0; i < pos; i++)
		sd_seq_putc(s, ' ');
	sd_seq_puts(s, "^\n");
}

void sd_errlog_print(struct sd_seq *s)
{
	pthread_mutex_lock(&errlog_lock);
	for (unsigned int i = 0; i < errlog_count; i++) {
		const struct errlog_entry *en = &errlog[(errlog_first + i) % ERRLOG_MAX];

		sd_seq_printf(s, "[%5lu.%06lu] %s: error: %s\n",
			      (unsigned long)(en->ts_ns / 1000000000ull),
			      (unsigned long)(en->ts_ns % 1000000000ull / 1000), en->loc, en->msg);
		sd_seq_printf(s, "%s%s\n", CMD_PREFIX, en->cmd);
		put_caret(s, en->pos);
	}
	pthread_mutex_unlock(&errlog_lock);
}

void sd_errlog_clear(void)
{
	pthread_mutex_lock(&errlog_lock);
	for (unsigned int i = 0; i < ERRLOG_MAX; i++)
		entry_free(&errlog[i]);
	errlog_first = errlog_count = 0;
	pthread_mutex_unlock(&errlog_lock);
}

void sd_parse_error_format(struct sd_seq *s, const struct sd_parse_error *e, const char *cmd)
{
	char *c;

	if (!e || !e->msg)
		return;
	c = command_of(e, cmd ? cmd : "");
	sd_seq_printf(s, "%s\n%s%s\n", e->msg, CMD_PREFIX, c ? c : cmd);
	put_caret(s, e->pos < 0 ? 0 : e->pos);
	free(c);
}
