/* SPDX-License-Identifier: MIT */
/*
 * The pvdma companion's BAR0 registers and its ring (docs/pvdma.md).
 *
 * The doorbell processes every submitted entry before the write returns.
 * Everything the guest wrote is hostile: the producer index may jump or go
 * back (at most RING_ENTRIES may be outstanding, counted from CONSUMER; a
 * doorbell breaking that is ignored), each entry is copied out of shared
 * memory once and only the copy is checked and used, results are written
 * with the status last. The server's own state (which slots wait for room,
 * where the consumer is) never lives in guest-writable memory.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include <thunderpass/log.h>

#include "pvdma_int.h"
#include "util.h"

#define RING_MASK (PVDMA_RING_ENTRIES - 1)
/* A MAP waiting for room the policy cannot see coming (the IOMMU model's
 * own caps, guest memory leaving) is retried this often. */
#define RETRY_NS 50000000ull

_Static_assert((PVDMA_RING_ENTRIES & RING_MASK) == 0, "ring entries: a power of two");

static struct pvdma_entry *slot_of(struct pvdma *pv, uint32_t index)
{
	return (struct pvdma_entry *)(pv->ring + PVDMA_RING_HEADER +
				      (size_t)(index & RING_MASK) * PVDMA_ENTRY_SIZE);
}

/* One read of each word: the guest may change the entry while we look. */
static void entry_load(struct pvdma *pv, uint32_t index, struct pvdma_entry *e)
{
	const uint64_t *src = (const uint64_t *)slot_of(pv, index);
	uint64_t w[PVDMA_ENTRY_SIZE / 8];

	for (unsigned i = 0; i < PVDMA_ENTRY_SIZE / 8; i++)
		w[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
	memcpy(e, w, sizeof(*e));
}

/* Results first, the status last: a guest that sees the status sees them. */
static void entry_answer(struct pvdma *pv, uint32_t index, const struct tp_pv_result *res)
{
	struct pvdma_entry *e = slot_of(pv, index);

	__atomic_store_n(&e->handle, res->status == TP_PV_OK ? res->handle : 0, __ATOMIC_RELAXED);
	__atomic_store_n(&e->dva, res->status == TP_PV_OK ? res->dva : 0, __ATOMIC_RELAXED);
	__atomic_store_n(&e->status, res->status, __ATOMIC_RELEASE);
}

static const char *status_name(uint32_t st)
{
	static const char *const names[] = {
		"OK", "BAD_OP", "BAD_RANGE", "NOT_ALIGNED", "CAP", "BAD_HANDLE", "DISABLED",
		"NO_SPACE",
	};

	return st < TP_ARRAY_SIZE(names) ? names[st] : "?";
}

/* An answered entry: counters, the first error of each kind logged. */
static void complete(struct pvdma *pv, uint32_t index, uint32_t op,
		     const struct tp_pv_result *res)
{
	entry_answer(pv, index, res);
	if (op != PVDMA_OP_NOP)
		pv->requests++;
	if (res->status == TP_PV_OK)
		return;
	pv->errors++;
	if (res->status < 32 && !(pv->warned & (1u << res->status))) {
		pv->warned |= 1u << res->status;
		tp_warn(pv->be.name, "ring entry %u (op %u): %s; further %s answers are not logged "
			"until the ring is enabled again", index, op, status_name(res->status),
			status_name(res->status));
	}
}

/* CONSUMER moves past every answered entry at its head. */
static void advance(struct pvdma *pv)
{
	while (pv->cons != pv->seen && !pv->waiting[pv->cons & RING_MASK])
		pv->cons++;
}

void pvdma_done(void *ctx, uint32_t tag, const struct tp_pv_result *res)
{
	struct pvdma *pv = ctx;

	pv->waiting[tag & RING_MASK] = 0;
	complete(pv, tag, PVDMA_OP_MAP, res);
	pv->irq_due = true;
}

static void process(struct pvdma *pv, uint32_t index, uint64_t now)
{
	struct tp_pv_result res = { 0 };
	struct pvdma_entry e;

	entry_load(pv, index, &e);
	switch (e.op) {
	case PVDMA_OP_MAP: {
		struct tp_pv_request rq = { e.gpa, e.len, e.dir, e.align };

		if (tp_pv_map(pv->pol, &rq, index, &res) == TP_PV_PENDING) {
			pv->waiting[index & RING_MASK] = 1;
			return;
		}
		break;
	}
	case PVDMA_OP_UNMAP:
		res.status = tp_pv_unmap(pv->pol, e.handle, now);
		break;
	case PVDMA_OP_NOP:
		res.status = TP_PV_OK;
		break;
	default:
		res.status = TP_PV_BAD_OP;
		break;
	}
	complete(pv, index, e.op, &res);
}

/* When the timer must run next: a lazy expiry, or a retry for waiters. */
static void update_due(struct pvdma *pv, uint64_t now)
{
	struct tp_pv_stats st;
	uint64_t due = tp_pv_next_expiry(pv->pol);

	tp_pv_get_stats(pv->pol, &st);
	if (st.pending && (!due || due > now + RETRY_NS))
		due = now + RETRY_NS;
	__atomic_store_n(&pv->next_due, due, __ATOMIC_RELAXED);
}

static void raise_if(struct pvdma *pv, bool irq)
{
	if (irq)
		tp_backend_irq(&pv->be, 0);
}

static void doorbell(struct pvdma *pv, uint32_t producer)
{
	uint64_t now = tp_now_ns();
	uint32_t n = 0;
	bool irq;

	pthread_rwlock_wrlock(&pv->dev->dma_lock);
	if (!(pv->control & PVDMA_CONTROL_ENABLE)) {
		pthread_rwlock_unlock(&pv->dev->dma_lock);
		return; /* the ring is ignored while disabled */
	}
	/* At most RING_ENTRIES outstanding, and never behind what was read. */
	if (producer - pv->cons > PVDMA_RING_ENTRIES ||
	    producer - pv->seen > producer - pv->cons) {
		if (!pv->bad_doorbells++)
			tp_warn(pv->be.name, "doorbell %u ignored: the consumer is at %u and %u "
				"entries were read; at most %u may be outstanding (further bad "
				"doorbells are counted, not logged)", producer, pv->cons, pv->seen,
				PVDMA_RING_ENTRIES);
		pthread_rwlock_unlock(&pv->dev->dma_lock);
		return;
	}
	/* Expired lazy windows go first: their room may serve this batch. */
	tp_pv_expire(pv->pol, now);
	while (pv->seen != producer) {
		process(pv, pv->seen++, now);
		n++;
	}
	advance(pv);
	irq = pv->irq_due || ((pv->control & PVDMA_CONTROL_IRQ_ALL) && n);
	pv->irq_due = false;
	update_due(pv, now);
	pthread_rwlock_unlock(&pv->dev->dma_lock);
	raise_if(pv, irq);
}

/* The counters restart (enable, reset); the live values need no base. */
static void stats_base(struct pvdma *pv)
{
	tp_pv_get_stats(pv->pol, &pv->base);
	pv->requests = pv->errors = 0;
	pv->warned = 0;
}

/* Everything this companion mapped goes; waiting MAPs answer DISABLED. */
static void teardown(struct pvdma *pv)
{
	tp_pv_teardown(pv->pol, TP_PV_DISABLED);
	memset(pv->waiting, 0, sizeof(pv->waiting));
	pv->cons = pv->seen = 0;
	update_due(pv, tp_now_ns());
}

static void control(struct pvdma *pv, uint32_t v)
{
	bool irq;

	v &= PVDMA_CONTROL_ENABLE | PVDMA_CONTROL_IRQ_ALL;
	pthread_rwlock_wrlock(&pv->dev->dma_lock);
	if ((pv->control & PVDMA_CONTROL_ENABLE) && !(v & PVDMA_CONTROL_ENABLE)) {
		struct tp_pv_stats st;

		tp_pv_get_stats(pv->pol, &st);
		tp_info(pv->be.name, "ring disabled: %" PRIu64 " mappings (%" PRIu64 " bytes) and "
			"%" PRIu64 " waiting MAPs torn down", st.live, st.bytes, st.pending);
		teardown(pv);
	} else if (!(pv->control & PVDMA_CONTROL_ENABLE) && (v & PVDMA_CONTROL_ENABLE)) {
		/* A fresh ring: the guest's producer starts at 0. */
		pv->cons = pv->seen = 0;
		memset(pv->waiting, 0, sizeof(pv->waiting));
		stats_base(pv);
		tp_info(pv->be.name, "ring enabled%s",
			(v & PVDMA_CONTROL_IRQ_ALL) ? ", an interrupt per batch" : "");
	}
	pv->control = v;
	irq = pv->irq_due;
	pv->irq_due = false;
	pthread_rwlock_unlock(&pv->dev->dma_lock);
	raise_if(pv, irq);
}

void pvdma_ring_reset(struct pvdma *pv)
{
	pthread_rwlock_wrlock(&pv->dev->dma_lock);
	teardown(pv);
	pv->control = 0;
	pv->irq_due = false; /* nobody listens after a reset */
	pv->bad_doorbells = 0;
	stats_base(pv);
	pthread_rwlock_unlock(&pv->dev->dma_lock);
	memset(pv->ring, 0, PVDMA_BAR2_SIZE);
}

void pvdma_region_gone(void *ctx, const struct tp_dma_region *r)
{
	struct pvdma *pv = ctx;

	tp_pv_region_removed(pv->pol, r);
	/* Room freed: waiting MAPs get their retry from the timer, soon. */
	__atomic_store_n(&pv->next_due, 1, __ATOMIC_RELAXED);
}

uint64_t tp_pvdma_timer(void *backend, uint64_t now)
{
	struct pvdma *pv = pvdma_of(backend);
	uint64_t due = __atomic_load_n(&pv->next_due, __ATOMIC_RELAXED);
	bool irq;

	if (!due || now < due)
		return due;
	pthread_rwlock_wrlock(&pv->dev->dma_lock);
	tp_pv_expire(pv->pol, now);
	advance(pv);
	irq = pv->irq_due;
	pv->irq_due = false;
	update_due(pv, now);
	due = __atomic_load_n(&pv->next_due, __ATOMIC_RELAXED);
	pthread_rwlock_unlock(&pv->dev->dma_lock);
	raise_if(pv, irq);
	return due;
}

void tp_pvdma_stats(struct tp_backend *be, struct tp_pv_stats *st)
{
	struct pvdma *pv = pvdma_of(be);

	pthread_rwlock_rdlock(&pv->dev->dma_lock);
	tp_pv_get_stats(pv->pol, st);
	pthread_rwlock_unlock(&pv->dev->dma_lock);
}

/* ---- BAR0 --------------------------------------------------------------- */

static uint32_t reg_read(struct pvdma *pv, uint32_t reg)
{
	const struct tp_pv_config *c = &pv->o.policy;
	struct tp_pv_stats st;
	uint32_t v;

	switch (reg) {
	case PVDMA_REG_ID: return PVDMA_ID_VALUE;
	case PVDMA_REG_VERSION: return PVDMA_VERSION_VALUE;
	case PVDMA_REG_MANAGED_ID: return pv->managed_id;
	case PVDMA_REG_MANAGED_DEVFN: return 0; /* function 0 of our own slot */
	case PVDMA_REG_TOKEN_LO: return (uint32_t)pv->token;
	case PVDMA_REG_TOKEN_HI: return (uint32_t)(pv->token >> 32);
	case PVDMA_REG_RING_ENTRIES: return PVDMA_RING_ENTRIES;
	case PVDMA_REG_GRANULE: return (uint32_t)c->granule;
	case PVDMA_REG_WINDOW: return (uint32_t)c->window;
	case PVDMA_REG_MAX_MAPPED_MB: return (uint32_t)(c->max_bytes >> 20);
	case PVDMA_REG_MAX_MAPPINGS: return c->max_mappings;
	default: break;
	}
	if (reg < PVDMA_REG_CONSUMER || reg > PVDMA_REG_STAT_LAZY)
		return 0; /* DOORBELL is write-only; gaps, table and PBA read 0 */
	pthread_rwlock_rdlock(&pv->dev->dma_lock);
	tp_pv_get_stats(pv->pol, &st);
	switch (reg) {
	case PVDMA_REG_CONSUMER: v = pv->cons; break;
	case PVDMA_REG_CONTROL: v = pv->control; break;
	case PVDMA_REG_STAT_REQUESTS: v = pv->requests; break;
	case PVDMA_REG_STAT_MAPS: v = (uint32_t)(st.maps - pv->base.maps); break;
	case PVDMA_REG_STAT_UNMAPS: v = (uint32_t)(st.unmaps - pv->base.unmaps); break;
	case PVDMA_REG_STAT_WINDOWS: v = (uint32_t)st.live; break;
	case PVDMA_REG_STAT_BYTES_LO: v = (uint32_t)st.bytes; break;
	case PVDMA_REG_STAT_BYTES_HI: v = (uint32_t)(st.bytes >> 32); break;
	case PVDMA_REG_STAT_ERRORS: v = pv->errors; break;
	case PVDMA_REG_STAT_DELAYED: v = (uint32_t)(st.delayed - pv->base.delayed); break;
	case PVDMA_REG_STAT_LAZY: v = (uint32_t)st.lazy; break;
	default: v = 0; break;
	}
	pthread_rwlock_unlock(&pv->dev->dma_lock);
	return v;
}

static bool bar0_ok(struct pvdma *pv, uint64_t off, const void *buf, uint32_t len)
{
	if (buf && (len == 1 || len == 2 || len == 4 || len == 8) &&
	    tp_range_ok(off, len, PVDMA_BAR0_SIZE) && !(off & (len - 1)))
		return true;
	tp_dbg(pv->be.name, "BAR0 access of %u bytes at %#" PRIx64 ": refused", len, off);
	return false;
}

/* Any naturally aligned access of 1-8 bytes, assembled from the registers. */
int pvdma_bar0_read(struct pvdma *pv, uint64_t off, void *buf, uint32_t len)
{
	uint8_t bytes[8];
	uint64_t base = off & ~3ull;

	if (!bar0_ok(pv, off, buf, len))
		return -EINVAL;
	tp_le_put(bytes, 4, reg_read(pv, (uint32_t)base));
	if (len == 8)
		tp_le_put(bytes + 4, 4, reg_read(pv, (uint32_t)base + 4));
	memcpy(buf, bytes + (off - base), len);
	return 0;
}

/* Only whole 32-bit writes act (an 8-byte write is two); others drop. */
int pvdma_bar0_write(struct pvdma *pv, uint64_t off, const void *buf, uint32_t len)
{
	const uint8_t *in = buf;

	if (!bar0_ok(pv, off, buf, len))
		return -EINVAL;
	for (uint32_t i = 0; len >= 4 && i < len; i += 4) {
		uint32_t v = tp_le_get(in + i, 4);

		if (off + i == PVDMA_REG_DOORBELL)
			doorbell(pv, v);
		else if (off + i == PVDMA_REG_CONTROL)
			control(pv, v);
	}
	return 0;
}
