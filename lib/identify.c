/* SPDX-License-Identifier: MIT */
/*
 * NVIDIA GPU identification: PMC_BOOT_0 / PMC_BOOT_42 to a chip name, and the
 * PCI device id to a marketing name. Pure functions over tables; no I/O.
 *
 * Register layout (facts from NVIDIA open-gpu-kernel-modules,
 * src/common/inc/swref/published/nv_ref.h, and nouveau's
 * nvkm/engine/device/base.c):
 *   BOOT_0  (BAR0 + 0x000): minor rev 3:0, major rev 7:4, architecture bit 5
 *           at bit 8, implementation 23:20, architecture bits 4:0 at 28:24.
 *           nouveau: chipset = (boot0 & 0x1ff00000) >> 20, revision = boot0 & 0xff.
 *   BOOT_42 (BAR0 + 0xa00): minor extended rev 11:8, minor rev 15:12, major
 *           rev 19:16, implementation 23:20, architecture 29:24; CHIP_ID is
 *           the whole of 29:20, i.e. architecture << 4 | implementation.
 *
 * Revision naming: NVIDIA names silicon steppings A0, A1, B0 ... and the
 * hardware stores the stepping letter in the major nibble as the hex digit
 * itself (0xa = A, 0xb = B); nouveau prints the byte as "a1". So the name is
 * the two nibbles as uppercase hex digits: major 0xa minor 1 -> "A1", 0xb0 ->
 * "B0". A major nibble below 0xa is not a stepping letter and comes out as a
 * digit ("01"), which is still what nouveau's hex byte shows, uppercased.
 */
#include "thunderpass/identify.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define NV_OFF_BUS		0xffffffffu
#define NV_PRI_ERR_MASK		0xffff0000u
#define NV_PRI_ERR_VALUE	0xbadf0000u

struct nv_chip {
	uint16_t chipset;
	const char *name;
};

/*
 * Chipset -> chip name. Sources, per family (nouveau base.c, the
 * nvkm_device_ctor chipset switch and the nvXXX_chipset .name strings):
 *   Turing    0x16x: TU102/104/106/117/116 (nv162..nv168_chipset)
 *   Ampere    0x17x: GA100 (nv170, behind NvEnableUnsupportedChipsets),
 *             GA102/103/104/106/107 (nv172..nv177_chipset)
 *   Hopper    0x18x: GH100 (card_type GH100 for chipset & 0x1f0 == 0x180;
 *             NV_PMC_BOOT_42_ARCHITECTURE_GH100 = 0x18 in nv_ref.h)
 *   Ada       0x19x: AD102/103/104/106/107 (nv192..nv197_chipset)
 *   Blackwell 0x1ax: GB100/GB102 (nv1a0/nv1a2_chipset, "add support for GB10x")
 *             0x1bx: GB202/203/205/206/207 (nv1b2..nv1b7_chipset, "add
 *             support for GB20x", 2025; ARCHITECTURE_GB200 = 0x1b in nv_ref.h)
 */
static const struct nv_chip nv_chips[] = {
	{ 0x162, "TU102" }, { 0x164, "TU104" }, { 0x166, "TU106" },
	{ 0x167, "TU117" }, { 0x168, "TU116" },
	{ 0x170, "GA100" }, { 0x172, "GA102" }, { 0x173, "GA103" },
	{ 0x174, "GA104" }, { 0x176, "GA106" }, { 0x177, "GA107" },
	{ 0x180, "GH100" },
	{ 0x192, "AD102" }, { 0x193, "AD103" }, { 0x194, "AD104" },
	{ 0x196, "AD106" }, { 0x197, "AD107" },
	{ 0x1a0, "GB100" }, { 0x1a2, "GB102" },
	{ 0x1b2, "GB202" }, { 0x1b3, "GB203" }, { 0x1b5, "GB205" },
	{ 0x1b6, "GB206" }, { 0x1b7, "GB207" },
};

/*
 * Architecture from chipset & 0x1f0 (the architecture field), as nouveau's
 * card_type switch and nv_ref.h's NV_PMC_BOOT_42_ARCHITECTURE_* (TU100 0x16,
 * GA100 0x17, GH100 0x18, AD100 0x19, GB100 0x1a, GB200 0x1b) have it.
 * Here .chipset holds the architecture base, architecture << 4.
 */
static const struct nv_chip nv_archs[] = {
	{ 0x160, "Turing" },
	{ 0x170, "Ampere" },
	{ 0x180, "Hopper" },
	{ 0x190, "Ada" },
	{ 0x1a0, "Blackwell" },
	{ 0x1b0, "Blackwell" },
};

struct nv_family {
	uint16_t first;
	uint16_t last;
	const char *name;
};

/*
 * PCI device id -> marketing name. First match wins, so single ids come
 * before the ranges that hold them. Names are NVIDIA's, from the "Compatible
 * GPUs" table of open-gpu-kernel-modules' README.md (tag 595.45.04), less the
 * "NVIDIA " prefix; 0x2330 is named as in the PCI ID database. The GB202
 * range 0x2b80-0x2bff is the block the PCI ID database and NVIDIA's list put
 * GB202 boards in (GeForce RTX 50 and RTX PRO Blackwell parts).
 */
static const struct nv_family nv_families[] = {
	/* Turing */
	{ 0x1e02, 0x1e02, "TITAN RTX" },
	{ 0x1e04, 0x1e04, "GeForce RTX 2080 Ti" },
	{ 0x1e07, 0x1e07, "GeForce RTX 2080 Ti" },
	{ 0x1e82, 0x1e82, "GeForce RTX 2080" },
	{ 0x1e84, 0x1e84, "GeForce RTX 2070 SUPER" },
	{ 0x1e87, 0x1e87, "GeForce RTX 2080" },
	{ 0x1f02, 0x1f02, "GeForce RTX 2070" },
	{ 0x1f08, 0x1f08, "GeForce RTX 2060" },
	{ 0x1f82, 0x1f82, "GeForce GTX 1650" },
	{ 0x2182, 0x2182, "GeForce GTX 1660 Ti" },
	/* Ampere */
	{ 0x20b0, 0x20b0, "A100-SXM4-40GB" },
	{ 0x20b2, 0x20b2, "A100-SXM4-80GB" },
	{ 0x20b5, 0x20b5, "A100 80GB PCIe" },
	{ 0x20f1, 0x20f1, "A100-PCIE-40GB" },
	{ 0x2203, 0x2203, "GeForce RTX 3090 Ti" },
	{ 0x2204, 0x2204, "GeForce RTX 3090" },
	{ 0x2206, 0x2206, "GeForce RTX 3080" },
	{ 0x2208, 0x2208, "GeForce RTX 3080 Ti" },
	{ 0x2230, 0x2230, "RTX A6000" },
	{ 0x2231, 0x2231, "RTX A5000" },
	{ 0x2235, 0x2235, "A40" },
	{ 0x2236, 0x2236, "A10" },
	{ 0x2484, 0x2484, "GeForce RTX 3070" },
	{ 0x2486, 0x2486, "GeForce RTX 3060 Ti" },
	{ 0x2487, 0x2487, "GeForce RTX 3060" },
	{ 0x2504, 0x2504, "GeForce RTX 3060" },
	{ 0x2507, 0x2507, "GeForce RTX 3050" },
	/* Hopper */
	{ 0x2321, 0x2321, "H100 NVL" },
	{ 0x2330, 0x2330, "H100 SXM5 80GB" },
	{ 0x2331, 0x2331, "H100 PCIe" },
	{ 0x2335, 0x2335, "H200" },
	/* Ada */
	{ 0x2684, 0x2684, "GeForce RTX 4090" },
	{ 0x2685, 0x2685, "GeForce RTX 4090 D" },
	{ 0x26b1, 0x26b1, "RTX 6000 Ada Generation" },
	{ 0x26b5, 0x26b5, "L40" },
	{ 0x26b9, 0x26b9, "L40S" },
	{ 0x2702, 0x2702, "GeForce RTX 4080 SUPER" },
	{ 0x2704, 0x2704, "GeForce RTX 4080" },
	{ 0x2705, 0x2705, "GeForce RTX 4070 Ti SUPER" },
	{ 0x2782, 0x2782, "GeForce RTX 4070 Ti" },
	{ 0x2783, 0x2783, "GeForce RTX 4070 SUPER" },
	{ 0x2786, 0x2786, "GeForce RTX 4070" },
	{ 0x27b8, 0x27b8, "L4" },
	{ 0x2803, 0x2803, "GeForce RTX 4060 Ti" },
	{ 0x2805, 0x2805, "GeForce RTX 4060 Ti" },
	{ 0x2882, 0x2882, "GeForce RTX 4060" },
	/* Blackwell */
	{ 0x2901, 0x2901, "B200" },
	{ 0x2b85, 0x2b85, "GeForce RTX 5090" },
	{ 0x2b87, 0x2b87, "GeForce RTX 5090 D" },
	{ 0x2b8c, 0x2b8c, "GeForce RTX 5090 D v2" },
	{ 0x2bb1, 0x2bb1, "RTX PRO 6000 Blackwell Workstation Edition" },
	{ 0x2bb3, 0x2bb3, "RTX PRO 5000 Blackwell" },
	{ 0x2bb4, 0x2bb4, "RTX PRO 6000 Blackwell Max-Q Workstation Edition" },
	{ 0x2bb5, 0x2bb5, "RTX PRO 6000 Blackwell Server Edition" },
	{ 0x2b80, 0x2bff, "GB202 (RTX 50 series / RTX PRO)" },
	{ 0x2c02, 0x2c02, "GeForce RTX 5080" },
	{ 0x2c05, 0x2c05, "GeForce RTX 5070 Ti" },
	{ 0x2d04, 0x2d04, "GeForce RTX 5060 Ti" },
	{ 0x2d05, 0x2d05, "GeForce RTX 5060" },
	{ 0x2f04, 0x2f04, "GeForce RTX 5070" },
};

#define NV_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static const char *nv_chip_lookup(uint32_t chipset)
{
	for (size_t i = 0; i < NV_ARRAY_SIZE(nv_chips); i++)
		if (nv_chips[i].chipset == chipset)
			return nv_chips[i].name;
	return NULL;
}

static const char *nv_arch_lookup(uint32_t chipset)
{
	for (size_t i = 0; i < NV_ARRAY_SIZE(nv_archs); i++)
		if (nv_archs[i].chipset == (chipset & 0x3f0))
			return nv_archs[i].name;
	return NULL;
}

static const char *nv_family_lookup(uint16_t device)
{
	/* 0 is "not given", never a real id: no match even inside a range. */
	if (device == 0)
		return NULL;
	for (size_t i = 0; i < NV_ARRAY_SIZE(nv_families); i++)
		if (device >= nv_families[i].first && device <= nv_families[i].last)
			return nv_families[i].name;
	return NULL;
}

/* Bounded copy that always terminates; the tables fit, this is a backstop. */
static void nv_copy(char *dst, size_t len, const char *src)
{
	size_t n = strlen(src);

	if (n >= len)
		n = len - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static bool nv_is_pri_error(uint32_t v)
{
	return (v & NV_PRI_ERR_MASK) == NV_PRI_ERR_VALUE;
}

static void nv_format_rev(unsigned int major, unsigned int minor, char out[4])
{
	static const char hex[] = "0123456789ABCDEF";

	out[0] = hex[major & 0xf];
	out[1] = hex[minor & 0xf];
	out[2] = '\0';
}

/*
 * BOOT_0's chipset: nouveau's bits 28:20, plus architecture bit 5, which
 * nv_ref.h places at bit 8 (ARCHITECTURE_1). Every chip so far has it clear;
 * folding it in keeps a future architecture >= 0x20 from aliasing onto one of
 * ours.
 */
static uint32_t nv_boot0_chipset(uint32_t boot0)
{
	return ((boot0 & 0x1ff00000u) >> 20) | (((boot0 >> 8) & 1u) << 9);
}

/* BOOT_42's CHIP_ID, bits 29:20 (architecture 29:24, implementation 23:20). */
static uint32_t nv_boot42_chipset(uint32_t boot42)
{
	return (boot42 >> 20) & 0x3ffu;
}

int tp_nv_identify(uint32_t boot0, uint32_t boot42, uint16_t pci_device,
		   struct tp_nv_ident *out)
{
	const char *name;

	if (!out)
		return -EINVAL;

	memset(out, 0, sizeof(*out));
	out->boot0 = boot0;
	out->boot42 = boot42;

	/*
	 * The device id comes from config space, which can still answer (or be
	 * cached) when BAR0 does not: name the board in every state.
	 */
	name = nv_family_lookup(pci_device);
	if (name)
		nv_copy(out->family, sizeof(out->family), name);

	/* An all-ones read of either register: the link is gone, nothing else counts. */
	if (boot0 == NV_OFF_BUS || boot42 == NV_OFF_BUS) {
		out->state = TP_NV_OFF_BUS;
		return 0;
	}
	/* PCIe answered but the GPU's internal register bus did not. */
	if (nv_is_pri_error(boot0) || nv_is_pri_error(boot42)) {
		out->state = TP_NV_BUS_ERROR;
		return 0;
	}
	if (boot0 == 0 && boot42 == 0) {
		out->state = TP_NV_UNKNOWN;
		return 0;
	}

	/* BOOT_42 wins where given: it is what NVIDIA's own driver keys on. */
	if (boot42 != 0) {
		out->chipset = nv_boot42_chipset(boot42);
		nv_format_rev((boot42 >> 16) & 0xf, (boot42 >> 12) & 0xf, out->rev);
	} else {
		out->chipset = nv_boot0_chipset(boot0);
		nv_format_rev((boot0 >> 4) & 0xf, boot0 & 0xf, out->rev);
	}

	/* Name the architecture even for a chip we do not list (a new die). */
	name = nv_arch_lookup(out->chipset);
	if (name)
		nv_copy(out->arch, sizeof(out->arch), name);

	name = nv_chip_lookup(out->chipset);
	if (!name) {
		out->state = TP_NV_UNKNOWN;
		return 0;
	}
	nv_copy(out->chip, sizeof(out->chip), name);
	out->state = TP_NV_OK;
	return 0;
}

/*
 * Like snprintf into buf, but 0 / -errno: -ENOSPC when the line did not fit
 * (buf still holds a NUL-terminated prefix, so a caller may print it anyway).
 */
static int nv_finish(int n, size_t len)
{
	if (n < 0)
		return -EINVAL;
	return (size_t)n >= len ? -ENOSPC : 0;
}

int tp_nv_describe(const struct tp_nv_ident *id, char *buf, size_t len)
{
	const char *fam_open = "", *fam_close = "";
	int n;

	if (!id || !buf || len == 0)
		return -EINVAL;
	buf[0] = '\0';

	if (id->family[0]) {
		fam_open = " [";
		fam_close = "]";
	}

	switch (id->state) {
	case TP_NV_OK:
		n = snprintf(buf, len, "%s (%s) rev %s, chipset 0x%03x%s%s%s",
			     id->chip, id->arch, id->rev, (unsigned int)id->chipset,
			     fam_open, id->family, fam_close);
		break;
	case TP_NV_OFF_BUS:
		n = snprintf(buf, len,
			     "fell off the bus (0xffffffff): the device is not "
			     "responding; check the link/dock and power");
		break;
	case TP_NV_BUS_ERROR: {
		/* Name the register that carried the error code. */
		int is0 = nv_is_pri_error(id->boot0);

		n = snprintf(buf, len,
			     "register-bus (PRI) error (%s 0x%08x): the link is up "
			     "but the GPU's internal registers did not answer; "
			     "it may be in reset, powered down or hung",
			     is0 ? "BOOT_0" : "BOOT_42",
			     (unsigned int)(is0 ? id->boot0 : id->boot42));
		break;
	}
	case TP_NV_UNKNOWN:
		if (id->boot0 == 0 && id->boot42 == 0)
			n = snprintf(buf, len,
				     "no identity (BOOT_0 reads 0x00000000): not an "
				     "NVIDIA GPU register block, or BAR0 not mapped%s%s%s",
				     fam_open, id->family, fam_close);
		else
			n = snprintf(buf, len,
				     "unknown chipset 0x%03x%s%s%s rev %s "
				     "(BOOT_0 0x%08x, BOOT_42 0x%08x)%s%s%s",
				     (unsigned int)id->chipset,
				     id->arch[0] ? " (" : "", id->arch,
				     id->arch[0] ? ")" : "", id->rev,
				     (unsigned int)id->boot0,
				     (unsigned int)id->boot42,
				     fam_open, id->family, fam_close);
		break;
	default:
		return -EINVAL;
	}
	return nv_finish(n, len);
}
