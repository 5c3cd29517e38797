/* SPDX-License-Identifier: MIT */
/*
 * A backend wrapper for fault injection: it forwards every op to an inner
 * backend (the model, the fake) and makes the fail_at-th call, counted over
 * every op but destroy, return err instead (-ENOMEM, -EIO, -EAGAIN), logging
 * it once as a backend must ("fault injection: ..."). The inner backend sees
 * the core's host services (interrupts, DMA) as if it were alone.
 *
 * Ops the inner backend lacks stay absent; ops this wrapper does not know (a
 * newer backend.h) are absent too, so a new op shows up as untested rather
 * than as a crash.
 */
#ifndef TP_TEST_FAULTY_BACKEND_H
#define TP_TEST_FAULTY_BACKEND_H

#include <stdint.h>

#include <thunderpass/backend.h>

struct faulty_be {
	struct tp_backend be; /* hand &f->be to tp_device_open */
	struct tp_backend_ops ops;
	struct tp_backend *inner;
	uint64_t calls;      /* ops called so far */
	uint64_t fail_at;    /* 0: none */
	int err;             /* negative errno */
	uint64_t injected;   /* failures returned */
	const char *last_op; /* the op that failed last */
};

/* Wraps inner (owned from here: destroyed with the wrapper). */
void faulty_be_init(struct faulty_be *f, struct tp_backend *inner, uint64_t fail_at, int err);

#endif
