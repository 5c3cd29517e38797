/* SPDX-License-Identifier: MIT */
/*
 * Copy-engine bandwidth, measured by the server (the engine's own CE_DURATION_NS)
 * next to a plain memcpy of the same sizes, in the same run: the model backend
 * under the core with the identity IOMMU, guest memory from a memfd, the engine
 * programmed through trapped BAR0 writes and completion taken from an eventfd.
 * Prints ratios; asserts nothing.
 */
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <thunderpass/log.h>

#include "device.h"

#define IOVA 0x100000000ull
#define GUEST (160ull << 20)
#define CE 0xf00000u

static struct tp_device dev;
static int efd;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void wr(uint32_t reg, uint32_t v)
{
	tp_device_region_write(&dev, 0, CE + reg, &v, 4, true);
}

static uint32_t rd(uint32_t reg)
{
	uint32_t v = 0;

	tp_device_region_read(&dev, 0, CE + reg, &v, 4);
	return v;
}

/* One job; returns the engine's duration in ns (0 on error). */
static uint64_t run_job(uint64_t src, uint64_t dst, uint32_t len, uint32_t flags)
{
	struct pollfd p = { .fd = efd, .events = POLLIN };
	uint64_t n;

	wr(0x10, (uint32_t)src);
	wr(0x14, (uint32_t)(src >> 32));
	wr(0x18, (uint32_t)dst);
	wr(0x1c, (uint32_t)(dst >> 32));
	wr(0x20, len);
	wr(0x24, flags | 0x20);
	wr(0x40, 1);
	if (poll(&p, 1, 10000) != 1 || read(efd, &n, 8) != 8)
		return 0;
	wr(0x48, 3);
	if (rd(0x44) >> 8)
		return 0;
	return rd(0x60);
}

static double best_memcpy(uint8_t *dst, const uint8_t *src, size_t len, int reps)
{
	double best = 1e30;

	for (int i = 0; i < reps; i++) {
		uint64_t t = now_ns();

		memcpy(dst, src, len);
		t = now_ns() - t;
		if (t < best)
			best = (double)t;
	}
	return best;
}

int main(void)
{
	const struct tp_backend_type *t = tp_backend_find("model");
	struct tp_backend *be;
	const char *vram_opt[] = { "vram" };
	struct tp_backend_opt opt = { vram_opt[0], "128M" };
	struct tp_vu_irq_set s = { sizeof(s), TP_VU_IRQ_DATA_EVENTFD | TP_VU_IRQ_ACTION_TRIGGER,
				   TP_IRQ_MSIX, 0, 1 };
	static const uint32_t sizes[] = { 1u << 20, 64u << 20 };
	int memfd, fd;
	uint8_t *guest, *scratch;

	tp_log_set_level(TP_LOG_ERROR);
	if (t->create(&opt, 1, &be) || tp_device_open(&dev, be, "identity"))
		return 1;
	memfd = memfd_create("guest", MFD_CLOEXEC);
	if (memfd < 0 || ftruncate(memfd, GUEST))
		return 1;
	guest = mmap(NULL, GUEST, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	scratch = malloc(64u << 20);
	if (guest == MAP_FAILED || !scratch)
		return 1;
	memset(guest, 0x5a, GUEST);
	memset(scratch, 0xa5, 64u << 20);
	if (tp_device_dma_map(&dev, IOVA, GUEST, dup(memfd), 0, 3))
		return 1;
	efd = eventfd(0, EFD_CLOEXEC);
	fd = dup(efd);
	if (tp_irqs_set(&dev.irqs, &s, NULL, 0, &fd, 1))
		return 1;
	wr(0x4c, 3);

	printf("copy engine (model, identity IOMMU), best of 5, engine-measured vs memcpy:\n");
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint32_t len = sizes[i];
		uint64_t to_vram = UINT64_MAX, from_vram = UINT64_MAX, d2d = UINT64_MAX;
		double mc = best_memcpy(scratch, guest, len, 5);

		for (int r = 0; r < 5; r++) {
			uint64_t a = run_job(IOVA, 0, len, 2);
			uint64_t b = run_job(0, IOVA + (64u << 20), len, 1);
			uint64_t c = run_job(IOVA, IOVA + (96u << 20), len, 0);

			if (!a || !b || !c) {
				fprintf(stderr, "a job failed\n");
				return 1;
			}
			to_vram = a < to_vram ? a : to_vram;
			from_vram = b < from_vram ? b : from_vram;
			d2d = c < d2d ? c : d2d;
		}
		printf("  %3u MiB: memcpy %7.2f GB/s | host->VRAM %7.2f GB/s (ratio %.2f) | "
		       "VRAM->host %7.2f GB/s (ratio %.2f) | host->host %7.2f GB/s (ratio %.2f)\n",
		       len >> 20, len / mc, len / (double)to_vram, mc / (double)to_vram,
		       len / (double)from_vram, mc / (double)from_vram, len / (double)d2d,
		       mc / (double)d2d);
	}
	tp_device_session_end(&dev);
	tp_device_close(&dev);
	return 0;
}
