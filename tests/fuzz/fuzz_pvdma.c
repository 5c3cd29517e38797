/* SPDX-License-Identifier: MIT */
/*
 * fuzz_pvdma: the pvdma mapping policy (lib/pvdma_policy.c) on the dart and
 * the identity IOMMU models and a guest memory map without memory behind it
 * (lib/dma.c), checked step by step against a reference kept here from the
 * rules of pvdma_policy.h and docs/pvdma.md ("Mapping policy"):
 *
 *  - a MAP answers BAD_OP, BAD_RANGE, NOT_ALIGNED or CAP exactly when the
 *    request and guest memory say so; PENDING only when something waits
 *    already or a cap (the policy's or the model's) leaves no room;
 *    NO_SPACE only with the queue full or an aperture that can not fit it;
 *  - every OK answer's device range translates, through the model's own
 *    translate(), to exactly the request's guest range with its direction,
 *    aligned like the gpa up to 2 MiB and to what `align` asked;
 *  - handles: never issued twice (so never someone else's mapping), live
 *    ones unmap OK, stale or made-up ones are BAD_HANDLE;
 *  - waiting MAPs complete through the callback in FIFO order, exactly
 *    once (teardown: DISABLED; destroy: no callback at all);
 *  - the policy's stats never pass a cap and agree with the reference
 *    (handles, waiting MAPs) and with the model (dart: its counters and the
 *    live mappings an observer records, which never overlap in device space
 *    and always point into live guest memory);
 *  - guest memory that goes (the device's order: the model's
 *    region_removed, then tp_pv_region_removed) takes its handles along and
 *    leaves no device address into it;
 *  - after teardown and destroy: no mapping, handle or page table left (and
 *    ASan's leak check, the open-fd count).
 *
 * Input: three setup bytes (model and caps, see rig_open), then operations
 * (see LLVMFuzzerTestOneInput): MAP, bursts of MAPs, UNMAP of live, stale
 * and made-up handles, EXPIRE with time moving on, guest memory added and
 * removed (one region, a span, all), teardown.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <thunderpass/protocol.h>

#include "dma.h"
#include "fuzz_common.h"
#include "iommu.h"
#include "pvdma_policy.h"
#include "util.h"

#define KiB (1ull << 10)
#define MiB (1ull << 20)
#define MAX_OPS 160
#define MAX_MAPS 512    /* MAP calls per input, bursts included */
#define MAX_WAIT 64      /* max_pending of the roomy configs */
#define MAX_REGIONS 16
#define SLOT (32 * MiB)  /* region start slots: neighbours, not overlaps */
#define DPAGE (16 * KiB) /* the dart's page */
#define NOW0 1000000000ull

struct ref_handle {
	uint64_t handle, gpa, len, dva;
	uint32_t dir;
};

struct ref_wait {
	uint32_t tag;
	struct tp_pv_request rq;
};

struct ref_done {
	uint32_t tag;
	struct tp_pv_request rq;
	struct tp_pv_result res;
};

/* A live IOMMU mapping as the dart reports it (whole pages). */
struct obs_map {
	uint64_t dva, iova, len;
	uint32_t prot;
};

struct rig {
	bool dart, tiny_aperture;
	struct tp_pv_config cfg;
	struct tp_dart_config dcfg;
	struct tp_iommu *mmu;
	struct tp_dma_map mem;
	struct tp_pv *p;
	uint64_t now;
	uint32_t next_tag;
	bool in_teardown, in_destroy;
	struct ref_handle live[MAX_MAPS];
	unsigned nlive;
	struct ref_handle dead[MAX_MAPS]; /* stale: for UNMAPs that must fail */
	unsigned ndead;
	uint64_t seen[MAX_MAPS];          /* every handle ever issued */
	unsigned nseen;
	struct ref_wait wait[MAX_WAIT];  /* FIFO, oldest first */
	unsigned nwait;
	struct ref_done done[MAX_WAIT];  /* callbacks of the current call */
	unsigned ndone;
	struct obs_map obs[MAX_MAPS];     /* sorted by dva */
	unsigned nobs;
};

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fz_init_logging();
	return 0;
}

static uint32_t prot_of(uint32_t dir)
{
	return ((dir & 1) ? TP_VU_DMA_READ_OK : 0) | ((dir & 2) ? TP_VU_DMA_WRITE_OK : 0);
}

static uint64_t align_of(uint64_t gpa)
{
	return gpa ? TP_MIN(gpa & (0 - gpa), TP_PV_ALIGN_CAP) : TP_PV_ALIGN_CAP;
}

/* ---- the observer: the dart's live mappings, whoever made or ended them ---- */

static int obs_mapped(void *ctx, uint64_t dva, uint64_t iova, uint64_t len, uint32_t prot)
{
	struct rig *g = ctx;
	unsigned i = g->nobs;

	FZ_CHECK(g->nobs < MAX_MAPS, "more IOMMU mappings than MAPs");
	while (i && g->obs[i - 1].dva > dva) {
		g->obs[i] = g->obs[i - 1];
		i--;
	}
	g->obs[i] = (struct obs_map){ dva, iova, len, prot };
	g->nobs++;
	return 0;
}

static void obs_unmapped(void *ctx, uint64_t dva, uint64_t len)
{
	struct rig *g = ctx;

	for (unsigned i = 0; i < g->nobs; i++) {
		if (g->obs[i].dva == dva && g->obs[i].len == len) {
			memmove(&g->obs[i], &g->obs[i + 1], (g->nobs - i - 1) * sizeof(g->obs[0]));
			g->nobs--;
			return;
		}
	}
	fz_die("the dart unmapped [%#llx +%#llx], which it never reported mapped",
	       (unsigned long long)dva, (unsigned long long)len);
}

static const struct tp_iommu_observer_ops obs_ops = { obs_mapped, obs_unmapped };

/* The observed mapping holding dva, or NULL. */
static const struct obs_map *obs_find(const struct rig *g, uint64_t dva)
{
	for (unsigned i = 0; i < g->nobs; i++)
		if (dva >= g->obs[i].dva && dva - g->obs[i].dva < g->obs[i].len)
			return &g->obs[i];
	return NULL;
}

/* ---- the reference ---- */

/*
 * The statuses the spec fixes from the request and guest memory alone, in
 * the policy's order (dir, range, region, alignment, whole granules, the
 * byte cap); 0 when the answer depends on the policy's state. *need: the
 * request's bytes in whole granules (what a mapping of its own costs).
 */
static uint32_t ref_status(const struct rig *g, const struct tp_pv_request *rq, uint64_t *need)
{
	const uint64_t gr = g->cfg.granule;
	const struct tp_dma_region *r;
	uint64_t end = rq->gpa + rq->len, first, pad;
	uint32_t prot = prot_of(rq->dir);

	*need = 0;
	if (!rq->dir || rq->dir > 3)
		return TP_PV_BAD_OP;
	if (!rq->len || end < rq->gpa)
		return TP_PV_BAD_RANGE;
	r = tp_dma_find(&g->mem, rq->gpa);
	if (!r || rq->len > r->iova + r->size - rq->gpa || (r->prot & prot) != prot)
		return TP_PV_BAD_RANGE;
	if (rq->align >= 64 || (rq->gpa & ((1ull << rq->align) - 1)))
		return TP_PV_NOT_ALIGNED;
	/* The partial granules at a region's ends can not be mapped. */
	first = rq->gpa & ~(gr - 1);
	pad = (0 - end) & (gr - 1);
	if (first < r->iova || pad > r->iova + r->size - end)
		return TP_PV_BAD_RANGE;
	*need = end + pad - first;
	/* Fits a window (W <= max_bytes) or costs *need on its own. */
	return *need > g->cfg.max_bytes ? TP_PV_CAP : 0;
}

static void check_translates(const struct rig *g, uint64_t dva, uint64_t gpa, uint64_t len,
			     uint32_t prot, const char *what)
{
	uint64_t iova = 0, contig = 0;
	int rc = g->mmu->ops->translate(g->mmu, dva, len, prot, &iova, &contig);

	FZ_CHECK(rc == 0 && iova == gpa && contig == len,
		 "%s: dva [%#llx +%#llx] prot %u translates to %#llx (%llu contiguous, rc %d), "
		 "not gpa %#llx", what, (unsigned long long)dva, (unsigned long long)len, prot,
		 (unsigned long long)iova, (unsigned long long)contig, rc,
		 (unsigned long long)gpa);
}

/* An OK answer (at once or through the callback): checked, then live. */
static void ref_add(struct rig *g, const struct tp_pv_request *rq, const struct tp_pv_result *res,
		    const char *what)
{
	uint64_t al = align_of(rq->gpa);
	uint32_t prot = prot_of(rq->dir);
	const struct tp_dma_region *r = tp_dma_find(&g->mem, rq->gpa);

	FZ_CHECK(res->handle && (uint32_t)res->handle, "%s: handle %#llx", what,
		 (unsigned long long)res->handle);
	for (unsigned i = 0; i < g->nseen; i++)
		FZ_CHECK(g->seen[i] != res->handle, "%s: handle %#llx issued a second time", what,
			 (unsigned long long)res->handle);
	FZ_CHECK(res->dva % al == rq->gpa % al,
		 "%s [%#llx +%#llx]: dva %#llx not aligned like the gpa (mod %#llx)", what,
		 (unsigned long long)rq->gpa, (unsigned long long)rq->len,
		 (unsigned long long)res->dva, (unsigned long long)al);
	FZ_CHECK(!(res->dva & ((1ull << rq->align) - 1)), "%s [%#llx]: dva %#llx, asked align %u",
		 what, (unsigned long long)rq->gpa, (unsigned long long)res->dva, rq->align);
	FZ_CHECK(r && rq->len <= r->iova + r->size - rq->gpa, "%s: OK outside guest memory", what);
	check_translates(g, res->dva, rq->gpa, rq->len, prot, what);
	if (g->dart) {
		const struct obs_map *m = obs_find(g, res->dva);

		FZ_CHECK(m && rq->len <= m->len - (res->dva - m->dva) &&
				 (m->prot & prot) == prot && (r->prot & m->prot) == m->prot,
			 "%s: dva [%#llx +%#llx] prot %u not inside one IOMMU mapping the region "
			 "(prot %u) allows", what, (unsigned long long)res->dva,
			 (unsigned long long)rq->len, prot, r->prot);
	}
	g->seen[g->nseen++] = res->handle;
	g->live[g->nlive++] =
		(struct ref_handle){ res->handle, rq->gpa, rq->len, res->dva, rq->dir };
}

static void ref_kill(struct rig *g, unsigned i)
{
	g->dead[g->ndead++] = g->live[i];
	g->live[i] = g->live[--g->nlive];
}

static void on_done(void *ctx, uint32_t tag, const struct tp_pv_result *res)
{
	struct rig *g = ctx;

	FZ_CHECK(!g->in_destroy, "a completion (tag %u) during destroy", tag);
	FZ_CHECK(g->nwait && g->wait[0].tag == tag,
		 "completion of tag %u, but the oldest waiting MAP is %u (%u waiting)", tag,
		 g->nwait ? g->wait[0].tag : 0, g->nwait);
	FZ_CHECK(res->status < TP_PV_STATUS_COUNT, "completion of tag %u with status %#x", tag,
		 res->status);
	g->done[g->ndone++] = (struct ref_done){ tag, g->wait[0].rq, *res };
	memmove(&g->wait[0], &g->wait[1], --g->nwait * sizeof(g->wait[0]));
}

/* The callbacks of the last call, checked now that the policy is quiet. */
static void ref_completions(struct rig *g)
{
	for (unsigned i = 0; i < g->ndone; i++) {
		const struct ref_done *d = &g->done[i];
		uint64_t need;
		uint32_t want = ref_status(g, &d->rq, &need);

		if (d->res.status != TP_PV_OK) {
			FZ_CHECK(!d->res.handle && !d->res.dva, "failed completion with a handle");
			if (g->in_teardown)
				FZ_CHECK(d->res.status == TP_PV_DISABLED,
					 "teardown completed tag %u with %u", d->tag, d->res.status);
			else if (!want)
				FZ_CHECK(d->res.status == TP_PV_NO_SPACE &&
						 (g->tiny_aperture || d->rq.align >= 29),
					 "tag %u completed with %u", d->tag, d->res.status);
			else
				FZ_CHECK(d->res.status == want, "tag %u completed with %u, want %u",
					 d->tag, d->res.status, want);
			continue;
		}
		FZ_CHECK(!g->in_teardown && !want, "tag %u completed OK, want %u", d->tag, want);
		ref_add(g, &d->rq, &d->res, "completion");
	}
	g->ndone = 0;
}

/* ---- invariants after every step ---- */

static void check_state(struct rig *g)
{
	const struct tp_pv_config *c = &g->cfg;
	const struct tp_iommu_stats *ms = &g->mmu->st;
	struct tp_pv_stats st;
	uint64_t next = tp_pv_next_expiry(g->p);

	tp_pv_get_stats(g->p, &st);
	FZ_CHECK(st.bytes <= c->max_bytes && st.live <= c->max_mappings &&
			 st.handles <= c->max_handles && st.pending <= c->max_pending &&
			 st.lazy_bytes <= c->lazy_max,
		 "past a cap: %llu bytes, %llu mappings, %llu handles, %llu waiting, %llu lazy bytes",
		 (unsigned long long)st.bytes, (unsigned long long)st.live,
		 (unsigned long long)st.handles, (unsigned long long)st.pending,
		 (unsigned long long)st.lazy_bytes);
	FZ_CHECK(st.handles == g->nlive && st.pending == g->nwait,
		 "%llu handles, %llu waiting; reference %u, %u", (unsigned long long)st.handles,
		 (unsigned long long)st.pending, g->nlive, g->nwait);
	FZ_CHECK(st.windows + st.own == st.live && st.lazy <= st.windows &&
			 st.iommu_maps - st.iommu_unmaps - st.region_kills == st.live,
		 "stats disagree: %llu live = %llu windows + %llu own, %llu lazy; %llu maps - "
		 "%llu unmaps - %llu killed", (unsigned long long)st.live,
		 (unsigned long long)st.windows, (unsigned long long)st.own,
		 (unsigned long long)st.lazy, (unsigned long long)st.iommu_maps,
		 (unsigned long long)st.iommu_unmaps, (unsigned long long)st.region_kills);
	FZ_CHECK(!st.lazy == !next, "%llu lazy windows, next expiry %llu",
		 (unsigned long long)st.lazy, (unsigned long long)next);
	if (g->dart) {
		FZ_CHECK(ms->live == st.live && g->nobs == st.live && ms->bytes == st.bytes &&
				 ms->maps == st.iommu_maps && ms->unmaps == st.iommu_unmaps,
			 "dart: %llu live (%u observed), %llu bytes, %llu maps, %llu unmaps; policy "
			 "%llu, %llu, %llu, %llu", (unsigned long long)ms->live, g->nobs,
			 (unsigned long long)ms->bytes, (unsigned long long)ms->maps,
			 (unsigned long long)ms->unmaps, (unsigned long long)st.live,
			 (unsigned long long)st.bytes, (unsigned long long)st.iommu_maps,
			 (unsigned long long)st.iommu_unmaps);
	}
	for (unsigned i = 0; i < g->nobs; i++) {
		const struct obs_map *m = &g->obs[i];
		const struct tp_dma_region *r = tp_dma_find(&g->mem, m->iova);

		FZ_CHECK(!i || g->obs[i - 1].dva + g->obs[i - 1].len <= m->dva,
			 "IOMMU mappings overlap in device space at %#llx",
			 (unsigned long long)m->dva);
		FZ_CHECK(m->dva >= g->dcfg.aperture_base &&
				 m->dva + m->len <= g->dcfg.aperture_base + g->dcfg.aperture_size,
			 "mapping at %#llx outside the aperture", (unsigned long long)m->dva);
		FZ_CHECK(r && m->len <= r->iova + r->size - m->iova,
			 "mapping [%#llx +%#llx] -> %#llx outside live guest memory",
			 (unsigned long long)m->dva, (unsigned long long)m->len,
			 (unsigned long long)m->iova);
		check_translates(g, m->dva, m->iova, DPAGE, m->prot, "mapping's first page");
		check_translates(g, m->dva + m->len - DPAGE, m->iova + m->len - DPAGE, DPAGE,
				 m->prot, "mapping's last page");
	}
	for (unsigned i = 0; i < g->nlive; i++) {
		const struct ref_handle *h = &g->live[i];
		uint32_t prot = prot_of(h->dir);
		const struct tp_dma_region *r = tp_dma_find(&g->mem, h->gpa);

		FZ_CHECK(r && h->len <= r->iova + r->size - h->gpa,
			 "live handle %#llx into memory that went", (unsigned long long)h->handle);
		check_translates(g, h->dva, h->gpa, 1, prot, "live handle's first byte");
		check_translates(g, h->dva + h->len - 1, h->gpa + h->len - 1, 1, prot,
				 "live handle's last byte");
	}
}

/* Nothing mapped, referenced or waiting, in the policy and in the model. */
static void check_empty(struct rig *g, const char *when)
{
	struct tp_pv_stats st;

	tp_pv_get_stats(g->p, &st);
	FZ_CHECK(!st.live && !st.bytes && !st.handles && !st.pending && !st.lazy &&
			 !st.lazy_bytes && !g->nlive && !g->nwait,
		 "after %s: %llu mappings, %llu handles, %llu waiting, %llu lazy", when,
		 (unsigned long long)st.live, (unsigned long long)st.handles,
		 (unsigned long long)st.pending, (unsigned long long)st.lazy);
	if (g->dart)
		FZ_CHECK(!g->nobs && !g->mmu->st.live && !g->mmu->st.pages &&
				 g->mmu->st.tables == 1,
			 "after %s: dart has %llu mappings (%u observed), %llu pages, %llu tables",
			 when, (unsigned long long)g->mmu->st.live, g->nobs,
			 (unsigned long long)g->mmu->st.pages,
			 (unsigned long long)g->mmu->st.tables);
}

/* ---- guest memory ---- */

/* As the device's dma_unmap_cb: the model tears down, then the policy
 * forgets; the region is still in the map. */
static void region_gone(void *ctx, const struct tp_dma_region *r)
{
	struct rig *g = ctx;
	uint64_t end = r->iova + r->size;

	g->mmu->ops->region_removed(g->mmu, r);
	tp_pv_region_removed(g->p, r);
	for (unsigned i = 0; i < g->nlive;) {
		const struct ref_handle *h = &g->live[i];
		uint64_t iova, contig;

		if (h->gpa < r->iova || h->gpa >= end) {
			i++;
			continue;
		}
		if (g->dart && !g->mmu->ops->translate(g->mmu, h->dva, 1, 0, &iova, &contig))
			FZ_CHECK(iova < r->iova || iova >= end,
				 "dva %#llx still translates into removed memory [%#llx +%#llx]",
				 (unsigned long long)h->dva, (unsigned long long)r->iova,
				 (unsigned long long)r->size);
		ref_kill(g, i);
	}
	for (unsigned i = 0; i < g->nobs; i++)
		FZ_CHECK(g->obs[i].iova >= end || g->obs[i].iova + g->obs[i].len <= r->iova,
			 "mapping [%#llx +%#llx] into removed memory left",
			 (unsigned long long)g->obs[i].dva, (unsigned long long)g->obs[i].len);
}

static void op_region_add(struct rig *g, struct fz_reader *r)
{
	uint8_t k = fz_u8(r), s = fz_u8(r);
	uint64_t iova = (k & 0x0f) * SLOT + ((k & 0x10) ? 1ull << 36 : 0), size;
	uint32_t prot = (k >> 6) == 1 ? TP_VU_DMA_READ_OK :
			(k >> 6) == 2 ? TP_VU_DMA_WRITE_OK : TP_VU_DMA_READ_OK | TP_VU_DMA_WRITE_OK;
	struct tp_dma_region *reg;

	if (k & 0x20) /* a start that is not granule- (or window-) aligned */
		iova += (uint64_t)fz_u8(r) * 4 * KiB;
	switch (s >> 6) {
	case 0: size = ((s & 0x3full) + 1) * 4 * KiB; break;
	case 1: size = ((s & 0x3full) + 1) * 64 * KiB; break;
	case 2: size = ((s & 0x3full) + 1) * 256 * KiB; break;
	default: size = 2 * MiB + ((s & 0x3full) << 12) * (fz_u8(r) & 3); break;
	}
	if (g->mem.n >= MAX_REGIONS ||
	    tp_dma_add(&g->mem, iova, size, -1, 0, prot, &reg)) /* overlaps: refused */
		return;
	/* The dart's region list mirrors the map: it never refuses here. */
	FZ_CHECK(!g->mmu->ops->region_added(g->mmu, reg), "region_added [%#llx +%#llx] refused",
		 (unsigned long long)iova, (unsigned long long)size);
}

static void op_region_remove(struct rig *g, struct fz_reader *r)
{
	uint8_t k = fz_u8(r);
	uint64_t removed, lo, hi;
	unsigned a, b;

	if (!g->mem.n)
		return;
	if ((k & 3) == 3) {
		/* DMA_UNMAP all (or the client gone): as the device's dma_clear. */
		tp_dma_clear(&g->mem, region_gone, g);
		g->mmu->ops->reset(g->mmu);
		return;
	}
	a = fz_u8(r) % g->mem.n;
	b = (k & 3) == 2 ? a + fz_u8(r) % (g->mem.n - a) : a; /* a span of regions */
	lo = g->mem.r[a].iova;
	hi = g->mem.r[b].iova + g->mem.r[b].size;
	FZ_CHECK(!tp_dma_remove(&g->mem, lo, hi - lo, region_gone, g, &removed),
		 "DMA_UNMAP of whole regions [%#llx, %#llx) refused", (unsigned long long)lo,
		 (unsigned long long)hi);
}

/* ---- requests ---- */

/* A MAP, mostly into guest memory, near windows' and regions' edges. */
static void gen_request(const struct rig *g, struct fz_reader *r, struct tp_pv_request *rq)
{
	uint8_t k = fz_u8(r), l = fz_u8(r), d = fz_u8(r);
	const uint64_t w = g->cfg.window;
	uint64_t base = 0, size = 1ull << 40, gpa;

	if (g->mem.n && !(k & 0x80)) {
		const struct tp_dma_region *reg = &g->mem.r[fz_u8(r) % g->mem.n];

		base = reg->iova;
		size = reg->size;
	}
	switch ((k >> 4) & 7) {
	case 0: gpa = base + fz_u16(r) * 16ull % size; break;
	case 1: /* around a window boundary */
		gpa = ((base + w - 1) & ~(w - 1)) + (fz_u8(r) & 7) * w;
		gpa += (k & 8) ? (fz_u16(r) & 0x3fff) : 0 - (uint64_t)(fz_u16(r) & 0x3fff);
		break;
	case 2: gpa = base + size - (fz_u16(r) & 0x7fff); break; /* near the region's end */
	case 3: gpa = ((base + TP_PV_ALIGN_CAP - 1) & ~(TP_PV_ALIGN_CAP - 1)) +
		      (fz_u8(r) & 3) * TP_PV_ALIGN_CAP; break;
	case 4: gpa = base + ((fz_u32(r) % size) & ~(DPAGE - 1)); break;
	case 5: gpa = base + fz_u32(r) % size; break;
	case 6: gpa = base + (fz_u8(r) & 0xf) * 4 * KiB; break;
	default: gpa = fz_u64(r); break;
	}
	switch (l >> 5) {
	case 0: case 1: rq->len = (fz_u16(r) & 0xfff) + 1ull; break;
	case 2: rq->len = ((l & 0x1full) + 1) * 4 * KiB; break;
	case 3: rq->len = w - (gpa & (w - 1)) + (l & 1); break; /* to the window's end, or past */
	case 4: rq->len = ((l & 0x1full) + 1) * w / 2; break;
	case 5: rq->len = fz_u32(r) % (size + 1); break;
	case 6: rq->len = base + size - gpa; break; /* to the region's end */
	default: rq->len = fz_u64(r); break;
	}
	rq->gpa = gpa;
	rq->dir = (d & 0xc0) == 0xc0 ? fz_u8(r) : ((d & 3) ? d & 3u : 3u);
	switch ((d >> 2) & 7) {
	case 0: rq->align = (d >> 5) & 1 ? 14 + ((d >> 6) & 7) : 0; break;
	case 1: rq->align = fz_u8(r) % 24; break;
	case 2: rq->align = fz_u8(r); break;
	default: rq->align = 0; break;
	}
}

static void map_one(struct rig *g, const struct tp_pv_request *req)
{
	struct tp_pv_request rq = *req;
	struct tp_pv_result res;
	struct tp_pv_stats st;
	uint64_t need, worst;
	uint32_t want = ref_status(g, &rq, &need), s, tag = g->next_tag++;
	unsigned nwait0 = g->nwait;
	uint64_t maps0;

	tp_pv_get_stats(g->p, &st);
	maps0 = st.iommu_maps;
	s = tp_pv_map(g->p, &rq, tag, &res);
	FZ_CHECK(s == res.status, "tp_pv_map returned %u, res.status %u", s, res.status);
	FZ_CHECK(g->ndone == 0, "a MAP completed another (%u) at once", g->done[0].tag);
	if (want) {
		FZ_CHECK(s == want, "MAP [%#llx +%#llx] dir %u align %u: %u, want %u",
			 (unsigned long long)rq.gpa, (unsigned long long)rq.len, rq.dir, rq.align, s,
			 want);
		return;
	}
	tp_pv_get_stats(g->p, &st);
	/* What the MAP may cost: a window or a mapping of its own. */
	worst = TP_MAX(need, g->cfg.window);
	switch (s) {
	case TP_PV_OK:
		/* First come, first served: only a live window's reference
		 * (no new mapping, no room) may pass a waiting MAP. */
		FZ_CHECK(!nwait0 || st.iommu_maps == maps0,
			 "MAP [%#llx +%#llx] mapped while %u older MAPs wait",
			 (unsigned long long)rq.gpa, (unsigned long long)rq.len, nwait0);
		ref_add(g, &rq, &res, "MAP");
		break;
	case TP_PV_PENDING:
		FZ_CHECK(nwait0 < g->cfg.max_pending, "PENDING with the queue full");
		FZ_CHECK(nwait0 || st.handles >= g->cfg.max_handles ||
				 st.live >= g->cfg.max_mappings ||
				 worst > g->cfg.max_bytes - st.bytes ||
				 (g->dart && (g->mmu->st.live >= g->dcfg.max_mappings ||
					      worst > g->dcfg.max_bytes - g->mmu->st.bytes)),
			 "MAP [%#llx +%#llx] PENDING with room: %llu handles, %llu mappings, %llu "
			 "bytes", (unsigned long long)rq.gpa, (unsigned long long)rq.len,
			 (unsigned long long)st.handles, (unsigned long long)st.live,
			 (unsigned long long)st.bytes);
		g->wait[g->nwait++] = (struct ref_wait){ tag, rq };
		break;
	case TP_PV_NO_SPACE:
		FZ_CHECK(nwait0 == g->cfg.max_pending || g->tiny_aperture || rq.align >= 29,
			 "MAP [%#llx +%#llx] align %u: NO_SPACE with %u waiting",
			 (unsigned long long)rq.gpa, (unsigned long long)rq.len, rq.align, nwait0);
		break;
	default:
		fz_die("MAP [%#llx +%#llx] dir %u align %u: %u", (unsigned long long)rq.gpa,
		       (unsigned long long)rq.len, rq.dir, rq.align, s);
	}
	FZ_CHECK(s == TP_PV_OK || (!res.handle && !res.dva), "failed MAP with a handle");
}

static void op_map(struct rig *g, struct fz_reader *r)
{
	struct tp_pv_request rq;

	gen_request(g, r, &rq);
	if (g->next_tag < MAX_MAPS)
		map_one(g, &rq);
}

/* Many small MAPs at a stride through one region: enough live windows to
 * grow the policy's tables, enough handles to reach the caps. */
static void op_burst(struct rig *g, struct fz_reader *r)
{
	uint8_t k = fz_u8(r), n = fz_u8(r), l = fz_u8(r);
	uint64_t base, size, stride;

	if (!g->mem.n)
		return;
	base = g->mem.r[n % g->mem.n].iova;
	size = g->mem.r[n % g->mem.n].size;
	stride = (k & 0x80) ? g->cfg.window : g->cfg.granule << ((k >> 4) & 3);
	base += (k & 0x0f) * 0x100ull;
	for (uint64_t i = 0; i <= (n & 0x3f) + 64ull * (k >> 6 & 1); i++) {
		struct tp_pv_request rq = { base + i * stride, l + 1ull, (k & 0x20) ? 1u : 3u, 0 };

		if (g->next_tag >= MAX_MAPS || i * stride >= size)
			return;
		map_one(g, &rq);
	}
}

static void op_unmap(struct rig *g, struct fz_reader *r)
{
	uint8_t k = fz_u8(r);
	uint64_t h;
	uint32_t s, want = TP_PV_BAD_HANDLE;
	unsigned hit = 0;

	if ((k & 3) == 0 && g->nlive)
		h = g->live[fz_u8(r) % g->nlive].handle;
	else if ((k & 3) == 1 && g->ndead)
		h = g->dead[fz_u8(r) % g->ndead].handle;
	else if ((k & 3) == 2 && g->nseen) /* a neighbour of a real one */
		h = g->seen[fz_u8(r) % g->nseen] + ((k & 4) ? 1ull << 32 : 0) +
		    ((k & 8) ? (uint64_t)0 - 1 : 1);
	else
		h = (k & 4) ? fz_u64(r) : fz_u8(r);
	for (unsigned i = 0; i < g->nlive; i++)
		if (g->live[i].handle == h) {
			want = TP_PV_OK;
			hit = i;
		}
	if (k & 0x10)
		g->now += fz_u16(r) * 1000ull;
	s = tp_pv_unmap(g->p, h, g->now);
	FZ_CHECK(s == want, "UNMAP %#llx: %u, want %u", (unsigned long long)h, s, want);
	if (s == TP_PV_OK)
		ref_kill(g, hit);
	ref_completions(g);
}

static void op_expire(struct rig *g, struct fz_reader *r)
{
	uint8_t k = fz_u8(r);
	uint64_t next;

	switch (k & 3) {
	case 0: g->now += fz_u8(r) * 1000ull; break;
	case 1: /* at or just before a lazy window's expiry */
		g->now += g->cfg.lazy_ns ? g->cfg.lazy_ns - (k >> 7) : 0;
		break;
	case 2: g->now += fz_u16(r) * 1000ull; break;
	default: g->now += fz_u32(r); break;
	}
	next = tp_pv_expire(g->p, g->now);
	FZ_CHECK(next == tp_pv_next_expiry(g->p) && (!next || next > g->now),
		 "expire at %llu: next %llu (%llu)", (unsigned long long)g->now,
		 (unsigned long long)next, (unsigned long long)tp_pv_next_expiry(g->p));
	ref_completions(g);
}

static void teardown(struct rig *g)
{
	unsigned nwait0 = g->nwait;

	g->in_teardown = true;
	tp_pv_teardown(g->p, TP_PV_DISABLED);
	FZ_CHECK(g->ndone == nwait0, "teardown completed %u of %u waiting MAPs", g->ndone, nwait0);
	ref_completions(g);
	g->in_teardown = false;
	while (g->nlive)
		ref_kill(g, 0);
	check_empty(g, "teardown");
}

/* ---- lifetime ---- */

/*
 * s0: bits 0-1 the model (0, 3: dart; 1: dart with a 1 MiB aperture and its
 * own caps below the policy's; 2: identity), bit 2: tiny caps from s1, s2.
 */
static struct rig *rig_open(struct fz_reader *r)
{
	static const uint64_t windows[4] = { 16 * KiB, 32 * KiB, 64 * KiB, 256 * KiB };
	static const uint64_t lazy_ns[4] = { 0, 1000, 1000000, TP_PV_LAZY_NS_DEFAULT };
	uint8_t s0 = fz_u8(r), s1 = fz_u8(r), s2 = fz_u8(r);
	struct rig *g = calloc(1, sizeof(*g));
	struct tp_pv_config *c;
	int rc;

	FZ_CHECK(g, "calloc");
	c = &g->cfg;
	g->dart = (s0 & 3) != 2;
	g->tiny_aperture = (s0 & 3) == 1;
	tp_dart_config_default(&g->dcfg);
	tp_pv_config_default(c);
	c->max_pending = MAX_WAIT;
	if (s1 & 0x40)
		c->window = 64 * KiB; /* more windows per region */
	if (g->tiny_aperture) {
		/* The model's aperture and caps run out before the policy's. */
		g->dcfg.aperture_size = 64 * DPAGE;
		g->dcfg.max_bytes = 48 * DPAGE;
		g->dcfg.max_mappings = 6;
		c->max_bytes = 64 * DPAGE;
	}
	if (s0 & 4) {
		c->window = windows[s1 & 3];
		c->max_bytes = (s1 & 4) ? MiB : 512 * KiB;
		c->max_mappings = 1 + ((s1 >> 3) & 3);
		c->max_handles = 2 + 2 * ((s1 >> 5) & 3);
		c->max_pending = (s1 & 0x80) ? 4 : 1;
		c->lazy_ns = lazy_ns[s2 & 3];
		c->lazy_max = ((s2 >> 2) & 3) * 2 * c->window;
	}
	if (!g->dart && (s2 & 0x10))
		c->granule = 4 * KiB; /* identity has no page of its own */
	if (g->dart) {
		FZ_CHECK(!tp_iommu_dart_create("fuzz", &g->dcfg, &g->mmu), "dart");
		g->mmu->obs = &obs_ops;
		g->mmu->obs_ctx = g;
	} else {
		FZ_CHECK(!tp_iommu_identity_create("fuzz", &g->mmu), "identity");
	}
	tp_dma_init(&g->mem, "fuzz", 64);
	rc = tp_pv_create(c, g->mmu, &g->mem, "fuzz", on_done, g, &g->p);
	FZ_CHECK(!rc, "tp_pv_create: %d", rc);
	g->now = NOW0;
	return g;
}

static void rig_close(struct rig *g, bool torn_down_first)
{
	if (torn_down_first)
		teardown(g);
	/* Destroy drops what waits without a callback (on_done checks). */
	g->in_destroy = true;
	tp_pv_destroy(g->p);
	g->nwait = 0;
	while (g->nlive)
		ref_kill(g, 0);
	if (g->dart)
		FZ_CHECK(!g->nobs && !g->mmu->st.live && !g->mmu->st.pages &&
				 g->mmu->st.tables == 1,
			 "after destroy: dart has %llu mappings, %llu pages, %llu tables",
			 (unsigned long long)g->mmu->st.live, (unsigned long long)g->mmu->st.pages,
			 (unsigned long long)g->mmu->st.tables);
	g->mmu->ops->destroy(g->mmu);
	tp_dma_destroy(&g->mem);
	free(g);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_reader r = { data, size };
	struct rig *g;
	int fds0;

	if (size < 3)
		return 0;
	fds0 = fz_count_fds();
	g = rig_open(&r);
	for (unsigned i = 0; i < MAX_OPS && r.n; i++) {
		switch (fz_u8(&r) % 11) {
		case 0: case 1: case 2: op_map(g, &r); break;
		case 10: op_burst(g, &r); break;
		case 3: case 4: op_unmap(g, &r); break;
		case 5: op_expire(g, &r); break;
		case 6: case 7: op_region_add(g, &r); break;
		case 8: op_region_remove(g, &r); break;
		default: teardown(g); break;
		}
		check_state(g);
	}
	rig_close(g, size & 1);
	FZ_CHECK(fz_count_fds() == fds0, "%d fds open after the input, %d before", fz_count_fds(),
		 fds0);
	return 0;
}
