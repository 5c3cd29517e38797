/* SPDX-License-Identifier: MIT */
/*
 * What the kernel hands back, parsed with no system call: the capability
 * chains of VFIO_DEVICE_GET_REGION_INFO and VFIO_IOMMU_GET_INFO, the MSI-X
 * capability in config space, and the ranges of a BAR the client may map.
 * The kernel is trusted to mean well, not to be right: every offset, count
 * and chain is bounded here, as a client's message would be.
 */
#include <errno.h>
#include <string.h>

#include "pci_regs.h"
#include "util.h"
#include "vfio.h"

/* A chain longer than this is a loop the strictly-rising rule missed. */
#define MAX_CAPS 32

/*
 * Walks a VFIO capability chain: cap_offset and every next are offsets from
 * the start of buf; each header must lie inside len and come after the fixed
 * part, and offsets must rise (no loops). fn sees each header's id, version,
 * offset and the bytes left from it.
 */
static int walk_caps(const uint8_t *buf, uint32_t len, uint32_t fixed, uint32_t first,
		     int (*fn)(void *ctx, uint16_t id, uint16_t ver, const uint8_t *cap,
			       uint32_t avail, const char **why),
		     void *ctx, const char **why)
{
	uint32_t off = first;

	for (int n = 0; off; n++) {
		struct vfio_info_cap_header h;
		int rc;

		if (n == MAX_CAPS) {
			*why = "capability chain too long";
			return -EPROTO;
		}
		if (off < fixed || !tp_range_ok(off, sizeof(h), len) || (off & 3)) {
			*why = "capability outside the answer";
			return -EPROTO;
		}
		memcpy(&h, buf + off, sizeof(h));
		rc = fn(ctx, h.id, h.version, buf + off, len - off, why);
		if (rc)
			return rc;
		if (h.next && h.next <= off) {
			*why = "capability chain goes backwards";
			return -EPROTO;
		}
		off = h.next;
	}
	return 0;
}

static int region_cap(void *ctx, uint16_t id, uint16_t ver, const uint8_t *cap, uint32_t avail,
		      const char **why)
{
	struct vfio_region *r = ctx;
	struct vfio_region_info_cap_sparse_mmap sp;

	switch (id) {
	case VFIO_REGION_INFO_CAP_MSIX_MAPPABLE:
		r->msix_mappable = true;
		return 0;
	case VFIO_REGION_INFO_CAP_SPARSE_MMAP:
		break;
	default:
		return 0; /* types, NVLink, ...: nothing we use */
	}
	if (avail < sizeof(sp)) {
		*why = "sparse-mmap capability cut short";
		return -EPROTO;
	}
	memcpy(&sp, cap, sizeof(sp));
	if (sp.nr_areas > VFIO_MAX_SPARSE) {
		*why = "too many sparse-mmap areas";
		return -EPROTO;
	}
	if ((uint64_t)sp.nr_areas * sizeof(struct vfio_region_sparse_mmap_area) >
	    avail - sizeof(sp)) {
		*why = "sparse-mmap areas cut short";
		return -EPROTO;
	}
	r->has_sparse = true;
	r->nr_sparse = 0;
	for (uint32_t i = 0; i < sp.nr_areas; i++) {
		struct vfio_region_sparse_mmap_area a;

		memcpy(&a, cap + sizeof(sp) + i * sizeof(a), sizeof(a));
		if (!tp_range_ok(a.offset, a.size, r->size)) {
			*why = "sparse-mmap area outside the region";
			return -EPROTO;
		}
		if (a.size)
			r->sparse[r->nr_sparse++] = (struct tp_mmap_area){ a.offset, a.size };
	}
	(void)ver;
	return 0;
}

int vfio_parse_region_caps(const void *buf, uint32_t len, struct vfio_region *r,
			   const char **why)
{
	struct vfio_region_info info;

	r->has_sparse = r->msix_mappable = false;
	r->nr_sparse = 0;
	if (len < sizeof(info)) {
		*why = "region info cut short";
		return -EPROTO;
	}
	memcpy(&info, buf, sizeof(info));
	if (!(info.flags & VFIO_REGION_INFO_FLAG_CAPS) || !info.cap_offset)
		return 0;
	return walk_caps(buf, TP_MIN(len, info.argsz), sizeof(info), info.cap_offset, region_cap,
			 r, why);
}

static int iommu_cap(void *ctx, uint16_t id, uint16_t ver, const uint8_t *cap, uint32_t avail,
		     const char **why)
{
	struct vfio_dev *v = ctx;

	if (id == VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) {
		struct vfio_iommu_type1_info_cap_iova_range ir;

		if (avail < sizeof(ir)) {
			*why = "IOVA range capability cut short";
			return -EPROTO;
		}
		memcpy(&ir, cap, sizeof(ir));
		if ((uint64_t)ir.nr_iovas * sizeof(struct vfio_iova_range) > avail - sizeof(ir)) {
			*why = "IOVA ranges cut short";
			return -EPROTO;
		}
		v->nr_iova = 0;
		for (uint32_t i = 0; i < ir.nr_iovas && v->nr_iova < VFIO_MAX_IOVA_RANGES; i++) {
			struct vfio_iova_range r;

			memcpy(&r, cap + sizeof(ir) + i * sizeof(r), sizeof(r));
			if (r.end < r.start) {
				*why = "an IOVA range ends before it starts";
				return -EPROTO;
			}
			v->iova[v->nr_iova++] = (struct vfio_iova_span){ r.start, r.end };
		}
	} else if (id == VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL) {
		struct vfio_iommu_type1_info_dma_avail da;

		if (avail < sizeof(da)) {
			*why = "DMA-available capability cut short";
			return -EPROTO;
		}
		memcpy(&da, cap, sizeof(da));
		v->have_dma_avail = true;
		v->dma_avail = da.avail;
	}
	(void)ver;
	return 0;
}

int vfio_parse_iommu_caps(const void *buf, uint32_t len, struct vfio_dev *v, const char **why)
{
	struct vfio_iommu_type1_info info;

	v->nr_iova = 0;
	v->have_dma_avail = false;
	if (len < sizeof(info)) {
		*why = "IOMMU info cut short";
		return -EPROTO;
	}
	memcpy(&info, buf, sizeof(info));
	v->iova_pgsizes = (info.flags & VFIO_IOMMU_INFO_PGSIZES) ? info.iova_pgsizes : 0;
	if (!(info.flags & VFIO_IOMMU_INFO_CAPS) || !info.cap_offset)
		return 0;
	return walk_caps(buf, TP_MIN(len, info.argsz), sizeof(info), info.cap_offset, iommu_cap,
			 v, why);
}

int vfio_find_msix(const uint8_t *cfg, uint32_t len, struct vfio_msix *m, const char **why)
{
	uint32_t ptr, table, pba, n;

	memset(m, 0, sizeof(*m));
	if (len < 0x40 || !(tp_le_get(cfg + PCI_STATUS, 2) & PCI_STATUS_CAP_LIST))
		return 0;
	ptr = cfg[PCI_CAPABILITY_LIST] & 0xfc;
	for (int hops = 0; ptr; hops++) {
		if (hops == 48 || ptr < 0x40 || ptr + 2 > len) {
			*why = "capability list leaves the header or loops";
			return -EPROTO;
		}
		if (cfg[ptr] == PCI_CAP_ID_MSIX)
			break;
		ptr = cfg[ptr + 1] & 0xfc;
	}
	if (!ptr)
		return 0;
	if (ptr + 12 > len) {
		*why = "MSI-X capability cut short";
		return -EPROTO;
	}
	n = (tp_le_get(cfg + ptr + PCI_MSIX_FLAGS, 2) & PCI_MSIX_FLAGS_QSIZE) + 1;
	table = tp_le_get(cfg + ptr + PCI_MSIX_TABLE, 4);
	pba = tp_le_get(cfg + ptr + PCI_MSIX_PBA, 4);
	if ((table & 7) > TP_REGION_BAR5 || (pba & 7) > TP_REGION_BAR5) {
		*why = "MSI-X table or PBA in a BAR that does not exist";
		return -EPROTO;
	}
	m->present = true;
	m->vectors = n;
	m->table_bar = table & 7;
	m->table_off = table & ~7u;
	m->table_size = (uint64_t)n * 16;
	m->pba_bar = pba & 7;
	m->pba_off = pba & ~7u;
	m->pba_size = (((uint64_t)n + 63) / 64) * 8;
	return 0;
}

/* Cuts [lo, hi) out of a list of areas; false if the list would overflow. */
static bool cut(struct tp_mmap_area *a, uint32_t *n, uint32_t max, uint64_t lo, uint64_t hi)
{
	struct tp_mmap_area out[VFIO_MAX_SPARSE + 4];
	uint32_t k = 0;
	bool fits = true;

	for (uint32_t i = 0; i < *n; i++) {
		uint64_t s = a[i].offset, e = s + a[i].size;

		if (e <= lo || s >= hi) {
			out[k++] = a[i];
		} else {
			if (s < lo)
				out[k++] = (struct tp_mmap_area){ s, lo - s };
			if (e > hi)
				out[k++] = (struct tp_mmap_area){ hi, e - hi };
		}
		if (k > max) {
			fits = false;
			k = max;
		}
	}
	memcpy(a, out, k * sizeof(*a));
	*n = k;
	return fits;
}

int vfio_mappable_areas(struct vfio_region *r, uint32_t index, const struct vfio_msix *m,
			uint64_t page)
{
	struct tp_mmap_area a[VFIO_MAX_SPARSE + 4];
	uint32_t n = 0, max = VFIO_MAX_SPARSE + 2;
	bool fits = true;
	int rc = 0;

	r->nr_areas = 0;
	if (index > TP_REGION_BAR5 || !r->size || !(r->flags & VFIO_REGION_INFO_FLAG_MMAP) ||
	    !tp_is_pow2(page))
		return 0;
	if (r->has_sparse) {
		memcpy(a, r->sparse, r->nr_sparse * sizeof(*a));
		n = r->nr_sparse;
	} else {
		a[n++] = (struct tp_mmap_area){ 0, r->size };
	}
	/* Whole pages only: a partial page is trapped. */
	for (uint32_t i = 0; i < n; i++) {
		uint64_t s = (a[i].offset + page - 1) & ~(page - 1);
		uint64_t e = (a[i].offset + a[i].size) & ~(page - 1);

		a[i] = (struct tp_mmap_area){ s, e > s ? e - s : 0 };
	}
	if (m && m->present) {
		if (m->table_bar == index)
			fits &= cut(a, &n, max, m->table_off & ~(page - 1),
				    (m->table_off + m->table_size + page - 1) & ~(page - 1));
		if (m->pba_bar == index)
			fits &= cut(a, &n, max, m->pba_off & ~(page - 1),
				    (m->pba_off + m->pba_size + page - 1) & ~(page - 1));
	}
	for (uint32_t i = 0; i < n; i++) {
		if (!a[i].size)
			continue;
		if (r->nr_areas == TP_MAX_MMAP_AREAS) {
			rc = -ENOSPC;
			break;
		}
		r->areas[r->nr_areas++] = a[i];
	}
	return fits ? rc : -ENOSPC;
}
