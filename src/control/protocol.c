// SPDX-License-Identifier: MIT
/* protocol.c - framing of control messages, and where the sockets live. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define SD_LOG_PREFIX "ctl"
#include "common/log.h"
#include "control/protocol.h"

static int write_all(int sock, struct iovec *iov, int n, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = n};

	if (fd >= 0) {
		struct cmsghdr *c;

		memset(cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof(cbuf);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	while (mh.msg_iovlen) {
		ssize_t w = sendmsg(sock, &mh, MSG_NOSIGNAL);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		mh.msg_control = NULL; /* the descriptor went with the first bytes */
		mh.msg_controllen = 0;
		while (mh.msg_iovlen && (size_t)w >= mh.msg_iov->iov_len) {
			w -= mh.msg_iov->iov_len;
			mh.msg_iov++;
			mh.msg_iovlen--;
		}
		if (mh.msg_iovlen) {
			mh.msg_iov->iov_base = (char *)mh.msg_iov->iov_base + w;
			mh.msg_iov->iov_len -= w;
		}
	}
	return 0;
}

int sd_ctl_send(int sock, uint16_t op, uint16_t flags, int32_t status, const char *path,
		const void *data, size_t len, int fd)
{
	size_t plen = path ? strlen(path) : 0;
	struct sd_ctl_hdr h = {
	    .magic = SD_CTL_MAGIC,
	    .len = (uint32_t)(plen + len),
	    .op = op,
	    .flags = flags,
	    .status = status,
	    .path_len = (uint32_t)plen,
	};
	struct iovec iov[3] = {
	    {&h, sizeof(h)},
	    {(void *)path, plen},
	    {(void *)data, len},
	};

	if (plen + len > SD_CTL_MAX_MSG)
		return -EMSGSIZE;
	return write_all(sock, iov, 3, fd);
}

static int read_exact(int sock, void *buf, size_t len, int *fd)
{
	size_t done = 0;

	while (done < len) {
		char cbuf[CMSG_SPACE(sizeof(int))];
		struct iovec iov = {(char *)buf + done, len - done};
		struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
		ssize_t r;

		if (fd) {
			mh.msg_control = cbuf;
			mh.msg_controllen = sizeof(cbuf);
		}
		r = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -EPIPE;
		if (fd) {
			for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
				if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
					memcpy(fd, CMSG_DATA(c), sizeof(int));
		}
		done += r;
	}
	return 0;
}

int sd_ctl_recv(int sock, struct sd_ctl_msg *m)
{
	int err;

	memset(m, 0, sizeof(*m));
	m->fd = -1;
	err = read_exact(sock, &m->hdr, sizeof(m->hdr), &m->fd);
	if (err)
		return err;
	if (m->hdr.magic != SD_CTL_MAGIC || m->hdr.len > SD_CTL_MAX_MSG ||
	    m->hdr.path_len > m->hdr.len)
		return sd_error(-EPROTO, "control message: bad header (magic %#x, length %u)",
				m->hdr.magic, m->hdr.len);
	m->path = malloc(m->hdr.path_len + 1);
	m->data_len = m->hdr.len - m->hdr.path_len;
	m->data = malloc(m->data_len + 1);
	if (!m->path || !m->data) {
		sd_ctl_msg_free(m);
		return -ENOMEM;
	}
	err = read_exact(sock, m->path, m->hdr.path_len, NULL);
	if (!err)
		err = read_exact(sock, m->data, m->data_len, NULL);
	if (err) {
		sd_ctl_msg_free(m);
		return err;
	}
	m->path[m->hdr.path_len] = '\0';
	m->data[m->data_len] = '\0';
	return 0;
}

void sd_ctl_msg_free(struct sd_ctl_msg *m)
{
	free(m->path);
	free(m->data);
	m->path = m->data = NULL;
	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
}

int sd_ctl_dir(char *buf, size_t len)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	struct stat st;
	int n;

	if (xdg && *xdg && !access(xdg, W_OK))
		n = snprintf(buf, len, "%s/sonde", xdg);
	else
		n = snprintf(buf, len, "/tmp/sonde-%u", (unsigned)getuid());
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	if (mkdir(buf, 0700) && errno != EEXIST)
		return sd_error(-errno, "cannot create %s: %s", buf, strerror(errno));
	if (lstat(buf, &st))
		return sd_error(-errno, "%s: %s", buf, strerror(errno));
	/* someone else's directory, or one others can enter, is never used */
	if (!S_ISDIR(st.st_mode) || st.st_uid != getuid() || (st.st_mode & 077))
		return sd_error(-EPERM, "%s is not a private directory of this user", buf);
	return 0;
}

int sd_ctl_agent_path(pid_t pid, char *buf, size_t len)
{
	char dir[200];
	int err = sd_ctl_dir(dir, sizeof(dir)), n;

	if (err)
		return err;
	n = snprintf(buf, len, "%s/%d.sock", dir, (int)pid);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* the pid in "<pid>.sock", "<pid>.sock.new", "<pid>.lock" or "cmd-<pid>.sock"; else 0 */
static pid_t sock_pid(const char *name)
{
	char *end;
	long pid;

	if (!strncmp(name, "cmd-", 4))
		name += 4;
	if (*name < '1' || *name > '9')
		return 0;
	pid = strtol(name, &end, 10);
	if (pid <= 0 || pid > INT_MAX ||
	    (strcmp(end, ".sock") && strcmp(end, ".sock.new") && strcmp(end, ".lock")))
		return 0;
	return (pid_t)pid;
}

int sd_ctl_sweep(void)
{
	char dir[200];
	struct dirent *de;
	int n = 0, fd;
	DIR *d;

	if (sd_ctl_dir(dir, sizeof(dir)))
		return 0;
	d = opendir(dir);
	if (!d)
		return 0;
	fd = dirfd(d);
	while ((de = readdir(d))) {
		pid_t pid = sock_pid(de->d_name);

		if (pid && kill(pid, 0) && errno == ESRCH && !unlinkat(fd, de->d_name, 0))
			n++;
	}
	closedir(d);
	return n;
}

int sd_ctl_peer_uid(int sock)
{
	struct ucred cred;
	socklen_t l = sizeof(cred);

	if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &l))
		return -1;
	return (int)cred.uid;
}
