/* SPDX-License-Identifier: MIT */
/*
 * seq.h - a bounded text buffer (the kernel's trace_seq).
 *
 * Invariants: buf is always NUL-terminated; appending past the capacity
 * sets `overflow` and keeps what fit. Rendering runs in normal context
 * (the agent thread, the CLI), never in a probe handler.
 */
#ifndef SD_TRACE_SEQ_H
#define SD_TRACE_SEQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sd_seq {
	char *buf;
	size_t len, cap;
	bool overflow;
};

static inline void sd_seq_init(struct sd_seq *s, char *buf, size_t cap)
{
	s->buf = buf;
	s->cap = cap;
	s->len = 0;
	s->overflow = false;
	if (cap)
		buf[0] = '\0';
}

void sd_seq_putc(struct sd_seq *s, char c);
void sd_seq_puts(struct sd_seq *s, const char *str);
void sd_seq_putmem(struct sd_seq *s, const void *mem, size_t len);
void sd_seq_printf(struct sd_seq *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
