/* SPDX-License-Identifier: MIT */
/*
 * TEST STAND-IN of thunderpass's driver extension (darwin/dext/), in C, in
 * process: ThunderpassDriver's identification and ThunderpassUserClient's
 * selectors, one for one, with the dext's own decisions from
 * darwin/dext/TPDextPolicy.h. Below it, instead of PCIDriverKit: the model
 * GPU through tp_backend ops (config space, BARs, its copy engine and its
 * interrupts) and a fake DART that allocates device addresses, answers in
 * one or many segments as a knob says, carries the model's DMA to the
 * client's memory, and records a "panic" if PrepareForDMA is ever called
 * past the caps.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <thunderpass/protocol.h>

#include "../../darwin/dext/TPDextPolicy.h"
#include "standin.h"

#define DART_BASE 0x100000000ull /* the fake DART's first device address */

struct dart_seg {
	uint64_t dva, len, va;
	uint32_t dir;
};

struct action {
	mach_port_t port;
	uint64_t ref[kOSAsyncRef64Count];
};

struct standin_dext {
	struct tp_backend *be; /* the model */
	struct tp_duc_info info;
	struct tp_duc_bar bars[TP_DUC_NUM_BARS];
	uint32_t bar_flags[6];
	int region_of_index[TP_DUC_NUM_BARS]; /* memory index -> region */
	pthread_mutex_t lock;                  /* uc below, against the model's threads */
	struct standin_uc *uc;
	pthread_mutex_t dart_lock;             /* the DART's tables (in uc) and cursor */
	uint64_t cursor;
	bool fragmented_once;
	struct standin_dext *next;
};

struct standin_uc {
	struct standin_dext *dx;
	struct tp_dxp_dma dma;
	uint32_t *next, *gen;
	uint64_t *len;
	struct dart_seg **segs; /* per slot: what the DART mapped for it */
	uint32_t *nsegs;
	pthread_mutex_t irq_lock;
	struct tp_duc_irq_page *irq_page;
	uint32_t irq_vectors;
	void *volatile armed; /* struct action * */
	void *bar_map[6];
	uint64_t bar_map_len[6];
};

static struct standin_dext *dexts;

/* ---- the function, as PCIDriverKit would show it ------------------------------------ */

static uint32_t cfg_read(struct standin_dext *dx, uint32_t off, uint32_t w)
{
	uint32_t v = 0xffffffffu;

	if (dx->be->ops->config_read(dx->be, off, &v, w))
		return 0xffffffffu;
	if (w < 4)
		v &= (1u << (8 * w)) - 1;
	/* The knob's device id over bytes 2-3. */
	if (standin_knobs.fake_device && off <= 2 && off + w >= 4)
		v = (v & 0xffffu) | ((uint32_t)standin_knobs.fake_device << (8 * (2 - off)));
	return v;
}

static void cfg_write(struct standin_dext *dx, uint32_t off, uint32_t w, uint32_t v)
{
	dx->be->ops->config_write(dx->be, off, &v, w);
}

static uint16_t find_cap(struct standin_dext *dx, uint8_t id)
{
	uint32_t p = cfg_read(dx, 0x34, 1) & 0xfc;

	for (int n = 0; p >= 0x40 && n < 48; n++) {
		if ((cfg_read(dx, p, 1) & 0xff) == id)
			return (uint16_t)p;
		p = cfg_read(dx, p + 1, 1) & 0xfc;
	}
	return 0;
}

/* ThunderpassDriver::Start's identify(), on the model. */
static int identify(struct standin_dext *dx, unsigned bus, unsigned dev, unsigned fn)
{
	struct tp_duc_info *in = &dx->info;
	uint32_t id = cfg_read(dx, 0, 4), cr = cfg_read(dx, 8, 4), ss = cfg_read(dx, 0x2c, 4);
	uint32_t index = 0;

	if (!tp_dxp_dev_back(id) || (cr >> 24) != 0x03)
		return -ENODEV;
	in->magic = TP_DUC_MAGIC;
	in->abi = TP_DUC_ABI;
	in->vendor = (uint16_t)id;
	in->device = (uint16_t)(id >> 16);
	in->subsys_vendor = (uint16_t)ss;
	in->subsys_device = (uint16_t)(ss >> 16);
	in->class_rev = cr;
	in->header_type = (uint8_t)cfg_read(dx, 0x0e, 1);
	in->bus = (uint8_t)bus;
	in->dev = (uint8_t)dev;
	in->fn = (uint8_t)fn;
	in->cap_pm = find_cap(dx, 0x01);
	in->cap_msi = find_cap(dx, 0x05);
	in->cap_msix = find_cap(dx, 0x11);
	in->cap_pcie = find_cap(dx, 0x10);
	if (in->cap_msi)
		in->msi_vectors = tp_dxp_msi_vectors((uint16_t)cfg_read(dx, in->cap_msi + 2u, 2));
	if (in->cap_msix)
		in->msix_vectors = tp_dxp_msix_vectors((uint16_t)cfg_read(dx, in->cap_msix + 2u, 2));
	in->cfg_size = in->cap_pcie ? 4096 : 256;
	in->flags = (in->cap_pcie ? TP_DUC_INFO_PCIE : 0) |
		    (tp_dxp_no_flr(in->vendor, in->device) ? TP_DUC_INFO_NO_FLR : 0);
	in->dma_page = TP_DUC_PAGE;
	in->dma_max_segs = TP_DUC_MAX_SEGS;
	in->dma_max_bytes = standin_knobs.max_bytes ? standin_knobs.max_bytes : TP_DUC_MAX_DMA_BYTES;
	in->dma_max_maps = standin_knobs.max_maps ? standin_knobs.max_maps : TP_DUC_MAX_DMA_MAPS;
	in->irq_max_vectors = TP_DUC_MAX_VECTORS;
	/* GetBARInfo: size from the model, type from the BAR's low bits; the
	 * memory index counts present BARs, so it is NOT the BAR number (BAR3
	 * has index 2), as on macOS. */
	for (uint32_t b = 0; b < TP_DUC_NUM_BARS; b++) {
		struct tp_region_desc rd;
		uint32_t raw;

		dx->bars[b].bar = b;
		if (b > 0 && b < 6 && (dx->bars[b - 1].flags & TP_DUC_BAR_MEM64) &&
		    !(dx->bars[b - 1].flags & TP_DUC_BAR_UPPER)) {
			dx->bars[b].flags = TP_DUC_BAR_UPPER;
			continue;
		}
		if (dx->be->ops->region_info(dx->be, b, &rd) || !rd.size)
			continue;
		raw = b < 6 ? cfg_read(dx, 0x10 + 4 * b, 4) : 0;
		dx->bars[b].flags = TP_DUC_BAR_PRESENT |
				    (b < 6 && (raw & 1) ? TP_DUC_BAR_IO : 0) |
				    (b < 6 && (raw & 6) == 4 ? TP_DUC_BAR_MEM64 : 0) |
				    (b < 6 && (raw & 8) ? TP_DUC_BAR_PREFETCH : 0);
		dx->bars[b].size = rd.size;
		dx->bars[b].memory_index = index;
		dx->region_of_index[index++] = (int)b;
	}
	for (uint32_t b = 0; b < 6; b++)
		dx->bar_flags[b] = dx->bars[b].flags;
	return 0;
}

/* ---- the fake DART --------------------------------------------------------------------- */

/* PrepareForDMA: up to 32 segments for [va, va + len). handle 0 for now:
 * the slot is known only once the policy accepts the answer. */
static kern_return_t dart_prepare(struct standin_dext *dx, uint64_t va, uint64_t len,
				  uint32_t dir, struct tp_duc_seg *segs, uint32_t *n)
{
	enum standin_dart_mode mode = standin_knobs.dart_mode;
	uint32_t parts = standin_knobs.split ? standin_knobs.split : 4, i;
	uint64_t off = 0;

	standin_stats.prepare_calls++;
	/* Past the caps the real DART may take the host down: here it is a
	 * flag the tests assert never goes up. */
	if (standin_stats.dart_bytes + len > dx->info.dma_max_bytes ||
	    standin_stats.dart_maps + 1 > dx->info.dma_max_maps)
		standin_stats.dart_panicked = true;
	if (mode == STANDIN_DART_FAIL)
		return kIOReturnNoResources;
	if (mode == STANDIN_DART_FRAGMENT_ONCE)
		mode = dx->fragmented_once ? STANDIN_DART_NORMAL : STANDIN_DART_FRAGMENT;
	dx->fragmented_once |= mode == STANDIN_DART_FRAGMENT;
	if (mode != STANDIN_DART_SPLIT && mode != STANDIN_DART_FRAGMENT)
		parts = 1;
	if (parts > len / TP_DUC_PAGE)
		parts = (uint32_t)(len / TP_DUC_PAGE);
	if (parts > TP_DUC_MAX_SEGS)
		parts = TP_DUC_MAX_SEGS;
	if (mode == STANDIN_DART_MISALIGN)
		dx->cursor = ((dx->cursor + (2u << 20) - 1) & ~((2ull << 20) - 1)) + TP_DUC_PAGE;
	for (i = 0; i < parts; i++) {
		uint64_t piece = i + 1 < parts ? (len / parts) & ~(uint64_t)(TP_DUC_PAGE - 1)
					       : len - off;

		segs[i].addr = dx->cursor;
		segs[i].len = piece;
		dx->cursor += piece + (mode == STANDIN_DART_FRAGMENT ? TP_DUC_PAGE : 0);
		off += piece;
	}
	*n = parts;
	if (mode == STANDIN_DART_BOGUS)
		segs[0].len -= TP_DUC_PAGE; /* does not add up: the policy must catch it */
	(void)va;
	(void)dir;
	return kIOReturnSuccess;
}

/* CompleteDMA: the slot's segments leave the DART. */
static void dart_remove(struct standin_uc *uc, uint32_t slot)
{
	pthread_mutex_lock(&uc->dx->dart_lock);
	for (uint32_t i = 0; i < uc->nsegs[slot]; i++)
		standin_stats.dart_bytes -= uc->segs[slot][i].len;
	free(uc->segs[slot]);
	uc->segs[slot] = NULL;
	uc->nsegs[slot] = 0;
	standin_stats.dart_maps--;
	pthread_mutex_unlock(&uc->dx->dart_lock);
}

/* The device's DMA (the model's copy engine), through the DART's segments. */
static const struct dart_seg *dart_find(const struct standin_uc *uc, uint64_t dva)
{
	for (uint32_t slot = 0; slot < uc->dma.nslots; slot++)
		for (uint32_t i = 0; i < uc->nsegs[slot]; i++) {
			const struct dart_seg *s = &uc->segs[slot][i];

			if (dva >= s->dva && dva - s->dva < s->len)
				return s;
		}
	return NULL;
}

static int host_dma_rw(void *ctx, uint64_t dva, void *buf, uint64_t len, int write,
		       uint64_t *fault)
{
	struct standin_dext *dx = ctx;
	uint8_t *p = buf;
	int rc = 0;

	pthread_mutex_lock(&dx->lock);
	pthread_mutex_lock(&dx->dart_lock);
	while (len) {
		const struct dart_seg *s = dx->uc ? dart_find(dx->uc, dva) : NULL;
		uint64_t n;

		if (!s || !(s->dir & (write ? TP_DUC_DMA_DEV_WRITES : TP_DUC_DMA_DEV_READS))) {
			*fault = dva;
			rc = s ? -EACCES : -EFAULT;
			break;
		}
		n = s->dva + s->len - dva;
		if (n > len)
			n = len;
		if (write)
			memcpy((void *)(uintptr_t)(s->va + (dva - s->dva)), p, n);
		else
			memcpy(p, (const void *)(uintptr_t)(s->va + (dva - s->dva)), n);
		dva += n;
		p += n;
		len -= n;
	}
	pthread_mutex_unlock(&dx->dart_lock);
	pthread_mutex_unlock(&dx->lock);
	return rc;
}

/* ---- interrupts --------------------------------------------------------------------------- */

static void complete(struct standin_uc *uc, struct action *a, IOReturn status)
{
	uint64_t data[1];

	data[0] = uc->irq_page ? __atomic_add_fetch(&uc->irq_page->notifications, 1,
						      __ATOMIC_RELAXED) : 0;
	standin_post_completion(a->port, a->ref, status, data, 1);
	free(a);
}

/* InterruptOccurred: the same fire as the dext's handler. */
void standin_fire(struct standin_uc *uc, uint32_t vector)
{
	struct action *a;

	pthread_mutex_lock(&uc->irq_lock);
	if (uc->irq_page && vector < uc->irq_vectors) {
		a = tp_dxp_irq_fire(uc->irq_page, &uc->armed, vector);
		if (a)
			complete(uc, a, kIOReturnSuccess);
	}
	pthread_mutex_unlock(&uc->irq_lock);
}

static void host_irq_raise(void *ctx, uint32_t vector)
{
	struct standin_dext *dx = ctx;

	pthread_mutex_lock(&dx->lock);
	if (dx->uc)
		standin_fire(dx->uc, vector);
	pthread_mutex_unlock(&dx->lock);
}

static void host_intx_set(void *ctx, int level)
{
	(void)ctx; /* macOS gives the dext message-signalled interrupts only */
	(void)level;
}

static const struct tp_host_ops standin_host_ops = {
	.irq_raise = host_irq_raise,
	.intx_set = host_intx_set,
	.dma_rw = host_dma_rw,
};

static void irq_teardown(struct standin_uc *uc)
{
	struct action *a;

	pthread_mutex_lock(&uc->irq_lock);
	a = __atomic_exchange_n(&uc->armed, NULL, __ATOMIC_SEQ_CST);
	if (a)
		complete(uc, a, kIOReturnAborted);
	free(uc->irq_page);
	uc->irq_page = NULL;
	uc->irq_vectors = 0;
	pthread_mutex_unlock(&uc->irq_lock);
}

static kern_return_t irq_setup(struct standin_uc *uc, uint64_t type, uint64_t count,
			       uint64_t *granted)
{
	const struct tp_duc_info *in = &uc->dx->info;
	uint64_t n = count;

	if (uc->irq_page)
		return kIOReturnBusy;
	if (!((type == TP_DUC_IRQ_MSIX && in->cap_msix && count && count <= in->msix_vectors) ||
	      (type == TP_DUC_IRQ_MSI && in->cap_msi && count && count <= in->msi_vectors)))
		return kIOReturnBadArgument;
	if (standin_knobs.irq_grant && n > standin_knobs.irq_grant)
		n = standin_knobs.irq_grant; /* fewer dispatch sources came up */
	pthread_mutex_lock(&uc->irq_lock);
	uc->irq_page = aligned_alloc(TP_DUC_PAGE, TP_DUC_PAGE);
	if (!uc->irq_page) {
		pthread_mutex_unlock(&uc->irq_lock);
		return kIOReturnNoMemory;
	}
	memset(uc->irq_page, 0, TP_DUC_PAGE);
	uc->irq_page->magic = TP_DUC_MAGIC;
	uc->irq_page->abi = TP_DUC_ABI;
	uc->irq_page->type = (uint32_t)type;
	uc->irq_page->vectors = (uint32_t)n;
	uc->irq_vectors = (uint32_t)n;
	pthread_mutex_unlock(&uc->irq_lock);
	*granted = n;
	return kIOReturnSuccess;
}

static kern_return_t irq_arm(struct standin_uc *uc, const struct standin_call *c)
{
	struct action *a, *now;
	void *prev = NULL;

	if (!uc->irq_page)
		return kIOReturnNotReady;
	a = calloc(1, sizeof(*a));
	if (!a)
		return kIOReturnNoMemory;
	a->port = c->wake_port;
	memcpy(a->ref, c->ref, sizeof(a->ref));
	pthread_mutex_lock(&uc->irq_lock); /* the dext's ExternalMethod queue */
	now = tp_dxp_irq_arm(uc->irq_page, &uc->armed, a, &prev);
	free(prev);
	if (now)
		complete(uc, now, kIOReturnSuccess);
	pthread_mutex_unlock(&uc->irq_lock);
	return kIOReturnSuccess;
}

/* ---- the session ---------------------------------------------------------------------------- */

struct standin_dext *standin_dext_new(struct tp_backend *be, unsigned bus, unsigned dev,
				      unsigned fn)
{
	struct standin_dext *dx = calloc(1, sizeof(*dx));

	if (!dx)
		return NULL;
	dx->be = be;
	dx->cursor = DART_BASE;
	pthread_mutex_init(&dx->lock, NULL);
	pthread_mutex_init(&dx->dart_lock, NULL);
	be->host.ops = &standin_host_ops;
	be->host.ctx = dx;
	if (identify(dx, bus, dev, fn)) {
		standin_dext_free(dx);
		return NULL;
	}
	dx->next = dexts;
	dexts = dx;
	return dx;
}

void standin_dext_free(struct standin_dext *dx)
{
	struct standin_dext **pp;

	for (pp = &dexts; *pp; pp = &(*pp)->next)
		if (*pp == dx) {
			*pp = dx->next;
			break;
		}
	if (dx->be)
		dx->be->ops->destroy(dx->be);
	pthread_mutex_destroy(&dx->lock);
	pthread_mutex_destroy(&dx->dart_lock);
	free(dx);
}

struct standin_uc *standin_session(void)
{
	return dexts ? dexts->uc : NULL;
}

int standin_dext_open(struct standin_dext *dx, struct standin_uc **out)
{
	uint32_t n = (uint32_t)dx->info.dma_max_maps;
	struct standin_uc *uc;

	if (dx->uc)
		return -EBUSY; /* NewUserClient: kIOReturnExclusiveAccess */
	uc = calloc(1, sizeof(*uc));
	if (!uc)
		return -ENOMEM;
	uc->dx = dx;
	uc->next = calloc(n, sizeof(uint32_t));
	uc->gen = calloc(n, sizeof(uint32_t));
	uc->len = calloc(n, sizeof(uint64_t));
	uc->segs = calloc(n, sizeof(*uc->segs));
	uc->nsegs = calloc(n, sizeof(uint32_t));
	if (!uc->next || !uc->gen || !uc->len || !uc->segs || !uc->nsegs) {
		free(uc->next), free(uc->gen), free(uc->len), free(uc->segs), free(uc->nsegs);
		free(uc);
		return -ENOMEM;
	}
	tp_dxp_dma_init(&uc->dma, uc->next, uc->gen, uc->len, n, dx->info.dma_max_bytes);
	pthread_mutex_init(&uc->irq_lock, NULL);
	/* OpenSession: decode and bus mastering on. */
	cfg_write(dx, TP_DXP_CFG_COMMAND, 2,
		  cfg_read(dx, TP_DXP_CFG_COMMAND, 2) | TP_DXP_CMD_MEMORY | TP_DXP_CMD_MASTER);
	pthread_mutex_lock(&dx->lock);
	dx->uc = uc;
	pthread_mutex_unlock(&dx->lock);
	standin_stats.sessions++;
	*out = uc;
	return 0;
}

static void dma_release(struct standin_uc *uc, uint32_t slot)
{
	dart_remove(uc, slot);
	tp_dxp_slot_put(&uc->dma, slot);
}

/* ThunderpassUserClient::Stop. */
void standin_dext_close(struct standin_uc *uc)
{
	struct standin_dext *dx = uc->dx;

	cfg_write(dx, TP_DXP_CFG_COMMAND, 2,
		  cfg_read(dx, TP_DXP_CFG_COMMAND, 2) & ~(uint32_t)TP_DXP_CMD_MASTER);
	pthread_mutex_lock(&dx->lock);
	dx->uc = NULL; /* no more interrupts reach this session */
	pthread_mutex_unlock(&dx->lock);
	irq_teardown(uc);
	for (uint32_t s = 0; s < uc->dma.nslots && uc->dma.maps; s++)
		if (uc->len[s])
			dma_release(uc, s);
	for (uint32_t b = 0; b < 6; b++)
		if (uc->bar_map[b])
			munmap(uc->bar_map[b], uc->bar_map_len[b]);
	cfg_write(dx, TP_DXP_CFG_COMMAND, 2,
		  cfg_read(dx, TP_DXP_CFG_COMMAND, 2) &
			  ~(uint32_t)(TP_DXP_CMD_MEMORY | TP_DXP_CMD_MASTER));
	pthread_mutex_destroy(&uc->irq_lock);
	free(uc->next);
	free(uc->gen);
	free(uc->len);
	free(uc->segs);
	free(uc->nsegs);
	free(uc);
	standin_stats.sessions--;
}

/* ---- DMA ------------------------------------------------------------------------------------- */

static kern_return_t dma_map(struct standin_uc *uc, const struct tp_duc_dma_map_in *in,
			     struct tp_duc_dma_map_out *out)
{
	struct standin_dext *dx = uc->dx;
	enum tp_dxp_err e = tp_dxp_dma_check(&uc->dma, in);
	struct dart_seg *segs;
	uint32_t n = 0, slot;
	kern_return_t kr;

	if (e != TP_DXP_OK)
		return e == TP_DXP_NOSPACE ? kIOReturnNoSpace : kIOReturnBadArgument;
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&dx->dart_lock);
	kr = dart_prepare(dx, in->va, in->len, in->dir, out->segs, &n);
	pthread_mutex_unlock(&dx->dart_lock);
	if (kr != kIOReturnSuccess) {
		uc->dma.failed++;
		return kr;
	}
	if (tp_dxp_segs_check(out->segs, n, in->len) != TP_DXP_OK) {
		uc->dma.failed++; /* CompleteDMA: nothing was recorded */
		return kIOReturnIOError;
	}
	segs = calloc(n, sizeof(*segs));
	if (!segs) {
		uc->dma.failed++;
		return kIOReturnNoMemory;
	}
	out->handle = tp_dxp_slot_take(&uc->dma, in->len, &slot);
	out->len = in->len;
	out->nsegs = n;
	for (uint64_t i = 0, before = 0; i < n; before += out->segs[i].len, i++)
		segs[i] = (struct dart_seg){ out->segs[i].addr, out->segs[i].len, in->va + before,
					     in->dir };
	pthread_mutex_lock(&dx->dart_lock);
	uc->segs[slot] = segs;
	uc->nsegs[slot] = n;
	standin_stats.dart_bytes += in->len;
	standin_stats.dart_maps++;
	if (standin_stats.dart_bytes > standin_stats.dart_peak_bytes)
		standin_stats.dart_peak_bytes = standin_stats.dart_bytes;
	if (standin_stats.dart_maps > standin_stats.dart_peak_maps)
		standin_stats.dart_peak_maps = standin_stats.dart_maps;
	pthread_mutex_unlock(&dx->dart_lock);
	return kIOReturnSuccess;
}

/* ---- reset --------------------------------------------------------------------------------- */

static uint32_t reset_read_id(void *ctx)
{
	return cfg_read(ctx, 0, 4);
}

static void reset_sleep(void *ctx, uint32_t ms)
{
	(void)ctx; /* the stand-in's clock is make-believe: tests stay fast */
	(void)ms;
}

static kern_return_t do_reset(struct standin_dext *dx, uint64_t *how, uint64_t *waited_ms)
{
	uint32_t waited = 0;

	if (!(dx->info.flags & TP_DUC_INFO_NO_FLR)) {
		kern_return_t kr = kIOReturnUnsupported;

		if (!standin_knobs.flr_fails) {
			standin_stats.resets_flr++;
			kr = dx->be->ops->reset(dx->be) ? kIOReturnIOError : kIOReturnSuccess;
		}
		if (kr == kIOReturnSuccess &&
		    tp_dxp_reset_wait(dx, reset_read_id, reset_sleep, TP_DXP_RESET_TIMEOUT_MS,
				      TP_DXP_RESET_POLL_MS, &waited) == TP_DXP_OK) {
			*how = TP_DUC_RESET_FLR;
			goto done;
		}
	}
	standin_stats.resets_hot++;
	if (dx->be->ops->reset(dx->be))
		return kIOReturnIOError;
	if (tp_dxp_reset_wait(dx, reset_read_id, reset_sleep, TP_DXP_RESET_TIMEOUT_MS,
			      TP_DXP_RESET_POLL_MS, &waited) != TP_DXP_OK)
		return kIOReturnTimeout;
	waited += TP_DXP_RESET_SETTLE_MS;
	*how = TP_DUC_RESET_HOT;
done:
	cfg_write(dx, TP_DXP_CFG_COMMAND, 2,
		  cfg_read(dx, TP_DXP_CFG_COMMAND, 2) | TP_DXP_CMD_MEMORY | TP_DXP_CMD_MASTER);
	*waited_ms = waited;
	return kIOReturnSuccess;
}

/* ---- the dispatcher (ThunderpassUserClient::ExternalMethod) ---------------------------------- */

static bool scalars_only(const struct standin_call *c, uint32_t nin, uint32_t nout)
{
	return c->nin == nin && c->nout == nout && !c->sinlen && !c->sout_max;
}

static kern_return_t struct_out(struct standin_call *c, const void *p, size_t n)
{
	if (c->sout_max < n)
		return kIOReturnBadArgument;
	memcpy(c->sout_buf, p, n);
	c->sout_len = n - (standin_knobs.short_reply < n ? standin_knobs.short_reply : 0);
	return kIOReturnSuccess;
}

static const struct tp_duc_bar *mmio_bar(struct standin_dext *dx, uint64_t bar, uint64_t off,
					 uint64_t w)
{
	const struct tp_duc_bar *b;

	if (bar >= TP_DUC_NUM_BARS)
		return NULL;
	b = &dx->bars[bar];
	if (!(b->flags & TP_DUC_BAR_PRESENT) || (b->flags & (TP_DUC_BAR_IO | TP_DUC_BAR_UPPER)))
		return NULL;
	return tp_dxp_mmio_ok(b->size, off, w) ? b : NULL;
}

kern_return_t standin_dext_call(struct standin_uc *uc, struct standin_call *c)
{
	struct standin_dext *dx = uc->dx;
	const uint64_t *s = c->in;

	if (c->selector < TP_DUC_SELECTOR_COUNT)
		standin_stats.calls[c->selector]++;
	if (c->async != (c->selector == TP_DUC_IRQ_ARM))
		return kIOReturnBadArgument;
	switch (c->selector) {
	case TP_DUC_GET_INFO: {
		struct tp_duc_info in = dx->info;

		if (c->nin || c->nout || c->sinlen)
			return kIOReturnBadArgument;
		if (standin_knobs.info_abi)
			in.abi = standin_knobs.info_abi;
		if (standin_knobs.info_wrong_bdf)
			in.bus++;
		return struct_out(c, &in, sizeof(in));
	}
	case TP_DUC_CONFIG_READ:
		if (!scalars_only(c, TP_DUC_CONFIG_READ_IN, TP_DUC_CONFIG_READ_OUT) ||
		    !tp_dxp_cfg_access_ok(dx->info.cfg_size, s[0], s[1]))
			return kIOReturnBadArgument;
		c->out[0] = tp_dxp_cfg_read_fixup(s[0], s[1], cfg_read(dx, (uint32_t)s[0],
									(uint32_t)s[1]),
						  dx->bar_flags);
		return kIOReturnSuccess;
	case TP_DUC_CONFIG_WRITE:
		if (!scalars_only(c, TP_DUC_CONFIG_WRITE_IN, 0) ||
		    !tp_dxp_cfg_access_ok(dx->info.cfg_size, s[0], s[1]) || (s[2] >> (8 * s[1])))
			return kIOReturnBadArgument;
		if (!tp_dxp_cfg_write_allowed(s[0], s[1])) {
			standin_stats.refused_config_writes++;
			return kIOReturnNotPermitted;
		}
		cfg_write(dx, (uint32_t)s[0], (uint32_t)s[1], (uint32_t)s[2]);
		return kIOReturnSuccess;
	case TP_DUC_BAR_INFO:
		if (c->nin != TP_DUC_BAR_INFO_IN || c->nout || c->sinlen || s[0] >= TP_DUC_NUM_BARS)
			return kIOReturnBadArgument;
		return struct_out(c, &dx->bars[s[0]], sizeof(dx->bars[0]));
	case TP_DUC_MMIO_READ: {
		const struct tp_duc_bar *b;
		uint64_t v = 0;

		if (!scalars_only(c, TP_DUC_MMIO_READ_IN, TP_DUC_MMIO_READ_OUT) ||
		    !(b = mmio_bar(dx, s[0], s[1], s[2])))
			return kIOReturnBadArgument;
		/* MemoryReadN(memoryIndex, ...): the index, not the BAR number. */
		if (dx->be->ops->region_read(dx->be, (uint32_t)dx->region_of_index[b->memory_index],
					     s[1], &v, (uint32_t)s[2]))
			v = ~0ull; /* a failed read returns all-ones, as PCIDriverKit says */
		c->out[0] = v;
		return kIOReturnSuccess;
	}
	case TP_DUC_MMIO_WRITE: {
		const struct tp_duc_bar *b;

		if (!scalars_only(c, TP_DUC_MMIO_WRITE_IN, 0) || !(b = mmio_bar(dx, s[0], s[1], s[2])) ||
		    s[0] == TP_DUC_BAR_ROM || (s[2] < 8 && (s[3] >> (8 * s[2]))))
			return kIOReturnBadArgument;
		dx->be->ops->region_write(dx->be, (uint32_t)dx->region_of_index[b->memory_index],
					  s[1], &s[3], (uint32_t)s[2]);
		return kIOReturnSuccess;
	}
	case TP_DUC_DMA_MAP: {
		struct tp_duc_dma_map_in in;
		struct tp_duc_dma_map_out out;
		kern_return_t kr;

		if (c->nin || c->nout || c->sinlen != sizeof(in) || c->sout_max < sizeof(out))
			return kIOReturnBadArgument;
		memcpy(&in, c->sin, sizeof(in));
		kr = dma_map(uc, &in, &out);
		return kr == kIOReturnSuccess ? struct_out(c, &out, sizeof(out)) : kr;
	}
	case TP_DUC_DMA_UNMAP: {
		uint32_t slot;

		if (!scalars_only(c, TP_DUC_DMA_UNMAP_IN, 0))
			return kIOReturnBadArgument;
		if (tp_dxp_slot_find(&uc->dma, s[0], &slot) != TP_DXP_OK)
			return kIOReturnNotFound;
		dma_release(uc, slot);
		return kIOReturnSuccess;
	}
	case TP_DUC_DMA_UNMAP_ALL:
		if (!scalars_only(c, 0, 0))
			return kIOReturnBadArgument;
		for (uint32_t slot = 0; slot < uc->dma.nslots && uc->dma.maps; slot++)
			if (uc->len[slot])
				dma_release(uc, slot);
		return kIOReturnSuccess;
	case TP_DUC_DMA_STATS: {
		struct tp_duc_dma_stats st = {
			.bytes = uc->dma.bytes, .maps = uc->dma.maps, .max_bytes = uc->dma.max_bytes,
			.max_maps = uc->dma.max_maps, .refused_caps = uc->dma.refused_caps,
			.failed = uc->dma.failed, .total_maps = uc->dma.total_maps,
		};

		if (c->nin || c->nout || c->sinlen)
			return kIOReturnBadArgument;
		return struct_out(c, &st, sizeof(st));
	}
	case TP_DUC_IRQ_SETUP:
		if (!scalars_only(c, TP_DUC_IRQ_SETUP_IN, TP_DUC_IRQ_SETUP_OUT))
			return kIOReturnBadArgument;
		return irq_setup(uc, s[0], s[1], &c->out[0]);
	case TP_DUC_IRQ_ARM:
		if (!scalars_only(c, 0, 0))
			return kIOReturnBadArgument;
		return irq_arm(uc, c);
	case TP_DUC_IRQ_TEARDOWN:
		if (!scalars_only(c, 0, 0))
			return kIOReturnBadArgument;
		irq_teardown(uc);
		return kIOReturnSuccess;
	case TP_DUC_RESET:
		if (!scalars_only(c, 0, TP_DUC_RESET_OUT))
			return kIOReturnBadArgument;
		return do_reset(dx, &c->out[0], &c->out[1]);
	default:
		return kIOReturnUnsupported;
	}
}

/* ---- CopyClientMemoryForType + the mapping ---------------------------------------------------- */

kern_return_t standin_dext_map(struct standin_uc *uc, uint32_t type, IOOptionBits opt,
			       mach_vm_address_t *addr, mach_vm_size_t *size)
{
	struct standin_dext *dx = uc->dx;
	struct tp_region_desc rd;
	void *p;

	if (type == TP_DUC_MEM_IRQ_PAGE) {
		if (!uc->irq_page)
			return kIOReturnNotReady;
		*addr = (mach_vm_address_t)(uintptr_t)uc->irq_page;
		*size = TP_DUC_PAGE;
		return kIOReturnSuccess;
	}
	if (type >= 6 || !(dx->bars[type].flags & TP_DUC_BAR_PRESENT) ||
	    (dx->bars[type].flags & (TP_DUC_BAR_IO | TP_DUC_BAR_UPPER)))
		return kIOReturnBadArgument;
	standin_stats.map_options[type] = opt;
	/* The model's BAR0 is a register file: nothing to map (see standin.h). */
	if (standin_knobs.no_bar_map || dx->be->ops->region_info(dx->be, type, &rd) ||
	    rd.mmap_fd < 0 || !rd.nr_areas)
		return kIOReturnUnsupported;
	if (uc->bar_map[type])
		return kIOReturnBusy;
	p = mmap(NULL, rd.size, PROT_READ | PROT_WRITE, MAP_SHARED, rd.mmap_fd,
		 (off_t)rd.mmap_offset);
	if (p == MAP_FAILED)
		return kIOReturnNoMemory;
	uc->bar_map[type] = p;
	uc->bar_map_len[type] = rd.size;
	*addr = (mach_vm_address_t)(uintptr_t)p;
	*size = rd.size;
	return kIOReturnSuccess;
}

void standin_dext_unmap(struct standin_uc *uc, uint32_t type, mach_vm_address_t addr)
{
	if (type < 6 && uc->bar_map[type] == (void *)(uintptr_t)addr) {
		munmap(uc->bar_map[type], uc->bar_map_len[type]);
		uc->bar_map[type] = NULL;
	}
}
