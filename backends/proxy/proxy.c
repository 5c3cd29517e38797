/* SPDX-License-Identifier: MIT */
/*
 * The proxy backend: options, connecting to the remote server, learning what
 * its device is (every field it sends checked), teardown. See proxy.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <thunderpass/log.h>

#include "proxy.h"
#include "util.h"

#define PAGE 4096ull
#define MAX_BAR_SIZE (1ull << 40)
#define MAX_ROM_SIZE (16ull << 20)
#define ERR_QUIET_NS 1000000000ull

int proxy_fail(struct proxy *p, const char *what, int rc)
{
	uint64_t now;

	p->st.errors++;
	if (atomic_load(&p->dead))
		return rc;
	now = tp_now_ns();
	if (now - p->last_err_ns < ERR_QUIET_NS) {
		p->quiet_errors++;
		return rc;
	}
	tp_warn(p->be.name, "%s: %s (%" PRIu64 " more errors in the second before)", what,
		strerror(-rc), p->quiet_errors);
	p->last_err_ns = now;
	p->quiet_errors = 0;
	return rc;
}

/* ---- options ---------------------------------------------------------- */

static int opt_ms(const char *v, int lo, int hi, int *out)
{
	uint64_t n;

	if (tp_parse_u64(v, &n) || n < (uint64_t)lo || n > (uint64_t)hi)
		return -EINVAL;
	*out = (int)n;
	return 0;
}

static int opt_bool(const char *v, bool *out)
{
	if (!strcmp(v, "on") || !strcmp(v, "yes") || !strcmp(v, "1"))
		*out = true;
	else if (!strcmp(v, "off") || !strcmp(v, "no") || !strcmp(v, "0"))
		*out = false;
	else
		return -EINVAL;
	return 0;
}

/* BASE+SIZE, both sizes or numbers ("0+8T" is not accepted: 0+0x80000000000). */
static int opt_window(const char *v, struct proxy_opts *o)
{
	char buf[64], *plus;

	if (strlen(v) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, v);
	plus = strchr(buf, '+');
	if (!plus)
		return -EINVAL;
	*plus = '\0';
	if (tp_parse_size(buf, &o->win_base) || tp_parse_size(plus + 1, &o->win_size) ||
	    !o->win_size || o->win_base + o->win_size < o->win_base ||
	    ((o->win_base | o->win_size) & (PAGE - 1)))
		return -EINVAL;
	return 0;
}

static int parse_opts(const struct tp_backend_opt *opts, size_t n, struct proxy_opts *o)
{
	*o = (struct proxy_opts){
		.name = "proxy0",
		.timeout_ms = 3000,
		.connect_wait_ms = 5000,
		.dma = PROXY_DMA_AUTO,
		.win_base = 0,
		.win_size = 1ull << 43, /* libvfio-user's MAX_DMA_SIZE: 8 TiB */
		.reconnect = true,
	};
	for (size_t i = 0; i < n; i++) {
		const char *k = opts[i].key ? opts[i].key : "", *v = opts[i].value ? opts[i].value : "";
		int rc = 0;

		if (!strcmp(k, "socket"))
			o->socket = v;
		else if (!strcmp(k, "name"))
			rc = v[0] && strlen(v) < 48 ? (o->name = v, 0) : -EINVAL;
		else if (!strcmp(k, "timeout"))
			rc = opt_ms(v, 10, 600000, &o->timeout_ms);
		else if (!strcmp(k, "connect-wait"))
			rc = opt_ms(v, 0, 600000, &o->connect_wait_ms);
		else if (!strcmp(k, "dma"))
			rc = !strcmp(v, "auto")     ? (o->dma = PROXY_DMA_AUTO, 0)
			     : !strcmp(v, "fd")     ? (o->dma = PROXY_DMA_FD, 0)
			     : !strcmp(v, "mirror") ? (o->dma = PROXY_DMA_MIRROR, 0)
			     : !strcmp(v, "msg")    ? (o->dma = PROXY_DMA_MSG, 0)
						    : -EINVAL;
		else if (!strcmp(k, "dma-window"))
			rc = opt_window(v, o);
		else if (!strcmp(k, "posted"))
			rc = !strcmp(v, "auto") ? (o->posted = PROXY_POSTED_AUTO, 0)
			     : !strcmp(v, "on") ? (o->posted = PROXY_POSTED_ON, 0)
			     : !strcmp(v, "off") ? (o->posted = PROXY_POSTED_OFF, 0)
						 : -EINVAL;
		else if (!strcmp(k, "msix"))
			rc = !strcmp(v, "follow") ? (o->msi = PROXY_MSI_FOLLOW, 0)
			     : !strcmp(v, "on")   ? (o->msi = PROXY_MSI_ON, 0)
			     : !strcmp(v, "off")  ? (o->msi = PROXY_MSI_OFF, 0)
						  : -EINVAL;
		else if (!strcmp(k, "reconnect"))
			rc = opt_bool(v, &o->reconnect);
		else if (!strcmp(k, "intx"))
			rc = !strcmp(v, "hold")	   ? (o->intx_hold = true, 0)
			     : !strcmp(v, "pulse") ? (o->intx_hold = false, 0)
						   : -EINVAL;
		else
			rc = -ENOENT;
		if (rc) {
			tp_err("proxy", "%s option '%s=%s'", rc == -ENOENT ? "unknown" : "bad", k, v);
			return -EINVAL;
		}
	}
	if (!o->socket || !o->socket[0]) {
		tp_err("proxy", "socket=PATH (the remote vfio-user server) is required");
		return -EINVAL;
	}
	return 0;
}

/* ---- what the remote device is ------------------------------------------ */

/* Sparse-mmap areas from the caps that follow the region info (bytes
 * [32, limit) of the reply); bad areas are dropped with a warning. */
static void parse_areas(struct proxy *p, uint32_t index, struct proxy_region *r,
			const struct tp_vu_region_info *info, const uint8_t *caps, uint32_t limit)
{
	uint32_t off = info->cap_offset;

	for (int hops = 0; off && hops < 8; hops++) {
		struct tp_vu_cap_hdr h;

		if (off < sizeof(*info) || off > limit || limit - off < sizeof(h))
			goto bad;
		memcpy(&h, caps + off - sizeof(*info), sizeof(h));
		if (h.id == TP_VU_CAP_SPARSE_MMAP) {
			uint32_t nr;

			if (limit - off < 16)
				goto bad;
			memcpy(&nr, caps + off - sizeof(*info) + 8, 4);
			if (nr > (limit - off - 16) / 16)
				goto bad;
			for (uint32_t a = 0; a < nr; a++) {
				struct tp_vu_sparse_area s;

				memcpy(&s, caps + off - sizeof(*info) + 16 + a * 16, 16);
				if (!s.size || !tp_range_ok(s.offset, s.size, r->size) ||
				    ((s.offset | s.size) & (PAGE - 1)) || r->nr_areas == TP_MAX_MMAP_AREAS) {
					tp_warn(p->be.name, "region %u: mappable area %u [%#" PRIx64
						"+%#" PRIx64 "] dropped (outside, unaligned or too many)",
						index, a, s.offset, s.size);
					continue;
				}
				r->areas[r->nr_areas++] = (struct tp_mmap_area){ s.offset, s.size };
			}
			return;
		}
		if (h.next && h.next <= off)
			goto bad;
		off = h.next;
	}
	return;
bad:
	tp_warn(p->be.name, "region %u: malformed capability chain: nothing mapped", index);
	r->nr_areas = 0;
}

/* The fd must be able to back the areas; a regular file must be long enough. */
static void check_fd(struct proxy *p, uint32_t index, struct proxy_region *r)
{
	struct stat st;
	uint64_t end = 0;

	for (uint32_t a = 0; a < r->nr_areas; a++)
		end = TP_MAX(end, r->areas[a].offset + r->areas[a].size);
	if (r->fd_offset & (PAGE - 1) || r->fd_offset + end < r->fd_offset ||
	    fstat(r->fd, &st) || (S_ISREG(st.st_mode) && (uint64_t)st.st_size < r->fd_offset + end)) {
		tp_warn(p->be.name, "region %u: the remote's fd cannot back its mappable areas: "
				    "trapped instead", index);
		r->nr_areas = 0;
	}
}

static int region_discover(struct proxy *p, uint32_t index, struct proxy_region *r)
{
	struct tp_vu_region_info info;
	uint8_t caps[4096 - sizeof(info)];
	int fd = -1, rc;
	uint64_t max = index == TP_REGION_CONFIG ? 4096
		       : index == TP_REGION_ROM  ? MAX_ROM_SIZE
						 : MAX_BAR_SIZE;

	memset(r, 0, sizeof(*r));
	r->fd = -1;
	if (index >= p->num_regions || index == TP_REGION_VGA)
		return 0;
	memset(caps, 0, sizeof(caps));
	rc = tp_client_region_info(&p->cl, index, &info, caps, sizeof(caps), &fd);
	if (rc) {
		tp_err(p->be.name, "GET_REGION_INFO %u: %s", index, strerror(-rc));
		return rc;
	}
	if (info.index != index || info.size > max ||
	    (index == TP_REGION_CONFIG && info.size != 256 && info.size != 4096)) {
		tp_err(p->be.name, "GET_REGION_INFO %u: the remote answered index %u size %#" PRIx64,
		       index, info.index, info.size);
		if (fd >= 0)
			close(fd);
		return -EPROTO;
	}
	r->size = info.size;
	r->flags = info.flags & (TP_VU_REGION_READ_OK | TP_VU_REGION_WRITE_OK | TP_VU_REGION_MMAP);
	/* Config space is always read and written (libvfio-user leaves the flags
	 * of the one it builds itself empty); the remote still judges each access. */
	if (index == TP_REGION_CONFIG)
		r->flags |= TP_VU_REGION_READ_OK | TP_VU_REGION_WRITE_OK;
	if (!r->size)
		r->flags = 0;
	/* Only BARs are ever mapped by the client; an fd elsewhere is closed. */
	if (fd >= 0 && (info.flags & TP_VU_REGION_MMAP) && r->size && index <= TP_REGION_BAR5) {
		r->fd = fd;
		r->fd_offset = info.offset;
		if (info.flags & TP_VU_REGION_CAPS)
			parse_areas(p, index, r, &info,
				    caps, (uint32_t)TP_MIN(info.argsz, (uint32_t)sizeof(info) + sizeof(caps)));
		else if (!(r->size & (PAGE - 1)))
			r->areas[r->nr_areas++] = (struct tp_mmap_area){ 0, r->size };
		check_fd(p, index, r);
		if (!r->nr_areas) {
			close(r->fd);
			r->fd = -1;
		}
	} else if (fd >= 0) {
		close(fd);
	}
	return 0;
}

static int irq_discover(struct proxy *p)
{
	for (uint32_t i = 0; i < TP_IRQ_INDEX_COUNT; i++) {
		struct tp_vu_irq_info req = { .argsz = sizeof(req), .index = i }, info;
		struct tp_client_reply r = { .data = (uint8_t *)&info, .cap = sizeof(info) };
		int rc;

		p->irq_count[i] = 0;
		if (i >= p->num_irqs || i == TP_IRQ_ERR || i == TP_IRQ_REQ)
			continue;
		rc = tp_client_call(&p->cl, TP_VU_DEVICE_GET_IRQ_INFO, &req, sizeof(req), NULL, 0, &r);
		for (unsigned f = 0; f < r.nfds; f++)
			close(r.fds[f]);
		if (rc) {
			tp_err(p->be.name, "GET_IRQ_INFO %u: %s", i, strerror(-rc));
			return rc;
		}
		if (r.len < sizeof(info) || info.index != i ||
		    info.count > (i == TP_IRQ_INTX ? 1u : i == TP_IRQ_MSI ? 32u : PROXY_MAX_VECTORS) ||
		    (info.count && !(info.flags & TP_VU_IRQ_INFO_EVENTFD))) {
			tp_err(p->be.name, "GET_IRQ_INFO %u: the remote answered index %u count %u "
					   "flags %#x", i, info.index, info.count, info.flags);
			return -EPROTO;
		}
		p->irq_count[i] = info.count;
	}
	return 0;
}

static int info_discover(struct proxy *p)
{
	struct tp_vu_device_info req = { .argsz = sizeof(req) }, info;
	struct tp_client_reply r = { .data = (uint8_t *)&info, .cap = sizeof(info) };
	int rc = tp_client_call(&p->cl, TP_VU_DEVICE_GET_INFO, &req, sizeof(req), NULL, 0, &r);

	for (unsigned f = 0; f < r.nfds; f++)
		close(r.fds[f]);
	if (rc) {
		tp_err(p->be.name, "GET_INFO: %s", strerror(-rc));
		return rc;
	}
	if (r.len < sizeof(info) || !(info.flags & TP_VU_DEV_PCI) ||
	    info.num_regions < TP_REGION_CONFIG + 1 || info.num_regions > 100 ||
	    info.num_irqs > 100) {
		tp_err(p->be.name, "GET_INFO: not a PCI device we can serve (flags %#x, %u regions, "
				   "%u irqs)", info.flags, info.num_regions, info.num_irqs);
		return -EPROTO;
	}
	p->dev_flags = info.flags;
	p->num_regions = info.num_regions;
	p->num_irqs = info.num_irqs;
	return 0;
}

static bool same_region(const struct proxy_region *a, const struct proxy_region *b)
{
	return a->size == b->size && a->flags == b->flags && a->nr_areas == b->nr_areas &&
	       (a->fd < 0) == (b->fd < 0) && a->fd_offset == b->fd_offset &&
	       !memcmp(a->areas, b->areas, a->nr_areas * sizeof(a->areas[0]));
}

/* What the device is; on a reconnect, it must be what it was. */
static int discover(struct proxy *p, bool again)
{
	struct proxy_region fresh[TP_REGION_COUNT];
	uint32_t old_irqs[TP_IRQ_INDEX_COUNT], old_flags = p->dev_flags;
	uint32_t old_nr = p->num_regions, old_ni = p->num_irqs;
	uint8_t ident[64];
	int rc;

	for (uint32_t i = 0; i < TP_REGION_COUNT; i++)
		fresh[i].fd = -1;
	memcpy(old_irqs, p->irq_count, sizeof(old_irqs));
	rc = info_discover(p);
	for (uint32_t i = 0; !rc && i < TP_REGION_COUNT; i++)
		rc = region_discover(p, i, &fresh[i]);
	if (rc)
		goto fail;
	rc = irq_discover(p);
	if (!rc)
		rc = tp_client_region_read(&p->cl, TP_REGION_CONFIG, 0, ident, sizeof(ident));
	if (rc) {
		proxy_fail(p, "reading the remote's config header", rc);
		goto fail;
	}
	if (again) {
		/* Identity, BAR shapes and vectors must match what the core has. */
		bool same = !memcmp(ident, p->ident, 16) && !memcmp(ident + 0x2c, p->ident + 0x2c, 4) &&
			    !memcmp(old_irqs, p->irq_count, sizeof(old_irqs)) && old_flags == p->dev_flags;

		for (uint32_t i = 0; same && i < TP_REGION_COUNT; i++)
			same = same_region(&fresh[i], &p->regions[i]);
		if (!same) {
			tp_err(p->be.name, "the remote at %s came back as a different device: "
					   "staying disconnected", p->o.socket);
			rc = -ENODEV;
			goto fail;
		}
		/* The core keeps handing out the old fd numbers: point them at
		 * the new remote's memory. */
		for (uint32_t i = 0; i < TP_REGION_COUNT; i++) {
			if (fresh[i].fd >= 0 && dup2(fresh[i].fd, p->regions[i].fd) < 0) {
				rc = -errno;
				tp_err(p->be.name, "region %u: dup2: %s", i, strerror(errno));
				goto fail;
			}
			if (fresh[i].fd >= 0)
				close(fresh[i].fd);
			fresh[i].fd = -1;
		}
		return 0;
	}
	memcpy(p->regions, fresh, sizeof(fresh));
	memcpy(p->ident, ident, sizeof(ident));
	return 0;
fail:
	for (uint32_t i = 0; i < TP_REGION_COUNT; i++)
		if (fresh[i].fd >= 0)
			close(fresh[i].fd);
	if (again) {
		p->dev_flags = old_flags;
		p->num_regions = old_nr;
		p->num_irqs = old_ni;
		memcpy(p->irq_count, old_irqs, sizeof(old_irqs));
	}
	return rc;
}

/* ---- connecting ------------------------------------------------------- */

static void on_dead(void *ctx, int err)
{
	struct proxy *p = ctx;

	atomic_store(&p->dead_err, err);
	if (!atomic_exchange(&p->dead, true))
		tp_warn(p->be.name, "the remote at %s is gone (%s): trapped accesses fail from "
				    "now on (guest reads all-ones); %s", p->o.socket, strerror(-err),
			p->o.reconnect ? "reconnecting at the next device reset" : "not reconnecting");
}

static const struct tp_client_hooks hooks = {
	.request = proxy_request,
	.dead = on_dead,
};

static int connect_wait(struct proxy *p, int wait_ms)
{
	uint64_t deadline = tp_now_ns() + (uint64_t)wait_ms * 1000000ull;
	int rc;

	for (;;) {
		rc = tp_client_connect(&p->cl, p->o.socket, p->o.timeout_ms);
		if (!rc || (rc != -ENOENT && rc != -ECONNREFUSED) || tp_now_ns() >= deadline)
			return rc;
		usleep(50000);
	}
}

int proxy_connect(struct proxy *p, bool again)
{
	int rc = connect_wait(p, again ? 0 : p->o.connect_wait_ms);

	if (rc) {
		if (!again)
			tp_err(p->be.name, "cannot connect to %s: %s", p->o.socket, strerror(-rc));
		return rc;
	}
	p->connected = true;
	rc = tp_client_version(&p->cl, NULL);
	if (rc) {
		tp_err(p->be.name, "VERSION with %s: %s", p->o.socket, strerror(-rc));
		goto fail;
	}
	rc = tp_client_start(&p->cl, &hooks, p);
	if (rc) {
		tp_err(p->be.name, "receive thread: %s", strerror(-rc));
		goto fail;
	}
	atomic_store(&p->dead, false);
	rc = discover(p, again);
	if (rc)
		goto fail;
	return 0;
fail:
	tp_client_close(&p->cl);
	p->connected = false;
	atomic_store(&p->dead, true);
	return rc;
}

/* ---- create and destroy ------------------------------------------------ */

void proxy_destroy(struct tp_backend *be)
{
	struct proxy *p = proxy_of(be);

	/* The service thread first (it replies on the client), then the
	 * client's receive thread (it queues for the service thread). */
	proxy_irq_stop(p);
	if (p->connected)
		tp_client_close(&p->cl);
	p->connected = false;
	proxy_irq_fini(p);
	for (uint32_t i = 0; i < TP_REGION_COUNT; i++)
		if (p->regions[i].fd >= 0)
			close(p->regions[i].fd);
	tp_info(be->name, "closed: %" PRIu64 " vectors forwarded, %" PRIu64 " DMA reads, %" PRIu64
		" DMA writes, %" PRIu64 " errors, %" PRIu64 " reconnects", atomic_load(&p->st.irqs),
		atomic_load(&p->st.dma_reads), atomic_load(&p->st.dma_writes), p->st.errors,
		p->st.reconnects);
	pthread_mutex_destroy(&p->qlock);
	pthread_mutex_destroy(&p->cl_lock);
	pthread_mutex_destroy(&p->intx_lock);
	pthread_mutex_destroy(&p->maps_lock);
	free(p->maps);
	free(p->dma_buf);
	free(p);
}

static void describe(struct proxy *p)
{
	char sz[32];

	for (uint32_t i = 0; i < TP_REGION_COUNT; i++) {
		const struct proxy_region *r = &p->regions[i];

		if (!r->size)
			continue;
		tp_info(p->be.name, "remote region %u: %s%s%s, %u mappable areas%s", i,
			tp_fmt_size(r->size, sz, sizeof(sz)),
			r->flags & TP_VU_REGION_READ_OK ? " r" : "",
			r->flags & TP_VU_REGION_WRITE_OK ? "w" : "", r->nr_areas,
			r->nr_areas ? " (direct-mapped with the remote's fd)" : "");
	}
	tp_info(p->be.name, "remote %04x:%04x at %s: INTx %u, MSI %u, MSI-X %u; DMA %s; "
			    "writes %s; INTx %s; reset %s", p->ident[0] | p->ident[1] << 8,
		p->ident[2] | p->ident[3] << 8, p->o.socket, p->irq_count[TP_IRQ_INTX],
		p->irq_count[TP_IRQ_MSI], p->irq_count[TP_IRQ_MSIX], proxy_dma_what(p->o.dma),
		p->posted ? "posted" : "synchronous",
		p->intx_hold ? "held until the next BAR access" : "pulsed",
		p->dev_flags & TP_VU_DEV_RESET ? "forwarded" : "not offered by the remote");
}

static int proxy_create(const struct tp_backend_opt *opts, size_t nopts, struct tp_backend **out)
{
	struct proxy *p = calloc(1, sizeof(*p));
	bool mappable = false;
	int rc;

	if (!p) {
		tp_err("proxy", "out of memory");
		return -ENOMEM;
	}
	p->epfd = p->wake_fd = -1;
	p->cl.fd = -1;
	pthread_mutex_init(&p->qlock, NULL);
	pthread_mutex_init(&p->cl_lock, NULL);
	pthread_mutex_init(&p->intx_lock, NULL);
	pthread_mutex_init(&p->maps_lock, NULL);
	for (uint32_t i = 0; i < TP_REGION_COUNT; i++)
		p->regions[i].fd = -1;
	p->be.ops = &proxy_ops;
	rc = parse_opts(opts, nopts, &p->o);
	if (rc)
		goto fail;
	snprintf(p->be.name, sizeof(p->be.name), "%s", p->o.name);
	/* auto: fd until the core names a model other than identity (iommu_model). */
	p->dma = p->o.dma == PROXY_DMA_AUTO ? PROXY_DMA_FD : p->o.dma;
	p->dma_buf = malloc(sizeof(struct tp_vu_dma_rw) + TP_VU_MAX_DATA_XFER);
	if (!p->dma_buf) {
		rc = -ENOMEM;
		tp_err(p->be.name, "out of memory");
		goto fail;
	}
	rc = proxy_connect(p, false);
	if (!rc)
		rc = proxy_dma_window(p);
	if (rc)
		goto fail;
	for (uint32_t i = 0; i < TP_REGION_COUNT; i++)
		mappable |= p->regions[i].nr_areas > 0;
	p->posted = p->o.posted == PROXY_POSTED_ON || (p->o.posted == PROXY_POSTED_AUTO && !mappable);
	p->intx_hold = p->o.intx_hold && !mappable;
	rc = proxy_find_msix(p);
	if (!rc)
		rc = proxy_irq_init(p);
	if (!rc)
		rc = proxy_irq_arm(p);
	if (rc)
		goto fail;
	describe(p);
	*out = &p->be;
	return 0;
fail:
	proxy_destroy(&p->be);
	return rc;
}

/* Beyond the core's allow-list: the service thread's epoll, and a reconnect
 * (a new socket, fds moved into place, a new receive thread). */
static const char *const proxy_syscalls[] = {
	"epoll_wait", "epoll_pwait", "epoll_pwait2", "socket", "connect", "dup2", "dup3",
	"clone", "clone3", "sched_getaffinity", NULL,
};

const struct tp_backend_type tp_backend_proxy = {
	.name = "proxy",
	.help = "a client of another vfio-user server, re-exported: socket=PATH (required), "
		"dma=auto|fd|mirror|msg, dma-window=BASE+SIZE, posted=auto|on|off, msix=on|follow|off, "
		"reconnect=on|off, intx=pulse|hold, timeout=MS (3000), connect-wait=MS (5000), name=NAME "
		"(docs/proxy.md)",
	.create = proxy_create,
	.syscalls = proxy_syscalls,
};
