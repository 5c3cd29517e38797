/* SPDX-License-Identifier: MIT */
/*
 * The vfio backend: a PCI function bound to vfio-pci on a Linux host.
 *
 *   thunderpass serve --backend vfio -o device=0000:01:00.0 --socket PATH
 *
 * Opening: sysfs says which IOMMU group the function is in and which driver
 * holds it (vfio-pci, or we stop with what to do); then either
 *   - iommufd (iommufd=auto where the kernel has it, or iommufd=on): the
 *     device cdev (/dev/vfio/devices/vfioN, Linux >= 6.6 with
 *     VFIO_DEVICE_CDEV) bound to /dev/iommu and attached to an IOAS
 *     (vfio_iommufd.c), or
 *   - the legacy VFIO group API (iommufd=off, or no cdev): a container
 *     (/dev/vfio/vfio) with the type1 IOMMU, the group (/dev/vfio/<group>,
 *     which must be viable), the device fd.
 * See docs/vfio.md.
 *
 * DMA: the identity model. Every DMA_MAP'ed region of guest memory with an
 * fd is mapped in the container or IOAS at IOVA = the client's address
 * (guest physical for QEMU), pinned by the kernel; the device then reaches
 * exactly the mapped guest memory through the host IOMMU.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <thunderpass/log.h>

#include "util.h"
#include "vfio.h"
#include "vfio_uapi.h"

#define SYSFS_PCI "/sys/bus/pci/devices"

/* ---- options ------------------------------------------------------------ */

/* In the order of the iommufd= option's values: auto, on, off. */
enum vfio_api { VFIO_API_AUTO, VFIO_API_IOMMUFD, VFIO_API_GROUP };

struct vfio_opts {
	char bdf[16];
	const char *name;
	enum vfio_api api;
};

/* "0000:01:00.0" or "01:00.0" (domain 0): lower-case, checked digit by digit. */
static int parse_bdf(const char *s, char out[16])
{
	static const char shape[] = "hhhh:hh:hh.f";
	char buf[16];
	size_t n = s ? strlen(s) : 0;

	if (n == 7)
		snprintf(buf, sizeof(buf), "0000:%s", s);
	else if (n == 12)
		snprintf(buf, sizeof(buf), "%s", s);
	else
		return -EINVAL;
	for (size_t i = 0; i < 12; i++) {
		char c = (char)tolower((unsigned char)buf[i]);

		if (shape[i] == 'h' ? !isxdigit((unsigned char)c)
		    : shape[i] == 'f' ? (c < '0' || c > '7') : c != shape[i])
			return -EINVAL;
		buf[i] = c;
	}
	/* Device numbers stop at 0x1f. */
	if (strtoul(buf + 8, NULL, 16) > 0x1f)
		return -EINVAL;
	memcpy(out, buf, 13);
	return 0;
}

static int parse_opts(const struct tp_backend_opt *opts, size_t nopts, struct vfio_opts *o)
{
	bool have_dev = false, have_name = false, have_api = false;

	for (size_t i = 0; i < nopts; i++) {
		const char *key = opts[i].key ? opts[i].key : "";
		const char *value = opts[i].value ? opts[i].value : "";

		if (!strcmp(key, "device")) {
			if (have_dev || parse_bdf(value, o->bdf)) {
				tp_err(VFIO_WHO, "device=%s: expected one PCI address such as "
				       "0000:01:00.0 (thunderpass list shows them)", value);
				return -EINVAL;
			}
			have_dev = true;
		} else if (!strcmp(key, "name")) {
			size_t n = strlen(value);
			bool ok = !have_name && n && n < sizeof(((struct tp_backend *)0)->name);

			for (size_t k = 0; ok && k < n; k++)
				ok = isgraph((unsigned char)value[k]);
			if (!ok) {
				tp_err(VFIO_WHO, "name=%s: 1 to 63 printable characters, no "
				       "blanks, once", value);
				return -EINVAL;
			}
			o->name = value;
			have_name = true;
		} else if (!strcmp(key, "iommufd")) {
			static const char *const names[] = { "auto", "on", "off" };
			size_t k = 0;

			while (k < TP_ARRAY_SIZE(names) && strcmp(value, names[k]))
				k++;
			if (have_api || k == TP_ARRAY_SIZE(names)) {
				tp_err(VFIO_WHO, "iommufd=%s: auto (the cdev where the kernel has "
				       "it), on or off (the group API), once", value);
				return -EINVAL;
			}
			o->api = (enum vfio_api)k;
			have_api = true;
		} else {
			tp_err(VFIO_WHO, "unknown option '%s' (options: device, iommufd, name)", key);
			return -EINVAL;
		}
	}
	if (!have_dev) {
		tp_err(VFIO_WHO, "device=BDF is required (thunderpass list shows the host's "
		       "devices)");
		return -EINVAL;
	}
	return 0;
}

/* ---- sysfs: driver and IOMMU group ---------------------------------------- */

/* The last component of the link at SYSFS_PCI/bdf/what, or -ENOENT. */
static int sysfs_link_name(const char *bdf, const char *what, char *out, size_t len)
{
	char path[PATH_MAX], target[PATH_MAX];
	const char *slash;
	ssize_t n;

	snprintf(path, sizeof(path), SYSFS_PCI "/%s/%s", bdf, what);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return -errno;
	target[n] = '\0';
	slash = strrchr(target, '/');
	slash = slash ? slash + 1 : target;
	if (strlen(slash) >= len)
		return -ENAMETOOLONG;
	memcpy(out, slash, strlen(slash) + 1);
	return 0;
}

/* Logs the group's members and their drivers (why a group is not viable). */
void vfio_log_group(struct vfio_dev *v)
{
	char path[PATH_MAX], drv[64];
	struct dirent *e;
	DIR *d;

	snprintf(path, sizeof(path), "/sys/kernel/iommu_groups/%d/devices", v->group_id);
	d = opendir(path);
	if (!d)
		return;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		if (sysfs_link_name(e->d_name, "driver", drv, sizeof(drv)))
			snprintf(drv, sizeof(drv), "no driver");
		tp_err(v->be.name, "  group %d: %s (%s)", v->group_id, e->d_name, drv);
	}
	closedir(d);
}

static int sysfs_check(struct vfio_dev *v)
{
	char path[PATH_MAX], drv[64], grp[32];
	char *end;
	long g;
	int rc;

	snprintf(path, sizeof(path), SYSFS_PCI "/%s", v->bdf);
	if (access(path, F_OK) < 0) {
		tp_err(v->be.name, "no PCI device %s on this host (thunderpass list shows them)",
		       v->bdf);
		return -ENODEV;
	}
	rc = sysfs_link_name(v->bdf, "driver", drv, sizeof(drv));
	if (rc == -ENOENT)
		snprintf(drv, sizeof(drv), "no driver");
	else if (rc)
		snprintf(drv, sizeof(drv), "unknown driver: %s", strerror(-rc));
	if (rc || !strstr(drv, "vfio")) {
		tp_err(v->be.name, "bound to %s, not vfio-pci: bind it first (docs/vfio.md: "
				   "driver_override, then drivers_probe)", drv);
		return -ENODEV;
	}
	rc = sysfs_link_name(v->bdf, "iommu_group", grp, sizeof(grp));
	if (rc) {
		tp_err(v->be.name, "no IOMMU group: the host IOMMU is off (boot with "
		       "intel_iommu=on or amd_iommu=on, and enable VT-d / AMD-Vi in the firmware)");
		return -ENODEV;
	}
	g = strtol(grp, &end, 10);
	if (!grp[0] || *end || g < 0 || g > INT_MAX) {
		tp_err(v->be.name, "IOMMU group '%s': not a number", grp);
		return -EPROTO;
	}
	v->group_id = (int)g;
	return 0;
}

/* ---- container, group, device --------------------------------------------- */

static int iommu_info(struct vfio_dev *v)
{
	uint32_t argsz = sizeof(struct vfio_iommu_type1_info);
	struct vfio_iommu_type1_info info;
	const char *why = "";
	uint8_t *buf = NULL;
	int rc;

	for (int tries = 0; tries < 3; tries++) {
		uint8_t *nb = realloc(buf, argsz);

		if (!nb) {
			free(buf);
			tp_err(v->be.name, "out of memory");
			return -ENOMEM;
		}
		buf = nb;
		memset(buf, 0, argsz);
		info = (struct vfio_iommu_type1_info){ .argsz = argsz };
		memcpy(buf, &info, sizeof(info));
		if (ioctl(v->container, VFIO_IOMMU_GET_INFO, buf) < 0) {
			rc = -errno;
			free(buf);
			tp_err(v->be.name, "VFIO_IOMMU_GET_INFO: %s", strerror(-rc));
			return rc;
		}
		memcpy(&info, buf, sizeof(info));
		if (info.argsz <= argsz)
			break;
		if (info.argsz > VFIO_INFO_MAX || tries == 2) {
			free(buf);
			tp_err(v->be.name, "the kernel wants %u bytes of IOMMU info", info.argsz);
			return -EPROTO;
		}
		argsz = info.argsz;
	}
	rc = vfio_parse_iommu_caps(buf, argsz, v, &why);
	free(buf);
	if (rc) {
		tp_err(v->be.name, "IOMMU info from the kernel: %s", why);
		return rc;
	}
	if (v->iova_pgsizes && !(v->iova_pgsizes & 4096)) {
		/* DMA_MAP comes in 4 KiB pages (we announce pgsizes 4096). */
		tp_err(v->be.name, "the host IOMMU maps no 4 KiB pages (page sizes %#" PRIx64 ")",
		       v->iova_pgsizes);
		return -EOPNOTSUPP;
	}
	return 0;
}

int vfio_open_node(struct vfio_dev *v, const char *path, const char *hint)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		int rc = -errno;
		const char *why = hint;

		if (rc == -EACCES)
			why = "run as root, or give this user the device node (docs/vfio.md)";
		else if (rc == -EBUSY)
			why = "another process (QEMU, another thunderpass) holds it";
		tp_err(v->be.name, "%s: %s%s%s", path, strerror(-rc), why ? ": " : "",
		       why ? why : "");
		return rc;
	}
	return fd;
}

static int open_vfio(struct vfio_dev *v)
{
	struct vfio_group_status st = { .argsz = sizeof(st) };
	char path[64];
	int type, rc;

	v->container = vfio_open_node(v, "/dev/vfio/vfio", "is the vfio module loaded?");
	if (v->container < 0)
		return v->container;
	if (ioctl(v->container, VFIO_GET_API_VERSION) != VFIO_API_VERSION) {
		tp_err(v->be.name, "/dev/vfio/vfio speaks another VFIO API version");
		return -EPROTONOSUPPORT;
	}
	if (ioctl(v->container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) > 0)
		type = VFIO_TYPE1v2_IOMMU;
	else if (ioctl(v->container, VFIO_CHECK_EXTENSION, VFIO_TYPE1_IOMMU) > 0)
		type = VFIO_TYPE1_IOMMU;
	else
		type = 0;
	if (!type) {
		tp_err(v->be.name, "no type1 IOMMU in this kernel's VFIO (vfio_iommu_type1 not "
		       "loaded?)");
		return -EOPNOTSUPP;
	}
	snprintf(path, sizeof(path), "/dev/vfio/%d", v->group_id);
	v->group = vfio_open_node(v, path, "is vfio-pci bound?");
	if (v->group < 0)
		return v->group;
	if (ioctl(v->group, VFIO_GROUP_GET_STATUS, &st) < 0) {
		rc = -errno;
		tp_err(v->be.name, "VFIO_GROUP_GET_STATUS: %s", strerror(-rc));
		return rc;
	}
	if (!(st.flags & VFIO_GROUP_FLAGS_VIABLE)) {
		tp_err(v->be.name, "IOMMU group %d is not viable: every device in it must be bound "
				   "to vfio-pci or have no driver:", v->group_id);
		vfio_log_group(v);
		return -EBUSY;
	}
	if (ioctl(v->group, VFIO_GROUP_SET_CONTAINER, &v->container) < 0 ||
	    ioctl(v->container, VFIO_SET_IOMMU, type) < 0) {
		rc = -errno;
		tp_err(v->be.name, "attaching group %d to a type1 container: %s", v->group_id,
		       strerror(-rc));
		return rc;
	}
	rc = iommu_info(v);
	if (rc)
		return rc;
	v->device = ioctl(v->group, VFIO_GROUP_GET_DEVICE_FD, v->bdf);
	if (v->device < 0) {
		rc = -errno;
		v->device = -1;
		tp_err(v->be.name, "VFIO_GROUP_GET_DEVICE_FD: %s%s", strerror(-rc),
		       rc == -EBUSY ? " (another process has the device open)" : "");
		return rc;
	}
	tp_info(v->be.name, "%s in IOMMU group %d, %s container", v->bdf, v->group_id,
		type == VFIO_TYPE1v2_IOMMU ? "type1v2" : "type1");
	return 0;
}

/* What the device fd says of itself, however it was opened. */
static int device_info(struct vfio_dev *v)
{
	struct vfio_device_info info = { .argsz = sizeof(info) };
	int rc;

	if (ioctl(v->device, VFIO_DEVICE_GET_INFO, &info) < 0) {
		rc = -errno;
		tp_err(v->be.name, "VFIO_DEVICE_GET_INFO: %s", strerror(-rc));
		return rc;
	}
	if (!(info.flags & VFIO_DEVICE_FLAGS_PCI) ||
	    info.num_regions <= VFIO_PCI_CONFIG_REGION_INDEX) {
		tp_err(v->be.name, "not a vfio-pci device (flags %#x, %u regions)", info.flags,
		       info.num_regions);
		return -ENODEV;
	}
	v->dev_flags = info.flags;
	v->num_regions = info.num_regions;
	v->num_irqs = info.num_irqs;
	return 0;
}

/* iommufd where asked for or (auto) where the kernel offers it, else groups. */
static int open_device(struct vfio_dev *v, enum vfio_api api)
{
	char cdev[32] = "";
	int why = api == VFIO_API_GROUP ? 0 : vfio_iommufd_available(v->bdf, cdev, sizeof(cdev));
	int rc;

	if (api != VFIO_API_GROUP && !why) {
		rc = vfio_iommufd_open(v, cdev);
	} else if (api == VFIO_API_IOMMUFD) {
		tp_err(v->be.name, "iommufd=on: %s",
		       why == -ENXIO ? "no /dev/iommu (a kernel without CONFIG_IOMMUFD)"
		       : "the kernel offers no vfio device cdev for it (Linux >= 6.6 with "
			 "CONFIG_VFIO_DEVICE_CDEV: /dev/vfio/devices/vfioN)");
		return -EOPNOTSUPP;
	} else {
		rc = open_vfio(v);
	}
	return rc ? rc : device_info(v);
}

static void log_iommu(struct vfio_dev *v)
{
	char ranges[200] = "", avail[48] = "";
	size_t n = 0;

	for (uint32_t i = 0; i < v->nr_iova && n < sizeof(ranges); i++)
		n += (size_t)snprintf(ranges + n, sizeof(ranges) - n,
				      " [%#" PRIx64 "-%#" PRIx64 "]", v->iova[i].start,
				      v->iova[i].end);
	if (v->have_dma_avail)
		snprintf(avail, sizeof(avail), ", up to %u mappings", v->dma_avail);
	tp_info(v->be.name, "IOMMU: identity (IOVA = guest physical) in the %s, %s %#" PRIx64
		"%s, IOVA ranges%s", v->iommufd >= 0 ? "IOAS" : "container",
		v->iommufd >= 0 ? "IOVA alignment" : "page sizes", v->iova_pgsizes, avail,
		n ? ranges : " (not reported)");
}

/* ---- DMA ------------------------------------------------------------------ */

static bool iova_ok(const struct vfio_dev *v, uint64_t iova, uint64_t size)
{
	uint64_t last = iova + size - 1;

	if (!v->nr_iova)
		return true;
	for (uint32_t i = 0; i < v->nr_iova; i++)
		if (iova >= v->iova[i].start && last <= v->iova[i].end)
			return true;
	return false;
}

/* Regions the device can reach: memory we mapped, with some access. */
static bool dma_mappable(const struct tp_dma_region *r)
{
	return r->vaddr && (r->prot & (TP_VU_DMA_READ_OK | TP_VU_DMA_WRITE_OK));
}

/* The kernel's map of r at IOVA = r->iova: 0 or -errno. */
static int iommu_map(struct vfio_dev *v, const struct tp_dma_region *r)
{
	struct vfio_iommu_type1_dma_map m = { .argsz = sizeof(m) };

	if (v->iommufd >= 0)
		return vfio_iommufd_map(v, r);
	m.flags = ((r->prot & TP_VU_DMA_READ_OK) ? VFIO_DMA_MAP_FLAG_READ : 0) |
		  ((r->prot & TP_VU_DMA_WRITE_OK) ? VFIO_DMA_MAP_FLAG_WRITE : 0);
	m.vaddr = (uint64_t)(uintptr_t)r->vaddr;
	m.iova = r->iova;
	m.size = r->size;
	return ioctl(v->container, VFIO_IOMMU_MAP_DMA, &m) < 0 ? -errno : 0;
}

static int vfio_dma_map(struct tp_backend *be, const struct tp_dma_region *r)
{
	struct vfio_dev *v = vfio_of(be);
	int rc;

	if (!r || !r->size || r->iova + r->size - 1 < r->iova) {
		tp_err(be->name, "DMA map: empty or wrapping region");
		return -EINVAL;
	}
	if (!dma_mappable(r)) {
		/* ROM and BAR sections come without an fd: nothing to pin. */
		tp_dbg(be->name, "DMA map [%#" PRIx64 " +%#" PRIx64 "]: no memory behind it, "
				 "not reachable by the device", r->iova, r->size);
		return 0;
	}
	if (!iova_ok(v, r->iova, r->size)) {
		tp_err(be->name, "DMA map [%#" PRIx64 " +%#" PRIx64 "]: outside the host IOMMU's "
		       "IOVA ranges (reserved windows such as the MSI range cannot be mapped)",
		       r->iova, r->size);
		return -EINVAL;
	}
	rc = iommu_map(v, r);
	if (rc) {
		tp_err(be->name, "DMA map [%#" PRIx64 " +%#" PRIx64 "]: %s%s", r->iova, r->size,
		       strerror(-rc),
		       rc == -ENOMEM ? " (pinning guest memory: raise the locked-memory limit, "
				       "ulimit -l / LimitMEMLOCK=, or run with CAP_IPC_LOCK)"
		       : rc == -ENOSPC ? " (the kernel's mapping limit, vfio_iommu_type1 "
					 "dma_entry_limit, is reached)"
		       : rc == -EPROTO ? " (the kernel moved a fixed IOVA)"
		       : rc == -EEXIST ? " (overlaps a live mapping)" : "");
		return rc;
	}
	v->dma_live++;
	v->dma_bytes += r->size;
	return 0;
}

/* The kernel's unmap of r: 0 with *done, the bytes it unmapped, or -errno. */
static int iommu_unmap(struct vfio_dev *v, const struct tp_dma_region *r, uint64_t *done)
{
	struct vfio_iommu_type1_dma_unmap u = { .argsz = sizeof(u) };

	if (v->iommufd >= 0)
		return vfio_iommufd_unmap(v, r, done);
	u.iova = r->iova;
	u.size = r->size;
	if (ioctl(v->container, VFIO_IOMMU_UNMAP_DMA, &u) < 0)
		return -errno;
	*done = u.size;
	return 0;
}

static int vfio_dma_unmap(struct tp_backend *be, const struct tp_dma_region *r)
{
	struct vfio_dev *v = vfio_of(be);
	uint64_t done = 0;
	int rc;

	if (!r || !dma_mappable(r))
		return 0;
	rc = iommu_unmap(v, r, &done);
	if (rc) {
		tp_err(be->name, "DMA unmap [%#" PRIx64 " +%#" PRIx64 "]: %s", r->iova, r->size,
		       strerror(-rc));
		return rc;
	}
	if (done != r->size)
		tp_warn(be->name, "DMA unmap [%#" PRIx64 " +%#" PRIx64 "]: the kernel unmapped "
			"%#" PRIx64 " bytes", r->iova, r->size, done);
	if (v->dma_live)
		v->dma_live--;
	v->dma_bytes -= TP_MIN(v->dma_bytes, r->size);
	return 0;
}

/* ---- ops, creation, teardown ---------------------------------------------- */

static void vfio_free(struct vfio_dev *v)
{
	/* Closing the device fd turns its interrupts off (and unbinds it from the
	 * iommufd); the container's or iommufd's close unmaps (unpins) all guest
	 * memory. */
	if (v->device >= 0)
		close(v->device);
	if (v->iommufd >= 0)
		close(v->iommufd);
	if (v->group >= 0)
		close(v->group);
	if (v->container >= 0)
		close(v->container);
	vfio_irqs_free(v);
	free(v);
}

static void vfio_destroy(struct tp_backend *be)
{
	if (be)
		vfio_free(vfio_of(be));
}

static const struct tp_backend_ops vfio_ops = {
	.name = "vfio",
	.config_read = vfio_config_read,
	.config_write = vfio_config_write,
	.region_info = vfio_region_info,
	.region_read = vfio_region_read,
	.region_write = vfio_region_write,
	.dma_map = vfio_dma_map,
	.dma_unmap = vfio_dma_unmap,
	.irq_count = vfio_irq_count,
	.irq_set = vfio_irq_set,
	.irq_mask = vfio_irq_mask,
	.reset = vfio_reset,
	.destroy = vfio_destroy,
};

static int vfio_create(const struct tp_backend_opt *opts, size_t nopts, struct tp_backend **out)
{
	struct vfio_opts o = { .name = NULL, .api = VFIO_API_AUTO };
	struct vfio_dev *v;
	int rc;

	if (!out || (nopts && !opts)) {
		tp_err(VFIO_WHO, "create: no options array or result pointer");
		return -EINVAL;
	}
	*out = NULL;
	rc = parse_opts(opts, nopts, &o);
	if (rc)
		return rc;
	v = calloc(1, sizeof(*v));
	if (!v) {
		tp_err(VFIO_WHO, "out of memory");
		return -ENOMEM;
	}
	v->container = v->group = v->device = v->iommufd = -1;
	v->be.ops = &vfio_ops;
	memcpy(v->bdf, o.bdf, sizeof(v->bdf));
	snprintf(v->be.name, sizeof(v->be.name), "%s", o.name ? o.name : o.bdf);
	v->page = sysconf(_SC_PAGESIZE);
	if (v->page < 4096)
		v->page = 4096;

	rc = sysfs_check(v);
	if (!rc)
		rc = open_device(v, o.api);
	if (!rc)
		rc = vfio_regions_probe(v);
	if (!rc)
		rc = vfio_irqs_probe(v);
	if (rc) {
		vfio_free(v);
		return rc;
	}
	log_iommu(v);
	tp_info(v->be.name, "%04x:%04x through vfio-pci; reset: %s", v->vendor, v->devid,
		vfio_reset_method(v));
	*out = &v->be;
	return 0;
}

/* While serving: pread/pwrite on the device fd, and the ioctls below (region,
 * IRQ and IOMMU info are read at open). */
static const char *const vfio_syscalls[] = { "pread64", "pwrite64", NULL };
static const unsigned long vfio_ioctls[] = {
	VFIO_IOMMU_MAP_DMA, VFIO_IOMMU_UNMAP_DMA,          /* DMA, group API */
	IOMMU_IOAS_MAP, IOMMU_IOAS_UNMAP,                  /* DMA, iommufd */
	VFIO_DEVICE_SET_IRQS,                              /* interrupts */
	VFIO_DEVICE_RESET, VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, VFIO_DEVICE_PCI_HOT_RESET,
	0,
};

const struct tp_backend_type tp_backend_vfio = {
	.name = "vfio",
	.help = "a PCI function bound to vfio-pci (Linux); device=BDF (e.g. 0000:01:00.0, "
		"see thunderpass list), iommufd=auto|on|off (the iommufd cdev where the "
		"kernel has it, default; or the VFIO group API), name=NAME (log prefix, "
		"default the BDF)",
	.create = vfio_create,
	.syscalls = vfio_syscalls,
	.ioctls = vfio_ioctls,
};
