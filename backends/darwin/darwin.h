/* SPDX-License-Identifier: MIT */
/*
 * The darwin backend's internals: thunderpass's client of its PCIDriverKit
 * driver extension (darwin/dext/), through IOKit user-client calls whose
 * selectors and structures are in include/thunderpass/darwin_uc.h.
 *
 * Files: darwin.c (the ops, options, open/close), darwin_iokit.c (finding
 * the service for a bus/device/function, the call wrappers, kern_return_t
 * to -errno, `thunderpass list`), darwin_dma.c (DMA maps through the dext
 * and the "darwin" IOMMU model built on them), darwin_irq.c (the interrupt
 * notification thread).
 *
 * Built on macOS against IOKit.framework; built on Linux only for the tests,
 * against the stand-in in tests/darwin/ (same header names, in-process
 * driver extension backed by the model GPU).
 *
 * Threading: the core's message thread calls the ops; the IOMMU model runs
 * under the core's DMA lock; the interrupt thread only reads the IRQ page,
 * calls tp_backend_irq and re-arms. IOKit calls are thread-safe (Mach IPC;
 * the dext serializes them on its queue).
 */
#ifndef TP_DARWIN_H
#define TP_DARWIN_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <CoreFoundation/CoreFoundation.h>
#include <IOKit/IOKitLib.h>
#include <mach/mach.h>

#include <thunderpass/backend.h>
#include <thunderpass/darwin_uc.h>

#include "iommu.h"

/* The registry in lib/backends.c refers to this (macOS builds). */
extern const struct tp_backend_type tp_backend_darwin;

#define DARWIN_WHO "darwin"

struct darwin_bar {
	struct tp_duc_bar info;
	volatile uint8_t *map;   /* IOConnectMapMemory64 mapping; NULL: MMIO selectors */
	uint64_t map_size;
	bool wc;                 /* mapped write-combined (prefetchable) */
};

struct darwin_iommu;

struct darwin_dev {
	struct tp_backend be;    /* first: the ops turn be back into the device */
	unsigned bus, dev, fn;   /* what the user asked for (-o device=) */
	io_service_t service;
	io_connect_t conn;
	struct tp_duc_info info;
	struct darwin_bar bars[TP_DUC_NUM_BARS];
	bool no_map;             /* -o map=off: every BAR access through the dext */

	/* interrupts (darwin_irq.c) */
	uint32_t irq_type;       /* TP_DUC_IRQ_MSI/MSIX, 0: none set up */
	uint32_t irq_vectors;    /* granted by the dext */
	struct tp_duc_irq_page *irq_page;
	IONotificationPortRef irq_port;
	pthread_t irq_thread;
	bool irq_thread_started;
	int irq_stop;            /* atomic: the thread leaves */
	int irq_armed;           /* atomic: an IRQ_ARM is outstanding */
	int irq_aborted;         /* atomic: the dext ended the wait (teardown) */
	uint64_t irq_notifications, irq_raised, irq_arm_errors; /* atomics */

	/* DMA: the IOMMU model bound to this device (darwin_dma.c), or NULL */
	struct darwin_iommu *mmu;
};

static inline struct darwin_dev *darwin_of(struct tp_backend *be)
{
	return (struct darwin_dev *)be;
}

/* ---- darwin_iokit.c ------------------------------------------------------ */

/* kern_return_t (IOReturn) -> -errno. */
int tp_darwin_errno(kern_return_t kr);
const char *tp_darwin_krstr(kern_return_t kr);

/*
 * "0000:03:00.0", "03:00.0" (hex, as lspci and `thunderpass list` print
 * them) -> bus, device, function. -EINVAL on anything else.
 */
int tp_darwin_parse_bdf(const char *s, unsigned *bus, unsigned *dev, unsigned *fn);

/*
 * The dext's service attached to the PCI function at bus:dev.fn (its parent
 * IOPCIDevice's "pcidebug" names it). -ENOENT (logged, with what was found)
 * when there is none.
 */
int tp_darwin_find_service(unsigned bus, unsigned dev, unsigned fn, io_service_t *out);

/*
 * One user-client call: exactly nin scalars and sinlen structure bytes in,
 * exactly nout scalars and soutlen structure bytes back (a reply of another
 * size is -EPROTO: the two sides disagree on darwin_uc.h). Returns 0 or
 * -errno from the dext's kern_return_t; logs nothing (the caller knows
 * what the call was for).
 */
int tp_darwin_call(struct darwin_dev *d, uint32_t sel, const uint64_t *in, uint32_t nin,
		   const void *sin, size_t sinlen, uint64_t *out, uint32_t nout, void *sout,
		   size_t soutlen);

/*
 * `thunderpass list` on macOS: every PCI function the IORegistry knows,
 * with its identity, whether it is tunnelled (Thunderbolt/USB4), whether the
 * thunderpass dext is attached and whether a thunderpass holds it. Returns
 * the number of functions listed, or -errno.
 */
int tp_darwin_list(FILE *out);

/* ---- darwin_dma.c ---------------------------------------------------------- */

/*
 * Maps [va, va + len) of this process's memory for the device's DMA through
 * the dext (dir: TP_DUC_DMA_*). *out gets the handle and every segment the
 * DART chose, checked (1..32 segments adding up to len). The segment-level
 * primitive; the IOMMU model below is built on it.
 */
int tp_darwin_dma_map(struct darwin_dev *d, uint64_t va, uint64_t len, uint32_t dir,
		      struct tp_duc_dma_map_out *out);
int tp_darwin_dma_unmap(struct darwin_dev *d, uint64_t handle);

/*
 * The "darwin" IOMMU model (lib/iommu.h's contract, host-chosen device
 * addresses like "dart", but the real DART's through the dext). The device
 * this backend opened; the caller owns the model (destroy). See
 * darwin_dma.c for the rules and docs/macos.md for the core hook that
 * installs it.
 */
int tp_darwin_iommu_create(struct tp_backend *be, const char *who, struct tp_iommu **out);
/* The backend is going: the model must not call the dext any more (the
 * user client's close frees every mapping in the dext anyway). */
void tp_darwin_iommu_detach(struct darwin_dev *d);

/* ---- darwin_irq.c ---------------------------------------------------------- */

/* Sets up the device's message-signalled interrupts in the dext, maps the
 * IRQ page and starts the notification thread. No capability: 0, nothing
 * set up (logged). */
int tp_darwin_irq_start(struct darwin_dev *d, const char *want);
void tp_darwin_irq_stop(struct darwin_dev *d);

#endif
