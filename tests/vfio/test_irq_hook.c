/* SPDX-License-Identifier: MIT */
/*
 * The core's side of backends that take the client's eventfds themselves
 * (the vfio backend): after the core validated and recorded a SET_IRQS, the
 * backend's irq_set sees the core's own eventfds for the range (-1 for a
 * de-assigned vector), irq_set(index, 0, 0, NULL) when an index is disabled,
 * and irq_mask for MASK/UNMASK. -EOPNOTSUPP leaves the core routing; another
 * error is the client's answer. Messages go through tp_session_handle with a
 * minimal backend that records the calls.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cmocka.h>

#include <thunderpass/log.h>
#include <thunderpass/protocol.h>

#include "session.h"

struct rec_be {
	struct tp_backend be;
	uint8_t cfg[256];
	int irq_set_rc, irq_mask_rc;
	/* the last irq_set / irq_mask call */
	int sets, masks;
	uint32_t index, start, count;
	int fds[8];
	bool fds_null;
	int masked;
};

static struct rec_be *rec(struct tp_backend *be)
{
	return (struct rec_be *)be;
}

static int cfg_read(struct tp_backend *be, uint32_t off, void *buf, uint32_t len)
{
	memcpy(buf, rec(be)->cfg + off, len);
	return 0;
}

static int cfg_write(struct tp_backend *be, uint32_t off, const void *buf, uint32_t len)
{
	return 0;
}

static int region_info(struct tp_backend *be, uint32_t index, struct tp_region_desc *out)
{
	memset(out, 0, sizeof(*out));
	out->mmap_fd = -1;
	if (index == TP_REGION_CONFIG) {
		out->size = 256;
		out->readable = out->writable = 1;
	}
	return 0;
}

static int irq_count(struct tp_backend *be, uint32_t index, uint32_t *count)
{
	static const uint32_t n[TP_IRQ_INDEX_COUNT] = { 1, 1, 4, 0, 0 };

	*count = index < TP_IRQ_INDEX_COUNT ? n[index] : 0;
	return 0;
}

static int irq_set(struct tp_backend *be, uint32_t index, uint32_t start, uint32_t count,
		   const int *fds)
{
	struct rec_be *r = rec(be);

	r->sets++;
	r->index = index;
	r->start = start;
	r->count = count;
	r->fds_null = !fds;
	for (uint32_t i = 0; fds && i < count && i < 8; i++)
		r->fds[i] = fds[i];
	return r->irq_set_rc;
}

static int irq_mask(struct tp_backend *be, uint32_t index, uint32_t start, uint32_t count,
		    int masked)
{
	struct rec_be *r = rec(be);

	r->masks++;
	r->index = index;
	r->start = start;
	r->count = count;
	r->masked = masked;
	return r->irq_mask_rc;
}

static int reset(struct tp_backend *be)
{
	return 0;
}

static const struct tp_backend_ops rec_ops = {
	.name = "rec",
	.config_read = cfg_read,
	.config_write = cfg_write,
	.region_info = region_info,
	.irq_count = irq_count,
	.irq_set = irq_set,
	.irq_mask = irq_mask,
	.reset = reset,
};

struct fixture {
	struct rec_be be;
	struct tp_device dev;
	struct tp_session s;
	uint32_t last_error; /* of the last reply; 0: success */
	int replies;
};

static int on_send(void *ctx, const struct tp_vu_hdr *hdr, const void *payload, uint32_t len,
		   const int *fds, unsigned nfds)
{
	struct fixture *f = ctx;

	f->replies++;
	f->last_error = (hdr->flags & TP_VU_ERROR) ? hdr->error : 0;
	return 0;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	tp_log_set_level(TP_LOG_ERROR);
	f->be.be.ops = &rec_ops;
	snprintf(f->be.be.name, sizeof(f->be.be.name), "rec");
	f->be.cfg[0] = 0x34;
	f->be.cfg[1] = 0x12;
	f->be.irq_set_rc = f->be.irq_mask_rc = -EOPNOTSUPP;
	assert_int_equal(tp_device_open(&f->dev, &f->be.be, NULL), 0);
	assert_int_equal(tp_session_init(&f->s, &f->dev, on_send, f), 0);
	f->s.negotiated = true;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	tp_session_fini(&f->s);
	tp_device_close(&f->dev); /* closes the core's eventfds; rec_ops has no destroy */
	free(f);
	return 0;
}

/* SET_IRQS through the dispatcher; returns the reply's errno (0: success). */
static uint32_t set_irqs(struct fixture *f, uint32_t flags, uint32_t index, uint32_t start,
			 uint32_t count, const int *fds, unsigned nfds, int bool_byte)
{
	struct {
		struct tp_vu_irq_set s;
		uint8_t data[1];
	} p = { { sizeof(p.s) + (bool_byte >= 0 ? 1 : 0), flags, index, start, count },
		{ (uint8_t)(bool_byte > 0) } };
	uint32_t len = (uint32_t)sizeof(p.s) + (bool_byte >= 0 ? 1 : 0);
	struct tp_msg m = { .hdr = { .msg_id = 1, .command = TP_VU_DEVICE_SET_IRQS,
				     .size = 16 + len, .flags = TP_VU_TYPE_COMMAND },
			    .payload = (uint8_t *)&p, .len = len };

	for (unsigned i = 0; i < nfds; i++)
		m.fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 0);
	m.nfds = nfds;
	f->replies = 0;
	assert_int_equal(tp_session_handle(&f->s, &m), 0);
	assert_int_equal(f->replies, 1);
	return f->last_error;
}

#define EFD (TP_VU_IRQ_DATA_EVENTFD | TP_VU_IRQ_ACTION_TRIGGER)
#define NONE_TRIG (TP_VU_IRQ_DATA_NONE | TP_VU_IRQ_ACTION_TRIGGER)

static void test_eventfds_reach_the_backend(void **state)
{
	struct fixture *f = *state;
	int e[2] = { eventfd(0, EFD_CLOEXEC), eventfd(0, EFD_CLOEXEC) };
	const int *core;

	f->be.irq_set_rc = 0;
	assert_int_equal(set_irqs(f, EFD, TP_IRQ_MSIX, 1, 2, e, 2, -1), 0);
	assert_int_equal(f->be.sets, 1);
	assert_int_equal(f->be.index, TP_IRQ_MSIX);
	assert_int_equal(f->be.start, 1);
	assert_int_equal(f->be.count, 2);
	/* The core's own copies, open, and still the core's after the call. */
	core = f->dev.irqs.idx[TP_IRQ_MSIX].fds;
	assert_int_equal(f->be.fds[0], core[1]);
	assert_int_equal(f->be.fds[1], core[2]);
	assert_true(fcntl(core[1], F_GETFD) >= 0 && fcntl(core[2], F_GETFD) >= 0);
	/* De-assign vector 2: the backend sees -1 there. */
	assert_int_equal(set_irqs(f, EFD, TP_IRQ_MSIX, 2, 1, NULL, 0, -1), 0);
	assert_int_equal(f->be.sets, 2);
	assert_int_equal(f->be.fds[0], -1);
	/* Index off: count 0 and no fds. */
	assert_int_equal(set_irqs(f, NONE_TRIG, TP_IRQ_MSIX, 0, 0, NULL, 0, -1), 0);
	assert_int_equal(f->be.sets, 3);
	assert_int_equal(f->be.count, 0);
	assert_true(f->be.fds_null);
	/* A loopback trigger is the core's business. */
	assert_int_equal(set_irqs(f, NONE_TRIG, TP_IRQ_MSI, 0, 1, NULL, 0, -1), 0);
	assert_int_equal(f->be.sets, 3);
	close(e[0]);
	close(e[1]);
}

static void test_refusals(void **state)
{
	struct fixture *f = *state;
	int e = eventfd(0, EFD_CLOEXEC);

	/* Invalid for the core: the backend hears nothing. */
	f->be.irq_set_rc = 0;
	assert_int_equal(set_irqs(f, EFD, TP_IRQ_MSIX, 4, 1, &e, 1, -1), EINVAL);
	assert_int_equal(f->be.sets, 0);
	/* The backend's error is the client's answer; -EOPNOTSUPP is not. */
	f->be.irq_set_rc = -EIO;
	assert_int_equal(set_irqs(f, EFD, TP_IRQ_MSI, 0, 1, &e, 1, -1), EIO);
	f->be.irq_set_rc = -EOPNOTSUPP;
	assert_int_equal(set_irqs(f, EFD, TP_IRQ_MSI, 0, 1, &e, 1, -1), 0);
	assert_int_equal(f->be.sets, 2);
	close(e);
}

static void test_intx_mask_unmask(void **state)
{
	struct fixture *f = *state;
	int e = eventfd(0, EFD_CLOEXEC);

	f->be.irq_set_rc = f->be.irq_mask_rc = 0;
	assert_int_equal(set_irqs(f, EFD, TP_IRQ_INTX, 0, 1, &e, 1, -1), 0);
	assert_int_equal(set_irqs(f, TP_VU_IRQ_DATA_NONE | TP_VU_IRQ_ACTION_UNMASK, TP_IRQ_INTX, 0,
				  1, NULL, 0, -1), 0);
	assert_int_equal(f->be.masks, 1);
	assert_int_equal(f->be.masked, 0);
	assert_int_equal(set_irqs(f, TP_VU_IRQ_DATA_NONE | TP_VU_IRQ_ACTION_MASK, TP_IRQ_INTX, 0, 1,
				  NULL, 0, -1), 0);
	assert_int_equal(f->be.masks, 2);
	assert_int_equal(f->be.masked, 1);
	/* DATA_BOOL false: nothing to do; true: passed on. */
	assert_int_equal(set_irqs(f, TP_VU_IRQ_DATA_BOOL | TP_VU_IRQ_ACTION_UNMASK, TP_IRQ_INTX, 0,
				  1, NULL, 0, 0), 0);
	assert_int_equal(f->be.masks, 2);
	assert_int_equal(set_irqs(f, TP_VU_IRQ_DATA_BOOL | TP_VU_IRQ_ACTION_UNMASK, TP_IRQ_INTX, 0,
				  1, NULL, 0, 1), 0);
	assert_int_equal(f->be.masks, 3);
	f->be.irq_mask_rc = -EIO;
	assert_int_equal(set_irqs(f, TP_VU_IRQ_DATA_NONE | TP_VU_IRQ_ACTION_UNMASK, TP_IRQ_INTX, 0,
				  1, NULL, 0, -1), EIO);
	close(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_eventfds_reach_the_backend, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_intx_mask_unmask, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
