/* SPDX-License-Identifier: MIT */
/*
 * The proxy's service thread and what it serves:
 *   - the remote's vectors: the remote signals eventfds of ours (SET_IRQS);
 *     the thread raises each through the core, which routes it to whatever
 *     the guest enabled (MSI-X, MSI, or an INTx pulse);
 *   - the remote device's own MSI-X (or MSI) state: enabled and unmasked in
 *     its config space and table, since QEMU's client never tells a server
 *     about the guest's masks and device models such as QEMU's keep their own;
 *   - the remote's DMA_READ/DMA_WRITE requests, queued by the client's receive
 *     thread and served through the core's IOMMU model (tp_backend_dma). They
 *     run here and not on the receive thread: a DMA copy may wait for the
 *     core's DMA lock, held by a DMA_MAP that waits for the remote's reply,
 *     which only the receive thread can deliver.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <thunderpass/log.h>

#include "pci_regs.h"
#include "proxy.h"
#include "util.h"

#define WAKE UINT32_MAX
#define CAP_MSI 0x05
#define CAP_MSIX 0x11

/* ---- the remote device's MSI-X / MSI capability ---------------------------- */

static int find_cap(const uint8_t *cfg, uint8_t id)
{
	uint8_t ptr;

	if (!(tp_le_get(cfg + 0x06, 2) & 0x10))
		return 0;
	ptr = cfg[0x34] & 0xfc;
	for (int hops = 0; ptr >= 0x40 && hops < 48; hops++) {
		if (cfg[ptr] == id)
			return ptr;
		ptr = cfg[ptr + 1] & 0xfc;
	}
	return 0;
}

int proxy_find_msix(struct proxy *p)
{
	uint8_t cfg[256];
	uint32_t table, n;
	int cap, rc;

	p->msix_cap = 0;
	rc = tp_client_region_read(&p->cl, TP_REGION_CONFIG, 0, cfg, sizeof(cfg));
	if (rc)
		return proxy_fail(p, "reading the remote's config space", rc);
	if (p->irq_count[TP_IRQ_MSIX] == 0) {
		cap = find_cap(cfg, CAP_MSI);
		p->msix_cap = p->irq_count[TP_IRQ_MSI] ? (uint8_t)cap : 0;
		return 0;
	}
	cap = find_cap(cfg, CAP_MSIX);
	if (!cap || cap > 256 - 12)
		goto bad;
	n = (tp_le_get(cfg + cap + 2, 2) & 0x7ff) + 1;
	table = tp_le_get(cfg + cap + 4, 4);
	p->msix_bir = table & 7;
	p->msix_table = table & ~7u;
	p->msix_n = TP_MIN(n, p->irq_count[TP_IRQ_MSIX]);
	if (p->msix_bir > TP_REGION_BAR5 ||
	    !(p->regions[p->msix_bir].flags & TP_VU_REGION_WRITE_OK) ||
	    !tp_range_ok(p->msix_table, (uint64_t)n * 16, p->regions[p->msix_bir].size))
		goto bad;
	p->msix_cap = (uint8_t)cap;
	return 0;
bad:
	tp_warn(p->be.name, "the remote's MSI-X capability is missing or points outside its BARs: "
			    "its own masks stay as they are");
	return 0;
}

/*
 * MSI-X on: enable, function mask off, every vector unmasked in the table. The
 * table is in a BAR: memory decoding is switched on for the writes if the
 * guest has it off, and back. Off: the enable bit cleared (the device falls
 * back to INTx, as a real one does).
 */
static int set_msix(struct proxy *p, bool on)
{
	uint8_t c[2], cmd[2];
	uint32_t zero = 0;
	int rc, rc2;

	rc = tp_client_region_read(&p->cl, TP_REGION_CONFIG, p->msix_cap + 2u, c, 2);
	if (!rc)
		rc = tp_client_region_read(&p->cl, TP_REGION_CONFIG, PCI_COMMAND, cmd, 2);
	if (rc)
		return rc;
	c[1] = on ? (uint8_t)((c[1] | 0x80) & ~0x40) : (uint8_t)(c[1] & ~0x80);
	rc = tp_client_region_write(&p->cl, TP_REGION_CONFIG, p->msix_cap + 3u, &c[1], 1, false);
	if (rc || !on || !p->msix_n)
		return rc;
	if (!(cmd[0] & PCI_COMMAND_MEMORY)) {
		uint8_t mem = cmd[0] | PCI_COMMAND_MEMORY;

		rc = tp_client_region_write(&p->cl, TP_REGION_CONFIG, PCI_COMMAND, &mem, 1, false);
	}
	for (uint32_t v = 0; !rc && v < p->msix_n; v++)
		rc = tp_client_region_write(&p->cl, p->msix_bir, p->msix_table + v * 16ull + 12,
					    &zero, 4, false);
	if (!(cmd[0] & PCI_COMMAND_MEMORY)) {
		rc2 = tp_client_region_write(&p->cl, TP_REGION_CONFIG, PCI_COMMAND, cmd, 1, false);
		rc = rc ? rc : rc2;
	}
	return rc;
}

/* MSI on: enabled with every vector (Multiple Message Enable), none masked. */
static int set_msi(struct proxy *p, bool on)
{
	uint8_t c[2];
	uint32_t n = p->irq_count[TP_IRQ_MSI], log2n = 0, zero = 0, mask_off;
	uint16_t ctl;
	int rc;

	rc = tp_client_region_read(&p->cl, TP_REGION_CONFIG, p->msix_cap + 2u, c, 2);
	if (rc)
		return rc;
	ctl = (uint16_t)tp_le_get(c, 2);
	while ((1u << log2n) < n && log2n < 5)
		log2n++;
	ctl = on ? (uint16_t)((ctl & ~0x70u) | (log2n << 4) | 1u) : (uint16_t)(ctl & ~1u);
	tp_le_put(c, 2, ctl);
	rc = tp_client_region_write(&p->cl, TP_REGION_CONFIG, p->msix_cap + 2u, c, 2, false);
	if (rc || !on || !(ctl & 0x100)) /* per-vector masking */
		return rc;
	mask_off = p->msix_cap + ((ctl & 0x80) ? 0x10u : 0x0cu);
	if (mask_off + 4 > 256)
		return -EPROTO;
	return tp_client_region_write(&p->cl, TP_REGION_CONFIG, mask_off, &zero, 4, false);
}

/*
 * msix=on (default): the remote's MSI-X (MSI) is always on, from connect time
 * and after every reset, before any driver sets the device up: QEMU's nvme
 * decides per completion queue, when the queue is created, whether it signals
 * MSI-X (msix_vector_use), so a queue created while MSI-X was off never does.
 * msix=follow: on while the guest has INTx Disable set in the command
 * register (which reaches the remote: the core passes it through), off
 * otherwise. Linux sets INTx Disable whenever it enables MSI or MSI-X and
 * clears it when it goes back to INTx, so a device that chooses at interrupt
 * time raises what the guest takes: MSI-X edges, or its own INTx, which QEMU's
 * models signal only when their level rises (no edge for a completion the
 * driver has served already: docs/proxy.md, INTx). msix=off: left alone.
 */
int proxy_irq_follow(struct proxy *p, bool force)
{
	uint8_t cmd[2];
	bool want;
	int rc;

	if (p->o.msi == PROXY_MSI_OFF || !p->msix_cap || p->irq_index == TP_IRQ_INTX ||
	    p->irq_index == TP_IRQ_INDEX_COUNT)
		return 0;
	want = true;
	if (p->o.msi == PROXY_MSI_FOLLOW && p->irq_count[TP_IRQ_INTX]) {
		rc = tp_client_region_read(&p->cl, TP_REGION_CONFIG, PCI_COMMAND, cmd, 2);
		if (rc)
			return proxy_fail(p, "reading the remote's command register", rc);
		want = cmd[1] & (PCI_COMMAND_INTX_DISABLE >> 8);
	}
	if (!force && want == p->remote_msi_on)
		return 0;
	rc = p->irq_index == TP_IRQ_MSIX ? set_msix(p, want) : set_msi(p, want);
	if (rc)
		return proxy_fail(p, "switching the remote device's MSI-X/MSI", rc);
	p->remote_msi_on = want;
	tp_dbg(p->be.name, "the remote's %s %s", p->irq_index == TP_IRQ_MSIX ? "MSI-X" : "MSI",
	       want ? "on" : "off (INTx)");
	return 0;
}

int proxy_irq_arm(struct proxy *p)
{
	uint32_t batch = TP_MAX(1u, TP_MIN(p->cl.max_msg_fds, 8u));
	int rc = 0;

	rc = proxy_bars_program(p);
	if (rc || p->irq_index == TP_IRQ_INDEX_COUNT)
		return rc;
	/* libvfio-user keeps one eventfd array for INTx, MSI and MSI-X: INTx
	 * (below) gets vector 0's eventfd, so they cannot overwrite each other. */
	for (uint32_t s = 0; !rc && s < p->nvec; s += batch) {
		struct tp_vu_irq_set a = {
			.argsz = sizeof(a),
			.flags = TP_VU_IRQ_DATA_EVENTFD | TP_VU_IRQ_ACTION_TRIGGER,
			.index = p->irq_index,
			.start = s,
			.count = TP_MIN(batch, p->nvec - s),
		};
		struct tp_client_reply rep = { 0 };

		rc = tp_client_call(&p->cl, TP_VU_DEVICE_SET_IRQS, &a, sizeof(a), p->efds + s,
				    a.count, &rep);
		for (unsigned i = 0; i < rep.nfds; i++)
			close(rep.fds[i]);
	}
	/* The remote's INTx signals our vector 0 eventfd too: the same eventfd,
	 * so libvfio-user's shared array loses nothing when it is replaced. */
	if (!rc && p->irq_index != TP_IRQ_INTX && p->irq_count[TP_IRQ_INTX]) {
		struct tp_vu_irq_set a = {
			.argsz = sizeof(a),
			.flags = TP_VU_IRQ_DATA_EVENTFD | TP_VU_IRQ_ACTION_TRIGGER,
			.index = TP_IRQ_INTX,
			.count = 1,
		};
		struct tp_client_reply rep = { 0 };

		rc = tp_client_call(&p->cl, TP_VU_DEVICE_SET_IRQS, &a, sizeof(a), p->efds, 1, &rep);
		for (unsigned i = 0; i < rep.nfds; i++)
			close(rep.fds[i]);
	}
	if (rc)
		return proxy_fail(p, "SET_IRQS with our eventfds", rc);
	return proxy_irq_follow(p, true);
}

/* ---- the remote's requests --------------------------------------------- */

static void reply_now(struct proxy *p, struct tp_client_msg *m, int err)
{
	if (!(m->hdr.flags & TP_VU_NO_REPLY))
		tp_client_send_reply(&p->cl, &m->hdr, err, NULL, 0);
	free(m);
}

/* The client's receive thread: queue DMA requests for the service thread. */
void proxy_request(void *ctx, struct tp_client_msg *m)
{
	struct proxy *p = ctx;
	uint64_t one = 1;
	ssize_t n;

	if (m->hdr.command != TP_VU_DMA_READ && m->hdr.command != TP_VU_DMA_WRITE) {
		reply_now(p, m, ENOTSUP);
		return;
	}
	pthread_mutex_lock(&p->qlock);
	if (p->stopping) {
		pthread_mutex_unlock(&p->qlock);
		free(m);
		return;
	}
	if (p->qlen == PROXY_QUEUE_MAX) {
		pthread_mutex_unlock(&p->qlock);
		atomic_fetch_add(&p->st.dma_busy, 1);
		reply_now(p, m, EBUSY);
		return;
	}
	p->queue[(p->qhead + p->qlen) % PROXY_QUEUE_MAX] = m;
	p->queue_gen[(p->qhead + p->qlen) % PROXY_QUEUE_MAX] = p->gen;
	p->qlen++;
	pthread_mutex_unlock(&p->qlock);
	n = write(p->wake_fd, &one, sizeof(one));
	(void)n;
}

void proxy_queue_purge(struct proxy *p)
{
	pthread_mutex_lock(&p->qlock);
	while (p->qlen) {
		free(p->queue[p->qhead]);
		p->qhead = (p->qhead + 1) % PROXY_QUEUE_MAX;
		p->qlen--;
	}
	pthread_mutex_unlock(&p->qlock);
}

/*
 * DMA_READ / DMA_WRITE in the spec's layout (u64 address, u64 count, data),
 * which is libvfio-user's: the device reads or writes guest memory at a
 * device address, through the core's IOMMU model. In msg mode the address
 * must lie in the window the remote was given.
 */
static void serve_dma(struct proxy *p, struct tp_client_msg *m, uint64_t gen)
{
	bool write = m->hdr.command == TP_VU_DMA_WRITE;
	struct tp_vu_dma_rw a = { 0 };
	uint32_t rlen = sizeof(a);
	uint64_t fault = 0;
	int err = 0, rc;

	if (m->len < sizeof(a)) {
		err = EINVAL;
		goto reply;
	}
	memcpy(&a, m->payload, sizeof(a));
	if (!a.count || a.count > TP_VU_MAX_DATA_XFER || (write && m->len - sizeof(a) < a.count)) {
		err = EINVAL;
		goto reply;
	}
	if (p->o.dma == PROXY_DMA_MSG &&
	    (a.addr < p->o.win_base || !tp_range_ok(a.addr - p->o.win_base, a.count, p->o.win_size))) {
		err = EFAULT;
		goto reply;
	}
	rc = tp_backend_dma(&p->be, a.addr, write ? m->payload + sizeof(a) : p->dma_buf + sizeof(a),
			    a.count, write, &fault);
	if (rc) {
		err = -rc;
		goto reply;
	}
	atomic_fetch_add(write ? &p->st.dma_writes : &p->st.dma_reads, 1);
	atomic_fetch_add(&p->st.dma_bytes, a.count);
	if (!write)
		rlen += (uint32_t)a.count;
reply:
	if (err)
		atomic_fetch_add(&p->st.dma_errors, 1);
	memcpy(p->dma_buf, &a, sizeof(a));
	pthread_mutex_lock(&p->cl_lock);
	if (gen == p->gen && p->connected && !(m->hdr.flags & TP_VU_NO_REPLY))
		tp_client_send_reply(&p->cl, &m->hdr, err, p->dma_buf, rlen);
	pthread_mutex_unlock(&p->cl_lock);
	free(m);
}

static void serve_queue(struct proxy *p)
{
	for (;;) {
		struct tp_client_msg *m;
		uint64_t gen;

		pthread_mutex_lock(&p->qlock);
		if (!p->qlen || p->stopping) {
			pthread_mutex_unlock(&p->qlock);
			return;
		}
		m = p->queue[p->qhead];
		gen = p->queue_gen[p->qhead];
		p->qhead = (p->qhead + 1) % PROXY_QUEUE_MAX;
		p->qlen--;
		pthread_mutex_unlock(&p->qlock);
		serve_dma(p, m, gen);
	}
}

/* ---- the service thread ------------------------------------------------- */

/*
 * A remote vector: an edge for MSI-X/MSI, and INTx for a guest that uses it
 * (the core ignores whichever the guest does not use). The remote reports
 * edges only; INTx is a level. Pulse (the default): lost if the guest has INTx
 * masked at that moment. intx=hold (every BAR trapped): the level stays up
 * until the guest's next BAR access (its driver acknowledging the device), so
 * the client's UNMASK finds it up; but an edge the driver has already served
 * then fires for nothing, and QEMU's client keeps a fired INTx asserted until
 * the next BAR access: interrupt storms (docs/proxy.md has the figures).
 */
static void raise_vector(struct proxy *p, uint32_t v)
{
	atomic_fetch_add(&p->st.irqs, 1);
	tp_backend_irq(&p->be, v);
	pthread_mutex_lock(&p->intx_lock);
	tp_backend_intx(&p->be, 1);
	if (p->intx_hold)
		atomic_store(&p->intx_up, true);
	else
		tp_backend_intx(&p->be, 0);
	pthread_mutex_unlock(&p->intx_lock);
}

void proxy_intx_ack(struct proxy *p)
{
	if (!atomic_load(&p->intx_up))
		return;
	pthread_mutex_lock(&p->intx_lock);
	if (atomic_exchange(&p->intx_up, false))
		tp_backend_intx(&p->be, 0);
	pthread_mutex_unlock(&p->intx_lock);
}

static void *service_main(void *arg)
{
	struct proxy *p = arg;
	struct epoll_event ev[64];

	for (;;) {
		bool stop;
		int n = epoll_wait(p->epfd, ev, (int)TP_ARRAY_SIZE(ev), -1);

		if (n < 0 && errno != EINTR) {
			tp_err(p->be.name, "epoll_wait: %s; interrupts stop", strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++) {
			uint32_t v = ev[i].data.u32;
			uint64_t cnt;
			int fd = v == WAKE ? p->wake_fd : p->efds[v];

			if (read(fd, &cnt, sizeof(cnt)) != sizeof(cnt))
				continue;
			if (v != WAKE)
				raise_vector(p, v);
		}
		pthread_mutex_lock(&p->qlock);
		stop = p->stopping;
		pthread_mutex_unlock(&p->qlock);
		if (stop)
			break;
		serve_queue(p);
	}
	return NULL;
}

int proxy_irq_init(struct proxy *p)
{
	struct epoll_event e = { .events = EPOLLIN, .data.u32 = WAKE };
	int rc;

	p->irq_index = p->irq_count[TP_IRQ_MSIX]  ? TP_IRQ_MSIX
		       : p->irq_count[TP_IRQ_MSI] ? TP_IRQ_MSI
		       : p->irq_count[TP_IRQ_INTX] ? TP_IRQ_INTX
						   : TP_IRQ_INDEX_COUNT;
	p->nvec = p->irq_index == TP_IRQ_INDEX_COUNT ? 0 : p->irq_count[p->irq_index];
	p->efds = calloc(TP_MAX(p->nvec, 1u), sizeof(int));
	for (uint32_t v = 0; p->efds && v < p->nvec; v++)
		p->efds[v] = -1;
	p->epfd = epoll_create1(EPOLL_CLOEXEC);
	p->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!p->efds || p->epfd < 0 || p->wake_fd < 0 ||
	    epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->wake_fd, &e) < 0) {
		rc = p->efds ? -errno : -ENOMEM;
		goto fail;
	}
	for (uint32_t v = 0; v < p->nvec; v++) {
		p->efds[v] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		e.data.u32 = v;
		if (p->efds[v] < 0 || epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->efds[v], &e) < 0) {
			rc = -errno;
			goto fail;
		}
	}
	rc = -pthread_create(&p->thread, NULL, service_main, p);
	if (rc)
		goto fail;
	p->thread_running = true;
	return 0;
fail:
	tp_err(p->be.name, "interrupt eventfds and thread: %s", strerror(-rc));
	return rc;
}

void proxy_irq_stop(struct proxy *p)
{
	uint64_t one = 1;
	ssize_t n;

	pthread_mutex_lock(&p->qlock);
	p->stopping = true;
	pthread_mutex_unlock(&p->qlock);
	if (!p->thread_running)
		return;
	n = write(p->wake_fd, &one, sizeof(one));
	(void)n;
	pthread_join(p->thread, NULL);
	p->thread_running = false;
}

void proxy_irq_fini(struct proxy *p)
{
	proxy_queue_purge(p);
	for (uint32_t v = 0; p->efds && v < p->nvec; v++)
		if (p->efds[v] >= 0)
			close(p->efds[v]);
	free(p->efds);
	p->efds = NULL;
	if (p->epfd >= 0)
		close(p->epfd);
	if (p->wake_fd >= 0)
		close(p->wake_fd);
	p->epfd = p->wake_fd = -1;
}
