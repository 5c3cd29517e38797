/* SPDX-License-Identifier: MIT */
/*
 * The serving loop: poll on the listening socket, the client, clients waiting
 * to be refused, and a stop eventfd. Single-threaded; a client that sends half
 * a message and stalls holds one receive buffer and stops nothing.
 */
#include <thunderpass/server.h>

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thunderpass/log.h>

#include "control.h"
#include "device.h"
#include "record.h"
#include "session.h"
#include "transport.h"
#include "util.h"

#define MAX_REFUSING 4
#define REFUSE_WAIT_NS 1000000000ull
#define SEND_TIMEOUT_MS 5000

struct refusing {
	int fd;
	uint64_t deadline;
};

struct tp_server {
	struct tp_server_opts opts;
	char *path;
	int listen_fd;
	int stop_fd;
	struct tp_device dev;
	bool have_client;
	struct tp_conn conn;
	struct tp_session session;
	struct refusing refusing[MAX_REFUSING];
	unsigned sessions;
	struct tp_recorder *rec; /* --record: NULL when off */
	/* `thunderpass stats` (lib/control.c): PATH.ctl; NULL when it could not
	 * be created (the server serves without it). */
	struct tp_control *ctl;
	uint64_t started_ns, client_since_ns;
};

static int conn_send(void *ctx, const struct tp_vu_hdr *hdr, const void *payload, uint32_t len,
		     const int *fds, unsigned nfds)
{
	struct tp_conn *c = ctx;

	return tp_conn_send(c, hdr, payload, len, fds, nfds, SEND_TIMEOUT_MS);
}

int tp_server_create(const struct tp_server_opts *opts, struct tp_server **out)
{
	struct tp_server *s = calloc(1, sizeof(*s));
	int rc;

	if (!s) {
		if (opts->backend && opts->backend->ops->destroy)
			opts->backend->ops->destroy(opts->backend);
		return -ENOMEM;
	}
	s->opts = *opts;
	s->listen_fd = -1;
	s->conn.fd = -1;
	for (unsigned i = 0; i < MAX_REFUSING; i++)
		s->refusing[i].fd = -1;
	if (!s->opts.socket_mode)
		s->opts.socket_mode = 0600;
	s->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	s->path = strdup(opts->socket_path);
	if (s->stop_fd < 0 || !s->path) {
		rc = -ENOMEM;
		if (opts->backend->ops->destroy)
			opts->backend->ops->destroy(opts->backend);
		goto fail;
	}
	rc = tp_device_open(&s->dev, opts->backend, opts->iommu);
	if (rc) {
		if (!s->dev.be && opts->backend->ops->destroy)
			opts->backend->ops->destroy(opts->backend);
		goto fail;
	}
	if (opts->record_path) {
		rc = tp_record_open(opts->record_path, s->dev.name, &s->rec);
		if (rc)
			goto fail;
	}
	rc = tp_listen_unix(s->path, s->opts.socket_mode, s->dev.name);
	if (rc < 0)
		goto fail;
	s->listen_fd = rc;
	tp_info(s->dev.name, "listening on %s", s->path);
	/* Stats are a convenience: a server without them still serves. */
	s->started_ns = tp_now_ns();
	tp_control_open(s->path, s->opts.socket_mode, s->dev.name, &s->ctl);
	*out = s;
	return 0;
fail:
	tp_record_close(s->rec);
	tp_device_close(&s->dev);
	if (s->stop_fd >= 0)
		close(s->stop_fd);
	free(s->path);
	free(s);
	return rc;
}

void tp_server_stop(struct tp_server *s)
{
	uint64_t one = 1;
	ssize_t n = write(s->stop_fd, &one, sizeof(one));

	(void)n;
}

static void end_session(struct tp_server *s, const char *why)
{
	tp_info(s->dev.name, "client (pid %d) gone: %s; resetting the device", (int)s->conn.pid,
		why);
	tp_record_end(s->rec);
	tp_device_session_end(&s->dev);
	tp_session_fini(&s->session);
	tp_conn_close(&s->conn);
	s->have_client = false;
	s->sessions++;
}

static bool peer_allowed(struct tp_server *s, const struct tp_conn *c)
{
	if (!s->opts.restrict_uid)
		return true;
	return c->uid == s->opts.allow_uid || c->uid == 0;
}

/* A second client is told EBUSY in reply to its first message, then closed. */
static void refuse(struct tp_server *s, int fd)
{
	for (unsigned i = 0; i < MAX_REFUSING; i++) {
		if (s->refusing[i].fd < 0) {
			s->refusing[i].fd = fd;
			s->refusing[i].deadline = tp_now_ns() + REFUSE_WAIT_NS;
			return;
		}
	}
	close(fd);
}

static void refuse_answer(struct refusing *r)
{
	struct tp_vu_hdr in, out;
	int fds[TP_CONN_MAX_FDS];
	unsigned nfds = TP_CONN_MAX_FDS;

	if (tp_sock_recv_all(r->fd, &in, sizeof(in), fds, &nfds, 0) == 0) {
		for (unsigned i = 0; i < nfds; i++)
			close(fds[i]);
		out = (struct tp_vu_hdr){
			.msg_id = in.msg_id,
			.command = in.command,
			.size = sizeof(out),
			.flags = TP_VU_TYPE_REPLY | TP_VU_ERROR,
			.error = EBUSY,
		};
		send(r->fd, &out, sizeof(out), MSG_NOSIGNAL | MSG_DONTWAIT);
	}
	close(r->fd);
	r->fd = -1;
}

static void accept_client(struct tp_server *s)
{
	struct tp_conn c;
	int rc = tp_conn_accept(s->listen_fd, &c);

	if (rc) {
		if (rc != -EAGAIN)
			tp_warn(s->dev.name, "accept: %s", strerror(-rc));
		return;
	}
	if (!peer_allowed(s, &c)) {
		tp_warn(s->dev.name, "refusing client pid %d uid %u: only uid %u may connect",
			(int)c.pid, (unsigned)c.uid, (unsigned)s->opts.allow_uid);
		tp_conn_close(&c);
		return;
	}
	if (s->have_client) {
		tp_warn(s->dev.name,
			"refusing a second client (pid %d uid %u): pid %d is connected; "
			"one client at a time per socket",
			(int)c.pid, (unsigned)c.uid, (int)s->conn.pid);
		refuse(s, c.fd);
		c.fd = -1;
		tp_conn_close(&c);
		return;
	}
	s->conn = c;
	rc = tp_session_init(&s->session, &s->dev, conn_send, &s->conn);
	if (rc) {
		tp_err(s->dev.name, "no memory for a session");
		tp_conn_close(&s->conn);
		return;
	}
	s->have_client = true;
	s->client_since_ns = tp_now_ns();
	tp_info(s->dev.name, "client connected: pid %d uid %u gid %u", (int)c.pid,
		(unsigned)c.uid, (unsigned)c.gid);
}

static void serve_client(struct tp_server *s)
{
	for (;;) {
		struct tp_msg *m;
		int rc = tp_conn_recv(&s->conn, &m);

		if (rc == 0)
			return;
		if (rc < 0) {
			end_session(s, rc == -ECONNRESET ? "disconnected" : strerror(-rc));
			return;
		}
		tp_record_msg(s->rec, m); /* --record: before its fds are taken */
		rc = tp_session_handle(&s->session, m);
		if (rc) {
			end_session(s, rc == -ETIMEDOUT ? "not reading its replies" : strerror(-rc));
			return;
		}
	}
}

/* A `thunderpass stats` client: one snapshot of the counters. */
static void serve_stats(struct tp_server *s)
{
	struct tp_control_state st = {
		.dev = &s->dev,
		.socket_path = s->path,
		.started_ns = s->started_ns,
		.have_client = s->have_client,
		.client_pid = s->conn.pid,
		.client_since_ns = s->client_since_ns,
		.sessions = s->sessions,
		.restrict_uid = s->opts.restrict_uid,
		.allow_uid = s->opts.allow_uid,
	};

	tp_control_serve(s->ctl, &st);
}

/* The backend's timer runs now if due; the poll wakes up for its next
 * deadline (200 ms at most, as without one). */
static int poll_timeout(struct tp_server *s)
{
	uint64_t now, due;

	if (!s->opts.timer)
		return 200;
	now = tp_now_ns();
	due = s->opts.timer(s->opts.timer_ctx, now);
	if (!due || due >= now + 200000000ull)
		return 200;
	return due <= now ? 0 : (int)((due - now + 999999) / 1000000);
}

struct tp_device *tp_server_device(struct tp_server *s)
{
	return &s->dev;
}

int tp_server_run(struct tp_server *s)
{
	for (;;) {
		struct pollfd p[4 + MAX_REFUSING];
		unsigned n = 0, ref0, ctl;
		uint64_t now;
		int rc;

		p[n++] = (struct pollfd){ .fd = s->stop_fd, .events = POLLIN };
		p[n++] = (struct pollfd){ .fd = s->listen_fd, .events = POLLIN };
		p[n++] = (struct pollfd){ .fd = s->have_client ? s->conn.fd : -1, .events = POLLIN };
		ref0 = n;
		for (unsigned i = 0; i < MAX_REFUSING; i++)
			p[n++] = (struct pollfd){ .fd = s->refusing[i].fd, .events = POLLIN };
		ctl = n;
		p[n++] = (struct pollfd){ .fd = tp_control_fd(s->ctl), .events = POLLIN };
		rc = poll(p, n, poll_timeout(s));
		if (rc < 0 && errno != EINTR) {
			tp_err(s->dev.name, "poll: %s", strerror(errno));
			return -errno;
		}
		if (p[0].revents)
			break;
		if (p[2].revents)
			serve_client(s);
		if (p[1].revents)
			accept_client(s);
		if (p[ctl].revents)
			serve_stats(s);
		now = tp_now_ns();
		for (unsigned i = 0; i < MAX_REFUSING; i++) {
			struct refusing *r = &s->refusing[i];

			if (r->fd >= 0 && (p[ref0 + i].revents || now > r->deadline))
				refuse_answer(r);
		}
		if (s->opts.once && s->sessions)
			break;
	}
	return 0;
}

void tp_server_destroy(struct tp_server *s)
{
	if (!s)
		return;
	if (s->have_client)
		end_session(s, "server shutting down");
	for (unsigned i = 0; i < MAX_REFUSING; i++)
		if (s->refusing[i].fd >= 0)
			close(s->refusing[i].fd);
	tp_control_close(s->ctl); /* PATH.ctl goes with PATH */
	if (s->listen_fd >= 0) {
		close(s->listen_fd);
		unlink(s->path);
	}
	tp_device_close(&s->dev);
	tp_record_close(s->rec);
	close(s->stop_fd);
	tp_info("thunderpass", "stopped; socket %s removed", s->path);
	free(s->path);
	free(s);
}
