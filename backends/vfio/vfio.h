/* SPDX-License-Identifier: MIT */
/*
 * The vfio backend (Linux): a real PCI function bound to vfio-pci, opened
 * through the kernel's iommufd device cdev (/dev/iommu + /dev/vfio/devices/
 * vfioN) where the kernel has it, else its VFIO group API (/dev/vfio/vfio +
 * /dev/vfio/<group>).
 *
 *   vfio.c       options, opening (sysfs checks, container, group, device),
 *                the IOMMU (DMA map/unmap at IOVA = guest physical), the ops
 *   vfio_iommufd.c  the iommufd path: cdev, bind, IOAS, IOAS map/unmap
 *   vfio_io.c    regions: what each is, which ranges the client may map
 *                (the device fd at the region's offset), trapped accesses
 *                and config space through pread/pwrite
 *   vfio_irq.c   interrupts: the client's eventfds handed to the kernel
 *                (VFIO_DEVICE_SET_IRQS), and reset (FLR, bus / hot reset)
 *   vfio_caps.c  pure parsing of what the kernel returns (capability chains,
 *                the MSI-X capability, the mappable areas): unit-tested
 *
 * The kernel's answers are checked like a client's messages: sizes, offsets,
 * counts and chains are bounded before they are used.
 *
 * Errors: -errno, logged once where decided, prefixed with the device name.
 */
#ifndef TP_BACKEND_VFIO_H
#define TP_BACKEND_VFIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/vfio.h>

#include <thunderpass/backend.h>
#include <thunderpass/protocol.h>

#define VFIO_WHO "vfio"
/* Sparse-mmap areas read from the kernel (more are refused). */
#define VFIO_MAX_SPARSE 16
/* IOVA ranges of the container's IOMMU kept for messages and checks. */
#define VFIO_MAX_IOVA_RANGES 16
/* The largest capability chain read (region or IOMMU info). */
#define VFIO_INFO_MAX 4096u

struct vfio_msix {
	bool present;
	uint32_t vectors;
	uint32_t table_bar, pba_bar;
	uint64_t table_off, table_size;
	uint64_t pba_off, pba_size;
};

struct vfio_region {
	uint32_t flags;       /* VFIO_REGION_INFO_FLAG_*; 0: absent */
	uint64_t size;
	uint64_t offset;      /* of the region in the device fd */
	bool has_sparse;      /* the kernel gave a sparse-mmap capability */
	bool msix_mappable;   /* VFIO_REGION_INFO_CAP_MSIX_MAPPABLE */
	uint32_t nr_sparse;
	struct tp_mmap_area sparse[VFIO_MAX_SPARSE];
	/* What the client may map: the kernel's mappable ranges less the
	 * MSI-X table and PBA (the client owns the table). */
	uint32_t nr_areas;
	struct tp_mmap_area areas[TP_MAX_MMAP_AREAS];
};

struct vfio_irq {
	uint32_t count;  /* vectors (VFIO_DEVICE_GET_IRQ_INFO) */
	uint32_t flags;  /* VFIO_IRQ_INFO_* */
	uint32_t live;   /* vectors enabled in the kernel; 0: index off */
	int *fds;        /* the client's eventfds (the core's, borrowed); -1 */
};

struct vfio_iova_span {
	uint64_t start, end; /* inclusive */
};

struct vfio_dev {
	struct tp_backend be;
	char bdf[16];           /* 0000:01:00.0 */
	int group_id;
	int container, group, device;
	/* The iommufd path (iommufd >= 0): container and group stay -1. */
	int iommufd;
	uint32_t ioas_id, bound_devid; /* IOMMU_IOAS_ALLOC, VFIO_DEVICE_BIND_IOMMUFD */
	uint32_t dev_flags;     /* VFIO_DEVICE_FLAGS_* */
	uint32_t num_regions, num_irqs;
	uint16_t vendor, devid;
	long page;              /* host page size */
	struct vfio_region regions[TP_REGION_COUNT];
	struct vfio_msix msix;
	struct vfio_irq irqs[TP_IRQ_INDEX_COUNT];
	/* SET_IRQS argument: the header and up to TP_IRQ set of fds. */
	uint8_t *irq_buf;
	size_t irq_buf_len;
	/* The container's IOMMU. */
	uint64_t iova_pgsizes;
	uint32_t nr_iova;
	struct vfio_iova_span iova[VFIO_MAX_IOVA_RANGES];
	bool have_dma_avail;
	uint32_t dma_avail;     /* mappings the kernel still allows, at open */
	uint64_t dma_live, dma_bytes;
	bool reset_warned;
};

static inline struct vfio_dev *vfio_of(struct tp_backend *be)
{
	return (struct vfio_dev *)((char *)be - __builtin_offsetof(struct vfio_dev, be));
}

/* vfio_caps.c: parsing, no system calls. */
/*
 * The capability chain of a VFIO_DEVICE_GET_REGION_INFO answer of len bytes
 * (buf starts with struct vfio_region_info): sparse mmap and MSI-X mappable
 * into r. Loops, offsets outside len and areas outside the region are
 * refused (-EPROTO); *why says which.
 */
int vfio_parse_region_caps(const void *buf, uint32_t len, struct vfio_region *r,
			   const char **why);
/* The MSI-X capability in the first 256 bytes of config space; absent: 0
 * with m->present false. -EPROTO: a capability that cannot be right. */
int vfio_find_msix(const uint8_t *cfg, uint32_t len, struct vfio_msix *m, const char **why);
/*
 * The ranges of BAR index the client may map: the kernel's (sparse areas,
 * the whole region, or none), less the MSI-X table and PBA, rounded out to
 * page. At most TP_MAX_MMAP_AREAS; more: -ENOSPC (the rest stays trapped).
 */
int vfio_mappable_areas(struct vfio_region *r, uint32_t index, const struct vfio_msix *m,
			uint64_t page);
/* The IOVA ranges capability of VFIO_IOMMU_GET_INFO (buf of len bytes). */
int vfio_parse_iommu_caps(const void *buf, uint32_t len, struct vfio_dev *v, const char **why);

/* vfio.c: shared by the two ways of opening. */
/* open(path, O_RDWR); a failure is logged with hint or what EACCES/EBUSY mean. */
int vfio_open_node(struct vfio_dev *v, const char *path, const char *hint);
/* Logs each member of the device's IOMMU group and its driver. */
void vfio_log_group(struct vfio_dev *v);

/* vfio_iommufd.c */
/* The vfio device's name in sysfs ("vfio3"); -ENOENT: none. */
int vfio_cdev_name(const char *bdf, char *out, size_t len);
/* 0: the kernel offers this device as /dev/vfio/devices/<cdev> and /dev/iommu
 * exists; -ENOENT no vfio device in sysfs, -ENODEV no cdev node (Linux < 6.6
 * or no VFIO_DEVICE_CDEV), -ENXIO no /dev/iommu (no IOMMUFD). Not logged. */
int vfio_iommufd_available(const char *bdf, char *cdev, size_t len);
/* Opens cdev, binds it to a new iommufd, attaches it to a new IOAS. */
int vfio_iommufd_open(struct vfio_dev *v, const char *cdev);
/* IOMMU_IOAS_MAP at IOVA = r->iova; -errno, not logged (the caller does). */
int vfio_iommufd_map(struct vfio_dev *v, const struct tp_dma_region *r);
/* IOMMU_IOAS_UNMAP of r; *done: the bytes the kernel unmapped. Not logged. */
int vfio_iommufd_unmap(struct vfio_dev *v, const struct tp_dma_region *r, uint64_t *done);

/* vfio_io.c */
int vfio_regions_probe(struct vfio_dev *v);
int vfio_config_read(struct tp_backend *be, uint32_t off, void *buf, uint32_t len);
int vfio_config_write(struct tp_backend *be, uint32_t off, const void *buf, uint32_t len);
int vfio_region_info(struct tp_backend *be, uint32_t index, struct tp_region_desc *out);
int vfio_region_read(struct tp_backend *be, uint32_t index, uint64_t off, void *buf,
		     uint32_t len);
int vfio_region_write(struct tp_backend *be, uint32_t index, uint64_t off, const void *buf,
		      uint32_t len);

/* vfio_irq.c */
int vfio_irqs_probe(struct vfio_dev *v);
void vfio_irqs_free(struct vfio_dev *v);
int vfio_irq_count(struct tp_backend *be, uint32_t index, uint32_t *count);
int vfio_irq_set(struct tp_backend *be, uint32_t index, uint32_t start, uint32_t count,
		 const int *fds);
int vfio_irq_mask(struct tp_backend *be, uint32_t index, uint32_t start, uint32_t count,
		  int masked);
/* Every index off in the kernel (reset, client gone). */
void vfio_irqs_disable_all(struct vfio_dev *v);
int vfio_reset(struct tp_backend *be);
/* "FLR/PM/bus reset (VFIO_DEVICE_RESET)", "hot reset", "none". */
const char *vfio_reset_method(const struct vfio_dev *v);

#endif
