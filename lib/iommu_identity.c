/* SPDX-License-Identifier: MIT */
/*
 * The identity IOMMU model: a device address is the guest address (IOVA),
 * as kernel VFIO gives on Linux hosts where the host IOMMU is programmed with
 * IOVA = guest physical address for every DMA_MAP'ed region.
 *
 * Nothing is kept per mapping: map() only refuses ranges that wrap and
 * counts, unmap() always succeeds, translate() hands the address back. What
 * is reachable is decided by the guest memory map (lib/dma.h) the caller
 * checks next, which faults every address outside a live region, so this
 * model has nothing to add there.
 */
#include "iommu.h"

#include <errno.h>
#include <stdlib.h>

#include <thunderpass/log.h>

#include "util.h"

static int identity_region_added(struct tp_iommu *mmu, const struct tp_dma_region *r)
{
	return 0;
}

static void identity_region_removed(struct tp_iommu *mmu, const struct tp_dma_region *r)
{
}

static int identity_map(struct tp_iommu *mmu, uint64_t iova, uint64_t len, uint32_t prot,
			uint64_t align, uint64_t *dva)
{
	if (!len || iova + len < iova) {
		tp_warn(mmu->who, "iommu map [%#llx +%#llx]: empty or wrapping range",
			(unsigned long long)iova, (unsigned long long)len);
		mmu->st.refused++;
		return -EINVAL;
	}
	mmu->st.maps++;
	mmu->st.live++;
	mmu->st.bytes += len;
	*dva = iova;
	return 0;
}

/*
 * Nothing to undo. The counters saturate at zero: with no records the model
 * cannot tell an unmap of something never mapped, and a wrapped counter
 * would be worse than a short one.
 */
static int identity_unmap(struct tp_iommu *mmu, uint64_t dva, uint64_t len)
{
	mmu->st.unmaps++;
	if (mmu->st.live)
		mmu->st.live--;
	mmu->st.bytes -= TP_MIN(len, mmu->st.bytes);
	return 0;
}

static int identity_translate(struct tp_iommu *mmu, uint64_t dva, uint64_t len, uint32_t prot,
			      uint64_t *iova, uint64_t *contig)
{
	if (!len)
		return -EINVAL;
	*iova = dva;
	/* Contiguous up to the top of the address space, not past it. */
	*contig = (dva && len > 0 - dva) ? 0 - dva : len;
	return 0;
}

static void identity_reset(struct tp_iommu *mmu)
{
	mmu->st.live = 0;
	mmu->st.bytes = 0;
}

static void identity_destroy(struct tp_iommu *mmu)
{
	free(mmu);
}

static const struct tp_iommu_ops identity_ops = {
	.name = "identity",
	.region_added = identity_region_added,
	.region_removed = identity_region_removed,
	.map = identity_map,
	.unmap = identity_unmap,
	.translate = identity_translate,
	.reset = identity_reset,
	.destroy = identity_destroy,
};

int tp_iommu_identity_create(const char *who, struct tp_iommu **out)
{
	struct tp_iommu *mmu = tp_calloc(1, sizeof(*mmu));

	if (!mmu) {
		tp_err(who, "iommu identity: out of memory");
		return -ENOMEM;
	}
	mmu->ops = &identity_ops;
	mmu->who = who;
	*out = mmu;
	return 0;
}
