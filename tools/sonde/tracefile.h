/* SPDX-License-Identifier: MIT */
/*
 * tracefile.h - what `sonde record` writes and `sonde report` reads.
 *
 * An 8-byte magic "SONDEtr1", then chunks: a u8 tag, three zero bytes, a
 * u32 length, the payload.
 *
 *   'H'  text: pid=, clock=, tsc_hz=, mult=, shift=, tsc0=, ns0=, command
 *   'E'  text: event descriptions, as the agent gives them (may repeat)
 *   'M'  text: the process's objects, "start end bias path" per line (may repeat)
 *   'R'  a record: struct tf_rec, then the entry
 *
 * Everything is little-endian, as written by the machine that recorded.
 */
#ifndef SONDE_TRACEFILE_H
#define SONDE_TRACEFILE_H

#include <stdint.h>
#include <stdio.h>

#define TF_MAGIC "SONDEtr1"

struct tf_rec {
	uint16_t cpu;
	uint16_t pad;
	int32_t tid;
	uint64_t ts;
	uint64_t lost;
	char comm[16];
};

int tf_write_magic(FILE *f);
int tf_write_chunk(FILE *f, char tag, const void *a, size_t alen, const void *b, size_t blen);

struct tf_chunk {
	char tag;
	uint32_t len;
	char *data; /* len bytes, NUL-terminated for text */
};

/* 1 and a chunk, 0 at the end, negative errno for a damaged file */
int tf_read_magic(FILE *f);
int tf_read_chunk(FILE *f, struct tf_chunk *c);

#endif
