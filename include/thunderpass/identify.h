/* SPDX-License-Identifier: MIT */
/*
 * NVIDIA GPU identification from PMC_BOOT_0 (BAR0 + 0x0) and PMC_BOOT_42
 * (BAR0 + 0xa00), and the marketing family from the PCI device id.
 *
 * Sources (facts, not code): nouveau's nvkm/engine/device/base.c (chipset =
 * (boot0 & 0x1ff00000) >> 20, revision = boot0 & 0xff); NVIDIA's open-gpu-kernel-
 * modules (PMC_BOOT_42: architecture bits 29:24, implementation 23:20,
 * revision 19:16 major / 15:12 minor); the PCI ID database for device ids.
 *
 * Errors: functions return 0 or a negative errno; they never log.
 */
#ifndef THUNDERPASS_IDENTIFY_H
#define THUNDERPASS_IDENTIFY_H

#include <stddef.h>
#include <stdint.h>

enum tp_nv_state {
	TP_NV_OK = 0,       /* a known chip */
	TP_NV_UNKNOWN,      /* a sane value naming no chip we know */
	TP_NV_OFF_BUS,      /* 0xffffffff: the device fell off the bus */
	TP_NV_BUS_ERROR,    /* 0xbadf....: a register-bus (PRI) error */
};

struct tp_nv_ident {
	enum tp_nv_state state;
	uint32_t boot0;
	uint32_t boot42;    /* 0 when not given */
	uint32_t chipset;   /* e.g. 0x1b2 */
	char chip[16];      /* "GB202" */
	char arch[16];      /* "Blackwell" */
	char rev[4];        /* "A1": major as a letter, minor as a digit */
	char family[64];    /* "GeForce RTX 5090" from the device id, "" if unknown */
};

/*
 * Decode. boot42 == 0 means "not read"; pci_device == 0 means unknown.
 * Where BOOT_0 and BOOT_42 disagree, BOOT_42 wins (what NVIDIA's own driver
 * uses) and both are kept in the result. Returns -EINVAL on a NULL out.
 */
int tp_nv_identify(uint32_t boot0, uint32_t boot42, uint16_t pci_device,
		   struct tp_nv_ident *out);

/*
 * One human line, e.g. "GB202 (Blackwell) rev A1, chipset 0x1b2 [GeForce RTX
 * 5090]", or what is wrong with the device. Returns -EINVAL on NULL or len 0,
 * -ENOSPC when the line was cut short (buf still holds a terminated prefix).
 */
int tp_nv_describe(const struct tp_nv_ident *id, char *buf, size_t len);

#endif
