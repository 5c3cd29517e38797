/* SPDX-License-Identifier: MIT */
/*
 * Message dispatch: one table row per command with its minimum payload and
 * how many fds it may carry; generic checks first, then the handler.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <thunderpass/log.h>

#include "session.h"
#include "util.h"

struct reply {
	uint8_t *buf;
	uint32_t len;
	uint32_t max; /* the client's buffer for this reply */
	int fd;
};

typedef int (*handler_fn)(struct tp_session *s, struct tp_msg *m, struct reply *r);

struct command {
	const char *name;
	uint32_t min_len;  /* payload bytes the fixed part needs */
	unsigned max_fds;
	handler_fn fn;
};

/* Warnings about a client's bad messages: the first 20, then every 1000th. */
static bool warn_ok(struct tp_session *s)
{
	uint64_t n = s->warnings++;

	return n < 20 || n % 1000 == 0;
}

static int h_version(struct tp_session *s, struct tp_msg *m, struct reply *r)
{
	int rc;

	if (s->negotiated)
		return -EINVAL;
	rc = tp_version_parse(m->payload, m->len, &s->client, s->dev->name);
	if (rc)
		return rc;
	rc = tp_version_reply(r->buf, r->max);
	if (rc < 0)
		return rc;
	r->len = (uint32_t)rc;
	s->negotiated = true;
	tp_info(s->dev->name, "client speaks vfio-user 0.%u (max_msg_fds %u, max_data_xfer %llu)",
		((const struct tp_vu_version *)m->payload)->minor, s->client.max_msg_fds,
		(unsigned long long)s->client.max_data_xfer);
	return 0;
}

static int h_dma_map(struct tp_session *s, struct tp_msg *m, struct reply *r)
{
	struct tp_vu_dma_map a;
	int fd = -1;

	memcpy(&a, m->payload, sizeof(a));
	if (a.argsz < sizeof(a))
		return -EINVAL;
	if (m->nfds) {
		fd = m->fds[0];
		m->fds[0] = -1;
		m->nfds = 0;
	}
	/* Sections without an fd (ROM, other devices' BARs) are recorded too:
	 * the client aborts the VM if a map fails at run time. */
	return tp_device_dma_map(s->dev, a.addr, a.size, fd, a.offset, a.flags);
}

static int h_dma_unmap(struct tp_session *s, struct tp_msg *m, struct reply *r)
{
	struct tp_vu_dma_unmap a;
	int rc;

	memcpy(&a, m->payload, sizeof(a));
	if (a.argsz < sizeof(a))
		return -EINVAL;
	if (a.flags & TP_VU_UNMAP_GET_DIRTY)
		return -ENOTSUP; /* no dirty tracking: no live migration */
	if (a.flags & ~(TP_VU_UNMAP_ALL))
		return -EINVAL;
	if ((a.flags & TP_VU_UNMAP_ALL) && (a.addr || a.size))
		return -EINVAL;
	rc = tp_device_dma_unmap(s->dev, a.addr, a.size, a.flags & TP_VU_UNMAP_ALL);
	if (rc)
		return rc;
	a.argsz = sizeof(a);
	memcpy(r->buf, &a, sizeof(a));
	r->len = sizeof(a);
	return 0;
}

static int h_get_info(struct tp_session *s, struct tp_msg *m, struct reply *r)
{
	struct tp_vu_device_info a;

	memcpy(&a, m->payload, sizeof(a));
	if (a.argsz < sizeof(a))
		return -EINVAL;
	a = (struct tp_vu_device_info){
		.argsz = sizeof(a),
		.flags = TP_VU_DEV_PCI | (s->dev->be->ops->reset ? TP_VU_DEV_RESET : 0),
		.num_regions = TP_REGION_COUNT,
		.num_irqs = TP_IRQ_INDEX_COUNT,
	};
	memcpy(r->buf, &a, sizeof(a));
	r->len = sizeof(a);
	return 0;
}

static int h_region_info(struct tp_session *s, struct tp_msg *m, struct reply *r)
{
	struct tp_vu_region_info a;
	int n;

	memcpy(&a, m->payload, sizeof(a));
	if (a.argsz < sizeof(a) || a.index >= TP_REGION_COUNT)
		return -EINVAL;
	n = tp_regions_info(s->dev, a.index, a.argsz, r->buf, r->max, &r->fd);
	if (n < 0)
		return n;
	r->len = (uint32_t)n;
	return 0;
}

static int h_irq_info(struct tp_session *s, struct tp_msg *m, struct reply *r)
{
	struct tp_vu_irq_info a;

	memcpy(&a, m->payload, sizeof(a));
	if (a.argsz < sizeof(a) || a.index >= TP_IRQ_INDEX_COUNT)
		return -EINVAL;
	a.argsz = sizeof(a);
	a.count = s->dev->irqs.idx[a.index].count;
	a.flags = a.count ? tp_irqs_info_flags(a.index) : 0;
	memcpy(r->buf, &a, sizeof(a));
	r->len = sizeof(a);
	return 0;
}

/*
 * A backend that signals the client's eventfds itself (kernel VFIO) hears of
 * every change the core validated and recorded: eventfds (the core's own, now
 * in irqs), an index disabled, an INTx mask or unmask. -EOPNOTSUPP: the core
 * routes that index itself.
 */
static int set_irqs_backend(struct tp_device *d, const struct tp_vu_irq_set *a,
			    const uint8_t *data, uint32_t data_len)
{
	const struct tp_backend_ops *ops = d->be->ops;
	uint32_t dtype = a->flags & TP_VU_IRQ_DATA_TYPES, act = a->flags & TP_VU_IRQ_ACTIONS;
	int rc = -EOPNOTSUPP;

	if (act == TP_VU_IRQ_ACTION_TRIGGER && dtype == TP_VU_IRQ_DATA_EVENTFD && ops->irq_set)
		rc = ops->irq_set(d->be, a->index, a->start, a->count,
				  d->irqs.idx[a->index].fds + a->start);
	else if (act == TP_VU_IRQ_ACTION_TRIGGER && !a->count && ops->irq_set)
		rc = ops->irq_set(d->be, a->index, 0, 0, NULL);
	else if (act != TP_VU_IRQ_ACTION_TRIGGER && ops->irq_mask &&
		 (dtype == TP_VU_IRQ_DATA_NONE || (data_len && data[0])))
		rc = ops->irq_mask(d->be, a->index, a->start, a->count,
				   act == TP_VU_IRQ_ACTION_MASK);
	return rc == -EOPNOTSUPP ? 0 : rc;
}

static int h_set_irqs(struct tp_session *s, struct tp_msg *m, struct reply *r)
{
	struct tp_vu_irq_set a;
	unsigned nfds = m->nfds;
	uint32_t data_len;
	int rc;

	memcpy(&a, m->payload, sizeof(a));
	if (a.argsz < sizeof(a))
		return -EINVAL;
	/* DATA_BOOL bytes: what both argsz and the message really carry. */
	data_len = TP_MIN(a.argsz, m->len) - (uint32_t)sizeof(a);
	m->nfds = 0; /* tp_irqs_set owns them now */
	rc = tp_irqs_set(&s->dev->irqs, &a, m->payload + sizeof(a), data_len, m->fds, nfds);
	return rc ? rc : set_irqs_backend(s->dev, &a, m->payload + sizeof(a), data_len);
}

static int h_region_read(struct tp_session *s, struct tp_msg *m, struct reply *r)
{
	struct tp_vu_region_rw a;
	int rc;

	memcpy(&a, m->payload, sizeof(a));
	if (a.count > TP_VU_MAX_DATA_XFER || sizeof(a) + a.count > r->max)
		return -E2BIG;
	rc = tp_device_region_read(s->dev, a.region, a.offset, r->buf + sizeof(a), a.count);
	if (rc)
		return rc;
	memcpy(r->buf, &a, sizeof(a));
	r->len = (uint32_t)sizeof(a) + a.count;
	return 0;
}

static int h_region_write(struct tp_session *s, struct tp_msg *m, struct reply *r)
{
	struct tp_vu_region_rw a;
	int rc;

	memcpy(&a, m->payload, sizeof(a));
	if (a.count > TP_VU_MAX_DATA_XFER)
		return -E2BIG; /* what we announced, whatever the framing allows */
	if (a.count != m->len - sizeof(a))
		return -EINVAL;
	rc = tp_device_region_write(s->dev, a.region, a.offset, m->payload + sizeof(a), a.count,
				    m->hdr.flags & TP_VU_NO_REPLY);
	if (rc)
		return rc;
	memcpy(r->buf, &a, sizeof(a));
	r->len = sizeof(a);
	return 0;
}

static int h_write_multi(struct tp_session *s, struct tp_msg *m, struct reply *r)
{
	struct tp_vu_write_multi a;
	int first_rc = 0;

	memcpy(&a, m->payload, sizeof(a));
	if (a.count > TP_VU_MULTI_MAX ||
	    m->len != sizeof(a) + a.count * sizeof(struct tp_vu_write_one))
		return -EINVAL;
	for (uint64_t i = 0; i < a.count; i++) {
		struct tp_vu_write_one w;
		int rc;

		memcpy(&w, m->payload + sizeof(a) + i * sizeof(w), sizeof(w));
		rc = w.count > TP_VU_MULTI_DATA ? -EINVAL
						: tp_device_region_write(s->dev, w.region, w.offset,
									 w.data, w.count, true);
		if (rc && !first_rc)
			first_rc = rc;
	}
	return first_rc;
}

static int h_reset(struct tp_session *s, struct tp_msg *m, struct reply *r)
{
	return tp_device_reset(s->dev);
}

static int h_unsupported(struct tp_session *s, struct tp_msg *m, struct reply *r)
{
	return -ENOTSUP;
}

static const struct command commands[TP_VU_CMD_MAX] = {
	[TP_VU_VERSION] = { "VERSION", sizeof(struct tp_vu_version), 0, h_version },
	[TP_VU_DMA_MAP] = { "DMA_MAP", sizeof(struct tp_vu_dma_map), 1, h_dma_map },
	[TP_VU_DMA_UNMAP] = { "DMA_UNMAP", sizeof(struct tp_vu_dma_unmap), 0, h_dma_unmap },
	[TP_VU_DEVICE_GET_INFO] = { "DEVICE_GET_INFO", sizeof(struct tp_vu_device_info), 0,
				    h_get_info },
	[TP_VU_DEVICE_GET_REGION_INFO] = { "DEVICE_GET_REGION_INFO",
					   sizeof(struct tp_vu_region_info), 0, h_region_info },
	[TP_VU_DEVICE_GET_REGION_IO_FDS] = { "DEVICE_GET_REGION_IO_FDS", 0, 0, h_unsupported },
	[TP_VU_DEVICE_GET_IRQ_INFO] = { "DEVICE_GET_IRQ_INFO", sizeof(struct tp_vu_irq_info), 0,
					h_irq_info },
	[TP_VU_DEVICE_SET_IRQS] = { "DEVICE_SET_IRQS", sizeof(struct tp_vu_irq_set),
				    TP_VU_MAX_MSG_FDS, h_set_irqs },
	[TP_VU_REGION_READ] = { "REGION_READ", sizeof(struct tp_vu_region_rw), 0, h_region_read },
	[TP_VU_REGION_WRITE] = { "REGION_WRITE", sizeof(struct tp_vu_region_rw), 0,
				 h_region_write },
	[TP_VU_DEVICE_RESET] = { "DEVICE_RESET", 0, 0, h_reset },
	[TP_VU_DIRTY_PAGES] = { "DIRTY_PAGES", 0, 0, h_unsupported },
	[TP_VU_REGION_WRITE_MULTI] = { "REGION_WRITE_MULTI", sizeof(struct tp_vu_write_multi), 0,
				       h_write_multi },
};

int tp_session_init(struct tp_session *s, struct tp_device *dev, tp_send_fn send, void *ctx)
{
	memset(s, 0, sizeof(*s));
	s->dev = dev;
	s->send = send;
	s->send_ctx = ctx;
	s->reply = tp_malloc(TP_VU_MAX_MSG);
	return s->reply ? 0 : -ENOMEM;
}

void tp_session_fini(struct tp_session *s)
{
	free(s->reply);
	s->reply = NULL;
}

/* Checks every command shares; returns the table row or an errno. */
static int check_msg(struct tp_session *s, const struct tp_msg *m, const struct command **out)
{
	const struct command *c;

	switch (m->fault) {
	case TP_MSG_OVERSIZED:
		return -E2BIG;
	case TP_MSG_UNDERSIZED:
	case TP_MSG_FDS_LOST:
		return -EINVAL;
	case TP_MSG_OK:
		break;
	}
	if (m->hdr.command >= TP_VU_CMD_MAX || !commands[m->hdr.command].fn)
		return m->hdr.command == TP_VU_DMA_READ || m->hdr.command == TP_VU_DMA_WRITE
			       ? -EINVAL /* server-to-client commands */
			       : -ENOSYS;
	c = &commands[m->hdr.command];
	if (!s->negotiated && m->hdr.command != TP_VU_VERSION)
		return -EINVAL;
	if (m->len < c->min_len || m->nfds > c->max_fds)
		return -EINVAL;
	*out = c;
	return 0;
}

int tp_session_handle(struct tp_session *s, struct tp_msg *m)
{
	const struct command *c = NULL;
	struct reply r = { .buf = s->reply, .fd = -1 };
	struct tp_vu_hdr h;
	bool no_reply = m->hdr.flags & TP_VU_NO_REPLY;
	int rc;

	s->msgs++;
	if ((m->hdr.flags & TP_VU_TYPE_MASK) != TP_VU_TYPE_COMMAND) {
		/* We sent no request, so a reply answers nothing: drop it. */
		if (warn_ok(s))
			tp_warn(s->dev->name, "unexpected reply (id %u): ignored", m->hdr.msg_id);
		tp_msg_close_fds(m);
		return 0;
	}
	/* The client's buffer for our reply is its request's size (QEMU). */
	r.max = TP_MIN(TP_MAX(m->hdr.size, (uint32_t)sizeof(h)) - (uint32_t)sizeof(h),
		       (uint32_t)TP_VU_MAX_MSG - (uint32_t)sizeof(h));
	if (m->hdr.command == TP_VU_REGION_READ || m->hdr.command == TP_VU_DEVICE_GET_REGION_INFO)
		r.max = TP_VU_MAX_MSG - (uint32_t)sizeof(h); /* these are asked with room */
	rc = check_msg(s, m, &c);
	if (!rc)
		rc = c->fn(s, m, &r);
	tp_msg_close_fds(m);
	if (rc) {
		s->errors++;
		if (warn_ok(s))
			tp_warn(s->dev->name, "%s (id %u, %u bytes): %s",
				c ? c->name : "message", m->hdr.msg_id, m->hdr.size, strerror(-rc));
	}
	if (no_reply) {
		if (rc)
			s->posted_errors++;
		return 0;
	}
	h = (struct tp_vu_hdr){
		.msg_id = m->hdr.msg_id,
		.command = m->hdr.command,
		.size = (uint32_t)sizeof(h) + (rc ? 0 : r.len),
		.flags = TP_VU_TYPE_REPLY | (rc ? TP_VU_ERROR : 0),
		.error = rc ? (uint32_t)-rc : 0,
	};
	return s->send(s->send_ctx, &h, r.buf, rc ? 0 : r.len, &r.fd, !rc && r.fd >= 0 ? 1 : 0);
}
