/* SPDX-License-Identifier: MIT */
/*
 * Capability chains: walk the function's standard (0x34) and extended
 * (0x100) chains defensively (the physical config is untrusted too: loops,
 * pointers into the header, overlapping capabilities), keep the capabilities
 * we know how to virtualize, hide the rest, and rewrite the next pointers so
 * the guest sees a clean chain.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <thunderpass/log.h>

#include "config.h"
#include "pci_regs.h"
#include "util.h"

#define MAX_STD_CAPS 48
#define MAX_EXT_CAPS ((TP_CFG_MAX - PCI_EXT_CAP_START) / 4)

struct cap {
	uint16_t off;
	uint16_t id;
	uint16_t extent; /* bytes up to the next capability (or the end of the space) */
	bool keep;
};

typedef unsigned (*cap_policy_fn)(struct tp_config *c, uint32_t p, uint32_t extent);

static void copy_phys(struct tp_config *c, uint32_t off, unsigned len)
{
	if (tp_range_ok(off, len, c->size))
		memcpy(c->virt + off, c->phys + off, len);
}

/* Read-only copy of the function's values. */
static void ro(struct tp_config *c, uint32_t off, unsigned len)
{
	copy_phys(c, off, len);
	tp_config_set(c, off, len, ~0u, 0, 0, 0);
}

/* Emulated, guest-writable, never reaching the function; starts as the
 * function's value. */
static void rw(struct tp_config *c, uint32_t off, unsigned len, uint32_t wmask)
{
	copy_phys(c, off, len);
	tp_config_set(c, off, len, ~0u, wmask, 0, 0);
}

/* Live read, writes dropped. */
static void live_ro(struct tp_config *c, uint32_t off, unsigned len)
{
	tp_config_set(c, off, len, 0, 0, 0, 0);
}

static unsigned policy_pm(struct tp_config *c, uint32_t p, uint32_t extent)
{
	ro(c, p + PCI_PM_PMC, 2);
	copy_phys(c, p + PCI_PM_CTRL, 2);
	/* Power state is the guest's illusion: a real GPU is kept in D0. */
	tp_config_set(c, p + PCI_PM_CTRL, 2, ~0u, PCI_PM_CTRL_STATE | PCI_PM_CTRL_PME_ENABLE,
		      PCI_PM_CTRL_PME_STATUS, 0);
	c->virt[p + PCI_PM_CTRL] &= (uint8_t)~PCI_PM_CTRL_STATE;
	c->virt[p + PCI_PM_CTRL + 1] &= (uint8_t)~(PCI_PM_CTRL_PME_ENABLE >> 8);
	ro(c, p + 6, 2);
	c->cap_pm = (uint8_t)p;
	return 8;
}

static unsigned policy_msi(struct tp_config *c, uint32_t p, uint32_t extent)
{
	uint16_t flags = (uint16_t)tp_le_get(c->phys + p + PCI_MSI_FLAGS, 2);
	bool is64 = flags & PCI_MSI_FLAGS_64BIT, pvm = flags & PCI_MSI_FLAGS_MASKBIT;
	unsigned vectors = 1u << TP_MIN((unsigned)(flags & PCI_MSI_FLAGS_QMASK) >> 1, 5u);
	uint32_t data = p + (is64 ? 0xc : 0x8);
	unsigned len = (unsigned)(data - p) + (pvm ? 0xc : 0x2);

	if (len > extent)
		return 0;
	/* The whole capability is the core's: the guest programs the client's
	 * MSI, the client hands us eventfds; the function never sees it. */
	tp_config_set(c, p + PCI_MSI_FLAGS, 2, ~0u, PCI_MSI_FLAGS_ENABLE | PCI_MSI_FLAGS_QSIZE,
		      0, 0);
	tp_le_put(c->virt + p + PCI_MSI_FLAGS, 2,
		  flags & ~(PCI_MSI_FLAGS_ENABLE | PCI_MSI_FLAGS_QSIZE));
	memset(c->virt + p + 4, 0, len - 4);
	rw(c, p + 4, 4, 0xfffffffc);
	if (is64)
		rw(c, p + 8, 4, ~0u);
	rw(c, data, 2, 0xffff);
	if (pvm) {
		ro(c, data + 2, 2);
		rw(c, data + 4, 4, vectors >= 32 ? ~0u : (1u << vectors) - 1);
		ro(c, data + 8, 4);
	}
	c->cap_msi = (uint8_t)p;
	return len;
}

static unsigned policy_msix(struct tp_config *c, uint32_t p, uint32_t extent)
{
	uint16_t flags = (uint16_t)tp_le_get(c->phys + p + PCI_MSIX_FLAGS, 2);

	if (extent < 12)
		return 0;
	/* Enable and function mask are the client's (it owns table and PBA). */
	tp_config_set(c, p + PCI_MSIX_FLAGS, 2, ~0u,
		      PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL, 0, 0);
	tp_le_put(c->virt + p + PCI_MSIX_FLAGS, 2, flags & PCI_MSIX_FLAGS_QSIZE);
	ro(c, p + PCI_MSIX_TABLE, 4);
	ro(c, p + PCI_MSIX_PBA, 4);
	c->cap_msix = (uint8_t)p;
	return 12;
}

static unsigned policy_pcie(struct tp_config *c, uint32_t p, uint32_t extent)
{
	uint16_t flags = (uint16_t)tp_le_get(c->phys + p + PCI_EXP_FLAGS, 2);
	unsigned len = (flags & PCI_EXP_FLAGS_VERS) >= 2 ? 0x3c : 0x24;

	if (len > extent)
		len = extent >= 0x24 ? 0x24 : 0;
	if (!len)
		return 0;
	ro(c, p + PCI_EXP_FLAGS, 2);
	ro(c, p + PCI_EXP_DEVCAP, 4);
	/* Payload sizes, relaxed ordering, FLR: the host's (and the DART's)
	 * set-up must not move under live mappings; the guest keeps a copy. */
	rw(c, p + PCI_EXP_DEVCTL, 2, 0xffff & ~PCI_EXP_DEVCTL_BCR_FLR);
	live_ro(c, p + PCI_EXP_DEVSTA, 2);
	ro(c, p + PCI_EXP_LNKCAP, 4);
	/* Link disable or retrain from a guest would drop a Thunderbolt link. */
	rw(c, p + PCI_EXP_LNKCTL, 2, 0xffff & ~(PCI_EXP_LNKCTL_LD | PCI_EXP_LNKCTL_RL));
	live_ro(c, p + PCI_EXP_LNKSTA, 2);
	for (uint32_t o = 0x14; o < 0x24; o += 4)
		ro(c, p + o, 4);
	if (len == 0x3c) {
		ro(c, p + PCI_EXP_DEVCAP2, 4);
		rw(c, p + PCI_EXP_DEVCTL2, 2, 0xffff);
		ro(c, p + PCI_EXP_DEVSTA2, 2);
		ro(c, p + PCI_EXP_LNKCAP2, 4);
		rw(c, p + PCI_EXP_LNKCTL2, 2, 0xffff);
		live_ro(c, p + PCI_EXP_LNKSTA2, 2);
		for (uint32_t o = 0x34; o < 0x3c; o += 4)
			ro(c, p + o, 4);
	}
	c->cap_pcie = (uint8_t)p;
	return len;
}

static unsigned policy_vendor(struct tp_config *c, uint32_t p, uint32_t extent)
{
	unsigned len = c->phys[p + 2];

	if (len < 3 || len > extent)
		len = TP_MIN(extent, 3u);
	ro(c, p + 2, 1);
	/* Vendor registers: readable as they are, never written by a guest. */
	for (unsigned o = 3; o < len; o++)
		live_ro(c, p + o, 1);
	return len;
}

static const struct {
	uint8_t id;
	cap_policy_fn policy;
} std_policies[] = {
	{ PCI_CAP_ID_PM, policy_pm },     { PCI_CAP_ID_MSI, policy_msi },
	{ PCI_CAP_ID_EXP, policy_pcie },  { PCI_CAP_ID_MSIX, policy_msix },
	{ PCI_CAP_ID_VNDR, policy_vendor },
};

static cap_policy_fn std_policy(uint8_t id)
{
	for (size_t i = 0; i < TP_ARRAY_SIZE(std_policies); i++)
		if (std_policies[i].id == id)
			return std_policies[i].policy;
	return NULL;
}

static int cmp_off(const void *a, const void *b)
{
	return (int)((const struct cap *)a)->off - (int)((const struct cap *)b)->off;
}

/* Each capability may extend to the next one in address order. */
static void set_extents(struct cap *caps, unsigned n, uint32_t end)
{
	struct cap sorted[MAX_EXT_CAPS];

	memcpy(sorted, caps, n * sizeof(*caps));
	qsort(sorted, n, sizeof(*sorted), cmp_off);
	for (unsigned i = 0; i < n; i++) {
		uint32_t next = i + 1 < n ? sorted[i + 1].off : end;
		for (unsigned j = 0; j < n; j++)
			if (caps[j].off == sorted[i].off)
				caps[j].extent = (uint16_t)(next - sorted[i].off);
	}
}

/* Hidden bytes read as zero and ignore writes. */
static void hide(struct tp_config *c, uint32_t off, uint32_t len)
{
	for (uint32_t i = 0; i < len; i++) {
		tp_config_set(c, off + i, 1, 0xff, 0, 0, 0);
		c->virt[off + i] = 0;
	}
}

static unsigned walk_std(struct tp_config *c, struct cap *caps)
{
	uint8_t seen[TP_CFG_STD] = { 0 };
	uint32_t p = c->phys[PCI_CAPABILITY_LIST] & 0xfc;
	unsigned n = 0;

	if (!(tp_le_get(c->phys + PCI_STATUS, 2) & PCI_STATUS_CAP_LIST))
		return 0;
	while (p) {
		if (p < 0x40 || p > TP_CFG_STD - 4 || seen[p] || n == MAX_STD_CAPS) {
			tp_warn(c->who, "capability chain broken at %#x; the rest is hidden", p);
			break;
		}
		seen[p] = 1;
		caps[n].off = (uint16_t)p;
		caps[n].id = c->phys[p];
		n++;
		p = c->phys[p + 1] & 0xfc;
	}
	set_extents(caps, n, TP_CFG_STD);
	return n;
}

static int build_std(struct tp_config *c)
{
	struct cap caps[MAX_STD_CAPS];
	unsigned n = walk_std(c, caps);
	uint32_t prev = PCI_CAPABILITY_LIST;

	c->virt[PCI_CAPABILITY_LIST] = 0;
	for (unsigned i = 0; i < n; i++) {
		cap_policy_fn fn = std_policy((uint8_t)caps[i].id);
		unsigned len;

		hide(c, caps[i].off, caps[i].extent);
		len = fn ? fn(c, caps[i].off, caps[i].extent) : 0;
		if (!len) {
			hide(c, caps[i].off, caps[i].extent);
			tp_dbg(c->who, "hiding capability %#x at %#x", caps[i].id, caps[i].off);
			continue;
		}
		/* Header: id and a rewritten next pointer, read-only. */
		tp_config_set(c, caps[i].off, 2, 0xffff, 0, 0, 0);
		c->virt[caps[i].off] = (uint8_t)caps[i].id;
		c->virt[caps[i].off + 1] = 0;
		c->virt[prev == PCI_CAPABILITY_LIST ? prev : prev + 1] = (uint8_t)caps[i].off;
		prev = caps[i].off;
	}
	if (c->virt[PCI_CAPABILITY_LIST])
		c->virt[PCI_STATUS] |= PCI_STATUS_CAP_LIST;
	else
		c->virt[PCI_STATUS] &= (uint8_t)~PCI_STATUS_CAP_LIST;
	return 0;
}

static bool ext_keep(uint16_t id)
{
	/* Serial number and vendor-specific: harmless to read. Everything else
	 * (AER, Resizable BAR, ATS, PASID, SR-IOV, L1 substates ...) is either
	 * the host's to drive or cannot be honoured behind a vfio-user client. */
	return id == PCI_EXT_CAP_ID_DSN || id == PCI_EXT_CAP_ID_VNDR;
}

static unsigned walk_ext(struct tp_config *c, struct cap *caps)
{
	uint8_t seen[TP_CFG_MAX / 4] = { 0 };
	uint32_t p = PCI_EXT_CAP_START;
	unsigned n = 0;

	while (p) {
		uint32_t h = tp_le_get(c->phys + p, 4);

		if (h == 0 || h == 0xffffffff)
			break;
		if (p < PCI_EXT_CAP_START || p > TP_CFG_MAX - 4 || seen[p / 4] ||
		    n == MAX_EXT_CAPS) {
			tp_warn(c->who, "extended capability chain broken at %#x; the rest is hidden",
				p);
			break;
		}
		seen[p / 4] = 1;
		caps[n].off = (uint16_t)p;
		caps[n].id = (uint16_t)(h & 0xffff);
		caps[n].keep = ext_keep(caps[n].id);
		n++;
		p = (h >> 20) & 0xffc;
	}
	set_extents(caps, n, TP_CFG_MAX);
	return n;
}

static int build_ext(struct tp_config *c)
{
	struct cap caps[MAX_EXT_CAPS];
	unsigned n = walk_ext(c, caps);
	uint32_t prev = 0;

	for (unsigned i = 0; i < n; i++) {
		uint32_t p = caps[i].off;
		uint32_t h = tp_le_get(c->phys + p, 4);

		hide(c, p, caps[i].extent);
		if (!caps[i].keep)
			continue;
		for (uint32_t o = 4; o < caps[i].extent; o++)
			tp_config_set(c, p + o, 1, caps[i].id == PCI_EXT_CAP_ID_DSN ? 0xff : 0, 0, 0, 0);
		if (caps[i].id == PCI_EXT_CAP_ID_DSN)
			memcpy(c->virt + p + 4, c->phys + p + 4, TP_MIN(caps[i].extent - 4u, 8u));
		tp_le_put(c->virt + p, 4, h & 0x000fffff);
		if (prev)
			tp_le_put(c->virt + prev, 4, tp_le_get(c->virt + prev, 4) | (p << 20));
		else
			c->ext_first = (uint16_t)p;
		prev = p;
	}
	/* 0x100 must hold a header: a null one pointing at the first kept cap. */
	if (c->ext_first != PCI_EXT_CAP_START) {
		tp_config_set(c, PCI_EXT_CAP_START, 4, ~0u, 0, 0, 0);
		tp_le_put(c->virt + PCI_EXT_CAP_START, 4, (uint32_t)c->ext_first << 20);
	}
	return 0;
}

int tp_capchain_build(struct tp_config *c)
{
	int rc = build_std(c);

	if (rc || c->size < TP_CFG_MAX)
		return rc;
	return build_ext(c);
}
