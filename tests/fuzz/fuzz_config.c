/* SPDX-License-Identifier: MIT */
/*
 * fuzz_config: config-space virtualization (lib/config.c, lib/capchain.c)
 * through tp_device_open and the client's config accesses, on the fake
 * function with a fuzzed config image: the capabilities fake_cfg_build
 * places, a BAR layout, then arbitrary byte patches (loops and overlaps in
 * the capability chains, pointers into the header, lying BAR flags). Then
 * reads and writes of every size at every offset, BAR sizing, resets.
 *
 * After every step, from the guest's view (one full read) and what reached
 * the function:
 *  - identity registers and every read-only emulated bit are as at open;
 *  - bits not emulated read what the function holds (live);
 *  - BARs: address bits below the BAR's size read 0, flag bits never change,
 *    writing all-ones reads back the size mask (absent BARs read 0);
 *  - both capability chains walk without loops, through kept capabilities
 *    only, and are the chains seen at open;
 *  - the function receives config writes only to the Command register, and
 *    only to its pass-through bits (read-modify-write keeps the others);
 *  - the backend contract holds (aligned 1/2/4-byte accesses in range).
 * An open that fails must fail cleanly: backend destroyed, no fd left.
 *
 * Input: spec byte, options byte, patch count, patches (u16 offset, u8
 * value), then steps (see step()).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "device.h"
#include "fake_backend.h"
#include "fuzz_common.h"
#include "pci_regs.h"
#include "util.h"

#define MAX_STEPS 64
#define CMD_PASS_THROUGH 0x0547u /* IO, MEM, MASTER, PARITY, SERR, INTX_DISABLE */
#define MAX_CHAIN 1024

struct chain {
	unsigned n;
	uint16_t off[MAX_CHAIN];
	uint16_t id[MAX_CHAIN];
};

struct state {
	struct fake_be fb;
	struct tp_device dev;
	uint32_t size;
	uint64_t bar_size[TP_NUM_BARS + 1];
	uint32_t bar_raw[TP_NUM_BARS]; /* the function's BAR registers at open */
	uint8_t view0[TP_CFG_MAX];
	uint8_t view[TP_CFG_MAX];
	struct chain std0, ext0;
};

static int (*fake_config_write)(struct tp_backend *be, uint32_t off, const void *buf,
				uint32_t len);
static struct state *cur;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct fake_be tmpl;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fz_init_logging();
	/* fake_be_init fills a 1 MiB BAR: once per process. Each input gets a
	 * copy (sharing the BAR0 memfd) with its own config image. */
	FZ_CHECK(fake_be_init(&tmpl, NULL) == 0, "fake_be_init");
	return 0;
}

/* Between the core and the fake: nothing but Command pass-through bits. */
static int checked_config_write(struct tp_backend *be, uint32_t off, const void *buf,
				uint32_t len)
{
	const uint8_t *in = buf;

	for (uint32_t i = 0; i < len; i++) {
		uint32_t o = off + i;
		uint8_t keep;

		FZ_CHECK(o == PCI_COMMAND || o == PCI_COMMAND + 1,
			 "config write of %u bytes at %#x reached the function", len, off);
		keep = (uint8_t)~(CMD_PASS_THROUGH >> (8 * (o - PCI_COMMAND)));
		FZ_CHECK(((in[i] ^ cur->fb.cfg[o]) & keep) == 0,
			 "Command byte %#x: bits %#x outside the pass-through mask changed", o,
			 (in[i] ^ cur->fb.cfg[o]) & keep);
	}
	return fake_config_write(be, off, buf, len);
}

/* Region sizes and BAR flags: a few layouts, patched further by the input. */
static void layout(struct state *st, unsigned which)
{
	static const uint64_t sizes[4][TP_NUM_BARS + 1] = {
		{ FAKE_BAR0_SIZE, 0, FAKE_BAR2_SIZE, 0, 0, 0, FAKE_ROM_SIZE },
		{ 1u << 20, 1u << 16, 4096, 0, 256, 0, 1u << 16 },
		{ 0, 0, 0, 0, 1ull << 33, 0, 0 },
		{ 0, 0, 0, 0, 0, 0, 0 },
	};
	static const uint32_t flags[4][TP_NUM_BARS] = {
		{ 0xc, 0, 0, 0, 0, 0 },
		{ 0x0, 0x8, 0x0, 0, 0x1, 0 },
		{ 0, 0, 0, 0, 0xc, 0 },
		{ 0, 0, 0, 0, 0, 0 },
	};

	for (unsigned i = 0; i <= TP_NUM_BARS; i++) {
		uint32_t idx = i < TP_NUM_BARS ? i : TP_REGION_ROM;

		st->fb.regions[idx] = (struct tp_region_desc){
			.size = sizes[which][i], .readable = 1, .writable = idx != TP_REGION_ROM,
			.mmap_fd = -1,
		};
		if (i < TP_NUM_BARS)
			fake_cfg_put(st->fb.cfg, PCI_BASE_ADDRESS_0 + 4 * i, 4, flags[which][i]);
	}
}

static void keep_destroy(struct tp_backend *be)
{
	cur->fb.calls.destroy++;
}

static void build(struct state *st, struct fz_reader *r)
{
	struct fake_cfg_spec spec;
	uint8_t a = fz_u8(r), b = fz_u8(r), npatch = fz_u8(r);

	fake_cfg_default(&spec);
	spec.cfg_size = (a & 1) ? FAKE_CFG_SIZE : 256;
	spec.pm = a & 2;
	spec.msi_vectors = (a & 4) ? 1u << TP_MIN(b & 7u, 5u) : 0;
	spec.msix_vectors = (a & 8) ? 8 : 0;
	spec.pcie = a & 16;
	spec.aer = a & 32;
	spec.dsn = a & 64;
	spec.int_pin = (a & 128) ? 1 : 0;
	spec.msi_64 = b & 8;
	spec.msi_maskbit = b & 16;
	spec.flr = b & 32;
	st->fb = tmpl;
	st->fb.be.ops = &st->fb.ops;
	st->fb.spec = spec;
	fake_cfg_build(st->fb.cfg, &spec);
	st->fb.regions[TP_REGION_CONFIG].size = spec.cfg_size;
	st->fb.irq_counts[TP_IRQ_INTX] = spec.int_pin ? 1 : 0;
	st->fb.irq_counts[TP_IRQ_MSI] = spec.msi_vectors;
	st->fb.irq_counts[TP_IRQ_MSIX] = spec.msix_vectors;
	layout(st, b >> 6);
	for (unsigned i = 0; i < npatch; i++) {
		uint16_t off = fz_u16(r);

		st->fb.cfg[off % FAKE_CFG_SIZE] = fz_u8(r);
	}
	fake_config_write = tmpl.ops.config_write;
	st->fb.ops.config_write = checked_config_write;
	st->fb.ops.destroy = keep_destroy;
	st->size = spec.cfg_size;
}

static void read_view(struct state *st, uint8_t *out)
{
	int rc = tp_device_region_read(&st->dev, TP_REGION_CONFIG, 0, out, st->size);

	FZ_CHECK(rc == 0, "full config read: %d", rc);
}

/*
 * What a read must return, from the emulated copy and the function's bytes
 * (no I/O: a full read through the core at every step would cost 90% of the
 * time). Reads through the core are compared with it: every read step on its
 * window, and a full read every few steps and at the end.
 */
static void model_view(const struct state *st, uint8_t *out)
{
	const struct tp_config *c = &st->dev.cfg;

	for (uint32_t i = 0; i < st->size; i++)
		out[i] = (uint8_t)((c->virt[i] & c->emu[i]) | (st->fb.cfg[i] & ~c->emu[i]));
}

static void full_read_check(struct state *st)
{
	uint8_t want[TP_CFG_MAX];

	model_view(st, want);
	read_view(st, st->view);
	for (uint32_t i = 0; i < st->size; i++)
		FZ_CHECK(st->view[i] == want[i], "config byte %#x reads %#x, want %#x", i,
			 st->view[i], want[i]);
}

static bool kept_std(uint8_t id)
{
	return id == PCI_CAP_ID_PM || id == PCI_CAP_ID_MSI || id == PCI_CAP_ID_EXP ||
	       id == PCI_CAP_ID_MSIX || id == PCI_CAP_ID_VNDR;
}

/* The chains as a guest walks them; broken ones abort. */
static void walk(const struct state *st, const uint8_t *v, struct chain *std, struct chain *ext)
{
	uint8_t seen[TP_CFG_MAX / 4] = { 0 };
	uint32_t p;

	std->n = ext->n = 0;
	p = (v[PCI_STATUS] & PCI_STATUS_CAP_LIST) ? v[PCI_CAPABILITY_LIST] : 0;
	if (!(v[PCI_STATUS] & PCI_STATUS_CAP_LIST))
		FZ_CHECK(v[PCI_CAPABILITY_LIST] == 0, "capability pointer %#x without the list bit",
			 v[PCI_CAPABILITY_LIST]);
	while (p) {
		FZ_CHECK(p >= 0x40 && p <= 0xfc && !(p & 3), "capability pointer %#x", p);
		FZ_CHECK(!seen[p / 4], "capability chain loops at %#x", p);
		seen[p / 4] = 1;
		FZ_CHECK(kept_std(v[p]), "capability %#x at %#x should be hidden", v[p], p);
		std->off[std->n] = (uint16_t)p;
		std->id[std->n++] = v[p];
		p = v[p + 1];
	}
	if (st->size < TP_CFG_MAX)
		return;
	for (p = PCI_EXT_CAP_START; p;) {
		uint32_t h = tp_le_get(v + p, 4), id = h & 0xffff;

		if (!h)
			break;
		FZ_CHECK(!seen[p / 4], "extended chain loops at %#x", p);
		seen[p / 4] = 1;
		FZ_CHECK(id == PCI_EXT_CAP_ID_DSN || id == PCI_EXT_CAP_ID_VNDR ||
				 (id == 0 && p == PCI_EXT_CAP_START),
			 "extended capability %#x at %#x should be hidden", id, p);
		ext->off[ext->n] = (uint16_t)p;
		ext->id[ext->n++] = (uint16_t)id;
		p = (h >> 20) & 0xffc;
		FZ_CHECK(!p || p >= PCI_EXT_CAP_START, "extended pointer %#x into the header", p);
	}
}

static bool same_chain(const struct chain *a, const struct chain *b)
{
	return a->n == b->n && !memcmp(a->off, b->off, a->n * sizeof(a->off[0])) &&
	       !memcmp(a->id, b->id, a->n * sizeof(a->id[0]));
}

/* What a BAR register may read: address bits under its size are 0, flags
 * are the function's. upper: the upper half of a 64-bit BAR (any value). */
static void check_bar(const struct state *st, unsigned i, uint32_t v)
{
	uint64_t s = st->bar_size[i];
	uint32_t raw = st->bar_raw[i];

	if (i > 0 && (st->bar_raw[i - 1] & 7) == PCI_BAR_MEM_TYPE_64 && st->bar_size[i - 1] &&
	    !(st->bar_raw[i - 1] & PCI_BAR_IO))
		return;
	if (!s) {
		FZ_CHECK(v == 0, "absent BAR%u reads %#x", i, v);
	} else if (raw & PCI_BAR_IO) {
		FZ_CHECK((v & 3) == PCI_BAR_IO && !(v & ~3u & (TP_MAX(s, 4) - 1)),
			 "I/O BAR%u (%#llx bytes) reads %#x", i, (unsigned long long)s, v);
	} else {
		FZ_CHECK((v & 0xf) == (raw & 0xf) && !(v & ~0xfu & (uint32_t)(TP_MAX(s, 16) - 1)),
			 "BAR%u (%#llx bytes, flags %#x) reads %#x", i, (unsigned long long)s,
			 raw & 0xf, v);
	}
}

static void check(struct state *st, const char *step)
{
	const struct tp_config *c = &st->dev.cfg;
	static const uint8_t ident[] = { 0, 1, 2, 3, 8, 9, 0xa, 0xb, 0xe, 0x2c, 0x2d, 0x2e, 0x2f,
					 0x3d };
	struct chain std, ext;
	uint32_t rom;

	model_view(st, st->view);
	FZ_CHECK(st->fb.violations == 0, "%s: backend contract broken", step);
	for (size_t i = 0; i < sizeof(ident); i++)
		FZ_CHECK(st->view[ident[i]] == st->view0[ident[i]], "%s: identity byte %#x changed",
			 step, ident[i]);
	for (uint32_t i = 0; i < st->size; i++) {
		uint8_t ro = c->emu[i] & (uint8_t)~(c->wmask[i] | c->w1c[i]);

		FZ_CHECK(!((st->view[i] ^ st->view0[i]) & ro), "%s: read-only bits %#x of %#x changed",
			 step, (st->view[i] ^ st->view0[i]) & ro, i);
		FZ_CHECK(!((st->view[i] ^ st->fb.cfg[i]) & (uint8_t)~c->emu[i]),
			 "%s: live bits of %#x read %#x, the function holds %#x", step, i, st->view[i],
			 st->fb.cfg[i]);
	}
	for (unsigned i = 0; i < TP_NUM_BARS; i++)
		check_bar(st, i, tp_le_get(st->view + PCI_BASE_ADDRESS_0 + 4 * i, 4));
	rom = tp_le_get(st->view + PCI_ROM_ADDRESS, 4);
	if (!st->bar_size[TP_NUM_BARS])
		FZ_CHECK(rom == 0, "%s: absent ROM BAR reads %#x", step, rom);
	else
		FZ_CHECK(!(rom & 0x7fe) &&
				 !(rom & ~0x7ffu & (uint32_t)(TP_MAX(st->bar_size[TP_NUM_BARS], 2048) - 1)),
			 "%s: ROM BAR reads %#x", step, rom);
	walk(st, st->view, &std, &ext);
	FZ_CHECK(same_chain(&std, &st->std0) && same_chain(&ext, &st->ext0),
		 "%s: capability chains changed", step);
}

static int dev_write(struct state *st, uint32_t off, const void *buf, uint32_t len)
{
	return tp_device_region_write(&st->dev, TP_REGION_CONFIG, off, buf, len, false);
}

static void expect_rc(struct state *st, int rc, uint32_t off, uint32_t len, const char *what)
{
	bool ok = len && off <= st->size && len <= st->size - off;

	FZ_CHECK(ok ? rc == 0 : rc == -EINVAL, "%s of %u bytes at %#x: %d", what, len, off, rc);
}

/* All-ones into a BAR reads back its size mask (the upper half of a 64-bit
 * BAR: the mask's upper half). */
static void bar_sizing(struct state *st, unsigned i)
{
	uint32_t ones = ~0u, v = 0, off = i < TP_NUM_BARS ? PCI_BASE_ADDRESS_0 + 4 * i : PCI_ROM_ADDRESS;
	uint64_t s = st->bar_size[i];
	uint32_t want;

	FZ_CHECK(dev_write(st, off, &ones, 4) == 0, "BAR%u sizing write", i);
	FZ_CHECK(tp_device_region_read(&st->dev, TP_REGION_CONFIG, off, &v, 4) == 0, "BAR read");
	if (i == TP_NUM_BARS) {
		want = s ? ((uint32_t)~(TP_MAX(s, 2048) - 1) & 0xfffff800u) | PCI_ROM_ENABLE : 0;
	} else if (i > 0 && (st->bar_raw[i - 1] & 7) == PCI_BAR_MEM_TYPE_64 && st->bar_size[i - 1]) {
		want = (uint32_t)(~(TP_MAX(st->bar_size[i - 1], 16) - 1) >> 32);
	} else if (!s) {
		want = 0;
	} else if (st->bar_raw[i] & PCI_BAR_IO) {
		want = ((uint32_t)~(TP_MAX(s, 4) - 1) & ~3u) | PCI_BAR_IO;
	} else {
		want = ((uint32_t)~(TP_MAX(s, 16) - 1) & ~0xfu) | (st->bar_raw[i] & 0xf);
	}
	FZ_CHECK(v == want, "BAR%u (%#llx bytes) sized: read %#x, want %#x", i,
		 (unsigned long long)s, v, want);
}

static void step(struct state *st, struct fz_reader *r)
{
	uint8_t op = fz_u8(r), buf[TP_CFG_MAX + 16];
	uint32_t off, len, v;
	int rc;

	switch (op % 6) {
	case 0: /* any read */
		off = fz_u16(r) % (st->size + 8);
		len = fz_u8(r);
		rc = tp_device_region_read(&st->dev, TP_REGION_CONFIG, off, buf, len);
		expect_rc(st, rc, off, len, "read");
		if (!rc) {
			model_view(st, st->view);
			FZ_CHECK(!memcmp(buf, st->view + off, len),
				 "read of %u bytes at %#x differs from the view", len, off);
		}
		break;
	case 1: /* any write */
		off = fz_u16(r) % (st->size + 8);
		len = fz_u8(r);
		for (uint32_t i = 0; i < len; i++)
			buf[i] = fz_u8(r);
		expect_rc(st, dev_write(st, off, buf, len), off, len, "write");
		break;
	case 2: /* an aligned register write, as drivers do */
		len = 1u << (op >> 6 & 3);
		len = len > 4 ? 4 : len;
		off = (uint32_t)fz_u8(r) * 4 % st->size + (op >> 3 & 3) * len % 4;
		v = fz_u32(r);
		expect_rc(st, dev_write(st, off, &v, len), off, len, "register write");
		break;
	case 3:
		bar_sizing(st, fz_u8(r) % (TP_NUM_BARS + 1));
		break;
	case 4:
		tp_device_reset(&st->dev);
		break;
	default: /* inside a capability the guest sees */
		if (st->std0.n) {
			off = st->std0.off[fz_u8(r) % st->std0.n] + fz_u8(r) % 24;
			len = (op >> 6 & 1) ? 4 : (op >> 7) ? 2 : 1;
			off &= ~(len - 1);
			v = fz_u32(r);
			expect_rc(st, dev_write(st, off, &v, len), off, len, "capability write");
		}
		break;
	}
	check(st, "step");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_reader r = { data, size };
	struct state *st = calloc(1, sizeof(*st));
	int fds0 = fz_count_fds(), rc;

	FZ_CHECK(st, "calloc");
	cur = st;
	build(st, &r);
	for (unsigned i = 0; i < TP_NUM_BARS; i++) {
		st->bar_size[i] = st->fb.regions[i].size;
		st->bar_raw[i] = fake_cfg_get(st->fb.cfg, PCI_BASE_ADDRESS_0 + 4 * i, 4);
	}
	st->bar_size[TP_NUM_BARS] = st->fb.regions[TP_REGION_ROM].size;
	rc = tp_device_open(&st->dev, &st->fb.be, NULL);
	if (rc) {
		/* Refused (a config no endpoint has, BARs that cannot be): cleanly. */
		FZ_CHECK(rc < 0, "tp_device_open returned %d", rc);
		tp_device_close(&st->dev);
		FZ_CHECK(st->fb.calls.destroy <= 1, "backend destroyed %lu times",
			 st->fb.calls.destroy);
	} else {
		model_view(st, st->view0);
		walk(st, st->view0, &st->std0, &st->ext0);
		check(st, "open");
		for (unsigned i = 0; i < MAX_STEPS && r.n; i++) {
			step(st, &r);
			if (i % 32 == 31)
				full_read_check(st);
		}
		full_read_check(st);
		tp_device_close(&st->dev);
		FZ_CHECK(st->fb.calls.destroy == 1, "backend destroyed %lu times",
			 st->fb.calls.destroy);
	}
	free(st);
	FZ_CHECK(fz_count_fds() == fds0, "%d fds open after the input, %d before", fz_count_fds(),
		 fds0);
	return 0;
}
