/* SPDX-License-Identifier: MIT */
/*
 * The pvdma companion function (docs/pvdma.md, the spec): a paravirtual PCI
 * function served next to a passed-through device, through which the
 * guest's DMA layer asks thunderpass for device addresses. The backend is
 * bound to the managed device's core (its IOMMU model, its guest memory map,
 * its DMA lock) and runs the window policy of lib/pvdma_policy.h on it.
 *
 * This header: the wire format (registers, ring) and the backend's API for
 * the CLI and the tests.
 */
#ifndef THUNDERPASS_PVDMA_H
#define THUNDERPASS_PVDMA_H

#include <stddef.h>
#include <stdint.h>

#include <thunderpass/backend.h>

#include "pvdma_policy.h"

#define PVDMA_VENDOR 0x7470u /* "tp": not a PCI-SIG vendor id; paravirtual only */
#define PVDMA_DEVICE 0x0001u
#define PVDMA_CLASS 0x088000u /* system peripheral, other */
#define PVDMA_REVISION 0x01u

#define PVDMA_BAR0_SIZE 4096u
#define PVDMA_BAR2_SIZE (1u << 20)
#define PVDMA_RING_ENTRIES 8192u
#define PVDMA_ENTRY_SIZE 64u
#define PVDMA_RING_HEADER 64u
#define PVDMA_MSIX_TABLE 0x800u /* in BAR0; owned by the client */
#define PVDMA_MSIX_PBA 0xc00u

#define PVDMA_ID_VALUE 0x41444d50u /* "PMDA" */
#define PVDMA_VERSION_VALUE 1u

/* BAR0 registers, 32-bit little-endian. */
enum pvdma_reg {
	PVDMA_REG_ID = 0x000,
	PVDMA_REG_VERSION = 0x004,
	PVDMA_REG_MANAGED_ID = 0x008,
	PVDMA_REG_MANAGED_DEVFN = 0x00c,
	PVDMA_REG_TOKEN_LO = 0x010,
	PVDMA_REG_TOKEN_HI = 0x014,
	PVDMA_REG_RING_ENTRIES = 0x018,
	PVDMA_REG_GRANULE = 0x01c,
	PVDMA_REG_WINDOW = 0x020,
	PVDMA_REG_MAX_MAPPED_MB = 0x024,
	PVDMA_REG_MAX_MAPPINGS = 0x028,
	PVDMA_REG_DOORBELL = 0x030,
	PVDMA_REG_CONSUMER = 0x034,
	PVDMA_REG_CONTROL = 0x038,
	PVDMA_REG_STAT_REQUESTS = 0x040,
	PVDMA_REG_STAT_MAPS = 0x044,
	PVDMA_REG_STAT_UNMAPS = 0x048,
	PVDMA_REG_STAT_WINDOWS = 0x04c,
	PVDMA_REG_STAT_BYTES_LO = 0x050,
	PVDMA_REG_STAT_BYTES_HI = 0x054,
	PVDMA_REG_STAT_ERRORS = 0x058,
	PVDMA_REG_STAT_DELAYED = 0x05c,
	PVDMA_REG_STAT_LAZY = 0x060,
};

#define PVDMA_CONTROL_ENABLE 0x1u
#define PVDMA_CONTROL_IRQ_ALL 0x2u

enum pvdma_op {
	PVDMA_OP_MAP = 1,
	PVDMA_OP_UNMAP = 2,
	PVDMA_OP_NOP = 3,
};

#define PVDMA_DIR_DEV_READS 0x1u
#define PVDMA_DIR_DEV_WRITES 0x2u
#define PVDMA_STATUS_PENDING 0xffffffffu

struct pvdma_ring_header { /* at BAR2 + 0 */
	uint32_t producer;
	uint32_t reserved[15];
};

struct pvdma_entry { /* at BAR2 + 64 + 64 * (index % RING_ENTRIES) */
	uint32_t op;
	uint32_t status;
	uint64_t cookie;
	uint64_t gpa;
	uint64_t len;
	uint32_t dir;
	uint32_t align;
	uint64_t handle;
	uint64_t dva;
	uint64_t reserved;
};

_Static_assert(sizeof(struct pvdma_ring_header) == PVDMA_RING_HEADER, "ring header size");
_Static_assert(sizeof(struct pvdma_entry) == PVDMA_ENTRY_SIZE, "ring entry size");
_Static_assert(PVDMA_RING_HEADER + PVDMA_RING_ENTRIES * PVDMA_ENTRY_SIZE <= PVDMA_BAR2_SIZE,
	       "the ring fits BAR2");

struct tp_device;

struct tp_pvdma_opts {
	uint16_t vendor, device;    /* the companion's ids (pvdma-id=) */
	struct tp_pv_config policy; /* window, lazy unmap, caps */
	const char *name;           /* log prefix (default "pvdma0") */
};

/* Defaults: the spec's ids and tp_pv_config_default. */
void tp_pvdma_opts_default(struct tp_pvdma_opts *o);
/*
 * Options as `thunderpass serve -o` gives them, each key with the "pvdma-"
 * prefix: pvdma-id=VVVV:DDDD, pvdma-window=SIZE, pvdma-lazy-ms=N,
 * pvdma-lazy-max=SIZE, pvdma-max-mapped=SIZE (whole MiB),
 * pvdma-max-mappings=N. -EINVAL (logged) for anything else.
 */
int tp_pvdma_parse_opts(const struct tp_backend_opt *opts, size_t nopts, struct tp_pvdma_opts *o);
/* True for a key tp_pvdma_parse_opts takes (the CLI routes -o by it). */
int tp_pvdma_is_opt(const char *key);
/* One help line for the options. */
extern const char tp_pvdma_opts_help[];

/*
 * The companion backend bound to `managed` (an open tp_device; it must
 * outlive the backend). At most one companion per managed device: -EBUSY.
 */
int tp_pvdma_create(struct tp_device *managed, const struct tp_pvdma_opts *o,
		    struct tp_backend **out);

/*
 * The serving loop's timer (tp_server_opts.timer): lazy windows whose time
 * came are unmapped, waiting MAPs retried. Cheap when nothing is due (one
 * atomic load). Returns the next deadline (ns, tp_now_ns clock; 0: none).
 */
uint64_t tp_pvdma_timer(void *backend, uint64_t now_ns);

/* The policy's statistics (tests, bench, logs); takes the DMA lock. */
void tp_pvdma_stats(struct tp_backend *be, struct tp_pv_stats *st);

#endif
