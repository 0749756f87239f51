// SPDX-License-Identifier: MIT
/*
 * test_tracepoint.c - static tracepoints (<sonde/tracepoint.h>) from the
 * runtime's side: this executable defines tracepoints of its own
 * (tp_unit_trace.h) and opens libtpdl.so with dlopen().
 *
 *   - a disabled site is the 5-byte nop, read in memory;
 *   - events are registered with the record layout the compiler made;
 *   - enabling patches a jmp to the out-of-line call, disabling puts the
 *     nop back; records carry the values and print with TP_printk;
 *   - static keys are reference counted;
 *   - 10^4 enable/disable cycles while 8 threads run through the site;
 *   - a dlopen()ed library's events appear at once and go with dlclose().
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sonde/kprobes.h>
#include <sonde/sonde.h>

#include "arch/x86_64/insn_len.h"
#include "check.h"
#include "probe/probe.h"
#include "trace/output.h"
#include "trace/printfmt.h"
#include "trace/trace.h"
#include "tracepoint/tracepoint.h"

#define CREATE_TRACE_POINTS
#include "tp_unit_trace.h"

/* the linker's bounds of this executable's sections */
extern const struct sonde_jump_entry __start___sonde_jump_table[], __stop___sonde_jump_table[];
extern struct sonde_tracepoint __start___sonde_tracepoints[], __stop___sonde_tracepoints[];

static const uint8_t nop5[5] = {0x0f, 0x1f, 0x44, 0x00, 0x00};

static struct sd_event *setup_event(const char *system, const char *name)
{
	struct sd_event *ev;

	CHECK_EQ(sd_tracepoint_init(), 0);
	sd_trace_lock();
	ev = sd_trace_find_event(system, name);
	sd_trace_unlock();
	if (!ev)
		check_fail(__FILE__, __LINE__, "no event %s:%s (%s)", system, name,
			   sonde_last_error());
	return ev;
}

static int enable(struct sd_event *ev, bool on)
{
	int err;

	sd_trace_lock();
	err = sd_trace_enable_event(ev, on);
	sd_trace_unlock();
	return err;
}

/* every site of @ev holds the nop (!on) or a jmp to an address of this object (on) */
static void check_sites(struct sd_event *ev, bool on, int min_sites)
{
	uint64_t sites[64];
	int n = sd_tracepoint_sites(ev, sites, 64);

	CHECK(n >= min_sites);
	for (int i = 0; i < n && i < 64; i++) {
		const uint8_t *p = (const uint8_t *)(uintptr_t)sites[i];

		if (on) {
			Dl_info site_obj, to_obj;
			int32_t rel;

			CHECK_EQ(p[0], 0xe9);
			memcpy(&rel, p + 1, 4);
			/* the out-of-line block: cold code (.text.unlikely) of the same object */
			CHECK(dladdr(p, &site_obj) && dladdr(p + 5 + rel, &to_obj));
			CHECK(site_obj.dli_fbase == to_obj.dli_fbase);
			CHECK(rel != 0);
		} else {
			if (memcmp(p, nop5, 5))
				check_fail(__FILE__, __LINE__,
					   "site %d at %p: %02x %02x %02x %02x %02x", i,
					   (const void *)p, p[0], p[1], p[2], p[3], p[4]);
		}
	}
}

/* the records now in the ring, rendered as "name: text" lines joined with '\n' */
static char *drain(void)
{
	struct sd_trace *t = sd_trace_get();
	struct sd_rb_reader *rd;
	struct sd_rb_event rec;
	char *out = calloc(1, 1 << 16), line[4096];
	size_t len = 0;

	CHECK(out);
	CHECK_EQ(sd_rb_reader_open(t->rb, true, &rd), 0);
	while (sd_rb_read(rd, &rec) > 0) {
		uint16_t id;
		struct sd_event *ev;
		struct sd_seq s;

		memcpy(&id, rec.payload, 2);
		ev = sd_trace_event_by_id(id);
		CHECK(ev);
		sd_seq_init(&s, line, sizeof(line));
		sd_seq_printf(&s, "%s: ", ev->name);
		ev->ops->print(&s, ev, rec.payload, rec.len, &(struct sd_print_ctx){0});
		if (len + s.len + 2 < (1 << 16)) {
			memcpy(out + len, line, s.len);
			len += s.len;
			out[len++] = '\n';
		}
	}
	sd_rb_reader_close(rd);
	return out;
}

TEST(disabled_sites_are_nops)
{
	const struct sonde_jump_entry *e;
	int n = 0;

	/* before sonde looks at anything: as the compiler emitted them */
	for (e = __start___sonde_jump_table; e < __stop___sonde_jump_table; e++, n++) {
		const uint8_t *code = (const uint8_t *)&e->code + e->code;

		CHECK(!memcmp(code, nop5, 5));
	}
	CHECK(n >= 4);
	/* and as the runtime finds them */
	check_sites(setup_event("tpunit", "tpu_int"), false, 1);
	trace_tpu_int(1, 'x'); /* a nop: nothing recorded */
	CHECK_STREQ(drain(), "");
}

TEST(layout_is_the_compilers)
{
	struct sd_event *ev = setup_event("tpunit", "tpu_int");
	struct sd_event *mix = setup_event("tpunit", "tpu_mix");
	const struct sd_field *f;

#define OFF(ev, type, field)                                \
	do {                                                \
		f = sd_event_field(ev, #field);             \
		CHECK(f);                                   \
		CHECK_EQ(f->offset, offsetof(type, field)); \
	} while (0)
	OFF(ev, struct __sonde_raw_tpu_int, tag);
	OFF(ev, struct __sonde_raw_tpu_int, value);
	OFF(ev, struct __sonde_raw_tpu_int, big);
	OFF(ev, struct __sonde_raw_tpu_int, neg);
	CHECK_EQ(ev->fixed_size, offsetof(struct __sonde_raw_tpu_int, __data));
	OFF(mix, struct __sonde_raw_tpu_mix, comm);
	f = sd_event_field(mix, "s");
	CHECK(f && f->dynamic && f->ftype == SD_FT_STRING);
	CHECK_EQ(f->offset, offsetof(struct __sonde_raw_tpu_mix, __data_loc_s));
	f = sd_event_field(mix, "bytes");
	CHECK(f && f->dynamic && f->ftype == SD_FT_UNSIGNED && f->elem_size == 1);
	CHECK_EQ(f->offset, offsetof(struct __sonde_raw_tpu_mix, __data_loc_bytes));
#undef OFF
}

TEST(format_file)
{
	struct sd_event *ev = setup_event("tpunit", "tpu_mix");
	char buf[4096], want[4096];
	struct sd_seq s;

	sd_seq_init(&s, buf, sizeof(buf));
	sd_event_format(&s, ev);
	snprintf(
	    want, sizeof(want),
	    "name: tpu_mix\n"
	    "ID: %u\n"
	    "format:\n"
	    "\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n"
	    "\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n"
	    "\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n"
	    "\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n"
	    "\n"
	    "\tfield:char comm[8];\toffset:8;\tsize:8;\tsigned:%d;\n"
	    "\tfield:__data_loc char[] s;\toffset:16;\tsize:4;\tsigned:%d;\n"
	    "\tfield:__data_loc unsigned char[] bytes;\toffset:20;\tsize:4;\tsigned:0;\n"
	    "\tfield:__data_loc char[] first3;\toffset:24;\tsize:4;\tsigned:%d;\n"
	    "\n"
	    "print fmt: \"comm=%%s s=%%s bytes=%%s n=%%u first3=%%s\", REC->comm, __get_str(s), "
	    "__print_hex(__get_dynamic_array(bytes), __get_dynamic_array_len(bytes)), "
	    "__get_dynamic_array_len(bytes), __get_str(first3)\n",
	    ev->id, (char)-1 < 0, (char)-1 < 0, (char)-1 < 0);
	CHECK_STREQ(buf, want);
}

TEST(enable_record_disable)
{
	struct sd_event *ev = setup_event("tpunit", "tpu_int");
	struct sd_event *mix = setup_event("tpunit", "tpu_mix");
	struct sd_event *cond = setup_event("tpunit", "tpu_cond");
	static const unsigned char bytes[] = {0xde, 0xad, 0x01};
	char *out;

	CHECK_EQ(enable(ev, true), 0);
	CHECK_EQ(enable(mix, true), 0);
	CHECK_EQ(enable(cond, true), 0);
	check_sites(ev, true, 1);
	CHECK(trace_tpu_int_enabled());
	trace_tpu_int(7, 'q');
	trace_tpu_int(-3, 'z');
	trace_tpu_mix("hello", bytes, 3);
	trace_tpu_mix(NULL, bytes, 0);
	trace_tpu_cond(5); /* the condition holds it back */
	trace_tpu_cond(50);
	out = drain();
	CHECK_STREQ(out, "tpu_int: tag=q value=7 big=0x7f6e5d4bf neg=-7\n"
			 "tpu_int: tag=z value=-3 big=0x23456785962fc965 neg=3\n"
			 "tpu_mix: comm=unit s=hello bytes=de ad 01 n=3 first3=hel\n"
			 "tpu_mix: comm=unit s=(null) bytes= n=0 first3=(null)\n"
			 "tpu_cond: v=50\n");
	free(out);
	CHECK_EQ(enable(ev, false), 0);
	check_sites(ev, false, 1);
	CHECK(!trace_tpu_int_enabled());
	trace_tpu_int(8, 'n');
	out = drain();
	CHECK_STREQ(out, "");
	free(out);
}

/*
 * Values in many registers, and bytes in the red zone, across an enabled
 * site: the out-of-line call must keep what the compiler expects it to
 * keep, and this leaf function keeps its locals below %rsp.
 */
__attribute__((noinline, no_sanitize("undefined"), optimize("omit-frame-pointer"))) static uint64_t
live_across(uint64_t x)
{
	uint64_t a = x * 3, b = x ^ 0x55, c = x + 7, d = x * x, e = x >> 3, f = x * 11, g = ~x,
		 h = x - 9, i = x * 13 + 1, sum = 0;
	volatile unsigned char rz[64];

	for (int k = 0; k < 64; k++)
		rz[k] = (unsigned char)(x + (uint64_t)k);
	trace_tpu_int((int)x, 'l');
	for (int k = 0; k < 64; k++)
		sum += rz[k];
	return a + b * 3 + c * 5 + d * 7 + e * 11 + f * 13 + g * 17 + h * 19 + i * 23 + sum;
}

TEST(registers_and_red_zone_survive_an_enabled_site)
{
	struct sd_event *ev = setup_event("tpunit", "tpu_int");
	uint64_t want[4];
	char *out;

	for (int i = 0; i < 4; i++)
		want[i] = live_across(1000 + (uint64_t)i * 77);
	CHECK_EQ(enable(ev, true), 0);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(live_across(1000 + (uint64_t)i * 77), want[i]);
	out = drain();
	CHECK(strstr(out, "tag=l value=1231 ")); /* the last one was recorded */
	free(out);
	CHECK_EQ(enable(ev, false), 0);
}

TEST(filter_on_fields)
{
	struct sd_event *ev = setup_event("tpunit", "tpu_mix");
	struct sd_parse_error pe = {0};
	static const unsigned char b[] = {1};
	char *out;

	sd_trace_lock();
	CHECK_EQ(sd_trace_set_filter(ev, "s ~ \"k*\"", &pe), 0);
	sd_trace_unlock();
	CHECK_EQ(enable(ev, true), 0);
	trace_tpu_mix("hello", b, 1);
	trace_tpu_mix("kept", b, 1);
	out = drain();
	CHECK_STREQ(out, "tpu_mix: comm=unit s=kept bytes=01 n=1 first3=kep\n");
	free(out);
}

/* an event without dynamic fields is written in one call; its filter still applies */
TEST(filter_on_fixed_fields)
{
	struct sd_event *ev = setup_event("tpunit", "tpu_int");
	struct sd_parse_error pe = {0};
	char *out;

	sd_trace_lock();
	CHECK_EQ(sd_trace_set_filter(ev, "value > 5 && tag == 107", &pe), 0); /* 107: k */
	sd_trace_unlock();
	CHECK_EQ(enable(ev, true), 0);
	trace_tpu_int(3, 'k');
	trace_tpu_int(9, 'k');
	trace_tpu_int(9, 'x');
	out = drain();
	CHECK_STREQ(out, "tpu_int: tag=k value=9 big=0xa3d70a3d1 neg=-9\n");
	free(out);
	CHECK_EQ(enable(ev, false), 0);
	sd_trace_lock();
	CHECK_EQ(sd_trace_set_filter(ev, "0", &pe), 0);
	sd_trace_unlock();
}

/*
 * An object built against this header, run with a runtime older than
 * rt->write (abi 1): its fixed-size events go through reserve and commit.
 */
TEST(older_runtime_without_write)
{
	struct sd_event *ev = setup_event("tpunit", "tpu_int");
	const struct sonde_tp_runtime *rt = __sonde_tp_tpu_int.rt;
	struct sonde_tp_runtime old;
	char *out;

	CHECK(rt && rt->abi >= SONDE_TP_RT_WRITE && rt->write);
	old = *rt;
	old.abi = 1;
	old.write = NULL;
	CHECK_EQ(enable(ev, true), 0);
	__atomic_store_n(&__sonde_tp_tpu_int.rt, &old, __ATOMIC_RELEASE);
	trace_tpu_int(7, 'q');
	__atomic_store_n(&__sonde_tp_tpu_int.rt, rt, __ATOMIC_RELEASE);
	trace_tpu_int(-3, 'z');
	out = drain();
	CHECK_STREQ(out, "tpu_int: tag=q value=7 big=0x7f6e5d4bf neg=-7\n"
			 "tpu_int: tag=z value=-3 big=0x23456785962fc965 neg=3\n");
	free(out);
	CHECK_EQ(enable(ev, false), 0);
}

static int never(struct sonde_kprobe *p, struct sonde_regs *regs)
{
	(void)p;
	(void)regs;
	return 0;
}

/*
 * As the kernel (jump_label_text_reserved), no kprobe goes on a
 * tracepoint's jump-label nop, nor into it: the nop is the tracepoint's to
 * patch, and a probe there would hide the event or be undone by it.
 */
TEST(no_kprobe_on_a_jump_label)
{
	struct sd_event *ev = setup_event("tpunit", "tpu_int");
	uint64_t sites[64];
	int n = sd_tracepoint_sites(ev, sites, 64);
	char *out;

	CHECK(n >= 1);
	for (int at = 0; at < 5; at += 2) {
		struct sonde_kprobe kp;
		int err;

		memset(&kp, 0, sizeof(kp));
		kp.addr = (void *)(uintptr_t)(sites[0] + (uint64_t)at);
		kp.pre_handler = never;
		err = sonde_register_kprobe(&kp);
		/* (inside the nop: not an instruction's start either) */
		CHECK(at ? err < 0 : err == -EINVAL);
		if (!at)
			CHECK(strstr(sonde_last_error(), "jump label"));
	}
	CHECK_EQ(memcmp((const void *)(uintptr_t)sites[0], nop5, 5), 0);
	CHECK_EQ(enable(ev, true), 0);
	trace_tpu_int(4, 'j');
	out = drain();
	CHECK_STREQ(out, "tpu_int: tag=j value=4 big=0x48d159e24 neg=-4\n");
	free(out);
	CHECK_EQ(enable(ev, false), 0);
}

/*
 * A probe on the instruction before a tracepoint's nop, too short for a
 * jump of its own: its jump would cover the nop, so it stays a breakpoint,
 * and the tracepoint still patches its nop and fires.
 */
TEST(no_probe_jump_over_a_jump_label)
{
	static const char *const names[] = {"tpu_int", "tpu_mix", "tpu_cond", "tpu_opaque"};
	struct sonde_kprobe kp;
	struct sd_event *ev = NULL;
	bool placed = false;
	char *out;

	for (int e = 0; e < 4 && !placed; e++) {
		uint64_t sites[64];
		int n;

		ev = setup_event("tpunit", names[e]);
		n = sd_tracepoint_sites(ev, sites, 64);
		for (int i = 0; i < n && !placed; i++)
			for (uint64_t d = 1; d < 5 && !placed; d++) {
				struct sd_insn_len il;

				/* an instruction that ends where the nop starts */
				if (sd_insn_len((const uint8_t *)(uintptr_t)(sites[i] - d), 16,
						&il) ||
				    il.len != d)
					continue;
				memset(&kp, 0, sizeof(kp));
				kp.addr = (void *)(uintptr_t)(sites[i] - d);
				kp.pre_handler = never;
				placed = sonde_register_kprobe(&kp) == 0;
			}
	}
	if (!placed)
		check_fail(__FILE__, __LINE__, "no short instruction before any tracepoint's nop");
	sonde_wait_kprobe_optimizer();
	CHECK(!(kp.flags & SONDE_KPROBE_FLAG_OPTIMIZED));
	CHECK(sd_kprobe_opt_why(&kp) && strstr(sd_kprobe_opt_why(&kp), "tracepoint"));
	CHECK_EQ(enable(ev, true), 0);
	check_sites(ev, true, 1);
	CHECK_EQ(enable(ev, false), 0);
	sonde_unregister_kprobe(&kp);
	out = drain();
	free(out);
}

TEST(unprintable_print_fmt_falls_back)
{
	struct sd_event *ev = setup_event("tpunit", "tpu_opaque");
	char *out;

	CHECK_EQ(enable(ev, true), 0);
	trace_tpu_opaque(-4);
	out = drain();
	CHECK_STREQ(out, "tpu_opaque: v=-4 msg=\"hi\"\n");
	free(out);
}

TEST(static_keys_are_counted)
{
	struct sd_event *ev = setup_event("tpunit", "tpu_int");

	sd_trace_lock();
	CHECK_EQ(sd_tracepoint_get(ev), 0);
	CHECK_EQ(sd_tracepoint_get(ev), 0);
	sd_trace_unlock();
	check_sites(ev, true, 1);
	CHECK_EQ(__sonde_tp_tpu_int.key.enabled, 2);
	CHECK_EQ(enable(ev, true), 0);
	CHECK_EQ(__sonde_tp_tpu_int.key.enabled, 3);
	CHECK_EQ(enable(ev, false), 0);
	sd_trace_lock();
	sd_tracepoint_put(ev);
	sd_trace_unlock();
	check_sites(ev, true, 1);
	sd_trace_lock();
	sd_tracepoint_put(ev);
	sd_trace_unlock();
	CHECK_EQ(__sonde_tp_tpu_int.key.enabled, 0);
	check_sites(ev, false, 1);
}

/* ---- enabling and disabling while threads run through the site ------------------------------ */

static volatile int stop;
static unsigned long passes[8];

static void *runner(void *arg)
{
	unsigned long *n = arg;

	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		trace_tpu_int((int)*n, 'r');
		(*n)++;
	}
	return NULL;
}

TEST(toggle_under_threads)
{
	struct sd_event *ev = setup_event("tpunit", "tpu_int");
	uint64_t sites[64];
	uint8_t before[64][5];
	int nsites = sd_tracepoint_sites(ev, sites, 64);
	pthread_t t[8];
	struct sd_rb_stats st;

	CHECK(nsites >= 1 && nsites <= 64);
	for (int i = 0; i < nsites; i++)
		memcpy(before[i], (const void *)(uintptr_t)sites[i], 5);
	for (int i = 0; i < 8; i++)
		CHECK_EQ(pthread_create(&t[i], NULL, runner, &passes[i]), 0);
	for (int i = 0; i < 10000; i++) {
		CHECK_EQ(enable(ev, true), 0);
		CHECK_EQ(enable(ev, false), 0);
	}
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		CHECK(passes[i] > 0);
	}
	for (int i = 0; i < nsites; i++) {
		CHECK(!memcmp(before[i], (const void *)(uintptr_t)sites[i], 5));
		CHECK(!memcmp(before[i], nop5, 5));
	}
	sd_rb_stats(sd_trace_get()->rb, &st);
	printf("  8 threads, %lu passes, %lu records while enabled\n",
	       passes[0] + passes[1] + passes[2] + passes[3] + passes[4] + passes[5] + passes[6] +
		   passes[7],
	       (unsigned long)st.written);
}

/* ---- an object opened after tracing started ------------------------------------------------ */

TEST(dlopen_dlclose)
{
	int (*hello)(int, const char *);
	struct sd_event *ev;
	unsigned int id;
	void *h;
	char *out;

	CHECK_EQ(sd_tracepoint_init(), 0);
	sd_trace_lock();
	CHECK(!sd_trace_find_event("tpdl", "tpdl_hello"));
	sd_trace_unlock();
	h = dlopen(SONDE_TARGET_BIN "/libtpdl.so", RTLD_NOW);
	if (!h)
		check_fail(__FILE__, __LINE__, "dlopen: %s", dlerror());
	/* registered by libsonde's dlopen(), before it returned */
	sd_trace_lock();
	ev = sd_trace_find_event("tpdl", "tpdl_hello");
	sd_trace_unlock();
	CHECK(ev);
	id = ev->id;
	check_sites(ev, false, 1);
	hello = (int (*)(int, const char *))dlsym(h, "tpdl_hello");
	CHECK(hello);
	CHECK_EQ(enable(ev, true), 0);
	check_sites(ev, true, 1);
	CHECK_EQ(hello(3, "unit"), 4);
	out = drain();
	CHECK_STREQ(out, "tpdl_hello: round=3 who=unit\n");
	free(out);
	/* unloaded while enabled: the event goes, nothing is patched in freed memory */
	CHECK_EQ(dlclose(h), 0);
	sd_trace_lock();
	CHECK(!sd_trace_find_event("tpdl", "tpdl_hello"));
	sd_trace_unlock();
	/* loaded again: a new event (new id), disabled, sites nops */
	h = dlopen(SONDE_TARGET_BIN "/libtpdl.so", RTLD_NOW);
	CHECK(h);
	sd_trace_lock();
	ev = sd_trace_find_event("tpdl", "tpdl_hello");
	sd_trace_unlock();
	CHECK(ev && ev->id != id && !ev->enabled);
	check_sites(ev, false, 1);
	dlclose(h);
}

/* the agent's refresh finds what was loaded without libsonde's dlopen */
TEST(refresh_finds_objects)
{
	struct sd_event *ev;
	void *(*real_dlopen)(const char *, int) =
	    (void *(*)(const char *, int))dlvsym(RTLD_NEXT, "dlopen", "GLIBC_2.34");
	void *h;

	CHECK(real_dlopen);
	CHECK_EQ(sd_tracepoint_init(), 0);
	h = real_dlopen(SONDE_TARGET_BIN "/libtpdl.so", RTLD_NOW);
	CHECK(h);
	sd_trace_lock();
	CHECK(!sd_trace_find_event("tpdl", "tpdl_hello"));
	sd_trace_unlock();
	sd_tracepoint_refresh();
	sd_trace_lock();
	ev = sd_trace_find_event("tpdl", "tpdl_hello");
	sd_trace_unlock();
	CHECK(ev);
}
