/* SPDX-License-Identifier: MIT */
/*
 * BAR0 of the model GB202: 16 MiB of registers, always trapped.
 *
 *   0x000000  PMC_BOOT_0   0x1b2000a1, read-only (chipset 0x1b2, rev A1)
 *   0x000004  PMC_BOOT_1   0, read-only (little-endian, no special mode)
 *   0x000200  PMC_ENABLE   read/write, reset value 0 (see below)
 *   0x000a00  PMC_BOOT_42  0x1b2a1000, read-only
 *   0x009400  PTIMER_TIME_0, 0x009410 PTIMER_TIME_1: a 64-bit ns counter
 *   0x088000  PCI config space mirror (4 KiB), as on Turing..Blackwell
 *   0x300000  PROM: the VBIOS (1 MiB window, 0xff past the ROM)
 *   0xb90000  MSI-X table (9 x 16 bytes); 0xba0000 MSI-X PBA (8 bytes, RO)
 *   elsewhere reads 0xbadf1100, writes are dropped
 *
 * Register facts: nouveau (nvkm/engine/device, nvkm/subdev/timer) and NVIDIA's
 * open-gpu-kernel-modules (register headers; GPU_READ_PRI_ERROR_MASK/CODE);
 * MSI-X layout from the PCI Local Bus 3.0 specification, 6.8.2.
 *
 * Accesses are 1, 2, 4 or 8 bytes at any offset. An access that spans two
 * windows (or two registers) is split, and each part goes to its own window,
 * so nothing is ever read outside the state behind it.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "model.h"

/*
 * PMC_ENABLE's reset value: 0, every unit bit clear. On hardware the boot
 * firmware and then the driver set the bits of the units they bring up (old
 * nouveau writes 0xffffffff to enable everything); the model has no units
 * behind the bits, so the register only latches what is written and goes
 * back to 0 on a function reset.
 */
#define PMC_ENABLE_RESET 0x00000000u

/* PTIMER ticks at 1 ns but its resolution is 32 ns: bits 4:0 read 0. */
#define PTIMER_RES_MASK 0x1full

/* MSI-X entry: address (DWORD aligned), upper address, data, vector control
 * (only the mask bit is writable; the rest is reserved). */
static const uint8_t msix_entry_wmask[MODEL_MSIX_ENTRY] = {
	0xfc, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0xff, 0x01, 0x00, 0x00, 0x00,
};

enum bar0_kind {
	BAR0_REGS,
	BAR0_MIRROR,
	BAR0_PROM,
	BAR0_MSIX_TABLE,
	BAR0_MSIX_PBA,
};

static const struct {
	uint32_t start;
	uint32_t size;
	enum bar0_kind kind;
} bar0_windows[] = {
	{ MODEL_BAR0_CFG_MIRROR, MODEL_CFG_SIZE, BAR0_MIRROR },
	{ MODEL_BAR0_PROM, MODEL_BAR0_PROM_SIZE, BAR0_PROM },
	{ MODEL_MSIX_TABLE, MODEL_MSIX_VECTORS * MODEL_MSIX_ENTRY, BAR0_MSIX_TABLE },
	{ MODEL_MSIX_PBA, MODEL_MSIX_PBA_SIZE, BAR0_MSIX_PBA },
};

/* One access reads the clock once, so an 8-byte read is self-consistent. */
struct bar0_ctx {
	int have_time;
	uint64_t time;
};

static uint64_t bar0_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t bar0_ptimer_raw(const struct model *m)
{
	return bar0_now_ns() - m->ptimer_base_ns + m->ptimer_adjust;
}

static uint64_t bar0_ptimer(const struct model *m, struct bar0_ctx *ctx)
{
	if (!ctx->have_time) {
		ctx->time = bar0_ptimer_raw(m);
		ctx->have_time = 1;
	}
	return ctx->time & ~PTIMER_RES_MASK;
}

/*
 * Where off falls: a window (start/end of it), or the register DWORD holding
 * it. Windows are DWORD aligned and sized, so a DWORD never straddles one.
 */
static enum bar0_kind bar0_window(uint64_t off, uint64_t *start, uint64_t *end)
{
	for (size_t i = 0; i < sizeof(bar0_windows) / sizeof(bar0_windows[0]); i++) {
		if (off >= bar0_windows[i].start &&
		    off - bar0_windows[i].start < bar0_windows[i].size) {
			*start = bar0_windows[i].start;
			*end = *start + bar0_windows[i].size;
			return bar0_windows[i].kind;
		}
	}
	*start = off & ~3ull;
	*end = *start + 4;
	return BAR0_REGS;
}

static uint32_t bar0_reg_read(const struct model *m, uint32_t reg, struct bar0_ctx *ctx)
{
	switch (reg) {
	case MODEL_PMC_BOOT_0:
		return MODEL_BOOT_0_VALUE;
	case MODEL_PMC_BOOT_1:
		return 0;
	case MODEL_PMC_ENABLE:
		return m->pmc_enable;
	case MODEL_PMC_BOOT_42:
		return MODEL_BOOT_42_VALUE;
	/*
	 * Each half reads the live counter; nothing is latched between them
	 * (as on hardware), so a driver reads TIME_1, TIME_0, TIME_1 and
	 * retries when the high word moved (nouveau's nv04_timer_read).
	 */
	case MODEL_PTIMER_TIME_0:
		return (uint32_t)bar0_ptimer(m, ctx);
	case MODEL_PTIMER_TIME_1:
		return (uint32_t)(bar0_ptimer(m, ctx) >> 32);
	default:
		if (reg - MODEL_CE_BASE < MODEL_CE_SIZE)
			return model_ce_read(m, reg);
		/*
		 * NVIDIA's PRI bus answers an address with no register behind
		 * it (or a unit that is gated off) with an error value 0xbadfXXXX
		 * instead of faulting the CPU; 0xbadf1100 is the one boards are
		 * reported to return for absent or gated registers. NVIDIA's open
		 * RM treats (v & 0xfff00000) == 0xbad00000 as a PRI error, so the
		 * model's gaps read as "nothing here", not as plausible data or
		 * as an off-the-bus 0xffffffff.
		 */
		return MODEL_BAR0_BADF;
	}
}

/* mask: the bits this (possibly partial) write covers. */
static void bar0_reg_write(struct model *m, uint32_t reg, uint32_t val, uint32_t mask)
{
	switch (reg) {
	case MODEL_PMC_ENABLE:
		m->pmc_enable = (m->pmc_enable & ~mask) | (val & mask);
		break;
	case MODEL_PTIMER_TIME_0:
	case MODEL_PTIMER_TIME_1: {
		/* The driver may set the time (nouveau writes TIME_1 then
		 * TIME_0): keep the clock running, shifted. */
		unsigned shift = reg == MODEL_PTIMER_TIME_1 ? 32 : 0;
		uint64_t m64 = (uint64_t)mask << shift;
		uint64_t raw = bar0_ptimer_raw(m);
		uint64_t want = (raw & ~m64) | (((uint64_t)val << shift) & m64);

		m->ptimer_adjust += want - raw;
		break;
	}
	default:
		if (reg - MODEL_CE_BASE < MODEL_CE_SIZE)
			model_ce_write(m, reg, val, mask);
		/* Read-only and absent registers drop writes, like the PRI bus. */
		break;
	}
}

static void bar0_prom_read(const struct model *m, uint64_t off, uint8_t *dst, uint32_t n)
{
	/* Past the ROM the flash part reads erased: 0xff. */
	for (uint32_t i = 0; i < n; i++)
		dst[i] = off + i < MODEL_ROM_SIZE ? m->rom[off + i] : 0xff;
}

static void bar0_pba_bytes(const struct model *m, uint8_t out[MODEL_MSIX_PBA_SIZE])
{
	tp_le_put(out, 4, (uint32_t)m->msix_pba);
	tp_le_put(out + 4, 4, (uint32_t)(m->msix_pba >> 32));
}

static int bar0_access_ok(uint64_t off, const void *buf, uint32_t len)
{
	if (!buf || (len != 1 && len != 2 && len != 4 && len != 8))
		return 0;
	return tp_range_ok(off, len, MODEL_BAR0_SIZE);
}

int model_bar0_read(struct model *m, uint64_t off, void *buf, uint32_t len)
{
	uint8_t *out = buf;
	uint64_t pos = off, end = off + len;
	struct bar0_ctx ctx = { 0 };

	if (!bar0_access_ok(off, buf, len))
		return -EINVAL;
	while (pos < end) {
		uint64_t ws, we;
		enum bar0_kind kind = bar0_window(pos, &ws, &we);
		uint32_t n = (uint32_t)((we < end ? we : end) - pos);
		uint8_t *dst = out + (pos - off);
		uint8_t tmp[8];

		switch (kind) {
		case BAR0_MIRROR:
			model_cfg_read(m, (uint32_t)(pos - ws), dst, n);
			break;
		case BAR0_PROM:
			bar0_prom_read(m, pos - ws, dst, n);
			break;
		case BAR0_MSIX_TABLE:
			memcpy(dst, m->msix_table + (pos - ws), n);
			break;
		case BAR0_MSIX_PBA:
			bar0_pba_bytes(m, tmp);
			memcpy(dst, tmp + (pos - ws), n);
			break;
		case BAR0_REGS:
			tp_le_put(tmp, 4, bar0_reg_read(m, (uint32_t)ws, &ctx));
			memcpy(dst, tmp + (pos - ws), n);
			break;
		}
		pos += n;
	}
	return 0;
}

int model_bar0_write(struct model *m, uint64_t off, const void *buf, uint32_t len)
{
	const uint8_t *in = buf;
	uint64_t pos = off, end = off + len;

	if (!bar0_access_ok(off, buf, len))
		return -EINVAL;
	while (pos < end) {
		uint64_t ws, we;
		enum bar0_kind kind = bar0_window(pos, &ws, &we);
		uint32_t n = (uint32_t)((we < end ? we : end) - pos);
		const uint8_t *src = in + (pos - off);

		switch (kind) {
		case BAR0_MIRROR:
			/* Same semantics as a config write: this is how the
			 * driver acknowledges MSI on these chips. */
			model_cfg_write(m, (uint32_t)(pos - ws), src, n);
			break;
		case BAR0_MSIX_TABLE:
			for (uint32_t i = 0; i < n; i++) {
				uint64_t at = pos - ws + i;
				uint8_t wm = msix_entry_wmask[at % MODEL_MSIX_ENTRY];

				m->msix_table[at] = (uint8_t)((m->msix_table[at] & ~wm) |
							      (src[i] & wm));
			}
			break;
		case BAR0_PROM:
		case BAR0_MSIX_PBA:
			/* Flash needs its own programming sequence; the PBA is
			 * read-only. Both drop plain writes. */
			break;
		case BAR0_REGS: {
			uint8_t v[4] = { 0 }, mk[4] = { 0 };

			memcpy(v + (pos - ws), src, n);
			memset(mk + (pos - ws), 0xff, n);
			bar0_reg_write(m, (uint32_t)ws, tp_le_get(v, 4), tp_le_get(mk, 4));
			break;
		}
		}
		pos += n;
	}
	return 0;
}

/*
 * Function reset: PMC_ENABLE to its reset value, every MSI-X vector masked
 * with its address and data cleared (PCI 3.0 6.8.2.9: mask bits are set at
 * reset), nothing pending. PTIMER keeps counting: it is the GPU's clock, and a
 * counter that jumped back would only confuse whoever reads it.
 */
void model_bar0_reset(struct model *m)
{
	m->pmc_enable = PMC_ENABLE_RESET;
	memset(m->msix_table, 0, sizeof(m->msix_table));
	for (uint32_t v = 0; v < MODEL_MSIX_VECTORS; v++)
		m->msix_table[v * MODEL_MSIX_ENTRY + 12] = 0x01;
	m->msix_pba = 0;
}

void model_bar0_init(struct model *m)
{
	m->ptimer_base_ns = bar0_now_ns();
	m->ptimer_adjust = 0;
	model_bar0_reset(m);
}
