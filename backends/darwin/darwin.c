/* SPDX-License-Identifier: MIT */
/*
 * The darwin backend: a PCI function owned by thunderpass's PCIDriverKit
 * driver extension on macOS, reached through its user client.
 *
 *   thunderpass serve --backend darwin -o device=03:00.0 ...
 *
 * Config space: through the dext (CONFIG_READ/WRITE; it refuses every write
 * but Command, as the core does). BARs: mapped with IOConnectMapMemory64
 * (write-combined when prefetchable) and served as trapped regions: an IOKit
 * mapping is not an fd the client could map (docs/macos.md weighs how QEMU
 * could map them directly); a BAR the dext cannot map goes through its
 * MMIO_READ/WRITE selectors. Interrupts: darwin_irq.c. DMA: darwin_dma.c.
 *
 * Every value the dext returns is checked before use (sizes powers of two,
 * counts in range, the identity matching the BDF asked for).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <thunderpass/log.h>
#include <thunderpass/protocol.h>

#include "darwin.h"

#define CFG_INTERRUPT_PIN 0x3d

/* ---- options ---------------------------------------------------------------- */

struct darwin_opts {
	const char *device, *name, *irq;
	bool no_map;
};

static int parse_opts(const struct tp_backend_opt *opts, size_t n, struct darwin_opts *o)
{
	for (size_t i = 0; i < n; i++) {
		const char *k = opts[i].key ? opts[i].key : "", *v = opts[i].value;

		if (!v || !v[0]) {
			tp_err(DARWIN_WHO, "option %s needs a value", k);
			return -EINVAL;
		}
		if (!strcmp(k, "device")) {
			o->device = v;
		} else if (!strcmp(k, "name")) {
			if (strlen(v) >= sizeof(((struct tp_backend *)0)->name)) {
				tp_err(DARWIN_WHO, "name: at most 63 characters");
				return -EINVAL;
			}
			o->name = v;
		} else if (!strcmp(k, "irq")) {
			if (strcmp(v, "auto") && strcmp(v, "msix") && strcmp(v, "msi")) {
				tp_err(DARWIN_WHO, "irq: auto, msix or msi");
				return -EINVAL;
			}
			o->irq = v;
		} else if (!strcmp(k, "map")) {
			if (strcmp(v, "on") && strcmp(v, "off")) {
				tp_err(DARWIN_WHO, "map: on or off");
				return -EINVAL;
			}
			o->no_map = !strcmp(v, "off");
		} else {
			tp_err(DARWIN_WHO, "unknown option '%s' (device, name, irq, map)", k);
			return -EINVAL;
		}
	}
	if (!o->device) {
		tp_err(DARWIN_WHO, "-o device=BUS:DEV.FN is required (thunderpass list shows them)");
		return -EINVAL;
	}
	return 0;
}

/* ---- BAR access ---------------------------------------------------------------- */

/* The widest naturally aligned access (8, 4, 2, 1) at off for len bytes:
 * device memory on arm64 faults on unaligned accesses, and a register must
 * see the width the guest used. */
static unsigned access_width(uint64_t off, uint64_t len)
{
	if (len >= 8 && !(off & 7))
		return 8;
	if (len >= 4 && !(off & 3))
		return 4;
	if (len >= 2 && !(off & 1))
		return 2;
	return 1;
}

static void map_read(const volatile uint8_t *p, uint8_t *buf, unsigned w)
{
	uint64_t v;

	switch (w) {
	case 8: v = *(const volatile uint64_t *)p; break;
	case 4: v = *(const volatile uint32_t *)p; break;
	case 2: v = *(const volatile uint16_t *)p; break;
	default: v = *p; break;
	}
	memcpy(buf, &v, w); /* little-endian host: the low bytes */
}

static void map_write(volatile uint8_t *p, const uint8_t *buf, unsigned w)
{
	uint64_t v = 0;

	memcpy(&v, buf, w);
	switch (w) {
	case 8: *(volatile uint64_t *)p = v; break;
	case 4: *(volatile uint32_t *)p = (uint32_t)v; break;
	case 2: *(volatile uint16_t *)p = (uint16_t)v; break;
	default: *p = (uint8_t)v; break;
	}
}

static int bar_access(struct darwin_dev *d, uint32_t bar, uint64_t off, uint8_t *buf,
		      uint64_t len, bool write)
{
	struct darwin_bar *b = &d->bars[bar];

	while (len) {
		unsigned w = access_width(off, len);

		if (b->map) {
			write ? map_write(b->map + off, buf, w) : map_read(b->map + off, buf, w);
		} else {
			uint64_t in[4] = { bar, off, w, 0 }, v = 0;
			int rc;

			if (write) {
				memcpy(&in[3], buf, w);
				rc = tp_darwin_call(d, TP_DUC_MMIO_WRITE, in, 4, NULL, 0, NULL, 0,
						    NULL, 0);
			} else {
				rc = tp_darwin_call(d, TP_DUC_MMIO_READ, in, 3, NULL, 0, &v, 1,
						    NULL, 0);
				memcpy(buf, &v, w);
			}
			if (rc) {
				tp_err(d->be.name, "BAR%u %s of %u bytes at %#" PRIx64 ": %s", bar,
				       write ? "write" : "read", w, off, strerror(-rc));
				return rc;
			}
		}
		off += w;
		buf += w;
		len -= w;
	}
	return 0;
}

/* BAR n's region (index n) exists: present memory, not an upper half. I/O
 * BARs do not: Apple silicon has no I/O space to reach them. */
static bool bar_usable(const struct darwin_bar *b)
{
	return (b->info.flags & TP_DUC_BAR_PRESENT) &&
	       !(b->info.flags & (TP_DUC_BAR_IO | TP_DUC_BAR_UPPER)) && b->info.size;
}

/* ---- ops ---------------------------------------------------------------------- */

static int darwin_config_read(struct tp_backend *be, uint32_t off, void *buf, uint32_t len)
{
	struct darwin_dev *d = darwin_of(be);
	uint64_t in[2] = { off, len }, v = 0;
	int rc;

	if ((len != 1 && len != 2 && len != 4) || (off & (len - 1)) || off >= d->info.cfg_size ||
	    len > d->info.cfg_size - off) {
		tp_err(be->name, "config read of %u bytes at %#x: invalid", len, off);
		return -EINVAL;
	}
	rc = tp_darwin_call(d, TP_DUC_CONFIG_READ, in, 2, NULL, 0, &v, 1, NULL, 0);
	if (rc) {
		tp_err(be->name, "config read at %#x: %s", off, strerror(-rc));
		return rc;
	}
	if (v >> (8 * len)) { /* a dext that answers more than it was asked */
		tp_err(be->name, "config read at %#x: %u-byte value %#" PRIx64 " from the dext",
		       off, len, v);
		return -EPROTO;
	}
	/* Only message-signalled interrupts reach us (the dext takes MSI or
	 * MSI-X from macOS): a guest that saw a pin would wait for an INTx
	 * that never comes. */
	if (off <= CFG_INTERRUPT_PIN && off + len > CFG_INTERRUPT_PIN)
		v &= ~(0xffull << (8 * (CFG_INTERRUPT_PIN - off)));
	memcpy(buf, &v, len);
	return 0;
}

static int darwin_config_write(struct tp_backend *be, uint32_t off, const void *buf, uint32_t len)
{
	struct darwin_dev *d = darwin_of(be);
	uint64_t in[3] = { off, len, 0 };
	int rc;

	if ((len != 1 && len != 2 && len != 4) || (off & (len - 1)) || off >= d->info.cfg_size ||
	    len > d->info.cfg_size - off) {
		tp_err(be->name, "config write of %u bytes at %#x: invalid", len, off);
		return -EINVAL;
	}
	memcpy(&in[2], buf, len);
	rc = tp_darwin_call(d, TP_DUC_CONFIG_WRITE, in, 3, NULL, 0, NULL, 0, NULL, 0);
	if (rc)
		tp_err(be->name, "config write of %u bytes at %#x: %s", len, off,
		       rc == -EPERM ? "refused by the driver extension" : strerror(-rc));
	return rc;
}

static int darwin_region_info(struct tp_backend *be, uint32_t index, struct tp_region_desc *out)
{
	struct darwin_dev *d = darwin_of(be);

	memset(out, 0, sizeof(*out));
	out->mmap_fd = -1; /* trapped: see the file comment */
	if (index < TP_REGION_ROM) {
		if (!bar_usable(&d->bars[index]))
			return 0;
		out->size = d->bars[index].info.size;
		out->readable = out->writable = 1;
	} else if (index == TP_REGION_ROM) {
		if (d->bars[TP_DUC_BAR_ROM].info.flags & TP_DUC_BAR_PRESENT) {
			out->size = d->bars[TP_DUC_BAR_ROM].info.size;
			out->readable = 1;
		}
	} else if (index == TP_REGION_CONFIG) {
		out->size = d->info.cfg_size;
		out->readable = out->writable = 1;
	} else if (index != TP_REGION_VGA) {
		tp_err(be->name, "region %u: no such region", index);
		return -EINVAL;
	}
	return 0;
}

static int region_access(struct darwin_dev *d, uint32_t index, uint64_t off, void *buf,
			 uint32_t len, bool write)
{
	const struct darwin_bar *b;

	if (index > TP_REGION_ROM || (index == TP_REGION_ROM && write) || !len) {
		tp_err(d->be.name, "region %u %s: not a %s region", index, write ? "write" : "read",
		       write ? "writable" : "readable");
		return -EINVAL;
	}
	b = &d->bars[index == TP_REGION_ROM ? TP_DUC_BAR_ROM : index];
	if ((index < TP_REGION_ROM && !bar_usable(b)) ||
	    !(b->info.flags & TP_DUC_BAR_PRESENT) || off >= b->info.size ||
	    len > b->info.size - off) {
		tp_err(d->be.name, "region %u %s of %u bytes at %#" PRIx64 ": outside the BAR", index,
		       write ? "write" : "read", len, off);
		return -EINVAL;
	}
	return bar_access(d, index == TP_REGION_ROM ? TP_DUC_BAR_ROM : index, off, buf, len, write);
}

static int darwin_region_read(struct tp_backend *be, uint32_t index, uint64_t off, void *buf,
			      uint32_t len)
{
	return region_access(darwin_of(be), index, off, buf, len, false);
}

static int darwin_region_write(struct tp_backend *be, uint32_t index, uint64_t off,
			       const void *buf, uint32_t len)
{
	return region_access(darwin_of(be), index, off, (void *)buf, len, true);
}

static int darwin_irq_count(struct tp_backend *be, uint32_t index, uint32_t *count)
{
	struct darwin_dev *d = darwin_of(be);

	switch (index) {
	case TP_IRQ_MSI: *count = d->info.cap_msi ? d->info.msi_vectors : 0; return 0;
	case TP_IRQ_MSIX: *count = d->info.cap_msix ? d->info.msix_vectors : 0; return 0;
	case TP_IRQ_INTX: /* none reach us: see darwin_config_read */
	case TP_IRQ_ERR:
	case TP_IRQ_REQ: *count = 0; return 0;
	default:
		tp_err(be->name, "irq index %u: no such index", index);
		return -EINVAL;
	}
}

static int darwin_reset(struct tp_backend *be)
{
	struct darwin_dev *d = darwin_of(be);
	uint64_t out[2] = { 0, 0 };
	int rc = tp_darwin_call(d, TP_DUC_RESET, NULL, 0, NULL, 0, out, TP_DUC_RESET_OUT, NULL, 0);

	if (rc) {
		tp_err(be->name, "reset: %s%s", strerror(-rc),
		       rc == -ETIMEDOUT ? ": the device did not come back (unplug and replug the "
					  "dock, or reboot)" : "");
		return rc;
	}
	if (out[0] != TP_DUC_RESET_FLR && out[0] != TP_DUC_RESET_HOT) {
		tp_err(be->name, "reset: the dext answered an unknown reset type %" PRIu64, out[0]);
		return -EPROTO;
	}
	tp_info(be->name, "reset: %s, device back after %" PRIu64 " ms",
		out[0] == TP_DUC_RESET_FLR ? "function-level reset" : "hot reset", out[1]);
	return 0;
}

static void darwin_free(struct darwin_dev *d)
{
	tp_darwin_irq_stop(d);
	tp_darwin_iommu_detach(d);
	for (uint32_t i = 0; i < 6; i++)
		if (d->bars[i].map)
			IOConnectUnmapMemory64(d->conn, TP_DUC_MEM_BAR(i), mach_task_self(),
					       (mach_vm_address_t)(uintptr_t)d->bars[i].map);
	/* Closing the user client ends the dext's session: bus master off,
	 * interrupts and DMA mappings torn down, decode off, device closed. */
	if (d->conn != IO_OBJECT_NULL)
		IOServiceClose(d->conn);
	if (d->service != IO_OBJECT_NULL)
		IOObjectRelease(d->service);
	free(d);
}

static void darwin_destroy(struct tp_backend *be)
{
	if (be)
		darwin_free(darwin_of(be));
}

static const struct tp_backend_ops darwin_ops = {
	.name = "darwin",
	.config_read = darwin_config_read,
	.config_write = darwin_config_write,
	.region_info = darwin_region_info,
	.region_read = darwin_region_read,
	.region_write = darwin_region_write,
	.irq_count = darwin_irq_count,
	.reset = darwin_reset,
	.iommu_create = tp_darwin_iommu_create,
	.destroy = darwin_destroy,
};

/* ---- open ----------------------------------------------------------------------- */

static int check_info(struct darwin_dev *d)
{
	const struct tp_duc_info *in = &d->info;

	if (in->magic != TP_DUC_MAGIC || in->abi != TP_DUC_ABI) {
		tp_err(d->be.name, "driver extension speaks ABI %u (magic %#x), we speak %u: "
				   "install the dext from this thunderpass build",
		       in->abi, in->magic, TP_DUC_ABI);
		return -EPROTO;
	}
	if (in->bus != d->bus || in->dev != d->dev || in->fn != d->fn) {
		tp_err(d->be.name, "the driver extension serves %02x:%02x.%x, not %02x:%02x.%x",
		       in->bus, in->dev, in->fn, d->bus, d->dev, d->fn);
		return -EPROTO;
	}
	if ((in->cfg_size != 256 && in->cfg_size != 4096) ||
	    in->msi_vectors > 32 || in->msix_vectors > TP_DUC_MAX_VECTORS ||
	    (in->cap_msi && !in->msi_vectors) || (in->cap_msix && !in->msix_vectors) ||
	    in->dma_page != TP_DUC_PAGE || !in->dma_max_segs || in->dma_max_segs > TP_DUC_MAX_SEGS ||
	    !in->dma_max_bytes || !in->dma_max_maps || in->dma_max_maps > TP_DUC_MAX_DMA_MAPS ||
	    in->dma_max_bytes > TP_DUC_MAX_DMA_BYTES) {
		tp_err(d->be.name, "driver extension reports impossible limits (config %u bytes, "
				   "%u/%u vectors, DMA page %u, %u segments)",
		       in->cfg_size, in->msi_vectors, in->msix_vectors, in->dma_page,
		       in->dma_max_segs);
		return -EPROTO;
	}
	return 0;
}

static int check_bar(struct darwin_dev *d, uint32_t i)
{
	const struct tp_duc_bar *b = &d->bars[i].info;
	uint32_t known = TP_DUC_BAR_PRESENT | TP_DUC_BAR_IO | TP_DUC_BAR_MEM64 |
			 TP_DUC_BAR_PREFETCH | TP_DUC_BAR_UPPER;
	bool upper_ok = i > 0 && i < 6 && (d->bars[i - 1].info.flags & TP_DUC_BAR_MEM64) &&
			!(d->bars[i - 1].info.flags & TP_DUC_BAR_UPPER);

	if (b->bar != i || (b->flags & ~known))
		goto bad;
	if (b->flags & TP_DUC_BAR_UPPER) {
		if (!upper_ok || b->flags != TP_DUC_BAR_UPPER || b->size)
			goto bad;
		return 0;
	}
	if (!(b->flags & TP_DUC_BAR_PRESENT)) {
		if (b->flags || b->size)
			goto bad;
		return 0;
	}
	/* PCI BARs are powers of two; 64-bit ones need a free upper half. */
	if (!b->size || (b->size & (b->size - 1)) ||
	    ((b->flags & TP_DUC_BAR_IO) && (b->flags & (TP_DUC_BAR_MEM64 | TP_DUC_BAR_PREFETCH))) ||
	    (!(b->flags & TP_DUC_BAR_MEM64) && b->size > (1ull << 32)) ||
	    ((b->flags & TP_DUC_BAR_MEM64) && i >= 5) ||
	    (i == TP_DUC_BAR_ROM && b->flags != TP_DUC_BAR_PRESENT))
		goto bad;
	return 0;
bad:
	tp_err(d->be.name, "BAR%u: the driver extension reports flags %#x size %#" PRIx64
			   ": not a PCI BAR", i, b->flags, b->size);
	return -EPROTO;
}

static void map_bar(struct darwin_dev *d, uint32_t i)
{
	struct darwin_bar *b = &d->bars[i];
	mach_vm_address_t addr = 0;
	mach_vm_size_t size = 0;
	IOOptionBits opt = kIOMapAnywhere;
	kern_return_t kr;

	/* Write-combining lets the CPU merge and burst writes to a
	 * prefetchable BAR (VRAM); registers must stay uncached. */
	b->wc = b->info.flags & TP_DUC_BAR_PREFETCH;
	opt |= b->wc ? kIOMapWriteCombineCache : kIOMapInhibitCache;
	kr = IOConnectMapMemory64(d->conn, TP_DUC_MEM_BAR(i), mach_task_self(), &addr, &size, opt);
	if (kr != KERN_SUCCESS || !addr || size < b->info.size) {
		tp_warn(d->be.name, "BAR%u: cannot map it (%s, %#llx bytes): every access goes "
				    "through the driver extension (slow)",
			i, kr ? tp_darwin_krstr(kr) : "short mapping", (unsigned long long)size);
		if (kr == KERN_SUCCESS && addr)
			IOConnectUnmapMemory64(d->conn, TP_DUC_MEM_BAR(i), mach_task_self(), addr);
		return;
	}
	b->map = (volatile uint8_t *)(uintptr_t)addr;
	b->map_size = size;
}

/* A Thunderbolt host may leave a BAR unassigned; such a BAR reads all-ones.
 * Say so now instead of letting the guest driver hang on it. */
static void probe_bar0(struct darwin_dev *d)
{
	uint32_t v = 0;

	if (!bar_usable(&d->bars[0]) || d->bars[0].info.size < 4 ||
	    bar_access(d, 0, 0, (uint8_t *)&v, 4, false))
		return;
	if (v == 0xffffffffu)
		tp_warn(d->be.name, "BAR0 reads all-ones: the host left the BARs unassigned or the "
				    "device is off the bus (check the dock's power, replug)");
	else if (d->info.vendor == 0x10de)
		tp_info(d->be.name, "NVIDIA PMC_BOOT_0 %#x", v);
}

static int darwin_open(struct darwin_dev *d, const struct darwin_opts *o)
{
	kern_return_t kr;
	int rc;

	rc = tp_darwin_find_service(d->bus, d->dev, d->fn, &d->service);
	if (rc)
		return rc;
	kr = IOServiceOpen(d->service, mach_task_self(), TP_DUC_CLIENT_TYPE, &d->conn);
	if (kr != KERN_SUCCESS) {
		d->conn = IO_OBJECT_NULL;
		tp_err(d->be.name, "cannot open the driver extension: %s (%#x)%s", tp_darwin_krstr(kr),
		       kr, kr == kIOReturnExclusiveAccess ? ": another thunderpass serves it" :
			   kr == kIOReturnNotPrivileged ? ": thunderpass lacks the "
							  "userclient-access entitlement" : "");
		return tp_darwin_errno(kr);
	}
	rc = tp_darwin_call(d, TP_DUC_GET_INFO, NULL, 0, NULL, 0, NULL, 0, &d->info,
			    sizeof(d->info));
	if (rc) {
		if (rc != -EPROTO) /* tp_darwin_call said why */
			tp_err(d->be.name, "GET_INFO: %s", strerror(-rc));
		return rc;
	}
	rc = check_info(d);
	for (uint32_t i = 0; !rc && i < TP_DUC_NUM_BARS; i++) {
		uint64_t in = i;

		rc = tp_darwin_call(d, TP_DUC_BAR_INFO, &in, 1, NULL, 0, NULL, 0, &d->bars[i].info,
				    sizeof(d->bars[i].info));
		if (rc && rc != -EPROTO)
			tp_err(d->be.name, "BAR_INFO %u: %s", i, strerror(-rc));
		else if (!rc)
			rc = check_bar(d, i);
	}
	if (rc)
		return rc;
	for (uint32_t i = 0; i < 6; i++) {
		uint32_t fl = d->bars[i].info.flags;

		if ((fl & TP_DUC_BAR_IO) && (fl & TP_DUC_BAR_PRESENT))
			tp_warn(d->be.name, "BAR%u is an I/O BAR: not passed through", i);
		if (bar_usable(&d->bars[i]) && !o->no_map)
			map_bar(d, i);
	}
	probe_bar0(d);
	return tp_darwin_irq_start(d, o->irq ? o->irq : "auto");
}

static int darwin_create(const struct tp_backend_opt *opts, size_t nopts, struct tp_backend **out)
{
	struct darwin_opts o = { 0 };
	struct darwin_dev *d;
	int rc;

	if (!out || (nopts && !opts))
		return -EINVAL;
	*out = NULL;
	rc = parse_opts(opts, nopts, &o);
	if (rc)
		return rc;
	d = calloc(1, sizeof(*d));
	if (!d) {
		tp_err(DARWIN_WHO, "out of memory");
		return -ENOMEM;
	}
	d->be.ops = &darwin_ops;
	d->no_map = o.no_map;
	d->service = IO_OBJECT_NULL;
	d->conn = IO_OBJECT_NULL;
	rc = tp_darwin_parse_bdf(o.device, &d->bus, &d->dev, &d->fn);
	if (rc) {
		tp_err(DARWIN_WHO, "device=%s: expected BUS:DEV.FN in hex (e.g. 03:00.0)", o.device);
		free(d);
		return rc;
	}
	if (o.name)
		snprintf(d->be.name, sizeof(d->be.name), "%s", o.name);
	else
		snprintf(d->be.name, sizeof(d->be.name), "darwin-%02x:%02x.%x", d->bus, d->dev, d->fn);
	rc = darwin_open(d, &o);
	if (rc) {
		darwin_free(d);
		return rc;
	}
	tp_info(d->be.name, "%04x:%04x class %06x: config %u bytes, %u MSI / %u MSI-X vectors, "
			    "%u granted, DMA caps %" PRIu64 " MiB / %" PRIu64 " mappings",
		d->info.vendor, d->info.device, d->info.class_rev >> 8, d->info.cfg_size,
		d->info.msi_vectors, d->info.msix_vectors, d->irq_vectors,
		d->info.dma_max_bytes >> 20, d->info.dma_max_maps);
	*out = &d->be;
	return 0;
}

const struct tp_backend_type tp_backend_darwin = {
	.name = "darwin",
	.help = "a PCI function on macOS through thunderpass's driver extension; "
		"device=BUS:DEV.FN (thunderpass list), name=NAME, irq=auto|msix|msi, map=on|off",
	.create = darwin_create,
};
