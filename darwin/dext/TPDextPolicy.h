/* SPDX-License-Identifier: MIT */
/*
 * The driver extension's decisions, kept apart from the DriverKit calls that
 * carry them out: which config writes pass, what a BAR register reads as,
 * whether a DMA map may reach PrepareForDMA, how handles name mappings, how
 * an interrupt and the client's IRQ_ARM meet without losing a wakeup, which
 * reset a device gets and when it is back.
 *
 * Plain C that is also valid C++ (static inline, no OS headers, no
 * designated initializers, explicit casts), so that the very same code runs
 * in the dext (ThunderpassUserClient.cpp) and in the Linux test stand-in
 * (tests/darwin/standin_dext.c), where `make check` exercises it against the
 * model GPU. Everything the client sends is checked here; nothing here trusts
 * a value it did not check.
 */
#ifndef TP_DEXT_POLICY_H
#define TP_DEXT_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include <thunderpass/darwin_uc.h>

/* Verdicts; each glue maps them to its kern_return_t (kIOReturn*). */
enum tp_dxp_err {
	TP_DXP_OK = 0,
	TP_DXP_BADARG,       /* kIOReturnBadArgument */
	TP_DXP_NOTPERMITTED, /* kIOReturnNotPermitted: a write the policy refuses */
	TP_DXP_NOSPACE,      /* kIOReturnNoSpace: a DMA cap */
	TP_DXP_NOTFOUND,     /* kIOReturnNotFound: no such handle or BAR */
	TP_DXP_NOMEMORY,     /* kIOReturnNoMemory */
	TP_DXP_TIMEOUT,      /* kIOReturnTimeout: the device did not come back */
	TP_DXP_NOTREADY,     /* kIOReturnNotReady: interrupts not set up */
	TP_DXP_IOERROR       /* kIOReturnIOError: the DART's answer makes no sense */
};

/* ---- config space ------------------------------------------------------ */

#define TP_DXP_CFG_COMMAND 0x04u
#define TP_DXP_CFG_BAR0 0x10u
#define TP_DXP_CFG_BAR_END 0x28u
#define TP_DXP_CMD_MEMORY 0x0002u
#define TP_DXP_CMD_MASTER 0x0004u

/* A config access the hardware can make: 1, 2 or 4 bytes, naturally
 * aligned, inside the space. */
static inline int tp_dxp_cfg_access_ok(uint32_t cfg_size, uint64_t off, uint64_t width)
{
	if (width != 1 && width != 2 && width != 4)
		return 0;
	if (off & (width - 1))
		return 0;
	return off < cfg_size && width <= cfg_size - off;
}

/*
 * The writes that reach the function: the Command register, nothing else.
 * This mirrors the core (lib/config.c): Command is the only register whose
 * bits pass through; BARs, the ROM BAR, MSI and MSI-X (macOS owns the
 * function's interrupt programming), PM control (the GPU stays in D0), PCIe
 * Device/Link Control and their "2" registers (MPS/MRRS must not move under
 * live DART mappings; a link disable would drop the Thunderbolt tunnel), the
 * Resizable BAR control (a BAR must not change size under its mapping) and
 * everything else are emulated or dropped by the core. An allow-list, so a
 * capability nobody thought of is refused too.
 */
static inline int tp_dxp_cfg_write_allowed(uint64_t off, uint64_t width)
{
	return off >= TP_DXP_CFG_COMMAND && off + width <= TP_DXP_CFG_COMMAND + 2;
}

/* What a BAR register reads as: the type bits from PCIDriverKit's GetBARInfo
 * (the raw register of a Thunderbolt function on Apple silicon holds the
 * host's address, and its low bits have been reported unreliable); address
 * bits 0, since the host's addresses are none of the client's business. */
static inline uint32_t tp_dxp_bar_reg(uint32_t flags)
{
	if (!(flags & TP_DUC_BAR_PRESENT) || (flags & TP_DUC_BAR_UPPER))
		return 0;
	if (flags & TP_DUC_BAR_IO)
		return 0x1u;
	return ((flags & TP_DUC_BAR_MEM64) ? 0x4u : 0u) | ((flags & TP_DUC_BAR_PREFETCH) ? 0x8u : 0u);
}

/*
 * A config read of [off, off + width) as the client sees it: raw bytes from
 * the function, with the BAR registers (0x10-0x27) replaced by
 * tp_dxp_bar_reg of bar_flags[0..5]. Works for any access inside the space.
 */
static inline uint32_t tp_dxp_cfg_read_fixup(uint64_t off, uint64_t width, uint32_t raw,
					     const uint32_t bar_flags[6])
{
	uint32_t v = raw;

	for (uint64_t i = 0; i < width; i++) {
		uint64_t b = off + i;
		uint32_t reg, byte;

		if (b < TP_DXP_CFG_BAR0 || b >= TP_DXP_CFG_BAR_END)
			continue;
		reg = tp_dxp_bar_reg(bar_flags[(b - TP_DXP_CFG_BAR0) / 4]);
		byte = (reg >> (8 * ((b - TP_DXP_CFG_BAR0) & 3))) & 0xffu;
		v = (v & ~(0xffu << (8 * i))) | (byte << (8 * i));
	}
	return v;
}

/* Vectors a capability advertises (Message Control word). */
static inline uint32_t tp_dxp_msi_vectors(uint16_t ctrl)
{
	uint32_t mmc = (ctrl >> 1) & 7u;

	return mmc > 5 ? 32u : 1u << mmc; /* 6 and 7 are reserved encodings */
}

static inline uint32_t tp_dxp_msix_vectors(uint16_t ctrl)
{
	return (uint32_t)(ctrl & 0x7ffu) + 1u;
}

/* ---- BAR access -------------------------------------------------------- */

static inline int tp_dxp_mmio_ok(uint64_t size, uint64_t off, uint64_t width)
{
	if (width != 1 && width != 2 && width != 4 && width != 8)
		return 0;
	if (off & (width - 1))
		return 0;
	return off < size && width <= size - off;
}

/* ---- DMA --------------------------------------------------------------- */

/*
 * Mapping bookkeeping: a slot per possible mapping (max_maps of them), a
 * free list, a generation per slot so that a stale handle (unmapped, slot
 * reused) is refused instead of tearing down someone else's mapping.
 * Handle = generation << 32 | (slot + 1): never 0. The caller owns the
 * arrays (IOMallocZero in the dext, calloc in the stand-in) and keeps its
 * own per-slot objects (the IODMACommand and the memory descriptor).
 */
struct tp_dxp_dma {
	uint64_t bytes, maps;          /* live */
	uint64_t max_bytes, max_maps;  /* caps */
	uint64_t refused_caps, failed, total_maps;
	uint32_t nslots;
	uint32_t free_head;            /* nslots: none free */
	uint32_t *next;                /* free list links */
	uint32_t *gen;                 /* generation of each slot */
	uint64_t *len;                 /* bytes of each live slot, 0: free */
};

static inline void tp_dxp_dma_init(struct tp_dxp_dma *d, uint32_t *next, uint32_t *gen,
				   uint64_t *len, uint32_t nslots, uint64_t max_bytes)
{
	d->bytes = d->maps = 0;
	d->max_bytes = max_bytes;
	d->max_maps = nslots;
	d->refused_caps = d->failed = d->total_maps = 0;
	d->nslots = nslots;
	d->next = next;
	d->gen = gen;
	d->len = len;
	for (uint32_t i = 0; i < nslots; i++) {
		next[i] = i + 1;
		gen[i] = 1;
		len[i] = 0;
	}
	d->free_head = 0;
}

/*
 * May this request go to PrepareForDMA? Arguments first (a bad one is
 * BADARG and counts nowhere), then the caps (NOSPACE, counted): past them
 * the DART may panic the host rather than fail, so this check is the only
 * thing standing between a client and a kernel panic.
 */
static inline enum tp_dxp_err tp_dxp_dma_check(struct tp_dxp_dma *d,
					       const struct tp_duc_dma_map_in *in)
{
	if (in->reserved || !in->dir || (in->dir & ~(TP_DUC_DMA_DEV_READS | TP_DUC_DMA_DEV_WRITES)))
		return TP_DXP_BADARG;
	if (!in->len || (in->va & (TP_DUC_PAGE - 1)) || (in->len & (TP_DUC_PAGE - 1)))
		return TP_DXP_BADARG;
	if (in->va + in->len < in->va)
		return TP_DXP_BADARG;
	if (in->len > d->max_bytes || d->bytes > d->max_bytes - in->len ||
	    d->maps >= d->max_maps || d->free_head >= d->nslots) {
		d->refused_caps++;
		return TP_DXP_NOSPACE;
	}
	return TP_DXP_OK;
}

/* What PrepareForDMA gave back, checked: 1..32 segments, none empty or
 * wrapping, adding up to the request. Device-discontiguous segments are
 * fine here: the client decides what it can use. */
static inline enum tp_dxp_err tp_dxp_segs_check(const struct tp_duc_seg *segs, uint32_t n,
						uint64_t len)
{
	uint64_t sum = 0;

	if (n < 1 || n > TP_DUC_MAX_SEGS)
		return TP_DXP_IOERROR;
	for (uint32_t i = 0; i < n; i++) {
		if (!segs[i].len || segs[i].addr + segs[i].len < segs[i].addr ||
		    segs[i].len > len - sum)
			return TP_DXP_IOERROR;
		sum += segs[i].len;
	}
	return sum == len ? TP_DXP_OK : TP_DXP_IOERROR;
}

/* Takes a slot for a checked request (after PrepareForDMA succeeded). */
static inline uint64_t tp_dxp_slot_take(struct tp_dxp_dma *d, uint64_t len, uint32_t *slot)
{
	uint32_t s = d->free_head;

	d->free_head = d->next[s];
	d->len[s] = len;
	d->bytes += len;
	d->maps++;
	d->total_maps++;
	*slot = s;
	return ((uint64_t)d->gen[s] << 32) | (uint64_t)(s + 1);
}

/* The live slot a handle names, or NOTFOUND. */
static inline enum tp_dxp_err tp_dxp_slot_find(const struct tp_dxp_dma *d, uint64_t handle,
					       uint32_t *slot)
{
	uint32_t lo = (uint32_t)handle;
	uint32_t s;

	if (lo == 0 || lo > d->nslots)
		return TP_DXP_NOTFOUND;
	s = lo - 1;
	if (!d->len[s] || d->gen[s] != (uint32_t)(handle >> 32))
		return TP_DXP_NOTFOUND;
	*slot = s;
	return TP_DXP_OK;
}

static inline void tp_dxp_slot_put(struct tp_dxp_dma *d, uint32_t s)
{
	d->bytes -= d->len[s];
	d->maps--;
	d->len[s] = 0;
	d->gen[s]++;
	if (!d->gen[s])
		d->gen[s] = 1; /* never 0: keeps every handle non-zero in its high half */
	d->next[s] = d->free_head;
	d->free_head = s;
}

/* ---- interrupts -------------------------------------------------------- */

/*
 * The handler and IRQ_ARM run on different queues. Both sides use
 * sequentially consistent atomics so that either the handler finds the armed
 * action, or the arming side finds the handler's pending bit; exactly one of
 * them gets the action (an exchange), so it is completed once.
 *
 * fire: sets the vector's pending bit, returns the armed action to complete
 * (NULL: nobody is waiting; the bit stays for the next IRQ_ARM).
 */
static inline void *tp_dxp_irq_fire(struct tp_duc_irq_page *pg, void *volatile *armed,
				    uint32_t vector)
{
	if (vector >= TP_DUC_MAX_VECTORS)
		return NULL;
	__atomic_fetch_or(&pg->pending[vector / 64], 1ull << (vector % 64), __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&pg->interrupts, 1, __ATOMIC_RELAXED);
	return __atomic_exchange_n(armed, (void *)0, __ATOMIC_SEQ_CST);
}

/*
 * arm: stores the client's action. *prev gets an action that was armed
 * before (a client that armed twice): the caller releases it without
 * completing. Returns the action to complete at once (bits already pending)
 * or NULL (the next fire completes it).
 */
static inline void *tp_dxp_irq_arm(struct tp_duc_irq_page *pg, void *volatile *armed,
				   void *action, void **prev)
{
	*prev = __atomic_exchange_n(armed, action, __ATOMIC_SEQ_CST);
	for (uint32_t w = 0; w < TP_DUC_PENDING_WORDS; w++)
		if (__atomic_load_n(&pg->pending[w], __ATOMIC_SEQ_CST))
			return __atomic_exchange_n(armed, (void *)0, __ATOMIC_SEQ_CST);
	return (void *)0;
}

/* ---- reset ------------------------------------------------------------- */

/*
 * Devices that never come back from a function-level reset: NVIDIA GB202
 * (RTX 5090 family). Linux has a no-FLR quirk for exactly these ids; they get
 * a hot reset at once.
 */
static inline int tp_dxp_no_flr(uint16_t vendor, uint16_t device)
{
	return vendor == 0x10de && (device == 0x2b85 || device == 0x2b87 || device == 0x2b8c);
}

/* The vendor/device dword of a function that answers: not all-ones (gone,
 * or the link is down) and not vendor 0x0001 (Configuration Request Retry
 * Status: still initializing after a reset). */
static inline int tp_dxp_dev_back(uint32_t id)
{
	uint16_t vendor = (uint16_t)id;

	return vendor != 0xffffu && vendor != 0x0001u && vendor != 0;
}

/*
 * Polls the function's id until it answers, up to timeout_ms, sleeping
 * poll_ms between reads. *waited: the ms slept. TIMEOUT when it never came
 * back: the caller must not touch its BARs.
 */
static inline enum tp_dxp_err tp_dxp_reset_wait(void *ctx, uint32_t (*read_id)(void *ctx),
						void (*sleep_ms)(void *ctx, uint32_t ms),
						uint32_t timeout_ms, uint32_t poll_ms,
						uint32_t *waited)
{
	*waited = 0;
	for (;;) {
		if (tp_dxp_dev_back(read_id(ctx)))
			return TP_DXP_OK;
		if (*waited >= timeout_ms)
			return TP_DXP_TIMEOUT;
		sleep_ms(ctx, poll_ms);
		*waited += poll_ms;
	}
}

/* PCIe: config requests may be answered with CRS for up to 1 s after a
 * conventional reset; a Thunderbolt tunnel retrains on top of that. */
#define TP_DXP_RESET_TIMEOUT_MS 2000u
#define TP_DXP_RESET_POLL_MS 10u
/* PCIe: 100 ms after a reset before the first config request. */
#define TP_DXP_RESET_SETTLE_MS 100u

#endif
