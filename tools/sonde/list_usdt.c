// SPDX-License-Identifier: MIT
/*
 * list_usdt.c - sonde list usdt: the USDT probes (.note.stapsdt) of a file
 * or of every object a process has mapped, one line per probe, with the
 * fields readelf --notes shows (see usage()).
 */
#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sonde/sonde.h>

#include "cli.h"
#include "sym/sym.h"
#include "usdt/usdt.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: sonde list usdt [-d] BINARY [PROVIDER:NAME]\n"
		   "       sonde list usdt [-d] -p PID [PROVIDER:NAME]\n\n"
		   "Lists the USDT probes (<sys/sdt.h>, .note.stapsdt) of an ELF file, or of\n"
		   "the executable and every library of a running process, in note order.\n\n"
		   "  BINARY         an ELF file (a bare name is looked up in $PATH)\n"
		   "  -p, --pid PID  a running process: each object it has mapped\n"
		   "  PROVIDER:NAME  only these probes (shell globs: 'python:*', '*:throw')\n"
		   "  -d, --defs     print the uprobe_events line sonde writes to trace each\n"
		   "                 probe (what 'sonde trace -e usdt:PATH:PROVIDER:NAME' does)\n\n"
		   "Output: a header line starting with '#', then one line per probe of\n"
		   "space-separated fields:\n\n"
		   "  OBJECT PROVIDER NAME LOCATION BASE SEMAPHORE ARGUMENTS...\n\n"
		   "  OBJECT     the file's path (as the process maps it with -p)\n"
		   "  LOCATION   the probe's address, BASE the address of .stapsdt.base and\n"
		   "  SEMAPHORE  the semaphore's address (0 for none), all as the note\n"
		   "             records them and readelf --notes prints them: 0x + 16 hex digits\n"
		   "  ARGUMENTS  the argument specs, as many fields as arguments (none: the\n"
		   "             line ends after SEMAPHORE)\n\n"
		   "Trace one with 'sonde trace -e usdt:[PATH:]PROVIDER:NAME' (u: for short).\n");
}

struct opts {
	const char *provider, *name; /* globs */
	bool defs;
	int failed;
};

static bool match(const struct opts *o, const struct sd_usdt_probe *p)
{
	return (!o->provider || !fnmatch(o->provider, p->provider, 0)) &&
	       (!o->name || !fnmatch(o->name, p->name, 0));
}

static void print_file(struct opts *o, struct sd_usdt_file *f, const char *object)
{
	for (size_t i = 0; i < sd_usdt_count(f); i++) {
		const struct sd_usdt_probe *p = sd_usdt_at(f, i);
		char *line;

		if (!match(o, p))
			continue;
		if (!o->defs) {
			printf("%s %s %s 0x%016" PRIx64 " 0x%016" PRIx64 " 0x%016" PRIx64 "%s%s\n",
			       object, p->provider, p->name, p->note_pc, p->note_base, p->note_sem,
			       *p->args ? " " : "", p->args);
			continue;
		}
		if (sd_usdt_probe_def(f, p, NULL, NULL, object, NULL, &line)) {
			fflush(stdout);
			fprintf(stderr, "sonde: list: %s\n", sonde_last_error());
			o->failed = 1;
			continue;
		}
		printf("%s\n", line);
		free(line);
	}
}

static void header(const struct opts *o)
{
	if (!o->defs)
		printf("# OBJECT PROVIDER NAME LOCATION BASE SEMAPHORE ARGUMENTS\n");
}

static int finish(const struct opts *o)
{
	if (fflush(stdout) || ferror(stdout))
		return cli_error("list: writing the output: %s", strerror(errno));
	return o->failed;
}

static int list_file(struct opts *o, const char *binary)
{
	char buf[PATH_MAX];
	const char *path = cli_find_binary(binary, buf, sizeof(buf));
	struct sd_usdt_file *f;

	if (sd_usdt_open(path, &f))
		return cli_error("list: %s", sonde_last_error());
	header(o);
	print_file(o, f, path);
	sd_usdt_free(f);
	return finish(o);
}

static int list_pid(struct opts *o, pid_t pid)
{
	struct sd_maps *maps;
	size_t n;

	if (sd_maps_read(pid, &maps))
		return cli_error("list: %s", sonde_last_error());
	n = sd_maps_count(maps);
	if (!n) {
		sd_maps_free(maps);
		return cli_error("list: pid %d: no ELF objects are mapped", (int)pid);
	}
	header(o);
	for (size_t i = 0; i < n; i++) {
		struct sd_module *mod = sd_maps_at(maps, i);
		struct sd_usdt_file *f;

		/* the tracer's own code is not offered for tracing */
		if (!mod->is_main && !strncmp(mod->name, "libsonde", 8))
			continue;
		if (sd_usdt_open(mod->path, &f)) {
			fflush(stdout);
			fprintf(stderr, "sonde: list: warning: %s\n", sonde_last_error());
			continue;
		}
		print_file(o, f, mod->path);
		sd_usdt_free(f);
	}
	sd_maps_free(maps);
	return finish(o);
}

int list_usdt(int argc, char **argv)
{
	const char *pos[2], *pid_arg = NULL;
	struct opts o = {0};
	bool dashdash = false;
	size_t npos = 0;
	char *glob = NULL;
	pid_t pid = 0;
	int ret;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!dashdash && cli_is_help(a)) {
			usage(stdout);
			return 0;
		} else if (!dashdash && !strcmp(a, "--")) {
			dashdash = true;
		} else if (!dashdash && (!strcmp(a, "-d") || !strcmp(a, "--defs"))) {
			o.defs = true;
		} else if (!dashdash && (!strcmp(a, "-p") || !strcmp(a, "--pid"))) {
			if (++i == argc) {
				cli_error("list: %s needs a process id", a);
				return 2;
			}
			pid_arg = argv[i];
		} else if (!dashdash && !strncmp(a, "--pid=", 6)) {
			pid_arg = a + 6;
		} else if (!dashdash && !strncmp(a, "-p", 2)) {
			pid_arg = a + 2;
		} else if (!dashdash && a[0] == '-' && a[1]) {
			cli_error("list: unknown option '%s'; see 'sonde list usdt --help'", a);
			return 2;
		} else if (npos < 2) {
			pos[npos++] = a;
		} else {
			cli_error("list: too many arguments ('%s'); see 'sonde list usdt --help'",
				  a);
			return 2;
		}
	}
	if (pid_arg) {
		if (cli_parse_pid(pid_arg, &pid)) {
			cli_error("list: '%s' is not a process id", pid_arg);
			return 2;
		}
		if (npos > 1) {
			cli_error("list: with -p, only PROVIDER:NAME may follow ('%s')", pos[1]);
			return 2;
		}
	} else if (!npos) {
		cli_error("list: USDT probes of what? give a BINARY or -p PID");
		return 2;
	}
	if (npos > (pid_arg ? 0 : 1)) {
		char *colon;

		glob = strdup(pos[npos - 1]);
		if (!glob)
			return 1;
		colon = strchr(glob, ':');
		if (colon) {
			*colon = '\0';
			o.name = colon + 1;
		}
		o.provider = glob;
	}
	ret = pid_arg ? list_pid(&o, pid) : list_file(&o, pos[0]);
	free(glob);
	return ret;
}
