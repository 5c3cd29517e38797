/* SPDX-License-Identifier: MIT */
/*
 * The pvdma companion backend (docs/pvdma.md): options, config space, the
 * ops table and creation. The registers and the ring are in pvdma_ring.c.
 *
 * Regions:
 *   BAR0   4 KiB, 32-bit memory, trapped: registers; MSI-X table at 0x800
 *          and PBA at 0xc00 (the client owns both)
 *   BAR2   1 MiB, 64-bit prefetchable: the ring, a memfd the client maps,
 *          so writing entries costs the guest no exit (and, one region
 *          being mapped, the client sends every trapped write non-posted:
 *          the doorbell's answer is there when the write returns)
 *   config 4096 bytes: PCIe endpoint and MSI-X capabilities; no INTx
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <thunderpass/log.h>
#include <thunderpass/protocol.h>

#include "pci_regs.h"
#include "pvdma_int.h"
#include "util.h"

#define PVDMA_WHO "pvdma"

/* Host ("physical") BAR addresses the function claims; the guest never
 * sees them (the core emulates BARs). */
#define PVDMA_BAR0_ADDR 0xa2000000u
#define PVDMA_BAR2_ADDR 0x7000000000ull

#define CAP_PCIE 0x40u
#define CAP_MSIX 0x80u
/* Decode and bus mastering latch; nothing else in the command register
 * means anything to a paravirtual function (and it has no INTx). */
#define CMD_WMASK (PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_INTX_DISABLE)

/* ---- options ---------------------------------------------------------- */

const char tp_pvdma_opts_help[] =
	"pvdma companion (--pvdma-socket): -o pvdma-id=VVVV:DDDD (default 7470:0001), "
	"pvdma-window=SIZE (16K..; default 256K), pvdma-lazy-ms=N (0..10000; default 10), "
	"pvdma-lazy-max=SIZE (default 64M), pvdma-max-mapped=SIZE (whole MiB; default 1536M), "
	"pvdma-max-mappings=N (default 65536)";

void tp_pvdma_opts_default(struct tp_pvdma_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->vendor = PVDMA_VENDOR;
	o->device = PVDMA_DEVICE;
	tp_pv_config_default(&o->policy);
	o->policy.max_pending = PVDMA_RING_ENTRIES;
	o->name = "pvdma0";
}

static int opt_id(const char *v, struct tp_pvdma_opts *o)
{
	unsigned vendor, device;
	char tail;

	if (!v || sscanf(v, "%4x:%4x%c", &vendor, &device, &tail) != 2 || vendor == 0xffff ||
	    !vendor)
		return -EINVAL;
	o->vendor = (uint16_t)vendor;
	o->device = (uint16_t)device;
	return 0;
}

static int opt_window(const char *v, struct tp_pvdma_opts *o)
{
	uint64_t w;

	if (!v || tp_parse_size(v, &w) || !tp_is_pow2(w) || w < (16u << 10) || w > (1ull << 30))
		return -EINVAL;
	o->policy.window = w;
	return 0;
}

static int opt_lazy_ms(const char *v, struct tp_pvdma_opts *o)
{
	uint64_t ms;

	if (!v || tp_parse_u64(v, &ms) || ms > 10000)
		return -EINVAL;
	o->policy.lazy_ns = ms * 1000000ull;
	return 0;
}

static int opt_lazy_max(const char *v, struct tp_pvdma_opts *o)
{
	return v && !tp_parse_size(v, &o->policy.lazy_max) ? 0 : -EINVAL;
}

static int opt_max_mapped(const char *v, struct tp_pvdma_opts *o)
{
	uint64_t b;

	/* The register says MiB: only whole MiB can be told truthfully. */
	if (!v || tp_parse_size(v, &b) || !b || (b & ((1u << 20) - 1)) || b > (64ull << 30))
		return -EINVAL;
	o->policy.max_bytes = b;
	return 0;
}

static int opt_max_mappings(const char *v, struct tp_pvdma_opts *o)
{
	uint64_t n;

	if (!v || tp_parse_u64(v, &n) || !n || n > (1u << 24))
		return -EINVAL;
	o->policy.max_mappings = (uint32_t)n;
	return 0;
}

static const struct {
	const char *key;
	int (*parse)(const char *v, struct tp_pvdma_opts *o);
	const char *expect;
} pvdma_opt_specs[] = {
	{ "pvdma-id", opt_id, "VVVV:DDDD in hex, vendor not 0 or ffff" },
	{ "pvdma-window", opt_window, "a power of two from 16K to 1G" },
	{ "pvdma-lazy-ms", opt_lazy_ms, "milliseconds, 0 to 10000" },
	{ "pvdma-lazy-max", opt_lazy_max, "a size (K, M, G)" },
	{ "pvdma-max-mapped", opt_max_mapped, "whole MiB, at most 64G" },
	{ "pvdma-max-mappings", opt_max_mappings, "1 to 16777216" },
};

int tp_pvdma_is_opt(const char *key)
{
	return key && strncmp(key, "pvdma-", 6) == 0;
}

int tp_pvdma_parse_opts(const struct tp_backend_opt *opts, size_t nopts, struct tp_pvdma_opts *o)
{
	for (size_t i = 0; i < nopts; i++) {
		const char *key = opts[i].key ? opts[i].key : "";
		size_t k;

		for (k = 0; k < TP_ARRAY_SIZE(pvdma_opt_specs); k++)
			if (strcmp(key, pvdma_opt_specs[k].key) == 0)
				break;
		if (k == TP_ARRAY_SIZE(pvdma_opt_specs)) {
			tp_err(PVDMA_WHO, "unknown option '%s' (%s)", key, tp_pvdma_opts_help);
			return -EINVAL;
		}
		if (pvdma_opt_specs[k].parse(opts[i].value, o)) {
			tp_err(PVDMA_WHO, "bad value '%s' for %s: expected %s",
			       opts[i].value ? opts[i].value : "(none)", key,
			       pvdma_opt_specs[k].expect);
			return -EINVAL;
		}
	}
	if (o->policy.window > o->policy.max_bytes) {
		tp_err(PVDMA_WHO, "pvdma-window is larger than pvdma-max-mapped");
		return -EINVAL;
	}
	return 0;
}

/* ---- config space ------------------------------------------------------- */

static void put(struct pvdma *pv, uint32_t off, unsigned len, uint32_t v)
{
	tp_le_put(pv->cfg + off, len, v);
}

static void cfg_build(struct pvdma *pv)
{
	memset(pv->cfg, 0, sizeof(pv->cfg));
	put(pv, PCI_VENDOR_ID, 2, pv->o.vendor);
	put(pv, PCI_DEVICE_ID, 2, pv->o.device);
	put(pv, PCI_STATUS, 2, PCI_STATUS_CAP_LIST);
	put(pv, PCI_REVISION_ID, 4, PVDMA_CLASS << 8 | PVDMA_REVISION);
	/* BAR0: 32-bit memory; BAR2: 64-bit prefetchable (its upper half in BAR3). */
	put(pv, PCI_BASE_ADDRESS_0, 4, PVDMA_BAR0_ADDR);
	put(pv, PCI_BASE_ADDRESS_0 + 8, 4,
	    (uint32_t)PVDMA_BAR2_ADDR | PCI_BAR_MEM_TYPE_64 | PCI_BAR_MEM_PREFETCH);
	put(pv, PCI_BASE_ADDRESS_0 + 12, 4, (uint32_t)(PVDMA_BAR2_ADDR >> 32));
	put(pv, PCI_SUBSYSTEM_VENDOR_ID, 2, pv->o.vendor);
	put(pv, PCI_SUBSYSTEM_VENDOR_ID + 2, 2, pv->o.device);
	put(pv, PCI_CAPABILITY_LIST, 1, CAP_PCIE);
	/* Interrupt pin 0: no INTx. */

	/* PCI Express v2 endpoint, x1 at 2.5 GT/s: a function in the managed
	 * device's slot looks like a PCIe function to the guest. */
	put(pv, CAP_PCIE, 2, PCI_CAP_ID_EXP | CAP_MSIX << 8);
	put(pv, CAP_PCIE + PCI_EXP_FLAGS, 2, 0x0002);
	put(pv, CAP_PCIE + PCI_EXP_DEVCTL, 2, 0x2000); /* MRRS 512 B, the reset value */
	put(pv, CAP_PCIE + PCI_EXP_LNKCAP, 4, 0x1u | 1u << 4);
	put(pv, CAP_PCIE + PCI_EXP_LNKSTA, 2, 0x1u | 1u << 4);
	put(pv, CAP_PCIE + PCI_EXP_LNKCAP2, 4, 0x2u);

	/* MSI-X: one vector (table size field N-1 = 0), table and PBA in BAR0. */
	put(pv, CAP_MSIX, 2, PCI_CAP_ID_MSIX);
	put(pv, CAP_MSIX + PCI_MSIX_FLAGS, 2, 0);
	put(pv, CAP_MSIX + PCI_MSIX_TABLE, 4, PVDMA_MSIX_TABLE);
	put(pv, CAP_MSIX + PCI_MSIX_PBA, 4, PVDMA_MSIX_PBA);
}

static int pvdma_config_read(struct tp_backend *be, uint32_t off, void *buf, uint32_t len)
{
	struct pvdma *pv = pvdma_of(be);

	if (!buf || !tp_range_ok(off, len, sizeof(pv->cfg))) {
		tp_err(be->name, "config read of %u bytes at %#x: invalid", len, off);
		return -EINVAL;
	}
	memcpy(buf, pv->cfg + off, len);
	return 0;
}

static int pvdma_config_write(struct tp_backend *be, uint32_t off, const void *buf, uint32_t len)
{
	struct pvdma *pv = pvdma_of(be);
	const uint8_t *in = buf;

	if (!buf || !tp_range_ok(off, len, sizeof(pv->cfg))) {
		tp_err(be->name, "config write of %u bytes at %#x: invalid", len, off);
		return -EINVAL;
	}
	/* Only the command register's bits latch; everything else is read-only. */
	for (uint32_t i = 0; i < len; i++) {
		uint32_t at = off + i;

		if (at == PCI_COMMAND || at == PCI_COMMAND + 1) {
			uint8_t m = (uint8_t)(CMD_WMASK >> (8 * (at - PCI_COMMAND)));

			pv->cfg[at] = (uint8_t)((pv->cfg[at] & ~m) | (in[i] & m));
		}
	}
	return 0;
}

/* ---- regions ------------------------------------------------------------ */

static int pvdma_region_info(struct tp_backend *be, uint32_t index, struct tp_region_desc *out)
{
	struct pvdma *pv = pvdma_of(be);

	memset(out, 0, sizeof(*out));
	out->mmap_fd = -1;
	switch (index) {
	case TP_REGION_BAR0:
		out->size = PVDMA_BAR0_SIZE;
		out->readable = out->writable = 1;
		return 0;
	case 2:
		out->size = PVDMA_BAR2_SIZE;
		out->readable = out->writable = 1;
		out->mmap_fd = pv->ring_fd;
		out->nr_areas = 1;
		out->areas[0] = (struct tp_mmap_area){ 0, PVDMA_BAR2_SIZE };
		return 0;
	case TP_REGION_CONFIG:
		out->size = sizeof(pv->cfg);
		out->readable = out->writable = 1;
		return 0;
	default:
		return index < TP_REGION_COUNT ? 0 : -EINVAL; /* absent */
	}
}

static int pvdma_region_read(struct tp_backend *be, uint32_t index, uint64_t off, void *buf,
			     uint32_t len)
{
	struct pvdma *pv = pvdma_of(be);

	if (index == TP_REGION_BAR0)
		return pvdma_bar0_read(pv, off, buf, len);
	if (index == 2 && tp_range_ok(off, len, PVDMA_BAR2_SIZE)) {
		/* A client that traps the ring instead of mapping it. */
		memcpy(buf, pv->ring + off, len);
		return 0;
	}
	tp_dbg(be->name, "read of region %u at %#" PRIx64 ": nothing there", index, off);
	return -EINVAL;
}

static int pvdma_region_write(struct tp_backend *be, uint32_t index, uint64_t off,
			      const void *buf, uint32_t len)
{
	struct pvdma *pv = pvdma_of(be);

	if (index == TP_REGION_BAR0)
		return pvdma_bar0_write(pv, off, buf, len);
	if (index == 2 && tp_range_ok(off, len, PVDMA_BAR2_SIZE)) {
		memcpy(pv->ring + off, buf, len);
		return 0;
	}
	tp_dbg(be->name, "write of region %u at %#" PRIx64 ": nothing there", index, off);
	return -EINVAL;
}

static int pvdma_irq_count(struct tp_backend *be, uint32_t index, uint32_t *count)
{
	(void)be;
	if (index >= TP_IRQ_INDEX_COUNT)
		return -EINVAL;
	/* MSI-X vector 0: completions. ERR and REQ exist as on any function
	 * (QEMU warns when it cannot set up error recovery); nothing raises them. */
	*count = index == TP_IRQ_MSIX || index == TP_IRQ_ERR || index == TP_IRQ_REQ ? 1 : 0;
	return 0;
}

static int pvdma_reset(struct tp_backend *be)
{
	struct pvdma *pv = pvdma_of(be);

	pvdma_ring_reset(pv);
	pv->cfg[PCI_COMMAND] = 0;
	pv->cfg[PCI_COMMAND + 1] = 0;
	return 0;
}

static void pvdma_free(struct pvdma *pv)
{
	if (pv->pol) {
		/* Nothing this companion mapped outlives it; the managed
		 * device stops telling it about guest memory. */
		pthread_rwlock_wrlock(&pv->dev->dma_lock);
		tp_pv_destroy(pv->pol);
		pv->pol = NULL;
		if (pv->dev->dma_gone_ctx == pv) {
			pv->dev->dma_gone = NULL;
			pv->dev->dma_gone_ctx = NULL;
		}
		pthread_rwlock_unlock(&pv->dev->dma_lock);
	}
	if (pv->ring)
		munmap(pv->ring, PVDMA_BAR2_SIZE);
	if (pv->ring_fd >= 0)
		close(pv->ring_fd);
	free(pv);
}

static void pvdma_destroy(struct tp_backend *be)
{
	if (be)
		pvdma_free(pvdma_of(be));
}

static const struct tp_backend_ops pvdma_ops = {
	.name = "pvdma",
	.config_read = pvdma_config_read,
	.config_write = pvdma_config_write,
	.region_info = pvdma_region_info,
	.region_read = pvdma_region_read,
	.region_write = pvdma_region_write,
	.irq_count = pvdma_irq_count,
	.reset = pvdma_reset,
	.destroy = pvdma_destroy,
};

/* The managed device's Device Serial Number from the guest's view of its
 * extended capabilities (the core keeps DSN emulated); 0 when it has none. */
static uint64_t managed_dsn(const struct tp_device *d)
{
	uint32_t p = PCI_EXT_CAP_START;

	if (d->cfg.size < TP_CFG_MAX)
		return 0;
	for (unsigned n = 0; p >= PCI_EXT_CAP_START && p <= TP_CFG_MAX - 12 && n < 64; n++) {
		uint32_t h = tp_config_virt(&d->cfg, p, 4);

		if ((h & 0xffff) == PCI_EXT_CAP_ID_DSN)
			return tp_config_virt(&d->cfg, p + 4, 4) |
			       (uint64_t)tp_config_virt(&d->cfg, p + 8, 4) << 32;
		p = (h >> 20) & 0xffc;
	}
	return 0;
}

int tp_pvdma_create(struct tp_device *managed, const struct tp_pvdma_opts *o,
		    struct tp_backend **out)
{
	struct pvdma *pv;
	int rc;

	*out = NULL;
	pv = tp_calloc(1, sizeof(*pv));
	if (!pv) {
		tp_err(o->name, "out of memory");
		return -ENOMEM;
	}
	pv->ring_fd = -1;
	pv->be.ops = &pvdma_ops;
	pv->dev = managed;
	pv->o = *o;
	snprintf(pv->be.name, sizeof(pv->be.name), "%s", o->name ? o->name : "pvdma0");
	pv->o.name = pv->be.name;
	pv->o.policy.max_pending = PVDMA_RING_ENTRIES; /* what can be outstanding */
	pv->managed_id = managed->vendor | (uint32_t)managed->device << 16;
	pv->token = managed_dsn(managed);
	pv->ring_fd = memfd_create("pvdma-ring", MFD_CLOEXEC);
	if (pv->ring_fd < 0 || ftruncate(pv->ring_fd, PVDMA_BAR2_SIZE) < 0) {
		rc = -errno;
		tp_err(pv->be.name, "ring memory: %s", strerror(errno));
		goto fail;
	}
	pv->ring = mmap(NULL, PVDMA_BAR2_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, pv->ring_fd, 0);
	if (pv->ring == MAP_FAILED) {
		rc = -errno;
		pv->ring = NULL;
		tp_err(pv->be.name, "ring memory: mmap: %s", strerror(errno));
		goto fail;
	}
	cfg_build(pv);
	pthread_rwlock_wrlock(&managed->dma_lock);
	if (managed->dma_gone) {
		pthread_rwlock_unlock(&managed->dma_lock);
		tp_err(pv->be.name, "%s already has a pvdma companion", managed->name);
		rc = -EBUSY;
		goto fail;
	}
	rc = tp_pv_create(&pv->o.policy, managed->iommu, &managed->dma, pv->be.name, pvdma_done,
			  pv, &pv->pol);
	if (!rc) {
		managed->dma_gone = pvdma_region_gone;
		managed->dma_gone_ctx = pv;
	}
	pthread_rwlock_unlock(&managed->dma_lock);
	if (rc)
		goto fail;
	tp_info(pv->be.name,
		"pvdma companion %04x:%04x for %s (%04x:%04x, token %#" PRIx64 ") on its %s "
		"IOMMU: window %" PRIu64 " KiB, lazy %" PRIu64 " ms / %" PRIu64 " MiB, caps %"
		PRIu64 " MiB / %u mappings", pv->o.vendor, pv->o.device, managed->name,
		managed->vendor, managed->device, pv->token, managed->iommu->ops->name,
		pv->o.policy.window >> 10, pv->o.policy.lazy_ns / 1000000,
		pv->o.policy.lazy_max >> 20, pv->o.policy.max_bytes >> 20,
		pv->o.policy.max_mappings);
	*out = &pv->be;
	return 0;
fail:
	pvdma_free(pv);
	return rc;
}
