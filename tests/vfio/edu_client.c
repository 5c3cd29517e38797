/* SPDX-License-Identifier: MIT */
/*
 * tp-vfio-edu: a vfio-user client that drives QEMU's edu device through a
 * thunderpass server running the vfio backend (tests/guest/t-vfio.sh
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
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vutest.h"

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

static uint32_t rd32(uint64_t off)
{
	return vt_rd32(0, off);
}

static void wr32(uint64_t off, uint32_t v)
{
	vt_wr32(0, off, v);
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
static void edu_dma(int efd, uint32_t src, uint32_t dst, bool to_ram, const char *what)
{
	uint64_t n;
	uint32_t st;

	wr32(EDU_DMA_SRC, src);
	wr32(EDU_DMA_DST, dst);
	wr32(EDU_DMA_COUNT, XFER);
	wr32(EDU_DMA_CMD, EDU_DMA_RUN | EDU_DMA_IRQ | (to_ram ? EDU_DMA_TO_RAM : 0));
	n = vt_wait_irq(efd, IRQ_WAIT_MS);
	vt_report(n == 1, "%s: completion interrupt (MSI eventfd count %" PRIu64 ")", what, n);
	st = rd32(EDU_IRQ_STATUS);
	vt_report(st & EDU_DMA_IRQ_STATUS, "%s: edu interrupt status %#x has the DMA bit", what,
		  st);
	vt_report(!(rd32(EDU_DMA_CMD) & EDU_DMA_RUN), "%s: DMA engine idle", what);
	wr32(EDU_IRQ_ACK, st);
}

#define ALL_FLAGS \
	(TP_VU_REGION_READ_OK | TP_VU_REGION_WRITE_OK | TP_VU_REGION_MMAP | TP_VU_REGION_CAPS)

static volatile uint32_t *map_bar0(void)
{
	struct tp_vu_region_info info;
	struct tp_vu_sparse_area area[8];
	void *p;
	int fd = -1, n;

	n = vt_region_areas(0, &info, area, 8, &fd);
	vt_report(n >= 0, "GET_REGION_INFO BAR0%s%s", n < 0 ? ": " : "", n < 0 ? strerror(-n) : "");
	if (n < 0)
		return NULL;
	vt_report(info.size == EDU_BAR_SIZE, "BAR0 size %#llx", (unsigned long long)info.size);
	vt_report((info.flags & ALL_FLAGS) == ALL_FLAGS, "BAR0 flags %#x: read, write, mmap, caps",
		  info.flags);
	vt_report(fd >= 0, "BAR0 comes with an fd (the vfio device fd)");
	vt_report(n == 1 && area[0].offset == 0 && area[0].size == EDU_BAR_SIZE,
		  "BAR0: one sparse-mmap area, the whole BAR (edu has no MSI-X table)");
	if (fd < 0 || n != 1 || area[0].size < 0x1000) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	p = mmap(NULL, area[0].size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		 (off_t)(info.offset + area[0].offset));
	vt_report(p != MAP_FAILED, "mmap of BAR0 through the fd at offset %#llx%s%s",
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

	vt_report_rc(vt_set_irq(TP_IRQ_MSI, 0, -1), "SET_IRQS MSI off before INTx");
	rc = efd < 0 ? -errno : vt_set_irq(TP_IRQ_INTX, 0, efd);
	vt_report_rc(rc, "SET_IRQS INTx with an eventfd");
	if (rc)
		goto out;
	wr32(EDU_IRQ_RAISE, 0x2);
	n = vt_wait_irq(efd, IRQ_WAIT_MS);
	vt_report(n == 1, "INTx: edu interrupt -> eventfd (count %" PRIu64 ")", n);
	wr32(EDU_IRQ_ACK, 0x2);
	/* Masked by the kernel until we unmask: a new interrupt waits. */
	wr32(EDU_IRQ_RAISE, 0x4);
	n = vt_wait_irq(efd, 300);
	vt_report(n == 0, "INTx: masked after firing, nothing before UNMASK (count %" PRIu64 ")",
		  n);
	vt_report_rc(vt_irq_action(TP_IRQ_INTX, 0, TP_VU_IRQ_ACTION_UNMASK),
		     "SET_IRQS INTx UNMASK");
	n = vt_wait_irq(efd, IRQ_WAIT_MS);
	vt_report(n == 1, "INTx: the pending interrupt fires after UNMASK (count %" PRIu64 ")", n);
	wr32(EDU_IRQ_ACK, 0x4);
	vt_report(rd32(EDU_IRQ_STATUS) == 0, "INTx: edu interrupt acknowledged");
	rc = vt_irq_action(TP_IRQ_INTX, 0, TP_VU_IRQ_ACTION_UNMASK);
	if (!rc)
		rc = vt_set_irq(TP_IRQ_INTX, 0, -1);
	vt_report_rc(rc, "SET_IRQS INTx off");
out:
	if (efd >= 0)
		close(efd);
}

static void check_reset(int efd)
{
	uint64_t n;

	vt_report_rc(vt_call(TP_VU_DEVICE_RESET, NULL, 0, NULL, 0, NULL, 0), "DEVICE_RESET");
	/* A driver enables the device again after a reset. */
	vt_enable_device();
	vt_report(rd32(EDU_ID) == 0x010000ed, "edu answers after the reset");
	/* The reset turned interrupts off: the client sets them again. */
	vt_report_rc(vt_set_irq(TP_IRQ_MSI, 0, efd), "SET_IRQS MSI again after the reset");
	wr32(EDU_IRQ_RAISE, 0x8);
	n = vt_wait_irq(efd, IRQ_WAIT_MS);
	vt_report(n == 1, "MSI after the reset (eventfd count %" PRIu64 ")", n);
	wr32(EDU_IRQ_ACK, 0x8);
}

int main(int argc, char **argv)
{
	struct tp_vu_device_info info = { .argsz = sizeof(info) };
	struct tp_vu_irq_info ii = { .argsz = sizeof(ii), .index = TP_IRQ_MSI };
	volatile uint32_t *bar;
	uint8_t *mem, *a, *b, want[XFER];
	uint32_t id, v;
	uint64_t n;
	int mfd, efd, rc;

	if (argc != 2) {
		fprintf(stderr, "usage: tp-vfio-edu SOCKET\n");
		return 2;
	}
	if (vt_connect(argv[1]))
		return vt_finish("tp-vfio-edu");

	/* Our memory for the device: one memfd, two regions at two IOVAs. */
	mfd = memfd_create("tp-vfio-edu", MFD_CLOEXEC);
	efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	mem = MAP_FAILED;
	if (mfd >= 0 && efd >= 0 && ftruncate(mfd, 3 * REGION) == 0)
		mem = mmap(NULL, 3 * REGION, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (mem == MAP_FAILED) {
		vt_report(false, "memfd/eventfd: %s", strerror(errno));
		return vt_finish("tp-vfio-edu");
	}
	a = mem;
	b = mem + REGION;
	vt_report_rc(vt_dma_map(mfd, 0, IOVA_A, REGION), "DMA_MAP region A at 0x1000000");
	vt_report_rc(vt_dma_map(mfd, REGION, IOVA_B, REGION),
		     "DMA_MAP region B at 0x2000000 (fd offset 0x4000)");
	rc = vt_dma_map(mfd, 2 * REGION, 0xfee00000ull, 0x1000);
	vt_report(rc == -EINVAL, "DMA_MAP in the host's MSI window refused (%s)",
		  rc ? strerror(-rc) : "accepted");

	rc = vt_call(TP_VU_DEVICE_GET_INFO, &info, sizeof(info), NULL, 0, &info, sizeof(info));
	vt_report(!rc && (info.flags & TP_VU_DEV_PCI) && info.num_regions >= 9 &&
		  info.num_irqs >= 5, "GET_INFO: flags %#x, %u regions, %u irq indexes",
		  info.flags, info.num_regions, info.num_irqs);

	/* Config space through the vfio config region, decoding and bus master on. */
	id = 0;
	rc = vt_cfg(0, &id, 4, false);
	vt_report(!rc && id == 0x11e81234, "config: vendor:device %#010x", id);
	vt_enable_device();

	/* BAR0: mapped and trapped views of the same registers. */
	bar = map_bar0();
	id = rd32(EDU_ID);
	vt_report(id == 0x010000ed, "edu identification %#010x (trapped read)", id);
	if (bar) {
		vt_report(bar[EDU_ID / 4] == id, "edu identification through the mapping");
		bar[EDU_LIVENESS / 4] = 0x12345678;
		v = bar[EDU_LIVENESS / 4];
		vt_report(v == ~0x12345678u, "liveness through the mapping: %#x", v);
	}
	wr32(EDU_LIVENESS, 0xcafef00d);
	v = rd32(EDU_LIVENESS);
	vt_report(v == ~0xcafef00du, "liveness through trapped accesses: %#x", v);
	rc = tp_client_region_read(&vt_cl, 0, EDU_BAR_SIZE - 2, &v, 4);
	vt_report(rc == -EINVAL, "read past the end of BAR0 refused (%s)",
		  rc ? strerror(-rc) : "accepted");

	/* MSI: the client's eventfd goes to the kernel through SET_IRQS. */
	rc = vt_call(TP_VU_DEVICE_GET_IRQ_INFO, &ii, sizeof(ii), NULL, 0, &ii, sizeof(ii));
	vt_report(!rc && ii.count == 1 && (ii.flags & TP_VU_IRQ_INFO_EVENTFD),
		  "GET_IRQ_INFO MSI: %u vector(s), flags %#x", ii.count, ii.flags);
	vt_report_rc(vt_set_irq(TP_IRQ_MSI, 0, efd), "SET_IRQS MSI with an eventfd");
	vt_report(vt_irq_quiet(efd), "no interrupt before one is raised");
	wr32(EDU_IRQ_RAISE, 0x1);
	n = vt_wait_irq(efd, IRQ_WAIT_MS);
	vt_report(n == 1, "edu interrupt raise register -> MSI -> eventfd (count %" PRIu64 ")", n);
	wr32(EDU_IRQ_ACK, 0x1);
	vt_report(rd32(EDU_IRQ_STATUS) == 0, "edu interrupt acknowledged");

	/* DMA: client memory A -> edu -> client memory B. */
	fill(a, XFER, 0x1234567);
	memcpy(want, a, XFER);
	memset(b, 0, REGION);
	edu_dma(efd, (uint32_t)IOVA_A, EDU_BUF, false, "DMA A -> edu");
	edu_dma(efd, EDU_BUF, (uint32_t)IOVA_B, true, "DMA edu -> B");
	vt_report(!memcmp(b, want, XFER), "DMA round trip: region B holds region A's %u bytes",
		  XFER);

	/* After DMA_UNMAP the device must not reach A's memory any more. */
	vt_report_rc(vt_dma_unmap(IOVA_A, REGION), "DMA_UNMAP region A");
	fill(a, XFER, 0x7654321);
	memcpy(want, a, XFER);
	edu_dma(efd, (uint32_t)IOVA_A, EDU_BUF, false, "DMA from unmapped A -> edu");
	edu_dma(efd, EDU_BUF, (uint32_t)(IOVA_B + XFER), true, "DMA edu -> B+4K");
	vt_report(memcmp(b + XFER, want, XFER) != 0,
		  "the unmapped memory did not reach the device (the IOMMU blocked it)");

	check_intx();
	check_reset(efd);
	vt_report_rc(vt_set_irq(TP_IRQ_MSI, 0, -1), "SET_IRQS MSI off");
	vt_report_rc(vt_dma_unmap(IOVA_B, REGION), "DMA_UNMAP region B");
	return vt_finish("tp-vfio-edu");
}
