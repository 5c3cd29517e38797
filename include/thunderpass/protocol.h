/* SPDX-License-Identifier: MIT */
/*
 * vfio-user wire format, as in QEMU's docs/interop/vfio-user.rst (protocol
 * version 0.0, the only one QEMU's client speaks) and as QEMU's client really
 * sends it (hw/vfio-user/ in QEMU 10.2/11.1). All fields are little-endian;
 * thunderpass only runs on little-endian hosts (x86_64, arm64) and checks
 * that at build time.
 *
 * Errors: these are plain structs and constants; nothing here fails.
 */
#ifndef THUNDERPASS_PROTOCOL_H
#define THUNDERPASS_PROTOCOL_H

#include <stdint.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "thunderpass speaks vfio-user in host byte order and needs a little-endian host"
#endif

#define TP_VU_MAJOR 0
#define TP_VU_MINOR 0

/* Commands (header.command). */
enum tp_vu_cmd {
	TP_VU_VERSION = 1,
	TP_VU_DMA_MAP = 2,
	TP_VU_DMA_UNMAP = 3,
	TP_VU_DEVICE_GET_INFO = 4,
	TP_VU_DEVICE_GET_REGION_INFO = 5,
	TP_VU_DEVICE_GET_REGION_IO_FDS = 6,
	TP_VU_DEVICE_GET_IRQ_INFO = 7,
	TP_VU_DEVICE_SET_IRQS = 8,
	TP_VU_REGION_READ = 9,
	TP_VU_REGION_WRITE = 10,
	TP_VU_DMA_READ = 11,
	TP_VU_DMA_WRITE = 12,
	TP_VU_DEVICE_RESET = 13,
	TP_VU_DIRTY_PAGES = 14,
	TP_VU_REGION_WRITE_MULTI = 15, /* QEMU extension ("write_multiple") */
	TP_VU_CMD_MAX
};

/* header.flags */
#define TP_VU_TYPE_MASK 0xfu
#define TP_VU_TYPE_COMMAND 0x0u
#define TP_VU_TYPE_REPLY 0x1u
#define TP_VU_NO_REPLY 0x10u
#define TP_VU_ERROR 0x20u

struct tp_vu_hdr {
	uint16_t msg_id;
	uint16_t command;
	uint32_t size;  /* whole message, header included */
	uint32_t flags;
	uint32_t error; /* errno, in replies with TP_VU_ERROR */
};

struct tp_vu_version {
	uint16_t major;
	uint16_t minor;
	char caps[]; /* NUL-terminated JSON, may be absent */
};

/* DMA_MAP / DMA_UNMAP */
#define TP_VU_DMA_READ_OK 0x1u  /* the device may read */
#define TP_VU_DMA_WRITE_OK 0x2u /* the device may write */
#define TP_VU_UNMAP_GET_DIRTY 0x1u
#define TP_VU_UNMAP_ALL 0x2u

struct tp_vu_dma_map {
	uint32_t argsz;
	uint32_t flags;
	uint64_t offset; /* into the fd, when one is attached */
	uint64_t addr;   /* guest (IOVA) address */
	uint64_t size;
};

struct tp_vu_dma_unmap {
	uint32_t argsz;
	uint32_t flags;
	uint64_t addr;
	uint64_t size;
};

/* DEVICE_GET_INFO */
#define TP_VU_DEV_RESET 0x1u
#define TP_VU_DEV_PCI 0x2u

struct tp_vu_device_info {
	uint32_t argsz;
	uint32_t flags;
	uint32_t num_regions;
	uint32_t num_irqs;
};

/* Region indices of a PCI device, as in <linux/vfio.h>. */
enum tp_pci_region {
	TP_REGION_BAR0 = 0,
	TP_REGION_BAR5 = 5,
	TP_REGION_ROM = 6,
	TP_REGION_CONFIG = 7,
	TP_REGION_VGA = 8,
	TP_REGION_COUNT = 9
};

/* Interrupt indices of a PCI device, as in <linux/vfio.h>. */
enum tp_pci_irq {
	TP_IRQ_INTX = 0,
	TP_IRQ_MSI = 1,
	TP_IRQ_MSIX = 2,
	TP_IRQ_ERR = 3,
	TP_IRQ_REQ = 4,
	TP_IRQ_INDEX_COUNT = 5
};

/* DEVICE_GET_REGION_INFO */
#define TP_VU_REGION_READ_OK 0x1u
#define TP_VU_REGION_WRITE_OK 0x2u
#define TP_VU_REGION_MMAP 0x4u
#define TP_VU_REGION_CAPS 0x8u

struct tp_vu_region_info {
	uint32_t argsz;
	uint32_t flags;
	uint32_t index;
	uint32_t cap_offset; /* from the start of this struct */
	uint64_t size;
	uint64_t offset; /* into the fd sent with the reply */
};

#define TP_VU_CAP_SPARSE_MMAP 1

struct tp_vu_cap_hdr {
	uint16_t id;
	uint16_t version;
	uint32_t next; /* offset of the next cap from the region info, 0: last */
};

struct tp_vu_sparse_area {
	uint64_t offset; /* within the region */
	uint64_t size;
};

struct tp_vu_cap_sparse_mmap {
	struct tp_vu_cap_hdr hdr;
	uint32_t nr_areas;
	uint32_t reserved;
	struct tp_vu_sparse_area areas[];
};

/* DEVICE_GET_IRQ_INFO */
#define TP_VU_IRQ_INFO_EVENTFD 0x1u
#define TP_VU_IRQ_INFO_MASKABLE 0x2u
#define TP_VU_IRQ_INFO_AUTOMASKED 0x4u
#define TP_VU_IRQ_INFO_NORESIZE 0x8u

struct tp_vu_irq_info {
	uint32_t argsz;
	uint32_t flags;
	uint32_t index;
	uint32_t count;
};

/* DEVICE_SET_IRQS */
#define TP_VU_IRQ_DATA_NONE 0x1u
#define TP_VU_IRQ_DATA_BOOL 0x2u
#define TP_VU_IRQ_DATA_EVENTFD 0x4u
#define TP_VU_IRQ_ACTION_MASK 0x8u
#define TP_VU_IRQ_ACTION_UNMASK 0x10u
#define TP_VU_IRQ_ACTION_TRIGGER 0x20u
#define TP_VU_IRQ_DATA_TYPES (TP_VU_IRQ_DATA_NONE | TP_VU_IRQ_DATA_BOOL | TP_VU_IRQ_DATA_EVENTFD)
#define TP_VU_IRQ_ACTIONS (TP_VU_IRQ_ACTION_MASK | TP_VU_IRQ_ACTION_UNMASK | TP_VU_IRQ_ACTION_TRIGGER)

struct tp_vu_irq_set {
	uint32_t argsz;
	uint32_t flags;
	uint32_t index;
	uint32_t start;
	uint32_t count;
	/* DATA_BOOL: count bytes follow; DATA_EVENTFD: fds ride in SCM_RIGHTS */
};

/* REGION_READ / REGION_WRITE */
struct tp_vu_region_rw {
	uint64_t offset;
	uint32_t region;
	uint32_t count;
	/* data follows (write requests, read replies) */
};

/* REGION_WRITE_MULTI (QEMU): a batch of small posted writes. */
#define TP_VU_MULTI_DATA 8
#define TP_VU_MULTI_MAX 200

struct tp_vu_write_one {
	uint64_t offset;
	uint32_t region;
	uint32_t count;
	uint8_t data[TP_VU_MULTI_DATA];
};

struct tp_vu_write_multi {
	uint64_t count;
	/* struct tp_vu_write_one follow */
};

/* DMA_READ / DMA_WRITE (server -> client), the spec's layout. */
struct tp_vu_dma_rw {
	uint64_t addr;
	uint64_t count;
};

/* Limits thunderpass announces in VERSION and enforces. The client refuses
 * max_msg_fds > 16, max_data_xfer_size > 64 MiB, max_dma_maps > 65535. */
#define TP_VU_MAX_MSG_FDS 8
#define TP_VU_MAX_DATA_XFER (1u << 20)
#define TP_VU_MAX_DMA_MAPS 65535u
#define TP_VU_PGSIZES 4096u
/* The largest message accepted: a full data transfer plus its headers. */
#define TP_VU_MAX_MSG (TP_VU_MAX_DATA_XFER + 64u)

#endif
