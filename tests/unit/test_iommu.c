/* SPDX-License-Identifier: MIT */
/*
 * IOMMU models (lib/iommu*.c): identity basics; the DART model's page table
 * (read back in its documented format), translation across page and L2
 * table boundaries, permissions, caps, aperture, the alignment rule, aligned
 * device addresses, region removal, and a randomized run against a simple
 * reference model (docs/iommu.md).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "iommu.h"
#include <thunderpass/log.h>
#include <thunderpass/protocol.h>

#define PG 0x4000ull
#define KiB 1024ull
#define MiB (1024ull * KiB)
#define GiB (1024ull * MiB)
#define R TP_VU_DMA_READ_OK
#define W TP_VU_DMA_WRITE_OK
#define RW (R | W)

/* The documented PTE format (docs/iommu.md), spelled out independently. */
#define PTE_VALID (1ull << 0)
#define PTE_NO_WRITE (1ull << 2)
#define PTE_NO_READ (1ull << 3)
#define PTE_PA(pte) ((((pte) >> 10) & ((1ull << 28) - 1)) << 14)

#define map(mmu, iova, len, prot, align, dva) (mmu)->ops->map(mmu, iova, len, prot, align, dva)

static struct tp_iommu *dart_new(uint64_t base, uint64_t size, uint64_t max_bytes, uint64_t max_maps)
{
	struct tp_dart_config c = { base, size, max_bytes, max_maps };
	struct tp_iommu *mmu = NULL;

	assert_int_equal(tp_iommu_dart_create("test", &c, &mmu), 0);
	return mmu;
}

static struct tp_iommu *dart_default(void)
{
	struct tp_iommu *mmu = NULL;

	assert_int_equal(tp_iommu_create("dart", "test", &mmu), 0);
	return mmu;
}

static void region(struct tp_iommu *mmu, uint64_t iova, uint64_t size, uint32_t prot)
{
	struct tp_dma_region r = { .iova = iova, .size = size, .fd = -1, .prot = prot };

	assert_int_equal(mmu->ops->region_added(mmu, &r), 0);
}

static void region_gone(struct tp_iommu *mmu, uint64_t iova, uint64_t size)
{
	struct tp_dma_region r = { .iova = iova, .size = size, .fd = -1 };

	mmu->ops->region_removed(mmu, &r);
}

static uint64_t map_ok(struct tp_iommu *mmu, uint64_t iova, uint64_t len, uint32_t prot,
		       uint64_t align)
{
	uint64_t dva = 0;

	assert_int_equal(map(mmu, iova, len, prot, align, &dva), 0);
	return dva;
}

static void xlate(struct tp_iommu *mmu, uint64_t dva, uint64_t len, uint32_t prot,
		  uint64_t want_iova, uint64_t want_contig)
{
	uint64_t iova = 0, contig = 0;

	assert_int_equal(mmu->ops->translate(mmu, dva, len, prot, &iova, &contig), 0);
	assert_int_equal(iova, want_iova);
	assert_int_equal(contig, want_contig);
}

static int xlate_rc(struct tp_iommu *mmu, uint64_t dva, uint32_t prot)
{
	uint64_t iova, contig;

	return mmu->ops->translate(mmu, dva, 1, prot, &iova, &contig);
}

static void test_identity(void **state)
{
	struct tp_iommu_stats want;
	struct tp_iommu *mmu = NULL;
	uint64_t dva = 0;

	assert_int_equal(tp_iommu_create("bogus", "test", &mmu), -EINVAL);
	assert_int_equal(tp_iommu_create("identity", "test", &mmu), 0);
	assert_string_equal(mmu->ops->name, "identity");
	region(mmu, 0x40000000, 1 * MiB, RW);
	assert_int_equal(map(mmu, 0x40001234, 0x100, R, 2 * MiB, &dva), 0);
	assert_int_equal(dva, 0x40001234);
	assert_int_equal(map(mmu, 0x7000000000, 4 * GiB, RW, 0, &dva), 0); /* unchecked */
	assert_int_equal(map(mmu, UINT64_MAX - 10, 100, R, 0, &dva), -EINVAL);
	assert_int_equal(map(mmu, 0x1000, 0, R, 0, &dva), -EINVAL);
	want = (struct tp_iommu_stats){ .maps = 2, .live = 2, .bytes = 0x100 + 4 * GiB, .refused = 2 };
	assert_memory_equal(&mmu->st, &want, sizeof(want));
	xlate(mmu, 0x40001234, 0x5000, W, 0x40001234, 0x5000);
	xlate(mmu, 0xdead0000, 8, R, 0xdead0000, 8); /* the guest memory map decides */
	xlate(mmu, UINT64_MAX - 15, 100, R, UINT64_MAX - 15, 16);
	assert_int_equal(mmu->ops->unmap(mmu, 0x40001234, 0x100), 0);
	assert_int_equal(mmu->ops->unmap(mmu, 0x12345, 7), 0);
	assert_int_equal(mmu->st.unmaps, 2);
	assert_int_equal(mmu->st.live, 0);
	region_gone(mmu, 0x40000000, 1 * MiB);
	mmu->ops->reset(mmu);
	assert_int_equal(mmu->st.bytes, 0);
	mmu->ops->destroy(mmu);
}

static void test_dart_defaults(void **state)
{
	struct tp_dart_config c, bad;
	struct tp_iommu *mmu = NULL;

	tp_dart_config_default(&c);
	assert_int_equal(c.aperture_base, 0x10000000);
	assert_int_equal(c.aperture_base + c.aperture_size, 4 * GiB);
	assert_int_equal(c.max_bytes, 1536 * MiB);
	assert_int_equal(c.max_mappings, 65536);
	assert_int_equal(tp_iommu_create("dart", "test", &mmu), 0);
	assert_string_equal(mmu->ops->name, "dart");
	assert_int_equal(mmu->st.tables, 1); /* the L1 table */
	assert_int_equal(xlate_rc(mmu, 0, R), -EFAULT);
	assert_int_equal(xlate_rc(mmu, c.aperture_base, R), -EFAULT);
	assert_int_equal(xlate_rc(mmu, 1ull << 40, R), -EFAULT);
	mmu->ops->destroy(mmu);

	bad = c;
	bad.aperture_base += 0x1000; /* not a 16 KiB page */
	assert_int_equal(tp_iommu_dart_create("test", &bad, &mmu), -EINVAL);
	bad = c;
	bad.aperture_size = 64 * GiB; /* past the single L1 table */
	assert_int_equal(tp_iommu_dart_create("test", &bad, &mmu), -EINVAL);
	bad = c;
	bad.max_mappings = 0;
	assert_int_equal(tp_iommu_dart_create("test", &bad, &mmu), -EINVAL);
}

static void test_dart_map_translate(void **state)
{
	struct tp_iommu *mmu = dart_default();
	uint64_t a, b;

	region(mmu, 0x40000000, 256 * MiB, RW);
	a = map_ok(mmu, 0x40000000, 3 * PG, RW, 0);
	b = map_ok(mmu, 0x48000000, PG, R, 0);
	assert_true(a >= 0x10000000 && a + 3 * PG <= 4 * GiB);
	assert_true(b >= 0x10000000 && b + PG <= 4 * GiB);
	assert_int_equal(a % PG, 0);
	assert_int_equal(b % PG, 0);
	assert_true(b >= a + 3 * PG || a >= b + PG);
	xlate(mmu, a, 1, R, 0x40000000, 1);
	xlate(mmu, a + PG + 8, 16, W, 0x40000000 + PG + 8, 16);
	/* across a page boundary, and to the end of the mapping */
	xlate(mmu, a + PG - 4, 8, RW, 0x40000000 + PG - 4, 8);
	xlate(mmu, a + 100, 10 * PG, R, 0x40000000 + 100, 3 * PG - 100);
	xlate(mmu, b + PG - 1, 2, R, 0x48000000 + PG - 1, 1);
	assert_int_equal(mmu->st.maps, 2);
	assert_int_equal(mmu->st.live, 2);
	assert_int_equal(mmu->st.pages, 4);
	assert_int_equal(mmu->st.bytes, 4 * PG);
	assert_int_equal(mmu->st.tables, 2);
	mmu->ops->destroy(mmu);
}

static void test_dart_l2_boundary(void **state)
{
	/* The aperture starts 2 pages below 32 MiB: the first mapping straddles
	 * two L2 tables. */
	struct tp_iommu *mmu = dart_new(32 * MiB - 2 * PG, 64 * MiB, 1 * GiB, 100);
	uint64_t a, b, c, iova = 0x80000000;

	region(mmu, iova, 64 * MiB, RW);
	a = map_ok(mmu, iova, 4 * PG, RW, 0);
	assert_int_equal(a, 32 * MiB - 2 * PG);
	assert_int_equal(mmu->st.tables, 3);
	xlate(mmu, a, 4 * PG, R, iova, 4 * PG);
	xlate(mmu, 32 * MiB - 8, 16, W, iova + 2 * PG - 8, 16);
	xlate(mmu, 32 * MiB, 1 * MiB, R, iova + 2 * PG, 2 * PG);
	/* adjacent device pages whose guest pages are not consecutive */
	b = map_ok(mmu, iova + 1 * MiB, PG, RW, 0);
	assert_int_equal(b, a + 4 * PG);
	xlate(mmu, a, 8 * PG, R, iova, 4 * PG);
	/* the walk knows no mapping boundaries: consecutive guest pages run on */
	c = map_ok(mmu, iova + 1 * MiB + PG, 2 * PG, RW, 0);
	assert_int_equal(c, b + PG);
	xlate(mmu, b + 4, 8 * PG, R, iova + 1 * MiB + 4, 3 * PG - 4);
	assert_int_equal(mmu->ops->unmap(mmu, a, 4 * PG), 0);
	assert_int_equal(mmu->st.tables, 2); /* the first L2 table was emptied */
	assert_int_equal(xlate_rc(mmu, a, R), -EFAULT);
	assert_int_equal(xlate_rc(mmu, 32 * MiB, R), -EFAULT);
	xlate(mmu, b, 1, R, iova + 1 * MiB, 1);
	mmu->ops->destroy(mmu);
}

static void test_dart_pte_format(void **state)
{
	struct tp_iommu *mmu = dart_default();
	uint64_t l1e, l2e, a, b, c, hi = 0x30000000000ull; /* 3 TiB: past DART1's 36 bits */
	struct tp_iommu *id = NULL;

	region(mmu, 0x40000000, 1 * MiB, RW);
	region(mmu, hi, 1 * MiB, RW);
	region(mmu, 1ull << 42, 1 * MiB, RW);
	a = map_ok(mmu, 0x40008000, PG, R, 0);
	b = map_ok(mmu, hi + PG, 2 * PG, W, 0);
	c = map_ok(mmu, 0x40010000, PG, RW, 0);

	assert_int_equal(tp_dart_read_ptes(mmu, a, &l1e, &l2e), 0);
	/* table entry: valid, an address, nothing else */
	assert_int_equal(l1e & 0xf, PTE_VALID);
	assert_int_equal(l1e & ~((1ull << 38) - 1), 0);
	assert_int_equal(l1e & 0x3f0, 0);
	assert_true(PTE_PA(l1e) != 0);
	/* leaf: valid, no write, the guest page at bits 37:10 (address >> 4),
	 * sub-page range 0..0xfff, cacheable */
	assert_int_equal(l2e & 0xf, PTE_VALID | PTE_NO_WRITE);
	assert_int_equal(PTE_PA(l2e), 0x40008000);
	assert_int_equal((l2e >> 40) & 0xfff, 0xfff);
	assert_int_equal(l2e >> 52, 0);
	assert_int_equal(l2e & ((3ull << 38) | 0x3f0), 0);
	assert_int_equal(l2e, 0x40008000ull >> 4 | 0xfffull << 40 | PTE_NO_WRITE | PTE_VALID);

	assert_int_equal(tp_dart_read_ptes(mmu, b + PG, &l1e, &l2e), 0);
	assert_int_equal(l2e & 0xf, PTE_VALID | PTE_NO_READ);
	assert_int_equal(PTE_PA(l2e), hi + 2 * PG);
	assert_int_equal(tp_dart_read_ptes(mmu, c, &l1e, &l2e), 0);
	assert_int_equal(l2e & 0xf, PTE_VALID);
	assert_int_equal(tp_dart_read_ptes(mmu, c + PG, &l1e, &l2e), 0);
	assert_int_equal(l2e, 0);
	assert_int_equal(tp_dart_read_ptes(mmu, 0x100000000, &l1e, &l2e), -ENOENT);
	assert_int_equal(l1e, 0);
	assert_int_equal(tp_dart_read_ptes(mmu, 64 * GiB, &l1e, &l2e), -EFAULT);
	/* guest addresses from 2^42 on do not fit the output address field */
	assert_int_equal(map(mmu, 1ull << 42, PG, R, 0, &a), -ERANGE);

	assert_int_equal(tp_iommu_create("identity", "test", &id), 0);
	assert_int_equal(tp_dart_read_ptes(id, 0, &l1e, &l2e), -EINVAL);
	id->ops->destroy(id);
	mmu->ops->destroy(mmu);
}

static void test_dart_unmap(void **state)
{
	struct tp_iommu *mmu = dart_default();
	uint64_t a, b;

	region(mmu, 0x40000000, 1 * MiB, RW);
	a = map_ok(mmu, 0x40000100, 0x8000, RW, 0);
	b = map_ok(mmu, 0x40020000, PG, RW, 0);
	assert_int_equal(a % PG, 0x100);
	assert_int_equal(mmu->ops->unmap(mmu, a, 0x8001), -EINVAL);
	assert_int_equal(mmu->ops->unmap(mmu, a - 0x100, 0x8000), -EINVAL);
	assert_int_equal(mmu->ops->unmap(mmu, a + PG, 0x8000), -EINVAL);
	assert_int_equal(mmu->ops->unmap(mmu, 0x5000000, PG), -EINVAL);
	xlate(mmu, a, 1, R, 0x40000100, 1);
	assert_int_equal(mmu->ops->unmap(mmu, a, 0x8000), 0);
	assert_int_equal(xlate_rc(mmu, a, R), -EFAULT);
	assert_int_equal(xlate_rc(mmu, a + 2 * PG, R), -EFAULT);
	assert_int_equal(mmu->ops->unmap(mmu, a, 0x8000), -EINVAL);
	assert_int_equal(mmu->st.unmaps, 1);
	assert_int_equal(mmu->st.live, 1);
	assert_int_equal(mmu->st.pages, 1);
	assert_int_equal(mmu->ops->unmap(mmu, b, PG), 0);
	assert_int_equal(mmu->st.tables, 1);
	assert_int_equal(mmu->st.bytes, 0);
	/* freed device addresses are handed out again */
	assert_int_equal(map_ok(mmu, 0x40000000, 3 * PG, RW, 0), a - 0x100);
	mmu->ops->destroy(mmu);
}

static void test_dart_permissions(void **state)
{
	struct tp_iommu *mmu = dart_default();
	uint64_t ro, wo, rw, dva;

	region(mmu, 0x40000000, 1 * MiB, RW);
	region(mmu, 0x50000000, 1 * MiB, R); /* a ROM */
	ro = map_ok(mmu, 0x40000000, PG, R, 0);
	wo = map_ok(mmu, 0x40004000, PG, W, 0);
	rw = map_ok(mmu, 0x40008000, PG, RW, 0);
	assert_int_equal(xlate_rc(mmu, ro, W), -EACCES);
	assert_int_equal(xlate_rc(mmu, ro, RW), -EACCES);
	assert_int_equal(xlate_rc(mmu, ro, R), 0);
	assert_int_equal(xlate_rc(mmu, wo, R), -EACCES);
	assert_int_equal(xlate_rc(mmu, wo, W), 0);
	assert_int_equal(xlate_rc(mmu, rw, RW), 0);
	assert_int_equal(xlate_rc(mmu, wo, 0), 0);
	/* consecutive guest pages, but the run stops where prot is missing */
	xlate(mmu, ro, 3 * PG, 0, 0x40000000, 3 * PG);
	xlate(mmu, wo, 2 * PG, W, 0x40004000, 2 * PG);
	xlate(mmu, ro, 3 * PG, R, 0x40000000, PG);
	/* refused at map time */
	assert_int_equal(map(mmu, 0x50000000, PG, W, 0, &dva), -EACCES);
	assert_int_equal(map(mmu, 0x40000000, PG, 0, 0, &dva), -EINVAL);
	assert_int_equal(map(mmu, 0x40000000, PG, 4, 0, &dva), -EINVAL);
	assert_int_equal(map(mmu, 0x40000000, 0, R, 0, &dva), -EINVAL);
	assert_int_equal(mmu->st.refused, 4);
	map_ok(mmu, 0x50000000, PG, R, 0);
	mmu->ops->destroy(mmu);
}

static void test_dart_caps(void **state)
{
	struct tp_iommu *mmu = dart_new(0x10000000, 1 * GiB, 1 * MiB, 3);
	struct tp_iommu_stats before;
	uint64_t a, b, c, dva = 0xabc;

	region(mmu, 0x40000000, 64 * MiB, RW);
	a = map_ok(mmu, 0x40000000, 768 * KiB, RW, 0);
	before = mmu->st;
	before.refused++;
	assert_int_equal(map(mmu, 0x41000000, 512 * KiB, RW, 0, &dva), -ENOSPC); /* bytes */
	assert_int_equal(dva, 0xabc);
	assert_memory_equal(&mmu->st, &before, sizeof(before));
	/* 1 byte widens to a whole page, which still fits: the cap counts pages */
	assert_int_equal(map(mmu, 0x41000000, 256 * KiB + 1, RW, 0, &dva), -ENOSPC);
	b = map_ok(mmu, 0x41000000, 256 * KiB - PG + 1, RW, 0);
	assert_int_equal(mmu->st.bytes, 1 * MiB);
	assert_int_equal(mmu->ops->unmap(mmu, b, 256 * KiB - PG + 1), 0);
	/* mappings */
	b = map_ok(mmu, 0x42000000, PG, R, 0);
	c = map_ok(mmu, 0x42004000, PG, R, 0);
	before = mmu->st;
	before.refused++;
	assert_int_equal(map(mmu, 0x42008000, PG, R, 0, &dva), -ENOSPC);
	assert_memory_equal(&mmu->st, &before, sizeof(before));
	xlate(mmu, a, 768 * KiB, R, 0x40000000, 768 * KiB);
	xlate(mmu, c, 1, R, 0x42004000, 1);
	assert_int_equal(mmu->ops->unmap(mmu, b, PG), 0);
	map_ok(mmu, 0x42008000, PG, R, 0);
	mmu->ops->destroy(mmu);
}

static void test_dart_aperture(void **state)
{
	struct tp_iommu *mmu = dart_new(0x10000000, 64 * PG, 1 * GiB, 1000);
	struct tp_iommu_stats before;
	uint64_t a, b, dva;

	region(mmu, 0x40000000, 64 * MiB, RW);
	a = map_ok(mmu, 0x40000000, 48 * PG, RW, 0);
	before = mmu->st;
	before.refused++;
	assert_int_equal(map(mmu, 0x41000000, 32 * PG, RW, 0, &dva), -ENOMEM);
	assert_memory_equal(&mmu->st, &before, sizeof(before));
	assert_int_equal(xlate_rc(mmu, a + 48 * PG, R), -EFAULT);
	b = map_ok(mmu, 0x41000000, 16 * PG, RW, 0);
	assert_int_equal(b, a + 48 * PG);
	assert_int_equal(map(mmu, 0x42000000, 1, R, 0, &dva), -ENOMEM);
	assert_int_equal(map(mmu, 0x40000000, 65 * PG, R, 0, &dva), -ENOMEM);
	assert_int_equal(mmu->ops->unmap(mmu, a, 48 * PG), 0);
	assert_int_equal(map_ok(mmu, 0x42000000, 32 * PG, R, 0), a);
	assert_int_equal(map_ok(mmu, 0x43000000, 16 * PG, R, 0), a + 32 * PG);
	assert_int_equal(mmu->st.live, 3);
	mmu->ops->destroy(mmu);
}

static void test_dart_alignment_rule(void **state)
{
	struct tp_iommu *mmu = dart_default();
	uint64_t a, b, dva, r1 = 0x40000000, r2 = 0x44000000, r3 = 0x48001000;

	region(mmu, r1, 1 * MiB, RW);
	region(mmu, r1 + 1 * MiB, 1 * MiB, RW);  /* touches r1 */
	region(mmu, r2, 0x5000, RW);              /* ends inside a 16 KiB page */
	region(mmu, r3, 0x10000, RW);             /* starts inside one */
	/* widening inside the region: the dva keeps the page offset */
	a = map_ok(mmu, r1 + 0x100, 0x200, R, 0);
	assert_int_equal(a % PG, 0x100);
	assert_int_equal(mmu->st.bytes, PG);
	xlate(mmu, a, 0x200, R, r1 + 0x100, 0x200);
	xlate(mmu, a - 0x100, 1, R, r1, 1); /* the rest of the page is reachable */
	b = map_ok(mmu, r1 + PG - 0x100, 0x200, R, 0);
	assert_int_equal(b % PG, PG - 0x100);
	assert_int_equal(mmu->st.bytes, 3 * PG);
	xlate(mmu, b, 0x200, R, r1 + PG - 0x100, 0x200);
	assert_int_equal(mmu->ops->unmap(mmu, b, 0x200), 0);
	/* a region ending inside a page: the last partial page cannot be mapped */
	map_ok(mmu, r2, PG, RW, 0);
	assert_int_equal(map(mmu, r2 + 0x4800, 0x100, RW, 0, &dva), -EINVAL);
	assert_int_equal(map(mmu, r2 + 0x3f00, 0x200, RW, 0, &dva), -EINVAL);
	/* a region starting inside a page: its first partial page neither */
	assert_int_equal(map(mmu, r3, 0x100, RW, 0, &dva), -EINVAL);
	map_ok(mmu, r3 + 0x3000, 0x100, RW, 0);
	/* the request itself must lie in one live region */
	assert_int_equal(map(mmu, r1 + 1 * MiB - PG, 2 * PG, RW, 0, &dva), -EFAULT);
	assert_int_equal(map(mmu, r2 + 0x4000, 0x1001, RW, 0, &dva), -EFAULT);
	assert_int_equal(map(mmu, 0x60000000, PG, RW, 0, &dva), -EFAULT);
	/* an alignment the page offset does not have cannot be given */
	assert_int_equal(map(mmu, r1 + 0x100, 0x100, R, 64 * KiB, &dva), -EINVAL);
	assert_int_equal(map(mmu, r1 + 0x100, 0x100, R, 0x200, &dva), -EINVAL);
	assert_int_equal(map_ok(mmu, r1 + 0x100, 0x100, R, 0x100) % 0x100, 0);
	assert_int_equal(map(mmu, r1, PG, R, 3 * PG, &dva), -EINVAL); /* not a power of 2 */
	mmu->ops->destroy(mmu);
}

static void test_dart_aligned_dva(void **state)
{
	struct tp_iommu *mmu = dart_new(0x10000000 + PG, 1 * GiB, 1 * GiB, 1000);
	uint64_t a, b, c, d, e;

	region(mmu, 0x40000000, 64 * MiB, RW);
	a = map_ok(mmu, 0x40000000, PG, RW, 0);
	assert_int_equal(a, 0x10000000 + PG);
	b = map_ok(mmu, 0x40100000, 64 * KiB, RW, 64 * KiB);
	assert_int_equal(b % (64 * KiB), 0);
	c = map_ok(mmu, 0x40200000, 2 * MiB, RW, 2 * MiB);
	assert_int_equal(c % (2 * MiB), 0);
	d = map_ok(mmu, 0x40600000, 3 * PG, RW, 2 * MiB);
	assert_int_equal(d % (2 * MiB), 0);
	xlate(mmu, c + 1 * MiB, 2 * MiB, W, 0x40300000, 1 * MiB);
	xlate(mmu, b + 4, 64 * KiB, R, 0x40100004, 64 * KiB - 4);
	/* the holes left for alignment are handed out next */
	e = map_ok(mmu, 0x40800000, PG, RW, 0);
	assert_true(e > a && e < b);
	assert_true(b < c && c < d);
	mmu->ops->destroy(mmu);
}

static void test_dart_region_removed(void **state)
{
	struct tp_iommu *mmu = dart_default();
	uint64_t a1, a2, b1, dva;

	region(mmu, 0x40000000, 32 * MiB, RW);
	region(mmu, 0x42000000, 32 * MiB, RW);
	a1 = map_ok(mmu, 0x40000000, 2 * PG, RW, 0);
	b1 = map_ok(mmu, 0x42000000, 40 * MiB / 2, RW, 0);
	a2 = map_ok(mmu, 0x41ff0000, 0x10000, R, 0);
	assert_int_equal(mmu->st.live, 3);
	region_gone(mmu, 0x40000000, 32 * MiB);
	assert_int_equal(xlate_rc(mmu, a1, R), -EFAULT);
	assert_int_equal(xlate_rc(mmu, a2 + PG, R), -EFAULT);
	xlate(mmu, b1, 1, R, 0x42000000, 1);
	assert_int_equal(mmu->st.live, 1);
	assert_int_equal(mmu->st.bytes, 20 * MiB);
	assert_int_equal(mmu->ops->unmap(mmu, a1, 2 * PG), -EINVAL); /* already gone */
	assert_int_equal(map(mmu, 0x40000000, PG, R, 0, &dva), -EFAULT);
	region(mmu, 0x40000000, 32 * MiB, RW);
	assert_int_equal(map_ok(mmu, 0x40000000, PG, R, 0), a1);
	region_gone(mmu, 0x42000000, 32 * MiB);
	assert_int_equal(mmu->st.live, 1);
	/* reset: every mapping goes, the regions stay */
	mmu->ops->reset(mmu);
	assert_int_equal(xlate_rc(mmu, a1, R), -EFAULT);
	assert_int_equal(mmu->st.live, 0);
	assert_int_equal(mmu->st.tables, 1);
	assert_int_equal(map_ok(mmu, 0x40004000, PG, R, 0), a1);
	mmu->ops->destroy(mmu);
}

/* ---- randomized run against a reference model ---- */

/* The aperture: 40 MiB from 32 MiB - 128 KiB, over three L2 tables. */
#define RBASE (32 * MiB - 128 * KiB)
#define RSIZE (40 * MiB)
#define RPAGES (RSIZE / PG)
#define RMAX_BYTES (36 * MiB)
#define RMAX_MAPS 200

struct ref_page { uint64_t iova; uint32_t prot; };       /* prot 0: unmapped */
struct ref_map { uint64_t dva, len, page, npages, iova_page; }; /* page: index */
struct ref_region { uint64_t iova, size; uint32_t prot; };

#define NREF 5
static const struct ref_region ref_regions[NREF] = {
	{ 0x40000000, 64 * MiB, RW },
	{ 0x48001000, 16 * MiB - 0x1000, RW },   /* starts inside a page */
	{ 0x50000000, 8 * MiB + 0x3000, R },     /* ends inside one, read-only */
	{ 0x60000000, 4 * MiB, RW },
	{ 0x60400000, 4 * MiB, W },              /* touches the one before */
};

struct ref {
	struct ref_page pg[RPAGES];
	struct ref_map m[RMAX_MAPS];
	uint32_t n;
	uint64_t bytes, maps, unmaps, refused;
	uint64_t rng;
};

static uint64_t rnd(struct ref *r, uint64_t n)
{
	r->rng ^= r->rng << 13;
	r->rng ^= r->rng >> 7;
	r->rng ^= r->rng << 17;
	return n ? r->rng % n : r->rng;
}

static const struct ref_region *ref_region_of(uint64_t iova)
{
	for (size_t i = 0; i < NREF; i++)
		if (iova >= ref_regions[i].iova && iova - ref_regions[i].iova < ref_regions[i].size)
			return &ref_regions[i];
	return NULL;
}

/* What map() must answer, but for the aperture (checked against the pages). */
static int ref_predict(const struct ref *r, uint64_t iova, uint64_t len, uint32_t prot,
		       uint64_t align, uint64_t *npages)
{
	const struct ref_region *g = ref_region_of(iova);
	uint64_t first = iova & ~(PG - 1), end = (iova + len + PG - 1) & ~(PG - 1);

	if (!len || !prot || (prot & ~RW) || (align > 1 && (align & (align - 1))))
		return -EINVAL;
	if (align > 1 && (iova & (PG - 1) & (align - 1)))
		return -EINVAL;
	if (!g || iova + len > g->iova + g->size)
		return -EFAULT;
	if (first < g->iova || end > g->iova + g->size)
		return -EINVAL;
	if ((g->prot & prot) != prot)
		return -EACCES;
	*npages = (end - first) / PG;
	if (r->n >= RMAX_MAPS || r->bytes + *npages * PG > RMAX_BYTES)
		return -ENOSPC;
	return 0;
}

/* The lowest aperture page index where npages free pages start at an
 * aligned device address, or RPAGES: what first fit must find. */
static uint64_t ref_first_fit(const struct ref *r, uint64_t npages, uint64_t align)
{
	uint64_t ap = align > PG ? align / PG : 1, run = 0;
	static uint32_t free_run[RPAGES + 1];

	free_run[RPAGES] = 0;
	for (uint64_t i = RPAGES; i-- > 0;) {
		run = r->pg[i].prot ? 0 : run + 1;
		free_run[i] = (uint32_t)run;
	}
	for (uint64_t i = 0; i < RPAGES; i++)
		if ((RBASE / PG + i) % ap == 0 && free_run[i] >= npages)
			return i;
	return RPAGES;
}

static void ref_translate_check(struct tp_iommu *mmu, struct ref *r)
{
	uint64_t dva = RBASE - 4 * PG + rnd(r, RSIZE + 8 * PG), len = 1 + rnd(r, 3 * PG);
	uint32_t prot = (uint32_t)rnd(r, 4);
	uint64_t iova = 0, contig = 0, i = (dva - RBASE) / PG, want, run;
	int rc = mmu->ops->translate(mmu, dva, len, prot, &iova, &contig);

	if (dva < RBASE || dva >= RBASE + RSIZE || !r->pg[i].prot) {
		assert_int_equal(rc, -EFAULT);
		return;
	}
	if ((r->pg[i].prot & prot) != prot) {
		assert_int_equal(rc, -EACCES);
		return;
	}
	assert_int_equal(rc, 0);
	want = r->pg[i].iova + dva % PG;
	assert_int_equal(iova, want);
	run = PG - dva % PG;
	while (run < len && i + 1 < RPAGES && r->pg[i + 1].prot &&
	       (r->pg[i + 1].prot & prot) == prot && r->pg[i + 1].iova == r->pg[i].iova + PG) {
		i++;
		run += PG;
	}
	assert_int_equal(contig, run < len ? run : len);
}

static void ref_drop(struct ref *r, uint32_t k)
{
	for (uint64_t p = 0; p < r->m[k].npages; p++)
		r->pg[r->m[k].page + p].prot = 0;
	r->bytes -= r->m[k].npages * PG;
	r->m[k] = r->m[--r->n];
}

static void ref_map_once(struct tp_iommu *mmu, struct ref *r)
{
	static const uint64_t aligns[] = { 0, 1, 4 * KiB, 16 * KiB, 64 * KiB, 2 * MiB };
	const struct ref_region *g = &ref_regions[rnd(r, NREF)];
	uint64_t len = rnd(r, 8) ? 1 + rnd(r, 12 * PG) : 1 + rnd(r, 4 * MiB);
	uint64_t iova = g->iova + rnd(r, g->size), align = aligns[rnd(r, 6)];
	uint32_t prot = rnd(r, 30) ? 1 + (uint32_t)rnd(r, 3) : (uint32_t)rnd(r, 8);
	uint32_t pick = (uint32_t)rnd(r, 8);
	uint64_t npages = 0, dva = 0, at;
	int want, rc;

	/* mostly whole pages; sub-page offsets mostly without an alignment */
	if (pick < 5)
		iova &= ~(PG - 1);
	else if (pick < 7)
		iova &= ~(4 * KiB - 1);
	if (pick >= 5 && rnd(r, 4))
		align = 0;
	if (rnd(r, 6) && (prot & g->prot)) /* mostly what the region allows */
		prot &= g->prot;
	if (!rnd(r, 50))
		iova = 0x70000000 + rnd(r, 1 * MiB); /* no region */
	want = ref_predict(r, iova, len, prot, align, &npages);
	rc = map(mmu, iova, len, prot, align, &dva);
	if (want) {
		assert_int_equal(rc, want);
		r->refused++;
		return;
	}
	at = ref_first_fit(r, npages, align);
	if (at == RPAGES) {
		assert_int_equal(rc, -ENOMEM);
		r->refused++;
		return;
	}
	assert_int_equal(rc, 0);
	assert_int_equal(dva % PG, iova % PG);
	if (align > 1)
		assert_int_equal(dva % align, 0);
	assert_int_equal(dva / PG, RBASE / PG + at); /* first fit, no overlap */
	for (uint64_t p = 0; p < npages; p++)
		r->pg[at + p] = (struct ref_page){ (iova & ~(PG - 1)) + p * PG, prot };
	r->m[r->n++] = (struct ref_map){ dva, len, at, npages, iova & ~(PG - 1) };
	r->bytes += npages * PG;
	r->maps++;
}

static void ref_check_stats(struct tp_iommu *mmu, const struct ref *r)
{
	struct tp_iommu_stats want = { r->maps, r->unmaps, r->n, r->bytes, r->bytes / PG,
				       r->refused, mmu->st.tables };

	assert_memory_equal(&mmu->st, &want, sizeof(want));
}

static void test_dart_random(void **state)
{
	struct tp_iommu *mmu = dart_new(RBASE, RSIZE, RMAX_BYTES, RMAX_MAPS);
	struct ref *r = test_calloc(1, sizeof(*r));
	const char *seed = getenv("TP_TEST_SEED");

	r->rng = seed ? strtoull(seed, NULL, 0) : 0x9e3779b97f4a7c15ull;
	for (size_t i = 0; i < NREF; i++)
		region(mmu, ref_regions[i].iova, ref_regions[i].size, ref_regions[i].prot);
	for (int step = 0; step < 4000; step++) {
		uint64_t op = rnd(r, 100);
		/* phases: fill up to the caps and the aperture's end, then drain */
		bool fill = (step / 500) % 2 == 0;

		if (op < (fill ? 85u : 30u) || !r->n) {
			ref_map_once(mmu, r);
		} else if (fill || op < 98) {
			uint32_t k = (uint32_t)rnd(r, r->n);

			assert_int_equal(mmu->ops->unmap(mmu, r->m[k].dva, r->m[k].len + 1), -EINVAL);
			assert_int_equal(mmu->ops->unmap(mmu, r->m[k].dva, r->m[k].len), 0);
			ref_drop(r, k);
			r->unmaps++;
		} else {
			/* a region leaves (its mappings with it) and comes back */
			const struct ref_region *g = &ref_regions[rnd(r, NREF)];

			region_gone(mmu, g->iova, g->size);
			for (uint32_t k = r->n; k-- > 0;)
				if (r->m[k].iova_page < g->iova + g->size &&
				    g->iova < r->m[k].iova_page + r->m[k].npages * PG)
					ref_drop(r, k);
			region(mmu, g->iova, g->size, g->prot);
		}
		ref_check_stats(mmu, r);
		for (int t = 0; t < 4; t++)
			ref_translate_check(mmu, r);
	}
	while (r->n) {
		uint32_t k = (uint32_t)rnd(r, r->n);

		assert_int_equal(mmu->ops->unmap(mmu, r->m[k].dva, r->m[k].len), 0);
		ref_drop(r, k);
		r->unmaps++;
	}
	ref_check_stats(mmu, r);
	assert_int_equal(mmu->st.tables, 1);
	/* everything coalesced again: a mapping of 32 MiB at 2 MiB fits */
	assert_int_equal(map_ok(mmu, 0x40000000, 32 * MiB, RW, 2 * MiB) % (2 * MiB), 0);
	test_free(r);
	mmu->ops->destroy(mmu);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_identity),
		cmocka_unit_test(test_dart_defaults),
		cmocka_unit_test(test_dart_map_translate),
		cmocka_unit_test(test_dart_l2_boundary),
		cmocka_unit_test(test_dart_pte_format),
		cmocka_unit_test(test_dart_unmap),
		cmocka_unit_test(test_dart_permissions),
		cmocka_unit_test(test_dart_caps),
		cmocka_unit_test(test_dart_aperture),
		cmocka_unit_test(test_dart_alignment_rule),
		cmocka_unit_test(test_dart_aligned_dva),
		cmocka_unit_test(test_dart_region_removed),
		cmocka_unit_test(test_dart_random),
	};

	tp_log_set_level(TP_LOG_ERROR); /* every refusal warns, by design */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
