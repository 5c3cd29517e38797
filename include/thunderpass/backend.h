/* SPDX-License-Identifier: MIT */
/*
 * The host backend interface: the one ops table every backend (model, proxy,
 * vfio, darwin) implements. A backend presents a *physical* PCI function: raw
 * config space, BAR contents, its own interrupt vectors. Everything a guest
 * must not see or touch directly (BAR addresses, MSI/MSI-X programming, PCIe
 * Device Control, the capability chain) is virtualized by the core above it;
 * a backend never needs to know about the guest's view.
 *
 * Error rule: every op returns 0 (or a byte count where stated) on success and
 * a negative errno on failure. The backend logs the failure once, prefixed
 * with tp_backend.name; the core passes the errno to the client unchanged and
 * does not log it again.
 *
 * Threading: the core calls ops from its single message thread. A backend may
 * run threads of its own (a copy engine) and call the tp_host services below
 * from them; those are thread-safe.
 */
#ifndef THUNDERPASS_BACKEND_H
#define THUNDERPASS_BACKEND_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#define TP_MAX_MMAP_AREAS 8

/* A range of a region the client may map directly (offsets within the region). */
struct tp_mmap_area {
	uint64_t offset;
	uint64_t size;
};

/* What a backend says about one region (BAR0-5, ROM, config). */
struct tp_region_desc {
	uint64_t size;        /* bytes; 0: the region does not exist */
	int readable;         /* accesses the core may forward */
	int writable;
	int mmap_fd;          /* -1: nothing in it can be mapped; owned by the backend */
	uint64_t mmap_offset; /* where the region starts in mmap_fd */
	uint32_t nr_areas;    /* mappable ranges, within the region */
	struct tp_mmap_area areas[TP_MAX_MMAP_AREAS];
};

/* Guest memory the client mapped for the device's DMA (DMA_MAP). */
struct tp_dma_region {
	uint64_t iova;    /* address the client gave (guest physical for QEMU) */
	uint64_t size;
	void *vaddr;      /* where the core mapped it; NULL: no fd came with it */
	int fd;           /* the client's fd, -1 if none; owned by the core */
	uint64_t fd_offset;
	uint32_t prot;    /* TP_VU_DMA_READ_OK | TP_VU_DMA_WRITE_OK */
};

struct tp_backend;
struct tp_iommu;

/*
 * Services of the core a backend may call, from any thread.
 * vector: the device-side vector; the core routes it to whichever of MSI-X,
 * MSI or INTx the guest enabled.
 */
struct tp_host_ops {
	/* An edge event on vector: delivered when the guest uses MSI-X or MSI. */
	void (*irq_raise)(void *ctx, uint32_t vector);
	/* INTx is a level: assert (1) until the device's status is cleared (0);
	 * delivered when the guest uses INTx. A device reports both, as a real
	 * one does: it cannot see which the guest enabled (the core owns MSI). */
	void (*intx_set)(void *ctx, int level);
	/*
	 * The device's DMA: copies len bytes between buf and device address dva
	 * (write: buf -> memory), through the IOMMU model into guest memory.
	 * Returns 0, or -EFAULT/-EACCES with *fault set to the first device
	 * address that could not be reached (bytes before it were copied). Never
	 * touches memory that is not mapped: an unmap waits for the copy in
	 * flight, and the next one faults.
	 */
	int (*dma_rw)(void *ctx, uint64_t dva, void *buf, uint64_t len, int write,
		      uint64_t *fault);
};

struct tp_host {
	const struct tp_host_ops *ops;
	void *ctx;
};

struct tp_backend_ops {
	const char *name;

	/* Raw config space of the function: the core only makes naturally
	 * aligned accesses of 1, 2 or 4 bytes, as config cycles are. */
	int (*config_read)(struct tp_backend *be, uint32_t off, void *buf, uint32_t len);
	int (*config_write)(struct tp_backend *be, uint32_t off, const void *buf, uint32_t len);

	/* index: enum tp_pci_region. Absent regions: size 0, return 0. */
	int (*region_info)(struct tp_backend *be, uint32_t index, struct tp_region_desc *out);

	/* Trapped BAR/ROM access; the core has checked off + len <= size. */
	int (*region_read)(struct tp_backend *be, uint32_t index, uint64_t off, void *buf,
			   uint32_t len);
	int (*region_write)(struct tp_backend *be, uint32_t index, uint64_t off, const void *buf,
			    uint32_t len);

	/* Optional: told of guest memory becoming (un)available for DMA. */
	int (*dma_map)(struct tp_backend *be, const struct tp_dma_region *r);
	int (*dma_unmap)(struct tp_backend *be, const struct tp_dma_region *r);

	/* Number of device vectors for index (INTx 0/1, MSI 1-32, MSI-X 1-2048). */
	int (*irq_count)(struct tp_backend *be, uint32_t index, uint32_t *count);

	/*
	 * Optional: the backend takes the client's eventfds itself (kernel VFIO
	 * signals them with no copy through the server). NULL or -EOPNOTSUPP:
	 * the core keeps them and the backend raises vectors through tp_host.
	 * Called after the core validated and recorded a SET_IRQS: fds[i] is the
	 * eventfd of vector start + i, -1 to de-assign it; count 0 (fds NULL)
	 * disables the whole index. The fds stay the core's: borrow them (the
	 * kernel takes its own reference), never close them.
	 */
	int (*irq_set)(struct tp_backend *be, uint32_t index, uint32_t start, uint32_t count,
		       const int *fds);
	/*
	 * Optional, for a backend whose irq_set took the eventfds: the client's
	 * MASK (masked 1) or UNMASK (masked 0) of vectors [start, start + count)
	 * (INTx: the client unmasks once the guest handled the interrupt).
	 */
	int (*irq_mask)(struct tp_backend *be, uint32_t index, uint32_t start, uint32_t count,
			int masked);

	/*
	 * Optional: the backend brings its own IOMMU model (darwin: the DART
	 * behind the driver extension picks device addresses). The core then
	 * refuses an --iommu choice; the model is destroyed after the backend.
	 */
	int (*iommu_create)(struct tp_backend *be, const char *who, struct tp_iommu **out);
	/*
	 * Optional: the name of the IOMMU model the core put in front of the
	 * device ("identity", "dart", a backend's own), told once at open,
	 * before any other op but iommu_create. A backend whose device reaches
	 * guest memory past the core (the proxy hands a remote server fds of
	 * guest memory) refuses a model it cannot honour: an error fails the open.
	 */
	int (*iommu_model)(struct tp_backend *be, const char *model);
	/*
	 * Optional, for such a backend: the IOMMU model made device addresses
	 * [dva, dva + len) reach guest memory [iova, iova + len) of region r
	 * with prot (iommu_mapped), or took them away (iommu_unmapped), whoever
	 * asked: pvdma, tp_device_iommu_map, guest memory leaving (before it
	 * goes: r and its fd are still valid here), the client going away. In
	 * whole model pages (dart: 16 KiB), exactly what the device may reach;
	 * models that pick device addresses report (dart), identity does not.
	 * Called with the device's DMA lock held for writing, on whichever
	 * thread holds it (the message thread, the pvdma companion's): the
	 * backend must not wait there for anything that needs that lock (its
	 * own tp_backend_dma callers). An error from iommu_mapped fails the map
	 * (iommu_unmapped never comes for it).
	 */
	int (*iommu_mapped)(struct tp_backend *be, uint64_t dva, uint64_t iova, uint64_t len,
			    uint32_t prot, const struct tp_dma_region *r);
	void (*iommu_unmapped)(struct tp_backend *be, uint64_t dva, uint64_t len);

	/* Function reset; also called when a client goes away. */
	int (*reset)(struct tp_backend *be);

	void (*destroy)(struct tp_backend *be);
};

struct tp_backend {
	const struct tp_backend_ops *ops;
	char name[64];       /* prefix of every log line about this device */
	struct tp_host host; /* filled in by the core before any op is called */
};

/* Raise a device vector through the core (safe from any thread). */
static inline void tp_backend_irq(struct tp_backend *be, uint32_t vector)
{
	if (be->host.ops)
		be->host.ops->irq_raise(be->host.ctx, vector);
}

static inline void tp_backend_intx(struct tp_backend *be, int level)
{
	if (be->host.ops)
		be->host.ops->intx_set(be->host.ctx, level);
}

static inline int tp_backend_dma(struct tp_backend *be, uint64_t dva, void *buf, uint64_t len,
				 int write, uint64_t *fault)
{
	if (!be->host.ops || !be->host.ops->dma_rw) {
		*fault = dva;
		return -EFAULT;
	}
	return be->host.ops->dma_rw(be->host.ctx, dva, buf, len, write, fault);
}

/*
 * Backend registry: the CLI picks one by name and hands it "key=value"
 * options. create() logs its own errors.
 */
struct tp_backend_opt {
	const char *key;
	const char *value;
};

struct tp_backend_type {
	const char *name;
	const char *help; /* one line, and the options it takes */
	int (*create)(const struct tp_backend_opt *opts, size_t nopts, struct tp_backend **out);
	/* System calls the backend needs while serving, beyond the core's
	 * (seccomp allow-list; NULL-terminated names; NULL: none). */
	const char *const *syscalls;
	/* The ioctl requests it issues while serving (0-terminated; NULL:
	 * none): ioctl is allowed with these requests only. */
	const unsigned long *ioctls;
};

const struct tp_backend_type *tp_backend_find(const char *name);
/* NULL-terminated list of every backend built in. */
const struct tp_backend_type *const *tp_backend_types(void);

#endif
