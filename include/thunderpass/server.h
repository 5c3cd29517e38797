/* SPDX-License-Identifier: MIT */
/*
 * The thunderpass server: one device, served to one vfio-user client at a
 * time on a UNIX socket. A second client is answered with EBUSY and closed.
 * When a client goes away the device is reset, its DMA mappings and eventfds
 * dropped, and the next client is accepted.
 *
 * Errors: -errno, logged where decided.
 */
#ifndef THUNDERPASS_SERVER_H
#define THUNDERPASS_SERVER_H

#include <stdbool.h>
#include <sys/types.h>

#include <thunderpass/backend.h>

struct tp_server;

struct tp_server_opts {
	const char *socket_path;
	mode_t socket_mode;     /* default 0600 when 0 */
	struct tp_backend *backend; /* owned by the server from create() on */
	bool once;              /* exit after the first client leaves */
	const char *iommu;      /* IOMMU model: "identity" (default) or "dart" */
	bool restrict_uid;      /* only allow_uid (and root) may connect */
	uid_t allow_uid;
	const char *record_path; /* record every client message here (fuzz seeds) */
	/*
	 * Optional: a duty of the backend that must run even when no client
	 * speaks (pvdma's lazy unmap). Called on the serving thread before each
	 * poll with the monotonic time (tp_now_ns); returns when it wants to be
	 * called again (0: no deadline), and the poll wakes up by then.
	 */
	uint64_t (*timer)(void *ctx, uint64_t now_ns);
	void *timer_ctx;
};

int tp_server_create(const struct tp_server_opts *opts, struct tp_server **out);
/* Serves until tp_server_stop() (or, with once, the first client's end). */
int tp_server_run(struct tp_server *s);
/* Async-signal-safe: may be called from a signal handler. */
void tp_server_stop(struct tp_server *s);
/* Closes the client, resets the device, removes the socket file. */
void tp_server_destroy(struct tp_server *s);

/*
 * Internal (lib/device.h): the server's device, for a companion served next
 * to it (pvdma) that maps into its IOMMU. Valid until tp_server_destroy.
 */
struct tp_device;
struct tp_device *tp_server_device(struct tp_server *s);

#endif
