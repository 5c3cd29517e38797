/* SPDX-License-Identifier: MIT */
/*
 * ThunderpassUserClient: the selectors of include/thunderpass/darwin_uc.h on
 * top of PCIDriverKit. Each selector checks its argument counts and sizes
 * exactly, asks TPDextPolicy.h for the verdict, then makes the DriverKit
 * calls and checks what they return.
 *
 * DMA: one CreateMemoryDescriptorFromClient + IODMACommand + PrepareForDMA
 * per map; the caps are checked BEFORE PrepareForDMA because past them the
 * DART can panic the host instead of failing. All segments (up to 32) go
 * back to the client, device-contiguous or not: it decides what to do.
 *
 * Interrupts: one IOInterruptDispatchSource per vector on the "Interrupt"
 * queue; the handler sets the vector's bit in the shared IRQ page and
 * completes the client's armed IRQ_ARM (an OSAction retained until then),
 * which the client re-arms after draining the bits.
 *
 * Not yet run on real hardware (docs/macos.md).
 */
#include <DriverKit/DriverKit.h>
#include <DriverKit/IOBufferMemoryDescriptor.h>
#include <DriverKit/IODMACommand.h>
#include <DriverKit/IODispatchQueue.h>
#include <DriverKit/IOInterruptDispatchSource.h>
#include <DriverKit/IOLib.h>
#include <DriverKit/IOUserClient.h>
#include <DriverKit/OSData.h>
#include <PCIDriverKit/PCIDriverKit.h>

#include "ThunderpassDriver.h"
#include "ThunderpassUserClient.h"
#include "TPDriverPrivate.h"

struct ThunderpassUserClient_IVars {
	ThunderpassDriver *driver;
	IOPCIDevice *pci;
	bool session;
	uint64_t refused_writes;          /* config writes the policy refused */
	/* DMA: the policy's table and our objects per slot */
	struct tp_dxp_dma dma;
	uint32_t *dma_next, *dma_gen;
	uint64_t *dma_len;
	IODMACommand **dma_cmd;
	IOMemoryDescriptor **dma_md;
	/* interrupts */
	IODispatchQueue *irq_queue;
	IOBufferMemoryDescriptor *irq_buf;
	struct tp_duc_irq_page *irq_page; /* inside irq_buf */
	IOInterruptDispatchSource **irq_src;
	OSAction **irq_action;
	uint32_t irq_vectors;
	void *volatile armed;             /* the client's OSAction, or NULL */
	/* BAR descriptors: CopyClientMemoryForType returns the same one per type */
	IOMemoryDescriptor *bar_md[6];
};

bool ThunderpassUserClient::init()
{
	if (!super::init())
		return false;
	ivars = IONewZero(ThunderpassUserClient_IVars, 1);
	return ivars != nullptr;
}

void ThunderpassUserClient::free()
{
	IOSafeDeleteNULL(ivars, ThunderpassUserClient_IVars, 1);
	super::free();
}

static void dma_arrays_free(ThunderpassUserClient_IVars *iv)
{
	const uint32_t n = TP_DUC_MAX_DMA_MAPS;

	IOSafeDeleteNULL(iv->dma_next, uint32_t, n);
	IOSafeDeleteNULL(iv->dma_gen, uint32_t, n);
	IOSafeDeleteNULL(iv->dma_len, uint64_t, n);
	IOSafeDeleteNULL(iv->dma_cmd, IODMACommand *, n);
	IOSafeDeleteNULL(iv->dma_md, IOMemoryDescriptor *, n);
}

kern_return_t IMPL(ThunderpassUserClient, Start)
{
	const uint32_t n = TP_DUC_MAX_DMA_MAPS;
	kern_return_t kr = Start(provider, SUPERDISPATCH);

	if (kr != kIOReturnSuccess)
		return kr;
	ivars->driver = OSDynamicCast(ThunderpassDriver, provider);
	if (!ivars->driver || !ivars->driver->ivars || !ivars->driver->ivars->pci)
		return kIOReturnNoDevice;
	ivars->pci = ivars->driver->ivars->pci;
	/* About 2 MiB for 65536 slots, allocated once per session so that a
	 * map never allocates bookkeeping. */
	ivars->dma_next = IONewZero(uint32_t, n);
	ivars->dma_gen = IONewZero(uint32_t, n);
	ivars->dma_len = IONewZero(uint64_t, n);
	ivars->dma_cmd = IONewZero(IODMACommand *, n);
	ivars->dma_md = IONewZero(IOMemoryDescriptor *, n);
	if (!ivars->dma_next || !ivars->dma_gen || !ivars->dma_len || !ivars->dma_cmd ||
	    !ivars->dma_md) {
		dma_arrays_free(ivars);
		return kIOReturnNoMemory;
	}
	tp_dxp_dma_init(&ivars->dma, ivars->dma_next, ivars->dma_gen, ivars->dma_len, n,
			TP_DUC_MAX_DMA_BYTES);
	kr = IODispatchQueue::Create("Interrupt", 0, 0, &ivars->irq_queue);
	if (kr == kIOReturnSuccess)
		kr = SetDispatchQueue("Interrupt", ivars->irq_queue);
	if (kr == kIOReturnSuccess)
		kr = ivars->driver->OpenSession(this);
	if (kr != kIOReturnSuccess) {
		OSSafeReleaseNULL(ivars->irq_queue);
		dma_arrays_free(ivars);
		return kr;
	}
	ivars->session = true;
	return kIOReturnSuccess;
}

/* ---- interrupts ---------------------------------------------------------- */

static void uc_notify(ThunderpassUserClient *uc, OSAction *a, IOReturn status)
{
	IOUserClientAsyncArgumentsArray data = {};
	struct tp_duc_irq_page *pg = uc->ivars->irq_page;

	data[0] = pg ? __atomic_add_fetch(&pg->notifications, 1, __ATOMIC_RELAXED) : 0;
	uc->AsyncCompletion(a, status, data, 1);
	a->release(); /* the reference taken when it was armed */
}

void IMPL(ThunderpassUserClient, InterruptOccurred)
{
	struct tp_duc_irq_page *pg = ivars->irq_page;
	uint32_t *vector = action ? (uint32_t *)action->GetReference() : nullptr;
	OSAction *a;

	(void)count;
	(void)time;
	if (!pg || !vector || *vector >= ivars->irq_vectors)
		return;
	a = (OSAction *)tp_dxp_irq_fire(pg, &ivars->armed, *vector);
	if (a)
		uc_notify(this, a, kIOReturnSuccess);
}

static void irq_teardown(ThunderpassUserClient *uc)
{
	ThunderpassUserClient_IVars *iv = uc->ivars;
	uint32_t n = iv->irq_vectors;
	OSAction *a;

	for (uint32_t i = 0; i < n; i++)
		if (iv->irq_src && iv->irq_src[i])
			iv->irq_src[i]->SetEnable(false);
	/* A handler already queued runs before this block: after it, none is
	 * running and none will run (every source is disabled). */
	if (iv->irq_queue)
		iv->irq_queue->DispatchSync(^{});
	for (uint32_t i = 0; i < n; i++) {
		IOInterruptDispatchSource *src = iv->irq_src ? iv->irq_src[i] : nullptr;
		OSAction *act = iv->irq_action ? iv->irq_action[i] : nullptr;

		/* Our references go once the source is cancelled, never while
		 * it could still hand the action a message. */
		if (src)
			src->Cancel(^{
				src->release();
				if (act)
					act->release();
			});
		else if (act)
			act->release();
	}
	IOSafeDeleteNULL(iv->irq_src, IOInterruptDispatchSource *, n);
	IOSafeDeleteNULL(iv->irq_action, OSAction *, n);
	/* A client still waiting learns that the wait is over. */
	a = (OSAction *)__atomic_exchange_n(&iv->armed, (void *)0, __ATOMIC_SEQ_CST);
	if (a)
		uc_notify(uc, a, kIOReturnAborted);
	iv->irq_page = nullptr;
	iv->irq_vectors = 0;
	OSSafeReleaseNULL(iv->irq_buf);
}

static kern_return_t irq_setup(ThunderpassUserClient *uc, uint64_t type, uint64_t count,
			       uint64_t *granted)
{
	ThunderpassUserClient_IVars *iv = uc->ivars;
	const struct tp_duc_info *in = &iv->driver->ivars->info;
	IOAddressSegment range = {};
	uint32_t it, n = 0;
	kern_return_t kr;

	if (iv->irq_buf)
		return kIOReturnBusy; /* IRQ_TEARDOWN first */
	if (type == TP_DUC_IRQ_MSIX && in->cap_msix && count && count <= in->msix_vectors)
		it = kIOInterruptTypePCIMessagedX;
	else if (type == TP_DUC_IRQ_MSI && in->cap_msi && count && count <= in->msi_vectors)
		it = kIOInterruptTypePCIMessaged;
	else
		return kIOReturnBadArgument;
	if (count > TP_DUC_MAX_VECTORS)
		return kIOReturnBadArgument;
	kr = iv->pci->ConfigureInterrupts(it, 1, (uint32_t)count, 0);
	if (kr != kIOReturnSuccess) {
		TP_LOG("ConfigureInterrupts(%s, %llu) failed: %#x",
		       type == TP_DUC_IRQ_MSIX ? "MSI-X" : "MSI", (unsigned long long)count, kr);
		return kr;
	}
	kr = IOBufferMemoryDescriptor::Create(kIOMemoryDirectionInOut, TP_DUC_PAGE, TP_DUC_PAGE,
					      &iv->irq_buf);
	if (kr == kIOReturnSuccess)
		kr = iv->irq_buf->SetLength(TP_DUC_PAGE);
	if (kr == kIOReturnSuccess)
		kr = iv->irq_buf->GetAddressRange(&range);
	if (kr != kIOReturnSuccess || !range.address || range.length < sizeof(struct tp_duc_irq_page)) {
		OSSafeReleaseNULL(iv->irq_buf);
		return kr != kIOReturnSuccess ? kr : kIOReturnNoMemory;
	}
	iv->irq_page = (struct tp_duc_irq_page *)range.address;
	memset(iv->irq_page, 0, sizeof(*iv->irq_page));
	iv->irq_page->magic = TP_DUC_MAGIC;
	iv->irq_page->abi = TP_DUC_ABI;
	iv->irq_page->type = (uint32_t)type;
	iv->irq_src = IONewZero(IOInterruptDispatchSource *, count);
	iv->irq_action = IONewZero(OSAction *, count);
	iv->irq_vectors = (uint32_t)count; /* the arrays' size until teardown */
	if (!iv->irq_src || !iv->irq_action) {
		irq_teardown(uc);
		return kIOReturnNoMemory;
	}
	/* Vector i of the function is interrupt index i of the provider once
	 * ConfigureInterrupts has set up message-signalled interrupts. */
	for (n = 0; n < count; n++) {
		IOInterruptDispatchSource *src = nullptr;
		OSAction *action = nullptr;

		kr = IOInterruptDispatchSource::Create(iv->pci, n, iv->irq_queue, &src);
		if (kr != kIOReturnSuccess)
			break;
		kr = uc->CreateActionInterruptOccurred(sizeof(uint32_t), &action);
		if (kr != kIOReturnSuccess) {
			src->release();
			break;
		}
		*(uint32_t *)action->GetReference() = n;
		kr = src->SetHandler(action);
		if (kr == kIOReturnSuccess)
			kr = src->SetEnable(true);
		iv->irq_src[n] = src;
		iv->irq_action[n] = action;
		if (kr != kIOReturnSuccess)
			break;
	}
	if (n == 0) {
		irq_teardown(uc);
		return kr != kIOReturnSuccess ? kr : kIOReturnNoInterrupt;
	}
	if (n < count)
		TP_LOG("%u of %llu vectors set up (then %#x): the rest never fire", n,
		       (unsigned long long)count, kr);
	/* Handlers check *vector < irq_vectors: vectors past n were never
	 * enabled, and their slots (if any) go at teardown like the rest. */
	iv->irq_page->vectors = n;
	*granted = n;
	return kIOReturnSuccess;
}

static kern_return_t irq_arm(ThunderpassUserClient *uc, OSAction *completion)
{
	ThunderpassUserClient_IVars *iv = uc->ivars;
	void *prev = nullptr;
	OSAction *now;

	if (!iv->irq_page)
		return kIOReturnNotReady;
	completion->retain(); /* ExternalMethod's reference ends with the call */
	now = (OSAction *)tp_dxp_irq_arm(iv->irq_page, &iv->armed, completion, &prev);
	if (prev)
		((OSAction *)prev)->release(); /* armed twice: the older one is dropped */
	if (now)
		uc_notify(uc, now, kIOReturnSuccess);
	return kIOReturnSuccess;
}

/* ---- DMA ------------------------------------------------------------------ */

static void dma_release(ThunderpassUserClient_IVars *iv, uint32_t slot)
{
	kern_return_t kr = iv->dma_cmd[slot]->CompleteDMA(kIODMACommandCompleteDMANoOptions);

	if (kr != kIOReturnSuccess)
		TP_LOG("CompleteDMA failed: %#x (mapping dropped anyway)", kr);
	OSSafeReleaseNULL(iv->dma_cmd[slot]);
	OSSafeReleaseNULL(iv->dma_md[slot]);
	tp_dxp_slot_put(&iv->dma, slot);
}

static kern_return_t dma_map(ThunderpassUserClient *uc, const struct tp_duc_dma_map_in *in,
			     struct tp_duc_dma_map_out *out)
{
	ThunderpassUserClient_IVars *iv = uc->ivars;
	IOAddressSegment range, segs[TP_DUC_MAX_SEGS];
	IODMACommandSpecification spec;
	IOMemoryDescriptor *md = nullptr;
	IODMACommand *cmd = nullptr;
	uint64_t flags = 0, opts = 0;
	uint32_t n = TP_DUC_MAX_SEGS, slot;
	enum tp_dxp_err e = tp_dxp_dma_check(&iv->dma, in);
	kern_return_t kr;

	/* Nothing below may run unless the caps allow it. */
	if (e != TP_DXP_OK)
		return tp_kr(e);
	if (in->dir & TP_DUC_DMA_DEV_READS)
		opts |= kIOMemoryDirectionOut;
	if (in->dir & TP_DUC_DMA_DEV_WRITES)
		opts |= kIOMemoryDirectionIn;
	range.address = in->va;
	range.length = in->len;
	kr = uc->CreateMemoryDescriptorFromClient(opts, 1, &range, &md);
	if (kr != kIOReturnSuccess)
		goto fail;
	memset(&spec, 0, sizeof(spec));
	spec.options = kIODMACommandSpecificationNoOptions;
	spec.maxAddressBits = 64;
	kr = IODMACommand::Create(iv->pci, kIODMACommandCreateNoOptions, &spec, &cmd);
	if (kr != kIOReturnSuccess)
		goto fail;
	memset(segs, 0, sizeof(segs));
	kr = cmd->PrepareForDMA(kIODMACommandPrepareForDMANoOptions, md, 0, in->len, &flags, &n,
				segs);
	if (kr != kIOReturnSuccess)
		goto fail;
	memset(out, 0, sizeof(*out));
	for (uint32_t i = 0; i < n && i < TP_DUC_MAX_SEGS; i++) {
		out->segs[i].addr = segs[i].address;
		out->segs[i].len = segs[i].length;
	}
	e = tp_dxp_segs_check(out->segs, n, in->len);
	if (e != TP_DXP_OK) {
		TP_LOG("PrepareForDMA gave %u segments not adding up to %llu bytes", n,
		       (unsigned long long)in->len);
		cmd->CompleteDMA(kIODMACommandCompleteDMANoOptions);
		kr = tp_kr(e);
		goto fail;
	}
	out->handle = tp_dxp_slot_take(&iv->dma, in->len, &slot);
	out->len = in->len;
	out->nsegs = n;
	iv->dma_cmd[slot] = cmd;
	iv->dma_md[slot] = md;
	return kIOReturnSuccess;
fail:
	iv->dma.failed++;
	OSSafeReleaseNULL(cmd);
	OSSafeReleaseNULL(md);
	return kr;
}

static void dma_unmap_all(ThunderpassUserClient_IVars *iv)
{
	for (uint32_t s = 0; s < iv->dma.nslots && iv->dma.maps; s++)
		if (iv->dma_len[s])
			dma_release(iv, s);
}

/* ---- reset ---------------------------------------------------------------- */

static uint32_t reset_read_id(void *ctx)
{
	uint32_t v = 0xffffffff;

	((IOPCIDevice *)ctx)->ConfigurationRead32(0, &v);
	return v;
}

static void reset_sleep(void *ctx, uint32_t ms)
{
	(void)ctx;
	IOSleep(ms);
}

static kern_return_t uc_reset(ThunderpassUserClient_IVars *iv, uint64_t *how, uint64_t *waited_ms)
{
	const struct tp_duc_info *in = &iv->driver->ivars->info;
	uint32_t waited = 0;
	uint16_t cmd = 0;
	kern_return_t kr;

	if (!(in->flags & TP_DUC_INFO_NO_FLR)) {
		kr = iv->pci->Reset(kIOPCIDeviceResetTypeFunctionReset, 0);
		if (kr == kIOReturnSuccess &&
		    tp_dxp_reset_wait(iv->pci, reset_read_id, reset_sleep, TP_DXP_RESET_TIMEOUT_MS,
				      TP_DXP_RESET_POLL_MS, &waited) == TP_DXP_OK) {
			*how = TP_DUC_RESET_FLR;
			goto done;
		}
		TP_LOG("function reset: %#x, device %s; trying a hot reset", kr,
		       kr == kIOReturnSuccess ? "did not come back" : "refused");
	}
	kr = iv->pci->Reset(kIOPCIDeviceResetTypeHotReset, 0);
	if (kr != kIOReturnSuccess) {
		TP_LOG("hot reset failed: %#x", kr);
		return kr;
	}
	IOSleep(TP_DXP_RESET_SETTLE_MS);
	if (tp_dxp_reset_wait(iv->pci, reset_read_id, reset_sleep, TP_DXP_RESET_TIMEOUT_MS,
			      TP_DXP_RESET_POLL_MS, &waited) != TP_DXP_OK) {
		TP_LOG("device did not come back from a hot reset within %u ms", waited);
		return kIOReturnTimeout;
	}
	waited += TP_DXP_RESET_SETTLE_MS;
	*how = TP_DUC_RESET_HOT;
done:
	/* A reset clears Command: the session's decode and bus mastering. */
	iv->pci->ConfigurationRead16(TP_DXP_CFG_COMMAND, &cmd);
	iv->pci->ConfigurationWrite16(TP_DXP_CFG_COMMAND,
				      cmd | TP_DXP_CMD_MEMORY | TP_DXP_CMD_MASTER);
	*waited_ms = waited;
	return kIOReturnSuccess;
}

/* ---- config and BARs ------------------------------------------------------ */

static kern_return_t config_read(ThunderpassUserClient_IVars *iv, uint64_t off, uint64_t w,
				 uint64_t *out)
{
	const ThunderpassDriver_IVars *dv = iv->driver->ivars;
	uint32_t v32 = 0xffffffff;
	uint16_t v16 = 0xffff;
	uint8_t v8 = 0xff;

	if (!tp_dxp_cfg_access_ok(dv->info.cfg_size, off, w))
		return kIOReturnBadArgument;
	if (w == 1) {
		iv->pci->ConfigurationRead8(off, &v8);
		v32 = v8;
	} else if (w == 2) {
		iv->pci->ConfigurationRead16(off, &v16);
		v32 = v16;
	} else {
		iv->pci->ConfigurationRead32(off, &v32);
	}
	*out = tp_dxp_cfg_read_fixup(off, w, v32, dv->bar_flags);
	return kIOReturnSuccess;
}

static kern_return_t config_write(ThunderpassUserClient_IVars *iv, uint64_t off, uint64_t w,
				  uint64_t v)
{
	if (!tp_dxp_cfg_access_ok(iv->driver->ivars->info.cfg_size, off, w) || (v >> (8 * w)))
		return kIOReturnBadArgument;
	if (!tp_dxp_cfg_write_allowed(off, w)) {
		if (iv->refused_writes++ < 8)
			TP_LOG("config write of %llu bytes at %#llx refused", (unsigned long long)w,
			       (unsigned long long)off);
		return kIOReturnNotPermitted;
	}
	if (w == 1)
		iv->pci->ConfigurationWrite8(off, (uint8_t)v);
	else if (w == 2)
		iv->pci->ConfigurationWrite16(off, (uint16_t)v);
	else
		iv->pci->ConfigurationWrite32(off, (uint32_t)v);
	return kIOReturnSuccess;
}

/* The BAR an MMIO access may use: present, memory, inside. */
static const struct tp_duc_bar *mmio_bar(ThunderpassUserClient_IVars *iv, uint64_t bar,
					 uint64_t off, uint64_t w)
{
	const struct tp_duc_bar *b;

	if (bar >= TP_DUC_NUM_BARS)
		return nullptr;
	b = &iv->driver->ivars->bars[bar];
	if (!(b->flags & TP_DUC_BAR_PRESENT) || (b->flags & (TP_DUC_BAR_IO | TP_DUC_BAR_UPPER)))
		return nullptr;
	return tp_dxp_mmio_ok(b->size, off, w) ? b : nullptr;
}

static kern_return_t mmio_read(ThunderpassUserClient_IVars *iv, const uint64_t *s, uint64_t *out)
{
	const struct tp_duc_bar *b = mmio_bar(iv, s[0], s[1], s[2]);
	uint8_t i = b ? (uint8_t)b->memory_index : 0;
	uint64_t v64 = ~0ull;
	uint32_t v32 = ~0u;
	uint16_t v16 = 0xffff;
	uint8_t v8 = 0xff;

	if (!b)
		return kIOReturnBadArgument;
	switch (s[2]) {
	case 1: iv->pci->MemoryRead8(i, s[1], &v8); v64 = v8; break;
	case 2: iv->pci->MemoryRead16(i, s[1], &v16); v64 = v16; break;
	case 4: iv->pci->MemoryRead32(i, s[1], &v32); v64 = v32; break;
	default: iv->pci->MemoryRead64(i, s[1], &v64); break;
	}
	*out = v64;
	return kIOReturnSuccess;
}

static kern_return_t mmio_write(ThunderpassUserClient_IVars *iv, const uint64_t *s)
{
	const struct tp_duc_bar *b = mmio_bar(iv, s[0], s[1], s[2]);
	uint8_t i = b ? (uint8_t)b->memory_index : 0;

	if (!b || s[0] == TP_DUC_BAR_ROM || (s[2] < 8 && (s[3] >> (8 * s[2]))))
		return kIOReturnBadArgument;
	switch (s[2]) {
	case 1: iv->pci->MemoryWrite8(i, s[1], (uint8_t)s[3]); break;
	case 2: iv->pci->MemoryWrite16(i, s[1], (uint16_t)s[3]); break;
	case 4: iv->pci->MemoryWrite32(i, s[1], (uint32_t)s[3]); break;
	default: iv->pci->MemoryWrite64(i, s[1], s[3]); break;
	}
	return kIOReturnSuccess;
}

/* ---- the dispatcher ------------------------------------------------------- */

/* Exactly nin scalars in, nout out, and no structures. */
static bool scalars_only(const IOUserClientMethodArguments *a, uint32_t nin, uint32_t nout)
{
	return a->scalarInputCount == nin && (!nin || a->scalarInput) &&
	       a->scalarOutputCount == nout && (!nout || a->scalarOutput) && !a->structureInput &&
	       !a->structureInputDescriptor && !a->structureOutputDescriptor;
}

static bool struct_in(const IOUserClientMethodArguments *a, void *p, size_t n)
{
	if (!a->structureInput || a->structureInputDescriptor ||
	    a->structureInput->getLength() != n)
		return false;
	memcpy(p, a->structureInput->getBytesNoCopy(), n);
	return true;
}

static kern_return_t struct_out(IOUserClientMethodArguments *a, const void *p, size_t n)
{
	if (a->structureOutputDescriptor || a->structureOutputMaximumSize < n)
		return kIOReturnBadArgument;
	a->structureOutput = OSData::withBytes(p, n);
	return a->structureOutput ? kIOReturnSuccess : kIOReturnNoMemory;
}

kern_return_t ThunderpassUserClient::ExternalMethod(uint64_t selector,
						    IOUserClientMethodArguments *a,
						    const IOUserClientMethodDispatch *dispatch,
						    OSObject *target, void *reference)
{
	const ThunderpassDriver_IVars *dv;

	(void)dispatch;
	(void)target;
	(void)reference;
	if (!a || !ivars->session)
		return kIOReturnNotOpen;
	dv = ivars->driver->ivars;
	/* Only IRQ_ARM is asynchronous; a completion anywhere else would never
	 * be completed. */
	if ((a->completion != nullptr) != (selector == TP_DUC_IRQ_ARM))
		return kIOReturnBadArgument;
	switch (selector) {
	case TP_DUC_GET_INFO:
		if (a->scalarInputCount || a->scalarOutputCount || a->structureInput)
			return kIOReturnBadArgument;
		return struct_out(a, &dv->info, sizeof(dv->info));
	case TP_DUC_CONFIG_READ:
		if (!scalars_only(a, TP_DUC_CONFIG_READ_IN, TP_DUC_CONFIG_READ_OUT))
			return kIOReturnBadArgument;
		return config_read(ivars, a->scalarInput[0], a->scalarInput[1], &a->scalarOutput[0]);
	case TP_DUC_CONFIG_WRITE:
		if (!scalars_only(a, TP_DUC_CONFIG_WRITE_IN, 0))
			return kIOReturnBadArgument;
		return config_write(ivars, a->scalarInput[0], a->scalarInput[1], a->scalarInput[2]);
	case TP_DUC_BAR_INFO:
		if (a->scalarInputCount != TP_DUC_BAR_INFO_IN || !a->scalarInput ||
		    a->scalarOutputCount || a->structureInput ||
		    a->scalarInput[0] >= TP_DUC_NUM_BARS)
			return kIOReturnBadArgument;
		return struct_out(a, &dv->bars[a->scalarInput[0]], sizeof(dv->bars[0]));
	case TP_DUC_MMIO_READ:
		if (!scalars_only(a, TP_DUC_MMIO_READ_IN, TP_DUC_MMIO_READ_OUT))
			return kIOReturnBadArgument;
		return mmio_read(ivars, a->scalarInput, &a->scalarOutput[0]);
	case TP_DUC_MMIO_WRITE:
		if (!scalars_only(a, TP_DUC_MMIO_WRITE_IN, 0))
			return kIOReturnBadArgument;
		return mmio_write(ivars, a->scalarInput);
	case TP_DUC_DMA_MAP: {
		struct tp_duc_dma_map_in in;
		struct tp_duc_dma_map_out out;
		kern_return_t kr;

		if (a->scalarInputCount || a->scalarOutputCount || !struct_in(a, &in, sizeof(in)) ||
		    a->structureOutputMaximumSize < sizeof(out))
			return kIOReturnBadArgument;
		kr = dma_map(this, &in, &out);
		if (kr != kIOReturnSuccess)
			return kr;
		kr = struct_out(a, &out, sizeof(out));
		if (kr != kIOReturnSuccess) {
			/* The client never learns the handle: undo. */
			uint32_t slot;

			if (tp_dxp_slot_find(&ivars->dma, out.handle, &slot) == TP_DXP_OK)
				dma_release(ivars, slot);
		}
		return kr;
	}
	case TP_DUC_DMA_UNMAP: {
		uint32_t slot;
		enum tp_dxp_err e;

		if (!scalars_only(a, TP_DUC_DMA_UNMAP_IN, 0))
			return kIOReturnBadArgument;
		e = tp_dxp_slot_find(&ivars->dma, a->scalarInput[0], &slot);
		if (e == TP_DXP_OK)
			dma_release(ivars, slot);
		return tp_kr(e);
	}
	case TP_DUC_DMA_UNMAP_ALL:
		if (!scalars_only(a, 0, 0))
			return kIOReturnBadArgument;
		dma_unmap_all(ivars);
		return kIOReturnSuccess;
	case TP_DUC_DMA_STATS: {
		struct tp_duc_dma_stats st = {};

		if (a->scalarInputCount || a->scalarOutputCount || a->structureInput)
			return kIOReturnBadArgument;
		st.bytes = ivars->dma.bytes;
		st.maps = ivars->dma.maps;
		st.max_bytes = ivars->dma.max_bytes;
		st.max_maps = ivars->dma.max_maps;
		st.refused_caps = ivars->dma.refused_caps;
		st.failed = ivars->dma.failed;
		st.total_maps = ivars->dma.total_maps;
		return struct_out(a, &st, sizeof(st));
	}
	case TP_DUC_IRQ_SETUP:
		if (!scalars_only(a, TP_DUC_IRQ_SETUP_IN, TP_DUC_IRQ_SETUP_OUT))
			return kIOReturnBadArgument;
		return irq_setup(this, a->scalarInput[0], a->scalarInput[1], &a->scalarOutput[0]);
	case TP_DUC_IRQ_ARM:
		if (!scalars_only(a, 0, 0))
			return kIOReturnBadArgument;
		return irq_arm(this, a->completion);
	case TP_DUC_IRQ_TEARDOWN:
		if (!scalars_only(a, 0, 0))
			return kIOReturnBadArgument;
		irq_teardown(this);
		return kIOReturnSuccess;
	case TP_DUC_RESET:
		if (!scalars_only(a, 0, TP_DUC_RESET_OUT))
			return kIOReturnBadArgument;
		return uc_reset(ivars, &a->scalarOutput[0], &a->scalarOutput[1]);
	default:
		return kIOReturnUnsupported;
	}
}

kern_return_t IMPL(ThunderpassUserClient, CopyClientMemoryForType)
{
	const ThunderpassDriver_IVars *dv = ivars->driver->ivars;

	if (!memory || !options || !ivars->session)
		return kIOReturnBadArgument;
	*options = 0;
	if (type == TP_DUC_MEM_IRQ_PAGE) {
		if (!ivars->irq_buf)
			return kIOReturnNotReady;
		ivars->irq_buf->retain(); /* the caller consumes one reference */
		*memory = ivars->irq_buf;
		return kIOReturnSuccess;
	}
	if (type >= 6 || !(dv->bars[type].flags & TP_DUC_BAR_PRESENT) ||
	    (dv->bars[type].flags & (TP_DUC_BAR_IO | TP_DUC_BAR_UPPER)))
		return kIOReturnBadArgument;
	if (!ivars->bar_md[type]) {
		/* The opener (the driver) names the session. */
		kern_return_t kr = ivars->pci->_CopyDeviceMemoryWithIndex(
			dv->bars[type].memory_index, &ivars->bar_md[type], ivars->driver);

		if (kr != kIOReturnSuccess || !ivars->bar_md[type]) {
			TP_LOG("BAR%llu: _CopyDeviceMemoryWithIndex failed: %#x",
			       (unsigned long long)type, kr);
			ivars->bar_md[type] = nullptr;
			return kr != kIOReturnSuccess ? kr : kIOReturnNoMemory;
		}
	}
	ivars->bar_md[type]->retain();
	*memory = ivars->bar_md[type];
	return kIOReturnSuccess;
}

kern_return_t IMPL(ThunderpassUserClient, Stop)
{
	if (ivars->session) {
		uint16_t cmd = 0;

		/* The device stops mastering before its mappings go (a DMA to a
		 * torn-down mapping is a DART fault at best). */
		ivars->pci->ConfigurationRead16(TP_DXP_CFG_COMMAND, &cmd);
		ivars->pci->ConfigurationWrite16(TP_DXP_CFG_COMMAND,
						 cmd & (uint16_t)~TP_DXP_CMD_MASTER);
		irq_teardown(this);
		dma_unmap_all(ivars);
		for (uint32_t b = 0; b < 6; b++)
			OSSafeReleaseNULL(ivars->bar_md[b]);
		ivars->driver->CloseSession(this);
		ivars->session = false;
	}
	OSSafeReleaseNULL(ivars->irq_queue);
	dma_arrays_free(ivars);
	return Stop(provider, SUPERDISPATCH);
}
