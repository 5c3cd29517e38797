/* SPDX-License-Identifier: MIT */
/*
 * ThunderpassDriver: matches, identifies, and lends the function to one
 * ThunderpassUserClient at a time. Kept thin on purpose: every decision is in
 * TPDextPolicy.h (tested on Linux against a stand-in), every call here is one
 * PCIDriverKit call with its result checked.
 *
 * Not yet run on real hardware: written against Apple's PCIDriverKit
 * documentation and headers, reviewed line by line (docs/macos.md).
 */
#include <DriverKit/DriverKit.h>
#include <DriverKit/IOLib.h>
#include <DriverKit/IOUserClient.h>
#include <DriverKit/OSCollections.h>
#include <PCIDriverKit/PCIDriverKit.h>

#include "ThunderpassDriver.h"
#include "ThunderpassUserClient.h"
#include "TPDriverPrivate.h"

/* PCI capability ids (PCI Local Bus spec), config offsets. */
#define CAP_ID_PM 0x01u
#define CAP_ID_MSI 0x05u
#define CAP_ID_PCIE 0x10u
#define CAP_ID_MSIX 0x11u
#define CFG_VENDOR 0x00u
#define CFG_CLASS_REV 0x08u
#define CFG_HEADER 0x0eu
#define CFG_SUBSYS 0x2cu
#define CLASS_DISPLAY 0x03u

bool ThunderpassDriver::init()
{
	if (!super::init())
		return false;
	ivars = IONewZero(ThunderpassDriver_IVars, 1);
	return ivars != nullptr;
}

void ThunderpassDriver::free()
{
	if (ivars)
		OSSafeReleaseNULL(ivars->pci);
	IOSafeDeleteNULL(ivars, ThunderpassDriver_IVars, 1);
	super::free();
}

/* GetBARInfo's type as our flags. The enum's numeric values are Apple's;
 * only the names are relied on. */
static uint32_t bar_flags_of(uint8_t type)
{
	switch (type) {
	case kPCIBARTypeIO: return TP_DUC_BAR_PRESENT | TP_DUC_BAR_IO;
	case kPCIBARTypeM32: return TP_DUC_BAR_PRESENT;
	case kPCIBARTypeM32PF: return TP_DUC_BAR_PRESENT | TP_DUC_BAR_PREFETCH;
	case kPCIBARTypeM64: return TP_DUC_BAR_PRESENT | TP_DUC_BAR_MEM64;
	case kPCIBARTypeM64PF: return TP_DUC_BAR_PRESENT | TP_DUC_BAR_MEM64 | TP_DUC_BAR_PREFETCH;
	default: return 0;
	}
}

static uint16_t find_cap(IOPCIDevice *pci, uint32_t id)
{
	uint64_t off = 0;

	if (pci->FindPCICapability(id, 0, &off) != kIOReturnSuccess || off < 0x40 || off > 0xfc)
		return 0;
	return (uint16_t)off;
}

/* Everything GET_INFO and BAR_INFO answer, read once with the device open. */
static kern_return_t identify(ThunderpassDriver_IVars *iv)
{
	IOPCIDevice *pci = iv->pci;
	struct tp_duc_info *in = &iv->info;
	uint32_t id = 0xffffffff, cr = 0xffffffff, ss = 0xffffffff;
	uint16_t ctrl = 0;
	uint8_t hdr = 0xff;
	kern_return_t kr;

	pci->ConfigurationRead32(CFG_VENDOR, &id);
	if (!tp_dxp_dev_back(id)) {
		TP_LOG("function does not answer config reads (id %#x): not attaching", id);
		return kIOReturnNoDevice;
	}
	pci->ConfigurationRead32(CFG_CLASS_REV, &cr);
	pci->ConfigurationRead32(CFG_SUBSYS, &ss);
	pci->ConfigurationRead8(CFG_HEADER, &hdr);
	if ((cr >> 24) != CLASS_DISPLAY || (hdr & 0x7f) != 0) {
		/* The personality matches display class; this is the second
		 * lock on the door: never take a bridge or the audio function. */
		TP_LOG("class %#x header %#x is not a display endpoint: not attaching", cr >> 8, hdr);
		return kIOReturnUnsupported;
	}
	in->magic = TP_DUC_MAGIC;
	in->abi = TP_DUC_ABI;
	in->vendor = (uint16_t)id;
	in->device = (uint16_t)(id >> 16);
	in->subsys_vendor = (uint16_t)ss;
	in->subsys_device = (uint16_t)(ss >> 16);
	in->class_rev = cr;
	in->header_type = hdr;
	kr = pci->GetBusDeviceFunction(&in->bus, &in->dev, &in->fn);
	if (kr != kIOReturnSuccess)
		return kr;
	in->cap_pm = find_cap(pci, CAP_ID_PM);
	in->cap_msi = find_cap(pci, CAP_ID_MSI);
	in->cap_msix = find_cap(pci, CAP_ID_MSIX);
	in->cap_pcie = find_cap(pci, CAP_ID_PCIE);
	if (in->cap_msi) {
		pci->ConfigurationRead16(in->cap_msi + 2, &ctrl);
		in->msi_vectors = tp_dxp_msi_vectors(ctrl);
	}
	if (in->cap_msix) {
		pci->ConfigurationRead16(in->cap_msix + 2, &ctrl);
		in->msix_vectors = tp_dxp_msix_vectors(ctrl);
	}
	in->cfg_size = in->cap_pcie ? 4096 : 256;
	in->flags = (in->cap_pcie ? TP_DUC_INFO_PCIE : 0) |
		    (tp_dxp_no_flr(in->vendor, in->device) ? TP_DUC_INFO_NO_FLR : 0);
	in->dma_page = TP_DUC_PAGE;
	in->dma_max_segs = TP_DUC_MAX_SEGS;
	in->dma_max_bytes = TP_DUC_MAX_DMA_BYTES;
	in->dma_max_maps = TP_DUC_MAX_DMA_MAPS;
	in->irq_max_vectors = TP_DUC_MAX_VECTORS;

	for (uint32_t b = 0; b < TP_DUC_NUM_BARS; b++) {
		struct tp_duc_bar *bar = &iv->bars[b];
		uint8_t index = 0, type = 0;
		uint64_t size = 0;

		bar->bar = b;
		if (b > 0 && b < 6 && (iv->bars[b - 1].flags & TP_DUC_BAR_MEM64) &&
		    !(iv->bars[b - 1].flags & TP_DUC_BAR_UPPER)) {
			bar->flags = TP_DUC_BAR_UPPER;
			continue;
		}
		/* kPCIMemoryRangeBAR0..5 are 0..5; the ROM has its own name. */
		if (pci->GetBARInfo(b < 6 ? (uint8_t)b : (uint8_t)kPCIMemoryRangeExpansionROM,
				    &index, &size, &type) != kIOReturnSuccess || !size)
			continue;
		bar->flags = b < 6 ? bar_flags_of(type) : TP_DUC_BAR_PRESENT;
		bar->size = size;
		bar->memory_index = index;
		TP_LOG("BAR%u: %llu bytes, flags %#x, memory index %u", b,
		       (unsigned long long)size, bar->flags, index);
	}
	for (uint32_t b = 0; b < 6; b++)
		iv->bar_flags[b] = iv->bars[b].flags;
	TP_LOG("%02x:%02x.%u %04x:%04x class %06x: ready (MSI %u, MSI-X %u vectors%s)", in->bus,
	       in->dev, in->fn, in->vendor, in->device, cr >> 8, in->msi_vectors, in->msix_vectors,
	       (in->flags & TP_DUC_INFO_NO_FLR) ? ", no FLR: hot reset only" : "");
	return kIOReturnSuccess;
}

kern_return_t IMPL(ThunderpassDriver, Start)
{
	kern_return_t kr = Start(provider, SUPERDISPATCH);

	if (kr != kIOReturnSuccess)
		return kr;
	/* On a failure below we only return the error: the system does not
	 * call Stop for a service whose Start failed; free() drops pci. */
	ivars->pci = OSDynamicCast(IOPCIDevice, provider);
	if (!ivars->pci)
		return kIOReturnNoDevice;
	ivars->pci->retain();
	/*
	 * Config space and GetBARInfo need an open session. Open only to
	 * identify, then close: Close also clears bus master and memory
	 * enable, so an idle function sits quiet until a client comes.
	 */
	kr = ivars->pci->Open(this, 0);
	if (kr != kIOReturnSuccess) {
		TP_LOG("Open for identification failed: %#x", kr);
		return kr;
	}
	kr = identify(ivars);
	ivars->pci->Close(this, 0);
	if (kr != kIOReturnSuccess)
		return kr;
	/* The client finds us by this name (darwin_uc.h). */
	kr = SetName(TP_DUC_SERVICE_NAME);
	if (kr == kIOReturnSuccess)
		kr = RegisterService();
	if (kr != kIOReturnSuccess)
		TP_LOG("cannot publish the service: %#x", kr);
	return kr;
}

kern_return_t IMPL(ThunderpassDriver, Stop)
{
	/* A user client stops before its provider; if one is somehow still
	 * the owner, its Stop could no longer reach us: close here. */
	if (ivars->owner && ivars->pci) {
		TP_LOG("stopping with a session open: closing the function");
		ivars->pci->Close(this, 0);
		ivars->owner = nullptr;
	}
	return Stop(provider, SUPERDISPATCH);
}

kern_return_t IMPL(ThunderpassDriver, NewUserClient)
{
	IOService *svc = nullptr;
	kern_return_t kr;

	if (type != TP_DUC_CLIENT_TYPE)
		return kIOReturnBadArgument;
	/* One session at a time: a second thunderpass gets "busy" at open
	 * instead of two processes fighting over one device. */
	if (ivars->owner)
		return kIOReturnExclusiveAccess;
	kr = Create(this, "UserClientProperties", &svc);
	if (kr != kIOReturnSuccess)
		return kr;
	*userClient = OSDynamicCast(IOUserClient, svc);
	if (!*userClient) {
		svc->release();
		return kIOReturnError;
	}
	return kIOReturnSuccess;
}

kern_return_t ThunderpassDriver::OpenSession(IOService *client)
{
	uint16_t cmd = 0;
	kern_return_t kr;

	if (ivars->owner)
		return kIOReturnExclusiveAccess;
	kr = ivars->pci->Open(this, 0);
	if (kr != kIOReturnSuccess) {
		TP_LOG("Open failed: %#x", kr);
		return kr;
	}
	/* Decode and bus mastering on for the session; the guest's Command
	 * writes pass through (TPDextPolicy.h) from here on. */
	ivars->pci->ConfigurationRead16(TP_DXP_CFG_COMMAND, &cmd);
	ivars->pci->ConfigurationWrite16(TP_DXP_CFG_COMMAND,
					 cmd | TP_DXP_CMD_MEMORY | TP_DXP_CMD_MASTER);
	ivars->owner = client;
	return kIOReturnSuccess;
}

void ThunderpassDriver::CloseSession(IOService *client)
{
	uint16_t cmd = 0;

	if (!ivars->owner || ivars->owner != client)
		return;
	/* Close clears both bits as documented; clearing them first makes the
	 * order explicit: no DMA, no decode, then the session ends. */
	ivars->pci->ConfigurationRead16(TP_DXP_CFG_COMMAND, &cmd);
	ivars->pci->ConfigurationWrite16(TP_DXP_CFG_COMMAND,
					 cmd & (uint16_t)~(TP_DXP_CMD_MEMORY | TP_DXP_CMD_MASTER));
	ivars->pci->Close(this, 0);
	ivars->owner = nullptr;
}
