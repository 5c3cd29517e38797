/* SPDX-License-Identifier: MIT */
/*
 * IOMMU models: how a device address (what the device puts on the bus) becomes
 * a guest address (an IOVA of the guest memory map, lib/dma.h). One interface,
 * chosen per backend:
 *
 *   identity  device address = guest physical address, as kernel VFIO gives
 *             (the Linux backends). Every DMA_MAP'ed region is reachable.
 *   dart      the host picks device addresses, as Apple's DART does for a
 *             PCIDriverKit driver: 16 KiB pages, a two-level page table in the
 *             DART's format, a bounded aperture, caps on bytes mapped and on
 *             live mappings. Nothing is reachable until map() is called, and
 *             map() returns the device address: the caller cannot choose it.
 *
 * Locking: the caller serializes map/unmap/region_* against translate (the
 * device's dma lock: writers map, the engine reads).
 *
 * Errors: -errno. map/unmap refusals are logged (warn) here with `who`;
 * translate faults are not logged here: the caller counts them and logs once
 * per burst.
 */
#ifndef TP_IOMMU_H
#define TP_IOMMU_H

#include <stdbool.h>
#include <stdint.h>

#include <thunderpass/backend.h>

struct tp_iommu;

struct tp_iommu_stats {
	uint64_t maps, unmaps;       /* successful calls */
	uint64_t live;               /* mappings now */
	uint64_t bytes;              /* bytes mapped now (after widening to pages) */
	uint64_t pages;              /* IOMMU pages mapped now */
	uint64_t refused;            /* map calls refused (caps, alignment, range) */
	uint64_t tables;             /* page-table pages allocated now (dart) */
};

struct tp_iommu_ops {
	const char *name;
	/*
	 * Guest memory came (DMA_MAP) or goes (DMA_UNMAP, client gone). On
	 * removal a model must make every device address into that region fault
	 * from now on (dart: tear down the mappings that point into it).
	 */
	int (*region_added)(struct tp_iommu *mmu, const struct tp_dma_region *r);
	void (*region_removed)(struct tp_iommu *mmu, const struct tp_dma_region *r);
	/*
	 * Makes [iova, iova + len) of guest memory reachable for the device with
	 * prot (TP_VU_DMA_READ_OK/WRITE_OK) at a device address of the model's
	 * choosing, aligned at least to `align` (a power of two; 0 or 1: none).
	 * identity: returns iova (align ignored).
	 */
	int (*map)(struct tp_iommu *mmu, uint64_t iova, uint64_t len, uint32_t prot,
		   uint64_t align, uint64_t *dva);
	/* Undoes one map() by its device address and length. */
	int (*unmap)(struct tp_iommu *mmu, uint64_t dva, uint64_t len);
	/*
	 * Device address -> guest IOVA for an access needing prot. *contig: how
	 * many bytes from dva stay contiguous in IOVA space (at least 1, at most
	 * len). -EFAULT: not mapped; -EACCES: mapped without prot.
	 */
	int (*translate)(struct tp_iommu *mmu, uint64_t dva, uint64_t len, uint32_t prot,
			 uint64_t *iova, uint64_t *contig);
	/* Drops every mapping (client gone). */
	void (*reset)(struct tp_iommu *mmu);
	void (*destroy)(struct tp_iommu *mmu);
};

/*
 * Optional observer of the mappings a model makes and tears down, whoever
 * asked (map/unmap, region_removed, reset): the core uses it to mirror them
 * into a backend whose device reaches guest memory past the core (the proxy
 * gives a remote server fds of exactly the guest pages the model mapped).
 * Reported in whole model pages, [dva, dva + len) -> [iova, iova + len): what
 * the device can reach. dart reports; identity (nothing to map) does not.
 * Called with the caller's lock held (the device's DMA lock, write side).
 * mapped() may refuse: the model undoes that map and map() returns its error
 * (unmapped() is not called for it). unmapped() comes before the pages stop
 * translating. destroy() reports nothing. ops NULL: no observer.
 */
struct tp_iommu_observer_ops {
	int (*mapped)(void *ctx, uint64_t dva, uint64_t iova, uint64_t len, uint32_t prot);
	void (*unmapped)(void *ctx, uint64_t dva, uint64_t len);
};

struct tp_iommu {
	const struct tp_iommu_ops *ops;
	const char *who;
	struct tp_iommu_stats st;
	const struct tp_iommu_observer_ops *obs; /* set by the owner; NULL: none */
	void *obs_ctx;
};

struct tp_dart_config {
	uint64_t aperture_base;  /* first device address handed out */
	uint64_t aperture_size;  /* bytes of device address space */
	uint64_t max_bytes;      /* cap on bytes mapped at once (default 1.5 GiB) */
	uint64_t max_mappings;   /* cap on live map() calls (default 65536) */
};

void tp_dart_config_default(struct tp_dart_config *c);

int tp_iommu_identity_create(const char *who, struct tp_iommu **out);
int tp_iommu_dart_create(const char *who, const struct tp_dart_config *c, struct tp_iommu **out);
/* By name ("identity", "dart"), with defaults. */
int tp_iommu_create(const char *name, const char *who, struct tp_iommu **out);

/*
 * Tests and debugging (dart only): the raw L1 entry and leaf PTE the walk
 * reads for dva (docs/iommu.md has the format). -ENOENT: no L2 table there
 * (*l2e = 0); -EFAULT: dva beyond the L1 table; -EINVAL: not a dart model.
 */
int tp_dart_read_ptes(struct tp_iommu *mmu, uint64_t dva, uint64_t *l1e, uint64_t *l2e);

#endif
