/* SPDX-License-Identifier: MIT */
/*
 * The dart IOMMU model: Apple's DART as a PCIDriverKit driver meets it. The
 * host picks every device address; only what was mapped is reachable; the
 * translation goes through real page-table pages in the DART's own format.
 * docs/iommu.md describes the format, the aperture, the caps, the alignment
 * rule and the allocator; the sources of the constants are cited below.
 *
 * The "physical" address a leaf PTE holds is the guest IOVA of the page (the
 * model maps guest memory, not host memory). Table pages get addresses of
 * their own, in a window no guest address reaches the walk through: a walk
 * reads the L1 entry, decodes the table address from it and reads the leaf
 * from that page, as the hardware does.
 *
 * Side structures, never read by translate(): per-mapping records (unmap
 * must match a map; region_removed must find what points into a region),
 * the free extents of the aperture, the guest regions, and a count of valid
 * leaves per L2 table (so an empty table is freed without a scan).
 */
#include "iommu.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <thunderpass/log.h>
#include <thunderpass/protocol.h>

#include "util.h"

/* 16 KiB pages: Apple Silicon DARTs run with the CPU's 16 KiB page (Linux
 * apple-dart.c reads it from DART_PARAMS1 PAGE_SHIFT; DESIGN.md). */
#define DART_PAGE_SHIFT 14
#define DART_PAGE (1ull << DART_PAGE_SHIFT)
#define DART_PAGE_MASK (DART_PAGE - 1)
/* A table is one page of 8-byte entries: 2048 of them (io-pgtable-dart.c:
 * bits_per_level = pg_shift - ilog2(sizeof(dart_iopte)) = 14 - 3 = 11). */
#define DART_LEVEL_BITS 11
#define DART_PTES (1u << DART_LEVEL_BITS)
/* Leaf (L2) index: dva bits [24:14]; L1 index: bits [35:25]. One L2 table
 * maps 32 MiB, the L1 table 64 GiB. DARTs with 16 KiB pages use a single
 * top-level table (io-pgtable-dart.c, dart_alloc_pgtable), so nothing at or
 * above 2^36 translates. */
#define DART_L1_SHIFT (DART_PAGE_SHIFT + DART_LEVEL_BITS)
#define DART_VA_LIMIT (1ull << (DART_L1_SHIFT + DART_LEVEL_BITS))

/*
 * PTE format "DART2" (apple,t6000-dart: M1 Pro/Max/Ultra; also the t8110
 * DARTs of M2 and later), from io-pgtable-dart.c and Sven Peter's patch
 * "iommu/io-pgtable-dart: Add DART PTE support for t6000": a 42-bit output
 * address (apple-dart.c: oas = 42) shifted right by 4 into bits [37:10];
 * protection bits are "no read"/"no write"; sub-page protection is
 * mandatory, so every leaf carries start 0 / end 0xfff (the whole page).
 * Table entries hold the next table's address in the same field plus the
 * valid bit, nothing else. DART1 (t8103) would cap guest addresses at 36
 * bits (64 GiB), which a large VM's RAM can pass.
 */
#define DART_PTE_VALID (1ull << 0)
#define DART_PTE_NO_CACHE (1ull << 1) /* left clear: PCIe DMA here is coherent */
#define DART_PTE_NO_WRITE (1ull << 2)
#define DART_PTE_NO_READ (1ull << 3)
#define DART_PTE_ADDR_MASK 0x0000003ffffffc00ull /* GENMASK_ULL(37, 10) */
#define DART_PTE_ADDR_SHIFT 4
#define DART_PTE_SUBPAGE_END_SHIFT 40 /* [51:40]; the start, [63:52], stays 0 */
#define DART_PTE_SUBPAGE_ALL (0xfffull << DART_PTE_SUBPAGE_END_SHIFT)
#define DART_OAS_LIMIT (1ull << 42)
/* A 16 KiB-aligned address into the PTE's address field, and back. */
#define dart_pte_encode(pa) (((pa) >> DART_PTE_ADDR_SHIFT) & DART_PTE_ADDR_MASK)
#define dart_pte_decode(pte) (((pte) & DART_PTE_ADDR_MASK) << DART_PTE_ADDR_SHIFT)

/* Where table pages "live" (model-internal): slot s is at base + s pages.
 * Slot 0 is the L1 table; an L2 table takes any free slot. */
#define DART_TABLE_PA_BASE (1ull << 41)
#define DART_SLOTS (1u + DART_PTES)

/* Caps the model accepts at all (tp_dart_config); the defaults are lower. */
#define DART_MAX_MAPPINGS_LIMIT (1u << 24)

struct dart_map {          /* one live map() */
	uint64_t page;      /* first device page number (dva >> 14) */
	uint64_t iova_page; /* guest address of that page */
	uint64_t len;       /* as requested */
	uint32_t npages;
	uint32_t off;       /* the request's offset in its first page */
};

struct dart_extent {       /* free device pages [start, start + n) */
	uint64_t start, n;
};

struct dart_region {       /* guest memory that may be mapped */
	uint64_t iova, size;
	uint32_t prot;
};

struct dart {
	struct tp_iommu mmu;
	struct tp_dart_config cfg;
	uint64_t *tbl[DART_SLOTS];   /* table pages by slot */
	uint16_t used[DART_SLOTS];   /* valid leaves in each L2 table */
	uint16_t free_slot[DART_PTES]; /* one per L1 entry: never runs out */
	uint32_t nfree_slot;
	struct dart_map *map;        /* sorted by page */
	uint32_t nmap, map_cap;
	struct dart_extent *ext;     /* sorted by start, coalesced */
	uint32_t n_ext, ext_cap;
	struct dart_region *reg;     /* sorted by iova */
	uint32_t nreg, reg_cap;
	bool full_logged;            /* a "full" refusal was logged this episode */
};

static const struct tp_iommu_ops dart_ops;

static struct dart *dart_of(struct tp_iommu *mmu)
{
	return (struct dart *)mmu;
}

/* ---- page tables ---- */

/* The L2 table an L1 entry points to, by decoding its address; NULL when the
 * entry is invalid (or, never expected, points outside the table window). */
static uint64_t *dart_l2(const struct dart *d, uint64_t page)
{
	uint64_t l1e, pa, slot;

	if (page >= DART_VA_LIMIT >> DART_PAGE_SHIFT)
		return NULL;
	l1e = d->tbl[0][page >> DART_LEVEL_BITS];
	if (!(l1e & DART_PTE_VALID))
		return NULL;
	pa = dart_pte_decode(l1e);
	slot = (pa - DART_TABLE_PA_BASE) >> DART_PAGE_SHIFT;
	if (pa < DART_TABLE_PA_BASE || slot == 0 || slot >= DART_SLOTS)
		return NULL;
	return d->tbl[slot];
}

static uint64_t dart_slot_of(uint64_t l1e)
{
	return (dart_pte_decode(l1e) - DART_TABLE_PA_BASE) >> DART_PAGE_SHIFT;
}

/* The leaf PTE for a device page, 0 when nothing maps it. */
static uint64_t dart_walk(const struct dart *d, uint64_t page)
{
	const uint64_t *l2 = dart_l2(d, page);

	return l2 ? l2[page & (DART_PTES - 1)] : 0;
}

/* 0, -EFAULT or -EACCES for an access needing prot through pte. */
static int dart_pte_check(uint64_t pte, uint32_t prot)
{
	if (!(pte & DART_PTE_VALID))
		return -EFAULT;
	if (((prot & TP_VU_DMA_READ_OK) && (pte & DART_PTE_NO_READ)) ||
	    ((prot & TP_VU_DMA_WRITE_OK) && (pte & DART_PTE_NO_WRITE)))
		return -EACCES;
	return 0;
}

/* Makes sure L2 tables exist for every L1 entry in [first, last]. */
static int dart_tables_get(struct dart *d, uint64_t first, uint64_t last)
{
	for (uint64_t i = first; i <= last; i++) {
		uint64_t *t;
		uint16_t slot;

		if (d->tbl[0][i] & DART_PTE_VALID)
			continue;
		t = tp_calloc(DART_PTES, sizeof(*t));
		if (!t)
			return -ENOMEM;
		slot = d->free_slot[--d->nfree_slot];
		d->tbl[slot] = t;
		d->used[slot] = 0;
		d->tbl[0][i] = dart_pte_encode(DART_TABLE_PA_BASE + ((uint64_t)slot << DART_PAGE_SHIFT)) |
			       DART_PTE_VALID;
		d->mmu.st.tables++;
	}
	return 0;
}

/* Frees the L2 tables of [first, last] that map nothing. */
static void dart_tables_put(struct dart *d, uint64_t first, uint64_t last)
{
	for (uint64_t i = first; i <= last; i++) {
		uint64_t slot;

		if (!(d->tbl[0][i] & DART_PTE_VALID))
			continue;
		slot = dart_slot_of(d->tbl[0][i]);
		if (d->used[slot])
			continue;
		d->tbl[0][i] = 0;
		free(d->tbl[slot]);
		d->tbl[slot] = NULL;
		d->free_slot[d->nfree_slot++] = (uint16_t)slot;
		d->mmu.st.tables--;
	}
}

/* Writes the leaves of one mapping; the tables exist (dart_tables_get). */
static void dart_fill(struct dart *d, const struct dart_map *m, uint32_t prot)
{
	uint64_t bits = DART_PTE_VALID | DART_PTE_SUBPAGE_ALL;

	if (!(prot & TP_VU_DMA_READ_OK))
		bits |= DART_PTE_NO_READ;
	if (!(prot & TP_VU_DMA_WRITE_OK))
		bits |= DART_PTE_NO_WRITE;
	for (uint32_t i = 0; i < m->npages; i++) {
		uint64_t page = m->page + i;
		uint64_t l1e = d->tbl[0][page >> DART_LEVEL_BITS];
		uint64_t slot = dart_slot_of(l1e);

		d->tbl[slot][page & (DART_PTES - 1)] =
			bits | dart_pte_encode(m->iova_page + ((uint64_t)i << DART_PAGE_SHIFT));
		d->used[slot]++;
	}
}

/* Clears the leaves of one mapping and frees the tables left empty. */
static void dart_clear(struct dart *d, const struct dart_map *m)
{
	for (uint32_t i = 0; i < m->npages; i++) {
		uint64_t page = m->page + i;
		uint64_t slot = dart_slot_of(d->tbl[0][page >> DART_LEVEL_BITS]);

		d->tbl[slot][page & (DART_PTES - 1)] = 0;
		d->used[slot]--;
	}
	dart_tables_put(d, m->page >> DART_LEVEL_BITS,
			(m->page + m->npages - 1) >> DART_LEVEL_BITS);
}

/* Room for want elements of size elem in *arr (capacity *cap, doubling). */
static int dart_grow(void *arr, uint32_t *cap, uint32_t want, size_t elem)
{
	uint32_t n = *cap ? *cap : 16;
	void *p;

	if (want <= *cap)
		return 0;
	while (n < want)
		n *= 2;
	p = tp_realloc(*(void **)arr, (size_t)n * elem);
	if (!p)
		return -ENOMEM;
	*(void **)arr = p;
	*cap = n;
	return 0;
}

/* ---- the device-address allocator: sorted free extents, first fit ---- */

/* The first free run of npages starting at a multiple of align (pages). */
static int dart_ext_find(const struct dart *d, uint64_t npages, uint64_t align, uint32_t *idx,
			 uint64_t *start)
{
	for (uint32_t i = 0; i < d->n_ext; i++) {
		const struct dart_extent *e = &d->ext[i];
		uint64_t a = (e->start + align - 1) & ~(align - 1);

		if (a - e->start <= e->n && npages <= e->n - (a - e->start)) {
			*idx = i;
			*start = a;
			return 0;
		}
	}
	return -ENOMEM;
}

/* Takes [start, start + npages) out of extent i; room for a split was
 * reserved (dart_map grows the array first). */
static void dart_ext_take(struct dart *d, uint32_t i, uint64_t start, uint64_t npages)
{
	struct dart_extent *e = &d->ext[i];
	uint64_t head = start - e->start, tail = e->n - head - npages;

	if (!head && !tail) {
		memmove(e, e + 1, (d->n_ext - i - 1) * sizeof(*e));
		d->n_ext--;
	} else if (!head) {
		e->start += npages;
		e->n = tail;
	} else {
		e->n = head;
		if (tail) {
			memmove(e + 2, e + 1, (d->n_ext - i - 1) * sizeof(*e));
			e[1] = (struct dart_extent){ start + npages, tail };
			d->n_ext++;
		}
	}
}

/* Returns pages to the free list, merging with its neighbours. Never fails:
 * coalesced free extents number at most live mappings + 1, and map()
 * reserved that many. */
static void dart_ext_give(struct dart *d, uint64_t start, uint64_t npages)
{
	uint32_t lo = 0, hi = d->n_ext;
	bool prev, next;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (d->ext[mid].start < start)
			lo = mid + 1;
		else
			hi = mid;
	}
	prev = lo > 0 && d->ext[lo - 1].start + d->ext[lo - 1].n == start;
	next = lo < d->n_ext && start + npages == d->ext[lo].start;
	if (prev && next) {
		d->ext[lo - 1].n += npages + d->ext[lo].n;
		memmove(&d->ext[lo], &d->ext[lo + 1], (d->n_ext - lo - 1) * sizeof(*d->ext));
		d->n_ext--;
	} else if (prev) {
		d->ext[lo - 1].n += npages;
	} else if (next) {
		d->ext[lo].start = start;
		d->ext[lo].n += npages;
	} else {
		memmove(&d->ext[lo + 1], &d->ext[lo], (d->n_ext - lo) * sizeof(*d->ext));
		d->ext[lo] = (struct dart_extent){ start, npages };
		d->n_ext++;
	}
}

/* ---- records and regions ---- */

/* Index of the first record whose page is >= page. */
static uint32_t dart_map_lower(const struct dart *d, uint64_t page)
{
	uint32_t lo = 0, hi = d->nmap;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (d->map[mid].page < page)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Tears one mapping down: leaves, tables, device pages, counters. The
 * record itself is removed by the caller. */
static void dart_teardown(struct dart *d, const struct dart_map *m)
{
	dart_clear(d, m);
	dart_ext_give(d, m->page, m->npages);
	d->mmu.st.live--;
	d->mmu.st.pages -= m->npages;
	d->mmu.st.bytes -= (uint64_t)m->npages << DART_PAGE_SHIFT;
}

/* The observer (iommu.h) hears of a mapping going while its pages still
 * translate: before dart_teardown, never for a map it refused. */
static void dart_tell_unmapped(struct dart *d, const struct dart_map *m)
{
	if (d->mmu.obs)
		d->mmu.obs->unmapped(d->mmu.obs_ctx, m->page << DART_PAGE_SHIFT,
				     (uint64_t)m->npages << DART_PAGE_SHIFT);
}

/* A "full" refusal (caps, aperture) is logged once per episode: the layer
 * above retries under backpressure, and one line per retry would drown the
 * log. The episode ends when use falls under three quarters of both caps. */
static void dart_room_check(struct dart *d)
{
	if (d->full_logged && d->mmu.st.bytes <= d->cfg.max_bytes / 4 * 3 &&
	    d->mmu.st.live <= d->cfg.max_mappings / 4 * 3)
		d->full_logged = false;
}

/* Index of the first region that ends above iova. */
static uint32_t dart_region_lower(const struct dart *d, uint64_t iova)
{
	uint32_t lo = 0, hi = d->nreg;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (d->reg[mid].iova + d->reg[mid].size <= iova)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int dart_region_added(struct tp_iommu *mmu, const struct tp_dma_region *r)
{
	struct dart *d = dart_of(mmu);
	uint32_t lo = dart_region_lower(d, r->iova);

	if (!r->size || r->iova + r->size < r->iova ||
	    (lo < d->nreg && d->reg[lo].iova < r->iova + r->size)) {
		tp_warn(mmu->who, "iommu dart: region [%#llx +%#llx] is empty, wraps or "
			"overlaps a known one", (unsigned long long)r->iova,
			(unsigned long long)r->size);
		return r->size && r->iova + r->size >= r->iova ? -EEXIST : -EINVAL;
	}
	if (dart_grow(&d->reg, &d->reg_cap, d->nreg + 1, sizeof(*d->reg))) {
		tp_err(mmu->who, "iommu dart: out of memory");
		return -ENOMEM;
	}
	memmove(&d->reg[lo + 1], &d->reg[lo], (d->nreg - lo) * sizeof(*d->reg));
	d->reg[lo] = (struct dart_region){ r->iova, r->size, r->prot };
	d->nreg++;
	return 0;
}

/* Every mapping with a page in the region goes (its device addresses fault
 * from now on), then the region itself. O(live mappings): regions leave
 * rarely (guest memory layout changes, client gone). */
static void dart_region_removed(struct tp_iommu *mmu, const struct tp_dma_region *r)
{
	struct dart *d = dart_of(mmu);
	uint64_t end = r->iova + r->size;
	uint32_t keep = 0, gone = 0;

	for (uint32_t i = 0; i < d->nmap; i++) {
		const struct dart_map *m = &d->map[i];
		uint64_t mend = m->iova_page + ((uint64_t)m->npages << DART_PAGE_SHIFT);

		if (m->iova_page < end && r->iova < mend) {
			dart_tell_unmapped(d, m);
			dart_teardown(d, m);
			gone++;
		} else {
			d->map[keep++] = *m;
		}
	}
	d->nmap = keep;
	keep = dart_region_lower(d, r->iova);
	if (keep < d->nreg && d->reg[keep].iova == r->iova && d->reg[keep].size == r->size) {
		memmove(&d->reg[keep], &d->reg[keep + 1], (d->nreg - keep - 1) * sizeof(*d->reg));
		d->nreg--;
	}
	if (gone)
		tp_dbg(mmu->who, "iommu dart: region [%#llx +%#llx] removed with %u live mappings",
		       (unsigned long long)r->iova, (unsigned long long)r->size, gone);
	dart_room_check(d);
}

/* ---- map, unmap, translate ---- */

/*
 * Everything map() may refuse, before it touches state, in a fixed order
 * (docs/iommu.md; the tests rely on it): arguments, region, widening,
 * permission, output address, caps, aperture. Fills *m and *ei on success;
 * *why says what went wrong otherwise.
 */
static int dart_check(struct dart *d, uint64_t iova, uint64_t len, uint32_t prot, uint64_t align,
		      struct dart_map *m, uint32_t *ei, const char **why)
{
	const struct dart_region *r;
	uint64_t first, end, pad;
	uint32_t i;

	*why = "bad arguments";
	if (!len || !prot || (prot & ~(TP_VU_DMA_READ_OK | TP_VU_DMA_WRITE_OK)) ||
	    (align > 1 && !tp_is_pow2(align)))
		return -EINVAL;
	/* The device address keeps the request's offset in its 16 KiB page, so
	 * an alignment the offset itself does not have cannot be given. */
	*why = "its offset in the page defeats the alignment";
	if (align > 1 && (iova & DART_PAGE_MASK & (align - 1)))
		return -EINVAL;
	i = dart_region_lower(d, iova);
	r = i < d->nreg && d->reg[i].iova <= iova ? &d->reg[i] : NULL;
	*why = "not inside one guest memory region";
	if (!r || !tp_range_ok(iova - r->iova, len, r->size))
		return -EFAULT;
	/* The alignment rule: widen to whole pages, but never past the region
	 * that holds the request. */
	first = iova & ~DART_PAGE_MASK;
	end = iova + len; /* inside a region, and regions do not wrap */
	pad = (0 - end) & DART_PAGE_MASK;
	*why = "its 16 KiB pages would reach outside its guest memory region";
	if (first < r->iova || pad > r->iova + r->size - end)
		return -EINVAL;
	end += pad;
	*why = "the guest memory region does not allow that access";
	if ((r->prot & prot) != prot)
		return -EACCES;
	*why = "beyond the DART's 42-bit output addresses";
	if (end > DART_OAS_LIMIT)
		return -ERANGE;
	m->iova_page = first;
	m->len = len;
	m->off = (uint32_t)(iova & DART_PAGE_MASK);
	*why = "caps reached (bytes or mappings live)";
	if (d->mmu.st.live >= d->cfg.max_mappings ||
	    end - first > d->cfg.max_bytes - TP_MIN(d->mmu.st.bytes, d->cfg.max_bytes))
		return -ENOSPC;
	/* end - first <= max_bytes <= 64 GiB (tp_iommu_dart_create): fits 32 bits */
	m->npages = (uint32_t)((end - first) >> DART_PAGE_SHIFT);
	*why = "no room left in the device address aperture";
	if (dart_ext_find(d, m->npages, align > DART_PAGE ? align >> DART_PAGE_SHIFT : 1, ei,
			  &m->page))
		return -ENOMEM;
	return 0;
}

static int dart_map(struct tp_iommu *mmu, uint64_t iova, uint64_t len, uint32_t prot,
		    uint64_t align, uint64_t *dva)
{
	struct dart *d = dart_of(mmu);
	uint64_t l1_first, l1_last;
	struct dart_map m;
	const char *why;
	uint32_t ei, mi;
	int rc;

	rc = dart_check(d, iova, len, prot, align, &m, &ei, &why);
	if (rc) {
		/* A "full" refusal is logged once per episode (dart_room_check). */
		bool full = rc == -ENOSPC || rc == -ENOMEM;

		if (!full || !d->full_logged)
			tp_warn(mmu->who, "iommu map [%#llx +%#llx] prot %#x align %#llx refused: "
				"%s (%llu mappings, %llu bytes live)", (unsigned long long)iova,
				(unsigned long long)len, prot, (unsigned long long)align, why,
				(unsigned long long)mmu->st.live, (unsigned long long)mmu->st.bytes);
		d->full_logged |= full;
		goto refused;
	}
	/* Everything that can fail before anything visible changes. */
	l1_first = m.page >> DART_LEVEL_BITS;
	l1_last = (m.page + m.npages - 1) >> DART_LEVEL_BITS;
	rc = dart_grow(&d->map, &d->map_cap, d->nmap + 1, sizeof(*d->map));
	if (!rc)
		rc = dart_grow(&d->ext, &d->ext_cap, d->nmap + 2, sizeof(*d->ext));
	if (!rc && (rc = dart_tables_get(d, l1_first, l1_last)))
		dart_tables_put(d, l1_first, l1_last);
	if (rc) {
		tp_err(mmu->who, "iommu map [%#llx +%#llx]: out of memory",
		       (unsigned long long)iova, (unsigned long long)len);
		goto refused;
	}
	/* The observer last, before anything visible changes: it may refuse
	 * (and logs why), and then this map never happened. */
	if (mmu->obs && (rc = mmu->obs->mapped(mmu->obs_ctx, m.page << DART_PAGE_SHIFT, m.iova_page,
					       (uint64_t)m.npages << DART_PAGE_SHIFT, prot))) {
		dart_tables_put(d, l1_first, l1_last);
		goto refused;
	}
	dart_ext_take(d, ei, m.page, m.npages);
	dart_fill(d, &m, prot);
	mi = dart_map_lower(d, m.page);
	memmove(&d->map[mi + 1], &d->map[mi], (d->nmap - mi) * sizeof(*d->map));
	d->map[mi] = m;
	d->nmap++;
	mmu->st.maps++;
	mmu->st.live++;
	mmu->st.pages += m.npages;
	mmu->st.bytes += (uint64_t)m.npages << DART_PAGE_SHIFT;
	*dva = (m.page << DART_PAGE_SHIFT) + m.off;
	return 0;
refused:
	mmu->st.refused++;
	return rc;
}

static int dart_unmap(struct tp_iommu *mmu, uint64_t dva, uint64_t len)
{
	struct dart *d = dart_of(mmu);
	uint64_t page = dva >> DART_PAGE_SHIFT;
	uint32_t i = dart_map_lower(d, page);

	if (i == d->nmap || d->map[i].page != page || d->map[i].off != (dva & DART_PAGE_MASK) ||
	    d->map[i].len != len) {
		tp_warn(mmu->who, "iommu unmap [%#llx +%#llx]: does not match a mapping",
			(unsigned long long)dva, (unsigned long long)len);
		return -EINVAL;
	}
	dart_tell_unmapped(d, &d->map[i]);
	dart_teardown(d, &d->map[i]);
	memmove(&d->map[i], &d->map[i + 1], (d->nmap - i - 1) * sizeof(*d->map));
	d->nmap--;
	mmu->st.unmaps++;
	dart_room_check(d);
	return 0;
}

/*
 * The walk, page by page, as the DART would do it: the first page decides
 * the fault; the run goes on while the next page is valid, allows prot and
 * holds the next guest page, whichever mapping it belongs to.
 */
static int dart_translate(struct tp_iommu *mmu, uint64_t dva, uint64_t len, uint32_t prot,
			  uint64_t *iova, uint64_t *contig)
{
	struct dart *d = dart_of(mmu);
	uint64_t page = dva >> DART_PAGE_SHIFT;
	uint64_t pte = dart_walk(d, page), pa, run;
	int rc;

	if (!len)
		return -EINVAL;
	rc = dart_pte_check(pte, prot);
	if (rc)
		return rc;
	pa = dart_pte_decode(pte);
	*iova = pa + (dva & DART_PAGE_MASK);
	run = DART_PAGE - (dva & DART_PAGE_MASK);
	while (run < len) {
		pte = dart_walk(d, ++page);
		if (dart_pte_check(pte, prot) || dart_pte_decode(pte) != pa + DART_PAGE)
			break;
		pa += DART_PAGE;
		run += DART_PAGE;
	}
	*contig = TP_MIN(run, len);
	return 0;
}

int tp_dart_read_ptes(struct tp_iommu *mmu, uint64_t dva, uint64_t *l1e, uint64_t *l2e)
{
	struct dart *d = dart_of(mmu);
	uint64_t page = dva >> DART_PAGE_SHIFT;

	if (mmu->ops != &dart_ops)
		return -EINVAL;
	if (dva >= DART_VA_LIMIT)
		return -EFAULT;
	*l1e = d->tbl[0][page >> DART_LEVEL_BITS];
	*l2e = dart_walk(d, page);
	return dart_l2(d, page) ? 0 : -ENOENT;
}

/* ---- lifetime ---- */

static void dart_drop_all(struct dart *d)
{
	memset(d->used, 0, sizeof(d->used)); /* every table is empty now */
	dart_tables_put(d, 0, DART_PTES - 1);
	d->nfree_slot = 0;
	for (uint32_t s = DART_SLOTS - 1; s >= 1; s--)
		d->free_slot[d->nfree_slot++] = (uint16_t)s;
	d->nmap = 0;
	d->ext[0] = (struct dart_extent){ d->cfg.aperture_base >> DART_PAGE_SHIFT,
					  d->cfg.aperture_size >> DART_PAGE_SHIFT };
	d->n_ext = 1;
	d->mmu.st.live = d->mmu.st.bytes = d->mmu.st.pages = 0;
	d->mmu.st.tables = 1;
	d->full_logged = false;
}

/* Every mapping goes (the observer told of each); the region list stays:
 * guest memory leaves through region_removed (the core's tp_dma_clear
 * callback). */
static void dart_reset(struct tp_iommu *mmu)
{
	struct dart *d = dart_of(mmu);

	for (uint32_t i = 0; i < d->nmap; i++)
		dart_tell_unmapped(d, &d->map[i]);
	dart_drop_all(d);
}

static void dart_destroy(struct tp_iommu *mmu)
{
	struct dart *d = dart_of(mmu);

	dart_drop_all(d);
	free(d->tbl[0]);
	free(d->map);
	free(d->ext);
	free(d->reg);
	free(d);
}

static const struct tp_iommu_ops dart_ops = {
	.name = "dart",
	.region_added = dart_region_added,
	.region_removed = dart_region_removed,
	.map = dart_map,
	.unmap = dart_unmap,
	.translate = dart_translate,
	.reset = dart_reset,
	.destroy = dart_destroy,
};

int tp_iommu_dart_create(const char *who, const struct tp_dart_config *c, struct tp_iommu **out)
{
	struct tp_dart_config def;
	struct dart *d;

	tp_dart_config_default(&def);
	if (!c)
		c = &def;
	if (!c->aperture_size || ((c->aperture_base | c->aperture_size) & DART_PAGE_MASK) ||
	    c->aperture_base > DART_VA_LIMIT || c->aperture_size > DART_VA_LIMIT - c->aperture_base ||
	    !c->max_bytes || !c->max_mappings || c->max_mappings > DART_MAX_MAPPINGS_LIMIT) {
		tp_err(who, "iommu dart: bad config: aperture [%#llx +%#llx] (16 KiB pages, "
		       "below 64 GiB), caps %llu bytes, %llu mappings (1..%u)",
		       (unsigned long long)c->aperture_base, (unsigned long long)c->aperture_size,
		       (unsigned long long)c->max_bytes, (unsigned long long)c->max_mappings,
		       DART_MAX_MAPPINGS_LIMIT);
		return -EINVAL;
	}
	d = tp_calloc(1, sizeof(*d));
	if (!d || !(d->tbl[0] = tp_calloc(DART_PTES, sizeof(uint64_t))) ||
	    dart_grow(&d->ext, &d->ext_cap, 1, sizeof(*d->ext))) {
		if (d)
			free(d->tbl[0]);
		free(d);
		tp_err(who, "iommu dart: out of memory");
		return -ENOMEM;
	}
	d->mmu.ops = &dart_ops;
	d->mmu.who = who;
	d->cfg = *c;
	/* Nothing past the L1 table's 64 GiB can be mapped anyway; the clamp
	 * also keeps every mapping's page count within 32 bits. */
	d->cfg.max_bytes = TP_MIN(c->max_bytes, DART_VA_LIMIT);
	dart_drop_all(d);
	*out = &d->mmu;
	return 0;
}
