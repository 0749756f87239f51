// SPDX-License-Identifier: MIT
/* tracefile.c - the chunked file of `sonde record`. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tracefile.h"

#define TF_MAX_CHUNK (64u << 20)

int tf_write_magic(FILE *f)
{
	return fwrite(TF_MAGIC, 1, 8, f) == 8 ? 0 : -EIO;
}

int tf_write_chunk(FILE *f, char tag, const void *a, size_t alen, const void *b, size_t blen)
{
	unsigned char hdr[8] = {(unsigned char)tag, 0, 0, 0};
	uint32_t len = (uint32_t)(alen + blen);

	memcpy(hdr + 4, &len, 4);
	if (fwrite(hdr, 1, 8, f) != 8 || (alen && fwrite(a, 1, alen, f) != alen) ||
	    (blen && fwrite(b, 1, blen, f) != blen))
		return -EIO;
	return 0;
}

int tf_read_magic(FILE *f)
{
	char m[8];

	if (fread(m, 1, 8, f) != 8 || memcmp(m, TF_MAGIC, 8))
		return -EINVAL;
	return 0;
}

int tf_read_chunk(FILE *f, struct tf_chunk *c)
{
	unsigned char hdr[8];
	size_t n = fread(hdr, 1, 8, f);

	c->data = NULL;
	if (n == 0)
		return 0;
	if (n != 8)
		return -EINVAL; /* cut short: the recorder died mid-write */
	c->tag = (char)hdr[0];
	memcpy(&c->len, hdr + 4, 4);
	if (c->len > TF_MAX_CHUNK)
		return -EINVAL;
	c->data = malloc(c->len + 1);
	if (!c->data)
		return -ENOMEM;
	if (fread(c->data, 1, c->len, f) != c->len) {
		free(c->data);
		c->data = NULL;
		return -EINVAL;
	}
	c->data[c->len] = '\0';
	return 1;
}
