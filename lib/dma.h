/* SPDX-License-Identifier: MIT */
/*
 * The guest memory map: what the client handed us with DMA_MAP. Regions are
 * kept sorted by address in an array, so lookups are a binary search
 * (O(log n)); maps and unmaps, which happen when the guest's memory layout
 * changes, pay O(n) moves.
 *
 * Rules (those of kernel VFIO type1): address, size and fd offset are
 * page-aligned (4 KiB); a map that overlaps a live one is refused (EEXIST);
 * an unmap removes every region inside its range and refuses (EINVAL) to cut
 * a region in two; at most TP_VU_MAX_DMA_MAPS regions.
 *
 * Errors: -errno, logged here with the device name.
 */
#ifndef TP_DMA_H
#define TP_DMA_H

#include <stdbool.h>
#include <stdint.h>

#include <thunderpass/backend.h>

struct tp_dma_map {
	const char *who;
	struct tp_dma_region *r; /* sorted by iova */
	uint32_t n, cap;
	uint32_t max;            /* cap on live regions */
	uint64_t bytes;          /* bytes mapped now */
	uint64_t maps, unmaps;   /* counters for stats */
};

void tp_dma_init(struct tp_dma_map *m, const char *who, uint32_t max);
/* Takes ownership of fd (closed on failure too). */
int tp_dma_add(struct tp_dma_map *m, uint64_t iova, uint64_t size, int fd, uint64_t offset,
	       uint32_t prot, struct tp_dma_region **out);
/*
 * Removes the regions inside [iova, iova + size), calling cb for each before
 * it is unmapped; *removed gets the bytes removed.
 */
int tp_dma_remove(struct tp_dma_map *m, uint64_t iova, uint64_t size,
		  void (*cb)(void *ctx, const struct tp_dma_region *r), void *ctx,
		  uint64_t *removed);
void tp_dma_clear(struct tp_dma_map *m, void (*cb)(void *ctx, const struct tp_dma_region *r),
		  void *ctx);
/* The region containing iova, or NULL. */
const struct tp_dma_region *tp_dma_find(const struct tp_dma_map *m, uint64_t iova);
/*
 * Host pointer for [iova, iova + len) when one region holds all of it with
 * the access needed (TP_VU_DMA_READ_OK / WRITE_OK); NULL otherwise.
 */
void *tp_dma_ptr(const struct tp_dma_map *m, uint64_t iova, uint64_t len, uint32_t prot);
/*
 * Host pointer for iova when its region has the access needed; *avail gets
 * how many of the len bytes from there lie in that region. NULL otherwise.
 */
void *tp_dma_span(const struct tp_dma_map *m, uint64_t iova, uint64_t len, uint32_t prot,
		  uint64_t *avail);
void tp_dma_destroy(struct tp_dma_map *m);

#endif
