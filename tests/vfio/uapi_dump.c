/* SPDX-License-Identifier: MIT */
/*
 * Prints the iommufd ABI the vfio backend relies on: every ioctl number,
 * flag, struct size and field offset, one per line. Built twice:
 *   - by meson (tp-uapi-dump): from backends/vfio/vfio_uapi.h with its own
 *     definitions forced (TP_VFIO_UAPI_OWN), what the backend is built with
 *     on hosts whose headers predate iommufd;
 *   - by tests/guest/vfio.sh --api iommufd (-DTP_UAPI_KERNEL): from the uapi
 *     headers of the kernel the test boots (tests/guest/kernel.sh).
 * vfio.sh fails when the two outputs differ.
 */
#include <stddef.h>
#include <stdio.h>

#ifdef TP_UAPI_KERNEL
#include <linux/iommufd.h>
#include <linux/vfio.h>
#else
#define TP_VFIO_UAPI_OWN 1
#include "vfio_uapi.h"
#endif

#define NUM(x) printf("%-36s %#llx\n", #x, (unsigned long long)(x))
#define SIZE(s) printf("%-36s %zu\n", "sizeof " #s, sizeof(struct s))
#define FIELD(s, f) \
	printf("%-36s %zu %zu\n", #s "." #f, offsetof(struct s, f), sizeof(((struct s *)0)->f))

int main(void)
{
	NUM(IOMMU_IOAS_ALLOC);
	NUM(IOMMU_IOAS_IOVA_RANGES);
	NUM(IOMMU_IOAS_MAP);
	NUM(IOMMU_IOAS_UNMAP);
	NUM(IOMMU_IOAS_MAP_FIXED_IOVA);
	NUM(IOMMU_IOAS_MAP_WRITEABLE);
	NUM(IOMMU_IOAS_MAP_READABLE);
	NUM(VFIO_DEVICE_BIND_IOMMUFD);
	NUM(VFIO_DEVICE_ATTACH_IOMMUFD_PT);
	NUM(VFIO_PCI_HOT_RESET_FLAG_DEV_ID);
	NUM(VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED);
	NUM((unsigned)VFIO_PCI_DEVID_NOT_OWNED);
	SIZE(iommu_ioas_alloc);
	FIELD(iommu_ioas_alloc, size);
	FIELD(iommu_ioas_alloc, flags);
	FIELD(iommu_ioas_alloc, out_ioas_id);
	SIZE(iommu_iova_range);
	FIELD(iommu_iova_range, start);
	FIELD(iommu_iova_range, last);
	SIZE(iommu_ioas_iova_ranges);
	FIELD(iommu_ioas_iova_ranges, size);
	FIELD(iommu_ioas_iova_ranges, ioas_id);
	FIELD(iommu_ioas_iova_ranges, num_iovas);
	FIELD(iommu_ioas_iova_ranges, allowed_iovas);
	FIELD(iommu_ioas_iova_ranges, out_iova_alignment);
	SIZE(iommu_ioas_map);
	FIELD(iommu_ioas_map, size);
	FIELD(iommu_ioas_map, flags);
	FIELD(iommu_ioas_map, ioas_id);
	FIELD(iommu_ioas_map, user_va);
	FIELD(iommu_ioas_map, length);
	FIELD(iommu_ioas_map, iova);
	SIZE(iommu_ioas_unmap);
	FIELD(iommu_ioas_unmap, size);
	FIELD(iommu_ioas_unmap, ioas_id);
	FIELD(iommu_ioas_unmap, iova);
	FIELD(iommu_ioas_unmap, length);
	SIZE(vfio_device_bind_iommufd);
	FIELD(vfio_device_bind_iommufd, argsz);
	FIELD(vfio_device_bind_iommufd, flags);
	FIELD(vfio_device_bind_iommufd, iommufd);
	FIELD(vfio_device_bind_iommufd, out_devid);
	FIELD(vfio_device_attach_iommufd_pt, argsz);
	FIELD(vfio_device_attach_iommufd_pt, flags);
	FIELD(vfio_device_attach_iommufd_pt, pt_id);
	FIELD(vfio_pci_dependent_device, group_id);
	FIELD(vfio_pci_hot_reset_info, flags);
	FIELD(vfio_pci_hot_reset, count);
	return 0;
}
