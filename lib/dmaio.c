/* SPDX-License-Identifier: MIT */
/*
 * The device's DMA: device address -> IOMMU model -> guest IOVA -> guest
 * memory mapped from the client's fds. Copies run in chunks under the read
 * side of the device's DMA lock, so a DMA_UNMAP (the write side) waits for at
 * most one chunk and the next chunk faults: the device never touches memory
 * that was handed back.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include <thunderpass/log.h>

#include "device.h"
#include "util.h"

#define DMA_CHUNK (1u << 20)
#define FAULT_QUIET_NS 1000000000ull /* a burst ends after a second without faults */

/* Counted always; logged once per burst (the first fault, with how many the
 * previous burst had), so a runaway device cannot flood the log. */
static void note_fault(struct tp_device *d, uint64_t dva, int write, int rc)
{
	uint64_t now = tp_now_ns(), quiet;

	pthread_mutex_lock(&d->fault_lock);
	d->dma_faults++;
	quiet = now - d->last_fault_ns;
	d->last_fault_ns = now;
	if (quiet < FAULT_QUIET_NS) {
		d->fault_burst++;
		pthread_mutex_unlock(&d->fault_lock);
		return;
	}
	tp_warn(d->name,
		"DMA fault: device %s at %#" PRIx64 " (%s); %" PRIu64
		" more faults in the burst before this one",
		write ? "write" : "read", dva, rc == -EACCES ? "no permission" : "not mapped",
		d->fault_burst);
	d->fault_burst = 0;
	pthread_mutex_unlock(&d->fault_lock);
}

static int dma_chunk(struct tp_device *d, uint64_t dva, uint8_t *buf, uint64_t len, int write,
		     uint64_t *done)
{
	uint32_t prot = write ? TP_VU_DMA_WRITE_OK : TP_VU_DMA_READ_OK;
	uint64_t iova, contig, avail;
	uint8_t *host;
	int rc;

	rc = d->iommu->ops->translate(d->iommu, dva, len, prot, &iova, &contig);
	if (rc)
		return rc;
	host = tp_dma_span(&d->dma, iova, TP_MIN(contig, len), prot, &avail);
	if (!host)
		return -EFAULT;
	if (write)
		memcpy(host, buf, avail);
	else
		memcpy(buf, host, avail);
	*done = avail;
	return 0;
}

int tp_device_dma_rw(struct tp_device *d, uint64_t dva, void *buf, uint64_t len, int write,
		     uint64_t *fault)
{
	uint8_t *p = buf;

	while (len) {
		uint64_t n = TP_MIN(len, (uint64_t)DMA_CHUNK), done = 0;
		int rc;

		if (dva + n < dva) {
			rc = -EFAULT;
		} else {
			pthread_rwlock_rdlock(&d->dma_lock);
			rc = dma_chunk(d, dva, p, n, write, &done);
			pthread_rwlock_unlock(&d->dma_lock);
		}
		if (rc) {
			*fault = dva;
			note_fault(d, dva, write, rc);
			return rc;
		}
		dva += done;
		p += done;
		len -= done;
	}
	return 0;
}

int tp_device_iommu_map(struct tp_device *d, uint64_t iova, uint64_t len, uint32_t prot,
			uint64_t align, uint64_t *dva)
{
	int rc;

	pthread_rwlock_wrlock(&d->dma_lock);
	rc = d->iommu->ops->map(d->iommu, iova, len, prot, align, dva);
	pthread_rwlock_unlock(&d->dma_lock);
	return rc;
}

int tp_device_iommu_unmap(struct tp_device *d, uint64_t dva, uint64_t len)
{
	int rc;

	pthread_rwlock_wrlock(&d->dma_lock);
	rc = d->iommu->ops->unmap(d->iommu, dva, len);
	pthread_rwlock_unlock(&d->dma_lock);
	return rc;
}
