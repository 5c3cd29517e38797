/* SPDX-License-Identifier: MIT */
#include "quirks.h"

#include <stddef.h>

#include "util.h"

#define NVIDIA 0x10de

static const struct tp_quirk quirk_table[] = {
	{
		.vendor = NVIDIA, .device_lo = TP_ANY_DEVICE_LO, .device_hi = TP_ANY_DEVICE_HI,
		.max_chipset = 0x17f,
		.kind = TP_QUIRK_CONFIG_MIRROR, .region = 0, .offset = 0x88000, .size = 0x1000,
		.reason = "BAR0 0x88000 mirrors PCI config space (Turing to Ada); the driver "
			  "acknowledges MSI and reads capabilities there, so it must see the "
			  "virtualized config, not the function's",
		.source = "QEMU hw/vfio/pci-quirks.c (NVIDIA BAR0 0x88000 mirror quirk); "
			  "nouveau nvkm/subdev/pci (NV_PCI 0x088000)",
	},
	{
		/* Chipset unknown (BOOT_42 unreadable): trap the classic window anyway. */
		.vendor = NVIDIA, .device_lo = TP_ANY_DEVICE_LO, .device_hi = TP_ANY_DEVICE_HI,
		.min_chipset = 0x180,
		.kind = TP_QUIRK_CONFIG_MIRROR, .region = 0, .offset = 0x88000, .size = 0x1000,
		.reason = "the 0x88000 config mirror is kept trapped on Hopper and later too: "
			  "the thunderpass model GB202 serves it there, and a guest reading it "
			  "must see the virtualized config",
		.source = "thunderpass model (backends/model); DESIGN.md",
	},
	{
		.vendor = NVIDIA, .device_lo = TP_ANY_DEVICE_LO, .device_hi = TP_ANY_DEVICE_HI,
		.min_chipset = 0x180,
		.kind = TP_QUIRK_CONFIG_MIRROR, .region = 0, .offset = 0x92000, .size = 0x1000,
		.reason = "from GH100 on the config mirror moved to BAR0 0x92000",
		.source = "NVIDIA open-gpu-kernel-modules (NV_EP_PCFGM, Hopper+ dev_ep_*.h)",
	},
	{
		.vendor = NVIDIA, .device_lo = 0x2b85, .device_hi = 0x2b85,
		.kind = TP_QUIRK_NO_FLR,
		.reason = "GB202 (RTX 5090) never returns from a function-level reset; use a "
			  "secondary-bus (hot) reset and poll until the device answers",
		.source = "Linux drivers/pci/quirks.c quirk_no_flr (10de:2b85, 2b87, 2b8c)",
	},
	{
		.vendor = NVIDIA, .device_lo = 0x2b87, .device_hi = 0x2b87,
		.kind = TP_QUIRK_NO_FLR,
		.reason = "GB202 (RTX 5090 D) never returns from a function-level reset",
		.source = "Linux drivers/pci/quirks.c quirk_no_flr",
	},
	{
		.vendor = NVIDIA, .device_lo = 0x2b8c, .device_hi = 0x2b8c,
		.kind = TP_QUIRK_NO_FLR,
		.reason = "GB202 (RTX PRO 6000 class) never returns from a function-level reset",
		.source = "Linux drivers/pci/quirks.c quirk_no_flr",
	},
};

static int quirk_matches(const struct tp_quirk *q, uint16_t vendor, uint16_t device,
			 uint16_t chipset)
{
	if (q->vendor != vendor || device < q->device_lo || device > q->device_hi)
		return 0;
	if (!q->min_chipset && !q->max_chipset)
		return 1;
	if (!chipset)
		/* Unknown chipset: only the classic mirror (max-bounded entry) applies. */
		return q->max_chipset && !q->min_chipset;
	if (q->min_chipset && chipset < q->min_chipset)
		return 0;
	if (q->max_chipset && chipset > q->max_chipset)
		return 0;
	return 1;
}

const struct tp_quirk *tp_quirk_next(uint16_t vendor, uint16_t device, uint16_t chipset,
				     const struct tp_quirk *prev)
{
	size_t i = prev ? (size_t)(prev - quirk_table) + 1 : 0;

	for (; i < TP_ARRAY_SIZE(quirk_table); i++)
		if (quirk_matches(&quirk_table[i], vendor, device, chipset))
			return &quirk_table[i];
	return NULL;
}
