/* SPDX-License-Identifier: MIT */
/*
 * The stats control socket (control.h). One snapshot per connection, written
 * whole and then the connection closed: no per-client state in the server,
 * and nothing a client sends is ever read, so the socket cannot be used to
 * change anything.
 */
#include "control.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <json-c/json.h>

#include <thunderpass/log.h>

#include "transport.h"
#include "util.h"

/* A client that does not read its snapshot may hold the loop this long. */
#define SEND_TIMEOUT_MS 200
#define MAX_VECTORS_SHOWN TP_IRQ_MAX_VECTORS

struct tp_control {
	char *path;
	int fd;
	const char *who;
};

static const char *const region_names[TP_REGION_COUNT] = {
	"BAR0", "BAR1", "BAR2", "BAR3", "BAR4", "BAR5", "ROM", "config", "VGA",
};

static const char *const irq_names[TP_IRQ_INDEX_COUNT] = { "intx", "msi", "msix", "err", "req" };

int tp_control_open(const char *main_path, mode_t mode, const char *who, struct tp_control **out)
{
	struct sockaddr_un sa;
	struct tp_control *c;
	size_t n = strlen(main_path) + sizeof(TP_CONTROL_SUFFIX);
	int fd;

	*out = NULL;
	if (n > sizeof(sa.sun_path)) {
		tp_warn(who,
			"no stats socket: %s%s is too long for a UNIX socket; "
			"`thunderpass stats` will not reach this server",
			main_path, TP_CONTROL_SUFFIX);
		return -ENAMETOOLONG;
	}
	c = calloc(1, sizeof(*c));
	if (!c || !(c->path = malloc(n))) {
		free(c);
		tp_err(who, "no memory for the stats socket");
		return -ENOMEM;
	}
	snprintf(c->path, n, "%s%s", main_path, TP_CONTROL_SUFFIX);
	c->who = who;
	fd = tp_listen_unix(c->path, mode, who);
	if (fd < 0) {
		free(c->path);
		free(c);
		return fd;
	}
	c->fd = fd;
	tp_info(who, "stats on %s (thunderpass stats %s)", c->path, main_path);
	*out = c;
	return 0;
}

int tp_control_fd(const struct tp_control *c)
{
	return c ? c->fd : -1;
}

void tp_control_close(struct tp_control *c)
{
	if (!c)
		return;
	close(c->fd);
	unlink(c->path);
	free(c->path);
	free(c);
}

/* ---- the snapshot ----------------------------------------------------------- */

static void add_u64(json_object *o, const char *key, uint64_t v)
{
	json_object_object_add(o, key,
			       json_object_new_int64((int64_t)TP_MIN(v, (uint64_t)INT64_MAX)));
}

static json_object *regions_json(const struct tp_device *d)
{
	json_object *a = json_object_new_array();

	for (uint32_t i = 0; i < TP_REGION_COUNT; i++) {
		const struct tp_region *r = &d->regions[i];
		const struct tp_region_stats *st = &r->st;
		uint64_t mappable = 0;
		json_object *o;

		if (!r->d.size)
			continue;
		for (uint32_t k = 0; k < r->nr_areas; k++)
			mappable += r->areas[k].size;
		o = json_object_new_object();
		json_object_object_add(o, "index", json_object_new_int((int)i));
		json_object_object_add(o, "name", json_object_new_string(region_names[i]));
		add_u64(o, "size", r->d.size);
		json_object_object_add(o, "mappable_areas", json_object_new_int((int)r->nr_areas));
		add_u64(o, "mappable_bytes", mappable);
		add_u64(o, "trapped_reads", st->reads);
		add_u64(o, "trapped_writes", st->writes);
		add_u64(o, "posted_writes", st->posted);
		add_u64(o, "waited_writes", st->writes - st->posted);
		add_u64(o, "read_bytes", st->read_bytes);
		add_u64(o, "write_bytes", st->write_bytes);
		add_u64(o, "errors", st->errors);
		json_object_array_add(a, o);
	}
	return a;
}

static json_object *irqs_json(struct tp_device *d)
{
	json_object *o = json_object_new_object();
	uint64_t *raised = calloc(MAX_VECTORS_SHOWN, sizeof(*raised));
	uint64_t dropped;

	for (uint32_t i = 0; raised && i < TP_IRQ_INDEX_COUNT; i++) {
		json_object *x = json_object_new_object(), *v = json_object_new_array();
		uint32_t live, n = tp_irqs_stats(&d->irqs, i, raised, MAX_VECTORS_SHOWN, &live);
		uint64_t total = 0;

		for (uint32_t k = 0; k < n; k++) {
			total += raised[k];
			json_object_array_add(v, json_object_new_int64((int64_t)raised[k]));
		}
		json_object_object_add(x, "vectors", json_object_new_int((int)n));
		json_object_object_add(x, "live", json_object_new_int((int)live));
		add_u64(x, "total", total);
		json_object_object_add(x, "raised", v);
		json_object_object_add(o, irq_names[i], x);
	}
	free(raised);
	pthread_mutex_lock(&d->irqs.lock);
	dropped = d->irqs.dropped;
	pthread_mutex_unlock(&d->irqs.lock);
	add_u64(o, "dropped", dropped);
	return o;
}

char *tp_control_snapshot(const struct tp_control_state *st)
{
	struct tp_device *d = st->dev;
	json_object *o = json_object_new_object(), *x;
	uint64_t now = tp_now_ns(), faults;
	char id[16];
	char *text;

	json_object_object_add(o, "schema", json_object_new_string("thunderpass-stats/1"));
	json_object_object_add(o, "version", json_object_new_string(TP_VERSION));
	json_object_object_add(o, "pid", json_object_new_int((int)getpid()));
	json_object_object_add(o, "device", json_object_new_string(d->name));
	snprintf(id, sizeof(id), "%04x:%04x", d->vendor, d->device);
	json_object_object_add(o, "vendor_device", json_object_new_string(id));
	json_object_object_add(o, "socket", json_object_new_string(st->socket_path));
	add_u64(o, "time_ns", now);
	add_u64(o, "uptime_ms", (now - st->started_ns) / 1000000ull);
	json_object_object_add(o, "sessions_ended", json_object_new_int((int)st->sessions));
	x = json_object_new_object();
	json_object_object_add(x, "connected", json_object_new_boolean(st->have_client));
	if (st->have_client) {
		json_object_object_add(x, "pid", json_object_new_int((int)st->client_pid));
		add_u64(x, "since_ms", (now - st->client_since_ns) / 1000000ull);
	}
	json_object_object_add(o, "client", x);
	json_object_object_add(o, "regions", regions_json(d));
	add_u64(o, "config_reads", d->config_reads);
	add_u64(o, "config_writes", d->config_writes);
	add_u64(o, "config_filtered_write_bytes", d->cfg.filtered_writes);
	x = json_object_new_object();
	json_object_object_add(x, "maps_live", json_object_new_int((int)d->dma.n));
	add_u64(x, "bytes_mapped", d->dma.bytes);
	add_u64(x, "maps", d->dma.maps);
	add_u64(x, "unmaps", d->dma.unmaps);
	json_object_object_add(o, "dma", x);
	pthread_mutex_lock(&d->fault_lock);
	faults = d->dma_faults;
	pthread_mutex_unlock(&d->fault_lock);
	x = json_object_new_object();
	json_object_object_add(x, "model", json_object_new_string(d->iommu->ops->name));
	add_u64(x, "faults", faults);
	add_u64(x, "maps_live", d->iommu->st.live);
	add_u64(x, "bytes_mapped", d->iommu->st.bytes);
	add_u64(x, "refused", d->iommu->st.refused);
	json_object_object_add(o, "iommu", x);
	json_object_object_add(o, "irqs", irqs_json(d));
	add_u64(o, "resets", d->resets);
	text = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
								JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return text;
}

/* ---- serving ---------------------------------------------------------------- */

static bool peer_ok(const struct tp_control_state *st, int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (!st->restrict_uid)
		return true;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return false;
	return cred.uid == st->allow_uid || cred.uid == 0;
}

/* Writes all of text; gives up after SEND_TIMEOUT_MS of a full socket. */
static void send_text(int fd, const char *text, size_t len)
{
	uint64_t end = tp_now_ns() + SEND_TIMEOUT_MS * 1000000ull;

	while (len) {
		ssize_t n = send(fd, text, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		uint64_t now;

		if (n > 0) {
			text += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return;
		now = tp_now_ns();
		if (now >= end || poll(&p, 1, (int)((end - now) / 1000000ull) + 1) <= 0)
			return;
	}
}

void tp_control_serve(struct tp_control *c, const struct tp_control_state *st)
{
	for (;;) {
		int fd = accept4(c->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		char *text;

		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				tp_warn(c->who, "stats socket: accept: %s", strerror(errno));
			return;
		}
		if (!peer_ok(st, fd)) {
			close(fd);
			continue;
		}
		text = tp_control_snapshot(st);
		if (text) {
			send_text(fd, text, strlen(text));
			send_text(fd, "\n", 1);
		}
		free(text);
		close(fd);
	}
}
