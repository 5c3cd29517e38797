/* SPDX-License-Identifier: MIT */
/*
 * The doctor's DMA and interrupt test for devices with the thunderpass copy
 * engine (the model GPU, docs/copy-engine.md), run in process through the
 * whole core as a client and a guest driver would drive it: guest memory from
 * a memfd given with DMA_MAP semantics, the identity IOMMU, an eventfd for
 * MSI-X vector 0 as QEMU would give it, the engine programmed through trapped
 * BAR0 writes. Two jobs, guest memory -> VRAM -> guest memory, each with a
 * fence and a completion interrupt; what failed (DMA, the data, the fence, the
 * interrupt) decides the advice.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "doctor_int.h"
#include "pci_regs.h"
#include "util.h"

#define CE 0xf00000u
#define CE_ID_VALUE 0x54504345u /* "TPCE" */
enum {
	R_ID = 0x00,
	R_SRC_LO = 0x10,
	R_SRC_HI = 0x14,
	R_DST_LO = 0x18,
	R_DST_HI = 0x1c,
	R_LEN = 0x20,
	R_FLAGS = 0x24,
	R_FENCE_LO = 0x28,
	R_FENCE_HI = 0x2c,
	R_FENCE_VALUE = 0x30,
	R_DOORBELL = 0x40,
	R_STATUS = 0x44,
	R_INTR_STATUS = 0x48,
	R_INTR_ENABLE = 0x4c,
	R_FAULT_LO = 0x54,
	R_FAULT_HI = 0x58,
	R_VECTOR = 0x5c,
};
#define F_SRC_VRAM 0x1u
#define F_DST_VRAM 0x2u
#define F_FENCE 0x10u
#define F_IRQ 0x20u

#define GUEST_IOVA 0x100000000ull
#define GUEST_SIZE (4u << 20)
#define JOB_LEN (64u << 10)
#define SRC_OFF 0x10000u
#define DST_OFF 0x100000u
#define FENCE_OFF 0x1000u

static const char *const ce_errors[] = {
	"none",	     "source fault", "destination fault", "VRAM range", "doorbell while busy",
	"bad flags", "fence fault",  "cancelled",
};

struct rig {
	struct tp_doctor *d;
	int memfd, efd;
	uint8_t *mem;
	unsigned timeout_ms;
};

struct job {
	const char *what;
	bool irq, done;
	uint64_t irq_us, fault;
	uint32_t err;
};

static uint32_t ce_rd(struct rig *g, uint32_t reg)
{
	uint32_t v = 0xffffffffu;

	if (tp_device_region_read(&g->d->dev, 0, CE + reg, &v, 4) < 0)
		return 0xffffffffu;
	return v;
}

static void ce_wr(struct rig *g, uint32_t reg, uint32_t v)
{
	tp_device_region_write(&g->d->dev, 0, CE + reg, &v, 4, true);
}

/* 1 when the eventfd fired within ms (consumed). */
static int wait_irq(int efd, unsigned ms)
{
	struct pollfd p = { .fd = efd, .events = POLLIN };
	uint64_t n;

	if (poll(&p, 1, (int)ms) != 1)
		return 0;
	return read(efd, &n, sizeof(n)) == sizeof(n);
}

/* Polls CE_STATUS until the engine is idle; false when still busy at the end. */
static bool wait_idle(struct rig *g, unsigned ms, uint32_t *status)
{
	uint64_t end = tp_now_ns() + (uint64_t)ms * 1000000ull;

	for (;;) {
		*status = ce_rd(g, R_STATUS);
		if (!(*status & 1))
			return true;
		if (tp_now_ns() >= end)
			return false;
		usleep(2000);
	}
}

static void run_job(struct rig *g, struct job *j, uint64_t src, uint64_t dst, uint32_t flags,
		    uint32_t fence_value, unsigned irq_ms)
{
	uint64_t fence = GUEST_IOVA + FENCE_OFF, t0;
	uint32_t st;

	ce_wr(g, R_SRC_LO, (uint32_t)src);
	ce_wr(g, R_SRC_HI, (uint32_t)(src >> 32));
	ce_wr(g, R_DST_LO, (uint32_t)dst);
	ce_wr(g, R_DST_HI, (uint32_t)(dst >> 32));
	ce_wr(g, R_LEN, JOB_LEN);
	ce_wr(g, R_FLAGS, flags | F_FENCE | F_IRQ);
	ce_wr(g, R_FENCE_LO, (uint32_t)fence);
	ce_wr(g, R_FENCE_HI, (uint32_t)(fence >> 32));
	ce_wr(g, R_FENCE_VALUE, fence_value);
	t0 = tp_now_ns();
	ce_wr(g, R_DOORBELL, 1);
	j->irq = wait_irq(g->efd, irq_ms);
	j->irq_us = (tp_now_ns() - t0) / 1000;
	/* Interrupt or not, the engine's own status says whether the job ended. */
	j->done = wait_idle(g, j->irq ? 1000 : 200, &st);
	j->err = (st >> 8) & 0xff;
	j->fault = ((uint64_t)ce_rd(g, R_FAULT_HI) << 32) | ce_rd(g, R_FAULT_LO);
	ce_wr(g, R_INTR_STATUS, 3);
}

static int rig_open(struct rig *g, struct tp_doctor_result *r)
{
	struct tp_vu_irq_set s = { sizeof(s), TP_VU_IRQ_DATA_EVENTFD | TP_VU_IRQ_ACTION_TRIGGER,
				   TP_IRQ_MSIX, 0, 1 };
	uint16_t cmd = PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
	int fd, rc;

	g->memfd = memfd_create("tp-doctor-guest", MFD_CLOEXEC);
	if (g->memfd < 0 || ftruncate(g->memfd, GUEST_SIZE) < 0)
		goto sys_fail;
	g->mem = mmap(NULL, GUEST_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, g->memfd, 0);
	if (g->mem == MAP_FAILED) {
		g->mem = NULL;
		goto sys_fail;
	}
	g->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (g->efd < 0)
		goto sys_fail;
	fd = dup(g->memfd);
	rc = tp_device_dma_map(&g->d->dev, GUEST_IOVA, GUEST_SIZE, fd, 0,
			       TP_VU_DMA_READ_OK | TP_VU_DMA_WRITE_OK);
	if (rc) {
		tp_doc_status(r, TP_DOCTOR_FAIL, "the core refused to map guest memory for DMA: %s",
			      strerror(-rc));
		tp_doc_advice(r, "DMA_MAP failed in process: report the log lines above.");
		return rc;
	}
	fd = dup(g->efd);
	rc = tp_irqs_set(&g->d->dev.irqs, &s, NULL, 0, &fd, 1);
	if (rc) {
		tp_doc_status(r, TP_DOCTOR_FAIL, "the core refused an MSI-X eventfd: %s",
			      strerror(-rc));
		tp_doc_advice(r, "SET_IRQS failed in process: report the log lines above.");
		return rc;
	}
	/* What a driver does first: memory decoding and bus mastering on. */
	tp_device_region_write(&g->d->dev, TP_REGION_CONFIG, PCI_COMMAND, &cmd, 2, false);
	ce_wr(g, R_VECTOR, 0);
	ce_wr(g, R_INTR_ENABLE, 3);
	return 0;
sys_fail:
	rc = -errno;
	tp_doc_status(r, TP_DOCTOR_FAIL, "no memory for the test: %s", strerror(errno));
	tp_doc_advice(r, "The host is out of memory or file descriptors; try again.");
	return rc;
}

static void rig_close(struct rig *g)
{
	if (g->d->dev_ok) {
		ce_wr(g, R_INTR_ENABLE, 0);
		tp_irqs_clear(&g->d->dev.irqs);
		/* Waits for a copy in flight; a job still running faults after. */
		tp_device_dma_unmap(&g->d->dev, 0, 0, true);
	}
	if (g->mem)
		munmap(g->mem, GUEST_SIZE);
	if (g->memfd >= 0)
		close(g->memfd);
	if (g->efd >= 0)
		close(g->efd);
}

static const char *err_name(uint32_t e)
{
	return e < TP_ARRAY_SIZE(ce_errors) ? ce_errors[e] : "unknown error";
}

static void judge(struct rig *g, struct tp_doctor_result *r, struct job *j, unsigned n,
		  uint64_t faults)
{
	uint32_t fence = tp_le_get(g->mem + FENCE_OFF, 4);
	bool data_ok = !memcmp(g->mem + SRC_OFF, g->mem + DST_OFF, JOB_LEN);

	for (unsigned i = 0; i < n; i++) {
		if (!j[i].done) {
			tp_doc_fact_str(r, "dma", "hang");
			tp_doc_status(r, TP_DOCTOR_FAIL,
				      "the copy engine never finished job %u (%s): "
				      "still busy after %u ms",
				      i + 1, j[i].what, g->timeout_ms + 200);
			tp_doc_advice(r,
				      "The device's DMA engine hangs: power-cycle the device and "
				      "check the host kernel log for IOMMU faults.");
			return;
		}
	}
	for (unsigned i = 0; i < n; i++) {
		if (!j[i].err)
			continue;
		tp_doc_fact_str(r, "dma", "fault");
		tp_doc_fact_int(r, "dma_error", j[i].err);
		tp_doc_status(r, TP_DOCTOR_FAIL,
			      "DMA fault: job %u (%s) ended with error %u (%s) at device address "
			      "%#" PRIx64 "; %s; its error interrupt %s",
			      i + 1, j[i].what, j[i].err, err_name(j[i].err), j[i].fault,
			      faults ? "the IOMMU refused the address"
				     : "the device reported it, no access reached the IOMMU",
			      j[i].irq ? "arrived, so interrupts work" : "did not arrive either");
		tp_doc_advice(r,
			      "The device's DMA does not reach guest memory: check that the host "
			      "IOMMU maps the guest's memory for the device (Linux: dmesg for "
			      "DMAR/AMD-Vi faults) and that QEMU shares guest RAM (share=on, as "
			      "`thunderpass qemu-args` prints).");
		return;
	}
	if (!data_ok || fence != 0xd0c70002u) {
		tp_doc_fact_str(r, "dma", "corrupt");
		tp_doc_status(r, TP_DOCTOR_FAIL,
			      "DMA completed without an error but guest memory "
			      "is wrong: data %s, fence 0x%08x (want 0xd0c70002)",
			      data_ok ? "right" : "differs", fence);
		tp_doc_advice(r, "The device wrote somewhere else than asked: the IOMMU mapping is "
				 "wrong; report this with the log.");
		return;
	}
	tp_doc_fact_str(r, "dma", "ok");
	for (unsigned i = 0; i < n; i++) {
		if (j[i].irq)
			continue;
		tp_doc_fact_str(r, "irq", "none");
		tp_doc_status(
			r, TP_DOCTOR_FAIL,
			"DMA works (%u KiB to VRAM and back, fences written) but no interrupt "
			"arrived for job %u within %u ms (MSI-X vector 0)",
			JOB_LEN >> 10, i + 1, g->timeout_ms);
		tp_doc_advice(r, "Interrupts do not reach the client: check that the device's "
				 "vectors are delivered by the backend and that the guest enables "
				 "MSI-X or MSI; `thunderpass stats` shows interrupts raised per "
				 "vector.");
		return;
	}
	tp_doc_fact_str(r, "irq", "ok");
	tp_doc_fact_int(r, "irq_latency_us", (int64_t)j[0].irq_us);
	tp_doc_status(r, TP_DOCTOR_OK,
		      "%u KiB copied guest memory -> VRAM -> guest memory through the %s IOMMU, "
		      "both fences written, MSI-X vector 0 raised after each job (first after "
		      "%" PRIu64 " us)",
		      JOB_LEN >> 10, g->d->dev.iommu->ops->name, j[0].irq_us);
	tp_doc_advice(r, "Nothing to do: DMA and interrupts work end to end.");
}

void tp_doctor_ce_test(struct tp_doctor *d, struct tp_doctor_result *r)
{
	struct rig g = { .d = d, .memfd = -1, .efd = -1 };
	struct job jobs[2] = { { .what = "guest memory -> VRAM" },
			       { .what = "VRAM -> guest memory" } };
	uint32_t id = ce_rd(&g, R_ID);
	uint64_t faults0;

	g.timeout_ms = d->o->irq_timeout_ms ? d->o->irq_timeout_ms : 2000;
	if (id != CE_ID_VALUE) {
		tp_doc_status(r, TP_DOCTOR_SKIP, "no copy engine at BAR0+%#x (CE_ID reads 0x%08x)",
			      CE, id);
		tp_doc_advice(r,
			      "This device has no engine doctor can drive: run a guest and watch "
			      "`thunderpass stats`.");
		return;
	}
	if (rig_open(&g, r)) {
		rig_close(&g);
		return;
	}
	for (uint32_t i = 0; i < JOB_LEN; i++)
		g.mem[SRC_OFF + i] = (uint8_t)((i * 2654435761u) >> 13);
	memset(g.mem + DST_OFF, 0xa5, JOB_LEN);
	pthread_mutex_lock(&d->dev.fault_lock);
	faults0 = d->dev.dma_faults;
	pthread_mutex_unlock(&d->dev.fault_lock);
	run_job(&g, &jobs[0], GUEST_IOVA + SRC_OFF, 0, F_DST_VRAM, 0xd0c70001u, g.timeout_ms);
	/* No interrupt for the first job: do not wait as long for the second. */
	run_job(&g, &jobs[1], 0, GUEST_IOVA + DST_OFF, F_SRC_VRAM, 0xd0c70002u,
		jobs[0].irq ? g.timeout_ms : TP_MIN(g.timeout_ms, 200u));
	pthread_mutex_lock(&d->dev.fault_lock);
	faults0 = d->dev.dma_faults - faults0;
	pthread_mutex_unlock(&d->dev.fault_lock);
	tp_doc_fact_int(r, "bytes", JOB_LEN);
	tp_doc_fact_str(r, "iommu", "%s", d->dev.iommu->ops->name);
	judge(&g, r, jobs, 2, faults0);
	rig_close(&g);
}
