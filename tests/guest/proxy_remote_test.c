/* SPDX-License-Identifier: MIT */
/*
 * Host-side test of the proxy backend against a scripted remote server (this
 * process), with this process also playing QEMU's part on thunderpass's socket:
 *
 *   test client (lib/client) -> thunderpass serve --backend proxy -> fake remote
 *
 * The fake remote is a tiny device: 4 KiB BAR0 (scratch registers, a doorbell,
 * an MSI-X table), 256 bytes of config space with an MSI-X capability, 4 MSI-X
 * vectors. What is checked:
 *   - dma=msg: the remote gets no fd, one fd-less window; its DMA_READ and
 *     DMA_WRITE reach the client's memory through the core; faults come back as
 *     EFAULT, hostile requests as EINVAL; a DMA_WRITE the remote sends while
 *     thunderpass waits for its reply to a REGION_READ is served (requests
 *     interleaved with replies); a vector raised by the remote reaches the
 *     client's MSI-X eventfd; the remote's MSI-X table was unmasked and enabled;
 *   - dma=fd: the remote gets the client's memory as an fd and sees its bytes;
 *   - the remote dies: trapped accesses fail at once (no hang); a new remote on
 *     the same socket is reconnected at the next session, and works;
 *   - dma=mirror (--iommu dart, the pvdma companion): proxy_remote_mirror.c.
 *
 *   proxy_remote_test THUNDERPASS_BINARY WORKDIR
 *
 * Exit status 0 when everything held; each check prints a line.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proxy_remote.h"
#include "transport.h"
#include "util.h"

int failures;

void check(bool ok, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	printf("%s: ", ok ? "ok" : "FAIL");
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	fflush(stdout);
	if (!ok)
		failures++;
}

/* ---- the fake remote ---------------------------------------------------- */

static int rx(int fd, struct tp_vu_hdr *h, uint8_t *body, uint32_t cap, int *fds, unsigned *nfds)
{
	int rc = tp_sock_recv_all(fd, h, sizeof(*h), fds, nfds, 5000);

	if (rc)
		return rc;
	if (h->size < HDR || h->size - HDR > cap)
		return -EPROTO;
	return h->size > HDR ? tp_sock_recv_all(fd, body, h->size - HDR, NULL, NULL, 5000) : 0;
}

static int reply(struct remote *r, const struct tp_vu_hdr *req, int err, const void *p,
		 uint32_t len, int fd)
{
	struct tp_conn c = { .fd = r->fd };
	struct tp_vu_hdr h = { .msg_id = req->msg_id, .command = req->command,
			       .size = HDR + (err ? 0 : len),
			       .flags = TP_VU_TYPE_REPLY | (err ? TP_VU_ERROR : 0),
			       .error = (uint32_t)err };

	if (req->flags & TP_VU_NO_REPLY)
		return 0;
	return tp_conn_send(&c, &h, p, err ? 0 : len, fd >= 0 ? &fd : NULL, fd >= 0, 5000);
}

/* The remote's own request (DMA_READ/WRITE): returns the reply's errno. */
static int request(struct remote *r, uint16_t cmd, const void *p, uint32_t len, uint8_t *out,
		   uint32_t cap)
{
	struct tp_conn c = { .fd = r->fd };
	struct tp_vu_hdr h = { .msg_id = r->next_id++, .command = cmd, .size = HDR + len };
	uint16_t id = h.msg_id;
	uint8_t body[64 + 4096];
	unsigned nfds = 0;
	int rc = tp_conn_send(&c, &h, p, len, NULL, 0, 5000);

	while (!rc) {
		rc = rx(r->fd, &h, body, sizeof(body), NULL, &nfds);
		if (rc || (h.flags & TP_VU_TYPE_MASK) == TP_VU_TYPE_REPLY)
			break;
		if (r->npend == 8 || h.msg_id == id)
			return EPROTO;
		r->pend[r->npend].h = h;
		memcpy(r->pend[r->npend++].body, body, h.size - HDR);
	}
	if (rc)
		return -rc;
	if ((h.flags & TP_VU_TYPE_MASK) != TP_VU_TYPE_REPLY || h.command != cmd)
		return EPROTO;
	if (h.flags & TP_VU_ERROR)
		return (int)h.error;
	if (out)
		memcpy(out, body, h.size - HDR < cap ? h.size - HDR : cap);
	return 0;
}

static uint64_t reg(struct remote *r, uint32_t off)
{
	uint64_t v;

	memcpy(&v, r->bar0 + off, 8);
	return v;
}

static void set_reg(struct remote *r, uint32_t off, uint64_t v)
{
	memcpy(r->bar0 + off, &v, 8);
}

/* The doorbell: read LEN bytes at SRC, write them inverted at DST, raise vector 1. */
static void doorbell(struct remote *r)
{
	struct tp_vu_dma_rw a = { .addr = reg(r, R_SRC), .count = reg(r, R_LEN) };
	uint8_t buf[16 + 4096];
	int err;

	if (a.count > 4096)
		a.count = 4096;
	err = request(r, TP_VU_DMA_READ, &a, sizeof(a), buf, sizeof(buf));
	if (!err) {
		for (uint64_t i = 0; i < a.count; i++)
			buf[16 + i] = (uint8_t)~buf[16 + i];
		a.addr = reg(r, R_DST);
		memcpy(buf, &a, sizeof(a));
		err = request(r, TP_VU_DMA_WRITE, buf, (uint32_t)(16 + a.count), NULL, 0);
	}
	set_reg(r, R_STATUS, (uint64_t)err);
	if (!err && r->efds[1] >= 0) {
		uint64_t one = 1;

		if (write(r->efds[1], &one, 8) != 8)
			set_reg(r, R_STATUS, EIO);
	}
}

/* Malformed requests of the remote's own (R_HOSTILE), on the remote's thread. */
static void hostile(struct remote *r)
{
	struct tp_vu_dma_rw a = { .addr = GUEST_IOVA, .count = (1u << 20) + 1 };
	uint8_t b[16] = { 0 };

	r->hostile[0] = request(r, TP_VU_DMA_READ, &a, sizeof(a), NULL, 0);
	a.count = 64;
	r->hostile[1] = request(r, TP_VU_DMA_WRITE, &a, sizeof(a), NULL, 0);
	r->hostile[2] = request(r, TP_VU_DMA_READ, b, 8, NULL, 0);
	r->hostile[3] = request(r, TP_VU_DEVICE_GET_INFO, b, 16, NULL, 0);
}

static void handle_set_irqs(struct remote *r, const uint8_t *b, uint32_t len, int *fds,
			    unsigned nfds, const struct tp_vu_hdr *h)
{
	struct tp_vu_irq_set s;

	memcpy(&s, b, sizeof(s));
	if (len < sizeof(s) || s.index != TP_IRQ_MSIX || s.start + s.count > NVEC ||
	    (nfds && nfds != s.count)) {
		for (unsigned i = 0; i < nfds; i++)
			close(fds[i]);
		reply(r, h, EINVAL, NULL, 0, -1);
		return;
	}
	for (unsigned i = 0; i < nfds; i++) {
		if (r->efds[s.start + i] >= 0)
			close(r->efds[s.start + i]);
		r->efds[s.start + i] = fds[i];
	}
	reply(r, h, 0, NULL, 0, -1);
}

/* Every DMA_MAP/DMA_UNMAP in order, a map with an fd mapped as a remote
 * would (the mirror checks read guest memory through it). */
static void log_map(struct remote *r, const struct tp_vu_dma_map *m, int fd, bool refused)
{
	struct remote_map *e = &r->log[r->nlog % REMOTE_LOG];

	if (e->mem)
		munmap(e->mem, e->size);
	*e = (struct remote_map){ .addr = m->addr, .size = m->size, .offset = m->offset,
				  .flags = m->flags, .fd = fd >= 0, .refused = refused };
	if (fd >= 0 && !refused && m->size <= (64u << 20)) {
		e->mem = mmap(NULL, m->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)m->offset);
		if (e->mem == MAP_FAILED)
			e->mem = NULL;
	}
	__atomic_store_n(&r->nlog, r->nlog + 1, __ATOMIC_RELEASE);
}

static void log_unmap(struct remote *r, const uint8_t *b, uint32_t len)
{
	struct tp_vu_dma_unmap u = { 0 };
	struct remote_map *e = &r->log[r->nlog % REMOTE_LOG];

	memcpy(&u, b, len < sizeof(u) ? len : sizeof(u));
	for (unsigned i = 0; i < r->nlog && i < REMOTE_LOG; i++) {
		struct remote_map *m = &r->log[i];

		if (m->mem && !m->unmap && m->addr == u.addr && m->size == u.size) {
			munmap(m->mem, m->size);
			m->mem = NULL;
		}
	}
	if (e->mem)
		munmap(e->mem, e->size);
	*e = (struct remote_map){ .addr = u.addr, .size = u.size, .unmap = true };
	__atomic_store_n(&r->nlog, r->nlog + 1, __ATOMIC_RELEASE);
}

static void handle_dma_map(struct remote *r, const uint8_t *b, int *fds, unsigned nfds,
			   const struct tp_vu_hdr *h)
{
	struct tp_vu_dma_map m;

	memcpy(&m, b, sizeof(m));
	r->maps++;
	if (r->refuse_maps) {
		/* As libvfio-user answers when its DMA map is full ("hit max regions"). */
		r->refuse_maps--;
		log_map(r, &m, nfds ? fds[0] : -1, true);
		for (unsigned i = 0; i < nfds; i++)
			close(fds[i]);
		reply(r, h, EINVAL, NULL, 0, -1);
		return;
	}
	log_map(r, &m, nfds ? fds[0] : -1, false);
	if (nfds) {
		r->maps_with_fd++;
		if (!r->mapped && m.size == GUEST_SIZE) {
			void *p = mmap(NULL, m.size, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0],
				       (off_t)m.offset);

			if (p != MAP_FAILED) {
				r->mapped = p;
				r->mapped_iova = m.addr;
				r->mapped_size = m.size;
			}
		}
		for (unsigned i = 0; i < nfds; i++)
			close(fds[i]);
	} else {
		r->win_base = m.addr;
		r->win_size = m.size;
	}
	reply(r, h, 0, NULL, 0, -1);
}

static void handle_region(struct remote *r, const uint8_t *b, uint32_t len,
			  const struct tp_vu_hdr *h)
{
	struct tp_vu_region_rw a;
	uint8_t out[16 + 4096];
	uint8_t *space;
	uint32_t size;

	memcpy(&a, b, sizeof(a));
	space = a.region == TP_REGION_CONFIG ? r->cfg : a.region == 0 ? r->bar0 : NULL;
	size = a.region == TP_REGION_CONFIG ? sizeof(r->cfg) : sizeof(r->bar0);
	if (!space || a.count > 4096 || a.offset > size || a.count > size - a.offset) {
		reply(r, h, EINVAL, NULL, 0, -1);
		return;
	}
	if (h->command == TP_VU_REGION_WRITE) {
		if (len < sizeof(a) + a.count) {
			reply(r, h, EINVAL, NULL, 0, -1);
			return;
		}
		memcpy(space + a.offset, b + sizeof(a), a.count);
		reply(r, h, 0, &a, sizeof(a), -1);
		if (a.region == 0 && a.offset == R_DOORBELL)
			doorbell(r);
		if (a.region == 0 && a.offset == R_HOSTILE)
			hostile(r);
		return;
	}
	if (a.region == 0 && a.offset == R_INTERLEAVE) {
		/* A request of ours before the reply thunderpass is waiting for. */
		struct tp_vu_dma_rw w = { .addr = reg(r, R_DST), .count = 8 };
		uint8_t req[24];

		memcpy(req, &w, sizeof(w));
		memcpy(req + 16, "INTERLVD", 8);
		set_reg(r, R_STATUS, (uint64_t)request(r, TP_VU_DMA_WRITE, req, sizeof(req), NULL, 0));
	}
	memcpy(out, &a, sizeof(a));
	memcpy(out + sizeof(a), space + a.offset, a.count);
	if (a.region == 0 && a.offset == R_BADECHO)
		memset(out, 0, 8); /* a hostile echo: offset 0 */
	reply(r, h, 0, out, (uint32_t)sizeof(a) + a.count, -1);
}

static void handle(struct remote *r, const struct tp_vu_hdr *h, uint8_t *b, uint32_t len,
		   int *fds, unsigned nfds)
{
	static const char caps[] = "{\"capabilities\":{\"max_msg_fds\":8,"
				   "\"max_data_xfer_size\":1048576}}";
	uint8_t out[256];

	switch (h->command) {
	case TP_VU_VERSION: {
		struct tp_vu_version v = { 0, 0 };

		memcpy(out, &v, sizeof(v));
		memcpy(out + sizeof(v), caps, sizeof(caps));
		reply(r, h, 0, out, (uint32_t)(sizeof(v) + sizeof(caps)), -1);
		break;
	}
	case TP_VU_DEVICE_GET_INFO: {
		struct tp_vu_device_info i = { sizeof(i), TP_VU_DEV_PCI | TP_VU_DEV_RESET, 9, 5 };

		reply(r, h, 0, &i, sizeof(i), -1);
		break;
	}
	case TP_VU_DEVICE_GET_REGION_INFO: {
		struct tp_vu_region_info i;

		memcpy(&i, b, sizeof(i));
		i.argsz = sizeof(i);
		i.flags = i.index == 0 || i.index == TP_REGION_CONFIG
				  ? TP_VU_REGION_READ_OK | TP_VU_REGION_WRITE_OK
				  : 0;
		i.size = i.index == 0 ? sizeof(r->bar0) : i.index == TP_REGION_CONFIG ? sizeof(r->cfg) : 0;
		i.cap_offset = 0;
		i.offset = 0;
		reply(r, h, 0, &i, sizeof(i), -1);
		break;
	}
	case TP_VU_DEVICE_GET_IRQ_INFO: {
		struct tp_vu_irq_info i;

		memcpy(&i, b, sizeof(i));
		i.argsz = sizeof(i);
		i.flags = TP_VU_IRQ_INFO_EVENTFD;
		i.count = i.index == TP_IRQ_MSIX ? NVEC : 0;
		reply(r, h, 0, &i, sizeof(i), -1);
		break;
	}
	case TP_VU_DEVICE_SET_IRQS:
		handle_set_irqs(r, b, len, fds, nfds, h);
		return;
	case TP_VU_DMA_MAP:
		handle_dma_map(r, b, fds, nfds, h);
		return;
	case TP_VU_DMA_UNMAP:
		log_unmap(r, b, len);
		r->unmaps++;
		reply(r, h, 0, NULL, 0, -1);
		break;
	case TP_VU_DEVICE_RESET:
		r->resets++;
		reply(r, h, 0, NULL, 0, -1);
		break;
	case TP_VU_REGION_READ:
	case TP_VU_REGION_WRITE:
		handle_region(r, b, len, h);
		break;
	default:
		reply(r, h, ENOTSUP, NULL, 0, -1);
	}
	for (unsigned i = 0; i < nfds; i++)
		close(fds[i]);
}

static void remote_init_config(struct remote *r)
{
	memset(r->cfg, 0, sizeof(r->cfg));
	memset(r->bar0, 0, sizeof(r->bar0));
	r->cfg[0] = 0xf0, r->cfg[1] = 0x1e, r->cfg[2] = 0x01, r->cfg[3] = 0x70; /* 1ef0:7001 */
	r->cfg[0x06] = 0x10;     /* capability list */
	r->cfg[0x0b] = 0xff;     /* class */
	r->cfg[0x10] = 0x0;      /* BAR0: 32-bit memory */
	r->cfg[0x34] = 0x40;
	r->cfg[0x40] = 0x11;     /* MSI-X, 4 entries, table in BAR0 at 0x800 */
	r->cfg[0x42] = NVEC - 1;
	r->cfg[0x44] = MSIX_TABLE & 0xff, r->cfg[0x45] = MSIX_TABLE >> 8;
	for (int v = 0; v < NVEC; v++)
		r->bar0[MSIX_TABLE + v * 16 + 12] = 1; /* masked, as after reset */
}

static void *remote_main(void *arg)
{
	struct remote *r = arg;
	static uint8_t body[TP_VU_MAX_MSG];

	for (;;) {
		struct tp_vu_hdr h;
		int fds[16];
		unsigned nfds = 16;

		if (r->npend) {
			struct pending *q = &r->pend[0];
			uint8_t b[sizeof(q->body)];

			h = q->h;
			memcpy(b, q->body, sizeof(b));
			memmove(r->pend, r->pend + 1, --r->npend * sizeof(*q));
			handle(r, &h, b, h.size - HDR, NULL, 0);
			continue;
		}
		if (rx(r->fd, &h, body, sizeof(body), fds, &nfds))
			break;
		if (r->die) {
			for (unsigned i = 0; i < nfds; i++)
				close(fds[i]);
			break;
		}
		handle(r, &h, body, h.size - HDR, fds, nfds);
	}
	close(r->fd);
	r->fd = -1;
	return NULL;
}

int remote_start(struct remote *r)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	remote_init_config(r);
	for (int v = 0; v < NVEC; v++)
		r->efds[v] = -1;
	r->fd = -1;
	r->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	strcpy(sa.sun_path, r->path);
	unlink(r->path);
	if (r->lfd < 0 || bind(r->lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(r->lfd, 1))
		return -errno;
	return 0;
}

/* Accepts thunderpass and serves it on a thread. */
int remote_accept(struct remote *r)
{
	struct pollfd p = { .fd = r->lfd, .events = POLLIN };

	if (poll(&p, 1, 10000) != 1)
		return -ETIMEDOUT;
	r->fd = accept4(r->lfd, NULL, NULL, SOCK_CLOEXEC);
	if (r->fd < 0)
		return -errno;
	return -pthread_create(&r->th, NULL, remote_main, r);
}

/* Ends the remote's thread and closes its sockets and vector eventfds. */
static void remote_end(struct remote *r)
{
	if (r->fd >= 0)
		shutdown(r->fd, SHUT_RDWR);
	pthread_join(r->th, NULL);
	close(r->lfd);
	for (int v = 0; v < NVEC; v++)
		if (r->efds[v] >= 0)
			close(r->efds[v]);
}

void remote_stop(struct remote *r)
{
	remote_end(r);
	if (r->mapped)
		munmap(r->mapped, r->mapped_size);
	r->mapped = NULL;
	for (unsigned i = 0; i < REMOTE_LOG; i++)
		if (r->log[i].mem)
			munmap(r->log[i].mem, r->log[i].size);
	memset(r->log, 0, sizeof(r->log));
	unlink(r->path);
}

/* The remote dies under thunderpass: its thread ends, its sockets and vector
 * eventfds close; what it mapped stays until remote_stop. */
void remote_kill(struct remote *r)
{
	r->die = true;
	remote_end(r);
}

/* ---- thunderpass and the client side ----------------------------------- */

pid_t start_tp(const char *bin, const char *tsock, const char *rsock, const char *log,
	       const char *const *extra)
{
	char opt[160];
	const char *argv[32] = { bin, "serve", "--backend", "proxy", "-o", opt, "-o", "timeout=1000",
				 "--socket", tsock, "--log-level", "debug" };
	unsigned n = 12;
	pid_t pid;

	snprintf(opt, sizeof(opt), "socket=%s", rsock);
	for (; extra && *extra && n < 31; extra++)
		argv[n++] = *extra;
	pid = fork();
	if (!pid) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		if (fd >= 0) {
			dup2(fd, 2);
			dup2(fd, 1);
		}
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	return pid;
}

int client_up(struct tp_client *c, const char *tsock, int *memfd, uint8_t **mem,
		     int efds[NVEC])
{
	struct tp_vu_dma_map m = { .argsz = sizeof(m), .flags = 3, .addr = GUEST_IOVA,
				   .size = GUEST_SIZE };
	struct tp_vu_irq_set s = { .argsz = sizeof(s), .flags = TP_VU_IRQ_DATA_EVENTFD |
				   TP_VU_IRQ_ACTION_TRIGGER, .index = TP_IRQ_MSIX, .count = NVEC };
	struct tp_client_reply r = { 0 };
	int rc;

	for (int i = 0; i < 100; i++) {
		struct stat st;

		if (!stat(tsock, &st))
			break;
		usleep(50000);
	}
	rc = tp_client_connect(c, tsock, 3000);
	if (!rc)
		rc = tp_client_version(c, NULL);
	if (rc)
		return rc;
	*memfd = memfd_create("guest", MFD_CLOEXEC);
	if (*memfd < 0 || ftruncate(*memfd, GUEST_SIZE))
		return -errno;
	*mem = mmap(NULL, GUEST_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, *memfd, 0);
	if (*mem == MAP_FAILED)
		return -errno;
	rc = tp_client_call(c, TP_VU_DMA_MAP, &m, sizeof(m), memfd, 1, &r);
	if (rc)
		return rc;
	for (int v = 0; v < NVEC; v++)
		efds[v] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	return tp_client_call(c, TP_VU_DEVICE_SET_IRQS, &s, sizeof(s), efds, NVEC, &r);
}

void client_down(struct tp_client *c, int memfd, uint8_t *mem, int efds[NVEC])
{
	tp_client_close(c);
	munmap(mem, GUEST_SIZE);
	close(memfd);
	for (int v = 0; v < NVEC; v++)
		close(efds[v]);
}

int wr64(struct tp_client *c, uint32_t off, uint64_t v)
{
	return tp_client_region_write(c, 0, off, &v, 8, false);
}

uint64_t rd64(struct tp_client *c, uint32_t off, int *rc)
{
	uint64_t v = 0;

	*rc = tp_client_region_read(c, 0, off, &v, 8);
	return v;
}

bool wait_efd(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	uint64_t v;

	return poll(&p, 1, ms) == 1 && read(fd, &v, 8) == 8;
}

static void check_hostile(struct remote *r, struct tp_client *c)
{
	int rc;

	wr64(c, R_HOSTILE, 1);
	rd64(c, R_STATUS, &rc); /* after the remote's requests were answered */
	check(r->hostile[0] == EINVAL, "DMA_READ of more than 1 MiB: EINVAL (%d)", r->hostile[0]);
	check(r->hostile[1] == EINVAL, "DMA_WRITE without its data: EINVAL (%d)", r->hostile[1]);
	check(r->hostile[2] == EINVAL, "DMA_READ of 8 bytes: EINVAL (%d)", r->hostile[2]);
	check(r->hostile[3] == ENOTSUP, "another command from the remote: ENOTSUP (%d)",
	      r->hostile[3]);
}

/* One session against the remote: the doorbell's DMA, an interleaved request,
 * faults and hostile requests. */
static void session(struct remote *r, const char *tsock, bool msg)
{
	struct tp_client c;
	uint8_t *mem;
	int memfd, efds[NVEC], rc, same_rc;
	bool same = true;

	rc = client_up(&c, tsock, &memfd, &mem, efds);
	check(!rc, "client connected, guest memory mapped, MSI-X eventfds given (%d)", rc);
	if (rc)
		return;
	for (int i = 0; i < 4096; i++)
		mem[i] = (uint8_t)(i * 7);
	wr64(&c, R_SRC, GUEST_IOVA);
	wr64(&c, R_DST, GUEST_IOVA + 0x80000);
	wr64(&c, R_LEN, 4096);
	wr64(&c, R_DOORBELL, 1);
	check(wait_efd(efds[1], 3000), "the remote's vector 1 reached the client's MSI-X eventfd");
	check(rd64(&c, R_STATUS, &rc) == 0 && !rc, "the remote's DMA_READ and DMA_WRITE succeeded");
	for (int i = 0; i < 4096; i++)
		same &= mem[0x80000 + i] == (uint8_t)~(uint8_t)(i * 7);
	check(same, "guest memory holds what the remote read and wrote back, inverted");

	rd64(&c, R_BADECHO, &rc);
	rd64(&c, R_SCRATCH, &same_rc);
	check(rc < 0 && !same_rc, "a read reply echoing another offset is refused (%d); the "
	      "next read works", rc);
	rd64(&c, R_INTERLEAVE, &rc);
	check(!rc && !memcmp(mem + 0x80000, "INTERLVD", 8) && rd64(&c, R_STATUS, &rc) == 0,
	      "a DMA_WRITE sent while thunderpass waited for a read reply was served first");

	/* Faults: outside guest memory; with msg, outside the window too. */
	wr64(&c, R_SRC, GUEST_IOVA + GUEST_SIZE);
	wr64(&c, R_DOORBELL, 1);
	check(rd64(&c, R_STATUS, &rc) == EFAULT, "DMA outside guest memory: EFAULT");
	if (msg) {
		check(r->maps_with_fd == 0 && r->win_size, "dma=msg: no fd to the remote, a window "
		      "[%#llx+%#llx]", (unsigned long long)r->win_base,
		      (unsigned long long)r->win_size);
		wr64(&c, R_SRC, r->win_base + r->win_size);
		wr64(&c, R_DOORBELL, 1);
		check(rd64(&c, R_STATUS, &rc) == EFAULT, "DMA outside the window: EFAULT");
		check_hostile(r, &c);
	} else {
		check(r->mapped && r->mapped_iova == GUEST_IOVA && r->mapped[5] == (uint8_t)35,
		      "dma=fd: the remote mapped the client's memory and sees its bytes");
	}
	wr64(&c, R_SRC, GUEST_IOVA);
	wr64(&c, R_LEN, 4096);
	/* The MSI-X table the proxy unmasked, the capability it enabled. */
	check(r->bar0[MSIX_TABLE + 12] == 0 && r->bar0[MSIX_TABLE + 3 * 16 + 12] == 0 &&
	      (r->cfg[0x43] & 0xc0) == 0x80, "the remote's MSI-X enabled and its vectors unmasked");
	check(r->cfg[0x10] | r->cfg[0x11] << 8 | r->cfg[0x12] << 16 | r->cfg[0x13] << 24,
	      "the remote's BAR0 got an address (%#x)",
	      r->cfg[0x10] | r->cfg[0x11] << 8 | r->cfg[0x12] << 16 | r->cfg[0x13] << 24);
	client_down(&c, memfd, mem, efds);
}

/*
 * The remote dies: a trapped access must fail at once. A new remote on the same
 * socket is found again when the session ends (the device reset), and serves.
 */
static void death(struct remote *r, const char *tsock)
{
	struct tp_client c;
	uint8_t *mem;
	int memfd, efds[NVEC], rc;
	uint64_t t0;

	rc = client_up(&c, tsock, &memfd, &mem, efds);
	check(!rc, "a second session");
	if (rc)
		return;
	remote_kill(r);
	t0 = tp_now_ns();
	rd64(&c, R_SCRATCH, &rc);
	check(rc < 0 && tp_now_ns() - t0 < 2000000000ull,
	      "the remote gone: a trapped read fails (%d) in %llu ms", rc,
	      (unsigned long long)((tp_now_ns() - t0) / 1000000));
	r->die = false;
	check(!remote_start(r), "a new remote on the same socket");
	client_down(&c, memfd, mem, efds);
	rc = remote_accept(r);
	check(!rc, "thunderpass reconnected when the session ended");
	if (!rc)
		session(r, tsock, true);
}

int main(int argc, char **argv)
{
	static struct remote r;
	char tsock[128], log[128];
	int status;
	pid_t tp;

	if (argc != 3) {
		fprintf(stderr, "usage: %s THUNDERPASS WORKDIR\n", argv[0]);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	snprintf(tsock, sizeof(tsock), "%s/tp.sock", argv[2]);
	snprintf(log, sizeof(log), "%s/tp.log", argv[2]);

	/* TP_PROXY_REMOTE_MIRROR_ONLY=1: the mirror pass alone (debugging). */
	for (int pass = getenv("TP_PROXY_REMOTE_MIRROR_ONLY") ? 2 : 0; pass < 2; pass++) {
		bool msg = pass == 0;

		printf("== dma=%s\n", msg ? "msg" : "fd");
		memset(&r, 0, sizeof(r));
		snprintf(r.path, sizeof(r.path), "%s/remote.sock", argv[2]);
		check(!remote_start(&r), "remote listening");
		const char *const extra[] = { "-o", msg ? "dma=msg" : "dma=fd", NULL };

		tp = start_tp(argv[1], tsock, r.path, log, extra);
		check(!remote_accept(&r), "thunderpass connected to the remote");
		session(&r, tsock, msg);
		if (msg)
			death(&r, tsock);
		kill(tp, SIGTERM);
		waitpid(tp, &status, 0);
		check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "thunderpass exited 0 on SIGTERM");
		remote_stop(&r);
	}
	mirror_pass(argv[1], argv[2]);
	printf("%s: %d failures\n", failures ? "FAIL" : "PASS", failures);
	return failures ? 1 : 0;
}
