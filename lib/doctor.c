/* SPDX-License-Identifier: MIT */
/*
 * thunderpass doctor: the stage table, the result helpers, and the generic
 * stages that need nothing but the backend ops (identity, reset). The link
 * and BAR stages are in doctor_pci.c, the per-backend hooks (host, dma-irq)
 * in doctor_backends.c, the QEMU stage in doctor_qemu.c.
 */
#include "doctor.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <thunderpass/identify.h>

#include "doctor_int.h"
#include "pci_regs.h"
#include "quirks.h"
#include "util.h"

/* A device must be ready this long after a reset (PCIe: 100 ms, then up to
 * 1 s of CRS); a host that waits longer (Linux waits up to 60 s) only delays
 * the verdict. */
#define RESET_WAIT_MS 1000

/* ---- result helpers ----------------------------------------------------- */

static void vfmt(char *buf, size_t len, bool append, const char *fmt, va_list ap)
{
	size_t have = append ? strlen(buf) : 0;

	if (append && have && have + 2 < len) {
		memcpy(buf + have, "; ", 3);
		have += 2;
	}
	if (have < len)
		vsnprintf(buf + have, len - have, fmt, ap);
}

void tp_doc_status(struct tp_doctor_result *r, enum tp_doctor_status s, const char *fmt, ...)
{
	va_list ap;

	r->status = s;
	va_start(ap, fmt);
	vfmt(r->seen, sizeof(r->seen), false, fmt, ap);
	va_end(ap);
}

void tp_doc_seen_add(struct tp_doctor_result *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfmt(r->seen, sizeof(r->seen), true, fmt, ap);
	va_end(ap);
}

void tp_doc_advice(struct tp_doctor_result *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfmt(r->advice, sizeof(r->advice), false, fmt, ap);
	va_end(ap);
}

void tp_doc_unchecked(struct tp_doctor_result *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfmt(r->not_checked, sizeof(r->not_checked), true, fmt, ap);
	va_end(ap);
}

void tp_doc_worsen(struct tp_doctor_result *r, enum tp_doctor_status s)
{
	if (r->status == TP_DOCTOR_SKIP || s == TP_DOCTOR_SKIP)
		return;
	if (s > r->status)
		r->status = s;
}

static struct tp_doctor_fact *fact_new(struct tp_doctor_result *r, const char *key,
				       enum tp_doctor_fact_kind kind)
{
	struct tp_doctor_fact *f;

	if (r->nfacts == TP_DOCTOR_MAX_FACTS)
		return NULL;
	f = &r->facts[r->nfacts++];
	memset(f, 0, sizeof(*f));
	f->key = key;
	f->kind = kind;
	return f;
}

void tp_doc_fact_int(struct tp_doctor_result *r, const char *key, int64_t v)
{
	struct tp_doctor_fact *f = fact_new(r, key, TP_FACT_INT);

	if (f)
		f->num = v;
}

void tp_doc_fact_bool(struct tp_doctor_result *r, const char *key, bool v)
{
	struct tp_doctor_fact *f = fact_new(r, key, TP_FACT_BOOL);

	if (f)
		f->num = v;
}

void tp_doc_fact_str(struct tp_doctor_result *r, const char *key, const char *fmt, ...)
{
	struct tp_doctor_fact *f = fact_new(r, key, TP_FACT_STR);
	va_list ap;

	if (!f)
		return;
	va_start(ap, fmt);
	vsnprintf(f->str, sizeof(f->str), fmt, ap);
	va_end(ap);
}

const char *tp_doctor_status_name(enum tp_doctor_status s)
{
	static const char *const names[] = { "ok", "warn", "fail", "skip" };

	return (unsigned)s < TP_ARRAY_SIZE(names) ? names[s] : "?";
}

/* ---- config space ------------------------------------------------------- */

uint32_t tp_doc_cfg(const struct tp_doctor *d, uint32_t off, unsigned len)
{
	if (!d->have_cfg || !tp_range_ok(off, len, d->cfg_size))
		return 0;
	return tp_le_get(d->cfg + off, len);
}

uint32_t tp_doc_find_cap(const struct tp_doctor *d, uint8_t id)
{
	uint32_t p;

	if (!(tp_doc_cfg(d, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST))
		return 0;
	p = tp_doc_cfg(d, PCI_CAPABILITY_LIST, 1) & 0xfc;
	/* 48 steps: more than a 256-byte header can hold; a loop stops here. */
	for (unsigned i = 0; i < 48 && p >= 0x40; i++) {
		if (tp_doc_cfg(d, p, 1) == id)
			return p;
		p = tp_doc_cfg(d, p + 1, 1) & 0xfc;
	}
	return 0;
}

uint32_t tp_doc_find_ecap(const struct tp_doctor *d, uint16_t id)
{
	uint32_t p = PCI_EXT_CAP_START;

	for (unsigned i = 0; i < 960 && p >= PCI_EXT_CAP_START && p + 4 <= d->cfg_size; i++) {
		uint32_t h = tp_doc_cfg(d, p, 4);

		if (!h || h == 0xffffffffu)
			return 0;
		if ((h & 0xffff) == id)
			return p;
		p = (h >> 20) & 0xffc;
	}
	return 0;
}

int tp_doc_load_cfg(struct tp_doctor *d)
{
	struct tp_region_desc rd;
	uint32_t size;
	int rc;

	memset(&rd, 0, sizeof(rd));
	rc = d->be->ops->region_info(d->be, TP_REGION_CONFIG, &rd);
	if (rc < 0)
		return rc;
	size = rd.size >= 4096 ? 4096 : (rd.size >= 256 ? 256 : 0);
	if (!size)
		return -ENODEV;
	for (uint32_t off = 0; off < size; off += 4) {
		rc = d->be->ops->config_read(d->be, off, d->cfg + off, 4);
		if (rc < 0)
			return rc;
	}
	d->cfg_size = size;
	d->have_cfg = true;
	d->vendor = (uint16_t)tp_doc_cfg(d, PCI_VENDOR_ID, 2);
	d->device = (uint16_t)tp_doc_cfg(d, PCI_DEVICE_ID, 2);
	d->cap_pcie = (uint8_t)tp_doc_find_cap(d, PCI_CAP_ID_EXP);
	return 0;
}

/* ---- stage guards --------------------------------------------------------- */

bool tp_doc_need_device(struct tp_doctor *d, struct tp_doctor_result *r, bool need_cfg)
{
	if (!d->be) {
		tp_doc_status(r, TP_DOCTOR_SKIP,
			      "skipped: no backend reached the device "
			      "(see the host stage)");
		tp_doc_advice(r, "Fix the host stage first; this stage runs after it.");
		return false;
	}
	if (d->dead || (need_cfg && !d->have_cfg)) {
		tp_doc_status(r, TP_DOCTOR_SKIP, "skipped: %s",
			      d->dead ? d->dead : "config space not read");
		tp_doc_advice(r, "Fix the stage that failed above first; this stage needs a "
				 "device that answers.");
		return false;
	}
	return true;
}

/* ---- host ----------------------------------------------------------------- */

static void stage_host(struct tp_doctor *d, struct tp_doctor_result *r)
{
	tp_doc_fact_str(r, "backend", "%s", d->hooks->name);
	d->hooks->host(d, r);
}

/* ---- identity ------------------------------------------------------------- */

static const char *class_name(uint32_t cls)
{
	static const struct {
		uint32_t cls;
		const char *name;
	} names[] = {
		{ 0x0300, "VGA-compatible display" },
		{ 0x0302, "3D controller" },
		{ 0x0380, "display controller" },
		{ 0x0403, "audio device" },
		{ 0x0108, "NVMe controller" },
		{ 0x0200, "Ethernet controller" },
		{ 0x0604, "PCI bridge" },
		{ 0x0c03, "USB controller" },
		{ 0x1200, "processing accelerator" },
	};

	for (size_t i = 0; i < TP_ARRAY_SIZE(names); i++)
		if (names[i].cls == cls >> 8)
			return names[i].name;
	return "other";
}

/* The address a memory BAR register holds (both halves of a 64-bit one). */
static uint64_t bar_addr(const struct tp_doctor *d, unsigned i)
{
	uint32_t lo = tp_doc_cfg(d, PCI_BASE_ADDRESS_0 + 4 * i, 4);
	uint64_t a = lo & ~0xfull;

	if ((lo & PCI_BAR_MEM_TYPE_MASK) == PCI_BAR_MEM_TYPE_64 && i < 5)
		a |= (uint64_t)tp_doc_cfg(d, PCI_BASE_ADDRESS_0 + 4 * (i + 1), 4) << 32;
	return a;
}

/* Memory BARs the backend says exist but whose registers hold no address. */
static void find_unassigned(struct tp_doctor *d)
{
	for (unsigned i = 0; i < TP_NUM_BARS; i++) {
		struct tp_region_desc rd;

		memset(&rd, 0, sizeof(rd));
		if (d->be->ops->region_info(d->be, i, &rd) < 0 || !rd.size)
			continue;
		if (!(tp_doc_cfg(d, PCI_BASE_ADDRESS_0 + 4 * i, 4) & PCI_BAR_IO) && !bar_addr(d, i))
			d->bars_unassigned = true;
	}
}

static void identify_nvidia(struct tp_doctor *d, struct tp_doctor_result *r)
{
	struct tp_nv_ident id;
	uint32_t boot0 = 0, boot42 = 0;
	char text[256];

	if (!bar_addr(d, 0)) {
		d->mmio_dead = "BAR0 is unassigned (see the bars stage)";
		tp_doc_worsen(r, TP_DOCTOR_WARN);
		tp_doc_seen_add(r, "PMC_BOOT_0 not read: BAR0 has no address (unassigned)");
		tp_doc_advice(r, "The host gave the device's BARs no address space: see the bars "
				 "stage for what to do.");
		return;
	}
	if (d->be->ops->region_read(d->be, 0, 0x0, &boot0, 4) < 0 ||
	    d->be->ops->region_read(d->be, 0, 0xa00, &boot42, 4) < 0) {
		tp_doc_worsen(r, TP_DOCTOR_WARN);
		tp_doc_seen_add(r, "PMC_BOOT_0/BOOT_42 could not be read through the backend");
		tp_doc_advice(r, "The backend cannot read BAR0: run with --log-level debug and "
				 "report the error it logs.");
		return;
	}
	tp_nv_identify(boot0, boot42, d->device, &id);
	tp_nv_describe(&id, text, sizeof(text));
	tp_doc_fact_str(r, "boot0", "0x%08x", boot0);
	tp_doc_fact_str(r, "boot42", "0x%08x", boot42);
	tp_doc_seen_add(r, "PMC_BOOT_0 0x%08x, BOOT_42 0x%08x: %s", boot0, boot42, text);
	switch (id.state) {
	case TP_NV_OK:
		d->chipset = (uint16_t)id.chipset;
		tp_doc_fact_str(r, "chip", "%s", id.chip);
		tp_doc_fact_str(r, "arch", "%s", id.arch);
		tp_doc_fact_str(r, "rev", "%s", id.rev);
		break;
	case TP_NV_OFF_BUS:
		/* Config answers but BAR0 does not: the BAR window is not routed
		 * (decode off, a bridge window missing) or the GPU hung. */
		d->mmio_dead = "BAR0 reads all-ones";
		tp_doc_worsen(r, TP_DOCTOR_FAIL);
		tp_doc_advice(r, "Config space answers but BAR0 reads all-ones: power-cycle the "
				 "eGPU; if it stays, the host's bridge window for the dock is "
				 "missing (Linux: boot with pci=realloc).");
		break;
	case TP_NV_BUS_ERROR:
		tp_doc_worsen(r, TP_DOCTOR_WARN);
		tp_doc_advice(r, "The GPU's register bus did not answer: it may be in reset or "
				 "powered down; power-cycle the eGPU and run doctor again.");
		break;
	case TP_NV_UNKNOWN:
		tp_doc_worsen(r, TP_DOCTOR_WARN);
		tp_doc_advice(r, "An NVIDIA chip this thunderpass does not know: passthrough may "
				 "still work; a newer thunderpass will name it.");
		break;
	}
}

static void stage_identity(struct tp_doctor *d, struct tp_doctor_result *r)
{
	uint32_t cls;
	int rc;

	if (!tp_doc_need_device(d, r, false))
		return;
	rc = tp_doc_load_cfg(d);
	if (rc) {
		snprintf(d->dead_buf, sizeof(d->dead_buf), "config space unreadable (%s)",
			 strerror(-rc));
		d->dead = d->dead_buf;
		tp_doc_status(r, TP_DOCTOR_FAIL, "the backend could not read config space: %s",
			      strerror(-rc));
		tp_doc_advice(r, "The backend cannot reach the device: check the host stage and "
				 "the errors logged above.");
		return;
	}
	tp_doc_fact_str(r, "vendor_device", "%04x:%04x", d->vendor, d->device);
	if (d->vendor == 0xffff || d->vendor == 0x0000) {
		snprintf(d->dead_buf, sizeof(d->dead_buf),
			 "device not responding (config space reads %s)",
			 d->vendor ? "all-ones" : "zeros");
		d->dead = d->dead_buf;
		tp_doc_status(r, TP_DOCTOR_FAIL,
			      "config space reads %s (vendor:device %04x:%04x): the device fell "
			      "off the bus",
			      d->vendor ? "all-ones" : "zeros", d->vendor, d->device);
		tp_doc_advice(r,
			      "Re-seat the Thunderbolt cable and power-cycle the eGPU enclosure, "
			      "then check that the host lists the device again (Linux: lspci; "
			      "macOS: System Information, PCI).");
		return;
	}
	if (d->vendor == 0x0001) {
		d->dead = "device not ready (config reads return CRS)";
		tp_doc_status(r, TP_DOCTOR_FAIL,
			      "vendor id reads 0x0001: the device answers with Configuration "
			      "Request Retry Status (not ready)");
		tp_doc_advice(r, "The device is still initialising or never came back from a "
				 "reset: wait a few seconds and run doctor again; if it stays, "
				 "power-cycle the eGPU.");
		return;
	}
	cls = tp_doc_cfg(d, PCI_REVISION_ID, 4) >> 8;
	tp_doc_fact_str(r, "class", "0x%06x", cls);
	tp_doc_status(r, TP_DOCTOR_OK, "%04x:%04x rev %02x, class 0x%06x (%s)", d->vendor,
		      d->device, tp_doc_cfg(d, PCI_REVISION_ID, 1), cls, class_name(cls));
	if ((tp_doc_cfg(d, PCI_HEADER_TYPE, 1) & 0x7f) != 0) {
		tp_doc_worsen(r, TP_DOCTOR_WARN);
		tp_doc_seen_add(r, "header type %u: not an endpoint",
				tp_doc_cfg(d, PCI_HEADER_TYPE, 1) & 0x7f);
		tp_doc_advice(r, "Pass the endpoint (the GPU itself), not a bridge above it.");
	}
	find_unassigned(d);
	if (d->vendor == 0x10de)
		identify_nvidia(d, r);
	else
		tp_doc_unchecked(r, "chip registers (the decoder knows NVIDIA GPUs only)");
	/* identify_nvidia names BAR0; any other BAR without an address is named here. */
	if (d->bars_unassigned && !d->mmio_dead) {
		tp_doc_worsen(r, TP_DOCTOR_WARN);
		tp_doc_seen_add(r, "a BAR has no address (unassigned: see the bars stage)");
		tp_doc_advice(r, "The host gave some of the device's BARs no address space: see "
				 "the bars stage for what to do.");
	}
	if (!r->advice[0])
		tp_doc_advice(r, "Nothing to do: this is the device the backend holds.");
}

/* ---- reset ---------------------------------------------------------------- */

static uint64_t ms_now(void)
{
	return tp_now_ns() / 1000000ull;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Polls the vendor id until the device answers; returns the last dword 0. */
static uint32_t wait_back(struct tp_doctor *d, uint64_t *waited_us)
{
	uint64_t t0 = tp_now_ns(), deadline = ms_now() + RESET_WAIT_MS;
	uint32_t id = 0xffffffffu;

	for (;;) {
		uint16_t v;

		if (d->be->ops->config_read(d->be, 0, &id, 4) < 0)
			id = 0xffffffffu;
		v = (uint16_t)id;
		if (v != 0xffff && v != 0x0001 && v != 0)
			break;
		if (ms_now() >= deadline)
			break;
		sleep_ms(20);
	}
	*waited_us = (tp_now_ns() - t0) / 1000;
	return id;
}

static const struct tp_quirk *no_flr_quirk(const struct tp_doctor *d)
{
	const struct tp_quirk *q = NULL;

	while ((q = tp_quirk_next(d->vendor, d->device, d->chipset, q)))
		if (q->kind == TP_QUIRK_NO_FLR)
			return q;
	return NULL;
}

static void reset_test(struct tp_doctor *d, struct tp_doctor_result *r, const struct tp_quirk *q)
{
	uint8_t bars[28];
	uint64_t waited;
	uint32_t id;
	int rc;

	memcpy(bars, d->cfg + PCI_BASE_ADDRESS_0, 24);
	memcpy(bars + 24, d->cfg + PCI_ROM_ADDRESS, 4);
	rc = tp_device_reset(&d->dev);
	id = wait_back(d, &waited);
	if ((uint16_t)id == 0xffff || (uint16_t)id == 0x0001 || (uint16_t)id == 0) {
		d->dead = "the device did not come back from the reset";
		tp_doc_worsen(r, TP_DOCTOR_FAIL);
		tp_doc_seen_add(r,
				"after the reset the vendor id reads 0x%04x (%s) and the device "
				"did not come back within %u ms",
				(uint16_t)id,
				(uint16_t)id == 0x0001 ? "CRS: not ready" : "all-ones: gone",
				RESET_WAIT_MS);
		if (q)
			tp_doc_advice(r,
				      "Power-cycle the eGPU now; this device does not return from "
				      "a function-level reset, so it must be reset with a "
				      "secondary-bus (hot) reset (the no-FLR quirk above).");
		else
			tp_doc_advice(r,
				      "Power-cycle the device; if every reset does this, it needs "
				      "a no-FLR quirk: report %04x:%04x.",
				      d->vendor, d->device);
		return;
	}
	tp_doc_fact_int(r, "back_after_us", (int64_t)waited);
	if (rc < 0) {
		tp_doc_worsen(r, TP_DOCTOR_WARN);
		tp_doc_seen_add(r, "the backend's reset returned %s, yet the device answers",
				strerror(-rc));
		tp_doc_advice(r, "The reset reported an error: run with --log-level debug and "
				 "report what the backend logs.");
		return;
	}
	rc = tp_doc_load_cfg(d);
	if (!rc && (memcmp(bars, d->cfg + PCI_BASE_ADDRESS_0, 24) ||
		    memcmp(bars + 24, d->cfg + PCI_ROM_ADDRESS, 4))) {
		tp_doc_worsen(r, TP_DOCTOR_WARN);
		tp_doc_seen_add(r, "after the reset the BAR registers hold other addresses than "
				   "before");
		tp_doc_advice(r, "The host must restore the device's config space after a reset "
				 "(Linux does, through pci_restore_state): report this backend.");
		return;
	}
	tp_doc_seen_add(r,
			"reset done: the device answered %04x:%04x again after %" PRIu64
			" us, its BARs in place",
			(uint16_t)id, (uint16_t)(id >> 16), waited);
}

static void stage_reset(struct tp_doctor *d, struct tp_doctor_result *r)
{
	const struct tp_quirk *q;
	bool flr;

	if (!tp_doc_need_device(d, r, true))
		return;
	flr = d->cap_pcie && (tp_doc_cfg(d, d->cap_pcie + PCI_EXP_DEVCAP, 4) & PCI_EXP_DEVCAP_FLR);
	q = no_flr_quirk(d);
	tp_doc_fact_str(r, "method", "%s", d->hooks->reset_method);
	tp_doc_fact_bool(r, "flr_advertised", flr);
	tp_doc_fact_bool(r, "no_flr_quirk", q != NULL);
	tp_doc_status(r, TP_DOCTOR_OK, "method: %s; FLR %sadvertised in DevCap",
		      d->hooks->reset_method, flr ? "" : "not ");
	if (q)
		tp_doc_seen_add(r, "quirk for %04x:%04x: %s (%s)", d->vendor, d->device, q->reason,
				q->source);
	if (!d->hooks->reset_test || !d->dev_ok) {
		tp_doc_unchecked(r, "the reset itself (%s)",
				 d->dev_ok ? "doctor resets only devices it holds in process"
					   : "the core could not open the device");
	} else {
		reset_test(d, r, q);
	}
	if (!r->advice[0])
		tp_doc_advice(r, q ? "Nothing to do here; on real hardware this device must be "
				     "reset with a secondary-bus reset, never an FLR (the quirk "
				     "above)."
				   : "Nothing to do: the device comes back from its reset.");
}

/* ---- DMA and interrupts --------------------------------------------------- */

static void stage_dma_irq(struct tp_doctor *d, struct tp_doctor_result *r)
{
	if (!tp_doc_need_device(d, r, true))
		return;
	if (!d->hooks->dma_irq) {
		tp_doc_status(r, TP_DOCTOR_SKIP, "not tested: %s", d->hooks->dma_irq_none);
		tp_doc_unchecked(r, "DMA and interrupts end to end (they need a guest driver "
				    "with this backend)");
		tp_doc_advice(r, "Run a guest and watch `thunderpass stats` for DMA maps and "
				 "interrupts.");
		return;
	}
	if (!d->dev_ok) {
		tp_doc_status(r, TP_DOCTOR_SKIP,
			      "skipped: the core could not open the device "
			      "(see the bars stage)");
		tp_doc_advice(r, "Fix the bars stage first.");
		return;
	}
	if (d->mmio_dead) {
		tp_doc_status(r, TP_DOCTOR_SKIP,
			      "skipped: the engine is driven through BAR0, and "
			      "%s",
			      d->mmio_dead);
		tp_doc_advice(r, "Fix the BARs first (see the stages above).");
		return;
	}
	d->hooks->dma_irq(d, r);
}

/* ---- the run -------------------------------------------------------------- */

static const struct {
	const char *id, *title;
	void (*run)(struct tp_doctor *d, struct tp_doctor_result *r);
} stages[TP_DOCTOR_STAGES] = {
	{ "host", "Host", stage_host },		 { "identity", "Identity", stage_identity },
	{ "link", "PCIe link", tp_doctor_link }, { "bars", "BARs", tp_doctor_bars },
	{ "reset", "Reset", stage_reset },	 { "dma-irq", "DMA and interrupts", stage_dma_irq },
	{ "qemu", "QEMU", tp_doctor_qemu },
};

int tp_doctor_run(const struct tp_doctor_opts *o, tp_doctor_report_fn report, void *ctx)
{
	const struct tp_doctor_backend *hooks = tp_doctor_hooks(o->backend ? o->backend : "model");
	struct tp_doctor_result *r;
	struct tp_doctor *d;
	int failed = 0, rc;

	if (!hooks)
		return -EINVAL;
	d = calloc(1, sizeof(*d));
	r = calloc(1, sizeof(*r));
	if (!d || !r) {
		free(d);
		free(r);
		return -ENOMEM;
	}
	d->o = o;
	d->hooks = hooks;
	for (size_t i = 0; i < TP_ARRAY_SIZE(stages); i++) {
		memset(r, 0, sizeof(*r));
		r->stage = stages[i].id;
		r->title = stages[i].title;
		stages[i].run(d, r);
		if (!r->seen[0])
			tp_doc_status(r, r->status, "nothing to report");
		if (!r->advice[0])
			tp_doc_advice(r, "Nothing to do.");
		if (r->status == TP_DOCTOR_FAIL)
			failed++;
		report(ctx, r);
	}
	if (d->dev_opened)
		tp_device_close(&d->dev); /* destroys the backend too */
	else if (d->be && d->be->ops->destroy)
		d->be->ops->destroy(d->be);
	rc = d->usage_error ? -EINVAL : failed;
	free(d);
	free(r);
	return rc;
}
