// SPDX-License-Identifier: MIT
/*
 * cmd_report.c - sonde report FILE: a recorded trace as the kernel's
 * `trace` file shows it. Symbols come from the object files named in the
 * recording, read now.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "session.h"
#include "sym/sym.h"
#include "trace/output.h"
#include "trace/trace.h"
#include "tracefile.h"

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

static void load_maps(struct file_syms *fs, const char *text)
{
	char *copy = strdup(text), *line, *save = NULL;

	if (!copy)
		return;
	for (size_t i = 0; i < fs->n; i++) {
		free(fs->mods[i].path);
		sd_symtab_free(fs->mods[i].st);
	}
	free(fs->mods);
	fs->mods = NULL;
	fs->n = 0;
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
		fs->mods[fs->n] = (struct file_mod){.start = s, .end = e, .bias = b,
						    .path = strdup(line + off)};
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
			if (sd_symtab_open(m->path, &m->st))
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

static struct sd_event *no_live_event(void *arg, unsigned int id)
{
	struct session *s = arg;
	unsigned int slot = id - SD_EVENT_ID_FIRST;

	return slot < s->nevents && s->events[slot] ? &s->events[slot]->ev : NULL;
}

int cmd_report(int argc, char **argv)
{
	struct file_syms fs = {0};
	struct session s;
	struct sd_render r;
	struct tf_chunk c;
	char line[16384];
	unsigned long records = 0, lost = 0;
	bool header = true;
	const char *path;
	FILE *f;
	int err;

	if (argc > 1 && cli_is_help(argv[1])) {
		printf("usage: sonde report [--no-header] [FILE]\n\n"
		       "Print a trace recorded by 'sonde record' (default sonde.dat) as the\n"
		       "kernel's trace file shows it.\n");
		return 0;
	}
	if (argc > 1 && !strcmp(argv[1], "--no-header")) {
		header = false;
		argv++;
		argc--;
	}
	path = argc > 1 ? argv[1] : "sonde.dat";
	f = fopen(path, "re");
	if (!f)
		return cli_error("report: %s: %s", path, strerror(errno)) + 1;
	if (tf_read_magic(f)) {
		fclose(f);
		return cli_error("report: %s is not a sonde recording", path) + 1;
	}
	memset(&s, 0, sizeof(s));
	s.ctl = s.listen_fd = -1;
	r.pctx.sym = file_symbolize;
	r.pctx.sym_arg = &fs;
	r.clock = &s.clock_params;
	r.clock_id = 0;
	r.event = no_live_event;
	r.event_arg = &s;

	while ((err = tf_read_chunk(f, &c)) > 0) {
		struct sd_seq seq;

		if (c.tag == 'H') {
			unsigned long hz, mult, tsc0, ns0;

			sscanf(c.data, "pid=%d clock=%d tsc_hz=%lu mult=%lu shift=%u tsc0=%lu ns0=%lu",
			       &s.pid, &r.clock_id, &hz, &mult, &s.clock_params.shift, &tsc0, &ns0);
			s.clock_params.tsc_hz = hz;
			s.clock_params.mult = mult;
			s.clock_params.tsc0 = tsc0;
			s.clock_params.ns0 = ns0;
			if (header) {
				sd_seq_init(&seq, line, sizeof(line));
				sd_render_header(&seq, "nop", 0, 0,
						 (int)sysconf(_SC_NPROCESSORS_ONLN));
				/* the counts are unknown until the end: leave them out */
				fputs("# tracer: nop\n#\n", stdout);
				fputs(strstr(line, "#                                _"), stdout);
			}
		} else if (c.tag == 'E') {
			session_load_events(&s, c.data);
		} else if (c.tag == 'M') {
			load_maps(&fs, c.data);
		} else if (c.tag == 'R' && c.len >= sizeof(struct tf_rec)) {
			struct tf_rec tr;
			struct sd_rb_event ev;

			memcpy(&tr, c.data, sizeof(tr));
			ev = (struct sd_rb_event){.payload = c.data + sizeof(tr),
						  .len = c.len - sizeof(tr),
						  .ts = tr.ts,
						  .cpu = tr.cpu,
						  .tid = tr.tid,
						  .comm = tr.comm,
						  .lost = tr.lost};
			sd_seq_init(&seq, line, sizeof(line));
			if (tr.lost)
				sd_render_lost(&seq, tr.cpu, tr.lost);
			sd_render_record(&seq, &r, &ev);
			fwrite(line, 1, seq.len, stdout);
			records++;
			lost += tr.lost;
		}
		free(c.data);
	}
	fclose(f);
	if (err < 0)
		cli_error("report: %s ends in a damaged chunk (a recording cut short?); "
			  "printed what came before",
			  path);
	fprintf(stderr, "sonde: %lu events%s", records, lost ? "" : "\n");
	if (lost)
		fprintf(stderr, ", %lu lost\n", lost);
	for (size_t i = 0; i < fs.n; i++) {
		free(fs.mods[i].path);
		sd_symtab_free(fs.mods[i].st);
	}
	free(fs.mods);
	session_close(&s);
	return 0;
}
