// SPDX-License-Identifier: MIT
/*
 * recording.c - a recorded trace, read back (recording.h). Symbols come
 * from the object files named in the recording, read now.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "recording.h"
#include "sym/sym.h"
#include "trace/trace.h"

struct file_mod {
	uint64_t start, end, bias;
	char *path;
	struct sd_symtab *st;
	bool tried;
};

struct file_syms {
	struct file_mod *mods;
	size_t n;
};

static void free_mods(struct file_syms *fs)
{
	for (size_t i = 0; i < fs->n; i++) {
		free(fs->mods[i].path);
		sd_symtab_free(fs->mods[i].st);
	}
	free(fs->mods);
	fs->mods = NULL;
	fs->n = 0;
}

/*
 * the 'M' chunk: "start end bias path" per line, replacing what came
 * before; one without any object (read from a process already gone) leaves
 * what was known as it was
 */
static void load_maps(struct file_syms *fs, const char *text)
{
	char *copy, *line, *save = NULL;
	unsigned long s0, e0, b0;

	if (sscanf(text, "%lx %lx %lx", &s0, &e0, &b0) != 3)
		return;
	copy = strdup(text);
	if (!copy)
		return;
	free_mods(fs);
	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		unsigned long s, e, b;
		int off = 0;
		struct file_mod *bigger;

		if (sscanf(line, "%lx %lx %lx %n", &s, &e, &b, &off) != 3 || !off)
			continue;
		bigger = realloc(fs->mods, (fs->n + 1) * sizeof(*bigger));
		if (!bigger)
			break;
		fs->mods = bigger;
		fs->mods[fs->n] =
		    (struct file_mod){.start = s, .end = e, .bias = b, .path = strdup(line + off)};
		fs->n++;
	}
	free(copy);
}

static int file_symbolize(void *arg, uint64_t addr, char *buf, size_t len)
{
	struct file_syms *fs = arg;

	for (size_t i = 0; i < fs->n; i++) {
		struct file_mod *m = &fs->mods[i];
		const struct sd_sym *sym;
		uint64_t off;
		int n;

		if (addr < m->start || addr >= m->end)
			continue;
		if (!m->tried) {
			m->tried = true;
			if (!m->path || sd_symtab_open(m->path, &m->st))
				m->st = NULL;
		}
		if (!m->st || !(sym = sd_symtab_find_addr(m->st, addr - m->bias, &off)))
			return -1;
		n = snprintf(buf, len, "%s+0x%lx/0x%lx", sym->name, (unsigned long)off,
			     (unsigned long)sym->size);
		return n < 0 || (size_t)n >= len ? -1 : n;
	}
	return -1;
}

/* events by id from the descriptions in the file; never asks a process */
static struct sd_event *file_event(void *arg, unsigned int id)
{
	struct session *s = arg;
	unsigned int slot = id - SD_EVENT_ID_FIRST;

	return slot < s->nevents && s->events[slot] ? &s->events[slot]->ev : NULL;
}

static void parse_header(struct recording *rc, const char *text)
{
	unsigned long hz = 0, mult = 0, tsc0 = 0, ns0 = 0;
	const char *p;

	sscanf(text, "pid=%d clock=%d tsc_hz=%lu mult=%lu shift=%u tsc0=%lu ns0=%lu", &rc->s.pid,
	       &rc->r.clock_id, &hz, &mult, &rc->s.clock_params.shift, &tsc0, &ns0);
	rc->s.clock_params.tsc_hz = hz;
	rc->s.clock_params.mult = mult;
	rc->s.clock_params.tsc0 = tsc0;
	rc->s.clock_params.ns0 = ns0;
	/* added later, before cmd= (which takes the rest of the line) */
	p = strstr(text, " tracer=");
	if (p)
		sscanf(p, " tracer=%31s", rc->tracer);
	p = strstr(text, " ncpus=");
	if (p)
		sscanf(p, " ncpus=%d", &rc->ncpus);
	p = strstr(text, " cmd=");
	if (p) {
		snprintf(rc->cmd, sizeof(rc->cmd), "%s", p + 5);
		rc->cmd[strcspn(rc->cmd, "\n")] = '\0';
	}
}

int rec_open(struct recording *rc, const char *path, const char *who)
{
	int err;

	memset(rc, 0, sizeof(*rc));
	rc->s.ctl = rc->s.listen_fd = -1;
	rc->path = path;
	snprintf(rc->tracer, sizeof(rc->tracer), "nop");
	rc->fs = calloc(1, sizeof(*rc->fs));
	if (!rc->fs)
		return cli_error("%s: out of memory", who) + 1;
	rc->f = fopen(path, "re");
	if (!rc->f) {
		cli_error("%s: %s: %s", who, path, strerror(errno));
		free(rc->fs);
		rc->fs = NULL;
		return 2;
	}
	if (tf_read_magic(rc->f)) {
		cli_error("%s: %s is not a sonde recording", who, path);
		rec_close(rc);
		return 2;
	}
	rc->r.pctx.sym = file_symbolize;
	rc->r.pctx.sym_arg = rc->fs;
	rc->r.clock = &rc->s.clock_params;
	rc->r.event = file_event;
	rc->r.event_arg = &rc->s;
	/* the header comes first; anything else is kept for rec_next */
	err = tf_read_chunk(rc->f, &rc->c);
	if (err > 0 && rc->c.tag == 'H') {
		parse_header(rc, rc->c.data);
		free(rc->c.data);
		rc->c.data = NULL;
	} else if (err > 0) {
		rc->held = true;
	} else if (err < 0) {
		rc->damaged = true;
	}
	return 0;
}

int rec_next(struct recording *rc, struct sd_rb_event *ev)
{
	int err;

	for (;;) {
		if (rc->held) {
			rc->held = false;
			err = 1;
		} else {
			free(rc->c.data);
			rc->c.data = NULL;
			if (!rc->f || rc->damaged)
				return 0;
			err = tf_read_chunk(rc->f, &rc->c);
		}
		if (err < 0)
			rc->damaged = true;
		if (err <= 0)
			return 0;
		switch (rc->c.tag) {
		case 'H':
			parse_header(rc, rc->c.data);
			break;
		case 'E':
			session_load_events(&rc->s, rc->c.data);
			break;
		case 'M':
			load_maps(rc->fs, rc->c.data);
			break;
		case 'R':
			if (rc->c.len < sizeof(struct tf_rec))
				break;
			memcpy(&rc->tr, rc->c.data, sizeof(rc->tr));
			rc->tr.comm[sizeof(rc->tr.comm) - 1] = '\0';
			*ev = (struct sd_rb_event){.payload = rc->c.data + sizeof(rc->tr),
						   .len = rc->c.len - sizeof(rc->tr),
						   .ts = rc->tr.ts,
						   .cpu = rc->tr.cpu,
						   .tid = rc->tr.tid,
						   .comm = rc->tr.comm,
						   .lost = rc->tr.lost};
			rc->records++;
			rc->lost += rc->tr.lost;
			return 1;
		default:
			break; /* a chunk of a later version: skip it */
		}
	}
}

void rec_close(struct recording *rc)
{
	free(rc->c.data);
	rc->c.data = NULL;
	if (rc->f)
		fclose(rc->f);
	rc->f = NULL;
	if (rc->fs) {
		free_mods(rc->fs);
		free(rc->fs);
		rc->fs = NULL;
	}
	session_close(&rc->s);
}
