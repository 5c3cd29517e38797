/* SPDX-License-Identifier: MIT */
/*
 * Device quirks, in one table keyed by vendor:device, each with the reason and
 * a public source beside it. Errors: none; lookups return NULL when nothing
 * applies.
 */
#ifndef TP_QUIRKS_H
#define TP_QUIRKS_H

#include <stdint.h>

enum tp_quirk_kind {
	/* A window of a BAR that mirrors config space: trapped and served from
	 * the virtualized config, kept out of any direct mapping. */
	TP_QUIRK_CONFIG_MIRROR,
	/* Function-level reset never completes: reset the bus instead. */
	TP_QUIRK_NO_FLR,
};

#define TP_ANY_DEVICE_LO 0x0000
#define TP_ANY_DEVICE_HI 0xffff

struct tp_quirk {
	uint16_t vendor;
	uint16_t device_lo, device_hi; /* inclusive range */
	uint16_t min_chipset;          /* NVIDIA: applies from this chipset on (0: all) */
	uint16_t max_chipset;          /* ... up to this one (0: no limit) */
	enum tp_quirk_kind kind;
	uint32_t region;               /* CONFIG_MIRROR: BAR index */
	uint64_t offset, size;         /* CONFIG_MIRROR: window in the BAR */
	const char *reason;
	const char *source;
};

/*
 * Iterates the quirks for vendor:device (chipset: NVIDIA's from PMC_BOOT_42,
 * 0 when unknown, which matches only entries without a chipset bound).
 * Pass prev = NULL to start.
 */
const struct tp_quirk *tp_quirk_next(uint16_t vendor, uint16_t device, uint16_t chipset,
				     const struct tp_quirk *prev);

#endif
