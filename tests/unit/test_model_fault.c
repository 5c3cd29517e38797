/* SPDX-License-Identifier: MIT */
/*
 * The model's injected faults (-o fault=NAME, backends/model/model_fault.c)
 * at the backend interface: what each makes config space, the BARs, the
 * regions and the copy engine do. tests/cli/test_doctor.py checks that
 * doctor catches each one; this checks the faults themselves.
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include <thunderpass/backend.h>
#include <thunderpass/log.h>

#include "device.h"

#define LNKSTA 0x8a /* PCIe capability at 0x78 + 0x12 */
#define CE 0xf00000u

static struct tp_backend *create(const char *fault)
{
	struct tp_backend_opt o = { "fault", fault };
	struct tp_backend *be = NULL;

	assert_int_equal(tp_backend_find("model")->create(&o, 1, &be), 0);
	return be;
}

static uint32_t cfg32(struct tp_backend *be, uint32_t off)
{
	uint32_t v = 0;

	assert_int_equal(be->ops->config_read(be, off, &v, 4), 0);
	return v;
}

static uint32_t bar32(struct tp_backend *be, uint32_t region, uint64_t off)
{
	uint32_t v = 0;

	assert_int_equal(be->ops->region_read(be, region, off, &v, 4), 0);
	return v;
}

static void test_none(void **state)
{
	struct tp_backend *be = create("none");
	struct tp_region_desc rd;

	assert_int_equal(cfg32(be, 0), 0x2b8510de);
	assert_int_equal(cfg32(be, 0x10), 0xa0000000);
	assert_int_equal(bar32(be, 0, 0), 0x1b2000a1);
	assert_int_equal(be->ops->region_info(be, 1, &rd), 0);
	assert_int_equal(rd.nr_areas, 1);
	be->ops->destroy(be);
}

static void test_unknown_fault(void **state)
{
	struct tp_backend_opt o = { "fault", "melted" };
	struct tp_backend *be = NULL;

	assert_int_equal(tp_backend_find("model")->create(&o, 1, &be), -EINVAL);
	assert_null(be);
}

static void test_off_bus(void **state)
{
	struct tp_backend *be = create("off-bus");
	struct tp_region_desc rd;
	uint32_t one = 1;

	assert_int_equal(cfg32(be, 0), 0xffffffff);
	assert_int_equal(cfg32(be, 0x78), 0xffffffff);
	assert_int_equal(bar32(be, 0, 0), 0xffffffff);
	assert_int_equal(bar32(be, 1, 0), 0xffffffff);
	assert_int_equal(bar32(be, 6, 0), 0xffffffff);
	/* Writes go nowhere, and mapped memory is not offered (it cannot read ~0). */
	assert_int_equal(be->ops->region_write(be, 1, 0, &one, 4), 0);
	assert_int_equal(bar32(be, 1, 0), 0xffffffff);
	assert_int_equal(be->ops->region_info(be, 1, &rd), 0);
	assert_int_equal(rd.nr_areas, 0);
	assert_int_equal(be->ops->region_info(be, 3, &rd), 0);
	assert_int_equal(rd.nr_areas, 0);
	be->ops->destroy(be);
}

static void test_bars_unassigned(void **state)
{
	struct tp_backend *be = create("bars-unassigned");
	struct tp_region_desc rd;

	assert_int_equal(cfg32(be, 0), 0x2b8510de);
	/* Address bits 0, type bits kept: BAR0 32-bit, BAR1/BAR3 64-bit prefetchable. */
	assert_int_equal(cfg32(be, 0x10), 0);
	assert_int_equal(cfg32(be, 0x14), 0xc);
	assert_int_equal(cfg32(be, 0x18), 0);
	assert_int_equal(cfg32(be, 0x1c), 0xc);
	assert_int_equal(cfg32(be, 0x30), 0);
	assert_int_equal(bar32(be, 0, 0), 0xffffffff);
	assert_int_equal(bar32(be, 0, 0xa00), 0xffffffff);
	assert_int_equal(be->ops->region_info(be, 1, &rd), 0);
	assert_int_equal(rd.nr_areas, 0);
	/* A reset puts back the host's (no) addresses. */
	assert_int_equal(be->ops->reset(be), 0);
	assert_int_equal(cfg32(be, 0x10), 0);
	be->ops->destroy(be);
}

static void test_link(void **state)
{
	struct tp_backend *be = create("link-x1-gen1");
	uint16_t sta = 0;

	assert_int_equal(be->ops->config_read(be, LNKSTA, &sta, 2), 0);
	assert_int_equal(sta & 0x3ff, 0x011); /* x1, 2.5 GT/s */
	assert_int_equal(be->ops->reset(be), 0);
	assert_int_equal(be->ops->config_read(be, LNKSTA, &sta, 2), 0);
	assert_int_equal(sta & 0x3ff, 0x011);
	be->ops->destroy(be);
}

static void test_no_flr_return(void **state)
{
	struct tp_backend *be = create("no-flr-return");
	uint16_t vendor = 0;
	uint8_t b = 0;

	assert_int_equal(cfg32(be, 0), 0x2b8510de);
	assert_int_equal(be->ops->reset(be), 0);
	/* CRS: vendor 0x0001, the rest all-ones, for good. */
	assert_int_equal(cfg32(be, 0), 0xffff0001);
	assert_int_equal(be->ops->config_read(be, 0, &vendor, 2), 0);
	assert_int_equal(vendor, 0x0001);
	assert_int_equal(be->ops->config_read(be, 1, &b, 1), 0);
	assert_int_equal(b, 0x00);
	assert_int_equal(cfg32(be, 8), 0xffffffff);
	assert_int_equal(bar32(be, 0, 0), 0xffffffff);
	assert_int_equal(be->ops->reset(be), 0);
	assert_int_equal(cfg32(be, 0), 0xffff0001);
	be->ops->destroy(be);
}

static void test_no_flr_return_devctl(void **state)
{
	struct tp_backend *be = create("no-flr-return");
	uint16_t flr = 0x8000;

	/* Initiate FLR from DevCtl (cap 0x78 + 8) kills it too. */
	assert_int_equal(be->ops->config_write(be, 0x80, &flr, 2), 0);
	assert_int_equal(cfg32(be, 0), 0xffff0001);
	be->ops->destroy(be);
}

/* The copy engine through the core, as in test_ce.c: one job with an IRQ. */
struct rig {
	struct tp_device dev;
	int memfd, efd;
};

static void rig_open(struct rig *r, const char *fault)
{
	struct tp_vu_irq_set s = { sizeof(s), TP_VU_IRQ_DATA_EVENTFD | TP_VU_IRQ_ACTION_TRIGGER,
				   TP_IRQ_MSIX, 0, 1 };
	int fd;

	assert_int_equal(tp_device_open(&r->dev, create(fault), "identity"), 0);
	r->memfd = memfd_create("guest", MFD_CLOEXEC);
	assert_int_equal(ftruncate(r->memfd, 1 << 20), 0);
	assert_int_equal(tp_device_dma_map(&r->dev, 0x100000000ull, 1 << 20, dup(r->memfd), 0,
					   TP_VU_DMA_READ_OK | TP_VU_DMA_WRITE_OK),
			 0);
	r->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	fd = dup(r->efd);
	assert_int_equal(tp_irqs_set(&r->dev.irqs, &s, NULL, 0, &fd, 1), 0);
}

static void ce_wr(struct rig *r, uint32_t reg, uint32_t v)
{
	assert_int_equal(tp_device_region_write(&r->dev, 0, CE + reg, &v, 4, true), 0);
}

static uint32_t ce_rd(struct rig *r, uint32_t reg)
{
	uint32_t v = 0;

	assert_int_equal(tp_device_region_read(&r->dev, 0, CE + reg, &v, 4), 0);
	return v;
}

/* guest memory -> VRAM, 4 KiB, interrupt on completion; returns CE_STATUS. */
static uint32_t job(struct rig *r, int *irq)
{
	struct pollfd p = { .fd = r->efd, .events = POLLIN };
	uint64_t n;

	ce_wr(r, 0x4c, 3); /* INTR_ENABLE */
	ce_wr(r, 0x10, 0); /* SRC */
	ce_wr(r, 0x14, 1);
	ce_wr(r, 0x18, 0); /* DST: VRAM 0 */
	ce_wr(r, 0x1c, 0);
	ce_wr(r, 0x20, 4096);
	ce_wr(r, 0x24, 0x2 | 0x20); /* DST_VRAM | IRQ */
	ce_wr(r, 0x40, 1);
	*irq = poll(&p, 1, 300) == 1 && read(r->efd, &n, 8) == 8;
	for (int i = 0; i < 500 && (ce_rd(r, 0x44) & 1); i++)
		usleep(1000);
	return ce_rd(r, 0x44);
}

static void rig_close(struct rig *r)
{
	tp_device_session_end(&r->dev);
	tp_device_close(&r->dev);
	close(r->memfd);
	close(r->efd);
}

static void test_dma_broken(void **state)
{
	struct rig r;
	int irq;

	rig_open(&r, "dma-broken");
	assert_int_equal(job(&r, &irq) >> 8, 1); /* source fault */
	assert_true(irq);			 /* the ERROR interrupt still comes */
	assert_int_equal(ce_rd(&r, 0x54), 0);
	assert_int_equal(ce_rd(&r, 0x58), 1); /* at the job's first address */
	assert_int_equal(ce_rd(&r, 0x48), 2); /* INTR_STATUS: ERROR */
	rig_close(&r);
}

static void test_no_irq(void **state)
{
	struct rig r;
	int irq;

	rig_open(&r, "no-irq");
	assert_int_equal(job(&r, &irq), 0); /* done, no error */
	assert_false(irq);
	assert_int_equal(ce_rd(&r, 0x48), 1); /* DONE is set, nobody was told */
	assert_int_equal(ce_rd(&r, 0x50), 1);
	assert_int_equal(r.dev.irqs.idx[TP_IRQ_MSIX].raised, 0);
	rig_close(&r);
}

static void test_healthy_engine(void **state)
{
	struct rig r;
	int irq;

	rig_open(&r, "none");
	assert_int_equal(job(&r, &irq), 0);
	assert_true(irq);
	rig_close(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_none),
		cmocka_unit_test(test_unknown_fault),
		cmocka_unit_test(test_off_bus),
		cmocka_unit_test(test_bars_unassigned),
		cmocka_unit_test(test_link),
		cmocka_unit_test(test_no_flr_return),
		cmocka_unit_test(test_no_flr_return_devctl),
		cmocka_unit_test(test_dma_broken),
		cmocka_unit_test(test_no_irq),
		cmocka_unit_test(test_healthy_engine),
	};

	tp_log_set_level(TP_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
