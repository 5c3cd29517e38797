/* SPDX-License-Identifier: MIT */
/*
 * What the vfio guest clients (tp-vfio-edu, tp-vfio-nvme) share: one
 * connection to the server through lib/client.c, checks printed as
 * "ok ..." / "FAIL ..." with the first failure kept, and small wrappers for
 * the messages a device driver's life needs (DMA_MAP, SET_IRQS, region
 * access, GET_REGION_INFO with its sparse-mmap areas).
 */
#ifndef TP_TESTS_VFIO_VUTEST_H
#define TP_TESTS_VFIO_VUTEST_H

#include <stdbool.h>
#include <stdint.h>

#include "client.h"

extern struct tp_client vt_cl;

void vt_report(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "ok: what" or "FAIL: what: strerror" for an errno result. */
void vt_report_rc(int rc, const char *what);
/* Prints the verdict line "NAME: PASS (n checks)" / "NAME: FAIL first ...";
 * returns the exit status. */
int vt_finish(const char *name);

/* connect + VERSION */
int vt_connect(const char *path);
int vt_call(uint16_t cmd, const void *payload, uint32_t len, const int *fds, unsigned nfds,
	    void *reply, uint32_t cap);
int vt_dma_map(int fd, uint64_t offset, uint64_t iova, uint64_t size);
int vt_dma_unmap(uint64_t iova, uint64_t size);
/* SET_IRQS TRIGGER of vector start of index with efd; efd -1: the whole
 * index off. */
int vt_set_irq(uint32_t index, uint32_t start, int efd);
/* SET_IRQS MASK or UNMASK (DATA_NONE) of one vector. */
int vt_irq_action(uint32_t index, uint32_t start, uint32_t action);
/* Waits up to ms for the eventfd; returns its count (0: nothing came). */
uint64_t vt_wait_irq(int efd, int ms);
bool vt_irq_quiet(int efd);

uint32_t vt_rd32(uint32_t region, uint64_t off);
void vt_wr32(uint32_t region, uint64_t off, uint32_t v);
int vt_cfg(uint32_t off, void *buf, uint32_t len, bool write);
/* Memory decoding and bus master on, checked. */
void vt_enable_device(void);
/*
 * GET_REGION_INFO of a BAR with its sparse-mmap areas (at most max); *fd the
 * region's fd or -1; returns the number of areas, or -errno.
 */
int vt_region_areas(uint32_t index, struct tp_vu_region_info *info, struct tp_vu_sparse_area *areas,
		    uint32_t max, int *fd);

#endif
