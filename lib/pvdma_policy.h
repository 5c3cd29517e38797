/* SPDX-License-Identifier: MIT */
/*
 * The pvdma mapping policy (docs/pvdma.md, "Mapping policy"): turns a guest's
 * MAP/UNMAP requests into IOMMU mappings on a model that picks device
 * addresses itself (dart).
 *
 *   windows   guest memory in windows of W bytes, W-aligned in guest-physical
 *             space, clipped to the guest region (and its whole granules);
 *             every request inside one window takes a reference on it
 *   own       a request that crosses a window (or needs more alignment than
 *             its window gives) gets a mapping of its own
 *   alignment every mapping sits at a device address aligned like its guest
 *             start up to 2 MiB, so dva % min(2 MiB, lowbit(gpa)) equals
 *             gpa % min(2 MiB, lowbit(gpa)) for every request
 *   lazy      a window whose last reference goes stays mapped lazy_ns (and
 *             at most lazy_max bytes of such windows), reused if asked again
 *   caps      max_bytes / max_mappings are never passed: lazy windows go
 *             first, then the MAP waits (PENDING) in FIFO order and is
 *             completed through the done callback when room frees
 *   handles   one per reference: generation << 32 | (slot + 1); a stale or
 *             unknown one is BAD_HANDLE, never someone else's mapping
 *
 * Pure logic: no threads, no sockets, no clock of its own (every call takes
 * `now`, in ns). The caller serializes every call and holds whatever lock
 * guards the IOMMU model and the guest memory map (the device's DMA lock,
 * for writing): the policy calls mmu->ops->map/unmap and tp_dma_find itself.
 *
 * Errors: requests answer with the status codes of the spec; refusals the
 * guest can provoke are not logged here (the caller rate-limits), host
 * failures (memory) are logged once where decided.
 */
#ifndef TP_PVDMA_POLICY_H
#define TP_PVDMA_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#include "dma.h"
#include "iommu.h"

/* Entry status codes (docs/pvdma.md). */
enum tp_pv_status {
	TP_PV_OK = 0,
	TP_PV_BAD_OP = 1,
	TP_PV_BAD_RANGE = 2,
	TP_PV_NOT_ALIGNED = 3,
	TP_PV_CAP = 4,
	TP_PV_BAD_HANDLE = 5,
	TP_PV_DISABLED = 6,
	TP_PV_NO_SPACE = 7,
	TP_PV_STATUS_COUNT,
	TP_PV_PENDING = 0xffffffffu,
};

#define TP_PV_WINDOW_DEFAULT (256ull << 10)
#define TP_PV_GRANULE_DEFAULT (16ull << 10)
#define TP_PV_LAZY_NS_DEFAULT 10000000ull   /* 10 ms */
#define TP_PV_LAZY_MAX_DEFAULT (64ull << 20)
#define TP_PV_MAX_BYTES_DEFAULT (1536ull << 20)
#define TP_PV_MAX_MAPPINGS_DEFAULT 65536u
#define TP_PV_MAX_HANDLES_DEFAULT (1u << 20)
#define TP_PV_ALIGN_CAP (2ull << 20)        /* alignment promised up to 2 MiB */

struct tp_pv_config {
	uint64_t window;       /* W: a power of two >= granule */
	uint64_t granule;      /* the IOMMU page (16 KiB for dart) */
	uint64_t lazy_ns;      /* 0: unmap unreferenced windows at once */
	uint64_t lazy_max;     /* bytes of unreferenced windows kept at most */
	uint64_t max_bytes;    /* cap on bytes mapped (granule-widened) */
	uint32_t max_mappings; /* cap on live IOMMU mappings */
	uint32_t max_handles;  /* live references (handles) at most */
	uint32_t max_pending;  /* MAPs that may wait at once (the ring's size) */
};

/* One MAP as the ring entry has it (dir: bit 0 device reads, bit 1 writes;
 * align: log2 of the device-address alignment wanted, 0: none). */
struct tp_pv_request {
	uint64_t gpa, len;
	uint32_t dir, align;
};

struct tp_pv_result {
	uint32_t status;
	uint64_t handle, dva;
};

struct tp_pv_stats {
	uint64_t maps, unmaps;       /* requests completed OK */
	uint64_t map_errors, unmap_errors;
	uint64_t delayed;            /* MAPs that waited for room */
	uint64_t live, bytes;        /* IOMMU mappings and their bytes, now */
	uint64_t windows, own;       /* of live: windows, own mappings */
	uint64_t lazy, lazy_bytes;   /* unreferenced windows kept mapped, now */
	uint64_t handles;            /* live references, now */
	uint64_t pending;            /* MAPs waiting, now */
	uint64_t iommu_maps, iommu_unmaps; /* IOMMU calls, ever */
	uint64_t iommu_bytes;        /* bytes those maps covered, ever (PTEs: / granule) */
	uint64_t lazy_hits;          /* a MAP revived a lazy window */
	uint64_t lazy_expired, lazy_dropped; /* by time; for room or the bound */
	uint64_t region_kills;       /* mappings forgotten because guest memory went */
};

struct tp_pv;

/* Completion of a MAP that waited: tag as given to tp_pv_map. Must not call
 * back into the policy. */
typedef void (*tp_pv_done_fn)(void *ctx, uint32_t tag, const struct tp_pv_result *res);

void tp_pv_config_default(struct tp_pv_config *c);
/* -EINVAL (logged) for a config that breaks the rules above. */
int tp_pv_create(const struct tp_pv_config *c, struct tp_iommu *mmu,
		 const struct tp_dma_map *mem, const char *who, tp_pv_done_fn done, void *ctx,
		 struct tp_pv **out);
/* Unmaps everything (pending MAPs are dropped without a callback), frees. */
void tp_pv_destroy(struct tp_pv *p);

/*
 * A MAP. Returns the status, also in res: TP_PV_PENDING means it waits for
 * room and completes later through done(tag). res->handle/dva are valid
 * when the status is OK.
 */
uint32_t tp_pv_map(struct tp_pv *p, const struct tp_pv_request *rq, uint32_t tag,
		   struct tp_pv_result *res);
/* An UNMAP by handle: OK or BAD_HANDLE. May complete waiting MAPs. */
uint32_t tp_pv_unmap(struct tp_pv *p, uint64_t handle, uint64_t now);
/* Everything unmapped, every handle dead; waiting MAPs complete with
 * `status` (DISABLED for the guest's teardown). */
void tp_pv_teardown(struct tp_pv *p, uint32_t status);
/*
 * Lazy windows whose time came are unmapped, waiting MAPs retried. Returns
 * when it wants to run next (0: nothing lazy).
 */
uint64_t tp_pv_expire(struct tp_pv *p, uint64_t now);
/* Earliest lazy expiry (0: none), without doing anything. */
uint64_t tp_pv_next_expiry(const struct tp_pv *p);
/*
 * Guest memory r goes (DMA_UNMAP, client gone): the IOMMU model has already
 * torn down every mapping into it; the policy forgets them and their handles
 * die. Waiting MAPs are not retried here (r is still in the memory map
 * while the core tears it down): the next doorbell or tp_pv_expire does it.
 */
void tp_pv_region_removed(struct tp_pv *p, const struct tp_dma_region *r);

void tp_pv_get_stats(const struct tp_pv *p, struct tp_pv_stats *st);
const struct tp_pv_config *tp_pv_get_config(const struct tp_pv *p);

#endif
