// SPDX-License-Identifier: MIT
/*
 * agent.c - what runs inside a traced process: the server of its virtual
 * tracefs.
 *
 * Launch mode: `sonde trace -- CMD` runs CMD with libsonde.so in
 * LD_PRELOAD and SONDE_CTL naming the command's socket. This constructor
 * connects there, says HELLO, and serves the command's requests (define
 * events, enable them, hand over the ring buffer) until GO: only then does
 * the program's main() run, with its probes in place.
 *
 * Always: a socket <ctl dir>/<pid>.sock, private to the user, on which
 * `sonde ctl PID …` reaches the same tree, served by one agent thread with
 * every signal blocked and marked as sonde's own code, so that nothing it
 * does fires a probe or takes a program's signal.
 *
 * When the launching command goes away (its socket closes) while the
 * program lives on, the agent removes every probe: the program continues
 * exactly as it would have without sonde.
 *
 * Attach mode: `sonde trace -p PID` has the running process dlopen() this
 * library and call sonde_agent_attach(ctl_path, flags) through ptrace
 * (tools/sonde/inject.c). That call only starts the agent thread and
 * returns; the thread connects to the command and serves it. An attached
 * agent leaves no trace: when its command goes (or `sonde detach PID`),
 * it removes every probe, stops the optimizer, closes and unlinks its
 * sockets and ends its thread (agent_leave). The library stays loaded
 * but idle — a thread may still return through a kretprobe trampoline,
 * and the SIGTRAP handler and a thread-exit key point into it — and the
 * next attach finds it there and starts a fresh agent.
 *
 * Children (SD_AGENT_FOLLOW, or SONDE_FOLLOW=1 in launch mode): a forked
 * child starts its own agent thread, which connects to the same command
 * and says HELLO with its pid; programs executed keep LD_PRELOAD and
 * SONDE_CTL, so their agent connects the way a launched one does. Without
 * it, a forked child has no agent (the parent's sockets are not its own):
 * it records nothing, and a thread of its own removes the probes it
 * inherited.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define SD_LOG_PREFIX "agent"
#include "common/log.h"
#include "control/protocol.h"
#include "control/tracefs.h"
#include "probe/probe.h"
#include "probe/thread.h"
#include "trace/probe_def.h"
#include "trace/trace.h"
#include "trace/trace_probe.h"
#include "tracepoint/tracepoint.h"

#define MAX_CLIENTS   16
#define LEAVE_WAIT_MS 5000

/* the next event id when the consumer last asked for the events' descriptions */
static unsigned int described_id;

static struct {
	bool running;	    /* an agent thread serves (or is starting) */
	bool attached;	    /* entered by sonde_agent_attach: leaves no trace */
	bool stay;	    /* attached for `sonde ctl`: outlives its command */
	bool follow;	    /* children get agents too */
	bool leaving;	    /* the thread tears down and ends */
	bool leave_req;	    /* sonde_agent_detach() from another thread */
	bool connect_owner; /* the thread connects to ctl_path first */
	bool env_set;	    /* follow after attach: LD_PRELOAD/SONDE_CTL were set */
	bool forked;	    /* this agent is a followed child's */
	int listen_fd;
	int owner_fd; /* the launching (or attaching) command */
	int wake[2];  /* wakes the thread's poll */
	int clients[MAX_CLIENTS];
	char sock_path[256];
	char *ctl_path; /* the command's socket */
	char *old_preload, *old_ctl;
	pid_t pid;
	pthread_t thread;
} agent = {.listen_fd = -1, .owner_fd = -1, .wake = {-1, -1}};

static pthread_mutex_t agent_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t agent_cond = PTHREAD_COND_INITIALIZER;

static void quiesce(void);

/* ---- requests ---------------------------------------------------------------------------- */

static int describe_event(struct sd_event *ev, void *arg)
{
	FILE *out = arg;
	const struct sd_probe_def *def = sd_probe_event_def(ev);

	const char *kind = def ? (def->kind == SD_PROBE_KPROBE ? "kprobe" : "uprobe")
			   : sd_tracepoint_event(ev)	   ? "tracepoint"
			   : !strcmp(ev->system, "ftrace") ? "ftrace"
							   : "other";

	fprintf(out, "E %u %s %s %s\n", ev->id, ev->system, ev->name, kind);
	/* "F <line>" of its format file: how the command prints what is not a probe's */
	if (!def)
		sd_tracepoint_describe(out, ev);
	if (def) {
		char buf[8192];
		struct sd_seq s;

		sd_seq_init(&s, buf, sizeof(buf));
		sd_probe_def_print(&s, def);
		fprintf(out, "D %s\n", buf);
	}
	return 0;
}

/* answer one request on @fd; returns 1 after GO, -1 when the peer must go */
static int serve(int fd, struct sd_ctl_msg *m)
{
	char *body = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&body, &len);
	int status = 0, send_fd = -1, ret = 0;
	struct sd_trace *t;

	if (!out)
		return -1;
	/*
	 * objects loaded or unloaded since the last request (the first: all):
	 * what follows them, then the tracepoints started on the first request
	 */
	sd_dlhook_objects_changed();
	sd_tracepoint_update();
	switch (m->hdr.op) {
	case SD_CTL_READ:
		status = sd_tracefs_read(m->path, out);
		break;
	case SD_CTL_WRITE:
		status = sd_tracefs_write(m->path, m->data, m->data_len,
					  m->hdr.flags & SD_CTL_TRUNC, out);
		if (status && !ftell(out))
			fprintf(out, "%s\n", strerror(-status));
		break;
	case SD_CTL_LIST:
		status = sd_tracefs_list(m->path, out);
		break;
	case SD_CTL_PIPE: {
		long n = sd_tracefs_pipe(out, 256 * 1024);

		status = n < 0 ? (int)n : 0;
		break;
	}
	case SD_CTL_RING:
		t = sd_trace_get();
		if (!t) {
			status = -ENOMEM;
			break;
		}
		sd_trace_lock();
		send_fd = sd_rb_region_fd(t->rb);
		fprintf(out, "clock=%d tsc_hz=%lu mult=%lu shift=%u tsc0=%lu ns0=%lu gen=%u\n",
			t->clock, (unsigned long)t->clock_params.tsc_hz,
			(unsigned long)t->clock_params.mult, t->clock_params.shift,
			(unsigned long)t->clock_params.tsc0, (unsigned long)t->clock_params.ns0,
			t->gen);
		sd_trace_unlock();
		break;
	case SD_CTL_EVENTS:
		if (sd_trace_get()) {
			sd_trace_lock();
			sd_trace_for_each_event(describe_event, out);
			/* events gone with their object whose records may still be read */
			sd_tracepoint_describe_retired(out);
			__atomic_store_n(&described_id, sd_trace_get()->next_id, __ATOMIC_RELEASE);
			sd_trace_unlock();
		}
		break;
	case SD_CTL_GO:
		ret = 1;
		break;
	case SD_CTL_DETACH:
		sd_tracefs_reset_all();
		if (m->hdr.flags & SD_CTL_DETACH_LEAVE) {
			/* every byte is back and nothing runs: answer, then end */
			quiesce();
			agent.leaving = true;
		}
		break;
	default:
		status = -EOPNOTSUPP;
		fprintf(out, "unknown request %u\n", m->hdr.op);
		break;
	}
	fclose(out);
	if (sd_ctl_send(fd, m->hdr.op, 0, status, NULL, body, len, send_fd))
		ret = -1;
	free(body);
	return ret;
}

/* ---- the socket and the thread ---------------------------------------------------------- */

static int listen_socket(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd, err;

	err = sd_ctl_agent_path(agent.pid, agent.sock_path, sizeof(agent.sock_path));
	if (err)
		return err;
	/*
	 * Bound and listening under a name of its own first, then renamed into
	 * place: whoever finds the socket can connect to it. A name bound but
	 * not yet listening refuses, and a refusing socket is what a dead
	 * agent leaves: `sonde ctl` would take this live one for stale and
	 * attach over the command that is attaching now. The rename also
	 * replaces a stale socket of a dead process of the same pid.
	 */
	if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s.new", agent.sock_path) >=
	    sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	unlink(sa.sun_path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 8) ||
	    rename(sa.sun_path, agent.sock_path)) {
		err = -errno;
		unlink(sa.sun_path);
		close(fd);
		return err;
	}
	agent.listen_fd = fd;
	return 0;
}

static int connect_to(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

/* HELLO to the command at ctl_path; the connection becomes the owner's */
static int say_hello(const char *ctl_path, pid_t ppid, const char *kind)
{
	char hello[96];
	int fd = connect_to(ctl_path);

	if (fd < 0) {
		sd_warn("cannot reach the sonde command at %s: %s", ctl_path, strerror(-fd));
		return fd;
	}
	snprintf(hello, sizeof(hello), "pid=%d version=%s ppid=%d kind=%s", agent.pid,
		 sonde_version_string(), (int)ppid, kind);
	if (sd_ctl_send(fd, SD_CTL_HELLO, 0, 0, NULL, hello, strlen(hello), -1)) {
		close(fd);
		return -EPIPE;
	}
	agent.owner_fd = fd;
	return 0;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void drop_client(int i)
{
	close_fd(&agent.clients[i]);
}

/* follow after attach: programs the target executes load the agent too */
static void follow_env_set(void)
{
	const char *pre = getenv("LD_PRELOAD"), *ctl = getenv("SONDE_CTL");
	char *val;
	Dl_info info;

	if (!dladdr((void *)serve, &info) || !info.dli_fname || info.dli_fname[0] != '/')
		return;
	agent.old_preload = pre ? strdup(pre) : NULL;
	agent.old_ctl = ctl ? strdup(ctl) : NULL;
	if (asprintf(&val, "%s%s%s", info.dli_fname, pre ? ":" : "", pre ? pre : "") < 0)
		return;
	setenv("LD_PRELOAD", val, 1);
	free(val);
	setenv("SONDE_CTL", agent.ctl_path, 1);
	setenv("SONDE_FOLLOW", "2", 1); /* 2: their agents leave no trace either */
	agent.env_set = true;
}

static void follow_env_restore(void)
{
	if (!agent.env_set)
		return;
	if (agent.old_preload)
		setenv("LD_PRELOAD", agent.old_preload, 1);
	else
		unsetenv("LD_PRELOAD");
	if (agent.old_ctl)
		setenv("SONDE_CTL", agent.old_ctl, 1);
	else
		unsetenv("SONDE_CTL");
	unsetenv("SONDE_FOLLOW");
	free(agent.old_preload);
	free(agent.old_ctl);
	agent.old_preload = agent.old_ctl = NULL;
	agent.env_set = false;
}

/*
 * What leaving needs before the agent answers `sonde detach`: the probes
 * are gone (sd_tracefs_reset_all), the optimizer has freed what it could
 * and ended, nobody can reach this agent any more.
 */
static void quiesce(void)
{
	struct sd_trace *t = sd_trace_get();

	sd_optimizer_stop();
	if (t)
		__atomic_store_n(&t->tracing_on, true, __ATOMIC_RELEASE); /* as a fresh instance */
	if (agent.sock_path[0] && agent.pid == getpid())
		unlink(agent.sock_path);
	agent.sock_path[0] = '\0';
	follow_env_restore();
}

static void owner_gone(void)
{
	close_fd(&agent.owner_fd);
	if (agent.attached && agent.stay)
		return; /* `sonde ctl` attached it: it serves until `sonde detach` */
	sd_tracefs_reset_all();
	if (agent.attached) {
		/* attached by a command that is gone: leave no trace */
		quiesce();
		agent.leaving = true;
	}
	/* launched: no probe is left, the tracefs stays for `sonde ctl` */
}

/* the thread's last act: nothing of the agent remains but idle code */
static void agent_finish(void)
{
	quiesce();
	close_fd(&agent.listen_fd);
	close_fd(&agent.owner_fd);
	for (int i = 0; i < MAX_CLIENTS; i++)
		close_fd(&agent.clients[i]);
	close_fd(&agent.wake[0]);
	close_fd(&agent.wake[1]);
	pthread_mutex_lock(&agent_lock);
	agent.running = false;
	agent.leaving = false;
	agent.leave_req = false;
	pthread_cond_broadcast(&agent_cond);
	pthread_mutex_unlock(&agent_lock);
}

static void *agent_main(void *arg)
{
	(void)arg;
	/* nothing this thread does may fire a probe or count in one */
	sd_enter_sonde();
	if (agent.connect_owner) {
		pid_t ppid = getppid();
		struct sd_trace *t;

		agent.connect_owner = false;
		t = sd_trace_get();
		if (!t) {
			sd_warn("no trace instance: events cannot be recorded");
		} else if (agent.attached && !agent.forked) {
			/* a new attach starts empty: nothing of an earlier session shows */
			sd_trace_lock();
			sd_rb_reset(t->rb);
			sd_trace_unlock();
		}
		if (listen_socket())
			sd_warn("no control socket: 'sonde ctl %d' will not reach this process",
				agent.pid);
		if (agent.follow && agent.attached)
			follow_env_set();
		if (say_hello(agent.ctl_path, ppid, agent.forked ? "fork" : "attach") &&
		    agent.attached && !agent.stay)
			agent.leaving = true;
	}
	while (!agent.leaving) {
		struct pollfd pfd[MAX_CLIENTS + 3];
		int n = 0, owner_at = -1, first_client;

		pfd[n++] = (struct pollfd){.fd = agent.listen_fd, .events = POLLIN};
		pfd[n++] = (struct pollfd){.fd = agent.wake[0], .events = POLLIN};
		if (agent.owner_fd >= 0) {
			owner_at = n;
			pfd[n++] = (struct pollfd){.fd = agent.owner_fd, .events = POLLIN};
		}
		first_client = n;
		for (int i = 0; i < MAX_CLIENTS; i++)
			pfd[n++] = (struct pollfd){.fd = agent.clients[i], .events = POLLIN};
		if (poll(pfd, n, -1) < 0) {
			if (errno == EINTR)
				continue;
			sd_tracefs_reset_all();
			break;
		}
		if (pfd[1].revents) {
			char b[64];

			if (read(agent.wake[0], b, sizeof(b)) < 0 && errno != EAGAIN)
				break;
			if (__atomic_load_n(&agent.leave_req, __ATOMIC_ACQUIRE)) {
				sd_tracefs_reset_all();
				break;
			}
		}
		if (pfd[0].revents & POLLIN) {
			int c = accept4(agent.listen_fd, NULL, NULL, SOCK_CLOEXEC);

			if (c >= 0) {
				int slot = -1;

				for (int i = 0; i < MAX_CLIENTS && slot < 0; i++)
					if (agent.clients[i] < 0)
						slot = i;
				if (slot < 0 || sd_ctl_peer_uid(c) != (int)getuid())
					close(c);
				else
					agent.clients[slot] = c;
			}
		}
		if (owner_at >= 0 && pfd[owner_at].revents) {
			struct sd_ctl_msg m;

			if (sd_ctl_recv(agent.owner_fd, &m) || serve(agent.owner_fd, &m) < 0)
				owner_gone();
			sd_ctl_msg_free(&m);
		}
		for (int i = 0, k = first_client; i < MAX_CLIENTS && !agent.leaving; i++, k++) {
			struct sd_ctl_msg m;

			if (agent.clients[i] < 0 || !pfd[k].revents)
				continue;
			if (sd_ctl_recv(agent.clients[i], &m) || serve(agent.clients[i], &m) < 0)
				drop_client(i);
			sd_ctl_msg_free(&m);
		}
	}
	agent_finish();
	return NULL;
}

/* called with agent_lock held; nobody joins the thread: it ends when the agent leaves */
static int start_thread(void)
{
	int err;

	if (pipe2(agent.wake, O_CLOEXEC | O_NONBLOCK))
		return -errno;
	agent.running = true;
	err = sd_spawn_thread(&agent.thread, agent_main, NULL, "sonde-agent");
	if (err) {
		agent.running = false;
		close_fd(&agent.wake[0]);
		close_fd(&agent.wake[1]);
		return -err;
	}
	return 0;
}

/* ---- fork --------------------------------------------------------------------------------- */

static void *cleanup_main(void *arg)
{
	(void)arg;
	sd_enter_sonde();
	sd_tracefs_reset_all();
	sd_optimizer_stop();
	return NULL;
}

/* a child that is not followed: a thread of its own removes the inherited probes */
static void start_cleanup(void)
{
	sd_spawn_thread(NULL, cleanup_main, NULL, "sonde-cleanup");
}

/*
 * The agent's locks are taken around fork() so that the child never
 * inherits one held by a thread it does not have.
 */
static void agent_fork_prepare(void)
{
	pthread_mutex_lock(&agent_lock);
}

static void agent_fork_parent(void)
{
	pthread_mutex_unlock(&agent_lock);
}

static void agent_fork_child(void)
{
	pid_t parent = agent.pid;

	pthread_mutex_unlock(&agent_lock);
	if (!agent.running)
		return;
	/* the child has no agent thread; the parent's sockets are not its own */
	agent.running = false;
	agent.leaving = agent.leave_req = false;
	agent.sock_path[0] = '\0';
	agent.env_set = false; /* the environment is the child's own copy: keep it as it is */
	close_fd(&agent.listen_fd);
	close_fd(&agent.owner_fd);
	close_fd(&agent.wake[0]);
	close_fd(&agent.wake[1]);
	for (int i = 0; i < MAX_CLIENTS; i++)
		close_fd(&agent.clients[i]);
	agent.pid = getpid();
	if (agent.follow && agent.ctl_path) {
		/* its own agent, connected to the same command */
		agent.connect_owner = true;
		agent.forked = true;
		if (start_thread())
			sd_warn("pid %d (child of %d) is not followed: no agent thread", agent.pid,
				parent);
	} else {
		/* not followed: it records nothing, and its probes go */
		struct sd_trace *t = sd_trace_get();

		if (t)
			__atomic_store_n(&t->tracing_on, false, __ATOMIC_RELEASE);
		start_cleanup();
	}
}

/* ---- entry points -------------------------------------------------------------------------- */

static int enabled_since(struct sd_event *ev, void *arg)
{
	return ev->enabled && ev->id >= *(const unsigned int *)arg;
}

/*
 * Events defined since the consumer last asked for their descriptions (a
 * library with tracepoints dlopen()ed a moment ago) are described only by
 * the agent: before the process goes, give a connected consumer that meets
 * their records the time to ask (it does so at once; at most half a second).
 */
static void wait_described(void)
{
	struct sd_trace *t = sd_trace_get();
	bool consumer = READ_ONCE(agent.owner_fd) >= 0;

	for (int i = 0; i < MAX_CLIENTS; i++)
		consumer |= READ_ONCE(agent.clients[i]) >= 0;
	if (!t || !consumer)
		return;
	for (int i = 0; i < 500; i++) {
		struct timespec ts = {0, 1000 * 1000};
		unsigned int d = __atomic_load_n(&described_id, __ATOMIC_ACQUIRE);
		int pending;

		if (d >= READ_ONCE(t->next_id))
			return;
		/* only an enabled event can have records to describe */
		sd_trace_lock();
		pending = sd_trace_for_each_event(enabled_since, &d);
		sd_trace_unlock();
		if (!pending)
			return;
		nanosleep(&ts, NULL);
	}
}

/* on the program's thread, inside its exit(): sonde's calls, never traced */
static void agent_atexit(void)
{
	sd_enter_sonde();
	if (agent.running && agent.pid == getpid()) {
		wait_described();
		if (agent.sock_path[0])
			unlink(agent.sock_path);
	}
	sd_leave_sonde();
}

/* once per process image: exit and fork hooks; called with agent_lock held */
static void agent_init_once(void)
{
	static bool done;

	agent.pid = getpid();
	for (int i = 0; i < MAX_CLIENTS; i++)
		agent.clients[i] = -1;
	if (done)
		return;
	done = true;
	atexit(agent_atexit);
	pthread_atfork(agent_fork_prepare, agent_fork_parent, agent_fork_child);
}

int sd_agent_start(const char *ctl_path);
int sd_agent_start(const char *ctl_path)
{
	int err;

	pthread_mutex_lock(&agent_lock);
	if (agent.running) {
		pthread_mutex_unlock(&agent_lock);
		return 0;
	}
	agent_init_once();
	if (!sd_trace_get()) {
		pthread_mutex_unlock(&agent_lock);
		return -ENOMEM;
	}
	err = listen_socket();
	if (err)
		sd_warn("no control socket (%s): 'sonde ctl %d' will not reach this process",
			strerror(-err), agent.pid);
	if (ctl_path && !say_hello(ctl_path, getppid(), "launch")) {
		/* launch: the program waits here, before main(), until GO */
		for (;;) {
			struct sd_ctl_msg m;
			int r;

			if (sd_ctl_recv(agent.owner_fd, &m)) {
				owner_gone();
				break;
			}
			r = serve(agent.owner_fd, &m);
			sd_ctl_msg_free(&m);
			if (r < 0) {
				owner_gone();
				break;
			}
			if (r == 1)
				break;
		}
	}
	err = 0;
	if (agent.listen_fd >= 0 || agent.owner_fd >= 0)
		err = start_thread();
	pthread_mutex_unlock(&agent_lock);
	return err;
}

/*
 * sonde_agent_attach - the entry the sonde command calls, through ptrace,
 * in a running process it has made load this library. It only starts the
 * agent thread (which connects to @ctl_path, says HELLO and serves) and
 * returns at once: the thread it runs on belongs to the program. @flags:
 * SD_AGENT_*. 0, -EALREADY when an agent serves already, or -errno.
 */
SONDE_API int sonde_agent_attach(const char *ctl_path, unsigned int flags);
SONDE_API int sonde_agent_attach(const char *ctl_path, unsigned int flags)
{
	struct timespec until;
	int err = 0;

	sd_enter_sonde();
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += LEAVE_WAIT_MS / 1000;
	pthread_mutex_lock(&agent_lock);
	/* an agent that is leaving finishes first (a detach just before) */
	while (agent.running && (agent.leaving || agent.leave_req))
		if (pthread_cond_timedwait(&agent_cond, &agent_lock, &until) == ETIMEDOUT)
			break;
	if (agent.running) {
		err = -EALREADY;
	} else {
		agent_init_once();
		agent.attached = true;
		agent.forked = false;
		agent.stay = flags & SD_AGENT_STAY;
		agent.follow = flags & SD_AGENT_FOLLOW;
		free(agent.ctl_path);
		agent.ctl_path = ctl_path ? strdup(ctl_path) : NULL;
		if (ctl_path && !agent.ctl_path)
			err = -ENOMEM;
		agent.connect_owner = agent.ctl_path != NULL;
		if (!err)
			err = start_thread();
	}
	pthread_mutex_unlock(&agent_lock);
	sd_leave_sonde();
	return err;
}

/*
 * sonde_agent_detach - the agent leaves: every probe removed, the
 * optimizer stopped, sockets closed and unlinked, its thread ended. Waits
 * for it (at most a few seconds). The library stays loaded, idle.
 */
SONDE_API int sonde_agent_detach(void);
SONDE_API int sonde_agent_detach(void)
{
	struct timespec until;
	int err = 0;

	sd_enter_sonde();
	pthread_mutex_lock(&agent_lock);
	if (!agent.running) {
		pthread_mutex_unlock(&agent_lock);
		sd_tracefs_reset_all();
		sd_optimizer_stop();
		sd_leave_sonde();
		return 0;
	}
	if (pthread_equal(pthread_self(), agent.thread)) {
		pthread_mutex_unlock(&agent_lock);
		sd_tracefs_reset_all();
		quiesce();
		agent.leaving = true;
		sd_leave_sonde();
		return 0;
	}
	__atomic_store_n(&agent.leave_req, true, __ATOMIC_RELEASE);
	if (agent.wake[1] >= 0 && write(agent.wake[1], "x", 1) < 0)
		err = -errno;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += LEAVE_WAIT_MS / 1000;
	while (!err && agent.running)
		if (pthread_cond_timedwait(&agent_cond, &agent_lock, &until) == ETIMEDOUT)
			err = -ETIMEDOUT;
	pthread_mutex_unlock(&agent_lock);
	sd_leave_sonde();
	return err;
}

/* keep sonde out of the environment of programs this one starts */
static void scrub_environment(void)
{
	const char *pre = getenv("LD_PRELOAD");

	unsetenv("SONDE_CTL");
	if (pre) {
		char *copy = strdup(pre), *out = calloc(1, strlen(pre) + 1), *tok, *save = NULL;

		if (!copy || !out) {
			free(copy);
			free(out);
			return;
		}
		for (tok = strtok_r(copy, ": ", &save); tok; tok = strtok_r(NULL, ": ", &save)) {
			const char *base = strrchr(tok, '/') ? strrchr(tok, '/') + 1 : tok;

			if (!strncmp(base, "libsonde", 8))
				continue;
			if (*out)
				strcat(out, ":");
			strcat(out, tok);
		}
		if (*out)
			setenv("LD_PRELOAD", out, 1);
		else
			unsetenv("LD_PRELOAD");
		free(copy);
		free(out);
	}
}

__attribute__((constructor)) static void agent_ctor(void)
{
	const char *ctl = getenv("SONDE_CTL"), *follow = getenv("SONDE_FOLLOW");
	char *copy;

	if (!ctl && !getenv("SONDE_AGENT"))
		return; /* linked as a library (or loaded by `sonde -p`): no agent unless asked */
	copy = ctl ? strdup(ctl) : NULL;
	sd_enter_sonde();
	if (follow && *follow && strcmp(follow, "0") && copy) {
		/* programs this one executes are traced too: keep the environment */
		agent.follow = true;
		agent.attached = !strcmp(follow, "2");
		agent.ctl_path = strdup(copy);
	} else {
		scrub_environment();
	}
	unsetenv("SONDE_AGENT");
	sd_agent_start(copy);
	free(copy);
	sd_leave_sonde();
}
