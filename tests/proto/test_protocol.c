/* SPDX-License-Identifier: MIT */
/*
 * Protocol tests: the real `thunderpass serve` binary (model backend) driven
 * over its socket by a client that sends well-formed and hostile messages.
 * Every rejection must come back as an error reply with the expected errno,
 * and the server must keep serving afterwards.
 *
 * The binary is named by $TP_BIN (meson sets it).
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "client.h"
#include "transport.h"

static char dir[64], sock[128];
static pid_t server_pid;

static void start_server(void)
{
	const char *bin = getenv("TP_BIN");

	assert_non_null(bin);
	strcpy(dir, "/tmp/tp-proto-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(sock, sizeof(sock), "%s/tp.sock", dir);
	server_pid = fork();
	assert_true(server_pid >= 0);
	if (!server_pid) {
		execl(bin, bin, "serve", "--socket", sock, "--log-level", "error", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 200; i++) {
		struct stat st;

		if (stat(sock, &st) == 0)
			return;
		usleep(10000);
	}
	fail_msg("server did not create %s", sock);
}

static int stop_server(void)
{
	int status = 0;

	kill(server_pid, SIGTERM);
	waitpid(server_pid, &status, 0);
	rmdir(dir);
	return status;
}

/*
 * Connects and negotiates. The server may not have seen the previous test's
 * client close yet, and then (rightly) answers EBUSY: try again briefly.
 */
static void connect_ok(struct tp_client *c)
{
	for (int i = 0; i < 100; i++) {
		int rc;

		assert_int_equal(tp_client_connect(c, sock, 3000), 0);
		rc = tp_client_version(c, NULL);
		if (rc == 0)
			return;
		assert_int_equal(rc, -EBUSY);
		tp_client_close(c);
		usleep(10000);
	}
	fail_msg("the server stayed busy");
}

/* A raw message: header + payload, optional fds, and the reply's errno. */
static int raw_call(struct tp_client *c, uint16_t cmd, uint32_t size, uint32_t flags,
		    const void *payload, uint32_t len, const int *fds, unsigned nfds)
{
	uint8_t buf[256], rep[256];
	struct tp_vu_hdr h = { .msg_id = 0x7777, .command = cmd, .size = size, .flags = flags };
	struct tp_client_reply r = { .data = rep, .cap = sizeof(rep) };
	int rc;

	assert_true(sizeof(h) + len <= sizeof(buf));
	memcpy(buf, &h, sizeof(h));
	if (len)
		memcpy(buf + sizeof(h), payload, len);
	assert_int_equal(tp_client_send_raw(c, buf, (uint32_t)sizeof(h) + len, fds, nfds), 0);
	rc = tp_client_recv(c, &r);
	if (rc)
		return rc;
	for (unsigned i = 0; i < r.nfds; i++)
		close(r.fds[i]);
	assert_int_equal(r.hdr.msg_id, 0x7777);
	assert_int_equal(r.hdr.flags & TP_VU_TYPE_MASK, TP_VU_TYPE_REPLY);
	return (r.hdr.flags & TP_VU_ERROR) ? (int)r.hdr.error : 0;
}

static int call(struct tp_client *c, uint16_t cmd, const void *p, uint32_t len)
{
	uint8_t rep[4096];
	struct tp_client_reply r = { .data = rep, .cap = sizeof(rep) };
	int rc = tp_client_call(c, cmd, p, len, NULL, 0, &r);

	for (unsigned i = 0; i < r.nfds; i++)
		close(r.fds[i]);
	return -rc;
}

/* The device still answers: identity through config and BAR0. */
static void assert_healthy(struct tp_client *c)
{
	uint32_t id = 0, boot0 = 0;

	assert_int_equal(tp_client_region_read(c, TP_REGION_CONFIG, 0, &id, 4), 0);
	assert_int_equal(id, 0x2b8510de);
	assert_int_equal(tp_client_region_read(c, 0, 0, &boot0, 4), 0);
	assert_int_equal(boot0, 0x1b2000a1);
}

static void test_version_rules(void **state)
{
	struct tp_client c;
	struct tp_vu_device_info info = { .argsz = sizeof(info) };
	uint8_t v[64] = { 0 };

	assert_int_equal(tp_client_connect(&c, sock, 3000), 0);
	/* Nothing before VERSION. */
	assert_int_equal(call(&c, TP_VU_DEVICE_GET_INFO, &info, sizeof(info)), EINVAL);
	/* Wrong major. */
	v[0] = 1;
	assert_int_equal(call(&c, TP_VU_VERSION, v, 4), ENOTSUP);
	/* JSON without its NUL. */
	v[0] = 0;
	memcpy(v + 4, "{\"a\":1}", 7);
	assert_int_equal(call(&c, TP_VU_VERSION, v, 11), EINVAL);
	/* Not JSON, not an object, bad member types. */
	assert_int_equal(tp_client_version(&c, "{nope"), -EINVAL);
	assert_int_equal(tp_client_version(&c, "[1,2]"), -EINVAL);
	assert_int_equal(tp_client_version(&c, "{\"capabilities\":{\"max_msg_fds\":\"x\"}}"),
			 -EINVAL);
	assert_int_equal(tp_client_version(&c, "{\"capabilities\":7}"), -EINVAL);
	/* Then a good one, once. */
	assert_int_equal(tp_client_version(&c, NULL), 0);
	assert_int_equal(c.max_msg_fds, TP_VU_MAX_MSG_FDS);
	assert_int_equal(c.max_data_xfer, TP_VU_MAX_DATA_XFER);
	assert_int_equal(tp_client_version(&c, NULL), -EINVAL);
	assert_healthy(&c);
	tp_client_close(&c);
}

/* QEMU refuses a VERSION reply longer than its request: ours must shrink. */
static void test_version_reply_fits(void **state)
{
	struct tp_client c;
	uint8_t req[8] = { 0 }, rep[512];
	struct tp_client_reply r = { .data = rep, .cap = sizeof(rep) };

	assert_int_equal(tp_client_connect(&c, sock, 3000), 0);
	memcpy(req + 4, "{}", 3);
	assert_int_equal(tp_client_call(&c, TP_VU_VERSION, req, 7, NULL, 0, &r), 0);
	assert_true(r.hdr.size <= 16 + 7);
	tp_client_close(&c);
}

static void test_framing_faults(void **state)
{
	struct tp_client c;
	uint8_t junk[64] = { 0 };

	connect_ok(&c);
	/* A header whose size is below the header. */
	assert_int_equal(raw_call(&c, TP_VU_DEVICE_GET_INFO, 8, 0, NULL, 0, NULL, 0), EINVAL);
	/* Unknown commands, and commands only a server sends. */
	assert_int_equal(raw_call(&c, 0, 16, 0, NULL, 0, NULL, 0), ENOSYS);
	assert_int_equal(raw_call(&c, 99, 16, 0, NULL, 0, NULL, 0), ENOSYS);
	assert_int_equal(raw_call(&c, 0xffff, 16, 0, NULL, 0, NULL, 0), ENOSYS);
	assert_int_equal(raw_call(&c, TP_VU_DMA_READ, 32, 0, junk, 16, NULL, 0), EINVAL);
	/* Known but unsupported. */
	assert_int_equal(raw_call(&c, TP_VU_DEVICE_GET_REGION_IO_FDS, 32, 0, junk, 16, NULL, 0),
			 ENOTSUP);
	assert_int_equal(raw_call(&c, TP_VU_DIRTY_PAGES, 16, 0, NULL, 0, NULL, 0), ENOTSUP);
	/* Short payloads for every fixed-size command. */
	assert_int_equal(raw_call(&c, TP_VU_DEVICE_GET_INFO, 20, 0, junk, 4, NULL, 0), EINVAL);
	assert_int_equal(raw_call(&c, TP_VU_DEVICE_GET_REGION_INFO, 40, 0, junk, 24, NULL, 0),
			 EINVAL);
	assert_int_equal(raw_call(&c, TP_VU_DEVICE_GET_IRQ_INFO, 24, 0, junk, 8, NULL, 0), EINVAL);
	assert_int_equal(raw_call(&c, TP_VU_DEVICE_SET_IRQS, 32, 0, junk, 16, NULL, 0), EINVAL);
	assert_int_equal(raw_call(&c, TP_VU_DMA_MAP, 40, 0, junk, 24, NULL, 0), EINVAL);
	assert_int_equal(raw_call(&c, TP_VU_DMA_UNMAP, 32, 0, junk, 16, NULL, 0), EINVAL);
	assert_int_equal(raw_call(&c, TP_VU_REGION_READ, 24, 0, junk, 8, NULL, 0), EINVAL);
	assert_int_equal(raw_call(&c, TP_VU_REGION_WRITE, 24, 0, junk, 8, NULL, 0), EINVAL);
	/* A reply from the client answers nothing: no reply, the session goes on. */
	{
		struct tp_vu_hdr h = { .msg_id = 1, .command = 4, .size = 16,
				       .flags = TP_VU_TYPE_REPLY };

		assert_int_equal(tp_client_send_raw(&c, &h, sizeof(h), NULL, 0), 0);
	}
	assert_healthy(&c);
	tp_client_close(&c);
}

/* A huge claimed size is refused at the header; the body is skipped. */
static void test_oversized(void **state)
{
	struct tp_client c;
	struct tp_vu_hdr h = { .msg_id = 0x55, .command = TP_VU_REGION_WRITE,
			       .size = 64u << 20, .flags = 0 };
	struct tp_client_reply r = { 0 };
	size_t chunk = 1 << 20;
	uint8_t *zero = calloc(1, chunk);

	connect_ok(&c);
	assert_int_equal(tp_client_send_raw(&c, &h, sizeof(h), NULL, 0), 0);
	/* The answer comes before the body is sent. */
	assert_int_equal(tp_client_recv(&c, &r), 0);
	assert_int_equal(r.hdr.msg_id, 0x55);
	assert_true(r.hdr.flags & TP_VU_ERROR);
	assert_int_equal(r.hdr.error, E2BIG);
	for (size_t left = h.size - sizeof(h); left;) {
		size_t n = left < chunk ? left : chunk;

		assert_int_equal(tp_client_send_raw(&c, zero, (uint32_t)n, NULL, 0), 0);
		left -= n;
	}
	free(zero);
	assert_healthy(&c);
	tp_client_close(&c);
}

static void test_region_bounds(void **state)
{
	struct tp_client c;
	uint8_t buf[16] = { 0 };
	struct tp_vu_region_rw rw;

	connect_ok(&c);
	/* Past the end of BAR0 (16 MiB), wrapping offsets, absent and bogus regions. */
	assert_int_equal(tp_client_region_read(&c, 0, (16u << 20) - 2, buf, 4), -EINVAL);
	assert_int_equal(tp_client_region_read(&c, 0, UINT64_MAX - 1, buf, 4), -EINVAL);
	assert_int_equal(tp_client_region_read(&c, 2, 0, buf, 4), -EINVAL);
	assert_int_equal(tp_client_region_read(&c, 9, 0, buf, 4), -EINVAL);
	assert_int_equal(tp_client_region_read(&c, 0xffffffff, 0, buf, 4), -EINVAL);
	assert_int_equal(tp_client_region_read(&c, TP_REGION_CONFIG, 4094, buf, 4), -EINVAL);
	assert_int_equal(tp_client_region_read(&c, 0, 0, buf, 0), -EINVAL);
	/* More than max_data_xfer_size. */
	rw = (struct tp_vu_region_rw){ .region = 1, .count = (1u << 20) + 1 };
	assert_int_equal(call(&c, TP_VU_REGION_READ, &rw, sizeof(rw)), E2BIG);
	/* A write whose count disagrees with the data it carries. */
	{
		uint8_t msg[sizeof(rw) + 4] = { 0 };

		rw = (struct tp_vu_region_rw){ .region = 0, .offset = 0x200, .count = 8 };
		memcpy(msg, &rw, sizeof(rw));
		assert_int_equal(call(&c, TP_VU_REGION_WRITE, msg, sizeof(msg)), EINVAL);
	}
	/* The ROM cannot be written. */
	assert_int_equal(tp_client_region_write(&c, TP_REGION_ROM, 0, buf, 4, false), -EACCES);
	/* A posted write that fails gets no reply: the next call's reply is its own. */
	assert_int_equal(tp_client_region_write(&c, 0, UINT64_MAX, buf, 4, true), 0);
	assert_healthy(&c);
	tp_client_close(&c);
}

static void test_fd_limits(void **state)
{
	struct tp_client c;
	struct tp_vu_device_info info = { .argsz = sizeof(info) };
	struct tp_vu_irq_set set = { .argsz = sizeof(set), .index = TP_IRQ_MSIX, .start = 0,
				     .count = 9,
				     .flags = TP_VU_IRQ_DATA_EVENTFD | TP_VU_IRQ_ACTION_TRIGGER };
	int fds[20];

	for (int i = 0; i < 20; i++)
		fds[i] = dup(0);
	connect_ok(&c);
	/* An fd on a command that takes none. */
	assert_int_equal(raw_call(&c, TP_VU_DEVICE_GET_INFO, 32, 0, &info, sizeof(info), fds, 1),
			 EINVAL);
	/* More fds than SET_IRQS may carry (max_msg_fds = 8). */
	assert_int_equal(raw_call(&c, TP_VU_DEVICE_SET_IRQS, 36, 0, &set, sizeof(set), fds, 9),
			 EINVAL);
	/* More than the server ever accepts in one message. */
	assert_int_equal(raw_call(&c, TP_VU_DEVICE_SET_IRQS, 36, 0, &set, sizeof(set), fds, 20),
			 EINVAL);
	for (int i = 0; i < 20; i++)
		close(fds[i]);
	assert_healthy(&c);
	tp_client_close(&c);
}

static void test_region_info(void **state)
{
	struct tp_client c;
	struct tp_vu_region_info req = { .argsz = 8, .index = 1 }, info;
	uint8_t caps[256];
	struct tp_vu_cap_sparse_mmap sp;
	struct tp_vu_sparse_area area;
	uint8_t rep[64];
	struct tp_client_reply r = { .data = rep, .cap = sizeof(rep) };
	int fd;

	connect_ok(&c);
	assert_int_equal(call(&c, TP_VU_DEVICE_GET_REGION_INFO, &req, sizeof(req)), EINVAL);
	req = (struct tp_vu_region_info){ .argsz = sizeof(req), .index = 9 };
	assert_int_equal(call(&c, TP_VU_DEVICE_GET_REGION_INFO, &req, sizeof(req)), EINVAL);
	/* argsz 32: told the size needed, no caps flag, no fd (QEMU's first ask). */
	req = (struct tp_vu_region_info){ .argsz = sizeof(req), .index = 1 };
	assert_int_equal(tp_client_call(&c, TP_VU_DEVICE_GET_REGION_INFO, &req, sizeof(req), NULL,
					0, &r), 0);
	assert_int_equal(r.len, sizeof(info));
	assert_int_equal(r.nfds, 0);
	memcpy(&info, rep, sizeof(info));
	assert_true(info.argsz > sizeof(info));
	assert_false(info.flags & TP_VU_REGION_CAPS);
	/* Asked again with room: BAR1 is mappable, whole, with an fd. */
	assert_int_equal(tp_client_region_info(&c, 1, &info, caps, sizeof(caps), &fd), 0);
	assert_int_equal(info.size, 256u << 20);
	assert_true(info.flags & TP_VU_REGION_MMAP);
	assert_true(info.flags & TP_VU_REGION_CAPS);
	assert_int_equal(info.cap_offset, sizeof(info));
	memcpy(&sp, caps, sizeof(sp));
	assert_int_equal(sp.hdr.id, TP_VU_CAP_SPARSE_MMAP);
	assert_int_equal(sp.nr_areas, 1);
	memcpy(&area, caps + sizeof(sp), sizeof(area));
	assert_int_equal(area.offset, 0);
	assert_int_equal(area.size, 256u << 20);
	assert_true(fd >= 0);
	{
		/* What the client writes through the mapping the server reads back. */
		uint32_t *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
				   (off_t)info.offset);
		uint32_t v = 0;

		assert_true(p != MAP_FAILED);
		p[16] = 0xfeedc0de;
		assert_int_equal(tp_client_region_read(&c, 1, 64, &v, 4), 0);
		assert_int_equal(v, 0xfeedc0de);
		munmap(p, 4096);
		close(fd);
	}
	/* BAR0 is trapped: no mmap flag, no fd. */
	assert_int_equal(tp_client_region_info(&c, 0, &info, caps, sizeof(caps), &fd), 0);
	assert_int_equal(info.size, 16u << 20);
	assert_false(info.flags & TP_VU_REGION_MMAP);
	assert_int_equal(fd, -1);
	tp_client_close(&c);
}

static void test_irqs(void **state)
{
	struct tp_client c;
	struct tp_vu_irq_info ii = { .argsz = sizeof(ii), .index = 5 };
	struct tp_vu_irq_set s;
	uint8_t rep[64];
	struct tp_client_reply r = { .data = rep, .cap = sizeof(rep) };
	int efd[2] = { dup(0), dup(0) };

	connect_ok(&c);
	assert_int_equal(call(&c, TP_VU_DEVICE_GET_IRQ_INFO, &ii, sizeof(ii)), EINVAL);
	ii.index = TP_IRQ_MSIX;
	assert_int_equal(tp_client_call(&c, TP_VU_DEVICE_GET_IRQ_INFO, &ii, sizeof(ii), NULL, 0, &r),
			 0);
	memcpy(&ii, rep, sizeof(ii));
	assert_int_equal(ii.count, 9);
	assert_true(ii.flags & TP_VU_IRQ_INFO_EVENTFD);
	/* Bad index, two data types, two actions, start past the end, overflow. */
	s = (struct tp_vu_irq_set){ sizeof(s), TP_VU_IRQ_DATA_NONE | TP_VU_IRQ_ACTION_TRIGGER, 7, 0, 1 };
	assert_int_equal(call(&c, TP_VU_DEVICE_SET_IRQS, &s, sizeof(s)), EINVAL);
	s = (struct tp_vu_irq_set){ sizeof(s),
				    TP_VU_IRQ_DATA_NONE | TP_VU_IRQ_DATA_BOOL | TP_VU_IRQ_ACTION_TRIGGER,
				    TP_IRQ_MSIX, 0, 1 };
	assert_int_equal(call(&c, TP_VU_DEVICE_SET_IRQS, &s, sizeof(s)), EINVAL);
	s = (struct tp_vu_irq_set){ sizeof(s),
				    TP_VU_IRQ_DATA_NONE | TP_VU_IRQ_ACTION_MASK | TP_VU_IRQ_ACTION_TRIGGER,
				    TP_IRQ_MSIX, 0, 1 };
	assert_int_equal(call(&c, TP_VU_DEVICE_SET_IRQS, &s, sizeof(s)), EINVAL);
	s = (struct tp_vu_irq_set){ sizeof(s), TP_VU_IRQ_DATA_NONE | TP_VU_IRQ_ACTION_TRIGGER,
				    TP_IRQ_MSIX, 9, 1 };
	assert_int_equal(call(&c, TP_VU_DEVICE_SET_IRQS, &s, sizeof(s)), EINVAL);
	s = (struct tp_vu_irq_set){ sizeof(s), TP_VU_IRQ_DATA_NONE | TP_VU_IRQ_ACTION_TRIGGER,
				    TP_IRQ_MSIX, 1, 0xffffffff };
	assert_int_equal(call(&c, TP_VU_DEVICE_SET_IRQS, &s, sizeof(s)), EINVAL);
	/* MSI-X cannot be masked through SET_IRQS (the client owns the table). */
	s = (struct tp_vu_irq_set){ sizeof(s), TP_VU_IRQ_DATA_NONE | TP_VU_IRQ_ACTION_MASK,
				    TP_IRQ_MSIX, 0, 1 };
	assert_int_equal(call(&c, TP_VU_DEVICE_SET_IRQS, &s, sizeof(s)), EINVAL);
	/* DATA_BOOL without its bytes. */
	s = (struct tp_vu_irq_set){ sizeof(s), TP_VU_IRQ_DATA_BOOL | TP_VU_IRQ_ACTION_TRIGGER,
				    TP_IRQ_MSIX, 0, 4 };
	assert_int_equal(call(&c, TP_VU_DEVICE_SET_IRQS, &s, sizeof(s)), EINVAL);
	/* fd count disagreeing with count. */
	s = (struct tp_vu_irq_set){ sizeof(s), TP_VU_IRQ_DATA_EVENTFD | TP_VU_IRQ_ACTION_TRIGGER,
				    TP_IRQ_MSIX, 0, 3 };
	assert_int_equal(-tp_client_call(&c, TP_VU_DEVICE_SET_IRQS, &s, sizeof(s), efd, 2, &r),
			 EINVAL);
	close(efd[0]);
	close(efd[1]);
	assert_healthy(&c);
	tp_client_close(&c);
}

static void test_dma(void **state)
{
	struct tp_client c;
	struct tp_vu_dma_map m;
	struct tp_vu_dma_unmap u;
	uint8_t rep[64];
	struct tp_client_reply r = { .data = rep, .cap = sizeof(rep) };
	int fd = memfd_create("guest", MFD_CLOEXEC);

	assert_int_equal(ftruncate(fd, 1 << 20), 0);
	connect_ok(&c);
	m = (struct tp_vu_dma_map){ sizeof(m), TP_VU_DMA_READ_OK | TP_VU_DMA_WRITE_OK, 0, 0x100000,
				    1 << 20 };
	assert_int_equal(tp_client_call(&c, TP_VU_DMA_MAP, &m, sizeof(m), &fd, 1, &r), 0);
	/* Overlap, unaligned, wrapping, unknown flags, argsz too small. */
	m.addr = 0x180000;
	assert_int_equal(-tp_client_call(&c, TP_VU_DMA_MAP, &m, sizeof(m), &fd, 1, &r), EEXIST);
	m.addr = 0x300001;
	assert_int_equal(-tp_client_call(&c, TP_VU_DMA_MAP, &m, sizeof(m), &fd, 1, &r), EINVAL);
	m.addr = UINT64_MAX & ~0xfffull;
	assert_int_equal(-tp_client_call(&c, TP_VU_DMA_MAP, &m, sizeof(m), NULL, 0, &r), EINVAL);
	m.addr = 0x400000;
	m.flags = 0x80;
	assert_int_equal(-tp_client_call(&c, TP_VU_DMA_MAP, &m, sizeof(m), NULL, 0, &r), EINVAL);
	m.flags = TP_VU_DMA_READ_OK;
	m.argsz = 8;
	assert_int_equal(-tp_client_call(&c, TP_VU_DMA_MAP, &m, sizeof(m), NULL, 0, &r), EINVAL);
	/* An fd shorter than the map (the device would SIGBUS past its end). */
	m = (struct tp_vu_dma_map){ sizeof(m), TP_VU_DMA_READ_OK, 0, 0x800000, 2 << 20 };
	assert_int_equal(-tp_client_call(&c, TP_VU_DMA_MAP, &m, sizeof(m), &fd, 1, &r), EINVAL);
	m = (struct tp_vu_dma_map){ sizeof(m), TP_VU_DMA_READ_OK, 1 << 20, 0x800000, 1 << 20 };
	assert_int_equal(-tp_client_call(&c, TP_VU_DMA_MAP, &m, sizeof(m), &fd, 1, &r), EINVAL);
	m.addr = 0x400000;
	/* A map without an fd (ROM or BAR sections) is accepted. */
	m.argsz = sizeof(m);
	assert_int_equal(tp_client_call(&c, TP_VU_DMA_MAP, &m, sizeof(m), NULL, 0, &r), 0);
	/* Unmap that would cut a region, dirty bitmap, ALL with a range. */
	u = (struct tp_vu_dma_unmap){ sizeof(u), 0, 0x100000, 0x1000 };
	assert_int_equal(call(&c, TP_VU_DMA_UNMAP, &u, sizeof(u)), EINVAL);
	u.flags = TP_VU_UNMAP_GET_DIRTY;
	assert_int_equal(call(&c, TP_VU_DMA_UNMAP, &u, sizeof(u)), ENOTSUP);
	u.flags = TP_VU_UNMAP_ALL;
	assert_int_equal(call(&c, TP_VU_DMA_UNMAP, &u, sizeof(u)), EINVAL);
	u = (struct tp_vu_dma_unmap){ sizeof(u), 0, 0x100000, 1 << 20 };
	assert_int_equal(tp_client_call(&c, TP_VU_DMA_UNMAP, &u, sizeof(u), NULL, 0, &r), 0);
	assert_int_equal(r.len, sizeof(u));
	u = (struct tp_vu_dma_unmap){ sizeof(u), TP_VU_UNMAP_ALL, 0, 0 };
	assert_int_equal(call(&c, TP_VU_DMA_UNMAP, &u, sizeof(u)), 0);
	close(fd);
	assert_healthy(&c);
	tp_client_close(&c);
}

static void test_second_client_busy(void **state)
{
	struct tp_client a, b;

	connect_ok(&a);
	assert_int_equal(tp_client_connect(&b, sock, 3000), 0);
	assert_int_equal(tp_client_version(&b, NULL), -EBUSY);
	tp_client_close(&b);
	assert_healthy(&a);
	tp_client_close(&a);
}

static void test_disconnect_mid_message(void **state)
{
	struct tp_client c;
	struct tp_vu_hdr h = { .msg_id = 9, .command = TP_VU_REGION_WRITE, .size = 4096 };
	uint8_t half[100] = { 0 };

	/* Half a header. */
	connect_ok(&c);
	assert_int_equal(tp_client_send_raw(&c, &h, 7, NULL, 0), 0);
	tp_client_close(&c);
	/* A header and part of its body. */
	connect_ok(&c);
	assert_int_equal(tp_client_send_raw(&c, &h, sizeof(h), NULL, 0), 0);
	assert_int_equal(tp_client_send_raw(&c, half, sizeof(half), NULL, 0), 0);
	tp_client_close(&c);
	/* The next client is served as if nothing happened. */
	connect_ok(&c);
	assert_healthy(&c);
	tp_client_close(&c);
}

/*
 * The client goes away while the copy engine is copying its memory: the
 * server stops the engine, drops the mappings (no access after unmap: the
 * ASan build of this test would see one) and serves the next client.
 */
static void ce_reg(struct tp_client *c, uint32_t reg, uint32_t v)
{
	assert_int_equal(tp_client_region_write(c, 0, 0xf00000 + reg, &v, 4, false), 0);
}

static void test_disconnect_mid_copy(void **state)
{
	const uint64_t size = 64u << 20, iova = 0x100000000ull;
	int fd = memfd_create("guest", MFD_CLOEXEC);
	struct tp_vu_dma_map m = { sizeof(m), TP_VU_DMA_READ_OK | TP_VU_DMA_WRITE_OK, 0, iova,
				   size };
	uint8_t rep[64];
	struct tp_client_reply r = { .data = rep, .cap = sizeof(rep) };
	struct tp_client c;
	uint32_t status = 0;

	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	for (int round = 0; round < 3; round++) {
		connect_ok(&c);
		assert_int_equal(tp_client_call(&c, TP_VU_DMA_MAP, &m, sizeof(m), &fd, 1, &r), 0);
		/* guest memory -> guest memory, 32 MiB, and go. */
		ce_reg(&c, 0x10, (uint32_t)iova);
		ce_reg(&c, 0x14, (uint32_t)(iova >> 32));
		ce_reg(&c, 0x18, (uint32_t)(iova + (32u << 20)));
		ce_reg(&c, 0x1c, (uint32_t)(iova >> 32));
		ce_reg(&c, 0x20, 32u << 20);
		ce_reg(&c, 0x24, 0x20);
		ce_reg(&c, 0x40, 1);
		tp_client_close(&c);
	}
	close(fd);
	connect_ok(&c);
	assert_healthy(&c);
	/* The engine was stopped and reset with the device: idle, registers clear. */
	assert_int_equal(tp_client_region_read(&c, 0, 0xf00044, &status, 4), 0);
	assert_int_equal(status & 1, 0);
	assert_int_equal(tp_client_region_read(&c, 0, 0xf00020, &status, 4), 0);
	assert_int_equal(status, 0);
	tp_client_close(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_version_rules),
		cmocka_unit_test(test_version_reply_fits),
		cmocka_unit_test(test_framing_faults),
		cmocka_unit_test(test_oversized),
		cmocka_unit_test(test_region_bounds),
		cmocka_unit_test(test_fd_limits),
		cmocka_unit_test(test_region_info),
		cmocka_unit_test(test_irqs),
		cmocka_unit_test(test_dma),
		cmocka_unit_test(test_second_client_busy),
		cmocka_unit_test(test_disconnect_mid_message),
		cmocka_unit_test(test_disconnect_mid_copy),
	};
	int failed, status;

	signal(SIGPIPE, SIG_IGN);
	start_server();
	failed = cmocka_run_group_tests(tests, NULL, NULL);
	status = stop_server();
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "server did not exit cleanly: status %#x\n", status);
		failed++;
	}
	if (access(sock, F_OK) == 0) {
		fprintf(stderr, "server left its socket behind\n");
		failed++;
	}
	return failed ? 1 : 0;
}
