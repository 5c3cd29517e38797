/* SPDX-License-Identifier: MIT */
/*
 * A small blocking vfio-user client: the protocol tests drive the real server
 * with it, and the proxy backend will speak to other servers through it.
 * One request in flight at a time.
 *
 * Errors: -errno. An error reply from the server gives -(its errno).
 * Nothing here logs: callers know what a failure means to them.
 */
#ifndef TP_CLIENT_H
#define TP_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include <thunderpass/protocol.h>

struct tp_client {
	int fd;
	uint16_t next_id;
	int timeout_ms;
	/* What the server announced in VERSION (defaults if it said nothing). */
	uint32_t max_msg_fds;
	uint64_t max_data_xfer;
};

struct tp_client_reply {
	struct tp_vu_hdr hdr;
	uint8_t *data; /* caller's buffer */
	uint32_t cap;
	uint32_t len;  /* payload bytes received */
	int fds[4];
	unsigned nfds;
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

int tp_client_region_read(struct tp_client *c, uint32_t region, uint64_t off, void *buf,
			  uint32_t count);
int tp_client_region_write(struct tp_client *c, uint32_t region, uint64_t off,
			   const void *buf, uint32_t count, bool posted);
/* GET_REGION_INFO, asking again with the argsz the server needs; *fd or -1. */
int tp_client_region_info(struct tp_client *c, uint32_t index, struct tp_vu_region_info *info,
			  uint8_t *caps, uint32_t caps_cap, int *fd);

#endif
