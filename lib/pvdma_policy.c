/* SPDX-License-Identifier: MIT */
/*
 * The pvdma window policy (pvdma_policy.h; docs/pvdma.md "Mapping policy").
 *
 * Records: every IOMMU mapping the policy made is a struct pv_map (a window
 * or a mapping of its own) in one array with a free list; live windows are
 * also in an open-addressing hash by window number, unreferenced ones in a
 * list in the order they became lazy (which is their expiry order: the delay
 * is the same for all). Handles are a second array with a free list; each
 * live one points at its mapping. Waiting MAPs are a FIFO of copies of the
 * request (the guest may scribble over the ring entry meanwhile).
 *
 * Everything that can fail for want of host memory is reserved before the
 * IOMMU is asked, so a mapping the IOMMU made is never lost.
 */
#include "pvdma_policy.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <thunderpass/log.h>
#include <thunderpass/protocol.h>

#include "util.h"

#define NONE UINT32_MAX
#define PV_RW (TP_VU_DMA_READ_OK | TP_VU_DMA_WRITE_OK)

enum pv_kind { PV_FREE, PV_WINDOW, PV_OWN, PV_DEAD };

struct pv_map {
	uint64_t gpa, len;   /* what the IOMMU's map() was asked */
	uint64_t dva;        /* what it answered */
	uint64_t bytes;      /* granule-widened: what counts against the cap */
	uint64_t key;        /* windows: the window number, gpa >> log2(W) */
	uint64_t expire;     /* lazy windows: when they go */
	uint32_t refs;
	uint32_t prev, next; /* lazy list; next also chains free records */
	uint8_t kind;
	bool lazy;
};

struct pv_handle {
	uint32_t gen;  /* bumped when the handle dies: stale handles stay stale */
	uint32_t map;  /* NONE: free */
	uint32_t next; /* free list */
};

struct pv_wait {
	uint32_t tag;
	struct tp_pv_request rq;
};

/* What a MAP needs: a reference on a window, or a mapping of its own. */
struct pv_plan {
	bool window;
	uint64_t gpa, len, bytes, key, align;
	uint32_t prot;
};

struct tp_pv {
	struct tp_pv_config cfg;
	const char *who;
	struct tp_iommu *mmu;
	const struct tp_dma_map *mem;
	tp_pv_done_fn done;
	void *done_ctx;
	unsigned wshift;
	struct pv_map *map;
	uint32_t map_cap, map_free;
	struct pv_handle *h;
	uint32_t h_cap, h_free;
	uint32_t *tab; /* windows by key: record index + 1; 0 empty */
	uint32_t tab_cap, tab_n;
	unsigned tab_bits;
	uint32_t lazy_head, lazy_tail;
	struct pv_wait *wait; /* ring of max_pending */
	uint32_t wait_head, wait_n;
	bool oom_logged, queue_full_logged;
	struct tp_pv_stats st;
};

void tp_pv_config_default(struct tp_pv_config *c)
{
	*c = (struct tp_pv_config){
		.window = TP_PV_WINDOW_DEFAULT,
		.granule = TP_PV_GRANULE_DEFAULT,
		.lazy_ns = TP_PV_LAZY_NS_DEFAULT,
		.lazy_max = TP_PV_LAZY_MAX_DEFAULT,
		.max_bytes = TP_PV_MAX_BYTES_DEFAULT,
		.max_mappings = TP_PV_MAX_MAPPINGS_DEFAULT,
		.max_handles = TP_PV_MAX_HANDLES_DEFAULT,
		.max_pending = 8192,
	};
}

static void log_oom(struct tp_pv *p)
{
	if (!p->oom_logged)
		tp_err(p->who, "pvdma: out of memory for mapping records; MAPs answer NO_SPACE");
	p->oom_logged = true;
}

/* ---- the window hash (linear probing, backward-shift deletion) ---- */

static uint32_t tab_home(const struct tp_pv *p, uint64_t key)
{
	return (uint32_t)((key * 0x9e3779b97f4a7c15ull) >> (64 - p->tab_bits));
}

static uint32_t tab_find(const struct tp_pv *p, uint64_t key)
{
	uint32_t mask = p->tab_cap - 1;

	for (uint32_t i = tab_home(p, key);; i = (i + 1) & mask) {
		uint32_t v = p->tab[i];

		if (!v)
			return NONE;
		if (p->map[v - 1].key == key)
			return v - 1;
	}
}

static void tab_put(struct tp_pv *p, uint32_t mi)
{
	uint32_t mask = p->tab_cap - 1, i = tab_home(p, p->map[mi].key);

	while (p->tab[i])
		i = (i + 1) & mask;
	p->tab[i] = mi + 1;
	p->tab_n++;
}

static void tab_del(struct tp_pv *p, uint32_t mi)
{
	uint32_t mask = p->tab_cap - 1, i = tab_home(p, p->map[mi].key), j;

	while (p->tab[i] != mi + 1)
		i = (i + 1) & mask;
	/* Move later members of the cluster back so no probe stops early. */
	for (j = (i + 1) & mask; p->tab[j]; j = (j + 1) & mask) {
		uint32_t k = tab_home(p, p->map[p->tab[j] - 1].key);
		bool stays = i <= j ? (k > i && k <= j) : (k > i || k <= j);

		if (!stays) {
			p->tab[i] = p->tab[j];
			i = j;
		}
	}
	p->tab[i] = 0;
	p->tab_n--;
}

/* Room for one more window, at most half full. */
static int tab_reserve(struct tp_pv *p)
{
	uint32_t *old = p->tab, old_cap = p->tab_cap;

	if ((p->tab_n + 1) * 2 <= p->tab_cap)
		return 0;
	p->tab = tp_calloc(old_cap * 2, sizeof(*p->tab));
	if (!p->tab) {
		p->tab = old;
		return -ENOMEM;
	}
	p->tab_cap = old_cap * 2;
	p->tab_bits++;
	p->tab_n = 0;
	for (uint32_t i = 0; i < old_cap; i++)
		if (old[i])
			tab_put(p, old[i] - 1);
	free(old);
	return 0;
}

/* ---- records, handles, the lazy list ---- */

static int map_reserve(struct tp_pv *p)
{
	uint32_t cap = p->map_cap ? p->map_cap * 2 : 64;
	struct pv_map *m;

	if (p->map_free != NONE)
		return 0;
	/* live < max_mappings here (room was checked), so this still grows */
	cap = TP_MIN(cap, p->cfg.max_mappings);
	m = tp_realloc(p->map, (size_t)cap * sizeof(*m));
	if (!m)
		return -ENOMEM;
	p->map = m;
	for (uint32_t i = cap; i-- > p->map_cap;) {
		m[i] = (struct pv_map){ .kind = PV_FREE, .next = p->map_free };
		p->map_free = i;
	}
	p->map_cap = cap;
	return 0;
}

static int handle_reserve(struct tp_pv *p)
{
	uint32_t cap = p->h_cap ? p->h_cap * 2 : 256;
	struct pv_handle *h;

	if (p->h_free != NONE)
		return 0;
	cap = TP_MIN(cap, p->cfg.max_handles);
	h = tp_realloc(p->h, (size_t)cap * sizeof(*h));
	if (!h)
		return -ENOMEM;
	p->h = h;
	for (uint32_t i = cap; i-- > p->h_cap;) {
		h[i] = (struct pv_handle){ .gen = 1, .map = NONE, .next = p->h_free };
		p->h_free = i;
	}
	p->h_cap = cap;
	return 0;
}

static uint64_t handle_new(struct tp_pv *p, uint32_t mi)
{
	uint32_t i = p->h_free;

	p->h_free = p->h[i].next;
	p->h[i].map = mi;
	p->st.handles++;
	return (uint64_t)p->h[i].gen << 32 | (i + 1);
}

static uint32_t handle_find(const struct tp_pv *p, uint64_t handle)
{
	uint32_t i = (uint32_t)handle - 1;

	if (!(uint32_t)handle || i >= p->h_cap || p->h[i].map == NONE ||
	    p->h[i].gen != (uint32_t)(handle >> 32))
		return NONE;
	return i;
}

static void handle_put(struct tp_pv *p, uint32_t i)
{
	if (!++p->h[i].gen)
		p->h[i].gen = 1;
	p->h[i].map = NONE;
	p->h[i].next = p->h_free;
	p->h_free = i;
	p->st.handles--;
}

static void lazy_unlink(struct tp_pv *p, uint32_t mi)
{
	struct pv_map *m = &p->map[mi];

	if (m->prev != NONE)
		p->map[m->prev].next = m->next;
	else
		p->lazy_head = m->next;
	if (m->next != NONE)
		p->map[m->next].prev = m->prev;
	else
		p->lazy_tail = m->prev;
	m->lazy = false;
	p->st.lazy--;
	p->st.lazy_bytes -= m->bytes;
}

static void lazy_push(struct tp_pv *p, uint32_t mi, uint64_t expire)
{
	struct pv_map *m = &p->map[mi];

	m->lazy = true;
	m->expire = expire;
	m->next = NONE;
	m->prev = p->lazy_tail;
	if (p->lazy_tail != NONE)
		p->map[p->lazy_tail].next = mi;
	else
		p->lazy_head = mi;
	p->lazy_tail = mi;
	p->st.lazy++;
	p->st.lazy_bytes += m->bytes;
}

/* Out of the books (hash, lazy list, stats); the record stays allocated. */
static void map_unlink(struct tp_pv *p, uint32_t mi)
{
	struct pv_map *m = &p->map[mi];

	if (m->kind == PV_WINDOW) {
		tab_del(p, mi);
		if (m->lazy)
			lazy_unlink(p, mi);
		p->st.windows--;
	} else {
		p->st.own--;
	}
	p->st.live--;
	p->st.bytes -= m->bytes;
}

static void map_free(struct tp_pv *p, uint32_t mi)
{
	p->map[mi] = (struct pv_map){ .kind = PV_FREE, .next = p->map_free };
	p->map_free = mi;
}

/* Unmapped from the IOMMU and forgotten. */
static void map_drop(struct tp_pv *p, uint32_t mi)
{
	struct pv_map *m = &p->map[mi];

	/* The model logs a mismatch itself; the record goes either way. */
	if (p->mmu->ops->unmap(p->mmu, m->dva, m->len) == 0)
		p->st.iommu_unmaps++;
	map_unlink(p, mi);
	map_free(p, mi);
}

static void drop_lazy_head(struct tp_pv *p)
{
	map_drop(p, p->lazy_head);
	p->st.lazy_dropped++;
}

/* ---- room ---- */

static bool room(const struct tp_pv *p, uint64_t bytes)
{
	return p->st.live < p->cfg.max_mappings && bytes <= p->cfg.max_bytes - p->st.bytes;
}

/* Lazy windows go, oldest first, until the caps leave room for bytes. */
static bool make_room(struct tp_pv *p, uint64_t bytes)
{
	while (!room(p, bytes) && p->lazy_head != NONE)
		drop_lazy_head(p);
	return room(p, bytes);
}

/* ---- planning a MAP ---- */

static uint64_t lowbit_cap(uint64_t v)
{
	return v ? TP_MIN(v & (0 - v), TP_PV_ALIGN_CAP) : TP_PV_ALIGN_CAP;
}

/*
 * Checks a request against guest memory and decides what it needs. own:
 * a mapping of its own even when it fits a window (its window number is
 * taken by another region's piece of that window).
 */
static uint32_t plan_map(const struct tp_pv *p, const struct tp_pv_request *rq, bool own,
			 struct pv_plan *pl)
{
	const uint64_t g = p->cfg.granule, w = p->cfg.window;
	const struct tp_dma_region *r;
	uint64_t end, rend, want, first, pad, k;
	uint32_t prot;

	if (!rq->dir || (rq->dir & ~3u))
		return TP_PV_BAD_OP;
	prot = ((rq->dir & 1) ? TP_VU_DMA_READ_OK : 0) | ((rq->dir & 2) ? TP_VU_DMA_WRITE_OK : 0);
	if (!rq->len || rq->gpa + rq->len < rq->gpa)
		return TP_PV_BAD_RANGE;
	r = tp_dma_find(p->mem, rq->gpa);
	if (!r || !tp_range_ok(rq->gpa - r->iova, rq->len, r->size) || (r->prot & prot) != prot)
		return TP_PV_BAD_RANGE;
	if (rq->align >= 64 || (rq->gpa & ((1ull << rq->align) - 1)))
		return TP_PV_NOT_ALIGNED;
	want = 1ull << rq->align;
	end = rq->gpa + rq->len;
	rend = r->iova + r->size; /* regions never wrap (tp_dma_add) */
	k = rq->gpa >> p->wshift;
	if (!own && k == (end - 1) >> p->wshift) {
		/* The window, clipped to the region's whole granules. */
		uint64_t wbase = k << p->wshift, rup = (r->iova + g - 1) / g * g, rdown = rend / g * g;
		uint64_t ws = TP_MAX(wbase, rup);

		if (r->iova <= UINT64_MAX - g && rdown > ws && rq->gpa >= ws &&
		    end - 1 <= TP_MIN(wbase + (w - 1), rdown - 1)) {
			uint64_t galign = lowbit_cap(ws);

			/* A window clipped at ws is only aligned like ws: a gpa
			 * aligned further needs a mapping of its own to keep the
			 * promise (dva aligned like the gpa up to 2 MiB). */
			if (TP_MAX(want, lowbit_cap(rq->gpa)) <= galign) {
				pl->window = true;
				pl->gpa = ws;
				pl->len = TP_MIN(wbase + (w - 1), rdown - 1) - ws + 1;
				pl->bytes = pl->len;
				pl->key = k;
				pl->align = galign > g ? galign : 0;
				pl->prot = r->prot & PV_RW;
				return TP_PV_OK;
			}
		}
	}
	/* Its own mapping: whole granules, all inside the region (the IOMMU
	 * widens to pages and refuses to leave the region). */
	first = rq->gpa & ~(g - 1);
	pad = (0 - end) & (g - 1);
	if (first < r->iova || pad > rend - end)
		return TP_PV_BAD_RANGE;
	pl->window = false;
	pl->gpa = rq->gpa;
	pl->len = rq->len;
	pl->bytes = end - first + pad;
	pl->key = 0;
	want = TP_MAX(lowbit_cap(rq->gpa), want);
	pl->align = want > g ? want : 0;
	pl->prot = prot;
	return TP_PV_OK;
}

/* ---- mapping ---- */

static int iommu_map(struct tp_pv *p, const struct pv_plan *pl, uint64_t *dva)
{
	int rc = p->mmu->ops->map(p->mmu, pl->gpa, pl->len, pl->prot, pl->align, dva);

	if (!rc) {
		p->st.iommu_maps++;
		p->st.iommu_bytes += pl->bytes;
	}
	return rc;
}

/* A new IOMMU mapping and a handle on it; TP_PV_PENDING when no room. */
static uint32_t map_new(struct tp_pv *p, const struct pv_plan *pl, struct tp_pv_result *res)
{
	struct pv_map *m;
	uint64_t dva;
	uint32_t mi;
	int rc;

	if (!make_room(p, pl->bytes) || p->st.handles >= p->cfg.max_handles)
		return TP_PV_PENDING;
	if (map_reserve(p) || handle_reserve(p) || (pl->window && tab_reserve(p))) {
		log_oom(p);
		return TP_PV_NO_SPACE;
	}
	rc = iommu_map(p, pl, &dva);
	if ((rc == -ENOSPC || rc == -ENOMEM) && p->lazy_head != NONE) {
		/* The model's view of room (its own caps, its aperture's free
		 * runs at this alignment) is the last word: every lazy window
		 * goes, then once more. */
		while (p->lazy_head != NONE)
			drop_lazy_head(p);
		rc = iommu_map(p, pl, &dva);
	}
	if (rc == -ENOSPC)
		return TP_PV_PENDING;
	if (rc == -ENOMEM)
		return TP_PV_NO_SPACE;
	if (rc)
		return TP_PV_BAD_RANGE;
	mi = p->map_free;
	m = &p->map[mi];
	p->map_free = m->next;
	*m = (struct pv_map){
		.gpa = pl->gpa, .len = pl->len, .dva = dva, .bytes = pl->bytes, .key = pl->key,
		.refs = 1, .prev = NONE, .next = NONE,
		.kind = pl->window ? PV_WINDOW : PV_OWN,
	};
	if (pl->window) {
		tab_put(p, mi);
		p->st.windows++;
	} else {
		p->st.own++;
	}
	p->st.live++;
	p->st.bytes += pl->bytes;
	res->handle = handle_new(p, mi);
	res->dva = dva;
	return TP_PV_OK;
}

/*
 * Everything but the queue: a status, or TP_PV_PENDING when the MAP must
 * wait. queued: it is the head of the queue (else it may not overtake it).
 */
static uint32_t try_map(struct tp_pv *p, const struct tp_pv_request *rq, bool queued,
			struct tp_pv_result *res)
{
	struct pv_plan pl;
	uint32_t st = plan_map(p, rq, false, &pl), mi;

	if (st)
		return st;
	if (pl.window && (mi = tab_find(p, pl.key)) != NONE) {
		struct pv_map *m = &p->map[mi];

		if (m->gpa == pl.gpa && m->len == pl.len) {
			/* A live window: a reference and a handle, no new room. */
			if (p->st.handles >= p->cfg.max_handles)
				return TP_PV_PENDING;
			if (handle_reserve(p)) {
				log_oom(p);
				return TP_PV_NO_SPACE;
			}
			if (m->lazy) {
				lazy_unlink(p, mi);
				p->st.lazy_hits++;
			}
			m->refs++;
			res->handle = handle_new(p, mi);
			res->dva = m->dva + (rq->gpa - m->gpa);
			return TP_PV_OK;
		}
		/* The number belongs to another region's piece of the window. */
		st = plan_map(p, rq, true, &pl);
		if (st)
			return st;
	}
	if (pl.bytes > p->cfg.max_bytes)
		return TP_PV_CAP;
	/* First come, first served: a MAP that needs room waits behind the
	 * ones already waiting, so a large one cannot starve. */
	if (!queued && p->wait_n)
		return TP_PV_PENDING;
	st = map_new(p, &pl, res);
	if (st == TP_PV_OK)
		res->dva += rq->gpa - pl.gpa; /* 0 for a mapping of its own */
	return st;
}

static void count_map(struct tp_pv *p, uint32_t status)
{
	if (status == TP_PV_OK)
		p->st.maps++;
	else
		p->st.map_errors++;
}

/* Waiting MAPs, oldest first, until one still finds no room. */
static void retry_pending(struct tp_pv *p)
{
	while (p->wait_n) {
		struct pv_wait *w = &p->wait[p->wait_head];
		struct tp_pv_result res = { 0 };
		uint32_t tag = w->tag;

		res.status = try_map(p, &w->rq, true, &res);
		if (res.status == TP_PV_PENDING)
			return;
		p->wait_head = (p->wait_head + 1) % p->cfg.max_pending;
		p->wait_n--;
		p->st.pending--;
		count_map(p, res.status);
		if (res.status != TP_PV_OK)
			res.handle = res.dva = 0;
		if (p->done)
			p->done(p->done_ctx, tag, &res);
	}
}

uint32_t tp_pv_map(struct tp_pv *p, const struct tp_pv_request *rq, uint32_t tag,
		   struct tp_pv_result *res)
{
	memset(res, 0, sizeof(*res));
	res->status = try_map(p, rq, false, res);
	if (res->status == TP_PV_PENDING) {
		if (p->wait_n < p->cfg.max_pending) {
			struct pv_wait *w =
				&p->wait[(p->wait_head + p->wait_n) % p->cfg.max_pending];

			w->tag = tag;
			w->rq = *rq;
			p->wait_n++;
			p->st.pending++;
			p->st.delayed++;
			return TP_PV_PENDING;
		}
		/* The caller bounds what can wait (the ring's entries); past
		 * that, answer rather than lose the request. */
		if (!p->queue_full_logged)
			tp_warn(p->who, "pvdma: %u MAPs already wait for room; answering NO_SPACE",
				p->wait_n);
		p->queue_full_logged = true;
		res->status = TP_PV_NO_SPACE;
	}
	count_map(p, res->status);
	if (res->status != TP_PV_OK)
		res->handle = res->dva = 0;
	return res->status;
}

/* One reference goes; the last one of a window makes it lazy. */
static void release_ref(struct tp_pv *p, uint32_t mi, uint64_t now)
{
	struct pv_map *m = &p->map[mi];

	if (--m->refs)
		return;
	if (m->kind == PV_OWN || !p->cfg.lazy_ns || m->bytes > p->cfg.lazy_max) {
		map_drop(p, mi);
		return;
	}
	lazy_push(p, mi, now + p->cfg.lazy_ns);
	while (p->st.lazy_bytes > p->cfg.lazy_max)
		drop_lazy_head(p);
}

uint32_t tp_pv_unmap(struct tp_pv *p, uint64_t handle, uint64_t now)
{
	uint32_t hi = handle_find(p, handle), mi;

	if (hi == NONE) {
		p->st.unmap_errors++;
		return TP_PV_BAD_HANDLE;
	}
	mi = p->h[hi].map;
	handle_put(p, hi);
	release_ref(p, mi, now);
	p->st.unmaps++;
	retry_pending(p);
	return TP_PV_OK;
}

uint64_t tp_pv_next_expiry(const struct tp_pv *p)
{
	return p->lazy_head != NONE ? p->map[p->lazy_head].expire : 0;
}

uint64_t tp_pv_expire(struct tp_pv *p, uint64_t now)
{
	while (p->lazy_head != NONE && p->map[p->lazy_head].expire <= now) {
		map_drop(p, p->lazy_head);
		p->st.lazy_expired++;
	}
	/* Room may have come from elsewhere (a removed region, the model's
	 * own caps): the waiting get another try. */
	retry_pending(p);
	return tp_pv_next_expiry(p);
}

static void drop_queue(struct tp_pv *p, uint32_t status)
{
	while (p->wait_n) {
		struct tp_pv_result res = { .status = status };
		uint32_t tag = p->wait[p->wait_head].tag;

		p->wait_head = (p->wait_head + 1) % p->cfg.max_pending;
		p->wait_n--;
		p->st.pending--;
		p->st.map_errors++;
		if (p->done)
			p->done(p->done_ctx, tag, &res);
	}
	p->wait_head = 0;
}

void tp_pv_teardown(struct tp_pv *p, uint32_t status)
{
	for (uint32_t i = 0; i < p->map_cap; i++)
		if (p->map[i].kind == PV_WINDOW || p->map[i].kind == PV_OWN)
			map_drop(p, i);
	for (uint32_t i = 0; i < p->h_cap; i++)
		if (p->h[i].map != NONE)
			handle_put(p, i);
	drop_queue(p, status);
}

void tp_pv_region_removed(struct tp_pv *p, const struct tp_dma_region *r)
{
	const uint64_t g = p->cfg.granule;
	uint64_t end = r->iova + r->size;
	uint32_t gone = 0;

	/* The pages the IOMMU mapped (granule-widened) decide, as in the
	 * model's own region_removed. */
	for (uint32_t i = 0; i < p->map_cap; i++) {
		struct pv_map *m = &p->map[i];
		uint64_t first = m->gpa & ~(g - 1), last = m->gpa + m->len - 1;

		if ((m->kind != PV_WINDOW && m->kind != PV_OWN) || first >= end || last < r->iova)
			continue;
		map_unlink(p, i);
		m->kind = PV_DEAD;
		gone++;
	}
	if (!gone)
		return;
	for (uint32_t i = 0; i < p->h_cap; i++)
		if (p->h[i].map != NONE && p->map[p->h[i].map].kind == PV_DEAD)
			handle_put(p, i);
	for (uint32_t i = 0; i < p->map_cap; i++)
		if (p->map[i].kind == PV_DEAD)
			map_free(p, i);
	p->st.region_kills += gone;
	tp_info(p->who, "pvdma: guest memory [%#llx +%#llx] went away: %u mappings into it "
		"forgotten, their handles dead", (unsigned long long)r->iova,
		(unsigned long long)r->size, gone);
}

void tp_pv_get_stats(const struct tp_pv *p, struct tp_pv_stats *st)
{
	*st = p->st;
}

const struct tp_pv_config *tp_pv_get_config(const struct tp_pv *p)
{
	return &p->cfg;
}

int tp_pv_create(const struct tp_pv_config *c, struct tp_iommu *mmu,
		 const struct tp_dma_map *mem, const char *who, tp_pv_done_fn done, void *ctx,
		 struct tp_pv **out)
{
	struct tp_pv *p;

	if (!tp_is_pow2(c->granule) || !tp_is_pow2(c->window) || c->window < c->granule ||
	    c->window < (16u << 10) || c->window > c->max_bytes || !c->max_mappings ||
	    !c->max_handles || !c->max_pending || c->max_bytes < c->granule) {
		tp_err(who, "pvdma: bad policy: window %llu (a power of two from 16 KiB and the "
		       "granule %llu up to the byte cap %llu), caps of mappings %u, handles %u, "
		       "waiting MAPs %u (at least 1)", (unsigned long long)c->window,
		       (unsigned long long)c->granule, (unsigned long long)c->max_bytes,
		       c->max_mappings, c->max_handles, c->max_pending);
		return -EINVAL;
	}
	p = tp_calloc(1, sizeof(*p));
	if (p) {
		p->tab_bits = 8;
		p->tab_cap = 1u << p->tab_bits;
		p->tab = tp_calloc(p->tab_cap, sizeof(*p->tab));
		p->wait = tp_calloc(c->max_pending, sizeof(*p->wait));
	}
	if (!p || !p->tab || !p->wait) {
		if (p) {
			free(p->tab);
			free(p->wait);
		}
		free(p);
		tp_err(who, "pvdma: out of memory");
		return -ENOMEM;
	}
	p->cfg = *c;
	p->who = who;
	p->mmu = mmu;
	p->mem = mem;
	p->done = done;
	p->done_ctx = ctx;
	while ((1ull << p->wshift) < c->window)
		p->wshift++;
	p->map_free = p->h_free = NONE;
	p->lazy_head = p->lazy_tail = NONE;
	*out = p;
	return 0;
}

void tp_pv_destroy(struct tp_pv *p)
{
	if (!p)
		return;
	p->done = NULL;
	tp_pv_teardown(p, TP_PV_DISABLED);
	free(p->map);
	free(p->h);
	free(p->tab);
	free(p->wait);
	free(p);
}
