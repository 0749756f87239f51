// SPDX-License-Identifier: MIT
/* seq.c - the bounded text buffer. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "trace/seq.h"

void sd_seq_putmem(struct sd_seq *s, const void *mem, size_t len)
{
	size_t room = s->cap ? s->cap - 1 - s->len : 0;

	if (len > room) {
		len = room;
		s->overflow = true;
	}
	memcpy(s->buf + s->len, mem, len);
	s->len += len;
	if (s->cap)
		s->buf[s->len] = '\0';
}

void sd_seq_putc(struct sd_seq *s, char c)
{
	sd_seq_putmem(s, &c, 1);
}

void sd_seq_puts(struct sd_seq *s, const char *str)
{
	sd_seq_putmem(s, str, strlen(str));
}

void sd_seq_printf(struct sd_seq *s, const char *fmt, ...)
{
	size_t room = s->cap ? s->cap - s->len : 0;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(s->buf + s->len, room, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= room) {
		s->overflow = true;
		s->len = room ? s->cap - 1 : s->len;
	} else {
		s->len += n;
	}
}
