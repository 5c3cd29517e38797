// SPDX-License-Identifier: GPL-2.0
/*
 * pvdma: statistics in sysfs (the guest's counters, the server's, the
 * guest's model of the server's windows) and the companion's configuration.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/device.h>
#include <linux/io.h>
#include <linux/list.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/spinlock.h>
#include <linux/sysfs.h>

#include "pvdma.h"

u64 pvdma_rd_bytes(struct pvdma *p)
{
	u32 hi, lo;

	do {
		hi = pvdma_rd(p, PVDMA_REG_STAT_BYTES_HI);
		lo = pvdma_rd(p, PVDMA_REG_STAT_BYTES_LO);
	} while (hi != pvdma_rd(p, PVDMA_REG_STAT_BYTES_HI));
	return (u64)hi << 32 | lo;
}

/* ---- the guest's prediction of the server's windows (docs/guest-pvdma.md) */

static int cmp_u64(const void *a, const void *b)
{
	u64 x = *(const u64 *)a, y = *(const u64 *)b;

	return x < y ? -1 : x > y;
}

/*
 * From the live records: distinct windows (requests inside one window share
 * it) plus one mapping per request that crosses a window boundary, and their
 * bytes (whole windows; large requests rounded out to granules).
 */
static int pvdma_model(struct pvdma *p, u64 *windows, u64 *bytes)
{
	u64 w = p->window, g = p->granule, n = 0, nw = 0, large = 0, lbytes = 0, cap, i;
	struct pvdma_map *m;
	unsigned long flags;
	unsigned int b;
	u64 *ids;

	if (!w || !g)
		return -EINVAL;
	for (;;) {
		cap = READ_ONCE(p->live) + 64;
		ids = kvmalloc_array(cap, sizeof(*ids), GFP_KERNEL);
		if (!ids)
			return -ENOMEM;
		spin_lock_irqsave(&p->tlock, flags);
		if (p->live <= cap)
			break;
		spin_unlock_irqrestore(&p->tlock, flags);
		kvfree(ids);
	}
	for (b = 0; b < (1U << PVDMA_HASH_BITS); b++) {
		hlist_for_each_entry(m, &p->table[b], node) {
			if (m->gpa / w == (m->gpa + m->len - 1) / w) {
				ids[n++] = m->gpa / w;
			} else {
				large++;
				lbytes += round_up(m->gpa + m->len, g) - round_down(m->gpa, g);
			}
		}
	}
	spin_unlock_irqrestore(&p->tlock, flags);
	sort(ids, n, sizeof(*ids), cmp_u64, NULL);
	for (i = 0; i < n; i++)
		if (!i || ids[i] != ids[i - 1])
			nw++;
	kvfree(ids);
	*windows = nw + large;
	*bytes = nw * w + lbytes;
	return 0;
}

/* ---- sysfs: /sys/bus/pci/devices/<companion>/pvdma/ */

#define PVDMA_STAT_ATTR(name)							\
static ssize_t name##_show(struct device *dev, struct device_attribute *attr,	\
			   char *buf)						\
{										\
	struct pvdma *p = dev_get_drvdata(dev);					\
										\
	return sysfs_emit(buf, "%llu\n", READ_ONCE(p->st.name));		\
}										\
static DEVICE_ATTR_RO(name)

PVDMA_STAT_ATTR(doorbells);
PVDMA_STAT_ATTR(requests);
PVDMA_STAT_ATTR(maps);
PVDMA_STAT_ATTR(unmaps);
PVDMA_STAT_ATTR(errors);
PVDMA_STAT_ATTR(delayed);
PVDMA_STAT_ATTR(bytes_mapped);
PVDMA_STAT_ATTR(abandoned);
PVDMA_STAT_ATTR(reaped);
PVDMA_STAT_ATTR(sleeps);
PVDMA_STAT_ATTR(spins);
PVDMA_STAT_ATTR(ring_full);
PVDMA_STAT_ATTR(unknown_unmaps);
PVDMA_STAT_ATTR(refused);
PVDMA_STAT_ATTR(max_batch);
PVDMA_STAT_ATTR(irqs);

#define PVDMA_REG_ATTR(name, reg)						\
static ssize_t name##_show(struct device *dev, struct device_attribute *attr,	\
			   char *buf)						\
{										\
	struct pvdma *p = dev_get_drvdata(dev);					\
										\
	return sysfs_emit(buf, "%u\n", pvdma_rd(p, reg));			\
}										\
static DEVICE_ATTR_RO(name)

PVDMA_REG_ATTR(server_requests, PVDMA_REG_STAT_REQUESTS);
PVDMA_REG_ATTR(server_maps, PVDMA_REG_STAT_MAPS);
PVDMA_REG_ATTR(server_unmaps, PVDMA_REG_STAT_UNMAPS);
PVDMA_REG_ATTR(server_windows, PVDMA_REG_STAT_WINDOWS);
PVDMA_REG_ATTR(server_errors, PVDMA_REG_STAT_ERRORS);
PVDMA_REG_ATTR(server_delayed, PVDMA_REG_STAT_DELAYED);
PVDMA_REG_ATTR(server_lazy, PVDMA_REG_STAT_LAZY);
PVDMA_REG_ATTR(consumer, PVDMA_REG_CONSUMER);
PVDMA_REG_ATTR(control, PVDMA_REG_CONTROL);

static ssize_t server_bytes_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%llu\n", pvdma_rd_bytes(dev_get_drvdata(dev)));
}
static DEVICE_ATTR_RO(server_bytes);

static ssize_t live_maps_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	struct pvdma *p = dev_get_drvdata(dev);

	return sysfs_emit(buf, "%llu\n", READ_ONCE(p->live));
}
static DEVICE_ATTR_RO(live_maps);

static ssize_t live_bytes_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	struct pvdma *p = dev_get_drvdata(dev);

	return sysfs_emit(buf, "%llu\n", READ_ONCE(p->live_bytes));
}
static DEVICE_ATTR_RO(live_bytes);

static ssize_t model_windows_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	u64 w, b;
	int ret = pvdma_model(dev_get_drvdata(dev), &w, &b);

	return ret ? ret : sysfs_emit(buf, "%llu\n", w);
}
static DEVICE_ATTR_RO(model_windows);

static ssize_t model_bytes_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	u64 w, b;
	int ret = pvdma_model(dev_get_drvdata(dev), &w, &b);

	return ret ? ret : sysfs_emit(buf, "%llu\n", b);
}
static DEVICE_ATTR_RO(model_bytes);

#define PVDMA_CFG_ATTR(name)							\
static ssize_t name##_show(struct device *dev, struct device_attribute *attr,	\
			   char *buf)						\
{										\
	struct pvdma *p = dev_get_drvdata(dev);					\
										\
	return sysfs_emit(buf, "%u\n", p->name);				\
}										\
static DEVICE_ATTR_RO(name)

PVDMA_CFG_ATTR(nent);
PVDMA_CFG_ATTR(granule);
PVDMA_CFG_ATTR(window);
PVDMA_CFG_ATTR(max_mapped_mb);
PVDMA_CFG_ATTR(max_mappings);

static ssize_t managed_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	struct pvdma *p = dev_get_drvdata(dev);

	return sysfs_emit(buf, "%s\n", pci_name(p->gpu));
}
static DEVICE_ATTR_RO(managed);

static struct attribute *pvdma_stat_attrs[] = {
	&dev_attr_doorbells.attr,
	&dev_attr_requests.attr,
	&dev_attr_maps.attr,
	&dev_attr_unmaps.attr,
	&dev_attr_errors.attr,
	&dev_attr_delayed.attr,
	&dev_attr_bytes_mapped.attr,
	&dev_attr_abandoned.attr,
	&dev_attr_reaped.attr,
	&dev_attr_sleeps.attr,
	&dev_attr_spins.attr,
	&dev_attr_ring_full.attr,
	&dev_attr_unknown_unmaps.attr,
	&dev_attr_refused.attr,
	&dev_attr_max_batch.attr,
	&dev_attr_irqs.attr,
	&dev_attr_live_maps.attr,
	&dev_attr_live_bytes.attr,
	&dev_attr_model_windows.attr,
	&dev_attr_model_bytes.attr,
	&dev_attr_server_requests.attr,
	&dev_attr_server_maps.attr,
	&dev_attr_server_unmaps.attr,
	&dev_attr_server_windows.attr,
	&dev_attr_server_bytes.attr,
	&dev_attr_server_errors.attr,
	&dev_attr_server_delayed.attr,
	&dev_attr_server_lazy.attr,
	&dev_attr_consumer.attr,
	&dev_attr_control.attr,
	&dev_attr_nent.attr,
	&dev_attr_granule.attr,
	&dev_attr_window.attr,
	&dev_attr_max_mapped_mb.attr,
	&dev_attr_max_mappings.attr,
	NULL,
};

static const struct attribute_group pvdma_stat_group = {
	.name = "pvdma",
	.attrs = pvdma_stat_attrs,
};

static struct attribute *pvdma_top_attrs[] = {
	&dev_attr_managed.attr,
	NULL,
};

static const struct attribute_group pvdma_top_group = {
	.attrs = pvdma_top_attrs,
};

const struct attribute_group *pvdma_groups[] = {
	&pvdma_top_group,
	&pvdma_stat_group,
	NULL,
};
