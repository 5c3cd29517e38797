/* SPDX-License-Identifier: MIT */
/*
 * One client's session with a device: version negotiation, then every command
 * checked and dispatched from a table. Transport-agnostic: replies leave
 * through a send callback, so the same code serves the socket, the tests and
 * the fuzzers' in-memory transport.
 *
 * Every byte of a message is hostile: sizes are checked against the message
 * length before any field is read, offsets with saturating arithmetic, and
 * every rejection is an error reply carrying an errno. Nothing a client
 * sends can end the session except a failure to send the reply.
 *
 * Errors: handlers return -errno, which becomes the error reply; logged once
 * (as a warning, rate-limited) where decided.
 */
#ifndef TP_SESSION_H
#define TP_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "device.h"
#include "transport.h"

typedef int (*tp_send_fn)(void *ctx, const struct tp_vu_hdr *hdr, const void *payload,
			  uint32_t len, const int *fds, unsigned nfds);

struct tp_client_caps {
	uint32_t max_msg_fds;
	uint64_t max_data_xfer;
	uint64_t pgsizes;
	uint32_t max_dma_maps;
	bool write_multiple;
};

struct tp_session {
	struct tp_device *dev;
	tp_send_fn send;
	void *send_ctx;
	bool negotiated;
	struct tp_client_caps client;
	uint8_t *reply; /* TP_VU_MAX_MSG bytes */
	uint64_t msgs, errors, posted_errors;
	uint64_t warnings; /* rate limit for hostile-message warnings */
};

int tp_session_init(struct tp_session *s, struct tp_device *dev, tp_send_fn send, void *ctx);
void tp_session_fini(struct tp_session *s);

/*
 * Handles one message (its fds are taken or closed). Returns 0, or -errno
 * when the reply could not be sent: the connection is then dead.
 */
int tp_session_handle(struct tp_session *s, struct tp_msg *m);

/* version.c */
/* Parses the client's VERSION payload (major, minor, JSON). */
int tp_version_parse(const uint8_t *payload, uint32_t len, struct tp_client_caps *out,
		     const char *who);
/*
 * Writes our VERSION reply payload into out, no longer than max bytes (the
 * client refuses a reply larger than its request): full capabilities if they
 * fit, fewer if not. Returns the payload length.
 */
int tp_version_reply(uint8_t *out, uint32_t max);

#endif
