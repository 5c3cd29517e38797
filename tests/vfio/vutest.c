/* SPDX-License-Identifier: MIT */
#include "vutest.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct tp_client vt_cl;
static int checks, failures;
static char first_fail[200];

void vt_report(bool ok, const char *fmt, ...)
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

void vt_report_rc(int rc, const char *what)
{
	vt_report(!rc, "%s%s%s", what, rc ? ": " : "", rc ? strerror(-rc) : "");
}

int vt_finish(const char *name)
{
	tp_client_close(&vt_cl);
	if (failures)
		printf("%s: FAIL %s (%d of %d checks failed)\n", name, first_fail, failures,
		       checks);
	else
		printf("%s: PASS (%d checks)\n", name, checks);
	return failures ? 1 : 0;
}

int vt_connect(const char *path)
{
	int rc = tp_client_connect(&vt_cl, path, 10000);

	if (!rc)
		rc = tp_client_version(&vt_cl, NULL);
	vt_report_rc(rc, "connect and VERSION");
	return rc;
}

int vt_call(uint16_t cmd, const void *payload, uint32_t len, const int *fds, unsigned nfds,
	    void *reply, uint32_t cap)
{
	struct tp_client_reply r = { .data = reply, .cap = cap };
	int rc = tp_client_call(&vt_cl, cmd, payload, len, fds, nfds, &r);

	for (unsigned i = 0; i < r.nfds; i++)
		close(r.fds[i]);
	return rc;
}

int vt_dma_map(int fd, uint64_t offset, uint64_t iova, uint64_t size)
{
	struct tp_vu_dma_map m = {
		.argsz = sizeof(m),
		.flags = TP_VU_DMA_READ_OK | TP_VU_DMA_WRITE_OK,
		.offset = offset,
		.addr = iova,
		.size = size,
	};

	return vt_call(TP_VU_DMA_MAP, &m, sizeof(m), &fd, 1, NULL, 0);
}

int vt_dma_unmap(uint64_t iova, uint64_t size)
{
	struct tp_vu_dma_unmap u = { .argsz = sizeof(u), .addr = iova, .size = size };

	return vt_call(TP_VU_DMA_UNMAP, &u, sizeof(u), NULL, 0, NULL, 0);
}

int vt_set_irq(uint32_t index, uint32_t start, int efd)
{
	struct tp_vu_irq_set s = { .argsz = sizeof(s), .index = index, .start = start };

	if (efd < 0) {
		s.flags = TP_VU_IRQ_DATA_NONE | TP_VU_IRQ_ACTION_TRIGGER;
		s.start = 0;
		return vt_call(TP_VU_DEVICE_SET_IRQS, &s, sizeof(s), NULL, 0, NULL, 0);
	}
	s.flags = TP_VU_IRQ_DATA_EVENTFD | TP_VU_IRQ_ACTION_TRIGGER;
	s.count = 1;
	return vt_call(TP_VU_DEVICE_SET_IRQS, &s, sizeof(s), &efd, 1, NULL, 0);
}

int vt_irq_action(uint32_t index, uint32_t start, uint32_t action)
{
	struct tp_vu_irq_set s = { .argsz = sizeof(s), .flags = TP_VU_IRQ_DATA_NONE | action,
				   .index = index, .start = start, .count = 1 };

	return vt_call(TP_VU_DEVICE_SET_IRQS, &s, sizeof(s), NULL, 0, NULL, 0);
}

uint64_t vt_wait_irq(int efd, int ms)
{
	struct pollfd p = { .fd = efd, .events = POLLIN };
	uint64_t n = 0;

	if (poll(&p, 1, ms) != 1 || read(efd, &n, sizeof(n)) != sizeof(n))
		return 0;
	return n;
}

bool vt_irq_quiet(int efd)
{
	struct pollfd p = { .fd = efd, .events = POLLIN };

	return poll(&p, 1, 0) == 0;
}

uint32_t vt_rd32(uint32_t region, uint64_t off)
{
	uint32_t v = 0xffffffff;
	int rc = tp_client_region_read(&vt_cl, region, off, &v, 4);

	if (rc)
		vt_report(false, "region %u read at %#" PRIx64 ": %s", region, off, strerror(-rc));
	return v;
}

void vt_wr32(uint32_t region, uint64_t off, uint32_t v)
{
	int rc = tp_client_region_write(&vt_cl, region, off, &v, 4, false);

	if (rc)
		vt_report(false, "region %u write at %#" PRIx64 ": %s", region, off, strerror(-rc));
}

int vt_cfg(uint32_t off, void *buf, uint32_t len, bool write)
{
	return write ? tp_client_region_write(&vt_cl, TP_REGION_CONFIG, off, buf, len, false)
		     : tp_client_region_read(&vt_cl, TP_REGION_CONFIG, off, buf, len);
}

void vt_enable_device(void)
{
	uint16_t cmd = 0;
	int rc = vt_cfg(4, &cmd, 2, false);

	cmd |= 0x6; /* memory decoding, bus master */
	if (!rc)
		rc = vt_cfg(4, &cmd, 2, true);
	if (!rc)
		rc = vt_cfg(4, &cmd, 2, false);
	vt_report(!rc && (cmd & 0x6) == 0x6, "config: memory decoding and bus master on (%#x)",
		  cmd);
}

int vt_region_areas(uint32_t index, struct tp_vu_region_info *info, struct tp_vu_sparse_area *areas,
		    uint32_t max, int *fd)
{
	uint8_t caps[512];
	struct tp_vu_cap_sparse_mmap sp;
	int rc;

	memset(caps, 0, sizeof(caps));
	rc = tp_client_region_info(&vt_cl, index, info, caps, sizeof(caps), fd);
	if (rc)
		return rc;
	if (!(info->flags & TP_VU_REGION_CAPS))
		return 0;
	memcpy(&sp, caps, sizeof(sp));
	if (sp.hdr.id != TP_VU_CAP_SPARSE_MMAP || sp.nr_areas > max ||
	    sizeof(sp) + sp.nr_areas * sizeof(*areas) > sizeof(caps))
		return -EPROTO;
	memcpy(areas, caps + sizeof(sp), sp.nr_areas * sizeof(*areas));
	return (int)sp.nr_areas;
}
