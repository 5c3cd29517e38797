/* SPDX-License-Identifier: MIT */
/*
 * The pvdma companion's internals. pvdma.c: options, config space, the ops
 * table, creation; pvdma_ring.c: BAR0 registers, the ring and its doorbell,
 * CONTROL, completions and interrupts, the timer.
 *
 * Locking: everything below the marker is guarded by the *managed* device's
 * DMA lock (dev->dma_lock): the policy maps and unmaps in that device's
 * IOMMU and reads its guest memory map, and guest memory leaving (on the
 * managed device's serving thread) reaches the policy under that lock too.
 * One lock, so the companion's thread and the managed device's thread never
 * wait on each other in two orders.
 */
#ifndef THUNDERPASS_PVDMA_INT_H
#define THUNDERPASS_PVDMA_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "device.h"
#include "pvdma.h"

struct pvdma {
	struct tp_backend be; /* first: the ops turn be back into the pvdma */
	struct tp_device *dev; /* the managed device */
	struct tp_pvdma_opts o;
	uint32_t managed_id;
	uint64_t token;

	/* Config space: raw bytes; the command register's decode bits latch. */
	uint8_t cfg[4096];

	/* BAR2: the ring, a memfd the client maps; our own mapping of it. */
	int ring_fd;
	uint8_t *ring;

	/* Next deadline for the timer (atomic: read without the lock). */
	uint64_t next_due;

	/* ---- under dev->dma_lock ---- */
	struct tp_pv *pol;
	uint32_t control;
	uint32_t cons;         /* first entry not complete */
	uint32_t seen;         /* entries before it have been read */
	uint8_t waiting[PVDMA_RING_ENTRIES]; /* per slot: a MAP waits for room */
	bool irq_due;          /* a delayed completion: MSI-X once unlocked */
	uint32_t requests, errors; /* since enable or reset */
	struct tp_pv_stats base;   /* policy counters at enable or reset */
	uint64_t bad_doorbells;
	uint32_t warned;           /* statuses already logged since enable */
};

static inline struct pvdma *pvdma_of(struct tp_backend *be)
{
	return (struct pvdma *)be;
}

/* pvdma_ring.c */
int pvdma_bar0_read(struct pvdma *pv, uint64_t off, void *buf, uint32_t len);
int pvdma_bar0_write(struct pvdma *pv, uint64_t off, const void *buf, uint32_t len);
/* Reset: the ring off, everything unmapped, counters from zero. */
void pvdma_ring_reset(struct pvdma *pv);
/* The managed device's guest memory r goes (DMA lock held for writing). */
void pvdma_region_gone(void *ctx, const struct tp_dma_region *r);
/* Policy completion of a waiting MAP (DMA lock held). */
void pvdma_done(void *ctx, uint32_t tag, const struct tp_pv_result *res);

#endif
