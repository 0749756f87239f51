/* SPDX-License-Identifier: MIT */
/*
 * protocol.h - the control socket between the sonde command and the agent
 * inside a traced process.
 *
 * Every message, in either direction, is a header and a body:
 *
 *   struct sd_ctl_hdr | path (path_len bytes) | data (len - path_len bytes)
 *
 * The command sends requests (READ/WRITE/LIST a tracefs path, PIPE,
 * RING, EVENTS, GO, DETACH); the agent answers each with a message of the
 * same op whose status is 0 or a negative errno and whose data is the
 * file's content or, on failure, a human explanation. RING's answer carries
 * the ring buffer's memfd as SCM_RIGHTS. The agent speaks first, HELLO,
 * with its pid. Only a peer of the same uid is served (SO_PEERCRED).
 */
#ifndef SD_CONTROL_PROTOCOL_H
#define SD_CONTROL_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SD_CTL_MAGIC   0x53444331u /* "SDC1" */
#define SD_CTL_MAX_MSG (512u << 20)

enum sd_ctl_op {
	SD_CTL_HELLO = 1, /* agent -> command: data "pid=<pid> version=<v>" */
	SD_CTL_READ,	  /* path -> the file's content */
	SD_CTL_WRITE,	  /* path, data; flags SD_CTL_TRUNC for `>` */
	SD_CTL_LIST,	  /* path -> entries, one per line */
	SD_CTL_PIPE,	  /* trace_pipe: what is there now (maybe nothing) */
	SD_CTL_RING,	  /* -> memfd + "clock=<id> mult= shift= tsc0= ns0= gen=" */
	SD_CTL_EVENTS,	  /* -> event descriptions (see agent.c) */
	SD_CTL_GO,	  /* launch: the program may start */
	SD_CTL_DETACH,	  /* remove every probe, restore every byte */
};

#define SD_CTL_TRUNC 0x1
/* DETACH: and end the agent: thread, sockets, optimizer (`sonde detach`) */
#define SD_CTL_DETACH_LEAVE 0x2

/*
 * Flags of sonde_agent_attach(ctl_path, flags), the agent's entry when the
 * command loads it into a running process (tools/sonde/inject.c).
 */
#define SD_AGENT_STAY	0x1 /* outlive the command (sonde ctl): until `sonde detach` */
#define SD_AGENT_FOLLOW 0x2 /* children (fork, exec) get agents that connect back too */

struct sd_ctl_hdr {
	uint32_t magic;
	uint32_t len; /* bytes after the header */
	uint16_t op;
	uint16_t flags;
	int32_t status;
	uint32_t path_len;
};

struct sd_ctl_msg {
	struct sd_ctl_hdr hdr;
	char *path; /* NUL-terminated */
	char *data; /* NUL-terminated (an extra byte past len) */
	size_t data_len;
	int fd; /* received descriptor, or -1 */
};

/* send one message; @fd >= 0 is passed along as SCM_RIGHTS */
int sd_ctl_send(int sock, uint16_t op, uint16_t flags, int32_t status, const char *path,
		const void *data, size_t len, int fd);
/* receive one message (blocking); 0, -EPIPE on a closed peer, or -errno */
int sd_ctl_recv(int sock, struct sd_ctl_msg *msg);
void sd_ctl_msg_free(struct sd_ctl_msg *msg);

/*
 * The directory holding agents' sockets, private to the user:
 * $XDG_RUNTIME_DIR/sonde or /tmp/sonde-<uid>, created 0700 and checked to
 * be ours and not reachable by others.
 */
int sd_ctl_dir(char *buf, size_t len);
/* the agent socket path of @pid */
int sd_ctl_agent_path(pid_t pid, char *buf, size_t len);
/*
 * Remove the sockets of processes that have ended from sd_ctl_dir(): an
 * agent unlinks its own at exit(), but not when the process ends by
 * _exit(), a signal or a crash. Returns how many went. (The directory is
 * per user and per machine: a process of the same user in another pid
 * namespace sharing it would be taken for ended.)
 */
int sd_ctl_sweep(void);
/* the uid of the peer of a connected unix socket, or -1 */
int sd_ctl_peer_uid(int sock);

#endif
