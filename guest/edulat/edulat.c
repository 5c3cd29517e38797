// SPDX-License-Identifier: GPL-2.0
/*
 * edulat: the interrupt latency of a device QEMU emulates itself (its "edu"
 * teaching device, 1234:11e8), measured the way tpselftest measures the
 * thunderpass model's: from the MMIO write that makes the device raise its
 * MSI to the handler's first instruction, on the guest clock. It is the
 * reference the passed-through path is compared with (bench/irq-latency.sh).
 *
 * edu (QEMU docs/specs/edu.rst): BAR0 0x24 interrupt status, 0x60 raise
 * (writes the value into the status and raises), 0x64 acknowledge.
 */
#include <linux/completion.h>
#include <linux/interrupt.h>
#include <linux/ktime.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/slab.h>
#include <linux/sort.h>

#define EDU_INTR_STATUS 0x24
#define EDU_INTR_RAISE 0x60
#define EDU_INTR_ACK 0x64

static int iters = 200;
module_param(iters, int, 0444);
MODULE_PARM_DESC(iters, "interrupts to time");

struct edulat {
	void __iomem *bar;
	struct completion done;
	ktime_t t_irq;
};

static irqreturn_t edulat_irq(int irq, void *arg)
{
	struct edulat *e = arg;
	ktime_t now = ktime_get();
	u32 st = ioread32(e->bar + EDU_INTR_STATUS);

	if (!st)
		return IRQ_NONE;
	e->t_irq = now;
	iowrite32(st, e->bar + EDU_INTR_ACK);
	complete(&e->done);
	return IRQ_HANDLED;
}

static int cmp_u64(const void *a, const void *b)
{
	u64 x = *(const u64 *)a, y = *(const u64 *)b;

	return x < y ? -1 : x > y;
}

static int edulat_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct edulat *e;
	u64 *lat;
	int ret, n = 0, lost = 0;

	if (iters < 1 || iters > 100000)
		return -EINVAL;
	e = devm_kzalloc(&pdev->dev, sizeof(*e), GFP_KERNEL);
	lat = kcalloc(iters, sizeof(*lat), GFP_KERNEL);
	if (!e || !lat) {
		kfree(lat);
		return -ENOMEM;
	}
	ret = pcim_enable_device(pdev);
	if (!ret)
		ret = pcim_iomap_regions(pdev, BIT(0), "edulat");
	if (!ret)
		ret = pci_alloc_irq_vectors(pdev, 1, 1, PCI_IRQ_MSI);
	if (ret < 0)
		goto out;
	/* MSI is a memory write by the device: no bus mastering, no interrupt. */
	pci_set_master(pdev);
	e->bar = pcim_iomap_table(pdev)[0];
	init_completion(&e->done);
	ret = request_irq(pci_irq_vector(pdev, 0), edulat_irq, 0, "edulat", e);
	if (ret)
		goto out_vec;
	for (int i = 0; i < iters; i++) {
		ktime_t t0;

		reinit_completion(&e->done);
		t0 = ktime_get();
		iowrite32(1, e->bar + EDU_INTR_RAISE);
		if (!wait_for_completion_timeout(&e->done, HZ / 10)) {
			if (++lost > 5)
				break; /* not a latency any more: say so below */
			continue;
		}
		lat[n++] = ktime_to_ns(ktime_sub(e->t_irq, t0));
	}
	free_irq(pci_irq_vector(pdev, 0), e);
	sort(lat, n, sizeof(*lat), cmp_u64, NULL);
	pr_info("edulat: dev=%s irq=msi iters=%d lost=%d latency_us_median=%llu.%01llu latency_us_p90=%llu.%01llu\n",
		pci_name(pdev), iters, lost, n ? lat[n / 2] / 1000 : 0,
		n ? lat[n / 2] % 1000 / 100 : 0, n ? lat[n * 9 / 10] / 1000 : 0,
		n ? lat[n * 9 / 10] % 1000 / 100 : 0);
	ret = 0;
out_vec:
	pci_free_irq_vectors(pdev);
out:
	kfree(lat);
	return ret;
}

static const struct pci_device_id edulat_ids[] = {
	{ PCI_DEVICE(0x1234, 0x11e8) },
	{ }
};
MODULE_DEVICE_TABLE(pci, edulat_ids);

static struct pci_driver edulat_driver = {
	.name = "edulat",
	.id_table = edulat_ids,
	.probe = edulat_probe,
};
module_pci_driver(edulat_driver);

MODULE_DESCRIPTION("Interrupt latency of QEMU's edu device (thunderpass benchmark)");
MODULE_LICENSE("GPL");
