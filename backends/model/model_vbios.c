/* SPDX-License-Identifier: MIT */
/*
 * The model's VBIOS: one PCI expansion ROM image (PCI Local Bus 3.0, 6.3.1;
 * PCI Firmware 3.0, 5.1), built at creation. It carries no real VBIOS tables
 * (no BIT, no devinit scripts); it is just valid enough that ROM walkers
 * (Linux's pci_get_rom_size, nouveau's PROM shadow, firmware) accept it and
 * find the chip and a version string.
 *
 * Layout of the image (VBIOS_IMAGE_LEN bytes):
 *   0x00  55 aa, length in 512-byte units
 *   0x03  x86 init entry: a far return (see vbios_build)
 *   0x18  offset of the PCI Data Structure
 *   0x40  "PCIR" data structure, PCI 2.2 layout (length 0x18, revision 0)
 *   0x60  NUL-terminated version string
 *   last  checksum byte: the image's bytes sum to 0 (mod 256)
 *
 * The image is 4 KiB and the rest of the 128 KiB ROM reads 0xff, like the
 * erased part of a flash chip: real boards carry a few images in a larger
 * part and walkers stop at the image whose indicator says "last". Filling all
 * 128 KiB would only make every walker checksum 124 KiB of padding.
 */
#include <string.h>

#include "model.h"

#define VBIOS_IMAGE_LEN 4096u
#define VBIOS_PCIR_OFF 0x40u
#define VBIOS_VERSION_OFF 0x60u

/* PCI Data Structure fields (offsets within it). */
#define PCIR_VENDOR 0x04u
#define PCIR_DEVICE 0x06u
#define PCIR_DEVLIST 0x08u
#define PCIR_LENGTH 0x0au
#define PCIR_REVISION 0x0cu
#define PCIR_CLASS 0x0du
#define PCIR_IMAGE_LEN 0x10u
#define PCIR_CODE_REV 0x12u
#define PCIR_CODE_TYPE 0x14u
#define PCIR_INDICATOR 0x15u
#define PCIR_SIZE 0x18u

_Static_assert(VBIOS_VERSION_OFF + sizeof(MODEL_VBIOS_VERSION) < VBIOS_IMAGE_LEN - 1,
	       "the version string must fit before the checksum byte");
_Static_assert(VBIOS_IMAGE_LEN % 512 == 0 && VBIOS_IMAGE_LEN <= MODEL_ROM_SIZE,
	       "a ROM image is a whole number of 512-byte blocks within the ROM");

#define PCIR_CODE_X86 0x00u
#define PCIR_LAST_IMAGE 0x80u

static void vbios_pcir(uint8_t *p)
{
	memcpy(p, "PCIR", 4);
	tp_le_put(p + PCIR_VENDOR, 2, MODEL_VENDOR);
	tp_le_put(p + PCIR_DEVICE, 2, MODEL_DEVICE);
	tp_le_put(p + PCIR_DEVLIST, 2, 0);
	tp_le_put(p + PCIR_LENGTH, 2, PCIR_SIZE);
	p[PCIR_REVISION] = 0; /* the PCI 2.2 structure, the one of length 0x18 */
	/* Class code in config-space order: interface, subclass, base class. */
	tp_le_put(p + PCIR_CLASS, 3, MODEL_CLASS);
	tp_le_put(p + PCIR_IMAGE_LEN, 2, VBIOS_IMAGE_LEN / 512);
	tp_le_put(p + PCIR_CODE_REV, 2, 0x0001);
	p[PCIR_CODE_TYPE] = PCIR_CODE_X86;
	p[PCIR_INDICATOR] = PCIR_LAST_IMAGE;
}

size_t model_vbios_build(uint8_t *rom, size_t size)
{
	uint8_t sum = 0;

	if (!rom)
		return 0;
	memset(rom, 0xff, size);
	if (size < VBIOS_IMAGE_LEN)
		return 0;

	memset(rom, 0, VBIOS_IMAGE_LEN);
	rom[0] = 0x55;
	rom[1] = 0xaa;
	rom[2] = VBIOS_IMAGE_LEN / 512;
	/*
	 * An x86 guest's BIOS (SeaBIOS) far-calls offset 3 of a VGA option ROM
	 * it loads. A RETF (0xcb) there returns at once, so a guest that runs
	 * this ROM carries on without a video BIOS instead of executing data.
	 */
	rom[3] = 0xcb;
	tp_le_put(rom + 0x18, 2, VBIOS_PCIR_OFF);
	vbios_pcir(rom + VBIOS_PCIR_OFF);
	memcpy(rom + VBIOS_VERSION_OFF, MODEL_VBIOS_VERSION, sizeof(MODEL_VBIOS_VERSION));

	for (size_t i = 0; i < VBIOS_IMAGE_LEN - 1; i++)
		sum = (uint8_t)(sum + rom[i]);
	rom[VBIOS_IMAGE_LEN - 1] = (uint8_t)(0x100u - sum);
	return VBIOS_IMAGE_LEN;
}
