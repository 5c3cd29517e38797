/* SPDX-License-Identifier: MIT */
/*
 * Config-space virtualization. Every bit of the guest's view is either
 * emulated (kept in `virt`, QEMU style: a per-byte mask of emulated bits) or
 * read live from the physical function through the backend. Writes reach the
 * physical function only for the bits in `ptw` (the pass-through write mask);
 * every other guest write lands in the emulated copy (bits in `wmask`) or is
 * dropped and counted.
 *
 * What is emulated and why:
 *  - BARs and the ROM BAR: addresses belong to the guest; the physical
 *    function keeps the addresses its host gave it. Sizing works as on
 *    hardware (write all-ones, read back the size mask).
 *  - Capability pointers: the chain is walked and rebuilt with only the
 *    capabilities we support; hidden ones read as zero.
 *  - MSI and MSI-X capabilities: owned by the core (interrupts go through the
 *    client's eventfds), never written to the function.
 *  - PCIe Device/Link Control (and their "2" twins), power-management state:
 *    a guest must not change payload sizes, ASPM or power state of a device
 *    that the host (and, on macOS, the DART) has set up.
 *  - Status writes, BIST, identity fields: read-only to the guest.
 * Command-register bits the function needs (memory/IO decode, bus master,
 * INTx disable, parity/SERR) are passed through.
 *
 * Errors: -errno; the backend logs its own failures.
 */
#ifndef TP_CONFIG_H
#define TP_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include <thunderpass/backend.h>

#define TP_CFG_MAX 4096u
#define TP_CFG_STD 256u
#define TP_NUM_BARS 6

struct tp_config {
	const char *who;
	struct tp_backend *be;
	uint32_t size; /* 256 or 4096 */

	uint8_t phys[TP_CFG_MAX];  /* the function's config at init/reset */
	uint8_t virt[TP_CFG_MAX];  /* guest view of emulated bits */
	uint8_t emu[TP_CFG_MAX];   /* 1: bit served from virt */
	uint8_t wmask[TP_CFG_MAX]; /* emulated bits the guest may write */
	uint8_t w1c[TP_CFG_MAX];   /* emulated bits a guest write of 1 clears */
	uint8_t ptw[TP_CFG_MAX];   /* physical bits the guest may write */
	uint8_t reset_virt[TP_CFG_MAX]; /* virt after reset */

	uint64_t bar_size[TP_NUM_BARS + 1]; /* BAR0-5, ROM at [6] */
	bool bar_is_64[TP_NUM_BARS];
	bool bar_is_io[TP_NUM_BARS];
	bool bar_prefetch[TP_NUM_BARS];

	/* Offsets of the capabilities the core owns (0: absent). */
	uint8_t cap_pm, cap_msi, cap_msix, cap_pcie;
	uint16_t ext_first; /* first kept extended capability */

	uint64_t filtered_writes; /* guest writes dropped, in bytes */
};

/*
 * Reads the function's config space through the backend and builds the guest
 * view. region_size[i] are the sizes of BAR0-5 and the ROM (region 6) that the
 * backend reported: they, not the BAR registers, say which BARs exist.
 */
int tp_config_init(struct tp_config *c, struct tp_backend *be, const char *who,
		   uint32_t cfg_size, const uint64_t region_size[TP_NUM_BARS + 1]);

/* Back to the state after init (guest BAR addresses 0, MSI/MSI-X off). */
int tp_config_reset(struct tp_config *c);

/* Guest accesses of any length within the config size. */
int tp_config_read(struct tp_config *c, uint32_t off, void *buf, uint32_t len);
int tp_config_write(struct tp_config *c, uint32_t off, const void *buf, uint32_t len);

/* The guest view of one byte/word/dword at off (emulated bits only, no I/O). */
uint32_t tp_config_virt(const struct tp_config *c, uint32_t off, unsigned len);

/* State the interrupt code needs. */
bool tp_config_msi_enabled(const struct tp_config *c);
bool tp_config_msix_enabled(const struct tp_config *c);

/* Internal to config.c / capchain.c: mark policy for a byte range. */
void tp_config_set(struct tp_config *c, uint32_t off, unsigned len, uint32_t emu,
		   uint32_t wmask, uint32_t w1c, uint32_t ptw);
/* capchain.c: walk, filter and rebuild the standard and extended chains. */
int tp_capchain_build(struct tp_config *c);

#endif
