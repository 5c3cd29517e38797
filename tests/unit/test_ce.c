/* SPDX-License-Identifier: MIT */
/*
 * The model's copy engine through the whole core, in one process: the model
 * backend under tp_device (identity IOMMU), guest memory from a memfd mapped
 * with DMA_MAP semantics, the engine programmed through trapped BAR0 writes,
 * interrupts taken from eventfds as QEMU would take them.
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include <thunderpass/log.h>

#include "device.h"

#define GUEST_IOVA 0x100000000ull
#define GUEST_SIZE (32ull << 20)
#define CE 0xf00000u

enum {
	R_SRC_LO = 0x10, R_SRC_HI = 0x14, R_DST_LO = 0x18, R_DST_HI = 0x1c, R_LEN = 0x20,
	R_FLAGS = 0x24, R_FENCE_LO = 0x28, R_FENCE_HI = 0x2c, R_FENCE_VALUE = 0x30,
	R_DOORBELL = 0x40, R_STATUS = 0x44, R_INTR_STATUS = 0x48, R_INTR_ENABLE = 0x4c,
	R_COMPLETED = 0x50, R_FAULT_LO = 0x54, R_FAULT_HI = 0x58, R_VECTOR = 0x5c,
};
#define F_SRC_VRAM 1u
#define F_DST_VRAM 2u
#define F_FENCE 0x10u
#define F_IRQ 0x20u

struct rig {
	struct tp_device dev;
	int memfd;
	uint8_t *guest; /* our view of guest memory */
	int efd;        /* the interrupt eventfd (MSI-X vector 0, MSI or INTx) */
};

static uint32_t ce_rd(struct rig *r, uint32_t reg)
{
	uint32_t v = 0;

	assert_int_equal(tp_device_region_read(&r->dev, 0, CE + reg, &v, 4), 0);
	return v;
}

static void ce_wr(struct rig *r, uint32_t reg, uint32_t v)
{
	assert_int_equal(tp_device_region_write(&r->dev, 0, CE + reg, &v, 4, true), 0);
}

static void set_irq(struct rig *r, uint32_t index)
{
	struct tp_vu_irq_set s = { sizeof(s), TP_VU_IRQ_DATA_EVENTFD | TP_VU_IRQ_ACTION_TRIGGER,
				   index, 0, 1 };
	int fd = dup(r->efd);

	assert_int_equal(tp_irqs_set(&r->dev.irqs, &s, NULL, 0, &fd, 1), 0);
}

static struct rig *rig_open(uint32_t irq_index)
{
	const struct tp_backend_type *t = tp_backend_find("model");
	struct tp_backend *be;
	struct rig *r = test_calloc(1, sizeof(*r));

	assert_non_null(t);
	assert_int_equal(t->create(NULL, 0, &be), 0);
	assert_int_equal(tp_device_open(&r->dev, be, "identity"), 0);
	r->memfd = memfd_create("guest", MFD_CLOEXEC);
	assert_true(r->memfd >= 0);
	assert_int_equal(ftruncate(r->memfd, GUEST_SIZE), 0);
	r->guest = mmap(NULL, GUEST_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, r->memfd, 0);
	assert_true(r->guest != MAP_FAILED);
	assert_int_equal(tp_device_dma_map(&r->dev, GUEST_IOVA, GUEST_SIZE, dup(r->memfd), 0,
					   TP_VU_DMA_READ_OK | TP_VU_DMA_WRITE_OK), 0);
	r->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	set_irq(r, irq_index);
	ce_wr(r, R_INTR_ENABLE, 3);
	return r;
}

static void rig_close(struct rig *r)
{
	tp_device_session_end(&r->dev);
	tp_device_close(&r->dev);
	munmap(r->guest, GUEST_SIZE);
	close(r->memfd);
	close(r->efd);
	test_free(r);
}

/* Waits for one interrupt; returns 1 if it came. */
static int wait_irq(struct rig *r, int ms)
{
	struct pollfd p = { .fd = r->efd, .events = POLLIN };
	uint64_t n;

	if (poll(&p, 1, ms) != 1)
		return 0;
	assert_int_equal(read(r->efd, &n, 8), 8);
	return 1;
}

static void job(struct rig *r, uint64_t src, uint64_t dst, uint32_t len, uint32_t flags,
		uint64_t fence, uint32_t value)
{
	ce_wr(r, R_SRC_LO, (uint32_t)src);
	ce_wr(r, R_SRC_HI, (uint32_t)(src >> 32));
	ce_wr(r, R_DST_LO, (uint32_t)dst);
	ce_wr(r, R_DST_HI, (uint32_t)(dst >> 32));
	ce_wr(r, R_LEN, len);
	ce_wr(r, R_FLAGS, flags);
	ce_wr(r, R_FENCE_LO, (uint32_t)fence);
	ce_wr(r, R_FENCE_HI, (uint32_t)(fence >> 32));
	ce_wr(r, R_FENCE_VALUE, value);
	ce_wr(r, R_DOORBELL, 1);
}

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)((i * 2654435761u + seed) >> 13);
}

static void test_round_trip(void **state)
{
	struct rig *r = rig_open(TP_IRQ_MSIX);
	const uint32_t len = 3u << 20;
	uint32_t *fence = (uint32_t *)(r->guest + 0x1000);

	fill(r->guest + 0x100000, len, 7);
	/* host -> VRAM */
	job(r, GUEST_IOVA + 0x100000, 0x40000, len, F_DST_VRAM | F_FENCE | F_IRQ,
	    GUEST_IOVA + 0x1000, 0x11);
	assert_true(wait_irq(r, 5000));
	assert_int_equal(*fence, 0x11);
	assert_int_equal(ce_rd(r, R_STATUS), 0);
	assert_int_equal(ce_rd(r, R_INTR_STATUS), 1);
	ce_wr(r, R_INTR_STATUS, 1);
	/* VRAM -> host, elsewhere */
	job(r, 0x40000, GUEST_IOVA + 0x800000, len, F_SRC_VRAM | F_FENCE | F_IRQ,
	    GUEST_IOVA + 0x1000, 0x22);
	assert_true(wait_irq(r, 5000));
	assert_int_equal(*fence, 0x22);
	assert_memory_equal(r->guest + 0x100000, r->guest + 0x800000, len);
	ce_wr(r, R_INTR_STATUS, 1);
	/* host -> host */
	job(r, GUEST_IOVA + 0x100000, GUEST_IOVA + 0x1000000, len, F_FENCE | F_IRQ,
	    GUEST_IOVA + 0x1000, 0x33);
	assert_true(wait_irq(r, 5000));
	assert_memory_equal(r->guest + 0x100000, r->guest + 0x1000000, len);
	assert_int_equal(ce_rd(r, R_COMPLETED), 3);
	assert_int_equal(r->dev.irqs.idx[TP_IRQ_MSIX].raised, 3);
	rig_close(r);
}

static void test_faults(void **state)
{
	struct rig *r = rig_open(TP_IRQ_MSIX);
	uint64_t nowhere = 0x7f0000000000ull;

	/* Source nowhere: error 1, fault address, ERROR interrupt. */
	job(r, nowhere, 0, 4096, F_DST_VRAM | F_IRQ, 0, 0);
	assert_true(wait_irq(r, 5000));
	assert_int_equal(ce_rd(r, R_STATUS) >> 8, 1);
	assert_int_equal(ce_rd(r, R_INTR_STATUS), 2);
	assert_int_equal(((uint64_t)ce_rd(r, R_FAULT_HI) << 32) | ce_rd(r, R_FAULT_LO), nowhere);
	ce_wr(r, R_INTR_STATUS, 3);
	/* Destination half outside guest memory: faults where memory ends. */
	job(r, 0, GUEST_IOVA + GUEST_SIZE - 4096, 8192, F_SRC_VRAM | F_IRQ, 0, 0);
	assert_true(wait_irq(r, 5000));
	assert_int_equal(ce_rd(r, R_STATUS) >> 8, 2);
	assert_int_equal(ce_rd(r, R_FAULT_LO), (uint32_t)(GUEST_IOVA + GUEST_SIZE));
	ce_wr(r, R_INTR_STATUS, 3);
	/* VRAM range past the aperture: refused before anything moves. */
	job(r, 0, (256u << 20) - 100, 4096, F_SRC_VRAM | F_DST_VRAM | F_IRQ, 0, 0);
	assert_true(wait_irq(r, 5000));
	assert_int_equal(ce_rd(r, R_STATUS) >> 8, 3);
	ce_wr(r, R_INTR_STATUS, 3);
	/* Fence nowhere. */
	job(r, 0, 4096, 16, F_SRC_VRAM | F_DST_VRAM | F_FENCE | F_IRQ, nowhere, 5);
	assert_true(wait_irq(r, 5000));
	assert_int_equal(ce_rd(r, R_STATUS) >> 8, 6);
	ce_wr(r, R_INTR_STATUS, 3);
	/* Bad flags, bad vector. */
	job(r, 0, 0, 16, 0x80000000u, 0, 0);
	assert_true(wait_irq(r, 5000));
	assert_int_equal(ce_rd(r, R_STATUS) >> 8, 5);
	ce_wr(r, R_INTR_STATUS, 3);
	assert_true(r->dev.dma_faults >= 3);
	/* And the engine still works. */
	job(r, 0, GUEST_IOVA, 4096, F_SRC_VRAM | F_IRQ, 0, 0);
	assert_true(wait_irq(r, 5000));
	assert_int_equal(ce_rd(r, R_STATUS), 0);
	rig_close(r);
}

/* INTx is a level: fires once, stays quiet until UNMASK, re-fires while up. */
static void test_intx_level(void **state)
{
	struct rig *r = rig_open(TP_IRQ_INTX);
	struct tp_vu_irq_set unmask = { sizeof(unmask),
					TP_VU_IRQ_DATA_NONE | TP_VU_IRQ_ACTION_UNMASK,
					TP_IRQ_INTX, 0, 1 };

	job(r, 0, 4096, 64, F_SRC_VRAM | F_DST_VRAM | F_IRQ, 0, 0);
	assert_true(wait_irq(r, 5000));
	/* Still asserted: the client's unmask (after EOI) fires it again. */
	assert_int_equal(tp_irqs_set(&r->dev.irqs, &unmask, NULL, 0, NULL, 0), 0);
	assert_true(wait_irq(r, 1000));
	/* The guest clears the status: the level drops; an unmask fires nothing. */
	ce_wr(r, R_INTR_STATUS, 1);
	assert_int_equal(tp_irqs_set(&r->dev.irqs, &unmask, NULL, 0, NULL, 0), 0);
	assert_false(wait_irq(r, 100));
	/* A second job while unmasked: fires. */
	job(r, 0, 4096, 64, F_SRC_VRAM | F_DST_VRAM | F_IRQ, 0, 0);
	assert_true(wait_irq(r, 5000));
	assert_int_equal(r->dev.irqs.idx[TP_IRQ_INTX].raised, 3);
	/* INTx disabled in the command register: no level. */
	ce_wr(r, R_INTR_STATUS, 1);
	assert_int_equal(tp_irqs_set(&r->dev.irqs, &unmask, NULL, 0, NULL, 0), 0);
	{
		uint16_t cmd = 0x0400;

		assert_int_equal(tp_device_region_write(&r->dev, TP_REGION_CONFIG, 4, &cmd, 2,
							false), 0);
	}
	job(r, 0, 4096, 64, F_SRC_VRAM | F_DST_VRAM | F_IRQ, 0, 0);
	assert_false(wait_irq(r, 200));
	rig_close(r);
}

/* The guest's memory goes (DMA_UNMAP, or the client dies) mid-copy: the
 * engine faults or is cancelled, and never touches the unmapped pages. */
static void test_unmap_during_copy(void **state)
{
	struct rig *r = rig_open(TP_IRQ_MSIX);

	for (int i = 0; i < 20; i++) {
		job(r, GUEST_IOVA, 0, (uint32_t)GUEST_SIZE, F_DST_VRAM | F_IRQ, 0, 0);
		if (i & 1)
			usleep(100 * (unsigned)i);
		assert_int_equal(tp_device_dma_unmap(&r->dev, GUEST_IOVA, GUEST_SIZE, false), 0);
		assert_true(wait_irq(r, 5000));
		assert_true((ce_rd(r, R_STATUS) >> 8) == 0 || (ce_rd(r, R_STATUS) >> 8) == 1);
		ce_wr(r, R_INTR_STATUS, 3);
		assert_int_equal(tp_device_dma_map(&r->dev, GUEST_IOVA, GUEST_SIZE, dup(r->memfd), 0,
						   TP_VU_DMA_READ_OK | TP_VU_DMA_WRITE_OK), 0);
	}
	/* Reset cancels a running job without an interrupt. */
	job(r, GUEST_IOVA, 0, (uint32_t)GUEST_SIZE, F_DST_VRAM | F_IRQ, 0, 0);
	assert_int_equal(tp_device_reset(&r->dev), 0);
	assert_int_equal(ce_rd(r, R_STATUS) & 1, 0);
	rig_close(r);
}

/* The client shrinks guest memory under a mapping (a hostile memfd): the
 * device's access faults; the server does not die of SIGBUS. */
static void test_truncated_guest_memory(void **state)
{
	struct rig *r = rig_open(TP_IRQ_MSIX);

	tp_dma_guard_install(); /* cmocka installs its own SIGBUS handler per test */
	assert_int_equal(ftruncate(r->memfd, 4096), 0);
	job(r, GUEST_IOVA + 0x100000, 0, 8192, F_DST_VRAM | F_IRQ, 0, 0);
	assert_true(wait_irq(r, 5000));
	assert_int_equal(ce_rd(r, R_STATUS) >> 8, 1);
	assert_int_equal(ce_rd(r, R_FAULT_LO), (uint32_t)(GUEST_IOVA + 0x100000));
	ce_wr(r, R_INTR_STATUS, 3);
	/* Memory that is still there still works. */
	job(r, 0, GUEST_IOVA, 1024, F_SRC_VRAM | F_IRQ, 0, 0);
	assert_true(wait_irq(r, 5000));
	assert_int_equal(ce_rd(r, R_STATUS), 0);
	rig_close(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_faults),
		cmocka_unit_test(test_intx_level),
		cmocka_unit_test(test_unmap_during_copy),
		cmocka_unit_test(test_truncated_guest_memory),
	};

	tp_log_set_level(TP_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
