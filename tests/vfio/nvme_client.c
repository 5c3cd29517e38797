/* SPDX-License-Identifier: MIT */
/*
 * tp-vfio-nvme: a vfio-user client that brings up QEMU's NVMe controller
 * through a thunderpass server running the vfio backend, as a minimal driver
 * would (tests/guest/t-vfio.sh runs both inside an x86_64 guest where the
 * controller is bound to vfio-pci; docs/vfio.md).
 *
 *   tp-vfio-nvme SOCKET
 *
 * It checks what edu cannot show: a BAR with an MSI-X table and PBA in it
 * is offered for mapping without their pages (the client owns the table;
 * the PBA is read through the server); MSI-X vectors handed to the kernel
 * one at a time (the second one re-enables the set: Linux 6.1 cannot grow
 * it in place); and a real command flow over DMA: the admin queues in client
 * memory, Identify Controller with its completion on vector 0, an I/O
 * queue pair whose completions go to vector 1, a read whose data the device
 * writes into client memory; then DEVICE_RESET (an FLR).
 * Prints "ok ..." / "FAIL ..." per check and "tp-vfio-nvme: PASS|FAIL ...".
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "vutest.h"

#define NVME_CAP 0x00
#define NVME_VS 0x08
#define NVME_CC 0x14
#define NVME_CSTS 0x1c
#define NVME_AQA 0x24
#define NVME_ASQ 0x28
#define NVME_ACQ 0x30
#define NVME_DB 0x1000
#define CC_ENABLE 0x00460001u /* IOCQES 16 B, IOSQES 64 B, 4 KiB pages, NVM, EN */
#define QDEPTH 16

/* Client memory, one memfd at one IOVA. */
#define IOVA 0x40000000ull
#define MEM_SIZE 0x10000ull
#define ASQ_OFF 0x0000
#define ACQ_OFF 0x1000
#define IDENT_OFF 0x2000
#define IOCQ_OFF 0x3000
#define IOSQ_OFF 0x4000
#define DATA_OFF 0x5000
#define IRQ_WAIT_MS 5000

struct sqe {
	uint32_t cdw0, nsid, rsvd[2];
	uint64_t mptr, prp1, prp2;
	uint32_t cdw10, cdw11, cdw12, cdw13, cdw14, cdw15;
};

struct cqe {
	uint32_t dw0, dw1;
	uint16_t sqhd, sqid, cid, status; /* status bit 0: phase */
};

static uint8_t *mem;
static uint32_t dstrd;
static uint16_t next_cid = 1;

static uint32_t rd32(uint64_t off)
{
	return vt_rd32(0, off);
}

static void wr32(uint64_t off, uint32_t v)
{
	vt_wr32(0, off, v);
}

static bool wait_csts(uint32_t rdy)
{
	for (int i = 0; i < 500; i++) {
		uint32_t csts = rd32(NVME_CSTS);

		if (csts != 0xffffffff && (csts & 1) == rdy)
			return true;
		nanosleep(&(struct timespec){ .tv_nsec = 10000000 }, NULL);
	}
	return false;
}

static void doorbell(uint32_t qid, bool cq, uint32_t value)
{
	wr32(NVME_DB + (2 * qid + (cq ? 1 : 0)) * (4u << dstrd), value);
}

/*
 * Submits cmd at slot *tail of the queue at sq_off (queue qid), waits for
 * the interrupt on efd, checks the completion at slot *head of the queue at
 * cq_off (phase 1: the first pass over the ring), rings the CQ head.
 */
static bool submit(uint32_t qid, uint32_t sq_off, uint32_t cq_off, uint32_t *tail,
		   uint32_t *head, struct sqe *cmd, int efd, const char *what)
{
	struct cqe c;
	uint16_t cid = next_cid++;
	uint64_t n;

	cmd->cdw0 |= (uint32_t)cid << 16;
	memcpy(mem + sq_off + *tail * sizeof(*cmd), cmd, sizeof(*cmd));
	*tail = (*tail + 1) % QDEPTH;
	doorbell(qid, false, *tail);
	n = vt_wait_irq(efd, IRQ_WAIT_MS);
	vt_report(n >= 1, "%s: completion interrupt (eventfd count %" PRIu64 ")", what, n);
	memcpy(&c, mem + cq_off + *head * sizeof(c), sizeof(c));
	vt_report((c.status & 1) && !(c.status >> 1) && c.cid == cid,
		  "%s: completion cid %u, phase %u, status %#x", what, c.cid, c.status & 1,
		  c.status >> 1);
	*head = (*head + 1) % QDEPTH;
	doorbell(qid, true, *head);
	return n >= 1 && (c.status & 1) && !(c.status >> 1);
}

/* The MSI-X capability: table and PBA offsets with their BARs (BIR). */
static bool find_msix(uint32_t *table, uint32_t *pba, uint32_t *qsize)
{
	uint8_t ptr = 0, id = 0, next;

	vt_cfg(0x34, &ptr, 1, false);
	for (int hops = 0; ptr >= 0x40 && hops < 48; hops++) {
		vt_cfg(ptr, &id, 1, false);
		if (id == 0x11) {
			uint16_t flags = 0;

			vt_cfg(ptr + 2, &flags, 2, false);
			vt_cfg(ptr + 4, table, 4, false);
			vt_cfg(ptr + 8, pba, 4, false);
			*qsize = (flags & 0x7ffu) + 1;
			return true;
		}
		next = 0;
		vt_cfg(ptr + 1, &next, 1, false);
		ptr = next & 0xfc;
	}
	return false;
}

static void check_bar0_areas(void)
{
	struct tp_vu_region_info info;
	struct tp_vu_sparse_area a[8];
	uint32_t table = 0, pba = 0, qsize = 0;
	uint64_t t0, t1, p0, p1;
	bool clear = true, found;
	int fd = -1, n;

	found = find_msix(&table, &pba, &qsize);
	vt_report(found, "config: MSI-X capability, %u vectors, table BAR%u+%#x, PBA BAR%u+%#x",
		  qsize, table & 7, table & ~7u, pba & 7, pba & ~7u);
	n = vt_region_areas(0, &info, a, 8, &fd);
	vt_report(n > 0 && fd >= 0, "BAR0 (%#llx bytes) offered for mapping: %d area(s)",
		  (unsigned long long)info.size, n);
	if (fd >= 0)
		close(fd);
	t0 = (table & ~7u) & ~0xfffull;
	t1 = ((table & ~7u) + qsize * 16ull + 0xfff) & ~0xfffull;
	p0 = (pba & ~7u) & ~0xfffull;
	p1 = ((pba & ~7u) + (qsize + 63) / 64 * 8ull + 0xfff) & ~0xfffull;
	for (int i = 0; i < n; i++) {
		uint64_t s = a[i].offset, e = s + a[i].size;

		printf("  BAR0 area [%#llx +%#llx]\n", (unsigned long long)s,
		       (unsigned long long)a[i].size);
		if ((table & 7) == 0 && s < t1 && e > t0)
			clear = false;
		if ((pba & 7) == 0 && s < p1 && e > p0)
			clear = false;
	}
	vt_report(n > 0 && clear, "the MSI-X table and PBA pages are not in any mapped area");
	if ((pba & 7) == 0) {
		uint32_t v = 0;
		int rc = tp_client_region_read(&vt_cl, 0, pba & ~7u, &v, 4);

		vt_report(!rc, "PBA read through the server (%#x)%s%s", v, rc ? ": " : "",
			  rc ? strerror(-rc) : "");
	}
}

int main(int argc, char **argv)
{
	struct tp_vu_irq_info ii = { .argsz = sizeof(ii), .index = TP_IRQ_MSIX };
	uint32_t sq0 = 0, cq0 = 0, sq1 = 0, cq1 = 0, vid = 0, vs;
	struct sqe cmd;
	uint64_t cap;
	int mfd, efd0, efd1, rc;
	bool zero = true;

	if (argc != 2) {
		fprintf(stderr, "usage: tp-vfio-nvme SOCKET\n");
		return 2;
	}
	if (vt_connect(argv[1]))
		return vt_finish("tp-vfio-nvme");
	mfd = memfd_create("tp-vfio-nvme", MFD_CLOEXEC);
	efd0 = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	efd1 = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	mem = MAP_FAILED;
	if (mfd >= 0 && efd0 >= 0 && efd1 >= 0 && ftruncate(mfd, MEM_SIZE) == 0)
		mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (mem == MAP_FAILED) {
		vt_report(false, "memfd/eventfd: %s", strerror(errno));
		return vt_finish("tp-vfio-nvme");
	}
	memset(mem, 0, MEM_SIZE);
	vt_report_rc(vt_dma_map(mfd, 0, IOVA, MEM_SIZE), "DMA_MAP 64 KiB at 0x40000000");
	vt_enable_device();
	check_bar0_areas();

	cap = rd32(NVME_CAP) | (uint64_t)rd32(NVME_CAP + 4) << 32;
	vs = rd32(NVME_VS);
	dstrd = (uint32_t)(cap >> 32) & 0xf;
	vt_report(cap != ~0ull && vs >= 0x10000, "CAP %#llx, version %u.%u",
		  (unsigned long long)cap, vs >> 16, (vs >> 8) & 0xff);

	/* MSI-X: vector 0 now, vector 1 later (the kernel's set grows). */
	rc = vt_call(TP_VU_DEVICE_GET_IRQ_INFO, &ii, sizeof(ii), NULL, 0, &ii, sizeof(ii));
	vt_report(!rc && ii.count >= 2, "GET_IRQ_INFO MSI-X: %u vectors", ii.count);
	vt_report_rc(vt_set_irq(TP_IRQ_MSIX, 0, efd0), "SET_IRQS MSI-X vector 0");

	/* Controller reset, admin queues in our memory, enable. */
	wr32(NVME_CC, 0);
	vt_report(wait_csts(0), "controller disabled (CSTS.RDY 0)");
	wr32(NVME_AQA, (QDEPTH - 1) << 16 | (QDEPTH - 1));
	wr32(NVME_ASQ, (uint32_t)(IOVA + ASQ_OFF));
	wr32(NVME_ASQ + 4, 0);
	wr32(NVME_ACQ, (uint32_t)(IOVA + ACQ_OFF));
	wr32(NVME_ACQ + 4, 0);
	wr32(NVME_CC, CC_ENABLE);
	vt_report(wait_csts(1), "controller enabled (CSTS.RDY 1)");

	memset(&cmd, 0, sizeof(cmd));
	cmd.cdw0 = 0x06; /* Identify */
	cmd.prp1 = IOVA + IDENT_OFF;
	cmd.cdw10 = 1; /* the controller */
	if (submit(0, ASQ_OFF, ACQ_OFF, &sq0, &cq0, &cmd, efd0, "Identify (admin, vector 0)")) {
		char mn[41];

		memcpy(&vid, mem + IDENT_OFF, 2);
		memcpy(mn, mem + IDENT_OFF + 24, 40);
		mn[40] = '\0';
		vt_report(vid == 0x1b36 && !strncmp(mn, "QEMU NVMe Ctrl", 14),
			  "Identify data written by the device: vendor %#x, model '%.20s'", vid,
			  mn);
	}

	vt_report_rc(vt_set_irq(TP_IRQ_MSIX, 1, efd1), "SET_IRQS MSI-X vector 1 (the set grows)");
	memset(&cmd, 0, sizeof(cmd));
	cmd.cdw0 = 0x05; /* Create I/O Completion Queue 1, interrupts on vector 1 */
	cmd.prp1 = IOVA + IOCQ_OFF;
	cmd.cdw10 = (QDEPTH - 1) << 16 | 1;
	cmd.cdw11 = 1u << 16 | 0x3;
	submit(0, ASQ_OFF, ACQ_OFF, &sq0, &cq0, &cmd, efd0, "Create I/O CQ 1");
	memset(&cmd, 0, sizeof(cmd));
	cmd.cdw0 = 0x01; /* Create I/O Submission Queue 1 on CQ 1 */
	cmd.prp1 = IOVA + IOSQ_OFF;
	cmd.cdw10 = (QDEPTH - 1) << 16 | 1;
	cmd.cdw11 = 1u << 16 | 0x1;
	submit(0, ASQ_OFF, ACQ_OFF, &sq0, &cq0, &cmd, efd0, "Create I/O SQ 1");

	memset(mem + DATA_OFF, 0xa5, 4096);
	memset(&cmd, 0, sizeof(cmd));
	cmd.cdw0 = 0x02; /* Read 8 blocks from LBA 0 of namespace 1 (zeroes) */
	cmd.nsid = 1;
	cmd.prp1 = IOVA + DATA_OFF;
	cmd.cdw12 = 7;
	submit(1, IOSQ_OFF, IOCQ_OFF, &sq1, &cq1, &cmd, efd1, "Read (I/O queue 1, vector 1)");
	vt_report(vt_irq_quiet(efd0), "vector 0 stayed quiet for the I/O completion");
	for (int i = 0; i < 4096; i++)
		zero &= mem[DATA_OFF + i] == 0;
	vt_report(zero, "read data written by the device into client memory (4 KiB of zeroes)");

	wr32(NVME_CC, 0);
	vt_report(wait_csts(0), "controller disabled again");
	vt_report_rc(vt_set_irq(TP_IRQ_MSIX, 0, -1), "SET_IRQS MSI-X off");
	vt_report_rc(vt_call(TP_VU_DEVICE_RESET, NULL, 0, NULL, 0, NULL, 0), "DEVICE_RESET");
	vt_enable_device();
	vt_report(rd32(NVME_VS) == vs, "the controller answers after the reset");
	vt_report_rc(vt_dma_unmap(IOVA, MEM_SIZE), "DMA_UNMAP");
	return vt_finish("tp-vfio-nvme");
}
