// SPDX-License-Identifier: GPL-2.0
/*
 * pvdma: the dma_map_ops installed on the managed device, and the records of
 * its live mappings (by device address, with the server's handle).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/device.h>
#include <linux/dma-map-ops.h>
#include <linux/dma-mapping.h>
#include <linux/hash.h>
#include <linux/list.h>
#include <linux/mm.h>
#include <linux/rcupdate.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>

#include "pvdma.h"

static inline struct pvdma *to_pvdma(struct device *dev)
{
	return container_of(get_dma_ops(dev), struct pvdma, ops);
}

/*
 * May a mapping call sleep while an entry waits for room? Only where the
 * kernel can tell (CONFIG_PREEMPT_COUNT: spinlocks raise the preempt count),
 * outside interrupts, with interrupts on and outside RCU read sections.
 * Elsewhere (Debian's arm64 kernel is PREEMPT_VOLUNTARY without a preempt
 * count) every wait spins.
 */
static bool pvdma_may_sleep(void)
{
	if (!IS_ENABLED(CONFIG_PREEMPT_COUNT))
		return false;
	return !preempt_count() && !irqs_disabled() && !rcu_preempt_depth() && !oops_in_progress;
}

static u32 pvdma_dir(enum dma_data_direction dir)
{
	switch (dir) {
	case DMA_TO_DEVICE:
		return PVDMA_DIR_READ;
	case DMA_FROM_DEVICE:
		return PVDMA_DIR_WRITE;
	case DMA_BIDIRECTIONAL:
		return PVDMA_DIR_READ | PVDMA_DIR_WRITE;
	default:
		return 0;
	}
}

static const char *pvdma_status_str(u32 st)
{
	static const char * const names[] = {
		"ok", "bad op", "bad range", "not aligned", "cap", "bad handle",
		"disabled", "no space",
	};

	if (st < ARRAY_SIZE(names))
		return names[st];
	if (st == PVDMA_ST_TIMEOUT)
		return "timeout";
	if (st == PVDMA_ST_DEAD)
		return "ring torn down";
	return "unknown";
}

static int pvdma_errno(u32 st)
{
	return (st == PVDMA_ST_CAP || st == PVDMA_ST_NO_SPACE) ? -ENOMEM : -EIO;
}

/* ---- mapping records */

struct pvdma_map *pvdma_new(bool sleep)
{
	return kmem_cache_zalloc(pvdma_cache, sleep ? GFP_NOIO : GFP_ATOMIC | __GFP_NOWARN);
}

/* Free the requests on reqs that the ring does not own. */
void pvdma_free_list(struct list_head *reqs)
{
	struct pvdma_map *m, *t;

	list_for_each_entry_safe(m, t, reqs, batch) {
		list_del(&m->batch);
		if (!m->abandoned)
			kmem_cache_free(pvdma_cache, m);
	}
}

static void pvdma_table_add(struct pvdma *p, struct pvdma_map *m)
{
	unsigned long flags;

	spin_lock_irqsave(&p->tlock, flags);
	hlist_add_head(&m->node, &p->table[hash_64(m->dva, PVDMA_HASH_BITS)]);
	p->live++;
	p->live_bytes += m->len;
	spin_unlock_irqrestore(&p->tlock, flags);
}

/*
 * The mapping at dva (one of len bytes if there are several: a page mapped
 * twice has one device address and two handles), out of the table.
 */
static struct pvdma_map *pvdma_table_take(struct pvdma *p, u64 dva, u64 len)
{
	struct pvdma_map *m, *best = NULL;
	unsigned long flags;

	spin_lock_irqsave(&p->tlock, flags);
	hlist_for_each_entry(m, &p->table[hash_64(dva, PVDMA_HASH_BITS)], node) {
		if (m->dva != dva)
			continue;
		if (!best || m->len == len)
			best = m;
		if (m->len == len)
			break;
	}
	if (best) {
		hlist_del(&best->node);
		p->live--;
		p->live_bytes -= best->len;
	}
	spin_unlock_irqrestore(&p->tlock, flags);
	return best;
}

static struct pvdma_map *pvdma_table_find(struct pvdma *p, u64 dva)
{
	struct pvdma_map *m, *found = NULL;
	unsigned long flags;

	spin_lock_irqsave(&p->tlock, flags);
	hlist_for_each_entry(m, &p->table[hash_64(dva, PVDMA_HASH_BITS)], node)
		if (m->dva == dva && m->kind == PVDMA_K_COHERENT) {
			found = m;
			break;
		}
	spin_unlock_irqrestore(&p->tlock, flags);
	return found;
}

static u64 pvdma_limit(struct device *dev, bool coherent)
{
	u64 mask = coherent ? dev->coherent_dma_mask : (dev->dma_mask ? *dev->dma_mask : 0);

	return min_not_zero(mask, dev->bus_dma_limit);
}

/* Unmap what mapped: records not in the table, on reqs (status OK ones). */
void pvdma_undo(struct pvdma *p, struct list_head *reqs, bool sleep)
{
	struct pvdma_map *m, *t;
	LIST_HEAD(undo);

	list_for_each_entry_safe(m, t, reqs, batch) {
		if (m->status != PVDMA_ST_OK) {
			list_del(&m->batch);
			if (!m->abandoned)
				kmem_cache_free(pvdma_cache, m);
			continue;
		}
		m->op = PVDMA_OP_UNMAP;
		list_move_tail(&m->batch, &undo);
	}
	if (!list_empty(&undo))
		pvdma_submit(p, &undo, sleep);
	pvdma_free_list(&undo);
}

/*
 * Map [gpa, gpa + len) for dev: one MAP. Returns the record (now in the
 * table) or NULL.
 */
static struct pvdma_map *pvdma_map_one(struct pvdma *p, struct device *dev, u64 gpa, u64 len,
				       u32 dir, u8 kind, bool sleep)
{
	struct pvdma_map *m;
	LIST_HEAD(reqs);

	if (!len || !dir)
		return NULL;
	m = pvdma_new(sleep);
	if (!m) {
		p->st.refused++;
		return NULL;
	}
	m->op = PVDMA_OP_MAP;
	m->gpa = gpa;
	m->len = len;
	m->dir = dir;
	m->kind = kind;
	list_add_tail(&m->batch, &reqs);
	pvdma_submit(p, &reqs, sleep);
	if (m->status == PVDMA_ST_OK &&
	    m->dva + len - 1 > pvdma_limit(dev, kind == PVDMA_K_COHERENT)) {
		dev_warn_ratelimited(dev, "pvdma: device address %#llx+%#llx beyond the DMA mask %#llx\n",
				     m->dva, len, pvdma_limit(dev, kind == PVDMA_K_COHERENT));
		p->st.refused++;
		pvdma_undo(p, &reqs, sleep);
		return NULL;
	}
	if (m->status != PVDMA_ST_OK) {
		dev_warn_ratelimited(dev, "pvdma: map of %#llx+%#llx failed: %s\n", gpa, len,
				     pvdma_status_str(m->status));
		pvdma_free_list(&reqs);
		return NULL;
	}
	list_del(&m->batch);
	pvdma_table_add(p, m);
	return m;
}

/* One UNMAP for a record taken out of the table; frees it. */
static void pvdma_unmap_one(struct pvdma *p, struct device *dev, struct pvdma_map *m, bool sleep)
{
	LIST_HEAD(reqs);

	m->op = PVDMA_OP_UNMAP;
	list_add_tail(&m->batch, &reqs);
	pvdma_submit(p, &reqs, sleep);
	if (m->status != PVDMA_ST_OK)
		dev_warn_ratelimited(dev, "pvdma: unmap of %#llx+%#llx failed: %s\n", m->dva,
				     m->len, pvdma_status_str(m->status));
	pvdma_free_list(&reqs);
}

/* ---- dma_map_ops */

static dma_addr_t pvdma_map_page(struct device *dev, struct page *page, unsigned long offset,
				 size_t size, enum dma_data_direction dir, unsigned long attrs)
{
	struct pvdma *p = to_pvdma(dev);
	struct pvdma_map *m;

	m = pvdma_map_one(p, dev, page_to_phys(page) + offset, size, pvdma_dir(dir),
			  PVDMA_K_STREAM, pvdma_may_sleep());
	return m ? m->dva : DMA_MAPPING_ERROR;
}

static void pvdma_unmap_page(struct device *dev, dma_addr_t dva, size_t size,
			     enum dma_data_direction dir, unsigned long attrs)
{
	struct pvdma *p = to_pvdma(dev);
	struct pvdma_map *m = pvdma_table_take(p, dva, size);

	if (!m) {
		p->st.unknown_unmaps++;
		dev_warn_ratelimited(dev, "pvdma: unmap of %#llx+%#zx: not mapped\n",
				     (u64)dva, size);
		return;
	}
	pvdma_unmap_one(p, dev, m, pvdma_may_sleep());
}

/* Every segment in one batch (split only past p->batch entries). */
static int pvdma_map_sg(struct device *dev, struct scatterlist *sgl, int nents,
			enum dma_data_direction dir, unsigned long attrs)
{
	struct pvdma *p = to_pvdma(dev);
	bool sleep = pvdma_may_sleep();
	u64 limit = pvdma_limit(dev, false);
	u32 d = pvdma_dir(dir);
	struct scatterlist *sg;
	struct pvdma_map *m;
	int i, ret = 0;
	LIST_HEAD(reqs);

	if (nents <= 0 || !d)
		return -EINVAL;
	for_each_sg(sgl, sg, nents, i) {
		m = pvdma_new(sleep);
		if (!m) {
			p->st.refused++;
			pvdma_free_list(&reqs);
			return -ENOMEM;
		}
		m->op = PVDMA_OP_MAP;
		m->gpa = sg_phys(sg);
		m->len = sg->length;
		m->dir = d;
		m->kind = PVDMA_K_STREAM;
		list_add_tail(&m->batch, &reqs);
	}
	pvdma_submit(p, &reqs, sleep);
	list_for_each_entry(m, &reqs, batch) {
		if (m->status != PVDMA_ST_OK) {
			if (!ret)
				ret = pvdma_errno(m->status);
			dev_warn_ratelimited(dev, "pvdma: map_sg segment %#llx+%#llx failed: %s\n",
					     m->gpa, m->len, pvdma_status_str(m->status));
		} else if (m->dva + m->len - 1 > limit) {
			ret = -EIO;
			p->st.refused++;
		}
	}
	if (ret) {
		pvdma_undo(p, &reqs, sleep);
		return ret;
	}
	m = list_first_entry(&reqs, struct pvdma_map, batch);
	for_each_sg(sgl, sg, nents, i) {
		struct pvdma_map *next = list_next_entry(m, batch);

		sg->dma_address = m->dva;
		sg_dma_len(sg) = m->len;
		list_del(&m->batch);
		pvdma_table_add(p, m);
		m = next;
	}
	return nents;
}

static void pvdma_unmap_sg(struct device *dev, struct scatterlist *sgl, int nents,
			   enum dma_data_direction dir, unsigned long attrs)
{
	struct pvdma *p = to_pvdma(dev);
	struct scatterlist *sg;
	struct pvdma_map *m;
	LIST_HEAD(reqs);
	int i;

	for_each_sg(sgl, sg, nents, i) {
		m = pvdma_table_take(p, sg_dma_address(sg), sg_dma_len(sg));
		if (!m) {
			p->st.unknown_unmaps++;
			dev_warn_ratelimited(dev, "pvdma: unmap_sg of %#llx+%#x: not mapped\n",
					     (u64)sg_dma_address(sg), sg_dma_len(sg));
			continue;
		}
		m->op = PVDMA_OP_UNMAP;
		list_add_tail(&m->batch, &reqs);
	}
	if (list_empty(&reqs))
		return;
	pvdma_submit(p, &reqs, pvdma_may_sleep());
	list_for_each_entry(m, &reqs, batch)
		if (m->status != PVDMA_ST_OK)
			dev_warn_ratelimited(dev, "pvdma: unmap of %#llx+%#llx failed: %s\n",
					     m->dva, m->len, pvdma_status_str(m->status));
	pvdma_free_list(&reqs);
}

/*
 * Coherent memory: the companion's own allocator (dma-direct: the page
 * allocator, CMA where the kernel has it, the atomic pools), then one MAP of
 * the whole buffer for the managed device. The companion has no IOMMU and no
 * DMA offset, so its handle is the guest physical address.
 */
static void *pvdma_alloc(struct device *dev, size_t size, dma_addr_t *dma_handle, gfp_t gfp,
			 unsigned long attrs)
{
	struct pvdma *p = to_pvdma(dev);
	bool sleep = gfpflags_allow_blocking(gfp) || pvdma_may_sleep();
	struct pvdma_map *m;
	dma_addr_t cdma;
	void *cpu;

	/* (a DMA offset would make the companion's handle differ from the address) */
	if (WARN_ON_ONCE(p->pdev->dev.dma_range_map))
		return NULL;
	cpu = dma_alloc_attrs(&p->pdev->dev, size, &cdma, gfp, attrs);
	if (!cpu)
		return NULL;
	m = pvdma_map_one(p, dev, cdma, PAGE_ALIGN(size), PVDMA_DIR_READ | PVDMA_DIR_WRITE,
			  PVDMA_K_COHERENT, sleep);
	if (!m) {
		dma_free_attrs(&p->pdev->dev, size, cpu, cdma, attrs);
		return NULL;
	}
	m->cpu = cpu;
	m->cdma = cdma;
	m->attrs = attrs;
	*dma_handle = m->dva;
	return cpu;
}

static void pvdma_free(struct device *dev, size_t size, void *cpu, dma_addr_t dva,
		       unsigned long attrs)
{
	struct pvdma *p = to_pvdma(dev);
	struct pvdma_map *m = pvdma_table_take(p, dva, PAGE_ALIGN(size));
	dma_addr_t cdma;

	if (!m || m->cpu != cpu) {
		p->st.unknown_unmaps++;
		dev_warn(dev, "pvdma: free of %#llx (%p): not a coherent buffer of this device\n",
			 (u64)dva, cpu);
		if (m)
			pvdma_table_add(p, m);
		return;
	}
	cdma = m->cdma;
	m->op = PVDMA_OP_UNMAP;
	{
		LIST_HEAD(reqs);
		bool abandoned;

		list_add_tail(&m->batch, &reqs);
		pvdma_submit(p, &reqs, pvdma_may_sleep());
		abandoned = m->abandoned;
		pvdma_free_list(&reqs);
		if (abandoned) {
			/* the device may still reach it: never give it back */
			dev_warn(dev, "pvdma: unmap of coherent %#llx timed out: %zu bytes leaked\n",
				 (u64)dva, size);
			return;
		}
	}
	dma_free_attrs(&p->pdev->dev, size, cpu, cdma, attrs);
}

static struct page *pvdma_alloc_pages(struct device *dev, size_t size, dma_addr_t *dma_handle,
				      enum dma_data_direction dir, gfp_t gfp)
{
	struct pvdma *p = to_pvdma(dev);
	struct page *page;
	struct pvdma_map *m;

	page = alloc_pages_node(dev_to_node(dev), gfp, get_order(size));
	if (!page)
		return NULL;
	m = pvdma_map_one(p, dev, page_to_phys(page), PAGE_ALIGN(size), pvdma_dir(dir),
			  PVDMA_K_PAGES, gfpflags_allow_blocking(gfp) || pvdma_may_sleep());
	if (!m) {
		__free_pages(page, get_order(size));
		return NULL;
	}
	m->page = page;
	*dma_handle = m->dva;
	return page;
}

static void pvdma_free_pages(struct device *dev, size_t size, struct page *page, dma_addr_t dva,
			     enum dma_data_direction dir)
{
	struct pvdma *p = to_pvdma(dev);
	struct pvdma_map *m = pvdma_table_take(p, dva, PAGE_ALIGN(size));

	if (!m) {
		p->st.unknown_unmaps++;
		dev_warn(dev, "pvdma: free_pages of %#llx: not mapped\n", (u64)dva);
		return;
	}
	pvdma_unmap_one(p, dev, m, pvdma_may_sleep());
	__free_pages(page, get_order(size));
}

static int pvdma_get_sgtable(struct device *dev, struct sg_table *sgt, void *cpu, dma_addr_t dva,
			     size_t size, unsigned long attrs)
{
	struct pvdma_map *m = pvdma_table_find(to_pvdma(dev), dva);
	int ret;

	if (!m)
		return -ENXIO;
	ret = sg_alloc_table(sgt, 1, GFP_KERNEL);
	if (!ret)
		sg_set_page(sgt->sgl, pfn_to_page(PHYS_PFN(m->gpa)), PAGE_ALIGN(size), 0);
	return ret;
}

static int pvdma_mmap(struct device *dev, struct vm_area_struct *vma, void *cpu, dma_addr_t dva,
		      size_t size, unsigned long attrs)
{
	struct pvdma_map *m = pvdma_table_find(to_pvdma(dev), dva);
	unsigned long count = PAGE_ALIGN(size) >> PAGE_SHIFT;

	if (!m || vma->vm_pgoff >= count || vma_pages(vma) > count - vma->vm_pgoff)
		return -ENXIO;
	return remap_pfn_range(vma, vma->vm_start, PHYS_PFN(m->gpa) + vma->vm_pgoff,
			       vma->vm_end - vma->vm_start, vma->vm_page_prot);
}

/* The DART's aperture is 32-bit (docs/iommu.md): any mask of 32 bits or more. */
static int pvdma_dma_supported(struct device *dev, u64 mask)
{
	return mask >= DMA_BIT_MASK(32);
}

static u64 pvdma_get_required_mask(struct device *dev)
{
	return DMA_BIT_MASK(32);
}

/* A single request larger than the byte cap can never be mapped (CAP). */
static size_t pvdma_max_mapping_size(struct device *dev)
{
	struct pvdma *p = to_pvdma(dev);

	return p->max_mapped_mb ? (size_t)p->max_mapped_mb << 20 : SIZE_MAX;
}

/*
 * The sync calls are absent on purpose (the DMA API then does nothing): the
 * "device" reaches guest memory through the server's mapping of it, which is
 * coherent with the guest's caches.
 */
const struct dma_map_ops pvdma_ops_template = {
	.alloc			= pvdma_alloc,
	.free			= pvdma_free,
	.alloc_pages		= pvdma_alloc_pages,
	.free_pages		= pvdma_free_pages,
	.mmap			= pvdma_mmap,
	.get_sgtable		= pvdma_get_sgtable,
	.map_page		= pvdma_map_page,
	.unmap_page		= pvdma_unmap_page,
	.map_sg			= pvdma_map_sg,
	.unmap_sg		= pvdma_unmap_sg,
	.dma_supported		= pvdma_dma_supported,
	.get_required_mask	= pvdma_get_required_mask,
	.max_mapping_size	= pvdma_max_mapping_size,
};
