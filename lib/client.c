/* SPDX-License-Identifier: MIT */
#include "client.h"

#include <errno.h>
#include <json-c/json.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "transport.h"
#include "util.h"

/* QEMU 10.2's VERSION capabilities, byte for byte in meaning. */
#define QEMU_CAPS                                                                    \
	"{\"capabilities\":{\"migration\":{\"pgsize\":4096,\"max_bitmap_size\":268435456}," \
	"\"max_msg_fds\":16,\"max_data_xfer_size\":1048576,\"pgsizes\":4096,"          \
	"\"max_dma_maps\":65535,\"write_multiple\":true}}"

#define HDR_SIZE ((uint32_t)sizeof(struct tp_vu_hdr))
#define MAX_IOV 4
#define SEND_MAX_FDS 16

/* Threaded mode (tp_client_start). */
struct tp_client_async {
	pthread_t rx;
	const struct tp_client_hooks *hooks;
	void *ctx;
	uint8_t *buf;              /* TP_VU_MAX_MSG: one message body */
	pthread_mutex_t lock;      /* everything below */
	pthread_cond_t cond;
	pthread_mutex_t send_lock; /* one whole message at a time */
	pthread_mutex_t call_lock; /* one call in flight */
	bool stopping, dead;
	int dead_err;
	bool waiting, wait_done;
	uint16_t wait_id, wait_cmd;
	struct tp_client_reply *wait_r;
	int wait_rc;
	uint64_t stray, requests;
};

int tp_client_connect(struct tp_client *c, const char *path, int timeout_ms)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	memset(c, 0, sizeof(*c));
	c->timeout_ms = timeout_ms > 0 ? timeout_ms : 5000;
	c->max_msg_fds = 1;
	c->max_data_xfer = TP_VU_MAX_DATA_XFER;
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -errno;
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int rc = -errno;

		close(c->fd);
		c->fd = -1;
		return rc;
	}
	return 0;
}

void tp_client_close(struct tp_client *c)
{
	tp_client_stop(c);
	if (c->async) {
		struct tp_client_async *a = c->async;

		pthread_mutex_destroy(&a->lock);
		pthread_cond_destroy(&a->cond);
		pthread_mutex_destroy(&a->send_lock);
		pthread_mutex_destroy(&a->call_lock);
		free(a->buf);
		free(a);
		c->async = NULL;
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

/* ---- sending: the header and up to MAX_IOV parts, fds with the first byte */

static int wait_out(int fd, uint64_t deadline)
{
	for (;;) {
		uint64_t now = tp_now_ns();
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		int rc;

		if (now >= deadline)
			return -ETIMEDOUT;
		rc = poll(&p, 1, (int)((deadline - now) / 1000000 + 1));
		if (rc > 0)
			return (p.revents & (POLLERR | POLLHUP | POLLNVAL)) ? -EPIPE : 0;
		if (rc < 0 && errno != EINTR)
			return -errno;
	}
}

static int send_parts(struct tp_client *c, const struct tp_vu_hdr *h, const struct iovec *parts,
		      unsigned nparts, const int *fds, unsigned nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * SEND_MAX_FDS)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov[MAX_IOV + 1], *v = iov;
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 1 + nparts };
	uint64_t deadline = tp_now_ns() + (uint64_t)c->timeout_ms * 1000000ull;

	if (nparts > MAX_IOV || nfds > SEND_MAX_FDS)
		return -EINVAL;
	iov[0] = (struct iovec){ .iov_base = (void *)h, .iov_len = HDR_SIZE };
	for (unsigned i = 0; i < nparts; i++)
		iov[1 + i] = parts[i];
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
		ssize_t n = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			int rc;

			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				return -errno;
			rc = wait_out(c->fd, deadline);
			if (rc)
				return rc;
			continue;
		}
		mh.msg_control = NULL;
		mh.msg_controllen = 0;
		while (mh.msg_iovlen && (size_t)n >= v->iov_len) {
			n -= (ssize_t)v->iov_len;
			v++;
			mh.msg_iovlen--;
		}
		mh.msg_iov = v;
		if (mh.msg_iovlen) {
			v->iov_base = (char *)v->iov_base + n;
			v->iov_len -= (size_t)n;
		}
	}
	return 0;
}

static int send_locked(struct tp_client *c, const struct tp_vu_hdr *h, const struct iovec *parts,
		       unsigned nparts, const int *fds, unsigned nfds)
{
	int rc;

	if (!c->async)
		return send_parts(c, h, parts, nparts, fds, nfds);
	pthread_mutex_lock(&c->async->send_lock);
	rc = send_parts(c, h, parts, nparts, fds, nfds);
	/* Part of a message may be out: the stream is broken, end it (the
	 * receive thread sees the end and fails every call from now on). */
	if (rc && rc != -EINVAL)
		shutdown(c->fd, SHUT_RDWR);
	pthread_mutex_unlock(&c->async->send_lock);
	return rc;
}

int tp_client_send_raw(struct tp_client *c, const void *buf, uint32_t len, const int *fds,
		       unsigned nfds)
{
	if (c->async)
		return -EBUSY;
	return tp_sock_send_all(c->fd, buf, len, fds, nfds);
}

/* ---- receiving */

/* Spreads n payload bytes from src over r->data then r->tail; drops the rest. */
static void reply_fill(struct tp_client_reply *r, const uint8_t *src, uint32_t n)
{
	uint32_t a = TP_MIN(n, r->cap), b = r->tail ? TP_MIN(n - a, r->tail_cap) : 0;

	if (a)
		memcpy(r->data, src, a);
	if (b)
		memcpy(r->tail, src + a, b);
	r->len = a + b;
}

static int recv_into(struct tp_client *c, void *dst, uint32_t n)
{
	return n ? tp_sock_recv_all(c->fd, dst, n, NULL, NULL, c->timeout_ms) : 0;
}

static int drop_bytes(struct tp_client *c, uint32_t n)
{
	uint8_t junk[4096];

	while (n) {
		uint32_t k = TP_MIN(n, (uint32_t)sizeof(junk));
		int rc = recv_into(c, junk, k);

		if (rc)
			return rc;
		n -= k;
	}
	return 0;
}

int tp_client_recv(struct tp_client *c, struct tp_client_reply *r)
{
	unsigned nfds = TP_ARRAY_SIZE(r->fds);
	uint32_t body, a, b;
	int rc;

	if (c->async)
		return -EBUSY;
	r->nfds = 0;
	r->len = 0;
	rc = tp_sock_recv_all(c->fd, &r->hdr, sizeof(r->hdr), r->fds, &nfds, c->timeout_ms);
	if (rc)
		return rc;
	r->nfds = nfds;
	if (r->hdr.size < sizeof(r->hdr) || r->hdr.size > TP_VU_MAX_MSG)
		return -EPROTO;
	body = r->hdr.size - HDR_SIZE;
	a = TP_MIN(body, r->cap);
	b = r->tail ? TP_MIN(body - a, r->tail_cap) : 0;
	rc = recv_into(c, r->data, a);
	if (!rc)
		rc = recv_into(c, r->tail, b);
	if (rc)
		return rc;
	r->len = a + b;
	return drop_bytes(c, body - a - b);
}

/* The reply's header says success, or the server's errno (sane ones only). */
static int reply_status(const struct tp_vu_hdr *h)
{
	if (!(h->flags & TP_VU_ERROR))
		return 0;
	return h->error > 0 && h->error < 4096 ? -(int)h->error : -EIO;
}

static void close_fds(int *fds, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* Receive thread: a reply for the waiting call, else dropped. */
static void rx_reply(struct tp_client_async *a, const struct tp_vu_hdr *h, uint32_t body,
		     int *fds, unsigned nfds)
{
	struct tp_client_reply *r;

	pthread_mutex_lock(&a->lock);
	if (!a->waiting || a->wait_done || h->msg_id != a->wait_id) {
		a->stray++;
		pthread_mutex_unlock(&a->lock);
		close_fds(fds, nfds);
		return;
	}
	r = a->wait_r;
	r->hdr = *h;
	reply_fill(r, a->buf, body);
	r->nfds = TP_MIN(nfds, (unsigned)TP_ARRAY_SIZE(r->fds));
	memcpy(r->fds, fds, r->nfds * sizeof(int));
	close_fds(fds + r->nfds, nfds - r->nfds);
	/* A reply to another command under our id is the server's confusion. */
	a->wait_rc = h->command != a->wait_cmd ? -EPROTO : reply_status(h);
	a->wait_done = true;
	pthread_cond_broadcast(&a->cond);
	pthread_mutex_unlock(&a->lock);
}

static void rx_command(struct tp_client *c, const struct tp_vu_hdr *h, uint32_t body)
{
	struct tp_client_async *a = c->async;
	struct tp_client_msg *m;

	pthread_mutex_lock(&a->lock);
	a->requests++;
	pthread_mutex_unlock(&a->lock);
	if (!a->hooks->request) {
		if (!(h->flags & TP_VU_NO_REPLY))
			tp_client_send_reply(c, h, ENOTSUP, NULL, 0);
		return;
	}
	m = malloc(sizeof(*m) + body);
	if (!m) {
		if (!(h->flags & TP_VU_NO_REPLY))
			tp_client_send_reply(c, h, ENOMEM, NULL, 0);
		return;
	}
	m->hdr = *h;
	m->len = body;
	memcpy(m->payload, a->buf, body);
	a->hooks->request(a->ctx, m);
}

static int rx_one(struct tp_client *c)
{
	struct tp_client_async *a = c->async;
	int fds[TP_CONN_MAX_FDS];
	unsigned nfds = TP_CONN_MAX_FDS;
	struct tp_vu_hdr h;
	uint32_t body;
	int rc;

	rc = tp_sock_recv_all(c->fd, &h, sizeof(h), fds, &nfds, c->timeout_ms);
	if (rc)
		return rc;
	/* The stream cannot be trusted past a size we refuse: end it. */
	if (h.size < HDR_SIZE || h.size > TP_VU_MAX_MSG) {
		close_fds(fds, nfds);
		return -EPROTO;
	}
	body = h.size - HDR_SIZE;
	rc = recv_into(c, a->buf, body);
	if (rc) {
		close_fds(fds, nfds);
		return rc;
	}
	switch (h.flags & TP_VU_TYPE_MASK) {
	case TP_VU_TYPE_REPLY:
		rx_reply(a, &h, body, fds, nfds);
		return 0;
	case TP_VU_TYPE_COMMAND:
		/* No command a server may send carries fds. */
		close_fds(fds, nfds);
		rx_command(c, &h, body);
		return 0;
	default:
		close_fds(fds, nfds);
		return -EPROTO;
	}
}

static void *rx_main(void *arg)
{
	struct tp_client *c = arg;
	struct tp_client_async *a = c->async;
	bool stopping;
	int rc;

	for (;;) {
		struct pollfd p = { .fd = c->fd, .events = POLLIN };

		if (poll(&p, 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			break;
		}
		rc = rx_one(c);
		if (rc)
			break;
	}
	pthread_mutex_lock(&a->lock);
	stopping = a->stopping;
	a->dead = true;
	a->dead_err = rc;
	if (a->waiting && !a->wait_done) {
		a->wait_rc = -ENOTCONN;
		a->wait_done = true;
	}
	pthread_cond_broadcast(&a->cond);
	pthread_mutex_unlock(&a->lock);
	/* A stop asked for is no death to report. */
	if (a->hooks->dead && !stopping)
		a->hooks->dead(a->ctx, rc == -ECONNRESET ? -ENOTCONN : rc);
	return NULL;
}

int tp_client_start(struct tp_client *c, const struct tp_client_hooks *hooks, void *ctx)
{
	struct tp_client_async *a;
	pthread_condattr_t ca;
	int rc;

	if (c->async || c->fd < 0)
		return -EINVAL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->buf = malloc(TP_VU_MAX_MSG);
	if (!a->buf) {
		free(a);
		return -ENOMEM;
	}
	a->hooks = hooks;
	a->ctx = ctx;
	pthread_mutex_init(&a->lock, NULL);
	pthread_mutex_init(&a->send_lock, NULL);
	pthread_mutex_init(&a->call_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&a->cond, &ca);
	pthread_condattr_destroy(&ca);
	c->async = a;
	rc = -pthread_create(&a->rx, NULL, rx_main, c);
	if (rc) {
		c->async = NULL;
		pthread_mutex_destroy(&a->lock);
		pthread_mutex_destroy(&a->send_lock);
		pthread_mutex_destroy(&a->call_lock);
		pthread_cond_destroy(&a->cond);
		free(a->buf);
		free(a);
		return rc;
	}
	return 0;
}

void tp_client_stop(struct tp_client *c)
{
	struct tp_client_async *a = c->async;
	bool join;

	if (!a)
		return;
	pthread_mutex_lock(&a->lock);
	join = !a->stopping;
	a->stopping = true;
	pthread_mutex_unlock(&a->lock);
	if (!join)
		return;
	shutdown(c->fd, SHUT_RDWR);
	pthread_join(a->rx, NULL);
}

bool tp_client_alive(const struct tp_client *c)
{
	bool alive;

	if (!c->async)
		return c->fd >= 0;
	pthread_mutex_lock(&c->async->lock);
	alive = !c->async->dead;
	pthread_mutex_unlock(&c->async->lock);
	return alive;
}

void tp_client_counters(const struct tp_client *c, uint64_t *stray_replies, uint64_t *requests)
{
	*stray_replies = *requests = 0;
	if (!c->async)
		return;
	pthread_mutex_lock(&c->async->lock);
	*stray_replies = c->async->stray;
	*requests = c->async->requests;
	pthread_mutex_unlock(&c->async->lock);
}

int tp_client_send_reply(struct tp_client *c, const struct tp_vu_hdr *req, int err,
			 const void *payload, uint32_t len)
{
	struct tp_vu_hdr h = {
		.msg_id = req->msg_id,
		.command = req->command,
		.size = HDR_SIZE + (err ? 0 : len),
		.flags = TP_VU_TYPE_REPLY | (err ? TP_VU_ERROR : 0),
		.error = err > 0 ? (uint32_t)err : 0,
	};
	struct iovec v = { .iov_base = (void *)payload, .iov_len = len };

	return send_locked(c, &h, &v, !err && len ? 1 : 0, NULL, 0);
}

/* ---- calls */

static void fill_hdr(struct tp_client *c, struct tp_vu_hdr *h, uint16_t cmd, uint32_t len,
		     uint32_t flags)
{
	*h = (struct tp_vu_hdr){
		.msg_id = c->next_id++,
		.command = cmd,
		.size = HDR_SIZE + len,
		.flags = TP_VU_TYPE_COMMAND | flags,
	};
}

static int call_async(struct tp_client *c, struct tp_vu_hdr *h, const struct iovec *iov,
		      unsigned niov, const int *fds, unsigned nfds, struct tp_client_reply *r)
{
	struct tp_client_async *a = c->async;
	bool posted = !r;
	struct timespec ts;
	int rc;

	pthread_mutex_lock(&a->call_lock);
	pthread_mutex_lock(&a->lock);
	if (a->dead) {
		pthread_mutex_unlock(&a->lock);
		pthread_mutex_unlock(&a->call_lock);
		return -ENOTCONN;
	}
	h->msg_id = c->next_id++;
	if (!posted) {
		r->nfds = 0;
		r->len = 0;
		a->waiting = true;
		a->wait_done = false;
		a->wait_id = h->msg_id;
		a->wait_cmd = h->command;
		a->wait_r = r;
	}
	pthread_mutex_unlock(&a->lock);
	rc = send_locked(c, h, iov, niov, fds, nfds);
	pthread_mutex_lock(&a->lock);
	if (!rc && !posted) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += c->timeout_ms / 1000;
		ts.tv_nsec += (long)(c->timeout_ms % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		while (!a->wait_done && !rc)
			rc = -pthread_cond_timedwait(&a->cond, &a->lock, &ts);
		rc = a->wait_done ? a->wait_rc : -ETIMEDOUT;
	}
	a->waiting = false;
	a->wait_r = NULL;
	pthread_mutex_unlock(&a->lock);
	pthread_mutex_unlock(&a->call_lock);
	return rc;
}

int tp_client_callv(struct tp_client *c, uint16_t cmd, const struct iovec *iov, unsigned niov,
		    const int *fds, unsigned nfds, bool posted, struct tp_client_reply *r)
{
	struct tp_vu_hdr h;
	uint64_t len = 0;
	int rc;

	for (unsigned i = 0; i < niov; i++)
		len += iov[i].iov_len;
	if (len > TP_VU_MAX_MSG - HDR_SIZE || niov > MAX_IOV)
		return -E2BIG;
	fill_hdr(c, &h, cmd, (uint32_t)len, posted ? TP_VU_NO_REPLY : 0);
	if (c->async)
		return call_async(c, &h, iov, niov, fds, nfds, posted ? NULL : r);
	rc = send_parts(c, &h, iov, niov, fds, nfds);
	if (rc || posted)
		return rc;
	rc = tp_client_recv(c, r);
	if (rc)
		return rc;
	if (r->hdr.msg_id != h.msg_id || (r->hdr.flags & TP_VU_TYPE_MASK) != TP_VU_TYPE_REPLY) {
		close_fds(r->fds, r->nfds);
		r->nfds = 0;
		return -EPROTO;
	}
	return reply_status(&r->hdr);
}

int tp_client_call(struct tp_client *c, uint16_t cmd, const void *payload, uint32_t len,
		   const int *fds, unsigned nfds, struct tp_client_reply *r)
{
	struct iovec v = { .iov_base = (void *)payload, .iov_len = len };

	return tp_client_callv(c, cmd, &v, len ? 1 : 0, fds, nfds, false, r);
}

int tp_client_post(struct tp_client *c, uint16_t cmd, const void *payload, uint32_t len)
{
	struct iovec v = { .iov_base = (void *)payload, .iov_len = len };

	return tp_client_callv(c, cmd, &v, len ? 1 : 0, NULL, 0, true, NULL);
}

/* The capabilities we use from the server's VERSION reply, parsed as JSON;
 * absent or odd values keep the defaults, large ones are clamped. */
static void parse_server_caps(struct tp_client *c, const char *json, size_t len)
{
	struct json_tokener *tok = json_tokener_new();
	json_object *root, *caps, *v;

	if (!tok)
		return;
	root = json_tokener_parse_ex(tok, json, (int)len);
	json_tokener_free(tok);
	if (!root)
		return;
	if (json_object_object_get_ex(root, "capabilities", &caps) &&
	    json_object_is_type(caps, json_type_object)) {
		if (json_object_object_get_ex(caps, "max_msg_fds", &v) &&
		    json_object_is_type(v, json_type_int)) {
			int64_t n = json_object_get_int64(v);

			c->max_msg_fds = n < 1 ? 1 : n > SEND_MAX_FDS ? SEND_MAX_FDS : (uint32_t)n;
		}
		if (json_object_object_get_ex(caps, "max_data_xfer_size", &v) &&
		    json_object_is_type(v, json_type_int)) {
			int64_t n = json_object_get_int64(v);

			c->max_data_xfer = n < 4096 ? 4096
					   : n > TP_VU_MAX_DATA_XFER ? TP_VU_MAX_DATA_XFER
								     : (uint64_t)n;
		}
	}
	json_object_put(root);
}

int tp_client_version(struct tp_client *c, const char *caps_json)
{
	const char *caps = caps_json ? caps_json : QEMU_CAPS;
	uint32_t len = (uint32_t)(sizeof(struct tp_vu_version) + strlen(caps) + 1);
	uint8_t req[1024], rep[1024];
	struct tp_vu_version v = { .major = TP_VU_MAJOR, .minor = TP_VU_MINOR };
	struct tp_client_reply r = { .data = rep, .cap = sizeof(rep) - 1 };
	int rc;

	if (len > sizeof(req))
		return -E2BIG;
	memcpy(req, &v, sizeof(v));
	memcpy(req + sizeof(v), caps, strlen(caps) + 1);
	rc = tp_client_call(c, TP_VU_VERSION, req, len, NULL, 0, &r);
	close_fds(r.fds, r.nfds);
	if (rc)
		return rc;
	if (r.len < sizeof(v))
		return -EPROTO;
	memcpy(&v, rep, sizeof(v));
	if (v.major != TP_VU_MAJOR)
		return -EPROTONOSUPPORT;
	rep[r.len] = '\0';
	if (r.len > sizeof(v))
		parse_server_caps(c, (const char *)rep + sizeof(v), strlen((char *)rep + sizeof(v)));
	return 0;
}

/* ---- region access */

static int region_read_one(struct tp_client *c, uint32_t region, uint64_t off, uint8_t *buf,
			   uint32_t count)
{
	struct tp_vu_region_rw a = { .offset = off, .region = region, .count = count }, echo;
	struct tp_client_reply r = { .data = (uint8_t *)&echo, .cap = sizeof(echo), .tail = buf,
				     .tail_cap = count };
	int rc = tp_client_call(c, TP_VU_REGION_READ, &a, sizeof(a), NULL, 0, &r);

	close_fds(r.fds, r.nfds);
	if (rc)
		return rc;
	if (r.len != sizeof(a) + count || r.hdr.size != HDR_SIZE + sizeof(a) + count ||
	    echo.offset != off || echo.region != region || echo.count != count)
		return -EPROTO;
	return 0;
}

static int region_write_one(struct tp_client *c, uint32_t region, uint64_t off,
			    const uint8_t *buf, uint32_t count, bool posted)
{
	struct tp_vu_region_rw a = { .offset = off, .region = region, .count = count }, echo;
	struct iovec v[2] = { { &a, sizeof(a) }, { (void *)buf, count } };
	struct tp_client_reply r = { .data = (uint8_t *)&echo, .cap = sizeof(echo) };
	int rc = tp_client_callv(c, TP_VU_REGION_WRITE, v, 2, NULL, 0, posted, &r);

	close_fds(r.fds, r.nfds);
	if (rc || posted)
		return rc;
	/* The spec's reply echoes the request's offset, region and count. */
	if (r.len < sizeof(echo) || echo.region != region || echo.offset != off ||
	    echo.count != count)
		return -EPROTO;
	return 0;
}

int tp_client_region_read(struct tp_client *c, uint32_t region, uint64_t off, void *buf,
			  uint32_t count)
{
	uint8_t *p = buf;

	/* At least one message: a count of 0 is the server's to judge. */
	do {
		uint32_t n = (uint32_t)TP_MIN((uint64_t)count, c->max_data_xfer);
		int rc = region_read_one(c, region, off, p, n);

		if (rc)
			return rc;
		off += n;
		p += n;
		count -= n;
	} while (count);
	return 0;
}

int tp_client_region_write(struct tp_client *c, uint32_t region, uint64_t off,
			   const void *buf, uint32_t count, bool posted)
{
	const uint8_t *p = buf;

	do {
		uint32_t n = (uint32_t)TP_MIN((uint64_t)count, c->max_data_xfer);
		int rc = region_write_one(c, region, off, p, n, posted);

		if (rc)
			return rc;
		off += n;
		p += n;
		count -= n;
	} while (count);
	return 0;
}

int tp_client_region_info(struct tp_client *c, uint32_t index, struct tp_vu_region_info *info,
			  uint8_t *caps, uint32_t caps_cap, int *fd)
{
	uint32_t argsz = sizeof(*info);
	uint8_t rep[4096];
	int rc;

	*fd = -1;
	for (int tries = 0; tries < 2; tries++) {
		struct tp_vu_region_info req = { .argsz = argsz, .index = index };
		struct tp_client_reply r = { .data = rep, .cap = TP_MIN(argsz, (uint32_t)sizeof(rep)) };

		rc = tp_client_call(c, TP_VU_DEVICE_GET_REGION_INFO, &req, sizeof(req), NULL, 0, &r);
		if (rc || r.len < sizeof(*info)) {
			close_fds(r.fds, r.nfds);
			return rc ? rc : -EPROTO;
		}
		memcpy(info, rep, sizeof(*info));
		if (info->argsz <= argsz) {
			if (r.nfds)
				*fd = r.fds[0];
			close_fds(r.fds + 1, r.nfds ? r.nfds - 1 : 0);
			if (caps && r.len > sizeof(*info))
				memcpy(caps, rep + sizeof(*info),
				       TP_MIN(r.len - (uint32_t)sizeof(*info), caps_cap));
			return 0;
		}
		close_fds(r.fds, r.nfds);
		if (info->argsz > sizeof(rep))
			return -E2BIG;
		argsz = info->argsz;
	}
	return -EPROTO;
}
