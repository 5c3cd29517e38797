/* SPDX-License-Identifier: MIT */
/*
 * Faults the model can be told to have (option fault=NAME), one for each way
 * passthrough of a real eGPU is seen to break, so that `thunderpass doctor`
 * and the tests can show each one caught at the right stage:
 *
 *   off-bus          the device fell off the bus: config space and every BAR
 *                    read all-ones, writes go nowhere (a Thunderbolt link that
 *                    dropped, a GPU that lost power).
 *   bars-unassigned  the host enumerated the device but gave its BARs no
 *                    address (common behind Thunderbolt when the bridge
 *                    windows are too small): the BAR registers' address bits
 *                    read 0 (their type bits stay, they are hardwired), and
 *                    MMIO reads all-ones.
 *   link-x1-gen1     the link trained at x1, 2.5 GT/s (a bad cable or dock).
 *   dma-broken       the copy engine's DMA never reaches memory: every job
 *                    that touches system memory ends with a fault at its first
 *                    system-memory address (error 1, 2 or 6, ERROR interrupt),
 *                    as when the host IOMMU blocks the device. Chosen over "never
 *                    completes" because a fault is what a misconfigured IOMMU
 *                    gives, and it keeps the interrupt path testable apart.
 *   no-irq           the engine finishes its jobs but never raises its
 *                    interrupt (no MSI/MSI-X edge, no INTx level).
 *   no-flr-return    after the first reset (the reset op or DevCtl Initiate
 *                    FLR) the device never comes back, as GB202 after an FLR:
 *                    a config read of the vendor id gives 0x0001 (CRS, with
 *                    CRS software visibility), every other read all-ones.
 *
 * BAR1 and BAR3 are shared memory the client maps; memory cannot read
 * all-ones on its own, so under off-bus and bars-unassigned they are not
 * offered for mapping and every access is trapped (and answered here).
 */
#include <errno.h>
#include <string.h>

#include <thunderpass/protocol.h>

#include "model.h"

static const struct {
	const char *name;
	enum model_fault fault;
} fault_names[] = {
	{ "none", MODEL_FAULT_NONE },
	{ "off-bus", MODEL_FAULT_OFF_BUS },
	{ "bars-unassigned", MODEL_FAULT_BARS_UNASSIGNED },
	{ "link-x1-gen1", MODEL_FAULT_LINK_X1_GEN1 },
	{ "dma-broken", MODEL_FAULT_DMA_BROKEN },
	{ "no-irq", MODEL_FAULT_NO_IRQ },
	{ "no-flr-return", MODEL_FAULT_NO_FLR_RETURN },
};

#define NFAULTS (sizeof(fault_names) / sizeof(fault_names[0]))

/* LinkSta of link-x1-gen1: speed 1 (2.5 GT/s), width 1, slot clock. */
#define LNKSTA_X1_GEN1 (1u | (1u << 4) | (1u << 12))
#define CFG_LNKSTA (MODEL_CAP_PCIE + 0x12)
/* CRS software visibility: the vendor id of a device not ready yet. */
#define VENDOR_CRS 0x0001u

int model_fault_parse(const char *name, enum model_fault *out)
{
	for (size_t i = 0; name && i < NFAULTS; i++) {
		if (strcmp(name, fault_names[i].name) == 0) {
			*out = fault_names[i].fault;
			return 0;
		}
	}
	return -EINVAL;
}

const char *model_fault_names(void)
{
	return "none, off-bus, bars-unassigned, link-x1-gen1, dma-broken, no-irq, "
	       "no-flr-return";
}

void model_fault_init(struct model *m)
{
	static const uint32_t bars[] = { 0x10, 0x14, 0x18, 0x1c, 0x20, 0x24, 0x30 };

	switch (m->fault) {
	case MODEL_FAULT_BARS_UNASSIGNED:
		/* The address bits are exactly the bits a write latches. */
		for (size_t b = 0; b < sizeof(bars) / sizeof(bars[0]); b++)
			for (uint32_t i = bars[b]; i < bars[b] + 4; i++)
				m->cfg_boot[i] &= (uint8_t)~m->cfg_wmask[i];
		break;
	case MODEL_FAULT_LINK_X1_GEN1:
		tp_le_put(m->cfg_boot + CFG_LNKSTA, 2, LNKSTA_X1_GEN1);
		break;
	default: break;
	}
	memcpy(m->cfg, m->cfg_boot, sizeof(m->cfg));
}

void model_fault_after_reset(struct model *m)
{
	if (m->fault == MODEL_FAULT_NO_FLR_RETURN)
		__atomic_store_n(&m->gone, 1, __ATOMIC_RELEASE);
}

static int fault_gone(struct model *m)
{
	return __atomic_load_n(&m->gone, __ATOMIC_ACQUIRE);
}

int model_fault_read(struct model *m, uint32_t index, uint64_t off, void *buf, uint32_t len)
{
	uint8_t *p = buf;

	switch (m->fault) {
	case MODEL_FAULT_OFF_BUS: break;
	case MODEL_FAULT_BARS_UNASSIGNED:
		/* Config space answers; the unrouted BARs do not. */
		if (index == TP_REGION_CONFIG)
			return 0;
		break;
	case MODEL_FAULT_NO_FLR_RETURN:
		if (!fault_gone(m))
			return 0;
		memset(buf, 0xff, len);
		if (index == TP_REGION_CONFIG)
			for (uint32_t i = 0; i < len; i++)
				if (off + i < 2)
					p[i] = (uint8_t)(VENDOR_CRS >> (8 * (off + i)));
		return 1;
	default: return 0;
	}
	memset(buf, 0xff, len);
	return 1;
}

int model_fault_writes_dropped(struct model *m, uint32_t index)
{
	switch (m->fault) {
	case MODEL_FAULT_OFF_BUS: return 1;
	case MODEL_FAULT_BARS_UNASSIGNED: return index != TP_REGION_CONFIG;
	case MODEL_FAULT_NO_FLR_RETURN: return fault_gone(m);
	default: return 0;
	}
}

int model_fault_mappable(const struct model *m)
{
	return m->fault != MODEL_FAULT_OFF_BUS && m->fault != MODEL_FAULT_BARS_UNASSIGNED;
}
