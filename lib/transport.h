/* SPDX-License-Identifier: MIT */
/*
 * vfio-user framing over a UNIX stream socket: the listening socket, whole
 * messages received without blocking (with their SCM_RIGHTS fds), replies
 * sent with an fd attached.
 *
 * A connection owns one receive buffer of TP_VU_MAX_MSG bytes, allocated at
 * accept time: nothing on the message path allocates. A message whose header
 * claims more is refused before anything is allocated and its body is read
 * and thrown away, so the stream stays in step and the server keeps serving.
 *
 * Errors: -errno; EOF is -ECONNRESET. Logging is left to the caller, which
 * knows the device name.
 */
#ifndef TP_TRANSPORT_H
#define TP_TRANSPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <thunderpass/protocol.h>

/* Receive up to this many fds per message; more marks the message bad. */
#define TP_CONN_MAX_FDS 16

enum tp_msg_fault {
	TP_MSG_OK = 0,
	TP_MSG_OVERSIZED,   /* header.size > TP_VU_MAX_MSG: body discarded */
	TP_MSG_UNDERSIZED,  /* header.size < 16: treated as a bare header */
	TP_MSG_FDS_LOST,    /* more fds than we accept, or truncated control data */
};

struct tp_msg {
	struct tp_vu_hdr hdr;     /* as received (size may be bogus, see fault) */
	uint8_t *payload;         /* hdr.size - 16 bytes, inside the conn buffer */
	uint32_t len;             /* payload bytes actually held */
	int fds[TP_CONN_MAX_FDS]; /* owned by the message until taken */
	unsigned nfds;
	enum tp_msg_fault fault;
};

struct tp_conn {
	int fd;
	pid_t pid; /* peer credentials, from SO_PEERCRED */
	uid_t uid;
	gid_t gid;

	uint8_t *buf;        /* TP_VU_MAX_MSG bytes */
	uint32_t have;       /* bytes of the current message received */
	uint32_t want;       /* bytes the current message has (header first) */
	uint64_t discard;    /* bytes of an oversized body still to skip */
	struct tp_msg msg;   /* the message being assembled */
	bool fd_overflow;
};

/*
 * Creates, binds and listens on path with the given mode. The file appears
 * only once the socket listens (made under a temporary name, then linked), so
 * a client may connect the moment it sees it. Refuses a symlink or a
 * non-socket at path, and a socket some other process still listens on; a
 * stale socket (nothing listening) is replaced. Logs its errors as `who`.
 */
int tp_listen_unix(const char *path, mode_t mode, const char *who);

/* Accepts one client: non-blocking, close-on-exec, credentials read. */
int tp_conn_accept(int listen_fd, struct tp_conn *c);
/* Wraps an already connected socket (tests, socketpair). */
int tp_conn_init(struct tp_conn *c, int fd);
void tp_conn_close(struct tp_conn *c);

/*
 * Reads what the socket has. Returns 1 with *out set when a whole message is
 * there (valid until the next call), 0 when more bytes are needed, -ECONNRESET
 * on EOF, another -errno on a socket error. The caller must take or close the
 * message's fds (tp_msg_close_fds) before the next call.
 */
int tp_conn_recv(struct tp_conn *c, struct tp_msg **out);
void tp_msg_close_fds(struct tp_msg *m);

/*
 * Sends hdr + payload (one sendmsg; fds attached to the first byte). Waits
 * for room up to timeout_ms when the peer is slow; -ETIMEDOUT past it.
 */
int tp_conn_send(struct tp_conn *c, const struct tp_vu_hdr *hdr, const void *payload,
		 uint32_t len, const int *fds, unsigned nfds, int timeout_ms);

/* Blocking helpers for clients (tests, the proxy backend). */
int tp_sock_send_all(int fd, const void *buf, size_t len, const int *fds, unsigned nfds);
/* Receives exactly len bytes; fds that arrive are stored up to *nfds. */
int tp_sock_recv_all(int fd, void *buf, size_t len, int *fds, unsigned *nfds, int timeout_ms);

#endif
