/* SPDX-License-Identifier: MIT */
/*
 * The darwin backend's DMA and interrupts against the stand-in: the dext's
 * policy on its own (caps, handles, config filter, the arm/fire protocol
 * under two racing threads), DMA maps with one or many segments, the
 * "darwin" IOMMU model (what pvdma uses) with its refusals, retries and
 * caps (the stand-in's DART records a "panic" if PrepareForDMA is ever
 * reached past them), and the whole path: the model GPU's copy engine
 * DMAing through the fake DART into guest memory mapped by the core, its
 * interrupt coming back through the IRQ page and the notification thread
 * to the core's eventfd.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <thunderpass/log.h>

#include "../../backends/model/model.h"
#include "TPDextPolicy.h"
#include "device.h"
#include "rig.h"

#define P TP_DUC_PAGE
#define RW (TP_VU_DMA_READ_OK | TP_VU_DMA_WRITE_OK)

/* ---- the policy alone ---------------------------------------------------------- */

static uint32_t crs_left;
static uint32_t fake_id(void *ctx)
{
	(void)ctx;
	return crs_left && crs_left-- ? 0xffff0001u : 0x2b8510deu;
}

static void fake_sleep(void *ctx, uint32_t ms)
{
	(void)ctx;
	(void)ms;
}

static void test_policy(void **state)
{
	const uint32_t flags[6] = { TP_DUC_BAR_PRESENT,
				    TP_DUC_BAR_PRESENT | TP_DUC_BAR_MEM64 | TP_DUC_BAR_PREFETCH,
				    TP_DUC_BAR_UPPER, TP_DUC_BAR_PRESENT | TP_DUC_BAR_IO, 0, 0 };
	uint32_t next[4], gen[4], slot, s2, waited;
	uint64_t len[4], h, h2;
	struct tp_dxp_dma d;
	struct tp_duc_dma_map_in in = { .va = 4 * P, .len = P, .dir = TP_DUC_DMA_DEV_READS };
	struct tp_duc_seg segs[3] = { { 0x1000000, P }, { 0x3000000, 2 * P }, { 0, 0 } };

	(void)state;
	/* Config writes: Command only. */
	assert_true(tp_dxp_cfg_write_allowed(4, 2));
	assert_true(tp_dxp_cfg_write_allowed(4, 1));
	assert_true(tp_dxp_cfg_write_allowed(5, 1));
	assert_false(tp_dxp_cfg_write_allowed(4, 4));
	assert_false(tp_dxp_cfg_write_allowed(6, 2));
	assert_false(tp_dxp_cfg_write_allowed(0x10, 4));
	assert_false(tp_dxp_cfg_write_allowed(0x30, 4));
	assert_false(tp_dxp_cfg_write_allowed(0x100, 4));
	assert_true(tp_dxp_cfg_access_ok(4096, 0xffc, 4));
	assert_false(tp_dxp_cfg_access_ok(256, 0x100, 4));
	assert_false(tp_dxp_cfg_access_ok(4096, 2, 4));
	/* BARs read as type bits, whatever the raw register holds. */
	assert_int_equal(tp_dxp_cfg_read_fixup(0x10, 4, 0xa0000000, flags), 0);
	assert_int_equal(tp_dxp_cfg_read_fixup(0x14, 4, 0xffffffff, flags), 0xc);
	assert_int_equal(tp_dxp_cfg_read_fixup(0x14, 1, 0xff, flags), 0xc);
	assert_int_equal(tp_dxp_cfg_read_fixup(0x15, 1, 0xff, flags), 0);
	assert_int_equal(tp_dxp_cfg_read_fixup(0x18, 4, 0x60, flags), 0);
	assert_int_equal(tp_dxp_cfg_read_fixup(0x1c, 2, 0xffff, flags), 1);
	assert_int_equal(tp_dxp_cfg_read_fixup(0x0c, 4, 0x12345678, flags), 0x12345678);
	assert_int_equal(tp_dxp_msi_vectors(0x0000), 1);
	assert_int_equal(tp_dxp_msi_vectors(0x000a), 32);
	assert_int_equal(tp_dxp_msi_vectors(0x000e), 32);
	assert_int_equal(tp_dxp_msix_vectors(0x8008), 9);
	assert_int_equal(tp_dxp_msix_vectors(0x07ff), 2048);
	/* Reset: GB202 ids, CRS tolerated, a device that never answers times out. */
	assert_true(tp_dxp_no_flr(0x10de, 0x2b85) && tp_dxp_no_flr(0x10de, 0x2b87) &&
		    tp_dxp_no_flr(0x10de, 0x2b8c));
	assert_false(tp_dxp_no_flr(0x10de, 0x2684) || tp_dxp_no_flr(0x1002, 0x2b85));
	crs_left = 3;
	assert_int_equal(tp_dxp_reset_wait(NULL, fake_id, fake_sleep, 1000, 10, &waited), TP_DXP_OK);
	assert_int_equal(waited, 30);
	crs_left = 1000;
	assert_int_equal(tp_dxp_reset_wait(NULL, fake_id, fake_sleep, 100, 10, &waited),
			 TP_DXP_TIMEOUT);
	assert_int_equal(waited, 100);
	assert_false(tp_dxp_dev_back(0xffffffff));
	/* DMA arguments, then caps, counted. */
	tp_dxp_dma_init(&d, next, gen, len, 4, 4 * P);
	assert_int_equal(tp_dxp_dma_check(&d, &in), TP_DXP_OK);
	in.va = 4 * P + 4096;
	assert_int_equal(tp_dxp_dma_check(&d, &in), TP_DXP_BADARG);
	in.va = 4 * P, in.dir = 4;
	assert_int_equal(tp_dxp_dma_check(&d, &in), TP_DXP_BADARG);
	in.dir = 0;
	assert_int_equal(tp_dxp_dma_check(&d, &in), TP_DXP_BADARG);
	in.dir = 3, in.reserved = 1;
	assert_int_equal(tp_dxp_dma_check(&d, &in), TP_DXP_BADARG);
	in.reserved = 0, in.va = UINT64_MAX & ~(uint64_t)(P - 1);
	assert_int_equal(tp_dxp_dma_check(&d, &in), TP_DXP_BADARG);
	in.va = 0, in.len = 5 * P;
	assert_int_equal(tp_dxp_dma_check(&d, &in), TP_DXP_NOSPACE);
	assert_int_equal(d.refused_caps, 1);
	in.len = P;
	/* Handles: live, stale after unmap, never 0. */
	h = tp_dxp_slot_take(&d, P, &slot);
	assert_true(h && (uint32_t)h == slot + 1);
	assert_int_equal(tp_dxp_slot_find(&d, h, &s2), TP_DXP_OK);
	tp_dxp_slot_put(&d, slot);
	assert_int_equal(tp_dxp_slot_find(&d, h, &s2), TP_DXP_NOTFOUND);
	h2 = tp_dxp_slot_take(&d, P, &s2);
	assert_int_equal(s2, slot);
	assert_true(h2 != h);
	assert_int_equal(tp_dxp_slot_find(&d, 0, &s2), TP_DXP_NOTFOUND);
	assert_int_equal(tp_dxp_slot_find(&d, 5, &s2), TP_DXP_NOTFOUND);
	for (int i = 0; i < 3; i++)
		tp_dxp_slot_take(&d, P, &s2);
	assert_int_equal(tp_dxp_dma_check(&d, &in), TP_DXP_NOSPACE); /* 4 mappings */
	/* PrepareForDMA's answer. */
	assert_int_equal(tp_dxp_segs_check(segs, 2, 3 * P), TP_DXP_OK);
	assert_int_equal(tp_dxp_segs_check(segs, 2, 4 * P), TP_DXP_IOERROR);
	assert_int_equal(tp_dxp_segs_check(segs, 3, 3 * P), TP_DXP_IOERROR);
	assert_int_equal(tp_dxp_segs_check(segs, 0, 0), TP_DXP_IOERROR);
	assert_int_equal(tp_dxp_segs_check(segs, 33, 3 * P), TP_DXP_IOERROR);
	segs[0].addr = UINT64_MAX;
	assert_int_equal(tp_dxp_segs_check(segs, 2, 3 * P), TP_DXP_IOERROR);
}

/* The arm/fire protocol with two real threads: no lost wakeup, no double
 * completion, every fired vector delivered. */
#define RACE_FIRES 200000
#define RACE_VECTORS 70

struct race {
	struct tp_duc_irq_page page;
	void *volatile armed;
	int done;
	uint8_t fired[RACE_VECTORS];
	uint32_t *completed; /* per token */
};

static void *race_fire(void *arg)
{
	struct race *r = arg;
	unsigned seed = 7;

	for (int i = 0; i < RACE_FIRES; i++) {
		uint32_t v = (uint32_t)rand_r(&seed) % RACE_VECTORS;
		void *a;

		r->fired[v] = 1;
		a = tp_dxp_irq_fire(&r->page, &r->armed, v);
		if (a)
			__atomic_add_fetch(&r->completed[(uintptr_t)a], 1, __ATOMIC_SEQ_CST);
	}
	__atomic_store_n(&r->done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

static void test_irq_race(void **state)
{
	struct race *r = calloc(1, sizeof(*r));
	uint64_t delivered[2] = { 0, 0 };
	uintptr_t token = 1;
	pthread_t t;

	(void)state;
	r->completed = calloc(RACE_FIRES + 2, sizeof(uint32_t));
	assert_non_null(r->completed);
	assert_int_equal(pthread_create(&t, NULL, race_fire, r), 0);
	for (;; token++) {
		void *prev = NULL, *now;
		bool finished = false;

		assert_true(token <= RACE_FIRES + 1);
		now = tp_dxp_irq_arm(&r->page, &r->armed, (void *)token, &prev);
		assert_null(prev);
		if (now)
			__atomic_add_fetch(&r->completed[(uintptr_t)now], 1, __ATOMIC_SEQ_CST);
		while (!__atomic_load_n(&r->completed[token], __ATOMIC_SEQ_CST)) {
			if (!__atomic_load_n(&r->done, __ATOMIC_SEQ_CST))
				continue;
			/* Firing is over and nobody completed us: then nothing
			 * may be pending, or a wakeup was lost. */
			if (__atomic_exchange_n(&r->armed, NULL, __ATOMIC_SEQ_CST) == (void *)token) {
				for (int w = 0; w < 2; w++)
					assert_int_equal(r->page.pending[w], 0);
				finished = true;
				break;
			}
		}
		for (int w = 0; w < 2; w++)
			delivered[w] |= __atomic_exchange_n(&r->page.pending[w], 0, __ATOMIC_SEQ_CST);
		if (finished)
			break;
	}
	pthread_join(t, NULL);
	for (int v = 0; v < RACE_VECTORS; v++)
		assert_int_equal(!!(delivered[v / 64] & (1ull << (v % 64))), r->fired[v]);
	for (uintptr_t k = 1; k <= token; k++)
		assert_true(r->completed[k] <= 1);
	assert_int_equal(r->page.interrupts, RACE_FIRES);
	free(r->completed);
	free(r);
}

/* ---- DMA -------------------------------------------------------------------------- */

/* Anonymous memory, 16 KiB aligned as macOS's mmap gives it. */
static uint8_t *guest_alloc(size_t size, void **base, size_t *maplen)
{
	*maplen = size + P;
	*base = mmap(NULL, *maplen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		     -1, 0);
	assert_true(*base != MAP_FAILED);
	return (uint8_t *)(((uintptr_t)*base + P - 1) & ~(uintptr_t)(P - 1));
}

static void test_dma_segments(void **state)
{
	struct tp_duc_dma_map_out out;
	struct tp_backend *be;
	struct darwin_dev *d;
	size_t maplen;
	void *base;
	uint8_t *mem = guest_alloc(1 << 20, &base, &maplen);
	uint64_t va = (uint64_t)(uintptr_t)mem;

	(void)state;
	standin_reset();
	standin_knobs.dart_mode = STANDIN_DART_SPLIT;
	standin_knobs.split = 4;
	rig_registry(NULL);
	assert_int_equal(rig_open(&be, "03:00.0", NULL), 0);
	d = darwin_of(be);
	assert_int_equal(tp_darwin_dma_map(d, va, 256 << 10, TP_DUC_DMA_DEV_READS, &out), 0);
	assert_int_equal(out.nsegs, 4);
	assert_int_equal(out.segs[0].len + out.segs[1].len + out.segs[2].len + out.segs[3].len,
			 256 << 10);
	assert_int_equal(tp_darwin_dma_unmap(d, out.handle), 0);
	assert_int_equal(tp_darwin_dma_unmap(d, out.handle), -ENOENT); /* stale */
	/* Device-discontiguous segments: the primitive hands them all back. */
	standin_knobs.dart_mode = STANDIN_DART_FRAGMENT;
	standin_knobs.split = 3;
	assert_int_equal(tp_darwin_dma_map(d, va, 3 * P, TP_DUC_DMA_DEV_WRITES, &out), 0);
	assert_int_equal(out.nsegs, 3);
	assert_true(out.segs[1].addr != out.segs[0].addr + out.segs[0].len);
	assert_int_equal(tp_darwin_dma_unmap(d, out.handle), 0);
	/* A DART answer that does not add up: refused by the dext's policy. */
	standin_knobs.dart_mode = STANDIN_DART_BOGUS;
	assert_int_equal(tp_darwin_dma_map(d, va, 2 * P, 3, &out), -EIO);
	standin_knobs.dart_mode = STANDIN_DART_FAIL;
	assert_int_equal(tp_darwin_dma_map(d, va, P, 3, &out), -ENOMEM);
	standin_knobs.dart_mode = STANDIN_DART_NORMAL;
	assert_int_equal(tp_darwin_dma_map(d, va + 4096, P, 3, &out), -EINVAL);
	assert_int_equal(tp_darwin_dma_map(d, va, 0, 3, &out), -EINVAL);
	assert_int_equal(tp_darwin_dma_map(d, va, P, 0, &out), -EINVAL);
	assert_int_equal(standin_stats.dart_maps, 0);
	rig_close(be);
	munmap(base, maplen);
}

struct mmu_rig {
	struct tp_backend *be;
	struct tp_iommu *mmu;
	void *base;
	size_t maplen;
	struct tp_dma_region r;
};

static void mmu_open(struct mmu_rig *m, uint64_t size, uint32_t prot)
{
	uint8_t *mem = guest_alloc(size, &m->base, &m->maplen);

	rig_registry(NULL);
	assert_int_equal(rig_open(&m->be, "03:00.0", NULL), 0);
	assert_int_equal(tp_darwin_iommu_create(m->be, "gpu", &m->mmu), 0);
	m->r = (struct tp_dma_region){ .iova = 0x80000000, .size = size, .vaddr = mem, .fd = -1,
				       .prot = prot };
	assert_int_equal(m->mmu->ops->region_added(m->mmu, &m->r), 0);
}

static void mmu_close(struct mmu_rig *m)
{
	m->mmu->ops->destroy(m->mmu);
	rig_close(m->be);
	munmap(m->base, m->maplen);
}

static void test_iommu(void **state)
{
	struct mmu_rig m;
	struct tp_dma_region other, none;
	uint64_t dva, dva2, iova, contig;
	const uint64_t g = 0x80000000;

	(void)state;
	mmu_open(&m, 4 << 20, RW);
	assert_string_equal(m.mmu->ops->name, "darwin");
	assert_int_equal(m.mmu->ops->map(m.mmu, g + 0x11100, 0x2000, RW, 0, &dva), 0);
	assert_int_equal(dva & (P - 1), 0x11100 & (P - 1)); /* the page offset is kept */
	assert_int_equal(m.mmu->ops->translate(m.mmu, dva, 0x2000, TP_VU_DMA_WRITE_OK, &iova, &contig), 0);
	assert_int_equal(iova, g + 0x11100);
	assert_int_equal(contig, 0x2000);
	/* The whole widened pages are reachable, nothing past them. */
	assert_int_equal(m.mmu->ops->translate(m.mmu, dva - 0x1100, 4, TP_VU_DMA_READ_OK, &iova, &contig), 0);
	assert_int_equal(iova, g + 0x10000);
	assert_int_equal(m.mmu->ops->translate(m.mmu, dva - 0x1100 + P, 4, 1, &iova, &contig), -EFAULT);
	assert_int_equal(m.mmu->st.live, 1);
	assert_int_equal(m.mmu->st.bytes, P);
	assert_int_equal(standin_stats.dart_bytes, P);
	/* Read-only for the device: a device write faults. */
	assert_int_equal(m.mmu->ops->map(m.mmu, g + 0x40000, P, TP_VU_DMA_READ_OK, 0, &dva2), 0);
	assert_int_equal(m.mmu->ops->translate(m.mmu, dva2, 4, TP_VU_DMA_WRITE_OK, &iova, &contig),
			 -EACCES);
	/* unmap must name a mapping exactly. */
	assert_int_equal(m.mmu->ops->unmap(m.mmu, dva, 0x1000), -EINVAL);
	assert_int_equal(m.mmu->ops->unmap(m.mmu, dva + 1, 0x2000), -EINVAL);
	assert_int_equal(m.mmu->ops->unmap(m.mmu, dva, 0x2000), 0);
	assert_int_equal(m.mmu->ops->translate(m.mmu, dva, 4, 1, &iova, &contig), -EFAULT);
	assert_int_equal(m.mmu->st.maps, 2);
	assert_int_equal(m.mmu->st.unmaps, 1);
	/* Refusals, each before any call to the dext. */
	uint64_t calls = standin_stats.calls[TP_DUC_DMA_MAP];
	assert_int_equal(m.mmu->ops->map(m.mmu, g - P, P, RW, 0, &dva), -EFAULT);
	assert_int_equal(m.mmu->ops->map(m.mmu, g + (4 << 20) - 8, 16, RW, 0, &dva), -EFAULT);
	assert_int_equal(m.mmu->ops->map(m.mmu, g, 0, RW, 0, &dva), -EINVAL);
	assert_int_equal(m.mmu->ops->map(m.mmu, g, P, 4, 0, &dva), -EINVAL);
	assert_int_equal(m.mmu->ops->map(m.mmu, g, P, RW, 3, &dva), -EINVAL);
	assert_int_equal(m.mmu->ops->map(m.mmu, g + 0x100, P, RW, 0x1000, &dva), -EINVAL);
	other = (struct tp_dma_region){ .iova = 0x100000000, .size = 1 << 20, .vaddr = NULL,
					.fd = -1, .prot = TP_VU_DMA_READ_OK };
	assert_int_equal(m.mmu->ops->region_added(m.mmu, &other), 0);
	assert_int_equal(m.mmu->ops->map(m.mmu, other.iova, P, RW, 0, &dva), -EACCES);
	assert_int_equal(m.mmu->ops->map(m.mmu, other.iova, P, TP_VU_DMA_READ_OK, 0, &dva), -EFAULT);
	assert_int_equal(m.mmu->ops->region_added(m.mmu, &other), -EINVAL); /* overlaps */
	/* A region whose host mapping starts inside a 16 KiB page: its first
	 * page cannot be mapped (the widening would leave it). */
	none = (struct tp_dma_region){ .iova = 0x200000000, .size = 8 * P,
				       .vaddr = (uint8_t *)m.r.vaddr + (1 << 20) + 4096, .fd = -1,
				       .prot = RW };
	assert_int_equal(m.mmu->ops->region_added(m.mmu, &none), 0);
	assert_int_equal(m.mmu->ops->map(m.mmu, none.iova, 64, RW, 0, &dva), -EINVAL);
	assert_int_equal(m.mmu->ops->map(m.mmu, none.iova + P, 64, RW, 0, &dva), 0);
	assert_int_equal(standin_stats.calls[TP_DUC_DMA_MAP], calls + 1);
	assert_int_equal(m.mmu->st.refused, 9);
	mmu_close(&m);
}

static void test_iommu_segments(void **state)
{
	struct mmu_rig m;
	uint64_t dva, iova, contig;

	(void)state;
	/* Split but contiguous: one run, accepted. */
	standin_reset();
	standin_knobs.dart_mode = STANDIN_DART_SPLIT;
	standin_knobs.split = 8;
	mmu_open(&m, 4 << 20, RW);
	assert_int_equal(m.mmu->ops->map(m.mmu, 0x80000000, 1 << 20, RW, 0, &dva), 0);
	assert_int_equal(m.mmu->ops->translate(m.mmu, dva + (700 << 10), 8, 1, &iova, &contig), 0);
	assert_int_equal(iova, 0x80000000 + (700 << 10));
	assert_int_equal(standin_stats.dart_maps, 1);
	mmu_close(&m);
	/* Discontiguous every time: refused, every attempt released. */
	standin_knobs.dart_mode = STANDIN_DART_FRAGMENT;
	standin_knobs.split = 3;
	mmu_open(&m, 4 << 20, RW);
	assert_int_equal(m.mmu->ops->map(m.mmu, 0x80000000, 256 << 10, RW, 0, &dva), -ENOMEM);
	assert_int_equal(standin_stats.prepare_calls, 4);
	assert_int_equal(standin_stats.dart_maps, 0);
	assert_int_equal(m.mmu->st.refused, 1);
	mmu_close(&m);
	/* Discontiguous once: the retry lands; the first answer is released. */
	standin_knobs.dart_mode = STANDIN_DART_FRAGMENT_ONCE;
	standin_knobs.split = 3;
	mmu_open(&m, 4 << 20, RW);
	assert_int_equal(m.mmu->ops->map(m.mmu, 0x80000000, 256 << 10, RW, 0, &dva), 0);
	assert_int_equal(standin_stats.prepare_calls, 2);
	assert_int_equal(standin_stats.dart_maps, 1);
	mmu_close(&m);
}

static void test_iommu_align(void **state)
{
	struct mmu_rig m;
	uint64_t dva, first;

	(void)state;
	/* The bump DART: one page at its base, then 32 KiB alignment asked
	 * with the next free page at base + 16 KiB: held, retried, released. */
	mmu_open(&m, 4 << 20, RW);
	assert_int_equal(m.mmu->ops->map(m.mmu, 0x80000000, P, RW, 0, &first), 0);
	assert_int_equal(m.mmu->ops->map(m.mmu, 0x80010000, P, RW, 2 * P, &dva), 0);
	assert_int_equal(dva & (2 * P - 1), 0);
	assert_int_equal(standin_stats.prepare_calls, 3);
	assert_int_equal(standin_stats.dart_maps, 2);
	mmu_close(&m);
	/* A DART that never lands aligned: the first answer is kept. */
	standin_knobs.dart_mode = STANDIN_DART_MISALIGN;
	mmu_open(&m, 4 << 20, RW);
	assert_int_equal(m.mmu->ops->map(m.mmu, 0x80000000, 64 << 10, RW, 64 << 10, &dva), 0);
	assert_true(dva & ((64 << 10) - 1));
	assert_int_equal(standin_stats.prepare_calls, 4);
	assert_int_equal(standin_stats.dart_maps, 1);
	mmu_close(&m);
}

static void test_caps_small(void **state)
{
	struct tp_duc_dma_map_out out;
	struct tp_duc_dma_stats st;
	struct mmu_rig m;
	uint64_t dva[5], calls, big;

	(void)state;
	standin_reset();
	standin_knobs.max_bytes = 256 << 10;
	standin_knobs.max_maps = 4;
	mmu_open(&m, 4 << 20, RW);
	for (int i = 0; i < 4; i++)
		assert_int_equal(m.mmu->ops->map(m.mmu, 0x80000000 + i * 0x10000, 64, RW, 0, &dva[i]), 0);
	calls = standin_stats.prepare_calls;
	/* Full: the model says so without a call... */
	assert_int_equal(m.mmu->ops->map(m.mmu, 0x80100000, 64, RW, 0, &dva[4]), -ENOSPC);
	assert_int_equal(standin_stats.prepare_calls, calls);
	assert_int_equal(m.mmu->ops->unmap(m.mmu, dva[0], 64), 0);
	assert_int_equal(m.mmu->ops->map(m.mmu, 0x80100000, 192 << 10, RW, 0, &big), 0);
	assert_int_equal(m.mmu->ops->map(m.mmu, 0x80200000, 64, RW, 0, &dva[4]), -ENOSPC);
	/* ...and a client that skips the model meets the dext's own check,
	 * before PrepareForDMA. */
	calls = standin_stats.prepare_calls;
	assert_int_equal(tp_darwin_dma_map(darwin_of(m.be), (uint64_t)(uintptr_t)m.r.vaddr, P, 3,
					   &out), -ENOSPC);
	assert_int_equal(standin_stats.prepare_calls, calls);
	assert_int_equal(tp_darwin_call(darwin_of(m.be), TP_DUC_DMA_STATS, NULL, 0, NULL, 0, NULL,
					0, &st, sizeof(st)), 0);
	assert_int_equal(st.refused_caps, 1);
	assert_int_equal(st.maps, 4);
	assert_int_equal(st.bytes, 240 << 10); /* 3 pages and 192 KiB */
	assert_int_equal(standin_stats.dart_peak_bytes, 240 << 10);
	assert_false(standin_stats.dart_panicked);
	mmu_close(&m);
}

/* The real caps: 1.5 GiB and 65536 mappings, never past them. */
static void test_caps_default(void **state)
{
	struct mmu_rig m;
	uint64_t dva;

	(void)state;
	mmu_open(&m, 2ull << 30, RW); /* NORESERVE: nothing is touched */
	for (int i = 0; i < 6; i++)
		assert_int_equal(m.mmu->ops->map(m.mmu, 0x80000000 + ((uint64_t)i << 28), 1 << 28, RW, 0,
						 &dva), 0);
	assert_int_equal(m.mmu->st.bytes, TP_DUC_MAX_DMA_BYTES);
	assert_int_equal(m.mmu->ops->map(m.mmu, 0x80000000 + (6ull << 28), P, RW, 0, &dva), -ENOSPC);
	m.mmu->ops->reset(m.mmu);
	assert_int_equal(standin_stats.dart_maps, 0);
	for (uint64_t i = 0; i < TP_DUC_MAX_DMA_MAPS; i++)
		assert_int_equal(m.mmu->ops->map(m.mmu, 0x80000000 + i * P, P, RW, 0, &dva), 0);
	assert_int_equal(standin_stats.dart_maps, TP_DUC_MAX_DMA_MAPS);
	assert_int_equal(m.mmu->ops->map(m.mmu, 0x80000000 + TP_DUC_MAX_DMA_MAPS * P, P, RW, 0, &dva),
			 -ENOSPC);
	assert_false(standin_stats.dart_panicked);
	mmu_close(&m);
}

static void test_region_removed(void **state)
{
	struct mmu_rig m;
	struct tp_dma_region b;
	uint64_t dva;

	(void)state;
	mmu_open(&m, 4 << 20, RW);
	b = (struct tp_dma_region){ .iova = 0x90000000, .size = 1 << 20,
				    .vaddr = (uint8_t *)m.r.vaddr + (2 << 20), .fd = -1, .prot = RW };
	assert_int_equal(m.mmu->ops->region_added(m.mmu, &b), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(m.mmu->ops->map(m.mmu, 0x80000000 + i * P, P, RW, 0, &dva), 0);
	assert_int_equal(m.mmu->ops->map(m.mmu, 0x90000000, P, RW, 0, &dva), 0);
	m.mmu->ops->region_removed(m.mmu, &m.r);
	assert_int_equal(standin_stats.dart_maps, 1);
	assert_int_equal(m.mmu->st.live, 1);
	assert_int_equal(m.mmu->ops->map(m.mmu, 0x80000000, P, RW, 0, &dva), -EFAULT);
	m.mmu->ops->reset(m.mmu);
	assert_int_equal(standin_stats.dart_maps, 0);
	assert_int_equal(m.mmu->st.live, 0);
	/* The backend goes first (tp_device_close's order): the model
	 * forgets the device and never calls it again. */
	assert_int_equal(m.mmu->ops->map(m.mmu, 0x90000000, P, RW, 0, &dva), 0);
	m.be->ops->destroy(m.be);
	m.be = NULL;
	assert_int_equal(m.mmu->ops->map(m.mmu, 0x90000000, P, RW, 0, &dva), -ENODEV);
	m.mmu->ops->destroy(m.mmu);
	rig_close(NULL);
	munmap(m.base, m.maplen);
}

/* ---- the whole path: copy engine, DART, interrupt ---------------------------------- */

#define CE(r) (MODEL_CE_BASE + (r))
#define GUEST_IOVA 0x40000000ull
#define GUEST_SIZE (8u << 20)

static void ce_wr(struct tp_device *dev, uint32_t reg, uint32_t v)
{
	assert_int_equal(tp_device_region_write(dev, 0, CE(reg), &v, 4, true), 0);
}

static uint32_t ce_rd(struct tp_device *dev, uint32_t reg)
{
	uint32_t v = 0;

	assert_int_equal(tp_device_region_read(dev, 0, CE(reg), &v, 4), 0);
	return v;
}

static int wait_fd(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	uint64_t n;

	if (poll(&p, 1, ms) != 1)
		return 0;
	assert_int_equal(read(fd, &n, 8), 8);
	return 1;
}

static void job(struct tp_device *dev, uint64_t src, uint64_t dst, uint32_t len, uint64_t fence)
{
	ce_wr(dev, 0x10, (uint32_t)src);
	ce_wr(dev, 0x14, (uint32_t)(src >> 32));
	ce_wr(dev, 0x18, (uint32_t)dst);
	ce_wr(dev, 0x1c, (uint32_t)(dst >> 32));
	ce_wr(dev, 0x20, len);
	ce_wr(dev, 0x24, 0x30); /* fence + interrupt */
	ce_wr(dev, 0x28, (uint32_t)fence);
	ce_wr(dev, 0x2c, (uint32_t)(fence >> 32));
	ce_wr(dev, 0x30, 0xf00dcafe);
	ce_wr(dev, 0x40, 1);
}

static void test_copy_engine(void **state)
{
	struct tp_vu_irq_set s = { sizeof(s), TP_VU_IRQ_DATA_EVENTFD | TP_VU_IRQ_ACTION_TRIGGER,
				   TP_IRQ_MSIX, 0, 1 };
	struct tp_device dev;
	struct tp_backend *be;
	uint64_t src, dst, fence, iova, contig;
	uint8_t *guest;
	int memfd, efd, fd;

	(void)state;
	rig_registry(NULL);
	assert_int_equal(rig_open(&be, "03:00.0", NULL), 0);
	/* The backend brings its own IOMMU model: naming one is refused. */
	assert_int_equal(tp_device_open(&dev, be, "identity"), -EINVAL);
	tp_device_close(&dev);
	rig_registry(NULL);
	assert_int_equal(rig_open(&be, "03:00.0", NULL), 0);
	assert_int_equal(tp_device_open(&dev, be, NULL), 0);
	assert_string_equal(dev.iommu->ops->name, "darwin");
	memfd = memfd_create("guest", MFD_CLOEXEC);
	assert_int_equal(ftruncate(memfd, GUEST_SIZE), 0);
	guest = mmap(NULL, GUEST_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	assert_true(guest != MAP_FAILED);
	assert_int_equal(tp_device_dma_map(&dev, GUEST_IOVA, GUEST_SIZE, dup(memfd), 0, RW), 0);
	efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	fd = dup(efd);
	assert_int_equal(tp_irqs_set(&dev.irqs, &s, NULL, 0, &fd, 1), 0);
	/* pvdma's calls: device addresses for a source, a destination, a fence
	 * (offsets well inside the region: the core's mmap is only 4 KiB
	 * aligned on Linux). */
	assert_int_equal(tp_device_iommu_map(&dev, GUEST_IOVA + (1 << 20), 64 << 10, RW, 0, &src), 0);
	assert_int_equal(tp_device_iommu_map(&dev, GUEST_IOVA + (2 << 20), 64 << 10, RW, 0, &dst), 0);
	assert_int_equal(tp_device_iommu_map(&dev, GUEST_IOVA + (3 << 20), 64, RW, 0, &fence), 0);
	assert_int_equal(dev.iommu->ops->translate(dev.iommu, dst, 4, 2, &iova, &contig), 0);
	assert_int_equal(iova, GUEST_IOVA + (2 << 20));
	for (uint32_t i = 0; i < (64 << 10); i++)
		guest[(1 << 20) + i] = (uint8_t)(i * 7 + 3);
	ce_wr(&dev, 0x4c, 3); /* interrupt on DONE and ERROR */
	job(&dev, src, dst, 64 << 10, fence);
	assert_true(wait_fd(efd, 5000));
	assert_memory_equal(guest + (2 << 20), guest + (1 << 20), 64 << 10);
	assert_int_equal(*(uint32_t *)(guest + (3 << 20)), 0xf00dcafe);
	assert_int_equal(ce_rd(&dev, 0x48) & 1, 1);
	ce_wr(&dev, 0x48, 3);
	/* A device address the DART never mapped: a fault, and its interrupt. */
	job(&dev, 0x7f0000000ull, dst, 4096, fence);
	assert_true(wait_fd(efd, 5000));
	assert_int_equal((ce_rd(&dev, 0x44) >> 8) & 0xff, 1); /* source fault */
	ce_wr(&dev, 0x48, 3);
	/* After unmap the device cannot reach the memory any more. */
	assert_int_equal(tp_device_iommu_unmap(&dev, src, 64 << 10), 0);
	job(&dev, src, dst, 4096, fence);
	assert_true(wait_fd(efd, 5000));
	assert_int_equal((ce_rd(&dev, 0x44) >> 8) & 0xff, 1);
	assert_true(standin_stats.completions >= 3);
	assert_true(darwin_of(be)->irq_raised >= 3);
	tp_device_session_end(&dev);
	assert_int_equal(standin_stats.dart_maps, 0); /* the core's region went: the mappings too */
	tp_device_close(&dev);
	rig_close(NULL);
	munmap(guest, GUEST_SIZE);
	close(memfd);
	close(efd);
}

/* ---- interrupts alone ---------------------------------------------------------------- */

static uint64_t raised[16];
static void count_raise(void *ctx, uint32_t v)
{
	(void)ctx;
	if (v < 16)
		__atomic_add_fetch(&raised[v], 1, __ATOMIC_SEQ_CST);
}

static void count_intx(void *ctx, int level)
{
	(void)ctx;
	(void)level;
}

static const struct tp_host_ops count_ops = { .irq_raise = count_raise, .intx_set = count_intx };

static bool wait_raised(uint32_t v, uint64_t atleast)
{
	for (int i = 0; i < 500; i++) {
		if (__atomic_load_n(&raised[v], __ATOMIC_SEQ_CST) >= atleast)
			return true;
		usleep(10000);
	}
	return false;
}

static void test_irq_storm(void **state)
{
	struct tp_backend *be;
	struct standin_uc *uc;
	uint64_t total = 0;

	(void)state;
	memset(raised, 0, sizeof(raised));
	rig_registry(NULL);
	assert_int_equal(rig_open(&be, "03:00.0", NULL), 0);
	be->host.ops = &count_ops;
	uc = standin_session();
	assert_non_null(uc);
	for (int i = 0; i < 20000; i++)
		standin_fire(uc, (uint32_t)i % MODEL_MSIX_VECTORS);
	for (uint32_t v = 0; v < MODEL_MSIX_VECTORS; v++) {
		assert_true(wait_raised(v, 1));
		total += raised[v];
	}
	/* Coalesced: one notification carries many interrupts. */
	assert_true(total <= 20000);
	assert_true(darwin_of(be)->irq_notifications <= 20000);
	/* And one more comes through after the storm (once it has settled:
	 * nothing pending, the counts still for 50 ms). */
	for (int i = 0; i < 100; i++) {
		uint64_t was = __atomic_load_n(&raised[4], __ATOMIC_SEQ_CST);

		usleep(50000);
		if (!__atomic_load_n(&darwin_of(be)->irq_page->pending[0], __ATOMIC_SEQ_CST) &&
		    was == __atomic_load_n(&raised[4], __ATOMIC_SEQ_CST))
			break;
	}
	total = __atomic_load_n(&raised[4], __ATOMIC_SEQ_CST);
	standin_fire(uc, 4);
	assert_true(wait_raised(4, total + 1));
	rig_close(be);
}

static void test_irq_variants(void **state)
{
	struct tp_backend *be;

	(void)state;
	memset(raised, 0, sizeof(raised));
	/* Fewer sources than vectors: the rest never fire. */
	standin_reset();
	standin_knobs.irq_grant = 4;
	rig_registry(NULL);
	assert_int_equal(rig_open(&be, "03:00.0", NULL), 0);
	be->host.ops = &count_ops;
	assert_int_equal(darwin_of(be)->irq_vectors, 4);
	standin_fire(standin_session(), 6);
	standin_fire(standin_session(), 3);
	assert_true(wait_raised(3, 1));
	assert_int_equal(raised[6], 0);
	rig_close(be);
	/* irq=msi: the model's single MSI vector. */
	rig_registry(NULL);
	assert_int_equal(rig_open(&be, "03:00.0", "irq=msi", NULL), 0);
	assert_int_equal(darwin_of(be)->irq_type, TP_DUC_IRQ_MSI);
	assert_int_equal(darwin_of(be)->irq_vectors, 1);
	rig_close(be);
	/* Closing while armed: the dext ends the wait (aborted), the thread
	 * leaves, nothing leaks. */
	rig_registry(NULL);
	assert_int_equal(rig_open(&be, "03:00.0", NULL), 0);
	for (int i = 0; i < 500 && !__atomic_load_n(&darwin_of(be)->irq_armed, __ATOMIC_SEQ_CST); i++)
		usleep(1000);
	be->ops->destroy(be);
	assert_int_equal(standin_stats.aborts, 1);
	rig_close(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_policy),
		cmocka_unit_test(test_irq_race),
		cmocka_unit_test(test_dma_segments),
		cmocka_unit_test(test_iommu),
		cmocka_unit_test(test_iommu_segments),
		cmocka_unit_test(test_iommu_align),
		cmocka_unit_test(test_caps_small),
		cmocka_unit_test(test_caps_default),
		cmocka_unit_test(test_region_removed),
		cmocka_unit_test(test_copy_engine),
		cmocka_unit_test(test_irq_storm),
		cmocka_unit_test(test_irq_variants),
	};

	tp_log_set_level(TP_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
