/* SPDX-License-Identifier: MIT */
/*
 * Doctor stages read from config space and the core's regions: the PCIe
 * link, and the BARs (sizes, types, mapped or trapped and why, Resizable BAR).
 *
 * Thunderbolt: a Thunderbolt 3/4 dock tunnels PCIe over four lanes, and the
 * GPU in it trains its link to the dock's downstream port at x4, 8 GT/s
 * (Gen3; 16 GT/s behind USB4 v2 / Thunderbolt 5 docks). So x4 at Gen3/Gen4
 * with an x16-capable GPU is what a working eGPU looks like, not a fault,
 * while x1 or 2.5 GT/s is a bad cable, port or dock. Where the backend can
 * tell that the device sits behind Thunderbolt it says so; where it cannot,
 * x4 at Gen3/Gen4 is taken to mean a dock, and the report says it assumed so.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "doctor_int.h"
#include "pci_regs.h"
#include "util.h"

#define MiB (1ull << 20)

/* Link speed codes (LnkCap/LnkSta bits 3:0, LnkCap2 vector bits). */
static const char *speed_gts(unsigned code)
{
	static const char *const s[] = { "?", "2.5", "5", "8", "16", "32", "64" };

	return code < TP_ARRAY_SIZE(s) ? s[code] : "?";
}

/* MB/s a link carries per direction: 8b/10b coding up to Gen2, 128b/130b after. */
static uint64_t link_mbs(unsigned code, unsigned width)
{
	static const unsigned mts[] = { 0, 2500, 5000, 8000, 16000, 32000, 64000 };
	uint64_t raw;

	if (code >= TP_ARRAY_SIZE(mts))
		return 0;
	raw = (uint64_t)mts[code] * width / 8; /* MB/s before coding */
	return code <= 2 ? raw * 8 / 10 : raw * 128 / 130;
}

void tp_doctor_link(struct tp_doctor *d, struct tp_doctor_result *r)
{
	uint32_t cap, lnkcap, lnksta, lnkcap2;
	unsigned cur_s, cur_w, max_s, max_w;
	int tb;

	if (!tp_doc_need_device(d, r, true))
		return;
	cap = d->cap_pcie;
	if (!cap) {
		tp_doc_status(r, TP_DOCTOR_WARN, "no PCI Express capability in config space");
		tp_doc_advice(r, "A conventional PCI device, or one whose capability list is "
				 "broken: check that the backend holds the device you meant.");
		return;
	}
	lnkcap = tp_doc_cfg(d, cap + PCI_EXP_LNKCAP, 4);
	lnksta = tp_doc_cfg(d, cap + PCI_EXP_LNKSTA, 2);
	lnkcap2 = tp_doc_cfg(d, cap + PCI_EXP_LNKCAP2, 4);
	max_s = lnkcap & 0xf;
	max_w = (lnkcap >> 4) & 0x3f;
	/* LnkCap2's supported-speeds vector is the truth where present. */
	for (unsigned b = 7; b >= 1 && (lnkcap2 & 0xfe); b--) {
		if (lnkcap2 & (1u << b)) {
			max_s = b;
			break;
		}
	}
	cur_s = lnksta & 0xf;
	cur_w = (lnksta >> 4) & 0x3f;
	tb = d->hooks->behind_thunderbolt ? d->hooks->behind_thunderbolt(d) : -1;
	tp_doc_fact_str(r, "current_speed_gts", "%s", speed_gts(cur_s));
	tp_doc_fact_int(r, "current_width", cur_w);
	tp_doc_fact_str(r, "max_speed_gts", "%s", speed_gts(max_s));
	tp_doc_fact_int(r, "max_width", max_w);
	tp_doc_fact_int(r, "mbytes_per_s", (int64_t)link_mbs(cur_s, cur_w));
	tp_doc_fact_str(r, "thunderbolt", "%s", tb > 0 ? "yes" : tb == 0 ? "no" : "unknown");

	if (!cur_s || !cur_w) {
		tp_doc_status(r, TP_DOCTOR_FAIL,
			      "link status reads x%u at speed code %u: the link "
			      "is not trained",
			      cur_w, cur_s);
		tp_doc_advice(r, "The PCIe link is down: re-seat the cable and power-cycle the "
				 "eGPU enclosure.");
		return;
	}
	tp_doc_status(r, TP_DOCTOR_OK,
		      "x%u at %s GT/s (Gen%u, about %" PRIu64 " MB/s each way); "
		      "the device can do x%u at %s GT/s",
		      cur_w, speed_gts(cur_s), cur_s, link_mbs(cur_s, cur_w), max_w,
		      speed_gts(max_s));
	if (cur_w == 1 || cur_s == 1) {
		if (cur_w >= max_w && cur_s >= max_s) {
			tp_doc_advice(r, "Nothing to do: the device supports no more than this.");
			return;
		}
		tp_doc_worsen(r, TP_DOCTOR_WARN);
		tp_doc_seen_add(r,
				"%s: a fraction of what a Thunderbolt dock carries (x4 at "
				"8 GT/s, about 3900 MB/s)",
				cur_w == 1 ? "a single lane" : "Gen1 speed");
		tp_doc_advice(r,
			      "Re-seat or replace the Thunderbolt cable (a certified 40 Gbit/s "
			      "one), plug the dock into a Thunderbolt port of the computer itself "
			      "rather than a hub, check that the dock's slot is wired x4, then "
			      "power-cycle the eGPU so the link trains again.");
		return;
	}
	if (cur_w >= max_w && cur_s >= max_s) {
		tp_doc_seen_add(r, "the most the device supports");
		tp_doc_advice(r, "Nothing to do: the link runs at full width and speed.");
		return;
	}
	if (cur_w == 4 && (cur_s == 3 || cur_s == 4) && tb != 0) {
		tp_doc_seen_add(r,
				"as behind a Thunderbolt 3/4 dock, whose PCIe tunnel is 4 lanes "
				"wide%s",
				tb < 0 ? " (assumed: the backend cannot tell)" : "");
		if (tb < 0)
			tp_doc_unchecked(r, "whether the device really sits behind Thunderbolt");
		tp_doc_advice(r, "Nothing to do: x4 is what a Thunderbolt dock carries (expect "
				 "some 15-25%% less than a desktop x16 slot in games).");
		return;
	}
	tp_doc_worsen(r, TP_DOCTOR_WARN);
	tp_doc_seen_add(r, "narrower or slower than the device supports%s",
			tb > 0 ? " even for a Thunderbolt dock" : "");
	tp_doc_advice(r, "Check the slot, riser or dock: re-seat the card, use a slot wired for "
			 "the full width, and check the firmware's PCIe speed setting.");
}

/* ---- BARs ----------------------------------------------------------------- */

static uint64_t bar_address(const struct tp_doctor *d, unsigned i, bool is64)
{
	uint64_t a = tp_doc_cfg(d, PCI_BASE_ADDRESS_0 + 4 * i, 4) & ~0xfull;

	if (is64 && i < 5)
		a |= (uint64_t)tp_doc_cfg(d, PCI_BASE_ADDRESS_0 + 4 * (i + 1), 4) << 32;
	return a;
}

static const char *const bar_keys[TP_NUM_BARS + 1][2] = {
	{ "bar0_size", "bar0_mapping" }, { "bar1_size", "bar1_mapping" },
	{ "bar2_size", "bar2_mapping" }, { "bar3_size", "bar3_mapping" },
	{ "bar4_size", "bar4_mapping" }, { "bar5_size", "bar5_mapping" },
	{ "rom_size", "rom_mapping" },
};

/* Why a region is (partly) trapped: the quirk windows cut out of it. */
static void trap_reasons(const struct tp_doctor *d, uint32_t i, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (unsigned t = 0; t < d->dev.ntraps && n < len; t++) {
		const struct tp_trap *w = &d->dev.traps[t];

		if (w->region != i)
			continue;
		n += (size_t)snprintf(buf + n, len - n, "%s[%#" PRIx64 ", +%#" PRIx64 "] quirk",
				      n ? ", " : "", w->offset, w->size);
	}
}

/* One BAR's line; returns its mapping kind for the facts. */
static const char *describe_bar(struct tp_doctor *d, struct tp_doctor_result *r, uint32_t i,
				bool *slow)
{
	const struct tp_region *reg = &d->dev.regions[i];
	uint32_t lo = i < TP_NUM_BARS ? tp_doc_cfg(d, PCI_BASE_ADDRESS_0 + 4 * i, 4) : 0;
	bool io = i < TP_NUM_BARS && (lo & PCI_BAR_IO);
	bool is64 = !io && i < TP_NUM_BARS && (lo & PCI_BAR_MEM_TYPE_MASK) == PCI_BAR_MEM_TYPE_64;
	bool pref = !io && i < TP_NUM_BARS && (lo & PCI_BAR_MEM_PREFETCH);
	uint64_t addr = i < TP_NUM_BARS ? bar_address(d, i, is64)
					: (tp_doc_cfg(d, PCI_ROM_ADDRESS, 4) & ~0x7ffull);
	uint64_t mapped = 0;
	char sz[32], why[160], how[256];
	const char *kind;

	for (uint32_t a = 0; a < reg->nr_areas; a++)
		mapped += reg->areas[a].size;
	tp_fmt_size(reg->d.size, sz, sizeof(sz));
	trap_reasons(d, i, why, sizeof(why));
	if (i == TP_REGION_ROM) {
		kind = "trapped";
		tp_doc_seen_add(r, "ROM %s, read through the trap path (the client reads it once)",
				sz);
		return kind;
	}
	if (!io && !addr) {
		kind = "unassigned";
		snprintf(how, sizeof(how), "UNASSIGNED (no address)");
	} else if (mapped == reg->d.size) {
		kind = "mapped";
		snprintf(how, sizeof(how), "direct-mapped");
	} else if (mapped) {
		kind = "partly-mapped";
		snprintf(how, sizeof(how), "direct-mapped except %s, trapped", why);
	} else {
		kind = "trapped";
		*slow = *slow || (pref && reg->d.size >= 64 * MiB);
		if (reg->d.mmap_fd < 0 || !reg->d.nr_areas)
			snprintf(how, sizeof(how),
				 "trapped: the backend offers no mapping (its "
				 "contents are emulated or cannot be shared)");
		else
			snprintf(how, sizeof(how), "trapped: quirk windows %s cover it", why);
	}
	if (addr || io)
		tp_doc_seen_add(r, "BAR%u %s %s%s at %#" PRIx64 ", %s", i, sz,
				io     ? "I/O"
				: is64 ? "64-bit"
				       : "32-bit",
				pref ? " prefetchable" : "", addr, how);
	else
		tp_doc_seen_add(r, "BAR%u %s %s%s %s", i, sz, is64 ? "64-bit" : "32-bit",
				pref ? " prefetchable" : "", how);
	return kind;
}

/* Resizable BAR (PCIe 7.8.6): per entry, supported sizes and the current one. */
static void rebar(struct tp_doctor *d, struct tp_doctor_result *r, uint64_t vram)
{
	uint32_t p = tp_doc_find_ecap(d, PCI_EXT_CAP_ID_REBAR);
	unsigned n;

	if (!p) {
		tp_doc_seen_add(r, "no Resizable BAR capability");
		return;
	}
	n = (tp_doc_cfg(d, p + 8, 4) >> 5) & 7;
	for (unsigned k = 0; k < n && k < 6; k++) {
		uint32_t capr = tp_doc_cfg(d, p + 4 + 8 * k, 4),
			 ctrl = tp_doc_cfg(d, p + 8 + 8 * k, 4);
		unsigned idx = ctrl & 7, lo = 0, hi = 0;
		uint64_t cur = MiB << ((ctrl >> 8) & 0x3f);
		char a[32], b[32], c[32];

		for (unsigned bit = 4; bit < 32; bit++) {
			if (capr & (1u << bit)) {
				if (!lo)
					lo = bit;
				hi = bit;
			}
		}
		if (!lo)
			continue;
		tp_doc_seen_add(r,
				"Resizable BAR: BAR%u at %s, %s to %s supported (the guest sees a "
				"fixed size)",
				idx, tp_fmt_size(cur, a, sizeof(a)),
				tp_fmt_size(MiB << (lo - 4), b, sizeof(b)),
				tp_fmt_size(MiB << (hi - 4), c, sizeof(c)));
		if (idx == 1) {
			tp_doc_fact_int(r, "rebar_bar1_current", (int64_t)cur);
			tp_doc_fact_int(r, "rebar_bar1_max", (int64_t)(MiB << (hi - 4)));
			if (!vram)
				tp_doc_seen_add(r, "the largest size (%s) is usually the VRAM size",
						c);
		}
	}
}

static void bar1_vs_vram(struct tp_doctor *d, struct tp_doctor_result *r, uint64_t vram)
{
	uint64_t bar1 = d->dev.regions[1].d.size;
	char a[32], b[32];

	if (!vram) {
		tp_doc_unchecked(r,
				 "the VRAM size (it needs the GPU's memory-controller registers)");
		return;
	}
	tp_doc_fact_int(r, "vram", (int64_t)vram);
	if (!bar1)
		return;
	if (bar1 >= vram)
		tp_doc_seen_add(r, "BAR1 shows all %s of VRAM", tp_fmt_size(vram, a, sizeof(a)));
	else
		tp_doc_seen_add(r,
				"BAR1 shows %s of the %s VRAM through a window (drivers cope; "
				"Resizable BAR would show all of it)",
				tp_fmt_size(bar1, a, sizeof(a)), tp_fmt_size(vram, b, sizeof(b)));
}

void tp_doctor_bars(struct tp_doctor *d, struct tp_doctor_result *r)
{
	char unassigned[64] = "";
	bool slow = false;
	uint64_t vram;
	int rc;

	if (!tp_doc_need_device(d, r, true))
		return;
	if (!d->dev_opened) {
		d->dev_opened = true; /* from here on the core owns the backend */
		rc = tp_device_open(&d->dev, d->be, NULL);
		d->dev_ok = rc == 0;
		if (rc) {
			tp_doc_status(r, TP_DOCTOR_FAIL,
				      "the core refused the device: %s (the reason "
				      "is logged above)",
				      strerror(-rc));
			tp_doc_advice(r,
				      "The device's regions or config space are not what the core "
				      "can serve: report the log lines above.");
			return;
		}
	}
	if (!d->dev_ok) {
		tp_doc_status(r, TP_DOCTOR_SKIP, "skipped: the core could not open the device");
		tp_doc_advice(r, "Fix the stages above first.");
		return;
	}
	tp_doc_status(r, TP_DOCTOR_OK, "%s", "");
	r->seen[0] = '\0';
	for (uint32_t i = 0; i <= TP_REGION_ROM; i++) {
		const char *kind;

		if (!d->dev.regions[i].d.size)
			continue;
		kind = describe_bar(d, r, i, &slow);
		tp_doc_fact_int(r, bar_keys[i][0], (int64_t)d->dev.regions[i].d.size);
		tp_doc_fact_str(r, bar_keys[i][1], "%s", kind);
		if (!strcmp(kind, "unassigned") && strlen(unassigned) + 8 < sizeof(unassigned))
			snprintf(unassigned + strlen(unassigned),
				 sizeof(unassigned) - strlen(unassigned), "%sBAR%u",
				 unassigned[0] ? ", " : "", i);
	}
	vram = d->hooks->vram_size ? d->hooks->vram_size(d) : 0;
	rebar(d, r, vram);
	bar1_vs_vram(d, r, vram);
	if (unassigned[0]) {
		tp_doc_worsen(r, TP_DOCTOR_FAIL);
		tp_doc_seen_add(r, "%s: the host left them unassigned, so MMIO reads all-ones",
				unassigned);
		tp_doc_advice(r,
			      "The host did not fit the device's BARs into the Thunderbolt "
			      "bridge window: on Linux boot with pci=realloc (and "
			      "hpmmioprefsize= large enough for BAR1) and plug the dock in again; "
			      "on macOS connect the eGPU before booting.");
		return;
	}
	if (slow) {
		tp_doc_worsen(r, TP_DOCTOR_WARN);
		tp_doc_advice(r,
			      "A large prefetchable BAR is trapped: every access to it is a "
			      "socket round trip (about 30 us), so expect poor performance until "
			      "the backend can map it.");
		return;
	}
	tp_doc_advice(r, "Nothing to do: every BAR has an address, and every range the backend "
			 "can share is direct-mapped.");
}
