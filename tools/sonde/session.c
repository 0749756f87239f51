// SPDX-License-Identifier: MIT
/*
 * session.c - a traced process, from the command's side.
 *
 * Launch: the command listens on a private socket, starts the program with
 * libsonde.so preloaded and SONDE_CTL naming that socket, and accepts the
 * agent's connection; the program waits in the agent's constructor until
 * session_go(). A program that never connects (statically linked, or that
 * clears LD_PRELOAD) is reported, not waited for forever.
 *
 * Attach: the same socket, but the agent is loaded into the running
 * process by inject_agent() and connects from its own thread; a process
 * whose agent already serves (launched under sonde, or attached by
 * `sonde ctl`) is reached on its socket instead.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sonde/sonde.h>

#include "cli.h"
#include "inject.h"
#include "control/protocol.h"
#include "session.h"
#include "trace/printfmt.h"
#include "trace/probe_def.h"
#include "trace/symbolize.h"
#include "trace/trace.h"

#define CONNECT_TIMEOUT_MS 15000

int session_lib_path(char *buf, size_t len)
{
	char exe[PATH_MAX];
	const char *env = getenv("SONDE_LIB");
	ssize_t n;
	char *slash;

	if (env && *env) {
		snprintf(buf, len, "%s", env);
		return access(buf, R_OK) ? -errno : 0;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n < 0)
		return -errno;
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (slash)
		*slash = '\0';
	snprintf(buf, len, "%s/../lib/libsonde.so", exe);
	if (access(buf, R_OK))
		return cli_fail(-ENOENT,
				"cannot find libsonde.so next to the sonde command (%s); set "
				"SONDE_LIB",
				buf);
	return 0;
}

/* the path execvp would run */
static int find_program(const char *name, char *buf, size_t len)
{
	const char *path = getenv("PATH");
	char *copy, *dir, *save = NULL;

	if (strchr(name, '/')) {
		snprintf(buf, len, "%s", name);
		return access(buf, X_OK) ? -errno : 0;
	}
	copy = strdup(path ? path : "/usr/local/bin:/usr/bin:/bin");
	if (!copy)
		return -ENOMEM;
	for (dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
		snprintf(buf, len, "%s/%s", *dir ? dir : ".", name);
		if (!access(buf, X_OK)) {
			free(copy);
			return 0;
		}
	}
	free(copy);
	return -ENOENT;
}

/* a program without PT_INTERP never loads a preloaded library */
static bool is_static(const char *path)
{
	Elf64_Ehdr eh;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	bool interp = false;

	if (fd < 0)
		return false;
	if (pread(fd, &eh, sizeof(eh), 0) != sizeof(eh) || memcmp(eh.e_ident, ELFMAG, SELFMAG) ||
	    eh.e_ident[EI_CLASS] != ELFCLASS64) {
		close(fd);
		return false; /* a script, or something else: let exec decide */
	}
	for (int i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;

		if (pread(fd, &ph, sizeof(ph), eh.e_phoff + (off_t)i * eh.e_phentsize) !=
		    sizeof(ph))
			break;
		if (ph.p_type == PT_INTERP)
			interp = true;
	}
	close(fd);
	return !interp;
}

static int listen_here(struct session *s)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char dir[200];
	int err = sd_ctl_dir(dir, sizeof(dir));

	if (err)
		return cli_fail(err, "%s", sonde_last_error());
	sd_ctl_sweep(); /* what agents killed before left behind */
	snprintf(s->listen_path, sizeof(s->listen_path), "%s/cmd-%d.sock", dir, (int)getpid());
	if (strlen(s->listen_path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, s->listen_path, strlen(s->listen_path) + 1);
	s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->listen_fd < 0)
		return -errno;
	unlink(s->listen_path);
	if (bind(s->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(s->listen_fd, 1))
		return -errno;
	return 0;
}

static void status_from_wait(struct session *s, int st)
{
	s->exited = true;
	if (WIFEXITED(st))
		s->exit_status = WEXITSTATUS(st);
	else if (WIFSIGNALED(st))
		s->exit_status = 128 + WTERMSIG(st);
}

bool session_poll_exit(struct session *s)
{
	int st;

	if (s->exited || !s->launched)
		return s->exited;
	if (waitpid(s->pid, &st, WNOHANG) == s->pid)
		status_from_wait(s, st);
	return s->exited;
}

bool session_wait_exit(struct session *s, int ms)
{
	for (int waited = 0; !session_poll_exit(s) && waited < ms; waited += 10) {
		struct timespec ts = {0, 10 * 1000 * 1000};

		nanosleep(&ts, NULL);
	}
	return s->exited;
}

static int read_hello(struct session *s)
{
	struct sd_ctl_msg m;
	int err = sd_ctl_recv(s->ctl, &m);

	if (err)
		return err;
	if (m.hdr.op != SD_CTL_HELLO) {
		err = -EPROTO;
	} else {
		const char *k = strstr(m.data, " kind="), *pp = strstr(m.data, " ppid=");

		sscanf(m.data, "pid=%d", &s->pid);
		if (k)
			sscanf(k, " kind=%15s", s->kind);
		if (pp)
			sscanf(pp, " ppid=%d", &s->ppid);
	}
	sd_ctl_msg_free(&m);
	return err;
}

/*
 * the agent's connection on listen_fd, within @ms; -ECHILD when a launched
 * program ended, -ESRCH when an attached one did, -ETIMEDOUT
 */
static int accept_agent(struct session *s, int ms)
{
	for (int waited = 0; s->ctl < 0;) {
		struct pollfd p = {.fd = s->listen_fd, .events = POLLIN};

		if (poll(&p, 1, 20) > 0) {
			s->ctl = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
			if (s->ctl >= 0 && sd_ctl_peer_uid(s->ctl) != (int)getuid()) {
				close(s->ctl);
				s->ctl = -1;
			}
			continue;
		}
		if (s->launched && session_poll_exit(s))
			return -ECHILD;
		if (!s->launched && kill(s->pid, 0) && errno == ESRCH)
			return -ESRCH;
		waited += 20;
		if (waited > ms)
			return -ETIMEDOUT;
	}
	return 0;
}

int session_launch(struct session *s, char **argv)
{
	return session_launch_opts(s, argv, 0);
}

/* libsonde-init.so, next to libsonde.so, first in LD_AUDIT */
static int audit_value(const char *lib, char *out, size_t len)
{
	const char *old = getenv("LD_AUDIT");
	const char *slash = strrchr(lib, '/');
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%.*s/libsonde-init.so", slash ? (int)(slash - lib) : 1,
		 slash ? lib : ".");
	if (access(path, R_OK))
		return cli_fail(-ENOENT, "--init: %s is not there (it is built with libsonde)",
				path);
	snprintf(out, len, "%s%s%s", path, old ? ":" : "", old ? old : "");
	return 0;
}

int session_launch_opts(struct session *s, char **argv, unsigned int flags)
{
	char lib[PATH_MAX], prog[PATH_MAX], preload[2 * PATH_MAX], audit[2 * PATH_MAX];
	const char *old_preload = getenv("LD_PRELOAD");
	bool follow = flags & SESSION_FOLLOW;
	int err;
	pid_t pid;

	memset(s, 0, sizeof(*s));
	s->ctl = s->listen_fd = -1;
	err = session_lib_path(lib, sizeof(lib));
	if (err)
		return err;
	if (find_program(argv[0], prog, sizeof(prog)))
		return cli_fail(-ENOENT, "%s: command not found", argv[0]);
	if (is_static(prog))
		return cli_fail(-ENOEXEC,
				"%s is statically linked: the agent enters a launched program "
				"through the dynamic loader (LD_PRELOAD), which it does not have",
				prog);
	err = listen_here(s);
	if (err)
		return cli_fail(err, "cannot listen for the agent: %s", strerror(-err));
	snprintf(preload, sizeof(preload), "%s%s%s", lib, old_preload ? ":" : "",
		 old_preload ? old_preload : "");
	if (flags & SESSION_INIT_TRACE) {
		err = audit_value(lib, audit, sizeof(audit));
		if (err)
			return err;
	}

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		close(s->listen_fd);
		setenv("LD_PRELOAD", preload, 1);
		if (flags & SESSION_INIT_TRACE)
			setenv("LD_AUDIT", audit, 1);
		setenv("SONDE_CTL", s->listen_path, 1);
		if (follow)
			setenv("SONDE_FOLLOW", "1", 1);
		execvp(argv[0], argv);
		fprintf(stderr, "sonde: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	s->pid = pid;
	s->launched = true;

	err = accept_agent(s, CONNECT_TIMEOUT_MS);
	if (err == -ECHILD)
		return cli_fail(-ECHILD,
				"%s ended (status %d) before the agent came up: it did not "
				"load libsonde.so (does it clear LD_PRELOAD?)",
				argv[0], s->exit_status);
	if (err == -ETIMEDOUT) {
		kill(pid, SIGKILL);
		session_wait_exit(s, 1000);
		return cli_fail(-ETIMEDOUT, "%s did not load the agent within %d s", argv[0],
				CONNECT_TIMEOUT_MS / 1000);
	}
	if (err)
		return cli_fail(err, "accepting the agent's connection: %s", strerror(-err));
	if (follow) {
		s->follow = true; /* children connect here too */
	} else {
		close(s->listen_fd);
		s->listen_fd = -1;
		unlink(s->listen_path);
	}
	err = read_hello(s);
	if (err)
		return cli_fail(err, "the agent did not say hello: %s", strerror(-err));
	return 0;
}

int session_accept_child(struct session *parent, struct session *kid)
{
	struct pollfd p = {.fd = parent->listen_fd, .events = POLLIN};
	struct pollfd h;
	int fd, err;

	if (parent->listen_fd < 0 || poll(&p, 1, 0) <= 0)
		return 0;
	fd = accept4(parent->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	if (sd_ctl_peer_uid(fd) != (int)getuid()) {
		close(fd);
		return 0;
	}
	memset(kid, 0, sizeof(*kid));
	kid->ctl = fd;
	kid->listen_fd = -1;
	kid->attached = parent->attached;
	/* its HELLO comes at once; a peer that says nothing is dropped */
	h = (struct pollfd){.fd = fd, .events = POLLIN};
	if (poll(&h, 1, 2000) <= 0) {
		close(fd);
		kid->ctl = -1;
		return 0;
	}
	err = read_hello(kid);
	if (err) {
		close(fd);
		kid->ctl = -1;
		return err;
	}
	return 1;
}

int session_connect(struct session *s, pid_t pid)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char path[256];
	int err;

	memset(s, 0, sizeof(*s));
	s->ctl = s->listen_fd = -1;
	s->pid = pid;
	err = sd_ctl_agent_path(pid, path, sizeof(path));
	if (err)
		return err;
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	s->ctl = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->ctl < 0)
		return -errno;
	if (connect(s->ctl, (struct sockaddr *)&sa, sizeof(sa))) {
		err = -errno;
		if (kill(pid, 0) && errno == ESRCH)
			unlink(path); /* the process is gone: its socket is stale */
		return err;
	}
	return 0;
}

/*
 * The agent runs as the process's user and connects to a socket private to
 * ours: attaching works within one user (root included).
 */
static int target_uid_ok(pid_t pid)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d", (int)pid);
	if (stat(path, &st))
		return cli_fail(-ESRCH, "no process with pid %d", (int)pid);
	if (st.st_uid == geteuid())
		return 0;
	if (geteuid() != 0)
		return 0; /* ptrace will refuse; inject explains it */
	return cli_fail(-EPERM,
			"pid %d runs as uid %u, sonde as root: its agent could not reach sonde's "
			"private socket; run sonde as that user (sudo -u '#%u' sonde …)",
			(int)pid, (unsigned int)st.st_uid, (unsigned int)st.st_uid);
}

/* a new agent into @pid (none serves): -EINPROGRESS while another sonde attaches */
static int attach_new(struct session *s, pid_t pid, unsigned int flags)
{
	char lib[PATH_MAX], real[PATH_MAX];
	int err = inject_check(pid);

	if (err)
		return err;
	err = target_uid_ok(pid);
	if (err)
		return err;
	err = session_lib_path(lib, sizeof(lib));
	if (err)
		return err;
	if (!realpath(lib, real))
		return cli_fail(-errno, "%s: %s", lib, strerror(errno));
	err = listen_here(s);
	if (err)
		return cli_fail(err, "cannot listen for the agent: %s", strerror(-err));
	err = inject_agent(pid, real, s->listen_path, flags, NULL);
	if (!err) {
		err = accept_agent(s, CONNECT_TIMEOUT_MS);
		if (err == -ESRCH)
			cli_error("pid %d ended before its agent connected", (int)pid);
		else if (err)
			cli_error("the agent loaded into pid %d did not connect: %s", (int)pid,
				  strerror(-err));
	}
	if (!err) {
		err = read_hello(s);
		if (err)
			cli_error("the agent did not say hello: %s", strerror(-err));
	}
	if (!err)
		s->attached = true;
	s->follow = !err && (flags & SD_AGENT_FOLLOW);
	if (err || !(flags & SD_AGENT_FOLLOW)) {
		close(s->listen_fd);
		s->listen_fd = -1;
		unlink(s->listen_path);
	}
	return err;
}

/*
 * Sonde commands reaching one process take turns (an flock on
 * <pid>.lock beside the sockets, let go when the command ends however it
 * ends): the first loads the agent, the next finds it serving. The file
 * stays: unlinked, a waiter would hold a lock on a name nobody else sees.
 * -1 when no lock could be had; the attach goes on unserialized.
 */
static int attach_lock(pid_t pid)
{
	char dir[200], path[256];
	int fd;

	if (sd_ctl_dir(dir, sizeof(dir)) ||
	    (size_t)snprintf(path, sizeof(path), "%s/%d.lock", dir, (int)pid) >= sizeof(path))
		return -1;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	while (flock(fd, LOCK_EX)) {
		if (errno != EINTR) {
			close(fd);
			return -1;
		}
	}
	return fd;
}

static int attach_locked(struct session *s, pid_t pid, unsigned int flags)
{
	/* inject's own limit on a call in the target, and a little more */
	const int busy_ms = INJECT_CALL_LIMIT_MS + 5000;

	for (int waited = 0;; waited += 20) {
		int err = session_connect(s, pid);

		if (!err)
			return 0; /* an agent serves already */
		if (s->ctl >= 0)
			close(s->ctl);
		s->ctl = -1;
		if (err != -ENOENT && err != -ECONNREFUSED)
			return cli_fail(err, "cannot reach the agent of pid %d: %s", (int)pid,
					strerror(-err));
		err = attach_new(s, pid, flags);
		if (err != -EINPROGRESS)
			return err;
		/*
		 * Another sonde command holds it without the lock (one with
		 * another XDG_RUNTIME_DIR): its agent will serve both, as one
		 * started by `sonde ctl` serves a later `sonde trace -p`.
		 */
		if (waited >= busy_ms) {
			pid_t other = inject_sonde_tracer(pid, 0);

			return cli_fail(-EBUSY,
					"pid %d: another sonde command (thread %d) has been "
					"attaching to it for %d s and has not finished",
					(int)pid, (int)other, busy_ms / 1000);
		}
		usleep(20 * 1000);
	}
}

int session_attach(struct session *s, pid_t pid, unsigned int flags)
{
	int lock = attach_lock(pid);
	int err = attach_locked(s, pid, flags);

	if (lock >= 0)
		close(lock);
	return err;
}

bool session_agent_gone(struct session *s)
{
	struct pollfd p = {.fd = s->ctl, .events = POLLIN};

	/* the agent never speaks unasked: anything readable is its end */
	return s->ctl < 0 || (poll(&p, 1, 0) > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR)));
}

void session_close(struct session *s)
{
	if (s->ctl >= 0)
		close(s->ctl);
	if (s->listen_fd >= 0) {
		close(s->listen_fd);
		unlink(s->listen_path);
	}
	s->ctl = s->listen_fd = -1;
	if (s->ring)
		sd_rb_region_detach(s->ring);
	s->ring = NULL;
	for (unsigned int i = 0; i < s->nevents; i++) {
		struct session_event *e = s->events[i];

		if (!e)
			continue;
		sd_probe_def_free(e->def);
		sd_printfmt_free(e->fmt);
		free(e->ev.print_fmt);
		for (unsigned int k = 0; k < e->ev.nfields; k++) {
			free(e->ev.fields[k].name);
			free(e->ev.fields[k].c_type);
		}
		free(e->ev.fields);
		free(e);
	}
	free(s->events);
	s->events = NULL;
	s->nevents = 0;
	sd_symbolizer_free(s->sym);
	s->sym = NULL;
}

/* ---- requests ---------------------------------------------------------------------------- */

static int request(struct session *s, uint16_t op, uint16_t flags, const char *path,
		   const char *text, struct sd_ctl_msg *reply)
{
	int err;

	if (s->ctl < 0)
		return -ENOTCONN;
	err = sd_ctl_send(s->ctl, op, flags, 0, path, text, text ? strlen(text) : 0, -1);
	if (!err)
		err = sd_ctl_recv(s->ctl, reply);
	if (!err && reply->hdr.op != op) {
		sd_ctl_msg_free(reply);
		err = -EPROTO;
	}
	return err;
}

static char *take_data(struct sd_ctl_msg *m)
{
	char *d = m->data;

	m->data = NULL;
	return d;
}

int session_write(struct session *s, const char *path, const char *text, bool truncate, char **why)
{
	struct sd_ctl_msg m;
	int err = request(s, SD_CTL_WRITE, truncate ? SD_CTL_TRUNC : 0, path, text, &m);

	if (why)
		*why = NULL;
	if (err)
		return err;
	err = m.hdr.status;
	if (err && why)
		*why = take_data(&m);
	sd_ctl_msg_free(&m);
	return err;
}

static int fetch(struct session *s, uint16_t op, const char *path, char **out)
{
	struct sd_ctl_msg m;
	int err = request(s, op, 0, path, NULL, &m);

	*out = NULL;
	if (err)
		return err;
	err = m.hdr.status;
	*out = take_data(&m);
	sd_ctl_msg_free(&m);
	return err;
}

int session_read(struct session *s, const char *path, char **out)
{
	return fetch(s, SD_CTL_READ, path, out);
}

int session_list(struct session *s, const char *path, char **out)
{
	return fetch(s, SD_CTL_LIST, path, out);
}

int session_events_text(struct session *s, char **out)
{
	return fetch(s, SD_CTL_EVENTS, "", out);
}

int session_go(struct session *s)
{
	char *out;
	int err = fetch(s, SD_CTL_GO, "", &out);

	free(out);
	return err;
}

int session_detach(struct session *s)
{
	struct sd_ctl_msg m;
	int err = request(s, SD_CTL_DETACH, s->attached ? SD_CTL_DETACH_LEAVE : 0, "", NULL, &m);

	if (err)
		return err;
	err = m.hdr.status;
	sd_ctl_msg_free(&m);
	return err;
}

/* ---- the ring and the events --------------------------------------------------------------- */

int session_open_ring(struct session *s)
{
	struct sd_ctl_msg m;
	unsigned long hz, mult, tsc0, ns0;
	int err = request(s, SD_CTL_RING, 0, "", NULL, &m);

	if (err)
		return err;
	if (m.hdr.status || m.fd < 0) {
		err = m.hdr.status ? m.hdr.status : -EPROTO;
		sd_ctl_msg_free(&m);
		return err;
	}
	if (sscanf(m.data, "clock=%d tsc_hz=%lu mult=%lu shift=%u tsc0=%lu ns0=%lu gen=%u",
		   &s->clock, &hz, &mult, &s->clock_params.shift, &tsc0, &ns0, &s->ring_gen) != 7) {
		sd_ctl_msg_free(&m);
		return -EPROTO;
	}
	s->clock_params.tsc_hz = hz;
	s->clock_params.mult = mult;
	s->clock_params.tsc0 = tsc0;
	s->clock_params.ns0 = ns0;
	if (s->ring)
		sd_rb_region_detach(s->ring);
	s->ring = NULL;
	err = sd_rb_region_attach(m.fd, &s->ring);
	sd_ctl_msg_free(&m);
	if (!err && !s->sym) {
		err = sd_symbolizer_new(s->pid, &s->sym);
		/* read the maps now: a short-lived program may be gone by the time we print */
		if (!err)
			sd_symbolizer_maps(s->sym);
	}
	return err;
}

static void probe_print(struct sd_seq *seq, const struct sd_event *ev, const void *entry,
			uint32_t len, const struct sd_print_ctx *ctx)
{
	const struct session_event *e = (const struct session_event *)ev;

	if (e->def)
		sd_probe_print(seq, e->def, entry, len, ctx);
	else if (e->fmt) /* a tracepoint: its TP_printk */
		sd_printfmt_render(seq, e->fmt, entry, len, ctx);
	else if (!strcmp(e->kind, "tracepoint"))
		sd_print_fields(seq, ev, entry, len);
}

static const struct sd_event_ops session_event_ops = {.print = probe_print};

/* a tracepoint's format file (the agent sends it): fields, and the print fmt compiled */
static void tracepoint_format(struct session_event *e, const char *text)
{
	char why[160];

	if (sd_format_parse(text, &e->ev.fields, &e->ev.nfields, &e->ev.print_fmt,
			    &e->ev.fixed_size))
		return;
	if (e->ev.print_fmt &&
	    sd_printfmt_compile(e->ev.print_fmt, &e->ev, (struct sd_printfmt **)&e->fmt, why,
				sizeof(why)))
		cli_error("note: %s:%s: print fmt not understood (%s): its records show their "
			  "fields as name=value",
			  e->ev.system, e->ev.name, why);
}

static int add_event(struct session *s, unsigned int id, const char *system, const char *name,
		     const char *kind, const char *def_line, const char *fmt_text)
{
	unsigned int slot = id - SD_EVENT_ID_FIRST;
	struct session_event *e;

	if (slot >= SD_EVENTS_MAX)
		return -EINVAL;
	if (slot >= s->nevents) {
		unsigned int n = slot + 16;
		struct session_event **bigger = realloc(s->events, n * sizeof(*bigger));

		if (!bigger)
			return -ENOMEM;
		memset(bigger + s->nevents, 0, (n - s->nevents) * sizeof(*bigger));
		s->events = bigger;
		s->nevents = n;
	}
	if (s->events[slot] && !strcmp(s->events[slot]->ev.name, name) &&
	    !strcmp(s->events[slot]->ev.system, system))
		return 0; /* known */
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->ev.id = id;
	snprintf(e->ev.system, sizeof(e->ev.system), "%s", system);
	snprintf(e->ev.name, sizeof(e->ev.name), "%s", name);
	snprintf(e->kind, sizeof(e->kind), "%s", kind);
	e->ev.ops = &session_event_ops;
	if (def_line && (!strcmp(kind, "kprobe") || !strcmp(kind, "uprobe"))) {
		struct sd_parse_error pe = {0};
		char g[SD_EVENT_NAME_MAX], n2[SD_EVENT_NAME_MAX];
		struct sd_probe_def *def = NULL;

		if (sd_probe_parse(def_line,
				   !strcmp(kind, "kprobe") ? SD_PROBE_KPROBE : SD_PROBE_UPROBE,
				   &def, g, n2, &pe) == 0) {
			e->def = def;
			sd_probe_def_fields(def, &e->ev.fields, &e->ev.nfields);
			e->ev.fixed_size = def->fixed_size;
		}
	}
	if (fmt_text) /* a tracepoint's, or another built-in event's (initcall…) */
		tracepoint_format(e, fmt_text);
	if (s->events[slot]) { /* the id was reused by a new event: keep the old around */
		e->ev.priv = s->events[slot];
	}
	s->events[slot] = e;
	return 0;
}

int session_load_events(struct session *s, const char *text)
{
	char *copy = strdup(text), *line, *save = NULL;
	unsigned int id = 0;
	char system[64] = "", name[64] = "", kind[16] = "";
	bool pending = false;
	char *fmt = NULL; /* "F <line>" lines: a tracepoint's format file */
	size_t fmt_len = 0;
	FILE *fmt_out = NULL;
	int err = 0;

	if (!copy)
		return -ENOMEM;
	for (line = strtok_r(copy, "\n", &save); line && !err; line = strtok_r(NULL, "\n", &save)) {
		if (line[0] == 'E' && line[1] == ' ') {
			if (pending) {
				if (fmt_out)
					fclose(fmt_out);
				fmt_out = NULL;
				err = add_event(s, id, system, name, kind, NULL, fmt);
				free(fmt);
				fmt = NULL;
			}
			pending = sscanf(line, "E %u %63s %63s %15s", &id, system, name, kind) == 4;
		} else if (line[0] == 'D' && line[1] == ' ' && pending) {
			err = add_event(s, id, system, name, kind, line + 2, NULL);
			pending = false;
		} else if (line[0] == 'F' && line[1] == ' ' && pending) {
			if (!fmt_out)
				fmt_out = open_memstream(&fmt, &fmt_len);
			if (fmt_out)
				fprintf(fmt_out, "%s\n", line + 2);
		}
	}
	if (fmt_out)
		fclose(fmt_out);
	if (!err && pending)
		err = add_event(s, id, system, name, kind, NULL, fmt);
	free(fmt);
	free(copy);
	return err;
}

int session_refresh_events(struct session *s)
{
	char *text;
	int err = session_events_text(s, &text);

	if (!err)
		err = session_load_events(s, text);
	free(text);
	return err;
}

struct sd_event *session_event(void *arg, unsigned int id)
{
	struct session *s = arg;
	unsigned int slot = id - SD_EVENT_ID_FIRST;

	if (slot >= s->nevents || !s->events[slot]) {
		/* an event defined since we last asked */
		if (s->ctl >= 0 && session_refresh_events(s) == 0 && slot < s->nevents)
			return s->events[slot] ? &s->events[slot]->ev : NULL;
		return NULL;
	}
	return &s->events[slot]->ev;
}
