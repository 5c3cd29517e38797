/* SPDX-License-Identifier: MIT */
/*
 * DMA on macOS: the device reaches only what the dext mapped, at device
 * addresses the DART chose (IODMACommand::PrepareForDMA). This file is the
 * segment-level primitive (tp_darwin_dma_map: up to 32 segments back, all of
 * them checked) and, on top of it, the "darwin" IOMMU model: lib/iommu.h's
 * contract, the same one the "dart" model keeps in software, so that the
 * pvdma companion (which asks the IOMMU model for device addresses on the
 * guest's behalf) works unchanged on real hardware.
 *
 * The model's rules, where they match "dart" (docs/iommu.md):
 *   - map(iova, len) widens to whole 16 KiB pages in the host's view of the
 *     guest region (its mmap of the client's fd), refused with -EINVAL when
 *     the widened pages leave the region; the returned device address keeps
 *     the request's offset in its first page; an alignment that offset does
 *     not have is -EINVAL;
 *   - -EFAULT outside a known guest region (or one that came without an
 *     fd: no host memory to hand the DART), -EACCES beyond its permissions;
 *   - the caps (1.5 GiB mapped, 65536 mappings; GET_INFO's numbers) are
 *     -ENOSPC here, before any call, so that pvdma applies backpressure; the
 *     dext checks them again before PrepareForDMA, since past them the DART
 *     may panic the host;
 *   - unmap(dva, len) names one live mapping exactly; region_removed tears
 *     down every mapping into the region; reset drops them all.
 * Where the real DART differs:
 *   - the device address is the DART's: `align` cannot be asked for. A map
 *     whose address misses the alignment is retried while the misses are
 *     held (so the DART must pick elsewhere), up to MAP_TRIES; if none
 *     lands aligned the first one is kept (a correct address, only less
 *     aligned: counted and warned once), the others are released;
 *   - PrepareForDMA may answer in several segments. Segments that follow
 *     each other in device space are one run and fine (what the DART's
 *     single range mapping gives when a segment limit splits it); a map
 *     whose segments are not one run cannot be one device address: it is
 *     retried the same way, then refused with -ENOMEM ("no contiguous run
 *     of device addresses", as "dart" says when its aperture is
 *     fragmented). The segments stay available through tp_darwin_dma_map
 *     for a scatter-gather user (docs/macos.md: the proposed map_sg hook).
 *
 * The caller serializes map, unmap, region_added/removed and reset against translate (the
 * core's DMA lock). translate serves the core's software DMA path only; the
 * real device's DMA goes through the DART itself.
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <thunderpass/log.h>
#include <thunderpass/protocol.h>

#include "darwin.h"
#include "util.h"

#define MAP_TRIES 4

struct dregion {
	uint64_t iova, size;
	uint8_t *vaddr; /* the core's mapping of the client's fd; NULL: none */
	uint32_t prot;
};

/* One live mapping, device-contiguous: [dva, dva + bytes) <-> [iova, ...). */
struct drec {
	uint64_t dva;    /* device address of the first (widened) page */
	uint64_t bytes;  /* whole pages */
	uint64_t iova;   /* guest address of that page */
	uint64_t udva;   /* what map() returned */
	uint64_t len;    /* what map() was asked for */
	uint64_t handle; /* the dext's */
	uint32_t prot;
};

struct darwin_iommu {
	struct tp_iommu base;
	struct darwin_dev *dev; /* NULL once the backend is gone */
	struct dregion *regions;
	size_t nregions, region_cap;
	struct drec *recs; /* sorted by dva */
	size_t nrecs, rec_cap;
	uint64_t page, max_bytes, max_maps;
	bool full, align_logged, frag_logged;
	uint64_t align_missed, fragmented;
};

/* ---- the primitive ------------------------------------------------------------ */

int tp_darwin_dma_map(struct darwin_dev *d, uint64_t va, uint64_t len, uint32_t dir,
		      struct tp_duc_dma_map_out *out)
{
	struct tp_duc_dma_map_in in = { .va = va, .len = len, .dir = dir };
	uint64_t sum = 0;
	int rc;

	rc = tp_darwin_call(d, TP_DUC_DMA_MAP, NULL, 0, &in, sizeof(in), NULL, 0, out,
			    sizeof(*out));
	if (rc)
		return rc;
	/* The DART's answer, checked: a handle, 1..max segments, none empty or
	 * wrapping, adding up to the request. */
	if (!out->handle || out->len != len || !out->nsegs || out->nsegs > d->info.dma_max_segs)
		goto bad;
	for (uint32_t i = 0; i < out->nsegs; i++) {
		const struct tp_duc_seg *s = &out->segs[i];

		if (!s->len || s->addr + s->len < s->addr || s->len > len - sum)
			goto bad;
		sum += s->len;
	}
	if (sum == len)
		return 0;
bad:
	tp_err(d->be.name, "DMA_MAP of %#" PRIx64 " bytes: impossible answer (handle %#" PRIx64
			   ", %u segments, length %#" PRIx64 ")",
	       len, out->handle, out->nsegs, out->len);
	if (out->handle)
		tp_darwin_dma_unmap(d, out->handle);
	return -EPROTO;
}

int tp_darwin_dma_unmap(struct darwin_dev *d, uint64_t handle)
{
	return tp_darwin_call(d, TP_DUC_DMA_UNMAP, &handle, TP_DUC_DMA_UNMAP_IN, NULL, 0, NULL, 0,
			      NULL, 0);
}

/* ---- the model ------------------------------------------------------------------- */

static struct darwin_iommu *dm(struct tp_iommu *mmu)
{
	return (struct darwin_iommu *)mmu;
}

static void note_usage(struct darwin_iommu *m)
{
	/* A "full" episode ends when use falls below 3/4 of both caps. */
	if (m->full && m->base.st.bytes < m->max_bytes / 4 * 3 &&
	    m->base.st.live < m->max_maps / 4 * 3)
		m->full = false;
}

static struct dregion *find_region(struct darwin_iommu *m, uint64_t iova, uint64_t len)
{
	for (size_t i = 0; i < m->nregions; i++) {
		struct dregion *r = &m->regions[i];

		if (iova >= r->iova && iova - r->iova < r->size && len <= r->size - (iova - r->iova))
			return r;
	}
	return NULL;
}

/* Index of the last record with dva <= a, or -1. */
static ptrdiff_t rec_floor(const struct darwin_iommu *m, uint64_t a)
{
	size_t lo = 0, hi = m->nrecs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (m->recs[mid].dva <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (ptrdiff_t)lo - 1;
}

static bool overlaps_recs(const struct darwin_iommu *m, uint64_t dva, uint64_t bytes)
{
	ptrdiff_t i = rec_floor(m, dva + bytes - 1);

	return i >= 0 && m->recs[i].dva + m->recs[i].bytes > dva;
}

static void rec_remove(struct darwin_iommu *m, size_t i)
{
	m->base.st.bytes -= m->recs[i].bytes;
	m->base.st.pages -= m->recs[i].bytes / m->page;
	m->base.st.live--;
	memmove(&m->recs[i], &m->recs[i + 1], (m->nrecs - i - 1) * sizeof(m->recs[0]));
	m->nrecs--;
	note_usage(m);
}

/* The dext forgets the mapping; we forget it whatever it says (it may be
 * gone already: a closed connection freed everything). */
static void rec_unmap(struct darwin_iommu *m, size_t i)
{
	if (m->dev) {
		int rc = tp_darwin_dma_unmap(m->dev, m->recs[i].handle);

		if (rc && rc != -ENODEV)
			tp_err(m->base.who, "DMA_UNMAP of %#" PRIx64 "+%#" PRIx64 ": %s",
			       m->recs[i].dva, m->recs[i].bytes, strerror(-rc));
	}
	rec_remove(m, i);
}

static int dm_region_added(struct tp_iommu *mmu, const struct tp_dma_region *r)
{
	struct darwin_iommu *m = dm(mmu);

	if (!r->size || r->iova + r->size - 1 < r->iova) {
		tp_err(mmu->who, "guest region %#" PRIx64 "+%#" PRIx64 ": empty or wrapping", r->iova,
		       r->size);
		return -EINVAL;
	}
	for (size_t i = 0; i < m->nregions; i++)
		if (r->iova < m->regions[i].iova + m->regions[i].size &&
		    m->regions[i].iova < r->iova + r->size) {
			tp_err(mmu->who, "guest region %#" PRIx64 "+%#" PRIx64 " overlaps another",
			       r->iova, r->size);
			return -EINVAL;
		}
	if (m->nregions == m->region_cap) {
		size_t cap = m->region_cap ? m->region_cap * 2 : 16;
		struct dregion *n = tp_realloc(m->regions, cap * sizeof(*n));

		if (!n) {
			tp_err(mmu->who, "out of memory");
			return -ENOMEM;
		}
		m->regions = n;
		m->region_cap = cap;
	}
	m->regions[m->nregions++] = (struct dregion){
		.iova = r->iova, .size = r->size, .vaddr = r->vaddr, .prot = r->prot,
	};
	return 0;
}

static void dm_region_removed(struct tp_iommu *mmu, const struct tp_dma_region *r)
{
	struct darwin_iommu *m = dm(mmu);

	for (size_t i = m->nrecs; i-- > 0;) {
		const struct drec *x = &m->recs[i];

		if (x->iova < r->iova + r->size && r->iova < x->iova + x->bytes)
			rec_unmap(m, i);
	}
	for (size_t i = 0; i < m->nregions; i++)
		if (m->regions[i].iova == r->iova && m->regions[i].size == r->size) {
			m->regions[i] = m->regions[--m->nregions];
			return;
		}
}

static int refuse(struct darwin_iommu *m, int rc)
{
	m->base.st.refused++;
	return rc;
}

struct attempt {
	uint64_t handle, run;
	bool one_run;
};

/* Device-contiguous segments are one run starting at *run. */
static bool one_run(const struct tp_duc_dma_map_out *o, uint64_t *run)
{
	for (uint32_t i = 1; i < o->nsegs; i++)
		if (o->segs[i].addr != o->segs[i - 1].addr + o->segs[i - 1].len)
			return false;
	*run = o->segs[0].addr;
	return true;
}

/*
 * Maps [va0, va0 + bytes) and finds it one device run, aligned if it can
 * (see the file comment). Returns the index in a[] of the one kept, or
 * -errno with nothing kept.
 */
static int map_run(struct darwin_iommu *m, uint64_t va0, uint64_t bytes, uint32_t dir,
		   uint64_t align, struct attempt a[MAP_TRIES], bool *aligned)
{
	struct tp_duc_dma_map_out out;
	int n = 0, keep = -1, rc = 0;

	for (; n < MAP_TRIES; n++) {
		uint64_t run;

		/* A held attempt counts against the caps like any mapping. */
		if (n && (m->base.st.bytes + (uint64_t)(n + 1) * bytes > m->max_bytes ||
			  m->base.st.live + (uint64_t)n + 1 > m->max_maps))
			break;
		rc = tp_darwin_dma_map(m->dev, va0, bytes, dir, &out);
		if (rc)
			break;
		run = out.segs[0].addr;
		a[n].handle = out.handle;
		a[n].one_run = one_run(&out, &run) && run + bytes - 1 >= run &&
			       !overlaps_recs(m, run, bytes);
		a[n].run = run;
		if (!a[n].one_run && out.nsegs == 1) {
			/* One segment that overlaps a live mapping: the DART
			 * (or the dext) is confused; never use it. */
			tp_err(m->base.who, "DMA_MAP returned %#" PRIx64 "+%#" PRIx64
					    ", which overlaps a live mapping", run, bytes);
		}
		for (int j = 0; a[n].one_run && j < n; j++)
			if (a[j].one_run && run < a[j].run + bytes && a[j].run < run + bytes)
				a[n].one_run = false;
		if (a[n].one_run && (align <= m->page || !(run & (align - 1)))) {
			keep = n++;
			*aligned = true;
			break;
		}
		if (!a[n].one_run)
			m->fragmented++;
		if (a[n].one_run && keep < 0)
			keep = n; /* the first run that misses the alignment */
	}
	for (int j = 0; j < n; j++)
		if (j != keep && tp_darwin_dma_unmap(m->dev, a[j].handle))
			tp_warn(m->base.who, "releasing a retried DMA mapping failed");
	if (keep >= 0)
		return keep;
	return rc ? rc : -ENOMEM;
}

static int dm_map(struct tp_iommu *mmu, uint64_t iova, uint64_t len, uint32_t prot,
		      uint64_t align, uint64_t *dva)
{
	struct darwin_iommu *m = dm(mmu);
	struct attempt a[MAP_TRIES];
	const struct dregion *r;
	uint64_t va, va0, va1, off, bytes;
	uint32_t dir;
	bool aligned = false;
	ptrdiff_t at;
	int k;

	if (!len || !prot || (prot & ~(TP_VU_DMA_READ_OK | TP_VU_DMA_WRITE_OK)) ||
	    (align & (align - 1)) || iova + len - 1 < iova) {
		tp_warn(mmu->who, "IOMMU map %#" PRIx64 "+%#" PRIx64 " prot %#x align %#" PRIx64
				  ": invalid", iova, len, prot, align);
		return refuse(m, -EINVAL);
	}
	r = find_region(m, iova, len);
	if (!r) {
		tp_warn(mmu->who, "IOMMU map %#" PRIx64 "+%#" PRIx64 ": not inside one guest region",
			iova, len);
		return refuse(m, -EFAULT);
	}
	if ((prot & r->prot) != prot) {
		tp_warn(mmu->who, "IOMMU map %#" PRIx64 "+%#" PRIx64
				  ": prot %#x beyond the region's %#x", iova, len, prot, r->prot);
		return refuse(m, -EACCES);
	}
	if (!r->vaddr || !m->dev) {
		tp_warn(mmu->who, "IOMMU map %#" PRIx64 "+%#" PRIx64 ": %s", iova, len,
			m->dev ? "guest memory came without an fd (use share=on memory)"
			       : "the device is gone");
		return refuse(m, m->dev ? -EFAULT : -ENODEV);
	}
	/* Whole DART pages, in the host's view of the region. */
	va = (uint64_t)(uintptr_t)r->vaddr + (iova - r->iova);
	va0 = va & ~(m->page - 1);
	off = va - va0;
	va1 = (va + len + m->page - 1) & ~(m->page - 1);
	if (va0 < (uint64_t)(uintptr_t)r->vaddr || va1 > (uint64_t)(uintptr_t)r->vaddr + r->size ||
	    (align > 1 && (off & (align - 1)))) {
		tp_warn(mmu->who, "IOMMU map %#" PRIx64 "+%#" PRIx64 " align %#" PRIx64
				  ": its 16 KiB pages leave the region, or its page offset "
				  "cannot have the alignment", iova, len, align);
		return refuse(m, -EINVAL);
	}
	bytes = va1 - va0;
	if (bytes > m->max_bytes - TP_MIN(m->base.st.bytes, m->max_bytes) ||
	    m->base.st.live >= m->max_maps) {
		if (!m->full)
			tp_warn(mmu->who, "DMA caps reached (%" PRIu64 " bytes in %" PRIu64
					  " mappings; caps %" PRIu64 " / %" PRIu64
					  "): waiting for unmaps",
				m->base.st.bytes, m->base.st.live, m->max_bytes, m->max_maps);
		m->full = true;
		return refuse(m, -ENOSPC);
	}
	/* Room for the record first: after the dext mapped, nothing may fail. */
	if (m->nrecs == m->rec_cap) {
		size_t cap = m->rec_cap ? m->rec_cap * 2 : 64;
		struct drec *n = tp_realloc(m->recs, cap * sizeof(*n));

		if (!n) {
			tp_err(mmu->who, "out of memory");
			return refuse(m, -ENOMEM);
		}
		m->recs = n;
		m->rec_cap = cap;
	}
	dir = ((prot & TP_VU_DMA_READ_OK) ? TP_DUC_DMA_DEV_READS : 0) |
	      ((prot & TP_VU_DMA_WRITE_OK) ? TP_DUC_DMA_DEV_WRITES : 0);
	k = map_run(m, va0, bytes, dir, align, a, &aligned);
	if (k < 0) {
		if (k == -ENOMEM && !m->frag_logged)
			tp_warn(mmu->who, "the DART answered a %#" PRIx64 "-byte map in discontiguous "
					  "segments %d times: refused (no single device address)",
				bytes, MAP_TRIES);
		else if (k != -ENOMEM && k != -ENOSPC)
			tp_err(mmu->who, "DMA_MAP of %#" PRIx64 " bytes: %s", bytes, strerror(-k));
		m->frag_logged |= k == -ENOMEM;
		if (k == -ENOSPC)
			m->full = true;
		return refuse(m, k);
	}
	if (!aligned && align > m->page) {
		m->align_missed++;
		if (!m->align_logged)
			tp_warn(mmu->who, "the DART gave %#" PRIx64 " for a map asking %#" PRIx64
					  "-byte alignment; kept (correct, less aligned); further "
					  "misses are counted only", a[k].run + off, align);
		m->align_logged = true;
	}
	at = rec_floor(m, a[k].run) + 1;
	memmove(&m->recs[at + 1], &m->recs[at], (m->nrecs - (size_t)at) * sizeof(m->recs[0]));
	m->recs[at] = (struct drec){
		.dva = a[k].run, .bytes = bytes, .iova = iova - off, .udva = a[k].run + off,
		.len = len, .handle = a[k].handle, .prot = prot,
	};
	m->nrecs++;
	mmu->st.maps++;
	mmu->st.live++;
	mmu->st.bytes += bytes;
	mmu->st.pages += bytes / m->page;
	*dva = a[k].run + off;
	return 0;
}

static int dm_unmap(struct tp_iommu *mmu, uint64_t dva, uint64_t len)
{
	struct darwin_iommu *m = dm(mmu);
	ptrdiff_t i = rec_floor(m, dva);

	if (i < 0 || m->recs[i].udva != dva || m->recs[i].len != len) {
		tp_warn(mmu->who, "IOMMU unmap %#" PRIx64 "+%#" PRIx64 ": no such mapping", dva, len);
		return -EINVAL;
	}
	rec_unmap(m, (size_t)i);
	mmu->st.unmaps++;
	return 0;
}

static int dm_translate(struct tp_iommu *mmu, uint64_t dva, uint64_t len, uint32_t prot,
			    uint64_t *iova, uint64_t *contig)
{
	struct darwin_iommu *m = dm(mmu);
	ptrdiff_t i = rec_floor(m, dva);
	const struct drec *x;

	if (i < 0 || dva - m->recs[i].dva >= m->recs[i].bytes)
		return -EFAULT;
	x = &m->recs[i];
	if ((x->prot & prot) != prot)
		return -EACCES;
	*iova = x->iova + (dva - x->dva);
	*contig = TP_MAX(TP_MIN(len, x->bytes - (dva - x->dva)), 1);
	return 0;
}

static void dm_reset(struct tp_iommu *mmu)
{
	struct darwin_iommu *m = dm(mmu);

	/* One call instead of one per mapping: this model is the connection's
	 * only DMA user. */
	if (m->dev && m->nrecs) {
		int rc = tp_darwin_call(m->dev, TP_DUC_DMA_UNMAP_ALL, NULL, 0, NULL, 0, NULL, 0, NULL,
					0);

		if (rc && rc != -ENODEV)
			tp_err(mmu->who, "DMA_UNMAP_ALL: %s", strerror(-rc));
	}
	m->nrecs = 0;
	mmu->st.live = mmu->st.bytes = mmu->st.pages = 0;
	m->full = false;
}

static void dm_destroy(struct tp_iommu *mmu)
{
	struct darwin_iommu *m = dm(mmu);

	dm_reset(mmu);
	if (m->dev)
		m->dev->mmu = NULL;
	if (m->align_missed || m->fragmented)
		tp_info(mmu->who, "DART: %" PRIu64 " maps kept less aligned than asked, %" PRIu64
				  " answers in discontiguous segments",
			m->align_missed, m->fragmented);
	free(m->regions);
	free(m->recs);
	free(m);
}

static const struct tp_iommu_ops darwin_iommu_ops = {
	.name = "darwin",
	.region_added = dm_region_added,
	.region_removed = dm_region_removed,
	.map = dm_map,
	.unmap = dm_unmap,
	.translate = dm_translate,
	.reset = dm_reset,
	.destroy = dm_destroy,
};

int tp_darwin_iommu_create(struct tp_backend *be, const char *who, struct tp_iommu **out)
{
	struct darwin_dev *d = darwin_of(be);
	struct darwin_iommu *m;

	if (!be || !be->ops || !be->ops->name || strcmp(be->ops->name, "darwin")) {
		tp_err(who, "the darwin IOMMU model needs a darwin backend");
		return -EINVAL;
	}
	if (d->mmu) {
		tp_err(who, "this device already has its IOMMU model");
		return -EBUSY;
	}
	m = tp_calloc(1, sizeof(*m));
	if (!m) {
		tp_err(who, "out of memory");
		return -ENOMEM;
	}
	m->base.ops = &darwin_iommu_ops;
	m->base.who = who;
	m->dev = d;
	m->page = d->info.dma_page;
	m->max_bytes = d->info.dma_max_bytes;
	m->max_maps = d->info.dma_max_maps;
	d->mmu = m;
	*out = &m->base;
	return 0;
}

void tp_darwin_iommu_detach(struct darwin_dev *d)
{
	if (d->mmu)
		d->mmu->dev = NULL;
	d->mmu = NULL;
}
