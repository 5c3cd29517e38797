/* SPDX-License-Identifier: MIT */
/*
 * The ONE contract between thunderpass's darwin backend (C, user space,
 * backends/darwin/) and its PCIDriverKit driver extension (C++,
 * darwin/dext/): service names, IOConnectCallMethod selectors, the
 * IOConnectMapMemory64 memory types, and every structure either side puts on
 * the wire. Both sides compile this very file; the static asserts at the end
 * make a layout change fail the build on both sides instead of corrupting a
 * call at run time.
 *
 * Rules for what is in here:
 *   - fixed-width fields only, little-endian (both sides run on the same
 *     arm64 Mac: no byte swapping), every structure padded explicitly to a
 *     multiple of 8 bytes, no pointers, no bool, no enums in structures;
 *   - no OS headers: this file is included by C11 code built on Linux (the
 *     test stand-in) and by DriverKit C++;
 *   - a change that moves a field bumps TP_DUC_ABI; the client refuses a
 *     driver extension with another ABI (GET_INFO's abi field).
 *
 * Who checks what: the driver extension checks every argument the client
 * sends (it protects the host: a bad DMA map can panic it, see the caps);
 * the client checks every value the driver extension returns (sizes, counts,
 * segment sums) before using it.
 */
#ifndef THUNDERPASS_DARWIN_UC_H
#define THUNDERPASS_DARWIN_UC_H

#include <stddef.h>
#include <stdint.h>

/* The dext's IORegistry name (it calls SetName with it) and its bundle id. */
#define TP_DUC_SERVICE_NAME "ThunderpassDriver"
#define TP_DUC_BUNDLE_ID "org.thunderpass.driver"

#define TP_DUC_MAGIC 0x43555054u /* "TPUC" little-endian */
#define TP_DUC_ABI 1u

/* IOServiceOpen type: the one user client type the dext accepts. */
#define TP_DUC_CLIENT_TYPE 0u

/*
 * Selectors (IOConnectCallMethod). in/out: scalars (s) or one structure (t).
 * Every call returns a kern_return_t; the client maps it to -errno.
 */
enum tp_duc_selector {
	TP_DUC_GET_INFO = 0,      /* out t: struct tp_duc_info */
	TP_DUC_CONFIG_READ = 1,   /* in s: offset, width (1/2/4); out s: value */
	TP_DUC_CONFIG_WRITE = 2,  /* in s: offset, width, value */
	TP_DUC_BAR_INFO = 3,      /* in s: bar (0-5, TP_DUC_BAR_ROM); out t: struct tp_duc_bar */
	TP_DUC_MMIO_READ = 4,     /* in s: bar, offset, width (1/2/4/8); out s: value */
	TP_DUC_MMIO_WRITE = 5,    /* in s: bar, offset, width, value */
	TP_DUC_DMA_MAP = 6,       /* in t: struct tp_duc_dma_map_in; out t: struct tp_duc_dma_map_out */
	TP_DUC_DMA_UNMAP = 7,     /* in s: handle */
	TP_DUC_DMA_UNMAP_ALL = 8, /* no arguments */
	TP_DUC_DMA_STATS = 9,     /* out t: struct tp_duc_dma_stats */
	TP_DUC_IRQ_SETUP = 10,    /* in s: type (TP_DUC_IRQ_*), count; out s: vectors granted */
	TP_DUC_IRQ_ARM = 11,      /* async (IOConnectCallAsyncScalarMethod): completes once */
	TP_DUC_IRQ_TEARDOWN = 12, /* no arguments */
	TP_DUC_RESET = 13,        /* out s: how (TP_DUC_RESET_*), ms waited for the device */
	TP_DUC_SELECTOR_COUNT = 14
};

/* Scalar counts per selector (in, out), for both sides' argument checks. */
#define TP_DUC_CONFIG_READ_IN 2
#define TP_DUC_CONFIG_READ_OUT 1
#define TP_DUC_CONFIG_WRITE_IN 3
#define TP_DUC_BAR_INFO_IN 1
#define TP_DUC_MMIO_READ_IN 3
#define TP_DUC_MMIO_READ_OUT 1
#define TP_DUC_MMIO_WRITE_IN 4
#define TP_DUC_DMA_UNMAP_IN 1
#define TP_DUC_IRQ_SETUP_IN 2
#define TP_DUC_IRQ_SETUP_OUT 1
#define TP_DUC_RESET_OUT 2

/*
 * IOConnectMapMemory64 memory types. BARs map their whole size; the client
 * asks write-combined for prefetchable BARs, uncached for the rest. The IRQ
 * page exists once IRQ_SETUP succeeded.
 */
#define TP_DUC_MEM_BAR(n) ((uint32_t)(n)) /* 0..5 */
#define TP_DUC_MEM_IRQ_PAGE 16u

#define TP_DUC_BAR_ROM 6u /* BAR_INFO/MMIO_READ index of the expansion ROM */
#define TP_DUC_NUM_BARS 7u

/* struct tp_duc_bar flags: what the BAR register's low bits say. */
#define TP_DUC_BAR_PRESENT 0x1u
#define TP_DUC_BAR_IO 0x2u
#define TP_DUC_BAR_MEM64 0x4u
#define TP_DUC_BAR_PREFETCH 0x8u
#define TP_DUC_BAR_UPPER 0x10u /* the upper half of the 64-bit BAR below it */

/* DMA directions (struct tp_duc_dma_map_in.dir): bit set = allowed. */
#define TP_DUC_DMA_DEV_READS 0x1u  /* the device reads the memory */
#define TP_DUC_DMA_DEV_WRITES 0x2u /* the device writes the memory */

/* IRQ_SETUP types. */
#define TP_DUC_IRQ_MSI 1u
#define TP_DUC_IRQ_MSIX 2u

/* RESET results (first scalar out). */
#define TP_DUC_RESET_FLR 1u /* function-level reset */
#define TP_DUC_RESET_HOT 2u /* secondary bus reset from the upstream port */

/*
 * Limits. The DMA caps are what the DART behind a PCIDriverKit driver takes
 * before it panics the host instead of failing (DESIGN.md: about 1.5 GiB
 * mapped at once, about 64k mappings). The dext enforces them before every
 * PrepareForDMA; the client enforces the same numbers (from GET_INFO) so that
 * a full DART is an ordinary -ENOSPC to the layers above.
 */
#define TP_DUC_PAGE 16384u           /* DART page: 16 KiB */
#define TP_DUC_MAX_SEGS 32u          /* PrepareForDMA returns at most 32 segments */
#define TP_DUC_MAX_DMA_BYTES (3ull << 29) /* 1.5 GiB */
#define TP_DUC_MAX_DMA_MAPS 65536u
#define TP_DUC_MAX_VECTORS 2048u     /* MSI-X table maximum */
#define TP_DUC_PENDING_WORDS (TP_DUC_MAX_VECTORS / 64u)

/* struct tp_duc_info.flags */
#define TP_DUC_INFO_NO_FLR 0x1u /* a device that never returns from FLR (GB202) */
#define TP_DUC_INFO_PCIE 0x2u   /* has a PCI Express capability: 4 KiB config space */

/* GET_INFO: who the function is and what the dext will take. 128 bytes. */
struct tp_duc_info {
	uint32_t magic;          /* TP_DUC_MAGIC */
	uint32_t abi;            /* TP_DUC_ABI */
	uint16_t vendor;
	uint16_t device;
	uint16_t subsys_vendor;
	uint16_t subsys_device;
	uint32_t class_rev;      /* class code << 8 | revision */
	uint8_t bus;             /* from IOPCIDevice::GetBusDeviceFunction */
	uint8_t dev;
	uint8_t fn;
	uint8_t header_type;
	uint32_t flags;          /* TP_DUC_INFO_* */
	uint32_t cfg_size;       /* 256 or 4096 */
	uint16_t cap_pm;         /* capability offsets, 0: absent */
	uint16_t cap_msi;
	uint16_t cap_msix;
	uint16_t cap_pcie;
	uint32_t msi_vectors;    /* what the capabilities advertise */
	uint32_t msix_vectors;
	uint32_t dma_page;       /* TP_DUC_PAGE */
	uint32_t dma_max_segs;   /* TP_DUC_MAX_SEGS */
	uint64_t dma_max_bytes;  /* the caps the dext enforces */
	uint64_t dma_max_maps;
	uint32_t irq_max_vectors;
	uint32_t reserved0;
	uint64_t reserved[6];
};

/* BAR_INFO reply. 24 bytes. */
struct tp_duc_bar {
	uint32_t bar;            /* echo of the request */
	uint32_t flags;          /* TP_DUC_BAR_* */
	uint64_t size;           /* bytes; 0 with flags 0: no such BAR */
	uint32_t memory_index;   /* PCIDriverKit's index (not the BAR number) */
	uint32_t reserved;
};

/* DMA_MAP request: [va, va + len) of the client's memory. 24 bytes. */
struct tp_duc_dma_map_in {
	uint64_t va;             /* TP_DUC_PAGE aligned */
	uint64_t len;            /* TP_DUC_PAGE multiple, > 0 */
	uint32_t dir;            /* TP_DUC_DMA_* bits, at least one */
	uint32_t reserved;       /* 0 */
};

/* One device-address range, as PrepareForDMA returns it. */
struct tp_duc_seg {
	uint64_t addr;
	uint64_t len;
};

/*
 * DMA_MAP reply: the handle for DMA_UNMAP and where the DART put the memory:
 * segs[i] covers the bytes [sum(len[0..i-1]), +len[i]) of the request, in
 * order; their lengths add up to the request's length. 536 bytes.
 */
struct tp_duc_dma_map_out {
	uint64_t handle;         /* never 0 */
	uint64_t len;            /* echo of the request's length */
	uint32_t nsegs;          /* 1..TP_DUC_MAX_SEGS */
	uint32_t reserved;
	struct tp_duc_seg segs[TP_DUC_MAX_SEGS];
};

/* DMA_STATS reply. 64 bytes. */
struct tp_duc_dma_stats {
	uint64_t bytes;          /* mapped now */
	uint64_t maps;           /* live mappings now */
	uint64_t max_bytes;      /* the caps */
	uint64_t max_maps;
	uint64_t refused_caps;   /* maps refused before PrepareForDMA by a cap */
	uint64_t failed;         /* PrepareForDMA (or its set-up) failures */
	uint64_t total_maps;     /* successful maps ever */
	uint64_t reserved;
};

/*
 * The IRQ page (memory type TP_DUC_MEM_IRQ_PAGE), shared by the dext and
 * the client. The dext sets pending bits from its interrupt handlers
 * (atomic OR) and then completes the client's armed IRQ_ARM; the client
 * takes the bits with an atomic exchange to 0, raises the vectors and arms
 * again. Nothing else is written by the client. 320 bytes at offset 0 of a
 * TP_DUC_PAGE-sized buffer.
 */
struct tp_duc_irq_page {
	uint32_t magic;          /* TP_DUC_MAGIC */
	uint32_t abi;            /* TP_DUC_ABI */
	uint32_t type;           /* TP_DUC_IRQ_MSI / MSIX */
	uint32_t vectors;        /* granted */
	uint64_t interrupts;     /* handler runs, ever (the dext's counter) */
	uint64_t notifications;  /* IRQ_ARM completions sent */
	uint64_t reserved[4];
	uint64_t pending[TP_DUC_PENDING_WORDS];
};

/* ---- layout checks: the same on both sides ---- */
#ifdef __cplusplus
#define TP_DUC_ASSERT(c, m) static_assert(c, m)
#else
#define TP_DUC_ASSERT(c, m) _Static_assert(c, m)
#endif

TP_DUC_ASSERT(sizeof(struct tp_duc_info) == 128, "tp_duc_info size");
TP_DUC_ASSERT(offsetof(struct tp_duc_info, bus) == 20, "tp_duc_info.bus");
TP_DUC_ASSERT(offsetof(struct tp_duc_info, cfg_size) == 28, "tp_duc_info.cfg_size");
TP_DUC_ASSERT(offsetof(struct tp_duc_info, cap_pm) == 32, "tp_duc_info.cap_pm");
TP_DUC_ASSERT(offsetof(struct tp_duc_info, msi_vectors) == 40, "tp_duc_info.msi_vectors");
TP_DUC_ASSERT(offsetof(struct tp_duc_info, dma_max_bytes) == 56, "tp_duc_info.dma_max_bytes");
TP_DUC_ASSERT(offsetof(struct tp_duc_info, irq_max_vectors) == 72, "tp_duc_info.irq_max");
TP_DUC_ASSERT(sizeof(struct tp_duc_bar) == 24, "tp_duc_bar size");
TP_DUC_ASSERT(offsetof(struct tp_duc_bar, size) == 8, "tp_duc_bar.size");
TP_DUC_ASSERT(offsetof(struct tp_duc_bar, memory_index) == 16, "tp_duc_bar.memory_index");
TP_DUC_ASSERT(sizeof(struct tp_duc_dma_map_in) == 24, "tp_duc_dma_map_in size");
TP_DUC_ASSERT(offsetof(struct tp_duc_dma_map_in, dir) == 16, "tp_duc_dma_map_in.dir");
TP_DUC_ASSERT(sizeof(struct tp_duc_seg) == 16, "tp_duc_seg size");
TP_DUC_ASSERT(offsetof(struct tp_duc_dma_map_out, segs) == 24, "tp_duc_dma_map_out.segs");
TP_DUC_ASSERT(sizeof(struct tp_duc_dma_map_out) == 24 + 16 * TP_DUC_MAX_SEGS,
	      "tp_duc_dma_map_out size");
TP_DUC_ASSERT(sizeof(struct tp_duc_dma_stats) == 64, "tp_duc_dma_stats size");
TP_DUC_ASSERT(offsetof(struct tp_duc_irq_page, pending) == 64, "tp_duc_irq_page.pending");
TP_DUC_ASSERT(sizeof(struct tp_duc_irq_page) == 64 + 8 * TP_DUC_PENDING_WORDS,
	      "tp_duc_irq_page size");
TP_DUC_ASSERT(sizeof(struct tp_duc_irq_page) <= TP_DUC_PAGE, "irq page fits its buffer");
/* IOConnectCallMethod passes structures up to 4096 bytes inline (OSData);
 * larger ones would need memory descriptors, which neither side handles. */
TP_DUC_ASSERT(sizeof(struct tp_duc_dma_map_out) < 4096, "inline structure");
TP_DUC_ASSERT(TP_DUC_SELECTOR_COUNT == 14, "selector numbering");

#endif
