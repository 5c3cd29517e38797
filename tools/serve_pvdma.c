/* SPDX-License-Identifier: MIT */
/* thunderpass serve --pvdma-socket: the companion's server and thread. */
#include "serve_pvdma.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <thunderpass/log.h>

struct tp_serve_pvdma {
	struct tp_server *srv;     /* the companion's */
	struct tp_server *managed; /* stopped when the companion's loop ends */
	pthread_t thread;
	int rc;
};

size_t tp_serve_pvdma_split(struct tp_backend_opt *opts, size_t *nopts,
			    struct tp_backend_opt *out, size_t max)
{
	size_t keep = 0, moved = 0;

	for (size_t i = 0; i < *nopts; i++) {
		if (tp_pvdma_is_opt(opts[i].key) && moved < max)
			out[moved++] = opts[i];
		else
			opts[keep++] = opts[i];
	}
	*nopts = keep;
	return moved;
}

int tp_serve_pvdma_check(const struct tp_backend_opt *opts, size_t nopts)
{
	struct tp_pvdma_opts po;

	tp_pvdma_opts_default(&po);
	return tp_pvdma_parse_opts(opts, nopts, &po);
}

static const int own_faults[] = { SIGSYS, SIGBUS, SIGSEGV, SIGILL, SIGFPE, SIGABRT, SIGTRAP };

static void *companion_main(void *arg)
{
	struct tp_serve_pvdma *c = arg;
	sigset_t all;

	/* Signals belong to the main thread (its handler stops both loops),
	 * but not the ones this thread's own faults raise: blocked, they kill
	 * without a word (SIGSYS: the seccomp filter's report; SIGBUS: the
	 * guarded copy of guest memory). */
	sigfillset(&all);
	for (size_t i = 0; i < sizeof(own_faults) / sizeof(own_faults[0]); i++)
		sigdelset(&all, own_faults[i]);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	c->rc = tp_server_run(c->srv);
	/* Whatever ended this loop ends the managed device's too: a GPU whose
	 * guest cannot map DMA any more must not keep serving. */
	tp_server_stop(c->managed);
	return NULL;
}

int tp_serve_pvdma_start(struct tp_server *managed, const char *socket,
			 const struct tp_server_opts *like, const struct tp_backend_opt *opts,
			 size_t nopts, struct tp_serve_pvdma **out)
{
	struct tp_server_opts so = {
		.socket_path = socket,
		.socket_mode = like->socket_mode,
		.restrict_uid = like->restrict_uid,
		.allow_uid = like->allow_uid,
		.timer = tp_pvdma_timer,
	};
	struct tp_pvdma_opts po;
	struct tp_serve_pvdma *c;
	struct tp_backend *be;
	int rc;

	tp_pvdma_opts_default(&po);
	rc = tp_pvdma_parse_opts(opts, nopts, &po);
	if (rc)
		return rc;
	c = calloc(1, sizeof(*c));
	if (!c) {
		tp_err("pvdma", "out of memory");
		return -ENOMEM;
	}
	c->managed = managed;
	rc = tp_pvdma_create(tp_server_device(managed), &po, &be);
	if (rc) {
		free(c);
		return rc;
	}
	so.backend = be;
	so.timer_ctx = be;
	rc = tp_server_create(&so, &c->srv); /* owns be from here on */
	if (rc) {
		free(c);
		return rc;
	}
	rc = -pthread_create(&c->thread, NULL, companion_main, c);
	if (rc) {
		tp_err("pvdma", "cannot start the companion's thread: %s", strerror(-rc));
		tp_server_destroy(c->srv);
		free(c);
		return rc;
	}
	*out = c;
	return 0;
}

void tp_serve_pvdma_stop(struct tp_serve_pvdma *c)
{
	if (c)
		tp_server_stop(c->srv);
}

void tp_serve_pvdma_end(struct tp_serve_pvdma *c)
{
	if (!c)
		return;
	tp_server_stop(c->srv);
	pthread_join(c->thread, NULL);
	tp_server_destroy(c->srv);
	free(c);
}
