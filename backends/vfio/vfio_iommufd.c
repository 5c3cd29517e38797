/* SPDX-License-Identifier: MIT */
/*
 * The iommufd path of the vfio backend (Linux >= 6.6, CONFIG_IOMMUFD and
 * CONFIG_VFIO_DEVICE_CDEV): the device is opened as its cdev
 * (/dev/vfio/devices/vfioN, named by sysfs vfio-dev/), bound to an iommufd
 * (/dev/iommu) and attached to one IO address space (IOAS) of it; guest
 * memory is mapped there at IOVA = the client's address, as the group path
 * does in its type1 container (the identity model either way).
 *
 * Why both paths: the group API is the only one most kernels offer (no
 * Debian kernel enables iommufd, docs/vfio.md), and kernels built with
 * IOMMUFD_VFIO_CONTAINER or without VFIO_CONTAINER have no type1 container
 * at all. The device fd behaves the same either way (regions, SET_IRQS,
 * reset); only opening, DMA mapping and hot reset's proof of ownership
 * differ (vfio_irq.c).
 *
 * Errors: -errno, logged once where decided, prefixed with the device name.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <thunderpass/log.h>

#include "util.h"
#include "vfio.h"
#include "vfio_uapi.h"

#define SYSFS_PCI "/sys/bus/pci/devices"

/*
 * The device's vfio device name ("vfio3") from SYSFS_PCI/bdf/vfio-dev/:
 * -ENOENT when there is none (not bound to vfio-pci). Linux 6.1 to 6.5 name
 * one too, with no cdev behind it: vfio_iommufd_available checks the node.
 */
int vfio_cdev_name(const char *bdf, char *out, size_t len)
{
	char path[PATH_MAX];
	struct dirent *e;
	int rc = -ENOENT;
	DIR *d;

	snprintf(path, sizeof(path), SYSFS_PCI "/%s/vfio-dev", bdf);
	d = opendir(path);
	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		const char *num = e->d_name + 4;
		size_t n = strlen(e->d_name);

		if (strncmp(e->d_name, "vfio", 4) || n == 4 || strspn(num, "0123456789") != n - 4)
			continue;
		if (n >= len) {
			rc = -ENAMETOOLONG;
			break;
		}
		memcpy(out, e->d_name, n + 1);
		rc = 0;
		break;
	}
	closedir(d);
	return rc;
}

static bool is_chardev(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISCHR(st.st_mode);
}

int vfio_iommufd_available(const char *bdf, char *cdev, size_t len)
{
	char path[64];
	int rc = vfio_cdev_name(bdf, cdev, len);

	if (rc)
		return rc;
	snprintf(path, sizeof(path), "/dev/vfio/devices/%s", cdev);
	if (!is_chardev(path))
		return -ENODEV;
	return is_chardev("/dev/iommu") ? 0 : -ENXIO;
}

/*
 * The IOAS's usable IOVA ranges (known once a device is attached: the
 * IOMMU's aperture less its reserved regions, such as the x86 MSI window)
 * and the alignment maps need.
 */
static int ioas_ranges(struct vfio_dev *v)
{
	struct iommu_iova_range r[VFIO_MAX_IOVA_RANGES];
	struct iommu_ioas_iova_ranges q = {
		.size = sizeof(q),
		.ioas_id = v->ioas_id,
		.num_iovas = VFIO_MAX_IOVA_RANGES,
		.allowed_iovas = (uint64_t)(uintptr_t)r,
	};
	int rc;

	memset(r, 0, sizeof(r));
	if (ioctl(v->iommufd, IOMMU_IOAS_IOVA_RANGES, &q) < 0) {
		rc = -errno;
		if (rc == -EMSGSIZE)
			tp_err(v->be.name, "IOMMU_IOAS_IOVA_RANGES: %u ranges, more than the %u "
			       "this backend keeps", q.num_iovas, VFIO_MAX_IOVA_RANGES);
		else
			tp_err(v->be.name, "IOMMU_IOAS_IOVA_RANGES: %s", strerror(-rc));
		return rc;
	}
	if (q.num_iovas > VFIO_MAX_IOVA_RANGES) {
		tp_err(v->be.name, "IOMMU_IOAS_IOVA_RANGES: %u ranges answered into %u",
		       q.num_iovas, VFIO_MAX_IOVA_RANGES);
		return -EPROTO;
	}
	for (uint32_t i = 0; i < q.num_iovas; i++) {
		if (r[i].last < r[i].start) {
			tp_err(v->be.name, "IOMMU_IOAS_IOVA_RANGES: range %u ends before it "
			       "starts", i);
			return -EPROTO;
		}
		v->iova[i].start = r[i].start;
		v->iova[i].end = r[i].last;
	}
	v->nr_iova = q.num_iovas;
	/* Maps come in 4 KiB pages (we announce pgsizes 4096): the IOAS must take them. */
	if (q.out_iova_alignment > 4096 || (q.out_iova_alignment & (q.out_iova_alignment - 1))) {
		tp_err(v->be.name, "the IOAS wants IOVAs aligned to %#llx: DMA_MAP comes in "
		       "4 KiB pages", (unsigned long long)q.out_iova_alignment);
		return -EOPNOTSUPP;
	}
	v->iova_pgsizes = q.out_iova_alignment ? q.out_iova_alignment : 1;
	return 0;
}

int vfio_iommufd_open(struct vfio_dev *v, const char *cdev)
{
	struct vfio_device_bind_iommufd bind = { .argsz = sizeof(bind) };
	struct vfio_device_attach_iommufd_pt at = { .argsz = sizeof(at) };
	struct iommu_ioas_alloc alloc = { .size = sizeof(alloc) };
	char path[64];
	int rc;

	v->iommufd = vfio_open_node(v, "/dev/iommu", "is iommufd built in or loaded?");
	if (v->iommufd < 0)
		return v->iommufd;
	snprintf(path, sizeof(path), "/dev/vfio/devices/%s", cdev);
	v->device = vfio_open_node(v, path, "is vfio-pci bound?");
	if (v->device < 0)
		return v->device;
	bind.iommufd = v->iommufd;
	if (ioctl(v->device, VFIO_DEVICE_BIND_IOMMUFD, &bind) < 0) {
		rc = -errno;
		if (rc == -EBUSY || rc == -EINVAL) {
			/* Binding claims the whole group for DMA: another owner says no. */
			tp_err(v->be.name, "VFIO_DEVICE_BIND_IOMMUFD: %s: IOMMU group %d is held "
			       "elsewhere, or not viable (every device in it must be bound to "
			       "vfio-pci or have no driver):", strerror(-rc), v->group_id);
			vfio_log_group(v);
		} else {
			tp_err(v->be.name, "VFIO_DEVICE_BIND_IOMMUFD: %s", strerror(-rc));
		}
		return rc;
	}
	v->bound_devid = bind.out_devid;
	if (ioctl(v->iommufd, IOMMU_IOAS_ALLOC, &alloc) < 0) {
		rc = -errno;
		tp_err(v->be.name, "IOMMU_IOAS_ALLOC: %s", strerror(-rc));
		return rc;
	}
	v->ioas_id = alloc.out_ioas_id;
	at.pt_id = v->ioas_id;
	if (ioctl(v->device, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &at) < 0) {
		rc = -errno;
		tp_err(v->be.name, "VFIO_DEVICE_ATTACH_IOMMUFD_PT (IOAS %u): %s", v->ioas_id,
		       strerror(-rc));
		return rc;
	}
	rc = ioas_ranges(v);
	if (rc)
		return rc;
	tp_info(v->be.name, "%s in IOMMU group %d, iommufd: %s bound as devid %u, IOAS %u",
		v->bdf, v->group_id, path, v->bound_devid, v->ioas_id);
	return 0;
}

int vfio_iommufd_map(struct vfio_dev *v, const struct tp_dma_region *r)
{
	struct iommu_ioas_map m = {
		.size = sizeof(m),
		.flags = IOMMU_IOAS_MAP_FIXED_IOVA |
			 ((r->prot & TP_VU_DMA_READ_OK) ? IOMMU_IOAS_MAP_READABLE : 0) |
			 ((r->prot & TP_VU_DMA_WRITE_OK) ? IOMMU_IOAS_MAP_WRITEABLE : 0),
		.ioas_id = v->ioas_id,
		.user_va = (uint64_t)(uintptr_t)r->vaddr,
		.length = r->size,
		.iova = r->iova,
	};

	if (ioctl(v->iommufd, IOMMU_IOAS_MAP, &m) < 0)
		return -errno;
	if (m.iova != r->iova) {
		/* FIXED_IOVA: the kernel may not move it. Undo rather than lie. */
		struct iommu_ioas_unmap u = { .size = sizeof(u), .ioas_id = v->ioas_id,
					      .iova = m.iova, .length = r->size };

		(void)ioctl(v->iommufd, IOMMU_IOAS_UNMAP, &u);
		return -EPROTO;
	}
	return 0;
}

int vfio_iommufd_unmap(struct vfio_dev *v, const struct tp_dma_region *r, uint64_t *done)
{
	struct iommu_ioas_unmap u = {
		.size = sizeof(u), .ioas_id = v->ioas_id, .iova = r->iova, .length = r->size,
	};

	if (ioctl(v->iommufd, IOMMU_IOAS_UNMAP, &u) < 0)
		return -errno;
	*done = u.length;
	return 0;
}
