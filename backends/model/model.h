/* SPDX-License-Identifier: MIT */
/*
 * The model backend's internals: a software NVIDIA GB202 (GeForce RTX 5090)
 * that presents itself to the core exactly as a physical PCI function would:
 * raw config space with host-assigned BAR addresses, a BAR0 register file,
 * VRAM (BAR1) and BAR3 as shared memory the client maps directly, and a VBIOS
 * in the expansion ROM.
 *
 * Files: model.c (ops table, options, regions), model_config.c (config space),
 * model_bar0.c (BAR0 registers), model_vbios.c (the ROM image).
 *
 * Locking: m->lock guards config space and BAR0 register state. The ops in
 * model.c take it; every model_cfg_* and model_bar0_* function below expects
 * it held (the BAR0 config mirror calls the config code under the same lock).
 * VRAM and BAR3 are plain shared memory and need no lock.
 */
#ifndef THUNDERPASS_MODEL_H
#define THUNDERPASS_MODEL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <thunderpass/backend.h>

#include "util.h" /* tp_le_get/tp_le_put/tp_range_ok */

/* The registry in lib/backends.c refers to this. */
extern const struct tp_backend_type tp_backend_model;

/*
 * Identity. Subsystem 10de:2b85: NVIDIA's own boards (Founders Edition) carry
 * NVIDIA as subsystem vendor; the subsystem id repeats the device id because
 * we model no particular board, and NVIDIA's driver name tables match 2b85
 * with any subsystem, so guests still call it "GeForce RTX 5090". A real
 * partner board's id would let software pick board-specific tables we do not
 * model.
 */
#define MODEL_VENDOR 0x10deu
#define MODEL_DEVICE 0x2b85u
#define MODEL_REVISION 0xa1u
#define MODEL_CLASS 0x030000u /* display, VGA-compatible */
#define MODEL_SUBSYS_VENDOR 0x10deu
#define MODEL_SUBSYS_DEVICE 0x2b85u

#define MODEL_CFG_SIZE 4096u
#define MODEL_BAR0_SIZE (16u << 20)
#define MODEL_BAR3_SIZE (32u << 20)
#define MODEL_ROM_SIZE (128u << 10)
#define MODEL_VRAM_DEFAULT (256ull << 20)
#define MODEL_VRAM_MIN (64ull << 20)
#define MODEL_VRAM_MAX (4ull << 30)

/*
 * Host ("physical") BAR addresses, as a host's firmware might assign them:
 * BAR0 and the ROM in the 32-bit non-prefetchable window, BAR1 and BAR3 in
 * the 64-bit prefetchable one. BAR3 sits 32 GiB above BAR1 so that BAR1 can
 * take its largest Resizable BAR size without overlapping. The core never
 * shows these to the guest.
 */
#define MODEL_BAR0_ADDR 0xa0000000u
#define MODEL_ROM_ADDR 0xa1000000u
#define MODEL_BAR1_ADDR 0x6000000000ull
#define MODEL_BAR3_ADDR 0x6800000000ull

/* Capability chain. */
#define MODEL_CAP_PM 0x60u
#define MODEL_CAP_MSI 0x68u
#define MODEL_CAP_PCIE 0x78u
#define MODEL_CAP_MSIX 0xb4u
#define MODEL_CAP_VNDR 0xc0u
#define MODEL_ECAP_REBAR 0x100u

/* MSI-X: 9 vectors, table and PBA in BAR0 where GA102/AD102 boards have them. */
#define MODEL_MSIX_VECTORS 9u
#define MODEL_MSIX_ENTRY 16u
#define MODEL_MSIX_TABLE 0xb90000u
#define MODEL_MSIX_PBA 0xba0000u
#define MODEL_MSIX_PBA_SIZE 8u /* one QWORD holds the 9 pending bits */

/* BAR0 windows. */
#define MODEL_BAR0_CFG_MIRROR 0x88000u
#define MODEL_BAR0_PROM 0x300000u
#define MODEL_BAR0_PROM_SIZE 0x100000u

/* BAR0 registers. */
#define MODEL_PMC_BOOT_0 0x000u
#define MODEL_PMC_BOOT_1 0x004u
#define MODEL_PMC_ENABLE 0x200u
#define MODEL_PMC_BOOT_42 0xa00u
#define MODEL_PTIMER_TIME_0 0x9400u
#define MODEL_PTIMER_TIME_1 0x9410u

#define MODEL_BOOT_0_VALUE 0x1b2000a1u  /* chipset 0x1b2 (GB202), rev A1 */
#define MODEL_BOOT_42_VALUE 0x1b2a1000u /* arch 0x1b, impl 2, rev A1 */
#define MODEL_BAR0_BADF 0xbadf1100u

/* The copy engine (docs/copy-engine.md), a BAR0 window. */
#define MODEL_CE_BASE 0xf00000u
#define MODEL_CE_SIZE 0x100u

struct model_ce_job {
	uint64_t src, dst, fence;
	uint32_t len, flags, fence_value, vector;
};

struct model_ce {
	/* Registers (guarded by the model lock). */
	struct model_ce_job regs;
	uint32_t status;        /* error code of the last job in bits 15:8 */
	uint32_t intr_status, intr_enable;
	uint32_t completed, faults;
	uint64_t fault_addr;
	uint32_t duration_ns;
	int intx_level;         /* what we last told the core */
	/* The worker thread and its hand-over (same lock). */
	pthread_t thread;
	pthread_cond_t kick, idle;
	int thread_started;
	int pending, busy, stop;
	volatile int cancel;    /* read by the worker between chunks */
	struct model_ce_job job;
	uint8_t *bounce;        /* device-to-device copies */
};

/*
 * Injected faults (option fault=, model_fault.c; docs/model.md): each one is
 * something that breaks passthrough on real hardware, so that `thunderpass
 * doctor` and the tests can show it being caught at the right stage.
 */
enum model_fault {
	MODEL_FAULT_NONE = 0,
	MODEL_FAULT_OFF_BUS,         /* config space and every BAR read all-ones */
	MODEL_FAULT_BARS_UNASSIGNED, /* BAR address bits 0; MMIO reads all-ones */
	MODEL_FAULT_LINK_X1_GEN1,    /* LinkSta: x1 at 2.5 GT/s */
	MODEL_FAULT_DMA_BROKEN,      /* every copy-engine DMA faults at its first address */
	MODEL_FAULT_NO_IRQ,          /* the copy engine never raises its interrupt */
	MODEL_FAULT_NO_FLR_RETURN,   /* after a reset, config reads CRS / all-ones for good */
};

/* A memory BAR backed by an fd the client maps (BAR1 VRAM, BAR3). */
struct model_mem {
	int fd;
	uint8_t *map; /* the server's own MAP_SHARED mapping, for trapped access */
	uint64_t size;
};

struct model {
	struct tp_backend be; /* first: the ops turn be back into the model */
	pthread_mutex_t lock;
	enum model_fault fault;
	int gone; /* NO_FLR_RETURN after a reset: atomic, read without the lock */

	/* Config space: live bytes, and per-byte tables (see model_config.c). */
	uint8_t cfg[MODEL_CFG_SIZE];
	uint8_t cfg_boot[MODEL_CFG_SIZE];  /* value after power-on enumeration */
	uint8_t cfg_wmask[MODEL_CFG_SIZE]; /* bits a write latches */
	uint8_t cfg_w1c[MODEL_CFG_SIZE];   /* bits a written 1 clears */
	uint8_t cfg_keep[MODEL_CFG_SIZE];  /* bits a function-level reset keeps */

	/* BAR0 register state (model_bar0.c). */
	uint32_t pmc_enable;
	uint8_t msix_table[MODEL_MSIX_VECTORS * MODEL_MSIX_ENTRY];
	uint64_t msix_pba;
	uint64_t ptimer_base_ns; /* CLOCK_MONOTONIC when the model was created */
	uint64_t ptimer_adjust;  /* added mod 2^64: lets a driver set the time */

	struct model_ce ce;

	struct model_mem vram; /* BAR1 */
	struct model_mem bar3;
	uint8_t *rom;          /* MODEL_ROM_SIZE bytes: the VBIOS, then 0xff */
	size_t rom_image_len;  /* bytes of it that are the image */
};

static inline struct model *model_of(struct tp_backend *be)
{
	return (struct model *)be;
}

/* model.c: function-level reset of the device (config and BAR0). Lock held. */
void model_flr(struct model *m);

/* model_config.c. Lock held. Any length within the 4096 bytes (the BAR0
 * mirror passes pieces of 8-byte accesses); the ops check the 1/2/4 rule. */
void model_cfg_init(struct model *m);
int model_cfg_read(struct model *m, uint32_t off, void *buf, uint32_t len);
int model_cfg_write(struct model *m, uint32_t off, const void *buf, uint32_t len);
void model_cfg_flr(struct model *m);

/* model_bar0.c. Lock held. len 1, 2, 4 or 8; off + len <= 16 MiB. */
void model_bar0_init(struct model *m);
void model_bar0_reset(struct model *m);
int model_bar0_read(struct model *m, uint64_t off, void *buf, uint32_t len);
int model_bar0_write(struct model *m, uint64_t off, const void *buf, uint32_t len);

/* model_ce.c: the copy engine. read/write: lock held, reg within the window.
 * stop: lock held; cancels a running job and waits until it no longer touches
 * memory (used by reset). */
int model_ce_start(struct model *m);
void model_ce_shutdown(struct model *m);
uint32_t model_ce_read(const struct model *m, uint32_t reg);
void model_ce_write(struct model *m, uint32_t reg, uint32_t val, uint32_t mask);
void model_ce_stop(struct model *m);
void model_ce_update_intx(struct model *m);

/* model_fault.c: the injected faults. parse: 0 or -EINVAL; names: for help
 * lines ("none, off-bus, ..."). init: after model_cfg_init, shapes the boot
 * config (BAR addresses, link status). read: 1 when the fault answered the
 * access (buf filled), 0 to serve it normally; writes_dropped: 1 when writes
 * must be ignored. mappable: 0 when BAR1/BAR3 must not be offered for mmap
 * (a dead or unassigned BAR must read all-ones, which shared memory cannot). */
int model_fault_parse(const char *name, enum model_fault *out);
const char *model_fault_names(void);
void model_fault_init(struct model *m);
void model_fault_after_reset(struct model *m);
int model_fault_read(struct model *m, uint32_t index, uint64_t off, void *buf, uint32_t len);
int model_fault_writes_dropped(struct model *m, uint32_t index);
int model_fault_mappable(const struct model *m);

/* model_vbios.c: fills rom (size bytes) with the VBIOS image and 0xff after
 * it; returns the image length, 0 if size is too small to hold it. */
#define MODEL_VBIOS_VERSION "thunderpass model GB202 VBIOS 1.0"
size_t model_vbios_build(uint8_t *rom, size_t size);

#endif
