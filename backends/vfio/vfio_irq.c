/* SPDX-License-Identifier: MIT */
/*
 * Interrupts and reset of a vfio-pci device.
 *
 * Interrupts: the client's eventfds go to the kernel as they are
 * (VFIO_DEVICE_SET_IRQS, DATA_EVENTFD), so a device interrupt signals the
 * client's eventfd from the kernel's handler: no thread, no copy through the
 * server. The kernel runs one of INTx, MSI and MSI-X at a time and (before
 * Linux 6.5) cannot add MSI-X vectors to a running set (NORESIZE): a vector
 * beyond the enabled ones re-enables the whole index with every eventfd
 * known, as QEMU does for kernel VFIO. INTx is automasked by the kernel; the
 * client's UNMASK (irq_mask) unmasks it there.
 *
 * Reset: VFIO_DEVICE_RESET where the kernel has a method (FLR, PM reset, or
 * a bus reset when the device is alone on its bus), else a hot reset of the
 * bus when every function it would reset is ours: in our group (the group
 * path proves it with the group's fd), or owned by our iommufd (the cdev
 * path: the kernel checks it, the fd array is empty). Interrupts are
 * disabled first: a reset clears the device's MSI/MSI-X enables, and QEMU
 * disables and re-enables them around its DEVICE_RESET anyway.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <thunderpass/log.h>

#include "util.h"
#include "vfio.h"
#include "vfio_uapi.h"

#define VFIO_MAX_VECTORS 2048u
#define MAX_HOT_RESET_DEVICES 64u

static const char *const irq_names[TP_IRQ_INDEX_COUNT] = { "INTx", "MSI", "MSI-X", "ERR",
							    "REQ" };

/* The most vectors each index can have (PCI: one INTx pin, 32 MSI). */
static const uint32_t irq_max[TP_IRQ_INDEX_COUNT] = { 1, 32, VFIO_MAX_VECTORS, 1, 1 };

int vfio_irqs_probe(struct vfio_dev *v)
{
	uint32_t most = 1;

	for (uint32_t i = 0; i < TP_IRQ_INDEX_COUNT; i++) {
		struct vfio_irq_info info = { .argsz = sizeof(info), .index = i };
		struct vfio_irq *q = &v->irqs[i];

		q->fds = NULL;
		q->count = q->flags = q->live = 0;
		if (i >= v->num_irqs)
			continue;
		if (ioctl(v->device, VFIO_DEVICE_GET_IRQ_INFO, &info) < 0) {
			int rc = -errno;

			/* ERR exists for PCIe functions only; vfio-pci says EINVAL. */
			if (rc == -EINVAL) {
				tp_dbg(v->be.name, "%s: not offered by the kernel", irq_names[i]);
				continue;
			}
			tp_err(v->be.name, "%s: VFIO_DEVICE_GET_IRQ_INFO: %s", irq_names[i],
			       strerror(-rc));
			return rc;
		}
		if (info.index != i || info.count > irq_max[i]) {
			tp_err(v->be.name, "%s: the kernel says %u vectors (at most %u)",
			       irq_names[i], info.count, irq_max[i]);
			return -EPROTO;
		}
		if (!info.count)
			continue;
		if (!(info.flags & VFIO_IRQ_INFO_EVENTFD)) {
			tp_warn(v->be.name, "%s: no eventfd signalling: not offered", irq_names[i]);
			continue;
		}
		q->count = info.count;
		q->flags = info.flags;
		q->fds = malloc(q->count * sizeof(int));
		if (!q->fds) {
			tp_err(v->be.name, "out of memory");
			return -ENOMEM;
		}
		for (uint32_t k = 0; k < q->count; k++)
			q->fds[k] = -1;
		most = TP_MAX(most, q->count);
	}
	v->irq_buf_len = sizeof(struct vfio_irq_set) + most * sizeof(int32_t);
	v->irq_buf = calloc(1, v->irq_buf_len);
	if (!v->irq_buf) {
		tp_err(v->be.name, "out of memory");
		return -ENOMEM;
	}
	tp_info(v->be.name, "interrupts: INTx %u, MSI %u, MSI-X %u, ERR %u, REQ %u (to the "
		"client's eventfds through the kernel)", v->irqs[0].count, v->irqs[1].count,
		v->irqs[2].count, v->irqs[3].count, v->irqs[4].count);
	return 0;
}

void vfio_irqs_free(struct vfio_dev *v)
{
	for (uint32_t i = 0; i < TP_IRQ_INDEX_COUNT; i++) {
		free(v->irqs[i].fds);
		v->irqs[i].fds = NULL;
	}
	free(v->irq_buf);
	v->irq_buf = NULL;
}

/* One VFIO_DEVICE_SET_IRQS; fds (count of them) only with DATA_EVENTFD. */
static int set_irqs(struct vfio_dev *v, uint32_t index, uint32_t flags, uint32_t start,
		    uint32_t count, const int *fds)
{
	struct vfio_irq_set s = {
		.argsz = sizeof(s),
		.flags = flags,
		.index = index,
		.start = start,
		.count = count,
	};

	if (fds) {
		size_t need = sizeof(s) + (size_t)count * sizeof(int32_t);

		if (need > v->irq_buf_len)
			return -E2BIG;
		s.argsz = (uint32_t)need;
		for (uint32_t i = 0; i < count; i++) {
			int32_t fd = fds[i];

			memcpy(v->irq_buf + sizeof(s) + i * sizeof(fd), &fd, sizeof(fd));
		}
	}
	memcpy(v->irq_buf, &s, sizeof(s));
	return ioctl(v->device, VFIO_DEVICE_SET_IRQS, v->irq_buf) < 0 ? -errno : 0;
}

/* Turns index off in the kernel (if it is on). */
static int disable_index(struct vfio_dev *v, uint32_t index)
{
	struct vfio_irq *q = &v->irqs[index];
	int rc;

	if (!q->live)
		return 0;
	rc = set_irqs(v, index, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, 0, 0, NULL);
	if (rc)
		tp_warn(v->be.name, "%s: cannot disable: %s", irq_names[index], strerror(-rc));
	q->live = 0;
	return rc;
}

void vfio_irqs_disable_all(struct vfio_dev *v)
{
	for (uint32_t i = 0; i < TP_IRQ_INDEX_COUNT; i++) {
		disable_index(v, i);
		for (uint32_t k = 0; k < v->irqs[i].count; k++)
			v->irqs[i].fds[k] = -1;
	}
}

int vfio_irq_count(struct tp_backend *be, uint32_t index, uint32_t *count)
{
	struct vfio_dev *v = vfio_of(be);

	if (!count || index >= TP_IRQ_INDEX_COUNT) {
		tp_err(be->name, "irq index %u: no such index", index);
		return -EINVAL;
	}
	*count = v->irqs[index].count;
	return 0;
}

static bool exclusive(uint32_t index)
{
	return index == TP_IRQ_INTX || index == TP_IRQ_MSI || index == TP_IRQ_MSIX;
}

int vfio_irq_set(struct tp_backend *be, uint32_t index, uint32_t start, uint32_t count,
		 const int *fds)
{
	struct vfio_dev *v = vfio_of(be);
	struct vfio_irq *q;
	uint32_t want = 0;
	int rc;

	if (index >= TP_IRQ_INDEX_COUNT || !v->irqs[index].count) {
		tp_err(be->name, "SET_IRQS: index %u has no vectors", index);
		return -EINVAL;
	}
	q = &v->irqs[index];
	if (!count) {
		for (uint32_t k = 0; k < q->count; k++)
			q->fds[k] = -1;
		return disable_index(v, index);
	}
	if (!fds || start >= q->count || count > q->count - start) {
		tp_err(be->name, "SET_IRQS %s: vectors %u+%u of %u", irq_names[index], start, count,
		       q->count);
		return -EINVAL;
	}
	for (uint32_t i = 0; i < count; i++) {
		if (fds[i] < -1) {
			tp_err(be->name, "SET_IRQS %s: bad fd %d", irq_names[index], fds[i]);
			return -EBADF;
		}
		q->fds[start + i] = fds[i];
	}
	for (uint32_t k = 0; k < q->count; k++)
		if (q->fds[k] >= 0)
			want = k + 1;
	if (!want)
		return disable_index(v, index);
	if (q->live && want <= q->live) {
		/* Vectors within the running set: changed in place. */
		if (start >= q->live)
			return 0;
		rc = set_irqs(v, index, VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
			      start, TP_MIN(count, q->live - start), q->fds + start);
		if (rc)
			tp_err(be->name, "SET_IRQS %s vectors %u+%u: %s", irq_names[index], start,
			       count, strerror(-rc));
		return rc;
	}
	/* The kernel runs one of INTx/MSI/MSI-X: the client's latest choice
	 * wins (QEMU turns the others off first anyway). */
	if (exclusive(index))
		for (uint32_t i = TP_IRQ_INTX; i <= TP_IRQ_MSIX; i++)
			if (i != index && v->irqs[i].live) {
				tp_dbg(be->name, "%s replaces %s", irq_names[index], irq_names[i]);
				disable_index(v, i);
			}
	if (q->live)
		disable_index(v, index); /* NORESIZE: grow by re-enabling */
	rc = set_irqs(v, index, VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, 0, want,
		      q->fds);
	if (rc) {
		tp_err(be->name, "SET_IRQS %s: enabling %u vectors: %s", irq_names[index], want,
		       strerror(-rc));
		return rc;
	}
	q->live = want;
	tp_dbg(be->name, "%s: %u vectors on", irq_names[index], want);
	return 0;
}

int vfio_irq_mask(struct tp_backend *be, uint32_t index, uint32_t start, uint32_t count,
		  int masked)
{
	struct vfio_dev *v = vfio_of(be);
	struct vfio_irq *q;
	int rc;

	if (index >= TP_IRQ_INDEX_COUNT || !v->irqs[index].count) {
		tp_err(be->name, "%s: index %u has no vectors", masked ? "MASK" : "UNMASK", index);
		return -EINVAL;
	}
	q = &v->irqs[index];
	if (!(q->flags & VFIO_IRQ_INFO_MASKABLE))
		return -EOPNOTSUPP; /* the core keeps its own view */
	if (!q->live || start >= q->live || !count)
		return 0; /* nothing enabled there to (un)mask */
	rc = set_irqs(v, index,
		      VFIO_IRQ_SET_DATA_NONE |
			      (masked ? VFIO_IRQ_SET_ACTION_MASK : VFIO_IRQ_SET_ACTION_UNMASK),
		      start, TP_MIN(count, q->live - start), NULL);
	if (rc)
		tp_err(be->name, "%s %s: %s", masked ? "MASK" : "UNMASK", irq_names[index],
		       strerror(-rc));
	return rc;
}

/* ---- reset ------------------------------------------------------------------ */

/*
 * A cdev's INFO answer names devids (the first word of each entry): ours,
 * VFIO_PCI_DEVID_OWNED (in a group our iommufd holds) or NOT_OWNED, and
 * FLAG_DEV_ID_OWNED says every one is ours.
 */
static int hot_reset_owned_by_iommufd(const struct vfio_pci_hot_reset_info *info, char *other,
				      size_t olen)
{
	if (info->flags & VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED)
		return 0;
	snprintf(other, olen, "a function this iommufd does not own");
	for (uint32_t i = 0; i < info->count; i++) {
		const struct vfio_pci_dependent_device *d = &info->devices[i];

		if (d->group_id == (uint32_t)VFIO_PCI_DEVID_NOT_OWNED) {
			snprintf(other, olen, "%04x:%02x:%02x.%u (not owned by this iommufd)",
				 d->segment, d->bus, d->devfn >> 3, d->devfn & 7);
			break;
		}
	}
	return -EBUSY;
}

/*
 * The functions a bus reset would reach: 0 when all of them are ours (in
 * our group; through a cdev, owned by our iommufd), -EBUSY (with *other
 * set) when one is not, -ENODEV/-ENOTTY when the kernel has no bus reset
 * for this device.
 */
static int hot_reset_scope(struct vfio_dev *v, uint32_t *n, char *other, size_t olen)
{
	struct vfio_pci_hot_reset_info *info;
	size_t argsz = sizeof(*info);
	int rc = 0;

	*n = 0;
	for (int tries = 0; tries < 2; tries++) {
		info = calloc(1, argsz);
		if (!info)
			return -ENOMEM;
		info->argsz = (uint32_t)argsz;
		if (ioctl(v->device, VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, info) == 0)
			break;
		rc = -errno;
		if (rc != -ENOSPC || tries == 1 || info->count > MAX_HOT_RESET_DEVICES) {
			free(info);
			return rc == -ENOSPC ? -E2BIG : rc;
		}
		argsz = sizeof(*info) + info->count * sizeof(info->devices[0]);
		free(info);
		rc = 0;
	}
	if (info->count > (argsz - sizeof(*info)) / sizeof(info->devices[0])) {
		free(info);
		return -EPROTO;
	}
	*n = info->count;
	if (info->flags & VFIO_PCI_HOT_RESET_FLAG_DEV_ID) {
		rc = hot_reset_owned_by_iommufd(info, other, olen);
		free(info);
		return rc;
	}
	for (uint32_t i = 0; i < info->count; i++) {
		const struct vfio_pci_dependent_device *d = &info->devices[i];

		if (d->group_id != (uint32_t)v->group_id) {
			snprintf(other, olen, "%04x:%02x:%02x.%u (group %u)", d->segment, d->bus,
				 d->devfn >> 3, d->devfn & 7, d->group_id);
			rc = -EBUSY;
			break;
		}
	}
	free(info);
	return rc;
}

static int hot_reset(struct vfio_dev *v)
{
	/* The header and one group fd: ours; through a cdev, no fd (the kernel
	 * checks our iommufd's ownership itself). */
	uint8_t buf[sizeof(struct vfio_pci_hot_reset) + sizeof(int32_t)];
	struct vfio_pci_hot_reset h = { .argsz = sizeof(buf), .count = 1 };
	int32_t gfd = v->group;
	char other[64] = "";
	uint32_t n;
	int rc = hot_reset_scope(v, &n, other, sizeof(other));

	if (rc == -EBUSY) {
		if (!v->reset_warned)
				tp_warn(v->be.name, "hot reset: it would also reset %s, which "
					"this server does not own (bind every function on the bus "
					"to vfio-pci, in one group)", other);
		return rc;
	}
	if (rc) {
		if (!v->reset_warned)
			tp_warn(v->be.name, "no reset method: the kernel has neither a function "
				"reset nor a bus reset for it (%s)", strerror(-rc));
		return -ENOTTY;
	}
	if (v->iommufd >= 0) {
		h.argsz = sizeof(h);
		h.count = 0;
	}
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), &gfd, sizeof(gfd));
	if (ioctl(v->device, VFIO_DEVICE_PCI_HOT_RESET, buf) < 0) {
		rc = -errno;
		tp_warn(v->be.name, "hot reset of %u function(s): %s", n, strerror(-rc));
		return rc;
	}
	tp_dbg(v->be.name, "hot reset of %u function(s)", n);
	return 0;
}

const char *vfio_reset_method(const struct vfio_dev *v)
{
	char other[64];
	uint32_t n;

	if (v->dev_flags & VFIO_DEVICE_FLAGS_RESET)
		return "function reset (VFIO_DEVICE_RESET: FLR, PM or bus, the kernel's choice)";
	switch (hot_reset_scope((struct vfio_dev *)v, &n, other, sizeof(other))) {
	case 0:
		return v->iommufd >= 0 ? "hot reset of the bus (every function on it is owned "
					 "by this iommufd)"
		       : "hot reset of the bus (every function on it is in this group)";
	case -EBUSY:
		return v->iommufd >= 0 ? "none: a bus reset would reach a function this iommufd "
					 "does not own"
		       : "none: a bus reset would reach a function outside this group";
	default: return "none: no FLR, PM or bus reset";
	}
}

int vfio_reset(struct tp_backend *be)
{
	struct vfio_dev *v = vfio_of(be);
	uint16_t vendor = 0xffff;
	int rc = -ENOTTY;

	vfio_irqs_disable_all(v);
	if (v->dev_flags & VFIO_DEVICE_FLAGS_RESET) {
		if (ioctl(v->device, VFIO_DEVICE_RESET) == 0) {
			rc = 0;
		} else {
			rc = -errno;
			tp_warn(be->name, "VFIO_DEVICE_RESET: %s; trying a hot reset",
				strerror(-rc));
		}
	}
	if (rc)
		rc = hot_reset(v);
	if (rc) {
		v->reset_warned = true;
		return rc;
	}
	/* The kernel waited for the device; say so if it did not come back. */
	if (vfio_config_read(be, 0, &vendor, 2) == 0 && vendor == 0xffff)
		tp_warn(be->name, "the device reads all-ones after its reset: it did not come "
			"back");
	return 0;
}
