/* SPDX-License-Identifier: MIT */
/*
 * thunderpass serve --pvdma-socket: the pvdma companion (docs/pvdma.md)
 * served from the same process as the managed device, by a second server on
 * its own socket and its own thread. Both stop together: the signal handler
 * stops both, and the companion's loop ending stops the managed device's.
 */
#ifndef THUNDERPASS_TOOLS_SERVE_PVDMA_H
#define THUNDERPASS_TOOLS_SERVE_PVDMA_H

#include <stddef.h>

#include <thunderpass/backend.h>
#include <thunderpass/server.h>

#include "../backends/pvdma/pvdma.h" /* the options and their help line */

struct tp_serve_pvdma;

/* Moves the pvdma-* options out of opts (*nopts shrinks) into out (at most
 * max); returns how many moved. */
size_t tp_serve_pvdma_split(struct tp_backend_opt *opts, size_t *nopts,
			    struct tp_backend_opt *out, size_t max);
/* Parses them now (errors logged), so bad ones stop `serve` before it opens
 * anything: 0 or -EINVAL. */
int tp_serve_pvdma_check(const struct tp_backend_opt *opts, size_t nopts);
/*
 * Creates the companion for managed's device on socket (permissions and
 * peer rules as in `like`) and starts its thread. Logs its errors.
 */
int tp_serve_pvdma_start(struct tp_server *managed, const char *socket,
			 const struct tp_server_opts *like, const struct tp_backend_opt *opts,
			 size_t nopts, struct tp_serve_pvdma **out);
/* Async-signal-safe: asks the companion's loop to end. */
void tp_serve_pvdma_stop(struct tp_serve_pvdma *c);
/* Stops it, waits for its thread, destroys it (its socket is removed).
 * Before the managed server is destroyed. NULL is fine. */
void tp_serve_pvdma_end(struct tp_serve_pvdma *c);

#endif
