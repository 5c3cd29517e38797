/* SPDX-License-Identifier: MIT */
#include "client.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "transport.h"
#include "util.h"

/* QEMU 10.2's VERSION capabilities, byte for byte in meaning. */
#define QEMU_CAPS                                                                    \
	"{\"capabilities\":{\"migration\":{\"pgsize\":4096,\"max_bitmap_size\":268435456}," \
	"\"max_msg_fds\":16,\"max_data_xfer_size\":1048576,\"pgsizes\":4096,"          \
	"\"max_dma_maps\":65535,\"write_multiple\":true}}"

int tp_client_connect(struct tp_client *c, const char *path, int timeout_ms)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	memset(c, 0, sizeof(*c));
	c->timeout_ms = timeout_ms > 0 ? timeout_ms : 5000;
	c->max_msg_fds = 1;
	c->max_data_xfer = TP_VU_MAX_DATA_XFER;
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -errno;
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int rc = -errno;

		close(c->fd);
		c->fd = -1;
		return rc;
	}
	return 0;
}

void tp_client_close(struct tp_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

int tp_client_send_raw(struct tp_client *c, const void *buf, uint32_t len, const int *fds,
		       unsigned nfds)
{
	return tp_sock_send_all(c->fd, buf, len, fds, nfds);
}

static int drop_bytes(struct tp_client *c, uint32_t n)
{
	uint8_t junk[4096];

	while (n) {
		uint32_t k = TP_MIN(n, (uint32_t)sizeof(junk));
		int rc = tp_sock_recv_all(c->fd, junk, k, NULL, NULL, c->timeout_ms);

		if (rc)
			return rc;
		n -= k;
	}
	return 0;
}

int tp_client_recv(struct tp_client *c, struct tp_client_reply *r)
{
	unsigned nfds = TP_ARRAY_SIZE(r->fds);
	uint32_t body, keep;
	int rc;

	r->nfds = 0;
	r->len = 0;
	rc = tp_sock_recv_all(c->fd, &r->hdr, sizeof(r->hdr), r->fds, &nfds, c->timeout_ms);
	if (rc)
		return rc;
	r->nfds = nfds;
	if (r->hdr.size < sizeof(r->hdr) || r->hdr.size > TP_VU_MAX_MSG)
		return -EPROTO;
	body = r->hdr.size - (uint32_t)sizeof(r->hdr);
	keep = TP_MIN(body, r->cap);
	if (keep) {
		rc = tp_sock_recv_all(c->fd, r->data, keep, NULL, NULL, c->timeout_ms);
		if (rc)
			return rc;
	}
	r->len = keep;
	return drop_bytes(c, body - keep);
}

static void fill_hdr(struct tp_client *c, struct tp_vu_hdr *h, uint16_t cmd, uint32_t len,
		     uint32_t flags)
{
	*h = (struct tp_vu_hdr){
		.msg_id = c->next_id++,
		.command = cmd,
		.size = (uint32_t)sizeof(*h) + len,
		.flags = TP_VU_TYPE_COMMAND | flags,
	};
}

static int send_msg(struct tp_client *c, const struct tp_vu_hdr *h, const void *payload,
		    uint32_t len, const int *fds, unsigned nfds)
{
	uint8_t *buf = malloc(sizeof(*h) + len);
	int rc;

	if (!buf)
		return -ENOMEM;
	memcpy(buf, h, sizeof(*h));
	if (len)
		memcpy(buf + sizeof(*h), payload, len);
	rc = tp_sock_send_all(c->fd, buf, sizeof(*h) + len, fds, nfds);
	free(buf);
	return rc;
}

int tp_client_call(struct tp_client *c, uint16_t cmd, const void *payload, uint32_t len,
		   const int *fds, unsigned nfds, struct tp_client_reply *r)
{
	struct tp_vu_hdr h;
	int rc;

	fill_hdr(c, &h, cmd, len, 0);
	rc = send_msg(c, &h, payload, len, fds, nfds);
	if (rc)
		return rc;
	rc = tp_client_recv(c, r);
	if (rc)
		return rc;
	if (r->hdr.msg_id != h.msg_id || (r->hdr.flags & TP_VU_TYPE_MASK) != TP_VU_TYPE_REPLY)
		return -EPROTO;
	if (r->hdr.flags & TP_VU_ERROR)
		return r->hdr.error ? -(int)r->hdr.error : -EIO;
	return 0;
}

int tp_client_post(struct tp_client *c, uint16_t cmd, const void *payload, uint32_t len)
{
	struct tp_vu_hdr h;

	fill_hdr(c, &h, cmd, len, TP_VU_NO_REPLY);
	return send_msg(c, &h, payload, len, NULL, 0);
}

int tp_client_version(struct tp_client *c, const char *caps_json)
{
	const char *caps = caps_json ? caps_json : QEMU_CAPS;
	uint32_t len = (uint32_t)(sizeof(struct tp_vu_version) + strlen(caps) + 1);
	uint8_t req[1024], rep[1024];
	struct tp_vu_version v = { .major = TP_VU_MAJOR, .minor = TP_VU_MINOR };
	struct tp_client_reply r = { .data = rep, .cap = sizeof(rep) - 1 };
	int rc;

	if (len > sizeof(req))
		return -E2BIG;
	memcpy(req, &v, sizeof(v));
	memcpy(req + sizeof(v), caps, strlen(caps) + 1);
	rc = tp_client_call(c, TP_VU_VERSION, req, len, NULL, 0, &r);
	if (rc)
		return rc;
	if (r.len < sizeof(v))
		return -EPROTO;
	rep[r.len] = '\0';
	/* The few numbers we need, without a JSON parser on this side. */
	{
		const char *p = strstr((char *)rep + sizeof(v), "\"max_msg_fds\":");
		const char *q = strstr((char *)rep + sizeof(v), "\"max_data_xfer_size\":");

		if (p)
			c->max_msg_fds = (uint32_t)strtoul(p + 14, NULL, 10);
		if (q)
			c->max_data_xfer = strtoull(q + 21, NULL, 10);
	}
	return 0;
}

int tp_client_region_read(struct tp_client *c, uint32_t region, uint64_t off, void *buf,
			  uint32_t count)
{
	struct tp_vu_region_rw a = { .offset = off, .region = region, .count = count };
	uint8_t *rep = malloc(sizeof(a) + count);
	struct tp_client_reply r = { .data = rep, .cap = (uint32_t)sizeof(a) + count };
	int rc;

	if (!rep)
		return -ENOMEM;
	rc = tp_client_call(c, TP_VU_REGION_READ, &a, sizeof(a), NULL, 0, &r);
	if (!rc && r.len != sizeof(a) + count)
		rc = -EPROTO;
	if (!rc)
		memcpy(buf, rep + sizeof(a), count);
	free(rep);
	return rc;
}

int tp_client_region_write(struct tp_client *c, uint32_t region, uint64_t off,
			   const void *buf, uint32_t count, bool posted)
{
	struct tp_vu_region_rw a = { .offset = off, .region = region, .count = count };
	uint8_t *req = malloc(sizeof(a) + count), rep[sizeof(a)];
	struct tp_client_reply r = { .data = rep, .cap = sizeof(rep) };
	int rc;

	if (!req)
		return -ENOMEM;
	memcpy(req, &a, sizeof(a));
	memcpy(req + sizeof(a), buf, count);
	rc = posted ? tp_client_post(c, TP_VU_REGION_WRITE, req, (uint32_t)sizeof(a) + count)
		    : tp_client_call(c, TP_VU_REGION_WRITE, req, (uint32_t)sizeof(a) + count,
				     NULL, 0, &r);
	free(req);
	return rc;
}

int tp_client_region_info(struct tp_client *c, uint32_t index, struct tp_vu_region_info *info,
			  uint8_t *caps, uint32_t caps_cap, int *fd)
{
	uint32_t argsz = sizeof(*info);
	uint8_t rep[4096];
	int rc;

	*fd = -1;
	for (int tries = 0; tries < 2; tries++) {
		struct tp_vu_region_info req = { .argsz = argsz, .index = index };
		struct tp_client_reply r = { .data = rep, .cap = TP_MIN(argsz, (uint32_t)sizeof(rep)) };

		rc = tp_client_call(c, TP_VU_DEVICE_GET_REGION_INFO, &req, sizeof(req), NULL, 0, &r);
		if (rc)
			return rc;
		if (r.len < sizeof(*info))
			return -EPROTO;
		memcpy(info, rep, sizeof(*info));
		if (info->argsz <= argsz) {
			if (r.nfds)
				*fd = r.fds[0];
			for (unsigned i = 1; i < r.nfds; i++)
				close(r.fds[i]);
			if (caps && r.len > sizeof(*info))
				memcpy(caps, rep + sizeof(*info),
				       TP_MIN(r.len - (uint32_t)sizeof(*info), caps_cap));
			return 0;
		}
		for (unsigned i = 0; i < r.nfds; i++)
			close(r.fds[i]);
		argsz = info->argsz;
	}
	return -EPROTO;
}
