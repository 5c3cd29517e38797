/* SPDX-License-Identifier: MIT */
/*
 * The kernel ABI of the iommufd path (Linux >= 6.6): /dev/iommu's IOAS
 * commands and the vfio device cdev's bind/attach, for hosts whose headers
 * predate them. Debian bookworm's linux-libc-dev (6.1) has no
 * <linux/iommufd.h> and its <linux/vfio.h> no VFIO_DEVICE_BIND_IOMMUFD, yet
 * the server built there must run on a newer kernel. Where the system
 * headers have them they are used; otherwise the definitions below describe
 * the same ABI (include/uapi/linux/iommufd.h and vfio.h of Linux 6.6+: fixed
 * by the kernel's no-regressions rule, every struct led by its own size).
 * tests/guest/kernel.sh compiles tests/vfio/uapi_check.c against the test
 * kernel's own uapi headers and checks every number and offset here.
 */
#ifndef TP_BACKEND_VFIO_UAPI_H
#define TP_BACKEND_VFIO_UAPI_H

#include <stdint.h>
#include <sys/ioctl.h>

#include <linux/types.h>
#include <linux/vfio.h>

/* TP_VFIO_UAPI_OWN: the definitions below even where the system has its own
 * (tests/vfio/uapi_dump.c checks them against a kernel's headers). */
#if defined(__has_include) && !defined(TP_VFIO_UAPI_OWN)
#if __has_include(<linux/iommufd.h>)
#include <linux/iommufd.h>
#define TP_HAVE_SYSTEM_IOMMUFD_H 1
#endif
#endif

#ifndef TP_HAVE_SYSTEM_IOMMUFD_H
/* /dev/iommu: ioctl type ';', commands from 0x80, each argument led by its size. */
#define IOMMUFD_TYPE (';')

struct iommu_destroy {
	__u32 size;
	__u32 id;
};
#define IOMMU_DESTROY _IO(IOMMUFD_TYPE, 0x80)

struct iommu_ioas_alloc {
	__u32 size;
	__u32 flags;
	__u32 out_ioas_id;
};
#define IOMMU_IOAS_ALLOC _IO(IOMMUFD_TYPE, 0x81)

struct iommu_iova_range {
	__aligned_u64 start;
	__aligned_u64 last;
};

struct iommu_ioas_iova_ranges {
	__u32 size;
	__u32 ioas_id;
	__u32 num_iovas;
	__u32 __reserved;
	__aligned_u64 allowed_iovas;
	__aligned_u64 out_iova_alignment;
};
#define IOMMU_IOAS_IOVA_RANGES _IO(IOMMUFD_TYPE, 0x84)

enum iommufd_ioas_map_flags {
	IOMMU_IOAS_MAP_FIXED_IOVA = 1 << 0,
	IOMMU_IOAS_MAP_WRITEABLE = 1 << 1,
	IOMMU_IOAS_MAP_READABLE = 1 << 2,
};

struct iommu_ioas_map {
	__u32 size;
	__u32 flags;
	__u32 ioas_id;
	__u32 __reserved;
	__aligned_u64 user_va;
	__aligned_u64 length;
	__aligned_u64 iova;
};
#define IOMMU_IOAS_MAP _IO(IOMMUFD_TYPE, 0x85)

struct iommu_ioas_unmap {
	__u32 size;
	__u32 ioas_id;
	__aligned_u64 iova;
	__aligned_u64 length;
};
#define IOMMU_IOAS_UNMAP _IO(IOMMUFD_TYPE, 0x86)
#endif /* !TP_HAVE_SYSTEM_IOMMUFD_H */

/* The vfio device cdev (/dev/vfio/devices/vfioN): VFIO_BASE + 18 and + 19. */
#ifndef VFIO_DEVICE_BIND_IOMMUFD
struct vfio_device_bind_iommufd {
	__u32 argsz;
	__u32 flags;
	__s32 iommufd;
	__u32 out_devid;
};
#define VFIO_DEVICE_BIND_IOMMUFD _IO(VFIO_TYPE, VFIO_BASE + 18)

struct vfio_device_attach_iommufd_pt {
	__u32 argsz;
	__u32 flags;
	__u32 pt_id;
};
#define VFIO_DEVICE_ATTACH_IOMMUFD_PT _IO(VFIO_TYPE, VFIO_BASE + 19)
#endif

/*
 * Hot reset through a cdev (Linux 6.6): the INFO answer names devids, not
 * groups, and says whether this iommufd owns every affected function.
 * struct vfio_pci_dependent_device's first word is a group id or a devid;
 * 6.1's header calls it group_id (and so does 6.6's union).
 */
#ifndef VFIO_PCI_HOT_RESET_FLAG_DEV_ID
#define VFIO_PCI_HOT_RESET_FLAG_DEV_ID (1 << 0)
#define VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED (1 << 1)
#endif
#ifndef VFIO_PCI_DEVID_NOT_OWNED
#define VFIO_PCI_DEVID_OWNED 0
#define VFIO_PCI_DEVID_NOT_OWNED -1
#endif

_Static_assert(sizeof(struct iommu_ioas_alloc) == 12, "iommu_ioas_alloc ABI");
_Static_assert(sizeof(struct iommu_ioas_map) == 40, "iommu_ioas_map ABI");
_Static_assert(sizeof(struct iommu_ioas_unmap) == 24, "iommu_ioas_unmap ABI");
_Static_assert(sizeof(struct iommu_ioas_iova_ranges) == 32, "iommu_ioas_iova_ranges ABI");
_Static_assert(sizeof(struct iommu_iova_range) == 16, "iommu_iova_range ABI");
_Static_assert(sizeof(struct vfio_device_bind_iommufd) == 16, "bind_iommufd ABI");
_Static_assert(sizeof(struct vfio_device_attach_iommufd_pt) >= 12, "attach_iommufd_pt ABI");

#endif
