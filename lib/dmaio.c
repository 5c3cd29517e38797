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
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
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

/*
 * A client may shrink a memfd after handing it over: touching the lost pages
 * raises SIGBUS. While a thread copies guest memory it holds a recovery point,
 * and the handler turns the signal into a fault of that copy; any other SIGBUS
 * is a real crash and keeps its default action.
 */
/* volatile: the compiler knows memcpy reads no globals and would drop the
 * store before it as dead; the signal handler does read it. */
static __thread sigjmp_buf *volatile copy_guard;

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	(void)si;
	(void)uc;
	if (copy_guard)
		siglongjmp(*copy_guard, 1);
	signal(sig, SIG_DFL);
	raise(sig);
}

void tp_dma_guard_install(void)
{
	struct sigaction sa = { .sa_sigaction = on_sigbus, .sa_flags = SA_SIGINFO };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, NULL);
}

static int guarded_copy(void *dst, const void *src, uint64_t n)
{
	sigjmp_buf jb;

	/* savemask 1: leaving the handler by longjmp must unblock SIGBUS. */
	if (sigsetjmp(jb, 1)) {
		copy_guard = NULL;
		return -EFAULT;
	}
	copy_guard = &jb;
	memcpy(dst, src, n);
	copy_guard = NULL;
	return 0;
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
	rc = write ? guarded_copy(host, buf, avail) : guarded_copy(buf, host, avail);
	if (rc)
		return rc;
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

		/* Up to the top of the address space, never past it: the bytes
		 * below the top may be mapped (copied, then the next address
		 * faults); a copy that wrapped to 0 faults there. */
		if (dva + n < dva)
			n = 0 - dva;
		if (!dva && p != (uint8_t *)buf) {
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
