/* SPDX-License-Identifier: MIT */
#include "transport.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <thunderpass/log.h>

#include "util.h"

#define HDR_SIZE ((uint32_t)sizeof(struct tp_vu_hdr))

static int unix_addr(const char *path, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	strcpy(sa->sun_path, path);
	return 0;
}

/* A socket file nobody listens on any more is stale and may be replaced. */
static bool socket_is_live(const struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool live;

	if (fd < 0)
		return true; /* cannot tell: do not remove it */
	live = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0 ||
	       errno != ECONNREFUSED;
	close(fd);
	return live;
}

/* The directory must not let other users replace or pre-create our socket. */
static int check_socket_dir(const char *path, const char *who)
{
	char copy[PATH_MAX];
	struct stat st;
	const char *dir;

	if (strlen(path) >= sizeof(copy))
		return -ENAMETOOLONG;
	strcpy(copy, path);
	dir = dirname(copy);
	if (stat(dir, &st) < 0) {
		tp_err(who, "socket directory %s: %s", dir, strerror(errno));
		return -errno;
	}
	if (st.st_mode & S_IWOTH) {
		tp_err(who,
		       "refusing to create the socket in %s: the directory is world-writable, so "
		       "another user could replace the socket; use a private directory "
		       "(e.g. $XDG_RUNTIME_DIR, or mkdir -m 700)",
		       dir);
		return -EPERM;
	}
	return 0;
}

static int prepare_path(const char *path, const struct sockaddr_un *sa, const char *who)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (S_ISLNK(st.st_mode)) {
		tp_err(who, "refusing socket path %s: it is a symbolic link", path);
		return -ELOOP;
	}
	if (!S_ISSOCK(st.st_mode)) {
		tp_err(who, "refusing socket path %s: a file that is not a socket is there", path);
		return -EEXIST;
	}
	if (socket_is_live(sa)) {
		tp_err(who, "socket %s is in use: another server is listening on it", path);
		return -EADDRINUSE;
	}
	tp_info(who, "replacing stale socket %s (nothing listens on it)", path);
	if (unlink(path) < 0)
		return -errno;
	return 0;
}

/*
 * Binds fd at path, listening, with the given mode. Whoever sees the path
 * must be able to connect at once (QEMU, scripts waiting for the file), so
 * the socket is made under a temporary name in the same directory, set to
 * listen, and then linked to path: link() is atomic and refuses an existing
 * path (-EEXIST), as bind() would. Created owner-only from the first
 * instant, then widened if asked. A path too long for the temporary name is
 * bound directly and listens right after.
 */
static int bind_listening(int fd, const char *path, mode_t mode)
{
	struct sockaddr_un tmp;
	char name[sizeof(tmp.sun_path)];
	bool direct;
	mode_t old_mask;
	int rc, n;

	n = snprintf(name, sizeof(name), "%s.%ld.tmp", path, (long)getpid());
	direct = n < 0 || (size_t)n >= sizeof(name);
	if (unix_addr(direct ? path : name, &tmp))
		return -ENAMETOOLONG;
	if (!direct)
		unlink(name); /* a leftover of a server with our pid that was killed */
	old_mask = umask(0177);
	rc = bind(fd, (struct sockaddr *)&tmp, sizeof(tmp));
	umask(old_mask);
	if (rc < 0)
		return -errno;
	if (listen(fd, 8) < 0 || chmod(tmp.sun_path, mode) < 0 ||
	    (!direct && link(tmp.sun_path, path) < 0)) {
		rc = -errno;
		unlink(tmp.sun_path);
		return rc;
	}
	if (!direct)
		unlink(tmp.sun_path);
	return 0;
}

int tp_listen_unix(const char *path, mode_t mode, const char *who)
{
	struct sockaddr_un sa;
	int fd, rc;

	rc = unix_addr(path, &sa);
	if (rc) {
		tp_err(who, "socket path too long (max %zu bytes): %s", sizeof(sa.sun_path) - 1,
		       path);
		return rc;
	}
	rc = check_socket_dir(path, who);
	if (rc)
		return rc;
	rc = prepare_path(path, &sa, who);
	if (rc) {
		if (rc != -ELOOP && rc != -EEXIST && rc != -EADDRINUSE)
			tp_err(who, "socket %s: %s", path, strerror(-rc));
		return rc;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		rc = -errno;
		tp_err(who, "socket: %s", strerror(errno));
		return rc;
	}
	rc = bind_listening(fd, path, mode);
	if (rc < 0) {
		if (rc == -EEXIST)
			tp_err(who, "socket %s appeared while this server was starting: another "
			       "server is listening on it", path);
		else
			tp_err(who, "cannot listen on %s: %s", path, strerror(-rc));
		close(fd);
		return rc == -EEXIST ? -EADDRINUSE : rc;
	}
	return fd;
}

int tp_conn_init(struct tp_conn *c, int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int flags;

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->buf = tp_malloc(TP_VU_MAX_MSG);
	if (!c->buf)
		return -ENOMEM;
	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
		free(c->buf);
		c->buf = NULL;
		return -errno;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
		c->pid = cred.pid;
		c->uid = cred.uid;
		c->gid = cred.gid;
	} else {
		c->pid = -1;
		c->uid = (uid_t)-1;
		c->gid = (gid_t)-1;
	}
	c->fd = fd;
	return 0;
}

int tp_conn_accept(int listen_fd, struct tp_conn *c)
{
	int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	int rc;

	if (fd < 0)
		return -errno;
	rc = tp_conn_init(c, fd);
	if (rc)
		close(fd);
	return rc;
}

void tp_msg_close_fds(struct tp_msg *m)
{
	for (unsigned i = 0; i < m->nfds; i++)
		if (m->fds[i] >= 0)
			close(m->fds[i]);
	m->nfds = 0;
}

void tp_conn_close(struct tp_conn *c)
{
	tp_msg_close_fds(&c->msg);
	if (c->fd >= 0)
		close(c->fd);
	free(c->buf);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

/* Keeps the fds that came with this chunk; closes any beyond our limit. */
static void take_fds(struct tp_conn *c, struct msghdr *mh)
{
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		size_t n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		int *fds = (int *)CMSG_DATA(cm);
		for (size_t i = 0; i < n; i++) {
			if (c->msg.nfds < TP_CONN_MAX_FDS && !c->discard) {
				c->msg.fds[c->msg.nfds++] = fds[i];
			} else {
				close(fds[i]);
				c->fd_overflow = true;
			}
		}
	}
	if (mh->msg_flags & MSG_CTRUNC)
		c->fd_overflow = true;
}

static ssize_t recv_chunk(struct tp_conn *c, void *dst, size_t len)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * TP_CONN_MAX_FDS)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { .iov_base = dst, .iov_len = len };
	struct msghdr mh = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = ctl.buf,
		.msg_controllen = sizeof(ctl.buf),
	};
	ssize_t n;

	do {
		n = recvmsg(c->fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
	if (n == 0)
		return -ECONNRESET;
	take_fds(c, &mh);
	return n;
}

/* The header is in: decide how much more belongs to this message. */
static void header_done(struct tp_conn *c)
{
	struct tp_msg *m = &c->msg;

	memcpy(&m->hdr, c->buf, HDR_SIZE);
	if (m->hdr.size < HDR_SIZE) {
		/* The stream cannot say where this message ends; a bare header it is. */
		m->fault = TP_MSG_UNDERSIZED;
		c->want = HDR_SIZE;
	} else if (m->hdr.size > TP_VU_MAX_MSG) {
		m->fault = TP_MSG_OVERSIZED;
		c->want = HDR_SIZE;
		c->discard = m->hdr.size - HDR_SIZE;
	} else {
		c->want = m->hdr.size;
	}
}

static int discard_body(struct tp_conn *c)
{
	while (c->discard) {
		ssize_t n = recv_chunk(c, c->buf, (size_t)TP_MIN(c->discard, TP_VU_MAX_MSG));
		if (n <= 0)
			return (int)n;
		c->discard -= (uint64_t)n;
	}
	return 1;
}

int tp_conn_recv(struct tp_conn *c, struct tp_msg **out)
{
	struct tp_msg *m = &c->msg;
	ssize_t n;
	int rc;

	if (c->discard) {
		rc = discard_body(c);
		if (rc <= 0)
			return rc;
	}
	if (c->have == 0) {
		/* A new message: the previous one's fds were taken or closed. */
		tp_msg_close_fds(m);
		m->fault = TP_MSG_OK;
		c->fd_overflow = false;
		c->want = HDR_SIZE;
	}
	for (;;) {
		n = recv_chunk(c, c->buf + c->have, c->want - c->have);
		if (n <= 0)
			return (int)n;
		c->have += (uint32_t)n;
		if (c->have == HDR_SIZE && c->want == HDR_SIZE)
			header_done(c);
		if (c->have == c->want)
			break;
	}
	m->payload = c->buf + HDR_SIZE;
	m->len = c->have - HDR_SIZE;
	if (c->fd_overflow && m->fault == TP_MSG_OK)
		m->fault = TP_MSG_FDS_LOST;
	c->have = 0;
	*out = m;
	return 1;
}

static int wait_writable(int fd, uint64_t deadline_ns)
{
	for (;;) {
		uint64_t now = tp_now_ns();
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		int rc;

		if (now >= deadline_ns)
			return -ETIMEDOUT;
		rc = poll(&p, 1, (int)((deadline_ns - now) / 1000000 + 1));
		if (rc > 0)
			return (p.revents & (POLLERR | POLLHUP)) ? -EPIPE : 0;
		if (rc < 0 && errno != EINTR)
			return -errno;
	}
}

/* Senders may attach more fds than we accept (tests do, on purpose). */
#define SEND_MAX_FDS 64

static int send_iov(int fd, struct iovec *iov, int iovcnt, const int *fds, unsigned nfds,
		    int timeout_ms)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * SEND_MAX_FDS)];
		struct cmsghdr align;
	} ctl;
	uint64_t deadline = tp_now_ns() + (uint64_t)(timeout_ms < 0 ? 3600000 : timeout_ms) * 1000000ull;
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)iovcnt };
	int rc;

	if (nfds > SEND_MAX_FDS)
		return -EINVAL;
	if (nfds) {
		struct cmsghdr *cm;

		memset(ctl.buf, 0, sizeof(ctl.buf));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
	}
	while (mh.msg_iovlen) {
		ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				return -errno;
			rc = wait_writable(fd, deadline);
			if (rc)
				return rc;
			continue;
		}
		/* The fds went with the first byte. */
		mh.msg_control = NULL;
		mh.msg_controllen = 0;
		while (mh.msg_iovlen && (size_t)n >= mh.msg_iov->iov_len) {
			n -= (ssize_t)mh.msg_iov->iov_len;
			mh.msg_iov++;
			mh.msg_iovlen--;
		}
		if (mh.msg_iovlen) {
			mh.msg_iov->iov_base = (char *)mh.msg_iov->iov_base + n;
			mh.msg_iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

int tp_conn_send(struct tp_conn *c, const struct tp_vu_hdr *hdr, const void *payload,
		 uint32_t len, const int *fds, unsigned nfds, int timeout_ms)
{
	struct iovec iov[2] = {
		{ .iov_base = (void *)hdr, .iov_len = HDR_SIZE },
		{ .iov_base = (void *)payload, .iov_len = len },
	};

	return send_iov(c->fd, iov, len ? 2 : 1, fds, nfds, timeout_ms);
}

int tp_sock_send_all(int fd, const void *buf, size_t len, const int *fds, unsigned nfds)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };

	return send_iov(fd, &iov, 1, fds, nfds, -1);
}

int tp_sock_recv_all(int fd, void *buf, size_t len, int *fds, unsigned *nfds, int timeout_ms)
{
	struct tp_conn tmp = { .fd = fd };
	uint64_t deadline = tp_now_ns() + (uint64_t)(timeout_ms < 0 ? 3600000 : timeout_ms) * 1000000ull;
	unsigned max = nfds ? *nfds : 0;
	size_t got = 0;
	int rc = 0;

	while (got < len) {
		ssize_t n = recv_chunk(&tmp, (char *)buf + got, len - got);
		if (n < 0) {
			rc = (int)n;
			break;
		}
		if (n == 0) {
			uint64_t now = tp_now_ns();
			struct pollfd p = { .fd = fd, .events = POLLIN };

			if (now >= deadline) {
				rc = -ETIMEDOUT;
				break;
			}
			poll(&p, 1, (int)((deadline - now) / 1000000 + 1));
			continue;
		}
		got += (size_t)n;
	}
	/* Hand over what fits, close the rest. */
	for (unsigned i = 0; i < tmp.msg.nfds; i++) {
		if (i < max)
			fds[i] = tmp.msg.fds[i];
		else
			close(tmp.msg.fds[i]);
	}
	if (nfds)
		*nfds = TP_MIN(tmp.msg.nfds, max);
	return rc;
}
