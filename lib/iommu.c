/* SPDX-License-Identifier: MIT */
/* IOMMU models by name, and the DART model's defaults (docs/iommu.md). */
#include "iommu.h"

#include <errno.h>
#include <string.h>

#include <thunderpass/log.h>

void tp_dart_config_default(struct tp_dart_config *c)
{
	/*
	 * The aperture starts at 256 MiB so that no device address below it is
	 * ever handed out: a device that DMAs to a NULL or small garbage address
	 * faults instead of landing in guest memory. It ends at 4 GiB because
	 * the t8020/t6000 DARTs translate 32-bit input addresses (Linux
	 * apple-dart.c sets ias = 32 for them), which also keeps every device
	 * address usable by a device limited to 32-bit DMA.
	 */
	c->aperture_base = 0x10000000ull;
	c->aperture_size = 0x100000000ull - c->aperture_base;
	/* What a PCIDriverKit driver may keep mapped at once (DESIGN.md: about
	 * 1.5 GiB, about 64k mappings; past them the host can panic). */
	c->max_bytes = 3ull << 29;
	c->max_mappings = 65536;
}

int tp_iommu_create(const char *name, const char *who, struct tp_iommu **out)
{
	struct tp_dart_config c;

	if (name && !strcmp(name, "identity"))
		return tp_iommu_identity_create(who, out);
	if (name && !strcmp(name, "dart")) {
		tp_dart_config_default(&c);
		return tp_iommu_dart_create(who, &c, out);
	}
	tp_err(who, "unknown IOMMU model '%s' (identity, dart)", name ? name : "(null)");
	return -EINVAL;
}
