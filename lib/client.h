/* SPDX-License-Identifier: MIT */
/*
 * A small vfio-user client: the protocol tests drive the real server with it,
 * and the proxy backend (backends/proxy) speaks to other servers through it.
 * One request in flight at a time.
 *
 * Two modes. Blocking (the default): each call sends, then reads the socket
 * until its reply. Threaded (tp_client_start): a receive thread owns the
 * socket's read side; replies go to the caller waiting for them, and requests
 * the server sends on its own (DMA_READ/DMA_WRITE, interleaved with replies)
 * go to a hook. Calls, posts and replies may then come from any thread; each
 * message is sent whole under one lock, with a timeout.
 *
 * Errors: -errno. An error reply from the server gives -(its errno); a
 * connection that ended gives -ENOTCONN. Nothing here logs: callers know what
 * a failure means to them. Every byte from the server is checked.
 */
#ifndef TP_CLIENT_H
#define TP_CLIENT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include <thunderpass/protocol.h>

struct tp_client_async;

struct tp_client {
	int fd;
	uint16_t next_id;
	int timeout_ms;
	/* What the server announced in VERSION (defaults if it said nothing),
	 * clamped: max_msg_fds 1-16, max_data_xfer 4 KiB-1 MiB. */
	uint32_t max_msg_fds;
	uint64_t max_data_xfer;
	struct tp_client_async *async; /* NULL: blocking mode */
};

struct tp_client_reply {
	struct tp_vu_hdr hdr;
	uint8_t *data; /* caller's buffer */
	uint32_t cap;
	uint32_t len;  /* payload bytes received (into data, then tail) */
	int fds[4];
	unsigned nfds;
	/* Optional: payload bytes past cap go here (a reply's data lands in the
	 * caller's own buffer, with no allocation: received straight into it in
	 * blocking mode, copied once from the receive buffer in threaded mode). */
	uint8_t *tail;
	uint32_t tail_cap;
};

/* A command the server sent on its own (threaded mode). */
struct tp_client_msg {
	struct tp_vu_hdr hdr;
	uint32_t len;       /* payload bytes (hdr.size - 16, checked) */
	uint8_t payload[];
};

struct tp_client_hooks {
	/*
	 * A command from the server, on the receive thread: the hook owns m
	 * (free() it) and answers with tp_client_send_reply, from any thread,
	 * unless the command carries NO_REPLY. It must not wait for a reply of
	 * this client (the receive thread is the one that would deliver it).
	 * NULL: every command is refused with ENOTSUP.
	 */
	void (*request)(void *ctx, struct tp_client_msg *m);
	/* The connection ended (EOF, socket error, protocol violation): once,
	 * on the receive thread, after every waiting call was failed. */
	void (*dead)(void *ctx, int err);
};

int tp_client_connect(struct tp_client *c, const char *path, int timeout_ms);
void tp_client_close(struct tp_client *c);

/* VERSION with QEMU's capabilities (or caps_json when given). */
int tp_client_version(struct tp_client *c, const char *caps_json);

/*
 * Sends a command and waits for the reply with the same id. Payload bytes that
 * do not fit in r->cap are read and dropped (r->len says how many fit).
 * Returns 0, -(server errno) for an error reply, or a transport -errno.
 */
int tp_client_call(struct tp_client *c, uint16_t cmd, const void *payload, uint32_t len,
		   const int *fds, unsigned nfds, struct tp_client_reply *r);
/* Sends a command with NO_REPLY set. */
int tp_client_post(struct tp_client *c, uint16_t cmd, const void *payload, uint32_t len);

/* Raw access for tests: any bytes, any fds; then read one reply. */
int tp_client_send_raw(struct tp_client *c, const void *buf, uint32_t len, const int *fds,
		       unsigned nfds);
int tp_client_recv(struct tp_client *c, struct tp_client_reply *r);

/*
 * Threaded mode: starts the receive thread. From then on tp_client_recv and
 * tp_client_send_raw are refused (-EBUSY). tp_client_close stops the thread.
 */
int tp_client_start(struct tp_client *c, const struct tp_client_hooks *hooks, void *ctx);
/* Stops the receive thread (shuts the socket down); the fd stays open. */
void tp_client_stop(struct tp_client *c);
/* False once the connection ended (threaded mode; blocking mode: fd >= 0). */
bool tp_client_alive(const struct tp_client *c);
/* Replies to a command of the server: err 0 with payload, or an error. */
int tp_client_send_reply(struct tp_client *c, const struct tp_vu_hdr *req, int err,
			 const void *payload, uint32_t len);
/* Counters of the receive thread: replies nobody waited for (late, after a
 * timeout), commands received. */
void tp_client_counters(const struct tp_client *c, uint64_t *stray_replies,
			uint64_t *requests);

/* One message of up to 4 parts after the header (no copy); posted: NO_REPLY
 * set and r unused. */
int tp_client_callv(struct tp_client *c, uint16_t cmd, const struct iovec *iov, unsigned niov,
		    const int *fds, unsigned nfds, bool posted, struct tp_client_reply *r);

/* Without allocation; the reply's echo of offset/region/count is checked.
 * Transfers larger than max_data_xfer are split. */
int tp_client_region_read(struct tp_client *c, uint32_t region, uint64_t off, void *buf,
			  uint32_t count);
int tp_client_region_write(struct tp_client *c, uint32_t region, uint64_t off,
			   const void *buf, uint32_t count, bool posted);
/* GET_REGION_INFO, asking again with the argsz the server needs; *fd or -1. */
int tp_client_region_info(struct tp_client *c, uint32_t index, struct tp_vu_region_info *info,
			  uint8_t *caps, uint32_t caps_cap, int *fd);

#endif
