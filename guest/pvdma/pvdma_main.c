// SPDX-License-Identifier: GPL-2.0
/*
 * pvdma: the guest side of thunderpass's paravirtual DMA companion (7470:0001).
 *
 * Where the host IOMMU picks device addresses itself (Apple's DART behind a
 * PCIDriverKit driver), the passed-through device cannot be handed guest
 * physical addresses. This driver binds to the companion function, finds the
 * device it manages (a function of its own slot) and installs dma_map_ops on
 * it: every mapping becomes a MAP request in the companion's ring (BAR2), one
 * doorbell per batch, and the server answers with the device address.
 *
 * Spec: docs/pvdma.md. This driver: docs/guest-pvdma.md.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/debugfs.h>
#include <linux/device.h>
#include <linux/dma-mapping.h>
#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/list.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/slab.h>

#include "pvdma.h"

static unsigned int max_batch = 1024;
module_param(max_batch, uint, 0444);
MODULE_PARM_DESC(max_batch, "entries per doorbell at most (default 1024, at most half the ring)");
static bool reprobe = true;
module_param(reprobe, bool, 0444);
MODULE_PARM_DESC(reprobe, "managed device already bound at probe: unbind and bind its driver again (default) or refuse");

static LIST_HEAD(pvdma_devs);
static DEFINE_MUTEX(pvdma_devs_lock);
struct kmem_cache *pvdma_cache;
static struct dentry *pvdma_dbg_root;

/* ---- the managed device */

/*
 * The driver core calls this for every PCI device. While we are active on
 * the managed device, our ops go (back) on it before any driver probes it
 * (arm64 clears dev->dma_ops when a driver unbinds: arch_teardown_dma_ops),
 * and the module stays pinned while the device has a driver (rmmod refuses).
 */
static int pvdma_bus_notify(struct notifier_block *nb, unsigned long action, void *data)
{
	struct device *dev = data;
	struct pvdma *p;

	mutex_lock(&pvdma_devs_lock);
	list_for_each_entry(p, &pvdma_devs, list) {
		if (&p->gpu->dev != dev || !p->active)
			continue;
		switch (action) {
		case BUS_NOTIFY_BIND_DRIVER:
			if (!p->pinned)
				p->pinned = try_module_get(THIS_MODULE);
			fallthrough;
		case BUS_NOTIFY_UNBOUND_DRIVER:
		case BUS_NOTIFY_DRIVER_NOT_BOUND:
			if (dev->dma_ops != &p->ops) {
				set_dma_ops(dev, &p->ops);
				dev_info(&p->pdev->dev, "DMA ops of %s set again\n", dev_name(dev));
			}
			if (action != BUS_NOTIFY_BIND_DRIVER) {
				if (p->live)
					dev_warn(&p->pdev->dev, "%s left without a driver with %llu mappings (%llu bytes) live\n",
						 dev_name(dev), p->live, p->live_bytes);
				if (p->pinned)
					module_put(THIS_MODULE);
				p->pinned = false;
			}
			break;
		}
	}
	mutex_unlock(&pvdma_devs_lock);
	return NOTIFY_DONE;
}

static struct notifier_block pvdma_nb = {
	.notifier_call = pvdma_bus_notify,
};

static void pvdma_set_active(struct pvdma *p, bool on)
{
	struct device *gdev = &p->gpu->dev;

	device_lock(gdev);
	mutex_lock(&pvdma_devs_lock);
	p->active = on;
	if (on && !gdev->driver)
		set_dma_ops(gdev, &p->ops);
	mutex_unlock(&pvdma_devs_lock);
	device_unlock(gdev);
}

/* Our ops on the managed device; a driver already bound is bound again. */
static int pvdma_take_over(struct pvdma *p)
{
	struct device *gdev = &p->gpu->dev;
	const char *drv = NULL;
	int ret;

	device_lock(gdev);
	p->orig_ops = gdev->dma_ops;
	if (gdev->driver)
		drv = gdev->driver->name;
	device_unlock(gdev);
	pvdma_set_active(p, true);
	if (!drv) {
		dev_info(&p->pdev->dev, "DMA ops installed on %s\n", pci_name(p->gpu));
		return 0;
	}
	if (!reprobe) {
		dev_err(&p->pdev->dev, "%s is bound to %s: unbind it first (or reprobe=1)\n",
			pci_name(p->gpu), drv);
		pvdma_set_active(p, false);
		return -EBUSY;
	}
	dev_warn(&p->pdev->dev, "%s is bound to %s, which may hold guest-physical DMA addresses: unbinding it, then binding it again through pvdma\n",
		 pci_name(p->gpu), drv);
	device_release_driver(gdev);
	device_lock(gdev);
	if (gdev->dma_ops != &p->ops && !gdev->driver)
		set_dma_ops(gdev, &p->ops);
	device_unlock(gdev);
	ret = device_attach(gdev);
	dev_info(&p->pdev->dev, "DMA ops installed on %s; driver bound again: %s\n",
		 pci_name(p->gpu), ret > 0 ? "yes" : "no");
	return 0;
}

/* The managed device back to its own ops, with no driver bound. */
static void pvdma_give_back(struct pvdma *p)
{
	struct device *gdev = &p->gpu->dev;
	int tries;

	pvdma_set_active(p, false);
	for (tries = 0; tries < 10; tries++) {
		if (READ_ONCE(gdev->driver)) {
			dev_warn(&p->pdev->dev, "unbinding %s from its driver first: its DMA goes through pvdma\n",
				 pci_name(p->gpu));
			device_release_driver(gdev);
		}
		device_lock(gdev);
		if (!gdev->driver) {
			if (gdev->dma_ops == &p->ops)
				set_dma_ops(gdev, p->orig_ops);
			device_unlock(gdev);
			break;
		}
		device_unlock(gdev);
	}
	mutex_lock(&pvdma_devs_lock);
	list_del(&p->list);
	if (p->pinned)
		module_put(THIS_MODULE);
	p->pinned = false;
	mutex_unlock(&pvdma_devs_lock);
}

/* The function MANAGED_DEVFN of our slot, with MANAGED_ID and DSN = TOKEN. */
static struct pci_dev *pvdma_find_managed(struct pvdma *p)
{
	struct pci_dev *pdev = p->pdev, *gpu;
	u32 id = pvdma_rd(p, PVDMA_REG_MANAGED_ID);
	u32 fn = pvdma_rd(p, PVDMA_REG_MANAGED_DEVFN);
	u64 dsn;

	if (fn > 7) {
		dev_err(&pdev->dev, "MANAGED_DEVFN %#x: want a function number 0-7\n", fn);
		return NULL;
	}
	gpu = pci_get_slot(pdev->bus, PCI_DEVFN(PCI_SLOT(pdev->devfn), fn));
	if (!gpu || gpu == pdev) {
		dev_err(&pdev->dev, "no managed device at function %u of this slot\n", fn);
		pci_dev_put(gpu);
		return NULL;
	}
	if (gpu->vendor != (id & 0xffff) || gpu->device != id >> 16) {
		dev_err(&pdev->dev, "%s is %04x:%04x, MANAGED_ID says %04x:%04x\n", pci_name(gpu),
			gpu->vendor, gpu->device, id & 0xffff, id >> 16);
		pci_dev_put(gpu);
		return NULL;
	}
	if (p->token) {
		dsn = pci_get_dsn(gpu);
		if (dsn != p->token) {
			dev_err(&pdev->dev, "%s: serial number %#llx, TOKEN %#llx\n", pci_name(gpu),
				dsn, p->token);
			pci_dev_put(gpu);
			return NULL;
		}
	}
	return gpu;
}

/* ---- probe / remove */

static void pvdma_disable_ring(struct pvdma *p)
{
	struct pvdma_map *m, *t;
	unsigned long flags;

	spin_lock_irqsave(&p->lock, flags);
	p->dead = true;
	spin_unlock_irqrestore(&p->lock, flags);
	/* The server unmaps everything this companion mapped. */
	writel(0, p->regs + PVDMA_REG_CONTROL);
	spin_lock_irqsave(&p->lock, flags);
	list_for_each_entry_safe(m, t, &p->abandoned, dead) {
		if (m->slot != PVDMA_NO_SLOT)
			p->owner[m->slot] = NULL;
		list_del(&m->dead);
		p->nabandoned--;
		kmem_cache_free(pvdma_cache, m);
	}
	spin_unlock_irqrestore(&p->lock, flags);
}

/* Records the managed device's driver never unmapped: the server dropped them. */
static void pvdma_free_table(struct pvdma *p)
{
	struct hlist_node *t;
	struct pvdma_map *m;
	unsigned int b;
	u64 n = 0, bytes = 0;

	for (b = 0; b < (1U << PVDMA_HASH_BITS); b++) {
		hlist_for_each_entry_safe(m, t, &p->table[b], node) {
			hlist_del(&m->node);
			n++;
			bytes += m->len;
			/* coherent memory a driver never freed stays allocated */
			kmem_cache_free(pvdma_cache, m);
		}
	}
	if (n)
		dev_warn(&p->pdev->dev, "%llu mappings (%llu bytes) were never unmapped\n",
			 n, bytes);
	p->live = 0;
	p->live_bytes = 0;
}

static void pvdma_log_stats(struct pvdma *p, const char *when)
{
	struct pvdma_stats *s = &p->st;

	dev_info(&p->pdev->dev, "%s: requests=%llu maps=%llu unmaps=%llu errors=%llu delayed=%llu doorbells=%llu bytes_mapped=%llu abandoned=%llu reaped=%llu sleeps=%llu spins=%llu irqs=%llu live_maps=%llu server_requests=%u server_maps=%u server_unmaps=%u server_errors=%u server_delayed=%u server_windows=%u server_bytes=%llu server_lazy=%u\n",
		 when, s->requests, s->maps, s->unmaps, s->errors, s->delayed, s->doorbells,
		 s->bytes_mapped, s->abandoned, s->reaped, s->sleeps, s->spins, s->irqs, p->live,
		 pvdma_rd(p, PVDMA_REG_STAT_REQUESTS), pvdma_rd(p, PVDMA_REG_STAT_MAPS),
		 pvdma_rd(p, PVDMA_REG_STAT_UNMAPS), pvdma_rd(p, PVDMA_REG_STAT_ERRORS),
		 pvdma_rd(p, PVDMA_REG_STAT_DELAYED), pvdma_rd(p, PVDMA_REG_STAT_WINDOWS),
		 pvdma_rd_bytes(p), pvdma_rd(p, PVDMA_REG_STAT_LAZY));
}

static int pvdma_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct device *dev = &pdev->dev;
	resource_size_t ring_len;
	struct pvdma *p;
	u32 v;
	int ret;

	p = kzalloc(sizeof(*p), GFP_KERNEL);
	if (!p)
		return -ENOMEM;
	p->pdev = pdev;
	p->ops = pvdma_ops_template;
	spin_lock_init(&p->lock);
	spin_lock_init(&p->tlock);
	init_waitqueue_head(&p->wq);
	INIT_LIST_HEAD(&p->abandoned);
	INIT_LIST_HEAD(&p->list);
	mutex_init(&p->run_lock);
	p->irq = -1;
	pci_set_drvdata(pdev, p);

	ret = pci_enable_device(pdev);
	if (ret)
		goto err_free;
	pci_set_master(pdev);	/* MSI-X messages are memory writes */
	/* Coherent buffers for the managed device come from our allocator. */
	ret = dma_set_mask_and_coherent(dev, DMA_BIT_MASK(64));
	if (ret)
		goto err_disable;
	if (!(pci_resource_flags(pdev, 0) & IORESOURCE_MEM) ||
	    pci_resource_len(pdev, 0) < PVDMA_REGS_SIZE ||
	    !(pci_resource_flags(pdev, 2) & IORESOURCE_MEM)) {
		dev_err(dev, "BAR0 or BAR2 missing\n");
		ret = -ENODEV;
		goto err_disable;
	}
	ret = pci_request_regions(pdev, KBUILD_MODNAME);
	if (ret)
		goto err_disable;
	p->regs = pci_iomap(pdev, 0, PVDMA_REGS_SIZE);
	if (!p->regs) {
		ret = -ENOMEM;
		goto err_release;
	}
	v = pvdma_rd(p, PVDMA_REG_ID);
	if (v != PVDMA_ID_VALUE || pvdma_rd(p, PVDMA_REG_VERSION) != PVDMA_VERSION) {
		dev_err(dev, "ID %#x version %u: want %#x version %u\n", v,
			pvdma_rd(p, PVDMA_REG_VERSION), PVDMA_ID_VALUE, PVDMA_VERSION);
		ret = -ENODEV;
		goto err_unmap;
	}
	p->nent = pvdma_rd(p, PVDMA_REG_RING_ENTRIES);
	p->granule = pvdma_rd(p, PVDMA_REG_GRANULE);
	p->window = pvdma_rd(p, PVDMA_REG_WINDOW);
	p->max_mapped_mb = pvdma_rd(p, PVDMA_REG_MAX_MAPPED_MB);
	p->max_mappings = pvdma_rd(p, PVDMA_REG_MAX_MAPPINGS);
	p->token = pvdma_rd(p, PVDMA_REG_TOKEN_LO) | (u64)pvdma_rd(p, PVDMA_REG_TOKEN_HI) << 32;
	ring_len = sizeof(struct pvdma_ring_header) +
		   (resource_size_t)p->nent * sizeof(struct pvdma_entry);
	if (p->nent < 2 || !is_power_of_2(p->nent) || ring_len > pci_resource_len(pdev, 2)) {
		dev_err(dev, "RING_ENTRIES %u does not fit BAR2 (%llu bytes)\n", p->nent,
			(u64)pci_resource_len(pdev, 2));
		ret = -ENODEV;
		goto err_unmap;
	}
	p->batch = clamp(max_batch, 1U, p->nent / 2);

	p->gpu = pvdma_find_managed(p);
	if (!p->gpu) {
		ret = -ENODEV;
		goto err_unmap;
	}
	/*
	 * The ring is guest RAM of the server's (a memfd shared with QEMU), not
	 * device memory: map it cacheable like any shared memory, so that guest
	 * and server see one coherent copy (a non-cacheable guest mapping of
	 * cacheable host memory is not coherent on arm64 under KVM/HVF).
	 */
	p->ring = memremap(pci_resource_start(pdev, 2), ring_len, MEMREMAP_WB);
	if (!p->ring) {
		dev_err(dev, "cannot map the ring (BAR2)\n");
		ret = -ENOMEM;
		goto err_gpu;
	}
	p->hdr = p->ring;
	p->ent = p->ring + sizeof(struct pvdma_ring_header);
	p->owner = kvcalloc(p->nent, sizeof(*p->owner), GFP_KERNEL);
	p->table = kvcalloc(1U << PVDMA_HASH_BITS, sizeof(*p->table), GFP_KERNEL);
	if (!p->owner || !p->table) {
		ret = -ENOMEM;
		goto err_ring;
	}

	ret = pci_alloc_irq_vectors(pdev, 1, 1, PCI_IRQ_MSIX);
	if (ret < 0) {
		dev_err(dev, "no MSI-X vector (%d)\n", ret);
		goto err_ring;
	}
	p->irq = pci_irq_vector(pdev, 0);
	ret = request_irq(p->irq, pvdma_irq, 0, KBUILD_MODNAME, p);
	if (ret)
		goto err_vectors;

	/* Enable, then start where the server's consumer stands. */
	writel(PVDMA_CTRL_ENABLE, p->regs + PVDMA_REG_CONTROL);
	p->prod = pvdma_rd(p, PVDMA_REG_CONSUMER);
	WRITE_ONCE(p->hdr->producer, cpu_to_le32(p->prod));

	if (pvdma_dbg_root) {
		p->dbg = debugfs_create_dir(pci_name(pdev), pvdma_dbg_root);
		pvdma_debugfs_files(p);
	}
	dev_info(dev, "managing %s (%04x:%04x): ring %u entries, granule %u, window %u, caps %u MiB / %u mappings, producer %u\n",
		 pci_name(p->gpu), p->gpu->vendor, p->gpu->device, p->nent, p->granule, p->window,
		 p->max_mapped_mb, p->max_mappings, p->prod);

	mutex_lock(&pvdma_devs_lock);
	list_add_tail(&p->list, &pvdma_devs);
	mutex_unlock(&pvdma_devs_lock);
	ret = pvdma_take_over(p);
	if (ret)
		goto err_list;
	return 0;

err_list:
	mutex_lock(&pvdma_devs_lock);
	list_del(&p->list);
	mutex_unlock(&pvdma_devs_lock);
	debugfs_remove_recursive(p->dbg);
	pvdma_disable_ring(p);
	free_irq(p->irq, p);
err_vectors:
	pci_free_irq_vectors(pdev);
err_ring:
	kvfree(p->table);
	kvfree(p->owner);
	memunmap(p->ring);
err_gpu:
	pci_dev_put(p->gpu);
err_unmap:
	pci_iounmap(pdev, p->regs);
err_release:
	pci_release_regions(pdev);
err_disable:
	pci_clear_master(pdev);
	pci_disable_device(pdev);
err_free:
	kfree(p);
	return ret;
}

static void pvdma_remove(struct pci_dev *pdev)
{
	struct pvdma *p = pci_get_drvdata(pdev);

	debugfs_remove_recursive(p->dbg);
	mutex_lock(&p->run_lock);
	if (p->stream)
		WRITE_ONCE(p->stream->stop, true);
	pvdma_stream_finish(p);
	mutex_unlock(&p->run_lock);

	pvdma_give_back(p);
	pvdma_log_stats(p, "final");
	pvdma_disable_ring(p);
	pvdma_free_table(p);
	free_irq(p->irq, p);
	pci_free_irq_vectors(pdev);
	kvfree(p->table);
	kvfree(p->owner);
	memunmap(p->ring);
	pci_dev_put(p->gpu);
	pci_iounmap(pdev, p->regs);
	pci_release_regions(pdev);
	pci_clear_master(pdev);
	pci_disable_device(pdev);
	kfree(p);
}

static const struct pci_device_id pvdma_ids[] = {
	{ PCI_DEVICE(0x7470, 0x0001) },	/* thunderpass pvdma companion (paravirtual) */
	{ }
};
MODULE_DEVICE_TABLE(pci, pvdma_ids);

static struct pci_driver pvdma_driver = {
	.name = KBUILD_MODNAME,
	.id_table = pvdma_ids,
	.probe = pvdma_probe,
	.remove = pvdma_remove,
	.dev_groups = pvdma_groups,
};

static int __init pvdma_init(void)
{
	int ret;

	pvdma_cache = KMEM_CACHE(pvdma_map, 0);
	if (!pvdma_cache)
		return -ENOMEM;
	pvdma_dbg_root = debugfs_create_dir(KBUILD_MODNAME, NULL);
	if (IS_ERR(pvdma_dbg_root))
		pvdma_dbg_root = NULL;
	ret = bus_register_notifier(&pci_bus_type, &pvdma_nb);
	if (ret)
		goto err;
	ret = pci_register_driver(&pvdma_driver);
	if (ret) {
		bus_unregister_notifier(&pci_bus_type, &pvdma_nb);
		goto err;
	}
	return 0;
err:
	debugfs_remove_recursive(pvdma_dbg_root);
	kmem_cache_destroy(pvdma_cache);
	return ret;
}

static void __exit pvdma_exit(void)
{
	pci_unregister_driver(&pvdma_driver);
	bus_unregister_notifier(&pci_bus_type, &pvdma_nb);
	debugfs_remove_recursive(pvdma_dbg_root);
	kmem_cache_destroy(pvdma_cache);
}

module_init(pvdma_init);
module_exit(pvdma_exit);

MODULE_DESCRIPTION("thunderpass pvdma: device addresses from the host for a passed-through device");
MODULE_AUTHOR("thunderpass");
MODULE_LICENSE("GPL");
