/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the model backend, driving its ops table directly as the core
 * would. Expected values are written out from the specification (DESIGN.md,
 * the PCI/PCIe specs), not taken from model.h, so the test checks the model
 * rather than restating it.
 *
 * Standalone: gcc -std=gnu11 -D_GNU_SOURCE -I include -I lib backends/model/model*.c
 *             tests/unit/test_model.c -lcmocka -lpthread
 * The tp_log* functions below are weak stubs: linked with lib/log.c the real
 * ones win. Error lines are counted by capturing stderr, which works with both.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <thunderpass/backend.h>
#include <thunderpass/log.h>
#include <thunderpass/protocol.h>

#include "../../backends/model/model.h"

/* ---- log stub and stderr capture --------------------------------------- */

__attribute__((weak)) void tp_log(enum tp_log_level level, const char *who, const char *fmt, ...)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };
	va_list ap;

	if (level > TP_LOG_WARN)
		return;
	fprintf(stderr, "thunderpass: %s: %s: ", names[level], who ? who : "-");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

__attribute__((weak)) enum tp_log_level tp_log_get_level(void)
{
	return TP_LOG_WARN;
}

static int cap_saved = -1;
static FILE *cap_file;

static void capture_begin(void)
{
	fflush(stderr);
	cap_file = tmpfile();
	assert_non_null(cap_file);
	cap_saved = dup(2);
	dup2(fileno(cap_file), 2);
}

/* Ends the capture; returns how many error lines were logged. */
static int capture_end(void)
{
	char line[1024];
	int n = 0;

	fflush(stderr);
	dup2(cap_saved, 2);
	close(cap_saved);
	rewind(cap_file);
	while (fgets(line, sizeof(line), cap_file)) {
		if (strstr(line, ": error: "))
			n++;
		fputs(line, stdout); /* keep the messages visible */
	}
	fclose(cap_file);
	return n;
}

/* ---- helpers ------------------------------------------------------------ */

static int create(struct tp_backend **be, const struct tp_backend_opt *opts, size_t n)
{
	return tp_backend_model.create(opts, n, be);
}

/* Values travel in host order, which is little-endian (protocol.h insists),
 * so the low len bytes of v are the bytes of the access. */
static uint32_t cfg_rd(struct tp_backend *be, uint32_t off, uint32_t len)
{
	uint32_t v = 0;

	assert_int_equal(be->ops->config_read(be, off, &v, len), 0);
	return v;
}

static void cfg_wr(struct tp_backend *be, uint32_t off, uint32_t len, uint32_t v)
{
	assert_int_equal(be->ops->config_write(be, off, &v, len), 0);
}

static uint64_t bar0_rd(struct tp_backend *be, uint64_t off, uint32_t len)
{
	uint64_t v = 0;

	assert_int_equal(be->ops->region_read(be, TP_REGION_BAR0, off, &v, len), 0);
	return v;
}

static void bar0_wr(struct tp_backend *be, uint64_t off, uint32_t len, uint64_t v)
{
	assert_int_equal(be->ops->region_write(be, TP_REGION_BAR0, off, &v, len), 0);
}

/* The driver's way: high, low, high; retry when the high word moved. */
static uint64_t ptimer_read(struct tp_backend *be)
{
	for (;;) {
		uint32_t hi = (uint32_t)bar0_rd(be, 0x9410, 4);
		uint32_t lo = (uint32_t)bar0_rd(be, 0x9400, 4);

		if ((uint32_t)bar0_rd(be, 0x9410, 4) == hi)
			return (uint64_t)hi << 32 | lo;
	}
}

static int setup(void **state)
{
	struct tp_backend *be = NULL;

	assert_int_equal(create(&be, NULL, 0), 0);
	*state = be;
	return 0;
}

static int teardown(void **state)
{
	struct tp_backend *be = *state;

	be->ops->destroy(be);
	return 0;
}

/* ---- creation and options ----------------------------------------------- */

static void test_create_defaults(void **state)
{
	struct tp_backend *be = *state;
	struct tp_region_desc d;
	uint32_t n;

	assert_string_equal(be->name, "model0");
	assert_string_equal(tp_backend_model.name, "model");
	assert_null(be->ops->dma_map);
	assert_null(be->ops->dma_unmap);

	/* size, readable, writable, mappable (one area covering it, offset 0) */
	static const struct { uint64_t size; int r, w, map; } regions[9] = {
		{ 16u << 20, 1, 1, 0 }, { 256u << 20, 1, 1, 1 }, { 0, 0, 0, 0 },
		{ 32u << 20, 1, 1, 1 }, { 0, 0, 0, 0 }, { 0, 0, 0, 0 },
		{ 128u << 10, 1, 0, 0 }, { 4096, 1, 1, 0 }, { 0, 0, 0, 0 },
	};
	for (uint32_t i = 0; i < 9; i++) {
		assert_int_equal(be->ops->region_info(be, i, &d), 0);
		assert_true(d.size == regions[i].size && d.readable == regions[i].r &&
			    d.writable == regions[i].w && (d.mmap_fd >= 0) == regions[i].map);
		assert_true(d.nr_areas == (uint32_t)regions[i].map && d.mmap_offset == 0);
		assert_true(!d.nr_areas || (d.areas[0].offset == 0 && d.areas[0].size == d.size));
	}
	capture_begin();
	assert_int_equal(be->ops->region_info(be, 9, &d), -EINVAL);
	assert_int_equal(capture_end(), 1);

	static const uint32_t want[] = { 1, 1, 9, 1, 1 };
	for (uint32_t i = 0; i < 5; i++) {
		assert_int_equal(be->ops->irq_count(be, i, &n), 0);
		assert_int_equal(n, want[i]);
	}
	capture_begin();
	assert_int_equal(be->ops->irq_count(be, 5, &n), -EINVAL);
	capture_end();
	assert_null(be->ops->irq_set); /* the core keeps the eventfds */
}

static void test_create_options(void **state)
{
	static const struct tp_backend_opt o1[] = {
		{ "vram", "512M" }, { "name", "gpu1" }, { "fault", "none" } };
	static const struct tp_backend_opt o2[] = { { "vram", "4g" } };
	static const struct tp_backend_opt o3[] = { { "vram", "65536K" } };
	struct tp_backend *be;
	struct tp_region_desc d;

	(void)state;
	assert_int_equal(create(&be, o1, 3), 0);
	assert_string_equal(be->name, "gpu1");
	be->ops->region_info(be, 1, &d);
	assert_true(d.size == 512u << 20);
	cfg_wr(be, 0x14, 4, 0xffffffff);
	cfg_wr(be, 0x18, 4, 0xffffffff);
	assert_int_equal(cfg_rd(be, 0x14, 4), 0xe000000c);
	assert_int_equal(cfg_rd(be, 0x18, 4), 0xffffffff);
	assert_int_equal((cfg_rd(be, 0x108, 4) >> 8) & 0x3f, 9); /* ReBAR: 512 MiB */
	be->ops->destroy(be);

	/* 4 GiB: every address bit of the low dword is above the size. */
	assert_int_equal(create(&be, o2, 1), 0);
	be->ops->region_info(be, 1, &d);
	assert_true(d.size == 4ull << 30);
	cfg_wr(be, 0x14, 4, 0xffffffff);
	assert_int_equal(cfg_rd(be, 0x14, 4), 0x0000000c);
	be->ops->destroy(be);

	/* 64 MiB: below ReBAR's 256 MiB, so the capability lists it too. */
	assert_int_equal(create(&be, o3, 1), 0);
	assert_int_equal((cfg_rd(be, 0x108, 4) >> 8) & 0x3f, 6);
	assert_int_equal(cfg_rd(be, 0x104, 4), 0x000ffc00);
	be->ops->destroy(be);
}

static void test_bad_options(void **state)
{
	static const struct tp_backend_opt bad[][2] = {
		{ { "vrams", "256M" } }, { { "vram", "100M" } }, { { "vram", "32M" } },
		{ { "vram", "8G" } }, { { "vram", "abc" } }, { { "vram", "256X" } },
		{ { "vram", "" } }, { { "vram", NULL } }, { { "vram", "-256M" } },
		{ { "vram", "99999999999999999999G" } }, { { "name", "" } },
		{ { "name", "a b" } }, { { "fault", "bogus" } }, { { "fault", NULL } },
		{ { "vram-file", "" } }, { { NULL, "x" } },
		{ { "name", "1234567890123456789012345678901234567890123456789012345678901234" } },
		{ { "vram", "256M" }, { "vram", "512M" } },
		{ { "vram-file", "/nonexistent-dir/vram" } },
	};
	struct tp_backend *be;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t n = bad[i][1].key ? 2 : 1;
		int rc;

		be = (struct tp_backend *)&be;
		capture_begin();
		rc = create(&be, bad[i], n);
		assert_int_equal(capture_end(), 1); /* exactly one clear error */
		assert_true(rc == -EINVAL || (i == sizeof(bad) / sizeof(bad[0]) - 1 && rc == -ENOENT));
		assert_null(be);
	}
}

/* ---- config space ------------------------------------------------------- */

/* One row: optionally write wr (len bytes) at off, then expect want under mask. */
struct cfg_row {
	uint16_t off;
	uint8_t len;
	uint8_t write;
	uint32_t wr, mask, want;
};
#define RD(o, l, m, w) { o, l, 0, 0, m, w }
#define WR(o, l, v, w) { o, l, 1, v, 0xffffffffu, w }

static void cfg_rows(struct tp_backend *be, const struct cfg_row *r, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint32_t got;

		if (r[i].write)
			cfg_wr(be, r[i].off, r[i].len, r[i].wr);
		got = cfg_rd(be, r[i].off, r[i].len) & r[i].mask;
		if (got != r[i].want)
			fail_msg("row %zu: config 0x%x reads 0x%x, want 0x%x", i, r[i].off, got,
				 r[i].want);
	}
}

static void test_config_regs(void **state)
{
	static const struct cfg_row rows[] = {
		RD(0x00, 4, ~0u, 0x2b8510de), RD(0x08, 4, ~0u, 0x030000a1), /* id, rev, class */
		RD(0x0e, 1, ~0u, 0), RD(0x2c, 4, ~0u, 0x2b8510de), RD(0x3d, 1, ~0u, 1),
		RD(0x06, 2, 0x10, 0x10), RD(0x04, 2, ~0u, 0), RD(0x34, 1, ~0u, 0x60),
		/* Host-assigned BARs: BAR0 32-bit, BAR1/BAR3 64-bit prefetchable. */
		RD(0x10, 4, ~0u, 0xa0000000), RD(0x14, 4, ~0u, 0xc), RD(0x18, 4, ~0u, 0x60),
		RD(0x1c, 4, ~0u, 0xc), RD(0x20, 4, ~0u, 0x68), RD(0x24, 4, ~0u, 0),
		RD(0x30, 4, ~0u, 0xa1000000),
		RD(0x62, 2, 7, 3), RD(0x64, 2, ~0u, 0x8),             /* PM v3, No_Soft_Reset */
		RD(0x6a, 2, ~0u, 0x80),                               /* MSI 64-bit, 1 vector */
		RD(0x7a, 2, 0xff, 2), RD(0x7c, 4, 7, 1),              /* PCIe v2 EP, MPS 256 */
		RD(0x84, 4, 0x3ff, 0x105), RD(0x8a, 2, 0x3ff, 0x43),  /* 32 GT/s x16; 8 GT/s x4 */
		RD(0xa4, 4, 0xfe, 0x3e),                              /* 2.5..32 GT/s */
		RD(0xb6, 2, 0x7ff, 8), RD(0xb8, 4, ~0u, 0xb90000), RD(0xbc, 4, ~0u, 0xba0000),
		/* Resizable BAR for BAR1: 256 MiB..32 GiB, now 256 MiB. */
		RD(0x100, 4, ~0u, 0x10015), RD(0x104, 4, ~0u, 0xff000), RD(0x108, 4, 0x3f07, 0x801),
	};
	static const uint8_t ids[] = { 0x01, 0x05, 0x10, 0x11, 0x09 };
	static const uint8_t offs[] = { 0x60, 0x68, 0x78, 0xb4, 0xc0 };
	struct tp_backend *be = *state;
	uint32_t p = cfg_rd(be, 0x34, 1), n = 0;

	cfg_rows(be, rows, sizeof(rows) / sizeof(rows[0]));
	for (; p; n++, p = cfg_rd(be, p + 1, 1)) { /* PM -> MSI -> PCIe -> MSI-X -> vendor */
		assert_true(n < 5);
		assert_int_equal(p, offs[n]);
		assert_int_equal(cfg_rd(be, p, 1), ids[n]);
	}
	assert_int_equal(n, 5);
	assert_true(cfg_rd(be, 0xc2, 1) >= 3); /* vendor cap length */
}

static void test_config_writes(void **state)
{
	static const struct cfg_row rows[] = {
		/* BAR sizing: all-ones reads back the size mask; addresses latch. */
		WR(0x10, 4, ~0u, 0xff000000), WR(0x10, 4, 0x12345678, 0x12000000),
		WR(0x14, 4, ~0u, 0xf000000c), WR(0x18, 4, ~0u, 0xffffffff),
		WR(0x1c, 4, ~0u, 0xfe00000c), WR(0x20, 4, ~0u, 0xffffffff),
		WR(0x24, 4, ~0u, 0), WR(0x30, 4, 0xfffff800, 0xfffe0000),
		WR(0x30, 4, 0xa1000001, 0xa1000001),
		WR(0x1e, 2, 0x1234, 0x1200), RD(0x1c, 4, ~0u, 0x1200000c), /* below 32M drops */
		/* RO stays; RW latches under its mask; RW1C status clears. */
		WR(0x00, 4, ~0u, 0x2b8510de), WR(0x04, 4, ~0u, 0x00100547),
		WR(0x0c, 4, ~0u, 0x000000ff), /* cache line; latency hardwired 0 */
		WR(0x3c, 2, 0xffff, 0x01ff),
		WR(0x64, 2, 3, 0xb), WR(0x64, 2, 1, 0xb), WR(0x64, 2, 0, 0x8), /* D1 discarded */
		WR(0x6c, 4, 0xfee00003, 0xfee00000), WR(0x74, 2, 0x4041, 0x4041),
		WR(0xb6, 2, 0xffff, 0xc008), WR(0x80, 2, 0x0030, 0x0030),
		WR(0x8a, 2, 0xffff, 0x1043), WR(0x82, 2, 0xffff, 0), WR(0x104, 4, 0, 0xff000),
		RD(0x01, 4, ~0u, 0x472b8510), /* unaligned: bytes 1-4 */
	};

	cfg_rows(*state, rows, sizeof(rows) / sizeof(rows[0]));
}

/* ---- BAR0 --------------------------------------------------------------- */

/* One row: optionally write wr (len bytes) at off, then expect want there. */
struct bar0_row {
	uint32_t off;
	uint8_t len;
	uint8_t write;
	uint64_t wr, want;
};
#define B_RD(o, l, w) { o, l, 0, 0, w }
#define B_WR(o, l, v, w) { o, l, 1, v, w }
#define BADF 0xbadf1100u

static void test_bar0_regs(void **state)
{
	static const struct bar0_row rows[] = {
		B_RD(0x000, 4, 0x1b2000a1), B_RD(0x004, 4, 0), B_RD(0xa00, 4, 0x1b2a1000),
		B_RD(0x000, 8, 0x1b2000a1), B_RD(0x003, 1, 0x1b), B_RD(0x002, 2, 0x1b20),
		B_WR(0x000, 4, 0, 0x1b2000a1), B_WR(0xa00, 4, 0, 0x1b2a1000),
		B_RD(0x200, 4, 0), /* PMC_ENABLE's reset value */
		B_WR(0x200, 4, 0x40001100, 0x40001100), B_WR(0x203, 1, 0x12, 0x12),
		B_RD(0x200, 4, 0x12001100),
		B_RD(0x1000, 4, BADF), B_RD(0xfffffc, 4, BADF), B_RD(0x1002, 2, 0xbadf),
		B_RD(0xfffff8, 8, (uint64_t)BADF << 32 | BADF), B_WR(0x1000, 4, 0x1234, BADF),
		/* MSI-X: vectors masked at reset; address DWORD aligned; only the
		 * mask bit of vector control latches; the PBA is read-only. */
		B_RD(0xb9000c, 4, 1), B_RD(0xb9008c, 4, 1),
		B_WR(0xb90010, 8, 0x00000001fee00007ull, 0x00000001fee00004ull),
		B_WR(0xb90018, 4, 0x4021, 0x4021), B_WR(0xb9001c, 4, 0xfffffffe, 0),
		B_RD(0xb90090, 4, BADF), B_RD(0xba0000, 8, 0), B_WR(0xba0000, 4, 0x1ff, 0),
		B_RD(0xba0008, 4, BADF),
		/* Accesses across a window's edge are split, not refused. */
		B_RD(0x87ffc, 8, (uint64_t)0x2b8510de << 32 | BADF), B_RD(0x88ffe, 4, 0x11000000),
		B_RD(0x3ffff8, 8, ~0ull), B_WR(0x300000, 2, 0, 0xaa55), /* PROM: erased, RO */
	};
	struct tp_backend *be = *state;

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		uint64_t got;

		if (rows[i].write)
			bar0_wr(be, rows[i].off, rows[i].len, rows[i].wr);
		got = bar0_rd(be, rows[i].off, rows[i].len);
		if (got != rows[i].want)
			fail_msg("row %zu: BAR0 0x%x reads 0x%llx, want 0x%llx", i, rows[i].off,
				 (unsigned long long)got, (unsigned long long)rows[i].want);
	}
}

static void test_bar0_ptimer(void **state)
{
	struct tp_backend *be = *state;
	struct timespec ts = { 0, 2000000 };
	uint64_t t1, t2, prev;

	t1 = ptimer_read(be);
	nanosleep(&ts, NULL);
	t2 = ptimer_read(be);
	assert_true(t2 > t1 && t2 - t1 >= 1900000);
	assert_int_equal(bar0_rd(be, 0x9400, 4) & 0x1f, 0);

	/* Set it just below a carry into the high word (as nouveau sets the
	 * time) and read across it: the results never go backwards. */
	bar0_wr(be, 0x9410, 4, 0x12);
	bar0_wr(be, 0x9400, 4, 0xfffff000);
	prev = ptimer_read(be);
	assert_true(prev >> 32 == 0x12 || prev >> 32 == 0x13);
	for (int i = 0; i < 2000 && prev >> 32 == 0x12; i++) {
		uint64_t t = ptimer_read(be);

		assert_true(t >= prev);
		prev = t;
	}
	nanosleep(&ts, NULL);
	t2 = ptimer_read(be);
	assert_true(t2 > prev && t2 >> 32 == 0x13);
}

static void test_bar0_mirror(void **state)
{
	struct tp_backend *be = *state;

	cfg_wr(be, 0x0c, 1, 0x10);
	for (uint32_t off = 0; off < 4096; off += 4)
		assert_int_equal(bar0_rd(be, 0x88000 + off, 4), cfg_rd(be, off, 4));
	assert_true(bar0_rd(be, 0x88000, 8) ==
		    ((uint64_t)cfg_rd(be, 4, 4) << 32 | cfg_rd(be, 0, 4)));
	bar0_wr(be, 0x88004, 2, 0x0006); /* command through the mirror */
	assert_int_equal(cfg_rd(be, 0x04, 2), 0x0006);
	bar0_wr(be, 0x88010, 4, 0xffffffff); /* sizing through the mirror */
	assert_int_equal(bar0_rd(be, 0x88010, 4), 0xff000000);
}

static void test_bar0_prom_and_rom(void **state)
{
	struct tp_backend *be = *state;
	uint8_t *prom = malloc(128 << 10), *rom = malloc(128 << 10), b[8];
	uint32_t pcir, len;
	uint8_t sum = 0;

	assert_non_null(prom);
	assert_non_null(rom);
	for (uint32_t off = 0; off < (128u << 10); off += 8) {
		uint64_t v = bar0_rd(be, 0x300000 + off, 8);

		tp_le_put(prom + off, 4, (uint32_t)v);
		tp_le_put(prom + off + 4, 4, (uint32_t)(v >> 32));
	}
	assert_int_equal(be->ops->region_read(be, TP_REGION_ROM, 0, rom, 128 << 10), 0);
	assert_memory_equal(prom, rom, 128 << 10);

	assert_true(prom[0] == 0x55 && prom[1] == 0xaa);
	len = prom[2] * 512u;
	assert_true(len > 0 && len <= (128u << 10));
	pcir = tp_le_get(prom + 0x18, 2);
	assert_true(pcir + 0x18 <= len);
	assert_memory_equal(prom + pcir, "PCIR", 4);
	assert_int_equal(tp_le_get(prom + pcir + 4, 2), 0x10de);
	assert_int_equal(tp_le_get(prom + pcir + 6, 2), 0x2b85);
	assert_int_equal(tp_le_get(prom + pcir + 0xa, 2), 0x18);
	assert_int_equal(tp_le_get(prom + pcir + 0xd, 3), 0x030000);
	assert_int_equal(tp_le_get(prom + pcir + 0x10, 2), prom[2]);
	assert_int_equal(prom[pcir + 0x14], 0);
	assert_int_equal(prom[pcir + 0x15], 0x80);
	for (uint32_t i = 0; i < len; i++)
		sum = (uint8_t)(sum + prom[i]);
	assert_int_equal(sum, 0);
	assert_non_null(memmem(prom, len, "thunderpass model GB202 VBIOS",
			       strlen("thunderpass model GB202 VBIOS")));
	for (uint32_t i = len; i < (128u << 10); i++)
		assert_int_equal(prom[i], 0xff);

	/* ROM region writes are dropped, like ROM writes through BAR0. */
	memset(b, 0, sizeof(b));
	assert_int_equal(be->ops->region_write(be, TP_REGION_ROM, 0, b, 8), 0);
	assert_int_equal(bar0_rd(be, 0x300000, 2), 0xaa55);
	free(prom);
	free(rom);
}

static void test_bad_access(void **state)
{
	static const struct {
		uint32_t index;
		uint64_t off;
		uint32_t len;
	} bad[] = {
		{ 0, 0, 0 }, { 0, 0, 3 }, { 0, 0, 5 }, { 0, 0, 16 }, { 0, (16u << 20) - 4, 8 },
		{ 0, 16u << 20, 1 }, { 0, UINT64_MAX - 1, 4 }, { 1, 256u << 20, 1 },
		{ 3, UINT64_MAX, 2 }, { 6, 128u << 10, 1 }, { 2, 0, 4 }, { 5, 0, 4 }, { 9, 0, 4 },
		{ 7, 0, 3 }, { 7, 0, 8 }, { 7, 0, 0 }, { 7, 4095, 2 }, { 7, 4096, 1 },
		{ 7, 0xffffffff, 4 }, { 7, 1ull << 40, 4 },
	};
	static const uint32_t edges[] = { 0, 0x200, 0x9400, 0x9410, 0xa00, 0x88000, 0x89000,
					  0x300000, 0x320000, 0x400000, 0xb90000, 0xb90090,
					  0xba0000, 0xba0008, 0xfffff8 };
	struct tp_backend *be = *state;
	uint8_t b[16] = { 0 };

	capture_begin();
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(be->ops->region_read(be, bad[i].index, bad[i].off, b, bad[i].len),
				 -EINVAL);
		assert_int_equal(be->ops->region_write(be, bad[i].index, bad[i].off, b, bad[i].len),
				 -EINVAL);
	}
	assert_int_equal(be->ops->config_read(be, 4094, b, 4), -EINVAL);
	assert_int_equal(be->ops->config_write(be, 0, b, 6), -EINVAL);
	assert_int_equal(capture_end(), 2 * sizeof(bad) / sizeof(bad[0]) + 2); /* one each */
	assert_int_equal(be->ops->config_read(be, 4095, b, 1), 0);

	/* Every size at offsets around every BAR0 window edge: no error, and
	 * (under valgrind) nothing read outside the state behind it. */
	for (size_t e = 0; e < sizeof(edges) / sizeof(edges[0]); e++)
		for (uint32_t d = 0; d < 16; d++)
			for (uint32_t l = 1; l <= 8; l *= 2) {
				uint64_t off = edges[e] + d >= 8 ? edges[e] + d - 8 : 0;

				if (off + l > (16u << 20))
					continue;
				assert_int_equal(be->ops->region_read(be, 0, off, b, l), 0);
				assert_int_equal(be->ops->region_write(be, 0, off, b, l), 0);
			}
}

/* ---- memory BARs, reset ------------------------------------------------ */

static void test_bar1_mmap(void **state)
{
	struct tp_backend *be = *state;
	struct tp_region_desc d;
	uint8_t *map, b[8];
	static const uint8_t pat[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };

	for (uint32_t idx = 1; idx <= 3; idx += 2) {
		assert_int_equal(be->ops->region_info(be, idx, &d), 0);
		map = mmap(NULL, d.areas[0].size, PROT_READ | PROT_WRITE, MAP_SHARED, d.mmap_fd,
			   (off_t)(d.mmap_offset + d.areas[0].offset));
		assert_true(map != MAP_FAILED);
		assert_int_equal(be->ops->region_write(be, idx, 0x1000, pat, 8), 0);
		assert_int_equal(be->ops->region_write(be, idx, d.size - 8, pat, 8), 0);
		assert_memory_equal(map + 0x1000, pat, 8);
		assert_memory_equal(map + d.size - 8, pat, 8);
		map[0x2000] = 0x5a;
		assert_int_equal(be->ops->region_read(be, idx, 0x2000, b, 1), 0);
		assert_int_equal(b[0], 0x5a);
		munmap(map, d.areas[0].size);
	}
}

static void test_vram_file(void **state)
{
	char dir[] = "/tmp/tp_model_XXXXXX", path[64];
	struct tp_backend_opt o[2] = { { "vram-file", path }, { "vram", "64M" } };
	struct tp_backend *be;
	struct stat st;
	uint8_t got[5] = { 0 };
	int fd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/vram.bin", dir);
	assert_int_equal(create(&be, o, 2), 0);
	assert_int_equal(be->ops->region_write(be, 1, 0x100000, "guest", 5), 0);
	be->ops->destroy(be);

	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 64 << 20);
	assert_int_equal(st.st_mode & 0777, 0600);
	fd = open(path, O_RDONLY);
	assert_int_equal(pread(fd, got, 5, 0x100000), 5);
	close(fd);
	assert_memory_equal(got, "guest", 5);
	unlink(path);
	rmdir(dir);
}

static void test_reset(void **state)
{
	static const struct cfg_row dirty[] = {
		WR(0x04, 2, 0x0006, 0x0006), WR(0x0c, 1, 0x10, 0x10), WR(0x10, 4, ~0u, 0xff000000),
		WR(0x30, 4, 0xa1000001, 0xa1000001), WR(0x64, 2, 3, 0xb), WR(0x6a, 2, 0x81, 0x81),
		WR(0x6c, 4, 0xfee00000, 0xfee00000), WR(0xb6, 2, 0x8000, 0x8008),
		WR(0x80, 2, 0x2830, 0x2830), /* MPS 256: FLR keeps it */
		WR(0x88, 2, 0x0042, 0x0042), /* ASPM L1, common clock: FLR keeps them */
	};
	static const struct cfg_row flr[] = {
		WR(0x80, 2, 0xa830, 0x2830), /* Initiate FLR; the bit reads 0 */
		RD(0x04, 2, ~0u, 0), RD(0x10, 4, ~0u, 0), RD(0x14, 4, ~0u, 0xc), RD(0x18, 4, ~0u, 0),
		RD(0x30, 4, ~0u, 0),
	};
	struct tp_backend *be = *state;
	uint32_t boot[1024], now[1024];
	uint8_t b[4];

	for (uint32_t i = 0; i < 1024; i++)
		boot[i] = cfg_rd(be, i * 4, 4);
	assert_int_equal(be->ops->region_write(be, 1, 64, "vram", 4), 0);
	cfg_rows(be, dirty, sizeof(dirty) / sizeof(dirty[0]));
	bar0_wr(be, 0x200, 4, 0xffffffff);
	bar0_wr(be, 0xb9000c, 4, 0);

	assert_int_equal(be->ops->reset(be), 0);
	for (uint32_t i = 0; i < 1024; i++)
		now[i] = cfg_rd(be, i * 4, 4);
	assert_int_equal(now[0x80 / 4] & 0xffff, 0x2830);
	assert_int_equal(now[0x88 / 4] & 0xffff, 0x0042);
	now[0x80 / 4] = boot[0x80 / 4];
	now[0x88 / 4] = boot[0x88 / 4];
	assert_memory_equal(now, boot, 4096); /* BARs at the host's addresses */
	assert_int_equal(bar0_rd(be, 0x200, 4), 0);
	assert_int_equal(bar0_rd(be, 0xb9000c, 4), 1);
	assert_int_equal(be->ops->region_read(be, 1, 64, b, 4), 0);
	assert_memory_equal(b, "vram", 4); /* VRAM survives */

	/* FLR from DevCtl, as hardware: the BARs go to 0 with the rest. */
	cfg_wr(be, 0x04, 2, 0x0006);
	bar0_wr(be, 0xb9000c, 4, 0);
	cfg_rows(be, flr, sizeof(flr) / sizeof(flr[0]));
	assert_int_equal(bar0_rd(be, 0xb9000c, 4), 1);
	assert_int_equal(be->ops->reset(be), 0);
	assert_int_equal(cfg_rd(be, 0x10, 4), 0xa0000000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create_defaults, setup, teardown),
		cmocka_unit_test(test_create_options),
		cmocka_unit_test(test_bad_options),
		cmocka_unit_test_setup_teardown(test_config_regs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_config_writes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bar0_regs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bar0_ptimer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bar0_mirror, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bar0_prom_and_rom, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_access, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bar1_mmap, setup, teardown),
		cmocka_unit_test(test_vram_file),
		cmocka_unit_test_setup_teardown(test_reset, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
