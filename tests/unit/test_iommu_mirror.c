/* SPDX-License-Identifier: MIT */
/*
 * The core's IOMMU mirror (lib/device.c, lib/iommu_dart.c): a backend with
 * iommu_model/iommu_mapped/iommu_unmapped (the proxy's dma=mirror) learns
 * the model's name at open (and may refuse it), then every mapping the model
 * makes and tears down, whoever asked: tp_device_iommu_map/unmap (pvdma's
 * path is the model's own map/unmap, the same calls), guest memory leaving,
 * the session ending. Whole 16 KiB pages, with the guest region (and its
 * fd) that holds them; unmapped comes while the pages still translate and
 * the region is still there; a refusal undoes the map; identity reports
 * nothing; nothing comes after tp_device_close.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "device.h"
#include "fake_backend.h"

#define GUEST_IOVA 0x40000000ull
#define GUEST_SIZE (4ull << 20)
#define PG 0x4000ull
#define RW (TP_VU_DMA_READ_OK | TP_VU_DMA_WRITE_OK)

/* What the backend heard. */
static struct {
	struct tp_device *dev;
	char model[16];
	int model_rc, mapped_rc;
	unsigned mapped, unmapped, after_close;
	bool closed;
	uint64_t dva, iova, len;
	uint32_t prot;
	int fd;
	uint64_t fd_offset, region_iova;
	/* at the last unmapped: did dva still translate, was its region there */
	bool still_translates, region_there, fd_open;
	uint64_t un_dva, un_len;
} h;

static int be_model(struct tp_backend *be, const char *model)
{
	snprintf(h.model, sizeof(h.model), "%s", model);
	return h.model_rc;
}

static int be_mapped(struct tp_backend *be, uint64_t dva, uint64_t iova, uint64_t len,
		     uint32_t prot, const struct tp_dma_region *r)
{
	if (h.closed)
		h.after_close++;
	h.mapped++;
	h.dva = dva, h.iova = iova, h.len = len, h.prot = prot;
	h.fd = r->fd, h.fd_offset = r->fd_offset, h.region_iova = r->iova;
	return h.mapped_rc;
}

static void be_unmapped(struct tp_backend *be, uint64_t dva, uint64_t len)
{
	struct tp_iommu *mmu = h.dev->iommu;
	uint64_t iova, contig;

	if (h.closed)
		h.after_close++;
	h.unmapped++;
	h.un_dva = dva, h.un_len = len;
	h.still_translates = !mmu->ops->translate(mmu, dva, len, TP_VU_DMA_READ_OK, &iova, &contig);
	h.region_there = tp_dma_find(&h.dev->dma, iova) != NULL;
	h.fd_open = h.region_there && fcntl(tp_dma_find(&h.dev->dma, iova)->fd, F_GETFD) >= 0;
}

static void open_dev(struct tp_device *d, struct fake_be *fb, const char *model, int rc)
{
	int memfd;

	memset(&h, 0, sizeof(h));
	h.dev = d;
	h.fd = -1;
	assert_int_equal(fake_be_init(fb, NULL), 0);
	fb->ops.iommu_model = be_model;
	fb->ops.iommu_mapped = be_mapped;
	fb->ops.iommu_unmapped = be_unmapped;
	fb->ops.dma_map = NULL;
	fb->ops.dma_unmap = NULL;
	h.model_rc = rc;
	assert_int_equal(tp_device_open(d, &fb->be, model), rc);
	if (rc)
		return;
	memfd = memfd_create("guest", MFD_CLOEXEC);
	assert_true(memfd >= 0);
	assert_int_equal(ftruncate(memfd, 2 * GUEST_SIZE), 0);
	/* The region starts 1 MiB into the memfd: fd offsets must follow. */
	assert_int_equal(tp_device_dma_map(d, GUEST_IOVA, GUEST_SIZE, memfd, 1 << 20, RW), 0);
}

static void test_model_named(void **state)
{
	struct tp_device d;
	struct fake_be fb;

	open_dev(&d, &fb, "identity", 0);
	assert_string_equal(h.model, "identity");
	tp_device_close(&d);
	open_dev(&d, &fb, NULL, 0);
	assert_string_equal(h.model, "identity");
	tp_device_close(&d);
	/* A backend that cannot honour the model fails the open. */
	open_dev(&d, &fb, "dart", -EINVAL);
	assert_string_equal(h.model, "dart");
	tp_device_close(&d);
}

static void test_identity_reports_nothing(void **state)
{
	struct tp_device d;
	struct fake_be fb;
	uint64_t dva;

	open_dev(&d, &fb, "identity", 0);
	assert_int_equal(tp_device_iommu_map(&d, GUEST_IOVA, 0x1000, RW, 0, &dva), 0);
	assert_int_equal(tp_device_iommu_unmap(&d, dva, 0x1000), 0);
	assert_int_equal(tp_device_dma_unmap(&d, GUEST_IOVA, GUEST_SIZE, false), 0);
	assert_int_equal(h.mapped + h.unmapped, 0);
	tp_device_close(&d);
}

static void test_map_unmap(void **state)
{
	struct tp_device d;
	struct fake_be fb;
	uint64_t dva, dva2, iova = GUEST_IOVA + 0x21100;

	open_dev(&d, &fb, "dart", 0);
	assert_string_equal(h.model, "dart");
	/* 0x2000 bytes at page offset 0x1100: one 16 KiB page, the whole of it. */
	assert_int_equal(tp_device_iommu_map(&d, iova, 0x2000, TP_VU_DMA_READ_OK, 0, &dva), 0);
	assert_int_equal(h.mapped, 1);
	assert_int_equal(h.dva, dva & ~(PG - 1));
	assert_int_equal(h.iova, iova & ~(PG - 1));
	assert_int_equal(h.len, PG);
	assert_int_equal(h.prot, TP_VU_DMA_READ_OK);
	assert_int_equal(h.region_iova, GUEST_IOVA);
	assert_true(h.fd >= 0);
	assert_int_equal(h.fd_offset, 1 << 20);
	assert_true(h.dva >= 0x10000000ull && h.dva != h.iova); /* the DART's aperture */

	/* Across pages: 3 pages for 0x8000 bytes at offset 0x2000. */
	iova = GUEST_IOVA + 0x102000;
	assert_int_equal(tp_device_iommu_map(&d, iova, 0x8000, RW, 0, &dva2), 0);
	assert_int_equal(h.len, 3 * PG);
	assert_int_equal(h.iova, GUEST_IOVA + 0x100000);

	assert_int_equal(tp_device_iommu_unmap(&d, dva, 0x2000), 0);
	assert_int_equal(h.unmapped, 1);
	assert_int_equal(h.un_dva, dva & ~(PG - 1));
	assert_int_equal(h.un_len, PG);
	assert_true(h.still_translates); /* told before the pages go */
	/* A refused unmap (no such mapping) tells nothing. */
	assert_int_equal(tp_device_iommu_unmap(&d, dva, 0x2000), -EINVAL);
	assert_int_equal(h.unmapped, 1);
	assert_int_equal(tp_device_iommu_unmap(&d, dva2, 0x8000), 0);
	assert_int_equal(h.unmapped, 2);
	assert_int_equal(h.un_len, 3 * PG);
	tp_device_close(&d);
	assert_int_equal(h.after_close, 0);
}

static void test_refused(void **state)
{
	struct tp_device d;
	struct fake_be fb;
	uint64_t dva, iova, contig;

	open_dev(&d, &fb, "dart", 0);
	h.mapped_rc = -ENOMEM;
	assert_int_equal(tp_device_iommu_map(&d, GUEST_IOVA, PG, RW, 0, &dva), -ENOMEM);
	assert_int_equal(h.mapped, 1);
	assert_int_equal(d.iommu->st.live, 0);
	assert_int_equal(d.iommu->st.maps, 0);
	/* Nothing reachable at the address the model had picked, nothing kept. */
	assert_int_equal(d.iommu->ops->translate(d.iommu, h.dva, PG, TP_VU_DMA_READ_OK, &iova,
						 &contig), -EFAULT);
	assert_int_equal(d.iommu->st.tables, 1);
	h.mapped_rc = 0;
	assert_int_equal(tp_device_iommu_map(&d, GUEST_IOVA, PG, RW, 0, &dva), 0);
	assert_int_equal(dva, h.dva); /* the same pages, free again */
	tp_device_dma_unmap(&d, 0, 0, true);
	assert_int_equal(h.unmapped, 1); /* only for the map that was made */
	tp_device_close(&d);
}

/* Guest memory leaving takes the mappings into it, each told before it goes,
 * while the region (and its fd) is still there. */
static void test_region_gone(void **state)
{
	struct tp_device d;
	struct fake_be fb;
	uint64_t dva;

	open_dev(&d, &fb, "dart", 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(tp_device_iommu_map(&d, GUEST_IOVA + i * 0x40000, 0x1000, RW, 0,
						     &dva), 0);
	assert_int_equal(tp_device_dma_unmap(&d, GUEST_IOVA, GUEST_SIZE, false), 0);
	assert_int_equal(h.unmapped, 4);
	assert_true(h.still_translates);
	assert_true(h.region_there);
	assert_true(h.fd_open);
	assert_int_equal(d.iommu->st.live, 0);
	tp_device_close(&d);
}

/* The client going away (session end: device reset, memory cleared), and
 * tp_device_close with mappings live: told of each at the session end,
 * nothing after the close. */
static void test_session_end_and_close(void **state)
{
	struct tp_device d;
	struct fake_be fb;
	uint64_t dva;
	int memfd;

	open_dev(&d, &fb, "dart", 0);
	assert_int_equal(tp_device_iommu_map(&d, GUEST_IOVA, 0x1000, RW, 0, &dva), 0);
	assert_int_equal(tp_device_iommu_map(&d, GUEST_IOVA + 0x200000, 0x1000, RW, 0, &dva), 0);
	tp_device_session_end(&d);
	assert_int_equal(h.unmapped, 2);
	assert_true(h.region_there);

	memfd = memfd_create("guest", MFD_CLOEXEC);
	assert_int_equal(ftruncate(memfd, GUEST_SIZE), 0);
	assert_int_equal(tp_device_dma_map(&d, GUEST_IOVA, GUEST_SIZE, memfd, 0, RW), 0);
	assert_int_equal(tp_device_iommu_map(&d, GUEST_IOVA, 0x1000, RW, 0, &dva), 0);
	assert_int_equal(h.mapped, 3);
	h.closed = true;
	tp_device_close(&d);
	assert_int_equal(h.after_close, 0);
	assert_int_equal(h.unmapped, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_model_named),
		cmocka_unit_test(test_identity_reports_nothing),
		cmocka_unit_test(test_map_unmap),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_region_gone),
		cmocka_unit_test(test_session_end_and_close),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
