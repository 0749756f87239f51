// SPDX-License-Identifier: MIT
/*
 * test_filter.c - event filters: a synthetic event with a field of every
 * kind, records built by hand, a table of filters with the expected result
 * written as a C expression over the record, a table of malformed filters
 * with the kernel's message, position and errno; and, where tracefs and
 * uprobes are available (root), the live kernel as the oracle: the same
 * filters on a uprobe event on a function of this program, same calls,
 * same records accepted, same error readback and error_log caret.
 */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <sched.h>
#include <stdint.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "check.h"
#include "trace/filter.h"

/* ---- the synthetic event: the kernel oracle's uprobe event, plus two fields ---- */

#define F(n, t, o, sz, sg, ft)                                                           \
	{                                                                                \
		.name = (char *)(n), .c_type = (char *)(t), .offset = (o), .size = (sz), \
		.elem_size = (sz), .is_signed = (sg), .ftype = (ft)                      \
	}

static struct sd_field ev_fields[] = {
    F("__probe_ip", "unsigned long", 8, 8, 0, SD_FT_HEX),
    F("a", "u64", 16, 8, 0, SD_FT_UNSIGNED),
    {.name = (char *)"s",
     .c_type = (char *)"__data_loc char[]",
     .offset = 24,
     .size = 4,
     .elem_size = 1,
     .is_signed = 1,
     .ftype = SD_FT_STRING,
     .dynamic = 1},
    F("b", "s64", 28, 8, 1, SD_FT_SIGNED),
    F("x", "u32", 36, 4, 0, SD_FT_HEX),
    F("a8", "u8", 40, 1, 0, SD_FT_UNSIGNED),
    F("a16", "u16", 41, 2, 0, SD_FT_UNSIGNED),
    F("a32", "u32", 43, 4, 0, SD_FT_UNSIGNED),
    F("b8", "s8", 47, 1, 1, SD_FT_SIGNED),
    F("b16", "s16", 48, 2, 1, SD_FT_SIGNED),
    F("b32", "s32", 50, 4, 1, SD_FT_SIGNED),
    F("c", "char", 54, 1, 0, SD_FT_CHAR),
    F("id", "u64", 55, 8, 0, SD_FT_UNSIGNED),
    {.name = (char *)"name",
     .c_type = (char *)"char",
     .offset = 63,
     .size = 16,
     .array_len = 16,
     .elem_size = 1,
     .is_signed = 1,
     .ftype = SD_FT_CHARARRAY},
    {.name = (char *)"arr",
     .c_type = (char *)"u8",
     .offset = 79,
     .size = 3,
     .array_len = 3,
     .elem_size = 1,
     .ftype = SD_FT_UNSIGNED},
};

#define FIXED_SIZE 82

static struct sd_event test_ev = {
    .id = 7,
    .system = "sdtest",
    .name = "ev",
    .fields = ev_fields,
    .nfields = sizeof(ev_fields) / sizeof(ev_fields[0]),
    .fixed_size = FIXED_SIZE,
};

/* ---- records ---- */

struct rv {
	uint64_t a;
	const char *s;
	int64_t b;
	uint32_t x;
	char name[17]; /* 16 bytes in the record, may fill them all */
	int pid;
	unsigned int cpu;
};

static const struct rv recs[] = {
    {0, "", 0, 0, "", 100, 0},
    {1, "hello", -1, 0x10, "bash", 101, 1},
    {2, "help", 1, 0xffffffff, "sh", 102, 2},
    {255, "abc", -128, 1, "zsh", 103, 3},
    {256, "1*", 127, 0x80000000, "abcdefghijklmnop", 104, 0},
    {0x100000001ull, "h*llo", -129, 2, "a*b", 105, 1},
    {UINT64_MAX, "[x]", INT64_MIN, 3, "hello", 106, 2},
    {65535, "a\\b", INT64_MAX, 0x7fffffff, "0123456789abcsh", 107, 3},
};

#define NRECS ((int)(sizeof(recs) / sizeof(recs[0])))

static void put(unsigned char *e, unsigned int off, const void *v, size_t n)
{
	memcpy(e + off, v, n);
}

/* the record as a probe of the kernel's event would write it; returns its length */
static uint32_t build(unsigned char *e, const struct rv *r, uint64_t ip)
{
	uint16_t type = (uint16_t)test_ev.id, slen = (uint16_t)(strlen(r->s) + 1);
	uint32_t loc = (uint32_t)slen << 16 | FIXED_SIZE;
	uint8_t a8 = (uint8_t)r->a, b8 = (uint8_t)r->b;
	uint16_t a16 = (uint16_t)r->a, b16 = (uint16_t)r->b;
	uint32_t a32 = (uint32_t)r->a, b32 = (uint32_t)r->b;
	uint64_t id = (uint64_t)(r - recs);
	int32_t pid = r->pid;

	memset(e, 0xee, FIXED_SIZE + 64);
	put(e, 0, &type, 2);
	e[2] = 0;
	e[3] = 0;
	put(e, 4, &pid, 4);
	put(e, 8, &ip, 8);
	put(e, 16, &r->a, 8);
	put(e, 24, &loc, 4);
	put(e, 28, &r->b, 8);
	put(e, 36, &r->x, 4);
	put(e, 40, &a8, 1);
	put(e, 41, &a16, 2);
	put(e, 43, &a32, 4);
	put(e, 47, &b8, 1);
	put(e, 48, &b16, 2);
	put(e, 50, &b32, 4);
	put(e, 54, &a8, 1);
	put(e, 55, &id, 8);
	memset(e + 63, 0, 16);
	memcpy(e + 63, r->name, strnlen(r->name, 16));
	memset(e + 79, 0, 3);
	memcpy(e + FIXED_SIZE, r->s, slen);
	return FIXED_SIZE + slen;
}

/* ---- reference helpers for the expected results ---- */

static unsigned int ncpu; /* nr_cpu_ids, read independently of filter.c */
static char my_comm[17];

static void setup_env(void)
{
	unsigned int lo, hi;
	FILE *f = fopen("/sys/devices/system/cpu/possible", "r");

	ncpu = 1;
	if (f) {
		if (fscanf(f, "%u-%u", &lo, &hi) == 2)
			ncpu = hi + 1;
		fclose(f);
	}
	memset(my_comm, 0, sizeof(my_comm));
	prctl(PR_GET_NAME, my_comm);
}

static bool S(const struct rv *r, const char *t)
{
	return !strcmp(r->s, t);
}

static bool G(const struct rv *r, const char *pat)
{
	return !fnmatch(pat, r->s, 0);
}

static bool PFX(const struct rv *r, const char *t)
{
	return !strncmp(r->s, t, strlen(t));
}

static bool NM(const struct rv *r, const char *t)
{
	return strlen(t) <= 16 && !strncmp(r->name, t, 16);
}

/* the kernel's "*foo" on a char[16]: the bytes before the array's last one */
static bool NM_END(const struct rv *r, const char *t)
{
	char buf[16] = {0};

	memcpy(buf, r->name, strnlen(r->name, 16));
	return strlen(t) <= 15 && !memcmp(buf + 15 - strlen(t), t, strlen(t));
}

static bool CPUALL_BAND(uint64_t v)
{
	return ncpu == 1 ? v == 0 : (uint32_t)v < ncpu;
}

/*
 * Valid filters and what they mean, record by record. The kernel-only
 * column (last) says whether the live oracle can check it (fields `name`
 * and `arr` do not exist on the kernel's event).
 */
#define MATCH_CASES(X)                                                                            \
	X("a == 1", r->a == 1, 1)                                                                 \
	X("a != 1", r->a != 1, 1)                                                                 \
	X("a > 1", r->a > 1, 1)                                                                   \
	X("a >= 255", r->a >= 255, 1)                                                             \
	X("a < 256", r->a < 256, 1)                                                               \
	X("a <= 0", r->a == 0, 1)                                                                 \
	X("a & 1", (r->a & 1) != 0, 1)                                                            \
	X("a & 0x100", (r->a & 0x100) != 0, 1)                                                    \
	X("a == 0xffffffffffffffff", r->a == UINT64_MAX, 1)                                       \
	X("a == 0XFF", r->a == 255, 1)                                                            \
	X("a == 0377", r->a == 255, 1)                                                            \
	X("a == 010", r->a == 8, 1)                                                               \
	X("a8 == 255", (uint8_t)r->a == 255, 1)                                                   \
	X("a8 == 256", (uint8_t)r->a == 0, 1)                                                     \
	X("a8 > 0x1ff", 0, 1)                                                                     \
	X("a16 == 65535", (uint16_t)r->a == 65535, 1)                                             \
	X("a32 == 1", (uint32_t)r->a == 1, 1)                                                     \
	X("a32 >= 0x80000000", (uint32_t)r->a >= 0x80000000u, 1)                                  \
	X("b < 0", r->b < 0, 1)                                                                   \
	X("b >= -128", r->b >= -128, 1)                                                           \
	X("b == -1", r->b == -1, 1)                                                               \
	X("b == -0x10", r->b == -16, 1)                                                           \
	X("b > -9223372036854775808", r->b > INT64_MIN, 1)                                        \
	X("b == -9223372036854775808", r->b == INT64_MIN, 1)                                      \
	X("b & 1", (r->b & 1) != 0, 1)                                                            \
	X("b8 < 0", (int8_t)r->b < 0, 1)                                                          \
	X("b8 == -129", (uint8_t)r->b == (uint8_t)-129, 1)                                        \
	X("b8 > -129", (int8_t)r->b > (int8_t)-129, 1)                                            \
	X("b16 <= -32768", (int16_t)r->b <= -32768, 1)                                            \
	X("b32 < 0", (int32_t)r->b < 0, 1)                                                        \
	X("b32 & 0x80000000", ((uint32_t)r->b & 0x80000000u) != 0, 1)                             \
	X("x == 0xffffffff", r->x == 0xffffffffu, 1)                                              \
	X("x > 0x7fffffff", r->x > 0x7fffffffu, 1)                                                \
	X("x == 0x1ffffffff", r->x == 0xffffffffu, 1)                                             \
	X("x < 3", r->x < 3, 1)                                                                   \
	X("c == 1", (uint8_t)r->a == 1, 1)                                                        \
	X("c > 200", (uint8_t)r->a > 200, 1)                                                      \
	X("common_type != 0", 1, 1)                                                               \
	X("common_pid > 0", 1, 1)                                                                 \
	X("common_pid == 101", r->pid == 101, 0)                                                  \
	X("common_pid >= 105", r->pid >= 105, 0)                                                  \
	X("common_cpu == 3", r->cpu == 3, 0)                                                      \
	X("cpu < 2", r->cpu < 2, 0)                                                               \
	X("CPU != 0", r->cpu != 0, 0)                                                             \
	X("common_cpu & 1", 0, 1)                                                                 \
	X("common_cpu >= 0", 1, 1)                                                                \
	X("common_cpu == CPUS{0}", r->cpu == 0, 0)                                                \
	X("common_cpu & CPUS{0}", r->cpu == 0, 0)                                                 \
	X("common_cpu & CPUS{all}", ncpu == 1 ? r->cpu == 0 : r->cpu < ncpu, 0)                   \
	X("common_cpu != CPUS{0-N}", ncpu == 1 ? r->cpu != 0 : 1, 0)                              \
	X("a & CPUS{0}", r->a == 0, 1)                                                            \
	X("a != CPUS{0}", r->a != 0, 1)                                                           \
	X("a & CPUS{all}", CPUALL_BAND(r->a), 1)                                                  \
	X("a == CPUS{all}", ncpu == 1 && r->a == 0, 1)                                            \
	X("a != CPUS{ all }", ncpu == 1 ? r->a != 0 : (uint32_t)r->a < ncpu, 1)                   \
	X("a8 & CPUS{N}", ncpu == 1 ? (uint8_t)r->a == 0 : (uint8_t)r->a == ncpu - 1, 1)          \
	X("a & CPUS{ }", 0, 1)                                                                    \
	X("a != CPUS{ }", (uint32_t)r->a < ncpu, 1)                                               \
	X("s == \"hello\"", S(r, "hello"), 1)                                                     \
	X("s != \"hello\"", !S(r, "hello"), 1)                                                    \
	X("s == 'help'", S(r, "help"), 1)                                                         \
	X("s == \"\"", S(r, ""), 1)                                                               \
	X("s == \"h*llo\"", S(r, "h*llo"), 1)                                                     \
	X("s ~ \"hel*\"", PFX(r, "hel"), 1)                                                       \
	X("s ~ \"*lo\"", strlen(r->s) >= 2 && !strcmp(r->s + strlen(r->s) - 2, "lo"), 1)          \
	X("s ~ \"*el*\"", strstr(r->s, "el") != NULL, 1)                                          \
	X("s ~ \"h?l*\"", G(r, "h?l*"), 1)                                                        \
	X("s ~ \"h*llo\"", G(r, "h*llo"), 1)                                                      \
	X("s ~ \"*l*o\"", G(r, "*l*o"), 1)                                                        \
	X("s ~ \"[a-c]*\"", G(r, "[a-c]*"), 1)                                                    \
	X("s ~ \"[!a-c]*\"", G(r, "[!a-c]*"), 1)                                                  \
	X("s ~ \"[]a]*\"", G(r, "[]a]*"), 1)                                                      \
	X("s ~ \"1*\"", S(r, "1*"), 1)                                                            \
	X("s ~ \"!hel*\"", !PFX(r, "hel"), 1)                                                     \
	X("s ~ \"!*\"", 0, 1)                                                                     \
	X("s ~ \"h\\*llo\"", S(r, "h*llo"), 1)                                                    \
	X("s ~ \"*\"", 1, 1)                                                                      \
	X("s ~ \"**\"", 1, 1)                                                                     \
	X("s ~ \"\"", S(r, ""), 1)                                                                \
	X("s ~ \"[x]\"", G(r, "[x]"), 1)                                                          \
	X("s ~ \"\\[x]\"", S(r, "[x]"), 1)                                                        \
	X("s ~ \"[x\"", S(r, "[x"), 1)                                                            \
	X("s ~ \"a\\b\"", S(r, "ab"), 1)                                                          \
	X("s ~ \"a\\\\b\"", S(r, "a\\b"), 1)                                                      \
	X("s ~ \"?\"", strlen(r->s) == 1, 1)                                                      \
	X("s ~ \"??*\"", strlen(r->s) >= 2, 1)                                                    \
	X("s ~ 'abc'", S(r, "abc"), 1)                                                            \
	X("s.ustring == \"abc\"", S(r, "abc"), 1)                                                 \
	X("name == \"bash\"", NM(r, "bash"), 0)                                                   \
	X("name != \"bash\"", !NM(r, "bash"), 0)                                                  \
	X("name == \"abcdefghijklmnop\"", NM(r, "abcdefghijklmnop"), 0)                           \
	X("name == \"abcdefghijklmnopq\"", 0, 0)                                                  \
	X("name ~ \"b*\"", r->name[0] == 'b', 0)                                                  \
	X("name ~ \"*as*\"", strstr(r->name, "as") != NULL, 0)                                    \
	X("name ~ \"*sh\"", NM_END(r, "sh"), 0)                                                   \
	X("name ~ \"?sh\"", NM(r, "zsh"), 0)                                                      \
	X("name ~ \"abc*\"", !strncmp(r->name, "abc", 3), 0)                                      \
	X("name ~ \"*\"", 1, 0)                                                                   \
	X("name ~ \"*b\"", NM_END(r, "b"), 0)                                                     \
	X("arr == 0", 0, 0)                                                                       \
	X("arr != 0", 0, 0)                                                                       \
	X("comm == \"test_filter\"", !strcmp(my_comm, "test_filter"), 1)                          \
	X("COMM != \"test_filter\"", !!strcmp(my_comm, "test_filter"), 1)                         \
	X("comm ~ \"test_*\"", !strncmp(my_comm, "test_", 5), 1)                                  \
	X("comm ~ \"*filter\"", 0, 1)                                                             \
	X("comm ~ \"t?st*\"", !fnmatch("t?st*", my_comm, 0), 1)                                   \
	X("a == 1 || b == 1 && x == 0xffffffff", r->a == 1 || (r->b == 1 && r->x == 0xffffffffu), \
	  1)                                                                                      \
	X("(a == 1 || b == 1) && x == 0xffffffff",                                                \
	  (r->a == 1 || r->b == 1) && r->x == 0xffffffffu, 1)                                     \
	X("a == 1 && b == -1 || a == 2", (r->a == 1 && r->b == -1) || r->a == 2, 1)               \
	X("a == 2 || a == 1 && b == 0", r->a == 2 || (r->a == 1 && r->b == 0), 1)                 \
	X("!a == 1", r->a != 1, 1)                                                                \
	X("! a == 1", r->a != 1, 1)                                                               \
	X("!!a == 1", r->a == 1, 1)                                                               \
	X("!(a == 1 || a == 2)", r->a != 1 && r->a != 2, 1)                                       \
	X("!(a == 1 && b == -1) || s == \"abc\"", !(r->a == 1 && r->b == -1) || S(r, "abc"), 1)   \
	X("!(!(a == 1) && !(b == 1))", r->a == 1 || r->b == 1, 1)                                 \
	X("((a > 0) && ((b < 0) || (x == 3)))", r->a > 0 && (r->b < 0 || r->x == 3), 1)           \
	X("a > 0 && !(b < 0 || x == 3) && s != \"help\"",                                         \
	  r->a > 0 && !(r->b < 0 || r->x == 3) && !S(r, "help"), 1)                               \
	X("a == 1 &&", r->a == 1, 1)                                                              \
	X("a == 1 ||", r->a == 1, 1)                                                              \
	X("a == 1 && !", r->a == 1, 1)                                                            \
	X("a == 1 || !", r->a == 1, 1)                                                            \
	X("a == 1 || b == 1 ||", r->a == 1 || r->b == 1, 1)                                       \
	X("a == 1 || b == 1 && x == 1 ||", r->a == 1 || (r->b == 1 && r->x == 1), 1)              \
	X("a == 1 && b == -1 &&", r->a == 1 && r->b == -1, 1)                                     \
	X("a == 1 && b == -1 ||", r->a == 1 && r->b == -1, 1)                                     \
	X("s ~ \"a\\\"", S(r, "a"), 1)                                                            \
	X("s ~ \"[a-\"", S(r, "[a-"), 1)                                                          \
	X("s ~ \"*[\"", strchr(r->s, '[') && !strchr(r->s, '[')[1], 1)                            \
	X("a==1||a==2||a==255||a==256", r->a == 1 || r->a == 2 || r->a == 255 || r->a == 256, 1)  \
	X("a > 0 && a < 256 && b != 0 && x != 0",                                                 \
	  r->a > 0 && r->a < 256 && r->b != 0 && r->x != 0, 1)                                    \
	X("a & 1 || b & 1", (r->a & 1) || (r->b & 1), 1)                                          \
	X("!(a == 0) && !(s == \"hello\" || s ~ \"*c\")",                                         \
	  r->a != 0 && !(S(r, "hello") || (strlen(r->s) && r->s[strlen(r->s) - 1] == 'c')), 1)    \
	X("a == 1 && !(!(b == -1) || (x == 16 && s == \"hello\")) || a == 2 || a == 255 && !(b "  \
	  "== 1)",                                                                                \
	  (r->a == 1 && !(r->b != -1 || (r->x == 16 && S(r, "hello")))) || r->a == 2 ||           \
	      (r->a == 255 && r->b != 1),                                                         \
	  1)                                                                                      \
	X("  a == 1  ", r->a == 1, 1)                                                             \
	X("\ta\t==\t1\n", r->a == 1, 1)                                                           \
	X("a==1&&b==-1", r->a == 1 && r->b == -1, 1)                                              \
	X("((((a == 1))))", r->a == 1, 1)                                                         \
	X("!((a == 1) || !(b == 127))", r->a != 1 && r->b == 127, 1)                              \
	X("(a == 1) || (a == 2) && (s ~ \"he*\")", r->a == 1 || (r->a == 2 && PFX(r, "he")), 1)   \
	X("!(a < 2) && !(!(s ~ \"*l*\"))", r->a >= 2 && G(r, "*l*"), 1)                           \
	X("a.ustring == 1", r->a == 1, 1)                                                         \
	X("stacktrace != 0", 0, 1) X("stacktrace == 0", 0, 1)

struct mcase {
	const char *filter;
	bool kernel; /* the oracle can check it */
};

#define X_TEXT(f, e, k) {f, k},
static const struct mcase mcases[] = {MATCH_CASES(X_TEXT)};
#define NMCASES ((int)(sizeof(mcases) / sizeof(mcases[0])))

enum { SW_BASE = __COUNTER__ };
#define X_EXPECT(f, e, k)               \
	case __COUNTER__ - SW_BASE - 1: \
		return (e);

static bool expect(int i, const struct rv *r)
{
	switch (i) {
		MATCH_CASES(X_EXPECT)
	}
	abort();
}

/* ---- malformed filters: the kernel's message, position and errno ---- */

struct ecase {
	const char *filter;
	const char *msg; /* "Error" for the kernel's "Error: (0)" */
	int pos;
	int err; /* what the write returns */
	bool kernel;
};

#define LONG256 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"

static const struct ecase ecases[] = {
    {"a >", "Invalid value (did you forget quotes)?", 4, -EINVAL, 1},
    {"a ==", "Invalid value (did you forget quotes)?", 5, -EINVAL, 1},
    {"a === 1", "Invalid value (did you forget quotes)?", 5, -EINVAL, 1},
    {"a <> 1", "Invalid value (did you forget quotes)?", 4, -EINVAL, 1},
    {"a == (1)", "Invalid value (did you forget quotes)?", 6, -EINVAL, 1},
    {"s == hello", "Invalid value (did you forget quotes)?", 6, -EINVAL, 1},
    {"zz == 1", "Field not found", 3, -EINVAL, 1},
    {"1 == a", "Field not found", 2, -EINVAL, 1},
    {"a == 1 && zz == 2", "Field not found", 13, -EINVAL, 1},
    {"a\xc0 == 1", "Field not found", 3, -EINVAL, 1},
    {"()", "Error", 0, -EINVAL, 1},
    {"== 1", "Error", 0, -EPERM, 1},
    {"!~ \"x\"", "Error", 0, -EPERM, 1},
    {"a == 1 && && b == 2", "Error", 0, -EPERM, 1},
    {"&& a == 1", "Error", 0, -EPERM, 1},
    {"|| a == 1", "Error", 0, -EPERM, 1},
    {"a == 1 ||| b == 2", "Error", 0, -EPERM, 1},
    {"!= 1", "Error", 0, -EPERM, 1},
    {"a == 1 && ()", "Error", 0, -EPERM, 1},
    {"a == 1 || (!)", "Error", 0, -EPERM, 1},
    /* the kernel reads before its program here (and WARNs): not run on it */
    {"a == 1 || b == 1 &&", "Error", 0, -EINVAL, 0},
    {"a == 1 || b == 1 && x == 1 &&", "Error", 0, -EINVAL, 0},
    {"!", "No filter found", 1, -EINVAL, 1},
    {"!!", "No filter found", 2, -EINVAL, 1},
    {"a == 1 b == 2", "Too many terms in predicate expression", 7, -EPERM, 1},
    {"a == 1 & b == 2", "Too many terms in predicate expression", 7, -EPERM, 1},
    {"a == 1 &", "Too many terms in predicate expression", 7, -EPERM, 1},
    {"a == 1 |", "Too many terms in predicate expression", 7, -EPERM, 1},
    {"(a == 1) b == 2", "Too many terms in predicate expression", 9, -EPERM, 1},
    {"a == 1 (b == 2)", "Too many terms in predicate expression", 7, -EPERM, 1},
    {"s ~ \"abc\" extra", "Too many terms in predicate expression", 10, -EPERM, 1},
    {"a = 1", "Invalid operator", 3, -EINVAL, 1},
    {"a ! 1", "Invalid operator", 3, -EINVAL, 1},
    {"a =< 1", "Invalid operator", 3, -EINVAL, 1},
    {"a", "Invalid operator", 2, -EINVAL, 1},
    {"a == 1 && b", "Invalid operator", 12, -EINVAL, 1},
    {"s !~ \"x\"", "Invalid operator", 3, -EINVAL, 1},
    {"a.foo == 1", "Invalid operator", 2, -EINVAL, 1},
    {"a\xd7 == 1", "Invalid operator", 2, -EINVAL, 1},
    {"a.function > 1", "Invalid operator", 14, -EINVAL, 1},
    {"a.function == 1", "Function not found", 16, -EINVAL, 1},
    {"a.function == main", "Function not found", 19, -EINVAL, 1},
    {"s.function == foo", "Illegal operation for field type", 15, -EINVAL, 1},
    {"comm.function == 1", "Illegal operation for field type", 18, -EINVAL, 1},
    {"common_cpu.function == 1", "Illegal operation for field type", 24, -EINVAL, 1},
    {"b8.function != x", "Illegal operation for field type", 16, -EINVAL, 1},
    {"b.function == 0xz", "Invalid value (did you forget quotes)?", 18, -EINVAL, 1},
    {"b.function == 12345678901234567890123456", "Operand too long", 41, -EINVAL, 1},
    {"a == \"x\"", "Expecting numeric field", 6, -EINVAL, 1},
    {"common_pid == 'x'", "Expecting numeric field", 15, -EINVAL, 1},
    {"a.ustring ~ \"x\"", "Expecting numeric field", 13, -EINVAL, 1},
    {"stacktrace == \"x\"", "Expecting numeric field", 15, -EINVAL, 1},
    {"s == 1", "Expecting string field", 6, -EINVAL, 1},
    {"s == -1", "Expecting string field", 6, -EINVAL, 1},
    {"comm == 1", "Expecting string field", 9, -EINVAL, 1},
    {"name == 1", "Expecting string field", 9, -EINVAL, 0},
    {"s > \"x\"", "Illegal operation for field type", 5, -EINVAL, 1},
    {"s & \"x\"", "Illegal operation for field type", 5, -EINVAL, 1},
    {"name <= \"x\"", "Illegal operation for field type", 9, -EINVAL, 0},
    {"a ~ 1", "Illegal operation for field type", 5, -EINVAL, 1},
    {"common_cpu ~ 1", "Illegal operation for field type", 14, -EINVAL, 1},
    {"s == CPUS{0}", "Illegal operation for field type", 6, -EINVAL, 1},
    {"comm == CPUS{0}", "Illegal operation for field type", 9, -EINVAL, 1},
    {"stacktrace == CPUS{0}", "Illegal operation for field type", 15, -EINVAL, 1},
    {"a > CPUS{0}", "Illegal operation for field type", 5, -EINVAL, 1},
    {"s == \"abc", "Missing matching quote", 5, -ESRCH, 1},
    {"s == 'abc", "Missing matching quote", 5, -ESRCH, 1},
    {"\"", "Missing matching quote", 0, -ESRCH, 1},
    {"a == 1 && s == 'x", "Missing matching quote", 15, -ESRCH, 1},
    {"s == \"it's\" && s == 'x", "Missing matching quote", 20, -ESRCH, 1},
    {"(a == 1", "Too many '('", 0, -ENOENT, 1},
    {"(", "Too many '('", 0, -ENOENT, 1},
    {"!(", "Too many '('", 1, -ENOENT, 1},
    {"((a == 1) || (b == 2)", "Too many '('", 0, -ENOENT, 1},
    {"a == 1 && (b == 2", "Too many '('", 10, -ENOENT, 1},
    {"a == 1 && ((b == 2) || (x == 3)", "Too many '('", 10, -ENOENT, 1},
    {"a == 1)", "Too few '('", 6, -EPERM, 1},
    {")", "Too few '('", 0, -EPERM, 1},
    {"a == 1) || (b == 2", "Too few '('", 6, -EPERM, 1},
    {"(a == 1)) && (b == 2", "Too few '('", 8, -EPERM, 1},
    {"a == 0x", "Illegal integer value", 6, -EINVAL, 1},
    {"a == 08", "Illegal integer value", 6, -EINVAL, 1},
    {"a == -1", "Illegal integer value", 6, -EINVAL, 1},
    {"b == --1", "Illegal integer value", 6, -EINVAL, 1},
    {"b == -", "Illegal integer value", 6, -EINVAL, 1},
    {"a == 1x", "Illegal integer value", 6, -EINVAL, 1},
    {"x == 0x1g", "Illegal integer value", 6, -EINVAL, 1},
    {"b == 9223372036854775808", "Illegal integer value", 6, -EINVAL, 1},
    {"b == -9223372036854775809", "Illegal integer value", 6, -EINVAL, 1},
    {"b == 0xffffffffffffffff", "Illegal integer value", 6, -EINVAL, 1},
    {"a == 18446744073709551616", "Illegal integer value", 6, -EINVAL, 1},
    {"a == 0x1ffffffffffffffff", "Illegal integer value", 6, -EINVAL, 1},
    {"a == 123456789012345678901234", "Operand too long", 30, -EINVAL, 1},
    {"s == \"" LONG256 LONG256 LONG256 LONG256 "\"", "Operand too long", 263, -EINVAL, 1},
    {"a == CPUS{}", "Invalid cpulist", 11, -EINVAL, 1},
    {"a == CPUS{1-0}", "Invalid cpulist", 14, -EINVAL, 1},
    {"a & CPUS{0,100000}", "Invalid cpulist", 18, -EINVAL, 1},
    {"a & CPUS{0;1}", "Invalid cpulist", 13, -EINVAL, 1},
    {"a == CPUS{0-N:0/0}", "Invalid cpulist", 18, -EINVAL, 1},
    {"a == CPUS{0", "Missing '}'", 12, -EINVAL, 1},
    {"CPU == CPUS{", "Missing '}'", 13, -EINVAL, 1},
    {"a == CPUS0}", "Missing '{'", 11, -EINVAL, 1},
    {"a == CPUSx", "Missing '{'", 11, -EINVAL, 1},
};

#define NECASES ((int)(sizeof(ecases) / sizeof(ecases[0])))

/* ---- unit tests ---- */

static int run_matches(const struct sd_event *ev)
{
	unsigned char e[FIXED_SIZE + 64];
	int bad = 0;

	setup_env();
	for (int i = 0; i < NMCASES; i++) {
		struct sd_parse_error err = {0};
		struct sd_filter *f = NULL;
		int r = sd_filter_compile(mcases[i].filter, ev, &f, &err);

		if (r || !f) {
			fprintf(stderr, "compile [%s]: %d %s at %d\n", mcases[i].filter, r,
				err.msg ? err.msg : "-", err.pos);
			bad++;
			continue;
		}
		for (int j = 0; j < NRECS; j++) {
			uint32_t len = build(e, &recs[j], 0x401000);
			bool got = sd_filter_match(f, e, len, recs[j].cpu);

			if (got != expect(i, &recs[j])) {
				fprintf(stderr, "[%s] record %d: got %d\n", mcases[i].filter, j,
					got);
				bad++;
			}
		}
		sd_filter_free(f);
	}
	return bad;
}

TEST(filter_matches)
{
	CHECK_EQ(run_matches(&test_ev), 0);
}

TEST(filter_errors)
{
	int bad = 0;

	for (int i = 0; i < NECASES; i++) {
		const struct ecase *c = &ecases[i];
		struct sd_parse_error err = {0};
		struct sd_filter *f = NULL;
		int r = sd_filter_compile(c->filter, &test_ev, &f, &err);

		if (r != c->err || f || !err.msg || strcmp(err.msg, c->msg) || err.pos != c->pos ||
		    strcmp(err.subsystem, "event filter parse error") || err.err != r) {
			fprintf(stderr, "[%s]: %d \"%s\" at %d, want %d \"%s\" at %d\n", c->filter,
				r, err.msg ? err.msg : "-", err.pos, c->err, c->msg, c->pos);
			bad++;
		}
		sd_filter_free(f);
	}
	CHECK(NECASES >= 40);
	CHECK_EQ(bad, 0);
}

static const char *readback(char *buf, size_t cap, const char *text,
			    const struct sd_parse_error *err)
{
	struct sd_seq s;

	sd_seq_init(&s, buf, cap);
	sd_filter_print_error(&s, text, err);
	return buf;
}

TEST(filter_readback)
{
	struct sd_parse_error err = {0};
	struct sd_filter *f = NULL;
	char buf[1024];

	CHECK_EQ(sd_filter_compile("a >", &test_ev, &f, &err), -EINVAL);
	CHECK_STREQ(readback(buf, sizeof(buf), "a >", &err),
		    "a >\n   ^\nparse_error: Invalid value (did you forget quotes)?\n\n");
	CHECK_EQ(sd_filter_compile("zz == 1\n", &test_ev, &f, &err), -EINVAL);
	CHECK_STREQ(readback(buf, sizeof(buf), "zz == 1\n", &err),
		    "zz == 1\n   ^\nparse_error: Field not found\n\n");
	CHECK_EQ(sd_filter_compile("(a == 1", &test_ev, &f, &err), -ENOENT);
	CHECK_STREQ(readback(buf, sizeof(buf), "(a == 1", &err),
		    "(a == 1\n^\nparse_error: Too many '('\n\n");
	CHECK_EQ(sd_filter_compile("== 1", &test_ev, &f, &err), -EPERM);
	CHECK_STREQ(readback(buf, sizeof(buf), "== 1", &err), "== 1\nError: (0)\n\n");
	CHECK_EQ(sd_filter_compile("!", &test_ev, &f, &err), -EINVAL);
	CHECK_STREQ(readback(buf, sizeof(buf), "!", &err),
		    "!\n ^\nparse_error: No filter found\n\n");
	/* past the end: the caret stops under the last byte + 1 */
	CHECK_EQ(sd_filter_compile("a == 1234567890123456789012345", &test_ev, &f, &err), -EINVAL);
	CHECK_EQ(err.pos, 31);
	CHECK_STREQ(readback(buf, sizeof(buf), "a == 1234567890123456789012345", &err),
		    "a == 1234567890123456789012345\n                              ^\n"
		    "parse_error: Operand too long\n\n");
	CHECK_STREQ(readback(buf, sizeof(buf), NULL, NULL), "none\n");
	CHECK_STREQ(readback(buf, sizeof(buf), "a == 1   ", NULL), "a == 1\n");
	CHECK_STREQ(readback(buf, sizeof(buf), " a == 1", NULL), " a == 1\n");
}

TEST(filter_clear_and_none)
{
	struct sd_parse_error err = {0};
	struct sd_filter *f = (struct sd_filter *)1;
	unsigned char e[FIXED_SIZE + 64];
	uint32_t len = build(e, &recs[1], 0);

	CHECK_EQ(sd_filter_compile("0", &test_ev, &f, &err), 0);
	CHECK(f == NULL);
	CHECK_EQ(sd_filter_compile(" 0 \n", &test_ev, &f, &err), 0);
	CHECK(f == NULL);
	CHECK_EQ(sd_filter_compile("", &test_ev, &f, &err), 0);
	CHECK(f == NULL);
	CHECK_EQ(sd_filter_compile(NULL, &test_ev, &f, &err), 0);
	CHECK(f == NULL);
	CHECK(sd_filter_match(NULL, e, len, 0));
	sd_filter_free(NULL);
	/* "00" is a filter, not a clear: and a malformed one */
	CHECK_EQ(sd_filter_compile("00", &test_ev, &f, &err), -EINVAL);
	CHECK_STREQ(err.msg, "Field not found");
}

/* a record cut short, or a string pointing outside it, never reads past it */
TEST(filter_bounds)
{
	struct sd_parse_error err = {0};
	struct sd_filter *f = NULL;
	unsigned char e[FIXED_SIZE + 64];
	uint32_t len = build(e, &recs[1], 0), loc;

	CHECK_EQ(sd_filter_compile("s == \"hello\"", &test_ev, &f, &err), 0);
	CHECK(sd_filter_match(f, e, len, 0));
	loc = (uint32_t)200 << 16 | FIXED_SIZE; /* longer than the record */
	memcpy(e + 24, &loc, 4);
	CHECK(!sd_filter_match(f, e, len, 0));
	sd_filter_free(f);
	CHECK_EQ(sd_filter_compile("s == \"\"", &test_ev, &f, &err), 0);
	CHECK(sd_filter_match(f, e, len, 0)); /* an out-of-record string reads as "" */
	sd_filter_free(f);
	CHECK_EQ(sd_filter_compile("id == 1 || b == -1", &test_ev, &f, &err), 0);
	CHECK(sd_filter_match(f, e, len, 0));
	CHECK(!sd_filter_match(f, e, 30, 0)); /* neither field is in 30 bytes */
	sd_filter_free(f);
}

/* many terms and deep parentheses: the program stays flat */
TEST(filter_big)
{
	struct sd_parse_error err = {0};
	struct sd_filter *f = NULL;
	unsigned char e[FIXED_SIZE + 64];
	char *text = malloc(1 << 16), *p = text;
	uint32_t len;

	for (int i = 0; i < 500; i++)
		p += sprintf(p, "%s(a == %d", i ? " || " : "", i + 1000);
	for (int i = 0; i < 500; i++)
		*p++ = ')';
	p += sprintf(p, " || a == 255");
	*p = 0;
	CHECK_EQ(sd_filter_compile(text, &test_ev, &f, &err), 0);
	len = build(e, &recs[3], 0);
	CHECK(sd_filter_match(f, e, len, 0));
	len = build(e, &recs[2], 0);
	CHECK(!sd_filter_match(f, e, len, 0));
	sd_filter_free(f);
	free(text);
}

/* ---- the kernel as oracle ---- */

#define TRACEFS "/sys/kernel/tracing"

void sd_filter_oracle_probe(uint64_t a, const char *s, int64_t b, uint32_t x, uint64_t id);
__attribute__((noinline, used)) void sd_filter_oracle_probe(uint64_t a, const char *s, int64_t b,
							    uint32_t x, uint64_t id)
{
	__asm__ volatile("" ::"r"(a), "r"(s), "r"(b), "r"(x), "r"(id) : "memory");
}

static int write_file(const char *path, const char *text, int flags)
{
	int fd = open(path, O_WRONLY | flags), e = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, text, strlen(text)) < 0)
		e = -errno;
	close(fd);
	return e;
}

static char *read_file(const char *path)
{
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap);
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0) {
		free(buf);
		return NULL;
	}
	while ((n = read(fd, buf + len, cap - 1 - len)) > 0) {
		len += n;
		if (len + 1 == cap)
			buf = realloc(buf, cap *= 2);
	}
	close(fd);
	buf[len] = 0;
	/* a char field of value 0 prints a NUL: keep the text one string */
	for (size_t i = 0; i < len; i++)
		if (!buf[i])
			buf[i] = '?';
	return buf;
}

/* this program's file and the file offset of @fn in it */
static bool text_offset(void *fn, char *path, size_t cap, unsigned long *off)
{
	unsigned long lo, hi, pgoff, addr = (unsigned long)fn;
	char line[1024], perm[8], file[512];
	FILE *m = fopen("/proc/self/maps", "r");
	bool ok = false;

	if (!m)
		return false;
	while (fgets(line, sizeof(line), m)) {
		file[0] = 0;
		if (sscanf(line, "%lx-%lx %7s %lx %*s %*s %511s", &lo, &hi, perm, &pgoff, file) < 4)
			continue;
		if (addr >= lo && addr < hi && file[0] == '/') {
			snprintf(path, cap, "%s", file);
			*off = addr - lo + pgoff;
			ok = true;
			break;
		}
	}
	fclose(m);
	return ok;
}

/* fields of the kernel's event from its format file */
static int parse_format(const char *fmt, struct sd_field *out, int max, unsigned int *id)
{
	const char *p = fmt, *q;
	int n = 0, seen = 0;

	q = strstr(fmt, "ID: ");
	if (q)
		*id = (unsigned int)strtoul(q + 4, NULL, 10);
	while ((p = strstr(p, "field:")) && n < max) {
		char decl[256], *name;
		unsigned int off, size, sg;
		const char *semi = strchr(p, ';');

		if (!semi || semi - p - 6 >= (long)sizeof(decl))
			break;
		memcpy(decl, p + 6, semi - p - 6);
		decl[semi - p - 6] = 0;
		if (sscanf(semi, ";\toffset:%u;\tsize:%u;\tsigned:%u;", &off, &size, &sg) != 3)
			break;
		p = semi;
		if (seen++ < 4)
			continue; /* the common fields */
		name = strrchr(decl, ' ');
		*name++ = 0;
		memset(&out[n], 0, sizeof(out[n]));
		out[n].name = strdup(name);
		out[n].c_type = strdup(decl);
		out[n].offset = (uint16_t)off;
		out[n].size = (uint16_t)size;
		out[n].elem_size = (uint8_t)size;
		out[n].is_signed = (uint8_t)sg;
		if (!strncmp(decl, "__data_loc", 10)) {
			out[n].dynamic = 1;
			out[n].ftype = SD_FT_STRING;
		} else {
			out[n].ftype = sg ? SD_FT_SIGNED : SD_FT_UNSIGNED;
		}
		n++;
	}
	return n;
}

struct oracle {
	char inst[256];	 /* the instance directory */
	char evdir[512]; /* its events/GRP/ev */
	char group[64];
	struct sd_event ev; /* from the kernel's format */
	struct sd_field fields[32];
	unsigned int cpu; /* where this process is pinned */
	int tid;
	uint64_t ip;
};

static int oracle_filter_write(struct oracle *o, const char *text)
{
	char path[600];

	snprintf(path, sizeof(path), "%s/filter", o->evdir);
	return write_file(path, text, O_TRUNC);
}

static char *oracle_filter_read(struct oracle *o)
{
	char path[600];

	snprintf(path, sizeof(path), "%s/filter", o->evdir);
	return read_file(path);
}

/* the ids of the calls the kernel let through @text */
static int kernel_pass(struct oracle *o, const char *text, bool *pass)
{
	char path[600];
	char *trace, *line;
	int r;

	snprintf(path, sizeof(path), "%s/trace", o->inst);
	write_file(path, "", O_TRUNC);
	r = oracle_filter_write(o, text);
	if (r)
		return r;
	snprintf(path, sizeof(path), "%s/enable", o->evdir);
	write_file(path, "1", O_TRUNC);
	for (int j = 0; j < NRECS; j++)
		sd_filter_oracle_probe(recs[j].a, recs[j].s, recs[j].b, recs[j].x, (uint64_t)j);
	write_file(path, "0", O_TRUNC);
	oracle_filter_write(o, "0");
	snprintf(path, sizeof(path), "%s/trace", o->inst);
	trace = read_file(path);
	for (int j = 0; j < NRECS; j++)
		pass[j] = false;
	for (line = trace; line && *line;) {
		char *nl = strchr(line, '\n'), *id;

		if (nl)
			*nl = 0;
		if (line[0] != '#' && (id = strstr(line, " id=")) != NULL) {
			unsigned long k = strtoul(id + 4, NULL, 10);

			if (k < (unsigned long)NRECS)
				pass[k] = true;
		}
		line = nl ? nl + 1 : line + strlen(line);
	}
	free(trace);
	return 0;
}

/* the caret of the newest error_log entry, as an offset into the command */
static int errlog_caret(struct oracle *o, const char *msg)
{
	char path[600], want[256];
	char *log, *p, *cmd, *caret;
	int pos = -1;

	snprintf(path, sizeof(path), "%s/error_log", o->inst);
	log = read_file(path);
	snprintf(want, sizeof(want), "event filter parse error: error: %s\n", msg);
	p = log ? strstr(log, want) : NULL;
	if (p) {
		cmd = strstr(p, "\n  Command: ");
		caret = cmd ? strchr(cmd + 1, '\n') : NULL;
		if (caret) {
			char *hat = strchr(caret + 1, '^');

			if (hat)
				pos = (int)(hat - (caret + 1)) - (int)strlen("  Command: ");
		}
	}
	free(log);
	return pos;
}

static int oracle_setup(struct oracle *o, char *why, size_t cap)
{
	char path[600], def[1024], exe[512];
	unsigned long off;
	char *fmt;
	cpu_set_t set;
	int r;

	if (geteuid() != 0) {
		snprintf(why, cap, "not root: no tracefs");
		return -1;
	}
	if (access(TRACEFS "/uprobe_events", W_OK) && mount("nodev", TRACEFS, "tracefs", 0, NULL) &&
	    access(TRACEFS "/uprobe_events", W_OK)) {
		snprintf(why, cap, "no tracefs with uprobe_events at " TRACEFS);
		return -1;
	}
	if (!text_offset((void *)sd_filter_oracle_probe, exe, sizeof(exe), &off)) {
		snprintf(why, cap, "cannot find this program's text in /proc/self/maps");
		return -1;
	}
	/* stay on one CPU, so that common_cpu is known for every call */
	CPU_ZERO(&set);
	sched_getaffinity(0, sizeof(set), &set);
	for (o->cpu = 0; o->cpu < CPU_SETSIZE && !CPU_ISSET(o->cpu, &set); o->cpu++)
		;
	CPU_ZERO(&set);
	CPU_SET(o->cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set)) {
		snprintf(why, cap, "sched_setaffinity: %s", strerror(errno));
		return -1;
	}
	o->tid = (int)syscall(SYS_gettid);
	o->ip = (uint64_t)(uintptr_t)sd_filter_oracle_probe;
	snprintf(o->group, sizeof(o->group), "sdft%d", getpid());
	snprintf(o->inst, sizeof(o->inst), TRACEFS "/instances/%s", o->group);
	if (mkdir(o->inst, 0755)) {
		snprintf(why, cap, "mkdir %s: %s", o->inst, strerror(errno));
		return -1;
	}
	snprintf(def, sizeof(def),
		 "p:%s/ev %s:0x%lx a=%%di:u64 s=+0(%%si):string b=%%dx:s64 x=%%cx:x32 a8=%%di:u8 "
		 "a16=%%di:u16 a32=%%di:u32 b8=%%dx:s8 b16=%%dx:s16 b32=%%dx:s32 c=%%di:char "
		 "id=%%r8:u64",
		 o->group, exe, off);
	r = write_file(TRACEFS "/uprobe_events", def, O_APPEND);
	if (r) {
		snprintf(why, cap, "uprobe_events: %s", strerror(-r));
		rmdir(o->inst);
		return -1;
	}
	snprintf(o->evdir, sizeof(o->evdir), "%s/events/%s/ev", o->inst, o->group);
	snprintf(path, sizeof(path), "%s/format", o->evdir);
	fmt = read_file(path);
	memset(&o->ev, 0, sizeof(o->ev));
	o->ev.fields = o->fields;
	o->ev.nfields = fmt ? (unsigned int)parse_format(fmt, o->fields, 32, &o->ev.id) : 0;
	free(fmt);
	return 0;
}

static void oracle_teardown(struct oracle *o)
{
	char path[600], def[128];

	snprintf(path, sizeof(path), "%s/enable", o->evdir);
	write_file(path, "0", O_TRUNC);
	oracle_filter_write(o, "0");
	snprintf(def, sizeof(def), "-:%s/ev", o->group);
	write_file(TRACEFS "/uprobe_events", def, O_APPEND);
	rmdir(o->inst);
}

/* our record for call @j, as the kernel's event lays it out */
static uint32_t oracle_record(struct oracle *o, unsigned char *e, int j)
{
	const struct rv *r = &recs[j];
	uint16_t type = (uint16_t)o->ev.id, slen = (uint16_t)(strlen(r->s) + 1);
	uint32_t fixed = 0, loc;
	uint64_t id = (uint64_t)j;

	memset(e, 0, 256);
	memcpy(e, &type, 2);
	memcpy(e + 4, &o->tid, 4);
	for (unsigned int i = 0; i < o->ev.nfields; i++) {
		const struct sd_field *f = &o->fields[i];
		const char *n = f->name;
		uint64_t v = 0;

		if (f->offset + f->size > fixed)
			fixed = f->offset + f->size;
		if (!strcmp(n, "__probe_ip"))
			v = o->ip;
		else if (!strcmp(n, "a") || !strcmp(n, "a8") || !strcmp(n, "a16") ||
			 !strcmp(n, "a32") || !strcmp(n, "c"))
			v = r->a;
		else if (!strcmp(n, "b") || !strcmp(n, "b8") || !strcmp(n, "b16") ||
			 !strcmp(n, "b32"))
			v = (uint64_t)r->b;
		else if (!strcmp(n, "x"))
			v = r->x;
		else if (!strcmp(n, "id"))
			v = id;
		if (!f->dynamic)
			memcpy(e + f->offset, &v, f->size); /* little-endian: the low bytes */
	}
	for (unsigned int i = 0; i < o->ev.nfields; i++) {
		if (o->fields[i].dynamic) {
			loc = (uint32_t)slen << 16 | fixed;
			memcpy(e + o->fields[i].offset, &loc, 4);
			memcpy(e + fixed, r->s, slen);
		}
	}
	return fixed + slen;
}

static int oracle_compare_errors(struct oracle *o)
{
	char mine[2048];
	int bad = 0, checked = 0;

	for (int i = 0; i < NECASES; i++) {
		const struct ecase *c = &ecases[i];
		struct sd_parse_error err = {0};
		struct sd_filter *f = NULL;
		char path[600], *theirs;
		int r, kr, caret;

		if (!c->kernel)
			continue;
		snprintf(path, sizeof(path), "%s/error_log", o->inst);
		write_file(path, "", O_TRUNC);
		kr = oracle_filter_write(o, c->filter);
		theirs = oracle_filter_read(o);
		oracle_filter_write(o, "0");
		r = sd_filter_compile(c->filter, &o->ev, &f, &err);
		sd_filter_free(f);
		readback(mine, sizeof(mine), c->filter, r ? &err : NULL);
		checked++;
		if (kr != r || !theirs || strcmp(theirs, mine)) {
			fprintf(stderr, "oracle [%s]: kernel %d:\n%s--- sonde %d:\n%s---\n",
				c->filter, kr, theirs ? theirs : "(null)", r, mine);
			bad++;
		} else if (r && err.pos < 256) {
			caret = errlog_caret(o, err.msg);
			if (caret != err.pos) {
				fprintf(stderr, "oracle [%s]: error_log caret %d, sonde pos %d\n",
					c->filter, caret, err.pos);
				bad++;
			}
		}
		free(theirs);
	}
	fprintf(stderr, "oracle: %d malformed filters compared\n", checked);
	return bad;
}

static int oracle_compare_matches(struct oracle *o)
{
	unsigned char e[256];
	int bad = 0, checked = 0;

	setup_env();
	for (int i = 0; i < NMCASES; i++) {
		struct sd_parse_error err = {0};
		struct sd_filter *f = NULL;
		bool pass[NRECS];
		int r, kr;

		if (!mcases[i].kernel)
			continue;
		kr = kernel_pass(o, mcases[i].filter, pass);
		r = sd_filter_compile(mcases[i].filter, &o->ev, &f, &err);
		checked++;
		if (kr || r) {
			fprintf(stderr, "oracle [%s]: kernel %d, sonde %d (%s at %d)\n",
				mcases[i].filter, kr, r, err.msg ? err.msg : "-", err.pos);
			bad++;
			sd_filter_free(f);
			continue;
		}
		for (int j = 0; j < NRECS; j++) {
			uint32_t len = oracle_record(o, e, j);
			bool got = sd_filter_match(f, e, len, o->cpu);

			if (got != pass[j]) {
				fprintf(stderr, "oracle [%s] call %d: kernel %d, sonde %d\n",
					mcases[i].filter, j, pass[j], got);
				bad++;
			}
		}
		sd_filter_free(f);
	}
	fprintf(stderr, "oracle: %d filters x %d calls compared\n", checked, NRECS);
	return bad;
}

TEST(filter_kernel_oracle)
{
	struct oracle o;
	char why[600];
	int bad = 0;

	memset(&o, 0, sizeof(o));
	if (oracle_setup(&o, why, sizeof(why)))
		SKIP(why);
	if (o.ev.nfields < 13) {
		oracle_teardown(&o);
		SKIP("the kernel's uprobe event has unexpected fields");
	}
	bad += oracle_compare_errors(&o);
	bad += oracle_compare_matches(&o);
	oracle_teardown(&o);
	CHECK_EQ(bad, 0);
}
