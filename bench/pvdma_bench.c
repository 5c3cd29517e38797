/* SPDX-License-Identifier: MIT */
/*
 * pvdma through the core, in one process: the model GPU under the dart IOMMU
 * model, the pvdma companion bound to it, the ring written in its BAR2 and
 * rung through trapped BAR0 writes (tp_device_region_write, no socket).
 *
 *   1. requests per second through the ring for batches of 1, 16 and 256
 *      entries (MAPs of 4 KiB buffers, then their UNMAPs), sequential buffers;
 *   2. DART work per MAP: IOMMU mappings made and PTEs written (the policy's
 *      counters), for sequential, random and mixed buffer patterns, with the
 *      default window and lazy unmap.
 *
 * Prints; asserts nothing. Guest memory has no pages behind it (the policy
 * and the DART never touch guest memory).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <thunderpass/log.h>

#include "../backends/pvdma/pvdma.h"
#include "device.h"

#define GUEST_IOVA 0x100000000ull
#define GUEST_SIZE (4ull << 30)
#define KiB 1024ull
#define LIVE 256 /* buffers a driver keeps mapped at once */

static struct tp_device gpu, comp;
static struct tp_backend *pv;
static uint8_t *bar2;
static uint32_t prod;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static struct pvdma_entry *slot(uint32_t i)
{
	return (struct pvdma_entry *)(bar2 + PVDMA_RING_HEADER) + i % PVDMA_RING_ENTRIES;
}

static void reg_wr(uint32_t off, uint32_t v)
{
	tp_device_region_write(&comp, 0, off, &v, 4, false);
}

static uint32_t put(uint32_t op, uint64_t gpa, uint64_t len, uint64_t handle)
{
	*slot(prod) = (struct pvdma_entry){ .op = op, .status = PVDMA_STATUS_PENDING,
					    .gpa = gpa, .len = len, .dir = 3, .handle = handle };
	return prod++;
}

static void ring(void)
{
	((struct pvdma_ring_header *)bar2)->producer = prod;
	reg_wr(PVDMA_REG_DOORBELL, prod);
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

enum pattern { SEQ, RANDOM, MIXED };

/* The i-th buffer of a pattern: its address and length. */
static void buffer(enum pattern pat, uint64_t i, uint64_t *seed, uint64_t *gpa, uint64_t *len)
{
	switch (pat) {
	case SEQ: /* a stream of 4 KiB buffers through 1 GiB */
		*gpa = GUEST_IOVA + (i * 4096) % (1ull << 30);
		*len = 4096;
		break;
	case RANDOM: /* 4 KiB pages anywhere in 4 GiB */
		*gpa = GUEST_IOVA + (rnd(seed) % (GUEST_SIZE / 4096)) * 4096;
		*len = 4096;
		break;
	case MIXED: /* pages, 64 KiB buffers and 2 MiB ones, in 1 GiB */
		switch (rnd(seed) % 8) {
		case 0: *len = 2048 * KiB; break;
		case 1: case 2: *len = 64 * KiB; break;
		default: *len = 4096; break;
		}
		*gpa = GUEST_IOVA + (rnd(seed) % ((1ull << 30) / *len)) * *len;
		break;
	}
}

/* Keeps LIVE buffers mapped, n MAPs in batches of `batch`, each batch
 * followed by the UNMAPs of the oldest ones. Returns requests per second. */
static double run(enum pattern pat, unsigned batch, uint64_t n, struct tp_pv_stats *d)
{
	static uint64_t live[LIVE];
	uint64_t seed = 0x9e3779b97f4a7c15ull, t0, t, nlive = 0, head = 0, reqs = 0;
	struct tp_pv_stats a, b;

	reg_wr(PVDMA_REG_CONTROL, 0);
	reg_wr(PVDMA_REG_CONTROL, PVDMA_CONTROL_ENABLE);
	prod = 0;
	tp_pvdma_stats(pv, &a);
	t0 = now_ns();
	for (uint64_t i = 0; i < n;) {
		uint32_t first = prod;
		unsigned k;

		for (k = 0; k < batch && i < n; k++, i++) {
			uint64_t gpa = 0, len = 0;

			buffer(pat, i, &seed, &gpa, &len);
			put(PVDMA_OP_MAP, gpa, len, 0);
		}
		ring();
		reqs += k;
		for (unsigned j = 0; j < k; j++) {
			if (slot(first + j)->status) {
				fprintf(stderr, "MAP failed: status %u\n", slot(first + j)->status);
				exit(1);
			}
			if (nlive == LIVE) {
				/* The oldest goes, in this batch's UNMAP doorbell. */
				put(PVDMA_OP_UNMAP, 0, 0, live[head]);
				head = (head + 1) % LIVE;
				nlive--;
			}
			live[(head + nlive) % LIVE] = slot(first + j)->handle;
			nlive++;
		}
		if (prod != first + k) {
			reqs += prod - (first + k);
			ring();
		}
	}
	t = now_ns() - t0;
	tp_pvdma_stats(pv, &b);
	memset(d, 0, sizeof(*d));
	d->maps = b.maps - a.maps;
	d->iommu_maps = b.iommu_maps - a.iommu_maps;
	d->iommu_bytes = b.iommu_bytes - a.iommu_bytes;
	d->lazy_hits = b.lazy_hits - a.lazy_hits;
	/* Held now for the LIVE buffers (lazy windows give way under pressure). */
	d->bytes = b.bytes - b.lazy_bytes;
	return (double)reqs / ((double)t / 1e9);
}

static int companion_open(uint64_t window)
{
	struct tp_pvdma_opts po;

	tp_pvdma_opts_default(&po);
	po.policy.window = window;
	if (tp_pvdma_create(&gpu, &po, &pv) || tp_device_open(&comp, pv, NULL)) {
		fprintf(stderr, "cannot set up the companion\n");
		return -1;
	}
	bar2 = mmap(NULL, PVDMA_BAR2_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		    comp.regions[2].d.mmap_fd, 0);
	return bar2 == MAP_FAILED ? -1 : 0;
}

static void companion_close(void)
{
	reg_wr(PVDMA_REG_CONTROL, 0);
	munmap(bar2, PVDMA_BAR2_SIZE);
	tp_device_close(&comp);
}

int main(int argc, char **argv)
{
	const struct tp_backend_type *t = tp_backend_find("model");
	static const char *const names[] = { "sequential 4 KiB", "random 4 KiB",
					     "mixed 4K/64K/2M" };
	static const uint64_t windows[] = { 16 * KiB, 64 * KiB, 256 * KiB, 1024 * KiB };
	struct tp_backend *be;
	struct tp_pv_stats d;
	uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 0) : 400000;

	tp_log_set_level(TP_LOG_ERROR);
	if (t->create(NULL, 0, &be) || tp_device_open(&gpu, be, "dart") ||
	    tp_device_dma_map(&gpu, GUEST_IOVA, GUEST_SIZE, -1, 0, 3)) {
		fprintf(stderr, "cannot set up the model GPU\n");
		return 1;
	}
	if (companion_open(TP_PV_WINDOW_DEFAULT))
		return 1;

	run(SEQ, 16, n / 4, &d); /* warm-up: record arrays grown, pages touched */
	printf("pvdma ring throughput (in process, doorbell through the core; MAP 4 KiB "
	       "sequential + UNMAP, %d live)\n", LIVE);
	printf("  %-6s %14s %14s\n", "batch", "requests/s", "ns/request");
	for (unsigned bi = 0; bi < 3; bi++) {
		static const unsigned batches[] = { 1, 16, 256 };
		double rps = run(SEQ, batches[bi], n, &d);

		printf("  %-6u %14.0f %14.1f\n", batches[bi], rps, 1e9 / rps);
	}
	companion_close();
	printf("\nDART work per MAP (lazy 10 ms, batch 16, %d buffers live; held/buf: IOMMU "
	       "bytes referenced at the end per live buffer, what counts against the cap)\n",
	       LIVE);
	printf("  %-18s %7s %12s %13s %13s %10s %11s\n", "pattern", "window", "requests/s",
	       "maps/request", "PTEs/request", "lazy hits", "held/buf");
	for (unsigned wi = 0; wi < sizeof(windows) / sizeof(windows[0]); wi++) {
		if (companion_open(windows[wi]))
			return 1;
		for (unsigned pi = 0; pi < 3; pi++) {
			double rps = run((enum pattern)pi, 16, n / 4, &d);

			printf("  %-18s %6" PRIu64 "K %12.0f %13.3f %13.2f %10" PRIu64 " %10.0fK\n",
			       names[pi], windows[wi] >> 10, rps,
			       (double)d.iommu_maps / (double)d.maps,
			       (double)d.iommu_bytes / 16384.0 / (double)d.maps, d.lazy_hits,
			       (double)d.bytes / LIVE / 1024.0);
		}
		companion_close();
	}
	tp_device_close(&gpu);
	return 0;
}
