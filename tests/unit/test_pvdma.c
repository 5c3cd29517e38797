/* SPDX-License-Identifier: MIT */
/*
 * The pvdma companion through the whole core, in one process, as QEMU and
 * the guest module would drive it: the model GPU under tp_device with the
 * dart IOMMU model, guest memory from a memfd (DMA_MAP semantics), the
 * companion under its own tp_device bound to the GPU's, its ring in the
 * mapped BAR2, doorbell and CONTROL through trapped BAR0 writes, completions
 * read back from the ring, MSI-X from an eventfd. And the end-to-end path:
 * the model's copy engine reaching guest memory through the DART device
 * addresses the companion returned.
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

#include "../../backends/pvdma/pvdma.h"
#include "device.h"
#include "fake_backend.h"
#include "util.h"

#define GUEST_IOVA 0x100000000ull
#define GUEST_SIZE (32ull << 20)
#define KiB (1ull << 10)
#define MiB (1ull << 20)
#define CE 0xf00000u
#define PENDING PVDMA_STATUS_PENDING

enum {
	R_SRC_LO = 0x10, R_SRC_HI = 0x14, R_DST_LO = 0x18, R_DST_HI = 0x1c, R_LEN = 0x20,
	R_FLAGS = 0x24, R_FENCE_LO = 0x28, R_FENCE_HI = 0x2c, R_FENCE_VALUE = 0x30,
	R_DOORBELL = 0x40, R_STATUS = 0x44, R_INTR_STATUS = 0x48, R_INTR_ENABLE = 0x4c,
	R_FAULT_LO = 0x54,
};
#define F_FENCE 0x10u
#define F_IRQ 0x20u

struct rig {
	struct tp_device gpu, comp;
	struct tp_backend *pv;
	int memfd;
	uint8_t *guest;
	uint8_t *bar2;
	struct pvdma_ring_header *hdr;
	struct pvdma_entry *ring;
	int gpu_efd, comp_efd;
	uint32_t prod;
};

static void set_irq(struct tp_device *d, int efd)
{
	struct tp_vu_irq_set s = { sizeof(s), TP_VU_IRQ_DATA_EVENTFD | TP_VU_IRQ_ACTION_TRIGGER,
				   TP_IRQ_MSIX, 0, 1 };
	int fd = dup(efd);

	assert_int_equal(tp_irqs_set(&d->irqs, &s, NULL, 0, &fd, 1), 0);
}

static int wait_irq(int efd, int ms)
{
	struct pollfd p = { .fd = efd, .events = POLLIN };
	uint64_t n;

	if (poll(&p, 1, ms) != 1)
		return 0;
	assert_int_equal(read(efd, &n, 8), 8);
	return 1;
}

static uint32_t reg(struct rig *r, uint32_t off)
{
	uint32_t v = 0;

	assert_int_equal(tp_device_region_read(&r->comp, 0, off, &v, 4), 0);
	return v;
}

static void reg_wr(struct rig *r, uint32_t off, uint32_t v)
{
	assert_int_equal(tp_device_region_write(&r->comp, 0, off, &v, 4, false), 0);
}

static void ce_wr(struct rig *r, uint32_t off, uint32_t v)
{
	assert_int_equal(tp_device_region_write(&r->gpu, 0, CE + off, &v, 4, false), 0);
}

static uint32_t ce_rd(struct rig *r, uint32_t off)
{
	uint32_t v = 0;

	assert_int_equal(tp_device_region_read(&r->gpu, 0, CE + off, &v, 4), 0);
	return v;
}

static void guest_map(struct rig *r)
{
	assert_int_equal(tp_device_dma_map(&r->gpu, GUEST_IOVA, GUEST_SIZE, dup(r->memfd), 0,
					   TP_VU_DMA_READ_OK | TP_VU_DMA_WRITE_OK), 0);
}

/* opts: pvdma-* options (NULL: defaults). */
static struct rig *rig_open(const struct tp_backend_opt *opts, size_t nopts)
{
	const struct tp_backend_type *t = tp_backend_find("model");
	struct rig *r = test_calloc(1, sizeof(*r));
	struct tp_pvdma_opts po;
	struct tp_backend *be;

	assert_int_equal(t->create(NULL, 0, &be), 0);
	assert_int_equal(tp_device_open(&r->gpu, be, "dart"), 0);
	r->memfd = memfd_create("guest", MFD_CLOEXEC);
	assert_int_equal(ftruncate(r->memfd, GUEST_SIZE), 0);
	r->guest = mmap(NULL, GUEST_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, r->memfd, 0);
	assert_true(r->guest != MAP_FAILED);
	guest_map(r);
	tp_pvdma_opts_default(&po);
	assert_int_equal(tp_pvdma_parse_opts(opts, nopts, &po), 0);
	assert_int_equal(tp_pvdma_create(&r->gpu, &po, &r->pv), 0);
	assert_int_equal(tp_device_open(&r->comp, r->pv, NULL), 0);
	/* The client maps BAR2 from the region's fd, as QEMU does. */
	assert_true(r->comp.regions[2].nr_areas == 1);
	r->bar2 = mmap(NULL, PVDMA_BAR2_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		       r->comp.regions[2].d.mmap_fd, 0);
	assert_true(r->bar2 != MAP_FAILED);
	r->hdr = (struct pvdma_ring_header *)r->bar2;
	r->ring = (struct pvdma_entry *)(r->bar2 + PVDMA_RING_HEADER);
	r->gpu_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	r->comp_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	set_irq(&r->gpu, r->gpu_efd);
	set_irq(&r->comp, r->comp_efd);
	ce_wr(r, R_INTR_ENABLE, 3);
	reg_wr(r, PVDMA_REG_CONTROL, PVDMA_CONTROL_ENABLE);
	return r;
}

static void rig_close(struct rig *r)
{
	/* The companion goes first: it maps into the GPU's IOMMU. */
	tp_device_session_end(&r->comp);
	assert_int_equal(r->gpu.iommu->st.live, 0); /* its reset unmapped everything */
	tp_device_close(&r->comp);
	assert_null(r->gpu.dma_gone);
	tp_device_session_end(&r->gpu);
	tp_device_close(&r->gpu);
	munmap(r->bar2, PVDMA_BAR2_SIZE);
	munmap(r->guest, GUEST_SIZE);
	close(r->memfd);
	close(r->gpu_efd);
	close(r->comp_efd);
	test_free(r);
}

static struct pvdma_entry *slot(struct rig *r, uint32_t index)
{
	return &r->ring[index % PVDMA_RING_ENTRIES];
}

/* Queues an entry (not yet rung); returns its index. */
static uint32_t put(struct rig *r, uint32_t op, uint64_t gpa, uint64_t len, uint32_t dir,
		    uint64_t handle)
{
	struct pvdma_entry *e = slot(r, r->prod);

	*e = (struct pvdma_entry){ .op = op, .status = PENDING, .cookie = 0xc00c1e, .gpa = gpa,
				   .len = len, .dir = dir, .handle = handle };
	return r->prod++;
}

static void ring(struct rig *r)
{
	r->hdr->producer = r->prod;
	reg_wr(r, PVDMA_REG_DOORBELL, r->prod);
}

/* One MAP, rung alone; the entry it answered in. */
static struct pvdma_entry *map1(struct rig *r, uint64_t gpa, uint64_t len, uint32_t dir)
{
	uint32_t i = put(r, PVDMA_OP_MAP, gpa, len, dir, 0);

	ring(r);
	return slot(r, i);
}

static uint32_t unmap1(struct rig *r, uint64_t handle)
{
	uint32_t i = put(r, PVDMA_OP_UNMAP, 0, 0, 0, handle);

	ring(r);
	return slot(r, i)->status;
}

static void test_registers(void **state)
{
	struct rig *r = rig_open(NULL, 0);
	uint8_t cfg[64];
	uint64_t q = 0;

	assert_int_equal(reg(r, PVDMA_REG_ID), PVDMA_ID_VALUE);
	assert_int_equal(reg(r, PVDMA_REG_VERSION), 1);
	assert_int_equal(reg(r, PVDMA_REG_MANAGED_ID), 0x10de | 0x2b85u << 16);
	assert_int_equal(reg(r, PVDMA_REG_MANAGED_DEVFN), 0);
	assert_int_equal(reg(r, PVDMA_REG_RING_ENTRIES), 8192);
	assert_int_equal(reg(r, PVDMA_REG_GRANULE), 16384);
	assert_int_equal(reg(r, PVDMA_REG_WINDOW), 262144);
	assert_int_equal(reg(r, PVDMA_REG_MAX_MAPPED_MB), 1536);
	assert_int_equal(reg(r, PVDMA_REG_MAX_MAPPINGS), 65536);
	assert_int_equal(reg(r, PVDMA_REG_CONTROL), PVDMA_CONTROL_ENABLE);
	assert_int_equal(reg(r, PVDMA_REG_DOORBELL), 0);
	/* An 8-byte read is two registers. */
	assert_int_equal(tp_device_region_read(&r->comp, 0, PVDMA_REG_ID, &q, 8), 0);
	assert_int_equal(q, PVDMA_ID_VALUE | (uint64_t)PVDMA_VERSION_VALUE << 32);
	/* Config space as the guest sees it. */
	assert_int_equal(tp_device_region_read(&r->comp, TP_REGION_CONFIG, 0, cfg, 64), 0);
	assert_int_equal(tp_le_get(cfg, 2), 0x7470);
	assert_int_equal(tp_le_get(cfg + 2, 2), 0x0001);
	assert_int_equal(tp_le_get(cfg + 9, 3), 0x088000);
	assert_int_equal(cfg[0x3d], 0); /* no INTx */
	assert_true(r->comp.cfg.cap_msix != 0);
	assert_true(r->comp.cfg.cap_pcie != 0);
	assert_int_equal(r->comp.irqs.idx[TP_IRQ_MSIX].count, 1);
	assert_int_equal(r->comp.irqs.idx[TP_IRQ_INTX].count, 0);
	assert_int_equal(r->comp.regions[0].d.size, 4096);
	assert_int_equal(r->comp.regions[2].d.size, 1u << 20);
	assert_true(r->comp.cfg.bar_is_64[2] && r->comp.cfg.bar_prefetch[2]);
	/* A second companion for the same device is refused. */
	{
		struct tp_pvdma_opts po;
		struct tp_backend *be2;

		tp_pvdma_opts_default(&po);
		assert_int_equal(tp_pvdma_create(&r->gpu, &po, &be2), -EBUSY);
	}
	rig_close(r);
}

static void test_batch(void **state)
{
	struct rig *r = rig_open(NULL, 0);
	uint32_t first = r->prod;
	uint64_t dva0;

	/* 16 buffers in one window, 16 in the next: one doorbell. */
	for (unsigned i = 0; i < 32; i++)
		put(r, PVDMA_OP_MAP, GUEST_IOVA + i * 16 * KiB, 4096, 3, 0);
	ring(r);
	assert_int_equal(reg(r, PVDMA_REG_CONSUMER), 32);
	dva0 = slot(r, first)->dva;
	for (unsigned i = 0; i < 32; i++) {
		struct pvdma_entry *e = slot(r, first + i);

		assert_int_equal(e->status, 0);
		assert_int_equal(e->cookie, 0xc00c1e); /* never touched */
		if (i < 16)
			assert_int_equal(e->dva, dva0 + i * 16 * KiB);
		assert_true(e->handle != 0);
	}
	assert_int_equal(dva0 % (256 * KiB), 0);
	assert_int_equal(reg(r, PVDMA_REG_STAT_REQUESTS), 32);
	assert_int_equal(reg(r, PVDMA_REG_STAT_MAPS), 32);
	assert_int_equal(reg(r, PVDMA_REG_STAT_WINDOWS), 2);
	assert_int_equal(reg(r, PVDMA_REG_STAT_BYTES_LO), 512 * KiB);
	assert_int_equal(reg(r, PVDMA_REG_STAT_BYTES_HI), 0);
	assert_int_equal(r->gpu.iommu->st.live, 2);
	/* Unmap them all in one batch: the windows stay, lazily. */
	for (unsigned i = 0; i < 32; i++)
		put(r, PVDMA_OP_UNMAP, 0, 0, 0, slot(r, first + i)->handle);
	ring(r);
	for (unsigned i = 0; i < 32; i++)
		assert_int_equal(slot(r, first + 32 + i)->status, 0);
	assert_int_equal(reg(r, PVDMA_REG_STAT_UNMAPS), 32);
	assert_int_equal(reg(r, PVDMA_REG_STAT_LAZY), 2);
	assert_int_equal(reg(r, PVDMA_REG_STAT_ERRORS), 0);
	assert_false(wait_irq(r->comp_efd, 0)); /* no delayed completion, no IRQ_ALL */
	/* The timer, once their time has come (even with no doorbell). */
	assert_int_equal(tp_pvdma_timer(r->pv, tp_now_ns() + 1000000000ull), 0);
	assert_int_equal(reg(r, PVDMA_REG_STAT_LAZY), 0);
	assert_int_equal(reg(r, PVDMA_REG_STAT_WINDOWS), 0);
	assert_int_equal(r->gpu.iommu->st.live, 0);
	/* IRQ_ALL: an interrupt per batch. */
	reg_wr(r, PVDMA_REG_CONTROL, PVDMA_CONTROL_ENABLE | PVDMA_CONTROL_IRQ_ALL);
	put(r, PVDMA_OP_NOP, 0, 0, 0, 0);
	ring(r);
	assert_true(wait_irq(r->comp_efd, 1000));
	rig_close(r);
}

static void copy_job(struct rig *r, uint64_t src, uint64_t dst, uint32_t len, uint64_t fence,
		     uint32_t value)
{
	ce_wr(r, R_SRC_LO, (uint32_t)src);
	ce_wr(r, R_SRC_HI, (uint32_t)(src >> 32));
	ce_wr(r, R_DST_LO, (uint32_t)dst);
	ce_wr(r, R_DST_HI, (uint32_t)(dst >> 32));
	ce_wr(r, R_LEN, len);
	ce_wr(r, R_FLAGS, (fence ? F_FENCE : 0) | F_IRQ);
	ce_wr(r, R_FENCE_LO, (uint32_t)fence);
	ce_wr(r, R_FENCE_HI, (uint32_t)(fence >> 32));
	ce_wr(r, R_FENCE_VALUE, value);
	ce_wr(r, R_DOORBELL, 1);
	assert_true(wait_irq(r->gpu_efd, 5000));
}

/* The guest's path: device addresses from the ring, used by the GPU. */
static void test_copy_engine_through_dart(void **state)
{
	struct rig *r = rig_open(NULL, 0);
	const uint32_t len = 3 * MiB + 4096;
	uint64_t src_gpa = GUEST_IOVA + 2 * MiB + 0x1000, dst_gpa = GUEST_IOVA + 16 * MiB;
	uint64_t fence_gpa = GUEST_IOVA + 0x3c0; /* a small buffer: a window */
	struct pvdma_entry *src, *dst, *fence;
	uint64_t src_dva, dst_dva, fence_dva, h;

	for (uint32_t i = 0; i < len; i++)
		r->guest[src_gpa - GUEST_IOVA + i] = (uint8_t)(i * 2654435761u >> 13);
	/* Guest physical addresses mean nothing to the DART. */
	ce_wr(r, R_INTR_STATUS, 3);
	copy_job(r, src_gpa, dst_gpa, 4096, 0, 0);
	assert_int_equal(ce_rd(r, R_STATUS) >> 8, 1);
	ce_wr(r, R_INTR_STATUS, 3);
	src = map1(r, src_gpa, len, PVDMA_DIR_DEV_READS);
	dst = map1(r, dst_gpa, len, PVDMA_DIR_DEV_WRITES);
	fence = map1(r, fence_gpa, 4, PVDMA_DIR_DEV_WRITES);
	assert_int_equal(src->status, 0);
	assert_int_equal(dst->status, 0);
	assert_int_equal(fence->status, 0);
	src_dva = src->dva;
	dst_dva = dst->dva;
	fence_dva = fence->dva;
	assert_int_equal(dst_dva % (2 * MiB), 0); /* 16 MiB-aligned gpa: 2 MiB dva */
	assert_int_equal(src_dva & 0x3fff, 0x1000); /* its offset in the 16 KiB page */
	copy_job(r, src_dva, dst_dva, len, fence_dva, 0x5a5a);
	assert_int_equal(ce_rd(r, R_STATUS), 0);
	assert_memory_equal(r->guest + (src_gpa - GUEST_IOVA), r->guest + (dst_gpa - GUEST_IOVA),
			    len);
	assert_int_equal(*(uint32_t *)(r->guest + (fence_gpa - GUEST_IOVA)), 0x5a5a);
	ce_wr(r, R_INTR_STATUS, 3);
	/* Direction: the source was mapped for device reads only. */
	copy_job(r, fence_dva, src_dva, 4, 0, 0);
	assert_int_equal(ce_rd(r, R_STATUS) >> 8, 2);
	ce_wr(r, R_INTR_STATUS, 3);
	/* Unmapped (a mapping of its own goes at once): the device faults. */
	h = dst->handle;
	assert_int_equal(unmap1(r, h), 0);
	copy_job(r, src_dva, dst_dva, 4096, 0, 0);
	assert_int_equal(ce_rd(r, R_STATUS) >> 8, 2);
	assert_int_equal(ce_rd(r, R_FAULT_LO), (uint32_t)dst_dva);
	ce_wr(r, R_INTR_STATUS, 3);
	assert_true(r->gpu.dma_faults >= 3);
	rig_close(r);
}

static void test_hostile_ring(void **state)
{
	struct rig *r = rig_open(NULL, 0);
	static const struct {
		uint32_t op;
		uint64_t gpa, len;
		uint32_t dir, align;
		uint64_t handle;
		uint32_t want;
	} cases[] = {
		{ 0, GUEST_IOVA, 4096, 3, 0, 0, TP_PV_BAD_OP },
		{ 99, GUEST_IOVA, 4096, 3, 0, 0, TP_PV_BAD_OP },
		{ 0xffffffffu, GUEST_IOVA, 4096, 3, 0, 0, TP_PV_BAD_OP },
		{ PVDMA_OP_MAP, GUEST_IOVA, 4096, 0, 0, 0, TP_PV_BAD_OP },
		{ PVDMA_OP_MAP, GUEST_IOVA, 4096, 8, 0, 0, TP_PV_BAD_OP },
		{ PVDMA_OP_MAP, GUEST_IOVA, 0, 3, 0, 0, TP_PV_BAD_RANGE },
		{ PVDMA_OP_MAP, ~0ull - 100, 4096, 3, 0, 0, TP_PV_BAD_RANGE },
		{ PVDMA_OP_MAP, GUEST_IOVA, ~0ull, 3, 0, 0, TP_PV_BAD_RANGE },
		{ PVDMA_OP_MAP, 0x1000, 4096, 3, 0, 0, TP_PV_BAD_RANGE },
		{ PVDMA_OP_MAP, GUEST_IOVA + GUEST_SIZE - 4096, 8192, 3, 0, 0, TP_PV_BAD_RANGE },
		{ PVDMA_OP_MAP, GUEST_IOVA + 0x200, 4096, 3, 12, 0, TP_PV_NOT_ALIGNED },
		{ PVDMA_OP_MAP, GUEST_IOVA, 4096, 3, 99, 0, TP_PV_NOT_ALIGNED },
		{ PVDMA_OP_UNMAP, 0, 0, 0, 0, 0, TP_PV_BAD_HANDLE },
		{ PVDMA_OP_UNMAP, 0, 0, 0, 0, 0x100000001ull, TP_PV_BAD_HANDLE },
		{ PVDMA_OP_UNMAP, 0, 0, 0, 0, ~0ull, TP_PV_BAD_HANDLE },
		{ PVDMA_OP_NOP, 0, 0, 0, 0, 0, TP_PV_OK },
	};
	const unsigned n = sizeof(cases) / sizeof(cases[0]);
	uint32_t first = r->prod;

	for (unsigned i = 0; i < n; i++) {
		put(r, cases[i].op, cases[i].gpa, cases[i].len, cases[i].dir, cases[i].handle);
		slot(r, first + i)->align = cases[i].align;
	}
	ring(r);
	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(slot(r, first + i)->status, cases[i].want);
		assert_int_equal(slot(r, first + i)->handle, 0);
		assert_int_equal(slot(r, first + i)->dva, 0);
	}
	assert_int_equal(reg(r, PVDMA_REG_STAT_ERRORS), n - 1);
	assert_int_equal(reg(r, PVDMA_REG_STAT_REQUESTS), n - 1); /* NOPs do not count */
	assert_int_equal(reg(r, PVDMA_REG_CONSUMER), r->prod);
	assert_int_equal(r->gpu.iommu->st.live, 0);
	/* Producer jumps: more than RING_ENTRIES outstanding, or backwards. */
	put(r, PVDMA_OP_MAP, GUEST_IOVA, 4096, 3, 0);
	reg_wr(r, PVDMA_REG_DOORBELL, r->prod + PVDMA_RING_ENTRIES);
	reg_wr(r, PVDMA_REG_DOORBELL, r->prod - 2);
	reg_wr(r, PVDMA_REG_DOORBELL, 0x80000000u);
	assert_int_equal(slot(r, r->prod - 1)->status, PENDING);
	assert_int_equal(reg(r, PVDMA_REG_CONSUMER), r->prod - 1);
	ring(r);
	assert_int_equal(slot(r, r->prod - 1)->status, 0);
	/* A whole ring's worth in one doorbell, past the slot wrap. */
	for (unsigned i = 0; i < PVDMA_RING_ENTRIES; i++)
		put(r, i % 2 ? PVDMA_OP_NOP : PVDMA_OP_MAP, GUEST_IOVA + (i % 64) * 4096, 4096,
		    3, 0);
	ring(r);
	assert_int_equal(reg(r, PVDMA_REG_CONSUMER), r->prod);
	for (unsigned i = 0; i < PVDMA_RING_ENTRIES; i++)
		assert_int_equal(slot(r, i)->status, 0);
	assert_int_equal(reg(r, PVDMA_REG_STAT_WINDOWS), 1);
	/* Disabled: the ring is ignored (and everything was unmapped). */
	reg_wr(r, PVDMA_REG_CONTROL, 0);
	assert_int_equal(r->gpu.iommu->st.live, 0);
	put(r, PVDMA_OP_MAP, GUEST_IOVA, 4096, 3, 0);
	ring(r);
	assert_int_equal(slot(r, r->prod - 1)->status, PENDING);
	/* Odd accesses to BAR0 are refused or dropped, never crash. */
	{
		uint8_t b = 0xff;
		uint16_t w = 0;

		assert_int_equal(tp_device_region_write(&r->comp, 0, PVDMA_REG_CONTROL, &b, 1,
							false), 0);
		assert_int_equal(reg(r, PVDMA_REG_CONTROL), 0);
		assert_int_equal(tp_device_region_read(&r->comp, 0, PVDMA_REG_ID + 2, &w, 2), 0);
		assert_int_equal(w, PVDMA_ID_VALUE >> 16);
		assert_true(tp_device_region_read(&r->comp, 0, PVDMA_REG_ID + 1, &w, 2) < 0);
		assert_true(tp_device_region_write(&r->comp, 0, 4095, &w, 2, false) < 0);
	}
	rig_close(r);
}

static void test_backpressure(void **state)
{
	static const struct tp_backend_opt opts[] = {
		{ "pvdma-max-mapped", "1M" }, { "pvdma-lazy-ms", "0" },
	};
	struct rig *r = rig_open(opts, 2);
	uint32_t first = r->prod, wait_i, nop_i;
	uint64_t h[4];

	assert_int_equal(reg(r, PVDMA_REG_MAX_MAPPED_MB), 1);
	for (unsigned i = 0; i < 4; i++)
		put(r, PVDMA_OP_MAP, GUEST_IOVA + i * 256 * KiB, 4096, 3, 0);
	wait_i = put(r, PVDMA_OP_MAP, GUEST_IOVA + 4 * MiB, 4096, 3, 0);
	nop_i = put(r, PVDMA_OP_NOP, 0, 0, 0, 0);
	put(r, PVDMA_OP_MAP, GUEST_IOVA + 8 * MiB, 2 * MiB, 3, 0); /* never fits: CAP */
	ring(r);
	for (unsigned i = 0; i < 4; i++)
		h[i] = slot(r, first + i)->handle;
	/* The MAP waits; later entries complete around it. */
	assert_int_equal(slot(r, wait_i)->status, PENDING);
	assert_int_equal(slot(r, nop_i)->status, 0);
	assert_int_equal(slot(r, nop_i + 1)->status, TP_PV_CAP);
	assert_int_equal(reg(r, PVDMA_REG_CONSUMER), wait_i);
	assert_int_equal(reg(r, PVDMA_REG_STAT_DELAYED), 1);
	assert_false(wait_irq(r->comp_efd, 0));
	assert_true(r->gpu.iommu->st.bytes <= 1 * MiB);
	/* Room frees: it completes, with an interrupt. */
	assert_int_equal(unmap1(r, h[0]), 0);
	assert_int_equal(slot(r, wait_i)->status, 0);
	assert_true(wait_irq(r->comp_efd, 1000));
	assert_int_equal(reg(r, PVDMA_REG_CONSUMER), r->prod);
	/* Its device address works. */
	{
		uint64_t dva = slot(r, wait_i)->dva, iova, contig;

		assert_int_equal(r->gpu.iommu->ops->translate(r->gpu.iommu, dva, 4096,
							      TP_VU_DMA_WRITE_OK, &iova,
							      &contig), 0);
		assert_int_equal(iova, GUEST_IOVA + 4 * MiB);
	}
	/* A waiter when the guest disables the ring: DISABLED, interrupt. */
	wait_i = put(r, PVDMA_OP_MAP, GUEST_IOVA + 12 * MiB, 4096, 3, 0);
	ring(r);
	assert_int_equal(slot(r, wait_i)->status, PENDING);
	reg_wr(r, PVDMA_REG_CONTROL, 0);
	assert_int_equal(slot(r, wait_i)->status, TP_PV_DISABLED);
	assert_true(wait_irq(r->comp_efd, 1000));
	assert_int_equal(r->gpu.iommu->st.live, 0);
	assert_int_equal(reg(r, PVDMA_REG_STAT_WINDOWS), 0);
	/* Enabled again: a fresh ring at 0, the old handles dead. */
	reg_wr(r, PVDMA_REG_CONTROL, PVDMA_CONTROL_ENABLE);
	assert_int_equal(reg(r, PVDMA_REG_CONSUMER), 0);
	assert_int_equal(reg(r, PVDMA_REG_STAT_REQUESTS), 0);
	r->prod = 0;
	assert_int_equal(unmap1(r, h[1]), TP_PV_BAD_HANDLE);
	rig_close(r);
}

static void test_guest_memory_gone(void **state)
{
	struct rig *r = rig_open(NULL, 0);
	struct pvdma_entry *e = map1(r, GUEST_IOVA + MiB, 8192, 3);
	uint64_t h = e->handle;

	assert_int_equal(e->status, 0);
	map1(r, GUEST_IOVA + 4 * MiB, 3 * MiB, 3);
	assert_int_equal(reg(r, PVDMA_REG_STAT_WINDOWS), 2);
	/* The client unmaps the guest's memory: nothing may point into it. */
	assert_int_equal(tp_device_dma_unmap(&r->gpu, GUEST_IOVA, GUEST_SIZE, false), 0);
	assert_int_equal(r->gpu.iommu->st.live, 0);
	assert_int_equal(reg(r, PVDMA_REG_STAT_WINDOWS), 0);
	assert_int_equal(reg(r, PVDMA_REG_STAT_BYTES_LO), 0);
	assert_int_equal(unmap1(r, h), TP_PV_BAD_HANDLE);
	assert_int_equal(map1(r, GUEST_IOVA + MiB, 8192, 3)->status, TP_PV_BAD_RANGE);
	/* It comes back: maps work again. */
	guest_map(r);
	assert_int_equal(map1(r, GUEST_IOVA + MiB, 8192, 3)->status, 0);
	/* The GPU's client leaves: everything goes, the companion's too. */
	tp_device_session_end(&r->gpu);
	assert_int_equal(reg(r, PVDMA_REG_STAT_WINDOWS), 0);
	assert_int_equal(r->gpu.iommu->st.live, 0);
	rig_close(r);
}

static void test_reset(void **state)
{
	struct rig *r = rig_open(NULL, 0);

	assert_int_equal(map1(r, GUEST_IOVA, 4096, 3)->status, 0);
	assert_int_equal(r->gpu.iommu->st.live, 1);
	/* DEVICE_RESET (QEMU sends one on every system reset). */
	assert_int_equal(tp_device_reset(&r->comp), 0);
	assert_int_equal(r->gpu.iommu->st.live, 0);
	assert_int_equal(reg(r, PVDMA_REG_CONTROL), 0);
	assert_int_equal(r->hdr->producer, 0);
	rig_close(r);
}

/* TOKEN: the managed device's serial number, found behind a hidden AER. */
static void test_token(void **state)
{
	struct fake_be *fb = test_calloc(1, sizeof(*fb));
	struct tp_device dev, comp;
	struct tp_pvdma_opts po;
	struct tp_backend *be;
	uint32_t v[2];

	assert_int_equal(fake_be_init(fb, NULL), 0);
	assert_int_equal(tp_device_open(&dev, &fb->be, "dart"), 0);
	tp_pvdma_opts_default(&po);
	assert_int_equal(tp_pvdma_create(&dev, &po, &be), 0);
	assert_int_equal(tp_device_open(&comp, be, NULL), 0);
	assert_int_equal(tp_device_region_read(&comp, 0, PVDMA_REG_TOKEN_LO, v, 8), 0);
	assert_int_equal(v[0], 0x89abcdef);
	assert_int_equal(v[1], 0x01234567);
	assert_int_equal(tp_device_region_read(&comp, 0, PVDMA_REG_MANAGED_ID, v, 4), 0);
	assert_int_equal(v[0], FAKE_VENDOR | FAKE_DEVICE << 16);
	tp_device_close(&comp);
	tp_device_close(&dev);
	test_free(fb);
}

static void test_options(void **state)
{
	struct tp_pvdma_opts o;
	static const struct tp_backend_opt good[] = {
		{ "pvdma-id", "1234:abcd" }, { "pvdma-window", "512K" },
		{ "pvdma-lazy-ms", "5" }, { "pvdma-lazy-max", "16M" },
		{ "pvdma-max-mapped", "512M" }, { "pvdma-max-mappings", "1000" },
	};
	static const struct tp_backend_opt bad[][1] = {
		{ { "pvdma-id", "ffff:0001" } }, { { "pvdma-id", "12345:1" } },
		{ { "pvdma-window", "96K" } }, { { "pvdma-window", "8K" } },
		{ { "pvdma-lazy-ms", "-1" } }, { { "pvdma-max-mapped", "1000K" } },
		{ { "pvdma-max-mappings", "0" } }, { { "pvdma-nope", "1" } },
		{ { "pvdma-id", NULL } },
	};

	tp_pvdma_opts_default(&o);
	assert_int_equal(tp_pvdma_parse_opts(good, 6, &o), 0);
	assert_int_equal(o.vendor, 0x1234);
	assert_int_equal(o.device, 0xabcd);
	assert_int_equal(o.policy.window, 512 * KiB);
	assert_int_equal(o.policy.lazy_ns, 5000000);
	assert_int_equal(o.policy.lazy_max, 16 * MiB);
	assert_int_equal(o.policy.max_bytes, 512 * MiB);
	assert_int_equal(o.policy.max_mappings, 1000);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		tp_pvdma_opts_default(&o);
		assert_int_equal(tp_pvdma_parse_opts(bad[i], 1, &o), -EINVAL);
	}
	assert_true(tp_pvdma_is_opt("pvdma-window"));
	assert_false(tp_pvdma_is_opt("vram"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_registers),
		cmocka_unit_test(test_batch),
		cmocka_unit_test(test_copy_engine_through_dart),
		cmocka_unit_test(test_hostile_ring),
		cmocka_unit_test(test_backpressure),
		cmocka_unit_test(test_guest_memory_gone),
		cmocka_unit_test(test_reset),
		cmocka_unit_test(test_token),
		cmocka_unit_test(test_options),
	};

	tp_log_set_level(TP_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
