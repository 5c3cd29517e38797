/* SPDX-License-Identifier: MIT */
/*
 * The proxy's ops: config and region accesses forwarded to the remote, guest
 * memory handed to it (dma=fd) or a window it reaches by messages (dma=msg),
 * reset, and reconnecting to a remote that went away. See proxy.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <thunderpass/log.h>

#include "pci_regs.h"
#include "proxy.h"
#include "util.h"

static int proxy_config_read(struct tp_backend *be, uint32_t off, void *buf, uint32_t len)
{
	struct proxy *p = proxy_of(be);
	int rc = tp_client_region_read(&p->cl, TP_REGION_CONFIG, off, buf, len);

	return rc ? proxy_fail(p, "config read", rc) : 0;
}

static int proxy_config_write(struct tp_backend *be, uint32_t off, const void *buf, uint32_t len)
{
	struct proxy *p = proxy_of(be);
	int rc = tp_client_region_write(&p->cl, TP_REGION_CONFIG, off, buf, len, false);


	return rc ? proxy_fail(p, "config write", rc) : 0;
}

static int proxy_region_info(struct tp_backend *be, uint32_t index, struct tp_region_desc *out)
{
	struct proxy *p = proxy_of(be);
	const struct proxy_region *r;

	memset(out, 0, sizeof(*out));
	out->mmap_fd = -1;
	if (index >= TP_REGION_COUNT)
		return 0;
	r = &p->regions[index];
	out->size = r->size;
	out->readable = !!(r->flags & TP_VU_REGION_READ_OK);
	out->writable = !!(r->flags & TP_VU_REGION_WRITE_OK);
	if (r->nr_areas && r->fd >= 0) {
		out->mmap_fd = r->fd;
		out->mmap_offset = r->fd_offset;
		out->nr_areas = r->nr_areas;
		memcpy(out->areas, r->areas, r->nr_areas * sizeof(r->areas[0]));
	}
	return 0;
}

static int proxy_region_read(struct tp_backend *be, uint32_t index, uint64_t off, void *buf,
			     uint32_t len)
{
	struct proxy *p = proxy_of(be);
	int rc = tp_client_region_read(&p->cl, index, off, buf, len);

	proxy_intx_ack(p);
	return rc ? proxy_fail(p, "region read", rc) : 0;
}

static int proxy_region_write(struct tp_backend *be, uint32_t index, uint64_t off,
			      const void *buf, uint32_t len)
{
	struct proxy *p = proxy_of(be);
	int rc = tp_client_region_write(&p->cl, index, off, buf, len, p->posted);


	return rc ? proxy_fail(p, "region write", rc) : 0;
}

/*
 * The remote's BARs get addresses of ours, as firmware gives a host's device
 * its resources: the guest's BAR addresses never reach the remote (the core
 * emulates BARs), and a model such as QEMU's decodes no BAR that has none
 * (address 0 counts as none). Done at connect time and after every reset.
 */
int proxy_bars_program(struct proxy *p)
{
	uint64_t mem32 = 0x80000000ull, mem64 = 1ull << 36, io = 0x1000;
	uint8_t bars[24];
	int rc = tp_client_region_read(&p->cl, TP_REGION_CONFIG, 0x10, bars, sizeof(bars));

	for (uint32_t i = 0; !rc && i <= TP_REGION_BAR5; i++) {
		uint64_t size = p->regions[i].size, *next, limit, addr;
		uint32_t bar = tp_le_get(bars + 4 * i, 4);
		bool is64 = !(bar & 1) && ((bar >> 1) & 3) == 2;
		uint8_t v[8];

		if (!size)
			continue;
		next = bar & 1 ? &io : is64 ? &mem64 : &mem32;
		limit = bar & 1 ? 0x10000ull : is64 ? 1ull << 40 : 0xfec00000ull;
		addr = (*next + size - 1) & ~(size - 1);
		if (addr + size > limit || (is64 && i == TP_REGION_BAR5)) {
			tp_warn(p->be.name, "BAR%u of the remote (%#" PRIx64 " bytes) gets no address: "
					    "it will not decode", i, size);
			continue;
		}
		*next = addr + size;
		tp_le_put(v, 4, (uint32_t)addr);
		tp_le_put(v + 4, 4, (uint32_t)(addr >> 32));
		rc = tp_client_region_write(&p->cl, TP_REGION_CONFIG, 0x10 + 4 * i, v, is64 ? 8 : 4,
					    false);
		if (is64)
			i++;
	}
	return rc ? proxy_fail(p, "programming the remote's BARs", rc) : 0;
}

/* ---- DMA ---------------------------------------------------------------- */

static int send_map(struct proxy *p, const struct tp_dma_region *r)
{
	struct tp_vu_dma_map m = {
		.argsz = sizeof(m),
		.flags = r->prot & (TP_VU_DMA_READ_OK | TP_VU_DMA_WRITE_OK),
		.offset = r->fd >= 0 ? r->fd_offset : 0,
		.addr = r->iova,
		.size = r->size,
	};
	struct tp_client_reply rep = { 0 };
	int rc = tp_client_call(&p->cl, TP_VU_DMA_MAP, &m, sizeof(m), r->fd >= 0 ? &r->fd : NULL,
				r->fd >= 0 ? 1 : 0, &rep);

	for (unsigned i = 0; i < rep.nfds; i++)
		close(rep.fds[i]);
	return rc;
}

static int send_unmap(struct proxy *p, uint64_t iova, uint64_t size)
{
	struct tp_vu_dma_unmap u = { .argsz = sizeof(u), .addr = iova, .size = size };
	struct tp_client_reply rep = { 0 };
	int rc = tp_client_call(&p->cl, TP_VU_DMA_UNMAP, &u, sizeof(u), NULL, 0, &rep);

	for (unsigned i = 0; i < rep.nfds; i++)
		close(rep.fds[i]);
	return rc;
}

int proxy_dma_window(struct proxy *p)
{
	struct tp_dma_region w = {
		.iova = p->o.win_base,
		.size = p->o.win_size,
		.fd = -1,
		.prot = TP_VU_DMA_READ_OK | TP_VU_DMA_WRITE_OK,
	};
	int rc;

	if (p->o.dma != PROXY_DMA_MSG)
		return 0;
	rc = send_map(p, &w);
	if (rc)
		tp_err(p->be.name, "DMA_MAP of the window [%#" PRIx64 "+%#" PRIx64 "] (no fd): %s",
		       w.iova, w.size, strerror(-rc));
	return rc;
}

int proxy_dma_replay(struct proxy *p)
{
	for (uint32_t i = 0; i < p->nmaps; i++) {
		int rc = send_map(p, &p->maps[i]);

		if (rc) {
			tp_err(p->be.name, "DMA_MAP [%#" PRIx64 "+%#" PRIx64 "] again: %s",
			       p->maps[i].iova, p->maps[i].size, strerror(-rc));
			return rc;
		}
	}
	return 0;
}

const char *proxy_dma_what(enum proxy_dma_mode m)
{
	switch (m) {
	case PROXY_DMA_AUTO:
		return "by fds, as the IOMMU model allows (fd with identity, mirror otherwise)";
	case PROXY_DMA_FD:
		return "by the client's guest memory fds (identity IOMMU only)";
	case PROXY_DMA_MIRROR:
		return "by the IOMMU model's mappings (device address -> fd of the guest pages)";
	default:
		return "by DMA_READ/DMA_WRITE messages";
	}
}

static int record_map(struct proxy *p, const struct tp_dma_region *r)
{
	if (p->nmaps == p->maps_cap) {
		uint32_t cap = p->maps_cap ? p->maps_cap * 2 : 16;
		struct tp_dma_region *m;

		if (p->nmaps >= PROXY_MAX_MAPS)
			return -ENOSPC;
		cap = TP_MIN(cap, PROXY_MAX_MAPS);
		m = realloc(p->maps, cap * sizeof(*m));
		if (!m)
			return -ENOMEM;
		p->maps = m;
		p->maps_cap = cap;
	}
	p->maps[p->nmaps++] = *r;
	return 0;
}

static bool forget_map(struct proxy *p, uint64_t addr, uint64_t size)
{
	for (uint32_t i = 0; i < p->nmaps; i++) {
		if (p->maps[i].iova == addr && p->maps[i].size == size) {
			p->maps[i] = p->maps[--p->nmaps];
			return true;
		}
	}
	return false;
}

/*
 * One DMA_MAP for the remote (m->iova is the address the remote's device
 * will use), recorded for a reconnect; a dead remote gets it then, and the
 * guest must not die of it. A refusal is returned: the core refuses the
 * client's map (fd), or the IOMMU model its map (mirror). Under maps_lock.
 */
static int remote_map(struct proxy *p, const struct tp_dma_region *m)
{
	char what[96];
	int rc = record_map(p, m);

	if (!rc && !atomic_load(&p->dead)) {
		rc = send_map(p, m);
		if (rc)
			forget_map(p, m->iova, m->size);
		else
			p->st.maps++;
	}
	if (rc) {
		p->st.maps_refused++;
		snprintf(what, sizeof(what), "DMA_MAP [%#" PRIx64 "+%#" PRIx64 "] %s", m->iova,
			 m->size, rc == -ENOSPC || rc == -ENOMEM ? "not recorded" : "refused by the remote");
		return proxy_fail(p, what, rc);
	}
	return 0;
}

/* Under maps_lock; only what was recorded is unmapped. */
static void remote_unmap(struct proxy *p, uint64_t addr, uint64_t size)
{
	int rc;

	if (!forget_map(p, addr, size) || atomic_load(&p->dead))
		return;
	rc = send_unmap(p, addr, size);
	if (rc)
		proxy_fail(p, "DMA_UNMAP", rc);
	else
		p->st.unmaps++;
}

/*
 * dma=fd: the remote gets the client's fd and maps guest memory itself, as
 * QEMU's client would give it: correct for the identity IOMMU only (device
 * address = guest physical). Regions without an fd (ROM, BAR sections) are
 * not passed on: no remote could map them. dma=mirror and dma=msg: nothing
 * is passed on (mirror: the model's mappings are, below; msg: the remote
 * reaches guest memory by DMA_READ/DMA_WRITE through the core).
 * Called with the core's DMA lock held for writing.
 */
static int proxy_dma_map(struct tp_backend *be, const struct tp_dma_region *r)
{
	struct proxy *p = proxy_of(be);
	int rc;

	if (p->dma != PROXY_DMA_FD)
		return 0;
	if (r->fd < 0) {
		p->st.maps_skipped++;
		return 0;
	}
	pthread_mutex_lock(&p->maps_lock);
	rc = remote_map(p, r);
	pthread_mutex_unlock(&p->maps_lock);
	return rc;
}

static int proxy_dma_unmap(struct tp_backend *be, const struct tp_dma_region *r)
{
	struct proxy *p = proxy_of(be);

	if (p->dma != PROXY_DMA_FD)
		return 0;
	pthread_mutex_lock(&p->maps_lock);
	remote_unmap(p, r->iova, r->size);
	pthread_mutex_unlock(&p->maps_lock);
	return 0;
}

/*
 * The core names its IOMMU model (at open). dma=fd would hand the remote the
 * guest's memory by guest physical address, past any model but identity:
 * refused. auto: fd with identity, mirror with any other model.
 */
static int proxy_iommu_model(struct tp_backend *be, const char *model)
{
	struct proxy *p = proxy_of(be);
	bool identity = !strcmp(model, "identity");

	if (p->o.dma == PROXY_DMA_FD && !identity) {
		tp_err(be->name, "dma=fd hands the remote the guest's memory at guest physical "
				 "addresses, past the %s IOMMU model: use dma=mirror (the default "
				 "with it) or dma=msg", model);
		return -EINVAL;
	}
	if (p->o.dma == PROXY_DMA_MIRROR && identity) {
		tp_err(be->name, "dma=mirror mirrors the mappings of a model that picks device "
				 "addresses (--iommu dart); identity has none: use dma=fd (the default)");
		return -EINVAL;
	}
	p->dma = p->o.dma != PROXY_DMA_AUTO ? p->o.dma : identity ? PROXY_DMA_FD : PROXY_DMA_MIRROR;
	tp_info(be->name, "IOMMU model %s: DMA %s", model, proxy_dma_what(p->dma));
	return 0;
}

/*
 * dma=mirror: the IOMMU model mapped guest memory [iova, iova + len) of r at
 * device address dva; the remote gets exactly that: DMA_MAP at dva with the
 * guest region's fd, at the offset of iova in it. Its device then DMAs to
 * device addresses and reaches the guest pages the model mapped and nothing
 * else. Called by the core with its DMA lock held for writing, on the thread
 * that holds it (the message thread, or the pvdma companion's); the call to
 * the remote waits only for the client's receive thread, which never takes
 * that lock (the remote's own DMA requests wait on the service thread).
 */
static int proxy_iommu_mapped(struct tp_backend *be, uint64_t dva, uint64_t iova, uint64_t len,
			      uint32_t prot, const struct tp_dma_region *r)
{
	struct proxy *p = proxy_of(be);
	struct tp_dma_region m = {
		.iova = dva,
		.size = len,
		.fd = r->fd,
		.fd_offset = r->fd_offset + (iova - r->iova),
		.prot = prot & r->prot,
	};
	int rc;

	if (p->dma != PROXY_DMA_MIRROR)
		return 0;
	/* The remote maps whole pages of an fd: guest memory without one (a ROM
	 * or BAR section) cannot be given to it. */
	if (r->fd < 0 || ((dva | len | m.fd_offset) & 4095)) {
		p->st.maps_refused++;
		return proxy_fail(p, "mirror: guest memory without an fd, or not in whole pages",
				  -EFAULT);
	}
	pthread_mutex_lock(&p->maps_lock);
	rc = remote_map(p, &m);
	pthread_mutex_unlock(&p->maps_lock);
	/* A refusal (logged) is "no room on the device's side" to the model:
	 * pvdma then drops its lazy windows, which frees the remote's regions
	 * too (QEMU 10.2's server takes 16), and tries once more. */
	if (rc)
		return -ENOMEM;
	tp_dbg(be->name, "mirror: device [%#" PRIx64 "+%#" PRIx64 "] -> guest [%#" PRIx64 "+%#" PRIx64
	       "] (fd offset %#" PRIx64 ", prot %#x)", dva, len, iova, len, m.fd_offset, m.prot);
	return 0;
}

static void proxy_iommu_unmapped(struct tp_backend *be, uint64_t dva, uint64_t len)
{
	struct proxy *p = proxy_of(be);

	if (p->dma != PROXY_DMA_MIRROR)
		return;
	pthread_mutex_lock(&p->maps_lock);
	remote_unmap(p, dva, len);
	pthread_mutex_unlock(&p->maps_lock);
}

/* ---- interrupts, reset ---------------------------------------------------- */

static int proxy_irq_count(struct tp_backend *be, uint32_t index, uint32_t *count)
{
	struct proxy *p = proxy_of(be);

	*count = index < TP_IRQ_INDEX_COUNT ? p->irq_count[index] : 0;
	return 0;
}

/* The remote went away: a new connection to the same device, or nothing.
 * maps_lock throughout: no DMA_MAP of the mirror (another thread) meets a
 * client being replaced, and the replay sends every record once. */
static int reconnect(struct proxy *p)
{
	int rc;

	pthread_mutex_lock(&p->maps_lock);
	pthread_mutex_lock(&p->cl_lock);
	if (p->connected)
		tp_client_close(&p->cl);
	p->connected = false;
	pthread_mutex_lock(&p->qlock);
	p->gen++;
	pthread_mutex_unlock(&p->qlock);
	proxy_queue_purge(p);
	rc = proxy_connect(p, true);
	pthread_mutex_unlock(&p->cl_lock);
	if (!rc)
		rc = proxy_dma_window(p);
	if (!rc)
		rc = proxy_dma_replay(p);
	if (rc) {
		if (p->connected)
			tp_client_close(&p->cl);
		p->connected = false;
		atomic_store(&p->dead, true);
		pthread_mutex_unlock(&p->maps_lock);
		tp_warn(p->be.name, "reconnecting to %s: %s; the device stays disconnected "
				    "(trapped accesses fail)", p->o.socket, strerror(-rc));
		return -ENOTCONN;
	}
	pthread_mutex_unlock(&p->maps_lock);
	p->st.reconnects++;
	tp_info(p->be.name, "reconnected to %s (the same device)", p->o.socket);
	return 0;
}

static int proxy_reset(struct tp_backend *be)
{
	struct proxy *p = proxy_of(be);
	int rc;

	p->st.resets++;
	/* A stable format: tests read it (tests/guest/run-proxy.sh). maps, unmaps,
	 * maps_refused and live count the remote's DMA map (fd and mirror). */
	pthread_mutex_lock(&p->maps_lock);
	tp_info(be->name, "remote stats irqs=%" PRIu64 " dma_reads=%" PRIu64 " dma_writes=%" PRIu64
		" dma_bytes=%" PRIu64 " dma_errors=%" PRIu64 " dma=%s maps=%" PRIu64 " unmaps=%" PRIu64
		" maps_refused=%" PRIu64 " live=%u errors=%" PRIu64 " reconnects=%" PRIu64 " dead=%d",
		atomic_load(&p->st.irqs), atomic_load(&p->st.dma_reads),
		atomic_load(&p->st.dma_writes), atomic_load(&p->st.dma_bytes),
		atomic_load(&p->st.dma_errors),
		p->dma == PROXY_DMA_FD ? "fd" : p->dma == PROXY_DMA_MIRROR ? "mirror" : "msg",
		p->st.maps, p->st.unmaps, p->st.maps_refused, p->nmaps, p->st.errors,
		p->st.reconnects, atomic_load(&p->dead) ? 1 : 0);
	pthread_mutex_unlock(&p->maps_lock);
	if (atomic_load(&p->dead)) {
		if (!p->o.reconnect)
			return -ENOTCONN;
		rc = reconnect(p);
		if (rc)
			return rc;
	}
	if (p->dev_flags & TP_VU_DEV_RESET) {
		struct tp_client_reply rep = { 0 };

		rc = tp_client_call(&p->cl, TP_VU_DEVICE_RESET, NULL, 0, NULL, 0, &rep);
		for (unsigned i = 0; i < rep.nfds; i++)
			close(rep.fds[i]);
		if (rc)
			return proxy_fail(p, "DEVICE_RESET", rc);
	}
	/* A reset disables and masks the device's own MSI-X: arm it again. */
	return proxy_irq_arm(p);
}

const struct tp_backend_ops proxy_ops = {
	.name = "proxy",
	.config_read = proxy_config_read,
	.config_write = proxy_config_write,
	.region_info = proxy_region_info,
	.region_read = proxy_region_read,
	.region_write = proxy_region_write,
	.dma_map = proxy_dma_map,
	.dma_unmap = proxy_dma_unmap,
	.iommu_model = proxy_iommu_model,
	.iommu_mapped = proxy_iommu_mapped,
	.iommu_unmapped = proxy_iommu_unmapped,
	.irq_count = proxy_irq_count,
	.reset = proxy_reset,
	.destroy = proxy_destroy,
};
