// SPDX-License-Identifier: MIT
/*
 * probe_count_preload.c - count calls of libc functions in a real program,
 * with sonde and with an independent counter, over the same window.
 *
 * An LD_PRELOAD library for t6001. SONDE_COUNT_FUNCS names the functions
 * ("malloc,free,libc.so.6:strlen"); SONDE_COUNT_MODE says what to do (a
 * name may be padded with '_': the test gives every mode's environment one
 * size, since the environment is part of a program's input):
 *
 *   none     nothing (a reference run with the same environment)
 *   resolve  print "name path file_offset" for each function, the place
 *            sonde probes: dlsym(RTLD_DEFAULT) (an IFUNC gives the
 *            implementation the dynamic linker chose), turned into an
 *            offset of its file with the object's program headers; exit.
 *   sonde    a sonde kprobe on each function from the constructor; the
 *            destructor reads every hit count before anything else, then
 *            writes "name hits missed path:offset" (or "name ERROR text")
 *            lines to SONDE_COUNT_OUT.
 *   kernel   the kernel counts: the constructor registers the same sonde
 *            kprobes disarmed (for the same process state), then enables
 *            the uprobe events the test script made (writes "1" to the file
 *            SONDE_COUNT_ENABLE names); the destructor disables them first
 *            thing. Raw system calls only, so that no probed function is
 *            called to do it.
 *   shim     (built with -DSONDE_COUNT_SHIM) interposes the functions and
 *            counts the calls that reach them through the PLT, forwarding
 *            to libc's definitions (dlsym(RTLD_NEXT)); writes "name calls"
 *            lines to SONDE_COUNT_OUT.
 *
 * The counting window is the same in every mode: from the end of this
 * library's constructor to the start of its destructor. A preloaded
 * library is initialised after the libraries it needs (libc, libsonde) and
 * before the program, and finalised after the program's destructors and
 * atexit handlers, before stdio's final flush. Inside the window this
 * library calls nothing.
 */
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SONDE_COUNT_SHIM
#include <sonde/kprobes.h>
#endif

#define MAX_FUNCS 64
#define SPEC_MAX  128
#define ERR_MAX	  256

/* Never let the compiler turn a loop here into a call to a probed function. */
#define NO_LIBC __attribute__((noinline, optimize("no-tree-loop-distribute-patterns")))

enum mode { MODE_NONE, MODE_RESOLVE, MODE_SONDE, MODE_KERNEL, MODE_SHIM };

struct func {
	char spec[SPEC_MAX]; /* as given: "malloc" or "libc.so.6:malloc" */
	const char *name;    /* the symbol, after any OBJ: prefix */
#ifndef SONDE_COUNT_SHIM
	struct sonde_kprobe kp;
	int err;
	char errmsg[ERR_MAX];
#endif
	unsigned long hits;
	bool optimized;
	unsigned long missed;
};

static struct func funcs[MAX_FUNCS];
static int nfuncs;
static enum mode mode;
static const char *out_path;

/* ---- helpers that call no libc function ------------------------------------ */

static NO_LIBC size_t raw_strlen(const char *s)
{
	size_t n = 0;

	while (s[n])
		n++;
	return n;
}

static NO_LIBC __attribute__((unused)) void raw_strlcpy(char *d, const char *s, size_t size)
{
	size_t i;

	for (i = 0; i + 1 < size && s[i]; i++)
		d[i] = s[i];
	d[i] = '\0';
}

/* write @s to stderr with system calls only */
static NO_LIBC void raw_err(const char *s)
{
	syscall(SYS_write, 2, s, raw_strlen(s));
}

/* ---- the function list ---------------------------------------------------------- */

static void die(const char *what)
{
	fprintf(stderr, "probe_count_preload: %s\n", what);
	_exit(127);
}

static void parse_funcs(void)
{
	const char *list = getenv("SONDE_COUNT_FUNCS");
	const char *p, *end;

	if (!list || !*list)
		die("SONDE_COUNT_FUNCS is not set");
	for (p = list; *p; p = *end ? end + 1 : end) {
		struct func *f;
		const char *colon;
		size_t n;

		end = strchr(p, ',');
		if (!end)
			end = p + strlen(p);
		n = (size_t)(end - p);
		if (!n)
			continue;
		if (nfuncs == MAX_FUNCS)
			die("too many functions in SONDE_COUNT_FUNCS");
		if (n >= SPEC_MAX)
			die("a name in SONDE_COUNT_FUNCS is too long");
		f = &funcs[nfuncs++];
		memcpy(f->spec, p, n);
		f->spec[n] = '\0';
		colon = strchr(f->spec, ':');
		f->name = colon ? colon + 1 : f->spec;
	}
	if (!nfuncs)
		die("SONDE_COUNT_FUNCS names no function");
}

/* @m is @word, maybe padded with '_' (the test gives every mode one length) */
static int mode_is(const char *m, const char *word)
{
	size_t n = strlen(word);

	if (strncmp(m, word, n))
		return 0;
	for (m += n; *m == '_'; m++)
		;
	return !*m;
}

static enum mode parse_mode(void)
{
	const char *m = getenv("SONDE_COUNT_MODE");

	if (!m || !*m || mode_is(m, "none"))
		return MODE_NONE;
#ifdef SONDE_COUNT_SHIM
	if (mode_is(m, "shim"))
		return MODE_SHIM;
	die("this is the shim build: SONDE_COUNT_MODE must be shim");
#else
	if (mode_is(m, "resolve"))
		return MODE_RESOLVE;
	if (mode_is(m, "sonde"))
		return MODE_SONDE;
	if (mode_is(m, "kernel"))
		return MODE_KERNEL;
	die("SONDE_COUNT_MODE must be resolve, sonde or kernel (shim is another build)");
#endif
	return MODE_NONE;
}

#ifndef SONDE_COUNT_SHIM
/* ---- address to file offset ---------------------------------------------------------- */

struct where {
	uintptr_t addr;
	char path[PATH_MAX];
	unsigned long offset;
	int found;
	int is_main; /* in the executable */
};

static int find_segment(struct dl_phdr_info *info, size_t size, void *data)
{
	struct where *w = data;

	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t start = info->dlpi_addr + ph->p_vaddr;

		if (ph->p_type != PT_LOAD || w->addr < start || w->addr >= start + ph->p_memsz)
			continue;
		w->offset = w->addr - start + ph->p_offset;
		if (info->dlpi_name && info->dlpi_name[0]) {
			if (!realpath(info->dlpi_name, w->path))
				raw_strlcpy(w->path, info->dlpi_name, sizeof(w->path));
		} else {
			/* the executable has no name in the list */
			ssize_t n = readlink("/proc/self/exe", w->path, sizeof(w->path) - 1);

			w->path[n > 0 ? n : 0] = '\0';
			w->is_main = 1;
		}
		w->found = 1;
		return 1;
	}
	return 0;
}

/* "path offset" of @addr; 0, or -1 if no loaded object maps it */
static int locate(const void *addr, struct where *w)
{
	memset(w, 0, sizeof(*w));
	w->addr = (uintptr_t)addr;
	dl_iterate_phdr(find_segment, w);
	return w->found ? 0 : -1;
}

/*
 * The function @name as the dynamic linker binds it: dlsym(RTLD_DEFAULT),
 * which calls an IFUNC's resolver. One exception: a non-PIE executable
 * that takes a function's address has a canonical PLT entry for it, an
 * undefined symbol with a value, and dlsym finds that stub first. The
 * function is then the next definition, after the executable and this
 * library.
 */
static void *definition(const char *name)
{
	void *addr = dlsym(RTLD_DEFAULT, name);
	const ElfW(Sym) *sym = NULL;
	struct where w;
	Dl_info info;

	if (addr && !locate(addr, &w) && w.is_main &&
	    dladdr1(addr, &info, (void **)&sym, RTLD_DL_SYMENT) && sym &&
	    sym->st_shndx == SHN_UNDEF)
		addr = dlsym(RTLD_NEXT, name);
	return addr;
}

static void do_resolve(void)
{
	for (int i = 0; i < nfuncs; i++) {
		struct func *f = &funcs[i];
		void *addr = definition(f->name);
		struct where w;

		if (f->name != f->spec) {
			/* OBJ:name - the definition in that object */
			char obj[SPEC_MAX];
			void *h;

			raw_strlcpy(obj, f->spec, (size_t)(f->name - f->spec));
			h = dlopen(obj, RTLD_LAZY | RTLD_NOLOAD);
			addr = h ? dlsym(h, f->name) : NULL;
			if (h)
				dlclose(h);
		}
		if (!addr || locate(addr, &w))
			printf("%s ? ?\n", f->spec);
		else
			printf("%s %s 0x%lx\n", f->spec, w.path, w.offset);
	}
	fflush(stdout);
	_exit(0);
}

/* ---- sonde mode ------------------------------------------------------------------------ */

static int count_hit(struct sonde_kprobe *p, struct sonde_regs *regs)
{
	return 0;
}

/*
 * Register a sonde kprobe on every function; @armed false leaves them
 * disarmed (no breakpoint written). The kernel's run registers them
 * disarmed too, so that both runs enter the window with the same heap:
 * registration allocates (sites, tables, symbol tables), and the program's
 * own allocations, reallocs in place or not, callocs from fresh memory or
 * not, and so the memcpy and memset calls inside malloc, depend on it.
 */
static void sonde_start(int armed)
{
	/*
	 * Nothing but sonde_register_kprobe() once the first probe is armed:
	 * libsonde's own calls pass through its probes, ours would count.
	 */
	for (int i = 0; i < nfuncs; i++) {
		struct func *f = &funcs[i];

		f->kp.symbol_name = f->spec;
		f->kp.pre_handler = count_hit;
		f->kp.flags = armed ? 0 : SONDE_KPROBE_FLAG_DISABLED;
		f->err = sonde_register_kprobe(&f->kp);
		if (f->err) {
			raw_strlcpy(f->errmsg, sonde_last_error(), sizeof(f->errmsg));
			raw_err("probe_count_preload: cannot probe ");
			raw_err(f->spec);
			raw_err(": ");
			raw_err(f->errmsg);
			raw_err("\n");
		}
	}
	/* the window starts with the probes in their final form: jumps where they can be */
	if (armed)
		sonde_wait_kprobe_optimizer();
}

static void sonde_stop(void)
{
	FILE *out;

	/* the window closes here: read every count before calling anything */
	for (int i = 0; i < nfuncs; i++) {
		if (!funcs[i].err) {
			funcs[i].hits = sonde_kprobe_hits(&funcs[i].kp);
			funcs[i].missed = sonde_kprobe_missed(&funcs[i].kp);
			funcs[i].optimized = funcs[i].kp.flags & SONDE_KPROBE_FLAG_OPTIMIZED;
		}
	}
	out = fopen(out_path, "we");
	if (!out) {
		perror(out_path);
		return;
	}
	for (int i = 0; i < nfuncs; i++) {
		struct func *f = &funcs[i];
		struct where w;

		if (f->err) {
			fprintf(out, "%s ERROR %s\n", f->spec, f->errmsg);
			continue;
		}
		if (locate(f->kp.addr, &w))
			fprintf(out, "%s %lu %lu ?\n", f->spec, f->hits, f->missed);
		else
			fprintf(out, "%s %lu %lu %s:0x%lx %s\n", f->spec, f->hits, f->missed,
				w.path, w.offset, f->optimized ? "jump" : "int3");
	}
	fclose(out);
	for (int i = 0; i < nfuncs; i++)
		if (!funcs[i].err)
			sonde_unregister_kprobe(&funcs[i].kp);
}

/* ---- kernel mode ------------------------------------------------------------------------ */

static char enable_path[PATH_MAX];

/* write "1" or "0" to the events' enable file; system calls only */
static NO_LIBC int kernel_enable(int on)
{
	long fd = syscall(SYS_openat, AT_FDCWD, enable_path, O_WRONLY | O_CLOEXEC);
	long n;

	if (fd < 0)
		return -1;
	n = syscall(SYS_write, fd, on ? "1" : "0", 1);
	syscall(SYS_close, fd);
	return n == 1 ? 0 : -1;
}

static void kernel_start(void)
{
	const char *p = getenv("SONDE_COUNT_ENABLE");

	if (!p || !*p)
		die("kernel mode needs SONDE_COUNT_ENABLE (the events' enable file)");
	if (raw_strlen(p) >= sizeof(enable_path))
		die("SONDE_COUNT_ENABLE is too long");
	raw_strlcpy(enable_path, p, sizeof(enable_path));
	sonde_start(0);
	if (kernel_enable(1)) {
		/* ENOTSUPP (524): the kernel cannot probe one of the instructions */
		fprintf(stderr, "probe_count_preload: cannot enable %s: %s\n", enable_path,
			errno == 524 ? "ENOTSUPP (an instruction uprobes cannot probe)"
				     : strerror(errno));
		_exit(127);
	}
}

static void kernel_stop(void)
{
	if (kernel_enable(0))
		raw_err("probe_count_preload: cannot disable the uprobe events\n");
}

#else /* SONDE_COUNT_SHIM */

/* ---- shim mode: the functions themselves ------------------------------------------------- */

/*
 * One counter per interposed function. Counting is on inside the window
 * only; calls from before (other libraries' constructors) and after (our
 * destructor) are forwarded without counting.
 */
/* clang-format off */
#define SHIM_FUNCS(X)								\
	X(malloc) X(free) X(calloc) X(realloc) X(memcpy) X(memmove)		\
	X(memset) X(memcmp) X(strlen) X(strcmp) X(strncmp) X(strchr)		\
	X(strrchr) X(strcpy) X(strdup) X(snprintf) X(printf) X(puts)		\
	X(fwrite) X(qsort) X(getpid) X(open) X(read) X(close)
/* clang-format on */

#define SHIM_ENUM(f) SHIM_##f,
enum { SHIM_FUNCS(SHIM_ENUM) SHIM_N };
#define SHIM_NAME(f) #f,
static const char *const shim_names[SHIM_N] = {SHIM_FUNCS(SHIM_NAME)};

static unsigned long shim_calls[SHIM_N];
static volatile int counting;

static inline void shim_count(int i)
{
	if (counting)
		__atomic_add_fetch(&shim_calls[i], 1, __ATOMIC_RELAXED);
}

/* the next definition of @name, looked up once */
static void *shim_next(void **slot, const char *name)
{
	void *p = __atomic_load_n(slot, __ATOMIC_ACQUIRE);

	if (!p) {
		p = dlsym(RTLD_NEXT, name);
		if (!p) {
			raw_err("probe_count_preload: no next definition of ");
			raw_err(name);
			raw_err("\n");
			_exit(127);
		}
		__atomic_store_n(slot, p, __ATOMIC_RELEASE);
	}
	return p;
}

#define NEXT(name) ((__typeof__(&name))shim_next(&next_##name, #name))

/*
 * The malloc family forwards to libc's __libc_* entry points: dlsym itself
 * may allocate, and ld.so calls malloc before any constructor has run.
 */
extern void *__libc_malloc(size_t size);
extern void __libc_free(void *p);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);

void *malloc(size_t size)
{
	shim_count(SHIM_malloc);
	return __libc_malloc(size);
}

void free(void *p)
{
	shim_count(SHIM_free);
	__libc_free(p);
}

void *calloc(size_t n, size_t size)
{
	shim_count(SHIM_calloc);
	return __libc_calloc(n, size);
}

void *realloc(void *p, size_t size)
{
	shim_count(SHIM_realloc);
	return __libc_realloc(p, size);
}

static void *next_memcpy, *next_memmove, *next_memset, *next_memcmp, *next_strlen, *next_strcmp,
    *next_strncmp, *next_strchr, *next_strrchr, *next_strcpy, *next_strdup, *next_vsnprintf,
    *next_vprintf, *next_puts, *next_fwrite, *next_qsort, *next_getpid, *next_open, *next_read,
    *next_close;

void *memcpy(void *d, const void *s, size_t n)
{
	shim_count(SHIM_memcpy);
	return NEXT(memcpy)(d, s, n);
}

void *memmove(void *d, const void *s, size_t n)
{
	shim_count(SHIM_memmove);
	return NEXT(memmove)(d, s, n);
}

void *memset(void *d, int c, size_t n)
{
	shim_count(SHIM_memset);
	return NEXT(memset)(d, c, n);
}

int memcmp(const void *a, const void *b, size_t n)
{
	shim_count(SHIM_memcmp);
	return NEXT(memcmp)(a, b, n);
}

size_t strlen(const char *s)
{
	shim_count(SHIM_strlen);
	return NEXT(strlen)(s);
}

int strcmp(const char *a, const char *b)
{
	shim_count(SHIM_strcmp);
	return NEXT(strcmp)(a, b);
}

int strncmp(const char *a, const char *b, size_t n)
{
	shim_count(SHIM_strncmp);
	return NEXT(strncmp)(a, b, n);
}

char *strchr(const char *s, int c)
{
	shim_count(SHIM_strchr);
	return NEXT(strchr)(s, c);
}

char *strrchr(const char *s, int c)
{
	shim_count(SHIM_strrchr);
	return NEXT(strrchr)(s, c);
}

char *strcpy(char *d, const char *s)
{
	shim_count(SHIM_strcpy);
	return NEXT(strcpy)(d, s);
}

char *strdup(const char *s)
{
	shim_count(SHIM_strdup);
	return NEXT(strdup)(s);
}

int snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	shim_count(SHIM_snprintf);
	va_start(ap, fmt);
	n = NEXT(vsnprintf)(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

int printf(const char *fmt, ...)
{
	va_list ap;
	int n;

	shim_count(SHIM_printf);
	va_start(ap, fmt);
	n = NEXT(vprintf)(fmt, ap);
	va_end(ap);
	return n;
}

int puts(const char *s)
{
	shim_count(SHIM_puts);
	return NEXT(puts)(s);
}

size_t fwrite(const void *p, size_t size, size_t n, FILE *f)
{
	shim_count(SHIM_fwrite);
	return NEXT(fwrite)(p, size, n, f);
}

void qsort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
	shim_count(SHIM_qsort);
	NEXT(qsort)(base, n, size, cmp);
}

pid_t getpid(void)
{
	shim_count(SHIM_getpid);
	return NEXT(getpid)();
}

int open(const char *path, int flags, ...)
{
	mode_t m = 0;

	shim_count(SHIM_open);
	if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) {
		va_list ap;

		va_start(ap, flags);
		m = va_arg(ap, mode_t);
		va_end(ap);
	}
	return NEXT(open)(path, flags, m);
}

ssize_t read(int fd, void *buf, size_t n)
{
	shim_count(SHIM_read);
	return NEXT(read)(fd, buf, n);
}

int close(int fd)
{
	shim_count(SHIM_close);
	return NEXT(close)(fd);
}

/* what the shim functions forward to */
static const struct {
	void **slot;
	const char *name;
} forwards[] = {
    {&next_memcpy, "memcpy"},	{&next_memmove, "memmove"}, {&next_memset, "memset"},
    {&next_memcmp, "memcmp"},	{&next_strlen, "strlen"},   {&next_strcmp, "strcmp"},
    {&next_strncmp, "strncmp"}, {&next_strchr, "strchr"},   {&next_strrchr, "strrchr"},
    {&next_strcpy, "strcpy"},	{&next_strdup, "strdup"},   {&next_vsnprintf, "vsnprintf"},
    {&next_vprintf, "vprintf"}, {&next_puts, "puts"},	    {&next_fwrite, "fwrite"},
    {&next_qsort, "qsort"},	{&next_getpid, "getpid"},   {&next_open, "open"},
    {&next_read, "read"},	{&next_close, "close"},
};

static void shim_start(void)
{
	/* resolve every forward now, so that no lookup happens in the window */
	for (int i = 0; i < nfuncs; i++) {
		int k;

		for (k = 0; k < SHIM_N; k++)
			if (!strcmp(funcs[i].name, shim_names[k]))
				break;
		if (k == SHIM_N) {
			fprintf(stderr, "probe_count_preload: the shim does not define %s\n",
				funcs[i].name);
			_exit(127);
		}
	}
	for (size_t i = 0; i < sizeof(forwards) / sizeof(forwards[0]); i++)
		shim_next(forwards[i].slot, forwards[i].name);
	counting = 1;
}

static void shim_stop(void)
{
	FILE *out;

	counting = 0;
	for (int i = 0; i < nfuncs; i++)
		for (int k = 0; k < SHIM_N; k++)
			if (!strcmp(funcs[i].name, shim_names[k]))
				funcs[i].hits = __atomic_load_n(&shim_calls[k], __ATOMIC_RELAXED);
	out = fopen(out_path, "we");
	if (!out) {
		perror(out_path);
		return;
	}
	for (int i = 0; i < nfuncs; i++)
		fprintf(out, "%s %lu\n", funcs[i].spec, funcs[i].hits);
	fclose(out);
}
#endif /* SONDE_COUNT_SHIM */

/* ---- the window ------------------------------------------------------------------------ */

__attribute__((constructor(101))) static void count_init(void)
{
	mode = parse_mode();
	if (mode == MODE_NONE)
		return;
	parse_funcs();
	if (mode != MODE_RESOLVE && mode != MODE_KERNEL) {
		out_path = getenv("SONDE_COUNT_OUT");
		if (!out_path || !*out_path)
			die("SONDE_COUNT_OUT is not set");
	}
	switch (mode) {
#ifndef SONDE_COUNT_SHIM
	case MODE_RESOLVE:
		do_resolve();
		break;
	case MODE_SONDE:
		sonde_start(1);
		break;
	case MODE_KERNEL:
		kernel_start();
		break;
#else
	case MODE_SHIM:
		shim_start();
		break;
#endif
	default:
		break;
	}
	/* the window opens when this returns */
}

__attribute__((destructor(101))) static void count_fini(void)
{
	switch (mode) {
#ifndef SONDE_COUNT_SHIM
	case MODE_SONDE:
		sonde_stop();
		break;
	case MODE_KERNEL:
		kernel_stop();
		break;
#else
	case MODE_SHIM:
		shim_stop();
		break;
#endif
	default:
		break;
	}
}
