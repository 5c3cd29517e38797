/* SPDX-License-Identifier: MIT */
/*
 * Raw config space of the model GB202, and what a write to it does on real
 * hardware. Everything is driven by four per-byte tables built once:
 *   cfg_boot   the value after power-on and host enumeration (BARs assigned);
 *   cfg_wmask  bits that latch what is written (RW);
 *   cfg_w1c    bits a written 1 clears (RW1C status);
 *   cfg_keep   bits a function-level reset leaves alone (sticky and the
 *              link-related fields PCIe exempts from FLR).
 * Everything else is read-only. A few registers need more than masks (PMCSR,
 * DevCtl's Initiate FLR); cfg_write handles them after applying the masks.
 *
 * Register layouts are from the PCI Local Bus 3.0, PCI Power Management 1.2
 * and PCI Express Base 4.0-6.0 specifications; the values are chosen to be
 * plausible for a recent NVIDIA board, with the link trained to x4 8 GT/s as
 * behind a Thunderbolt 4 dock.
 */
#include <errno.h>
#include <string.h>

#include "model.h"

/* Standard header. */
#define CMD_WMASK 0x0547u    /* I/O, memory, bus master, parity, SERR#, INTx disable */
#define STATUS_CAP_LIST 0x0010u
#define STATUS_W1C 0xf900u   /* parity/abort/SERR error bits */
#define BAR_MEM_64 0x4u
#define BAR_MEM_PREFETCH 0x8u
#define ROM_ENABLE 0x1u

/* Capability offsets inside the caps. */
#define PM_PMCSR (MODEL_CAP_PM + 4)
#define PMCSR_NO_SOFT_RESET 0x0008u
#define PMCSR_STATE 0x0003u

#define PCIE_DEVCAP (MODEL_CAP_PCIE + 0x04)
#define PCIE_DEVCTL (MODEL_CAP_PCIE + 0x08)
#define PCIE_DEVSTA (MODEL_CAP_PCIE + 0x0a)
#define PCIE_LNKCAP (MODEL_CAP_PCIE + 0x0c)
#define PCIE_LNKCTL (MODEL_CAP_PCIE + 0x10)
#define PCIE_LNKSTA (MODEL_CAP_PCIE + 0x12)
#define PCIE_DEVCAP2 (MODEL_CAP_PCIE + 0x24)
#define PCIE_DEVCTL2 (MODEL_CAP_PCIE + 0x28)
#define PCIE_LNKCAP2 (MODEL_CAP_PCIE + 0x2c)
#define PCIE_LNKCTL2 (MODEL_CAP_PCIE + 0x30)
#define PCIE_LNKSTA2 (MODEL_CAP_PCIE + 0x32)
#define DEVCTL_INITIATE_FLR 0x8000u

/*
 * DevCap: MPS 256 B, 8-bit tags, L0s latency unlimited, L1 < 64 us,
 * role-based errors, captured slot power 75 W, FLR capable (GB202 advertises
 * FLR; the trouble with it is the host's, see DESIGN.md).
 */
#define DEVCAP_VALUE (0x1u | (1u << 5) | (7u << 6) | (6u << 9) | (1u << 15) | \
		      (75u << 18) | (1u << 28))
/* DevCtl reset value: relaxed ordering, no snoop, MRRS 512 B (spec defaults). */
#define DEVCTL_VALUE 0x2810u
/* Everything latches but Initiate FLR (handled apart) and Phantom Functions
 * Enable (we support none, so it is hardwired 0). */
#define DEVCTL_WMASK 0x7dffu
#define DEVCTL_KEEP 0x00e0u /* Max_Payload_Size survives FLR (PCIe 6.6.2) */
#define DEVSTA_W1C 0x000fu

/* LinkCap: 32 GT/s (5), x16, ASPM L1, L1 exit < 8 us, ASPM optionality. */
#define LNKCAP_VALUE (5u | (16u << 4) | (2u << 10) | (3u << 15) | (1u << 22))
/* LinkCtl: ASPM, RCB, common clock, extended synch, HW autonomous width
 * disable; all of them survive FLR (PCIe 6.6.2). */
#define LNKCTL_WMASK 0x02cbu
/* LinkSta: 8 GT/s (3), x4, slot clock: what a TB4 dock's tunnel trains to. */
#define LNKSTA_VALUE (3u | (4u << 4) | (1u << 12))
/* DevCap2: completion timeout ranges A-D and disable, LTR, 10-bit tag
 * completer and requester, extended Fmt field. */
#define DEVCAP2_VALUE (0xfu | (1u << 4) | (1u << 11) | (1u << 16) | (1u << 17) | \
		       (1u << 20))
#define DEVCTL2_WMASK 0x141fu
/* LinkCap2: supported speeds 2.5, 5, 8, 16 and 32 GT/s (bits 1-5). */
#define LNKCAP2_VALUE 0x3eu
/* LinkCtl2: target speed 32 GT/s; target speed, enter compliance and HW
 * autonomous speed disable are sticky. */
#define LNKCTL2_VALUE 0x0005u
#define LNKCTL2_WMASK 0x003fu
/* LinkSta2: 8 GT/s equalization complete, phases 1-3 successful; bit 5
 * (equalization request) is RW1C. */
#define LNKSTA2_VALUE 0x001eu
#define LNKSTA2_W1C 0x0020u

/* MSI: 64-bit address, one vector, no per-vector masking. */
#define MSI_CTRL_64BIT 0x0080u
#define MSI_CTRL_WMASK 0x0071u /* enable, multiple message enable */

/* MSI-X control: table size field (N-1), function mask and enable latch. */
#define MSIX_CTRL_WMASK 0xc000u

/* Vendor-specific capability: 20 bytes like NVIDIA's, an opaque body. */
#define VNDR_LEN 0x14u

/* Resizable BAR (PCIe 7.8.6): sizes as bit (log2(MiB) + 4) in the capability
 * register, as log2(MiB) in bits 13:8 of the control register. */
#define REBAR_MAX_MB (32u << 10)

static unsigned cfg_log2(uint64_t v)
{
	unsigned n = 0;

	while (v > 1) {
		v >>= 1;
		n++;
	}
	return n;
}

/* Define one register: its boot value and per-bit behaviour. */
static void cfg_reg(struct model *m, uint32_t off, unsigned len, uint32_t val, uint32_t wmask,
		    uint32_t w1c, uint32_t keep)
{
	tp_le_put(m->cfg_boot + off, len, val);
	tp_le_put(m->cfg_wmask + off, len, wmask);
	tp_le_put(m->cfg_w1c + off, len, w1c);
	tp_le_put(m->cfg_keep + off, len, keep);
}

static void cfg_ro(struct model *m, uint32_t off, unsigned len, uint32_t val)
{
	cfg_reg(m, off, len, val, 0, 0, 0);
}

/* A 64-bit prefetchable memory BAR at off/off+4: the address bits below the
 * size read 0 and ignore writes, which is what makes sizing work. */
static void cfg_bar64(struct model *m, uint32_t off, uint64_t addr, uint64_t size)
{
	uint64_t mask = ~(size - 1);

	cfg_reg(m, off, 4, (uint32_t)addr | BAR_MEM_64 | BAR_MEM_PREFETCH,
		(uint32_t)mask & ~0xfu, 0, 0);
	cfg_reg(m, off + 4, 4, (uint32_t)(addr >> 32), (uint32_t)(mask >> 32), 0, 0);
}

static void cfg_header(struct model *m)
{
	cfg_ro(m, 0x00, 2, MODEL_VENDOR);
	cfg_ro(m, 0x02, 2, MODEL_DEVICE);
	cfg_reg(m, 0x04, 2, 0, CMD_WMASK, 0, 0);
	cfg_reg(m, 0x06, 2, STATUS_CAP_LIST, 0, STATUS_W1C, 0);
	cfg_ro(m, 0x08, 4, (MODEL_CLASS << 8) | MODEL_REVISION);
	cfg_reg(m, 0x0c, 1, 0, 0xff, 0, 0); /* cache line size */
	/* 0x0d latency timer: hardwired 0 on PCI Express (PCIe 7.5.1.1.8), so
	 * it does not latch even though conventional PCI made it RW. */
	cfg_ro(m, 0x0e, 1, 0x00); /* header type 0, single function */

	/* BAR0: 32-bit non-prefetchable, 16 MiB. */
	cfg_reg(m, 0x10, 4, MODEL_BAR0_ADDR, ~(MODEL_BAR0_SIZE - 1u), 0, 0);
	cfg_bar64(m, 0x14, MODEL_BAR1_ADDR, m->vram.size);
	cfg_bar64(m, 0x1c, MODEL_BAR3_ADDR, MODEL_BAR3_SIZE);
	/* 0x24 BAR5, 0x28 CardBus CIS: absent, read 0. */
	cfg_ro(m, 0x2c, 2, MODEL_SUBSYS_VENDOR);
	cfg_ro(m, 0x2e, 2, MODEL_SUBSYS_DEVICE);
	/* Expansion ROM: address bits 31:17 (128 KiB) and the enable bit. */
	cfg_reg(m, 0x30, 4, MODEL_ROM_ADDR, ~(MODEL_ROM_SIZE - 1u) | ROM_ENABLE, 0, 0);
	cfg_ro(m, 0x34, 1, MODEL_CAP_PM);
	cfg_reg(m, 0x3c, 1, 0, 0xff, 0, 0); /* interrupt line: scratch for software */
	cfg_ro(m, 0x3d, 1, 1);              /* interrupt pin: INTA */
}

static void cfg_caps(struct model *m)
{
	uint32_t p;

	/* Power management 1.2 (version 3); D0 and D3hot only. No_Soft_Reset:
	 * D3hot -> D0 keeps the function's state. */
	p = MODEL_CAP_PM;
	cfg_ro(m, p, 2, 0x01u | (MODEL_CAP_MSI << 8));
	cfg_ro(m, p + 2, 2, 0x0003u);
	cfg_reg(m, PM_PMCSR, 2, PMCSR_NO_SOFT_RESET, PMCSR_STATE, 0, 0);

	p = MODEL_CAP_MSI;
	cfg_ro(m, p, 2, 0x05u | (MODEL_CAP_PCIE << 8));
	cfg_reg(m, p + 2, 2, MSI_CTRL_64BIT, MSI_CTRL_WMASK, 0, 0);
	cfg_reg(m, p + 4, 4, 0, 0xfffffffcu, 0, 0); /* address, DWORD aligned */
	cfg_reg(m, p + 8, 4, 0, 0xffffffffu, 0, 0); /* upper address */
	cfg_reg(m, p + 12, 2, 0, 0xffffu, 0, 0);    /* data */

	/* PCI Express capability version 2, endpoint (type 0). */
	p = MODEL_CAP_PCIE;
	cfg_ro(m, p, 2, 0x10u | (MODEL_CAP_MSIX << 8));
	cfg_ro(m, p + 2, 2, 0x0002u);
	cfg_ro(m, PCIE_DEVCAP, 4, DEVCAP_VALUE);
	cfg_reg(m, PCIE_DEVCTL, 2, DEVCTL_VALUE, DEVCTL_WMASK, 0, DEVCTL_KEEP);
	cfg_reg(m, PCIE_DEVSTA, 2, 0, 0, DEVSTA_W1C, 0);
	cfg_ro(m, PCIE_LNKCAP, 4, LNKCAP_VALUE);
	cfg_reg(m, PCIE_LNKCTL, 2, 0, LNKCTL_WMASK, 0, LNKCTL_WMASK);
	cfg_ro(m, PCIE_LNKSTA, 2, LNKSTA_VALUE);
	/* Slot and root registers: not a port, all 0. */
	cfg_ro(m, PCIE_DEVCAP2, 4, DEVCAP2_VALUE);
	cfg_reg(m, PCIE_DEVCTL2, 2, 0, DEVCTL2_WMASK, 0, 0);
	cfg_ro(m, PCIE_LNKCAP2, 4, LNKCAP2_VALUE);
	cfg_reg(m, PCIE_LNKCTL2, 2, LNKCTL2_VALUE, LNKCTL2_WMASK, 0, LNKCTL2_WMASK);
	cfg_reg(m, PCIE_LNKSTA2, 2, LNKSTA2_VALUE, 0, LNKSTA2_W1C, LNKSTA2_W1C);

	/* MSI-X: table size field N-1; table and PBA in BAR0 (BIR 0). */
	p = MODEL_CAP_MSIX;
	cfg_ro(m, p, 2, 0x11u | (MODEL_CAP_VNDR << 8));
	cfg_reg(m, p + 2, 2, MODEL_MSIX_VECTORS - 1, MSIX_CTRL_WMASK, 0, 0);
	cfg_ro(m, p + 4, 4, MODEL_MSIX_TABLE);
	cfg_ro(m, p + 8, 4, MODEL_MSIX_PBA);

	/* Vendor-specific: id 9, next 0 (end of chain), length, then a body
	 * whose meaning NVIDIA does not publish; we keep a version byte. */
	p = MODEL_CAP_VNDR;
	cfg_ro(m, p, 4, 0x09u | (0x00u << 8) | (VNDR_LEN << 16) | (0x01u << 24));
}

static void cfg_ext_caps(struct model *m)
{
	uint32_t cur_mb = (uint32_t)(m->vram.size >> 20);
	uint32_t min_mb = cur_mb < 256 ? cur_mb : 256;
	uint32_t sizes = 0;

	/* Supported sizes 256 MiB..32 GiB, as on RTX 5090 boards; a smaller
	 * configured aperture (vram=64M/128M) is added to the set so that the
	 * current size is always one the capability claims. */
	for (uint32_t mb = min_mb; mb <= REBAR_MAX_MB; mb <<= 1)
		sizes |= 1u << (cfg_log2(mb) + 4);

	/* Header: id 0x15, version 1, next 0. */
	cfg_ro(m, MODEL_ECAP_REBAR, 4, 0x15u | (1u << 16));
	cfg_ro(m, MODEL_ECAP_REBAR + 4, 4, sizes);
	/*
	 * Control: BAR index 1, one resizable BAR, current size. The size field
	 * is read-only here, unlike on hardware: the region size the core
	 * announced and the memory the client mapped cannot change under a
	 * connected client (vfio-user has no way to say a region grew), so the
	 * model offers a fixed aperture chosen with vram=.
	 */
	cfg_ro(m, MODEL_ECAP_REBAR + 8, 4, 1u | (1u << 5) | (cfg_log2(cur_mb) << 8));
}

void model_cfg_init(struct model *m)
{
	memset(m->cfg_boot, 0, sizeof(m->cfg_boot));
	memset(m->cfg_wmask, 0, sizeof(m->cfg_wmask));
	memset(m->cfg_w1c, 0, sizeof(m->cfg_w1c));
	memset(m->cfg_keep, 0, sizeof(m->cfg_keep));
	cfg_header(m);
	cfg_caps(m);
	cfg_ext_caps(m);
	memcpy(m->cfg, m->cfg_boot, sizeof(m->cfg));
}

int model_cfg_read(struct model *m, uint32_t off, void *buf, uint32_t len)
{
	if (!buf || !tp_range_ok(off, len, MODEL_CFG_SIZE))
		return -EINVAL;
	memcpy(buf, m->cfg + off, len);
	return 0;
}

static int cfg_touches(uint32_t off, uint32_t len, uint32_t byte)
{
	return byte >= off && byte - off < len;
}

int model_cfg_write(struct model *m, uint32_t off, const void *buf, uint32_t len)
{
	const uint8_t *src = buf;
	uint8_t old_state = m->cfg[PM_PMCSR] & PMCSR_STATE;

	if (!buf || !tp_range_ok(off, len, MODEL_CFG_SIZE))
		return -EINVAL;

	for (uint32_t i = 0; i < len; i++) {
		uint32_t at = off + i;
		uint8_t wm = m->cfg_wmask[at];
		uint8_t v = (uint8_t)((m->cfg[at] & ~wm) | (src[i] & wm));

		v &= (uint8_t)~(src[i] & m->cfg_w1c[at]);
		m->cfg[at] = v;
	}

	/* PCI PM 1.2 8.3.2: writing an unsupported state (D1, D2) completes
	 * but is discarded. */
	if (cfg_touches(off, len, PM_PMCSR)) {
		uint8_t st = m->cfg[PM_PMCSR] & PMCSR_STATE;

		if (st == 1 || st == 2)
			m->cfg[PM_PMCSR] = (uint8_t)((m->cfg[PM_PMCSR] & ~PMCSR_STATE) | old_state);
	}

	/* DevCtl bit 15, Initiate FLR: write-only, reads 0, resets the function. */
	if (cfg_touches(off, len, PCIE_DEVCTL + 1) &&
	    (src[PCIE_DEVCTL + 1 - off] & (DEVCTL_INITIATE_FLR >> 8)))
		model_flr(m);
	return 0;
}

/*
 * Function-level reset (PCIe 6.6.2): every register returns to its default
 * except sticky ones and the link fields the spec lists (MPS, ASPM, RCB,
 * common clock, ...). That includes the BARs and the ROM BAR, which go back
 * to 0 as on real devices (this is why Linux saves and restores config space
 * around an FLR); the reset op in model.c puts the host's addresses back the
 * way the host's PCI layer would.
 */
void model_cfg_flr(struct model *m)
{
	static const uint32_t bars[] = { 0x10, 0x14, 0x18, 0x1c, 0x20, 0x30 };

	for (uint32_t i = 0; i < MODEL_CFG_SIZE; i++)
		m->cfg[i] = (uint8_t)((m->cfg[i] & m->cfg_keep[i]) |
				      (m->cfg_boot[i] & ~m->cfg_keep[i]));
	for (size_t b = 0; b < sizeof(bars) / sizeof(bars[0]); b++)
		for (uint32_t i = bars[b]; i < bars[b] + 4; i++)
			m->cfg[i] &= (uint8_t)~m->cfg_wmask[i];
}
