/* SPDX-License-Identifier: MIT */
/*
 * The stats control socket: PATH.ctl next to the server's socket PATH,
 * created and removed with it, with the same permissions and the same peer
 * rule (--allow-uid). Read-only: a client connects, the server writes one
 * JSON snapshot of its counters (schema "thunderpass-stats/1", docs/doctor.md)
 * and closes; the client sends nothing. Served from the server's poll loop,
 * so the counters it reads are never torn by the message thread; the
 * interrupt and DMA-fault counters other threads bump are read under their
 * locks.
 *
 * Errors: -errno, logged here with the device name.
 */
#ifndef TP_CONTROL_H
#define TP_CONTROL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "device.h"

#define TP_CONTROL_SUFFIX ".ctl"

struct tp_control;

/* What the server knows besides the device. */
struct tp_control_state {
	struct tp_device *dev;
	const char *socket_path;
	uint64_t started_ns; /* tp_now_ns() when the server started */
	bool have_client;
	pid_t client_pid;
	uint64_t client_since_ns; /* when the client connected */
	unsigned sessions;	  /* sessions ended so far */
	bool restrict_uid;	  /* the main socket's peer rule */
	uid_t allow_uid;
};

/* Listens on main_path + ".ctl" with mode. */
int tp_control_open(const char *main_path, mode_t mode, const char *who, struct tp_control **out);
int tp_control_fd(const struct tp_control *c);
/* Answers every client waiting on the socket with one snapshot. */
void tp_control_serve(struct tp_control *c, const struct tp_control_state *st);
/* Closes and removes the socket; NULL is fine. */
void tp_control_close(struct tp_control *c);

/* The snapshot as JSON text (malloc'd; NULL without memory). */
char *tp_control_snapshot(const struct tp_control_state *st);

#endif
