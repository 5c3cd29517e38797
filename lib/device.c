/* SPDX-License-Identifier: MIT */
#include "device.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <thunderpass/identify.h>
#include <thunderpass/log.h>

#include "pci_regs.h"
#include "quirks.h"
#include "util.h"

static void host_irq_raise(void *ctx, uint32_t vector)
{
	struct tp_device *d = ctx;

	tp_irqs_raise(&d->irqs, vector);
}

static void host_intx_set(void *ctx, int level)
{
	struct tp_device *d = ctx;

	tp_irqs_intx(&d->irqs, level);
}

static int host_dma_rw(void *ctx, uint64_t dva, void *buf, uint64_t len, int write,
		       uint64_t *fault)
{
	return tp_device_dma_rw(ctx, dva, buf, len, write, fault);
}

static const struct tp_host_ops host_ops = {
	.irq_raise = host_irq_raise,
	.intx_set = host_intx_set,
	.dma_rw = host_dma_rw,
};

/*
 * The IOMMU model's mappings, passed on to a backend that mirrors them
 * (tp_backend_ops.iommu_mapped: the proxy gives its remote server the guest
 * pages behind each device address, so the remote reaches nothing else). The
 * model keeps every mapping inside one guest region; the backend gets that
 * region for its fd. Under the DMA lock, write side, like the model's calls.
 */
static int mirror_mapped(void *ctx, uint64_t dva, uint64_t iova, uint64_t len, uint32_t prot)
{
	struct tp_device *d = ctx;
	const struct tp_dma_region *r = tp_dma_find(&d->dma, iova);

	if (!r || !tp_range_ok(iova - r->iova, len, r->size))
		return -EFAULT;
	return d->be->ops->iommu_mapped(d->be, dva, iova, len, prot, r);
}

static void mirror_unmapped(void *ctx, uint64_t dva, uint64_t len)
{
	struct tp_device *d = ctx;

	d->be->ops->iommu_unmapped(d->be, dva, len);
}

static const struct tp_iommu_observer_ops mirror_ops = {
	.mapped = mirror_mapped,
	.unmapped = mirror_unmapped,
};

/* NVIDIA: the chipset from PMC_BOOT_42 decides which quirks apply. */
static void read_chipset(struct tp_device *d)
{
	struct tp_nv_ident id;
	uint32_t boot42 = 0;

	d->chipset = 0;
	if (d->vendor != 0x10de || d->regions[0].d.size < 0x1000 || !d->regions[0].d.readable)
		return;
	if (d->be->ops->region_read(d->be, 0, 0xa00, &boot42, 4) < 0)
		return;
	if (tp_nv_identify(0, boot42, d->device, &id) == 0 && id.state == TP_NV_OK)
		d->chipset = (uint16_t)id.chipset;
}

static int add_traps(struct tp_device *d)
{
	const struct tp_quirk *q = NULL;

	while ((q = tp_quirk_next(d->vendor, d->device, d->chipset, q))) {
		struct tp_trap *t;

		if (q->kind != TP_QUIRK_CONFIG_MIRROR)
			continue;
		if (q->region >= TP_REGION_ROM ||
		    !tp_range_ok(q->offset, q->size, d->regions[q->region].d.size))
			continue;
		if (d->ntraps == TP_MAX_TRAPS)
			return -ENOSPC;
		t = &d->traps[d->ntraps++];
		t->region = q->region;
		t->offset = q->offset;
		t->size = q->size;
		t->reason = q->reason;
		tp_info(d->name, "quirk: BAR%u [%#" PRIx64 "+%#" PRIx64 "] trapped: %s", t->region,
			t->offset, t->size, q->reason);
	}
	return 0;
}

static int irq_counts(struct tp_device *d, uint32_t count[TP_IRQ_INDEX_COUNT])
{
	for (uint32_t i = 0; i < TP_IRQ_INDEX_COUNT; i++) {
		int rc = d->be->ops->irq_count(d->be, i, &count[i]);

		if (rc == -EINVAL || rc == -ENOENT) {
			count[i] = 0;
			continue;
		}
		if (rc < 0)
			return rc;
	}
	return 0;
}

int tp_device_open(struct tp_device *d, struct tp_backend *be, const char *iommu)
{
	uint64_t sizes[TP_NUM_BARS + 1];
	uint32_t counts[TP_IRQ_INDEX_COUNT];
	uint8_t id[4];
	int rc;

	memset(d, 0, sizeof(*d));
	d->be = be;
	snprintf(d->name, sizeof(d->name), "%s", be->name[0] ? be->name : "device");
	be->host.ops = &host_ops;
	be->host.ctx = d;
	tp_dma_init(&d->dma, d->name, TP_VU_MAX_DMA_MAPS);
	pthread_rwlock_init(&d->dma_lock, NULL);
	tp_dma_guard_install();
	pthread_mutex_init(&d->fault_lock, NULL);
	if (be->ops->iommu_create) {
		if (iommu) {
			tp_err(d->name, "--iommu %s: the %s backend brings its own IOMMU model", iommu,
			       be->ops->name);
			return -EINVAL;
		}
		rc = be->ops->iommu_create(be, d->name, &d->iommu);
	} else {
		rc = tp_iommu_create(iommu ? iommu : "identity", d->name, &d->iommu);
	}
	if (rc)
		return rc;
	/* A backend that reaches guest memory past the core learns the model
	 * (it may refuse it) and, if it mirrors, every mapping the model makes. */
	if (be->ops->iommu_model) {
		rc = be->ops->iommu_model(be, d->iommu->ops->name);
		if (rc)
			return rc;
	}
	if (be->ops->iommu_mapped && be->ops->iommu_unmapped) {
		d->iommu->obs = &mirror_ops;
		d->iommu->obs_ctx = d;
	}

	/* Regions first: the BAR sizes shape config space. The quirk windows
	 * need the identity, read raw from the function. */
	rc = tp_regions_init(d);
	if (rc)
		return rc;
	rc = be->ops->config_read(be, 0, id, 4);
	if (rc < 0)
		return rc;
	d->vendor = (uint16_t)tp_le_get(id, 2);
	d->device = (uint16_t)tp_le_get(id + 2, 2);
	read_chipset(d);
	rc = add_traps(d);
	if (rc)
		return rc;
	tp_regions_cut_traps(d);
	for (unsigned i = 0; i <= TP_NUM_BARS; i++)
		sizes[i] = d->regions[i].d.size;
	rc = tp_config_init(&d->cfg, be, d->name, (uint32_t)d->regions[TP_REGION_CONFIG].d.size,
			    sizes);
	if (rc)
		return rc;
	rc = irq_counts(d, counts);
	if (!rc)
		rc = tp_irqs_init(&d->irqs, d->name, counts);
	if (rc) {
		tp_err(d->name, "cannot set up interrupts: %s", strerror(-rc));
		return rc;
	}
	tp_info(d->name, "%04x:%04x ready: config %u bytes, %u MSI-X / %u MSI vectors, %s IOMMU",
		d->vendor, d->device, d->cfg.size, counts[TP_IRQ_MSIX], counts[TP_IRQ_MSI],
		d->iommu->ops->name);
	return 0;
}

void tp_device_close(struct tp_device *d)
{
	if (!d->be)
		return;
	/* The model stops telling the backend of its mappings (a call in flight
	 * on another thread holds the DMA lock: it ends first). */
	if (d->iommu) {
		pthread_rwlock_wrlock(&d->dma_lock);
		d->iommu->obs = NULL;
		pthread_rwlock_unlock(&d->dma_lock);
	}
	/* The backend goes first: its engine must stop before memory goes. */
	if (d->be->ops->destroy)
		d->be->ops->destroy(d->be);
	d->be = NULL;
	tp_dma_destroy(&d->dma);
	if (d->iommu)
		d->iommu->ops->destroy(d->iommu);
	d->iommu = NULL;
	tp_irqs_destroy(&d->irqs);
	pthread_rwlock_destroy(&d->dma_lock);
	pthread_mutex_destroy(&d->fault_lock);
}

int tp_device_reset(struct tp_device *d)
{
	int rc = d->be->ops->reset ? d->be->ops->reset(d->be) : -ENOTSUP;

	d->resets++;
	tp_config_reset(&d->cfg);
	return rc;
}

/* A guest region goes: the IOMMU forgets every mapping into it, the backend
 * is told; the caller holds the DMA lock for writing. */
static void dma_unmap_cb(void *ctx, const struct tp_dma_region *r)
{
	struct tp_device *d = ctx;

	d->iommu->ops->region_removed(d->iommu, r);
	if (d->dma_gone)
		d->dma_gone(d->dma_gone_ctx, r);
	if (d->be->ops->dma_unmap)
		d->be->ops->dma_unmap(d->be, r);
}

static void dma_clear(struct tp_device *d)
{
	pthread_rwlock_wrlock(&d->dma_lock);
	tp_dma_clear(&d->dma, dma_unmap_cb, d);
	d->iommu->ops->reset(d->iommu);
	pthread_rwlock_unlock(&d->dma_lock);
}

void tp_device_session_end(struct tp_device *d)
{
	tp_device_log_stats(d);
	/* Reset first: the device must stop using guest memory before it goes. */
	tp_device_reset(d);
	tp_irqs_clear(&d->irqs);
	dma_clear(d);
	for (uint32_t i = 0; i < TP_REGION_COUNT; i++)
		memset(&d->regions[i].st, 0, sizeof(d->regions[i].st));
	tp_irqs_reset_stats(&d->irqs); /* raise counters, per vector too (stats) */
}

void tp_device_log_stats(const struct tp_device *d)
{
	for (uint32_t i = 0; i < TP_REGION_COUNT; i++) {
		const struct tp_region *r = &d->regions[i];

		if (!r->d.size)
			continue;
		/* A stable format: tests read it (tests/guest). */
		tp_info(d->name,
			"session stats region=%u trapped_reads=%" PRIu64 " trapped_writes=%" PRIu64
			" posted_writes=%" PRIu64 " errors=%" PRIu64 " mapped_areas=%u",
			i, r->st.reads, r->st.writes, r->st.posted, r->st.errors, r->nr_areas);
	}
	tp_info(d->name,
		"session stats dma_maps=%" PRIu64 " dma_unmaps=%" PRIu64 " irqs_msix=%" PRIu64
		" irqs_msi=%" PRIu64 " irqs_intx=%" PRIu64 " irqs_dropped=%" PRIu64
		" filtered_config_writes=%" PRIu64 " resets=%" PRIu64 " dma_faults=%" PRIu64
		" iommu=%s iommu_maps=%" PRIu64 " iommu_live=%" PRIu64,
		d->dma.maps, d->dma.unmaps, d->irqs.idx[TP_IRQ_MSIX].raised,
		d->irqs.idx[TP_IRQ_MSI].raised, d->irqs.idx[TP_IRQ_INTX].raised, d->irqs.dropped,
		d->cfg.filtered_writes, d->resets, d->dma_faults, d->iommu->ops->name,
		d->iommu->st.maps, d->iommu->st.live);
}

static const struct tp_trap *find_trap(const struct tp_device *d, uint32_t index, uint64_t off,
				       uint32_t len)
{
	for (unsigned t = 0; t < d->ntraps; t++) {
		const struct tp_trap *w = &d->traps[t];

		if (w->region == index && off < w->offset + w->size && off + len > w->offset)
			return w;
	}
	return NULL;
}

static int region_access(struct tp_device *d, uint32_t index, uint64_t off, void *buf,
			 uint32_t len, bool write)
{
	struct tp_region *r;
	const struct tp_trap *t;

	if (index >= TP_REGION_COUNT || !d->regions[index].d.size || !len)
		return -EINVAL;
	r = &d->regions[index];
	if (!tp_range_ok(off, len, r->d.size))
		return -EINVAL;
	if (write ? !r->d.writable : !r->d.readable)
		return -EACCES;
	if (index == TP_REGION_CONFIG) {
		write ? d->config_writes++ : d->config_reads++;
		return write ? tp_config_write(&d->cfg, (uint32_t)off, buf, len)
			     : tp_config_read(&d->cfg, (uint32_t)off, buf, len);
	}
	t = find_trap(d, index, off, len);
	if (t) {
		/* The mirror shows the guest's config, never the function's. */
		if (off < t->offset || off + len > t->offset + t->size ||
		    off - t->offset + len > d->cfg.size)
			return -EINVAL;
		return write ? tp_config_write(&d->cfg, (uint32_t)(off - t->offset), buf, len)
			     : tp_config_read(&d->cfg, (uint32_t)(off - t->offset), buf, len);
	}
	return write ? d->be->ops->region_write(d->be, index, off, buf, len)
		     : d->be->ops->region_read(d->be, index, off, buf, len);
}

int tp_device_region_read(struct tp_device *d, uint32_t index, uint64_t off, void *buf,
			  uint32_t len)
{
	int rc = region_access(d, index, off, buf, len, false);

	if (index < TP_REGION_COUNT) {
		struct tp_region_stats *st = &d->regions[index].st;

		st->reads++;
		st->read_bytes += len;
		if (rc < 0)
			st->errors++;
	}
	return rc < 0 ? rc : 0;
}

int tp_device_region_write(struct tp_device *d, uint32_t index, uint64_t off, const void *buf,
			   uint32_t len, bool posted)
{
	int rc = region_access(d, index, off, (void *)buf, len, true);

	if (index < TP_REGION_COUNT) {
		struct tp_region_stats *st = &d->regions[index].st;

		st->writes++;
		st->write_bytes += len;
		if (posted)
			st->posted++;
		if (rc < 0)
			st->errors++;
	}
	return rc < 0 ? rc : 0;
}

int tp_device_dma_map(struct tp_device *d, uint64_t iova, uint64_t size, int fd,
		      uint64_t offset, uint32_t prot)
{
	struct tp_dma_region *r;
	uint64_t removed;
	int rc;

	pthread_rwlock_wrlock(&d->dma_lock);
	rc = tp_dma_add(&d->dma, iova, size, fd, offset, prot, &r);
	if (rc)
		goto out;
	rc = d->iommu->ops->region_added(d->iommu, r);
	if (!rc && d->be->ops->dma_map) {
		rc = d->be->ops->dma_map(d->be, r);
		if (rc)
			d->iommu->ops->region_removed(d->iommu, r);
	}
	if (rc)
		tp_dma_remove(&d->dma, iova, size, NULL, NULL, &removed);
out:
	pthread_rwlock_unlock(&d->dma_lock);
	return rc;
}

int tp_device_dma_unmap(struct tp_device *d, uint64_t iova, uint64_t size, bool all)
{
	uint64_t removed = 0;
	int rc = 0;

	pthread_rwlock_wrlock(&d->dma_lock);
	if (all)
		tp_dma_clear(&d->dma, dma_unmap_cb, d);
	else
		rc = tp_dma_remove(&d->dma, iova, size, dma_unmap_cb, d, &removed);
	pthread_rwlock_unlock(&d->dma_lock);
	return rc;
}
