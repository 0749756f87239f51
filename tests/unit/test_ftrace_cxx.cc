// SPDX-License-Identifier: MIT
/*
 * test_ftrace_cxx.cc - function_graph and C++ exceptions: a throw through
 * frames whose return addresses sonde swapped must still find its catch
 * (the unwinder reads real addresses), the frames it unwound end without
 * an exit record, and what runs after the catch nests under the catcher.
 * Also with a kretprobe on the same functions: both swap the same slots.
 */
#include <errno.h>
#include <string.h>

#include <string>

#include <sonde/kprobes.h>

extern "C" {
#include "check.h"
#include "control/tracefs.h"
}

extern "C" {
int cxx_thrower(int);
int cxx_middle(int);
int cxx_after(int);
int cxx_catcher(int);
}

static int echo(const char *file, const char *text)
{
	return sd_tracefs_write(file, text, strlen(text), true, NULL);
}

static char *cat(const char *file)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	CHECK(f);
	CHECK_EQ(sd_tracefs_read(file, f), 0);
	fclose(f);
	return buf;
}

/* "--> name (d)" and "<-- name (d)" of the trace, in order, as one string */
static std::string tree(void)
{
	char *t = cat("trace");
	std::string out;

	for (char *l = strtok(t, "\n"); l; l = strtok(NULL, "\n")) {
		char *b = strstr(l, "--> ");

		if (!b)
			b = strstr(l, "<-- ");
		if (b && l[0] != '#')
			out += std::string(b) + "\n";
	}
	free(t);
	echo("trace", "");
	return out;
}

static void graph_on(void)
{
	CHECK_EQ(echo("set_ftrace_filter", "cxx_*"), 0);
	CHECK_EQ(echo("current_tracer", "function_graph"), 0);
}

static const char want[] = "--> cxx_catcher (0)\n"
			   "--> cxx_middle (1)\n"
			   "--> cxx_thrower (2)\n"
			   "--> cxx_after (1)\n"
			   "<-- cxx_after (1)\n"
			   "<-- cxx_catcher (0)\n"
			   "--> cxx_catcher (0)\n"
			   "--> cxx_middle (1)\n"
			   "--> cxx_thrower (2)\n"
			   "<-- cxx_thrower (2)\n"
			   "<-- cxx_middle (1)\n"
			   "<-- cxx_catcher (0)\n";

TEST(throw_through_graph_frames)
{
	graph_on();
	CHECK_EQ(cxx_catcher(1), 101);
	CHECK_EQ(cxx_catcher(0), 1);
	CHECK_EQ(echo("current_tracer", "nop"), 0);
	std::string got = tree();
	CHECK_STREQ(got.c_str(), want);
}

static int kret_hits;

static int count_ret(struct sonde_kretprobe_instance *, struct sonde_regs *)
{
	kret_hits++;
	return 0;
}

/* a kretprobe on the same frames, registered before and after the tracer */
TEST(throw_with_kretprobe_too)
{
	for (int order = 0; order < 2; order++) {
		struct sonde_kretprobe rp;

		memset(&rp, 0, sizeof(rp));
		rp.kp.symbol_name = "cxx_middle";
		rp.handler = count_ret;
		kret_hits = 0;
		if (order == 0)
			CHECK_EQ(sonde_register_kretprobe(&rp), 0);
		graph_on();
		if (order == 1)
			CHECK_EQ(sonde_register_kretprobe(&rp), 0);
		CHECK_EQ(cxx_catcher(1), 101);
		CHECK_EQ(cxx_catcher(0), 1);
		CHECK_EQ(echo("current_tracer", "nop"), 0);
		sonde_unregister_kretprobe(&rp);
		std::string got = tree();
		CHECK_STREQ(got.c_str(), want);
		CHECK_EQ(kret_hits, 1); /* the thrown-through call does not return */
	}
}
