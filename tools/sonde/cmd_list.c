// SPDX-License-Identifier: MIT
/*
 * cmd_list.c - sonde list KIND ...: what can be traced.
 *
 *   sonde list functions BINARY [GLOB]
 *   sonde list functions -p PID [GLOB]
 *
 * prints one probeable function per line, as the kernel's
 * available_filter_functions does: "name" for the executable, "name [module]"
 * for a shared library of a running process. Probeable means a FUNC or IFUNC
 * symbol with a size, inside an executable segment.
 *
 * Other kinds plug into the kinds[] table (usdt: list_usdt.c).
 */
#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sonde/sonde.h>

#include "cli.h"
#include "sym/sym.h"

struct list_kind {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
};

static int list_functions(int argc, char **argv);

static const struct list_kind kinds[] = {
    {"functions", list_functions, "functions that can be probed"},
    {"events", NULL, "static tracepoints and defined probe events"},
    {"usdt", list_usdt, "USDT probes (.note.stapsdt): see 'sonde list usdt --help'"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: sonde list functions BINARY [GLOB]\n"
		   "       sonde list functions -p PID [GLOB]\n"
		   "       sonde list usdt [-d] BINARY|-p PID [PROVIDER:NAME]\n\n"
		   "Lists what can be traced, one per line.\n\n"
		   "kinds:\n");
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		fprintf(f, "  %-10s %s%s\n", kinds[i].name, kinds[i].help,
			kinds[i].fn ? "" : " (not available yet)");
	fprintf(f, "\nfunctions:\n"
		   "  BINARY      an ELF executable or library: its functions, by address\n"
		   "  -p, --pid PID\n"
		   "              a running process: the executable's functions, then each\n"
		   "              library's in load order, as 'name [library]'\n"
		   "  GLOB        only names matching this shell pattern ('ma*', 'str?cmp')\n");
}

static bool probeable(const struct sd_symtab *st, const struct sd_sym *s)
{
	/* (an IFUNC's implementation is listed under the IFUNC, which probes it) */
	return (s->type == SD_SYM_FUNC || s->type == SD_SYM_IFUNC) && s->size && !s->resolved &&
	       sd_symtab_vaddr_is_exec(st, s->value);
}

static void print_functions(const struct sd_symtab *st, const char *module, const char *glob)
{
	size_t n = sd_symtab_count(st);

	for (size_t i = 0; i < n; i++) {
		const struct sd_sym *s = sd_symtab_at(st, i);

		if (!probeable(st, s) || (glob && fnmatch(glob, s->name, 0)))
			continue;
		if (module)
			printf("%s [%s]\n", s->name, module);
		else
			printf("%s\n", s->name);
	}
}

static int finish(void)
{
	if (fflush(stdout) || ferror(stdout))
		return cli_error("list: writing the output: %s", strerror(errno));
	return 0;
}

static int list_binary(const char *binary, const char *glob)
{
	char buf[PATH_MAX];
	struct sd_symtab *st;

	if (sd_symtab_open(cli_find_binary(binary, buf, sizeof(buf)), &st))
		return cli_error("list: %s", sonde_last_error());
	print_functions(st, NULL, glob);
	sd_symtab_free(st);
	return finish();
}

static int list_pid(pid_t pid, const char *glob)
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
	for (size_t i = 0; i < n; i++) {
		struct sd_module *mod = sd_maps_at(maps, i);
		struct sd_symtab *st;

		/* the tracer's own code is not offered for tracing */
		if (!mod->is_main && !strncmp(mod->name, "libsonde", 8))
			continue;
		st = sd_module_symtab(mod);
		if (!st) {
			fflush(stdout);
			fprintf(stderr, "sonde: list: warning: %s\n", sonde_last_error());
			continue;
		}
		print_functions(st, mod->is_main ? NULL : mod->name, glob);
	}
	sd_maps_free(maps);
	return finish();
}

static int list_functions(int argc, char **argv)
{
	const char *pos[2], *pid_arg = NULL;
	bool dashdash = false;
	size_t npos = 0;
	pid_t pid = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!dashdash && cli_is_help(a)) {
			usage(stdout);
			return 0;
		} else if (!dashdash && !strcmp(a, "--")) {
			dashdash = true;
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
			cli_error("list: unknown option '%s'; see 'sonde list --help'", a);
			return 2;
		} else if (npos < 2) {
			pos[npos++] = a;
		} else {
			cli_error("list: too many arguments ('%s'); see 'sonde list --help'", a);
			return 2;
		}
	}

	if (pid_arg) {
		if (cli_parse_pid(pid_arg, &pid)) {
			cli_error("list: '%s' is not a process id", pid_arg);
			return 2;
		}
		if (npos > 1) {
			cli_error("list: with -p, only a GLOB may follow ('%s')", pos[1]);
			return 2;
		}
		return list_pid(pid, npos ? pos[0] : NULL);
	}
	if (!npos) {
		cli_error("list: functions of what? give a BINARY or -p PID");
		return 2;
	}
	return list_binary(pos[0], npos > 1 ? pos[1] : NULL);
}

int cmd_list(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (cli_is_help(argv[1]) || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		if (strcmp(argv[1], kinds[i].name))
			continue;
		if (!kinds[i].fn)
			return cli_error("list: '%s' is not available yet", kinds[i].name);
		return kinds[i].fn(argc - 1, argv + 1);
	}
	cli_error("list: unknown kind '%s'; known kinds: functions, usdt (events is not "
		  "available yet)",
		  argv[1]);
	return 2;
}
