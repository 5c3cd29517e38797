/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <string.h>

#include <thunderpass/log.h>

#include "pci_regs.h"
#include "util.h"

void tp_config_set(struct tp_config *c, uint32_t off, unsigned len, uint32_t emu,
		   uint32_t wmask, uint32_t w1c, uint32_t ptw)
{
	if (!tp_range_ok(off, len, c->size) || len > 4)
		return;
	tp_le_put(c->emu + off, len, emu);
	tp_le_put(c->wmask + off, len, wmask & emu);
	tp_le_put(c->w1c + off, len, w1c & emu);
	tp_le_put(c->ptw + off, len, ptw & ~emu);
}

uint32_t tp_config_virt(const struct tp_config *c, uint32_t off, unsigned len)
{
	if (!tp_range_ok(off, len, c->size) || len > 4)
		return 0;
	return tp_le_get(c->virt + off, len);
}

/*
 * Reads [off, off + len) of the function in naturally aligned pieces of at
 * most four bytes, as config cycles are: backends need nothing else.
 */
static int live_io(struct tp_config *c, uint32_t off, uint8_t *buf, uint32_t len, bool write)
{
	while (len) {
		uint32_t n = 4 - (off & 3);
		int rc;

		if (n > len)
			n = len;
		if (n == 3 || (n == 2 && (off & 1)))
			n = 1;
		rc = write ? c->be->ops->config_write(c->be, off, buf, n)
			   : c->be->ops->config_read(c->be, off, buf, n);
		if (rc < 0)
			return rc;
		off += n;
		buf += n;
		len -= n;
	}
	return 0;
}

static void header_policy(struct tp_config *c)
{
	/* Identity, class, header type, BIST, CardBus CIS, subsystem: read-only. */
	tp_config_set(c, PCI_VENDOR_ID, 4, ~0u, 0, 0, 0);
	tp_config_set(c, PCI_COMMAND, 2, 0, 0, 0,
		      PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER |
			      PCI_COMMAND_PARITY | PCI_COMMAND_SERR | PCI_COMMAND_INTX_DISABLE);
	/* Status: live, except the capability-list bit of the rebuilt chain. */
	tp_config_set(c, PCI_STATUS, 2, PCI_STATUS_CAP_LIST, 0, 0, 0);
	tp_config_set(c, PCI_REVISION_ID, 4, ~0u, 0, 0, 0);
	tp_config_set(c, PCI_CACHE_LINE_SIZE, 2, 0xffff, 0xffff, 0, 0);
	tp_config_set(c, PCI_HEADER_TYPE, 2, 0xffff, 0, 0, 0);
	c->virt[PCI_BIST] = 0;
	tp_config_set(c, PCI_CARDBUS_CIS, 4, ~0u, 0, 0, 0);
	tp_config_set(c, PCI_SUBSYSTEM_VENDOR_ID, 4, ~0u, 0, 0, 0);
	tp_config_set(c, PCI_CAPABILITY_LIST, 4, ~0u, 0, 0, 0);
	tp_config_set(c, 0x38, 4, ~0u, 0, 0, 0);
	memset(c->virt + 0x35, 0, 7);
	/* Interrupt line belongs to the guest; the pin is the function's. */
	tp_config_set(c, PCI_INTERRUPT_LINE, 1, 0xff, 0xff, 0, 0);
	tp_config_set(c, PCI_INTERRUPT_PIN, 3, 0xffffff, 0, 0, 0);
	c->virt[PCI_INTERRUPT_LINE] = 0;
}

static int bar_policy(struct tp_config *c, unsigned i, const uint64_t *region_size)
{
	uint32_t off = PCI_BASE_ADDRESS_0 + 4 * i;
	uint32_t raw = tp_le_get(c->phys + off, 4);
	uint64_t size = region_size[i];
	uint64_t mask;

	tp_config_set(c, off, 4, ~0u, 0, 0, 0);
	tp_le_put(c->virt + off, 4, 0);
	if (!size)
		return 0;
	if (!tp_is_pow2(size)) {
		tp_err(c->who, "BAR%u: size %#llx is not a power of two", i,
		       (unsigned long long)size);
		return -EINVAL;
	}
	c->bar_size[i] = size;
	if (raw & PCI_BAR_IO) {
		c->bar_is_io[i] = true;
		size = TP_MAX(size, 4);
		tp_config_set(c, off, 4, ~0u, (uint32_t)~(size - 1) & ~3u, 0, 0);
		tp_le_put(c->virt + off, 4, PCI_BAR_IO);
		return 0;
	}
	size = TP_MAX(size, 16);
	mask = ~(size - 1);
	c->bar_prefetch[i] = raw & PCI_BAR_MEM_PREFETCH;
	if ((raw & PCI_BAR_MEM_TYPE_MASK) == PCI_BAR_MEM_TYPE_64) {
		if (i == TP_NUM_BARS - 1 || region_size[i + 1]) {
			tp_err(c->who, "BAR%u is 64-bit but BAR%u is not free for its upper half",
			       i, i + 1);
			return -EINVAL;
		}
		c->bar_is_64[i] = true;
		tp_config_set(c, off + 4, 4, ~0u, (uint32_t)(mask >> 32), 0, 0);
		tp_le_put(c->virt + off + 4, 4, 0);
	} else if (size > 0x80000000ull) {
		tp_err(c->who, "BAR%u: a 32-bit BAR cannot hold %#llx bytes", i,
		       (unsigned long long)size);
		return -EINVAL;
	}
	tp_config_set(c, off, 4, ~0u, (uint32_t)mask & ~0xfu, 0, 0);
	tp_le_put(c->virt + off, 4, raw & 0xfu);
	return 0;
}

static int bars_policy(struct tp_config *c, const uint64_t *region_size)
{
	for (unsigned i = 0; i < TP_NUM_BARS; i++) {
		int rc = bar_policy(c, i, region_size);

		if (rc)
			return rc;
		if (c->bar_is_64[i])
			i++; /* the upper half was set up with it */
	}
	tp_config_set(c, PCI_ROM_ADDRESS, 4, ~0u, 0, 0, 0);
	tp_le_put(c->virt + PCI_ROM_ADDRESS, 4, 0);
	if (region_size[TP_NUM_BARS]) {
		uint64_t size = TP_MAX(region_size[TP_NUM_BARS], 2048);

		if (!tp_is_pow2(size) || size > 0x80000000ull) {
			tp_err(c->who, "ROM: size %#llx is not a power of two under 2 GiB",
			       (unsigned long long)size);
			return -EINVAL;
		}
		c->bar_size[TP_NUM_BARS] = size;
		tp_config_set(c, PCI_ROM_ADDRESS, 4, ~0u,
			      ((uint32_t)~(size - 1) & 0xfffff800u) | PCI_ROM_ENABLE, 0, 0);
	}
	return 0;
}

int tp_config_init(struct tp_config *c, struct tp_backend *be, const char *who,
		   uint32_t cfg_size, const uint64_t region_size[TP_NUM_BARS + 1])
{
	int rc;

	memset(c, 0, sizeof(*c));
	c->who = who;
	c->be = be;
	if (cfg_size != TP_CFG_STD && cfg_size != TP_CFG_MAX) {
		tp_err(who, "config space of %u bytes: only 256 and 4096 are supported", cfg_size);
		return -EINVAL;
	}
	c->size = cfg_size;
	rc = live_io(c, 0, c->phys, cfg_size, false);
	if (rc) {
		tp_err(who, "cannot read config space: %s", strerror(-rc));
		return rc;
	}
	if (tp_le_get(c->phys, 2) == 0xffff) {
		tp_err(who, "config space reads all-ones: the device is not responding "
			    "(fell off the bus, or not powered)");
		return -ENODEV;
	}
	if ((c->phys[PCI_HEADER_TYPE] & 0x7f) != 0) {
		tp_err(who, "header type %#x: only endpoints (type 0) can be passed through",
		       c->phys[PCI_HEADER_TYPE] & 0x7f);
		return -ENOTSUP;
	}
	memcpy(c->virt, c->phys, cfg_size);
	header_policy(c);
	rc = bars_policy(c, region_size);
	if (rc)
		return rc;
	rc = tp_capchain_build(c);
	if (rc)
		return rc;
	memcpy(c->reset_virt, c->virt, cfg_size);
	return 0;
}

int tp_config_reset(struct tp_config *c)
{
	memcpy(c->virt, c->reset_virt, c->size);
	return 0;
}

int tp_config_read(struct tp_config *c, uint32_t off, void *buf, uint32_t len)
{
	uint8_t live[TP_CFG_MAX];
	uint8_t *out = buf;
	uint32_t first = len, last = 0;
	int rc;

	if (!len || !tp_range_ok(off, len, c->size))
		return -EINVAL;
	/* Only the span that has live bits is read from the function. */
	for (uint32_t i = 0; i < len; i++) {
		if (c->emu[off + i] != 0xff) {
			if (first == len)
				first = i;
			last = i;
		}
	}
	if (first < len) {
		rc = live_io(c, off + first, live + first, last - first + 1, false);
		if (rc)
			return rc;
	}
	for (uint32_t i = 0; i < len; i++) {
		uint8_t e = c->emu[off + i];
		uint8_t v = c->virt[off + i] & e;

		if (e != 0xff)
			v |= live[i] & (uint8_t)~e;
		out[i] = v;
	}
	return 0;
}

/* Forwards the pass-through bits of one naturally aligned piece. */
static int write_through(struct tp_config *c, uint32_t off, const uint8_t *val, uint32_t n)
{
	uint8_t cur[4], next[4];
	uint32_t lo = n, hi = 0;
	int rc;

	for (uint32_t i = 0; i < n; i++) {
		if (c->ptw[off + i]) {
			if (lo == n)
				lo = i;
			hi = i;
		}
	}
	if (lo == n)
		return 0;
	/* Touch only the bytes that have pass-through bits (live_io splits the
	 * span into aligned pieces): writing back other live bytes could clear
	 * RW1C bits the guest never meant to touch. */
	rc = live_io(c, off + lo, cur, hi - lo + 1, false);
	if (rc)
		return rc;
	for (uint32_t i = lo; i <= hi; i++) {
		uint8_t m = c->ptw[off + i];

		next[i - lo] = (uint8_t)((cur[i - lo] & ~m) | (val[i] & m));
	}
	return live_io(c, off + lo, next, hi - lo + 1, true);
}

int tp_config_write(struct tp_config *c, uint32_t off, const void *buf, uint32_t len)
{
	const uint8_t *in = buf;
	int rc;

	if (!len || !tp_range_ok(off, len, c->size))
		return -EINVAL;
	for (uint32_t i = 0; i < len; i++) {
		uint32_t o = off + i;
		uint8_t e = c->emu[o], wm = c->wmask[o], wc = c->w1c[o];
		uint8_t v = c->virt[o];

		/* Bits the guest tried to change but may not: counted, dropped. */
		if (((in[i] ^ v) & e & (uint8_t)~(wm | wc)) || (in[i] & ~e & ~c->ptw[o]))
			c->filtered_writes++;
		v = (uint8_t)((v & ~wm) | (in[i] & wm));
		v &= (uint8_t)~(in[i] & wc);
		c->virt[o] = v;
	}
	/* Pass-through bits go to the function in naturally aligned pieces. */
	for (uint32_t done = 0; done < len;) {
		uint32_t o = off + done, n = 4 - (o & 3);

		if (n > len - done)
			n = len - done;
		if (n == 3 || (n == 2 && (o & 1)))
			n = 1;
		rc = write_through(c, o, in + done, n);
		if (rc)
			return rc;
		done += n;
	}
	return 0;
}

bool tp_config_msi_enabled(const struct tp_config *c)
{
	return c->cap_msi &&
	       (tp_config_virt(c, c->cap_msi + PCI_MSI_FLAGS, 2) & PCI_MSI_FLAGS_ENABLE);
}

bool tp_config_msix_enabled(const struct tp_config *c)
{
	return c->cap_msix &&
	       (tp_config_virt(c, c->cap_msix + PCI_MSIX_FLAGS, 2) & PCI_MSIX_FLAGS_ENABLE);
}
