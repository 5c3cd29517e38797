/* SPDX-License-Identifier: MIT */
/*
 * The vfio backend's parsing of what the kernel returns (backends/vfio/
 * vfio_caps.c), with no kernel: region-info capability chains (sparse mmap,
 * MSI-X mappable) good and broken, the MSI-X capability in config space,
 * the ranges a client may map once the MSI-X table and PBA are cut out, and
 * the IOMMU info capabilities (IOVA ranges, DMA mappings available).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../backends/vfio/vfio.h"

#define MiB (1024ull * 1024)

/* A GET_REGION_INFO answer: the fixed part, then caps written at offsets. */
struct answer {
	uint8_t b[1024];
	uint32_t len;
};

static void answer_init(struct answer *a, uint64_t size, uint32_t first_cap)
{
	struct vfio_region_info info = {
		.argsz = sizeof(a->b),
		.flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE |
			 VFIO_REGION_INFO_FLAG_MMAP | (first_cap ? VFIO_REGION_INFO_FLAG_CAPS : 0),
		.cap_offset = first_cap,
		.size = size,
	};

	memset(a, 0, sizeof(*a));
	memcpy(a->b, &info, sizeof(info));
	a->len = sizeof(a->b);
}

/* A sparse-mmap cap at off with n areas; returns the offset after it. */
static uint32_t put_sparse(struct answer *a, uint32_t off, uint32_t next, uint32_t n,
			   const struct vfio_region_sparse_mmap_area *areas)
{
	struct vfio_region_info_cap_sparse_mmap sp = {
		.header = { .id = VFIO_REGION_INFO_CAP_SPARSE_MMAP, .version = 1, .next = next },
		.nr_areas = n,
	};

	memcpy(a->b + off, &sp, sizeof(sp));
	memcpy(a->b + off + sizeof(sp), areas, n * sizeof(*areas));
	return off + (uint32_t)(sizeof(sp) + n * sizeof(*areas));
}

static void put_hdr(struct answer *a, uint32_t off, uint16_t id, uint32_t next)
{
	struct vfio_info_cap_header h = { .id = id, .version = 1, .next = next };

	memcpy(a->b + off, &h, sizeof(h));
}

static void region_for(struct vfio_region *r, uint64_t size)
{
	memset(r, 0, sizeof(*r));
	r->size = size;
	r->flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE |
		   VFIO_REGION_INFO_FLAG_MMAP;
}

static void test_sparse_and_msix_mappable(void **state)
{
	struct vfio_region_sparse_mmap_area areas[2] = {
		{ 0, 0x2000 },
		{ 0x4000, 16 * MiB - 0x4000 },
	};
	struct answer a;
	struct vfio_region r;
	const char *why = NULL;
	uint32_t first = sizeof(struct vfio_region_info), second;

	(void)state;
	answer_init(&a, 16 * MiB, first);
	second = put_sparse(&a, first, 0, 2, areas);
	/* chain: sparse -> MSI-X mappable */
	put_sparse(&a, first, second, 2, areas);
	put_hdr(&a, second, VFIO_REGION_INFO_CAP_MSIX_MAPPABLE, 0);
	region_for(&r, 16 * MiB);
	assert_int_equal(vfio_parse_region_caps(a.b, a.len, &r, &why), 0);
	assert_true(r.has_sparse);
	assert_true(r.msix_mappable);
	assert_int_equal(r.nr_sparse, 2);
	assert_int_equal(r.sparse[1].offset, 0x4000);
	assert_int_equal(r.sparse[1].size, 16 * MiB - 0x4000);
}

static void test_no_caps(void **state)
{
	struct answer a;
	struct vfio_region r;
	const char *why = NULL;

	(void)state;
	answer_init(&a, 1 * MiB, 0);
	region_for(&r, 1 * MiB);
	assert_int_equal(vfio_parse_region_caps(a.b, a.len, &r, &why), 0);
	assert_false(r.has_sparse);
	assert_int_equal(vfio_parse_region_caps(a.b, 8, &r, &why), -EPROTO);
}

static void test_broken_chains(void **state)
{
	struct vfio_region_sparse_mmap_area out[1] = { { 0x1000, 2 * MiB } };
	struct vfio_region_sparse_mmap_area many[VFIO_MAX_SPARSE + 1];
	uint32_t first = sizeof(struct vfio_region_info);
	struct answer a;
	struct vfio_region r;
	const char *why = NULL;

	(void)state;
	/* A chain that points back at itself. */
	answer_init(&a, 1 * MiB, first);
	put_hdr(&a, first, 99, first);
	region_for(&r, 1 * MiB);
	assert_int_equal(vfio_parse_region_caps(a.b, a.len, &r, &why), -EPROTO);
	assert_non_null(why);
	/* A first cap inside the fixed part, or past the answer. */
	answer_init(&a, 1 * MiB, 8);
	assert_int_equal(vfio_parse_region_caps(a.b, a.len, &r, &why), -EPROTO);
	answer_init(&a, 1 * MiB, 2000);
	assert_int_equal(vfio_parse_region_caps(a.b, a.len, &r, &why), -EPROTO);
	/* An area beyond the region. */
	answer_init(&a, 1 * MiB, first);
	put_sparse(&a, first, 0, 1, out);
	assert_int_equal(vfio_parse_region_caps(a.b, a.len, &r, &why), -EPROTO);
	/* More areas than we keep, and areas cut short by the answer's end. */
	memset(many, 0, sizeof(many));
	answer_init(&a, 1 * MiB, first);
	put_sparse(&a, first, 0, VFIO_MAX_SPARSE + 1, many);
	assert_int_equal(vfio_parse_region_caps(a.b, a.len, &r, &why), -EPROTO);
	answer_init(&a, 1 * MiB, first);
	put_sparse(&a, first, 0, 2, many);
	assert_int_equal(vfio_parse_region_caps(a.b, first + 24, &r, &why), -EPROTO);
}

/* Config space with PM at 0x40 and MSI-X at 0x50. */
static void msix_cfg(uint8_t cfg[256], uint32_t vectors, uint32_t table, uint32_t pba)
{
	memset(cfg, 0, 256);
	cfg[0x06] = 0x10; /* capability list */
	cfg[0x34] = 0x40;
	cfg[0x40] = 0x01;
	cfg[0x41] = 0x50;
	cfg[0x50] = 0x11;
	cfg[0x51] = 0x00;
	cfg[0x52] = (uint8_t)((vectors - 1) & 0xff);
	cfg[0x53] = (uint8_t)((vectors - 1) >> 8);
	memcpy(cfg + 0x54, &table, 4);
	memcpy(cfg + 0x58, &pba, 4);
}

static void test_find_msix(void **state)
{
	uint8_t cfg[256];
	struct vfio_msix m;
	const char *why = NULL;

	(void)state;
	msix_cfg(cfg, 100, 0x2000 | 0, 0x3000 | 0);
	assert_int_equal(vfio_find_msix(cfg, sizeof(cfg), &m, &why), 0);
	assert_true(m.present);
	assert_int_equal(m.vectors, 100);
	assert_int_equal(m.table_bar, 0);
	assert_int_equal(m.table_off, 0x2000);
	assert_int_equal(m.table_size, 1600);
	assert_int_equal(m.pba_off, 0x3000);
	assert_int_equal(m.pba_size, 16);
	/* No capability list. */
	cfg[0x06] = 0;
	assert_int_equal(vfio_find_msix(cfg, sizeof(cfg), &m, &why), 0);
	assert_false(m.present);
	/* A loop, and a pointer into the header. */
	msix_cfg(cfg, 1, 0, 0);
	cfg[0x50] = 0x05;
	cfg[0x51] = 0x40;
	assert_int_equal(vfio_find_msix(cfg, sizeof(cfg), &m, &why), -EPROTO);
	cfg[0x51] = 0x20;
	assert_int_equal(vfio_find_msix(cfg, sizeof(cfg), &m, &why), -EPROTO);
	/* The table in "BAR7". */
	msix_cfg(cfg, 4, 0x1000 | 7, 0x2000);
	assert_int_equal(vfio_find_msix(cfg, sizeof(cfg), &m, &why), -EPROTO);
}

static void test_mappable_areas(void **state)
{
	struct vfio_msix m = {
		.present = true, .vectors = 100, .table_bar = 0, .table_off = 0x2000,
		.table_size = 1600, .pba_bar = 0, .pba_off = 0x3000, .pba_size = 16,
	};
	struct vfio_region r;

	(void)state;
	/* The whole BAR, less the table page and the PBA page. */
	region_for(&r, 16 * MiB);
	assert_int_equal(vfio_mappable_areas(&r, 0, &m, 4096), 0);
	assert_int_equal(r.nr_areas, 2);
	assert_int_equal(r.areas[0].offset, 0);
	assert_int_equal(r.areas[0].size, 0x2000);
	assert_int_equal(r.areas[1].offset, 0x4000);
	assert_int_equal(r.areas[1].size, 16 * MiB - 0x4000);
	/* 64 KiB host pages: both windows fall in the first page. */
	assert_int_equal(vfio_mappable_areas(&r, 0, &m, 65536), 0);
	assert_int_equal(r.nr_areas, 1);
	assert_int_equal(r.areas[0].offset, 0x10000);
	/* Another BAR: untouched. */
	assert_int_equal(vfio_mappable_areas(&r, 1, &m, 4096), 0);
	assert_int_equal(r.nr_areas, 1);
	assert_int_equal(r.areas[0].size, 16 * MiB);
	/* No MMAP flag: nothing; ROM/config: nothing. */
	r.flags &= ~VFIO_REGION_INFO_FLAG_MMAP;
	assert_int_equal(vfio_mappable_areas(&r, 0, NULL, 4096), 0);
	assert_int_equal(r.nr_areas, 0);
	region_for(&r, 1 * MiB);
	assert_int_equal(vfio_mappable_areas(&r, TP_REGION_ROM, NULL, 4096), 0);
	assert_int_equal(r.nr_areas, 0);
	/* The kernel's sparse areas, a partial page trimmed to whole pages. */
	region_for(&r, 1 * MiB);
	r.has_sparse = true;
	r.nr_sparse = 2;
	r.sparse[0] = (struct tp_mmap_area){ 0x800, 0x2000 };
	r.sparse[1] = (struct tp_mmap_area){ 0x8000, 0x1000 };
	assert_int_equal(vfio_mappable_areas(&r, 2, NULL, 4096), 0);
	assert_int_equal(r.nr_areas, 2);
	assert_int_equal(r.areas[0].offset, 0x1000);
	assert_int_equal(r.areas[0].size, 0x1000);
	assert_int_equal(r.areas[1].offset, 0x8000);
	/* More pieces than a reply can carry: the first ones, and -ENOSPC. */
	region_for(&r, 1 * MiB);
	r.has_sparse = true;
	r.nr_sparse = 10;
	for (uint32_t i = 0; i < 10; i++)
		r.sparse[i] = (struct tp_mmap_area){ i * 0x10000, 0x1000 };
	assert_int_equal(vfio_mappable_areas(&r, 0, NULL, 4096), -ENOSPC);
	assert_int_equal(r.nr_areas, TP_MAX_MMAP_AREAS);
}

static void test_iommu_caps(void **state)
{
	/* info (24 bytes), 4 bytes of gap, the IOVA ranges cap with two
	 * ranges, then the DMA-available cap. */
	enum { IR = 28, R0 = IR + 16, DA = R0 + 32, END = DA + 12 };
	struct vfio_iommu_type1_info info = {
		.argsz = END,
		.flags = VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS,
		.iova_pgsizes = 0x40201000,
		.cap_offset = IR,
	};
	struct vfio_iommu_type1_info_cap_iova_range ir = {
		.header = { .id = VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, .version = 1, .next = DA },
		.nr_iovas = 2,
	};
	struct vfio_iova_range r[2] = { { 0, 0xfedfffff }, { 0xfef00000, 0xffffffffffffull } };
	struct vfio_iommu_type1_info_dma_avail da = {
		.header = { .id = VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, .version = 1 },
		.avail = 65535,
	};
	static struct vfio_dev v;
	uint8_t b[END];
	const char *why = NULL;

	(void)state;
	assert_true(sizeof(info) <= IR && sizeof(ir) == 16 && sizeof(da) == 12);
	memset(b, 0, sizeof(b));
	memcpy(b, &info, sizeof(info));
	memcpy(b + IR, &ir, sizeof(ir));
	memcpy(b + R0, r, sizeof(r));
	memcpy(b + DA, &da, sizeof(da));
	assert_int_equal(vfio_parse_iommu_caps(b, sizeof(b), &v, &why), 0);
	assert_int_equal(v.iova_pgsizes, 0x40201000);
	assert_int_equal(v.nr_iova, 2);
	assert_int_equal(v.iova[0].end, 0xfedfffff);
	assert_int_equal(v.iova[1].start, 0xfef00000);
	assert_true(v.have_dma_avail);
	assert_int_equal(v.dma_avail, 65535);
	/* A range that ends before it starts; ranges cut short. */
	r[1] = (struct vfio_iova_range){ 0x2000, 0x1000 };
	memcpy(b + R0, r, sizeof(r));
	assert_int_equal(vfio_parse_iommu_caps(b, sizeof(b), &v, &why), -EPROTO);
	r[1] = (struct vfio_iova_range){ 0x1000, 0x2000 };
	memcpy(b + R0, r, sizeof(r));
	ir.nr_iovas = 1000;
	memcpy(b + IR, &ir, sizeof(ir));
	assert_int_equal(vfio_parse_iommu_caps(b, sizeof(b), &v, &why), -EPROTO);
	/* A cap that points back at the first one. */
	ir.nr_iovas = 2;
	memcpy(b + IR, &ir, sizeof(ir));
	da.header.next = IR;
	memcpy(b + DA, &da, sizeof(da));
	assert_int_equal(vfio_parse_iommu_caps(b, sizeof(b), &v, &why), -EPROTO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sparse_and_msix_mappable),
		cmocka_unit_test(test_no_caps),
		cmocka_unit_test(test_broken_chains),
		cmocka_unit_test(test_find_msix),
		cmocka_unit_test(test_mappable_areas),
		cmocka_unit_test(test_iommu_caps),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
