/* SPDX-License-Identifier: MIT */
/*
 * The pvdma window policy (lib/pvdma_policy.c) on a real dart IOMMU model and
 * a guest memory map without memory behind it: coalescing, references, the
 * alignment promises, lazy unmap with an injected clock, both caps with
 * backpressure, teardown, guest memory going away, hostile requests, and a
 * randomized run against a reference model. TP_TEST_SEED changes the seed.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <thunderpass/log.h>
#include <thunderpass/protocol.h>

#include "pvdma_policy.h"

#define KiB (1ull << 10)
#define MiB (1ull << 20)
#define R1 0x100000000ull /* 256 MiB of guest memory */
#define R1_SIZE (256 * MiB)
#define R2 0x200000000ull /* 64 MiB more */
#define R2_SIZE (64 * MiB)
#define RW 3u
#define MS 1000000ull
#define MAX_DONE 1024

struct rig {
	struct tp_iommu *mmu;
	struct tp_dma_map mem;
	struct tp_pv *p;
	struct tp_pv_config cfg;
	uint32_t ndone;
	uint32_t done_tag[MAX_DONE];
	struct tp_pv_result done_res[MAX_DONE];
	void (*hook)(struct rig *r, uint32_t tag, const struct tp_pv_result *res);
	void *model; /* the randomized test's reference */
};

static void on_done(void *ctx, uint32_t tag, const struct tp_pv_result *res)
{
	struct rig *r = ctx;

	if (r->hook) {
		r->hook(r, tag, res);
		return;
	}
	assert_true(r->ndone < MAX_DONE);
	r->done_tag[r->ndone] = tag;
	r->done_res[r->ndone++] = *res;
}

static void add_region(struct rig *r, uint64_t iova, uint64_t size, uint32_t prot)
{
	struct tp_dma_region *reg;

	assert_int_equal(tp_dma_add(&r->mem, iova, size, -1, 0, prot, &reg), 0);
	assert_int_equal(r->mmu->ops->region_added(r->mmu, reg), 0);
}

/* As the core does it (dma_unmap_cb): the IOMMU, then the policy. */
static void remove_region(struct rig *r, uint64_t iova, uint64_t size)
{
	const struct tp_dma_region *reg = tp_dma_find(&r->mem, iova);
	uint64_t removed;

	assert_non_null(reg);
	r->mmu->ops->region_removed(r->mmu, reg);
	tp_pv_region_removed(r->p, reg);
	assert_int_equal(tp_dma_remove(&r->mem, iova, size, NULL, NULL, &removed), 0);
}

/* max_bytes 0: the default; lazy_ns ~0: the default. */
static struct rig *rig_open(uint64_t max_bytes, uint32_t max_mappings, uint64_t lazy_ns,
			    uint64_t lazy_max)
{
	struct rig *r = test_calloc(1, sizeof(*r));
	struct tp_dart_config dc;

	tp_dart_config_default(&dc);
	assert_int_equal(tp_iommu_dart_create("test", &dc, &r->mmu), 0);
	tp_dma_init(&r->mem, "test", 64);
	add_region(r, R1, R1_SIZE, RW);
	add_region(r, R2, R2_SIZE, RW);
	tp_pv_config_default(&r->cfg);
	if (max_bytes)
		r->cfg.max_bytes = max_bytes;
	if (max_mappings)
		r->cfg.max_mappings = max_mappings;
	if (lazy_ns != ~0ull)
		r->cfg.lazy_ns = lazy_ns;
	if (lazy_max)
		r->cfg.lazy_max = lazy_max;
	r->cfg.max_pending = 64;
	assert_int_equal(tp_pv_create(&r->cfg, r->mmu, &r->mem, "test", on_done, r, &r->p), 0);
	return r;
}

static void rig_close(struct rig *r)
{
	struct tp_pv_stats st;

	tp_pv_teardown(r->p, TP_PV_DISABLED);
	tp_pv_get_stats(r->p, &st);
	/* No leaks: nothing mapped, no handle, no waiter, in the policy and in
	 * the IOMMU model. */
	assert_int_equal(st.live, 0);
	assert_int_equal(st.bytes, 0);
	assert_int_equal(st.handles, 0);
	assert_int_equal(st.pending, 0);
	assert_int_equal(st.lazy, 0);
	assert_int_equal(r->mmu->st.live, 0);
	assert_int_equal(r->mmu->st.bytes, 0);
	tp_pv_destroy(r->p);
	r->mmu->ops->destroy(r->mmu);
	tp_dma_destroy(&r->mem);
	test_free(r);
}

static uint32_t map(struct rig *r, uint64_t gpa, uint64_t len, uint32_t align,
		    struct tp_pv_result *res)
{
	struct tp_pv_request rq = { gpa, len, RW, align };

	return tp_pv_map(r->p, &rq, (uint32_t)(gpa >> 12), res);
}

static uint64_t map_ok(struct rig *r, uint64_t gpa, uint64_t len, uint64_t *handle)
{
	struct tp_pv_result res;

	assert_int_equal(map(r, gpa, len, 0, &res), TP_PV_OK);
	*handle = res.handle;
	return res.dva;
}

/* The device address reaches the guest address, len bytes on. */
static void check_translate(struct rig *r, uint64_t dva, uint64_t gpa, uint64_t len)
{
	uint64_t iova, contig;

	/* prot 0: reachable at all (directions differ per request). */
	assert_int_equal(r->mmu->ops->translate(r->mmu, dva, len, 0, &iova, &contig), 0);
	assert_int_equal(iova, gpa);
	assert_int_equal(contig, len);
}

static struct tp_pv_stats stats(struct rig *r)
{
	struct tp_pv_stats st;

	tp_pv_get_stats(r->p, &st);
	return st;
}

static void test_coalescing(void **state)
{
	struct rig *r = rig_open(0, 0, ~0ull, 0);
	uint64_t h[16], dva0 = 0, hn;

	/* Sixteen 4 KiB buffers in one 256 KiB window: one IOMMU mapping. */
	for (unsigned i = 0; i < 16; i++) {
		uint64_t gpa = R1 + 0x40000 + i * 0x4000 + 0x100;
		uint64_t dva = map_ok(r, gpa, 4096, &h[i]);

		if (!i)
			dva0 = dva - (gpa - R1 - 0x40000);
		assert_int_equal(dva, dva0 + (gpa - R1 - 0x40000));
		check_translate(r, dva, gpa, 4096);
		for (unsigned j = 0; j < i; j++)
			assert_true(h[j] != h[i]);
	}
	assert_int_equal(stats(r).live, 1);
	assert_int_equal(stats(r).iommu_maps, 1);
	assert_int_equal(stats(r).handles, 16);
	assert_int_equal(stats(r).bytes, 256 * KiB);
	assert_int_equal(r->mmu->st.live, 1);
	/* The whole window is reachable, as one mapping. */
	check_translate(r, dva0, R1 + 0x40000, 256 * KiB);
	/* The next window is a second mapping. */
	map_ok(r, R1 + 0x80000, 8192, &hn);
	assert_int_equal(stats(r).live, 2);
	assert_int_equal(stats(r).windows, 2);
	rig_close(r);
}

static void test_refcounts(void **state)
{
	struct rig *r = rig_open(0, 0, ~0ull, 0);
	uint64_t a, b, c, dva_a, dva_c;

	dva_a = map_ok(r, R1, 4096, &a);
	map_ok(r, R1 + 8192, 4096, &b);
	assert_int_equal(tp_pv_unmap(r->p, a, 0), TP_PV_OK);
	/* b still holds the window. */
	assert_int_equal(stats(r).live, 1);
	assert_int_equal(stats(r).lazy, 0);
	check_translate(r, dva_a + 8192, R1 + 8192, 4096);
	/* Stale and unknown handles: never someone else's mapping. */
	assert_int_equal(tp_pv_unmap(r->p, a, 0), TP_PV_BAD_HANDLE);
	assert_int_equal(tp_pv_unmap(r->p, 0, 0), TP_PV_BAD_HANDLE);
	assert_int_equal(tp_pv_unmap(r->p, ~0ull, 0), TP_PV_BAD_HANDLE);
	assert_int_equal(tp_pv_unmap(r->p, b + 1, 0), TP_PV_BAD_HANDLE);
	assert_int_equal(tp_pv_unmap(r->p, b ^ (1ull << 40), 0), TP_PV_BAD_HANDLE);
	assert_int_equal(stats(r).handles, 1);
	/* The last reference: lazy, still mapped. */
	assert_int_equal(tp_pv_unmap(r->p, b, 0), TP_PV_OK);
	assert_int_equal(stats(r).lazy, 1);
	assert_int_equal(stats(r).live, 1);
	assert_int_equal(r->mmu->st.live, 1);
	/* Asked again: reused, no new IOMMU mapping, a new handle. */
	dva_c = map_ok(r, R1 + 0x1000, 4096, &c);
	assert_int_equal(dva_c, dva_a + 0x1000);
	assert_int_equal(stats(r).iommu_maps, 1);
	assert_int_equal(stats(r).lazy_hits, 1);
	assert_int_equal(stats(r).lazy, 0);
	assert_true(c != a && c != b);
	/* A slot reused by a new handle does not revive the old one. */
	assert_int_equal(tp_pv_unmap(r->p, b, 0), TP_PV_BAD_HANDLE);
	/* Mappings of their own go at once. */
	map_ok(r, R1 + 0x3f000, 0x2000, &a); /* crosses a window boundary */
	assert_int_equal(stats(r).own, 1);
	assert_int_equal(tp_pv_unmap(r->p, a, 0), TP_PV_OK);
	assert_int_equal(stats(r).own, 0);
	assert_int_equal(stats(r).lazy, 0);
	rig_close(r);
}

static uint64_t lowbit_cap(uint64_t v)
{
	uint64_t l = v ? v & (0 - v) : 2 * MiB;

	return l < 2 * MiB ? l : 2 * MiB;
}

static void test_alignment(void **state)
{
	struct rig *r = rig_open(0, 0, 0, 0);
	struct tp_pv_result res;
	uint64_t h, dva;

	/* Something first, so the aperture's start is no longer aligned. */
	map_ok(r, R1 + 0x4000, 4096, &h);
	/* A 2 MiB-aligned 4 MiB buffer: a 2 MiB-aligned device address. */
	dva = map_ok(r, R1 + 4 * MiB, 4 * MiB, &h);
	assert_int_equal(dva % (2 * MiB), 0);
	check_translate(r, dva, R1 + 4 * MiB, 4 * MiB);
	/* A 2 MiB-aligned small buffer inside a window: its window is mapped
	 * aligned like its start, so 2 MiB too. */
	dva = map_ok(r, R1 + 16 * MiB, 4096, &h);
	assert_int_equal(dva % (2 * MiB), 0);
	/* 64 KiB-aligned buffers, in windows and on their own. */
	dva = map_ok(r, R1 + 0x70000, 4096, &h);
	assert_int_equal(dva % (64 * KiB), 0);
	dva = map_ok(r, R1 + 0x130000, 0x20000, &h); /* crosses 0x140000 */
	assert_int_equal(dva % (64 * KiB), 0);
	check_translate(r, dva, R1 + 0x130000, 0x20000);
	/* An unaligned large buffer keeps its offset (mod 16 KiB, its lowbit). */
	dva = map_ok(r, R1 + 0x3ff00, 0x300, &h);
	assert_int_equal(dva % 256, 0x3ff00 % 256);
	assert_int_equal(dva & 0x3fff, 0x3ff00 & 0x3fff);
	/* align asks for more than gpa has: NOT_ALIGNED. */
	assert_int_equal(map(r, R1 + 0x10000, 4096, 17, &res), TP_PV_NOT_ALIGNED);
	assert_int_equal(map(r, R1 + 0x10000, 4096, 64, &res), TP_PV_NOT_ALIGNED);
	/* More than 2 MiB: a 4 MiB-aligned small buffer asking for 4 MiB gets a
	 * mapping of its own at a 4 MiB-aligned address. */
	assert_int_equal(map(r, R1 + 32 * MiB, 4096, 22, &res), TP_PV_OK);
	assert_int_equal(res.dva % (4 * MiB), 0);
	check_translate(r, res.dva, R1 + 32 * MiB, 4096);
	/* The promise on many buffers. */
	for (unsigned i = 0; i < 200; i++) {
		uint64_t gpa = R1 + 64 * MiB + ((uint64_t)i * 0x9e3779b9u % (64 * MiB) & ~0xffull);
		uint64_t len = 1 + (i * 7919u) % (600 * KiB);
		uint64_t l = lowbit_cap(gpa);

		dva = map_ok(r, gpa, len, &h);
		assert_int_equal(dva % l, gpa % l);
		check_translate(r, dva, gpa, len);
	}
	rig_close(r);
}

/*
 * A window clipped by a region start that is not window-aligned is only
 * aligned like that start: a buffer in it aligned further must not share it
 * (found by fuzz_pvdma, docs/security.md). The region starts at 0x...4000:
 * the window is mapped from there, 16 KiB-aligned; a 64 KiB-aligned buffer in
 * the same window still gets a 64 KiB-aligned device address.
 */
static void test_clipped_window_alignment(void **state)
{
	const uint64_t r3 = 0x300004000ull;
	struct rig *r = rig_open(0, 0, 0, 0);
	uint64_t h1, h2, dva;

	add_region(r, r3, 1 * MiB, RW);
	dva = map_ok(r, r3, 4096, &h1);
	assert_int_equal(dva % (16 * KiB), 0);
	assert_int_equal(stats(r).windows, 1);
	dva = map_ok(r, r3 + 0xc000, 4096, &h2); /* gpa 0x300010000 */
	assert_int_equal(dva % (64 * KiB), 0);
	check_translate(r, dva, r3 + 0xc000, 4096);
	assert_int_equal(tp_pv_unmap(r->p, h1, 0), TP_PV_OK);
	assert_int_equal(tp_pv_unmap(r->p, h2, 0), TP_PV_OK);
	rig_close(r);
}

static void test_lazy_expiry(void **state)
{
	struct rig *r = rig_open(0, 0, 10 * MS, 1 * MiB);
	uint64_t h[8];

	map_ok(r, R1, 4096, &h[0]);
	assert_int_equal(tp_pv_next_expiry(r->p), 0);
	assert_int_equal(tp_pv_unmap(r->p, h[0], 100 * MS), TP_PV_OK);
	assert_int_equal(tp_pv_next_expiry(r->p), 110 * MS);
	/* Not yet. */
	assert_int_equal(tp_pv_expire(r->p, 109 * MS), 110 * MS);
	assert_int_equal(stats(r).lazy, 1);
	assert_int_equal(r->mmu->st.live, 1);
	/* Now: unmapped from the IOMMU, nothing left to expire. */
	assert_int_equal(tp_pv_expire(r->p, 110 * MS), 0);
	assert_int_equal(stats(r).lazy, 0);
	assert_int_equal(stats(r).live, 0);
	assert_int_equal(stats(r).lazy_expired, 1);
	assert_int_equal(r->mmu->st.live, 0);
	/* The bound: 1 MiB of lazy windows is four; the oldest go first. */
	for (unsigned i = 0; i < 6; i++)
		map_ok(r, R1 + i * 256 * KiB, 4096, &h[i]);
	for (unsigned i = 0; i < 6; i++)
		assert_int_equal(tp_pv_unmap(r->p, h[i], 200 * MS + i * MS), TP_PV_OK);
	assert_int_equal(stats(r).lazy, 4);
	assert_int_equal(stats(r).lazy_bytes, 1 * MiB);
	assert_int_equal(stats(r).lazy_dropped, 2);
	assert_int_equal(r->mmu->st.live, 4);
	/* The survivors are the newest: windows 2..5. */
	map_ok(r, R1 + 2 * 256 * KiB, 4096, &h[0]);
	assert_int_equal(stats(r).lazy_hits, 1);
	map_ok(r, R1, 4096, &h[1]);
	assert_int_equal(stats(r).lazy_hits, 1);
	/* They expire one by one, in the order they became lazy. */
	assert_int_equal(tp_pv_expire(r->p, 213 * MS), 214 * MS);
	assert_int_equal(stats(r).lazy, 2);
	assert_int_equal(tp_pv_expire(r->p, 1000 * MS), 0);
	assert_int_equal(stats(r).lazy, 0);
	assert_int_equal(stats(r).live, 2);
	/* lazy_ns 0: no lazy windows at all. */
	rig_close(r);
	r = rig_open(0, 0, 0, 0);
	map_ok(r, R1, 4096, &h[0]);
	assert_int_equal(tp_pv_unmap(r->p, h[0], 0), TP_PV_OK);
	assert_int_equal(stats(r).live, 0);
	rig_close(r);
}

static void test_byte_cap(void **state)
{
	/* Room for four windows. */
	struct rig *r = rig_open(1 * MiB, 0, 10 * MS, 0);
	struct tp_pv_result res;
	uint64_t h[4], hb;

	for (unsigned i = 0; i < 4; i++)
		map_ok(r, R1 + i * 256 * KiB, 4096, &h[i]);
	/* A fifth window must wait... */
	assert_int_equal(map(r, R1 + 8 * MiB, 4096, 0, &res), TP_PV_PENDING);
	assert_int_equal(stats(r).pending, 1);
	assert_int_equal(stats(r).delayed, 1);
	/* ...and so must a later one that needs room (first come, first served)... */
	assert_int_equal(map(r, R1 + 9 * MiB, 4096, 0, &res), TP_PV_PENDING);
	/* ...but a buffer in a live window needs none. */
	assert_int_equal(map(r, R1 + 0x1000, 4096, 0, &res), TP_PV_OK);
	hb = res.handle;
	/* A request larger than the cap alone can never fit. */
	assert_int_equal(map(r, R1 + 16 * MiB, 2 * MiB, 0, &res), TP_PV_CAP);
	assert_int_equal(r->ndone, 0);
	assert_true(r->mmu->st.bytes <= 1 * MiB);
	/* Room frees: window 0 still has a reference, window 1 goes lazy and is
	 * dropped for the first waiter at once. */
	assert_int_equal(tp_pv_unmap(r->p, h[0], 0), TP_PV_OK);
	assert_int_equal(r->ndone, 0);
	assert_int_equal(tp_pv_unmap(r->p, h[1], 0), TP_PV_OK);
	assert_int_equal(r->ndone, 1);
	assert_int_equal(r->done_tag[0], (uint32_t)((R1 + 8 * MiB) >> 12));
	assert_int_equal(r->done_res[0].status, TP_PV_OK);
	check_translate(r, r->done_res[0].dva, R1 + 8 * MiB, 4096);
	assert_int_equal(stats(r).lazy_dropped, 1);
	assert_int_equal(stats(r).pending, 1);
	/* The second waiter after the next unmap. */
	assert_int_equal(tp_pv_unmap(r->p, h[2], 0), TP_PV_OK);
	assert_int_equal(r->ndone, 2);
	assert_int_equal(r->done_res[1].status, TP_PV_OK);
	check_translate(r, r->done_res[1].dva, R1 + 9 * MiB, 4096);
	assert_int_equal(stats(r).pending, 0);
	assert_true(stats(r).bytes <= 1 * MiB);
	/* Lazy windows make room before anyone waits. */
	assert_int_equal(tp_pv_unmap(r->p, h[3], 0), TP_PV_OK);
	assert_int_equal(tp_pv_unmap(r->p, hb, 0), TP_PV_OK);
	assert_int_equal(stats(r).lazy, 2);
	assert_int_equal(map(r, R1 + 12 * MiB, 4096, 0, &res), TP_PV_OK);
	assert_int_equal(map(r, R1 + 13 * MiB, 4096, 0, &res), TP_PV_OK);
	assert_int_equal(stats(r).lazy, 0);
	assert_int_equal(stats(r).live, 4);
	/* A waiter at teardown answers DISABLED. */
	assert_int_equal(map(r, R1 + 14 * MiB, 4096, 0, &res), TP_PV_PENDING);
	tp_pv_teardown(r->p, TP_PV_DISABLED);
	assert_int_equal(r->ndone, 3);
	assert_int_equal(r->done_res[2].status, TP_PV_DISABLED);
	rig_close(r);
}

static void test_mapping_cap(void **state)
{
	struct rig *r = rig_open(0, 3, 10 * MS, 0);
	struct tp_pv_result res;
	uint64_t h[3];

	for (unsigned i = 0; i < 3; i++)
		map_ok(r, R1 + i * MiB, 4096, &h[i]);
	assert_int_equal(map(r, R1 + 8 * MiB, 3 * MiB, 0, &res), TP_PV_PENDING);
	assert_int_equal(r->mmu->st.live, 3);
	/* A lazy window is dropped for the waiter. */
	assert_int_equal(tp_pv_unmap(r->p, h[0], 0), TP_PV_OK);
	assert_int_equal(r->ndone, 1);
	assert_int_equal(r->done_res[0].status, TP_PV_OK);
	assert_int_equal(r->done_res[0].dva % (2 * MiB), 0);
	check_translate(r, r->done_res[0].dva, R1 + 8 * MiB, 3 * MiB);
	assert_int_equal(stats(r).live, 3);
	assert_int_equal(stats(r).lazy, 0);
	rig_close(r);
}

static void test_teardown_and_regions(void **state)
{
	struct rig *r = rig_open(0, 0, 10 * MS, 0);
	uint64_t h1, h2, h3, h4, dva2;

	map_ok(r, R1 + 0x1000, 4096, &h1);
	map_ok(r, R1 + 3 * MiB, 5 * MiB, &h2);
	dva2 = map_ok(r, R2 + 0x2000, 4096, &h3);
	map_ok(r, R2 + 0x8000, 4096, &h4);
	assert_int_equal(tp_pv_unmap(r->p, h4, 0), TP_PV_OK); /* R2's window stays: h3 */
	map_ok(r, R2 + 5 * MiB, 4096, &h4);
	assert_int_equal(tp_pv_unmap(r->p, h4, 0), TP_PV_OK); /* lazy, in R2 */
	assert_int_equal(stats(r).live, 4);
	/* R1 goes: its mappings are torn down by the IOMMU model and
	 * forgotten by the policy, its handles die. */
	remove_region(r, R1, R1_SIZE);
	assert_int_equal(stats(r).live, 2);
	assert_int_equal(stats(r).region_kills, 2);
	assert_int_equal(r->mmu->st.live, 2);
	assert_int_equal(tp_pv_unmap(r->p, h1, 0), TP_PV_BAD_HANDLE);
	assert_int_equal(tp_pv_unmap(r->p, h2, 0), TP_PV_BAD_HANDLE);
	check_translate(r, dva2, R2 + 0x2000, 4096);
	/* New requests into the gone memory: BAD_RANGE. */
	{
		struct tp_pv_result res;

		assert_int_equal(map(r, R1 + 0x1000, 4096, 0, &res), TP_PV_BAD_RANGE);
	}
	/* The guest's teardown: everything, lazy windows too. */
	tp_pv_teardown(r->p, TP_PV_DISABLED);
	assert_int_equal(stats(r).live, 0);
	assert_int_equal(r->mmu->st.live, 0);
	assert_int_equal(tp_pv_unmap(r->p, h3, 0), TP_PV_BAD_HANDLE);
	/* And it works again afterwards. */
	map_ok(r, R2, 4096, &h1);
	assert_int_equal(stats(r).live, 1);
	rig_close(r);
}

static void test_hostile(void **state)
{
	struct rig *r = rig_open(0, 0, 10 * MS, 0);
	struct tp_pv_request rq;
	struct tp_pv_result res;
	static const struct {
		uint64_t gpa, len;
		uint32_t dir, align, want;
	} cases[] = {
		{ R1, 4096, 0, 0, TP_PV_BAD_OP },
		{ R1, 4096, 4, 0, TP_PV_BAD_OP },
		{ R1, 4096, 0x80000001u, 0, TP_PV_BAD_OP },
		{ R1, 0, RW, 0, TP_PV_BAD_RANGE },
		{ ~0ull - 10, 4096, RW, 0, TP_PV_BAD_RANGE },           /* wraps */
		{ R1, ~0ull, RW, 0, TP_PV_BAD_RANGE },
		{ 0, 4096, RW, 0, TP_PV_BAD_RANGE },                    /* no memory */
		{ R1 + R1_SIZE - 4096, 8192, RW, 0, TP_PV_BAD_RANGE },  /* runs off it */
		{ R1 - 4096, 8192, RW, 0, TP_PV_BAD_RANGE },
		{ R1 + 0x100, 4096, RW, 9, TP_PV_NOT_ALIGNED },
		{ R1, 4096, RW, 200, TP_PV_NOT_ALIGNED },
		{ R1, 2 * TP_PV_MAX_BYTES_DEFAULT, RW, 0, TP_PV_BAD_RANGE },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		rq = (struct tp_pv_request){ cases[i].gpa, cases[i].len, cases[i].dir,
					     cases[i].align };
		assert_int_equal(tp_pv_map(r->p, &rq, 0, &res), cases[i].want);
		assert_int_equal(res.handle, 0);
		assert_int_equal(res.dva, 0);
	}
	/* A read-only region: the device may read, not write. */
	add_region(r, 0x300000000ull, 1 * MiB, TP_VU_DMA_READ_OK);
	rq = (struct tp_pv_request){ 0x300000000ull, 4096, 2, 0 };
	assert_int_equal(tp_pv_map(r->p, &rq, 0, &res), TP_PV_BAD_RANGE);
	rq.dir = 1;
	assert_int_equal(tp_pv_map(r->p, &rq, 0, &res), TP_PV_OK);
	assert_int_equal(stats(r).live, 1);
	assert_int_equal(stats(r).map_errors, sizeof(cases) / sizeof(cases[0]) + 1);
	rig_close(r);
}

/* ---- randomized, against a reference model ---- */

#define RMAX 512

struct ref {
	struct {
		uint64_t handle, gpa, len, dva;
	} live[RMAX];
	unsigned nlive;
	struct {
		uint32_t tag;
		uint64_t gpa, len;
		uint32_t align;
	} wait[64];
	unsigned nwait;
	uint64_t stale[64];
	unsigned nstale;
};

static void ref_add(struct ref *m, uint64_t gpa, uint64_t len, uint32_t align,
		    const struct tp_pv_result *res)
{
	uint64_t l = lowbit_cap(gpa);

	assert_true(m->nlive < RMAX);
	if (align)
		assert_int_equal(res->dva % (1ull << align), 0);
	assert_int_equal(res->dva % l, gpa % l);
	for (unsigned i = 0; i < m->nlive; i++)
		assert_true(m->live[i].handle != res->handle);
	m->live[m->nlive].handle = res->handle;
	m->live[m->nlive].gpa = gpa;
	m->live[m->nlive].len = len;
	m->live[m->nlive++].dva = res->dva;
}

static void ref_done(struct rig *r, uint32_t tag, const struct tp_pv_result *res)
{
	struct ref *m = r->model;
	unsigned i;

	/* Waiters complete in the order they came. */
	assert_true(m->nwait > 0);
	assert_int_equal(m->wait[0].tag, tag);
	if (res->status == TP_PV_OK)
		ref_add(m, m->wait[0].gpa, m->wait[0].len, m->wait[0].align, res);
	else
		assert_int_equal(res->status, TP_PV_DISABLED);
	for (i = 1; i < m->nwait; i++)
		m->wait[i - 1] = m->wait[i];
	m->nwait--;
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void check_all(struct rig *r, struct ref *m)
{
	struct tp_pv_stats st = stats(r);

	for (unsigned i = 0; i < m->nlive; i++)
		check_translate(r, m->live[i].dva, m->live[i].gpa, m->live[i].len);
	assert_int_equal(st.handles, m->nlive);
	assert_int_equal(st.pending, m->nwait);
	assert_int_equal(st.live, r->mmu->st.live);
	assert_int_equal(st.bytes, r->mmu->st.bytes);
	assert_true(st.bytes <= r->cfg.max_bytes);
	assert_true(st.live <= r->cfg.max_mappings);
	assert_true(st.lazy_bytes <= r->cfg.lazy_max);
}

static void test_random(void **state)
{
	const char *seed = getenv("TP_TEST_SEED");
	uint64_t s = seed ? strtoull(seed, NULL, 0) : 0x5eed1234abcdull, now = 0;
	struct rig *r = rig_open(24 * MiB, 200, 5 * MS, 4 * MiB);
	struct ref *m = test_calloc(1, sizeof(*m));
	uint32_t tag = 0;

	if (!s)
		s = 1;
	r->model = m;
	r->hook = ref_done;
	for (unsigned step = 0; step < 20000; step++) {
		uint64_t x = rnd(&s);
		unsigned op = x % 16;

		now += rnd(&s) % (2 * MS);
		if (op < 8 && m->nwait < 64 && m->nlive + m->nwait < RMAX) {
			/* Buffers: small ones, now and then a large one, mostly in
			 * a hot 4 MiB of R1 (windows shared and revived), else
			 * anywhere in R2. */
			bool hot = (x >> 8) % 4;
			uint64_t gpa = hot ? R1 + rnd(&s) % (4 * MiB) : R2 + rnd(&s) % R2_SIZE;
			uint64_t len = (x >> 12) % 16 ? 1 + rnd(&s) % (32 * KiB) : 1 + rnd(&s) % (3 * MiB);
			uint32_t align = (x >> 20) % 4 ? 0 : (uint32_t)((x >> 24) % 23);
			struct tp_pv_request rq;
			struct tp_pv_result res;
			uint32_t st;

			if ((x >> 30) % 2)
				gpa &= ~0xfffull;
			if (align)
				gpa &= ~((1ull << align) - 1);
			if (gpa < (hot ? R1 : R2))
				gpa = hot ? R1 : R2;
			if (len > (hot ? R1 + R1_SIZE : R2 + R2_SIZE) - gpa)
				len = (hot ? R1 + R1_SIZE : R2 + R2_SIZE) - gpa;
			rq = (struct tp_pv_request){ gpa, len, 1 + (uint32_t)(x >> 40) % 3, align };
			st = tp_pv_map(r->p, &rq, ++tag, &res);
			if (st == TP_PV_OK) {
				ref_add(m, gpa, len, align, &res);
			} else if (st == TP_PV_PENDING) {
				m->wait[m->nwait].tag = tag;
				m->wait[m->nwait].gpa = gpa;
				m->wait[m->nwait].len = len;
				m->wait[m->nwait++].align = align;
			} else {
				/* Every request here is good and fits the caps. */
				fail_msg("MAP [%#llx +%#llx] align %u: status %u",
					 (unsigned long long)gpa, (unsigned long long)len, align, st);
			}
		} else if (op < 14 && m->nlive) {
			unsigned i = (unsigned)(rnd(&s) % m->nlive);
			uint64_t h = m->live[i].handle;

			m->live[i] = m->live[--m->nlive];
			assert_int_equal(tp_pv_unmap(r->p, h, now), TP_PV_OK);
			if (m->nstale < 64)
				m->stale[m->nstale++] = h;
		} else if (op == 15 && (x >> 32) % 64 == 0) {
			/* R2 leaves and comes back (a guest memory hot-unplug, a
			 * client remapping it): its handles die with it. */
			for (unsigned i = 0; i < m->nlive;) {
				if (m->live[i].gpa < R2) {
					i++;
					continue;
				}
				if (m->nstale < 64)
					m->stale[m->nstale++] = m->live[i].handle;
				m->live[i] = m->live[--m->nlive];
			}
			remove_region(r, R2, R2_SIZE);
			check_all(r, m);
			add_region(r, R2, R2_SIZE, RW);
		} else if (op == 14 && m->nstale) {
			/* A stale handle stays stale. */
			assert_int_equal(tp_pv_unmap(r->p, m->stale[rnd(&s) % m->nstale], now),
					 TP_PV_BAD_HANDLE);
		} else {
			tp_pv_expire(r->p, now);
		}
		/* A stuck queue with nothing to unmap would never move: a guest
		 * that maps past the cap holds nothing else. Drain it. */
		if (m->nwait && !m->nlive)
			tp_pv_teardown(r->p, TP_PV_DISABLED);
		if (step % 64 == 0 || step > 19900)
			check_all(r, m);
	}
	check_all(r, m);
	if (getenv("TP_TEST_VERBOSE")) {
		struct tp_pv_stats v = stats(r);

		printf("random: maps %llu unmaps %llu delayed %llu lazy hits %llu expired %llu "
		       "dropped %llu iommu maps %llu live %llu handles %llu\n",
		       (unsigned long long)v.maps, (unsigned long long)v.unmaps,
		       (unsigned long long)v.delayed, (unsigned long long)v.lazy_hits,
		       (unsigned long long)v.lazy_expired, (unsigned long long)v.lazy_dropped,
		       (unsigned long long)v.iommu_maps, (unsigned long long)v.live,
		       (unsigned long long)v.handles);
	}
	assert_true(stats(r).delayed > 0);
	assert_true(stats(r).lazy_hits > 0);
	assert_true(stats(r).lazy_expired > 0);
	assert_true(stats(r).region_kills > 0);
	/* Everything unmapped by handle, then expired: nothing left. */
	while (m->nlive) {
		uint64_t h = m->live[--m->nlive].handle;

		assert_int_equal(tp_pv_unmap(r->p, h, now), TP_PV_OK);
	}
	check_all(r, m);
	assert_int_equal(stats(r).handles, 0);
	tp_pv_expire(r->p, now + 1000 * MS);
	assert_int_equal(stats(r).live, 0);
	assert_int_equal(r->mmu->st.live, 0);
	assert_int_equal(m->nwait, 0);
	test_free(m);
	rig_close(r);
}

static void test_config(void **state)
{
	struct tp_pv_config c;
	struct tp_pv *p;

	tp_pv_config_default(&c);
	c.window = 8 * KiB;
	assert_int_equal(tp_pv_create(&c, NULL, NULL, "test", NULL, NULL, &p), -EINVAL);
	c.window = 96 * KiB;
	assert_int_equal(tp_pv_create(&c, NULL, NULL, "test", NULL, NULL, &p), -EINVAL);
	c.window = 256 * KiB;
	c.max_bytes = 128 * KiB;
	assert_int_equal(tp_pv_create(&c, NULL, NULL, "test", NULL, NULL, &p), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_coalescing),
		cmocka_unit_test(test_refcounts),
		cmocka_unit_test(test_alignment),
		cmocka_unit_test(test_clipped_window_alignment),
		cmocka_unit_test(test_lazy_expiry),
		cmocka_unit_test(test_byte_cap),
		cmocka_unit_test(test_mapping_cap),
		cmocka_unit_test(test_teardown_and_regions),
		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_random),
		cmocka_unit_test(test_config),
	};

	tp_log_set_level(TP_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
