/* SPDX-License-Identifier: MIT */
/*
 * The passthrough core for one device: a backend below, the virtualized config
 * space, the regions (trapped or direct-mapped, with the quirk windows that
 * must stay trapped), the guest memory map and the interrupts.
 *
 * Threading: everything here runs on the server's message thread, except the
 * tp_host services (interrupts) that backends may call from their own threads.
 *
 * Errors: -errno; logged once where decided, prefixed with the device name.
 */
#ifndef TP_DEVICE_H
#define TP_DEVICE_H

#include <stdbool.h>
#include <stdint.h>

#include <thunderpass/backend.h>
#include <thunderpass/protocol.h>

#include <pthread.h>

#include "config.h"
#include "dma.h"
#include "iommu.h"
#include "irq.h"

#define TP_MAX_TRAPS 4

struct tp_region_stats {
	uint64_t reads, writes, posted; /* trapped accesses */
	uint64_t read_bytes, write_bytes;
	uint64_t errors;
};

struct tp_region {
	struct tp_region_desc d;
	/* Mappable areas after the trap windows are cut out of them. */
	uint32_t nr_areas;
	struct tp_mmap_area areas[TP_MAX_MMAP_AREAS];
	struct tp_region_stats st;
};

struct tp_trap {
	uint32_t region;
	uint64_t offset, size;
	const char *reason;
};

struct tp_device {
	char name[64];
	struct tp_backend *be;
	uint16_t vendor, device, chipset;
	struct tp_config cfg;
	struct tp_region regions[TP_REGION_COUNT];
	struct tp_trap traps[TP_MAX_TRAPS];
	unsigned ntraps;
	struct tp_dma_map dma;
	struct tp_iommu *iommu;
	/* Writers change guest memory or IOMMU mappings; the device's DMA reads. */
	pthread_rwlock_t dma_lock;
	pthread_mutex_t fault_lock;
	uint64_t dma_faults;      /* translate or access faults, ever */
	uint64_t fault_burst;     /* faults not yet logged */
	uint64_t last_fault_ns;
	struct tp_irqs irqs;
	/*
	 * A guest-cooperative mapper on this device's IOMMU (the pvdma
	 * companion): told when guest memory goes, after the IOMMU model tore
	 * down the mappings into it, with the DMA lock held for writing. Set
	 * and cleared with the lock held for writing.
	 */
	void (*dma_gone)(void *ctx, const struct tp_dma_region *r);
	void *dma_gone_ctx;
	uint64_t resets;
	uint64_t config_reads, config_writes;
};

/* Reads everything the core needs from the backend; the backend stays owned
 * by the caller until tp_device_close, which destroys it. iommu: the IOMMU
 * model's name ("identity", "dart"; NULL: identity). */
int tp_device_open(struct tp_device *d, struct tp_backend *be, const char *iommu);
void tp_device_close(struct tp_device *d);

/* DEVICE_RESET: the function, then the guest's view of it. */
int tp_device_reset(struct tp_device *d);
/* A client went away: reset, drop its memory and its eventfds. */
void tp_device_session_end(struct tp_device *d);
void tp_device_log_stats(const struct tp_device *d);

/* Region accesses from the client (REGION_READ/REGION_WRITE). */
int tp_device_region_read(struct tp_device *d, uint32_t index, uint64_t off, void *buf,
			  uint32_t len);
int tp_device_region_write(struct tp_device *d, uint32_t index, uint64_t off, const void *buf,
			   uint32_t len, bool posted);

/* regions.c */
int tp_regions_init(struct tp_device *d);
/* Keeps the quirk windows (d->traps) out of every mappable area. */
void tp_regions_cut_traps(struct tp_device *d);
/*
 * Builds the GET_REGION_INFO reply for index into out (at most cap bytes):
 * returns the bytes written, *fd the fd to attach (-1 for none). argsz is the
 * client's buffer: when the caps do not fit, the reply says how much is needed
 * and carries no caps and no fd (the client asks again).
 */
int tp_regions_info(struct tp_device *d, uint32_t index, uint32_t argsz, uint8_t *out,
		    uint32_t cap, int *fd);

/* DMA map/unmap, with the backend told. */
int tp_device_dma_map(struct tp_device *d, uint64_t iova, uint64_t size, int fd,
		      uint64_t offset, uint32_t prot);
int tp_device_dma_unmap(struct tp_device *d, uint64_t iova, uint64_t size, bool all);

/* dmaio.c: the device's DMA through the IOMMU model (tp_host_ops.dma_rw). */
int tp_device_dma_rw(struct tp_device *d, uint64_t dva, void *buf, uint64_t len, int write,
		     uint64_t *fault);
/* The process-wide SIGBUS handler that turns a fault on shrunk guest memory
 * into a DMA fault (tp_device_open installs it). */
void tp_dma_guard_install(void);
/* IOMMU map/unmap on behalf of a guest-cooperative path (pvdma), locked. */
int tp_device_iommu_map(struct tp_device *d, uint64_t iova, uint64_t len, uint32_t prot,
			uint64_t align, uint64_t *dva);
int tp_device_iommu_unmap(struct tp_device *d, uint64_t dva, uint64_t len);

#endif
