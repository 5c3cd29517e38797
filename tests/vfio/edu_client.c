/* SPDX-License-Identifier: MIT */
/*
 * tp-vfio-edu: a vfio-user client that drives QEMU's edu device through a
 * thunderpass server running the vfio backend (tests/guest/t-vfio-edu.sh
 * runs both inside an x86_64 guest where edu is bound to vfio-pci).
 *
 *   tp-vfio-edu SOCKET
 *
 * What it checks, in order: DMA_MAP of its own memory (a memfd) in two
 * regions, and a map in the host IOMMU's reserved MSI window refused; the
 * device info; BAR0 offered for mapping with the vfio device fd, and the
 * same registers read through the mapping and through trapped accesses;
 * config space; MSI through SET_IRQS with an eventfd (edu's interrupt raise
 * register); edu's DMA engine from client memory into edu and back into
 * another region, data compared and the completion interrupt received;
 * after DMA_UNMAP, a DMA from the unmapped address does not reach the memory
 * behind it; INTx through the kernel (masked when it fires, fired again
 * after the client's UNMASK); DEVICE_RESET, and the device and its MSI
 * work after it.
 * Prints "ok ..." or "FAIL ..." per check and a last line
 * "tp-vfio-edu: PASS" or "tp-vfio-edu: FAIL <first failure>"; exit 0 or 1.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "client.h"

#define EDU_ID 0x00
#define EDU_LIVENESS 0x04
#define EDU_IRQ_STATUS 0x24
#define EDU_IRQ_RAISE 0x60
#define EDU_IRQ_ACK 0x64
#define EDU_DMA_SRC 0x80
#define EDU_DMA_DST 0x88
#define EDU_DMA_COUNT 0x90
#define EDU_DMA_CMD 0x98
#define EDU_DMA_RUN 0x1
#define EDU_DMA_TO_RAM 0x2
#define EDU_DMA_IRQ 0x4
#define EDU_DMA_IRQ_STATUS 0x100
#define EDU_BUF 0x40000
#define EDU_BAR_SIZE 0x100000ull

/* edu's default DMA mask is 28 bits: IOVAs below 256 MiB. */
#define IOVA_A 0x1000000ull
#define IOVA_B 0x2000000ull
#define REGION 0x4000ull
#define XFER 4096u
#define IRQ_WAIT_MS 5000

static struct tp_client cl;
static int checks, failures;
static char first_fail[200];

static void report(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void report(bool ok, const char *fmt, ...)
{
	char what[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	checks++;
	printf("%s %s\n", ok ? "ok" : "FAIL", what);
	fflush(stdout);
	if (!ok && !failures++)
		snprintf(first_fail, sizeof(first_fail), "%s", what);
}

static uint32_t rd32(uint64_t off)
{
	uint32_t v = 0xffffffff;
	int rc = tp_client_region_read(&cl, 0, off, &v, 4);

	if (rc)
		report(false, "BAR0 read at %#" PRIx64 ": %s", off, strerror(-rc));
	return v;
}

static void wr32(uint64_t off, uint32_t v)
{
	int rc = tp_client_region_write(&cl, 0, off, &v, 4, false);

	if (rc)
		report(false, "BAR0 write at %#" PRIx64 ": %s", off, strerror(-rc));
}

static int cfg_rw(uint32_t off, void *buf, uint32_t len, bool write)
{
	return write ? tp_client_region_write(&cl, TP_REGION_CONFIG, off, buf, len, false)
		     : tp_client_region_read(&cl, TP_REGION_CONFIG, off, buf, len);
}

static int call(uint16_t cmd, const void *payload, uint32_t len, const int *fds, unsigned nfds,
		void *reply, uint32_t cap)
{
	struct tp_client_reply r = { .data = reply, .cap = cap };
	int rc = tp_client_call(&cl, cmd, payload, len, fds, nfds, &r);

	for (unsigned i = 0; i < r.nfds; i++)
		close(r.fds[i]);
	return rc;
}

static int dma_map(int fd, uint64_t offset, uint64_t iova, uint64_t size)
{
	struct tp_vu_dma_map m = {
		.argsz = sizeof(m),
		.flags = TP_VU_DMA_READ_OK | TP_VU_DMA_WRITE_OK,
		.offset = offset,
		.addr = iova,
		.size = size,
	};

	return call(TP_VU_DMA_MAP, &m, sizeof(m), &fd, 1, NULL, 0);
}

static int dma_unmap(uint64_t iova, uint64_t size)
{
	struct tp_vu_dma_unmap u = { .argsz = sizeof(u), .addr = iova, .size = size };

	return call(TP_VU_DMA_UNMAP, &u, sizeof(u), NULL, 0, NULL, 0);
}

static int set_msi(int efd)
{
	struct tp_vu_irq_set s = { .argsz = sizeof(s), .index = TP_IRQ_MSI, .start = 0 };

	if (efd < 0) {
		s.flags = TP_VU_IRQ_DATA_NONE | TP_VU_IRQ_ACTION_TRIGGER;
		return call(TP_VU_DEVICE_SET_IRQS, &s, sizeof(s), NULL, 0, NULL, 0);
	}
	s.flags = TP_VU_IRQ_DATA_EVENTFD | TP_VU_IRQ_ACTION_TRIGGER;
	s.count = 1;
	return call(TP_VU_DEVICE_SET_IRQS, &s, sizeof(s), &efd, 1, NULL, 0);
}

static int set_intx(int efd, uint32_t action)
{
	struct tp_vu_irq_set s = { .argsz = sizeof(s), .index = TP_IRQ_INTX, .count = 1 };

	if (action != TP_VU_IRQ_ACTION_TRIGGER || efd < 0) {
		s.flags = TP_VU_IRQ_DATA_NONE | action;
		s.count = efd < 0 && action == TP_VU_IRQ_ACTION_TRIGGER ? 0 : 1;
		return call(TP_VU_DEVICE_SET_IRQS, &s, sizeof(s), NULL, 0, NULL, 0);
	}
	s.flags = TP_VU_IRQ_DATA_EVENTFD | TP_VU_IRQ_ACTION_TRIGGER;
	return call(TP_VU_DEVICE_SET_IRQS, &s, sizeof(s), &efd, 1, NULL, 0);
}

/* Waits up to ms for the eventfd; returns its count (0: nothing came). */
static uint64_t wait_irq_ms(int efd, int ms)
{
	struct pollfd p = { .fd = efd, .events = POLLIN };
	uint64_t n = 0;

	if (poll(&p, 1, ms) != 1 || read(efd, &n, sizeof(n)) != sizeof(n))
		return 0;
	return n;
}

static uint64_t wait_irq(int efd)
{
	return wait_irq_ms(efd, IRQ_WAIT_MS);
}

/* No interrupt pending now (a stray one would fool the next wait). */
static bool irq_quiet(int efd)
{
	struct pollfd p = { .fd = efd, .events = POLLIN };

	return poll(&p, 1, 0) == 0;
}

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
	uint32_t x = seed;

	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (uint8_t)x;
	}
}

/* One edu DMA of XFER bytes with the completion interrupt: waits for it,
 * checks edu's status, acknowledges. */
static bool edu_dma(int efd, uint32_t src, uint32_t dst, bool to_ram, const char *what)
{
	uint64_t n;
	uint32_t st;

	wr32(EDU_DMA_SRC, src);
	wr32(EDU_DMA_DST, dst);
	wr32(EDU_DMA_COUNT, XFER);
	wr32(EDU_DMA_CMD, EDU_DMA_RUN | EDU_DMA_IRQ | (to_ram ? EDU_DMA_TO_RAM : 0));
	n = wait_irq(efd);
	report(n == 1, "%s: completion interrupt (MSI eventfd count %" PRIu64 ")", what, n);
	st = rd32(EDU_IRQ_STATUS);
	report(st & EDU_DMA_IRQ_STATUS, "%s: edu interrupt status %#x has the DMA bit", what, st);
	report(!(rd32(EDU_DMA_CMD) & EDU_DMA_RUN), "%s: DMA engine idle", what);
	wr32(EDU_IRQ_ACK, st);
	return n == 1;
}

static volatile uint32_t *map_bar0(void)
{
	struct tp_vu_region_info info;
	uint8_t caps[256];
	struct tp_vu_cap_sparse_mmap sp;
	struct tp_vu_sparse_area area = { 0, 0 };
	void *p;
	int fd = -1, rc;

	memset(caps, 0, sizeof(caps));
	rc = tp_client_region_info(&cl, 0, &info, caps, sizeof(caps), &fd);
	report(!rc, "GET_REGION_INFO BAR0%s%s", rc ? ": " : "", rc ? strerror(-rc) : "");
	if (rc)
		return NULL;
	report(info.size == EDU_BAR_SIZE, "BAR0 size %#llx", (unsigned long long)info.size);
	report((info.flags & (TP_VU_REGION_READ_OK | TP_VU_REGION_WRITE_OK | TP_VU_REGION_MMAP |
			      TP_VU_REGION_CAPS)) == (TP_VU_REGION_READ_OK | TP_VU_REGION_WRITE_OK |
						      TP_VU_REGION_MMAP | TP_VU_REGION_CAPS),
	       "BAR0 flags %#x: read, write, mmap, caps", info.flags);
	report(fd >= 0, "BAR0 comes with an fd (the vfio device fd)");
	memcpy(&sp, caps, sizeof(sp));
	report(sp.hdr.id == TP_VU_CAP_SPARSE_MMAP && sp.nr_areas >= 1 && sp.nr_areas <= 8,
	       "BAR0 sparse-mmap capability, %u area(s)", sp.nr_areas);
	if (fd < 0 || sp.hdr.id != TP_VU_CAP_SPARSE_MMAP || sp.nr_areas < 1 || sp.nr_areas > 8)
		return NULL;
	memcpy(&area, caps + sizeof(sp), sizeof(area));
	report(area.offset == 0 && area.size == EDU_BAR_SIZE,
	       "BAR0 area [%#llx +%#llx] is the whole BAR (edu has no MSI-X table)",
	       (unsigned long long)area.offset, (unsigned long long)area.size);
	if (area.offset || area.size < 0x1000)
		return NULL;
	p = mmap(NULL, area.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)(info.offset + area.offset));
	report(p != MAP_FAILED, "mmap of BAR0 through the fd at offset %#llx%s%s",
	       (unsigned long long)info.offset, p == MAP_FAILED ? ": " : "",
	       p == MAP_FAILED ? strerror(errno) : "");
	close(fd);
	return p == MAP_FAILED ? NULL : p;
}

/*
 * INTx: the kernel masks the line when it fires (automasked); it fires again
 * only after the client's UNMASK, which the server passes to the kernel.
 */
static void check_intx(void)
{
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	uint64_t n;
	int rc;

	rc = set_msi(-1);
	report(!rc, "SET_IRQS MSI off before INTx%s%s", rc ? ": " : "", rc ? strerror(-rc) : "");
	rc = efd < 0 ? -errno : set_intx(efd, TP_VU_IRQ_ACTION_TRIGGER);
	report(!rc, "SET_IRQS INTx with an eventfd%s%s", rc ? ": " : "", rc ? strerror(-rc) : "");
	if (rc)
		goto out;
	wr32(EDU_IRQ_RAISE, 0x2);
	n = wait_irq(efd);
	report(n == 1, "INTx: edu interrupt -> eventfd (count %" PRIu64 ")", n);
	wr32(EDU_IRQ_ACK, 0x2);
	/* Masked by the kernel until we unmask: a new interrupt waits. */
	wr32(EDU_IRQ_RAISE, 0x4);
	n = wait_irq_ms(efd, 300);
	report(n == 0, "INTx: masked after firing, nothing before UNMASK (count %" PRIu64 ")", n);
	rc = set_intx(-1, TP_VU_IRQ_ACTION_UNMASK);
	report(!rc, "SET_IRQS INTx UNMASK%s%s", rc ? ": " : "", rc ? strerror(-rc) : "");
	n = wait_irq(efd);
	report(n == 1, "INTx: the pending interrupt fires after UNMASK (count %" PRIu64 ")", n);
	wr32(EDU_IRQ_ACK, 0x4);
	report(rd32(EDU_IRQ_STATUS) == 0, "INTx: edu interrupt acknowledged");
	rc = set_intx(-1, TP_VU_IRQ_ACTION_UNMASK);
	if (!rc)
		rc = set_intx(-1, TP_VU_IRQ_ACTION_TRIGGER);
	report(!rc, "SET_IRQS INTx off%s%s", rc ? ": " : "", rc ? strerror(-rc) : "");
out:
	if (efd >= 0)
		close(efd);
}

static void check_reset(int efd)
{
	uint16_t cmd = 0;
	uint64_t n;
	int rc = call(TP_VU_DEVICE_RESET, NULL, 0, NULL, 0, NULL, 0);

	report(!rc, "DEVICE_RESET%s%s", rc ? ": " : "", rc ? strerror(-rc) : "");
	/* The kernel restores the saved config space after a reset; turn
	 * decoding on again if it is off, as a driver would. */
	if (!cfg_rw(4, &cmd, 2, false) && (cmd & 0x6) != 0x6) {
		cmd |= 0x6;
		cfg_rw(4, &cmd, 2, true);
	}
	report(rd32(EDU_ID) == 0x010000ed, "edu answers after the reset");
	/* The reset turned interrupts off: the client sets them again. */
	rc = set_msi(efd);
	report(!rc, "SET_IRQS MSI again after the reset");
	wr32(EDU_IRQ_RAISE, 0x8);
	n = wait_irq(efd);
	report(n == 1, "MSI after the reset (eventfd count %" PRIu64 ")", n);
	wr32(EDU_IRQ_ACK, 0x8);
}

int main(int argc, char **argv)
{
	struct tp_vu_device_info info = { .argsz = sizeof(info) };
	struct tp_vu_irq_info ii = { .argsz = sizeof(ii), .index = TP_IRQ_MSI };
	volatile uint32_t *bar;
	uint8_t *mem, *a, *b, want[XFER];
	uint32_t id, v;
	uint16_t cmd;
	uint64_t n;
	int mfd, efd, rc;

	if (argc != 2) {
		fprintf(stderr, "usage: tp-vfio-edu SOCKET\n");
		return 2;
	}
	rc = tp_client_connect(&cl, argv[1], 10000);
	if (!rc)
		rc = tp_client_version(&cl, NULL);
	report(!rc, "connect and VERSION%s%s", rc ? ": " : "", rc ? strerror(-rc) : "");
	if (rc)
		goto out;

	/* Our memory for the device: one memfd, two regions at two IOVAs. */
	mfd = memfd_create("tp-vfio-edu", MFD_CLOEXEC);
	efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (mfd < 0 || efd < 0 || ftruncate(mfd, 3 * REGION) < 0 ||
	    (mem = mmap(NULL, 3 * REGION, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0)) == MAP_FAILED) {
		report(false, "memfd/eventfd: %s", strerror(errno));
		goto out;
	}
	a = mem;
	b = mem + REGION;
	rc = dma_map(mfd, 0, IOVA_A, REGION);
	report(!rc, "DMA_MAP region A at %#llx%s%s", IOVA_A, rc ? ": " : "", rc ? strerror(-rc) : "");
	rc = dma_map(mfd, REGION, IOVA_B, REGION);
	report(!rc, "DMA_MAP region B at %#llx (fd offset %#llx)%s%s", IOVA_B, REGION,
	       rc ? ": " : "", rc ? strerror(-rc) : "");
	rc = dma_map(mfd, 2 * REGION, 0xfee00000ull, 0x1000);
	report(rc == -EINVAL, "DMA_MAP in the host's MSI window refused (%s)",
	       rc ? strerror(-rc) : "accepted");

	rc = call(TP_VU_DEVICE_GET_INFO, &info, sizeof(info), NULL, 0, &info, sizeof(info));
	report(!rc && (info.flags & TP_VU_DEV_PCI) && info.num_regions >= 9 && info.num_irqs >= 5,
	       "GET_INFO: flags %#x, %u regions, %u irq indexes", info.flags, info.num_regions,
	       info.num_irqs);

	/* Config space through the vfio config region, decoding and bus master on. */
	id = 0;
	rc = cfg_rw(0, &id, 4, false);
	report(!rc && id == 0x11e81234, "config: vendor:device %#010x", id);
	rc = cfg_rw(4, &cmd, 2, false);
	cmd |= 0x6; /* memory decoding, bus master */
	if (!rc)
		rc = cfg_rw(4, &cmd, 2, true);
	if (!rc)
		rc = cfg_rw(4, &cmd, 2, false);
	report(!rc && (cmd & 0x6) == 0x6, "config: memory decoding and bus master on (%#x)", cmd);

	/* BAR0: mapped and trapped views of the same registers. */
	bar = map_bar0();
	id = rd32(EDU_ID);
	report(id == 0x010000ed, "edu identification %#010x (trapped read)", id);
	if (bar) {
		report(bar[EDU_ID / 4] == id, "edu identification through the mapping");
		bar[EDU_LIVENESS / 4] = 0x12345678;
		v = bar[EDU_LIVENESS / 4];
		report(v == ~0x12345678u, "liveness through the mapping: %#x", v);
	}
	wr32(EDU_LIVENESS, 0xcafef00d);
	v = rd32(EDU_LIVENESS);
	report(v == ~0xcafef00du, "liveness through trapped accesses: %#x", v);
	rc = tp_client_region_read(&cl, 0, EDU_BAR_SIZE - 2, &v, 4);
	report(rc == -EINVAL, "read past the end of BAR0 refused (%s)", rc ? strerror(-rc) : "accepted");

	/* MSI: the client's eventfd goes to the kernel through SET_IRQS. */
	rc = call(TP_VU_DEVICE_GET_IRQ_INFO, &ii, sizeof(ii), NULL, 0, &ii, sizeof(ii));
	report(!rc && ii.count == 1 && (ii.flags & TP_VU_IRQ_INFO_EVENTFD),
	       "GET_IRQ_INFO MSI: %u vector(s), flags %#x", ii.count, ii.flags);
	rc = set_msi(efd);
	report(!rc, "SET_IRQS MSI with an eventfd%s%s", rc ? ": " : "", rc ? strerror(-rc) : "");
	report(irq_quiet(efd), "no interrupt before one is raised");
	wr32(EDU_IRQ_RAISE, 0x1);
	n = wait_irq(efd);
	report(n == 1, "edu interrupt raise register -> MSI -> eventfd (count %" PRIu64 ")", n);
	wr32(EDU_IRQ_ACK, 0x1);
	report(rd32(EDU_IRQ_STATUS) == 0, "edu interrupt acknowledged");

	/* DMA: client memory A -> edu -> client memory B. */
	fill(a, XFER, 0x1234567);
	memcpy(want, a, XFER);
	memset(b, 0, REGION);
	edu_dma(efd, (uint32_t)IOVA_A, EDU_BUF, false, "DMA A -> edu");
	edu_dma(efd, EDU_BUF, (uint32_t)IOVA_B, true, "DMA edu -> B");
	report(!memcmp(b, want, XFER), "DMA round trip: region B holds region A's %u bytes", XFER);

	/* After DMA_UNMAP the device must not reach A's memory any more. */
	rc = dma_unmap(IOVA_A, REGION);
	report(!rc, "DMA_UNMAP region A%s%s", rc ? ": " : "", rc ? strerror(-rc) : "");
	fill(a, XFER, 0x7654321);
	memcpy(want, a, XFER);
	edu_dma(efd, (uint32_t)IOVA_A, EDU_BUF, false, "DMA from unmapped A -> edu");
	edu_dma(efd, EDU_BUF, (uint32_t)(IOVA_B + XFER), true, "DMA edu -> B+4K");
	report(memcmp(b + XFER, want, XFER) != 0,
	       "the unmapped memory did not reach the device (the IOMMU blocked it)");

	check_intx();
	check_reset(efd);
	rc = set_msi(-1);
	report(!rc, "SET_IRQS MSI off%s%s", rc ? ": " : "", rc ? strerror(-rc) : "");
	rc = dma_unmap(IOVA_B, REGION);
	report(!rc, "DMA_UNMAP region B%s%s", rc ? ": " : "", rc ? strerror(-rc) : "");
out:
	tp_client_close(&cl);
	if (failures)
		printf("tp-vfio-edu: FAIL %s (%d of %d checks failed)\n", first_fail, failures, checks);
	else
		printf("tp-vfio-edu: PASS (%d checks)\n", checks);
	return failures ? 1 : 0;
}
