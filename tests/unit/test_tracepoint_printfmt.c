// SPDX-License-Identifier: MIT
/*
 * test_tracepoint_printfmt.c - format files as data and the print fmt
 * interpreter (src/trace/printfmt.c), with the kernel as the oracle where
 * tracefs is there:
 *
 *   - every format file of the running kernel, parsed and written back by
 *     sonde's format writer, is the same text, byte for byte;
 *   - records the kernel wrote (per_cpu/cpuN/trace_pipe_raw of a private
 *     instance) rendered from the kernel's print fmts read as the kernel's
 *     own `trace` file shows them;
 *   - hand-made records for what the kernel's events did not exercise, and
 *     the name=value fallback when a print fmt calls a function.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "trace/printfmt.h"

#define TRACEFS "/sys/kernel/tracing"

static char *slurp(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t len = 0, cap = 1 << 16;
	char *buf;
	ssize_t n;

	if (fd < 0)
		return NULL;
	buf = malloc(cap);
	while (buf && (n = read(fd, buf + len, cap - len - 1)) > 0) {
		len += n;
		if (len + 1 == cap) {
			char *bigger = realloc(buf, cap *= 2);

			if (!bigger) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = bigger;
		}
	}
	close(fd);
	if (buf)
		buf[len] = '\0';
	return buf;
}

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -EIO;
}

/* an event from format text, as the sonde command builds it */
struct fevent {
	struct sd_event ev;
	struct sd_printfmt *pf;
	char why[160];
};

static int fevent_load(struct fevent *fe, const char *text)
{
	const char *n = strstr(text, "name: "), *id = strstr(text, "ID: ");

	memset(fe, 0, sizeof(*fe));
	if (!n || !id)
		return -EINVAL;
	sscanf(n, "name: %63s", fe->ev.name);
	fe->ev.id = (unsigned int)strtoul(id + 4, NULL, 10);
	if (sd_format_parse(text, &fe->ev.fields, &fe->ev.nfields, &fe->ev.print_fmt,
			    &fe->ev.fixed_size))
		return -EINVAL;
	if (fe->ev.print_fmt &&
	    sd_printfmt_compile(fe->ev.print_fmt, &fe->ev, &fe->pf, fe->why, sizeof(fe->why)))
		fe->pf = NULL;
	return 0;
}

static void fevent_free(struct fevent *fe)
{
	sd_printfmt_free(fe->pf);
	sd_fields_free(fe->ev.fields, fe->ev.nfields);
	free(fe->ev.print_fmt);
	memset(fe, 0, sizeof(*fe));
}

static char *render(const struct fevent *fe, const void *rec, uint32_t len)
{
	static char buf[8192];
	struct sd_seq s;

	sd_seq_init(&s, buf, sizeof(buf));
	if (fe->pf)
		sd_printfmt_render(&s, fe->pf, rec, len, NULL);
	else
		sd_print_fields(&s, &fe->ev, rec, len);
	return buf;
}

/* ---- the running kernel's format files ------------------------------------------------------ */

TEST(kernel_format_files_round_trip)
{
	DIR *sys = opendir(TRACEFS "/events");
	struct dirent *s, *e;
	int files = 0, same = 0, compiled = 0;
	char path[1024];

	if (!sys)
		SKIP("no tracefs at " TRACEFS);
	while ((s = readdir(sys))) {
		DIR *d;

		if (s->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), TRACEFS "/events/%s", s->d_name);
		d = opendir(path);
		while (d && (e = readdir(d))) {
			struct fevent fe;
			char *text, out[65536];
			struct sd_seq sq;

			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), TRACEFS "/events/%s/%s/format", s->d_name,
				 e->d_name);
			text = slurp(path);
			if (!text)
				continue;
			files++;
			if (fevent_load(&fe, text)) {
				printf("  cannot parse %s\n", path);
				free(text);
				continue;
			}
			sd_seq_init(&sq, out, sizeof(out));
			sd_event_format(&sq, &fe.ev);
			if (!strcmp(out, text))
				same++;
			else if (files - same < 4)
				printf("  %s differs:\n--- kernel\n%s--- sonde\n%s", path, text,
				       out);
			else
				printf("  %s differs\n", path);
			compiled += fe.pf != NULL;
			if (!fe.pf && getenv("SONDE_PRINTFMT_VERBOSE"))
				printf("  %s/%s: %s\n", s->d_name, e->d_name, fe.why);
			fevent_free(&fe);
			free(text);
		}
		if (d)
			closedir(d);
	}
	closedir(sys);
	if (!files)
		SKIP("no readable format file");
	printf("  %d format files: %d written back identically; %d print fmts evaluable\n", files,
	       same, compiled);
	CHECK_EQ(same, files);
	CHECK(compiled * 10 >= files * 7); /* most: the others call kernel functions */
}

/* ---- records the kernel wrote, printed as the kernel prints them ---------------------------- */

struct oracle {
	char inst[256];
	struct fevent ev[512];
	int nev;
	int compared, matched, shown;
};

static struct fevent *oracle_event(struct oracle *o, unsigned int id)
{
	for (int i = 0; i < o->nev; i++)
		if (o->ev[i].ev.id == id)
			return &o->ev[i];
	return NULL;
}

/* the text after "name: " of each line of the `trace` file for @cpu, in order */
static char **text_lines(const char *trace, int cpu, int *n)
{
	char **v = NULL, tag[16];
	const char *line = trace;
	int cap = 0;

	*n = 0;
	snprintf(tag, sizeof(tag), "[%03d] ", cpu);
	while (line && *line) {
		const char *eol = strchr(line, '\n'), *p;
		size_t len = eol ? (size_t)(eol - line) : strlen(line);

		if (line[0] != '#' && (p = memmem(line, len, tag, strlen(tag)))) {
			/* "[001] d..2.  1234.567890: name: text" */
			p = memmem(p, line + len - p, ": ", 2);
			if (p) {
				p += 2;
				if (*n == cap) {
					char **bigger =
					    realloc(v, (cap = cap ? 2 * cap : 256) * sizeof(*v));

					if (!bigger)
						break;
					v = bigger;
				}
				v[(*n)++] = strndup(p, line + len - p);
			}
		}
		line = eol ? eol + 1 : NULL;
	}
	return v;
}

/* one raw record: compare sonde's rendering with the kernel's line */
static void compare(struct oracle *o, const unsigned char *rec, uint32_t len, const char *kline)
{
	struct fevent *fe;
	uint16_t id;
	const char *want;
	size_t nl;

	if (len < 8 || !kline)
		return;
	memcpy(&id, rec, 2);
	fe = oracle_event(o, id);
	if (!fe || !fe->pf || strstr(fe->ev.print_fmt, "%p"))
		return; /* kernel symbols and functions: not for user space */
	nl = strlen(fe->ev.name);
	if (strncmp(kline, fe->ev.name, nl) || strncmp(kline + nl, ": ", 2))
		return;
	want = kline + nl + 2;
	o->compared++;
	if (!strcmp(render(fe, rec, len), want)) {
		o->matched++;
	} else if (o->shown++ < 5) {
		printf("  %s:\n    kernel: %s\n    sonde:  %s\n", fe->ev.name, want,
		       render(fe, rec, len));
	}
}

/* the data records of one ring buffer page (events/header_page, header_event) */
static void page_records(struct oracle *o, const unsigned char *page, char **lines, int nlines,
			 int *at)
{
	uint64_t commit;
	size_t off = 16, end;

	memcpy(&commit, page + 8, 8);
	end = 16 + (commit & 0xfffff);
	if (end > 4096)
		end = 4096;
	while (off + 4 <= end) {
		uint32_t h, type_len, len;

		memcpy(&h, page + off, 4);
		type_len = h & 0x1f;
		if (type_len == 29) { /* padding */
			if (!(h >> 5))
				break;
			memcpy(&len, page + off + 4, 4);
			off += 4 + len;
			continue;
		}
		if (type_len == 30 || type_len == 31) { /* time extend, time stamp */
			off += 8;
			continue;
		}
		if (type_len == 0) {
			memcpy(&len, page + off + 4, 4);
			if (len < 4 || off + 4 + len > end)
				break;
			compare(o, page + off + 8, len - 4, *at < nlines ? lines[*at] : NULL);
			off += 4 + len;
		} else {
			len = type_len * 4;
			if (off + 4 + len > end)
				break;
			compare(o, page + off + 4, len, *at < nlines ? lines[*at] : NULL);
			off += 4 + len;
		}
		(*at)++;
	}
}

static void busy_work(void)
{
	for (int i = 0; i < 20; i++) {
		pid_t p = fork();

		if (p == 0) {
			execl("/bin/true", "true", (char *)NULL);
			_exit(1);
		}
		if (p > 0)
			waitpid(p, NULL, 0);
		usleep(1000);
	}
	kill(getpid(), SIGWINCH); /* signal events */
}

TEST(kernel_records_print_as_the_kernel_prints_them)
{
	static const char *const systems[] = {"sched", "signal", "task", "raw_syscalls", "irq"};
	struct oracle *o = calloc(1, sizeof(*o));
	char path[1024], *trace;
	int ncpu = (int)sysconf(_SC_NPROCESSORS_CONF);

	CHECK(o);
	if (geteuid() != 0 || access(TRACEFS "/instances", W_OK))
		SKIP("needs root and " TRACEFS "/instances");
	signal(SIGWINCH, SIG_IGN);
	snprintf(o->inst, sizeof(o->inst), TRACEFS "/instances/sonde_printfmt_%d", (int)getpid());
	if (mkdir(o->inst, 0755))
		SKIP("cannot create a tracing instance");
	/* the formats of the events we turn on */
	for (size_t s = 0; s < sizeof(systems) / sizeof(systems[0]); s++) {
		DIR *d;
		struct dirent *e;

		snprintf(path, sizeof(path), "%s/events/%s", o->inst, systems[s]);
		d = opendir(path);
		while (d && (e = readdir(d)) && o->nev < 512) {
			char *text;

			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/events/%s/%s/format", o->inst, systems[s],
				 e->d_name);
			text = slurp(path);
			if (text && !fevent_load(&o->ev[o->nev], text))
				o->nev++;
			free(text);
		}
		if (d)
			closedir(d);
		snprintf(path, sizeof(path), "%s/events/%s/enable", o->inst, systems[s]);
		write_file(path, "1");
	}
	snprintf(path, sizeof(path), "%s/tracing_on", o->inst);
	write_file(path, "1");
	busy_work();
	write_file(path, "0");
	snprintf(path, sizeof(path), "%s/events/enable", o->inst);
	write_file(path, "0");
	snprintf(path, sizeof(path), "%s/trace", o->inst);
	trace = slurp(path);
	CHECK(trace);
	for (int cpu = 0; cpu < ncpu; cpu++) {
		unsigned char page[4096];
		int nlines, at = 0, fd;
		char **lines = text_lines(trace, cpu, &nlines);

		snprintf(path, sizeof(path), "%s/per_cpu/cpu%d/trace_pipe_raw", o->inst, cpu);
		fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		while (fd >= 0 && read(fd, page, sizeof(page)) == (ssize_t)sizeof(page))
			page_records(o, page, lines, nlines, &at);
		if (fd >= 0)
			close(fd);
		for (int i = 0; i < nlines; i++)
			free(lines[i]);
		free(lines);
	}
	free(trace);
	rmdir(o->inst);
	printf("  %d kernel records compared (events without %%p), %d printed identically\n",
	       o->compared, o->matched);
	CHECK(o->compared > 100);
	CHECK_EQ(o->matched, o->compared);
	for (int i = 0; i < o->nev; i++)
		fevent_free(&o->ev[i]);
	free(o);
}

/* ---- records made by hand ---------------------------------------------------------------- */

static const char sched_switch_format[] =
    "name: sched_switch\n"
    "ID: 372\n"
    "format:\n"
    "\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n"
    "\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n"
    "\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n"
    "\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n"
    "\n"
    "\tfield:char prev_comm[16];\toffset:8;\tsize:16;\tsigned:0;\n"
    "\tfield:pid_t prev_pid;\toffset:24;\tsize:4;\tsigned:1;\n"
    "\tfield:int prev_prio;\toffset:28;\tsize:4;\tsigned:1;\n"
    "\tfield:long prev_state;\toffset:32;\tsize:8;\tsigned:1;\n"
    "\tfield:char next_comm[16];\toffset:40;\tsize:16;\tsigned:0;\n"
    "\tfield:pid_t next_pid;\toffset:56;\tsize:4;\tsigned:1;\n"
    "\tfield:int next_prio;\toffset:60;\tsize:4;\tsigned:1;\n"
    "\n"
    "print fmt: \"prev_comm=%s prev_pid=%d prev_prio=%d prev_state=%s%s ==> next_comm=%s "
    "next_pid=%d next_prio=%d\", REC->prev_comm, REC->prev_pid, REC->prev_prio, "
    "(REC->prev_state & ((((0x00000000 | 0x00000001 | 0x00000002 | 0x00000004 | 0x00000008 "
    "| 0x00000010 | 0x00000020 | 0x00000040) + 1) << 1) - 1)) ? "
    "__print_flags(REC->prev_state & ((((0x00000000 | 0x00000001 | 0x00000002 | 0x00000004 "
    "| 0x00000008 | 0x00000010 | 0x00000020 | 0x00000040) + 1) << 1) - 1), \"|\", { "
    "0x00000001, \"S\" }, { 0x00000002, \"D\" }, { 0x00000004, \"T\" }, { 0x00000008, \"t\" "
    "}, { 0x00000010, \"X\" }, { 0x00000020, \"Z\" }, { 0x00000040, \"P\" }, { 0x00000080, "
    "\"I\" }) : \"R\", REC->prev_state & (((0x00000000 | 0x00000001 | 0x00000002 | "
    "0x00000004 | 0x00000008 | 0x00000010 | 0x00000020 | 0x00000040) + 1) << 1) ? \"+\" : "
    "\"\", REC->next_comm, REC->next_pid, REC->next_prio\n";

TEST(sched_switch_by_hand)
{
	struct fevent fe;
	unsigned char rec[64] = {0};
	int32_t v;
	int64_t st;

	CHECK_EQ(fevent_load(&fe, sched_switch_format), 0);
	if (!fe.pf)
		check_fail(__FILE__, __LINE__, "not compiled: %s", fe.why);
	strcpy((char *)rec + 8, "bash");
	v = 1234;
	memcpy(rec + 24, &v, 4);
	v = 120;
	memcpy(rec + 28, &v, 4);
	memcpy(rec + 60, &v, 4);
	strcpy((char *)rec + 40, "swapper/0");
	st = 1;
	memcpy(rec + 32, &st, 8);
	CHECK_STREQ(render(&fe, rec, sizeof(rec)), "prev_comm=bash prev_pid=1234 prev_prio=120 "
						   "prev_state=S ==> next_comm=swapper/0 "
						   "next_pid=0 next_prio=120");
	st = 0;
	memcpy(rec + 32, &st, 8);
	CHECK(strstr(render(&fe, rec, sizeof(rec)), "prev_state=R ==>"));
	st = 0x100;
	memcpy(rec + 32, &st, 8);
	CHECK(strstr(render(&fe, rec, sizeof(rec)), "prev_state=R+ ==>"));
	st = 0x3;
	memcpy(rec + 32, &st, 8);
	CHECK(strstr(render(&fe, rec, sizeof(rec)), "prev_state=S|D ==>"));
	/* a record cut short reads as faults, never past its end */
	CHECK(strstr(render(&fe, rec, 30), "next_comm=(fault)"));
	fevent_free(&fe);
}

/* a format whose fields are a u32 x, a u64 y, char s[8], __data_loc char[] d, __data_loc u16[] a */
static const char mixed_head[] =
    "name: mixed\nID: 7\nformat:\n"
    "\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n"
    "\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n"
    "\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n"
    "\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n"
    "\tfield:unsigned int x;\toffset:8;\tsize:4;\tsigned:0;\n"
    "\tfield:long y;\toffset:16;\tsize:8;\tsigned:1;\n"
    "\tfield:char s[8];\toffset:24;\tsize:8;\tsigned:1;\n"
    "\tfield:__data_loc char[] d;\toffset:32;\tsize:4;\tsigned:1;\n"
    "\tfield:__data_loc unsigned short[] a;\toffset:36;\tsize:4;\tsigned:0;\n\n";

static const char *mixed(const char *print_fmt, char *why, size_t whylen)
{
	static unsigned char rec[64];
	static struct fevent fe;
	char text[4096];
	uint32_t x = 0xbeef, loc;
	int64_t y = -42;
	uint16_t a[3] = {1, 0x20, 0x300};

	fevent_free(&fe);
	snprintf(text, sizeof(text), "%sprint fmt: %s\n", mixed_head, print_fmt);
	memset(rec, 0, sizeof(rec));
	memcpy(rec + 8, &x, 4);
	memcpy(rec + 16, &y, 8);
	memcpy(rec + 24, "abcdefgh", 8); /* no NUL: bounded by the array */
	memcpy(rec + 40, "dyn", 4);
	loc = 4u << 16 | 40;
	memcpy(rec + 32, &loc, 4);
	memcpy(rec + 44, a, 6);
	loc = 6u << 16 | 44;
	memcpy(rec + 36, &loc, 4);
	if (fevent_load(&fe, text))
		return "(format not parsed)";
	if (why)
		snprintf(why, whylen, "%s", fe.why);
	return render(&fe, rec, 50);
}

TEST(interpreter_by_hand)
{
	char why[160];

	CHECK_STREQ(
	    mixed("\"x=%u y=%ld s=%s d=%s\", REC->x, REC->y, REC->s, __get_str(d)", NULL, 0),
	    "x=48879 y=-42 s=abcdefgh d=dyn");
	CHECK_STREQ(mixed("\"%#x %08x %-6d| %5s|%.2s %c%c\", REC->x, REC->x, REC->y, __get_str(d), "
			  "REC->s, REC->s[1], 'Z'",
			  NULL, 0),
		    "0xbeef 0000beef -42   |   dyn|ab bZ");
	CHECK_STREQ(mixed("\"%*d|%-*u|%.*s\", 5, REC->y, 4, 7, 2, __get_str(d)", NULL, 0),
		    "  -42|7   |dy");
	CHECK_STREQ(mixed("\"%d %d %d %u\", (int)(REC->x >> 8), (char)REC->x, REC->y < 0 && "
			  "REC->x, (unsigned char)REC->y",
			  NULL, 0),
		    "190 -17 1 214");
	CHECK_STREQ(mixed("\"%s %s\", REC->y > 0 ? \"pos\" : \"neg\", REC->x == 0xbeef ? \"beef\" "
			  ": \"other\"",
			  NULL, 0),
		    "neg beef");
	CHECK_STREQ(mixed("\"%s\", __print_array(__get_dynamic_array(a), "
			  "__get_dynamic_array_len(a) / sizeof(u16), sizeof(u16))",
			  NULL, 0),
		    "{0x1,0x20,0x300}");
	CHECK_STREQ(
	    mixed("\"%s|%s\", __print_hex(REC->s, 3), __print_hex_str(__get_dynamic_array(d), "
		  "3)",
		  NULL, 0),
	    "61 62 63|64796e");
	CHECK_STREQ(mixed("\"%s %s %s\", __print_flags(REC->x, \",\", {1, \"ONE\"}, {0xe, \"E\"}), "
			  "__print_symbolic(REC->x & 3, {3, \"three\"}), "
			  "__print_symbolic(REC->x, {1, \"one\"})",
			  NULL, 0),
		    "ONE,E,0xbee0 three 0xbeef");
	CHECK_STREQ(mixed("\"%d %d\", sizeof(unsigned long), sizeof(REC->s)", NULL, 0), "8 8");
	CHECK_STREQ(mixed("\"a\\tb\\\"%%\" \"-%d\", REC->x % 10", NULL, 0), "a\tb\"%-9");
	CHECK_STREQ(mixed("\"%d\", REC->x / 0", NULL, 0), "(fault)");
	CHECK_STREQ(mixed("\"no args\"", NULL, 0), "no args");
	/* not evaluable: fields as name=value, and why */
	CHECK_STREQ(mixed("\"%s\", my_func(REC->x)", why, sizeof(why)),
		    "x=48879 y=-42 s=\"abcdefgh\" d=\"dyn\" a={0x1,0x20,0x300}");
	CHECK_STREQ(why, "col 7: 'my_func' cannot be evaluated outside the traced program");
	mixed("\"%d %d\", REC->x", why, sizeof(why));
	CHECK_STREQ(why, "col 16: fewer arguments than conversions");
	mixed("\"%d\", REC->nope", why, sizeof(why));
	CHECK_STREQ(why, "col 12: no field 'nope'");
	mixed("\"%f\", REC->x", why, sizeof(why));
	CHECK_STREQ(why, "col 1: conversion '%f' is not supported");
}

static int fake_sym(void *arg, uint64_t addr, char *buf, size_t len)
{
	(void)arg;
	if (addr != 0xbeef)
		return -1;
	return snprintf(buf, len, "main+0x1c/0x80");
}

TEST(symbols)
{
	struct fevent fe;
	char text[4096];
	unsigned char rec[64] = {0};
	uint32_t x = 0xbeef;
	struct sd_print_ctx ctx = {.sym = fake_sym};
	char buf[256];
	struct sd_seq s;

	snprintf(text, sizeof(text), "%sprint fmt: %s\n", mixed_head,
		 "\"%pS %ps %p %pS\", (void *)REC->x, (void *)REC->x, (void *)REC->x, REC->y");
	CHECK_EQ(fevent_load(&fe, text), 0);
	CHECK(fe.pf);
	memcpy(rec + 8, &x, 4);
	memset(rec + 16, 0, 8);
	sd_seq_init(&s, buf, sizeof(buf));
	sd_printfmt_render(&s, fe.pf, rec, sizeof(rec), &ctx);
	CHECK_STREQ(buf, "main+0x1c/0x80 main 0xbeef 0x0");
	fevent_free(&fe);
}
