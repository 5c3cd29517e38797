// SPDX-License-Identifier: GPL-2.0
/*
 * tpselftest: a guest driver for thunderpass's model GPU (10de:2b85) that drives
 * its copy engine (docs/copy-engine.md) end to end: guest memory -> device
 * addresses -> server -> VRAM and back, with a fence and a completion interrupt
 * (MSI-X, MSI or INTx, as asked). The test runs once, at probe; the result is a
 * printk line and the sysfs attribute "result" of the bound device.
 * See docs/guest-selftest.md.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/device.h>
#include <linux/dma-mapping.h>
#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/sysfs.h>

#include "tpselftest.h"

static char *irq_mode = "msix";
module_param_named(irq, irq_mode, charp, 0444);
MODULE_PARM_DESC(irq, "interrupt mode: msix (default), msi or intx");
static char *max_size = "8M";
module_param(max_size, charp, 0444);
MODULE_PARM_DESC(max_size, "largest job (bytes, K/M suffixes; default 8M, at least 4K)");
char *tps_buf_mode = "auto";
module_param_named(buf, tps_buf_mode, charp, 0444);
MODULE_PARM_DESC(buf, "data buffers: auto (default), coherent (one dma_alloc_coherent, needs CMA above 4 MiB) or pages");

static ssize_t result_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	struct tps_dev *t = dev_get_drvdata(dev);

	return sysfs_emit(buf, "%s\n", t->result);
}
static DEVICE_ATTR_RO(result);

static struct attribute *tps_attrs[] = {
	&dev_attr_result.attr,
	NULL,
};
ATTRIBUTE_GROUPS(tps);

static int tps_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct device *dev = &pdev->dev;
	unsigned int irq_flags;
	struct tps_dev *t;
	size_t max;
	char *end;
	u32 v;
	int ret, nvec;

	max = memparse(max_size, &end);
	if (*end || max < TPS_MIN_SIZE || max > SZ_1G) {
		dev_err(dev, "max_size=%s: want 4K..1G\n", max_size);
		return -EINVAL;
	}
	if (!strcmp(irq_mode, "msix")) {
		irq_flags = PCI_IRQ_MSIX;
	} else if (!strcmp(irq_mode, "msi")) {
		irq_flags = PCI_IRQ_MSI;
	} else if (!strcmp(irq_mode, "intx")) {
		irq_flags = PCI_IRQ_LEGACY;
	} else {
		dev_err(dev, "irq=%s: want msix, msi or intx\n", irq_mode);
		return -EINVAL;
	}
	if (strcmp(tps_buf_mode, "auto") && strcmp(tps_buf_mode, "coherent") &&
	    strcmp(tps_buf_mode, "pages")) {
		dev_err(dev, "buf=%s: want auto, coherent or pages\n", tps_buf_mode);
		return -EINVAL;
	}

	t = kzalloc(sizeof(*t), GFP_KERNEL);
	if (!t)
		return -ENOMEM;
	t->pdev = pdev;
	t->mode = irq_mode;
	init_completion(&t->done);
	pci_set_drvdata(pdev, t);

	ret = pci_enable_device(pdev);
	if (ret)
		goto err_free;
	pci_set_master(pdev);
	ret = dma_set_mask_and_coherent(dev, DMA_BIT_MASK(64));
	if (ret) {
		dev_err(dev, "no 64-bit DMA\n");
		goto err_disable;
	}
	t->vram_size = pci_resource_len(pdev, 1);
	if (pci_resource_len(pdev, 0) < TPCE_BASE + TPCE_SIZE || t->vram_size < max) {
		dev_err(dev, "BAR0 (%llu bytes) or BAR1 (%llu bytes) too small\n",
			(u64)pci_resource_len(pdev, 0), (u64)t->vram_size);
		ret = -ENODEV;
		goto err_disable;
	}
	ret = pci_request_region(pdev, 0, KBUILD_MODNAME);
	if (ret)
		goto err_disable;
	t->ce = ioremap(pci_resource_start(pdev, 0) + TPCE_BASE, TPCE_SIZE);
	if (!t->ce) {
		ret = -ENOMEM;
		goto err_release;
	}
	v = ce_rd(t, TPCE_ID);
	if (v != TPCE_ID_VALUE) {
		dev_err(dev, "no copy engine: CE_ID 0x%08x (want 0x%08x)\n", v, TPCE_ID_VALUE);
		ret = -ENODEV;
		goto err_unmap;
	}
	dev_info(dev, "copy engine version %u\n", ce_rd(t, TPCE_VERSION));

	t->fence = dma_alloc_coherent(dev, PAGE_SIZE, &t->fence_dma, GFP_KERNEL);
	if (!t->fence) {
		ret = -ENOMEM;
		goto err_unmap;
	}
	ret = tps_buf_alloc(dev, &t->src, max);
	if (!ret)
		ret = tps_buf_alloc(dev, &t->dst, max);
	if (ret) {
		dev_err(dev, "no memory for 2 x %zu byte buffers (buf=%s)\n", max, tps_buf_mode);
		goto err_bufs;
	}

	nvec = pci_alloc_irq_vectors(pdev, 1, 1, irq_flags);
	if (nvec < 0) {
		dev_err(dev, "irq=%s: no vector (%d)\n", irq_mode, nvec);
		ret = nvec;
		goto err_bufs;
	}
	t->irq = pci_irq_vector(pdev, 0);
	/* Quiet engine before the handler goes in. */
	ce_wr(t, TPCE_INTR_ENABLE, 0);
	ce_wr(t, TPCE_INTR_STATUS, ~0U);
	ce_wr(t, TPCE_VECTOR, 0);
	ret = request_irq(t->irq, tps_irq, irq_flags == PCI_IRQ_LEGACY ? IRQF_SHARED : 0,
			  KBUILD_MODNAME, t);
	if (ret)
		goto err_vectors;
	ce_wr(t, TPCE_INTR_ENABLE, TPCE_I_DONE | TPCE_I_ERROR);
	dev_info(dev, "irq=%s (irq %d, msix %d msi %d), buffers %s (%u+%u runs)\n", irq_mode,
		 t->irq, pdev->msix_enabled, pdev->msi_enabled,
		 t->src.coherent ? "coherent" : "pages", t->src.nruns, t->dst.nruns);

	tps_run(t, max);
	return 0;

err_vectors:
	pci_free_irq_vectors(pdev);
err_bufs:
	tps_buf_free(dev, &t->dst);
	tps_buf_free(dev, &t->src);
	dma_free_coherent(dev, PAGE_SIZE, t->fence, t->fence_dma);
err_unmap:
	iounmap(t->ce);
err_release:
	pci_release_region(pdev, 0);
err_disable:
	pci_clear_master(pdev);
	pci_disable_device(pdev);
err_free:
	kfree(t);
	return ret;
}

static void tps_remove(struct pci_dev *pdev)
{
	struct tps_dev *t = pci_get_drvdata(pdev);
	struct device *dev = &pdev->dev;

	ce_wr(t, TPCE_INTR_ENABLE, 0);
	ce_wr(t, TPCE_INTR_STATUS, ~0U);
	free_irq(t->irq, t);
	pci_free_irq_vectors(pdev);
	tps_buf_free(dev, &t->dst);
	tps_buf_free(dev, &t->src);
	dma_free_coherent(dev, PAGE_SIZE, t->fence, t->fence_dma);
	iounmap(t->ce);
	pci_release_region(pdev, 0);
	pci_clear_master(pdev);
	pci_disable_device(pdev);
	kfree(t);
}

static const struct pci_device_id tps_ids[] = {
	{ PCI_DEVICE(0x10de, 0x2b85) },	/* thunderpass model GB202 (RTX 5090) */
	{ }
};
MODULE_DEVICE_TABLE(pci, tps_ids);

static struct pci_driver tps_driver = {
	.name = KBUILD_MODNAME,
	.id_table = tps_ids,
	.probe = tps_probe,
	.remove = tps_remove,
	.dev_groups = tps_groups,
};
module_pci_driver(tps_driver);

MODULE_DESCRIPTION("thunderpass model GPU copy-engine self-test (DMA, fence, MSI-X/MSI/INTx)");
MODULE_AUTHOR("thunderpass");
MODULE_LICENSE("GPL");
