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
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define SD_LOG_PREFIX "agent"
#include "common/log.h"
#include "control/protocol.h"
#include "control/tracefs.h"
#include "probe/thread.h"
#include "trace/probe_def.h"
#include "trace/trace.h"
#include "trace/trace_probe.h"

#define MAX_CLIENTS 16

static struct {
	bool running;
	int listen_fd;
	int owner_fd; /* the launching command */
	int clients[MAX_CLIENTS];
	char sock_path[256];
	pthread_t thread;
	pid_t pid;
} agent = {.listen_fd = -1, .owner_fd = -1};

/* ---- requests ---------------------------------------------------------------------------- */

static int describe_event(struct sd_event *ev, void *arg)
{
	FILE *out = arg;
	const struct sd_probe_def *def = sd_probe_event_def(ev);

	fprintf(out, "E %u %s %s %s\n", ev->id, ev->system, ev->name,
		!def ? "other" : def->kind == SD_PROBE_KPROBE ? "kprobe" : "uprobe");
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
			sd_trace_unlock();
		}
		break;
	case SD_CTL_GO:
		ret = 1;
		break;
	case SD_CTL_DETACH:
		sd_tracefs_reset_all();
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
	if (strlen(agent.sock_path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, agent.sock_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	unlink(agent.sock_path); /* a stale one from a dead process of the same pid */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 8)) {
		err = -errno;
		close(fd);
		return err;
	}
	agent.listen_fd = fd;
	return 0;
}

static void drop_client(int i)
{
	close(agent.clients[i]);
	agent.clients[i] = -1;
}

static void owner_gone(void)
{
	/* the command that launched us is gone: leave no probe behind */
	close(agent.owner_fd);
	agent.owner_fd = -1;
	sd_tracefs_reset_all();
}

static void *agent_main(void *arg)
{
	/* nothing this thread does may fire a probe or count in one */
	sd_enter_sonde();
	for (;;) {
		struct pollfd pfd[MAX_CLIENTS + 2];
		int n = 0, owner_at = -1;

		pfd[n++] = (struct pollfd){.fd = agent.listen_fd, .events = POLLIN};
		if (agent.owner_fd >= 0) {
			owner_at = n;
			pfd[n++] = (struct pollfd){.fd = agent.owner_fd, .events = POLLIN};
		}
		for (int i = 0; i < MAX_CLIENTS; i++)
			pfd[n++] = (struct pollfd){.fd = agent.clients[i], .events = POLLIN};
		if (poll(pfd, n, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
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
		for (int i = 0, k = n - MAX_CLIENTS; i < MAX_CLIENTS; i++, k++) {
			struct sd_ctl_msg m;

			if (agent.clients[i] < 0 || !pfd[k].revents)
				continue;
			if (sd_ctl_recv(agent.clients[i], &m) || serve(agent.clients[i], &m) < 0)
				drop_client(i);
			sd_ctl_msg_free(&m);
		}
	}
	return NULL;
}

static int start_thread(void)
{
	sigset_t all, old;
	int err;

	/* the thread inherits this mask: no program signal is ever delivered to it */
	/*
	 * Asynchronous signals never reach sonde's threads; synchronous ones
	 * stay open: they step on probes (malloc…) like any thread, and a
	 * blocked SIGTRAP at a breakpoint would kill the process.
	 */
	sigfillset(&all);
	sigdelset(&all, SIGTRAP);
	sigdelset(&all, SIGSEGV);
	sigdelset(&all, SIGBUS);
	sigdelset(&all, SIGILL);
	sigdelset(&all, SIGFPE);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	err = pthread_create(&agent.thread, NULL, agent_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err)
		return -err;
	pthread_setname_np(agent.thread, "sonde-agent");
	return 0;
}

/* ---- launch mode ---------------------------------------------------------------------------- */

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

/* serve the launching command until it says GO */
static void serve_until_go(int fd)
{
	for (;;) {
		struct sd_ctl_msg m;
		int r;

		if (sd_ctl_recv(fd, &m)) {
			owner_gone();
			return;
		}
		r = serve(fd, &m);
		sd_ctl_msg_free(&m);
		if (r < 0) {
			owner_gone();
			return;
		}
		if (r == 1)
			return;
	}
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

static void agent_atexit(void)
{
	if (agent.running && agent.pid == getpid())
		unlink(agent.sock_path);
}

static void agent_fork_child(void)
{
	/* the child has no agent thread; its sockets belong to the parent */
	if (!agent.running)
		return;
	agent.running = false;
	if (agent.listen_fd >= 0)
		close(agent.listen_fd);
	if (agent.owner_fd >= 0)
		close(agent.owner_fd);
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (agent.clients[i] >= 0)
			close(agent.clients[i]);
	agent.listen_fd = agent.owner_fd = -1;
}

int sd_agent_start(const char *ctl_path);
int sd_agent_start(const char *ctl_path)
{
	char hello[64];
	int err;

	if (agent.running)
		return 0;
	agent.pid = getpid();
	for (int i = 0; i < MAX_CLIENTS; i++)
		agent.clients[i] = -1;
	if (!sd_trace_get())
		return -ENOMEM;
	err = listen_socket();
	if (err)
		sd_warn("no control socket (%s): 'sonde ctl %d' will not reach this process",
			strerror(-err), agent.pid);
	agent.running = true;
	atexit(agent_atexit);
	pthread_atfork(NULL, NULL, agent_fork_child);
	if (ctl_path) {
		int fd = connect_to(ctl_path);

		if (fd < 0) {
			sd_warn("cannot reach the sonde command at %s: %s", ctl_path,
				strerror(-fd));
		} else {
			agent.owner_fd = fd;
			snprintf(hello, sizeof(hello), "pid=%d version=%s", agent.pid,
				 sonde_version_string());
			if (sd_ctl_send(fd, SD_CTL_HELLO, 0, 0, NULL, hello, strlen(hello), -1))
				owner_gone();
			else
				serve_until_go(fd);
		}
	}
	if (agent.listen_fd < 0 && agent.owner_fd < 0)
		return 0;
	return start_thread();
}

__attribute__((constructor)) static void agent_ctor(void)
{
	const char *ctl = getenv("SONDE_CTL");
	char *copy;

	if (!ctl && !getenv("SONDE_AGENT"))
		return; /* linked as a library: no agent unless asked */
	copy = ctl ? strdup(ctl) : NULL;
	sd_enter_sonde();
	scrub_environment();
	unsetenv("SONDE_AGENT");
	sd_agent_start(copy);
	sd_leave_sonde();
	free(copy);
}
